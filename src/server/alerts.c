/*
 * alerts.c - alerts as state changes.
 *
 * Each alert has a key that names its cause ("failed:<job>", "timeout:<run>",
 * "resource:disk"); the set of open keys is the writer thread's, and an alert is written
 * only when it opens, is refreshed or closes, so nothing scans history to find problems.
 * A cause that goes away clears its alert: a job's next success clears its failure, an
 * on-time fire clears its misfire, a run's end clears its timeout alarm, free space
 * returning clears the disk alert.
 *
 * Where the decisions are made.  Alerts about runs follow from the results executors
 * report, so they are decided on the writer thread while it writes those results, and
 * written in the same transaction: whoever reads a failed run also finds its alert.  The
 * decisions collect in an alert_tx, which becomes the open set only when the transaction
 * commits.  Alerts about jobs (not highly available) and resources (disk, memory, the
 * store, the spool, overload) are decided on the loop and sent to the writer as
 * operations.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "../os/log.h"
#include "alerts_tx.h"
#include "server_impl.h"

#define DISK_MIN_BYTES (512ull * 1024 * 1024)
#define DISK_MIN_PCT   5
#define MEM_MIN_PCT    5

/* ---------------------------------------------------------------------------------------
 * Transactions of alert changes (writer thread)
 */

void alerts__tx_init(struct alert_tx *tx)
{
    memset(tx, 0, sizeof *tx);
    strmap_init(&tx->overlay);
}

void alerts__tx_free(struct alert_tx *tx)
{
    for (size_t i = 0; i < tx->n; i++) {
        free(tx->v[i].blob);
        json_decref(tx->v[i].a.detail);
    }
    free(tx->v);
    strmap_free(&tx->overlay);
    memset(tx, 0, sizeof *tx);
}

static bool tx_is_open(struct server *s, struct alert_tx *tx, const char *key)
{
    void *v = strmap_get(&tx->overlay, key);
    if (v != NULL)
        return v == (void *)1;
    return strmap_get(&s->open_alerts, key) != NULL;
}

static size_t need(const char *str)
{
    return str ? strlen(str) + 1 : 0;
}

static const char *put(char **p, const char *str)
{
    if (str == NULL)
        return NULL;
    size_t n = strlen(str) + 1;
    char *dst = *p;
    memcpy(dst, str, n);
    *p += n;
    return dst;
}

char *alerts__copy(const struct store_alert *a, struct store_alert *out)
{
    char *blob =
        malloc(need(a->key) + need(a->kind) + need(a->job) + need(a->domain) + need(a->reason) + 1);
    if (blob == NULL)
        return NULL;
    char *p = blob;
    *out = *a;
    out->key = put(&p, a->key);
    out->kind = put(&p, a->kind);
    out->job = put(&p, a->job);
    out->domain = put(&p, a->domain);
    out->reason = put(&p, a->reason);
    return blob;
}

/* Add a change (a copy of a; a->detail is stolen). */
static void tx_add(struct alert_tx *tx, bool raise, const struct store_alert *a)
{
    if (tx->n == tx->cap) {
        size_t cap = tx->cap ? tx->cap * 2 : 8;
        struct alert_change *v = realloc(tx->v, cap * sizeof *v);
        if (v == NULL) {
            json_decref(a->detail);
            return;
        }
        tx->v = v;
        tx->cap = cap;
    }
    struct alert_change *c = &tx->v[tx->n];
    char *blob =
        malloc(need(a->key) + need(a->kind) + need(a->job) + need(a->domain) + need(a->reason) + 1);
    if (blob == NULL) {
        json_decref(a->detail);
        return;
    }
    char *p = blob;
    c->raise = raise;
    c->a = *a;
    c->a.key = put(&p, a->key);
    c->a.kind = put(&p, a->kind);
    c->a.job = put(&p, a->job);
    c->a.domain = put(&p, a->domain);
    c->a.reason = put(&p, a->reason);
    c->blob = blob;
    strmap_put(&tx->overlay, a->key, raise ? (void *)1 : (void *)2);
    tx->n++;
}

void alerts__tx_raise(struct server *s, struct alert_tx *tx, const struct store_alert *a)
{
    (void)s;
    tx_add(tx, true, a);
}

void alerts__tx_clear(struct server *s, struct alert_tx *tx, const char *key, int64_t at_ms,
                      bool any)
{
    if (!any && !tx_is_open(s, tx, key))
        return;
    struct store_alert a = {.key = key, .raised_at_ms = at_ms, .shard = -1};
    tx_add(tx, false, &a);
}

int alerts__tx_write(struct server *s, struct alert_tx *tx, struct store *st, struct ty_err *err)
{
    (void)s;
    for (size_t i = 0; i < tx->n; i++) {
        const struct alert_change *c = &tx->v[i];
        int rc = c->raise ? store_alert_raise(st, &c->a, err)
                          : store_alert_clear(st, c->a.key, c->a.raised_at_ms, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void alerts__tx_commit(struct server *s, struct alert_tx *tx)
{
    for (size_t i = 0; i < tx->n; i++) {
        const struct alert_change *c = &tx->v[i];
        bool was = strmap_get(&s->open_alerts, c->a.key) != NULL;
        if (c->raise && !was) {
            strmap_put(&s->open_alerts, c->a.key, (void *)1);
            log_warn("alert raised", "key=%s reason=\"%s\"", c->a.key, c->a.reason);
        } else if (!c->raise && was) {
            strmap_del(&s->open_alerts, c->a.key);
            log_info("alert cleared", "key=%s", c->a.key);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Alerts that follow from results (writer thread)
 */

static void raise_job(struct server *s, struct alert_tx *tx, const char *key, const char *kind,
                      const char *job, const char *domain, int level, int32_t shard,
                      int64_t scheduled_at, const char *reason, json_t *detail)
{
    struct store_alert a = {
        key, kind, job, domain, level, 0, shard, scheduled_at, server_now_ms(s), reason, detail};
    alerts__tx_raise(s, tx, &a);
}

void alerts__double_start(struct server *s, struct alert_tx *tx, const struct coord_result *r,
                          const char *why)
{
    const struct store_run *u = &r->run;
    char key[STORE_FIRE_ID_MAX + 32], text[TY_ERR_MSG_MAX + 200];
    snprintf(key, sizeof key, "double:%s/%u", u->fire_id, u->attempt);
    snprintf(text, sizeof text,
             "fire %s (attempt %u) was started twice: the second start, run %s on executor %s "
             "(epoch %lld), was refused by the store (%s)",
             u->fire_id, u->attempt, u->run_id, u->executor ? u->executor : "?",
             (long long)u->epoch, why);
    raise_job(s, tx, key, "double_start", u->job, u->domain, r->job_level, (int32_t)u->shard,
              u->scheduled_at, text,
              json_pack("{s:s, s:s, s:s?, s:I}", "fire_id", u->fire_id, "run_id", u->run_id,
                        "executor", u->executor, "epoch", (json_int_t)u->epoch));
}

void alerts__result(struct server *s, struct alert_tx *tx, const struct coord_result *r)
{
    char key[JOB_NAME_MAX + STORE_ID_MAX + 16], text[640];
    int64_t now = server_now_ms(s);
    if (r->kind == COORD_RESULT_SKIP) {
        const struct store_skip *k = &r->skip;
        snprintf(key, sizeof key, "misfire:%s", k->job);
        if (k->reason == STORE_SKIP_QUEUE_FULL && k->shard >= 0) {
            /* the executor's queue: a resource, raised here so the fire's answer finds it;
             * the loop clears it when the executor says the queue has room */
            snprintf(text, sizeof text, "executor queue full: %s", k->detail ? k->detail : "");
            struct store_alert a = {"resource:queue",
                                    "resource",
                                    NULL,
                                    NULL,
                                    0,
                                    0,
                                    -1,
                                    0,
                                    now,
                                    text,
                                    json_pack("{s:s}", "resource", "queue")};
            alerts__tx_raise(s, tx, &a);
        }
        if (k->reason == STORE_SKIP_MISFIRE) {
            snprintf(text, sizeof text, "fires not started within the misfire threshold: %s",
                     k->detail ? k->detail : "");
            raise_job(s, tx, key, "misfire", k->job, k->domain, r->job_level, -1, k->scheduled_at,
                      text, json_pack("{s:s}", "fire_id", k->fire_id));
        } else if (k->trigger == STORE_TRIGGER_SCHEDULE && k->shard >= 0) {
            alerts__tx_clear(s, tx, key, now, false); /* an on-time fire (its shard skipped) */
        }
        return;
    }
    const struct store_run *u = &r->run;
    if (r->kind == COORD_RESULT_ALARM) {
        snprintf(key, sizeof key, "timeout:%s", u->run_id);
        if (!r->alarm_on) {
            alerts__tx_clear(s, tx, key, now, false);
            return;
        }
        snprintf(text, sizeof text, "shard %u has run longer than its timeout alarm (%u s)",
                 u->shard, r->alarm_s);
        raise_job(s, tx, key, "timeout_alarm", u->job, u->domain, r->job_level, (int32_t)u->shard,
                  u->scheduled_at, text,
                  json_pack("{s:s, s:i, s:I, s:i}", "run_id", u->run_id, "shard", (int)u->shard,
                            "started_at_ms", (json_int_t)u->started_at_ms, "alarm_s",
                            (int)r->alarm_s));
        return;
    }
    if (u->trigger == STORE_TRIGGER_SCHEDULE) {
        snprintf(key, sizeof key, "misfire:%s", u->job);
        alerts__tx_clear(s, tx, key, now, false); /* an on-time fire */
    }
    if (r->phase != COORD_PHASE_ENDED)
        return;
    snprintf(key, sizeof key, "timeout:%s", u->run_id);
    alerts__tx_clear(s, tx, key, now, false);
    snprintf(key, sizeof key, "failed:%s", u->job);
    const char *status = store_run_status_name(u->status);
    if (u->status == STORE_RUN_SUCCEEDED) {
        alerts__tx_clear(s, tx, key, now, false);
        return;
    }
    if (u->status == STORE_RUN_MISFIRED) {
        snprintf(key, sizeof key, "misfire:%s", u->job);
        snprintf(text, sizeof text, "shard %u: %s", u->shard, u->error ? u->error : status);
        raise_job(s, tx, key, "misfire", u->job, u->domain, r->job_level, (int32_t)u->shard,
                  u->scheduled_at, text, json_pack("{s:s}", "run_id", u->run_id));
        return;
    }
    bool unstarted_retry = u->trigger == STORE_TRIGGER_RETRY && u->started_at_ms == 0 &&
                           (u->status == STORE_RUN_FAILED || u->status == STORE_RUN_INTERRUPTED);
    bool failed = u->status == STORE_RUN_FAILED || u->status == STORE_RUN_TIMEOUT ||
                  u->status == STORE_RUN_LOST;
    if (!r->settled || !(failed || unstarted_retry))
        return;
    char why[400];
    if (u->status == STORE_RUN_LOST)
        snprintf(why, sizeof why, "lost: %s", u->error ? u->error : "exit status unknown");
    else
        snprintf(why, sizeof why, "%s",
                 u->error != NULL && u->started_at_ms == 0 ? u->error : status);
    snprintf(text, sizeof text, "shard %u, attempt %u: %s (run %s)", u->shard, u->attempt, why,
             u->run_id);
    raise_job(s, tx, key, u->status == STORE_RUN_LOST ? "lost" : "failed", u->job, u->domain,
              r->job_level, (int32_t)u->shard, u->scheduled_at, text,
              json_pack("{s:s, s:i, s:i}", "run_id", u->run_id, "shard", (int)u->shard, "attempt",
                        (int)u->attempt));
}

/* ---------------------------------------------------------------------------------------
 * Alerts about jobs (loop)
 */

uint64_t alerts__job_defined(struct server *s, const struct job *j)
{
    /* embedded: one executor, so a job that asks for failover cannot have it (a cluster's
     * executors can: this rule is the embedded server's alone) */
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "not_ha:%s", j->name);
    if (j->failover && j->enabled && !s->cfg.cluster) {
        struct store_alert a = {
            key,
            "not_ha",
            j->name,
            j->domain,
            j->level,
            0,
            -1,
            0,
            server_now_ms(s),
            "failover is on but only one executor (the embedded one) can run it",
            NULL};
        strmap_put(&s->not_ha, key, (void *)1);
        return server__raise(s, &a); /* also when open: its domain or level may be new */
    }
    if (s->cfg.cluster)
        return 0; /* the leader's placement says (alerts__not_ha) */
    if (strmap_del(&s->not_ha, key) == NULL)
        return 0; /* nothing open to clear: nothing to write, nothing to wait for */
    return server__clear(s, key);
}

uint64_t alerts__not_ha(struct server *s, const char *job, const char *domain, int level,
                        const char *reason)
{
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "not_ha:%s", job);
    if (reason == NULL) {
        /* raised by this server or by an earlier leader: cleared either way */
        strmap_del(&s->not_ha, key);
        return server__clear_any(s, key);
    }
    struct store_alert a = {key, "not_ha",         job,    domain, level, 0, -1,
                            0,   server_now_ms(s), reason, NULL};
    strmap_put(&s->not_ha, key, (void *)1);
    return server__raise(s, &a);
}

uint64_t alerts__job_removed(struct server *s, const char *name)
{
    static const char *const kinds[] = {"failed:", "misfire:"};
    uint64_t seq = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char key[JOB_NAME_MAX + 16];
        snprintf(key, sizeof key, "%s%s", kinds[i], name);
        seq = server__clear(s, key);
    }
    char key[JOB_NAME_MAX + 16];
    snprintf(key, sizeof key, "not_ha:%s", name);
    if (strmap_del(&s->not_ha, key) != NULL)
        seq = server__clear(s, key);
    return seq;
}

/* ---------------------------------------------------------------------------------------
 * Resources (loop): sampled every few seconds
 */

/* Raise or clear resource `name` when its state changed (or on the first sample); while it
 * stays bad, refresh its figures when `refresh` (not for the store: it cannot be written
 * then).  detail is stolen. */
static void resource(struct server *s, const char *name, bool bad, const char *reason, bool *state,
                     bool refresh, json_t *detail)
{
    char key[64];
    snprintf(key, sizeof key, "resource:%s", name);
    bool first = !s->ready;
    (void)first;
    if (bad && (!*state || first || refresh)) {
        if (detail == NULL)
            detail = json_object();
        json_object_set_new(detail, "resource", json_string(name));
        struct store_alert a = {key, "resource",       NULL,   NULL,  0, 0, -1,
                                0,   server_now_ms(s), reason, detail};
        server__raise(s, &a);
        json_decref(detail);
        detail = NULL;
    } else if (!bad) {
        server__clear(s, key); /* also when it was raised elsewhere (alerts__result) */
    }
    json_decref(detail);
    *state = bad;
}

static long long meminfo(const char *field)
{
    FILE *fp = fopen("/proc/meminfo", "re");
    if (fp == NULL)
        return -1;
    char line[256];
    long long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return v;
}

static int64_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

#define CLOCK_SKEW_MS 2000 /* an executor's clock this far from the ensemble's: a row */

/* One executor row: raised when bad and not raised by us yet, cleared when fine and raised
 * (or on the sweep after this server began leading, when an earlier leader may have). */
static void executor_row(struct server *s, const char *id, const char *what, bool bad, bool sweep,
                         const char *reason)
{
    char key[160], name[140];
    snprintf(key, sizeof key, "resource:executor-%s:%s", what, id);
    snprintf(name, sizeof name, "executor %s", id);
    if (bad && strmap_get(&s->exec_alerts, key) == NULL) {
        json_t *detail =
            json_pack("{s:s, s:s, s:s}", "resource", name, "executor", id, "what", what);
        struct store_alert a = {key, "resource",       NULL,   NULL,  0, 0, -1,
                                0,   server_now_ms(s), reason, detail};
        server__raise(s, &a);
        json_decref(detail);
        strmap_put(&s->exec_alerts, key, (void *)1);
    } else if (!bad && (strmap_del(&s->exec_alerts, key) != NULL || sweep)) {
        server__clear(s, key); /* the writer knows whether it is open */
    }
}

/* A cluster's executors, as the leader sees them: a row for each one lost, and for each one
 * whose clock is more than CLOCK_SKEW_MS off the ensemble's (its fires would be early or
 * late by as much).  Only the leader writes them, so the servers do not race each other. */
static void executor_rows(struct server *s, const json_t *executors)
{
    if (!s->cfg.cluster || strcmp(server_role(s), "leader") != 0)
        return;
    bool sweep = s->exec_sweep;
    s->exec_sweep = false;
    size_t i;
    const json_t *e;
    json_array_foreach(executors, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *state = json_string_value(json_object_get(e, "state"));
        if (id == NULL || state == NULL)
            continue;
        char why[256];
        snprintf(why, sizeof why,
                 "executor %s lost: its ZooKeeper session ended; its shards went to others", id);
        executor_row(s, id, "lost", strcmp(state, "lost") == 0, sweep, why);
        json_int_t off = json_integer_value(json_object_get(e, "clock_offset_ms"));
        bool skewed = strcmp(state, "online") == 0 && (off > CLOCK_SKEW_MS || off < -CLOCK_SKEW_MS);
        snprintf(why, sizeof why,
                 "executor %s: its clock is %lld ms off the ZooKeeper ensemble's (more than %d): "
                 "its fires start that much early or late",
                 id, (long long)off, CLOCK_SKEW_MS);
        executor_row(s, id, "clock", skewed, sweep, why);
    }
}

void alerts__resources(struct server *s, const json_t *executors)
{
    executor_rows(s, executors);
    char text[TY_ERR_MSG_MAX + 256];
    struct statvfs vfs;
    if (statvfs(s->data_dir, &vfs) == 0 && vfs.f_blocks > 0) {
        unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
        unsigned long long pct = 100ull * vfs.f_bavail / vfs.f_blocks;
        snprintf(text, sizeof text, "data directory %s: %llu MiB free (%llu%%)", s->data_dir,
                 avail >> 20, pct);
        resource(s, "disk", avail < DISK_MIN_BYTES || pct < DISK_MIN_PCT, text,
                 &s->resource_disk_low, false, NULL);
    }
    long long total = meminfo("MemTotal"), avail = meminfo("MemAvailable");
    if (total > 0 && avail >= 0) {
        snprintf(text, sizeof text, "memory: %lld MiB available of %lld MiB", avail >> 10,
                 total >> 10);
        resource(s, "memory", avail * 100 < total * MEM_MIN_PCT, text, &s->resource_mem_low, false,
                 NULL);
    }
    /* the store: alert writes or any executor's deliveries failing */
    bool store_bad = atomic_load(&s->wr_failing) != 0 || atomic_load(&s->batches_failing) != 0;
    bool spool_bad = false, overloaded = false;
    const json_t *worst = NULL, *busiest = NULL;
    size_t i;
    const json_t *e;
    json_array_foreach(executors, i, e)
    {
        const json_t *sp = json_object_get(e, "spool");
        if (json_is_true(json_object_get(sp, "failing")) ||
            json_is_true(json_object_get(sp, "disk_failing")))
            store_bad = true, worst = e;
        if (json_is_true(json_object_get(sp, "over_limit")))
            spool_bad = true, worst = worst ? worst : e;
        if (json_is_true(json_object_get(e, "overloaded")))
            overloaded = true, busiest = e;
    }
    const json_t *sp = worst ? json_object_get(worst, "spool") : NULL;
    const char *error = sp ? json_string_value(json_object_get(sp, "error")) : NULL;
    char own[TY_ERR_MSG_MAX];
    server__get_error(s, own, sizeof own);
    snprintf(text, sizeof text,
             "history store cannot be written: %s; %lld results (%lld KiB) wait in the spool, "
             "the oldest for %lld s, and are written when it can",
             error && error[0] ? error : own, (long long)jint(sp, "pending"),
             (long long)(jint(sp, "pending_bytes") >> 10),
             (long long)(jint(sp, "oldest_age_ms") / 1000));
    resource(s, "store", store_bad, text, &s->resource_store, false,
             store_bad ? json_pack("{s:I, s:I, s:I}", "pending", (json_int_t)jint(sp, "pending"),
                                   "pending_bytes", (json_int_t)jint(sp, "pending_bytes"),
                                   "oldest_age_ms", (json_int_t)jint(sp, "oldest_age_ms"))
                       : NULL);
    snprintf(text, sizeof text,
             "spool past its limit: %lld KiB of results not yet in the store; runs are recorded "
             "without their output (%lld so far)",
             (long long)(jint(sp, "pending_bytes") >> 10), (long long)jint(sp, "dropped_output"));
    resource(s, "spool", spool_bad, text, &s->resource_spool, true, NULL);
    const json_t *b = busiest;
    snprintf(
        text, sizeof text,
        "%s: %lld runs waiting (queue max %lld), the oldest for %lld ms; starting %.0f "
        "runs/s against %.0f asked for; %lld runs misfired in the queue so far",
        json_is_true(json_object_get(b, "queue_full")) ? "executor queue full"
                                                       : "executor overloaded",
        (long long)jint(b, "queued"), (long long)jint(b, "queue_max"),
        (long long)jint(b, "oldest_wait_ms"), json_real_value(json_object_get(b, "start_rate")),
        json_real_value(json_object_get(b, "demand_rate")), (long long)jint(b, "queue_misfires"));
    resource(s, "queue", overloaded, text, &s->resource_queue, true,
             overloaded
                 ? json_pack("{s:I, s:I, s:f, s:f, s:I}", "queued", (json_int_t)jint(b, "queued"),
                             "oldest_wait_ms", (json_int_t)jint(b, "oldest_wait_ms"), "start_rate",
                             json_real_value(json_object_get(b, "start_rate")), "demand_rate",
                             json_real_value(json_object_get(b, "demand_rate")), "queue_misfires",
                             (json_int_t)jint(b, "queue_misfires"))
                 : NULL);
}
