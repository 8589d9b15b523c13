/*
 * test_cron_vectors.c - every line of the conformance vectors (TETHYS_CRON_VECTORS,
 * shared/conformance/cron/vectors.tsv) through the engine directly.
 *
 * A vector whose expected UTC offsets disagree with this machine's zone data (as read by
 * our own tz reader) is reported as skipped, not hidden and not failed: the vectors were
 * computed with one tz release, and a later release may change a zone's rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/civil.h"
#include "core/cron.h"
#include "tzdb/tzdb.h"

#define MAX_TIMES 32

/* Offset written at the end of an RFC 3339 time ("Z" or "+hh:mm"). */
static int32_t written_offset(const char *s)
{
    size_t n = strlen(s);
    if (n > 0 && (s[n - 1] == 'Z' || s[n - 1] == 'z'))
        return 0;
    if (n < 6)
        return INT32_MIN;
    const char *o = s + n - 6;
    int32_t v = ((o[1] - '0') * 10 + (o[2] - '0')) * 3600 + ((o[4] - '0') * 10 + (o[5] - '0')) * 60;
    return o[0] == '-' ? -v : v;
}

static int split(char *line, char **f, int max, char sep)
{
    int n = 0;
    f[n++] = line;
    for (char *c = line; *c != '\0'; c++) {
        if (*c == sep) {
            *c = '\0';
            if (n == max)
                return -1;
            f[n++] = c + 1;
        }
    }
    return n;
}

static void test_vectors(void **state)
{
    (void)state;
    const char *path = getenv("TETHYS_CRON_VECTORS");
    if (path == NULL)
        path = CRON_VECTORS_DEFAULT; /* the file CMake found at configure time */
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, passed = 0, failed = 0, skipped = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *f[6] = {0};
        if (split(line, f, 6, '\t') != 6 || f[5] == NULL) {
            fail_msg("%s:%d: malformed vector line", path, lineno);
            return;
        }
        const char *expr = f[0], *zone = f[1], *from = f[2], *status = f[4];
        int count = (int)strtol(f[3], NULL, 10);
        char *times[MAX_TIMES];
        int ntimes = f[5][0] ? split(f[5], times, MAX_TIMES, ',') : 0;
        assert_true(ntimes >= 0 && ntimes <= count);

        struct cron_expr e;
        struct ty_err err;
        int rc = cron_parse(expr, &e, &err);
        if (strcmp(status, "INVALID") == 0) {
            if (rc == TY_EINVAL && err.msg[0] != '\0') {
                passed++;
            } else {
                failed++;
                printf("FAIL line %d: \"%s\" accepted, expected INVALID\n", lineno, expr);
            }
            continue;
        }
        if (rc != 0) {
            failed++;
            printf("FAIL line %d: \"%s\" rejected: %s\n", lineno, expr, err.msg);
            continue;
        }
        const struct tz_zone *z;
        if (tzdb_get(zone, &z, &err) != 0) {
            skipped++;
            printf("SKIP line %d: zone %s not in this machine's tz data: %s\n", lineno, zone,
                   err.msg);
            continue;
        }
        int64_t want[MAX_TIMES];
        int differs = 0;
        for (int i = 0; i < ntimes; i++) {
            if (civil_parse_rfc3339(times[i], "expected", &want[i], &err) != 0)
                fail_msg("%s:%d: %s", path, lineno, err.msg);
            struct tz_info ti;
            tz_lookup(z, want[i], &ti);
            if (ti.utoff != written_offset(times[i]))
                differs = 1;
        }
        if (differs) {
            skipped++;
            printf("SKIP line %d: %s: this machine's tz data differs from the vector's\n", lineno,
                   zone);
            continue;
        }
        int64_t t;
        if (civil_parse_rfc3339(from, "from", &t, &err) != 0)
            fail_msg("%s:%d: %s", path, lineno, err.msg);
        int ok = 1, got = 0;
        char buf[CIVIL_RFC3339_MAX] = "";
        for (; got < count; got++) {
            if (cron_next(&e, z, t, &t) != 0)
                break;
            struct tz_info ti;
            tz_lookup(z, t, &ti);
            civil_format_rfc3339(t, ti.utoff, buf);
            if (got >= ntimes || t != want[got] || ti.utoff != written_offset(times[got])) {
                ok = 0;
                break;
            }
        }
        if (ok && got != ntimes)
            ok = 0;
        if (ok) {
            passed++;
        } else {
            failed++;
            printf("FAIL line %d: \"%s\" %s from %s: time #%d is %s, expected %s\n", lineno, expr,
                   zone, from, got + 1, got < count ? buf : "(none)",
                   got < ntimes ? times[got] : "(none)");
        }
    }
    free(line);
    fclose(fp);
    printf("cron vectors (%s): %d passed, %d failed, %d skipped\n", path, passed, failed, skipped);
    assert_int_equal(failed, 0);
    assert_true(passed > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tzdb_shutdown();
    return rc;
}
