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
 * Writing (`tethys export`) is the other direction, through libyaml's emitter: it knows
 * which characters each scalar style can carry, when a key must be written "? key", and how
 * to escape, so only the typing is ours.  Block style; a string is offered plain only when
 * no YAML 1.1 or 1.2 reader could take it for a number, boolean or null (otherwise the
 * emitter quotes it), multi-line text as a literal block (|) when the emitter can keep it
 * exact, and numbers, booleans and null plain.  The emitter's line folding is off, so a
 * long command stays one line.
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

/*
 * Text that a YAML reader could take for something other than this string, so it must not
 * be written plain: whatever the 1.2 core schema (cli_yaml_to_json) resolves as null, a
 * boolean or a number, or refuses (.inf, .nan, integers beyond 64 bits); and for YAML 1.1
 * readers of the file, their booleans (y, n, yes, no, on, off in any case) and anything
 * made only of digits and the characters of their numbers and dates (1_000, 12:30 in base
 * 60, 0b101, 2026-01-01, 2026-01-01T10:00:00Z), plus the merge key "<<" and "=".
 */
static bool looks_typed(const char *s)
{
    static const char *const yaml11_words[] = {"y",   "n",    "yes",   "no",   "on",
                                               "off", "true", "false", "null", NULL};
    json_int_t i;
    if (one_of(s, null_words) || one_of(s, true_words) || one_of(s, false_words) ||
        parse_int(s, &i) != 0 || one_of(s, inf_words) || is_float_text(s))
        return true;
    for (const char *const *w = yaml11_words; *w; w++)
        if (strcasecmp(s, *w) == 0)
            return true;
    if (strcmp(s, "<<") == 0 || strcmp(s, "=") == 0)
        return true;
    const char *p = s + (s[0] == '-' || s[0] == '+');
    bool numeric_start = (*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9');
    return numeric_start && all_of(p, "0123456789_:.-+ eExXoObBaAcCdDfFtTzZ");
}

/* libyaml's output handler: append to the strbuf (0 tells the emitter it failed). */
static int write_out(void *data, unsigned char *buffer, size_t size)
{
    struct strbuf *sb = data;
    sb_add(sb, (const char *)buffer, size);
    return !sb_failed(sb);
}

/* Emit an event the caller initialised (initialize returns 0 only without memory). */
static int emit(yaml_emitter_t *em, int initialized, yaml_event_t *ev)
{
    if (!initialized)
        return TY_ENOMEM;
    if (yaml_emitter_emit(em, ev)) /* takes the event, emitted or not */
        return 0;
    return em->error == YAML_EMITTER_ERROR ? TY_EINVAL : TY_ENOMEM;
}

/*
 * A string: plain when that reads back as this string (the emitter decides whether the
 * characters allow it: plain_implicit), else quoted, single quotes where they can carry
 * it, double (with escapes) where they cannot (quoted_implicit, no tag).  Multi-line values
 * ask for a literal block (|), which the emitter replaces by double quotes when the text
 * has what a block cannot carry (trailing spaces on a line, tabs, control characters);
 * multi-line keys are double-quoted.  The emitter writes any key longer than 128 bytes as
 * an explicit key ("? key"), far inside the 1024 characters a reader looks ahead for the
 * ':' of a simple key.
 */
static int emit_string(yaml_emitter_t *em, const char *s, size_t len, bool key)
{
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    if (memchr(s, '\n', len) != NULL)
        style = key ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_LITERAL_SCALAR_STYLE;
    bool plain = strlen(s) == len && !looks_typed(s);
    yaml_event_t ev;
    return emit(
        em,
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, plain, 1, style),
        &ev);
}

/* A number, boolean or null: plain, with its core-schema tag for the emitter to drop
 * (plain_implicit) or, should it ever have to quote the text, to write (!!int "5"). */
static int emit_typed(yaml_emitter_t *em, const char *text, const char *type)
{
    char tag[32];
    snprintf(tag, sizeof tag, TAG_PREFIX "%s", type);
    yaml_event_t ev;
    return emit(em,
                yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag, (yaml_char_t *)text,
                                             (int)strlen(text), 1, 0, YAML_PLAIN_SCALAR_STYLE),
                &ev);
}

static int emit_node(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    int rc = 0;
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        rc = emit(em,
                  yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE),
                  &ev);
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            if (rc == 0)
                rc = emit_string(em, k, strlen(k), true);
            if (rc == 0)
                rc = emit_node(em, child);
        }
        return rc != 0 ? rc : emit(em, yaml_mapping_end_event_initialize(&ev), &ev);
    }
    case JSON_ARRAY: {
        rc = emit(
            em, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE),
            &ev);
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (rc == 0)
                rc = emit_node(em, item);
        }
        return rc != 0 ? rc : emit(em, yaml_sequence_end_event_initialize(&ev), &ev);
    }
    case JSON_STRING: return emit_string(em, json_string_value(v), json_string_length(v), false);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_typed(em, num, "int");
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_ENCODE_ANY); /* "%.17g", with ".0" when it looks whole */
        if (t == NULL)
            return TY_ENOMEM;
        rc = emit_typed(em, t, "float");
        free(t);
        return rc;
    }
    case JSON_TRUE: return emit_typed(em, "true", "bool");
    case JSON_FALSE: return emit_typed(em, "false", "bool");
    default: return emit_typed(em, "null", "null");
    }
}

int cli_yaml_write(const json_t *v, struct strbuf *out)
{
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return TY_ENOMEM;
    yaml_emitter_set_output(&em, write_out, out);
    yaml_emitter_set_unicode(&em, 1); /* UTF-8 as it is, not \u escapes */
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1); /* no folding: a long command stays on its line */
    yaml_emitter_set_break(&em, YAML_LN_BREAK);
    yaml_event_t ev;
    int rc = emit(&em, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING), &ev);
    if (rc == 0)
        rc = emit(&em, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1), &ev);
    if (rc == 0)
        rc = emit_node(&em, v);
    if (rc == 0)
        rc = emit(&em, yaml_document_end_event_initialize(&ev, 1), &ev);
    if (rc == 0)
        rc = emit(&em, yaml_stream_end_event_initialize(&ev), &ev);
    yaml_emitter_delete(&em);
    if (rc == 0 && sb_failed(out))
        rc = TY_ENOMEM;
    return rc;
}
