/*
 * deadletter_writer.c - see deadletter_writer.h. The thread, its retries
 * and its stop are retry_writer.c's; the queue here is a list, written in
 * order, its head until it is written.
 *
 * With a fence, each insert is preceded by the lease's valid check and
 * the fence touch of the checkpoint document ({_id: SINK, term: T}): a
 * dead letter is inserted only by the term that still holds the
 * checkpoint. The two are not atomic (FerretDB has no transactions): a
 * deposed runner can insert at most the one dead letter whose touch came
 * just before the new holder's claim; its event is after the checkpoint
 * that runner last wrote, so the new holder handles it again
 * (docs/leases.md section 3, "Dead letters are not atomic with the fence").
 */
#include "deadletter_writer.h"

#include "log.h"
#include "retry_writer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct item {
    struct item *next;
    uint64_t seq;
    outboxd_shared_event_t *se;
    char *error;
    bool malformed;
} item_t;

struct outboxd_deadletter_writer {
    outboxd_retry_writer_t rw; /* first: the ops cast back; rw.coll is N.deadletter */
    char *cp_coll;             /* N.checkpoints, for the fence touch */
    outboxd_deadletter_done_fn done;
    void *ctx;
    item_t *head, **tailp; /* under rw.lock: the queue, oldest first */
    bool said;             /* the writing thread's (the stop's after it): the failure of head was logged */
};

static void item_free(item_t *it) {
    outboxd_shared_event_unref(it->se);
    free(it->error);
    free(it);
}

/* One insert; false with the server's reason in berr. */
static bool insert(outboxd_deadletter_writer_t *w, const item_t *it, bson_error_t *berr) {
    bson_t *doc = bson_new();
    BSON_APPEND_UTF8(doc, "sink", w->rw.sink);
    if (it->se->has_id)
        BSON_APPEND_OID(doc, "event_id", &it->se->id);
    else
        BSON_APPEND_NULL(doc, "event_id");
    BSON_APPEND_UTF8(doc, "error", it->error);
    BSON_APPEND_DATE_TIME(doc, "at", (int64_t)time(NULL) * 1000);
    BSON_APPEND_DOCUMENT(doc, "event", it->se->ev ? outbox_event_document(it->se->ev) : it->se->raw);
    if (it->malformed)
        BSON_APPEND_BOOL(doc, "malformed", true);
    mongoc_client_t *client = mongoc_client_pool_pop(w->rw.pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, w->rw.db, w->rw.coll);
    bool ok = mongoc_collection_insert_one(c, doc, NULL, NULL, berr);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(w->rw.pool, client);
    bson_destroy(doc);
    return ok;
}

/* The lease's check and the fence touch before an insert; true when the
 * insert may be made. */
static bool fence_ok(outboxd_deadletter_writer_t *w, const item_t *it) {
    char err[600];
    int64_t seen = -1;
    if (!outboxd_retry_writer_may_write(&w->rw))
        return false; /* not valid, or fenced (told already): the runner abandons this writer */
    switch (outboxd_checkpoint_touch(w->rw.pool, w->rw.db, w->cp_coll, w->rw.sink, outboxd_retry_writer_term(&w->rw),
                                     &seen, err, sizeof err)) {
    case OUTBOXD_WRITE_OK:
        return true;
    case OUTBOXD_WRITE_FENCED:
        outboxd_retry_writer_fenced(&w->rw, seen, err);
        return false;
    case OUTBOXD_WRITE_ERROR:
        break;
    }
    if (!w->said)
        LOG_ERR("%scannot dead-letter %s: %s (retrying every %d ms; the checkpoint stays before it until it is "
                "written)", w->rw.prefix, it->se->id_hex, err, OUTBOXD_RETRY_WRITER_MS);
    w->said = true;
    return false;
}

/* Writes it, the queue's head; true when it is written (and done told). */
static bool write_head(outboxd_deadletter_writer_t *w, item_t *it) {
    bson_error_t berr;
    if (!fence_ok(w, it))
        return false;
    if (!insert(w, it, &berr)) {
        if (!w->said)
            LOG_ERR("%scannot dead-letter %s into %s.%s: %s (retrying every %d ms; the checkpoint stays before "
                    "it until it is written)", w->rw.prefix, it->se->id_hex, w->rw.db, w->rw.coll, berr.message,
                    OUTBOXD_RETRY_WRITER_MS);
        w->said = true;
        return false;
    }
    if (w->said)
        LOG_INFO("%sdead letter of %s written", w->rw.prefix, it->se->id_hex);
    w->said = false;
    pthread_mutex_lock(&w->rw.lock);
    w->head = it->next;
    if (!w->head)
        w->tailp = &w->head;
    pthread_mutex_unlock(&w->rw.lock);
    w->done(w->ctx, it->seq);
    item_free(it);
    return true;
}

static void *take(outboxd_retry_writer_t *rw) {
    return ((outboxd_deadletter_writer_t *)rw)->head;
}

static bool write_taken(outboxd_retry_writer_t *rw, void *work) {
    return write_head((outboxd_deadletter_writer_t *)rw, work);
}

static bool failed(outboxd_retry_writer_t *rw, void *work) {
    return true; /* in order: the head again, after a pause */
}

static const outboxd_retry_writer_ops_t ops = {take, write_taken, failed};

outboxd_deadletter_writer_t *outboxd_deadletter_writer_start(mongoc_client_pool_t *pool, const char *db,
                                                             const char *cp_coll, const char *dl_coll,
                                                             const char *sink, const char *log_prefix,
                                                             outboxd_deadletter_done_fn done, void *ctx,
                                                             const outboxd_fence_t *fence) {
    outboxd_deadletter_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->done = done;
    w->ctx = ctx;
    w->tailp = &w->head;
    if (!(w->cp_coll = strdup(cp_coll ? cp_coll : ""))) {
        free(w);
        return NULL;
    }
    if (!outboxd_retry_writer_start(&w->rw, &ops, pool, db, dl_coll, sink, log_prefix, fence)) {
        free(w->cp_coll);
        free(w);
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
    pthread_mutex_lock(&w->rw.lock);
    *w->tailp = it;
    w->tailp = &it->next;
    pthread_cond_signal(&w->rw.cond);
    pthread_mutex_unlock(&w->rw.lock);
}

size_t outboxd_deadletter_writer_stop(outboxd_deadletter_writer_t *w) {
    if (!w)
        return 0;
    outboxd_retry_writer_join(&w->rw);
    /* What is still queued: once more each, in order, on this thread; the
     * first failure ends it (the rest would fail alike). */
    w->said = false;
    while (w->head && write_head(w, w->head))
        ;
    size_t left = 0;
    while (w->head) {
        item_t *it = w->head;
        w->head = it->next;
        item_free(it);
        left++;
    }
    outboxd_retry_writer_destroy(&w->rw);
    free(w->cp_coll);
    free(w);
    return left;
}

void outboxd_deadletter_writer_abandon(outboxd_deadletter_writer_t *w) {
    if (!w)
        return;
    outboxd_retry_writer_join(&w->rw);
    while (w->head) {
        item_t *it = w->head;
        w->head = it->next;
        item_free(it);
    }
    outboxd_retry_writer_destroy(&w->rw);
    free(w->cp_coll);
    free(w);
}
