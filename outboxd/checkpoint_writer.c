/*
 * checkpoint_writer.c - see checkpoint_writer.h. The thread, its retries
 * and its stop are retry_writer.c's; the queue here is one slot.
 *
 * With a fence, a checkpoint is written only while the lease is valid: one
 * found invalid is dropped (a deposed runner's position must not be
 * retried into the document later), and a FENCED answer is told to the
 * fence once and ends every write of this writer.
 */
#include "checkpoint_writer.h"

#include "log.h"
#include "retry_writer.h"

#include <stdlib.h>

struct outboxd_checkpoint_writer {
    outboxd_retry_writer_t rw; /* first: the ops cast back */
    outboxd_checkpoint_t next; /* under rw.lock */
    bool pending;              /* under rw.lock */
    int64_t writes;            /* under rw.lock */
    outboxd_checkpoint_t taken; /* the thread's own: the one being written */
    void (*written)(void *ctx, uint64_t seq); /* set before the first submit */
    void *written_ctx;
};

/* One attempt; true when it is settled (written, or dropped by the
 * fence), false to retry. */
static bool write_one(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *cp) {
    char err[600];
    int64_t seen = -1;
    if (!outboxd_retry_writer_may_write(&w->rw))
        return true; /* the lease is not valid (or a write was fenced): never written */
    switch (outboxd_checkpoint_write(w->rw.pool, w->rw.db, w->rw.coll, w->rw.sink, outboxd_retry_writer_term(&w->rw),
                                     cp, &seen, err, sizeof err)) {
    case OUTBOXD_WRITE_OK:
        pthread_mutex_lock(&w->rw.lock);
        w->writes++;
        pthread_mutex_unlock(&w->rw.lock);
        if (w->written)
            w->written(w->written_ctx, cp->seq);
        return true;
    case OUTBOXD_WRITE_FENCED:
        outboxd_retry_writer_fenced(&w->rw, seen, err);
        return true;
    case OUTBOXD_WRITE_ERROR:
        break;
    }
    LOG_WARN("%s%s (will retry)", w->rw.prefix, err);
    return false;
}

static void *take(outboxd_retry_writer_t *rw) {
    outboxd_checkpoint_writer_t *w = (outboxd_checkpoint_writer_t *)rw;
    if (!w->pending)
        return NULL;
    w->taken = w->next;
    w->pending = false;
    return &w->taken;
}

static bool write_taken(outboxd_retry_writer_t *rw, void *work) {
    return write_one((outboxd_checkpoint_writer_t *)rw, work);
}

static bool failed(outboxd_retry_writer_t *rw, void *work) {
    outboxd_checkpoint_writer_t *w = (outboxd_checkpoint_writer_t *)rw;
    if (w->pending)
        return false; /* a newer one replaced it: that one, at once */
    /* Nothing newer yet: this one again, after a pause. */
    w->next = *(const outboxd_checkpoint_t *)work;
    w->pending = true;
    return true;
}

static const outboxd_retry_writer_ops_t ops = {take, write_taken, failed};

outboxd_checkpoint_writer_t *outboxd_checkpoint_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *coll, const char *sink,
                                                             const char *log_prefix, const outboxd_fence_t *fence) {
    outboxd_checkpoint_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (!outboxd_retry_writer_start(&w->rw, &ops, pool, db, coll, sink, log_prefix, fence)) {
        free(w);
        return NULL;
    }
    return w;
}

void outboxd_checkpoint_writer_on_written(outboxd_checkpoint_writer_t *w, void (*fn)(void *ctx, uint64_t seq),
                                          void *ctx) {
    pthread_mutex_lock(&w->rw.lock);
    w->written = fn;
    w->written_ctx = ctx;
    pthread_mutex_unlock(&w->rw.lock);
}

void outboxd_checkpoint_writer_submit(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *cp) {
    pthread_mutex_lock(&w->rw.lock);
    w->next = *cp;
    w->pending = true;
    pthread_cond_signal(&w->rw.cond);
    pthread_mutex_unlock(&w->rw.lock);
}

int64_t outboxd_checkpoint_writer_stop(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *final) {
    outboxd_retry_writer_join(&w->rw);
    if (final)
        write_one(w, final);
    else if (w->pending)
        write_one(w, &w->next); /* e.g. a stopped sink's state, submitted just before */
    int64_t writes = w->writes;
    outboxd_retry_writer_destroy(&w->rw);
    free(w);
    return writes;
}

void outboxd_checkpoint_writer_abandon(outboxd_checkpoint_writer_t *w) {
    if (!w)
        return;
    outboxd_retry_writer_join(&w->rw);
    outboxd_retry_writer_destroy(&w->rw);
    free(w);
}

int64_t outboxd_checkpoint_writer_writes(outboxd_checkpoint_writer_t *w) {
    pthread_mutex_lock(&w->rw.lock);
    int64_t n = w->writes;
    pthread_mutex_unlock(&w->rw.lock);
    return n;
}
