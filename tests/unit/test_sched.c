/*
 * test_sched.c - the trigger engine on a real thread and the real clock, shifted by an
 * offset the test controls (to step the wall clock forward and back).
 *
 * Nothing here sleeps and hopes: every wait polls for a condition (records arrived, the
 * engine applied a command or woke after a kick) until a generous deadline, so a slow or
 * loaded machine only makes the tests slower.  Where a test asserts that something does
 * NOT happen, a job firing every second witnesses that the engine handled the seconds in
 * question; only the clock stepped back, where nothing can fire, watches a plain window.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/cron.h"
#include "sched/sched.h"
#include "tzdb/tzdb.h"

#define NS INT64_C(1000000000)

static _Atomic int64_t offset_ns;
static _Atomic int wakes;

static int64_t test_now(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec + atomic_load(&offset_ns);
}

static void test_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static struct sched *start(size_t ring, uint32_t max_jobs)
{
    struct sched_config cfg = {ring, max_jobs, test_wake, NULL, test_now, NULL};
    struct sched *s;
    struct ty_err err;
    atomic_store(&offset_ns, 0);
    atomic_store(&wakes, 0);
    assert_int_equal(sched_new(&cfg, &s, &err), 0);
    assert_int_equal(sched_start(s, &err), 0);
    return s;
}

static struct sched_spec spec_of(const char *expr, enum job_misfire policy, uint32_t thr,
                                 uint32_t catch_up)
{
    struct sched_spec sp;
    memset(&sp, 0, sizeof sp);
    struct ty_err err;
    if (cron_parse(expr, &sp.cron, &err) != 0)
        fail_msg("%s: %s", expr, err.msg);
    assert_int_equal(tzdb_get("UTC", &sp.zone, &err), 0);
    sp.misfire_threshold = thr;
    sp.misfire = policy;
    sp.catch_up_max = catch_up;
    return sp;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_1ms(void)
{
    struct timespec d = {0, 1000000L};
    nanosleep(&d, NULL);
}

/* Whether the records f[0..n) are what the caller waits for (arg: its parameter). */
typedef bool (*enough_fn)(const struct sched_fire *f, size_t n, const void *arg);

static bool at_least(const struct sched_fire *f, size_t n, const void *want)
{
    (void)f;
    return n >= *(const size_t *)want;
}

/* FIRE records of job `job` among f[0..n). */
static size_t fires_of(const struct sched_fire *f, size_t n, uint32_t job)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += f[i].job == job && f[i].kind == SCHED_FIRE;
    return k;
}

struct fires_wanted {
    uint32_t job;
    size_t count;
};

static bool job_fired(const struct sched_fire *f, size_t n, const void *arg)
{
    const struct fires_wanted *w = arg;
    return fires_of(f, n, w->job) >= w->count;
}

static bool has_missed(const struct sched_fire *f, size_t n, const void *arg)
{
    (void)arg;
    for (size_t i = 0; i < n; i++)
        if (f[i].kind == SCHED_MISSED)
            return true;
    return false;
}

/* Take records into out until enough(out, n, arg) holds or timeout_ms passed; returns how
 * many were taken.  A wait for a condition: give a generous deadline, it returns as soon
 * as the condition holds. */
static size_t collect_until(struct sched *s, struct sched_fire *out, size_t max, enough_fn enough,
                            const void *arg, int timeout_ms)
{
    size_t n = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        n += sched_take(s, out + n, max - n);
        if (enough(out, n, arg) || mono_ms() >= deadline)
            return n;
        pause_1ms();
    }
}

/* Take records until `want` arrived (or timeout_ms passed). */
static size_t collect(struct sched *s, struct sched_fire *out, size_t max, size_t want,
                      int timeout_ms)
{
    return collect_until(s, out, max, at_least, &want, timeout_ms);
}

static bool never(const struct sched_fire *f, size_t n, const void *arg)
{
    (void)f;
    (void)n;
    (void)arg;
    return false;
}

/* Take whatever arrives during ms milliseconds.  Only for asserting that nothing (more)
 * arrives, where no condition can say so: callers first wait for the state that makes the
 * window mean something. */
static size_t watch(struct sched *s, struct sched_fire *out, size_t max, int ms)
{
    return collect_until(s, out, max, never, NULL, ms);
}

/* A condition on the engine's state (arg: the caller's parameter). */
typedef bool (*cond_fn)(struct sched *s, int64_t arg);

static bool jobs_are(struct sched *s, int64_t n)
{
    struct sched_stats st;
    sched_get_stats(s, &st);
    return st.jobs == (uint64_t)n;
}

static bool woke_since(struct sched *s, int64_t wakeups)
{
    struct sched_stats st;
    sched_get_stats(s, &st);
    return st.wakeups > (uint64_t)wakeups;
}

static bool dropped_some(struct sched *s, int64_t arg)
{
    (void)arg;
    struct sched_stats st;
    sched_get_stats(s, &st);
    return st.dropped > 0;
}

/* Poll cond every millisecond until it holds (true) or timeout_ms passed (false). */
static bool wait_until(struct sched *s, cond_fn cond, int64_t arg, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!cond(s, arg)) {
        if (mono_ms() >= deadline)
            return false;
        pause_1ms();
    }
    return true;
}

static uint64_t wakeups_of(struct sched *s)
{
    struct sched_stats st;
    sched_get_stats(s, &st);
    return st.wakeups;
}

static int64_t now_s(void)
{
    return test_now(NULL) / NS;
}

static void test_every_second(void **state)
{
    (void)state;
    struct sched *s = start(1024, 16);
    struct sched_spec sp = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    int64_t t0 = now_s();
    assert_int_equal(sched_set(s, 3, &sp, t0, 7), 0);
    struct sched_fire f[16];
    size_t n = collect(s, f, 16, 3, 15000);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i].job, 3);
        assert_int_equal(f[i].kind, SCHED_FIRE);
        assert_int_equal(f[i].flags, 0);
        assert_int_equal(f[i].generation, 7);
        assert_int_equal(f[i].at, t0 + 1 + (int64_t)i); /* every second, none skipped */
        int64_t late_ns = f[i].dispatch_ns - f[i].at * NS;
        assert_true(late_ns >= 0); /* never early */
        assert_true(late_ns < NS); /* and handed over within its second */
    }
    assert_true(atomic_load(&wakes) >= 1);
    assert_true(sched_next_fire(s, 3) > f[n - 1].at);
    assert_int_equal(sched_next_fire(s, 4), 0);
    /* removal stops it: once the engine has applied it (no job left), whatever it handed
     * over before is in the ring; drain that */
    assert_int_equal(sched_remove(s, 3), 0);
    assert_true(wait_until(s, jobs_are, 0, 10000));
    assert_int_equal(sched_next_fire(s, 3), 0);
    struct sched_stats st;
    sched_get_stats(s, &st);
    assert_true(st.fires >= 3);
    while (sched_take(s, f, 16) > 0)
        ;
    /* then a witness firing every second: by its second fire the engine has handled a whole
     * second after the removal, where job 3 would have fired again */
    assert_int_equal(sched_set(s, 4, &sp, now_s(), 7), 0);
    struct fires_wanted two = {4, 2};
    n = collect_until(s, f, 16, job_fired, &two, 15000);
    assert_true(fires_of(f, n, 4) >= 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f[i].job, 4);
    sched_free(s);
}

static void test_misfire_policies(void **state)
{
    (void)state;
    struct sched *s = start(1024, 16);
    /* the engine's clock is set to 20 s past a whole minute: that minute's fire is late
     * beyond the 5 s threshold whatever the test's pace, and the next minute is 40 s away
     * (waiting for such an instant on the real clock could take a minute) */
    int64_t real = now_s();
    atomic_store(&offset_ns, ((20 - real % 60 + 60) % 60) * NS);
    int64_t now = now_s();
    /* each job last fired an hour ago: 60 minutely fires are late, beyond 5 s */
    struct sched_spec skip = spec_of("0 * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    struct sched_spec once = spec_of("0 * * * * ?", JOB_MISFIRE_RUN_ONCE, 5, 1);
    struct sched_spec catchup = spec_of("0 * * * * ?", JOB_MISFIRE_CATCH_UP, 5, 3);
    int64_t after = (now / 60) * 60 - 3600 - 1; /* just before a whole minute, an hour ago */
    assert_int_equal(sched_set(s, 0, &skip, after, 1), 0);
    assert_int_equal(sched_set(s, 1, &once, after, 1), 0);
    assert_int_equal(sched_set(s, 2, &catchup, after, 1), 0);
    struct sched_fire f[64];
    /* seven records: skip's summary, run-once's fire and summary, catch-up's three fires
     * and summary; then whatever else is already there (any more would be a duplicate) */
    size_t n = collect(s, f, 64, 7, 15000);
    n += sched_take(s, f + n, 64 - n);
    int64_t first = after + 1;
    int64_t last_late = ((now - 6) / 60) * 60; /* the last minute older than the threshold */
    uint64_t late_count = (uint64_t)((last_late - first) / 60 + 1);
    int seen_skip = 0, seen_once_fire = 0, seen_once_miss = 0, catch_fires = 0, catch_miss = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind == SCHED_FIRE && f[i].flags == 0) {
            /* an on-time fire: only the minute within the threshold of now may be one */
            assert_true(f[i].at > last_late && f[i].at <= now_s());
            continue;
        }
        if (f[i].job == 0) {
            assert_int_equal(f[i].kind, SCHED_MISSED);
            assert_int_equal(f[i].at, first);
            assert_int_equal(f[i].last, last_late);
            assert_int_equal(f[i].count, late_count);
            seen_skip++;
        } else if (f[i].job == 1 && f[i].kind == SCHED_FIRE) {
            assert_int_equal(f[i].at, last_late); /* the latest late fire runs */
            assert_int_equal(f[i].flags, SCHED_F_LATE);
            seen_once_fire++;
        } else if (f[i].job == 1) {
            assert_int_equal(f[i].kind, SCHED_MISSED);
            assert_int_equal(f[i].count, late_count - 1);
            assert_int_equal(f[i].last, last_late - 60);
            seen_once_miss++;
        } else if (f[i].job == 2 && f[i].kind == SCHED_FIRE) {
            assert_int_equal(f[i].at, first + (int64_t)60 * catch_fires); /* oldest first */
            assert_int_equal(f[i].flags, SCHED_F_LATE);
            catch_fires++;
        } else {
            assert_int_equal(f[i].kind, SCHED_MISSED);
            assert_int_equal(f[i].at, first + 180);
            assert_int_equal(f[i].count, late_count - 3);
            catch_miss++;
        }
    }
    assert_int_equal(seen_skip, 1);
    assert_int_equal(seen_once_fire, 1);
    assert_int_equal(seen_once_miss, 1);
    assert_int_equal(catch_fires, 3);
    assert_int_equal(catch_miss, 1);
    /* afterwards each runs on schedule: the next fire is the next whole minute */
    for (uint32_t j = 0; j < 3; j++)
        assert_int_equal(sched_next_fire(s, j) % 60, 0);
    sched_free(s);
}

static void test_misfire_too_many_to_count(void **state)
{
    (void)state;
    /* an every-second job last fired 13 days ago: over a million late fires */
    struct sched *s = start(1024, 4);
    struct sched_spec once = spec_of("* * * * * ?", JOB_MISFIRE_RUN_ONCE, 5, 1);
    int64_t now = now_s();
    assert_int_equal(sched_set(s, 0, &once, now - INT64_C(13) * 86400, 1), 0);
    /* The summary of the missed fires may come after on-time fires of the same tick when
     * counting them was slow (a loaded machine, ThreadSanitizer): wait for the summary. */
    struct sched_fire f[64];
    size_t n = collect_until(s, f, 64, has_missed, NULL, 30000);
    int missed = 0, late = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind == SCHED_MISSED) {
            missed++;
            assert_true(f[i].flags & SCHED_F_AT_LEAST);
            assert_true(f[i].count >= 999999); /* a lower bound: every one but the run */
            assert_int_equal(f[i].at, now - INT64_C(13) * 86400 + 1);
        } else if (f[i].flags & SCHED_F_LATE) {
            late++;
            assert_true(f[i].at >= now - 7 && f[i].at <= now_s() - 6); /* the latest late one */
        }
    }
    assert_int_equal(missed, 1);
    assert_int_equal(late, 1);
    sched_free(s);
}

static void test_clock_steps(void **state)
{
    (void)state;
    struct sched *s = start(1 << 16, 4);
    struct sched_spec sp = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    assert_int_equal(sched_set(s, 0, &sp, now_s(), 1), 0);
    struct sched_fire f[4096];
    size_t n = collect(s, f, 4096, 1, 10000);
    assert_true(n >= 1);
    int64_t last = f[n - 1].at;

    /* forward one hour: the hour's fires are late (one MISSED record, which comes after the
     * fires of the last seconds, on time within the threshold), then on time again */
    atomic_store(&offset_ns, 3600 * NS);
    sched_kick(s);
    n = collect_until(s, f, 4096, has_missed, NULL, 15000);
    int missed = 0;
    int64_t max_at = last;
    for (size_t i = 0; i < n; i++) {
        if (f[i].kind == SCHED_MISSED) {
            missed++;
            assert_true(f[i].count >= 3590 && f[i].count <= 3605);
            assert_true(f[i].at > last);
        } else {
            assert_int_equal(f[i].kind, SCHED_FIRE);
            assert_true(f[i].at > max_at); /* strictly increasing, never repeated */
            max_at = f[i].at;
        }
    }
    assert_int_equal(missed, 1);
    assert_true(max_at > last);

    /* back two hours: nothing fires twice; firing resumes when the clock catches up, so
     * nothing made after the step arrives.  A fire handed over just before the step may
     * still arrive: it must be a new second, and not one after the step's instant. */
    int64_t step_at = test_now(NULL) / NS;
    atomic_store(&offset_ns, -3600 * NS);
    uint64_t woke = wakeups_of(s);
    sched_kick(s);
    assert_true(wait_until(s, woke_since, (int64_t)woke, 10000)); /* it read the new clock */
    /* kept as a window: the point is that nothing fires, so no fire can witness the
     * seconds passing; 2.5 s spans two of them, which the engine would have fired */
    n = watch(s, f, 4096, 2500);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i].kind, SCHED_FIRE);
        assert_true(f[i].at > max_at && f[i].at <= step_at);
        max_at = f[i].at;
    }
    sched_free(s);
}

static void test_dates_and_never(void **state)
{
    (void)state;
    struct sched *s = start(1024, 8);
    int64_t now = now_s();
    struct sched_spec sp = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    sp.start_at = now + 3600; /* not before an hour from now */
    assert_int_equal(sched_set(s, 0, &sp, now, 1), 0);
    struct sched_spec never = spec_of("0 0 0 1 1 ? 2020", JOB_MISFIRE_SKIP, 5, 1);
    assert_int_equal(sched_set(s, 1, &never, now, 1), 0);
    struct sched_spec ended = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    ended.end_at = now - 10;
    assert_int_equal(sched_set(s, 2, &ended, now, 1), 0);
    /* a witness firing every second, set last: commands apply in order, so by its second
     * fire the three were applied and a whole second handled in which they did not fire */
    struct sched_spec every = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    assert_int_equal(sched_set(s, 3, &every, now, 1), 0);
    struct sched_fire f[8];
    struct fires_wanted two = {3, 2};
    size_t n = collect_until(s, f, 8, job_fired, &two, 15000);
    assert_true(fires_of(f, n, 3) >= 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f[i].job, 3);
    assert_int_equal(sched_next_fire(s, 0), now + 3600);
    assert_int_equal(sched_next_fire(s, 1), 0);
    assert_int_equal(sched_next_fire(s, 2), 0);
    assert_int_equal(sched_set(s, 8, &sp, now, 1), TY_EINVAL); /* beyond max_jobs */
    sched_free(s);
}

static void test_ring_full_is_counted(void **state)
{
    (void)state;
    /* a 64-record ring and 500 jobs every second: what does not fit is reported, never lost */
    struct sched *s = start(64, 1024);
    struct sched_spec sp = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    int64_t t0 = now_s() + 1;
    for (uint32_t j = 0; j < 500; j++)
        assert_int_equal(sched_set(s, j, &sp, t0, 1), 0);
    /* without draining: the first second's 500 fires find 64 places */
    assert_true(wait_until(s, dropped_some, 0, 15000));
    /* drain while the jobs go on firing, until the dropped fires were reported and a later
     * second's fires came through too */
    struct sched_fire f[64];
    uint64_t fired = 0, dropped = 0;
    int64_t first_at = 0, last_at = 0;
    int64_t deadline = mono_ms() + 15000;
    while ((dropped == 0 || last_at == first_at) && mono_ms() < deadline) {
        size_t n = sched_take(s, f, 64);
        for (size_t i = 0; i < n; i++) {
            if (f[i].kind == SCHED_FIRE) {
                fired++;
                first_at = first_at ? first_at : f[i].at;
                last_at = f[i].at;
            } else if (f[i].kind == SCHED_DROPPED) {
                dropped += f[i].count;
            }
        }
        if (n == 0)
            pause_1ms();
    }
    assert_true(dropped > 0);
    assert_true(last_at > first_at);
    /* stop the firing; once the engine has applied that, every fire it made was handed over
     * or is counted dropped on its job, reported as room returns: the books balance exactly */
    for (uint32_t j = 0; j < 500; j++)
        assert_int_equal(sched_remove(s, j), 0);
    assert_true(wait_until(s, jobs_are, 0, 15000));
    struct sched_stats st;
    deadline = mono_ms() + 15000;
    for (;;) {
        size_t n = sched_take(s, f, 64);
        for (size_t i = 0; i < n; i++) {
            if (f[i].kind == SCHED_FIRE)
                fired++;
            else if (f[i].kind == SCHED_DROPPED)
                dropped += f[i].count;
        }
        sched_get_stats(s, &st);
        if (fired + dropped == st.fires + st.dropped || mono_ms() >= deadline)
            break;
        if (n == 0)
            pause_1ms();
    }
    assert_true(st.dropped > 0);
    assert_int_equal(fired + dropped, st.fires + st.dropped);
    sched_free(s);
}

static void test_many_jobs_same_second(void **state)
{
    (void)state;
    struct sched *s = start(1 << 15, 20000);
    struct sched_spec sp = spec_of("* * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    int64_t t0 = now_s() + 1;
    for (uint32_t j = 0; j < 10000; j++)
        assert_int_equal(sched_set(s, j, &sp, t0, 1), 0);
    static struct sched_fire f[1 << 15];
    size_t n = collect(s, f, 1 << 15, 10000, 30000);
    assert_true(n >= 10000);
    int64_t at = f[0].at;
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].at == at)
            same++;
    assert_int_equal(same, 10000); /* one fire per job for that second, none twice */
    sched_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_second),
        cmocka_unit_test(test_misfire_policies),
        cmocka_unit_test(test_misfire_too_many_to_count),
        cmocka_unit_test(test_clock_steps),
        cmocka_unit_test(test_dates_and_never),
        cmocka_unit_test(test_ring_full_is_counted),
        cmocka_unit_test(test_many_jobs_same_second),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tzdb_shutdown();
    return rc;
}
