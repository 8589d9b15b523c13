/*
 * routes_batch.c - POST /api/v1/jobs:batch: many job changes in one request.
 *
 * `tethys apply` of a file with a million jobs, or an import of a large crontab, would
 * otherwise be a million requests and a million transactions.  A batch carries up to
 * BATCH_MAX changes, each one what a single request would be - create (POST /jobs),
 * replace (PUT /jobs/{name}, base_version as If-Match), delete (DELETE /jobs/{name}) - and
 * the control plane makes them in order, in one transaction, with the same checks
 * (server_jobs_save_batch).  Each item succeeds or is refused on its own, with the status
 * and error body its single request would have had, so a client reports them one by one
 * exactly as before; a failure of the store (a full disk) fails the whole request and
 * changes nothing.
 *
 * The items are parsed and validated here, on the connection's thread, before the control
 * plane's lock is taken: a refusal of an item's own fields costs the others nothing.  So is
 * each item's permission, as its single request's would be (routes_auth.c): operator of the
 * job's domain, of both for a move; an item the caller may not make is refused alone (403).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/domain.h"
#include "../core/job.h"
#include "routes_impl.h"

#define BATCH_MAX 1000 /* items per request (a page of a list holds as many) */

static const char *const op_names[] = {NULL, "create", "replace", "delete"};

static const char *who_of(const struct http_request *req)
{
    return req->who != NULL ? req->who : req->remote;
}

/* Read item v into *it: its op, the job (validated) or the name, the base version.  A
 * refusal goes into it->rc / it->err, naming the item's field. */
static void parse_item(json_t *v, struct server_batch_item *it)
{
    static const char *const known = "op, job, name, base_version";
    struct ty_err *err = &it->err;
    if (!json_is_object(v)) {
        it->rc = ty_error(err, TY_EINVAL, "item", -1, 0,
                          "item: expected an object {\"op\": ..., \"job\": ...}");
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "op") != 0 && strcmp(key, "job") != 0 && strcmp(key, "name") != 0 &&
            strcmp(key, "base_version") != 0) {
            it->rc = ty_error(err, TY_EINVAL, key, -1, 0, "unknown field \"%.64s\" (known: %s)",
                              key, known);
            return;
        }
    }
    const char *op = json_string_value(json_object_get(v, "op"));
    for (int i = SERVER_BATCH_CREATE; op != NULL && i <= SERVER_BATCH_DELETE; i++)
        if (strcmp(op, op_names[i]) == 0)
            it->op = (enum server_batch_op)i;
    if (it->op == 0 && op != NULL) {
        it->rc = ty_error(err, TY_EINVAL, "op", -1, 0,
                          "op: \"%.40s\" is not an operation (create, replace or delete)", op);
        return;
    }
    if (it->op == 0) {
        it->rc = ty_error(err, TY_EINVAL, "op", -1, 0, "op: required (create, replace or delete)");
        return;
    }
    json_t *base = json_object_get(v, "base_version");
    if (base != NULL && it->op == SERVER_BATCH_CREATE) {
        it->rc = ty_error(err, TY_EINVAL, "base_version", -1, 0,
                          "base_version: a create has no version to be based on");
        return;
    }
    if (base != NULL && (!json_is_integer(base) || json_integer_value(base) < 1)) {
        it->rc = ty_error(err, TY_EINVAL, "base_version", -1, 0,
                          "base_version: expected a version number (1 or more)");
        return;
    }
    it->base = base ? json_integer_value(base) : 0;
    json_t *job = json_object_get(v, "job");
    json_t *name = json_object_get(v, "name");
    if (name != NULL && !json_is_string(name)) {
        it->rc = ty_error(err, TY_EINVAL, "name", -1, 0, "name: expected a job name (a string)");
        return;
    }
    if (it->op == SERVER_BATCH_DELETE) {
        if (job != NULL) {
            it->rc = ty_error(err, TY_EINVAL, "job", -1, 0,
                              "job: a delete names the job with \"name\" only");
            return;
        }
        if (name == NULL) {
            it->rc = ty_error(err, TY_EINVAL, "name", -1, 0, "name: required for a delete");
            return;
        }
        if ((it->rc = job_check_name("name", json_string_value(name), err)) != 0)
            return;
        snprintf(it->name, sizeof it->name, "%s", json_string_value(name));
        return;
    }
    if (!json_is_object(job)) {
        it->rc = ty_error(err, TY_EINVAL, "job", -1, 0,
                          "job: required (the job's definition, an "
                          "object)");
        return;
    }
    if (name != NULL && json_object_get(job, "name") == NULL)
        json_object_set(job, "name", name);
    if ((it->rc = job_from_json(job, &it->job, err)) != 0)
        return;
    snprintf(it->name, sizeof it->name, "%s", it->job.name);
    if (name != NULL && strcmp(json_string_value(name), it->job.name) != 0)
        it->rc = ty_error(err, TY_EINVAL, "name", -1, 0,
                          "name: \"%.128s\" differs from the job's (\"%s\"); a job cannot be "
                          "renamed",
                          json_string_value(name), it->job.name);
}

/* Whether the caller may make item `it` (parsed): operator of the domain the job has now
 * (replace, delete; none when it does not exist: the item is a 404) and of the one it will
 * have (create, replace).  A refusal goes into it->rc / it->err. */
static void permit_item(struct server *s, const struct http_request *req,
                        struct server_batch_item *it)
{
    char doing[3 * DOMAIN_PATH_MAX + JOB_NAME_MAX + 64], now[DOMAIN_PATH_MAX + 1] = "";
    bool exists = false;
    if (it->op != SERVER_BATCH_CREATE && !routes__may(req, ROLE_OPERATOR, "")) {
        struct store *st = server_reader(s, &it->err);
        char *text = NULL;
        int64_t version;
        int rc = st == NULL ? (it->err.code != 0 ? it->err.code : TY_EIO)
                            : store_obj_get(st, STORE_JOB, it->name, &text, &version, &it->err);
        if (rc != 0 && rc != TY_ENOENT) {
            it->rc = rc;
            return;
        }
        if (rc == 0) {
            routes__domain_of(text, now, sizeof now);
            free(text);
            exists = true;
        }
    }
    snprintf(doing, sizeof doing, "%s job %s",
             it->op == SERVER_BATCH_CREATE    ? "creating"
             : it->op == SERVER_BATCH_REPLACE ? "changing"
                                              : "deleting",
             it->name);
    if (exists && (it->rc = routes__check(req, ROLE_OPERATOR, now, doing, &it->err)) != 0)
        return;
    if (it->op == SERVER_BATCH_DELETE)
        return;
    const char *next = it->job.domain != NULL ? it->job.domain : "";
    if (exists && strcmp(now, next) != 0)
        snprintf(doing, sizeof doing, "moving job %s from %s to %s", it->name,
                 now[0] ? now : "the root", next[0] ? next : "the root");
    it->rc = routes__check(req, ROLE_OPERATOR, next, doing, &it->err);
}

/* The answer for one item: its index, op and name, and the status and error (or version)
 * its single request would have had. */
static json_t *item_result(size_t i, const struct server_batch_item *it, const json_t *v)
{
    const char *name = it->name;
    if (name[0] == '\0') { /* refused before it was known: as the request gave it */
        name = json_string_value(json_object_get(json_object_get(v, "job"), "name"));
        if (name == NULL)
            name = json_string_value(json_object_get(v, "name"));
    }
    json_t *o = json_pack("{s:I}", "index", (json_int_t)i);
    json_object_set_new(o, "op", it->op ? json_string(op_names[it->op]) : json_null());
    json_object_set_new(o, "name", name ? json_string(name) : json_null());
    if (it->rc != 0) {
        json_object_set_new(o, "status", json_integer(http_status_for(it->rc)));
        json_object_set_new(o, "error",
                            json_pack("{s:s, s:s, s:o}", "code", ty_code_name(it->rc), "message",
                                      it->err.msg, "field",
                                      it->err.field[0] ? json_string(it->err.field) : json_null()));
        return o;
    }
    static const int status[] = {0, 201, 200, 204};
    json_object_set_new(o, "status", json_integer(status[it->op]));
    if (it->op != SERVER_BATCH_DELETE)
        json_object_set_new(o, "version", json_integer(it->version));
    return o;
}

/* The request's own shape: {"items": [...]} with at most BATCH_MAX of them.  0 and *list
 * (borrowed from body), or TY_EINVAL naming the field. */
static int check_request(json_t *body, json_t **list, struct ty_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "items") != 0)
            return ty_error(err, TY_EINVAL, key, -1, 0, "unknown field \"%.64s\" (known: items)",
                            key);
    }
    *list = json_object_get(body, "items");
    if (!json_is_array(*list))
        return ty_error(err, TY_EINVAL, "items", -1, 0,
                        "items: required, a list of changes ({\"op\", \"job\" or \"name\", "
                        "\"base_version\"})");
    if (json_array_size(*list) > BATCH_MAX)
        return ty_error(err, TY_EINVAL, "items", -1, 0,
                        "items: %zu changes; at most %d per request (send the rest in another)",
                        json_array_size(*list), BATCH_MAX);
    return 0;
}

static void h_jobs_batch(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    json_t *body, *list = NULL;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    int rc = check_request(body, &list, &err);
    size_t n = json_array_size(list);
    struct server_batch_item *items = NULL;
    if (rc == 0 && (items = calloc(n > 0 ? n : 1, sizeof *items)) == NULL) {
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        rc = TY_ENOMEM;
    }
    if (rc != 0 || items == NULL) {
        http_error(resp, &err);
        json_decref(body);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        parse_item(json_array_get(list, i), &items[i]);
        if (items[i].rc == 0)
            permit_item(s, req, &items[i]);
    }
    rc = server_jobs_save_batch(s, items, n, who_of(req), &err);
    if (rc != 0) {
        http_error(resp, &err);
    } else {
        json_t *results = json_array();
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += items[i].rc != 0;
            json_array_append_new(results, item_result(i, &items[i], json_array_get(list, i)));
        }
        resp->status = 200;
        resp->body = json_pack("{s:o, s:{s:I, s:I}}", "items", results, "summary", "succeeded",
                               (json_int_t)(n - failed), "failed", (json_int_t)failed);
    }
    for (size_t i = 0; i < n; i++)
        job_free(&items[i].job);
    free(items);
    json_decref(body);
}

const struct http_route routes__batch[] = {
    {HTTP_POST, "/api/v1/jobs:batch", h_jobs_batch, false, NULL, 0, ROUTES_P_ANY},
};
const size_t routes__batch_n = sizeof routes__batch / sizeof routes__batch[0];
