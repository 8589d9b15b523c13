/*
 * token.c - API token secrets (see token.h).
 *
 * SHA-256 comes from GnuTLS, which the server links for TLS anyway: no hand-written
 * digest.  A plain hash (no salt, no slow KDF) is right here: the secret is 256 random
 * bits, not a password, so there is nothing to guess and the lookup must be fast.
 */
#include "token.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int token_generate(char *out, struct ty_err *err)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ty_error(err, TY_EIO, NULL, -1, 0, "getrandom: %s",
                            n < 0 ? strerror(errno) : "no bytes");
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    char *p = out + sizeof TOKEN_PREFIX - 1;
    for (size_t i = 0; i < sizeof raw; i++) {
        *p++ = hex[raw[i] >> 4];
        *p++ = hex[raw[i] & 15];
    }
    *p = '\0';
    memset(raw, 0, sizeof raw);
    return 0;
}

int token_hash(const char *secret, size_t len, char *out)
{
    unsigned char digest[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, len, digest) != 0) {
        out[0] = '\0';
        return TY_EIO;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = alen != blen;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned char)a[i] ^ (unsigned char)(blen ? b[i % blen] : 0);
    return d == 0;
}

int token_parse_duration(const char *text, const char *field, int64_t *seconds, struct ty_err *err)
{
    *seconds = 0;
    const char *p = text != NULL ? text : "";
    int64_t total = 0;
    bool any = false;
    while (*p != '\0') {
        if (*p < '0' || *p > '9')
            goto bad;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
            if (n > TOKEN_EXPIRES_MAX)
                goto range;
        }
        int64_t unit;
        switch (*p) {
        case 'w': unit = (int64_t)7 * 86400; break;
        case 'd': unit = 86400; break;
        case 'h': unit = 3600; break;
        case 'm': unit = 60; break;
        case 's': unit = 1; break;
        case '\0':
            if (any)
                goto bad; /* "1d5": a unit is needed after the first part */
            unit = 1;
            break;
        default: goto bad;
        }
        if (*p != '\0')
            p++;
        total += n * unit;
        if (total > TOKEN_EXPIRES_MAX)
            goto range;
        any = true;
    }
    if (!any)
        goto bad;
    if (total < 1)
        goto range;
    *seconds = total;
    return 0;
bad:
    return ty_error(err, TY_EINVAL, field, -1, 0,
                    "%s: \"%.64s\" is not a duration (e.g. 30d, 12h, 1d12h, 90m, 3600)", field,
                    text != NULL ? text : "");
range:
    return ty_error(err, TY_EINVAL, field, -1, 0,
                    "%s: \"%.64s\" is out of range: from 1 second to 3650 days", field, text);
}
