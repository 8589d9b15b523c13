/*
 * routes.c - the REST API's handlers.
 *
 * Handlers turn HTTP into calls of the control plane (server.h) and back: they parse and
 * validate the request's own fields (core/job.c and friends do the field checks), call
 * the control plane, which checks what involves other objects, writes and tells the
 * executors, and answer with its result.  Reads go straight to the store through the
 * control plane's per-thread reader; a job's live state comes from the control plane's
 * memory.  Nothing here waits for an executor's loop to read or change configuration;
 * run now, cancel and reading a run's output are requests to the executor.
 *
 * Lists of jobs, domains and calendars are pages of the store (store_obj_page: an index
 * range from the cursor), never the whole set: with a million jobs a page of 100 costs
 * what it costs with ten.
 *
 * Secrets.  A followed log hides a job's secret values as it streams (core/mask.c), from
 * a little before the requested offset so a value cut by it is still recognised.
 *
 * `who` of every change is the token's name, or `user:NAME` for a signed-in user (the HTTP
 * layer's authenticate callback names the caller), or the client's address when no name is
 * known.
 *
 * Permissions.  Every route below declares what it needs (routes_impl.h); routes_auth.c
 * decides it before the handler runs.  The handlers of lists (jobs, domains, history,
 * stats, alerts) answer only what the caller may read (list_scope): the query narrowed to
 * the one subtree the caller reads of it, or filtered page by page over several.
 */
#define _GNU_SOURCE
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/civil.h"
#include "../core/domain.h"
#include "../core/mask.h"
#include "../os/log.h"
#include "../tzdb/tzdb.h"
#include "cron_check.h"
#include "routes_impl.h"

/* ---------------------------------------------------------------------------------------
 * Helpers
 */

static void respond(struct http_response *resp, int status, json_t *body, int64_t version)
{
    resp->status = status;
    resp->body = body;
    if (version > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)version);
        resp->etag = strdup(buf);
    }
}

static void fail(struct http_response *resp, const struct ty_err *err)
{
    http_error(resp, err);
}

/* Who is asking, for `who` in the store and `by` in logs: the token's name, else the
 * client's address. */
static const char *who_of(const struct http_request *req)
{
    return req->who != NULL ? req->who : req->remote;
}

static struct store *reader(struct server *s, struct http_response *resp)
{
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    if (st == NULL)
        fail(resp, &err);
    return st;
}

/* The stored object of `kind` named `name` with its version and (jobs) live state. */
static json_t *object_view(struct server *s, enum store_kind kind, const char *name,
                           const char *json, int64_t version)
{
    json_t *o = json_loads(json, 0, NULL);
    if (o == NULL)
        o = json_object();
    json_t *state = kind == STORE_JOB ? server_job_state(s, name, o) : NULL;
    json_object_set_new(o, "version", json_integer(version));
    if (state != NULL)
        json_object_set_new(o, "state", state);
    return o;
}

/* ---------------------------------------------------------------------------------------
 * Health
 */

static void h_health(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    (void)req;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t up = (int64_t)ts.tv_sec - server_started_ms(s) / 1000;
    respond(resp, 200,
            json_pack("{s:s, s:s, s:I, s:s}", "status", "ok", "version", TETHYS_VERSION, "uptime_s",
                      (json_int_t)up, "role", server_role(s)),
            0);
}

/* ---------------------------------------------------------------------------------------
 * Jobs
 */

/* Save a job through the control plane and answer with it (status on success). */
static void save_job(struct server *s, const struct http_request *req, struct http_response *resp,
                     struct job *j, int64_t base, int status)
{
    struct ty_err err;
    ty_err_clear(&err);
    char *text = NULL;
    int64_t version = 0;
    if (server_job_save(s, j, base, who_of(req), &text, &version, &err) != 0) {
        fail(resp, &err);
        return;
    }
    respond(resp, status, object_view(s, STORE_JOB, j->name, text, version), version);
    free(text);
}

/*
 * The paging parameters every list takes: limit (1-1000; absent: the store's 100) and
 * cursor (the previous page's "next"), and q, a text to look for.  0 or TY_EINVAL naming
 * the parameter.
 */
static int page_params(const struct http_request *req, struct store_obj_query *q,
                       struct ty_err *err)
{
    const char *limit = http_query(req, "limit");
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (end == limit || *end != '\0' || v < 1 || v > 1000)
            return ty_error(err, TY_EINVAL, "limit", -1, 0,
                            "limit: \"%.40s\" is not a number 1-1000", limit);
        q->limit = (size_t)v;
    }
    q->cursor = http_query(req, "cursor");
    q->text = http_query(req, "q");
    return 0;
}

/* The store's refusal of a page, worded for the API's parameters. */
static void page_error(const struct store_obj_query *q, struct ty_err *err)
{
    if (strcmp(err->field, "cursor") == 0)
        ty_error(err, TY_EINVAL, "cursor", -1, 0,
                 "cursor: \"%.40s\" is not a \"next\" this server returned (pass the \"next\" "
                 "of the previous page, or no cursor for the first page)",
                 q->cursor);
    else if (strcmp(err->field, "domain") == 0)
        ty_error(err, TY_EINVAL, "domain", -1, 0, "domain: longer than %d bytes", DOMAIN_PATH_MAX);
}

/*
 * What a list may show its caller.  A caller who may read everything a query asks for
 * gets the query as it is; one who may read a single subtree of it gets the query narrowed
 * to that subtree (an index range, as fast as any); one who reads several gets the query
 * with its items filtered (keep), page after page until the page is full.
 */
struct scope {
    bool none; /* nothing at all: an empty answer */
    size_t n;  /* subtrees to keep items of, when filtering (0: no filter) */
    const char *roots[ROLE_GRANTS_MAX];
};

#define SCOPE_PAGES 50 /* store pages one filtered answer reads at most (then "next" goes on) */

/*
 * Work out the scope of a list of `what` for the caller of req; *domain is the query's
 * domain filter (NULL: none), narrowed in place when one subtree is all the caller reads of
 * it.  TY_EPERM (with the sentence) when the caller may read nothing of the domain asked.
 */
static int list_scope(const struct http_request *req, const char **domain, const char *what,
                      struct scope *sc, struct ty_err *err)
{
    memset(sc, 0, sizeof *sc);
    bool all;
    const char *roots[ROLE_GRANTS_MAX];
    size_t n = routes__read_roots(req, roots, ROLE_GRANTS_MAX, &all);
    const char *d = *domain != NULL ? *domain : "";
    if (all)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (domain_within(d, roots[i]))
            return 0; /* all of it */
    for (size_t i = 0; i < n; i++)
        if (domain_within(roots[i], d))
            sc->roots[sc->n++] = roots[i];
    if (sc->n == 0 && d[0] != '\0') {
        char doing[DOMAIN_PATH_MAX + 64];
        snprintf(doing, sizeof doing, "listing %s of %s", what, d);
        return routes__check(req, ROLE_VIEWER, d, doing, err);
    }
    if (sc->n == 0)
        sc->none = true;
    if (sc->n == 1) { /* one subtree: the query itself narrows to it */
        *domain = sc->roots[0];
        sc->n = 0;
    }
    return 0;
}

static bool scope_keeps(const struct scope *sc, const char *domain)
{
    if (sc->none)
        return false;
    if (sc->n == 0)
        return true;
    for (size_t i = 0; i < sc->n; i++)
        if (domain_within(domain != NULL ? domain : "", sc->roots[i]))
            return true;
    return false;
}

/* The domain an item of an object page is filed under: a domain's own path, a job's
 * "domain" (from its object, or its stored text on a raw page); "" for a calendar. */
static bool item_kept(const struct scope *sc, enum store_kind kind, const json_t *it)
{
    if (sc->n == 0 || kind == STORE_CALENDAR)
        return !sc->none;
    if (kind == STORE_DOMAIN)
        return scope_keeps(sc, json_string_value(json_object_get(it, "name")));
    const json_t *obj = json_object_get(it, "object");
    if (obj != NULL)
        return scope_keeps(sc, json_string_value(json_object_get(obj, "domain")));
    char d[DOMAIN_PATH_MAX + 1];
    routes__domain_of(json_string_value(json_object_get(it, "json")), d, sizeof d);
    return scope_keeps(sc, d);
}

/*
 * The items of a list within scope sc: one store page when nothing is filtered, else
 * pages until the answer holds q->limit items (each store page asks for what is missing,
 * so the store's "next" is the answer's), the list ends, or SCOPE_PAGES were read.
 * *items a new array of the store's items, *next the cursor (a new reference, null at the
 * end).
 */
static int scoped_page(struct store *st, struct store_obj_query *q, const struct scope *sc,
                       json_t **items, json_t **next, struct ty_err *err)
{
    size_t want = q->limit > 0 ? q->limit : 100;
    *items = json_array();
    *next = json_null();
    if (sc->none)
        return 0;
    char *cursor = q->cursor != NULL ? strdup(q->cursor) : NULL;
    const char *asked = q->cursor;
    int rc = 0;
    for (int pages = 0; pages < SCOPE_PAGES && json_array_size(*items) < want; pages++) {
        json_t *page = NULL;
        q->limit = want - json_array_size(*items);
        q->cursor = cursor;
        if ((rc = store_obj_page(st, q, &page, err)) != 0) {
            q->cursor = asked;
            page_error(q, err);
            break;
        }
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(page, "items"), i, it)
        {
            if (item_kept(sc, q->kind, it))
                json_array_append(*items, it);
        }
        json_t *n = json_object_get(page, "next");
        free(cursor);
        cursor = json_is_string(n) ? strdup(json_string_value(n)) : NULL;
        json_decref(*next);
        *next = json_incref(n != NULL ? n : json_null());
        json_decref(page);
        if (cursor == NULL || sc->n == 0)
            break;
    }
    free(cursor);
    q->cursor = asked;
    q->limit = want;
    if (rc != 0) {
        json_decref(*items);
        json_decref(*next);
        *items = *next = NULL;
    }
    return rc;
}

static void obj_page(struct server *s, struct store_obj_query *q, const struct scope *sc,
                     struct http_response *resp)
{
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    json_t *found, *next;
    struct ty_err err;
    if (scoped_page(st, q, sc, &found, &next, &err) != 0) {
        fail(resp, &err);
        return;
    }
    json_t *items = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(found, i, it)
    {
        json_t *obj = json_object_get(it, "object");
        json_t *o = json_incref(obj);
        json_object_set(o, "version", json_object_get(it, "version"));
        if (q->kind == STORE_JOB)
            json_object_set_new(
                o, "state",
                server_job_state(s, json_string_value(json_object_get(it, "name")), obj));
        json_array_append_new(items, o);
    }
    json_decref(found);
    respond(resp, 200, json_pack("{s:o, s:o}", "items", items, "next", next), 0);
}

/*
 * A page of jobs, answered as text: each job's stored JSON passed on as it is, with its
 * version and live state spliced in before its closing brace.  Parsing and writing a
 * thousand jobs again through jansson cost tens of milliseconds; this costs a few.
 */
static void jobs_page(struct server *s, struct store_obj_query *q, const struct scope *sc,
                      struct http_response *resp)
{
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    json_t *found, *next;
    struct ty_err err;
    q->raw = true;
    if (scoped_page(st, q, sc, &found, &next, &err) != 0) {
        fail(resp, &err);
        return;
    }
    struct strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"items\":[");
    size_t i, out = 0;
    json_t *it;
    json_array_foreach(found, i, it)
    {
        const char *text = json_string_value(json_object_get(it, "json"));
        size_t len = json_string_length(json_object_get(it, "json"));
        const char *name = json_string_value(json_object_get(it, "name"));
        while (len > 0 && text[len - 1] != '}')
            len--;
        if (text == NULL || name == NULL || len < 2)
            continue; /* not an object: the store's CHECK keeps this from happening */
        if (out++ > 0)
            sb_addc(&sb, ',');
        sb_add(&sb, text, len - 1);
        sb_addf(&sb, "%s\"version\":%lld,\"state\":", len > 2 ? "," : "",
                (long long)json_integer_value(json_object_get(it, "version")));
        server_job_state_text(s, name, text, len, &sb);
        sb_addc(&sb, '}');
    }
    if (json_is_string(next)) {
        char *n = json_dumps(next, JSON_ENCODE_ANY);
        sb_addf(&sb, "],\"next\":%s}\n", n ? n : "null");
        free(n);
    } else {
        sb_adds(&sb, "],\"next\":null}\n");
    }
    json_decref(found);
    json_decref(next);
    if (sb_failed(&sb)) {
        sb_free(&sb);
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        fail(resp, &err);
        return;
    }
    resp->status = 200;
    resp->raw_len = sb.len;
    resp->raw = sb_detach(&sb);
}

static void h_jobs_list(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    struct store_obj_query q = {.kind = STORE_JOB, .enabled = -1};
    q.domain = http_query(req, "domain");
    const char *state = http_query(req, "state");
    if (state != NULL && strcmp(state, "enabled") == 0) {
        q.enabled = 1;
    } else if (state != NULL && strcmp(state, "disabled") == 0) {
        q.enabled = 0;
    } else if (state != NULL && state[0] != '\0') {
        ty_error(&err, TY_EINVAL, "state", -1, 0,
                 "state: \"%.40s\" is not a job state (enabled or disabled)", state);
        fail(resp, &err);
        return;
    }
    const char *level = http_query(req, "level");
    if (level != NULL && level[0] != '\0') {
        if (level[0] < '0' || level[0] > '9' || level[1] != '\0') {
            ty_error(&err, TY_EINVAL, "level", -1, 0, "level: \"%.40s\" is not a level 0-9", level);
            fail(resp, &err);
            return;
        }
        q.by_level = true;
        q.level = level[0] - '0';
    }
    /* every job is a shell job today (docs/jobs.md): the filter only checks the name */
    const char *type = http_query(req, "type");
    if (type != NULL && type[0] != '\0' && strcmp(type, "shell") != 0) {
        ty_error(&err, TY_EINVAL, "type", -1, 0, "type: \"%.40s\" is not a job type (shell)", type);
        fail(resp, &err);
        return;
    }
    struct scope sc;
    if (page_params(req, &q, &err) != 0 || list_scope(req, &q.domain, "jobs", &sc, &err) != 0) {
        fail(resp, &err);
        return;
    }
    jobs_page(s, &q, &sc, resp);
}

static void h_jobs_create(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *body;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    struct job j;
    int rc = job_from_json(body, &j, &err);
    json_decref(body);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    save_job(s, req, resp, &j, -1, 201);
    job_free(&j);
}

/* Read the stored job named by the path; answers 404 itself. */
static int load_job(struct server *s, const struct http_request *req, struct http_response *resp,
                    struct job *j, int64_t *version)
{
    struct store *st = reader(s, resp);
    if (st == NULL)
        return -1;
    char *text = NULL;
    struct ty_err err;
    int rc = store_obj_get(st, STORE_JOB, req->params[0], &text, version, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", req->params[0]);
    if (rc != 0) {
        fail(resp, &err);
        return -1;
    }
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    rc = o ? job_from_json(o, j, &err) : TY_EFORMAT;
    json_decref(o);
    if (rc != 0) {
        fail(resp, &err);
        return -1;
    }
    return 0;
}

static void h_job_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    char *text = NULL;
    int64_t version;
    struct ty_err err;
    int rc = store_obj_get(st, STORE_JOB, req->params[0], &text, &version, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", req->params[0]);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    respond(resp, 200, object_view(s, STORE_JOB, req->params[0], text, version), version);
    free(text);
}

static void h_job_put(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    int64_t base;
    if (http_if_match(req, &base, &err) != 0) {
        fail(resp, &err);
        return;
    }
    json_t *body;
    if (http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (json_object_get(body, "name") == NULL)
        json_object_set_new(body, "name", json_string(req->params[0]));
    struct job j;
    int rc = job_from_json(body, &j, &err);
    json_decref(body);
    if (rc == 0 && strcmp(j.name, req->params[0]) != 0) {
        rc = ty_error(&err, TY_EINVAL, "name", -1, 0,
                      "name: \"%s\" differs from the job in the path (\"%s\"); a job cannot be "
                      "renamed",
                      j.name, req->params[0]);
        job_free(&j);
    }
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    /* without If-Match: replace whatever is there, but the job must exist */
    if (base == 0) {
        struct store *st = reader(s, resp);
        char *text = NULL;
        if (st == NULL) {
            job_free(&j);
            return;
        }
        if (store_obj_get(st, STORE_JOB, j.name, &text, &base, &err) != 0) {
            if (err.code == TY_ENOENT)
                ty_error(&err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", j.name);
            fail(resp, &err);
            job_free(&j);
            return;
        }
        free(text);
    }
    save_job(s, req, resp, &j, base, 200);
    job_free(&j);
}

static void h_job_patch(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    int64_t want;
    if (http_if_match(req, &want, &err) != 0) {
        fail(resp, &err);
        return;
    }
    json_t *patch;
    if (http_body_json(req, &patch, &err) != 0) {
        fail(resp, &err);
        return;
    }
    struct job cur, next;
    int64_t version;
    if (load_job(s, req, resp, &cur, &version) != 0) {
        json_decref(patch);
        return;
    }
    if (want > 0 && want != version) {
        ty_error(&err, TY_ECONFLICT, "version", -1, 0,
                 "job \"%s\" is at version %lld, not %lld; read it again", cur.name,
                 (long long)version, (long long)want);
        fail(resp, &err);
    } else if (job_patch(&cur, patch, &next, &err) != 0) {
        fail(resp, &err);
    } else {
        save_job(s, req, resp, &next, version, 200);
        job_free(&next);
    }
    job_free(&cur);
    json_decref(patch);
}

static void set_enabled(void *ctx, const struct http_request *req, struct http_response *resp,
                        bool on)
{
    struct server *s = ctx;
    struct job j;
    int64_t version;
    if (load_job(s, req, resp, &j, &version) != 0)
        return;
    j.enabled = on;
    save_job(s, req, resp, &j, version, 200);
    job_free(&j);
}

static void h_job_enable(void *ctx, const struct http_request *req, struct http_response *resp)
{
    set_enabled(ctx, req, resp, true);
}

static void h_job_disable(void *ctx, const struct http_request *req, struct http_response *resp)
{
    set_enabled(ctx, req, resp, false);
}

static void h_job_delete(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct ty_err err;
    int64_t base;
    if (http_if_match(req, &base, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (server_job_delete(s, req->params[0], base, who_of(req), &err) != 0) {
        fail(resp, &err);
        return;
    }
    resp->status = 204;
}

static void h_job_run(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *body = NULL;
    struct ty_err err;
    if (req->body_len > 0 && http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (body != NULL) {
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "shards") != 0) {
                ty_error(&err, TY_EINVAL, key, -1, 0, "unknown field \"%s\" (known: shards)", key);
                fail(resp, &err);
                json_decref(body);
                return;
            }
        }
    }
    json_t *reply = NULL;
    if (server_run_now(s, req->params[0], body ? json_object_get(body, "shards") : NULL, &reply,
                       &err) != 0)
        fail(resp, &err);
    else
        respond(resp, 202, reply, 0);
    json_decref(body);
}

/* ---------------------------------------------------------------------------------------
 * Runs
 */

static void h_run_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    json_t *run;
    struct ty_err err;
    int rc = store_run_get(st, req->params[0], &run, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "run_id", -1, 0, "no run %s", req->params[0]);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    respond(resp, 200, run, 0);
}

static void h_run_cancel(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *reply = NULL;
    struct ty_err err;
    if (server_cancel(s, req->params[0], &reply, &err) != 0)
        fail(resp, &err);
    else
        respond(resp, 202, reply, 0);
}

#define FOLLOW_RAW 8192 /* bytes read from the file at a time when masking */

/* Following a run's output: from its file while it runs, then from the store. */
struct follow {
    struct server *s;
    char run_id[STORE_ID_MAX];
    bool follow;
    uint64_t pos; /* logical offset next to send (file) */
    char *tail;   /* from the store once the run has ended */
    size_t tail_len, tail_sent;
    bool from_store, done;
    int idle; /* polls without news */
    /* masking the job's secret values (masks NULL: none to hide) */
    struct mask_set *masks;
    struct mask_stream ms;
    uint64_t want;     /* the offset the client asked for (reading starts before it) */
    uint64_t next;     /* logical offset the next raw byte should have */
    bool started;      /* some raw bytes were fed */
    bool ended;        /* the masker has had the end */
    struct strbuf out; /* masked bytes not yet sent */
    size_t out_off;
    char raw[FOLLOW_RAW];
};

static bool run_ended(struct follow *f, json_t **run_out)
{
    struct ty_err err;
    struct store *st = server_reader(f->s, &err);
    json_t *run = NULL;
    if (st == NULL || store_run_get(st, f->run_id, &run, &err) != 0)
        return true;
    const char *status = json_string_value(json_object_get(run, "status"));
    bool ended = status && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
    if (run_out != NULL)
        *run_out = run;
    else
        json_decref(run);
    return ended;
}

/* Raw output: > 0 bytes into buf, *at being the logical offset of the first (UINT64_MAX
 * for the stored tail, which is a text of its own); 0 when there is nothing yet; -1 at
 * the end. */
static long raw_read(struct follow *f, char *buf, size_t max, uint64_t *at)
{
    *at = UINT64_MAX;
    if (f->done)
        return -1;
    if (f->from_store) {
        if (f->tail_sent >= f->tail_len)
            return -1;
        size_t n = f->tail_len - f->tail_sent;
        if (n > max)
            n = max;
        memcpy(buf, f->tail + f->tail_sent, n);
        f->tail_sent += n;
        return (long)n;
    }
    size_t len = 0;
    uint64_t from = 0, total = 0;
    struct ty_err err;
    int rc = server_read_output(f->s, f->run_id, f->pos, buf, max, &len, &from, &total, &err);
    if (rc == 0 && len > 0) {
        *at = from;
        f->pos = from + len;
        f->idle = 0;
        return (long)len;
    }
    /* nothing new: has the run ended? */
    json_t *run = NULL;
    bool ended = run_ended(f, &run);
    if (ended) {
        if (rc != 0 || f->pos == 0) {
            /* the file is gone (or never read): the stored tail is the output */
            const char *out = json_string_value(json_object_get(run, "output"));
            if (f->pos == 0 && out != NULL && out[0] != '\0') {
                f->tail = strdup(out);
                f->tail_len = f->tail ? strlen(f->tail) : 0;
                f->from_store = true;
                json_decref(run);
                return raw_read(f, buf, max, at);
            }
        } else if (rc == 0 && total > f->pos) {
            json_decref(run);
            return 0; /* a last piece is still being written: read again */
        }
        json_decref(run);
        f->done = true;
        return -1;
    }
    json_decref(run);
    if (!f->follow)
        return -1;
    return 0; /* wait and ask again */
}

/* The stream the HTTP layer reads: the raw output, through the masker when the job has
 * secrets.  A failure to mask ends the stream rather than show unmasked bytes. */
static long follow_read(void *arg, uint64_t pos, char *buf, size_t max)
{
    struct follow *f = arg;
    (void)pos;
    uint64_t at;
    if (f->masks == NULL)
        return raw_read(f, buf, max, &at);
    for (;;) {
        if (f->out_off < f->out.len) {
            size_t n = f->out.len - f->out_off;
            if (n > max)
                n = max;
            memcpy(buf, f->out.buf + f->out_off, n);
            f->out_off += n;
            if (f->out_off == f->out.len) {
                sb_truncate(&f->out, 0);
                f->out_off = 0;
            }
            return (long)n;
        }
        if (f->ended)
            return -1;
        long n = raw_read(f, f->raw, sizeof f->raw, &at);
        if (n == 0)
            return 0;
        int rc;
        if (n < 0) {
            rc = mask_stream_end(&f->ms, &f->out);
            f->ended = true;
        } else {
            if (at != UINT64_MAX && at > f->next) {
                /* bytes before `at` are gone (the output cap dropped them) */
                if (!f->started) {
                    f->ms.skip = at >= f->want ? 0 : f->want - at;
                    f->ms.cut = at > 0;
                    rc = 0;
                } else {
                    rc = mask_stream_cut(&f->ms, &f->out);
                }
                if (rc != 0)
                    return -1;
            }
            if (at != UINT64_MAX)
                f->next = at + (uint64_t)n;
            f->started = true;
            rc = mask_stream_feed(&f->ms, f->raw, (size_t)n, &f->out);
        }
        if (rc != 0) {
            log_error("a log stream ended early: out of memory while masking", "run=%s", f->run_id);
            return -1;
        }
    }
}

static void follow_free(void *arg)
{
    struct follow *f = arg;
    if (f->masks != NULL) {
        mask_stream_free(&f->ms);
        mask_set_unref(f->masks);
    }
    sb_free(&f->out);
    free(f->tail);
    free(f);
}

/* The set hiding job's secret values now, or NULL (none, or the job is gone). */
static struct mask_set *job_masks(struct store *st, const char *job)
{
    json_t *vals = NULL;
    struct ty_err err;
    if (job == NULL || store_secrets_get(st, job, &vals, &err) != 0)
        return NULL;
    const char *list[JOB_ENV_MAX];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(vals, k, v)
    {
        if (n < JOB_ENV_MAX && json_is_string(v))
            list[n++] = json_string_value(v);
    }
    struct mask_set *set = NULL;
    if (mask_set_new(list, n, &set) != 0)
        set = NULL;
    json_decref(vals);
    return set;
}

static void h_run_log(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    json_t *run;
    struct ty_err err;
    int rc = store_run_get(st, req->params[0], &run, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, "run_id", -1, 0, "no run %s", req->params[0]);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    const char *status = json_string_value(json_object_get(run, "status"));
    bool ended = status != NULL && strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
    json_int_t kept = json_integer_value(json_object_get(run, "output_bytes"));
    struct mask_set *masks = job_masks(st, json_string_value(json_object_get(run, "job")));
    struct follow *f = calloc(1, sizeof *f);
    const char *off = http_query(req, "offset");
    if (f != NULL && masks != NULL && ended && off == NULL) {
        /* the record's tail was masked when the run ended, with the values the run had;
         * its length is not the file's, so it is the log */
        const char *out = json_string_value(json_object_get(run, "output"));
        f->tail = strdup(out != NULL ? out : "");
        f->tail_len = f->tail != NULL ? strlen(f->tail) : 0;
        f->from_store = true;
    }
    json_decref(run);
    if (f == NULL || (f->from_store && f->tail == NULL)) {
        if (f != NULL)
            free(f);
        mask_set_unref(masks);
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        fail(resp, &err);
        return;
    }
    sb_init(&f->out);
    f->s = s;
    snprintf(f->run_id, sizeof f->run_id, "%s", req->params[0]);
    const char *fl = http_query(req, "follow");
    f->follow = fl != NULL && (strcmp(fl, "1") == 0 || strcmp(fl, "true") == 0);
    if (off != NULL) {
        f->pos = strtoull(off, NULL, 10);
    } else if (ended && !f->from_store) {
        /* a finished run's log is the tail its record keeps: the file may hold a little
         * more, as the cap is enforced in whole blocks */
        char probe[1];
        size_t n = 0;
        uint64_t from = 0, total = 0;
        if (server_read_output(s, f->run_id, 0, probe, 0, &n, &from, &total, &err) == 0 &&
            total > (uint64_t)kept)
            f->pos = total - (uint64_t)kept;
    }
    if (masks != NULL) {
        /* read a little before the offset asked for, so a value it cuts is recognised */
        uint64_t back = mask_set_max_len(masks) - 1;
        if (back > f->pos)
            back = f->pos;
        f->masks = masks;
        f->want = f->pos;
        f->pos -= back;
        f->next = f->pos;
        mask_stream_init(&f->ms, masks, back, false);
    }
    resp->status = 200;
    resp->stream = follow_read;
    resp->stream_free = follow_free;
    resp->stream_arg = f;
    resp->content_type = "text/plain; charset=utf-8";
}

/* ---------------------------------------------------------------------------------------
 * History, statistics
 */

static int parse_time_param(const struct http_request *req, const char *key, int64_t *out,
                            struct ty_err *err)
{
    const char *v = http_query(req, key);
    *out = 0;
    if (v == NULL || v[0] == '\0')
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end == '\0') {
        *out = n;
        return 0;
    }
    return civil_parse_rfc3339(v, key, out, err);
}

/* A query naming a job (history, stats): the caller must be able to read the job, when it
 * exists (a job deleted since is filtered by the domain its runs carry). */
static int job_readable(struct server *s, const struct http_request *req, const char *job,
                        struct ty_err *err)
{
    if (routes__may(req, ROLE_VIEWER, ""))
        return 0;
    struct store *st = server_reader(s, err);
    char *text = NULL;
    int64_t version;
    int rc = st == NULL ? (err->code != 0 ? err->code : TY_EIO)
                        : store_obj_get(st, STORE_JOB, job, &text, &version, err);
    if (rc == TY_ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    char d[DOMAIN_PATH_MAX + 1], doing[JOB_NAME_MAX + 64];
    routes__domain_of(text, d, sizeof d);
    free(text);
    snprintf(doing, sizeof doing, "reading the history of job %s", job);
    return routes__check(req, ROLE_VIEWER, d, doing, err);
}

static void h_history(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    struct ty_err err;
    struct store_history_query q = {0};
    q.job = http_query(req, "job");
    q.domain = http_query(req, "domain");
    q.status = http_query(req, "status");
    q.cursor = http_query(req, "cursor");
    const char *limit = http_query(req, "limit");
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end != '\0' || v < 1 || v > 1000) {
            ty_error(&err, TY_EINVAL, "limit", -1, 0, "limit: \"%s\" is not a number 1-1000",
                     limit);
            fail(resp, &err);
            return;
        }
        q.limit = (size_t)v;
    }
    if (parse_time_param(req, "since", &q.since, &err) != 0 ||
        parse_time_param(req, "until", &q.until, &err) != 0) {
        fail(resp, &err);
        return;
    }
    struct scope sc;
    if (list_scope(req, &q.domain, "history", &sc, &err) != 0 ||
        (q.job != NULL && job_readable(s, req, q.job, &err) != 0)) {
        fail(resp, &err);
        return;
    }
    if (sc.none) {
        respond(resp, 200, json_pack("{s:[], s:n}", "items", "next"), 0);
        return;
    }
    if (sc.n == 0) {
        json_t *out;
        if (store_history(st, &q, &out, &err) != 0) {
            fail(resp, &err);
            return;
        }
        respond(resp, 200, out, 0);
        return;
    }
    /* several subtrees: pages until this one is full, keeping what the caller may read */
    size_t want = q.limit > 0 ? q.limit : 100;
    json_t *items = json_array(), *next = json_null();
    char *cursor = q.cursor != NULL ? strdup(q.cursor) : NULL;
    int rc = 0;
    for (int pages = 0; pages < SCOPE_PAGES && json_array_size(items) < want; pages++) {
        json_t *page = NULL;
        q.limit = want - json_array_size(items);
        q.cursor = cursor;
        if ((rc = store_history(st, &q, &page, &err)) != 0)
            break;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(page, "items"), i, it)
        {
            if (scope_keeps(&sc, json_string_value(json_object_get(it, "domain"))))
                json_array_append(items, it);
        }
        json_t *n = json_object_get(page, "next");
        free(cursor);
        cursor = json_is_string(n) ? strdup(json_string_value(n)) : NULL;
        json_decref(next);
        next = json_incref(n != NULL ? n : json_null());
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    free(cursor);
    if (rc != 0) {
        json_decref(items);
        json_decref(next);
        fail(resp, &err);
        return;
    }
    respond(resp, 200, json_pack("{s:o, s:o}", "items", items, "next", next), 0);
}

/* The counter a stats answer is sorted by (?sort=), checked against the group's fields. */
static const char *const stats_sort_keys[] = {"runs",       "succeeded",   "failed", "timeouts",
                                              "canceled",   "interrupted", "lost",   "misfired",
                                              "unfinished", "skipped"};

/* A group with the value it is sorted by. */
struct stats_row {
    json_int_t value;
    const char *key;
    json_t *group;
};

static int stats_cmp(const void *a, const void *b)
{
    const struct stats_row *ra = a, *rb = b;
    if (ra->value != rb->value)
        return ra->value > rb->value ? -1 : 1;
    return strcmp(ra->key, rb->key);
}

/*
 * ?sort=COUNTER (descending, then by key) and ?limit=N (the first N groups) on a stats
 * answer: the busiest or the most failing jobs without sending every job's group.
 */
static int stats_sort_limit(json_t *out, const char *sort, const char *limit, struct ty_err *err)
{
    size_t max = (size_t)-1;
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (end == limit || *end != '\0' || v < 1 || v > 1000)
            return ty_error(err, TY_EINVAL, "limit", -1, 0,
                            "limit: \"%.40s\" is not a number 1-1000", limit);
        max = (size_t)v;
    }
    json_t *groups = json_object_get(out, "groups");
    size_t n = json_array_size(groups);
    if (sort != NULL) {
        const char *key = NULL;
        for (size_t i = 0; i < sizeof stats_sort_keys / sizeof stats_sort_keys[0]; i++)
            if (strcmp(sort, stats_sort_keys[i]) == 0)
                key = stats_sort_keys[i];
        if (key == NULL)
            return ty_error(err, TY_EINVAL, "sort", -1, 0,
                            "sort: \"%.40s\" is not a counter (runs, succeeded, failed, timeouts, "
                            "canceled, interrupted, lost, misfired, unfinished, skipped)",
                            sort);
        struct stats_row *v = malloc((n ? n : 1) * sizeof *v);
        if (v == NULL)
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *g = json_incref(json_array_get(groups, i));
            const char *k = json_string_value(json_object_get(g, "key"));
            v[i] = (struct stats_row){json_integer_value(json_object_get(g, key)), k ? k : "", g};
        }
        qsort(v, n, sizeof *v, stats_cmp);
        json_array_clear(groups);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(groups, v[i].group);
        free(v);
    }
    while (json_array_size(groups) > max)
        json_array_remove(groups, json_array_size(groups) - 1);
    return 0;
}

static void h_stats(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    struct ty_err err;
    struct store_stats_query q = {0};
    q.job = http_query(req, "job");
    q.domain = http_query(req, "domain");
    q.group_by = http_query(req, "group_by");
    if (q.group_by == NULL)
        q.group_by = "job";
    if (parse_time_param(req, "since", &q.since, &err) != 0 ||
        parse_time_param(req, "until", &q.until, &err) != 0) {
        fail(resp, &err);
        return;
    }
    struct scope sc;
    if (list_scope(req, &q.domain, "statistics", &sc, &err) != 0 ||
        (q.job != NULL && job_readable(s, req, q.job, &err) != 0)) {
        fail(resp, &err);
        return;
    }
    if (sc.none) {
        respond(resp, 200, json_pack("{s:[]}", "groups"), 0);
        return;
    }
    if (sc.n > 0 && strcmp(q.group_by, "day") == 0) {
        /* days over several subtrees: their percentiles cannot be put together */
        char who[HTTP_WHO_MAX + 8];
        routes__describe(routes__principal(req), who, sizeof who);
        struct strbuf sb;
        char list[512];
        sb_init_fixed(&sb, list, sizeof list);
        for (size_t i = 0; i < sc.n; i++)
            sb_addf(&sb, "%s%s", i ? ", " : "", sc.roots[i]);
        ty_error(&err, TY_EPERM, "domain", -1, 0,
                 "%s reads several subtrees (%s): statistics by day need domain= one of them", who,
                 list);
        fail(resp, &err);
        return;
    }
    json_t *out = NULL;
    if (sc.n == 0 && store_stats(st, &q, &out, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (sc.n > 0) {
        /* by job or by domain over several subtrees: each subtree's groups, which never
         * meet */
        json_t *groups = json_array();
        for (size_t i = 0; i < sc.n; i++) {
            json_t *part = NULL;
            q.domain = sc.roots[i];
            if (store_stats(st, &q, &part, &err) != 0) {
                json_decref(groups);
                fail(resp, &err);
                return;
            }
            json_array_extend(groups, json_object_get(part, "groups"));
            json_decref(part);
        }
        out = json_pack("{s:o}", "groups", groups);
    }
    if (stats_sort_limit(out, http_query(req, "sort"), http_query(req, "limit"), &err) != 0) {
        json_decref(out);
        fail(resp, &err);
        return;
    }
    respond(resp, 200, out, 0);
}

/* ---------------------------------------------------------------------------------------
 * Alerts: the seed's four tables
 */

static int domain_level(struct store *st, json_t *cache, const char *path)
{
    if (path == NULL)
        return 0;
    json_t *v = json_object_get(cache, path);
    if (v != NULL)
        return (int)json_integer_value(v);
    int level = 0;
    char *text = NULL;
    int64_t ver;
    struct ty_err err;
    if (store_obj_get(st, STORE_DOMAIN, path, &text, &ver, &err) == 0) {
        json_t *o = json_loads(text, 0, NULL);
        level = (int)json_integer_value(json_object_get(o, "level"));
        json_decref(o);
        free(text);
    }
    json_object_set_new(cache, path, json_integer(level));
    return level;
}

static void h_alerts(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    /* The dashboard must show the store's own failure when the store cannot be read (a
     * PostgreSQL that is down): the stored alerts are then missing from the answer, which
     * says why in "incomplete", and the control plane's live rows are all there is. */
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *open = NULL;
    if (st != NULL && store_alerts_open(st, &open, &err) != 0)
        open = NULL;
    json_t *incomplete = open == NULL ? json_string(err.msg) : json_null();
    if (open == NULL)
        open = json_array();
    json_t *abnormal = json_array(), *timed = json_array(), *noha = json_array(),
           *res = json_array(), *levels = json_object();
    json_t *by_job = json_object(); /* timed-out shards grouped per job */
    json_t *live = json_object();   /* resource -> its live row */
    json_t *live_rows = server_live_resources(s);
    size_t li;
    json_t *lr;
    json_array_foreach(live_rows, li, lr)
    {
        const char *r = json_string_value(json_object_get(lr, "resource"));
        if (r != NULL)
            json_object_set(live, r, lr);
    }
    json_decref(live_rows);
    int64_t now_ms = server_now_ms(s);
    size_t i;
    json_t *a;
    json_array_foreach(open, i, a)
    {
        const char *kind = json_string_value(json_object_get(a, "kind"));
        const char *job = json_string_value(json_object_get(a, "job"));
        const char *domain = json_string_value(json_object_get(a, "domain"));
        json_t *jl = json_object_get(a, "job_level");
        /* a job's alert shows to who may read the job's domain; the machine's to all */
        if (kind != NULL && strcmp(kind, "resource") != 0 &&
            !routes__may(req, ROLE_VIEWER, domain != NULL ? domain : ""))
            continue;
        int dl = domain_level(st, levels, domain);
        if (kind == NULL)
            continue;
        if (strcmp(kind, "timeout_alarm") == 0) {
            json_t *d = json_object_get(a, "detail");
            int64_t started = json_integer_value(json_object_get(d, "started_at_ms"));
            int64_t alarm = json_integer_value(json_object_get(d, "alarm_s"));
            int64_t over = (now_ms - started) / 1000 - alarm;
            json_t *row = json_object_get(by_job, job ? job : "");
            if (row == NULL) {
                row = json_pack("{s:s?, s:s?, s:i, s:O, s:I, s:[]}", "job", job, "domain", domain,
                                "domain_level", dl, "job_level", jl, "seconds_over",
                                (json_int_t)(over > 0 ? over : 0), "shards");
                json_object_set_new(by_job, job ? job : "", row);
                json_array_append(timed, row);
            }
            if (over > json_integer_value(json_object_get(row, "seconds_over")))
                json_object_set_new(row, "seconds_over", json_integer(over));
            json_array_append(json_object_get(row, "shards"), json_object_get(d, "shard"));
        } else if (strcmp(kind, "not_ha") == 0) {
            json_array_append_new(noha, json_pack("{s:s?, s:s?, s:i, s:O, s:O}", "job", job,
                                                  "domain", domain, "domain_level", dl, "job_level",
                                                  jl, "reason", json_object_get(a, "reason")));
        } else if (strcmp(kind, "resource") == 0) {
            /* the figures the alert was raised with; the control plane's live ones win */
            json_t *d = json_object_get(a, "detail");
            const char *name = json_string_value(json_object_get(d, "resource"));
            if (name == NULL || json_object_get(live, name) != NULL)
                continue;
            json_t *row = json_pack("{s:s, s:s, s:i, s:O, s:O}", "resource", name, "domain", "",
                                    "domain_level", 0, "reason", json_object_get(a, "reason"),
                                    "since_ms", json_object_get(a, "raised_at_ms"));
            json_object_update_missing(row, d);
            json_array_append_new(res, row);
        } else {
            json_array_append_new(abnormal,
                                  json_pack("{s:s?, s:s?, s:i, s:O, s:O, s:O, s:s, s:O}", "job",
                                            job, "domain", domain, "domain_level", dl, "job_level",
                                            jl, "scheduled_at",
                                            json_object_get(a, "scheduled_at_text")
                                                ? json_object_get(a, "scheduled_at_text")
                                                : json_object_get(a, "scheduled_at"),
                                            "reason", json_object_get(a, "reason"), "kind", kind,
                                            "since_ms", json_object_get(a, "raised_at_ms")));
        }
    }
    /* what the store cannot hold (its own failure, a spool past its limit): live */
    const char *name;
    json_t *row;
    json_object_foreach(live, name, row)
    {
        json_t *out =
            json_pack("{s:s, s:s, s:i}", "resource", name, "domain", "", "domain_level", 0);
        json_object_update_missing(out, row);
        json_array_append_new(res, out);
    }
    json_decref(live);
    json_decref(open);
    json_decref(levels);
    json_decref(by_job);
    respond(resp, 200,
            json_pack("{s:o, s:o, s:o, s:o, s:o}", "abnormal_jobs", abnormal, "timed_out_shards",
                      timed, "not_highly_available", noha, "abnormal_resources", res, "incomplete",
                      incomplete),
            0);
}

/* ---------------------------------------------------------------------------------------
 * Domains and calendars
 */

typedef int (*from_json_fn)(const json_t *, void *, struct ty_err *);

static int domain_parse(const json_t *o, void *out, struct ty_err *err)
{
    return domain_from_json(o, out, err);
}

static int calendar_parse(const json_t *o, void *out, struct ty_err *err)
{
    return calendar_from_json(o, out, err);
}

static json_t *domain_canon(void *d)
{
    return domain_to_json(d);
}

static json_t *calendar_canon(void *c)
{
    return calendar_to_json(c);
}

static void domain_release(void *d)
{
    domain_free(d);
}

static void calendar_release(void *c)
{
    calendar_free(c);
}

struct kind_ops {
    enum store_kind kind;
    const char *what; /* "domain" */
    const char *key;  /* "path" */
    from_json_fn parse;
    json_t *(*canon)(void *);
    void (*release)(void *);
};

static const struct kind_ops domain_ops = {STORE_DOMAIN, "domain",     "path",
                                           domain_parse, domain_canon, domain_release};
static const struct kind_ops calendar_ops = {STORE_CALENDAR, "calendar",     "name",
                                             calendar_parse, calendar_canon, calendar_release};

static void obj_list(struct server *s, const struct kind_ops *k, const struct http_request *req,
                     struct http_response *resp)
{
    struct ty_err err;
    struct store_obj_query q = {.kind = k->kind, .enabled = -1};
    struct scope sc;
    memset(&sc, 0, sizeof sc);
    const char *within = NULL; /* domains: those the caller may read (calendars: all) */
    if (page_params(req, &q, &err) != 0 ||
        (k->kind == STORE_DOMAIN && list_scope(req, &within, "domains", &sc, &err) != 0)) {
        fail(resp, &err);
        return;
    }
    if (within != NULL) { /* one subtree: filter by it (a domain page has no domain query) */
        sc.roots[0] = within;
        sc.n = 1;
    }
    obj_page(s, &q, &sc, resp);
}

static void obj_get(struct server *s, const struct kind_ops *k, const char *name,
                    struct http_response *resp)
{
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    char *text;
    int64_t version;
    struct ty_err err;
    int rc = store_obj_get(st, k->kind, name, &text, &version, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, k->key, -1, 0, "no %s \"%s\"", k->what, name);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    respond(resp, 200, object_view(s, k->kind, name, text, version), version);
    free(text);
}

static void obj_save(struct server *s, const struct kind_ops *k, const struct http_request *req,
                     struct http_response *resp, const char *path_name)
{
    struct ty_err err;
    int64_t base = -1;
    if (path_name != NULL && http_if_match(req, &base, &err) != 0) {
        fail(resp, &err);
        return;
    }
    json_t *body;
    if (http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (path_name != NULL && json_object_get(body, k->key) == NULL)
        json_object_set_new(body, k->key, json_string(path_name));
    union {
        struct domain d;
        struct calendar c;
    } obj;
    memset(&obj, 0, sizeof obj);
    int rc = k->parse(body, &obj, &err);
    json_decref(body);
    if (rc != 0) {
        fail(resp, &err);
        return;
    }
    json_t *canon = k->canon(&obj);
    const char *name = json_string_value(json_object_get(canon, k->key));
    if (path_name != NULL && strcmp(name, path_name) != 0) {
        ty_error(&err, TY_EINVAL, k->key, -1, 0, "%s: \"%s\" differs from the one in the path",
                 k->key, name);
        fail(resp, &err);
        json_decref(canon);
        k->release(&obj);
        return;
    }
    char *text = json_dumps(canon, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int64_t version = 0;
    if (text == NULL)
        rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    else
        rc = server_obj_save(s, k->kind, name, text, base, who_of(req), &version, &err);
    if (rc != 0)
        fail(resp, &err);
    else
        respond(resp, path_name ? 200 : 201, object_view(s, k->kind, name, text, version), version);
    free(text);
    json_decref(canon);
    k->release(&obj);
}

static void obj_delete(struct server *s, const struct kind_ops *k, const struct http_request *req,
                       struct http_response *resp)
{
    struct ty_err err;
    int64_t base;
    if (http_if_match(req, &base, &err) != 0) {
        fail(resp, &err);
        return;
    }
    if (server_obj_delete(s, k->kind, req->params[0], base, who_of(req), &err) != 0) {
        fail(resp, &err);
        return;
    }
    resp->status = 204;
}

/* Domains and calendars: one handler per operation, the kind from the route's arg. */
static void h_obj_list(void *c, const struct http_request *r, struct http_response *p)
{
    obj_list(c, r->route_arg, r, p);
}
static void h_obj_create(void *c, const struct http_request *r, struct http_response *p)
{
    obj_save(c, r->route_arg, r, p, NULL);
}
static void h_obj_get(void *c, const struct http_request *r, struct http_response *p)
{
    obj_get(c, r->route_arg, r->params[0], p);
}
static void h_obj_put(void *c, const struct http_request *r, struct http_response *p)
{
    obj_save(c, r->route_arg, r, p, r->params[0]);
}
static void h_obj_delete(void *c, const struct http_request *r, struct http_response *p)
{
    obj_delete(c, r->route_arg, r, p);
}

/* ---------------------------------------------------------------------------------------
 * Executors, cron check, test hooks
 */

static void h_executors(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    json_t *out = NULL;
    struct ty_err err;
    if (server_executors(ctx, &out, &err) != 0)
        fail(resp, &err);
    else
        respond(resp, 200, out, 0);
}

static void h_zk_clusters(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    respond(resp, 200, server_clusters(ctx), 0);
}

static void h_cron_check(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *body;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    const char *expr = NULL, *zone = "UTC", *from_text = NULL;
    json_int_t count = 10;
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "expression") == 0 && json_is_string(v))
            expr = json_string_value(v);
        else if (strcmp(key, "time_zone") == 0 && json_is_string(v))
            zone = json_string_value(v);
        else if (strcmp(key, "from") == 0 && json_is_string(v))
            from_text = json_string_value(v);
        else if (strcmp(key, "count") == 0 && json_is_integer(v))
            count = json_integer_value(v);
        else if (strcmp(key, "expression") == 0 || strcmp(key, "time_zone") == 0 ||
                 strcmp(key, "from") == 0 || strcmp(key, "count") == 0)
            rc = ty_error(&err, TY_EINVAL, key, -1, 0, "%s: wrong type", key);
        else
            rc = ty_error(&err, TY_EINVAL, key, -1, 0,
                          "unknown field \"%s\" (known: expression, time_zone, count, from)", key);
        if (rc != 0)
            break;
    }
    if (rc == 0 && expr == NULL)
        rc = ty_error(&err, TY_EINVAL, "expression", -1, 0, "expression: required");
    if (rc == 0 && (count < 1 || count > CRON_CHECK_COUNT_MAX))
        rc = ty_error(&err, TY_EINVAL, "count", -1, 0, "count: %lld is out of range 1-%d",
                      (long long)count, CRON_CHECK_COUNT_MAX);
    int64_t now = server_now(s), from = now;
    if (rc == 0 && from_text != NULL) {
        rc = civil_parse_rfc3339(from_text, "from", &from, &err);
        if (rc == 0 && from < CRON_MIN_TIME)
            rc = ty_error(&err, TY_EINVAL, "from", -1, 0, "from: before 1972-01-01T00:00:00Z");
    }
    json_t *out = NULL;
    int status = 0;
    if (rc == 0) {
        out = cron_check_json(expr, zone, from, (long)count, now, &status, &err);
        if (out == NULL) {
            snprintf(err.field, sizeof err.field, "time_zone");
            err.code = TY_EINVAL;
            rc = TY_EINVAL;
        }
    }
    json_decref(body);
    if (rc != 0)
        fail(resp, &err);
    else
        respond(resp, 200, out, 0);
}

#ifdef TETHYS_TEST_HOOKS
static void h_test_clock(void *ctx, const struct http_request *req, struct http_response *resp)
{
    json_t *body;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        fail(resp, &err);
        return;
    }
    json_int_t offset = json_integer_value(json_object_get(body, "offset_s"));
    json_decref(body);
    json_t *reply = NULL;
    if (server_set_clock(ctx, offset, &reply, &err) != 0)
        fail(resp, &err);
    else
        respond(resp, 200, reply, 0);
}
#endif

/* The HTTP layer's lines are "words key=value ...": the words are the message. */
static void http_log(void *ctx, const char *level, const char *msg)
{
    (void)ctx;
    const char *eq = strchr(msg, '=');
    const char *sp = eq != NULL ? memrchr(msg, ' ', (size_t)(eq - msg)) : NULL;
    int n = sp != NULL ? (int)(sp - msg) : (int)strlen(msg);
    const char *fields = sp != NULL ? sp + 1 : "";
    char text[128];
    snprintf(text, sizeof text, "%.*s", n, msg);
    enum log_level lv = strcmp(level, "error") == 0  ? LOG_ERROR
                        : strcmp(level, "warn") == 0 ? LOG_WARN
                                                     : LOG_INFO;
    log_write(lv, text, "%s", fields);
}

void routes__save_object(struct server *s, enum store_kind kind, bool create,
                         const struct http_request *req, struct http_response *resp)
{
    switch (kind) {
    case STORE_JOB: (create ? h_jobs_create : h_job_put)(s, req, resp); break;
    case STORE_DOMAIN: obj_save(s, &domain_ops, req, resp, create ? NULL : req->params[0]); break;
    case STORE_CALENDAR:
        obj_save(s, &calendar_ops, req, resp, create ? NULL : req->params[0]);
        break;
    }
}

static const struct http_route core_routes[] = {
    {HTTP_GET, "/api/v1/health", h_health, true, NULL, 0, 0},
    {HTTP_GET, "/api/v1/jobs", h_jobs_list, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_POST, "/api/v1/jobs", h_jobs_create, false, NULL, 0, ROUTES_P_JOB_CREATE},
    {HTTP_GET, "/api/v1/jobs/{name}", h_job_get, false, NULL, 0, ROUTES_P_JOB_READ},
    {HTTP_PUT, "/api/v1/jobs/{name}", h_job_put, false, NULL, 0, ROUTES_P_JOB_REPLACE},
    {HTTP_PATCH, "/api/v1/jobs/{name}", h_job_patch, false, NULL, 0, ROUTES_P_JOB_REPLACE},
    {HTTP_DELETE, "/api/v1/jobs/{name}", h_job_delete, false, NULL, 0, ROUTES_P_JOB_OPERATE},
    {HTTP_POST, "/api/v1/jobs/{name}/enable", h_job_enable, false, NULL, 0, ROUTES_P_JOB_OPERATE},
    {HTTP_POST, "/api/v1/jobs/{name}/disable", h_job_disable, false, NULL, 0, ROUTES_P_JOB_OPERATE},
    {HTTP_POST, "/api/v1/jobs/{name}/run", h_job_run, false, NULL, 0, ROUTES_P_JOB_OPERATE},
    {HTTP_GET, "/api/v1/runs/{id}", h_run_get, false, NULL, 0, ROUTES_P_RUN_READ},
    {HTTP_GET, "/api/v1/runs/{id}/log", h_run_log, false, NULL, 0, ROUTES_P_RUN_READ},
    {HTTP_POST, "/api/v1/runs/{id}/cancel", h_run_cancel, false, NULL, 0, ROUTES_P_RUN_OPERATE},
    {HTTP_GET, "/api/v1/history", h_history, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_GET, "/api/v1/stats", h_stats, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_GET, "/api/v1/alerts", h_alerts, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_GET, "/api/v1/domains", h_obj_list, false, &domain_ops, 0, ROUTES_P_ANY},
    {HTTP_POST, "/api/v1/domains", h_obj_create, false, &domain_ops, 0, ROUTES_P_DOMAIN_CREATE},
    {HTTP_GET, "/api/v1/domains/{path}", h_obj_get, false, &domain_ops, 0, ROUTES_P_DOMAIN_READ},
    {HTTP_PUT, "/api/v1/domains/{path}", h_obj_put, false, &domain_ops, 0, ROUTES_P_DOMAIN_WRITE},
    {HTTP_DELETE, "/api/v1/domains/{path}", h_obj_delete, false, &domain_ops, 0,
     ROUTES_P_DOMAIN_WRITE},
    {HTTP_GET, "/api/v1/calendars", h_obj_list, false, &calendar_ops, 0, ROUTES_P_ANY},
    {HTTP_POST, "/api/v1/calendars", h_obj_create, false, &calendar_ops, 0,
     ROUTES_P_CALENDAR_WRITE},
    {HTTP_GET, "/api/v1/calendars/{name}", h_obj_get, false, &calendar_ops, 0, ROUTES_P_ANY},
    {HTTP_PUT, "/api/v1/calendars/{name}", h_obj_put, false, &calendar_ops, 0,
     ROUTES_P_CALENDAR_WRITE},
    {HTTP_DELETE, "/api/v1/calendars/{name}", h_obj_delete, false, &calendar_ops, 0,
     ROUTES_P_CALENDAR_WRITE},
    {HTTP_GET, "/api/v1/executors", h_executors, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_GET, "/api/v1/zk/clusters", h_zk_clusters, false, NULL, 0, ROUTES_P_ANY},
    {HTTP_POST, "/api/v1/cron/check", h_cron_check, false, NULL, 0, ROUTES_P_ANY},
#ifdef TETHYS_TEST_HOOKS
    {HTTP_POST, "/api/v1/test/clock", h_test_clock, false, NULL, 0, ROUTES_P_ROOT},
#endif
};
static const size_t core_routes_n = sizeof core_routes / sizeof core_routes[0];

/*
 * The API is served from several files (each a table of routes for its area); the HTTP
 * layer wants one array, built here once.  Add a file's table to `tables`.
 */
static const struct {
    const struct http_route *routes;
    const size_t *n;
} tables[] = {
    {core_routes, &core_routes_n},           {routes_tokens, &routes_tokens_n},
    {routes__versions, &routes__versions_n}, {routes__batch, &routes__batch_n},
    {routes__cluster, &routes__cluster_n},   {routes__users, &routes__users_n},
};

/* A request is done: its thread's store reader goes back to the pool. */
static void after_request(void *ctx)
{
    server_reader_release(ctx);
}

void routes_config(struct server *s, const char *listen, const char *token, struct http_config *out)
{
    static struct http_route all[ROUTES_MAX];
    static size_t n_all;
    if (n_all == 0) {
        for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
            for (size_t i = 0; i < *tables[t].n && n_all < ROUTES_MAX; i++)
                all[n_all++] = tables[t].routes[i];
        }
    }
    memset(out, 0, sizeof *out);
    out->listen = listen;
    out->token = token;
    /* the token file's "default", named tokens, the cluster's secret, users' sessions */
    out->authenticate = routes__authenticate;
    out->principal_free = routes__principal_free;
    out->session_cookie = ROUTES_SESSION_COOKIE;
    out->permit = routes__permit; /* every route's permission, decided in one place */
    out->routes = all;
    out->n_routes = n_all;
    out->ctx = s;
    out->log = http_log;
    out->after = after_request;
}
