/*
 * domain.h - domains (the organisation tree jobs belong to, with limits they inherit)
 * and calendars (named sets of dates a job skips, or runs only on).
 *
 * Pure: JSON in, validated structs out, and the checks that relate a job to them.
 */
#ifndef DOMAIN_H
#define DOMAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "ty_err.h"

#define DOMAIN_PATH_MAX 256 /* bytes, NUL not counted; segments joined by '/'; "" is the root */

struct domain {
    char *path; /* "bank/settlement"; its parent is "bank"; "" is the root */
    int level;  /* 0-9 */
    char *description;
    /* limits for every job in this domain's subtree; 0 = no limit from this domain */
    int64_t max_jobs;     /* jobs in the subtree */
    int64_t min_interval; /* seconds between two fires of one job */
    int64_t max_shards;   /* shards of one job */
};

/*
 * Check a domain path: "" (the root) or segments joined by single '/' (none at either end),
 * each following the name rules ([A-Za-z0-9._-], the first a letter or digit), at most
 * DOMAIN_PATH_MAX bytes in all.  0 or TY_EINVAL naming `field`.
 */
int domain_check_path(const char *field, const char *path, struct ty_err *err);

/* Validate and fill; errors name the field (TY_EINVAL).  Caller owns *out (domain_free). */
int domain_from_json(const json_t *obj, struct domain *out, struct ty_err *err);
json_t *domain_to_json(const struct domain *d); /* new reference */
void domain_free(struct domain *d);

/* The parent path of a domain path ("a/b" -> "a", "a" -> "", "" -> ""); writes into
 * buf[cap], cut short (and NUL-terminated) when it does not fit. */
void domain_parent(const char *path, char *buf, size_t cap);

/* Non-zero when `path` is `ancestor` or lies under it. */
bool domain_within(const char *path, const char *ancestor);

/*
 * Check a job against the limits of its domain chain (chain[0] the job's own domain, then
 * its parent, up to the root; NULL entries allowed for domains that do not exist).
 * jobs_in_subtree[i] is the number of jobs already in chain[i]'s subtree, not counting
 * this job (jobs_in_subtree may be NULL: job counts are then not checked).  min_interval
 * is job_min_interval of the job.  The nearest domain is checked first.  Returns 0, or
 * TY_EINVAL with a message naming the domain, the limit and the job's value; err->field is
 * "shards", "schedule" or "domain".
 */
int domain_check_job(const struct domain *const *chain, const int64_t *jobs_in_subtree, size_t n,
                     const struct job *j, int64_t min_interval, struct ty_err *err);

struct calendar {
    char *name; /* the job name rules (job_check_name) */
    char *description;
    int64_t *days; /* sorted, unique days since 1970-01-01 */
    size_t n_days;
};

/* {"name": "...", "description": "...", "dates": ["2026-12-25", ...]}: at most 100,000
 * dates, sorted and de-duplicated on the way in.  Errors name the field ("dates[3]"). */
int calendar_from_json(const json_t *obj, struct calendar *out, struct ty_err *err);
json_t *calendar_to_json(const struct calendar *c);
void calendar_free(struct calendar *c);

/* Non-zero when the calendar contains the day (days since 1970-01-01).  O(log n). */
bool calendar_has(const struct calendar *c, int64_t day);

#endif
