/*
 * http.c - the HTTP/JSON layer of the REST API, on libmicrohttpd.
 *
 * Design.  libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION),
 * so a handler may block on a database read or on the server loop's answer without
 * stalling anyone else, and a streaming response (a followed log) may simply sleep in its
 * content reader.  Everything a handler should not have to think about happens here,
 * before it is called, in this order:
 *
 *   1. the path is split into segments and each is percent-decoded on its own, so
 *      "bank%2Fsettlement" stays one {param} ("bank/settlement").  libmicrohttpd's own
 *      unescaping is switched off (it would decode %2F before we could split), so query
 *      values are decoded here too ('+' is a space, as in forms).  Bad escapes, NUL bytes
 *      and invalid UTF-8 are refused with 400;
 *   2. the client's rate: a token bucket per client address (refilled at the configured
 *      rate, holding at most the burst); a request that finds it empty gets 429 with
 *      Retry-After.  The buckets live in a fixed table (RATE_SLOTS addresses, each looked
 *      for in RATE_PROBE places), so a flood from many addresses costs no memory: it
 *      evicts the address seen least recently, which then starts again with a full bucket;
 *   3. the route: first route whose pattern and method match; a path some route knows
 *      but not with this method gets 405 and an Allow header; an unknown path 404;
 *   4. who is calling: the bearer token, or the session cookie (cookie.c reads the Cookie
 *      header; the X-CSRF-Token header goes along), which the caller's authenticate
 *      callback decides on (naming the caller, who, and making its principal); or the
 *      bearer token alone, decided by an authorize callback or compared in constant time
 *      with the one configured token: 401 with WWW-Authenticate, or the callback's 403;
 *   5. the body: one over HTTP_BODY_MAX gets 413 and is never buffered.  A body on
 *      POST/PUT/PATCH must be application/json (415), and valid UTF-8 with no NUL bytes
 *      (400);
 *   6. whether the caller may: the permit callback, given the whole request (the route's
 *      declared permission, the principal, the body), before the handler runs: 403.
 *
 * Every answer, refusals included, carries the security headers (add_common_headers).
 *
 * When to answer a refusal.  Refusals decided from the headers (all but the last two)
 * are answered at once when no body follows, or when the client asked "Expect:
 * 100-continue" (it then never sends the body).  But when a body is already on its way,
 * answering at once means libmicrohttpd closes the socket with unread bytes in it, the
 * kernel answers them with a reset, and the client may lose the answer before reading
 * it.  So then the body is read and dropped - counted, never buffered - and the refusal
 * is answered at its end, up to HTTP_DISCARD_MAX bytes; a Content-Length above that is
 * refused at once, and a chunked body that passes it has its connection cut.  (A reply
 * in mid-body is not possible: libmicrohttpd queues responses only before or after it.)
 *
 * Every refusal is logged through cfg->log with its reason, except that refusals for rate
 * are logged at most once a second per address, the line counting those not logged: a
 * flood must not turn into a flood of log lines.  The bearer token itself is never logged
 * (nor is a JSON parse error's excerpt of the body, which may hold a secret).
 *
 * TLS.  With a certificate and key the daemon speaks only HTTPS (GnuTLS under
 * libmicrohttpd, TLS 1.2 and 1.3).  The files are read and checked with GnuTLS before the
 * daemon starts, so a bad file is refused with a sentence naming it and the problem
 * instead of libmicrohttpd's "could not start".
 *
 * Streams end when the server stops: their reader checks the server's stop flag between
 * waits, so http_stop never hangs on a follower.  While a stream waits for data it polls
 * the client socket, so a follower that hangs up frees its thread within ~100 ms instead
 * of at the next byte.
 */
#define _GNU_SOURCE /* explicit_bzero */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <math.h> /* isnan */
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cookie.h"
#include "token.h"
#include "../core/utf8.h"

#define HTTP_SEGMENTS_MAX    32                        /* path segments; deeper paths are 404 */
#define HTTP_DISCARD_MAX     ((size_t)8 * 1024 * 1024) /* bytes of a refused body read, dropped */
#define HTTP_CONN_TIMEOUT_S  30u                       /* idle connection timeout (not streams) */
#define HTTP_CONN_MEMORY     ((size_t)64 * 1024)       /* libmicrohttpd pool per connection */
#define HTTP_STREAM_BLOCK    ((size_t)16 * 1024)       /* bytes per stream read */
#define HTTP_STREAM_WAIT_MS  100                       /* pause when a stream has nothing yet */
#define HTTP_CONNECTIONS_DEF 256
#define HTTP_PEM_MAX         ((size_t)1024 * 1024) /* bytes of a certificate or key file */
#define HTTP_TLS_PRIORITIES  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define RATE_SLOTS           4096       /* client addresses with a bucket */
#define RATE_PROBE           8          /* places an address may take in the table */
#define RATE_LOG_NS          1000000000 /* rate refusals: one log line a second per address */

/* One client address's token bucket. */
struct rate_slot {
    char addr[INET6_ADDRSTRLEN]; /* "" = free */
    double tokens;
    int64_t seen_ns;   /* monotonic time of the last refill */
    int64_t logged_ns; /* of the last refusal logged */
    uint32_t unlogged; /* refusals since then, not logged */
};

struct route {
    enum http_method method;
    char *pattern;
    char **segs; /* pattern segments; "{x}" segments match anything non-empty */
    size_t n_segs;
    http_handler handler;
    bool public;
    const void *arg;
    size_t body_max;
    int perm;
};

struct http_server {
    struct MHD_Daemon *daemon;
    int port;
    http_authorize_fn authorize;
    http_authenticate_fn authenticate;
    void (*principal_free)(void *principal);
    int (*permit)(void *ctx, const struct http_request *req, char *why, size_t why_cap);
    char *session_cookie; /* the cookie authenticate reads, or NULL */
    bool tls;
    char *token; /* when there is no authorize callback */
    size_t token_len;
    char *tls_cert, *tls_key; /* PEM text, kept while the daemon runs */
    size_t tls_key_len;
    double rate, burst; /* requests a second and bucket size per address; rate 0: none */
    pthread_mutex_t rate_mu;
    struct rate_slot *rate_slots;
    struct route *routes;
    size_t n_routes;
    struct route fallback; /* handler NULL: none (unknown paths are 404) */
    void *ctx;
    void (*log)(void *ctx, const char *level, const char *msg);
    void (*after)(void *ctx);
    atomic_bool stopping;
};

struct query_pair {
    char *key;
    char *value;
};

/* Per-request state, from the first call of the access handler to "completed". */
struct req_state {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const struct route *route;
    struct http_request req;
    char method_text[16];
    char remote[INET6_ADDRSTRLEN];
    char who[HTTP_WHO_MAX]; /* the caller's name once authorized, else "" */
    void *principal;        /* what authenticate made of the caller (principal_free) */
    bool quiet;             /* this refusal is counted, not logged (rate) */
    char *raw_path;         /* as received, for logs */
    char *path;             /* decoded */
    char *segbuf;           /* decoded segments, NUL-separated */
    char *segs[HTTP_SEGMENTS_MAX];
    size_t n_segs;
    struct query_pair *query;
    size_t n_query;
    struct strbuf body;
    bool over;      /* the body is being dropped: too large, or the request is refused */
    size_t dropped; /* bytes of it dropped */
    bool may_defer; /* a refusal now would race the body in flight: answer after it */
    struct {        /* the refusal to answer once the body has been read (status 0: none) */
        int status;
        const char *code, *field, *hname;
        char hvalue[64];
        char msg[TY_ERR_MSG_MAX];
    } deferred;
    bool body_oom;
};

struct stream_ctx {
    struct http_server *srv;
    long (*fn)(void *arg, uint64_t pos, char *buf, size_t max);
    void (*free_fn)(void *arg);
    void *arg;
    int fd;
};

static const char *const method_names[] = {NULL, "GET", "POST", "PUT", "PATCH", "DELETE"};

static enum http_method method_parse(const char *s)
{
    for (int m = HTTP_GET; m <= HTTP_DELETE; m++)
        if (strcmp(s, method_names[m]) == 0)
            return (enum http_method)m;
    return (enum http_method)0;
}

/* ---- codes and statuses ---------------------------------------------------------- */

int http_status_for(int code)
{
    switch (code) {
    case TY_EINVAL:
    case TY_ERANGE: return 400;
    case TY_EAUTH: return 401;
    case TY_EPERM: return 403;
    case TY_ENOENT: return 404;
    case TY_EEXIST:
    case TY_EBUSY: return 409;
    case TY_ECONFLICT: return 412;
    case TY_ENOSPC: return 507;
    case TY_EUNAVAIL: return 503;
    default: return 500;
    }
}

int http_if_match(const struct http_request *req, int64_t *version, struct ty_err *err)
{
    *version = 0;
    const char *p = req->if_match;
    if (p == NULL)
        return 0;
    if (p[0] == 'W' && p[1] == '/')
        p += 2;
    bool quoted = *p == '"';
    p += quoted;
    int64_t v = 0;
    const char *digits = p;
    while (*p >= '0' && *p <= '9' && v < INT64_MAX / 10)
        v = v * 10 + (*p++ - '0');
    if (quoted && *p == '"')
        p++;
    if (p == digits || *p != '\0' || v <= 0 || (quoted && p[-1] != '"'))
        return ty_error(err, TY_EINVAL, "If-Match", -1, 0, "If-Match: expected a version number");
    *version = v;
    return 0;
}

static json_t *error_body(const char *code, const char *field, const char *msg)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "field", field && *field ? json_string(field) : json_null());
    json_t *root = json_object();
    json_object_set_new(root, "error", e);
    return root;
}

void http_error(struct http_response *resp, const struct ty_err *err)
{
    int code = err != NULL && err->code != 0 ? err->code : TY_EIO;
    const char *msg = err != NULL && err->msg[0] ? err->msg : ty_strerror(code);
    resp->status = http_status_for(code);
    json_decref(resp->body);
    resp->body = error_body(ty_code_name(code), err ? err->field : NULL, msg);
}

/* ---- text helpers ----------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (room for n+1); '+' becomes ' ' when plus_space.
 * Returns 0, or a static reason the text is refused. */
static const char *pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t *out_n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = n - i >= 3 ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return "a malformed percent-escape";
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0')
            return "a NUL byte";
        out[o++] = c;
    }
    out[o] = '\0';
    if (utf8_invalid_at((const unsigned char *)out, o) != o)
        return "invalid UTF-8";
    *out_n = o;
    return NULL;
}

/* Append s to sb as a double-quoted log value: quotes, backslashes and control bytes
 * escaped, so one log line stays one line whatever a client sends. */
static void add_quoted(struct strbuf *sb, const char *s)
{
    sb_addc(sb, '"');
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_addf(sb, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            sb_addf(sb, "\\x%02x", c);
        else
            sb_addc(sb, (char)c);
    }
    sb_addc(sb, '"');
}

static void srv_log(struct http_server *srv, const char *level, const char *msg)
{
    if (srv->log != NULL)
        srv->log(srv->ctx, level, msg);
}

/* ---- responses -------------------------------------------------------------------- */

static void log_refusal(struct req_state *rs, int status, const char *reason)
{
    if (rs->srv->log == NULL)
        return;
    char buf[1024];
    struct strbuf sb;
    sb_init_fixed(&sb, buf, sizeof buf);
    sb_addf(&sb, "http refused status=%d method=", status);
    add_quoted(&sb, rs->method_text);
    sb_adds(&sb, " path=");
    add_quoted(&sb, rs->raw_path);
    sb_addf(&sb, " remote=%s", rs->remote);
    if (strncmp(rs->who, "user:", 5) == 0) { /* a signed-in user (authenticate's name) */
        sb_adds(&sb, " user=");
        add_quoted(&sb, rs->who + 5);
    } else if (rs->who[0] != '\0') {
        sb_adds(&sb, " token=");
        add_quoted(&sb, rs->who);
    }
    sb_adds(&sb, " reason=");
    add_quoted(&sb, reason);
    srv_log(rs->srv, status == 401 || status == 429 ? "warn" : "info", sb_str(&sb));
}

void http_response_header(struct http_response *resp, const char *name, const char *fmt, ...)
{
    if (resp->n_headers >= HTTP_HEADERS_MAX || resp->n_owned >= HTTP_HEADERS_MAX)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    char *v = strdup(buf);
    if (v == NULL)
        return;
    resp->headers[resp->n_headers].name = name;
    resp->headers[resp->n_headers].value = v;
    resp->n_headers++;
    resp->owned[resp->n_owned++] = v;
}

static void response_headers_free(struct http_response *resp)
{
    for (size_t i = 0; i < resp->n_owned; i++)
        free(resp->owned[i]);
    resp->n_owned = 0;
    resp->n_headers = 0;
}

/* Whether the handler set header `name` itself. */
static bool has_header(const struct http_response *extra, const char *name)
{
    for (size_t i = 0; extra != NULL && i < extra->n_headers && i < HTTP_HEADERS_MAX; i++)
        if (extra->headers[i].name != NULL && strcasecmp(extra->headers[i].name, name) == 0)
            return true;
    return false;
}

/* What every answer carries, JSON, file or stream, success or refusal: the browser must not
 * guess types, frame the console, leak its URLs elsewhere, or run a script not ours; and,
 * unless the handler says otherwise (a file of the console), nothing is cached. */
static void add_common_headers(struct MHD_Response *r, const struct http_response *extra)
{
    if (!has_header(extra, MHD_HTTP_HEADER_CACHE_CONTROL))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "same-origin");
    MHD_add_response_header(r, "Content-Security-Policy", HTTP_CSP);
    for (size_t i = 0; extra != NULL && i < extra->n_headers && i < HTTP_HEADERS_MAX; i++)
        if (extra->headers[i].name != NULL && extra->headers[i].value != NULL)
            MHD_add_response_header(r, extra->headers[i].name, extra->headers[i].value);
}

/* Queue a JSON response; body is stolen.  Returns the access handler's answer. */
static enum MHD_Result queue_data(struct MHD_Connection *conn, int status, char *data, size_t len,
                                  const char *etag, const char *hname, const char *hvalue,
                                  const struct http_response *extra);

static enum MHD_Result queue_json(struct MHD_Connection *conn, int status, json_t *body,
                                  const char *etag, const char *hname, const char *hvalue,
                                  const struct http_response *extra)
{
    struct strbuf sb;
    sb_init(&sb);
    if (body != NULL && status != 204 && status != 304) {
        char *txt = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (txt == NULL) {
            status = 500;
            sb_adds(&sb, "{\"error\":{\"code\":\"internal\",\"message\":\"the response could "
                         "not be encoded\",\"field\":null}}");
        } else {
            sb_adds(&sb, txt);
            free(txt);
        }
        sb_addc(&sb, '\n');
    }
    json_decref(body);
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return MHD_NO;
    }
    size_t len = sb.len;
    char *data = len > 0 ? sb_detach(&sb) : NULL;
    sb_free(&sb);
    return queue_data(conn, status, data, len, etag, hname, hvalue, extra);
}

/* Queue data[0..len) (a JSON text, malloc'd and taken over; NULL when len is 0) with the
 * headers every answer has. */
static enum MHD_Result queue_data(struct MHD_Connection *conn, int status, char *data, size_t len,
                                  const char *etag, const char *hname, const char *hvalue,
                                  const struct http_response *extra)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data != NULL ? data : (void *)"",
                                                             data != NULL ? MHD_RESPMEM_MUST_FREE
                                                                          : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(data);
        return MHD_NO;
    }
    if (len > 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    add_common_headers(r, extra);
    if (etag != NULL && *etag) {
        if (etag[0] == '"' || strncmp(etag, "W/", 2) == 0) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        } else {
            char q[256];
            snprintf(q, sizeof q, "\"%s\"", etag);
            MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, q);
        }
    }
    if (hname != NULL)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Queue a handler's bytes answer (resp->bytes, borrowed; none for a 304) with its content
 * type, ETag, the headers every answer has and the handler's own. */
static enum MHD_Result queue_bytes(struct MHD_Connection *conn, const struct http_response *resp)
{
    bool body = resp->status != 304 && resp->bytes != NULL;
    /* libmicrohttpd takes a non-const buffer, which PERSISTENT promises not to change */
    union {
        const void *c;
        void *m;
    } data = {.c = body ? resp->bytes : ""};
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body ? resp->bytes_len : 0, data.m, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (body)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type
                                                   : "text/plain; charset=utf-8");
    if (resp->etag != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, resp->etag);
    add_common_headers(r, resp);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answer a request the layer refuses: JSON error, log line with the reason. */
static enum MHD_Result refuse(struct req_state *rs, int status, const char *code, const char *field,
                              const char *hname, const char *hvalue, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static enum MHD_Result refuse(struct req_state *rs, int status, const char *code, const char *field,
                              const char *hname, const char *hvalue, const char *fmt, ...)
{
    char msg[TY_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!rs->quiet)
        log_refusal(rs, status, msg);
    if (rs->may_defer) {
        /* a body is in flight: drop it, then answer (see the top of this file) */
        rs->deferred.status = status;
        rs->deferred.code = code;
        rs->deferred.field = field;
        rs->deferred.hname = hname;
        snprintf(rs->deferred.hvalue, sizeof rs->deferred.hvalue, "%s", hvalue ? hvalue : "");
        snprintf(rs->deferred.msg, sizeof rs->deferred.msg, "%s", msg);
        rs->over = true;
        sb_free(&rs->body);
        return MHD_YES;
    }
    return queue_json(rs->conn, status, error_body(code, field, msg), NULL, hname, hvalue, NULL);
}

/* Wait up to HTTP_STREAM_WAIT_MS for the client to hang up.  true when it has. */
static bool peer_gone(int fd)
{
    if (fd < 0) {
        struct timespec ts = {0, HTTP_STREAM_WAIT_MS * 1000000L};
        nanosleep(&ts, NULL);
        return false;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, HTTP_STREAM_WAIT_MS);
    if (n <= 0)
        return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return true;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return true;
    /* the client sent something (a pipelined request): it is there; wait out the pause */
    struct timespec ts = {0, HTTP_STREAM_WAIT_MS * 1000000L};
    nanosleep(&ts, NULL);
    return false;
}

/* libmicrohttpd content reader for streams: loop until the handler's stream gives bytes,
 * ends, the client hangs up or the server stops. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_ctx *s = cls;
    for (;;) {
        if (atomic_load(&s->srv->stopping))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        long n = s->fn(s->arg, pos, buf, max);
        if (n > 0)
            return (ssize_t)((size_t)n > max ? max : (size_t)n);
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (peer_gone(s->fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free(void *cls)
{
    struct stream_ctx *s = cls;
    if (s->free_fn != NULL)
        s->free_fn(s->arg);
    free(s);
}

static enum MHD_Result queue_stream(struct req_state *rs, struct http_response *resp)
{
    struct stream_ctx *s = calloc(1, sizeof *s);
    if (s == NULL) {
        if (resp->stream_free != NULL)
            resp->stream_free(resp->stream_arg);
        response_headers_free(resp);
        return MHD_NO;
    }
    s->srv = rs->srv;
    s->fn = resp->stream;
    s->free_fn = resp->stream_free;
    s->arg = resp->stream_arg;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rs->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci != NULL ? ci->connect_fd : -1;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK,
                                                               stream_read, s, stream_free);
    if (r == NULL) {
        stream_free(s);
        response_headers_free(resp);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    add_common_headers(r, resp);
    response_headers_free(resp);
    /* a follower may wait long for the next byte: no idle timeout for this connection */
    MHD_set_connection_option(rs->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    enum MHD_Result ret =
        MHD_queue_response(rs->conn, (unsigned)(resp->status ? resp->status : 200), r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- requests --------------------------------------------------------------------- */

static bool route_match(const struct route *r, struct req_state *rs, const char **params,
                        size_t *n_params)
{
    if (r->n_segs != rs->n_segs)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < r->n_segs; i++) {
        const char *p = r->segs[i];
        if (p[0] == '{') {
            if (rs->segs[i][0] == '\0')
                return false;
            if (params != NULL)
                params[np] = rs->segs[i];
            np++;
        } else if (strcmp(p, rs->segs[i]) != 0) {
            return false;
        }
    }
    if (n_params != NULL)
        *n_params = np;
    return true;
}

/* The bearer token of the Authorization header into *tok (len *n): NULL when there is one,
 * else why not ("missing ..." when there is no header at all: *none is then set). */
static const char *bearer_of(struct req_state *rs, const char **tok, size_t *n, bool *none)
{
    *none = false;
    const char *h =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL) {
        *none = true;
        return "missing bearer token (send Authorization: Bearer <token>)";
    }
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return "the Authorization header is not a bearer token";
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    *tok = h;
    *n = len;
    return NULL;
}

/* The credentials of a request, for the authenticate callback: the bearer token, else the
 * session cookie.  NULL, or why there are none that could be used. */
static const char *credentials_of(struct req_state *rs, enum http_method m,
                                  struct http_credentials *c)
{
    memset(c, 0, sizeof *c);
    c->method = m;
    c->remote = rs->remote;
    c->csrf = MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, "X-CSRF-Token");
    bool none = false;
    const char *why = bearer_of(rs, &c->bearer, &c->bearer_len, &none);
    if (why == NULL || !none || rs->srv->session_cookie == NULL)
        return why;
    const char *cookies =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    if (cookies != NULL && cookie_find(cookies, strlen(cookies), rs->srv->session_cookie,
                                       &c->session, &c->session_len, &c->session_ambiguous))
        return NULL;
    return "missing bearer token or session (send Authorization: Bearer <token>, or sign in "
           "with POST /api/v1/session and send its cookie)";
}

/* NULL when the request may go on (rs->who names the caller when the callback decided),
 * else why not, in why[cap]; *code is TY_EAUTH, or the callback's code when it could not
 * decide (or refused with another). */
static const char *auth_problem(struct req_state *rs, enum http_method m, char *why, size_t cap,
                                int *code)
{
    *code = TY_EAUTH;
    struct http_server *srv = rs->srv;
    char who[HTTP_WHO_MAX] = "";
    why[0] = '\0';
    if (srv->authenticate != NULL) {
        struct http_credentials c;
        const char *no = credentials_of(rs, m, &c);
        if (no != NULL)
            return no;
        int rc = srv->authenticate(srv->ctx, &c, who, sizeof who, &rs->principal, why, cap);
        if (rc == 0 || who[0] != '\0') /* refused callers the callback could name: logged */
            snprintf(rs->who, sizeof rs->who, "%s", who[0] ? who : "?");
        if (rc == 0)
            return NULL;
        if (rs->principal != NULL && srv->principal_free != NULL)
            srv->principal_free(rs->principal);
        rs->principal = NULL;
        *code = rc;
        if (why[0] == '\0')
            snprintf(why, cap, "%s", ty_strerror(rc));
        return why;
    }
    const char *h = NULL;
    size_t n = 0;
    bool none;
    const char *no = bearer_of(rs, &h, &n, &none);
    if (no != NULL)
        return no;
    if (srv->authorize == NULL)
        return token_equal(srv->token, srv->token_len, h, n) ? NULL : "wrong bearer token";
    int rc = srv->authorize(srv->ctx, h, n, who, sizeof who, why, cap);
    if (rc == 0) {
        snprintf(rs->who, sizeof rs->who, "%s", who[0] ? who : "?");
        return NULL;
    }
    *code = rc;
    if (why[0] == '\0')
        snprintf(why, cap, "%s", rc == TY_EAUTH ? "wrong bearer token" : ty_strerror(rc));
    return why;
}

/* Take one request from the bucket of the client address `addr`.  true when there was
 * one; else *retry_s says when there will be, and *log whether to log this refusal (with
 * *unlogged, those not logged before it). */
static bool rate_take(struct http_server *srv, const char *addr, int *retry_s, bool *log,
                      uint32_t *unlogged)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_mutex_lock(&srv->rate_mu);
    struct rate_slot *slot = NULL, *free_slot = NULL, *oldest = NULL;
    for (uint32_t k = 0; k < RATE_PROBE && slot == NULL; k++) {
        struct rate_slot *c = &srv->rate_slots[(h + k) % RATE_SLOTS];
        if (c->addr[0] == '\0') {
            if (free_slot == NULL)
                free_slot = c;
        } else if (strcmp(c->addr, addr) == 0) {
            slot = c;
        } else if (oldest == NULL || c->seen_ns < oldest->seen_ns) {
            oldest = c;
        }
    }
    if (slot == NULL) {
        slot = free_slot != NULL ? free_slot : oldest;
        memset(slot, 0, sizeof *slot);
        snprintf(slot->addr, sizeof slot->addr, "%s", addr);
        slot->tokens = srv->burst;
        slot->seen_ns = now;
    }
    slot->tokens += (double)(now - slot->seen_ns) / 1e9 * srv->rate;
    if (slot->tokens > srv->burst)
        slot->tokens = srv->burst;
    slot->seen_ns = now;
    bool ok = slot->tokens >= 1.0;
    if (ok) {
        slot->tokens -= 1.0;
    } else {
        double wait = (1.0 - slot->tokens) / srv->rate; /* seconds until the next token */
        *retry_s = wait < 1.0 ? 1 : wait > 3600.0 ? 3600 : (int)wait + (wait > (int)wait);
        *log = slot->logged_ns == 0 || now - slot->logged_ns >= RATE_LOG_NS;
        if (*log) {
            *unlogged = slot->unlogged;
            slot->unlogged = 0;
            slot->logged_ns = now;
        } else {
            slot->unlogged++;
        }
    }
    pthread_mutex_unlock(&srv->rate_mu);
    return ok;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

struct query_walk {
    struct req_state *rs;
    const char *problem;
    const char *bad_key;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    struct req_state *rs = w->rs;
    if (value == NULL)
        value = "";
    struct query_pair *q = realloc(rs->query, (rs->n_query + 1) * sizeof *q);
    if (q == NULL) {
        w->problem = "out of memory";
        return MHD_NO;
    }
    rs->query = q;
    size_t kn = strlen(key), vn = strlen(value), on;
    char *k = malloc(kn + 1), *v = malloc(vn + 1);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        w->problem = "out of memory";
        return MHD_NO;
    }
    const char *why = pct_decode(key, kn, true, k, &on);
    if (why == NULL)
        why = pct_decode(value, vn, true, v, &on);
    if (why != NULL) {
        w->problem = why;
        w->bad_key = key;
        free(k);
        free(v);
        return MHD_NO;
    }
    q[rs->n_query].key = k;
    q[rs->n_query].value = v;
    rs->n_query++;
    return MHD_YES;
}

const char *http_query(const struct http_request *req, const char *key)
{
    const struct req_state *rs = req->conn;
    if (rs == NULL)
        return NULL;
    for (size_t i = 0; i < rs->n_query; i++)
        if (strcmp(rs->query[i].key, key) == 0)
            return rs->query[i].value;
    return NULL;
}

/* Split and decode the path.  NULL, or why it is refused. */
static const char *split_path(struct req_state *rs, const char *url)
{
    size_t n = strlen(url);
    rs->segbuf = malloc(n + 1);
    rs->path = malloc(n + 2);
    if (rs->segbuf == NULL || rs->path == NULL)
        return "out of memory";
    if (url[0] != '/')
        return "the path must start with /";
    /* one trailing slash is ignored: /api/v1/jobs/ is /api/v1/jobs */
    if (n > 1 && url[n - 1] == '/')
        n--;
    struct strbuf path;
    sb_init_fixed(&path, rs->path, n + 2);
    char *out = rs->segbuf;
    const char *p = url + 1, *end = url + n;
    rs->n_segs = 0;
    while (p <= end && n > 1) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash != NULL ? slash : end;
        if (rs->n_segs == HTTP_SEGMENTS_MAX)
            return "the path has too many segments";
        size_t on;
        const char *why = pct_decode(p, (size_t)(seg_end - p), false, out, &on);
        if (why != NULL)
            return why;
        rs->segs[rs->n_segs++] = out;
        sb_addc(&path, '/');
        sb_adds(&path, out);
        out += on + 1;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    if (rs->n_segs == 0)
        sb_addc(&path, '/');
    return NULL;
}

static bool media_type_ok(const char *ct, enum http_method m)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    bool ok =
        (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
        (m == HTTP_PATCH && n == 28 && strncasecmp(ct, "application/merge-patch+json", 28) == 0);
    if (!ok)
        return false;
    /* parameters: a charset, if any, must be UTF-8 */
    for (const char *p = strchr(ct + n, ';'); p != NULL; p = strchr(p + 1, ';')) {
        const char *k = p + 1;
        while (*k == ' ' || *k == '\t')
            k++;
        if (strncasecmp(k, "charset=", 8) != 0)
            continue;
        k += 8;
        if (*k == '"')
            k++;
        if (strncasecmp(k, "utf-8", 5) != 0 && strncasecmp(k, "utf8", 4) != 0)
            return false;
    }
    return true;
}

static void remote_text(struct req_state *rs)
{
    snprintf(rs->remote, sizeof rs->remote, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rs->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, rs->remote,
                  sizeof rs->remote);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, rs->remote,
                  sizeof rs->remote);
}

/* First call for a request: everything that can be decided from the headers. */
/* The body a request may send: its route's limit, or HTTP_BODY_MAX (before a route is
 * chosen too). */
static size_t body_max(const struct req_state *rs)
{
    return rs->route != NULL && rs->route->body_max > 0 ? rs->route->body_max
                                                        : (size_t)HTTP_BODY_MAX;
}

static enum MHD_Result begin(struct req_state *rs, const char *url, const char *method)
{
    snprintf(rs->method_text, sizeof rs->method_text, "%s", method);
    remote_text(rs);
    enum http_method m = method_parse(method);
    const char *cl =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *expect =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    unsigned long long length = cl != NULL ? strtoull(cl, NULL, 10) : 0;
    bool has_body = length > 0 || te != NULL;
    rs->may_defer = has_body && length <= (unsigned long long)HTTP_DISCARD_MAX &&
                    !(expect != NULL && strcasecmp(expect, "100-continue") == 0);
    rs->raw_path = strdup(url != NULL ? url : "");
    if (rs->raw_path == NULL)
        return MHD_NO;

    if (rs->srv->rate > 0) {
        int retry = 1;
        bool log = false;
        uint32_t unlogged = 0;
        if (!rate_take(rs->srv, rs->remote, &retry, &log, &unlogged)) {
            char after[16], why[TY_ERR_MSG_MAX];
            snprintf(after, sizeof after, "%d", retry);
            snprintf(why, sizeof why,
                     "rate limit: more than %g requests a second (burst %g) from %s; retry in "
                     "%d s",
                     rs->srv->rate, rs->srv->burst, rs->remote, retry);
            if (log) { /* with the refusals not logged since the last line */
                char line[TY_ERR_MSG_MAX + 64];
                snprintf(line, sizeof line, "%s (%u more refused since the last line)", why,
                         unlogged);
                log_refusal(rs, 429, line);
            }
            rs->quiet = true;
            return refuse(rs, 429, "too_many_requests", NULL, "Retry-After", after, "%s", why);
        }
    }

    const char *why = split_path(rs, rs->raw_path);
    if (why != NULL)
        return refuse(rs, 400, "invalid", "path", NULL, NULL, "path: %s", why);

    const struct route *chosen = NULL;
    unsigned allow = 0;
    for (size_t i = 0; i < rs->srv->n_routes; i++) {
        const struct route *r = &rs->srv->routes[i];
        if (!route_match(r, rs, NULL, NULL))
            continue;
        allow |= 1u << r->method;
        if (chosen == NULL && r->method == m)
            chosen = r;
    }
    /* a path no route knows, read: the fallback's (the console's files and its pages) */
    bool fallback = allow == 0 && rs->srv->fallback.handler != NULL &&
                    (m == HTTP_GET || strcmp(method, "HEAD") == 0);
    if (allow == 0 && !fallback)
        return refuse(rs, 404, "not_found", "path", NULL, NULL, "no such endpoint: %s %s",
                      rs->method_text, rs->path);
    if (fallback)
        chosen = &rs->srv->fallback;
    if (chosen == NULL) {
        char list[64] = "";
        struct strbuf sb;
        sb_init_fixed(&sb, list, sizeof list);
        for (int k = HTTP_GET; k <= HTTP_DELETE; k++)
            if (allow & (1u << k))
                sb_addf(&sb, "%s%s", sb.len ? ", " : "", method_names[k]);
        return refuse(rs, 405, "method_not_allowed", "method", MHD_HTTP_HEADER_ALLOW, list,
                      "%s does not accept %s (allowed: %s)", rs->path, rs->method_text, list);
    }
    rs->route = chosen;
    if (!fallback)
        route_match(chosen, rs, rs->req.params, &rs->req.n_params);

    char auth_why[TY_ERR_MSG_MAX];
    int auth_code = TY_EAUTH;
    if (!chosen->public &&
        (why = auth_problem(rs, m, auth_why, sizeof auth_why, &auth_code)) != NULL) {
        if (rs->srv->after != NULL)
            rs->srv->after(rs->srv->ctx); /* what the callback took for the thread */
        if (auth_code != TY_EAUTH)
            return refuse(rs, http_status_for(auth_code), ty_code_name(auth_code), NULL, NULL, NULL,
                          "%s", why);
        return refuse(rs, 401, "unauthorized", NULL, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                      "Bearer realm=\"tethys\"", "%s", why);
    }

    struct query_walk w = {rs, NULL, NULL};
    MHD_get_connection_values(rs->conn, MHD_GET_ARGUMENT_KIND, collect_query, &w);
    if (w.problem != NULL)
        return refuse(rs, 400, "invalid", "query", NULL, NULL, "query parameter \"%.64s\": %s",
                      w.bad_key ? w.bad_key : "?", w.problem);

    if (length > (unsigned long long)body_max(rs))
        return refuse(rs, 413, "too_large", "body", NULL, NULL,
                      "body: %llu bytes is more than the limit of %zu bytes", length, body_max(rs));
    if (has_body && (m == HTTP_POST || m == HTTP_PUT || m == HTTP_PATCH)) {
        const char *ct =
            MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!media_type_ok(ct, m))
            return refuse(rs, 415, "unsupported_media_type", "Content-Type", NULL, NULL,
                          "Content-Type: the body must be application/json (got \"%.64s\")",
                          ct != NULL ? ct : "none");
    }
    return MHD_YES;
}

/* The whole request is in: check the body and call the handler. */
static enum MHD_Result finish(struct req_state *rs)
{
    rs->may_defer = false; /* the body is in: refusals from here on are answered at once */
    if (rs->deferred.status != 0)
        return queue_json(rs->conn, rs->deferred.status,
                          error_body(rs->deferred.code, rs->deferred.field, rs->deferred.msg), NULL,
                          rs->deferred.hname, rs->deferred.hname ? rs->deferred.hvalue : NULL,
                          NULL);
    if (rs->body_oom)
        return refuse(rs, 500, "out_of_memory", "body", NULL, NULL,
                      "body: out of memory while reading it");
    if (rs->over)
        return refuse(rs, 413, "too_large", "body", NULL, NULL,
                      "body: more than the limit of %zu bytes", body_max(rs));
    const char *body = sb_str(&rs->body);
    size_t len = rs->body.len;
    const char *nul = memchr(body, '\0', len);
    if (nul != NULL)
        return refuse(rs, 400, "invalid", "body", NULL, NULL,
                      "body: contains a NUL byte at offset %zu", (size_t)(nul - body));
    size_t bad = utf8_invalid_at((const unsigned char *)body, len);
    if (bad != len)
        return refuse(rs, 400, "invalid", "body", NULL, NULL,
                      "body: invalid UTF-8 at byte offset %zu", bad);

    struct http_request *req = &rs->req;
    req->method = rs->route->method;
    req->route_arg = rs->route->arg;
    req->path = rs->path;
    req->body = body;
    req->body_len = len;
    req->if_match = MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, "If-Match");
    req->if_none_match =
        MHD_lookup_connection_value(rs->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    req->remote = rs->remote;
    req->who = rs->who[0] != '\0' ? rs->who : NULL;
    req->conn = rs;
    req->route_perm = rs->route->perm;
    req->principal = rs->principal;
    req->tls = rs->srv->tls;

    if (!rs->route->public && rs->srv->permit != NULL) {
        char why[TY_ERR_MSG_MAX] = "";
        int rc = rs->srv->permit(rs->srv->ctx, req, why, sizeof why);
        if (rc != 0) {
            if (rs->srv->after != NULL)
                rs->srv->after(rs->srv->ctx);
            return refuse(rs, http_status_for(rc), ty_code_name(rc), NULL, NULL, NULL, "%s",
                          why[0] ? why : ty_strerror(rc));
        }
    }

    struct http_response resp;
    memset(&resp, 0, sizeof resp);
    rs->route->handler(rs->srv->ctx, req, &resp);
    if (rs->srv->after != NULL)
        rs->srv->after(rs->srv->ctx);
    if (resp.stream != NULL) {
        json_decref(resp.body);
        free(resp.etag);
        return queue_stream(rs, &resp); /* frees resp's headers */
    }
    if (resp.status < 100 || resp.status > 599) {
        log_refusal(rs, 500, "the handler gave no valid status (a bug)");
        json_decref(resp.body);
        free(resp.raw);
        resp.raw = NULL;
        resp.body = error_body("internal", NULL, "the handler gave no valid status");
        resp.status = 500;
    }
    enum MHD_Result ret;
    if (resp.bytes != NULL || resp.status == 304) { /* a file, or "not modified" */
        json_decref(resp.body);
        free(resp.raw);
        ret = queue_bytes(rs->conn, &resp);
    } else if (resp.raw != NULL) { /* already JSON text */
        json_decref(resp.body);
        ret =
            queue_data(rs->conn, resp.status, resp.raw, resp.raw_len, resp.etag, NULL, NULL, &resp);
    } else {
        ret = queue_json(rs->conn, resp.status, resp.body, resp.etag, NULL, NULL, &resp);
    }
    free(resp.etag);
    response_headers_free(&resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct req_state *rs = *con_cls;
    if (rs == NULL) {
        rs = calloc(1, sizeof *rs);
        if (rs == NULL)
            return MHD_NO;
        rs->srv = srv;
        rs->conn = conn;
        sb_init(&rs->body);
        *con_cls = rs;
        return begin(rs, url, method);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rs->over) {
            rs->dropped += n;
            if (rs->dropped > HTTP_DISCARD_MAX) {
                log_refusal(rs, rs->deferred.status ? rs->deferred.status : 413,
                            "body dropped past the discard limit: connection cut");
                return MHD_NO;
            }
        } else if (rs->body.len + n > body_max(rs)) {
            rs->over = true;
            rs->dropped = rs->body.len + n;
            sb_free(&rs->body);
        } else {
            sb_add(&rs->body, upload_data, n);
            if (sb_failed(&rs->body)) {
                rs->body_oom = true;
                rs->over = true; /* stop buffering */
            }
        }
        return MHD_YES;
    }
    return finish(rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req_state *rs = *con_cls;
    if (rs == NULL)
        return;
    if (rs->principal != NULL && rs->srv->principal_free != NULL)
        rs->srv->principal_free(rs->principal);
    for (size_t i = 0; i < rs->n_query; i++) {
        free(rs->query[i].key);
        free(rs->query[i].value);
    }
    free(rs->query);
    free(rs->raw_path);
    free(rs->path);
    free(rs->segbuf);
    sb_free(&rs->body);
    free(rs);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    if (srv->log == NULL)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    char line[640];
    struct strbuf sb;
    sb_init_fixed(&sb, line, sizeof line);
    sb_adds(&sb, "http libmicrohttpd msg=");
    add_quoted(&sb, msg);
    srv_log(srv, "warn", sb_str(&sb));
}

int http_body_json(const struct http_request *req, json_t **out, struct ty_err *err)
{
    *out = NULL;
    struct req_state *rs = req->conn;
    int rc = 0;
    char logged[TY_ERR_MSG_MAX] = ""; /* what the log says, when not err->msg */
    if (req->body_len == 0) {
        rc = ty_error(err, TY_EINVAL, "body", -1, 0,
                      "body: a JSON object is required (the request has none)");
    } else {
        json_error_t je;
        json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
        if (v == NULL) {
            rc = ty_error(err, TY_EINVAL, "body", je.position, 1,
                          "body: malformed JSON at line %d, column %d: %s", je.line, je.column,
                          je.text);
            /* je.text may quote the body near the error: a secret, maybe */
            snprintf(logged, sizeof logged, "body: malformed JSON at line %d, column %d", je.line,
                     je.column);
        } else if (!json_is_object(v)) {
            rc = ty_error(err, TY_EINVAL, "body", 0, (int)req->body_len,
                          "body: expected a JSON object, got %s",
                          json_is_array(v)    ? "an array"
                          : json_is_string(v) ? "a string"
                                              : "a scalar");
            json_decref(v);
        } else {
            *out = v;
        }
    }
    if (rc != 0 && rs != NULL && err != NULL)
        log_refusal(rs, 400, logged[0] ? logged : err->msg);
    return rc;
}

/* ---- start and stop --------------------------------------------------------------- */

static int parse_listen(const char *listen_s, struct sockaddr_storage *ss, socklen_t *len,
                        struct ty_err *err)
{
    if (listen_s == NULL || *listen_s == '\0')
        return ty_error(err, TY_EINVAL, "listen", -1, 0, "listen: no address given");
    char host[INET6_ADDRSTRLEN + 2];
    const char *port_s;
    if (listen_s[0] == '[') {
        const char *close = strchr(listen_s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - listen_s - 1) >= sizeof host)
            return ty_error(err, TY_EINVAL, "listen", -1, 0,
                            "listen: \"%s\" is not [IPv6-address]:port", listen_s);
        memcpy(host, listen_s + 1, (size_t)(close - listen_s - 1));
        host[close - listen_s - 1] = '\0';
        port_s = close + 2;
    } else {
        const char *colon = strrchr(listen_s, ':');
        if (colon == NULL || (size_t)(colon - listen_s) >= sizeof host)
            return ty_error(err, TY_EINVAL, "listen", -1, 0,
                            "listen: \"%s\" is not host:port (e.g. 127.0.0.1:8080)", listen_s);
        if (memchr(listen_s, ':', (size_t)(colon - listen_s)) != NULL)
            return ty_error(err, TY_EINVAL, "listen", -1, 0,
                            "listen: \"%s\": an IPv6 address needs brackets ([::1]:8080)",
                            listen_s);
        memcpy(host, listen_s, (size_t)(colon - listen_s));
        host[colon - listen_s] = '\0';
        port_s = colon + 1;
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(port_s, &end, 10);
    if (*port_s < '0' || *port_s > '9' || *end != '\0' || errno != 0 || port > 65535)
        return ty_error(err, TY_EINVAL, "listen", -1, 0,
                        "listen: \"%s\": the port must be a number from 0 to 65535", listen_s);
    memset(ss, 0, sizeof *ss);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;
    if (listen_s[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
    } else if (listen_s[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
    } else {
        return ty_error(err, TY_EINVAL, "listen", -1, 0,
                        "listen: \"%s\": the host must be an IPv4 address, [IPv6 address] or "
                        "localhost",
                        listen_s);
    }
    return 0;
}

int http_listen_is_loopback(const char *listen, bool *loopback, struct ty_err *err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    *loopback = false;
    int rc = parse_listen(listen, &ss, &len, err);
    if (rc != 0)
        return rc;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)&ss;
        *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    } else {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr;
        *loopback =
            IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    return 0;
}

/* Read a PEM file whole (NUL-terminated, malloc'd).  `what` names it in messages. */
static int read_pem(const char *path, const char *field, const char *what, char **out, size_t *len,
                    bool *loose, struct ty_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s %s: cannot read it: %s", what, path,
                        strerror(e));
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > HTTP_PEM_MAX) {
        close(fd);
        return ty_error(err, TY_EINVAL, field, -1, 0,
                        "%s %s: not a regular file of at most %zu "
                        "bytes",
                        what, path, HTTP_PEM_MAX);
    }
    *loose = (st.st_mode & 077) != 0;
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int e = errno;
    close(fd);
    if (buf == NULL)
        return ty_error(err, TY_ENOMEM, field, -1, 0, "out of memory");
    if (got != (size_t)st.st_size) {
        free(buf);
        return ty_error(err, TY_EINVAL, field, -1, 0, "%s %s: cannot read it: %s", what, path,
                        strerror(e ? e : EIO));
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static void format_utc(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Read the certificate and key and check them with GnuTLS: each parses, and they belong
 * together.  A certificate outside its validity period is only warned about (renewing
 * it must not need a working server). */
static int tls_load(struct http_server *s, const char *cert_path, const char *key_path,
                    struct ty_err *err)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return ty_error(err, TY_EINVAL, "tls_cert", -1, 0,
                        "TLS: this libmicrohttpd was built without TLS support");
    size_t cert_len = 0;
    bool loose = false;
    int rc =
        read_pem(cert_path, "tls_cert", "TLS certificate", &s->tls_cert, &cert_len, &loose, err);
    if (rc == 0)
        rc = read_pem(key_path, "tls_key", "TLS key", &s->tls_key, &s->tls_key_len, &loose, err);
    if (rc != 0)
        return rc;
    char line[600];
    if (loose) {
        snprintf(line, sizeof line,
                 "http tls key file may be read by other users (chmod 600 it) path=\"%s\"",
                 key_path);
        srv_log(s, "warn", line);
    }
    gnutls_datum_t cd = {(unsigned char *)s->tls_cert, (unsigned)cert_len};
    gnutls_datum_t kd = {(unsigned char *)s->tls_key, (unsigned)s->tls_key_len};
    gnutls_x509_crt_t crt = NULL;
    int g = gnutls_x509_crt_init(&crt);
    if (g == 0)
        g = gnutls_x509_crt_import(crt, &cd, GNUTLS_X509_FMT_PEM);
    if (g < 0) {
        gnutls_x509_crt_deinit(crt);
        return ty_error(err, TY_EINVAL, "tls_cert", -1, 0,
                        "TLS certificate %s: not a PEM certificate (%s)", cert_path,
                        gnutls_strerror(g));
    }
    time_t now = time(NULL), not_after = gnutls_x509_crt_get_expiration_time(crt),
           not_before = gnutls_x509_crt_get_activation_time(crt);
    gnutls_x509_crt_deinit(crt);
    char when[32];
    if (not_after != (time_t)-1 && not_after < now) {
        format_utc(not_after, when, sizeof when);
        snprintf(line, sizeof line,
                 "http tls certificate expired; clients will refuse it path=\"%s\" "
                 "not_after=%s",
                 cert_path, when);
        srv_log(s, "warn", line);
    } else if (not_before != (time_t)-1 && not_before > now) {
        format_utc(not_before, when, sizeof when);
        snprintf(line, sizeof line,
                 "http tls certificate not valid yet; clients will refuse it path=\"%s\" "
                 "not_before=%s",
                 cert_path, when);
        srv_log(s, "warn", line);
    }
    gnutls_x509_privkey_t key = NULL;
    g = gnutls_x509_privkey_init(&key);
    if (g == 0)
        g = gnutls_x509_privkey_import2(key, &kd, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN);
    gnutls_x509_privkey_deinit(key);
    if (g < 0)
        return ty_error(err, TY_EINVAL, "tls_key", -1, 0,
                        "TLS key %s: not a PEM private key without a passphrase (%s)", key_path,
                        gnutls_strerror(g));
    gnutls_certificate_credentials_t cred = NULL;
    g = gnutls_certificate_allocate_credentials(&cred);
    if (g == 0)
        g = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (g == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
        return ty_error(err, TY_EINVAL, "tls_key", -1, 0,
                        "TLS key %s does not belong to the certificate in %s", key_path, cert_path);
    if (g < 0)
        return ty_error(err, TY_EINVAL, "tls_cert", -1, 0, "TLS certificate %s with key %s: %s",
                        cert_path, key_path, gnutls_strerror(g));
    return 0;
}

static void free_server(struct http_server *s)
{
    free(s->token);
    free(s->session_cookie);
    free(s->tls_cert);
    if (s->tls_key != NULL) {
        explicit_bzero(s->tls_key, s->tls_key_len);
        free(s->tls_key);
    }
    free(s->rate_slots);
    pthread_mutex_destroy(&s->rate_mu);
    free(s);
}

int http_tls_check(const char *cert, const char *key, struct ty_err *err)
{
    struct http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    pthread_mutex_init(&s->rate_mu, NULL);
    int rc = tls_load(s, cert, key, err); /* no log: warnings come when it starts */
    free_server(s);
    return rc;
}

static int open_listener(const char *listen_s, int *fd_out, int *port_out, struct ty_err *err)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = 0;
    int rc = parse_listen(listen_s, &ss, &len, err);
    if (rc != 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ty_error(err, TY_EIO, "listen", -1, 0, "%s: %s", listen_s, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return ty_error(err, TY_EIO, "listen", -1, 0, "%s: %s", listen_s, strerror(e));
    }
    struct sockaddr_storage bound;
    memset(&bound, 0, sizeof bound);
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        int e = errno;
        close(fd);
        return ty_error(err, TY_EIO, "listen", -1, 0, "%s: %s", listen_s, strerror(e));
    }
    *port_out =
        ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
                                          : ((struct sockaddr_in *)(void *)&bound)->sin_port);
    *fd_out = fd;
    return 0;
}

static void free_routes(struct http_server *s)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].pattern);
        free(s->routes[i].segs);
    }
    free(s->routes);
    free(s->fallback.pattern);
    free(s->fallback.segs);
}

/* Copy and split one route pattern; segments point into the copy. */
static int compile_route(const struct http_route *in, struct route *out, struct ty_err *err)
{
    memset(out, 0, sizeof *out);
    if (in->pattern == NULL || in->pattern[0] != '/' || in->handler == NULL ||
        in->method < HTTP_GET || in->method > HTTP_DELETE)
        return ty_error(err, TY_EINVAL, "routes", -1, 0,
                        "route \"%s\": needs a method, a handler and a pattern starting with /",
                        in->pattern ? in->pattern : "(null)");
    out->pattern = strdup(in->pattern);
    out->segs = calloc(HTTP_SEGMENTS_MAX, sizeof *out->segs);
    if (out->pattern == NULL || out->segs == NULL)
        return ty_error(err, TY_ENOMEM, "routes", -1, 0, "out of memory");
    out->method = in->method;
    out->handler = in->handler;
    out->public = in->public;
    out->arg = in->arg;
    out->body_max = in->body_max;
    out->perm = in->perm;
    size_t params = 0;
    char *save = NULL;
    for (char *seg = strtok_r(out->pattern + 1, "/", &save); seg != NULL;
         seg = strtok_r(NULL, "/", &save)) {
        if (out->n_segs == HTTP_SEGMENTS_MAX)
            return ty_error(err, TY_EINVAL, "routes", -1, 0, "route \"%s\": too many segments",
                            in->pattern);
        size_t n = strlen(seg);
        if (seg[0] == '{' && (n < 3 || seg[n - 1] != '}'))
            return ty_error(err, TY_EINVAL, "routes", -1, 0,
                            "route \"%s\": a parameter must be a whole {segment}", in->pattern);
        if (seg[0] == '{' && ++params > HTTP_PARAMS_MAX)
            return ty_error(err, TY_EINVAL, "routes", -1, 0,
                            "route \"%s\": more than %d parameters", in->pattern, HTTP_PARAMS_MAX);
        out->segs[out->n_segs++] = seg;
    }
    return 0;
}

int http_start(const struct http_config *cfg, struct http_server **out, struct ty_err *err)
{
    *out = NULL;
    if (cfg->authorize == NULL && cfg->authenticate == NULL &&
        (cfg->token == NULL || cfg->token[0] == '\0'))
        return ty_error(err, TY_EINVAL, "token", -1, 0,
                        "token: the API needs a bearer token; none was given");
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        return ty_error(err, TY_EINVAL, cfg->tls_cert ? "tls_key" : "tls_cert", -1, 0,
                        "TLS needs both a certificate and its key; only the %s was given",
                        cfg->tls_cert ? "certificate" : "key");
    if (cfg->rate_per_s < 0 || isnan(cfg->rate_per_s))
        return ty_error(err, TY_EINVAL, "rate_limit", -1, 0,
                        "rate limit: %g requests a second is not a rate", cfg->rate_per_s);
    struct http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->rate_mu, NULL);
    s->ctx = cfg->ctx;
    s->after = cfg->after;
    s->log = cfg->log;
    s->authorize = cfg->authorize;
    s->authenticate = cfg->authenticate;
    s->principal_free = cfg->principal_free;
    s->permit = cfg->permit;
    s->tls = cfg->tls_cert != NULL;
    if (cfg->session_cookie != NULL && (s->session_cookie = strdup(cfg->session_cookie)) == NULL) {
        free_server(s);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    s->rate = cfg->rate_per_s;
    s->burst = cfg->rate_burst > 0 ? (double)cfg->rate_burst : (double)(uint64_t)(4 * s->rate);
    if (s->burst < 1)
        s->burst = 1;
    if (cfg->authorize == NULL && cfg->authenticate == NULL) {
        s->token = strdup(cfg->token);
        s->token_len = strlen(cfg->token);
    }
    s->routes = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *s->routes);
    if (s->rate > 0)
        s->rate_slots = calloc(RATE_SLOTS, sizeof *s->rate_slots);
    if ((cfg->authorize == NULL && cfg->authenticate == NULL && s->token == NULL) ||
        s->routes == NULL || (s->rate > 0 && s->rate_slots == NULL)) {
        free(s->routes);
        free_server(s);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cfg->n_routes; i++) {
        s->n_routes = i + 1;
        rc = compile_route(&cfg->routes[i], &s->routes[i], err);
        if (rc == 0 && cfg->permit != NULL && !cfg->routes[i].public && cfg->routes[i].perm == 0)
            rc = ty_error(err, TY_EINVAL, "routes", -1, 0,
                          "route %s %s: declares no permission (every route must)",
                          method_names[cfg->routes[i].method], cfg->routes[i].pattern);
    }
    if (rc == 0 && cfg->fallback != NULL) {
        struct http_route fb = *cfg->fallback;
        fb.method = HTTP_GET;
        fb.pattern = "/";
        fb.public = true;
        rc = compile_route(&fb, &s->fallback, err);
    }
    bool tls = cfg->tls_cert != NULL;
    if (rc == 0 && tls)
        rc = tls_load(s, cfg->tls_cert, cfg->tls_key, err);
    int fd = -1;
    if (rc == 0)
        rc = open_listener(cfg->listen, &fd, &s->port, err);
    if (rc == 0) {
        unsigned max = cfg->max_connections ? (unsigned)cfg->max_connections : HTTP_CONNECTIONS_DEF;
        struct MHD_OptionItem tls_opts[] = {
            {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, s->tls_key},
            {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
            {MHD_OPTION_END, 0, NULL},
        };
        s->daemon = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_USE_ITC | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0),
            /* the logger goes first, or libmicrohttpd prints what comes before it itself */
            0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, max,
            MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            HTTP_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
            MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_ARRAY, tls_opts,
            MHD_OPTION_END);
        if (s->daemon == NULL) {
            close(fd);
            rc = ty_error(err, TY_EIO, "listen", -1, 0,
                          "%s: the HTTP server could not start (see the log)", cfg->listen);
        }
    }
    if (rc != 0) {
        free_routes(s);
        free_server(s);
        return rc;
    }
    *out = s;
    return 0;
}

int http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    MHD_stop_daemon(s->daemon); /* closes the listener, ends connections, joins threads */
    free_routes(s);
    free_server(s);
}
