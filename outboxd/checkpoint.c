/*
 * checkpoint.c - see checkpoint.h. The message is scrubbed of every
 * registered secret before it is stored: `outboxctl status` shows it to
 * whoever may read the database, and the text often comes from a plugin's
 * error (which may quote a URL with its password).
 */
#include "checkpoint.h"

#include "secrets.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool outboxd_checkpoint_read(mongoc_client_pool_t *pool, const char *db, const char *coll,
                             const char *sink, outboxd_checkpoint_t *cp, bool *found,
                             char *errbuf, size_t errbuf_size) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    memset(cp, 0, sizeof *cp);
    *found = false;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        *found = true;
        if (bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it)) {
            cp->has_last = true;
            bson_oid_copy(bson_iter_oid(&it), &cp->last_id);
        }
        if (bson_iter_init_find(&it, doc, "events") && (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)))
            cp->events = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "state") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(cp->state, sizeof cp->state, "%s", bson_iter_utf8(&it, NULL));
        if (bson_iter_init_find(&it, doc, "message") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(cp->message, sizeof cp->message, "%s", bson_iter_utf8(&it, NULL));
    }
    bool ok = !mongoc_cursor_error(cur, &berr);
    if (!ok)
        snprintf(errbuf, errbuf_size, "cannot read checkpoint of sink %s from %s.%s: %s", sink, db, coll,
                 berr.message);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    bson_destroy(filter);
    return ok;
}

bool outboxd_checkpoint_write(mongoc_client_pool_t *pool, const char *db, const char *coll,
                              const char *sink, const outboxd_checkpoint_t *cp, char *errbuf,
                              size_t errbuf_size) {
    bson_error_t berr;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    bson_t update = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    if (cp->has_last)
        BSON_APPEND_OID(&set, "last_id", &cp->last_id);
    else
        BSON_APPEND_NULL(&set, "last_id");
    BSON_APPEND_INT64(&set, "events", cp->events);
    BSON_APPEND_UTF8(&set, "state", cp->state[0] ? cp->state : "running");
    char message[sizeof cp->message];
    snprintf(message, sizeof message, "%s", cp->message);
    outboxd_secrets_scrub(message, sizeof message);
    BSON_APPEND_UTF8(&set, "message", message);
    BSON_APPEND_DATE_TIME(&set, "updated", (int64_t)time(NULL) * 1000);
    if (cp->has_stats) {
        bson_t stats;
        BSON_APPEND_DOCUMENT_BEGIN(&set, "plugin_stats", &stats);
        for (size_t i = 0; i < cp->n_stats && i < OUTBOXD_STATS_MAX; i++)
            BSON_APPEND_DOUBLE(&stats, cp->stats[i].name, cp->stats[i].value);
        bson_append_document_end(&set, &stats);
    }
    if (cp->has_reader) {
        bson_t reader;
        BSON_APPEND_DOCUMENT_BEGIN(&set, "reader", &reader);
        BSON_APPEND_INT64(&reader, "shared_tails", cp->shared_tails);
        bson_append_document_end(&set, &reader);
        BSON_APPEND_INT64(&set, "catchup_tails", cp->catchup_tails);
        BSON_APPEND_INT64(&set, "catchups", cp->catchups);
    }
    bson_append_document_end(&update, &set);
    if (!cp->has_stats) {
        bson_t unset;
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "plugin_stats", "");
        bson_append_document_end(&update, &unset);
    }
    BSON_APPEND_BOOL(&opts, "upsert", true);
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    bool ok = mongoc_collection_update_one(c, filter, &update, &opts, NULL, &berr);
    if (!ok)
        snprintf(errbuf, errbuf_size, "cannot write checkpoint of sink %s to %s.%s: %s", sink, db, coll,
                 berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    bson_destroy(filter);
    bson_destroy(&update);
    bson_destroy(&opts);
    return ok;
}
