/*
 * promoter.c - the promoter that moves committed events in the order their
 * transactions committed. outbox_promote() reads N.pending by _id, and
 * ObjectIds come from producers' clocks: two transactions on one key that
 * commit within one poll could be published in reverse. Wherever
 * transactions exist a change stream exists (both need a replica set or a
 * sharded cluster), and N.pending's change stream returns the inserts of
 * each transaction in commit order: the promoter follows it. Elsewhere
 * (no transactions, so every pending document is a foreign producer's
 * direct write) it polls in _id order, as outbox_promote() does.
 *
 * Nothing is lost to the stream: it is opened before the backlog is read
 * (what committed before is in the backlog, what commits after is in the
 * stream, some in both), any error closes it (the next run opens it again
 * and reads the backlog again), and a document is promoted from the
 * stream only while it is still in N.pending (one that is gone was moved
 * already, by the backlog's read or by another promoter). As a last net,
 * pending documents older than OUTBOX_PROMOTER_NET_MS are polled.
 */
#include "promote.h"

#define OUTBOX_PROMOTER_NET_MS 30000
/* The server's wait per getMore of the stream. */
#define OUTBOX_PROMOTER_AWAIT_MS 50

struct outbox_promoter {
    outbox_t *ob;
    mongoc_client_t *client; /* for the stream's life: a stream belongs to its client */
    mongoc_change_stream_t *stream;
    bool mode_known;
    bool follows; /* the change stream, not the poll */
    int64_t net_due_ms;
};

static int64_t now_ms(void) {
    return bson_get_monotonic_time() / 1000;
}

static int64_t wall_ms(void) {
    struct timeval tv;
    bson_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

outbox_promoter_t *outbox_promoter_new(outbox_t *outbox) {
    if (!outbox)
        return NULL;
    outbox_promoter_t *p = bson_malloc0(sizeof *p);
    p->ob = outbox;
    return p;
}

static void close_stream(outbox_promoter_t *p) {
    mongoc_change_stream_destroy(p->stream);
    p->stream = NULL;
    if (p->client)
        outbox__client_push(p->ob, p->client);
    p->client = NULL;
}

void outbox_promoter_destroy(outbox_promoter_t *p) {
    if (!p)
        return;
    close_stream(p);
    bson_free(p);
}

bool outbox_promoter_follows_commits(const outbox_promoter_t *p) {
    return p && p->mode_known && p->follows;
}

static outbox_code_t open_stream(outbox_promoter_t *p, int64_t wait_ms, outbox_error_t *error) {
    bson_error_t berr;
    const bson_t *err_doc;
    p->client = outbox__client_pop(p->ob);
    mongoc_collection_t *pending = mongoc_client_get_collection(p->client, outbox_database(p->ob),
                                                                p->ob->pending_name);
    bson_t *pipeline = BCON_NEW("pipeline", "[", "{", "$match", "{", "operationType", BCON_UTF8("insert"), "}", "}",
                                "]");
    /* Short server waits: a round gathers what came within its own wait
     * (follow's deadline) and promotes it, instead of holding events in
     * hand until one getMore comes back empty. */
    int64_t await_ms = wait_ms < OUTBOX_PROMOTER_AWAIT_MS ? (wait_ms > 0 ? wait_ms : 1) : OUTBOX_PROMOTER_AWAIT_MS;
    bson_t *opts = BCON_NEW("maxAwaitTimeMS", BCON_INT64(await_ms), "batchSize", BCON_INT32(OUTBOX_PROMOTE_BATCH));
    p->stream = mongoc_collection_watch(pending, pipeline, opts);
    outbox_code_t rc = OUTBOX_OK;
    if (mongoc_change_stream_error_document(p->stream, &berr, &err_doc)) {
        rc = outbox__fail_bson(error, &berr, "cannot follow the change stream of %s.%s", outbox_database(p->ob),
                               p->ob->pending_name);
        close_stream(p);
    }
    bson_destroy(opts);
    bson_destroy(pipeline);
    mongoc_collection_destroy(pending);
    return rc;
}

/* Whether a ({_id} only) and b have the same _id, of whatever type. */
static bool same_id(const bson_t *a, const bson_t *b) {
    bson_iter_t ia, ib;
    if (!bson_iter_init_find(&ia, a, "_id") || !bson_iter_init_find(&ib, b, "_id"))
        return false;
    bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
    bson_append_iter(&x, "_id", 3, &ia);
    bson_append_iter(&y, "_id", 3, &ib);
    bool same = bson_equal(&x, &y);
    bson_destroy(&x);
    bson_destroy(&y);
    return same;
}

/* Keeps of docs those still in N.pending, in their order; frees the rest. */
static outbox_code_t still_pending(outbox_promoter_t *p, bson_t **docs, size_t *n, outbox_error_t *error) {
    bson_t filter = BSON_INITIALIZER, in, ids, opts = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = 0, k = 0; i < *n; i++) {
        bson_iter_t it;
        char idx[16];
        const char *key;
        if (!bson_iter_init_find(&it, docs[i], "_id"))
            continue; /* never in the log by the stream: the backlog's read settles it */
        bson_uint32_to_string((uint32_t)k++, &key, idx, sizeof idx);
        bson_append_iter(&ids, key, -1, &it);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&filter, &in);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &in);
    BSON_APPEND_INT32(&in, "_id", 1);
    bson_append_document_end(&opts, &in);
    outbox__majority_opts(&opts, true);
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_collection_t *pending = mongoc_client_get_collection(p->client, outbox_database(p->ob),
                                                                p->ob->pending_name);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(pending, &filter, &opts, primary);
    bool *keep = bson_malloc0(*n * sizeof *keep);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        /* The projection leaves {_id} alone: compared whole, any type. */
        for (size_t i = 0; i < *n; i++)
            if (!keep[i] && same_id(doc, docs[i]))
                keep[i] = true;
    }
    bson_error_t berr;
    outbox_code_t rc = OUTBOX_OK;
    if (mongoc_cursor_error(cur, &berr)) {
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", outbox_database(p->ob), p->ob->pending_name);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < *n; i++) {
            if (keep[i])
                docs[k++] = docs[i];
            else
                bson_destroy(docs[i]);
        }
        *n = k;
    }
    bson_free(keep);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(pending);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return rc;
}

/* Moves what the stream brings (one batch at most), in its order: as soon
 * as a getMore comes back empty with events in hand, or wait_ms is over. */
static outbox_code_t follow(outbox_promoter_t *p, int64_t wait_ms, size_t *moved, size_t *quarantined,
                            outbox_error_t *report, outbox_error_t *error) {
    bson_t **docs = bson_malloc0(OUTBOX_PROMOTE_BATCH * sizeof *docs);
    size_t n = 0;
    const bson_t *ev;
    int64_t end = now_ms() + wait_ms;
    while (n < OUTBOX_PROMOTE_BATCH) {
        if (mongoc_change_stream_next(p->stream, &ev)) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, ev, "fullDocument") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                uint32_t len;
                const uint8_t *data;
                bson_iter_document(&it, &len, &data);
                docs[n++] = bson_new_from_data(data, len);
            }
            continue;
        }
        if (mongoc_change_stream_error_document(p->stream, NULL, NULL) || n || now_ms() >= end)
            break;
    }
    bson_error_t berr;
    const bson_t *err_doc;
    outbox_code_t rc = OUTBOX_OK;
    if (mongoc_change_stream_error_document(p->stream, &berr, &err_doc)) {
        /* The documents stay pending: the stream opens again, and the
         * backlog's read takes them. */
        rc = outbox__fail_bson(error, &berr, "the change stream of %s.%s failed", outbox_database(p->ob),
                               p->ob->pending_name);
    }
    if (rc == OUTBOX_OK && n)
        rc = still_pending(p, docs, &n, error);
    if (rc == OUTBOX_OK && n)
        rc = outbox__promote_docs(p->ob, p->client, docs, n, false, moved, quarantined, report, error);
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    bson_free(docs);
    return rc;
}

outbox_code_t outbox_promoter_run(outbox_promoter_t *p, int64_t wait_ms, size_t *moved, size_t *quarantined,
                                  outbox_error_t *error) {
    size_t m = 0, q = 0, m2 = 0, q2 = 0;
    outbox_code_t rc = OUTBOX_OK;
    outbox_error_t backlog, streamed, last_quarantined;
    outbox__clear_error(error);
    outbox__clear_error(&backlog);
    outbox__clear_error(&streamed);
    outbox__clear_error(&last_quarantined);
    if (moved)
        *moved = 0;
    if (quarantined)
        *quarantined = 0;
    if (!p)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_promoter_run: promoter is NULL");
    if (!p->mode_known) {
        unsigned caps;
        if ((rc = outbox_server_caps(p->ob, &caps, error)) != OUTBOX_OK)
            return rc;
        p->follows = (caps & OUTBOX_CAP_TRANSACTIONS) != 0;
        p->mode_known = true;
    }
    if (!p->follows)
        return outbox__promote_all(p->ob, NULL, moved, quarantined, error);

    if (!p->stream) {
        /* The stream first, then the backlog: nothing committed between
         * the two is missed. A stream that cannot open (no changeStream
         * privilege, a server without them) must not stop promotion: the
         * round polls, and says why it could not follow. */
        outbox_error_t why;
        if (open_stream(p, wait_ms, &why) != OUTBOX_OK) {
            rc = outbox__promote_all(p->ob, NULL, &m, &q, &backlog);
            if (moved)
                *moved = m;
            if (quarantined)
                *quarantined = q;
            if (error)
                *error = rc != OUTBOX_OK || q ? backlog : why;
            /* Quarantined documents are the news of this round; otherwise
             * the caller learns it polled instead of following. */
            return rc != OUTBOX_OK ? rc : q ? OUTBOX_OK : OUTBOX_ERR_UNSUPPORTED;
        }
        rc = outbox__promote_all(p->ob, NULL, &m, &q, &backlog);
        p->net_due_ms = now_ms() + OUTBOX_PROMOTER_NET_MS;
    } else if (now_ms() >= p->net_due_ms) {
        bson_t *older = BCON_NEW("created", "{", "$lt", BCON_DATE_TIME(wall_ms() - OUTBOX_PROMOTER_NET_MS), "}");
        rc = outbox__promote_all(p->ob, older, &m, &q, &backlog);
        bson_destroy(older);
        p->net_due_ms = now_ms() + OUTBOX_PROMOTER_NET_MS;
    }
    if (rc != OUTBOX_OK) {
        close_stream(p);
        if (error)
            *error = backlog;
        return rc;
    }
    if (q)
        last_quarantined = backlog;
    rc = follow(p, wait_ms, &m2, &q2, &last_quarantined, &streamed);
    if (rc != OUTBOX_OK) {
        close_stream(p);
        if (error)
            *error = streamed;
    } else if ((q || q2) && error) {
        *error = last_quarantined;
    }
    if (moved)
        *moved = m + m2;
    if (quarantined)
        *quarantined = q + q2;
    return rc;
}
