/*
 * test_cron.c - the cron dialect, clause by clause: every example of spec/cron.md, the
 * error messages a user sees, the canonical form, and the fixed size of a compiled
 * expression.  Times are checked in real zones read through tzdb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/cron.h"
#include "tzdb/tzdb.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* Ends the variadic lists below; typed, since a bare NULL may be an int in varargs. */
#define END_ARGS ((const char *)NULL)

static struct cron_expr parse_ok(const char *text)
{
    struct cron_expr e;
    struct ty_err err;
    ty_err_clear(&err);
    int rc = cron_parse(text, &e, &err);
    if (rc != 0)
        fail_msg("\"%s\" rejected: %s", text, err.msg);
    return e;
}

/* The day-of-week set of an expression as a string of day numbers 0-6 ("0246"). */
static const char *dow_set(const char *text)
{
    static char buf[8];
    struct cron_expr e = parse_ok(text);
    int n = 0;
    for (int d = 0; d < 7; d++)
        if (e.dow >> d & 1)
            buf[n++] = (char)('0' + d);
    buf[n] = '\0';
    return buf;
}

/*
 * Expect `text` to be rejected with a message containing every fragment given (NULL
 * ends the list), naming `field`.
 */
static void expect_invalid(const char *text, const char *field, ...)
{
    struct cron_expr e;
    struct ty_err err;
    ty_err_clear(&err);
    int rc = cron_parse(text, &e, &err);
    if (rc != TY_EINVAL)
        fail_msg("\"%s\" accepted, expected an error naming %s", text, field);
    if (strcmp(err.field, field) != 0)
        fail_msg("\"%s\": error names field \"%s\", expected \"%s\" (%s)", text, err.field, field,
                 err.msg);
    va_list ap;
    va_start(ap, field);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;) {
        if (strstr(err.msg, frag) == NULL)
            fail_msg("\"%s\": message \"%s\" lacks \"%s\"", text, err.msg, frag);
    }
    va_end(ap);
    /* the location points inside the text */
    assert_true(err.pos >= -1 && err.pos <= (int)strlen(text));
    assert_true(err.pos < 0 || err.pos + err.len <= (int)strlen(text));
    static const struct cron_expr zero;
    assert_true(cron_equal(&e, &zero)); /* nothing half-written */
}

static int64_t at(const char *rfc3339)
{
    int64_t t;
    struct ty_err err;
    if (civil_parse_rfc3339(rfc3339, "test", &t, &err) != 0)
        fail_msg("bad test time %s: %s", rfc3339, err.msg);
    return t;
}

/*
 * Expect the fire times of `text` in `zone` after `from` to be exactly the times listed
 * (NULL-terminated); with the marker "END" last, also that nothing follows them.
 */
static void expect_times(const char *text, const char *zone, const char *from, ...)
{
    struct cron_expr e = parse_ok(text);
    const struct tz_zone *z;
    struct ty_err err;
    if (tzdb_get(zone, &z, &err) != 0)
        fail_msg("zone %s: %s", zone, err.msg);
    int64_t t = at(from);
    va_list ap;
    va_start(ap, from);
    int i = 0;
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        int64_t next;
        int rc = cron_next(&e, z, t, &next);
        if (strcmp(want, "END") == 0) {
            if (rc != TY_ENOENT)
                fail_msg("\"%s\" in %s: expected no fire #%d, got one (rc %d)", text, zone, i + 1,
                         rc);
            break;
        }
        if (rc != 0)
            fail_msg("\"%s\" in %s: fire #%d missing (rc %d), expected %s", text, zone, i + 1, rc,
                     want);
        char buf[CIVIL_RFC3339_MAX];
        struct tz_info ti;
        tz_lookup(z, next, &ti);
        civil_format_rfc3339(next, ti.utoff, buf);
        if (strcmp(buf, want) != 0)
            fail_msg("\"%s\" in %s after %s: fire #%d is %s, expected %s", text, zone, from, i + 1,
                     buf, want);
        t = next;
    }
    va_end(ap);
}

/* ---- §1 forms ------------------------------------------------------------------------ */

static void test_forms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("0 0 12 * * ?").form, CRON_FORM_QUARTZ);
    assert_int_equal(parse_ok("0 0 12 * * ? 2030").form, CRON_FORM_QUARTZ);
    assert_int_equal(parse_ok("0 12 * * *").form, CRON_FORM_UNIX);
    assert_int_equal(parse_ok("@daily").form, CRON_FORM_QUARTZ);
    assert_int_equal(parse_ok("@every 5s").form, CRON_FORM_EVERY);
    /* runs of blanks and tabs separate fields; leading and trailing ones are ignored */
    struct cron_expr a = parse_ok("0 0 12 * * ?");
    struct cron_expr b = parse_ok(" \t0\t 0  12 *\t* ?  ");
    assert_true(cron_equal(&a, &b));
}

static void test_macros(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 0 1 1 ?"},   {"@annually", "0 0 0 1 1 ?"}, {"@monthly", "0 0 0 1 * ?"},
        {"@weekly", "0 0 0 ? * SUN"}, {"@daily", "0 0 0 * * ?"},    {"@midnight", "0 0 0 * * ?"},
        {"@hourly", "0 0 * * * ?"},   {"@Daily", "0 0 0 * * ?"},    {"@HOURLY", "0 0 * * * ?"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct cron_expr m = parse_ok(pairs[i][0]), q = parse_ok(pairs[i][1]);
        if (!cron_equal(&m, &q))
            fail_msg("%s differs from %s", pairs[i][0], pairs[i][1]);
    }
    expect_invalid("@reboot", "expression", "unknown macro", "@reboot", END_ARGS);
    expect_invalid("@hourly * * * * *", "expression", "a macro stands alone", END_ARGS);
    expect_invalid("@", "expression", "unknown macro", END_ARGS);
}

static void test_every(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("@every 5s").every, 5);
    assert_int_equal(parse_ok("@every 5S").every, 5);
    assert_int_equal(parse_ok("@every 1h30m").every, 5400);
    assert_int_equal(parse_ok("@every 1h0m").every, 3600);
    assert_int_equal(parse_ok("@every 05s").every, 5);
    assert_int_equal(parse_ok("@every 1d2h3m4s").every, 93784);
    assert_int_equal(parse_ok("@every 366d").every, 366 * 86400);
    assert_int_equal(parse_ok("@EVERY   90s").every, 90);
    expect_invalid("@every 0s", "duration", "out of range 1s-366d", END_ARGS);
    expect_invalid("@every 00h00m00s", "duration", "out of range", END_ARGS);
    expect_invalid("@every 366d1s", "duration", "out of range", END_ARGS);
    expect_invalid("@every 31622401s", "duration", "out of range", END_ARGS);
    expect_invalid("@every 99999999999999999999s", "duration", "out of range", END_ARGS);
    expect_invalid("@every 1m1h", "duration", "order d h m s", END_ARGS);
    expect_invalid("@every 1h1h", "duration", "once each", END_ARGS);
    expect_invalid("@every 5ms", "duration", "unknown unit", END_ARGS);
    expect_invalid("@every 1w", "duration", "unknown unit \"w\"", END_ARGS);
    expect_invalid("@every 1.5s", "duration", "unknown unit", END_ARGS);
    expect_invalid("@every -5s", "duration", "expected a number", END_ARGS);
    expect_invalid("@every 5", "duration", "missing unit", END_ARGS);
    expect_invalid("@every 1h 30m", "duration", "write parts together", END_ARGS);
    expect_invalid("@every", "duration", "needs a duration", END_ARGS);
    expect_invalid("@every5s", "expression", "unknown macro", END_ARGS);

    /* instants t with t mod D == 0: @every 1d is 00:00 UTC, 08:00 in Shanghai */
    expect_times("@every 1d", "Asia/Shanghai", "2024-05-01T09:00:00+08:00",
                 "2024-05-02T08:00:00+08:00", "2024-05-03T08:00:00+08:00", END_ARGS);
    /* 1970-01-01 was a Thursday: @every 7d fires on Thursdays */
    expect_times("@every 7d", "UTC", "2024-05-01T00:00:00Z", "2024-05-02T00:00:00+00:00",
                 "2024-05-09T00:00:00+00:00", END_ARGS);
    /* daylight saving does not move it */
    expect_times("@every 1h", "Europe/Berlin", "2024-03-31T00:30:00+01:00",
                 "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00",
                 "2024-03-31T04:00:00+02:00", END_ARGS);
}

/* ---- §2 values and names ------------------------------------------------------------- */

static void test_values(void **state)
{
    (void)state;
    struct cron_expr a = parse_ok("05 007 1 1 JAN ?"), b = parse_ok("5 7 1 1 1 ?");
    assert_true(cron_equal(&a, &b));
    /* names anywhere a number may stand, any case */
    a = parse_ok("0 0 0 ? jan-Mar mon-5");
    b = parse_ok("0 0 0 ? 1-3 2-5");
    assert_true(cron_equal(&a, &b));
    a = parse_ok("0 0 0 ? * FRIL");
    b = parse_ok("0 0 0 ? * 6L");
    assert_true(cron_equal(&a, &b));
    a = parse_ok("0 0 0 ? * fri#2");
    b = parse_ok("0 0 0 ? * 6#2");
    assert_true(cron_equal(&a, &b));
    /* years */
    a = parse_ok("0 0 0 1 1 ? 1970-2199");
    b = parse_ok("0 0 0 1 1 ? *");
    assert_true(cron_equal(&a, &b));
}

static void test_unix_dow(void **state)
{
    (void)state;
    /* spec §2: Unix day-of-week counts 0-6 for *, steps and wrap-around; 7 is Sunday */
    assert_string_equal(dow_set("0 0 * * */2"), "0246");
    assert_string_equal(dow_set("0 0 * * 1/3"), "14");
    assert_string_equal(dow_set("0 0 * * 5-1/2"), "05");
    assert_string_equal(dow_set("0 0 * * 7-2"), "012");
    assert_string_equal(dow_set("0 0 * * 7/3"), "036");
    assert_string_equal(dow_set("0 0 * * 5-7"), "056");
    assert_string_equal(dow_set("0 0 * * 0-7"), "0123456");
    assert_string_equal(dow_set("0 0 * * 1-7/2"), "0135");
    assert_string_equal(dow_set("0 0 * * 7"), "0");
    assert_string_equal(dow_set("0 0 * * SUN,sat"), "06");
    /* Quartz day-of-week is 1-7 with 1 = Sunday */
    assert_string_equal(dow_set("0 0 0 ? * 1"), "0");
    assert_string_equal(dow_set("0 0 0 ? * 7"), "6");
    assert_string_equal(dow_set("0 0 0 ? * L"), "6");
    assert_string_equal(dow_set("0 0 0 ? * SUN-SAT/2"), "0246");
    assert_string_equal(dow_set("0 0 0 ? * FRI-MON"), "0156");
    assert_string_equal(dow_set("0 0 0 ? * L,MON"), "16");
    expect_invalid("0 12 * * 8", "day-of-week", "out of range 0-7", END_ARGS);
    expect_invalid("0 0 12 ? * 0", "day-of-week", "out of range 1-7", END_ARGS);
}

/* ---- §3 operators -------------------------------------------------------------------- */

static void test_operators(void **state)
{
    (void)state;
    struct cron_expr e = parse_ok("0 22-2 * * *");
    assert_int_equal(e.hour, (1u << 22) | (1u << 23) | 1u | 2u | 4u);
    e = parse_ok("0 0 0 28-3 * ?");
    assert_int_equal(e.dom, 0xf0000000u >> 1 | 0x7u); /* 28..31, 1..3 */
    e = parse_ok("0 0 0 28-3/2 * ?");                 /* counting continues across the wrap */
    assert_int_equal(e.dom, (1u << 27) | (1u << 29) | 1u | 4u);
    e = parse_ok("*/60 * * * *"); /* a step as large as the field: the start value only */
    assert_true(e.min == 1);
    e = parse_ok("0 0 */24 * * ?");
    assert_true(e.hour == 1);
    e = parse_ok("0 0 0 1 1 ? 2163-1988"); /* years wrap too */
    struct cron_expr w = parse_ok("0 0 0 1 1 ? 2163-2199,1970-1988");
    assert_true(cron_equal(&e, &w));
    e = parse_ok("5/20 * * * * ?"); /* a/n: from a to the top */
    assert_true(e.sec == ((1ull << 5) | (1ull << 25) | (1ull << 45)));
    e = parse_ok("0 10-50/20 * * * ?");
    assert_true(e.min == ((1ull << 10) | (1ull << 30) | (1ull << 50)));
    e = parse_ok("*/5,7 * * * * ?"); /* a stepped star may be a list item */
    assert_true(e.sec >> 7 & 1);
    assert_true(parse_ok("0 0 1 * JAN-DEC/3 ?").mon == (1 | 8 | 64 | 512));
}

/* ---- §4 day specials ----------------------------------------------------------------- */

static void test_day_specials(void **state)
{
    (void)state;
    /* L and L-n; a month too short for L-n has no match */
    expect_times("0 0 0 L * ?", "UTC", "2024-01-15T00:00:00Z", "2024-01-31T00:00:00+00:00",
                 "2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00", END_ARGS);
    expect_times("0 0 0 L-3 * ?", "UTC", "2023-02-01T00:00:00Z", "2023-02-25T00:00:00+00:00",
                 "2023-03-28T00:00:00+00:00", END_ARGS);
    expect_times("0 0 0 L-30 * ?", "UTC", "2023-01-15T00:00:00Z", "2023-03-01T00:00:00+00:00",
                 "2023-05-01T00:00:00+00:00", END_ARGS);
    /* nW: Saturday -> Friday before; the 1st on a Saturday -> Monday the 3rd */
    expect_times("0 0 0 15W * ?", "UTC", "2024-06-01T00:00:00Z", "2024-06-14T00:00:00+00:00",
                 END_ARGS); /* 2024-06-15 is a Saturday */
    expect_times("0 0 0 1W * ?", "UTC", "2024-05-31T00:00:00Z", "2024-06-03T00:00:00+00:00",
                 END_ARGS); /* 2024-06-01 is a Saturday */
    /* Sunday -> Monday after; the last day on a Sunday -> Friday before */
    expect_times("0 0 0 16W * ?", "UTC", "2024-06-01T00:00:00Z", "2024-06-17T00:00:00+00:00",
                 END_ARGS); /* 2024-06-16 is a Sunday */
    expect_times("0 0 0 30W * ?", "UTC", "2024-06-01T00:00:00Z", "2024-06-28T00:00:00+00:00",
                 END_ARGS); /* 2024-06-30 is a Sunday */
    /* a month without day n has no match */
    expect_times("0 0 0 31W * ?", "UTC", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00+00:00",
                 END_ARGS);
    /* LW: the last weekday (2024-08-31 is a Saturday) */
    expect_times("0 0 0 LW * ?", "UTC", "2024-08-01T00:00:00Z", "2024-08-30T00:00:00+00:00",
                 "2024-09-30T00:00:00+00:00", END_ARGS);
    /* nL: last Friday; n#k: third Friday; a month without a 5th Monday has none */
    expect_times("0 0 0 ? * 6L", "UTC", "2024-05-01T00:00:00Z", "2024-05-31T00:00:00+00:00",
                 "2024-06-28T00:00:00+00:00", END_ARGS);
    expect_times("0 0 9 ? * 6#3", "UTC", "2024-05-01T00:00:00Z", "2024-05-17T09:00:00+00:00",
                 "2024-06-21T09:00:00+00:00", END_ARGS);
    expect_times("0 0 0 ? * MON#5", "UTC", "2024-01-01T00:00:00Z", "2024-01-29T00:00:00+00:00",
                 "2024-04-29T00:00:00+00:00", END_ARGS);
    /* specials in a list: the union */
    expect_times("0 0 0 ? * MON#1,WED", "UTC", "2024-05-31T00:00:00Z", "2024-06-03T00:00:00+00:00",
                 "2024-06-05T00:00:00+00:00", "2024-06-12T00:00:00+00:00", END_ARGS);
    expect_times("0 0 0 LW,15 * ?", "UTC", "2024-08-01T00:00:00Z", "2024-08-15T00:00:00+00:00",
                 "2024-08-30T00:00:00+00:00", "2024-09-15T00:00:00+00:00", END_ARGS);
}

/* ---- §5 which days match ------------------------------------------------------------- */

static void test_day_rule(void **state)
{
    (void)state;
    /* Quartz: both * is every day; * defers to the restricted field */
    expect_times("0 0 12 * * *", "UTC", "2024-06-01T13:00:00Z", "2024-06-02T12:00:00+00:00",
                 END_ARGS);
    expect_times("0 0 12 * * MON", "UTC", "2024-06-01T13:00:00Z", "2024-06-03T12:00:00+00:00",
                 END_ARGS);
    expect_times("0 0 12 1 * *", "UTC", "2024-06-01T13:00:00Z", "2024-07-01T12:00:00+00:00",
                 END_ARGS);
    expect_invalid("0 0 12 ? * ?", "day-of-week", "both are ?", END_ARGS);
    expect_invalid("0 0 12 1 * MON", "day-of-week", "use ? in day-of-month or day-of-week",
                   END_ARGS);
    /* Unix: both restricted -> either; one beginning with * -> both must match */
    expect_times("0 12 13 * FRI", "UTC", "2024-09-01T00:00:00Z", "2024-09-06T12:00:00+00:00",
                 "2024-09-13T12:00:00+00:00", "2024-09-20T12:00:00+00:00", END_ARGS);
    expect_times("0 12 */2 * FRI", "UTC", "2024-09-01T00:00:00Z", "2024-09-13T12:00:00+00:00",
                 "2024-09-27T12:00:00+00:00", END_ARGS);
    expect_times("0 12 1-31 * FRI", "UTC", "2024-09-01T00:00:00Z", "2024-09-01T12:00:00+00:00",
                 "2024-09-02T12:00:00+00:00", END_ARGS);
}

/* ---- §6 errors ----------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    expect_invalid("", "expression", "empty", END_ARGS);
    expect_invalid("5", "expression", "got 1", END_ARGS);
    expect_invalid("* * * * * * * *", "expression", "got 8", END_ARGS);
    expect_invalid("0 0 12 32 * ?", "day-of-month", "field 4 (day-of-month)", "\"32\"",
                   "out of range 1-31", END_ARGS);
    expect_invalid("60 12 * * *", "minute", "field 1 (minute)", "out of range 0-59", END_ARGS);
    expect_invalid("0 0 12 * * ? 1969", "year", "out of range 1970-2199", END_ARGS);
    expect_invalid("0 0 12 * JANUARY ?", "month", "\"JANUARY\" is not a month name", END_ARGS);
    expect_invalid("0 0 12 ? * MONDAY", "day-of-week", "not a day name", END_ARGS);
    expect_invalid("0 0 12 ? * MON-FOO", "day-of-week", "\"FOO\"", END_ARGS);
    expect_invalid("0 JAN * * *", "hour", "\"JAN\" is not a number", END_ARGS);
    expect_invalid("*/0 * * * *", "minute", "step of 0", END_ARGS);
    expect_invalid("0 0 12 ? * MON-FRI/0", "day-of-week", "step of 0", END_ARGS);
    expect_invalid("0 0 12 5/ * ?", "day-of-month", "expected a number after '/'", END_ARGS);
    expect_invalid("*/61 * * * * ?", "second", "step 61 is out of range 1-60", END_ARGS);
    expect_invalid("0 0 */25 * * ?", "hour", "out of range 1-24", END_ARGS);
    expect_invalid("0 0 0 1 1 ? */231", "year", "out of range 1-230", END_ARGS);
    expect_invalid("0 0 0 1 */13 ?", "month", "out of range 1-12", END_ARGS);
    /* operators where the field does not allow them */
    expect_invalid("0 0 12 * 5W ?", "month", "'W' is not allowed", END_ARGS);
    expect_invalid("0 3#1 12 * * ?", "minute", "'#' is not allowed", END_ARGS);
    expect_invalid("0 0 12 ? * W", "day-of-week", "not a day name", END_ARGS);
    expect_invalid("0 12 * * L", "day-of-week", "only in the Quartz form", END_ARGS);
    expect_invalid("0 12 L * *", "day-of-month", "only in the Quartz form", END_ARGS);
    expect_invalid("0 12 15W * *", "day-of-month", "only in the Quartz form", END_ARGS);
    expect_invalid("0 12 * * 5#2", "day-of-week", "only in the Quartz form", END_ARGS);
    expect_invalid("0 12 ? * *", "day-of-month", "only in the Quartz form", END_ARGS);
    expect_invalid("0 0 ? * * ?", "hour", "only in day-of-month or day-of-week", END_ARGS);
    /* trailing garbage */
    expect_invalid("0 0 12 2W-4 * ?", "day-of-month", "unexpected \"-4\" after \"2W\"", END_ARGS);
    expect_invalid("0 0 12 ? * 5L-2", "day-of-week", "unexpected \"-2\" after \"5L\"", END_ARGS);
    expect_invalid("0 0 12 ? * 3#", "day-of-week", "week number 1-5", END_ARGS);
    expect_invalid("0 0 12 L-3W * ?", "day-of-month", "unexpected \"W\"", END_ARGS);
    expect_invalid("0 0 12 ? * 2#0", "day-of-week", "out of range 1-5", END_ARGS);
    expect_invalid("0 0 12 ? * 3#2#1", "day-of-week", "unexpected \"#1\"", END_ARGS);
    expect_invalid("0 0 12 L-31 * ?", "day-of-month", "out of range 0-30", END_ARGS);
    expect_invalid("0 0 12 99W * ?", "day-of-month", "out of range 1-31", END_ARGS);
    expect_invalid("0 1--5 12 * * ?", "minute", "expected a value after '-'", END_ARGS);
    expect_invalid("0 0 12 1.5 * ?", "day-of-month", "unexpected \".5\"", END_ARGS);
    expect_invalid("0 0 12 */2/2 * ?", "day-of-month", "unexpected \"/2\"", END_ARGS);
    /* * and ? inside a list; empty items */
    expect_invalid("0 *,30 * * * ?", "minute", "cannot be an item of a list", END_ARGS);
    expect_invalid("0 0 12 ? * *,MON", "day-of-week", "cannot be an item of a list", END_ARGS);
    expect_invalid("0 0 12 1,? * ?", "day-of-month", "? must be the whole field", END_ARGS);
    expect_invalid("0 0 1,,2 * * ?", "hour", "empty item", END_ARGS);
    expect_invalid("0 0 12 * ,1 ?", "month", "empty item", END_ARGS);
    expect_invalid("0 L-2, 12 * * ?", "minute", END_ARGS);
    expect_invalid("0 0 12 ? * 3#1,", "day-of-week", "ends with a comma", END_ARGS);
    expect_invalid("0 0 12 * * ?\x01", "expression", "unexpected character 0x01", END_ARGS);
}

static void test_error_position(void **state)
{
    (void)state;
    struct cron_expr e;
    struct ty_err err;
    const char *text = "0 0 12 32 * ?";
    assert_int_equal(cron_parse(text, &e, &err), TY_EINVAL);
    assert_int_equal(err.pos, 7);
    assert_int_equal(err.len, 2);
    text = "0  0 12 ? * MON#9";
    assert_int_equal(cron_parse(text, &e, &err), TY_EINVAL);
    assert_int_equal(err.pos, 16);
    assert_int_equal(err.len, 1);
}

static void test_never_fires(void **state)
{
    (void)state;
    /* valid, but no fire: accepted by the parser; next() says so */
    expect_times("0 0 0 30 2 ?", "UTC", "2024-01-01T00:00:00Z", "END", END_ARGS);
    expect_times("0 0 0 1 1 ? 2020", "UTC", "2024-01-01T00:00:00Z", "END", END_ARGS);
    expect_times("0 0 0 ? 2 2#5 2026", "UTC", "2024-01-01T00:00:00Z", "END", END_ARGS);
}

/* ---- §7 daylight saving -------------------------------------------------------------- */

static void test_dst(void **state)
{
    (void)state;
    /* spring forward in Berlin, 2024-03-31 02:00 -> 03:00 */
    /* a daily 02:30 job fires once, at the first instant after the gap */
    expect_times("0 30 2 * * ?", "Europe/Berlin", "2024-03-30T12:00:00+01:00",
                 "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00", END_ARGS);
    /* ...once, whatever number of skipped times matched */
    expect_times("0 */10 2 * * ?", "Europe/Berlin", "2024-03-31T01:55:00+01:00",
                 "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00", END_ARGS);
    /* the hour field matching every hour: skipped times do not fire */
    expect_times("0 */30 * * * ?", "Europe/Berlin", "2024-03-31T01:15:00+01:00",
                 "2024-03-31T01:30:00+01:00", "2024-03-31T03:00:00+02:00",
                 "2024-03-31T03:30:00+02:00", END_ARGS);
    expect_times("0 30 0-23 * * ?", "Europe/Berlin", "2024-03-31T01:15:00+01:00",
                 "2024-03-31T01:30:00+01:00", "2024-03-31T03:30:00+02:00", END_ARGS);
    /* fall back, 2024-10-27 03:00 -> 02:00: every-hour fields fire at both occurrences */
    expect_times("0 */30 * * * ?", "Europe/Berlin", "2024-10-27T01:45:00+02:00",
                 "2024-10-27T02:00:00+02:00", "2024-10-27T02:30:00+02:00",
                 "2024-10-27T02:00:00+01:00", "2024-10-27T02:30:00+01:00",
                 "2024-10-27T03:00:00+01:00", END_ARGS);
    expect_times("@hourly", "America/New_York", "2000-10-28T23:34:03-04:00",
                 "2000-10-29T00:00:00-04:00", "2000-10-29T01:00:00-04:00",
                 "2000-10-29T01:00:00-05:00", "2000-10-29T02:00:00-05:00", END_ARGS);
    /* other hour fields: the first occurrence only */
    expect_times("0 30 2 * * ?", "Europe/Berlin", "2024-10-26T12:00:00+02:00",
                 "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00", END_ARGS);
    expect_times("0 */20 1-3 * * ?", "Europe/Berlin", "2024-10-27T02:50:00+02:00",
                 "2024-10-27T03:00:00+01:00", "2024-10-27T03:20:00+01:00", END_ARGS);
    /* starting inside the repeated hour (second occurrence) */
    expect_times("0 45 2 * * ?", "Europe/Berlin", "2024-10-27T02:10:00+01:00",
                 "2024-10-28T02:45:00+01:00", END_ARGS);
    /* clocks going back at midnight, with the next match after the next change: the
     * repeated 23:xx must still fire twice (a bug found by the reference diff) */
    expect_times("0 */30 * 6 4 ?", "America/Santiago", "2024-04-06T22:50:00-03:00",
                 "2024-04-06T23:00:00-03:00", "2024-04-06T23:30:00-03:00",
                 "2024-04-06T23:00:00-04:00", "2024-04-06T23:30:00-04:00",
                 "2025-04-06T00:00:00-04:00", END_ARGS);
    expect_times("0 0 * ? 10 5L", "Africa/Cairo", "2025-10-30T21:30:00+03:00",
                 "2025-10-30T22:00:00+03:00", "2025-10-30T23:00:00+03:00",
                 "2025-10-30T23:00:00+02:00", "2026-10-29T00:00:00+03:00", END_ARGS);
    /* ...and when nothing matches after the first pass (the year range ends) */
    expect_times("30 0,59 0-23/1 ? 3 * 1982", "America/Asuncion", "1982-04-01T01:40:37Z",
                 "1982-03-31T22:59:30-03:00", "1982-03-31T23:00:30-03:00",
                 "1982-03-31T23:59:30-03:00", "1982-03-31T23:00:30-04:00",
                 "1982-03-31T23:59:30-04:00", "END", END_ARGS);
    /* a 30-minute change (Lord Howe) and a 45-minute offset (Chatham) */
    expect_times("0 15 2 * * ?", "Australia/Lord_Howe", "2024-10-05T12:00:00+10:30",
                 "2024-10-06T02:30:00+11:00", END_ARGS);
    expect_times("0 0 12 * * ?", "Pacific/Chatham", "2024-06-01T00:00:00+12:45",
                 "2024-06-01T12:00:00+12:45", END_ARGS);
}

/* ---- §8 the next-fire function ------------------------------------------------------- */

static void test_bounds(void **state)
{
    (void)state;
    struct cron_expr e = parse_ok("* * * * * ?");
    const struct tz_zone *z;
    assert_int_equal(tzdb_get("UTC", &z, NULL), 0);
    int64_t t;
    assert_int_equal(cron_next(&e, z, CRON_MIN_TIME - 1, &t), TY_ERANGE);
    assert_int_equal(cron_next(&e, z, CRON_MIN_TIME, &t), 0);
    assert_int_equal(t, CRON_MIN_TIME + 1);
    /* strictly after: a fire exactly at `after` is not returned */
    e = parse_ok("0 0 12 * * ?");
    assert_int_equal(cron_next(&e, z, at("2024-01-01T12:00:00Z"), &t), 0);
    assert_int_equal(t, at("2024-01-02T12:00:00Z"));
    /* the horizon is 2199-12-31T23:59:59 local time in the zone */
    expect_times("59 59 23 31 12 ?", "UTC", "2199-12-30T00:00:00Z", "2199-12-31T23:59:59+00:00",
                 "END", END_ARGS);
    expect_times("0 0 0 * * ?", "Asia/Shanghai", "2199-12-30T00:00:00+08:00",
                 "2199-12-31T00:00:00+08:00", "END", END_ARGS);
    expect_times("@every 1h", "Asia/Shanghai", "2199-12-31T22:30:00+08:00",
                 "2199-12-31T23:00:00+08:00", "END", END_ARGS);
    expect_times("@every 1h", "America/New_York", "2199-12-31T22:30:00-05:00",
                 "2199-12-31T23:00:00-05:00", "END", END_ARGS);
    /* far-future year: found in one step, through every daylight-saving change between */
    expect_times("0 0 0 1 1 ? 2099", "America/New_York", "2026-03-01T00:00:00Z",
                 "2099-01-01T00:00:00-05:00", "END", END_ARGS);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    static const char *const exprs[] = {
        "0/5 * * * * ?",
        "0 0 12 * * ?",
        "0 15 10 ? * MON-FRI",
        "0 0/30 8-18 ? * MON-FRI",
        "0 0 2 L * ?",
        "0 0 9 ? * 6#3",
        "0 10,44 14 ? 3 WED",
        "0 0 0 1W * ?",
        "0 0 0 1 1 ? 2099",
        "15 4 * * * ? 2030-2040",
        "*/2 * * * */3",
        "1 2 */5,3 * 2-4",
        "0 12 13 * FRI",
        "0 0 0 L-3,LW,15W,3 * ?",
        "0 0 0 ? * L,2L,SUN#5",
        "@every 1h30m",
        "@every 366d",
        "@weekly",
        "0 0 12 * * * 2163-1988",
        "0 */7 * * 0-7",
        "0 0 * * 7/3",
        "0 0 0 ? * *",
        "0 0 0 * * ?",
        "0 0 0 * * *",
        "5-1/2 * * * *",
    };
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        struct cron_expr a = parse_ok(exprs[i]);
        struct strbuf sb;
        sb_init(&sb);
        cron_format(&a, &sb);
        assert_false(sb_failed(&sb));
        struct cron_expr b = parse_ok(sb_str(&sb));
        if (!cron_equal(&a, &b))
            fail_msg("\"%s\" formats as \"%s\", which parses differently", exprs[i], sb_str(&sb));
        sb_free(&sb);
    }
    struct strbuf sb;
    sb_init(&sb);
    struct cron_expr e = parse_ok("0/5 * * * * ?");
    cron_format(&e, &sb);
    assert_string_equal(sb_str(&sb), "*/5 * * * * ?");
    sb_truncate(&sb, 0);
    e = parse_ok("0 15 10 ? * MON-FRI");
    cron_format(&e, &sb);
    assert_string_equal(sb_str(&sb), "0 15 10 ? * 2-6");
    sb_free(&sb);
}

static void test_size(void **state)
{
    (void)state;
    /* bytes per compiled expression (the benchmark target is 96 at most) */
    assert_true(sizeof(struct cron_expr) <= 96);
    assert_true(cron_hour_all(&(struct cron_expr){.hour = 0xffffff, .form = 1}));
    struct cron_expr e = parse_ok("0 0 0-23 * * ?");
    assert_true(cron_hour_all(&e));
    e = parse_ok("0 0 */1 * * ?");
    assert_true(cron_hour_all(&e));
    e = parse_ok("0 0 0-22 * * ?");
    assert_false(cron_hour_all(&e));
    assert_string_equal(cron_field_name(CRON_FORM_UNIX, 2), "day-of-month");
    assert_string_equal(cron_field_name(CRON_FORM_QUARTZ, 6), "year");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_every),        cmocka_unit_test(test_values),
        cmocka_unit_test(test_unix_dow),     cmocka_unit_test(test_operators),
        cmocka_unit_test(test_day_specials), cmocka_unit_test(test_day_rule),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_never_fires),  cmocka_unit_test(test_dst),
        cmocka_unit_test(test_bounds),       cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_size),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tzdb_shutdown();
    return rc;
}
