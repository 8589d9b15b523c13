/*
 * mask.c - hiding secret values in text (see mask.h for the rules).
 *
 * One scan, left to right.  At each byte whose value could start a value (a bitmap of
 * first bytes keeps the common case to one lookup), the values are tried longest first;
 * a full match is replaced and skipped, anything else is shown as it is.  Near the end of
 * what has arrived, a byte run that is the beginning of a longer value is held back
 * instead of decided: only the next piece (or the end) can tell.
 *
 * The tail of a value at a cut is found with the KMP failure function: the longest prefix
 * of the text that is a suffix of the value, in time linear in both, so a long value does
 * not make a cut quadratic.
 *
 * The scan at one position compares against every value that starts with that byte, so
 * text made of a value's own repeated byte costs length x values; secrets are short and
 * few, and this runs once per finished run and per piece of a followed log.
 */
#include "mask.h"

#include <stdlib.h>
#include <string.h>

#include "ty_err.h"

struct mask_set {
    unsigned refs;
    size_t n;
    size_t max_len;
    char **values; /* longest first */
    size_t *lens;
    unsigned char first[32]; /* bitmap: bytes some value starts with */
};

static int by_length_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : strcmp(*(char *const *)a, *(char *const *)b);
}

int mask_set_new(const char *const *values, size_t n, struct mask_set **out)
{
    *out = NULL;
    struct mask_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return TY_ENOMEM;
    s->refs = 1;
    s->values = calloc(n ? n : 1, sizeof *s->values);
    s->lens = calloc(n ? n : 1, sizeof *s->lens);
    if (s->values == NULL || s->lens == NULL) {
        mask_set_unref(s);
        return TY_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (values[i] == NULL || strlen(values[i]) < MASK_MIN_LEN)
            continue;
        bool seen = false;
        for (size_t k = 0; k < s->n && !seen; k++)
            seen = strcmp(s->values[k], values[i]) == 0;
        if (seen)
            continue;
        if ((s->values[s->n] = strdup(values[i])) == NULL) {
            mask_set_unref(s);
            return TY_ENOMEM;
        }
        s->n++;
    }
    if (s->n == 0) {
        mask_set_unref(s);
        return 0;
    }
    qsort(s->values, s->n, sizeof *s->values, by_length_desc);
    for (size_t i = 0; i < s->n; i++) {
        s->lens[i] = strlen(s->values[i]);
        unsigned char c = (unsigned char)s->values[i][0];
        s->first[c >> 3] |= (unsigned char)(1u << (c & 7));
        if (s->lens[i] > s->max_len)
            s->max_len = s->lens[i];
    }
    *out = s;
    return 0;
}

struct mask_set *mask_set_ref(struct mask_set *set)
{
    if (set != NULL)
        set->refs++;
    return set;
}

void mask_set_unref(struct mask_set *set)
{
    if (set == NULL || --set->refs > 0)
        return;
    for (size_t i = 0; set->values != NULL && i < set->n; i++)
        free(set->values[i]);
    free(set->values);
    free(set->lens);
    free(set);
}

size_t mask_set_count(const struct mask_set *set)
{
    return set != NULL ? set->n : 0;
}

size_t mask_set_max_len(const struct mask_set *set)
{
    return set != NULL ? set->max_len : 0;
}

/* ---- showing --------------------------------------------------------------------------- */

/* Show n plain raw bytes, minus those still to skip. */
static void show_plain(struct mask_stream *ms, const char *p, size_t n, struct strbuf *out)
{
    if (ms->skip >= n) {
        ms->skip -= n;
        return;
    }
    p += ms->skip;
    n -= (size_t)ms->skip;
    ms->skip = 0;
    sb_add(out, p, n);
}

/* Hide n raw bytes: the mask shows unless all n lie in the skipped context. */
static void show_mask(struct mask_stream *ms, size_t n, struct strbuf *out)
{
    if (ms->skip >= n) {
        ms->skip -= n;
        return;
    }
    ms->skip = 0;
    sb_adds(out, MASK_TEXT);
}

/* ---- matching -------------------------------------------------------------------------- */

/* The longest value that occurs whole at p[0..rest), or 0. */
static size_t full_match(const struct mask_set *s, const char *p, size_t rest)
{
    for (size_t k = 0; k < s->n; k++)
        if (s->lens[k] <= rest && s->values[k][0] == p[0] &&
            memcmp(p, s->values[k], s->lens[k]) == 0)
            return s->lens[k];
    return 0;
}

/* Whether p[0..rest) is the start of a value longer than rest. */
static bool is_start(const struct mask_set *s, const char *p, size_t rest)
{
    for (size_t k = 0; k < s->n; k++)
        if (s->lens[k] > rest && memcmp(p, s->values[k], rest) == 0)
            return true;
    return false;
}

/*
 * The longest k (MASK_MIN_LEN <= k < a value's length, k <= n) such that p[0..k) is the
 * end of a value, or 0.  KMP: run the value through the automaton of p's prefix; the
 * state at the value's end is the longest prefix of p that is a suffix of the value.
 */
static size_t tail_match(const struct mask_set *s, const char *p, size_t n)
{
    size_t best = 0;
    size_t m = n < s->max_len - 1 ? n : s->max_len - 1;
    if (m < MASK_MIN_LEN)
        return 0;
    size_t *fail = malloc(m * sizeof *fail);
    if (fail == NULL)
        return 0;
    fail[0] = 0;
    for (size_t i = 1, q = 0; i < m; i++) {
        while (q > 0 && p[i] != p[q])
            q = fail[q - 1];
        if (p[i] == p[q])
            q++;
        fail[i] = q;
    }
    for (size_t k = 0; k < s->n; k++) {
        const char *v = s->values[k];
        size_t len = s->lens[k], lim = len - 1 < m ? len - 1 : m; /* a proper suffix */
        size_t q = 0;
        for (size_t i = 1; i < len; i++) { /* v[0] can't start a proper suffix */
            while (q > 0 && (q == lim || v[i] != p[q]))
                q = fail[q - 1];
            if (q < lim && v[i] == p[q])
                q++;
        }
        if (q >= MASK_MIN_LEN && q > best)
            best = q;
    }
    free(fail);
    return best;
}

/* Scan buf[0..n): show what is decided, hold back the rest (unless final). */
static void scan(struct mask_stream *ms, const char *buf, size_t n, bool final, struct strbuf *out)
{
    const struct mask_set *s = ms->set;
    size_t i = 0, plain = 0; /* buf[plain..i) is shown as it is at the next decision */
    if (ms->cut && n > 0) {
        if (!final && n < s->max_len - 1) {
            sb_add(&ms->hold, buf, n); /* too little to tell yet */
            return;
        }
        ms->cut = false;
        size_t k = tail_match(s, buf, n);
        if (k > 0) {
            show_mask(ms, k, out);
            i = plain = k;
        }
    }
    while (i < n) {
        unsigned char c = (unsigned char)buf[i];
        if (!(s->first[c >> 3] & (1u << (c & 7)))) {
            i++;
            continue;
        }
        size_t rest = n - i;
        size_t m = 0;
        if (rest < s->max_len && is_start(s, buf + i, rest)) {
            if (!final)
                break; /* the next piece decides */
            if (rest >= MASK_MIN_LEN)
                m = rest; /* the text ends inside a value: hide what there is */
        }
        size_t whole = full_match(s, buf + i, rest);
        if (whole > m)
            m = whole;
        if (m == 0) {
            i++;
            continue;
        }
        show_plain(ms, buf + plain, i - plain, out);
        show_mask(ms, m, out);
        i += m;
        plain = i;
    }
    show_plain(ms, buf + plain, i - plain, out);
    if (i < n)
        sb_add(&ms->hold, buf + i, n - i);
}

/* Scan what is held followed by in[0..n). */
static int step(struct mask_stream *ms, const char *in, size_t n, bool final, struct strbuf *out)
{
    if (ms->set == NULL) {
        show_plain(ms, in, n, out);
        return sb_failed(out) ? TY_ENOMEM : 0;
    }
    if (ms->hold.len == 0) {
        scan(ms, in, n, final, out);
    } else {
        struct strbuf work;
        sb_init(&work);
        sb_add(&work, ms->hold.buf, ms->hold.len);
        sb_add(&work, in, n);
        sb_truncate(&ms->hold, 0);
        if (sb_failed(&work)) {
            sb_free(&work);
            return TY_ENOMEM;
        }
        scan(ms, work.buf, work.len, final, out);
        sb_free(&work);
    }
    return sb_failed(out) || sb_failed(&ms->hold) ? TY_ENOMEM : 0;
}

void mask_stream_init(struct mask_stream *ms, const struct mask_set *set, uint64_t skip, bool cut)
{
    ms->set = set;
    sb_init(&ms->hold);
    ms->cut = cut;
    ms->skip = skip;
}

int mask_stream_feed(struct mask_stream *ms, const char *in, size_t n, struct strbuf *out)
{
    return n > 0 ? step(ms, in, n, false, out) : 0;
}

int mask_stream_cut(struct mask_stream *ms, struct strbuf *out)
{
    int rc = step(ms, "", 0, true, out);
    ms->cut = true;
    return rc;
}

int mask_stream_end(struct mask_stream *ms, struct strbuf *out)
{
    return step(ms, "", 0, true, out);
}

void mask_stream_free(struct mask_stream *ms)
{
    sb_free(&ms->hold);
}

int mask_apply(const struct mask_set *set, const char *in, size_t n, bool cut, struct strbuf *out)
{
    struct mask_stream ms;
    mask_stream_init(&ms, set, 0, cut);
    int rc = step(&ms, in, n, true, out);
    mask_stream_free(&ms);
    return rc;
}
