/*
 * test_job.c - the job definition: canonical JSON round trips, defaults, every validation
 * rule (a table of changes to one valid job, each with the field and the words of its
 * error), merge patches, the shortest interval of a schedule, and pause windows across
 * daylight-saving changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/job.h"
#include "tzdb/tzdb.h"

/* The example of docs/jobs.md. */
static const char *const FULL_JOB =
    "{\"name\": \"nightly-import\", \"domain\": \"bank/settlement\", \"level\": 5,"
    " \"description\": \"Import the day's settlement files\", \"owner\": \"ops@example.com\","
    " \"enabled\": true, \"type\": \"shell\","
    " \"command\": \"import.sh --date \\\"$TETHYS_SCHEDULED_AT\\\"\","
    " \"workdir\": \"/srv/import\", \"user\": \"batch\", \"env\": {\"DB_HOST\": \"db1\"},"
    " \"secret_env\": {}, \"output_cap\": 65536, \"schedule\": \"0 30 2 * * ?\", \"time_zone\": "
    "\"Asia/Shanghai\","
    " \"start_at\": \"2026-01-01T00:00:00+08:00\", \"end_at\": null,"
    " \"pause_windows\": [{\"dates\": [\"2026-12-24\", \"2026-12-26\"]},"
    "                     {\"daily\": [\"12:00\", \"13:30\"]}],"
    " \"calendars\": {\"skip\": [\"cn-holidays\"], \"only\": []},"
    " \"shards\": 4, \"shard_params\": {\"0\": \"beijing\", \"1\": \"shanghai\"},"
    " \"job_param\": \"full\", \"strategy\": \"even\", \"prefer\": [], \"prefer_only\": false,"
    " \"timeout\": 3600, \"timeout_alarm\": 1800, \"kill_grace\": 10,"
    " \"retries\": 2, \"retry_backoff\": 10, \"retry_backoff_max\": 3600,"
    " \"retry_backoff_factor\": 2.0, \"overlap\": \"skip\", \"misfire_threshold\": 5,"
    " \"misfire\": \"skip\", \"catch_up_max\": 1, \"on_executor_death\": \"kill\","
    " \"failover\": false, \"downstream\": [\"report-daily\"]}";

/* What job_to_json gives for it: the same, start_at in UTC, in the canonical order, the
 * placement fields at their defaults left out. */
static const char *const FULL_CANONICAL =
    "{\"name\": \"nightly-import\", \"domain\": \"bank/settlement\", \"level\": 5,"
    " \"description\": \"Import the day's settlement files\", \"owner\": \"ops@example.com\","
    " \"enabled\": true, \"type\": \"shell\","
    " \"command\": \"import.sh --date \\\"$TETHYS_SCHEDULED_AT\\\"\","
    " \"workdir\": \"/srv/import\", \"user\": \"batch\", \"env\": {\"DB_HOST\": \"db1\"},"
    " \"secret_env\": {}, \"output_cap\": 65536, \"schedule\": \"0 30 2 * * ?\", \"time_zone\": "
    "\"Asia/Shanghai\","
    " \"start_at\": \"2025-12-31T16:00:00Z\", \"end_at\": null,"
    " \"pause_windows\": [{\"dates\": [\"2026-12-24\", \"2026-12-26\"]},"
    "                     {\"daily\": [\"12:00\", \"13:30\"]}],"
    " \"calendars\": {\"skip\": [\"cn-holidays\"], \"only\": []},"
    " \"shards\": 4, \"shard_params\": {\"0\": \"beijing\", \"1\": \"shanghai\"},"
    " \"job_param\": \"full\", \"timeout\": 3600, \"timeout_alarm\": 1800, \"kill_grace\": 10,"
    " \"retries\": 2, \"retry_backoff\": 10, \"retry_backoff_max\": 3600,"
    " \"retry_backoff_factor\": 2.0, \"overlap\": \"skip\", \"misfire_threshold\": 5,"
    " \"misfire\": \"skip\", \"catch_up_max\": 1, \"on_executor_death\": \"kill\","
    " \"failover\": false, \"downstream\": [\"report-daily\"]}";

/* A minimal job and every default it gets. */
static const char *const MINIMAL_JOB = "{\"name\": \"a\", \"command\": \"true\"}";
static const char *const MINIMAL_CANONICAL =
    "{\"name\": \"a\", \"domain\": \"\", \"level\": 5, \"description\": \"\", \"owner\": \"\","
    " \"enabled\": true, \"type\": \"shell\", \"command\": \"true\", \"workdir\": null,"
    " \"user\": null, \"env\": {}, \"secret_env\": {}, \"output_cap\": 65536, \"schedule\": null,"
    " \"time_zone\": \"UTC\", \"start_at\": null, \"end_at\": null, \"pause_windows\": [],"
    " \"calendars\": {\"skip\": [], \"only\": []}, \"shards\": 1, \"shard_params\": {},"
    " \"job_param\": null, \"timeout\": 0, \"timeout_alarm\": 0, \"kill_grace\": 10,"
    " \"retries\": 0, \"retry_backoff\": 10, \"retry_backoff_max\": 3600,"
    " \"retry_backoff_factor\": 2.0, \"overlap\": \"skip\", \"misfire_threshold\": 5,"
    " \"misfire\": \"skip\", \"catch_up_max\": 1, \"on_executor_death\": \"kill\","
    " \"failover\": false, \"downstream\": []}";

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static int64_t at(const char *rfc3339)
{
    int64_t t;
    struct ty_err err;
    if (civil_parse_rfc3339(rfc3339, "test", &t, &err) != 0)
        fail_msg("bad test time %s: %s", rfc3339, err.msg);
    return t;
}

static const struct tz_zone *zone(const char *name)
{
    const struct tz_zone *z;
    struct ty_err err;
    if (tzdb_get(name, &z, &err) != 0)
        fail_msg("zone %s: %s", name, err.msg);
    return z;
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

/* Parse text (which must be valid) into *j. */
static void parse_ok(const char *text, struct job *j)
{
    json_t *v = load(text);
    struct ty_err err;
    int rc = job_from_json(v, j, &err);
    if (rc != 0)
        fail_msg("expected a valid job, got %d: [%s] %s\n%s", rc, err.field, err.msg, text);
    json_decref(v);
}

/* The canonical JSON of a job equals the JSON text `want`, keys in the same order. */
static void assert_canonical(const struct job *j, const char *want)
{
    json_t *got = job_to_json(j), *exp = load(want);
    assert_non_null(got);
    char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(exp, JSON_COMPACT);
    if (strcmp(g, w) != 0)
        fail_msg("canonical JSON differs:\n got %s\nwant %s", g, w);
    free(g);
    free(w);
    json_decref(got);
    json_decref(exp);
}

/* rc/err is a TY_EINVAL naming `field` with `fragment` in its message. */
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
    if (getenv("TETHYS_TEST_VERBOSE")) /* to read every message at once */
        print_message("%-32s %s\n", err->field, err->msg);
    /* the message names the (top-level) field first, unless it is about an unknown one */
    size_t top = strcspn(field, ".[");
    bool named = strncmp(err->msg, field, top) == 0 && strchr(":.[", err->msg[top]) != NULL;
    if (top > 0 && !named && strncmp(err->msg, "unknown field", 13) != 0)
        fail_msg("%s: message \"%s\" does not start with the field \"%.*s\"", label, err->msg,
                 (int)top, field);
}

/* job_from_json(doc) fails naming field with fragment, leaving the job empty. */
static void expect_refused(json_t *doc, const char *field, const char *fragment, const char *label)
{
    struct job j;
    memset(&j, 0xa5, sizeof j);
    struct ty_err err;
    int rc = job_from_json(doc, &j, &err);
    expect_error(rc, &err, field, fragment, label);
    assert_true(all_zero(&j, sizeof j));
    job_free(&j);
}

/* ---- round trips and defaults -------------------------------------------------------------- */

static void test_full_job(void **state)
{
    (void)state;
    struct job j;
    parse_ok(FULL_JOB, &j);
    assert_string_equal(j.name, "nightly-import");
    assert_string_equal(j.domain, "bank/settlement");
    assert_int_equal(j.level, 5);
    assert_true(j.enabled);
    assert_int_equal(j.type, JOB_SHELL);
    assert_int_equal(j.n_env, 1);
    assert_string_equal(j.env[0].name, "DB_HOST");
    assert_string_equal(j.env[0].value, "db1");
    assert_string_equal(j.schedule, "0 30 2 * * ?");
    struct cron_expr e;
    assert_int_equal(cron_parse("0 30 2 * * ?", &e, NULL), 0);
    assert_true(cron_equal(&j.cron, &e));
    assert_string_equal(j.time_zone, "Asia/Shanghai");
    assert_int_equal(j.start_at, at("2025-12-31T16:00:00Z"));
    assert_int_equal(j.end_at, 0);
    assert_int_equal(j.n_pauses, 2);
    assert_int_equal(j.pauses[0].kind, JOB_PAUSE_DATES);
    assert_int_equal(j.pauses[0].from, civil_days_from_ymd(2026, 12, 24));
    assert_int_equal(j.pauses[0].to, civil_days_from_ymd(2026, 12, 26));
    assert_int_equal(j.pauses[1].kind, JOB_PAUSE_DAILY);
    assert_int_equal(j.pauses[1].from, 12 * 3600);
    assert_int_equal(j.pauses[1].to, 13 * 3600 + 30 * 60);
    assert_string_equal(j.calendars_skip[0], "cn-holidays");
    assert_null(j.calendars_skip[1]);
    assert_null(j.calendars_only[0]);
    assert_int_equal(j.shards, 4);
    assert_string_equal(j.shard_params[0], "beijing");
    assert_string_equal(j.shard_params[1], "shanghai");
    assert_null(j.shard_params[2]);
    assert_null(j.shard_params[3]);
    assert_string_equal(j.job_param, "full");
    assert_int_equal(j.timeout, 3600);
    assert_int_equal(j.timeout_alarm, 1800);
    assert_int_equal(j.retries, 2);
    assert_true(j.retry_backoff_factor == 2.0);
    assert_int_equal(j.overlap, JOB_OVERLAP_SKIP);
    assert_int_equal(j.misfire, JOB_MISFIRE_SKIP);
    assert_int_equal(j.on_executor_death, JOB_ORPHAN_KILL);
    assert_string_equal(j.downstream[0], "report-daily");
    assert_null(j.downstream[1]);
    assert_canonical(&j, FULL_CANONICAL);

    /* job_from_json(job_to_json(j)) == j, and a copy is the same job */
    json_t *doc = job_to_json(&j);
    struct job k, c;
    struct ty_err err;
    assert_int_equal(job_from_json(doc, &k, &err), 0);
    assert_true(cron_equal(&k.cron, &j.cron));
    assert_int_equal(k.start_at, j.start_at);
    assert_canonical(&k, FULL_CANONICAL);
    assert_int_equal(job_copy(&c, &j), 0);
    job_free(&j); /* the copy owns its own memory */
    assert_true(all_zero(&j, sizeof j));
    assert_canonical(&c, FULL_CANONICAL);
    json_t *doc2 = job_to_json(&k);
    assert_true(json_equal(doc, doc2));
    json_decref(doc);
    json_decref(doc2);
    job_free(&k);
    job_free(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    struct job j;
    parse_ok(MINIMAL_JOB, &j);
    assert_null(j.schedule);
    assert_int_equal(j.shards, 1);
    assert_non_null(j.shard_params);
    assert_null(j.shard_params[0]);
    assert_int_equal(j.output_cap, JOB_OUTPUT_CAP_DEFAULT);
    assert_int_equal(j.kill_grace, 10);
    assert_int_equal(j.misfire_threshold, 5);
    assert_int_equal(j.catch_up_max, 1);
    assert_true(j.enabled);
    assert_false(j.failover);
    assert_canonical(&j, MINIMAL_CANONICAL);
    struct job c;
    assert_int_equal(job_copy(&c, &j), 0);
    assert_canonical(&c, MINIMAL_CANONICAL);
    job_free(&c);
    job_free(&j);

    /* null is the same as leaving a field out */
    json_t *doc = load(MINIMAL_CANONICAL);
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "command") != 0)
            json_object_set_new(doc, key, json_null());
    }
    struct ty_err err;
    assert_int_equal(job_from_json(doc, &j, &err), 0);
    assert_canonical(&j, MINIMAL_CANONICAL);
    job_free(&j);
    json_decref(doc);
}

/* Values that are accepted but written back in one canonical form. */
static void test_canonical_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in;  /* fields over MINIMAL_JOB */
        const char *out; /* the same fields in the canonical JSON */
    } cases[] = {
        {"{\"shards\": 4, \"shard_params\": \" 3 = c=d , 0=a,1=\"}",
         "{\"shards\": 4, \"shard_params\": {\"0\": \"a\", \"1\": \"\", \"3\": \"c=d\"}}"},
        {"{\"shards\": 3, \"shard_params\": {\"2\": \"x\", \"0\": \"y\", \"1\": null}}",
         "{\"shards\": 3, \"shard_params\": {\"0\": \"y\", \"2\": \"x\"}}"},
        {"{\"env\": {\"ZED\": \"1\", \"ALPHA\": \"2\", \"_x\": \"\"}}",
         "{\"env\": {\"ALPHA\": \"2\", \"ZED\": \"1\", \"_x\": \"\"}}"},
        {"{\"start_at\": \"2026-03-01T10:00:00.75-05:00\", \"end_at\": \"2027-01-01T00:00:00z\"}",
         "{\"start_at\": \"2026-03-01T15:00:00Z\", \"end_at\": \"2027-01-01T00:00:00Z\"}"},
        {"{\"pause_windows\": [{\"daily\": [\"23:00:00\", \"01:00:30\"]}]}",
         "{\"pause_windows\": [{\"daily\": [\"23:00\", \"01:00:30\"]}]}"},
        {"{\"pause_windows\": [{\"dates\": [\"2026-02-01\", \"2026-02-01\"]}]}",
         "{\"pause_windows\": [{\"dates\": [\"2026-02-01\", \"2026-02-01\"]}]}"},
        {"{\"retry_backoff_factor\": 3}", "{\"retry_backoff_factor\": 3.0}"},
        {"{\"retry_backoff_factor\": 1.5}", "{\"retry_backoff_factor\": 1.5}"},
        /* catch_up_max only means something with catch_up */
        {"{\"misfire\": \"skip\", \"catch_up_max\": 10}",
         "{\"misfire\": \"skip\", \"catch_up_max\": 1}"},
        {"{\"misfire\": \"run_once\", \"catch_up_max\": 10}",
         "{\"misfire\": \"run_once\", \"catch_up_max\": 1}"},
        {"{\"misfire\": \"catch_up\", \"catch_up_max\": 10}",
         "{\"misfire\": \"catch_up\", \"catch_up_max\": 10}"},
        /* the backoff cap defaults to the larger of 3600 and the first backoff */
        {"{\"retry_backoff\": 7200}", "{\"retry_backoff\": 7200, \"retry_backoff_max\": 7200}"},
        {"{\"retry_backoff\": 60}", "{\"retry_backoff\": 60, \"retry_backoff_max\": 3600}"},
        /* the schedule text is kept as written */
        {"{\"schedule\": \"@every 90s\"}", "{\"schedule\": \"@every 90s\"}"},
        {"{\"schedule\": \" */5  * * * * \"}", "{\"schedule\": \" */5  * * * * \"}"},
        {"{\"domain\": \"a/b.c/d_e-f\", \"user\": \"1000\", \"time_zone\": \"Etc/GMT+5\"}",
         "{\"domain\": \"a/b.c/d_e-f\", \"user\": \"1000\", \"time_zone\": \"Etc/GMT+5\"}"},
        {"{\"timeout\": 3600, \"timeout_alarm\": 3599}",
         "{\"timeout\": 3600, \"timeout_alarm\": 3599}"},
        /* an alarm without a kill timeout is fine */
        {"{\"timeout_alarm\": 60}", "{\"timeout\": 0, \"timeout_alarm\": 60}"},
        {"{\"calendars\": {\"only\": [\"trading-days\"]}}",
         "{\"calendars\": {\"skip\": [], \"only\": [\"trading-days\"]}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = load(MINIMAL_JOB), *in = load(cases[i].in), *want = load(cases[i].out);
        json_object_update(doc, in);
        struct job j;
        struct ty_err err;
        if (job_from_json(doc, &j, &err) != 0)
            fail_msg("case %zu %s: refused: %s", i, cases[i].in, err.msg);
        json_t *got = job_to_json(&j);
        const char *key;
        json_t *v;
        json_object_foreach(want, key, v)
        {
            if (!json_equal(json_object_get(got, key), v)) {
                char *g = json_dumps(json_object_get(got, key), JSON_ENCODE_ANY);
                fail_msg("case %zu %s: %s is %s", i, cases[i].in, key, g);
            }
        }
        /* and the canonical form reads back to itself */
        struct job k;
        assert_int_equal(job_from_json(got, &k, &err), 0);
        json_t *again = job_to_json(&k);
        assert_true(json_equal(got, again));
        json_decref(again);
        json_decref(got);
        job_free(&k);
        job_free(&j);
        json_decref(doc);
        json_decref(in);
        json_decref(want);
    }
}

/*
 * strategy, prefer and prefer_only: read, and written only when not at their defaults, so
 * that a job without them keeps the canonical text it had before they existed (stored
 * versions and import plans compare it); patched, copied and compacted like the rest.
 */
static void test_placement(void **state)
{
    (void)state;
    struct job j, k;
    struct ty_err err;
    parse_ok(MINIMAL_JOB, &j);
    assert_int_equal(j.strategy, JOB_STRATEGY_EVEN);
    assert_non_null(j.prefer);
    assert_null(j.prefer[0]);
    assert_false(j.prefer_only);
    job_free(&j);

    /* the defaults given are the defaults left out: the text of before */
    parse_ok("{\"name\": \"a\", \"command\": \"true\", \"strategy\": \"even\", \"prefer\": [],"
             " \"prefer_only\": false}",
             &j);
    assert_canonical(&j, MINIMAL_CANONICAL);
    job_free(&j);
    parse_ok("{\"name\": \"a\", \"command\": \"true\", \"strategy\": null, \"prefer\": null,"
             " \"prefer_only\": null}",
             &j);
    assert_canonical(&j, MINIMAL_CANONICAL);
    job_free(&j);

    /* set: after job_param, in this order, entries as given */
    parse_ok("{\"name\": \"a\", \"command\": \"true\", \"prefer_only\": true,"
             " \"prefer\": [\"gpu=yes\", \"exec-7\", \"rack=r.1_b-2\"], \"strategy\": \"local\"}",
             &j);
    assert_int_equal(j.strategy, JOB_STRATEGY_LOCAL);
    assert_string_equal(j.prefer[0], "gpu=yes");
    assert_string_equal(j.prefer[1], "exec-7");
    assert_string_equal(j.prefer[2], "rack=r.1_b-2");
    assert_null(j.prefer[3]);
    assert_true(j.prefer_only);
    json_t *doc = job_to_json(&j);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(strstr(text, "\"job_param\":null,\"strategy\":\"local\","
                                 "\"prefer\":[\"gpu=yes\",\"exec-7\",\"rack=r.1_b-2\"],"
                                 "\"prefer_only\":true,\"timeout\":0,"));
    /* read back, copied: the same */
    assert_int_equal(job_from_json(doc, &k, &err), 0);
    assert_canonical(&k, text);
    job_free(&k);
    assert_int_equal(job_copy(&k, &j), 0);
    assert_canonical(&k, text);
    assert_true(k.prefer != j.prefer && k.prefer[1] != j.prefer[1]);
    job_free(&k);

    /* a patch of null puts the defaults back, and the text of before with them */
    json_t *patch = load("{\"strategy\": null, \"prefer\": null, \"prefer_only\": null}");
    assert_int_equal(job_patch(&j, patch, &k, &err), 0);
    assert_canonical(&k, MINIMAL_CANONICAL);
    json_decref(patch);
    /* one field alone */
    patch = load("{\"strategy\": \"hash\"}");
    job_free(&j);
    assert_int_equal(job_patch(&k, patch, &j, &err), 0);
    job_free(&k);
    assert_int_equal(j.strategy, JOB_STRATEGY_HASH);
    json_t *got = job_to_json(&j);
    assert_string_equal(json_string_value(json_object_get(got, "strategy")), "hash");
    assert_null(json_object_get(got, "prefer"));
    assert_null(json_object_get(got, "prefer_only"));
    assert_int_equal(json_object_size(got), json_object_size(doc) - 2);
    json_decref(got);
    json_decref(patch);
    /* prefer_only needs a list even in a patch */
    patch = load("{\"prefer_only\": true}");
    expect_error(job_patch(&j, patch, &k, &err), &err, "prefer_only", "without a prefer list",
                 "patch");
    json_decref(patch);
    job_free(&j);
    free(text);
    json_decref(doc);
}

/* ---- every validation rule ----------------------------------------------------------------- */

/* Each case replaces top-level fields of FULL_JOB; the job must be refused naming `field`. */
static const struct refusal {
    const char *change;
    const char *field;
    const char *fragment;
} refusals[] = {
    /* unknown fields, with a suggestion when one is close */
    {"{\"shardz\": 4}", "shardz", "unknown field \"shardz\"; did you mean \"shards\"?"},
    {"{\"comand\": \"x\"}", "comand", "did you mean \"command\"?"},
    {"{\"timezone\": \"UTC\"}", "timezone", "did you mean \"time_zone\"?"},
    {"{\"colour\": \"red\"}", "colour", "unknown field \"colour\""},
    {"{\"calendars\": {\"skipp\": []}}", "calendars.skipp", "did you mean \"calendars.skip\"?"},
    {"{\"pause_windows\": [{\"weekly\": [\"a\", \"b\"]}]}", "pause_windows[0].weekly",
     "unknown field \"pause_windows[0].weekly\""},
    /* name */
    {"{\"name\": null}", "name", "name: missing"},
    {"{\"name\": \"\"}", "name", "name: must not be empty"},
    {"{\"name\": \"-x\"}", "name", "\"-x\" must start with a letter or digit"},
    {"{\"name\": \".x\"}", "name", "must start with a letter or digit"},
    {"{\"name\": \"a b\"}", "name", "\"a b\" has a character other than letters"},
    {"{\"name\": \"a/b\"}", "name", "at byte 1"},
    {"{\"name\": \"caf\\u00e9\"}", "name", "has a character other than"},
    {"{\"name\": \"a\\nb\"}", "name", "\"a\\nb\""},
    {"{\"name\": 5}", "name", "name: 5 is an integer; expected a string"},
    {"{\"name\": \"a\\u0000b\"}", "name", "contains a NUL character"},
    /* domain */
    {"{\"domain\": \"/bank\"}", "domain", "has an empty part"},
    {"{\"domain\": \"bank//x\"}", "domain", "has an empty part"},
    {"{\"domain\": \"bank/\"}", "domain", "ends with '/'"},
    {"{\"domain\": \"bank/.x\"}", "domain", "each part must start with a letter or digit"},
    {"{\"domain\": \"bank/..\"}", "domain", "each part must start with a letter or digit"},
    {"{\"domain\": \"ba nk\"}", "domain", "has a character other than"},
    {"{\"domain\": 3}", "domain", "expected a string"},
    /* level */
    {"{\"level\": 10}", "level", "level: 10 is out of range 0-9"},
    {"{\"level\": -1}", "level", "level: -1 is out of range 0-9"},
    {"{\"level\": \"5\"}", "level", "level: \"5\" is a string; expected an integer from 0 to 9"},
    {"{\"level\": 5.0}", "level", "level: 5.0 is a floating-point number; expected an integer"},
    {"{\"level\": true}", "level", "level: true is a boolean"},
    /* description, owner, enabled, type */
    {"{\"description\": 1}", "description", "expected a string"},
    {"{\"owner\": [\"a\"]}", "owner", "owner: [...] is an array; expected a string"},
    {"{\"enabled\": \"yes\"}", "enabled", "enabled: \"yes\" is a string; expected true or false"},
    {"{\"enabled\": 1}", "enabled", "expected true or false"},
    {"{\"type\": \"worker\"}", "type", "type: \"worker\" is not one of \"shell\""},
    {"{\"type\": 1}", "type", "expected \"shell\""},
    /* command, workdir, user */
    {"{\"command\": null}", "command", "command: missing"},
    {"{\"command\": \" \\t\\n\"}", "command", "is blank"},
    {"{\"command\": [\"ls\"]}", "command", "expected a string"},
    {"{\"workdir\": \"srv\"}", "workdir", "workdir: \"srv\" is not an absolute path"},
    {"{\"workdir\": 1}", "workdir", "expected a string"},
    {"{\"user\": \"-x\"}", "user", "user: \"-x\" is not a user name"},
    {"{\"user\": \"a b\"}", "user", "is not a user name"},
    {"{\"user\": \"\"}", "user", "is not a user name"},
    {"{\"user\": \"abcdefghijklmnopqrstuvwxyz0123456\"}", "user", "is 33 bytes long; at most 32"},
    /* env */
    {"{\"env\": [\"A=1\"]}", "env", "env: [...] is an array; expected an object"},
    {"{\"env\": \"A=1\"}", "env", "expected an object"},
    {"{\"env\": {\"1X\": \"a\"}}", "env.1X", "env: \"1X\" is not a variable name"},
    {"{\"env\": {\"A-B\": \"a\"}}", "env.A-B", "is not a variable name"},
    {"{\"env\": {\"\": \"a\"}}", "env.", "is not a variable name"},
    {"{\"env\": {\"TETHYS_JOB\": \"x\"}}", "env.TETHYS_JOB",
     "env: \"TETHYS_JOB\" is reserved: Tethys sets the TETHYS_* variables"},
    {"{\"env\": {\"TETHYS_\": \"x\"}}", "env.TETHYS_", "is reserved"},
    {"{\"env\": {\"A\": 1}}", "env.A", "env.A: 1 is an integer; expected a string"},
    {"{\"env\": {\"A\": null}}", "env.A", "env.A: null is not allowed here; expected a string"},
    {"{\"env\": {\"A\": \"x\\u0000y\"}}", "env.A", "contains a NUL character"},
    /* output_cap */
    {"{\"output_cap\": 1023}", "output_cap", "output_cap: 1023 is out of range 1024-16777216"},
    {"{\"output_cap\": 16777217}", "output_cap", "out of range 1024-16777216"},
    /* schedule: the cron error, prefixed */
    {"{\"schedule\": \"0 0 12 32 * ?\"}", "schedule",
     "schedule: field 4 (day-of-month): \"32\" is out of range 1-31"},
    {"{\"schedule\": \"0 0 25 * * ?\"}", "schedule",
     "schedule: field 3 (hour): \"25\" is out of range 0-23"},
    {"{\"schedule\": \"0 0 12 * * ? * *\"}", "schedule", "schedule: "},
    {"{\"schedule\": \"\"}", "schedule", "schedule: "},
    {"{\"schedule\": \"@every 0s\"}", "schedule", "schedule: "},
    {"{\"schedule\": 5}", "schedule", "schedule: 5 is an integer; expected a string"},
    /* time_zone: the name's syntax only */
    {"{\"time_zone\": \"Asia/Shang hai\"}", "time_zone",
     "time_zone: \"Asia/Shang hai\" is not a time zone name"},
    {"{\"time_zone\": \"/etc/passwd\"}", "time_zone", "'/' may only separate parts"},
    {"{\"time_zone\": \"../etc/passwd\"}", "time_zone", "\"..\" is not allowed"},
    {"{\"time_zone\": \"Asia/../../x\"}", "time_zone", "\"..\" is not allowed"},
    {"{\"time_zone\": \"\"}", "time_zone", "it is empty"},
    {"{\"time_zone\": \"America/Argentina/ComodRivadavia/And/Then/Some/More/Very/Long/Names\"}",
     "time_zone", "it is too long"},
    {"{\"time_zone\": 8}", "time_zone", "expected a string"},
    /* start_at, end_at */
    {"{\"start_at\": \"2026-01-01\"}", "start_at", "start_at: \"2026-01-01\" is not an RFC 3339"},
    {"{\"start_at\": \"2026-01-01T00:00:00\"}", "start_at", "missing UTC offset"},
    {"{\"start_at\": \"1971-12-31T23:59:59Z\"}", "start_at",
     "is outside 1972-01-01T00:00:00Z to 2199-12-31T23:59:59Z"},
    {"{\"start_at\": 1700000000}", "start_at", "start_at: 1700000000 is an integer; expected a"},
    {"{\"end_at\": \"2200-01-01T00:00:00Z\"}", "end_at", "is outside"},
    {"{\"end_at\": \"2025-12-31T16:00:00Z\"}", "end_at",
     "end_at: 2025-12-31T16:00:00Z is not after start_at 2025-12-31T16:00:00Z"},
    {"{\"end_at\": \"2025-06-01T00:00:00Z\"}", "end_at", "is not after start_at"},
    /* pause_windows */
    {"{\"pause_windows\": {}}", "pause_windows", "expected an array of windows"},
    {"{\"pause_windows\": [5]}", "pause_windows[0]", "pause_windows[0]: 5 is an integer"},
    {"{\"pause_windows\": [{}]}", "pause_windows[0]", "give exactly one of \"dates\""},
    {"{\"pause_windows\": [{\"dates\": [\"2026-01-01\", \"2026-01-02\"], \"daily\": [\"01:00\", "
     "\"02:00\"]}]}",
     "pause_windows[0]", "give exactly one of"},
    {"{\"pause_windows\": [{\"dates\": [\"2026-01-01\"]}]}", "pause_windows[0].dates",
     "expected an array of two dates [FROM, TO]"},
    {"{\"pause_windows\": [{\"daily\": \"01:00-02:00\"}]}", "pause_windows[0].daily",
     "expected an array of two times of day"},
    {"{\"pause_windows\": [{\"dates\": [\"2026-02-29\", \"2026-03-01\"]}]}",
     "pause_windows[0].dates[0]", "\"2026-02-29\": no such date"},
    {"{\"pause_windows\": [{\"dates\": [\"2026-1-1\", \"2026-03-01\"]}]}",
     "pause_windows[0].dates[0]", "is not a date; expected YYYY-MM-DD"},
    {"{\"pause_windows\": [{\"dates\": [\"1899-12-31\", \"2026-03-01\"]}]}",
     "pause_windows[0].dates[0]", "is before 1900-01-01"},
    {"{\"pause_windows\": [{\"dates\": [\"2026-03-02\", \"2026-03-01\"]}]}",
     "pause_windows[0].dates", "the first date \"2026-03-02\" is after the last \"2026-03-01\""},
    {"{\"pause_windows\": [{\"daily\": [\"24:00\", \"01:00\"]}]}", "pause_windows[0].daily[0]",
     "\"24:00\" is out of range 00:00:00-23:59:59"},
    {"{\"pause_windows\": [{\"daily\": [\"01:00\", \"01:60\"]}]}", "pause_windows[0].daily[1]",
     "is out of range"},
    {"{\"pause_windows\": [{\"daily\": [\"12\", \"13:00\"]}]}", "pause_windows[0].daily[0]",
     "is not a time of day; expected HH:MM or HH:MM:SS"},
    {"{\"pause_windows\": [{\"daily\": [\"12:00\", \"12:00:00\"]}]}", "pause_windows[0].daily",
     "\"12:00\" to \"12:00:00\" is empty"},
    {"{\"pause_windows\": [{\"daily\": [1200, 1300]}]}", "pause_windows[0].daily[0]",
     "expected a string"},
    {"{\"pause_windows\": [{\"daily\": [\"01:00\", \"02:00\"]}, {\"dates\": [\"x\", \"y\"]}]}",
     "pause_windows[1].dates[0]", "\"x\" is not a date"},
    /* calendars */
    {"{\"calendars\": [\"a\"]}", "calendars", "calendars: [...] is an array; expected an object"},
    {"{\"calendars\": {\"skip\": \"x\"}}", "calendars.skip", "expected an array of names"},
    {"{\"calendars\": {\"skip\": [\"bad name\"]}}", "calendars.skip[0]",
     "has a character other than"},
    {"{\"calendars\": {\"skip\": [7]}}", "calendars.skip[0]", "expected a string"},
    {"{\"calendars\": {\"skip\": [\"a\", \"a\"]}}", "calendars.skip[1]",
     "calendars.skip[1]: \"a\" is listed twice"},
    {"{\"calendars\": {\"skip\": [\"a\", \"b\"], \"only\": [\"c\", \"b\"]}}", "calendars.only[1]",
     "\"b\" is also in calendars.skip; the job would never run"},
    /* shards */
    {"{\"shards\": 0}", "shards", "shards: 0 is out of range 1-10000"},
    {"{\"shards\": 10001}", "shards", "out of range 1-10000"},
    {"{\"shards\": -1}", "shards", "shards: -1 is out of range"},
    {"{\"shards\": \"4\"}", "shards", "shards: \"4\" is a string; expected an integer"},
    {"{\"shards\": false}", "shards", "shards: false is a boolean"},
    {"{\"shards\": 4611686018427387904}", "shards", "4611686018427387904 is out of range"},
    {"{\"shards\": 1180591620717411303424.0}", "shards",
     "shards: 1.1805916207174113e+21 is a floating-point number"},
    {"{\"shards\": 4.5}", "shards", "4.5 is a floating-point number"},
    /* shard_params */
    {"{\"shard_params\": {\"4\": \"x\"}}", "shard_params.4",
     "shard_params: shard 4 does not exist; the job has 4 shards (0-3)"},
    {"{\"shards\": 1}", "shard_params.1", "shard 1 does not exist; the job has 1 shard (0)"},
    {"{\"shard_params\": {\"x\": \"y\"}}", "shard_params.x",
     "\"x\" is not a shard number; the job has 4 shards (0-3)"},
    {"{\"shard_params\": {\"01\": \"y\"}}", "shard_params.01", "is not a shard number"},
    {"{\"shard_params\": {\"-1\": \"y\"}}", "shard_params.-1", "is not a shard number"},
    {"{\"shard_params\": {\"0\": 5}}", "shard_params.0", "shard_params.0: 5 is an integer"},
    {"{\"shard_params\": 5}", "shard_params",
     "expected an object {\"0\": \"beijing\"} or a string"},
    {"{\"shard_params\": \"0=a,0=b\"}", "shard_params.0", "shard 0 is given twice"},
    {"{\"shard_params\": \"0=a,9=b\"}", "shard_params.9", "shard 9 does not exist"},
    {"{\"shard_params\": \"beijing\"}", "shard_params", "\"beijing\" has no '='"},
    {"{\"shard_params\": \"0=a,\"}", "shard_params", "an empty entry after the last ','"},
    {"{\"shard_params\": \"0=a,,1=b\"}", "shard_params", "an empty entry"},
    {"{\"shard_params\": \",0=a\"}", "shard_params", "an empty entry"},
    {"{\"shard_params\": \"=a\"}", "shard_params.", "\"\" is not a shard number"},
    {"{\"shard_params\": \"99999999999999999999=a\"}", "shard_params.99999999999999999999",
     "is not a shard number"},
    /* job_param */
    {"{\"job_param\": 1}", "job_param", "expected a string"},
    /* timeout, timeout_alarm, kill_grace */
    {"{\"timeout\": -1}", "timeout", "timeout: -1 is out of range 0-2678400"},
    {"{\"timeout\": 2678401}", "timeout", "out of range 0-2678400"},
    {"{\"timeout\": \"3600\"}", "timeout", "timeout: \"3600\" is a string"},
    {"{\"timeout\": 3600.5}", "timeout", "3600.5 is a floating-point number"},
    {"{\"timeout_alarm\": 3600}", "timeout_alarm",
     "timeout_alarm: 3600 s is not less than timeout 3600 s"},
    {"{\"timeout\": 60, \"timeout_alarm\": 61}", "timeout_alarm", "is not less than timeout"},
    {"{\"timeout_alarm\": 2678401}", "timeout_alarm", "out of range 0-2678400"},
    {"{\"kill_grace\": 3601}", "kill_grace", "kill_grace: 3601 is out of range 0-3600"},
    /* retries and backoff */
    {"{\"retries\": 101}", "retries", "retries: 101 is out of range 0-100"},
    {"{\"retries\": -1}", "retries", "out of range"},
    {"{\"retry_backoff\": 86401}", "retry_backoff", "out of range 0-86400"},
    {"{\"retry_backoff_max\": 604801}", "retry_backoff_max", "out of range 0-604800"},
    {"{\"retry_backoff\": 100, \"retry_backoff_max\": 50}", "retry_backoff_max",
     "retry_backoff_max: 50 s is less than retry_backoff 100 s"},
    {"{\"retry_backoff_factor\": 0.5}", "retry_backoff_factor",
     "retry_backoff_factor: 0.5 is out of range 1.0-10.0"},
    {"{\"retry_backoff_factor\": 11}", "retry_backoff_factor", "11 is out of range 1.0-10.0"},
    {"{\"retry_backoff_factor\": \"2\"}", "retry_backoff_factor",
     "expected a number from 1.0 to 10.0"},
    /* policies */
    {"{\"overlap\": \"paralel\"}", "overlap",
     "overlap: \"paralel\" is not one of \"skip\", \"queue\" or \"parallel\""},
    {"{\"overlap\": 1}", "overlap", "overlap: 1 is an integer"},
    {"{\"misfire_threshold\": 0}", "misfire_threshold", "0 is out of range 1-86400"},
    {"{\"misfire_threshold\": 86401}", "misfire_threshold", "out of range 1-86400"},
    {"{\"misfire\": \"catchup\"}", "misfire",
     "is not one of \"skip\", \"run_once\" or \"catch_up\""},
    {"{\"misfire\": \"catch_up\", \"catch_up_max\": 0}", "catch_up_max",
     "0 is out of range 1-1000"},
    {"{\"misfire\": \"catch_up\", \"catch_up_max\": 1001}", "catch_up_max", "out of range 1-1000"},
    {"{\"catch_up_max\": 1001}", "catch_up_max", "out of range 1-1000"},
    {"{\"on_executor_death\": \"continue\"}", "on_executor_death",
     "is not one of \"kill\" or \"finish\""},
    {"{\"failover\": \"no\"}", "failover", "failover: \"no\" is a string; expected true or false"},
    /* placement */
    {"{\"strategy\": \"round-robin\"}", "strategy",
     "strategy: \"round-robin\" is not one of \"even\", \"hash\" or \"local\""},
    {"{\"strategy\": 1}", "strategy", "strategy: 1 is an integer"},
    {"{\"prefer\": \"gpu=yes\"}", "prefer",
     "prefer: \"gpu=yes\" is a string; expected an array of executor names and label selectors "
     "(key=value)"},
    {"{\"prefer\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\", \"j\", \"k\", "
     "\"l\","
     " \"m\", \"n\", \"o\", \"p\", \"q\"]}",
     "prefer", "prefer: 17 entries; at most 16"},
    {"{\"prefer\": [\"a\", 5]}", "prefer[1]", "prefer[1]: 5 is an integer; expected a string"},
    {"{\"prefer\": [null]}", "prefer[0]", "prefer[0]: null is not allowed here"},
    {"{\"prefer\": [\"\"]}", "prefer[0]",
     "prefer[0]: must not be empty; expected an executor name or a label selector key=value"},
    {"{\"prefer\": [\"exec 1\"]}", "prefer[0]",
     "prefer[0]: \"exec 1\" has a character other than letters, digits, '.', '_' and '-' in its "
     "executor name"},
    {"{\"prefer\": [\"ok\", \"zone=a=b\"]}", "prefer[1]",
     "prefer[1]: \"zone=a=b\" has more than one '='; expected key=value"},
    {"{\"prefer\": [\"=east\"]}", "prefer[0]", "prefer[0]: \"=east\" has an empty label key"},
    {"{\"prefer\": [\"zone=\"]}", "prefer[0]", "prefer[0]: \"zone=\" has an empty label value"},
    {"{\"prefer\": [\"zone=e/st\"]}", "prefer[0]", "in its label value"},
    {"{\"prefer\": [\"zo ne=east\"]}", "prefer[0]", "in its label key"},
    {"{\"prefer\": [\"x\", \"zone=east\", \"x\"]}", "prefer[2]",
     "prefer[2]: \"x\" is listed twice"},
    {"{\"prefer\": [\"0123456789012345678901234567890123456789012345678901234567890123\"]}",
     "prefer[0]", "the executor name is 64 bytes long; at most 63"},
    {"{\"prefer\": [\"k=0123456789012345678901234567890123456789012345678901234567890123\"]}",
     "prefer[0]", "the label value is 64 bytes long; at most 63"},
    {"{\"prefer_only\": \"yes\"}", "prefer_only",
     "prefer_only: \"yes\" is a string; expected true or false"},
    {"{\"prefer_only\": true}", "prefer_only",
     "prefer_only: true without a prefer list; no executor could run the job"},
    {"{\"prefer\": [], \"prefer_only\": true}", "prefer_only", "without a prefer list"},
    /* downstream */
    {"{\"downstream\": \"x\"}", "downstream", "expected an array of names"},
    {"{\"downstream\": [\"nightly-import\"]}", "downstream[0]",
     "\"nightly-import\" is this job itself"},
    {"{\"downstream\": [\"a\", \"b\", \"a\"]}", "downstream[2]", "\"a\" is listed twice"},
    {"{\"downstream\": [\"bad name\"]}", "downstream[0]", "has a character other than"},
    {"{\"downstream\": [null]}", "downstream[0]", "null is not allowed here"},
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        json_t *doc = load(FULL_JOB), *change = load(refusals[i].change);
        json_object_update(doc, change);
        expect_refused(doc, refusals[i].field, refusals[i].fragment, refusals[i].change);
        json_decref(doc);
        json_decref(change);
    }
}

static void test_refused_documents(void **state)
{
    (void)state;
    json_t *v = load("[1, 2]");
    expect_refused(v, "", "the job is an array; expected a JSON object", "array");
    json_decref(v);
    v = load("\"job\"");
    expect_refused(v, "", "the job is a string", "string");
    json_decref(v);
    expect_refused(NULL, "", "no job given", "NULL");
    /* the first problem in canonical order is the one reported; unknown fields first */
    v = load("{\"name\": \"\", \"command\": \"\", \"shardz\": 1}");
    expect_refused(v, "shardz", "unknown field", "order");
    json_decref(v);
    v = load("{\"command\": \"x\", \"timeout\": -1}");
    expect_refused(v, "name", "missing", "order");
    json_decref(v);
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* MINIMAL_JOB with key set to value (stolen). */
static json_t *minimal_with(const char *key, json_t *value)
{
    json_t *doc = load(MINIMAL_JOB);
    json_object_set_new(doc, key, value);
    return doc;
}

static void accepted(json_t *doc, const char *label)
{
    struct job j;
    struct ty_err err;
    if (job_from_json(doc, &j, &err) != 0)
        fail_msg("%s: refused: [%s] %s", label, err.field, err.msg);
    job_free(&j);
    json_decref(doc);
}

static void refused(json_t *doc, const char *field, const char *fragment, const char *label)
{
    expect_refused(doc, field, fragment, label);
    json_decref(doc);
}

static void test_sizes(void **state)
{
    (void)state;
    char *s;
    /* name: 128 bytes */
    s = repeat('n', 128);
    accepted(minimal_with("name", json_string(s)), "name 128");
    free(s);
    s = repeat('n', 129);
    refused(minimal_with("name", json_string(s)), "name", "is 129 bytes long; at most 128",
            "name 129");
    free(s);
    /* domain: 256 bytes */
    s = repeat('d', 256);
    s[100] = '/';
    accepted(minimal_with("domain", json_string(s)), "domain 256");
    free(s);
    s = repeat('d', 257);
    refused(minimal_with("domain", json_string(s)), "domain", "is 257 bytes long; at most 256",
            "domain 257");
    free(s);
    /* description 4096, owner 256, command 65536, workdir / job_param 4096 */
    static const struct {
        const char *key;
        size_t max;
    } texts[] = {{"description", 4096},
                 {"owner", 256},
                 {"command", JOB_COMMAND_MAX},
                 {"workdir", 4096},
                 {"job_param", 4096}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char frag[64];
        s = repeat('/', texts[i].max);
        accepted(minimal_with(texts[i].key, json_string(s)), texts[i].key);
        free(s);
        s = repeat('/', texts[i].max + 1);
        snprintf(frag, sizeof frag, "is %zu bytes long; at most %zu", texts[i].max + 1,
                 texts[i].max);
        refused(minimal_with(texts[i].key, json_string(s)), texts[i].key, frag, texts[i].key);
        free(s);
    }
    /* the value shown in a message is cut short */
    s = repeat('x', 5000);
    json_t *doc = minimal_with("description", json_string(s));
    struct job j;
    struct ty_err err;
    assert_int_equal(job_from_json(doc, &j, &err), TY_EINVAL);
    assert_non_null(strstr(err.msg, "xxx...\" is 5000 bytes long"));
    assert_true(strlen(err.msg) < 120);
    json_decref(doc);
    free(s);
    /* env: 256 variables; names of 128 bytes; values of 32768 bytes */
    json_t *env = json_object();
    for (int i = 0; i < JOB_ENV_MAX; i++) {
        char name[16];
        snprintf(name, sizeof name, "V%d", i);
        json_object_set_new(env, name, json_string("x"));
    }
    accepted(minimal_with("env", json_deep_copy(env)), "env 256");
    json_object_set_new(env, "ONE_MORE", json_string("x"));
    refused(minimal_with("env", env), "env", "env: 257 variables; at most 256", "env 257");
    s = repeat('N', 128);
    accepted(minimal_with("env", json_pack("{s:s}", s, "v")), "env name 128");
    free(s);
    s = repeat('N', 129);
    char field[TY_ERR_FIELD_MAX];
    snprintf(field, sizeof field, "env.%s", s); /* cut to the size of err.field */
    refused(minimal_with("env", json_pack("{s:s}", s, "v")), field,
            "is 129 bytes long; at most 128", "env name 129");
    free(s);
    s = repeat('v', 32768);
    accepted(minimal_with("env", json_pack("{s:s}", "V", s)), "env value 32768");
    free(s);
    s = repeat('v', 32769);
    refused(minimal_with("env", json_pack("{s:s}", "V", s)), "env.V",
            "is 32769 bytes long; at most 32768", "env value 32769");
    free(s);
    /* 64 pause windows, 64 downstream jobs, 64 calendars each way */
    json_t *windows = json_array(), *names = json_array();
    for (int i = 0; i < 64; i++) {
        char name[16];
        snprintf(name, sizeof name, "job-%d", i);
        json_array_append_new(windows, json_pack("{s:[ss]}", "daily", "01:00", "02:00"));
        json_array_append_new(names, json_string(name));
    }
    accepted(minimal_with("pause_windows", json_deep_copy(windows)), "64 windows");
    accepted(minimal_with("downstream", json_deep_copy(names)), "64 downstream");
    accepted(minimal_with("calendars", json_pack("{s:O}", "skip", names)), "64 calendars");
    json_array_append_new(windows, json_pack("{s:[ss]}", "daily", "01:00", "02:00"));
    json_array_append_new(names, json_string("job-64"));
    refused(minimal_with("pause_windows", windows), "pause_windows",
            "pause_windows: 65 windows; at most 64", "65 windows");
    refused(minimal_with("downstream", json_deep_copy(names)), "downstream",
            "downstream: 65 names; at most 64", "65 downstream");
    refused(minimal_with("calendars", json_pack("{s:o}", "only", names)), "calendars.only",
            "65 names; at most 64", "65 calendars");
    /* a shard parameter of 4096 bytes, in either form */
    s = repeat('p', 4097);
    char *text = malloc(4200);
    snprintf(text, 4200, "0=%.4096s", s);
    accepted(minimal_with("shard_params", json_string(text)), "param 4096");
    snprintf(text, 4200, "0=%s", s);
    refused(minimal_with("shard_params", json_string(text)), "shard_params.0",
            "shard_params.0: the value is 4097 bytes long; at most 4096", "param 4097");
    refused(minimal_with("shard_params", json_pack("{s:s}", "0", s)), "shard_params.0",
            "is 4097 bytes long; at most 4096", "param 4097 object");
    free(text);
    free(s);
    /* 10,000 shards with a parameter each */
    struct strbuf sb;
    sb_init(&sb);
    for (int i = 0; i < JOB_SHARDS_MAX; i++)
        sb_addf(&sb, "%s%d=p%d", i ? "," : "", i, i);
    doc = minimal_with("shards", json_integer(JOB_SHARDS_MAX));
    json_object_set_new(doc, "shard_params", json_string(sb_str(&sb)));
    assert_int_equal(job_from_json(doc, &j, &err), 0);
    assert_string_equal(j.shard_params[9999], "p9999");
    json_t *out = job_to_json(&j);
    assert_int_equal(json_object_size(json_object_get(out, "shard_params")), JOB_SHARDS_MAX);
    json_decref(out);
    job_free(&j);
    json_decref(doc);
    sb_free(&sb);
}

static void test_schedule_error_position(void **state)
{
    (void)state;
    json_t *doc = minimal_with("schedule", json_string("0 0 12 32 * ?"));
    struct job j;
    struct ty_err err;
    assert_int_equal(job_from_json(doc, &j, &err), TY_EINVAL);
    assert_string_equal(err.field, "schedule");
    assert_string_equal(err.msg, "schedule: field 4 (day-of-month): \"32\" is out of range 1-31");
    /* pos/len locate the text in the schedule string */
    assert_int_equal(err.pos, 7);
    assert_int_equal(err.len, 2);
    json_decref(doc);
}

/* ---- job_check_name and job_parse_shard_params ------------------------------------------------
 */

static void test_check_name(void **state)
{
    (void)state;
    struct ty_err err;
    assert_int_equal(job_check_name("x", "a", &err), 0);
    assert_int_equal(job_check_name("x", "0.9_a-B", &err), 0);
    expect_error(job_check_name("downstream[3]", "_a", &err), &err, "downstream[3]",
                 "downstream[3]: \"_a\" must start with a letter or digit", "_a");
    assert_int_equal(job_check_name("x", "", NULL), TY_EINVAL);
}

static void test_shard_params(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t shards;
        const char *want[4]; /* the parameters; unused for an error */
        const char *field, *fragment;
    } cases[] = {
        {"0=beijing,1=shanghai", 4, {"beijing", "shanghai", NULL, NULL}, NULL, NULL},
        {" 0 = a , 3=b=c ", 4, {"a", NULL, NULL, "b=c"}, NULL, NULL},
        {"1=,2= x y ", 4, {NULL, "", "x y", NULL}, NULL, NULL},
        {"", 4, {NULL, NULL, NULL, NULL}, NULL, NULL},
        {" \t ", 1, {NULL}, NULL, NULL},
        {"0=\xe5\x8c\x97\xe4\xba\xac", 1, {"\xe5\x8c\x97\xe4\xba\xac"}, NULL, NULL},
        {"0=a,", 4, {NULL}, "shard_params", "an empty entry after the last ','"},
        {",0=a", 4, {NULL}, "shard_params", "an empty entry"},
        {"0=a, ,1=b", 4, {NULL}, "shard_params", "an empty entry"},
        {"x=1",
         4,
         {NULL},
         "shard_params.x",
         "\"x\" is not a shard number; the job has 4 shards (0-3)"},
        {"-1=a", 4, {NULL}, "shard_params.-1", "is not a shard number"},
        {"+1=a", 4, {NULL}, "shard_params.+1", "is not a shard number"},
        {"00=a", 4, {NULL}, "shard_params.00", "is not a shard number"},
        {"4=a", 4, {NULL}, "shard_params.4", "shard 4 does not exist; the job has 4 shards"},
        {"1=a", 1, {NULL}, "shard_params.1", "shard 1 does not exist; the job has 1 shard (0)"},
        {"0=a,0=b", 4, {NULL}, "shard_params.0", "shard 0 is given twice"},
        {"0=a;1=b", 4, {"a;1=b", NULL, NULL, NULL}, NULL, NULL},
        {"beijing", 4, {NULL}, "shard_params", "\"beijing\" has no '='"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char **params = (char **)&params; /* poison: must be set either way */
        struct ty_err err;
        int rc = job_parse_shard_params(cases[i].text, cases[i].shards, &params, &err);
        if (cases[i].field != NULL) {
            expect_error(rc, &err, cases[i].field, cases[i].fragment, cases[i].text);
            assert_null(params);
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": refused: %s", cases[i].text, err.msg);
        for (uint32_t k = 0; k < cases[i].shards; k++) {
            if (cases[i].want[k] == NULL)
                assert_null(params[k]);
            else
                assert_string_equal(params[k], cases[i].want[k]);
            free(params[k]);
        }
        free(params);
    }
}

/* ---- job_patch ------------------------------------------------------------------------------ */

static void test_patch(void **state)
{
    (void)state;
    struct job base, out;
    struct ty_err err;
    parse_ok(FULL_JOB, &base);

    json_t *patch =
        load("{\"timeout\": 7200, \"timeout_alarm\": null,"
             " \"env\": {\"DB_HOST\": null, \"X\": \"1\"},"
             " \"shard_params\": {\"2\": \"guangzhou\", \"0\": null},"
             " \"calendars\": {\"only\": [\"trading\"]}, \"name\": \"nightly-import\"}");
    assert_int_equal(job_patch(&base, patch, &out, &err), 0);
    assert_int_equal(out.timeout, 7200);
    assert_int_equal(out.timeout_alarm, 0);
    assert_int_equal(out.n_env, 1);
    assert_string_equal(out.env[0].name, "X");
    assert_null(out.shard_params[0]);
    assert_string_equal(out.shard_params[1], "shanghai");
    assert_string_equal(out.shard_params[2], "guangzhou");
    assert_string_equal(out.calendars_skip[0], "cn-holidays");
    assert_string_equal(out.calendars_only[0], "trading");
    assert_int_equal(out.retries, 2); /* untouched */
    job_free(&out);
    json_decref(patch);

    /* an empty patch gives the same job */
    patch = load("{}");
    assert_int_equal(job_patch(&base, patch, &out, &err), 0);
    assert_canonical(&out, FULL_CANONICAL);
    job_free(&out);
    json_decref(patch);

    /* the string form of shard_params replaces the object */
    patch = load("{\"shard_params\": \"3=x\"}");
    assert_int_equal(job_patch(&base, patch, &out, &err), 0);
    assert_null(out.shard_params[0]);
    assert_string_equal(out.shard_params[3], "x");
    job_free(&out);
    json_decref(patch);

    /* refusals leave *out empty */
    static const struct refusal bad[] = {
        {"{\"name\": \"other\"}", "name",
         "name: a job cannot be renamed (from \"nightly-import\" to \"other\")"},
        {"{\"name\": null}", "name", "cannot be renamed"},
        {"{\"name\": 5}", "name", "cannot be renamed"},
        {"{\"shards\": 1}", "shard_params.1", "does not exist"},
        {"{\"timeout\": 60}", "timeout_alarm", "is not less than timeout"},
        {"{\"shardz\": 1}", "shardz", "did you mean \"shards\"?"},
        {"{\"command\": null}", "command", "missing"},
        {"[]", "", "the change is an array; expected a JSON object with the fields to change"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        patch = load(bad[i].change);
        memset(&out, 0x5a, sizeof out);
        int rc = job_patch(&base, patch, &out, &err);
        expect_error(rc, &err, bad[i].field, bad[i].fragment, bad[i].change);
        assert_true(all_zero(&out, sizeof out));
        json_decref(patch);
    }
    memset(&out, 0x5a, sizeof out);
    expect_error(job_patch(&base, NULL, &out, &err), &err, "", "no change given", "NULL");
    assert_true(all_zero(&out, sizeof out));
    job_free(&base);
}

/* ---- job_min_interval ----------------------------------------------------------------------- */

static void test_min_interval(void **state)
{
    (void)state;
    static const struct {
        const char *schedule; /* NULL: none */
        const char *zone;
        int64_t want;
    } cases[] = {
        {"*/5 * * * * ?", "UTC", 5},
        {"0 0 0 * * ?", "UTC", 86400},
        {"@daily", "Asia/Shanghai", 86400},
        {"0 0 12 ? * MON-FRI", "UTC", 86400},
        {"0 0 12 ? * MON-FRI", "America/New_York", 86400}, /* clocks change on Sundays */
        {"0 30 2 * * ?", "America/New_York", 84600}, /* 02:30 does not exist: 03:00 that day */
        {"@every 90s", "UTC", 90},
        {"@every 1d", "Europe/Berlin", 86400},
        {"0 0 * * * ?", "UTC", 3600},
        {"0 0 9 ? * MON", "UTC", INT64_C(7) * 86400},
        {"0 0 0 1 * ?", "UTC", INT64_C(28) * 86400},
        {"*/10 * * * *", "UTC", 600},
        {"0 0 0,1 1 1 ?", "UTC", 3600}, /* twice a year, one hour apart */
        {"0 0 0 1 1 ? 2030", "UTC", 0}, /* once */
        {"@yearly", "UTC", 0},          /* once in any 365 days after now */
        {"0 0 0 30 2 ?", "UTC", 0},     /* never */
        {"0 0 0 1 1 ? 2020", "UTC", 0}, /* only in the past */
        {NULL, "UTC", 0},
    };
    int64_t now = at("2026-01-15T10:00:00Z");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct job j;
        json_t *doc = minimal_with("schedule", cases[i].schedule ? json_string(cases[i].schedule)
                                                                 : json_null());
        struct ty_err err;
        if (job_from_json(doc, &j, &err) != 0)
            fail_msg("%s: %s", cases[i].schedule, err.msg);
        int64_t got = job_min_interval(&j, zone(cases[i].zone), now);
        if (got != cases[i].want)
            fail_msg("%s in %s: min interval %lld, expected %lld", cases[i].schedule, cases[i].zone,
                     (long long)got, (long long)cases[i].want);
        job_free(&j);
        json_decref(doc);
    }
    /* a "now" before 1972 is measured from 1972 */
    struct job j;
    parse_ok("{\"name\": \"a\", \"command\": \"x\", \"schedule\": \"*/7 * * * * ?\"}", &j);
    assert_int_equal(job_min_interval(&j, zone("UTC"), 0), 4); /* :56 then :00 */
    job_free(&j);
}

/* ---- job_paused ----------------------------------------------------------------------------- */

static void test_paused(void **state)
{
    (void)state;
    static const struct {
        const char *windows;
        const char *zone;
        const char *t;
        bool want;
    } cases[] = {
        /* date windows are whole local days, inclusive */
        {"[{\"dates\": [\"2026-12-24\", \"2026-12-26\"]}]", "Asia/Shanghai", "2026-12-23T15:59:59Z",
         false},
        {"[{\"dates\": [\"2026-12-24\", \"2026-12-26\"]}]", "Asia/Shanghai", "2026-12-23T16:00:00Z",
         true},
        {"[{\"dates\": [\"2026-12-24\", \"2026-12-26\"]}]", "Asia/Shanghai", "2026-12-26T15:59:59Z",
         true},
        {"[{\"dates\": [\"2026-12-24\", \"2026-12-26\"]}]", "Asia/Shanghai", "2026-12-26T16:00:00Z",
         false},
        {"[{\"dates\": [\"1969-12-31\", \"1969-12-31\"]}]", "UTC", "1969-12-31T23:59:59Z", true},
        {"[{\"dates\": [\"1969-12-31\", \"1969-12-31\"]}]", "UTC", "1970-01-01T00:00:00Z", false},
        /* the day the clocks go forward in New York is 23 hours long */
        {"[{\"dates\": [\"2026-03-08\", \"2026-03-08\"]}]", "America/New_York",
         "2026-03-08T05:00:00Z", true},
        {"[{\"dates\": [\"2026-03-08\", \"2026-03-08\"]}]", "America/New_York",
         "2026-03-09T03:59:59Z", true},
        {"[{\"dates\": [\"2026-03-08\", \"2026-03-08\"]}]", "America/New_York",
         "2026-03-09T04:00:00Z", false},
        /* daily windows: [from, to) */
        {"[{\"daily\": [\"12:00\", \"13:30\"]}]", "UTC", "2026-05-05T11:59:59Z", false},
        {"[{\"daily\": [\"12:00\", \"13:30\"]}]", "UTC", "2026-05-05T12:00:00Z", true},
        {"[{\"daily\": [\"12:00\", \"13:30\"]}]", "UTC", "2026-05-05T13:29:59Z", true},
        {"[{\"daily\": [\"12:00\", \"13:30\"]}]", "UTC", "2026-05-05T13:30:00Z", false},
        /* wrapping past midnight */
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-05T21:59:59Z", false},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-05T22:00:00Z", true},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-05T23:59:59Z", true},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-06T00:00:00Z", true},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-06T05:59:59Z", true},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "UTC", "2026-05-06T06:00:00Z", false},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "Asia/Shanghai", "2026-05-05T14:00:00Z", true},
        {"[{\"daily\": [\"22:00\", \"06:00\"]}]", "Asia/Shanghai", "2026-05-05T13:59:59Z", false},
        {"[{\"daily\": [\"23:59:59\", \"00:00\"]}]", "UTC", "2026-05-05T23:59:59Z", true},
        {"[{\"daily\": [\"23:59:59\", \"00:00\"]}]", "UTC", "2026-05-06T00:00:00Z", false},
        /* spring forward in New York (07:00Z, 02:00 EST -> 03:00 EDT): 01:30-02:30 local */
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-03-08T06:29:59Z",
         false},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-03-08T06:30:00Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-03-08T06:59:59Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-03-08T07:00:00Z",
         false},
        /* fall back (06:00Z, 02:00 EDT -> 01:00 EST): 01:30-02:30 local happens twice */
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T05:30:00Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T05:59:59Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T06:00:00Z",
         false},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T06:30:00Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T07:29:59Z", true},
        {"[{\"daily\": [\"01:30\", \"02:30\"]}]", "America/New_York", "2026-11-01T07:30:00Z",
         false},
        /* several windows: any one pauses */
        {"[{\"daily\": [\"01:00\", \"02:00\"]}, {\"dates\": [\"2026-07-04\", \"2026-07-04\"]}]",
         "UTC", "2026-07-04T12:00:00Z", true},
        {"[{\"daily\": [\"01:00\", \"02:00\"]}, {\"dates\": [\"2026-07-04\", \"2026-07-04\"]}]",
         "UTC", "2026-07-05T01:00:00Z", true},
        {"[{\"daily\": [\"01:00\", \"02:00\"]}, {\"dates\": [\"2026-07-04\", \"2026-07-04\"]}]",
         "UTC", "2026-07-05T02:00:00Z", false},
        {"[]", "UTC", "2026-07-05T02:00:00Z", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct job j;
        json_t *doc = minimal_with("pause_windows", load(cases[i].windows));
        struct ty_err err;
        if (job_from_json(doc, &j, &err) != 0)
            fail_msg("%s: %s", cases[i].windows, err.msg);
        bool got = job_paused(&j, zone(cases[i].zone), at(cases[i].t));
        if (got != cases[i].want)
            fail_msg("%s in %s at %s: paused %d, expected %d", cases[i].windows, cases[i].zone,
                     cases[i].t, got, cases[i].want);
        job_free(&j);
        json_decref(doc);
    }
}

/* ---- job_text: the compact text and what scheduling needs ------------------------------- */

/* The canonical text of the job in json (compact, as the store keeps it); malloc'd. */
static char *canonical_text(const char *json)
{
    struct job j;
    parse_ok(json, &j);
    json_t *doc = job_to_json(&j);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    job_free(&j);
    return text;
}

/* The table of defaults is job_to_json's own, member for member, in its order. */
static void test_text_defaults(void **state)
{
    (void)state;
    char *text = canonical_text("{\"name\": \"x\", \"command\": \"true\"}");
    json_t *doc = json_loads(text, 0, NULL);
    size_t n, k = 0;
    const struct job_text_default *d = job_text_defaults(&n);
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "name") == 0 || strcmp(key, "command") == 0)
            continue;
        assert_true(k < n);
        assert_string_equal(d[k].key, key);
        char *raw = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        assert_string_equal(d[k].raw, raw);
        free(raw);
        k++;
    }
    assert_int_equal(k, n);
    json_decref(doc);
    /* ... so a minimal job compacts to its two required fields */
    struct strbuf out;
    sb_init(&out);
    struct job_sched s;
    struct ty_err err;
    assert_int_equal(job_text_compact(text, strlen(text), &out, &s, NULL, &err), 0);
    assert_string_equal(sb_str(&out), "{\"name\":\"x\",\"command\":\"true\"}");
    assert_true(s.enabled && !s.scheduled && !s.secrets);
    assert_string_equal(s.time_zone, "UTC");
    assert_int_equal(s.misfire_threshold, 5);
    assert_int_equal(s.misfire, JOB_MISFIRE_SKIP);
    assert_int_equal(s.catch_up_max, 1);
    sb_free(&out);
    free(text);
}

/* Compact texts read back to the same job; scheduling fields come out decoded. */
static void test_text_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *job;
        int plain; /* job_text_compact's answer */
    } cases[] = {
        {"{\"name\": \"a\", \"command\": \"/usr/local/bin/report --name a\", "
         "\"schedule\": \"0 0 3 * * ?\"}",
         0},
        {"{\"name\": \"b\", \"command\": \"echo \\\"quoted\\\" \\u00e9\", \"enabled\": false,"
         " \"schedule\": \"0/5 * * * * ?\", \"time_zone\": \"Asia/Shanghai\", \"domain\": \"x/y\","
         " \"env\": {\"A\": \"1\", \"secret_env\": \"{}\"}, \"secret_env\": {\"T\": \"v\"}}",
         0},
        {"{\"name\": \"c\", \"command\": \"true\", \"shards\": 3, \"shard_params\": \"0=a,2=c\","
         " \"retry_backoff_factor\": 1.5, \"overlap\": \"queue\", \"downstream\": [\"a\"],"
         " \"pause_windows\": [{\"daily\": [\"12:00\", \"13:00\"]}], \"level\": 9}",
         0},
        {"{\"name\": \"d\", \"command\": \"true\", \"schedule\": \"@daily\","
         " \"misfire\": \"catch_up\", \"catch_up_max\": 3, \"misfire_threshold\": 60}",
         1},
        {"{\"name\": \"e\", \"command\": \"true\", \"start_at\": \"2030-01-01T00:00:00Z\"}", 1},
        {"{\"name\": \"f\", \"command\": \"true\", \"calendars\": {\"skip\": [\"h\"]}}", 0},
        {"{\"name\": \"g\", \"command\": \"true\", \"strategy\": \"hash\","
         " \"prefer\": [\"zone=east\", \"exec-1\"], \"prefer_only\": true}",
         0},
        {FULL_JOB, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = canonical_text(cases[i].job);
        struct strbuf out;
        sb_init(&out);
        struct job_sched s;
        struct ty_err err;
        int rc = job_text_compact(text, strlen(text), &out, &s, NULL, &err);
        if (rc != cases[i].plain)
            fail_msg("case %zu: %d, expected %d (%s)", i, rc, cases[i].plain, err.msg);
        assert_true(out.len < strlen(text));
        /* read back: the same job, written the same */
        char *again = canonical_text(sb_str(&out));
        if (strcmp(again, text) != 0)
            fail_msg("case %zu: %s\n  became %s\n  via %s", i, text, again, sb_str(&out));
        struct job j;
        parse_ok(sb_str(&out), &j);
        if (rc == 0) {
            assert_int_equal(s.enabled, j.enabled);
            assert_int_equal(s.scheduled, j.schedule != NULL);
            if (s.scheduled)
                assert_true(cron_equal(&s.cron, &j.cron));
            assert_string_equal(s.time_zone, j.time_zone);
            assert_int_equal(s.start_at, j.start_at);
            assert_int_equal(s.end_at, j.end_at);
            assert_int_equal(s.misfire_threshold, j.misfire_threshold);
            assert_int_equal(s.misfire, j.misfire);
            assert_int_equal(s.catch_up_max, j.catch_up_max);
            assert_int_equal(s.secrets, j.n_secret_env > 0);
        }
        job_free(&j);
        free(again);
        sb_free(&out);
        free(text);
    }
    /* a small job's canonical 600-odd bytes come down to its own fields */
    char *text = canonical_text(cases[0].job);
    struct strbuf out;
    sb_init(&out);
    struct job_sched s;
    assert_int_equal(job_text_compact(text, strlen(text), &out, &s, NULL, NULL), 0);
    assert_true(strlen(text) > 5 * out.len);
    assert_string_equal(sb_str(&out), "{\"name\":\"a\",\"command\":\"/usr/local/bin/report "
                                      "--name a\",\"schedule\":\"0 0 3 * * ?\"}");
    assert_true(s.scheduled);
    sb_free(&out);
    free(text);
    /* the memo: one schedule compiled once, another replaces it, each gives its own cron */
    struct job_text_memo memo;
    memset(&memo, 0, sizeof memo);
    static const char *const memo_jobs[] = {
        "{\"name\":\"m1\",\"command\":\"x\",\"schedule\":\"0 0 3 * * ?\"}",
        "{\"name\":\"m2\",\"command\":\"x\",\"schedule\":\"0 0 3 * * ?\"}",
        "{\"name\":\"m3\",\"command\":\"x\",\"schedule\":\"0/5 * * * * ?\"}",
        "{\"name\":\"m4\",\"command\":\"x\"}",
    };
    for (size_t i = 0; i < 4; i++) {
        sb_init(&out);
        assert_int_equal(
            job_text_compact(memo_jobs[i], strlen(memo_jobs[i]), &out, &s, &memo, NULL), 0);
        struct job j;
        parse_ok(memo_jobs[i], &j);
        assert_int_equal(s.scheduled, j.schedule != NULL);
        if (s.scheduled)
            assert_true(cron_equal(&s.cron, &j.cron));
        assert_string_equal(memo.schedule, i < 2 ? "0 0 3 * * ?" : "0/5 * * * * ?");
        job_free(&j);
        sb_free(&out);
    }
    /* text not written canonically is kept as it is, spaces and all */
    const char *loose =
        " { \"name\" : \"g\" , \"level\":5,\"command\": \"x\" ,\"schedule\":\"0\\u0020"
        "0 3 * * ?\"}\n";
    sb_init(&out);
    assert_int_equal(job_text_compact(loose, strlen(loose), &out, &s, NULL, NULL), 1);
    assert_string_equal(sb_str(&out),
                        "{\"name\":\"g\",\"command\":\"x\",\"schedule\":\"0\\u00200 3 * * ?\"}");
    sb_free(&out);
}

static void test_text_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",           "[]",
        "{",          "{\"a\":}",
        "{\"a\":1,}", "{\"a\":1} x",
        "{\"a\" 1}",  "{\"a\":\"unclosed}",
        "{\"a\":[1}", "{\"a\":{\"b\":[}]}",
        "{a:1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct strbuf out;
        sb_init(&out);
        struct job_sched s;
        struct ty_err err;
        int rc = job_text_compact(bad[i], strlen(bad[i]), &out, &s, NULL, &err);
        if (rc != TY_EINVAL)
            fail_msg("\"%s\": %d, expected TY_EINVAL", bad[i], rc);
        assert_string_equal(err.field, "job");
        assert_non_null(strstr(err.msg, "job: the definition is not a JSON object (at byte "));
        const char *v;
        size_t n;
        assert_int_equal(job_text_member(bad[i], strlen(bad[i]), "zz", &v, &n), TY_EINVAL);
        sb_free(&out);
    }
    /* a field given twice, even when one of them is the default */
    static const char *const twice[] = {
        "{\"name\":\"a\",\"command\":\"x\",\"name\":\"b\"}",
        "{\"name\":\"a\",\"level\":5,\"command\":\"x\",\"level\":7}",
    };
    for (size_t i = 0; i < 2; i++) {
        struct strbuf out;
        sb_init(&out);
        struct job_sched s;
        struct ty_err err;
        assert_int_equal(job_text_compact(twice[i], strlen(twice[i]), &out, &s, NULL, &err),
                         TY_EINVAL);
        assert_string_equal(err.msg, i == 0 ? "job: field \"name\" is given twice"
                                            : "job: field \"level\" is given twice");
        sb_free(&out);
    }
    const char *t = "{\"a\": 1, \"b\" : {\"c\": [1, \"}\"]}, \"d\":null}";
    const char *v;
    size_t n;
    assert_int_equal(job_text_member(t, strlen(t), "b", &v, &n), 0);
    assert_int_equal(n, strlen("{\"c\": [1, \"}\"]}"));
    assert_memory_equal(v, "{\"c\": [1, \"}\"]}", n);
    assert_int_equal(job_text_member(t, strlen(t), "d", &v, &n), 0);
    assert_memory_equal(v, "null", n);
    assert_int_equal(job_text_member(t, strlen(t), "c", &v, &n), TY_ENOENT);
    assert_null(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_job),        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_canonical_forms), cmocka_unit_test(test_placement),
        cmocka_unit_test(test_refusals),        cmocka_unit_test(test_refused_documents),
        cmocka_unit_test(test_sizes),           cmocka_unit_test(test_schedule_error_position),
        cmocka_unit_test(test_check_name),      cmocka_unit_test(test_shard_params),
        cmocka_unit_test(test_patch),           cmocka_unit_test(test_min_interval),
        cmocka_unit_test(test_paused),          cmocka_unit_test(test_text_defaults),
        cmocka_unit_test(test_text_round_trip), cmocka_unit_test(test_text_refusals),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tzdb_shutdown();
    return rc;
}
