/*
 * checkpoint.c - see checkpoint.h. The message is scrubbed of every
 * registered secret before it is stored: `outboxctl status` shows it to
 * whoever may read the database, and the text often comes from a plugin's
 * error (which may quote a URL with its password).
 *
 * The fence (checkpoint.h, docs/leases.md section 3) is a filter on the
 * same update, so a fenced write costs no extra round trip; only a write
 * that matched nothing reads the document again, to say whose term it
 * holds now.
 */
#include "checkpoint.h"

#include "secrets.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The position and state of a checkpoint document (the rest is not read
 * back). */
static void parse(const bson_t *doc, outboxd_checkpoint_t *cp) {
    bson_iter_t it;
    cp->in_doubt = -1;
    if (bson_iter_init_find(&it, doc, "in_doubt") && BSON_ITER_HOLDS_BOOL(&it))
        cp->in_doubt = bson_iter_bool(&it) ? 1 : 0;
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
    cp->in_doubt = -1;
    *found = false;
    if (mongoc_cursor_next(cur, &doc)) {
        *found = true;
        parse(doc, cp);
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

/* After a fenced write: the term and owner the document holds now (-1 and
 * "" when it has no term or is gone; *exists says which), for the caller
 * and the log. False with the server's reason in berr when it could not be
 * read. */
static bool read_fence(mongoc_collection_t *c, const char *sink, int64_t *term, char *owner, size_t owner_size,
                       bool *exists, bson_error_t *berr) {
    const bson_t *doc;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    bson_t *opts = BCON_NEW("projection", "{", "term", BCON_INT32(1), "owner", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    *term = -1;
    owner[0] = '\0';
    *exists = false;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        *exists = true;
        if (bson_iter_init_find(&it, doc, "term") && BSON_ITER_HOLDS_NUMBER(&it))
            *term = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "owner") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(owner, owner_size, "%s", bson_iter_utf8(&it, NULL));
    }
    bool ok = !mongoc_cursor_error(cur, berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    return ok;
}

/* The answer to a write of term that matched nothing: FENCED with the
 * document's term and owner in errbuf. */
static outboxd_write_rc_t fenced(mongoc_collection_t *c, const char *what, const char *db, const char *coll,
                                 const char *sink, int64_t term, int64_t *seen_term, char *errbuf,
                                 size_t errbuf_size) {
    bson_error_t berr;
    int64_t seen;
    char owner[128];
    bool exists;
    if (!read_fence(c, sink, &seen, owner, sizeof owner, &exists, &berr))
        snprintf(errbuf, errbuf_size, "%s of sink %s in %s.%s fenced: term %lld is no longer ours (the document "
                 "could not be read back: %s)", what, sink, db, coll, (long long)term, berr.message);
    else if (seen < 0)
        snprintf(errbuf, errbuf_size, "%s of sink %s in %s.%s fenced: term %lld is no longer ours (the document "
                 "%s)", what, sink, db, coll, (long long)term, exists ? "has no term" : "is gone");
    else
        snprintf(errbuf, errbuf_size, "%s of sink %s in %s.%s fenced: term %lld is no longer ours (the checkpoint "
                 "has term %lld, owner %s)", what, sink, db, coll, (long long)term, (long long)seen,
                 owner[0] ? owner : "unknown");
    if (seen_term)
        *seen_term = seen;
    return OUTBOXD_WRITE_FENCED;
}

/* How many documents an update's reply says it matched. */
static int64_t matched(const bson_t *reply) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, reply, "matchedCount") && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return 0;
}

/* Every write of a checkpoint document by this process goes through this
 * lock. FerretDB 1.x applies an update by reading the document and writing
 * it back whole, so two updates of one document at once lose one of them:
 * the runner's count of a malformed document ($inc) and the checkpoint
 * writer's write met like that, and the count came out 3 for 4 (CI's
 * valgrind run). MongoDB needs no lock; the writes are a few per second. */
static pthread_mutex_t doc_mu = PTHREAD_MUTEX_INITIALIZER;

void outboxd_checkpoint_doc_lock(void) { pthread_mutex_lock(&doc_mu); }

void outboxd_checkpoint_doc_unlock(void) { pthread_mutex_unlock(&doc_mu); }

/* One update of the checkpoint document, fenced at term when term >= 0. */
static outboxd_write_rc_t update(mongoc_client_pool_t *pool, const char *what, const char *db, const char *coll,
                                 const char *sink, int64_t term, const bson_t *upd, int64_t *seen_term,
                                 char *errbuf, size_t errbuf_size) {
    bson_error_t berr;
    bson_t reply;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    bson_t opts = BSON_INITIALIZER;
    if (term >= 0)
        BSON_APPEND_INT64(filter, "term", term);
    else
        BSON_APPEND_BOOL(&opts, "upsert", true);
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    outboxd_write_rc_t rc = OUTBOXD_WRITE_OK;
    outboxd_checkpoint_doc_lock();
    bool ok = mongoc_collection_update_one(c, filter, upd, &opts, &reply, &berr);
    outboxd_checkpoint_doc_unlock();
    if (!ok) {
        snprintf(errbuf, errbuf_size, "cannot write %s of sink %s to %s.%s: %s", what, sink, db, coll,
                 berr.message);
        rc = OUTBOXD_WRITE_ERROR;
    } else if (term >= 0 && matched(&reply) == 0) {
        rc = fenced(c, what, db, coll, sink, term, seen_term, errbuf, errbuf_size);
    }
    bson_destroy(&reply);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    bson_destroy(filter);
    bson_destroy(&opts);
    return rc;
}

outboxd_write_rc_t outboxd_checkpoint_write(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, const outboxd_checkpoint_t *cp,
                                            int64_t *seen_term, char *errbuf, size_t errbuf_size) {
    bson_t upd = BSON_INITIALIZER, set;
    BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
    if (cp->has_last)
        BSON_APPEND_OID(&set, "last_id", &cp->last_id);
    else
        BSON_APPEND_NULL(&set, "last_id");
    BSON_APPEND_INT64(&set, "events", cp->events);
    BSON_APPEND_UTF8(&set, "state", cp->state[0] ? cp->state : "running");
    if (cp->in_doubt >= 0)
        BSON_APPEND_BOOL(&set, "in_doubt", cp->in_doubt != 0);
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
    bson_append_document_end(&upd, &set);
    if (!cp->has_stats) {
        bson_t unset;
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "plugin_stats", "");
        bson_append_document_end(&upd, &unset);
    }
    outboxd_write_rc_t rc = update(pool, "checkpoint", db, coll, sink, term, &upd, seen_term, errbuf, errbuf_size);
    bson_destroy(&upd);
    return rc;
}

outboxd_write_rc_t outboxd_checkpoint_touch(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, int64_t *seen_term,
                                            char *errbuf, size_t errbuf_size) {
    if (term < 0)
        return OUTBOXD_WRITE_OK;
    bson_t *upd = BCON_NEW("$currentDate", "{", "fenced_at", BCON_BOOL(true), "}");
    outboxd_write_rc_t rc = update(pool, "fence touch", db, coll, sink, term, upd, seen_term, errbuf, errbuf_size);
    bson_destroy(upd);
    return rc;
}

static bool is_duplicate_key(const bson_error_t *berr) {
    return berr->code == 11000 || berr->code == 11001 || strstr(berr->message, "E11000") != NULL;
}

/* One findAndModify of the claim; *dup when it met a document of a higher
 * term (E11000). */
static outboxd_write_rc_t claim_once(mongoc_collection_t *c, const char *db, const char *coll, const char *sink,
                                     int64_t term, const char *owner, outboxd_checkpoint_t *cp, bool *found,
                                     bool *dup, char *errbuf, size_t errbuf_size) {
    bson_error_t berr;
    bson_t reply;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink), "$or", "[",
                              "{", "term", "{", "$lte", BCON_INT64(term), "}", "}",
                              "{", "term", "{", "$exists", BCON_BOOL(false), "}", "}", "]");
    bson_t *upd = BCON_NEW("$set", "{", "term", BCON_INT64(term), "owner", BCON_UTF8(owner), "}",
                           "$currentDate", "{", "claimed", BCON_BOOL(true), "}");
    /* A claim acknowledged by a primary that then rolls it back would let
     * two runners believe they hold the document (docs/leases.md 3). */
    bson_t *extra = BCON_NEW("writeConcern", "{", "w", BCON_UTF8("majority"), "}");
    mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(fam, upd);
    mongoc_find_and_modify_opts_set_flags(fam, MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    mongoc_find_and_modify_opts_append(fam, extra);
    outboxd_write_rc_t rc = OUTBOXD_WRITE_OK;
    *dup = false;
    outboxd_checkpoint_doc_lock();
    bool ok = mongoc_collection_find_and_modify_with_opts(c, filter, fam, &reply, &berr);
    outboxd_checkpoint_doc_unlock();
    if (!ok) {
        if (is_duplicate_key(&berr)) {
            *dup = true;
            rc = OUTBOXD_WRITE_FENCED;
        } else {
            snprintf(errbuf, errbuf_size, "cannot claim checkpoint of sink %s in %s.%s at term %lld: %s", sink, db,
                     coll, (long long)term, berr.message);
            rc = OUTBOXD_WRITE_ERROR;
        }
    } else {
        bson_iter_t it, sub;
        if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_t doc;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&doc, data, len))
                parse(&doc, cp);
        }
        if (bson_iter_init_find(&it, &reply, "lastErrorObject") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "updatedExisting") && BSON_ITER_HOLDS_BOOL(&sub))
            *found = bson_iter_bool(&sub);
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(fam);
    bson_destroy(extra);
    bson_destroy(upd);
    bson_destroy(filter);
    return rc;
}

outboxd_write_rc_t outboxd_checkpoint_claim(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, const char *owner,
                                            outboxd_checkpoint_t *cp, bool *found, int64_t *seen_term,
                                            char *errbuf, size_t errbuf_size) {
    memset(cp, 0, sizeof *cp);
    cp->in_doubt = -1;
    *found = false;
    if (seen_term)
        *seen_term = -1;
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    outboxd_write_rc_t rc = OUTBOXD_WRITE_ERROR;
    /* E11000 has two causes: a document of a higher term (the upsert's
     * insert met its _id: fenced), or, on a server without one, another
     * claimant's upsert that inserted the document between our match and
     * our insert (MongoDB before 4.2 does not retry that): then the
     * document's term is at most ours and one more attempt settles it. */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool dup;
        rc = claim_once(c, db, coll, sink, term, owner, cp, found, &dup, errbuf, errbuf_size);
        if (!dup)
            break;
        bson_error_t berr;
        int64_t seen;
        char seen_owner[128];
        bool exists;
        if (!read_fence(c, sink, &seen, seen_owner, sizeof seen_owner, &exists, &berr)) {
            snprintf(errbuf, errbuf_size, "cannot claim checkpoint of sink %s in %s.%s at term %lld: the document "
                     "exists with another term, which could not be read: %s", sink, db, coll, (long long)term,
                     berr.message);
            rc = OUTBOXD_WRITE_ERROR;
            break;
        }
        if (seen > term) {
            if (seen_term)
                *seen_term = seen;
            snprintf(errbuf, errbuf_size, "claim of checkpoint of sink %s in %s.%s fenced: term %lld is below the "
                     "checkpoint's term %lld (owner %s)", sink, db, coll, (long long)term, (long long)seen,
                     seen_owner[0] ? seen_owner : "unknown");
            rc = OUTBOXD_WRITE_FENCED;
            break;
        }
        /* A concurrent upsert, not a higher term: an error to retry if it
         * happens twice in a row. */
        snprintf(errbuf, errbuf_size, "cannot claim checkpoint of sink %s in %s.%s at term %lld: another claim "
                 "of term %lld inserted it at the same time", sink, db, coll, (long long)term, (long long)seen);
        rc = OUTBOXD_WRITE_ERROR;
    }
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(pool, client);
    return rc;
}
