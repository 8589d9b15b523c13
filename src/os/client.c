/*
 * client.c - the CLI's HTTP client: finding the server, one request, one stream.
 *
 * Plain blocking libcurl ("easy" interface): the CLI makes one request at a time, so
 * there is nothing for a multi handle to do.  One easy handle lives as long as the
 * client and is reset between requests, which keeps its connection cache, so `job run
 * --wait` polling reuses one TCP connection.
 *
 * Time limits: connecting must finish in 10 s; an answer may take as long as it needs
 * as long as bytes keep coming (aborted after 60 s with none), except for streams,
 * which may be silent for ever (a followed log of a quiet run).  Proxies from the
 * environment are honoured, except for loopback addresses, where a proxy is never
 * what the user meant.
 *
 * Errors are turned into sentences here, once, so every command reports "server not
 * running" and API refusals the same way.
 *
 * Rate limits.  A request the server refuses with 429 was not carried out, so it is sent
 * again after the Retry-After the server named, up to RATE_RETRIES times as long as each
 * wait is at most RATE_WAIT_MAX_S: a long `apply` or import slows down instead of failing
 * half way.
 */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TETHYS_VERSION
#define TETHYS_VERSION "dev"
#endif

#define CONNECT_TIMEOUT_S 10L
#define SILENCE_LIMIT_S   60L
#define ERROR_BODY_MAX    ((size_t)64 * 1024)
#define SMALL_FILE_MAX    ((size_t)64 * 1024)
#define RATE_RETRIES      20
#define RATE_WAIT_MAX_S   10L

/* ---- finding the server --------------------------------------------------------------- */

/* Read a small file whole.  *out is malloc'd and NUL-terminated. */
static int read_small(const char *path, char **out, struct ty_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_error(err, errno == ENOENT ? TY_ENOENT : TY_EIO, "data", -1, 0, "%s: %s", path,
                        strerror(errno));
    struct strbuf sb;
    sb_init(&sb);
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            sb_free(&sb);
            return ty_error(err, TY_EIO, "data", -1, 0, "%s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        sb_add(&sb, buf, (size_t)n);
        if (sb.len > SMALL_FILE_MAX) {
            close(fd);
            sb_free(&sb);
            return ty_error(err, TY_EFORMAT, "data", -1, 0, "%s: larger than %zu bytes", path,
                            SMALL_FILE_MAX);
        }
    }
    close(fd);
    if (sb_failed(&sb)) {
        sb_free(&sb);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    if (sb.len == 0) {
        *out = calloc(1, 1);
        sb_free(&sb);
        return *out ? 0 : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    *out = sb_detach(&sb);
    return 0;
}

/* Check and copy a base URL, without trailing slashes. */
static int set_url(struct client *c, const char *url, const char *from, struct ty_err *err)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return ty_error(err, TY_EFORMAT, "url", -1, 0,
                        "%s: \"%s\" is not an http:// or https:// URL", from, url);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    c->url = strndup(url, n);
    return c->url ? 0 : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
}

int client_default_data_dir(char *buf, size_t cap, struct ty_err *err)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg != NULL && xdg[0] == '/') {
        snprintf(buf, cap, "%s/tethys", xdg);
        return 0;
    }
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] == '\0')
        return ty_error(err, TY_ENOENT, "data", -1, 0,
                        "no data directory: HOME is not set; use --data DIR or TETHYS_URL");
    snprintf(buf, cap, "%s/.local/share/tethys", home);
    return 0;
}

static int open_data_dir(struct client *c, const char *dir, struct ty_err *err)
{
    char path[4096];
    char *text = NULL;
    c->source = strdup(dir);
    if (c->source == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    snprintf(path, sizeof path, "%s/server.json", dir);
    int rc = read_small(path, &text, err);
    if (rc == TY_ENOENT)
        return ty_error(err, TY_EUNAVAIL, "data", -1, 0,
                        "no Tethys server found: %s does not exist (start one with `tethys "
                        "server --data %s`, or set TETHYS_URL and TETHYS_TOKEN)",
                        path, dir);
    if (rc != 0)
        return rc;
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    free(text);
    json_t *url = json_object_get(root, "url");
    if (!json_is_string(url)) {
        json_decref(root);
        return ty_error(err, TY_EFORMAT, "data", -1, 0,
                        "%s: not a server.json written by "
                        "`tethys server` (no \"url\")",
                        path);
    }
    if (json_is_integer(json_object_get(root, "pid")))
        c->pid = (long)json_integer_value(json_object_get(root, "pid"));
    rc = set_url(c, json_string_value(url), path, err);
    json_decref(root);
    if (rc != 0)
        return rc;

    snprintf(path, sizeof path, "%s/token", dir);
    rc = read_small(path, &text, err);
    if (rc == TY_ENOENT)
        return ty_error(err, TY_EIO, "data", -1, 0,
                        "%s: No such file or directory (the server writes it when it starts)",
                        path);
    if (rc != 0)
        return rc;
    size_t n = strcspn(text, "\r\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    text[n] = '\0';
    if (n == 0) {
        free(text);
        return ty_error(err, TY_EFORMAT, "data", -1, 0, "%s is empty", path);
    }
    c->token = text;
    return 0;
}

int client_open(struct client *c, const char *data_dir, struct ty_err *err)
{
    memset(c, 0, sizeof *c);
    int rc;
    const char *env_url = getenv("TETHYS_URL");
    if (data_dir != NULL) {
        rc = open_data_dir(c, data_dir, err);
    } else if (env_url != NULL && env_url[0] != '\0') {
        rc = set_url(c, env_url, "TETHYS_URL", err);
        c->source = strdup("TETHYS_URL");
        const char *tok = getenv("TETHYS_TOKEN");
        if (rc == 0 && tok != NULL && tok[0] != '\0')
            c->token = strdup(tok);
        if (rc == 0 && (c->source == NULL || (tok != NULL && tok[0] && c->token == NULL)))
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    } else {
        char dir[4096];
        rc = client_default_data_dir(dir, sizeof dir, err);
        if (rc == 0)
            rc = open_data_dir(c, dir, err);
    }
    const char *ca = getenv("TETHYS_CACERT");
    if (rc == 0 && ca != NULL && ca[0] != '\0')
        rc = client_set_cacert(c, ca, "TETHYS_CACERT", err);
    if (rc == 0) {
        c->curl = curl_easy_init();
        if (c->curl == NULL)
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "could not set up libcurl");
    }
    if (rc != 0)
        client_close(c);
    return rc;
}

int client_open_url(struct client *c, const char *url, const char *token, const char *source,
                    struct ty_err *err)
{
    memset(c, 0, sizeof *c);
    int rc = set_url(c, url, source, err);
    if (rc == 0 && ((c->source = strdup(source)) == NULL ||
                    (token != NULL && (c->token = strdup(token)) == NULL) ||
                    (c->curl = curl_easy_init()) == NULL))
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    const char *ca = getenv("TETHYS_CACERT");
    if (rc == 0 && ca != NULL && ca[0] != '\0')
        rc = client_set_cacert(c, ca, "TETHYS_CACERT", err);
    if (rc != 0)
        client_close(c);
    return rc;
}

int client_set_cacert(struct client *c, const char *path, const char *option, struct ty_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_error(err, TY_EIO, "cacert", -1, 0, "%s %s: %s", option, path, strerror(errno));
    close(fd);
    char *copy = strdup(path);
    if (copy == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    free(c->cacert);
    c->cacert = copy;
    return 0;
}

void client_close(struct client *c)
{
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->token);
    free(c->source);
    free(c->cacert);
    memset(c, 0, sizeof *c);
}

/* ---- encoding --------------------------------------------------------------------------- */

static void add_escaped(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sb_addc(sb, (char)ch);
        } else {
            sb_addc(sb, '%');
            sb_addc(sb, hex[ch >> 4]);
            sb_addc(sb, hex[ch & 15]);
        }
    }
}

void client_path_add(struct strbuf *sb, const char *segment)
{
    sb_addc(sb, '/');
    add_escaped(sb, segment);
}

void client_query_add(struct strbuf *sb, const char *key, const char *value)
{
    if (value == NULL)
        return;
    sb_addc(sb, strchr(sb_str(sb), '?') ? '&' : '?');
    add_escaped(sb, key);
    sb_addc(sb, '=');
    add_escaped(sb, value);
}

/* ---- errors ------------------------------------------------------------------------------ */

int client_code_for(long status, const char *code_name)
{
    int code = ty_code_parse(code_name);
    if (code != 0)
        return code;
    switch (status) {
    case 400: return TY_EINVAL;
    case 401: return TY_EAUTH;
    case 403: return TY_EPERM;
    case 404: return TY_ENOENT;
    case 409: return TY_EEXIST;
    case 412: return TY_ECONFLICT;
    case 429: return TY_EBUSY;
    case 503: return TY_EUNAVAIL;
    case 507: return TY_ENOSPC;
    default: return status >= 400 && status < 500 ? TY_EINVAL : TY_EIO;
    }
}

/* Fill err from an error answer (JSON or not). */
static int api_error(struct client *c, long status, const char *body, size_t len,
                     struct ty_err *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *name = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    int code = client_code_for(status, name);
    if (msg != NULL && code == TY_EAUTH && c->token == NULL)
        ty_error(err, code, field, -1, 0, "%s (no token was sent: set TETHYS_TOKEN)", msg);
    else if (msg != NULL && code == TY_EAUTH && strcmp(c->source, "TETHYS_URL") == 0)
        ty_error(err, code, field, -1, 0, "%s (the token came from TETHYS_TOKEN)", msg);
    else if (msg != NULL && code == TY_EAUTH)
        ty_error(err, code, field, -1, 0, "%s (the token came from %s/token)", msg, c->source);
    else if (msg != NULL)
        ty_error(err, code, field, -1, 0, "%s", msg);
    else
        ty_error(err, code, NULL, -1, 0, "%s answered HTTP %ld without an error message", c->url,
                 status);
    json_decref(root);
    return code;
}

/* Fill err for a transfer that failed below HTTP. */
static int transport_error(struct client *c, CURLcode cc, const char *errbuf, struct ty_err *err)
{
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    if (cc == CURLE_COULDNT_CONNECT) {
        const char *why = os_errno == ECONNREFUSED ? "connection refused"
                          : os_errno != 0          ? strerror((int)os_errno)
                                                   : "could not connect";
        if (c->pid > 0 && kill((pid_t)c->pid, 0) != 0 && errno == ESRCH)
            return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                            "no Tethys server at %s: %s (is `tethys server` running? %s names "
                            "pid %ld, which has exited)",
                            c->url, why, c->source, c->pid);
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                        "no Tethys server at %s: %s (is `tethys server` running?)", c->url, why);
    }
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "%s did not answer in time (%s)", c->url,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (cc == CURLE_COULDNT_RESOLVE_HOST)
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "%s: the host name cannot be resolved",
                        c->url);
    if (cc == CURLE_OUT_OF_MEMORY)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (cc == CURLE_PEER_FAILED_VERIFICATION)
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                        "%s: the server's TLS certificate is not trusted (%s); if a private CA "
                        "signed it, pass --cacert FILE or set TETHYS_CACERT",
                        c->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (cc == CURLE_SSL_CONNECT_ERROR && strncmp(c->url, "https://", 8) == 0)
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                        "%s: the TLS handshake failed (%s); does the server speak HTTPS?", c->url,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (strncmp(c->url, "http://", 7) == 0 &&
        (cc == CURLE_WEIRD_SERVER_REPLY || cc == CURLE_UNSUPPORTED_PROTOCOL ||
         cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING))
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                        "%s: %s (if the server was started with --tls-cert, use an https:// URL)",
                        c->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "%s: %s", c->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
}

/* ---- requests ---------------------------------------------------------------------------- */

struct sink {
    struct client *c;
    struct strbuf body; /* JSON answers, and error bodies of streams */
    struct strbuf etag;
    long retry_after;   /* seconds, from a Retry-After header; -1 when none */
    client_bytes_cb cb; /* streams */
    void *arg;
    int cb_rc;
    bool too_big;
    int status_known; /* streams: 1 = 2xx (pass on), -1 = error (buffer) */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (s->cb != NULL) {
        if (s->status_known == 0) {
            long status = 0;
            curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &status);
            s->status_known = status >= 200 && status < 300 ? 1 : -1;
        }
        if (s->status_known > 0) {
            s->cb_rc = s->cb(s->arg, p, len);
            return s->cb_rc == 0 ? len : 0;
        }
        if (s->body.len + len > ERROR_BODY_MAX)
            return len; /* the start of an error is enough */
    } else if (s->body.len + len > CLIENT_RESPONSE_MAX) {
        s->too_big = true;
        return 0;
    }
    sb_add(&s->body, p, len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (len > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        const char *v = p + 5, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        if (end - v >= 2 && strncmp(v, "W/", 2) == 0)
            v += 2;
        if (end - v >= 2 && *v == '"' && end[-1] == '"')
            v++, end--;
        sb_truncate(&s->etag, 0);
        sb_add(&s->etag, v, (size_t)(end - v));
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char num[16] = "";
        size_t k = 0;
        for (const char *v = p + 12; v < p + len && k + 1 < sizeof num; v++)
            if (*v >= '0' && *v <= '9')
                num[k++] = *v;
        s->retry_after = k > 0 ? strtol(num, NULL, 10) : -1;
    }
    return len;
}

/* Set up the handle for one request; *hdrs must be freed by the caller. */
static void prepare(struct client *c, const char *method, const char *path, bool stream,
                    struct curl_slist **hdrs, char *errbuf, struct sink *s)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct strbuf url;
    sb_init(&url);
    sb_adds(&url, c->url);
    sb_adds(&url, path);
    curl_easy_setopt(h, CURLOPT_URL, sb_str(&url));
    sb_free(&url); /* libcurl copies option strings */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tethys-cli/" TETHYS_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->cacert != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert); /* verification stays on */
    if (!stream) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, SILENCE_LIMIT_S);
        if (c->timeout_ms > 0)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    }
    /* never send loopback traffic through a proxy from the environment */
    const char *np = getenv("no_proxy");
    if (np == NULL)
        np = getenv("NO_PROXY");
    char noproxy[1024];
    snprintf(noproxy, sizeof noproxy, "localhost,127.0.0.1,::1%s%s", np && *np ? "," : "",
             np ? np : "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, noproxy);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    *hdrs = curl_slist_append(*hdrs, stream ? "Accept: text/plain, application/json"
                                            : "Accept: application/json");
    if (c->token != NULL) {
        struct strbuf a;
        sb_init(&a);
        sb_addf(&a, "Authorization: Bearer %s", c->token);
        *hdrs = curl_slist_append(*hdrs, sb_str(&a));
        sb_free(&a);
    }
    *hdrs = curl_slist_append(*hdrs, "Expect:");
}

/* One attempt of client_call; *retry_after gets the answer's Retry-After (-1: none). */
static int call_once(struct client *c, const char *method, const char *path, const json_t *body,
                     const char *if_match, long *status, json_t **resp, char **etag,
                     long *retry_after, struct ty_err *err)
{
    if (status != NULL)
        *status = 0;
    if (resp != NULL)
        *resp = NULL;
    if (etag != NULL)
        *etag = NULL;
    struct sink s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.retry_after = -1;
    sb_init(&s.body);
    sb_init(&s.etag);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    prepare(c, method, path, false, &hdrs, errbuf, &s);
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            curl_slist_free_all(hdrs);
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        }
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    }
    if (if_match != NULL) {
        struct strbuf m;
        sb_init(&m);
        sb_addf(&m, "If-Match: \"%s\"", if_match);
        hdrs = curl_slist_append(hdrs, sb_str(&m));
        sb_free(&m);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c->curl);
    long st = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
    if (status != NULL)
        *status = st;
    curl_slist_free_all(hdrs);
    free(text);

    int rc = 0;
    if (s.too_big)
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0, "%s%s: the answer is larger than %zu bytes",
                      c->url, path, CLIENT_RESPONSE_MAX);
    else if (cc != CURLE_OK)
        rc = transport_error(c, cc, errbuf, err);
    else if (sb_failed(&s.body))
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    else if (st < 200 || st > 299)
        rc = api_error(c, st, sb_str(&s.body), s.body.len, err);
    if (rc == 0 && s.body.len > 0 && resp != NULL) {
        json_error_t je;
        *resp = json_loadb(sb_str(&s.body), s.body.len, 0, &je);
        if (*resp == NULL)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s%s: the answer is not JSON (%s at line %d, column %d)", c->url, path,
                          je.text, je.line, je.column);
    }
    if (rc == 0 && etag != NULL && s.etag.len > 0)
        *etag = sb_detach(&s.etag);
    *retry_after = s.retry_after;
    sb_free(&s.body);
    sb_free(&s.etag);
    return rc;
}

int client_call(struct client *c, const char *method, const char *path, const json_t *body,
                const char *if_match, long *status, json_t **resp, char **etag, struct ty_err *err)
{
    for (int attempt = 0;; attempt++) {
        long st = 0, retry = -1;
        int rc = call_once(c, method, path, body, if_match, &st, resp, etag, &retry, err);
        if (status != NULL)
            *status = st;
        if (st != 429 || attempt >= RATE_RETRIES || retry < 0 || retry > RATE_WAIT_MAX_S)
            return rc;
        sleep((unsigned)(retry > 0 ? retry : 1)); /* refused, not done: ask again */
    }
}

int client_pages(struct client *c, const char *path, size_t max_items, client_page_cb cb, void *arg,
                 char **next, struct ty_err *err)
{
    if (next != NULL)
        *next = NULL;
    char *cursor = NULL;
    size_t got = 0;
    int rc = 0;
    for (;;) {
        size_t want = CLIENT_PAGE_MAX;
        if (max_items > 0 && max_items - got < want)
            want = max_items - got;
        struct strbuf p;
        sb_init(&p);
        sb_adds(&p, path);
        char limit[24];
        snprintf(limit, sizeof limit, "%zu", want);
        client_query_add(&p, "limit", limit);
        client_query_add(&p, "cursor", cursor);
        json_t *resp = NULL;
        rc = sb_failed(&p) ? ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory")
                           : client_call(c, "GET", sb_str(&p), NULL, NULL, NULL, &resp, NULL, err);
        sb_free(&p);
        json_t *items = json_object_get(resp, "items");
        json_t *nx = json_object_get(resp, "next");
        if (rc == 0 &&
            (!json_is_array(items) || (nx != NULL && !json_is_null(nx) && !json_is_string(nx))))
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s%s: the answer is not a page ({\"items\": [...], \"next\": ...})",
                          c->url, path);
        if (rc == 0)
            rc = cb(arg, items);
        free(cursor);
        cursor = rc == 0 && json_is_string(nx) ? strdup(json_string_value(nx)) : NULL;
        got += json_array_size(items);
        json_decref(resp);
        if (rc != 0 || cursor == NULL || (max_items > 0 && got >= max_items))
            break;
    }
    if (rc == 0 && next != NULL)
        *next = cursor;
    else
        free(cursor);
    return rc;
}

int client_stream(struct client *c, const char *path, client_bytes_cb cb, void *arg,
                  struct ty_err *err)
{
    struct sink s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.cb = cb;
    s.arg = arg;
    sb_init(&s.body);
    sb_init(&s.etag);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    prepare(c, "GET", path, true, &hdrs, errbuf, &s);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c->curl);
    long st = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hdrs);
    int rc = 0;
    if (s.cb_rc != 0)
        rc = s.cb_rc; /* the caller stopped; its reason stands */
    else if (st >= 300 || (st != 0 && st < 200))
        rc = api_error(c, st, sb_str(&s.body), s.body.len, err);
    else if (cc != CURLE_OK && st >= 200)
        rc = ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                      "%s ended the stream before its end (did the server stop?): %s", c->url,
                      errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (cc != CURLE_OK)
        rc = transport_error(c, cc, errbuf, err);
    sb_free(&s.body);
    sb_free(&s.etag);
    return rc;
}
