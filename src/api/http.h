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
 *
 * Every answer carries the security headers a browser needs to keep the console safe:
 * X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy: same-origin and
 * a Content-Security-Policy that allows nothing but the server's own scripts and styles
 * (no inline script, no framing).
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
    int route_perm;            /* the matched route's perm */
    const void *principal;     /* what cfg->authenticate made of the caller; NULL on a public
                                  route and without that callback */
    bool tls;                  /* the request came over TLS */
};

/* A query-string value (?limit=10), or NULL.  Borrowed for the request's life. */
const char *http_query(const struct http_request *req, const char *key);

/* A header a handler adds to its answer; name and value are borrowed and must outlive the
 * request (string literals, or data of static duration) - or the value was made by
 * http_response_header, and the layer frees it.  The security headers every answer
 * carries are the layer's own: a handler does not add them. */
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
    /* more headers, on any answer (Cache-Control, Set-Cookie and the like): borrowed, or
     * made by http_response_header (their values in owned[], which the layer frees) */
    struct http_header headers[HTTP_HEADERS_MAX];
    size_t n_headers;
    char *owned[HTTP_HEADERS_MAX];
    size_t n_owned;
};

/* Add the header `name` (a static string) with a printf-formatted value (copied; the layer
 * frees it) to resp.  Dropped when HTTP_HEADERS_MAX are there already or memory ran out. */
void http_response_header(struct http_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_response *resp);

/* Field order is the order of route-table initialisers; the padding is 8 bytes a route. */
struct http_route { /* NOLINT(clang-analyzer-optin.performance.Padding) */
    enum http_method method;
    const char *pattern; /* "/api/v1/jobs/{name}/run": {x} matches one path segment */
    http_handler handler;
    bool public;     /* no token needed (health) */
    const void *arg; /* given to the handler as req->route_arg: one handler, several routes */
    size_t body_max; /* bytes of body it takes; 0: HTTP_BODY_MAX */
    int perm;        /* what the route needs, for cfg->permit (req->route_perm); with a permit
                        callback, a route that is not public must declare one (not 0) */
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

/* What a request brought to prove who it is, for http_authenticate_fn.  Borrowed for the
 * call; never logged. */
struct http_credentials {
    enum http_method method;
    const char *bearer; /* the bearer token of an Authorization header, or NULL */
    size_t bearer_len;
    const char *session; /* the session cookie's value (cfg->session_cookie), or NULL */
    size_t session_len;
    bool session_ambiguous; /* the cookie came twice with different values */
    const char *csrf;       /* the X-CSRF-Token header, or NULL */
    const char *remote;     /* the client's address */
};

/*
 * Decide on a request's credentials (connection threads, concurrently: thread-safe), where
 * a bearer token and a session cookie are both understood.  0 lets the request in, with
 * who[who_cap] naming the caller and *principal (may stay NULL) what the handlers and the
 * permit callback will see as req->principal (cfg->principal_free frees it).  TY_EAUTH
 * refuses it with 401, TY_EPERM with 403 (a session's request without its CSRF token),
 * another code with its status; why[why_cap] says why, never quoting a secret.
 */
typedef int (*http_authenticate_fn)(void *ctx, const struct http_credentials *cred, char *who,
                                    size_t who_cap, void **principal, char *why, size_t why_cap);

struct http_config {
    const char *listen; /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" */
    /* authentication with sessions as well as tokens: decides instead of authorize when set */
    http_authenticate_fn authenticate;
    void (*principal_free)(void *principal);
    const char *session_cookie; /* the cookie authenticate reads ("tethys_session"), or NULL */
    /* Called after the body is read and before the handler of a route that is not public:
     * 0 lets it run; TY_EPERM refuses with 403 (why[why_cap] says what was refused and
     * why), another code with its status.  May be NULL. */
    int (*permit)(void *ctx, const struct http_request *req, char *why, size_t why_cap);
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

/* The Content-Security-Policy every answer carries. */
#define HTTP_CSP                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

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
 * EAUTH 401, EPERM 403, EBUSY 409, ENOSPC 507, EUNAVAIL 503, ERANGE 400, others 500. */
int http_status_for(int code);

/*
 * Parse a request body as a JSON object.  Malformed JSON gives TY_EINVAL with the line and
 * column; a non-object gives TY_EINVAL naming the body.  *out is a new reference.
 */
int http_body_json(const struct http_request *req, json_t **out, struct ty_err *err);

#endif
