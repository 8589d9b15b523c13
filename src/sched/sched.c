/*
 * sched.c - the trigger engine.
 *
 * Structure.  Each job has an entry (its schedule, its next fire, links) in a paged
 * array indexed by job id; pages are allocated on first use and never move, so other
 * threads may read an entry's atomic `next` without locks.  Entries whose next fire lies
 * within WHEEL_SLOTS seconds of the engine's cursor sit in a timing wheel of one-second
 * slots (an intrusive doubly-linked list per slot, a bitmap of non-empty slots); later
 * ones sit in a binary heap and move into the wheel as the cursor approaches.  Because
 * every cron fire is a whole second, a slot holds exactly the fires of one second.
 *
 * One tick.  The engine wakes at the start of a second, then: (1) hands over every fire
 * of every slot from the cursor up to now — only ring writes, so the last of 100,000
 * fires is handed over a few milliseconds after the first; (2) only then computes each
 * fired job's next fire and files it again.  Lateness is measured at (1).
 *
 * Time.  Deadlines are absolute CLOCK_REALTIME instants (a pthread condition variable
 * waits on that clock), so a clock stepped forward wakes the engine at once and the
 * skipped fires meet the misfire policy, and a clock stepped back makes it sleep until the
 * wall clock reaches the next fire again: the cursor never moves backwards, so no second
 * is fired twice.  Timer slack is set to 1 ns on the engine thread.
 *
 * Commands (set, remove) are queued under a mutex and applied by the engine thread at its
 * next wake-up, so the wheel has a single owner and needs no lock.
 */
#define _GNU_SOURCE
#include "sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#define WHEEL_BITS    12
#define WHEEL_SLOTS   (1u << WHEEL_BITS) /* 4096 s, a little over an hour */
#define WHEEL_MASK    (WHEEL_SLOTS - 1)
#define PAGE_BITS     12
#define PAGE_SIZE     (1u << PAGE_BITS)
#define NIL           UINT32_MAX
#define MISS_ENUM_MAX 1000000 /* missed fires counted one by one before giving a bound */
#define NS_PER_S      INT64_C(1000000000)

enum where { NOWHERE = 0, IN_WHEEL, IN_HEAP };

struct entry {
    struct cron_expr cron;
    const struct tz_zone *zone;
    int64_t start_at, end_at;
    _Atomic int64_t next; /* 0: not scheduled */
    uint32_t prev, succ;  /* wheel links (job ids) */
    uint32_t misfire_threshold;
    uint32_t catch_up_max;
    uint32_t generation;
    uint8_t misfire;
    uint8_t where;
    uint8_t pending; /* on the pending list */
    /* summaries that did not fit in the ring yet */
    uint64_t miss_count, drop_count;
    int64_t miss_at, miss_last, drop_at, drop_last;
    uint8_t miss_flags;
};

struct heap_item {
    int64_t at;
    uint32_t job;
};

enum cmd_op { CMD_SET = 1, CMD_REMOVE };

struct cmd {
    enum cmd_op op;
    uint32_t job;
    uint32_t generation;
    int64_t after;
    struct sched_spec spec;
};

struct sched {
    struct sched_config cfg;

    /* engine-thread state */
    struct entry **pages; /* max_jobs / PAGE_SIZE pointers, filled on demand */
    uint32_t npages;
    uint32_t slot_head[WHEEL_SLOTS];
    uint64_t slot_bits[WHEEL_SLOTS / 64];
    int64_t cursor; /* every second <= cursor has been handled */
    struct heap_item *heap;
    size_t heap_len, heap_cap;
    uint32_t *due; /* jobs fired this tick, to refile */
    size_t due_len, due_cap;
    uint32_t *pend; /* jobs with summaries waiting for ring space */
    size_t pend_len, pend_cap;

    /* the ring: engine writes head, consumer writes tail */
    struct sched_fire *ring;
    size_t ring_mask;
    _Atomic size_t ring_head;
    _Atomic size_t ring_tail;
    size_t woken_at; /* ring_head when the consumer was last woken */

    /* commands */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cmd *cmds;
    size_t ncmds, cmd_cap;
    bool stop, kicked, running;
    pthread_t thread;

    _Atomic uint64_t st_jobs, st_fires, st_missed, st_dropped, st_wakeups;
    _Atomic int st_nice_failed; /* the priority could not be raised (not root) */
};

/* ---------------------------------------------------------------------------------------
 * Clock
 */

static int64_t now_ns(struct sched *s)
{
    if (s->cfg.now_ns != NULL)
        return s->cfg.now_ns(s->cfg.now_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* The offset between the configured clock and CLOCK_REALTIME, to turn a deadline on the
 * configured clock into one the condition variable understands. */
static int64_t clock_skew_ns(struct sched *s)
{
    if (s->cfg.now_ns == NULL)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return s->cfg.now_ns(s->cfg.now_arg) - ((int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec);
}

/* ---------------------------------------------------------------------------------------
 * Entries
 */

static struct entry *entry_get(struct sched *s, uint32_t job)
{
    struct entry *page = __atomic_load_n(&s->pages[job >> PAGE_BITS], __ATOMIC_ACQUIRE);
    return page == NULL ? NULL : &page[job & (PAGE_SIZE - 1)];
}

/* Engine thread only: the entry, allocating its page on first use. */
static struct entry *entry_make(struct sched *s, uint32_t job)
{
    struct entry *e = entry_get(s, job);
    if (e != NULL)
        return e;
    struct entry *page = calloc(PAGE_SIZE, sizeof *page);
    if (page == NULL)
        return NULL;
    for (uint32_t i = 0; i < PAGE_SIZE; i++)
        page[i].prev = page[i].succ = NIL;
    __atomic_store_n(&s->pages[job >> PAGE_BITS], page, __ATOMIC_RELEASE);
    return &page[job & (PAGE_SIZE - 1)];
}

/* ---------------------------------------------------------------------------------------
 * Wheel and heap (engine thread only)
 */

static void wheel_insert(struct sched *s, uint32_t job, struct entry *e, int64_t at)
{
    uint32_t slot = (uint32_t)at & WHEEL_MASK;
    e->prev = NIL;
    e->succ = s->slot_head[slot];
    if (e->succ != NIL)
        entry_get(s, e->succ)->prev = job;
    s->slot_head[slot] = job;
    s->slot_bits[slot >> 6] |= UINT64_C(1) << (slot & 63);
    e->where = IN_WHEEL;
}

static void wheel_unlink(struct sched *s, uint32_t job, struct entry *e)
{
    int64_t at = atomic_load_explicit(&e->next, memory_order_relaxed);
    uint32_t slot = (uint32_t)at & WHEEL_MASK;
    if (e->prev != NIL)
        entry_get(s, e->prev)->succ = e->succ;
    else
        s->slot_head[slot] = e->succ;
    if (e->succ != NIL)
        entry_get(s, e->succ)->prev = e->prev;
    if (s->slot_head[slot] == NIL)
        s->slot_bits[slot >> 6] &= ~(UINT64_C(1) << (slot & 63));
    e->prev = e->succ = NIL;
    e->where = NOWHERE;
    (void)job;
}

static int heap_push(struct sched *s, int64_t at, uint32_t job)
{
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        struct heap_item *h = realloc(s->heap, cap * sizeof *h);
        if (h == NULL)
            return TY_ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = s->heap_len++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p].at <= at)
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = (struct heap_item){at, job};
    return 0;
}

static void heap_pop(struct sched *s)
{
    struct heap_item last = s->heap[--s->heap_len];
    size_t i = 0, n = s->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && s->heap[c + 1].at < s->heap[c].at)
            c++;
        if (last.at <= s->heap[c].at)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
}

/* A heap item is stale when its entry moved on (removed, or refiled at another time). */
static bool heap_item_live(struct sched *s, const struct heap_item *h)
{
    struct entry *e = entry_get(s, h->job);
    return e != NULL && e->where == IN_HEAP &&
           atomic_load_explicit(&e->next, memory_order_relaxed) == h->at;
}

/* File job at instant `at` (0: do not file). */
static void file_entry(struct sched *s, uint32_t job, struct entry *e, int64_t at)
{
    atomic_store_explicit(&e->next, at, memory_order_release);
    if (at == 0) {
        e->where = NOWHERE;
        return;
    }
    if (at > s->cursor && at - s->cursor <= (int64_t)WHEEL_SLOTS) {
        wheel_insert(s, job, e, at);
        return;
    }
    /* beyond the wheel, or already due (a past `after`): the heap; the next tick takes
     * what is due */
    e->where = IN_HEAP;
    if (heap_push(s, at, job) != 0) {
        e->where = NOWHERE; /* out of memory: not scheduled */
        atomic_store(&e->next, 0);
    }
}

static void unfile_entry(struct sched *s, uint32_t job, struct entry *e)
{
    if (e->where == IN_WHEEL)
        wheel_unlink(s, job, e);
    e->where = NOWHERE; /* heap items go stale on their own */
    atomic_store_explicit(&e->next, 0, memory_order_release);
}

/* Move heap items now within the wheel's horizon into the wheel. */
static void heap_migrate(struct sched *s)
{
    while (s->heap_len > 0) {
        struct heap_item top = s->heap[0];
        if (!heap_item_live(s, &top)) {
            heap_pop(s);
            continue;
        }
        if (top.at <= s->cursor || top.at - s->cursor > (int64_t)WHEEL_SLOTS)
            break;
        heap_pop(s);
        struct entry *e = entry_get(s, top.job);
        wheel_insert(s, top.job, e, top.at);
    }
}

/* The first fire of e strictly after `after`, within its dates; 0 when none. */
static int64_t next_fire(const struct entry *e, int64_t after)
{
    if (e->start_at != 0 && after < e->start_at - 1)
        after = e->start_at - 1;
    if (after < CRON_MIN_TIME)
        after = CRON_MIN_TIME;
    int64_t t;
    if (cron_next(&e->cron, e->zone, after, &t) != 0)
        return 0;
    if (e->end_at != 0 && t > e->end_at)
        return 0;
    return t;
}

/*
 * The last fire of e at or before `limit`, or 0.  There is no backward search in the cron
 * engine, so look forward from ever earlier starting points until a window holds a fire;
 * only used when a job has missed more fires than are worth counting one by one.
 */
static int64_t last_fire_before(const struct entry *e, int64_t limit)
{
    static const int64_t windows[] = {64,
                                      4096,
                                      86400,
                                      INT64_C(2678400),
                                      INT64_C(31622400),
                                      INT64_C(316224000)}; /* up to 31, 366, 3660 days */
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        int64_t t = next_fire(e, limit - windows[i]), best = 0;
        while (t != 0 && t <= limit) {
            best = t;
            t = next_fire(e, t);
        }
        if (best != 0)
            return best;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * The ring
 */

static size_t ring_free(struct sched *s)
{
    size_t head = atomic_load_explicit(&s->ring_head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&s->ring_tail, memory_order_acquire);
    return s->ring_mask + 1 - (head - tail);
}

/* Publish one record; the caller checked there is room. */
static void ring_put(struct sched *s, const struct sched_fire *f)
{
    size_t head = atomic_load_explicit(&s->ring_head, memory_order_relaxed);
    s->ring[head & s->ring_mask] = *f;
    atomic_store_explicit(&s->ring_head, head + 1, memory_order_release);
}

size_t sched_take(struct sched *s, struct sched_fire *out, size_t max)
{
    size_t tail = atomic_load_explicit(&s->ring_tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&s->ring_head, memory_order_acquire);
    size_t n = head - tail;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = s->ring[(tail + i) & s->ring_mask];
    atomic_store_explicit(&s->ring_tail, tail + n, memory_order_release);
    return n;
}

/* Tell the consumer when records were published since the last call. */
static void wake_consumer(struct sched *s)
{
    size_t head = atomic_load_explicit(&s->ring_head, memory_order_relaxed);
    if (head != s->woken_at && s->cfg.wake != NULL)
        s->cfg.wake(s->cfg.wake_arg);
    s->woken_at = head;
}

static void pend_add(struct sched *s, uint32_t job, struct entry *e)
{
    if (e->pending)
        return;
    if (s->pend_len == s->pend_cap) {
        size_t cap = s->pend_cap ? s->pend_cap * 2 : 64;
        uint32_t *p = realloc(s->pend, cap * sizeof *p);
        if (p == NULL)
            return; /* the counts stay on the entry and go out with its next summary */
        s->pend = p;
        s->pend_cap = cap;
    }
    s->pend[s->pend_len++] = job;
    e->pending = 1;
}

/* Hand over a fire, or count it dropped on the entry when the ring is full. */
static bool emit_fire(struct sched *s, uint32_t job, struct entry *e, int64_t at, uint16_t flags)
{
    if (ring_free(s) == 0) {
        if (e->drop_count++ == 0)
            e->drop_at = at;
        e->drop_last = at;
        atomic_fetch_add_explicit(&s->st_dropped, 1, memory_order_relaxed);
        pend_add(s, job, e);
        return false;
    }
    struct sched_fire f = {job, SCHED_FIRE, flags, at, at, 1, now_ns(s), e->generation};
    ring_put(s, &f);
    atomic_fetch_add_explicit(&s->st_fires, 1, memory_order_relaxed);
    return true;
}

/* Queue a "missed" summary on the entry; it goes out with the pending flush. */
static void note_missed(struct sched *s, uint32_t job, struct entry *e, int64_t first, int64_t last,
                        uint64_t count, uint8_t flags)
{
    if (count == 0)
        return;
    if (e->miss_count == 0)
        e->miss_at = first;
    e->miss_last = last;
    e->miss_count += count;
    e->miss_flags |= flags;
    atomic_fetch_add_explicit(&s->st_missed, count, memory_order_relaxed);
    pend_add(s, job, e);
}

/* Send the summaries that wait for room; keep those that still do not fit. */
static void flush_pending(struct sched *s)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->pend_len; i++) {
        uint32_t job = s->pend[i];
        struct entry *e = entry_get(s, job);
        if (e->miss_count != 0 && ring_free(s) > 0) {
            struct sched_fire f = {job,          SCHED_MISSED,  e->miss_flags, e->miss_at,
                                   e->miss_last, e->miss_count, now_ns(s),     e->generation};
            ring_put(s, &f);
            e->miss_count = 0;
            e->miss_flags = 0;
        }
        if (e->drop_count != 0 && ring_free(s) > 0) {
            struct sched_fire f = {job,          SCHED_DROPPED, 0,         e->drop_at,
                                   e->drop_last, e->drop_count, now_ns(s), e->generation};
            ring_put(s, &f);
            e->drop_count = 0;
        }
        if (e->miss_count != 0 || e->drop_count != 0)
            s->pend[keep++] = job;
        else
            e->pending = 0;
    }
    s->pend_len = keep;
}

/* ---------------------------------------------------------------------------------------
 * Firing
 */

static int due_add(struct sched *s, uint32_t job)
{
    if (s->due_len == s->due_cap) {
        size_t cap = s->due_cap ? s->due_cap * 2 : 1024;
        uint32_t *d = realloc(s->due, cap * sizeof *d);
        if (d == NULL)
            return TY_ENOMEM;
        s->due = d;
        s->due_cap = cap;
    }
    s->due[s->due_len++] = job;
    return 0;
}

/*
 * A fire of e at `at` is due at `now` (seconds).  On time (within the threshold): hand
 * it over.  Late: apply the misfire policy to it and every later fire up to now.  Returns
 * the instant to compute the job's next fire after.
 */
static int64_t fire_entry(struct sched *s, uint32_t job, struct entry *e, int64_t at, int64_t now)
{
    int64_t thr = e->misfire_threshold;
    if (now - at <= thr) {
        emit_fire(s, job, e, at, 0);
        return at;
    }
    /* Walk the late fires (older than now - thr); later ones are on time. */
    const int64_t first = at;
    int64_t last = at, before_last = 0, t = at;
    uint64_t count = 0, ran = 0;
    uint8_t flags = 0;
    int64_t skipped_first = 0, skipped_last = 0;
    uint64_t skipped = 0;
    uint32_t keep_oldest = e->misfire == JOB_MISFIRE_CATCH_UP ? e->catch_up_max : 0;
    while (t != 0 && now - t > thr) {
        count++;
        before_last = last;
        last = t;
        if (ran < keep_oldest) {
            emit_fire(s, job, e, t, SCHED_F_LATE);
            ran++;
        } else if (e->misfire != JOB_MISFIRE_RUN_ONCE) {
            if (skipped++ == 0)
                skipped_first = t;
            skipped_last = t;
        }
        if (count >= MISS_ENUM_MAX) {
            /* too many to count: jump to the first fire that is not late */
            flags |= SCHED_F_AT_LEAST;
            int64_t latest = last_fire_before(e, now - thr - 1);
            if (latest > last) {
                before_last = last;
                last = latest;
                if (e->misfire != JOB_MISFIRE_RUN_ONCE)
                    skipped_last = latest;
            }
            t = next_fire(e, now - thr - 1);
            break;
        }
        t = next_fire(e, t);
    }
    if (e->misfire == JOB_MISFIRE_RUN_ONCE) {
        /* every late fire but the latest is skipped; the latest runs */
        if (count > 1)
            note_missed(s, job, e, first, before_last, count - 1, flags);
        emit_fire(s, job, e, last, SCHED_F_LATE);
    } else {
        note_missed(s, job, e, skipped_first, skipped_last, skipped, flags);
    }
    /* fires after the late ones that are already due are on time */
    while (t != 0 && t <= now) {
        emit_fire(s, job, e, t, 0);
        t = next_fire(e, t);
    }
    /* continue from just before the first fire still ahead (none: from now) */
    return t == 0 ? now : t - 1;
}

/* Handle every fire due at or before `now` (seconds). */
static void tick(struct sched *s, int64_t now)
{
    /* summaries waiting for room are older than anything due now: they go first */
    if (s->pend_len > 0)
        flush_pending(s);
    s->due_len = 0;
    if (now > s->cursor) {
        /* wheel slots cursor+1 .. now (all of them when the gap exceeds the wheel) */
        int64_t span = now - s->cursor;
        if (span > (int64_t)WHEEL_SLOTS)
            span = WHEEL_SLOTS;
        for (int64_t k = 1; k <= span; k++) {
            uint32_t slot = (uint32_t)(s->cursor + k) & WHEEL_MASK;
            if (!(s->slot_bits[slot >> 6] >> (slot & 63) & 1))
                continue;
            uint32_t job = s->slot_head[slot];
            s->slot_head[slot] = NIL;
            s->slot_bits[slot >> 6] &= ~(UINT64_C(1) << (slot & 63));
            while (job != NIL) {
                struct entry *e = entry_get(s, job);
                uint32_t succ = e->succ;
                e->prev = e->succ = NIL;
                e->where = NOWHERE;
                if (due_add(s, job) != 0)
                    atomic_store(&e->next, 0); /* out of memory: stop this job */
                job = succ;
            }
        }
    }
    /* heap items that are due (after a big clock jump, or filed behind the cursor) */
    while (s->heap_len > 0 && s->heap[0].at <= now) {
        struct heap_item top = s->heap[0];
        heap_pop(s);
        if (!heap_item_live(s, &top))
            continue;
        struct entry *e = entry_get(s, top.job);
        e->where = NOWHERE;
        if (due_add(s, top.job) != 0)
            atomic_store(&e->next, 0);
    }
    if (now > s->cursor)
        s->cursor = now;

    /* (1) hand over; (2) refile.  Keep the two passes apart: lateness is measured in (1). */
    for (size_t i = 0; i < s->due_len; i++) {
        uint32_t job = s->due[i];
        struct entry *e = entry_get(s, job);
        int64_t at = atomic_load_explicit(&e->next, memory_order_relaxed);
        if (at == 0)
            continue;
        int64_t after = fire_entry(s, job, e, at, now);
        /* stash the instant to continue from in `next` until pass 2 */
        atomic_store_explicit(&e->next, -after, memory_order_relaxed);
    }
    flush_pending(s);
    wake_consumer(s);
    for (size_t i = 0; i < s->due_len; i++) {
        uint32_t job = s->due[i];
        struct entry *e = entry_get(s, job);
        int64_t after = -atomic_load_explicit(&e->next, memory_order_relaxed);
        if (after <= 0) {
            atomic_store(&e->next, 0);
            continue;
        }
        int64_t t = next_fire(e, after);
        file_entry(s, job, e, t);
        if (t == 0)
            atomic_fetch_sub_explicit(&s->st_jobs, 1, memory_order_relaxed);
    }
    heap_migrate(s);
}

/* ---------------------------------------------------------------------------------------
 * Commands and the engine thread
 */

static void apply(struct sched *s, const struct cmd *c)
{
    struct entry *e = entry_make(s, c->job);
    if (e == NULL)
        return;
    bool was = atomic_load(&e->next) != 0;
    if (was)
        unfile_entry(s, c->job, e);
    if (c->op == CMD_REMOVE) {
        if (was)
            atomic_fetch_sub_explicit(&s->st_jobs, 1, memory_order_relaxed);
        return;
    }
    e->cron = c->spec.cron;
    e->zone = c->spec.zone;
    e->start_at = c->spec.start_at;
    e->end_at = c->spec.end_at;
    e->misfire_threshold = c->spec.misfire_threshold;
    e->misfire = (uint8_t)c->spec.misfire;
    e->catch_up_max = c->spec.catch_up_max;
    e->generation = c->generation;
    int64_t t = next_fire(e, c->after);
    file_entry(s, c->job, e, t);
    if (t != 0 && !was)
        atomic_fetch_add_explicit(&s->st_jobs, 1, memory_order_relaxed);
    if (t == 0 && was)
        atomic_fetch_sub_explicit(&s->st_jobs, 1, memory_order_relaxed);
}

/* The earliest instant (seconds) anything is due, or INT64_MAX. */
static int64_t next_deadline(struct sched *s)
{
    int64_t best = INT64_MAX;
    /* the first non-empty slot after the cursor, scanning the bitmap word by word */
    uint32_t start = (uint32_t)(s->cursor + 1) & WHEEL_MASK;
    for (uint32_t k = 0; k < WHEEL_SLOTS;) {
        uint32_t slot = (start + k) & WHEEL_MASK;
        uint64_t w = s->slot_bits[slot >> 6] >> (slot & 63);
        if (w != 0) {
            best = s->cursor + 1 + k + __builtin_ctzll(w);
            break;
        }
        k += 64 - (slot & 63);
    }
    while (s->heap_len > 0 && !heap_item_live(s, &s->heap[0]))
        heap_pop(s);
    if (s->heap_len > 0 && s->heap[0].at < best)
        best = s->heap[0].at;
    return best;
}

static void *engine(void *arg)
{
    struct sched *s = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    /* The engine sleeps almost always and must wake on time even when the machine is busy
     * (jobs, builds): a higher priority, where the process may raise it, costs nothing. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), -10) != 0)
        atomic_store(&s->st_nice_failed, 1);
    struct cmd *batch = NULL;
    size_t batch_cap = 0;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        /* take the queued commands and apply them without holding the lock */
        if (s->ncmds > 0) {
            /* swap buffers: producers get the spare, the engine applies the full one */
            struct cmd *mine = s->cmds;
            size_t n = s->ncmds, mine_cap = s->cmd_cap;
            s->cmds = batch;
            s->cmd_cap = batch_cap;
            s->ncmds = 0;
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < n; i++)
                apply(s, &mine[i]);
            if (mine_cap > 4096) {
                free(mine); /* a bulk load's buffer is not kept as the spare */
                batch = NULL;
                batch_cap = 0;
            } else {
                batch = mine;
                batch_cap = mine_cap;
            }
            pthread_mutex_lock(&s->mu);
            continue;
        }
        s->kicked = false;
        pthread_mutex_unlock(&s->mu);

        atomic_fetch_add_explicit(&s->st_wakeups, 1, memory_order_relaxed);
        int64_t now = now_ns(s);
        tick(s, now / NS_PER_S);
        if (s->pend_len > 0)
            flush_pending(s);
        wake_consumer(s);
        int64_t due = next_deadline(s);

        pthread_mutex_lock(&s->mu);
        if (s->stop || s->ncmds > 0 || s->kicked)
            continue;
        if (s->pend_len > 0)
            due = 0; /* summaries wait for ring space: look again shortly */
        if (due == INT64_MAX) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else {
            int64_t at_ns = due == 0 ? now_ns(s) + INT64_C(10000000) : due * NS_PER_S;
            at_ns -= clock_skew_ns(s);
            struct timespec ts = {(time_t)(at_ns / NS_PER_S), (long)(at_ns % NS_PER_S)};
            while (!s->stop && s->ncmds == 0 && !s->kicked) {
                int rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
                if (rc == ETIMEDOUT)
                    break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(batch);
    return NULL;
}

static int enqueue(struct sched *s, const struct cmd *c)
{
    pthread_mutex_lock(&s->mu);
    if (s->ncmds == s->cmd_cap) {
        size_t cap = s->cmd_cap ? s->cmd_cap * 2 : 64;
        struct cmd *n = realloc(s->cmds, cap * sizeof *n);
        if (n == NULL) {
            pthread_mutex_unlock(&s->mu);
            return TY_ENOMEM;
        }
        s->cmds = n;
        s->cmd_cap = cap;
    }
    s->cmds[s->ncmds++] = *c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int sched_set(struct sched *s, uint32_t job, const struct sched_spec *spec, int64_t after,
              uint32_t generation)
{
    if (job >= s->cfg.max_jobs)
        return TY_EINVAL;
    struct cmd c = {CMD_SET, job, generation, after, *spec};
    return enqueue(s, &c);
}

int sched_remove(struct sched *s, uint32_t job)
{
    if (job >= s->cfg.max_jobs)
        return TY_EINVAL;
    struct cmd c = {.op = CMD_REMOVE, .job = job};
    return enqueue(s, &c);
}

void sched_kick(struct sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int64_t sched_next_fire(struct sched *s, uint32_t job)
{
    if (job >= s->cfg.max_jobs)
        return 0;
    struct entry *e = entry_get(s, job);
    if (e == NULL)
        return 0;
    int64_t t = atomic_load_explicit(&e->next, memory_order_acquire);
    return t > 0 ? t : 0;
}

void sched_get_stats(struct sched *s, struct sched_stats *out)
{
    out->jobs = atomic_load(&s->st_jobs);
    out->fires = atomic_load(&s->st_fires);
    out->missed = atomic_load(&s->st_missed);
    out->dropped = atomic_load(&s->st_dropped);
    out->wakeups = atomic_load(&s->st_wakeups);
}

int sched_new(const struct sched_config *cfg, struct sched **out, struct ty_err *err)
{
    if (cfg->max_jobs == 0 || cfg->max_jobs > (UINT32_MAX - PAGE_SIZE))
        return ty_error(err, TY_EINVAL, "max_jobs", -1, 0, "sched: max_jobs must be 1..%u",
                        UINT32_MAX - PAGE_SIZE);
    struct sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "sched: out of memory");
    s->cfg = *cfg;
    size_t cap = 1;
    size_t want = cfg->ring_capacity ? cfg->ring_capacity : 65536;
    while (cap < want)
        cap <<= 1;
    s->ring = calloc(cap, sizeof *s->ring);
    s->ring_mask = cap - 1;
    s->npages = (cfg->max_jobs + PAGE_SIZE - 1) / PAGE_SIZE;
    s->pages = calloc(s->npages, sizeof(struct entry *));
    if (s->ring == NULL || s->pages == NULL) {
        free(s->ring);
        free(s->pages);
        free(s);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "sched: out of memory");
    }
    for (uint32_t i = 0; i < WHEEL_SLOTS; i++)
        s->slot_head[i] = NIL;
    s->cursor = now_ns(s) / NS_PER_S;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return 0;
}

int sched_start(struct sched *s, struct ty_err *err)
{
    int rc = pthread_create(&s->thread, NULL, engine, s);
    if (rc != 0)
        return ty_error(err, TY_EIO, NULL, -1, 0, "sched: cannot start the engine thread: %s",
                        strerror(rc));
    s->running = true;
    return 0;
}

void sched_stop(struct sched *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->running = false;
}

void sched_free(struct sched *s)
{
    if (s == NULL)
        return;
    sched_stop(s);
    for (uint32_t i = 0; i < s->npages; i++)
        free(s->pages[i]);
    free(s->pages);
    free(s->heap);
    free(s->due);
    free(s->pend);
    free(s->cmds);
    free(s->ring);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
