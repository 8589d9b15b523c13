/*
 * zkc.h - one ZooKeeper session, driven from a libuv loop, with a fencing lease.
 *
 * The C client (libzookeeper_mt) calls its completions and watchers on a thread of its
 * own.  Those callbacks here never block and never call back into the client: each copies
 * what it got into a queue entry and wakes the owner's loop (uv_async), and the caller's
 * callbacks run there, on the loop, in the order the client produced them.  So a caller
 * writes ordinary single-threaded loop code.
 *
 * Sessions.  zkc_open starts connecting and returns; on_event tells the loop when a
 * session is established (new, or the same one again after a reconnect), lost for a while
 * (disconnected: the session may live on), expired (gone: its ephemeral nodes and watches
 * with it) or refused (bad credentials).  After an expiry zkc makes a new session by
 * itself; the caller re-creates its ephemeral nodes and re-arms its watches when
 * ZKC_CONNECTED comes with new_session set.
 *
 * Lease.  An executor must stop starting runs before the ensemble could expire its
 * session and give its shards to someone else.  The ensemble expires a session when it
 * has heard nothing from the client for the negotiated timeout, counted from the last
 * request it received; a request we sent at t was received at or after t.  So after every
 * answered request sent at t the lease runs to t + ZKC_LEASE_FRACTION * negotiated
 * timeout, on CLOCK_BOOTTIME (which keeps counting through SIGSTOP, a suspended machine
 * or a paused VM, where CLOCK_MONOTONIC would not).  zkc sends a cheap read every sixth
 * of the timeout to keep the lease fresh while the caller is idle.  The lease ends at once
 * on expiry; a new session starts with no lease until its first answered request.
 *
 * Every node zkc creates carries a digest ACL for the configured identity (all
 * permissions to it, nothing to anyone else), and the session authenticates with it.
 *
 * Paths are relative to the chroot in the hosts string ("h1:2181,h2:2181/tethys").  zkc
 * adds the chroot to every path itself (and strips it from the paths it hands back), on a
 * handle without one, so the same session creates the chroot's nodes, each level with the
 * ACL, before anything else on every new session; ZKC_CONNECTED comes once they exist.
 */
#ifndef COORD_ZKC_H
#define COORD_ZKC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../core/ty_err.h"

#define ZKC_LEASE_FRACTION 0.6 /* of the negotiated session timeout */

/* The largest request zkc sends, encoded (bytes): the ensemble's jute.maxbuffer (1 MiB by
 * default) less room for its own framing.  A bigger one would make the server drop the
 * connection, so zkc_create, zkc_set and zkc_multi refuse it. */
#define ZKC_MAX_REQUEST (1024 * 1024 - 64 * 1024)

/* Error codes of the answers: the client's own (ZOK 0, ZNONODE, ZNODEEXISTS, ZBADVERSION,
 * ZCONNECTIONLOSS, ZSESSIONEXPIRED, ZNOAUTH, ZNOTEMPTY, ...), so callers compare with
 * zookeeper.h's names.  zkc_strerror names them. */
const char *zkc_strerror(int zrc);

enum zkc_event {
    ZKC_CONNECTED = 1, /* connected; new_session says whether this is a new session */
    ZKC_DISCONNECTED,  /* the connection is lost; the session may still live */
    ZKC_EXPIRED,       /* the session is gone (a new one is being made) */
    ZKC_AUTH_FAILED,   /* the ensemble refused the credentials: nothing will work (zkc
                          makes no new session; zkc_close it) */
};

struct zkc_config {
    const char *hosts;           /* "host:port,...[/chroot]" */
    uint32_t session_timeout_ms; /* asked for; the ensemble bounds it (zkc_timeout_ms) */
    const char *auth;            /* "user:password" for digest auth and every node's ACL */
    /* On the loop: the session's state changed. */
    void (*on_event)(void *arg, enum zkc_event ev, bool new_session);
    void *arg;
};

struct zkc;

/*
 * Start a session for `loop` (call on the loop's thread).  Returns at once; on_event
 * follows.  The caller owns *out (zkc_close).  cfg's strings are copied.  TY_EINVAL naming
 * the field for a bad hosts string, session_timeout_ms (0) or auth ("user:password", both
 * non-empty), TY_ENOMEM, TY_EIO when the client cannot start (a host name that does not
 * resolve).  On failure *out is untouched and what zkc_open made is released when the loop
 * next runs.  The client library resolves host names on this thread: give IP addresses
 * where the loop must never wait.
 */
int zkc_open(uv_loop_t *loop, const struct zkc_config *cfg, struct zkc **out, struct ty_err *err);

/*
 * Close the session (its ephemeral nodes go at once) and free everything, on the loop's
 * thread.  Returns at once: requests already sent get up to a second to be answered,
 * then the goodbye to the ensemble (seconds more when a server hangs) runs on a thread of
 * its own.  Callbacks of requests still in flight are called from the loop meanwhile
 * (ZCLOSING for those left without an answer); none after the loop has run its close
 * callbacks, which free z.  No watch or on_event is called after zkc_close.
 */
void zkc_close(struct zkc *z);

/* Is the lease valid now?  Any thread. */
bool zkc_lease_valid(const struct zkc *z);

/* When the lease ends (CLOCK_BOOTTIME ns; 0: no lease).  Any thread. */
int64_t zkc_lease_until_ns(const struct zkc *z);

/* The negotiated session timeout (ms; 0 before the first session) and the session id (0
 * when none).  Any thread. */
uint32_t zkc_timeout_ms(const struct zkc *z);
int64_t zkc_session_id(const struct zkc *z);

/* CLOCK_BOOTTIME now, ns. */
int64_t zkc_boottime_ns(void);

/* The current session's id and password, as the client library's clientid_t holds them
 * (zookeeper_init with them joins the session; closing that handle ends the session: how
 * a test makes a session expire).  0, or TY_EUNAVAIL before the session is established.
 * On the loop's thread. */
int zkc_session_credentials(const struct zkc *z, int64_t *id, char passwd[16]);

/* ---------------------------------------------------------------------------------------
 * Requests.  Each returns 0 (the callback will be called once, on the loop) or a TY_E*
 * code when it could not be sent (no callback then): TY_EINVAL (a path not starting with
 * '/' or that ZooKeeper refuses, bad flags, data over ZKC_MAX_REQUEST, a bad multi op),
 * TY_EUNAVAIL when there is no session handle (after an expiry until the next session
 * starts, after an auth failure, once zkc_close was called), TY_ENOMEM.  Paths and data
 * are copied.  Requests made before ZKC_CONNECTED wait in the client for the connection;
 * if the first attempt fails they fail with it (ZCONNECTIONLOSS), and under a chroot that
 * did not exist yet a request made before the retry may find no parent (ZNONODE).
 */

struct zkc_stat {
    int64_t czxid, mzxid, pzxid; /* created, last modified, children last changed */
    int32_t version, cversion;
    int32_t data_length, num_children;
    int64_t ephemeral_owner; /* session id, 0 when persistent */
    int64_t mtime_ms;        /* when it was last modified, by the ensemble's clock */
};

struct zkc_reply {
    int rc;               /* ZOK or the client's error code (ZSYSTEMERROR: no memory to
                             copy the answer) */
    const char *data;     /* get: the node's data (NULL when empty); valid during the call */
    int len;              /* its length */
    struct zkc_stat stat; /* get, exists, set, children (when rc is ZOK) */
    char **children;      /* children: names, valid during the call */
    int n_children;       /* ... their count */
    const char *path;     /* create: the path made (with its sequence number) */
    const int *multi_rc;  /* multi: each operation's result, in order */
    int n_multi;          /* ... their count */
};

typedef void (*zkc_cb)(void *arg, const struct zkc_reply *r);

/* A watch fired (on the loop): type is ZOO_CREATED_EVENT, ZOO_DELETED_EVENT,
 * ZOO_CHANGED_EVENT, ZOO_CHILD_EVENT or ZOO_NOTWATCHING_EVENT; watches are one-shot, as in
 * ZooKeeper.  A session expiry does not fire them: on_event says so instead. */
typedef void (*zkc_watch_cb)(void *arg, int type, const char *path);

#define ZKC_EPHEMERAL 1
#define ZKC_SEQUENCE  2

int zkc_create(struct zkc *z, const char *path, const void *data, int len, int flags, zkc_cb cb,
               void *arg);
/* version -1: whatever the node's version */
int zkc_set(struct zkc *z, const char *path, const void *data, int len, int version, zkc_cb cb,
            void *arg);
int zkc_delete(struct zkc *z, const char *path, int version, zkc_cb cb, void *arg);
/* w NULL: no watch.  warg is w's. */
int zkc_get(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg);
int zkc_exists(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg);
int zkc_children(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg);

enum zkc_op_type { ZKC_OP_CREATE = 1, ZKC_OP_SET, ZKC_OP_DELETE, ZKC_OP_CHECK };

struct zkc_op { /* NOLINT(clang-analyzer-optin.performance.Padding): the order reads */
    enum zkc_op_type type;
    const char *path;
    const void *data; /* CREATE, SET */
    int len;
    int flags;   /* CREATE: ZKC_EPHEMERAL | ZKC_SEQUENCE */
    int version; /* SET, DELETE, CHECK: -1 for any */
};

/* All of ops[0..n) or none (ZooKeeper's multi).  The whole request must stay under the
 * ensemble's jute.maxbuffer (1 MiB by default): TY_EINVAL when it would not. */
int zkc_multi(struct zkc *z, const struct zkc_op *ops, int n, zkc_cb cb, void *arg);

#endif
