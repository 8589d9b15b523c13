/*
 * role.c - roles on domain subtrees, and whether they allow an action (see role.h).
 *
 * The subtree rule is domain_within's and nothing else: a second parser of domain paths
 * would sooner or later disagree with the one that files jobs under their domains.  The
 * decision is the largest role among the grants whose subtree holds the domain, compared
 * with the one needed; the roles nest (viewer < operator < admin), so that is all.
 *
 * The sentences say who asked, what the grants make them and what was needed where, so
 * an operator reading a 403 knows whom to ask for which grant without reading code.
 */
#include "role.h"

#include <stdio.h>
#include <string.h>

#include "job.h"
#include "strbuf.h"

static const char *const names[] = {"none", "viewer", "operator", "admin"};

const char *role_name(enum role r)
{
    return r >= ROLE_VIEWER && r <= ROLE_ADMIN ? names[r] : names[0];
}

int role_parse(const char *field, const char *text, enum role *out, struct ty_err *err)
{
    for (int r = ROLE_VIEWER; text != NULL && r <= ROLE_ADMIN; r++) {
        if (strcmp(text, names[r]) == 0) {
            *out = (enum role)r;
            return 0;
        }
    }
    char shown[80];
    job__quote(text != NULL ? text : "", shown, sizeof shown);
    return ty_error(err, TY_EINVAL, field, -1, 0,
                    "%s: %s is not a role (viewer, operator or admin)", field, shown);
}

int role_grants_from_json(const json_t *arr, const char *field, struct role_grant *out, size_t cap,
                          size_t *n, struct ty_err *err)
{
    static const char *const known[] = {"domain", "role"};
    char shown[80], where[TY_ERR_FIELD_MAX - 16], f[TY_ERR_FIELD_MAX];
    *n = 0;
    if (cap > ROLE_GRANTS_MAX)
        cap = ROLE_GRANTS_MAX;
    if (!json_is_array(arr))
        return ty_error(err, TY_EINVAL, field, -1, 0,
                        "%s: %s is not a list of {\"domain\": PATH, \"role\": ROLE}", field,
                        job__show(arr, shown, sizeof shown));
    if (json_array_size(arr) > cap)
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s: %zu grants; at most %zu", field,
                        json_array_size(arr), cap);
    size_t i;
    const json_t *g;
    json_array_foreach(arr, i, g)
    {
        snprintf(where, sizeof where, "%s[%zu]", field, i);
        if (!json_is_object(g))
            return ty_error(err, TY_EINVAL, where, -1, 0,
                            "%s: %s is not an object {\"domain\": PATH, \"role\": ROLE}", where,
                            job__show(g, shown, sizeof shown));
        int rc = job__check_fields(g, where, known, 2, err);
        if (rc != 0)
            return rc;
        const json_t *d = json_object_get(g, "domain"), *r = json_object_get(g, "role");
        snprintf(f, sizeof f, "%s.domain", where);
        if (d != NULL && !json_is_null(d) && !json_is_string(d))
            return ty_error(err, TY_EINVAL, f, -1, 0, "%s: %s is not a domain path", f,
                            job__show(d, shown, sizeof shown));
        const char *path = json_is_string(d) ? json_string_value(d) : "";
        if ((rc = domain_check_path(f, path, err)) != 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(out[k].domain, path) == 0)
                return ty_error(err, TY_EINVAL, f, -1, 0,
                                "%s: %s has a grant already (%s[%zu]); one role per domain", f,
                                path[0] ? job__quote(path, shown, sizeof shown) : "the whole tree",
                                field, k);
        snprintf(f, sizeof f, "%s.role", where);
        if (r == NULL)
            return ty_error(err, TY_EINVAL, f, -1, 0,
                            "%s: missing; every grant needs a role (viewer, operator or admin)", f);
        if (!json_is_string(r))
            return ty_error(err, TY_EINVAL, f, -1, 0,
                            "%s: %s is not a role (viewer, operator or admin)", f,
                            job__show(r, shown, sizeof shown));
        if ((rc = role_parse(f, json_string_value(r), &out[i].role, err)) != 0)
            return rc;
        snprintf(out[i].domain, sizeof out[i].domain, "%s", path);
        *n = i + 1;
    }
    return 0;
}

json_t *role_grants_to_json(const struct role_grant *g, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *o = json_pack("{s:s, s:s}", "domain", g[i].domain, "role", role_name(g[i].role));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

enum role role_on(const struct role_grant *g, size_t n, const char *domain)
{
    enum role best = ROLE_NONE;
    for (size_t i = 0; i < n; i++)
        if (g[i].role > best && domain_within(domain, g[i].domain))
            best = g[i].role;
    return best;
}

bool role_allows(const struct role_grant *g, size_t n, enum role need, const char *domain)
{
    return need != ROLE_NONE && role_on(g, n, domain) >= need;
}

bool role_everywhere(const struct role_grant *g, size_t n, enum role need)
{
    return role_allows(g, n, need, "");
}

bool role_any_within(const struct role_grant *g, size_t n, enum role need, const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].role >= need &&
            (domain_within(domain, g[i].domain) || domain_within(g[i].domain, domain)))
            return true;
    return false;
}

/* "finance", or "the whole tree" for "". */
static const char *place(const char *domain)
{
    return domain[0] ? domain : "the whole tree";
}

void role_describe(const struct role_grant *g, size_t n, char *buf, size_t cap)
{
    struct strbuf sb;
    sb_init_fixed(&sb, buf, cap);
    if (n == 0) {
        sb_adds(&sb, "has no role");
        return;
    }
    sb_adds(&sb, "is ");
    for (size_t i = 0; i < n; i++) {
        const char *r = role_name(g[i].role);
        sb_addf(&sb, "%s%s %s of %s",
                i == 0       ? ""
                : i + 1 == n ? " and "
                             : ", ",
                r[0] == 'a' || r[0] == 'o' ? "an" : "a", r, place(g[i].domain));
    }
}

int role_check(const struct role_grant *g, size_t n, enum role need, const char *domain,
               const char *who, const char *doing, struct ty_err *err)
{
    if (role_allows(g, n, need, domain))
        return 0;
    char what[512];
    role_describe(g, n, what, sizeof what);
    return ty_error(err, TY_EPERM, NULL, -1, 0, "%s %s: %s needs %s on %s", who, what, doing,
                    role_name(need), place(domain));
}

size_t role_roots(const struct role_grant *g, size_t n, enum role need, const char **out,
                  size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (g[i].role < need)
            continue;
        bool inside = false; /* under another grant that counts (the first of equals wins) */
        for (size_t j = 0; j < n && !inside; j++)
            inside = j != i && g[j].role >= need && domain_within(g[i].domain, g[j].domain) &&
                     (strcmp(g[i].domain, g[j].domain) != 0 || j < i);
        if (!inside && k < cap)
            out[k++] = g[i].domain;
    }
    return k;
}

/* The grant of principal g[0..n) on exactly `domain`, or NULL. */
static const struct role_grant *grant_at(const struct role_grant *g, size_t n, const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].domain, domain) == 0)
            return &g[i];
    return NULL;
}

int role_check_grant_edit(const struct role_grant *e, size_t ne, const struct role_grant *old,
                          size_t nold, const struct role_grant *new_, size_t nnew, const char *who,
                          struct ty_err *err)
{
    char doing[DOMAIN_PATH_MAX + 96];
    for (size_t i = 0; i < nnew; i++) { /* added or changed */
        const struct role_grant *was = grant_at(old, nold, new_[i].domain);
        if (was != NULL && was->role == new_[i].role)
            continue;
        snprintf(doing, sizeof doing, "granting %s on %s", role_name(new_[i].role),
                 place(new_[i].domain));
        int rc = role_check(e, ne, ROLE_ADMIN, new_[i].domain, who, doing, err);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < nold; i++) { /* removed */
        if (grant_at(new_, nnew, old[i].domain) != NULL)
            continue;
        snprintf(doing, sizeof doing, "removing the %s grant on %s", role_name(old[i].role),
                 place(old[i].domain));
        int rc = role_check(e, ne, ROLE_ADMIN, old[i].domain, who, doing, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
