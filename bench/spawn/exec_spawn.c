/*
 * exec_spawn.c - shell-run throughput through exec_start, on a libuv loop.
 *
 * The workload of raw_spawn.c (`/bin/sh -c /bin/true`, P in flight, N runs or T seconds),
 * but each run is a real Tethys run: its own process group, signals reset, stdin from
 * /dev/null, output in a fresh file (O_EXCL) in a temporary directory with a 64 KiB cap,
 * exit seen through a pidfd.  The files are kept until the timing ends, as a server keeps
 * them until its retention removes them.  Prints `exec.runs_per_s=<x>`.  Compare with
 * raw_spawn in the same invocation (bench/spawn/run.sh); the target is >= 80% of raw.
 *
 *   exec_spawn -p 8 -n 5000 [-d DIR]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

struct bench {
    uv_loop_t *loop;
    const char *dir;
    long par, runs, started, done, failed, in_flight;
    double deadline;
};

struct slot {
    struct bench *b;
    char path[256];
};

/* CPU seconds this process (not its children) has used. */
static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_one(struct slot *s);

static void on_done(struct exec_run *r, const struct exec_result *res, void *arg)
{
    (void)r;
    struct slot *s = arg;
    struct bench *b = s->b;
    if (res->exit_code != 0)
        b->failed++;
    b->done++;
    b->in_flight--;
    if (b->started < b->runs && (b->deadline == 0 || now_s() < b->deadline))
        start_one(s);
}

static void start_one(struct slot *s)
{
    static const char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    struct bench *b = s->b;
    snprintf(s->path, sizeof s->path, "%s/run-%ld.out", b->dir, b->started);
    struct exec_spec spec = {.command = "/bin/true",
                             .envp = env,
                             .output_path = s->path,
                             .output_cap = (size_t)64 * 1024};
    struct exec_run *r;
    struct ty_err err;
    if (exec_start(b->loop, &spec, on_done, s, &r, &err) != 0) {
        fprintf(stderr, "exec_spawn: %s\n", err.msg);
        exit(1);
    }
    b->started++;
    b->in_flight++;
}

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr, "usage: exec_spawn [-p PARALLEL] [-n RUNS] [-t SECONDS] [-d DIR]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct bench b = {.par = 2, .runs = 2000};
    double secs = 0;
    const char *dir = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:t:d:")) != -1) {
        char *end = "";
        switch (opt) {
        case 'p': b.par = strtol(optarg, &end, 10); break;
        case 'n': b.runs = strtol(optarg, &end, 10); break;
        case 't': secs = strtod(optarg, &end); break;
        case 'd': dir = optarg; break;
        default: usage();
        }
        if (*end != '\0')
            usage();
    }
    if (b.par < 1 || b.runs < 1 || secs < 0)
        usage();
    char tmp[] = "/tmp/tethys-spawn-XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmp)) == NULL) {
        perror("exec_spawn: mkdtemp");
        return 1;
    }
    b.dir = dir;

    uv_loop_t loop;
    uv_loop_init(&loop);
    b.loop = &loop;
    struct slot *slots = calloc((size_t)b.par, sizeof *slots);
    if (slots == NULL)
        return 1;
    double c0 = self_cpu_s();
    double t0 = now_s();
    b.deadline = secs > 0 ? t0 + secs : 0;
    for (long i = 0; i < b.par && b.started < b.runs; i++) {
        slots[i].b = &b;
        start_one(&slots[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double el = now_s() - t0;
    double cpu = self_cpu_s() - c0;
    uv_loop_close(&loop);
    free(slots);
    /* the files are removed after the timing, as a server keeps them until retention */
    for (long i = 0; i < b.started; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/run-%ld.out", dir, i);
        unlink(path);
    }
    if (dir == tmp)
        rmdir(tmp);
    if (b.failed > 0) {
        fprintf(stderr, "exec_spawn: %ld runs failed\n", b.failed);
        return 1;
    }
    printf("exec.runs=%ld exec.parallel=%ld exec.seconds=%.3f exec.parent_cpu_us_per_run=%.1f\n",
           b.done, b.par, el, cpu * 1e6 / (double)b.done);
    printf("exec.runs_per_s=%.1f\n", (double)b.done / el);
    return 0;
}
