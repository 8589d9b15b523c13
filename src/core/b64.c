/*
 * b64.c - base64 encoding and strict decoding (RFC 4648 section 4, padded).
 *
 * Strict because the decoder reads data that crossed a disk or a network: anything that
 * is not exactly what b64_encode writes is refused rather than guessed at.
 */
#include "b64.h"

#include <stdbool.h>

#include "ty_err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void b64_encode(struct strbuf *sb, const void *data, size_t n)
{
    const unsigned char *p = data;
    char quad[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        quad[0] = alphabet[(v >> 18) & 63];
        quad[1] = alphabet[(v >> 12) & 63];
        quad[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        quad[3] = i + 2 < n ? alphabet[v & 63] : '=';
        sb_add(sb, quad, 4);
    }
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int b64_decode(struct strbuf *sb, const char *text, size_t n)
{
    if (n % 4 != 0)
        return TY_EFORMAT;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int pad = 0;
        if (last && text[i + 3] == '=')
            pad = text[i + 2] == '=' ? 2 : 1;
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
            int d = k >= 4 - pad ? 0 : value_of(text[i + (size_t)k]);
            if (d < 0)
                return TY_EFORMAT;
            v = (v << 6) | (unsigned)d;
        }
        char out[3] = {(char)(v >> 16), (char)(v >> 8), (char)v};
        sb_add(sb, out, (size_t)(3 - pad));
    }
    return 0;
}
