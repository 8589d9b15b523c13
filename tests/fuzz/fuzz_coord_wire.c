/*
 * fuzz_coord_wire.c - libFuzzer target for what a server and an executor send each other
 * (coord_wire.h): a request's JSON (coord_request_from_json) when the first byte is even, a
 * reply's (coord_reply_from_json) when it is odd; the rest is the JSON text.
 *
 * Properties: no crash, hang or leak on any bytes.  What reads is written again and reads
 * back to the same JSON (the form is lossless, so a request cannot change on its way).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a's JSON and b's are the same; frees both. */
static void same_json(json_t *a, json_t *b)
{
    if (a == NULL || b == NULL || !json_equal(a, b))
        abort();
    json_decref(a);
    json_decref(b);
}

static void check_request(const json_t *o)
{
    struct coord_request *req, *again;
    struct ty_err err;
    if (coord_request_from_json(o, &req, &err) != 0) {
        if (req != NULL || (err.code != TY_EFORMAT && err.code != TY_ENOMEM))
            abort();
        return;
    }
    json_t *w = coord_request_to_json(req);
    if (w == NULL || coord_request_from_json(w, &again, &err) != 0 || again->kind != req->kind)
        abort();
    same_json(w, coord_request_to_json(again));
    coord_request_free(req);
    coord_request_free(again);
}

static void check_reply(const json_t *o)
{
    struct coord_reply r, again;
    struct ty_err err;
    if (coord_reply_from_json(o, &r, &err) != 0) {
        if (r.json != NULL || r.data != NULL)
            abort();
        return;
    }
    json_t *w = coord_reply_to_json(&r);
    if (w == NULL || coord_reply_from_json(w, &again, &err) != 0 || again.rc != r.rc ||
        again.len != r.len || (r.len > 0 && memcmp(again.data, r.data, r.len) != 0))
        abort();
    same_json(w, coord_reply_to_json(&again));
    json_decref(r.json);
    free(r.data);
    json_decref(again.json);
    free(again.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    json_t *o = json_loadb((const char *)data + 1, size - 1, JSON_ALLOW_NUL, NULL);
    if (o == NULL)
        return 0;
    if (data[0] % 2 == 0)
        check_request(o);
    else
        check_reply(o);
    json_decref(o);
    return 0;
}
