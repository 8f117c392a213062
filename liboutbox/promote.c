/*
 * promote.c - moves committed transactional events from N.pending into the
 * capped log N. Two steps, each idempotent: insert into N keeping the _id
 * (a duplicate key error means an earlier run got that far), then delete
 * from N.pending. A crash between them leaves events in both places; the
 * next run inserts nothing new for them and finishes the delete.
 *
 * Each document has its own outcome, so that one bad document never stops
 * the others: inserted, already there (duplicate key), or quarantined (not
 * an envelope, or refused by N with a write error of its own: a validator
 * installed since, a size). Only an error of the whole command (the
 * network, the server, a write concern) stops the run, and deletes only
 * what was settled before it.
 */
#include "promote.h"

#include <stdio.h>


typedef enum { DOC_UNSETTLED = 0, DOC_IN_LOG, DOC_QUARANTINED } doc_outcome_t;

typedef struct {
    outbox_t *ob;
    mongoc_collection_t *pending, *log, *quarantine;
    bson_t **docs;
    doc_outcome_t *outcome;
    size_t n;
    size_t quarantined;
    outbox_error_t *report; /* names the last quarantined document */
} run_t;

#define OUTBOX_PROMOTE_WTIMEOUT_MS 10000

/* Majority both ways: read only what a failover cannot roll back (an event
 * of a transaction that may still be undone must never be published), on
 * the primary (a lagging secondary would show events already moved, and
 * they would be inserted again once the log wrapped past them); write so
 * that an insert and its delete last. */
void outbox__majority_opts(bson_t *opts, bool read) {
    mongoc_write_concern_t *wc = NULL;
    mongoc_read_concern_t *rc = NULL;
    if (read) {
        rc = mongoc_read_concern_new();
        mongoc_read_concern_set_level(rc, MONGOC_READ_CONCERN_LEVEL_MAJORITY);
        mongoc_read_concern_append(rc, opts);
        mongoc_read_concern_destroy(rc);
    } else {
        wc = mongoc_write_concern_new();
        mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
        /* Without a majority (a secondary down beside an arbiter) a write
         * fails after 10 s, a whole-command error the next round retries,
         * instead of blocking the promoter for the socket's timeout. */
        mongoc_write_concern_set_wtimeout_int64(wc, OUTBOX_PROMOTE_WTIMEOUT_MS);
        mongoc_write_concern_append(wc, opts);
        mongoc_write_concern_destroy(wc);
    }
}

/* The first write error of an insert reply: its index and code, and its
 * message into msg. False when the reply has none (the whole command
 * failed). */
static bool first_write_error(const bson_t *reply, long *index, int32_t *code, char *msg, size_t size) {
    bson_iter_t it, we, e;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &we) || !bson_iter_next(&we) || !BSON_ITER_HOLDS_DOCUMENT(&we))
        return false;
    *index = -1;
    *code = 0;
    msg[0] = '\0';
    bson_iter_recurse(&we, &e);
    while (bson_iter_next(&e)) {
        const char *k = bson_iter_key(&e);
        if (strcmp(k, "index") == 0)
            *index = (long)bson_iter_as_int64(&e);
        else if (strcmp(k, "code") == 0)
            *code = (int32_t)bson_iter_as_int64(&e);
        else if (strcmp(k, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&e))
            snprintf(msg, size, "%s", bson_iter_utf8(&e, NULL));
    }
    return *index >= 0;
}

static bool has_write_concern_error(const bson_t *reply) {
    bson_iter_t it, we;
    return bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
           bson_iter_recurse(&it, &we) && bson_iter_next(&we);
}

/* The document's _id as text, for messages. */
static void id_text(const bson_t *doc, char *buf, size_t size) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(&it), hex);
        snprintf(buf, size, "%s", hex);
    } else {
        snprintf(buf, size, "(no ObjectId _id)");
    }
}

/* Whether N holds docs[i]'s _id: a duplicate key error names no index on
 * some servers (FerretDB), and one from another unique index than _id's
 * means N refused the event, not that an earlier run moved it. -1 when
 * the server could not say. */
static int in_log(run_t *r, size_t i, bson_error_t *berr) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, r->docs[i], "_id"))
        return 0;
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bson_append_iter(&filter, "_id", 3, &it);
    BSON_APPEND_INT64(&opts, "limit", 1);
    /* Local, on the primary: what the duplicate key error saw. Another
     * promoter's insert that is not majority-committed yet is still a
     * copy of this event, not a refusal (it must not be quarantined). */
    mongoc_read_concern_t *local = mongoc_read_concern_new();
    mongoc_read_concern_set_level(local, MONGOC_READ_CONCERN_LEVEL_LOCAL);
    mongoc_read_concern_append(local, &opts);
    mongoc_read_concern_destroy(local);
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(r->log, &filter, &opts, primary);
    const bson_t *doc;
    int found = mongoc_cursor_next(cur, &doc) ? 1 : 0;
    if (mongoc_cursor_error(cur, berr))
        found = -1;
    mongoc_cursor_destroy(cur);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return found;
}

/* Moves docs[i] to N.quarantine with the reason. A duplicate key there is
 * an earlier run's copy of it: settled all the same. False (with *error)
 * when the quarantine cannot be written: the document stays pending. */
static bool quarantine(run_t *r, size_t i, int32_t code, const char *reason, outbox_error_t *error) {
    bson_error_t berr;
    bool ok = false;
    char id[32];
    id_text(r->docs[i], id, sizeof id);
    /* The document as it is, for people to read; as its raw BSON when the
     * server refuses it as a field too (a key it will not store). */
    for (int raw = 0; raw < 2 && !ok; raw++) {
        bson_t reply, opts = BSON_INITIALIZER;
        bson_iter_t it;
        bson_t *q = bson_new();
        if (bson_iter_init_find(&it, r->docs[i], "_id"))
            bson_append_iter(q, "_id", 3, &it);
        if (raw)
            BSON_APPEND_BINARY(q, "doc_bson", BSON_SUBTYPE_BINARY, bson_get_data(r->docs[i]), r->docs[i]->len);
        else
            BSON_APPEND_DOCUMENT(q, "doc", r->docs[i]);
        BSON_APPEND_UTF8(q, "reason", reason);
        BSON_APPEND_INT32(q, "code", code);
        struct timeval tv;
        bson_gettimeofday(&tv);
        BSON_APPEND_DATE_TIME(q, "quarantined", (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
        BSON_APPEND_BOOL(&opts, "validate", false);
        outbox__majority_opts(&opts, false);
        ok = mongoc_collection_insert_one(r->quarantine, q, &opts, &reply, &berr);
        long idx;
        int32_t wcode = 0;
        char msg[8];
        bool doc_error = !ok && first_write_error(&reply, &idx, &wcode, msg, sizeof msg);
        if (doc_error && wcode == OUTBOX_MONGO_DUPLICATE_KEY)
            ok = true; /* an earlier run quarantined it and stopped before the delete */
        bson_destroy(q);
        bson_destroy(&reply);
        bson_destroy(&opts);
        if (!ok && !doc_error)
            break; /* the server or the network: the next run tries again */
    }
    if (!ok) {
        outbox__fail_bson(error, &berr, "cannot quarantine pending document %s of %s.%s in %s.%s", id,
                          outbox_database(r->ob), r->ob->pending_name, outbox_database(r->ob),
                          r->ob->quarantine_name);
        return false;
    }
    r->outcome[i] = DOC_QUARANTINED;
    r->quarantined++;
    if (r->report)
        outbox__fail(r->report, OUTBOX_OK, "pending document %s of %s.%s cannot be promoted into %s: %s; moved to %s "
                     "(outboxctl status counts them)",
                     id, outbox_database(r->ob), r->ob->pending_name, outbox_name(r->ob), reason,
                     r->ob->quarantine_name);
    return true;
}

/* Quarantines every document that is not an event envelope: N would take
 * it (FerretDB and a log without a validator take anything) and every
 * sink would meet it as malformed. */
static outbox_code_t screen(run_t *r, outbox_error_t *error) {
    for (size_t i = 0; i < r->n; i++) {
        outbox_event_t ev;
        char why[300], reason[340];
        if (outbox__event_parse(&ev, r->docs[i], why, sizeof why))
            continue;
        snprintf(reason, sizeof reason, "not an event envelope: %s", why);
        if (!quarantine(r, i, 0, reason, error))
            return OUTBOX_ERR_SERVER;
    }
    return OUTBOX_OK;
}

/* Inserts the documents still unsettled, in order, one ordered insert at a
 * time from the first unsettled: the server stops at the first write
 * error, whose document is settled (already in N, or quarantined), and the
 * insert resumes after it. */
static outbox_code_t insert_in_order(run_t *r, outbox_error_t *error) {
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", true);
    /* The documents come from the server: the server judges them, one by
     * one. libmongoc's own check of keys ('$', '.') would fail the whole
     * insert, and the same document would stop every run after it. */
    BSON_APPEND_BOOL(&opts, "validate", false);
    outbox__majority_opts(&opts, false);
    const bson_t **batch = bson_malloc0(r->n * sizeof *batch);
    size_t *at = bson_malloc0(r->n * sizeof *at); /* batch index -> docs index */
    outbox_code_t rc = OUTBOX_OK;
    size_t from = 0;
    for (;;) {
        size_t k = 0;
        for (size_t i = from; i < r->n; i++)
            if (r->outcome[i] == DOC_UNSETTLED) {
                at[k] = i;
                batch[k++] = r->docs[i];
            }
        if (k == 0)
            break;
        bson_t reply;
        bson_error_t berr;
        bool ok = mongoc_collection_insert_many(r->log, batch, k, &opts, &reply, &berr);
        long idx = -1;
        int32_t code = 0;
        char msg[300];
        bool doc_error = !ok && first_write_error(&reply, &idx, &code, msg, sizeof msg) && (size_t)idx < k;
        bool wc_error = has_write_concern_error(&reply);
        if (ok || doc_error) {
            size_t done = ok ? k : (size_t)idx; /* those before the error are in N */
            for (size_t j = 0; j < done; j++)
                r->outcome[at[j]] = DOC_IN_LOG;
        }
        if (wc_error || (!ok && !doc_error)) {
            /* The whole command: nothing after what the reply settled is
             * known; this run stops and the next resumes. */
            rc = outbox__fail_bson(error, &berr, "cannot move pending events into %s.%s",
                                   outbox_database(r->ob), outbox_name(r->ob));
            bson_destroy(&reply);
            break;
        }
        bson_destroy(&reply);
        if (ok)
            break;
        size_t bad = at[idx];
        int there = code == OUTBOX_MONGO_DUPLICATE_KEY ? in_log(r, bad, &berr) : 0;
        if (there < 0) {
            rc = outbox__fail_bson(error, &berr, "cannot look up a pending event in %s.%s",
                                   outbox_database(r->ob), outbox_name(r->ob));
            break;
        }
        if (there) {
            r->outcome[bad] = DOC_IN_LOG; /* an earlier run inserted it */
        } else {
            char reason[400];
            snprintf(reason, sizeof reason, "refused by %s.%s (error %d): %s", outbox_database(r->ob),
                     outbox_name(r->ob), (int)code, msg);
            if (!quarantine(r, bad, code, reason, error)) {
                rc = OUTBOX_ERR_SERVER;
                break;
            }
        }
        from = bad + 1;
    }
    bson_free(batch);
    bson_free(at);
    bson_destroy(&opts);
    return rc;
}

/* Deletes what this run settled from N.pending, by _id. */
static outbox_code_t delete_settled(run_t *r, size_t *settled, outbox_error_t *error) {
    bson_t del = BSON_INITIALIZER, in, ids, opts = BSON_INITIALIZER;
    size_t k = 0;
    BSON_APPEND_DOCUMENT_BEGIN(&del, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = 0; i < r->n; i++) {
        bson_iter_t it;
        char idx[16];
        const char *key;
        if (r->outcome[i] == DOC_UNSETTLED || !bson_iter_init_find(&it, r->docs[i], "_id"))
            continue;
        bson_uint32_to_string((uint32_t)k++, &key, idx, sizeof idx);
        bson_append_iter(&ids, key, -1, &it);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&del, &in);
    outbox__majority_opts(&opts, false);
    outbox_code_t rc = OUTBOX_OK;
    bson_error_t berr;
    if (k && !mongoc_collection_delete_many(r->pending, &del, &opts, NULL, &berr))
        rc = outbox__fail_bson(error, &berr, "moved events into %s.%s but cannot delete them from %s (the next "
                               "run will)", outbox_database(r->ob), outbox_name(r->ob), r->ob->pending_name);
    *settled = rc == OUTBOX_OK ? k : 0;
    bson_destroy(&del);
    bson_destroy(&opts);
    return rc;
}

outbox_code_t outbox__promote_docs(outbox_t *ob, mongoc_client_t *client, bson_t **docs, size_t n, bool skip_delete,
                                   size_t *moved, size_t *quarantined, outbox_error_t *report, outbox_error_t *error) {
    *moved = 0;
    *quarantined = 0;
    if (n == 0)
        return OUTBOX_OK;
    run_t r = {.ob = ob, .report = report, .docs = docs, .n = n};
    r.pending = mongoc_client_get_collection(client, ob->conf->database, ob->pending_name);
    r.log = mongoc_client_get_collection(client, ob->conf->database, ob->conf->outbox);
    r.quarantine = mongoc_client_get_collection(client, ob->conf->database, ob->quarantine_name);
    r.outcome = bson_malloc0(n * sizeof *r.outcome);
    outbox_code_t rc = screen(&r, error);
    if (rc == OUTBOX_OK)
        rc = insert_in_order(&r, error);
    if (skip_delete) {
        for (size_t i = 0; i < r.n; i++)
            *moved += r.outcome[i] != DOC_UNSETTLED;
    } else {
        /* What this run settled leaves N.pending even when it stopped early. */
        outbox_error_t derr;
        size_t settled = 0;
        outbox_code_t drc = delete_settled(&r, &settled, &derr);
        if (rc == OUTBOX_OK && drc != OUTBOX_OK) {
            rc = drc;
            if (error)
                *error = derr;
        }
        *moved = settled;
        *quarantined = drc == OUTBOX_OK ? r.quarantined : 0;
    }
    bson_free(r.outcome);
    mongoc_collection_destroy(r.pending);
    mongoc_collection_destroy(r.log);
    mongoc_collection_destroy(r.quarantine);
    return rc;
}

outbox_code_t outbox__promote_batch(outbox_t *ob, const bson_t *filter, size_t limit, bool skip_delete, size_t *moved,
                                    size_t *quarantined, outbox_error_t *report, outbox_error_t *error) {
    bson_error_t berr;
    const bson_t *doc;
    outbox_code_t rc = OUTBOX_OK;
    bson_t all = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;

    *moved = 0;
    *quarantined = 0;
    mongoc_client_t *client = outbox__client_pop(ob);
    mongoc_collection_t *pending = mongoc_client_get_collection(client, ob->conf->database, ob->pending_name);
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);

    /* Oldest _id first: the order producers wrote them in, as far as their
     * clocks agree (docs/transactions.md says what order this gives per
     * key; a promoter that follows the change stream gives commit order). */
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", (int64_t)limit);
    outbox__majority_opts(&opts, true);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(pending, filter ? filter : &all, &opts, primary);
    bson_t **docs = bson_malloc0(limit * sizeof *docs);
    size_t n = 0;
    while (n < limit && mongoc_cursor_next(cur, &doc))
        docs[n++] = bson_copy(doc);
    if (mongoc_cursor_error(cur, &berr))
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", ob->conf->database, ob->pending_name);
    mongoc_cursor_destroy(cur);
    if (rc == OUTBOX_OK)
        rc = outbox__promote_docs(ob, client, docs, n, skip_delete, moved, quarantined, report, error);
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    bson_free(docs);
    bson_destroy(&all);
    bson_destroy(&opts);
    mongoc_read_prefs_destroy(primary);
    mongoc_collection_destroy(pending);
    outbox__client_push(ob, client);
    return rc;
}

outbox_code_t outbox__promote_all(outbox_t *ob, const bson_t *filter, size_t *moved, size_t *quarantined,
                                  outbox_error_t *error) {
    size_t total = 0, total_q = 0, n, q;
    outbox_code_t rc;
    outbox_error_t report;
    outbox__clear_error(&report);
    /* An insert into a missing N would create it as an ordinary
     * collection: the log would never wrap, nor be tailable. Checked until
     * it has been seen once (N does not stop being capped). */
    if (!atomic_load(&ob->log_verified)) {
        if ((rc = outbox_verify(ob, error)) != OUTBOX_OK)
            return rc;
        atomic_store(&ob->log_verified, true);
    }
    do {
        rc = outbox__promote_batch(ob, filter, OUTBOX_PROMOTE_BATCH, false, &n, &q, &report, error);
        total += n;
        total_q += q;
    } while (rc == OUTBOX_OK && n == OUTBOX_PROMOTE_BATCH);
    if (moved)
        *moved = total;
    if (quarantined)
        *quarantined = total_q;
    if (rc == OUTBOX_OK && total_q && error)
        *error = report;
    return rc;
}

outbox_code_t outbox_promote_ex(outbox_t *ob, size_t *moved, size_t *quarantined, outbox_error_t *error) {
    outbox__clear_error(error);
    if (!ob)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_promote: outbox is NULL");
    return outbox__promote_all(ob, NULL, moved, quarantined, error);
}

outbox_code_t outbox_promote(outbox_t *ob, size_t *moved, outbox_error_t *error) {
    return outbox_promote_ex(ob, moved, NULL, error);
}
