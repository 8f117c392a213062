/*
 * deadletter_writer.c - see deadletter_writer.h.
 */
#include "deadletter_writer.h"

#include "condwait.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 1000

typedef struct item {
    struct item *next;
    uint64_t seq;
    outboxd_shared_event_t *se;
    char *error;
    bool malformed;
} item_t;

struct outboxd_deadletter_writer {
    mongoc_client_pool_t *pool;
    char *db, *coll, *sink, *prefix;
    outboxd_deadletter_done_fn done;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item_t *head, **tailp; /* under lock: the queue, oldest first */
    bool quit;             /* under lock */
};

static void item_free(item_t *it) {
    outboxd_shared_event_unref(it->se);
    free(it->error);
    free(it);
}

/* One insert; false with the server's reason in berr. */
static bool insert(outboxd_deadletter_writer_t *w, const item_t *it, bson_error_t *berr) {
    bson_t *doc = bson_new();
    BSON_APPEND_UTF8(doc, "sink", w->sink);
    if (it->se->has_id)
        BSON_APPEND_OID(doc, "event_id", &it->se->id);
    else
        BSON_APPEND_NULL(doc, "event_id");
    BSON_APPEND_UTF8(doc, "error", it->error);
    BSON_APPEND_DATE_TIME(doc, "at", (int64_t)time(NULL) * 1000);
    BSON_APPEND_DOCUMENT(doc, "event", it->se->ev ? outbox_event_document(it->se->ev) : it->se->raw);
    if (it->malformed)
        BSON_APPEND_BOOL(doc, "malformed", true);
    mongoc_client_t *client = mongoc_client_pool_pop(w->pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, w->db, w->coll);
    bool ok = mongoc_collection_insert_one(c, doc, NULL, NULL, berr);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(w->pool, client);
    bson_destroy(doc);
    return ok;
}

/* Writes the queue's head; true when it is written (and done told). */
static bool write_head(outboxd_deadletter_writer_t *w, bool *said) {
    pthread_mutex_lock(&w->lock);
    item_t *it = w->head;
    pthread_mutex_unlock(&w->lock);
    bson_error_t berr;
    if (!insert(w, it, &berr)) {
        if (!*said)
            LOG_ERR("%scannot dead-letter %s into %s.%s: %s (retrying every %d ms; the checkpoint stays before "
                    "it until it is written)", w->prefix, it->se->id_hex, w->db, w->coll, berr.message, RETRY_MS);
        *said = true;
        return false;
    }
    if (*said)
        LOG_INFO("%sdead letter of %s written", w->prefix, it->se->id_hex);
    *said = false;
    pthread_mutex_lock(&w->lock);
    w->head = it->next;
    if (!w->head)
        w->tailp = &w->head;
    pthread_mutex_unlock(&w->lock);
    w->done(w->ctx, it->seq);
    item_free(it);
    return true;
}

static void *writer_loop(void *arg) {
    outboxd_deadletter_writer_t *w = arg;
    bool said = false;
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        if (!w->head) {
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        pthread_mutex_unlock(&w->lock);
        bool ok = write_head(w, &said);
        pthread_mutex_lock(&w->lock);
        if (!ok && !w->quit)
            outboxd_cond_wait_ms(&w->cond, &w->lock, RETRY_MS);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void free_writer(outboxd_deadletter_writer_t *w) {
    free(w->db);
    free(w->coll);
    free(w->sink);
    free(w->prefix);
    free(w);
}

outboxd_deadletter_writer_t *outboxd_deadletter_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *coll, const char *sink,
                                                             const char *log_prefix,
                                                             outboxd_deadletter_done_fn done, void *ctx) {
    outboxd_deadletter_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->pool = pool;
    w->db = strdup(db);
    w->coll = strdup(coll);
    w->sink = strdup(sink);
    w->prefix = strdup(log_prefix);
    w->done = done;
    w->ctx = ctx;
    w->tailp = &w->head;
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

void outboxd_deadletter_writer_submit(outboxd_deadletter_writer_t *w, uint64_t seq, outboxd_shared_event_t *se,
                                      const char *error, bool malformed) {
    item_t *it = calloc(1, sizeof *it);
    if (!it || !(it->error = strdup(error ? error : "")))
        abort();
    it->seq = seq;
    it->se = outboxd_shared_event_ref(se);
    it->malformed = malformed;
    pthread_mutex_lock(&w->lock);
    *w->tailp = it;
    w->tailp = &it->next;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

size_t outboxd_deadletter_writer_stop(outboxd_deadletter_writer_t *w) {
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    /* What is still queued: once more each, in order, on this thread; the
     * first failure ends it (the rest would fail alike). */
    bool said = false;
    while (w->head && write_head(w, &said))
        ;
    size_t left = 0;
    while (w->head) {
        item_t *it = w->head;
        w->head = it->next;
        item_free(it);
        left++;
    }
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free_writer(w);
    return left;
}
