/*
 * routes_auth.c - who is calling, and whether they may: the HTTP layer's authenticate and
 * permit callbacks for the REST API.
 *
 * Authentication.  A request proves who it is with a bearer token or a session cookie
 * (a bearer token wins when both come).  The cluster's secret and the data directory's
 * token ("default", and each cluster server's own) may do everything; a named token and a
 * user have grants, roles on domain subtrees (core/role.h).  Tokens are looked up by
 * routes_tokens.c (cached), sessions by routes_users.c, which also checks a session's
 * CSRF token on every request that changes something.
 *
 * Authorisation, in one place.  Every route declares what it needs (enum routes_perm in
 * routes_impl.h; http_start refuses a route that declares nothing).  routes__permit runs
 * after the body has been read and before the handler: it finds the domain the request is
 * about - the job's own (its stored definition), a run's, a domain's path, the domain in
 * the body of a create, both the old and the new for a move or a restore - and asks
 * core/role.c.  A refusal is a 403 whose message names the caller, what it is, what was
 * refused and what it needs.  An object that does not exist is let through, for the
 * handler to answer 404 as it always has.  Lists (ROUTES_P_ANY) are filtered by their
 * handlers with routes__read_roots: what a caller cannot read it does not see.
 *
 * A user who must change the password (the first admin, a reset) may call only the routes
 * of its own session (ROUTES_P_SELF) until it has.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/domain.h"
#include "routes_impl.h"

#define BOOTSTRAP_NAME "default"

void routes__principal_free(void *principal)
{
    free(principal);
}

int routes__authenticate(void *ctx, const struct http_credentials *cred, char *who, size_t who_cap,
                         void **principal, char *why, size_t why_cap)
{
    struct server *s = ctx;
    struct routes_principal *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(why, why_cap, "out of memory");
        return TY_ENOMEM;
    }
    int rc;
    if (cred->bearer != NULL) {
        const char *boot = server_token(s);
        if (cred->bearer_len == 0) {
            snprintf(why, why_cap, "empty bearer token");
            rc = TY_EAUTH;
        } else if (server_is_peer(s, cred->bearer, cred->bearer_len)) {
            p->kind = ROUTES_K_PEER;
            p->all = true;
            snprintf(p->name, sizeof p->name, ROUTES_PEER_NAME);
            rc = 0;
        } else if (token_equal(boot, strlen(boot), cred->bearer, cred->bearer_len)) {
            p->kind = ROUTES_K_BOOTSTRAP;
            p->all = true;
            snprintf(p->name, sizeof p->name, BOOTSTRAP_NAME);
            rc = 0;
        } else {
            rc = routes__token_principal(s, cred->bearer, cred->bearer_len, p, why, why_cap);
        }
    } else {
        rc = routes__session_principal(s, cred, p, why, why_cap);
    }
    if (rc != 0) {
        if (p->name[0] != '\0') /* known, but refused (a change without its CSRF token) */
            snprintf(who, who_cap, "%s%s", p->kind == ROUTES_K_USER ? "user:" : "", p->name);
        free(p);
        return rc;
    }
    if (p->kind == ROUTES_K_USER)
        snprintf(who, who_cap, "user:%s", p->name);
    else
        snprintf(who, who_cap, "%s", p->name);
    *principal = p;
    return 0;
}

/* A request that came through no authenticate callback (a test's own configuration) may
 * do everything, as it always could. */
static const struct routes_principal everything = {
    .kind = ROUTES_K_BOOTSTRAP, .name = BOOTSTRAP_NAME, .all = true};

const struct routes_principal *routes__principal(const struct http_request *req)
{
    return req->principal != NULL ? req->principal : &everything;
}

void routes__describe(const struct routes_principal *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s", p->kind == ROUTES_K_USER ? "user" : "token", p->name);
}

bool routes__may(const struct http_request *req, enum role need, const char *domain)
{
    const struct routes_principal *p = routes__principal(req);
    return p->all || role_allows(p->grants, p->n_grants, need, domain);
}

int routes__check(const struct http_request *req, enum role need, const char *domain,
                  const char *doing, struct ty_err *err)
{
    const struct routes_principal *p = routes__principal(req);
    if (p->all)
        return 0;
    char who[HTTP_WHO_MAX + 8];
    routes__describe(p, who, sizeof who);
    return role_check(p->grants, p->n_grants, need, domain, who, doing, err);
}

size_t routes__read_roots(const struct http_request *req, const char **roots, size_t cap, bool *all)
{
    const struct routes_principal *p = routes__principal(req);
    *all = p->all || role_everywhere(p->grants, p->n_grants, ROLE_VIEWER);
    if (*all)
        return 0;
    return role_roots(p->grants, p->n_grants, ROLE_VIEWER, roots, cap);
}

void routes__domain_of(const char *json, char *buf, size_t cap)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *d = json_string_value(json_object_get(o, "domain"));
    snprintf(buf, cap, "%s", d != NULL ? d : "");
    json_decref(o);
}

/* ---------------------------------------------------------------------------------------
 * What a route is about: its domain(s), from the store or the body.
 */

/* The result of looking a domain up: found, absent (the handler answers 404 or 400), or
 * the store failed (err). */
enum look { LOOK_FOUND, LOOK_NONE, LOOK_FAILED };

/* The domain of the job `name` now, or (deleted, when `last` is set) the one its newest
 * stored definition had. */
static enum look job_domain(struct server *s, const char *name, bool last, char *buf, size_t cap,
                            struct ty_err *err)
{
    struct store *st = server_reader(s, err);
    if (st == NULL)
        return LOOK_FAILED;
    char *text = NULL;
    int64_t version;
    int rc = store_obj_get(st, STORE_JOB, name, &text, &version, err);
    if (rc == 0) {
        routes__domain_of(text, buf, cap);
        free(text);
        return LOOK_FOUND;
    }
    if (rc != TY_ENOENT)
        return LOOK_FAILED;
    if (!last)
        return LOOK_NONE;
    json_t *hist = NULL;
    if ((rc = store_obj_history(st, STORE_JOB, name, &hist, err)) != 0)
        return rc == TY_ENOENT ? LOOK_NONE : LOOK_FAILED;
    enum look found = LOOK_NONE;
    size_t i;
    json_t *v;
    json_array_foreach(hist, i, v) /* newest first: the first that has a definition */
    {
        if (strcmp(json_string_value(json_object_get(v, "op")), "delete") == 0)
            continue;
        if (store_obj_version(st, STORE_JOB, name,
                              json_integer_value(json_object_get(v, "version")), &text, err) == 0) {
            routes__domain_of(text, buf, cap);
            free(text);
            found = LOOK_FOUND;
        }
        break;
    }
    json_decref(hist);
    return found;
}

/* The domain of the job version a restore names ({"version": v} in the body). */
static enum look restored_domain(struct server *s, const struct http_request *req, char *buf,
                                 size_t cap, struct ty_err *err)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *v = json_object_get(body, "version");
    json_int_t version = json_is_integer(v) ? json_integer_value(v) : 0;
    json_decref(body);
    if (version < 1)
        return LOOK_NONE; /* the handler says what is wrong with it */
    struct store *st = server_reader(s, err);
    if (st == NULL)
        return LOOK_FAILED;
    char *text = NULL;
    int rc = store_obj_version(st, STORE_JOB, req->params[0], version, &text, err);
    if (rc != 0)
        return rc == TY_ENOENT ? LOOK_NONE : LOOK_FAILED;
    routes__domain_of(text, buf, cap);
    free(text);
    return LOOK_FOUND;
}

/* The string `key` of the body (a JSON object): found, absent (def is used: *buf = def),
 * or something else (LOOK_NONE: the handler refuses the body). */
static enum look body_text(const struct http_request *req, const char *key, const char *def,
                           char *buf, size_t cap)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *v = json_object_get(body, key);
    enum look r = LOOK_NONE;
    if (json_is_object(body) && (v == NULL || json_is_null(v)) && def != NULL) {
        snprintf(buf, cap, "%s", def);
        r = LOOK_FOUND;
    } else if (json_is_string(v) && json_string_length(v) < cap) {
        snprintf(buf, cap, "%s", json_string_value(v));
        r = LOOK_FOUND;
    }
    json_decref(body);
    return r;
}

/* The run's domain. */
static enum look run_domain(struct server *s, const char *id, char *buf, size_t cap,
                            struct ty_err *err)
{
    struct store *st = server_reader(s, err);
    if (st == NULL)
        return LOOK_FAILED;
    json_t *run = NULL;
    int rc = store_run_get(st, id, &run, err);
    if (rc != 0)
        return rc == TY_ENOENT ? LOOK_NONE : LOOK_FAILED;
    const char *d = json_string_value(json_object_get(run, "domain"));
    snprintf(buf, cap, "%s", d != NULL ? d : "");
    json_decref(run);
    return LOOK_FOUND;
}

/* What the request does, in words for a refusal: "running", "changing", "reading"... */
static const char *verb_of(const struct http_request *req)
{
    const char *last = strrchr(req->path, '/');
    last = last != NULL ? last + 1 : req->path;
    switch (req->method) {
    case HTTP_GET: return "reading";
    case HTTP_PUT:
    case HTTP_PATCH: return "changing";
    case HTTP_DELETE: return "deleting";
    case HTTP_POST:
        if (strcmp(last, "run") == 0)
            return "running";
        if (strcmp(last, "enable") == 0)
            return "enabling";
        if (strcmp(last, "disable") == 0)
            return "disabling";
        if (strcmp(last, "cancel") == 0)
            return "canceling";
        if (strcmp(last, "restore") == 0)
            return "restoring";
        return "creating";
    }
    return "calling";
}

/* The words of a refusal for an object: "running job hr.payroll". */
static void doing_object(const struct http_request *req, const char *kind, const char *name,
                         char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s %s", verb_of(req), kind, name);
}

/* Turn a lookup's failure into the answer (the store's error) and report it. */
static int looked(enum look l, const struct ty_err *e, char *why, size_t cap)
{
    if (l != LOOK_FAILED)
        return 0;
    snprintf(why, cap, "%s", e->msg);
    return e->code != 0 ? e->code : TY_EIO;
}

/* Decide `need` on `domain`: 0, or TY_EPERM with the sentence in why. */
static int need_on(const struct http_request *req, enum role need, const char *domain,
                   const char *doing, char *why, size_t cap)
{
    struct ty_err err;
    int rc = routes__check(req, need, domain, doing, &err);
    if (rc != 0)
        snprintf(why, cap, "%s", err.msg);
    return rc;
}

int routes__permit(void *ctx, const struct http_request *req, char *why, size_t why_cap)
{
    struct server *s = ctx;
    const struct routes_principal *p = routes__principal(req);
    enum routes_perm perm = (enum routes_perm)req->route_perm;
    char who[HTTP_WHO_MAX + 8];
    routes__describe(p, who, sizeof who);
    if (p->must_change && perm != ROUTES_P_SELF) {
        snprintf(why, why_cap,
                 "%s must change the password before anything else: POST /api/v1/session/password "
                 "{\"old\": \"...\", \"new\": \"...\"}",
                 who);
        return TY_EPERM;
    }
    if (p->all)
        return 0;
    char d1[DOMAIN_PATH_MAX + 1], d2[DOMAIN_PATH_MAX + 1];
    char doing[3 * DOMAIN_PATH_MAX + 160];
    const char *name = req->n_params > 0 ? req->params[0] : "";
    struct ty_err err;
    ty_err_clear(&err);
    enum look l;
    int rc;
    switch (perm) {
    case ROUTES_P_SELF:
    case ROUTES_P_ANY:
    case ROUTES_P_PEER: return 0;
    case ROUTES_P_ROOT:
        snprintf(doing, sizeof doing, "%s %s", req->method == HTTP_GET ? "reading" : "changing",
                 req->path);
        return need_on(req, ROLE_ADMIN, "", doing, why, why_cap);
    case ROUTES_P_ADMIN_SOME:
        for (size_t i = 0; i < p->n_grants; i++)
            if (p->grants[i].role == ROLE_ADMIN)
                return 0;
        role_describe(p->grants, p->n_grants, d1, sizeof d1);
        snprintf(why, why_cap, "%s %s: %s %s needs admin on some domain", who, d1,
                 req->method == HTTP_GET ? "reading" : "changing", req->path);
        return TY_EPERM;
    case ROUTES_P_JOB_READ:
    case ROUTES_P_JOB_OPERATE:
    case ROUTES_P_JOB_HISTORY:
        l = job_domain(s, name, perm == ROUTES_P_JOB_HISTORY, d1, sizeof d1, &err);
        if (l != LOOK_FOUND)
            return looked(l, &err, why, why_cap);
        doing_object(req, "job", name, doing, sizeof doing);
        return need_on(req, perm == ROUTES_P_JOB_OPERATE ? ROLE_OPERATOR : ROLE_VIEWER, d1, doing,
                       why, why_cap);
    case ROUTES_P_JOB_CREATE:
        if (body_text(req, "domain", "", d1, sizeof d1) != LOOK_FOUND)
            return 0;
        if (body_text(req, "name", NULL, d2, sizeof d2) != LOOK_FOUND)
            snprintf(d2, sizeof d2, "(unnamed)");
        doing_object(req, "job", d2, doing, sizeof doing);
        return need_on(req, ROLE_OPERATOR, d1, doing, why, why_cap);
    case ROUTES_P_JOB_REPLACE:
        l = job_domain(s, name, false, d1, sizeof d1, &err);
        if (l != LOOK_FOUND)
            return looked(l, &err, why, why_cap);
        doing_object(req, "job", name, doing, sizeof doing);
        if ((rc = need_on(req, ROLE_OPERATOR, d1, doing, why, why_cap)) != 0)
            return rc;
        /* PUT replaces all (no domain: the root); PATCH keeps what it does not name */
        if (body_text(req, "domain", req->method == HTTP_PATCH ? NULL : "", d2, sizeof d2) !=
            LOOK_FOUND) {
            json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
            bool named = json_object_get(body, "domain") != NULL;
            bool null = json_is_null(json_object_get(body, "domain"));
            json_decref(body);
            if (req->method != HTTP_PATCH || (named && !null))
                return 0; /* the handler refuses the body */
            snprintf(d2, sizeof d2, "%s", named ? "" : d1);
        }
        if (strcmp(d1, d2) == 0)
            return 0;
        snprintf(doing, sizeof doing, "moving job %s from %s to %s", name, d1[0] ? d1 : "the root",
                 d2[0] ? d2 : "the root");
        return need_on(req, ROLE_OPERATOR, d2, doing, why, why_cap);
    case ROUTES_P_JOB_RESTORE:
        doing_object(req, "job", name, doing, sizeof doing);
        l = job_domain(s, name, false, d1, sizeof d1, &err);
        if (l == LOOK_FAILED)
            return looked(l, &err, why, why_cap);
        if (l == LOOK_FOUND && (rc = need_on(req, ROLE_OPERATOR, d1, doing, why, why_cap)) != 0)
            return rc;
        l = restored_domain(s, req, d2, sizeof d2, &err);
        if (l != LOOK_FOUND)
            return looked(l, &err, why, why_cap);
        return need_on(req, ROLE_OPERATOR, d2, doing, why, why_cap);
    case ROUTES_P_RUN_READ:
    case ROUTES_P_RUN_OPERATE:
        l = run_domain(s, name, d1, sizeof d1, &err);
        if (l != LOOK_FOUND)
            return looked(l, &err, why, why_cap);
        doing_object(req, "run", name, doing, sizeof doing);
        return need_on(req, perm == ROUTES_P_RUN_OPERATE ? ROLE_OPERATOR : ROLE_VIEWER, d1, doing,
                       why, why_cap);
    case ROUTES_P_DOMAIN_READ:
    case ROUTES_P_DOMAIN_WRITE:
        doing_object(req, "domain", name, doing, sizeof doing);
        return need_on(req, perm == ROUTES_P_DOMAIN_WRITE ? ROLE_ADMIN : ROLE_VIEWER, name, doing,
                       why, why_cap);
    case ROUTES_P_DOMAIN_CREATE:
        if (body_text(req, "path", NULL, d1, sizeof d1) != LOOK_FOUND)
            return 0;
        doing_object(req, "domain", d1, doing, sizeof doing);
        return need_on(req, ROLE_ADMIN, d1, doing, why, why_cap);
    case ROUTES_P_CALENDAR_WRITE:
        if (req->n_params == 0 && body_text(req, "name", NULL, d2, sizeof d2) == LOOK_FOUND)
            name = d2;
        doing_object(req, "calendar", name[0] ? name : "(unnamed)", doing, sizeof doing);
        return need_on(req, ROLE_OPERATOR, "", doing, why, why_cap);
    case ROUTES_P_UNDECLARED: break;
    }
    snprintf(why, why_cap, "%s %s declares no permission (a bug): refused", req->path,
             verb_of(req));
    return TY_EPERM;
}
