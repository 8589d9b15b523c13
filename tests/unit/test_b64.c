/*
 * test_b64.c - base64 (RFC 4648 test vectors) and CRC-32C (known answers): the two codecs
 * under the spool's frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"
#include "core/crc32c.h"
#include "core/ty_err.h"

/* RFC 4648 section 10. */
static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        struct strbuf sb;
        sb_init(&sb);
        b64_encode(&sb, vectors[i][0], strlen(vectors[i][0]));
        assert_string_equal(sb_str(&sb), vectors[i][1]);
        sb_truncate(&sb, 0);
        assert_int_equal(b64_decode(&sb, vectors[i][1], strlen(vectors[i][1])), 0);
        assert_int_equal(sb.len, strlen(vectors[i][0]));
        assert_memory_equal(sb_str(&sb), vectors[i][0], sb.len);
        sb_free(&sb);
    }
}

static void test_binary_round_trip(void **state)
{
    (void)state;
    unsigned char data[1027];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    for (size_t n = 0; n <= sizeof data; n += 97) {
        struct strbuf enc, dec;
        sb_init(&enc);
        sb_init(&dec);
        b64_encode(&enc, data, n);
        assert_int_equal(enc.len, (n + 2) / 3 * 4);
        assert_int_equal(b64_decode(&dec, enc.buf ? enc.buf : "", enc.len), 0);
        assert_int_equal(dec.len, n);
        if (n > 0)
            assert_memory_equal(dec.buf, data, n);
        sb_free(&enc);
        sb_free(&dec);
    }
}

static void test_refuses_what_is_not_base64(void **state)
{
    (void)state;
    static const char *const bad[] = {"Zg=", "Zg", "Z===", "Zm9v!A==", "=m9v", "Zm=v", "Zg==Zg=="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct strbuf sb;
        sb_init(&sb);
        assert_int_equal(b64_decode(&sb, bad[i], strlen(bad[i])), TY_EFORMAT);
        sb_free(&sb);
    }
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff */
    unsigned char z[32] = {0}, f[32];
    memset(f, 0xff, sizeof f);
    assert_int_equal(crc32c(0, z, sizeof z), 0x8a9136aau);
    assert_int_equal(crc32c(0, f, sizeof f), 0x62a8ab43u);
    /* in pieces, the same */
    assert_int_equal(crc32c(crc32c(0, "12345", 5), "6789", 4), 0xe3069283u);
}

/* The definition, a bit at a time: what the table in crc32c.c must agree with. */
static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static void test_crc32c_table(void **state)
{
    (void)state;
    /* each byte value alone reaches its own table entry from the all-ones state */
    for (unsigned b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        assert_int_equal(crc32c(0, &c, 1), crc32c_bitwise(0, &c, 1));
    }
    unsigned char buf[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(crc32c(7, buf, sizeof buf), crc32c_bitwise(7, buf, sizeof buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_binary_round_trip),
        cmocka_unit_test(test_refuses_what_is_not_base64),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_crc32c_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
