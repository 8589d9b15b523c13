/*
 * test_shard.c - shard placement: for each strategy, balance over thousands of jobs, what
 * moves when an executor joins or leaves (and that nothing moves when nothing changed),
 * the prefer rules, domains, local jobs, unplaced shards, determinism whatever the order of
 * executors and jobs, and every refusal with the field it names.  Nothing here is timed:
 * bench/shard measures speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/shard.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

#define EX_MAX 128

/* Executors "ex-000", "ex-001", ... with what the tests give them. */
struct fleet {
    struct shard_executor ex[EX_MAX];
    char ids[EX_MAX][16];
    struct shard_label labels[EX_MAX][2];
    const char *domains[EX_MAX][2];
    size_t n;
};

/* Add an executor; returns its index. */
static size_t fleet_add(struct fleet *f, const char *id, uint32_t capacity)
{
    assert_true(f->n < EX_MAX);
    size_t i = f->n++;
    snprintf(f->ids[i], sizeof f->ids[i], "%s", id);
    f->ex[i] = (struct shard_executor){f->ids[i], f->labels[i], 0, f->domains[i], 0, capacity};
    return i;
}

static void fleet_make(struct fleet *f, size_t n, uint32_t capacity)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "ex-%03zu", i);
        fleet_add(f, id, capacity);
    }
}

/* The fleet without executor i (the ones after it shift down). */
static void fleet_remove(struct fleet *f, size_t i)
{
    struct fleet g;
    memset(&g, 0, sizeof g);
    for (size_t k = 0; k < f->n; k++) {
        if (k == i)
            continue;
        size_t m = fleet_add(&g, f->ids[k], f->ex[k].capacity);
        memcpy(g.labels[m], f->labels[k], sizeof g.labels[m]);
        memcpy(g.domains[m], f->domains[k], sizeof g.domains[m]);
        g.ex[m].n_labels = f->ex[k].n_labels;
        g.ex[m].n_domains = f->ex[k].n_domains;
    }
    *f = g;
    for (size_t k = 0; k < f->n; k++) {
        f->ex[k].id = f->ids[k];
        f->ex[k].labels = f->labels[k];
        f->ex[k].domains = f->domains[k];
    }
}

static void cluster_ok(struct shard_cluster *c, const struct fleet *f)
{
    struct ty_err err;
    int rc = shard_cluster_init(c, f->ex, f->n, &err);
    if (rc != 0)
        fail_msg("shard_cluster_init: %d %s", rc, err.msg);
}

/* Jobs "job-00000", ... each with a where array big enough for any strategy. */
struct jobs {
    struct shard_slot *slots;
    char (*names)[24];
    uint32_t *store;
    size_t n;
};

static void jobs_make(struct jobs *js, size_t n, uint32_t shards, enum job_strategy strategy)
{
    js->n = n;
    js->slots = calloc(n, sizeof *js->slots);
    js->names = calloc(n, sizeof *js->names);
    js->store = calloc(n * EX_MAX, sizeof *js->store);
    assert_true(js->slots && js->names && js->store);
    for (size_t i = 0; i < n; i++) {
        snprintf(js->names[i], sizeof js->names[i], "job-%05zu", i);
        struct shard_slot *sl = &js->slots[i];
        sl->job = (struct shard_job){js->names[i], "", shards, strategy, NULL, false};
        sl->where = js->store + i * EX_MAX;
        shard_where_init(&sl->job, sl->where, &sl->n_where);
    }
}

static void jobs_free(struct jobs *js)
{
    free(js->slots);
    free(js->names);
    free(js->store);
}

static void plan_ok(struct shard_cluster *c, struct jobs *js, uint64_t *load,
                    struct shard_counts *m)
{
    struct ty_err err;
    memset(m, 0, sizeof *m);
    int rc = shard_plan(c, js->slots, js->n, load, m, &err);
    if (rc != 0)
        fail_msg("shard_plan: %d %s", rc, err.msg);
}

/* Re-express every placement over executors `from` as indexes over `to`, by id. */
static void carry(struct jobs *js, const struct fleet *from, const struct shard_cluster *to)
{
    for (size_t i = 0; i < js->n; i++) {
        struct shard_slot *sl = &js->slots[i];
        uint32_t m = 0;
        for (uint32_t k = 0; k < sl->n_where; k++) {
            uint32_t e = sl->where[k];
            uint32_t now = e == SHARD_NONE ? SHARD_NONE : shard_cluster_find(to, from->ids[e]);
            /* a local job lists executors: one gone is dropped */
            if (sl->job.strategy != JOB_STRATEGY_LOCAL || now != SHARD_NONE)
                sl->where[m++] = now;
        }
        sl->n_where = m;
    }
}

/* Move to the executors of fleet `to` (a new round): a new cluster, and every placement
 * made over `from` carried over to it by id. */
static void regroup(struct shard_cluster *c, struct jobs *js, const struct fleet *from,
                    const struct fleet *to)
{
    struct shard_cluster next;
    cluster_ok(&next, to);
    carry(js, from, &next);
    shard_cluster_free(c);
    *c = next;
}

/* The executor id of every placed shard, one string per job, for comparing plans made over
 * executors given in different orders. */
static char *placement_text(const struct jobs *js, const struct fleet *f, size_t job)
{
    static char buf[4096];
    size_t o = 0;
    const struct shard_slot *sl = &js->slots[job];
    for (uint32_t k = 0; k < sl->n_where; k++) {
        uint32_t e = sl->where[k];
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s,", e == SHARD_NONE ? "-" : f->ids[e]);
        assert_true(o < sizeof buf);
    }
    buf[o] = '\0';
    return buf;
}

/* load is what the slots hold, and every even shard is where balance wants it: no
 * candidate b of its job with (load[b] + 1) / cap[b] < load[a] / cap[a]. */
static void expect_plan(struct shard_cluster *c, const struct jobs *js, const uint64_t *load)
{
    uint64_t count[EX_MAX] = {0};
    uint32_t cand[EX_MAX];
    for (size_t i = 0; i < js->n; i++) {
        const struct shard_slot *sl = &js->slots[i];
        uint32_t each = sl->job.strategy == JOB_STRATEGY_LOCAL ? sl->job.shards : 1;
        for (uint32_t k = 0; k < sl->n_where; k++) {
            if (sl->where[k] != SHARD_NONE)
                count[sl->where[k]] += each;
        }
    }
    for (uint32_t e = 0; e < c->n; e++) {
        if (count[e] != load[e])
            fail_msg("load[%u] is %llu; the slots hold %llu", e, (unsigned long long)load[e],
                     (unsigned long long)count[e]);
    }
    for (size_t i = 0; i < js->n; i++) {
        const struct shard_slot *sl = &js->slots[i];
        if (sl->job.strategy != JOB_STRATEGY_EVEN)
            continue;
        uint32_t n = shard_eligible(c, &sl->job, cand);
        for (uint32_t k = 0; k < sl->n_where; k++) {
            uint32_t a = sl->where[k];
            if (a == SHARD_NONE) {
                assert_int_equal(n, 0);
                continue;
            }
            for (uint32_t m = 0; m < n; m++) {
                uint32_t b = cand[m];
                if ((load[b] + 1) * c->ex[a].capacity < load[a] * c->ex[b].capacity)
                    fail_msg("%s shard %u on %s (load %llu) could go to %s (load %llu)",
                             sl->job.name, k, c->ex[a].id, (unsigned long long)load[a], c->ex[b].id,
                             (unsigned long long)load[b]);
            }
        }
    }
}

static void expect_error(int rc, const struct ty_err *err, const char *field, const char *fragment)
{
    if (rc != TY_EINVAL || err->code != TY_EINVAL)
        fail_msg("expected TY_EINVAL for %s, got %d (%s)", field, rc, err->msg);
    if (strcmp(err->field, field) != 0)
        fail_msg("field \"%s\", expected \"%s\" (message: %s)", err->field, field, err->msg);
    if (strstr(err->msg, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, fragment);
}

static uint64_t max_of(const uint64_t *v, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static uint64_t min_of(const uint64_t *v, size_t n)
{
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* ---- the cluster --------------------------------------------------------------------------- */

static void test_cluster_refusals(void **state)
{
    (void)state;
    struct fleet f;
    struct shard_cluster c;
    struct ty_err err;

    fleet_make(&f, 3, 4);
    snprintf(f.ids[1], sizeof f.ids[1], "a b");
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[1].id",
                 "executors[1].id: \"a b\" is not an executor id");
    shard_cluster_free(&c);

    fleet_make(&f, 3, 4);
    f.ids[2][0] = '\0';
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[2].id",
                 "is not an executor id: 1-63 bytes");
    shard_cluster_free(&c);

    char long_id[80];
    memset(long_id, 'x', 64);
    long_id[64] = '\0';
    fleet_make(&f, 3, 4);
    f.ex[0].id = long_id;
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[0].id",
                 "is not an executor id");
    long_id[63] = '\0'; /* 63 bytes is an id */
    assert_int_equal(shard_cluster_init(&c, f.ex, f.n, &err), 0);
    shard_cluster_free(&c);

    fleet_make(&f, 4, 4);
    snprintf(f.ids[3], sizeof f.ids[3], "ex-001");
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[3].id",
                 "executors[3].id: \"ex-001\" is also executors[1]'s id");
    shard_cluster_free(&c);

    fleet_make(&f, 2, 4);
    f.ex[1].capacity = SHARD_CAPACITY_MAX + 1;
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[1].capacity",
                 "1000001 is out of range 0-1000000");
    shard_cluster_free(&c);

    fleet_make(&f, 2, 4);
    f.ex[0].n_labels = 1; /* labels[0] left empty */
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[0].labels[0]",
                 "has no key or no value");
    shard_cluster_free(&c);

    fleet_make(&f, 2, 4);
    f.ex[1].n_domains = 2;
    f.domains[1][0] = "bank";
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[1].domains[1]",
                 "missing");
    shard_cluster_free(&c);

    fleet_make(&f, 2, 4);
    f.ex[1].id = NULL;
    expect_error(shard_cluster_init(&c, f.ex, f.n, &err), &err, "executors[1].id", "missing");
    shard_cluster_free(&c);

    expect_error(shard_cluster_init(&c, f.ex, SHARD_EXECUTORS_MAX + 1, &err), &err, "executors",
                 "at most 10000");
    shard_cluster_free(&c);
}

static void test_cluster_find(void **state)
{
    (void)state;
    struct fleet f;
    memset(&f, 0, sizeof f);
    fleet_add(&f, "zeta", 1);
    fleet_add(&f, "alpha", 1);
    fleet_add(&f, "mid.1", 1);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    assert_int_equal(shard_cluster_find(&c, "zeta"), 0);
    assert_int_equal(shard_cluster_find(&c, "alpha"), 1);
    assert_int_equal(shard_cluster_find(&c, "mid.1"), 2);
    assert_int_equal(shard_cluster_find(&c, "mid"), SHARD_NONE);
    assert_int_equal(shard_cluster_find(&c, ""), SHARD_NONE);
    shard_cluster_free(&c);

    /* no executors: a cluster all the same, where nothing is placed */
    struct shard_cluster empty;
    assert_int_equal(shard_cluster_init(&empty, NULL, 0, NULL), 0);
    assert_int_equal(shard_cluster_find(&empty, "zeta"), SHARD_NONE);
    shard_cluster_free(&empty);
}

/* ---- refusals of a job or placement --------------------------------------------------------- */

static void test_place_refusals(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 3, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[3] = {0, 0, 0};
    uint32_t where[8] = {SHARD_NONE, SHARD_NONE, SHARD_NONE, SHARD_NONE};
    uint32_t n_where = 2;
    struct ty_err err;
    struct shard_job j = {"a", "", 2, JOB_STRATEGY_EVEN, NULL, false};

    j.shards = 0;
    n_where = 0;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "shards",
                 "shards: 0 is out of range 1-10000 (job \"a\")");
    j.shards = 2;
    j.strategy = (enum job_strategy)7;
    n_where = 2;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "strategy",
                 "strategy: 7 is not a strategy");
    j.strategy = JOB_STRATEGY_HASH;
    n_where = 3;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "where",
                 "where: 3 entries for 2 shards");
    n_where = 2;
    where[1] = 3;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "where[1]",
                 "where[1]: executor 3 is not one of the 3 executors (job \"a\")");
    j.strategy = JOB_STRATEGY_LOCAL;
    n_where = 4;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "where",
                 "4 executors for a local job; the cluster has 3");
    n_where = 1;
    where[0] = SHARD_NONE;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "where[0]",
                 "is not one of the 3 executors");
    j.name = NULL;
    expect_error(shard_place(&c, &j, where, &n_where, load, NULL, &err), &err, "name", "missing");
    /* nothing was touched */
    assert_true(load[0] == 0 && load[1] == 0 && load[2] == 0);

    /* a plan names the slot, and changes nothing */
    struct jobs js;
    jobs_make(&js, 3, 2, JOB_STRATEGY_EVEN);
    uint64_t pload[3] = {7, 7, 7};
    js.slots[2].where[1] = 9;
    struct shard_counts m;
    expect_error(shard_plan(&c, js.slots, js.n, pload, &m, &err), &err, "slots[2].where[1]",
                 "slots[2].where[1]: executor 9 is not one of the 3 executors (job \"job-00002\")");
    assert_true(pload[0] == 7 && js.slots[0].where[0] == SHARD_NONE);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- even ---------------------------------------------------------------------------------- */

/* Placed one job at a time (as jobs are added), even shards stay within one of each other. */
static void test_even_incremental(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 7, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX] = {0};
    struct jobs js;
    jobs_make(&js, 10000, 1, JOB_STRATEGY_EVEN);
    struct shard_counts m = {0, 0, 0, 0};
    uint64_t shards = 0;
    for (size_t i = 0; i < js.n; i++) {
        struct shard_slot *sl = &js.slots[i];
        sl->job.shards = 1 + (uint32_t)(i % 4);
        shard_where_init(&sl->job, sl->where, &sl->n_where);
        shards += sl->job.shards;
        assert_int_equal(shard_place(&c, &sl->job, sl->where, &sl->n_where, load, &m, NULL), 0);
        assert_true(max_of(load, f.n) - min_of(load, f.n) <= 1);
    }
    assert_int_equal(m.placed, shards);
    assert_int_equal(m.unplaced, 0);
    assert_int_equal(m.moved, 0);
    expect_plan(&c, &js, load);

    /* a job's shards spread over the executors, not onto the first one */
    size_t spread = 0;
    for (size_t i = 3; i < js.n; i += 4) {
        const uint32_t *w = js.slots[i].where;
        spread += w[0] != w[1] && w[0] != w[2] && w[0] != w[3] && w[1] != w[2] && w[1] != w[3] &&
                  w[2] != w[3];
    }
    assert_true(spread > js.n / 4 * 9 / 10);

    /* a changed job: released, then placed again; its shards stay where they were */
    struct shard_slot *sl = &js.slots[11]; /* 4 shards */
    uint32_t before[4];
    memcpy(before, sl->where, sizeof before);
    shard_release(&c, &sl->job, sl->where, sl->n_where, load);
    memset(&m, 0, sizeof m);
    assert_int_equal(shard_place(&c, &sl->job, sl->where, &sl->n_where, load, &m, NULL), 0);
    assert_memory_equal(before, sl->where, sizeof before);
    assert_int_equal(m.moved, 0);
    expect_plan(&c, &js, load);

    /* every job released: nothing left */
    for (size_t i = 0; i < js.n; i++)
        shard_release(&c, &js.slots[i].job, js.slots[i].where, js.slots[i].n_where, load);
    assert_int_equal(max_of(load, f.n), 0);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* Capacity weighs: an executor twice as big holds twice the shards. */
static void test_even_capacity(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 4, 1);
    f.ex[1].capacity = 2;
    f.ex[2].capacity = 4;
    f.ex[3].capacity = 8;
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX];
    struct jobs js;
    jobs_make(&js, 1500, 2, JOB_STRATEGY_EVEN);
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(m.placed, 3000);
    /* 3000 shards over capacity 15: 200 per unit, within one shard */
    for (size_t e = 0; e < f.n; e++) {
        uint64_t want = UINT64_C(200) * f.ex[e].capacity;
        assert_true(load[e] + 1 >= want && load[e] <= want + 1);
    }
    /* capacity 0: drained, it takes nothing; its shards go elsewhere */
    f.ex[3].capacity = 0;
    regroup(&c, &js, &f, &f);
    plan_ok(&c, &js, load, &m);
    assert_int_equal(load[3], 0);
    assert_int_equal(m.moved, 1600);
    assert_int_equal(m.unplaced, 0);
    expect_plan(&c, &js, load);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* An executor joins: only what balance needs moves, and only to it.  One leaves: only its
 * shards move. */
static void test_even_join_leave(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 10, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX];
    struct jobs js;
    jobs_make(&js, 10000, 4, JOB_STRATEGY_EVEN);
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    assert_int_equal(m.placed, 40000);
    assert_int_equal(m.rebalanced, 0); /* placed least full first: nothing to fix */
    for (size_t e = 0; e < f.n; e++)
        assert_int_equal(load[e], 4000);

    /* join: 40000 over 11 is 3636.4; the newcomer gets 3636, all from the others */
    size_t added = fleet_add(&f, "ex-new", 4);
    regroup(&c, &js, &f, &f);
    uint32_t *before = calloc(js.n * 4 + 1, sizeof *before);
    assert_non_null(before);
    for (size_t i = 0; i < js.n; i++)
        memcpy(before + i * 4, js.slots[i].where, 4 * sizeof *before);
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(load[added], 3636);
    assert_int_equal(m.moved, 3636);
    assert_int_equal(m.rebalanced, 3636);
    assert_true(max_of(load, f.n) - min_of(load, f.n) <= 1);
    for (size_t i = 0; i < js.n; i++) {
        for (uint32_t k = 0; k < 4; k++) {
            if (before[i * 4 + k] != js.slots[i].where[k])
                assert_int_equal(js.slots[i].where[k], added);
        }
    }

    /* leave: ex-003's shards, and only they, go elsewhere */
    uint64_t gone = load[3];
    for (size_t i = 0; i < js.n; i++)
        memcpy(before + i * 4, js.slots[i].where, 4 * sizeof *before);
    struct fleet old = f;
    for (size_t k = 0; k < old.n; k++)
        old.ex[k].id = old.ids[k];
    fleet_remove(&f, 3);
    regroup(&c, &js, &old, &f);
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(m.moved, 0); /* they had no executor any more when carried over */
    assert_int_equal(m.rebalanced, 0);
    assert_int_equal(m.placed, 40000);
    assert_true(max_of(load, f.n) - min_of(load, f.n) <= 1);
    size_t changed = 0;
    for (size_t i = 0; i < js.n; i++) {
        for (uint32_t k = 0; k < 4; k++) {
            uint32_t was = before[i * 4 + k];
            uint32_t now = js.slots[i].where[k];
            if (was == 3) {
                changed++;
                continue;
            }
            /* the others kept their executor, by id */
            assert_string_equal(old.ids[was], f.ids[now]);
        }
    }
    assert_int_equal(changed, gone);
    free(before);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* Shards piled on one executor (as after a restart with one executor up) are spread with the
 * fewest moves: each executor above the mean gives its excess, no more. */
static void test_even_fewest_moves(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 5, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    struct jobs js;
    jobs_make(&js, 1000, 1, JOB_STRATEGY_EVEN);
    /* 600 on ex-000, 400 on ex-001 */
    for (size_t i = 0; i < js.n; i++)
        js.slots[i].where[0] = i < 600 ? 0 : 1;
    uint64_t load[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    for (size_t e = 0; e < f.n; e++)
        assert_int_equal(load[e], 200);
    assert_int_equal(m.moved, 400 + 200); /* 600 - 200 and 400 - 200 */
    assert_int_equal(m.rebalanced, 600);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- hash ---------------------------------------------------------------------------------- */

static void test_hash_balance_and_movement(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 10, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX];
    struct jobs js;
    jobs_make(&js, 10000, 4, JOB_STRATEGY_HASH);
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    assert_int_equal(m.placed, 40000);
    /* 4000 each expected; the spread of a fair draw is about 60 */
    for (size_t e = 0; e < f.n; e++)
        assert_true(load[e] > 3700 && load[e] < 4300);

    /* the same with shard_place, one job at a time and without the previous state */
    uint64_t load2[EX_MAX] = {0};
    for (size_t i = 0; i < js.n; i++) {
        struct shard_slot *sl = &js.slots[i];
        uint32_t w[4], n = 4;
        shard_where_init(&sl->job, w, &n);
        assert_int_equal(shard_place(&c, &sl->job, w, &n, load2, NULL, NULL), 0);
        assert_memory_equal(w, sl->where, sizeof w);
    }
    assert_memory_equal(load, load2, f.n * sizeof *load);

    /* join: about 1/11 of the shards move, every one to the newcomer */
    uint32_t *before = calloc(js.n * 4 + 1, sizeof *before);
    assert_non_null(before);
    for (size_t i = 0; i < js.n; i++)
        memcpy(before + i * 4, js.slots[i].where, 4 * sizeof *before);
    size_t added = fleet_add(&f, "ex-new", 4);
    regroup(&c, &js, &f, &f);
    plan_ok(&c, &js, load, &m);
    assert_true(m.moved > 40000 * 8 / 110 && m.moved < 40000 * 12 / 110);
    assert_int_equal(m.moved, load[added]);
    assert_int_equal(m.rebalanced, 0);
    for (size_t i = 0; i < js.n; i++) {
        for (uint32_t k = 0; k < 4; k++) {
            if (before[i * 4 + k] != js.slots[i].where[k])
                assert_int_equal(js.slots[i].where[k], added);
        }
    }

    /* leave: only the leaver's shards move */
    for (size_t i = 0; i < js.n; i++)
        memcpy(before + i * 4, js.slots[i].where, 4 * sizeof *before);
    uint64_t gone = load[5];
    struct fleet old = f;
    for (size_t k = 0; k < old.n; k++)
        old.ex[k].id = old.ids[k];
    fleet_remove(&f, 5);
    regroup(&c, &js, &old, &f);
    plan_ok(&c, &js, load, &m);
    size_t changed = 0;
    for (size_t i = 0; i < js.n; i++) {
        for (uint32_t k = 0; k < 4; k++) {
            uint32_t was = before[i * 4 + k];
            if (was == 5) {
                changed++;
                continue;
            }
            assert_string_equal(old.ids[was], f.ids[js.slots[i].where[k]]);
        }
    }
    assert_int_equal(changed, gone);
    free(before);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- local --------------------------------------------------------------------------------- */

static void test_local(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 4, 4);
    f.ex[2].n_domains = 1;
    f.domains[2][0] = "bank";
    f.ex[3].capacity = 0;
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX] = {0};
    uint32_t where[EX_MAX];
    uint32_t n_where;
    struct shard_job j = {"agent", "shop", 3, JOB_STRATEGY_LOCAL, NULL, false};
    assert_int_equal(shard_where_len(&c, &j), 4);
    shard_where_init(&j, where, &n_where);
    assert_int_equal(n_where, 0);
    struct shard_counts m = {0, 0, 0, 0};
    assert_int_equal(shard_place(&c, &j, where, &n_where, load, &m, NULL), 0);
    /* ex-002 serves only bank, ex-003 takes nothing */
    assert_int_equal(n_where, 2);
    assert_int_equal(where[0], 0);
    assert_int_equal(where[1], 1);
    assert_int_equal(load[0], 3);
    assert_int_equal(load[1], 3);
    assert_int_equal(load[2], 0);
    assert_int_equal(m.placed, 6);

    /* in bank: three executors, in id order */
    j.domain = "bank/ops";
    shard_release(&c, &j, where, n_where, load);
    memset(&m, 0, sizeof m);
    assert_int_equal(shard_place(&c, &j, where, &n_where, load, &m, NULL), 0);
    assert_int_equal(n_where, 3);
    assert_int_equal(where[2], 2);
    assert_int_equal(m.moved, 0);
    assert_int_equal(m.placed, 9);

    /* none eligible: unplaced, one count per shard */
    j.domain = "shop";
    j.prefer = (char *const[]){"ex-003", NULL};
    j.prefer_only = true;
    shard_release(&c, &j, where, n_where, load);
    memset(&m, 0, sizeof m);
    assert_int_equal(shard_place(&c, &j, where, &n_where, load, &m, NULL), 0);
    assert_int_equal(n_where, 0);
    assert_int_equal(m.unplaced, 3);
    assert_int_equal(m.moved, 9); /* three executors gave up three shards each */
    assert_int_equal(max_of(load, f.n), 0);
    shard_cluster_free(&c);
}

/* ---- prefer -------------------------------------------------------------------------------- */

static void test_prefer(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 6, 4);
    /* ex-001 and ex-004 have gpu=yes; ex-002 has zone=east */
    f.labels[1][0] = (struct shard_label){"gpu", "yes"};
    f.labels[4][0] = (struct shard_label){"gpu", "yes"};
    f.labels[4][1] = (struct shard_label){"zone", "west"};
    f.labels[2][0] = (struct shard_label){"zone", "east"};
    f.ex[1].n_labels = 1;
    f.ex[4].n_labels = 2;
    f.ex[2].n_labels = 1;
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint32_t out[EX_MAX];

    struct shard_job j = {"train", "", 8, JOB_STRATEGY_EVEN, NULL, false};
    assert_int_equal(shard_eligible(&c, &j, out), 6);
    j.prefer = (char *const[]){"gpu=yes", NULL};
    assert_int_equal(shard_eligible(&c, &j, out), 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 4);
    j.prefer = (char *const[]){"zone=east", "ex-005", "gpu=no", "ex-999", NULL};
    assert_int_equal(shard_eligible(&c, &j, out), 2);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 5);
    j.prefer = (char *const[]){"gpu", "yes", "zone=", NULL}; /* no such id, no such label */
    assert_int_equal(shard_eligible(&c, &j, NULL), 6);
    j.prefer_only = true;
    assert_int_equal(shard_eligible(&c, &j, NULL), 0);

    /* a plan: preferred first; with them gone, fallback (or nothing, with prefer_only); back
     * when they return */
    struct jobs js;
    jobs_make(&js, 100, 2, JOB_STRATEGY_EVEN);
    char *const gpu[] = {"gpu=yes", NULL};
    for (size_t i = 0; i < js.n; i++) {
        js.slots[i].job.prefer = gpu;
        js.slots[i].job.prefer_only = i % 2 == 1;
    }
    uint64_t load[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(load[1], 100);
    assert_int_equal(load[4], 100);

    struct fleet without = f;
    fleet_remove(&without, 4);
    fleet_remove(&without, 1);
    regroup(&c, &js, &f, &without);
    for (size_t i = 0; i < js.n; i++) /* their executors are gone */
        for (uint32_t k = 0; k < 2; k++)
            assert_int_equal(js.slots[i].where[k], SHARD_NONE);
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(m.unplaced, 100); /* the prefer_only half */
    assert_int_equal(m.placed, 100);
    for (size_t i = 0; i < js.n; i++) {
        for (uint32_t k = 0; k < 2; k++)
            assert_true((js.slots[i].where[k] == SHARD_NONE) == (i % 2 == 1));
    }
    assert_true(max_of(load, without.n) - min_of(load, without.n) <= 1);

    /* ex-004 returns: every shard goes to it, the fallback ones included */
    struct fleet back = without;
    for (size_t k = 0; k < back.n; k++) {
        back.ex[k].id = back.ids[k];
        back.ex[k].labels = back.labels[k];
    }
    size_t r = fleet_add(&back, "ex-004", 4);
    back.labels[r][0] = (struct shard_label){"gpu", "yes"};
    back.ex[r].n_labels = 1;
    regroup(&c, &js, &without, &back);
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(load[r], 200);
    assert_int_equal(m.moved, 100); /* the fallback shards came back */
    assert_int_equal(m.unplaced, 0);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- domains -------------------------------------------------------------------------------- */

static void test_domains(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 4, 4);
    f.ex[0].n_domains = 1;
    f.domains[0][0] = "bank";
    f.ex[1].n_domains = 2;
    f.domains[1][0] = "shop/eu";
    f.domains[1][1] = "bank/ops";
    f.ex[2].n_domains = 1;
    f.domains[2][0] = ""; /* the root: every domain */
    /* ex-003: no domains, every domain */
    struct shard_cluster c;
    cluster_ok(&c, &f);
    static const struct {
        const char *domain;
        uint32_t n;
        uint32_t members[4];
    } cases[] = {
        {"bank", 3, {0, 2, 3}},
        {"bank/ops", 4, {0, 1, 2, 3}},
        {"bank/ops/night", 4, {0, 1, 2, 3}},
        {"bankrupt", 2, {2, 3}},
        {"shop", 2, {2, 3}},
        {"shop/eu", 3, {1, 2, 3}},
        {"shop/eu/de", 3, {1, 2, 3}},
        {"shop/europe", 2, {2, 3}},
        {"", 2, {2, 3}},
    };
    uint32_t out[EX_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct shard_job j = {"x", cases[i].domain, 1, JOB_STRATEGY_HASH, NULL, false};
        /* twice: computed, then from the memo */
        for (int pass = 0; pass < 2; pass++) {
            uint32_t n = shard_eligible(&c, &j, out);
            if (n != cases[i].n)
                fail_msg("domain \"%s\": %u executors, expected %u", cases[i].domain, n,
                         cases[i].n);
            assert_memory_equal(out, cases[i].members, n * sizeof *out);
        }
    }
    /* prefer applies within the domain: a preferred executor outside it does not count */
    struct shard_job j = {"x",  "shop", 1, JOB_STRATEGY_HASH, (char *const[]){"ex-000", NULL},
                          false};
    assert_int_equal(shard_eligible(&c, &j, out), 2);
    j.prefer_only = true;
    assert_int_equal(shard_eligible(&c, &j, out), 0);
    j.domain = "bank";
    assert_int_equal(shard_eligible(&c, &j, out), 1);
    assert_int_equal(out[0], 0);

    /* a plan over domains is balanced within what each job may use */
    struct jobs js;
    jobs_make(&js, 3000, 2, JOB_STRATEGY_EVEN);
    static const char *const domains[] = {"bank", "shop/eu/de", "shop", "bank/ops"};
    for (size_t i = 0; i < js.n; i++)
        js.slots[i].job.domain = domains[i % 4];
    uint64_t load[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    assert_int_equal(m.placed, 6000);
    for (size_t i = 0; i < js.n; i++) {
        uint32_t n = shard_eligible(&c, &js.slots[i].job, out);
        for (uint32_t k = 0; k < 2; k++) {
            bool found = false;
            for (uint32_t e = 0; e < n; e++)
                found = found || out[e] == js.slots[i].where[k];
            assert_true(found);
        }
    }
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- nothing to run on ---------------------------------------------------------------------- */

static void test_unplaced(void **state)
{
    (void)state;
    struct shard_cluster c;
    assert_int_equal(shard_cluster_init(&c, NULL, 0, NULL), 0);
    struct jobs js;
    jobs_make(&js, 30, 3, JOB_STRATEGY_EVEN);
    for (size_t i = 0; i < js.n; i++)
        js.slots[i].job.strategy = (enum job_strategy)(1 + i % 3);
    for (size_t i = 0; i < js.n; i++)
        shard_where_init(&js.slots[i].job, js.slots[i].where, &js.slots[i].n_where);
    uint64_t load[1] = {0};
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    assert_int_equal(m.placed, 0);
    assert_int_equal(m.unplaced, 90);
    for (size_t i = 0; i < js.n; i++) {
        const struct shard_slot *sl = &js.slots[i];
        for (uint32_t k = 0; k < sl->n_where; k++)
            assert_int_equal(sl->where[k], SHARD_NONE);
    }
    shard_cluster_free(&c);

    /* executors that all take nothing are no better */
    struct fleet f;
    fleet_make(&f, 3, 0);
    cluster_ok(&c, &f);
    uint64_t load3[3];
    plan_ok(&c, &js, load3, &m);
    assert_int_equal(m.unplaced, 90);
    assert_int_equal(max_of(load3, 3), 0);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* ---- stability and determinism --------------------------------------------------------------- */

/* A mixed plan: every strategy, domains, prefer and capacities that differ. */
static void mixed_setup(struct fleet *f, struct jobs *js)
{
    fleet_make(f, 12, 4);
    for (size_t e = 0; e < f->n; e++) {
        f->ex[e].capacity = 2 + (uint32_t)(e % 3) * 3;
        f->labels[e][0] = (struct shard_label){"zone", e % 2 ? "east" : "west"};
        f->ex[e].n_labels = 1;
    }
    f->ex[5].n_domains = 1;
    f->domains[5][0] = "bank";
    f->ex[7].n_domains = 1;
    f->domains[7][0] = "shop";
    jobs_make(js, 2000, 3, JOB_STRATEGY_EVEN);
    static char *const east[] = {"zone=east", NULL};
    static char *const two[] = {"ex-003", "ex-007", NULL};
    static const char *const domains[] = {"", "bank", "shop/eu", "bank/x"};
    for (size_t i = 0; i < js->n; i++) {
        struct shard_job *j = &js->slots[i].job;
        j->strategy = i % 7 == 0   ? JOB_STRATEGY_LOCAL
                      : i % 5 == 0 ? JOB_STRATEGY_HASH
                                   : JOB_STRATEGY_EVEN;
        j->shards = 1 + (uint32_t)(i % 4);
        j->domain = domains[i % 4];
        j->prefer = i % 11 == 0 ? east : i % 13 == 0 ? two : NULL;
        j->prefer_only = i % 22 == 0;
        shard_where_init(j, js->slots[i].where, &js->slots[i].n_where);
    }
}

static void test_stable(void **state)
{
    (void)state;
    struct fleet f;
    struct jobs js;
    mixed_setup(&f, &js);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    uint64_t load[EX_MAX], load2[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    uint32_t *first = malloc(js.n * EX_MAX * sizeof *first);
    assert_non_null(first);
    memcpy(first, js.store, js.n * EX_MAX * sizeof *first);
    /* again on its own output: nothing moves */
    plan_ok(&c, &js, load2, &m);
    assert_int_equal(m.moved, 0);
    assert_int_equal(m.rebalanced, 0);
    assert_memory_equal(first, js.store, js.n * EX_MAX * sizeof *first);
    assert_memory_equal(load, load2, f.n * sizeof *load);
    /* and again from a fresh cluster of the same executors (an empty memo) */
    shard_cluster_free(&c);
    cluster_ok(&c, &f);
    plan_ok(&c, &js, load2, &m);
    assert_int_equal(m.moved, 0);
    assert_memory_equal(first, js.store, js.n * EX_MAX * sizeof *first);
    free(first);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* The same executors in another order, the same jobs in another order: the same placement,
 * executor by executor id. */
static void test_deterministic(void **state)
{
    (void)state;
    struct fleet f, g;
    struct jobs js, ks;
    mixed_setup(&f, &js);
    mixed_setup(&g, &ks);
    /* g: the executors reversed */
    struct fleet r;
    memset(&r, 0, sizeof r);
    for (size_t k = g.n; k-- > 0;) {
        size_t m = fleet_add(&r, g.ids[k], g.ex[k].capacity);
        memcpy(r.labels[m], g.labels[k], sizeof r.labels[m]);
        memcpy(r.domains[m], g.domains[k], sizeof r.domains[m]);
        r.ex[m].n_labels = g.ex[k].n_labels;
        r.ex[m].n_domains = g.ex[k].n_domains;
    }
    /* ks: the jobs in another order (a fixed shuffle), where arrays following them */
    for (size_t i = ks.n; i-- > 1;) {
        size_t k = (i * 7919 + 13) % (i + 1);
        struct shard_slot t = ks.slots[i];
        ks.slots[i] = ks.slots[k];
        ks.slots[k] = t;
    }
    struct shard_cluster cf, cr;
    cluster_ok(&cf, &f);
    cluster_ok(&cr, &r);
    uint64_t lf[EX_MAX], lr[EX_MAX];
    struct shard_counts mf, mr;
    plan_ok(&cf, &js, lf, &mf);
    plan_ok(&cr, &ks, lr, &mr);
    assert_memory_equal(&mf, &mr, sizeof mf);
    for (size_t i = 0; i < ks.n; i++) {
        size_t orig = (size_t)strtoul(ks.slots[i].job.name + 4, NULL, 10);
        char *a = strdup(placement_text(&js, &f, orig));
        const char *b = placement_text(&ks, &r, i);
        if (strcmp(a, b) != 0)
            fail_msg("%s: %s vs %s", ks.slots[i].job.name, a, b);
        free(a);
    }
    for (size_t e = 0; e < f.n; e++)
        assert_int_equal(lf[e], lr[shard_cluster_find(&cr, f.ids[e])]);
    jobs_free(&js);
    jobs_free(&ks);
    shard_cluster_free(&cf);
    shard_cluster_free(&cr);
}

/* Hash and local shards are load the even ones work around; they never move for it. */
static void test_mixed_balance(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 6, 4);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    struct jobs js;
    jobs_make(&js, 1200, 2, JOB_STRATEGY_EVEN);
    for (size_t i = 0; i < 200; i++)
        js.slots[i].job.strategy = JOB_STRATEGY_HASH;
    js.slots[200].job.strategy = JOB_STRATEGY_LOCAL;
    js.slots[200].job.shards = 30;
    js.slots[200].job.prefer = (char *const[]){"ex-000", "ex-001", NULL};
    js.slots[200].job.prefer_only = true;
    for (size_t i = 0; i < js.n; i++)
        shard_where_init(&js.slots[i].job, js.slots[i].where, &js.slots[i].n_where);
    uint64_t load[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    expect_plan(&c, &js, load);
    /* 400 hash + 60 local + 1998 even = 2458 over 6: every executor at 409 or 410 */
    assert_true(max_of(load, f.n) - min_of(load, f.n) <= 1);
    assert_int_equal(js.slots[200].n_where, 2);
    jobs_free(&js);
    shard_cluster_free(&c);
}

/* A leader's size, without timing it: 100,000 jobs of 4 shards over 100 executors. */
static void test_large(void **state)
{
    (void)state;
    struct fleet f;
    fleet_make(&f, 100, 8);
    struct shard_cluster c;
    cluster_ok(&c, &f);
    struct jobs js;
    js.n = 100000;
    js.slots = calloc(js.n, sizeof *js.slots);
    js.names = calloc(js.n, sizeof *js.names);
    js.store = calloc(js.n * 4, sizeof *js.store);
    assert_true(js.slots && js.names && js.store);
    for (size_t i = 0; i < js.n; i++) {
        snprintf(js.names[i], sizeof js.names[i], "job-%06zu", i);
        js.slots[i].job = (struct shard_job){
            js.names[i], "", 4, i % 4 ? JOB_STRATEGY_EVEN : JOB_STRATEGY_HASH, NULL, false};
        js.slots[i].where = js.store + i * 4;
        shard_where_init(&js.slots[i].job, js.slots[i].where, &js.slots[i].n_where);
    }
    uint64_t load[EX_MAX];
    struct shard_counts m;
    plan_ok(&c, &js, load, &m);
    assert_int_equal(m.placed, 400000);
    assert_true(max_of(load, f.n) - min_of(load, f.n) <= 1);
    plan_ok(&c, &js, load, &m);
    assert_int_equal(m.moved, 0);
    jobs_free(&js);
    shard_cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_refusals),
        cmocka_unit_test(test_cluster_find),
        cmocka_unit_test(test_place_refusals),
        cmocka_unit_test(test_even_incremental),
        cmocka_unit_test(test_even_capacity),
        cmocka_unit_test(test_even_join_leave),
        cmocka_unit_test(test_even_fewest_moves),
        cmocka_unit_test(test_hash_balance_and_movement),
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_prefer),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_unplaced),
        cmocka_unit_test(test_stable),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_mixed_balance),
        cmocka_unit_test(test_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
