/*
 * bench_sched.c - the trigger engine (src/sched) driven by a consumer that does no work.
 *
 *   bench_sched load N        load N enabled jobs (a daily schedule each): load time and
 *                             memory per job (RSS after - RSS before, / N)
 *   bench_sched idle N SECS   with N jobs that do not fire, the process's CPU use
 *   bench_sched fire N SECS   N jobs firing every second for SECS seconds: lateness at
 *                             dispatch (the instant the engine hands a fire over, minus
 *                             its scheduled second) p50/p99/max, and fires missed
 *
 * Output is key=value lines (tethys.*), read by run.sh.  Lateness is measured exactly as
 * PERF-ANCHORS.md asks, at the same point Quartz's no-op job measures it.  The consumer
 * thread only counts and stores lateness, standing in for the executor.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/cron.h"
#include "sched/sched.h"
#include "tzdb/tzdb.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (fp)
        fclose(fp);
    return kb;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- the consumer ---------------------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool woken, stop;
static struct sched *S;
static int64_t *lateness_ns;
static size_t n_lateness, cap_lateness;
static _Atomic uint64_t fires, missed, dropped;
static int64_t first_at, last_at; /* the window of seconds counted */

static void wake(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    woken = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void *consumer(void *arg)
{
    (void)arg;
    static struct sched_fire batch[4096];
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!woken && !stop)
            pthread_cond_wait(&cv, &mu);
        woken = false;
        bool done = stop;
        pthread_mutex_unlock(&mu);
        size_t n;
        while ((n = sched_take(S, batch, 4096)) > 0) {
            for (size_t i = 0; i < n; i++) {
                const struct sched_fire *f = &batch[i];
                if (f->kind == SCHED_MISSED) {
                    missed += f->count;
                    continue;
                }
                if (f->kind == SCHED_DROPPED) {
                    dropped += f->count;
                    continue;
                }
                if (f->at < first_at || f->at > last_at)
                    continue;
                fires++;
                if (n_lateness < cap_lateness)
                    lateness_ns[n_lateness++] = f->dispatch_ns - f->at * 1000000000;
            }
        }
        if (done)
            return NULL;
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static struct sched *make(uint32_t jobs)
{
    struct sched_config cfg = {1u << 20, jobs + 1, wake, NULL, NULL, NULL};
    struct sched *s;
    struct ty_err err;
    if (sched_new(&cfg, &s, &err) != 0 || sched_start(s, &err) != 0) {
        fprintf(stderr, "bench_sched: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static void load(struct sched *s, uint32_t n, const char *expr, int64_t after)
{
    struct sched_spec sp;
    memset(&sp, 0, sizeof sp);
    struct ty_err err;
    if (cron_parse(expr, &sp.cron, &err) != 0 || tzdb_get("UTC", &sp.zone, &err) != 0) {
        fprintf(stderr, "bench_sched: %s\n", err.msg);
        exit(1);
    }
    sp.misfire_threshold = 5;
    sp.misfire = JOB_MISFIRE_SKIP;
    for (uint32_t j = 0; j < n; j++)
        sched_set(s, j, &sp, after, 1);
    /* wait until the engine has filed them all */
    struct sched_stats st;
    do {
        usleep(1000);
        sched_get_stats(s, &st);
    } while (st.jobs < n);
}

static int cmd_load(uint32_t n)
{
    /* the zone table and libc arenas are warmed before measuring */
    const struct tz_zone *z;
    tzdb_get("UTC", &z, NULL);
    long before = rss_kb();
    int64_t t0 = mono_ns();
    S = make(n);
    load(S, n, "0 0 3 * * ?", real_ns() / 1000000000);
    int64_t t1 = mono_ns();
    long after = rss_kb();
    printf("tethys.load.jobs=%u\n", n);
    printf("tethys.load.seconds=%.3f\n", (double)(t1 - t0) / 1e9);
    printf("tethys.load.rss_delta_kb=%ld\n", after - before);
    printf("tethys.load.bytes_per_job=%.0f\n", (double)(after - before) * 1024.0 / n);
    sched_free(S);
    return 0;
}

static int cmd_idle(uint32_t n, int secs)
{
    S = make(n);
    /* daily at 03:00: nothing fires during the measurement (unless it is 03:00) */
    load(S, n, "0 0 3 * * ?", real_ns() / 1000000000);
    sleep(1);
    struct sched_stats a, b;
    sched_get_stats(S, &a);
    double c0 = cpu_s();
    int64_t t0 = mono_ns();
    sleep((unsigned)secs);
    double c1 = cpu_s();
    int64_t t1 = mono_ns();
    sched_get_stats(S, &b);
    printf("tethys.idle.jobs=%u\n", n);
    printf("tethys.idle.seconds=%d\n", secs);
    printf("tethys.idle.cpu_pct=%.3f\n", 100.0 * (c1 - c0) / ((double)(t1 - t0) / 1e9));
    printf("tethys.idle.wakeups=%llu\n", (unsigned long long)(b.wakeups - a.wakeups));
    sched_free(S);
    return 0;
}

static int cmd_fire(uint32_t n, int secs)
{
    cap_lateness = (size_t)n * ((size_t)secs + 2);
    lateness_ns = malloc(cap_lateness * sizeof *lateness_ns);
    S = make(n);
    pthread_t th;
    pthread_create(&th, NULL, consumer, NULL);
    int64_t now = real_ns() / 1000000000;
    /* count whole seconds from two seconds after loading, for `secs` seconds */
    first_at = now + 3;
    last_at = first_at + secs - 1;
    double c0 = cpu_s();
    load(S, n, "* * * * * ?", now);
    while (real_ns() / 1000000000 <= last_at + 1)
        usleep(100000);
    double c1 = cpu_s();
    pthread_mutex_lock(&mu);
    stop = true;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    struct sched_stats st;
    sched_get_stats(S, &st);
    sched_free(S);

    uint64_t expected = (uint64_t)n * (uint64_t)secs;
    qsort(lateness_ns, n_lateness, sizeof *lateness_ns, cmp64);
    size_t i50 = n_lateness / 2, i99 = n_lateness * 99 / 100;
    double p50 = n_lateness ? (double)lateness_ns[i50] / 1e6 : -1;
    double p99 = n_lateness ? (double)lateness_ns[i99] / 1e6 : -1;
    double mx = n_lateness ? (double)lateness_ns[n_lateness - 1] / 1e6 : -1;
    printf("tethys.fire.jobs=%u\n", n);
    printf("tethys.fire.seconds=%d\n", secs);
    printf("tethys.fire.expected=%llu\n", (unsigned long long)expected);
    printf("tethys.fire.delivered=%llu\n", (unsigned long long)fires);
    printf("tethys.fire.delivered_pct=%.2f\n", 100.0 * (double)fires / (double)expected);
    uint64_t lost = atomic_load(&missed) + atomic_load(&dropped);
    printf("tethys.fire.missed=%llu\n", (unsigned long long)lost);
    printf("tethys.fire.lateness_p50_ms=%.3f\n", p50);
    printf("tethys.fire.lateness_p99_ms=%.3f\n", p99);
    printf("tethys.fire.lateness_max_ms=%.3f\n", mx);
    printf("tethys.fire.cpu_pct=%.1f\n", 100.0 * (c1 - c0) / (secs + 3));
    free(lateness_ns);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "load") == 0)
        return cmd_load((uint32_t)strtoul(argv[2], NULL, 10));
    if (argc >= 4 && strcmp(argv[1], "idle") == 0)
        return cmd_idle((uint32_t)strtoul(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10));
    if (argc >= 4 && strcmp(argv[1], "fire") == 0)
        return cmd_fire((uint32_t)strtoul(argv[2], NULL, 10), (int)strtol(argv[3], NULL, 10));
    fprintf(stderr, "usage: bench_sched load N | idle N SECS | fire N SECS\n");
    return 2;
}
