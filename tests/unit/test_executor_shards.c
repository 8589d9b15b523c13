/*
 * test_executor_shards.c - an executor that owns some shards of its jobs, driven in
 * process with real shell runs and the real clock: only owned shards fire; a new set of
 * shards keeps the schedule and the runs of every shard; a run now of a shard it does not
 * own is answered "not_owned"; a local job's fire ids carry the executor; a fence starts
 * nothing and records nothing, kills the runs of on_executor_death "kill" jobs (their
 * process group) and leaves the others running, holds retries; unfencing resumes, and an
 * assignment's resume_after fills the fence's hole; "through" splits a shard's fires
 * between two executors exactly, when a shard moves and when a job is removed; the
 * executor a shard came from is named in the misfire records of its gap.
 *
 * The sink is a function of the test that keeps every result it is given.  Waits are
 * conditions with deadlines: nothing here sleeps a fixed time to let something happen.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "executor/executor.h"

#define WAIT_MS 15000 /* the longest any condition here may take */

/* ---------------------------------------------------------------------------------------
 * The sink: every result, copied
 */

struct got {
    enum coord_result_kind kind;
    enum coord_phase phase;
    enum store_run_status status;
    enum store_trigger trigger;
    enum store_skip_reason reason;
    char fire_id[STORE_FIRE_ID_MAX];
    char job[64];
    char run_id[STORE_ID_MAX];
    char text[512]; /* a run's error, a skip's detail */
    int32_t shard;
    int64_t at;
    int64_t pid;
    uint32_t fire_shards;
};

struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct got *items;
    size_t n, cap;
};

static int deliver(void *arg, const struct coord_result *const *r, size_t n, struct ty_err *err)
{
    (void)err;
    struct sink *k = arg;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < n; i++) {
        if (k->n == k->cap) {
            k->cap = k->cap ? k->cap * 2 : 1024;
            k->items = realloc(k->items, k->cap * sizeof *k->items);
            assert_non_null(k->items);
        }
        struct got *g = &k->items[k->n++];
        memset(g, 0, sizeof *g);
        g->kind = r[i]->kind;
        if (r[i]->kind == COORD_RESULT_SKIP) {
            const struct store_skip *s = &r[i]->skip;
            snprintf(g->fire_id, sizeof g->fire_id, "%s", s->fire_id);
            snprintf(g->job, sizeof g->job, "%s", s->job);
            snprintf(g->text, sizeof g->text, "%s", s->detail ? s->detail : "");
            g->shard = s->shard;
            g->at = s->scheduled_at;
            g->reason = s->reason;
            g->trigger = s->trigger;
        } else {
            const struct store_run *u = &r[i]->run;
            snprintf(g->fire_id, sizeof g->fire_id, "%s", u->fire_id);
            snprintf(g->job, sizeof g->job, "%s", u->job);
            snprintf(g->run_id, sizeof g->run_id, "%s", u->run_id);
            snprintf(g->text, sizeof g->text, "%s", u->error ? u->error : "");
            g->shard = (int32_t)u->shard;
            g->at = u->scheduled_at;
            g->status = u->status;
            g->trigger = u->trigger;
            g->pid = u->pid;
            g->phase = r[i]->phase;
        }
        g->fire_shards = r[i]->fire_shards;
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

/* A condition over the results so far (called with the sink locked). */
typedef bool (*pred_fn)(const struct sink *k, const void *arg);

static bool wait_for(struct sink *k, pred_fn pred, const void *arg, int64_t ms)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&k->mu);
    bool ok;
    while (!(ok = pred(k, arg)))
        if (pthread_cond_timedwait(&k->cv, &k->mu, &end) == ETIMEDOUT) {
            ok = pred(k, arg);
            break;
        }
    pthread_mutex_unlock(&k->mu);
    return ok;
}

/* What a predicate looks for: results of `job` (shard -2: any) of a kind and phase. */
struct want {
    const char *job;
    int32_t shard;
    enum coord_result_kind kind;
    enum coord_phase phase; /* runs; 0: any */
    int64_t after;          /* scheduled after this */
    size_t count;           /* at least this many */
    const char *run_id;     /* runs: this one only (NULL: any) */
    int64_t until;          /* scheduled at or before this (0: any time) */
};

static bool matches(const struct got *g, const struct want *w)
{
    return strcmp(g->job, w->job) == 0 && (w->shard == -2 || g->shard == w->shard) &&
           g->kind == w->kind && (w->phase == 0 || g->phase == w->phase) && g->at > w->after &&
           (w->until == 0 || g->at <= w->until) &&
           (w->run_id == NULL || strcmp(g->run_id, w->run_id) == 0);
}

static size_t count_of(const struct sink *k, const struct want *w)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n; i++)
        n += matches(&k->items[i], w);
    return n;
}

static bool enough(const struct sink *k, const void *arg)
{
    const struct want *w = arg;
    return count_of(k, w) >= (w->count ? w->count : 1);
}

/* The latest result matching w, copied (false: none). */
static bool last_of(struct sink *k, const struct want *w, struct got *out)
{
    bool found = false;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n; i++)
        if (matches(&k->items[i], w)) {
            *out = k->items[i];
            found = true;
        }
    pthread_mutex_unlock(&k->mu);
    return found;
}

/* Every second of (after, until] has an ended run of w's job and shard. */
static bool all_made(const struct sink *k, const void *arg)
{
    const struct want *w = arg;
    for (int64_t t = w->after + 1; t <= w->until; t++) {
        struct want one = *w;
        one.after = t - 1;
        one.until = t;
        if (count_of(k, &one) == 0)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Executors in this process
 */

struct done_flag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

struct node {
    char dir[64];
    char id[COORD_ID_MAX];
    struct sink sink;
    struct executor *x;
    struct coord_member m;
    struct done_flag answered; /* the request in flight has its answer */
};

static int64_t wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

static void node_start(struct node *n, const char *id)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "/tmp/tethys-xshards-XXXXXX");
    assert_non_null(mkdtemp(n->dir));
    snprintf(n->id, sizeof n->id, "%s", id);
    pthread_mutex_init(&n->sink.mu, NULL);
    pthread_cond_init(&n->sink.cv, NULL);
    pthread_mutex_init(&n->answered.mu, NULL);
    pthread_cond_init(&n->answered.cv, NULL);
    struct executor_config cfg = {
        .id = n->id,
        .kind = "standalone",
        .data_dir = n->dir,
        .boot_id = "test-boot",
        .max_runs = 32,
        .queue_max = 1000,
        .max_jobs = 64,
        .deliver = deliver,
        .deliver_arg = &n->sink,
    };
    struct ty_err err;
    assert_int_equal(executor_new(&cfg, &n->x, &err), 0);
    assert_int_equal(executor_start(n->x, &err), 0);
    executor_member(n->x, &n->m);
}

static void flag_set(struct done_flag *d)
{
    pthread_mutex_lock(&d->mu);
    d->done = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void flag_wait(struct done_flag *d)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&d->mu);
    while (!d->done)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &end) == ETIMEDOUT)
            break;
    bool done = d->done;
    pthread_mutex_unlock(&d->mu);
    assert_true(done);
}

static void on_stopped(void *arg)
{
    flag_set(arg);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void node_stop(struct node *n)
{
    struct done_flag d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    executor_stop(n->x, 0, on_stopped, &d);
    flag_wait(&d);
    executor_free(n->x);
    nftw(n->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(n->sink.items);
    pthread_mutex_destroy(&n->sink.mu);
    pthread_cond_destroy(&n->sink.cv);
    pthread_mutex_destroy(&n->answered.mu);
    pthread_cond_destroy(&n->answered.cv);
}

/* A request answered: rc, and the reply's json (the caller's). */
struct answer {
    int rc;
    char msg[TY_ERR_MSG_MAX];
    json_t *json;
};

static void req_done(struct coord_request *req)
{
    flag_set(req->impl);
}

static struct answer call(struct node *n, struct coord_request *req)
{
    n->answered.done = false; /* one request at a time: the test's thread waits for each */
    req->impl = &n->answered;
    req->done = req_done;
    assert_int_equal(n->m.submit(n->m.arg, req), 0);
    flag_wait(&n->answered);
    struct answer a = {req->reply.rc, "", req->reply.json};
    snprintf(a.msg, sizeof a.msg, "%s", req->reply.err.msg);
    req->reply.json = NULL;
    coord_request_free(req);
    return a;
}

/* Assign job `job` (def NULL: take it away) with shards[0..n) (NULL: all); complete: the
 * whole set.  Returns the reply's "through"; the assignment must not fail. */
static int64_t assign(struct node *nd, const char *job, const char *def, const uint32_t *shards,
                      uint32_t n, int64_t resume_after, const char *from, bool complete)
{
    struct coord_request *req = coord_request_new(COORD_ASSIGN);
    req->assign = calloc(1, sizeof *req->assign);
    req->n_assign = 1;
    req->complete = complete;
    req->epoch = 1;
    struct coord_assignment *a = &req->assign[0];
    a->job = strdup(job);
    a->definition = def ? strdup(def) : NULL;
    a->version = 1;
    a->epoch = 1;
    a->resume_after = resume_after;
    a->from = from ? strdup(from) : NULL;
    if (shards != NULL) {
        a->shards = malloc(n * sizeof *a->shards);
        memcpy(a->shards, shards, n * sizeof *shards);
        a->n_shards = n;
    }
    struct answer ans = call(nd, req);
    assert_int_equal(ans.rc, 0);
    json_t *failed = json_object_get(ans.json, "failed");
    if (json_array_size(failed) > 0)
        fail_msg("assignment of %s failed: %s", job,
                 json_string_value(json_object_get(json_array_get(failed, 0), "error")));
    json_t *through = json_object_get(ans.json, "through");
    assert_true(json_is_integer(through));
    int64_t w = json_integer_value(through);
    json_decref(ans.json);
    return w;
}

/* Fire job now (shards[0..n), NULL: all). */
static struct answer fire_now(struct node *nd, const char *job, const uint32_t *shards, uint32_t n)
{
    struct coord_request *req = coord_request_new(COORD_FIRE);
    req->fire.job = strdup(job);
    req->fire.trigger = STORE_TRIGGER_MANUAL;
    if (shards != NULL) {
        req->fire.shards = malloc(n * sizeof *shards);
        memcpy(req->fire.shards, shards, n * sizeof *shards);
        req->fire.n_shards = n;
    }
    return call(nd, req);
}

static json_t *status_of(struct node *nd)
{
    struct answer a = call(nd, coord_request_new(COORD_STATUS));
    assert_int_equal(a.rc, 0);
    return a.json;
}

/* The scheduled fires of `job`'s shard made as runs (one queued result each), by time. */
static size_t fires_of(struct sink *k, const char *job, int32_t shard, int64_t *at, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n && n < cap; i++) {
        const struct got *g = &k->items[i];
        if (g->kind == COORD_RESULT_RUN && g->phase == COORD_PHASE_QUEUED &&
            g->trigger != STORE_TRIGGER_MANUAL && g->trigger != STORE_TRIGGER_RETRY &&
            strcmp(g->job, job) == 0 && g->shard == shard)
            at[n++] = g->at;
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

#define EVERY_SECOND "* * * * * ?"

/* ---------------------------------------------------------------------------------------
 * Ownership
 */

static void test_only_owned_shards_fire(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, "exec-a");
    const uint32_t mine[] = {0, 2};
    int64_t t0 = wall_s();
    assign(&a, "tick",
           "{\"name\": \"tick\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
           "\", \"shards\": 3}",
           mine, 2, 0, NULL, true);
    struct want w0 = {"tick", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, t0, 3, NULL, 0};
    struct want w2 = {"tick", 2, COORD_RESULT_RUN, COORD_PHASE_ENDED, t0, 3, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &w0, WAIT_MS));
    assert_true(wait_for(&a.sink, enough, &w2, WAIT_MS));
    pthread_mutex_lock(&a.sink.mu);
    for (size_t i = 0; i < a.sink.n; i++) {
        const struct got *g = &a.sink.items[i];
        assert_int_not_equal(g->shard, 1); /* another executor's: no run, no record */
        assert_int_equal(g->fire_shards, 3);
        char want[64];
        snprintf(want, sizeof want, "tick@%lld#%d", (long long)g->at, g->shard);
        assert_string_equal(g->fire_id, want);
        if (g->kind == COORD_RESULT_RUN && g->phase == COORD_PHASE_ENDED)
            assert_int_equal(g->status, STORE_RUN_SUCCEEDED);
    }
    pthread_mutex_unlock(&a.sink.mu);
    node_stop(&a);
}

static void test_new_shards_keep_schedule_and_runs(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, "exec-a");
    const char *def = "{\"name\": \"hold\", \"command\": \"sleep 3\", \"schedule\": \"" EVERY_SECOND
                      "\", \"shards\": 2, \"overlap\": \"skip\"}";
    int64_t t0 = wall_s();
    assign(&a, "hold", def, NULL, 0, 0, NULL, true);
    struct want r0 = {"hold", 0, COORD_RESULT_RUN, COORD_PHASE_RUNNING, t0, 1, NULL, 0};
    struct want r1 = {"hold", 1, COORD_RESULT_RUN, COORD_PHASE_RUNNING, t0, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &r0, WAIT_MS));
    assert_true(wait_for(&a.sink, enough, &r1, WAIT_MS));
    struct got run0, run1;
    assert_true(last_of(&a.sink, &r0, &run0));
    assert_true(last_of(&a.sink, &r1, &run1));
    /* shard 1 goes elsewhere; the same definition */
    const uint32_t keep[] = {0};
    int64_t w = assign(&a, "hold", def, keep, 1, 0, NULL, false);
    assert_true(w >= wall_s() - 2 && w <= wall_s());
    /* both runs go on to their end, recorded as usual */
    struct want e0 = {"hold", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, 0, 1, run0.run_id, 0};
    struct want e1 = {"hold", 1, COORD_RESULT_RUN, COORD_PHASE_ENDED, 0, 1, run1.run_id, 0};
    assert_true(wait_for(&a.sink, enough, &e0, WAIT_MS));
    assert_true(wait_for(&a.sink, enough, &e1, WAIT_MS));
    struct got end;
    assert_true(last_of(&a.sink, &e1, &end));
    assert_int_equal(end.status, STORE_RUN_SUCCEEDED);
    /* shard 0 fires on: a new run after the first one ended */
    struct want next0 = {"hold", 0, COORD_RESULT_RUN, COORD_PHASE_RUNNING, run0.at, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &next0, WAIT_MS));
    /* shard 0: one record (a run, or an overlap skip) for every second from its first run on,
     * the change made no hole; shard 1: every second up to "through", none after */
    struct got last0;
    assert_true(last_of(&a.sink, &next0, &last0));
    pthread_mutex_lock(&a.sink.mu);
    for (int64_t t = run0.at; t <= last0.at; t++) {
        size_t n0 = 0;
        for (size_t i = 0; i < a.sink.n; i++) {
            const struct got *g = &a.sink.items[i];
            bool rec = (g->kind == COORD_RESULT_SKIP ||
                        (g->kind == COORD_RESULT_RUN && g->phase == COORD_PHASE_QUEUED));
            if (rec && strcmp(g->job, "hold") == 0 && g->at == t && g->shard == 0)
                n0++;
        }
        if (n0 != 1)
            fail_msg("shard 0, fire %lld: %zu records (one expected)", (long long)t, n0);
    }
    for (size_t i = 0; i < a.sink.n; i++) {
        const struct got *g = &a.sink.items[i];
        if (g->shard == 1 && g->at > w)
            fail_msg("shard 1 fired at %lld, after through %lld", (long long)g->at, (long long)w);
    }
    pthread_mutex_unlock(&a.sink.mu);
    node_stop(&a);
}

static void test_fire_now_of_shards_not_owned(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, "exec-a");
    const uint32_t mine[] = {1};
    assign(&a, "manual",
           "{\"name\": \"manual\", \"command\": \"true\", \"shards\": 3, \"overlap\": "
           "\"parallel\"}",
           mine, 1, 0, NULL, true);
    const uint32_t ask[] = {0, 1};
    struct answer ans = fire_now(&a, "manual", ask, 2);
    assert_int_equal(ans.rc, 0);
    json_t *runs = json_object_get(ans.json, "runs"),
           *skipped = json_object_get(ans.json, "skipped");
    assert_int_equal(json_array_size(runs), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "shard")), 1);
    assert_int_equal(json_array_size(skipped), 1);
    json_t *sk = json_array_get(skipped, 0);
    assert_int_equal(json_integer_value(json_object_get(sk, "shard")), 0);
    assert_string_equal(json_string_value(json_object_get(sk, "reason")), "not_owned");
    assert_non_null(strstr(json_string_value(json_object_get(sk, "detail")), "another executor"));
    json_decref(ans.json);
    /* every shard asked for: the two it does not own are answered so, nothing recorded */
    ans = fire_now(&a, "manual", NULL, 0);
    assert_int_equal(ans.rc, 0);
    assert_int_equal(json_array_size(json_object_get(ans.json, "runs")), 1);
    assert_int_equal(json_array_size(json_object_get(ans.json, "skipped")), 2);
    json_decref(ans.json);
    struct want ended = {"manual", -2, COORD_RESULT_RUN, COORD_PHASE_ENDED, -1, 2, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &ended, WAIT_MS));
    pthread_mutex_lock(&a.sink.mu);
    for (size_t i = 0; i < a.sink.n; i++) {
        assert_int_equal(a.sink.items[i].shard, 1);
        assert_int_equal(a.sink.items[i].kind, COORD_RESULT_RUN);
    }
    pthread_mutex_unlock(&a.sink.mu);
    node_stop(&a);
}

static void test_local_fire_ids(void **state)
{
    (void)state;
    struct node a;
    /* 63 bytes: the longest id an executor may have */
    node_start(&a, "exec-local-0123456789012345678901234567890123456789012345678901");
    int64_t t0 = wall_s();
    assign(&a, "loc",
           "{\"name\": \"loc\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
           "\", \"shards\": 2, \"strategy\": \"local\"}",
           NULL, 0, 0, NULL, true);
    struct want w = {"loc", -2, COORD_RESULT_RUN, COORD_PHASE_ENDED, t0, 4, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &w, WAIT_MS));
    pthread_mutex_lock(&a.sink.mu);
    for (size_t i = 0; i < a.sink.n; i++) {
        const struct got *g = &a.sink.items[i];
        char want[STORE_FIRE_ID_MAX];
        snprintf(want, sizeof want, "loc@%lld~%s#%d", (long long)g->at, a.id, g->shard);
        assert_string_equal(g->fire_id, want);
        assert_int_equal(g->fire_shards, 2);
    }
    pthread_mutex_unlock(&a.sink.mu);
    /* a run now made here carries it too */
    struct answer ans = fire_now(&a, "loc", NULL, 0);
    assert_int_equal(ans.rc, 0);
    const char *fid = json_string_value(json_object_get(ans.json, "fire_id"));
    char tail[COORD_ID_MAX + 2];
    snprintf(tail, sizeof tail, "~%s", a.id);
    assert_non_null(strstr(fid, "!m"));
    assert_string_equal(fid + strlen(fid) - strlen(tail), tail);
    json_decref(ans.json);
    /* a name too long for such ids is refused, naming the field; nothing is held */
    char name[129], def[512];
    memset(name, 'n', 128);
    name[128] = '\0';
    snprintf(def, sizeof def, "{\"name\": \"%s\", \"command\": \"true\", \"strategy\": \"local\"}",
             name);
    struct coord_request *req = coord_request_new(COORD_ASSIGN);
    req->assign = calloc(1, sizeof *req->assign);
    req->n_assign = 1;
    req->assign[0].job = strdup(name);
    req->assign[0].definition = strdup(def);
    req->assign[0].version = 1;
    ans = call(&a, req);
    assert_int_equal(ans.rc, 0);
    json_t *failed = json_object_get(ans.json, "failed");
    assert_int_equal(json_array_size(failed), 1);
    const char *err = json_string_value(json_object_get(json_array_get(failed, 0), "error"));
    assert_non_null(strstr(err, "strategy \"local\""));
    assert_non_null(strstr(err, "longer than 191 bytes"));
    json_decref(ans.json);
    ans = fire_now(&a, name, NULL, 0);
    assert_int_equal(ans.rc, TY_ENOENT);
    node_stop(&a);
}

/* ---------------------------------------------------------------------------------------
 * Fencing
 */

/* The executor's status says it is no longer fenced (false: not within WAIT_MS). */
static bool unfenced(struct node *n)
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        json_t *st = status_of(n);
        bool no = json_is_false(json_object_get(st, "fenced"));
        json_decref(st);
        if (no)
            return true;
        struct timespec d = {0, 10 * 1000000L};
        nanosleep(&d, NULL);
    }
    return false;
}

static bool group_gone(pid_t pgid)
{
    for (int i = 0; i < 500; i++) {
        if (kill(-pgid, 0) != 0 && errno == ESRCH)
            return true;
        struct timespec d = {0, 10 * 1000000L};
        nanosleep(&d, NULL);
    }
    return false;
}

static void test_fence_and_unfence(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, "exec-a");
    const char *tick = "{\"name\": \"tick\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
                       "\", \"misfire_threshold\": 30, \"overlap\": \"parallel\"}";
    assign(&a, "tick", tick, NULL, 0, 0, NULL, true);
    /* a group that ignores TERM: only the KILL after the grace ends it */
    assign(&a, "killme",
           "{\"name\": \"killme\", \"command\": \"trap '' TERM; sleep 60 & wait\", "
           "\"on_executor_death\": \"kill\", \"kill_grace\": 1}",
           NULL, 0, 0, NULL, false);
    assign(&a, "keepme",
           "{\"name\": \"keepme\", \"command\": \"sleep 60\", \"on_executor_death\": \"finish\"}",
           NULL, 0, 0, NULL, false);
    json_decref(fire_now(&a, "killme", NULL, 0).json);
    json_decref(fire_now(&a, "keepme", NULL, 0).json);
    struct want k_run = {"killme", 0, COORD_RESULT_RUN, COORD_PHASE_RUNNING, -1, 1, NULL, 0};
    struct want f_run = {"keepme", 0, COORD_RESULT_RUN, COORD_PHASE_RUNNING, -1, 1, NULL, 0};
    struct want tick_on = {"tick", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, -1, 2, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &k_run, WAIT_MS));
    assert_true(wait_for(&a.sink, enough, &f_run, WAIT_MS));
    assert_true(wait_for(&a.sink, enough, &tick_on, WAIT_MS));
    struct got krun, frun;
    assert_true(last_of(&a.sink, &k_run, &krun));
    assert_true(last_of(&a.sink, &f_run, &frun));
    /* a failed run whose retry's backoff ends while fenced */
    assign(&a, "flaky",
           "{\"name\": \"flaky\", \"command\": \"exit 3\", \"retries\": 1, \"retry_backoff\": 1}",
           NULL, 0, 0, NULL, false);
    json_decref(fire_now(&a, "flaky", NULL, 0).json);
    struct want planned = {"flaky", 0, COORD_RESULT_RUN, COORD_PHASE_PLANNED, -1, 1, NULL, 0};
    struct want flaky_ran = {"flaky", 0, COORD_RESULT_RUN, COORD_PHASE_RUNNING, -1, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &planned, WAIT_MS));

    executor_fence(a.x, true);
    int64_t fenced_at = wall_s();
    /* the kill job's run: its whole group gone, recorded interrupted naming the lease */
    struct want k_end = {"killme", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, -1, 1, krun.run_id, 0};
    assert_true(wait_for(&a.sink, enough, &k_end, WAIT_MS));
    struct got kend;
    assert_true(last_of(&a.sink, &k_end, &kend));
    assert_int_equal(kend.status, STORE_RUN_INTERRUPTED);
    assert_non_null(strstr(kend.text, "lease"));
    assert_true(group_gone((pid_t)krun.pid));
    /* the finish job's run goes on */
    assert_int_equal(kill((pid_t)frun.pid, 0), 0);
    json_t *st = status_of(&a);
    assert_true(json_is_true(json_object_get(st, "fenced")));
    json_decref(st);
    struct answer ans = fire_now(&a, "tick", NULL, 0);
    assert_int_equal(ans.rc, TY_EUNAVAIL);
    assert_non_null(strstr(ans.msg, "fenced"));
    /* the schedule's fires of the next two seconds are neither made nor recorded */
    struct want later = {"tick", -2, COORD_RESULT_RUN, 0, fenced_at, 1, NULL, 0};
    struct want none_yet = {"tick", -2, COORD_RESULT_SKIP, 0, fenced_at, 1, NULL, 0};
    while (wall_s() < fenced_at + 3) { /* no result can meet it: the wait is the deadline */
        assert_false(wait_for(&a.sink, enough, &later, 200));
        assert_false(wait_for(&a.sink, enough, &none_yet, 1));
    }
    pthread_mutex_lock(&a.sink.mu); /* its backoff is over: the retry waits all the same */
    assert_int_equal(count_of(&a.sink, &flaky_ran), 1);
    pthread_mutex_unlock(&a.sink.mu);
    int64_t before_unfence = wall_s();
    executor_fence(a.x, false);
    assert_true(unfenced(&a)); /* the loop unfences when it gets to it */
    flaky_ran.count = 2;       /* the retry goes now */
    assert_true(wait_for(&a.sink, enough, &flaky_ran, WAIT_MS));
    /* it resumes from now, and the fires the fence dropped (its hole) are made at once,
     * under the misfire policy: nobody else can have made them in the same session */
    struct want resumed = {"tick", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, before_unfence, 1,
                           NULL,   0};
    assert_true(wait_for(&a.sink, enough, &resumed, WAIT_MS));
    struct want hole = {"tick", 0,    COORD_RESULT_RUN, COORD_PHASE_ENDED, fenced_at,
                        0,      NULL, before_unfence};
    assert_true(wait_for(&a.sink, all_made, &hole, WAIT_MS));
    int64_t at[4096];
    size_t n;
    /* an assignment naming where the job's fires were made up to makes none of them again */
    assign(&a, "tick", tick, NULL, 0, fenced_at - 1, NULL, false);
    struct want after_assign = {"tick", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, wall_s() + 1, 1,
                                NULL,   0};
    assert_true(wait_for(&a.sink, enough, &after_assign, WAIT_MS));
    n = fires_of(&a.sink, "tick", 0, at, 4096);
    qsort(at, n, sizeof at[0], cmp_i64);
    for (size_t i = 1; i < n; i++)
        if (at[i] == at[i - 1])
            fail_msg("fire %lld made twice", (long long)at[i]);
    /* the finish job's run never noticed */
    struct want f_end = {"keepme", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, -1, 1, NULL, 0};
    pthread_mutex_lock(&a.sink.mu);
    assert_int_equal(count_of(&a.sink, &f_end), 0);
    pthread_mutex_unlock(&a.sink.mu);
    assert_int_equal(kill((pid_t)frun.pid, 0), 0);
    node_stop(&a);
}

/* ---------------------------------------------------------------------------------------
 * Moving shards between executors
 */

/* Every scheduled fire of job's shard from `from` to `to`, across a and b: exactly once. */
static void assert_once(struct node *a, struct node *b, const char *job, int32_t shard,
                        int64_t from, int64_t to)
{
    static int64_t at[8192];
    size_t n = fires_of(&a->sink, job, shard, at, 4096);
    n += fires_of(&b->sink, job, shard, at + n, 4096);
    qsort(at, n, sizeof at[0], cmp_i64);
    for (int64_t t = from; t <= to; t++) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            c += at[i] == t;
        if (c != 1)
            fail_msg("job %s shard %d: fire %lld made %zu times (from %lld to %lld)", job, shard,
                     (long long)t, c, (long long)from, (long long)to);
    }
}

/* The latest fire time of job's shard made by n (0: none). */
static int64_t latest(struct node *n, const char *job, int32_t shard)
{
    static int64_t at[4096];
    size_t k = fires_of(&n->sink, job, shard, at, 4096);
    int64_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (at[i] > m)
            m = at[i];
    return m;
}

/* Until the wall clock is ms milliseconds into a second: the moment of the second a move
 * is made at, so the moves meet the trigger engine at different points of its tick. */
static void at_ms_of_second(int ms)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct timespec at = {now.tv_sec, (long)ms * 1000000L};
    if (at.tv_nsec <= now.tv_nsec)
        at.tv_sec++;
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
        ;
}

static void test_through_splits_fires_exactly(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, "exec-a");
    node_start(&b, "exec-b");
    const char *def = "{\"name\": \"w\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
                      "\", \"shards\": 2}";
    const uint32_t s0[] = {0}, s1[] = {1};
    assign(&b, "other", "{\"name\": \"other\", \"command\": \"true\"}", NULL, 0, 0, NULL, true);
    int64_t t0 = wall_s();
    assign(&a, "w", def, NULL, 0, 0, NULL, true);
    struct want first = {"w", 1, COORD_RESULT_RUN, COORD_PHASE_QUEUED, t0, 2, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &first, WAIT_MS));
    int64_t start = latest(&a, "w", 1) - 1;
    /* shard 1 moves a -> b (b is given the job with that shard), then back (b gives the
     * job up: taken away whole); each move at another moment of the second */
    static const int moments[][2] = {{330, 600}, {770, 100}, {20, 980}};
    int64_t w1[3], w2[3];
    for (int round = 0; round < 3; round++) {
        at_ms_of_second(moments[round][0]);
        w1[round] = assign(&a, "w", def, s0, 1, 0, NULL, false);
        assign(&b, "w", def, s1, 1, w1[round], NULL, false);
        struct want on_b = {"w",  1, COORD_RESULT_RUN, COORD_PHASE_QUEUED, w1[round] + 1, 1,
                            NULL, 0};
        assert_true(wait_for(&b.sink, enough, &on_b, WAIT_MS));
        at_ms_of_second(moments[round][1]);
        w2[round] = assign(&b, "w", NULL, NULL, 0, 0, NULL, false);
        assign(&a, "w", def, NULL, 0, w2[round], NULL, false);
        struct want on_a = {"w",  1, COORD_RESULT_RUN, COORD_PHASE_QUEUED, w2[round] + 1, 1,
                            NULL, 0};
        assert_true(wait_for(&a.sink, enough, &on_a, WAIT_MS));
        assert_true(w1[round] < w2[round]);
    }
    /* a makes a few more; then every second of both shards was made exactly once */
    struct want more = {"w", 1, COORD_RESULT_RUN, COORD_PHASE_QUEUED, w2[2] + 2, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &more, WAIT_MS));
    int64_t end = latest(&a, "w", 1), end0 = latest(&a, "w", 0);
    assert_once(&a, &b, "w", 1, start, end);
    assert_once(&a, &b, "w", 0, start, end0 < end ? end0 : end);
    /* b made shard 1's fires only inside the spans it owned, and never shard 0's */
    static int64_t at[4096];
    size_t n = fires_of(&b.sink, "w", 1, at, 4096);
    for (size_t i = 0; i < n; i++) {
        bool inside = false;
        for (int round = 0; round < 3; round++)
            inside |= at[i] > w1[round] && at[i] <= w2[round];
        if (!inside)
            fail_msg("b made fire %lld of shard 1 outside the spans it owned", (long long)at[i]);
    }
    assert_int_equal(fires_of(&b.sink, "w", 0, at, 4096), 0);
    node_stop(&a);
    node_stop(&b);
}

static void test_from_named_in_gap_skips(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, "exec-a");
    const char *def = "{\"name\": \"g\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
                      "\", \"shards\": 2, \"misfire_threshold\": 2, \"overlap\": \"parallel\"}";
    const uint32_t s0[] = {0};
    int64_t t0 = wall_s();
    assign(&a, "g", def, s0, 1, 0, NULL, true);
    struct want on = {"g", 0, COORD_RESULT_RUN, COORD_PHASE_ENDED, t0, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &on, WAIT_MS));
    /* shard 1 comes from e1, which died a minute ago: its fires since are a gap */
    int64_t r = wall_s() - 60;
    int64_t c = assign(&a, "g", def, NULL, 0, r, "e1", false);
    struct want skip = {"g", 1, COORD_RESULT_SKIP, 0, r, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &skip, WAIT_MS));
    struct got sk;
    assert_true(last_of(&a.sink, &skip, &sk));
    assert_int_equal(sk.reason, STORE_SKIP_MISFIRE);
    assert_int_equal(sk.at, r + 1);
    assert_int_equal(sk.fire_shards, 2);
    assert_non_null(strstr(sk.text, "executor e1 lost"));
    /* the gap's fires within the threshold are ordinary runs, and so are the next ones */
    struct want late = {"g", 1, COORD_RESULT_RUN, COORD_PHASE_ENDED, c - 2, 1, NULL, c};
    assert_true(wait_for(&a.sink, enough, &late, WAIT_MS));
    struct want next = {"g", 1, COORD_RESULT_RUN, COORD_PHASE_ENDED, c + 1, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &next, WAIT_MS));
    struct got g1;
    assert_true(last_of(&a.sink, &late, &g1));
    assert_int_equal(g1.trigger, STORE_TRIGGER_SCHEDULE);
    assert_int_equal(g1.status, STORE_RUN_SUCCEEDED);
    /* a job new here, whose executor died: its resumed fires' misfires name it too */
    int64_t r2 = wall_s() - 60;
    assign(&a, "h",
           "{\"name\": \"h\", \"command\": \"true\", \"schedule\": \"" EVERY_SECOND
           "\", \"misfire_threshold\": 2}",
           NULL, 0, r2, "e0", false);
    struct want skip2 = {"h", -1, COORD_RESULT_SKIP, 0, r2, 1, NULL, 0};
    assert_true(wait_for(&a.sink, enough, &skip2, WAIT_MS));
    assert_true(last_of(&a.sink, &skip2, &sk));
    assert_non_null(strstr(sk.text, "executor e0 lost"));
    /* none of shard 1's fires was made twice (the gap ends where the schedule takes over) */
    static int64_t at[4096];
    size_t n = fires_of(&a.sink, "g", 1, at, 4096);
    qsort(at, n, sizeof at[0], cmp_i64);
    for (size_t i = 1; i < n; i++)
        if (at[i] == at[i - 1])
            fail_msg("fire %lld of shard 1 made twice", (long long)at[i]);
    node_stop(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_owned_shards_fire),
        cmocka_unit_test(test_new_shards_keep_schedule_and_runs),
        cmocka_unit_test(test_fire_now_of_shards_not_owned),
        cmocka_unit_test(test_local_fire_ids),
        cmocka_unit_test(test_fence_and_unfence),
        cmocka_unit_test(test_through_splits_fires_exactly),
        cmocka_unit_test(test_from_named_in_gap_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
