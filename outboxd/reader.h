/*
 * reader.h - the shared reader of one outbox: ONE thread tails the log into
 * a ring of decoded events (ring.h) that every sink reads at its own
 * position, so that N sinks cost the database one tailable cursor while
 * they keep up. The ring never waits for a sink.
 *
 * Where the reader starts: after the oldest checkpoint (in the log's
 * natural order) among the sinks that run at start, or at the log's start
 * when one of them has none. Every other sink is then at or after the
 * reader's start and waits for its checkpoint to pass through the ring
 * instead of opening a tail of its own. docs/design.md says why.
 *
 * A sink that joins later (SIGHUP), or whose position is not in the ring
 * (it fell behind, its checkpoint is gone), reads on a catch-up tail of its
 * own and rejoins the ring when the event it read is in it
 * (outboxd_reader_place). A gap in the reader's own stream (its tail lost
 * events, and it restarted from the oldest event) is a gap mark in the
 * ring: a sink that reaches it goes on from its own position on a tail of
 * its own, whose gap (if any) is then the sink's own, under its on_gap.
 *
 * The reader idles without members (docs/leases.md, section 4): no origin
 * is decided and no tail opened while no sink has joined (a sink standing
 * by for a lease another outboxd holds never joins), and when the last
 * member leaves, the reader closes its tail, empties its ring and decides
 * again, as at start, when a sink joins next.
 */
#ifndef OUTBOXD_READER_H
#define OUTBOXD_READER_H

#include "heartbeat.h"
#include "ring.h"

#include "outbox/outbox.h"

#include <stdatomic.h>

typedef struct outboxd_reader outboxd_reader_t;
typedef struct outboxd_reader_member outboxd_reader_member_t;

/* Where a sink goes on. */
typedef enum {
    OUTBOXD_PLACE_RING = 0,    /* on the ring at position seq */
    OUTBOXD_PLACE_WAIT = 1,    /* its position is ahead: scan the ring from seq for
                                * its checkpoint's event, and go on after it */
    OUTBOXD_PLACE_PRIVATE = 2, /* on a catch-up tail of its own */
    OUTBOXD_PLACE_STOPPED = 3  /* outboxd stops: nothing to do */
} outboxd_place_kind_t;

typedef struct {
    outboxd_place_kind_t kind;
    uint64_t seq;
} outboxd_place_t;

/* The reader of outbox (database db, log collection coll) with a ring of
 * ring_events entries and ring_bytes bytes. Nothing runs until
 * outboxd_reader_start. */
outboxd_reader_t *outboxd_reader_new(outbox_t *outbox, mongoc_client_pool_t *pool, const char *db,
                                     const char *coll, size_t ring_events, size_t ring_bytes);

/* One more sink will join (or say it will not): before the reader has
 * started reading, it waits for every sink it was told of, to start at
 * the oldest of their positions. Every outboxd_reader_join and
 * outboxd_reader_join_none answers exactly one expect: a sink that joins
 * again (after standing by) expects again right before. */
void outboxd_reader_expect(outboxd_reader_t *reader);

/* The heartbeat the reader's thread keeps for the watchdog of /healthz
 * (heartbeat.h); before outboxd_reader_start. */
void outboxd_reader_watch(outboxd_reader_t *reader, outboxd_heartbeat_t *beat);

/* For the log survey (survey.h), the sinks' lag without reading the log.
 * True when the reader has read everything the log holds (its last read
 * found nothing new): then *newest_created_ms is the log's newest
 * document's created (-1: a malformed document), and for each of the n
 * event ids that its ring holds, after[i] is the number of documents
 * after it (events and malformed documents alike; a gap mark, rare, counts
 * as one) and created_ms[i] its created; -1 for an id not in the ring. */
bool outboxd_reader_at_head(outboxd_reader_t *reader, const bson_oid_t *ids, size_t n, int64_t *after,
                            int64_t *created_ms, int64_t *newest_created_ms);

/* Where the reader's events come from instead of the log: a source of the
 * caller's, for bench/bench_pipeline.c, which feeds outboxd's event path
 * from memory to measure outboxd's own ceiling (issue 21; docs/
 * performance.md). next is called as outbox_tail_next would be: OUTBOX_OK
 * with *event (valid until the next call), OUTBOX_ERR_TIMED_OUT when
 * nothing came within wait_ms. With a source the reader looks nothing up
 * in the log (every sink must start without a checkpoint) and waits for
 * the slowest sink rather than the leading one, since no sink could catch
 * up from the log. Before outboxd_reader_start; source must outlive the
 * reader. */
typedef struct {
    outbox_code_t (*next)(void *ctx, int wait_ms, const outbox_event_t **event, outbox_error_t *error);
    void *ctx;
} outboxd_reader_source_t;
void outboxd_reader_set_source(outboxd_reader_t *reader, const outboxd_reader_source_t *source);

/* Starts the reader's thread; false if it could not start. */
bool outboxd_reader_start(outboxd_reader_t *reader);

/* Stops and joins the thread. The ring stays until outboxd_reader_free
 * (sinks still read it while they stop). */
void outboxd_reader_stop(outboxd_reader_t *reader);

/* Frees the reader and its ring; every sink has left. Accepts NULL. */
void outboxd_reader_free(outboxd_reader_t *reader);

/* A sink joins, after reading (claiming) its checkpoint: after is its
 * checkpoint's event, NULL for the log's start; formats the payload
 * formats it uses (OUTBOXD_FORMAT_*). Blocks until the reader has decided
 * where it starts (before the reader's first read, or while it idles
 * without members: the first sink to join wakes it, and the origin is
 * decided from it and every sink expected meanwhile), or *stop is set.
 * *place says where the sink goes on. The member is the sink's until
 * outboxd_reader_leave. */
outboxd_reader_member_t *outboxd_reader_join(outboxd_reader_t *reader, const char *name, unsigned formats,
                                             const bson_oid_t *after, atomic_bool *stop,
                                             outboxd_place_t *place);

/* A sink that was expected will not join (stopped at a gap, or before its
 * checkpoint could be read, or its thread did not start). */
void outboxd_reader_join_none(outboxd_reader_t *reader);

/* Where the sink reads now: on the ring (its feeder takes entry pos next)
 * or not (on a tail of its own, or stopped). The reader reads ahead of the
 * most advanced sink on the ring by at most half its ring (once the ring is
 * full), so that a sink that keeps up is never dropped off a ring that
 * raced ahead of every sink; it never waits for the others. Any thread;
 * cheap (two relaxed stores). */
void outboxd_reader_member_at(outboxd_reader_member_t *member, bool on_ring, uint64_t pos);

/* The sink leaves (it stops, or stands by: its feeder has stopped and no
 * longer reads the ring). When it was the last member, the reader goes
 * idle (above). Accepts NULL. */
void outboxd_reader_leave(outboxd_reader_t *reader, outboxd_reader_member_t *member);

/* Where a sink that has taken every event up to after (NULL: none yet,
 * from the log's start) can go on from the ring now: PLACE_RING with the
 * position of the entry right after that event, or PLACE_PRIVATE when the
 * ring does not hold that place. (Documents without an ObjectId _id right
 * after it are the caller's to pass over: they cannot be looked up.) */
outboxd_place_t outboxd_reader_place(outboxd_reader_t *reader, const bson_oid_t *after);

/* The ring sinks read now. It changes only while the reader idles (no
 * member): a member's feeder may load it once and keep it until it leaves. */
outboxd_ring_t *outboxd_reader_ring(outboxd_reader_t *reader);

/* How many tails the shared reader opened in this run. */
int64_t outboxd_reader_shared_tails(outboxd_reader_t *reader);

#endif
