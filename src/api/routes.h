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

/* routes_tokens.c: /api/v1/tokens, and the HTTP layer's authorize callback (ctx is the
 * server): the data directory's token ("default") or a named token from the store. */
extern const struct http_route routes_tokens[];
extern const size_t routes_tokens_n;
int routes_authorize(void *ctx, const char *bearer, size_t len, char *who, size_t who_cap,
                     char *why, size_t why_cap);

#endif
