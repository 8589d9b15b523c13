/*
 * cli_batch.c - many job changes sent as few requests: POST /api/v1/jobs:batch.
 *
 * `apply`, `import crontab` and `job add -f` of a file with many jobs hand their changes
 * here; they go to the server in chunks of at most CLI_BATCH_ITEMS items and
 * CLI_BATCH_BYTES bytes of JSON (the server refuses bodies over 1 MiB), and each change's
 * answer comes back to the caller one by one, in order, in the form a single request
 * would have given (its status, or its error with code, field and message).  A refused
 * change is the caller's to report; trouble with the server (unreachable, its store
 * failing) stops the sending: what was not sent gets no answer.
 *
 * A handful of changes (fewer than CLI_BATCH_MIN) go as the single requests they stand
 * for - POST /jobs, PUT and DELETE /jobs/{name} with If-Match - which answer the same,
 * cost no more at that size, read plainly in the server's request log, and work with a
 * server older than the batch request.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLI_BATCH_ITEMS 1000                 /* the server's limit per request */
#define CLI_BATCH_BYTES ((size_t)960 * 1024) /* under the server's 1 MiB, for the envelope */
#define CLI_BATCH_MIN   8                    /* fewer changes go one request each */

/* The serialised size of v (compact), or 0 when out of memory. */
static size_t json_size(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    size_t n = s ? strlen(s) : 0;
    free(s);
    return n;
}

/* Hand the answer to change `at` of the chunk (one item of the server's reply). */
static void deliver(const struct cli_batch *b, size_t at, const json_t *r)
{
    struct ty_err err;
    ty_err_clear(&err);
    long status = (long)json_integer_value(json_object_get(r, "status"));
    const json_t *e = json_object_get(r, "error");
    int rc = 0;
    if (e != NULL || status >= 300 || status < 200) {
        rc = client_code_for(status, json_string_value(json_object_get(e, "code")));
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *field = json_string_value(json_object_get(e, "field"));
        ty_error(&err, rc, field, -1, 0, "%s", msg ? msg : "refused by the server");
    }
    b->result(b->arg, at, rc, &err, json_integer_value(json_object_get(r, "version")));
}

/* Send changes [first, first + n) (their items in `items`) as one request. */
static int send_chunk(struct cli_api *api, const struct cli_batch *b, size_t first, json_t *items,
                      struct ty_err *err)
{
    size_t n = json_array_size(items);
    json_t *body = json_pack("{s:O}", "items", items);
    json_t *resp = NULL;
    ty_err_clear(err);
    int rc = body ? client_call(&api->client, "POST", "/api/v1/jobs:batch", body, NULL, NULL, &resp,
                                NULL, err)
                  : ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    json_decref(body);
    const json_t *results = json_object_get(resp, "items");
    if (rc == 0 && json_array_size(results) != n)
        rc = ty_error(err, TY_EFORMAT, NULL, -1, 0,
                      "the server answered %zu of the %zu changes of a batch",
                      json_array_size(results), n);
    if (rc == 0) {
        for (size_t k = 0; k < n; k++)
            deliver(b, first + k, json_array_get(results, k));
    } else if (cli_exit_for(rc) == CLI_USAGE) {
        /* the request itself was refused (413, 400): every change of it is */
        for (size_t k = 0; k < n; k++)
            b->result(b->arg, first + k, rc, err, 0);
        rc = 0;
    }
    json_decref(resp);
    return rc;
}

/* Send change i (its batch item) as its single request. */
static int send_single(struct cli_api *api, const struct cli_batch *b, size_t i, const json_t *item,
                       struct ty_err *err)
{
    const char *op = json_string_value(json_object_get(item, "op"));
    const json_t *job = json_object_get(item, "job");
    const char *name = json_string_value(json_object_get(job ? job : item, "name"));
    json_int_t base = json_integer_value(json_object_get(item, "base_version"));
    bool create = op != NULL && strcmp(op, "create") == 0;
    struct strbuf path;
    sb_init(&path);
    sb_adds(&path, "/api/v1/jobs");
    if (!create)
        client_path_add(&path, name ? name : "");
    char if_match[32];
    snprintf(if_match, sizeof if_match, "%" JSON_INTEGER_FORMAT, base);
    json_t *resp = NULL;
    ty_err_clear(err);
    int rc = sb_failed(&path) ? ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory")
                              : client_call(&api->client,
                                            create ? "POST"
                                            : job  ? "PUT"
                                                   : "DELETE",
                                            sb_str(&path), job, base > 0 ? if_match : NULL, NULL,
                                            &resp, NULL, err);
    sb_free(&path);
    if (rc == 0 || cli_exit_for(rc) == CLI_USAGE) {
        b->result(b->arg, i, rc, err, json_integer_value(json_object_get(resp, "version")));
        rc = 0;
    }
    json_decref(resp);
    return rc;
}

int cli_batch_send(struct cli_api *api, const struct cli_batch *b)
{
    json_t *items = json_array();
    size_t first = 0, bytes = 0;
    struct ty_err err;
    int rc = items ? 0 : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    for (size_t i = 0; rc == 0 && b->n < CLI_BATCH_MIN && i < b->n; i++) {
        json_t *it = b->item(b->arg, i);
        rc = it ? send_single(api, b, i, it, &err)
                : ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        json_decref(it);
    }
    for (size_t i = 0; rc == 0 && b->n >= CLI_BATCH_MIN && i <= b->n; i++) {
        json_t *it = i < b->n ? b->item(b->arg, i) : NULL;
        size_t size = it ? json_size(it) + 1 : 0;
        if (i < b->n && (it == NULL || size == 1)) {
            json_decref(it);
            rc = ty_error(&err, TY_ENOMEM, NULL, -1, 0, "out of memory");
            break;
        }
        size_t have = json_array_size(items);
        bool full = have == CLI_BATCH_ITEMS || (have > 0 && bytes + size > CLI_BATCH_BYTES);
        if (have > 0 && (it == NULL || full)) {
            rc = send_chunk(api, b, first, items, &err);
            json_array_clear(items);
            first = i;
            bytes = 0;
        }
        if (it != NULL && rc == 0) {
            json_array_append(items, it);
            bytes += size;
        }
        json_decref(it);
    }
    json_decref(items);
    if (rc != 0) {
        cli_error("%s", err.msg);
        return cli_exit_for(rc);
    }
    return 0;
}
