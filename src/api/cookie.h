/*
 * cookie.h - the Cookie request header, read (RFC 6265 section 5.4's form: "a=1; b=2"),
 * and the Set-Cookie header of a session, written.
 *
 * Reading is for untrusted bytes (a browser sends them, and so may anyone): it never
 * allocates, never reads past the header, and takes the pairs as browsers send them -
 * separated by ';' with optional spaces, the name up to the first '=', a value optionally
 * in double quotes.  A pair without '=' is skipped, as a browser's would be.
 */
#ifndef COOKIE_H
#define COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/strbuf.h"

/*
 * Find cookie `name` in header[0..len).  true with *val and *vlen (pointing into header,
 * quotes removed) for the first pair with that exact name; false when there is none.  A
 * name that appears again with a different value makes the header ambiguous: *ambiguous
 * (may be NULL) is then set, and the first is still given.
 */
bool cookie_find(const char *header, size_t len, const char *name, const char **val, size_t *vlen,
                 bool *ambiguous);

/*
 * Append a Set-Cookie value for a session to sb: "NAME=VALUE; Path=/; Max-Age=N; HttpOnly;
 * SameSite=Strict" and "; Secure" when secure.  max_age_s 0 with an empty value ends the
 * cookie (the browser forgets it).  name and value must be cookie-safe already (the
 * caller's own: letters, digits, '_').
 */
void cookie_session(struct strbuf *sb, const char *name, const char *value, int64_t max_age_s,
                    bool secure);

#endif
