/*
 * store_users.h - what both stores share for users, sessions and grants (schema 5): the
 * argument checks of those store.h calls, so SQLite and PostgreSQL refuse the same input
 * with the same message.  Internal to src/store (store__ names): callers include store.h.
 */
#ifndef STORE_USERS_H
#define STORE_USERS_H

#include <jansson.h>
#include <stdint.h>

#include "../core/ty_err.h"
#include "store.h"
#include "store_common.h"

#define STORE__PW_HASH_MAX 512 /* bytes of a password hash (Argon2id text is ~100) */
#define STORE__CSRF_MAX    128 /* bytes of a session's CSRF token */

/* "user" or "token"; NULL for a value outside the enum. */
const char *store__principal_name(enum store_principal k);

/* Grants as store.h describes them (NULL allowed when allow_null): an array of at most
 * 64 objects {"domain": text of at most 256 bytes, "role": viewer|operator|admin}, each
 * domain once.  TY_EINVAL naming "grants" or "grants[i].domain|role". */
int store__check_grants(const char *op, const json_t *grants, bool allow_null, struct ty_err *err);

/* A user_create: name (1-256 bytes), password hash (1-512 bytes), grants. */
int store__check_user(const struct store_user *u, struct ty_err *err);

/* A user_update: the name, and a change whose hash (when given) and grants are good, and
 * must_change -1, 0 or 1. */
int store__check_user_change(const char *name, const struct store_user_change *c,
                             struct ty_err *err);

/* A session_put: hash (lowercased into h), user, csrf, and created < expires. */
int store__check_session(const struct store_session *ss, char h[STORE__HASH_HEX + 1],
                         struct ty_err *err);

/* A grants_set / grants_get principal: the kind (*kn gets its name) and the name. */
int store__check_principal(const char *op, enum store_principal kind, const char *name,
                           const char **kn, struct ty_err *err);

#endif
