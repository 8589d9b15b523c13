/*
 * cli_file.c - definitions from JSON or YAML files, turned into one jansson value.
 *
 * YAML goes through libyaml's event parser, not its document loader: events carry the
 * scalar's style (plain or quoted) and the marks we need for messages, and a document
 * tree would only be copied again.  A stack of open containers (objects, arrays) with
 * the pending key of each object is all the state there is.
 *
 * Anchors and aliases are refused rather than expanded: a definition file should say
 * each thing once, where it is read, and expanding aliases invites the "billion laughs"
 * blow-up.  Scalar typing follows the YAML 1.2 core schema (see cli_file.h), so what a
 * file says is what the server receives - no 1.1 surprises such as `NO` becoming false.
 *
 * Writing (`tethys export`) is the other direction, done by hand rather than with libyaml's
 * emitter so the output is predictable text for people and diffs: block style, a string
 * left plain only when every YAML reader (1.1 or 1.2) would read it back as that string,
 * multi-line text as a literal block with an explicit indentation and chomping indicator
 * (so leading spaces and trailing newlines survive), everything else double-quoted.
 */
#include "cli_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "../core/strbuf.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

struct frame {
    json_t *node; /* object or array (borrowed from its parent, or the root) */
    char *key;    /* objects: the key waiting for its value, or NULL */
};

struct conv {
    struct frame stack[CLI_YAML_DEPTH];
    int depth;
    json_t *root;
    struct ty_err *err;
};

static int at(struct ty_err *err, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error at mark m: "line L, column C: ..." */
static int at(struct ty_err *err, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[TY_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ty_error(err, TY_EINVAL, NULL, (int)m->index, 1, "line %zu, column %zu: %s", m->line + 1,
                    m->column + 1, msg);
}

/* ---- scalars ----------------------------------------------------------------------------- */

static bool all_of(const char *s, const char *set)
{
    return *s != '\0' && s[strspn(s, set)] == '\0';
}

static bool is_float_text(const char *s)
{
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t intd = strspn(p, "0123456789");
    p += intd;
    size_t frac = 0;
    if (*p == '.') {
        p++;
        frac = strspn(p, "0123456789");
        p += frac;
    }
    if (intd == 0 && frac == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        size_t expd = strspn(p, "0123456789");
        if (expd == 0)
            return false;
        p += expd;
    }
    return *p == '\0';
}

static bool one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};
static const char *const inf_words[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                        "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                        ".NaN",  ".NAN",  NULL};

/* Integer text per the core schema; 1 and *out, 0 when not an integer, -1 on overflow. */
static int parse_int(const char *s, json_int_t *out)
{
    int base = 10;
    const char *digits = s;
    bool neg = false;
    if (strncmp(s, "0x", 2) == 0 && all_of(s + 2, "0123456789abcdefABCDEF")) {
        base = 16;
        digits = s + 2;
    } else if (strncmp(s, "0o", 2) == 0 && all_of(s + 2, "01234567")) {
        base = 8;
        digits = s + 2;
    } else {
        const char *p = s;
        if (*p == '-' || *p == '+')
            neg = *p++ == '-';
        if (!all_of(p, "0123456789"))
            return 0;
        digits = p;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(digits, &end, base);
    if (errno == ERANGE || *end != '\0')
        return -1;
    if (neg) {
        if (v > (unsigned long long)INT64_MAX + 1)
            return -1;
        *out = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(json_int_t)v;
    } else {
        if (v > (unsigned long long)INT64_MAX)
            return -1;
        *out = (json_int_t)v;
    }
    return 1;
}

/* The JSON value of a scalar event, or NULL with err filled. */
static json_t *scalar_value(const yaml_event_t *ev, struct ty_err *err)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    const yaml_mark_t *m = &ev->start_mark;
    if (memchr(s, '\0', len) != NULL) {
        at(err, m, "NUL characters are not allowed in values");
        return NULL;
    }
    const char *want = NULL; /* a type the tag asks for */
    if (tag != NULL && strcmp(tag, "!") != 0) {
        static const char *const known[] = {"str", "int", "float", "bool", "null", NULL};
        if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
            one_of(tag + strlen(TAG_PREFIX), known)) {
            want = tag + strlen(TAG_PREFIX);
        } else {
            at(err, m, "tag %.64s is not supported (only !!str, !!int, !!float, !!bool, !!null)",
               tag);
            return NULL;
        }
    }
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (want != NULL && strcmp(want, "str") == 0)
        return json_stringn(s, len);
    if (want == NULL && !plain)
        return json_stringn(s, len); /* quoted, literal or folded: a string */

    if ((want == NULL || strcmp(want, "null") == 0) && one_of(s, null_words))
        return json_null();
    if (want == NULL || strcmp(want, "bool") == 0) {
        if (one_of(s, true_words))
            return json_true();
        if (one_of(s, false_words))
            return json_false();
    }
    if (want == NULL || strcmp(want, "int") == 0 || strcmp(want, "float") == 0) {
        json_int_t i;
        int r = parse_int(s, &i);
        if (r < 0) {
            at(err, m,
               "the integer %.40s is out of range (-9223372036854775808 to "
               "9223372036854775807)",
               s);
            return NULL;
        }
        if (r > 0)
            return want != NULL && strcmp(want, "float") == 0 ? json_real((double)i)
                                                              : json_integer(i);
        if (want == NULL || strcmp(want, "float") == 0) {
            if (one_of(s, inf_words)) {
                at(err, m,
                   "%s cannot be written in JSON (no infinities or NaN); quote it for "
                   "a string",
                   s);
                return NULL;
            }
            if (is_float_text(s)) {
                double d = strtod(s, NULL);
                if (d == HUGE_VAL || d == -HUGE_VAL) {
                    at(err, m, "the number %.40s is too large", s);
                    return NULL;
                }
                return json_real(d);
            }
        }
    }
    if (want == NULL)
        return json_stringn(s, len);
    at(err, m, "\"%.64s\" is not a valid !!%s", s, want);
    return NULL;
}

/* ---- structure --------------------------------------------------------------------------- */

/* Place a value (stolen) into the open container, or make it the root. */
static int place(struct conv *cv, json_t *v, const yaml_mark_t *m)
{
    if (v == NULL)
        return ty_error(cv->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (cv->depth == 0) {
        cv->root = v;
        return 0;
    }
    struct frame *f = &cv->stack[cv->depth - 1];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, v) == 0
                   ? 0
                   : ty_error(cv->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (f->key == NULL) {
        json_decref(v);
        return at(cv->err, m, "a mapping key must be a plain value, not a mapping or a list");
    }
    int rc = json_object_set_new(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return rc == 0 ? 0 : ty_error(cv->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
}

static int open_container(struct conv *cv, json_t *node, const yaml_event_t *ev,
                          const char *expected_tag)
{
    const yaml_char_t *anchor = ev->type == YAML_MAPPING_START_EVENT
                                    ? ev->data.mapping_start.anchor
                                    : ev->data.sequence_start.anchor;
    const yaml_char_t *tag = ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.tag
                                                                  : ev->data.sequence_start.tag;
    if (anchor != NULL) {
        json_decref(node);
        return at(cv->err, &ev->start_mark,
                  "anchors (&%.64s) are not supported: write each value out where it is used",
                  (const char *)anchor);
    }
    if (tag != NULL && strcmp((const char *)tag, expected_tag) != 0) {
        json_decref(node);
        return at(cv->err, &ev->start_mark, "tag %.64s is not supported here", (const char *)tag);
    }
    if (cv->depth == CLI_YAML_DEPTH) {
        json_decref(node);
        return at(cv->err, &ev->start_mark, "nested more than %d levels deep", CLI_YAML_DEPTH);
    }
    json_incref(node);
    int rc = place(cv, node, &ev->start_mark);
    if (rc != 0) {
        json_decref(node);
        return rc;
    }
    cv->stack[cv->depth].node = node;
    cv->stack[cv->depth].key = NULL;
    cv->depth++;
    json_decref(node); /* the parent (or root) holds it now */
    return 0;
}

static int on_scalar(struct conv *cv, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    if (ev->data.scalar.anchor != NULL)
        return at(cv->err, m,
                  "anchors (&%.64s) are not supported: write each value out where it is used",
                  (const char *)ev->data.scalar.anchor);
    struct frame *f = cv->depth > 0 ? &cv->stack[cv->depth - 1] : NULL;
    if (f != NULL && json_is_object(f->node) && f->key == NULL) {
        /* a key: always a string, whatever it looks like */
        const char *k = (const char *)ev->data.scalar.value;
        if (memchr(k, '\0', ev->data.scalar.length) != NULL)
            return at(cv->err, m, "NUL characters are not allowed in keys");
        if (json_object_get(f->node, k) != NULL)
            return at(cv->err, m, "duplicate key \"%.64s\"", k);
        f->key = strdup(k);
        return f->key != NULL ? 0 : ty_error(cv->err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    }
    json_t *v = scalar_value(ev, cv->err);
    if (v == NULL)
        return cv->err != NULL && cv->err->code != 0 ? cv->err->code : TY_EINVAL;
    return place(cv, v, m);
}

static int parser_error(const yaml_parser_t *p, struct ty_err *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    if (p->error == YAML_READER_ERROR)
        return ty_error(err, TY_EINVAL, NULL, (int)p->problem_offset, 1, "byte %zu: %s",
                        p->problem_offset + 1, p->problem ? p->problem : "unreadable text");
    char ctx[128] = "";
    if (p->context != NULL)
        snprintf(ctx, sizeof ctx, " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    return ty_error(err, TY_EINVAL, NULL, (int)p->problem_mark.index, 1,
                    "line %zu, column %zu: %s%s", p->problem_mark.line + 1,
                    p->problem_mark.column + 1, p->problem ? p->problem : "invalid YAML", ctx);
}

int cli_yaml_to_json(const char *text, size_t len, json_t **out, struct ty_err *err)
{
    *out = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    struct conv cv;
    memset(&cv, 0, sizeof cv);
    cv.err = err;
    struct ty_err local;
    if (cv.err == NULL)
        cv.err = &local;
    ty_err_clear(cv.err);
    int rc = 0, docs = 0;
    bool done = false;
    while (rc == 0 && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parser_error(&p, cv.err);
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = at(cv.err, &ev.start_mark,
                        "a second document (---): a file holds one definition");
            break;
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_ALIAS_EVENT:
            rc = at(cv.err, &ev.start_mark,
                    "aliases (*%.64s) are not supported: write the value out in full",
                    (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT: rc = on_scalar(&cv, &ev); break;
        case YAML_SEQUENCE_START_EVENT:
            rc = open_container(&cv, json_array(), &ev, TAG_PREFIX "seq");
            break;
        case YAML_MAPPING_START_EVENT:
            rc = open_container(&cv, json_object(), &ev, TAG_PREFIX "map");
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            cv.depth--;
            free(cv.stack[cv.depth].key);
            cv.stack[cv.depth].key = NULL;
            break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < cv.depth; i++)
        free(cv.stack[i].key);
    if (rc == 0 && docs == 0)
        rc = ty_error(cv.err, TY_EINVAL, NULL, -1, 0, "the file is empty");
    if (rc != 0) {
        json_decref(cv.root);
        return rc;
    }
    *out = cv.root;
    return 0;
}

int cli_json_parse(const char *text, size_t len, json_t **out, struct ty_err *err)
{
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (*out == NULL)
        return ty_error(err, TY_EINVAL, NULL, je.position, 1, "line %d, column %d: %s", je.line,
                        je.column, je.text);
    return 0;
}

/* ---- files ------------------------------------------------------------------------------- */

int cli_file_read(const char *path, struct strbuf *sb, struct ty_err *err)
{
    return cli_file_read_max(path, sb, CLI_FILE_MAX, err);
}

int cli_file_read_max(const char *path, struct strbuf *sb, size_t max, struct ty_err *err)
{
    bool in = strcmp(path, "-") == 0;
    const char *shown = in ? "standard input" : path;
    int fd = in ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ty_error(err, TY_EIO, "file", -1, 0, "%s: %s", shown, strerror(errno));
    char buf[8192];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ty_error(err, TY_EIO, "file", -1, 0, "%s: %s", shown, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (sb->len + (size_t)n > max) {
            rc = ty_error(err, TY_EINVAL, "file", -1, 0, "%s: larger than %zu bytes", shown, max);
            break;
        }
        sb_add(sb, buf, (size_t)n);
    }
    if (!in)
        close(fd);
    if (rc == 0 && sb_failed(sb))
        rc = ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    return rc;
}

static const char *type_name(const json_t *v)
{
    if (v == NULL)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "nothing (null)";
    default: return "a mapping";
    }
}

/* Read and parse a file of at most max bytes (JSON or YAML, as cli_file_load decides);
 * messages start with the path (or "standard input"), *shown is that name. */
static int load_value(const char *path, size_t max, json_t **out, const char **shown,
                      struct ty_err *err)
{
    *out = NULL;
    *shown = strcmp(path, "-") == 0 ? "standard input" : path;
    struct strbuf sb;
    sb_init(&sb);
    int rc = cli_file_read_max(path, &sb, max, err);
    if (rc != 0) {
        sb_free(&sb);
        return rc;
    }
    const char *text = sb_str(&sb);
    size_t n = strlen(path);
    const char *first = text + strspn(text, " \t\r\n");
    bool json = (n > 5 && strcmp(path + n - 5, ".json") == 0) || *first == '{' || *first == '[';
    struct ty_err local;
    ty_err_clear(&local);
    json_t *v = NULL;
    rc = json ? cli_json_parse(text, sb.len, &v, &local)
              : cli_yaml_to_json(text, sb.len, &v, &local);
    sb_free(&sb);
    if (rc != 0)
        return ty_error(err, rc, "file", local.pos, local.len, "%s: %s", *shown, local.msg);
    *out = v;
    return 0;
}

int cli_file_load(const char *path, json_t **out, struct ty_err *err)
{
    *out = NULL;
    const char *shown;
    json_t *v;
    int rc = load_value(path, CLI_FILE_MAX, &v, &shown, err);
    if (rc != 0)
        return rc;
    if (!json_is_object(v)) {
        rc =
            ty_error(err, TY_EINVAL, "file", 0, 0,
                     "%s: expected a mapping of fields (name: value), got %s", shown, type_name(v));
        json_decref(v);
        return rc;
    }
    *out = v;
    return 0;
}

int cli_file_load_list(const char *path, json_t **out, struct ty_err *err)
{
    *out = NULL;
    const char *shown;
    json_t *v;
    int rc = load_value(path, CLI_LIST_FILE_MAX, &v, &shown, err);
    if (rc != 0)
        return rc;
    if (json_is_object(v)) {
        json_t *list = json_array();
        if (list == NULL || json_array_append_new(list, v) != 0) {
            json_decref(list);
            return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
        }
        *out = list;
        return 0;
    }
    if (!json_is_array(v)) {
        rc = ty_error(err, TY_EINVAL, "file", 0, 0,
                      "%s: expected a mapping of fields (name: value) or a list of them, got %s",
                      shown, type_name(v));
        json_decref(v);
        return rc;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_object(item)) {
            rc = ty_error(err, TY_EINVAL, "file", 0, 0,
                          "%s: item %zu: expected a mapping of fields (name: value), got %s", shown,
                          i + 1, type_name(item));
            json_decref(v);
            return rc;
        }
    }
    *out = v;
    return 0;
}

/* ---- writing YAML -------------------------------------------------------------------------- */

static bool ascii_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Text that may stay a plain scalar: it reads back as this string under the 1.2 core schema
 * and under YAML 1.1 too (other readers of the file), so no number, boolean or null look-alike
 * (yes, on, y, 12:00), and nothing YAML gives a meaning (: # - , [ ] { } & * ! | > ' " % @).
 */
static bool plain_ok(const char *s)
{
    static const char *const words[] = {"y",   "n",    "yes",   "no",   "on",
                                        "off", "true", "false", "null", NULL};
    if (!(ascii_alpha(s[0]) || s[0] == '/' || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(ascii_alpha(*p) || (*p >= '0' && *p <= '9') || strchr("_./-", *p) != NULL))
            return false;
    for (const char *const *w = words; *w; w++)
        if (strcasecmp(s, *w) == 0)
            return false;
    return true;
}

/* The code point of the UTF-8 sequence at s (valid: jansson strings are), its length in *n. */
static uint32_t code_point(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    size_t k = s[0] >= 0xF0 ? 3 : s[0] >= 0xE0 ? 2 : 1;
    uint32_t cp = s[0] & (0x3F >> k);
    for (size_t j = 1; j <= k && s[j] != '\0'; j++)
        cp = (cp << 6) | (s[j] & 0x3F);
    *n = k + 1;
    return cp;
}

/* Characters YAML does not allow unescaped in a stream (c-printable), or that a reader may
 * drop (a byte order mark) or take as a line break (U+0085, U+2028, U+2029). */
static bool needs_escape(uint32_t cp)
{
    return (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp <= 0xA0) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

static void write_quoted(struct strbuf *sb, const char *s)
{
    sb_addc(sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n;
        uint32_t cp = code_point(p, &n);
        if (cp == '"' || cp == '\\')
            sb_addf(sb, "\\%c", (char)cp);
        else if (cp == '\n')
            sb_adds(sb, "\\n");
        else if (cp == '\t')
            sb_adds(sb, "\\t");
        else if (needs_escape(cp))
            sb_addf(sb, "\\u%04X", (unsigned)cp);
        else
            sb_add(sb, (const char *)p, n);
        p += n;
    }
    sb_addc(sb, '"');
}

/* Multi-line text that a literal block (|) carries as it is. */
static bool block_ok(const char *s)
{
    if (strchr(s, '\n') == NULL || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
        return false;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n;
        if (needs_escape(code_point(p, &n)) || *p == '\r')
            return false;
        p += n;
    }
    return true;
}

/* A reader need not look further than 1024 characters for the ':' of a simple key (YAML
 * 1.2, 7.4.2), and a quoted key may take 6 bytes a byte (\u007F): keys longer than this
 * are written as explicit keys ("? key"), which have no limit. */
#define YAML_SIMPLE_KEY_BYTES 160

static void write_indent(struct strbuf *sb, int indent)
{
    for (int i = 0; i < indent; i++)
        sb_addc(sb, ' ');
}

/* A literal block whose content is indented by indent + 2: "|2" with the chomping that
 * keeps the text's trailing newlines exactly (every line is written with its newline; "-"
 * drops the last one again, "+" keeps the empty lines at the end). */
static void write_block(struct strbuf *sb, const char *s, int indent)
{
    size_t n = strlen(s);
    const char *chomp = n > 1 && s[n - 1] == '\n' && s[n - 2] == '\n' ? "+"
                        : s[n - 1] == '\n'                            ? ""
                                                                      : "-";
    sb_addf(sb, "|2%s\n", chomp);
    const char *p = s;
    while (*p) {
        size_t k = strcspn(p, "\n");
        if (k > 0) {
            write_indent(sb, indent + 2);
            sb_add(sb, p, k);
        }
        sb_addc(sb, '\n');
        p += k;
        if (*p == '\n')
            p++;
    }
}

static void write_scalar(struct strbuf *sb, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (plain_ok(s))
            sb_adds(sb, s);
        else
            write_quoted(sb, s);
        break;
    }
    case JSON_INTEGER: sb_addf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_ENCODE_ANY); /* "%.17g", with ".0" when it looks whole */
        sb_adds(sb, t ? t : "0.0");
        free(t);
        break;
    }
    case JSON_TRUE: sb_adds(sb, "true"); break;
    case JSON_FALSE: sb_adds(sb, "false"); break;
    case JSON_OBJECT: sb_adds(sb, "{}"); break;
    case JSON_ARRAY: sb_adds(sb, "[]"); break;
    default: sb_adds(sb, "null"); break;
    }
}

static void write_node(struct strbuf *sb, const json_t *v, int indent);

static bool is_block_container(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

/* The value after "key:" or "-": on the same line, or below it. */
static void write_after(struct strbuf *sb, const json_t *v, int indent)
{
    if (json_is_string(v) && block_ok(json_string_value(v))) {
        sb_addc(sb, ' ');
        write_block(sb, json_string_value(v), indent);
    } else if (is_block_container(v)) {
        sb_addc(sb, '\n');
        write_node(sb, v, indent + 2);
    } else {
        sb_addc(sb, ' ');
        write_scalar(sb, v);
        sb_addc(sb, '\n');
    }
}

/* A mapping or sequence at indent; the first line's indentation is already written when
 * inline is set (the item of a sequence: "- key: value"). */
static void write_container(struct strbuf *sb, const json_t *v, int indent, bool inline_first)
{
    bool first = true;
    if (json_is_object(v)) {
        const char *k;
        const json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            if (!(first && inline_first))
                write_indent(sb, indent);
            first = false;
            if (strlen(k) > YAML_SIMPLE_KEY_BYTES)
                sb_adds(sb, "? "); /* an explicit key: "? key", then ':' on the next line */
            if (plain_ok(k))
                sb_adds(sb, k);
            else
                write_quoted(sb, k);
            if (strlen(k) > YAML_SIMPLE_KEY_BYTES) {
                sb_addc(sb, '\n');
                write_indent(sb, indent);
            }
            sb_addc(sb, ':');
            write_after(sb, child, indent);
        }
        return;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!(first && inline_first))
            write_indent(sb, indent);
        first = false;
        sb_addc(sb, '-');
        if (json_is_object(item) && json_object_size(item) > 0) {
            sb_addc(sb, ' ');
            write_container(sb, item, indent + 2, true);
        } else {
            write_after(sb, item, indent);
        }
    }
}

static void write_node(struct strbuf *sb, const json_t *v, int indent)
{
    if (is_block_container(v)) {
        write_container(sb, v, indent, false);
    } else {
        write_indent(sb, indent);
        write_scalar(sb, v);
        sb_addc(sb, '\n');
    }
}

int cli_yaml_write(const json_t *v, struct strbuf *out)
{
    write_node(out, v, 0);
    return sb_failed(out) ? TY_ENOMEM : 0;
}
