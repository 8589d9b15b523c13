/*
 * crontab.h - read a crontab (Vixie/cronie syntax) into Tethys job definitions.
 *
 * Pure: crontab text in, one result per line out, nothing read or written.  The caller
 * (`tethys import crontab`) reads the file, resolves the machine's time zone and sends the
 * jobs.  Every line gets a result, so a report can account for the whole file:
 *
 *   blank, comment   nothing to carry over
 *   env              NAME=VALUE: the environment of the entries below it (cronie: each
 *                    entry sees the assignments above it, the latest of each name), or
 *                    CRON_TZ (their time zone), or a setting with nothing to carry over
 *   job              an entry, as a job object (jansson) ready for POST /api/v1/jobs
 *   unsupported      valid for cron, not carried over, with the reason: @reboot, MAILTO,
 *                    MAILFROM, SHELL other than /bin/sh, RANDOM_DELAY, a variable name
 *                    Tethys cannot set
 *   error            malformed (too few fields, a bad schedule, no command, ...) with the
 *                    reason; the other lines are still read
 *
 * Entries follow cron exactly where Tethys can: the five fields go through cron_parse (the
 * Unix form is Tethys's own dialect), macros map to Tethys macros, and the `%` rules of
 * cronie's do_command.c are applied (the first unescaped % ends the command, the rest is
 * standard input with % as newline, \% is a literal %).  Tethys runs commands with standard
 * input from /dev/null, so an entry with input becomes
 *
 *     printf '%s\n' 'line 1' 'line 2' | (COMMAND)
 *
 * which gives COMMAND the very bytes cron would have written to its standard input.
 * Jobs keep cron's overlap behaviour ("overlap": "parallel": cron starts a run even when
 * the previous one is still going).
 *
 * Names are "<prefix>-<line>-<slug of the command's first word>" ("crontab-12-backup.sh"):
 * readable, stable for a given file, and unique within it because the line number is part
 * of them.
 */
#ifndef CRONTAB_H
#define CRONTAB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ty_err.h"

#define CRONTAB_PREFIX_DEFAULT "crontab"
#define CRONTAB_PREFIX_MAX     64 /* bytes: leaves room for "-<line>-<slug>" in a job name */
#define CRONTAB_SLUG_MAX       40 /* bytes of the command's first word kept in a name */

enum crontab_kind {
    CRONTAB_BLANK = 1,   /* empty, or only blanks */
    CRONTAB_COMMENT,     /* first non-blank character is # */
    CRONTAB_ENV,         /* an assignment, carried over (or with nothing to carry) */
    CRONTAB_JOB,         /* an entry that became a job */
    CRONTAB_UNSUPPORTED, /* valid for cron, not carried over; msg says why */
    CRONTAB_ERROR,       /* malformed; msg says why */
};

/* Where a job's time zone came from. */
enum crontab_tz_from {
    CRONTAB_TZ_OPTION = 1, /* opts.tz (--tz), which overrides CRON_TZ */
    CRONTAB_TZ_CRON_TZ,    /* a CRON_TZ line above the entry (tz_line) */
    CRONTAB_TZ_DEFAULT,    /* opts.default_tz (the machine's zone), else "UTC" */
};

struct crontab_line {
    int line; /* 1-based line number */
    enum crontab_kind kind;
    /* What happened and why, without the line number (the caller shows `line` next to it):
     * set for env, unsupported and error lines, and for a job when there is something to
     * know (its standard input, a hint); NULL otherwise.  Owned. */
    char *msg;
    json_t *job;                  /* CRONTAB_JOB: the job object (owned reference); else NULL */
    enum crontab_tz_from tz_from; /* CRONTAB_JOB only */
    int tz_line;                  /* CRONTAB_JOB from CRON_TZ: that line; else 0 */
};

struct crontab_opts {
    const char *prefix;     /* job names start "<prefix>-"; NULL: CRONTAB_PREFIX_DEFAULT */
    const char *domain;     /* the jobs' domain; NULL: none (the root) */
    const char *tz;         /* every job's zone, overriding CRON_TZ (--tz); NULL: none */
    const char *default_tz; /* the zone of entries without CRON_TZ; NULL: "UTC" */
    const char *source;     /* named in each job's description ("/etc/crontab"); NULL:
                               "crontab" */
    bool system;            /* /etc/crontab format: a user column after the schedule */
};

/* The results, one per line of the text, in order; counts by kind. */
struct crontab {
    struct crontab_line *lines;
    size_t n_lines;
    size_t n_jobs, n_env, n_unsupported, n_errors, n_blank, n_comments;
};

/*
 * Read text[0..len) (a last line without its newline counts) into *out, one result per
 * line.  A line cron would refuse, or that Tethys cannot represent, is a CRONTAB_ERROR
 * result, not a failure: the function fails only for bad options (TY_EINVAL: a prefix that
 * is not a valid start of a job name or longer than CRONTAB_PREFIX_MAX, or a domain or
 * zone the job format refuses; err names the option: "--prefix", "--domain", "--tz") or
 * TY_ENOMEM.  Each job is checked with job_from_json, so what it holds is a valid job
 * definition; whether its zone exists is for the caller (the server) to say.  opts and
 * text are borrowed.  On success the caller owns *out (crontab_free); on failure *out is
 * empty.
 */
int crontab_parse(const char *text, size_t len, const struct crontab_opts *opts,
                  struct crontab *out, struct ty_err *err);

/* Release every result and zero *c.  Safe on a zeroed struct. */
void crontab_free(struct crontab *c);

/* "blank", "comment", "env", "job", "unsupported", "error". */
const char *crontab_kind_name(enum crontab_kind kind);

#endif
