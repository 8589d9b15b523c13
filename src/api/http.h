/*
 * http.h - the HTTP/JSON layer of the REST API (libmicrohttpd underneath).
 *
 * It owns sockets, request parsing, size limits, bearer-token checks and the JSON error
 * format, and hands each request to a route handler as a small struct.  Handlers run on
 * the connection's own thread (libmicrohttpd thread-per-connection mode), may block (a
 * database read, waiting for the server loop's answer) and never see libmicrohttpd.
 *
 * Error bodies are always {"error": {"code": "<code>", "message": "...", "field": "..."}}
 * with the HTTP status the code implies (see http_status_for).
 */
#ifndef HTTP_H
#define HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"

#define HTTP_BODY_MAX   (1024 * 1024) /* bytes; a larger request body gets 413 */
#define HTTP_PARAMS_MAX 8             /* path parameters per route */

enum http_method { HTTP_GET = 1, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE };

struct http_request {
    enum http_method method;
    const char *path;                    /* "/api/v1/jobs/nightly" (decoded) */
    const char *params[HTTP_PARAMS_MAX]; /* values of the route's {placeholders} */
    size_t n_params;
    const char *body; /* NUL-terminated; "" when none */
    size_t body_len;
    const char *if_match; /* If-Match header or NULL */
    const char *remote;   /* peer address text */
    void *conn;           /* opaque, for http_query and streaming */
};

/* A query-string value (?limit=10), or NULL.  Borrowed for the request's life. */
const char *http_query(const struct http_request *req, const char *key);

/* What a handler answers. */
struct http_response {
    int status;   /* HTTP status */
    json_t *body; /* JSON body (stolen: the layer decrefs it), or NULL */
    char *etag;   /* malloc'd ETag value (stolen), or NULL */
    /* streaming instead of body: called repeatedly on the connection thread to produce
     * the next bytes; returns bytes written into buf (> 0), 0 to wait and call again
     * (it may block up to ~1 s itself), or -1 at the end.  free_fn(arg) at the end. */
    long (*stream)(void *arg, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *arg);
    void *stream_arg;
    const char *content_type; /* for streams; default "text/plain; charset=utf-8" */
};

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_response *resp);

/* Field order is the order of route-table initialisers; the padding is 8 bytes a route. */
struct http_route { /* NOLINT(clang-analyzer-optin.performance.Padding) */
    enum http_method method;
    const char *pattern; /* "/api/v1/jobs/{name}/run": {x} matches one path segment */
    http_handler handler;
    bool public; /* no token needed (health) */
};

struct http_config {
    const char *listen; /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" */
    const char *token;  /* the bearer token every non-public route needs */
    const struct http_route *routes;
    size_t n_routes;
    void *ctx;              /* passed to every handler */
    size_t max_connections; /* default 256 */
    /* Called (from connection threads, concurrently: it must be thread-safe) for every
     * request the layer refuses, with the reason, and for libmicrohttpd's own messages.
     * level is "info" or "warn"; msg is one line of key=value fields.  NULL: silent. */
    void (*log)(void *ctx, const char *level, const char *msg);
};

struct http_server;

/*
 * Bind and start serving on new threads.  A listen address that cannot be parsed or bound
 * fails with TY_EINVAL / TY_EIO and a message naming it ("127.0.0.1:8080: Address already
 * in use").  The caller owns *out (http_stop).  http_port gives the bound port (useful with
 * port 0).
 */
int http_start(const struct http_config *cfg, struct http_server **out, struct ty_err *err);
int http_port(const struct http_server *s);
/* Stop accepting, wait for running handlers (streams are ended), free everything. */
void http_stop(struct http_server *s);

/* Fill resp with the JSON error for err (status from its code; field and message). */
void http_error(struct http_response *resp, const struct ty_err *err);
/* The HTTP status for a TY_E* code: EINVAL 400, ENOENT 404, EEXIST 409, ECONFLICT 412,
 * EAUTH 401, EBUSY 409, ENOSPC 507, EUNAVAIL 503, ERANGE 400, others 500. */
int http_status_for(int code);
/* The short code string used in error bodies ("invalid", "not_found", ...). */
const char *http_code_name(int code);

/*
 * Parse a request body as a JSON object.  Malformed JSON gives TY_EINVAL with the line and
 * column; a non-object gives TY_EINVAL naming the body.  *out is a new reference.
 */
int http_body_json(const struct http_request *req, json_t **out, struct ty_err *err);

#endif
