/*
 * coord_multi.c - one server set, several ZooKeeper ensembles: each domain lives in one.
 *
 * A struct coord over n others (one coord_zk per ensemble), routing each request to the
 * ensemble it concerns: a job's assignment to the ensemble of its domain (the longest
 * domain prefix routed, else the first ensemble), run now to the ensemble that holds the
 * job, calendars to all (any job may name one), and requests about a run or the executors
 * (cancel, output, status) to all, the answers merged.  A job whose domain moves it to
 * another ensemble is unassigned from the old one in the same turn, so its shards are
 * never placed in two.  Each ensemble also learns other servers' saves through its own
 * doorbell and reads those jobs back from the store: it keeps a job only when the job's
 * domain routes to it (coord_zk_set_owner), so a job another server moved leaves the
 * ensemble it left here too, and the map below follows it.
 *
 * Requests are copied for each ensemble through their wire form (coord_wire.h), which is
 * exact by construction (its tests round-trip every field).  Everything runs on the loop
 * of the coords beneath: their answers come there, and so do ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/strmap.h"
#include "coord_wire.h"
#include "coord_zk.h"

struct route {
    char *domain; /* a subtree: "bank" routes "bank" and "bank/…" */
    size_t idx;
};

struct multi;

/* What ensemble i's coord_zk asks about a job it read back: is it mine? */
struct owner {
    struct multi *m;
    size_t i;
};

struct multi {
    struct coord base; /* first */
    size_t n;
    struct coord **c;
    struct owner *owners; /* [n] */
    struct route *routes;
    size_t n_routes;
    struct strmap jobs; /* name -> &idx[its ensemble] */
    size_t *idx;        /* [n]: 0, 1, ... n-1, what the map's values point at */
};

/* The answers of the ensembles to one request, merged into one for the caller. */
struct join {
    struct multi *m;
    enum coord_req_kind kind;
    coord_cb cb;
    void *arg;
    size_t sent, answered;
    struct coord_reply merged;
    bool any_ok;
    json_t *items; /* STATUS: every ensemble's executors; ASSIGN: failures */
};

/* The ensemble of a domain: the longest routed prefix, else the first. */
static size_t route_of(const struct multi *m, const char *domain)
{
    size_t best = 0, best_len = 0;
    for (size_t i = 0; domain != NULL && i < m->n_routes; i++) {
        size_t len = strlen(m->routes[i].domain);
        if (len >= best_len && strncmp(domain, m->routes[i].domain, len) == 0 &&
            (domain[len] == '\0' || domain[len] == '/')) {
            best = m->routes[i].idx;
            best_len = len;
        }
    }
    return best;
}

/* A job read back from the store by ensemble o->i: it stays there when its domain routes
 * there, and run now follows it (a job another server moved). */
static bool owns(void *arg, const char *job, const char *domain)
{
    struct owner *o = arg;
    if (route_of(o->m, domain) != o->i)
        return false;
    (void)strmap_put(&o->m->jobs, job, &o->m->idx[o->i]); /* out of memory: run now misses */
    return true;
}

/* A copy of req through its wire form; NULL when out of memory. */
static struct coord_request *copy(const struct coord_request *req)
{
    json_t *o = coord_request_to_json(req);
    struct coord_request *out = NULL;
    struct ty_err err;
    if (o != NULL && coord_request_from_json(o, &out, &err) != 0)
        out = NULL;
    json_decref(o);
    return out;
}

static void join_finish(struct join *j);

/* One more answer counted; the last one (the sender's own guard included) finishes. */
static void join_count(struct join *j)
{
    if (++j->answered == j->sent)
        join_finish(j);
}

static void join_done(void *arg, struct coord_reply *r)
{
    struct join *j = arg;
    struct coord_reply *m = &j->merged;
    if (j->kind == COORD_STATUS && r->rc == 0) {
        if (json_is_array(r->json))
            json_array_extend(j->items, r->json);
        j->any_ok = true;
    } else if (j->kind == COORD_ASSIGN || j->kind == COORD_CALENDAR) {
        if (r->rc == 0)
            json_array_extend(j->items, json_object_get(r->json, "failed"));
        else if (m->rc == 0)
            *m = (struct coord_reply){.rc = r->rc, .err = r->err};
    } else if (r->rc == 0 && !j->any_ok) { /* the first ensemble that knows answers */
        j->any_ok = true;
        json_decref(m->json);
        free(m->data);
        *m = *r;
        r->json = NULL;
        r->data = NULL;
    } else if (!j->any_ok && (m->rc == 0 || m->rc == TY_ENOENT)) {
        m->rc = r->rc;
        m->err = r->err;
    }
    join_count(j);
}

static void join_finish(struct join *j)
{
    struct coord_reply *m = &j->merged;
    if (j->kind == COORD_STATUS) {
        m->rc = 0;
        json_decref(m->json);
        m->json = json_incref(j->items);
    } else if ((j->kind == COORD_ASSIGN || j->kind == COORD_CALENDAR) && m->rc == 0) {
        json_decref(m->json);
        m->json = json_pack("{s:O}", "failed", j->items);
    }
    j->cb(j->arg, m);
    json_decref(m->json);
    free(m->data);
    json_decref(j->items);
    free(j);
}

static struct join *join_new(struct multi *m, enum coord_req_kind kind, coord_cb cb, void *arg)
{
    struct join *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->m = m;
    j->kind = kind;
    j->cb = cb;
    j->arg = arg;
    j->items = json_array();
    j->sent = 1; /* the sender's guard: nothing finishes before it has sent everything */
    if (kind == COORD_CANCEL || kind == COORD_OUTPUT) /* until an ensemble knows the run */
        j->merged.rc = ty_error(&j->merged.err, TY_ENOENT, NULL, -1, 0,
                                "no ensemble knows it (unknown, or already ended)");
    return j;
}

/* Send req (taken) to ensemble i as part of j. */
static void join_send(struct join *j, size_t i, const char *executor, struct coord_request *req)
{
    int rc = coord_send(j->m->c[i], executor, req, join_done, j);
    if (rc == 0) {
        j->sent++; /* answered on a later turn of the loop */
    } else if (!j->any_ok && (j->merged.rc == 0 || j->merged.rc == TY_ENOENT)) {
        j->merged.rc =
            ty_error(&j->merged.err, rc, NULL, -1, 0, "ensemble %zu cannot take the request", i);
    }
}

/* Assignments: each to the ensemble of its job's domain. */
static int send_assign(struct multi *m, struct coord_request *req, coord_cb cb, void *arg)
{
    struct coord_request **parts = calloc(m->n, sizeof(struct coord_request *));
    struct join *j = join_new(m, COORD_ASSIGN, cb, arg);
    if (parts == NULL || j == NULL) {
        free(parts);
        if (j != NULL)
            json_decref(j->items);
        free(j);
        coord_request_free(req);
        return TY_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        parts[i] = coord_request_new(COORD_ASSIGN);
        if (parts[i] != NULL &&
            (parts[i]->assign = calloc(2 * req->n_assign + 1, sizeof *parts[i]->assign)) != NULL) {
            parts[i]->epoch = req->epoch;
            parts[i]->complete = req->complete;
        }
    }
    for (size_t k = 0; k < req->n_assign; k++) {
        struct coord_assignment *a = &req->assign[k];
        const size_t *was = strmap_get(&m->jobs, a->job);
        size_t old = was != NULL ? *was + 1 : 0;
        size_t to = SIZE_MAX;
        if (a->definition != NULL) {
            json_t *o = json_loads(a->definition, 0, NULL);
            to = route_of(m, json_string_value(json_object_get(o, "domain")));
            json_decref(o);
        }
        /* unassigned where it was, when it goes elsewhere or away */
        for (size_t i = 0; i < m->n; i++) {
            bool was_here = old == i + 1 || (old == 0 && a->definition == NULL);
            if (!was_here || i == to || parts[i] == NULL || parts[i]->assign == NULL)
                continue;
            struct coord_assignment *r = &parts[i]->assign[parts[i]->n_assign];
            if ((r->job = strdup(a->job)) != NULL)
                parts[i]->n_assign++;
        }
        if (to == SIZE_MAX) {
            strmap_del(&m->jobs, a->job);
            continue;
        }
        if (strmap_put(&m->jobs, a->job, &m->idx[to]) != 0)
            continue; /* out of memory: not assigned, and said so by its absence */
        if (parts[to] != NULL && parts[to]->assign != NULL) {
            parts[to]->assign[parts[to]->n_assign++] = *a;
            memset(a, 0, sizeof *a); /* moved */
        }
    }
    coord_request_free(req);
    for (size_t i = 0; i < m->n; i++) {
        if (parts[i] == NULL)
            continue;
        if (parts[i]->n_assign == 0 && !parts[i]->complete) {
            coord_request_free(parts[i]);
            continue;
        }
        join_send(j, i, "", parts[i]);
    }
    free(parts);
    if (j->sent == 1) /* nothing for anyone: an empty set, all taken */
        j->merged = (struct coord_reply){.rc = 0};
    join_count(j); /* the guard */
    return 0;
}

static int multi_send(struct coord *base, const char *executor, struct coord_request *req,
                      coord_cb cb, void *arg)
{
    struct multi *m = (struct multi *)base;
    if (req->kind == COORD_ASSIGN)
        return send_assign(m, req, cb, arg);
    if (req->kind == COORD_FIRE) {
        const size_t *at = strmap_get(&m->jobs, req->fire.job);
        return coord_send(m->c[at != NULL ? *at : 0], executor, req, cb, arg);
    }
    /* calendars, and requests about runs or executors: to every ensemble */
    struct join *j = join_new(m, req->kind, cb, arg);
    if (j == NULL) {
        coord_request_free(req);
        return TY_ENOMEM;
    }
    for (size_t i = 0; i + 1 < m->n; i++) {
        struct coord_request *c = copy(req);
        if (c != NULL)
            join_send(j, i, executor, c);
    }
    join_send(j, m->n - 1, executor, req);
    join_count(j); /* the guard */
    return 0;
}

static void multi_close(struct coord *base)
{
    struct multi *m = (struct multi *)base;
    for (size_t i = 0; i < m->n; i++)
        coord_close(m->c[i]);
    for (size_t i = 0; i < m->n_routes; i++)
        free(m->routes[i].domain);
    free(m->routes);
    free(m->c);
    free(m->idx);
    free(m->owners);
    strmap_free(&m->jobs);
    free(m);
}

static const struct coord_ops multi_ops = {multi_close, multi_send};

int coord_multi_new(struct coord **coords, size_t n, const char *const *route_domains,
                    const size_t *route_idx, size_t n_routes, struct coord **out,
                    struct ty_err *err)
{
    struct multi *m = calloc(1, sizeof *m);
    if (m == NULL || n == 0 || (m->c = calloc(n, sizeof(struct coord *))) == NULL ||
        (m->idx = calloc(n, sizeof *m->idx)) == NULL ||
        (m->owners = calloc(n, sizeof *m->owners)) == NULL ||
        (m->routes = calloc(n_routes + 1, sizeof *m->routes)) == NULL) {
        if (m != NULL) {
            free(m->c);
            free(m->idx);
            free(m->owners);
        }
        free(m);
        return ty_error(err, n == 0 ? TY_EINVAL : TY_ENOMEM, NULL, -1, 0,
                        n == 0 ? "no ensemble" : "out of memory");
    }
    m->base.ops = &multi_ops;
    memcpy(m->c, coords, n * sizeof(struct coord *));
    for (size_t i = 0; i < n; i++)
        m->idx[i] = i;
    m->n = n;
    strmap_init(&m->jobs);
    for (size_t i = 0; i < n_routes; i++) {
        if (route_idx[i] >= n || (m->routes[i].domain = strdup(route_domains[i])) == NULL) {
            m->n_routes = i;
            m->n = 0; /* the coords stay the caller's */
            multi_close(&m->base);
            return ty_error(err, TY_EINVAL, "--zk-domains", -1, 0,
                            "--zk-domains: ensemble %zu does not exist", route_idx[i]);
        }
        m->routes[i].idx = route_idx[i];
        m->n_routes = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        m->owners[i] = (struct owner){m, i};
        coord_zk_set_owner(m->c[i], owns, &m->owners[i]);
    }
    *out = &m->base;
    return 0;
}
