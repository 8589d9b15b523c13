/*
 * server.c - the embedded server's lifecycle and its threads' plumbing.
 *
 * Start: refuse a listen address off loopback without TLS (the bearer token would cross
 * the network in clear), take the data directory's lock (a second server on it refuses to
 * start), read or create the API token, open the store and bump the fencing epoch, load calendars,
 * domains and jobs, reconcile runs the previous process left behind (runner_recover),
 * then start the store writer, the trigger engine and the HTTP server, and publish
 * server.json so the CLI can find us.  Run the loop until SIGTERM/SIGINT.
 *
 * Stop: stop firing, stop serving, let running shards finish for the grace period, kill
 * what is left (recorded as interrupted), drain the store writer, remove server.json.
 *
 * The store writer takes queued writes in batches, one transaction each; a batch that
 * fails for lack of space or a busy/unavailable database is kept and retried every two
 * seconds, and the failure is an alert — results are never dropped.
 */
#define _GNU_SOURCE
#include "server_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../api/routes.h"
#include "../core/civil.h"
#include "../os/log.h"
#include "../os/notify.h"
#include "../tzdb/tzdb.h"

/* ---------------------------------------------------------------------------------------
 * Small accessors
 */

static struct server *the_server; /* for uv callbacks that only get a loop */

struct server *server__of_loop(uv_loop_t *loop)
{
    (void)loop;
    return the_server;
}
uv_loop_t *server__loop(struct server *s)
{
    return &s->loop;
}
const struct server_opts *server__opts(const struct server *s)
{
    return &s->opts;
}
int64_t server__epoch(const struct server *s)
{
    return s->epoch;
}
const char *server__boot_id(const struct server *s)
{
    return s->boot_id;
}
const char *server__data_dir(const struct server *s)
{
    return s->data_dir;
}
int64_t server__started_ms(const struct server *s)
{
    return s->started_ms;
}
const char *server__token(const struct server *s)
{
    return s->token;
}
pthread_mutex_t *server__config_lock(struct server *s)
{
    return &s->config_mu;
}
struct store *server__config_store(struct server *s)
{
    return s->config_writer;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t clock_ns(void *arg)
{
    struct server *s = arg;
    return real_ns() + atomic_load(&s->clock_offset_ns);
}

int64_t server__now(const struct server *s)
{
    return clock_ns((void *)s) / 1000000000;
}

int64_t server__now_ms(const struct server *s)
{
    return clock_ns((void *)s) / 1000000;
}

/* ---------------------------------------------------------------------------------------
 * Files in the data directory
 */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int mkdir_p(const char *path, struct ty_err *err)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return ty_error(err, TY_EINVAL, "--data", -1, 0, "--data: path too long");
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return ty_error(err, TY_EIO, "--data", -1, 0, "cannot create %s: %s", buf,
                            strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return ty_error(err, TY_EIO, "--data", -1, 0, "cannot create %s: %s", buf, strerror(errno));
    return 0;
}

/* Write a file atomically (temp + fsync + rename) with the given mode. */
static int write_file(const char *path, const char *text, mode_t mode, struct ty_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return ty_error(err, errno == ENOSPC ? TY_ENOSPC : TY_EIO, NULL, -1, 0,
                        "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int e = errno;
    if (w != (ssize_t)len || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return ty_error(err, e == ENOSPC ? TY_ENOSPC : TY_EIO, NULL, -1, 0, "cannot write %s: %s",
                        tmp, strerror(e ? e : EIO));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot rename %s: %s", tmp, strerror(e));
    }
    return 0;
}

/* One server per data directory: an flock held for the process's life. */
static int take_lock(struct server *s, struct ty_err *err)
{
    char *path = path_join(s->data_dir, "lock");
    if (path == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc =
            ty_error(err, TY_EIO, "--data", -1, 0, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        int rc = ty_error(err, TY_EBUSY, "--data", -1, 0,
                          "data directory %s is in use by another tethys server (pid %s); "
                          "stop it first or use another --data",
                          s->data_dir, pid[0] ? pid : "unknown");
        close(fd);
        free(path);
        return rc;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        log_warn("cannot record the pid in the lock file", "path=%s", path);
    free(path);
    s->lock_fd = fd;
    return 0;
}

/* The API token: read it, or create it (mode 0600) on the first start. */
static int load_token(struct server *s, struct ty_err *err)
{
    char *path = path_join(s->data_dir, "token");
    if (path == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    int rc = 0;
    FILE *fp = fopen(path, "re");
    if (fp != NULL) {
        char line[128] = "";
        if (fgets(line, sizeof line, fp) == NULL)
            line[0] = '\0';
        fclose(fp);
        line[strcspn(line, "\r\n")] = '\0';
        if (strlen(line) < 32 || strlen(line) > 64)
            rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                          "%s does not hold a token (32-64 characters); delete it to have a "
                          "new one made",
                          path);
        else
            snprintf(s->token, sizeof s->token, "%.64s", line); /* checked: 32-64 */
    } else {
        unsigned char raw[32];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
            rc = ty_error(err, TY_EIO, NULL, -1, 0, "getrandom: %s", strerror(errno));
        } else {
            for (size_t i = 0; i < sizeof raw; i++)
                snprintf(s->token + 2 * i, 3, "%02x", raw[i]);
            char text[80];
            snprintf(text, sizeof text, "%s\n", s->token);
            rc = write_file(path, text, 0600, err);
            if (rc == 0)
                log_info("created the API token", "path=%s", path);
        }
    }
    free(path);
    return rc;
}

static void write_server_json(struct server *s)
{
    char *path = path_join(s->data_dir, "server.json");
    json_t *o = json_pack("{s:s, s:I, s:s}", "url", s->url, "pid", (json_int_t)getpid(), "version",
                          TETHYS_VERSION);
    char *text = json_dumps(o, JSON_COMPACT);
    struct ty_err err;
    if (path != NULL && text != NULL && write_file(path, text, 0644, &err) != 0)
        log_warn("cannot write server.json", "error=\"%s\"", err.msg);
    free(text);
    json_decref(o);
    free(path);
}

static void remove_server_json(struct server *s)
{
    char *path = path_join(s->data_dir, "server.json");
    if (path != NULL)
        unlink(path);
    free(path);
}

/* ---------------------------------------------------------------------------------------
 * The store writer thread
 */

static bool retryable(int rc)
{
    return rc == TY_ENOSPC || rc == TY_EIO || rc == TY_EBUSY || rc == TY_EUNAVAIL;
}

static int apply_wop(struct server *s, struct wop *w, struct ty_err *err)
{
    switch (w->kind) {
    case W_RUN: return store_run_put(s->writer, &w->run, err);
    case W_SKIP: return store_skip_put(s->writer, &w->skip, err);
    case W_ALERT: return store_alert_raise(s->writer, &w->alert, err);
    case W_CLEAR: return store_alert_clear(s->writer, w->alert.key, w->alert.raised_at_ms, err);
    case W_PRUNE: {
        int64_t removed = 0;
        int64_t older = server__now_ms(s) - (int64_t)s->opts.retention_days * 86400000;
        int rc = store_prune(s->writer, older, s->opts.retention_runs, &removed, err);
        if (rc == 0 && removed > 0)
            log_info("history pruned", "rows=%lld retention_days=%u retention_runs=%u",
                     (long long)removed, s->opts.retention_days, s->opts.retention_runs);
        return rc;
    }
    }
    return 0;
}

static void free_wops(struct wop *w)
{
    while (w != NULL) {
        struct wop *n = w->next;
        free(w->blob);
        json_decref(w->alert.detail);
        free(w);
        w = n;
    }
}

/* A batch is written (or refused for good): free it and wake those waiting for it.
 * Returns with st_mu held. */
static void written_upto(struct server *s, struct wop *batch)
{
    uint64_t last = 0;
    for (struct wop *w = batch; w != NULL; w = w->next)
        last = w->seq;
    free_wops(batch);
    pthread_mutex_lock(&s->st_mu);
    if (last > s->st_committed)
        s->st_committed = last;
    pthread_cond_broadcast(&s->st_done_cv);
}

/* The sequence number of the last write queued so far (for server__store_sync). */
static uint64_t store_mark(struct server *s)
{
    pthread_mutex_lock(&s->st_mu);
    uint64_t seq = s->st_pushed;
    pthread_mutex_unlock(&s->st_mu);
    return seq;
}

void server__store_sync(struct server *s, uint64_t seq, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->st_mu);
    while (s->st_committed < seq && !atomic_load(&s->st_failing) && !s->st_stop)
        if (pthread_cond_timedwait(&s->st_done_cv, &s->st_mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->st_mu);
}

static void *store_main(void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->st_mu);
    for (;;) {
        while (s->st_head == NULL && !s->st_stop)
            pthread_cond_wait(&s->st_cv, &s->st_mu);
        if (s->st_head == NULL && s->st_stop)
            break;
        struct wop *batch = s->st_head;
        s->st_head = s->st_tail = NULL;
        size_t n = s->st_len;
        s->st_len = 0;
        pthread_mutex_unlock(&s->st_mu);

        struct ty_err err;
        ty_err_clear(&err);
        int rc = store_begin(s->writer, &err);
        for (struct wop *w = batch; rc == 0 && w != NULL; w = w->next) {
            int r = apply_wop(s, w, &err);
            if (r == TY_EEXIST) {
                /* the fire was already made: the record is a duplicate, keep the first */
                log_warn("duplicate run record ignored", "error=\"%s\"", err.msg);
                continue;
            }
            if (r != 0)
                rc = r;
        }
        if (rc == 0)
            rc = store_commit(s->writer, &err);
        if (rc != 0) {
            store_rollback(s->writer);
            if (!retryable(rc)) {
                /* a write the store refuses for good: say so, and keep the others */
                log_error("history write refused; retrying one by one", "error=\"%s\"", err.msg);
                for (struct wop *w = batch; w != NULL; w = w->next) {
                    struct ty_err e1;
                    if (apply_wop(s, w, &e1) != 0 && !retryable(e1.code))
                        log_error("history write dropped", "error=\"%s\"", e1.msg);
                }
                written_upto(s, batch);
                continue;
            }
            if (!atomic_load(&s->st_failing))
                atomic_store(&s->st_failing_since_ms, server__now_ms(s));
            if (!atomic_exchange(&s->st_failing, 1))
                log_error("history store failing; results kept in memory and retried",
                          "error=\"%s\" pending=%zu", err.msg, n);
            snprintf(s->st_error, sizeof s->st_error, "%s", err.msg);
            uv_async_send(&s->store_async);
            /* put the batch back in front and wait a little */
            pthread_mutex_lock(&s->st_mu);
            struct wop *last = batch;
            while (last->next != NULL)
                last = last->next;
            last->next = s->st_head;
            if (s->st_head == NULL)
                s->st_tail = last;
            s->st_head = batch;
            s->st_len += n;
            atomic_fetch_add(&s->st_retries, 1);
            if (s->st_stop && s->st_len > 0) {
                /* stopping and still failing: one last warning, then give up */
                log_error("stopping with history writes not saved", "pending=%zu", s->st_len);
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 2;
            pthread_cond_timedwait(&s->st_cv, &s->st_mu, &ts);
            continue;
        }
        if (atomic_exchange(&s->st_failing, 0)) {
            log_info("history store writable again", "written=%zu", n);
            uv_async_send(&s->store_async);
        }
        atomic_fetch_add(&s->st_written, n);
        written_upto(s, batch);
    }
    pthread_mutex_unlock(&s->st_mu);
    return NULL;
}

static void store_push(struct server *s, struct wop *w)
{
    pthread_mutex_lock(&s->st_mu);
    w->seq = ++s->st_pushed;
    if (s->st_tail != NULL)
        s->st_tail->next = w;
    else
        s->st_head = w;
    s->st_tail = w;
    s->st_len++;
    pthread_cond_signal(&s->st_cv);
    pthread_mutex_unlock(&s->st_mu);
}

/* Copy the strings an op points to into one blob it owns. */
struct blob {
    char *base;
    size_t len, cap;
};

static size_t blob_need(const char *str)
{
    return str ? strlen(str) + 1 : 0;
}

static const char *blob_put(struct blob *b, const char *str)
{
    if (str == NULL)
        return NULL;
    size_t n = strlen(str) + 1;
    char *dst = b->base + b->len;
    memcpy(dst, str, n);
    b->len += n;
    return dst;
}

void server__store_run(struct server *s, const struct store_run *r)
{
    struct wop *w = calloc(1, sizeof *w);
    size_t need = blob_need(r->run_id) + blob_need(r->fire_id) + blob_need(r->job) +
                  blob_need(r->domain) + blob_need(r->boot_id) + blob_need(r->executor) +
                  blob_need(r->error) + r->output_len + 1;
    struct blob b = {malloc(need), 0, need};
    if (w == NULL || b.base == NULL) {
        log_error("out of memory: a run record is lost", "run=%s", r->run_id);
        free(w);
        free(b.base);
        return;
    }
    w->kind = W_RUN;
    w->run = *r;
    w->run.run_id = blob_put(&b, r->run_id);
    w->run.fire_id = blob_put(&b, r->fire_id);
    w->run.job = blob_put(&b, r->job);
    w->run.domain = blob_put(&b, r->domain);
    w->run.boot_id = blob_put(&b, r->boot_id);
    w->run.executor = blob_put(&b, r->executor);
    w->run.error = blob_put(&b, r->error);
    if (r->output != NULL) {
        memcpy(b.base + b.len, r->output, r->output_len);
        w->run.output = b.base + b.len;
        b.len += r->output_len;
    }
    w->blob = b.base;
    store_push(s, w);
}

void server__store_skip(struct server *s, const struct store_skip *k)
{
    struct wop *w = calloc(1, sizeof *w);
    size_t need =
        blob_need(k->fire_id) + blob_need(k->job) + blob_need(k->domain) + blob_need(k->detail) + 1;
    struct blob b = {malloc(need), 0, need};
    if (w == NULL || b.base == NULL) {
        log_error("out of memory: a skipped-fire record is lost", "fire=%s", k->fire_id);
        free(w);
        free(b.base);
        return;
    }
    w->kind = W_SKIP;
    w->skip = *k;
    w->skip.fire_id = blob_put(&b, k->fire_id);
    w->skip.job = blob_put(&b, k->job);
    w->skip.domain = blob_put(&b, k->domain);
    w->skip.detail = blob_put(&b, k->detail);
    w->blob = b.base;
    store_push(s, w);
}

void server__store_alert(struct server *s, const struct store_alert *a)
{
    struct wop *w = calloc(1, sizeof *w);
    size_t need = blob_need(a->key) + blob_need(a->kind) + blob_need(a->job) +
                  blob_need(a->domain) + blob_need(a->reason) + 1;
    struct blob b = {malloc(need), 0, need};
    if (w == NULL || b.base == NULL) {
        free(w);
        free(b.base);
        return;
    }
    w->kind = W_ALERT;
    w->alert = *a;
    w->alert.key = blob_put(&b, a->key);
    w->alert.kind = blob_put(&b, a->kind);
    w->alert.job = blob_put(&b, a->job);
    w->alert.domain = blob_put(&b, a->domain);
    w->alert.reason = blob_put(&b, a->reason);
    w->alert.detail = a->detail ? json_deep_copy(a->detail) : NULL;
    w->blob = b.base;
    store_push(s, w);
}

void server__store_clear(struct server *s, const char *key)
{
    struct wop *w = calloc(1, sizeof *w);
    struct blob b = {malloc(blob_need(key) + 1), 0, blob_need(key) + 1};
    if (w == NULL || b.base == NULL) {
        free(w);
        free(b.base);
        return;
    }
    w->kind = W_CLEAR;
    w->alert.key = blob_put(&b, key);
    w->alert.raised_at_ms = server__now_ms(s);
    w->blob = b.base;
    store_push(s, w);
}

void server__store_prune(struct server *s)
{
    struct wop *w = calloc(1, sizeof *w);
    if (w == NULL)
        return;
    w->kind = W_PRUNE;
    store_push(s, w);
}

/* ---------------------------------------------------------------------------------------
 * Readers for HTTP threads
 */

static void reader_free(void *p)
{
    store_close(p);
}

struct store *server__reader(struct server *s, struct ty_err *err)
{
    struct store *r = pthread_getspecific(s->reader_key);
    if (r != NULL)
        return r;
    if (store_open_sqlite(s->db_path, true, &r, err) != 0)
        return NULL;
    pthread_setspecific(s->reader_key, r);
    return r;
}

/* ---------------------------------------------------------------------------------------
 * The mailbox
 */

int server__call(struct server *s, struct server_msg *m)
{
    pthread_cond_init(&m->cv, NULL);
    m->done = false;
    m->next = NULL;
    m->reply = NULL;
    m->rc = 0;
    ty_err_clear(&m->err);
    pthread_mutex_lock(&s->mail_mu);
    if (s->mail_closed) {
        pthread_mutex_unlock(&s->mail_mu);
        pthread_cond_destroy(&m->cv);
        return ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
    }
    if (s->mail_tail != NULL)
        s->mail_tail->next = m;
    else
        s->mail_head = m;
    s->mail_tail = m;
    uv_async_send(&s->mail_async);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    while (!m->done) {
        if (pthread_cond_timedwait(&m->cv, &s->mail_mu, &ts) == ETIMEDOUT && !m->done) {
            /* leave it queued (the loop will answer into the void); we cannot unlink it
             * safely, so wait for the answer after all but tell the caller */
            pthread_cond_wait(&m->cv, &s->mail_mu);
        }
    }
    pthread_mutex_unlock(&s->mail_mu);
    pthread_cond_destroy(&m->cv);
    return m->rc;
}

static void handle_msg(struct server *s, struct server_msg *m)
{
    if (s->stopping && m->kind != MSG_STATUS && m->kind != MSG_EXECUTORS &&
        m->kind != MSG_JOB_STATE) {
        m->rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
        return;
    }
    switch (m->kind) {
    case MSG_JOB_CHANGED: {
        const char *json = m->arg ? json_string_value(m->arg) : NULL;
        m->rc = jobs_apply(s, m->name, json, m->num, m->secrets, &m->err);
        break;
    }
    case MSG_CALENDAR_CHANGED: {
        const char *json = m->arg ? json_string_value(m->arg) : NULL;
        m->rc = jobs_calendar_apply(s, m->name, json);
        break;
    }
    case MSG_RUN_NOW: {
        struct sjob *j = jobs_find(s, m->name);
        if (j == NULL) {
            m->rc = ty_error(&m->err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", m->name);
            break;
        }
        m->rc = runner_run_now(s, j, m->arg, &m->reply, &m->err);
        break;
    }
    case MSG_CANCEL: m->rc = runner_cancel(s, m->name, &m->reply, &m->err); break;
    case MSG_JOB_STATE: {
        struct sjob *j = jobs_find(s, m->name);
        if (j == NULL) {
            m->rc = ty_error(&m->err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", m->name);
            break;
        }
        int64_t next = jobs_next_fire(s, j);
        uint32_t running = 0;
        for (uint32_t k = 0; k < j->def.shards; k++)
            running += j->running[k];
        json_t *o = json_object();
        if (next > 0) {
            char buf[CIVIL_RFC3339_MAX];
            struct tz_info ti;
            tz_lookup(j->zone, next, &ti);
            civil_format_rfc3339(next, ti.utoff, buf);
            json_object_set_new(o, "next_fire", json_string(buf));
        } else {
            json_object_set_new(o, "next_fire", json_null());
        }
        json_object_set_new(o, "running", json_integer(running));
        json_object_set_new(o, "waiting", json_integer(j->waiting));
        m->reply = o;
        break;
    }
    case MSG_EXECUTORS: m->reply = runner_executors(s); break;
    case MSG_STATUS: {
        struct sched_stats st;
        sched_get_stats(s->sched, &st);
        m->reply =
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:I, s:I, s:b, s:b, s:b}",
                      "jobs_scheduled", (json_int_t)st.jobs, "running", (json_int_t)s->n_running,
                      "queued", (json_int_t)s->q_len, "fires_missed", (json_int_t)st.missed,
                      "fires_dropped", (json_int_t)st.dropped, "store_failing",
                      atomic_load(&s->st_failing) != 0, "store_error", s->st_error,
                      "store_failing_since_ms", (json_int_t)atomic_load(&s->st_failing_since_ms),
                      "epoch", (json_int_t)s->epoch, "disk_low", s->resource_disk_low, "memory_low",
                      s->resource_mem_low, "stopping", s->stopping);
        break;
    }
    case MSG_CLOCK:
#ifdef TETHYS_TEST_HOOKS
        atomic_store(&s->clock_offset_ns, m->num * 1000000000);
        sched_kick(s->sched);
        log_warn("test clock shifted", "offset_s=%lld", (long long)m->num);
        m->reply = json_pack("{s:I}", "offset_s", (json_int_t)m->num);
#else
        m->rc = ty_error(&m->err, TY_ENOENT, NULL, -1, 0, "not a test build");
#endif
        break;
    }
}

static void on_mail(uv_async_t *h)
{
    struct server *s = h->data;
    pthread_mutex_lock(&s->mail_mu);
    struct server_msg *m = s->mail_head;
    s->mail_head = s->mail_tail = NULL;
    pthread_mutex_unlock(&s->mail_mu);
    while (m != NULL) {
        struct server_msg *next = m->next;
        handle_msg(s, m);
        m->store_seq = store_mark(s);
        pthread_mutex_lock(&s->mail_mu);
        m->done = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&s->mail_mu);
        m = next;
    }
}

/* ---------------------------------------------------------------------------------------
 * Loop callbacks
 */

static void on_sched(uv_async_t *h)
{
    struct server *s = h->data;
    struct sched_fire batch[256];
    size_t n;
    while ((n = sched_take(s->sched, batch, 256)) > 0)
        for (size_t i = 0; i < n; i++)
            runner_on_fire(s, &batch[i]);
}

static void on_store_state(uv_async_t *h)
{
    alerts_resources(h->data);
}

static void on_resource_timer(uv_timer_t *t)
{
    alerts_resources(t->data);
}

static void on_retention_timer(uv_timer_t *t)
{
    server__store_prune(t->data);
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

/* ---------------------------------------------------------------------------------------
 * Output files.  Creating a file soon after others were deleted is slow on some file
 * systems (ext4 without a journal: ~0.5 ms), which would cap the runs per second, so a
 * finished run's file is emptied and kept as a spare for a later run instead of deleted.
 */

#define POOL_MAX         65536
#define RECYCLE_AFTER_MS 10000

const char *server__spare_output(struct server *s, char *buf, size_t cap)
{
    if (s->pool_len == 0)
        return NULL;
    snprintf(buf, cap, "%s/pool/p%u", s->runs_dir, s->pool[--s->pool_len]);
    return buf;
}

void server__output_done(struct server *s, const char *run_id)
{
    if (s->rc_len == s->rc_cap) {
        size_t cap = s->rc_cap ? s->rc_cap * 2 : 1024;
        struct recycle *n = malloc(cap * sizeof *n);
        if (n == NULL)
            return; /* the file is left for the sweep */
        for (size_t i = 0; i < s->rc_len; i++)
            n[i] = s->recycle[(s->rc_head + i) % s->rc_cap];
        free(s->recycle);
        s->recycle = n;
        s->rc_cap = cap;
        s->rc_head = 0;
    }
    struct recycle *r = &s->recycle[(s->rc_head + s->rc_len++) % s->rc_cap];
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    r->ended_ms = server__now_ms(s);
}

static void pool_push(struct server *s, uint32_t n)
{
    if (s->pool_len == s->pool_cap) {
        size_t cap = s->pool_cap ? s->pool_cap * 2 : 1024;
        uint32_t *p = realloc(s->pool, cap * sizeof *p);
        if (p == NULL)
            return;
        s->pool = p;
        s->pool_cap = cap;
    }
    s->pool[s->pool_len++] = n;
}

/* Turn the output files of runs that ended RECYCLE_AFTER_MS ago into spares. */
static void on_recycle_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    if (atomic_load(&s->st_failing))
        return; /* the file may hold the only copy of a run's output */
    int64_t cutoff = server__now_ms(s) - RECYCLE_AFTER_MS;
    char from[4096], to[4096];
    while (s->rc_len > 0 && s->recycle[s->rc_head].ended_ms <= cutoff) {
        struct recycle *r = &s->recycle[s->rc_head];
        snprintf(from, sizeof from, "%s/%s.out", s->runs_dir, r->run_id);
        s->rc_head = (s->rc_head + 1) % s->rc_cap;
        s->rc_len--;
        if (s->pool_len >= POOL_MAX) {
            unlink(from);
            continue;
        }
        uint32_t n = s->pool_seq++;
        snprintf(to, sizeof to, "%s/pool/p%u", s->runs_dir, n);
        if (truncate(from, 0) == 0 && rename(from, to) == 0)
            pool_push(s, n);
        else
            unlink(from);
    }
}

/* At start: the spares left by the previous process. */
static void pool_load(struct server *s)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/pool", s->runs_dir);
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
        if (s->pool_len < POOL_MAX && truncateat_ok(dirfd(d), de->d_name))
            pool_push(s, (uint32_t)n);
        else
            unlinkat(dirfd(d), de->d_name, 0);
        if (n >= s->pool_seq)
            s->pool_seq = (uint32_t)n + 1;
    }
    closedir(d);
}

/*
 * Remove the output files of runs that ended more than a minute ago.  Not at once: a
 * follower (`tethys run logs -f`) may still be reading the last bytes, and the store must
 * have saved the tail first — so nothing is removed while the store is failing.
 */
static void on_sweep_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    if (atomic_load(&s->st_failing))
        return;
    DIR *d = opendir(s->runs_dir);
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
        if (strmap_get(&s->runs, id) != NULL)
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

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

/*
 * Every run has ended: close the server's own handles and let the loop run dry.  Not a
 * uv_walk over everything: the executor may still hold a finished run's process group for
 * its final KILL, and its timer must fire before the loop may end.
 */
static void drained(struct server *s)
{
    log_info("all runs ended; stopping", "running=%u", s->n_running);
    uv_handle_t *mine[] = {
        (uv_handle_t *)&s->sched_async,     (uv_handle_t *)&s->mail_async,
        (uv_handle_t *)&s->store_async,     (uv_handle_t *)&s->sig_term,
        (uv_handle_t *)&s->sig_int,         (uv_handle_t *)&s->resource_timer,
        (uv_handle_t *)&s->retention_timer, (uv_handle_t *)&s->sweep_timer,
        (uv_handle_t *)&s->recycle_timer,   (uv_handle_t *)&s->watchdog_timer,
    };
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (!uv_is_closing(mine[i]))
            uv_close(mine[i], close_cb);
    if (s->grace_live && !uv_is_closing((uv_handle_t *)&s->grace_timer))
        uv_close((uv_handle_t *)&s->grace_timer, close_cb);
}

/* The loop turns: tell the service manager's watchdog so.  A loop stuck in a callback stops
 * these, and the manager restarts the server (WatchdogSec= in the systemd unit). */
static void on_watchdog_timer(uv_timer_t *t)
{
    (void)t;
    notify_send("WATCHDOG=1");
}

/* Listening, server.json written, jobs loaded: ready for the service manager (Type=notify
 * makes `systemctl start` wait for this), and the watchdog started when it asks for one. */
static void notify_started(struct server *s)
{
    char state[600];
    snprintf(state, sizeof state, "READY=1\nMAINPID=%ld\nSTATUS=listening on %s", (long)getpid(),
             s->url);
    int rc = notify_send(state);
    if (rc < 0)
        log_warn("cannot notify the service manager", "socket=\"%s\" error=\"%s\"",
                 getenv("NOTIFY_SOCKET"), strerror(-rc));
    uint64_t wd = notify_watchdog_ms();
    if (rc == 0 && wd > 0) {
        uv_timer_start(&s->watchdog_timer, on_watchdog_timer, wd / 2, wd / 2);
        log_info("service watchdog on", "interval_ms=%llu ping_ms=%llu", (unsigned long long)wd,
                 (unsigned long long)(wd / 2));
    }
}

static void begin_shutdown(struct server *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    notify_send("STOPPING=1");
    log_info("shutting down", "signal=%s grace_s=%u running=%u", why, s->opts.shutdown_grace,
             s->n_running);
    /* no more fires; what the engine already handed over is recorded as interrupted */
    sched_stop(s->sched);
    on_sched(&s->sched_async);
    runner_shutdown(s, s->opts.shutdown_grace, drained);
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_shutdown(h->data, signum == SIGTERM ? "TERM" : "INT");
}

static void sched_wake(void *arg)
{
    struct server *s = arg;
    uv_async_send(&s->sched_async);
}

/* ---------------------------------------------------------------------------------------
 * Start and stop
 */

static int load_config(struct server *s, struct ty_err *err)
{
    json_t *list = NULL;
    int rc = store_obj_list(s->writer, STORE_CALENDAR, NULL, &list, err);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        char *text = json_dumps(json_object_get(it, "object"), JSON_COMPACT);
        jobs_calendar_apply(s, json_string_value(json_object_get(it, "name")), text);
        free(text);
    }
    json_decref(list);

    rc = store_last_fires(s->writer, &s->last_fires, err);
    if (rc != 0)
        return rc;
    rc = store_obj_list(s->writer, STORE_JOB, NULL, &list, err);
    if (rc != 0)
        return rc;
    size_t loaded = 0;
    json_array_foreach(list, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        char *text = json_dumps(json_object_get(it, "object"), JSON_COMPACT);
        struct ty_err e1;
        /* the secret values, read here (before any thread starts) and handed over */
        json_t *secrets = NULL;
        if (store_secrets_get(s->writer, name, &secrets, &e1) != 0)
            log_error("a stored job's secrets could not be read; its runs get empty values",
                      "job=%s error=\"%s\"", name, e1.msg);
        if (jobs_apply(s, name, text, json_integer_value(json_object_get(it, "version")), secrets,
                       &e1) != 0)
            log_error("a stored job could not be loaded; it will not fire", "job=%s error=\"%s\"",
                      name, e1.msg);
        else
            loaded++;
        json_decref(secrets);
        free(text);
    }
    json_decref(list);
    json_decref(s->last_fires);
    s->last_fires = NULL;
    log_info("jobs loaded", "jobs=%zu", loaded);
    return 0;
}

/* Listening off loopback needs TLS: the bearer token travels in every request. */
static int check_listen(struct server *s, struct ty_err *err)
{
    bool loopback = false;
    int rc = http_listen_is_loopback(s->opts.listen, &loopback, err);
    if (rc != 0)
        return rc;
    if ((s->opts.tls_cert == NULL) != (s->opts.tls_key == NULL))
        return ty_error(err, TY_EINVAL, s->opts.tls_cert ? "--tls-key" : "--tls-cert", -1, 0,
                        "%s needs %s too: a TLS certificate and its key go together",
                        s->opts.tls_cert ? "--tls-cert" : "--tls-key",
                        s->opts.tls_cert ? "--tls-key" : "--tls-cert");
    if (!loopback && s->opts.tls_cert == NULL)
        return ty_error(err, TY_EINVAL, "--listen", -1, 0,
                        "listening on %s needs --tls-cert and --tls-key: the API token would "
                        "cross the network in clear",
                        s->opts.listen);
    return s->opts.tls_cert != NULL ? http_tls_check(s->opts.tls_cert, s->opts.tls_key, err) : 0;
}

/* The URL the CLI on this machine uses (server.json): a wildcard address becomes the
 * loopback one, which is where a local client finds a server listening everywhere. */
static char *make_url(const struct server *s, int port)
{
    char host[256];
    snprintf(host, sizeof host, "%s", s->opts.listen);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "[::1]");
    char url[320];
    snprintf(url, sizeof url, "%s://%s:%d", s->opts.tls_cert ? "https" : "http", host, port);
    return strdup(url);
}

static int start(struct server *s, struct ty_err *err)
{
    int rc;
    if ((rc = check_listen(s, err)) != 0 || (rc = mkdir_p(s->data_dir, err)) != 0 ||
        (rc = take_lock(s, err)) != 0 || (rc = load_token(s, err)) != 0)
        return rc;
    s->db_path = path_join(s->data_dir, "tethys.db");
    s->runs_dir = path_join(s->data_dir, "runs");
    if (s->db_path == NULL || s->runs_dir == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (mkdir(s->runs_dir, 0700) != 0 && errno != EEXIST)
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot create %s: %s", s->runs_dir,
                        strerror(errno));
    if ((rc = store_open_sqlite(s->db_path, false, &s->writer, err)) != 0 ||
        (rc = store_open_sqlite(s->db_path, false, &s->config_writer, err)) != 0)
        return rc;

    char *epoch = NULL;
    if (store_meta_get(s->writer, "epoch", &epoch, NULL) == 0 && epoch != NULL)
        s->epoch = strtoll(epoch, NULL, 10);
    free(epoch);
    s->epoch++;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)s->epoch);
    if ((rc = store_meta_set(s->writer, "epoch", buf, err)) != 0)
        return rc;
    if (exec_boot_id(s->boot_id, sizeof s->boot_id, err) != 0)
        return err->code;

    uv_loop_init(&s->loop);
    uv_async_init(&s->loop, &s->sched_async, on_sched);
    uv_async_init(&s->loop, &s->mail_async, on_mail);
    uv_async_init(&s->loop, &s->store_async, on_store_state);
    s->sched_async.data = s->mail_async.data = s->store_async.data = s;
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    s->sig_term.data = s->sig_int.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_timer_init(&s->loop, &s->resource_timer);
    uv_timer_init(&s->loop, &s->retention_timer);
    uv_timer_init(&s->loop, &s->sweep_timer);
    uv_timer_init(&s->loop, &s->recycle_timer);
    s->resource_timer.data = s->retention_timer.data = s->sweep_timer.data = s;
    s->recycle_timer.data = s;
    uv_timer_init(&s->loop, &s->watchdog_timer);
    s->handles_live = true;

    struct sched_config sc = {65536, s->opts.max_jobs, sched_wake, s, clock_ns, s};
    if ((rc = sched_new(&sc, &s->sched, err)) != 0)
        return rc;
    json_t *open = NULL;
    if ((rc = store_alerts_open(s->writer, &open, err)) != 0)
        return rc;
    alerts_load(s, open);
    json_decref(open);
    if ((rc = load_config(s, err)) != 0)
        return rc;

    pool_load(s);
    json_t *unfinished = NULL;
    if ((rc = store_runs_unfinished(s->writer, &unfinished, err)) != 0)
        return rc;
    runner_recover(s, unfinished);
    json_decref(unfinished);
    alerts_recovered(s);

    if (pthread_create(&s->store_thread, NULL, store_main, s) != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot start the store thread");
    s->store_running = true;
    if ((rc = sched_start(s->sched, err)) != 0)
        return rc;

    struct http_config hc;
    routes_config(s, s->opts.listen, s->token, &hc);
    hc.tls_cert = s->opts.tls_cert;
    hc.tls_key = s->opts.tls_key;
    hc.rate_per_s = s->opts.rate_limit;
    hc.rate_burst = s->opts.rate_burst;
    if ((rc = http_start(&hc, &s->http, err)) != 0)
        return rc;
    s->url = make_url(s, http_port(s->http));
    if (s->url == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    write_server_json(s);

    uv_timer_start(&s->resource_timer, on_resource_timer, 1000, 30000);
    uv_timer_start(&s->retention_timer, on_retention_timer, 60000, 3600000);
    uv_timer_start(&s->sweep_timer, on_sweep_timer, 60000, 300000);
    uv_timer_start(&s->recycle_timer, on_recycle_timer, 1000, 1000);
    alerts_resources(s);
    notify_started(s);
    log_info("tethys server started",
             "version=%s url=%s data=%s epoch=%lld max_runs=%u tls=%s rate_limit=%g "
             "rate_burst=%u",
             TETHYS_VERSION, s->url, s->data_dir, (long long)s->epoch, s->opts.max_runs,
             s->opts.tls_cert ? "on" : "off", s->opts.rate_limit, s->opts.rate_burst);
    return 0;
}

static void stop_everything(struct server *s)
{
    pthread_mutex_lock(&s->mail_mu);
    s->mail_closed = true;
    /* answer anything still queued */
    struct server_msg *m = s->mail_head;
    s->mail_head = s->mail_tail = NULL;
    for (; m != NULL; m = m->next) {
        m->rc = ty_error(&m->err, TY_EUNAVAIL, NULL, -1, 0, "the server is shutting down");
        m->done = true;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&s->mail_mu);
    if (s->http != NULL)
        http_stop(s->http);
    s->http = NULL;
    if (s->sched != NULL)
        sched_free(s->sched);
    s->sched = NULL;
    if (s->store_running) {
        pthread_mutex_lock(&s->st_mu);
        s->st_stop = true;
        pthread_cond_signal(&s->st_cv);
        pthread_mutex_unlock(&s->st_mu);
        pthread_join(s->store_thread, NULL);
        s->store_running = false;
        free_wops(s->st_head);
        s->st_head = s->st_tail = NULL;
    }
    store_close(s->writer);
    s->writer = NULL;
    store_close(s->config_writer);
    s->config_writer = NULL;
    if (s->url != NULL)
        remove_server_json(s);
}

int server_run(const struct server_opts *opts)
{
    static struct server srv;
    struct server *s = &srv;
    memset(s, 0, sizeof *s);
    the_server = s;
    s->opts = *opts;
    s->data_dir = strdup(opts->data_dir);
    s->lock_fd = -1;
    s->started_ms = real_ns() / 1000000;
    pthread_mutex_init(&s->mail_mu, NULL);
    pthread_mutex_init(&s->st_mu, NULL);
    pthread_cond_init(&s->st_cv, NULL);
    pthread_cond_init(&s->st_done_cv, NULL);
    pthread_mutex_init(&s->config_mu, NULL);
    pthread_key_create(&s->reader_key, reader_free);
    strmap_init(&s->jobs);
    strmap_init(&s->calendars);
    strmap_init(&s->domains);
    strmap_init(&s->runs);
    strmap_init(&s->fires);
    strmap_init(&s->open_alerts);
    signal(SIGPIPE, SIG_IGN);

    struct ty_err err;
    ty_err_clear(&err);
    int rc = start(s, &err);
    if (rc != 0) {
        log_error("cannot start", "error=\"%s\"", err.msg);
        fprintf(stderr, "tethys: %s\n", err.msg);
        s->exit_status = rc == TY_EBUSY || rc == TY_EINVAL ? 2 : 3;
    } else {
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    stop_everything(s);
    if (s->handles_live) {
        uv_walk(&s->loop, walk_close, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
    }
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    log_info("tethys server stopped", "status=%d", s->exit_status);
    tzdb_shutdown();
    return s->exit_status;
}
