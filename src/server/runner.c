/*
 * runner.c - from a fire to finished runs: the embedded executor.
 *
 * A fire is checked against the job's dates, pause windows and calendars (a fire that
 * does not run is recorded with its reason), then split into one run per shard.  Each run
 * meets the overlap policy (skip / queue behind the shard's previous run / run in
 * parallel), then the executor's capacity: runs beyond it wait in one FIFO queue, oldest
 * first, and the wait is recorded.  A started run is watched for its timeout (kill the
 * group: TERM, then KILL after the job's grace) and its timeout alarm (an alert, no kill).
 * When it ends: its result and the tail of its output go to the store, failures are
 * retried with backoff up to the job's limit, and when every shard of a fire has
 * succeeded the downstream jobs fire (a fan-in barrier).
 *
 * Identities.  A fire id names one (job, shard, scheduled time) and stays the same across
 * retries and restarts: "<job>@<epoch-seconds>#<shard>", with "!m<run>" after the time
 * for a run-now and "!d<upstream job><upstream suffix>" for a downstream fire.  A run id
 * names one attempt: 16 hex digits, random, also the span id of the run's W3C traceparent.
 *
 * Order of writes.  A run is recorded queued when accepted, running (with its pid and the
 * process start time) right after the spawn, and final when it ends; a retry is recorded
 * queued when it is planned, before the end of the attempt that failed, so a reader of that
 * end finds the retry (retry_run_id).  A fire at or before the last one the job made is
 * not made again (the clock went back).  After a kill -9 the next server finds queued and
 * running rows, looks for their processes (by pid and start time, or by TETHYS_RUN_ID in
 * /proc/<pid>/environ for a crash between spawn and the running row), and kills or adopts
 * each as its job says (an adopted run keeps its timeout): a shard is never started twice.
 *
 * Secrets.  A job's secret_env values are in its runs' environment and nowhere else the
 * runner writes: before a run's output tail is recorded, every occurrence of one of the
 * values the run was given is replaced by "********" (core/mask.c).  If that cannot be
 * done (no memory), the run is recorded without output rather than with the values.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../core/civil.h"
#include "../os/log.h"
#include "server_impl.h"

/* Fan-in state of one fire: how many of its shards have succeeded. */
struct fire_state {
    uint32_t shards;
    uint32_t succeeded;
    uint32_t pending; /* runs of this fire not finished for good */
    int64_t scheduled_at;
    char job[JOB_NAME_MAX + 1];
};

#define WAITING_PER_SHARD_MAX 1000

/* ---------------------------------------------------------------------------------------
 * Ids
 */

static uint64_t rand64(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) {
        static uint64_t seq = 0x9e3779b97f4a7c15u;
        x = (seq += 0x9e3779b97f4a7c15u) ^ (uint64_t)getpid();
    }
    return x;
}

static void new_run_id(char out[STORE_ID_MAX])
{
    snprintf(out, STORE_ID_MAX, "%016llx", (unsigned long long)rand64());
}

static void new_trace_id(char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)rand64(), (unsigned long long)rand64());
}

/* "<job>@<at>" plus a suffix: the fire id is this base, '#', the shard. */
static void fire_base(char *out, size_t cap, const char *job, int64_t at, const char *suffix)
{
    snprintf(out, cap, "%s@%lld%s", job, (long long)at, suffix ? suffix : "");
}

/* The base of a fire id (everything before the last '#'). */
static void base_of(const char *fire_id, char *out, size_t cap)
{
    snprintf(out, cap, "%s", fire_id);
    char *h = strrchr(out, '#');
    if (h != NULL)
        *h = '\0';
}

/* ---------------------------------------------------------------------------------------
 * Records
 */

static void record_run(struct server *s, const struct srun *r, enum store_run_status st,
                       int exit_code, int sig, const char *output, size_t output_len,
                       const char *error, int64_t ended_ms)
{
    struct store_run sr = {
        .run_id = r->run_id,
        .fire_id = r->fire_id,
        .job = r->job->def.name,
        .domain = r->job->def.domain,
        .shard = r->shard,
        .attempt = r->attempt,
        .trigger = r->trigger,
        .status = st,
        .scheduled_at = r->scheduled_at,
        .queued_at_ms = r->queued_at_ms,
        .started_at_ms = r->started_at_ms,
        .ended_at_ms = ended_ms,
        .pid = r->pid,
        .pid_start = (int64_t)r->pid_start,
        .boot_id = server__boot_id(s),
        .executor = SERVER_EXECUTOR_ID,
        .epoch = server__epoch(s),
        .exit_code = exit_code,
        .signal = sig,
        .output = output,
        .output_len = output_len,
        .error = error,
    };
    server__store_run(s, &sr);
}

static void record_skip(struct server *s, struct sjob *j, const char *fire_id, int32_t shard,
                        int64_t at, enum store_skip_reason why, const char *detail,
                        enum store_trigger trigger)
{
    struct store_skip k = {fire_id,           j->def.name, j->def.domain, shard,  at,
                           server__now_ms(s), why,         detail,        trigger};
    server__store_skip(s, &k);
    log_info("fire skipped", "job=%s shard=%d fire=%s reason=%s", j->def.name, shard, fire_id,
             store_skip_reason_name(why));
}

/*
 * The output tail as it is recorded: out[0..*len) with the secret values hidden (into sb
 * when there are any).  skipped > 0: earlier output is gone, so the tail may begin inside
 * a value.  On failure the run is recorded without output (*len 0), never unmasked.
 */
static const char *masked_tail(const struct srun *r, const struct mask_set *masks, const char *out,
                               size_t *len, uint64_t skipped, struct strbuf *sb)
{
    if (masks == NULL || *len == 0)
        return out;
    if (mask_apply(masks, out, *len, skipped > 0, sb) != 0) {
        log_error("out of memory while hiding secrets; the run's output is not recorded", "run=%s",
                  r->run_id);
        *len = 0;
        return NULL;
    }
    const char *p = sb->buf;
    *len = sb->len;
    const size_t most = (size_t)STORE_OUTPUT_MAX;
    if (*len > most) { /* masks are longer than short values: keep the tail */
        p += *len - most;
        *len = most;
    }
    return p;
}

static void output_path(struct server *s, const char *run_id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/runs/%s.out", server__data_dir(s), run_id);
}

/* ---------------------------------------------------------------------------------------
 * The executor queue
 */

static void q_push(struct server *s, struct srun *r)
{
    r->next = NULL;
    r->prev = s->q_tail;
    if (s->q_tail != NULL)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->q_len++;
}

static void q_unlink(struct server *s, struct srun *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->q_head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        s->q_tail = r->prev;
    r->next = r->prev = NULL;
    s->q_len--;
}

static void start_run(struct server *s, struct srun *r);
static bool dispatch_run(struct server *s, struct srun *r);

/* Start queued runs while there is capacity. */
static void pump(struct server *s)
{
    while (!s->stopping && s->q_head != NULL && s->n_running < s->opts.max_runs) {
        struct srun *r = s->q_head;
        q_unlink(s, r);
        start_run(s, r);
    }
    if (s->resource_queue_full && s->q_len <= s->opts.queue_max / 2)
        alerts_resources(s); /* the queue has room again: the alert clears now */
}

/* ---------------------------------------------------------------------------------------
 * Ending a run
 */

static void free_run(struct server *s, struct srun *r)
{
    strmap_del(&s->runs, r->run_id);
    struct sjob *j = r->job;
    mask_set_unref(r->masks);
    free(r);
    jobs_release(s, j);
}

/* Both timers must be closed before the run is freed; libuv does not promise the order
 * of close callbacks, so count them. */
static void timer_closed(uv_handle_t *h)
{
    struct srun *r = h->data;
    if (--r->closing == 0)
        free_run(server__of_loop(h->loop), r);
}

/* Leave the runtime: counts, overlap queue, barrier; free once the timers are closed. */
static void retire(struct server *s, struct srun *r, bool counted)
{
    struct sjob *j = r->job;
    if (counted && r->shard < j->shard_cap && j->running[r->shard] > 0)
        j->running[r->shard]--;
    r->state = SRUN_ENDED;
    /* the next run waiting behind this shard goes now */
    if (!s->stopping && r->shard < j->shard_cap && j->waiting_head[r->shard] != NULL &&
        j->running[r->shard] == 0) {
        struct srun *w = j->waiting_head[r->shard];
        j->waiting_head[r->shard] = w->wnext;
        j->waiting--;
        w->wnext = NULL;
        dispatch_run(s, w);
    }
    if (r->timers_live) {
        uv_timer_stop(&r->timeout_timer);
        uv_timer_stop(&r->alarm_timer);
        r->closing = 2;
        uv_close((uv_handle_t *)&r->timeout_timer, timer_closed);
        uv_close((uv_handle_t *)&r->alarm_timer, timer_closed);
    } else {
        free_run(s, r);
    }
    pump(s);
    if (s->stopping && s->n_running == 0 && s->on_drained != NULL) {
        void (*done)(struct server *) = s->on_drained;
        s->on_drained = NULL;
        uv_timer_stop(&s->grace_timer);
        done(s);
    }
}

static void fire_downstream(struct server *s, struct fire_state *fs, const char *base);

static void barrier_update(struct server *s, struct srun *r, bool succeeded, bool final)
{
    char base[STORE_FIRE_ID_MAX];
    base_of(r->fire_id, base, sizeof base);
    struct fire_state *fs = strmap_get(&s->fires, base);
    if (fs == NULL)
        return;
    if (succeeded)
        fs->succeeded++;
    if (final && fs->pending > 0)
        fs->pending--;
    if (fs->succeeded == fs->shards) {
        strmap_del(&s->fires, base);
        fire_downstream(s, fs, base);
        free(fs);
    } else if (fs->pending == 0) {
        strmap_del(&s->fires, base); /* some shard failed for good: no downstream */
        free(fs);
    }
}

static void schedule_retry(struct server *s, struct srun *r);

static void on_exit_cb(struct exec_run *proc, const struct exec_result *res, void *arg)
{
    struct srun *r = arg;
    struct server *s = server__of_loop(NULL);
    struct sjob *j = r->job;
    (void)proc;
    r->proc = NULL;
    s->n_running--;

    enum store_run_status st;
    const char *error = NULL;
    if (r->final != 0)
        st = r->final;
    else if (res->unknown)
        st = STORE_RUN_LOST, error = "the run outlived a server restart; its exit status is "
                                     "unknown";
    else if (res->exit_code == 0)
        st = STORE_RUN_SUCCEEDED;
    else
        st = STORE_RUN_FAILED;

    char path[4096];
    output_path(s, r->run_id, path, sizeof path);
    size_t cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
    char *out = malloc(cap);
    size_t len = 0;
    uint64_t skipped = 0;
    struct ty_err err;
    if (out == NULL || exec_read_tail(path, cap, out, &len, &skipped, &err) != 0)
        len = 0;
    struct strbuf masked;
    sb_init(&masked);
    const char *shown = masked_tail(r, r->masks, out, &len, skipped, &masked);
    bool retry = (st == STORE_RUN_FAILED || st == STORE_RUN_TIMEOUT) && !s->stopping &&
                 r->attempt <= j->def.retries && !j->deleted;
    /* the retry is recorded (queued) before this run's end, so whoever reads the end finds
     * the retry named (retry_run_id): `job run --wait` follows it */
    if (retry)
        schedule_retry(s, r);
    /* ended on the server's clock, like started_at (res->ended_ms is the plain wall clock) */
    record_run(s, r, st, res->exit_code, res->signal, shown, len, error, server__now_ms(s));
    sb_free(&masked);
    free(out);
    server__output_done(s, r->run_id);
    log_info("run ended", "job=%s shard=%u run=%s status=%s exit=%d signal=%d attempt=%u",
             j->def.name, r->shard, r->run_id, store_run_status_name(st), res->exit_code,
             res->signal, r->attempt);

    if (r->alarm_raised)
        alerts_timeout(s, r, false);
    if (st == STORE_RUN_SUCCEEDED) {
        alerts_job_ok(s, j);
        barrier_update(s, r, true, true);
    } else if (!retry) {
        if (st != STORE_RUN_CANCELED && st != STORE_RUN_INTERRUPTED)
            alerts_job_failed(s, j, r, store_run_status_name(st));
        barrier_update(s, r, false, true);
    }
    retire(s, r, true);
}

/* ---------------------------------------------------------------------------------------
 * Starting a run
 */

static void on_timeout(uv_timer_t *t)
{
    struct srun *r = t->data;
    if (r->proc == NULL)
        return;
    r->final = STORE_RUN_TIMEOUT;
    log_warn("run timed out; killing its process group", "job=%s run=%s timeout_s=%u",
             r->job->def.name, r->run_id, r->job->def.timeout);
    exec_kill(r->proc, r->job->def.kill_grace * 1000);
}

static void on_alarm(uv_timer_t *t)
{
    struct srun *r = t->data;
    if (r->proc == NULL || r->alarm_raised)
        return;
    r->alarm_raised = true;
    alerts_timeout(server__of_loop(t->loop), r, true);
}

/* Watch a running run's timeout and timeout alarm, elapsed_ms into the run. */
static void arm_timers(struct server *s, struct srun *r, int64_t elapsed_ms)
{
    const struct job *d = &r->job->def;
    uv_timer_init(&s->loop, &r->timeout_timer);
    uv_timer_init(&s->loop, &r->alarm_timer);
    r->timeout_timer.data = r->alarm_timer.data = r;
    r->timers_live = true;
    /* libuv counts timeouts from the loop's cached time, taken when this iteration began;
     * without a refresh a run started late in a busy iteration is killed that much early */
    uv_update_time(&s->loop);
    int64_t e = elapsed_ms > 0 ? elapsed_ms : 0;
    int64_t kill_in = (int64_t)d->timeout * 1000 - e,
            alarm_in = (int64_t)d->timeout_alarm * 1000 - e;
    if (d->timeout > 0)
        uv_timer_start(&r->timeout_timer, on_timeout, (uint64_t)(kill_in > 0 ? kill_in : 0), 0);
    if (d->timeout_alarm > 0 && !r->alarm_raised)
        uv_timer_start(&r->alarm_timer, on_alarm, (uint64_t)(alarm_in > 0 ? alarm_in : 0), 0);
}

/* NULL-terminated environment for a run: a minimal base, the job's own, Tethys's. */
static char **build_env(struct server *s, const struct srun *r, struct strbuf *sb)
{
    const struct job *d = &r->job->def;
    char when[CIVIL_RFC3339_MAX];
    struct tz_info ti;
    tz_lookup(r->job->zone, r->scheduled_at, &ti);
    civil_format_rfc3339(r->scheduled_at, ti.utoff, when);
    const char *home = getenv("HOME");
    /* each entry NUL-terminated in one buffer, pointers made afterwards */
    sb_addf(sb, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin%c", 0);
    sb_addf(sb, "HOME=%s%c", d->user ? "/" : (home ? home : "/"), 0);
    sb_addf(sb, "SHELL=/bin/sh%c", 0);
    sb_addf(sb, "LANG=C.UTF-8%c", 0);
    sb_addf(sb, "TZ=%s%c", d->time_zone, 0);
    if (d->user != NULL)
        sb_addf(sb, "USER=%s%cLOGNAME=%s%c", d->user, 0, d->user, 0);
    for (size_t i = 0; i < d->n_env; i++)
        sb_addf(sb, "%s=%s%c", d->env[i].name, d->env[i].value, 0);
    for (size_t i = 0; i < d->n_secret_env; i++) /* the real values: see jobs.c */
        sb_addf(sb, "%s=%s%c", d->secret_env[i].name, d->secret_env[i].value, 0);
    sb_addf(sb, "TETHYS_JOB=%s%c", d->name, 0);
    sb_addf(sb, "TETHYS_DOMAIN=%s%c", d->domain, 0);
    sb_addf(sb, "TETHYS_SHARD=%u%c", r->shard, 0);
    sb_addf(sb, "TETHYS_SHARD_COUNT=%u%c", d->shards, 0);
    const char *sp = r->shard < d->shards && d->shard_params ? d->shard_params[r->shard] : NULL;
    sb_addf(sb, "TETHYS_SHARD_PARAM=%s%c", sp ? sp : "", 0);
    sb_addf(sb, "TETHYS_JOB_PARAM=%s%c", d->job_param ? d->job_param : "", 0);
    sb_addf(sb, "TETHYS_SCHEDULED_AT=%s%c", when, 0);
    sb_addf(sb, "TETHYS_SCHEDULED_EPOCH=%lld%c", (long long)r->scheduled_at, 0);
    sb_addf(sb, "TETHYS_RUN_ID=%s%c", r->run_id, 0);
    sb_addf(sb, "TETHYS_FIRE_ID=%s%c", r->fire_id, 0);
    sb_addf(sb, "TETHYS_ATTEMPT=%u%c", r->attempt, 0);
    sb_addf(sb, "TETHYS_TRIGGER=%s%c", store_trigger_name(r->trigger), 0);
    sb_addf(sb, "TETHYS_FENCING_EPOCH=%lld%c", (long long)server__epoch(s), 0);
    sb_addf(sb, "TETHYS_EXECUTOR=%s%c", SERVER_EXECUTOR_ID, 0);
    sb_addf(sb, "TRACEPARENT=00-%s-%s-01%c", r->trace_id, r->run_id, 0);
    if (sb_failed(sb))
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < sb->len; i++)
        n += sb->buf[i] == '\0';
    char **envp = calloc(n + 1, sizeof *envp);
    if (envp == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < sb->len; i += strlen(sb->buf + i) + 1)
        envp[k++] = sb->buf + i;
    envp[k] = NULL;
    return envp;
}

static void start_run(struct server *s, struct srun *r)
{
    struct sjob *j = r->job;
    char path[4096];
    output_path(s, r->run_id, path, sizeof path);
    struct strbuf env;
    sb_init(&env);
    char **envp = build_env(s, r, &env);
    char spare[4096];
    r->masks = mask_set_ref(j->masks);
    struct exec_spec spec = {
        .command = j->def.command,
        .envp = (const char *const *)envp,
        .workdir = j->def.workdir,
        .user = j->def.user,
        .output_path = path,
        .recycle_path = server__spare_output(s, spare, sizeof spare),
        .output_cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT,
    };
    struct ty_err err;
    ty_err_clear(&err);
    int rc = envp ? exec_start(&s->loop, &spec, on_exit_cb, r, &r->proc, &err)
                  : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    free(envp);
    sb_free(&env);
    r->started_at_ms = server__now_ms(s);
    if (rc != 0) {
        log_error("run could not start", "job=%s shard=%u run=%s error=\"%s\"", j->def.name,
                  r->shard, r->run_id, err.msg);
        bool retry = r->attempt <= j->def.retries && !s->stopping;
        if (retry)
            schedule_retry(s, r); /* recorded first: see on_exit_cb */
        record_run(s, r, STORE_RUN_FAILED, -1, 0, NULL, 0, err.msg, r->started_at_ms);
        if (!retry) {
            alerts_job_failed(s, j, r, err.msg);
            barrier_update(s, r, false, true);
        }
        retire(s, r, true);
        return;
    }
    r->state = SRUN_RUNNING;
    r->pid = exec_pid(r->proc);
    r->pid_start = exec_pid_start(r->proc);
    s->n_running++;
    /* the pid and start time are stored before anyone is told the run started */
    record_run(s, r, STORE_RUN_RUNNING, -1, 0, NULL, 0, NULL, 0);
    arm_timers(s, r, 0);
    log_info("run started",
             "job=%s shard=%u run=%s fire=%s pid=%d attempt=%u trigger=%s lateness_ms=%lld "
             "wait_ms=%lld trace=%s",
             j->def.name, r->shard, r->run_id, r->fire_id, (int)r->pid, r->attempt,
             store_trigger_name(r->trigger), (long long)(r->started_at_ms - r->scheduled_at * 1000),
             (long long)(r->started_at_ms - r->queued_at_ms), r->trace_id);
}

/*
 * Put a run that passed the overlap check into the executor queue.  A new run that finds
 * the queue full does not run: its fire is recorded skipped (queue full, once: there is no
 * run record), r is freed and false returned.  A run accepted earlier (one that waited
 * behind its shard, a retry) always goes in: it is recorded already.
 */
static bool dispatch_run(struct server *s, struct srun *r)
{
    struct sjob *j = r->job;
    if (!r->accepted && s->q_len >= s->opts.queue_max) {
        if (!s->resource_queue_full) {
            s->resource_queue_full = true;
            alerts_resources(s);
        }
        record_skip(s, j, r->fire_id, (int32_t)r->shard, r->scheduled_at, STORE_SKIP_QUEUE_FULL,
                    "the executor queue was full", r->trigger);
        retire(s, r, false);
        return false;
    }
    j->running[r->shard]++;
    r->state = SRUN_QUEUED;
    r->queued_at_ms = server__now_ms(s);
    record_run(s, r, STORE_RUN_QUEUED, -1, 0, NULL, 0, NULL, 0);
    q_push(s, r);
    pump(s);
    return true;
}

/* A new run of a shard; its id is run_id when given (a retry's, chosen when it was
 * scheduled), else a new one. */
static struct srun *new_run(struct server *s, struct sjob *j, uint32_t shard, int64_t at,
                            const char *base, enum store_trigger trigger, uint32_t attempt,
                            const char *trace_id, const char *run_id)
{
    struct srun *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    if (run_id != NULL)
        snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    else
        new_run_id(r->run_id);
    snprintf(r->fire_id, sizeof r->fire_id, "%s#%u", base, shard);
    snprintf(r->trace_id, sizeof r->trace_id, "%s", trace_id);
    r->job = j;
    r->shard = shard;
    r->attempt = attempt;
    r->trigger = trigger;
    r->scheduled_at = at;
    r->pid = 0;
    if (strmap_put(&s->runs, r->run_id, r) != 0) {
        free(r);
        return NULL;
    }
    j->refs++;
    return r;
}

/* Queue r behind the run its shard has going (at most `max` deep); recorded queued.  The
 * run is accepted: when its turn comes it goes in whatever the executor queue holds. */
static bool wait_behind(struct server *s, struct sjob *j, struct srun *r, uint32_t max)
{
    uint32_t depth = 0;
    struct srun **tail = &j->waiting_head[r->shard];
    while (*tail != NULL) {
        tail = &(*tail)->wnext;
        depth++;
    }
    if (depth >= max)
        return false;
    *tail = r;
    r->state = SRUN_WAITING;
    r->accepted = true;
    r->queued_at_ms = server__now_ms(s);
    j->waiting++;
    record_run(s, r, STORE_RUN_QUEUED, -1, 0, NULL, 0, NULL, 0);
    return true;
}

/*
 * Offer one shard of a fire to the overlap policy.  Returns true when a run was made
 * (queued, waiting, started, or recorded failed because it could not start), with its id in
 * run_id; false when the fire of this shard was skipped (recorded, the reason in *why).
 * Only the id is given back: a run that cannot start has ended, and been freed, by the
 * time this returns.
 */
static bool offer_shard(struct server *s, struct sjob *j, uint32_t shard, int64_t at,
                        const char *base, enum store_trigger trigger, uint32_t attempt,
                        const char *trace_id, char run_id[STORE_ID_MAX],
                        enum store_skip_reason *why)
{
    char fire_id[STORE_FIRE_ID_MAX];
    snprintf(fire_id, sizeof fire_id, "%s#%u", base, shard);
    bool busy = j->running[shard] > 0 || j->waiting_head[shard] != NULL;
    *why = STORE_SKIP_QUEUE_FULL;
    if (busy && j->def.overlap == JOB_OVERLAP_SKIP) {
        *why = STORE_SKIP_OVERLAP;
        record_skip(s, j, fire_id, (int32_t)shard, at, STORE_SKIP_OVERLAP,
                    "the previous run of this shard was still going", trigger);
        return false;
    }
    struct srun *r = new_run(s, j, shard, at, base, trigger, attempt, trace_id, NULL);
    if (r == NULL) {
        record_skip(s, j, fire_id, (int32_t)shard, at, STORE_SKIP_QUEUE_FULL, "out of memory",
                    trigger);
        return false;
    }
    memcpy(run_id, r->run_id, STORE_ID_MAX);
    if (busy && j->def.overlap == JOB_OVERLAP_QUEUE) {
        if (!wait_behind(s, j, r, WAITING_PER_SHARD_MAX)) {
            record_skip(s, j, fire_id, (int32_t)shard, at, STORE_SKIP_QUEUE_FULL,
                        "too many runs already waiting for this shard", trigger);
            free_run(s, r);
            return false;
        }
        return true;
    }
    return dispatch_run(s, r); /* may end (and free) r: a full queue, a spawn that fails */
}

/* A shard of the fire `base` will not succeed (skipped, or its retry will not run). */
static void barrier_give_up(struct server *s, const char *base)
{
    struct fire_state *fs = strmap_get(&s->fires, base);
    if (fs != NULL && fs->pending > 0 && --fs->pending == 0) {
        strmap_del(&s->fires, base);
        free(fs);
    }
}

/* Fan-in bookkeeping for a new fire of `n` shards. */
static void barrier_open(struct server *s, struct sjob *j, const char *base, uint32_t n, int64_t at)
{
    if (j->def.downstream == NULL || j->def.downstream[0] == NULL)
        return;
    struct fire_state *fs = calloc(1, sizeof *fs);
    if (fs == NULL)
        return;
    fs->shards = n;
    fs->pending = n;
    fs->scheduled_at = at;
    snprintf(fs->job, sizeof fs->job, "%s", j->def.name);
    if (strmap_put(&s->fires, base, fs) != 0)
        free(fs);
}

/* Start a whole fire: one run per listed shard (all when shards is NULL).  Returns the
 * runs made ([{"run_id", "shard"}]); shards skipped are added to `skipped` when it is not
 * NULL ([{"shard", "reason"}]). */
static json_t *start_fire(struct server *s, struct sjob *j, int64_t at, const char *base,
                          enum store_trigger trigger, const uint32_t *shards, uint32_t n,
                          json_t *skipped)
{
    char trace[33];
    new_trace_id(trace);
    uint32_t count = shards ? n : j->def.shards;
    barrier_open(s, j, base, count, at);
    json_t *runs = json_array();
    for (uint32_t i = 0; i < count; i++) {
        uint32_t k = shards ? shards[i] : i;
        char run_id[STORE_ID_MAX];
        enum store_skip_reason why;
        if (offer_shard(s, j, k, at, base, trigger, 1, trace, run_id, &why)) {
            json_array_append_new(runs, json_pack("{s:s, s:i}", "run_id", run_id, "shard", k));
        } else {
            barrier_give_up(s, base); /* a skipped shard settles its part of the barrier */
            if (skipped != NULL)
                json_array_append_new(skipped, json_pack("{s:i, s:s}", "shard", k, "reason",
                                                         store_skip_reason_name(why)));
        }
    }
    return runs;
}

static void fire_downstream(struct server *s, struct fire_state *fs, const char *base)
{
    struct sjob *up = jobs_find(s, fs->job);
    if (up == NULL || up->def.downstream == NULL)
        return;
    for (char **d = up->def.downstream; *d != NULL; d++) {
        struct sjob *down = jobs_find(s, *d);
        if (down == NULL) {
            log_warn("downstream job does not exist", "job=%s downstream=%s", up->def.name, *d);
            continue;
        }
        if (!down->def.enabled) {
            log_info("downstream job is disabled; not fired", "job=%s downstream=%s", up->def.name,
                     *d);
            continue;
        }
        /* the upstream fire's own suffix too: two fires of the upstream job at one
         * scheduled second (run now, say) are two downstream fires */
        const char *at = strchr(base, '@');
        const char *up_suffix = at != NULL ? strchr(at, '!') : NULL;
        char dbase[STORE_FIRE_ID_MAX];
        int n = snprintf(dbase, sizeof dbase, "%s@%lld!d%s%s", down->def.name,
                         (long long)fs->scheduled_at, up->def.name, up_suffix ? up_suffix : "");
        if (n >= (int)sizeof dbase)
            log_warn("downstream fire id cut short (long job names)", "fire=%s", dbase);
        log_info("every shard succeeded; firing downstream", "job=%s fire=%s downstream=%s",
                 up->def.name, base, down->def.name);
        json_decref(
            start_fire(s, down, fs->scheduled_at, dbase, STORE_TRIGGER_DOWNSTREAM, NULL, 0, NULL));
    }
}

/* ---------------------------------------------------------------------------------------
 * Retries
 */

/*
 * A retry waiting for its backoff.  Its run is recorded queued as soon as it is scheduled,
 * under the run id it will have, so the failed attempt names it (retry_run_id) and a
 * restart meanwhile finds it.  Listed in s->retries: cancel and shutdown find it there.
 */
struct retry {
    uv_timer_t timer;
    char job[JOB_NAME_MAX + 1];
    char domain[DOMAIN_PATH_MAX + 1];
    uint32_t shard, attempt;
    int64_t scheduled_at;
    int64_t queued_ms, due_ms;
    char fire_id[STORE_FIRE_ID_MAX], base[STORE_FIRE_ID_MAX];
    char trace_id[33];
    char run_id[STORE_ID_MAX];     /* the retry's */
    char failed_run[STORE_ID_MAX]; /* the attempt that failed */
    struct retry *next, *prev;
};

static void retry_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Take a retry off the list and close its timer (it is freed when closed). */
static void retry_end(struct server *s, struct retry *rt)
{
    if (rt->prev != NULL)
        rt->prev->next = rt->next;
    else
        s->retries = rt->next;
    if (rt->next != NULL)
        rt->next->prev = rt->prev;
    uv_timer_stop(&rt->timer);
    uv_close((uv_handle_t *)&rt->timer, retry_closed);
}

/* Record the retry's run as it stands before it has started: queued, or ended unstarted. */
static void record_retry(struct server *s, const struct retry *rt, enum store_run_status st,
                         const char *error)
{
    struct sjob job;
    memset(&job, 0, sizeof job);
    job.def.name = (char *)rt->job;
    job.def.domain = (char *)rt->domain;
    struct srun r;
    memset(&r, 0, sizeof r);
    memcpy(r.run_id, rt->run_id, sizeof r.run_id);
    memcpy(r.fire_id, rt->fire_id, sizeof r.fire_id);
    r.job = &job;
    r.shard = rt->shard;
    r.attempt = rt->attempt;
    r.trigger = STORE_TRIGGER_RETRY;
    r.scheduled_at = rt->scheduled_at;
    r.queued_at_ms = rt->queued_ms;
    record_run(s, &r, st, -1, 0, NULL, 0, error, st == STORE_RUN_QUEUED ? 0 : server__now_ms(s));
}

/* A retry that will not run: its run is recorded with status st, and the fire's shard
 * has failed for good (the barrier; an alert unless it was canceled). */
static void retry_abandoned(struct server *s, struct retry *rt, enum store_run_status st,
                            const char *why)
{
    record_retry(s, rt, st, why);
    barrier_give_up(s, rt->base);
    struct sjob *j = jobs_find(s, rt->job);
    if (j != NULL && st != STORE_RUN_CANCELED) {
        struct srun failed;
        memset(&failed, 0, sizeof failed);
        memcpy(failed.run_id, rt->failed_run, sizeof failed.run_id);
        failed.shard = rt->shard;
        failed.attempt = rt->attempt - 1;
        failed.scheduled_at = rt->scheduled_at;
        char reason[256];
        snprintf(reason, sizeof reason, "failed; retry attempt %u not made: %s", rt->attempt, why);
        alerts_job_failed(s, j, &failed, reason);
    }
    retry_end(s, rt);
}

static void on_retry(uv_timer_t *t)
{
    struct retry *rt = t->data;
    struct server *s = server__of_loop(t->loop);
    struct sjob *j = jobs_find(s, rt->job);
    if (j == NULL || rt->shard >= j->def.shards) {
        retry_abandoned(s, rt, STORE_RUN_CANCELED,
                        "the job was removed, or lost this shard, before the retry started");
        return;
    }
    log_info("retrying", "job=%s shard=%u attempt=%u run=%s", rt->job, rt->shard, rt->attempt,
             rt->run_id);
    /* the fire was accepted when it first ran: its retry waits for the shard (whatever the
     * overlap policy) and for capacity (whatever the queue holds), and is never dropped */
    struct srun *r = new_run(s, j, rt->shard, rt->scheduled_at, rt->base, STORE_TRIGGER_RETRY,
                             rt->attempt, rt->trace_id, rt->run_id);
    if (r == NULL) {
        retry_abandoned(s, rt, STORE_RUN_FAILED, "out of memory");
        return;
    }
    r->accepted = true;
    if (j->running[r->shard] > 0 || j->waiting_head[r->shard] != NULL)
        (void)wait_behind(s, j, r, UINT32_MAX); /* no limit: it cannot fail */
    else
        dispatch_run(s, r);
    retry_end(s, rt);
}

/* Cancel a retry still waiting for its backoff.  0, or TY_ENOENT when run_id is none. */
static int retry_cancel(struct server *s, const char *run_id)
{
    for (struct retry *rt = s->retries; rt != NULL; rt = rt->next) {
        if (strcmp(rt->run_id, run_id) == 0) {
            retry_abandoned(s, rt, STORE_RUN_CANCELED, "canceled before it started");
            return 0;
        }
    }
    return TY_ENOENT;
}

/* Shutdown: retries not made yet are recorded as interrupted and dropped. */
static void retries_interrupted(struct server *s)
{
    while (s->retries != NULL) {
        struct retry *rt = s->retries;
        char why[160];
        snprintf(why, sizeof why, "the server shut down before the retry (due in %lld s)",
                 (long long)((rt->due_ms - server__now_ms(s) + 999) / 1000));
        retry_abandoned(s, rt, STORE_RUN_INTERRUPTED, why);
    }
}

static void schedule_retry(struct server *s, struct srun *r)
{
    const struct job *d = &r->job->def;
    double wait = d->retry_backoff;
    for (uint32_t i = 1; i < r->attempt && wait < d->retry_backoff_max; i++)
        wait *= d->retry_backoff_factor;
    if (wait > d->retry_backoff_max)
        wait = d->retry_backoff_max;
    struct retry *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        log_error("out of memory: a retry is not made", "job=%s run=%s", d->name, r->run_id);
        return;
    }
    snprintf(rt->job, sizeof rt->job, "%s", d->name);
    snprintf(rt->domain, sizeof rt->domain, "%s", d->domain);
    rt->shard = r->shard;
    rt->attempt = r->attempt + 1;
    rt->scheduled_at = r->scheduled_at;
    rt->queued_ms = server__now_ms(s);
    rt->due_ms = rt->queued_ms + (int64_t)(wait * 1000);
    memcpy(rt->fire_id, r->fire_id, sizeof rt->fire_id);
    base_of(r->fire_id, rt->base, sizeof rt->base);
    snprintf(rt->trace_id, sizeof rt->trace_id, "%s", r->trace_id);
    new_run_id(rt->run_id);
    snprintf(rt->failed_run, sizeof rt->failed_run, "%s", r->run_id);
    rt->next = s->retries;
    if (s->retries != NULL)
        s->retries->prev = rt;
    s->retries = rt;
    record_retry(s, rt, STORE_RUN_QUEUED, NULL);
    uv_timer_init(&s->loop, &rt->timer);
    rt->timer.data = rt;
    uv_update_time(&s->loop); /* the backoff counts from now, not from the iteration's start */
    uv_timer_start(&rt->timer, on_retry, (uint64_t)(wait * 1000), 0);
    log_info("retry scheduled", "job=%s shard=%u next_attempt=%u in_s=%.0f run=%s", d->name,
             r->shard, rt->attempt, wait, rt->run_id);
}

/* ---------------------------------------------------------------------------------------
 * Fires from the trigger engine
 */

static int64_t local_day(const struct sjob *j, int64_t t)
{
    struct tz_info ti;
    tz_lookup(j->zone, t, &ti);
    int64_t l = t + ti.utoff;
    return l >= 0 ? l / 86400 : (l - 86399) / 86400;
}

/* Why a fire at `at` must not run (0 when it may). */
static enum store_skip_reason excluded(struct server *s, const struct sjob *j, int64_t at,
                                       char *detail, size_t cap)
{
    if (job_paused(&j->def, j->zone, at)) {
        snprintf(detail, cap, "inside a pause window");
        return STORE_SKIP_PAUSED;
    }
    int64_t day = local_day(j, at);
    if (j->def.calendars_skip != NULL) {
        for (char **c = j->def.calendars_skip; *c != NULL; c++) {
            const struct calendar *cal = jobs_calendar(s, *c);
            if (cal != NULL && calendar_has(cal, day)) {
                snprintf(detail, cap, "calendar \"%s\" lists the day", *c);
                return STORE_SKIP_CALENDAR;
            }
        }
    }
    if (j->def.calendars_only != NULL && j->def.calendars_only[0] != NULL) {
        for (char **c = j->def.calendars_only; *c != NULL; c++) {
            const struct calendar *cal = jobs_calendar(s, *c);
            if (cal != NULL && calendar_has(cal, day))
                return 0;
        }
        snprintf(detail, cap, "no calendar the job runs only on lists the day");
        return STORE_SKIP_CALENDAR;
    }
    return 0;
}

void runner_on_fire(struct server *s, const struct sched_fire *f)
{
    struct sjob *j = jobs_by_id(s, f->job);
    if (j == NULL || j->generation != f->generation)
        return; /* a fire of a definition that has changed since */
    char base[STORE_FIRE_ID_MAX];
    fire_base(base, sizeof base, j->def.name, f->at, NULL);
    char fid[STORE_FIRE_ID_MAX + 4];
    snprintf(fid, sizeof fid, "%s#*", base);
    char detail[256];

    if (f->kind == SCHED_MISSED || f->kind == SCHED_DROPPED) {
        if (f->last > j->last_fire)
            j->last_fire = f->last;
        char last[CIVIL_RFC3339_MAX];
        struct tz_info ti;
        tz_lookup(j->zone, f->last, &ti);
        civil_format_rfc3339(f->last, ti.utoff, last);
        if (f->kind == SCHED_MISSED) {
            snprintf(detail, sizeof detail,
                     "%s%llu fire(s) up to %s were more than %u s late (misfire policy %s)",
                     (f->flags & SCHED_F_AT_LEAST) ? "at least " : "", (unsigned long long)f->count,
                     last, j->def.misfire_threshold,
                     j->def.misfire == JOB_MISFIRE_SKIP       ? "skip"
                     : j->def.misfire == JOB_MISFIRE_RUN_ONCE ? "run_once"
                                                              : "catch_up");
            record_skip(s, j, fid, -1, f->at, STORE_SKIP_MISFIRE, detail, STORE_TRIGGER_SCHEDULE);
            alerts_misfire(s, j, f);
        } else {
            snprintf(detail, sizeof detail,
                     "%llu fire(s) up to %s found the scheduler's hand-over queue full",
                     (unsigned long long)f->count, last);
            record_skip(s, j, fid, -1, f->at, STORE_SKIP_QUEUE_FULL, detail,
                        STORE_TRIGGER_SCHEDULE);
        }
        return;
    }
    if (f->at <= j->last_fire) {
        /* the fire id says this fire was made already (the clock went back): not again */
        log_warn("fire already made; not made again", "job=%s fire=%s last_fire=%lld", j->def.name,
                 fid, (long long)j->last_fire);
        return;
    }
    j->last_fire = f->at;
    if (s->stopping) {
        record_skip(s, j, fid, -1, f->at, STORE_SKIP_INTERRUPTED, "the server was shutting down",
                    STORE_TRIGGER_SCHEDULE);
        return;
    }
    enum store_skip_reason why = excluded(s, j, f->at, detail, sizeof detail);
    if (why != 0) {
        record_skip(s, j, fid, -1, f->at, why, detail, STORE_TRIGGER_SCHEDULE);
        return;
    }
    if (!(f->flags & SCHED_F_LATE))
        alerts_misfire_clear(s, j);
    json_decref(start_fire(
        s, j, f->at, base,
        (f->flags & SCHED_F_LATE) ? STORE_TRIGGER_MISFIRE : STORE_TRIGGER_SCHEDULE, NULL, 0, NULL));
}

/* ---------------------------------------------------------------------------------------
 * Run now, cancel, executors
 */

int runner_run_now(struct server *s, struct sjob *j, const json_t *shards, json_t **reply,
                   struct ty_err *err)
{
    uint32_t list[JOB_SHARDS_MAX];
    uint32_t n = 0;
    if (shards != NULL && !json_is_null(shards)) {
        if (!json_is_array(shards) || json_array_size(shards) == 0)
            return ty_error(err, TY_EINVAL, "shards", -1, 0,
                            "shards: expected a non-empty array of shard numbers");
        size_t i;
        json_t *v;
        json_array_foreach(shards, i, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) >= (json_int_t)j->def.shards)
                return ty_error(err, TY_EINVAL, "shards", -1, 0,
                                "shards[%zu]: not a shard of job \"%s\" (0-%u)", i, j->def.name,
                                j->def.shards - 1);
            for (uint32_t k = 0; k < n; k++)
                if (list[k] == (uint32_t)json_integer_value(v))
                    return ty_error(err, TY_EINVAL, "shards", -1, 0,
                                    "shards[%zu]: shard %lld is listed twice", i,
                                    (long long)json_integer_value(v));
            list[n++] = (uint32_t)json_integer_value(v);
        }
    }
    int64_t now = server__now(s);
    char id[STORE_ID_MAX], suffix[STORE_ID_MAX + 2], base[STORE_FIRE_ID_MAX];
    new_run_id(id);
    snprintf(suffix, sizeof suffix, "!m%s", id);
    fire_base(base, sizeof base, j->def.name, now, suffix);
    json_t *skipped = json_array();
    json_t *runs = start_fire(s, j, now, base, STORE_TRIGGER_MANUAL, n ? list : NULL, n, skipped);
    *reply = json_pack("{s:s, s:o, s:o}", "fire_id", base, "runs", runs, "skipped", skipped);
    log_info("run now", "job=%s fire=%s runs=%zu", j->def.name, base, json_array_size(runs));
    return 0;
}

int runner_cancel(struct server *s, const char *run_id, json_t **reply, struct ty_err *err)
{
    struct srun *r = strmap_get(&s->runs, run_id);
    if (r == NULL && retry_cancel(s, run_id) == 0) {
        log_info("run cancel requested", "run=%s status=canceled (a retry not started)", run_id);
        *reply = json_pack("{s:s, s:s}", "run_id", run_id, "status", "canceled");
        return 0;
    }
    if (r == NULL || r->state == SRUN_ENDED)
        return ty_error(err, TY_ENOENT, "run_id", -1, 0,
                        "run %s is not queued or running (unknown, or already ended)", run_id);
    const char *status = "canceled";
    if (r->state == SRUN_RUNNING) {
        r->final = STORE_RUN_CANCELED;
        exec_kill(r->proc, r->job->def.kill_grace * 1000);
        status = "canceling";
    } else {
        if (r->state == SRUN_QUEUED) {
            q_unlink(s, r);
        } else if (r->state == SRUN_WAITING) {
            struct srun **p = &r->job->waiting_head[r->shard];
            while (*p != NULL && *p != r)
                p = &(*p)->wnext;
            if (*p == r)
                *p = r->wnext;
            r->job->waiting--;
        }
        record_run(s, r, STORE_RUN_CANCELED, -1, 0, NULL, 0, "canceled before it started",
                   server__now_ms(s));
        barrier_update(s, r, false, true);
        retire(s, r, r->state == SRUN_QUEUED);
    }
    log_info("run cancel requested", "run=%s status=%s", run_id, status);
    *reply = json_pack("{s:s, s:s}", "run_id", run_id, "status", status);
    return 0;
}

uint32_t runner_running(struct server *s)
{
    return s->n_running;
}

uint32_t runner_queued(struct server *s)
{
    return s->q_len;
}

json_t *runner_executors(struct server *s)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_t *e = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:s, s:b, s:I}", "id", SERVER_EXECUTOR_ID, "host",
        host, "kind", "embedded", "capacity", (int)s->opts.max_runs, "running", (int)s->n_running,
        "queued", (int)s->q_len, "epoch", (json_int_t)server__epoch(s), "version", TETHYS_VERSION,
        "available", !s->stopping, "started_at_ms", (json_int_t)server__started_ms(s));
    return json_pack("{s:[o]}", "items", e);
}

/* ---------------------------------------------------------------------------------------
 * Recovery after a restart
 */

/* A process whose environment names this run (spawned, but the running row was not yet
 * written when the previous server died).  0 when none. */
static pid_t find_by_run_id(const char *run_id)
{
    char needle[64];
    int nlen = snprintf(needle, sizeof needle, "TETHYS_RUN_ID=%s", run_id);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    pid_t found = 0;
    struct dirent *de;
    static char buf[1 << 16];
    while (found == 0 && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
            if (strncmp(buf + i, needle, (size_t)nlen) == 0 && buf[i + nlen] == '\0' &&
                getpgid((pid_t)pid) == (pid_t)pid) {
                found = (pid_t)pid;
                break;
            }
            if (memchr(buf + i, '\0', (size_t)(n - i)) == NULL)
                break;
        }
    }
    closedir(d);
    return found;
}

static uint64_t proc_start(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return 0;
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, fp);
    fclose(fp);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    if (p == NULL)
        return 0;
    /* fields after the comm: state is 3rd; starttime is the 22nd field overall */
    int field = 2;
    for (; *p != '\0' && field < 22; p++)
        if (*p == ' ')
            field++;
    return strtoull(p, NULL, 10);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int64_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

void runner_recover(struct server *s, json_t *unfinished)
{
    size_t i;
    json_t *o;
    size_t killed = 0, adopted = 0, lost = 0, interrupted = 0;
    json_array_foreach(unfinished, i, o)
    {
        const char *run_id = jstr(o, "run_id"), *job = jstr(o, "job");
        struct sjob *j = jobs_find(s, job);
        pid_t pid = (pid_t)jint(o, "pid");
        uint64_t start = (uint64_t)jint(o, "pid_start");
        bool same_boot = strcmp(jstr(o, "boot_id"), server__boot_id(s)) == 0;
        bool alive = same_boot && pid > 0 && exec_proc_alive(pid, start);
        if (!alive && (pid <= 0 || !same_boot)) {
            pid_t p = find_by_run_id(run_id);
            if (p > 0) {
                pid = p;
                start = proc_start(p);
                alive = start != 0;
            }
        }
        /* a row to finish the record with */
        struct srun tmp;
        memset(&tmp, 0, sizeof tmp);
        struct sjob fake;
        memset(&fake, 0, sizeof fake);
        fake.def.name = (char *)job;
        fake.def.domain = (char *)jstr(o, "domain");
        snprintf(tmp.run_id, sizeof tmp.run_id, "%s", run_id);
        snprintf(tmp.fire_id, sizeof tmp.fire_id, "%s", jstr(o, "fire_id"));
        tmp.job = j ? j : &fake;
        tmp.shard = (uint32_t)jint(o, "shard");
        tmp.attempt = (uint32_t)jint(o, "attempt");
        tmp.trigger = STORE_TRIGGER_SCHEDULE;
        const char *trig = jstr(o, "trigger");
        for (int t = STORE_TRIGGER_SCHEDULE; t <= STORE_TRIGGER_MISFIRE; t++)
            if (strcmp(trig, store_trigger_name((enum store_trigger)t)) == 0)
                tmp.trigger = (enum store_trigger)t;
        tmp.scheduled_at = jint(o, "scheduled_at");
        tmp.queued_at_ms = jint(o, "queued_at_ms");
        tmp.started_at_ms = jint(o, "started_at_ms");
        tmp.pid = pid;
        tmp.pid_start = start;
        char path[4096];
        output_path(s, run_id, path, sizeof path);

        if (!alive) {
            bool never = strcmp(jstr(o, "status"), "queued") == 0;
            size_t cap = j && j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
            char *out = malloc(cap);
            size_t len = 0;
            uint64_t skipped = 0;
            struct ty_err e;
            if (out == NULL || exec_read_tail(path, cap, out, &len, &skipped, &e) != 0)
                len = 0;
            struct strbuf masked;
            sb_init(&masked);
            const char *shown = masked_tail(&tmp, j ? j->masks : NULL, out, &len, skipped, &masked);
            record_run(s, &tmp, never ? STORE_RUN_INTERRUPTED : STORE_RUN_LOST, -1, 0, shown, len,
                       never ? "the server stopped before the run started"
                             : "the process ended while the server was down; exit status "
                               "unknown",
                       server__now_ms(s));
            sb_free(&masked);
            free(out);
            if (never)
                interrupted++;
            else
                lost++;
            if (!never && j != NULL)
                alerts_job_failed(s, j, &tmp, "lost: the run ended while the server was down");
            continue;
        }
        bool finish = j != NULL && j->def.on_executor_death == JOB_ORPHAN_FINISH;
        if (!finish) {
            exec_kill_orphan(pid, start);
            record_run(s, &tmp, STORE_RUN_INTERRUPTED, -1, 9, NULL, 0,
                       "killed after a server restart (the job says on_executor_death: kill)",
                       server__now_ms(s));
            log_warn("killed a run left by the previous server", "job=%s run=%s pid=%d", job,
                     run_id, (int)pid);
            killed++;
            continue;
        }
        /* adopt it: it keeps its shard busy until it ends */
        struct srun *r = calloc(1, sizeof *r);
        if (r == NULL)
            continue;
        *r = tmp;
        r->job = j;
        r->adopted = true;
        r->state = SRUN_RUNNING;
        new_trace_id(r->trace_id);
        struct ty_err e;
        size_t cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
        if (exec_adopt(&s->loop, pid, start, path, cap, on_exit_cb, r, &r->proc, &e) != 0 ||
            strmap_put(&s->runs, r->run_id, r) != 0) {
            free(r);
            continue;
        }
        r->masks = mask_set_ref(j->masks);
        j->refs++;
        if (r->shard < j->shard_cap)
            j->running[r->shard]++;
        s->n_running++;
        /* its timeout and alarm still count from when it started */
        arm_timers(s, r, server__now_ms(s) - r->started_at_ms);
        record_run(s, r, STORE_RUN_RUNNING, -1, 0, NULL, 0, NULL, 0);
        log_info("adopted a run left by the previous server", "job=%s run=%s pid=%d", job, run_id,
                 (int)pid);
        adopted++;
    }
    if (killed + adopted + lost + interrupted > 0)
        log_info("runs of the previous server reconciled",
                 "killed=%zu adopted=%zu lost=%zu interrupted=%zu", killed, adopted, lost,
                 interrupted);
}

/* ---------------------------------------------------------------------------------------
 * Shutdown
 */

static void on_grace(uv_timer_t *t)
{
    struct server *s = t->data;
    size_t pos = 0;
    const char *key;
    void *val;
    uint32_t n = 0;
    while (strmap_next(&s->runs, &pos, &key, &val)) {
        struct srun *r = val;
        if (r->state == SRUN_RUNNING && r->proc != NULL) {
            r->final = STORE_RUN_INTERRUPTED;
            exec_kill(r->proc, 5000);
            n++;
        }
    }
    log_warn("grace period over; killing the runs left", "runs=%u", n);
}

void runner_shutdown(struct server *s, uint32_t grace_s, void (*done)(struct server *))
{
    /* retries waiting for their backoff would hold the loop open until they are due */
    retries_interrupted(s);
    /* runs not started yet are interrupted now */
    while (s->q_head != NULL) {
        struct srun *r = s->q_head;
        q_unlink(s, r);
        record_run(s, r, STORE_RUN_INTERRUPTED, -1, 0, NULL, 0,
                   "the server shut down before the run started", server__now_ms(s));
        retire(s, r, true);
    }
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&s->runs, &pos, &key, &val)) {
        struct srun *r = val;
        if (r->state == SRUN_WAITING) {
            record_run(s, r, STORE_RUN_INTERRUPTED, -1, 0, NULL, 0,
                       "the server shut down before the run started", server__now_ms(s));
            r->state = SRUN_ENDED;
        }
    }
    if (s->n_running == 0) {
        done(s);
        return;
    }
    s->on_drained = done;
    s->grace_live = true;
    uv_timer_init(&s->loop, &s->grace_timer);
    s->grace_timer.data = s;
    uv_update_time(&s->loop); /* the grace counts from now, not from the iteration's start */
    uv_timer_start(&s->grace_timer, on_grace, (uint64_t)grace_s * 1000, 0);
}
