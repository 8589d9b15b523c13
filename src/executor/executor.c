/*
 * executor.c - the executor's life: its threads, its mailbox, its status.
 *
 * Threads.  The loop thread owns the runtime (jobs, runs, timers, the capacity queue);
 * the trigger engine thread owns the wheel and hands due fires over a ring; the spool
 * thread makes results durable and delivers them.  Requests arrive from any thread
 * through submit: those that only read files or counters (a run's output, the status)
 * are answered at once on the caller's thread, so an overloaded loop never delays them;
 * the others go through the mailbox to the loop, which answers when it gets to them.
 *
 * Start.  The loop starts with the previous process's runs still unreconciled: it needs
 * their jobs' definitions to know whether to adopt or kill them, and those come with the
 * first full set of assignments.  Until then the trigger engine is not started and
 * fire/cancel requests wait, so nothing can start a shard that may still be running.
 *
 * Fence.  executor_fence sets a flag at once, on the caller's thread, so the loop starts
 * nothing from that moment (a cluster executor's lease has ended); the loop then kills
 * what the jobs say to kill, and unfences when told: shards.c has the rules.
 *
 * Stop.  No more fires; queued runs are recorded interrupted; running ones get the grace,
 * then their groups are killed; then the spool gets a few seconds to hand everything to
 * the store, and the loop ends.
 */
#define _GNU_SOURCE
#include "executor_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../os/clock.h"
#include "../os/file.h"
#include "../os/log.h"

#define SPOOL_DRAIN_MS 5000 /* at stop: how long the spool may keep delivering */

/* ---------------------------------------------------------------------------------------
 * Clock, results
 */

static int64_t now_ns(const struct executor *x)
{
    return x->cfg.now_ns != NULL ? x->cfg.now_ns(x->cfg.now_arg) : clock_wall_ns();
}

int64_t executor__now(const struct executor *x)
{
    return now_ns(x) / 1000000000;
}

int64_t executor__now_ms(const struct executor *x)
{
    return now_ns(x) / 1000000;
}

static int64_t clock_cb(void *arg)
{
    return now_ns(arg);
}

void executor__result(struct executor *x, struct coord_result *r)
{
    r->executor = x->id;
    if (r->kind == COORD_RESULT_RUN || r->kind == COORD_RESULT_ALARM)
        r->run.executor = x->id;
    spool_append(x->spool, r);
}

/* ---------------------------------------------------------------------------------------
 * The id
 */

int executor_load_id(const char *data_dir, char *id, size_t cap, struct ty_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/executor-id", data_dir);
    char line[128];
    int rc = file_read_line(path, line, sizeof line, err);
    if (rc == 0) {
        if (!coord_id_ok(line) || strlen(line) >= cap)
            return ty_error(err, TY_EFORMAT, NULL, -1, 0,
                            "%s does not hold an executor id (letters, digits, '.', '_', '-'; "
                            "at most %d); delete it to have a new one made",
                            path, COORD_ID_MAX - 1);
        snprintf(id, cap, "%s", line);
        return 0;
    }
    if (rc != TY_ENOENT)
        return rc;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    host[strcspn(host, ".")] = '\0';
    char clean[40];
    size_t k = 0;
    for (const char *p = host; *p != '\0' && k < sizeof clean - 1; p++)
        clean[k++] = coord_id_ok((char[]){*p, 0}) ? *p : '-';
    clean[k] = '\0';
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    char made[COORD_ID_MAX];
    snprintf(made, sizeof made, "%s-%08x", k > 0 ? clean : "executor", r);
    char text[COORD_ID_MAX + 2];
    int n = snprintf(text, sizeof text, "%s\n", made);
    rc = file_write_atomic(path, text, (size_t)n, 0644, true, err);
    if (rc != 0)
        return rc;
    snprintf(id, cap, "%s", made);
    log_info("executor id made", "id=%s path=%s", made, path);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Status: answered on the caller's thread from counters
 */

static json_t *status_json(struct executor *x)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct spool_status sp;
    spool_status(x->spool, &sp);
    pthread_mutex_lock(&x->status_mu);
    double start_rate = x->start_rate, demand_rate = x->demand_rate;
    pthread_mutex_unlock(&x->status_mu);
    bool overloaded = atomic_load(&x->overloaded), queue_full = atomic_load(&x->queue_full);
    int64_t now = executor__now_ms(x);
    json_t *spool = json_pack(
        "{s:I, s:I, s:I, s:b, s:b, s:b, s:I, s:s}", "pending", (json_int_t)sp.pending,
        "pending_bytes", (json_int_t)sp.pending_bytes, "oldest_age_ms",
        (json_int_t)(sp.oldest_ms > 0 && now > sp.oldest_ms ? now - sp.oldest_ms : 0), "failing",
        sp.failing, "disk_failing", sp.disk_failing, "over_limit", sp.over_limit, "dropped_output",
        (json_int_t)sp.dropped_output, "error", sp.error);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:s, s:b, s:I, s:I, s:f, s:f, s:I, s:b, s:b, "
        "s:i, s:o}",
        "id", x->id, "host", host, "kind", x->kind, "capacity", (int)x->cfg.max_runs, "running",
        (int)atomic_load(&x->n_running), "queued", (int)atomic_load(&x->q_len), "waiting",
        (int)atomic_load(&x->n_waiting), "epoch", (json_int_t)atomic_load(&x->epoch), "version",
        TETHYS_VERSION, "available", !x->stopping, "started_at_ms", (json_int_t)x->started_ms,
        "oldest_wait_ms", (json_int_t)atomic_load(&x->oldest_wait_ms), "start_rate", start_rate,
        "demand_rate", demand_rate, "queue_misfires", (json_int_t)atomic_load(&x->queue_misfires),
        "overloaded", overloaded || queue_full, "queue_full", queue_full, "queue_max",
        (int)x->cfg.queue_max, "spool", spool);
    json_object_set_new(o, "fenced", json_boolean(atomic_load(&x->fenced)));
    return o;
}

/* ---------------------------------------------------------------------------------------
 * The mailbox
 */

static int post(struct executor *x, struct xmail *m)
{
    pthread_mutex_lock(&x->mail_mu);
    if (x->mail_closed) {
        pthread_mutex_unlock(&x->mail_mu);
        return TY_EUNAVAIL;
    }
    m->next = NULL;
    if (x->mail_tail != NULL)
        x->mail_tail->next = m;
    else
        x->mail_head = m;
    x->mail_tail = m;
    pthread_mutex_unlock(&x->mail_mu);
    uv_async_send(&x->mail_async);
    return 0;
}

static int submit(void *arg, struct coord_request *req)
{
    struct executor *x = arg;
    switch (req->kind) {
    case COORD_OUTPUT: executor__read_output(x, req); return 0;
    case COORD_STATUS:
        req->reply.json = status_json(x);
        req->reply.spool_seq = spool_last_seq(x->spool);
        req->done(req);
        return 0;
    case COORD_KICK:
        if (x->sched != NULL)
            sched_kick(x->sched);
        req->done(req);
        return 0;
    default: break;
    }
    struct xmail *m = calloc(1, sizeof *m);
    if (m == NULL)
        return TY_ENOMEM;
    m->req = req;
    int rc = post(x, m);
    if (rc != 0)
        free(m);
    return rc;
}

void executor_member(struct executor *x, struct coord_member *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", x->id);
    out->submit = submit;
    out->arg = x;
}

static void answer(struct executor *x, struct coord_request *req)
{
    req->reply.spool_seq = spool_last_seq(x->spool);
    req->done(req);
}

static void refuse(struct executor *x, struct coord_request *req, const char *why)
{
    req->reply.rc = ty_error(&req->reply.err, TY_EUNAVAIL, NULL, -1, 0, "%s", why);
    answer(x, req);
}

static void assign(struct executor *x, struct coord_request *req)
{
    json_t *failed = json_array();
    if (req->epoch > atomic_load(&x->epoch))
        atomic_store(&x->epoch, req->epoch);
    /* the full set being given: this request and the ones since the last full set (those
     * not marked complete); the jobs held that are not part of it go when it is complete */
    uint32_t set = x->sync + 1;
    /* where the shards this request moves change hands (shards.c: "through") */
    int64_t cut = executor__cut(x, req, set);
    if (req->complete)
        x->sync = set;
    for (size_t i = 0; i < req->n_assign; i++) {
        struct ty_err err;
        ty_err_clear(&err);
        const struct coord_assignment *a = &req->assign[i];
        if (executor__assign(x, a, cut, &err) != 0)
            json_array_append_new(failed, json_pack("{s:s, s:s}", "job", a->job, "error", err.msg));
        /* as held (compact or not): looking it up must not parse it */
        struct xjob *j = a->definition ? strmap_get(&x->jobs, a->job) : NULL;
        if (j != NULL)
            j->sync = set;
        if (a->epoch > atomic_load(&x->epoch))
            atomic_store(&x->epoch, a->epoch);
    }
    if (req->complete) {
        /* jobs held but not part of this full set are no longer ours */
        json_t *gone = json_array();
        size_t pos = 0;
        const char *key;
        void *val;
        while (strmap_next(&x->jobs, &pos, &key, &val))
            if (((struct xjob *)val)->sync != x->sync)
                json_array_append_new(gone, json_string(key));
        size_t i;
        json_t *name;
        json_array_foreach(gone, i, name)
        {
            struct coord_assignment none = {.job = (char *)json_string_value(name)};
            executor__assign(x, &none, cut, NULL);
        }
        json_decref(gone);
        if (!x->reconciled) {
            executor__recover(x);
            x->reconciled = true;
            struct ty_err err;
            if (sched_start(x->sched, &err) != 0)
                log_error("cannot start the trigger engine; nothing fires", "error=\"%s\"",
                          err.msg);
            executor__run_deferred(x);
        }
    }
    req->reply.json = json_pack("{s:o, s:I}", "failed", failed, "through", (json_int_t)cut);
    if (atomic_load(&x->fenced)) /* nothing was made meanwhile: "through" is only the cut */
        json_object_set_new(req->reply.json, "fenced", json_true());
    answer(x, req);
}

/* One request on the loop. */
static void handle(struct executor *x, struct xmail *m)
{
    struct coord_request *req = m->req;
    if (m->kind == XMAIL_STOP) {
        executor__shutdown(x, m->grace_s);
        return;
    }
    if (m->kind == XMAIL_FENCE || m->kind == XMAIL_UNFENCE) {
        executor__fence_apply(x, m->kind == XMAIL_FENCE);
        return;
    }
    if (x->stopping && req->kind != COORD_ASSIGN && req->kind != COORD_CALENDAR) {
        refuse(x, req,
               x->noun[0] == 's' ? "the server is shutting down" : "the executor is stopping");
        return;
    }
    switch (req->kind) {
    case COORD_ASSIGN: assign(x, req); return;
    case COORD_CALENDAR:
        executor__calendar(x, req->name, req->definition);
        answer(x, req);
        return;
    case COORD_FIRE:
    case COORD_CANCEL:
        if (!x->reconciled) {
            /* held until the previous process's runs are reconciled: see the top */
            struct xmail *copy = malloc(sizeof *copy);
            if (copy == NULL) {
                refuse(x, req, "out of memory");
                return;
            }
            *copy = *m;
            copy->next = NULL;
            if (x->deferred_tail != NULL)
                x->deferred_tail->next = copy;
            else
                x->deferred = copy;
            x->deferred_tail = copy;
            return;
        }
        if (req->kind == COORD_FIRE)
            executor__fire(x, req);
        else
            executor__cancel(x, req);
        return;
    default:
        req->reply.rc = ty_error(&req->reply.err, TY_EINVAL, NULL, -1, 0,
                                 "request %d is not one an executor takes", (int)req->kind);
        answer(x, req);
    }
}

void executor__run_deferred(struct executor *x)
{
    struct xmail *m = x->deferred;
    x->deferred = x->deferred_tail = NULL;
    while (m != NULL) {
        struct xmail *next = m->next;
        handle(x, m);
        free(m);
        m = next;
    }
}

static void on_mail(uv_async_t *h)
{
    struct executor *x = h->data;
    pthread_mutex_lock(&x->mail_mu);
    struct xmail *m = x->mail_head;
    x->mail_head = x->mail_tail = NULL;
    pthread_mutex_unlock(&x->mail_mu);
    while (m != NULL) {
        struct xmail *next = m->next;
        handle(x, m);
        free(m);
        m = next;
    }
}

void executor__drain_fires(struct executor *x)
{
    struct sched_fire batch[256];
    size_t n;
    while ((n = sched_take(x->sched, batch, 256)) > 0)
        for (size_t i = 0; i < n; i++)
            executor__on_fire(x, &batch[i]);
}

static void on_sched(uv_async_t *h)
{
    executor__drain_fires(h->data);
}

static void sched_wake(void *arg)
{
    struct executor *x = arg;
    uv_async_send(&x->sched_async);
}

void executor__status_changed(struct executor *x)
{
    if (x->cfg.changed != NULL)
        x->cfg.changed(x->cfg.changed_arg);
}

static void spool_changed(void *arg)
{
    executor__status_changed(arg);
}

/* Every 250 ms: the figures an operator reads (start rate against demand, over the last
 * five seconds: fires come in bursts on whole seconds) and the queue's misfires (runs that
 * waited past their job's threshold). */
static void on_status_timer(uv_timer_t *t)
{
    struct executor *x = t->data;
    int64_t now = executor__now_ms(x);
    struct rate_sample cur = {now, atomic_load(&x->starts), atomic_load(&x->demand)};
    size_t n = sizeof x->rates / sizeof x->rates[0];
    const struct rate_sample *old = &x->rates[x->rate_next >= n ? x->rate_next % n : 0];
    if (x->rate_next >= 4 && now > old->at_ms) { /* a second of samples at least */
        double secs = (double)(now - old->at_ms) / 1000.0;
        pthread_mutex_lock(&x->status_mu);
        x->start_rate = (double)(cur.starts - old->starts) / secs;
        x->demand_rate = (double)(cur.demand - old->demand) / secs;
        pthread_mutex_unlock(&x->status_mu);
    }
    x->rates[x->rate_next++ % n] = cur;
    if (!atomic_load(&x->fenced)) /* fenced, queued runs stay queued (shards.c) */
        executor__expire_queue(x);
    executor__gaps_sweep(x, false);
    /* overloaded: runs misfired in the queue in the last 5 s, or the oldest queued run has
     * waited more than 2 s; it ends 5 s after the last sign (a full queue is its own flag,
     * cleared as soon as the queue is half empty) */
    if (atomic_load(&x->oldest_wait_ms) > 2000)
        x->overload_seen_ms = now;
    bool over = x->overload_seen_ms > 0 && now - x->overload_seen_ms < 5000;
    if (over != atomic_load(&x->overloaded)) {
        atomic_store(&x->overloaded, over);
        log_warn(over ? "executor overloaded" : "executor no longer overloaded",
                 "queued=%u oldest_wait_ms=%lld start_rate=%.0f demand_rate=%.0f",
                 (unsigned)atomic_load(&x->q_len), (long long)atomic_load(&x->oldest_wait_ms),
                 x->start_rate, x->demand_rate);
        executor__status_changed(x);
    }
}

/* ---------------------------------------------------------------------------------------
 * Start and stop
 */

int executor_new(const struct executor_config *cfg, struct executor **out, struct ty_err *err)
{
    if (cfg->id == NULL || !coord_id_ok(cfg->id) || cfg->data_dir == NULL || cfg->deliver == NULL ||
        cfg->max_runs == 0 || cfg->max_jobs == 0)
        return ty_error(err, TY_EINVAL, NULL, -1, 0,
                        "executor: an id, a data directory, a sink and capacities are needed");
    struct executor *x = calloc(1, sizeof *x);
    if (x == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    x->cfg = *cfg;
    snprintf(x->id, sizeof x->id, "%s", cfg->id);
    snprintf(x->boot_id, sizeof x->boot_id, "%s", cfg->boot_id ? cfg->boot_id : "");
    x->data_dir = strdup(cfg->data_dir);
    x->kind = strdup(cfg->kind ? cfg->kind : "standalone");
    x->noun = cfg->kind != NULL && strcmp(cfg->kind, "embedded") == 0 ? "server" : "executor";
    size_t n = strlen(cfg->data_dir) + 8;
    x->runs_dir = malloc(n);
    pthread_mutex_init(&x->mail_mu, NULL);
    pthread_mutex_init(&x->status_mu, NULL);
    strmap_init(&x->jobs);
    strmap_init(&x->calendars);
    strmap_init(&x->runs);
    x->started_ms = executor__now_ms(x);
    if (x->data_dir == NULL || x->kind == NULL || x->runs_dir == NULL) {
        executor_free(x);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    snprintf(x->runs_dir, n, "%s/runs", cfg->data_dir);
    if (mkdir(x->runs_dir, 0700) != 0 && errno != EEXIST) {
        int rc = ty_error(err, TY_EIO, NULL, -1, 0, "cannot create %s: %s", x->runs_dir,
                          strerror(errno));
        executor_free(x);
        return rc;
    }
    char spool_dir[4200];
    snprintf(spool_dir, sizeof spool_dir, "%s/spool", cfg->data_dir);
    struct spool_config sc = {
        .dir = spool_dir,
        .max_bytes = cfg->spool_max ? cfg->spool_max : 256ull * 1024 * 1024,
        .deliver = cfg->deliver,
        .deliver_arg = cfg->deliver_arg,
        .changed = spool_changed,
        .changed_arg = x,
    };
    struct spool_recovered rec;
    int rc = spool_open(&sc, &x->spool, &rec, err);
    if (rc != 0) {
        executor_free(x);
        return rc;
    }
    x->recovered = rec.unfinished;
    x->last_fires = rec.last_fires;
    if (rec.undelivered > 0 || rec.lost_bytes > 0 || json_array_size(rec.unfinished) > 0)
        log_info("spool read back", "undelivered=%llu unfinished_runs=%zu unreadable_bytes=%llu",
                 (unsigned long long)rec.undelivered, json_array_size(rec.unfinished),
                 (unsigned long long)rec.lost_bytes);
    struct sched_config scfg = {65536, cfg->max_jobs, sched_wake, x, clock_cb, x};
    if ((rc = sched_new(&scfg, &x->sched, err)) != 0) {
        executor_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

static void loop_main(void *arg)
{
    struct executor *x = arg;
    uv_run(&x->loop, UV_RUN_DEFAULT);
}

int executor_start(struct executor *x, struct ty_err *err)
{
    uv_loop_init(&x->loop);
    x->loop.data = x;
    x->loop_live = true;
    uv_async_init(&x->loop, &x->mail_async, on_mail);
    uv_async_init(&x->loop, &x->sched_async, on_sched);
    x->mail_async.data = x->sched_async.data = x;
    uv_timer_init(&x->loop, &x->status_timer);
    x->status_timer.data = x;
    uv_timer_start(&x->status_timer, on_status_timer, 250, 250);
    executor__outputs_start(x);
    int rc = spool_start(x->spool, err);
    if (rc != 0)
        return rc;
    if (uv_thread_create(&x->thread, loop_main, x) != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot start the executor's thread");
    x->thread_live = true;
    log_info("executor started", "id=%s max_runs=%u data=%s", x->id, x->cfg.max_runs, x->data_dir);
    return 0;
}

uint32_t executor_running(struct executor *x)
{
    return atomic_load(&x->n_running);
}

void executor_set_lease(struct executor *x, int64_t until_ns)
{
    atomic_store(&x->lease_until_ns, until_ns);
}

bool executor__lease_check(struct executor *x)
{
    if (atomic_load(&x->fenced))
        return true;
    int64_t until = atomic_load(&x->lease_until_ns);
    if (until == 0)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec < until)
        return false;
    log_warn("the lease has run out: fenced before starting anything", "id=%s", x->id);
    executor_fence(x, true);
    return true;
}

void executor_fence(struct executor *x, bool fenced)
{
    if (fenced) /* at once: the loop starts nothing from here on (shards.c) */
        atomic_store(&x->fenced, true);
    struct xmail *m = x->thread_live ? calloc(1, sizeof *m) : NULL;
    if (m != NULL) {
        m->kind = fenced ? XMAIL_FENCE : XMAIL_UNFENCE;
        if (post(x, m) == 0)
            return;
        free(m); /* stopped: there is nothing left to kill or resume */
    } else if (x->thread_live) {
        log_error("out of memory: a fence change is not applied by the loop", "id=%s fenced=%d",
                  x->id, fenced);
        return;
    }
    if (!fenced)
        atomic_store(&x->fenced, false);
}

void executor_stop(struct executor *x, uint32_t grace_s, void (*done)(void *arg), void *arg)
{
    if (!x->thread_live) { /* never started: nothing runs */
        done(arg);
        return;
    }
    struct xmail *m = calloc(1, sizeof *m);
    if (m == NULL) {
        log_error("out of memory: cannot ask the executor to stop", "id=%s", x->id);
        return;
    }
    m->kind = XMAIL_STOP;
    m->grace_s = grace_s;
    x->on_stopped = done;
    x->on_stopped_arg = arg;
    if (post(x, m) != 0) {
        free(m);
        done(arg); /* stopped already */
    }
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

void executor__stopped(struct executor *x)
{
    if (!spool_drain(x->spool, SPOOL_DRAIN_MS)) {
        struct spool_status st;
        spool_status(x->spool, &st);
        log_warn("stopping with results not yet in the store; the next start delivers them",
                 "pending=%llu", (unsigned long long)st.pending);
    }
    pthread_mutex_lock(&x->mail_mu);
    x->mail_closed = true;
    struct xmail *m = x->mail_head;
    x->mail_head = x->mail_tail = NULL;
    pthread_mutex_unlock(&x->mail_mu);
    while (m != NULL) { /* answer what came in meanwhile */
        struct xmail *next = m->next;
        if (m->req != NULL)
            refuse(x, m->req,
                   x->noun[0] == 's' ? "the server is shutting down" : "the executor has stopped");
        free(m);
        m = next;
    }
    struct xmail *d = x->deferred;
    x->deferred = x->deferred_tail = NULL;
    while (d != NULL) {
        struct xmail *next = d->next;
        refuse(x, d->req,
               x->noun[0] == 's' ? "the server is shutting down" : "the executor has stopped");
        free(d);
        d = next;
    }
    sched_stop(x->sched);
    uv_handle_t *mine[] = {
        (uv_handle_t *)&x->mail_async,   (uv_handle_t *)&x->sched_async,
        (uv_handle_t *)&x->status_timer, (uv_handle_t *)&x->recycle_timer,
        (uv_handle_t *)&x->sweep_timer,
    };
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (!uv_is_closing(mine[i]))
            uv_close(mine[i], close_cb);
    if (x->grace_live && !uv_is_closing((uv_handle_t *)&x->grace_timer))
        uv_close((uv_handle_t *)&x->grace_timer, close_cb);
    if (x->pump_live && !uv_is_closing((uv_handle_t *)&x->pump_idle))
        uv_close((uv_handle_t *)&x->pump_idle, close_cb);
    log_info("executor stopped", "id=%s", x->id);
    if (x->on_stopped != NULL)
        x->on_stopped(x->on_stopped_arg);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

void executor_free(struct executor *x)
{
    if (x == NULL)
        return;
    if (x->thread_live) {
        uv_thread_join(&x->thread);
        x->thread_live = false;
    }
    if (x->sched != NULL)
        sched_free(x->sched);
    if (x->loop_live) {
        uv_walk(&x->loop, walk_close, NULL);
        uv_run(&x->loop, UV_RUN_DEFAULT);
        uv_loop_close(&x->loop);
    }
    executor__gaps_sweep(x, true);
    spool_close(x->spool);
    json_decref(x->recovered);
    json_decref(x->last_fires);
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&x->calendars, &pos, &key, &val)) {
        calendar_free(val);
        free(val);
    }
    strmap_free(&x->calendars);
    executor__jobs_free(x);
    strmap_free(&x->runs);
    free(x->by_id);
    free(x->free_ids);
    free(x->pool);
    free(x->recycle);
    free(x->data_dir);
    free(x->runs_dir);
    free(x->kind);
    pthread_mutex_destroy(&x->mail_mu);
    pthread_mutex_destroy(&x->status_mu);
    free(x);
}
