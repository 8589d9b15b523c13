/*
 * test_tzdiff.c - differential test of the whole zone reader (tzdb + tz) against glibc.
 *
 * For every zone of the system tz database, one at a time, glibc is pointed at the same
 * file (TZ=":/dir/name") and localtime_r's offset, DST flag and abbreviation are
 * compared with tz_lookup's at:
 *   - every offset change of our table (span starts) between 1972 and 2150, and +-1 s;
 *   - every transition the file itself lists in that range, and +-1 s, read here by a
 *     few lines independent of tz.c (these catch changes of abbreviation or DST flag
 *     alone, which the span view merges away);
 *   - SAMPLES pseudo-random instants spread over 1972..2150 (fixed seed per zone).
 * 1972..2150 covers the file's own transitions (zic writes them up to 2037, or 2087
 * for zones with lunar-calendar rules) and more than a century of footer rules, which
 * glibc evaluates on the fly and we precompute.
 *
 * Zones: every regular file under the database directory that starts with "TZif",
 * except the right/ and posix/ subtrees (right/ counts leap seconds, which tz_parse
 * rejects by design; posix/ duplicates the main tree).  Symbolic links are skipped:
 * on Debian they are aliases (Cuba -> America/Havana), and "localtime" and
 * "posixrules" are among them, so no zone is compared twice.
 *
 * No glibc deviation shows up in 1972..2150 with tzdata 2025b and glibc 2.36, so
 * nothing is excluded.  (glibc does deviate for rules that no current zone uses: it
 * evaluates footer rules per UTC calendar year only, so for all-year DST written as
 * "EST5EDT,0/0,J365/25" it reports EST for the first hours of each UTC year.  That
 * case is covered by test_tz.c against RFC 8536 instead.)
 */
#define _DEFAULT_SOURCE /* struct tm's tm_gmtoff and tm_zone */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/civil.h"
#include "core/tz.h"
#include "tzdb/tzdb.h"

#define FROM     INT64_C(63072000)   /* 1972-01-01T00:00:00Z */
#define UNTIL    INT64_C(5680281600) /* 2150-01-01T00:00:00Z */
#define SAMPLES  5000
#define SHOW_MAX 10

struct names {
    char **v;
    size_t n, cap;
};

struct stats {
    size_t zones, instants, mismatches, shown;
};

static void add_name(struct names *ns, const char *name)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 512;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (v == NULL)
            abort(); /* out of memory: nothing sensible left to test */
        ns->v = v;
        ns->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        abort();
    ns->v[ns->n++] = copy;
}

static int is_tzif(const char *path)
{
    char magic[4];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

/* rel is "" for the top directory, else "America/" and so on. */
static void walk(const char *dir, const char *rel, struct names *ns)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (rel[0] == '\0' && (strcmp(e->d_name, "right") == 0 || strcmp(e->d_name, "posix") == 0))
            continue;
        char sub[1024], full[4096];
        struct stat st;
        int n = snprintf(sub, sizeof sub, "%s%s", rel, e->d_name);
        assert_true(n > 0 && (size_t)n < sizeof sub);
        snprintf(full, sizeof full, "%s/%s", dir, sub);
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            char next[1100];
            snprintf(next, sizeof next, "%s/", sub);
            walk(dir, next, ns);
        } else if (S_ISREG(st.st_mode) && is_tzif(full)) {
            add_name(ns, sub);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The transition times of the file's 64-bit block, written without tz.c so that the
 * instants it yields do not depend on the code under test.  Returns the count.
 */
static size_t file_transitions(const char *path, int64_t **out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len >= 44 && buf[4] >= '2');
#define U32(p) ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (p)[3])
    size_t v1 = 44 + U32(buf + 32) * 5 + U32(buf + 36) * 6 + U32(buf + 40) + U32(buf + 28) * 8 +
                U32(buf + 24) + U32(buf + 20);
    assert_true(v1 + 44 <= len);
    size_t timecnt = U32(buf + v1 + 32);
    assert_true(v1 + 44 + timecnt * 8 <= len);
    int64_t *t = malloc((timecnt + 1) * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < timecnt; i++) {
        const uint8_t *p = buf + v1 + 44 + i * 8;
        t[i] = (int64_t)((uint64_t)U32(p) << 32 | U32(p + 4));
    }
#undef U32
    *out = t;
    return timecnt;
}

static void compare(const char *name, const struct tz_zone *z, int64_t t, struct stats *st)
{
    if (t < FROM || t >= UNTIL)
        return;
    struct tz_info ours;
    tz_lookup(z, t, &ours);
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(localtime_r(&tt, &tm));
    st->instants++;
    int isdst = tm.tm_isdst > 0;
    const char *abbr = tm.tm_zone != NULL ? tm.tm_zone : "(null)";
    if (tm.tm_gmtoff == ours.utoff && isdst == ours.isdst && strcmp(abbr, ours.abbr) == 0)
        return;
    st->mismatches++;
    if (st->shown++ < SHOW_MAX) {
        char when[CIVIL_RFC3339_MAX];
        civil_format_rfc3339(t, 0, when);
        printf("tzdiff: MISMATCH %s at %s (%lld): tethys %ld %s dst=%d, glibc %ld %s dst=%d\n",
               name, when, (long long)t, (long)ours.utoff, ours.abbr, ours.isdst,
               (long)tm.tm_gmtoff, abbr, isdst);
    }
}

static void compare_around(const char *name, const struct tz_zone *z, int64_t t, struct stats *st)
{
    compare(name, z, t - 1, st);
    compare(name, z, t, st);
    compare(name, z, t + 1, st);
}

static uint64_t seed_of(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h | 1;
}

static void diff_zone(const char *dir, const char *name, struct stats *st)
{
    const struct tz_zone *z;
    struct ty_err err;
    int rc = tzdb_get(name, &z, &err);
    if (rc != 0) {
        printf("tzdiff: %s does not load: %s\n", name, err.msg);
        st->mismatches++;
        return;
    }
    char tzvar[4200];
    snprintf(tzvar, sizeof tzvar, ":%s/%s", dir, name);
    assert_int_equal(setenv("TZ", tzvar, 1), 0);
    tzset();
    st->zones++;

    for (uint32_t i = tz_span_find(z, FROM); i < tz_span_count(z); i++) {
        struct tz_span sp;
        tz_span_get(z, i, &sp);
        if (sp.start >= UNTIL)
            break;
        if (sp.start != INT64_MIN)
            compare_around(name, z, sp.start, st);
    }

    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int64_t *trans;
    size_t n = file_transitions(path, &trans);
    for (size_t i = 0; i < n; i++)
        compare_around(name, z, trans[i], st);
    free(trans);

    uint64_t x = seed_of(name); /* xorshift64 */
    for (int i = 0; i < SAMPLES; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        compare(name, z, FROM + (int64_t)(x % (uint64_t)(UNTIL - FROM)), st);
    }
}

static void test_all_zones_agree_with_glibc(void **state)
{
    (void)state;
    const char *dir = tzdb_dir();
    struct names ns = {NULL, 0, 0};
    walk(dir, "", &ns);
    if (ns.v == NULL) {
        fail_msg("tzdiff: no TZif files under %s", dir);
        return;
    }
    qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);

    struct stats st = {0, 0, 0, 0};
    for (size_t i = 0; i < ns.n; i++) {
        diff_zone(dir, ns.v[i], &st);
        free(ns.v[i]);
    }
    free(ns.v);
    unsetenv("TZ");
    tzset();
    tzdb_shutdown();

    printf("tzdiff: %zu zones, %zu instants compared, %zu mismatches, 0 excluded\n", st.zones,
           st.instants, st.mismatches);
    /* a Debian tz database has about 450 zone files; far fewer means the walk broke */
    assert_true(st.zones >= 300);
    assert_true(st.instants >= st.zones * SAMPLES);
    assert_int_equal(st.mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_zones_agree_with_glibc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
