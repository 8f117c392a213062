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
    size_t n, left;
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
        *held = e->held;
        return true;
    }
    return false;
}

size_t outboxd_in_doubt_left(const outboxd_in_doubt_t *d) {
    return d->left;
}

void outboxd_in_doubt_free(outboxd_in_doubt_t *d) {
    if (!d)
        return;
    free(d->entries);
    free(d);
}

bool outboxd_log_newest_id(mongoc_client_pool_t *pool, const char *db, const char *coll, bool *found,
                           bool *has_oid, bson_oid_t *id, char *errbuf, size_t errbuf_size) {
    *found = *has_oid = false;
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    bson_t *filter = bson_new();
    bson_t *opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(-1), "}", "limit", BCON_INT64(1), "projection", "{",
                            "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    const bson_t *doc;
    bson_error_t berr;
    if (mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        *found = true;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            *has_oid = true;
            bson_oid_copy(bson_iter_oid(&it), id);
        }
    }
    bool ok = !mongoc_cursor_error(cursor, &berr);
    if (!ok)
        snprintf(errbuf, errbuf_size, "reading the newest document of %s.%s: %s", db, coll, berr.message);
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    return ok;
}
