/*
 * test_tz.c - unit tests of the TZif reader and POSIX TZ rules (src/core/tz.c) and of
 * the zone registry (src/tzdb/tzdb.c).
 *
 * TZif files are built here byte by byte (build_tzif) so every field can be set or
 * broken on purpose; one version 1 file is also spelled out literally so the builder
 * is not the only writer the parser has seen.  Expected instants for POSIX rules and
 * real zones were checked against glibc 2.36 and tzdata 2025b when written, except
 * all-year DST, where glibc deviates from RFC 8536 (see test_rule_all_year_dst).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/civil.h"
#include "core/tz.h"
#include "tzdb/tzdb.h"

/* 400 Gregorian years: every rule repeats with this period. */
#define CYCLE INT64_C(12622780800)
#define Y1972 INT64_C(63072000)

/* ---- helpers ------------------------------------------------------------------------ */

static int64_t ts(const char *rfc3339)
{
    int64_t t;
    struct ty_err err;
    int rc = civil_parse_rfc3339(rfc3339, "test", &t, &err);
    if (rc != 0)
        fail_msg("bad instant in test: %s", rfc3339);
    return t;
}

static void expect_info(const struct tz_zone *z, int64_t t, int32_t utoff, int isdst,
                        const char *abbr)
{
    struct tz_info i;
    tz_lookup(z, t, &i);
    if (i.utoff != utoff || i.isdst != isdst || strcmp(i.abbr, abbr) != 0)
        fail_msg("%s at %lld: got %ld %s dst=%d, want %ld %s dst=%d", tz_name(z), (long long)t,
                 (long)i.utoff, i.abbr, i.isdst, (long)utoff, abbr, isdst);
}

static void expect_at(const struct tz_zone *z, const char *when, int32_t utoff, int isdst,
                      const char *abbr)
{
    expect_info(z, ts(when), utoff, isdst, abbr);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * Everything tz.h promises about spans, plus agreement with tz_lookup at every span
 * edge and at many instants between 1972 and the table end.
 */
static void check_spans(const struct tz_zone *z)
{
    uint32_t n = tz_span_count(z);
    assert_true(n >= 1);
    struct tz_span first, last, s, prev;
    tz_span_get(z, 0, &first);
    tz_span_get(z, n - 1, &last);
    assert_true(first.start == INT64_MIN);
    assert_true(last.end == INT64_MAX);
    assert_int_equal(first.prev_utoff, first.utoff);
    int32_t max = first.utoff;
    prev = first;
    for (uint32_t i = 0; i < n; i++) {
        tz_span_get(z, i, &s);
        assert_true(s.start < s.end);
        if (s.utoff > max)
            max = s.utoff;
        if (i > 0) {
            assert_true(prev.end == s.start);
            assert_int_not_equal(prev.utoff, s.utoff);
            assert_int_equal(s.prev_utoff, prev.utoff);
            assert_int_equal(tz_span_find(z, s.start - 1), i - 1);
        }
        assert_int_equal(tz_span_find(z, s.start), i);
        assert_int_equal(tz_span_find(z, s.end - 1), i);
        if (s.start >= Y1972 && s.start < TZ_TABLE_END) {
            struct tz_info a, b;
            tz_lookup(z, s.start, &a);
            tz_lookup(z, s.start - 1, &b);
            assert_int_equal(a.utoff, s.utoff);
            assert_int_equal(b.utoff, s.prev_utoff);
        }
        prev = s;
    }
    assert_int_equal(tz_max_utoff(z), max);

    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 2000; i++) {
        int64_t t = Y1972 + (int64_t)(rng_next(&x) % (uint64_t)(TZ_TABLE_END - Y1972));
        struct tz_info info;
        tz_lookup(z, t, &info);
        tz_span_get(z, tz_span_find(z, t), &s);
        assert_true(s.start <= t && t < s.end);
        assert_int_equal(s.utoff, info.utoff);
    }
}

/*
 * The table (up to 2201) and direct evaluation of the footer (beyond) must agree: the
 * rules repeat every 400 years, so t and t + CYCLE have the same local time type.
 */
static void check_periodic(const struct tz_zone *z, int64_t from)
{
    uint64_t x = 0x2545f4914f6cdd1du;
    for (int i = 0; i < 3000; i++) {
        int64_t t = from + (int64_t)(rng_next(&x) % (uint64_t)(TZ_TABLE_END - from));
        struct tz_info a, b;
        tz_lookup(z, t, &a);
        tz_lookup(z, t + CYCLE, &b);
        if (a.utoff != b.utoff || a.isdst != b.isdst || strcmp(a.abbr, b.abbr) != 0)
            fail_msg("%s: %lld gives %s, %lld gives %s", tz_name(z), (long long)t, a.abbr,
                     (long long)(t + CYCLE), b.abbr);
    }
}

/* ---- building TZif files ------------------------------------------------------------ */

struct ttspec {
    int32_t utoff;
    uint8_t isdst;
    uint8_t abbr; /* index into chars */
};

struct spec {
    char version; /* 0 for version 1, else '2', '3', '4' */
    uint32_t timecnt;
    const int64_t *at;
    const uint8_t *idx;
    uint32_t typecnt;
    const struct ttspec *types;
    uint32_t charcnt;
    const char *chars;
    uint32_t leapcnt;   /* written as (0, 1) records */
    int indicators;     /* write isstd and isut arrays of zeros */
    const char *footer; /* v2+: the TZ string between the newlines */
};

/* A file and where its parts are (those of the block a reader uses). */
struct blob {
    uint8_t b[8192];
    size_t n;
    size_t hdr, times, idxs, types, chars, isstd, isut, footer;
};

static void put8(struct blob *o, uint8_t v)
{
    assert_true(o->n < sizeof o->b);
    o->b[o->n++] = v;
}

static void put32(struct blob *o, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        put8(o, (uint8_t)(v >> s));
}

static void put64(struct blob *o, int64_t v)
{
    put32(o, (uint32_t)((uint64_t)v >> 32));
    put32(o, (uint32_t)v);
}

static void set32(struct blob *o, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        o->b[at + (size_t)i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_header(struct blob *o, char version, uint32_t isut, uint32_t isstd, uint32_t leap,
                       uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    put8(o, 'T');
    put8(o, 'Z');
    put8(o, 'i');
    put8(o, 'f');
    put8(o, (uint8_t)version);
    for (int i = 0; i < 15; i++)
        put8(o, 0);
    put32(o, isut);
    put32(o, isstd);
    put32(o, leap);
    put32(o, timecnt);
    put32(o, typecnt);
    put32(o, charcnt);
}

static void put_block(struct blob *o, const struct spec *s, int tsize)
{
    uint32_t ind = s->indicators ? s->typecnt : 0;
    o->hdr = o->n;
    put_header(o, s->version, ind, ind, s->leapcnt, s->timecnt, s->typecnt, s->charcnt);
    o->times = o->n;
    for (uint32_t i = 0; i < s->timecnt; i++) {
        if (tsize == 8)
            put64(o, s->at[i]);
        else
            put32(o, (uint32_t)s->at[i]);
    }
    o->idxs = o->n;
    for (uint32_t i = 0; i < s->timecnt; i++)
        put8(o, s->idx[i]);
    o->types = o->n;
    for (uint32_t i = 0; i < s->typecnt; i++) {
        put32(o, (uint32_t)s->types[i].utoff);
        put8(o, s->types[i].isdst);
        put8(o, s->types[i].abbr);
    }
    o->chars = o->n;
    for (uint32_t i = 0; i < s->charcnt; i++)
        put8(o, (uint8_t)s->chars[i]);
    for (uint32_t i = 0; i < s->leapcnt; i++) {
        if (tsize == 8)
            put64(o, 0);
        else
            put32(o, 0);
        put32(o, 1);
    }
    o->isstd = o->n;
    for (uint32_t i = 0; i < ind; i++)
        put8(o, 0);
    o->isut = o->n;
    for (uint32_t i = 0; i < ind; i++)
        put8(o, 0);
}

/*
 * Version 2+ files get a decoy version 1 block (one type, "BAD", +03:25:45): a reader
 * that used it instead of the 64-bit block would show it in every lookup.
 */
static void build_tzif(const struct spec *s, struct blob *o)
{
    memset(o, 0, sizeof *o);
    if (s->version == 0) {
        put_block(o, s, 4);
        o->footer = o->n;
        return;
    }
    put_header(o, s->version, 0, 0, 0, 0, 1, 4);
    put32(o, 12345);
    put8(o, 0);
    put8(o, 0);
    put8(o, 'B');
    put8(o, 'A');
    put8(o, 'D');
    put8(o, 0);
    put_block(o, s, 8);
    o->footer = o->n;
    put8(o, '\n');
    for (const char *p = s->footer; p != NULL && *p != '\0'; p++)
        put8(o, (uint8_t)*p);
    put8(o, '\n');
}

/* Berlin-like: LMT, then CET from 1893, one summer in 1996, and the EU rule after. */
static const struct ttspec cet_types[] = {{3208, 0, 0}, {3600, 0, 4}, {7200, 1, 8}};
static const char cet_chars[] = "LMT\0CET\0CEST"; /* 13 bytes with the final NUL */
static const int64_t cet_at[] = {INT64_C(-2422054408), 828234000, 846378000};
static const int64_t cet_at32[] = {INT32_MIN, 828234000, 846378000}; /* 1901-12-13T20:45:52Z */
static const uint8_t cet_idx[] = {1, 2, 1};
#define CET_FOOTER "CET-1CEST,M3.5.0,M10.5.0/3"

static struct spec cet_spec(char version)
{
    struct spec s = {
        version,   3, version == 0 ? cet_at32 : cet_at, cet_idx, 3, cet_types, 13, cet_chars, 0, 0,
        CET_FOOTER};
    return s;
}

static void build_cet(struct blob *o, char version)
{
    struct spec s = cet_spec(version);
    build_tzif(&s, o);
}

static int parse(const struct blob *o, struct tz_zone **z, struct ty_err *err)
{
    ty_err_clear(err);
    return tz_parse("Test/Zone", o->b, o->n, z, err);
}

/* ---- valid TZif files --------------------------------------------------------------- */

static void test_tzif_v1_literal(void **state)
{
    (void)state;
    /* UTC until 1980-01-01T00:00:00Z, then "XYZ" +01:00 for ever */
    /* clang-format off */
    static const uint8_t file[] = {
        'T', 'Z', 'i', 'f', 0,                        /* magic, version 1 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* reserved */
        0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,         /* isutcnt, isstdcnt, leapcnt */
        0, 0, 0, 1,  0, 0, 0, 2,  0, 0, 0, 8,         /* timecnt 1, typecnt 2, charcnt 8 */
        0x12, 0xce, 0xa6, 0x00,                       /* 315532800 */
        1,                                            /* -> type 1 */
        0, 0, 0, 0, 0, 0,                             /* type 0: +0, std, "UTC" */
        0, 0, 0x0e, 0x10, 0, 4,                       /* type 1: +3600, std, "XYZ" */
        'U', 'T', 'C', 0, 'X', 'Y', 'Z', 0,
    };
    /* clang-format on */
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(tz_parse("Lit/Eral", file, sizeof file, &z, &err), 0);
    assert_string_equal(tz_name(z), "Lit/Eral");
    expect_at(z, "1979-12-31T23:59:59Z", 0, 0, "UTC");
    expect_at(z, "1980-01-01T00:00:00Z", 3600, 0, "XYZ");
    expect_at(z, "2300-01-01T00:00:00Z", 3600, 0, "XYZ");
    expect_info(z, INT64_MIN, 0, 0, "UTC");
    expect_info(z, INT64_MAX, 3600, 0, "XYZ");
    assert_int_equal(tz_span_count(z), 2);
    assert_int_equal(tz_max_utoff(z), 3600);
    check_spans(z);
    tz_free(z);
}

static void test_tzif_v1_built(void **state)
{
    (void)state;
    struct blob o;
    build_cet(&o, 0);
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    expect_at(z, "1800-01-01T00:00:00Z", 3208, 0, "LMT");
    expect_at(z, "1901-12-13T20:45:51Z", 3208, 0, "LMT");
    expect_at(z, "1901-12-13T20:45:52Z", 3600, 0, "CET");
    expect_at(z, "1996-07-01T00:00:00Z", 7200, 1, "CEST");
    /* no footer in version 1: the last type stays, summer or not */
    expect_at(z, "2006-07-01T00:00:00Z", 3600, 0, "CET");
    assert_int_equal(tz_span_count(z), 4);
    check_spans(z);
    tz_free(z);
}

static void test_tzif_v2_footer(void **state)
{
    (void)state;
    struct blob o;
    build_cet(&o, '2');
    struct tz_zone *z = NULL;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    expect_info(z, INT64_MIN, 3208, 0, "LMT");
    expect_at(z, "1800-01-01T00:00:00Z", 3208, 0, "LMT");
    expect_at(z, "1893-03-31T23:06:31Z", 3208, 0, "LMT");
    expect_at(z, "1893-03-31T23:06:32Z", 3600, 0, "CET");
    expect_at(z, "1996-03-31T00:59:59Z", 3600, 0, "CET");
    expect_at(z, "1996-03-31T01:00:00Z", 7200, 1, "CEST");
    expect_at(z, "1996-10-27T01:00:00Z", 3600, 0, "CET");
    /* from the footer, precomputed */
    expect_at(z, "2006-03-26T00:59:59Z", 3600, 0, "CET");
    expect_at(z, "2006-03-26T01:00:00Z", 7200, 1, "CEST");
    expect_at(z, "2006-10-29T00:59:59Z", 7200, 1, "CEST");
    expect_at(z, "2006-10-29T01:00:00Z", 3600, 0, "CET");
    expect_at(z, "2200-10-26T00:59:59Z", 7200, 1, "CEST");
    expect_at(z, "2200-10-26T01:00:00Z", 3600, 0, "CET");
    /* from the footer, evaluated: past the table end */
    expect_at(z, "2201-03-29T00:59:59Z", 3600, 0, "CET");
    expect_at(z, "2201-03-29T01:00:00Z", 7200, 1, "CEST");
    expect_at(z, "2300-07-01T00:00:00Z", 7200, 1, "CEST");
    expect_at(z, "9999-12-31T23:59:59Z", 3600, 0, "CET");
    struct tz_info i;
    tz_lookup(z, INT64_MAX, &i); /* 292277026596-12-04: winter */
    assert_string_equal(i.abbr, "CET");
    /* 1893, 1996 x2, then two a year for 1997..2200 */
    assert_int_equal(tz_span_count(z), 1 + 3 + 2 * (2200 - 1997 + 1));
    assert_int_equal(tz_max_utoff(z), 7200);
    assert_true(tz_table_bytes(z) > 0 && tz_table_bytes(z) < 16384);
    check_spans(z);
    check_periodic(z, ts("1997-01-01T00:00:00Z"));
    tz_free(z);
}

static void test_tzif_v3_extended_rule_time(void **state)
{
    (void)state;
    static const struct ttspec types[] = {{8272, 0, 0}, {7200, 0, 4}, {10800, 1, 8}};
    static const int64_t at[] = {-2185409872, 946684800};
    static const uint8_t idx[] = {1, 1};
    struct spec s = {
        '3', 2, at, idx, 3, types, 13, "LMT\0EET\0EEST", 0, 0, "EET-2EEST,M3.4.4/50,M10.4.4/50"};
    struct blob o;
    build_tzif(&s, &o);
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    /* Thursday + 50 hours = Saturday 02:00 */
    expect_at(z, "2030-03-29T23:59:59Z", 7200, 0, "EET");
    expect_at(z, "2030-03-30T00:00:00Z", 10800, 1, "EEST");
    expect_at(z, "2030-10-25T22:59:59Z", 10800, 1, "EEST");
    expect_at(z, "2030-10-25T23:00:00Z", 7200, 0, "EET");
    check_spans(z);
    check_periodic(z, ts("2000-01-01T00:00:00Z"));
    tz_free(z);
}

static void test_tzif_later_versions(void **state)
{
    (void)state;
    /* tzfile(5): versions after 4 are meant to stay readable by version 4 readers */
    const char versions[] = {'2', '3', '4', '5', '9'};
    for (size_t i = 0; i < sizeof versions; i++) {
        struct blob o;
        build_cet(&o, versions[i]);
        struct tz_zone *z;
        struct ty_err err;
        assert_int_equal(parse(&o, &z, &err), 0);
        expect_at(z, "2006-07-01T00:00:00Z", 7200, 1, "CEST");
        tz_free(z);
    }
}

static void test_tzif_empty_footer(void **state)
{
    (void)state;
    static const uint8_t idx[] = {1, 2};
    struct spec s = cet_spec('2');
    s.timecnt = 2;
    s.idx = idx;
    s.footer = "";
    struct blob o;
    build_tzif(&s, &o);
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    /* no rule for the future: the type of the last transition (summer 1996) stays */
    expect_at(z, "2000-01-01T00:00:00Z", 7200, 1, "CEST");
    expect_at(z, "2300-01-01T00:00:00Z", 7200, 1, "CEST");
    assert_int_equal(tz_span_count(z), 3);
    check_spans(z);
    tz_free(z);
}

static void test_tzif_rule_only(void **state)
{
    (void)state;
    /* no transitions: RFC 8536 applies the footer to all instants */
    static const struct ttspec types[] = {{3600, 0, 0}};
    struct spec s = {'2', 0, NULL, NULL, 1, types, 4, "CET", 0, 0, CET_FOOTER};
    struct blob o;
    build_tzif(&s, &o);
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    expect_at(z, "1850-07-01T00:00:00Z", 7200, 1, "CEST");
    expect_at(z, "1850-12-01T00:00:00Z", 3600, 0, "CET");
    expect_at(z, "1972-07-01T00:00:00Z", 7200, 1, "CEST");
    expect_at(z, "2500-07-01T00:00:00Z", 7200, 1, "CEST");
    check_spans(z);
    check_periodic(z, ts("1900-01-01T00:00:00Z"));
    tz_free(z);
}

static void test_tzif_limits_accepted(void **state)
{
    (void)state;
    static const char chars[] = "MIN\0ABCDEFGHIJKLMNOPQRST\0ZZZZZZZZZZZZZZZ";
    /* the second abbreviation starts inside a longer one; both have 15 characters */
    static const struct ttspec types[] = {{-89999, 0, 0}, {93599, 1, 9}, {0, 0, 25}};
    static const int64_t at[] = {INT64_C(-576460752303423488), 0, 100};
    static const uint8_t idx[] = {0, 1, 2};
    struct spec s = {'2', 3, at, idx, 3, types, sizeof chars, chars, 0, 1, ""};
    struct blob o;
    build_tzif(&s, &o);
    struct tz_zone *z;
    struct ty_err err;
    int rc = parse(&o, &z, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    expect_info(z, -1, -89999, 0, "MIN");
    expect_info(z, 0, 93599, 1, "FGHIJKLMNOPQRST");
    expect_info(z, 100, 0, 0, "ZZZZZZZZZZZZZZZ");
    tz_free(z);
}

static void test_tzif_spans_merge(void **state)
{
    (void)state;
    /* Moscow 1991: MSK (+3) -> EEST (+3, DST) -> EET (+2); only the last moves the clock */
    static const struct ttspec types[] = {
        {10800, 0, 0}, {10800, 1, 4}, {7200, 0, 9}, {10800, 0, 0}};
    static const int64_t at[] = {670374000, 686098800, 2147483647};
    static const uint8_t idx[] = {1, 2, 2}; /* the last is a no-op, as zic writes them */
    struct spec s = {'2', 3, at, idx, 4, types, 13, "MSK\0EEST\0EET", 0, 0, "EET-2"};
    struct blob o;
    build_tzif(&s, &o);
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(parse(&o, &z, &err), 0);
    expect_at(z, "1991-01-01T00:00:00Z", 10800, 0, "MSK");
    expect_at(z, "1991-06-01T00:00:00Z", 10800, 1, "EEST");
    expect_at(z, "1992-01-01T00:00:00Z", 7200, 0, "EET");
    assert_int_equal(tz_span_count(z), 2);
    struct tz_span sp;
    tz_span_get(z, 1, &sp);
    assert_true(sp.start == 686098800 && sp.end == INT64_MAX);
    assert_int_equal(sp.utoff, 7200);
    assert_int_equal(sp.prev_utoff, 10800);
    assert_int_equal(tz_span_find(z, 670374000), 0);
    assert_int_equal(tz_max_utoff(z), 10800);
    check_spans(z);
    tz_free(z);
}

static void test_tzif_name_truncated(void **state)
{
    (void)state;
    char name[200];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    struct blob o;
    build_cet(&o, '2');
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(tz_parse(name, o.b, o.n, &z, &err), 0);
    assert_int_equal(strlen(tz_name(z)), TZ_NAME_MAX - 1);
    tz_free(z);
    tz_free(NULL);
}

/* ---- malformed TZif files ----------------------------------------------------------- */

/* Each builds a broken file and returns the byte offset the error must name (or -1). */
typedef long (*breaker)(struct blob *o);

static long br_empty(struct blob *o)
{
    memset(o, 0, sizeof *o);
    return 0;
}

static long br_short_header(struct blob *o)
{
    build_cet(o, '2');
    o->n = 43;
    return 0;
}

static long br_magic(struct blob *o)
{
    build_cet(o, '2');
    o->b[3] = 'F';
    return 0;
}

static long br_version(struct blob *o)
{
    build_cet(o, '2');
    o->b[4] = 'x';
    return 4;
}

static long br_second_magic(struct blob *o)
{
    build_cet(o, '2');
    o->b[o->hdr + 1] = 'X';
    return (long)o->hdr;
}

static long br_second_version(struct blob *o)
{
    build_cet(o, '2');
    o->b[o->hdr + 4] = '3';
    return (long)o->hdr + 4;
}

static long br_v1_truncated_block(struct blob *o)
{
    build_cet(o, '2');
    set32(o, 36, 0x10000); /* v1 typecnt: its block now runs past the end */
    return 0;
}

static long br_truncated_data(struct blob *o)
{
    build_cet(o, '2');
    o->n = o->types + 3;
    return (long)o->hdr;
}

static long br_typecnt_zero(struct blob *o)
{
    build_cet(o, '2');
    set32(o, o->hdr + 36, 0);
    return (long)o->hdr + 36;
}

static long br_typecnt_big(struct blob *o)
{
    static struct ttspec many[300];
    static const int64_t at[] = {0};
    static const uint8_t idx[] = {0};
    for (int i = 0; i < 300; i++)
        many[i] = (struct ttspec){0, 0, 0};
    struct spec s = {'2', 1, at, idx, 300, many, 4, "UTC", 0, 0, "UTC0"};
    build_tzif(&s, o);
    return (long)o->hdr + 36;
}

static long br_charcnt_zero(struct blob *o)
{
    build_cet(o, '2');
    set32(o, o->hdr + 40, 0);
    return (long)o->hdr + 40;
}

static long br_isutcnt(struct blob *o)
{
    build_cet(o, '2');
    set32(o, o->hdr + 20, 1);
    return (long)o->hdr + 20;
}

static long br_isstdcnt(struct blob *o)
{
    build_cet(o, '2');
    set32(o, o->hdr + 24, 2);
    return (long)o->hdr + 24;
}

static long br_leap(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.leapcnt = 1;
    build_tzif(&s, o);
    return (long)o->hdr + 28;
}

static long br_not_increasing(struct blob *o)
{
    static const int64_t at[] = {-2422054408, 846378000, 828234000};
    struct spec s = cet_spec('2');
    s.at = at;
    build_tzif(&s, o);
    return (long)o->times + 16;
}

static long br_equal_times(struct blob *o)
{
    static const int64_t at[] = {-2422054408, 828234000, 828234000};
    struct spec s = cet_spec('2');
    s.at = at;
    build_tzif(&s, o);
    return (long)o->times + 16;
}

static long br_type_index(struct blob *o)
{
    static const uint8_t idx[] = {1, 3, 1};
    struct spec s = cet_spec('2');
    s.idx = idx;
    build_tzif(&s, o);
    return (long)o->idxs + 1;
}

static long br_utoff_high(struct blob *o)
{
    static const struct ttspec types[] = {{3208, 0, 0}, {93600, 0, 4}, {7200, 1, 8}};
    struct spec s = cet_spec('2');
    s.types = types;
    build_tzif(&s, o);
    return (long)o->types + 6;
}

static long br_utoff_low(struct blob *o)
{
    static const struct ttspec types[] = {{-90000, 0, 0}, {3600, 0, 4}, {7200, 1, 8}};
    struct spec s = cet_spec('2');
    s.types = types;
    build_tzif(&s, o);
    return (long)o->types;
}

static long br_isdst(struct blob *o)
{
    static const struct ttspec types[] = {{3208, 0, 0}, {3600, 0, 4}, {7200, 2, 8}};
    struct spec s = cet_spec('2');
    s.types = types;
    build_tzif(&s, o);
    return (long)o->types + 12 + 4;
}

static long br_abbr_index(struct blob *o)
{
    static const struct ttspec types[] = {{3208, 0, 0}, {3600, 0, 13}, {7200, 1, 8}};
    struct spec s = cet_spec('2');
    s.types = types;
    build_tzif(&s, o);
    return (long)o->types + 6 + 5;
}

static long br_abbr_unterminated(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.charcnt = 12; /* "LMT\0CET\0CEST" without the final NUL */
    build_tzif(&s, o);
    return (long)o->chars + 8;
}

static long br_abbr_long(struct blob *o)
{
    static const struct ttspec types[] = {{0, 0, 0}};
    struct spec s = {'2', 0, NULL, NULL, 1, types, 17, "ABCDEFGHIJKLMNOP", 0, 0, ""};
    build_tzif(&s, o);
    return (long)o->chars;
}

static long br_abbr_control(struct blob *o)
{
    static const struct ttspec types[] = {{0, 0, 0}};
    struct spec s = {'2', 0, NULL, NULL, 1, types, 4, "U\nC", 0, 0, ""};
    build_tzif(&s, o);
    return (long)o->chars + 1;
}

static long br_isstd_value(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.indicators = 1;
    build_tzif(&s, o);
    o->b[o->isstd + 2] = 2;
    return (long)o->isstd + 2;
}

static long br_isut_without_isstd(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.indicators = 1;
    build_tzif(&s, o);
    o->b[o->isut + 1] = 1;
    return (long)o->isut + 1;
}

static long br_footer_missing(struct blob *o)
{
    build_cet(o, '2');
    o->n = o->footer;
    return (long)o->footer;
}

static long br_footer_no_newline(struct blob *o)
{
    build_cet(o, '2');
    o->b[o->footer] = 'C';
    return (long)o->footer;
}

static long br_footer_unterminated(struct blob *o)
{
    build_cet(o, '2');
    o->n--;
    return (long)o->footer;
}

static long br_footer_trailing(struct blob *o)
{
    build_cet(o, '2');
    put8(o, 'X');
    put8(o, '\n');
    return (long)o->n - 2;
}

static long br_footer_control(struct blob *o)
{
    build_cet(o, '2');
    o->b[o->footer + 4] = 0x01;
    return (long)o->footer + 4;
}

static long br_footer_syntax(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.footer = "CET-1CEST,M13.5.0,M10.5.0/3";
    build_tzif(&s, o);
    return (long)o->footer + 1 + 11; /* "CET-1CEST,M" then "13" */
}

static long br_footer_disagrees_offset(struct blob *o)
{
    static const uint8_t idx[] = {1, 1, 2}; /* ends in CEST, but the rule says CET then */
    struct spec s = cet_spec('2');
    s.idx = idx;
    build_tzif(&s, o);
    return (long)o->footer + 1;
}

static long br_footer_disagrees_abbr(struct blob *o)
{
    struct spec s = cet_spec('2');
    s.footer = "MET-1MEST,M3.5.0,M10.5.0/3";
    build_tzif(&s, o);
    return (long)o->footer + 1;
}

static long br_v1_trailing(struct blob *o)
{
    build_cet(o, 0);
    put8(o, 0);
    return (long)o->n - 1;
}

static long br_v1_truncated(struct blob *o)
{
    build_cet(o, 0);
    o->n -= 1;
    return 0;
}

struct bad_case {
    const char *what;
    breaker make;
    const char *words;
};

static const struct bad_case bad_cases[] = {
    {"empty", br_empty, "truncated header"},
    {"43 bytes", br_short_header, "truncated header"},
    {"magic", br_magic, "not a TZif file"},
    {"version byte", br_version, "unsupported version byte 0x78"},
    {"second magic", br_second_magic, "bad magic"},
    {"second version", br_second_version, "second header"},
    {"v1 block too long", br_v1_truncated_block, "truncated data block"},
    {"data truncated", br_truncated_data, "truncated data block"},
    {"typecnt 0", br_typecnt_zero, "no local time types"},
    {"typecnt 300", br_typecnt_big, "300 local time types"},
    {"charcnt 0", br_charcnt_zero, "no abbreviation characters"},
    {"isutcnt", br_isutcnt, "isutcnt 1 is neither 0 nor typecnt 3"},
    {"isstdcnt", br_isstdcnt, "isstdcnt 2 is neither 0 nor typecnt 3"},
    {"leap seconds", br_leap, "leap-second records"},
    {"decreasing", br_not_increasing, "not strictly increasing"},
    {"equal", br_equal_times, "not strictly increasing"},
    {"type index", br_type_index, "type index 3"},
    {"utoff high", br_utoff_high, "UT offset 93600 out of range"},
    {"utoff low", br_utoff_low, "UT offset -90000 out of range"},
    {"isdst", br_isdst, "isdst 2"},
    {"abbr index", br_abbr_index, "abbreviation index 13"},
    {"abbr unterminated", br_abbr_unterminated, "not NUL-terminated"},
    {"abbr long", br_abbr_long, "longer than 15"},
    {"abbr control", br_abbr_control, "non-printable byte 0x0a"},
    {"isstd value", br_isstd_value, "standard/wall indicator 2"},
    {"isut alone", br_isut_without_isstd, "standard/wall indicator is not"},
    {"footer missing", br_footer_missing, "missing footer"},
    {"footer no newline", br_footer_no_newline, "missing footer"},
    {"footer unterminated", br_footer_unterminated, "not terminated by a newline"},
    {"after footer", br_footer_trailing, "trailing data after the footer"},
    {"footer control", br_footer_control, "non-printable byte 0x01"},
    {"footer syntax", br_footer_syntax, "month out of range 1-12"},
    {"footer offset", br_footer_disagrees_offset, "disagrees with the last transition"},
    {"footer abbr", br_footer_disagrees_abbr, "disagrees with the last transition"},
    {"v1 trailing", br_v1_trailing, "trailing data after the data block"},
    {"v1 truncated", br_v1_truncated, "truncated data block"},
};

static void test_tzif_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct blob o;
        long pos = c->make(&o);
        struct tz_zone *z = (struct tz_zone *)&o; /* must stay untouched */
        struct ty_err err;
        int rc = parse(&o, &z, &err);
        if (rc != TY_EFORMAT || err.code != TY_EFORMAT)
            fail_msg("%s: rc %d, want TY_EFORMAT (%s)", c->what, rc, err.msg);
        if (z != (struct tz_zone *)&o)
            fail_msg("%s: *out was written", c->what);
        if (strncmp(err.msg, "tzif: ", 6) != 0 || strstr(err.msg, c->words) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->what, err.msg, c->words);
        if (pos >= 0 && err.pos != pos)
            fail_msg("%s: error at byte %d, want %ld (%s)", c->what, err.pos, pos, err.msg);
        assert_string_equal(err.field, "tzif");
    }
}

/* Every proper prefix of a valid file is rejected, without reading past it (ASan). */
static void test_tzif_truncations(void **state)
{
    (void)state;
    const char versions[] = {0, '2', '3'};
    for (size_t v = 0; v < sizeof versions; v++) {
        struct blob o;
        build_cet(&o, versions[v]);
        for (size_t n = 0; n < o.n; n++) {
            uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees any overrun */
            assert_non_null(copy);
            memcpy(copy, o.b, n);
            struct tz_zone *z;
            struct ty_err err;
            int rc = tz_parse("T", copy, n, &z, &err);
            if (rc != TY_EFORMAT)
                fail_msg("version %d, %zu of %zu bytes: rc %d", versions[v], n, o.n, rc);
            free(copy);
        }
    }
}

/* Corrupting any byte gives a valid table or TY_EFORMAT, never a crash or overrun. */
static void test_tzif_corruptions(void **state)
{
    (void)state;
    static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xff};
    struct blob o;
    build_cet(&o, '2');
    int accepted = 0, rejected = 0;
    for (size_t i = 0; i < o.n; i++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            uint8_t *copy = malloc(o.n);
            assert_non_null(copy);
            memcpy(copy, o.b, o.n);
            copy[i] ^= flips[f];
            struct tz_zone *z;
            struct ty_err err;
            int rc = tz_parse("T", copy, o.n, &z, &err);
            free(copy);
            if (rc == 0) {
                accepted++;
                struct tz_info info;
                tz_lookup(z, INT64_MIN, &info);
                tz_lookup(z, 0, &info);
                tz_lookup(z, INT64_MAX, &info);
                assert_true(info.abbr != NULL && strlen(info.abbr) < TZ_ABBR_MAX);
                check_spans(z);
                tz_free(z);
            } else {
                assert_int_equal(rc, TY_EFORMAT);
                rejected++;
            }
        }
    }
    /* the decoy v1 block and the reserved bytes may change freely; most may not */
    assert_true(accepted > 0);
    assert_true(rejected > accepted);
}

/* ---- POSIX TZ rules ----------------------------------------------------------------- */

struct rule_case {
    const char *rule;
    const char *when;
    int32_t utoff;
    int isdst;
    const char *abbr;
};

static const struct rule_case rule_cases[] = {
    /* Europe/Dublin: standard time is summer (IST, +1), "DST" is winter (GMT, 0) */
    {"IST-1GMT0,M10.5.0,M3.5.0/1", "2030-01-15T12:00:00Z", 0, 1, "GMT"},
    {"IST-1GMT0,M10.5.0,M3.5.0/1", "2030-03-31T00:59:59Z", 0, 1, "GMT"},
    {"IST-1GMT0,M10.5.0,M3.5.0/1", "2030-03-31T01:00:00Z", 3600, 0, "IST"},
    {"IST-1GMT0,M10.5.0,M3.5.0/1", "2030-10-27T00:59:59Z", 3600, 0, "IST"},
    {"IST-1GMT0,M10.5.0,M3.5.0/1", "2030-10-27T01:00:00Z", 0, 1, "GMT"},
    /* Australia/Lord_Howe: 30-minute DST, southern hemisphere */
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2030-04-06T14:59:59Z", 39600, 1, "+11"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2030-04-06T15:00:00Z", 37800, 0, "+1030"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2030-10-05T15:29:59Z", 37800, 0, "+1030"},
    {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2030-10-05T15:30:00Z", 39600, 1, "+11"},
    /* Australia/Sydney, across the new year */
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-04-06T15:59:59Z", 39600, 1, "AEDT"},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-04-06T16:00:00Z", 36000, 0, "AEST"},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-10-05T15:59:59Z", 36000, 0, "AEST"},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-10-05T16:00:00Z", 39600, 1, "AEDT"},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2030-12-31T14:00:00Z", 39600, 1, "AEDT"},
    {"AEST-10AEDT,M10.1.0,M4.1.0/3", "2031-01-01T00:00:00Z", 39600, 1, "AEDT"},
    /* Pacific/Chatham: 45-minute offsets and rule times with minutes */
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2030-04-06T13:59:59Z", 49500, 1, "+1345"},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2030-04-06T14:00:00Z", 45900, 0, "+1245"},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2030-09-28T13:59:59Z", 45900, 0, "+1245"},
    {"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", "2030-09-28T14:00:00Z", 49500, 1, "+1345"},
    /* Jn never counts February 29 (J60 is March 1), n counts it (59 is Feb 29 in 2024) */
    {"AAA3BBB,J60/0,J300/0", "2024-03-01T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,J60/0,J300/0", "2024-03-01T03:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,J60/0,J300/0", "2023-03-01T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,J60/0,J300/0", "2023-03-01T03:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,J60/0,J300/0", "2024-10-26T02:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,J60/0,J300/0", "2024-10-27T01:59:59Z", -7200, 1, "BBB"},
    {"AAA3BBB,J60/0,J300/0", "2024-10-27T02:00:00Z", -10800, 0, "AAA"},
    {"AAA3BBB,59/0,299/0", "2024-02-29T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,59/0,299/0", "2024-02-29T03:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,59/0,299/0", "2023-03-01T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,59/0,299/0", "2023-03-01T03:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,59/0,299/0", "2024-10-26T01:59:59Z", -7200, 1, "BBB"},
    {"AAA3BBB,59/0,299/0", "2024-10-26T02:00:00Z", -10800, 0, "AAA"},
    {"AAA3BBB,59/0,299/0", "2023-10-27T02:00:00Z", -10800, 0, "AAA"},
    /* M3.5.0 when March has only four Sundays (2027: the 28th) */
    {CET_FOOTER, "2027-03-28T00:59:59Z", 3600, 0, "CET"},
    {CET_FOOTER, "2027-03-28T01:00:00Z", 7200, 1, "CEST"},
    /* M2.5.0: February 2025 has four Sundays; in 2032 the fifth is February 29 */
    {"AAA3BBB,M2.5.0/0,M11.1.0/0", "2025-02-23T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,M2.5.0/0,M11.1.0/0", "2025-02-23T03:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,M2.5.0/0,M11.1.0/0", "2032-02-29T02:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,M2.5.0/0,M11.1.0/0", "2032-02-29T03:00:00Z", -7200, 1, "BBB"},
    /* America/Nuuk: /-1 is 23:00 the day before */
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2030-03-31T00:59:59Z", -7200, 0, "-02"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2030-03-31T01:00:00Z", -3600, 1, "-01"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2030-10-27T00:59:59Z", -3600, 1, "-01"},
    {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2030-10-27T01:00:00Z", -7200, 0, "-02"},
    /* Asia/Gaza: /50 is Saturday 02:00 after the Thursday */
    {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2030-03-29T23:59:59Z", 7200, 0, "EET"},
    {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2030-03-30T00:00:00Z", 10800, 1, "EEST"},
    {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2030-10-25T22:59:59Z", 10800, 1, "EEST"},
    {"EET-2EEST,M3.4.4/50,M10.4.4/50", "2030-10-25T23:00:00Z", 7200, 0, "EET"},
    /* the v3 limits: +-167 hours */
    {"AAA3BBB,M3.2.0/167,M11.1.0/-167", "2030-03-17T01:59:59Z", -10800, 0, "AAA"},
    {"AAA3BBB,M3.2.0/167,M11.1.0/-167", "2030-03-17T02:00:00Z", -7200, 1, "BBB"},
    {"AAA3BBB,M3.2.0/167,M11.1.0/-167", "2030-10-27T02:59:59Z", -7200, 1, "BBB"},
    {"AAA3BBB,M3.2.0/167,M11.1.0/-167", "2030-10-27T03:00:00Z", -10800, 0, "AAA"},
    /* DST offset given explicitly, and defaulted to standard + 1 hour */
    {"AAA-1BBB-3,M3.5.0,M10.5.0", "2030-07-01T00:00:00Z", 10800, 1, "BBB"},
    {"AAA-1BBB-3,M3.5.0,M10.5.0", "2030-01-01T00:00:00Z", 3600, 0, "AAA"},
    {CET_FOOTER, "2030-07-01T00:00:00Z", 7200, 1, "CEST"},
    /* Antarctica/Troll: DST two hours ahead */
    {"<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", "2030-07-01T00:00:00Z", 7200, 1, "+02"},
    /* no DST at all */
    {"<+0545>-5:45", "2030-01-01T00:00:00Z", 20700, 0, "+0545"},
    {"<+0545>-5:45", "1800-01-01T00:00:00Z", 20700, 0, "+0545"},
    {"UTC0", "2030-01-01T00:00:00Z", 0, 0, "UTC"},
    {"ABC-1:02:03", "2030-01-01T00:00:00Z", 3723, 0, "ABC"},
    {"<-0330>3:30", "2030-01-01T00:00:00Z", -12600, 0, "-0330"},
    {"XYZ+24:59:59", "2030-01-01T00:00:00Z", -89999, 0, "XYZ"},
    {"XYZ-24:59:59", "2030-01-01T00:00:00Z", 89999, 0, "XYZ"},
};

static void test_rule_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        const struct rule_case *c = &rule_cases[i];
        struct tz_zone *z;
        struct ty_err err;
        if (tz_from_posix(c->rule, c->rule, &z, &err) != 0)
            fail_msg("%s: %s", c->rule, err.msg);
        expect_at(z, c->when, c->utoff, c->isdst, c->abbr);
        /* and 400 years later, past the table, by direct evaluation */
        expect_info(z, ts(c->when) + CYCLE, c->utoff, c->isdst, c->abbr);
        tz_free(z);
    }
}

static void test_rule_invariants(void **state)
{
    (void)state;
    const char *last = NULL;
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        if (last != NULL && strcmp(last, rule_cases[i].rule) == 0)
            continue;
        last = rule_cases[i].rule;
        struct tz_zone *z;
        struct ty_err err;
        assert_int_equal(tz_from_posix(last, last, &z, &err), 0);
        check_spans(z);
        check_periodic(z, ts("1900-01-01T00:00:00Z"));
        /* a rule zone has no history: its rule holds before the table too */
        struct tz_info a, b;
        tz_lookup(z, ts("1930-07-01T00:00:00Z"), &a);
        tz_lookup(z, ts("1930-07-01T00:00:00Z") - CYCLE, &b);
        assert_int_equal(a.utoff, b.utoff);
        assert_string_equal(a.abbr, b.abbr);
        tz_lookup(z, INT64_MIN, &a);
        tz_lookup(z, INT64_MAX, &b);
        assert_true(strlen(a.abbr) >= 3 && strlen(b.abbr) >= 3);
        tz_free(z);
    }
}

static void test_rule_all_year_dst(void **state)
{
    (void)state;
    /*
     * zic's spelling of permanent DST: DST starts January 1 at 00:00 and ends December 31
     * at 25:00, the instant the next year's starts.  RFC 8536 reads it as DST all year;
     * glibc 2.36 (which evaluates one UTC year at a time) reports EST for the first
     * five hours of each UTC year, so these values were not checked against glibc.
     */
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(tz_from_posix("perm", "EST5EDT,0/0,J365/25", &z, &err), 0);
    const char *when[] = {"2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z", "2030-01-01T04:59:59Z",
                          "2030-01-01T05:00:00Z", "2030-07-01T00:00:00Z", "2030-12-31T23:59:59Z",
                          "2300-01-01T03:00:00Z", "1950-01-01T03:00:00Z"};
    for (size_t i = 0; i < sizeof when / sizeof when[0]; i++)
        expect_at(z, when[i], -14400, 1, "EDT");
    assert_int_equal(tz_span_count(z), 1);
    check_spans(z);
    tz_free(z);
}

struct rule_error {
    const char *rule;
    int pos;
    const char *words;
};

static const struct rule_error rule_errors[] = {
    {"", 0, "expected a time zone abbreviation"},
    {"CET", 3, "expected a UTC offset"},
    {"CE-1", 0, "shorter than 3 characters"},
    {"<AB>1", 0, "shorter than 3 characters"},
    {"<+0545-5:45", 8, "not closed by '>'"},
    {"ABCDEFGHIJKLMNOP0", 0, "longer than 15 characters"},
    {"CET25", 3, "offset hours out of range 0-24"},
    {"CET-1:60", 6, "minutes missing or out of range"},
    {"CET-1:30:60", 9, "seconds missing or out of range"},
    {"CET-1:", 6, "minutes missing"},
    {"UTC0 ", 4, "expected a time zone abbreviation"},
    {"CET-1CEST", 9, "needs ',start,end' rules"},
    {"CET-1CEST-2", 11, "needs ',start,end' rules"},
    {"CET-1CEST,M3.5.0", 16, "end of DST"},
    {"CET-1CEST,M13.5.0,M10.5.0", 11, "month out of range 1-12"},
    {"CET-1CEST,M0.5.0,M10.5.0", 11, "month out of range 1-12"},
    {"CET-1CEST,M3.6.0,M10.5.0", 13, "week out of range 1-5"},
    {"CET-1CEST,M3.0.0,M10.5.0", 13, "week out of range 1-5"},
    {"CET-1CEST,M3.5.7,M10.5.0", 15, "day of week out of range 0-6"},
    {"CET-1CEST,M3.5,M10.5.0", 14, "expected '.'"},
    {"CET-1CEST,J0,J300", 10, "Julian day Jn out of range 1-365"},
    {"CET-1CEST,J366,J300", 10, "Julian day Jn out of range 1-365"},
    {"CET-1CEST,366,300", 10, "zero-based day n out of range 0-365"},
    {"CET-1CEST,Q,M10.5.0", 10, "expected a rule date"},
    {"CET-1CEST,M3.5.0/168,M10.5.0", 17, "rule time hours out of range -167..167"},
    {"CET-1CEST,M3.5.0/-168,M10.5.0", 17, "rule time hours out of range -167..167"},
    {"CET-1CEST,M3.5.0/,M10.5.0", 17, "expected a rule time"},
    {"CET-1CEST,M3.5.0,M10.5.0/3x", 26, "unexpected characters"},
    {"CET-1CEST,M3.5.0,M10.5.0,", 24, "unexpected characters"},
    {"CET-1\x01", 5, "expected a time zone abbreviation"},
};

static void test_rule_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_errors / sizeof rule_errors[0]; i++) {
        const struct rule_error *c = &rule_errors[i];
        struct tz_zone *z = NULL;
        struct ty_err err;
        int rc = tz_from_posix("bad", c->rule, &z, &err);
        if (rc != TY_EINVAL || err.code != TY_EINVAL || z != NULL)
            fail_msg("\"%s\": rc %d, want TY_EINVAL", c->rule, rc);
        if (strncmp(err.msg, "TZ rule \"", 9) != 0 || strstr(err.msg, c->words) == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", c->rule, err.msg, c->words);
        if (err.pos != c->pos)
            fail_msg("\"%s\": error at %d, want %d (%s)", c->rule, err.pos, c->pos, err.msg);
    }
    struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(tz_from_posix("null", NULL, &z, &err), TY_EINVAL);
    /* control characters are not echoed into the message */
    assert_int_equal(tz_from_posix("x", "CET-1\x01", &z, &err), TY_EINVAL);
    assert_null(strchr(err.msg, '\x01'));
}

/* ---- real zones from the tz database ------------------------------------------------ */

static const struct tz_zone *zone(const char *name)
{
    const struct tz_zone *z;
    struct ty_err err;
    if (tzdb_get(name, &z, &err) != 0)
        fail_msg("%s: %s", name, err.msg);
    return z;
}

static void test_real_berlin(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Europe/Berlin");
    expect_at(z, "1800-01-01T00:00:00Z", 3208, 0, "LMT");
    expect_at(z, "2006-03-26T00:59:59Z", 3600, 0, "CET");
    expect_at(z, "2006-03-26T01:00:00Z", 7200, 1, "CEST");
    expect_at(z, "2006-10-29T00:59:59Z", 7200, 1, "CEST");
    expect_at(z, "2006-10-29T01:00:00Z", 3600, 0, "CET");
    expect_at(z, "2199-12-31T23:59:59Z", 3600, 0, "CET");
    expect_at(z, "2300-07-01T00:00:00Z", 7200, 1, "CEST");
    struct tz_span s;
    tz_span_get(z, tz_span_find(z, ts("2006-03-26T01:00:00Z")), &s);
    assert_true(s.start == ts("2006-03-26T01:00:00Z"));
    assert_true(s.end == ts("2006-10-29T01:00:00Z"));
    assert_int_equal(s.utoff, 7200);
    assert_int_equal(s.prev_utoff, 3600);
    assert_int_equal(tz_max_utoff(z), 10800); /* CEMT, 1945 and 1947 */
    check_spans(z);
    check_periodic(z, ts("2038-01-01T00:00:00Z"));
}

static void test_real_sao_paulo(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("America/Sao_Paulo");
    expect_at(z, "2018-11-04T02:59:59Z", -10800, 0, "-03");
    expect_at(z, "2018-11-04T03:00:00Z", -7200, 1, "-02");
    expect_at(z, "2019-02-17T01:59:59Z", -7200, 1, "-02");
    expect_at(z, "2019-02-17T02:00:00Z", -10800, 0, "-03");
    /* no DST since 2019 */
    expect_at(z, "2019-11-03T03:00:00Z", -10800, 0, "-03");
    expect_at(z, "2030-01-15T00:00:00Z", -10800, 0, "-03");
    struct tz_span s;
    tz_span_get(z, tz_span_count(z) - 1, &s);
    assert_true(s.start == ts("2019-02-17T02:00:00Z"));
    assert_int_equal(s.utoff, -10800);
    check_spans(z);
}

static void test_real_odd_offsets(void **state)
{
    (void)state;
    const struct tz_zone *z = zone("Asia/Kathmandu");
    expect_at(z, "1985-12-31T18:29:59Z", 19800, 0, "+0530");
    expect_at(z, "1985-12-31T18:30:00Z", 20700, 0, "+0545");
    expect_at(z, "2020-06-01T00:00:00Z", 20700, 0, "+0545");
    expect_at(z, "2250-06-01T00:00:00Z", 20700, 0, "+0545");
    check_spans(z);

    z = zone("Pacific/Chatham");
    expect_at(z, "2024-01-15T00:00:00Z", 49500, 1, "+1345");
    expect_at(z, "2024-04-06T13:59:59Z", 49500, 1, "+1345");
    expect_at(z, "2024-04-06T14:00:00Z", 45900, 0, "+1245");
    expect_at(z, "2024-07-15T00:00:00Z", 45900, 0, "+1245");
    check_spans(z);
    check_periodic(z, ts("2038-01-01T00:00:00Z"));

    z = zone("Australia/Lord_Howe");
    expect_at(z, "2024-01-15T00:00:00Z", 39600, 1, "+11");
    expect_at(z, "2024-04-06T14:59:59Z", 39600, 1, "+11");
    expect_at(z, "2024-04-06T15:00:00Z", 37800, 0, "+1030");
    expect_at(z, "2024-07-15T00:00:00Z", 37800, 0, "+1030");
    check_spans(z);
    check_periodic(z, ts("2038-01-01T00:00:00Z"));
}

static void test_real_spans(void **state)
{
    (void)state;
    const char *names[] = {"UTC",
                           "Europe/Dublin",
                           "Asia/Gaza",
                           "America/Nuuk",
                           "Africa/Casablanca",
                           "Antarctica/Troll",
                           "America/New_York",
                           "Pacific/Apia",
                           "Etc/GMT-14",
                           "Europe/Moscow"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct tz_zone *z = zone(names[i]);
        assert_string_equal(tz_name(z), names[i]);
        check_spans(z);
        check_periodic(z, ts("2090-01-01T00:00:00Z"));
    }
    assert_int_equal(tz_span_count(zone("UTC")), 1);
    assert_int_equal(tz_max_utoff(zone("Etc/GMT-14")), 14 * 3600);
}

/* ---- the registry ------------------------------------------------------------------- */

static void test_tzdb_same_pointer(void **state)
{
    (void)state;
    const struct tz_zone *a = zone("Asia/Shanghai"), *b = zone("Asia/Shanghai");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, zone("Asia/Tokyo"));
    assert_ptr_equal(zone("Asia/Tokyo"), zone("Asia/Tokyo"));
    assert_ptr_equal(a, zone("Asia/Shanghai"));
}

static const char *const tzdb_names[] = {"Europe/Paris", "America/Chicago",  "Asia/Kolkata",
                                         "Africa/Cairo", "Pacific/Auckland", "Etc/GMT+5"};
#define NTHREADS 4
#define NNAMES   (sizeof tzdb_names / sizeof tzdb_names[0])

static void *get_all(void *arg)
{
    const struct tz_zone **got = arg;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < NNAMES; i++) {
            const struct tz_zone *z;
            if (tzdb_get(tzdb_names[i], &z, NULL) != 0 || (got[i] != NULL && got[i] != z))
                return "inconsistent";
            got[i] = z;
        }
    }
    return NULL;
}

static void test_tzdb_threads(void **state)
{
    (void)state;
    pthread_t th[NTHREADS];
    const struct tz_zone *got[NTHREADS][NNAMES];
    memset(got, 0, sizeof got);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_all, got[i]), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    for (int i = 1; i < NTHREADS; i++)
        assert_memory_equal(got[0], got[i], sizeof got[0]);
}

static void test_tzdb_valid_names(void **state)
{
    (void)state;
    const char *ok[] = {"Etc/GMT+5", "Etc/GMT-14", "America/Port-au-Prince",
                        "America/Argentina/Buenos_Aires", "UTC"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_string_equal(tz_name(zone(ok[i])), ok[i]);
}

static void test_tzdb_invalid_names(void **state)
{
    (void)state;
    /* the name as the message shows it: bytes outside ASCII become '?' */
    static const struct {
        const char *name, *shown;
    } bad[] = {
        {"", ""},
        {"/etc/passwd", "/etc/passwd"},
        {"../etc/passwd", "../etc/passwd"},
        {"..", ".."},
        {"Europe/../../etc/passwd", "Europe/../../etc/passwd"},
        {"Europe/..", "Europe/.."},
        {"Europe/Ber.lin", "Europe/Ber.lin"},
        {"Europe/Berlin ", "Europe/Berlin "},
        {"Europe\\Berlin", "Europe\\Berlin"},
        {"Europe//Berlin", "Europe//Berlin"},
        {"Europe/", "Europe/"},
        {"Z\xc3\xbcrich", "Z??rich"},
        {"Europe/Berlin;rm", "Europe/Berlin;rm"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct tz_zone *z = NULL;
        struct ty_err err;
        int rc = tzdb_get(bad[i].name, &z, &err);
        if (rc != TY_EINVAL || z != NULL)
            fail_msg("\"%s\": rc %d, want TY_EINVAL", bad[i].shown, rc);
        char want[128];
        snprintf(want, sizeof want, "time zone \"%s\": not a valid zone name", bad[i].shown);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("message \"%s\", want it to start with \"%s\"", err.msg, want);
        assert_int_equal(err.pos, 0);
        assert_string_equal(err.field, "time zone");
    }
    /* 63 characters is the longest valid name; it is looked for, not rejected */
    char longest[TZ_NAME_MAX];
    memset(longest, 'A', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    const struct tz_zone *z;
    struct ty_err err;
    assert_int_equal(tzdb_get(longest, &z, &err), TY_ENOENT);
}

static void test_tzdb_unknown(void **state)
{
    (void)state;
    const struct tz_zone *z = NULL;
    struct ty_err err;
    assert_int_equal(tzdb_get("Mars/Olympus_Mons", &z, &err), TY_ENOENT);
    assert_null(z);
    assert_non_null(strstr(err.msg, "unknown time zone \"Mars/Olympus_Mons\""));
    assert_non_null(strstr(err.msg, tzdb_dir()));
    /* a directory is not a zone */
    assert_int_equal(tzdb_get("Europe", &z, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "unknown time zone \"Europe\""));
    /* a path through a file */
    assert_int_equal(tzdb_get("UTC/Nested", &z, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "unknown time zone \"UTC/Nested\""));
    /* failures are not cached: asking again gives the same answer */
    assert_int_equal(tzdb_get("Mars/Olympus_Mons", &z, NULL), TY_ENOENT);
}

/* A private database directory: a good zone, a corrupt one, and files that are not zones. */
static char tmpdir[64];

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int private_dir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tz.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/Test", tmpdir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    struct blob o;
    build_cet(&o, '2');
    write_file("Test/Good", o.b, o.n);
    write_file("Corrupt", o.b, o.types + 2);
    write_file("Text", "# not a zone\n", 13);
    write_file("Tiny", "TZ", 2);
    static uint8_t big[1024 * 1024 + 1];
    big[0] = 'T'; /* the magic, then nothing but zeros */
    big[1] = 'Z';
    big[2] = 'i';
    big[3] = 'f';
    write_file("Big", big, sizeof big);
    return 0;
}

static int private_dir_teardown(void **state)
{
    (void)state;
    const char *files[] = {"Test/Good", "Test", "Corrupt", "Text", "Tiny", "Big", ""};
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        remove(path);
    }
    tzdb_shutdown();
    tzdb_set_dir(NULL);
    return 0;
}

static void test_tzdb_private_dir(void **state)
{
    (void)state;
    tzdb_shutdown();
    tzdb_set_dir(tmpdir);
    assert_string_equal(tzdb_dir(), tmpdir);

    const struct tz_zone *z = NULL;
    struct ty_err err;
    assert_int_equal(tzdb_get("Test/Good", &z, &err), 0);
    expect_at(z, "2006-03-26T01:00:00Z", 7200, 1, "CEST");

    /* a real zone is not found here */
    assert_int_equal(tzdb_get("Europe/Berlin", &z, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, tmpdir));

    assert_int_equal(tzdb_get("Corrupt", &z, &err), TY_EFORMAT);
    assert_non_null(strstr(err.msg, "time zone \"Corrupt\": tzif: truncated data block"));
    assert_int_equal(err.pos, -1); /* the byte is in the file, not in the name */

    assert_int_equal(tzdb_get("Text", &z, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "unknown time zone \"Text\""));
    assert_non_null(strstr(err.msg, "not a TZif file"));
    assert_int_equal(tzdb_get("Tiny", &z, &err), TY_ENOENT);
    assert_non_null(strstr(err.msg, "not a TZif file"));

    assert_int_equal(tzdb_get("Big", &z, &err), TY_EFORMAT);
    assert_non_null(strstr(err.msg, "time zone \"Big\""));
    assert_non_null(strstr(err.msg, "larger than"));

    /* $TZDIR is used when no directory was set, and ignored when empty */
    tzdb_shutdown();
    tzdb_set_dir(NULL);
    assert_int_equal(setenv("TZDIR", tmpdir, 1), 0);
    assert_string_equal(tzdb_dir(), tmpdir);
    assert_int_equal(tzdb_get("Test/Good", &z, &err), 0);
    assert_int_equal(setenv("TZDIR", "", 1), 0);
    assert_string_equal(tzdb_dir(), "/usr/share/zoneinfo");
    assert_int_equal(unsetenv("TZDIR"), 0);
    assert_string_equal(tzdb_dir(), "/usr/share/zoneinfo");
}

static int group_teardown(void **state)
{
    (void)state;
    tzdb_shutdown();
    return 0;
}

int main(void)
{
    /* the real-zone tests read /usr/share/zoneinfo whatever the caller's environment */
    unsetenv("TZDIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tzif_v1_literal),
        cmocka_unit_test(test_tzif_v1_built),
        cmocka_unit_test(test_tzif_v2_footer),
        cmocka_unit_test(test_tzif_v3_extended_rule_time),
        cmocka_unit_test(test_tzif_later_versions),
        cmocka_unit_test(test_tzif_empty_footer),
        cmocka_unit_test(test_tzif_rule_only),
        cmocka_unit_test(test_tzif_limits_accepted),
        cmocka_unit_test(test_tzif_spans_merge),
        cmocka_unit_test(test_tzif_name_truncated),
        cmocka_unit_test(test_tzif_malformed),
        cmocka_unit_test(test_tzif_truncations),
        cmocka_unit_test(test_tzif_corruptions),
        cmocka_unit_test(test_rule_cases),
        cmocka_unit_test(test_rule_invariants),
        cmocka_unit_test(test_rule_all_year_dst),
        cmocka_unit_test(test_rule_errors),
        cmocka_unit_test(test_real_berlin),
        cmocka_unit_test(test_real_sao_paulo),
        cmocka_unit_test(test_real_odd_offsets),
        cmocka_unit_test(test_real_spans),
        cmocka_unit_test(test_tzdb_same_pointer),
        cmocka_unit_test(test_tzdb_threads),
        cmocka_unit_test(test_tzdb_valid_names),
        cmocka_unit_test(test_tzdb_invalid_names),
        cmocka_unit_test(test_tzdb_unknown),
        cmocka_unit_test_setup_teardown(test_tzdb_private_dir, private_dir_setup,
                                        private_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
