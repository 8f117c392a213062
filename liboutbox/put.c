/*
 * put.c - batches of events: validated as they are added, written in one
 * insert into N, or into N.pending when the caller's session is inside a
 * transaction (MongoDB refuses capped writes there; outbox_promote() moves
 * them once committed).
 */
#include "internal.h"

#include <string.h>

struct outbox_batch {
    outbox_t *ob;
    bson_t **docs;
    bson_oid_t *ids;
    size_t n, cap;
    bool written;
    bool written_in_txn; /* the last write was inside a transaction */
};

outbox_batch_t *outbox_batch_new(outbox_t *ob) {
    if (!ob)
        return NULL;
    outbox_batch_t *b = bson_malloc0(sizeof *b);
    b->ob = ob;
    return b;
}

void outbox_batch_destroy(outbox_batch_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    bson_free(b->docs);
    bson_free(b->ids);
    bson_free(b);
}

size_t outbox_batch_count(const outbox_batch_t *b) {
    return b ? b->n : 0;
}

const bson_oid_t *outbox_batch_id(const outbox_batch_t *b, size_t i) {
    return b && i < b->n ? &b->ids[i] : NULL;
}

/* Wall-clock time in milliseconds: the envelope's "created". Only for
 * people and lag figures; the log's order is its insertion order. */
static int64_t now_ms(void) {
    struct timeval tv;
    bson_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static outbox_code_t check_headers(const bson_t *headers, size_t idx, const char *type,
                                   outbox_error_t *error) {
    bson_iter_t it;
    if (!bson_iter_init(&it, headers))
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): headers: corrupt document", idx, type);
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it);
        if (!bson_utf8_validate(name, strlen(name), false))
            return outbox__fail(error, OUTBOX_ERR_VALIDATION,
                                "event %zu (%s): headers: a header name is not valid UTF-8", idx, type);
        if (!BSON_ITER_HOLDS_UTF8(&it))
            return outbox__fail(error, OUTBOX_ERR_VALIDATION,
                                "event %zu (%s): headers.%s: expected string, got %s", idx, type,
                                name, outbox__bson_type_name(bson_iter_type(&it)));
        uint32_t len;
        const char *value = bson_iter_utf8(&it, &len);
        if (!bson_utf8_validate(value, len, false))
            return outbox__fail(error, OUTBOX_ERR_VALIDATION,
                                "event %zu (%s): headers.%s: not valid UTF-8", idx, type, name);
    }
    return OUTBOX_OK;
}

outbox_code_t outbox_batch_add(outbox_batch_t *b, const char *type, const char *key,
                               const bson_t *data, const bson_t *headers, outbox_error_t *error) {
    char msg[420];
    outbox__clear_error(error);
    if (!b || !type || !data)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_batch_add: batch, type and data are required");
    if (b->written)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_batch_add: this batch was already written");
    const outbox_type_t *t = outbox__conf_find_type(b->ob->conf, type);
    if (!t)
        return outbox__fail(error, OUTBOX_ERR_UNKNOWN_TYPE,
                            "event %zu: type \"%s\" is not declared for outbox %s.%s", b->n, type,
                            b->ob->conf->database, b->ob->conf->outbox);
    if (key && !bson_utf8_validate(key, strlen(key), false))
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): key: not valid UTF-8", b->n, type);
    /* Depth first: the schema check and libmongoc's own walk recurse once
     * per level, so a 100,000-deep document must not reach them. data is
     * level 2 of the stored envelope. */
    int depth = outbox__bson_depth(data, OUTBOX_MAX_DEPTH - 1);
    if (depth == -2)
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): data: a key or string is not valid UTF-8",
                            b->n, type);
    if (depth == -3)
        return outbox__fail(error, OUTBOX_ERR_VALIDATION,
                            "event %zu (%s): data: a document holds the same key twice", b->n, type);
    if (depth < 0)
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): data: corrupt document", b->n, type);
    if (depth > OUTBOX_MAX_DEPTH - 1)
        return outbox__fail(error, OUTBOX_ERR_LIMIT,
                            "event %zu (%s): data: nested deeper than %d levels of documents and "
                            "arrays (data itself is one; with the envelope, MongoDB's limit of %d)",
                            b->n, type, OUTBOX_MAX_DEPTH - 1, OUTBOX_MAX_DEPTH);
    if (data->len > OUTBOX_EVENT_MAX_SIZE)
        return outbox__fail(error, OUTBOX_ERR_LIMIT,
                            "event %zu (%s): data: %" PRIu32 " bytes of BSON, more than the %d an "
                            "event may have (docs/envelope.md)", b->n, type, data->len,
                            OUTBOX_EVENT_MAX_SIZE);
    outbox_code_t rc;
    if ((rc = outbox__schema_check(t->schema, data, "data", msg, sizeof msg)) != OUTBOX_OK)
        return outbox__fail(error, rc, "event %zu (%s): %s", b->n, type, msg);
    if (headers && (rc = check_headers(headers, b->n, type, error)) != OUTBOX_OK)
        return rc;

    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->docs = bson_realloc(b->docs, b->cap * sizeof *b->docs);
        b->ids = bson_realloc(b->ids, b->cap * sizeof *b->ids);
    }
    bson_t *doc = bson_new();
    bson_oid_init(&b->ids[b->n], NULL);
    BSON_APPEND_OID(doc, "_id", &b->ids[b->n]);
    BSON_APPEND_UTF8(doc, "type", type);
    if (key)
        BSON_APPEND_UTF8(doc, "key", key);
    else
        BSON_APPEND_NULL(doc, "key");
    BSON_APPEND_DOCUMENT(doc, "data", data);
    BSON_APPEND_DATE_TIME(doc, "created", now_ms());
    if (headers && !bson_empty(headers))
        BSON_APPEND_DOCUMENT(doc, "headers", headers);
    BSON_APPEND_INT32(doc, "v", OUTBOX_ENVELOPE_VERSION);
    if (doc->len > OUTBOX_EVENT_MAX_SIZE) {
        uint32_t len = doc->len;
        bson_destroy(doc);
        return outbox__fail(error, OUTBOX_ERR_LIMIT,
                            "event %zu (%s): the envelope has %" PRIu32 " bytes of BSON, more than "
                            "the %d an event may have (docs/envelope.md)", b->n, type, len,
                            OUTBOX_EVENT_MAX_SIZE);
    }
    b->docs[b->n++] = doc;
    return OUTBOX_OK;
}

outbox_code_t outbox_batch_add_json(outbox_batch_t *b, const char *type, const char *key,
                                    const char *data_json, const bson_t *headers,
                                    outbox_error_t *error) {
    bson_t data;
    bson_error_t berr;
    if (!b || !type || !data_json)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_batch_add_json: batch, type and data are required");
    /* libbson reads a top-level array [1] as the document {"0": 1}: data
     * is an object, and anything else is refused rather than coerced. */
    const char *p = data_json;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != '{')
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): data: expected a JSON object, got %s",
                            b->n, type, *p == '[' ? "an array" : *p ? "a scalar" : "nothing");
    if (!bson_init_from_json(&data, data_json, -1, &berr))
        return outbox__fail(error, OUTBOX_ERR_VALIDATION, "event %zu (%s): data: not a JSON object: %s",
                            b->n, type, berr.message);
    outbox_code_t rc = outbox_batch_add(b, type, key, &data, headers, error);
    bson_destroy(&data);
    return rc;
}

/* Which event of the batch the server refused, from the insert reply. */
static long failed_index(const bson_t *reply) {
    bson_iter_t it, we;
    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &we) && bson_iter_next(&we) && BSON_ITER_HOLDS_DOCUMENT(&we)) {
        bson_iter_t e;
        if (bson_iter_recurse(&we, &e) && bson_iter_find(&e, "index"))
            return (long)bson_iter_as_int64(&e);
    }
    return -1;
}

void outbox__labels_text(const bson_t *reply, char *buf, size_t size) {
    bson_iter_t it, labels;
    size_t used = 0;
    buf[0] = '\0';
    if (!reply || !bson_iter_init_find(&it, reply, "errorLabels") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &labels))
        return;
    while (bson_iter_next(&labels) && used < size) {
        if (!BSON_ITER_HOLDS_UTF8(&labels))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : " [", bson_iter_utf8(&labels, NULL));
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used && used + 1 < size)
        snprintf(buf + used, size - used, "]");
}

/* The error of a failed insert: which event, where, what it means for the
 * caller's writes, and the labels that decide a retry. */
static outbox_code_t insert_failed(const outbox_batch_t *b, const char *target, bool in_txn, const bson_t *reply,
                                   const bson_error_t *berr, outbox_error_t *error) {
    const outbox_t *ob = b->ob;
    char labels[120];
    outbox__labels_text(reply, labels, sizeof labels);
    if (berr->code == OUTBOX_MONGO_NOT_SUPPORTED_IN_TXN || (in_txn && berr->code == OUTBOX_MONGO_NAMESPACE_NOT_FOUND))
        return outbox__fail_bson(error, berr, "%s.%s does not exist and cannot be created inside a transaction: "
                                 "run outboxctl init (or outbox_ensure) for outbox %s first%s",
                                 ob->conf->database, target, ob->conf->outbox, labels);
    long idx = failed_index(reply);
    bson_iter_t it;
    const char *type = "?";
    if (idx >= 0 && (size_t)idx < b->n && bson_iter_init_find(&it, b->docs[idx], "type"))
        type = bson_iter_utf8(&it, NULL);
    /* Inside a transaction any error aborts it on the server: nothing of
     * it stands, the caller's writes included. */
    const char *outcome = in_txn ? "the server aborted the transaction: retry all of it or give up"
                                 : "events before it were written, it and those after it were not";
    if (idx >= 0)
        return outbox__fail_bson(error, berr, "event %ld (%s): insert into %s.%s failed (%s)%s", idx, type,
                                 ob->conf->database, target, outcome, labels);
    return outbox__fail_bson(error, berr, "insert of %zu events into %s.%s failed (%s)%s", b->n, ob->conf->database,
                             target, in_txn ? outcome : "none of them is known to be written", labels);
}

outbox_code_t outbox_batch_put_reply(outbox_batch_t *b, mongoc_client_session_t *session, bson_t *reply,
                                     outbox_error_t *error) {
    bson_error_t berr;
    bson_t local_reply;
    if (!reply)
        reply = &local_reply;
    bson_init(reply);
    outbox__clear_error(error);
    if (!b) {
        outbox_code_t rc = outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_batch_put: batch is NULL");
        if (reply == &local_reply)
            bson_destroy(reply);
        return rc;
    }
    bool in_txn = session && mongoc_client_session_in_transaction(session);
    outbox_code_t rc = OUTBOX_OK;
    /* A transaction that failed or was aborted left nothing of the batch:
     * writing it again in the next try is the retry itself. Outside a
     * transaction a second write would be a second copy of each event. */
    if (b->written && !(in_txn && b->written_in_txn)) {
        rc = outbox__fail(error, OUTBOX_ERR_INVALID_ARG,
                          "outbox_batch_put: this batch was already written%s",
                          b->written_in_txn ? " inside a transaction; it can be written again only inside one"
                                            : "");
        goto out;
    }
    if (b->n == 0)
        goto out;

    outbox_t *ob = b->ob;
    const char *target = in_txn ? ob->pending_name : ob->conf->outbox;
    /* A session belongs to the client that started it: the write must go
     * through that client to be part of the session (and its transaction). */
    mongoc_client_t *client = session ? mongoc_client_session_get_client(session) : outbox__client_pop(ob);
    /* The first transactional put checks, outside the transaction, that
     * N.pending is there: inside one, MongoDB 4.2 refuses to create it and
     * 4.4+ creates it bare (no validator, refused across shards). */
    if (in_txn && !atomic_load(&ob->pending_verified)) {
        outbox_error_t verr;
        outbox_code_t v = outbox__verify_with(ob, client, &verr);
        if (v == OUTBOX_OK) {
            atomic_store(&ob->pending_verified, true);
        } else if (v != OUTBOX_ERR_SERVER) { /* a server that cannot answer: the insert will say why */
            if (error)
                *error = verr;
            rc = v;
            goto out;
        }
    }
    mongoc_collection_t *coll = mongoc_client_get_collection(client, ob->conf->database, target);
    bson_t opts = BSON_INITIALIZER;
    if (session && !mongoc_client_session_append(session, &opts, &berr)) {
        rc = outbox__fail_bson(error, &berr, "cannot use the session");
    } else {
        bson_destroy(reply); /* insert_many initializes it again */
        if (mongoc_collection_insert_many(coll, (const bson_t **)b->docs, b->n, &opts, reply, &berr)) {
            b->written = true;
            b->written_in_txn = in_txn;
        } else {
            rc = insert_failed(b, target, in_txn, reply, &berr, error);
        }
    }
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    if (!session)
        outbox__client_push(ob, client);
out:
    if (reply == &local_reply)
        bson_destroy(reply);
    return rc;
}

outbox_code_t outbox_batch_put(outbox_batch_t *b, mongoc_client_session_t *session, outbox_error_t *error) {
    return outbox_batch_put_reply(b, session, NULL, error);
}

static outbox_code_t put_one(outbox_t *ob, mongoc_client_session_t *session, const char *type,
                             const char *key, const bson_t *data, const char *data_json,
                             const bson_t *headers, bson_oid_t *id_out, outbox_error_t *error) {
    outbox_batch_t *b = outbox_batch_new(ob);
    if (!b)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_put: outbox is NULL");
    outbox_code_t rc = data_json ? outbox_batch_add_json(b, type, key, data_json, headers, error)
                                 : outbox_batch_add(b, type, key, data, headers, error);
    if (rc == OUTBOX_OK)
        rc = outbox_batch_put(b, session, error);
    if (rc == OUTBOX_OK && id_out)
        bson_oid_copy(&b->ids[0], id_out);
    outbox_batch_destroy(b);
    return rc;
}

outbox_code_t outbox_put(outbox_t *ob, mongoc_client_session_t *session, const char *type,
                         const char *key, const bson_t *data, const bson_t *headers,
                         bson_oid_t *id_out, outbox_error_t *error) {
    if (!data)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_put: data is NULL");
    return put_one(ob, session, type, key, data, NULL, headers, id_out, error);
}

outbox_code_t outbox_put_json(outbox_t *ob, mongoc_client_session_t *session, const char *type,
                              const char *key, const char *data_json, const bson_t *headers,
                              bson_oid_t *id_out, outbox_error_t *error) {
    if (!data_json)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_put_json: data is NULL");
    return put_one(ob, session, type, key, NULL, data_json, headers, id_out, error);
}
