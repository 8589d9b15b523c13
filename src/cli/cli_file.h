/*
 * cli_file.h - definitions (jobs, domains, calendars) from JSON or YAML files.
 *
 * The API speaks JSON only; YAML is a convenience of the CLI and is turned into the same
 * JSON here, before anything is sent, so the server validates one format.  The YAML
 * reading follows the YAML 1.2 core schema: plain scalars that read as integers
 * (123, -4, 0x1F, 0o17), floats (1.5, 2e3), booleans (true/false, True, TRUE...) or null
 * (null, ~, nothing) become those JSON types; everything else, and every quoted or block
 * scalar, is a string.  (So `country: NO` and `enabled: yes` stay strings, unlike YAML 1.1.)
 * Refused, with line and column: duplicate keys, anchors and aliases, keys that are not
 * plain values, tags other than !!str !!int !!float !!bool !!null !!map !!seq, .inf and
 * .nan (JSON has no such numbers), integers beyond 64 bits, NUL characters, and more than
 * one document.
 */
#ifndef CLI_FILE_H
#define CLI_FILE_H

#include <jansson.h>
#include <stddef.h>

#include "../core/strbuf.h"
#include "../core/ty_err.h"

#define CLI_FILE_MAX      ((size_t)4 * 1024 * 1024)    /* bytes of a definition file */
#define CLI_LIST_FILE_MAX ((size_t)1024 * 1024 * 1024) /* bytes of a file of definitions */
#define CLI_YAML_DEPTH    64                           /* nesting of mappings and sequences */

/*
 * Read the whole file at path ("-" is standard input) into sb: TY_EIO with "path: reason"
 * when it cannot be read, TY_EINVAL when it is larger than CLI_FILE_MAX bytes (max bytes
 * for cli_file_read_max), TY_ENOMEM.
 */
int cli_file_read(const char *path, struct strbuf *sb, struct ty_err *err);
int cli_file_read_max(const char *path, struct strbuf *sb, size_t max, struct ty_err *err);

/*
 * Convert one YAML document text[0..len) to a JSON value (*out, a new reference; any
 * type).  Errors are TY_EINVAL with a message "line L, column C: ..." (1-based), err->pos
 * the byte offset; TY_ENOMEM.  An empty text (no document) is TY_EINVAL "the file is
 * empty".
 */
int cli_yaml_to_json(const char *text, size_t len, json_t **out, struct ty_err *err);

/* Parse JSON text (duplicate keys refused); errors as cli_yaml_to_json. */
int cli_json_parse(const char *text, size_t len, json_t **out, struct ty_err *err);

/*
 * Read a definition: the file at path ("-" is standard input), as JSON when its name ends
 * in ".json" or its first non-blank character is '{' or '[', else as YAML.  It must hold
 * one mapping (a JSON object).  Messages start with the path: "job.yaml: line 3,
 * column 1: duplicate key \"name\"".  TY_EIO when the file cannot be read, TY_EINVAL when
 * its content is refused.  *out is a new reference.
 */
int cli_file_load(const char *path, json_t **out, struct ty_err *err);

/*
 * Read a file of definitions (`apply -f`, `job add -f`): one mapping, or a list of mappings
 * (a JSON array, a YAML sequence).  *out is always a new JSON array of objects, in the
 * file's order.  Errors as cli_file_load, but the file may hold CLI_LIST_FILE_MAX bytes (a
 * million jobs take about 100 MB); an item that is not a mapping is named by its
 * 1-based position: "jobs.yaml: item 2: expected a mapping of fields (name: value), got a
 * string".
 */
int cli_file_load_list(const char *path, json_t **out, struct ty_err *err);

/*
 * Append v to out as a YAML document in block style (libyaml's emitter) that
 * cli_yaml_to_json reads back as the same value (json_equal): strings stay plain only when
 * no YAML 1.1 or 1.2 reader could take them for anything else and their characters allow
 * it, others are quoted (single quotes where they can carry the text, else double with
 * escapes), multi-line text is a literal block (|) where one can carry it exactly.
 * Objects keep their key order; empty ones are {} and [].  0, or TY_ENOMEM (out then
 * failed; out may hold part of the document).
 */
int cli_yaml_write(const json_t *v, struct strbuf *out);

#endif
