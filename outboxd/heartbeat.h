/*
 * heartbeat.h - the watchdog's view of one of outboxd's own threads (the
 * shared reader, the lease manager, the log survey), for /healthz.
 *
 * A thread says "busy" each time it starts a step of its work (a read of
 * the log, a round of the leases, a look at the log): the time of that
 * call is its last sign of progress. It says "idle" before a wait that is
 * by design (no sink to read for, the time to the next round): an idle
 * thread is never stuck, however long it waits. A thread busy for longer
 * than http.stuck_ms since its last beat is stuck (a server call that
 * never returns): /healthz then fails, and systemd or the orchestrator
 * restarts outboxd, which is the one cure for a hung thread.
 *
 * Header only, lock-free, and a NULL heartbeat is accepted and ignored, so
 * that the reader and the lease manager (also built into their own tests,
 * without the metrics registry) need no link to metrics.c.
 */
#ifndef OUTBOXD_HEARTBEAT_H
#define OUTBOXD_HEARTBEAT_H

#include "clock.h"

#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
    atomic_bool started; /* the thread runs (beats were ever given) */
    atomic_bool busy;
    atomic_llong since_ms; /* outboxd_mono_ms() of the last beat */
} outboxd_heartbeat_t;

/* Busy since now_ms (outboxd_mono_ms()), for a thread that has just read
 * the clock anyway (the reader beats once per event). */
static inline void outboxd_heartbeat_busy_at(outboxd_heartbeat_t *h, int64_t now_ms) {
    if (!h)
        return;
    atomic_store(&h->since_ms, now_ms);
    atomic_store(&h->busy, true);
    atomic_store(&h->started, true);
}

static inline void outboxd_heartbeat_busy(outboxd_heartbeat_t *h) {
    if (h)
        outboxd_heartbeat_busy_at(h, outboxd_mono_ms());
}

static inline void outboxd_heartbeat_idle(outboxd_heartbeat_t *h) {
    if (!h)
        return;
    atomic_store(&h->since_ms, outboxd_mono_ms());
    atomic_store(&h->busy, false);
    atomic_store(&h->started, true);
}

/* The thread ended (outboxd stops, or the reader could not start). */
static inline void outboxd_heartbeat_end(outboxd_heartbeat_t *h) {
    if (h)
        atomic_store(&h->started, false);
}

#endif
