/*
 * routes_users.c - people: signing in and out (/api/v1/session), their passwords, the
 * users an admin manages (/api/v1/users), and the first user of a new installation.
 *
 * Sessions.  Signing in with a user's name and password makes a session: 256 random bits
 * the browser keeps in an HttpOnly, SameSite=Strict cookie (Secure under TLS), of which the
 * store keeps only the SHA-256, and a CSRF token the page echoes in X-CSRF-Token on every
 * request that changes something (a cross-site form can send the cookie's name but never
 * read the token).  A session ends after ROUTES_SESSION_IDLE_MS unused or
 * ROUTES_SESSION_MAX_MS in all, at sign-out, and when its user's password changes (the
 * session that changed it stays) or the user is deleted.  Its last use is written at most
 * once a minute, so idle expiry is minute-accurate and a busy page does not write on every
 * request.
 *
 * Sign-in failures.  ROUTES_SIGNIN_FAILURES in a row lock the user for ROUTES_LOCK_MS: the
 * store counts them atomically (several servers may share it).  An unknown name is
 * answered exactly as a known one with a wrong password - the same words, the same 401,
 * and the same work (its password is checked against a dummy hash, since skipping that
 * would answer faster) - and is locked out the same way, counted in memory, so a lock-out
 * does not tell which names exist either.  A locked name gets 429 with Retry-After.
 *
 * Passwords are Argon2id (password.c); a hash made with older limits is made again at the
 * next good sign-in.  A user made by an admin, and a password an admin resets, must be
 * changed at the next sign-in; until then the user may only do that (routes_auth.c).
 *
 * The first start: a store without users gets "admin", an admin of the whole tree, with
 * a one-time password the server prints once and leaves in DATA/initial-admin-password
 * (0600) until it is changed.  There is no default password.
 *
 * Everything is logged: sign-ins, refusals with their reason, lock-outs, sign-outs,
 * password changes, users made, changed and deleted (no password ever).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/civil.h"
#include "../core/strmap.h"
#include "../os/log.h"
#include "cookie.h"
#include "password.h"
#include "routes_impl.h"

#define TOUCH_EVERY_MS 60000 /* a session's last use is written at most this often */
#define UNKNOWN_MAX    4096  /* unknown names whose failures are counted; then forgotten */
#define CSRF_MAX       128   /* bytes of a session's CSRF token (ours are 64) */

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

static void fail(struct http_response *resp, const struct ty_err *err)
{
    http_error(resp, err);
}

static void format_ms(int64_t ms, char buf[CIVIL_RFC3339_MAX])
{
    civil_format_rfc3339(ms / 1000, 0, buf);
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[CIVIL_RFC3339_MAX];
    format_ms(ms, buf);
    return json_string(buf);
}

/* Refuse a field of body not in known[n]. */
static int known_fields(const json_t *body, const char *const *known, size_t n, struct ty_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char list[256] = "";
            struct strbuf sb;
            sb_init_fixed(&sb, list, sizeof list);
            for (size_t i = 0; i < n; i++)
                sb_addf(&sb, "%s%s", i ? ", " : "", known[i]);
            return ty_error(err, TY_EINVAL, key, -1, 0, "unknown field \"%.64s\" (known: %s)", key,
                            list);
        }
    }
    return 0;
}

/* body[key] as a string: required, or NULL when absent (or null). */
static int text_field(const json_t *body, const char *key, bool required, const char **out,
                      struct ty_err *err)
{
    const json_t *v = json_object_get(body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return required ? ty_error(err, TY_EINVAL, key, -1, 0, "%s: missing", key) : 0;
    if (!json_is_string(v))
        return ty_error(err, TY_EINVAL, key, -1, 0, "%s: expected a string", key);
    *out = json_string_value(v);
    return 0;
}

/* The path of a file in the data directory, malloc'd. */
static char *data_path(struct server *s, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", server_data_dir(s), name) < 0)
        return NULL;
    return p;
}

/* The one-time password file goes once its user no longer needs it. */
static void forget_first_password(struct server *s, const char *user)
{
    if (strcmp(user, ROUTES_FIRST_USER) != 0)
        return;
    char *p = data_path(s, ROUTES_FIRST_FILE);
    if (p != NULL && unlink(p) == 0)
        log_info("removed the one-time password file", "path=%s user=%s", p, user);
    free(p);
}

/* A user (the store's, u borrowed) as the API shows it, never with its hash: a new
 * reference. */
static json_t *user_view(const json_t *u, int64_t now_ms)
{
    int64_t locked = json_integer_value(json_object_get(u, "locked_until_ms"));
    json_t *o = json_pack(
        "{s:O, s:O, s:O, s:b, s:o, s:o, s:O, s:O, s:O, s:O, s:O, s:O}", "name",
        json_object_get(u, "name"), "grants", json_object_get(u, "grants"), "must_change_password",
        json_object_get(u, "must_change_password"), "locked", locked > now_ms, "locked_until",
        time_or_null(locked > now_ms ? locked : 0), "locked_until_ms",
        locked > now_ms ? json_integer(locked) : json_null(), "failed_attempts",
        json_object_get(u, "failed_attempts"), "created_at_ms", json_object_get(u, "created_at_ms"),
        "created_by", json_object_get(u, "created_by"), "updated_at_ms",
        json_object_get(u, "updated_at_ms"), "password_changed_at_ms",
        json_object_get(u, "password_changed_at_ms"), "last_signin_at_ms",
        json_object_get(u, "last_signin_at_ms"));
    return o;
}

/* ---------------------------------------------------------------------------------------
 * Failed sign-ins of names that are no user's, counted as a user's would be.
 */

struct unknown {
    int failures;
    int64_t locked_until_ms;
};

static pthread_mutex_t unknown_mu = PTHREAD_MUTEX_INITIALIZER;
static struct strmap unknown; /* name -> struct unknown* */

static int64_t unknown_locked(const char *name, int64_t now_ms)
{
    pthread_mutex_lock(&unknown_mu);
    const struct unknown *u = strmap_get(&unknown, name);
    int64_t until = u != NULL && u->locked_until_ms > now_ms ? u->locked_until_ms : 0;
    pthread_mutex_unlock(&unknown_mu);
    return until;
}

/* Count a failure; the lock's end when it locked the name, else 0. */
static int64_t unknown_failed(const char *name, int64_t now_ms)
{
    pthread_mutex_lock(&unknown_mu);
    if (unknown.len >= UNKNOWN_MAX) {
        size_t pos = 0;
        const char *k;
        void *v;
        while (strmap_next(&unknown, &pos, &k, &v))
            free(v);
        strmap_free(&unknown);
        strmap_init(&unknown);
    }
    struct unknown *u = strmap_get(&unknown, name);
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        if (u != NULL && strmap_put(&unknown, name, u) != 0) {
            free(u);
            u = NULL;
        }
    }
    int64_t until = 0;
    if (u != NULL && ++u->failures >= ROUTES_SIGNIN_FAILURES) {
        u->failures = 0;
        u->locked_until_ms = until = now_ms + ROUTES_LOCK_MS;
    }
    pthread_mutex_unlock(&unknown_mu);
    return until;
}

/* A hash no password matches, for names that are no user's: the same work as a real one. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[PASSWORD_HASH_MAX];

static void make_dummy(void)
{
    char pw[PASSWORD_RANDOM_HEX];
    password_random_hex(pw);
    if (password_hash(pw, strlen(pw), dummy_hash, NULL) != 0)
        dummy_hash[0] = '\0';
}

static void verify_dummy(const char *pw, size_t len)
{
    pthread_once(&dummy_once, make_dummy);
    (void)password_verify(dummy_hash, pw, len);
}

/* ---------------------------------------------------------------------------------------
 * Sessions: the cookie's principal
 */

static bool is_hex64(const char *v, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return false;
    return true;
}

/* A session's user (with grants) into p; TY_EAUTH when it is gone. */
static int fill_user(struct store *st, const char *name, struct routes_principal *p, char *why,
                     size_t why_cap)
{
    json_t *u = NULL;
    struct ty_err err;
    int rc = store_user_get(st, name, &u, &err);
    if (rc == TY_ENOENT) {
        snprintf(why, why_cap, "the session's user \"%s\" no longer exists", name);
        return TY_EAUTH;
    }
    if (rc != 0) {
        snprintf(why, why_cap, "the session could not be checked: %s", err.msg);
        return rc == TY_EAUTH ? TY_EIO : rc;
    }
    size_t n = 0;
    if (role_grants_from_json(json_object_get(u, "grants"), "grants", p->grants, ROLE_GRANTS_MAX,
                              &n, NULL) != 0)
        n = 0;
    p->n_grants = n;
    p->must_change = json_is_true(json_object_get(u, "must_change_password"));
    p->kind = ROUTES_K_USER;
    snprintf(p->name, sizeof p->name, "%s", name);
    json_decref(u);
    return 0;
}

int routes__session_principal(struct server *s, const struct http_credentials *cred,
                              struct routes_principal *p, char *why, size_t why_cap)
{
    if (cred->session_ambiguous) {
        snprintf(why, why_cap, "two different %s cookies came: sign out and in again",
                 ROUTES_SESSION_COOKIE);
        return TY_EAUTH;
    }
    if (!is_hex64(cred->session, cred->session_len)) {
        snprintf(why, why_cap, "the %s cookie is not one this server made: sign in again",
                 ROUTES_SESSION_COOKIE);
        return TY_EAUTH;
    }
    char hash[TOKEN_HASH_HEX];
    if (token_hash(cred->session, cred->session_len, hash) != 0) {
        snprintf(why, why_cap, "the session could not be hashed (GnuTLS)");
        return TY_EIO;
    }
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *ss = NULL;
    int rc =
        st == NULL ? (err.code != 0 ? err.code : TY_EIO) : store_session_get(st, hash, &ss, &err);
    if (rc == TY_ENOENT) {
        snprintf(why, why_cap, "no such session (signed out, ended, or never made): sign in again");
        return TY_EAUTH;
    }
    if (rc != 0) {
        snprintf(why, why_cap, "the session could not be checked: %s", err.msg);
        return rc == TY_EAUTH ? TY_EIO : rc;
    }
    int64_t now = server_now_ms(s);
    int64_t expires = json_integer_value(json_object_get(ss, "expires_at_ms"));
    int64_t seen = json_integer_value(json_object_get(ss, "last_seen_ms"));
    char user[HTTP_WHO_MAX], csrf[CSRF_MAX + 1];
    snprintf(user, sizeof user, "%s", json_string_value(json_object_get(ss, "user")));
    snprintf(csrf, sizeof csrf, "%s", json_string_value(json_object_get(ss, "csrf")));
    json_decref(ss);
    char when[CIVIL_RFC3339_MAX];
    if (now >= expires) {
        format_ms(expires, when);
        snprintf(why, why_cap,
                 "the session of user %s ended at %s (sessions last %d days): sign "
                 "in again",
                 user, when, (int)(ROUTES_SESSION_MAX_MS / 86400000));
        return TY_EAUTH;
    }
    if (now >= seen + ROUTES_SESSION_IDLE_MS) {
        format_ms(seen + ROUTES_SESSION_IDLE_MS, when);
        snprintf(why, why_cap,
                 "the session of user %s ended at %s, %d hours after its last use: "
                 "sign in again",
                 user, when, (int)(ROUTES_SESSION_IDLE_MS / 3600000));
        return TY_EAUTH;
    }
    if (cred->method != HTTP_GET &&
        (cred->csrf == NULL || !token_equal(csrf, strlen(csrf), cred->csrf, strlen(cred->csrf)))) {
        p->kind = ROUTES_K_USER; /* for the log: who was refused */
        snprintf(p->name, sizeof p->name, "%s", user);
        snprintf(why, why_cap,
                 "%s X-CSRF-Token header: a signed-in browser's request that changes something "
                 "must send the session's csrf token (the answer to POST or GET /api/v1/session "
                 "has it)",
                 cred->csrf == NULL ? "missing" : "wrong");
        return TY_EPERM;
    }
    if ((rc = fill_user(st, user, p, why, why_cap)) != 0)
        return rc;
    snprintf(p->session, sizeof p->session, "%s", hash);
    p->expires_at_ms = expires;
    p->idle_at_ms = now + ROUTES_SESSION_IDLE_MS;
    if (now - seen >= TOUCH_EVERY_MS || now < seen) {
        struct store *cs = server_config_lock(s);
        if (store_session_touch(cs, hash, now, &err) != 0)
            log_warn("a session's last use could not be recorded", "user=%s error=\"%s\"", user,
                     err.msg);
        server_config_unlock(s);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * /api/v1/session
 */

/* What GET /session answers (and sign-in, with the csrf token) for principal p. */
static json_t *session_view(const struct routes_principal *p, const char *csrf)
{
    json_t *grants = p->all ? json_pack("[{s:s, s:s}]", "domain", "", "role", "admin")
                            : role_grants_to_json(p->grants, p->n_grants);
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:b, s:b}", "kind", p->kind == ROUTES_K_USER ? "user" : "token",
                  "name", p->name, "grants", grants ? grants : json_array(), "must_change_password",
                  p->must_change, "all", p->all);
    if (p->kind == ROUTES_K_USER) {
        json_object_set_new(o, "expires_at", time_or_null(p->expires_at_ms));
        json_object_set_new(o, "expires_at_ms", json_integer(p->expires_at_ms));
        json_object_set_new(o, "idle_expires_at", time_or_null(p->idle_at_ms));
        json_object_set_new(o, "idle_timeout_s", json_integer(ROUTES_SESSION_IDLE_MS / 1000));
        if (csrf != NULL)
            json_object_set_new(o, "csrf", json_string(csrf));
    }
    return o;
}

/* The answer to a sign-in that is refused: 401 for a wrong name or password, 429 with
 * Retry-After while the name is locked.  Both look the same whoever the name is. */
static void refuse_signin(struct http_response *resp, const char *user, int64_t locked_until,
                          int64_t now)
{
    struct ty_err err;
    if (locked_until > now) {
        int64_t secs = (locked_until - now + 999) / 1000;
        char when[CIVIL_RFC3339_MAX];
        format_ms(locked_until, when);
        ty_error(&err, TY_EBUSY, "user", -1, 0,
                 "user %s is locked after %d failed sign-ins in a row; try again at %s (in %lld "
                 "minutes), or ask an admin to unlock it",
                 user, ROUTES_SIGNIN_FAILURES, when, (long long)((secs + 59) / 60));
        http_error(resp, &err);
        resp->status = 429;
        json_object_set_new(json_object_get(resp->body, "error"), "code",
                            json_string("too_many_requests"));
        http_response_header(resp, "Retry-After", "%lld", (long long)secs);
        return;
    }
    ty_error(&err, TY_EAUTH, NULL, -1, 0, "sign-in failed: wrong user name or password");
    http_error(resp, &err);
}

/* Make the session of user u (a principal filled by fill_user) and answer 201 with it. */
static void open_session(struct server *s, const struct http_request *req,
                         struct routes_principal *p, struct http_response *resp)
{
    char id[PASSWORD_RANDOM_HEX], csrf[PASSWORD_RANDOM_HEX], hash[TOKEN_HASH_HEX];
    password_random_hex(id);
    password_random_hex(csrf);
    struct ty_err err;
    if (token_hash(id, strlen(id), hash) != 0) {
        ty_error(&err, TY_EIO, NULL, -1, 0, "the session could not be hashed (GnuTLS)");
        fail(resp, &err);
        return;
    }
    int64_t now = server_now_ms(s);
    struct store_session ss = {
        hash, p->name, csrf, now, now + ROUTES_SESSION_MAX_MS, now - ROUTES_SESSION_IDLE_MS};
    struct store *cs = server_config_lock(s);
    int rc = store_session_put(cs, &ss, &err);
    server_config_unlock(s);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    snprintf(p->session, sizeof p->session, "%s", hash);
    p->expires_at_ms = ss.expires_at_ms;
    p->idle_at_ms = now + ROUTES_SESSION_IDLE_MS;
    char roles[512];
    role_describe(p->grants, p->n_grants, roles, sizeof roles);
    log_info("signed in", "user=%s remote=%s roles=\"%s\" must_change_password=%s", p->name,
             req->remote, roles, p->must_change ? "true" : "false");
    struct strbuf sb;
    sb_init(&sb);
    cookie_session(&sb, ROUTES_SESSION_COOKIE, id, ROUTES_SESSION_MAX_MS / 1000, req->tls);
    if (!sb_failed(&sb))
        http_response_header(resp, "Set-Cookie", "%s", sb_str(&sb));
    sb_free(&sb);
    resp->status = 201;
    resp->body = session_view(p, csrf);
}

static void h_signin(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    static const char *const known[] = {"user", "password"};
    json_t *body = NULL;
    const char *user = NULL, *pw = NULL;
    struct ty_err err;
    int rc = http_body_json(req, &body, &err);
    if (rc == 0)
        rc = known_fields(body, known, 2, &err);
    if (rc == 0)
        rc = text_field(body, "user", true, &user, &err);
    if (rc == 0)
        rc = text_field(body, "password", true, &pw, &err);
    if (rc == 0)
        rc = job_check_name("user", user, &err);
    if (rc == 0 && strlen(pw) > PASSWORD_MAX)
        rc = ty_error(&err, TY_EINVAL, "password", -1, 0, "password: longer than %d bytes",
                      PASSWORD_MAX);
    if (rc != 0) {
        fail(resp, &err);
        json_decref(body);
        return;
    }
    char name[JOB_NAME_MAX + 1]; /* checked: it fits */
    snprintf(name, sizeof name, "%s", user);
    user = name; /* the body goes before the session is made */
    size_t pwlen = strlen(pw);
    int64_t now = server_now_ms(s);
    struct store *st = server_reader(s, &err);
    json_t *u = NULL;
    rc = st == NULL ? (err.code != 0 ? err.code : TY_EIO) : store_user_get(st, user, &u, &err);
    if (rc != 0 && rc != TY_ENOENT) {
        fail(resp, &err);
        json_decref(body);
        return;
    }
    if (rc == TY_ENOENT) { /* the same work and the same answers as a known name */
        int64_t locked = unknown_locked(user, now);
        verify_dummy(pw, pwlen);
        if (locked == 0)
            locked = unknown_failed(user, now);
        log_warn("sign-in refused", "user=%s remote=%s reason=\"%s\"", user, req->remote,
                 locked ? "locked out" : "no such user");
        refuse_signin(resp, user, locked, now);
        json_decref(body);
        return;
    }
    int64_t locked = json_integer_value(json_object_get(u, "locked_until_ms"));
    if (locked > now) {
        verify_dummy(pw, pwlen);
        log_warn("sign-in refused", "user=%s remote=%s reason=\"locked out\"", user, req->remote);
        refuse_signin(resp, user, locked, now);
        json_decref(u);
        json_decref(body);
        return;
    }
    const char *hash = json_string_value(json_object_get(u, "password_hash"));
    bool ok = password_verify(hash, pw, pwlen);
    bool rehash = ok && password_needs_rehash(hash);
    json_decref(u);
    u = NULL;
    struct store *cs = server_config_lock(s);
    rc = store_user_signin(cs, user, ok, now, ROUTES_SIGNIN_FAILURES, ROUTES_LOCK_MS, &u, &err);
    server_config_unlock(s);
    if (rc != 0) {
        if (rc == TY_ENOENT) /* deleted meanwhile */
            refuse_signin(resp, user, 0, now);
        else
            fail(resp, &err);
        json_decref(body);
        return;
    }
    if (!ok) {
        int64_t until = json_integer_value(json_object_get(u, "locked_until_ms"));
        if (until > now)
            log_warn("user locked out", "user=%s remote=%s failures=%d until_ms=%lld", user,
                     req->remote, ROUTES_SIGNIN_FAILURES, (long long)until);
        else
            log_warn("sign-in refused", "user=%s remote=%s reason=\"wrong password\" failures=%lld",
                     user, req->remote,
                     (long long)json_integer_value(json_object_get(u, "failed_attempts")));
        refuse_signin(resp, user, until, now);
        json_decref(u);
        json_decref(body);
        return;
    }
    json_decref(u);
    if (rehash) { /* made with older limits: again with today's, sessions untouched */
        char fresh[PASSWORD_HASH_MAX];
        struct store_user_change c = {
            .password_hash = fresh, .must_change = -1, .same_password = true};
        if (password_hash(pw, pwlen, fresh, &err) == 0) {
            cs = server_config_lock(s);
            if (store_user_update(cs, user, &c, now, &err) == 0)
                log_info("password hashed again with today's limits", "user=%s", user);
            server_config_unlock(s);
        }
    }
    json_decref(body);
    struct routes_principal *p = calloc(1, sizeof *p);
    char why[TY_ERR_MSG_MAX];
    if (p == NULL) {
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        fail(resp, &err);
        return;
    }
    if ((rc = fill_user(st, user, p, why, sizeof why)) != 0) {
        ty_error(&err, rc, NULL, -1, 0, "%s", why);
        fail(resp, &err);
    } else {
        open_session(s, req, p, resp);
    }
    free(p);
}

static void h_whoami(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    const struct routes_principal *p = routes__principal(req);
    char csrf[CSRF_MAX + 1] = "";
    if (p->kind == ROUTES_K_USER) { /* the page lost its csrf token with a reload */
        struct ty_err err;
        struct store *st = server_reader(s, &err);
        json_t *ss = NULL;
        if (st == NULL || store_session_get(st, p->session, &ss, &err) != 0) {
            fail(resp, &err);
            return;
        }
        snprintf(csrf, sizeof csrf, "%s", json_string_value(json_object_get(ss, "csrf")));
        json_decref(ss);
    }
    resp->status = 200;
    resp->body = session_view(p, csrf[0] ? csrf : NULL);
}

static void h_signout(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    const struct routes_principal *p = routes__principal(req);
    struct ty_err err;
    if (p->kind != ROUTES_K_USER) {
        ty_error(&err, TY_EINVAL, NULL, -1, 0,
                 "a token is not signed out but revoked (DELETE /api/v1/tokens/%s)", p->name);
        fail(resp, &err);
        return;
    }
    struct store *cs = server_config_lock(s);
    int rc = store_session_delete(cs, p->session, &err);
    server_config_unlock(s);
    if (rc != 0 && rc != TY_ENOENT) {
        fail(resp, &err);
        return;
    }
    log_info("signed out", "user=%s remote=%s", p->name, req->remote);
    struct strbuf sb;
    sb_init(&sb);
    cookie_session(&sb, ROUTES_SESSION_COOKIE, "", 0, req->tls);
    if (!sb_failed(&sb))
        http_response_header(resp, "Set-Cookie", "%s", sb_str(&sb));
    sb_free(&sb);
    resp->status = 204;
}

static void h_password(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    const struct routes_principal *p = routes__principal(req);
    static const char *const known[] = {"old", "new"};
    json_t *body = NULL;
    const char *old = NULL, *new_ = NULL;
    struct ty_err err;
    int rc = 0;
    if (p->kind != ROUTES_K_USER)
        rc = ty_error(&err, TY_EINVAL, NULL, -1, 0,
                      "token %s has no password; a user changes theirs, signed in", p->name);
    if (rc == 0)
        rc = http_body_json(req, &body, &err);
    if (rc == 0)
        rc = known_fields(body, known, 2, &err);
    if (rc == 0)
        rc = text_field(body, "old", true, &old, &err);
    if (rc == 0)
        rc = text_field(body, "new", true, &new_, &err);
    if (rc == 0)
        rc = password_check_new("new", new_, strlen(new_), p->name, &err);
    if (rc == 0 && strcmp(old, new_) == 0)
        rc = ty_error(&err, TY_EINVAL, "new", -1, 0, "new: the same as the old password");
    if (rc != 0) {
        fail(resp, &err);
        json_decref(body);
        return;
    }
    int64_t now = server_now_ms(s);
    struct store *st = server_reader(s, &err);
    json_t *u = NULL;
    if (st == NULL || store_user_get(st, p->name, &u, &err) != 0) {
        fail(resp, &err);
        json_decref(body);
        return;
    }
    int64_t locked = json_integer_value(json_object_get(u, "locked_until_ms"));
    bool ok =
        locked <= now &&
        password_verify(json_string_value(json_object_get(u, "password_hash")), old, strlen(old));
    json_decref(u);
    if (!ok) { /* a wrong old password counts as a failed sign-in */
        int64_t until = locked;
        if (locked <= now) {
            struct store *cs = server_config_lock(s);
            json_t *after = NULL;
            if (store_user_signin(cs, p->name, false, now, ROUTES_SIGNIN_FAILURES, ROUTES_LOCK_MS,
                                  &after, &err) == 0)
                until = json_integer_value(json_object_get(after, "locked_until_ms"));
            server_config_unlock(s);
            json_decref(after);
        }
        log_warn("password not changed", "user=%s remote=%s reason=\"%s\"", p->name, req->remote,
                 until > now ? "locked out" : "wrong old password");
        if (until > now) {
            refuse_signin(resp, p->name, until, now);
        } else {
            ty_error(&err, TY_EINVAL, "old", -1, 0, "old: not the current password");
            fail(resp, &err);
        }
        json_decref(body);
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    rc = password_hash(new_, strlen(new_), hash, &err);
    json_decref(body);
    if (rc == 0) {
        struct store_user_change c = {
            .password_hash = hash, .must_change = 0, .keep_session = p->session};
        struct store *cs = server_config_lock(s);
        rc = store_user_update(cs, p->name, &c, now, &err);
        server_config_unlock(s);
    }
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    log_info("password changed", "user=%s by=user:%s remote=%s", p->name, p->name, req->remote);
    forget_first_password(s, p->name);
    struct routes_principal after = *p;
    after.must_change = false;
    resp->status = 200;
    resp->body = session_view(&after, NULL);
}

/* ---------------------------------------------------------------------------------------
 * /api/v1/users
 */

/* Whether the caller is an admin of the whole tree (or the bootstrap token). */
static bool root_admin(const struct http_request *req)
{
    return routes__may(req, ROLE_ADMIN, "");
}

/* The grants of user view u the caller may see: all for a root admin, else those within
 * the caller's admin subtrees. */
static void filter_grants(const struct http_request *req, json_t *u)
{
    if (root_admin(req))
        return;
    json_t *kept = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(u, "grants"), i, g)
    {
        if (routes__may(req, ROLE_ADMIN, json_string_value(json_object_get(g, "domain"))))
            json_array_append(kept, g);
    }
    json_object_set_new(u, "grants", kept);
}

static void h_users_list(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *list = NULL;
    if (st == NULL || store_user_list(st, &list, &err) != 0) {
        fail(resp, &err);
        return;
    }
    int64_t now = server_now_ms(s);
    json_t *items = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u)
    {
        json_t *v = user_view(u, now);
        filter_grants(req, v);
        json_array_append_new(items, v);
    }
    json_decref(list);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "items", items);
}

static void h_user_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *u = NULL;
    int rc = st == NULL ? (err.code != 0 ? err.code : TY_EIO)
                        : store_user_get(st, req->params[0], &u, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "name", -1, 0, "no user named \"%.128s\"", req->params[0]);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    json_t *v = user_view(u, server_now_ms(s));
    json_decref(u);
    filter_grants(req, v);
    resp->status = 200;
    resp->body = v;
}

/* The grants a body gives ("grants"), checked, into g[*n]; absent: *given false. */
static int body_grants(const json_t *body, struct role_grant *g, size_t *n, bool *given,
                       struct ty_err *err)
{
    const json_t *jg = json_object_get(body, "grants");
    *n = 0;
    *given = jg != NULL && !json_is_null(jg);
    return *given ? role_grants_from_json(jg, "grants", g, ROLE_GRANTS_MAX, n, err) : 0;
}

static void h_users_create(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    static const char *const known[] = {"name", "password", "must_change_password", "grants"};
    json_t *body = NULL;
    const char *name = NULL, *pw = NULL;
    struct ty_err err;
    struct role_grant *grants = calloc(ROLE_GRANTS_MAX, sizeof *grants);
    size_t n = 0;
    bool given = false;
    int rc = grants == NULL ? ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory") : 0;
    if (rc == 0)
        rc = http_body_json(req, &body, &err);
    if (rc == 0)
        rc = known_fields(body, known, 4, &err);
    if (rc == 0)
        rc = text_field(body, "name", true, &name, &err);
    if (rc == 0)
        rc = job_check_name("name", name, &err);
    if (rc == 0)
        rc = text_field(body, "password", false, &pw, &err);
    if (rc == 0 && pw != NULL)
        rc = password_check_new("password", pw, strlen(pw), name, &err);
    const json_t *mc = json_object_get(body, "must_change_password");
    if (rc == 0 && mc != NULL && !json_is_boolean(mc))
        rc = ty_error(&err, TY_EINVAL, "must_change_password", -1, 0,
                      "must_change_password: expected true or false");
    if (rc == 0)
        rc = body_grants(body, grants, &n, &given, &err);
    /* without a password one is made, to be changed at the first sign-in */
    char one_time[PASSWORD_ONE_TIME + 1] = "";
    if (rc == 0 && pw == NULL) {
        password_one_time(one_time);
        pw = one_time;
    }
    char hash[PASSWORD_HASH_MAX];
    if (rc == 0)
        rc = password_hash(pw, strlen(pw), hash, &err);
    json_t *jg = rc == 0 ? role_grants_to_json(grants, n) : NULL;
    if (rc == 0 && jg == NULL)
        rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (rc == 0) {
        bool must = one_time[0] != '\0' || mc == NULL || json_is_true(mc);
        struct store_user u = {name, hash, must, jg};
        struct store *cs = server_config_lock(s);
        rc = store_user_create(cs, &u, req->who, server_now_ms(s), &err);
        server_config_unlock(s);
    }
    if (rc != 0) {
        fail(resp, &err);
    } else {
        char roles[512];
        role_describe(grants, n, roles, sizeof roles);
        log_info("user created", "user=%s by=%s roles=\"%s\"", name, req->who ? req->who : "?",
                 roles);
        struct store *st = server_reader(s, &err);
        json_t *u = NULL;
        if (st == NULL || store_user_get(st, name, &u, &err) != 0) {
            fail(resp, &err);
        } else {
            resp->status = 201;
            resp->body = user_view(u, server_now_ms(s));
            if (one_time[0] != '\0')
                json_object_set_new(resp->body, "password", json_string(one_time));
        }
        json_decref(u);
    }
    json_decref(jg);
    json_decref(body);
    free(grants);
}

/* Grants a subtree admin sends replace the user's grants within the admin's subtrees; the
 * ones outside stay.  new_[0..*nn) becomes the user's whole list; TY_EPERM for a grant sent
 * outside. */
static int merge_grants(const struct http_request *req, const struct role_grant *old, size_t no,
                        struct role_grant *new_, size_t *nn, struct ty_err *err)
{
    const struct routes_principal *p = routes__principal(req);
    char who[HTTP_WHO_MAX + 8];
    routes__describe(p, who, sizeof who);
    size_t n = *nn;
    for (size_t i = 0; i < n; i++) {
        char doing[DOMAIN_PATH_MAX + 64];
        snprintf(doing, sizeof doing, "granting %s on %s", role_name(new_[i].role),
                 new_[i].domain[0] ? new_[i].domain : "the whole tree");
        int rc = routes__check(req, ROLE_ADMIN, new_[i].domain, doing, err);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < no; i++) {
        if (routes__may(req, ROLE_ADMIN, old[i].domain))
            continue; /* the admin's to change: replaced by what was sent */
        bool sent = false;
        for (size_t k = 0; k < n && !sent; k++)
            sent = strcmp(new_[k].domain, old[i].domain) == 0;
        if (sent) /* cannot happen: sent grants lie in the admin's subtrees */
            continue;
        if (n >= ROLE_GRANTS_MAX)
            return ty_error(err, TY_EINVAL, "grants", -1, 0, "grants: more than %d in all",
                            ROLE_GRANTS_MAX);
        new_[n++] = old[i];
    }
    *nn = n;
    return p->all ? 0 : role_check_grant_edit(p->grants, p->n_grants, old, no, new_, n, who, err);
}

static void h_user_put(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    static const char *const known[] = {"password", "must_change_password", "grants", "unlock"};
    const char *name = req->params[0];
    json_t *body = NULL, *cur = NULL, *jg = NULL;
    const char *pw = NULL;
    struct ty_err err;
    struct role_grant *old = calloc(ROLE_GRANTS_MAX, sizeof *old),
                      *grants = calloc(ROLE_GRANTS_MAX, sizeof *grants);
    size_t no = 0, n = 0;
    bool given = false, root = root_admin(req);
    int rc =
        old == NULL || grants == NULL ? ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory") : 0;
    if (rc == 0)
        rc = http_body_json(req, &body, &err);
    if (rc == 0)
        rc = known_fields(body, known, 4, &err);
    if (rc == 0 && !root) { /* a subtree admin changes grants only */
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "grants") != 0) {
                const struct routes_principal *p = routes__principal(req);
                char who[HTTP_WHO_MAX + 8], what[512];
                routes__describe(p, who, sizeof who);
                role_describe(p->grants, p->n_grants, what, sizeof what);
                rc = ty_error(&err, TY_EPERM, key, -1, 0,
                              "%s %s: changing %s of user %s needs admin on the whole tree", who,
                              what, key, name);
                break;
            }
        }
    }
    if (rc == 0)
        rc = text_field(body, "password", false, &pw, &err);
    if (rc == 0 && pw != NULL)
        rc = password_check_new("password", pw, strlen(pw), name, &err);
    const json_t *mc = json_object_get(body, "must_change_password");
    const json_t *un = json_object_get(body, "unlock");
    if (rc == 0 && mc != NULL && !json_is_boolean(mc))
        rc = ty_error(&err, TY_EINVAL, "must_change_password", -1, 0,
                      "must_change_password: expected true or false");
    if (rc == 0 && un != NULL && !json_is_boolean(un))
        rc = ty_error(&err, TY_EINVAL, "unlock", -1, 0, "unlock: expected true or false");
    if (rc == 0)
        rc = body_grants(body, grants, &n, &given, &err);
    struct store *st = rc == 0 ? server_reader(s, &err) : NULL;
    if (rc == 0 && st == NULL)
        rc = err.code != 0 ? err.code : TY_EIO;
    if (rc == 0 && (rc = store_user_get(st, name, &cur, &err)) == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "name", -1, 0, "no user named \"%.128s\"", name);
    if (rc == 0 && given &&
        role_grants_from_json(json_object_get(cur, "grants"), "grants", old, ROLE_GRANTS_MAX, &no,
                              NULL) != 0)
        no = 0;
    if (rc == 0 && given)
        rc = merge_grants(req, old, no, grants, &n, &err);
    if (rc == 0 && given && (jg = role_grants_to_json(grants, n)) == NULL)
        rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    char hash[PASSWORD_HASH_MAX];
    if (rc == 0 && pw != NULL)
        rc = password_hash(pw, strlen(pw), hash, &err);
    if (rc == 0) {
        /* a password an admin sets must be changed at the next sign-in, unless it says not */
        struct store_user_change c = {
            .password_hash = pw != NULL ? hash : NULL,
            .must_change = mc != NULL   ? json_is_true(mc)
                           : pw != NULL ? 1
                                        : -1,
            .grants = jg,
            .unlock = json_is_true(un),
        };
        struct store *cs = server_config_lock(s);
        rc = store_user_update(cs, name, &c, server_now_ms(s), &err);
        server_config_unlock(s);
    }
    json_decref(cur);
    cur = NULL;
    if (rc != 0) {
        fail(resp, &err);
    } else {
        log_info("user changed", "user=%s by=%s password=%s grants=%s unlock=%s", name,
                 req->who ? req->who : "?", pw != NULL ? "reset" : "kept", given ? "set" : "kept",
                 json_is_true(un) ? "true" : "false");
        if (pw != NULL)
            forget_first_password(s, name);
        if (store_user_get(st, name, &cur, &err) != 0) {
            fail(resp, &err);
        } else {
            resp->status = 200;
            resp->body = user_view(cur, server_now_ms(s));
            filter_grants(req, resp->body);
        }
    }
    json_decref(cur);
    json_decref(jg);
    json_decref(body);
    free(old);
    free(grants);
}

static void h_user_delete(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    const char *name = req->params[0];
    struct ty_err err;
    struct store *cs = server_config_lock(s);
    int rc = store_user_delete(cs, name, &err);
    server_config_unlock(s);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "name", -1, 0, "no user named \"%.128s\"", name);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    log_info("user deleted", "user=%s by=%s", name, req->who ? req->who : "?");
    forget_first_password(s, name);
    resp->status = 204;
}

const struct http_route routes__users[] = {
    {HTTP_POST, "/api/v1/session", h_signin, true, NULL, 0, 0},
    {HTTP_GET, "/api/v1/session", h_whoami, false, NULL, 0, ROUTES_P_SELF},
    {HTTP_DELETE, "/api/v1/session", h_signout, false, NULL, 0, ROUTES_P_SELF},
    {HTTP_POST, "/api/v1/session/password", h_password, false, NULL, 0, ROUTES_P_SELF},
    {HTTP_GET, "/api/v1/users", h_users_list, false, NULL, 0, ROUTES_P_ADMIN_SOME},
    {HTTP_POST, "/api/v1/users", h_users_create, false, NULL, 0, ROUTES_P_ROOT},
    {HTTP_GET, "/api/v1/users/{name}", h_user_get, false, NULL, 0, ROUTES_P_ADMIN_SOME},
    {HTTP_PUT, "/api/v1/users/{name}", h_user_put, false, NULL, 0, ROUTES_P_ADMIN_SOME},
    {HTTP_DELETE, "/api/v1/users/{name}", h_user_delete, false, NULL, 0, ROUTES_P_ROOT},
};
const size_t routes__users_n = sizeof routes__users / sizeof routes__users[0];

/* ---------------------------------------------------------------------------------------
 * The first user
 */

int routes_first_user(struct server *s, char *password, bool *created, struct ty_err *err)
{
    *created = false;
    password[0] = '\0';
    int rc = password_init(err);
    if (rc != 0)
        return rc;
    /* the dummy hash now, so that the first unknown name's answer takes no longer than the
     * others' */
    pthread_once(&dummy_once, make_dummy);
    struct store *cs = server_config_lock(s);
    json_t *users = NULL;
    rc = store_user_list(cs, &users, err);
    server_config_unlock(s);
    if (rc != 0)
        return rc;
    size_t n = json_array_size(users);
    bool first_pending = false; /* "admin" exists and has not changed the one-time password */
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        if (strcmp(json_string_value(json_object_get(u, "name")), ROUTES_FIRST_USER) == 0)
            first_pending = json_is_true(json_object_get(u, "must_change_password"));
    }
    json_decref(users);
    if (n > 0) {
        if (!first_pending)
            forget_first_password(s, ROUTES_FIRST_USER);
        return 0;
    }
    char pw[PASSWORD_ONE_TIME + 1], hash[PASSWORD_HASH_MAX];
    password_one_time(pw);
    if ((rc = password_hash(pw, strlen(pw), hash, err)) != 0)
        return rc;
    json_t *grants = json_pack("[{s:s, s:s}]", "domain", "", "role", "admin");
    struct store_user first = {ROUTES_FIRST_USER, hash, true, grants};
    cs = server_config_lock(s);
    rc = store_user_create(cs, &first, "tethys server (first start)", server_now_ms(s), err);
    server_config_unlock(s);
    json_decref(grants);
    if (rc == TY_EEXIST) /* another server of the cluster made it a moment ago */
        return 0;
    if (rc != 0)
        return rc;
    log_info("created the first user", "user=%s role=admin must_change_password=true",
             ROUTES_FIRST_USER);
    snprintf(password, PASSWORD_ONE_TIME + 1, "%s", pw);
    *created = true;
    return 0;
}
