/*
 * job.h - the job definition: its fields, their validation, and its JSON form.
 *
 * A job arrives as JSON (the API; the CLI turns YAML into the same JSON) and is checked
 * field by field here; every refusal names the field path ("shard_params.3",
 * "pause_windows[1].daily[0]") and the offending value.  A validated job is a plain struct
 * owned by one caller; job_to_json gives back the canonical JSON (every field, defaults
 * filled in, but for the placement fields at theirs), which is what the store keeps.
 * Pure: no I/O, no clock — the few checks that need "now" or other objects (domain
 * limits, whether a schedule ever fires) take them as parameters.
 */
#ifndef JOB_H
#define JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "ty_err.h"

/* Names: at most JOB_NAME_MAX bytes (NUL not counted) of [A-Za-z0-9._-], first a letter or digit */
#define JOB_NAME_MAX           128
#define JOB_SHARDS_MAX         10000
#define JOB_ENV_MAX            256   /* variables per job */
#define JOB_COMMAND_MAX        65536 /* bytes */
#define JOB_OUTPUT_CAP_DEFAULT (64 * 1024)
#define JOB_OUTPUT_CAP_MAX     (16 * 1024 * 1024)
#define JOB_SECRET_MASK        "********" /* what a secret value shows as, everywhere */
#define JOB_PREFER_MAX         16         /* entries of prefer */
#define JOB_PREFER_PART_MAX    63 /* bytes of an executor name, a label key or a label value */

enum job_type { JOB_SHELL = 1 };

/* How a cluster's leader places the job's shards on executors (shard.h). */
enum job_strategy {
    JOB_STRATEGY_EVEN = 1, /* spread by load over the eligible executors, sticky to owners */
    JOB_STRATEGY_HASH,     /* rendezvous hashing of (job, shard) over the eligible executors */
    JOB_STRATEGY_LOCAL,    /* every eligible executor runs every shard, with its own fires */
};

enum job_overlap {
    JOB_OVERLAP_SKIP = 1, /* a fire while the previous run of the shard is going is skipped */
    JOB_OVERLAP_QUEUE,    /* ...waits for it to finish */
    JOB_OVERLAP_PARALLEL, /* ...runs alongside */
};

enum job_misfire {
    JOB_MISFIRE_SKIP = 1, /* late fires are recorded as skipped */
    JOB_MISFIRE_RUN_ONCE, /* one run for the latest late fire, the rest recorded skipped */
    JOB_MISFIRE_CATCH_UP, /* up to catch_up_max late fires run, oldest first */
};

enum job_orphan {
    JOB_ORPHAN_KILL = 1, /* a run found alive after its executor died is killed */
    JOB_ORPHAN_FINISH,   /* ...is left to finish and its result collected */
};

enum job_pause_kind {
    JOB_PAUSE_DATES = 1, /* from/to are days (inclusive) in the job's zone */
    JOB_PAUSE_DAILY,     /* from/to are seconds of the day in the job's zone; may wrap */
};

struct job_pause {
    enum job_pause_kind kind;
    int64_t from; /* days since 1970-01-01, or seconds since local midnight */
    int64_t to;   /* inclusive for dates; exclusive for daily times */
};

struct job_env {
    char *name;
    char *value;
};

struct job {
    char *name;
    char *domain; /* "/" separated path, "" is the root domain */
    int level;    /* 0-9, higher is more important */
    char *description;
    char *owner;
    bool enabled;
    enum job_type type;

    /* what runs */
    char *command; /* run by /bin/sh -c */
    char *workdir; /* NULL: the executor's default */
    char *user;    /* NULL: the server's user; honoured when the server runs as root */
    struct job_env *env;
    size_t n_env;
    /* secret variables: their values are the real ones only where a caller put them
     * there (job_secrets_resolve); parsed JSON and job_to_json carry JOB_SECRET_MASK */
    struct job_env *secret_env;
    size_t n_secret_env;
    uint32_t output_cap; /* bytes of output kept (the tail) */

    /* when it runs */
    char *schedule; /* NULL: manual / downstream only */
    struct cron_expr cron;
    char *time_zone;  /* IANA name, default "UTC" */
    int64_t start_at; /* instant; 0 = none: no fire before it */
    int64_t end_at;   /* instant; 0 = none: no fire after it */
    struct job_pause *pauses;
    size_t n_pauses;
    char **calendars_skip; /* NULL-terminated names: fires on these dates are skipped */
    char **calendars_only; /* NULL-terminated names: fires run only on these dates */

    /* sharding */
    uint32_t shards;     /* 1..JOB_SHARDS_MAX */
    char **shard_params; /* shards entries, each NULL or a string */
    char *job_param;

    /* placement (cluster): which executors run the shards */
    enum job_strategy strategy;
    char **prefer;    /* NULL-terminated: executor names and label selectors "key=value" */
    bool prefer_only; /* only preferred executors may run it (else they come first) */

    /* limits and policies */
    uint32_t timeout;            /* seconds, 0 = none: the run is killed after it */
    uint32_t timeout_alarm;      /* seconds, 0 = none: an alert is raised after it */
    uint32_t kill_grace;         /* seconds between TERM and KILL, default 10 */
    uint32_t retries;            /* extra attempts after a failure */
    uint32_t retry_backoff;      /* seconds before the first retry, default 10 */
    uint32_t retry_backoff_max;  /* cap, default 3600 */
    double retry_backoff_factor; /* multiplier per attempt, default 2 */
    enum job_overlap overlap;
    uint32_t misfire_threshold; /* seconds, default 5 */
    enum job_misfire misfire;
    uint32_t catch_up_max; /* for JOB_MISFIRE_CATCH_UP, default 1 */
    enum job_orphan on_executor_death;
    bool failover;     /* wants to survive an executor's death (cluster) */
    char **downstream; /* NULL-terminated job names fired when every shard succeeded */
};

/*
 * Validate a JSON object and fill *out.  Unknown fields, wrong types, out-of-range values
 * and inconsistent combinations are refused with TY_EINVAL; err->field holds the field
 * path and err->msg a sentence naming it and the bad value.  Missing optional fields, and
 * fields given as null, take their defaults.  For an invalid "schedule", err->pos/len
 * locate the offending text within the schedule string.  On success the caller owns *out
 * (job_free); on failure *out is left empty (safe to job_free).  Checks only the syntax of
 * the time zone name and of references to other objects (domain, calendars, downstream
 * jobs), not that they exist, nor domain limits: see domain_check_job.  docs/jobs.md is the
 * reference of every field.
 */
int job_from_json(const json_t *obj, struct job *out, struct ty_err *err);

/* The canonical JSON of a job: every field, defaults included - except the placement
 * fields (strategy, prefer, prefer_only), written only when they differ from their
 * defaults, so a job stored before they existed keeps the same text (stored versions and
 * import plans compare it).  secret_env values are always JOB_SECRET_MASK, so this JSON
 * can be stored, shown and versioned.  New reference, caller owns it (json_decref).  NULL
 * only when out of memory. */
json_t *job_to_json(const struct job *j);

/*
 * Secrets.  A job's secret_env values travel apart from its JSON (the store keeps them
 * apart).  job_secrets_resolve puts the real values in: each value that is the mask is
 * replaced by stored[name] ({"NAME": "value"}, borrowed; NULL = none stored); a value
 * that is not the mask is a new value and stays.  A mask with nothing stored under its
 * name is TY_EINVAL naming "secret_env.NAME" (the value cannot be known).  No message
 * ever shows a secret value.  job_secrets_json gives {"NAME": "value"} of the values the
 * job holds (new reference; NULL when out of memory).
 */
int job_secrets_resolve(struct job *j, const json_t *stored, struct ty_err *err);
json_t *job_secrets_json(const struct job *j);

/* Release everything a job owns and zero it. */
void job_free(struct job *j);

/* Deep copy; 0, or TY_ENOMEM (dst then empty). */
int job_copy(struct job *dst, const struct job *src);

/*
 * Apply a JSON merge patch (RFC 7386) to the canonical JSON of `base` and validate the
 * result into *out, so an edit sends only what changes.  The name may not change.
 * Errors as job_from_json.
 */
int job_patch(const struct job *base, const json_t *patch, struct job *out, struct ty_err *err);

/*
 * The shortest interval, in seconds, between two consecutive fires of the schedule,
 * measured over the fires in the 365 days after `now` (at most 20,000 of them) in zone z
 * (the zone named by j->time_zone).  Real elapsed seconds: a daily job in a zone with
 * daylight saving fires less than 86,400 s apart once a year.  @every returns its period.
 * 0 when the job has no schedule or it fires at most once in that time.  No allocation.
 */
int64_t job_min_interval(const struct job *j, const struct tz_zone *z, int64_t now);

/*
 * Parse "0=beijing,1=shanghai" into a new array params[shards] (entries NULL when not
 * given; blanks around keys and values are dropped).  The caller owns the array and its
 * strings (free each, then the array).  Errors name "shard_params.<key>" (or
 * "shard_params"); *params is then NULL.
 */
int job_parse_shard_params(const char *text, uint32_t shards, char ***params, struct ty_err *err);

/* Instant t in zone z (the job's zone) falls in one of the job's pause windows. */
bool job_paused(const struct job *j, const struct tz_zone *z, int64_t t);

/*
 * What decides when a stored job fires, read from its canonical JSON (as the store keeps
 * it) without checking the rest: for showing the next fire of many jobs cheaply.
 * time_zone points into obj.  TY_EINVAL naming the field when one is missing or wrong.
 */
struct job_timing {
    bool enabled;
    bool scheduled; /* has a schedule (else API- or message-triggered) */
    struct cron_expr cron;
    const char *time_zone;
    int64_t start_at, end_at; /* 0: none */
};
int job_timing_from_json(const json_t *obj, struct job_timing *out, struct ty_err *err);

/* The first fire strictly after max(from, start_at - 1) within end_at, or 0 when there is
 * none (disabled, no schedule, past the end). */
int64_t job_timing_next(const struct job_timing *t, const struct tz_zone *z, int64_t from);

/*
 * A job's JSON text without building JSON values (job_text.c): for holding a million jobs
 * cheaply, parsing each only when a run needs it.
 *
 * job_text_compact walks text[0..len), a JSON object of job fields (the canonical form the
 * store keeps, as job_to_json writes it compactly), and appends to out the same object
 * without the members whose value is written exactly as their default (job_text_defaults):
 * job_from_json reads the result to the same job, and a small job's 750 bytes become about
 * 100.  Members are copied byte for byte, in order; values are not judged (job_from_json
 * does that later).  It also fills *s with what the trigger engine needs.  Returns 0 when
 * all of that was written plainly; 1 when a field of it is written in a way left to
 * job_from_json (escapes in the schedule or zone, start_at, end_at, the misfire settings,
 * a schedule that does not parse): out is made all the same, and *s must be taken from the
 * parsed job; TY_EINVAL (field "job") when the text is not a JSON object or gives a field
 * twice; TY_ENOMEM.  memo (may be NULL) is the caller's, kept from call to call: the last
 * schedule compiled, so jobs that share one (most of a large configuration) compile it once.
 */
struct job_sched {
    bool enabled;
    bool scheduled; /* it has a schedule, compiled into cron */
    struct cron_expr cron;
    char time_zone[TZ_NAME_MAX];
    int64_t start_at, end_at; /* 0: none (a text setting either returns 1) */
    uint32_t misfire_threshold;
    enum job_misfire misfire;
    uint32_t catch_up_max;
    bool secrets; /* secret_env names variables: their values travel apart from the text */
};
struct job_text_memo {
    char schedule[128]; /* "" at first */
    struct cron_expr cron;
};
int job_text_compact(const char *text, size_t len, struct strbuf *out, struct job_sched *s,
                     struct job_text_memo *memo, struct ty_err *err);

/* The raw text of member `key` of the JSON object text[0..len) into *val (pointing into
 * text) and *val_len, without parsing the rest.  TY_ENOENT when there is none, TY_EINVAL
 * when the text is not a JSON object. */
int job_text_member(const char *text, size_t len, const char *key, const char **val,
                    size_t *val_len);

/* The fields job_text_compact leaves out when they hold their default: n of them, each
 * with the default as job_to_json writes it (compact).  Static. */
struct job_text_default {
    const char *key;
    const char *raw;
    size_t key_len, raw_len;
};
const struct job_text_default *job_text_defaults(size_t *n);

/* The name of a misfire policy as the JSON has it ("skip", "run_once", "catch_up"); "?"
 * for a value outside the enum.  Static. */
const char *job_misfire_name(enum job_misfire m);

/*
 * Check a job or calendar name: 1..JOB_NAME_MAX bytes of [A-Za-z0-9._-], the first a letter
 * or digit.  0 or TY_EINVAL with a message naming `field` and showing the name.
 */
int job_check_name(const char *field, const char *name, struct ty_err *err);

/*
 * Internal, shared with domain.c and role.c only: the JSON field checks job_from_json is
 * built from, so domains, calendars and grants refuse bad input in the same words.  `where`
 * is the path of the enclosing object ("" at the top, "limits", "pause_windows[2]").
 */
/* Refuse a key not in known[n]: unknown field "where.key"; did you mean "where.known"? */
int job__check_fields(const json_t *obj, const char *where, const char *const *known, size_t n,
                      struct ty_err *err);
/* obj[key] as an integer in [min, max]; absent or null gives def. */
int job__get_int(const json_t *obj, const char *where, const char *key, int64_t min, int64_t max,
                 int64_t def, int64_t *out, struct ty_err *err);
/* obj[key] as a new copy of a string of at most max bytes, no NUL; absent or null gives a
 * copy of def (NULL when def is NULL: *out is then NULL). */
int job__get_text(const json_t *obj, const char *where, const char *key, size_t max,
                  const char *def, char **out, struct ty_err *err);
/* "YYYY-MM-DD" (1900-01-01 to 9999-12-31) to days since 1970-01-01, and back (buf >= 11). */
int job__parse_date(const char *s, const char *field, int64_t *day, struct ty_err *err);
void job__format_date(int64_t day, char buf[11]);
/* A JSON value / a C string as a message shows it: quoted and escaped, long ones cut short
 * with "..." to fit buf[cap] (cap >= 16).  Returns buf. */
const char *job__show(const json_t *v, char *buf, size_t cap);
const char *job__quote(const char *s, char *buf, size_t cap);

#endif
