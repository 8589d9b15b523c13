/*
 * routes_impl.h - what the API's route files (src/api/routes*.c) share with routes.c.
 *
 * routes.c owns the handlers that save configuration: their validation, the checks that
 * look at other objects, If-Match, telling the loop and the answer.  Another route file
 * that needs a save (restoring an old version) goes through them instead of repeating
 * them, and hands its own table of routes to routes.c's tables[].
 */
#ifndef ROUTES_IMPL_H
#define ROUTES_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "routes.h"

/* routes_versions.c: the versions of jobs, domains and calendars, and restoring one. */
extern const struct http_route routes__versions[];
extern const size_t routes__versions_n;

/* routes_batch.c: POST /api/v1/jobs:batch, many job changes in one request. */
extern const struct http_route routes__batch[];
extern const size_t routes__batch_n;

/* routes_cluster.c: results and definitions for cluster members. */
extern const struct http_route routes__cluster[];
extern const size_t routes__cluster_n;

/*
 * Save the definition in req->body (JSON text) as the object of `kind` named
 * req->params[0], exactly as `PUT /<kind>s/{name}` (create false: it replaces the object,
 * which must exist; If-Match honoured) or `POST /<kind>s` (create true) would, answering
 * in resp as they do.  req may be made up by the caller (a copy of its own request with
 * another body); everything is borrowed.
 */
void routes__save_object(struct server *s, enum store_kind kind, bool create,
                         const struct http_request *req, struct http_response *resp);

#endif
