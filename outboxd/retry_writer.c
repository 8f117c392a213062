/*
 * retry_writer.c - see retry_writer.h.
 */
#include "retry_writer.h"

#include "condwait.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void *writer_loop(void *arg) {
    outboxd_retry_writer_t *rw = arg;
    pthread_mutex_lock(&rw->lock);
    while (!rw->quit) {
        void *work = rw->ops->take(rw);
        if (!work) {
            pthread_cond_wait(&rw->cond, &rw->lock);
            continue;
        }
        pthread_mutex_unlock(&rw->lock);
        bool ok = rw->ops->write(rw, work);
        pthread_mutex_lock(&rw->lock);
        if (!ok && rw->ops->failed(rw, work) && !rw->quit)
            outboxd_cond_wait_ms(&rw->cond, &rw->lock, OUTBOXD_RETRY_WRITER_MS);
    }
    pthread_mutex_unlock(&rw->lock);
    return NULL;
}

static void free_strings(outboxd_retry_writer_t *rw) {
    free(rw->db);
    free(rw->coll);
    free(rw->sink);
    free(rw->prefix);
}

bool outboxd_retry_writer_start(outboxd_retry_writer_t *rw, const outboxd_retry_writer_ops_t *ops,
                                mongoc_client_pool_t *pool, const char *db, const char *coll, const char *sink,
                                const char *log_prefix, const outboxd_fence_t *fence) {
    rw->pool = pool;
    rw->has_fence = fence && fence->term >= 0;
    if (rw->has_fence)
        rw->fence = *fence;
    rw->fenced = false;
    rw->ops = ops;
    rw->quit = false;
    rw->db = strdup(db);
    rw->coll = strdup(coll);
    rw->sink = strdup(sink);
    rw->prefix = strdup(log_prefix);
    pthread_mutex_init(&rw->lock, NULL);
    pthread_cond_init(&rw->cond, NULL);
    if (!rw->db || !rw->coll || !rw->sink || !rw->prefix || pthread_create(&rw->thread, NULL, writer_loop, rw) != 0) {
        pthread_cond_destroy(&rw->cond);
        pthread_mutex_destroy(&rw->lock);
        free_strings(rw);
        return false;
    }
    return true;
}

void outboxd_retry_writer_join(outboxd_retry_writer_t *rw) {
    pthread_mutex_lock(&rw->lock);
    rw->quit = true;
    pthread_cond_signal(&rw->cond);
    pthread_mutex_unlock(&rw->lock);
    pthread_join(rw->thread, NULL);
}

void outboxd_retry_writer_destroy(outboxd_retry_writer_t *rw) {
    pthread_cond_destroy(&rw->cond);
    pthread_mutex_destroy(&rw->lock);
    free_strings(rw);
}

bool outboxd_retry_writer_may_write(outboxd_retry_writer_t *rw) {
    if (!rw->has_fence)
        return true;
    if (rw->fenced)
        return false;
    return !rw->fence.valid || rw->fence.valid(rw->fence.ctx, rw->fence.term);
}

int64_t outboxd_retry_writer_term(const outboxd_retry_writer_t *rw) {
    return rw->has_fence ? rw->fence.term : -1;
}

void outboxd_retry_writer_fenced(outboxd_retry_writer_t *rw, int64_t seen_term, const char *why) {
    if (!rw->has_fence || rw->fenced)
        return;
    rw->fenced = true;
    LOG_WARN("%s%s; this writer writes nothing more", rw->prefix, why);
    if (rw->fence.lost)
        rw->fence.lost(rw->fence.ctx, rw->fence.term, seen_term, why);
}
