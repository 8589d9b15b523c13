/*
 * server_impl.h - the control plane's state, shared by the files of src/server only.
 *
 * Owners: the loop thread (server.c) owns the coord, the timers, assignment and fan-in
 * firing; the writer thread (writer.c) owns the write connection, the open alerts, the
 * fan-in barriers and the live table of runs (read by API threads under live_mu); API
 * threads own nothing and talk to the loop by message (server__call) and to the writer by
 * queueing operations.
 */
#ifndef SERVER_IMPL_H
#define SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "../core/domain.h"
#include "../core/strmap.h"
#include "server.h"

/* ---- the writer (writer.c) ------------------------------------------------------------- */

enum wop_kind { W_ALERT = 1, W_CLEAR, W_CLEAR_ANY, W_PRUNE, W_RELOAD, W_BATCH };

struct wop {
    enum wop_kind kind;
    struct store_alert alert; /* W_ALERT, W_CLEAR and W_CLEAR_ANY (key) */
    char *blob;               /* owns the strings alert points to */
    /* W_BATCH: a sink's batch, waited for by the thread that queued it */
    const struct coord_result *const *results;
    size_t n;
    int rc;
    struct ty_err err;
    bool done;
    pthread_cond_t *cv;
    uint64_t seq;
    struct wop *next;
};

/* ---- messages to the loop (server.c) --------------------------------------------------- */

enum smsg_kind {
    SMSG_JOB_CHANGED = 1, /* name; text NULL when deleted; secrets */
    SMSG_JOBS_CHANGED,    /* a batch: req (COORD_ASSIGN) and jobs, parallel to req->assign */
    SMSG_ASSIGN,          /* start-up: req to send; num 1 for the last of the set */
    SMSG_CALENDAR_CHANGED,
    SMSG_SEND,  /* a coord request to pass on (req, executor) */
    SMSG_CLOCK, /* test builds */
};

/* A message an API thread waits for (at most a deadline); shared by the two sides with a
 * reference count, so an answer that comes after the caller gave up frees it. */
struct smsg {
    enum smsg_kind kind;
    char *name, *text;
    json_t *secrets;
    int64_t version, num;
    struct coord_request *req;
    struct job *jobs; /* SMSG_JOBS_CHANGED: the saved jobs (empty for a deletion) */
    size_t n_jobs;
    char executor[COORD_ID_MAX];
    /* the answer */
    int rc;
    struct ty_err err;
    json_t *reply;
    struct coord_reply creply; /* SMSG_SEND: the coord's answer (json moved to reply) */
    uint64_t writer_seq;       /* the writer op it queued, to wait for (0: none) */
    bool done;
    int refs;
    struct smsg *next;
};

/* One per process; fields grouped by owner. */
#define SERVER_PEERS_MAX 128 /* ensembles (each with its secret) one server set manages */

struct server { // NOLINT(clang-analyzer-optin.performance.Padding)
    struct server_config cfg;
    pthread_mutex_t peer_mu;
    char peer_secret[SERVER_PEERS_MAX][80]; /* peer_mu: one per ensemble; "" until set */
    size_t n_peer_secrets;                  /* peer_mu */
    bool leader;                            /* peer_mu; cluster only */
    json_t *(*clusters_info)(void *arg);
    void *clusters_arg;
    char *data_dir, *db, *token;
    int64_t epoch;
    int64_t started_ms;

    /* loop */
    uv_loop_t loop;
    uv_async_t mail_async, writer_async;
    uv_signal_t sig_term, sig_int;
    uv_timer_t resource_timer, retention_timer, watchdog_timer;
    bool handles_live;
    struct coord *coord;
    bool ready, stopping, stopped;
    int exit_status;
    uint32_t sync_pending; /* initial assignment batches not yet answered */
    bool resource_disk_low, resource_mem_low, resource_store, resource_queue, resource_spool;
    struct strmap not_ha; /* keys of the not_ha alerts open (the loop raises and clears them) */
    struct strmap exec_alerts; /* a cluster leader's executor rows it raised (loop) */
    bool exec_sweep;           /* just began leading: clear every fine executor's rows once */

    /* mailbox: API threads -> loop (mail_mu) */
    pthread_mutex_t mail_mu;
    pthread_cond_t mail_cv; /* a message was answered */
    struct smsg *mail_head, *mail_tail;
    bool mail_closed;

    /* the writer thread (wr_mu) */
    struct store *writer;
    pthread_t writer_thread;
    bool writer_running;
    pthread_mutex_t wr_mu;
    pthread_cond_t wr_cv, wr_done_cv;
    struct wop *wr_head, *wr_tail;
    bool wr_stop;
    uint64_t wr_pushed, wr_committed;
    _Atomic int wr_failing; /* alert writes are failing and being retried */
    _Atomic int batches_failing;
    _Atomic int64_t failing_since_ms;
    char wr_error[TY_ERR_MSG_MAX]; /* under wr_mu: server__set_error / server__get_error */
    struct strmap delivered;       /* executor id -> (uintptr_t) last result seq written */
    /* writer-thread state */
    struct strmap open_alerts; /* key -> (void *)1 */
    struct strmap barriers;    /* fire base -> struct barrier * */
    json_t *downstream;        /* fires to make, for the loop: [{"job","base","at"}] (wr_mu) */

    /* live state of runs (live_mu): written by the writer, read by API threads */
    pthread_mutex_t live_mu;
    struct strmap live_runs; /* run id -> struct live_run * */
    struct strmap live_jobs; /* job name -> struct live_job * */
    json_t *executors;       /* the executors' status as last sampled (an array) */

    /* the loader thread: the configuration to the executors at start (config.c) */
    pthread_t loader;
    bool loader_live;
    pthread_mutex_t load_mu;
    pthread_cond_t load_cv;  /* a start-up request was answered */
    uint32_t load_in_flight; /* start-up requests sent, not yet answered (load_mu) */
    _Atomic bool load_stop;

    /* readers and configuration writes (API threads) */
    pthread_key_t reader_key;
    pthread_mutex_t reader_mu; /* the pool of readers threads gave back */
    struct store *pooled[32];
    size_t n_pooled;
    pthread_mutex_t config_mu;
    struct store *config_writer;
};

struct live_run {
    char job[JOB_NAME_MAX + 1];
    enum coord_phase phase;
};

struct live_job {
    uint32_t running; /* queued for capacity or going */
    uint32_t waiting; /* behind their shard */
};

/* server.c */
/* Send m to the loop and wait for its answer, at most timeout_ms.  0 or m->rc; TY_EUNAVAIL
 * when the loop did not answer in time or is stopping.  m is the caller's (refs 1). */
int server__call(struct server *s, struct smsg *m, int timeout_ms);
struct smsg *server__msg_new(enum smsg_kind kind);
void server__msg_unref(struct server *s, struct smsg *m);
/* Wake the loop to take downstream fires and look at resources again (any thread; nothing
 * once the loop is closing). */
void server__wake(struct server *s);
void server__coord_send(struct server *s, const char *executor, struct coord_request *req,
                        coord_cb cb, void *arg);

/* writer.c */
int server__writer_start(struct server *s, struct ty_err *err);
void server__writer_stop(struct server *s);
/* Queue an alert raise / clear, a prune (never blocks); returns the op's seq. */
uint64_t server__raise(struct server *s, const struct store_alert *a);
uint64_t server__clear(struct server *s, const char *key);
/* server__clear, also when this server does not know the alert as open: in a cluster another
 * server (an earlier leader) may have raised it. */
uint64_t server__clear_any(struct server *s, const char *key);
uint64_t server__prune(struct server *s);
/* Read the open alerts again into the set the writer checks clears against: a server that
 * starts leading a cluster takes over the alerts an earlier leader raised.  Done by the
 * writer thread; the sequence number. */
uint64_t server__reload_alerts(struct server *s);
/* The store's last write error (wr_error, under wr_mu): set, copy into buf[cap]. */
void server__set_error(struct server *s, const char *msg);
void server__get_error(struct server *s, char *buf, size_t cap);
/* Wait (at most timeout_ms) until ops up to seq are written, or writes are failing. */
void server__writer_sync(struct server *s, uint64_t seq, int timeout_ms);
/* Wait (at most timeout_ms) until the results of `executor` up to seq are in the store, or
 * deliveries are failing. */
void server__delivered_sync(struct server *s, const char *executor, uint64_t seq, int timeout_ms);
/* Fires the writer found ready for their downstream jobs (the loop takes them). */
json_t *server__take_downstream(struct server *s);

/* alerts.c: decisions about alerts, for the writer (results) and the loop (jobs,
 * resources) */
struct alert_tx;
void alerts__result(struct server *s, struct alert_tx *tx, const struct coord_result *r);
/* A result the store refused as a second start of its fire (why: the store's message):
 * the "double_start" alert of that fire, in the abnormal jobs table. */
void alerts__double_start(struct server *s, struct alert_tx *tx, const struct coord_result *r,
                          const char *why);
/* A job saved or removed: its not_ha alert (and, removed, its other alerts) raised or
 * cleared.  Returns the writer op's seq to wait for, 0 when nothing was queued. */
uint64_t alerts__job_defined(struct server *s, const struct job *j);
/* A cluster's job cannot be highly available for `reason`, or can again (reason NULL): its
 * not_ha alert raised (or updated) or cleared.  Loop; the writer's sequence number. */
uint64_t alerts__not_ha(struct server *s, const char *job, const char *domain, int level,
                        const char *reason);
uint64_t alerts__job_removed(struct server *s, const char *name);
void alerts__resources(struct server *s, const json_t *executors);

/* config.c: every job and calendar to the executors (at start: the loader thread; its
 * requests through the loop, SMSG_ASSIGN; stopped and joined by server__loader_stop); a
 * saved one (the loop's side of SMSG_JOB_CHANGED / SMSG_CALENDAR_CHANGED), a batch
 * (SMSG_JOBS_CHANGED) */
int server__assign_all(struct server *s, struct ty_err *err);
void server__loader_stop(struct server *s);
void server__load_batch(struct server *s, struct smsg *m);
void server__job_changed(struct server *s, struct smsg *m);
void server__jobs_changed(struct server *s, struct smsg *m);

/* server.c: the executors have their jobs (the initial assignments are answered) */
void server__ready(struct server *s);

#endif
