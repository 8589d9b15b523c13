/*
 * client.h - how a client (the CLI, an executor, a server calling an executor) finds a
 * Tethys server and talks to its REST API (libcurl).
 *
 * Finding the server, first match wins:
 *   1. `--data DIR` (data_dir given to client_open): DIR/server.json names the URL and
 *      DIR/token holds the bearer token.  The environment is not consulted.
 *   2. TETHYS_URL ("http://host:port"): that server, with the token in TETHYS_TOKEN
 *      (unset: no token, so only public endpoints answer).
 *   3. the default data directory: $XDG_DATA_HOME/tethys when XDG_DATA_HOME is an absolute
 *      path, else $HOME/.local/share/tethys - the directory `tethys server` uses by
 *      default, so the CLI finds a local server from any working directory.
 *
 * In a data directory the server writes server.json, {"url": "http://127.0.0.1:8080",
 * "pid": 1234}, and token (mode 0600, one line).
 *
 * HTTPS.  An https:// URL is verified as any HTTPS client verifies it: the certificate
 * must chain to a trusted CA and name the host.  A private CA is trusted with
 * client_set_cacert (the CLI's --cacert FILE) or TETHYS_CACERT; verification is never
 * turned off.
 *
 * Failures are TY_E* codes with a message for people.  A server that is not there is
 * TY_EUNAVAIL: "no Tethys server at http://127.0.0.1:8080: connection refused (is `tethys
 * server` running?)".  An API error answer ({"error": {"code", "message", "field"}})
 * becomes the code its "code" names (else the one its HTTP status implies), with the
 * server's message and field.
 *
 * A struct client is used by one thread.  It keeps one libcurl handle, so consecutive
 * calls reuse the connection.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"

#define CLIENT_RESPONSE_MAX ((size_t)64 * 1024 * 1024) /* bytes of one JSON answer */

struct client {
    char *url;       /* base URL without a trailing slash: "http://127.0.0.1:8080" */
    char *token;     /* bearer token, or NULL */
    char *source;    /* where url and token came from: a data directory or "TETHYS_URL" */
    long pid;        /* the server's pid from server.json, or 0 */
    char *cacert;    /* PEM file of CA certificates to trust for HTTPS, or NULL (the system's) */
    void *curl;      /* the libcurl handle (private) */
    long timeout_ms; /* a whole request's limit (0: none but the silence limit); programs
                        that must not wait long on a peer set it */
};

/*
 * Find the server as described above and prepare to talk to it; nothing is sent yet.
 * data_dir (borrowed) is the --data option or NULL.  Fails with TY_EUNAVAIL (no
 * server.json: no server has run there), TY_EIO (a file could not be read),
 * TY_EFORMAT (server.json is not what a server writes), TY_ENOMEM.  On success the
 * caller owns *c (client_close); on failure *c needs no closing.
 */
int client_open(struct client *c, const char *data_dir, struct ty_err *err);

/*
 * Prepare to talk to the server at url (http:// or https://) with bearer token (NULL:
 * none), as a program rather than a person would: nothing is read from the environment
 * but TETHYS_CACERT.  source names the URL's origin in messages ("the leader").
 * TY_EFORMAT for a URL that is not one, TY_ENOMEM; the caller owns *c (client_close).
 */
int client_open_url(struct client *c, const char *url, const char *token, const char *source,
                    struct ty_err *err);

/*
 * Trust the CA certificates in the PEM file `path` for HTTPS (instead of the system's),
 * overriding TETHYS_CACERT.  TY_EIO when the file cannot be read ("--cacert /x: No such
 * file or directory"); `option` names it in the message.
 */
int client_set_cacert(struct client *c, const char *path, const char *option, struct ty_err *err);

/* Release everything; *c is zeroed.  Safe on a zeroed or closed client. */
void client_close(struct client *c);

/*
 * The data directory to use when no --data is given: $XDG_DATA_HOME/tethys or
 * $HOME/.local/share/tethys, written into buf[cap].  TY_ENOENT when neither variable
 * (nor the password database) gives a home directory.
 */
int client_default_data_dir(char *buf, size_t cap, struct ty_err *err);

/*
 * One request.  method is "GET", "POST", ...; path starts with "/" and is already
 * encoded (client_path_add, client_query_add); body (borrowed) is sent as JSON, or
 * nothing when NULL; if_match is sent as If-Match (quoted for the caller:
 * if_match "7" sends If-Match: "7") when not NULL.
 * On return *status holds the HTTP status (0 when none came).  A 2xx answer returns 0
 * with *resp the parsed JSON (a new reference; NULL for an empty answer such as 204) and
 * *etag the ETag without its quotes (malloc'd; NULL when none).  Any other answer, or no
 * answer, returns its TY_E* code with err filled and *resp and *etag NULL.  resp, etag
 * and status may be NULL when the caller does not want them.
 */
int client_call(struct client *c, const char *method, const char *path, const json_t *body,
                const char *if_match, long *status, json_t **resp, char **etag, struct ty_err *err);

#define CLIENT_PAGE_MAX 1000 /* items the API gives in one page at most */

/* Called with each page's items (a JSON array, borrowed for the call): 0 to go on, or a
 * negative TY_E* code to stop (client_pages then returns it). */
typedef int (*client_page_cb)(void *arg, json_t *items);

/*
 * Walk a paged list (an answer {"items": [...], "next": cursor | null}): GET path (which
 * may carry a query already) with limit=CLIENT_PAGE_MAX, then again with cursor=next,
 * until next is null or max_items items were handed over (0: no limit; a page never
 * brings more than are still wanted).  Each page's items go to cb.  *next (may be NULL)
 * gets the cursor after the last item handed over, malloc'd, or NULL when the list has no
 * more.  Errors as client_call; TY_EFORMAT when an answer is not a page.
 */
int client_pages(struct client *c, const char *path, size_t max_items, client_page_cb cb, void *arg,
                 char **next, struct ty_err *err);

/*
 * Receive bytes as they come: called for each piece of a 2xx answer; return 0 to go on
 * or a negative TY_E* code to stop (client_stream then returns it).
 */
typedef int (*client_bytes_cb)(void *arg, const char *buf, size_t n);

/*
 * GET path and hand the answer's body to cb as it arrives, with no time limit (for
 * `run logs -f`).  0 when the server ended the answer; an API error as client_call;
 * TY_EUNAVAIL when the connection broke before the end ("the server ended the stream
 * before its end").
 */
int client_stream(struct client *c, const char *path, client_bytes_cb cb, void *arg,
                  struct ty_err *err);

/* Append "/" and segment, percent-encoded so it stays one path segment
 * ("bank/settlement" -> "/bank%2Fsettlement"). */
void client_path_add(struct strbuf *sb, const char *segment);

/* Append "?key=value" (or "&key=value" when sb already has a '?'), value percent-encoded.
 * Nothing when value is NULL. */
void client_query_add(struct strbuf *sb, const char *key, const char *value);

/* The TY_E* code for an API error: from its "code" name when known, else from the HTTP
 * status (400 TY_EINVAL, 401 TY_EAUTH, 403 TY_EPERM, 404 TY_ENOENT, 409 TY_EEXIST, 412
 * TY_ECONFLICT, 503 TY_EUNAVAIL, 507 TY_ENOSPC, other 4xx TY_EINVAL, other 5xx TY_EIO). */
int client_code_for(long status, const char *code_name);

#endif
