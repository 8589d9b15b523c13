/*
 * routes.h - the REST API (/api/v1/...), documented in docs/api.md.  The handlers run on
 * HTTP connection threads and use only the control plane's interface (server/server.h).
 */
#ifndef ROUTES_H
#define ROUTES_H

#include "../server/server.h"
#include "http.h"

#define ROUTES_MAX 128 /* routes in all tables together */

/* Fill *out with the API's routes for server s (listen address and token borrowed). */
void routes_config(struct server *s, const char *listen, const char *token,
                   struct http_config *out);

/* routes_tokens.c: /api/v1/tokens. */
extern const struct http_route routes_tokens[];
extern const size_t routes_tokens_n;

/*
 * The first user (routes_users.c), made when the server starts on a store without users:
 * "admin", an admin of the whole tree who must change the password at the first sign-in,
 * with a random one-time password into password[PASSWORD_ONE_TIME + 1] (*created true; the
 * caller tells the operator, once).  When users exist, *created is false, and the one-time
 * password file DATA/initial-admin-password is removed if its user changed the password
 * (or is gone).  Another server making the first user at the same moment is no error (one
 * of them makes it).  It also readies what sign-ins need (the dummy hash unknown names are
 * checked against).  0 or the store's error.
 */
int routes_first_user(struct server *s, char *password, bool *created, struct ty_err *err);

/* routes_cluster.c: the name a cluster member's requests carry (the peer secret as
 * bearer); the cluster's own routes answer only such requests. */
#define ROUTES_PEER_NAME "cluster"

/*
 * The HTTP configuration of an executor process's endpoint: POST /cluster/v1/request takes
 * a coord request (coord_wire.h) from a server, hands it to member and answers with its
 * reply; GET /api/v1/health.  Only the cluster secret (secret(arg) gives it, "" while
 * unknown) opens it.  *out borrows listen; free its context with routes_member_free after
 * http_stop.  TY_ENOMEM.
 */
int routes_member_config(const struct coord_member *member,
                         void (*secret)(void *arg, char *buf, size_t cap), void *secret_arg,
                         const char *listen, struct http_config *out, struct ty_err *err);
void routes_member_free(struct http_config *cfg);

#endif
