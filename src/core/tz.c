/*
 * tz.c - TZif files (RFC 8536) and POSIX TZ rules compiled into immutable tables.
 *
 * A TZif file lists transitions up to some year and ends with a POSIX TZ string (the
 * "footer") that says what happens after the last one.  Evaluating that rule means
 * calendar arithmetic for two or three years around the instant in question, which is
 * cheap once but not on the cron engine's path, where the same zone is asked about the
 * same few years millions of times.  So the footer is evaluated once, here: its
 * transitions are appended to the file's up to TZ_TABLE_END (2201-01-01Z), the first
 * instant no local time up to the cron horizon (2199-12-31T23:59:59 local, anywhere)
 * can reach.  Lookups inside that range are a binary search over one sorted array.
 * A table is up to a few hundred file transitions plus two a year until 2200: at most
 * 13 KB (Europe/Jersey), 1.7 MB for all 447 zones of tzdata 2025b, and one table
 * serves every job in its zone.
 *
 * The cron engine does not care about abbreviations or the DST flag, only about where
 * the UTC offset changes (that is where local time skips or repeats).  Transitions that
 * change only the name (Moscow's MSK->EEST in 1991) or no-op transitions that zic
 * writes at 2^31-1 would make it stop and look for nothing, so the table carries a
 * second, smaller array: the starts of the stretches of constant offset ("spans"),
 * with their offsets, found by the same binary search and read in O(1).
 *
 * How the footer is applied.  RFC 8536 says it governs every instant from the last
 * transition on (all instants when there are none), and that it must agree with the
 * last transition's type, which is checked.  A rule is evaluated by "last event wins":
 * DST starts and ends of the years around t are computed, and the latest one not after
 * t decides.  That needs no special cases for the southern hemisphere (start after
 * end), for Dublin's winter "DST", for rule times beyond midnight (TZif v3 allows
 * -167..167 hours, so an event may fall in the neighbouring year), or for all-year DST
 * ("EST5EDT,0/0,J365/25", where one year's end coincides with the next one's start;
 * ties go to the later year, so DST never lapses).  Outside the tabulated range the
 * same evaluation answers tz_lookup directly: the Gregorian calendar repeats every 400
 * years, weekdays included, so t is first reduced into 1970..2369 and no int64 can
 * overflow the arithmetic.  Where the rule governs time before 1900 (files without
 * transitions or whose last one is older, and tz_from_posix zones) it is tabulated
 * from 1900 only, well before 1972, the earliest instant the cron engine accepts;
 * before that tz_lookup evaluates the rule, while the span view extends its first span
 * back to INT64_MIN.
 *
 * Identical local time types are merged when the table is built (zic repeats them),
 * so a type index identifies a (offset, DST flag, abbreviation) triple and "did the
 * type change" is an integer comparison.  Everything lives in a single allocation.
 */
#include "tz.h"

#include <stdlib.h>
#include <string.h>

#include "civil.h"

#define HEADER_LEN        44
#define MAX_TYPES         256 /* transition type indices are one byte */
#define UTOFF_MIN         (-89999)
#define UTOFF_MAX         93599
#define DEFAULT_RULE_SECS (2 * 3600)
#define RULE_HOURS_MAX    167

/* 1900-01-01T00:00:00Z: rule-only stretches of the timeline are tabulated from here. */
#define RULE_TAB_START INT64_C(-2208988800)
/* 400 Gregorian years (146097 days, a whole number of weeks). */
#define GREGORIAN_CYCLE INT64_C(12622780800)

struct ttype {
    int32_t utoff;
    uint32_t abbr; /* offset of the NUL-terminated abbreviation in the zone's abbrs */
    uint8_t isdst;
};

enum date_kind { DATE_JULIAN1, DATE_JULIAN0, DATE_MONTH_WEEK };

/* A POSIX rule date: Jn (1-365, no Feb 29), n (0-365) or Mm.w.d, plus a time of day. */
struct rule_date {
    enum date_kind kind;
    int day;  /* Jn / n: the day number; Mm.w.d: the weekday d, 0 = Sunday */
    int mon;  /* Mm.w.d only */
    int week; /* Mm.w.d only; 5 = the last such weekday */
    int32_t secs;
};

struct posix_tz {
    char std_abbr[TZ_ABBR_MAX];
    char dst_abbr[TZ_ABBR_MAX];
    int32_t std_utoff;
    int32_t dst_utoff;
    int has_dst;
    struct rule_date start; /* DST starts; a time of day on the standard-time clock */
    struct rule_date end;   /* DST ends; a time of day on the DST clock */
};

struct tz_zone {
    char name[TZ_NAME_MAX];
    size_t bytes;
    uint32_t ntrans;
    uint32_t nspans;
    uint16_t first_type; /* in force before the first transition */
    uint16_t std_type;   /* the footer's types (when has_rule) */
    uint16_t dst_type;
    int has_rule;
    int32_t max_utoff;
    int64_t rule_from; /* the footer governs [rule_from, +inf) ... */
    int64_t tab_from;  /* ... and the table holds it on [tab_from, TZ_TABLE_END) */
    struct posix_tz rule;
    int64_t *at;
    uint16_t *tt;
    struct ttype *types;
    char *abbrs;
    int64_t *span_start;
    int32_t *span_utoff;
};

/* ---- small helpers ---------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get64(const uint8_t *p)
{
    uint64_t v = (uint64_t)get32(p) << 32 | get32(p + 4);
    /* two's complement without relying on implementation-defined conversion */
    return v <= INT64_MAX ? (int64_t)v : -(int64_t)(~v) - 1;
}

static int32_t get32s(const uint8_t *p)
{
    uint32_t v = get32(p);
    return v <= INT32_MAX ? (int32_t)v : -(int32_t)(~v) - 1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int clamp_pos(size_t pos)
{
    return pos > INT32_MAX ? INT32_MAX : (int)pos;
}

/* ---- POSIX TZ strings --------------------------------------------------------------- */

struct cursor {
    const char *s;
    size_t n;
    size_t p;
    const char *what; /* why parsing stopped, at p */
};

static int peek(const struct cursor *c)
{
    return c->p < c->n ? (unsigned char)c->s[c->p] : -1;
}

static int fail_at(struct cursor *c, size_t p, const char *what)
{
    c->p = p;
    c->what = what;
    return -1;
}

static int parse_abbr(struct cursor *c, char out[TZ_ABBR_MAX])
{
    size_t start = c->p, from, len;
    if (peek(c) == '<') {
        /* quoted: letters, digits, '+' and '-', so numeric names like <+0545> work */
        from = ++c->p;
        while (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-')
            c->p++;
        if (peek(c) != '>')
            return fail_at(c, c->p, "quoted abbreviation not closed by '>'");
        len = c->p - from;
        c->p++;
    } else {
        from = c->p;
        while (is_alpha(peek(c)))
            c->p++;
        len = c->p - from;
        if (len == 0)
            return fail_at(c, start, "expected a time zone abbreviation");
    }
    if (len < 3)
        return fail_at(c, start, "abbreviation shorter than 3 characters");
    if (len >= TZ_ABBR_MAX)
        return fail_at(c, start, "abbreviation longer than 15 characters");
    memcpy(out, c->s + from, len);
    out[len] = '\0';
    return 0;
}

/* Digits as a number, saturating at 9999 so that long digit runs cannot overflow. */
static int parse_uint(struct cursor *c, int *out)
{
    if (!is_digit(peek(c)))
        return -1;
    int v = 0;
    while (is_digit(peek(c))) {
        v = v * 10 + (peek(c) - '0');
        if (v > 9999)
            v = 9999;
        c->p++;
    }
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] as seconds (the sign applied), hours at most max_hours. */
static int parse_hms(struct cursor *c, int max_hours, const char *what, int32_t *out)
{
    size_t start = c->p;
    int sign = 1, h, m = 0, s = 0;
    if (peek(c) == '+' || peek(c) == '-') {
        sign = peek(c) == '-' ? -1 : 1;
        c->p++;
    }
    if (parse_uint(c, &h) != 0)
        return fail_at(c, c->p, what);
    if (h > max_hours)
        return fail_at(c, start,
                       max_hours == 24 ? "offset hours out of range 0-24"
                                       : "rule time hours out of range -167..167");
    if (peek(c) == ':') {
        c->p++;
        size_t mp = c->p;
        if (parse_uint(c, &m) != 0 || m > 59)
            return fail_at(c, mp, "minutes missing or out of range 0-59");
        if (peek(c) == ':') {
            c->p++;
            size_t sp = c->p;
            if (parse_uint(c, &s) != 0 || s > 59)
                return fail_at(c, sp, "seconds missing or out of range 0-59");
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int parse_date(struct cursor *c, struct rule_date *d)
{
    size_t start = c->p;
    int v;
    if (peek(c) == 'J') {
        c->p++;
        if (parse_uint(c, &v) != 0 || v < 1 || v > 365)
            return fail_at(c, start, "Julian day Jn out of range 1-365");
        d->kind = DATE_JULIAN1;
        d->day = v;
    } else if (is_digit(peek(c))) {
        if (parse_uint(c, &v) != 0 || v > 365)
            return fail_at(c, start, "zero-based day n out of range 0-365");
        d->kind = DATE_JULIAN0;
        d->day = v;
    } else if (peek(c) == 'M') {
        c->p++;
        size_t p = c->p;
        if (parse_uint(c, &d->mon) != 0 || d->mon < 1 || d->mon > 12)
            return fail_at(c, p, "month out of range 1-12 in Mm.w.d");
        if (peek(c) != '.')
            return fail_at(c, c->p, "expected '.' in Mm.w.d");
        p = ++c->p;
        if (parse_uint(c, &d->week) != 0 || d->week < 1 || d->week > 5)
            return fail_at(c, p, "week out of range 1-5 in Mm.w.d");
        if (peek(c) != '.')
            return fail_at(c, c->p, "expected '.' in Mm.w.d");
        p = ++c->p;
        if (parse_uint(c, &d->day) != 0 || d->day > 6)
            return fail_at(c, p, "day of week out of range 0-6 in Mm.w.d");
        d->kind = DATE_MONTH_WEEK;
    } else {
        return fail_at(c, start, "expected a rule date (Jn, n or Mm.w.d)");
    }
    d->secs = DEFAULT_RULE_SECS;
    if (peek(c) == '/') {
        c->p++;
        if (parse_hms(c, RULE_HOURS_MAX, "expected a rule time after '/'", &d->secs) != 0)
            return -1;
    }
    return 0;
}

/*
 * std offset [dst [offset] ,start[/time],end[/time]] with the TZif v3 extensions.
 * POSIX leaves a DST zone without a rule implementation-defined; RFC 8536 footers
 * always carry one, so that case is rejected rather than guessed.
 */
static int parse_posix(struct cursor *c, struct posix_tz *tz)
{
    int32_t off;
    memset(tz, 0, sizeof *tz);
    if (parse_abbr(c, tz->std_abbr) != 0)
        return -1;
    if (parse_hms(c, 24, "expected a UTC offset after the standard-time abbreviation", &off))
        return -1;
    tz->std_utoff = -off; /* POSIX counts west of Greenwich */
    if (peek(c) == -1)
        return 0;
    if (parse_abbr(c, tz->dst_abbr) != 0)
        return -1;
    tz->has_dst = 1;
    tz->dst_utoff = tz->std_utoff + 3600;
    if (peek(c) != ',' && peek(c) != -1) {
        if (parse_hms(c, 24, "expected a UTC offset or ',' after the DST abbreviation", &off))
            return -1;
        tz->dst_utoff = -off;
    }
    if (peek(c) != ',')
        return fail_at(c, c->p, "daylight-saving time needs ',start,end' rules");
    c->p++;
    if (parse_date(c, &tz->start) != 0)
        return -1;
    if (peek(c) != ',')
        return fail_at(c, c->p, "expected ',' and the rule for the end of DST");
    c->p++;
    if (parse_date(c, &tz->end) != 0)
        return -1;
    if (peek(c) != -1)
        return fail_at(c, c->p, "unexpected characters after the rules");
    return 0;
}

/* ---- evaluating a rule -------------------------------------------------------------- */

/* Days since the epoch of the local date a rule date names in year y. */
static int64_t rule_day(const struct rule_date *d, int64_t y)
{
    int64_t jan1 = civil_days_from_ymd(y, 1, 1);
    switch (d->kind) {
    case DATE_JULIAN1:
        /* Jn never counts February 29: J60 is March 1 in every year */
        return jan1 + d->day - 1 + (d->day >= 60 && civil_is_leap(y));
    case DATE_JULIAN0: return jan1 + d->day; /* 365 in a common year is January 1 of the next */
    case DATE_MONTH_WEEK:
    default: {
        int64_t first = civil_days_from_ymd(y, d->mon, 1);
        int64_t day = (d->day - civil_weekday(first) + 7) % 7 + 7 * (d->week - 1);
        /* week 5 is "the last": step back when the month has only four */
        while (day >= civil_days_in_month(y, d->mon))
            day -= 7;
        return first + day;
    }
    }
}

/* The instants DST starts (ev[0]) and ends (ev[1]) under the rule for year y. */
static void rule_events(const struct posix_tz *r, int64_t y, int64_t ev[2])
{
    ev[0] = rule_day(&r->start, y) * CIVIL_SECS_PER_DAY + r->start.secs - r->std_utoff;
    ev[1] = rule_day(&r->end, y) * CIVIL_SECS_PER_DAY + r->end.secs - r->dst_utoff;
}

static int64_t utc_year(int64_t t)
{
    int64_t y;
    int m, d;
    civil_ymd_from_days(floor_div(t, CIVIL_SECS_PER_DAY), &y, &m, &d);
    return y;
}

/*
 * Whether the rule puts instant t in DST: the latest start or end not after t wins.
 * A year's events lie within about 8 days of that year (rule times up to 167 hours,
 * offsets up to 26), so the years y-2..y+1 always include the deciding event.  Ties
 * go to the later year, then to the end, matching zic's all-year DST and glibc's
 * reading of a zero-length DST period.
 */
static int rule_is_dst(const struct posix_tz *r, int64_t t)
{
    if (!r->has_dst)
        return 0;
    int64_t u = t % GREGORIAN_CYCLE; /* same answer, and no overflow below */
    if (u < 0)
        u += GREGORIAN_CYCLE;
    int64_t y = utc_year(u), best = INT64_MIN;
    int dst = 0;
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        int64_t ev[2];
        rule_events(r, yy, ev);
        for (int k = 0; k < 2; k++) {
            if (ev[k] <= u && ev[k] >= best) {
                best = ev[k];
                dst = k == 0;
            }
        }
    }
    return dst;
}

/* The first rule event after t, for t inside the tabulated range (no reduction). */
static int64_t rule_next_event(const struct posix_tz *r, int64_t t)
{
    int64_t y = utc_year(t), best = INT64_MAX;
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        int64_t ev[2];
        rule_events(r, yy, ev);
        for (int k = 0; k < 2; k++) {
            if (ev[k] > t && ev[k] < best)
                best = ev[k];
        }
    }
    return best;
}

/* ---- reading TZif ------------------------------------------------------------------- */

/* What a validated TZif file contributes: where its data sits, and its footer. */
struct source {
    const uint8_t *buf;
    int tsize; /* bytes per transition time: 4 (v1) or 8 */
    uint32_t timecnt, typecnt, charcnt;
    size_t times, idxs, types, chars; /* offsets in buf */
    int has_rule;
    struct posix_tz rule;
    size_t footer_pos; /* for messages */
};

struct header {
    int version; /* 1, 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
    uint64_t data_len;
};

/* Fills err and gives TY_EFORMAT: `return BAD(byte offset, "what", ...)`. */
#define BAD(pos, ...)                                                                              \
    (ty_error(err, TY_EFORMAT, "tzif", clamp_pos(pos), 1, "tzif: " __VA_ARGS__), TY_EFORMAT)

static int read_header(const uint8_t *buf, size_t len, size_t off, int tsize, struct header *h,
                       struct ty_err *err)
{
    if (len - off < HEADER_LEN)
        return BAD(off, "truncated header at byte %zu: 44 bytes needed, %zu present", off,
                   len - off);
    const uint8_t *p = buf + off;
    if (memcmp(p, "TZif", 4) != 0)
        return BAD(off, "bad magic at byte %zu: not a TZif file", off);
    if (p[4] == 0)
        h->version = 1;
    else if (p[4] >= '2' && p[4] <= '9')
        /* tzfile(5): later versions are meant to stay readable by v4 readers */
        h->version = p[4] > '4' ? 4 : p[4] - '0';
    else
        return BAD(off + 4, "unsupported version byte 0x%02x at byte %zu", p[4], off + 4);
    h->isutcnt = get32(p + 20);
    h->isstdcnt = get32(p + 24);
    h->leapcnt = get32(p + 28);
    h->timecnt = get32(p + 32);
    h->typecnt = get32(p + 36);
    h->charcnt = get32(p + 40);
    h->data_len = (uint64_t)h->timecnt * (uint64_t)(tsize + 1) + (uint64_t)h->typecnt * 6 +
                  h->charcnt + (uint64_t)h->leapcnt * (uint64_t)(tsize + 4) + h->isstdcnt +
                  h->isutcnt;
    if (h->data_len > len - off - HEADER_LEN)
        return BAD(off,
                   "truncated data block: the header at byte %zu declares %llu bytes of "
                   "data, %zu present",
                   off, (unsigned long long)h->data_len, len - off - HEADER_LEN);
    return 0;
}

/* Checks the counts of the header whose data block is used (not the skipped v1 one). */
static int check_counts(const struct header *h, size_t off, struct ty_err *err)
{
    if (h->typecnt == 0)
        return BAD(off + 36, "header at byte %zu: no local time types (typecnt is 0)", off);
    if (h->typecnt > MAX_TYPES)
        return BAD(off + 36, "header at byte %zu: %u local time types, at most 256 usable", off,
                   h->typecnt);
    if (h->charcnt == 0)
        return BAD(off + 40, "header at byte %zu: no abbreviation characters (charcnt is 0)", off);
    if (h->isutcnt != 0 && h->isutcnt != h->typecnt)
        return BAD(off + 20, "header at byte %zu: isutcnt %u is neither 0 nor typecnt %u", off,
                   h->isutcnt, h->typecnt);
    if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)
        return BAD(off + 24, "header at byte %zu: isstdcnt %u is neither 0 nor typecnt %u", off,
                   h->isstdcnt, h->typecnt);
    if (h->leapcnt != 0)
        /* "right/" zones count leap seconds in their timestamps; POSIX time does not */
        return BAD(off + 28,
                   "header at byte %zu: %u leap-second records; zones with leap "
                   "seconds are not supported",
                   off, h->leapcnt);
    return 0;
}

static int check_data(const uint8_t *buf, size_t off, const struct header *h, int tsize,
                      struct source *src, struct ty_err *err)
{
    size_t p = off + HEADER_LEN;
    src->tsize = tsize;
    src->timecnt = h->timecnt;
    src->typecnt = h->typecnt;
    src->charcnt = h->charcnt;
    src->times = p;
    src->idxs = p + (size_t)h->timecnt * (size_t)tsize;
    src->types = src->idxs + h->timecnt;
    src->chars = src->types + (size_t)h->typecnt * 6;
    size_t isstd = src->chars + h->charcnt; /* leapcnt is 0 here */
    size_t isut = isstd + h->isstdcnt;

    int64_t prev = 0;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        size_t at = src->times + (size_t)i * (size_t)tsize;
        int64_t t = tsize == 8 ? get64(buf + at) : get32s(buf + at);
        if (i > 0 && t <= prev)
            return BAD(at,
                       "transition times not strictly increasing: transition %u at byte "
                       "%zu (%lld) is not after transition %u (%lld)",
                       i, at, (long long)t, i - 1, (long long)prev);
        prev = t;
        if (buf[src->idxs + i] >= h->typecnt)
            return BAD(src->idxs + i,
                       "transition %u: local time type index %u at byte %zu is "
                       "out of range (typecnt %u)",
                       i, buf[src->idxs + i], src->idxs + i, h->typecnt);
    }
    for (uint32_t i = 0; i < h->typecnt; i++) {
        size_t at = src->types + (size_t)i * 6;
        int32_t utoff = get32s(buf + at);
        if (utoff < UTOFF_MIN || utoff > UTOFF_MAX)
            return BAD(at,
                       "local time type %u at byte %zu: UT offset %ld out of range "
                       "-89999..93599",
                       i, at, (long)utoff);
        if (buf[at + 4] > 1)
            return BAD(at + 4, "local time type %u: isdst %u at byte %zu is neither 0 nor 1", i,
                       buf[at + 4], at + 4);
        uint8_t ai = buf[at + 5];
        if (ai >= h->charcnt)
            return BAD(at + 5,
                       "local time type %u: abbreviation index %u at byte %zu is outside "
                       "the %u abbreviation characters",
                       i, ai, at + 5, h->charcnt);
        size_t k = src->chars + ai, end = src->chars + h->charcnt;
        while (k < end && buf[k] != 0) {
            if (buf[k] < 0x20 || buf[k] > 0x7e)
                return BAD(k,
                           "local time type %u: abbreviation has a non-printable byte 0x%02x "
                           "at byte %zu",
                           i, buf[k], k);
            k++;
        }
        if (k == end)
            return BAD(src->chars + ai,
                       "local time type %u: abbreviation at byte %zu is not "
                       "NUL-terminated within the abbreviation characters",
                       i, src->chars + ai);
        if (k - (src->chars + ai) >= TZ_ABBR_MAX)
            return BAD(src->chars + ai,
                       "local time type %u: abbreviation at byte %zu is longer "
                       "than 15 characters",
                       i, src->chars + ai);
    }
    for (uint32_t i = 0; i < h->isstdcnt; i++) {
        if (buf[isstd + i] > 1)
            return BAD(isstd + i, "standard/wall indicator %u at byte %zu is neither 0 nor 1", i,
                       isstd + i);
    }
    for (uint32_t i = 0; i < h->isutcnt; i++) {
        if (buf[isut + i] > 1)
            return BAD(isut + i, "UT/local indicator %u at byte %zu is neither 0 nor 1", i,
                       isut + i);
        if (buf[isut + i] == 1 && (h->isstdcnt == 0 || buf[isstd + i] == 0))
            return BAD(isut + i,
                       "UT/local indicator %u at byte %zu is set but its "
                       "standard/wall indicator is not",
                       i, isut + i);
    }
    return 0;
}

static int read_footer(const uint8_t *buf, size_t len, size_t off, struct source *src,
                       struct ty_err *err)
{
    if (off >= len || buf[off] != '\n')
        return BAD(off,
                   "missing footer at byte %zu: a newline-enclosed TZ string must follow "
                   "the data",
                   off);
    size_t start = off + 1, end = start;
    while (end < len && buf[end] != '\n') {
        if (buf[end] < 0x20 || buf[end] > 0x7e)
            return BAD(end, "footer: non-printable byte 0x%02x at byte %zu", buf[end], end);
        end++;
    }
    if (end == len)
        return BAD(off, "footer at byte %zu is not terminated by a newline", off);
    if (end + 1 != len)
        return BAD(end + 1, "%zu bytes of trailing data after the footer at byte %zu",
                   len - end - 1, end + 1);
    src->footer_pos = start;
    if (end == start)
        return 0; /* empty: no rule, the last type stays */
    struct cursor c = {(const char *)buf + start, end - start, 0, NULL};
    if (parse_posix(&c, &src->rule) != 0)
        return BAD(start + c.p, "footer TZ string \"%.*s\": %s at byte %zu",
                   (int)(end - start > 64 ? 64 : end - start), (const char *)buf + start, c.what,
                   start + c.p);
    src->has_rule = 1;
    return 0;
}

static int read_tzif(const uint8_t *buf, size_t len, struct source *src, struct ty_err *err)
{
    struct header h;
    if (buf == NULL)
        len = 0;
    memset(src, 0, sizeof *src);
    src->buf = buf;
    int rc = read_header(buf, len, 0, 4, &h, err);
    if (rc != 0)
        return rc;
    size_t off = 0;
    int tsize = 4;
    if (h.version >= 2) {
        /* the v1 block is only skipped over (tzfile(5)), the 64-bit block is read */
        int version = h.version;
        off = HEADER_LEN + (size_t)h.data_len;
        tsize = 8;
        if ((rc = read_header(buf, len, off, tsize, &h, err)) != 0)
            return rc;
        if (h.version != version)
            return BAD(off + 4, "second header at byte %zu has version %d, the first %d", off,
                       h.version, version);
    }
    if ((rc = check_counts(&h, off, err)) != 0 || (rc = check_data(buf, off, &h, tsize, src, err)))
        return rc;
    size_t end = off + HEADER_LEN + (size_t)h.data_len;
    if (h.version >= 2)
        return read_footer(buf, len, end, src, err);
    if (end != len)
        return BAD(end, "%zu bytes of trailing data after the data block at byte %zu", len - end,
                   end);
    return 0;
}

/* ---- building the table ------------------------------------------------------------- */

/* The local time types of a zone being built, identical ones merged. */
struct typeset {
    struct ttype t[MAX_TYPES + 2];
    uint32_t n;
    uint16_t map[MAX_TYPES]; /* file type index -> merged index */
    const char *chars;       /* the file's abbreviation block (may be NULL) */
    uint32_t charcnt;
    char extra[2 * TZ_ABBR_MAX]; /* footer abbreviations the file lacks, after chars */
    uint32_t nextra;
};

static const char *ts_abbr(const struct typeset *ts, uint32_t off)
{
    return off < ts->charcnt ? ts->chars + off : ts->extra + (off - ts->charcnt);
}

static uint16_t ts_find(const struct typeset *ts, int32_t utoff, int isdst, const char *abbr)
{
    for (uint32_t i = 0; i < ts->n; i++) {
        if (ts->t[i].utoff == utoff && ts->t[i].isdst == isdst &&
            strcmp(ts_abbr(ts, ts->t[i].abbr), abbr) == 0)
            return (uint16_t)i;
    }
    return UINT16_MAX;
}

static uint16_t ts_add_rule_type(struct typeset *ts, int32_t utoff, int isdst, const char *abbr)
{
    uint16_t i = ts_find(ts, utoff, isdst, abbr);
    if (i != UINT16_MAX)
        return i;
    size_t len = strlen(abbr);
    ts->t[ts->n].utoff = utoff;
    ts->t[ts->n].isdst = (uint8_t)isdst;
    ts->t[ts->n].abbr = ts->charcnt + ts->nextra;
    memcpy(ts->extra + ts->nextra, abbr, len + 1);
    ts->nextra += (uint32_t)len + 1;
    return (uint16_t)ts->n++;
}

/* Transitions as they are produced: counted on the first pass, stored on the second. */
struct seq {
    int64_t *at;
    uint16_t *tt;
    size_t n;
};

static void seq_push(struct seq *s, int64_t t, uint16_t type)
{
    if (s->at != NULL) {
        s->at[s->n] = t;
        s->tt[s->n] = type;
    }
    s->n++;
}

struct plan {
    const struct source *src;
    struct typeset *ts;
    uint16_t std_type, dst_type;
    int64_t rule_from, tab_from;
    uint16_t type_at_tab_from; /* before any rule transition is applied */
};

static uint16_t rule_type(const struct plan *pl, int64_t t)
{
    return rule_is_dst(&pl->src->rule, t) ? pl->dst_type : pl->std_type;
}

static void produce(const struct plan *pl, struct seq *s)
{
    const struct source *src = pl->src;
    for (uint32_t i = 0; src->buf != NULL && i < src->timecnt; i++) {
        size_t at = src->times + (size_t)i * (size_t)src->tsize;
        int64_t t = src->tsize == 8 ? get64(src->buf + at) : get32s(src->buf + at);
        seq_push(s, t, pl->ts->map[src->buf[src->idxs + i]]);
    }
    if (!src->has_rule || pl->tab_from >= TZ_TABLE_END)
        return;
    uint16_t cur = pl->type_at_tab_from, type = rule_type(pl, pl->tab_from);
    if (type != cur)
        seq_push(s, pl->tab_from, cur = type);
    if (!src->rule.has_dst)
        return;
    for (int64_t t = pl->tab_from;;) {
        t = rule_next_event(&src->rule, t);
        if (t >= TZ_TABLE_END)
            break;
        type = rule_type(pl, t);
        if (type != cur)
            seq_push(s, t, cur = type);
    }
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int build(const char *name, const struct source *src, struct tz_zone **out,
                 struct ty_err *err)
{
    struct typeset types; /* about 3.6 KiB, gone when the table is built */
    struct typeset *ts = &types;
    memset(ts, 0, sizeof *ts);
    /* a rule-only zone (tz_from_posix) has no buffer, and no file types or transitions */
    if (src->buf != NULL) {
        ts->chars = (const char *)src->buf + src->chars;
        ts->charcnt = src->charcnt;
    }
    for (uint32_t i = 0; src->buf != NULL && i < src->typecnt; i++) {
        const uint8_t *p = src->buf + src->types + (size_t)i * 6;
        uint16_t k = ts_find(ts, get32s(p), p[4], ts->chars + p[5]);
        if (k == UINT16_MAX) {
            k = (uint16_t)ts->n++;
            ts->t[k].utoff = get32s(p);
            ts->t[k].isdst = p[4];
            ts->t[k].abbr = p[5];
        }
        ts->map[i] = k;
    }

    struct plan pl = {src, ts, 0, 0, INT64_MIN, RULE_TAB_START, 0};
    uint16_t first_type = src->buf != NULL ? ts->map[0] : 0;
    if (src->has_rule) {
        const struct posix_tz *r = &src->rule;
        pl.std_type = ts_add_rule_type(ts, r->std_utoff, 0, r->std_abbr);
        pl.dst_type = r->has_dst ? ts_add_rule_type(ts, r->dst_utoff, 1, r->dst_abbr) : pl.std_type;
        if (src->buf != NULL && src->timecnt > 0) {
            size_t at = src->times + (size_t)(src->timecnt - 1) * (size_t)src->tsize;
            uint32_t ix = src->timecnt - 1;
            int64_t last = src->tsize == 8 ? get64(src->buf + at) : get32s(src->buf + at);
            uint16_t file_type = ts->map[src->buf[src->idxs + ix]];
            if (rule_type(&pl, last) != file_type) {
                const struct ttype *a = &ts->t[file_type], *b = &ts->t[rule_type(&pl, last)];
                return BAD(src->footer_pos,
                           "footer TZ string at byte %zu disagrees with the "
                           "last transition (%lld): file says %s %ld%s, footer "
                           "says %s %ld%s",
                           src->footer_pos, (long long)last, ts_abbr(ts, a->abbr), (long)a->utoff,
                           a->isdst ? " DST" : "", ts_abbr(ts, b->abbr), (long)b->utoff,
                           b->isdst ? " DST" : "");
            }
            pl.rule_from = last;
            pl.tab_from = last > RULE_TAB_START ? last : RULE_TAB_START;
            pl.type_at_tab_from = file_type;
        } else {
            /* the rule governs all time; the table opens with its state in 1900 */
            first_type = rule_type(&pl, RULE_TAB_START);
            pl.type_at_tab_from = first_type;
        }
    }

    struct seq count = {NULL, NULL, 0};
    produce(&pl, &count);
    if (count.n >= UINT32_MAX)
        return BAD(0, "too many transitions (%u)", src->timecnt);
    /* spans cannot outnumber transitions + 1; the exact count is known after filling */
    size_t nt = count.n, nabbr = (size_t)ts->charcnt + ts->nextra;
    size_t o_at = align8(sizeof(struct tz_zone));
    size_t o_span = o_at + nt * sizeof(int64_t);
    size_t o_types = o_span + (nt + 1) * sizeof(int64_t);
    size_t o_utoff = o_types + ts->n * sizeof(struct ttype);
    size_t o_tt = o_utoff + (nt + 1) * sizeof(int32_t);
    size_t o_abbr = o_tt + nt * sizeof(uint16_t);
    size_t total = o_abbr + nabbr;
    char *block = malloc(total);
    if (block == NULL)
        return ty_error(err, TY_ENOMEM, "tz", -1, 0, "tz: out of memory building a zone table");
    struct tz_zone *z = (struct tz_zone *)(void *)block;
    memset(z, 0, sizeof *z);
    for (size_t i = 0; name != NULL && name[i] != '\0' && i < sizeof z->name - 1; i++)
        z->name[i] = name[i];
    z->bytes = total;
    z->at = (int64_t *)(void *)(block + o_at);
    z->span_start = (int64_t *)(void *)(block + o_span);
    z->types = (struct ttype *)(void *)(block + o_types);
    z->span_utoff = (int32_t *)(void *)(block + o_utoff);
    z->tt = (uint16_t *)(void *)(block + o_tt);
    z->abbrs = block + o_abbr;
    z->ntrans = (uint32_t)nt;
    z->first_type = first_type;
    z->has_rule = src->has_rule;
    z->std_type = pl.std_type;
    z->dst_type = pl.dst_type;
    z->rule_from = pl.rule_from;
    z->tab_from = pl.tab_from;
    if (src->has_rule)
        z->rule = src->rule;
    memcpy(z->types, ts->t, ts->n * sizeof(struct ttype));
    if (ts->charcnt > 0)
        memcpy(z->abbrs, ts->chars, ts->charcnt);
    memcpy(z->abbrs + ts->charcnt, ts->extra, ts->nextra);

    struct seq fill = {z->at, z->tt, 0};
    produce(&pl, &fill);

    uint32_t ns = 0;
    int32_t cur = z->types[first_type].utoff;
    z->span_start[ns] = INT64_MIN;
    z->span_utoff[ns++] = cur;
    z->max_utoff = cur;
    for (uint32_t i = 0; i < z->ntrans; i++) {
        int32_t u = z->types[z->tt[i]].utoff;
        if (u == cur)
            continue;
        z->span_start[ns] = z->at[i];
        z->span_utoff[ns++] = cur = u;
        if (u > z->max_utoff)
            z->max_utoff = u;
    }
    z->nspans = ns;
    *out = z;
    return 0;
}

#undef BAD

/* ---- public API --------------------------------------------------------------------- */

int tz_parse(const char *name, const uint8_t *buf, size_t len, struct tz_zone **out,
             struct ty_err *err)
{
    struct source src;
    int rc = read_tzif(buf, len, &src, err);
    if (rc != 0)
        return rc;
    return build(name, &src, out, err);
}

int tz_from_posix(const char *name, const char *rule, struct tz_zone **out, struct ty_err *err)
{
    if (rule == NULL)
        return ty_error(err, TY_EINVAL, "TZ", -1, 0, "TZ rule: missing (NULL)");
    struct source src;
    memset(&src, 0, sizeof src);
    struct cursor c = {rule, strlen(rule), 0, NULL};
    if (parse_posix(&c, &src.rule) != 0) {
        char shown[65];
        size_t i;
        for (i = 0; i < c.n && i < sizeof shown - 1; i++) {
            unsigned char ch = (unsigned char)rule[i];
            shown[i] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
        }
        shown[i] = '\0';
        return ty_error(err, TY_EINVAL, "TZ", clamp_pos(c.p), 1,
                        "TZ rule \"%s\": %s at character %zu", shown, c.what, c.p);
    }
    src.has_rule = 1;
    return build(name, &src, out, err);
}

void tz_free(struct tz_zone *z)
{
    free(z);
}

const char *tz_name(const struct tz_zone *z)
{
    return z->name;
}

/* Number of elements of a[0..n) that are <= t. */
static uint32_t count_le(const int64_t *a, uint32_t n, int64_t t)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void tz_lookup(const struct tz_zone *z, int64_t t, struct tz_info *out)
{
    uint16_t type;
    if (z->has_rule && t >= z->rule_from && (t < z->tab_from || t >= TZ_TABLE_END)) {
        type = rule_is_dst(&z->rule, t) ? z->dst_type : z->std_type;
    } else {
        uint32_t k = count_le(z->at, z->ntrans, t);
        type = k == 0 ? z->first_type : z->tt[k - 1];
    }
    const struct ttype *ty = &z->types[type];
    out->utoff = ty->utoff;
    out->isdst = ty->isdst;
    out->abbr = z->abbrs + ty->abbr;
}

uint32_t tz_span_count(const struct tz_zone *z)
{
    return z->nspans;
}

uint32_t tz_span_find(const struct tz_zone *z, int64_t t)
{
    /* span_start[0] is INT64_MIN, so at least one start is <= t */
    return count_le(z->span_start, z->nspans, t) - 1;
}

void tz_span_get(const struct tz_zone *z, uint32_t idx, struct tz_span *out)
{
    out->start = z->span_start[idx];
    out->end = idx + 1 < z->nspans ? z->span_start[idx + 1] : INT64_MAX;
    out->utoff = z->span_utoff[idx];
    out->prev_utoff = idx > 0 ? z->span_utoff[idx - 1] : z->span_utoff[idx];
}

int32_t tz_max_utoff(const struct tz_zone *z)
{
    return z->max_utoff;
}

size_t tz_table_bytes(const struct tz_zone *z)
{
    return z->bytes;
}
