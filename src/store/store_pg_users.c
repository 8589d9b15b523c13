/*
 * store_pg_users.c - users, sessions and grants (schema 5) on PostgreSQL: the store.h calls
 * store_sqlite.c implements under the same names, with the same rules (store_users.c's
 * checks, one transaction per call, a new password ending the user's other sessions).
 *
 * Statements are prepared per connection on first use, like store_pg.c's.  Inserts that may
 * meet an existing key say ON CONFLICT DO NOTHING and look at what they returned, rather
 * than fail: inside a caller's batch a failed statement would end the whole transaction.
 * A sign-in's outcome is one UPDATE whose new values come from the row's old ones, so two
 * servers counting one user's failures at once never lose one (the row lock orders them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_impl.h"
#include "store_users.h"

#define USER_COLS                                                                                  \
    "name, must_change_password, failed_attempts, locked_until_ms, created_at_ms, created_by,"     \
    " updated_at_ms, password_changed_at_ms, last_signin_at_ms, password_hash"

/* clang-format off */
static const char *const user_sql[PG_U_COUNT] = {
    [PG_U_USER_INSERT] = "INSERT INTO users (name, password_hash, must_change_password,"
                         " created_at_ms, created_by, updated_at_ms, password_changed_at_ms)"
                         " VALUES ($1, $2, $3, $4, $5, $4, $4) ON CONFLICT (name) DO NOTHING"
                         " RETURNING name",
    [PG_U_USER_SET_PASSWORD] = "UPDATE users SET password_hash = $2, password_changed_at_ms = $3"
                               " WHERE name = $1",
    [PG_U_USER_REHASH] = "UPDATE users SET password_hash = $2 WHERE name = $1",
    [PG_U_USER_SET_MUST] = "UPDATE users SET must_change_password = $2 WHERE name = $1",
    [PG_U_USER_UNLOCK] = "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL"
                         " WHERE name = $1",
    [PG_U_USER_TOUCHED] = "UPDATE users SET updated_at_ms = $2 WHERE name = $1 RETURNING name",
    [PG_U_USER_GET] = "SELECT " USER_COLS " FROM users WHERE name = $1",
    [PG_U_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY name",
    [PG_U_USER_DELETE] = "DELETE FROM users WHERE name = $1 RETURNING name",
    [PG_U_USER_SIGNIN_OK] = "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL,"
                            " last_signin_at_ms = $2 WHERE name = $1 RETURNING name",
    [PG_U_USER_SIGNIN_FAIL] = "UPDATE users SET"
                              " locked_until_ms = CASE WHEN failed_attempts + 1 >= $3"
                              "  THEN $2 + $4 ELSE locked_until_ms END,"
                              " failed_attempts = CASE WHEN failed_attempts + 1 >= $3"
                              "  THEN 0 ELSE failed_attempts + 1 END"
                              " WHERE name = $1 RETURNING name",
    [PG_U_SESSIONS_END] = "DELETE FROM sessions WHERE user_name = $1",
    [PG_U_SESSIONS_END_BUT] = "DELETE FROM sessions WHERE user_name = $1 AND hash <> $2",
    [PG_U_SESSION_PRUNE] = "DELETE FROM sessions WHERE expires_at_ms <= $1 OR last_seen_ms < $2",
    [PG_U_SESSION_INSERT] = "INSERT INTO sessions (hash, user_name, csrf, created_at_ms,"
                            " expires_at_ms, last_seen_ms)"
                            " SELECT $1, $2, $3, $4, $5, $4 WHERE EXISTS"
                            " (SELECT 1 FROM users WHERE name = $2)"
                            " ON CONFLICT (hash) DO NOTHING RETURNING hash",
    [PG_U_SESSION_EXISTS] = "SELECT 1 FROM sessions WHERE hash = $1",
    [PG_U_SESSION_GET] = "SELECT user_name, csrf, created_at_ms, expires_at_ms, last_seen_ms"
                         " FROM sessions WHERE hash = $1",
    [PG_U_SESSION_TOUCH] = "UPDATE sessions SET last_seen_ms = $2 WHERE hash = $1",
    [PG_U_SESSION_DELETE] = "DELETE FROM sessions WHERE hash = $1 RETURNING hash",
    [PG_U_GRANTS_DELETE] = "DELETE FROM grants WHERE kind = $1 AND name = $2",
    [PG_U_GRANT_INSERT] = "INSERT INTO grants (kind, name, domain, role) VALUES ($1, $2, $3, $4)",
    [PG_U_GRANTS_GET] = "SELECT domain, role FROM grants WHERE kind = $1 AND name = $2"
                        " ORDER BY domain",
};
/* clang-format on */

static int uexec(struct pg *s, enum pg_ust id, const struct pg_params *p, PGresult **res,
                 const char *what, struct ty_err *err)
{
    char name[16];
    snprintf(name, sizeof name, "u%d", (int)id);
    return pg__exec(s, name, user_sql[id], &s->prep.users[id], p, res, what, err);
}

/* Run statement id with text parameters a and b (b may be NULL: one parameter), or an
 * integer second parameter (b NULL and has_i); *rows (may be NULL) gets the rows it
 * returned. */
static int run2(struct pg *s, enum pg_ust id, const char *a, const char *b, bool has_i, int64_t i,
                int *rows, const char *what, struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, a);
    if (b != NULL)
        pg__p_text(&p, b);
    else if (has_i)
        pg__p_int(&p, i);
    PGresult *r = NULL;
    int rc = uexec(s, id, &p, rows != NULL ? &r : NULL, what, err);
    pg__p_free(&p);
    if (rc == 0 && rows != NULL)
        *rows = PQntuples(r);
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Grants.
 */

static int grants_write(struct pg *s, const char *kn, const char *name, const json_t *grants,
                        const char *what, struct ty_err *err)
{
    int rc = run2(s, PG_U_GRANTS_DELETE, kn, name, false, 0, NULL, what, err);
    size_t i;
    const json_t *g;
    json_array_foreach(grants, i, g)
    {
        if (rc != 0)
            break;
        struct pg_params p = {0};
        pg__p_text(&p, kn);
        pg__p_text(&p, name);
        pg__p_text(&p, json_string_value(json_object_get(g, "domain")));
        pg__p_text(&p, json_string_value(json_object_get(g, "role")));
        rc = uexec(s, PG_U_GRANT_INSERT, &p, NULL, what, err);
        pg__p_free(&p);
    }
    return rc;
}

static json_t *grant_row(const PGresult *r, int i)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "domain", pg__jtext(r, i, 0));
    pg__jb_set(&b, "role", pg__jtext(r, i, 1));
    return pg__jb_done(&b);
}

static int grants_read(struct pg *s, const char *kn, const char *name, json_t **out,
                       const char *what, struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, kn);
    pg__p_text(&p, name);
    PGresult *r = NULL;
    int rc = uexec(s, PG_U_GRANTS_GET, &p, &r, what, err);
    pg__p_free(&p);
    if (rc == 0)
        rc = pg__collect(r, grant_row, out, what, err);
    PQclear(r);
    return rc;
}

struct grants_arg {
    const char *kn, *name;
    const json_t *grants;
};

static int grants_set_body(struct pg *s, void *arg, struct ty_err *err)
{
    const struct grants_arg *a = arg;
    return grants_write(s, a->kn, a->name, a->grants, "grants_set", err);
}

int pg__grants_set(struct store *base, enum store_principal kind, const char *name,
                   const json_t *grants, struct ty_err *err)
{
    struct pg *s = PG(base);
    struct grants_arg a = {NULL, name, grants};
    int rc = store__check_principal("grants_set", kind, name, &a.kn, err);
    if (rc == 0)
        rc = store__check_grants("grants_set", grants, false, err);
    if (rc == 0)
        rc = pg__writable(s, "grants_set", err);
    return rc != 0 ? rc : pg__tx(s, grants_set_body, &a, "grants_set", err);
}

int pg__grants_get(struct store *base, enum store_principal kind, const char *name, json_t **out,
                   struct ty_err *err)
{
    const char *kn;
    int rc = store__check_principal("grants_get", kind, name, &kn, err);
    return rc != 0 ? rc : grants_read(PG(base), kn, name, out, "grants_get", err);
}

/* ---------------------------------------------------------------------------------------
 * Users.
 */

static json_t *user_row(const PGresult *r, int i, bool hash)
{
    struct pg_jb b = {json_object(), false};
    pg__jb_set(&b, "name", pg__jtext(r, i, 0));
    if (hash)
        pg__jb_set(&b, "password_hash", pg__jtext(r, i, 9));
    pg__jb_set(&b, "must_change_password", json_boolean(pg__int(r, i, 1) != 0));
    pg__jb_set(&b, "failed_attempts", pg__jint(r, i, 2));
    pg__jb_set(&b, "locked_until_ms", pg__jint(r, i, 3));
    pg__jb_set(&b, "created_at_ms", pg__jint(r, i, 4));
    pg__jb_set(&b, "created_by", pg__jtext(r, i, 5));
    pg__jb_set(&b, "updated_at_ms", pg__jint(r, i, 6));
    pg__jb_set(&b, "password_changed_at_ms", pg__jint(r, i, 7));
    pg__jb_set(&b, "last_signin_at_ms", pg__jint(r, i, 8));
    return pg__jb_done(&b);
}

static json_t *user_row_public(const PGresult *r, int i)
{
    return user_row(r, i, false);
}

struct user_arg {
    const struct store_user *u;
    const char *name, *who;
    const struct store_user_change *c;
    int64_t at_ms;
    char what[160];
    /* sign-ins */
    bool ok;
    int max_failures;
    int64_t lock_ms;
    json_t *out;
};

static int user_create_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct user_arg *a = arg;
    struct pg_params p = {0};
    pg__p_text(&p, a->u->name);
    pg__p_text(&p, a->u->password_hash);
    pg__p_int(&p, a->u->must_change ? 1 : 0);
    pg__p_int(&p, a->at_ms);
    pg__p_text(&p, a->who);
    PGresult *r = NULL;
    int rc = uexec(s, PG_U_USER_INSERT, &p, &r, a->what, err);
    pg__p_free(&p);
    bool inserted = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    if (rc == 0 && !inserted)
        return ty_error(err, TY_EEXIST, "name", -1, 0,
                        "user_create: a user named \"%.100s\" exists", a->u->name);
    if (rc == 0 && a->u->grants != NULL)
        rc = grants_write(s, "user", a->u->name, a->u->grants, a->what, err);
    return rc;
}

int pg__user_create(struct store *base, const struct store_user *u, const char *who, int64_t at_ms,
                    struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_user(u, err);
    if (rc == 0)
        rc = pg__writable(s, "user_create", err);
    if (rc != 0)
        return rc;
    struct user_arg a = {.u = u, .who = who, .at_ms = at_ms > 0 ? at_ms : pg__now_ms()};
    snprintf(a.what, sizeof a.what, "user_create \"%.100s\"", u->name);
    return pg__tx(s, user_create_body, &a, a.what, err);
}

static int user_update_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct user_arg *a = arg;
    const struct store_user_change *c = a->c;
    int rows = 0;
    int rc = run2(s, PG_U_USER_TOUCHED, a->name, NULL, true, a->at_ms, &rows, a->what, err);
    if (rc == 0 && rows == 0)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "user_update: no user named \"%.100s\"",
                        a->name);
    if (rc == 0 && c->password_hash != NULL) {
        struct pg_params p = {0};
        pg__p_text(&p, a->name);
        pg__p_text(&p, c->password_hash);
        if (!c->same_password)
            pg__p_int(&p, a->at_ms);
        rc = uexec(s, c->same_password ? PG_U_USER_REHASH : PG_U_USER_SET_PASSWORD, &p, NULL,
                   a->what, err);
        pg__p_free(&p);
        if (rc == 0 && c->same_password) {
            /* the same password: its sessions stay */
        } else if (rc == 0 && c->keep_session != NULL) {
            char h[STORE__HASH_HEX + 1];
            store__check_hash(a->what, c->keep_session, h, NULL); /* checked before */
            rc = run2(s, PG_U_SESSIONS_END_BUT, a->name, h, false, 0, NULL, a->what, err);
        } else if (rc == 0) {
            rc = run2(s, PG_U_SESSIONS_END, a->name, NULL, false, 0, NULL, a->what, err);
        }
    }
    if (rc == 0 && c->must_change >= 0)
        rc = run2(s, PG_U_USER_SET_MUST, a->name, NULL, true, c->must_change, NULL, a->what, err);
    if (rc == 0 && c->unlock)
        rc = run2(s, PG_U_USER_UNLOCK, a->name, NULL, false, 0, NULL, a->what, err);
    if (rc == 0 && c->grants != NULL)
        rc = grants_write(s, "user", a->name, c->grants, a->what, err);
    return rc;
}

int pg__user_update(struct store *base, const char *name, const struct store_user_change *c,
                    int64_t at_ms, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_user_change(name, c, err);
    if (rc == 0)
        rc = pg__writable(s, "user_update", err);
    if (rc != 0)
        return rc;
    struct user_arg a = {.name = name, .c = c, .at_ms = at_ms > 0 ? at_ms : pg__now_ms()};
    snprintf(a.what, sizeof a.what, "user_update \"%.100s\"", name);
    return pg__tx(s, user_update_body, &a, a.what, err);
}

/* One user with its grants (the hash when asked for); TY_ENOENT naming `op`. */
static int user_read(struct pg *s, const char *name, bool hash, json_t **out, const char *op,
                     struct ty_err *err)
{
    struct pg_params p = {0};
    pg__p_text(&p, name);
    PGresult *r = NULL;
    int rc = uexec(s, PG_U_USER_GET, &p, &r, op, err);
    pg__p_free(&p);
    json_t *u = NULL;
    if (rc == 0 && PQntuples(r) == 0)
        rc = ty_error(err, TY_ENOENT, "name", -1, 0, "%s: no user named \"%.100s\"", op, name);
    else if (rc == 0 && (u = user_row(r, 0, hash)) == NULL)
        rc = store__oom(err, op);
    PQclear(r);
    json_t *grants = NULL;
    if (rc == 0 && (rc = grants_read(s, "user", name, &grants, op, err)) == 0 &&
        json_object_set_new(u, "grants", grants) != 0)
        rc = store__oom(err, op);
    if (rc != 0) {
        json_decref(u);
        return rc;
    }
    *out = u;
    return 0;
}

int pg__user_get(struct store *base, const char *name, json_t **out, struct ty_err *err)
{
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_get", err);
    return rc != 0 ? rc : user_read(PG(base), name, true, out, "user_get", err);
}

int pg__user_list(struct store *base, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    PGresult *r = NULL;
    json_t *users = NULL;
    int rc = uexec(s, PG_U_USER_LIST, NULL, &r, "user_list", err);
    if (rc == 0)
        rc = pg__collect(r, user_row_public, &users, "user_list", err);
    PQclear(r);
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        json_t *grants = NULL;
        if (rc == 0)
            rc = grants_read(s, "user", json_string_value(json_object_get(u, "name")), &grants,
                             "user_list", err);
        if (rc == 0 && json_object_set_new(u, "grants", grants) != 0)
            rc = store__oom(err, "user_list");
    }
    if (rc != 0) {
        json_decref(users);
        return rc;
    }
    *out = users;
    return 0;
}

static int user_delete_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct user_arg *a = arg;
    int rows = 0;
    int rc = run2(s, PG_U_USER_DELETE, a->name, NULL, false, 0, &rows, a->what, err);
    if (rc == 0 && rows == 0)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "user_delete: no user named \"%.100s\"",
                        a->name);
    if (rc == 0)
        rc = run2(s, PG_U_SESSIONS_END, a->name, NULL, false, 0, NULL, a->what, err);
    if (rc == 0)
        rc = run2(s, PG_U_GRANTS_DELETE, "user", a->name, false, 0, NULL, a->what, err);
    return rc;
}

int pg__user_delete(struct store *base, const char *name, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_delete", err);
    if (rc == 0)
        rc = pg__writable(s, "user_delete", err);
    if (rc != 0)
        return rc;
    struct user_arg a = {.name = name};
    snprintf(a.what, sizeof a.what, "user_delete \"%.100s\"", name);
    return pg__tx(s, user_delete_body, &a, a.what, err);
}

static int user_signin_body(struct pg *s, void *arg, struct ty_err *err)
{
    struct user_arg *a = arg;
    struct pg_params p = {0};
    pg__p_text(&p, a->name);
    pg__p_int(&p, a->at_ms);
    if (!a->ok) {
        pg__p_int(&p, a->max_failures);
        pg__p_int(&p, a->lock_ms);
    }
    PGresult *r = NULL;
    int rc = uexec(s, a->ok ? PG_U_USER_SIGNIN_OK : PG_U_USER_SIGNIN_FAIL, &p, &r, a->what, err);
    pg__p_free(&p);
    bool found = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    if (rc == 0 && !found)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "user_signin: no user named \"%.100s\"",
                        a->name);
    json_decref(a->out); /* from an earlier attempt of the transaction */
    a->out = NULL;
    if (rc == 0 && a->c == NULL) /* c NULL: the caller wants the user back */
        rc = user_read(s, a->name, false, &a->out, "user_signin", err);
    return rc;
}

int pg__user_signin(struct store *base, const char *name, bool ok, int64_t at_ms, int max_failures,
                    int64_t lock_ms, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    int rc = store__check_id(name, STORE__NAME_MAX + 1, "name", "user_signin", err);
    if (rc == 0 && (max_failures < 1 || lock_ms < 0))
        rc = ty_error(err, TY_EINVAL, "max_failures", -1, 0,
                      "user_signin: max_failures must be 1 or more and lock_ms not negative");
    if (rc == 0)
        rc = pg__writable(s, "user_signin", err);
    if (rc != 0)
        return rc;
    static const struct store_user_change no_read = {.must_change = -1};
    struct user_arg a = {.name = name,
                         .c = out == NULL ? &no_read : NULL,
                         .at_ms = at_ms > 0 ? at_ms : pg__now_ms(),
                         .ok = ok,
                         .max_failures = max_failures,
                         .lock_ms = lock_ms};
    snprintf(a.what, sizeof a.what, "user_signin \"%.100s\"", name);
    rc = pg__tx(s, user_signin_body, &a, a.what, err);
    if (rc != 0) {
        json_decref(a.out);
        return rc;
    }
    if (out != NULL)
        *out = a.out;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Sessions.
 */

struct session_arg {
    const struct store_session *ss;
    const char *h;
};

static int session_put_body(struct pg *s, void *arg, struct ty_err *err)
{
    const struct session_arg *a = arg;
    struct pg_params p = {0};
    pg__p_int(&p, a->ss->created_at_ms);
    pg__p_int(&p, a->ss->idle_before_ms);
    int rc = uexec(s, PG_U_SESSION_PRUNE, &p, NULL, "session_put", err);
    pg__p_free(&p);
    if (rc != 0)
        return rc;
    pg__p_text(&p, a->h);
    pg__p_text(&p, a->ss->user);
    pg__p_text(&p, a->ss->csrf);
    pg__p_int(&p, a->ss->created_at_ms);
    pg__p_int(&p, a->ss->expires_at_ms);
    PGresult *r = NULL;
    rc = uexec(s, PG_U_SESSION_INSERT, &p, &r, "session_put", err);
    pg__p_free(&p);
    bool inserted = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    if (rc != 0 || inserted)
        return rc;
    /* which one: the hash is taken, or there is no such user */
    int rows = 0;
    rc = run2(s, PG_U_SESSION_EXISTS, a->h, NULL, false, 0, &rows, "session_put", err);
    if (rc == 0 && rows > 0)
        return ty_error(err, TY_EEXIST, "hash", -1, 0, "session_put: the session exists");
    if (rc == 0)
        rc = ty_error(err, TY_ENOENT, "user", -1, 0, "session_put: no user named \"%.100s\"",
                      a->ss->user);
    return rc;
}

int pg__session_put(struct store *base, const struct store_session *ss, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_session(ss, h, err);
    if (rc == 0)
        rc = pg__writable(s, "session_put", err);
    struct session_arg a = {ss, h};
    return rc != 0 ? rc : pg__tx(s, session_put_body, &a, "session_put", err);
}

int pg__session_get(struct store *base, const char *hash, json_t **out, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("session_get", hash, h, err);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pg__p_text(&p, h);
    PGresult *r = NULL;
    rc = uexec(s, PG_U_SESSION_GET, &p, &r, "session_get", err);
    pg__p_free(&p);
    if (rc == 0 && PQntuples(r) == 0) {
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "session_get: no such session");
    } else if (rc == 0) {
        struct pg_jb b = {json_object(), false};
        pg__jb_set(&b, "user", pg__jtext(r, 0, 0));
        pg__jb_set(&b, "csrf", pg__jtext(r, 0, 1));
        pg__jb_set(&b, "created_at_ms", pg__jint(r, 0, 2));
        pg__jb_set(&b, "expires_at_ms", pg__jint(r, 0, 3));
        pg__jb_set(&b, "last_seen_ms", pg__jint(r, 0, 4));
        if ((*out = pg__jb_done(&b)) == NULL)
            rc = store__oom(err, "session_get");
    }
    PQclear(r);
    return rc;
}

int pg__session_touch(struct store *base, const char *hash, int64_t at_ms, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rc = store__check_hash("session_touch", hash, h, err);
    if (rc == 0)
        rc = pg__writable(s, "session_touch", err);
    return rc != 0 ? rc
                   : run2(s, PG_U_SESSION_TOUCH, h, NULL, true, at_ms > 0 ? at_ms : pg__now_ms(),
                          NULL, "session_touch", err);
}

int pg__session_delete(struct store *base, const char *hash, struct ty_err *err)
{
    struct pg *s = PG(base);
    char h[STORE__HASH_HEX + 1];
    int rows = 0;
    int rc = store__check_hash("session_delete", hash, h, err);
    if (rc == 0)
        rc = pg__writable(s, "session_delete", err);
    if (rc == 0)
        rc = run2(s, PG_U_SESSION_DELETE, h, NULL, false, 0, &rows, "session_delete", err);
    if (rc == 0 && rows == 0)
        rc = ty_error(err, TY_ENOENT, NULL, -1, 0, "session_delete: no such session");
    return rc;
}
