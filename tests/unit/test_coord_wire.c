/*
 * test_coord_wire.c - what the cluster's parts say to each other (coord_wire.h): every
 * request kind and every kind of reply through bytes and back (output that is not UTF-8
 * too), registrations and the --labels option, placement heads, placements cut into chunks
 * (sizes kept, an oversized placement refused, 100,000 of them through many chunks, none),
 * and for each reader the refusals of malformed input, with the field and message asserted;
 * a chunk's bad entries are reported and skipped while its good ones are still read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coord/coord_wire.h"
#include "core/job.h"

/* The error names `field` (exactly) and its message names it and says `part`. */
static void expect_err(const struct ty_err *err, int code, int rc, const char *field,
                       const char *part)
{
    if (rc != code || strcmp(err->field, field) != 0 || strstr(err->msg, field) == NULL ||
        strstr(err->msg, part) == NULL)
        fail_msg("expected %d naming \"%s\" saying \"%s\"; got %d naming \"%s\": %s", code, field,
                 part, rc, err->field, err->msg);
}

/* o through its bytes and back, as another process reads it. */
static json_t *through_bytes(json_t *o)
{
    assert_non_null(o);
    char *text = json_dumps(o, JSON_COMPACT);
    assert_non_null(text);
    json_decref(o);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(back);
    return back;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_ALLOW_NUL, &jerr);
    if (o == NULL)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return o;
}

static struct coord_request *request_round_trip(const struct coord_request *in)
{
    json_t *o = through_bytes(coord_request_to_json(in));
    assert_int_equal(json_integer_value(json_object_get(o, "v")), COORD_WIRE_VERSION);
    struct coord_request *out;
    struct ty_err err;
    int rc = coord_request_from_json(o, &out, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    json_decref(o);
    assert_int_equal(out->kind, in->kind);
    return out;
}

static uint32_t *u32s(size_t n, const uint32_t *v)
{
    uint32_t *s = malloc(n * sizeof *s);
    assert_non_null(s);
    memcpy(s, v, n * sizeof *s);
    return s;
}

/* ---- requests ------------------------------------------------------------------------ */

static void test_assign_round_trip(void **state)
{
    (void)state;
    struct coord_request *in = coord_request_new(COORD_ASSIGN);
    in->epoch = 12;
    in->complete = true;
    in->n_assign = 2;
    in->assign = calloc(2, sizeof *in->assign);
    struct coord_assignment *a = &in->assign[0];
    a->job = strdup("nightly.report");
    a->definition = strdup("{\"name\":\"nightly.report\",\"command\":\"echo \\u00e4\"}");
    a->version = 41;
    a->secrets = json_pack("{s:s, s:s}", "TOKEN", "s3cr\xc3\xa9t", "EMPTY", "");
    a->shards = u32s(3, (uint32_t[]){0, 2, 9999});
    a->n_shards = 3;
    a->epoch = 12;
    a->since = 1764000000;
    a->resume_after = 1763999940;
    a->from = strdup("host-a.0badcafe");
    in->assign[1].job = strdup("gone"); /* unassigned: no definition, every shard */
    in->assign[1].version = 3;
    in->assign[1].epoch = 12;

    struct coord_request *out = request_round_trip(in);
    assert_int_equal(out->epoch, 12);
    assert_true(out->complete);
    assert_int_equal(out->n_assign, 2);
    const struct coord_assignment *b = &out->assign[0];
    assert_string_equal(b->job, a->job);
    assert_string_equal(b->definition, a->definition);
    assert_int_equal(b->version, 41);
    assert_true(json_equal(b->secrets, a->secrets));
    assert_true(b->secrets != a->secrets);
    assert_int_equal(b->n_shards, 3);
    assert_memory_equal(b->shards, a->shards, 3 * sizeof *b->shards);
    assert_int_equal(b->epoch, 12);
    assert_int_equal(b->since, 1764000000);
    assert_int_equal(b->resume_after, 1763999940);
    assert_string_equal(b->from, "host-a.0badcafe");
    b = &out->assign[1];
    assert_string_equal(b->job, "gone");
    assert_null(b->definition);
    assert_null(b->secrets);
    assert_null(b->shards);
    assert_int_equal(b->n_shards, 0);
    assert_null(b->from);
    assert_int_equal(b->version, 3);
    assert_int_equal(b->resume_after, 0);
    coord_request_free(out);

    /* an empty set (the last of a full one, nothing left) */
    for (size_t i = 0; i < in->n_assign; i++)
        coord_assignment_clear(&in->assign[i]);
    in->n_assign = 0;
    out = request_round_trip(in);
    assert_int_equal(out->n_assign, 0);
    assert_null(out->assign);
    assert_true(out->complete);
    coord_request_free(out);
    coord_request_free(in);
}

static void test_other_kinds_round_trip(void **state)
{
    (void)state;
    /* a calendar, then its removal */
    struct coord_request *in = coord_request_new(COORD_CALENDAR);
    in->name = strdup("holidays-de");
    in->definition = strdup("{\"name\":\"holidays-de\",\"dates\":[\"2025-12-25\"]}");
    struct coord_request *out = request_round_trip(in);
    assert_string_equal(out->name, "holidays-de");
    assert_string_equal(out->definition, in->definition);
    coord_request_free(out);
    free(in->definition);
    in->definition = NULL;
    out = request_round_trip(in);
    assert_string_equal(out->name, "holidays-de");
    assert_null(out->definition);
    coord_request_free(out);
    coord_request_free(in);

    /* a downstream fire of some shards (in the order asked), and a "run now" of all */
    in = coord_request_new(COORD_FIRE);
    in->fire.job = strdup("load");
    in->fire.base = strdup("extract@1764000000");
    in->fire.at = 1764000000;
    in->fire.trigger = STORE_TRIGGER_DOWNSTREAM;
    in->fire.shards = u32s(3, (uint32_t[]){7, 1, 3});
    in->fire.n_shards = 3;
    out = request_round_trip(in);
    assert_string_equal(out->fire.job, "load");
    assert_string_equal(out->fire.base, "extract@1764000000");
    assert_int_equal(out->fire.at, 1764000000);
    assert_int_equal(out->fire.trigger, STORE_TRIGGER_DOWNSTREAM);
    assert_int_equal(out->fire.n_shards, 3);
    assert_memory_equal(out->fire.shards, in->fire.shards, 3 * sizeof(uint32_t));
    coord_request_free(out);
    free(in->fire.base);
    free(in->fire.shards);
    in->fire.base = NULL;
    in->fire.shards = NULL;
    in->fire.n_shards = 0;
    in->fire.at = 0;
    in->fire.trigger = STORE_TRIGGER_MANUAL;
    out = request_round_trip(in);
    assert_null(out->fire.base);
    assert_null(out->fire.shards);
    assert_int_equal(out->fire.at, 0);
    assert_int_equal(out->fire.trigger, STORE_TRIGGER_MANUAL);
    coord_request_free(out);
    coord_request_free(in);

    in = coord_request_new(COORD_CANCEL);
    in->name = strdup("00112233aabbccdd");
    out = request_round_trip(in);
    assert_string_equal(out->name, "00112233aabbccdd");
    coord_request_free(out);
    coord_request_free(in);

    in = coord_request_new(COORD_OUTPUT);
    in->name = strdup("00112233aabbccdd");
    in->offset = 5000000000ULL;
    in->max = 65536;
    out = request_round_trip(in);
    assert_string_equal(out->name, "00112233aabbccdd");
    assert_int_equal(out->offset, 5000000000ULL);
    assert_int_equal(out->max, 65536);
    coord_request_free(out);
    coord_request_free(in);

    enum coord_req_kind bare[] = {COORD_STATUS, COORD_KICK};
    for (size_t i = 0; i < 2; i++) {
        in = coord_request_new(bare[i]);
        out = request_round_trip(in);
        assert_null(out->name);
        coord_request_free(out);
        coord_request_free(in);
    }
}

static void test_request_malformed(void **state)
{
    (void)state;
#define ASSIGN(x) "{\"v\":1,\"kind\":\"assign\",\"epoch\":1,\"assign\":[" x "]}"
#define GOOD_A    "{\"job\":\"a\",\"version\":1,\"epoch\":1,\"since\":0}"
#define A(x)      ASSIGN("{\"job\":\"a\",\"version\":1,\"epoch\":1,\"since\":0," x "}")
#define FIRE(x)   "{\"v\":1,\"kind\":\"fire\",\"job\":\"a\",\"trigger\":\"manual\"" x "}"
    static const struct {
        const char *json, *field, *part;
    } cases[] = {
        {"{\"kind\":\"status\"}", "v", "missing"},
        {"{\"v\":\"1\",\"kind\":\"status\"}", "v", "not an integer"},
        {"{\"v\":0,\"kind\":\"status\"}", "v", "0 is less than 1"},
        {"{\"v\":2,\"kind\":\"status\"}", "v", "request version 2 is newer than this build"},
        {"{\"v\":1}", "kind", "missing"},
        {"{\"v\":1,\"kind\":\"dance\"}", "kind", "unknown value \"dance\""},
        {"{\"v\":1,\"kind\":\"assign\",\"epoch\":1}", "assign", "missing"},
        {"{\"v\":1,\"kind\":\"assign\",\"epoch\":1,\"assign\":{}}", "assign", "not an array"},
        {"{\"v\":1,\"kind\":\"assign\",\"assign\":[]}", "epoch", "missing"},
        {"{\"v\":1,\"kind\":\"assign\",\"epoch\":-1,\"assign\":[]}", "epoch", "-1 is less than 0"},
        {"{\"v\":1,\"kind\":\"assign\",\"epoch\":1,\"complete\":\"yes\",\"assign\":[]}", "complete",
         "not true or false"},
        {ASSIGN("5"), "assign.0", "not an object"},
        {ASSIGN("{\"version\":1,\"epoch\":1,\"since\":0}"), "assign.0.job", "missing"},
        {ASSIGN("{\"job\":\"a b\",\"version\":1,\"epoch\":1,\"since\":0}"), "assign.0.job",
         "has a character other than"},
        {ASSIGN("{\"job\":\"-a\",\"version\":1,\"epoch\":1,\"since\":0}"), "assign.0.job",
         "must start with a letter or digit"},
        {ASSIGN(GOOD_A ",{\"job\":\"\",\"version\":1,\"epoch\":1,\"since\":0}"), "assign.1.job",
         "must not be empty"},
        {ASSIGN("{\"job\":\"a\\u0000b\",\"version\":1,\"epoch\":1,\"since\":0}"), "assign.0.job",
         "holds a NUL character"},
        {ASSIGN("{\"job\":\"a\",\"epoch\":1,\"since\":0}"), "assign.0.version", "missing"},
        {ASSIGN("{\"job\":\"a\",\"version\":-1,\"epoch\":1,\"since\":0}"), "assign.0.version",
         "-1 is less than 0"},
        {ASSIGN("{\"job\":\"a\",\"version\":1,\"epoch\":1}"), "assign.0.since", "missing"},
        {ASSIGN("{\"job\":\"a\",\"version\":1,\"epoch\":1,\"since\":-5}"), "assign.0.since",
         "-5 is less than 0"},
        {A("\"resume_after\":1.5"), "assign.0.resume_after", "not an integer"},
        {A("\"definition\":{}"), "assign.0.definition", "not a string"},
        {A("\"shards\":\"0\""), "assign.0.shards", "not an array"},
        {A("\"shards\":[]"), "assign.0.shards", "empty"},
        {A("\"shards\":[\"1\"]"), "assign.0.shards.0", "not a shard number"},
        {A("\"shards\":[0,10000]"), "assign.0.shards.1", "10000 is not a shard number below"},
        {A("\"shards\":[-1]"), "assign.0.shards.0", "-1 is not a shard number"},
        {A("\"shards\":[0,3,2]"), "assign.0.shards.2", "shard 2 after 3; shards must be ascending"},
        {A("\"shards\":[0,4,4]"), "assign.0.shards.2", "shard 4 is listed twice"},
        {A("\"secrets\":[]"), "assign.0.secrets", "not an object"},
        {A("\"secrets\":{\"A\":\"x\",\"B\":7}"), "assign.0.secrets.B", "not a string"},
        {A("\"secrets\":{\"A\":null}"), "assign.0.secrets.A", "not a string"},
        {A("\"secrets\":{\"A\":\"x\\u0000y\"}"), "assign.0.secrets.A", "NUL"},
        {A("\"secrets\":{\"\":\"x\"}"), "assign.0.secrets", "a secret without a name"},
        {A("\"from\":\"host a\""), "assign.0.from", "\"host a\" is not an id"},
        {A("\"from\":7"), "assign.0.from", "not a string"},
        {"{\"v\":1,\"kind\":\"calendar\"}", "name", "missing"},
        {"{\"v\":1,\"kind\":\"calendar\",\"name\":\"x/y\"}", "name", "has a character"},
        {"{\"v\":1,\"kind\":\"calendar\",\"name\":\"h\",\"definition\":1}", "definition",
         "not a string"},
        {"{\"v\":1,\"kind\":\"fire\",\"trigger\":\"manual\"}", "job", "missing"},
        {"{\"v\":1,\"kind\":\"fire\",\"job\":\"a!\",\"trigger\":\"manual\"}", "job",
         "has a character"},
        {"{\"v\":1,\"kind\":\"fire\",\"job\":\"a\"}", "trigger", "missing"},
        {"{\"v\":1,\"kind\":\"fire\",\"job\":\"a\",\"trigger\":\"retry\"}", "trigger",
         "\"retry\" is not how a fire is asked for"},
        {"{\"v\":1,\"kind\":\"fire\",\"job\":\"a\",\"trigger\":\"whenever\"}", "trigger",
         "\"whenever\" is not how"},
        {FIRE(",\"at\":-1"), "at", "-1 is less than 0"},
        {FIRE(",\"base\":\"\""), "base", "not a fire id"},
        {FIRE(",\"shards\":[3,1,3]"), "shards.2", "shard 3 is listed twice"},
        {FIRE(",\"shards\":[20000]"), "shards.0", "not a shard number below 10000"},
        {"{\"v\":1,\"kind\":\"cancel\"}", "name", "missing"},
        {"{\"v\":1,\"kind\":\"cancel\",\"name\":\"../etc\"}", "name", "is not a run id"},
        {"{\"v\":1,\"kind\":\"cancel\",\"name\":\"0123456789abcdef0123456789\"}", "name",
         "is not a run id"},
        {"{\"v\":1,\"kind\":\"output\",\"name\":\"r1\",\"offset\":-1}", "offset",
         "-1 is less than 0"},
        {"{\"v\":1,\"kind\":\"output\",\"name\":\"r1\",\"max\":\"all\"}", "max", "not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = parse(cases[i].json);
        struct coord_request *req = (struct coord_request *)1;
        struct ty_err err;
        int rc = coord_request_from_json(o, &req, &err);
        expect_err(&err, TY_EFORMAT, rc, cases[i].field, cases[i].part);
        assert_null(req);
        json_decref(o);
    }
    json_t *o = json_array();
    struct coord_request *req;
    struct ty_err err;
    assert_int_equal(coord_request_from_json(o, &req, &err), TY_EFORMAT);
    assert_string_equal(err.msg, "request: not a JSON object");
    json_decref(o);
#undef ASSIGN
#undef GOOD_A
#undef A
#undef FIRE
}

/* ---- replies ------------------------------------------------------------------------- */

static void reply_round_trip(const struct coord_reply *in, struct coord_reply *out)
{
    json_t *o = through_bytes(coord_reply_to_json(in));
    struct ty_err err;
    int rc = coord_reply_from_json(o, out, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    json_decref(o);
    assert_int_equal(out->rc, in->rc);
    assert_int_equal(out->spool_seq, in->spool_seq);
    assert_string_equal(out->executor, in->executor);
    assert_int_equal(out->from, in->from);
    assert_int_equal(out->total, in->total);
}

static void reply_free(struct coord_reply *r)
{
    json_decref(r->json);
    free(r->data);
}

static void test_reply_round_trip(void **state)
{
    (void)state;
    /* an answer with JSON */
    struct coord_reply in = {.spool_seq = 981,
                             .json = json_pack("{s:s, s:[{s:s, s:i}]}", "fire_id", "f@1", "runs",
                                               "run_id", "r1", "shard", 0)};
    snprintf(in.executor, sizeof in.executor, "host-a.0badcafe");
    struct coord_reply out;
    reply_round_trip(&in, &out);
    assert_true(json_equal(out.json, in.json));
    assert_null(out.data);
    assert_string_equal(out.err.msg, "");
    reply_free(&out);
    json_decref(in.json);

    /* a refusal: every code comes back as itself, with its message and field */
    for (int code = TY_EINVAL; code >= TY_ECODE_MIN; code--) {
        struct coord_reply e = {.spool_seq = 3};
        e.rc = ty_error(&e.err, code, code == TY_ENOENT ? "run_id" : NULL, -1, 0,
                        "no run \"%s\" (%d)", "r\xc3\xa4", code);
        reply_round_trip(&e, &out);
        assert_int_equal(out.err.code, code);
        assert_string_equal(out.err.msg, e.err.msg);
        assert_string_equal(out.err.field, code == TY_ENOENT ? "run_id" : "");
        assert_int_equal(out.err.pos, -1);
        reply_free(&out);
    }
    /* the body is the API's error body */
    struct coord_reply e = {.rc = TY_ENOENT};
    ty_error(&e.err, TY_ENOENT, "run_id", -1, 0, "gone");
    json_t *o = coord_reply_to_json(&e);
    json_t *want = parse("{\"code\":\"not_found\",\"message\":\"gone\",\"field\":\"run_id\"}");
    assert_true(json_equal(json_object_get(o, "error"), want));
    json_decref(want);
    json_decref(o);
    /* no message: the code's; a message cut inside a character keeps the whole ones */
    e = (struct coord_reply){.rc = TY_EBUSY};
    snprintf(e.err.msg, sizeof e.err.msg, "held by \xc3");
    reply_round_trip(&e, &out);
    assert_string_equal(out.err.msg, "held by ");
    reply_free(&out);
    e = (struct coord_reply){.rc = TY_EBUSY};
    reply_round_trip(&e, &out);
    assert_string_equal(out.err.msg, "busy");
    reply_free(&out);

    /* output: UTF-8 as a string, anything else as base64; both come back byte for byte */
    static const char text[] = "line 1\nzeile 2 \xc3\xa4\n";
    static const char bytes[] = {'o', 'k', '\0', (char)0xff, (char)0xc3, '\n'};
    const struct {
        const char *data;
        size_t len;
        const char *key;
    } outputs[] = {
        {text, sizeof text - 1, "data"}, {bytes, sizeof bytes, "data_b64"}, {"", 0, "data"}};
    for (size_t i = 0; i < 3; i++) {
        struct coord_reply r = {
            .len = outputs[i].len, .from = 4096, .total = 1u << 20, .spool_seq = 5};
        r.data = malloc(outputs[i].len + 1);
        memcpy(r.data, outputs[i].data, outputs[i].len);
        o = coord_reply_to_json(&r);
        assert_non_null(json_object_get(o, outputs[i].key));
        json_decref(o);
        reply_round_trip(&r, &out);
        assert_non_null(out.data);
        assert_int_equal(out.len, outputs[i].len);
        assert_memory_equal(out.data, outputs[i].data, out.len);
        assert_int_equal(out.data[out.len], '\0');
        reply_free(&out);
        free(r.data);
    }
}

static void test_reply_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field, *part;
    } cases[] = {
        {"{}", "v", "missing"},
        {"{\"v\":3}", "v", "reply version 3 is newer"},
        {"{\"v\":1,\"error\":\"no\"}", "error", "not an object"},
        {"{\"v\":1,\"error\":{\"message\":\"m\"}}", "error.code", "missing"},
        {"{\"v\":1,\"error\":{\"code\":\"nope\",\"message\":\"m\"}}", "error.code",
         "unknown error code \"nope\""},
        {"{\"v\":1,\"error\":{\"code\":\"busy\"}}", "error.message", "missing"},
        {"{\"v\":1,\"error\":{\"code\":\"busy\",\"message\":\"m\",\"field\":3}}", "error.field",
         "not a string"},
        {"{\"v\":1,\"spool_seq\":-1}", "spool_seq", "-1 is less than 0"},
        {"{\"v\":1,\"from\":\"0\"}", "from", "not an integer"},
        {"{\"v\":1,\"total\":-2}", "total", "-2 is less than 0"},
        {"{\"v\":1,\"executor\":\"a/b\"}", "executor", "is not an id"},
        {"{\"v\":1,\"data\":5}", "data", "not a string"},
        {"{\"v\":1,\"data_b64\":\"!!!!\"}", "data_b64", "not base64"},
        {"{\"v\":1,\"data_b64\":[]}", "data_b64", "not a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = parse(cases[i].json);
        struct coord_reply r;
        struct ty_err err;
        int rc = coord_reply_from_json(o, &r, &err);
        expect_err(&err, TY_EFORMAT, rc, cases[i].field, cases[i].part);
        assert_null(r.json);
        assert_null(r.data);
        assert_int_equal(r.rc, 0);
        json_decref(o);
    }
    /* nothing half-made is left when a late field fails */
    json_t *o = parse("{\"v\":1,\"json\":{\"a\":1},\"data\":\"x\",\"error\":{\"code\":\"busy\","
                      "\"message\":\"m\"},\"executor\":\"bad id\"}");
    struct coord_reply r;
    struct ty_err err;
    expect_err(&err, TY_EFORMAT, coord_reply_from_json(o, &r, &err), "executor", "not an id");
    assert_null(r.json);
    assert_null(r.data);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err.msg, "");
    json_decref(o);
    o = json_string("x");
    assert_int_equal(coord_reply_from_json(o, &r, &err), TY_EFORMAT);
    assert_string_equal(err.msg, "reply: not a JSON object");
    json_decref(o);
}

/* ---- registrations ------------------------------------------------------------------- */

static void fill_member(struct coord_member_info *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "host-a.0badcafe");
    m->host = strdup("host-a.example.org");
    m->url = strdup("http://127.0.0.1:40123");
    m->version = strdup("0.1.0");
    m->pid = 4242;
    struct ty_err err;
    assert_int_equal(coord_labels_parse("zone=eu-1,tier=gold,rack=r_12.b", m, &err), 0);
    m->domains = calloc(2, sizeof *m->domains);
    m->domains[0] = strdup("bank/settlement");
    m->domains[1] = strdup("ops");
    m->n_domains = 2;
    m->capacity = 64;
    m->running = 3;
    m->cpu = 1.25;
    m->mem_bytes = 123456789;
    m->load1 = 0.5;
    m->started_ms = 1764000000000;
    m->updated_ms = 1764000005000;
    m->applied_gen = 17;
    m->through = 1764000004;
    m->fenced = true;
}

static void test_member_round_trip(void **state)
{
    (void)state;
    struct coord_member_info in, out;
    fill_member(&in);
    json_t *o = through_bytes(coord_member_info_to_json(&in));
    struct ty_err err;
    int rc = coord_member_info_from_json(o, &out, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    json_decref(o);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.host, in.host);
    assert_string_equal(out.url, in.url);
    assert_string_equal(out.version, in.version);
    assert_int_equal(out.pid, 4242);
    assert_int_equal(out.n_labels, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(out.labels[i].key, in.labels[i].key);
        assert_string_equal(out.labels[i].value, in.labels[i].value);
    }
    assert_int_equal(out.n_domains, 2);
    assert_string_equal(out.domains[0], "bank/settlement");
    assert_string_equal(out.domains[1], "ops");
    assert_int_equal(out.capacity, 64);
    assert_int_equal(out.running, 3);
    assert_true(out.cpu == 1.25);
    assert_int_equal(out.mem_bytes, 123456789);
    assert_true(out.load1 == 0.5);
    assert_int_equal(out.clock_offset_ms, 0);
    assert_int_equal(out.started_ms, 1764000000000);
    assert_int_equal(out.updated_ms, 1764000005000);
    assert_int_equal(out.applied_gen, 17);
    assert_int_equal(out.through, 1764000004);
    assert_true(out.fenced);
    coord_member_info_clear(&out);
    assert_null(out.host);
    assert_int_equal(out.n_labels, 0);

    /* none of either: every domain, no labels */
    coord_member_info_clear(&in);
    snprintf(in.id, sizeof in.id, "e1");
    in.host = strdup("h");
    in.url = strdup("http://[::1]:1");
    in.version = strdup("0.1.0");
    o = through_bytes(coord_member_info_to_json(&in));
    assert_int_equal(coord_member_info_from_json(o, &out, &err), 0);
    assert_int_equal(out.n_labels, 0);
    assert_null(out.labels);
    assert_int_equal(out.n_domains, 0);
    assert_null(out.domains);
    json_decref(o);
    coord_member_info_clear(&out);
    coord_member_info_clear(&in);
}

static void test_member_malformed(void **state)
{
    (void)state;
#define M(x)                                                                                       \
    "{\"v\":1,\"id\":\"e1\",\"host\":\"h\",\"url\":\"u\",\"version\":\"1\",\"capacity\":4,"        \
    "\"started_ms\":1,\"updated_ms\":2" x "}"
    static const struct {
        const char *json, *field, *part;
    } cases[] = {
        {"{\"id\":\"e1\"}", "v", "missing"},
        {"{\"v\":9,\"id\":\"e1\"}", "v", "registration version 9 is newer"},
        {"{\"v\":1,\"host\":\"h\"}", "id", "missing"},
        {"{\"v\":1,\"id\":\"\"}", "id", "is not an id"},
        {"{\"v\":1,\"id\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
         "id", "is not an id (1-63"},
        {"{\"v\":1,\"id\":\"e 1\"}", "id", "\"e 1\" is not an id"},
        {"{\"v\":1,\"id\":\"e1\",\"url\":\"u\",\"version\":\"1\"}", "host", "missing"},
        {"{\"v\":1,\"id\":\"e1\",\"host\":\"h\",\"version\":\"1\"}", "url", "missing"},
        {"{\"v\":1,\"id\":\"e1\",\"host\":\"h\",\"url\":\"u\",\"version\":\"1\",\"started_ms\":1,"
         "\"updated_ms\":2}",
         "capacity", "missing"},
        {M(",\"capacity\":-1"), "capacity", "-1 is less than 0"},
        {M(",\"running\":4294967296"), "running", "4294967296 is more than 4294967295"},
        {M(",\"pid\":\"1\""), "pid", "not an integer"},
        {M(",\"cpu\":-0.5"), "cpu", "-0.5 is not a number 0 or more"},
        {M(",\"load1\":\"high\""), "load1", "not a number"},
        {M(",\"mem_bytes\":-1"), "mem_bytes", "-1 is less than 0"},
        {M(",\"applied_gen\":-1"), "applied_gen", "-1 is less than 0"},
        {M(",\"through\":-1"), "through", "-1 is less than 0"},
        {M(",\"fenced\":1"), "fenced", "not true or false"},
        {M(",\"labels\":[]"), "labels", "not an object"},
        {M(",\"labels\":{\"zone\":\"eu 1\"}"), "labels.zone", "not a label value"},
        {M(",\"labels\":{\"zone\":5}"), "labels.zone", "not a label value"},
        {M(",\"labels\":{\"a=b\":\"x\"}"), "labels.a=b", "not a label key"},
        {M(",\"domains\":{}"), "domains", "not an array"},
        {M(",\"domains\":[\"ops\",7]"), "domains.1", "not a string"},
        {M(",\"domains\":[\"ops\",\"a//b\"]"), "domains.1", "a//b"},
        {M(",\"domains\":[\"/a\"]"), "domains.0", "/a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = parse(cases[i].json);
        struct coord_member_info m;
        struct ty_err err;
        int rc = coord_member_info_from_json(o, &m, &err);
        expect_err(&err, TY_EFORMAT, rc, cases[i].field, cases[i].part);
        /* nothing is left behind, and clearing it again is harmless */
        assert_null(m.host);
        assert_null(m.labels);
        assert_null(m.domains);
        coord_member_info_clear(&m);
        json_decref(o);
    }
    /* limits on how many */
    json_t *o = parse(M(""));
    json_t *labels = json_object(), *domains = json_array();
    for (int i = 0; i <= COORD_LABELS_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(labels, k, json_string("v"));
    }
    for (int i = 0; i <= COORD_DOMAINS_MAX; i++)
        json_array_append_new(domains, json_string("ops"));
    json_object_set_new(o, "labels", labels);
    struct coord_member_info m;
    struct ty_err err;
    expect_err(&err, TY_EFORMAT, coord_member_info_from_json(o, &m, &err), "labels",
               "33 labels; at most 32");
    json_object_del(o, "labels");
    json_object_set_new(o, "domains", domains);
    expect_err(&err, TY_EFORMAT, coord_member_info_from_json(o, &m, &err), "domains",
               "65 domains; at most 64");
    json_decref(o);
#undef M
}

static void test_labels_parse(void **state)
{
    (void)state;
    struct coord_member_info m;
    memset(&m, 0, sizeof m);
    struct ty_err err;
    assert_int_equal(coord_labels_parse("zone=eu-1,tier=gold", &m, &err), 0);
    assert_int_equal(m.n_labels, 2);
    assert_string_equal(m.labels[0].key, "zone");
    assert_string_equal(m.labels[0].value, "eu-1");
    assert_string_equal(m.labels[1].key, "tier");
    assert_string_equal(m.labels[1].value, "gold");

    static const struct {
        const char *text, *part;
    } bad[] = {
        {"zone", "entry 1 \"zone\": expected key=value"},
        {"zone=eu,tier", "entry 2 \"tier\": expected key=value"},
        {"=eu", "entry 1 \"=eu\": the key is not 1-63"},
        {"zone=", "entry 1 \"zone=\": the value is not 1-63"},
        {"zone=eu=1", "entry 1 \"zone=eu=1\": the value is not"},
        {"my zone=eu", "entry 1 \"my zone=eu\": the key is not"},
        {"zone=eu 1", "the value is not"},
        {"zone=\xc3\xa4", "the value is not"},
        {"zone=eu,", "entry 2 \"\": expected key=value"},
        {",zone=eu", "entry 1 \"\": expected key=value"},
        {"a=1,,b=2", "entry 2 \"\": expected key=value"},
        {"zone=eu,tier=a,zone=us", "entry 3 \"zone=us\": the key is given twice"},
        {"k123456789012345678901234567890123456789012345678901234567890123=v",
         "the key is not 1-63"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = coord_labels_parse(bad[i].text, &m, &err);
        expect_err(&err, TY_EINVAL, rc, "labels", bad[i].part);
        /* the labels held are kept */
        assert_int_equal(m.n_labels, 2);
        assert_string_equal(m.labels[1].value, "gold");
    }
    /* too many: 33 entries */
    char many[33 * 8] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sk%d=v", i ? "," : "", i);
    expect_err(&err, TY_EINVAL, coord_labels_parse(many, &m, &err), "labels",
               "33 entries; at most 32");
    many[strrchr(many, ',') - many] = '\0';
    assert_int_equal(coord_labels_parse(many, &m, &err), 0);
    assert_int_equal(m.n_labels, 32);
    /* 63 bytes is fine; "" replaces them with none */
    assert_int_equal(
        coord_labels_parse("k12345678901234567890123456789012345678901234567890123456789012=v", &m,
                           &err),
        0);
    assert_int_equal(m.n_labels, 1);
    assert_int_equal(coord_labels_parse("", &m, &err), 0);
    assert_int_equal(m.n_labels, 0);
    assert_null(m.labels);
    coord_member_info_clear(&m);
}

/* ---- placement heads ----------------------------------------------------------------- */

static void test_head(void **state)
{
    (void)state;
    struct coord_placement_head in = {.gen = 91,
                                      .chunks = 3,
                                      .jobs = 41000,
                                      .at_ms = 1764000000123,
                                      .session = 72057594037927937,
                                      .held = -1};
    snprintf(in.leader, sizeof in.leader, "server-1");
    struct strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "old text");
    /* no parts: refused (every head has its base) */
    assert_int_equal(coord_placement_head_encode(&in, &sb), TY_EINVAL);
    in.parts[0] = (struct coord_placement_part){.gen = 80, .chunks = 2, .bytes = 1500000};
    in.parts[1] = (struct coord_placement_part){.gen = 91, .chunks = 1, .bytes = 300};
    in.n_parts = 2;
    assert_int_equal(coord_placement_head_encode(&in, &sb), 0);
    assert_string_equal(sb_str(&sb), "{\"v\":1,\"gen\":91,\"chunks\":3,\"jobs\":41000,"
                                     "\"leader\":\"server-1\",\"at\":1764000000123,"
                                     "\"session\":72057594037927937,"
                                     "\"parts\":[[80,2,1500000],[91,1,300]]}");
    struct coord_placement_head out;
    struct ty_err err;
    assert_int_equal(coord_placement_head_decode(sb.buf, sb.len, &out, &err), 0);
    assert_int_equal(out.gen, 91);
    assert_int_equal(out.chunks, 3);
    assert_int_equal(out.jobs, 41000);
    assert_string_equal(out.leader, "server-1");
    assert_int_equal(out.at_ms, 1764000000123);
    assert_int_equal(out.session, 72057594037927937);
    assert_int_equal(out.n_parts, 2);
    assert_int_equal(out.parts[0].gen, 80);
    assert_int_equal(out.parts[0].chunks, 2);
    assert_int_equal(out.parts[0].bytes, 1500000);
    assert_int_equal(out.parts[1].gen, 91);
    /* extends: a head whose parts begin with the applied ones */
    struct coord_placement_head base = out;
    base.n_parts = 1;
    assert_true(coord_placement_head_extends(&base, &out));
    assert_true(coord_placement_head_extends(&out, &out));
    assert_false(coord_placement_head_extends(&out, &base));
    struct coord_placement_head none = {0};
    assert_false(coord_placement_head_extends(&none, &out)); /* nothing applied: read it all */
    struct coord_placement_head compacted = out;
    compacted.parts[0].gen = 92;
    compacted.n_parts = 1;
    assert_false(coord_placement_head_extends(&base, &compacted));
    assert_int_equal(out.held, -1); /* not said */
    in.held = 40000;
    assert_int_equal(coord_placement_head_encode(&in, &sb), 0);
    assert_non_null(strstr(sb_str(&sb), "\"held\":40000,\"parts\""));
    assert_int_equal(coord_placement_head_decode(sb.buf, sb.len, &out, &err), 0);
    assert_int_equal(out.held, 40000);
    in.held = -1;
    /* a head without parts (written before deltas) is one base */
    static const char old[] = "{\"v\":1,\"gen\":7,\"chunks\":2,\"jobs\":9,\"leader\":\"s1\","
                              "\"at\":1,\"session\":0}";
    assert_int_equal(coord_placement_head_decode(old, strlen(old), &out, &err), 0);
    assert_int_equal(out.n_parts, 1);
    assert_int_equal(out.parts[0].gen, 7);
    assert_int_equal(out.parts[0].chunks, 2);
    in.n_parts = 1;
    in.parts[0] = (struct coord_placement_part){.gen = 91, .chunks = 1, .bytes = 20};
    /* no jobs at all: one empty chunk */
    in.jobs = 0;
    in.chunks = 1;
    assert_int_equal(coord_placement_head_encode(&in, &sb), 0);
    assert_int_equal(coord_placement_head_decode(sb.buf, sb.len, &out, &err), 0);
    assert_int_equal(out.jobs, 0);
    /* a leader no reader would take is not written */
    snprintf(in.leader, sizeof in.leader, "server 1");
    assert_int_equal(coord_placement_head_encode(&in, &sb), TY_EINVAL);
    sb_free(&sb);

#define H(x) "{\"v\":1,\"gen\":2,\"chunks\":1,\"jobs\":5,\"leader\":\"s1\"" x "}"
#define P(x) H(",\"at\":1,\"session\":0,\"parts\":" x)
    static const struct {
        const char *text, *field, *part;
    } bad[] = {
        {"{\"v\":1,\"gen\":", "", "placement head: not JSON"},
        {"[1]", "", "placement head: not a JSON object"},
        {"{\"gen\":1}", "v", "missing"},
        {"{\"v\":2,\"gen\":1}", "v", "placement head version 2 is newer"},
        {"{\"v\":1,\"chunks\":1,\"jobs\":5,\"leader\":\"s1\",\"at\":1,\"session\":0}", "gen",
         "missing"},
        {"{\"v\":1,\"gen\":0,\"chunks\":1,\"jobs\":5,\"leader\":\"s1\",\"at\":1,\"session\":0}",
         "gen", "0 is less than 1"},
        {"{\"v\":1,\"gen\":2,\"chunks\":0,\"jobs\":5,\"leader\":\"s1\",\"at\":1,\"session\":0}",
         "chunks", "0 is less than 1"},
        {"{\"v\":1,\"gen\":2,\"chunks\":6,\"jobs\":5,\"leader\":\"s1\",\"at\":1,\"session\":0}",
         "chunks", "6 chunks for 5 placements"},
        {"{\"v\":1,\"gen\":2,\"chunks\":1,\"jobs\":-5,\"leader\":\"s1\",\"at\":1,\"session\":0}",
         "jobs", "-5 is less than 0"},
        {"{\"v\":1,\"gen\":2,\"chunks\":1,\"jobs\":5,\"leader\":\"s/1\",\"at\":1}", "leader",
         "is not an id"},
        {H(""), "at", "missing"},
        {H(",\"at\":-1"), "at", "-1 is less than 0"},
        {H(",\"at\":1.0"), "at", "not an integer"},
        {H(",\"at\":1"), "session", "missing"},
        {H(",\"at\":1,\"session\":-1"), "session", "-1 is less than 0"},
        {H(",\"at\":1,\"session\":0,\"held\":-2"), "held", "-2 is less than 0"},
        {P("[]"), "parts", "expected an array of 1 to 16 parts"},
        {P("{}"), "parts", "expected an array of 1 to 16 parts"},
        {P("[[1,1]]"), "parts.0", "expected [generation, chunks, bytes]"},
        {P("[[1,1,\"9\"]]"), "parts.0", "expected [generation, chunks, bytes]"},
        {P("[[3,1,9]]"), "parts.0", "generation 3: parts go up from 1 to the head's 2"},
        {P("[[0,1,9]]"), "parts.0", "generation 0"},
        {P("[[2,1,9],[2,1,9]]"), "parts.1", "generation 2: parts go up"},
        {P("[[1,0,9]]"), "parts.0", "0 chunks of 9 bytes"},
        {P("[[1,1,-9]]"), "parts.0", "1 chunks of -9 bytes"},
        {P("[[1,1,9],[2,1,9]]"), "parts", "2 chunks in parts, 1 in the head"},
        {P("[[1,1,9],[2,1,9],[3,1,9],[4,1,9],[5,1,9],[6,1,9],[7,1,9],[8,1,9],[9,1,9],[10,1,9],"
           "[11,1,9],[12,1,9],[13,1,9],[14,1,9],[15,1,9],[16,1,9],[17,1,9]]"),
         "parts", "expected an array of 1 to 16 parts"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = coord_placement_head_decode(bad[i].text, strlen(bad[i].text), &out, &err);
        if (bad[i].field[0] == '\0') {
            assert_int_equal(rc, TY_EFORMAT);
            assert_non_null(strstr(err.msg, bad[i].part));
        } else {
            expect_err(&err, TY_EFORMAT, rc, bad[i].field, bad[i].part);
        }
        assert_int_equal(out.gen, 0);
    }
#undef P
#undef H
}

/* ---- placements ---------------------------------------------------------------------- */

struct seen {
    const struct coord_placement *want; /* expected in order, or NULL */
    size_t n, calls, bad_calls, stop_at;
    size_t bad_index[16];
    struct ty_err bad_err[16];
    char names[16][JOB_NAME_MAX + 1];
};

static bool same(const struct coord_placement *a, const struct coord_placement *b)
{
    return strcmp(a->job, b->job) == 0 && a->drop == b->drop && a->version == b->version &&
           a->n_shards == b->n_shards && a->job_shards == b->job_shards &&
           a->resume_after == b->resume_after &&
           (a->n_shards == 0 ||
            memcmp(a->shards, b->shards, sizeof *a->shards * a->n_shards) == 0) &&
           ((a->from == NULL && b->from == NULL) ||
            (a->from != NULL && b->from != NULL && strcmp(a->from, b->from) == 0)) &&
           (a->n_shards > 0 || b->shards == NULL);
}

static int on_placement(void *arg, const struct coord_placement *p)
{
    struct seen *s = arg;
    if (s->want != NULL) {
        assert_true(s->calls < s->n);
        if (!same(&s->want[s->calls], p))
            fail_msg("placement %zu differs (job \"%s\")", s->calls, p->job);
    } else if (s->calls < 16) {
        snprintf(s->names[s->calls], sizeof s->names[0], "%s", p->job);
    }
    s->calls++;
    return s->stop_at != 0 && s->calls == s->stop_at ? 7 : 0;
}

static void on_bad(void *arg, size_t index, const struct ty_err *err)
{
    struct seen *s = arg;
    if (s->bad_calls < 16) {
        s->bad_index[s->bad_calls] = index;
        s->bad_err[s->bad_calls] = *err;
    }
    s->bad_calls++;
}

static void free_chunks(struct strbuf *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_free(&c[i]);
    free(c);
}

/* n placements of every shape: all shards, some, from, resume_after. */
static struct coord_placement *make_placements(size_t n)
{
    struct coord_placement *p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "job-%06zu.x", i);
        p[i].job = strdup(name);
        if (i % 13 == 5) { /* a delta's drop: the name alone */
            p[i].drop = true;
            continue;
        }
        p[i].version = (int64_t)(i * 7 + 1);
        p[i].job_shards = (uint32_t)(i % 5 == 0 ? 1 : 1 + i % 40);
        if (i % 3 == 1 && p[i].job_shards > 1) {
            p[i].n_shards = (p[i].job_shards + 1) / 2;
            p[i].shards = malloc(p[i].n_shards * sizeof *p[i].shards);
            for (uint32_t k = 0; k < p[i].n_shards; k++)
                p[i].shards[k] = k * 2;
        }
        if (i % 4 == 2)
            p[i].resume_after = 1764000000 + (int64_t)i;
        if (i % 11 == 3)
            p[i].from = strdup("host-b.deadbeef");
    }
    return p;
}

static void free_placements(struct coord_placement *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        coord_placement_clear(&p[i]);
    free(p);
}

static void decode_all(struct strbuf *c, size_t nc, struct seen *s)
{
    for (size_t i = 0; i < nc; i++) {
        struct ty_err err;
        int rc = coord_placements_decode(c[i].buf, c[i].len, on_placement, on_bad, s, &err);
        if (rc != 0)
            fail_msg("chunk %zu: %s", i, err.msg);
    }
}

static void test_placements_chunked(void **state)
{
    (void)state;
    /* none: one empty chunk, which reads as nothing */
    struct strbuf *c;
    size_t nc;
    struct ty_err err;
    assert_int_equal(coord_placements_encode(NULL, 0, 1 << 20, &c, &nc, &err), 0);
    assert_int_equal(nc, 1);
    assert_string_equal(sb_str(&c[0]), "{\"v\":1,\"jobs\":[]}");
    struct seen s = {0};
    decode_all(c, nc, &s);
    assert_int_equal(s.calls, 0);
    assert_int_equal(s.bad_calls, 0);
    free_chunks(c, nc);

    /* the compact form, exactly */
    struct coord_placement one[2] = {{.job = "nightly",
                                      .version = 4,
                                      .shards = (uint32_t[]){0, 3},
                                      .n_shards = 2,
                                      .job_shards = 4,
                                      .resume_after = 1764000000,
                                      .from = "host-a"},
                                     {.job = "hourly", .version = 1, .job_shards = 1}};
    assert_int_equal(coord_placements_encode(one, 2, 1 << 20, &c, &nc, &err), 0);
    assert_int_equal(nc, 1);
    assert_string_equal(
        sb_str(&c[0]), "{\"v\":1,\"jobs\":[{\"j\":\"nightly\",\"ver\":4,\"s\":[0,3],\"n\":4,"
                       "\"r\":1764000000,\"f\":\"host-a\"},{\"j\":\"hourly\",\"ver\":1,\"n\":1}]}");
    free_chunks(c, nc);

    /* sizes: every chunk within the limit, and none could have taken the next entry */
    size_t n = 2000, max = 4096;
    struct coord_placement *p = make_placements(n);
    assert_int_equal(coord_placements_encode(p, n, max, &c, &nc, &err), 0);
    assert_true(nc > 10);
    size_t total = 0;
    for (size_t i = 0; i < nc; i++) {
        assert_true(c[i].len <= max);
        assert_false(sb_failed(&c[i]));
        total += c[i].len;
        if (i + 1 < nc) {
            /* the next chunk's first entry did not fit here */
            const char *next = c[i + 1].buf + strlen("{\"v\":1,\"jobs\":[");
            const char *end = strstr(next, "},{");
            size_t entry = end != NULL ? (size_t)(end - next) + 1 : c[i + 1].len - 17;
            assert_true(c[i].len + 1 + entry > max);
        }
    }
    assert_true(nc <= total / (max / 2) + 1);
    s = (struct seen){.want = p, .n = n};
    decode_all(c, nc, &s);
    assert_int_equal(s.calls, n);
    assert_int_equal(s.bad_calls, 0);
    free_chunks(c, nc);

    /* one placement that alone is larger than a chunk is refused, naming it */
    free(p[7].shards);
    p[7].job_shards = JOB_SHARDS_MAX;
    p[7].n_shards = JOB_SHARDS_MAX;
    p[7].shards = malloc(JOB_SHARDS_MAX * sizeof *p[7].shards);
    for (uint32_t k = 0; k < JOB_SHARDS_MAX; k++)
        p[7].shards[k] = k;
    c = (struct strbuf *)1;
    expect_err(&err, TY_EINVAL, coord_placements_encode(p, n, max, &c, &nc, &err), "jobs.7",
               "the placement of job \"job-000007.x\" is");
    assert_null(c);
    assert_int_equal(nc, 0);
    /* ... and fits in a chunk as big as ZooKeeper's */
    assert_int_equal(coord_placements_encode(p, n, 1 << 20, &c, &nc, &err), 0);
    s = (struct seen){.want = p, .n = n};
    decode_all(c, nc, &s);
    assert_int_equal(s.calls, n);
    free_chunks(c, nc);
    free_placements(p, n);

    /* a limit that holds not even the frame */
    expect_err(&err, TY_EINVAL, coord_placements_encode(NULL, 0, 10, &c, &nc, &err), "max_bytes",
               "cannot hold even an empty chunk");
}

static void test_placements_100k(void **state)
{
    (void)state;
    size_t n = 100000, max = 1 << 20;
    struct coord_placement *p = make_placements(n);
    struct strbuf *c;
    size_t nc;
    struct ty_err err;
    assert_int_equal(coord_placements_encode(p, n, max, &c, &nc, &err), 0);
    assert_true(nc >= 3);
    for (size_t i = 0; i < nc; i++)
        assert_true(c[i].len <= max);
    struct seen s = {.want = p, .n = n};
    decode_all(c, nc, &s);
    assert_int_equal(s.calls, n);
    assert_int_equal(s.bad_calls, 0);
    print_message("100000 placements in %zu chunks of at most %zu bytes\n", nc, max);
    free_chunks(c, nc);
    free_placements(p, n);
}

static void test_placements_malformed_chunk(void **state)
{
    (void)state;
    static const struct {
        const char *text, *field, *part;
    } bad[] = {
        {"", "", "placement chunk: not JSON"},
        {"{\"v\":1,\"jobs\":[", "", "placement chunk: not JSON"},
        {"[{\"j\":\"a\"}]", "", "placement chunk: not a JSON object"},
        {"{\"jobs\":[]}", "v", "missing"},
        {"{\"v\":\"1\",\"jobs\":[]}", "v", "not an integer"},
        {"{\"v\":2,\"jobs\":[{\"j\":\"a\",\"ver\":1,\"n\":1}]}", "v",
         "placement chunk version 2 is newer than this build reads (1)"},
        {"{\"v\":1}", "jobs", "missing"},
        {"{\"v\":1,\"jobs\":{}}", "jobs", "not an array"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct seen s = {0};
        struct ty_err err;
        int rc = coord_placements_decode(bad[i].text, strlen(bad[i].text), on_placement, on_bad, &s,
                                         &err);
        if (bad[i].field[0] == '\0') {
            assert_int_equal(rc, TY_EFORMAT);
            assert_non_null(strstr(err.msg, bad[i].part));
        } else {
            expect_err(&err, TY_EFORMAT, rc, bad[i].field, bad[i].part);
        }
        assert_int_equal(s.calls, 0);
        assert_int_equal(s.bad_calls, 0);
    }
}

static void test_placements_bad_entries_skipped(void **state)
{
    (void)state;
    static const char chunk[] =
        "{\"v\":1,\"jobs\":["
        "{\"j\":\"first\",\"ver\":1,\"n\":2},"               /* 0 good */
        "{\"j\":\"bad name\",\"ver\":1,\"n\":2},"            /* 1 */
        "{\"j\":\"a\",\"ver\":1,\"n\":4,\"s\":[0,4]},"       /* 2 shard not below n */
        "{\"j\":\"a\",\"ver\":1,\"n\":4,\"s\":[2,1]},"       /* 3 unsorted */
        "{\"j\":\"a\",\"ver\":1,\"n\":4,\"s\":[1,1]},"       /* 4 twice */
        "{\"j\":\"a\",\"ver\":1,\"n\":4,\"s\":[]},"          /* 5 empty */
        "{\"j\":\"a\",\"ver\":1,\"n\":0},"                   /* 6 no shards */
        "{\"j\":\"a\",\"ver\":1,\"n\":10001},"               /* 7 too many */
        "{\"j\":\"a\",\"ver\":-1,\"n\":1},"                  /* 8 */
        "{\"j\":\"a\",\"ver\":1,\"n\":1,\"r\":-5},"          /* 9 */
        "{\"j\":\"a\",\"ver\":1,\"n\":1,\"f\":\"bad id!\"}," /* 10 */
        "7,"                                                 /* 11 */
        "{\"ver\":1,\"n\":1},"                               /* 12 */
        "{\"j\":\"a\",\"n\":1},"                             /* 13 */
        "{\"j\":\"a\",\"ver\":1,\"n\":3,\"s\":[\"1\"]},"     /* 14 */
        "{\"j\":\"a\",\"d\":2},"                             /* 15 */
        "{\"j\":\"a\",\"d\":0},"                             /* 16 no drop: needs ver */
        "{\"j\":\"last\",\"ver\":2,\"n\":3,\"s\":[0,2],\"f\":\"e1\",\"r\":9}" /* 17 good */
        "]}";
    static const struct {
        const char *field, *part;
    } want[] = {
        {"jobs.1.j", "\"bad name\" has a character other than"},
        {"jobs.2.s.1", "4 is not a shard number below 4"},
        {"jobs.3.s.1", "shard 1 after 2; shards must be ascending"},
        {"jobs.4.s.1", "shard 1 is listed twice"},
        {"jobs.5.s", "empty; to mean every shard, leave it out"},
        {"jobs.6.n", "0 is less than 1"},
        {"jobs.7.n", "10001 is more than 10000"},
        {"jobs.8.ver", "-1 is less than 0"},
        {"jobs.9.r", "-5 is less than 0"},
        {"jobs.10.f", "\"bad id!\" is not an id"},
        {"jobs.11", "not an object"},
        {"jobs.12.j", "missing"},
        {"jobs.13.ver", "missing"},
        {"jobs.14.s.0", "not a shard number"},
        {"jobs.15.d", "2 is more than 1"},
        {"jobs.16.ver", "missing"},
    };
    struct seen s = {0};
    struct ty_err err;
    assert_int_equal(
        coord_placements_decode(chunk, sizeof chunk - 1, on_placement, on_bad, &s, &err), 0);
    assert_int_equal(s.calls, 2);
    assert_string_equal(s.names[0], "first");
    assert_string_equal(s.names[1], "last");
    assert_int_equal(s.bad_calls, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(s.bad_index[i], i + 1);
        expect_err(&s.bad_err[i], TY_EFORMAT, s.bad_err[i].code, want[i].field, want[i].part);
    }
    /* the good ones as they were */
    s = (struct seen){0};
    struct coord_placement last = {.job = "last",
                                   .version = 2,
                                   .shards = (uint32_t[]){0, 2},
                                   .n_shards = 2,
                                   .job_shards = 3,
                                   .resume_after = 9,
                                   .from = "e1"};
    struct coord_placement first = {.job = "first", .version = 1, .job_shards = 2};
    struct coord_placement both[2] = {first, last};
    s.want = both;
    s.n = 2;
    assert_int_equal(coord_placements_decode(chunk, sizeof chunk - 1, on_placement, NULL, &s, &err),
                     0);
    assert_int_equal(s.calls, 2);

    /* a callback's non-zero stops the reading and is returned */
    s = (struct seen){.stop_at = 1};
    assert_int_equal(
        coord_placements_decode(chunk, sizeof chunk - 1, on_placement, on_bad, &s, &err), 7);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.bad_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_round_trip),
        cmocka_unit_test(test_other_kinds_round_trip),
        cmocka_unit_test(test_request_malformed),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_member_round_trip),
        cmocka_unit_test(test_member_malformed),
        cmocka_unit_test(test_labels_parse),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_placements_chunked),
        cmocka_unit_test(test_placements_100k),
        cmocka_unit_test(test_placements_malformed_chunk),
        cmocka_unit_test(test_placements_bad_entries_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
