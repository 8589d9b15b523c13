/*
 * clock.h - the process's wall clock, which test builds may shift.
 *
 * Wall-clock time decides when schedules fire; the system tests move it (POST
 * /api/v1/test/clock in a test build) to see daylight-saving changes and clock steps
 * without waiting for them.  One offset for the whole process, so the control plane, the
 * executor and the trigger engine always agree on what time it is.
 */
#ifndef OS_CLOCK_H
#define OS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_REALTIME plus the offset, in ns.  Any thread. */
int64_t clock_wall_ns(void);

/* The CLOCK_REALTIME instant ms milliseconds from now (not shifted): a deadline for
 * pthread_cond_timedwait, whose default clock that is. */
struct timespec clock_deadline(int64_t ms);

/* Set the offset (ns) added to the wall clock from now on.  Any thread. */
void clock_shift(int64_t offset_ns);

#endif
