/*
 * coord_agent.c - an executor's side of the cluster: registration, lease, placements.
 *
 * One loop (the executor process's main thread) drives a ZooKeeper session (zkc) and
 * this state machine:
 *
 *   session  -> read the secret, register (/executors/<id>, ephemeral), learn the servers
 *               (/servers, watched), read the placement head (/placements/<id>, watched)
 *   head     -> read its chunks, fetch the definitions of what changed from a server (a
 *               worker thread: HTTP), hand the executor the changes as assignments (the
 *               head's mzxid is their fencing epoch), then acknowledge: the registration
 *               gets applied_gen and "through" (fires of shards given up were made up to
 *               that instant; the new owner resumes after it)
 *   lease    -> checked every tick: when it ends the executor is fenced at once (it starts
 *               nothing); it is unfenced only after a placement has been applied under a
 *               valid lease of the current session
 *
 * Session expiry is the one event that can put this executor's shards in other hands
 * (the leader moves an executor's shards only after its session is gone, or after it
 * acknowledged giving them up).  So on a new session every job held is dropped first, and
 * the placement read afresh: jobs placed here again are new to the executor and resume
 * from the leader's resume_after, never from what this process last did, which someone
 * else may have done since.  A reconnect of the same session (the lease may have ended
 * meanwhile) keeps the jobs: nobody else can have had them.
 *
 * Results do not travel through ZooKeeper: coord_agent_deliver POSTs them to the
 * leader's API (spool thread), and while there is no leader they wait in the spool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

#include "../core/strmap.h"
#include "../os/client.h"
#include "../os/log.h"
#include "coord_zk.h"
#include "zkc.h"

#define TICK_MS          200
#define REFRESH_MS       5000 /* registration figures rewritten this often */
#define ASSIGN_BATCH     1000 /* assignments per request to the executor */
#define FETCH_BATCH      500  /* definitions per HTTP request */
#define FETCH_TIMEOUT_MS 30000

struct held {
    int64_t version;
    char *shards; /* "0,2,5" or "" for all: what was assigned */
};

/* A placement read from the chunks, waiting for its definition. */
struct want {
    struct coord_placement p;
    uint64_t order; /* chunk << 32 | entry: a later entry for a job replaces an earlier one */
    char *shards_key;
    char *definition; /* fetched */
    int64_t version;  /* of the definition fetched */
    json_t *secrets;
    bool missing; /* the server has no such job (deleted meanwhile) */
};

struct apply;

/* A chunk being read, and how many of its entries were taken. */
struct chunk_ctx {
    struct apply *ap;
    uint32_t index, entries;
};

struct apply {
    struct agent *a;
    int64_t gen, mzxid, session;
    struct coord_placement_head h; /* the head read (n_parts 0: there is none) */
    bool full;                     /* every part read (else those after the applied ones) */
    uint32_t chunks, chunks_read;
    struct chunk_ctx *cc; /* [chunks] */
    struct want *w;
    size_t n, cap;
    char **removed; /* held names no longer placed */
    size_t n_removed;
    bool failed;
    /* fetch (worker thread) */
    uv_work_t work;
    char server[512], secret[COORD_ZK_SECRET_HEX + 1];
    struct ty_err err;
    int fetch_rc;
    bool calendars; /* fetch every calendar too, and hand them over first */
    json_t *cals;   /* {name: definition text}, fetched */
    /* the executor's answers */
    size_t sent, answered;
    int64_t through;
    bool assign_failed;
};

struct agent {
    uv_loop_t *loop;
    struct coord_agent_config cfg;
    char *hosts, *auth;
    struct zkc *zk;
    uv_timer_t tick;
    uv_async_t answers;
    pthread_mutex_t mu; /* secret, servers, answer queue */
    json_t *servers;    /* [url, ...], the leader first */
    struct coord_request *ans_head, *ans_tail;
    int64_t session;        /* the session the state below belongs to */
    int64_t secret_session; /* the session on_secret registered in: once a session */
    int64_t last_refresh_ms;
    /* placements */
    struct strmap held;
    struct apply *applying;
    struct coord_placement_head applied; /* the parts held (n_parts 0: none yet) */
    int64_t applied_gen, applied_mzxid, through;
    int64_t stale_gen;    /* the last head seen that was made for another session */
    json_t *known_cals;   /* {name: true}: the calendars the executor holds */
    int64_t changes_seen; /* the doorbell's seq read last (-1: not yet) */
    char secret[COORD_ZK_SECRET_HEX + 1];
    char reg_path[96], place_path[96];
    bool registered, fenced, closing;
    bool full_sent;       /* the executor has had a complete set since it started */
    bool again;           /* the head changed while applying */
    bool calendars_dirty; /* a calendar changed (or a new session): fetch them all */
};

static void read_head(struct agent *a);
static void register_self(struct agent *a);
static void agent_closed(uv_handle_t *h);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_held(void *v)
{
    struct held *h = v;
    if (h != NULL)
        free(h->shards);
    free(h);
}

static char *shards_key(const uint32_t *s, uint32_t n)
{
    struct strbuf sb;
    sb_init(&sb);
    for (uint32_t i = 0; s != NULL && i < n; i++)
        sb_addf(&sb, i ? ",%u" : "%u", s[i]);
    return sb_detach(&sb);
}

static void apply_free(struct apply *ap)
{
    if (ap == NULL)
        return;
    for (size_t i = 0; i < ap->n; i++) {
        coord_placement_clear(&ap->w[i].p);
        free(ap->w[i].shards_key);
        free(ap->w[i].definition);
        json_decref(ap->w[i].secrets);
    }
    free(ap->w);
    free(ap->cc);
    for (size_t i = 0; i < ap->n_removed; i++)
        free(ap->removed[i]);
    free(ap->removed);
    json_decref(ap->cals);
    free(ap);
}

/* ---------------------------------------------------------------------------------------
 * Registration
 */

static char *registration_text(struct agent *a)
{
    struct coord_member_info *m = a->cfg.info;
    if (a->cfg.sample != NULL)
        a->cfg.sample(a->cfg.arg, m);
    m->updated_ms = wall_ms();
    m->applied_gen = a->applied_gen;
    m->through = a->through;
    m->fenced = a->fenced;
    json_t *o = coord_member_info_to_json(m);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void on_refreshed(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc == ZNONODE && a->registered && !a->closing) {
        a->registered = false; /* someone deleted it: register again */
        register_self(a);
    } else if (r->rc != ZOK && r->rc != ZCLOSING) {
        log_warn("cannot update this executor's registration", "error=%s", zkc_strerror(r->rc));
    }
}

static void refresh(struct agent *a)
{
    if (!a->registered)
        return;
    char *text = registration_text(a);
    if (text == NULL)
        return;
    a->last_refresh_ms = wall_ms();
    if (zkc_set(a->zk, a->reg_path, text, (int)strlen(text), -1, on_refreshed, a) != 0)
        log_warn("cannot update this executor's registration", "error=%s", "not sent");
    free(text);
}

static void on_old_deleted(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc != ZOK && r->rc != ZNONODE && r->rc != ZCLOSING)
        log_warn("cannot remove the registration a previous process left", "path=%s error=%s",
                 a->reg_path, zkc_strerror(r->rc));
    if (r->rc != ZCLOSING)
        register_self(a);
}

static void on_registered(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc == ZOK) {
        a->registered = true;
        log_info("executor registered", "path=%s session=%llx", a->reg_path,
                 (unsigned long long)zkc_session_id(a->zk));
        return;
    }
    if (r->rc == ZNODEEXISTS) {
        /* the node of a previous process of this data directory (its session lives on
         * until the ensemble expires it): that process is gone, since we hold the
         * directory's lock, so its registration goes */
        log_info("replacing the registration a previous process left", "path=%s", a->reg_path);
        if (zkc_delete(a->zk, a->reg_path, -1, on_old_deleted, a) != 0)
            log_warn("cannot remove an old registration", "path=%s", a->reg_path);
        return;
    }
    if (r->rc != ZCLOSING)
        log_error("cannot register this executor", "path=%s error=%s", a->reg_path,
                  zkc_strerror(r->rc));
}

static void register_self(struct agent *a)
{
    char *text = registration_text(a);
    if (text == NULL || zkc_create(a->zk, a->reg_path, text, (int)strlen(text), ZKC_EPHEMERAL,
                                   on_registered, a) != 0)
        log_error("cannot register this executor", "path=%s error=%s", a->reg_path,
                  "out of memory");
    free(text);
}

/* ---------------------------------------------------------------------------------------
 * Servers: the leader first
 */

struct servers_read {
    struct agent *a;
    char **names;
    int n, got;
    json_t *urls; /* [[name, url], ...] */
};

static void servers_watch(void *arg, int type, const char *path);

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void servers_done(struct servers_read *sr)
{
    struct agent *a = sr->a;
    /* sequence numbers are zero-padded, so names sort as their order of creation */
    json_t *urls = json_array();
    for (int i = 0; i < sr->n; i++) {
        size_t k;
        json_t *e;
        json_array_foreach(sr->urls, k, e)
        {
            if (strcmp(json_string_value(json_array_get(e, 0)), sr->names[i]) == 0)
                json_array_append(urls, json_array_get(e, 1));
        }
    }
    pthread_mutex_lock(&a->mu);
    const char *old = json_string_value(json_array_get(a->servers, 0));
    const char *now = json_string_value(json_array_get(urls, 0));
    bool changed = (old == NULL) != (now == NULL) || (old && now && strcmp(old, now) != 0);
    if (changed)
        log_info("the leader is", "url=%s servers=%zu", now ? now : "(none)",
                 json_array_size(urls));
    json_decref(a->servers);
    a->servers = urls;
    pthread_mutex_unlock(&a->mu);
    /* a placement that waited for a server to fetch from goes on */
    if (now != NULL && a->registered && (a->fenced || a->calendars_dirty) && !a->closing)
        read_head(a);
    for (int i = 0; i < sr->n; i++)
        free(sr->names[i]);
    free(sr->names);
    json_decref(sr->urls);
    free(sr);
}

/* The data of one server node, remembering its name (the reply carries no path). */
struct server_one {
    struct servers_read *sr;
    char *name;
};

static void on_server_one(void *arg, const struct zkc_reply *r)
{
    struct server_one *o = arg;
    struct servers_read *sr = o->sr;
    if (r->rc == ZOK && r->data != NULL) {
        json_t *d = json_loadb(r->data, (size_t)r->len, 0, NULL);
        const char *url = json_string_value(json_object_get(d, "url"));
        if (url != NULL && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0))
            json_array_append_new(sr->urls, json_pack("[s,s]", o->name, url));
        else
            log_warn("a server node holds no URL; ignored", "node=%s", o->name);
        json_decref(d);
    }
    free(o->name);
    free(o);
    if (++sr->got == sr->n)
        servers_done(sr);
}

static void on_servers(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc != ZOK) {
        if (r->rc != ZCLOSING)
            log_warn("cannot list the servers", "error=%s", zkc_strerror(r->rc));
        return;
    }
    struct servers_read *sr = calloc(1, sizeof *sr);
    if (sr == NULL)
        return;
    sr->a = a;
    sr->urls = json_array();
    sr->names = calloc((size_t)r->n_children + 1, sizeof(char *));
    for (int i = 0; i < r->n_children && sr->names != NULL; i++)
        if ((sr->names[sr->n] = strdup(r->children[i])) != NULL)
            sr->n++;
    if (sr->n > 0)
        qsort(sr->names, (size_t)sr->n, sizeof(char *), cmp_str);
    /* answers come on later turns of the loop: what was not sent is counted after */
    int unsent = 0;
    for (int i = 0; i < sr->n; i++) {
        struct server_one *o = malloc(sizeof *o);
        char path[256];
        snprintf(path, sizeof path, "/servers/%s", sr->names[i]);
        if (o == NULL || (o->name = strdup(sr->names[i])) == NULL) {
            free(o);
            unsent++;
            continue;
        }
        o->sr = sr;
        if (zkc_get(a->zk, path, NULL, NULL, on_server_one, o) != 0) {
            free(o->name);
            free(o);
            unsent++;
        }
    }
    sr->got += unsent;
    if (sr->got == sr->n)
        servers_done(sr);
}

static void read_servers(struct agent *a)
{
    if (zkc_children(a->zk, "/servers", servers_watch, a, on_servers, a) != 0)
        log_warn("cannot list the servers", "error=%s", "not sent");
}

static void servers_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct agent *a = arg;
    if (!a->closing)
        read_servers(a);
}

/* ---------------------------------------------------------------------------------------
 * Placements: head, chunks, definitions, assignments, acknowledgement
 */

static void head_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct agent *a = arg;
    if (a->closing)
        return;
    if (a->applying != NULL)
        a->again = true;
    else
        read_head(a);
}

static void apply_end(struct agent *a, struct apply *ap, bool ok)
{
    a->applying = NULL;
    if (ok) {
        a->applied_gen = ap->gen;
        a->applied_mzxid = ap->mzxid;
        a->applied = ap->h;
        if (ap->through > a->through)
            a->through = ap->through;
        if (a->fenced && zkc_lease_valid(a->zk) && ap->session == zkc_session_id(a->zk)) {
            a->fenced = false;
            a->cfg.lease(a->cfg.arg, zkc_lease_until_ns(a->zk));
            log_info("lease valid and placement applied: starting runs again", "gen=%lld",
                     (long long)ap->gen);
            a->cfg.fence(a->cfg.arg, false);
        }
        refresh(a); /* the acknowledgement */
    }
    apply_free(ap);
    if (a->again && !a->closing) {
        a->again = false;
        read_head(a);
    }
}

/* The executor answered one of our assignment requests (its thread). */
static void on_assign_done(struct coord_request *req)
{
    struct agent *a = req->impl;
    req->next = NULL;
    pthread_mutex_lock(&a->mu);
    if (a->ans_tail != NULL)
        a->ans_tail->next = req;
    else
        a->ans_head = req;
    a->ans_tail = req;
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->answers);
}

static void on_answers(uv_async_t *h)
{
    struct agent *a = h->data;
    pthread_mutex_lock(&a->mu);
    struct coord_request *req = a->ans_head;
    a->ans_head = a->ans_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    while (req != NULL) {
        struct coord_request *next = req->next;
        struct apply *ap = a->applying;
        if (req->reply.rc != 0) {
            log_error("the executor did not take its assignments", "error=\"%s\"",
                      req->reply.err.msg);
            if (ap != NULL)
                ap->assign_failed = true;
        } else {
            size_t i;
            json_t *f;
            json_array_foreach(json_object_get(req->reply.json, "failed"), i, f)
            {
                log_error("a job could not be assigned; it will not fire", "job=%s error=\"%s\"",
                          json_string_value(json_object_get(f, "job")),
                          json_string_value(json_object_get(f, "error")));
            }
            json_t *t = json_object_get(req->reply.json, "through");
            if (ap != NULL && json_is_integer(t) && json_integer_value(t) > ap->through)
                ap->through = json_integer_value(t);
        }
        coord_request_free(req);
        if (ap != NULL && ++ap->answered == ap->sent)
            apply_end(a, ap, !ap->assign_failed);
        req = next;
    }
}

/* Send req to the executor; counts it in ap->sent.  0 or the member's refusal. */
static int submit(struct agent *a, struct apply *ap, struct coord_request *req)
{
    req->impl = a;
    req->done = on_assign_done;
    ap->sent++;
    int rc = a->cfg.member.submit(a->cfg.member.arg, req);
    if (rc != 0) {
        ap->sent--;
        coord_request_free(req);
    }
    return rc;
}

/* Everything fetched: the changes go to the executor in batches. */
static void assign_all(struct agent *a, struct apply *ap)
{
    int64_t now_s = wall_ms() / 1000;
    struct coord_request *req = NULL;
    bool first = !a->full_sent;
    int rc = 0;
    size_t total = ap->n + ap->n_removed;
    size_t done = 0;
    for (size_t i = 0; i < total && rc == 0; i++) {
        if (req == NULL) {
            req = coord_request_new(COORD_ASSIGN);
            if (req == NULL || (req->assign = calloc(ASSIGN_BATCH, sizeof *req->assign)) == NULL) {
                coord_request_free(req);
                req = NULL;
                rc = TY_ENOMEM;
                break;
            }
            req->epoch = ap->mzxid;
        }
        struct coord_assignment *as = &req->assign[req->n_assign++];
        if (i < ap->n) {
            struct want *w = &ap->w[i];
            as->job = strdup(w->p.job);
            if (!w->missing) {
                as->definition = w->definition;
                w->definition = NULL;
                as->secrets = w->secrets;
                w->secrets = NULL;
                as->version = w->version;
            }
            if (w->p.n_shards > 0) {
                as->shards = malloc(w->p.n_shards * sizeof *as->shards);
                if (as->shards != NULL) {
                    memcpy(as->shards, w->p.shards, w->p.n_shards * sizeof *as->shards);
                    as->n_shards = w->p.n_shards;
                }
            }
            as->resume_after = w->p.resume_after;
            as->uncertain_until = w->p.uncertain;
            as->from = w->p.from ? strdup(w->p.from) : NULL;
        } else if (ap->removed != NULL && ap->removed[i - ap->n] != NULL) {
            as->job = strdup(ap->removed[i - ap->n]);
        }
        if (as->job == NULL) { /* out of memory: this one is not sent */
            coord_assignment_clear(as);
            req->n_assign--;
        }
        as->epoch = ap->mzxid;
        as->since = now_s;
        done++;
        if (req->n_assign == ASSIGN_BATCH || done == total) {
            req->complete = first && done == total;
            rc = submit(a, ap, req);
            req = NULL;
        }
    }
    if (first && total == 0 && rc == 0) {
        /* an empty first set still tells the executor it has everything */
        req = coord_request_new(COORD_ASSIGN);
        if (req != NULL) {
            req->epoch = ap->mzxid;
            req->complete = true;
            rc = submit(a, ap, req);
        } else {
            rc = TY_ENOMEM;
        }
    }
    if (rc != 0) {
        log_error("cannot hand the executor its placement", "gen=%lld error=%s", (long long)ap->gen,
                  ty_strerror(rc));
        ap->assign_failed = true;
    }
    if (first && rc == 0)
        a->full_sent = true;
    /* what is held now */
    for (size_t i = 0; i < ap->n; i++) {
        struct want *w = &ap->w[i];
        free_held(strmap_del(&a->held, w->p.job));
        if (w->missing)
            continue;
        struct held *h = malloc(sizeof *h);
        if (h == NULL)
            continue;
        h->version = w->version;
        h->shards = w->shards_key;
        w->shards_key = NULL;
        if (strmap_put(&a->held, w->p.job, h) != 0)
            free_held(h);
    }
    for (size_t i = 0; ap->removed != NULL && i < ap->n_removed; i++)
        free_held(strmap_del(&a->held, ap->removed[i]));
    if (ap->sent == 0)
        apply_end(a, ap, rc == 0);
}

/* Every calendar fetched goes to the executor (before the jobs that may name them), and
 * those it held that are gone are removed. */
static void send_calendars(struct agent *a, struct apply *ap)
{
    const char *name;
    json_t *v;
    json_t *gone = json_array();
    json_object_foreach(a->known_cals, name, v)
    {
        if (json_object_get(ap->cals, name) == NULL)
            json_array_append_new(gone, json_string(name));
    }
    size_t i;
    json_array_foreach(gone, i, v)
    {
        struct coord_request *req = coord_request_new(COORD_CALENDAR);
        if (req != NULL && (req->name = strdup(json_string_value(v))) != NULL)
            submit(a, ap, req);
        else
            coord_request_free(req);
        json_object_del(a->known_cals, json_string_value(v));
    }
    json_decref(gone);
    json_object_foreach(ap->cals, name, v)
    {
        struct coord_request *req = coord_request_new(COORD_CALENDAR);
        if (req == NULL || (req->name = strdup(name)) == NULL ||
            (req->definition = strdup(json_string_value(v) ? json_string_value(v) : "{}")) ==
                NULL) {
            coord_request_free(req);
            continue;
        }
        if (submit(a, ap, req) == 0)
            json_object_set_new(a->known_cals, name, json_true());
    }
    a->calendars_dirty = false;
}

/* Worker thread: the definitions of ap->w[] from a server. */
static void fetch_work(uv_work_t *wk)
{
    struct apply *ap = wk->data;
    struct client c;
    ap->fetch_rc = client_open_url(&c, ap->server, ap->secret, "the server", &ap->err);
    c.timeout_ms = FETCH_TIMEOUT_MS;
    if (ap->fetch_rc == 0 && ap->calendars) {
        json_t *body = json_pack("{s:[], s:b}", "jobs", "calendars", 1);
        json_t *resp = NULL;
        ap->fetch_rc = client_call(&c, "POST", "/api/v1/cluster/definitions", body, NULL, NULL,
                                   &resp, NULL, &ap->err);
        json_decref(body);
        json_t *cals = json_object_get(resp, "calendars");
        if (ap->fetch_rc == 0 && !json_is_object(cals))
            ap->fetch_rc = ty_error(&ap->err, TY_EFORMAT, "calendars", -1, 0,
                                    "the server's answer holds no calendars");
        ap->cals = json_incref(cals);
        json_decref(resp);
    }
    for (size_t i = 0; i < ap->n && ap->fetch_rc == 0; i += FETCH_BATCH) {
        size_t end = i + FETCH_BATCH < ap->n ? i + FETCH_BATCH : ap->n;
        json_t *names = json_array();
        for (size_t k = i; k < end; k++)
            json_array_append_new(names, json_string(ap->w[k].p.job));
        json_t *body = json_pack("{s:o}", "jobs", names);
        json_t *resp = NULL;
        ap->fetch_rc = client_call(&c, "POST", "/api/v1/cluster/definitions", body, NULL, NULL,
                                   &resp, NULL, &ap->err);
        json_decref(body);
        if (ap->fetch_rc != 0)
            break;
        json_t *items = json_object_get(resp, "items");
        for (size_t k = i; k < end; k++) {
            struct want *w = &ap->w[k];
            json_t *it = json_object_get(items, w->p.job);
            const char *def = json_string_value(json_object_get(it, "definition"));
            json_t *ver = json_object_get(it, "version");
            if (def == NULL || !json_is_integer(ver)) {
                w->missing = true;
                continue;
            }
            w->definition = strdup(def);
            w->version = json_integer_value(ver);
            json_t *sec = json_object_get(it, "secrets");
            w->secrets = json_is_object(sec) ? json_incref(sec) : NULL;
            if (w->definition == NULL)
                ap->fetch_rc = ty_error(&ap->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        }
        json_decref(resp);
    }
    client_close(&c);
}

static void fetch_done(uv_work_t *wk, int status)
{
    struct apply *ap = wk->data;
    struct agent *a = ap->a;
    if (status != 0 || ap->fetch_rc != 0 || a->closing) {
        if (!a->closing)
            log_warn("cannot fetch job definitions; trying again", "server=%s error=\"%s\"",
                     ap->server, ap->fetch_rc ? ap->err.msg : "canceled");
        a->again = !a->closing;
        apply_end(a, ap, false);
        return;
    }
    if (ap->cals != NULL)
        send_calendars(a, ap);
    assign_all(a, ap);
}

static int cmp_want(const void *x, const void *y)
{
    const struct want *a = x, *b = y;
    int c = strcmp(a->p.job, b->p.job);
    return c != 0 ? c : a->order < b->order ? -1 : a->order > b->order;
}

static void want_clear(struct want *w)
{
    coord_placement_clear(&w->p);
    free(w->shards_key);
    w->shards_key = NULL;
}

/* Every chunk is read: work out what changed and fetch its definitions. */
static void chunks_read(struct agent *a, struct apply *ap)
{
    if (ap->failed) {
        a->again = true; /* a newer head replaced these chunks */
        apply_end(a, ap, false);
        return;
    }
    qsort(ap->w, ap->n, sizeof *ap->w, cmp_want);
    /* the last entry of each job counts; keep what changes what is held */
    size_t k = 0;
    struct strmap seen;
    strmap_init(&seen);
    char **dropped = calloc(ap->n + 1, sizeof *dropped);
    size_t n_dropped = 0;
    for (size_t i = 0; i < ap->n; i++) {
        struct want *w = &ap->w[i];
        bool superseded = i + 1 < ap->n && strcmp(ap->w[i + 1].p.job, w->p.job) == 0;
        struct held *h = superseded ? NULL : strmap_get(&a->held, w->p.job);
        if (superseded || (w->p.drop && (ap->full || h == NULL)) ||
            (!w->p.drop && h != NULL && h->version >= w->p.version &&
             strcmp(h->shards, w->shards_key) == 0)) {
            if (!superseded && !w->p.drop)
                strmap_put(&seen, w->p.job, a);
            want_clear(w);
            continue;
        }
        if (w->p.drop) { /* a delta took it away */
            if (dropped != NULL) {
                dropped[n_dropped++] = w->p.job;
                w->p.job = NULL;
            }
            want_clear(w);
            continue;
        }
        strmap_put(&seen, w->p.job, a);
        ap->w[k++] = *w;
    }
    ap->n = k;
    if (ap->full) { /* whatever no part names is no longer held */
        size_t pos = 0;
        const char *name;
        void *v;
        size_t n_held = a->held.len;
        ap->removed = calloc(n_held + 1, sizeof *ap->removed);
        while (ap->removed != NULL && strmap_next(&a->held, &pos, &name, &v))
            if (strmap_get(&seen, name) == NULL &&
                (ap->removed[ap->n_removed] = strdup(name)) != NULL)
                ap->n_removed++;
        for (size_t i = 0; i < n_dropped; i++)
            free(dropped[i]);
        free(dropped);
    } else {
        ap->removed = dropped;
        ap->n_removed = n_dropped;
    }
    strmap_free(&seen);
    log_info("placement read", "gen=%lld epoch=%lld parts=%u whole=%d changed=%zu removed=%zu",
             (long long)ap->gen, (long long)ap->mzxid, ap->h.n_parts, ap->full, ap->n,
             ap->n_removed);
    ap->calendars = a->calendars_dirty;
    if (ap->n == 0 && !ap->calendars) {
        assign_all(a, ap);
        return;
    }
    pthread_mutex_lock(&a->mu);
    const char *url = json_string_value(json_array_get(a->servers, 0));
    snprintf(ap->server, sizeof ap->server, "%s", url ? url : "");
    snprintf(ap->secret, sizeof ap->secret, "%s", a->secret);
    pthread_mutex_unlock(&a->mu);
    if (ap->server[0] == '\0') {
        log_warn("no server is known; the placement waits for one", "gen=%lld", (long long)ap->gen);
        a->again = false;
        apply_end(a, ap, false);
        return; /* the servers' watch brings a server, and read_servers re-reads the head */
    }
    ap->work.data = ap;
    if (uv_queue_work(a->loop, &ap->work, fetch_work, fetch_done) != 0) {
        a->again = true;
        apply_end(a, ap, false);
    }
}

static int add_want(void *arg, const struct coord_placement *p)
{
    struct chunk_ctx *cc = arg;
    struct apply *ap = cc->ap;
    if (ap->n == ap->cap) {
        size_t cap = ap->cap ? 2 * ap->cap : 256;
        struct want *w = realloc(ap->w, cap * sizeof *w);
        if (w == NULL)
            return TY_ENOMEM;
        ap->w = w;
        ap->cap = cap;
    }
    struct want *w = &ap->w[ap->n];
    memset(w, 0, sizeof *w);
    w->order = (uint64_t)cc->index << 32 | cc->entries++;
    w->p.drop = p->drop;
    w->p.job = strdup(p->job);
    w->p.version = p->version;
    w->p.job_shards = p->job_shards;
    w->p.resume_after = p->resume_after;
    w->p.uncertain = p->uncertain;
    w->p.from = p->from ? strdup(p->from) : NULL;
    if (p->n_shards > 0 && (w->p.shards = malloc(p->n_shards * sizeof *p->shards)) != NULL) {
        memcpy(w->p.shards, p->shards, p->n_shards * sizeof *p->shards);
        w->p.n_shards = p->n_shards;
    }
    w->shards_key = shards_key(w->p.shards, w->p.n_shards);
    if (w->p.job == NULL || w->shards_key == NULL || (p->n_shards > 0 && w->p.shards == NULL)) {
        coord_placement_clear(&w->p);
        free(w->shards_key);
        return TY_ENOMEM;
    }
    ap->n++;
    return 0;
}

static void bad_want(void *arg, size_t index, const struct ty_err *err)
{
    struct apply *ap = ((struct chunk_ctx *)arg)->ap;
    log_error("a placement entry is malformed; skipped", "gen=%lld index=%zu error=\"%s\"",
              (long long)ap->gen, index, err->msg);
}

static void on_chunk(void *arg, const struct zkc_reply *r)
{
    struct chunk_ctx *cc = arg;
    struct apply *ap = cc->ap;
    struct agent *a = ap->a;
    if (r->rc != ZOK) {
        ap->failed = true;
    } else {
        struct ty_err err;
        int rc = coord_placements_decode(r->data ? r->data : "", (size_t)r->len, add_want, bad_want,
                                         cc, &err);
        if (rc != 0) {
            log_error("a placement chunk cannot be read", "gen=%lld error=\"%s\"",
                      (long long)ap->gen, rc == TY_ENOMEM ? "out of memory" : err.msg);
            ap->failed = rc == TY_ENOMEM; /* a malformed chunk is skipped as a whole */
        }
    }
    if (++ap->chunks_read == ap->chunks)
        chunks_read(a, ap);
}

static void on_head(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    struct apply *ap = a->applying;
    if (ap == NULL)
        return;
    if (r->rc == ZNONODE) {
        /* no placement yet: the leader makes one when it sees us; watch for it */
        ap->gen = 0;
        ap->mzxid = 0;
        ap->full = true; /* nothing is placed here */
        if (zkc_exists(a->zk, a->place_path, head_watch, a, NULL, NULL) != 0)
            log_warn("cannot watch for a placement", "path=%s", a->place_path);
        chunks_read(a, ap);
        return;
    }
    if (r->rc != ZOK) {
        if (r->rc != ZCLOSING)
            log_warn("cannot read the placement", "path=%s error=%s", a->place_path,
                     zkc_strerror(r->rc));
        a->again = r->rc != ZCLOSING;
        apply_end(a, ap, false);
        return;
    }
    struct coord_placement_head h;
    struct ty_err err;
    if (coord_placement_head_decode(r->data ? r->data : "", (size_t)r->len, &h, &err) != 0) {
        log_error("the placement head is malformed; waiting for the leader to rewrite it",
                  "path=%s error=\"%s\"", a->place_path, err.msg);
        apply_end(a, ap, false);
        return;
    }
    if (h.session != zkc_session_id(a->zk)) {
        /* made for an earlier session of ours: the leader has not seen this one yet, and
         * may be giving these shards to others; the watch brings the head it makes next */
        if (a->stale_gen != h.gen)
            log_info("placement made for another session; waiting for the leader's next",
                     "gen=%lld session=%llx ours=%llx", (long long)h.gen,
                     (unsigned long long)h.session, (unsigned long long)zkc_session_id(a->zk));
        a->stale_gen = h.gen;
        apply_end(a, ap, false);
        return;
    }
    ap->gen = h.gen;
    ap->mzxid = r->stat.mzxid;
    ap->h = h;
    ap->full = !coord_placement_head_extends(&a->applied, &h);
    uint32_t first = ap->full ? 0 : a->applied.n_parts;
    for (uint32_t p = first; p < h.n_parts; p++)
        ap->chunks += h.parts[p].chunks;
    if (ap->chunks == 0) {
        chunks_read(a, ap);
        return;
    }
    if ((ap->cc = calloc(ap->chunks, sizeof *ap->cc)) == NULL) {
        a->again = true;
        apply_end(a, ap, false);
        return;
    }
    uint32_t unsent = 0, c = 0; /* answers come on later turns of the loop */
    for (uint32_t p = first; p < h.n_parts; p++) {
        for (uint32_t i = 0; i < h.parts[p].chunks; i++, c++) {
            char path[192];
            snprintf(path, sizeof path, "/chunks/%s/%lld-%u", a->cfg.member.id,
                     (long long)h.parts[p].gen, i);
            ap->cc[c] = (struct chunk_ctx){.ap = ap, .index = c};
            if (zkc_get(a->zk, path, NULL, NULL, on_chunk, &ap->cc[c]) != 0)
                unsent++;
        }
    }
    if (unsent > 0) {
        ap->failed = true;
        ap->chunks_read += unsent;
        if (ap->chunks_read == ap->chunks)
            chunks_read(a, ap);
    }
}

static void read_head(struct agent *a)
{
    if (a->applying != NULL) {
        a->again = true;
        return;
    }
    struct apply *ap = calloc(1, sizeof *ap);
    if (ap == NULL)
        return;
    ap->a = a;
    ap->session = zkc_session_id(a->zk);
    a->applying = ap;
    if (zkc_get(a->zk, a->place_path, head_watch, a, on_head, a) != 0) {
        a->applying = NULL;
        apply_free(ap);
    }
}

/* ---------------------------------------------------------------------------------------
 * The doorbell, for calendars: a changed one is fetched again with every other
 */

static void changes_watch(void *arg, int type, const char *path);

static void on_changes(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc == ZNONODE) {
        if (a->changes_seen < 0)
            a->changes_seen = 0; /* nothing rung before us: every entry to come is news */
        zkc_exists(a->zk, "/meta/changes", changes_watch, a, NULL, NULL);
        return;
    }
    if (r->rc != ZOK || r->data == NULL)
        return;
    json_t *o = json_loadb(r->data, (size_t)r->len, 0, NULL);
    json_int_t seq = json_integer_value(json_object_get(o, "seq"));
    bool cal = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "recent"), i, e)
    {
        if (json_integer_value(json_object_get(e, "s")) > a->changes_seen &&
            (json_object_get(e, "calendars") != NULL ||
             json_object_get(e, "all_calendars") != NULL))
            cal = true;
    }
    json_decref(o);
    if (a->changes_seen >= 0 && cal) {
        a->calendars_dirty = true;
        read_head(a); /* the same placement, with the calendars fetched again */
    }
    if (seq > a->changes_seen)
        a->changes_seen = seq;
}

static void changes_watch(void *arg, int type, const char *path)
{
    (void)type;
    (void)path;
    struct agent *a = arg;
    if (!a->closing)
        zkc_get(a->zk, "/meta/changes", changes_watch, a, on_changes, a);
}

/* ---------------------------------------------------------------------------------------
 * Session
 */

static void on_secret(void *arg, const struct zkc_reply *r)
{
    struct agent *a = arg;
    if (r->rc != ZOK || r->data == NULL || r->len != COORD_ZK_SECRET_HEX) {
        if (r->rc != ZCLOSING)
            log_warn("no cluster secret yet (has a server started?); waiting", "error=%s",
                     r->rc == ZOK ? "malformed" : zkc_strerror(r->rc));
        return; /* the tick asks again */
    }
    /* Once a session: while no secret is known the tick asks again every second, so a slow
     * first answer comes with a second one, whose create would find our own fresh node,
     * take it for a previous process's and delete it (the leader would see us lost). */
    int64_t sid = zkc_session_id(a->zk);
    if (sid != 0 && sid == a->secret_session)
        return;
    a->secret_session = sid;
    pthread_mutex_lock(&a->mu);
    memcpy(a->secret, r->data, COORD_ZK_SECRET_HEX);
    a->secret[COORD_ZK_SECRET_HEX] = '\0';
    pthread_mutex_unlock(&a->mu);
    register_self(a);
    read_servers(a);
    a->calendars_dirty = true; /* with the first placement of the session */
    read_head(a);
    zkc_get(a->zk, "/meta/changes", changes_watch, a, on_changes, a);
}

/* Drop every job held: a new session may find its shards given to others meanwhile.  Each
 * job is unassigned by name (a "complete" request would drop only what was not assigned
 * since the last full set). */
static void drop_all(struct agent *a)
{
    size_t n = a->held.len, pos = 0, i = 0;
    const char *name;
    void *v;
    struct coord_request *req = NULL;
    while (strmap_next(&a->held, &pos, &name, &v)) {
        if (req == NULL) {
            size_t cap = n - i < ASSIGN_BATCH ? n - i : ASSIGN_BATCH;
            if (cap == 0)
                break;
            req = coord_request_new(COORD_ASSIGN);
            if (req == NULL || (req->assign = calloc(cap, sizeof *req->assign)) == NULL) {
                coord_request_free(req);
                log_error("out of memory: jobs of the old session are not dropped", "jobs=%zu", n);
                return;
            }
        }
        struct coord_assignment *as = &req->assign[req->n_assign++];
        as->job = strdup(name); /* no definition: unassigned */
        i++;
        if (req->n_assign == ASSIGN_BATCH || i == n) {
            req->impl = a;
            req->done = on_assign_done;
            if (a->cfg.member.submit(a->cfg.member.arg, req) != 0)
                coord_request_free(req);
            req = NULL;
        }
    }
    strmap_clear(&a->held, free_held);
    memset(&a->applied, 0, sizeof a->applied); /* the next placement is read whole */
    log_info("new ZooKeeper session: jobs held are dropped until the placement is read again",
             "session=%llx jobs=%zu", (unsigned long long)zkc_session_id(a->zk), n);
}

static void on_event(void *arg, enum zkc_event ev, bool new_session)
{
    struct agent *a = arg;
    switch (ev) {
    case ZKC_CONNECTED:
        if (new_session) {
            if (a->session != 0)
                drop_all(a);
            a->session = zkc_session_id(a->zk);
            a->registered = false;
            if (zkc_get(a->zk, "/meta/secret", NULL, NULL, on_secret, a) != 0)
                log_warn("cannot read the cluster secret", "error=%s", "not sent");
        } else {
            log_info("ZooKeeper connection back, same session", "session=%llx",
                     (unsigned long long)a->session);
            read_head(a); /* a fresh read under the new lease, then unfence */
        }
        return;
    case ZKC_DISCONNECTED:
        log_warn("ZooKeeper connection lost; runs stop starting when the lease ends",
                 "lease_left_ms=%lld",
                 (long long)((zkc_lease_until_ns(a->zk) - zkc_boottime_ns()) / 1000000));
        return;
    case ZKC_EXPIRED:
        log_warn("ZooKeeper session expired: this executor's shards may be moving elsewhere",
                 "session=%llx", (unsigned long long)a->session);
        a->registered = false;
        if (!a->fenced) {
            a->fenced = true;
            a->cfg.fence(a->cfg.arg, true);
        }
        return;
    case ZKC_AUTH_FAILED:
        log_error("ZooKeeper refused the credentials (--zk-auth)", "hosts=%s", a->hosts);
        return;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct agent *a = t->data;
    a->cfg.lease(a->cfg.arg, zkc_lease_until_ns(a->zk));
    if (!a->fenced && !zkc_lease_valid(a->zk)) {
        a->fenced = true;
        log_warn("lease ended: no run starts until a new placement is applied under a valid "
                 "lease",
                 "session=%llx", (unsigned long long)zkc_session_id(a->zk));
        a->cfg.fence(a->cfg.arg, true);
    }
    pthread_mutex_lock(&a->mu);
    bool no_secret = a->secret[0] == '\0';
    pthread_mutex_unlock(&a->mu);
    int64_t now = wall_ms();
    if (no_secret && zkc_session_id(a->zk) != 0 && now - a->last_refresh_ms > 1000) {
        a->last_refresh_ms = now;
        zkc_get(a->zk, "/meta/secret", NULL, NULL, on_secret, a);
    } else if (a->registered && now - a->last_refresh_ms >= REFRESH_MS) {
        refresh(a);
    } else if (a->fenced && a->applying == NULL && a->registered && zkc_lease_valid(a->zk) &&
               now - a->last_refresh_ms > 1000) {
        a->last_refresh_ms = now;
        read_head(a); /* fenced with a valid lease again: reread, then unfence */
    }
}

/* ---------------------------------------------------------------------------------------
 * Public
 */

int coord_agent_new(uv_loop_t *loop, const struct coord_agent_config *cfg, struct coord_agent **out,
                    struct ty_err *err)
{
    struct agent *a = calloc(1, sizeof *a);
    if (a == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    a->loop = loop;
    a->cfg = *cfg;
    a->hosts = strdup(cfg->hosts);
    a->auth = strdup(cfg->auth);
    a->fenced = true; /* until a placement is applied under a lease */
    a->servers = json_array();
    a->known_cals = json_object();
    a->changes_seen = -1;
    strmap_init(&a->held);
    pthread_mutex_init(&a->mu, NULL);
    snprintf(a->reg_path, sizeof a->reg_path, "/executors/%s", cfg->member.id);
    snprintf(a->place_path, sizeof a->place_path, "/placements/%s", cfg->member.id);
    if (a->hosts == NULL || a->auth == NULL) {
        free(a->hosts);
        free(a->auth);
        json_decref(a->servers);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    uv_timer_init(loop, &a->tick);
    a->tick.data = a;
    uv_async_init(loop, &a->answers, on_answers);
    a->answers.data = a;
    a->cfg.fence(a->cfg.arg, true);
    struct zkc_config zc = {
        .hosts = a->hosts,
        .session_timeout_ms = cfg->session_timeout_ms,
        .auth = a->auth,
        .on_event = on_event,
        .arg = a,
    };
    int rc = zkc_open(loop, &zc, &a->zk, err);
    if (rc != 0) {
        a->closing = true;
        uv_close((uv_handle_t *)&a->tick, agent_closed);
        uv_close((uv_handle_t *)&a->answers, agent_closed);
        uv_run(loop, UV_RUN_NOWAIT); /* the handles' close callbacks */
        coord_agent_free((struct coord_agent *)a);
        return rc;
    }
    uv_timer_start(&a->tick, on_tick, TICK_MS, TICK_MS);
    *out = (struct coord_agent *)a;
    return 0;
}

void coord_agent_secret(struct coord_agent *ca, char *buf, size_t cap)
{
    struct agent *a = (struct agent *)ca;
    pthread_mutex_lock(&a->mu);
    snprintf(buf, cap, "%s", a->secret);
    pthread_mutex_unlock(&a->mu);
}

int coord_agent_deliver(void *arg, const struct coord_result *const *results, size_t n,
                        struct ty_err *err)
{
    struct agent *a = arg;
    char url[512], secret[COORD_ZK_SECRET_HEX + 1];
    pthread_mutex_lock(&a->mu);
    const char *u = json_string_value(json_array_get(a->servers, 0));
    snprintf(url, sizeof url, "%s", u ? u : "");
    snprintf(secret, sizeof secret, "%s", a->secret);
    pthread_mutex_unlock(&a->mu);
    if (url[0] == '\0' || secret[0] == '\0')
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0,
                        "no leader server is known: results wait in the spool");
    json_t *list = json_array();
    for (size_t i = 0; i < n && list != NULL; i++) {
        json_t *o = coord_result_to_json(results[i]);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *body = list ? json_pack("{s:o}", "results", list) : NULL;
    if (body == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    struct client c;
    int rc = client_open_url(&c, url, secret, "the leader", err);
    if (rc == 0)
        rc = client_call(&c, "POST", "/api/v1/cluster/results", body, NULL, NULL, NULL, NULL, err);
    client_close(&c);
    json_decref(body);
    /* whatever went wrong, the results stay in the spool and come again */
    if (rc != 0 && rc != TY_ENOSPC && rc != TY_ENOMEM)
        rc = TY_EUNAVAIL;
    return rc;
}

static void agent_closed(uv_handle_t *h)
{
    (void)h; /* coord_agent_free, once the loop has run out, frees the agent */
}

void coord_agent_close(struct coord_agent *ca)
{
    struct agent *a = (struct agent *)ca;
    if (a == NULL || a->closing)
        return;
    a->closing = true;
    uv_timer_stop(&a->tick);
    zkc_close(a->zk); /* the registration goes with the session */
    a->zk = NULL;
    uv_close((uv_handle_t *)&a->tick, agent_closed);
    uv_close((uv_handle_t *)&a->answers, agent_closed);
}

void coord_agent_free(struct coord_agent *ca)
{
    struct agent *a = (struct agent *)ca;
    if (a == NULL)
        return;
    struct coord_request *req = a->ans_head;
    while (req != NULL) {
        struct coord_request *next = req->next;
        coord_request_free(req);
        req = next;
    }
    apply_free(a->applying);
    strmap_clear(&a->held, free_held);
    json_decref(a->servers);
    json_decref(a->known_cals);
    pthread_mutex_destroy(&a->mu);
    free(a->hosts);
    free(a->auth);
    free(a);
}
