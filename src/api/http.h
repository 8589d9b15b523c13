/*
 * http.h - the HTTP/JSON layer of the REST API (libmicrohttpd underneath).
 *
 * It owns sockets, TLS, request parsing, size and rate limits, bearer-token checks (the
 * decision itself may be the caller's: an authorize callback) and the JSON error format,
 * and hands each request to a route handler as a small struct.  Handlers run on
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
#define HTTP_WHO_MAX    136           /* bytes of a caller's name (a token name), NUL included */

enum http_method { HTTP_GET = 1, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE };

struct http_request {
    enum http_method method;
    const char *path;                    /* "/api/v1/jobs/nightly" (decoded) */
    const char *params[HTTP_PARAMS_MAX]; /* values of the route's {placeholders} */
    size_t n_params;
    const char *body; /* NUL-terminated; "" when none */
    size_t body_len;
    const char *if_match;      /* If-Match header or NULL */
    const char *if_none_match; /* If-None-Match header or NULL */
    const char *remote;        /* peer address text */
    const char *who;           /* who is asking, for audit: the token's name from authorize; NULL
                                  on a public route and with the single static token */
    void *conn;                /* opaque, for http_query and streaming */
    const void *route_arg;     /* the matched route's arg */
};

/* A query-string value (?limit=10), or NULL.  Borrowed for the request's life. */
const char *http_query(const struct http_request *req, const char *key);

/* A header a handler adds to its answer; name and value are borrowed and must outlive the
 * request (string literals, or data of static duration). */
struct http_header {
    const char *name;
    const char *value;
};

#define HTTP_HEADERS_MAX 8 /* headers a handler may add */

/* What a handler answers. */
struct http_response {
    int status;   /* HTTP status */
    json_t *body; /* JSON body (stolen: the layer decrefs it), or NULL */
    char *raw;    /* or the body already as JSON text (malloc'd, stolen), raw_len bytes */
    size_t raw_len;
    char *etag; /* malloc'd ETag value (stolen), or NULL */
    /* streaming instead of body: called repeatedly on the connection thread to produce
     * the next bytes; returns bytes written into buf (> 0), 0 to wait and call again
     * (it may block up to ~1 s itself), or -1 at the end.  free_fn(arg) at the end. */
    long (*stream)(void *arg, uint64_t pos, char *buf, size_t max);
    void (*stream_free)(void *arg);
    void *stream_arg;
    const char *content_type; /* for streams and bytes; default "text/plain; charset=utf-8" */
    /* or bytes[0..bytes_len) as the body, borrowed (static duration: an embedded file),
     * sent with content_type; a 304 sends none.  Used when bytes is set or the status is
     * 304. */
    const void *bytes;
    size_t bytes_len;
    /* more headers, for bytes answers only (Cache-Control and the like) */
    struct http_header headers[HTTP_HEADERS_MAX];
    size_t n_headers;
};

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_response *resp);

/* Field order is the order of route-table initialisers; the padding is 8 bytes a route. */
struct http_route { /* NOLINT(clang-analyzer-optin.performance.Padding) */
    enum http_method method;
    const char *pattern; /* "/api/v1/jobs/{name}/run": {x} matches one path segment */
    http_handler handler;
    bool public;     /* no token needed (health) */
    const void *arg; /* given to the handler as req->route_arg: one handler, several routes */
    size_t body_max; /* bytes of body it takes; 0: HTTP_BODY_MAX */
};

/*
 * Decide on a bearer token (called on connection threads, concurrently: it must be
 * thread-safe).  bearer[0..len) is the token the request sent (never log it).  Returns 0
 * to let the request in, with who[who_cap] naming the caller (for audit and logs);
 * TY_EAUTH to refuse it (401) with why[why_cap] saying why in words that never include
 * the token (a token's name is fine); another TY_E* code when it cannot decide (a store
 * failure: its status, e.g. 503), again with why.
 */
typedef int (*http_authorize_fn)(void *ctx, const char *bearer, size_t len, char *who,
                                 size_t who_cap, char *why, size_t why_cap);

struct http_config {
    const char *listen; /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" */
    /* authentication: authorize decides when set; else every non-public route needs
     * exactly this one bearer token */
    http_authorize_fn authorize;
    const char *token;
    /* TLS: PEM files of the certificate (chain) and its private key; both or neither.
     * With them the server speaks only HTTPS (TLS 1.2 and 1.3). */
    const char *tls_cert;
    const char *tls_key;
    /* per client address: a token bucket refilled at rate_per_s requests a second,
     * holding at most rate_burst (0: 4 x rate_per_s); a request finding it empty gets 429
     * with Retry-After.  rate_per_s 0 = no limit. */
    double rate_per_s;
    uint32_t rate_burst;
    const struct http_route *routes;
    size_t n_routes;
    /* Answers a GET (or HEAD) of a path no route knows, without a token, instead of 404:
     * the web console (its method, pattern and public flag are ignored; its arg is given
     * to the handler).  NULL: 404. */
    const struct http_route *fallback;
    void *ctx; /* passed to every handler */
    /* Called on the connection's thread after each handler has returned (a stream it
     * started goes on): what the handler took for the thread may be given back.  May be
     * NULL. */
    void (*after)(void *ctx);
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
 * in use"); a certificate or key that cannot be read, is not PEM, or does not belong
 * together fails with TY_EINVAL naming the file and the problem (field "tls_cert" or
 * "tls_key").  The caller owns *out (http_stop).  http_port gives the bound port (useful
 * with port 0).
 */
int http_start(const struct http_config *cfg, struct http_server **out, struct ty_err *err);
int http_port(const struct http_server *s);

/*
 * Whether a listen address ("127.0.0.1:8080", "[::1]:0", "localhost:80", "0.0.0.0:8080")
 * is a loopback one: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or localhost.  0 and
 * *loopback, or TY_EINVAL for an address http_start would refuse (same message).
 */
int http_listen_is_loopback(const char *listen, bool *loopback, struct ty_err *err);

/* Check a certificate and key as http_start would (readable, PEM, belonging together),
 * without starting anything: for refusing bad files before other work.  0 or TY_EINVAL. */
int http_tls_check(const char *cert, const char *key, struct ty_err *err);
/* Stop accepting, wait for running handlers (streams are ended), free everything. */
void http_stop(struct http_server *s);

/*
 * The version an If-Match header names: 0 and *version 0 when there is none, 0 and the
 * version (> 0) for "N", "\"N\"" or W/"N"; TY_EINVAL (field "If-Match") for anything else.
 */
int http_if_match(const struct http_request *req, int64_t *version, struct ty_err *err);

/* Fill resp with the JSON error for err (status from its code; field and message). */
void http_error(struct http_response *resp, const struct ty_err *err);
/* The HTTP status for a TY_E* code: EINVAL 400, ENOENT 404, EEXIST 409, ECONFLICT 412,
 * EAUTH 401, EBUSY 409, ENOSPC 507, EUNAVAIL 503, ERANGE 400, others 500. */
int http_status_for(int code);

/*
 * Parse a request body as a JSON object.  Malformed JSON gives TY_EINVAL with the line and
 * column; a non-object gives TY_EINVAL naming the body.  *out is a new reference.
 */
int http_body_json(const struct http_request *req, json_t **out, struct ty_err *err);

#endif
