/*
 * exec.h - running one shell command as a run: spawn, watch, capture, kill.
 *
 * A run is `/bin/sh -c COMMAND` started with posix_spawn in its own process group, stdin
 * from /dev/null, stdout and stderr appended to one output file (so the run survives its
 * server: a pipe would break with the server and kill the job with SIGPIPE).  The file
 * never holds more than about `output_cap` bytes on disk: older output is punched out
 * (fallocate PUNCH_HOLE), so offsets stay stable for followers and the tail is what is
 * kept.  The exit is noticed through a pidfd watched by the libuv loop, so there is no
 * SIGCHLD handler and no polling.
 *
 * Everything here runs on the loop thread that owns the uv_loop_t; nothing is
 * thread-safe unless it says so.  Handles are owned by the caller of exec_start until the
 * done callback has returned.
 */
#ifndef EXEC_H
#define EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "../core/ty_err.h"

struct exec_spec {
    const char *command;      /* run by /bin/sh -c */
    const char *const *envp;  /* the complete environment, NULL-terminated */
    const char *workdir;      /* NULL: the server's working directory */
    const char *user;         /* NULL: do not change user; else a user name (needs root) */
    const char *output_path;  /* file to create (O_EXCL) for stdout+stderr */
    const char *recycle_path; /* NULL, or a spare file to rename to output_path instead of
                                 creating one (emptied; consumed when exec_start succeeds,
                                 and on failure too: the caller must not reuse it) */
    size_t output_cap;        /* bytes of output to keep */
};

/* How a process ended. */
struct exec_result {
    int exit_code;         /* 0-255, or -1 when killed by a signal or unknown */
    int signal;            /* the signal that killed it, or 0 */
    bool unknown;          /* adopted process: it ended but its status cannot be known */
    int64_t ended_ms;      /* wall clock */
    uint64_t out_total;    /* bytes the process wrote in all (kept or not) */
    bool output_untrimmed; /* the file system cannot punch holes: the cap was not enforced */
};

struct exec_run;

/* Called once, on the loop thread, when the process has ended; r is freed after it. */
typedef void (*exec_done_cb)(struct exec_run *r, const struct exec_result *res, void *arg);

/*
 * Start a run.  On success *out is the handle and the process is running: exec_pid and
 * exec_pid_start identify it.  Fails, with nothing left behind (no process, no file), with
 * TY_EIO (the output file or the spawn failed: the message says which, e.g. "working
 * directory /x: No such file or directory"), TY_ENOENT (unknown user), TY_EBUSY (a user
 * was given but the server is not root), TY_ENOSPC (disk full), TY_ENOMEM.
 */
int exec_start(uv_loop_t *loop, const struct exec_spec *spec, exec_done_cb cb, void *arg,
               struct exec_run **out, struct ty_err *err);

/*
 * Watch a process this server did not start (found alive after a restart): its exit is
 * reported through cb with res->unknown set.  pid and start must match /proc (see
 * exec_proc_alive); output_path is the run's existing output file, whose cap keeps being
 * enforced.  Fails with TY_ENOENT when the process is gone.
 */
int exec_adopt(uv_loop_t *loop, pid_t pid, uint64_t pid_start, const char *output_path,
               size_t output_cap, exec_done_cb cb, void *arg, struct exec_run **out,
               struct ty_err *err);

pid_t exec_pid(const struct exec_run *r);
uint64_t exec_pid_start(const struct exec_run *r);

/*
 * Stop the run's whole process group: SIGTERM (and SIGCONT) now, SIGKILL after grace_ms if
 * anything of the group is still alive (grace_ms 0: SIGKILL at once).  The done callback
 * still comes when the main process has ended; if that is before the grace ends while other
 * processes of the group live on, they still get SIGKILL when it ends, after the callback
 * (the exited leader is kept as a zombie until then, so its group id cannot be reused): run
 * the loop until it has no active handles before the process exits.  Calling it again only
 * shortens the grace.
 */
void exec_kill(struct exec_run *r, uint32_t grace_ms);

/*
 * Kill a process group by its leader's pid, for processes found after a restart:
 * SIGKILL to the group when pid/start still match /proc.  Returns 0 or TY_ENOENT.
 */
int exec_kill_orphan(pid_t pid, uint64_t pid_start);

/* Enforce the output cap now (also done on a timer while the run lasts). */
void exec_trim_output(struct exec_run *r);

/*
 * Read up to cap bytes of an output file's tail that are still kept, into buf (not
 * NUL-terminated); *len gets the bytes read, *skipped how many earlier bytes are not in buf
 * (dropped by the run's cap, or beyond this read's cap): the logical offset of buf[0].
 * Never returns the zeros of a punched hole.  Thread-safe (plain file reads).  TY_ENOENT
 * when the file is gone.
 */
int exec_read_tail(const char *path, size_t cap, char *buf, size_t *len, uint64_t *skipped,
                   struct ty_err *err);

/*
 * Read output from logical offset `from` (bytes since the run began): *len bytes into
 * buf[cap]; if the cap dropped bytes at `from`, reading starts at the first kept byte and
 * *from_out says where.  *total gets the file's logical size.  Thread-safe.
 */
int exec_read_from(const char *path, uint64_t from, char *buf, size_t cap, size_t *len,
                   uint64_t *from_out, uint64_t *total, struct ty_err *err);

/*
 * Whether process pid exists and started at `start` (field 22 of /proc/pid/stat), so a
 * recorded pid is not confused with a new process that reused the number.
 */
bool exec_proc_alive(pid_t pid, uint64_t start);

/* The start time (field 22 of /proc/pid/stat) of live process pid, for recognising it
 * later with exec_proc_alive; 0 when there is no such process (or it is a zombie). */
uint64_t exec_proc_start(pid_t pid);

/* This machine's boot id (/proc/sys/kernel/random/boot_id), into buf[cap]. */
int exec_boot_id(char *buf, size_t cap, struct ty_err *err);

#endif
