/*
 * routes_cluster.c - what cluster members ask a server (/api/v1/cluster/...), and the one
 * endpoint an executor process serves (/cluster/v1/request).
 *
 * Servers: executors hand their results to the leader (POST /api/v1/cluster/results, the
 * store side of their spool: answered once the results are in the store) and fetch the
 * definitions of the jobs placed on them, with their secret values (POST
 * /api/v1/cluster/definitions).  Only the cluster's secret opens these (routes__authenticate
 * names such a caller "cluster"); an API token does not, so no client can read secret
 * values or forge history through them.
 *
 * Executors: a server's request (run now, cancel, output, status ...) arrives as the JSON
 * of a coord request (coord_wire.h), goes to the executor's member entry, and the
 * connection thread waits for the answer, which goes back as JSON.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../coord/coord_wire.h"
#include "../coord/coord_zk.h"
#include "../os/clock.h"
#include "routes_impl.h"
#include "token.h"

#define RESULTS_BODY_MAX ((size_t)64 * 1024 * 1024)
#define DEFS_MAX         1000 /* definitions per request */
#define MEMBER_WAIT_MS   60000

static bool from_peer(const struct http_request *req, struct http_response *resp)
{
    if (req->who != NULL && strcmp(req->who, ROUTES_PEER_NAME) == 0)
        return true;
    struct ty_err err;
    ty_error(&err, TY_EAUTH, NULL, -1, 0,
             "only members of the cluster (with its secret) may call %s", req->path);
    http_error(resp, &err);
    return false;
}

/* POST /api/v1/cluster/results {"results": [result, ...]} -> {"accepted": n} */
static void h_results(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    if (!from_peer(req, resp))
        return;
    json_t *body = NULL;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    json_t *list = json_object_get(body, "results");
    size_t n = json_array_size(list);
    if (!json_is_array(list)) {
        ty_error(&err, TY_EINVAL, "results", -1, 0, "results: expected an array of results");
        http_error(resp, &err);
        json_decref(body);
        return;
    }
    struct coord_result *rs = calloc(n + 1, sizeof *rs);
    const struct coord_result **ptrs = calloc(n + 1, sizeof(const struct coord_result *));
    struct strbuf *scratch = calloc(n + 1, sizeof *scratch);
    int rc = rs == NULL || ptrs == NULL || scratch == NULL
                 ? ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory")
                 : 0;
    for (size_t i = 0; rs != NULL && ptrs != NULL && scratch != NULL && i < n && rc == 0; i++) {
        sb_init(&scratch[i]);
        struct ty_err e;
        if (coord_result_from_json(json_array_get(list, i), &rs[i], &scratch[i], &e) != 0)
            rc = ty_error(&err, TY_EINVAL, "results", -1, 0, "results.%zu: %s", i, e.msg);
        ptrs[i] = &rs[i];
    }
    if (rc == 0 && n > 0)
        rc = server_ingest(s, ptrs, n, &err);
    if (rc == 0) {
        resp->status = 200;
        resp->body = json_pack("{s:I}", "accepted", (json_int_t)n);
    } else {
        http_error(resp, &err);
    }
    for (size_t i = 0; scratch != NULL && i < n; i++)
        sb_free(&scratch[i]);
    free(scratch);
    free(ptrs);
    free(rs);
    json_decref(body);
}

/* POST /api/v1/cluster/definitions {"jobs": [name, ...], "calendars": true} ->
 * {"items": {name: {"version", "definition", "secrets"}}, "calendars": {name: definition}};
 * a job that does not exist is left out (deleted since it was placed); calendars (every
 * one: there are few) only when asked for. */
static void h_definitions(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct server *s = ctx;
    if (!from_peer(req, resp))
        return;
    json_t *body = NULL;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    json_t *names = json_object_get(body, "jobs");
    if (!json_is_array(names) || json_array_size(names) > DEFS_MAX) {
        ty_error(&err, TY_EINVAL, "jobs", -1, 0, "jobs: expected an array of at most %d names",
                 DEFS_MAX);
        http_error(resp, &err);
        json_decref(body);
        return;
    }
    struct store *st = server_reader(s, &err);
    if (st == NULL) {
        http_error(resp, &err);
        json_decref(body);
        return;
    }
    /* one store query for the lot: two per job made most of a large executor's start-up */
    size_t count = json_array_size(names), i;
    const char **wanted = calloc(count + 1, sizeof *wanted);
    if (wanted == NULL) {
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        http_error(resp, &err);
        json_decref(body);
        return;
    }
    int rc = 0;
    for (i = 0; rc == 0 && i < count; i++)
        if ((wanted[i] = json_string_value(json_array_get(names, i))) == NULL)
            rc = ty_error(&err, TY_EINVAL, "jobs", -1, 0, "jobs.%zu: expected a job name", i);
    json_t *items = NULL, *n;
    if (rc == 0)
        rc = store_jobs_get_many(st, wanted, count, &items, &err);
    free(wanted);
    json_t *cals = NULL;
    if (rc == 0 && json_is_true(json_object_get(body, "calendars"))) {
        json_t *list = NULL;
        rc = store_obj_list(st, STORE_CALENDAR, NULL, &list, &err);
        cals = json_object();
        json_array_foreach(list, i, n)
        {
            const char *name = json_string_value(json_object_get(n, "name"));
            char *text = json_dumps(json_object_get(n, "object"), JSON_COMPACT);
            if (name != NULL && text != NULL)
                json_object_set_new(cals, name, json_string(text));
            free(text);
        }
        json_decref(list);
    }
    json_decref(body);
    if (rc != 0) {
        json_decref(items);
        json_decref(cals);
        http_error(resp, &err);
        return;
    }
    resp->status = 200;
    resp->body = json_pack("{s:o}", "items", items);
    if (cals != NULL)
        json_object_set_new(resp->body, "calendars", cals);
}

const struct http_route routes__cluster[] = {
    {HTTP_POST, "/api/v1/cluster/results", h_results, false, NULL, RESULTS_BODY_MAX, ROUTES_P_PEER},
    {HTTP_POST, "/api/v1/cluster/definitions", h_definitions, false, NULL, 0, ROUTES_P_PEER},
};
const size_t routes__cluster_n = sizeof routes__cluster / sizeof routes__cluster[0];

/* ---------------------------------------------------------------------------------------
 * An executor's endpoint
 */

struct member_ctx {
    struct coord_member member;
    void (*secret)(void *arg, char *buf, size_t cap);
    void *secret_arg;
};

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs; /* the handler's and the member's */
};

static void waiter_unref(struct waiter *w)
{
    pthread_mutex_lock(&w->mu);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
}

static void member_done(struct coord_request *req)
{
    struct waiter *w = req->impl;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    bool abandoned = w->refs == 1; /* the handler gave up waiting */
    pthread_mutex_unlock(&w->mu);
    if (abandoned)
        coord_request_free(req);
    waiter_unref(w);
}

static void h_member_request(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct member_ctx *mc = ctx;
    json_t *body = NULL;
    struct ty_err err;
    if (http_body_json(req, &body, &err) != 0) {
        http_error(resp, &err);
        return;
    }
    struct coord_request *cr = NULL;
    int rc = coord_request_from_json(body, &cr, &err);
    json_decref(body);
    if (rc != 0) {
        http_error(resp, &err);
        return;
    }
    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL) {
        coord_request_free(cr);
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        http_error(resp, &err);
        return;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->refs = 2;
    cr->impl = w;
    cr->done = member_done;
    rc = mc->member.submit(mc->member.arg, cr);
    if (rc != 0) {
        w->refs = 1;
        waiter_unref(w);
        coord_request_free(cr);
        ty_error(&err, rc, NULL, -1, 0, "the executor cannot take the request: %s",
                 ty_strerror(rc));
        http_error(resp, &err);
        return;
    }
    struct timespec ts = clock_deadline(MEMBER_WAIT_MS);
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    bool done = w->done;
    pthread_mutex_unlock(&w->mu);
    if (!done) { /* the member frees the request when it answers */
        waiter_unref(w);
        ty_error(&err, TY_EUNAVAIL, NULL, -1, 0, "the executor did not answer within %d s",
                 MEMBER_WAIT_MS / 1000);
        http_error(resp, &err);
        return;
    }
    snprintf(cr->reply.executor, sizeof cr->reply.executor, "%s", mc->member.id);
    json_t *out = coord_reply_to_json(&cr->reply);
    coord_request_free(cr);
    waiter_unref(w);
    if (out == NULL) {
        ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        http_error(resp, &err);
        return;
    }
    resp->status = 200;
    resp->body = out;
}

static void h_member_health(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct member_ctx *mc = ctx;
    (void)req;
    resp->status = 200;
    resp->body = json_pack("{s:s, s:s, s:s}", "status", "ok", "executor", mc->member.id, "version",
                           TETHYS_VERSION);
}

static int member_authorize(void *ctx, const char *bearer, size_t len, char *who, size_t who_cap,
                            char *why, size_t why_cap)
{
    struct member_ctx *mc = ctx;
    char secret[128];
    mc->secret(mc->secret_arg, secret, sizeof secret);
    if (secret[0] != '\0' && token_equal(secret, strlen(secret), bearer, len)) {
        snprintf(who, who_cap, "%s", ROUTES_PEER_NAME);
        return 0;
    }
    snprintf(why, why_cap, "%s",
             secret[0] == '\0' ? "this executor has not read the cluster secret yet"
                               : "wrong bearer: only the cluster's servers may call an executor");
    return TY_EAUTH;
}

static const struct http_route member_routes[] = {
    {HTTP_POST, COORD_ZK_REQUEST_PATH, h_member_request, false, NULL, 0, ROUTES_P_PEER},
    {HTTP_GET, "/api/v1/health", h_member_health, true, NULL, 0, 0},
};

int routes_member_config(const struct coord_member *member,
                         void (*secret)(void *arg, char *buf, size_t cap), void *secret_arg,
                         const char *listen, struct http_config *out, struct ty_err *err)
{
    struct member_ctx *mc = calloc(1, sizeof *mc);
    if (mc == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    mc->member = *member;
    mc->secret = secret;
    mc->secret_arg = secret_arg;
    memset(out, 0, sizeof *out);
    out->listen = listen;
    out->authorize = member_authorize;
    out->routes = member_routes;
    out->n_routes = sizeof member_routes / sizeof member_routes[0];
    out->ctx = mc;
    return 0;
}

void routes_member_free(struct http_config *cfg)
{
    free(cfg->ctx);
    cfg->ctx = NULL;
}
