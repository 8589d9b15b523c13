/*
 * writer.c - the control plane's writer thread: the one store connection that writes
 * history and alerts, and what is learnt from results.
 *
 * Operations arrive in order from two sides: the loop queues alert changes and pruning
 * (never waiting for them), and executors' sinks hand over batches of results
 * (server_ingest, which waits for its batch).  A batch is one transaction: its results,
 * and the alerts they open or close, so a reader never sees a failed run without its
 * alert.  Only when it has committed does the rest follow: the open alerts, the live
 * table of runs (which the API reads for a job's "running" and "waiting"), the fan-in
 * barriers of fires with downstream jobs (a fire whose shards have all succeeded is
 * handed to the loop to fire its downstream jobs), and the per-executor mark of what has
 * been delivered (which an answer waits for, to read its own writes).
 *
 * Failures.  A batch that fails is rolled back and its error returned: the results stay
 * in the executor's spool and come again, so nothing learnt from them is applied twice in
 * a way that matters (every step above is idempotent by run id or shard).  Alert changes
 * that fail for a reason that passes (disk full, busy, unavailable) are kept and retried
 * every two seconds; the failure is itself an alert (resources, alerts.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../os/clock.h"
#include "../os/log.h"
#include "alerts_tx.h"
#include "server_impl.h"

#define BARRIER_MAX_AGE_MS (48LL * 3600 * 1000) /* a fire that never settles is forgotten */

/* Fan-in state of one fire: which of its shards have settled, and how. */
struct barrier {
    uint32_t shards; /* how many the fire has */
    uint32_t succeeded, failed;
    uint32_t cap;  /* bits in the maps */
    uint8_t *done; /* per shard: 1 succeeded, 2 failed for good */
    int64_t scheduled_at;
    int64_t created_ms;
    char job[JOB_NAME_MAX + 1];
};

static bool retryable(int rc)
{
    return rc == TY_ENOSPC || rc == TY_EIO || rc == TY_EBUSY || rc == TY_EUNAVAIL;
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *ts)
{
    pthread_cond_timedwait(cv, mu, ts);
}

/* ---------------------------------------------------------------------------------------
 * Queueing
 */

static uint64_t push(struct server *s, struct wop *w)
{
    pthread_mutex_lock(&s->wr_mu);
    w->seq = ++s->wr_pushed;
    w->next = NULL;
    if (s->wr_tail != NULL)
        s->wr_tail->next = w;
    else
        s->wr_head = w;
    s->wr_tail = w;
    pthread_cond_signal(&s->wr_cv);
    uint64_t seq = w->seq;
    pthread_mutex_unlock(&s->wr_mu);
    return seq;
}

static uint64_t push_alert(struct server *s, enum wop_kind kind, const struct store_alert *a)
{
    struct wop *w = calloc(1, sizeof *w);
    if (w == NULL || (w->blob = alerts__copy(a, &w->alert)) == NULL) {
        free(w);
        log_error("out of memory: an alert change is lost", "key=%s", a->key);
        return 0;
    }
    w->kind = kind;
    w->alert.detail = a->detail ? json_deep_copy(a->detail) : NULL;
    return push(s, w);
}

uint64_t server__raise(struct server *s, const struct store_alert *a)
{
    return push_alert(s, W_ALERT, a);
}

uint64_t server__clear(struct server *s, const char *key)
{
    struct store_alert a = {.key = key, .shard = -1, .raised_at_ms = server_now_ms(s)};
    return push_alert(s, W_CLEAR, &a);
}

uint64_t server__clear_any(struct server *s, const char *key)
{
    struct store_alert a = {.key = key, .shard = -1, .raised_at_ms = server_now_ms(s)};
    return push_alert(s, W_CLEAR_ANY, &a);
}

uint64_t server__reload_alerts(struct server *s)
{
    struct wop *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->kind = W_RELOAD;
    return push(s, w);
}

uint64_t server__prune(struct server *s)
{
    struct wop *w = calloc(1, sizeof *w);
    if (w == NULL)
        return 0;
    w->kind = W_PRUNE;
    return push(s, w);
}

void server__set_error(struct server *s, const char *msg)
{
    pthread_mutex_lock(&s->wr_mu);
    snprintf(s->wr_error, sizeof s->wr_error, "%s", msg);
    pthread_mutex_unlock(&s->wr_mu);
}

void server__get_error(struct server *s, char *buf, size_t cap)
{
    pthread_mutex_lock(&s->wr_mu);
    snprintf(buf, cap, "%s", s->wr_error);
    pthread_mutex_unlock(&s->wr_mu);
}

void server__writer_sync(struct server *s, uint64_t seq, int timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);
    pthread_mutex_lock(&s->wr_mu);
    while (s->wr_committed < seq && !atomic_load(&s->wr_failing) && !s->wr_stop &&
           s->writer_running)
        if (pthread_cond_timedwait(&s->wr_done_cv, &s->wr_mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->wr_mu);
}

static uint64_t delivered_of(struct server *s, const char *executor)
{
    const uint64_t *v = strmap_get(&s->delivered, executor);
    return v != NULL ? *v : 0;
}

void server__delivered_sync(struct server *s, const char *executor, uint64_t seq, int timeout_ms)
{
    struct timespec ts = clock_deadline(timeout_ms);
    pthread_mutex_lock(&s->wr_mu);
    while (delivered_of(s, executor) < seq && !atomic_load(&s->batches_failing) && !s->wr_stop)
        if (pthread_cond_timedwait(&s->wr_done_cv, &s->wr_mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->wr_mu);
}

json_t *server__take_downstream(struct server *s)
{
    pthread_mutex_lock(&s->wr_mu);
    json_t *d = s->downstream;
    s->downstream = NULL;
    pthread_mutex_unlock(&s->wr_mu);
    return d;
}

int server_ingest(void *arg, const struct coord_result *const *results, size_t n,
                  struct ty_err *err)
{
    struct server *s = arg;
    pthread_cond_t cv;
    pthread_cond_init(&cv, NULL);
    struct wop w;
    memset(&w, 0, sizeof w);
    w.kind = W_BATCH;
    w.results = results;
    w.n = n;
    w.cv = &cv;
    pthread_mutex_lock(&s->wr_mu);
    if (s->wr_stop || !s->writer_running) {
        pthread_mutex_unlock(&s->wr_mu);
        pthread_cond_destroy(&cv);
        return ty_error(err, TY_EUNAVAIL, NULL, -1, 0, "the server is stopping");
    }
    w.seq = ++s->wr_pushed;
    if (s->wr_tail != NULL)
        s->wr_tail->next = &w;
    else
        s->wr_head = &w;
    s->wr_tail = &w;
    pthread_cond_signal(&s->wr_cv);
    while (!w.done)
        pthread_cond_wait(&cv, &s->wr_mu);
    pthread_mutex_unlock(&s->wr_mu);
    pthread_cond_destroy(&cv);
    if (w.rc != 0 && err != NULL)
        *err = w.err;
    return w.rc;
}

/* ---------------------------------------------------------------------------------------
 * Live state and fan-in (writer thread)
 */

static void live_count(struct server *s, const char *job, enum coord_phase phase, int delta)
{
    if (phase != COORD_PHASE_WAITING && phase != COORD_PHASE_QUEUED && phase != COORD_PHASE_RUNNING)
        return;
    struct live_job *lj = strmap_get(&s->live_jobs, job);
    if (lj == NULL) {
        if (delta < 0 || (lj = calloc(1, sizeof *lj)) == NULL)
            return;
        if (strmap_put(&s->live_jobs, job, lj) != 0) {
            free(lj);
            return;
        }
    }
    uint32_t *c = phase == COORD_PHASE_WAITING ? &lj->waiting : &lj->running;
    if (delta > 0)
        (*c)++;
    else if (*c > 0)
        (*c)--;
    if (lj->running == 0 && lj->waiting == 0)
        free(strmap_del(&s->live_jobs, job));
}

/* A run's new phase, in the table the API reads. */
static void live_update(struct server *s, const struct coord_result *r)
{
    const struct store_run *u = &r->run;
    pthread_mutex_lock(&s->live_mu);
    struct live_run *lr = strmap_get(&s->live_runs, u->run_id);
    if (lr != NULL && lr->phase == COORD_PHASE_ENDED) {
        pthread_mutex_unlock(&s->live_mu);
        return;
    }
    if (lr != NULL)
        live_count(s, lr->job, lr->phase, -1);
    if (r->phase == COORD_PHASE_ENDED) {
        free(strmap_del(&s->live_runs, u->run_id));
    } else {
        if (lr == NULL && (lr = calloc(1, sizeof *lr)) != NULL) {
            snprintf(lr->job, sizeof lr->job, "%s", u->job);
            if (strmap_put(&s->live_runs, u->run_id, lr) != 0) {
                free(lr);
                lr = NULL;
            }
        }
        if (lr != NULL) {
            lr->phase = r->phase;
            live_count(s, lr->job, lr->phase, +1);
        }
    }
    pthread_mutex_unlock(&s->live_mu);
}

static void barrier_free(struct barrier *b)
{
    if (b != NULL)
        free(b->done);
    free(b);
}

static struct barrier *barrier_get(struct server *s, const char *base, const char *job,
                                   uint32_t shards, int64_t at)
{
    struct barrier *b = strmap_get(&s->barriers, base);
    if (b != NULL || shards == 0)
        return b;
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->shards = shards;
    b->scheduled_at = at;
    b->created_ms = server_now_ms(s);
    snprintf(b->job, sizeof b->job, "%s", job);
    if (strmap_put(&s->barriers, base, b) != 0) {
        barrier_free(b);
        return NULL;
    }
    return b;
}

/* Shard `shard` of the fire settled (1 succeeded, 2 failed for good); true when the
 * barrier is done with (and freed): *fire says whether downstream jobs fire. */
static bool barrier_settle(struct barrier *b, uint32_t shard, uint8_t how, bool *fire)
{
    *fire = false;
    if (shard >= b->cap) {
        uint32_t cap = shard + 1 > b->shards ? shard + 1 : b->shards;
        uint8_t *d = realloc(b->done, cap);
        if (d == NULL)
            return false;
        memset(d + b->cap, 0, cap - b->cap);
        b->done = d;
        b->cap = cap;
    }
    if (b->done[shard] != 0)
        return false; /* seen already (a result delivered again) */
    b->done[shard] = how;
    if (how == 1)
        b->succeeded++;
    else
        b->failed++;
    if (b->succeeded >= b->shards) {
        *fire = true;
        return true;
    }
    return b->succeeded + b->failed >= b->shards;
}

/* A fire's base: its fire id without the shard ("<job>@<t>[!suffix]"). */
static void base_of(const char *fire_id, char *out, size_t cap)
{
    snprintf(out, cap, "%s", fire_id);
    char *h = strrchr(out, '#');
    if (h != NULL)
        *h = '\0';
}

static void fan_in(struct server *s, const struct coord_result *r, json_t *fire_list)
{
    if (!r->downstream || !r->settled)
        return;
    char base[STORE_FIRE_ID_MAX];
    const char *job;
    uint32_t shard;
    int64_t at;
    uint8_t how;
    if (r->kind == COORD_RESULT_SKIP) {
        base_of(r->skip.fire_id, base, sizeof base);
        if (r->skip.shard < 0) { /* the whole fire did not run */
            barrier_free(strmap_del(&s->barriers, base));
            return;
        }
        job = r->skip.job;
        shard = (uint32_t)r->skip.shard;
        at = r->skip.scheduled_at;
        how = 2;
    } else if (r->kind == COORD_RESULT_RUN && r->phase == COORD_PHASE_ENDED) {
        base_of(r->run.fire_id, base, sizeof base);
        job = r->run.job;
        shard = r->run.shard;
        at = r->run.scheduled_at;
        how = r->run.status == STORE_RUN_SUCCEEDED ? 1 : 2;
    } else {
        return;
    }
    struct barrier *b = barrier_get(s, base, job, r->fire_shards, at);
    bool fire = false;
    if (b == NULL || !barrier_settle(b, shard, how, &fire))
        return;
    if (fire)
        json_array_append_new(fire_list, json_pack("{s:s, s:s, s:I}", "job", b->job, "base", base,
                                                   "at", (json_int_t)b->scheduled_at));
    barrier_free(strmap_del(&s->barriers, base));
}

static void barriers_sweep(struct server *s)
{
    int64_t cutoff = server_now_ms(s) - BARRIER_MAX_AGE_MS;
    json_t *old = json_array();
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&s->barriers, &pos, &key, &val))
        if (((struct barrier *)val)->created_ms < cutoff)
            json_array_append_new(old, json_string(key));
    size_t i;
    json_t *k;
    json_array_foreach(old, i, k)
    {
        barrier_free(strmap_del(&s->barriers, json_string_value(k)));
    }
    json_decref(old);
}

/* ---------------------------------------------------------------------------------------
 * Operations (writer thread)
 */

/* A batch of results: one transaction with the alerts they imply. */
static void do_batch(struct server *s, struct wop *w)
{
    struct ty_err err;
    ty_err_clear(&err);
    struct alert_tx tx;
    alerts__tx_init(&tx);
    int rc = store_begin(s->writer, &err);
    size_t dup = 0;
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        const struct coord_result *r = w->results[i];
        int r1 = 0;
        if (r->kind == COORD_RESULT_RUN)
            r1 = store_run_put(s->writer, &r->run, &err);
        else if (r->kind == COORD_RESULT_SKIP)
            r1 = store_skip_put(s->writer, &r->skip, &err);
        if (r1 == TY_EEXIST) {
            /* that fire was made already under another run id: the first stays, and this
             * is a fire started twice - an operator must hear of it */
            dup++;
            log_error("a fire was started twice; the second start is not recorded", "error=\"%s\"",
                      err.msg);
            alerts__double_start(s, &tx, r, err.msg);
            continue;
        }
        if (r1 != 0)
            rc = r1;
        else
            alerts__result(s, &tx, r);
    }
    if (rc == 0)
        rc = alerts__tx_write(s, &tx, s->writer, &err);
    if (rc == 0)
        rc = store_commit(s->writer, &err);
    if (rc != 0) {
        store_rollback(s->writer);
        alerts__tx_free(&tx);
        if (!atomic_exchange(&s->batches_failing, 1)) {
            atomic_store(&s->failing_since_ms, server_now_ms(s));
            log_error("history store refuses results; they wait in the spool", "error=\"%s\"",
                      err.msg);
            server__wake(s);
        }
        server__set_error(s, err.msg);
        w->rc = rc;
        w->err = err;
        return;
    }
    alerts__tx_commit(s, &tx);
    alerts__tx_free(&tx);
    if (atomic_exchange(&s->batches_failing, 0)) {
        log_info("history store takes results again", "results=%zu", w->n);
        server__wake(s);
    }
    json_t *fires = json_array();
    uint64_t last = 0;
    const char *executor = NULL;
    for (size_t i = 0; i < w->n; i++) {
        const struct coord_result *r = w->results[i];
        if (r->kind == COORD_RESULT_RUN)
            live_update(s, r);
        fan_in(s, r, fires);
        if (r->seq > last)
            last = r->seq;
        if (r->executor != NULL)
            executor = r->executor;
    }
    pthread_mutex_lock(&s->wr_mu);
    if (executor != NULL && last > delivered_of(s, executor)) {
        uint64_t *v = strmap_get(&s->delivered, executor);
        if (v == NULL && (v = malloc(sizeof *v)) != NULL &&
            strmap_put(&s->delivered, executor, v) != 0) {
            free(v);
            v = NULL;
        }
        if (v != NULL)
            *v = last;
    }
    if (json_array_size(fires) > 0) {
        if (s->downstream == NULL)
            s->downstream = json_array();
        json_array_extend(s->downstream, fires);
    }
    pthread_mutex_unlock(&s->wr_mu);
    if (json_array_size(fires) > 0)
        server__wake(s);
    json_decref(fires);
    (void)dup;
}

/* Consecutive alert changes: one transaction.  Returns 0, or the store's code (the ops are
 * then the caller's to keep or drop). */
static int do_alerts(struct server *s, struct wop *first, struct wop *end, struct ty_err *err)
{
    struct alert_tx tx;
    alerts__tx_init(&tx);
    for (struct wop *w = first; w != end; w = w->next) {
        if (w->kind == W_ALERT) {
            struct store_alert a = w->alert;
            a.detail = json_incref(w->alert.detail);
            alerts__tx_raise(s, &tx, &a);
        } else {
            alerts__tx_clear(s, &tx, w->alert.key, w->alert.raised_at_ms, w->kind == W_CLEAR_ANY);
        }
    }
    int rc = tx.n == 0 ? 0 : store_begin(s->writer, err);
    if (tx.n > 0 && rc == 0)
        rc = alerts__tx_write(s, &tx, s->writer, err);
    if (tx.n > 0 && rc == 0)
        rc = store_commit(s->writer, err);
    if (rc != 0)
        store_rollback(s->writer);
    else
        alerts__tx_commit(s, &tx);
    alerts__tx_free(&tx);
    return rc;
}

/* The open alerts as the store has them now (the writer thread owns the set). */
static void do_reload(struct server *s)
{
    json_t *open = NULL;
    struct ty_err err;
    if (store_alerts_open(s->writer, &open, &err) != 0) {
        log_warn("cannot read the open alerts; those another server raised clear when it does",
                 "error=\"%s\"", err.msg);
        return;
    }
    strmap_free(&s->open_alerts);
    strmap_init(&s->open_alerts);
    size_t i;
    json_t *a;
    json_array_foreach(open, i, a)
    {
        const char *key = json_string_value(json_object_get(a, "key"));
        if (key != NULL)
            strmap_put(&s->open_alerts, key, (void *)1);
    }
    log_info("open alerts read again", "alerts=%zu", json_array_size(open));
    json_decref(open);
}

static void do_prune(struct server *s)
{
    struct ty_err err;
    int64_t removed = 0;
    int64_t older = server_now_ms(s) - (int64_t)s->cfg.retention_days * 86400000;
    if (store_prune(s->writer, older, s->cfg.retention_runs, &removed, &err) != 0)
        log_error("history pruning failed; tried again in an hour", "error=\"%s\"", err.msg);
    else if (removed > 0)
        log_info("history pruned", "rows=%lld retention_days=%u retention_runs=%u",
                 (long long)removed, s->cfg.retention_days, s->cfg.retention_runs);
    barriers_sweep(s);
}

static void free_op(struct wop *w)
{
    if (w->kind == W_BATCH)
        return; /* the sink's, on its stack */
    free(w->blob);
    json_decref(w->alert.detail);
    free(w);
}

static void *writer_main(void *arg)
{
    struct server *s = arg;
    struct wop *retry = NULL; /* alert changes to write again, in order */
    pthread_mutex_lock(&s->wr_mu);
    for (;;) {
        if (retry != NULL && s->wr_head == NULL && !s->wr_stop) {
            struct timespec ts = clock_deadline(2000);
            wait_until(&s->wr_cv, &s->wr_mu, &ts);
        }
        while (s->wr_head == NULL && retry == NULL && !s->wr_stop)
            pthread_cond_wait(&s->wr_cv, &s->wr_mu);
        if (s->wr_stop && s->wr_head == NULL)
            break;
        /* the ops to do: those kept for a retry first, then the new ones */
        struct wop *ops = s->wr_head;
        s->wr_head = s->wr_tail = NULL;
        if (retry != NULL) {
            struct wop *t = retry;
            while (t->next != NULL)
                t = t->next;
            t->next = ops;
            ops = retry;
            retry = NULL;
        }
        pthread_mutex_unlock(&s->wr_mu);

        struct wop *keep_tail = NULL;
        uint64_t done_seq = 0;
        while (ops != NULL) {
            struct wop *w = ops;
            if (w->kind == W_BATCH) {
                ops = w->next;
                do_batch(s, w);
                pthread_mutex_lock(&s->wr_mu);
                w->done = true;
                pthread_cond_signal(w->cv);
                pthread_cond_broadcast(&s->wr_done_cv);
                pthread_mutex_unlock(&s->wr_mu);
                continue;
            }
            if (w->kind == W_RELOAD) {
                ops = w->next;
                do_reload(s);
                done_seq = w->seq;
                free_op(w);
                continue;
            }
            if (w->kind == W_PRUNE) {
                ops = w->next;
                do_prune(s);
                done_seq = w->seq;
                free_op(w);
                continue;
            }
            /* a run of alert changes */
            struct wop *end = w;
            while (end != NULL &&
                   (end->kind == W_ALERT || end->kind == W_CLEAR || end->kind == W_CLEAR_ANY))
                end = end->next;
            struct ty_err err;
            int rc = do_alerts(s, w, end, &err);
            bool keep = rc != 0 && retryable(rc) && !s->wr_stop;
            if (rc != 0 && !keep)
                log_error("alert change dropped: the store refuses it", "error=\"%s\"", err.msg);
            if (keep && !atomic_exchange(&s->wr_failing, 1)) {
                atomic_store(&s->failing_since_ms, server_now_ms(s));
                log_error("alerts cannot be written; retried", "error=\"%s\"", err.msg);
                server__set_error(s, err.msg);
                server__wake(s);
            }
            if (!keep && rc == 0 && atomic_exchange(&s->wr_failing, 0)) {
                log_info("alerts written again", "pending=%d", 0);
                server__wake(s);
            }
            while (w != end) {
                struct wop *next = w->next;
                if (keep) {
                    w->next = NULL;
                    if (keep_tail != NULL)
                        keep_tail->next = w;
                    else
                        retry = w;
                    keep_tail = w;
                } else {
                    done_seq = w->seq;
                    free_op(w);
                }
                w = next;
            }
            ops = end;
        }
        pthread_mutex_lock(&s->wr_mu);
        if (done_seq > s->wr_committed)
            s->wr_committed = done_seq;
        pthread_cond_broadcast(&s->wr_done_cv);
    }
    s->writer_running = false;
    pthread_cond_broadcast(&s->wr_done_cv);
    pthread_mutex_unlock(&s->wr_mu);
    while (retry != NULL) {
        struct wop *next = retry->next;
        free_op(retry);
        retry = next;
    }
    return NULL;
}

int server__writer_start(struct server *s, struct ty_err *err)
{
    s->writer_running = true;
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        s->writer_running = false;
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot start the writer thread");
    }
    return 0;
}

void server__writer_stop(struct server *s)
{
    pthread_mutex_lock(&s->wr_mu);
    bool running = s->writer_running;
    s->wr_stop = true;
    pthread_cond_broadcast(&s->wr_cv);
    pthread_mutex_unlock(&s->wr_mu);
    if (running)
        pthread_join(s->writer_thread, NULL);
    /* ops left (the writer stopped with them queued) */
    struct wop *w = s->wr_head;
    s->wr_head = s->wr_tail = NULL;
    while (w != NULL) {
        struct wop *next = w->next;
        if (w->kind == W_BATCH) {
            w->rc = ty_error(&w->err, TY_EUNAVAIL, NULL, -1, 0, "the server is stopping");
            w->done = true;
            pthread_cond_signal(w->cv);
        } else {
            free_op(w);
        }
        w = next;
    }
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&s->barriers, &pos, &key, &val))
        barrier_free(val);
    strmap_free(&s->barriers);
}
