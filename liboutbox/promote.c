/*
 * promote.c - moves committed transactional events from N.pending into the
 * capped log N. Two steps, each idempotent: insert into N keeping the _id
 * (a duplicate key error means an earlier run got that far), then delete
 * from N.pending. A crash between them leaves events in both places; the
 * next run inserts nothing new for them and finishes the delete.
 */
#include "promote.h"

#define PROMOTE_BATCH 500

/* True when every write error in the reply is a duplicate key. */
static bool only_duplicates(const bson_t *reply) {
    bson_iter_t it, we;
    bool any = false;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it))
        return false;
    bson_iter_recurse(&it, &we);
    while (bson_iter_next(&we)) {
        bson_iter_t e;
        if (!BSON_ITER_HOLDS_DOCUMENT(&we) || !bson_iter_recurse(&we, &e) || !bson_iter_find(&e, "code") ||
            bson_iter_as_int64(&e) != OUTBOX_MONGO_DUPLICATE_KEY)
            return false;
        any = true;
    }
    /* A write concern error is not a duplicate: the insert may not last. */
    if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_iter_recurse(&it, &we);
        if (bson_iter_next(&we))
            return false;
    }
    return any;
}

outbox_code_t outbox__promote_batch(outbox_t *ob, size_t limit, bool skip_delete, size_t *moved,
                                    outbox_error_t *error) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t **docs = NULL;
    size_t n = 0;
    outbox_code_t rc = OUTBOX_OK;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, ins_opts = BSON_INITIALIZER;
    bson_t del = BSON_INITIALIZER, in, ids, reply;

    *moved = 0;
    mongoc_client_t *client = outbox__client_pop(ob);
    mongoc_collection_t *pending = mongoc_client_get_collection(client, ob->conf->database, ob->pending_name);
    mongoc_collection_t *log = mongoc_client_get_collection(client, ob->conf->database, ob->conf->outbox);

    /* Oldest first, so the log keeps roughly the order of the commits. */
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(pending, &filter, &opts, NULL);
    docs = bson_malloc0(limit * sizeof *docs);
    while (n < limit && mongoc_cursor_next(cur, &doc))
        docs[n++] = bson_copy(doc);
    if (mongoc_cursor_error(cur, &berr)) {
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", ob->conf->database, ob->pending_name);
        goto done;
    }
    if (n == 0)
        goto done;

    BSON_APPEND_BOOL(&ins_opts, "ordered", false);
    if (!mongoc_collection_insert_many(log, (const bson_t **)docs, n, &ins_opts, &reply, &berr) &&
        !only_duplicates(&reply)) {
        bson_destroy(&reply);
        rc = outbox__fail_bson(error, &berr, "cannot move pending events into %s.%s",
                               ob->conf->database, ob->conf->outbox);
        goto done;
    }
    bson_destroy(&reply);
    if (skip_delete) {
        *moved = n;
        goto done;
    }

    BSON_APPEND_DOCUMENT_BEGIN(&del, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        char idx[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
        if (bson_iter_init_find(&it, docs[i], "_id"))
            bson_append_iter(&ids, key, -1, &it);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&del, &in);
    if (!mongoc_collection_delete_many(pending, &del, NULL, NULL, &berr)) {
        rc = outbox__fail_bson(error, &berr, "moved events into %s.%s but cannot delete them from "
                               "%s (the next run will)", ob->conf->database, ob->conf->outbox,
                               ob->pending_name);
        goto done;
    }
    *moved = n;
done:
    mongoc_cursor_destroy(cur);
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    bson_free(docs);
    bson_destroy(&filter);
    bson_destroy(&opts);
    bson_destroy(&ins_opts);
    bson_destroy(&del);
    mongoc_collection_destroy(pending);
    mongoc_collection_destroy(log);
    outbox__client_push(ob, client);
    return rc;
}

outbox_code_t outbox_promote(outbox_t *ob, size_t *moved, outbox_error_t *error) {
    size_t total = 0, n;
    outbox_code_t rc;
    outbox__clear_error(error);
    if (!ob)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_promote: outbox is NULL");
    do {
        rc = outbox__promote_batch(ob, PROMOTE_BATCH, false, &n, error);
        total += n;
    } while (rc == OUTBOX_OK && n == PROMOTE_BATCH);
    if (moved)
        *moved = total;
    return rc;
}
