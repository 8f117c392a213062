/*
 * checkpoint_writer.c - see checkpoint_writer.h.
 */
#include "checkpoint_writer.h"

#include "condwait.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 1000

struct outboxd_checkpoint_writer {
    mongoc_client_pool_t *pool;
    char *db, *coll, *sink, *prefix;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    outboxd_checkpoint_t next; /* under lock */
    bool pending, quit;        /* under lock */
    int64_t writes;            /* under lock */
};

static bool write_one(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *cp) {
    char err[600];
    if (outboxd_checkpoint_write(w->pool, w->db, w->coll, w->sink, cp, err, sizeof err)) {
        pthread_mutex_lock(&w->lock);
        w->writes++;
        pthread_mutex_unlock(&w->lock);
        return true;
    }
    LOG_WARN("%s%s (will retry)", w->prefix, err);
    return false;
}

static void *writer_loop(void *arg) {
    outboxd_checkpoint_writer_t *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        if (!w->pending) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        outboxd_checkpoint_t cp = w->next;
        w->pending = false;
        pthread_mutex_unlock(&w->lock);
        bool ok = write_one(w, &cp);
        pthread_mutex_lock(&w->lock);
        if (!ok && !w->pending) {
            /* Nothing newer yet: this one again, after a pause. */
            w->next = cp;
            w->pending = true;
            outboxd_cond_wait_ms(&w->cond, &w->lock, RETRY_MS);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void free_writer(outboxd_checkpoint_writer_t *w) {
    free(w->db);
    free(w->coll);
    free(w->sink);
    free(w->prefix);
    free(w);
}

outboxd_checkpoint_writer_t *outboxd_checkpoint_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *coll, const char *sink,
                                                             const char *log_prefix) {
    outboxd_checkpoint_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->pool = pool;
    w->db = strdup(db);
    w->coll = strdup(coll);
    w->sink = strdup(sink);
    w->prefix = strdup(log_prefix);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (!w->db || !w->coll || !w->sink || !w->prefix || pthread_create(&w->thread, NULL, writer_loop, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free_writer(w);
        return NULL;
    }
    return w;
}

void outboxd_checkpoint_writer_submit(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *cp) {
    pthread_mutex_lock(&w->lock);
    w->next = *cp;
    w->pending = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int64_t outboxd_checkpoint_writer_stop(outboxd_checkpoint_writer_t *w, const outboxd_checkpoint_t *final) {
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (final)
        write_one(w, final);
    else if (w->pending)
        write_one(w, &w->next); /* e.g. a stopped sink's state, submitted just before */
    int64_t writes = w->writes;
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free_writer(w);
    return writes;
}
