/*
 * fuzz_tzif.c - libFuzzer target for the TZif reader (RFC 8536), the only parser that
 * reads files written by someone else.
 *
 * Properties: no crash, hang or leak on any bytes; an accepted table answers lookups at
 * any instant, and its spans tile the timeline with adjacent spans differing in offset.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tz_zone *z = NULL;
    struct ty_err err;
    if (tz_parse("fuzz", data, size, &z, &err) != 0) {
        if (z != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    static const int64_t probes[] = {INT64_MIN,    -1000000000000, 0,          63072000,
                                     1711846800,   4102444800,     7289654399, 7289654400,
                                     100000000000, INT64_MAX};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        struct tz_info ti;
        tz_lookup(z, probes[i], &ti);
        if (ti.abbr == NULL)
            abort();
        uint32_t k = tz_span_find(z, probes[i]);
        struct tz_span sp;
        tz_span_get(z, k, &sp);
        if (probes[i] < sp.start || (probes[i] >= sp.end && sp.end != INT64_MAX))
            abort();
    }
    uint32_t n = tz_span_count(z);
    struct tz_span prev, cur;
    tz_span_get(z, 0, &prev);
    if (prev.start != INT64_MIN)
        abort();
    for (uint32_t i = 1; i < n; i++) {
        tz_span_get(z, i, &cur);
        if (cur.start != prev.end || cur.utoff == prev.utoff || cur.prev_utoff != prev.utoff ||
            cur.utoff > tz_max_utoff(z))
            abort();
        prev = cur;
    }
    if (prev.end != INT64_MAX)
        abort();
    tz_free(z);
    return 0;
}
