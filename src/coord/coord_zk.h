/*
 * coord_zk.h - the cluster's coordination on ZooKeeper: the servers' side (coord_zk) and
 * the executors' side (coord_agent).
 *
 * What lives where (docs/internals/zookeeper.md has the layout and its cost):
 *
 *   <chroot>/meta/secret         the bearer servers and executors show each other
 *   <chroot>/meta/changes        the configuration doorbell (recent changes, by name)
 *   <chroot>/servers/s-<seq>     one ephemeral sequential node per server; the lowest leads
 *   <chroot>/executors/<id>      one ephemeral node per executor: its registration
 *   <chroot>/placements/<id>     the shards it owns: a head, and immutable chunks
 *                                "<gen>-<i>" below it
 *
 * Job definitions, history and results never go through ZooKeeper: an executor fetches the
 * definitions of its placements from any server and hands its results to the leader, over
 * HTTP, with the secret as bearer.  ZooKeeper holds what must be agreed on: who is alive,
 * who leads, who owns which shard, with which fencing epoch (the placement head's mzxid).
 */
#ifndef COORD_ZK_H
#define COORD_ZK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/ty_err.h"
#include "coord.h"
#include "coord_wire.h"

#define COORD_ZK_CHROOT       "/tethys" /* when the hosts string names none */
#define COORD_ZK_CHUNK_BYTES  ((size_t)768 * 1024)
#define COORD_ZK_SECRET_HEX   64
#define COORD_ZK_TIMEOUT_MS   10000                 /* --zk-session-timeout's default */
#define COORD_ZK_REQUEST_PATH "/cluster/v1/request" /* an executor's one endpoint */

/*
 * Read the digest credential "user:password" from the file at path (one line, mode 0600
 * or stricter advised): TY_ENOENT, TY_EIO, TY_EINVAL (not user:password) naming the file.
 */
int coord_zk_read_auth(const char *path, char *out, size_t cap, struct ty_err *err);

/* "h:p,h:p[/chroot]" with COORD_ZK_CHROOT appended when it names no chroot; TY_EINVAL
 * naming "--zk" for an empty or malformed string.  *out malloc'd. */
int coord_zk_hosts(const char *hosts, char **out, struct ty_err *err);

/* ---------------------------------------------------------------------------------------
 * Servers
 */

struct coord_zk_config {
    const char *name;  /* the ensemble's name ("default"), shown in coord_zk_info */
    const char *hosts; /* with chroot (coord_zk_hosts) */
    const char *auth;  /* "user:password" */
    uint32_t session_timeout_ms;
    const char *id;       /* this server's id ([A-Za-z0-9._-]) */
    const char *url;      /* where executors and other servers reach this server's API */
    const char *store;    /* the store (a postgresql:// URL): the leader reads what a dead
                             executor last fired there, to hand its shards on without a gap */
    uint32_t debounce_ms; /* changes are gathered this long before a new placement */
    /* On the loop: this server became the leader (true) or stopped being it. */
    void (*on_leader)(void *arg, bool leader);
    /* On a pool thread: record runs an executor had going when it was lost (a JSON array
     * of the store's run objects, each with "failover": true when it will be made again);
     * 0 or the store's error (asked again at the next plan).  May be NULL. */
    int (*record_lost)(void *arg, const json_t *runs, const char *executor, struct ty_err *err);
    /* On the loop, the leader: job `job` (of `domain`, at `level`) cannot be highly
     * available, for `reason` (a sentence: no executor can run it, or only one can and it
     * asks for failover), or can again (reason NULL).  Called on changes only; when a
     * server starts leading it first learns which such alerts are open, so it also clears
     * those a previous leader raised.  May be NULL. */
    void (*not_ha)(void *arg, const char *job, const char *domain, int level, const char *reason);
    /* On the loop: the secret is known (the first session made or read it): the API must
     * take it as a bearer from executors (coord_zk_secret). */
    void (*on_secret)(void *arg, const char *secret);
    void *arg;
};

/*
 * The servers' coordination: a struct coord whose requests reach executors over HTTP
 * (run now and downstream fires go to the owners of the job's shards; cancel and output to
 * the run's executor; status lists every executor, online and lost), while the assignments
 * the control plane sends it become placements the leader computes and publishes.  Call on
 * the loop's thread; the caller owns *out (coord_close, on the loop).  TY_EINVAL naming the
 * field, TY_ENOMEM, TY_EIO.
 */
int coord_zk_new(uv_loop_t *loop, const struct coord_zk_config *cfg, struct coord **out,
                 struct ty_err *err);

/*
 * Several ensembles under one server set (each domain lives in one): coords[0..n) are
 * coord_zk's, taken (closed with the result); domain subtree route_domains[i] lives in
 * ensemble route_idx[i], every other domain in coords[0].  Requests go to the ensemble
 * they concern (see coord_multi.c).  The caller owns *out.  TY_EINVAL (a route to no
 * ensemble; the coords are then still the caller's), TY_ENOMEM.
 */
int coord_multi_new(struct coord **coords, size_t n, const char *const *route_domains,
                    const size_t *route_idx, size_t n_routes, struct coord **out,
                    struct ty_err *err);

/*
 * One of several ensembles: which jobs are its own.  A job another server saved is read
 * back from the store by name (the doorbell), or every job after a gap or a large batch;
 * it is kept only when owns(arg, job, domain) says its domain lives here ("" for none),
 * and dropped otherwise, so a job moved to another ensemble's domain leaves this one.
 * Set by coord_multi_new before the loop runs; owns is called on the loop.  Without it
 * (one ensemble) every job is kept.
 */
void coord_zk_set_owner(struct coord *c,
                        bool (*owns)(void *arg, const char *job, const char *domain), void *arg);

/* What this server sees of its ensemble, for GET /api/v1/zk/clusters: {"name", "zk",
 * "connected", "role", "leader_url", "executors_online", "executors_lost", "jobs"}.  A new
 * reference; any thread. */
json_t *coord_zk_info(struct coord *c);

/* Is this server the leader now (any thread)? */
bool coord_zk_is_leader(struct coord *c);

/* The URL of the leader's API ("" when none is known), into buf.  Any thread. */
void coord_zk_leader_url(struct coord *c, char *buf, size_t cap);

/* ---------------------------------------------------------------------------------------
 * Executors
 */

struct coord_agent_config {
    const char *hosts; /* with chroot (coord_zk_hosts) */
    const char *auth;
    uint32_t session_timeout_ms;
    struct coord_member member;     /* the executor: requests go to member.submit */
    struct coord_member_info *info; /* its registration, borrowed: the caller fills id,
                                       host, url, labels, domains, capacity, version, pid
                                       and started_ms; the agent the rest */
    /* Fence (true) when the lease ends; unfence (false) once a new session's placement is
     * applied.  Called on the agent's loop. */
    void (*fence)(void *arg, bool fenced);
    /* The lease's end (CLOCK_BOOTTIME ns; 0 none), given every tick and before unfencing,
     * so the executor checks it itself before it starts anything (executor_set_lease).
     * Called on the agent's loop. */
    void (*lease)(void *arg, int64_t until_ns);
    /* A sample of the executor's figures for its registration (running, cpu, memory,
     * load), on the loop; may be NULL. */
    void (*sample)(void *arg, struct coord_member_info *info);
    void *arg;
};

struct coord_agent;

/* Start on `loop` (its thread).  The caller owns *out (coord_agent_close).  TY_EINVAL,
 * TY_ENOMEM, TY_EIO. */
int coord_agent_new(uv_loop_t *loop, const struct coord_agent_config *cfg, struct coord_agent **out,
                    struct ty_err *err);

/*
 * The store side of the executor's result sink (executor_config.deliver): POST the
 * results to the leader's /api/v1/cluster/results and wait for its answer.  Blocks (the
 * spool thread).  TY_EUNAVAIL when no leader is known or it does not answer: the results
 * stay in the spool.
 */
int coord_agent_deliver(void *agent, const struct coord_result *const *results, size_t n,
                        struct ty_err *err);

/* The secret, once known ("" before), into buf.  Any thread. */
void coord_agent_secret(struct coord_agent *a, char *buf, size_t cap);

/* Deregister and close the session (on the loop); the loop then runs out of the agent's
 * handles and work, and coord_agent_free frees it.  Close the agent only after the
 * executor has stopped: the executor's answers come back through the agent's handles. */
void coord_agent_close(struct coord_agent *a);
void coord_agent_free(struct coord_agent *a);

#endif
