/*
 * strbuf.c - growable strings.  Growth doubles so appends are amortised O(1); the
 * failed flag lets long chains of appends be checked once at the end.
 */
#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char empty_str[1];

void sb_init(struct strbuf *sb)
{
    sb->buf = empty_str;
    sb->len = 0;
    sb->cap = 0;
    sb->fixed = 0;
    sb->failed = 0;
}

void sb_init_fixed(struct strbuf *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->len = 0;
    sb->cap = cap;
    sb->fixed = 1;
    sb->failed = 0;
    buf[0] = '\0';
}

void sb_free(struct strbuf *sb)
{
    if (!sb->fixed && sb->cap != 0)
        free(sb->buf);
    if (!sb->fixed)
        sb_init(sb);
    else {
        sb->len = 0;
        sb->failed = 0;
        sb->buf[0] = '\0';
    }
}

/* Make room for n more bytes plus the NUL; returns the bytes that may be written. */
static size_t reserve(struct strbuf *sb, size_t n)
{
    if (sb->len + n + 1 <= sb->cap)
        return n;
    if (sb->fixed) {
        sb->failed = 1;
        return sb->cap - sb->len - 1;
    }
    size_t want = sb->cap ? sb->cap : 32;
    while (want < sb->len + n + 1)
        want *= 2;
    char *nb = realloc(sb->cap ? sb->buf : NULL, want);
    if (nb == NULL) {
        sb->failed = 1;
        return sb->cap ? sb->cap - sb->len - 1 : 0;
    }
    if (sb->cap == 0)
        nb[0] = '\0';
    sb->buf = nb;
    sb->cap = want;
    return n;
}

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
    size_t room = reserve(sb, n);
    if (room == 0 && sb->cap == 0)
        return;
    memcpy(sb->buf + sb->len, s, room);
    sb->len += room;
    sb->buf[sb->len] = '\0';
}

void sb_adds(struct strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

void sb_addc(struct strbuf *sb, char c)
{
    sb_add(sb, &c, 1);
}

void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0) {
        sb->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sb_add(sb, small, (size_t)n);
        return;
    }
    size_t room = reserve(sb, (size_t)n);
    if (room < (size_t)n) {
        /* fixed buffer or allocation failure: keep the prefix that fits */
        if (sb->cap > sb->len) {
            vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
            sb->len = sb->cap - 1;
        }
        return;
    }
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vaddf(sb, fmt, ap);
    va_end(ap);
}

void sb_truncate(struct strbuf *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->buf[len] = '\0';
    }
}

const char *sb_str(const struct strbuf *sb)
{
    return sb->buf;
}

int sb_failed(const struct strbuf *sb)
{
    return sb->failed;
}

char *sb_detach(struct strbuf *sb)
{
    if (sb->failed || sb->fixed) {
        sb_free(sb);
        return NULL;
    }
    char *r = sb->cap ? sb->buf : strdup("");
    sb_init(sb);
    return r;
}
