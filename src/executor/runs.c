/*
 * runs.c - from a fire to finished runs.
 *
 * A fire is checked against the job's dates, pause windows and calendars (a fire that
 * does not run is reported with its reason), then split into one run per shard.  Each run
 * meets the overlap policy (skip / queue behind the shard's previous run / run in
 * parallel), then the executor's capacity: runs beyond it wait in one FIFO queue.  A
 * started run is watched for its timeout (kill the group: TERM, then KILL after the job's
 * grace) and its timeout alarm.  When it ends, its result and the tail of its output are
 * reported, and failures are retried with backoff up to the job's limit.  Every step is a
 * result through the spool (executor__result); what others make of them (alerts, fan-in
 * of downstream jobs, history) is the control plane's business.
 *
 * Overload.  The queue is bounded by how long runs wait, not only by how many: a run of a
 * scheduled fire that has waited past its job's misfire threshold is not started late (as
 * in Quartz, a fire that cannot get a slot within the threshold misfires).  It follows the
 * job's misfire policy like a fire the trigger engine missed: "skip" ends it as misfired;
 * "run once" and "catch up" keep the newest such run of a shard, once, at the head of the
 * queue, and end the older ones as misfired.  Runs asked for explicitly (run now, retries,
 * downstream fires) wait for capacity however long, bounded by --queue-max.  Queued runs are
 * started a slice at a time from an idle handle, so however long the queue, the loop keeps
 * answering requests and taking fires between slices, and a spawn that fails never recurses into
 * the next start.
 *
 * Identities.  A fire id names one (job, shard, scheduled time) and stays the same across
 * retries and restarts: "<job>@<epoch-seconds>#<shard>", with "!m<run>" after the time
 * for a run-now and "!d<upstream job><upstream suffix>" for a downstream fire (the control
 * plane makes those); a job of strategy "local" has "~<executor>" after that base, since
 * every executor makes its fires (shards.c).  A run id names one attempt: 16 hex digits,
 * random, also the span id of the run's W3C traceparent.
 *
 * Shards.  A fire is made for the shards this executor owns for that fire's time (all of
 * them in the embedded server); shards.c keeps that, and the gaps and fences around it.
 *
 * Order of results.  A run is reported queued when accepted, running (with its pid and
 * the process start time) right after the spawn, and ended when it ends; a retry is
 * reported queued when it is planned, before the end of the attempt that failed, so a
 * reader of that end finds the retry.  A fire at or before the last one the job made is
 * not made again (the clock went back).
 *
 * Secrets.  A job's secret_env values are in its runs' environment and nowhere else the
 * executor writes: before a run's output tail is reported, every occurrence of one of the
 * values the run was given is replaced by "********" (core/mask.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../core/civil.h"
#include "../os/log.h"
#include "executor_impl.h"

#define WAITING_PER_SHARD_MAX 1000
#define PUMP_SLICE_MS         5  /* starts per loop iteration stop after this long */
#define PUMP_SLICE_MAX        64 /* ... or this many */

/* ---------------------------------------------------------------------------------------
 * Ids
 */

static uint64_t rand64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        static uint64_t seq = 0x9e3779b97f4a7c15u;
        v = (seq += 0x9e3779b97f4a7c15u) ^ (uint64_t)getpid();
    }
    return v;
}

static void new_run_id(char out[STORE_ID_MAX])
{
    snprintf(out, STORE_ID_MAX, "%016llx", (unsigned long long)rand64());
}

static void new_trace_id(char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)rand64(), (unsigned long long)rand64());
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
 * Results
 */

static enum coord_phase phase_of(enum xrun_state st)
{
    switch (st) {
    case XRUN_WAITING: return COORD_PHASE_WAITING;
    case XRUN_QUEUED: return COORD_PHASE_QUEUED;
    case XRUN_RUNNING: return COORD_PHASE_RUNNING;
    case XRUN_PLANNED: return COORD_PHASE_PLANNED;
    default: return COORD_PHASE_ENDED;
    }
}

static bool has_downstream(const struct xjob *j)
{
    return j->def.downstream != NULL && j->def.downstream[0] != NULL;
}

/* What names a run in every result about it: which attempt of which fire, and when. */
static struct store_run run_ident(const struct xrun *r)
{
    return (struct store_run){
        .run_id = r->run_id,
        .fire_id = r->fire_id,
        .job = r->job->def.name,
        .domain = r->job->def.domain,
        .shard = r->shard,
        .attempt = r->attempt,
        .trigger = r->trigger,
        .scheduled_at = r->scheduled_at,
        .started_at_ms = r->started_at_ms,
        .epoch = r->epoch,
    };
}

void executor__report_run(struct executor *x, const struct xrun *r, enum store_run_status st,
                          bool settled, int exit_code, int sig, const char *output,
                          size_t output_len, const char *error, int64_t ended_ms)
{
    bool final = st != STORE_RUN_QUEUED && st != STORE_RUN_RUNNING;
    struct store_run run = run_ident(r);
    run.status = st;
    run.queued_at_ms = r->queued_at_ms;
    run.ended_at_ms = ended_ms;
    run.pid = r->pid;
    run.pid_start = (int64_t)r->pid_start;
    run.boot_id = x->boot_id;
    run.exit_code = exit_code;
    run.signal = sig;
    run.output = output;
    run.output_len = output_len;
    run.error = error;
    struct coord_result res = {
        .kind = COORD_RESULT_RUN,
        .run = run,
        .phase = final ? COORD_PHASE_ENDED : phase_of(r->state),
        .settled = final && settled,
        .downstream = has_downstream(r->job),
        .fire_shards = r->fire_shards,
        .job_level = r->job->def.level,
    };
    executor__result(x, &res);
}

static void report_skip(struct executor *x, struct xjob *j, const char *fire_id, int32_t shard,
                        int64_t at, enum store_skip_reason why, const char *detail,
                        enum store_trigger trigger, uint32_t fire_shards)
{
    struct coord_result res = {
        .kind = COORD_RESULT_SKIP,
        .skip = {fire_id, j->def.name, j->def.domain, shard, at, executor__now_ms(x), why, detail,
                 trigger},
        .settled = true,
        .downstream = has_downstream(j),
        .fire_shards = fire_shards,
        .job_level = j->def.level,
    };
    executor__result(x, &res);
    log_info("fire skipped", "job=%s shard=%d fire=%s reason=%s", j->def.name, shard, fire_id,
             store_skip_reason_name(why));
}

static void report_alarm(struct executor *x, const struct xrun *r, bool on)
{
    struct coord_result res = {
        .kind = COORD_RESULT_ALARM,
        .run = run_ident(r),
        .alarm_on = on,
        .alarm_s = r->job->def.timeout_alarm,
        .job_level = r->job->def.level,
    };
    executor__result(x, &res);
}

/* ---------------------------------------------------------------------------------------
 * The capacity queue
 */

static void q_push(struct executor *x, struct xrun *r, bool front)
{
    if (front) {
        r->prev = NULL;
        r->next = x->q_head;
        if (x->q_head != NULL)
            x->q_head->prev = r;
        else
            x->q_tail = r;
        x->q_head = r;
    } else {
        r->next = NULL;
        r->prev = x->q_tail;
        if (x->q_tail != NULL)
            x->q_tail->next = r;
        else
            x->q_head = r;
        x->q_tail = r;
    }
    x->q_len++;
}

static void q_unlink(struct executor *x, struct xrun *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        x->q_head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        x->q_tail = r->prev;
    r->next = r->prev = NULL;
    x->q_len--;
}

static void start_run(struct executor *x, struct xrun *r);
static bool dispatch_run(struct executor *x, struct xrun *r);
static void pump_later(struct executor *x);
static void queue_room(struct executor *x);

/* ---------------------------------------------------------------------------------------
 * Ending a run
 */

static void free_run(struct executor *x, struct xrun *r)
{
    strmap_del(&x->runs, r->run_id);
    struct xjob *j = r->job;
    mask_set_unref(r->masks);
    free(r);
    executor__job_release(x, j);
}

/* Both timers must be closed before the run is freed; libuv does not promise the order
 * of close callbacks, so count them. */
static void timer_closed(uv_handle_t *h)
{
    struct xrun *r = h->data;
    if (--r->closing == 0)
        free_run(r->owner, r);
}

static void maybe_stopped(struct executor *x)
{
    if (x->stopping && atomic_load(&x->n_running) == 0 && x->on_stopped != NULL && x->grace_live) {
        uv_timer_stop(&x->grace_timer);
        x->grace_live = false;
        uv_close((uv_handle_t *)&x->grace_timer, NULL);
        executor__stopped(x);
    }
}

/* Leave the runtime: counts, overlap queue; free once the timers are closed.  The next
 * queued run starts from the pump, never from here. */
static void retire(struct executor *x, struct xrun *r, bool counted)
{
    struct xjob *j = r->job;
    if (counted && r->shard < j->shard_cap && j->running[r->shard] > 0)
        j->running[r->shard]--;
    r->state = XRUN_ENDED;
    /* the next run waiting behind this shard goes now */
    if (!x->stopping && r->shard < j->shard_cap && j->waiting_head[r->shard] != NULL &&
        j->running[r->shard] == 0) {
        struct xrun *w = j->waiting_head[r->shard];
        j->waiting_head[r->shard] = w->wnext;
        j->waiting--;
        x->n_waiting--;
        w->wnext = NULL;
        dispatch_run(x, w);
    }
    if (r->timers_live) {
        uv_timer_stop(&r->timeout_timer);
        uv_timer_stop(&r->alarm_timer);
        r->closing = 2;
        uv_close((uv_handle_t *)&r->timeout_timer, timer_closed);
        uv_close((uv_handle_t *)&r->alarm_timer, timer_closed);
    } else {
        free_run(x, r);
    }
    pump_later(x);
    queue_room(x);
    maybe_stopped(x);
}

static void schedule_retry(struct executor *x, struct xrun *r);

void executor__on_exit(struct exec_run *proc, const struct exec_result *res, void *arg)
{
    struct xrun *r = arg;
    struct xjob *j = r->job;
    struct executor *x = r->owner;
    (void)proc;
    r->proc = NULL;
    x->n_running--;

    enum store_run_status st;
    const char *error = NULL;
    char lost[128];
    snprintf(lost, sizeof lost, "the run outlived a %s restart; its exit status is unknown",
             x->noun);
    char fenced[160];
    if (r->fence_kill) {
        snprintf(fenced, sizeof fenced,
                 "killed: this %s's lease ended (it was fenced) and the job says "
                 "on_executor_death: kill",
                 x->noun);
        error = fenced;
    }
    if (r->final != 0)
        st = r->final;
    else if (res->unknown)
        st = STORE_RUN_LOST, error = lost;
    else if (res->exit_code == 0)
        st = STORE_RUN_SUCCEEDED;
    else
        st = STORE_RUN_FAILED;

    size_t cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
    char *out = NULL;
    size_t len = 0;
    executor__output_tail(x, r->run_id, cap, r->masks, &out, &len);
    bool retry = (st == STORE_RUN_FAILED || st == STORE_RUN_TIMEOUT) && !x->stopping &&
                 r->attempt <= j->def.retries && !j->deleted;
    /* the retry is reported (queued) before this run's end, so whoever reads the end finds
     * the retry named (retry_run_id): `job run --wait` follows it */
    if (retry)
        schedule_retry(x, r);
    executor__report_run(x, r, st, !retry, res->exit_code, res->signal, out, len, error,
                         executor__now_ms(x));
    free(out);
    executor__output_done(x, r->run_id);
    log_info("run ended", "job=%s shard=%u run=%s status=%s exit=%d signal=%d attempt=%u",
             j->def.name, r->shard, r->run_id, store_run_status_name(st), res->exit_code,
             res->signal, r->attempt);
    if (r->alarm_raised)
        report_alarm(x, r, false);
    retire(x, r, true);
}

/* ---------------------------------------------------------------------------------------
 * Starting a run
 */

static void on_timeout(uv_timer_t *t)
{
    struct xrun *r = t->data;
    if (r->proc == NULL)
        return;
    r->final = STORE_RUN_TIMEOUT;
    log_warn("run timed out; killing its process group", "job=%s run=%s timeout_s=%u",
             r->job->def.name, r->run_id, r->job->def.timeout);
    exec_kill(r->proc, r->job->def.kill_grace * 1000);
}

static void on_alarm(uv_timer_t *t)
{
    struct xrun *r = t->data;
    if (r->proc == NULL || r->alarm_raised)
        return;
    r->alarm_raised = true;
    log_warn("run passed its timeout alarm", "job=%s run=%s alarm_s=%u", r->job->def.name,
             r->run_id, r->job->def.timeout_alarm);
    report_alarm(r->owner, r, true);
}

void executor__arm_timers(struct executor *x, struct xrun *r, int64_t elapsed_ms)
{
    const struct job *d = &r->job->def;
    uv_timer_init(&x->loop, &r->timeout_timer);
    uv_timer_init(&x->loop, &r->alarm_timer);
    r->timeout_timer.data = r->alarm_timer.data = r;
    r->timers_live = true;
    /* libuv counts timeouts from the loop's cached time, taken when this iteration began;
     * without a refresh a run started late in a busy iteration is killed that much early */
    uv_update_time(&x->loop);
    int64_t e = elapsed_ms > 0 ? elapsed_ms : 0;
    int64_t kill_in = (int64_t)d->timeout * 1000 - e,
            alarm_in = (int64_t)d->timeout_alarm * 1000 - e;
    if (d->timeout > 0)
        uv_timer_start(&r->timeout_timer, on_timeout, (uint64_t)(kill_in > 0 ? kill_in : 0), 0);
    if (d->timeout_alarm > 0 && !r->alarm_raised)
        uv_timer_start(&r->alarm_timer, on_alarm, (uint64_t)(alarm_in > 0 ? alarm_in : 0), 0);
}

/* NULL-terminated environment for a run: a minimal base, the job's own, Tethys's. */
static char **build_env(struct executor *x, const struct xrun *r, struct strbuf *sb)
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
    sb_addf(sb, "TETHYS_FENCING_EPOCH=%lld%c", (long long)r->epoch, 0);
    sb_addf(sb, "TETHYS_EXECUTOR=%s%c", x->id, 0);
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

static void start_run(struct executor *x, struct xrun *r)
{
    struct xjob *j = r->job;
    char path[4096];
    executor__output_path(x, r->run_id, path, sizeof path);
    struct strbuf env;
    sb_init(&env);
    char **envp = build_env(x, r, &env);
    char spare[4096];
    r->masks = mask_set_ref(j->masks);
    struct exec_spec spec = {
        .command = j->def.command,
        .envp = (const char *const *)envp,
        .workdir = j->def.workdir,
        .user = j->def.user,
        .output_path = path,
        .recycle_path = executor__spare_output(x, spare, sizeof spare),
        .output_cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT,
    };
    struct ty_err err;
    ty_err_clear(&err);
    int rc = envp ? exec_start(&x->loop, &spec, executor__on_exit, r, &r->proc, &err)
                  : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    free(envp);
    sb_free(&env);
    r->started_at_ms = executor__now_ms(x);
    x->starts++;
    if (rc != 0) {
        log_error("run could not start", "job=%s shard=%u run=%s error=\"%s\"", j->def.name,
                  r->shard, r->run_id, err.msg);
        bool retry = r->attempt <= j->def.retries && !x->stopping;
        if (retry)
            schedule_retry(x, r); /* reported first: see executor__on_exit */
        executor__report_run(x, r, STORE_RUN_FAILED, !retry, -1, 0, NULL, 0, err.msg,
                             r->started_at_ms);
        retire(x, r, true);
        return;
    }
    r->state = XRUN_RUNNING;
    r->pid = exec_pid(r->proc);
    r->pid_start = exec_pid_start(r->proc);
    x->n_running++;
    /* the pid and start time are in the spool before anyone is told the run started */
    executor__report_run(x, r, STORE_RUN_RUNNING, false, -1, 0, NULL, 0, NULL, 0);
    executor__arm_timers(x, r, 0);
    log_info("run started",
             "job=%s shard=%u run=%s fire=%s pid=%d attempt=%u trigger=%s lateness_ms=%lld "
             "wait_ms=%lld trace=%s",
             j->def.name, r->shard, r->run_id, r->fire_id, (int)r->pid, r->attempt,
             store_trigger_name(r->trigger), (long long)(r->started_at_ms - r->scheduled_at * 1000),
             (long long)(r->started_at_ms - r->queued_at_ms), r->trace_id);
}

/* ---------------------------------------------------------------------------------------
 * The pump: queued runs start a slice at a time
 */

/* A run of a scheduled fire that has waited in the queue past its job's threshold (runs
 * asked for - by hand, a retry, a downstream fire - wait for capacity however long). */
static bool expired(struct executor *x, const struct xrun *r, int64_t now_ms)
{
    (void)x;
    return !r->late_ok &&
           (r->trigger == STORE_TRIGGER_SCHEDULE || r->trigger == STORE_TRIGGER_MISFIRE) &&
           now_ms - r->queued_at_ms > (int64_t)r->job->def.misfire_threshold * 1000;
}

/* A queued run that waited too long and is not kept: it ends as misfired. */
static void misfire_queued(struct executor *x, struct xrun *r, int64_t now_ms)
{
    const struct job *d = &r->job->def;
    char why[256];
    snprintf(why, sizeof why,
             "waited %lld ms in the executor's queue, past the job's misfire threshold (%u s); "
             "not started (misfire policy %s, %u runs queued, capacity %u)",
             (long long)(now_ms - r->queued_at_ms), d->misfire_threshold,
             job_misfire_name(d->misfire), (unsigned)x->q_len, x->cfg.max_runs);
    q_unlink(x, r);
    x->queue_misfires++;
    x->overload_seen_ms = now_ms;
    executor__report_run(x, r, STORE_RUN_MISFIRED, true, -1, 0, NULL, 0, why, now_ms);
    log_warn("queued run misfired", "job=%s shard=%u run=%s wait_ms=%lld", d->name, r->shard,
             r->run_id, (long long)(now_ms - r->queued_at_ms));
    retire(x, r, true);
}

static void pump_slice(uv_idle_t *h)
{
    struct executor *x = h->data;
    uint64_t t0 = uv_hrtime();
    int started = 0;
    while (!x->stopping && !executor__lease_check(x) && x->q_head != NULL &&
           x->n_running < x->cfg.max_runs && started < PUMP_SLICE_MAX &&
           uv_hrtime() - t0 < PUMP_SLICE_MS * 1000000ull) {
        struct xrun *r = x->q_head;
        int64_t now = executor__now_ms(x);
        if (expired(x, r, now)) {
            executor__expire_queue(x); /* decides by policy, for every run that is late */
            continue;
        }
        q_unlink(x, r);
        start_run(x, r);
        started++;
    }
    atomic_store(&x->oldest_wait_ms,
                 x->q_head != NULL ? executor__now_ms(x) - x->q_head->queued_at_ms : 0);
    if (x->stopping || executor__lease_check(x) || x->q_head == NULL ||
        x->n_running >= x->cfg.max_runs)
        uv_idle_stop(&x->pump_idle);
    queue_room(x);
}

/* The queue that was full has room again (half of it): say so. */
static void queue_room(struct executor *x)
{
    if (atomic_load(&x->queue_full) && x->q_len <= x->cfg.queue_max / 2) {
        atomic_store(&x->queue_full, false);
        log_info("executor queue has room again", "queued=%u queue_max=%u", (unsigned)x->q_len,
                 x->cfg.queue_max);
        executor__status_changed(x);
    }
}

/* Start queued runs soon (from the idle handle: never from inside another start). */
static void pump_later(struct executor *x)
{
    if (!x->pump_live) {
        uv_idle_init(&x->loop, &x->pump_idle);
        x->pump_idle.data = x;
        x->pump_live = true;
    }
    if (!x->stopping && !executor__lease_check(x) && x->q_head != NULL &&
        x->n_running < x->cfg.max_runs && !uv_is_active((uv_handle_t *)&x->pump_idle))
        uv_idle_start(&x->pump_idle, pump_slice);
}

void executor__pump(struct executor *x)
{
    pump_later(x);
}

/* Identity of a run's shard, for the expiry walk. */
static void shard_key(const struct xrun *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%p#%u", (void *)r->job, r->shard);
}

void executor__expire_queue(struct executor *x)
{
    int64_t now = executor__now_ms(x);
    struct strmap newer; /* shards that have a newer run queued */
    strmap_init(&newer);
    struct xrun *r = x->q_tail;
    struct xrun *keep[64];
    size_t n_keep = 0;
    while (r != NULL) {
        struct xrun *prev = r->prev;
        char key[48];
        shard_key(r, key, sizeof key);
        bool has_newer = strmap_get(&newer, key) != NULL;
        if (!has_newer)
            strmap_put(&newer, key, r);
        if (expired(x, r, now)) {
            if (r->job->def.misfire != JOB_MISFIRE_SKIP && !has_newer && n_keep < 64) {
                /* the policy runs the newest late fire once: it goes first */
                r->late_ok = true;
                q_unlink(x, r);
                keep[n_keep++] = r;
            } else {
                misfire_queued(x, r, now);
            }
        }
        r = prev;
    }
    strmap_free(&newer);
    while (n_keep > 0)
        q_push(x, keep[--n_keep], true);
    atomic_store(&x->oldest_wait_ms, x->q_head != NULL ? now - x->q_head->queued_at_ms : 0);
    pump_later(x);
}

/*
 * Put a run that passed the overlap check into the capacity queue.  A new run that finds
 * the queue full does not run: its fire is reported skipped (queue full, once: there is no
 * run record), r is freed and false returned.  A run accepted earlier (one that waited
 * behind its shard, a retry) always goes in: it is reported already.
 */
static bool dispatch_run(struct executor *x, struct xrun *r)
{
    struct xjob *j = r->job;
    if (!r->accepted && x->q_len >= x->cfg.queue_max) {
        char why[160];
        snprintf(why, sizeof why, "the executor queue was full (%u waiting, capacity %u running)",
                 (unsigned)x->q_len, x->cfg.max_runs);
        if (!atomic_exchange(&x->queue_full, true)) {
            log_warn("executor queue full; new fires are skipped", "queued=%u queue_max=%u",
                     (unsigned)x->q_len, x->cfg.queue_max);
            executor__status_changed(x);
        }
        report_skip(x, j, r->fire_id, (int32_t)r->shard, r->scheduled_at, STORE_SKIP_QUEUE_FULL,
                    why, r->trigger, r->fire_shards);
        retire(x, r, false);
        return false;
    }
    j->running[r->shard]++;
    r->state = XRUN_QUEUED;
    r->queued_at_ms = executor__now_ms(x);
    executor__report_run(x, r, STORE_RUN_QUEUED, false, -1, 0, NULL, 0, NULL, 0);
    q_push(x, r, false);
    x->demand++;
    pump_later(x);
    return true;
}

/* A new run of a shard; its id is run_id when given (a retry's, chosen when it was
 * scheduled), else a new one. */
static struct xrun *new_run(struct executor *x, struct xjob *j, uint32_t shard, int64_t at,
                            const char *base, enum store_trigger trigger, uint32_t attempt,
                            const char *trace_id, const char *run_id, uint32_t fire_shards)
{
    struct xrun *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->owner = x;
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
    r->epoch = j->epoch;
    r->fire_shards = fire_shards;
    if (strmap_put(&x->runs, r->run_id, r) != 0) {
        free(r);
        return NULL;
    }
    j->refs++;
    return r;
}

/* Queue r behind the run its shard has going (at most `max` deep); reported queued.  The
 * run is accepted: when its turn comes it goes in whatever the capacity queue holds. */
static bool wait_behind(struct executor *x, struct xjob *j, struct xrun *r, uint32_t max)
{
    uint32_t depth = 0;
    struct xrun **tail = &j->waiting_head[r->shard];
    while (*tail != NULL) {
        tail = &(*tail)->wnext;
        depth++;
    }
    if (depth >= max)
        return false;
    *tail = r;
    r->state = XRUN_WAITING;
    r->accepted = true;
    r->queued_at_ms = executor__now_ms(x);
    j->waiting++;
    x->n_waiting++;
    executor__report_run(x, r, STORE_RUN_QUEUED, false, -1, 0, NULL, 0, NULL, 0);
    return true;
}

/*
 * Offer one shard of a fire to the overlap policy.  Returns true when a run was made
 * (queued, waiting, or reported failed because it could not start), with its id in
 * run_id; false when the fire of this shard was skipped (reported, the reason in *why).
 */
static bool offer_shard(struct executor *x, struct xjob *j, uint32_t shard, int64_t at,
                        const char *base, enum store_trigger trigger, uint32_t attempt,
                        uint32_t fire_shards, const char *trace_id, char run_id[STORE_ID_MAX],
                        enum store_skip_reason *why)
{
    char fire_id[STORE_FIRE_ID_MAX];
    snprintf(fire_id, sizeof fire_id, "%s#%u", base, shard);
    bool busy = j->running[shard] > 0 || j->waiting_head[shard] != NULL;
    *why = STORE_SKIP_QUEUE_FULL;
    if (busy && j->def.overlap == JOB_OVERLAP_SKIP) {
        *why = STORE_SKIP_OVERLAP;
        report_skip(x, j, fire_id, (int32_t)shard, at, STORE_SKIP_OVERLAP,
                    "the previous run of this shard was still going", trigger, fire_shards);
        return false;
    }
    struct xrun *r = new_run(x, j, shard, at, base, trigger, attempt, trace_id, NULL, fire_shards);
    if (r == NULL) {
        report_skip(x, j, fire_id, (int32_t)shard, at, STORE_SKIP_QUEUE_FULL, "out of memory",
                    trigger, fire_shards);
        return false;
    }
    memcpy(run_id, r->run_id, STORE_ID_MAX);
    if (busy && j->def.overlap == JOB_OVERLAP_QUEUE) {
        if (!wait_behind(x, j, r, WAITING_PER_SHARD_MAX)) {
            report_skip(x, j, fire_id, (int32_t)shard, at, STORE_SKIP_QUEUE_FULL,
                        "too many runs already waiting for this shard", trigger, fire_shards);
            free_run(x, r);
            return false;
        }
        return true;
    }
    return dispatch_run(x, r); /* may end (and free) r: a full queue */
}

/* Start a whole fire: one run per listed shard (all of the job's when shards is NULL),
 * of those only the ones this executor owns for a fire at owned_at (INT64_MIN: all listed:
 * a request's or a gap's, chosen already).  fire_shards: the shards the fire is made with
 * (its results carry it).  Returns the runs made ([{"run_id", "shard"}]); shards skipped
 * are added to `skipped` when it is not NULL ([{"shard", "reason"}]). */
static json_t *start_fire(struct executor *x, struct xjob *j, int64_t at, const char *base,
                          enum store_trigger trigger, uint32_t attempt, const uint32_t *shards,
                          uint32_t n, int64_t owned_at, uint32_t fire_shards, json_t *skipped)
{
    char trace[33];
    new_trace_id(trace);
    uint32_t count = shards ? n : j->def.shards;
    json_t *runs = json_array();
    for (uint32_t i = 0; i < count; i++) {
        uint32_t k = shards ? shards[i] : i;
        if (owned_at != INT64_MIN && !executor__owns(j, k, owned_at))
            continue;
        char run_id[STORE_ID_MAX];
        enum store_skip_reason why;
        if (offer_shard(x, j, k, at, base, trigger, attempt, fire_shards, trace, run_id, &why))
            json_array_append_new(runs, json_pack("{s:s, s:i}", "run_id", run_id, "shard", k));
        else if (skipped != NULL)
            json_array_append_new(skipped, json_pack("{s:i, s:s}", "shard", k, "reason",
                                                     store_skip_reason_name(why)));
    }
    return runs;
}

/* ---------------------------------------------------------------------------------------
 * Retries
 */

/*
 * A retry waiting for its backoff.  Its run is reported queued as soon as it is scheduled,
 * under the run id it will have, so the failed attempt names it (retry_run_id) and a
 * restart meanwhile finds it.  Listed in x->retries: cancel and shutdown find it there.
 */
struct retry {
    uv_timer_t timer;
    struct executor *owner;
    char job[JOB_NAME_MAX + 1];
    uint32_t shard, attempt, fire_shards;
    int64_t scheduled_at, epoch;
    int64_t queued_ms, due_ms;
    char fire_id[STORE_FIRE_ID_MAX], base[STORE_FIRE_ID_MAX];
    char trace_id[33];
    char run_id[STORE_ID_MAX]; /* the retry's */
    bool due;                  /* its backoff ended while the executor was fenced */
    struct retry *next, *prev;
};

static void retry_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Take a retry off the list and close its timer (it is freed when closed). */
static void retry_end(struct executor *x, struct retry *rt)
{
    if (rt->prev != NULL)
        rt->prev->next = rt->next;
    else
        x->retries = rt->next;
    if (rt->next != NULL)
        rt->next->prev = rt->prev;
    uv_timer_stop(&rt->timer);
    uv_close((uv_handle_t *)&rt->timer, retry_closed);
}

/* Report the retry's run as it stands before it has started: planned (waiting for its
 * backoff), or ended unstarted (settled: no attempt follows).  j may be a stand-in holding
 * only the name and domain. */
static void report_retry(struct executor *x, const struct retry *rt, struct xjob *j,
                         enum store_run_status st, const char *error)
{
    struct xrun r;
    memset(&r, 0, sizeof r);
    memcpy(r.run_id, rt->run_id, sizeof r.run_id);
    memcpy(r.fire_id, rt->fire_id, sizeof r.fire_id);
    r.job = j;
    r.shard = rt->shard;
    r.attempt = rt->attempt;
    r.trigger = STORE_TRIGGER_RETRY;
    r.state = XRUN_PLANNED;
    r.scheduled_at = rt->scheduled_at;
    r.queued_at_ms = rt->queued_ms;
    r.epoch = rt->epoch;
    r.fire_shards = rt->fire_shards;
    bool planned = st == STORE_RUN_QUEUED;
    executor__report_run(x, &r, st, !planned, -1, 0, NULL, 0, error,
                         planned ? 0 : executor__now_ms(x));
}

/* A retry that will not run: its run is reported with status st, settled. */
static void retry_abandoned(struct executor *x, struct retry *rt, enum store_run_status st,
                            const char *why)
{
    struct xjob *j = executor__job(x, rt->job);
    struct xjob stand_in;
    if (j == NULL) {
        memset(&stand_in, 0, sizeof stand_in);
        stand_in.def.name = rt->job;
        stand_in.def.domain = (char *)"";
        j = &stand_in;
    }
    char text[320];
    snprintf(text, sizeof text, "retry attempt %u not made: %s", rt->attempt, why);
    report_retry(x, rt, j, st, text);
    retry_end(x, rt);
}

/* A retry's backoff has ended: its run goes. */
static void retry_go(struct retry *rt)
{
    struct executor *x = rt->owner;
    struct xjob *j = executor__job(x, rt->job);
    if (j == NULL || rt->shard >= j->def.shards) {
        retry_abandoned(x, rt, STORE_RUN_CANCELED,
                        "the job was removed, or lost this shard, before the retry started");
        return;
    }
    log_info("retrying", "job=%s shard=%u attempt=%u run=%s", rt->job, rt->shard, rt->attempt,
             rt->run_id);
    /* the fire was accepted when it first ran: its retry waits for the shard (whatever the
     * overlap policy) and for capacity (whatever the queue holds), and is never dropped */
    struct xrun *r = new_run(x, j, rt->shard, rt->scheduled_at, rt->base, STORE_TRIGGER_RETRY,
                             rt->attempt, rt->trace_id, rt->run_id, rt->fire_shards);
    if (r == NULL) {
        retry_abandoned(x, rt, STORE_RUN_FAILED, "out of memory");
        return;
    }
    r->accepted = true;
    r->epoch = rt->epoch;
    if (j->running[r->shard] > 0 || j->waiting_head[r->shard] != NULL)
        (void)wait_behind(x, j, r, UINT32_MAX); /* no limit: it cannot fail */
    else
        dispatch_run(x, r);
    retry_end(x, rt);
}

static void on_retry(uv_timer_t *t)
{
    struct retry *rt = t->data;
    if (executor__lease_check(rt->owner)) {
        rt->due = true; /* a fenced executor starts nothing: it goes at the unfence */
        return;
    }
    retry_go(rt);
}

void executor__retries_resume(struct executor *x)
{
    struct retry *rt = x->retries;
    while (rt != NULL) {
        struct retry *next = rt->next; /* retry_go takes rt off the list, nothing else */
        if (rt->due) {
            rt->due = false;
            retry_go(rt);
        }
        rt = next;
    }
}

/* Cancel a retry still waiting for its backoff.  0, or TY_ENOENT when run_id is none. */
static int retry_cancel(struct executor *x, const char *run_id)
{
    for (struct retry *rt = x->retries; rt != NULL; rt = rt->next) {
        if (strcmp(rt->run_id, run_id) == 0) {
            struct xjob *j = executor__job(x, rt->job);
            struct xjob stand_in;
            if (j == NULL) {
                memset(&stand_in, 0, sizeof stand_in);
                stand_in.def.name = rt->job;
                stand_in.def.domain = (char *)"";
                j = &stand_in;
            }
            report_retry(x, rt, j, STORE_RUN_CANCELED, "canceled before it started");
            retry_end(x, rt);
            return 0;
        }
    }
    return TY_ENOENT;
}

static void schedule_retry(struct executor *x, struct xrun *r)
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
    rt->owner = x;
    snprintf(rt->job, sizeof rt->job, "%s", d->name);
    rt->shard = r->shard;
    rt->attempt = r->attempt + 1;
    rt->fire_shards = r->fire_shards;
    rt->scheduled_at = r->scheduled_at;
    rt->epoch = r->epoch;
    rt->queued_ms = executor__now_ms(x);
    rt->due_ms = rt->queued_ms + (int64_t)(wait * 1000);
    memcpy(rt->fire_id, r->fire_id, sizeof rt->fire_id);
    base_of(r->fire_id, rt->base, sizeof rt->base);
    snprintf(rt->trace_id, sizeof rt->trace_id, "%s", r->trace_id);
    new_run_id(rt->run_id);
    rt->next = x->retries;
    if (x->retries != NULL)
        x->retries->prev = rt;
    x->retries = rt;
    report_retry(x, rt, r->job, STORE_RUN_QUEUED, NULL);
    uv_timer_init(&x->loop, &rt->timer);
    rt->timer.data = rt;
    uv_update_time(&x->loop); /* the backoff counts from now, not from the iteration's start */
    uv_timer_start(&rt->timer, on_retry, (uint64_t)(wait * 1000), 0);
    log_info("retry scheduled", "job=%s shard=%u next_attempt=%u in_s=%.0f run=%s", d->name,
             r->shard, rt->attempt, wait, rt->run_id);
}

/* ---------------------------------------------------------------------------------------
 * Fires from the trigger engine
 */

static int64_t local_day(const struct xjob *j, int64_t t)
{
    struct tz_info ti;
    tz_lookup(j->zone, t, &ti);
    int64_t l = t + ti.utoff;
    return l >= 0 ? l / 86400 : (l - 86399) / 86400;
}

/* Why a fire at `at` must not run (0 when it may). */
static enum store_skip_reason excluded(struct executor *x, const struct xjob *j, int64_t at,
                                       char *detail, size_t cap)
{
    if (job_paused(&j->def, j->zone, at)) {
        snprintf(detail, cap, "inside a pause window");
        return STORE_SKIP_PAUSED;
    }
    int64_t day = local_day(j, at);
    if (j->def.calendars_skip != NULL) {
        for (char **c = j->def.calendars_skip; *c != NULL; c++) {
            const struct calendar *cal = executor__calendar_get(x, *c);
            if (cal != NULL && calendar_has(cal, day)) {
                snprintf(detail, cap, "calendar \"%s\" lists the day", *c);
                return STORE_SKIP_CALENDAR;
            }
        }
    }
    if (j->def.calendars_only != NULL && j->def.calendars_only[0] != NULL) {
        for (char **c = j->def.calendars_only; *c != NULL; c++) {
            const struct calendar *cal = executor__calendar_get(x, *c);
            if (cal != NULL && calendar_has(cal, day))
                return 0;
        }
        snprintf(detail, cap, "no calendar the job runs only on lists the day");
        return STORE_SKIP_CALENDAR;
    }
    return 0;
}

/* The shards a scheduled fire of j at `at` is made with (its results' fire_shards): the
 * job's shard count, which a fan-in counts across executors; for a local job, whose fire
 * is this executor's alone, the shards it makes of it (g: those of one of its gaps). */
static uint32_t fire_count(const struct xjob *j, const struct xgap *g, int64_t at)
{
    if (!executor__is_local(j))
        return j->def.shards;
    if (g != NULL)
        return g->n;
    uint32_t n = 0;
    for (uint32_t s = 0; s < j->def.shards; s++)
        n += executor__owns(j, s, at);
    return n;
}

/* A scheduled fire of j at `at` (g: of one of its gaps) is not made, for `why`: one record
 * for the whole fire (shard -1) when every shard of it is this executor's, as in the
 * embedded server; else one per shard it owns, the others being another executor's. */
static void skip_fire(struct executor *x, struct xjob *j, const struct xgap *g, const char *base,
                      int64_t at, enum store_skip_reason why, const char *detail)
{
    uint32_t fire_shards = fire_count(j, g, at);
    char fid[STORE_FIRE_ID_MAX + 8];
    if (g == NULL && executor__owns_whole(j, at)) {
        snprintf(fid, sizeof fid, "%s#*", base);
        report_skip(x, j, fid, -1, at, why, detail, STORE_TRIGGER_SCHEDULE, fire_shards);
        return;
    }
    uint32_t n = g != NULL ? g->n : j->def.shards;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = g != NULL ? g->shards[i] : i;
        if (g != NULL || executor__owns(j, s, at)) {
            snprintf(fid, sizeof fid, "%s#%u", base, s);
            report_skip(x, j, fid, (int32_t)s, at, why, detail, STORE_TRIGGER_SCHEDULE,
                        fire_shards);
        }
    }
}

void executor__on_fire(struct executor *x, const struct sched_fire *f)
{
    struct xgap *g = NULL;
    struct xjob *j = executor__job_by_id(x, f->job);
    if (j == NULL) {
        /* not a job's own entry: a gap's (shards.c), or a job's that has gone */
        if ((g = executor__gap(x, f->job)) == NULL || (j = executor__gap_job(x, g)) == NULL)
            return;
    } else if (j->generation != f->generation) {
        /* made for a definition that has changed since the engine handed it over: the
         * change resumed the schedule from now, so this second would be lost; it is made
         * under the new definition if that fires then too (and never twice: last_fire) */
        int64_t next = 0;
        if (f->kind != SCHED_FIRE || !j->def.enabled || j->def.schedule == NULL ||
            f->at <= j->last_fire || (j->def.start_at != 0 && f->at < j->def.start_at) ||
            (j->def.end_at != 0 && f->at > j->def.end_at) ||
            cron_next(&j->def.cron, j->zone, f->at - 1, &next) != 0 || next != f->at)
            return;
    }
    if (executor__fence_drops(x, j, f, g != NULL))
        return; /* fenced: not made, nor recorded (shards.c) */
    char base[STORE_FIRE_ID_MAX];
    snprintf(base, sizeof base, "%s@%lld", j->def.name, (long long)f->at);
    (void)executor__local_base(x, j, base, sizeof base); /* it fits: checked when assigned */
    char detail[320];

    if (f->kind == SCHED_MISSED || f->kind == SCHED_DROPPED) {
        if (g == NULL && f->last > j->last_fire)
            j->last_fire = f->last;
        char last[CIVIL_RFC3339_MAX];
        struct tz_info ti;
        tz_lookup(j->zone, f->last, &ti);
        civil_format_rfc3339(f->last, ti.utoff, last);
        if (f->kind == SCHED_MISSED)
            snprintf(detail, sizeof detail,
                     "%s%llu fire(s) up to %s were more than %u s late (misfire policy %s)",
                     (f->flags & SCHED_F_AT_LEAST) ? "at least " : "", (unsigned long long)f->count,
                     last, j->def.misfire_threshold, job_misfire_name(j->def.misfire));
        else
            snprintf(detail, sizeof detail,
                     "%llu fire(s) up to %s found the scheduler's hand-over queue full",
                     (unsigned long long)f->count, last);
        /* fires nobody made because the executor that had them died: say which */
        const char *from = g != NULL                                         ? g->from
                           : j->own != NULL && f->at <= j->own->from_through ? j->own->from
                                                                             : "";
        if (f->kind == SCHED_MISSED && from[0] != '\0') {
            size_t used = strlen(detail);
            snprintf(detail + used, sizeof detail - used, "; executor %s lost", from);
        }
        skip_fire(x, j, g, base, f->at,
                  f->kind == SCHED_MISSED ? STORE_SKIP_MISFIRE : STORE_SKIP_QUEUE_FULL, detail);
        return;
    }
    if (g == NULL) { /* a gap's fires lie at or before the job's last fire: not counted */
        if (f->at <= j->last_fire) {
            /* the fire id says this fire was made already (the clock went back): not again */
            log_warn("fire already made; not made again", "job=%s fire=%s#* last_fire=%lld",
                     j->def.name, base, (long long)j->last_fire);
            return;
        }
        j->last_fire = f->at;
    }
    /* a fire the executor these shards came from may have started just before it died,
     * its record lost with it: made again it could run twice, so it is recorded instead */
    const struct xown *o = j->own;
    if (o != NULL && o->uncertain > 0 && f->at <= o->uncertain &&
        (g != NULL ? g->from[0] != '\0' : o->from[0] != '\0')) {
        snprintf(detail, sizeof detail,
                 "executor %s was lost and may have started this fire before it died (its "
                 "record did not reach the store): not made again",
                 g != NULL ? g->from : o->from);
        skip_fire(x, j, g, base, f->at, STORE_SKIP_INTERRUPTED, detail);
        return;
    }
    if (x->stopping) {
        snprintf(detail, sizeof detail, "the %s was shutting down", x->noun);
        skip_fire(x, j, g, base, f->at, STORE_SKIP_INTERRUPTED, detail);
        return;
    }
    enum store_skip_reason why = excluded(x, j, f->at, detail, sizeof detail);
    if (why != 0) {
        skip_fire(x, j, g, base, f->at, why, detail);
        return;
    }
    json_decref(
        start_fire(x, j, f->at, base,
                   (f->flags & SCHED_F_LATE) ? STORE_TRIGGER_MISFIRE : STORE_TRIGGER_SCHEDULE, 1,
                   g != NULL ? g->shards : NULL, g != NULL ? g->n : 0,
                   g != NULL || j->own == NULL ? INT64_MIN : f->at, fire_count(j, g, f->at), NULL));
}

void executor__owed(struct executor *x, const char *name, int64_t cut)
{
    const struct xjob *held = strmap_get(&x->jobs, name);
    if (held == NULL || executor__lease_check(x))
        return; /* fenced: it records nothing (shards.c) */
    int64_t next = sched_next_fire(x->sched, held->id);
    if (next <= 0 || next > cut || next <= held->last_fire)
        return; /* the engine owes nothing at or before the cut (the usual case) */
    struct xjob *j = executor__job_ready(x, name);
    if (j == NULL || !j->def.enabled || j->def.schedule == NULL)
        return;
    uint64_t count = 0;
    int64_t last = next, t = next;
    while (t != 0 && t <= cut && count < 1000000) {
        count++;
        last = t;
        if (cron_next(&j->def.cron, j->zone, t, &t) != 0 ||
            (j->def.end_at != 0 && t > j->def.end_at))
            t = 0;
    }
    char from[CIVIL_RFC3339_MAX], to[CIVIL_RFC3339_MAX], detail[320], base[STORE_FIRE_ID_MAX];
    struct tz_info ti;
    tz_lookup(j->zone, next, &ti);
    civil_format_rfc3339(next, ti.utoff, from);
    tz_lookup(j->zone, last, &ti);
    civil_format_rfc3339(last, ti.utoff, to);
    snprintf(detail, sizeof detail,
             "%llu fire(s) from %s up to %s were not handed over by the trigger engine (%lld s "
             "behind) before the job left this %s",
             (unsigned long long)count, from, to, (long long)(executor__now(x) - next), x->noun);
    snprintf(base, sizeof base, "%s@%lld", j->def.name, (long long)next);
    (void)executor__local_base(x, j, base, sizeof base);
    skip_fire(x, j, NULL, base, next, STORE_SKIP_INTERRUPTED, detail);
}

/* ---------------------------------------------------------------------------------------
 * Requests: fire now, cancel
 */

static void answer(struct executor *x, struct coord_request *req)
{
    req->reply.spool_seq = spool_last_seq(x->spool);
    req->done(req);
}

void executor__fire(struct executor *x, struct coord_request *req)
{
    const struct coord_fire *f = &req->fire;
    if (executor__lease_check(x)) {
        req->reply.rc = ty_error(&req->reply.err, TY_EUNAVAIL, NULL, -1, 0,
                                 "the %s is fenced (its lease ended): it starts nothing until "
                                 "it is given a new one",
                                 x->noun);
        answer(x, req);
        return;
    }
    struct xjob *j = executor__job(x, f->job);
    if (j == NULL) {
        req->reply.rc =
            ty_error(&req->reply.err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", f->job);
        answer(x, req);
        return;
    }
    for (uint32_t i = 0; i < f->n_shards; i++) {
        if (f->shards[i] >= j->def.shards) {
            req->reply.rc = ty_error(&req->reply.err, TY_EINVAL, "shards", -1, 0,
                                     "shards[%u]: not a shard of job \"%s\" (0-%u)", i, f->job,
                                     j->def.shards - 1);
            answer(x, req);
            return;
        }
    }
    int64_t at = f->at ? f->at : executor__now(x);
    char base[STORE_FIRE_ID_MAX];
    if (f->base != NULL) {
        snprintf(base, sizeof base, "%s", f->base);
    } else {
        char id[STORE_ID_MAX];
        new_run_id(id);
        snprintf(base, sizeof base, "%s@%lld!m%s", j->def.name, (long long)at, id);
    }
    if (executor__local_base(x, j, base, sizeof base) != 0) {
        req->reply.rc = ty_error(&req->reply.err, TY_EINVAL, "base", -1, 0,
                                 "job \"%s\" is local: fire id \"%s~%s\" would be too long", f->job,
                                 base, x->id);
        answer(x, req);
        return;
    }
    /* the shards asked for this executor owns now; the others are another executor's */
    uint32_t want = f->shards ? f->n_shards : j->def.shards, n = 0;
    uint32_t *mine = malloc((size_t)(want ? want : 1) * sizeof *mine);
    json_t *skipped = json_array();
    for (uint32_t i = 0; mine != NULL && i < want; i++) {
        uint32_t k = f->shards ? f->shards[i] : i;
        if (executor__owns_now(j, k)) {
            mine[n++] = k;
            continue;
        }
        char why[JOB_NAME_MAX + 96];
        snprintf(why, sizeof why, "shard %u of job \"%s\" is another executor's", k, f->job);
        json_array_append_new(skipped, json_pack("{s:i, s:s, s:s}", "shard", k, "reason",
                                                 "not_owned", "detail", why));
    }
    if (mine == NULL) {
        json_decref(skipped);
        req->reply.rc = ty_error(&req->reply.err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        answer(x, req);
        return;
    }
    /* the fire is made with every shard asked for, across executors; a local job's fire is
     * this executor's alone */
    uint32_t fire_shards = executor__is_local(j) ? n : want;
    json_t *runs = start_fire(x, j, at, base, f->trigger, f->attempt > 0 ? f->attempt : 1, mine, n,
                              INT64_MIN, fire_shards, skipped);
    free(mine);
    req->reply.json =
        json_pack("{s:s, s:o, s:o}", "fire_id", base, "runs", runs, "skipped", skipped);
    log_info(f->trigger == STORE_TRIGGER_DOWNSTREAM ? "downstream fire" : "run now",
             "job=%s fire=%s runs=%zu", j->def.name, base, json_array_size(runs));
    answer(x, req);
}

void executor__cancel(struct executor *x, struct coord_request *req)
{
    const char *run_id = req->name;
    struct xrun *r = strmap_get(&x->runs, run_id);
    if (r == NULL && retry_cancel(x, run_id) == 0) {
        log_info("run cancel requested", "run=%s status=canceled (a retry not started)", run_id);
        req->reply.json = json_pack("{s:s, s:s}", "run_id", run_id, "status", "canceled");
        answer(x, req);
        return;
    }
    if (r == NULL || r->state == XRUN_ENDED) {
        req->reply.rc =
            ty_error(&req->reply.err, TY_ENOENT, "run_id", -1, 0,
                     "run %s is not queued or running (unknown, or already ended)", run_id);
        answer(x, req);
        return;
    }
    const char *status = "canceled";
    if (r->state == XRUN_RUNNING) {
        r->final = STORE_RUN_CANCELED;
        exec_kill(r->proc, r->job->def.kill_grace * 1000);
        status = "canceling";
    } else {
        bool queued = r->state == XRUN_QUEUED;
        if (queued) {
            q_unlink(x, r);
        } else {
            struct xrun **p = &r->job->waiting_head[r->shard];
            while (*p != NULL && *p != r)
                p = &(*p)->wnext;
            if (*p == r)
                *p = r->wnext;
            r->job->waiting--;
            x->n_waiting--;
        }
        executor__report_run(x, r, STORE_RUN_CANCELED, true, -1, 0, NULL, 0,
                             "canceled before it started", executor__now_ms(x));
        retire(x, r, queued);
    }
    log_info("run cancel requested", "run=%s status=%s", run_id, status);
    req->reply.json = json_pack("{s:s, s:s}", "run_id", run_id, "status", status);
    answer(x, req);
}

/* ---------------------------------------------------------------------------------------
 * Fencing (shards.c): the kills
 */

void executor__fence_kill(struct executor *x)
{
    size_t pos = 0;
    const char *key;
    void *val;
    uint32_t n = 0;
    while (strmap_next(&x->runs, &pos, &key, &val)) {
        struct xrun *r = val;
        if (r->state != XRUN_RUNNING || r->proc == NULL || r->final != 0 ||
            r->job->def.on_executor_death != JOB_ORPHAN_KILL)
            continue;
        r->final = STORE_RUN_INTERRUPTED;
        r->fence_kill = true;
        exec_kill(r->proc, r->job->def.kill_grace * 1000); /* reported when it has ended */
        log_warn("fenced: killing a run (on_executor_death: kill)", "job=%s shard=%u run=%s",
                 r->job->def.name, r->shard, r->run_id);
        n++;
    }
    if (n > 0)
        log_warn("fenced: runs of jobs that say on_executor_death: kill are being killed",
                 "runs=%u", n);
}

/* ---------------------------------------------------------------------------------------
 * Stopping
 */

static void on_grace(uv_timer_t *t)
{
    struct executor *x = t->data;
    size_t pos = 0;
    const char *key;
    void *val;
    uint32_t n = 0;
    while (strmap_next(&x->runs, &pos, &key, &val)) {
        struct xrun *r = val;
        if (r->state == XRUN_RUNNING && r->proc != NULL) {
            r->final = STORE_RUN_INTERRUPTED;
            exec_kill(r->proc, 5000);
            n++;
        }
    }
    log_warn("grace period over; killing the runs left", "runs=%u", n);
}

void executor__shutdown(struct executor *x, uint32_t grace_s)
{
    if (x->stopping)
        return;
    x->stopping = true;
    log_info("executor stopping", "grace_s=%u running=%u", grace_s,
             (unsigned)atomic_load(&x->n_running));
    sched_stop(x->sched);
    /* what the engine handed over already is reported interrupted */
    struct sched_fire batch[256];
    size_t n;
    while ((n = sched_take(x->sched, batch, 256)) > 0)
        for (size_t i = 0; i < n; i++)
            executor__on_fire(x, &batch[i]);
    while (x->retries != NULL) {
        struct retry *rt = x->retries;
        char why[160];
        snprintf(why, sizeof why, "the %s shut down before the retry (due in %lld s)", x->noun,
                 (long long)((rt->due_ms - executor__now_ms(x) + 999) / 1000));
        retry_abandoned(x, rt, STORE_RUN_INTERRUPTED, why);
    }
    char why[96];
    snprintf(why, sizeof why, "the %s shut down before the run started", x->noun);
    while (x->q_head != NULL) {
        struct xrun *r = x->q_head;
        q_unlink(x, r);
        executor__report_run(x, r, STORE_RUN_INTERRUPTED, true, -1, 0, NULL, 0, why,
                             executor__now_ms(x));
        retire(x, r, true);
    }
    /* runs waiting behind their shard: every job's overlap queues */
    size_t pos = 0;
    const char *key;
    void *val;
    while (strmap_next(&x->jobs, &pos, &key, &val)) {
        struct xjob *j = val;
        for (uint32_t s = 0; s < j->shard_cap; s++) {
            while (j->waiting_head[s] != NULL) {
                struct xrun *r = j->waiting_head[s];
                j->waiting_head[s] = r->wnext;
                j->waiting--;
                x->n_waiting--;
                executor__report_run(x, r, STORE_RUN_INTERRUPTED, true, -1, 0, NULL, 0, why,
                                     executor__now_ms(x));
                retire(x, r, false);
            }
        }
    }
    uv_timer_init(&x->loop, &x->grace_timer);
    x->grace_timer.data = x;
    x->grace_live = true;
    uv_update_time(&x->loop); /* the grace counts from now, not from the iteration's start */
    uv_timer_start(&x->grace_timer, on_grace, (uint64_t)grace_s * 1000, 0);
    maybe_stopped(x);
}
