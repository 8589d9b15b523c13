/*
 * raw_spawn.c - the peer for shell-run throughput: a plain posix_spawn + waitpid loop.
 *
 * Runs `/bin/sh -c /bin/true` with P children in flight (a reaped child is replaced at
 * once; reaping is waitpid(-1)), for N runs or T seconds, whichever ends first, and prints
 * one line: `raw.runs_per_s=<x>`.  Nothing else: no process group, no output file, no
 * signal reset, no event loop.  This is what a dedicated spawner costs on this machine;
 * exec_spawn.c does the same workload through exec_start, and the target is
 * exec >= 80% of raw, both measured in the same invocation (bench/spawn/run.sh).
 *
 *   raw_spawn -p 8 -n 5000      # P=8, 5000 runs
 *   raw_spawn -p 2 -t 5         # P=2, 5 seconds
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr, "usage: raw_spawn [-p PARALLEL] [-n RUNS] [-t SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long par = 2, runs = 2000;
    double secs = 0;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:t:")) != -1) {
        char *end = "";
        switch (opt) {
        case 'p': par = strtol(optarg, &end, 10); break;
        case 'n': runs = strtol(optarg, &end, 10); break;
        case 't': secs = strtod(optarg, &end); break;
        default: usage();
        }
        if (*end != '\0')
            usage();
    }
    if (par < 1 || runs < 1 || secs < 0)
        usage();

    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    char *const args[] = {"sh", "-c", "/bin/true", NULL};
    long started = 0, done = 0, in_flight = 0;
    double c0 = self_cpu_s();
    double t0 = now_s(), deadline = secs > 0 ? t0 + secs : 0;
    for (;;) {
        while (in_flight < par && started < runs && (deadline == 0 || now_s() < deadline)) {
            pid_t pid;
            int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, args, env);
            if (rc != 0) {
                fprintf(stderr, "raw_spawn: posix_spawn: %s\n", strerror(rc));
                return 1;
            }
            started++;
            in_flight++;
        }
        if (in_flight == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "raw_spawn: waitpid: %s\n", strerror(errno));
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "raw_spawn: a run failed (status %d)\n", status);
            return 1;
        }
        in_flight--;
        done++;
    }
    double el = now_s() - t0;
    double cpu = self_cpu_s() - c0;
    printf("raw.runs=%ld raw.parallel=%ld raw.seconds=%.3f raw.parent_cpu_us_per_run=%.1f\n", done,
           par, el, cpu * 1e6 / (double)done);
    printf("raw.runs_per_s=%.1f\n", (double)done / el);
    return 0;
}
