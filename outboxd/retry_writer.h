/*
 * retry_writer.h - the skeleton that a sink's checkpoint writer
 * (checkpoint_writer.h) and its dead-letter writer (deadletter_writer.h)
 * share: a thread of its own that takes what was queued, writes it into
 * MongoDB without holding the lock, pauses OUTBOXD_RETRY_WRITER_MS after a
 * failed write before trying again, and stops cleanly, after which the
 * owner has the queue to itself for its last writes. What is queued, in
 * what order, what a failure means and what the stop writes are the
 * owner's: see the ops below.
 *
 * An owner embeds outboxd_retry_writer_t as the FIRST member of its own
 * struct (so that the ops may cast the pointer back), guards its queue
 * with rw.lock, and signals rw.cond when it queues something.
 *
 * The fence (checkpoint.h; docs/leases.md section 3) is kept here too: the
 * owner asks outboxd_retry_writer_may_write before each attempt (no fence,
 * or the lease still valid and no write fenced yet), passes
 * outboxd_retry_writer_term to its write, and reports a FENCED answer
 * with outboxd_retry_writer_fenced, after which nothing is written again.
 */
#ifndef OUTBOXD_RETRY_WRITER_H
#define OUTBOXD_RETRY_WRITER_H

#include "checkpoint.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdbool.h>

#define OUTBOXD_RETRY_WRITER_MS 1000

typedef struct outboxd_retry_writer outboxd_retry_writer_t;

typedef struct {
    /* With rw->lock held: the next thing to write, NULL when the queue is
     * empty (the thread then waits for rw->cond). */
    void *(*take)(outboxd_retry_writer_t *rw);
    /* Without the lock: one attempt at writing work; true once written. */
    bool (*write)(outboxd_retry_writer_t *rw, void *work);
    /* With rw->lock held, after write failed: true to pause before the
     * next attempt, false to go on at once (something newer replaced it). */
    bool (*failed)(outboxd_retry_writer_t *rw, void *work);
} outboxd_retry_writer_ops_t;

struct outboxd_retry_writer {
    mongoc_client_pool_t *pool;
    char *db, *coll, *sink, *prefix; /* copies; prefix ("sink NAME: ") starts log lines */
    const outboxd_retry_writer_ops_t *ops;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool quit; /* under lock */
    /* The fence (a copy); has_fence: given, with a term >= 0. fenced: a
     * write came back FENCED (the writing thread's; the stop's after the
     * join). */
    outboxd_fence_t fence;
    bool has_fence, fenced;
};

/* Copies the strings and the fence (NULL, or a term < 0: none) and starts
 * the thread: the owner's queue must be ready (empty) before. False when
 * that failed; nothing is left to undo then but the owner's own struct. */
bool outboxd_retry_writer_start(outboxd_retry_writer_t *rw, const outboxd_retry_writer_ops_t *ops,
                                mongoc_client_pool_t *pool, const char *db, const char *coll, const char *sink,
                                const char *log_prefix, const outboxd_fence_t *fence);

/* Whether an attempt may write now: true without a fence; with one, false
 * once a write was fenced, else what fence->valid says. */
bool outboxd_retry_writer_may_write(outboxd_retry_writer_t *rw);

/* The term the owner's writes are fenced at; -1 without a fence. */
int64_t outboxd_retry_writer_term(const outboxd_retry_writer_t *rw);

/* A write came back OUTBOXD_WRITE_FENCED: logs why, tells fence->lost
 * (once), and from now on may_write is false. */
void outboxd_retry_writer_fenced(outboxd_retry_writer_t *rw, int64_t seen_term, const char *why);

/* Stops the thread (a write in progress completes; no new one begins):
 * after it, the caller alone touches the queue. */
void outboxd_retry_writer_join(outboxd_retry_writer_t *rw);

/* Frees what start made (the strings, lock and cond), not rw itself.
 * After join. */
void outboxd_retry_writer_destroy(outboxd_retry_writer_t *rw);

#endif
