/*
 * test_zkc.c - the ZooKeeper session (src/coord/zkc.c) against a real three-node ensemble
 * on 127.0.0.1, started by tests/zk/with-zk.sh (TETHYS_TEST_ZK_HOSTS, TETHYS_TEST_ZK_DIR,
 * TETHYS_TEST_ZK_SH).  Without them the tests fail: they are never skipped.
 *
 * Refusals naming the field; connect and auth; create/get/set/delete/exists/children,
 * also before the session is up and under a chroot that does not exist yet; watches firing
 * once, on the loop, after their request's answer; ephemeral and sequence nodes; multi,
 * done whole or not at all, and refused when too big; the digest ACL (another identity
 * gets ZNOAUTH); the chroot's levels made with the ACL; zkc_close with requests in flight
 * (each answered exactly once, none after the loop ends).  Last, because it stops the
 * ensemble: the lease starts and extends; with every node stopped it ends within
 * ZKC_LEASE_FRACTION of the timeout while the client still calls the session alive; after
 * the restart a session closed behind zkc's back (a second handle with its credentials)
 * gives ZKC_EXPIRED, then ZKC_CONNECTED with a new session, and its ephemerals are gone.
 * Every wait runs the loop until a condition or a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <zookeeper.h>

#include "coord/zkc.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#endif

#ifdef UNDER_TSAN
/* libzookeeper_mt 3.8.0 formats server addresses for its log into one static buffer, with
 * sprintf, on every handle's I/O thread (ZOOKEEPER-4810, fixed upstream in 2025): two
 * sessions logging a failed connect at once race there, over the text of a log line.
 * Nothing but the library calls sprintf in this program. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:__sprintf_chk\n";
}
#endif

#define TIMEOUT_MS 4000 /* asked for; the ensemble's tickTime of 500 ms allows 1-10 s */
#define WAIT_MS    15000
#define AUTH       "tethys:s3cret-pw"

static const char *zk_hosts;
static const char *zk_dir;
static const char *zk_sh;

static int64_t now_ms(void)
{
    return zkc_boottime_ns() / 1000000;
}

/* ---- a loop and what came out of it ------------------------------------------------------ */

struct fix {
    uv_loop_t loop;
    uv_timer_t ticker; /* keeps UV_RUN_ONCE from sleeping past a deadline */
    pthread_t loop_thread;
    enum zkc_event events[64];
    bool news[64];
    bool lease_at_event[64];
    int n_events;
    struct zkc *event_z; /* whose lease on_event looks at */
};

#define WAIT_UNTIL(f, cond, ms)                                                                    \
    for (int64_t dl_ = now_ms() + (ms); !(cond) && now_ms() < dl_;)                                \
    uv_run(&(f)->loop, UV_RUN_ONCE)

static void tick(uv_timer_t *t)
{
    (void)t;
}

static void fix_init(struct fix *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->ticker);
    uv_timer_start(&f->ticker, tick, 10, 10);
    f->loop_thread = pthread_self();
}

/* Close the ticker and run the loop until every handle (zkc's included) is closed. */
static void fix_done(struct fix *f)
{
    uv_close((uv_handle_t *)&f->ticker, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_event(void *arg, enum zkc_event ev, bool new_session)
{
    struct fix *f = arg;
    assert_true(pthread_equal(pthread_self(), f->loop_thread));
    assert_true(f->n_events < 64);
    f->events[f->n_events] = ev;
    f->news[f->n_events] = new_session;
    f->lease_at_event[f->n_events] = f->event_z != NULL && zkc_lease_valid(f->event_z);
    f->n_events++;
}

static int count_events(const struct fix *f, enum zkc_event ev)
{
    int n = 0;
    for (int i = 0; i < f->n_events; i++)
        n += f->events[i] == ev;
    return n;
}

static char *hosts_with(const char *chroot)
{
    size_t n = strlen(zk_hosts) + strlen(chroot) + 1;
    char *h = malloc(n);
    assert_non_null(h);
    snprintf(h, n, "%s%s", zk_hosts, chroot);
    return h;
}

/* A chroot of this test's own: "/zkc-<pid>-<name>". */
static char *test_chroot(const char *name)
{
    char *c = malloc(128);
    assert_non_null(c);
    snprintf(c, 128, "/zkc-%d-%s", (int)getpid(), name);
    return c;
}

static struct zkc *open_zkc(struct fix *f, const char *chroot, const char *auth)
{
    char *hosts = hosts_with(chroot);
    struct zkc_config cfg = {.hosts = hosts,
                             .session_timeout_ms = TIMEOUT_MS,
                             .auth = auth,
                             .on_event = on_event,
                             .arg = f};
    struct zkc *z = NULL;
    struct ty_err err;
    int rc = zkc_open(&f->loop, &cfg, &z, &err);
    if (rc != 0)
        fail_msg("zkc_open(%s): %s", hosts, err.msg);
    free(hosts);
    return z;
}

static void wait_connected(struct fix *f, int n)
{
    WAIT_UNTIL(f, count_events(f, ZKC_CONNECTED) >= n, WAIT_MS);
    assert_int_equal(count_events(f, ZKC_CONNECTED), n);
}

/* ---- answers ----------------------------------------------------------------------------- */

struct got {
    struct fix *f;
    int calls;
    int rc;
    char data[512];
    int len;
    bool data_null;
    struct zkc_stat stat;
    char path[256];
    int n_children;
    char children[16][64];
    int multi_rc[16];
    int n_multi;
    int watches_before; /* how many watches had fired when the answer came */
};

static int watches_fired;

static void on_reply(void *arg, const struct zkc_reply *r)
{
    struct got *g = arg;
    assert_true(pthread_equal(pthread_self(), g->f->loop_thread));
    g->calls++;
    g->rc = r->rc;
    g->data_null = r->data == NULL;
    g->len = r->len;
    if (r->data != NULL && r->len > 0)
        memcpy(g->data, r->data, (size_t)r->len < sizeof g->data ? (size_t)r->len : sizeof g->data);
    g->stat = r->stat;
    if (r->path != NULL)
        snprintf(g->path, sizeof g->path, "%s", r->path);
    g->n_children = r->n_children;
    for (int i = 0; i < r->n_children && i < 16; i++)
        snprintf(g->children[i], sizeof g->children[i], "%s", r->children[i]);
    g->n_multi = r->n_multi;
    for (int i = 0; i < r->n_multi && i < 16; i++)
        g->multi_rc[i] = r->multi_rc[i];
    g->watches_before = watches_fired;
}

static void await(struct got *g)
{
    WAIT_UNTIL(g->f, g->calls > 0, WAIT_MS);
    if (g->calls != 1)
        fail_msg("an answer was called %d times", g->calls);
}

static struct got do_create(struct fix *f, struct zkc *z, const char *path, const char *data,
                            int flags)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_create(z, path, data, data ? (int)strlen(data) : 0, flags, on_reply, &g),
                     0);
    await(&g);
    return g;
}

static struct got do_get(struct fix *f, struct zkc *z, const char *path)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_get(z, path, NULL, NULL, on_reply, &g), 0);
    await(&g);
    return g;
}

static struct got do_set(struct fix *f, struct zkc *z, const char *path, const char *data,
                         int version)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_set(z, path, data, (int)strlen(data), version, on_reply, &g), 0);
    await(&g);
    return g;
}

static struct got do_exists(struct fix *f, struct zkc *z, const char *path)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_exists(z, path, NULL, NULL, on_reply, &g), 0);
    await(&g);
    return g;
}

/* Another session may read from a server a little behind the one that took a write: wait
 * until exists() there says `rc`. */
static void await_exists(struct fix *f, struct zkc *z, const char *path, int rc)
{
    int last = 0;
    for (int64_t deadline = now_ms() + WAIT_MS; now_ms() < deadline;) {
        last = do_exists(f, z, path).rc;
        if (last == rc)
            return;
        int64_t pause = now_ms() + 20;
        WAIT_UNTIL(f, now_ms() >= pause, 1000);
    }
    fail_msg("exists(%s): %s, not %s", path, zkc_strerror(last), zkc_strerror(rc));
}

static struct got do_delete(struct fix *f, struct zkc *z, const char *path, int version)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_delete(z, path, version, on_reply, &g), 0);
    await(&g);
    return g;
}

static struct got do_children(struct fix *f, struct zkc *z, const char *path)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_children(z, path, NULL, NULL, on_reply, &g), 0);
    await(&g);
    return g;
}

static struct got do_multi(struct fix *f, struct zkc *z, const struct zkc_op *ops, int n)
{
    struct got g = {.f = f};
    assert_int_equal(zkc_multi(z, ops, n, on_reply, &g), 0);
    await(&g);
    return g;
}

static void close_zkc(struct zkc *z)
{
    zkc_close(z);
}

/* ---- watches ----------------------------------------------------------------------------- */

struct seen {
    struct fix *f;
    int calls;
    int type;
    char path[256];
};

static void on_watch(void *arg, int type, const char *path)
{
    struct seen *s = arg;
    assert_true(pthread_equal(pthread_self(), s->f->loop_thread));
    s->calls++;
    s->type = type;
    snprintf(s->path, sizeof s->path, "%s", path);
    watches_fired++;
}

/* ---- the tests --------------------------------------------------------------------------- */

static void test_open_refusals(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    static const struct {
        const char *hosts, *auth;
        uint32_t timeout;
        const char *field, *msg;
    } bad[] = {
        {"", AUTH, 4000, "hosts", "hosts: empty"},
        {"127.0.0.1", AUTH, 4000, "hosts", "hosts: \"127.0.0.1\" is not host:port"},
        {"127.0.0.1:2181,", AUTH, 4000, "hosts", "hosts: \"\" is not host:port"},
        {"127.0.0.1:0", AUTH, 4000, "hosts", "hosts: \"127.0.0.1:0\" is not host:port"},
        {"127.0.0.1:70000", AUTH, 4000, "hosts", "hosts: \"127.0.0.1:70000\" is not"},
        {":2181", AUTH, 4000, "hosts", "hosts: \":2181\" is not host:port"},
        {"127.0.0.1:2181/a//b", AUTH, 4000, "hosts", "hosts: chroot \"/a//b\" is not"},
        {"127.0.0.1:2181/a/", AUTH, 4000, "hosts", "hosts: chroot \"/a/\" is not"},
        {"127.0.0.1:2181/a/../b", AUTH, 4000, "hosts", "hosts: chroot \"/a/../b\" is not"},
        {"127.0.0.1:2181", "nocolon", 4000, "auth", "auth: expected \"user:password\""},
        {"127.0.0.1:2181", ":pw", 4000, "auth", "auth: expected \"user:password\""},
        {"127.0.0.1:2181", "user:", 4000, "auth", "auth: expected \"user:password\""},
        {"127.0.0.1:2181", NULL, 4000, "auth", "auth: expected \"user:password\""},
        {"127.0.0.1:2181", AUTH, 0, "session_timeout_ms", "session_timeout_ms: 0 is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct zkc_config cfg = {
            .hosts = bad[i].hosts, .session_timeout_ms = bad[i].timeout, .auth = bad[i].auth};
        struct zkc *z = NULL;
        struct ty_err err;
        assert_int_equal(zkc_open(&f.loop, &cfg, &z, &err), TY_EINVAL);
        assert_null(z);
        assert_string_equal(err.field, bad[i].field);
        if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            fail_msg("case %zu: \"%s\" does not start with \"%s\"", i, err.msg, bad[i].msg);
        /* the password never appears in a message */
        assert_null(strstr(err.msg, "s3cret"));
    }
    /* a host name that does not resolve: the client cannot start */
    struct zkc_config cfg = {
        .hosts = "no-such-host.invalid:2181", .session_timeout_ms = 4000, .auth = AUTH};
    struct zkc *z = NULL;
    struct ty_err err;
    assert_int_equal(zkc_open(&f.loop, &cfg, &z, &err), TY_EIO);
    assert_null(z);
    assert_string_equal(err.field, "hosts");
    fix_done(&f);
}

static void test_basic_operations(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("basic");
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    f.event_z = z;
    assert_false(zkc_lease_valid(z));
    assert_int_equal(zkc_lease_until_ns(z), 0);

    /* sent before the session is up, under a chroot that does not exist yet */
    struct got early = {.f = &f};
    assert_int_equal(zkc_create(z, "/early", "e", 1, 0, on_reply, &early), 0);
    wait_connected(&f, 1);
    assert_true(f.news[0]);
    assert_true(zkc_session_id(z) != 0);
    uint32_t t = zkc_timeout_ms(z);
    assert_true(t >= 1000 && t <= 10000);
    await(&early);
    assert_int_equal(early.rc, ZOK);
    assert_string_equal(early.path, "/early");

    /* refusals that send nothing */
    assert_int_equal(zkc_create(z, "a", "x", 1, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a/", "x", 1, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a//b", "x", 1, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a/./b", "x", 1, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a", "x", 1, 4, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a", NULL, 3, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_create(z, "/a", "x", -1, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_get(z, NULL, NULL, NULL, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_set(z, "", "x", 1, -1, on_reply, NULL), TY_EINVAL);
    char *big = calloc(1, ZKC_MAX_REQUEST);
    assert_non_null(big);
    assert_int_equal(zkc_create(z, "/big", big, ZKC_MAX_REQUEST, 0, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_set(z, "/early", big, ZKC_MAX_REQUEST, -1, on_reply, NULL), TY_EINVAL);
    free(big);

    struct got g = do_create(&f, z, "/a", "hello", 0);
    assert_int_equal(g.rc, ZOK);
    assert_string_equal(g.path, "/a");
    assert_int_equal(do_create(&f, z, "/a", "again", 0).rc, ZNODEEXISTS);
    assert_int_equal(do_create(&f, z, "/no/parent", "x", 0).rc, ZNONODE);

    g = do_get(&f, z, "/a");
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.len, 5);
    assert_memory_equal(g.data, "hello", 5);
    assert_int_equal(g.stat.version, 0);
    assert_int_equal(g.stat.data_length, 5);
    assert_int_equal(g.stat.ephemeral_owner, 0);

    g = do_set(&f, z, "/a", "world!", 0);
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.stat.version, 1);
    assert_int_equal(do_set(&f, z, "/a", "stale", 0).rc, ZBADVERSION);
    g = do_get(&f, z, "/a");
    assert_int_equal(g.len, 6);
    assert_memory_equal(g.data, "world!", 6);

    /* empty data reads back as none */
    assert_int_equal(do_create(&f, z, "/empty", NULL, 0).rc, ZOK);
    g = do_get(&f, z, "/empty");
    assert_int_equal(g.rc, ZOK);
    assert_true(g.data_null);
    assert_int_equal(g.len, 0);

    g = do_exists(&f, z, "/a");
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.stat.version, 1);
    assert_int_equal(do_exists(&f, z, "/nope").rc, ZNONODE);

    assert_int_equal(do_create(&f, z, "/a/child", "c", 0).rc, ZOK);
    g = do_children(&f, z, "/");
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.n_children, 3);
    int seen = 0;
    for (int i = 0; i < g.n_children; i++)
        seen |= (strcmp(g.children[i], "a") == 0) | (strcmp(g.children[i], "early") == 0) << 1 |
                (strcmp(g.children[i], "empty") == 0) << 2;
    assert_int_equal(seen, 7);
    assert_int_equal(g.stat.num_children, 3);
    g = do_children(&f, z, "/a");
    assert_int_equal(g.n_children, 1);
    assert_string_equal(g.children[0], "child");

    assert_int_equal(do_delete(&f, z, "/a", -1).rc, ZNOTEMPTY);
    assert_int_equal(do_delete(&f, z, "/a/child", 5).rc, ZBADVERSION);
    assert_int_equal(do_delete(&f, z, "/a/child", 0).rc, ZOK);
    assert_int_equal(do_delete(&f, z, "/a", 1).rc, ZOK);
    assert_int_equal(do_get(&f, z, "/a").rc, ZNONODE);
    assert_int_equal(do_delete(&f, z, "/a", -1).rc, ZNONODE);

    /* the lease: valid soon after the connect, and the keepalive moves it on */
    WAIT_UNTIL(&f, zkc_lease_valid(z), WAIT_MS);
    assert_true(zkc_lease_valid(z));
    int64_t until = zkc_lease_until_ns(z);
    assert_true(until <= zkc_boottime_ns() + (int64_t)(ZKC_LEASE_FRACTION * t * 1e6));
    WAIT_UNTIL(&f, zkc_lease_until_ns(z) > until, WAIT_MS);
    assert_true(zkc_lease_until_ns(z) > until);

    assert_int_equal(count_events(&f, ZKC_DISCONNECTED) + count_events(&f, ZKC_EXPIRED), 0);
    close_zkc(z);
    fix_done(&f);
    free(chroot);
}

static void test_watches(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("watch");
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 1);
    watches_fired = 0;

    assert_int_equal(do_create(&f, z, "/w", "0", 0).rc, ZOK);

    /* get: a change */
    struct seen changed = {.f = &f};
    struct got g = {.f = &f};
    assert_int_equal(zkc_get(z, "/w", on_watch, &changed, on_reply, &g), 0);
    await(&g);
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(do_set(&f, z, "/w", "1", -1).rc, ZOK);
    WAIT_UNTIL(&f, changed.calls > 0, WAIT_MS);
    assert_int_equal(changed.calls, 1);
    assert_int_equal(changed.type, ZOO_CHANGED_EVENT);
    assert_string_equal(changed.path, "/w"); /* under the chroot, as asked */

    /* exists on a missing node arms a watch: its creation */
    struct seen created = {.f = &f};
    g = (struct got){.f = &f};
    assert_int_equal(zkc_exists(z, "/w/new", on_watch, &created, on_reply, &g), 0);
    await(&g);
    assert_int_equal(g.rc, ZNONODE);
    assert_int_equal(g.watches_before, 1);

    /* children: a child added (the same create fires the exists watch) */
    struct seen child = {.f = &f};
    g = (struct got){.f = &f};
    assert_int_equal(zkc_children(z, "/w", on_watch, &child, on_reply, &g), 0);
    await(&g);
    assert_int_equal(g.n_children, 0);
    struct got c = do_create(&f, z, "/w/new", "n", 0);
    assert_int_equal(c.rc, ZOK);
    WAIT_UNTIL(&f, created.calls > 0 && child.calls > 0, WAIT_MS);
    assert_int_equal(created.calls, 1);
    assert_int_equal(created.type, ZOO_CREATED_EVENT);
    assert_string_equal(created.path, "/w/new");
    assert_int_equal(child.calls, 1);
    assert_int_equal(child.type, ZOO_CHILD_EVENT);
    assert_string_equal(child.path, "/w");

    /* get on a missing node arms nothing: creating it later fires nothing */
    struct seen never = {.f = &f};
    g = (struct got){.f = &f};
    assert_int_equal(zkc_get(z, "/w/later", on_watch, &never, on_reply, &g), 0);
    await(&g);
    assert_int_equal(g.rc, ZNONODE);

    /* deleted: a get watch */
    struct seen deleted = {.f = &f};
    g = (struct got){.f = &f};
    assert_int_equal(zkc_get(z, "/w/new", on_watch, &deleted, on_reply, &g), 0);
    await(&g);
    assert_int_equal(do_create(&f, z, "/w/later", "l", 0).rc, ZOK);
    assert_int_equal(do_delete(&f, z, "/w/new", -1).rc, ZOK);
    WAIT_UNTIL(&f, deleted.calls > 0, WAIT_MS);
    assert_int_equal(deleted.type, ZOO_DELETED_EVENT);
    assert_string_equal(deleted.path, "/w/new");

    /* one-shot: more changes fire nothing more */
    assert_int_equal(do_set(&f, z, "/w", "2", -1).rc, ZOK);
    assert_int_equal(do_create(&f, z, "/w/more", "m", 0).rc, ZOK);
    /* a round trip after the changes: their events, if any, came before this answer */
    assert_int_equal(do_exists(&f, z, "/w").rc, ZOK);
    assert_int_equal(changed.calls, 1);
    assert_int_equal(created.calls, 1);
    assert_int_equal(child.calls, 1);
    assert_int_equal(deleted.calls, 1);
    assert_int_equal(never.calls, 0);
    assert_int_equal(watches_fired, 4);

    /* an armed watch that never fires is released by zkc_close (ASan checks) */
    struct seen pending = {.f = &f};
    g = (struct got){.f = &f};
    assert_int_equal(zkc_get(z, "/w", on_watch, &pending, on_reply, &g), 0);
    await(&g);
    close_zkc(z);
    fix_done(&f);
    assert_int_equal(pending.calls, 0);
    free(chroot);
}

static void test_ephemeral_sequence(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("eph");
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    struct zkc *other = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 2);

    struct got a = do_create(&f, z, "/job-", "x", ZKC_EPHEMERAL | ZKC_SEQUENCE);
    struct got b = do_create(&f, z, "/job-", "y", ZKC_EPHEMERAL | ZKC_SEQUENCE);
    assert_int_equal(a.rc, ZOK);
    assert_int_equal(b.rc, ZOK);
    assert_string_equal(a.path, "/job-0000000000");
    assert_string_equal(b.path, "/job-0000000001");
    await_exists(&f, other, a.path, ZOK);
    struct got s = do_exists(&f, other, a.path);
    assert_int_equal(s.rc, ZOK);
    assert_int_equal(s.stat.ephemeral_owner, zkc_session_id(z));
    assert_int_equal(do_create(&f, z, "/job-0000000000/kid", "k", 0).rc, ZNOCHILDRENFOREPHEMERALS);

    /* a persistent sequence node under a name ending in '/' */
    assert_int_equal(do_create(&f, z, "/q", NULL, 0).rc, ZOK);
    struct got q = do_create(&f, z, "/q/", "1", ZKC_SEQUENCE);
    assert_int_equal(q.rc, ZOK);
    assert_string_equal(q.path, "/q/0000000000");

    /* closing the session takes its ephemerals at once */
    close_zkc(z);
    await_exists(&f, other, a.path, ZNONODE);
    assert_int_equal(do_exists(&f, other, b.path).rc, ZNONODE); /* gone in the same step */
    assert_int_equal(do_exists(&f, other, q.path).rc, ZOK);
    close_zkc(other);
    fix_done(&f);
    free(chroot);
}

static void test_multi(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("multi");
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 1);

    struct zkc_op ok[] = {
        {.type = ZKC_OP_CREATE, .path = "/m1", .data = "x", .len = 1},
        {.type = ZKC_OP_CREATE, .path = "/m2", .data = "", .len = 0},
        {.type = ZKC_OP_SET, .path = "/m1", .data = "yy", .len = 2, .version = 0},
        {.type = ZKC_OP_CHECK, .path = "/m2", .version = 0},
        {.type = ZKC_OP_CREATE, .path = "/m2/e", .data = "e", .len = 1, .flags = ZKC_EPHEMERAL},
    };
    struct got g = do_multi(&f, z, ok, 5);
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.n_multi, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.multi_rc[i], ZOK);
    g = do_get(&f, z, "/m1");
    assert_int_equal(g.len, 2);
    assert_memory_equal(g.data, "yy", 2);
    assert_int_equal(g.stat.version, 1);

    /* all or nothing: the second fails, so the first is not done either */
    struct zkc_op bad[] = {
        {.type = ZKC_OP_CREATE, .path = "/m3", .data = "z", .len = 1},
        {.type = ZKC_OP_DELETE, .path = "/nope", .version = -1},
        {.type = ZKC_OP_SET, .path = "/m1", .data = "zz", .len = 2, .version = -1},
    };
    g = do_multi(&f, z, bad, 3);
    assert_int_equal(g.rc, ZNONODE);
    assert_int_equal(g.n_multi, 3);
    assert_int_equal(g.multi_rc[0], ZOK); /* would have been done */
    assert_int_equal(g.multi_rc[1], ZNONODE);
    assert_int_equal(g.multi_rc[2], ZRUNTIMEINCONSISTENCY);
    assert_int_equal(do_exists(&f, z, "/m3").rc, ZNONODE);
    g = do_get(&f, z, "/m1");
    assert_memory_equal(g.data, "yy", 2);

    struct zkc_op stale[] = {
        {.type = ZKC_OP_CHECK, .path = "/m1", .version = 0},
        {.type = ZKC_OP_DELETE, .path = "/m2/e", .version = -1},
    };
    g = do_multi(&f, z, stale, 2);
    assert_int_equal(g.rc, ZBADVERSION);
    assert_int_equal(do_exists(&f, z, "/m2/e").rc, ZOK);

    /* refused before sending: too big, a bad op, nothing to do */
    char *half = calloc(1, (size_t)600 * 1024);
    assert_non_null(half);
    struct zkc_op heavy[] = {
        {.type = ZKC_OP_CREATE, .path = "/h1", .data = half, .len = 600 * 1024},
        {.type = ZKC_OP_SET, .path = "/m1", .data = half, .len = 600 * 1024, .version = -1},
    };
    assert_int_equal(zkc_multi(z, heavy, 2, on_reply, NULL), TY_EINVAL);
    g = do_multi(&f, z, heavy, 1); /* one of them fits */
    assert_int_equal(g.rc, ZOK);
    free(half);
    struct zkc_op wrong[] = {{.type = 0, .path = "/x"}};
    assert_int_equal(zkc_multi(z, wrong, 1, on_reply, NULL), TY_EINVAL);
    struct zkc_op badpath[] = {{.type = ZKC_OP_CHECK, .path = "/x/", .version = 0}};
    assert_int_equal(zkc_multi(z, badpath, 1, on_reply, NULL), TY_EINVAL);
    assert_int_equal(zkc_multi(z, ok, 0, on_reply, NULL), TY_EINVAL);

    close_zkc(z);
    fix_done(&f);
    free(chroot);
}

static void test_acl(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("acl");
    struct zkc *owner = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 1);
    assert_int_equal(do_create(&f, owner, "/private", "secret data", 0).rc, ZOK);
    assert_int_equal(do_create(&f, owner, "/private/kid", "k", 0).rc, ZOK);

    /* another identity, same chroot (whose levels exist: its creates get ZNODEEXISTS) */
    struct zkc *stranger = open_zkc(&f, chroot, "mallory:guess");
    wait_connected(&f, 2);
    await_exists(&f, stranger, "/private/kid", ZOK); /* exists is not guarded by ACLs */
    assert_int_equal(do_get(&f, stranger, "/private").rc, ZNOAUTH);
    assert_int_equal(do_children(&f, stranger, "/private").rc, ZNOAUTH);
    assert_int_equal(do_children(&f, stranger, "/").rc, ZNOAUTH);
    assert_int_equal(do_set(&f, stranger, "/private", "mine", -1).rc, ZNOAUTH);
    assert_int_equal(do_delete(&f, stranger, "/private/kid", -1).rc, ZNOAUTH);
    assert_int_equal(do_create(&f, stranger, "/private/x", "x", 0).rc, ZNOAUTH);

    /* the same identity in another session reads it */
    struct zkc *friend = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 3);
    await_exists(&f, friend, "/private", ZOK);
    struct got g = do_get(&f, friend, "/private");
    assert_int_equal(g.rc, ZOK);
    assert_memory_equal(g.data, "secret data", 11);

    close_zkc(owner);
    close_zkc(stranger);
    close_zkc(friend);
    fix_done(&f);
    free(chroot);
}

static void test_chroot_levels(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *top = test_chroot("deep");
    char chroot[256];
    snprintf(chroot, sizeof chroot, "%s/a/b", top);
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 1);
    assert_int_equal(do_create(&f, z, "/x", "x", 0).rc, ZOK);

    /* seen from the root, with the same identity and with none of it */
    struct zkc *root = open_zkc(&f, "", AUTH);
    struct zkc *stranger = open_zkc(&f, "", "mallory:guess");
    wait_connected(&f, 3);
    char path[300];
    snprintf(path, sizeof path, "%s/x", chroot);
    await_exists(&f, root, path, ZOK);
    await_exists(&f, stranger, path, ZOK);
    snprintf(path, sizeof path, "%s/a", top);
    struct got g = do_children(&f, root, path);
    assert_int_equal(g.rc, ZOK);
    assert_int_equal(g.n_children, 1);
    assert_string_equal(g.children[0], "b");
    assert_int_equal(do_children(&f, stranger, top).rc, ZNOAUTH);
    assert_int_equal(do_children(&f, stranger, path).rc, ZNOAUTH);
    assert_int_equal(do_children(&f, stranger, chroot).rc, ZNOAUTH);

    /* a second session on the existing chroot connects just the same */
    struct zkc *again = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 4);
    await_exists(&f, again, "/x", ZOK);

    close_zkc(z);
    close_zkc(root);
    close_zkc(stranger);
    close_zkc(again);
    fix_done(&f);
    free(top);
}

struct counter {
    struct fix *f;
    int calls[64];
    int rcs[64];
};

static struct counter *close_counter;

static void on_counted(void *arg, const struct zkc_reply *r)
{
    int *slot = arg;
    struct counter *c = close_counter;
    assert_true(pthread_equal(pthread_self(), c->f->loop_thread));
    int i = (int)(slot - c->calls);
    c->calls[i]++;
    c->rcs[i] = r->rc;
}

static void test_close_in_flight(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("close");
    struct counter c = {.f = &f};
    close_counter = &c;

    /* closed at once, most likely before the session is up: every request hears once
     * (ZCLOSING, or its answer if the connection was quicker than this thread) */
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    for (int i = 0; i < 8; i++)
        assert_int_equal(zkc_exists(z, "/", NULL, NULL, on_counted, &c.calls[i]), 0);
    close_zkc(z);
    WAIT_UNTIL(&f, c.calls[7] > 0, WAIT_MS);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(c.calls[i], 1);
        assert_true(c.rcs[i] == ZCLOSING || c.rcs[i] == ZOK);
    }

    /* closed with requests on the wire: each answered exactly once, whichever way */
    memset(&c, 0, sizeof c);
    c.f = &f;
    z = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 1);
    for (int i = 0; i < 64; i++) {
        char p[32];
        snprintf(p, sizeof p, "/n%d", i);
        if (i % 2 == 0)
            assert_int_equal(zkc_create(z, p, "x", 1, ZKC_EPHEMERAL, on_counted, &c.calls[i]), 0);
        else
            assert_int_equal(zkc_get(z, "/", NULL, NULL, on_counted, &c.calls[i]), 0);
    }
    uv_run(&f.loop, UV_RUN_NOWAIT); /* some answers may be in */
    close_zkc(z);
    fix_done(&f); /* runs the loop until zkc has freed everything */
    for (int i = 0; i < 64; i++) {
        if (c.calls[i] != 1)
            fail_msg("request %d answered %d times", i, c.calls[i]);
        assert_true(c.rcs[i] == ZOK || c.rcs[i] == ZNOAUTH || c.rcs[i] == ZNONODE ||
                    c.rcs[i] == ZCLOSING || c.rcs[i] == ZCONNECTIONLOSS);
    }
    close_counter = NULL;
    free(chroot);
}

/* ---- the ensemble goes away ------------------------------------------------------------------ */

static void run_zk_sh(const char *cmd, int node)
{
    char line[1024];
    if (node > 0)
        snprintf(line, sizeof line, "bash '%s' %s '%s' %d >/dev/null", zk_sh, cmd, zk_dir, node);
    else
        snprintf(line, sizeof line, "bash '%s' %s '%s' >/dev/null", zk_sh, cmd, zk_dir);
    int rc = system(line);
    if (rc != 0)
        fail_msg("%s: exit %d", line, rc);
}

static atomic_int raw_state;

static void on_raw(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    (void)ctx;
    if (type == ZOO_SESSION_EVENT)
        atomic_store(&raw_state, state);
}

static void test_lease_ensemble_down_and_expiry(void **state)
{
    (void)state;
    struct fix f;
    fix_init(&f);
    char *chroot = test_chroot("lease");
    struct zkc *z = open_zkc(&f, chroot, AUTH);
    f.event_z = z;
    struct zkc *watcher = open_zkc(&f, chroot, AUTH);
    wait_connected(&f, 2);
    WAIT_UNTIL(&f, zkc_lease_valid(z), WAIT_MS);
    assert_true(zkc_lease_valid(z));
    int64_t t_ns = (int64_t)zkc_timeout_ms(z) * 1000000;
    int64_t fraction_ns = (int64_t)(ZKC_LEASE_FRACTION * (double)t_ns);
    assert_int_equal(do_create(&f, z, "/eph", "e", ZKC_EPHEMERAL).rc, ZOK);
    int64_t sid = zkc_session_id(z);
    int n_before = f.n_events;

    /* the whole ensemble stops */
    int64_t stop_begin = zkc_boottime_ns();
    assert_true(zkc_lease_until_ns(z) > stop_begin);
    for (int n = 1; n <= 3; n++)
        run_zk_sh("stop-node", n);
    int64_t down = zkc_boottime_ns();
    WAIT_UNTIL(&f, !zkc_lease_valid(z), (int)(fraction_ns / 1000000) + 2000);
    int64_t ended = zkc_boottime_ns();
    assert_false(zkc_lease_valid(z));
    /* nothing sent after the last node stopped was answered: the lease ran out within
     * the fraction of the timeout, before the ensemble could have expired the session */
    int64_t until = zkc_lease_until_ns(z);
    if (until > down + fraction_ns)
        fail_msg("the lease ran to %lld ms after the ensemble was down (fraction %lld ms)",
                 (long long)((until - down) / 1000000), (long long)(fraction_ns / 1000000));
    assert_true(until < down + t_ns);
    assert_true(ended - down < fraction_ns + 1000000000LL);
    print_message("lease: stopping took %lld ms; the lease ended %lld ms after the last node "
                  "stopped (its end %lld ms after; the fraction %lld ms, the timeout %lld ms)\n",
                  (long long)((down - stop_begin) / 1000000), (long long)((ended - down) / 1000000),
                  (long long)((until - down) / 1000000), (long long)(fraction_ns / 1000000),
                  (long long)(t_ns / 1000000));
    /* and the client has not called the session expired: it cannot know */
    assert_int_equal(count_events(&f, ZKC_EXPIRED), 0);
    assert_true(count_events(&f, ZKC_DISCONNECTED) >= 1);
    assert_int_equal(zkc_session_id(z), sid);
    assert_int_equal(zkc_create(z, "/while-down", "x", 1, 0, NULL, NULL), 0);

    /* back: the same session, a new lease */
    run_zk_sh("start", 0);
    WAIT_UNTIL(&f, count_events(&f, ZKC_CONNECTED) >= 4, WAIT_MS);
    for (int i = n_before; i < f.n_events; i++)
        if (f.events[i] == ZKC_CONNECTED)
            assert_false(f.news[i]);
    WAIT_UNTIL(&f, zkc_lease_valid(z), WAIT_MS);
    assert_true(zkc_lease_valid(z));
    assert_int_equal(zkc_session_id(z), sid);
    await_exists(&f, watcher, "/eph", ZOK);

    /* a second handle joins the session with its credentials and closes it: the
     * ensemble drops the session and zkc hears it expired, then makes a new one */
    int64_t id;
    char passwd[16];
    assert_int_equal(zkc_session_credentials(z, &id, passwd), 0);
    assert_int_equal(id, sid);
    clientid_t cid;
    cid.client_id = id;
    memcpy(cid.passwd, passwd, sizeof cid.passwd);
    atomic_store(&raw_state, 0);
    zhandle_t *raw = zookeeper_init(zk_hosts, on_raw, TIMEOUT_MS, &cid, NULL, 0);
    assert_non_null(raw);
    WAIT_UNTIL(&f, atomic_load(&raw_state) == ZOO_CONNECTED_STATE, WAIT_MS);
    assert_int_equal(atomic_load(&raw_state), ZOO_CONNECTED_STATE);
    assert_int_equal(zookeeper_close(raw), ZOK);
    int n_mark = f.n_events;
    WAIT_UNTIL(&f, count_events(&f, ZKC_EXPIRED) == 1 && f.events[f.n_events - 1] == ZKC_CONNECTED,
               WAIT_MS);
    assert_int_equal(count_events(&f, ZKC_EXPIRED), 1);
    int i = n_mark;
    while (i < f.n_events && f.events[i] != ZKC_EXPIRED)
        i++;
    assert_true(i < f.n_events);
    assert_false(f.lease_at_event[i]); /* the lease had ended when ZKC_EXPIRED came */
    assert_true(i + 1 < f.n_events);
    assert_int_equal(f.events[i + 1], ZKC_CONNECTED);
    assert_true(f.news[i + 1]);
    assert_true(zkc_session_id(z) != 0 && zkc_session_id(z) != sid);

    /* the old session's ephemeral went with it; the new session has its own lease */
    await_exists(&f, watcher, "/eph", ZNONODE);
    await_exists(&f, z, "/eph", ZNONODE);
    WAIT_UNTIL(&f, zkc_lease_valid(z), WAIT_MS);
    assert_true(zkc_lease_valid(z));
    assert_int_equal(do_create(&f, z, "/eph", "again", ZKC_EPHEMERAL).rc, ZOK);

    close_zkc(z);
    close_zkc(watcher);
    fix_done(&f);
    free(chroot);
}

static int setup(void **state)
{
    (void)state;
    zk_hosts = getenv("TETHYS_TEST_ZK_HOSTS");
    zk_dir = getenv("TETHYS_TEST_ZK_DIR");
    zk_sh = getenv("TETHYS_TEST_ZK_SH");
    if (zk_hosts == NULL || zk_dir == NULL || zk_sh == NULL) {
        fprintf(stderr, "test_zkc: TETHYS_TEST_ZK_HOSTS, _DIR and _SH are not set: run it "
                        "through tests/zk/with-zk.sh\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_basic_operations),
        cmocka_unit_test(test_watches),
        cmocka_unit_test(test_ephemeral_sequence),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_acl),
        cmocka_unit_test(test_chroot_levels),
        cmocka_unit_test(test_close_in_flight),
        /* last: it stops and restarts the ensemble */
        cmocka_unit_test(test_lease_ensemble_down_and_expiry),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
