/*
 * routes_tokens.c - API tokens: who may call the API, and /api/v1/tokens.
 *
 * Two kinds of token let a request in.  The data directory's `token` file is the
 * bootstrap token, named "default": the server makes it on its first start and the CLI
 * on the same machine reads it (--data).  Named tokens are made through the API (POST
 * /tokens), for people and machines elsewhere; each can expire and can be revoked on its
 * own.  The bootstrap token has the whole API; a named token has the roles it was made
 * with (grants on domain subtrees, viewer of the whole tree when none are given - the
 * least that is still of use; tokens made before schema 5 became admins of the whole
 * tree).  Names are for audit (`who` of every change, every refusal in the log) and for
 * revoking one client without touching the others.  Only a root admin makes, lists and
 * revokes tokens.
 *
 * Only the SHA-256 of a named token's secret is stored; the secret is in the answer to
 * POST /tokens and nowhere else.  A request's bearer token is hashed and looked up.
 *
 * The cache.  Looking a token up in the store for every request would put a database
 * read (and the store's "last used" write) on every call, so found tokens are cached by
 * hash: name, expiry, revocation, grants.  Expiry is checked against the clock at every request,
 * from the cache.  Revocation cannot go stale: this server is the only writer of tokens,
 * and the revoke handler drops the name from the cache in the same critical section (the
 * config lock) in which it writes the store - a lookup also holds that lock from the
 * store read to the cache insert, so it cannot put back what a revoke just removed.  An
 * entry is looked up again after CACHE_TTL_MS, which is also how often the store learns
 * that a token is still in use (its last_used_at is minute-accurate).
 *
 * The "default" token cannot be revoked through the API: it is how the operator on this
 * machine gets in (the CLI with --data reads it), and a revoke from a leaked named token
 * would lock them out.  To replace it, stop the server, delete DATA/token, start it: a
 * new one is made.  Its name cannot be taken by a named token.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/civil.h"
#include "../core/strmap.h"
#include "../os/log.h"
#include "routes_impl.h"
#include "token.h"

#define BOOTSTRAP_NAME "default"
#define CACHE_TTL_MS   60000
#define CACHE_MAX      4096 /* entries; the cache is emptied when it would grow past */

struct cached_token {
    char name[HTTP_WHO_MAX];
    int64_t expires_at_ms; /* 0: never */
    int64_t revoked_at_ms; /* 0: not revoked */
    int64_t checked_ms;    /* when the store was asked */
    size_t n_grants;
    struct role_grant *grants; /* malloc'd, n_grants of them (NULL when none) */
};

static void token_free(struct cached_token *t)
{
    if (t != NULL)
        free(t->grants);
    free(t);
}

/* One server per process: the cache is the process's (as the server itself is). */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct strmap cache; /* hex hash -> struct cached_token* */

static void cache_clear_locked(void)
{
    size_t pos = 0;
    const char *key;
    void *v;
    while (strmap_next(&cache, &pos, &key, &v))
        token_free(v);
    strmap_free(&cache);
    strmap_init(&cache);
}

/* Drop every entry of the token `name`.  Called with the config lock held. */
static void cache_forget(const char *name)
{
    pthread_mutex_lock(&cache_mu);
    size_t pos = 0;
    const char *key;
    void *v;
    char hashes[8][TOKEN_HASH_HEX];
    size_t n;
    do { /* strmap_next must not run across a delete: collect, then delete */
        n = 0;
        pos = 0;
        while (n < 8 && strmap_next(&cache, &pos, &key, &v)) {
            if (strcmp(((struct cached_token *)v)->name, name) == 0)
                snprintf(hashes[n++], TOKEN_HASH_HEX, "%s", key);
        }
        for (size_t i = 0; i < n; i++)
            token_free(strmap_del(&cache, hashes[i]));
    } while (n == 8);
    pthread_mutex_unlock(&cache_mu);
}

/* Keep t (its grants copied) for the token with this hash. */
static void cache_put(const char *hash, const struct cached_token *t)
{
    struct role_grant *g = NULL;
    if (t->n_grants > 0 && (g = malloc(t->n_grants * sizeof *g)) == NULL)
        return; /* not cached: looked up again next time */
    if (g != NULL)
        memcpy(g, t->grants, t->n_grants * sizeof *g);
    pthread_mutex_lock(&cache_mu);
    if (cache.len >= CACHE_MAX)
        cache_clear_locked();
    struct cached_token *c = strmap_get(&cache, hash);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL && strmap_put(&cache, hash, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    if (c != NULL) {
        free(c->grants);
        *c = *t;
        c->grants = g;
        g = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    free(g);
}

/* The cached token with this hash, fresh enough, into *out and its grants into p. */
static bool cache_get(const char *hash, int64_t now_ms, struct cached_token *out,
                      struct routes_principal *p)
{
    pthread_mutex_lock(&cache_mu);
    const struct cached_token *c = strmap_get(&cache, hash);
    bool hit = c != NULL && now_ms - c->checked_ms < CACHE_TTL_MS && now_ms >= c->checked_ms;
    if (hit) {
        *out = *c;
        out->grants = NULL;
        p->n_grants = c->n_grants;
        if (c->n_grants > 0)
            memcpy(p->grants, c->grants, c->n_grants * sizeof *c->grants);
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

/* A stored token (token_list's shape) and its grants as the cache keeps it; the grants go
 * into p, which t->grants then points at. */
static void from_store(const json_t *o, const json_t *grants, int64_t now_ms,
                       struct cached_token *t, struct routes_principal *p)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", json_string_value(json_object_get(o, "name")));
    t->expires_at_ms = json_integer_value(json_object_get(o, "expires_at_ms"));
    t->revoked_at_ms = json_integer_value(json_object_get(o, "revoked_at_ms"));
    t->checked_ms = now_ms;
    size_t n = 0;
    if (role_grants_from_json(grants, "grants", p->grants, ROLE_GRANTS_MAX, &n, NULL) != 0)
        n = 0; /* the store holds what the API checked; anything else gives no right */
    p->n_grants = n;
    t->n_grants = n;
    t->grants = p->grants;
}

static void format_ms(int64_t ms, char buf[CIVIL_RFC3339_MAX])
{
    civil_format_rfc3339(ms / 1000, 0, buf);
}

int routes__token_principal(struct server *s, const char *bearer, size_t len,
                            struct routes_principal *p, char *why, size_t why_cap)
{
    char hash[TOKEN_HASH_HEX];
    if (token_hash(bearer, len, hash) != 0) {
        snprintf(why, why_cap, "the token could not be hashed (GnuTLS)");
        return TY_EIO;
    }
    int64_t now_ms = server_now_ms(s);
    struct cached_token t;
    if (!cache_get(hash, now_ms, &t, p)) {
        json_t *o = NULL, *grants = NULL;
        struct ty_err err;
        ty_err_clear(&err);
        struct store *cs = server_config_lock(s);
        int rc = store_token_lookup(cs, hash, &o, &err);
        if (rc == 0)
            rc = store_grants_get(cs, STORE_P_TOKEN, json_string_value(json_object_get(o, "name")),
                                  &grants, &err);
        if (rc == 0) {
            from_store(o, grants, now_ms, &t, p);
            cache_put(hash, &t);
        }
        server_config_unlock(s);
        json_decref(o);
        json_decref(grants);
        if (rc == TY_ENOENT) {
            snprintf(why, why_cap, "wrong bearer token (no token has this secret)");
            return TY_EAUTH;
        }
        if (rc != 0) {
            snprintf(why, why_cap, "the token could not be checked: %s", err.msg);
            return rc == TY_EAUTH ? TY_EIO : rc;
        }
    }
    char when[CIVIL_RFC3339_MAX];
    if (t.revoked_at_ms > 0) {
        format_ms(t.revoked_at_ms, when);
        snprintf(why, why_cap, "token \"%s\" was revoked at %s", t.name, when);
        return TY_EAUTH;
    }
    if (t.expires_at_ms > 0 && now_ms >= t.expires_at_ms) {
        format_ms(t.expires_at_ms, when);
        snprintf(why, why_cap, "token \"%s\" expired at %s", t.name, when);
        return TY_EAUTH;
    }
    p->kind = ROUTES_K_TOKEN;
    snprintf(p->name, sizeof p->name, "%s", t.name);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Routes
 */

/* The caller, for `created_by` and logs. */
static const char *caller(const struct http_request *req)
{
    return req->who != NULL ? req->who : req->remote;
}

static void h_tokens_create(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *body;
    struct ty_err err;
    ty_err_clear(&err);
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "expires_in_s") != 0 &&
            strcmp(key, "grants") != 0) {
            rc = ty_error(&err, TY_EINVAL, key, -1, 0,
                          "unknown field \"%.64s\" (known: name, expires_in_s, grants)", key);
            break;
        }
    }
    /* the roles it has: the ones given, else viewer of the whole tree */
    struct role_grant grants[ROLE_GRANTS_MAX] = {{"", ROLE_VIEWER}};
    size_t n_grants = 1;
    const json_t *jg = json_object_get(body, "grants");
    if (rc == 0 && jg != NULL && !json_is_null(jg))
        rc = role_grants_from_json(jg, "grants", grants, ROLE_GRANTS_MAX, &n_grants, &err);
    json_t *stored_grants = rc == 0 ? role_grants_to_json(grants, n_grants) : NULL;
    const json_t *jn = json_object_get(body, "name");
    const json_t *je = json_object_get(body, "expires_in_s");
    const char *name = json_string_value(jn);
    int64_t expires_in = 0;
    if (rc == 0 && name == NULL)
        rc = ty_error(&err, TY_EINVAL, "name", -1, 0,
                      jn ? "name: expected a string" : "name: missing; every token needs a name");
    if (rc == 0 && name != NULL)
        rc = job_check_name("name", name, &err);
    if (rc == 0 && name != NULL && strcmp(name, BOOTSTRAP_NAME) == 0)
        rc = ty_error(&err, TY_EEXIST, "name", -1, 0,
                      "name: \"%s\" is the data directory's own token; choose another name",
                      BOOTSTRAP_NAME);
    if (rc == 0 && je != NULL && !json_is_null(je)) {
        if (!json_is_integer(je) || json_integer_value(je) < 1 ||
            json_integer_value(je) > TOKEN_EXPIRES_MAX)
            rc = ty_error(&err, TY_EINVAL, "expires_in_s", -1, 0,
                          "expires_in_s: expected whole seconds from 1 to %lld (ten years), or "
                          "null for a token that does not expire",
                          (long long)TOKEN_EXPIRES_MAX);
        else
            expires_in = json_integer_value(je);
    }
    char secret[TOKEN_SECRET_LEN + 1], hash[TOKEN_HASH_HEX];
    if (rc == 0)
        rc = token_generate(secret, &err);
    if (rc == 0 && token_hash(secret, strlen(secret), hash) != 0)
        rc = ty_error(&err, TY_EIO, NULL, -1, 0, "the token could not be hashed (GnuTLS)");
    int64_t now_ms = server_now_ms(s);
    int64_t expires_at_ms = expires_in > 0 ? now_ms + expires_in * 1000 : 0;
    if (rc == 0 && stored_grants == NULL)
        rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc == 0) { /* the token and its grants: both or neither */
        struct store *cs = server_config_lock(s);
        bool open = (rc = store_begin(cs, &err)) == 0;
        if (rc == 0)
            rc = store_token_put(cs, name, hash, expires_at_ms, caller(req), &err);
        if (rc == 0)
            rc = store_grants_set(cs, STORE_P_TOKEN, name, stored_grants, &err);
        if (rc == 0)
            rc = store_commit(cs, &err);
        else if (open)
            store_rollback(cs);
        server_config_unlock(s);
        if (rc == TY_EEXIST)
            ty_error(&err, TY_EEXIST, "name", -1, 0,
                     "a token named \"%s\" exists (or existed: a revoked token's name is not "
                     "used again); choose another name",
                     name);
    }
    if (rc != 0) {
        log_info("token not created", "by=%s error=\"%s\"", caller(req), err.msg);
        http_error(resp, &err);
        json_decref(stored_grants);
        json_decref(body);
        return;
    }
    char roles[512];
    role_describe(grants, n_grants, roles, sizeof roles);
    log_info("token created", "name=%s by=%s expires_at_ms=%lld roles=\"%s\"", name, caller(req),
             (long long)expires_at_ms, roles);
    char when[CIVIL_RFC3339_MAX];
    if (expires_at_ms > 0)
        format_ms(expires_at_ms, when);
    resp->status = 201;
    resp->body = json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", name, "token", secret, "expires_at",
                           expires_at_ms > 0 ? json_string(when) : json_null(), "expires_at_ms",
                           expires_at_ms > 0 ? json_integer(expires_at_ms) : json_null(), "grants",
                           stored_grants);
    memset(secret, 0, sizeof secret);
    json_decref(body);
}

/* A *_ms field as the API shows it: null when unset (0). */
static void null_if_zero(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || (json_is_integer(v) && json_integer_value(v) <= 0))
        json_object_set_new(o, key, json_null());
}

static void h_tokens_list(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    (void)req;
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *list = NULL;
    if (st == NULL || store_token_list(st, &list, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    int64_t now_ms = server_now_ms(s);
    json_t *items = json_array();
    json_array_append_new(
        items, json_pack("{s:s, s:s, s:n, s:n, s:n, s:n, s:n, s:b, s:[{s:s, s:s}]}", "name",
                         BOOTSTRAP_NAME, "status", "active", "created_at_ms", "expires_at_ms",
                         "revoked_at_ms", "last_used_at_ms", "created_by", "bootstrap", 1, "grants",
                         "domain", "", "role", "admin"));
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        json_t *o = json_deep_copy(it);
        json_object_del(o, "hash"); /* never shown, should a store give it */
        int64_t revoked = json_integer_value(json_object_get(o, "revoked_at_ms"));
        int64_t expires = json_integer_value(json_object_get(o, "expires_at_ms"));
        const char *status = revoked > 0                        ? "revoked"
                             : expires > 0 && now_ms >= expires ? "expired"
                                                                : "active";
        json_object_set_new(o, "status", json_string(status));
        null_if_zero(o, "expires_at_ms");
        null_if_zero(o, "revoked_at_ms");
        null_if_zero(o, "last_used_at_ms");
        json_object_set_new(o, "bootstrap", json_false());
        json_t *grants = NULL;
        if (store_grants_get(st, STORE_P_TOKEN, json_string_value(json_object_get(o, "name")),
                             &grants, &err) != 0) {
            json_decref(o);
            json_decref(items);
            json_decref(list);
            http_error(resp, &err);
            return;
        }
        json_object_set_new(o, "grants", grants);
        json_array_append_new(items, o);
    }
    json_decref(list);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "items", items);
}

static void h_token_revoke(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    const char *name = req->params[0];
    struct ty_err err;
    ty_err_clear(&err);
    int rc;
    if (strcmp(name, BOOTSTRAP_NAME) == 0) {
        rc = ty_error(&err, TY_EINVAL, "name", -1, 0,
                      "token \"%s\" is the data directory's bootstrap token and cannot be "
                      "revoked through the API (the CLI on the server's machine uses it); to "
                      "replace it, stop the server, delete %s/token and start the server again",
                      BOOTSTRAP_NAME, server_data_dir(s));
    } else {
        struct store *cs = server_config_lock(s);
        rc = store_token_revoke(cs, name, server_now_ms(s), &err);
        if (rc == 0)
            cache_forget(name); /* under the config lock: see the top of this file */
        server_config_unlock(s);
        if (rc == TY_ENOENT)
            ty_error(&err, TY_ENOENT, "name", -1, 0, "no token named \"%.128s\"", name);
    }
    if (rc != 0) {
        http_error(resp, &err);
        return;
    }
    log_info("token revoked", "name=%s by=%s", name, caller(req));
    resp->status = 204;
}

const struct http_route routes_tokens[] = {
    {HTTP_POST, "/api/v1/tokens", h_tokens_create, false, NULL, 0, ROUTES_P_ROOT},
    {HTTP_GET, "/api/v1/tokens", h_tokens_list, false, NULL, 0, ROUTES_P_ROOT},
    {HTTP_DELETE, "/api/v1/tokens/{name}", h_token_revoke, false, NULL, 0, ROUTES_P_ROOT},
};
const size_t routes_tokens_n = sizeof routes_tokens / sizeof routes_tokens[0];
