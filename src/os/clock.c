/*
 * clock.c - the wall clock and its test offset (see clock.h).
 */
#include "clock.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t offset_ns; /* 0 but in test builds' shifted runs */

int64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + atomic_load(&offset_ns);
}

struct timespec clock_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

void clock_shift(int64_t ns)
{
    atomic_store(&offset_ns, ns);
}
