/*
 * ring.h - the shared reader's bounded ring of decoded events: the reader
 * appends, each sink reads at its own position (a sequence number that only
 * grows), and the ring never waits for anyone: when it holds its maximum of
 * events or of bytes it drops its oldest entry. What it drops lives on in
 * the windows that took a reference to it.
 *
 * An index by event id finds an entry's position, so that a sink reading on
 * its own tail can tell when the event it just read is in the ring and go on
 * from the next position (no gap, no duplicate at the hand-over).
 *
 * Thread-safe: one mutex, held only for pointer and counter updates (never
 * while encoding or freeing an event's contents).
 */
#ifndef OUTBOXD_RING_H
#define OUTBOXD_RING_H

#include "shared_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct outboxd_ring outboxd_ring_t;

typedef enum {
    OUTBOXD_RING_OK = 0,      /* *se set, a reference the caller owns */
    OUTBOXD_RING_NOT_YET = 1, /* that position has not been written yet */
    OUTBOXD_RING_EVICTED = 2  /* that position was dropped: the reader is past it */
} outboxd_ring_rc_t;

/* A ring of at most max_events entries (>= 1) and max_bytes bytes of events
 * (shared_event's bytes; the newest entry is kept whatever its size). */
outboxd_ring_t *outboxd_ring_new(size_t max_events, size_t max_bytes);

/* Frees the ring and drops its references. No thread may use it any more. */
void outboxd_ring_free(outboxd_ring_t *ring);

/* Appends se, taking the caller's reference; drops the oldest entries the
 * limits then exceed. Returns se's position. Wakes every waiting reader. */
uint64_t outboxd_ring_push(outboxd_ring_t *ring, outboxd_shared_event_t *se);

/* The entry at seq, waiting up to wait_ms for it to be written. */
outboxd_ring_rc_t outboxd_ring_get(outboxd_ring_t *ring, uint64_t seq, int64_t wait_ms,
                                   outboxd_shared_event_t **se);

/* Up to max entries from seq on (consecutive, into se[0..*n)), waiting up
 * to wait_ms for the first: one lock for a batch of a sink's reads. */
outboxd_ring_rc_t outboxd_ring_take(outboxd_ring_t *ring, uint64_t seq, size_t max, int64_t wait_ms,
                                    outboxd_shared_event_t **se, size_t *n);

/* The position of the newest entry whose event has this id; false when no
 * entry in the ring has it. */
bool outboxd_ring_find(outboxd_ring_t *ring, const bson_oid_t *id, uint64_t *seq);

/* [*oldest, *next): the positions the ring holds now. */
void outboxd_ring_bounds(outboxd_ring_t *ring, uint64_t *oldest, uint64_t *next);

/* Whether the ring is at its limit (the next push drops its oldest entry,
 * by events, or by bytes within a sixteenth of the limit), with its bounds
 * as outboxd_ring_bounds gives them. */
bool outboxd_ring_at_limit(outboxd_ring_t *ring, uint64_t *oldest, uint64_t *next);

/* Figures: entries and bytes held now, entries dropped in all. */
void outboxd_ring_figures(outboxd_ring_t *ring, size_t *events, size_t *bytes, uint64_t *evicted);

/* Wakes every thread waiting in outboxd_ring_get (at shutdown). */
void outboxd_ring_wake(outboxd_ring_t *ring);

#endif
