/*
 * cron.c - the cron dialect of spec/cron.md.
 *
 * Parsing turns every field into a bit set of allowed values (plus a few small sets for
 * the day specials L, L-n, nW, LW, nL and n#k), so a compiled expression is a fixed
 * 88-byte value with no pointers.  Matching a day asks for a 31-bit mask of the days of
 * one month that match, built from those sets with shifts and at most a few dozen
 * simple steps; hours, minutes and seconds are "next set bit at or above" queries.
 *
 * next() works on two clocks.  The schedule is a set of LOCAL wall-clock times; the
 * answer is an INSTANT.  The zone's timeline is a sequence of spans of constant UTC
 * offset (tz.h), and inside one span local time is just instant + offset, so the search
 * walks spans: for each span it asks for the first matching local time inside the
 * span's local range.  Daylight-saving changes are the span boundaries, where spec §7's
 * table is applied:
 *   - a gap (offset grows): local times [start+prev, start+off) never happen.  If the
 *     hour field is not "every hour" and one of them matches, fire once at `start`.
 *   - an overlap (offset shrinks): local times [start+off, start+prev) happen twice.  If
 *     the hour field is "every hour" they fire again in the new span, else they are
 *     skipped there (they already fired in the span before).
 * A local search that lands beyond the current span is remembered: the spans before it
 * can hold no match, so the walk jumps straight to the span where it could fire, and the
 * same answer is reused while the search start does not pass it.  A schedule that next
 * fires in 2099 thus costs two local searches, not one per daylight-saving change.
 *
 * Nothing here allocates, reads a clock or touches global state.
 */
#include "cron.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "civil.h"

/* ---------------------------------------------------------------------------------------
 * Fields
 */

enum fkind { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_YEAR };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct field_spec {
    const char *name;
    const char *const *names;
    enum fkind kind;
    int min, max;  /* the values a user may write */
    int nvals;     /* the largest step allowed: the number of values in the field */
    int name_base; /* value of names[0] */
};

static const struct field_spec quartz_fields[7] = {
    {"second", NULL, F_SEC, 0, 59, 60, 0},
    {"minute", NULL, F_MIN, 0, 59, 60, 0},
    {"hour", NULL, F_HOUR, 0, 23, 24, 0},
    {"day-of-month", NULL, F_DOM, 1, 31, 31, 0},
    {"month", month_names, F_MON, 1, 12, 12, 1},
    {"day-of-week", day_names, F_DOW, 1, 7, 7, 1},
    {"year", NULL, F_YEAR, 1970, CRON_MAX_YEAR, 230, 0},
};

static const struct field_spec unix_fields[5] = {
    {"minute", NULL, F_MIN, 0, 59, 60, 0},         {"hour", NULL, F_HOUR, 0, 23, 24, 0},
    {"day-of-month", NULL, F_DOM, 1, 31, 31, 0},   {"month", month_names, F_MON, 1, 12, 12, 1},
    {"day-of-week", day_names, F_DOW, 0, 7, 7, 0},
};

const char *cron_field_name(int form, int field_index)
{
    if (form == CRON_FORM_UNIX && field_index >= 0 && field_index < 5)
        return unix_fields[field_index].name;
    if (form == CRON_FORM_QUARTZ && field_index >= 0 && field_index < 7)
        return quartz_fields[field_index].name;
    if (form == CRON_FORM_EVERY)
        return "duration";
    return "expression";
}

/* ---------------------------------------------------------------------------------------
 * Bit helpers
 */

static int ctz64(uint64_t x)
{
    return __builtin_ctzll(x);
}

/* The lowest set bit of x at or above `from`, or -1. */
static int next_bit64(uint64_t x, int from)
{
    if (from >= 64)
        return -1;
    x &= ~UINT64_C(0) << from;
    return x ? ctz64(x) : -1;
}

static int year_has(const struct cron_expr *e, int64_t y)
{
    int64_t i = y - 1970;
    return i >= 0 && i < 230 && (e->year[i >> 6] >> (i & 63) & 1);
}

static void year_set(struct cron_expr *e, int y)
{
    int i = y - 1970;
    if (i < 0 || i >= 230) /* callers checked the range; this keeps the index provable */
        return;
    e->year[i >> 6] |= UINT64_C(1) << (i & 63);
}

/* The first year >= y in the set, or -1. */
static int64_t year_next(const struct cron_expr *e, int64_t y)
{
    if (y < 1970)
        y = 1970;
    for (int64_t i = y - 1970; i < 230; i = (i | 63) + 1) {
        int b = next_bit64(e->year[i >> 6], (int)(i & 63));
        if (b >= 0)
            return 1970 + (i & ~INT64_C(63)) + b;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Parsing
 */

struct parser {
    const char *text; /* the whole expression, for error positions */
    struct ty_err *err;
    int form;
    int index; /* field number, 0-based */
    const struct field_spec *fs;
    struct cron_expr *e;
};

/* Every parse error goes through here so the message always names the field first. */
__attribute__((format(printf, 4, 5))) static int perr(struct parser *p, const char *at, int len,
                                                      const char *fmt, ...)
{
    char detail[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return ty_error(p->err, TY_EINVAL, p->fs->name, (int)(at - p->text), len, "field %d (%s): %s",
                    p->index + 1, p->fs->name, detail);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

/* A cursor over one item of a list: [s, end). */
struct item {
    const char *s;
    const char *end;
    const char *start; /* where the item began, for messages */
};

static int item_len(const struct item *it)
{
    return (int)(it->end - it->start);
}

/*
 * Read a decimal number (leading zeros allowed) into *v.  Returns 0, or 1 when there is
 * no digit at the cursor.  Values are clamped at 100000 so "999999999999" reads as
 * out of range rather than overflowing.
 */
static int read_number(struct item *it, int *v)
{
    if (it->s >= it->end || !is_digit(*it->s))
        return 1;
    long n = 0;
    while (it->s < it->end && is_digit(*it->s)) {
        if (n < 100000)
            n = n * 10 + (*it->s - '0');
        it->s++;
    }
    *v = (int)n;
    return 0;
}

/*
 * Read a value: a number or one of the field's names.  A name is three letters; in the
 * Quartz day-of-week field a fourth letter L is left for the caller ("FRIL").
 * Returns 0, 1 if nothing value-like is at the cursor, or a TY_E code after reporting.
 */
static int read_value(struct parser *p, struct item *it, int *v)
{
    const char *at = it->s;
    if (read_number(it, v) == 0) {
        if (*v < p->fs->min || *v > p->fs->max)
            return perr(p, at, (int)(it->s - at), "\"%.*s\" is out of range %d-%d",
                        (int)(it->s - at), at, p->fs->min, p->fs->max);
        return 0;
    }
    if (it->s >= it->end || !is_alpha(*it->s))
        return 1;
    const char *q = it->s;
    while (q < it->end && is_alpha(*q))
        q++;
    int run = (int)(q - at);
    int nl = p->fs->kind == F_DOW && p->form == CRON_FORM_QUARTZ && run == 4 && upper(at[3]) == 'L';
    if (p->fs->names != NULL && (run == 3 || nl)) {
        int count = p->fs->kind == F_MON ? 12 : 7;
        for (int i = 0; i < count; i++) {
            const char *nm = p->fs->names[i];
            if (upper(at[0]) == nm[0] && upper(at[1]) == nm[1] && upper(at[2]) == nm[2]) {
                *v = p->fs->name_base + i;
                it->s = at + 3;
                return 0;
            }
        }
    }
    if (p->fs->names == NULL)
        return perr(p, at, run, "\"%.*s\" is not a number", run, at);
    return perr(p, at, run, "\"%.*s\" is not a %s name (use %s)", run, at,
                p->fs->kind == F_MON ? "month" : "day",
                p->fs->kind == F_MON ? "JAN-DEC" : "SUN-SAT");
}

/* Report text left over after a complete item. */
static int trailing(struct parser *p, const struct item *it)
{
    int n = (int)(it->end - it->s);
    int k = (int)(it->s - it->start);
    return perr(p, it->s, n, "\"%.*s\": unexpected \"%.*s\" after \"%.*s\"", item_len(it),
                it->start, n, it->s, k, it->start);
}

/* Set value v (already mapped to the internal numbering) in the field's set. */
static void set_value(struct parser *p, int v)
{
    struct cron_expr *e = p->e;
    /* callers pass values already checked against the field's range */
    if (v < (p->fs->kind == F_DOM || p->fs->kind == F_MON ? 1 : 0) || v > CRON_MAX_YEAR ||
        (p->fs->kind != F_YEAR && v > 59))
        return;
    switch (p->fs->kind) {
    case F_SEC: e->sec |= UINT64_C(1) << v; break;
    case F_MIN: e->min |= UINT64_C(1) << v; break;
    case F_HOUR: e->hour |= UINT32_C(1) << v; break;
    case F_DOM: e->dom |= UINT32_C(1) << (v - 1); break;
    case F_MON: e->mon |= (uint16_t)(1u << (v - 1)); break;
    case F_DOW: e->dow |= (uint8_t)(1u << v); break; /* v is 0 = Sunday here */
    case F_YEAR: year_set(e, v); break;
    }
}

/*
 * Add the values a, a+step, ... up to b to the field, wrapping past the top of the field
 * when b < a (spec §3).  The field's counting domain is [lo, hi]; the Unix day-of-week
 * counts 0-6 and the Quartz one 1-7 (mapped to 0-6 when stored).
 */
static void add_range(struct parser *p, int lo, int hi, int a, int b, int step)
{
    int n = hi - lo + 1;
    int last = b >= a ? b : b + n;
    for (int x = a; x <= last; x += step) {
        int v = x > hi ? x - n : x;
        if (p->fs->kind == F_DOW && p->form == CRON_FORM_QUARTZ)
            v -= 1;
        set_value(p, v);
    }
}

/*
 * Parse "/n" at the cursor, if present, into *step (1 when absent) and say in *had
 * whether there was one.
 */
static int read_step(struct parser *p, struct item *it, int *step, int *had)
{
    *step = 1;
    *had = 0;
    if (it->s >= it->end || *it->s != '/')
        return 0;
    *had = 1;
    it->s++;
    const char *at = it->s;
    if (read_number(it, step) != 0)
        return perr(p, it->start, item_len(it), "\"%.*s\": expected a number after '/'",
                    item_len(it), it->start);
    if (*step == 0)
        return perr(p, at, (int)(it->s - at), "\"%.*s\": a step of 0 is not allowed", item_len(it),
                    it->start);
    if (*step > p->fs->nvals)
        return perr(p, at, (int)(it->s - at), "\"%.*s\": step %.*s is out of range 1-%d",
                    item_len(it), it->start, (int)(it->s - at), at, p->fs->nvals);
    return 0;
}

/* Day-of-month specials: L, L-n, LW (the cursor is at the 'L'). */
static int parse_dom_last(struct parser *p, struct item *it)
{
    it->s++;
    if (it->s == it->end) {
        p->e->dom_last |= 1u;
        return 0;
    }
    if (upper(*it->s) == 'W') {
        it->s++;
        if (it->s != it->end)
            return trailing(p, it);
        p->e->flags |= CRON_F_DOM_LW;
        return 0;
    }
    /* *it->s is '-' here: the caller sends only L, LW... and L-... */
    it->s++;
    const char *at = it->s;
    int n;
    if (read_number(it, &n) != 0)
        return perr(p, it->start, item_len(it), "\"%.*s\": expected a number of days after L-",
                    item_len(it), it->start);
    if (n > 30)
        return perr(p, at, (int)(it->s - at), "\"%.*s\": %.*s is out of range 0-30 for L-n",
                    item_len(it), it->start, (int)(it->s - at), at);
    if (it->s != it->end)
        return trailing(p, it);
    p->e->dom_last |= UINT32_C(1) << n;
    return 0;
}

static int quartz_only(struct parser *p, const struct item *it, const char *what)
{
    return perr(p, it->start, item_len(it),
                "\"%.*s\": %s is allowed only in the Quartz form (6 or 7 fields)", item_len(it),
                it->start, what);
}

/* A value followed by W (day-of-month), L or #k (day-of-week): nW, nL, n#k. */
static int parse_suffix(struct parser *p, struct item *it, int a)
{
    const struct field_spec *fs = p->fs;
    char c = upper(*it->s);
    const char *op = it->s;
    if (p->form != CRON_FORM_QUARTZ && (fs->kind == F_DOM || fs->kind == F_DOW))
        return quartz_only(p, it, c == '#' ? "#" : c == 'W' ? "W" : "L");
    if (a < 1 || a > 31) /* read_value checked the field's range; days start at 1 */
        return perr(p, it->start, item_len(it), "\"%.*s\": value out of range", item_len(it),
                    it->start);
    if (c == 'W' && fs->kind == F_DOM) {
        it->s++;
        if (it->s != it->end)
            return trailing(p, it);
        p->e->dom_near |= UINT32_C(1) << (a - 1);
        return 0;
    }
    if (c == 'L' && fs->kind == F_DOW) {
        it->s++;
        if (it->s != it->end)
            return trailing(p, it);
        p->e->dow_last |= (uint8_t)(1u << (a - 1));
        return 0;
    }
    if (c == '#' && fs->kind == F_DOW) {
        it->s++;
        const char *at = it->s;
        int k;
        if (read_number(it, &k) != 0)
            return perr(p, it->start, item_len(it),
                        "\"%.*s\": expected a week number 1-5 after '#'", item_len(it), it->start);
        if (k < 1 || k > 5)
            return perr(p, at, (int)(it->s - at), "\"%.*s\": week number %.*s is out of range 1-5",
                        item_len(it), it->start, (int)(it->s - at), at);
        if (it->s != it->end)
            return trailing(p, it);
        p->e->dow_nth |= UINT64_C(1) << ((k - 1) * 7 + (a - 1));
        return 0;
    }
    return perr(p, op, (int)(it->end - op), "\"%.*s\": '%c' is not allowed in this field",
                item_len(it), it->start, *op);
}

/* One item of a list, of any form the field allows. */
static int parse_item(struct parser *p, struct item *it, int in_list)
{
    const struct field_spec *fs = p->fs;
    int quartz = p->form == CRON_FORM_QUARTZ;
    int ilen = item_len(it);
    int unix_dow = fs->kind == F_DOW && !quartz;
    int lo = fs->min, hi = unix_dow ? 6 : fs->max; /* Unix day-of-week counts 0-6 (spec §2) */
    int a = 0, b = 0, step = 1, had_step = 0, rc;

    if (ilen == 0)
        return perr(p, it->s, 0, "an empty item in a list");

    if (*it->s == '?') {
        if (!(fs->kind == F_DOM || fs->kind == F_DOW))
            return perr(p, it->s, ilen,
                        "\"%.*s\": ? is allowed only in day-of-month or "
                        "day-of-week",
                        ilen, it->s);
        if (!quartz)
            return quartz_only(p, it, "?");
        if (in_list || ilen != 1)
            return perr(p, it->s, ilen, "\"%.*s\": ? must be the whole field", ilen, it->s);
        return 0; /* parse_field records it */
    }

    if (*it->s == '*') {
        it->s++;
        if ((rc = read_step(p, it, &step, &had_step)) != 0)
            return rc;
        if (it->s != it->end)
            return trailing(p, it);
        if (in_list && !had_step)
            return perr(p, it->start, 1,
                        "\"*\" cannot be an item of a list (write the values, or */1)");
        add_range(p, lo, hi, lo, hi, step);
        return 0;
    }

    if (upper(*it->s) == 'L' && (fs->kind == F_DOM || fs->kind == F_DOW)) {
        int special = ilen == 1 || it->s[1] == '-' || upper(it->s[1]) == 'W';
        if (special && !quartz)
            return quartz_only(p, it, "L");
        if (special && fs->kind == F_DOM)
            return parse_dom_last(p, it);
        if (ilen == 1) {
            p->e->dow |= 1u << 6; /* day-of-week L alone is Saturday */
            return 0;
        }
        if (special)
            return perr(p, it->s, ilen,
                        "\"%.*s\": in day-of-week, L stands alone (Saturday) or follows a day "
                        "(6L, FRIL)",
                        ilen, it->s);
    }

    if ((rc = read_value(p, it, &a)) != 0) {
        if (rc == 1)
            return perr(p, it->start, ilen, "\"%.*s\": expected a value at \"%.*s\"", ilen,
                        it->start, (int)(it->end - it->s), it->s);
        return rc;
    }

    if (it->s < it->end && (upper(*it->s) == 'W' || upper(*it->s) == 'L' || *it->s == '#'))
        return parse_suffix(p, it, a);

    if (it->s < it->end && *it->s == '-') {
        it->s++;
        if ((rc = read_value(p, it, &b)) != 0) {
            if (rc == 1)
                return perr(p, it->start, ilen, "\"%.*s\": expected a value after '-'", ilen,
                            it->start);
            return rc;
        }
        if ((rc = read_step(p, it, &step, &had_step)) != 0)
            return rc;
        if (it->s != it->end)
            return trailing(p, it);
        if (unix_dow) {
            /* 7 is Sunday: a range from 7 starts at Sunday; a range up to 7 ends there */
            if (a == 7) {
                a = 0;
                if (b == 7)
                    b = 0;
            }
            if (b == 7) {
                for (int x = a; x <= 7; x += step)
                    set_value(p, x % 7);
                return 0;
            }
        }
        add_range(p, lo, hi, a, b, step);
        return 0;
    }

    if ((rc = read_step(p, it, &step, &had_step)) != 0)
        return rc;
    if (it->s != it->end)
        return trailing(p, it);
    if (unix_dow && a == 7)
        a = 0;
    add_range(p, lo, hi, a, had_step ? hi : a, step); /* a/n runs to the top of the field */
    return 0;
}

/* One whole field: a comma-separated list of items. */
static int parse_field(struct parser *p, const char *s, const char *end)
{
    const struct field_spec *fs = p->fs;
    int quartz = p->form == CRON_FORM_QUARTZ;
    int in_list = memchr(s, ',', (size_t)(end - s)) != NULL;

    /* * and ? alone set the "unrestricted" flags the day rule of §5 needs */
    if (fs->kind == F_DOM || fs->kind == F_DOW) {
        int star = quartz ? (end - s == 1 && (*s == '*' || *s == '?')) : *s == '*';
        if (star)
            p->e->flags |= fs->kind == F_DOM ? CRON_F_DOM_STAR : CRON_F_DOW_STAR;
        if (end - s == 1 && *s == '?' && quartz)
            p->e->flags |= fs->kind == F_DOM ? CRON_F_DOM_QMARK : CRON_F_DOW_QMARK;
    }

    const char *q = s;
    for (;;) {
        const char *c = q;
        while (c < end && *c != ',')
            c++;
        struct item it = {q, c, q};
        int rc = parse_item(p, &it, in_list);
        if (rc != 0)
            return rc;
        if (c == end)
            break;
        q = c + 1;
        if (q == end)
            return perr(p, c, 1, "\"%.*s\": the list ends with a comma", (int)(end - s), s);
    }

    /* ? means "no constraint": every value */
    if (fs->kind == F_DOM && (p->e->flags & CRON_F_DOM_QMARK))
        p->e->dom = UINT32_C(0x7fffffff);
    if (fs->kind == F_DOW && (p->e->flags & CRON_F_DOW_QMARK))
        p->e->dow = 0x7f;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int ieq(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i] != '\0'; i++)
        if (upper(s[i]) != upper(lit[i]))
            return 0;
    return i == n && lit[i] == '\0';
}

#define EVERY_MAX INT64_C(31622400) /* 366 days */

/* "@every 1h30m": parts <int><unit>, units d h m s in that order, each at most once. */
static int parse_every(const char *text, const char *s, const char *end, struct cron_expr *e,
                       struct ty_err *err)
{
    static const char units[] = "dhms";
    static const int secs[] = {86400, 3600, 60, 1};
    const char *d0 = s;
    int64_t total = 0;
    int next_unit = 0;
    if (s == end)
        return ty_error(err, TY_EINVAL, "duration", (int)(s - text), 0,
                        "@every needs a duration such as 30s, 5m or 1h30m");
    while (s < end) {
        const char *part = s;
        int64_t n = 0;
        if (!is_digit(*s))
            return ty_error(err, TY_EINVAL, "duration", (int)(s - text), (int)(end - s),
                            "duration: \"%.*s\": expected a number (parts are <number><unit>, "
                            "units d h m s)",
                            (int)(end - d0), d0);
        while (s < end && is_digit(*s)) {
            if (n <= EVERY_MAX)
                n = n * 10 + (*s - '0');
            s++;
        }
        if (s == end)
            return ty_error(err, TY_EINVAL, "duration", (int)(part - text), (int)(s - part),
                            "duration: \"%.*s\": missing unit after %.*s (d, h, m or s)",
                            (int)(end - d0), d0, (int)(s - part), part);
        const char *pu = is_alpha(*s) ? strchr(units, upper(*s) + ('a' - 'A')) : NULL;
        if (pu == NULL)
            return ty_error(err, TY_EINVAL, "duration", (int)(s - text), 1,
                            "duration: \"%.*s\": unknown unit \"%c\" (use d, h, m, s)",
                            (int)(end - d0), d0, *s);
        int ui = (int)(pu - units);
        if (ui < next_unit)
            return ty_error(err, TY_EINVAL, "duration", (int)(part - text), (int)(s + 1 - part),
                            "duration: \"%.*s\": units must appear once each, in the order d h "
                            "m s",
                            (int)(end - d0), d0);
        next_unit = ui + 1;
        s++;
        if (s < end && is_alpha(*s))
            return ty_error(err, TY_EINVAL, "duration", (int)(part - text), (int)(end - part),
                            "duration: \"%.*s\": unknown unit \"%.*s\" (use d, h, m, s)",
                            (int)(end - d0), d0, (int)(end - s + 1), s - 1);
        total += n * secs[ui];
        if (total > EVERY_MAX)
            break;
    }
    if (total < 1 || total > EVERY_MAX)
        return ty_error(err, TY_EINVAL, "duration", (int)(d0 - text), (int)(end - d0),
                        "duration: \"%.*s\" is out of range 1s-366d", (int)(end - d0), d0);
    e->form = CRON_FORM_EVERY;
    e->every = (uint32_t)total;
    return 0;
}

static const struct {
    const char *name;
    const char *expansion;
} macros[] = {
    {"@yearly", "0 0 0 1 1 ?"},   {"@annually", "0 0 0 1 1 ?"}, {"@monthly", "0 0 0 1 * ?"},
    {"@weekly", "0 0 0 ? * SUN"}, {"@daily", "0 0 0 * * ?"},    {"@midnight", "0 0 0 * * ?"},
    {"@hourly", "0 0 * * * ?"},
};

static int parse_fields(const char *text, const char *s, const char *end, struct cron_expr *e,
                        struct ty_err *err);

static int parse_macro(const char *text, const char *s, const char *end, struct cron_expr *e,
                       struct ty_err *err)
{
    const char *w = s;
    while (w < end && !is_blank(*w))
        w++;
    if (ieq(s, (size_t)(w - s), "@every")) {
        if (w == end)
            return ty_error(err, TY_EINVAL, "duration", (int)(w - text), 0,
                            "@every needs a duration such as 30s, 5m or 1h30m");
        const char *d = w;
        while (d < end && is_blank(*d))
            d++;
        const char *de = d;
        while (de < end && !is_blank(*de))
            de++;
        if (de != end)
            return ty_error(err, TY_EINVAL, "duration", (int)(de - text), (int)(end - de),
                            "duration: unexpected \"%.*s\" after the duration (write parts "
                            "together, as in 1h30m)",
                            (int)(end - de), de);
        return parse_every(text, d, end, e, err);
    }
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        if (ieq(s, (size_t)(w - s), macros[i].name)) {
            if (w != end)
                return ty_error(err, TY_EINVAL, "expression", (int)(w - text), (int)(end - w),
                                "unexpected \"%.*s\" after %s (a macro stands alone)",
                                (int)(end - w), w, macros[i].name);
            const char *x = macros[i].expansion;
            return parse_fields(x, x, x + strlen(x), e, err);
        }
    }
    return ty_error(err, TY_EINVAL, "expression", (int)(s - text), (int)(w - s),
                    "unknown macro \"%.*s\" (known: @yearly @annually @monthly @weekly @daily "
                    "@midnight @hourly @every)",
                    (int)(w - s), s);
}

static int parse_fields(const char *text, const char *s, const char *end, struct cron_expr *e,
                        struct ty_err *err)
{
    const char *fstart[8], *fend[8];
    int n = 0;
    const char *q = s;
    while (q < end) {
        while (q < end && is_blank(*q))
            q++;
        if (q == end)
            break;
        const char *f = q;
        while (q < end && !is_blank(*q))
            q++;
        if (n < 8) {
            fstart[n] = f;
            fend[n] = q;
        }
        n++;
    }
    if (n != 5 && n != 6 && n != 7)
        return ty_error(err, TY_EINVAL, "expression", (int)(s - text), (int)(end - s),
                        "expected 5 fields (Unix: minute hour day-of-month month day-of-week), "
                        "6 or 7 (Quartz: second first, optional year), or a macro; got %d",
                        n);

    struct parser p = {text, err, n == 5 ? CRON_FORM_UNIX : CRON_FORM_QUARTZ, 0, NULL, e};
    const struct field_spec *specs = n == 5 ? unix_fields : quartz_fields;
    e->form = (uint8_t)p.form;
    if (n == 5)
        e->sec = 1; /* second 0 */
    if (n == 6) {
        for (int y = 1970; y <= CRON_MAX_YEAR; y++)
            year_set(e, y);
    } else if (n == 7) {
        e->flags |= CRON_F_YEAR;
    }
    for (int i = 0; i < n; i++) {
        p.index = i;
        p.fs = &specs[i];
        int rc = parse_field(&p, fstart[i], fend[i]);
        if (rc != 0)
            return rc;
    }
    if (n == 5)
        e->year[0] = e->year[1] = e->year[2] = ~UINT64_C(0), e->year[3] = (UINT64_C(1) << 38) - 1;

    if (p.form == CRON_FORM_QUARTZ) {
        int dom_q = e->flags & CRON_F_DOM_QMARK, dow_q = e->flags & CRON_F_DOW_QMARK;
        int dom_s = e->flags & CRON_F_DOM_STAR, dow_s = e->flags & CRON_F_DOW_STAR;
        if (dom_q && dow_q)
            return ty_error(err, TY_EINVAL, "day-of-week", (int)(fstart[5] - text),
                            (int)(fend[5] - fstart[5]),
                            "fields 4 and 6 (day-of-month, day-of-week): both are ?; use ? in "
                            "only one of them");
        if (!dom_s && !dow_s)
            return ty_error(
                err, TY_EINVAL, "day-of-week", (int)(fstart[5] - text), (int)(fend[5] - fstart[5]),
                "fields 4 and 6 (day-of-month, day-of-week): both are restricted "
                "(\"%.*s\" and \"%.*s\"); use ? in day-of-month or day-of-week",
                (int)(fend[3] - fstart[3]), fstart[3], (int)(fend[5] - fstart[5]), fstart[5]);
    }
    return 0;
}

int cron_parse(const char *text, struct cron_expr *out, struct ty_err *err)
{
    memset(out, 0, sizeof *out);
    const char *s = text;
    const char *end = text + strlen(text);
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;
    if (s == end)
        return ty_error(err, TY_EINVAL, "expression", 0, 0, "the expression is empty");
    for (const char *c = s; c < end; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < 0x20 && u != '\t') || u >= 0x7f)
            return ty_error(err, TY_EINVAL, "expression", (int)(c - text), 1,
                            "unexpected character 0x%02x at position %d (only printable ASCII, "
                            "spaces and tabs)",
                            u, (int)(c - text) + 1);
    }
    int rc = *s == '@' ? parse_macro(text, s, end, out, err) : parse_fields(text, s, end, out, err);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Matching on local time
 */

/* The days of month m of year y that match, bit d-1 for day d. */
static uint32_t day_mask(const struct cron_expr *e, int64_t y, int m)
{
    int dim = civil_days_in_month(y, m);
    uint32_t full = (UINT32_C(1) << dim) - 1;
    int w1 = civil_weekday(civil_days_from_ymd(y, m, 1)); /* weekday of day 1 */
    int wl = (w1 + dim - 1) % 7;                          /* weekday of the last day */

    uint32_t dm = e->dom & full;
    for (uint32_t b = e->dom_last; b != 0; b &= b - 1) {
        int d = dim - __builtin_ctz(b);
        if (d >= 1)
            dm |= UINT32_C(1) << (d - 1);
    }
    for (uint32_t b = e->dom_near; b != 0; b &= b - 1) {
        int n = __builtin_ctz(b) + 1;
        if (n > dim)
            continue; /* no day n this month: no match (spec §4) */
        int wd = (w1 + n - 1) % 7;
        int d = n;
        if (wd == 6)
            d = n > 1 ? n - 1 : n + 2;
        else if (wd == 0)
            d = n < dim ? n + 1 : n - 2;
        dm |= UINT32_C(1) << (d - 1);
    }
    if (e->flags & CRON_F_DOM_LW) {
        int d = dim - (wl == 6 ? 1 : wl == 0 ? 2 : 0);
        dm |= UINT32_C(1) << (d - 1);
    }

    uint32_t wm = 0;
    if (e->dow) {
        /* rotate the weekday set so bit i says whether day i+1 matches, then repeat it */
        uint32_t week = ((uint32_t)e->dow | (uint32_t)e->dow << 7) >> w1 & 0x7f;
        wm = week | week << 7 | week << 14 | week << 21 | week << 28;
    }
    for (uint32_t b = e->dow_last; b != 0; b &= b - 1) {
        int wd = __builtin_ctz(b);
        wm |= UINT32_C(1) << (dim - 1 - (wl - wd + 7) % 7);
    }
    for (uint64_t b = e->dow_nth; b != 0; b &= b - 1) {
        int bit = ctz64(b);
        int k = bit / 7 + 1, wd = bit % 7;
        int d = 1 + (wd - w1 + 7) % 7 + 7 * (k - 1);
        if (d <= dim)
            wm |= UINT32_C(1) << (d - 1);
    }
    wm &= full;

    int dom_restricted = !(e->flags & CRON_F_DOM_STAR);
    int dow_restricted = !(e->flags & CRON_F_DOW_STAR);
    return dom_restricted && dow_restricted ? (dm | wm) : (dm & wm);
}

#define NONE INT64_MAX

/*
 * The smallest local time >= from (local seconds) that matches e, or NONE when there is
 * none up to 2199-12-31T23:59:59.  Each step moves a field to its next allowed value and
 * resets the smaller fields, so the loop runs a handful of times per call.
 */
static int64_t local_next(const struct cron_expr *e, int64_t from)
{
    struct civil_time c;
    civil_from_seconds(from, &c);
    int64_t mask_year = -1;
    int mask_mon = 0;
    uint32_t mask = 0;

    for (;;) {
        if (c.year > CRON_MAX_YEAR)
            return NONE;
        if (!year_has(e, c.year)) {
            int64_t y = year_next(e, c.year + 1);
            if (y < 0)
                return NONE;
            c = (struct civil_time){y, 1, 1, 0, 0, 0};
        }
        int mo = next_bit64(e->mon, c.mon - 1);
        if (mo < 0) {
            c = (struct civil_time){c.year + 1, 1, 1, 0, 0, 0};
            continue;
        }
        if (mo + 1 != c.mon)
            c = (struct civil_time){c.year, mo + 1, 1, 0, 0, 0};
        if (mask_year != c.year || mask_mon != c.mon) {
            mask = day_mask(e, c.year, c.mon);
            mask_year = c.year;
            mask_mon = c.mon;
        }
        int d = next_bit64(mask, c.mday - 1);
        if (d < 0) {
            c = c.mon == 12 ? (struct civil_time){c.year + 1, 1, 1, 0, 0, 0}
                            : (struct civil_time){c.year, c.mon + 1, 1, 0, 0, 0};
            continue;
        }
        if (d + 1 != c.mday)
            c.mday = d + 1, c.hour = c.min = c.sec = 0;
        int h = next_bit64(e->hour, c.hour);
        if (h < 0)
            goto next_day;
        if (h != c.hour)
            c.hour = h, c.min = c.sec = 0;
        int mi = next_bit64(e->min, c.min);
        if (mi < 0)
            goto next_hour;
        if (mi != c.min)
            c.min = mi, c.sec = 0;
        int s = next_bit64(e->sec, c.sec);
        if (s >= 0) {
            c.sec = s;
            return civil_to_seconds(&c);
        }
        /* no second left in this minute */
        c.sec = 0;
        if (++c.min < 60)
            continue;
        c.min = 0;
    next_hour:
        c.min = c.sec = 0;
        if (++c.hour < 24)
            continue;
    next_day:
        c.hour = c.min = c.sec = 0;
        if (++c.mday > civil_days_in_month(c.year, c.mon)) {
            c.mday = 1;
            if (++c.mon > 12)
                c.mon = 1, c.year++;
        }
    }
}

int cron_hour_all(const struct cron_expr *e)
{
    return e->form != CRON_FORM_EVERY && e->hour == UINT32_C(0xffffff);
}

/* 2199-12-31T23:59:59 on a local clock. */
static int64_t local_horizon(void)
{
    return civil_days_from_ymd(CRON_MAX_YEAR, 12, 31) * CIVIL_SECS_PER_DAY + 86399;
}

/* Memo of one local search: for any start in [lo, at], the answer is `at`. */
struct memo {
    int64_t lo;
    int64_t at;
};

static int64_t memo_next(const struct cron_expr *e, struct memo *m, int64_t from)
{
    if (from >= m->lo && from <= m->at)
        return m->at;
    m->lo = from;
    m->at = local_next(e, from);
    return m->at;
}

int cron_next(const struct cron_expr *e, const struct tz_zone *z, int64_t after, int64_t *out)
{
    if (after < CRON_MIN_TIME)
        return TY_ERANGE;
    const int64_t horizon = local_horizon();

    if (e->form == CRON_FORM_EVERY) {
        int64_t t = (after / e->every + 1) * e->every;
        struct tz_info ti;
        tz_lookup(z, t, &ti);
        if (t + ti.utoff > horizon)
            return TY_ENOENT;
        *out = t;
        return 0;
    }

    const int hour_all = cron_hour_all(e);
    const int32_t maxoff = tz_max_utoff(z);
    const uint32_t nspans = tz_span_count(z);
    struct memo m = {INT64_MAX, INT64_MIN};
    int64_t s = after + 1;
    uint32_t idx = tz_span_find(z, s);

    for (;;) {
        struct tz_span sp;
        tz_span_get(z, idx, &sp);
        assert(s >= sp.start && s < sp.end);

        if (s == sp.start && sp.utoff > sp.prev_utoff && !hour_all) {
            /* entering a gap: fire once at its end if a skipped local time matched */
            int64_t g0 = sp.start + sp.prev_utoff, g1 = sp.start + sp.utoff;
            int64_t l = memo_next(e, &m, g0);
            if (l != NONE && l < g1) {
                if (g1 > horizon)
                    return TY_ENOENT;
                *out = sp.start;
                return 0;
            }
        }

        int64_t lo = s + sp.utoff;
        if (sp.utoff < sp.prev_utoff && !hour_all && lo < sp.start + sp.prev_utoff)
            lo = sp.start + sp.prev_utoff; /* repeated local times fired in the span before */
        int64_t l = memo_next(e, &m, lo);
        if (l != NONE && (sp.end == INT64_MAX || l < sp.end + sp.utoff)) {
            *out = l - sp.utoff;
            return 0;
        }

        /*
         * No match in [lo, l) (l may be NONE: no match at all from lo on): skip every span
         * whose local times all lie below l.  The one
         * exception is the next span when it repeats local times (an overlap) and this
         * schedule fires at both occurrences: its repeated times lie below lo, where the
         * search above did not look, so it must be visited.
         */
        if (idx + 1 >= nspans)
            return TY_ENOENT;
        struct tz_span nx;
        tz_span_get(z, idx + 1, &nx);
        int revisit = hour_all && nx.utoff < nx.prev_utoff;
        if (l == NONE && !revisit)
            return TY_ENOENT;
        uint32_t k = l == NONE ? idx + 1 : tz_span_find(z, l - maxoff);
        if (k <= idx + 1 || revisit)
            k = idx + 1;
        idx = k;
        tz_span_get(z, idx, &sp);
        s = sp.start;
    }
}

/* ---------------------------------------------------------------------------------------
 * Formatting
 */

static int has_bit(const uint64_t *words, int i)
{
    return (int)(words[i >> 6] >> (i & 63) & 1);
}

/*
 * If the set is exactly one arithmetic progression a, a+n, ... (n >= 2, three values or
 * more) write it as a step ("a/n" when it runs to the top of the field, else "a-b/n")
 * and return 1; else return 0.
 */
static int format_step(struct strbuf *sb, const uint64_t *words, int count, int base, int star_ok)
{
    int a = -1, n = 0, last = -1, k = 0;
    for (int i = 0; i < count; i++) {
        if (!has_bit(words, i))
            continue;
        if (a < 0)
            a = i;
        else if (n == 0)
            n = i - a;
        else if (i - last != n)
            return 0;
        last = i;
        k++;
    }
    if (k < 3 || n < 2)
        return 0;
    if (last + n >= count && a == 0 && star_ok)
        sb_addf(sb, "*/%d", n);
    else if (last + n >= count)
        sb_addf(sb, "%d/%d", base + a, n);
    else
        sb_addf(sb, "%d-%d/%d", base + a, base + last, n);
    return 1;
}

/*
 * Write the set bits (bit i = value base+i, count values) as one step, or as a list of
 * numbers and ascending ranges.  `first` is 0 when items are already written (a comma
 * goes first).  Returns the number of items written.
 */
static int format_set(struct strbuf *sb, const uint64_t *words, int count, int base, int first,
                      int star_ok)
{
    if (first && format_step(sb, words, count, base, star_ok))
        return 1;
    int items = 0;
    int i = 0;
    while (i < count) {
        if (!has_bit(words, i)) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < count && has_bit(words, j + 1))
            j++;
        if (!(first && items == 0))
            sb_addc(sb, ',');
        if (j - i >= 2)
            sb_addf(sb, "%d-%d", base + i, base + j);
        else if (j == i + 1)
            sb_addf(sb, "%d,%d", base + i, base + j);
        else
            sb_addf(sb, "%d", base + i);
        items++;
        i = j + 1;
    }
    return items;
}

static void format_simple(struct strbuf *sb, uint64_t bits, int count, int base)
{
    uint64_t full = count == 64 ? ~UINT64_C(0) : (UINT64_C(1) << count) - 1;
    if ((bits & full) == full) {
        sb_addc(sb, '*');
        return;
    }
    format_set(sb, &bits, count, base, 1, 1);
}

/* n when bits is exactly {0, n, 2n, ...} below count (n >= 2), else 0. */
static int star_step(uint64_t bits, int count)
{
    for (int n = 2; n <= count; n++) {
        uint64_t want = 0;
        for (int i = 0; i < count; i += n)
            want |= UINT64_C(1) << i;
        if (bits == want)
            return n;
    }
    return 0;
}

/*
 * A Unix day field that began with "*" must still begin so (spec §5): "*", "*\/n", or
 * "*\/count" (the first value alone) followed by the other values.  Returns 1 when the
 * whole field was written.
 */
static int format_star_field(struct strbuf *sb, uint64_t *bits, int count)
{
    uint64_t full = (UINT64_C(1) << count) - 1;
    if (*bits == full) {
        sb_addc(sb, '*');
        return 1;
    }
    int n = star_step(*bits, count);
    if (n > 0) {
        sb_addf(sb, "*/%d", n);
        return 1;
    }
    sb_addf(sb, "*/%d", count);
    *bits &= ~UINT64_C(1);
    return 0;
}

static void format_dom(const struct cron_expr *e, struct strbuf *sb)
{
    uint64_t dom = e->dom;
    int first = 1;
    if (e->flags & CRON_F_DOM_QMARK) {
        sb_addc(sb, '?');
        return;
    }
    if (e->flags & CRON_F_DOM_STAR) {
        if (format_star_field(sb, &dom, 31))
            return;
        first = 0;
    }
    if (format_set(sb, &dom, 31, 1, first, e->form == CRON_FORM_QUARTZ) > 0)
        first = 0;
    for (int n = 0; n <= 30; n++) {
        if (e->dom_last >> n & 1) {
            sb_adds(sb, first ? "" : ",");
            if (n == 0)
                sb_addc(sb, 'L');
            else
                sb_addf(sb, "L-%d", n);
            first = 0;
        }
    }
    for (int n = 1; n <= 31; n++) {
        if (e->dom_near >> (n - 1) & 1) {
            sb_addf(sb, "%s%dW", first ? "" : ",", n);
            first = 0;
        }
    }
    if (e->flags & CRON_F_DOM_LW)
        sb_addf(sb, "%sLW", first ? "" : ",");
}

static void format_dow(const struct cron_expr *e, struct strbuf *sb)
{
    int quartz = e->form == CRON_FORM_QUARTZ;
    uint64_t dow = e->dow;
    int first = 1;
    if (e->flags & CRON_F_DOW_QMARK) {
        sb_addc(sb, '?');
        return;
    }
    if (e->flags & CRON_F_DOW_STAR) {
        if (format_star_field(sb, &dow, 7))
            return;
        first = 0;
    }
    if (format_set(sb, &dow, 7, quartz ? 1 : 0, first, quartz) > 0)
        first = 0;
    for (int d = 0; d < 7; d++) {
        if (e->dow_last >> d & 1) {
            sb_addf(sb, "%s%dL", first ? "" : ",", d + 1);
            first = 0;
        }
    }
    for (int b = 0; b < 35; b++) {
        if (e->dow_nth >> b & 1) {
            sb_addf(sb, "%s%d#%d", first ? "" : ",", b % 7 + 1, b / 7 + 1);
            first = 0;
        }
    }
}

void cron_format(const struct cron_expr *e, struct strbuf *sb)
{
    if (e->form == CRON_FORM_EVERY) {
        static const int secs[] = {86400, 3600, 60, 1};
        static const char units[] = "dhms";
        uint32_t left = e->every;
        sb_adds(sb, "@every ");
        for (int i = 0; i < 4; i++) {
            if (left >= (uint32_t)secs[i]) {
                sb_addf(sb, "%u%c", left / secs[i], units[i]);
                left %= secs[i];
            }
        }
        return;
    }
    if (e->form == CRON_FORM_QUARTZ) {
        format_simple(sb, e->sec, 60, 0);
        sb_addc(sb, ' ');
    }
    format_simple(sb, e->min, 60, 0);
    sb_addc(sb, ' ');
    format_simple(sb, e->hour, 24, 0);
    sb_addc(sb, ' ');
    format_dom(e, sb);
    sb_addc(sb, ' ');
    format_simple(sb, e->mon, 12, 1);
    sb_addc(sb, ' ');
    format_dow(e, sb);
    if (e->flags & CRON_F_YEAR) {
        sb_addc(sb, ' ');
        int all = 1;
        for (int y = 1970; y <= CRON_MAX_YEAR; y++)
            all &= year_has(e, y);
        if (all)
            sb_addc(sb, '*');
        else
            format_set(sb, e->year, 230, 1970, 1, 1);
    }
}

int cron_equal(const struct cron_expr *a, const struct cron_expr *b)
{
    return a->sec == b->sec && a->min == b->min && a->year[0] == b->year[0] &&
           a->year[1] == b->year[1] && a->year[2] == b->year[2] && a->year[3] == b->year[3] &&
           a->dow_nth == b->dow_nth && a->hour == b->hour && a->dom == b->dom &&
           a->dom_last == b->dom_last && a->dom_near == b->dom_near && a->every == b->every &&
           a->mon == b->mon && a->dow == b->dow && a->dow_last == b->dow_last &&
           a->form == b->form && a->flags == b->flags;
}
