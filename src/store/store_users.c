/*
 * store_users.c - the argument checks both stores apply to users, sessions and grants
 * (see store_users.h).  Nothing here touches a database.
 */
#include "store_users.h"

#include <stdio.h>
#include <string.h>

const char *store__principal_name(enum store_principal k)
{
    switch (k) {
    case STORE_P_USER: return "user";
    case STORE_P_TOKEN: return "token";
    default: return NULL;
    }
}

int store__check_grants(const char *op, const json_t *grants, bool allow_null, struct ty_err *err)
{
    if (grants == NULL && allow_null)
        return 0;
    if (!json_is_array(grants))
        return ty_error(err, TY_EINVAL, "grants", -1, 0,
                        "%s: grants is not an array of {\"domain\", \"role\"}", op);
    if (json_array_size(grants) > 64)
        return ty_error(err, TY_EINVAL, "grants", -1, 0, "%s: %zu grants; at most 64", op,
                        json_array_size(grants));
    size_t i;
    const json_t *g;
    json_array_foreach(grants, i, g)
    {
        const char *d = json_string_value(json_object_get(g, "domain"));
        const char *r = json_string_value(json_object_get(g, "role"));
        char f[48];
        snprintf(f, sizeof f, "grants[%zu].domain", i);
        if (d == NULL || strlen(d) > STORE__NAME_MAX)
            return ty_error(err, TY_EINVAL, f, -1, 0, "%s: %s is missing or longer than %d bytes",
                            op, f, STORE__NAME_MAX);
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(grants, k), "domain")),
                       d) == 0)
                return ty_error(err, TY_EINVAL, f, -1, 0,
                                "%s: %s: \"%.100s\" has a grant already (grants[%zu])", op, f, d,
                                k);
        snprintf(f, sizeof f, "grants[%zu].role", i);
        if (r == NULL ||
            (strcmp(r, "viewer") != 0 && strcmp(r, "operator") != 0 && strcmp(r, "admin") != 0))
            return ty_error(err, TY_EINVAL, f, -1, 0, "%s: %s is not viewer, operator or admin", op,
                            f);
    }
    return 0;
}

int store__check_user(const struct store_user *u, struct ty_err *err)
{
    int rc = store__check_id(u->name, STORE__NAME_MAX + 1, "name", "user_create", err);
    if (rc == 0)
        rc = store__check_id(u->password_hash, STORE__PW_HASH_MAX + 1, "password_hash",
                             "user_create", err);
    if (rc == 0)
        rc = store__check_grants("user_create", u->grants, true, err);
    return rc;
}

int store__check_user_change(const char *name, const struct store_user_change *c,
                             struct ty_err *err)
{
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_update", err);
    if (rc == 0 && c->password_hash != NULL)
        rc = store__check_id(c->password_hash, STORE__PW_HASH_MAX + 1, "password_hash",
                             "user_update", err);
    if (rc == 0 && (c->must_change < -1 || c->must_change > 1))
        rc = ty_error(err, TY_EINVAL, "must_change", -1, 0,
                      "user_update: must_change %d is not -1, 0 or 1", c->must_change);
    if (rc == 0)
        rc = store__check_grants("user_update", c->grants, true, err);
    char h[STORE__HASH_HEX + 1];
    if (rc == 0 && c->keep_session != NULL)
        rc = store__check_hash("user_update", c->keep_session, h, err);
    return rc;
}

int store__check_session(const struct store_session *ss, char h[STORE__HASH_HEX + 1],
                         struct ty_err *err)
{
    int rc = store__check_hash("session_put", ss->hash, h, err);
    if (rc == 0)
        rc = store__check_id(ss->user, STORE__NAME_MAX + 1, "user", "session_put", err);
    if (rc == 0)
        rc = store__check_id(ss->csrf, STORE__CSRF_MAX + 1, "csrf", "session_put", err);
    if (rc == 0 && (ss->created_at_ms <= 0 || ss->expires_at_ms <= ss->created_at_ms))
        rc = ty_error(err, TY_EINVAL, "expires_at_ms", -1, 0,
                      "session_put: expires_at_ms must come after created_at_ms (> 0)");
    return rc;
}

int store__check_principal(const char *op, enum store_principal kind, const char *name,
                           const char **kn, struct ty_err *err)
{
    *kn = store__principal_name(kind);
    if (*kn == NULL)
        return ty_error(err, TY_EINVAL, "kind", -1, 0, "%s: %d is not a principal kind", op,
                        (int)kind);
    return store__check_id(name, STORE__NAME_MAX + 1, "name", op, err);
}
