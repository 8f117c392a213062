/*
 * checkpoint_writer.h - writes a sink's checkpoint on a thread of its own,
 * so that a slow write (the database busy with the services' own writes)
 * never holds back publishing. Measured with bench/ on FerretDB: written
 * inline once a second, the checkpoint raised the p99 put-to-Redis latency
 * from 67 ms to 140 ms at 1,000 events/s.
 *
 * The latest submitted checkpoint wins: one that is submitted while an
 * older one waits replaces it (a checkpoint is a position, not a log). A
 * failed write is retried every second until it succeeds or a newer one
 * replaces it (with a fence: and only while the lease is valid).
 */
#ifndef OUTBOXD_CHECKPOINT_WRITER_H
#define OUTBOXD_CHECKPOINT_WRITER_H

#include "checkpoint.h"

typedef struct outboxd_checkpoint_writer outboxd_checkpoint_writer_t;

/* Starts the writer thread for sink's document in db.coll. The strings are
 * copied. log_prefix ("sink NAME: ") starts its log lines. fence (copied;
 * NULL or a term < 0: none, the writes are upserts as before leases):
 * every write filters on the fence's term, is attempted only while
 * fence->valid says so (a checkpoint found invalid is dropped, not
 * retried), and a write that comes back FENCED calls fence->lost once and
 * ends all writing. NULL if the thread could not start. */
outboxd_checkpoint_writer_t *outboxd_checkpoint_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *coll, const char *sink,
                                                             const char *log_prefix, const outboxd_fence_t *fence);

/* Tells fn(ctx, cp->seq) on the writer's thread each time a checkpoint
 * was written (the runner bounds what it publishes beyond its last durable
 * checkpoint: docs/recovery.md). Set before the first submit. */
void outboxd_checkpoint_writer_on_written(outboxd_checkpoint_writer_t *w, void (*fn)(void *ctx, uint64_t seq),
                                          void *ctx);

/* Hands cp (copied) to the writer and returns at once. */
void outboxd_checkpoint_writer_submit(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *cp);

/* The writes made so far (for the figures while the writer runs). */
int64_t outboxd_checkpoint_writer_writes(outboxd_checkpoint_writer_t *w);

/* Stops the thread (a write in progress completes), then writes on the
 * caller's thread final if not NULL, else what was still pending: the last
 * word is the caller's, with a fence only while fence->valid (and nothing
 * was fenced). Returns how many writes succeeded in all, and frees the
 * writer. */
int64_t outboxd_checkpoint_writer_stop(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *final);

/* The lease is lost: stops the thread (a write in progress completes),
 * writes nothing more, drops what is pending, frees the writer. Accepts
 * NULL. */
void outboxd_checkpoint_writer_abandon(outboxd_checkpoint_writer_t *w);

#endif
