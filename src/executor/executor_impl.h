/*
 * executor_impl.h - the executor's state, shared by the files of src/executor only.
 *
 * Owners: everything here belongs to the executor's loop thread, except what is marked
 * otherwise (the mailbox and the status snapshot, under their own locks; the spool, which
 * locks itself).
 */
#ifndef EXECUTOR_IMPL_H
#define EXECUTOR_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/domain.h"
#include "../core/job.h"
#include "../core/mask.h"
#include "../core/strmap.h"
#include "../exec/exec.h"
#include "../sched/sched.h"
#include "executor.h"
#include "spool.h"

struct xrun;

/* Fires at instants t with after < t <= until (shards.c). */
struct xspan {
    int64_t after, until;
};

/*
 * What a job holds beyond "every shard, for every fire" (shards.c): which of its shards are
 * this executor's for which fires, its strategy "local", the executor its shards came
 * from, and the fires a fence kept it from making.  A job has none of that (struct xjob's
 * own is NULL) when one executor owns everything: the embedded server.
 */
struct xown {
    bool local;              /* strategy "local": its fire ids carry this executor's id */
    bool partial;            /* spans[] and rest say which shards it owns; else every one */
    struct xspan rest;       /* partial: shards n_spans and up */
    char from[COORD_ID_MAX]; /* the executor its shards came from when it died ("": none) */
    int64_t from_through;    /* misfire records of fires at or before it name `from` */
    int64_t uncertain;       /* fires at or before it `from` may have started before it died
                                (unknown to the store): recorded skipped, not made (0: none) */
    int64_t hole_after;      /* a hole: fires in (hole_after, hole_until] a fence dropped */
    int64_t hole_until;      /* 0: no hole; INT64_MAX: the fence is still on */
    int64_t fenced_resume;   /* resume_after of an assignment taken while fenced (0: none) */
    uint32_t n_spans;
    struct xspan spans[]; /* partial: per shard, the fires it owns */
};

/*
 * A gap (shards.c): the fires of a job in (after, through], for shards this executor owns
 * but did not make them for (shards it was just given; fires a fence dropped), made by a
 * trigger-engine entry of its own so that the job's misfire policy meets them exactly as
 * it meets a resumed job's.  Runs and records of a gap are the job's, as usual.
 */
struct xgap {
    uint32_t id;                /* its trigger-engine id */
    uint32_t job_id;            /* the job's own engine id ... */
    char job[JOB_NAME_MAX + 1]; /* ... and name: a gap outlived by its job fires nothing */
    int64_t after, through;
    int64_t done_ms; /* set: the engine has handed everything over by then; 0: not set yet */
    char from[COORD_ID_MAX];
    struct xgap *next;
    uint32_t n;
    uint32_t shards[];
};

/*
 * A job as the executor holds it: compact or ready (jobs.c).  A compact job (text not NULL)
 * is its definition as compact text and the fields up to def; its entry is allocated
 * without def, so nothing may touch def, running or waiting_head (shard_cap is 0) until
 * it is made ready: executor__job_by_id, executor__job_ready, and executor__job once the
 * executor has reconciled give ready jobs only.  A ready job stays ready.
 */
struct xjob {
    uint32_t id;         /* trigger engine id */
    uint32_t generation; /* bumped on every change; stale fires are ignored */
    int64_t version;     /* store version of the definition */
    int64_t epoch;       /* fencing epoch of its assignment: new runs carry it */
    const struct tz_zone *zone;
    struct mask_set *masks;     /* its secret values, hidden in its runs' output (or NULL) */
    int64_t last_fire;          /* latest scheduled fire made (schedule trigger), seconds */
    uint32_t shard_cap;         /* length of the per-shard arrays (never shrinks) */
    uint32_t unfences;          /* executor's unfence count when it came (shards.c) */
    uint32_t *running;          /* per shard: runs queued for capacity or going now */
    struct xrun **waiting_head; /* per shard: runs queued behind a running one (overlap) */
    uint32_t waiting;           /* total queued behind running ones */
    bool deleted;               /* removed from the table; freed when its last run ends */
    uint32_t refs;              /* runs pointing at it */
    uint32_t sync;              /* the full assignment set it was last given in */
    struct xown *own;           /* NULL: every shard, for every fire (shards.c) */
    char *text;      /* compact: its name, a NUL, its compact JSON (core/job_text.c); else NULL */
    json_t *secrets; /* compact: the secret values its assignment brought, or NULL */
    struct job def;  /* ready only: the parsed definition.  Last: a compact entry ends here */
};

enum xrun_state {
    XRUN_WAITING = 1, /* behind the previous run of its shard (overlap: queue) */
    XRUN_QUEUED,      /* waiting for capacity */
    XRUN_RUNNING,
    XRUN_ENDED,
    XRUN_PLANNED, /* a retry's run, reported while it waits for its backoff */
};

struct xrun {
    struct executor *owner;
    char run_id[STORE_ID_MAX];
    char fire_id[STORE_FIRE_ID_MAX];
    char trace_id[33];
    struct xjob *job;
    uint32_t shard;
    uint32_t attempt;
    uint32_t fire_shards; /* shards its fire was made with */
    enum store_trigger trigger;
    enum xrun_state state;
    int64_t epoch; /* the fencing epoch it was accepted under (an adopted run keeps its own) */
    int64_t scheduled_at;
    int64_t queued_at_ms;
    int64_t started_at_ms;
    struct exec_run *proc;
    struct mask_set *masks; /* the job's secret values when the run started (a reference) */
    pid_t pid;
    uint64_t pid_start;
    bool adopted;
    bool accepted;   /* recorded already (waited behind its shard, or a retry): never dropped */
    bool fence_kill; /* killed because the executor was fenced (its lease ended) */
    bool late_ok;    /* queued past the misfire threshold once and kept by the policy */
    enum store_run_status final; /* set when a kill was ordered: timeout / canceled / ... */
    uv_timer_t timeout_timer, alarm_timer;
    bool timers_live;
    int closing; /* timer close callbacks still to come */
    bool alarm_raised;
    struct xrun *next, *prev; /* in the capacity queue */
    struct xrun *wnext;       /* in a shard's overlap queue */
};

struct retry;

/* Requests from other threads, in order. */
struct xmail {
    struct coord_request *req; /* NULL: a control message (kind) */
    int kind;                  /* XMAIL_* */
    uint32_t grace_s;
    void (*done)(void *arg);
    void *done_arg;
    struct xmail *next;
};

enum { XMAIL_REQUEST = 0, XMAIL_STOP = 1, XMAIL_FENCE = 2, XMAIL_UNFENCE = 3 };

struct recycle {
    char run_id[STORE_ID_MAX];
    int64_t ended_ms;
};

/* One per executor; fields grouped by owner and meaning. */
struct executor { // NOLINT(clang-analyzer-optin.performance.Padding)
    struct executor_config cfg;
    char id[COORD_ID_MAX];
    char *data_dir, *runs_dir, *kind;
    const char *noun; /* what users call it in messages: "server" when embedded in one */
    char boot_id[64];
    int64_t started_ms;

    uv_loop_t loop;
    uv_thread_t thread;
    bool thread_live, loop_live;
    uv_async_t mail_async, sched_async;
    uv_timer_t recycle_timer, sweep_timer, status_timer;
    struct sched *sched;
    struct spool *spool;
    json_t *recovered;  /* the spool's unfinished runs, reconciled when the loop starts */
    json_t *last_fires; /* the spool's latest scheduled fire per job (consumed by jobs.c) */

    /* mailbox: any thread -> loop (mail_mu) */
    pthread_mutex_t mail_mu;
    struct xmail *mail_head, *mail_tail;
    bool mail_closed;

    /* jobs (loop) */
    uint32_t sync;          /* full assignment sets received */
    bool reconciled;        /* the previous process's runs are dealt with (recover.c) */
    struct xmail *deferred; /* fire/cancel requests that came before that, in order */
    struct xmail *deferred_tail;
    struct strmap jobs;  /* name -> struct xjob* */
    struct xjob **by_id; /* trigger-engine id -> job */
    uint32_t ids_used, ids_cap;
    uint32_t *free_ids;
    uint32_t n_free_ids;
    struct strmap calendars; /* name -> struct calendar* */
    struct xgap *gaps;       /* gaps whose engine entries may still hand fires over */

    /* fencing (shards.c): `fenced` is set at once by executor_fence (any thread), so the
     * loop starts nothing from that moment on; the loop clears it when it unfences */
    _Atomic bool fenced;
    _Atomic int64_t lease_until_ns; /* CLOCK_BOOTTIME; 0: no lease (executor_set_lease) */
    bool fence_on;                  /* the loop has dealt with the fence (killed what it kills) */
    uint32_t unfences;              /* unfences so far */
    int64_t unfenced_at;            /* the last unfence: fires at or before it were the fence's */

    /* runs (loop) */
    struct strmap runs;           /* run_id -> struct xrun* (not yet ended) */
    struct xrun *q_head, *q_tail; /* waiting for capacity, oldest first */
    _Atomic uint32_t q_len;       /* atomics: read by status requests on other threads */
    _Atomic uint32_t n_running;
    _Atomic uint32_t n_waiting;
    _Atomic int64_t epoch; /* the newest assignment epoch held */
    struct retry *retries; /* retries waiting for their backoff (runs.c) */
    uv_idle_t pump_idle;   /* starts queued runs a slice at a time (runs.c) */
    bool pump_live;

    /* overload figures (loop): starts and fires per second, misfires in the queue */
    _Atomic uint64_t starts, demand, queue_misfires;
    struct rate_sample {
        int64_t at_ms;
        uint64_t starts, demand;
    } rates[20]; /* the last 5 s, a sample every 250 ms (a ring) */
    size_t rate_next;
    _Atomic int64_t oldest_wait_ms;
    double start_rate, demand_rate; /* under status_mu */
    _Atomic bool overloaded;        /* runs misfire in the queue or wait long (see runs.c) */
    _Atomic bool queue_full;        /* a fire found the queue full; until it is half empty */
    int64_t overload_seen_ms;       /* the last sign of overload */

    /* output files (loop): finished runs' files are emptied and reused */
    uint32_t *pool;
    size_t pool_len, pool_cap;
    uint32_t pool_seq;
    struct recycle *recycle;
    size_t rc_head, rc_len, rc_cap;

    /* figures for readers on other threads that are not single atomics (status_mu) */
    pthread_mutex_t status_mu;

    /* stopping (loop) */
    bool stopping;
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
    uv_timer_t grace_timer;
    bool grace_live;
};

/* executor.c */
int64_t executor__now(const struct executor *x);
int64_t executor__now_ms(const struct executor *x);
/* Report a result (copied into the spool at once; never blocks on the store). */
void executor__result(struct executor *x, struct coord_result *r);
/* Tell the owner the status changed (cfg.changed), if it did. */
void executor__status_changed(struct executor *x);
/* Requests the loop held back until the previous process's runs were reconciled. */
void executor__run_deferred(struct executor *x);
/* Take every fire the trigger engine has handed over and make it now (the loop's). */
void executor__drain_fires(struct executor *x);
/* Every run has ended after a stop: drain the spool, close the loop's handles, tell the
 * owner (runs.c calls it). */
void executor__stopped(struct executor *x);

/* jobs.c: the job table.  executor__job gives the job as held: ready once the executor
 * has reconciled (nothing runs before), maybe compact until then; executor__job_ready and
 * executor__job_by_id always a ready one.  NULL when there is no such job, or its
 * definition cannot be read (logged; it does not fire then). */
struct xjob *executor__job(struct executor *x, const char *name);
struct xjob *executor__job_ready(struct executor *x, const char *name);
struct xjob *executor__job_by_id(struct executor *x, uint32_t id);
/* Hold, change or remove a job as assignment a says; a change of its shards takes effect
 * at cut (shards.c).  0, or a TY_E* code with err naming the job: a definition or shard
 * list it cannot take changes nothing. */
int executor__assign(struct executor *x, const struct coord_assignment *a, int64_t cut,
                     struct ty_err *err);
/* A trigger-engine id (TY_ERANGE: max_jobs in use, TY_ENOMEM), and giving one back. */
int executor__id_alloc(struct executor *x, uint32_t *id);
void executor__id_free(struct executor *x, uint32_t id);
int executor__calendar(struct executor *x, const char *name, const char *json);
const struct calendar *executor__calendar_get(struct executor *x, const char *name);
void executor__job_release(struct executor *x, struct xjob *j);
/* Free every job (at the end, no run left). */
void executor__jobs_free(struct executor *x);

/* runs.c */
void executor__on_fire(struct executor *x, const struct sched_fire *f);
void executor__fire(struct executor *x, struct coord_request *req);
void executor__cancel(struct executor *x, struct coord_request *req);
void executor__shutdown(struct executor *x, uint32_t grace_s);
void executor__expire_queue(struct executor *x);
/* Report run r with status st (runs.c): queued and running say where it stands; a final
 * status ends it, settled saying that no other attempt of its shard of its fire follows.
 * output (output_len bytes, may be NULL) is its kept tail, secrets already hidden. */
void executor__report_run(struct executor *x, const struct xrun *r, enum store_run_status st,
                          bool settled, int exit_code, int sig, const char *output,
                          size_t output_len, const char *error, int64_t ended_ms);
/* Watch a running run's timeout and alarm, elapsed_ms into the run (runs.c). */
void executor__arm_timers(struct executor *x, struct xrun *r, int64_t elapsed_ms);
/* A run has ended (exec's callback, runs.c): report it, retry or retire it. */
void executor__on_exit(struct exec_run *proc, const struct exec_result *res, void *arg);
/* Fenced: kill the runs of jobs whose on_executor_death is "kill" (runs.c). */
void executor__fence_kill(struct executor *x);
/* Unfenced: the retries whose backoff ended while fenced go now; queued runs start. */
void executor__retries_resume(struct executor *x);
void executor__pump(struct executor *x);
/* Job `name` leaves: the fires at or before cut the engine still owes it are recorded
 * skipped (shards.c, "the cut"). */
void executor__owed(struct executor *x, const char *name, int64_t cut);

/* recover.c */
void executor__recover(struct executor *x);

/* shards.c: ownership, gaps, the cut, local fire ids, fencing (see its top comment) */
/* Shard `shard` of j is this executor's for its fire at `at`; ... for a fire made now. */
bool executor__owns(const struct xjob *j, uint32_t shard, int64_t at);
bool executor__owns_now(const struct xjob *j, uint32_t shard);
/* Every shard of j (ready) is this executor's for its fire at `at`. */
bool executor__owns_whole(const struct xjob *j, int64_t at);
bool executor__is_local(const struct xjob *j);
/* a's shards are ascending, each below `shards` (0: not known).  TY_EINVAL naming "shards". */
int executor__own_check(const struct coord_assignment *a, uint32_t shards, struct ty_err *err);
/* a gives held job j another set of shards than it owns now. */
bool executor__own_changes(const struct xjob *j, const struct coord_assignment *a);
/* Apply a's shards, strategy, `from` and resume_after to j (fresh: new here; else held,
 * and ready once the executor has reconciled) at cut.  0 or TY_ENOMEM with err. */
int executor__own_assign(struct executor *x, struct xjob *j, const struct coord_assignment *a,
                         bool fresh, bool local, int64_t cut, struct ty_err *err);
/* The cut of assignment request req (set: the full set it belongs to); takes what the
 * engine handed over first. */
int64_t executor__cut(struct executor *x, const struct coord_request *req, uint32_t set);
/* A local job named `job` can have fire ids here (TY_EINVAL naming "strategy"). */
int executor__local_fits(const struct executor *x, const char *job, struct ty_err *err);
/* Append "~<executor>" to fire id base `base` (of cap bytes) when j is local; TY_ERANGE
 * (base unchanged) when the fire id would not fit. */
int executor__local_base(const struct executor *x, const struct xjob *j, char *base, size_t cap);
/* The gap with engine id `id`, or NULL; the (ready) job it fires for, or NULL. */
struct xgap *executor__gap(struct executor *x, uint32_t id);
struct xjob *executor__gap_job(struct executor *x, const struct xgap *g);
/* Drop the gaps the engine is done with (all: every one, at the end, engine stopped). */
void executor__gaps_sweep(struct executor *x, bool all);
/* Fire f of j (gap: of one of its gaps) is the fence's: not made, noted in j's hole. */
bool executor__fence_drops(struct executor *x, struct xjob *j, const struct sched_fire *f,
                           bool gap);
/* The loop's side of executor_fence. */
void executor__fence_apply(struct executor *x, bool on);

/* outputs.c */
void executor__output_path(const struct executor *x, const char *run_id, char *buf, size_t cap);
const char *executor__spare_output(struct executor *x, char *buf, size_t cap);
void executor__output_done(struct executor *x, const char *run_id);
void executor__outputs_start(struct executor *x);
void executor__read_output(struct executor *x, struct coord_request *req);
/* The tail of a run's output as it is recorded: read from its file, its secrets hidden.
 * *buf is malloc'd (free it); NULL with len 0 when there is none. */
void executor__output_tail(struct executor *x, const char *run_id, size_t cap,
                           const struct mask_set *masks, char **buf, size_t *len);

/* The lease ran out while nothing fenced us yet (a stopped process's threads all wake at
 * once): fence now, before anything starts.  Returns whether the executor is fenced.  Any
 * of the executor's threads. */
bool executor__lease_check(struct executor *x);

#endif
