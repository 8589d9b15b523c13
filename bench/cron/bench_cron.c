/*
 * bench_cron.c - how fast Tethys's cron engine parses and answers next(), and how much a
 * compiled expression weighs; the Quartz 2.3.2 side of the comparison is
 * QuartzCronBench.java, and run.sh runs both and prints them side by side.
 *
 * The workload is fixed and shared with the Java side: ten expressions (the MIX below,
 * the usual Quartz examples plus L, #, W and year fields), each in four zones (UTC,
 * Asia/Shanghai, Europe/Berlin, America/New_York), asked for the next fire time after
 * 1,000 instants spread evenly over 2026-2030 with a fixed jitter (instant_at()).
 *
 * What is measured, and how:
 *   parse  cron_parse() of each expression, timed in batches of PARSE_BATCH calls (the
 *          clock is read once per batch), PARSE_SAMPLES batches per expression after a
 *          warm-up; the figure is the median per-call time over all batches.
 *   next   cron_next() for every expression x zone x instant (40,000 calls a round).  Each
 *          call is timed as a batch of NEXT_BATCH identical back-to-back calls divided by
 *          NEXT_BATCH, so the cost of reading the clock (about 20 ns, printed) is spread
 *          thin while every call still gets its own sample; one untimed warm-up round,
 *          then NEXT_ROUNDS timed rounds; median and p99 over all samples.
 *   bytes  sizeof(struct cron_expr): a compiled expression is a plain value with no
 *          pointers and no heap (cron.h), so this is its whole cost.  Zone tables are
 *          shared by every expression in the zone and not counted per expression.
 * Results are folded into a checksum that is printed, so no call can be optimised away
 * (and the calls cross into another translation unit anyway).
 *
 * Output: human-readable lines, then key=value lines (tethys.parse_ns=...) for run.sh.
 * With --next-out FILE, the answers (expression, zone, instant, next or -1) are written
 * as TSV so run.sh can check that both engines agree.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cron.h"
#include "tzdb/tzdb.h"

static const char *const MIX[] = {
    "0/5 * * * * ?",    "0 0 12 * * ?",           "0 15 10 ? * MON-FRI", "0 0/30 8-18 ? * MON-FRI",
    "0 0 2 L * ?",      "0 0 9 ? * 6#3",          "0 10,44 14 ? 3 WED",  "0 0 0 1W * ?",
    "0 0 0 1 1 ? 2099", "15 4 * * * ? 2030-2040",
};
#define N_EXPR (sizeof MIX / sizeof MIX[0])

static const char *const ZONES[] = {"UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"};
#define N_ZONE (sizeof ZONES / sizeof ZONES[0])

#define N_INSTANT 1000
#define T_BEGIN   INT64_C(1767225600) /* 2026-01-01T00:00:00Z */
#define T_END     INT64_C(1924992000) /* 2031-01-01T00:00:00Z */

#define PARSE_BATCH   100
#define PARSE_SAMPLES 200
#define PARSE_WARMUP  20000
#define NEXT_BATCH    8
#define NEXT_ROUNDS   5

/* The i-th instant: evenly spaced over 2026-2030, plus a fixed jitter of up to a day.
 * QuartzCronBench.java computes exactly the same numbers. */
static int64_t instant_at(int i)
{
    int64_t step = (T_END - T_BEGIN) / N_INSTANT;
    return T_BEGIN + (int64_t)i * step + ((int64_t)i * 104729) % 86400;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted samples, nearest rank. */
static double quantile(const double *sorted, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n);
    if (k >= n) {
        k = n - 1;
    }
    return sorted[k];
}

static double *xmalloc_doubles(size_t n)
{
    double *p = malloc(n * sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "bench_cron: out of memory\n");
        exit(1);
    }
    return p;
}

/* Cost of one clock read, to say how much of a sample is the clock itself. */
static double timer_overhead_ns(void)
{
    enum { N = 100000 };
    uint64_t t0 = now_ns(), last = t0;
    for (int i = 0; i < N; i++) {
        last = now_ns();
    }
    return (double)(last - t0) / N;
}

int main(int argc, char **argv)
{
    const char *next_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--next-out") == 0 && i + 1 < argc) {
            next_out = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_cron [--next-out FILE]\n");
            return 2;
        }
    }

    struct cron_expr exprs[N_EXPR];
    const struct tz_zone *zones[N_ZONE];
    struct ty_err err;
    uint64_t sink = 0;

    for (size_t e = 0; e < N_EXPR; e++) {
        if (cron_parse(MIX[e], &exprs[e], &err) != 0) {
            fprintf(stderr, "bench_cron: cannot parse %s: %s\n", MIX[e], err.msg);
            return 1;
        }
    }
    for (size_t z = 0; z < N_ZONE; z++) {
        if (tzdb_get(ZONES[z], &zones[z], &err) != 0) {
            fprintf(stderr, "bench_cron: zone %s: %s\n", ZONES[z], err.msg);
            return 1;
        }
    }
    int64_t instants[N_INSTANT];
    for (int i = 0; i < N_INSTANT; i++) {
        instants[i] = instant_at(i);
    }

    printf(
        "bench_cron: Tethys cron engine; %zu expressions x %zu zones x %d instants (2026-2030)\n",
        N_EXPR, N_ZONE, N_INSTANT);
    printf("  clock: CLOCK_MONOTONIC, %.1f ns per read\n", timer_overhead_ns());

    /* parse */
    double *parse_all = xmalloc_doubles(N_EXPR * PARSE_SAMPLES);
    double parse_med[N_EXPR];
    for (size_t e = 0; e < N_EXPR; e++) {
        struct cron_expr tmp;
        for (int i = 0; i < PARSE_WARMUP; i++) {
            sink += (uint64_t)cron_parse(MIX[e], &tmp, NULL) + tmp.sec;
        }
        double *s = parse_all + e * PARSE_SAMPLES;
        for (int k = 0; k < PARSE_SAMPLES; k++) {
            uint64_t t0 = now_ns();
            for (int i = 0; i < PARSE_BATCH; i++) {
                sink += (uint64_t)cron_parse(MIX[e], &tmp, NULL) + tmp.min;
            }
            s[k] = (double)(now_ns() - t0) / PARSE_BATCH;
        }
        double sorted[PARSE_SAMPLES];
        memcpy(sorted, s, sizeof sorted);
        qsort(sorted, PARSE_SAMPLES, sizeof sorted[0], cmp_double);
        parse_med[e] = quantile(sorted, PARSE_SAMPLES, 0.5);
    }
    qsort(parse_all, N_EXPR * PARSE_SAMPLES, sizeof parse_all[0], cmp_double);
    double parse_ns = quantile(parse_all, N_EXPR * PARSE_SAMPLES, 0.5);

    /* next: one untimed warm-up round, then NEXT_ROUNDS timed rounds */
    size_t per_round = N_EXPR * N_ZONE * N_INSTANT;
    double *next_all = xmalloc_doubles(per_round * NEXT_ROUNDS);
    double *next_expr = xmalloc_doubles(N_ZONE * N_INSTANT * NEXT_ROUNDS);
    double next_med_expr[N_EXPR];
    size_t n_all = 0;
    int64_t out = 0;
    for (size_t e = 0; e < N_EXPR; e++) {
        for (size_t z = 0; z < N_ZONE; z++) {
            for (int i = 0; i < N_INSTANT; i++) {
                sink += (uint64_t)cron_next(&exprs[e], zones[z], instants[i], &out) + (uint64_t)out;
            }
        }
    }
    for (size_t e = 0; e < N_EXPR; e++) {
        size_t n_expr = 0;
        for (int r = 0; r < NEXT_ROUNDS; r++) {
            for (size_t z = 0; z < N_ZONE; z++) {
                for (int i = 0; i < N_INSTANT; i++) {
                    uint64_t t0 = now_ns();
                    for (int b = 0; b < NEXT_BATCH; b++) {
                        sink += (uint64_t)cron_next(&exprs[e], zones[z], instants[i], &out);
                    }
                    double ns = (double)(now_ns() - t0) / NEXT_BATCH;
                    sink += (uint64_t)out;
                    next_all[n_all++] = ns;
                    next_expr[n_expr++] = ns;
                }
            }
        }
        qsort(next_expr, n_expr, sizeof next_expr[0], cmp_double);
        next_med_expr[e] = quantile(next_expr, n_expr, 0.5);
    }
    qsort(next_all, n_all, sizeof next_all[0], cmp_double);
    double next_med = quantile(next_all, n_all, 0.5);
    double next_p99 = quantile(next_all, n_all, 0.99);

    /* answers, for run.sh's agreement check */
    if (next_out != NULL) {
        FILE *f = fopen(next_out, "w");
        if (f == NULL) {
            perror(next_out);
            return 1;
        }
        for (size_t e = 0; e < N_EXPR; e++) {
            for (size_t z = 0; z < N_ZONE; z++) {
                for (int i = 0; i < N_INSTANT; i++) {
                    int64_t t = -1;
                    if (cron_next(&exprs[e], zones[z], instants[i], &out) == 0) {
                        t = out;
                    }
                    fprintf(f, "%zu\t%s\t%" PRId64 "\t%" PRId64 "\n", e, ZONES[z], instants[i], t);
                }
            }
        }
        if (fclose(f) != 0) {
            perror(next_out);
            return 1;
        }
    }

    printf("  %-28s %10s %10s %8s\n", "expression", "parse ns", "next ns", "bytes");
    for (size_t e = 0; e < N_EXPR; e++) {
        printf("  %-28s %10.0f %10.0f %8zu\n", MIX[e], parse_med[e], next_med_expr[e],
               sizeof(struct cron_expr));
    }
    printf("  next(): %zu samples (%zu calls x %d rounds), each the mean of %d identical calls\n",
           n_all, per_round, NEXT_ROUNDS, NEXT_BATCH);
    printf("tethys.parse_ns=%.1f\n", parse_ns);
    printf("tethys.next_ns_median=%.1f\n", next_med);
    printf("tethys.next_ns_p99=%.1f\n", next_p99);
    printf("tethys.bytes_per_expr=%zu\n", sizeof(struct cron_expr));
    printf("tethys.checksum=%" PRIu64 "\n", sink);

    free(parse_all);
    free(next_all);
    free(next_expr);
    tzdb_shutdown();
    return 0;
}
