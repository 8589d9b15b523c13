/*
 * cli_diff.c - field-level differences between two JSON values (see cli_diff.h).
 *
 * Definitions are small (a job is a few dozen fields, its lists a handful of items), so
 * the comparison favours output a person reads at a glance over speed: objects are
 * walked key by key, and lists are aligned with the classic longest-common-subsequence
 * table (O(n*m) time and memory, bounded by CLI_DIFF_ALIGN_MAX; past it, position by
 * position).  Between two aligned items, removed and added items are paired up as
 * changes first - the usual edit of a list is "this item became that" - and only the
 * rest are reported as removed or added.
 */
#include "cli_diff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void diff_value(const json_t *a, const json_t *b, const char *path, json_t *out);

static void add_diff(json_t *out, const char *path, const char *op, const json_t *old,
                     const json_t *new_)
{
    json_t *d = json_pack("{s:s, s:s}", "path", path, "op", op);
    if (d == NULL)
        return;
    if (old != NULL)
        json_object_set_new(d, "old", json_deep_copy(old));
    if (new_ != NULL)
        json_object_set_new(d, "new", json_deep_copy(new_));
    json_array_append_new(out, d);
}

static bool plain_key(const char *k)
{
    if (*k == '\0')
        return false;
    for (const char *p = k; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* path + ".key" (or "key" at the top, or ["odd key"]) into sb. */
static void key_path(struct strbuf *sb, const char *path, const char *key)
{
    sb_adds(sb, path);
    if (plain_key(key)) {
        if (*path != '\0')
            sb_addc(sb, '.');
        sb_adds(sb, key);
        return;
    }
    json_t *k = json_string(key);
    char *q = k != NULL ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    sb_addf(sb, "[%s]", q != NULL ? q : "?");
    free(q);
    json_decref(k);
}

static void diff_object(const json_t *a, const json_t *b, const char *path, json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v)
    {
        struct strbuf p;
        sb_init(&p);
        key_path(&p, path, k);
        const json_t *w = json_object_get(b, k);
        if (w == NULL)
            add_diff(out, sb_str(&p), "remove", v, NULL);
        else
            diff_value(v, w, sb_str(&p), out);
        sb_free(&p);
    }
    json_object_foreach((json_t *)b, k, v)
    {
        if (json_object_get(a, k) != NULL)
            continue;
        struct strbuf p;
        sb_init(&p);
        key_path(&p, path, k);
        add_diff(out, sb_str(&p), "add", NULL, v);
        sb_free(&p);
    }
}

static void item_path(struct strbuf *sb, const char *path, size_t i)
{
    sb_addf(sb, "%s[%zu]", path, i);
}

/* Report one stretch between aligned items: a[i0..i1) removed, b[j0..j1) added; pairs
 * first (changes), then the rest. */
static void diff_gap(const json_t *a, size_t i0, size_t i1, const json_t *b, size_t j0, size_t j1,
                     const char *path, json_t *out)
{
    size_t i = i0, j = j0;
    for (; i < i1 && j < j1; i++, j++) {
        struct strbuf p;
        sb_init(&p);
        item_path(&p, path, j);
        diff_value(json_array_get(a, i), json_array_get(b, j), sb_str(&p), out);
        sb_free(&p);
    }
    for (; i < i1; i++) {
        struct strbuf p;
        sb_init(&p);
        item_path(&p, path, i);
        add_diff(out, sb_str(&p), "remove", json_array_get(a, i), NULL);
        sb_free(&p);
    }
    for (; j < j1; j++) {
        struct strbuf p;
        sb_init(&p);
        item_path(&p, path, j);
        add_diff(out, sb_str(&p), "add", NULL, json_array_get(b, j));
        sb_free(&p);
    }
}

static void diff_array(const json_t *a, const json_t *b, const char *path, json_t *out)
{
    size_t n = json_array_size(a), m = json_array_size(b);
    uint32_t *lcs = NULL; /* lcs[i*(m+1)+j]: common subsequence of a[i..] and b[j..] */
    if (n > 0 && m > 0 && (n + 1) <= CLI_DIFF_ALIGN_MAX / (m + 1))
        lcs = calloc((n + 1) * (m + 1), sizeof *lcs);
    if (lcs == NULL) { /* empty, too long or no memory: position by position */
        diff_gap(a, 0, n, b, 0, m, path, out);
        return;
    }
#define L(i, j) lcs[(i) * (m + 1) + (j)]
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            L(i, j) = json_equal(json_array_get(a, i), json_array_get(b, j))
                          ? L(i + 1, j + 1) + 1
                          : (L(i + 1, j) >= L(i, j + 1) ? L(i + 1, j) : L(i, j + 1));
    size_t i = 0, j = 0, gi = 0, gj = 0; /* gi, gj: where the current gap began */
    while (i < n && j < m) {
        if (json_equal(json_array_get(a, i), json_array_get(b, j))) { /* always in an LCS */
            diff_gap(a, gi, i, b, gj, j, path, out);
            gi = ++i;
            gj = ++j;
        } else if (L(i + 1, j) >= L(i, j + 1)) {
            i++;
        } else {
            j++;
        }
    }
#undef L
    diff_gap(a, gi, n, b, gj, m, path, out);
    free(lcs);
}

static void diff_value(const json_t *a, const json_t *b, const char *path, json_t *out)
{
    if (json_equal(a, b))
        return;
    if (json_is_object(a) && json_is_object(b))
        diff_object(a, b, path, out);
    else if (json_is_array(a) && json_is_array(b))
        diff_array(a, b, path, out);
    else
        add_diff(out, path, "change", a, b);
}

json_t *cli_json_diff(const json_t *a, const json_t *b)
{
    json_t *out = json_array();
    if (out != NULL)
        diff_value(a, b, "", out);
    return out;
}

static void add_value(struct strbuf *sb, const json_t *v)
{
    char *s =
        v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
    sb_adds(sb, s != NULL ? s : "?");
    free(s);
}

void cli_diff_format(const json_t *diffs, struct strbuf *out)
{
    size_t i;
    const json_t *d;
    json_array_foreach(diffs, i, d)
    {
        const char *op = json_string_value(json_object_get(d, "op"));
        const char *path = json_string_value(json_object_get(d, "path"));
        if (op == NULL || path == NULL)
            continue;
        if (*path == '\0')
            path = "(the whole value)";
        if (strcmp(op, "add") == 0) {
            sb_addf(out, "+ %s: ", path);
            add_value(out, json_object_get(d, "new"));
        } else if (strcmp(op, "remove") == 0) {
            sb_addf(out, "- %s: ", path);
            add_value(out, json_object_get(d, "old"));
        } else {
            sb_addf(out, "  %s: ", path);
            add_value(out, json_object_get(d, "old"));
            sb_adds(out, " -> ");
            add_value(out, json_object_get(d, "new"));
        }
        sb_addc(out, '\n');
    }
}
