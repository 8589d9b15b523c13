/*
 * cli_diff.h - field-level differences between two JSON values (`tethys job diff`,
 * `tethys job history`).
 *
 * A difference is one field path and what happened to it: "change" (old -> new), "add"
 * (only in the second value) or "remove" (only in the first).  Objects are compared key
 * by key and nested objects are entered, so a changed environment variable is
 * `env.LANG`, not the whole `env`.  Lists are aligned by their longest common
 * subsequence, so an item inserted in the middle is one "add", not a change of every item
 * after it; a removed item and an added one at the same place pair up as a change (and a
 * changed object in a list is entered: `pause_windows[1].to`).
 */
#ifndef CLI_DIFF_H
#define CLI_DIFF_H

#include <jansson.h>

#include "../core/strbuf.h"

/* Lists longer than this (items of one times the other) are compared position by
 * position instead of aligned: the alignment's table would be too large. */
#define CLI_DIFF_ALIGN_MAX ((size_t)1 << 22)

/*
 * The differences from a to b, in order (a's keys in a's order, then b's new keys), as a
 * new JSON array of {"path", "op", "old", "new"} ("old" absent for an add, "new" for a
 * remove).  Paths: object keys joined with '.', list items as [i] (the index in a for a
 * remove, in b otherwise), keys that are not plain words quoted (`env["A.B"]`); the path
 * of a difference at the top is "".  NULL only when memory runs out.
 */
json_t *cli_json_diff(const json_t *a, const json_t *b);

/*
 * Append the differences as lines for people:
 *   "  path: old -> new"
 *   "+ path: new"
 *   "- path: old"
 * values as compact JSON (control characters escaped, so a value cannot drive the
 * terminal).
 */
void cli_diff_format(const json_t *diffs, struct strbuf *out);

#endif
