/*
 * test_client.c - the CLI's HTTP client against the real HTTP layer (src/api/http.c) on
 * 127.0.0.1, serving canned answers: finding the server (--data, TETHYS_URL, the default
 * data directory), "server not running", API errors turned into codes and messages,
 * ETag / If-Match, streams, and path/query encoding.  It tests the client, not Tethys:
 * the routes here are stand-ins shaped like the API's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/http.h"
#include "os/client.h"
#include "core/strbuf.h"

#define TOKEN "client-test-token"

/* ---- canned routes ----------------------------------------------------------------------- */

static void h_health(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s,s:i}", "status", "ok", "version", "0.1.0", "uptime_s", 12);
}

static void h_job_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    if (strcmp(req->params[0], "missing") == 0) {
        struct ty_err err;
        ty_error(&err, TY_ENOENT, "name", -1, 0, "job \"missing\": no such job");
        http_error(resp, &err);
        return;
    }
    resp->status = 200;
    resp->body = json_pack("{s:s,s:i}", "name", req->params[0], "version", 3);
    resp->etag = strdup("3");
}

static void h_job_put(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    struct ty_err err;
    if (req->if_match != NULL && strcmp(req->if_match, "\"3\"") != 0) {
        ty_error(&err, TY_ECONFLICT, "version", -1, 0, "job \"%s\" is at version 3, not %s",
                 req->params[0], req->if_match);
        http_error(resp, &err);
        return;
    }
    json_t *body;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    resp->status = 200;
    resp->body = json_pack("{s:o,s:s?}", "got", body, "if_match", req->if_match);
    resp->etag = strdup("4");
}

static void h_job_delete(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 204;
}

static void h_echo(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    const char *q = http_query(req, "q");
    resp->status = 200;
    resp->body = json_pack("{s:s,s:s?}", "segment", req->params[0], "q", q);
}

static void h_boom(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    struct ty_err err;
    ty_error(&err, TY_EIO, NULL, -1, 0, "database: disk I/O error");
    http_error(resp, &err);
}

struct chunks {
    int n;
};

static long chunks_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct chunks *c = arg;
    static const char *const parts[] = {"line one\n", NULL, "line two\n", "line three\n"};
    if (c->n == 4)
        return -1;
    const char *p = parts[c->n++];
    if (p == NULL)
        return 0; /* a pause */
    return snprintf(buf, max, "%s", p);
}

static void h_log(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->stream = chunks_next;
    resp->stream_free = free;
    resp->stream_arg = calloc(1, sizeof(struct chunks));
}

static long text_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)arg;
    if (pos > 0)
        return -1;
    return snprintf(buf, max, "not json");
}

static void h_text(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->stream = text_next;
}

static long forever_next(void *arg, uint64_t pos, char *buf, size_t max)
{
    (void)arg;
    if (pos > 0)
        return 0;
    return snprintf(buf, max, "first\n");
}

static void h_forever(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->stream = forever_next;
}

static const struct http_route routes[] = {
    {HTTP_GET, "/api/v1/health", h_health, true, NULL, 0, 0},
    {HTTP_GET, "/api/v1/jobs/{name}", h_job_get, false, NULL, 0, 0},
    {HTTP_PUT, "/api/v1/jobs/{name}", h_job_put, false, NULL, 0, 0},
    {HTTP_DELETE, "/api/v1/jobs/{name}", h_job_delete, false, NULL, 0, 0},
    {HTTP_GET, "/api/v1/echo/{x}", h_echo, false, NULL, 0, 0},
    {HTTP_GET, "/api/v1/boom", h_boom, false, NULL, 0, 0},
    {HTTP_GET, "/api/v1/runs/{id}/log", h_log, false, NULL, 0, 0},
    {HTTP_GET, "/api/v1/text", h_text, false, NULL, 0, 0},
    {HTTP_GET, "/api/v1/forever", h_forever, false, NULL, 0, 0},
};

/* ---- fixtures --------------------------------------------------------------------------- */

static struct http_server *srv;
static char tmp[128];
static char url[128];

static struct http_server *start(void)
{
    struct http_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.token = TOKEN;
    cfg.routes = routes;
    cfg.n_routes = sizeof routes / sizeof routes[0];
    struct http_server *s = NULL;
    struct ty_err err;
    assert_int_equal(http_start(&cfg, &s, &err), 0);
    return s;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A data directory dir holding server.json for url_s and the token (NULL: none). */
static void make_data_dir(const char *dir, const char *url_s, long pid, const char *token)
{
    mkdir(dir, 0700);
    char json[256];
    snprintf(json, sizeof json, "{\"url\": \"%s\", \"pid\": %ld}\n", url_s, pid);
    write_file(dir, "server.json", json);
    if (token != NULL)
        write_file(dir, "token", token);
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmp, sizeof tmp, "/tmp/tethys-client-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    srv = start();
    snprintf(url, sizeof url, "http://127.0.0.1:%d", http_port(srv));
    unsetenv("TETHYS_URL");
    unsetenv("TETHYS_TOKEN");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    http_stop(srv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    assert_int_equal(system(cmd), 0);
    curl_global_cleanup();
    return 0;
}

/* A client for the test server through a data directory. */
static void open_good(struct client *c)
{
    char dir[300], u[160];
    snprintf(dir, sizeof dir, "%s/good", tmp);
    snprintf(u, sizeof u, "%s/", url); /* a trailing slash is dropped */
    make_data_dir(dir, u, (long)getpid(), TOKEN "\n");
    struct ty_err err;
    int rc = client_open(c, dir, &err);
    if (rc != 0)
        fail_msg("client_open: %s", err.msg);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_data_dir(void **state)
{
    (void)state;
    struct client c;
    open_good(&c);
    assert_string_equal(c.url, url);
    assert_string_equal(c.token, TOKEN);
    assert_int_equal(c.pid, (long)getpid());
    long status;
    json_t *resp;
    char *etag;
    struct ty_err err;
    assert_int_equal(
        client_call(&c, "GET", "/api/v1/health", NULL, NULL, &status, &resp, &etag, &err), 0);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "ok");
    assert_null(etag);
    json_decref(resp);
    /* a second call on the same client (the handle is reused) */
    assert_int_equal(client_call(&c, "GET", "/api/v1/jobs/a", NULL, NULL, NULL, &resp, NULL, &err),
                     0);
    json_decref(resp);
    client_close(&c);
    client_close(&c); /* closing twice is harmless */
}

static void test_data_dir_errors(void **state)
{
    (void)state;
    struct client c;
    struct ty_err err;
    char dir[300], want[1024];

    snprintf(dir, sizeof dir, "%s/empty", tmp);
    mkdir(dir, 0700);
    assert_int_equal(client_open(&c, dir, &err), TY_EUNAVAIL);
    snprintf(want, sizeof want,
             "no Tethys server found: %s/server.json does not exist (start one with `tethys "
             "server --data %s`, or set TETHYS_URL and TETHYS_TOKEN)",
             dir, dir);
    assert_string_equal(err.msg, want);
    assert_null(c.url);

    write_file(dir, "server.json", "{\"pid\": 3");
    assert_int_equal(client_open(&c, dir, &err), TY_EFORMAT);
    snprintf(want, sizeof want,
             "%s/server.json: not a server.json written by `tethys server` (no \"url\")", dir);
    assert_string_equal(err.msg, want);

    write_file(dir, "server.json", "{\"url\": \"ftp://x\"}");
    assert_int_equal(client_open(&c, dir, &err), TY_EFORMAT);
    snprintf(want, sizeof want, "%s/server.json: \"ftp://x\" is not an http:// or https:// URL",
             dir);
    assert_string_equal(err.msg, want);

    write_file(dir, "server.json", "{\"url\": \"http://127.0.0.1:1\"}");
    assert_int_equal(client_open(&c, dir, &err), TY_EIO);
    snprintf(want, sizeof want,
             "%s/token: No such file or directory (the server writes it when it starts)", dir);
    assert_string_equal(err.msg, want);

    write_file(dir, "token", " \n");
    assert_int_equal(client_open(&c, dir, &err), TY_EFORMAT);
    snprintf(want, sizeof want, "%s/token is empty", dir);
    assert_string_equal(err.msg, want);
}

static void test_environment(void **state)
{
    (void)state;
    struct client c;
    struct ty_err err;
    char dir[300], want[1024];

    /* TETHYS_URL + TETHYS_TOKEN */
    setenv("TETHYS_URL", url, 1);
    setenv("TETHYS_TOKEN", TOKEN, 1);
    assert_int_equal(client_open(&c, NULL, &err), 0);
    assert_string_equal(c.source, "TETHYS_URL");
    assert_int_equal(client_call(&c, "GET", "/api/v1/jobs/x", NULL, NULL, NULL, NULL, NULL, &err),
                     0);
    client_close(&c);

    /* --data wins over the environment */
    snprintf(dir, sizeof dir, "%s/empty2", tmp);
    mkdir(dir, 0700);
    assert_int_equal(client_open(&c, dir, &err), TY_EUNAVAIL);

    /* a URL without a token: public endpoints only, and the 401 says where to look */
    unsetenv("TETHYS_TOKEN");
    assert_int_equal(client_open(&c, NULL, &err), 0);
    assert_null(c.token);
    assert_int_equal(client_call(&c, "GET", "/api/v1/health", NULL, NULL, NULL, NULL, NULL, &err),
                     0);
    long status;
    assert_int_equal(
        client_call(&c, "GET", "/api/v1/jobs/x", NULL, NULL, &status, NULL, NULL, &err), TY_EAUTH);
    assert_int_equal(status, 401);
    assert_string_equal(err.msg, "missing bearer token (send Authorization: Bearer <token>) (no "
                                 "token was sent: set TETHYS_TOKEN)");
    client_close(&c);

    setenv("TETHYS_TOKEN", "wrong", 1);
    assert_int_equal(client_open(&c, NULL, &err), 0);
    assert_int_equal(client_call(&c, "GET", "/api/v1/jobs/x", NULL, NULL, NULL, NULL, NULL, &err),
                     TY_EAUTH);
    assert_string_equal(err.msg, "wrong bearer token (the token came from TETHYS_TOKEN)");
    client_close(&c);
    unsetenv("TETHYS_TOKEN");

    setenv("TETHYS_URL", "localhost:8080", 1);
    assert_int_equal(client_open(&c, NULL, &err), TY_EFORMAT);
    assert_string_equal(err.msg,
                        "TETHYS_URL: \"localhost:8080\" is not an http:// or https:// URL");
    unsetenv("TETHYS_URL");

    /* the default data directory: $XDG_DATA_HOME/tethys, else ~/.local/share/tethys */
    char xdg[200], home[200], buf[400];
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    mkdir(xdg, 0700);
    snprintf(dir, sizeof dir, "%s/tethys", xdg);
    make_data_dir(dir, url, 0, TOKEN);
    setenv("XDG_DATA_HOME", xdg, 1);
    assert_int_equal(client_default_data_dir(buf, sizeof buf, &err), 0);
    assert_string_equal(buf, dir);
    assert_int_equal(client_open(&c, NULL, &err), 0);
    assert_string_equal(c.source, dir);
    assert_int_equal(client_call(&c, "GET", "/api/v1/jobs/x", NULL, NULL, NULL, NULL, NULL, &err),
                     0);
    client_close(&c);

    const char *saved_home = getenv("HOME");
    char old_home[300];
    snprintf(old_home, sizeof old_home, "%s", saved_home ? saved_home : "");
    snprintf(home, sizeof home, "%s/home", tmp);
    setenv("HOME", home, 1);
    setenv("XDG_DATA_HOME", "relative/ignored", 1);
    assert_int_equal(client_default_data_dir(buf, sizeof buf, &err), 0);
    snprintf(want, sizeof want, "%s/.local/share/tethys", home);
    assert_string_equal(buf, want);
    unsetenv("XDG_DATA_HOME");
    assert_int_equal(client_open(&c, NULL, &err), TY_EUNAVAIL);
    assert_non_null(strstr(err.msg, "/home/.local/share/tethys/server.json does not exist"));
    if (saved_home != NULL)
        setenv("HOME", old_home, 1);
}

/* A port nobody listens on: bound but not listening, so connecting is refused and no
 * other process (tests run in parallel) can take the port meanwhile.  Close *fd after. */
static int dead_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(*fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static void test_not_running(void **state)
{
    (void)state;
    struct client c;
    struct ty_err err;
    char dir[300], u[64], want[600];
    snprintf(dir, sizeof dir, "%s/dead", tmp);
    int hold;
    snprintf(u, sizeof u, "http://127.0.0.1:%d", dead_port(&hold));
    make_data_dir(dir, u, (long)getpid(), TOKEN);
    assert_int_equal(client_open(&c, dir, &err), 0);
    long status = -1;
    json_t *resp = (json_t *)1;
    assert_int_equal(
        client_call(&c, "GET", "/api/v1/health", NULL, NULL, &status, &resp, NULL, &err),
        TY_EUNAVAIL);
    snprintf(want, sizeof want,
             "no Tethys server at %s: connection refused (is `tethys server` running?)", u);
    assert_string_equal(err.msg, want);
    assert_int_equal(status, 0);
    assert_null(resp);
    client_close(&c);

    /* server.json left behind by a server that died: say so */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    make_data_dir(dir, u, (long)child, TOKEN);
    assert_int_equal(client_open(&c, dir, &err), 0);
    assert_int_equal(client_call(&c, "GET", "/api/v1/health", NULL, NULL, NULL, NULL, NULL, &err),
                     TY_EUNAVAIL);
    snprintf(want, sizeof want,
             "no Tethys server at %s: connection refused (is `tethys server` running? %s names "
             "pid %ld, which has exited)",
             u, dir, (long)child);
    assert_string_equal(err.msg, want);
    client_close(&c);
    close(hold);
}

static void test_api_errors(void **state)
{
    (void)state;
    struct client c;
    open_good(&c);
    struct ty_err err;
    long status;
    json_t *resp = NULL;

    assert_int_equal(
        client_call(&c, "GET", "/api/v1/jobs/missing", NULL, NULL, &status, &resp, NULL, &err),
        TY_ENOENT);
    assert_int_equal(status, 404);
    assert_null(resp);
    assert_string_equal(err.msg, "job \"missing\": no such job");
    assert_string_equal(err.field, "name");

    assert_int_equal(
        client_call(&c, "GET", "/api/v1/nothing", NULL, NULL, &status, NULL, NULL, &err),
        TY_ENOENT);
    assert_string_equal(err.msg, "no such endpoint: GET /api/v1/nothing");

    assert_int_equal(client_call(&c, "GET", "/api/v1/boom", NULL, NULL, &status, NULL, NULL, &err),
                     TY_EIO);
    assert_int_equal(status, 500);
    assert_string_equal(err.msg, "database: disk I/O error");

    assert_int_equal(client_call(&c, "POST", "/api/v1/boom", NULL, NULL, &status, NULL, NULL, &err),
                     TY_EINVAL);
    assert_int_equal(status, 405);

    assert_int_equal(client_call(&c, "GET", "/api/v1/text", NULL, NULL, &status, &resp, NULL, &err),
                     TY_EFORMAT);
    assert_non_null(strstr(err.msg, "/api/v1/text: the answer is not JSON"));
    assert_null(resp);

    /* a wrong token: the message says where it came from */
    free(c.token);
    c.token = strdup("wrong");
    assert_int_equal(
        client_call(&c, "GET", "/api/v1/jobs/x", NULL, NULL, &status, NULL, NULL, &err), TY_EAUTH);
    char want[400];
    snprintf(want, sizeof want, "wrong bearer token (the token came from %s/good/token)", tmp);
    assert_string_equal(err.msg, want);
    client_close(&c);
}

static void test_etag_if_match_body(void **state)
{
    (void)state;
    struct client c;
    open_good(&c);
    struct ty_err err;
    long status;
    json_t *resp;
    char *etag;
    assert_int_equal(
        client_call(&c, "GET", "/api/v1/jobs/a", NULL, NULL, &status, &resp, &etag, &err), 0);
    assert_string_equal(etag, "3"); /* quotes removed */
    free(etag);
    json_decref(resp);

    json_t *body = json_pack("{s:s,s:[i,i],s:s}", "name", "a", "shards", 0, 2, "text", "zh: 你好");
    assert_int_equal(
        client_call(&c, "PUT", "/api/v1/jobs/a", body, "3", &status, &resp, &etag, &err), 0);
    assert_int_equal(status, 200);
    assert_true(json_equal(json_object_get(resp, "got"), body));
    assert_string_equal(json_string_value(json_object_get(resp, "if_match")), "\"3\"");
    assert_string_equal(etag, "4");
    free(etag);
    json_decref(resp);

    assert_int_equal(
        client_call(&c, "PUT", "/api/v1/jobs/a", body, "2", &status, &resp, &etag, &err),
        TY_ECONFLICT);
    assert_int_equal(status, 412);
    assert_string_equal(err.msg, "job \"a\" is at version 3, not \"2\"");
    assert_string_equal(err.field, "version");
    assert_null(etag);
    json_decref(body);

    /* 204: success with no body */
    resp = (json_t *)1;
    assert_int_equal(
        client_call(&c, "DELETE", "/api/v1/jobs/a", NULL, NULL, &status, &resp, NULL, &err), 0);
    assert_int_equal(status, 204);
    assert_null(resp);
    client_close(&c);
}

static int collect(void *arg, const char *buf, size_t n)
{
    sb_add(arg, buf, n);
    return 0;
}

static int stop_after_first(void *arg, const char *buf, size_t n)
{
    sb_add(arg, buf, n);
    return TY_EIO;
}

static int stop_server(void *arg, const char *buf, size_t n)
{
    (void)buf;
    (void)n;
    http_stop(arg); /* the server goes away in mid-stream */
    return 0;
}

static void test_stream(void **state)
{
    (void)state;
    struct client c;
    open_good(&c);
    struct ty_err err;
    struct strbuf sb;
    sb_init(&sb);
    assert_int_equal(client_stream(&c, "/api/v1/runs/r1/log", collect, &sb, &err), 0);
    assert_string_equal(sb_str(&sb), "line one\nline two\nline three\n");

    sb_truncate(&sb, 0);
    assert_int_equal(client_stream(&c, "/api/v1/runs/r1/log", stop_after_first, &sb, &err), TY_EIO);
    assert_string_equal(sb_str(&sb), "line one\n");

    sb_truncate(&sb, 0);
    assert_int_equal(client_stream(&c, "/api/v1/jobs/missing", collect, &sb, &err), TY_ENOENT);
    assert_string_equal(err.msg, "job \"missing\": no such job");
    assert_string_equal(sb_str(&sb), ""); /* an error body is not passed on as output */
    client_close(&c);

    /* the server stops while we follow: a clear error, not a silent end */
    struct http_server *s2 = start();
    char dir[300], u[64];
    snprintf(dir, sizeof dir, "%s/s2", tmp);
    snprintf(u, sizeof u, "http://127.0.0.1:%d", http_port(s2));
    make_data_dir(dir, u, 0, TOKEN);
    assert_int_equal(client_open(&c, dir, &err), 0);
    assert_int_equal(client_stream(&c, "/api/v1/forever", stop_server, s2, &err), TY_EUNAVAIL);
    assert_non_null(strstr(err.msg, "ended the stream before its end (did the server stop?)"));
    client_close(&c);
    sb_free(&sb);
}

static void test_encoding(void **state)
{
    (void)state;
    struct strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "/api/v1/domains");
    client_path_add(&sb, "bank/settlement");
    assert_string_equal(sb_str(&sb), "/api/v1/domains/bank%2Fsettlement");
    client_query_add(&sb, "domain", "a b+c");
    client_query_add(&sb, "none", NULL);
    client_query_add(&sb, "since", "2026-01-01T00:00:00+08:00");
    assert_string_equal(sb_str(&sb), "/api/v1/domains/bank%2Fsettlement?domain=a%20b%2Bc"
                                     "&since=2026-01-01T00%3A00%3A00%2B08%3A00");

    /* round trip through the real layer: what the client encodes, the server decodes */
    struct client c;
    open_good(&c);
    const char *texts[] = {"bank/settlement", "a b+c?d&e=f#g%h", "café-名前", "~._-", "%2F"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sb_truncate(&sb, 0);
        sb_adds(&sb, "/api/v1/echo");
        client_path_add(&sb, texts[i]);
        client_query_add(&sb, "q", texts[i]);
        json_t *resp;
        struct ty_err err;
        assert_int_equal(client_call(&c, "GET", sb_str(&sb), NULL, NULL, NULL, &resp, NULL, &err),
                         0);
        assert_string_equal(json_string_value(json_object_get(resp, "segment")), texts[i]);
        assert_string_equal(json_string_value(json_object_get(resp, "q")), texts[i]);
        json_decref(resp);
    }
    client_close(&c);
    sb_free(&sb);
}

static void test_codes(void **state)
{
    (void)state;
    /* every code the server sends comes back as itself */
    for (int code = -1; code >= TY_ECODE_MIN; code--)
        assert_int_equal(client_code_for(http_status_for(code), ty_code_name(code)), code);
    /* layer refusals and bodies without a code */
    assert_int_equal(client_code_for(413, "too_large"), TY_EINVAL);
    assert_int_equal(client_code_for(415, "unsupported_media_type"), TY_EINVAL);
    assert_int_equal(client_code_for(500, "internal"), TY_EIO);
    assert_int_equal(client_code_for(404, NULL), TY_ENOENT);
    assert_int_equal(client_code_for(409, NULL), TY_EEXIST);
    assert_int_equal(client_code_for(412, NULL), TY_ECONFLICT);
    assert_int_equal(client_code_for(418, "teapot"), TY_EINVAL);
    assert_int_equal(client_code_for(502, NULL), TY_EIO);
    assert_int_equal(client_code_for(503, NULL), TY_EUNAVAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_dir),    cmocka_unit_test(test_data_dir_errors),
        cmocka_unit_test(test_environment), cmocka_unit_test(test_not_running),
        cmocka_unit_test(test_api_errors),  cmocka_unit_test(test_etag_if_match_body),
        cmocka_unit_test(test_stream),      cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_codes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
