/*
 * in_doubt.c - see in_doubt.h. A sorted array and a binary search: the
 * list is built once and holds a few thousand ids.
 */
#include "in_doubt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bson_oid_t id;
    bool held, taken;
} entry_t;

struct outboxd_in_doubt {
    entry_t *entries;
    size_t n, left, held_left;
};

static int by_id(const void *a, const void *b) {
    return memcmp(((const entry_t *)a)->id.bytes, ((const entry_t *)b)->id.bytes, sizeof(bson_oid_t));
}

outboxd_in_doubt_t *outboxd_in_doubt_new(const bson_oid_t *ids, const unsigned char *held, size_t n) {
    outboxd_in_doubt_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->entries = calloc(n ? n : 1, sizeof *d->entries);
    if (!d->entries) {
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        bson_oid_copy(&ids[i], &d->entries[i].id);
        d->entries[i].held = held[i] != 0;
        d->held_left += d->entries[i].held;
    }
    qsort(d->entries, n, sizeof *d->entries, by_id);
    d->n = d->left = n;
    return d;
}

bool outboxd_in_doubt_take(outboxd_in_doubt_t *d, const bson_oid_t *id, bool *held) {
    entry_t key;
    bson_oid_copy(id, &key.id);
    entry_t *e = d->n ? bsearch(&key, d->entries, d->n, sizeof *d->entries, by_id) : NULL;
    if (!e)
        return false;
    /* Equal ids sit side by side: the first not yet taken. */
    while (e > d->entries && !by_id(e - 1, &key))
        e--;
    for (; e < d->entries + d->n && !by_id(e, &key); e++) {
        if (e->taken)
            continue;
        e->taken = true;
        d->left--;
        d->held_left -= e->held;
        *held = e->held;
        return true;
    }
    return false;
}

size_t outboxd_in_doubt_left(const outboxd_in_doubt_t *d) {
    return d->left;
}

size_t outboxd_in_doubt_held_left(const outboxd_in_doubt_t *d) {
    return d->held_left;
}

void outboxd_in_doubt_free(outboxd_in_doubt_t *d) {
    if (!d)
        return;
    free(d->entries);
    free(d);
}

typedef struct {
    bson_oid_t id;
    bson_t *doc; /* the fetched copy; NULL until (or unless) fetched */
} fetched_t;

static int fetched_by_id(const void *a, const void *b) {
    return memcmp(((const fetched_t *)a)->id.bytes, ((const fetched_t *)b)->id.bytes, sizeof(bson_oid_t));
}

/* Keeps a copy of doc where byid (sorted) lists its ObjectId and has none
 * yet. */
static void keep(fetched_t *byid, size_t n, const bson_t *doc) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
        return;
    fetched_t key;
    bson_oid_copy(bson_iter_oid(&it), &key.id);
    fetched_t *f = bsearch(&key, byid, n, sizeof *byid, fetched_by_id);
    if (f && !f->doc)
        f->doc = bson_copy(doc);
}

/* Fetches the documents of the ObjectIds byid[0..n) (sorted) that are
 * still NULL, by _id in one query: for those the natural-order read missed
 * (the log was trimmed between the walk and that read). */
static bool fetch_by_id(mongoc_collection_t *c, fetched_t *byid, size_t n, bson_error_t *berr) {
    bson_t q = BSON_INITIALIZER, in, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&q, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (byid[i].doc)
            continue;
        char key[16];
        const char *ks;
        bson_uint32_to_string(k++, &ks, key, sizeof key);
        BSON_APPEND_OID(&arr, ks, &byid[i].id);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&q, &in);
    bool ok = true;
    if (k > 0) {
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c, &q, NULL, NULL);
        const bson_t *doc;
        while (mongoc_cursor_next(cursor, &doc))
            keep(byid, n, doc);
        ok = !mongoc_cursor_error(cursor, berr);
        mongoc_cursor_destroy(cursor);
    }
    bson_destroy(&q);
    return ok;
}

bool outboxd_in_doubt_read(mongoc_client_pool_t *pool, const char *db, const char *coll, const bson_oid_t *after,
                           size_t cap, void (*fn)(void *ctx, const bson_t *doc), void *ctx, size_t *docs, bool *gap,
                           char *errbuf, size_t errbuf_size) {
    *docs = 0;
    *gap = false;
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    bson_oid_t *order = calloc(cap ? cap : 1, sizeof *order); /* the ObjectIds, in log order */
    fetched_t *byid = calloc(cap ? cap : 1, sizeof *byid);
    if (!order || !byid)
        abort();
    size_t n = 0;
    int64_t skip = 0; /* documents before the first in doubt */
    bson_error_t berr;
    bool ok = true;

    /* The walk: _ids in natural order, to after, then up to cap more. */
    bson_t *filter = bson_new();
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "sort", "{", "$natural", BCON_INT32(1), "}",
                            "batchSize", BCON_INT32(100000));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    bool past = after == NULL;
    const bson_t *doc;
    while (*docs < cap && mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        bool has_oid = bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it);
        if (!past) {
            past = has_oid && bson_oid_equal(bson_iter_oid(&it), after);
            skip++;
            continue;
        }
        (*docs)++;
        if (has_oid)
            bson_oid_copy(bson_iter_oid(&it), &order[n++]);
    }
    if (mongoc_cursor_error(cursor, &berr)) {
        snprintf(errbuf, errbuf_size, "walking %s.%s: %s", db, coll, berr.message);
        ok = false;
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    *gap = ok && !past;

    /* The documents: the same natural order from where the walk found
     * them (a read of whole documents, without the ones before), then by
     * _id those that moved meanwhile (the log trimmed its oldest). On
     * FerretDB, for 4,048 documents: 0.3 s, where one query by _id ($in)
     * took 0.54 s. */
    if (ok && n > 0) {
        for (size_t i = 0; i < n; i++)
            bson_oid_copy(&order[i], &byid[i].id);
        qsort(byid, n, sizeof *byid, fetched_by_id);
        opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(1), "}", "skip", BCON_INT64(skip), "limit",
                        BCON_INT64((int64_t)*docs), "batchSize", BCON_INT32(100000));
        cursor = mongoc_collection_find_with_opts(c, filter, opts, NULL);
        while (mongoc_cursor_next(cursor, &doc))
            keep(byid, n, doc);
        ok = !mongoc_cursor_error(cursor, &berr) && fetch_by_id(c, byid, n, &berr);
        if (!ok)
            snprintf(errbuf, errbuf_size, "reading the events in doubt from %s.%s: %s", db, coll, berr.message);
        mongoc_cursor_destroy(cursor);
        bson_destroy(opts);
        for (size_t i = 0; ok && i < n; i++) {
            fetched_t key;
            bson_oid_copy(&order[i], &key.id);
            fetched_t *f = bsearch(&key, byid, n, sizeof *byid, fetched_by_id);
            if (f && f->doc)
                fn(ctx, f->doc);
        }
    }
    bson_destroy(filter);
    for (size_t i = 0; i < n; i++)
        bson_destroy(byid[i].doc);
    free(byid);
    free(order);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    return ok;
}
