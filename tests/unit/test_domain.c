/*
 * test_domain.c - domains (paths, limits and the refusals they cause) and calendars, each
 * validation rule with the field it names and the words of its message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/domain.h"
#include "core/job.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return false;
    }
    return true;
}

static void expect_error(int rc, const struct ty_err *err, const char *field, const char *fragment,
                         const char *label)
{
    if (rc != TY_EINVAL || err->code != TY_EINVAL)
        fail_msg("%s: expected TY_EINVAL, got %d (%s)", label, rc, err->msg);
    if (strcmp(err->field, field) != 0)
        fail_msg("%s: field \"%s\", expected \"%s\" (message: %s)", label, err->field, field,
                 err->msg);
    if (strstr(err->msg, fragment) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", label, err->msg, fragment);
    if (getenv("TETHYS_TEST_VERBOSE"))
        print_message("%-20s %s\n", err->field, err->msg);
}

/* ---- domains ------------------------------------------------------------------------------- */

static void test_domain_json(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"path\": \"bank/settlement\", \"level\": 3, \"description\": \"Settlement\","
         " \"limits\": {\"max_jobs\": 100, \"min_interval\": 5, \"max_shards\": 50}}",
         "{\"path\": \"bank/settlement\", \"level\": 3, \"description\": \"Settlement\","
         " \"limits\": {\"max_jobs\": 100, \"min_interval\": 5, \"max_shards\": 50}}"},
        /* defaults: level 5, no description, no limits */
        {"{\"path\": \"bank\"}",
         "{\"path\": \"bank\", \"level\": 5, \"description\": \"\","
         " \"limits\": {\"max_jobs\": 0, \"min_interval\": 0, \"max_shards\": 0}}"},
        {"{\"path\": \"\", \"limits\": {\"max_shards\": 10}, \"level\": null}",
         "{\"path\": \"\", \"level\": 5, \"description\": \"\","
         " \"limits\": {\"max_jobs\": 0, \"min_interval\": 0, \"max_shards\": 10}}"},
        {"{\"path\": \"a\", \"limits\": null}",
         "{\"path\": \"a\", \"level\": 5, \"description\": \"\","
         " \"limits\": {\"max_jobs\": 0, \"min_interval\": 0, \"max_shards\": 0}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *in = load(cases[i].in), *want = load(cases[i].out);
        struct domain d;
        struct ty_err err;
        if (domain_from_json(in, &d, &err) != 0)
            fail_msg("%s: refused: %s", cases[i].in, err.msg);
        json_t *got = domain_to_json(&d);
        char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(want, JSON_COMPACT);
        if (strcmp(g, w) != 0)
            fail_msg("got %s\nwant %s", g, w);
        /* and back */
        struct domain e;
        assert_int_equal(domain_from_json(got, &e, &err), 0);
        json_t *again = domain_to_json(&e);
        assert_true(json_equal(got, again));
        free(g);
        free(w);
        json_decref(again);
        json_decref(got);
        json_decref(in);
        json_decref(want);
        domain_free(&d);
        domain_free(&e);
    }
}

static void test_domain_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in, *field, *fragment;
    } cases[] = {
        {"[]", "", "the domain must be a JSON object {\"path\": ...}; got [...]"},
        {"{\"path\": \"a\", \"levle\": 3}", "levle",
         "unknown field \"levle\"; did you mean \"level\"?"},
        {"{\"path\": \"a\", \"limits\": {\"max_job\": 3}}", "limits.max_job",
         "unknown field \"limits.max_job\"; did you mean \"limits.max_jobs\"?"},
        {"{\"level\": 3}", "path", "path: missing; every domain needs a path (\"\" for the root)"},
        {"{\"path\": null}", "path", "path: missing"},
        {"{\"path\": 5}", "path", "path: 5 is an integer; expected a string"},
        {"{\"path\": \"/a\"}", "path", "path: \"/a\" has an empty part"},
        {"{\"path\": \"a/\"}", "path", "ends with '/'"},
        {"{\"path\": \"a/-b\"}", "path", "each part must start with a letter or digit"},
        {"{\"path\": \"a/b c\"}", "path", "at byte 3"},
        {"{\"path\": \"a\", \"level\": 10}", "level", "level: 10 is out of range 0-9"},
        {"{\"path\": \"a\", \"level\": \"3\"}", "level", "level: \"3\" is a string"},
        {"{\"path\": \"a\", \"description\": false}", "description", "expected a string"},
        {"{\"path\": \"a\", \"limits\": 5}", "limits", "limits: 5 is not an object"},
        {"{\"path\": \"a\", \"limits\": {\"max_jobs\": -1}}", "limits.max_jobs",
         "limits.max_jobs: -1 is out of range 0-10000000"},
        {"{\"path\": \"a\", \"limits\": {\"min_interval\": 31536001}}", "limits.min_interval",
         "out of range 0-31536000"},
        {"{\"path\": \"a\", \"limits\": {\"max_shards\": 10001}}", "limits.max_shards",
         "out of range 0-10000"},
        {"{\"path\": \"a\", \"limits\": {\"max_shards\": \"5\"}}", "limits.max_shards",
         "limits.max_shards: \"5\" is a string; expected an integer from 0 to 10000"},
        {"{\"path\": \"a\", \"limits\": {\"max_shards\": 1.5}}", "limits.max_shards",
         "1.5 is a floating-point number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *in = load(cases[i].in);
        struct domain d;
        memset(&d, 0x5a, sizeof d);
        struct ty_err err;
        expect_error(domain_from_json(in, &d, &err), &err, cases[i].field, cases[i].fragment,
                     cases[i].in);
        assert_true(all_zero(&d, sizeof d));
        json_decref(in);
    }
    struct domain d;
    struct ty_err err;
    expect_error(domain_from_json(NULL, &d, &err), &err, "", "no domain given", "NULL");
}

static void test_paths(void **state)
{
    (void)state;
    struct ty_err err;
    assert_int_equal(domain_check_path("domain", "", &err), 0);
    assert_int_equal(domain_check_path("domain", "a", &err), 0);
    assert_int_equal(domain_check_path("domain", "bank/settlement/eu-1.x_y", &err), 0);
    /* 256 bytes in all */
    char path[300];
    memset(path, 'p', sizeof path);
    path[100] = '/';
    path[256] = '\0';
    assert_int_equal(domain_check_path("domain", path, &err), 0);
    path[256] = 'p';
    path[257] = '\0';
    expect_error(domain_check_path("domain", path, &err), &err, "domain",
                 "is 257 bytes long; at most 256", "257");

    static const struct {
        const char *path, *parent;
    } parents[] = {{"a/b/c", "a/b"}, {"a/b", "a"}, {"a", ""}, {"", ""}};
    for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
        char buf[DOMAIN_PATH_MAX + 1];
        domain_parent(parents[i].path, buf, sizeof buf);
        assert_string_equal(buf, parents[i].parent);
    }
    char small[3];
    domain_parent("abcd/e", small, sizeof small); /* cut short, still terminated */
    assert_string_equal(small, "ab");

    assert_true(domain_within("a/b", "a"));
    assert_true(domain_within("a/b/c", "a/b"));
    assert_true(domain_within("a", "a"));
    assert_true(domain_within("a", ""));
    assert_true(domain_within("", ""));
    assert_false(domain_within("ab", "a"));
    assert_false(domain_within("a", "a/b"));
    assert_false(domain_within("", "a"));
    assert_false(domain_within("b/a", "a"));
}

static struct domain make(const char *path, int64_t max_jobs, int64_t min_interval,
                          int64_t max_shards)
{
    return (struct domain){.path = (char *)path,
                           .level = 5,
                           .description = (char *)"",
                           .max_jobs = max_jobs,
                           .min_interval = min_interval,
                           .max_shards = max_shards};
}

static void test_check_job(void **state)
{
    (void)state;
    struct domain settlement = make("bank/settlement", 100, 0, 0);
    struct domain bank = make("bank", 0, 60, 50);
    struct domain root = make("", 1000, 0, 8);
    const struct domain *chain[] = {&settlement, &bank, NULL};
    const struct domain *with_root[] = {&settlement, &bank, &root};
    struct job j = {.shards = 4};
    struct ty_err err;
    int64_t counts[] = {10, 20, 30};

    assert_int_equal(domain_check_job(chain, counts, 3, &j, 0, &err), 0);
    assert_int_equal(domain_check_job(chain, counts, 3, &j, 60, &err), 0);
    assert_int_equal(domain_check_job(chain, counts, 3, &j, 3600, &err), 0);

    j.shards = 64;
    expect_error(domain_check_job(chain, counts, 3, &j, 0, &err), &err, "shards",
                 "domain \"bank\": at most 50 shards per job; this job has 64", "shards");
    j.shards = 50;
    assert_int_equal(domain_check_job(chain, counts, 3, &j, 0, &err), 0);

    expect_error(domain_check_job(chain, counts, 3, &j, 5, &err), &err, "schedule",
                 "domain \"bank\": jobs may fire at most every 60 s; this schedule fires 5 s apart",
                 "interval");
    assert_int_equal(domain_check_job(chain, counts, 3, &j, 0, &err), 0); /* no schedule */

    counts[0] = 100;
    expect_error(domain_check_job(chain, counts, 3, &j, 0, &err), &err, "domain",
                 "domain \"bank/settlement\": at most 100 jobs; it has 100", "jobs");
    /* without counts (an edit that keeps the domain), only the job itself is checked */
    assert_int_equal(domain_check_job(chain, NULL, 3, &j, 0, &err), 0);
    counts[0] = 99;
    assert_int_equal(domain_check_job(chain, counts, 3, &j, 0, &err), 0);

    /* the root domain, named as such */
    j.shards = 9;
    expect_error(domain_check_job(with_root, counts, 3, &j, 0, &err), &err, "shards",
                 "the root domain: at most 8 shards per job; this job has 9", "root");
    /* the nearest domain is reported first */
    settlement.max_shards = 5;
    expect_error(domain_check_job(with_root, counts, 3, &j, 0, &err), &err, "shards",
                 "domain \"bank/settlement\": at most 5 shards", "nearest");
    /* no chain at all */
    assert_int_equal(domain_check_job(NULL, NULL, 0, &j, 1, &err), 0);
}

/* A job parsed from JSON, checked against a domain from JSON, end to end. */
static void test_check_parsed(void **state)
{
    (void)state;
    json_t *dj = load("{\"path\": \"bank\", \"limits\": {\"min_interval\": 60}}");
    json_t *jj = load("{\"name\": \"a\", \"domain\": \"bank/x\", \"command\": \"true\","
                      " \"schedule\": \"*/5 * * * * ?\"}");
    struct domain d;
    struct job j;
    struct ty_err err;
    assert_int_equal(domain_from_json(dj, &d, &err), 0);
    assert_int_equal(job_from_json(jj, &j, &err), 0);
    const struct domain *chain[] = {NULL, &d, NULL};
    int64_t civil_now = civil_days_from_ymd(2026, 1, 1) * CIVIL_SECS_PER_DAY;
    const struct tz_zone *utc;
    assert_int_equal(tz_from_posix("UTC", "UTC0", (struct tz_zone **)&utc, &err), 0);
    int64_t gap = job_min_interval(&j, utc, civil_now);
    assert_int_equal(gap, 5);
    expect_error(domain_check_job(chain, NULL, 3, &j, gap, &err), &err, "schedule",
                 "domain \"bank\": jobs may fire at most every 60 s; this schedule fires 5 s apart",
                 "parsed");
    tz_free((struct tz_zone *)utc);
    job_free(&j);
    domain_free(&d);
    json_decref(dj);
    json_decref(jj);
}

/* ---- calendars ----------------------------------------------------------------------------- */

static void test_calendar(void **state)
{
    (void)state;
    json_t *in = load("{\"name\": \"cn-holidays\", \"description\": \"China, 2026\","
                      " \"dates\": [\"2026-10-03\", \"2026-10-01\", \"2026-10-02\","
                      "             \"2026-10-01\", \"2026-01-01\"]}");
    struct calendar c;
    struct ty_err err;
    assert_int_equal(calendar_from_json(in, &c, &err), 0);
    assert_string_equal(c.name, "cn-holidays");
    assert_int_equal(c.n_days, 4); /* sorted, the repeat dropped */
    assert_int_equal(c.days[0], civil_days_from_ymd(2026, 1, 1));
    assert_int_equal(c.days[3], civil_days_from_ymd(2026, 10, 3));
    assert_true(calendar_has(&c, civil_days_from_ymd(2026, 10, 2)));
    assert_true(calendar_has(&c, civil_days_from_ymd(2026, 1, 1)));
    assert_false(calendar_has(&c, civil_days_from_ymd(2026, 10, 4)));
    assert_false(calendar_has(&c, civil_days_from_ymd(2025, 12, 31)));
    json_t *out = calendar_to_json(&c);
    json_t *want = load("{\"name\": \"cn-holidays\", \"description\": \"China, 2026\", \"dates\":"
                        " [\"2026-01-01\", \"2026-10-01\", \"2026-10-02\", \"2026-10-03\"]}");
    assert_true(json_equal(out, want));
    struct calendar again;
    assert_int_equal(calendar_from_json(out, &again, &err), 0);
    assert_int_equal(again.n_days, 4);
    calendar_free(&again);
    calendar_free(&c);
    assert_true(all_zero(&c, sizeof c));
    json_decref(out);
    json_decref(want);
    json_decref(in);

    /* no dates, and an empty calendar contains nothing */
    in = load("{\"name\": \"empty\"}");
    assert_int_equal(calendar_from_json(in, &c, &err), 0);
    assert_int_equal(c.n_days, 0);
    assert_false(calendar_has(&c, 0));
    out = calendar_to_json(&c);
    want = load("{\"name\": \"empty\", \"description\": \"\", \"dates\": []}");
    assert_true(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    json_decref(in);
    calendar_free(&c);
}

static void test_calendar_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *in, *field, *fragment;
    } cases[] = {
        {"5", "", "the calendar must be a JSON object {\"name\": ...}; got 5"},
        {"{\"name\": \"a\", \"date\": []}", "date",
         "unknown field \"date\"; did you mean \"dates\"?"},
        {"{\"dates\": []}", "name", "name: missing; every calendar needs a name"},
        {"{\"name\": \"\"}", "name", "name: must not be empty"},
        {"{\"name\": \"a b\"}", "name", "has a character other than"},
        {"{\"name\": 1}", "name", "name: 1 is an integer; expected a string"},
        {"{\"name\": \"a\", \"description\": 1}", "description", "expected a string"},
        {"{\"name\": \"a\", \"dates\": \"2026-01-01\"}", "dates",
         "dates: \"2026-01-01\" is not an "
         "array"},
        {"{\"name\": \"a\", \"dates\": [\"2026-01-01\", \"2026-01-02\", \"2026-02-29\"]}",
         "dates[2]", "dates[2]: \"2026-02-29\": no such date"},
        {"{\"name\": \"a\", \"dates\": [20260101]}", "dates[0]",
         "dates[0]: 20260101 is not a date; expected \"YYYY-MM-DD\""},
        {"{\"name\": \"a\", \"dates\": [\"2026/01/01\"]}", "dates[0]",
         "\"2026/01/01\" is not a date; expected YYYY-MM-DD"},
        {"{\"name\": \"a\", \"dates\": [\"2026-01-01T00:00:00Z\"]}", "dates[0]", "is not a date"},
        {"{\"name\": \"a\", \"dates\": [\"2026-13-01\"]}", "dates[0]", "no such date"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *in = load(cases[i].in);
        struct calendar c;
        memset(&c, 0x5a, sizeof c);
        struct ty_err err;
        expect_error(calendar_from_json(in, &c, &err), &err, cases[i].field, cases[i].fragment,
                     cases[i].in);
        assert_true(all_zero(&c, sizeof c));
        json_decref(in);
    }
}

static void test_calendar_size(void **state)
{
    (void)state;
    json_t *dates = json_array();
    int64_t first = civil_days_from_ymd(2000, 1, 1);
    for (int i = 0; i < 100000; i++) {
        char buf[11];
        job__format_date(first + i, buf);
        json_array_append_new(dates, json_string(buf));
    }
    json_t *in = json_pack("{s:s, s:O}", "name", "big", "dates", dates);
    struct calendar c;
    struct ty_err err;
    assert_int_equal(calendar_from_json(in, &c, &err), 0);
    assert_int_equal(c.n_days, 100000);
    assert_true(calendar_has(&c, first + 99999));
    assert_false(calendar_has(&c, first + 100000));
    calendar_free(&c);
    json_decref(in);

    json_array_append_new(dates, json_string("1999-12-31"));
    in = json_pack("{s:s, s:o}", "name", "big", "dates", dates);
    expect_error(calendar_from_json(in, &c, &err), &err, "dates",
                 "dates: 100001 dates; at most 100000", "100001");
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_json),
        cmocka_unit_test(test_domain_refusals),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_check_job),
        cmocka_unit_test(test_check_parsed),
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_calendar_refusals),
        cmocka_unit_test(test_calendar_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
