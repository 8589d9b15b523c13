/*
 * recover.c - the runs a previous process of this executor left: adopt, kill or record.
 *
 * The spool says which runs had not ended (the newest result of each), all of them this
 * executor's own: another executor's runs are never touched.  For each, the process is
 * looked for by pid and start time (a pid reused by another process is not it), or, when
 * the crash came between the spawn and the "running" result, by TETHYS_RUN_ID in the
 * environment of a process group leader.  Then, as its job says (on_executor_death):
 *   - found alive, "finish": adopted: watched to its end, its timeout still counting from
 *     when it started; its shard stays busy meanwhile, so it is never started twice;
 *   - found alive, "kill" (or its job is no longer held): its group is killed and the run
 *     recorded interrupted, with the output it had written;
 *   - not found, never started: interrupted (the executor stopped before it started);
 *   - not found, started: lost, exit status unknown, with the output it had written.
 * Each run keeps the fencing epoch it started under.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../os/log.h"
#include "executor_impl.h"

/* A process group leader whose environment names this run (spawned, but the running
 * result was not yet written when the previous process died).  0 when none. */
static pid_t find_by_run_id(const char *run_id)
{
    char needle[64];
    int nlen = snprintf(needle, sizeof needle, "TETHYS_RUN_ID=%s", run_id);
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    pid_t found = 0;
    struct dirent *de;
    static char buf[1 << 16]; /* the loop thread's alone */
    while (found == 0 && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strnlen(buf + i, (size_t)(n - i)) + 1) {
            if (strncmp(buf + i, needle, (size_t)nlen) == 0 && i + nlen < n &&
                buf[i + nlen] == '\0' && getpgid((pid_t)pid) == (pid_t)pid) {
                found = (pid_t)pid;
                break;
            }
        }
    }
    closedir(d);
    return found;
}

/* A stand-in job for a run whose job this executor no longer holds. */
struct stand_in {
    struct xjob j;
};

/* Report a recovered run's end: status st, with its output as it is on disk. */
static void finish(struct executor *x, struct xrun *r, enum store_run_status st, int sig,
                   const char *why)
{
    size_t cap = r->job->def.output_cap ? r->job->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
    char *out = NULL;
    size_t len = 0;
    executor__output_tail(x, r->run_id, cap, r->job->masks, &out, &len);
    executor__report_run(x, r, st, true, -1, sig, out, len, why, executor__now_ms(x));
    free(out);
    executor__output_done(x, r->run_id);
}

void executor__recover(struct executor *x)
{
    size_t killed = 0, adopted = 0, lost = 0, interrupted = 0, i;
    json_t *o;
    struct strbuf scratch;
    sb_init(&scratch);
    json_array_foreach(x->recovered, i, o)
    {
        struct coord_result res;
        struct ty_err err;
        if (coord_result_from_json(o, &res, &scratch, &err) != 0 || res.kind != COORD_RESULT_RUN) {
            log_error("a run left by the previous process cannot be read; it is not reconciled",
                      "error=\"%s\"", err.msg);
            continue;
        }
        const struct store_run *u = &res.run;
        if (u->executor != NULL && strcmp(u->executor, x->id) != 0) {
            log_warn("a run of another executor found in this spool; left alone",
                     "run=%s executor=%s", u->run_id, u->executor);
            continue;
        }
        struct xjob *j = executor__job_ready(x, u->job);
        struct stand_in fake;
        if (j == NULL) {
            memset(&fake, 0, sizeof fake);
            fake.j.def.name = (char *)u->job;
            fake.j.def.domain = (char *)(u->domain ? u->domain : "");
        }
        struct xrun tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.owner = x;
        snprintf(tmp.run_id, sizeof tmp.run_id, "%s", u->run_id);
        snprintf(tmp.fire_id, sizeof tmp.fire_id, "%s", u->fire_id);
        tmp.job = j ? j : &fake.j;
        tmp.shard = u->shard;
        tmp.attempt = u->attempt;
        tmp.trigger = u->trigger;
        tmp.scheduled_at = u->scheduled_at;
        tmp.queued_at_ms = u->queued_at_ms;
        tmp.started_at_ms = u->started_at_ms;
        tmp.epoch = u->epoch;
        tmp.fire_shards = res.fire_shards;

        pid_t pid = (pid_t)u->pid;
        uint64_t start = (uint64_t)u->pid_start;
        bool same_boot = u->boot_id != NULL && strcmp(u->boot_id, x->boot_id) == 0;
        bool alive = same_boot && pid > 0 && exec_proc_alive(pid, start);
        if (!alive && (pid <= 0 || !same_boot)) {
            pid_t p = find_by_run_id(u->run_id);
            uint64_t st = p > 0 ? exec_proc_start(p) : 0;
            if (st != 0) {
                pid = p;
                start = st;
                alive = true;
            }
        }
        tmp.pid = pid;
        tmp.pid_start = start;
        if (!alive) {
            bool never = u->status == STORE_RUN_QUEUED;
            char why[160];
            if (never)
                snprintf(why, sizeof why, "the %s stopped before the run started", x->noun);
            else
                snprintf(why, sizeof why,
                         "the process ended while the %s was down; exit status unknown", x->noun);
            finish(x, &tmp, never ? STORE_RUN_INTERRUPTED : STORE_RUN_LOST, 0, why);
            never ? interrupted++ : lost++;
            continue;
        }
        bool keep = j != NULL && j->def.on_executor_death == JOB_ORPHAN_FINISH;
        if (!keep) {
            exec_kill_orphan(pid, start);
            char why[160];
            snprintf(why, sizeof why, "killed after a %s restart (%s)", x->noun,
                     j != NULL ? "the job says on_executor_death: kill" : "its job is gone");
            finish(x, &tmp, STORE_RUN_INTERRUPTED, 9, why);
            log_warn("killed a run left by the previous process", "job=%s run=%s pid=%d", u->job,
                     u->run_id, (int)pid);
            killed++;
            continue;
        }
        /* adopt it: it keeps its shard busy until it ends */
        struct xrun *r = calloc(1, sizeof *r);
        if (r == NULL)
            continue;
        *r = tmp;
        r->job = j;
        r->adopted = true;
        r->state = XRUN_RUNNING;
        snprintf(r->trace_id, sizeof r->trace_id, "%032x", 0);
        char path[4096];
        executor__output_path(x, r->run_id, path, sizeof path);
        size_t cap = j->def.output_cap ? j->def.output_cap : JOB_OUTPUT_CAP_DEFAULT;
        if (exec_adopt(&x->loop, pid, start, path, cap, executor__on_exit, r, &r->proc, &err) !=
                0 ||
            strmap_put(&x->runs, r->run_id, r) != 0) {
            free(r);
            continue;
        }
        r->masks = mask_set_ref(j->masks);
        j->refs++;
        if (r->shard < j->shard_cap)
            j->running[r->shard]++;
        x->n_running++;
        /* its timeout and alarm still count from when it started; an alarm already past was
         * raised by the previous process (and its alert is still open) */
        r->alarm_raised = j->def.timeout_alarm > 0 && executor__now_ms(x) - r->started_at_ms >=
                                                          (int64_t)j->def.timeout_alarm * 1000;
        executor__arm_timers(x, r, executor__now_ms(x) - r->started_at_ms);
        struct coord_result again = res;
        again.run.pid = pid;
        again.run.pid_start = (int64_t)start;
        again.run.status = STORE_RUN_RUNNING;
        again.phase = COORD_PHASE_RUNNING;
        executor__result(x, &again);
        log_info("adopted a run left by the previous process", "job=%s run=%s pid=%d", u->job,
                 u->run_id, (int)pid);
        adopted++;
    }
    sb_free(&scratch);
    json_decref(x->recovered);
    x->recovered = NULL;
    json_decref(x->last_fires);
    x->last_fires = NULL;
    if (killed + adopted + lost + interrupted > 0)
        log_info("runs of the previous process reconciled",
                 "killed=%zu adopted=%zu lost=%zu interrupted=%zu", killed, adopted, lost,
                 interrupted);
}
