/*
 * shard.c - shard placement: who may run a job, the three strategies, and the balance pass.
 *
 * Eligibility is a set of executors per (domain, prefer list, prefer_only), memoised in the
 * cluster.  A leader with 500,000 jobs has some hundreds of distinct domains and fewer
 * prefer lists, so the domain and label checks run once per distinct key, not once per
 * job; jobs without a prefer list when no executor limits its domains share one set.  A
 * set holds its members in id order, so nothing depends on the order the executors were
 * given in, and as a bitmap by index, so "is this shard's executor still a candidate" is
 * one bit.  A set is built at its exact size: a cluster of 10,000 executors and a few
 * thousand distinct keys stays small.
 *
 * Hashing is FNV-1a of the text followed by murmur3's 64-bit finalizer (fmix64), so names
 * that differ in one byte get unrelated keys.  A shard's weight on an executor is fmix64 of
 * the shard's key xor the executor's: rendezvous hashing.  It costs one finalizer per
 * candidate and shard, and buys minimal movement without any state: a shard's winner
 * changes only when the winner leaves or a newcomer outweighs it.
 *
 * even compares load / capacity by cross multiplication, never in floating point, so every
 * leader (any compiler, any CPU) reaches the same plan.  A shard goes to the candidate
 * least full after taking it; ties go to the first in id order from a point the job's hash
 * picks (for the next shard of the job, from just after the executor the last one took), so
 * jobs on an idle cluster spread instead of all landing on the smallest id, and the shards
 * of one job land on different executors.
 *
 * shard_plan's balance pass takes from the fullest executor that still holds an even shard
 * worth trying, and gives to the least full candidate of that shard's job, when that
 * candidate stays less full than the giver was.  Each move lowers
 *     sum over executors of sum_{k = 1..load} k / capacity,
 * so the pass ends, and a pass that moves nothing proves the plan balanced.  When the even
 * jobs share their candidates and capacities are equal, taking from the fullest and giving
 * to the emptiest is the fewest moves: each one removes a shard above the ceiling of the
 * mean or fills a place below its floor, and every such excess must move.  A set caches
 * its least full member with the generation of the loads, so trying every shard of an
 * executor costs one scan per distinct set rather than one per shard.
 *
 * shard_plan visits jobs in the order of their name's hash (then name), not as given, so
 * the same jobs give the same plan in any order.
 */
#include "shard.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "strbuf.h"

#define FNV_OFFSET   UINT64_C(14695981039346656037)
#define FNV_PRIME    UINT64_C(1099511628211)
#define GOLDEN       UINT64_C(0x9e3779b97f4a7c15) /* 2^64 / phi: spreads shard numbers */
#define MEMO_KEY_MAX 4096 /* domain and prefer list; a longer key is not memoised */

/* The executors a job may run on. */
struct shard_set {
    uint32_t n;      /* members */
    uint32_t target; /* shard_plan: the least full member at generation gen */
    uint64_t gen;
    uint64_t *bits; /* membership by index, c->words words */
    uint64_t *keys; /* [n] the members' id hashes, in id order */
    uint32_t *list; /* [n] the members' indexes, in id order */
};

/* ---- hashing ------------------------------------------------------------------------------ */

/* murmur3's 64-bit finalizer: every input bit changes every output bit with probability
 * about 1/2. */
static uint64_t fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

static uint64_t hash_text(const char *s)
{
    uint64_t h = FNV_OFFSET;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    return fmix64(h);
}

static uint64_t shard_hash(uint64_t job, uint32_t shard)
{
    return fmix64(job + GOLDEN * ((uint64_t)shard + 1));
}

/* A position in [0, n) from the high half of h. */
static uint32_t pick(uint64_t h, uint32_t n)
{
    return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32);
}

/* ---- sets --------------------------------------------------------------------------------- */

/* A set with room for cap members, in one block. */
static struct shard_set *set_alloc(uint32_t words, uint32_t cap)
{
    size_t size = sizeof(struct shard_set) + (size_t)words * sizeof(uint64_t) +
                  (size_t)cap * (sizeof(uint64_t) + sizeof(uint32_t));
    struct shard_set *s = malloc(size);
    if (s == NULL)
        return NULL;
    s->bits = (uint64_t *)(s + 1);
    s->keys = s->bits + words;
    s->list = (uint32_t *)(s->keys + cap);
    s->n = 0;
    s->target = SHARD_NONE;
    s->gen = 0;
    memset(s->bits, 0, (size_t)words * sizeof(uint64_t));
    return s;
}

static struct shard_set *set_copy(const struct shard_cluster *c, const struct shard_set *src)
{
    struct shard_set *s = set_alloc(c->words, src->n);
    if (s == NULL)
        return NULL;
    memcpy(s->bits, src->bits, (size_t)c->words * sizeof(uint64_t));
    memcpy(s->keys, src->keys, (size_t)src->n * sizeof(uint64_t));
    memcpy(s->list, src->list, (size_t)src->n * sizeof(uint32_t));
    s->n = src->n;
    return s;
}

static void set_add(const struct shard_cluster *c, struct shard_set *s, uint32_t i)
{
    s->bits[i >> 6] |= UINT64_C(1) << (i & 63);
    s->keys[s->n] = c->key[i];
    s->list[s->n++] = i;
}

static bool in_set(const struct shard_set *s, uint32_t i)
{
    return i != SHARD_NONE && ((s->bits[i >> 6] >> (i & 63)) & 1) != 0;
}

static bool has_prefer(const struct shard_job *j)
{
    return j->prefer != NULL && j->prefer[0] != NULL;
}

/* e serves domain d: one of its domains is d or an ancestor of it, or it has none. */
static bool serves(const struct shard_executor *e, const char *d)
{
    if (e->n_domains == 0)
        return true;
    for (size_t k = 0; k < e->n_domains; k++) {
        if (domain_within(d, e->domains[k]))
            return true;
    }
    return false;
}

/* e is named by an entry of prefer: its id, or "key=value" of one of its labels. */
static bool preferred(const struct shard_executor *e, char *const *prefer)
{
    for (char *const *p = prefer; *p != NULL; p++) {
        const char *eq = strchr(*p, '=');
        if (eq == NULL) {
            if (strcmp(e->id, *p) == 0)
                return true;
            continue;
        }
        size_t kn = (size_t)(eq - *p);
        for (size_t k = 0; k < e->n_labels; k++) {
            const struct shard_label *l = &e->labels[k];
            if (strncmp(l->key, *p, kn) == 0 && l->key[kn] == '\0' && strcmp(l->value, eq + 1) == 0)
                return true;
        }
    }
    return false;
}

/* The candidates of j into s (room for every executor): the eligible preferred executors
 * when there is one, else (prefer_only off) every eligible executor. */
static void fill_set(const struct shard_cluster *c, const struct shard_job *j, struct shard_set *s)
{
    const char *domain = j->domain ? j->domain : "";
    bool prefer = has_prefer(j);
    memset(s->bits, 0, (size_t)c->words * sizeof(uint64_t));
    s->n = 0;
    s->gen = 0;
    for (int tier = prefer ? 0 : 1; tier <= 1 && s->n == 0; tier++) {
        if (tier == 1 && prefer && j->prefer_only)
            break;
        for (uint32_t r = 0; r < c->n; r++) {
            uint32_t i = c->by_id[r];
            const struct shard_executor *e = &c->ex[i];
            if (e->capacity == 0 || !serves(e, domain) || (tier == 0 && !preferred(e, j->prefer)))
                continue;
            set_add(c, s, i);
        }
    }
}

/*
 * The candidates of j: a memoised set, kept until shard_cluster_free; or, when the memo
 * cannot grow (no memory, a key too long), c->scratch, valid until the next call, and
 * *kept false.
 */
static struct shard_set *candidates(struct shard_cluster *c, const struct shard_job *j, bool *kept)
{
    *kept = true;
    bool prefer = has_prefer(j);
    if (!prefer && !c->domains)
        return c->all;
    char buf[MEMO_KEY_MAX];
    struct strbuf key;
    sb_init_fixed(&key, buf, sizeof buf);
    sb_adds(&key, j->domain ? j->domain : "");
    if (prefer) {
        /* '\n' cannot be in a domain path or a prefer entry */
        sb_adds(&key, j->prefer_only ? "\n1" : "\n0");
        for (char *const *p = j->prefer; *p != NULL; p++) {
            sb_addc(&key, '\n');
            sb_adds(&key, *p);
        }
    }
    struct shard_set *s = NULL;
    if (!sb_failed(&key) && (s = strmap_get(&c->sets, sb_str(&key))) != NULL)
        return s;
    fill_set(c, j, c->scratch);
    if (!sb_failed(&key) && (s = set_copy(c, c->scratch)) != NULL) {
        if (strmap_put(&c->sets, sb_str(&key), s) == 0)
            return s;
        free(s);
    }
    *kept = false;
    return c->scratch;
}

/* ---- the cluster -------------------------------------------------------------------------- */

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SHARD_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Refuse executor i's field: "executors[i].field: ...". */
static int bad_executor(struct ty_err *err, size_t i, const char *field, const char *why,
                        const char *text)
{
    char path[TY_ERR_FIELD_MAX];
    snprintf(path, sizeof path, "executors[%zu].%s", i, field);
    return ty_error(err, TY_EINVAL, path, -1, 0, "%s: %s%s%s%s", path, text ? "\"" : "",
                    text ? text : "", text ? "\" " : "", why);
}

static int check_executor(const struct shard_executor *e, size_t i, struct ty_err *err)
{
    char field[64];
    if (e->id == NULL)
        return bad_executor(err, i, "id", "missing", NULL);
    if (!id_ok(e->id))
        return bad_executor(err, i, "id",
                            "is not an executor id: 1-63 bytes of letters, digits, '.', '_' "
                            "and '-'",
                            strlen(e->id) <= SHARD_ID_MAX ? e->id : NULL);
    if (e->capacity > SHARD_CAPACITY_MAX) {
        snprintf(field, sizeof field, "%u is out of range 0-%d", e->capacity, SHARD_CAPACITY_MAX);
        return bad_executor(err, i, "capacity", field, NULL);
    }
    if (e->n_labels > 0 && e->labels == NULL)
        return bad_executor(err, i, "labels", "missing", NULL);
    for (size_t k = 0; k < e->n_labels; k++) {
        if (e->labels[k].key == NULL || e->labels[k].value == NULL) {
            snprintf(field, sizeof field, "labels[%zu]", k);
            return bad_executor(err, i, field, "has no key or no value", NULL);
        }
    }
    if (e->n_domains > 0 && e->domains == NULL)
        return bad_executor(err, i, "domains", "missing", NULL);
    for (size_t k = 0; k < e->n_domains; k++) {
        if (e->domains[k] == NULL) {
            snprintf(field, sizeof field, "domains[%zu]", k);
            return bad_executor(err, i, field, "missing", NULL);
        }
    }
    return 0;
}

/* qsort context cannot be passed in C17: ids are compared through a pair. */
struct id_ref {
    const char *id;
    uint32_t i;
};

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct id_ref *)a)->id, ((const struct id_ref *)b)->id);
}

int shard_cluster_init(struct shard_cluster *c, const struct shard_executor *ex, size_t n,
                       struct ty_err *err)
{
    memset(c, 0, sizeof *c);
    strmap_init(&c->sets);
    if (n > SHARD_EXECUTORS_MAX)
        return ty_error(err, TY_EINVAL, "executors", -1, 0, "executors: %zu of them; at most %d", n,
                        SHARD_EXECUTORS_MAX);
    if (n > 0 && ex == NULL)
        return ty_error(err, TY_EINVAL, "executors", -1, 0, "executors: missing");
    for (size_t i = 0; i < n; i++) {
        int rc = check_executor(&ex[i], i, err);
        if (rc != 0)
            return rc;
    }
    c->ex = ex;
    c->n = (uint32_t)n;
    c->words = c->n / 64 + 1;
    struct id_ref *ids = malloc((n ? n : 1) * sizeof *ids);
    c->key = malloc((n ? n : 1) * sizeof *c->key);
    c->by_id = malloc((n ? n : 1) * sizeof *c->by_id);
    c->all = set_alloc(c->words, c->n);
    c->scratch = set_alloc(c->words, c->n);
    if (ids == NULL || c->key == NULL || c->by_id == NULL || c->all == NULL || c->scratch == NULL) {
        free(ids);
        shard_cluster_free(c);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    for (uint32_t i = 0; i < c->n; i++) {
        ids[i] = (struct id_ref){ex[i].id, i};
        c->key[i] = hash_text(ex[i].id);
    }
    qsort(ids, n, sizeof *ids, by_id);
    for (uint32_t r = 0; r < c->n; r++) {
        if (r > 0 && strcmp(ids[r].id, ids[r - 1].id) == 0) {
            uint32_t a = ids[r - 1].i < ids[r].i ? ids[r - 1].i : ids[r].i;
            uint32_t b = ids[r - 1].i < ids[r].i ? ids[r].i : ids[r - 1].i;
            char path[TY_ERR_FIELD_MAX];
            snprintf(path, sizeof path, "executors[%u].id", b);
            int rc = ty_error(err, TY_EINVAL, path, -1, 0, "%s: \"%s\" is also executors[%u]'s id",
                              path, ex[b].id, a);
            free(ids);
            shard_cluster_free(c);
            return rc;
        }
        c->by_id[r] = ids[r].i;
    }
    free(ids);
    uint32_t cap = 0;
    c->uniform = true;
    for (uint32_t r = 0; r < c->n; r++) {
        const struct shard_executor *e = &ex[c->by_id[r]];
        c->domains = c->domains || e->n_domains > 0;
        if (e->capacity == 0)
            continue;
        if (cap != 0 && e->capacity != cap)
            c->uniform = false;
        cap = e->capacity;
        set_add(c, c->all, c->by_id[r]);
    }
    return 0;
}

void shard_cluster_free(struct shard_cluster *c)
{
    free(c->key);
    free(c->by_id);
    free(c->all);
    free(c->scratch);
    strmap_clear(&c->sets, free);
    memset(c, 0, sizeof *c);
    strmap_init(&c->sets);
}

uint32_t shard_cluster_find(const struct shard_cluster *c, const char *id)
{
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int d = strcmp(c->ex[c->by_id[mid]].id, id);
        if (d == 0)
            return c->by_id[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SHARD_NONE;
}

void shard_job_of(const struct job *j, struct shard_job *out)
{
    out->name = j->name;
    out->domain = j->domain ? j->domain : "";
    out->shards = j->shards;
    out->strategy = j->strategy;
    out->prefer = j->prefer;
    out->prefer_only = j->prefer_only;
}

uint32_t shard_where_len(const struct shard_cluster *c, const struct shard_job *j)
{
    if (j->strategy == JOB_STRATEGY_LOCAL)
        return c->n > 0 ? c->n : 1;
    return j->shards;
}

void shard_where_init(const struct shard_job *j, uint32_t *where, uint32_t *n_where)
{
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        *n_where = 0;
        return;
    }
    for (uint32_t k = 0; k < j->shards; k++)
        where[k] = SHARD_NONE;
    *n_where = j->shards;
}

uint32_t shard_eligible(struct shard_cluster *c, const struct shard_job *j, uint32_t *out)
{
    bool kept;
    const struct shard_set *s = candidates(c, j, &kept);
    if (out != NULL)
        memcpy(out, s->list, (size_t)s->n * sizeof *out);
    return s->n;
}

/* ---- placing one job ---------------------------------------------------------------------- */

/* a with load la is fuller than b with lb after each takes one more shard. */
static bool fuller_after(const struct shard_cluster *c, uint32_t a, uint64_t la, uint32_t b,
                         uint64_t lb)
{
    return (la + 1) * c->ex[b].capacity > (lb + 1) * c->ex[a].capacity;
}

/* The position in s->list (s not empty) of the member least full after taking one more
 * shard; ties go to the first in id order from position start on, wrapping round. */
static uint32_t least_full(const struct shard_cluster *c, const struct shard_set *s,
                           const uint64_t *load, uint32_t start)
{
    assert(s->n > 0 && start < s->n);
    uint32_t best = start;
    uint64_t bl = load[s->list[start]];
    if (c->uniform) {
        /* the lowest load (four chains of conditional moves, not one long one), then the
         * first member that has it: on a balanced cluster many have it, and the second
         * loop stops early */
        const uint32_t *list = s->list;
        uint64_t m0 = bl, m1 = bl, m2 = bl, m3 = bl;
        uint32_t k = 0;
        for (; k + 4 <= s->n; k += 4) {
            uint64_t l0 = load[list[k]], l1 = load[list[k + 1]];
            uint64_t l2 = load[list[k + 2]], l3 = load[list[k + 3]];
            m0 = l0 < m0 ? l0 : m0;
            m1 = l1 < m1 ? l1 : m1;
            m2 = l2 < m2 ? l2 : m2;
            m3 = l3 < m3 ? l3 : m3;
        }
        for (; k < s->n; k++)
            m0 = load[list[k]] < m0 ? load[list[k]] : m0;
        m0 = m1 < m0 ? m1 : m0;
        m2 = m3 < m2 ? m3 : m2;
        bl = m2 < m0 ? m2 : m0;
        for (k = start; k < s->n; k++) {
            if (load[s->list[k]] == bl)
                return k;
        }
        for (k = 0; k < start; k++) {
            if (load[s->list[k]] == bl)
                return k;
        }
        assert(!"the lowest load is some member's");
        return best;
    }
    for (uint32_t m = 1; m < s->n; m++) {
        uint32_t k = start + m < s->n ? start + m : start + m - s->n;
        uint32_t i = s->list[k];
        if (fuller_after(c, s->list[best], bl, i, load[i]))
            best = k, bl = load[i];
    }
    return best;
}

/* The member of s (not empty) with the highest weight for shard key h: rendezvous. */
static uint32_t heaviest(const struct shard_set *s, uint64_t h)
{
    assert(s->n > 0);
    uint32_t best = 0;
    uint64_t bw = fmix64(h ^ s->keys[0]);
    for (uint32_t k = 1; k < s->n; k++) {
        uint64_t w = fmix64(h ^ s->keys[k]);
        if (w > bw)
            bw = w, best = k;
    }
    return s->list[best];
}

/* even, first half: keep (and count in load) the shards whose executor is still a
 * candidate; the others lose theirs, counted in *moved when not NULL.  Returns how many
 * shards have no executor now. */
static uint32_t even_keep(const struct shard_set *s, uint32_t shards, uint32_t *where,
                          uint64_t *load, uint64_t *moved)
{
    uint32_t lacking = 0;
    for (uint32_t k = 0; k < shards; k++) {
        if (in_set(s, where[k])) {
            load[where[k]]++;
            continue;
        }
        if (where[k] != SHARD_NONE && moved != NULL)
            (*moved)++;
        where[k] = SHARD_NONE;
        lacking++;
    }
    return lacking;
}

/* even, second half: each shard without an executor to the least full candidate.  The
 * first shard looks for ties from a point the job's hash picks, each next one from just
 * after the executor the last one took, so the shards of a job over equally loaded
 * executors land on different ones. */
static void even_fill(const struct shard_cluster *c, const struct shard_set *s, uint64_t job,
                      uint32_t shards, uint32_t *where, uint64_t *load)
{
    if (s->n == 0)
        return;
    uint32_t start = pick(job, s->n);
    for (uint32_t k = 0; k < shards; k++) {
        if (where[k] != SHARD_NONE)
            continue;
        uint32_t at = least_full(c, s, load, start);
        uint32_t e = s->list[at];
        where[k] = e;
        load[e]++;
        start = at + 1 < s->n ? at + 1 : 0;
    }
}

static void hash_place(const struct shard_set *s, uint64_t job, uint32_t shards, uint32_t *where,
                       uint64_t *load, uint64_t *moved)
{
    for (uint32_t k = 0; k < shards; k++) {
        uint32_t e = s->n > 0 ? heaviest(s, shard_hash(job, k)) : SHARD_NONE;
        if (where[k] != SHARD_NONE && where[k] != e)
            (*moved)++;
        where[k] = e;
        if (e != SHARD_NONE)
            load[e]++;
    }
}

static void local_place(const struct shard_set *s, uint32_t shards, uint32_t *where,
                        uint32_t *n_where, uint64_t *load, uint64_t *moved)
{
    for (uint32_t k = 0; k < *n_where; k++) {
        if (!in_set(s, where[k]))
            *moved += shards;
    }
    memcpy(where, s->list, (size_t)s->n * sizeof *where);
    *n_where = s->n;
    for (uint32_t k = 0; k < s->n; k++)
        load[s->list[k]] += shards;
}

/* Count a placed job's shards with and without an executor. */
static void tally(const struct shard_job *j, const uint32_t *where, uint32_t n_where,
                  struct shard_counts *m)
{
    if (j->strategy == JOB_STRATEGY_LOCAL) {
        m->placed += (uint64_t)j->shards * n_where;
        m->unplaced += n_where == 0 ? j->shards : 0;
        return;
    }
    for (uint32_t k = 0; k < n_where; k++) {
        if (where[k] == SHARD_NONE)
            m->unplaced++;
        else
            m->placed++;
    }
}

/* Refuse a job or placement that is not one.  Fields are named "slots[slot].field" in a
 * plan, plain "field" when slot is SIZE_MAX; the path is made only for a refusal. */
static int check_slot(const struct shard_cluster *c, const struct shard_job *j,
                      const uint32_t *where, uint32_t n_where, size_t slot, struct ty_err *err)
{
    char at[32] = "", path[TY_ERR_FIELD_MAX];
    const char *name = j->name ? j->name : "?";
    bool local = j->strategy == JOB_STRATEGY_LOCAL;
    uint32_t bad = SHARD_NONE; /* the entry of where that is not an executor */
    for (uint32_t k = 0; where != NULL && k < n_where && bad == SHARD_NONE; k++) {
        if (where[k] >= c->n && (local || where[k] != SHARD_NONE))
            bad = k;
    }
    bool shards_ok = j->shards >= 1 && j->shards <= JOB_SHARDS_MAX;
    bool strategy_ok = j->strategy >= JOB_STRATEGY_EVEN && j->strategy <= JOB_STRATEGY_LOCAL;
    bool where_ok = where != NULL && (local ? n_where <= c->n : n_where == j->shards);
    if (j->name != NULL && shards_ok && strategy_ok && where_ok && bad == SHARD_NONE)
        return 0;
    if (slot != SIZE_MAX)
        snprintf(at, sizeof at, "slots[%zu].", slot);
    if (j->name == NULL) {
        snprintf(path, sizeof path, "%sname", at);
        return ty_error(err, TY_EINVAL, path, -1, 0, "%s: missing", path);
    }
    if (!shards_ok) {
        snprintf(path, sizeof path, "%sshards", at);
        return ty_error(err, TY_EINVAL, path, -1, 0, "%s: %u is out of range 1-%d (job \"%s\")",
                        path, j->shards, JOB_SHARDS_MAX, name);
    }
    if (!strategy_ok) {
        snprintf(path, sizeof path, "%sstrategy", at);
        return ty_error(err, TY_EINVAL, path, -1, 0,
                        "%s: %d is not a strategy (even, hash or local) (job \"%s\")", path,
                        (int)j->strategy, name);
    }
    snprintf(path, sizeof path, "%swhere", at);
    if (where == NULL)
        return ty_error(err, TY_EINVAL, path, -1, 0, "%s: missing (job \"%s\")", path, name);
    if (local && n_where > c->n)
        return ty_error(err, TY_EINVAL, path, -1, 0,
                        "%s: %u executors for a local job; the cluster has %u (job \"%s\")", path,
                        n_where, c->n, name);
    if (!where_ok)
        return ty_error(err, TY_EINVAL, path, -1, 0,
                        "%s: %u entries for %u shards; after a change of shard count or "
                        "strategy, start from shard_where_init (job \"%s\")",
                        path, n_where, j->shards, name);
    snprintf(path, sizeof path, "%swhere[%u]", at, bad);
    return ty_error(err, TY_EINVAL, path, -1, 0,
                    "%s: executor %u is not one of the %u executors (job \"%s\")", path, where[bad],
                    c->n, name);
}

int shard_place(struct shard_cluster *c, const struct shard_job *j, uint32_t *where,
                uint32_t *n_where, uint64_t *load, struct shard_counts *counts, struct ty_err *err)
{
    struct shard_counts none = {0, 0, 0, 0};
    struct shard_counts *m = counts ? counts : &none;
    int rc = check_slot(c, j, where, *n_where, SIZE_MAX, err);
    if (rc != 0)
        return rc;
    bool kept;
    const struct shard_set *s = candidates(c, j, &kept);
    uint64_t job = hash_text(j->name);
    switch (j->strategy) {
    case JOB_STRATEGY_EVEN:
        even_keep(s, j->shards, where, load, &m->moved);
        even_fill(c, s, job, j->shards, where, load);
        break;
    case JOB_STRATEGY_HASH: hash_place(s, job, j->shards, where, load, &m->moved); break;
    case JOB_STRATEGY_LOCAL: local_place(s, j->shards, where, n_where, load, &m->moved); break;
    }
    tally(j, where, *n_where, m);
    return 0;
}

void shard_release(const struct shard_cluster *c, const struct shard_job *j, const uint32_t *where,
                   uint32_t n_where, uint64_t *load)
{
    uint64_t each = j->strategy == JOB_STRATEGY_LOCAL ? j->shards : 1;
    for (uint32_t k = 0; k < n_where; k++) {
        uint32_t e = where[k];
        if (e < c->n)
            load[e] = load[e] > each ? load[e] - each : 0;
    }
}

/* ---- the whole plan ----------------------------------------------------------------------- */

/* A job of the plan, for visiting in an order that does not depend on the slots' order,
 * with what the visit needs (so that it reads the slots no more). */
struct visit {
    uint64_t hash; /* hash_text of its name */
    const char *name;
    uint32_t *where;       /* the slot's */
    struct shard_set *set; /* its candidates */
    uint32_t slot, shards;
};

static bool visit_before(const struct visit *x, const struct visit *y)
{
    if (x->hash != y->hash)
        return x->hash < y->hash;
    int d = strcmp(x->name, y->name);
    return d < 0 || (d == 0 && x->slot < y->slot);
}

/*
 * Sort v[0..n) by hash, then name, then slot, with tmp[n] as room: a radix sort of the
 * hash, 11 bits a pass (six passes, no comparisons through a function pointer as qsort
 * makes), then an insertion sort of each run of equal hashes, which only two slots of one
 * name (or a 64-bit collision) make.
 */
static void sort_visits(struct visit *v, struct visit *tmp, size_t n)
{
    enum { BITS = 11, BUCKETS = 1 << BITS };
    size_t count[BUCKETS];
    struct visit *from = v, *to = tmp;
    for (unsigned shift = 0; shift < 64; shift += BITS) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(from[i].hash >> shift) & (BUCKETS - 1)]++;
        size_t sum = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            size_t k = count[b];
            count[b] = sum;
            sum += k;
        }
        for (size_t i = 0; i < n; i++)
            to[count[(from[i].hash >> shift) & (BUCKETS - 1)]++] = from[i];
        struct visit *t = from;
        from = to;
        to = t;
    }
    if (from != v) /* an odd number of passes (six: even; kept for a change of BITS) */
        memcpy(v, from, n * sizeof *v);
    for (size_t i = 1; i < n; i++) {
        if (v[i].hash != v[i - 1].hash)
            continue;
        struct visit x = v[i];
        size_t k = i;
        for (; k > 0 && visit_before(&x, &v[k - 1]); k--)
            v[k] = v[k - 1];
        v[k] = x;
    }
}

/* An even shard the balance pass may move: shard `shard` of the job p->order[visit]. */
struct entry {
    uint32_t visit, shard;
};

/*
 * What shard_plan allocates, all before it changes anything.  The passes that treat each
 * job on its own go through the slots as given, one after another (the slots of 500,000
 * jobs do not fit in a cache, and visiting them in hash order costs a miss per job); only
 * the placing of shards without an executor and the balance pass, whose choices depend on
 * the order, go in hash order.
 */
struct plan_job {
    uint64_t hash;         /* hash_text(name) */
    struct shard_set *set; /* its candidates (memoised) */
};

struct plan {
    struct plan_job *jobs; /* [n] one per slot */
    struct visit *order;   /* [n] jobs in hash order (those the pass at hand needs) */
    struct visit *room;    /* [n] for sorting them */
    uint32_t *before;      /* the even jobs' placements as given, one after another */
    struct entry *entries; /* [even shards], grouped by executor */
    size_t *start;         /* [c->n + 1] where each executor's entries begin */
    size_t *cursor;        /* [c->n] the next entry to try, counting down */
};

static void plan_free(struct plan *p)
{
    free(p->jobs);
    free(p->order);
    free(p->room);
    free(p->before);
    free(p->entries);
    free(p->start);
    free(p->cursor);
}

/* The least full member of s now (ties: the first in id order), cached for the
 * generation of the loads. */
static uint32_t set_target(const struct shard_cluster *c, struct shard_set *s, const uint64_t *load)
{
    if (s->gen != c->gen) {
        s->target = s->list[least_full(c, s, load, 0)];
        s->gen = c->gen;
    }
    return s->target;
}

/* Moving a shard from a to b leaves b less full than a was:
 * (load[b] + 1) / cap[b] < load[a] / cap[a]. */
static bool improves(const struct shard_cluster *c, const uint64_t *load, uint32_t a, uint32_t b)
{
    return (load[b] + 1) * c->ex[a].capacity < load[a] * c->ex[b].capacity;
}

/* Slot i is an even job whose shards could move (it has another candidate). */
static bool movable(const struct shard_slot *slots, const struct plan *p, size_t i)
{
    return slots[i].job.strategy == JOB_STRATEGY_EVEN && p->jobs[i].set->n >= 2;
}

/* No even shard could move to a candidate that stays less full than its executor: the
 * plan is balanced.  One pass over the slots in their order. */
static bool balanced(struct shard_cluster *c, const struct shard_slot *slots, size_t n,
                     const uint64_t *load, const struct plan *p)
{
    c->gen++;
    for (size_t i = 0; i < n; i++) {
        if (!movable(slots, p, i))
            continue;
        uint32_t t = set_target(c, p->jobs[i].set, load);
        for (uint32_t k = 0; k < slots[i].job.shards; k++) {
            uint32_t a = slots[i].where[k];
            if (a != SHARD_NONE && improves(c, load, a, t))
                return false;
        }
    }
    return true;
}

/* The executor with the most load per capacity among those with entries left to try
 * (ties: the first in id order), or SHARD_NONE. */
static uint32_t fullest(const struct shard_cluster *c, const uint64_t *load, const struct plan *p)
{
    uint32_t best = SHARD_NONE;
    for (uint32_t r = 0; r < c->n; r++) {
        uint32_t e = c->by_id[r];
        if (p->cursor[e] == p->start[e])
            continue;
        if (best == SHARD_NONE || load[e] * c->ex[best].capacity > load[best] * c->ex[e].capacity)
            best = e;
    }
    return best;
}

/* Group the shards of the n_order movable jobs in p->order by executor, in that order. */
static void collect(const struct shard_cluster *c, size_t n_order, struct plan *p)
{
    memset(p->start, 0, ((size_t)c->n + 1) * sizeof *p->start);
    for (size_t v = 0; v < n_order; v++) {
        const struct visit *j = &p->order[v];
        for (uint32_t k = 0; k < j->shards; k++) {
            if (j->where[k] != SHARD_NONE)
                p->start[j->where[k] + 1]++;
        }
    }
    for (uint32_t e = 0; e < c->n; e++) {
        p->start[e + 1] += p->start[e];
        p->cursor[e] = p->start[e];
    }
    for (size_t v = 0; v < n_order; v++) {
        const struct visit *j = &p->order[v];
        for (uint32_t k = 0; k < j->shards; k++) {
            uint32_t e = j->where[k];
            if (e != SHARD_NONE)
                p->entries[p->cursor[e]++] = (struct entry){(uint32_t)v, k};
        }
    }
}

static struct visit visit_of(struct shard_slot *slots, const struct plan *p, size_t i)
{
    return (struct visit){p->jobs[i].hash, slots[i].job.name, slots[i].where,
                          p->jobs[i].set,  (uint32_t)i,       slots[i].job.shards};
}

/*
 * Until the plan is balanced: the fullest executor with entries left gives its last
 * entry (in hash order) that can go to the least full candidate of its job, and is done
 * when none can.  Returns the moves.
 */
static uint64_t balance(struct shard_cluster *c, struct shard_slot *slots, size_t n, uint64_t *load,
                        struct plan *p)
{
    uint64_t moves = 0, pass = 1;
    size_t n_order = 0;
    while (pass > 0 && !balanced(c, slots, n, load, p)) {
        if (n_order == 0) {
            for (size_t i = 0; i < n; i++) {
                if (movable(slots, p, i))
                    p->order[n_order++] = visit_of(slots, p, i);
            }
            sort_visits(p->order, p->room, n_order);
        }
        collect(c, n_order, p);
        c->gen++;
        pass = 0;
        uint32_t a;
        while ((a = fullest(c, load, p)) != SHARD_NONE) {
            while (p->cursor[a] > p->start[a]) {
                struct entry x = p->entries[--p->cursor[a]];
                const struct visit *j = &p->order[x.visit];
                uint32_t b = set_target(c, j->set, load);
                assert(j->where[x.shard] == a);
                if (!improves(c, load, a, b))
                    continue;
                j->where[x.shard] = b;
                load[a]--;
                load[b]++;
                c->gen++;
                pass++;
                break;
            }
        }
        moves += pass;
    }
    return moves;
}

/* Allocate the plan's scratch and find every slot's candidates. */
static int plan_alloc(struct shard_cluster *c, const struct shard_slot *slots, size_t n,
                      struct plan *p)
{
    size_t even = 0;
    memset(p, 0, sizeof *p);
    p->jobs = malloc((n ? n : 1) * sizeof *p->jobs);
    p->order = malloc((n ? n : 1) * sizeof *p->order);
    p->room = malloc((n ? n : 1) * sizeof *p->room);
    if (p->jobs == NULL || p->order == NULL || p->room == NULL)
        return TY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        bool kept;
        p->jobs[i].set = candidates(c, &slots[i].job, &kept);
        if (!kept)
            return TY_ENOMEM; /* (or a key past MEMO_KEY_MAX, which a valid job cannot make) */
        p->jobs[i].hash = hash_text(slots[i].job.name);
        if (slots[i].job.strategy == JOB_STRATEGY_EVEN)
            even += slots[i].job.shards;
    }
    p->before = malloc((even ? even : 1) * sizeof *p->before);
    p->entries = malloc((even ? even : 1) * sizeof *p->entries);
    p->start = malloc(((size_t)c->n + 1) * sizeof *p->start);
    p->cursor = malloc(((size_t)c->n + 1) * sizeof *p->cursor);
    if (p->before == NULL || p->entries == NULL || p->start == NULL || p->cursor == NULL)
        return TY_ENOMEM;
    return 0;
}

int shard_plan(struct shard_cluster *c, struct shard_slot *slots, size_t n, uint64_t *load,
               struct shard_counts *counts, struct ty_err *err)
{
    struct shard_counts none = {0, 0, 0, 0};
    struct shard_counts *m = counts ? counts : &none;
    if (n > UINT32_MAX)
        return ty_error(err, TY_EINVAL, "slots", -1, 0, "slots: %zu jobs; at most %u", n,
                        UINT32_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = check_slot(c, &slots[i].job, slots[i].where, slots[i].n_where, i, err);
        if (rc != 0)
            return rc;
    }
    struct plan p;
    if (plan_alloc(c, slots, n, &p) != 0) {
        plan_free(&p);
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }

    /* hash and local afresh; even shards keep a candidate executor */
    memset(load, 0, (size_t)c->n * sizeof *load);
    size_t b = 0, n_fill = 0;
    for (size_t i = 0; i < n; i++) {
        struct shard_slot *sl = &slots[i];
        const struct shard_set *s = p.jobs[i].set;
        switch (sl->job.strategy) {
        case JOB_STRATEGY_EVEN:
            memcpy(p.before + b, sl->where, (size_t)sl->job.shards * sizeof *sl->where);
            b += sl->job.shards;
            if (even_keep(s, sl->job.shards, sl->where, load, NULL) > 0 && s->n > 0)
                p.order[n_fill++] = visit_of(slots, &p, i);
            break;
        case JOB_STRATEGY_HASH:
            hash_place(s, p.jobs[i].hash, sl->job.shards, sl->where, load, &m->moved);
            break;
        case JOB_STRATEGY_LOCAL:
            local_place(s, sl->job.shards, sl->where, &sl->n_where, load, &m->moved);
            break;
        }
    }
    /* ... then, once every kept shard is in the load, the even shards without one */
    sort_visits(p.order, p.room, n_fill);
    for (size_t v = 0; v < n_fill; v++) {
        const struct visit *j = &p.order[v];
        even_fill(c, j->set, j->hash, j->shards, j->where, load);
    }
    m->rebalanced += balance(c, slots, n, load, &p);

    b = 0;
    for (size_t i = 0; i < n; i++) {
        const struct shard_slot *sl = &slots[i];
        if (sl->job.strategy == JOB_STRATEGY_EVEN) {
            for (uint32_t k = 0; k < sl->job.shards; k++, b++) {
                if (p.before[b] != SHARD_NONE && p.before[b] != sl->where[k])
                    m->moved++;
            }
        }
        tally(&sl->job, sl->where, sl->n_where, m);
    }
    plan_free(&p);
    return 0;
}
