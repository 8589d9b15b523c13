/*
 * strbuf.h - the one string builder (after git's strbuf).
 *
 * A strbuf is a growable, always NUL-terminated byte string.  Appends never fail
 * silently: after an allocation failure the buffer is marked failed, keeps what it
 * had, and sb_failed() says so, so a caller may append many pieces and check once.
 * A strbuf may also wrap a fixed caller buffer (sb_init_fixed): it then never
 * allocates, and running out of room marks it failed (truncated) the same way.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    char *buf;
    size_t len;
    size_t cap;
    unsigned fixed : 1;  /* buf is the caller's; never realloc'd or freed */
    unsigned failed : 1; /* an append did not fit */
};

/* Empty, heap-backed; allocates on first append.  Free with sb_free. */
void sb_init(struct strbuf *sb);

/* Wrap buf[cap] (cap >= 1); never allocates.  sb_free is a no-op for it. */
void sb_init_fixed(struct strbuf *sb, char *buf, size_t cap);

/* Release a heap-backed buffer and reset to empty. */
void sb_free(struct strbuf *sb);

/* Append bytes / a C string / one char / printf-formatted text. */
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Shorten to len bytes (no-op if already shorter). */
void sb_truncate(struct strbuf *sb, size_t len);

/* The text so far: never NULL, always NUL-terminated, borrowed. */
const char *sb_str(const struct strbuf *sb);

/* Non-zero when some append did not fit (allocation failure or fixed buffer full). */
int sb_failed(const struct strbuf *sb);

/* Hand the heap buffer to the caller (free() it) and reset sb.  NULL if it failed. */
char *sb_detach(struct strbuf *sb);

#endif
