/*
 * cron_check.h - the cron check as a JSON object: what `tethys cron check --json` prints
 * and what POST /api/v1/cron/check answers, built in one place.
 */
#ifndef CRON_CHECK_H
#define CRON_CHECK_H

#include <jansson.h>
#include <stdint.h>

#include "../core/ty_err.h"

#define CRON_CHECK_COUNT_MAX 1000

/*
 * Check `expression` in zone `zone` (default "UTC" when NULL) and list up to `count` fire
 * times after `from` (instant; the caller resolves "now").  Always returns a new object
 * (caller owns it) with "valid", "status" ("valid", "never_fires", "invalid"), and either
 * the schedule's facts or an "error" object.  *status_out gets 0 (fires), 1 (never fires)
 * or 2 (invalid).  An unknown zone is not an answer about the expression: it fails with
 * TY_ENOENT / TY_EINVAL and a message naming the zone, and returns NULL.
 */
json_t *cron_check_json(const char *expression, const char *zone, int64_t from, long count,
                        int64_t now, int *status_out, struct ty_err *err);

#endif
