/*
 * outputs.c - runs' output files: where they live, how they are read, and their reuse.
 *
 * A run writes to DATA/runs/<run id>.out; it is the executor's, on the executor's host,
 * so reading it (run logs, a followed log) is a request to the executor, answered on the
 * caller's thread with plain file reads (never the loop's: an overloaded loop must not
 * delay a read).
 *
 * Creating a file soon after others were deleted is slow on some file systems (ext4
 * without a journal: ~0.5 ms), which would cap the runs per second, so a finished run's
 * file is emptied and kept as a spare for a later run instead of deleted, ten seconds
 * after the run ended (a follower may still read its last bytes).  Files of runs that
 * ended more than a minute ago and were not reused are swept, but only while the spool
 * has handed everything to the store: until then the file may hold the only copy.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../os/log.h"
#include "executor_impl.h"

#define POOL_MAX         65536
#define RECYCLE_AFTER_MS 10000

void executor__output_path(const struct executor *x, const char *run_id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s.out", x->runs_dir, run_id);
}

const char *executor__spare_output(struct executor *x, char *buf, size_t cap)
{
    if (x->pool_len == 0)
        return NULL;
    snprintf(buf, cap, "%s/pool/p%u", x->runs_dir, x->pool[--x->pool_len]);
    return buf;
}

void executor__output_done(struct executor *x, const char *run_id)
{
    if (x->rc_len == x->rc_cap) {
        size_t cap = x->rc_cap ? x->rc_cap * 2 : 1024;
        struct recycle *n = malloc(cap * sizeof *n);
        if (n == NULL)
            return; /* the file is left for the sweep */
        for (size_t i = 0; i < x->rc_len; i++)
            n[i] = x->recycle[(x->rc_head + i) % x->rc_cap];
        free(x->recycle);
        x->recycle = n;
        x->rc_cap = cap;
        x->rc_head = 0;
    }
    struct recycle *r = &x->recycle[(x->rc_head + x->rc_len++) % x->rc_cap];
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    r->ended_ms = executor__now_ms(x);
}

static void pool_push(struct executor *x, uint32_t n)
{
    if (x->pool_len == x->pool_cap) {
        size_t cap = x->pool_cap ? x->pool_cap * 2 : 1024;
        uint32_t *p = realloc(x->pool, cap * sizeof *p);
        if (p == NULL)
            return;
        x->pool = p;
        x->pool_cap = cap;
    }
    x->pool[x->pool_len++] = n;
}

/* Whether everything the spool holds is in the store (so no output file is the only
 * copy of a run's output). */
static bool spool_clear(struct executor *x)
{
    struct spool_status st;
    spool_status(x->spool, &st);
    return st.pending == 0 || !st.failing;
}

/* Turn the output files of runs that ended RECYCLE_AFTER_MS ago into spares. */
static void on_recycle_timer(uv_timer_t *t)
{
    struct executor *x = t->data;
    if (x->rc_len == 0 || !spool_clear(x))
        return;
    int64_t cutoff = executor__now_ms(x) - RECYCLE_AFTER_MS;
    char from[4096], to[4096];
    while (x->rc_len > 0 && x->recycle[x->rc_head].ended_ms <= cutoff) {
        struct recycle *r = &x->recycle[x->rc_head];
        executor__output_path(x, r->run_id, from, sizeof from);
        x->rc_head = (x->rc_head + 1) % x->rc_cap;
        x->rc_len--;
        if (x->pool_len >= POOL_MAX) {
            unlink(from);
            continue;
        }
        uint32_t n = x->pool_seq++;
        snprintf(to, sizeof to, "%s/pool/p%u", x->runs_dir, n);
        if (truncate(from, 0) == 0 && rename(from, to) == 0)
            pool_push(x, n);
        else
            unlink(from);
    }
}

/* Empty the file `name` in directory dfd; true when it is now empty. */
static bool truncateat_ok(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool ok = ftruncate(fd, 0) == 0;
    close(fd);
    return ok;
}

/* At start: the spares left by the previous process. */
static void pool_load(struct executor *x)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/pool", x->runs_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        if (de->d_name[0] != 'p')
            continue;
        unsigned long n = strtoul(de->d_name + 1, &end, 10);
        if (*end != '\0' || n > UINT32_MAX)
            continue;
        if (x->pool_len < POOL_MAX && truncateat_ok(dirfd(d), de->d_name))
            pool_push(x, (uint32_t)n);
        else
            unlinkat(dirfd(d), de->d_name, 0);
        if (n >= x->pool_seq)
            x->pool_seq = (uint32_t)n + 1;
    }
    closedir(d);
}

/* Remove the output files of runs that ended more than a minute ago (see the top). */
static void on_sweep_timer(uv_timer_t *t)
{
    struct executor *x = t->data;
    if (!spool_clear(x))
        return;
    DIR *d = opendir(x->runs_dir);
    if (d == NULL)
        return;
    time_t cutoff = time(NULL) - 60;
    struct dirent *de;
    size_t removed = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".out") != 0 || n - 4 >= STORE_ID_MAX)
            continue;
        char id[STORE_ID_MAX];
        memcpy(id, de->d_name, n - 4);
        id[n - 4] = '\0';
        if (strmap_get(&x->runs, id) != NULL)
            continue; /* still queued or running */
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_mtime < cutoff &&
            unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0)
        log_debug("output files removed", "files=%zu", removed);
}

void executor__outputs_start(struct executor *x)
{
    pool_load(x);
    uv_timer_init(&x->loop, &x->recycle_timer);
    uv_timer_init(&x->loop, &x->sweep_timer);
    x->recycle_timer.data = x->sweep_timer.data = x;
    uv_timer_start(&x->recycle_timer, on_recycle_timer, 1000, 1000);
    uv_timer_start(&x->sweep_timer, on_sweep_timer, 60000, 300000);
}

/*
 * COORD_OUTPUT, on the caller's thread: up to req->max bytes from logical offset
 * req->offset of the run's output file (exec_read_from: reading starts at the first kept
 * byte when the cap dropped the ones asked for).  TY_ENOENT when the file is gone (the
 * run ended a while ago: its record keeps the tail).
 */
void executor__read_output(struct executor *x, struct coord_request *req)
{
    char path[4096];
    size_t max = req->max > 0 && req->max <= (1u << 20) ? req->max : 65536;
    struct coord_reply *rep = &req->reply;
    bool ok = strlen(req->name) < STORE_ID_MAX && strchr(req->name, '/') == NULL &&
              req->name[0] != '.' && req->name[0] != '\0';
    rep->data = ok ? malloc(max) : NULL;
    if (!ok) {
        rep->rc =
            ty_error(&rep->err, TY_EINVAL, "run_id", -1, 0, "not a run id: \"%.40s\"", req->name);
    } else if (rep->data == NULL) {
        rep->rc = ty_error(&rep->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    } else {
        executor__output_path(x, req->name, path, sizeof path);
        rep->rc = exec_read_from(path, req->offset, rep->data, max, &rep->len, &rep->from,
                                 &rep->total, &rep->err);
    }
    rep->spool_seq = spool_last_seq(x->spool);
    req->done(req);
}

void executor__output_tail(struct executor *x, const char *run_id, size_t cap,
                           const struct mask_set *masks, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    char path[4096];
    executor__output_path(x, run_id, path, sizeof path);
    char *out = malloc(cap ? cap : 1);
    uint64_t skipped = 0;
    struct ty_err err;
    if (out == NULL || exec_read_tail(path, cap, out, len, &skipped, &err) != 0 || *len == 0) {
        free(out);
        *len = 0;
        return;
    }
    if (masks == NULL) {
        *buf = out;
        return;
    }
    struct strbuf sb;
    sb_init(&sb);
    if (mask_apply(masks, out, *len, skipped > 0, &sb) != 0) {
        log_error("out of memory while hiding secrets; the run's output is not recorded", "run=%s",
                  run_id);
        sb_free(&sb);
        free(out);
        *len = 0;
        return;
    }
    free(out);
    size_t most = (size_t)STORE_OUTPUT_MAX;
    if (sb.len > most) { /* masks are longer than short values: keep the tail */
        memmove(sb.buf, sb.buf + sb.len - most, most);
        sb_truncate(&sb, most);
    }
    *len = sb.len;
    *buf = sb_detach(&sb);
}
