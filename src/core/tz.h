/*
 * tz.h - time-zone rules as an immutable table built from TZif bytes (RFC 8536).
 *
 * Pure: bytes in, table out; no file access, no clock, no globals.  A table holds
 * every transition of the file plus the transitions its POSIX TZ footer implies, up
 * to TZ_TABLE_END, so lookups and the cron engine never evaluate rules on the hot path.
 * After tz_parse returns, a table is never modified: any number of threads may read it.
 */
#ifndef TZ_H
#define TZ_H

#include <stddef.h>
#include <stdint.h>

#include "ty_err.h"

/* 2201-01-01T00:00:00Z: transitions are precomputed up to (not including) this instant,
 * which covers every local time up to the cron horizon 2199-12-31T23:59:59 in any zone. */
#define TZ_TABLE_END INT64_C(7289654400)

#define TZ_NAME_MAX 64
#define TZ_ABBR_MAX 16

struct tz_zone; /* opaque, immutable */

/* What a zone says about one instant. */
struct tz_info {
    int32_t utoff;    /* seconds east of UTC */
    int isdst;        /* 1 during daylight-saving time */
    const char *abbr; /* "CEST", "+0545"; borrowed from the zone, lives as long as it */
};

/*
 * One stretch of the timeline over which the UTC offset is constant: [start, end).
 * Adjacent spans always differ in offset (transitions that change only the
 * abbreviation or the DST flag are merged away).  start is INT64_MIN for the first
 * span, end is INT64_MAX for the last.  prev_utoff is the offset of the span before
 * (equal to utoff for the first span).
 */
struct tz_span {
    int64_t start;
    int64_t end;
    int32_t utoff;
    int32_t prev_utoff;
};

/*
 * Build a zone table from the bytes of a TZif file (versions 1 to 4).  name is copied
 * (truncated to TZ_NAME_MAX-1).  Version 1 files are read from their 32-bit block;
 * later versions from the 64-bit block, and their footer extends the table to
 * TZ_TABLE_END and answers tz_lookup beyond it.
 * On success *out owns a new table; free it with tz_free.  Fails with TY_EFORMAT (and
 * a message saying what is wrong and at which byte) on corrupt or truncated input, on
 * leap-second ("right/") files, whose timestamps are not POSIX time, and when the footer
 * disagrees with the last transition (RFC 8536 §3.3); TY_ENOMEM when allocation fails;
 * *out is then untouched.
 */
int tz_parse(const char *name, const uint8_t *buf, size_t len, struct tz_zone **out,
             struct ty_err *err);

/*
 * Build a zone from a POSIX TZ rule string alone ("UTC0", "CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+0545>-5:45"), including the TZif v3 extensions (hours -167..167 in rule times).
 * Same ownership and failures as tz_parse (TY_EINVAL for a malformed string, including a
 * daylight-saving name without start and end rules, whose POSIX default is
 * implementation-defined).
 */
int tz_from_posix(const char *name, const char *rule, struct tz_zone **out, struct ty_err *err);

/* Free a table from tz_parse or tz_from_posix.  NULL is allowed. */
void tz_free(struct tz_zone *z);

/* The name given at build time.  Borrowed. */
const char *tz_name(const struct tz_zone *z);

/* Offset, DST flag and abbreviation in force at instant t (any int64).  Never fails. */
void tz_lookup(const struct tz_zone *z, int64_t t, struct tz_info *out);

/* Number of spans (at least 1). */
uint32_t tz_span_count(const struct tz_zone *z);

/* Index of the span containing instant t.  O(log n), no allocation. */
uint32_t tz_span_find(const struct tz_zone *z, int64_t t);

/* Span number idx (idx < tz_span_count).  No allocation. */
void tz_span_get(const struct tz_zone *z, uint32_t idx, struct tz_span *out);

/* The largest UTC offset of any span, early local mean times included: an upper bound for
 * searches on local time, not necessarily a tight one. */
int32_t tz_max_utoff(const struct tz_zone *z);

/* Bytes the table occupies (for reporting memory use). */
size_t tz_table_bytes(const struct tz_zone *z);

#endif
