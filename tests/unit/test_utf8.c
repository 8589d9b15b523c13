/*
 * test_utf8.c - the UTF-8 checks against RFC 3629's table and the usual traps: every
 * boundary of every sequence length, overlongs, surrogates, past U+10FFFF, truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

struct vec {
    const char *bytes;
    size_t n;
    size_t invalid_at; /* what utf8_invalid_at says */
    const char *what;
};

#define V(lit, at, what)                                                                           \
    {                                                                                              \
        lit, sizeof(lit) - 1, at, what                                                             \
    }

static const struct vec vecs[] = {
    V("", 0, "empty"),
    V("plain ascii", 11, "ascii"),
    V("\x7f", 1, "last one-byte"),
    V("\xc2\x80", 2, "first two-byte (U+0080)"),
    V("caf\xc3\xa9", 5, "e acute"),
    V("\xdf\xbf", 2, "last two-byte (U+07FF)"),
    V("\xe0\xa0\x80", 3, "first three-byte (U+0800)"),
    V("\xed\x9f\xbf", 3, "just below the surrogates (U+D7FF)"),
    V("\xee\x80\x80", 3, "just above the surrogates (U+E000)"),
    V("\xef\xbf\xbf", 3, "last three-byte (U+FFFF)"),
    V("\xf0\x90\x80\x80", 4, "first four-byte (U+10000)"),
    V("\xf4\x8f\xbf\xbf", 4, "last code point (U+10FFFF)"),
    V("\xe6\x97\xa5\xe6\x9c\xac", 6, "two CJK characters"),
    V("\x80", 0, "a lone continuation byte"),
    V("ab\xbf", 2, "a continuation byte after ascii"),
    V("\xc0\xaf", 0, "overlong '/' (C0)"),
    V("\xc1\xbf", 0, "overlong (C1)"),
    V("\xe0\x9f\xbf", 0, "overlong three-byte"),
    V("\xf0\x8f\xbf\xbf", 0, "overlong four-byte"),
    V("\xed\xa0\x80", 0, "a high surrogate (U+D800)"),
    V("\xed\xbf\xbf", 0, "a low surrogate (U+DFFF)"),
    V("\xf4\x90\x80\x80", 0, "past U+10FFFF"),
    V("\xf5\x80\x80\x80", 0, "lead F5"),
    V("\xff", 0, "FF"),
    V("ok\xc3", 2, "truncated two-byte at the end"),
    V("ok\xe2\x82", 2, "truncated three-byte at the end"),
    V("\xe2\x28\xa1", 0, "a bad second byte"),
    V("\xe2\x82\x28", 0, "a bad third byte"),
    V("\xf0\x90\x80\x28", 0, "a bad fourth byte"),
    V("a\0b", 3, "NUL is well-formed (callers refuse it separately)"),
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const struct vec *v = &vecs[i];
        size_t got = utf8_invalid_at((const unsigned char *)v->bytes, v->n);
        if (got != v->invalid_at)
            fail_msg("%s: invalid_at %zu, expected %zu", v->what, got, v->invalid_at);
    }
}

/* utf8_seq agrees with a plain decoder over every lead byte and a sample of followers. */
static void test_seq_against_decoder(void **state)
{
    (void)state;
    static const unsigned char follow[] = {0x00, 0x7f, 0x80, 0x8f, 0x90,
                                           0x9f, 0xa0, 0xbf, 0xc0, 0xff};
    for (unsigned lead = 0; lead < 256; lead++) {
        for (size_t a = 0; a < sizeof follow; a++) {
            for (size_t b = 0; b < sizeof follow; b++) {
                unsigned char p[4] = {(unsigned char)lead, follow[a], follow[b], 0x80};
                /* the reference: decode, then check range, overlong and surrogates */
                size_t len = lead < 0x80    ? 1
                             : lead >= 0xF0 ? 4
                             : lead >= 0xE0 ? 3
                             : lead >= 0xC0 ? 2
                                            : 0;
                size_t want = len;
                if (lead >= 0xF8 || (lead >= 0x80 && lead < 0xC0))
                    want = 0;
                uint32_t cp = len == 1 ? lead : lead & (0x7F >> len);
                for (size_t k = 1; want != 0 && k < len; k++) {
                    if ((p[k] & 0xC0) != 0x80)
                        want = 0;
                    cp = (cp << 6) | (p[k] & 0x3F);
                }
                static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
                if (want != 0 && len > 1 &&
                    (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
                    want = 0;
                size_t got = utf8_seq(p, sizeof p);
                if (got != want)
                    fail_msg("%02x %02x %02x: utf8_seq %zu, expected %zu", p[0], p[1], p[2], got,
                             want);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_seq_against_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
