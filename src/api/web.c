/*
 * web.c - serving the web console's files from the table compiled into the binary.
 *
 * Design.  The console is a single-page application: one index.html, and scripts and
 * styles whose names carry a hash of their content (Vite writes them under assets/).  So
 * the hashed files are cached by browsers for a year and never asked for again
 * ("immutable"), while index.html is revalidated on every load ("no-cache" with its ETag:
 * a 304 costs a few bytes) and so always names the current build's files.  Paths that
 * name no file are the console's own pages (/jobs/nightly), routed in the browser, and get
 * index.html too; but nothing under /api/ does, so a mistyped API path still gets the
 * API's JSON 404 rather than a page, and neither does a missing file under assets/ (a
 * page of an older build asking for its scripts gets a 404, not HTML in their place).
 *
 * The files live in the binary (no directory to install, nothing to go missing or out of
 * step with the server's API), sorted by path, so a lookup is a binary search and an
 * answer borrows the bytes: no allocation, no copy, no disk.
 *
 * Every answer carries the console's Content Security Policy (HTTP_CSP, added by the HTTP
 * layer to every answer of the server, the API's too): scripts, styles and connections
 * only from this origin, no inline scripts or styles, no framing (with X-Frame-Options for
 * older browsers), no MIME sniffing, and referrers only to this origin.
 */
#include "web.h"

#include <stdio.h>
#include <string.h>

const struct web_asset *web_find(const struct web_bundle *b, const char *path)
{
    size_t lo = 0, hi = b != NULL ? b->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(path, b->assets[mid].path);
        if (c == 0)
            return &b->assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Whether an If-None-Match header names etag (a list, "*", or weak forms). */
static bool etag_matches(const char *header, const char *etag)
{
    if (header == NULL)
        return false;
    size_t n = strlen(etag);
    for (const char *p = header; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && memcmp(p, etag, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

static void add_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->n_headers < HTTP_HEADERS_MAX)
        resp->headers[resp->n_headers++] = (struct http_header){name, value};
}

void web_serve(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    const struct web_bundle *b = req->route_arg;
    const char *path = req->path[0] == '/' ? req->path + 1 : req->path;
    if (strncmp(req->path, "/api/", 5) == 0 || strcmp(req->path, "/api") == 0) {
        struct ty_err err;
        ty_error(&err, TY_ENOENT, "path", -1, 0, "no such endpoint: GET %s", req->path);
        http_error(resp, &err);
        return;
    }
    const struct web_asset *a = path[0] != '\0' ? web_find(b, path) : NULL;
    if (a == NULL && strncmp(path, "assets/", 7) == 0) {
        /* a file of another build (a page loaded before an upgrade): not a page */
        struct ty_err err;
        ty_error(&err, TY_ENOENT, "path", -1, 0, "no such file: %s", req->path);
        http_error(resp, &err);
        return;
    }
    if (a == NULL)
        a = web_find(b, "index.html");
    if (a == NULL) {
        struct ty_err err;
        ty_error(&err, TY_ENOENT, "path", -1, 0,
                 "the web console is not built into this binary (built with -DTETHYS_WEB=OFF)");
        http_error(resp, &err);
        return;
    }
    /* the security headers (HTTP_CSP and the rest) are the HTTP layer's, on every answer */
    add_header(resp, "Cache-Control",
               a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    resp->etag = strdup(a->etag);
    if (etag_matches(req->if_none_match, a->etag)) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    resp->content_type = a->content_type;
    resp->bytes = a->data;
    resp->bytes_len = a->len;
}
