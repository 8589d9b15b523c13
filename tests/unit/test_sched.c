/*
 * test_sched.c - the trigger engine on a real thread and the real clock, shifted by an
 * offset the test controls (to step the wall clock forward and back).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/* Collect records for up to `ms` milliseconds or until `want` records arrived. */
static size_t collect(struct sched *s, struct sched_fire *out, size_t max, size_t want, int ms)
{
    size_t n = 0;
    for (int waited = 0; waited < ms && n < want; waited += 5) {
        n += sched_take(s, out + n, max - n);
        if (n >= want)
            break;
        struct timespec d = {0, 5L * 1000000};
        nanosleep(&d, NULL);
    }
    return n;
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
    size_t n = collect(s, f, 16, 3, 4000);
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
    /* removal stops it */
    assert_int_equal(sched_remove(s, 3), 0);
    struct timespec d = {0, 100L * 1000000};
    nanosleep(&d, NULL);
    sched_take(s, f, 16);
    n = collect(s, f, 16, 1, 1500);
    assert_int_equal(n, 0);
    assert_int_equal(sched_next_fire(s, 3), 0);
    struct sched_stats st;
    sched_get_stats(s, &st);
    assert_int_equal(st.jobs, 0);
    assert_true(st.fires >= 3);
    sched_free(s);
}

static void test_misfire_policies(void **state)
{
    (void)state;
    struct sched *s = start(1024, 16);
    int64_t now = now_s();
    if (now % 60 >= 50) { /* keep the minute from turning over during the test */
        struct timespec d = {61 - now % 60, 0};
        nanosleep(&d, NULL);
        now = now_s();
    }
    /* each job last fired an hour ago: 60 minutely fires are late, beyond 5 s */
    struct sched_spec skip = spec_of("0 * * * * ?", JOB_MISFIRE_SKIP, 5, 1);
    struct sched_spec once = spec_of("0 * * * * ?", JOB_MISFIRE_RUN_ONCE, 5, 1);
    struct sched_spec catchup = spec_of("0 * * * * ?", JOB_MISFIRE_CATCH_UP, 5, 3);
    int64_t after = (now / 60) * 60 - 3600 - 1; /* just before a whole minute, an hour ago */
    assert_int_equal(sched_set(s, 0, &skip, after, 1), 0);
    assert_int_equal(sched_set(s, 1, &once, after, 1), 0);
    assert_int_equal(sched_set(s, 2, &catchup, after, 1), 0);
    struct sched_fire f[64];
    size_t n = collect(s, f, 64, 6, 2000);
    n += collect(s, f + n, 64 - n, 64, 300); /* and any on-time fire right behind them */
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
    struct sched_fire f[64];
    size_t n = collect(s, f, 64, 2, 10000);
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
    size_t n = collect(s, f, 4096, 1, 3000);
    assert_true(n >= 1);
    int64_t last = f[n - 1].at;

    /* forward one hour: the hour's fires are late (one MISSED record), then on time again */
    atomic_store(&offset_ns, 3600 * NS);
    sched_kick(s);
    n = collect(s, f, 4096, 3, 4000);
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

    /* back two hours: nothing fires twice; firing resumes when the clock catches up, so
     * within a few seconds nothing at all arrives */
    atomic_store(&offset_ns, -3600 * NS);
    sched_kick(s);
    sched_take(s, f, 4096);
    n = collect(s, f, 4096, 1, 2500);
    for (size_t i = 0; i < n; i++)
        assert_true(f[i].at > max_at);
    assert_int_equal(n, 0);
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
    struct sched_fire f[8];
    size_t n = collect(s, f, 8, 1, 1500);
    assert_int_equal(n, 0);
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
    /* wait without draining for two fires, then drain slowly */
    struct timespec d = {2, 500L * 1000000};
    nanosleep(&d, NULL);
    struct sched_fire f[64];
    uint64_t fired = 0, dropped = 0;
    int64_t deadline = test_now(NULL) + 3 * NS;
    while (test_now(NULL) < deadline) {
        size_t n = sched_take(s, f, 64);
        for (size_t i = 0; i < n; i++) {
            if (f[i].kind == SCHED_FIRE)
                fired++;
            else if (f[i].kind == SCHED_DROPPED)
                dropped += f[i].count;
        }
    }
    struct sched_stats st;
    sched_get_stats(s, &st);
    assert_true(st.dropped > 0);
    assert_true(dropped > 0);
    sched_free(s);
    /* every fire made was either handed over or reported dropped (the last ones may be in
     * flight at the end, so the books balance to within one second's worth) */
    assert_true(fired + dropped <= st.fires + st.dropped);
    assert_true(fired + dropped + 500 >= st.fires + st.dropped);
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
    size_t n = collect(s, f, 1 << 15, 10000, 4000);
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
