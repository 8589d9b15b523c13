/*
 * test_coord.c - the coordination interface: the results' wire form (every field there
 * and back, bytes that are not UTF-8, and a refusal naming the field for each kind of bad
 * input), and coord_local carrying requests to a member and answers back on the caller's
 * loop, also when the member answers from another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "coord/coord.h"

static struct coord_result sample_run(void)
{
    struct coord_result r = {
        .kind = COORD_RESULT_RUN,
        .seq = 42,
        .run = {.run_id = "00112233aabbccdd",
                .fire_id = "nightly@1764000000#3",
                .job = "nightly",
                .domain = "bank/settlement",
                .shard = 3,
                .attempt = 2,
                .trigger = STORE_TRIGGER_RETRY,
                .status = STORE_RUN_FAILED,
                .scheduled_at = 1764000000,
                .queued_at_ms = 1764000000100,
                .started_at_ms = 1764000000200,
                .ended_at_ms = 1764000003000,
                .pid = 4242,
                .pid_start = 987654,
                .boot_id = "b00t",
                .executor = "host-0badcafe",
                .epoch = 7,
                .exit_code = 3,
                .signal = 0,
                .output = "line 1\nzeile 2 \xc3\xa4\n",
                .output_len = 18,
                .error = NULL},
        .phase = COORD_PHASE_ENDED,
        .settled = true,
        .downstream = true,
        .fire_shards = 4,
        .job_level = 5,
    };
    return r;
}

static struct coord_result round_trip(const struct coord_result *in, json_t **keep,
                                      struct strbuf *scratch)
{
    json_t *o = coord_result_to_json(in);
    assert_non_null(o);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *keep = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(*keep);
    struct coord_result out;
    struct ty_err err;
    assert_int_equal(coord_result_from_json(*keep, &out, scratch, &err), 0);
    return out;
}

static void test_run_round_trip(void **state)
{
    (void)state;
    struct coord_result in = sample_run();
    json_t *keep;
    struct strbuf scratch;
    sb_init(&scratch);
    struct coord_result out = round_trip(&in, &keep, &scratch);
    assert_int_equal(out.kind, COORD_RESULT_RUN);
    assert_int_equal(out.seq, 42);
    assert_string_equal(out.run.run_id, in.run.run_id);
    assert_string_equal(out.run.fire_id, in.run.fire_id);
    assert_string_equal(out.run.job, "nightly");
    assert_string_equal(out.run.domain, "bank/settlement");
    assert_int_equal(out.run.shard, 3);
    assert_int_equal(out.run.attempt, 2);
    assert_int_equal(out.run.trigger, STORE_TRIGGER_RETRY);
    assert_int_equal(out.run.status, STORE_RUN_FAILED);
    assert_int_equal(out.run.scheduled_at, 1764000000);
    assert_int_equal(out.run.queued_at_ms, 1764000000100);
    assert_int_equal(out.run.started_at_ms, 1764000000200);
    assert_int_equal(out.run.ended_at_ms, 1764000003000);
    assert_int_equal(out.run.pid, 4242);
    assert_int_equal(out.run.pid_start, 987654);
    assert_string_equal(out.run.boot_id, "b00t");
    assert_string_equal(out.run.executor, "host-0badcafe");
    assert_int_equal(out.run.epoch, 7);
    assert_int_equal(out.run.exit_code, 3);
    assert_null(out.run.error);
    assert_int_equal(out.run.output_len, in.run.output_len);
    assert_memory_equal(out.run.output, in.run.output, in.run.output_len);
    assert_int_equal(out.phase, COORD_PHASE_ENDED);
    assert_true(out.settled);
    assert_true(out.downstream);
    assert_int_equal(out.fire_shards, 4);
    assert_int_equal(out.job_level, 5);
    json_decref(keep);
    sb_free(&scratch);
}

static void test_binary_output(void **state)
{
    (void)state;
    struct coord_result in = sample_run();
    static const char bytes[] = {'a', '\0', 'b', (char)0xff, (char)0xc3, 'x'};
    in.run.output = bytes;
    in.run.output_len = sizeof bytes;
    json_t *o = coord_result_to_json(&in);
    assert_null(json_object_get(o, "output"));
    assert_non_null(json_object_get(o, "output_b64"));
    json_decref(o);
    json_t *keep;
    struct strbuf scratch;
    sb_init(&scratch);
    struct coord_result out = round_trip(&in, &keep, &scratch);
    assert_int_equal(out.run.output_len, sizeof bytes);
    assert_memory_equal(out.run.output, bytes, sizeof bytes);
    json_decref(keep);
    sb_free(&scratch);
}

static void test_skip_and_alarm(void **state)
{
    (void)state;
    struct coord_result k = {
        .kind = COORD_RESULT_SKIP,
        .seq = 9,
        .skip = {"j@1764000000#*", "j", "d", -1, 1764000000, 1764000000500, STORE_SKIP_MISFIRE,
                 "3 fire(s) were late", STORE_TRIGGER_SCHEDULE},
        .settled = true,
        .fire_shards = 2,
    };
    json_t *keep;
    struct strbuf scratch;
    sb_init(&scratch);
    struct coord_result out = round_trip(&k, &keep, &scratch);
    assert_int_equal(out.kind, COORD_RESULT_SKIP);
    assert_string_equal(out.skip.fire_id, "j@1764000000#*");
    assert_int_equal(out.skip.shard, -1);
    assert_int_equal(out.skip.reason, STORE_SKIP_MISFIRE);
    assert_string_equal(out.skip.detail, "3 fire(s) were late");
    assert_int_equal(out.skip.recorded_at_ms, 1764000000500);
    assert_int_equal(out.fire_shards, 2);
    json_decref(keep);

    struct coord_result a = sample_run();
    a.kind = COORD_RESULT_ALARM;
    a.alarm_on = true;
    a.alarm_s = 30;
    out = round_trip(&a, &keep, &scratch);
    assert_int_equal(out.kind, COORD_RESULT_ALARM);
    assert_true(out.alarm_on);
    assert_int_equal(out.alarm_s, 30);
    assert_string_equal(out.run.run_id, a.run.run_id);
    assert_int_equal(out.run.started_at_ms, a.run.started_at_ms);
    json_decref(keep);
    sb_free(&scratch);
}

/* Every malformed input is refused with TY_EFORMAT, the message naming the field. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"[]", NULL},
        {"{\"seq\": 1}", "k"},
        {"{\"k\": \"nope\", \"seq\": 1}", "k"},
        {"{\"k\": \"run\"}", "seq"},
        {"{\"k\": \"run\", \"seq\": 0}", "seq"},
        {"{\"k\": \"run\", \"seq\": \"1\"}", "seq"},
        {"{\"k\": \"skip\", \"seq\": 1, \"fire_id\": \"f\", \"job\": \"j\", \"shard\": 0, "
         "\"scheduled_at\": 1, \"recorded_at_ms\": 1, \"reason\": \"weather\", "
         "\"trigger\": \"schedule\"}",
         "reason"},
        {"{\"k\": \"run\", \"seq\": 1, \"run_id\": \"r\", \"fire_id\": \"f\", \"job\": \"j\", "
         "\"shard\": 0, \"attempt\": 0, \"trigger\": \"manual\", \"scheduled_at\": 1, "
         "\"status\": \"queued\", \"phase\": \"queued\"}",
         "attempt"},
        {"{\"k\": \"run\", \"seq\": 1, \"run_id\": \"r\", \"fire_id\": \"f\", \"job\": \"j\", "
         "\"shard\": 0, \"attempt\": 1, \"trigger\": \"manual\", \"scheduled_at\": 1, "
         "\"status\": \"dancing\", \"phase\": \"queued\"}",
         "status"},
        {"{\"k\": \"run\", \"seq\": 1, \"run_id\": \"r\", \"fire_id\": \"f\", \"job\": \"j\", "
         "\"shard\": 0, \"attempt\": 1, \"trigger\": \"manual\", \"scheduled_at\": 1, "
         "\"status\": \"queued\", \"phase\": \"queued\", \"output_b64\": \"!!\"}",
         "output_b64"},
        {"{\"k\": \"run\", \"seq\": 1, \"run_id\": \"r\", \"fire_id\": \"f\", \"job\": 5, "
         "\"shard\": 0, \"attempt\": 1, \"trigger\": \"manual\", \"scheduled_at\": 1, "
         "\"status\": \"queued\", \"phase\": \"queued\"}",
         "job"},
        {"{\"k\": \"alarm\", \"seq\": 1, \"run_id\": \"r\", \"fire_id\": \"f\", \"job\": \"j\", "
         "\"shard\": 0, \"attempt\": 1, \"trigger\": \"sometimes\", \"scheduled_at\": 1}",
         "trigger"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = json_loads(cases[i].json, 0, NULL);
        assert_non_null(o);
        struct coord_result r;
        struct ty_err err;
        struct strbuf scratch;
        sb_init(&scratch);
        assert_int_equal(coord_result_from_json(o, &r, &scratch, &err), TY_EFORMAT);
        if (cases[i].field != NULL) {
            assert_string_equal(err.field, cases[i].field);
            assert_non_null(strstr(err.msg, cases[i].field));
        }
        json_decref(o);
        sb_free(&scratch);
    }
    /* a string with a NUL inside would end early as a C string: refused, not cut */
    struct coord_result in = sample_run();
    json_t *o = coord_result_to_json(&in);
    json_object_set_new(o, "job", json_stringn("night\0ly", 8));
    struct coord_result r;
    struct ty_err err;
    struct strbuf scratch;
    sb_init(&scratch);
    assert_int_equal(coord_result_from_json(o, &r, &scratch, &err), TY_EFORMAT);
    assert_string_equal(err.field, "job");
    assert_string_equal(err.msg, "result job: holds a NUL character");
    json_decref(o);
    sb_free(&scratch);
}

/* ---- coord_local ------------------------------------------------------------------- */

struct member {
    pthread_t thread;
    bool threaded;
    int seen;
};

static void *answer_later(void *arg)
{
    struct coord_request *req = arg;
    req->reply.json = json_pack("{s:s}", "from", "thread");
    req->reply.spool_seq = 77;
    req->done(req);
    return NULL;
}

static int submit(void *arg, struct coord_request *req)
{
    struct member *m = arg;
    m->seen++;
    if (req->kind == COORD_CANCEL)
        return TY_EUNAVAIL; /* cannot take it at all */
    if (req->kind == COORD_STATUS) {
        req->reply.json = json_pack("{s:s}", "from", "caller");
        req->done(req); /* answered at once, still delivered on the loop */
        return 0;
    }
    m->threaded = true;
    return pthread_create(&m->thread, NULL, answer_later, req) == 0 ? 0 : TY_EIO;
}

struct got {
    int calls;
    char from[16];
    uint64_t seq;
    char executor[COORD_ID_MAX];
};

static void on_answer(void *arg, struct coord_reply *reply)
{
    struct got *g = arg;
    g->calls++;
    snprintf(g->from, sizeof g->from, "%s",
             json_string_value(json_object_get(reply->json, "from")));
    g->seq = reply->spool_seq;
    snprintf(g->executor, sizeof g->executor, "%s", reply->executor);
}

static void test_local(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct member mem = {0};
    struct coord_member cm = {.submit = submit, .arg = &mem};
    snprintf(cm.id, sizeof cm.id, "exec-1");
    struct coord *c;
    struct ty_err err;
    assert_int_equal(coord_local_new(&loop, &cm, &c, &err), 0);

    struct got a = {0}, b = {0}, x = {0};
    assert_int_equal(coord_send(c, "", coord_request_new(COORD_STATUS), on_answer, &a), 0);
    assert_int_equal(a.calls, 0); /* never before the loop turns */
    assert_int_equal(coord_send(c, "exec-1", coord_request_new(COORD_FIRE), on_answer, &b), 0);
    /* a member that refuses: an error at once and no callback */
    assert_int_equal(coord_send(c, "", coord_request_new(COORD_CANCEL), on_answer, &x),
                     TY_EUNAVAIL);
    /* an executor that is not there */
    assert_int_equal(coord_send(c, "exec-2", coord_request_new(COORD_STATUS), on_answer, &x),
                     TY_ENOENT);
    pthread_join(mem.thread, NULL);
    while (a.calls == 0 || b.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.from, "caller");
    assert_string_equal(a.executor, "exec-1");
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.from, "thread");
    assert_int_equal(b.seq, 77);
    assert_int_equal(x.calls, 0);
    assert_int_equal(mem.seen, 3);
    coord_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_round_trip), cmocka_unit_test(test_binary_output),
        cmocka_unit_test(test_skip_and_alarm), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
