/*
 * test_exec.c - shell runs with real processes on a real libuv loop: exit codes and
 * signals, captured output and its cap, following output, killing groups (grandchildren,
 * traps, ignored TERM), start failures and their messages, run-as user, the exact
 * environment, no descriptor leaks, /proc identity, adopting and killing processes found
 * after a restart, and 200 runs at once with nothing left unreaped.
 *
 * Output files live in a fresh directory under /tmp.  Processes this test leaves orphaned
 * may stay zombies when PID 1 does not reap (some containers), so "dead" means absent from
 * /proc or in state Z/X.
 *
 * Waits poll for their condition until a generous deadline (wait_until), never sleep a
 * fixed time and hope: machines of this kind differ several-fold in how fast they start
 * processes.  Time bounds that remain are halves of a grace the test chose, so only a real
 * wait for the grace can fail them.
 *
 * _GNU_SOURCE (before any include; the project builds with _POSIX_C_SOURCE only) is for
 * nftw, usleep and socketpair's neighbours.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

static char g_dir[64];
static const char *const g_env[] = {"PATH=/usr/bin:/bin", NULL};

/* ---- helpers ------------------------------------------------------------------------ */

struct done {
    int calls;
    struct exec_result res;
    struct exec_run *run;
    uint64_t at_ms; /* monotonic */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_done(struct exec_run *r, const struct exec_result *res, void *arg)
{
    struct done *d = arg;
    d->calls++;
    d->res = *res;
    d->run = r;
    d->at_ms = mono_ms();
}

static void out_path(char *buf, size_t cap, const char *name)
{
    static int seq;
    snprintf(buf, cap, "%s/%s.%d.out", g_dir, name, seq++);
}

static struct exec_spec spec_for(const char *cmd, const char *path, size_t cap)
{
    struct exec_spec s = {.command = cmd, .envp = g_env, .output_path = path, .output_cap = cap};
    return s;
}

/* Run one spec to the end on a fresh loop; returns exec_start's code. */
static int run_spec(const struct exec_spec *s, struct done *d, struct ty_err *err)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    memset(d, 0, sizeof *d);
    struct exec_run *r = NULL;
    int rc = exec_start(&loop, s, on_done, d, &r, err);
    if (rc == 0) {
        assert_non_null(r);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(d->calls, 1);
    } else {
        assert_null(r);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    return rc;
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

/* Run cmd to the end and return its output (NUL-terminated) in out. */
static struct exec_result run_cmd(const char *cmd, char *out, size_t cap)
{
    char path[128];
    out_path(path, sizeof path, "cmd");
    struct exec_spec s = spec_for(cmd, path, 1 << 20);
    struct done d;
    struct ty_err err;
    int rc = run_spec(&s, &d, &err);
    if (rc != 0)
        fail_msg("exec_start(%s): %s", cmd, err.msg);
    if (out != NULL)
        slurp(path, out, cap);
    return d.res;
}

/* Dead: gone from /proc, or a zombie nobody reaped. */
static bool proc_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p == NULL || p[2] == 'Z' || p[2] == 'X';
}

/* Poll cond(arg) every 5 ms until it holds (true) or timeout_ms passed (false). */
static bool wait_until(bool (*cond)(pid_t), pid_t arg, int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    while (!cond(arg)) {
        if (mono_ms() >= deadline)
            return false;
        usleep(5000);
    }
    return true;
}

/* A signalled process needs a moment to be scheduled and die. */
static bool proc_dies(pid_t pid)
{
    return wait_until(proc_dead, pid, 10000);
}

/* The process has a signal pending (sent, not yet acted on): SigPnd or ShdPnd is not zero.
 * A fatal signal stays pending from the kill(2) that sent it until the process dies, so
 * "alive and nothing pending" right after a call means the call sent it nothing. */
static bool signal_pending(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool pending = false;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0)
            pending = pending || strtoull(line + 7, NULL, 16) != 0;
    fclose(f);
    return pending;
}

static uint64_t proc_start_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')') + 2;
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    return strtoull(p, NULL, 10);
}

/* Children of this process in state Z (unreaped). */
static int my_zombies(void)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *p = strrchr(buf, ')');
        if (p == NULL)
            continue;
        char state = p[2];
        long ppid = strtol(p + 4, NULL, 10);
        if (ppid == (long)getpid() && state == 'Z')
            n++;
    }
    closedir(d);
    return n;
}

static int count_my_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* A timer that reads a run's output file until it holds `lines` newlines, then acts. */
struct watcher {
    uv_timer_t t;
    const char *path;
    int lines;
    struct exec_run *run;
    uint32_t grace_ms;
    bool fired;
    uint64_t fired_ms;
    char text[4096];
};

static void on_watch(uv_timer_t *t)
{
    struct watcher *w = t->data;
    int fd = open(w->path, O_RDONLY);
    if (fd < 0)
        return;
    ssize_t n = read(fd, w->text, sizeof w->text - 1);
    close(fd);
    if (n < 0)
        return;
    w->text[n] = '\0';
    int lines = 0;
    for (ssize_t i = 0; i < n; i++)
        lines += w->text[i] == '\n';
    if (lines < w->lines)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    w->fired = true;
    w->fired_ms = mono_ms();
    exec_kill(w->run, w->grace_ms);
}

static void watch_then_kill(uv_loop_t *loop, struct watcher *w, const char *path, int lines,
                            struct exec_run *r, uint32_t grace_ms)
{
    memset(w, 0, sizeof *w);
    w->path = path;
    w->lines = lines;
    w->run = r;
    w->grace_ms = grace_ms;
    uv_timer_init(loop, &w->t);
    w->t.data = w;
    uv_timer_start(&w->t, on_watch, 10, 10);
}

/* ---- exit status and output --------------------------------------------------------- */

static void test_exit_codes(void **state)
{
    (void)state;
    struct exec_result res = run_cmd("exit 0", NULL, 0);
    assert_int_equal(res.exit_code, 0);
    assert_int_equal(res.signal, 0);
    assert_false(res.unknown);
    assert_true(res.ended_ms > 1600000000000LL);
    res = run_cmd("exit 1", NULL, 0);
    assert_int_equal(res.exit_code, 1);
    res = run_cmd("exit 255", NULL, 0);
    assert_int_equal(res.exit_code, 255);
    char out[512];
    res = run_cmd("no-such-command-tethys", out, sizeof out);
    assert_int_equal(res.exit_code, 127);
    assert_non_null(strstr(out, "not found"));
}

static void test_signal_death(void **state)
{
    (void)state;
    struct exec_result res = run_cmd("kill -KILL $$", NULL, 0);
    assert_int_equal(res.exit_code, -1);
    assert_int_equal(res.signal, SIGKILL);
    res = run_cmd("kill -TERM $$", NULL, 0);
    assert_int_equal(res.signal, SIGTERM);
    /*
     * A server ignores SIGPIPE, may catch TERM and block others: none of it may reach the
     * job (a shell started with a signal ignored can never undo it).
     */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    res = run_cmd("kill -PIPE $$; exit 3", NULL, 0);
    assert_int_equal(res.signal, SIGPIPE);
    res = run_cmd("kill -TERM $$; exit 3", NULL, 0);
    assert_int_equal(res.signal, SIGTERM);
    res = run_cmd("kill -USR1 $$; exit 3", NULL, 0);
    assert_int_equal(res.signal, SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

static void test_output_interleaved(void **state)
{
    (void)state;
    char out[256];
    struct exec_result res = run_cmd("echo a; echo b >&2; echo c; printf d >&2", out, sizeof out);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(out, "a\nb\nc\nd");
    assert_int_equal(res.out_total, 7);
    /* stdin is /dev/null */
    res = run_cmd("cat; wc -c", out, sizeof out);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(out, "0\n");
}

/* ---- the output cap ----------------------------------------------------------------- */

/* The text of `seq 1 n`. */
static char *seq_text(int n, size_t *len)
{
    size_t cap = (size_t)n * 8 + 16, off = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int i = 1; i <= n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%d\n", i);
    *len = off;
    return buf;
}

static void test_cap_keeps_tail(void **state)
{
    (void)state;
    enum { CAP = 64 * 1024 };
    size_t exp_len;
    char *exp = seq_text(700000, &exp_len); /* 4.7 MB */
    char path[128];
    out_path(path, sizeof path, "cap");
    struct exec_spec s = spec_for("seq 1 700000", path, CAP);
    struct done d;
    assert_int_equal(run_spec(&s, &d, NULL), 0);
    assert_int_equal(d.res.exit_code, 0);
    assert_int_equal(d.res.out_total, exp_len);
    assert_false(d.res.output_untrimmed);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((size_t)st.st_size, exp_len); /* logical size unchanged */
    uint64_t disk = (uint64_t)st.st_blocks * 512;
    print_message("cap: %zu bytes written, %llu on disk, cap %d\n", exp_len,
                  (unsigned long long)disk, CAP);
    assert_true(disk <= CAP + 2 * (uint64_t)st.st_blksize);

    /* the tail, exactly */
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t len;
    uint64_t skipped;
    assert_int_equal(exec_read_tail(path, CAP, buf, &len, &skipped, NULL), 0);
    assert_int_equal(len, CAP);
    assert_int_equal(skipped, exp_len - CAP);
    assert_memory_equal(buf, exp + exp_len - CAP, CAP);

    /* asking for more than is kept: starts at the first kept byte, never returns the hole */
    assert_int_equal(exec_read_tail(path, 1 << 20, buf, &len, &skipped, NULL), 0);
    assert_true(skipped <= exp_len - CAP);
    assert_true(skipped >= exp_len - CAP - (uint64_t)st.st_blksize);
    assert_int_equal(skipped % (uint64_t)st.st_blksize, 0);
    assert_int_equal(len + skipped, exp_len);
    assert_memory_equal(buf, exp + skipped, len);
    assert_null(memchr(buf, '\0', len));

    /* exec_read_from over the punched prefix: moved to the first kept byte, then in chunks */
    uint64_t from = 0, from_out, total;
    size_t got = 0;
    bool first = true;
    for (;;) {
        assert_int_equal(exec_read_from(path, from, buf, 4096, &len, &from_out, &total, NULL), 0);
        assert_int_equal(total, exp_len);
        if (first) {
            assert_int_equal(from_out, skipped);
            first = false;
        } else {
            assert_int_equal(from_out, from);
        }
        if (len == 0)
            break;
        assert_memory_equal(buf, exp + from_out, len);
        got += len;
        from = from_out + len;
    }
    assert_int_equal(got, exp_len - skipped);
    assert_int_equal(from, exp_len);

    /* small reads of the tail */
    assert_int_equal(exec_read_tail(path, 10, buf, &len, &skipped, NULL), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "99\n700000\n", 10);
    assert_int_equal(exec_read_tail(path, 0, buf, &len, &skipped, NULL), 0);
    assert_int_equal(len, 0);
    assert_int_equal(skipped, exp_len);
    free(buf);
    free(exp);
}

/* While a run lasts the timer trims: watch disk use mid-run, every 20 ms, until the whole
 * output is written and trimmed to the cap, or the run ends. */
struct midrun {
    uv_timer_t t;
    const char *path;
    struct done *d;
    uint64_t disk;
    off_t size;
    bool trimmed_while_running;
};

static void on_midrun(uv_timer_t *t)
{
    struct midrun *m = t->data;
    if (m->d->calls != 0) { /* the run ended first */
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    struct stat st;
    assert_int_equal(stat(m->path, &st), 0);
    m->disk = (uint64_t)st.st_blocks * 512;
    m->size = st.st_size;
    if (m->size == 3000000 && m->disk <= 32 * 1024 + 8192) {
        m->trimmed_while_running = true;
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void test_cap_while_running(void **state)
{
    (void)state;
    char path[128];
    out_path(path, sizeof path, "midrun");
    struct exec_spec s =
        spec_for("head -c 3000000 /dev/zero | tr '\\0' x; sleep 1.5", path, (size_t)32 * 1024);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct done d = {0};
    struct exec_run *r;
    assert_int_equal(exec_start(&loop, &s, on_done, &d, &r, NULL), 0);
    struct midrun m = {.path = path, .d = &d};
    uv_timer_init(&loop, &m.t);
    m.t.data = &m;
    uv_timer_start(&m.t, on_midrun, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(d.calls, 1);
    print_message("mid-run: %lld bytes written, %llu on disk\n", (long long)m.size,
                  (unsigned long long)m.disk);
    /* the 1.5 s the run sleeps after writing hold three trim ticks (every 500 ms) */
    assert_true(m.trimmed_while_running);
}

/* ---- following output live ---------------------------------------------------------- */

struct follower {
    uv_timer_t t;
    const char *path;
    uint64_t from;
    char text[256];
    size_t len;
    int reads_with_data;
    struct done *d;
};

static void follow_once(struct follower *f)
{
    char buf[64];
    size_t len;
    uint64_t from_out, total;
    int rc = exec_read_from(f->path, f->from, buf, sizeof buf, &len, &from_out, &total, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(from_out, f->from); /* nothing punched with this cap */
    assert_true(f->len + len < sizeof f->text);
    memcpy(f->text + f->len, buf, len);
    f->len += len;
    f->from = from_out + len;
    if (len > 0 && f->d->calls == 0)
        f->reads_with_data++;
}

static void on_follow(uv_timer_t *t)
{
    follow_once(t->data);
}

static void on_follow_done(struct exec_run *r, const struct exec_result *res, void *arg)
{
    struct follower *f = arg;
    on_done(r, res, f->d);
    uv_close((uv_handle_t *)&f->t, NULL);
    follow_once(f); /* what came after the last tick */
}

static void test_read_from_follow(void **state)
{
    (void)state;
    char path[128];
    out_path(path, sizeof path, "follow");
    struct exec_spec s =
        spec_for("for i in 1 2 3 4 5 6; do echo line$i; sleep 0.1; done", path, 1 << 20);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct done d = {0};
    struct follower f = {.path = path, .d = &d};
    struct exec_run *r;
    assert_int_equal(exec_start(&loop, &s, on_follow_done, &f, &r, NULL), 0);
    uv_timer_init(&loop, &f.t);
    f.t.data = &f;
    uv_timer_start(&f.t, on_follow, 15, 15);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    f.text[f.len] = '\0';
    assert_string_equal(f.text, "line1\nline2\nline3\nline4\nline5\nline6\n");
    assert_true(f.reads_with_data >= 3); /* it was followed, not read once at the end */

    /* past the end: nothing, and the offset stays */
    char buf[16];
    size_t len;
    uint64_t from_out, total;
    assert_int_equal(exec_read_from(path, 1000, buf, sizeof buf, &len, &from_out, &total, NULL), 0);
    assert_int_equal(len, 0);
    assert_int_equal(from_out, 1000);
    assert_int_equal(total, 36);
}

static void test_read_missing(void **state)
{
    (void)state;
    char buf[16];
    size_t len;
    uint64_t skipped, from_out, total;
    struct ty_err err;
    char path[128];
    snprintf(path, sizeof path, "%s/none.out", g_dir);
    assert_int_equal(exec_read_tail(path, sizeof buf, buf, &len, &skipped, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "none.out: No such file or directory"));
    assert_int_equal(exec_read_from(path, 0, buf, sizeof buf, &len, &from_out, &total, &err),
                     TY_ENOENT);
}

/* ---- killing -------------------------------------------------------------------------- */

static void parse_pids(const char *text, pid_t *pids, int n)
{
    const char *p = text;
    for (int i = 0; i < n; i++) {
        pids[i] = (pid_t)strtol(p, (char **)&p, 10);
        assert_true(pids[i] > 1);
    }
}

/* A run of cmd whose process group gets TERM (then KILL after grace_ms) as soon as its
 * output has `lines` lines: kill_start starts it, kill_finish runs the loop dry. */
struct killed {
    char path[128];
    uv_loop_t loop;
    struct done d;
    struct exec_run *r;
    struct watcher w;
    uint64_t end_ms; /* when the loop ran dry */
};

static void kill_start(struct killed *k, const char *tag, const char *cmd, int lines,
                       uint32_t grace_ms)
{
    memset(k, 0, sizeof *k);
    out_path(k->path, sizeof k->path, tag);
    struct exec_spec s = spec_for(cmd, k->path, 1 << 20);
    uv_loop_init(&k->loop);
    assert_int_equal(exec_start(&k->loop, &s, on_done, &k->d, &k->r, NULL), 0);
    watch_then_kill(&k->loop, &k->w, k->path, lines, k->r, grace_ms);
}

static void kill_finish(struct killed *k)
{
    uv_run(&k->loop, UV_RUN_DEFAULT);
    k->end_ms = mono_ms();
    assert_int_equal(uv_loop_close(&k->loop), 0);
}

static void test_kill_group_with_grandchildren(void **state)
{
    (void)state;
    struct killed k;
    kill_start(&k, "group",
               "sleep 100 & echo $!; sh -c 'sleep 100 & echo $!; wait' & sleep 0.05; echo $!; wait",
               3, 20000);
    pid_t leader = exec_pid(k.r);
    kill_finish(&k);
    assert_true(k.w.fired);
    assert_int_equal(k.d.calls, 1);
    assert_int_equal(k.d.res.signal, SIGTERM);
    /* nobody ignored TERM: no wait for the 20 s grace (bounds are halves of the grace, so a
     * loaded machine cannot fail them, only a real wait can) */
    assert_true(k.end_ms - k.w.fired_ms < 10000);
    pid_t pids[3];
    parse_pids(k.w.text, pids, 3);
    assert_true(proc_dies(leader));
    for (int i = 0; i < 3; i++)
        assert_true(proc_dies(pids[i]));
}

/*
 * The leader dies of TERM at once; a member of its group takes a moment to finish on
 * TERM.  The linger ends when that member is gone, not when the 20 s grace does.
 *
 * Here and below, "ready" comes from a process that has already exec'd (sh -c), after the
 * traps are set: a child a trapping shell has forked but not yet exec'd catches a TERM in
 * the shell's handler and loses it at the exec, so a TERM sent then would leave a sleep
 * 100 running to the grace on a slow machine.
 */
static void test_linger_ends_when_the_group_empties(void **state)
{
    (void)state;
    struct killed k;
    kill_start(&k, "linger",
               "(trap 'sleep 0.3; exit 0' TERM; sh -c 'echo ready; exec sleep 100' & wait) & wait",
               1, 20000);
    kill_finish(&k);
    assert_int_equal(k.d.calls, 1);
    assert_int_equal(k.d.res.signal, SIGTERM);
    assert_true(k.end_ms - k.w.fired_ms < 10000); /* half the grace: only a real wait fails it */
}

static void test_kill_grandchild_ignoring_term(void **state)
{
    (void)state;
    struct killed k;
    /* the leader dies of TERM at once; its grandchild ignores TERM (set before it prints its
     * pid, and kept across the exec) and needs the KILL */
    kill_start(&k, "ignore-gc", "sh -c 'trap \"\" TERM; echo $$; exec sleep 100' & wait", 1, 6000);
    kill_finish(&k);
    assert_int_equal(k.d.calls, 1);
    assert_int_equal(k.d.res.signal, SIGTERM);
    assert_true(k.d.at_ms - k.w.fired_ms < 3000); /* done when the leader ended, not at the grace */
    assert_true(k.end_ms - k.w.fired_ms >=
                5990); /* the group was still killed at the grace's end */
    pid_t gc;
    parse_pids(k.w.text, &gc, 1);
    assert_true(proc_dies(gc));
}

static void test_kill_trap_term_clean_exit(void **state)
{
    (void)state;
    struct killed k;
    /* "ready" comes from the exec'd sh -c (see above), so the TERM the watcher sends on it
     * reaches the sleep: lost in a forked shell, it would outlive the trap until the grace */
    kill_start(&k, "trap",
               "trap 'echo bye; exit 0' TERM; sh -c 'echo ready; exec sleep 100' & wait", 1, 20000);
    kill_finish(&k);
    assert_int_equal(k.d.res.exit_code, 0);
    assert_int_equal(k.d.res.signal, 0);
    assert_true(k.end_ms - k.w.fired_ms <
                10000); /* clean exit, group empty: no wait for the grace */
    char out[64];
    slurp(k.path, out, sizeof out);
    assert_string_equal(out, "ready\nbye\n");
}

static void test_kill_ignoring_term(void **state)
{
    (void)state;
    struct killed k;
    kill_start(&k, "ignore", "trap '' TERM; echo ready; sleep 100", 1, 300);
    kill_finish(&k);
    assert_int_equal(k.d.res.signal, SIGKILL);
    assert_true(k.d.at_ms - k.w.fired_ms >= 295);  /* not before the grace */
    assert_true(k.d.at_ms - k.w.fired_ms < 15000); /* and KILL did come */
}

/* exec_kill again with a shorter grace: the KILL comes sooner.  Polls until the watcher
 * has sent the first kill (with its 20 s grace), then shortens it. */
struct shorten {
    uv_timer_t t;
    struct exec_run *r;
    const struct watcher *w;
    uint64_t at;
};

static void on_shorten(uv_timer_t *t)
{
    struct shorten *s = t->data;
    if (!s->w->fired)
        return;
    s->at = mono_ms();
    exec_kill(s->r, 30000); /* longer: ignored */
    exec_kill(s->r, 0);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_kill_shortened(void **state)
{
    (void)state;
    struct killed k;
    kill_start(&k, "shorten", "trap '' TERM; echo ready; sleep 100", 1, 20000);
    struct shorten sh = {.r = k.r, .w = &k.w};
    uv_timer_init(&k.loop, &sh.t);
    sh.t.data = &sh;
    uv_timer_start(&sh.t, on_shorten, 10, 10);
    kill_finish(&k);
    assert_true(k.w.fired);
    assert_int_equal(k.d.res.signal, SIGKILL);
    assert_true(k.d.at_ms - sh.at < 10000); /* the second call shortened the 20 s grace */
}

/* ---- failures to start ---------------------------------------------------------------- */

static void test_bad_workdir(void **state)
{
    (void)state;
    char path[128];
    out_path(path, sizeof path, "badwd");
    struct exec_spec s = spec_for("true", path, 1024);
    s.workdir = "/nonexistent/tethys";
    struct done d;
    struct ty_err err;
    int fds = count_my_fds();
    assert_int_equal(run_spec(&s, &d, &err), TY_EIO);
    assert_string_equal(err.msg,
                        "working directory /nonexistent/tethys: No such file or directory");
    assert_string_equal(err.field, "workdir");
    assert_int_equal(access(path, F_OK), -1); /* no file left behind */
    s.workdir = "/etc/hostname";
    assert_int_equal(run_spec(&s, &d, &err), TY_EIO);
    assert_string_equal(err.msg, "working directory /etc/hostname: Not a directory");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_my_fds(), fds);
    assert_int_equal(my_zombies(), 0);

    /* a good one is used */
    char out[128];
    s.workdir = "/usr/share";
    assert_int_equal(run_spec(&s, &d, &err), 0);
    s.command = "pwd";
    out_path(path, sizeof path, "wd");
    s.output_path = path;
    assert_int_equal(run_spec(&s, &d, &err), 0);
    slurp(path, out, sizeof out);
    assert_string_equal(out, "/usr/share\n");
}

static void test_bad_output(void **state)
{
    (void)state;
    struct exec_spec s = spec_for("true", "/nonexistent/dir/run.out", 1024);
    struct done d;
    struct ty_err err;
    assert_int_equal(run_spec(&s, &d, &err), TY_EIO);
    assert_string_equal(err.msg, "output file /nonexistent/dir/run.out: No such file or directory");
    assert_string_equal(err.field, "output_path");

    /* an existing file is refused (O_EXCL) and left alone */
    char path[128];
    out_path(path, sizeof path, "exists");
    FILE *f = fopen(path, "w");
    fputs("keep", f);
    fclose(f);
    s.output_path = path;
    assert_int_equal(run_spec(&s, &d, &err), TY_EIO);
    assert_non_null(strstr(err.msg, ": File exists"));
    char out[16];
    slurp(path, out, sizeof out);
    assert_string_equal(out, "keep");

    s.command = NULL;
    assert_int_equal(run_spec(&s, &d, &err), TY_EINVAL);
    assert_string_equal(err.field, "command");
}

/* ---- run-as user ---------------------------------------------------------------------- */

static void test_user(void **state)
{
    (void)state;
    char path[128];
    struct done d;
    struct ty_err err;
    out_path(path, sizeof path, "nouser");
    struct exec_spec s = spec_for("id", path, 1024);
    s.user = "no-such-user-tethys";
    assert_int_equal(run_spec(&s, &d, &err), TY_ENOENT);
    assert_string_equal(err.msg, "user no-such-user-tethys: no such user");
    assert_string_equal(err.field, "user");
    assert_int_equal(access(path, F_OK), -1);

    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || pw == NULL) {
        print_message("not root or no user nobody: run-as not exercised\n");
        return;
    }
    uid_t nobody_uid = pw->pw_uid;
    gid_t nobody_gid = pw->pw_gid;

    /* switched: uid, gid, groups, an empty fd table, the exact environment */
    out_path(path, sizeof path, "nobody");
    s = spec_for("id -u; id -g; id -G; ls /proc/$$/fd; "
                 "tr '\\0' '\\n' < /proc/$$/environ",
                 path, 1 << 16);
    s.user = "nobody";
    s.workdir = "/tmp";
    assert_int_equal(run_spec(&s, &d, &err), 0);
    assert_int_equal(d.res.exit_code, 0);
    char out[1024], want[256];
    slurp(path, out, sizeof out);
    snprintf(want, sizeof want, "%u\n%u\n%u\n0\n1\n2\nPATH=/usr/bin:/bin\n", (unsigned)nobody_uid,
             (unsigned)nobody_gid, (unsigned)nobody_gid);
    assert_string_equal(out, want);

    /* the forked path resets signals too */
    out_path(path, sizeof path, "nobody-sig");
    s = spec_for("kill -PIPE $$; exit 3", path, 1024);
    s.user = "nobody";
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(run_spec(&s, &d, &err), 0);
    signal(SIGPIPE, SIG_DFL);
    assert_int_equal(d.res.signal, SIGPIPE);

    /* the working directory is entered as the user: /root is 0700 */
    struct stat st;
    if (stat("/root", &st) == 0 && (st.st_mode & 0077) == 0) {
        out_path(path, sizeof path, "nobody-root");
        s = spec_for("true", path, 1024);
        s.user = "nobody";
        s.workdir = "/root";
        assert_int_equal(run_spec(&s, &d, &err), TY_EIO);
        assert_string_equal(err.msg, "working directory /root: Permission denied");
        assert_string_equal(err.field, "workdir");
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(my_zombies(), 0);
    }

    /* the server's own user needs no root; another user does: check as nobody, in a child */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(nobody_gid) < 0 || setuid(nobody_uid) < 0)
            _exit(90);
        uv_loop_t loop;
        uv_loop_init(&loop);
        struct exec_run *r;
        struct ty_err e2;
        struct exec_spec c = spec_for("true", "/nonexistent/x", 1024);
        c.user = "root";
        int rc = exec_start(&loop, &c, on_done, NULL, &r, &e2);
        if (rc != TY_EBUSY || strcmp(e2.msg, "user root: running a job as another user needs "
                                             "the server to run as root") != 0)
            _exit(91);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* root as "root": no switch needed, plain spawn */
    out_path(path, sizeof path, "root");
    s = spec_for("id -u", path, 1024);
    s.user = "root";
    assert_int_equal(run_spec(&s, &d, &err), 0);
    slurp(path, out, sizeof out);
    assert_string_equal(out, "0\n");
}

/* ---- environment and descriptors ------------------------------------------------------ */

static void test_environment_exact(void **state)
{
    (void)state;
    static const char *const env[] = {"A=1", "B=two words", "TETHYS_RUN_ID=r-42", "EMPTY=", NULL};
    char path[128];
    out_path(path, sizeof path, "env");
    struct exec_spec s = spec_for("tr '\\0' '\\n' < /proc/$$/environ", path, 4096);
    s.envp = env;
    struct done d;
    assert_int_equal(run_spec(&s, &d, NULL), 0);
    char out[512];
    slurp(path, out, sizeof out);
    assert_string_equal(out, "A=1\nB=two words\nTETHYS_RUN_ID=r-42\nEMPTY=\n");

    /* no environment at all */
    out_path(path, sizeof path, "noenv");
    s = spec_for("/usr/bin/env; echo end", path, 4096);
    s.envp = NULL;
    assert_int_equal(run_spec(&s, &d, NULL), 0);
    slurp(path, out, sizeof out);
    assert_null(strstr(out, "PATH="));
    assert_non_null(strstr(out, "end\n"));
}

static void test_no_fd_leak(void **state)
{
    (void)state;
    /* descriptors a server would hold, some without O_CLOEXEC */
    int leak1 = open("/dev/null", O_RDONLY);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int high = dup2(leak1, 200);
    assert_true(leak1 >= 0 && high == 200);
    char path[128];
    out_path(path, sizeof path, "fds");
    struct exec_spec s = spec_for("ls /proc/$$/fd", path, 4096);
    struct done d;
    assert_int_equal(run_spec(&s, &d, NULL), 0);
    char out[256];
    slurp(path, out, sizeof out);
    assert_string_equal(out, "0\n1\n2\n"); /* ls without a pipe: the shell's own fds only */
    close(leak1);
    close(high);
    close(sv[0]);
    close(sv[1]);
}

/* ---- identity, adopt, orphans --------------------------------------------------------- */

struct alive_check {
    uv_timer_t t;
    struct exec_run *r;
    bool alive, alive_wrong;
};

static void on_alive_check(uv_timer_t *t)
{
    struct alive_check *a = t->data;
    pid_t pid = exec_pid(a->r);
    uint64_t start = exec_pid_start(a->r);
    a->alive = exec_proc_alive(pid, start);
    a->alive_wrong = exec_proc_alive(pid, start + 1);
    exec_kill(a->r, 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_proc_alive(void **state)
{
    (void)state;
    char path[128];
    out_path(path, sizeof path, "alive");
    struct exec_spec s = spec_for("sleep 5", path, 1024);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct done d = {0};
    struct exec_run *r;
    assert_int_equal(exec_start(&loop, &s, on_done, &d, &r, NULL), 0);
    pid_t pid = exec_pid(r);
    uint64_t start = exec_pid_start(r);
    assert_true(start > 0);
    assert_int_equal(start, proc_start_of(pid));
    struct alive_check a = {.r = r};
    uv_timer_init(&loop, &a.t);
    a.t.data = &a;
    uv_timer_start(&a.t, on_alive_check, 50, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(a.alive);
    assert_false(a.alive_wrong);
    assert_int_equal(d.res.signal, SIGKILL);
    assert_false(exec_proc_alive(pid, start)); /* reaped */
    assert_true(exec_proc_alive(getpid(), proc_start_of(getpid())));
    assert_false(exec_proc_alive(0, 0));
    assert_false(exec_proc_alive(-1, 0));
}

/* The process runs the sleep program (its exec is done). */
static bool runs_sleep(pid_t pid)
{
    char exe[64], link[256];
    snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(exe, link, sizeof link - 1);
    if (n <= 0)
        return false;
    link[n] = '\0';
    return strstr(link, "sleep") != NULL;
}

/*
 * Start argv as a grandchild (so this process is not its parent, as after a server restart),
 * in its own process group; returns its pid.
 */
static pid_t spawn_orphan(const char *const argv[])
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        pid_t gc = fork();
        if (gc == 0) {
            setpgid(0, 0);
            close(pfd[0]);
            close(pfd[1]);
            execv(argv[0], (char *const *)argv);
            _exit(127);
        }
        ssize_t n = write(pfd[1], &gc, sizeof gc);
        _exit(n == (ssize_t)sizeof gc ? 0 : 1);
    }
    close(pfd[1]);
    pid_t gc = -1;
    assert_int_equal(read(pfd[0], &gc, sizeof gc), (ssize_t)sizeof gc);
    close(pfd[0]);
    assert_int_equal(waitpid(mid, NULL, 0), mid);
    /* wait for the exec, so /proc shows the final process */
    assert_true(wait_until(runs_sleep, gc, 10000));
    return gc;
}

static void test_adopt(void **state)
{
    (void)state;
    static const char *const argv[] = {"/bin/sleep", "1", NULL};
    pid_t pid = spawn_orphan(argv);
    uint64_t start = proc_start_of(pid);
    assert_true(exec_proc_alive(pid, start));

    struct ty_err err;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct exec_run *r;
    struct done d = {0};
    assert_int_equal(exec_adopt(&loop, pid, start + 7, NULL, 0, on_done, &d, &r, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "gone"));
    assert_int_equal(exec_adopt(&loop, 0x7ffffff0, start, NULL, 0, on_done, &d, &r, &err),
                     TY_ENOENT);

    char path[128];
    out_path(path, sizeof path, "adopted");
    FILE *f = fopen(path, "w");
    fputs("earlier output\n", f);
    fclose(f);
    uint64_t t0 = mono_ms();
    assert_int_equal(exec_adopt(&loop, pid, start, path, 4096, on_done, &d, &r, &err), 0);
    assert_int_equal(exec_pid(r), pid);
    assert_int_equal(exec_pid_start(r), start);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(d.calls, 1);
    assert_true(d.res.unknown);
    assert_int_equal(d.res.exit_code, -1);
    assert_int_equal(d.res.out_total, 15);
    assert_true(mono_ms() - t0 < 10000); /* noticed its end, not a timeout */
    assert_false(exec_proc_alive(pid, start));
    assert_int_equal(exec_adopt(&loop, pid, start, NULL, 0, on_done, &d, &r, &err), TY_ENOENT);
}

/* An adopted run's output keeps its cap: trimmed at the latest when the process ends. */
static void test_adopt_cap(void **state)
{
    (void)state;
    char path[128], cmd[256];
    out_path(path, sizeof path, "adopt-cap");
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(cmd, sizeof cmd, "head -c 2000000 /dev/zero >> %s; exec sleep 0.3", path);
    const char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    pid_t pid = spawn_orphan(argv); /* returns once the sleep runs: the file is written */
    uint64_t start = proc_start_of(pid);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct exec_run *r;
    struct done d = {0};
    assert_int_equal(exec_adopt(&loop, pid, start, path, 16384, on_done, &d, &r, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(d.res.unknown);
    assert_int_equal(d.res.out_total, 2000000);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 <= 16384 + (uint64_t)st.st_blksize);
}

/* Killing an adopted run reaches its group while the leader lives. */
static void test_adopt_kill(void **state)
{
    (void)state;
    static const char *const argv[] = {"/bin/sleep", "100", NULL};
    pid_t pid = spawn_orphan(argv);
    uint64_t start = proc_start_of(pid);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct exec_run *r;
    struct done d = {0};
    assert_int_equal(exec_adopt(&loop, pid, start, NULL, 0, on_done, &d, &r, NULL), 0);
    exec_kill(r, 2000);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(d.calls, 1);
    assert_true(d.res.unknown);
    assert_true(proc_dies(pid));
}

static void test_kill_orphan(void **state)
{
    (void)state;
    static const char *const argv[] = {"/bin/sleep", "100", NULL};
    pid_t pid = spawn_orphan(argv);
    uint64_t start = proc_start_of(pid);
    assert_int_equal(exec_kill_orphan(pid, start + 1), TY_ENOENT);
    /* refused, and no signal sent: alive with nothing pending (no need to wait and see) */
    assert_false(proc_dead(pid));
    assert_false(signal_pending(pid));
    assert_int_equal(exec_kill_orphan(pid, start), 0);
    assert_true(proc_dies(pid));
    assert_int_equal(exec_kill_orphan(0x7ffffff0, 1), TY_ENOENT);
}

static void test_boot_id(void **state)
{
    (void)state;
    char id[64];
    assert_int_equal(exec_boot_id(id, sizeof id, NULL), 0);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[8], '-');
    char small[8];
    struct ty_err err;
    assert_int_equal(exec_boot_id(small, sizeof small, &err), TY_EINVAL);
}

/* ---- many at once --------------------------------------------------------------------- */

enum { MANY = 200 };

struct many {
    int done;
    int codes[MANY];
    int calls[MANY];
};

struct many_arg {
    struct many *m;
    int i;
};

static void on_many_done(struct exec_run *r, const struct exec_result *res, void *arg)
{
    (void)r;
    struct many_arg *a = arg;
    a->m->calls[a->i]++;
    a->m->codes[a->i] = res->exit_code;
    a->m->done++;
}

static void test_many_concurrent(void **state)
{
    (void)state;
    int fds = count_my_fds();
    uv_loop_t loop;
    uv_loop_init(&loop);
    static struct many m;
    static struct many_arg args[MANY];
    memset(&m, 0, sizeof m);
    for (int i = 0; i < MANY; i++) {
        char path[128], cmd[64];
        out_path(path, sizeof path, "many");
        snprintf(cmd, sizeof cmd, "sleep 0.%d; echo %d; exit %d", i % 5, i, i % 7);
        struct exec_spec s = spec_for(cmd, path, 1024);
        args[i].m = &m;
        args[i].i = i;
        struct exec_run *r;
        struct ty_err err;
        if (exec_start(&loop, &s, on_many_done, &args[i], &r, &err) != 0)
            fail_msg("run %d: %s", i, err.msg);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(m.done, MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(m.calls[i], 1);
        assert_int_equal(m.codes[i], i % 7);
    }
    assert_int_equal(my_zombies(), 0);
    assert_int_equal(count_my_fds(), fds); /* every pidfd and output fd closed */
}

/* ---- setup ---------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/tethys-exec-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    chmod(g_dir, 0755);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_signal_death),
        cmocka_unit_test(test_output_interleaved),
        cmocka_unit_test(test_cap_keeps_tail),
        cmocka_unit_test(test_cap_while_running),
        cmocka_unit_test(test_read_from_follow),
        cmocka_unit_test(test_read_missing),
        cmocka_unit_test(test_kill_group_with_grandchildren),
        cmocka_unit_test(test_linger_ends_when_the_group_empties),
        cmocka_unit_test(test_kill_grandchild_ignoring_term),
        cmocka_unit_test(test_kill_trap_term_clean_exit),
        cmocka_unit_test(test_kill_ignoring_term),
        cmocka_unit_test(test_kill_shortened),
        cmocka_unit_test(test_bad_workdir),
        cmocka_unit_test(test_bad_output),
        cmocka_unit_test(test_user),
        cmocka_unit_test(test_environment_exact),
        cmocka_unit_test(test_no_fd_leak),
        cmocka_unit_test(test_proc_alive),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_adopt_cap),
        cmocka_unit_test(test_adopt_kill),
        cmocka_unit_test(test_kill_orphan),
        cmocka_unit_test(test_boot_id),
        cmocka_unit_test(test_many_concurrent),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
