/*
 * config.c - configuration: every way a job, domain or calendar is saved, and how the
 * executors learn it.
 *
 * A save is checked here, whoever asks (the API's handlers, a restore, apply, import): a
 * job's zone and calendars must exist, its domain's limits must hold along the chain to
 * the root (the counts come from the store's counters, so a save costs the same with a
 * million jobs as with ten), and an enabled schedule must fire at all.  Checks and write
 * happen under one lock, so two saves cannot both pass a limit only one of them fits.
 * The write is conditional on the version it was based on, so two editors never silently
 * overwrite each other.  Then the loop is told, and it assigns the job to the executor:
 * the answer never waits for the executor, only for the alerts the change opened or
 * closed to be written.
 *
 * Batches.  `apply` and imports of thousands of jobs save them through
 * server_jobs_save_batch: the same checks, one job after the other, but one transaction
 * (each job's write is a savepoint of it, so a refused job costs only itself) and one
 * message to the loop, which sends the executor one assignment request for all of them.
 * A job's checks see the jobs saved before it in the batch (the store's counters are
 * those of the open transaction), so a domain's limit holds within a batch too.
 *
 * Secrets.  A job's secret_env values never enter its JSON: the stored definition (and so
 * its versions, exports and every answer) has "********" for each, and the values go to
 * the store's secrets in the same transaction as the definition.  A save that sends the
 * mask back keeps the stored value.  The executor gets the values with the assignment.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/civil.h"
#include "../os/log.h"
#include "../tzdb/tzdb.h"
#include "server_impl.h"

#define NOTIFY_MS      5000  /* how long a save waits for the loop to take it */
#define ALERT_SYNC_MS  5000  /* ... and for the alerts it opened or closed to be written */
#define ASSIGN_BATCH   1000  /* assignments per request at start */
#define LOAD_IN_FLIGHT 4     /* start-up requests sent and not yet answered, at most */
#define LOAD_CALL_MS   60000 /* how long the loader waits for the loop to take one */
#define LOAD_STOPPED   1     /* the scan's callback: the server is stopping */

/* ---------------------------------------------------------------------------------------
 * Assignment: what the loop sends executors
 */

struct sync_state {
    struct server *s;
    bool load; /* a start-up request, counted in load_in_flight */
};

static void on_assigned(void *arg, struct coord_reply *reply)
{
    struct sync_state *st = arg;
    struct server *s = st->s;
    if (st->load) { /* the loader may send the next */
        pthread_mutex_lock(&s->load_mu);
        if (s->load_in_flight > 0)
            s->load_in_flight--;
        pthread_cond_signal(&s->load_cv);
        pthread_mutex_unlock(&s->load_mu);
    }
    if (reply->rc != 0) {
        log_error("the executor did not take its assignments", "error=\"%s\"", reply->err.msg);
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(reply->json, "failed"), i, f)
        {
            log_error("a job could not be assigned; it will not fire", "job=%s error=\"%s\"",
                      json_string_value(json_object_get(f, "job")),
                      json_string_value(json_object_get(f, "error")));
        }
    }
    free(st);
    if (s->sync_pending > 0 && --s->sync_pending == 0)
        server__ready(s);
}

/* A new request carrying up to `cap` assignments, with the control plane's epoch. */
static struct coord_request *assign_request(const struct server *s, size_t cap)
{
    struct coord_request *req = coord_request_new(COORD_ASSIGN);
    if (req != NULL)
        req->epoch = s->epoch;
    if (req != NULL && cap > 0 && (req->assign = calloc(cap, sizeof *req->assign)) == NULL) {
        coord_request_free(req);
        return NULL;
    }
    return req;
}

/* Fill assignment a for job `name` (text NULL: unassigned).  0 or TY_ENOMEM. */
static int fill(struct coord_assignment *a, struct server *s, const char *name, const char *text,
                int64_t version, const json_t *secrets, int64_t resume_after)
{
    a->job = strdup(name);
    a->definition = text ? strdup(text) : NULL;
    a->version = version;
    a->secrets = secrets ? json_deep_copy(secrets) : NULL;
    a->epoch = s->epoch;
    a->since = server_now(s);
    a->resume_after = resume_after;
    return a->job == NULL || (text != NULL && a->definition == NULL) ? TY_ENOMEM : 0;
}

/* Send req to the executors (on the loop); sync: part of the start-up set (the server is
 * ready once all are answered), counted in load_in_flight. */
static void send_assign(struct server *s, struct coord_request *req, bool sync)
{
    struct sync_state *st = malloc(sizeof *st);
    if (st == NULL) {
        coord_request_free(req);
        log_error("out of memory: assignments not sent", "requests=%d", 1);
        if (sync) { /* as if answered: the loader must not wait for it */
            pthread_mutex_lock(&s->load_mu);
            if (s->load_in_flight > 0)
                s->load_in_flight--;
            pthread_cond_signal(&s->load_cv);
            pthread_mutex_unlock(&s->load_mu);
        }
        return;
    }
    st->s = s;
    st->load = sync;
    if (sync)
        s->sync_pending++;
    server__coord_send(s, "", req, on_assigned, st);
}

/* ---------------------------------------------------------------------------------------
 * At start: the loader thread
 *
 * Every calendar, then every job, go to the executors as assignments in batches of
 * ASSIGN_BATCH, the last batch marked complete so the executor knows it has the whole set
 * (it then reconciles the runs a previous process left); on_ready follows when all are
 * answered.  A million jobs are streamed from the store (store_obj_scan) by a thread of
 * their own, on a read connection of their own, so the loop keeps answering the executor
 * meanwhile: a request's definitions are freed when its answer reaches the loop, and at
 * most LOAD_IN_FLIGHT requests are on their way.  Scanning on the loop itself held every
 * definition of the store until the scan ended (660 MB for a million jobs).  The loader
 * hands each request to the loop (SMSG_ASSIGN), which sends it.
 */

/* Hand a start-up request to the loop, once fewer than LOAD_IN_FLIGHT are unanswered; last:
 * the set is complete.  0, or TY_EUNAVAIL when the server is stopping (req is freed). */
static int load_send(struct server *s, struct coord_request *req, bool last)
{
    pthread_mutex_lock(&s->load_mu);
    while (s->load_in_flight >= LOAD_IN_FLIGHT && !atomic_load(&s->load_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->load_cv, &s->load_mu, &ts);
    }
    bool stop = atomic_load(&s->load_stop);
    if (!stop)
        s->load_in_flight++;
    pthread_mutex_unlock(&s->load_mu);
    struct smsg *m = stop ? NULL : server__msg_new(SMSG_ASSIGN);
    if (m == NULL) {
        coord_request_free(req);
        return TY_EUNAVAIL;
    }
    m->req = req;
    m->num = last;
    int rc = server__call(s, m, LOAD_CALL_MS);
    server__msg_unref(s, m);
    return rc;
}

/* The loop's side of SMSG_ASSIGN: send it; after the last, the loader's hold on the
 * start-up set ends (server_start took it). */
void server__load_batch(struct server *s, struct smsg *m)
{
    struct coord_request *req = m->req;
    m->req = NULL;
    send_assign(s, req, true);
    if (m->num && s->sync_pending > 0 && --s->sync_pending == 0)
        server__ready(s);
}

struct loading {
    struct server *s;
    struct store *st;
    json_t *last_fires;
    struct coord_request *req;
    size_t n_jobs;
};

static int load_one(void *arg, const char *name, int64_t version, const char *json, size_t len)
{
    struct loading *l = arg;
    if (l->req == NULL && (l->req = assign_request(l->s, ASSIGN_BATCH)) == NULL)
        return TY_ENOMEM;
    json_t *secrets = NULL;
    struct ty_err err;
    /* the values only for a job that names secrets, found without parsing the job */
    const char *raw;
    size_t raw_len;
    int rc = job_text_member(json, len, "secret_env", &raw, &raw_len);
    bool named = rc == TY_EINVAL || (rc == 0 && !(raw_len == 2 && memcmp(raw, "{}", 2) == 0) &&
                                     !(raw_len == 4 && memcmp(raw, "null", 4) == 0));
    if (named && store_secrets_get(l->st, name, &secrets, &err) != 0)
        log_error("a stored job's secrets could not be read; its runs get empty values",
                  "job=%s error=\"%s\"", name, err.msg);
    json_t *lf = json_object_get(l->last_fires, name);
    struct coord_request *req = l->req;
    struct coord_assignment *a = &req->assign[req->n_assign];
    rc = fill(a, l->s, name, json, version, secrets,
              json_is_integer(lf) ? json_integer_value(lf) : 0);
    json_decref(secrets);
    if (rc != 0) {
        coord_assignment_clear(a);
        return rc;
    }
    req->n_assign++;
    l->n_jobs++;
    if (req->n_assign == ASSIGN_BATCH) {
        l->req = NULL;
        if (load_send(l->s, req, false) != 0)
            return LOAD_STOPPED;
    }
    return 0;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loader_main(void *arg)
{
    struct server *s = arg;
    struct ty_err err;
    struct loading l = {.s = s};
    double t0 = clock_s(CLOCK_MONOTONIC);
    bool stopped = false;
    if (store_open(s->db, true, &l.st, &err) != 0)
        log_error("the configuration cannot be read; no job will fire", "error=\"%s\"", err.msg);
    json_t *cals = NULL;
    if (l.st != NULL && store_obj_list(l.st, STORE_CALENDAR, NULL, &cals, &err) != 0)
        log_error("calendars could not be read; jobs that name one may fire when they should "
                  "not",
                  "error=\"%s\"", err.msg);
    size_t i;
    json_t *it;
    json_array_foreach(cals, i, it)
    {
        struct coord_request *req = coord_request_new(COORD_CALENDAR);
        if (req == NULL)
            continue;
        req->name = strdup(json_string_value(json_object_get(it, "name")));
        req->definition = json_dumps(json_object_get(it, "object"), JSON_COMPACT);
        if (!stopped && load_send(s, req, false) != 0)
            stopped = true;
    }
    json_decref(cals);
    if (l.st != NULL && !stopped && store_last_fires(l.st, &l.last_fires, &err) != 0)
        log_error("the last fires could not be read; fires missed while the server was down "
                  "are not made up",
                  "error=\"%s\"", err.msg);
    int rc = l.st != NULL && !stopped ? store_obj_scan(l.st, STORE_JOB, load_one, &l, &err) : 0;
    if (rc == LOAD_STOPPED)
        stopped = true;
    else if (rc != 0)
        log_error("jobs could not all be read; some will not fire", "error=\"%s\"", err.msg);
    json_decref(l.last_fires);
    store_close(l.st);
    if (stopped) {
        coord_request_free(l.req);
        return NULL;
    }
    if (l.req == NULL)
        l.req = assign_request(s, 0);
    if (l.req != NULL) {
        l.req->complete = true;
        load_send(s, l.req, true);
    } else {
        log_error("out of memory: the executors never get their whole set", "jobs=%zu", l.n_jobs);
    }
    log_info("jobs loaded", "jobs=%zu s=%.2f cpu_s=%.2f", l.n_jobs, clock_s(CLOCK_MONOTONIC) - t0,
             clock_s(CLOCK_THREAD_CPUTIME_ID));
    return NULL;
}

int server__assign_all(struct server *s, struct ty_err *err)
{
    s->sync_pending++; /* the loader's, until it has sent its last request */
    if (pthread_create(&s->loader, NULL, loader_main, s) != 0) {
        s->sync_pending--;
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot start the thread that loads the jobs");
    }
    s->loader_live = true;
    return 0;
}

void server__loader_stop(struct server *s)
{
    if (!s->loader_live)
        return;
    pthread_mutex_lock(&s->load_mu);
    atomic_store(&s->load_stop, true);
    pthread_cond_broadcast(&s->load_cv);
    pthread_mutex_unlock(&s->load_mu);
    pthread_join(s->loader, NULL);
    s->loader_live = false;
}

/* The loop's side of a saved job or calendar (SMSG_JOB_CHANGED / SMSG_CALENDAR_CHANGED). */
void server__job_changed(struct server *s, struct smsg *m)
{
    if (m->kind == SMSG_CALENDAR_CHANGED) {
        struct coord_request *req = coord_request_new(COORD_CALENDAR);
        if (req == NULL || (req->name = strdup(m->name)) == NULL ||
            (m->text != NULL && (req->definition = strdup(m->text)) == NULL)) {
            coord_request_free(req);
            m->rc = ty_error(&m->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            return;
        }
        send_assign(s, req, false);
        return;
    }
    struct coord_request *req = assign_request(s, 1);
    if (req == NULL || fill(&req->assign[0], s, m->name, m->text, m->version, m->secrets, 0) != 0) {
        coord_request_free(req);
        m->rc = ty_error(&m->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        return;
    }
    req->n_assign = 1;
    send_assign(s, req, false);
    if (m->text == NULL) {
        m->writer_seq = alerts__job_removed(s, m->name);
        return;
    }
    json_t *obj = json_loads(m->text, 0, NULL);
    struct job j;
    struct ty_err err;
    if (obj != NULL && job_from_json(obj, &j, &err) == 0) {
        m->writer_seq = alerts__job_defined(s, &j);
        job_free(&j);
    }
    json_decref(obj);
}

/* Tell the loop (with the config lock held, so executors see changes in version order) and
 * wait for the alerts the change made to be written. */
static void notify(struct server *s, enum smsg_kind kind, const char *name, const char *text,
                   int64_t version, const json_t *secrets)
{
    struct smsg *m = server__msg_new(kind);
    if (m == NULL || (m->name = strdup(name)) == NULL ||
        (text != NULL && (m->text = strdup(text)) == NULL)) {
        server__msg_unref(s, m);
        log_error("out of memory: the executors were not told of a change", "name=%s", name);
        return;
    }
    m->version = version;
    m->secrets = secrets ? json_deep_copy(secrets) : NULL;
    if (server__call(s, m, NOTIFY_MS) != 0)
        log_error("the loop did not take a configuration change", "name=%s error=\"%s\"", name,
                  m->err.msg);
    else if (m->writer_seq > 0)
        server__writer_sync(s, m->writer_seq, ALERT_SYNC_MS);
    server__msg_unref(s, m);
}

/* ---------------------------------------------------------------------------------------
 * Checks
 */

/* The answer to a change the store could not write for lack of space. */
static int no_space(struct server *s, struct ty_err *err, const char *what, const char *name,
                    const char *done)
{
    return ty_error(err, TY_ENOSPC, NULL, -1, 0,
                    "%s \"%s\" was not %s: the disk is full (data directory %s); nothing was "
                    "changed",
                    what, name, done, s->data_dir);
}

/* The answer to a change based on a version that is no longer current. */
static int conflict(struct ty_err *err, const char *what, const char *name, int64_t base)
{
    return ty_error(err, TY_ECONFLICT, "version", -1, 0,
                    "%s \"%s\" was changed by someone else since version %lld; read it again", what,
                    name, (long long)base);
}

/* The domain of the stored job `name`, into buf ("" when it does not exist): its count
 * already includes it. */
static bool stored_domain(struct store *st, const char *name, char *buf, size_t cap)
{
    char *text = NULL;
    int64_t v;
    buf[0] = '\0';
    if (store_obj_get(st, STORE_JOB, name, &text, &v, NULL) != 0)
        return false;
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    const char *d = json_string_value(json_object_get(o, "domain"));
    snprintf(buf, cap, "%s", d ? d : "");
    json_decref(o);
    return true;
}

/*
 * Everything about a job that needs more than the job itself: its zone exists, its
 * calendars exist, its domain's limits hold, and an enabled schedule fires at all.
 * Called with the config lock held.
 */
static int check_job(struct server *s, struct store *st, const struct job *j, struct ty_err *err)
{
    const struct tz_zone *z;
    int rc = tzdb_get(j->time_zone, &z, err);
    if (rc != 0)
        return rc == TY_ENOENT ? ty_error(err, TY_EINVAL, "time_zone", -1, 0,
                                          "time_zone: unknown time zone \"%s\"", j->time_zone)
                               : rc;
    char **lists[2] = {j->calendars_skip, j->calendars_only};
    for (int l = 0; l < 2; l++) {
        for (char **c = lists[l]; c != NULL && *c != NULL; c++) {
            char *json = NULL;
            int64_t v;
            if (store_obj_get(st, STORE_CALENDAR, *c, &json, &v, NULL) != 0)
                return ty_error(err, TY_EINVAL, l ? "calendars.only" : "calendars.skip", -1, 0,
                                "calendars.%s: no calendar named \"%s\"", l ? "only" : "skip", *c);
            free(json);
        }
    }
    if (j->enabled && j->schedule != NULL) {
        int64_t t, now = server_now(s);
        int64_t from = j->start_at > now ? j->start_at - 1 : now;
        if (cron_next(&j->cron, z, from, &t) != 0 || (j->end_at != 0 && t > j->end_at))
            return ty_error(err, TY_EINVAL, "schedule", -1, 0,
                            "schedule: \"%s\" never fires %s; a job cannot be enabled with it",
                            j->schedule, j->end_at ? "before end_at" : "after now");
    }
    /* domain limits along the chain from the job's domain to the root */
    char old_domain[DOMAIN_PATH_MAX + 1];
    bool exists = stored_domain(st, j->name, old_domain, sizeof old_domain);
    struct domain doms[32];
    const struct domain *chain[32];
    int64_t counts[32];
    size_t n = 0;
    char path[DOMAIN_PATH_MAX + 1];
    snprintf(path, sizeof path, "%s", j->domain);
    for (;;) {
        char *json = NULL;
        int64_t v;
        chain[n] = NULL;
        if (store_obj_get(st, STORE_DOMAIN, path, &json, &v, NULL) == 0) {
            json_t *o = json_loads(json, 0, NULL);
            if (o != NULL && domain_from_json(o, &doms[n], NULL) == 0)
                chain[n] = &doms[n];
            json_decref(o);
            free(json);
        }
        counts[n] = 0;
        if (chain[n] != NULL && chain[n]->max_jobs > 0) {
            if ((rc = store_job_count(st, path, &counts[n], err)) != 0)
                break;
            if (exists && domain_within(old_domain, path) && counts[n] > 0)
                counts[n]--; /* the job itself, counted already */
        }
        n++;
        if (path[0] == '\0' || n == 32)
            break;
        char parent[DOMAIN_PATH_MAX + 1];
        domain_parent(path, parent, sizeof parent);
        snprintf(path, sizeof path, "%s", parent);
    }
    if (rc == 0) {
        /* a year of the schedule's fires (365 for a daily job, 30 us): only for a limit */
        bool limited = false;
        for (size_t i = 0; i < n; i++)
            limited |= chain[i] != NULL && chain[i]->min_interval > 0;
        int64_t interval = limited ? job_min_interval(j, z, server_now(s)) : 0;
        rc = domain_check_job(chain, counts, n, j, interval, err);
    }
    for (size_t i = 0; i < n; i++)
        if (chain[i] != NULL)
            domain_free(&doms[i]);
    return rc;
}

/*
 * Put the real secret values in j (masks sent back keep the stored ones) and give them as
 * {"NAME": "value"} in *values (new reference), and the names whose value is new, changed
 * or removed in `changed` ("A,B"; for the log: a secret's change makes no new version, its
 * JSON being the same).  Called with the config lock held.
 */
static int resolve_secrets(struct store *cs, struct job *j, json_t **values, struct strbuf *changed,
                           struct ty_err *err)
{
    *values = NULL;
    json_t *stored = NULL;
    int rc = store_secrets_get(cs, j->name, &stored, err);
    if (rc != 0 && rc != TY_ENOENT)
        return rc;
    rc = job_secrets_resolve(j, stored, err);
    if (rc == 0 && (*values = job_secrets_json(j)) == NULL)
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(*values, k, v)
    {
        if (!json_equal(v, json_object_get(stored, k)))
            sb_addf(changed, "%s%s", changed->len ? "," : "", k);
    }
    json_object_foreach(stored, k, v)
    {
        if (*values != NULL && json_object_get(*values, k) == NULL)
            sb_addf(changed, "%s%s", changed->len ? "," : "", k);
    }
    json_decref(stored);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Saves and deletes
 */

/* The answer to a job change the store refused, in the words of the request: which job,
 * which version.  Returns rc. */
static int job_refused(struct server *s, int rc, const char *name, int64_t base, const char *done,
                       struct ty_err *err)
{
    if (rc == TY_EEXIST)
        ty_error(err, TY_EEXIST, "name", -1, 0, "a job named \"%s\" already exists", name);
    if (rc == TY_ENOENT)
        ty_error(err, TY_ENOENT, "name", -1, 0, "no job named \"%s\"", name);
    if (rc == TY_ECONFLICT)
        conflict(err, "job", name, base);
    if (rc == TY_ENOSPC)
        no_space(s, err, "job", name, done);
    return rc;
}

/* A refusal that concerns one job only (the next change may still be made), as opposed to
 * a failure of the store, after which nothing of its transaction can be kept. */
static bool refusal(int rc)
{
    return rc == TY_EINVAL || rc == TY_ERANGE || rc == TY_EEXIST || rc == TY_ENOENT ||
           rc == TY_ECONFLICT;
}

/* What saving one job gives the caller, for the executors and the log. */
struct saved {
    char *text;            /* the canonical JSON written (malloc'd) */
    int64_t version;       /* its version */
    json_t *secrets;       /* {"NAME": "value"}: what its runs get */
    struct strbuf changed; /* names of secrets whose value changed ("A,B") */
};

static void saved_init(struct saved *sv)
{
    memset(sv, 0, sizeof *sv);
    sb_init(&sv->changed);
}

static void saved_free(struct saved *sv)
{
    free(sv->text);
    json_decref(sv->secrets);
    sb_free(&sv->changed);
    saved_init(sv);
}

/*
 * Check job j and write its definition and secrets through cs, inside the caller's
 * transaction, with the config lock held.  A refusal (refusal(rc)) changes nothing; any
 * other error may have left part of the job written, and *fatal says the transaction must
 * be rolled back.  The refusals are put in the words of the request.
 */
static int save_one(struct server *s, struct store *cs, struct job *j, int64_t base,
                    const char *who, struct saved *sv, bool *fatal, struct ty_err *err)
{
    *fatal = false;
    int rc = check_job(s, cs, j, err);
    if (rc == 0)
        rc = resolve_secrets(cs, j, &sv->secrets, &sv->changed, err);
    if (rc == 0) {
        json_t *canon = job_to_json(j); /* secret values masked */
        sv->text = canon ? json_dumps(canon, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(canon);
        if (sv->text == NULL)
            rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    if (rc == 0)
        rc = store_obj_put(cs, STORE_JOB, j->name, sv->text, base, who, &sv->version, err);
    if (rc == 0) {
        /* the definition is written: a failure now leaves it without its secrets */
        rc = store_secrets_put(cs, j->name, sv->secrets, err);
        *fatal = rc != 0;
    }
    if (rc != 0 && !refusal(rc))
        *fatal = true;
    return job_refused(s, rc, j->name, base, "saved", err);
}

int server_job_save(struct server *s, struct job *j, int64_t base, const char *who, char **text,
                    int64_t *version, struct ty_err *err)
{
    *text = NULL;
    *version = 0;
    struct saved sv;
    saved_init(&sv);
    bool fatal;
    struct store *cs = server_config_lock(s);
    int rc = store_begin(cs, err);
    if (rc == 0) {
        rc = save_one(s, cs, j, base, who, &sv, &fatal, err);
        if (rc == 0)
            rc = store_commit(cs, err);
        if (rc != 0)
            store_rollback(cs);
    }
    if (rc == TY_ENOSPC)
        no_space(s, err, "job", j->name, "saved");
    if (rc == 0)
        notify(s, SMSG_JOB_CHANGED, j->name, sv.text, sv.version, sv.secrets);
    server_config_unlock(s);
    if (rc == 0) {
        log_info("job saved", "job=%s version=%lld by=%s", j->name, (long long)sv.version, who);
        if (sv.changed.len > 0) /* names only, never values */
            log_info("job secrets changed", "job=%s names=%s by=%s", j->name, sb_str(&sv.changed),
                     who);
        *text = sv.text;
        *version = sv.version;
        sv.text = NULL;
    }
    saved_free(&sv);
    return rc;
}

/* Delete job `name` and its secrets inside the caller's transaction (config lock held);
 * *fatal as for save_one. */
static int delete_one(struct server *s, struct store *cs, const char *name, int64_t base,
                      const char *who, bool *fatal, struct ty_err *err)
{
    json_t *none = json_object(); /* the definition and its secrets go together */
    int rc = store_obj_delete(cs, STORE_JOB, name, base, who, err);
    *fatal = rc != 0 && !refusal(rc);
    if (rc == 0) {
        rc = none != NULL ? store_secrets_put(cs, name, none, err)
                          : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        *fatal = rc != 0;
    }
    json_decref(none);
    return job_refused(s, rc, name, base, "removed", err);
}

int server_job_delete(struct server *s, const char *name, int64_t base, const char *who,
                      struct ty_err *err)
{
    bool fatal;
    struct store *cs = server_config_lock(s);
    int rc = store_begin(cs, err);
    if (rc == 0) {
        rc = delete_one(s, cs, name, base, who, &fatal, err);
        if (rc == 0)
            rc = store_commit(cs, err);
        if (rc != 0)
            store_rollback(cs);
    }
    if (rc == TY_ENOSPC)
        no_space(s, err, "job", name, "removed");
    if (rc == 0)
        notify(s, SMSG_JOB_CHANGED, name, NULL, 0, NULL);
    server_config_unlock(s);
    if (rc == 0)
        log_info("job deleted", "job=%s by=%s", name, who);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Batches
 */

/* The version of stored job `name` (a replace without a base needs the job to exist). */
static int current_version(struct store *cs, const char *name, int64_t *version, struct ty_err *err)
{
    char *text = NULL;
    int rc = store_obj_get(cs, STORE_JOB, name, &text, version, err);
    free(text);
    return rc;
}

/* Tell the loop of a batch's changes with one message: req (an assignment per change, in
 * order) and jobs (parallel to it: the saved job, for its alerts; empty for a deletion).
 * Both are the message's from here on.  Called with the config lock held. */
static void notify_batch(struct server *s, struct coord_request *req, struct job *jobs)
{
    struct smsg *m = server__msg_new(SMSG_JOBS_CHANGED);
    if (m == NULL) {
        log_error("out of memory: the executors were not told of a change", "jobs=%zu",
                  req->n_assign);
        for (size_t i = 0; i < req->n_assign; i++)
            job_free(&jobs[i]);
        free(jobs);
        coord_request_free(req);
        return;
    }
    m->req = req;
    m->jobs = jobs;
    m->n_jobs = req->n_assign;
    size_t n = req->n_assign;
    if (server__call(s, m, NOTIFY_MS) != 0)
        log_error("the loop did not take a configuration change", "jobs=%zu error=\"%s\"", n,
                  m->err.msg);
    else if (m->writer_seq > 0)
        server__writer_sync(s, m->writer_seq, ALERT_SYNC_MS);
    server__msg_unref(s, m);
}

/* The loop's side of SMSG_JOBS_CHANGED: the alerts of every job, then one assignment
 * request for all of them. */
void server__jobs_changed(struct server *s, struct smsg *m)
{
    struct coord_request *req = m->req;
    m->req = NULL;
    for (size_t i = 0; i < req->n_assign; i++) {
        uint64_t seq = req->assign[i].definition == NULL
                           ? alerts__job_removed(s, req->assign[i].job)
                           : alerts__job_defined(s, &m->jobs[i]);
        if (seq > m->writer_seq)
            m->writer_seq = seq;
    }
    send_assign(s, req, false);
}

int server_jobs_save_batch(struct server *s, struct server_batch_item *items, size_t n,
                           const char *who, struct ty_err *err)
{
    struct coord_request *req = assign_request(s, n);
    struct job *jobs = calloc(n > 0 ? n : 1, sizeof *jobs);
    if (req == NULL || jobs == NULL) {
        coord_request_free(req);
        free(jobs);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    size_t counts[4] = {0}; /* made, by op */
    struct store *cs = server_config_lock(s);
    int rc = store_begin(cs, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct server_batch_item *it = &items[i];
        if (it->rc != 0)
            continue; /* refused by the caller already */
        ty_err_clear(&it->err);
        bool fatal = false;
        const char *name = it->op == SERVER_BATCH_DELETE ? it->name : it->job.name;
        int64_t base = it->op == SERVER_BATCH_CREATE ? -1 : it->base;
        struct saved sv;
        saved_init(&sv);
        if (it->op == SERVER_BATCH_DELETE) {
            it->rc = delete_one(s, cs, name, base, who, &fatal, &it->err);
        } else {
            if (base == 0) {
                it->rc = current_version(cs, name, &base, &it->err);
                fatal = it->rc != 0 && !refusal(it->rc);
                job_refused(s, it->rc, name, base, "saved", &it->err);
            }
            if (it->rc == 0)
                it->rc = save_one(s, cs, &it->job, base, who, &sv, &fatal, &it->err);
        }
        if (fatal) {
            rc = it->rc;
            *err = it->err;
        } else if (it->rc == 0) {
            struct coord_assignment *a = &req->assign[req->n_assign];
            it->version = sv.version;
            if (fill(a, s, name, sv.text, sv.version, sv.secrets, 0) != 0) {
                coord_assignment_clear(a);
                rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            } else {
                if (it->op != SERVER_BATCH_DELETE) {
                    jobs[req->n_assign] = it->job; /* moved: the caller's is left empty */
                    memset(&it->job, 0, sizeof it->job);
                }
                req->n_assign++;
                counts[it->op]++;
            }
            if (sv.changed.len > 0) /* names only, never values */
                log_info("job secrets changed", "job=%s names=%s by=%s", name, sb_str(&sv.changed),
                         who);
        }
        saved_free(&sv);
    }
    if (rc == 0)
        rc = store_commit(cs, err);
    if (rc != 0) {
        store_rollback(cs);
        if (rc == TY_ENOSPC)
            ty_error(err, TY_ENOSPC, NULL, -1, 0,
                     "the batch was not saved: the disk is full (data directory %s); nothing "
                     "was changed",
                     s->data_dir);
        for (size_t i = 0; i < req->n_assign; i++) {
            job_free(&jobs[i]);
            coord_assignment_clear(&req->assign[i]);
        }
        req->n_assign = 0;
    }
    if (rc == 0 && req->n_assign > 0) {
        notify_batch(s, req, jobs);
        req = NULL;
        jobs = NULL;
    }
    server_config_unlock(s);
    coord_request_free(req);
    free(jobs);
    size_t made =
        counts[SERVER_BATCH_CREATE] + counts[SERVER_BATCH_REPLACE] + counts[SERVER_BATCH_DELETE];
    if (rc == 0)
        log_info("job batch saved", "created=%zu replaced=%zu deleted=%zu refused=%zu by=%s",
                 counts[SERVER_BATCH_CREATE], counts[SERVER_BATCH_REPLACE],
                 counts[SERVER_BATCH_DELETE], n - made, who);
    return rc;
}

static const char *what_of(enum store_kind kind)
{
    return kind == STORE_DOMAIN ? "domain" : "calendar";
}

static const char *key_of(enum store_kind kind)
{
    return kind == STORE_DOMAIN ? "path" : "name";
}

int server_obj_save(struct server *s, enum store_kind kind, const char *name, const char *text,
                    int64_t base, const char *who, int64_t *version, struct ty_err *err)
{
    struct store *cs = server_config_lock(s);
    int rc = 0;
    if (base == 0) { /* replace whatever is there: it must exist */
        char *old = NULL;
        rc = store_obj_get(cs, kind, name, &old, &base, err);
        free(old);
    }
    if (rc == 0)
        rc = store_obj_put(cs, kind, name, text, base, who, version, err);
    if (rc == 0 && kind == STORE_CALENDAR)
        notify(s, SMSG_CALENDAR_CHANGED, name, text, *version, NULL);
    server_config_unlock(s);
    const char *what = what_of(kind);
    if (rc == TY_EEXIST)
        ty_error(err, TY_EEXIST, key_of(kind), -1, 0, "a %s \"%s\" already exists", what, name);
    if (rc == TY_ENOENT)
        ty_error(err, TY_ENOENT, key_of(kind), -1, 0, "no %s \"%s\"", what, name);
    if (rc == TY_ECONFLICT)
        conflict(err, what, name, base);
    if (rc == TY_ENOSPC)
        no_space(s, err, what, name, "saved");
    return rc;
}

int server_obj_delete(struct server *s, enum store_kind kind, const char *name, int64_t base,
                      const char *who, struct ty_err *err)
{
    struct store *cs = server_config_lock(s);
    const char *what = what_of(kind);
    char first[JOB_NAME_MAX + 1] = "";
    int64_t users = 0;
    int rc = kind == STORE_DOMAIN
                 ? store_job_count(cs, name, &users, err)
                 : store_calendar_users(cs, name, &users, first, sizeof first, err);
    if (rc == 0 && users > 0 && kind == STORE_DOMAIN) {
        /* name one of them: the first of the subtree */
        struct store_obj_query q = {.kind = STORE_JOB, .domain = name, .enabled = -1, .limit = 1};
        json_t *page = NULL;
        if (store_obj_page(cs, &q, &page, NULL) == 0)
            snprintf(first, sizeof first, "%s",
                     json_string_value(json_object_get(
                         json_array_get(json_object_get(page, "items"), 0), "name")));
        json_decref(page);
    }
    if (rc == 0 && users > 0)
        rc = ty_error(err, TY_EBUSY, key_of(kind), -1, 0,
                      "%s \"%s\" is used by %lld job(s) (\"%s\"%s); change or remove them first",
                      what, name, (long long)users, first, users > 1 ? ", ..." : "");
    if (rc == 0)
        rc = store_obj_delete(cs, kind, name, base, who, err);
    if (rc == 0 && kind == STORE_CALENDAR)
        notify(s, SMSG_CALENDAR_CHANGED, name, NULL, 0, NULL);
    server_config_unlock(s);
    if (rc == TY_ENOENT)
        ty_error(err, TY_ENOENT, key_of(kind), -1, 0, "no %s \"%s\"", what, name);
    if (rc == TY_ECONFLICT)
        conflict(err, what, name, base);
    if (rc == TY_ENOSPC)
        no_space(s, err, what, name, "removed");
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * A job's live state
 */

/* What the API shows of a job's state: its next fire and its runs going and waiting. */
struct shown_state {
    int64_t next;
    const struct tz_zone *zone;
    uint32_t running, waiting;
};

static void live_counts(struct server *s, const char *name, struct shown_state *st)
{
    pthread_mutex_lock(&s->live_mu);
    const struct live_job *lj = strmap_get(&s->live_jobs, name);
    if (lj != NULL) {
        st->running = lj->running;
        st->waiting = lj->waiting;
    }
    pthread_mutex_unlock(&s->live_mu);
}

static void state_text(const struct shown_state *st, struct strbuf *out)
{
    if (st->next > 0) {
        char buf[CIVIL_RFC3339_MAX];
        struct tz_info ti;
        tz_lookup(st->zone, st->next, &ti);
        civil_format_rfc3339(st->next, ti.utoff, buf);
        sb_addf(out, "{\"next_fire\":\"%s\",", buf);
    } else {
        sb_adds(out, "{\"next_fire\":null,");
    }
    sb_addf(out, "\"running\":%u,\"waiting\":%u}", st->running, st->waiting);
}

json_t *server_job_state(struct server *s, const char *name, const json_t *definition)
{
    struct shown_state st = {0};
    struct job_timing t;
    if (job_timing_from_json(definition, &t, NULL) == 0 &&
        tzdb_get(t.time_zone, &st.zone, NULL) == 0)
        st.next = job_timing_next(&t, st.zone, server_now(s));
    live_counts(s, name, &st);
    struct strbuf sb;
    sb_init(&sb);
    state_text(&st, &sb);
    json_t *o = sb_failed(&sb) ? NULL : json_loads(sb_str(&sb), 0, NULL);
    sb_free(&sb);
    return o != NULL ? o : json_object();
}

void server_job_state_text(struct server *s, const char *name, const char *text, size_t len,
                           struct strbuf *out)
{
    /* the last schedule compiled, per API thread: most jobs of a page share few schedules */
    static _Thread_local struct job_text_memo memo;
    struct shown_state st = {0};
    struct job_sched js;
    struct strbuf scratch;
    sb_init(&scratch);
    int rc = job_text_compact(text, len, &scratch, &js, &memo, NULL);
    sb_free(&scratch);
    if (rc == 0) {
        struct job_timing t = {js.enabled,   js.scheduled, js.cron,
                               js.time_zone, js.start_at,  js.end_at};
        if (tzdb_get(js.time_zone, &st.zone, NULL) == 0)
            st.next = job_timing_next(&t, st.zone, server_now(s));
    } else if (rc == 1) { /* written in a way only the full reader takes */
        json_t *o = json_loadb(text, len, 0, NULL);
        struct job_timing t;
        if (o != NULL && job_timing_from_json(o, &t, NULL) == 0 &&
            tzdb_get(t.time_zone, &st.zone, NULL) == 0)
            st.next = job_timing_next(&t, st.zone, server_now(s));
        json_decref(o);
    }
    live_counts(s, name, &st);
    state_text(&st, out);
}
