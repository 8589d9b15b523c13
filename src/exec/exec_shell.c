/*
 * exec_shell.c - one shell run: spawn, watch through a pidfd, cap the output, kill the group.
 *
 * Needs _GNU_SOURCE (defined below, before any include, because the project builds with
 * _POSIX_C_SOURCE only): fallocate, SEEK_DATA, pipe2, posix_spawn_file_actions_add*_np,
 * getgrouplist, close_range flags.
 *
 * Spawn.  `/bin/sh -c COMMAND` starts with posix_spawn (a vfork-style clone, so its cost does
 * not grow with the server's memory) in a process group of its own, with an empty signal mask
 * and every signal at its default action (the server ignores SIGPIPE and may catch TERM/INT),
 * stdin from /dev/null and stdout+stderr on one output file the parent creates (O_EXCL).  The
 * file actions end with closefrom(3), and every descriptor this file opens is O_CLOEXEC, so
 * the server's sockets and database files never reach a job.  A run-as user needs what
 * posix_spawn cannot do (setgroups/setgid/setuid), so that path forks: the child makes only
 * raw system calls and reports a failure (step + errno) through a CLOEXEC pipe, which the
 * parent reads until EOF, i.e. until exec succeeded or failed.  Either way exec_start returns
 * only once /bin/sh runs, and a failure leaves nothing behind: no child (reaped), no file.
 *
 * Watch.  A pidfd (PIDFD_NONBLOCK) on the child sits in a uv_poll_t: it becomes readable when
 * the process has exited, and waitid(P_PIDFD) reaps it.  No SIGCHLD handler, no polling.
 *
 * Kill.  A group is signalled by number (kill(-pgid)), and numbers are reused; what makes it
 * safe: a group's id is its leader's pid, and the kernel does not hand out a pid while a live
 * or zombie process still uses the number as pid or pgid.  Our leader is our child, so until
 * WE reap it the number is pinned and kill(-pgid) can only reach our group: signals are sent
 * only before the leader is reaped.  When the leader exits during a TERM grace while other
 * members of its group live on (a /proc scan tells), it is kept as a zombie (status read with
 * WNOWAIT): the done callback comes at once, the group still gets SIGKILL when the grace ends
 * (grandchildren that ignored TERM die), and only then is the leader reaped - unless a scan
 * every LINGER_CHECK_MS finds the group empty first.  With no member left it is reaped at
 * once.  Adopted processes are not our children (someone else reaps
 * them), so their group is signalled only while the leader's pidfd says it is alive.
 *
 * Output cap.  The child appends straight to the file, so the server may die without
 * breaking the job's output.  While the run lasts a 500 ms timer (and the exit, and
 * exec_trim_output) punches [0, size - cap) rounded down to the block size out of the file
 * (FALLOC_FL_PUNCH_HOLE | KEEP_SIZE): logical offsets never move, so a follower's offset stays
 * valid, and the disk holds about cap + one block + what the job writes in 500 ms.  Readers
 * find the first kept byte with lseek(SEEK_DATA), since a hole reads as zeros.  A file system
 * without punch-hole (EOPNOTSUPP) is not trimmed at all and the result says so
 * (output_untrimmed): copy-and-truncate would lose what the job writes between the copy and
 * the truncate, and would move every offset under a follower.
 *
 * The server must not reap what it did not start (no waitpid(-1), no SIGCHLD ignored) and
 * must run the loop until it is empty before exiting.  docs/internals/exec.md has the rest.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "exec.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

#define TRIM_INTERVAL_MS 500
#define LINGER_CHECK_MS  50 /* how often a lingering leader looks for the rest of its group */
#define SHELL_PATH       "/bin/sh"

enum phase {
    PHASE_RUN,    /* the leader has not been seen to exit */
    PHASE_LINGER, /* done was reported; the zombie leader pins the pgid until the grace ends */
    PHASE_DONE,   /* done is being reported; reaped; teardown follows */
    PHASE_CLOSED, /* handles are closing; freed by the last close callback */
};

struct exec_run {
    uv_loop_t *loop;
    uv_poll_t poll;   /* on pidfd: readable = exited */
    uv_timer_t trim;  /* the output cap while the run lasts */
    uv_timer_t grace; /* TERM -> KILL */
    int pidfd;
    int out_fd; /* the output file, for fstat and punching; -1 when none */
    pid_t pid;  /* also the pgid */
    uint64_t pid_start;
    size_t cap;
    uint64_t punched;       /* [0, punched) is a hole */
    uint64_t kill_deadline; /* loop time of the SIGKILL, while term_sent */
    enum phase phase;
    bool adopted;
    bool term_sent;
    bool kill_sent;
    bool reaped;
    bool untrimmed;   /* punch-hole unsupported: trimming gave up */
    bool poll_inited; /* the poll handle exists (the timers always do) */
    int closing;      /* handles still to be closed */
    exec_done_cb cb;
    void *arg;
};

/* ---- small helpers ------------------------------------------------------------------ */

static int code_for_errno(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT: return TY_ENOSPC;
    case ENOMEM: return TY_ENOMEM;
    default: return TY_EIO;
    }
}

/* Fill err (if not NULL); errno is preserved. */
static void set_err(struct ty_err *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(struct ty_err *err, int code, const char *field, const char *fmt, ...)
{
    int saved = errno;
    char msg[TY_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)ty_error(err, code, field, -1, 0, "%s", msg);
    errno = saved;
}

/* set_err with "<what>: <strerror(e)>" and the code errno e maps to. */
static void set_os_err(struct ty_err *err, int e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_os_err(struct ty_err *err, int e, const char *field, const char *fmt, ...)
{
    int saved = errno;
    char what[TY_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_err(err, code_for_errno(e), field, "%s: %s", what, strerror(e));
    errno = saved;
}

/*
 * `return FAIL(...)` / `return OS_FAIL(...)`: fill err and give the code.  Macros so that the
 * code returned is a plain expression (the static analyser does not follow variadic calls,
 * and would otherwise assume an error path may return 0).
 */
#define FAIL(err, code, ...) (set_err((err), (code), __VA_ARGS__), (code))
#define OS_FAIL(err, e, ...) (set_os_err((err), (e), __VA_ARGS__), code_for_errno(e))

/* -errno, never 0 (a failed call that left errno alone still fails). */
static int neg_errno(void)
{
    int e = errno;
    return e > 0 ? -e : -EIO;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Move fd above 0-2 (a server may run with stdio closed), keeping O_CLOEXEC. */
static int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return moved;
}

static int sys_pidfd_open(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

static void close_keep_errno(int fd)
{
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
}

struct proc_stat {
    char state; /* R S D Z X ... */
    pid_t pgrp;
    uint64_t start; /* field 22: start time in clock ticks since boot */
};

/*
 * Read /proc/pid/stat.  comm (field 2) may hold spaces and ')', so fields are counted from
 * the last ')'.  Returns 0 or -errno (ENOENT/ESRCH when the process is gone).
 */
static int proc_stat_read(pid_t pid, struct proc_stat *ps)
{
    char path[32];
    char buf[1024];
    memset(ps, 0, sizeof *ps);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return neg_errno();
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    int rc = n < 0 ? neg_errno() : -ESRCH; /* a process that vanished reads empty */
    close(fd);
    if (n <= 0)
        return rc;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return -EINVAL;
    p += 2; /* field 3 */
    ps->state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -EINVAL;
        p++;
        if (field + 1 == 5)
            ps->pgrp = (pid_t)strtol(p, NULL, 10);
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || errno != 0)
        return -EINVAL;
    ps->start = v;
    return 0;
}

static bool state_dead(char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

/* Whether an adopted leader has exited (its pidfd is readable). */
static bool pidfd_exited(int pidfd)
{
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    return poll(&pfd, 1, 0) != 0; /* readable, or an error: either way do not signal */
}

/*
 * Whether a process other than the leader is alive in group pgid.  getpgid() on every pid of
 * /proc (about 1 us each) sorts them; only the few in the group have their state read, so a
 * zombie member (one nobody reaps) does not count.  Not atomic: a member that forks and exits
 * while the scan passes can hide its child; the child keeps the pgid pinned, so the cost is
 * one straggler spared the final SIGKILL, never a signal to a stranger.
 */
static bool group_has_live_members(pid_t pgid)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return true; /* cannot tell: assume so, the grace timer settles it */
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t p = (pid_t)strtol(e->d_name, NULL, 10);
        if (p == pgid || getpgid(p) != pgid)
            continue;
        struct proc_stat ps;
        found = proc_stat_read(p, &ps) == 0 && ps.pgrp == pgid && !state_dead(ps.state);
    }
    closedir(d);
    return found;
}

/* ---- signalling ----------------------------------------------------------------------- */

/*
 * Signal the run's group.  Safe by the pinning argument at the top: our own leader is not
 * reaped yet (asserted); an adopted leader is checked alive just before.
 */
static void signal_group(struct exec_run *r, int sig)
{
    assert(!r->reaped);
    if (r->reaped)
        return;
    if (r->adopted && pidfd_exited(r->pidfd))
        return;
    (void)kill(-r->pid, sig); /* ESRCH: the group is gone already, which is fine */
}

static void send_kill(struct exec_run *r)
{
    r->kill_sent = true;
    uv_timer_stop(&r->grace);
    signal_group(r, SIGKILL);
}

/* ---- teardown ------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct exec_run *r = h->data;
    if (--r->closing == 0)
        free(r);
}

static void teardown(struct exec_run *r)
{
    assert(r->phase != PHASE_CLOSED);
    r->phase = PHASE_CLOSED;
    if (r->poll_inited)
        uv_poll_stop(&r->poll); /* removes the fd from epoll before the close below */
    if (r->pidfd >= 0)
        close(r->pidfd);
    r->pidfd = -1;
    if (r->out_fd >= 0)
        close(r->out_fd);
    r->out_fd = -1;
    r->closing = r->poll_inited ? 3 : 2;
    if (r->poll_inited)
        uv_close((uv_handle_t *)&r->poll, on_handle_closed);
    uv_close((uv_handle_t *)&r->trim, on_handle_closed);
    uv_close((uv_handle_t *)&r->grace, on_handle_closed);
}

/* Reap a lingering zombie leader for good. */
static void reap_now(struct exec_run *r)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si, WEXITED | WNOHANG);
    while (rc < 0 && errno == EINTR);
    r->reaped = true;
}

static uint64_t trim_output(struct exec_run *r);

/* ---- callbacks ------------------------------------------------------------------------ */

static void on_grace_end(uv_timer_t *t)
{
    struct exec_run *r = t->data;
    send_kill(r);
    if (r->phase == PHASE_LINGER) {
        exec_trim_output(r); /* stragglers may have written since done */
        reap_now(r);
        teardown(r);
    }
    /* PHASE_RUN: the leader's exit (now imminent) arrives through the pidfd. */
}

/* While a run lasts: trim its output.  While its leader lingers: also end the linger as
 * soon as the rest of the group has died of the TERM, rather than at the end of the grace
 * (which would hold a zombie, the run's handles and a stopping server's loop that long). */
static void on_trim_tick(uv_timer_t *t)
{
    struct exec_run *r = t->data;
    exec_trim_output(r);
    if (r->phase == PHASE_LINGER && !group_has_live_members(r->pid)) {
        reap_now(r);
        teardown(r);
    }
}

static void on_exit_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct exec_run *r = h->data;
    if (r->phase != PHASE_RUN)
        return;

    /* Keep the leader as a zombie while a TERM grace runs, so the group can still be killed. */
    bool hold = !r->adopted && r->term_sent && !r->kill_sent;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)r->pidfd, &si,
                    WEXITED | WNOHANG | (hold ? WNOWAIT : 0));
    while (rc < 0 && errno == EINTR);
    if (rc == 0 && si.si_pid == 0)
        return; /* not ended after all: keep watching */
    if (rc == 0 && hold && !group_has_live_members(r->pid)) {
        reap_now(r); /* nothing left to kill: no need to wait for the grace */
        hold = false;
    }

    struct exec_result res = {.exit_code = -1};
    if (rc < 0) {
        /* ECHILD: adopted, someone else reaps it; the pidfd said it ended. */
        res.unknown = true;
        hold = false;
    } else if (si.si_code == CLD_EXITED) {
        res.exit_code = si.si_status;
    } else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        res.signal = si.si_status;
    } else {
        res.unknown = true; /* stopped/continued cannot come with WEXITED only */
    }
    if (!hold)
        r->reaped = true;
    uv_poll_stop(&r->poll);

    res.out_total = trim_output(r);
    res.output_untrimmed = r->untrimmed;
    res.ended_ms = wall_ms();

    r->phase = hold ? PHASE_LINGER : PHASE_DONE;
    if (hold)
        uv_timer_start(&r->trim, on_trim_tick, LINGER_CHECK_MS, LINGER_CHECK_MS);
    r->cb(r, &res, r->arg);
    if (!hold)
        teardown(r);
    /* else: the group empties (on_trim_tick), or on_grace_end sends it SIGKILL; either
     * reaps the leader and tears down */
}

/* ---- start / adopt -------------------------------------------------------------------- */

static int run_alloc(uv_loop_t *loop, size_t cap, exec_done_cb cb, void *arg, struct exec_run **out,
                     struct ty_err *err)
{
    struct exec_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return FAIL(err, TY_ENOMEM, NULL, "exec: out of memory");
    r->loop = loop;
    r->pidfd = -1;
    r->out_fd = -1;
    r->cap = cap;
    r->cb = cb;
    r->arg = arg;
    r->phase = PHASE_RUN;
    *out = r;
    return 0;
}

/*
 * Start watching: the pidfd poll and the trim timer.  Whether it fails or not, the handles
 * now exist, so r is released through teardown from here on, never with a plain free.
 */
static int run_watch(struct exec_run *r, struct ty_err *err)
{
    uv_timer_init(r->loop, &r->trim);
    r->trim.data = r;
    uv_timer_init(r->loop, &r->grace);
    r->grace.data = r;
    int rc = uv_poll_init(r->loop, &r->poll, r->pidfd);
    if (rc == 0) {
        r->poll_inited = true;
        r->poll.data = r;
        rc = uv_poll_start(&r->poll, UV_READABLE, on_exit_readable);
    }
    if (rc < 0)
        return FAIL(err, TY_EIO, NULL, "exec: watching pid %d: %s", (int)r->pid, uv_strerror(rc));
    if (r->out_fd >= 0)
        uv_timer_start(&r->trim, on_trim_tick, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
    return 0;
}

/* A resolved run-as user: everything the forked child needs, computed in the parent. */
struct run_as {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t *groups;
};

static int resolve_user(const char *name, struct run_as *ra, bool *needed, struct ty_err *err)
{
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bufsz = sz > 0 ? (size_t)sz : 16384;
    char *buf = NULL;
    struct passwd pw, *found = NULL;
    int rc;
    for (;;) {
        char *nb = realloc(buf, bufsz);
        if (nb == NULL) {
            free(buf);
            return FAIL(err, TY_ENOMEM, "user", "user %s: out of memory", name);
        }
        buf = nb;
        rc = getpwnam_r(name, &pw, buf, bufsz, &found);
        if (rc != ERANGE || bufsz > (1u << 20))
            break;
        bufsz *= 2;
    }
    if (found == NULL) {
        free(buf);
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return FAIL(err, TY_ENOENT, "user", "user %s: no such user", name);
        return OS_FAIL(err, rc, "user", "user %s: looking it up", name);
    }
    ra->uid = pw.pw_uid;
    ra->gid = pw.pw_gid;
    ra->ngroups = 0;
    ra->groups = NULL;
    if (pw.pw_uid == geteuid() && pw.pw_gid == getegid()) {
        *needed = false; /* already that user: posix_spawn does it */
        free(buf);
        return 0;
    }
    if (geteuid() != 0) {
        free(buf);
        return FAIL(err, TY_EBUSY, "user",
                    "user %s: running a job as another user needs the server to run as root", name);
    }
    *needed = true;
    /* initgroups() is not async-signal-safe: the list is computed here, set in the child */
    int n = 64;
    for (;;) {
        gid_t *g = realloc(ra->groups, (size_t)n * sizeof *g);
        if (g == NULL) {
            free(ra->groups);
            ra->groups = NULL;
            free(buf);
            return FAIL(err, TY_ENOMEM, "user", "user %s: out of memory", name);
        }
        ra->groups = g;
        int want = n;
        if (getgrouplist(pw.pw_name, pw.pw_gid, ra->groups, &want) >= 0) {
            ra->ngroups = want;
            break;
        }
        if (want > n && want <= 65536) {
            n = want;
        } else if (n < 65536) {
            n *= 2;
        } else { /* no sensible answer: the primary group alone */
            ra->groups[0] = pw.pw_gid;
            ra->ngroups = 1;
            break;
        }
    }
    free(buf);
    return 0;
}

/* What the forked child reports through its pipe when it cannot exec. */
enum child_step {
    STEP_SIGNALS = 1,
    STEP_PGID,
    STEP_STDIO,
    STEP_GROUPS,
    STEP_GID,
    STEP_UID,
    STEP_CHDIR,
    STEP_EXEC
};

struct child_failure {
    int step;
    int err;
};

static void child_fail(int errfd, int step)
{
    struct child_failure f = {step, errno};
    ssize_t n;
    do
        n = write(errfd, &f, sizeof f);
    while (n < 0 && errno == EINTR);
    _exit(127);
}

/* The forked child: async-signal-safe calls and raw system calls only. */
__attribute__((noreturn)) static void child_exec(int errfd, int outfd, const struct run_as *ra,
                                                 const char *workdir, char *const argv[],
                                                 char *const envp[])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &sa, NULL); /* glibc's internal signals say EINVAL: fine */
    sigset_t none;
    sigemptyset(&none);
    if (setpgid(0, 0) < 0)
        child_fail(errfd, STEP_PGID);
    int nullfd = open("/dev/null", O_RDONLY);
    if (nullfd < 0 || (nullfd != 0 && dup2(nullfd, 0) < 0) || dup2(outfd, 1) < 0 ||
        dup2(outfd, 2) < 0)
        child_fail(errfd, STEP_STDIO);
    /* raw calls: glibc's wrappers would try to broadcast to threads the child does not have */
    if (syscall(SYS_setgroups, (long)ra->ngroups, ra->groups) < 0)
        child_fail(errfd, STEP_GROUPS);
    if (syscall(SYS_setgid, (long)ra->gid) < 0)
        child_fail(errfd, STEP_GID);
    if (syscall(SYS_setuid, (long)ra->uid) < 0)
        child_fail(errfd, STEP_UID);
    if (workdir != NULL && chdir(workdir) < 0) /* as the user: its permissions apply */
        child_fail(errfd, STEP_CHDIR);
    /* everything from 3 up closes at exec: errfd too, which tells the parent "exec worked" */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = 3; fd < 65536; fd++)
            if (fd != errfd)
                (void)close(fd);
    }
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        child_fail(errfd, STEP_SIGNALS);
    execve(SHELL_PATH, argv, envp);
    child_fail(errfd, STEP_EXEC);
    _exit(127); /* not reached */
}

static int spawn_as_user(const struct exec_spec *spec, const struct run_as *ra, int outfd,
                         char *const argv[], char *const envp[], pid_t *pid_out, struct ty_err *err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return OS_FAIL(err, errno, "user", "user %s: pipe", spec->user);
    /* No signal handler of the server may run in the child before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(pfd[1], outfd, ra, spec->workdir, argv, envp);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return OS_FAIL(err, fork_errno, "user", "user %s: fork", spec->user);
    }
    struct child_failure f;
    ssize_t n;
    do
        n = read(pfd[0], &f, sizeof f);
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == 0) {
        *pid_out = pid;
        return 0;
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof f)
        return FAIL(err, TY_EIO, "user", "user %s: the child failed before exec", spec->user);
    switch (f.step) {
    case STEP_CHDIR: return OS_FAIL(err, f.err, "workdir", "working directory %s", spec->workdir);
    case STEP_EXEC: return OS_FAIL(err, f.err, "command", "%s", SHELL_PATH);
    case STEP_GROUPS: return OS_FAIL(err, f.err, "user", "user %s: setgroups", spec->user);
    case STEP_GID: return OS_FAIL(err, f.err, "user", "user %s: setgid", spec->user);
    case STEP_UID: return OS_FAIL(err, f.err, "user", "user %s: setuid", spec->user);
    case STEP_STDIO: return OS_FAIL(err, f.err, "command", "redirecting stdin/stdout/stderr");
    default: return OS_FAIL(err, f.err, "command", "preparing the child process");
    }
}

static int spawn_plain(const struct exec_spec *spec, int outfd, char *const argv[],
                       char *const envp[], pid_t *pid_out, struct ty_err *err)
{
    int dirfd = -1;
    if (spec->workdir != NULL) {
        /* Opened here so a bad directory is named exactly, before any process exists. */
        dirfd = fd_above_stdio(open(spec->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (dirfd < 0)
            return OS_FAIL(err, errno, "workdir", "working directory %s", spec->workdir);
    }
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        close_keep_errno(dirfd);
        return OS_FAIL(err, rc, "command", "posix_spawn");
    }
    rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) {
        posix_spawnattr_destroy(&attr);
        close_keep_errno(dirfd);
        return OS_FAIL(err, rc, "command", "posix_spawn");
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                             POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, outfd, 2);
    if (rc == 0 && dirfd >= 0)
        rc = posix_spawn_file_actions_addfchdir_np(&fa, dirfd);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = -1;
    if (rc == 0)
        rc = posix_spawn(&pid, SHELL_PATH, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_keep_errno(dirfd);
    if (rc == 0) {
        *pid_out = pid;
        return 0;
    }
    /* glibc has reaped the failed child.  Which action failed: the directory, or the exec? */
    if (spec->workdir != NULL && access(spec->workdir, X_OK) < 0)
        return OS_FAIL(err, errno, "workdir", "working directory %s", spec->workdir);
    return OS_FAIL(err, rc, "command", "%s", SHELL_PATH);
}

/*
 * Create the output file, or take over the recycled one the caller offers: renaming an
 * empty file into place spares the file system an inode allocation per run, which on
 * ext4 without a journal costs about half a millisecond soon after other files were
 * deleted.  RENAME_NOREPLACE keeps the O_EXCL guarantee: an existing output file is never
 * reused.  Returns the descriptor, or -1 with errno set.
 */
static int open_output(const struct exec_spec *spec)
{
    if (spec->recycle_path != NULL && renameat2(AT_FDCWD, spec->recycle_path, AT_FDCWD,
                                                spec->output_path, RENAME_NOREPLACE) == 0) {
        int fd = fd_above_stdio(open(spec->output_path, O_WRONLY | O_APPEND | O_CLOEXEC));
        if (fd >= 0 && ftruncate(fd, 0) == 0)
            return fd;
        int e = errno;
        if (fd >= 0)
            close(fd);
        (void)unlink(spec->output_path);
        errno = e;
        return -1;
    }
    return fd_above_stdio(
        open(spec->output_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
}

int exec_start(uv_loop_t *loop, const struct exec_spec *spec, exec_done_cb cb, void *arg,
               struct exec_run **out, struct ty_err *err)
{
    assert(loop != NULL && spec != NULL && cb != NULL && out != NULL);
    *out = NULL;
    if (spec->command == NULL)
        return FAIL(err, TY_EINVAL, "command", "command: missing");
    if (spec->output_path == NULL || spec->output_path[0] == '\0')
        return FAIL(err, TY_EINVAL, "output_path", "output_path: missing");

    struct run_as ra = {0};
    bool switch_user = false;
    int rc;
    if (spec->user != NULL && (rc = resolve_user(spec->user, &ra, &switch_user, err)) < 0)
        return rc;

    struct exec_run *r;
    if ((rc = run_alloc(loop, spec->output_cap, cb, arg, &r, err)) < 0) {
        free(ra.groups);
        return rc;
    }
    r->out_fd = open_output(spec);
    if (r->out_fd < 0) {
        rc = OS_FAIL(err, errno, "output_path", "output file %s", spec->output_path);
        free(ra.groups);
        goto fail_nofile;
    }

    static char *const empty_env[] = {NULL};
    char *const argv[] = {"sh", "-c", (char *)spec->command, NULL};
    char *const *envp = spec->envp ? (char *const *)spec->envp : empty_env;
    pid_t pid = -1;
    if (switch_user)
        rc = spawn_as_user(spec, &ra, r->out_fd, argv, envp, &pid, err);
    else
        rc = spawn_plain(spec, r->out_fd, argv, envp, &pid, err);
    free(ra.groups);
    ra.groups = NULL;
    if (rc < 0)
        goto fail;
    r->pid = pid;

    /* The child is ours and unreaped, so the pid cannot be reused under pidfd_open. */
    r->pidfd = sys_pidfd_open(pid, PIDFD_NONBLOCK);
    struct proc_stat ps = {0};
    int prc = r->pidfd < 0 ? neg_errno() : proc_stat_read(pid, &ps);
    if (prc < 0) {
        rc = OS_FAIL(err, -prc, "command", "exec: watching pid %d", (int)pid);
        goto fail_child;
    }
    r->pid_start = ps.start;
    if ((rc = run_watch(r, err)) < 0) {
        /* handles were initialised: kill + reap, then close them through teardown */
        (void)kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        r->reaped = true;
        (void)unlink(spec->output_path);
        teardown(r);
        return rc;
    }
    *out = r;
    return 0;

fail_child:
    (void)kill(-pid, SIGKILL); /* our unreaped child: the pgid is pinned */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
fail:
    close(r->out_fd);
    (void)unlink(spec->output_path); /* ours: created (O_EXCL) or renamed into place */
fail_nofile:
    if (r->pidfd >= 0)
        close(r->pidfd);
    free(r);
    return rc;
}

int exec_adopt(uv_loop_t *loop, pid_t pid, uint64_t pid_start, const char *output_path,
               size_t output_cap, exec_done_cb cb, void *arg, struct exec_run **out,
               struct ty_err *err)
{
    assert(loop != NULL && cb != NULL && out != NULL);
    *out = NULL;
    if (pid <= 0)
        return FAIL(err, TY_ENOENT, "pid", "process %d: no such process", (int)pid);
    int pidfd = sys_pidfd_open(pid, PIDFD_NONBLOCK);
    if (pidfd < 0) {
        if (errno == ESRCH)
            return FAIL(err, TY_ENOENT, "pid", "process %d: no such process", (int)pid);
        return OS_FAIL(err, errno, "pid", "process %d: pidfd_open", (int)pid);
    }
    /*
     * Checked after pidfd_open: if /proc shows the recorded start now, the pidfd (taken
     * earlier) cannot be another process, since that one would have to have died and the
     * older recorded one come back.
     */
    struct proc_stat ps;
    if (proc_stat_read(pid, &ps) < 0 || ps.start != pid_start || state_dead(ps.state)) {
        close(pidfd);
        return FAIL(err, TY_ENOENT, "pid",
                    "process %d: gone (no live process with start time %llu)", (int)pid,
                    (unsigned long long)pid_start);
    }
    struct exec_run *r;
    int rc = run_alloc(loop, output_cap, cb, arg, &r, err);
    if (rc < 0) {
        close(pidfd);
        return rc;
    }
    r->adopted = true;
    r->pid = pid;
    r->pid_start = pid_start;
    r->pidfd = pidfd;
    if (output_path != NULL) {
        /* no O_APPEND needed: only punched, never written; a missing file is not trimmed */
        r->out_fd = fd_above_stdio(open(output_path, O_WRONLY | O_CLOEXEC));
    }
    if ((rc = run_watch(r, err)) < 0) {
        r->reaped = true; /* never signal it from here on */
        teardown(r);
        return rc;
    }
    *out = r;
    return 0;
}

pid_t exec_pid(const struct exec_run *r)
{
    return r->pid;
}

uint64_t exec_pid_start(const struct exec_run *r)
{
    return r->pid_start;
}

void exec_kill(struct exec_run *r, uint32_t grace_ms)
{
    if (r->phase != PHASE_RUN || r->kill_sent || r->reaped)
        return;
    uint64_t now = uv_now(r->loop);
    if (grace_ms == 0) {
        send_kill(r);
        return;
    }
    if (!r->term_sent) {
        r->term_sent = true;
        signal_group(r, SIGTERM);
        signal_group(r, SIGCONT); /* a stopped group would never see the TERM */
    } else if (now + grace_ms >= r->kill_deadline) {
        return; /* only ever shortened */
    }
    r->kill_deadline = now + grace_ms;
    uv_timer_start(&r->grace, on_grace_end, grace_ms, 0);
}

int exec_kill_orphan(pid_t pid, uint64_t pid_start)
{
    if (pid <= 1)
        return TY_ENOENT;
    int pidfd = sys_pidfd_open(pid, PIDFD_NONBLOCK);
    if (pidfd < 0)
        return TY_ENOENT;
    /*
     * A zombie leader still pins the pgid (its number cannot be reused while it exists), so
     * the group may be killed then too: that is how its stragglers are reached when the
     * leader died unreaped.
     */
    struct proc_stat ps;
    int rc = proc_stat_read(pid, &ps);
    if (rc < 0 || ps.start != pid_start) {
        close(pidfd);
        return TY_ENOENT;
    }
    (void)kill(-pid, SIGKILL);
    close(pidfd);
    return 0;
}

/*
 * Punch out what the cap no longer keeps; returns the file's logical size (0 without a
 * file).  The block size comes from the same fstat: a punch must end on a block boundary,
 * or the partial block stays allocated and SEEK_DATA would report it (as zeros) as data.
 */
static uint64_t trim_output(struct exec_run *r)
{
    struct stat st;
    if (r->out_fd < 0 || fstat(r->out_fd, &st) < 0)
        return 0;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
    if (r->untrimmed || size <= r->cap)
        return size;
    uint64_t target = (size - r->cap) / blk * blk;
    if (target <= r->punched)
        return size;
    if (fallocate(r->out_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)r->punched,
                  (off_t)(target - r->punched)) == 0) {
        r->punched = target;
    } else if (errno == EOPNOTSUPP || errno == ENOSYS) {
        r->untrimmed = true; /* see the top of the file: kept whole, and reported */
        uv_timer_stop(&r->trim);
    }
    /* other errors (EIO, EINTR): the next tick tries again */
    return size;
}

void exec_trim_output(struct exec_run *r)
{
    (void)trim_output(r);
}

/* ---- readers (thread-safe: plain file reads) ------------------------------------------ */

/* First byte at or after `from` that is not in a hole; `size` when none is. */
static uint64_t data_start(int fd, uint64_t from, uint64_t size)
{
    if (from >= size)
        return size;
    off_t d = lseek(fd, (off_t)from, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO ? size : from; /* ENXIO: only holes from there on */
    return (uint64_t)d;
}

static int read_open(const char *path, int *fd, uint64_t *size, struct ty_err *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        if (errno == ENOENT)
            return FAIL(err, TY_ENOENT, "output_path", "output file %s: %s", path, strerror(errno));
        return OS_FAIL(err, errno, "output_path", "output file %s", path);
    }
    struct stat st;
    if (fstat(*fd, &st) < 0) {
        int rc = OS_FAIL(err, errno, "output_path", "output file %s", path);
        close(*fd);
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/*
 * Read [*start, end) into buf; then drop from the front whatever a concurrent trim punched
 * meanwhile (it would have read as zeros), moving *start forward.  Returns bytes kept.
 */
static int read_range(int fd, const char *path, uint64_t *start, uint64_t end, char *buf,
                      size_t *len, struct ty_err *err)
{
    size_t want = (size_t)(end - *start), got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, (off_t)(*start + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return OS_FAIL(err, errno, "output_path", "output file %s", path);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    uint64_t d = data_start(fd, *start, *start + got);
    if (d > *start) {
        size_t drop = (size_t)(d - *start);
        memmove(buf, buf + drop, got - drop);
        got -= drop;
        *start = d;
    }
    *len = got;
    return 0;
}

int exec_read_tail(const char *path, size_t cap, char *buf, size_t *len, uint64_t *skipped,
                   struct ty_err *err)
{
    int fd;
    uint64_t size;
    *len = 0;
    *skipped = 0;
    int rc = read_open(path, &fd, &size, err);
    if (rc < 0)
        return rc;
    uint64_t start = size > cap ? size - cap : 0;
    uint64_t d = data_start(fd, start, size);
    if (d > start)
        start = d;
    rc = read_range(fd, path, &start, size, buf, len, err);
    close(fd);
    *skipped = start;
    return rc;
}

int exec_read_from(const char *path, uint64_t from, char *buf, size_t cap, size_t *len,
                   uint64_t *from_out, uint64_t *total, struct ty_err *err)
{
    int fd;
    uint64_t size;
    *len = 0;
    *from_out = from;
    *total = 0;
    int rc = read_open(path, &fd, &size, err);
    if (rc < 0)
        return rc;
    *total = size;
    uint64_t start = from;
    if (start < size) {
        start = data_start(fd, start, size);
        uint64_t end = size - start > cap ? start + cap : size;
        rc = read_range(fd, path, &start, end, buf, len, err);
    }
    close(fd);
    *from_out = start;
    return rc;
}

bool exec_proc_alive(pid_t pid, uint64_t start)
{
    struct proc_stat ps;
    if (pid <= 0 || proc_stat_read(pid, &ps) < 0)
        return false;
    return ps.start == start && !state_dead(ps.state);
}

uint64_t exec_proc_start(pid_t pid)
{
    struct proc_stat ps;
    if (pid <= 0 || proc_stat_read(pid, &ps) < 0 || state_dead(ps.state))
        return 0;
    return ps.start;
}

int exec_boot_id(char *buf, size_t cap, struct ty_err *err)
{
    static const char path[] = "/proc/sys/kernel/random/boot_id";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return OS_FAIL(err, errno, NULL, "%s", path);
    char tmp[64];
    ssize_t n;
    do
        n = read(fd, tmp, sizeof tmp - 1);
    while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0)
        return OS_FAIL(err, e, NULL, "%s", path);
    while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' '))
        n--;
    tmp[n] = '\0';
    if (n == 0)
        return FAIL(err, TY_EIO, NULL, "%s: empty", path);
    if ((size_t)n >= cap)
        return FAIL(err, TY_EINVAL, NULL, "boot id: buffer of %zu bytes is too small", cap);
    memcpy(buf, tmp, (size_t)n + 1);
    return 0;
}
