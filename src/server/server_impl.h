/*
 * server_impl.h - the server's state, shared by the files of src/server only.
 */
#ifndef SERVER_IMPL_H
#define SERVER_IMPL_H

#include <stdatomic.h>

#include "../api/http.h"
#include "../core/strmap.h"
#include "server.h"

/* A write for the store thread. */
enum wop_kind { W_RUN = 1, W_SKIP, W_ALERT, W_CLEAR, W_PRUNE };

struct wop {
    enum wop_kind kind;
    struct store_run run;
    struct store_skip skip;
    struct store_alert alert;
    char *blob;   /* owns every string the op points to */
    uint64_t seq; /* 1, 2, ... in the order pushed */
    struct wop *next;
};

/* One per process; fields are grouped by owner and meaning, not packed. */
struct server { // NOLINT(clang-analyzer-optin.performance.Padding)
    struct server_opts opts;
    char *data_dir, *db_path, *runs_dir, *url;
    int lock_fd;
    char token[65];
    int64_t epoch;
    char boot_id[64];
    int64_t started_ms;
    _Atomic int64_t clock_offset_ns; /* test builds only: shifts the wall clock */

    uv_loop_t loop;
    uv_async_t sched_async, mail_async, store_async;
    uv_signal_t sig_term, sig_int;
    uv_timer_t resource_timer, retention_timer, sweep_timer;
    bool handles_live;
    struct sched *sched;
    struct http_server *http;

    /* mailbox: HTTP threads -> loop */
    pthread_mutex_t mail_mu;
    struct server_msg *mail_head, *mail_tail;
    bool mail_closed;

    /* store writer thread */
    struct store *writer;
    pthread_t store_thread;
    bool store_running;
    pthread_mutex_t st_mu;
    pthread_cond_t st_cv;
    struct wop *st_head, *st_tail;
    size_t st_len;
    bool st_stop;
    uint64_t st_pushed, st_committed;    /* sequence of the last op queued, written */
    pthread_cond_t st_done_cv;           /* st_committed moved */
    _Atomic int st_failing;              /* last batch failed: writes are being retried */
    _Atomic int64_t st_failing_since_ms; /* when the current failure began */
    char st_error[TY_ERR_MSG_MAX];
    _Atomic uint64_t st_written, st_retries;

    /* readers for HTTP threads */
    pthread_key_t reader_key;
    pthread_mutex_t config_mu;
    struct store *config_writer; /* used under config_mu */

    /* jobs (loop thread) */
    struct strmap jobs;  /* name -> struct sjob* */
    struct sjob **by_id; /* trigger-engine id -> job */
    uint32_t ids_used, ids_cap;
    uint32_t *free_ids;
    uint32_t n_free_ids;
    struct strmap calendars; /* name -> struct calendar* */
    struct strmap domains;   /* path -> struct domain* */
    json_t *last_fires;      /* from the store at start: {"job": epoch} */

    /* runs (loop thread) */
    struct strmap runs;           /* run_id -> struct srun* (not yet ended) */
    struct srun *q_head, *q_tail; /* waiting for executor capacity, oldest first */
    uint32_t q_len;
    uint32_t n_running;
    uint64_t run_seq;
    struct strmap fires;   /* fire prefix -> struct fire_state* (fan-in barrier) */
    struct retry *retries; /* retries waiting for their backoff (runner.c) */

    /* output files (loop thread): finished runs' files are emptied and reused */
    uint32_t *pool; /* numbers of spare files runs/pool/p<N> */
    size_t pool_len, pool_cap;
    uint32_t pool_seq;
    struct recycle *recycle; /* finished runs, oldest first (a ring) */
    size_t rc_head, rc_len, rc_cap;
    uv_timer_t recycle_timer;
    uv_timer_t watchdog_timer; /* "WATCHDOG=1" to the service manager, when it asks */

    /* alerts (loop thread): keys of open alerts */
    struct strmap open_alerts;
    bool resource_disk_low, resource_mem_low, resource_store_failing, resource_queue_full;

    /* shutdown */
    bool stopping;
    void (*on_drained)(struct server *);
    uv_timer_t grace_timer;
    bool grace_live;
    int exit_status;
};

struct recycle {
    char run_id[STORE_ID_MAX];
    int64_t ended_ms;
};

/* output files (server.c): a spare file for a new run, or NULL; hand back a finished
 * run's file (reused ten seconds later, when followers have read it) */
const char *server__spare_output(struct server *s, char *buf, size_t cap);
void server__output_done(struct server *s, const char *run_id);

/* store thread helpers (server.c) */
void server__store_prune(struct server *s);

#endif
