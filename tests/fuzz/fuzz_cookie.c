/*
 * fuzz_cookie.c - libFuzzer target for the Cookie header the HTTP layer reads from every
 * request (api/cookie.c): any bytes a client may send.
 *
 * Properties: no crash, hang or read past the header; a value found lies inside the header
 * and holds no ';'; the header "NAME=VALUE" made of a found value finds the same value
 * again; a header that repeats the name with another value says it is ambiguous.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    char *h = malloc(size ? size : 1);
    if (h == NULL)
        return 0;
    memcpy(h, data, size);
    static const char *const names[] = {"tethys_session", "a", "x y", ""};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *v = NULL;
        size_t n = 0;
        bool amb = false;
        if (!cookie_find(h, size, names[k], &v, &n, &amb))
            continue;
        if (v < h || v + n > h + size || memchr(v, ';', n) != NULL)
            abort();
        /* found again in a header of its own */
        size_t nl = strlen(names[k]);
        char *again = malloc(nl + 1 + n + 1);
        if (again == NULL)
            break;
        memcpy(again, names[k], nl);
        again[nl] = '=';
        memcpy(again + nl + 1, v, n);
        const char *v2 = NULL;
        size_t n2 = 0;
        bool trimmed = n > 0 && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' ||
                                 v[n - 1] == '\t' || (n >= 2 && v[0] == '"' && v[n - 1] == '"'));
        if (nl > 0 && names[k][0] != ' ' && !trimmed) {
            if (!cookie_find(again, nl + 1 + n, names[k], &v2, &n2, NULL) || n2 != n ||
                memcmp(v2, v, n) != 0)
                abort();
        }
        free(again);
    }
    free(h);
    return 0;
}
