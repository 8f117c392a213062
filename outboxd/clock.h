/*
 * clock.h - outboxd's two clocks, in milliseconds: the monotonic one for
 * every duration and deadline (it never jumps with the wall clock), and
 * the wall clock for what is compared with an event's created time. One
 * definition for every file (reader.c, sink_runner.c and metrics.c each had
 * a copy). The lease manager keeps its own CLOCK_BOOTTIME clock on
 * purpose: a lease must age while the machine is suspended.
 */
#ifndef OUTBOXD_CLOCK_H
#define OUTBOXD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t outboxd_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t outboxd_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
