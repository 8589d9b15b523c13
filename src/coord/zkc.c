/*
 * zkc.c - one ZooKeeper session on libzookeeper_mt, handed to a libuv loop, with a lease.
 *
 * Threads.  The client library runs two threads per handle: one does the I/O, the other
 * calls our completions and watchers.  Those callbacks (the on_* functions) only copy what
 * they got into the request's own record (or a small event record), append it to one
 * queue under z->mu and uv_async_send; they never block and never call into the client.
 * The loop (drain) takes the queue and calls the caller's callbacks in that order.  zkc
 * never holds z->mu while it calls the client, so the client's locks and ours never nest
 * the other way round.
 *
 * Records.  A request (struct req) lives from the call that sends it until its answer is
 * delivered, on z->inflight (loop only).  A watch (struct watch) lives from the request
 * that arms it until it fires and is delivered, until the answer says it was not armed
 * (the client arms one only on ZOK, or ZNONODE for exists), or until its handle closes.
 * Both are queue entries themselves, so an answer allocates only its copy of the data.
 *
 * Closing a handle (after an expiry, or in zkc_close) is done by a thread of its own,
 * never the loop: the client then says goodbye to a live server and waits up to 4.5 s for
 * a hung one.  That thread first gives the handle's unanswered requests a second to be
 * answered (after an expiry the client fails them at once), because a true answer beats
 * ZCLOSING and because zookeeper_close does not promise to call every pending completion:
 * what its completion thread had not taken when it left is dropped (and leaked).  Once
 * zookeeper_close has returned nothing of ours is called from that handle, and the loop
 * (retire) answers whatever the client left unanswered (ZCLOSING, or ZSESSIONEXPIRED after
 * an expiry) and frees the handle's unfired watches.
 *
 * Sessions and the chroot.  Handles are made without the chroot; zkc puts it in front of
 * every path itself and takes it off the paths it hands back.  So the first requests of
 * every new handle can create the chroot's levels (with the ACL) on the same session, and
 * the caller's requests, which a session serves in order, come after them.  ZKC_CONNECTED
 * waits for those creates.  After ZOO_EXPIRED_SESSION_STATE the handle is closed and a new
 * one made: at once the first time, then with a delay doubling from 100 ms to 10 s while
 * sessions keep expiring before they have lived one timeout.  A new session is told from
 * a reconnected one by its id.
 *
 * Lease.  Each request records CLOCK_BOOTTIME when it is sent.  An answer only a server
 * gives (ZOK, ZNONODE, ZNODEEXISTS, ...; never connection loss, expiry, closing or a
 * timeout) moves the lease to that send time + ZKC_LEASE_FRACTION * the negotiated
 * timeout, if later.  A timer sends exists("/") every sixth of the timeout while
 * connected.  Expiry, auth failure and zkc_close end the lease at once.  The lease, the
 * timeout and the session id are atomics so that any thread may read them.
 *
 * The client's own log goes to src/os/log at WARN, errors only and at most five lines in
 * ten seconds (with a count of those left out): with the ensemble down the client reports
 * every failed connect, dozens a second.
 */
#include "zkc.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <zookeeper.h>

#include "../core/b64.h"
#include "../core/strbuf.h"
#include "../os/log.h"

#define CLOSE_GRACE_MS       1000 /* for a handle's requests to be answered before it closes */
#define RESTART_FIRST_MS     100
#define RESTART_MAX_MS       10000
#define CLIENT_LOG_LINES     5             /* of the client's log, per window */
#define CLIENT_LOG_WINDOW_NS 10000000000LL /* 10 s */

/* Encoded sizes (jute): a length prefix, a request header, an int, a string's length. */
#define WIRE_FRAME    (4 + 8)
#define WIRE_INT      4
#define WIRE_MULTIHDR 9

enum entry_kind { ENTRY_REPLY = 1, ENTRY_WATCH, ENTRY_STATE, ENTRY_CLOSED };

/* What a client thread hands to the loop: the first member of each record below. */
struct entry {
    struct entry *next;
    enum entry_kind kind;
};

enum req_kind {
    REQ_CREATE = 1,
    REQ_SET,
    REQ_DELETE,
    REQ_GET,
    REQ_EXISTS,
    REQ_CHILDREN,
    REQ_MULTI,
    REQ_KEEPALIVE, /* zkc's own exists("/") for the lease */
    REQ_CHROOT,    /* zkc's own create of one level of the chroot */
};

struct watch;
struct session;

struct req {
    struct entry e;
    struct req *prev, *next; /* z->inflight (loop only) */
    struct zkc *z;
    enum req_kind kind;
    struct session *sess; /* the handle it went out on: valid until that one is retired */
    unsigned gen;         /* ... and its number, to compare once it may be gone */
    zkc_cb cb;            /* NULL: nobody waits for the answer */
    void *arg;
    struct watch *w; /* the watch it arms, or NULL */
    int64_t sent_ns;
    bool answered; /* under z->mu: the client called back, or zkc answered for it */
    /* the answer, written by the client's thread before it is queued */
    int rc;   /* as the client gave it */
    bool oom; /* no memory for the copy: delivered as ZSYSTEMERROR */
    char *data;
    int len;
    bool has_stat;
    struct Stat stat;
    char **children;
    int n_children;
    char *path;
    int n_ops;
    zoo_op_result_t *results; /* multi: filled by the client before it calls back */
    int *multi_rc;
};

struct watch {
    struct entry e;
    struct watch *prev, *next; /* z->watches (loop only) */
    struct zkc *z;
    unsigned gen;
    zkc_watch_cb cb;
    void *arg;
    bool fired; /* under z->mu */
    int type;
    char path[]; /* as the caller named it, under the chroot */
};

struct state_event {
    struct entry e;
    unsigned gen;
    int state;
};

/* One client handle, hence at most one session: the client never changes its id. */
struct session {
    struct entry closed; /* queued by its closer thread once zookeeper_close returned */
    struct zkc *z;       /* z and gen are read by the client's threads */
    unsigned gen;
    zhandle_t *zh;
    int unanswered; /* under z->mu: its requests the client has not answered yet */
    pthread_t closer;
    int close_reason; /* what its unanswered requests hear once it is closed */
    /* the rest is the loop's */
    bool connected;
    bool keepalive_inflight;
    bool announce_pending; /* connected, but ZKC_CONNECTED waits for the chroot */
    bool chroot_done;
    bool chroot_retry; /* a level's create was lost with the connection */
    int chroot_pending;
    int chroot_error;
    int64_t id;
    char passwd[16];
    int64_t connected_ns; /* CLOCK_BOOTTIME of its first connect, 0 before */
};

struct zkc {
    uv_loop_t *loop;
    void (*on_event)(void *arg, enum zkc_event ev, bool new_session);
    void *event_arg;
    uint32_t timeout_asked;
    char *servers; /* the hosts string without the chroot */
    char *chroot;  /* "" or "/a/b"; never changes after zkc_open */
    size_t chroot_len;
    char *auth;
    char *digest_id; /* "user:base64(sha1(user:password))" */
    struct ACL acl_entry;
    struct ACL_vector acl;

    uv_async_t async;
    uv_timer_t keepalive;
    uv_timer_t restart;
    int open_handles; /* of the three above: z is freed when the last one has closed */

    pthread_mutex_t mu;
    struct entry *head, *tail; /* under mu: what the client's threads handed over, in order */
    pthread_cond_t answered;   /* a handle's last unanswered request was answered */
    int lost_state;            /* under mu: a session state that found no memory, or 0 */
    unsigned lost_gen;

    /* the loop's */
    struct entry *ready; /* taken from the queue, being delivered */
    struct req *inflight;
    struct watch *watches;
    struct session *sess; /* NULL between an expiry and the next handle, and once closing */
    unsigned gen;
    int64_t last_session_id;
    bool announced;      /* ZKC_CONNECTED was the last thing said */
    int restarts;        /* handles made in a row without a session living a timeout */
    int handles_closing; /* closer threads running */
    bool closing;
    bool finished;

    _Atomic int64_t lease_until_ns;
    _Atomic uint32_t timeout_ms;
    _Atomic int64_t session_id;
};

static void drain(struct zkc *z);

int64_t zkc_boottime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *zkc_strerror(int zrc)
{
    switch (zrc) {
    case ZOK: return "ZOK (done)";
    case ZSYSTEMERROR: return "ZSYSTEMERROR (a system error in the client)";
    case ZRUNTIMEINCONSISTENCY: return "ZRUNTIMEINCONSISTENCY (not done: another operation failed)";
    case ZDATAINCONSISTENCY: return "ZDATAINCONSISTENCY (data inconsistency)";
    case ZCONNECTIONLOSS: return "ZCONNECTIONLOSS (connection lost: done or not, unknown)";
    case ZMARSHALLINGERROR: return "ZMARSHALLINGERROR (the request could not be encoded)";
    case ZUNIMPLEMENTED: return "ZUNIMPLEMENTED (not implemented)";
    case ZOPERATIONTIMEOUT: return "ZOPERATIONTIMEOUT (timed out)";
    case ZBADARGUMENTS: return "ZBADARGUMENTS (bad arguments)";
    case ZINVALIDSTATE: return "ZINVALIDSTATE (the handle's session is over)";
    case ZNONODE: return "ZNONODE (no such node)";
    case ZNOAUTH: return "ZNOAUTH (the node's ACL does not allow it)";
    case ZBADVERSION: return "ZBADVERSION (the node has another version)";
    case ZNOCHILDRENFOREPHEMERALS:
        return "ZNOCHILDRENFOREPHEMERALS (ephemeral nodes have no children)";
    case ZNODEEXISTS: return "ZNODEEXISTS (the node exists)";
    case ZNOTEMPTY: return "ZNOTEMPTY (the node has children)";
    case ZSESSIONEXPIRED: return "ZSESSIONEXPIRED (the session expired)";
    case ZINVALIDCALLBACK: return "ZINVALIDCALLBACK (invalid callback)";
    case ZINVALIDACL: return "ZINVALIDACL (invalid ACL)";
    case ZAUTHFAILED: return "ZAUTHFAILED (authentication failed)";
    case ZCLOSING: return "ZCLOSING (the session is being closed)";
    case ZSESSIONMOVED: return "ZSESSIONMOVED (the session moved to another server)";
    case ZNOTREADONLY: return "ZNOTREADONLY (a write to a read-only server)";
    case ZEPHEMERALONLOCALSESSION:
        return "ZEPHEMERALONLOCALSESSION (ephemeral node on a local session)";
    case ZNOWATCHER: return "ZNOWATCHER (no such watch)";
    case ZTHROTTLEDOP: return "ZTHROTTLEDOP (throttled by the server)";
    default: return "unknown ZooKeeper error";
    }
}

/* Answers only a server gives: the request reached it, so the session lived then. */
static bool server_answer(int rc)
{
    return rc == ZOK || rc == ZNONODE || rc == ZNOAUTH || rc == ZBADVERSION ||
           rc == ZNOCHILDRENFOREPHEMERALS || rc == ZNODEEXISTS || rc == ZNOTEMPTY ||
           rc == ZINVALIDACL;
}

/* Answers the client makes up when it lost the connection or the session. */
static bool lost_answer(int rc)
{
    return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
           rc == ZCLOSING || rc == ZINVALIDSTATE;
}

/* ---- the client library's log -------------------------------------------------------- */

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static _Atomic int64_t log_window_ns; /* start of the current window */
static _Atomic int log_in_window;
static _Atomic int log_dropped;

static void client_setup(void)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
}

/* Called on the client's threads and ours (one write per line, see log.c). */
static void on_client_log(const char *message)
{
    int64_t now = zkc_boottime_ns();
    int64_t start = atomic_load(&log_window_ns);
    if (now - start >= CLIENT_LOG_WINDOW_NS &&
        atomic_compare_exchange_strong(&log_window_ns, &start, now))
        atomic_store(&log_in_window, 0);
    if (atomic_fetch_add(&log_in_window, 1) >= CLIENT_LOG_LINES) {
        atomic_fetch_add(&log_dropped, 1);
        return;
    }
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    int dropped = atomic_exchange(&log_dropped, 0);
    log_warn("zookeeper client", "dropped_before=%d text=\"%.*s\"", dropped, (int)n, message);
}

/* ---- the queue ----------------------------------------------------------------------- */

static void push_locked(struct zkc *z, struct entry *e)
{
    e->next = NULL;
    if (z->tail != NULL)
        z->tail->next = e;
    else
        z->head = e;
    z->tail = e;
}

static void hand_over(struct req *r)
{
    struct zkc *z = r->z;
    pthread_mutex_lock(&z->mu);
    r->answered = true;
    push_locked(z, &r->e);
    if (--r->sess->unanswered == 0)
        pthread_cond_broadcast(&z->answered);
    pthread_mutex_unlock(&z->mu);
    uv_async_send(&z->async);
}

/* A path as the caller knows it: the chroot taken off (immutable after zkc_open). */
static const char *under_chroot(const struct zkc *z, const char *full)
{
    size_t n = z->chroot_len;
    if (n == 0 || strncmp(full, z->chroot, n) != 0 || (full[n] != '/' && full[n] != '\0'))
        return full;
    return full[n] == '/' ? full + n : "/";
}

/* ---- the client's callbacks: its completion thread, or ours inside zookeeper_close ---- */

static void on_void(int rc, const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    hand_over(r);
}

static void keep_stat(struct req *r, int rc, const struct Stat *stat)
{
    if (rc == ZOK && stat != NULL) {
        r->stat = *stat;
        r->has_stat = true;
    }
}

static void on_stat(int rc, const struct Stat *stat, const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    keep_stat(r, rc, stat);
    hand_over(r);
}

static void on_data(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    keep_stat(r, rc, stat);
    if (rc == ZOK && value != NULL && len > 0) {
        r->data = malloc((size_t)len);
        if (r->data != NULL) {
            memcpy(r->data, value, (size_t)len);
            r->len = len;
        } else {
            r->oom = true;
        }
    }
    hand_over(r);
}

static void on_children(int rc, const struct String_vector *names, const struct Stat *stat,
                        const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    keep_stat(r, rc, stat);
    if (rc == ZOK && names != NULL && names->count > 0) {
        /* one block: the pointers, then the names */
        size_t bytes = (size_t)names->count * sizeof(char *);
        for (int i = 0; i < names->count; i++)
            bytes += strlen(names->data[i]) + 1;
        char **v = malloc(bytes);
        if (v != NULL) {
            char *p = (char *)(v + names->count);
            for (int i = 0; i < names->count; i++) {
                size_t n = strlen(names->data[i]) + 1;
                memcpy(p, names->data[i], n);
                v[i] = p;
                p += n;
            }
            r->children = v;
            r->n_children = names->count;
        } else {
            r->oom = true;
        }
    }
    hand_over(r);
}

static void on_created(int rc, const char *value, const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    if (rc == ZOK && value != NULL && r->kind == REQ_CREATE) {
        r->path = strdup(under_chroot(r->z, value));
        if (r->path == NULL)
            r->oom = true;
    }
    hand_over(r);
}

static void on_multi(int rc, const void *data)
{
    struct req *r = (struct req *)data;
    r->rc = rc;
    for (int i = 0; i < r->n_ops; i++)
        r->multi_rc[i] = lost_answer(rc) ? rc : r->results[i].err;
    hand_over(r);
}

/* A watch armed by one request.  Session events reach every watch too: on_event says
 * those, so they are ignored here. */
static void on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)state;
    (void)path;
    struct watch *w = ctx;
    if (type == ZOO_SESSION_EVENT)
        return;
    struct zkc *z = w->z;
    pthread_mutex_lock(&z->mu);
    bool first = !w->fired;
    if (first) {
        w->fired = true;
        w->type = type;
        push_locked(z, &w->e);
    }
    pthread_mutex_unlock(&z->mu);
    if (first)
        uv_async_send(&z->async);
}

/* The handle's global watcher: its session's state changed. */
static void on_session_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    struct session *s = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    struct zkc *z = s->z;
    struct state_event *ev = malloc(sizeof *ev);
    pthread_mutex_lock(&z->mu);
    if (ev != NULL) {
        ev->e.kind = ENTRY_STATE;
        ev->gen = s->gen;
        ev->state = state;
        push_locked(z, &ev->e);
    } else {
        /* the latest state still reaches the loop, after what is queued */
        z->lost_state = state;
        z->lost_gen = s->gen;
    }
    pthread_mutex_unlock(&z->mu);
    uv_async_send(&z->async);
}

/* ---- records (loop) ------------------------------------------------------------------ */

static struct req *req_new(struct zkc *z, enum req_kind kind, zkc_cb cb, void *arg, int n_ops)
{
    size_t extra = (size_t)n_ops * (sizeof(zoo_op_result_t) + sizeof(int));
    struct req *r = calloc(1, sizeof *r + extra);
    if (r == NULL)
        return NULL;
    r->e.kind = ENTRY_REPLY;
    r->z = z;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    if (n_ops > 0) {
        r->n_ops = n_ops;
        r->results = (zoo_op_result_t *)(r + 1);
        r->multi_rc = (int *)(r->results + n_ops);
    }
    return r;
}

static void req_free(struct req *r)
{
    free(r->data);
    free(r->children);
    free(r->path);
    free(r);
}

/* About to go out on the current handle: on z->inflight, stamped. */
static void req_start(struct zkc *z, struct req *r)
{
    r->sess = z->sess;
    r->gen = z->sess->gen;
    r->prev = NULL;
    r->next = z->inflight;
    if (z->inflight != NULL)
        z->inflight->prev = r;
    z->inflight = r;
    pthread_mutex_lock(&z->mu);
    r->sess->unanswered++;
    pthread_mutex_unlock(&z->mu);
    r->sent_ns = zkc_boottime_ns();
}

static void req_unlink(struct zkc *z, struct req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        z->inflight = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static struct watch *watch_new(struct zkc *z, const char *path, zkc_watch_cb cb, void *arg)
{
    size_t n = strlen(path) + 1;
    struct watch *w = calloc(1, sizeof *w + n);
    if (w == NULL)
        return NULL;
    w->e.kind = ENTRY_WATCH;
    w->z = z;
    w->gen = z->sess->gen;
    w->cb = cb;
    w->arg = arg;
    memcpy(w->path, path, n);
    w->next = z->watches;
    if (z->watches != NULL)
        z->watches->prev = w;
    z->watches = w;
    return w;
}

static void watch_free(struct zkc *z, struct watch *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        z->watches = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    free(w);
}

/* After a zoo_a* call: 0 when the client took r, else the TY_E* code for the caller. */
static int req_sent(struct zkc *z, struct req *r, int zrc)
{
    if (zrc == ZOK)
        return 0;
    if (zrc == ZMARSHALLINGERROR) {
        /* the client may have registered the completion before failing to queue the
         * bytes: r stays until answered (at the latest when the handle closes), unheard */
        r->cb = NULL;
        return TY_ENOMEM;
    }
    if (r->w != NULL)
        watch_free(z, r->w);
    pthread_mutex_lock(&z->mu);
    r->sess->unanswered--;
    pthread_mutex_unlock(&z->mu);
    req_unlink(z, r);
    req_free(r);
    return zrc == ZBADARGUMENTS ? TY_EINVAL : zrc == ZINVALIDSTATE ? TY_EUNAVAIL : TY_EIO;
}

/*
 * The handle of s is closed: nothing of ours is called from it any more.  Answer its
 * requests the client left unanswered with `reason`, free its watches that never fired
 * (the fired ones are queued and freed on delivery) and free s.
 */
static void retire(struct zkc *z, struct session *s, int reason)
{
    pthread_mutex_lock(&z->mu);
    for (struct req *r = z->inflight; r != NULL; r = r->next) {
        if (r->gen != s->gen)
            continue;
        r->w = NULL; /* decided below, not by the answer */
        if (!r->answered) {
            r->rc = reason;
            for (int i = 0; i < r->n_ops; i++)
                r->multi_rc[i] = reason;
            r->answered = true;
            push_locked(z, &r->e);
        }
        r->sess = NULL;
    }
    struct watch *next;
    for (struct watch *w = z->watches; w != NULL; w = next) {
        next = w->next;
        if (w->gen == s->gen && !w->fired)
            watch_free(z, w);
    }
    pthread_mutex_unlock(&z->mu);
    free(s);
}

/* ---- sessions (loop) ----------------------------------------------------------------- */

static void event(struct zkc *z, enum zkc_event ev, bool new_session)
{
    if (!z->closing && z->on_event != NULL)
        z->on_event(z->event_arg, ev, new_session);
}

static void extend_lease(struct zkc *z, int64_t sent_ns)
{
    uint32_t t = atomic_load(&z->timeout_ms);
    if (t == 0)
        return;
    int64_t until = sent_ns + (int64_t)(ZKC_LEASE_FRACTION * (double)t * 1e6);
    if (until > atomic_load(&z->lease_until_ns))
        atomic_store(&z->lease_until_ns, until);
}

static void send_keepalive(struct zkc *z, struct session *s)
{
    if (s->keepalive_inflight)
        return;
    struct req *r = req_new(z, REQ_KEEPALIVE, NULL, NULL, 0);
    if (r == NULL)
        return; /* the next tick tries again */
    req_start(z, r);
    if (req_sent(z, r, zoo_aexists(s->zh, "/", 0, on_stat, r)) == 0)
        s->keepalive_inflight = true;
}

static void on_keepalive_timer(uv_timer_t *t)
{
    struct zkc *z = t->data;
    if (z->sess != NULL && z->sess->connected)
        send_keepalive(z, z->sess);
}

/* Create each level of the chroot ("/a", then "/a/b"); ZNODEEXISTS is fine. */
static void send_chroot(struct zkc *z, struct session *s)
{
    s->chroot_retry = false;
    s->chroot_error = 0;
    char level[PATH_MAX];
    for (size_t i = 1; i <= z->chroot_len; i++) {
        if (i < z->chroot_len && z->chroot[i] != '/')
            continue;
        if (i >= sizeof level)
            break; /* zkc_open refuses longer chroots */
        memcpy(level, z->chroot, i);
        level[i] = '\0';
        struct req *r = req_new(z, REQ_CHROOT, NULL, NULL, 0);
        if (r == NULL) {
            s->chroot_retry = true;
            break;
        }
        req_start(z, r);
        s->chroot_pending++;
        int rc = req_sent(z, r,
                          zoo_acreate(s->zh, level, "", 0, &z->acl, ZOO_PERSISTENT, on_created, r));
        if (rc != 0) {
            if (rc != TY_ENOMEM)
                s->chroot_pending--; /* r is gone; with TY_ENOMEM it will still be answered */
            s->chroot_retry = true;
            break;
        }
    }
}

static void announce(struct zkc *z, struct session *s)
{
    s->announce_pending = false;
    bool is_new = s->id != z->last_session_id;
    z->last_session_id = s->id;
    z->announced = true;
    event(z, ZKC_CONNECTED, is_new);
}

static void chroot_answered(struct zkc *z, struct session *s, int rc)
{
    s->chroot_pending--;
    if (rc != ZOK && rc != ZNODEEXISTS) {
        if (lost_answer(rc))
            s->chroot_retry = true;
        else if (s->chroot_error == 0)
            s->chroot_error = rc;
    }
    if (s->chroot_pending > 0)
        return;
    if (s->chroot_retry) {
        if (s->connected)
            send_chroot(z, s); /* else at the next connect */
        return;
    }
    s->chroot_done = true;
    if (s->chroot_error != 0)
        log_error("zookeeper chroot not made", "chroot=%s rc=%d error=\"%s\"", z->chroot,
                  s->chroot_error, zkc_strerror(s->chroot_error));
    if (s->announce_pending && s->connected)
        announce(z, s);
}

static int start_session(struct zkc *z);
static void on_restart_timer(uv_timer_t *t);

/* A new handle after an expiry: at once the first time, then 100 ms, 200 ms ... 10 s while
 * sessions keep ending before they lived a timeout (or handles cannot even start). */
static void schedule_restart(struct zkc *z)
{
    z->restarts++;
    uint64_t ms = 0;
    if (z->restarts > 1) {
        int shift = z->restarts - 2 < 7 ? z->restarts - 2 : 7;
        ms = (uint64_t)RESTART_FIRST_MS << shift;
        if (ms > RESTART_MAX_MS)
            ms = RESTART_MAX_MS;
    }
    uv_timer_start(&z->restart, on_restart_timer, ms, 0);
}

static void on_restart_timer(uv_timer_t *t)
{
    struct zkc *z = t->data;
    if (z->closing || z->sess != NULL)
        return;
    int rc = start_session(z);
    if (rc != 0) {
        log_warn("zookeeper session not started", "hosts=%s error=\"%s\"", z->servers,
                 ty_strerror(rc));
        schedule_restart(z);
    }
}

static void session_connected(struct zkc *z, struct session *s)
{
    const clientid_t *cid = zoo_client_id(s->zh);
    s->id = cid->client_id;
    memcpy(s->passwd, cid->passwd, sizeof s->passwd);
    int t = zoo_recv_timeout(s->zh);
    if (s->connected_ns == 0)
        s->connected_ns = zkc_boottime_ns();
    s->connected = true;
    atomic_store(&z->timeout_ms, t > 0 ? (uint32_t)t : 0);
    atomic_store(&z->session_id, s->id);
    uint64_t period = t >= 6 ? (uint64_t)t / 6 : 1;
    uv_timer_start(&z->keepalive, on_keepalive_timer, period, period);
    send_keepalive(z, s); /* a new session has no lease until something is answered */
    if (!s->chroot_done && s->chroot_pending == 0)
        send_chroot(z, s);
    if (s->chroot_done)
        announce(z, s);
    else
        s->announce_pending = true;
}

static void session_disconnected(struct zkc *z, struct session *s)
{
    if (!s->connected)
        return;
    s->connected = false;
    s->announce_pending = false;
    uv_timer_stop(&z->keepalive);
    if (z->announced) {
        z->announced = false;
        event(z, ZKC_DISCONNECTED, false);
    }
}

static void *closer_main(void *arg);

/* Close s's handle on a thread of its own; retire() follows on the loop (ENTRY_CLOSED). */
static void close_session(struct zkc *z, struct session *s, int reason)
{
    s->close_reason = reason;
    s->closed.kind = ENTRY_CLOSED;
    if (pthread_create(&s->closer, NULL, closer_main, s) == 0) {
        z->handles_closing++;
        return;
    }
    zookeeper_close(s->zh); /* no thread to spare: the loop waits for the goodbye */
    retire(z, s, reason);
}

/* The session is over (expired, or its credentials refused): the lease at once. */
static void session_ended(struct zkc *z, struct session *s, int reason)
{
    atomic_store(&z->lease_until_ns, 0);
    atomic_store(&z->session_id, 0);
    uv_timer_stop(&z->keepalive);
    int64_t t_ns = (int64_t)atomic_load(&z->timeout_ms) * 1000000;
    if (s->connected_ns != 0 && zkc_boottime_ns() - s->connected_ns >= t_ns)
        z->restarts = 0;
    z->sess = NULL;
    z->announced = false;
    close_session(z, s, reason);
}

static void on_state(struct zkc *z, unsigned gen, int state)
{
    struct session *s = z->sess;
    if (z->closing || s == NULL || s->gen != gen)
        return; /* from a handle already closed */
    if (state == ZOO_CONNECTED_STATE || state == ZOO_READONLY_STATE) {
        session_connected(z, s);
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
        session_ended(z, s, ZSESSIONEXPIRED);
        event(z, ZKC_EXPIRED, false);
        if (!z->closing)
            schedule_restart(z);
    } else if (state == ZOO_AUTH_FAILED_STATE) {
        session_ended(z, s, ZAUTHFAILED);
        log_error("zookeeper refused the credentials", "hosts=%s", z->servers);
        event(z, ZKC_AUTH_FAILED, false);
    } else {
        session_disconnected(z, s); /* connecting, associating, not connected */
    }
}

/* A new handle: no connection yet, the credentials and the chroot's creates queued. */
static int start_session(struct zkc *z)
{
    struct session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TY_ENOMEM;
    s->z = z;
    s->gen = ++z->gen;
    s->chroot_done = z->chroot_len == 0;
    s->zh = zookeeper_init2(z->servers, on_session_event, (int)z->timeout_asked, NULL, s, 0,
                            on_client_log);
    if (s->zh == NULL) {
        free(s);
        return TY_EIO;
    }
    if (zoo_add_auth(s->zh, "digest", z->auth, (int)strlen(z->auth), NULL, NULL) != ZOK) {
        zookeeper_close(s->zh);
        free(s);
        return TY_EIO;
    }
    z->sess = s;
    if (!s->chroot_done)
        send_chroot(z, s);
    return 0;
}

/* ---- delivery (loop) ----------------------------------------------------------------- */

static void stat_out(const struct Stat *in, struct zkc_stat *out)
{
    out->czxid = in->czxid;
    out->mzxid = in->mzxid;
    out->pzxid = in->pzxid;
    out->version = in->version;
    out->cversion = in->cversion;
    out->data_length = in->dataLength;
    out->num_children = in->numChildren;
    out->ephemeral_owner = in->ephemeralOwner;
    out->mtime_ms = in->mtime;
}

static void deliver_reply(struct zkc *z, struct req *r)
{
    req_unlink(z, r);
    struct session *s = z->sess;
    bool current = s != NULL && s->gen == r->gen;
    if (current && server_answer(r->rc))
        extend_lease(z, r->sent_ns);
    if (r->w != NULL) {
        bool armed = r->rc == ZOK || (r->kind == REQ_EXISTS && r->rc == ZNONODE);
        if (!armed)
            watch_free(z, r->w);
        r->w = NULL;
    }
    if (r->kind == REQ_KEEPALIVE) {
        if (current)
            s->keepalive_inflight = false;
    } else if (r->kind == REQ_CHROOT) {
        if (current)
            chroot_answered(z, s, r->rc);
    } else if (r->cb != NULL) {
        struct zkc_reply rep;
        memset(&rep, 0, sizeof rep);
        rep.rc = r->oom ? ZSYSTEMERROR : r->rc;
        if (r->has_stat && !r->oom)
            stat_out(&r->stat, &rep.stat);
        rep.data = r->data;
        rep.len = r->len;
        rep.children = r->children;
        rep.n_children = r->n_children;
        rep.path = r->path;
        if (r->kind == REQ_MULTI) {
            rep.multi_rc = r->multi_rc;
            rep.n_multi = r->n_ops;
        }
        r->cb(r->arg, &rep);
    }
    req_free(r);
}

static void finish_close(struct zkc *z);

static void deliver(struct zkc *z, struct entry *e)
{
    if (e->kind == ENTRY_REPLY) {
        deliver_reply(z, (struct req *)e);
    } else if (e->kind == ENTRY_WATCH) {
        struct watch *w = (struct watch *)e;
        if (!z->closing)
            w->cb(w->arg, w->type, w->path);
        watch_free(z, w);
    } else if (e->kind == ENTRY_STATE) {
        struct state_event *ev = (struct state_event *)e;
        unsigned gen = ev->gen;
        int state = ev->state;
        free(ev);
        on_state(z, gen, state);
    } else {
        struct session *s = (struct session *)e;
        pthread_join(s->closer, NULL);
        z->handles_closing--;
        retire(z, s, s->close_reason);
        if (z->closing && z->handles_closing == 0)
            finish_close(z);
    }
}

static void free_zkc(struct zkc *z)
{
    pthread_cond_destroy(&z->answered);
    pthread_mutex_destroy(&z->mu);
    free(z->servers);
    free(z->chroot);
    free(z->auth);
    free(z->digest_id);
    free(z);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct zkc *z = h->data;
    if (--z->open_handles == 0)
        free_zkc(z);
}

/* Every handle is closed and every request answered: deliver the rest, let the loop free z. */
static void finish_close(struct zkc *z)
{
    if (z->finished)
        return;
    z->finished = true;
    drain(z);
    assert(z->inflight == NULL);
    while (z->watches != NULL) {
        struct watch *w = z->watches;
        z->watches = w->next;
        free(w);
    }
    uv_close((uv_handle_t *)&z->async, on_handle_closed);
}

/* Deliver everything queued, in order.  Callbacks may call zkc again, zkc_close included:
 * a nested drain goes on with the same z->ready, so the order holds. */
static void drain(struct zkc *z)
{
    for (;;) {
        if (z->ready == NULL) {
            int lost = 0;
            unsigned lost_gen = 0;
            pthread_mutex_lock(&z->mu);
            z->ready = z->head;
            z->head = z->tail = NULL;
            if (z->ready == NULL) {
                lost = z->lost_state;
                lost_gen = z->lost_gen;
                z->lost_state = 0;
            }
            pthread_mutex_unlock(&z->mu);
            if (z->ready == NULL) {
                if (lost == 0)
                    return;
                on_state(z, lost_gen, lost);
                continue;
            }
        }
        struct entry *e = z->ready;
        z->ready = e->next;
        deliver(z, e);
    }
}

static void on_async(uv_async_t *h)
{
    drain(h->data);
}

static void *closer_main(void *arg)
{
    struct session *s = arg;
    struct zkc *z = s->z;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += CLOSE_GRACE_MS / 1000;
    until.tv_nsec += (long)(CLOSE_GRACE_MS % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&z->mu);
    while (s->unanswered > 0)
        if (pthread_cond_timedwait(&z->answered, &z->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&z->mu);
    zookeeper_close(s->zh);
    pthread_mutex_lock(&z->mu);
    push_locked(z, &s->closed);
    pthread_mutex_unlock(&z->mu);
    uv_async_send(&z->async);
    return NULL;
}

void zkc_close(struct zkc *z)
{
    if (z == NULL)
        return;
    assert(!z->closing);
    z->closing = true;
    atomic_store(&z->lease_until_ns, 0);
    atomic_store(&z->session_id, 0);
    uv_close((uv_handle_t *)&z->keepalive, on_handle_closed);
    uv_close((uv_handle_t *)&z->restart, on_handle_closed);
    struct session *s = z->sess;
    z->sess = NULL;
    if (s != NULL)
        close_session(z, s, ZCLOSING);
    if (z->handles_closing == 0)
        finish_close(z);
}

/* ---- configuration ------------------------------------------------------------------- */

/* ZooKeeper's rule for paths: absolute; no empty, "." or ".." component, so no "//" and no
 * trailing '/' but for the root itself.  A sequence node's name may end in any of those,
 * since the number follows. */
static bool valid_path(const char *p, bool sequence)
{
    if (p == NULL || p[0] != '/')
        return false;
    if (p[1] == '\0')
        return true;
    for (const char *c = p + 1;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);
        bool dots = (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
        if ((n == 0 || dots) && !(slash == NULL && sequence))
            return false;
        if (slash == NULL)
            return true;
        c = slash + 1;
    }
}

static bool valid_server(const char *s, size_t n)
{
    size_t colon = n;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon < 2 || colon == n || n - colon > 5)
        return false;
    long port = 0;
    for (size_t i = colon; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

static int parse_hosts(struct zkc *z, const char *hosts, struct ty_err *err)
{
    if (hosts == NULL || hosts[0] == '\0')
        return ty_error(err, TY_EINVAL, "hosts", -1, 0,
                        "hosts: empty (expected \"host:port,...[/chroot]\")");
    const char *slash = strchr(hosts, '/');
    size_t end = slash != NULL ? (size_t)(slash - hosts) : strlen(hosts);
    for (size_t i = 0; i <= end;) {
        size_t j = i;
        while (j < end && hosts[j] != ',')
            j++;
        if (!valid_server(hosts + i, j - i))
            return ty_error(err, TY_EINVAL, "hosts", (int)i, (int)(j - i),
                            "hosts: \"%.*s\" is not host:port (port 1-65535)", (int)(j - i),
                            hosts + i);
        i = j + 1;
    }
    const char *chroot = slash != NULL && strcmp(slash, "/") != 0 ? slash : "";
    if (chroot[0] != '\0' && (!valid_path(chroot, false) || strlen(chroot) >= PATH_MAX))
        return ty_error(err, TY_EINVAL, "hosts", (int)end, (int)strlen(chroot),
                        "hosts: chroot \"%s\" is not a ZooKeeper path", chroot);
    z->servers = strndup(hosts, end);
    z->chroot = strdup(chroot);
    if (z->servers == NULL || z->chroot == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    z->chroot_len = strlen(chroot);
    return 0;
}

/* digest:user:base64(sha1("user:password")), ZooKeeper's DigestAuthenticationProvider. */
static int make_acl(struct zkc *z, const char *auth, struct ty_err *err)
{
    const char *colon = auth != NULL ? strchr(auth, ':') : NULL;
    if (colon == NULL || colon == auth || colon[1] == '\0')
        return ty_error(err, TY_EINVAL, "auth", -1, 0,
                        "auth: expected \"user:password\", both non-empty");
    unsigned char sha[20];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, auth, strlen(auth), sha) != 0)
        return ty_error(err, TY_EIO, "auth", -1, 0, "auth: SHA-1 is not available for the digest");
    struct strbuf sb;
    sb_init(&sb);
    sb_add(&sb, auth, (size_t)(colon - auth) + 1);
    b64_encode(&sb, sha, sizeof sha);
    z->digest_id = sb_detach(&sb);
    z->auth = strdup(auth);
    if (z->digest_id == NULL || z->auth == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    z->acl_entry.perms = ZOO_PERM_ALL;
    z->acl_entry.id.scheme = "digest";
    z->acl_entry.id.id = z->digest_id;
    z->acl.count = 1;
    z->acl.data = &z->acl_entry;
    return 0;
}

int zkc_open(uv_loop_t *loop, const struct zkc_config *cfg, struct zkc **out, struct ty_err *err)
{
    if (loop == NULL || cfg == NULL || out == NULL)
        return ty_error(err, TY_EINVAL, NULL, -1, 0, "zkc_open: no loop, configuration or result");
    if (cfg->session_timeout_ms == 0 || cfg->session_timeout_ms > INT_MAX)
        return ty_error(err, TY_EINVAL, "session_timeout_ms", -1, 0,
                        "session_timeout_ms: %u is out of range 1-%d", cfg->session_timeout_ms,
                        INT_MAX);
    struct zkc *z = calloc(1, sizeof *z);
    if (z == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    int rc = parse_hosts(z, cfg->hosts, err);
    if (rc == 0)
        rc = make_acl(z, cfg->auth, err);
    pthread_mutex_init(&z->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&z->answered, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free_zkc(z);
        return rc;
    }
    z->loop = loop;
    z->on_event = cfg->on_event;
    z->event_arg = cfg->arg;
    z->timeout_asked = cfg->session_timeout_ms;
    pthread_once(&client_once, client_setup);
    /* the async first: the client's threads may call back before zookeeper_init returns */
    if (uv_async_init(loop, &z->async, on_async) == 0) {
        z->async.data = z;
        z->open_handles++;
    }
    if (z->open_handles == 1 && uv_timer_init(loop, &z->keepalive) == 0) {
        z->keepalive.data = z;
        z->open_handles++;
    }
    if (z->open_handles == 2 && uv_timer_init(loop, &z->restart) == 0) {
        z->restart.data = z;
        z->open_handles++;
    }
    rc = z->open_handles == 3 ? start_session(z) : TY_EIO;
    if (rc == 0) {
        *out = z;
        return 0;
    }
    int saved = errno;
    z->closing = z->finished = true;
    int n = z->open_handles;
    if (n == 0) {
        free_zkc(z);
    } else {
        uv_close((uv_handle_t *)&z->async, on_handle_closed);
        if (n >= 2)
            uv_close((uv_handle_t *)&z->keepalive, on_handle_closed);
        if (n >= 3)
            uv_close((uv_handle_t *)&z->restart, on_handle_closed);
    }
    if (rc == TY_ENOMEM)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    char why[128];
    if (strerror_r(saved, why, sizeof why) != 0)
        why[0] = '\0';
    return ty_error(err, TY_EIO, "hosts", -1, 0,
                    "hosts: the ZooKeeper client cannot start with \"%s\": %s", cfg->hosts, why);
}

/* ---- what any thread may read -------------------------------------------------------- */

bool zkc_lease_valid(const struct zkc *z)
{
    int64_t until = atomic_load(&z->lease_until_ns);
    return until != 0 && zkc_boottime_ns() < until;
}

int64_t zkc_lease_until_ns(const struct zkc *z)
{
    return atomic_load(&z->lease_until_ns);
}

uint32_t zkc_timeout_ms(const struct zkc *z)
{
    return atomic_load(&z->timeout_ms);
}

int64_t zkc_session_id(const struct zkc *z)
{
    return atomic_load(&z->session_id);
}

int zkc_session_credentials(const struct zkc *z, int64_t *id, char passwd[16])
{
    const struct session *s = z->sess;
    if (s == NULL || s->id == 0)
        return TY_EUNAVAIL;
    *id = s->id;
    memcpy(passwd, s->passwd, sizeof s->passwd);
    return 0;
}

/* ---- requests (loop) ----------------------------------------------------------------- */

/* The path as the server knows it, in *full (sb_free it); TY_EUNAVAIL without a handle. */
static int server_path(const struct zkc *z, const char *path, bool sequence, struct strbuf *full)
{
    if (!valid_path(path, sequence))
        return TY_EINVAL;
    if (z->closing || z->sess == NULL)
        return TY_EUNAVAIL;
    sb_init(full);
    sb_adds(full, z->chroot);
    if (z->chroot_len == 0 || strcmp(path, "/") != 0)
        sb_adds(full, path);
    if (sb_failed(full)) {
        sb_free(full);
        return TY_ENOMEM;
    }
    return 0;
}

static size_t acl_bytes(const struct zkc *z)
{
    return WIRE_INT + WIRE_INT + WIRE_INT + strlen(z->acl_entry.id.scheme) + WIRE_INT +
           strlen(z->digest_id);
}

static int create_mode(int flags)
{
    return ((flags & ZKC_EPHEMERAL) != 0 ? ZOO_EPHEMERAL : ZOO_PERSISTENT) |
           ((flags & ZKC_SEQUENCE) != 0 ? ZOO_SEQUENCE : 0);
}

static bool valid_data(const void *data, int len)
{
    return len >= 0 && (len == 0 || data != NULL) && len <= ZKC_MAX_REQUEST;
}

int zkc_create(struct zkc *z, const char *path, const void *data, int len, int flags, zkc_cb cb,
               void *arg)
{
    if ((flags & ~(ZKC_EPHEMERAL | ZKC_SEQUENCE)) != 0 || !valid_data(data, len))
        return TY_EINVAL;
    struct strbuf full;
    int rc = server_path(z, path, (flags & ZKC_SEQUENCE) != 0, &full);
    if (rc != 0)
        return rc;
    size_t size =
        WIRE_FRAME + WIRE_INT + full.len + WIRE_INT + (size_t)len + acl_bytes(z) + WIRE_INT;
    struct req *r = size <= ZKC_MAX_REQUEST ? req_new(z, REQ_CREATE, cb, arg, 0) : NULL;
    if (r == NULL) {
        sb_free(&full);
        return size <= ZKC_MAX_REQUEST ? TY_ENOMEM : TY_EINVAL;
    }
    req_start(z, r);
    rc = zoo_acreate(z->sess->zh, sb_str(&full), len > 0 ? data : "", len, &z->acl,
                     create_mode(flags), on_created, r);
    sb_free(&full);
    return req_sent(z, r, rc);
}

int zkc_set(struct zkc *z, const char *path, const void *data, int len, int version, zkc_cb cb,
            void *arg)
{
    if (!valid_data(data, len))
        return TY_EINVAL;
    struct strbuf full;
    int rc = server_path(z, path, false, &full);
    if (rc != 0)
        return rc;
    size_t size = WIRE_FRAME + WIRE_INT + full.len + WIRE_INT + (size_t)len + WIRE_INT;
    struct req *r = size <= ZKC_MAX_REQUEST ? req_new(z, REQ_SET, cb, arg, 0) : NULL;
    if (r == NULL) {
        sb_free(&full);
        return size <= ZKC_MAX_REQUEST ? TY_ENOMEM : TY_EINVAL;
    }
    req_start(z, r);
    rc = zoo_aset(z->sess->zh, sb_str(&full), len > 0 ? data : "", len, version, on_stat, r);
    sb_free(&full);
    return req_sent(z, r, rc);
}

int zkc_delete(struct zkc *z, const char *path, int version, zkc_cb cb, void *arg)
{
    struct strbuf full;
    int rc = server_path(z, path, false, &full);
    if (rc != 0)
        return rc;
    struct req *r = req_new(z, REQ_DELETE, cb, arg, 0);
    if (r == NULL) {
        sb_free(&full);
        return TY_ENOMEM;
    }
    req_start(z, r);
    rc = zoo_adelete(z->sess->zh, sb_str(&full), version, on_void, r);
    sb_free(&full);
    return req_sent(z, r, rc);
}

/* get, exists and children: a request that may arm a watch. */
static int send_read(struct zkc *z, enum req_kind kind, const char *path, zkc_watch_cb w,
                     void *warg, zkc_cb cb, void *arg)
{
    struct strbuf full;
    int rc = server_path(z, path, false, &full);
    if (rc != 0)
        return rc;
    struct req *r = req_new(z, kind, cb, arg, 0);
    if (r != NULL && w != NULL) {
        r->w = watch_new(z, path, w, warg);
        if (r->w == NULL) {
            free(r);
            r = NULL;
        }
    }
    if (r == NULL) {
        sb_free(&full);
        return TY_ENOMEM;
    }
    req_start(z, r);
    zhandle_t *zh = z->sess->zh;
    const char *p = sb_str(&full);
    if (kind == REQ_GET)
        rc = w != NULL ? zoo_awget(zh, p, on_watch, r->w, on_data, r)
                       : zoo_aget(zh, p, 0, on_data, r);
    else if (kind == REQ_EXISTS)
        rc = w != NULL ? zoo_awexists(zh, p, on_watch, r->w, on_stat, r)
                       : zoo_aexists(zh, p, 0, on_stat, r);
    else
        rc = w != NULL ? zoo_awget_children2(zh, p, on_watch, r->w, on_children, r)
                       : zoo_aget_children2(zh, p, 0, on_children, r);
    sb_free(&full);
    return req_sent(z, r, rc);
}

int zkc_get(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg)
{
    return send_read(z, REQ_GET, path, w, warg, cb, arg);
}

int zkc_exists(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg)
{
    return send_read(z, REQ_EXISTS, path, w, warg, cb, arg);
}

int zkc_children(struct zkc *z, const char *path, zkc_watch_cb w, void *warg, zkc_cb cb, void *arg)
{
    return send_read(z, REQ_CHILDREN, path, w, warg, cb, arg);
}

static bool valid_op(const struct zkc_op *op)
{
    switch (op->type) {
    case ZKC_OP_CREATE:
        return (op->flags & ~(ZKC_EPHEMERAL | ZKC_SEQUENCE)) == 0 &&
               valid_path(op->path, (op->flags & ZKC_SEQUENCE) != 0) &&
               valid_data(op->data, op->len);
    case ZKC_OP_SET: return valid_path(op->path, false) && valid_data(op->data, op->len);
    case ZKC_OP_DELETE:
    case ZKC_OP_CHECK: return valid_path(op->path, false);
    default: return false;
    }
}

int zkc_multi(struct zkc *z, const struct zkc_op *ops, int n, zkc_cb cb, void *arg)
{
    if (ops == NULL || n < 1 || n > ZKC_MAX_REQUEST / WIRE_MULTIHDR)
        return TY_EINVAL;
    for (int i = 0; i < n; i++)
        if (!valid_op(&ops[i]))
            return TY_EINVAL;
    if (z->closing || z->sess == NULL)
        return TY_EUNAVAIL;
    /* the server's paths, one after the other, and what the request will weigh */
    struct strbuf paths;
    sb_init(&paths);
    size_t *at = malloc((size_t)n * sizeof *at);
    zoo_op_t *zops = calloc((size_t)n, sizeof *zops);
    size_t size = WIRE_FRAME + WIRE_MULTIHDR;
    for (int i = 0; i < n && at != NULL; i++) {
        at[i] = paths.len;
        sb_adds(&paths, z->chroot);
        if (z->chroot_len == 0 || strcmp(ops[i].path, "/") != 0)
            sb_adds(&paths, ops[i].path);
        size += WIRE_MULTIHDR + WIRE_INT + (paths.len - at[i]) + WIRE_INT;
        if (ops[i].type == ZKC_OP_CREATE)
            size += WIRE_INT + (size_t)ops[i].len + acl_bytes(z);
        else if (ops[i].type == ZKC_OP_SET)
            size += WIRE_INT + (size_t)ops[i].len;
        sb_add(&paths, "", 1);
    }
    struct req *r = NULL;
    int rc = TY_ENOMEM;
    if (size > ZKC_MAX_REQUEST)
        rc = TY_EINVAL;
    else if (at != NULL && zops != NULL && !sb_failed(&paths))
        r = req_new(z, REQ_MULTI, cb, arg, n);
    if (r != NULL) {
        for (int i = 0; i < n; i++) {
            const struct zkc_op *op = &ops[i];
            const char *p = paths.buf + at[i];
            const char *data = op->len > 0 ? op->data : "";
            if (op->type == ZKC_OP_CREATE)
                zoo_create_op_init(&zops[i], p, data, op->len, &z->acl, create_mode(op->flags),
                                   NULL, 0);
            else if (op->type == ZKC_OP_SET)
                zoo_set_op_init(&zops[i], p, data, op->len, op->version, NULL);
            else if (op->type == ZKC_OP_DELETE)
                zoo_delete_op_init(&zops[i], p, op->version);
            else
                zoo_check_op_init(&zops[i], p, op->version);
        }
        req_start(z, r);
        rc = req_sent(z, r, zoo_amulti(z->sess->zh, n, zops, r->results, on_multi, r));
    }
    free(zops);
    free(at);
    sb_free(&paths);
    return rc;
}
