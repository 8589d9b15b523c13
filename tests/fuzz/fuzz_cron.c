/*
 * fuzz_cron.c - libFuzzer target for the cron parser and the next-fire search.
 *
 * Properties checked on every input: no crash, hang or leak (the sanitizers and the
 * fuzzer's timeout see to those); a rejected expression comes with a message and a
 * location inside the input; an accepted one formats to text that parses back to the
 * same schedule, and its fire times strictly increase.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "tzdb/tzdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[512];
    if (size >= sizeof text)
        size = sizeof text - 1;
    memcpy(text, data, size);
    text[size] = '\0';

    struct cron_expr e;
    struct ty_err err;
    ty_err_clear(&err);
    if (cron_parse(text, &e, &err) != 0) {
        if (err.msg[0] == '\0' || err.pos > (int)strlen(text) ||
            (err.pos >= 0 && err.pos + err.len > (int)strlen(text))) {
            fprintf(stderr, "bad error record for \"%s\": pos %d len %d msg \"%s\"\n", text,
                    err.pos, err.len, err.msg);
            abort();
        }
        return 0;
    }

    struct strbuf sb;
    sb_init(&sb);
    cron_format(&e, &sb);
    struct cron_expr back;
    if (sb_failed(&sb) || cron_parse(sb_str(&sb), &back, &err) != 0 || !cron_equal(&e, &back)) {
        fprintf(stderr, "\"%s\" formats as \"%s\", which does not parse back the same (%s)\n", text,
                sb_str(&sb), err.msg);
        abort();
    }
    sb_free(&sb);

    static const char *const zones[] = {"UTC", "Europe/Berlin", "Australia/Lord_Howe"};
    static const int64_t starts[] = {63072000, 1711846800, 4102444800};
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        const struct tz_zone *tz;
        if (tzdb_get(zones[z], &tz, NULL) != 0)
            abort();
        for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
            int64_t t = starts[s], next;
            for (int i = 0; i < 3 && cron_next(&e, tz, t, &next) == 0; i++) {
                if (next <= t)
                    abort();
                t = next;
            }
        }
    }
    return 0;
}
