/*
 * shards.c - which shards of a job this executor fires, for which fires, and when it fires
 * nothing at all (fenced).
 *
 * Ownership.  An assignment names the shards of a job this executor owns (none named: all
 * of them).  Scheduled fires make runs and records (skips for pause windows, calendars,
 * misfires, overlap ...) for owned shards only.  The fire id of shard s stays
 * "<job>@<at>#s": an executor that owns it too makes the same id, and the store refuses a
 * second start of one fire id, which is the cluster's guard against a double start.  Every
 * result still carries the job's whole shard count (fire_shards), so a fan-in counting
 * settled shards across executors knows when the fire is complete.  A run now or a
 * downstream fire naming shards runs those it owns and answers the others "not_owned".
 *
 * Ownership goes by fire time, not by when a fire is processed.  A change of a held job's
 * shards takes effect at a cut C: a shard taken away stays owned for the fires at or before
 * C, a shard given is owned for the fires after C; per shard that is one span of fire
 * times, (after, until].  The trigger engine runs on its own thread and may hand the loop a
 * fire at or before C after the change (its ring is not drained yet, it was late, a resumed
 * job's misfires are still being walked); judged by processing time it would be dropped or
 * made twice, judged by its time it goes to exactly one owner.  The job's schedule is not
 * touched: runs of the shards it keeps go on, and those of the shards it lost run to their
 * end and are recorded as usual (so do their retries: they belong to fires it made).
 *
 * The cut, and "through".  One cut per assignment request, taken after the loop has
 * processed what the engine had handed over: C = max(now - 1, the last fire made of every
 * held job the request changes or removes).  The engine hands a second's fires over when
 * that second begins, on the same clock: nothing after now has been handed over, and the
 * fire of this very second, if not processed yet, goes to the new owner instead of being
 * raced for.  The reply says "through": C.  Every fire at or before C of a shard taken away
 * is made or recorded by this executor (by the rule above, also one the engine hands over
 * later), none after C is, and the new owner resumes after C.  A job removed outright
 * leaves the table at once; a fire at or before C the engine still owes it (it runs a
 * second or more behind) is recorded then, skipped ("interrupted", saying why), so no fire
 * falls between the two owners.  While fenced nothing is made, and the reply says
 * "fenced": C is then only where this executor stopped owning the shards.
 *
 * Gaps.  A shard given with resume_after R (the job's last fire made, per the store) owns
 * the fires (R, C] too: nobody made them when the executor it came from died.  They are
 * made by a trigger-engine entry of the gap's own, ending at C, so the job's misfire
 * policy meets them exactly as it meets a resumed job's (late ones skipped, run once, or
 * caught up); its runs are ordinary runs, and its misfire records name the executor that
 * was lost ("executor e1 lost", the assignment's `from`), as a job new here does for its
 * resumed fires.  A gap's entry is dropped GAP_SETTLE_MS after it was set: its fires all
 * lie in the past, so the engine hands them over at once.
 *
 * Strategy "local".  Every executor fires its owned shards of a local job (normally all of
 * them), so the fire ids carry its id: "<job>@<at>~<executor>#<shard>" (a run now made here
 * "<job>@<at>!m<run>~<executor>"): two executors never collide, and a fan-in counts one
 * executor's fire, whose fire_shards are the shards it made.  Executor ids and job names
 * have no '~', '@', '!' or '#', so the parts stay apart, and the base (all before the last
 * '#') is still what fan-in keys on.  The strategy is read from the definition's text here;
 * core/job.c is only now learning the field, so jobs.c takes it out before validating.  A
 * job whose local fire ids would not fit STORE_FIRE_ID_MAX is refused at assignment.
 *
 * Fencing.  executor_fence(true) (the ZooKeeper lease ended) sets a flag at once, on the
 * caller's thread: from then on the loop starts nothing (queued runs stay queued, retries
 * wait) and makes no fire, not even a record of it: the shards' next owner makes them from
 * its resume_after.  The loop then kills the runs of jobs whose on_executor_death is
 * "kill" (their process group: TERM, then KILL after kill_grace; recorded interrupted,
 * naming the lost lease); the others run on.  Unfencing resumes every held job from now,
 * U: the span (the job's last fire made, U] whose fires the fence dropped is the job's
 * hole, and it is made at once as a gap, under the job's misfire policy (from resume_after
 * R, (max(R, hole start), U], when an assignment taken while fenced gave one).  That is
 * right because of who unfences: the cluster's agent lifts a fence only in the session
 * that set it (nobody can have had the shards meanwhile: the ensemble moves them only
 * after the session expired), and after a new session it first drops every job, so a job
 * held again is new here and resumes from the leader's resume_after.  A fence does not
 * touch the trigger engine, so it costs nothing per idle job: a hole is noted when a fire
 * is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/civil.h"
#include "../os/log.h"
#include "executor_impl.h"

#define GAP_SETTLE_MS 2000 /* after this, a gap's entry has handed over all it had */
#define TIME_DIGITS   12   /* a fire time as text, room for any instant a cron can give */
#define SHARD_DIGITS  5    /* "#9999" and its '#' */

static const struct xspan ALL = {INT64_MIN, INT64_MAX};
static const struct xspan NEVER = {INT64_MIN, INT64_MIN};

/* ---------------------------------------------------------------------------------------
 * Spans
 */

static struct xspan span_of(const struct xown *o, uint32_t shard)
{
    return shard < o->n_spans ? o->spans[shard] : o->rest;
}

bool executor__owns(const struct xjob *j, uint32_t shard, int64_t at)
{
    const struct xown *o = j->own;
    if (o == NULL || !o->partial)
        return true;
    struct xspan s = span_of(o, shard);
    return s.after < at && at <= s.until;
}

bool executor__owns_now(const struct xjob *j, uint32_t shard)
{
    const struct xown *o = j->own;
    return o == NULL || !o->partial || span_of(o, shard).until == INT64_MAX;
}

bool executor__owns_whole(const struct xjob *j, int64_t at)
{
    const struct xown *o = j->own;
    if (o == NULL || !o->partial)
        return true;
    for (uint32_t s = 0; s < j->def.shards; s++)
        if (!executor__owns(j, s, at))
            return false;
    return true;
}

bool executor__is_local(const struct xjob *j)
{
    return j->own != NULL && j->own->local;
}

/* Shard s listed in a's shards (ascending, checked by executor__own_check). */
static bool listed(const struct coord_assignment *a, uint32_t s)
{
    if (a->shards == NULL)
        return true;
    uint32_t lo = 0, hi = a->n_shards;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->shards[mid] == s)
            return true;
        if (a->shards[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* One past the highest shard a lists (0: none listed, or all of them: NULL). */
static uint32_t listed_end(const struct coord_assignment *a)
{
    return a->shards != NULL && a->n_shards > 0 ? a->shards[a->n_shards - 1] + 1 : 0;
}

int executor__own_check(const struct coord_assignment *a, uint32_t shards, struct ty_err *err)
{
    for (uint32_t i = 0; a->shards != NULL && i < a->n_shards; i++) {
        if (i > 0 && a->shards[i] <= a->shards[i - 1])
            return ty_error(err, TY_EINVAL, "shards", -1, 0,
                            "job %s: shards[%u]: %u after %u (shards are listed ascending, once)",
                            a->job, i, a->shards[i], a->shards[i - 1]);
        if (shards > 0 && a->shards[i] >= shards)
            return ty_error(err, TY_EINVAL, "shards", -1, 0,
                            "job %s: shards[%u]: %u is not a shard of the job (0-%u)", a->job, i,
                            a->shards[i], shards - 1);
    }
    return 0;
}

bool executor__own_changes(const struct xjob *j, const struct coord_assignment *a)
{
    const struct xown *o = j->own;
    if (o == NULL || !o->partial)
        return a->shards != NULL;
    if (a->shards == NULL)
        return true; /* partial now, even when every span is still open */
    uint32_t n = listed_end(a) > o->n_spans ? listed_end(a) : o->n_spans;
    for (uint32_t s = 0; s < n; s++)
        if ((span_of(o, s).until == INT64_MAX) != listed(a, s))
            return true;
    return o->rest.until == INT64_MAX;
}

/* j's own, made when it has none (every shard, always).  NULL when out of memory. */
static struct xown *own_get(struct xjob *j)
{
    if (j->own == NULL && (j->own = calloc(1, sizeof *j->own)) != NULL)
        j->own->rest = ALL;
    return j->own;
}

/* Make o describe at least n shards, new ones as rest says.  NULL when out of memory (o is
 * still the job's). */
static struct xown *own_grow(struct xjob *j, uint32_t n)
{
    struct xown *o = j->own;
    if (n <= o->n_spans)
        return o;
    struct xown *g = realloc(o, sizeof *o + (size_t)n * sizeof o->spans[0]);
    if (g == NULL)
        return NULL;
    for (uint32_t s = g->n_spans; s < n; s++)
        g->spans[s] = g->rest;
    g->n_spans = n;
    j->own = g;
    return g;
}

/* ---------------------------------------------------------------------------------------
 * Gaps
 */

struct xgap *executor__gap(struct executor *x, uint32_t id)
{
    for (struct xgap *g = x->gaps; g != NULL; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

struct xjob *executor__gap_job(struct executor *x, const struct xgap *g)
{
    struct xjob *j = executor__job_by_id(x, g->job_id);
    return j != NULL && strcmp(j->def.name, g->job) == 0 ? j : NULL;
}

/* Hand gap g to the trigger engine: the job's schedule and misfire policy, from g->after
 * to g->through.  A job that no longer fires on a schedule leaves nothing to make. */
static void gap_start(struct executor *x, struct xgap *g)
{
    g->done_ms = (int64_t)uv_now(&x->loop) + GAP_SETTLE_MS;
    struct xjob *j = executor__gap_job(x, g);
    if (j == NULL || !j->def.enabled || j->def.schedule == NULL)
        return;
    int64_t end = j->def.end_at != 0 && j->def.end_at < g->through ? j->def.end_at : g->through;
    struct sched_spec sp = {.cron = j->def.cron,
                            .zone = j->zone,
                            .start_at = j->def.start_at,
                            .end_at = end,
                            .misfire_threshold = j->def.misfire_threshold,
                            .misfire = j->def.misfire,
                            .catch_up_max = j->def.catch_up_max};
    if (sched_set(x->sched, g->id, &sp, g->after, 0) != 0)
        log_error("cannot schedule a gap; its fires are not made here",
                  "job=%s after=%lld through=%lld", g->job, (long long)g->after,
                  (long long)g->through);
    else
        log_info("making a gap's fires", "job=%s after=%lld through=%lld shards=%u from=%s", g->job,
                 (long long)g->after, (long long)g->through, g->n, g->from[0] ? g->from : "-");
}

/* A gap of job j: fires in (after, through] for shards[0..n).  Started at once, or at the
 * unfence when fenced.  Logged when it cannot be made (no id left, no memory). */
static void gap_new(struct executor *x, struct xjob *j, int64_t after, int64_t through,
                    const uint32_t *shards, uint32_t n, const char *from)
{
    if (n == 0 || after >= through)
        return;
    struct xgap *g = calloc(1, sizeof *g + (size_t)n * sizeof g->shards[0]);
    if (g == NULL || executor__id_alloc(x, &g->id) != 0) {
        free(g);
        log_error("cannot make a gap (no job id or memory left); its fires are not made here",
                  "job=%s after=%lld through=%lld", j->def.name, (long long)after,
                  (long long)through);
        return;
    }
    g->job_id = j->id;
    snprintf(g->job, sizeof g->job, "%s", j->def.name);
    g->after = after;
    g->through = through;
    snprintf(g->from, sizeof g->from, "%s", from != NULL ? from : "");
    g->n = n;
    memcpy(g->shards, shards, (size_t)n * sizeof *shards);
    g->next = x->gaps;
    x->gaps = g;
    if (!atomic_load(&x->fenced))
        gap_start(x, g);
}

void executor__gaps_sweep(struct executor *x, bool all)
{
    int64_t now = all ? INT64_MAX : (int64_t)uv_now(&x->loop);
    bool due = false;
    for (struct xgap *g = x->gaps; g != NULL && !due; g = g->next)
        due = all || (g->done_ms != 0 && g->done_ms <= now);
    if (!due)
        return;
    if (!all)
        executor__drain_fires(x); /* what the engine handed over is the gap's last */
    struct xgap **p = &x->gaps;
    while (*p != NULL) {
        struct xgap *g = *p;
        if (all || (g->done_ms != 0 && g->done_ms <= now)) {
            *p = g->next;
            if (!all) {
                sched_remove(x->sched, g->id);
                executor__id_free(x, g->id);
            }
            free(g);
        } else {
            p = &g->next;
        }
    }
}

/* A shard's part of a gap: its fires in (after, through]. */
struct piece {
    uint32_t shard;
    int64_t after, through;
};

static int piece_cmp(const void *pa, const void *pb)
{
    const struct piece *a = pa, *b = pb;
    if (a->after != b->after)
        return a->after < b->after ? -1 : 1;
    if (a->through != b->through)
        return a->through < b->through ? -1 : 1;
    return a->shard < b->shard ? -1 : a->shard > b->shard;
}

/* The gaps of pieces p[0..n) (sorted here): one per span, for the shards that share it
 * (normally one; two when some shards were this executor's for part of it already). */
static void gaps_of(struct executor *x, struct xjob *j, struct piece *p, uint32_t n,
                    const char *from)
{
    qsort(p, n, sizeof *p, piece_cmp);
    uint32_t *shards = malloc((size_t)(n ? n : 1) * sizeof *shards);
    if (shards == NULL) {
        log_error("out of memory: a gap's fires are not made here", "job=%s", j->def.name);
        return;
    }
    for (uint32_t i = 0, k; i < n; i = k) {
        uint32_t m = 0;
        for (k = i; k < n && p[k].after == p[i].after && p[k].through == p[i].through; k++)
            shards[m++] = p[k].shard;
        gap_new(x, j, p[i].after, p[i].through, shards, m, from);
    }
    free(shards);
}

/* Fill j's hole (a fence dropped its fires) from resume_after r: the fires in (max(r, hole
 * start), hole end] of each shard that were this executor's by fire time (its span: a shard
 * given during the fence owns those after its cut, one taken away those up to its cut).
 * The hole is closed after, made or not. */
static void fill_hole(struct executor *x, struct xjob *j, int64_t r, const char *from)
{
    struct xown *o = j->own;
    int64_t after = r > o->hole_after ? r : o->hole_after, through = o->hole_until;
    o->hole_after = o->hole_until = 0;
    o->fenced_resume = 0;
    if (after >= through)
        return;
    struct piece *p = malloc((size_t)(j->def.shards ? j->def.shards : 1) * sizeof *p);
    if (p == NULL) {
        log_error("out of memory: a hole's fires are not made", "job=%s", j->def.name);
        return;
    }
    uint32_t n = 0;
    for (uint32_t s = 0; s < j->def.shards; s++) {
        struct xspan sp = o->partial ? span_of(o, s) : ALL;
        struct piece pc = {s, sp.after > after ? sp.after : after,
                           sp.until < through ? sp.until : through};
        if (pc.after < pc.through)
            p[n++] = pc;
    }
    gaps_of(x, j, p, n, from);
    free(p);
}

/* ---------------------------------------------------------------------------------------
 * Assignments
 */

/* The shards of a job new here, or given before anything fired: spans that hold for every
 * fire.  0 or TY_ENOMEM. */
static int own_plain(struct xjob *j, const struct coord_assignment *a)
{
    struct xown *o = j->own;
    if (a->shards == NULL) {
        o->partial = false;
        o->n_spans = 0;
        o->rest = ALL;
        return 0;
    }
    o->partial = true;
    o->n_spans = 0;
    o->rest = NEVER;
    if ((o = own_grow(j, listed_end(a))) == NULL)
        return TY_ENOMEM;
    for (uint32_t i = 0; i < a->n_shards; i++)
        o->spans[a->shards[i]] = ALL;
    return 0;
}

/* A held job's shards change at cut c (see the top): spans end or begin there; the shards
 * it gains own (resume_after, c] as a gap.  j is ready.  0 or TY_ENOMEM. */
static int own_cut(struct executor *x, struct xjob *j, const struct coord_assignment *a, int64_t c)
{
    struct xown *o = j->own;
    if (!o->partial) {
        o->partial = true;
        o->n_spans = 0;
        o->rest = ALL;
    }
    uint32_t n = listed_end(a) > j->def.shards ? listed_end(a) : j->def.shards;
    if ((o = own_grow(j, n)) == NULL)
        return TY_ENOMEM;
    /* a shard given: its fires up to the cut since resume_after are a gap, less those it
     * owned itself until an earlier cut (it made them) */
    struct piece *gained = malloc((size_t)(o->n_spans ? o->n_spans : 1) * sizeof *gained);
    if (gained == NULL)
        return TY_ENOMEM;
    uint32_t n_gained = 0, n_lost = 0, n_new = 0;
    int64_t r = a->resume_after;
    for (uint32_t s = 0; s < o->n_spans; s++) {
        struct xspan was = o->spans[s];
        bool owned = was.until == INT64_MAX, want = listed(a, s);
        if (owned && !want) {
            o->spans[s].until = c;
            n_lost++;
        } else if (!owned && want) {
            o->spans[s] = (struct xspan){c, INT64_MAX};
            n_new++;
            if (s < j->def.shards && r > 0)
                gained[n_gained++] = (struct piece){s, was.until > r ? was.until : r, c};
        }
    }
    bool rest_owned = o->rest.until == INT64_MAX;
    if (rest_owned && a->shards != NULL)
        o->rest.until = c;
    else if (!rest_owned && a->shards == NULL)
        o->rest = (struct xspan){c, INT64_MAX};
    if (n_lost + n_new > 0)
        log_info("job's shards move", "job=%s cut=%lld lost=%u gained=%u resume_after=%lld",
                 j->def.name, (long long)c, n_lost, n_new, (long long)r);
    gaps_of(x, j, gained, n_gained, a->from);
    free(gained);
    return 0;
}

int executor__own_assign(struct executor *x, struct xjob *j, const struct coord_assignment *a,
                         bool fresh, bool local, int64_t cut, struct ty_err *err)
{
    bool fenced = atomic_load(&x->fenced);
    if (fresh)
        j->unfences = x->unfences;
    if (j->own == NULL && a->shards == NULL && !local && a->from == NULL &&
        !(fenced && a->resume_after > 0))
        return 0; /* every shard, for every fire: the embedded server's case */
    struct xown *o = own_get(j);
    if (o == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    o->local = local;
    if (a->from != NULL) {
        snprintf(o->from, sizeof o->from, "%s", a->from);
        o->from_through = cut;
        if (a->uncertain_until > o->uncertain)
            o->uncertain = a->uncertain_until;
    }
    /* before the executor has reconciled nothing has fired: no cut to make */
    bool plain = fresh || !x->reconciled || j->text != NULL;
    int rc = plain ? own_plain(j, a) : own_cut(x, j, a, cut);
    if (rc != 0)
        return ty_error(err, rc, NULL, -1, 0, "out of memory");
    o = j->own;
    if (a->resume_after > 0 && fenced)
        o->fenced_resume = a->resume_after; /* fills the hole at the unfence */
    else if (a->resume_after > 0 && !plain && o->hole_until != 0 && o->hole_until != INT64_MAX)
        fill_hole(x, j, a->resume_after, a->from);
    return 0;
}

/* Assignment a changes the shards of a job held here, or takes it away. */
static bool moves(struct executor *x, const struct coord_assignment *a)
{
    const struct xjob *j = strmap_get(&x->jobs, a->job);
    return j != NULL && (a->definition == NULL || executor__own_changes(j, a));
}

int64_t executor__cut(struct executor *x, const struct coord_request *req, uint32_t set)
{
    /* what the engine handed over is made under the shards as they were; only when the
     * request moves something, so a plain change of definition meets the ring as ever */
    bool any = req->complete;
    for (size_t i = 0; i < req->n_assign && !any; i++)
        any = moves(x, &req->assign[i]);
    if (any)
        executor__drain_fires(x);
    int64_t c = executor__now(x) - 1;
    for (size_t i = 0; any && i < req->n_assign; i++) {
        const struct xjob *j = strmap_get(&x->jobs, req->assign[i].job);
        if (j != NULL && moves(x, &req->assign[i]) && j->last_fire > c)
            c = j->last_fire;
    }
    if (req->complete) { /* the jobs this full set leaves out are removed at its end */
        size_t pos = 0;
        const char *key;
        void *val;
        while (strmap_next(&x->jobs, &pos, &key, &val)) {
            const struct xjob *j = val;
            if (j->sync != set && j->last_fire > c)
                c = j->last_fire;
        }
    }
    return c;
}

/* ---------------------------------------------------------------------------------------
 * Fire ids of local jobs
 */

int executor__local_fits(const struct executor *x, const char *job, struct ty_err *err)
{
    size_t n = strlen(job) + 1 + TIME_DIGITS + 1 + strlen(x->id) + SHARD_DIGITS + 1;
    if (n <= STORE_FIRE_ID_MAX)
        return 0;
    return ty_error(err, TY_EINVAL, "strategy", -1, 0,
                    "job %s: strategy \"local\": its fire ids (\"%s@<time>~%s#<shard>\") would "
                    "be longer than %d bytes; a shorter job name or executor id is needed",
                    job, job, x->id, STORE_FIRE_ID_MAX - 1);
}

int executor__local_base(const struct executor *x, const struct xjob *j, char *base, size_t cap)
{
    if (!executor__is_local(j))
        return 0;
    size_t n = strlen(base), id = strlen(x->id);
    if (n + 1 + id + SHARD_DIGITS >= cap)
        return TY_ERANGE;
    snprintf(base + n, cap - n, "~%s", x->id);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Fencing
 */

bool executor__fence_drops(struct executor *x, struct xjob *j, const struct sched_fire *f, bool gap)
{
    bool fenced = executor__lease_check(x);
    if (gap)
        return fenced; /* a fence drops what a gap still had to make, like all the rest */
    int64_t t = f->kind == SCHED_FIRE ? f->at : f->last;
    bool held = j->unfences < x->unfences; /* held through the last fence */
    if (!fenced && !(held && t <= x->unfenced_at && t > j->last_fire))
        return false;
    if (t <= j->last_fire)
        return true; /* made before the fence: nothing to note */
    /* the fence's: dropped, and the job's hole says so */
    int64_t until = fenced ? INT64_MAX : x->unfenced_at;
    struct xown *o = own_get(j);
    if (o == NULL) {
        log_error("out of memory: a fire the fence dropped is not noted", "job=%s at=%lld",
                  j->def.name, (long long)t);
        return true;
    }
    if (o->hole_until != 0 && o->hole_until != until && o->hole_until != INT64_MAX)
        log_warn("an earlier fence's hole was never filled; its fires are left to the store",
                 "job=%s after=%lld until=%lld", j->def.name, (long long)o->hole_after,
                 (long long)o->hole_until);
    if (o->hole_until == 0 || (o->hole_until != until && o->hole_until != INT64_MAX)) {
        o->hole_after = j->last_fire;
        o->hole_until = until;
    }
    return true;
}

void executor__fence_apply(struct executor *x, bool on)
{
    if (on) {
        atomic_store(&x->fenced, true);
        if (x->fence_on)
            return;
        x->fence_on = true;
        log_warn("executor fenced: it starts nothing until it is unfenced",
                 "id=%s running=%u "
                 "queued=%u",
                 x->id, (unsigned)atomic_load(&x->n_running), (unsigned)atomic_load(&x->q_len));
        executor__fence_kill(x);
        executor__status_changed(x);
        return;
    }
    if (!x->fence_on && !atomic_load(&x->fenced))
        return;
    /* still fenced: what the engine handed over meanwhile is dropped, noted in holes */
    executor__drain_fires(x);
    int64_t u = executor__now(x);
    x->unfenced_at = u;
    x->unfences++;
    x->fence_on = false;
    atomic_store(&x->fenced, false);
    /* close the holes; fill those an assignment asked for while fenced */
    size_t pos = 0, holes = 0;
    const char *key;
    void *val;
    while (strmap_next(&x->jobs, &pos, &key, &val)) {
        struct xjob *j = val;
        if (j->own == NULL)
            continue;
        if (j->own->hole_until == INT64_MAX) {
            j->own->hole_until = u;
            holes++;
        }
        if (j->own->hole_until == 0) { /* nothing was dropped: nothing to make */
            j->own->fenced_resume = 0;
            continue;
        }
        /* the table keeps its shape: make_ready only changes the value under the name */
        if ((j = executor__job_ready(x, key)) != NULL)
            fill_hole(x, j, j->own->fenced_resume, NULL);
    }
    for (struct xgap *g = x->gaps; g != NULL; g = g->next)
        if (g->done_ms == 0)
            gap_start(x, g);
    log_info("executor unfenced; held jobs resume from now", "id=%s at=%lld jobs_with_holes=%zu",
             x->id, (long long)u, holes);
    executor__retries_resume(x);
    executor__pump(x);
    executor__status_changed(x);
}
