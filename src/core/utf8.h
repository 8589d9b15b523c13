/*
 * utf8.h - well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800-DFFF),
 * nothing past U+10FFFF.  One definition for every place that checks text from outside
 * (HTTP query strings, crontab files, job output going into JSON).
 */
#ifndef TY_UTF8_H
#define TY_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed sequence that starts p[0..n), n >= 1; 0 when the bytes
 * there are not one (a stray continuation byte, an invalid lead, a truncated sequence). */
size_t utf8_seq(const unsigned char *p, size_t n);

/* Offset of the first byte of s[0..n) that does not start a well-formed sequence, or n
 * when all of it is well-formed. */
size_t utf8_invalid_at(const unsigned char *s, size_t n);

#endif
