/*
 * b64.h - base64 (RFC 4648, with padding) for carrying bytes in JSON text: a run's output
 * that is not valid UTF-8, in a spooled result.  Pure.
 */
#ifndef B64_H
#define B64_H

#include <stddef.h>

#include "strbuf.h"

/* Append the base64 of data[0..n) to sb (check sb_failed for memory). */
void b64_encode(struct strbuf *sb, const void *data, size_t n);

/* Append the bytes text[0..n) encodes to sb.  0, or TY_EFORMAT when text is not base64
 * (a character outside the alphabet, bad padding, a length not a multiple of 4); sb then
 * holds an unspecified prefix. */
int b64_decode(struct strbuf *sb, const char *text, size_t n);

#endif
