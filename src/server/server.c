/*
 * server.c - the control plane's life and its loop.
 *
 * Open: the store (migrated when older; the fencing epoch bumped: every assignment made
 * by this process carries it), the alerts left open.  Start: the writer thread, then the
 * whole configuration to the executors (config.c); once they have taken it, the embedding
 * is told to serve (on_ready).  Run: the loop answers API threads' messages, passes
 * requests to the executors through the coord and answers back, fires downstream jobs
 * when the writer finds a fire's shards all succeeded, samples resources, prunes history.
 * Stop (SIGTERM/SIGINT): no more changes are taken; the executors are stopped (their
 * runs get the grace), then the loop ends.
 *
 * API threads wait for the loop with a deadline (server__call): the loop never blocks on
 * anything slow (executors answer through the coord, the store is written by the writer
 * thread), so the deadline is a safety net, not the common case; a message answered after
 * its caller gave up is freed by whoever lets go of it last.
 */
#define _GNU_SOURCE
#include "server_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/civil.h"
#include "../os/clock.h"
#include "../os/log.h"
#include "../os/notify.h"
#include "../tzdb/tzdb.h"

#define CALL_MS        30000 /* the longest an API thread waits for the loop */
#define CONFIG_CALL_MS 5000
#define RESOURCE_MS    5000
#define RETENTION_MS   3600000
#define STORE_SYNC_MS  5000

/* ---------------------------------------------------------------------------------------
 * Small accessors
 */

static int64_t clock_ns(const struct server *s)
{
    return s->cfg.now_ns != NULL ? s->cfg.now_ns(s->cfg.now_arg) : clock_wall_ns();
}

int64_t server_now(const struct server *s)
{
    return clock_ns(s) / 1000000000;
}

int64_t server_now_ms(const struct server *s)
{
    return clock_ns(s) / 1000000;
}

int64_t server_started_ms(const struct server *s)
{
    return s->started_ms;
}

const char *server_data_dir(const struct server *s)
{
    return s->data_dir;
}

const char *server_token(const struct server *s)
{
    return s->token;
}

void server_set_peer_secret(struct server *s, const char *secret)
{
    pthread_mutex_lock(&s->peer_mu);
    bool known = false;
    for (size_t i = 0; i < s->n_peer_secrets && !known; i++)
        known = strcmp(s->peer_secret[i], secret) == 0;
    if (!known && s->n_peer_secrets < SERVER_PEERS_MAX)
        snprintf(s->peer_secret[s->n_peer_secrets++], sizeof s->peer_secret[0], "%s", secret);
    pthread_mutex_unlock(&s->peer_mu);
}

bool server_is_peer(struct server *s, const char *bearer, size_t len)
{
    bool peer = false;
    pthread_mutex_lock(&s->peer_mu);
    for (size_t k = 0; k < s->n_peer_secrets; k++) {
        const char *p = s->peer_secret[k];
        size_t n = strlen(p);
        unsigned diff = n == 0 || n != len;
        for (size_t i = 0; i < len; i++)
            diff |= (unsigned)(unsigned char)bearer[i] ^ (unsigned char)p[i % (n ? n : 1)];
        peer |= diff == 0;
    }
    pthread_mutex_unlock(&s->peer_mu);
    return peer;
}

void server_not_ha(struct server *s, const char *job, const char *domain, int level,
                   const char *reason)
{
    alerts__not_ha(s, job, domain, level, reason);
}

int server_record_lost(struct server *s, const json_t *runs, const char *executor,
                       struct ty_err *err)
{
    size_t n = json_array_size(runs);
    if (n == 0)
        return 0;
    struct coord_result *rs = calloc(n, sizeof *rs);
    const struct coord_result **ptrs = calloc(n, sizeof(const struct coord_result *));
    if (rs == NULL || ptrs == NULL) {
        free(rs);
        free(ptrs);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    char why[COORD_ID_MAX + 96];
    snprintf(why, sizeof why,
             "executor %s was lost (its ZooKeeper session expired) while the "
             "run was going",
             executor);
    int64_t now = server_now_ms(s);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(runs, i);
        struct coord_result *r = &rs[k];
        struct store_run *u = &r->run;
        u->run_id = json_string_value(json_object_get(o, "run_id"));
        u->fire_id = json_string_value(json_object_get(o, "fire_id"));
        u->job = json_string_value(json_object_get(o, "job"));
        if (u->run_id == NULL || u->fire_id == NULL || u->job == NULL ||
            store_trigger_parse(json_string_value(json_object_get(o, "trigger")), &u->trigger) != 0)
            continue; /* not a run the store gave: nothing to record */
        u->domain = json_string_value(json_object_get(o, "domain"));
        u->shard = (uint32_t)json_integer_value(json_object_get(o, "shard"));
        u->attempt = (uint32_t)json_integer_value(json_object_get(o, "attempt"));
        u->status = STORE_RUN_LOST;
        u->scheduled_at = json_integer_value(json_object_get(o, "scheduled_at"));
        u->queued_at_ms = json_integer_value(json_object_get(o, "queued_at_ms"));
        u->started_at_ms = json_integer_value(json_object_get(o, "started_at_ms"));
        u->ended_at_ms = now;
        u->pid = json_integer_value(json_object_get(o, "pid"));
        u->pid_start = json_integer_value(json_object_get(o, "pid_start"));
        u->boot_id = json_string_value(json_object_get(o, "boot_id"));
        u->executor = executor;
        u->epoch = json_integer_value(json_object_get(o, "epoch"));
        u->exit_code = -1;
        u->error = why;
        r->kind = COORD_RESULT_RUN;
        r->executor = executor;
        r->phase = COORD_PHASE_ENDED;
        r->settled = !json_is_true(json_object_get(o, "failover"));
        ptrs[k] = r;
        k++;
    }
    int rc = k > 0 ? server_ingest(s, ptrs, k, err) : 0;
    if (rc == 0 && k > 0)
        log_warn("runs lost with their executor recorded", "executor=%s runs=%zu", executor, k);
    free(ptrs);
    free(rs);
    return rc;
}

void server_set_clusters(struct server *s, json_t *(*info)(void *arg), void *arg)
{
    s->clusters_info = info;
    s->clusters_arg = arg;
}

json_t *server_clusters(struct server *s)
{
    json_t *items = s->clusters_info != NULL ? s->clusters_info(s->clusters_arg) : NULL;
    return json_pack("{s:o}", "items", json_is_array(items) ? items : json_array());
}

void server_set_leader(struct server *s, bool leader)
{
    pthread_mutex_lock(&s->peer_mu);
    bool was = s->leader;
    s->leader = leader;
    pthread_mutex_unlock(&s->peer_mu);
    if (leader && !was) {
        server__reload_alerts(s); /* results come here now: their alerts may be another's */
        s->exec_sweep = true;     /* and the executors' rows */
    }
}

const char *server_role(struct server *s)
{
    if (!s->cfg.cluster)
        return "embedded";
    pthread_mutex_lock(&s->peer_mu);
    bool l = s->leader;
    pthread_mutex_unlock(&s->peer_mu);
    return l ? "leader" : "standby";
}

uv_loop_t *server_loop(struct server *s)
{
    return &s->loop;
}

struct store *server_config_lock(struct server *s)
{
    pthread_mutex_lock(&s->config_mu);
    return s->config_writer;
}

void server_config_unlock(struct server *s)
{
    pthread_mutex_unlock(&s->config_mu);
}

/*
 * Readers.  The HTTP layer runs each connection on a thread of its own, so a thread's
 * reader lives as long as one client's connection; opening a SQLite connection (the file,
 * the WAL index, the schema) for each would cost every request a millisecond and more on
 * a busy machine.  A thread hands its reader back to a pool when a request is done (and
 * when it ends), and a new thread takes one from there first.
 */
#define READER_POOL_MAX 32

static struct server *reader_owner; /* the pool's, for the thread-key destructor */

static void reader_free(void *p)
{
    struct server *s = reader_owner;
    if (s != NULL) {
        pthread_mutex_lock(&s->reader_mu);
        if (s->n_pooled < READER_POOL_MAX) {
            s->pooled[s->n_pooled++] = p;
            p = NULL;
        }
        pthread_mutex_unlock(&s->reader_mu);
    }
    store_close(p);
}

void server_reader_release(struct server *s)
{
    struct store *r = pthread_getspecific(s->reader_key);
    if (r == NULL)
        return;
    pthread_setspecific(s->reader_key, NULL);
    reader_free(r);
}

struct store *server_reader(struct server *s, struct ty_err *err)
{
    struct store *r = pthread_getspecific(s->reader_key);
    if (r != NULL)
        return r;
    pthread_mutex_lock(&s->reader_mu);
    if (s->n_pooled > 0)
        r = s->pooled[--s->n_pooled];
    pthread_mutex_unlock(&s->reader_mu);
    if (r == NULL && store_open(s->db, true, &r, err) != 0)
        return NULL;
    pthread_setspecific(s->reader_key, r);
    return r;
}

/* ---------------------------------------------------------------------------------------
 * Messages from API threads
 */

struct smsg *server__msg_new(enum smsg_kind kind)
{
    struct smsg *m = calloc(1, sizeof *m);
    if (m != NULL) {
        m->kind = kind;
        m->refs = 1;
    }
    return m;
}

static void msg_free(struct smsg *m)
{
    for (size_t i = 0; i < m->n_jobs; i++)
        job_free(&m->jobs[i]);
    free(m->jobs);
    free(m->name);
    free(m->text);
    json_decref(m->secrets);
    json_decref(m->reply);
    coord_request_free(m->req);
    json_decref(m->creply.json);
    free(m->creply.data);
    free(m);
}

void server__msg_unref(struct server *s, struct smsg *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&s->mail_mu);
    bool last = --m->refs == 0;
    pthread_mutex_unlock(&s->mail_mu);
    if (last)
        msg_free(m);
}

int server__call(struct server *s, struct smsg *m, int timeout_ms)
{
    m->done = false;
    m->rc = 0;
    ty_err_clear(&m->err);
    pthread_mutex_lock(&s->mail_mu);
    if (s->mail_closed) {
        pthread_mutex_unlock(&s->mail_mu);
        return m->rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
    }
    m->refs++; /* the loop's */
    m->next = NULL;
    if (s->mail_tail != NULL)
        s->mail_tail->next = m;
    else
        s->mail_head = m;
    s->mail_tail = m;
    uv_async_send(&s->mail_async);
    struct timespec ts = clock_deadline(timeout_ms);
    while (!m->done)
        if (pthread_cond_timedwait(&s->mail_cv, &s->mail_mu, &ts) == ETIMEDOUT)
            break;
    int rc;
    if (m->done) {
        rc = m->rc;
    } else {
        /* the loop still holds its reference and answers into the void */
        rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0,
                      "the server did not answer within %d s; the request may still take "
                      "effect",
                      timeout_ms / 1000);
        m->rc = rc;
    }
    pthread_mutex_unlock(&s->mail_mu);
    return rc;
}

/* The loop is done with m: wake its caller, drop the loop's reference. */
static void answer(struct server *s, struct smsg *m)
{
    pthread_mutex_lock(&s->mail_mu);
    m->done = true;
    pthread_cond_broadcast(&s->mail_cv);
    bool last = --m->refs == 0;
    pthread_mutex_unlock(&s->mail_mu);
    if (last)
        msg_free(m);
}

void server__coord_send(struct server *s, const char *executor, struct coord_request *req,
                        coord_cb cb, void *arg)
{
    if (s->coord == NULL) {
        struct coord_reply r = {0};
        r.rc = ty_error(&r.err, TY_EUNAVAIL, NULL, -1, 0, "no executor is connected");
        coord_request_free(req);
        cb(arg, &r);
        return;
    }
    int rc = coord_send(s->coord, executor, req, cb, arg);
    if (rc != 0) {
        struct coord_reply r = {0};
        r.rc = ty_error(&r.err, rc, NULL, -1, 0, "the executor cannot take the request: %s",
                        ty_strerror(rc));
        cb(arg, &r);
    }
}

static struct server *the_server; /* on_sent's, for the one process-wide control plane */

static void on_sent_cb(void *arg, struct coord_reply *reply)
{
    struct smsg *m = arg;
    m->creply = *reply;
    reply->json = NULL;
    reply->data = NULL;
    m->rc = reply->rc;
    m->err = reply->err;
    answer(the_server, m);
}

static void handle(struct server *s, struct smsg *m)
{
    if (s->stopping && m->kind != SMSG_SEND) {
        m->rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
        answer(s, m);
        return;
    }
    switch (m->kind) {
    case SMSG_JOB_CHANGED:
    case SMSG_CALENDAR_CHANGED:
        server__job_changed(s, m);
        answer(s, m);
        return;
    case SMSG_JOBS_CHANGED:
        server__jobs_changed(s, m);
        answer(s, m);
        return;
    case SMSG_ASSIGN:
        server__load_batch(s, m);
        answer(s, m);
        return;
    case SMSG_SEND: {
        struct coord_request *req = m->req;
        m->req = NULL;
        server__coord_send(s, m->executor, req, on_sent_cb, m);
        return;
    }
    case SMSG_CLOCK:
        clock_shift(m->num * 1000000000);
        log_warn("test clock shifted", "offset_s=%lld", (long long)m->num);
        m->reply = json_pack("{s:I}", "offset_s", (json_int_t)m->num);
        answer(s, m);
        return;
    }
}

static void on_mail(uv_async_t *h)
{
    struct server *s = h->data;
    pthread_mutex_lock(&s->mail_mu);
    struct smsg *m = s->mail_head;
    s->mail_head = s->mail_tail = NULL;
    pthread_mutex_unlock(&s->mail_mu);
    while (m != NULL) {
        struct smsg *next = m->next;
        handle(s, m);
        m = next;
    }
}

/* ---------------------------------------------------------------------------------------
 * Downstream fires, resources, retention
 */

static void on_fired(void *arg, struct coord_reply *reply)
{
    char *what = arg;
    if (reply->rc != 0)
        log_error("downstream fire failed", "fire=%s error=\"%s\"", what, reply->err.msg);
    free(what);
}

/* Every shard of fire `base` of job `up` succeeded: fire its downstream jobs. */
static void fire_downstream(struct server *s, const char *up, const char *base, int64_t at)
{
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    char *text = NULL;
    int64_t v;
    if (st == NULL || store_obj_get(st, STORE_JOB, up, &text, &v, &err) != 0) {
        log_warn("an upstream job is gone; its downstream jobs are not fired", "job=%s", up);
        return;
    }
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(o, "downstream"), i, d)
    {
        const char *down = json_string_value(d);
        char *dt = NULL;
        if (down == NULL || store_obj_get(st, STORE_JOB, down, &dt, &v, &err) != 0) {
            log_warn("downstream job does not exist", "job=%s downstream=%s", up, down);
            continue;
        }
        json_t *dobj = json_loads(dt, 0, NULL);
        free(dt);
        bool enabled = !json_is_false(json_object_get(dobj, "enabled"));
        json_decref(dobj);
        if (!enabled) {
            log_info("downstream job is disabled; not fired", "job=%s downstream=%s", up, down);
            continue;
        }
        /* the upstream fire's own suffix too: two fires of the upstream job at one
         * scheduled second (run now, say) are two downstream fires */
        const char *atp = strchr(base, '@');
        const char *up_suffix = atp != NULL ? strchr(atp, '!') : NULL;
        char dbase[STORE_FIRE_ID_MAX];
        int n = snprintf(dbase, sizeof dbase, "%s@%lld!d%s%s", down, (long long)at, up,
                         up_suffix ? up_suffix : "");
        if (n >= (int)sizeof dbase)
            log_warn("downstream fire id cut short (long job names)", "fire=%s", dbase);
        log_info("every shard succeeded; firing downstream", "job=%s fire=%s downstream=%s", up,
                 base, down);
        struct coord_request *req = coord_request_new(COORD_FIRE);
        char *what = strdup(dbase);
        if (req == NULL || what == NULL || (req->fire.job = strdup(down)) == NULL ||
            (req->fire.base = strdup(dbase)) == NULL) {
            coord_request_free(req);
            free(what);
            log_error("out of memory: a downstream fire is not made", "fire=%s", dbase);
            continue;
        }
        req->fire.at = at;
        req->fire.trigger = STORE_TRIGGER_DOWNSTREAM;
        server__coord_send(s, "", req, on_fired, what);
    }
    json_decref(o);
}

static void on_status(void *arg, struct coord_reply *reply)
{
    struct server *s = arg;
    json_t *items = json_array();
    if (reply->rc == 0 && json_is_array(reply->json)) /* a cluster: every executor */
        json_array_extend(items, reply->json);
    else if (reply->rc == 0 && reply->json != NULL)
        json_array_append(items, reply->json);
    if (!s->stopped)
        alerts__resources(s, items);
    pthread_mutex_lock(&s->live_mu);
    json_decref(s->executors);
    s->executors = items;
    pthread_mutex_unlock(&s->live_mu);
}

static void sample_resources(struct server *s)
{
    if (s->stopped)
        return;
    struct coord_request *req = coord_request_new(COORD_STATUS);
    if (req != NULL)
        server__coord_send(s, "", req, on_status, s);
}

static void on_writer(uv_async_t *h)
{
    struct server *s = h->data;
    json_t *fires = server__take_downstream(s);
    size_t i;
    json_t *f;
    json_array_foreach(fires, i, f)
    {
        fire_downstream(s, json_string_value(json_object_get(f, "job")),
                        json_string_value(json_object_get(f, "base")),
                        json_integer_value(json_object_get(f, "at")));
    }
    json_decref(fires);
    sample_resources(s); /* the store's state may have changed */
}

static void on_resource_timer(uv_timer_t *t)
{
    sample_resources(t->data);
}

static void on_retention_timer(uv_timer_t *t)
{
    server__prune(t->data);
}

/* The loop turns: tell the service manager's watchdog so.  A loop stuck in a callback stops
 * these, and the manager restarts the server (WatchdogSec= in the systemd unit). */
static void on_watchdog_timer(uv_timer_t *t)
{
    (void)t;
    notify_send("WATCHDOG=1");
}

/* ---------------------------------------------------------------------------------------
 * Ready, stop
 */

void server__ready(struct server *s)
{
    if (s->ready)
        return;
    if (s->cfg.on_ready != NULL)
        s->cfg.on_ready(s->cfg.hook_arg);
    sample_resources(s); /* first sample: clears what the last process left open, if gone */
    s->ready = true;
    uv_timer_start(&s->resource_timer, on_resource_timer, RESOURCE_MS, RESOURCE_MS);
    uv_timer_start(&s->retention_timer, on_retention_timer, 60000, RETENTION_MS);
    uint64_t wd = notify_watchdog_ms();
    if (wd > 0) {
        uv_timer_start(&s->watchdog_timer, on_watchdog_timer, wd / 2, wd / 2);
        log_info("service watchdog on", "interval_ms=%llu ping_ms=%llu", (unsigned long long)wd,
                 (unsigned long long)(wd / 2));
    }
}

static void begin_stop(struct server *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    notify_send("STOPPING=1");
    log_info("shutting down", "signal=%s grace_s=%u", why, s->cfg.shutdown_grace);
    if (s->cfg.stop_executors != NULL)
        s->cfg.stop_executors(s->cfg.hook_arg, s->cfg.shutdown_grace);
    else
        server_executors_stopped(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_stop(h->data, signum == SIGTERM ? "TERM" : "INT");
}

static uv_async_t stop_async;

static void on_stop_request(uv_async_t *h)
{
    begin_stop(h->data, "request");
}

void server_stop(struct server *s)
{
    uv_async_send(&stop_async);
    (void)s;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static uv_async_t stopped_async;

/* The executors have stopped: answer what is left and let the loop end. */
static void on_stopped(uv_async_t *h)
{
    struct server *s = h->data;
    if (s->stopped)
        return;
    s->stopped = true;
    pthread_mutex_lock(&s->mail_mu);
    s->mail_closed = true;
    struct smsg *m = s->mail_head;
    s->mail_head = s->mail_tail = NULL;
    pthread_mutex_unlock(&s->mail_mu);
    while (m != NULL) {
        struct smsg *next = m->next;
        m->rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
        answer(s, m);
        m = next;
    }
    coord_close(s->coord);
    s->coord = NULL;
    uv_handle_t *mine[] = {
        (uv_handle_t *)&s->mail_async,     (uv_handle_t *)&s->writer_async,
        (uv_handle_t *)&s->sig_term,       (uv_handle_t *)&s->sig_int,
        (uv_handle_t *)&s->resource_timer, (uv_handle_t *)&s->retention_timer,
        (uv_handle_t *)&s->watchdog_timer, (uv_handle_t *)&stop_async,
        (uv_handle_t *)&stopped_async,
    };
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (!uv_is_closing(mine[i]))
            uv_close(mine[i], close_cb);
}

void server__wake(struct server *s)
{
    /* under the mailbox's lock: once it is closed the loop's handles are going away */
    pthread_mutex_lock(&s->mail_mu);
    if (!s->mail_closed)
        uv_async_send(&s->writer_async);
    pthread_mutex_unlock(&s->mail_mu);
}

void server_executors_changed(struct server *s)
{
    server__wake(s); /* the handler samples the resources */
}

void server_executors_stopped(struct server *s)
{
    (void)s;
    uv_async_send(&stopped_async);
}

/* ---------------------------------------------------------------------------------------
 * Open, start, run, close
 */

int server_open(const struct server_config *cfg, struct server **out, struct ty_err *err)
{
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    the_server = s;
    s->cfg = *cfg;
    s->data_dir = strdup(cfg->data_dir);
    s->db = strdup(cfg->db);
    s->token = strdup(cfg->token ? cfg->token : "");
    pthread_mutex_init(&s->mail_mu, NULL);
    pthread_cond_init(&s->mail_cv, NULL);
    pthread_mutex_init(&s->wr_mu, NULL);
    pthread_cond_init(&s->wr_cv, NULL);
    pthread_cond_init(&s->wr_done_cv, NULL);
    pthread_mutex_init(&s->live_mu, NULL);
    pthread_mutex_init(&s->peer_mu, NULL);
    pthread_mutex_init(&s->config_mu, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_cond_init(&s->load_cv, NULL);
    pthread_key_create(&s->reader_key, reader_free);
    pthread_mutex_init(&s->reader_mu, NULL);
    reader_owner = s;
    strmap_init(&s->delivered);
    strmap_init(&s->open_alerts);
    strmap_init(&s->not_ha);
    strmap_init(&s->exec_alerts);
    strmap_init(&s->barriers);
    strmap_init(&s->live_runs);
    strmap_init(&s->live_jobs);
    s->started_ms = server_now_ms(s);
    *out = s;
    if (s->data_dir == NULL || s->db == NULL || s->token == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    int rc;
    if ((rc = store_open(s->db, false, &s->writer, err)) != 0 ||
        (rc = store_open(s->db, false, &s->config_writer, err)) != 0)
        return rc;
    char *epoch = NULL;
    if (store_meta_get(s->writer, "epoch", &epoch, NULL) == 0 && epoch != NULL)
        s->epoch = strtoll(epoch, NULL, 10);
    free(epoch);
    s->epoch++;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)s->epoch);
    if ((rc = store_meta_set(s->writer, "epoch", buf, err)) != 0)
        return rc;
    json_t *open = NULL;
    if ((rc = store_alerts_open(s->writer, &open, err)) != 0)
        return rc;
    size_t i;
    json_t *a;
    json_array_foreach(open, i, a)
    {
        const char *key = json_string_value(json_object_get(a, "key"));
        if (key != NULL)
            strmap_put(&s->open_alerts, key, (void *)1);
        if (key != NULL && strncmp(key, "not_ha:", 7) == 0)
            strmap_put(&s->not_ha, key, (void *)1);
    }
    json_decref(open);

    uv_loop_init(&s->loop);
    s->loop.data = s;
    uv_async_init(&s->loop, &s->mail_async, on_mail);
    uv_async_init(&s->loop, &s->writer_async, on_writer);
    uv_async_init(&s->loop, &stop_async, on_stop_request);
    uv_async_init(&s->loop, &stopped_async, on_stopped);
    s->mail_async.data = s->writer_async.data = stop_async.data = stopped_async.data = s;
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->resource_timer);
    uv_timer_init(&s->loop, &s->retention_timer);
    uv_timer_init(&s->loop, &s->watchdog_timer);
    s->resource_timer.data = s->retention_timer.data = s->watchdog_timer.data = s;
    s->handles_live = true;
    return 0;
}

int server_start(struct server *s, struct coord *c, struct ty_err *err)
{
    s->coord = c;
    int rc = server__writer_start(s, err);
    if (rc != 0)
        return rc;
    return server__assign_all(s, err);
}

int server_run(struct server *s)
{
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return s->exit_status;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

void server_close(struct server *s)
{
    if (s == NULL)
        return;
    server__loader_stop(s);
    server__writer_stop(s);
    coord_close(s->coord);
    s->coord = NULL;
    if (s->handles_live) {
        uv_walk(&s->loop, walk_close, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
    }
    store_close(s->writer);
    store_close(s->config_writer);
    json_decref(s->downstream);
    json_decref(s->executors);
    strmap_clear(&s->live_runs, free);
    strmap_clear(&s->live_jobs, free);
    strmap_clear(&s->delivered, free);
    strmap_free(&s->open_alerts);
    strmap_free(&s->not_ha);
    strmap_free(&s->exec_alerts);
    pthread_key_delete(s->reader_key);
    pthread_mutex_lock(&s->reader_mu);
    reader_owner = NULL;
    for (size_t i = 0; i < s->n_pooled; i++)
        store_close(s->pooled[i]);
    s->n_pooled = 0;
    pthread_mutex_unlock(&s->reader_mu);
    free(s->data_dir);
    free(s->db);
    free(s->token);
    free(s);
    the_server = NULL;
    tzdb_shutdown();
}

/* ---------------------------------------------------------------------------------------
 * For the API: runs and executors, through the loop and the coord
 */

/* Send req to the executor through the loop and wait for the answer (at most CALL_MS).
 * 0 and *reply (the coord's answer, moved to the caller), or the error. */
static int call_executor(struct server *s, const char *executor, struct coord_request *req,
                         struct coord_reply *reply, struct ty_err *err)
{
    memset(reply, 0, sizeof *reply);
    struct smsg *m = server__msg_new(SMSG_SEND);
    if (m == NULL) {
        coord_request_free(req);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    m->req = req;
    snprintf(m->executor, sizeof m->executor, "%s", executor ? executor : "");
    int rc = server__call(s, m, CALL_MS);
    if (rc == 0) {
        *reply = m->creply;
        m->creply.json = NULL;
        m->creply.data = NULL;
    } else if (err != NULL) {
        *err = m->err;
    }
    server__msg_unref(s, m);
    return rc;
}

/*
 * A cluster's executors hand their results to the leader, which may be another server:
 * read-your-writes is then "the store has each of these runs", asked until it has them or
 * the time is up (a run not in the store yet is answered 404 for a moment, nothing worse).
 */
static void wait_runs_stored(struct server *s, const json_t *runs, int timeout_ms)
{
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    size_t i = 0;
    for (int waited = 0; st != NULL && i < json_array_size(runs) && waited < timeout_ms;) {
        const char *id = json_string_value(json_object_get(json_array_get(runs, i), "run_id"));
        json_t *o = NULL;
        if (id == NULL || store_run_get(st, id, &o, &err) == 0) {
            json_decref(o);
            i++;
            continue;
        }
        struct timespec ts = {0, 20L * 1000000};
        nanosleep(&ts, NULL);
        waited += 20;
    }
}

int server_run_now(struct server *s, const char *name, const json_t *shards, json_t **reply,
                   struct ty_err *err)
{
    *reply = NULL;
    /* the job and its shards, checked against its stored definition */
    struct store *st = server_reader(s, err);
    if (st == NULL)
        return err->code;
    char *text = NULL;
    int64_t v;
    int rc = store_obj_get(st, STORE_JOB, name, &text, &v, err);
    if (rc == TY_ENOENT)
        return ty_error(err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", name);
    if (rc != 0)
        return rc;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    json_int_t count = json_integer_value(json_object_get(o, "shards"));
    json_decref(o);
    uint32_t *list = NULL, n = 0;
    if (shards != NULL && !json_is_null(shards)) {
        if (!json_is_array(shards) || json_array_size(shards) == 0)
            return ty_error(err, TY_EINVAL, "shards", -1, 0,
                            "shards: expected a non-empty array of shard numbers");
        list = calloc(json_array_size(shards), sizeof *list);
        if (list == NULL)
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        size_t i;
        json_t *e;
        json_array_foreach(shards, i, e)
        {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) >= count) {
                free(list);
                return ty_error(err, TY_EINVAL, "shards", -1, 0,
                                "shards[%zu]: not a shard of job \"%s\" (0-%lld)", i, name,
                                (long long)count - 1);
            }
            for (uint32_t k = 0; k < n; k++) {
                if (list[k] == (uint32_t)json_integer_value(e)) {
                    free(list);
                    return ty_error(err, TY_EINVAL, "shards", -1, 0,
                                    "shards[%zu]: shard %lld is listed twice", i,
                                    (long long)json_integer_value(e));
                }
            }
            list[n++] = (uint32_t)json_integer_value(e);
        }
    }
    struct coord_request *req = coord_request_new(COORD_FIRE);
    if (req == NULL || (req->fire.job = strdup(name)) == NULL) {
        free(list);
        coord_request_free(req);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    req->fire.trigger = STORE_TRIGGER_MANUAL;
    req->fire.shards = list;
    req->fire.n_shards = n;
    struct coord_reply r;
    if ((rc = call_executor(s, "", req, &r, err)) != 0)
        return rc;
    /* GET /runs/{id} finds them when this answers */
    if (s->cfg.cluster)
        wait_runs_stored(s, json_object_get(r.json, "runs"), STORE_SYNC_MS);
    else
        server__delivered_sync(s, r.executor, r.spool_seq, STORE_SYNC_MS);
    *reply = r.json;
    free(r.data);
    return 0;
}

/* The executor a run is recorded on (the store's word), into id; "" when the store does
 * not know the run yet (the request then goes to every executor, and its own answers). */
static void run_executor(struct server *s, const char *run_id, char *id, size_t cap)
{
    id[0] = '\0';
    struct ty_err err;
    struct store *st = server_reader(s, &err);
    json_t *o = NULL;
    if (st != NULL && store_run_get(st, run_id, &o, &err) == 0) {
        const char *e = json_string_value(json_object_get(o, "executor"));
        snprintf(id, cap, "%s", e != NULL ? e : "");
    }
    json_decref(o);
}

int server_cancel(struct server *s, const char *run_id, json_t **reply, struct ty_err *err)
{
    *reply = NULL;
    struct coord_request *req = coord_request_new(COORD_CANCEL);
    if (req == NULL || (req->name = strdup(run_id)) == NULL) {
        coord_request_free(req);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    char executor[COORD_ID_MAX];
    run_executor(s, run_id, executor, sizeof executor);
    struct coord_reply r;
    int rc = call_executor(s, executor, req, &r, err);
    if (rc != 0)
        return rc;
    if (!s->cfg.cluster) /* a cluster's run ends through the leader, when it does */
        server__delivered_sync(s, r.executor, r.spool_seq, STORE_SYNC_MS);
    *reply = r.json;
    free(r.data);
    return 0;
}

int server_read_output(struct server *s, const char *run_id, uint64_t offset, char *buf, size_t cap,
                       size_t *len, uint64_t *from, uint64_t *total, struct ty_err *err)
{
    *len = 0;
    struct coord_request *req = coord_request_new(COORD_OUTPUT);
    if (req == NULL || (req->name = strdup(run_id)) == NULL) {
        coord_request_free(req);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    req->offset = offset;
    req->max = cap;
    char executor[COORD_ID_MAX];
    run_executor(s, run_id, executor, sizeof executor);
    struct coord_reply r;
    int rc = call_executor(s, executor, req, &r, err);
    if (rc == 0) {
        size_t n = r.data == NULL ? 0 : r.len < cap ? r.len : cap;
        if (n > 0)
            memcpy(buf, r.data, n);
        *len = n;
        *from = r.from;
        *total = r.total;
    }
    json_decref(r.json);
    free(r.data);
    return rc;
}

int server_executors(struct server *s, json_t **out, struct ty_err *err)
{
    *out = NULL;
    struct coord_request *req = coord_request_new(COORD_STATUS);
    if (req == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    struct coord_reply r;
    int rc = call_executor(s, "", req, &r, err);
    if (rc != 0)
        return rc;
    /* the embedded executor answers with itself, a cluster's coordination with them all */
    if (json_is_object(r.json) && json_object_get(r.json, "state") == NULL)
        json_object_set_new(r.json, "state", json_string("online"));
    *out = json_is_array(r.json) ? json_pack("{s:o}", "items", r.json)
                                 : json_pack("{s:[o]}", "items", r.json);
    free(r.data);
    return 0;
}

json_t *server_live_resources(struct server *s)
{
    json_t *rows = json_array();
    /* what the executors' spools hold, as last sampled */
    json_int_t pending = 0, bytes = 0, oldest = 0, dropped = 0;
    bool over = false;
    pthread_mutex_lock(&s->live_mu);
    size_t i;
    json_t *e;
    json_array_foreach(s->executors, i, e)
    {
        json_t *sp = json_object_get(e, "spool");
        pending += json_integer_value(json_object_get(sp, "pending"));
        bytes += json_integer_value(json_object_get(sp, "pending_bytes"));
        dropped += json_integer_value(json_object_get(sp, "dropped_output"));
        over |= json_is_true(json_object_get(sp, "over_limit"));
        json_int_t age = json_integer_value(json_object_get(sp, "oldest_age_ms"));
        oldest = age > oldest ? age : oldest;
    }
    pthread_mutex_unlock(&s->live_mu);
    if (over) {
        char text[256];
        snprintf(text, sizeof text,
                 "spool past its limit: %lld KiB of results not yet in the store; runs are "
                 "recorded without their output (%lld so far)",
                 (long long)(bytes >> 10), (long long)dropped);
        json_array_append_new(rows, json_pack("{s:s, s:s, s:I}", "resource", "spool", "reason",
                                              text, "since_ms", (json_int_t)server_now_ms(s)));
    }
    if (!atomic_load(&s->wr_failing) && !atomic_load(&s->batches_failing))
        return rows;
    char text[TY_ERR_MSG_MAX + 256], error[TY_ERR_MSG_MAX];
    server__get_error(s, error, sizeof error);
    snprintf(text, sizeof text,
             "history store cannot be written: %s; %lld results (%lld KiB) wait in the spool, "
             "the oldest for %lld s, and are written when it can",
             error, (long long)pending, (long long)(bytes >> 10), (long long)(oldest / 1000));
    json_array_append_new(
        rows, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "resource", "store", "reason", text,
                        "since_ms", (json_int_t)atomic_load(&s->failing_since_ms), "pending",
                        pending, "pending_bytes", bytes, "oldest_age_ms", oldest));
    return rows;
}

int server_set_clock(struct server *s, int64_t offset_s, json_t **reply, struct ty_err *err)
{
    struct smsg *m = server__msg_new(SMSG_CLOCK);
    if (m == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    m->num = offset_s;
    int rc = server__call(s, m, CONFIG_CALL_MS);
    if (rc == 0) {
        *reply = m->reply;
        m->reply = NULL;
    } else {
        *err = m->err;
    }
    server__msg_unref(s, m);
    if (rc == 0) {
        struct coord_request *req = coord_request_new(COORD_KICK);
        struct coord_reply r;
        if (req != NULL && call_executor(s, "", req, &r, NULL) == 0) {
            json_decref(r.json);
            free(r.data);
        }
    }
    return rc;
}
