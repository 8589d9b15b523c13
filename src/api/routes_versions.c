/*
 * routes_versions.c - the versions of jobs, domains and calendars, and restoring one.
 *
 *   GET  /api/v1/{jobs|domains|calendars}/{name}/versions        every version, newest first
 *   GET  /api/v1/{jobs|domains|calendars}/{name}/versions/{v}    the definition of one
 *   POST /api/v1/{jobs|domains|calendars}/{name}/restore         {"version": v}
 *
 * The store keeps every change as a version with who and when (object_versions), so the
 * reads are straight store calls.  A restore is not a rollback: it saves version v's
 * definition as a new version, through the very handler a PUT (or, for an object that was
 * deleted since, a POST) goes through - same validation, same checks against the objects
 * around it as they are now (a calendar a job names must still exist), same If-Match,
 * same notification of the loop.  So history only ever grows, a restore can itself be
 * undone, and nothing here knows how a job is checked.  Restoring the version that is
 * already current changes nothing (the store records no change for an identical
 * definition).
 *
 * One set of handlers serves the three kinds; the route says which.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes_impl.h"

#include "../core/civil.h"
#include "../os/log.h"

struct vkind {
    enum store_kind kind;
    const char *what; /* "job" */
    const char *key;  /* the field that names one: "name", or "path" for domains */
};

static const struct vkind v_job = {STORE_JOB, "job", "name"};
static const struct vkind v_domain = {STORE_DOMAIN, "domain", "path"};
static const struct vkind v_calendar = {STORE_CALENDAR, "calendar", "name"};

static struct store *reader(struct server *s, struct http_response *resp)
{
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    if (st == NULL)
        http_error(resp, &err);
    return st;
}

/* A version number from text (a path segment or a header): > 0, or -1. */
static int64_t version_of(const char *text)
{
    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    char *end;
    long long v = strtoll(text, &end, 10);
    return *end == '\0' && v > 0 ? (int64_t)v : -1;
}

/* One history row for the API: {"version", "op", "at_ms", "at", "who"}. */
static json_t *version_item(const json_t *row)
{
    json_int_t at_ms = json_integer_value(json_object_get(row, "at_ms"));
    char at[CIVIL_RFC3339_MAX];
    civil_format_rfc3339(at_ms / 1000, 0, at);
    return json_pack("{s:O, s:O, s:I, s:s, s:O}", "version", json_object_get(row, "version"), "op",
                     json_object_get(row, "op"), "at_ms", at_ms, "at", at, "who",
                     json_object_get(row, "who"));
}

static void versions_list(struct server *s, const struct vkind *k, const struct http_request *req,
                          struct http_response *resp)
{
    const char *name = req->params[0];
    struct store *st = reader(s, resp);
    if (st == NULL)
        return;
    json_t *rows;
    struct ty_err err;
    int rc = store_obj_history(st, k->kind, name, &rows, &err);
    if (rc == TY_ENOENT)
        ty_error(&err, TY_ENOENT, k->key, -1, 0, "no %s \"%s\", now or ever", k->what, name);
    if (rc != 0) {
        http_error(resp, &err);
        return;
    }
    json_t *items = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_append_new(items, version_item(row));
    }
    /* the newest row is the current version unless it is the deletion */
    json_t *newest = json_array_get(rows, 0);
    const char *op = json_string_value(json_object_get(newest, "op"));
    json_t *current = op != NULL && strcmp(op, "delete") != 0
                          ? json_incref(json_object_get(newest, "version"))
                          : json_null();
    json_decref(rows);
    resp->status = 200;
    resp->body = json_pack("{s:o, s:o}", "items", items, "current", current);
}

/* Version `v` of the object as JSON text (malloc'd), or NULL after answering 404/400. */
static char *load_version(struct store *st, const struct vkind *k, const char *name, int64_t v,
                          struct http_response *resp)
{
    char *text = NULL;
    struct ty_err err;
    int rc = store_obj_version(st, k->kind, name, v, &text, &err);
    if (rc == TY_ENOENT) { /* say which: no such object, no such version, or a deletion */
        json_t *h = NULL;
        bool existed = store_obj_history(st, k->kind, name, &h, NULL) == 0;
        const char *op = NULL;
        size_t i;
        json_t *row;
        json_array_foreach(h, i, row)
        {
            if (json_integer_value(json_object_get(row, "version")) == v)
                op = json_string_value(json_object_get(row, "op"));
        }
        if (!existed)
            ty_error(&err, TY_ENOENT, k->key, -1, 0, "no %s \"%s\", now or ever", k->what, name);
        else if (op != NULL && strcmp(op, "delete") == 0)
            ty_error(&err, TY_ENOENT, "version", -1, 0,
                     "version %lld of %s \"%s\" is its deletion: it has no definition",
                     (long long)v, k->what, name);
        else
            ty_error(&err, TY_ENOENT, "version", -1, 0, "%s \"%s\" has no version %lld", k->what,
                     name, (long long)v);
        json_decref(h);
    }
    if (rc != 0) {
        http_error(resp, &err);
        return NULL;
    }
    return text;
}

static void version_get(struct server *s, const struct vkind *k, const struct http_request *req,
                        struct http_response *resp)
{
    const char *name = req->params[0];
    int64_t v = version_of(req->params[1]);
    struct ty_err err;
    if (v < 0) {
        ty_error(&err, TY_EINVAL, "version", -1, 0, "version: \"%s\" is not a version (1, 2, ...)",
                 req->params[1]);
        http_error(resp, &err);
        return;
    }
    struct store *st = reader(s, resp);
    char *text = st != NULL ? load_version(st, k, name, v, resp) : NULL;
    if (text == NULL)
        return;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (o == NULL) {
        ty_error(&err, TY_EFORMAT, NULL, -1, 0, "version %lld of %s \"%s\" is not readable JSON",
                 (long long)v, k->what, name);
        http_error(resp, &err);
        return;
    }
    json_object_set_new(o, "version", json_integer(v));
    resp->status = 200;
    resp->body = o;
}

/* The body of a restore: {"version": V}.  V, or -1 after answering 400. */
static int64_t restore_body(const struct http_request *req, struct http_response *resp)
{
    json_t *body;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return -1;
    }
    int64_t v = -1;
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "version") != 0) {
            rc =
                ty_error(&err, TY_EINVAL, key, -1, 0, "unknown field \"%s\" (known: version)", key);
            break;
        }
        if (!json_is_integer(val) || json_integer_value(val) < 1) {
            rc = ty_error(&err, TY_EINVAL, "version", -1, 0,
                          "version: expected a version number (1, 2, ...)");
            break;
        }
        v = json_integer_value(val);
    }
    if (rc == 0 && v < 0)
        rc = ty_error(&err, TY_EINVAL, "version", -1, 0,
                      "version: required (the version to restore, from .../versions)");
    json_decref(body);
    if (rc != 0) {
        http_error(resp, &err);
        return -1;
    }
    return v;
}

static void restore(struct server *s, const struct vkind *k, const struct http_request *req,
                    struct http_response *resp)
{
    const char *name = req->params[0];
    struct ty_err err;
    int64_t want;
    if (http_if_match(req, &want, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    int64_t v = restore_body(req, resp);
    if (v < 0)
        return;
    struct store *st = reader(s, resp);
    char *text = st != NULL ? load_version(st, k, name, v, resp) : NULL;
    if (text == NULL)
        return;
    int64_t cur = 0;
    int rc = store_obj_get(st, k->kind, name, NULL, &cur, &err);
    if (rc != 0 && rc != TY_ENOENT) {
        http_error(resp, &err);
        free(text);
        return;
    }
    bool deleted = rc == TY_ENOENT;
    if (deleted && want > 0) {
        ty_error(&err, TY_ECONFLICT, "version", -1, 0,
                 "%s \"%s\" was deleted since version %lld; read it again", k->what, name,
                 (long long)want);
        http_error(resp, &err);
        free(text);
        return;
    }
    /* the same request, with version v's definition as its body: a PUT, or a POST when
     * the object was deleted (it comes back, its version count going on) */
    struct http_request again = *req;
    again.method = deleted ? HTTP_POST : HTTP_PUT;
    again.body = text;
    again.body_len = strlen(text);
    routes__save_object(s, k->kind, deleted, &again, resp);
    if (resp->status == 201)
        resp->status = 200;
    if (resp->status == 200) {
        json_int_t now = json_integer_value(json_object_get(resp->body, "version"));
        log_info("configuration restored", "%s=%s from_version=%lld version=%lld remote=%s",
                 k->what, name, (long long)v, (long long)now, req->remote);
    }
    free(text);
}

/* The kind (job, domain, calendar) comes from the route's arg. */
static void h_versions(void *c, const struct http_request *r, struct http_response *p)
{
    versions_list(c, r->route_arg, r, p);
}
static void h_version(void *c, const struct http_request *r, struct http_response *p)
{
    version_get(c, r->route_arg, r, p);
}
static void h_restore(void *c, const struct http_request *r, struct http_response *p)
{
    restore(c, r->route_arg, r, p);
}

const struct http_route routes__versions[] = {
    {HTTP_GET, "/api/v1/jobs/{name}/versions", h_versions, false, &v_job, 0, ROUTES_P_JOB_HISTORY},
    {HTTP_GET, "/api/v1/jobs/{name}/versions/{version}", h_version, false, &v_job, 0,
     ROUTES_P_JOB_HISTORY},
    {HTTP_POST, "/api/v1/jobs/{name}/restore", h_restore, false, &v_job, 0, ROUTES_P_JOB_RESTORE},
    {HTTP_GET, "/api/v1/domains/{path}/versions", h_versions, false, &v_domain, 0,
     ROUTES_P_DOMAIN_READ},
    {HTTP_GET, "/api/v1/domains/{path}/versions/{version}", h_version, false, &v_domain, 0,
     ROUTES_P_DOMAIN_READ},
    {HTTP_POST, "/api/v1/domains/{path}/restore", h_restore, false, &v_domain, 0,
     ROUTES_P_DOMAIN_WRITE},
    {HTTP_GET, "/api/v1/calendars/{name}/versions", h_versions, false, &v_calendar, 0,
     ROUTES_P_ANY},
    {HTTP_GET, "/api/v1/calendars/{name}/versions/{version}", h_version, false, &v_calendar, 0,
     ROUTES_P_ANY},
    {HTTP_POST, "/api/v1/calendars/{name}/restore", h_restore, false, &v_calendar, 0,
     ROUTES_P_CALENDAR_WRITE},
};
const size_t routes__versions_n = sizeof routes__versions / sizeof routes__versions[0];
