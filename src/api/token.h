/*
 * token.h - API token secrets: making them, hashing them, and durations for expiry.
 *
 * A named token's secret is shown once, when it is made, and never kept: the store holds
 * its SHA-256 (hex), and a request's bearer token is hashed and looked up.  Secrets are
 * "tethys_" and 64 hex digits (256 random bits from getrandom), so a leaked one is easy
 * to recognise in a log or a repository scan.
 *
 * Durations ("30d", "12h", "1d12h", "90m", "45s", "2w") are how the CLI says when a token
 * expires; the API takes seconds.
 */
#ifndef TOKEN_H
#define TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/ty_err.h"

#define TOKEN_PREFIX      "tethys_"
#define TOKEN_SECRET_LEN  (7 + 64)                /* "tethys_" and 64 hex digits */
#define TOKEN_HASH_HEX    65                      /* 64 hex digits and a NUL */
#define TOKEN_EXPIRES_MAX ((int64_t)3650 * 86400) /* seconds: ten years */

/* A new secret into out[TOKEN_SECRET_LEN + 1].  0, or TY_EIO when the kernel's random
 * source fails (err says so). */
int token_generate(char *out, struct ty_err *err);

/* The hex SHA-256 of secret[0..len) into out[TOKEN_HASH_HEX] (GnuTLS).  0, or TY_EIO. */
int token_hash(const char *secret, size_t len, char *out);

/* Whether a[0..alen) equals b[0..blen), in time that depends only on alen (the expected
 * text's length) and never on where the texts differ. */
bool token_equal(const char *a, size_t alen, const char *b, size_t blen);

/*
 * "30d", "12h", "1d12h", "90m", "45s", "2w" (parts of a number and a unit: w, d, h, m, s)
 * into seconds, 1 to TOKEN_EXPIRES_MAX.  A bare number is seconds.  TY_EINVAL names
 * `field` and shows the text: `--expires: "3x" is not a duration (e.g. 30d, 12h, 90m)`.
 */
int token_parse_duration(const char *text, const char *field, int64_t *seconds, struct ty_err *err);

#endif
