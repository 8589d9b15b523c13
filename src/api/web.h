/*
 * web.h - the web console's files, served by the API's HTTP server (docs/console.md).
 *
 * The console is built from web/ (TypeScript, Vite) when tethys is built, and its files are
 * compiled into the binary by tools/web_embed.c as one table (web_console, generated into
 * the build directory).  web_serve answers GET / and every other path that is not an API
 * route from that table: a file by its path, index.html for any other path outside /api/
 * (the console's own pages, routed in the browser).
 */
#ifndef WEB_H
#define WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* One file of the console, as tools/web_embed.c writes it. */
struct web_asset {
    const char *path;         /* "index.html", "assets/index-3f9a1c.js" (no leading /) */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<16 hex digits>\"": a hash of the bytes, quoted */
    bool immutable;   /* its name carries its content's hash (under assets/) */
};

/* The files of one build of the console, sorted by path (bytewise). */
struct web_bundle {
    const struct web_asset *assets;
    size_t n;
};

/* The console built into this binary (generated web_assets.c; only the tethys program
 * links it). */
extern const struct web_bundle web_console;

/*
 * An http_route handler for http_config.fallback, with a struct web_bundle as route arg
 * (borrowed for the server's life): answers the file named by the path (or index.html for
 * "/" and for any path that names no file and is not under /api/) with its content type,
 * its ETag, 304 when If-None-Match names it, Cache-Control (a year, immutable, for hashed
 * names; no-cache for the rest); the HTTP layer adds the security headers every answer
 * has (the console's Content Security Policy, frame denial, no sniffing, same-origin
 * referrers).  A path under /api/ is a JSON
 * 404, as any unknown API path.
 */
void web_serve(void *ctx, const struct http_request *req, struct http_response *resp);

/* The file at path (no leading /) in b, or NULL. */
const struct web_asset *web_find(const struct web_bundle *b, const char *path);

#endif
