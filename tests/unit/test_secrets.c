/*
 * test_secrets.c - the pure pieces of API security: hiding secret values in output
 * (core/mask.c), token secrets, hashes and durations (api/token.c), and which listen
 * addresses count as loopback (api/http.c).
 *
 * Masking is checked three ways: a table of cases written out by hand (the rules of
 * mask.h, one by one); every way of splitting each case's text into two and three pieces
 * (a value across a piece boundary must still be hidden); and random texts, values,
 * piece sizes, cuts and skipped context against a brute-force model of the same rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/http.h"
#include "api/token.h"
#include "core/mask.h"
#include "core/strbuf.h"

#define M MASK_TEXT

/* ---- helpers ------------------------------------------------------------------------------ */

static struct mask_set *make_set(const char *const *values, size_t n)
{
    struct mask_set *set = NULL;
    assert_int_equal(mask_set_new(values, n, &set), 0);
    return set;
}

/* Text through a stream fed in pieces cut at the given offsets (ascending, < n). */
static char *stream_pieces(const struct mask_set *set, const char *text, size_t n, uint64_t skip,
                           bool cut, const size_t *at, size_t n_at)
{
    struct mask_stream ms;
    mask_stream_init(&ms, set, skip, cut);
    struct strbuf out;
    sb_init(&out);
    size_t from = 0;
    for (size_t i = 0; i <= n_at; i++) {
        size_t to = i < n_at ? at[i] : n;
        assert_int_equal(mask_stream_feed(&ms, text + from, to - from, &out), 0);
        from = to;
    }
    assert_int_equal(mask_stream_end(&ms, &out), 0);
    mask_stream_free(&ms);
    assert_false(sb_failed(&out));
    char *s = strdup(sb_str(&out));
    sb_free(&out);
    return s;
}

/* ---- the rules, case by case -------------------------------------------------------------- */

struct mask_case {
    const char *values[4];
    const char *text;
    bool cut;
    const char *want;
};

static const struct mask_case cases[] = {
    {{"hunter22"}, "pw=hunter22\n", false, "pw=" M "\n"},
    {{"hunter22"}, "hunter22hunter22", false, M M},
    {{"hunter22"}, "no secret here", false, "no secret here"},
    {{"hunter22"}, "", false, ""},
    /* shorter than MASK_MIN_LEN: not hidden */
    {{"abc"}, "abc abc", false, "abc abc"},
    {{"abcd"}, "abc abcd", false, "abc " M},
    /* the longer value wins where both match */
    {{"pass", "password"}, "password pass", false, M " " M},
    {{"word", "password"}, "password", false, M},
    /* overlapping occurrences: left to right, each once */
    {{"aaaa"}, "aaaaaa", false, M "aa"},
    /* a value at the very end, and the text ending inside a value */
    {{"s3cr3t-v4lue"}, "x s3cr3t-v4lue", false, "x " M},
    {{"s3cr3t-v4lue"}, "x s3cr3t", false, "x " M},
    {{"s3cr3t-v4lue"}, "x s3c", false, "x s3c"},
    /* a cut: the text may begin with the end of a value */
    {{"s3cr3t-v4lue"}, "t-v4lue rest", true, M " rest"},
    {{"s3cr3t-v4lue"}, "lue rest", true, "lue rest"},
    {{"s3cr3t-v4lue"}, "t-v4lue rest", false, "t-v4lue rest"},
    {{"s3cr3t-v4lue"}, "s3cr3t-v4lue", true, M},
    /* multi-line values and bytes that are not text */
    {{"line1\nline2"}, "a line1\nline2 b", false, "a " M " b"},
    {{"\xff\xfe\x01\x02"}, "x\xff\xfe\x01\x02y", false, "x" M "y"},
    /* several values, repeats among them */
    {{"alpha-1", "beta-22", "alpha-1"}, "beta-22/alpha-1/gamma", false, M "/" M "/gamma"},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct mask_case *k = &cases[c];
        size_t nv = 0;
        while (nv < 4 && k->values[nv] != NULL)
            nv++;
        struct mask_set *set = make_set(k->values, nv);
        size_t n = strlen(k->text);
        /* whole */
        struct strbuf out;
        sb_init(&out);
        assert_int_equal(mask_apply(set, k->text, n, k->cut, &out), 0);
        if (strcmp(sb_str(&out), k->want) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", c, sb_str(&out), k->want);
        sb_free(&out);
        /* in two and three pieces, every split */
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                size_t at[2] = {a, b};
                char *got = stream_pieces(set, k->text, n, 0, k->cut, at, 2);
                if (strcmp(got, k->want) != 0)
                    fail_msg("case %zu split %zu/%zu: got \"%s\", want \"%s\"", c, a, b, got,
                             k->want);
                free(got);
            }
        }
        mask_set_unref(set);
    }
}

static void test_set(void **state)
{
    (void)state;
    const char *none[] = {"a", "ab", "abc", "", NULL};
    struct mask_set *set = (struct mask_set *)1;
    assert_int_equal(mask_set_new(none, 5, &set), 0);
    assert_null(set); /* nothing long enough to hide: no set, and NULL hides nothing */
    struct strbuf out;
    sb_init(&out);
    assert_int_equal(mask_apply(NULL, "abc", 3, true, &out), 0);
    assert_string_equal(sb_str(&out), "abc");
    sb_free(&out);

    const char *some[] = {"abcd", "abcd", "xyz12345"};
    set = make_set(some, 3);
    assert_int_equal(mask_set_count(set), 2);
    assert_int_equal(mask_set_max_len(set), 8);
    assert_ptr_equal(mask_set_ref(set), set);
    mask_set_unref(set);
    mask_set_unref(set);
}

/* Context before the offset asked for: read, never shown, but a value that starts in it
 * and ends after it still shows as the mask. */
static void test_skip(void **state)
{
    (void)state;
    const char *v[] = {"hunter22"};
    struct mask_set *set = make_set(v, 1);
    const char *text = "ab hunter22 cd";
    struct {
        uint64_t skip;
        const char *want;
    } t[] = {
        {0, "ab " M " cd"}, {2, " " M " cd"}, {3, M " cd"}, {5, M " cd"},
        {10, M " cd"},      {11, " cd"},      {12, "cd"},   {14, ""},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (size_t a = 0; a <= strlen(text); a++) {
            char *got = stream_pieces(set, text, strlen(text), t[i].skip, false, &a, 1);
            if (strcmp(got, t[i].want) != 0)
                fail_msg("skip %llu split %zu: got \"%s\", want \"%s\"",
                         (unsigned long long)t[i].skip, a, got, t[i].want);
            free(got);
        }
    }
    mask_set_unref(set);
}

/* Bytes lost in the middle: what was held is settled, the next piece may begin with the
 * end of a value. */
static void test_stream_cut(void **state)
{
    (void)state;
    const char *v[] = {"s3cr3t-v4lue"};
    struct mask_set *set = make_set(v, 1);
    struct mask_stream ms;
    mask_stream_init(&ms, set, 0, false);
    struct strbuf out;
    sb_init(&out);
    assert_int_equal(mask_stream_feed(&ms, "one s3cr3t", 10, &out), 0);
    assert_string_equal(sb_str(&out), "one "); /* the start of the value is held */
    assert_int_equal(mask_stream_cut(&ms, &out), 0);
    assert_string_equal(sb_str(&out), "one " M); /* settled: a start long enough is hidden */
    assert_int_equal(mask_stream_feed(&ms, "r3t-v4lue two", 13, &out), 0);
    assert_int_equal(mask_stream_end(&ms, &out), 0);
    assert_string_equal(sb_str(&out), "one " M M " two");
    mask_stream_free(&ms);
    sb_free(&out);
    mask_set_unref(set);
}

/* ---- random texts against a model ------------------------------------------------------- */

struct model {
    const char *v[4];
    size_t len[4];
    size_t n;
};

static bool model_starts(const struct model *m, const char *p, size_t rest)
{
    for (size_t k = 0; k < m->n; k++)
        if (m->len[k] > rest && memcmp(p, m->v[k], rest) == 0)
            return true;
    return false;
}

/* The rules of mask.h, brute force, on a whole text. */
static void model_mask(const struct model *m, const char *t, size_t n, bool cut, uint64_t skip,
                       struct strbuf *out)
{
    size_t i = 0;
    uint64_t pos = 0;
    if (cut) {
        size_t best = 0;
        for (size_t k = 0; k < m->n; k++)
            for (size_t q = MASK_MIN_LEN; q < m->len[k] && q <= n; q++)
                if (memcmp(t, m->v[k] + m->len[k] - q, q) == 0 && q > best)
                    best = q;
        if (best > 0) {
            if (best > skip)
                sb_adds(out, M);
            i = best;
        }
    }
    while (i < n) {
        size_t rest = n - i, whole = 0, part = 0;
        for (size_t k = 0; k < m->n; k++)
            if (m->len[k] <= rest && memcmp(t + i, m->v[k], m->len[k]) == 0 && m->len[k] > whole)
                whole = m->len[k];
        if (rest >= MASK_MIN_LEN && model_starts(m, t + i, rest))
            part = rest;
        size_t take = whole > part ? whole : part;
        if (take > 0) {
            if (i + take > skip)
                sb_adds(out, M);
            i += take;
            continue;
        }
        pos = i;
        if (pos >= skip)
            sb_addc(out, t[i]);
        i++;
    }
}

static void test_random(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
#define RND() (x ^= x << 13, x ^= x >> 17, x ^= x << 5, x)
    static const char alphabet[] = "ab\nc";
    for (int round = 0; round < 20000; round++) {
        char vals[4][16];
        struct model m = {.n = 1 + RND() % 3};
        for (size_t k = 0; k < m.n; k++) {
            size_t len = 4 + RND() % 7;
            for (size_t i = 0; i < len; i++)
                vals[k][i] = alphabet[RND() % 3]; /* a and b mostly: many near misses */
            vals[k][len] = '\0';
            m.v[k] = vals[k];
        }
        struct mask_set *set = make_set(m.v, m.n);
        /* the set drops repeats; the model does not need to */
        for (size_t k = 0; k < m.n; k++)
            m.len[k] = strlen(m.v[k]);
        char text[96];
        size_t n = RND() % sizeof text;
        for (size_t i = 0; i < n; i++) {
            if (RND() % 4 == 0 && i + 10 < n) { /* plant a value now and then */
                size_t k = RND() % m.n;
                memcpy(text + i, m.v[k], m.len[k]);
                i += m.len[k] - 1;
            } else {
                text[i] = alphabet[RND() % 4];
            }
        }
        bool cut = RND() % 3 == 0;
        uint64_t skip = RND() % 4 == 0 ? RND() % (n + 1) : 0;
        struct strbuf want;
        sb_init(&want);
        model_mask(&m, text, n, cut, skip, &want);
        size_t at[6], n_at = RND() % 6;
        for (size_t i = 0; i < n_at; i++)
            at[i] = n ? RND() % (n + 1) : 0;
        for (size_t i = 1; i < n_at; i++) /* ascending */
            for (size_t j = i; j > 0 && at[j - 1] > at[j]; j--) {
                size_t tmp = at[j];
                at[j] = at[j - 1];
                at[j - 1] = tmp;
            }
        char *got = stream_pieces(set, text, n, skip, cut, at, n_at);
        if (strcmp(got, sb_str(&want)) != 0)
            fail_msg("round %d: values \"%s\" \"%s\" \"%s\", text \"%.*s\" cut %d skip %llu:\n"
                     " got \"%s\"\nwant \"%s\"",
                     round, m.v[0], m.n > 1 ? m.v[1] : "", m.n > 2 ? m.v[2] : "", (int)n, text, cut,
                     (unsigned long long)skip, got, sb_str(&want));
        free(got);
        sb_free(&want);
        mask_set_unref(set);
    }
#undef RND
}

/* A long value made of one repeated byte, with a cut: the tail search is linear. */
static void test_long_value(void **state)
{
    (void)state;
    static char value[32769], text[70000];
    memset(value, 'a', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    const char *v[] = {value};
    struct mask_set *set = make_set(v, 1);
    memset(text, 'a', sizeof text);
    struct strbuf out;
    sb_init(&out);
    assert_int_equal(mask_apply(set, text, sizeof text, true, &out), 0);
    assert_non_null(strstr(sb_str(&out), M));
    assert_null(strstr(sb_str(&out), "aaaa"));
    sb_free(&out);
    mask_set_unref(set);
}

/* ---- tokens ------------------------------------------------------------------------------- */

static void test_token_hash(void **state)
{
    (void)state;
    char h[TOKEN_HASH_HEX];
    assert_int_equal(token_hash("abc", 3, h), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(token_hash("", 0, h), 0);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_token_generate(void **state)
{
    (void)state;
    char a[TOKEN_SECRET_LEN + 1], b[TOKEN_SECRET_LEN + 1];
    struct ty_err err;
    assert_int_equal(token_generate(a, &err), 0);
    assert_int_equal(token_generate(b, &err), 0);
    assert_int_equal(strlen(a), TOKEN_SECRET_LEN);
    assert_memory_equal(a, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
    assert_int_equal(strspn(a + strlen(TOKEN_PREFIX), "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
}

static void test_token_equal(void **state)
{
    (void)state;
    assert_true(token_equal("secret", 6, "secret", 6));
    assert_false(token_equal("secret", 6, "secreT", 6));
    assert_false(token_equal("secret", 6, "secret!", 7));
    assert_false(token_equal("secret", 6, "secre", 5));
    assert_false(token_equal("secret", 6, "", 0));
}

static void test_token_duration(void **state)
{
    (void)state;
    struct {
        const char *text;
        int64_t want; /* 0: refused */
        const char *msg;
    } t[] = {
        {"30d", INT64_C(30) * 86400, NULL},
        {"12h", INT64_C(12) * 3600, NULL},
        {"1d12h", 86400 + INT64_C(12) * 3600, NULL},
        {"90m", 5400, NULL},
        {"45s", 45, NULL},
        {"2w", INT64_C(14) * 86400, NULL},
        {"3600", 3600, NULL},
        {"1h30m15s", 5415, NULL},
        {"3650d", INT64_C(3650) * 86400, NULL},
        {"", 0, "--expires: \"\" is not a duration (e.g. 30d, 12h, 1d12h, 90m, 3600)"},
        {"3x", 0, "--expires: \"3x\" is not a duration"},
        {"d", 0, "is not a duration"},
        {"1d5", 0, "is not a duration"},
        {"-1d", 0, "is not a duration"},
        {"0", 0, "--expires: \"0\" is out of range: from 1 second to 3650 days"},
        {"0s", 0, "out of range"},
        {"3651d", 0, "out of range"},
        {"99999999999999999999", 0, "out of range"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t got = -1;
        struct ty_err err;
        ty_err_clear(&err);
        int rc = token_parse_duration(t[i].text, "--expires", &got, &err);
        if (t[i].want > 0) {
            if (rc != 0 || got != t[i].want)
                fail_msg("\"%s\": rc %d, %lld, want %lld (%s)", t[i].text, rc, (long long)got,
                         (long long)t[i].want, err.msg);
        } else {
            assert_int_equal(rc, TY_EINVAL);
            if (strstr(err.msg, t[i].msg) == NULL)
                fail_msg("\"%s\": message \"%s\" lacks \"%s\"", t[i].text, err.msg, t[i].msg);
            assert_string_equal(err.field, "--expires");
        }
    }
}

static void test_loopback(void **state)
{
    (void)state;
    struct {
        const char *listen;
        int rc;
        bool loopback;
    } t[] = {
        {"127.0.0.1:8080", 0, true},
        {"127.1.2.3:0", 0, true},
        {"localhost:80", 0, true},
        {"[::1]:0", 0, true},
        {"[::ffff:127.0.0.1]:9", 0, true},
        {"0.0.0.0:8080", 0, false},
        {"[::]:0", 0, false},
        {"10.1.2.3:80", 0, false},
        {"128.0.0.1:80", 0, false},
        {"[::ffff:10.0.0.1]:9", 0, false},
        {"nohost", TY_EINVAL, false},
        {"example.com:80", TY_EINVAL, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bool lb = !t[i].loopback;
        struct ty_err err;
        int rc = http_listen_is_loopback(t[i].listen, &lb, &err);
        if (rc != t[i].rc || (rc == 0 && lb != t[i].loopback))
            fail_msg("%s: rc %d loopback %d", t[i].listen, rc, lb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),       cmocka_unit_test(test_set),
        cmocka_unit_test(test_skip),        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_random),      cmocka_unit_test(test_long_value),
        cmocka_unit_test(test_token_hash),  cmocka_unit_test(test_token_generate),
        cmocka_unit_test(test_token_equal), cmocka_unit_test(test_token_duration),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
