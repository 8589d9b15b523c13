/*
 * cookie.c - the Cookie header read, a session's Set-Cookie written (see cookie.h).
 *
 * The reader walks the bytes once with indexes bounded by len; nothing is copied or
 * allocated, so any bytes are safe (tests/fuzz/fuzz_cookie.c holds it to that).
 */
#include "cookie.h"

#include <inttypes.h>
#include <string.h>

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

bool cookie_find(const char *header, size_t len, const char *name, const char **val, size_t *vlen,
                 bool *ambiguous)
{
    size_t nlen = strlen(name);
    bool found = false;
    if (ambiguous != NULL)
        *ambiguous = false;
    size_t i = 0;
    while (i < len) {
        size_t end = i; /* this pair: [i, end) */
        while (end < len && header[end] != ';')
            end++;
        size_t a = i, b = end;
        while (a < b && blank(header[a]))
            a++;
        while (b > a && blank(header[b - 1]))
            b--;
        const char *eq = a < b ? memchr(header + a, '=', b - a) : NULL;
        if (eq != NULL) {
            size_t ne = (size_t)(eq - header); /* the name is [a, ne), trimmed */
            while (ne > a && blank(header[ne - 1]))
                ne--;
            size_t vs = (size_t)(eq - header) + 1, ve = b;
            while (vs < ve && blank(header[vs]))
                vs++;
            if (ve - vs >= 2 && header[vs] == '"' && header[ve - 1] == '"') {
                vs++;
                ve--;
            }
            if (ne - a == nlen && memcmp(header + a, name, nlen) == 0) {
                if (!found) {
                    found = true;
                    *val = header + vs;
                    *vlen = ve - vs;
                } else if (ambiguous != NULL &&
                           (ve - vs != *vlen || memcmp(header + vs, *val, *vlen) != 0)) {
                    *ambiguous = true;
                }
            }
        }
        i = end + 1;
    }
    return found;
}

void cookie_session(struct strbuf *sb, const char *name, const char *value, int64_t max_age_s,
                    bool secure)
{
    sb_addf(sb, "%s=%s; Path=/; Max-Age=%" PRId64 "; HttpOnly; SameSite=Strict%s", name, value,
            max_age_s, secure ? "; Secure" : "");
}
