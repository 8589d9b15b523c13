/*
 * test_http.c - the HTTP layer against a real server on 127.0.0.1 (port 0), driven with
 * libcurl: routing and {params} (with %2F), tokens, 404/405/413/415/400, ETag, streams,
 * stopping with a follower connected, and the log line of every refusal; a second server
 * with the authenticate and permit callbacks (bearer or session cookie, the CSRF header
 * passed along, a principal for the handler, a route's declared permission refused with
 * 403 before the handler runs, a route that declares none refused at start), headers a
 * handler adds, and the security headers on every kind of answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "api/http.h"
#include "core/strbuf.h"

#define TOKEN "s3cret-token-0123456789"

/* ---- the routes under test ----------------------------------------------------------- */

static void h_hello(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->body = json_pack("{s:s}", "hello", "world");
}

static void h_item_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    const char *q = http_query(req, "q");
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s,s:i,s:o}", "name", req->params[0], "path", req->path,
                           "n_params", (int)req->n_params, "q", q ? json_string(q) : json_null());
}

static void h_item_post(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    json_t *body;
    struct ty_err err;
    ty_err_clear(&err);
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    resp->status = 201;
    resp->body = json_pack("{s:s,s:o}", "name", req->params[0], "got", body);
}

static void h_item_delete(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 204;
}

static void h_two(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s}", "x", req->params[0], "y", req->params[1]);
}

/* One handler for two routes, told apart by the route's arg. */
static void h_kind(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s}", "kind", req->route_arg ? (const char *)req->route_arg : "",
                           "name", req->params[0]);
}

static void h_etag(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    resp->status = 200;
    resp->body = json_pack("{s:s?}", "if_match", req->if_match);
    resp->etag = strdup("7");
}

static void h_conflict(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    struct ty_err err;
    ty_error(&err, TY_ECONFLICT, "version", -1, 0, "version: the job is at version 8, not 7");
    http_error(resp, &err);
}

/* A stream of three chunks with pauses ("nothing yet") between them. */
struct chunks {
    int calls;
    int sent;
    atomic_int *freed;
};

static atomic_int stream_freed;
static atomic_int forever_freed;

static long chunks_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct chunks *c = arg;
    static const char *const parts[] = {"one\n", "two\n", "three\n"};
    c->calls++;
    if (c->sent == 3)
        return -1;
    if (c->sent > 0 && c->calls % 3 != 0)
        return 0; /* a pause: the layer waits ~100 ms and asks again */
    int n = snprintf(buf, max, "%s", parts[c->sent++]);
    assert_true(n > 0 && (size_t)n < max);
    return n;
}

static void chunks_free(void *arg)
{
    struct chunks *c = arg;
    atomic_fetch_add(c->freed, 1);
    free(c);
}

static void h_stream(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    struct chunks *c = calloc(1, sizeof *c);
    c->freed = &stream_freed;
    resp->status = 200;
    resp->stream = chunks_next;
    resp->stream_free = chunks_free;
    resp->stream_arg = c;
}

/* A stream that says "start" and then never ends (a follower of a run that never ends). */
static long forever_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)arg;
    if (pos == 0)
        return snprintf(buf, max, "start\n");
    return 0;
}

static void forever_free(void *arg)
{
    (void)arg;
    atomic_fetch_add(&forever_freed, 1);
}

static void h_forever(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->stream = forever_next;
    resp->stream_free = forever_free;
    resp->content_type = "text/plain; charset=utf-8";
}

static const struct http_route routes[] = {
    {HTTP_GET, "/t/hello", h_hello, true, NULL, 0, 0},
    {HTTP_GET, "/t/items/{name}", h_item_get, false, NULL, 0, 0},
    {HTTP_POST, "/t/items/{name}", h_item_post, false, NULL, 0, 0},
    {HTTP_DELETE, "/t/items/{name}", h_item_delete, false, NULL, 0, 0},
    {HTTP_GET, "/t/a/{x}/b/{y}", h_two, false, NULL, 0, 0},
    {HTTP_GET, "/t/apples/{name}", h_kind, false, "apple", 0, 0},
    {HTTP_GET, "/t/pears/{name}", h_kind, false, "pear", 0, 0},
    {HTTP_GET, "/t/etag", h_etag, false, NULL, 0, 0},
    {HTTP_PUT, "/t/conflict", h_conflict, false, NULL, 0, 0},
    {HTTP_GET, "/t/stream", h_stream, false, NULL, 0, 0},
    {HTTP_GET, "/t/forever", h_forever, false, NULL, 0, 0},
};

/* ---- the log hook ---------------------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf log_text;

static void test_log(void *ctx, const char *level, const char *msg)
{
    (void)ctx;
    pthread_mutex_lock(&log_mu);
    sb_addf(&log_text, "%s %s\n", level, msg);
    pthread_mutex_unlock(&log_mu);
}

static bool log_has(const char *needle)
{
    pthread_mutex_lock(&log_mu);
    bool found = strstr(sb_str(&log_text), needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

static struct http_server *start_server(const char *listen_s)
{
    struct http_config cfg = {0};
    cfg.listen = listen_s;
    cfg.token = TOKEN;
    cfg.routes = routes;
    cfg.n_routes = sizeof routes / sizeof routes[0];
    cfg.log = test_log;
    struct http_server *s = NULL;
    struct ty_err err;
    int rc = http_start(&cfg, &s, &err);
    if (rc != 0)
        fprintf(stderr, "http_start: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return s;
}

static struct http_server *srv;

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sb_init(&log_text);
    srv = start_server("127.0.0.1:0");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    http_stop(srv);
    sb_free(&log_text);
    curl_global_cleanup();
    return 0;
}

/* ---- a small curl client ----------------------------------------------------------------- */

struct reply {
    long status;
    struct strbuf body;
    struct strbuf headers;
    json_t *json;
    CURLcode rc;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    sb_add(arg, p, size * n);
    return size * n;
}

struct upload {
    const char *data;
    size_t len, off;
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct upload *u = arg;
    size_t k = size * n;
    if (k > u->len - u->off)
        k = u->len - u->off;
    memcpy(buf, u->data + u->off, k);
    u->off += k;
    return k;
}

struct req_opts {
    const char *method;
    const char *path;
    const char *auth;  /* whole Authorization value; NULL: "Bearer TOKEN"; "" none */
    const char *ctype; /* Content-Type; NULL: none (curl's default removed) */
    const char *body;
    size_t len;
    bool chunked;
    bool expect; /* keep curl's Expect: 100-continue for big bodies */
    const char *if_match;
    int port;
};

static void request(const struct req_opts *o, struct reply *r)
{
    memset(r, 0, sizeof *r);
    sb_init(&r->body);
    sb_init(&r->headers);
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", o->port ? o->port : http_port(srv), o->path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o->method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    struct curl_slist *h = NULL;
    char line[512];
    if (o->auth == NULL) {
        h = curl_slist_append(h, "Authorization: Bearer " TOKEN);
    } else if (*o->auth) {
        snprintf(line, sizeof line, "Authorization: %s", o->auth);
        h = curl_slist_append(h, line);
    }
    if (o->ctype != NULL) {
        snprintf(line, sizeof line, "Content-Type: %s", o->ctype);
        h = curl_slist_append(h, line);
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    if (!o->expect)
        h = curl_slist_append(h, "Expect:");
    if (o->if_match != NULL) {
        snprintf(line, sizeof line, "If-Match: %s", o->if_match);
        h = curl_slist_append(h, line);
    }
    struct upload up = {o->body, o->len, 0};
    if (o->chunked) {
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o->method);
    } else if (o->body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)o->len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->json = json_loadb(sb_str(&r->body), r->body.len, 0, NULL);
}

static void reply_free(struct reply *r)
{
    sb_free(&r->body);
    sb_free(&r->headers);
    json_decref(r->json);
}

/* The value of a response header, copied into buf ("" when absent). */
static const char *header(const struct reply *r, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = sb_str(&r->headers); *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : "") {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            snprintf(buf, cap, "%.*s", (int)k, v);
            return buf;
        }
    }
    return buf;
}

static const char *jstr(json_t *root, const char *path1, const char *path2)
{
    json_t *v = json_object_get(root, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

static void get(const char *path, struct reply *r)
{
    struct req_opts o = {.method = "GET", .path = path};
    request(&o, r);
}

static void post(const char *path, const char *ctype, const char *body, struct reply *r)
{
    struct req_opts o = {.method = "POST",
                         .path = path,
                         .ctype = ctype,
                         .body = body,
                         .len = body ? strlen(body) : 0};
    request(&o, r);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_routing_and_params(void **state)
{
    (void)state;
    struct reply r;
    get("/t/items/abc", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "name", NULL), "abc");
    assert_string_equal(jstr(r.json, "path", NULL), "/t/items/abc");
    assert_int_equal(json_integer_value(json_object_get(r.json, "n_params")), 1);
    char ct[128];
    assert_string_equal(header(&r, "Content-Type", ct, sizeof ct), "application/json");
    reply_free(&r);

    /* a domain path is one parameter: %2F decodes to '/' inside the segment */
    get("/t/items/bank%2Fsettlement", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "name", NULL), "bank/settlement");
    assert_string_equal(jstr(r.json, "path", NULL), "/t/items/bank/settlement");
    reply_free(&r);

    /* ...and an unescaped '/' is a segment boundary: no such route */
    get("/t/items/bank/settlement", &r);
    assert_int_equal(r.status, 404);
    reply_free(&r);

    get("/t/items/caf%C3%A9%20au%20lait", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "name", NULL), "café au lait");
    reply_free(&r);

    get("/t/a/1/b/two", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "x", NULL), "1");
    assert_string_equal(jstr(r.json, "y", NULL), "two");
    reply_free(&r);

    /* query values are decoded; '+' is a space, %2B a plus */
    get("/t/items/x?q=a%20b%2Bc+d&other=1", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "q", NULL), "a b+c d");
    reply_free(&r);

    get("/t/items/x?q", &r);
    assert_string_equal(jstr(r.json, "q", NULL), "");
    reply_free(&r);

    get("/t/items/x", &r);
    assert_true(json_is_null(json_object_get(r.json, "q")));
    reply_free(&r);

    /* a route's arg reaches its handler: one handler serves both */
    get("/t/apples/x", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "kind", NULL), "apple");
    reply_free(&r);
    get("/t/pears/y", &r);
    assert_string_equal(jstr(r.json, "kind", NULL), "pear");
    assert_string_equal(jstr(r.json, "name", NULL), "y");
    reply_free(&r);

    /* one trailing slash is ignored */
    get("/t/hello/", &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_auth(void **state)
{
    (void)state;
    struct reply r;
    char h[256];
    struct req_opts o = {.method = "GET", .path = "/t/items/a", .auth = ""};
    request(&o, &r);
    assert_int_equal(r.status, 401);
    assert_true(strncmp(header(&r, "WWW-Authenticate", h, sizeof h), "Bearer", 6) == 0);
    assert_string_equal(jstr(r.json, "error", "code"), "unauthorized");
    assert_non_null(strstr(jstr(r.json, "error", "message"), "missing bearer token"));
    reply_free(&r);
    assert_true(log_has("warn http refused status=401 method=\"GET\" path=\"/t/items/a\" "
                        "remote=127.0.0.1 reason=\"missing bearer token"));

    const char *wrong[] = {"Bearer s3cret-token-0123456788", /* same length */
                           "Bearer s3cret",
                           "Bearer s3cret-token-0123456789x",
                           "Bearer ",
                           "Basic czNjcmV0LXRva2Vu",
                           ("Bearer" TOKEN)};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        o.auth = wrong[i];
        request(&o, &r);
        assert_int_equal(r.status, 401);
        assert_string_equal(header(&r, "WWW-Authenticate", h, sizeof h), "Bearer realm=\"tethys\"");
        reply_free(&r);
    }
    assert_true(log_has("reason=\"wrong bearer token\""));
    assert_true(log_has("reason=\"the Authorization header is not a bearer token\""));

    o.auth = "bearer   " TOKEN "  "; /* scheme is case-insensitive; spaces around the token */
    request(&o, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    /* a public route needs no token, and ignores a wrong one */
    o.path = "/t/hello";
    o.auth = "";
    request(&o, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "hello", NULL), "world");
    reply_free(&r);
    o.auth = "Bearer nope";
    request(&o, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
}

static void test_not_found_and_method(void **state)
{
    (void)state;
    struct reply r;
    char h[128];
    get("/nope/nothing", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(jstr(r.json, "error", "code"), "not_found");
    assert_string_equal(jstr(r.json, "error", "message"), "no such endpoint: GET /nope/nothing");
    assert_string_equal(jstr(r.json, "error", "field"), "path");
    reply_free(&r);
    assert_true(log_has("info http refused status=404 method=\"GET\" path=\"/nope/nothing\""));

    post("/t/hello", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow", h, sizeof h), "GET");
    assert_string_equal(jstr(r.json, "error", "code"), "method_not_allowed");
    reply_free(&r);

    struct req_opts o = {.method = "PATCH", .path = "/t/items/x"};
    request(&o, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow", h, sizeof h), "GET, POST, DELETE");
    assert_string_equal(jstr(r.json, "error", "message"),
                        "/t/items/x does not accept PATCH (allowed: GET, POST, DELETE)");
    reply_free(&r);

    o.method = "OPTIONS";
    request(&o, &r);
    assert_int_equal(r.status, 405);
    reply_free(&r);

    o.method = "DELETE";
    request(&o, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.len, 0);
    reply_free(&r);
}

static char *big_json(size_t size)
{
    char *b = malloc(size + 1);
    memset(b, 'x', size);
    memcpy(b, "{\"a\":\"", 6);
    memcpy(b + size - 2, "\"}", 2);
    b[size] = '\0';
    return b;
}

static void test_too_large(void **state)
{
    (void)state;
    struct reply r;
    size_t two_mib = (size_t)2 * 1024 * 1024;
    char *body = big_json(two_mib);
    struct req_opts o = {.method = "POST",
                         .path = "/t/items/big",
                         .ctype = "application/json",
                         .body = body,
                         .len = two_mib};
    request(&o, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(jstr(r.json, "error", "code"), "too_large");
    assert_string_equal(jstr(r.json, "error", "field"), "body");
    assert_string_equal(jstr(r.json, "error", "message"),
                        "body: 2097152 bytes is more than the limit of 1048576 bytes");
    reply_free(&r);
    assert_true(log_has("status=413"));

    /* with Expect: 100-continue the body is never sent at all */
    o.expect = true;
    request(&o, &r);
    assert_int_equal(r.status, 413);
    reply_free(&r);

    /* chunked: no length up front; dropped once past the limit, answered at the end */
    o.expect = false;
    o.chunked = true;
    request(&o, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(jstr(r.json, "error", "message"),
                        "body: more than the limit of 1048576 bytes");
    reply_free(&r);
    free(body);

    /* exactly the limit is fine, chunked or not */
    body = big_json((size_t)HTTP_BODY_MAX);
    o.body = body;
    o.len = (size_t)HTTP_BODY_MAX;
    request(&o, &r);
    assert_int_equal(r.status, 201);
    reply_free(&r);
    o.chunked = false;
    request(&o, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(
        strlen(json_string_value(json_object_get(json_object_get(r.json, "got"), "a"))),
        (size_t)HTTP_BODY_MAX - 8);
    reply_free(&r);
    free(body);
}

/* Refusals while a body is in flight are answered after it, so they always arrive:
 * repeated, because losing them to a connection reset was a race. */
static void test_refusal_with_body_in_flight(void **state)
{
    (void)state;
    size_t size = (size_t)512 * 1024;
    char *body = big_json(size);
    for (int i = 0; i < 20; i++) {
        struct reply r;
        struct req_opts o = {.method = "POST",
                             .path = "/t/items/a",
                             .auth = "",
                             .ctype = "application/json",
                             .body = body,
                             .len = size};
        request(&o, &r);
        assert_int_equal(r.status, 401);
        reply_free(&r);
        o.auth = NULL;
        o.path = "/t/nothing/here";
        request(&o, &r);
        assert_int_equal(r.status, 404);
        reply_free(&r);
        o.path = "/t/items/a";
        o.ctype = "text/plain";
        request(&o, &r);
        assert_int_equal(r.status, 415);
        reply_free(&r);
    }
    free(body);
    size = (size_t)2 * 1024 * 1024;
    body = big_json(size);
    for (int i = 0; i < 10; i++) {
        struct reply r;
        struct req_opts o = {.method = "PUT",
                             .path = "/t/items/a", /* 405 too */
                             .ctype = "application/json",
                             .body = body,
                             .len = size};
        request(&o, &r);
        assert_int_equal(r.status, 405);
        reply_free(&r);
        o.method = "POST";
        request(&o, &r);
        assert_int_equal(r.status, 413);
        reply_free(&r);
    }
    free(body);
}

/* Send raw bytes, read the answer until the server closes (or 2 s pass). */
static void raw_exchange(const char *request_text, struct strbuf *answer)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)http_port(srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, request_text, strlen(request_text)), (ssize_t)strlen(request_text));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[4096];
    while (poll(&p, 1, 2000) == 1) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        sb_add(answer, buf, (size_t)n);
    }
    close(fd);
}

static void test_refused_at_once(void **state)
{
    (void)state;
    struct strbuf ans;
    sb_init(&ans);
    /* a body far too large to read and drop: refused from its headers, before it comes */
    raw_exchange("POST /t/items/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                 "\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n",
                 &ans);
    assert_true(strncmp(sb_str(&ans), "HTTP/1.1 413 ", 13) == 0);
    assert_non_null(strstr(sb_str(&ans), "body: 20000000 bytes is more than the limit"));
    sb_truncate(&ans, 0);
    /* with Expect: 100-continue the client sends nothing until told to: refused at once */
    raw_exchange("POST /t/items/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
                 &ans);
    assert_true(strncmp(sb_str(&ans), "HTTP/1.1 401 ", 13) == 0);
    assert_null(strstr(sb_str(&ans), "100 Continue"));
    sb_free(&ans);
}

/* A chunked body is dropped up to the discard limit, then the connection is cut. */
static void test_discard_limit(void **state)
{
    (void)state;
    size_t size = (size_t)9 * 1024 * 1024;
    char *body = malloc(size);
    memset(body, ' ', size);
    struct reply r;
    struct req_opts o = {.method = "POST",
                         .path = "/t/items/a",
                         .ctype = "application/json",
                         .body = body,
                         .len = size,
                         .chunked = true};
    request(&o, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    reply_free(&r);
    assert_true(log_has("reason=\"body dropped past the discard limit: connection cut\""));
    free(body);
}

static void test_media_type(void **state)
{
    (void)state;
    struct reply r;
    post("/t/items/a", "text/plain", "{}", &r);
    assert_int_equal(r.status, 415);
    assert_string_equal(jstr(r.json, "error", "code"), "unsupported_media_type");
    assert_string_equal(jstr(r.json, "error", "message"),
                        "Content-Type: the body must be application/json (got \"text/plain\")");
    reply_free(&r);
    assert_true(log_has("status=415"));

    post("/t/items/a", NULL, "{}", &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(jstr(r.json, "error", "message"), "(got \"none\")"));
    reply_free(&r);

    post("/t/items/a", "application/json; charset=ISO-8859-1", "{}", &r);
    assert_int_equal(r.status, 415);
    reply_free(&r);

    post("/t/items/a", "Application/JSON; charset=\"utf-8\"", "{\"k\":1}", &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "got"), "k")), 1);
    reply_free(&r);

    /* no body: no Content-Type needed; the handler decides (here: it wants one) */
    post("/t/items/a", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error", "message"),
                        "body: a JSON object is required (the request has none)");
    reply_free(&r);
}

static void test_bad_body(void **state)
{
    (void)state;
    struct reply r;
    struct req_opts o = {.method = "POST",
                         .path = "/t/items/a",
                         .ctype = "application/json",
                         .body = "{\"a\0\":1}",
                         .len = 8};
    request(&o, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error", "message"), "body: contains a NUL byte at offset 3");
    reply_free(&r);

    o.body = "{\"a\":\"\xC3\x28\"}";
    o.len = strlen(o.body);
    request(&o, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error", "message"), "body: invalid UTF-8 at byte offset 6");
    reply_free(&r);

    o.body = "{\"a\":\"\xED\xA0\x80\"}"; /* a UTF-16 surrogate is not UTF-8 */
    o.len = strlen(o.body);
    request(&o, &r);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    post("/t/items/a", "application/json", "{\"a\": 1,\n  \"b\": }", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error", "code"), "invalid");
    assert_string_equal(jstr(r.json, "error", "field"), "body");
    assert_non_null(
        strstr(jstr(r.json, "error", "message"), "body: malformed JSON at line 2, column 8"));
    reply_free(&r);
    assert_true(log_has("reason=\"body: malformed JSON at line 2, column 8"));

    post("/t/items/a", "application/json", "[1,2]", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(jstr(r.json, "error", "message"),
                        "body: expected a JSON object, got an array");
    reply_free(&r);

    post("/t/items/a", "application/json", "{\"a\":1,\"a\":2}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(jstr(r.json, "error", "message"), "duplicate"));
    reply_free(&r);
}

static void test_bad_path(void **state)
{
    (void)state;
    struct reply r;
    const char *bad[] = {"/t/items/%zz", "/t/items/%4", "/t/items/a%00b", "/t/items/%C3%28",
                         "/t/items/x?q=%zz"};
    const char *msg[] = {"path: a malformed percent-escape", "path: a malformed percent-escape",
                         "path: a NUL byte", "path: invalid UTF-8",
                         "query parameter \"q\": a malformed percent-escape"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(bad[i], &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(jstr(r.json, "error", "message"), msg[i]);
        reply_free(&r);
    }
}

static void test_etag_and_errors(void **state)
{
    (void)state;
    struct reply r;
    char h[64];
    struct req_opts o = {.method = "GET", .path = "/t/etag", .if_match = "\"6\""};
    request(&o, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "ETag", h, sizeof h), "\"7\"");
    assert_string_equal(jstr(r.json, "if_match", NULL), "\"6\"");
    reply_free(&r);

    o.method = "PUT";
    o.path = "/t/conflict";
    request(&o, &r);
    assert_int_equal(r.status, 412);
    assert_string_equal(jstr(r.json, "error", "code"), "conflict");
    assert_string_equal(jstr(r.json, "error", "field"), "version");
    assert_string_equal(jstr(r.json, "error", "message"),
                        "version: the job is at version 8, not 7");
    reply_free(&r);
}

static void wait_for(atomic_int *flag, int value)
{
    struct timespec ts = {0, 10 * 1000000L};
    for (int i = 0; i < 500 && atomic_load(flag) < value; i++)
        nanosleep(&ts, NULL);
    assert_true(atomic_load(flag) >= value);
}

static void test_stream(void **state)
{
    (void)state;
    struct reply r;
    char h[64];
    int freed = atomic_load(&stream_freed);
    double t0 = now_s();
    get("/t/stream", &r);
    double dt = now_s() - t0;
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(sb_str(&r.body), "one\ntwo\nthree\n");
    assert_string_equal(header(&r, "Transfer-Encoding", h, sizeof h), "chunked");
    assert_string_equal(header(&r, "Content-Type", h, sizeof h), "text/plain; charset=utf-8");
    assert_true(dt >= 0.25); /* pauses of ~100 ms: one, then two */
    reply_free(&r);
    /* freed when libmicrohttpd is done with the response: just after the client has it */
    wait_for(&stream_freed, freed + 1);
}

struct follower {
    int port;
    atomic_int got_start;
    bool abort_after_start;
    struct reply r;
};

static size_t follower_body(char *p, size_t size, size_t n, void *arg)
{
    struct follower *f = arg;
    sb_add(&f->r.body, p, size * n);
    if (strstr(sb_str(&f->r.body), "start\n") != NULL) {
        atomic_store(&f->got_start, 1);
        if (f->abort_after_start)
            return 0; /* hang up */
    }
    return size * n;
}

static void *follow(void *arg)
{
    struct follower *f = arg;
    sb_init(&f->r.body);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/t/forever", f->port);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, follower_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    f->r.rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_stop_with_open_stream(void **state)
{
    (void)state;
    struct http_server *s = start_server("127.0.0.1:0");
    struct follower f = {.port = http_port(s)};
    atomic_init(&f.got_start, 0);
    int freed = atomic_load(&forever_freed);
    pthread_t t;
    pthread_create(&t, NULL, follow, &f);
    wait_for(&f.got_start, 1);
    double t0 = now_s();
    http_stop(s);
    double dt = now_s() - t0;
    pthread_join(t, NULL);
    assert_true(dt < 2.0);
    assert_int_equal(atomic_load(&forever_freed), freed + 1);
    assert_int_not_equal(f.r.rc, CURLE_OK); /* the stream was cut, not ended */
    assert_string_equal(sb_str(&f.r.body), "start\n");
    sb_free(&f.r.body);
}

static void test_follower_hangs_up(void **state)
{
    (void)state;
    struct follower f = {.port = http_port(srv), .abort_after_start = true};
    atomic_init(&f.got_start, 0);
    int freed = atomic_load(&forever_freed);
    pthread_t t;
    pthread_create(&t, NULL, follow, &f);
    pthread_join(t, NULL);
    assert_int_equal(f.r.rc, CURLE_WRITE_ERROR);
    /* the server notices within a wait or two, not at the next byte (never, here) */
    wait_for(&forever_freed, freed + 1);
    sb_free(&f.r.body);
}

static void test_listen(void **state)
{
    (void)state;
    struct http_config cfg = {0};
    cfg.token = TOKEN;
    cfg.routes = routes;
    cfg.n_routes = sizeof routes / sizeof routes[0];
    struct http_server *s = NULL;
    struct ty_err err;
    const char *bad[] = {"nonsense",       "127.0.0.1",      "127.0.0.1:99999",
                         "127.0.0.1:x",    "::1:8080",       "[::1]8080",
                         "example.com:80", "[127.0.0.1]:80", ""};
    const char *msg[] = {
        "listen: \"nonsense\" is not host:port (e.g. 127.0.0.1:8080)",
        "listen: \"127.0.0.1\" is not host:port (e.g. 127.0.0.1:8080)",
        "listen: \"127.0.0.1:99999\": the port must be a number from 0 to 65535",
        "listen: \"127.0.0.1:x\": the port must be a number from 0 to 65535",
        "listen: \"::1:8080\": an IPv6 address needs brackets ([::1]:8080)",
        "listen: \"[::1]8080\" is not [IPv6-address]:port",
        "listen: \"example.com:80\": the host must be an IPv4 address, [IPv6 address] or localhost",
        "listen: \"[127.0.0.1]:80\": the host must be an IPv4 address, [IPv6 address] or localhost",
        "listen: no address given"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.listen = bad[i];
        assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
        assert_string_equal(err.msg, msg[i]);
        assert_string_equal(err.field, "listen");
        assert_null(s);
    }

    /* the port in use: the message names the address and the reason */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_port(srv));
    cfg.listen = addr;
    assert_int_equal(http_start(&cfg, &s, &err), TY_EIO);
    char want[128];
    snprintf(want, sizeof want, "%s: Address already in use", addr);
    assert_string_equal(err.msg, want);

    cfg.listen = "localhost:0";
    assert_int_equal(http_start(&cfg, &s, &err), 0);
    assert_true(http_port(s) > 0);
    http_stop(s);

    /* IPv6 loopback, where the machine has it */
    cfg.listen = "[::1]:0";
    if (http_start(&cfg, &s, &err) == 0) {
        CURL *c = curl_easy_init();
        char url[64];
        snprintf(url, sizeof url, "http://[::1]:%d/t/hello", http_port(s));
        struct strbuf body;
        sb_init(&body);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        assert_int_equal(status, 200);
        assert_string_equal(sb_str(&body), "{\"hello\":\"world\"}\n");
        curl_easy_cleanup(c);
        sb_free(&body);
        http_stop(s);
    } else {
        assert_int_equal(err.code, TY_EIO); /* no IPv6 here; nothing else may go wrong */
    }
}

/* ---- authenticate and permit ------------------------------------------------------------ */

static atomic_int principals; /* made minus freed */
static atomic_int handled;    /* handler calls of the second server */

static int cb_authenticate(void *ctx, const struct http_credentials *c, char *who, size_t who_cap,
                           void **principal, char *why, size_t why_cap)
{
    (void)ctx;
    const char *name = NULL;
    if (c->session_ambiguous) {
        snprintf(why, why_cap, "ambiguous");
        return TY_EAUTH;
    }
    if (c->bearer != NULL && c->bearer_len == 3 && memcmp(c->bearer, "tok", 3) == 0) {
        name = "tok";
    } else if (c->session != NULL && c->session_len == 4 && memcmp(c->session, "good", 4) == 0) {
        if (c->method != HTTP_GET && (c->csrf == NULL || strcmp(c->csrf, "c") != 0)) {
            snprintf(who, who_cap, "user:u");
            snprintf(why, why_cap, "no csrf");
            return TY_EPERM;
        }
        name = "user:u";
    } else {
        snprintf(why, why_cap, "who are you");
        return TY_EAUTH;
    }
    snprintf(who, who_cap, "%s", name);
    *principal = strdup(name);
    atomic_fetch_add(&principals, 1);
    return 0;
}

static void cb_principal_free(void *p)
{
    atomic_fetch_sub(&principals, 1);
    free(p);
}

static int cb_permit(void *ctx, const struct http_request *req, char *why, size_t why_cap)
{
    (void)ctx;
    assert_non_null(req->principal);
    if (req->route_perm == 2) {
        snprintf(why, why_cap, "%s may not (body %zu bytes)", (const char *)req->principal,
                 req->body_len);
        return TY_EPERM;
    }
    return 0;
}

static void h_whoami(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    atomic_fetch_add(&handled, 1);
    resp->status = 200;
    resp->body =
        json_pack("{s:s, s:s}", "principal", (const char *)req->principal, "who", req->who);
    http_response_header(resp, "Set-Cookie", "s=%s; HttpOnly", "v");
    http_response_header(resp, "X-One", "%d", 1);
}

static const struct http_route auth_routes[] = {
    {HTTP_GET, "/a/open", h_hello, true, NULL, 0, 0},
    {HTTP_GET, "/a/me", h_whoami, false, NULL, 0, 1},
    {HTTP_POST, "/a/me", h_whoami, false, NULL, 0, 1},
    {HTTP_POST, "/a/no", h_whoami, false, NULL, 0, 2},
};

static void expect_common_headers(const struct reply *r)
{
    char h[512];
    assert_string_equal(header(r, "X-Content-Type-Options", h, sizeof h), "nosniff");
    assert_string_equal(header(r, "X-Frame-Options", h, sizeof h), "DENY");
    assert_string_equal(header(r, "Referrer-Policy", h, sizeof h), "same-origin");
    assert_string_equal(header(r, "Content-Security-Policy", h, sizeof h), HTTP_CSP);
}

/* A request to the second server with these extra headers (NULL-terminated). */
static void auth_request(int port, const char *method, const char *path, const char *const *hdrs,
                         struct reply *r)
{
    memset(r, 0, sizeof *r);
    sb_init(&r->body);
    sb_init(&r->headers);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        h = curl_slist_append(h, hdrs[i]);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    r->json = json_loadb(sb_str(&r->body), r->body.len, 0, NULL);
}

static void test_authenticate_and_permit(void **state)
{
    (void)state;
    struct http_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.authenticate = cb_authenticate;
    cfg.principal_free = cb_principal_free;
    cfg.permit = cb_permit;
    cfg.session_cookie = "sess";
    cfg.routes = auth_routes;
    cfg.n_routes = sizeof auth_routes / sizeof auth_routes[0];
    cfg.log = test_log;
    struct http_server *s = NULL;
    struct ty_err err;
    assert_int_equal(http_start(&cfg, &s, &err), 0);
    int port = http_port(s);
    struct reply r;
    char h[256];

    /* no credentials: 401 naming both ways in */
    auth_request(port, "GET", "/a/me", NULL, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(jstr(r.json, "error", "message"), "missing bearer token or session"));
    expect_common_headers(&r);
    reply_free(&r);
    /* a bearer: the principal reaches the handler, which adds headers */
    const char *bearer[] = {"Authorization: Bearer tok", NULL};
    auth_request(port, "GET", "/a/me", bearer, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "principal", NULL), "tok");
    assert_string_equal(header(&r, "Set-Cookie", h, sizeof h), "s=v; HttpOnly");
    assert_string_equal(header(&r, "X-One", h, sizeof h), "1");
    expect_common_headers(&r);
    reply_free(&r);
    /* the session cookie among others; a change needs the CSRF header */
    const char *cookie[] = {"Cookie: a=1; sess=good; b=2", NULL};
    auth_request(port, "GET", "/a/me", cookie, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "who", NULL), "user:u");
    reply_free(&r);
    int before = atomic_load(&handled);
    auth_request(port, "POST", "/a/me", cookie, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "error", "code"), "forbidden");
    assert_string_equal(jstr(r.json, "error", "message"), "no csrf");
    reply_free(&r);
    assert_true(log_has("status=403 method=\"POST\" path=\"/a/me\" remote=127.0.0.1 user=\"u\" "
                        "reason=\"no csrf\""));
    const char *with_csrf[] = {"Cookie: sess=good", "X-CSRF-Token: c", NULL};
    auth_request(port, "POST", "/a/me", with_csrf, &r);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(atomic_load(&handled), before + 1);
    const char *twice[] = {"Cookie: sess=good; sess=bad", NULL};
    auth_request(port, "GET", "/a/me", twice, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.json, "error", "message"), "ambiguous");
    reply_free(&r);
    /* the route's permission: refused after the body was read, the handler never called */
    before = atomic_load(&handled);
    auth_request(port, "POST", "/a/no", bearer, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(jstr(r.json, "error", "message"), "tok may not (body 2 bytes)");
    expect_common_headers(&r);
    reply_free(&r);
    assert_int_equal(atomic_load(&handled), before);
    /* a public route asks nobody */
    auth_request(port, "GET", "/a/open", NULL, &r);
    assert_int_equal(r.status, 200);
    expect_common_headers(&r);
    reply_free(&r);
    http_stop(s);
    assert_int_equal(atomic_load(&principals), 0); /* every principal freed */

    /* with a permit callback, every route that is not public declares a permission */
    struct http_route undeclared[] = {{HTTP_GET, "/a/x", h_hello, false, NULL, 0, 0}};
    cfg.routes = undeclared;
    cfg.n_routes = 1;
    assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
    assert_string_equal(err.msg, "route GET /a/x: declares no permission (every route must)");
    assert_null(s);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct http_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    struct http_server *s = NULL;
    struct ty_err err;
    cfg.token = "";
    assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
    assert_string_equal(err.msg, "token: the API needs a bearer token; none was given");
    cfg.token = TOKEN;
    struct http_route bad[] = {{HTTP_GET, "t/x", h_hello, false, NULL, 0, 0}};
    cfg.routes = bad;
    cfg.n_routes = 1;
    assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
    assert_string_equal(err.msg,
                        "route \"t/x\": needs a method, a handler and a pattern starting with /");
    bad[0].pattern = "/t/{x";
    assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
    assert_string_equal(err.msg, "route \"/t/{x\": a parameter must be a whole {segment}");
    bad[0].pattern = "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}";
    assert_int_equal(http_start(&cfg, &s, &err), TY_EINVAL);
    assert_null(s);
}

static void test_codes(void **state)
{
    (void)state;
    static const struct {
        int code, status;
        const char *name;
    } want[] = {
        {TY_EINVAL, 400, "invalid"},
        {TY_ERANGE, 400, "out_of_range"},
        {TY_EAUTH, 401, "unauthorized"},
        {TY_ENOENT, 404, "not_found"},
        {TY_EEXIST, 409, "exists"},
        {TY_EBUSY, 409, "busy"},
        {TY_ECONFLICT, 412, "conflict"},
        {TY_ENOSPC, 507, "no_space"},
        {TY_EUNAVAIL, 503, "unavailable"},
        {TY_EIO, 500, "io_error"},
        {TY_ENOMEM, 500, "out_of_memory"},
        {TY_EFORMAT, 500, "corrupt_data"},
        {-99, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(http_status_for(want[i].code), want[i].status);
        assert_string_equal(ty_code_name(want[i].code), want[i].name);
    }
    struct http_response resp = {0};
    struct ty_err err;
    ty_error(&err, TY_ENOENT, "", -1, 0, "job \"x\": no such job");
    http_error(&resp, &err);
    assert_int_equal(resp.status, 404);
    char *s = json_dumps(resp.body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"error\":{\"code\":\"not_found\",\"message\":\"job \\\"x\\\": no "
                           "such job\",\"field\":null}}");
    free(s);
    json_decref(resp.body);
}

/* If-Match: the forms clients send, and a refusal naming the header for the rest. */
static void test_if_match(void **state)
{
    (void)state;
    static const struct {
        const char *header;
        int64_t version; /* -1: refused */
    } cases[] = {
        {NULL, 0},    {"3", 3},
        {"\"3\"", 3}, {"W/\"12\"", 12},
        {"", -1},     {"\"\"", -1},
        {"abc", -1},  {"\"3", -1},
        {"3\"", -1},  {"0", -1},
        {"-4", -1},   {"3 ", -1},
        {"W/3x", -1}, {"99999999999999999999999", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request req = {.if_match = cases[i].header};
        int64_t v = -7;
        struct ty_err err;
        int rc = http_if_match(&req, &v, &err);
        if (cases[i].version < 0) {
            assert_int_equal(rc, TY_EINVAL);
            assert_string_equal(err.field, "If-Match");
            assert_string_equal(err.msg, "If-Match: expected a version number");
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(v, cases[i].version);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_refusal_with_body_in_flight),
        cmocka_unit_test(test_refused_at_once),
        cmocka_unit_test(test_discard_limit),
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_bad_body),
        cmocka_unit_test(test_bad_path),
        cmocka_unit_test(test_etag_and_errors),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stop_with_open_stream),
        cmocka_unit_test(test_follower_hangs_up),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_authenticate_and_permit),
        cmocka_unit_test(test_codes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
