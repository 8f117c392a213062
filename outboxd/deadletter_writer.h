/*
 * deadletter_writer.h - a sink's dead letters (on_error: deadletter) written
 * into N.deadletter on a thread of their own, like its checkpoints
 * (checkpoint_writer.h): an insert is a database round trip, and it ran on
 * the runner thread under the window's lock, which a client library's ack
 * thread needs.
 *
 * A dead letter is written before its event counts as done: the writer
 * calls done(ctx, seq) only once the insert succeeded, and the runner's
 * checkpoint never moves past an event whose dead letter is not written.
 * A failed insert is retried (every second, in order) until it succeeds or
 * the sink stops; one still unwritten then is handled again after a
 * restart (its event is after the checkpoint). A crash loses none.
 *
 * With a fence (high availability), each insert waits for the lease's
 * valid check and a fence touch of the sink's checkpoint document at the
 * runner's term; a touch that is fenced calls fence->lost once, and no
 * dead letter is inserted after it (deadletter_writer.c says what that
 * guarantees and what it cannot).
 */
#ifndef OUTBOXD_DEADLETTER_WRITER_H
#define OUTBOXD_DEADLETTER_WRITER_H

#include "checkpoint.h"
#include "shared_event.h"

#include <mongoc/mongoc.h>
#include <stdint.h>

typedef struct outboxd_deadletter_writer outboxd_deadletter_writer_t;

/* Called on the writer's thread, with no lock of the writer held, once the
 * dead letter of the event at seq is in the database. */
typedef void (*outboxd_deadletter_done_fn)(void *ctx, uint64_t seq);

/* Starts the writer of sink's dead letters into db.dl_coll (N.deadletter).
 * Strings are copied; log_prefix ("sink NAME: ") starts its log lines.
 * fence (copied; NULL or a term < 0: none, and cp_coll is not used): each
 * insert is made only while fence->valid, after a touch of sink's document
 * in db.cp_coll (N.checkpoints) at the fence's term. NULL if the thread
 * could not start. */
outboxd_deadletter_writer_t *outboxd_deadletter_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *cp_coll, const char *dl_coll,
                                                             const char *sink, const char *log_prefix,
                                                             outboxd_deadletter_done_fn done, void *ctx,
                                                             const outboxd_fence_t *fence);

/* Queues the dead letter of se (the writer takes a reference of its own)
 * at window position seq, with error (copied; scrubbed already), and
 * returns at once. malformed: se is a document that is not an envelope.
 * The document written: { sink, event_id (null without an ObjectId _id),
 * error, at, event (the document as it was in the log), malformed: true
 * for a malformed one }. */
void outboxd_deadletter_writer_submit(outboxd_deadletter_writer_t *w, uint64_t seq, outboxd_shared_event_t *se,
                                      const char *error, bool malformed);

/* Tries every queued dead letter once more, then stops the thread and
 * frees the writer. Returns how many stayed unwritten (their events are
 * not done: a restart handles them again). Accepts NULL. */
size_t outboxd_deadletter_writer_stop(outboxd_deadletter_writer_t *w);

/* The lease is lost: stops the thread (an insert in progress completes),
 * drops the queue unwritten (done is not called for it: the events stay
 * after the checkpoint, for the next holder) and frees the writer. Accepts
 * NULL. */
void outboxd_deadletter_writer_abandon(outboxd_deadletter_writer_t *w);


#endif
