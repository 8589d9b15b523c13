/*
 * tzdb.h - the process-wide registry of zone tables read from the system's tz database.
 *
 * The one place that touches /usr/share/zoneinfo.  Each zone is read and parsed once
 * (tz_parse) and then shared, immutable, by every caller for the life of the process:
 * thousands of jobs in Asia/Shanghai share one table.  Thread-safe.
 */
#ifndef TZDB_H
#define TZDB_H

#include "../core/tz.h"
#include "../core/ty_err.h"

/*
 * Return the shared table for an IANA zone name ("Asia/Shanghai", "UTC").  The table is
 * owned by the registry and stays valid until tzdb_shutdown; the caller must not free
 * it.  Names are checked before any file is opened: empty, absolute, containing "..",
 * or characters outside [A-Za-z0-9/_+-] fail with TY_EINVAL; a name with no readable
 * TZif file under the database directory fails with TY_ENOENT ("unknown time zone");
 * a corrupt or oversized file with TY_EFORMAT; a failing read with TY_EIO; each with a
 * message naming the zone.  Only successes are cached.
 */
int tzdb_get(const char *name, const struct tz_zone **out, struct ty_err *err);

/*
 * Use dir instead of $TZDIR or /usr/share/zoneinfo (tests); NULL restores the default.
 * Affects only zones loaded afterwards.  dir is copied.
 */
void tzdb_set_dir(const char *dir);

/* The directory zones are read from. Borrowed. */
const char *tzdb_dir(void);

/* Free every table.  Only for leak checkers at exit; no table may be used afterwards. */
void tzdb_shutdown(void);

#endif
