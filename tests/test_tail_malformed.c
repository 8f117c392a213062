/*
 * test_tail_malformed.c - documents in the log that are not envelopes
 * (written by a careless or foreign producer straight into the capped
 * collection) are reported one by one as OUTBOX_ERR_MALFORMED, naming the
 * document and the field, with the raw document at hand; the tail moves
 * past each and goes on with the events after it. Nothing is passed over
 * in silence, and a document without an ObjectId _id never becomes a
 * position. outbox_event_parse, the same parser for an envelope from
 * elsewhere, refuses the same documents with the same words.
 */
#include "testlib.h"

#include <string.h>

/* An envelope with one field changed by the caller: fields are appended in
 * envelope order, skipping those the caller replaces or drops. */
static bson_t *envelope(const char *drop, void (*add)(bson_t *), bson_oid_t *id_out) {
    bson_t *doc = bson_new();
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    if (id_out)
        bson_oid_copy(&id, id_out);
    if (strcmp(drop, "_id") != 0)
        BSON_APPEND_OID(doc, "_id", &id);
    if (strcmp(drop, "type") != 0)
        BSON_APPEND_UTF8(doc, "type", "order.created");
    if (strcmp(drop, "key") != 0)
        BSON_APPEND_UTF8(doc, "key", "k");
    if (strcmp(drop, "data") != 0) {
        bson_t *data = BCON_NEW("ordernr", BCON_INT32(99), "total", BCON_DOUBLE(1.5));
        BSON_APPEND_DOCUMENT(doc, "data", data);
        bson_destroy(data);
    }
    if (strcmp(drop, "created") != 0)
        BSON_APPEND_DATE_TIME(doc, "created", 1700000000000);
    if (strcmp(drop, "v") != 0)
        BSON_APPEND_INT32(doc, "v", 1);
    if (add)
        add(doc);
    return doc;
}

static void add_int_type(bson_t *d) { BSON_APPEND_INT32(d, "type", 7); }
static void add_string_id(bson_t *d) { BSON_APPEND_UTF8(d, "_id", "foreign-1"); }
static void add_array_data(bson_t *d) {
    bson_t *a = BCON_NEW("0", BCON_INT32(1));
    BSON_APPEND_ARRAY(d, "data", a);
    bson_destroy(a);
}
static void add_string_created(bson_t *d) { BSON_APPEND_UTF8(d, "created", "2026-01-01T00:00:00Z"); }
static void add_int_key(bson_t *d) { BSON_APPEND_INT32(d, "key", 42); }
/* Found by fuzz_envelope: INT64_MIN overflowed the ISO-8601 formatter. */
static void add_far_created(bson_t *d) { BSON_APPEND_DATE_TIME(d, "created", INT64_MIN); }
static void add_int_header(bson_t *d) {
    bson_t *h = BCON_NEW("trace", BCON_UTF8("t1"), "retries", BCON_INT32(3));
    BSON_APPEND_DOCUMENT(d, "headers", h);
    bson_destroy(h);
}

typedef struct {
    const char *drop;
    void (*add)(bson_t *);
    const char *why; /* must appear in the error */
    bool has_oid;
} bad_doc_t;

static const bad_doc_t bad_docs[] = {
    {"type", NULL, "type: required field is missing", true},
    {"type", add_int_type, "type: expected string, got int", true},
    {"_id", add_string_id, "{ \"_id\" : \"foreign-1\" }", false},
    {"data", add_array_data, "data: expected object, got array", true},
    {"created", NULL, "created: required field is missing", true},
    {"created", add_string_created, "created: expected date, got string", true},
    {"key", add_int_key, "key: expected string or null, got int", true},
    {"created", add_far_created, "created: -9223372036854775808 ms is outside the years 0000 to 9999", true},
    {"", add_int_header, "headers.retries: expected string, got int", true},
};
#define N_BAD (sizeof bad_docs / sizeof bad_docs[0])

/* Reads the bad documents between events 1 and 2 from tail. */
static void expect_bad_docs(outbox_tail_t *tail, const bson_oid_t *ids, size_t from) {
    outbox_error_t err;
    const outbox_event_t *ev;
    for (size_t i = from; i < N_BAD; i++) {
        outbox_code_t rc = outbox_tail_next(tail, 2000, &ev, &err);
        if (rc != OUTBOX_ERR_MALFORMED)
            fail_msg("document %zu (%s): got %s: %s", i, bad_docs[i].why, outbox_strerror(rc),
                     rc ? err.message : "an event");
        assert_null(ev);
        if (!strstr(err.message, bad_docs[i].why))
            fail_msg("document %zu: \"%s\" does not say \"%s\"", i, err.message, bad_docs[i].why);
        const bson_t *raw = outbox_tail_malformed_document(tail);
        assert_non_null(raw);
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, raw, "_id"));
        if (bad_docs[i].has_oid) {
            char hex[25];
            bson_oid_to_string(&ids[i], hex);
            assert_true(bson_oid_equal(bson_iter_oid(&it), &ids[i]));
            assert_non_null(strstr(err.message, hex)); /* named by its _id */
        } else {
            assert_string_equal(bson_iter_utf8(&it, NULL), "foreign-1");
        }
    }
}

static void malformed_documents_are_reported_one_by_one_and_passed(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    bson_oid_t ids[N_BAD], last;
    outbox_t *ob = test_outbox("tail_malformed");
    test_put_order(ob, 1, "a");
    for (size_t i = 0; i < N_BAD; i++) {
        bson_t *doc = envelope(bad_docs[i].drop, bad_docs[i].add, &ids[i]);
        test_insert_raw(outbox_name(ob), doc);
        bson_destroy(doc);
    }
    bson_oid_t second = test_put_order(ob, 2, "b");

    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_OK);
    assert_int_equal(test_ordernr(ev), 1);
    assert_null(outbox_tail_malformed_document(tail));
    expect_bad_docs(tail, ids, 0);
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_OK);
    assert_int_equal(test_ordernr(ev), 2);
    assert_null(outbox_tail_malformed_document(tail));
    assert_int_equal(outbox_tail_next(tail, 300, &ev, &err), OUTBOX_ERR_TIMED_OUT);
    outbox_tail_destroy(tail);

    /* Resuming after a malformed document that has an ObjectId (a position
     * like any other) goes on with the next one; the one without an
     * ObjectId is never a position. */
    tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &ids[1], &err);
    expect_bad_docs(tail, ids, 2);
    assert_true(outbox_tail_last_id(tail, &last));
    assert_true(bson_oid_equal(&last, &ids[N_BAD - 1]));
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_OK);
    assert_true(bson_oid_equal(outbox_event_id(ev), &second));
    outbox_tail_destroy(tail);

    tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &ids[1], &err);
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_ERR_MALFORMED); /* no ObjectId */
    assert_true(outbox_tail_last_id(tail, &last));
    assert_true(bson_oid_equal(&last, &ids[1]));
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_ERR_MALFORMED);
    assert_true(outbox_tail_last_id(tail, &last));
    assert_true(bson_oid_equal(&last, &ids[3]));
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

/* 250 levels were once stored and then written by tail as invalid JSON
 * (libbson cuts its encoder at 200): a document too deep to encode is
 * malformed, never a cut line. A foreign producer can write it even where
 * put refuses it (MongoDB itself refuses more than 100 levels; FerretDB
 * stores them). */
static void data_nested_too_deep_for_json_is_malformed(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    outbox_t *ob = test_outbox("tail_deep");
    bson_oid_t id;
    bson_t *doc = envelope("data", NULL, &id);
    /* data: {"n": {"n": ... }} 250 levels, as raw BSON. */
    size_t wraps = 249, total = 5 + 8 * wraps;
    uint8_t *buf = calloc(1, total);
    for (size_t i = 0; i < wraps; i++) {
        uint32_t len = (uint32_t)(total - 8 * i);
        memcpy(buf + 7 * i, &len, 4); /* little-endian hosts only */
        buf[7 * i + 4] = 0x03;
        buf[7 * i + 5] = 'n';
    }
    buf[7 * wraps] = 5; /* the innermost {} */
    bson_t data;
    assert_true(bson_init_static(&data, buf, total));
    BSON_APPEND_DOCUMENT(doc, "data", &data);
    free(buf);
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_collection_t *coll = mongoc_client_get_collection(client, TEST_DB, outbox_name(ob));
    bool stored = mongoc_collection_insert_one(coll, doc, NULL, NULL, &berr);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    bson_destroy(doc);
    if (!stored) {
        test_outbox_drop(ob);
        TEST_SKIP("the server refuses a 250-deep document itself: %s", berr.message);
    }
    test_put_order(ob, 2, "b");
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "data: nested deeper than 99 levels"));
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_OK);
    char *json = outbox_event_to_json(ev, NULL);
    assert_true(bson_init_from_json(&data, json, -1, &berr));
    bson_destroy(&data);
    outbox_free(json);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

/* outbox_event_parse, for an envelope that came some other way than a tail,
 * is the tail's parser: it refuses what the tail reports as malformed, with
 * the same words, and a good envelope reads back through the accessors
 * after the caller's document is gone (the event owns a copy). No server. */
static void event_parse_is_the_tails_parser(void **state) {
    outbox_error_t err;
    for (size_t i = 0; i < N_BAD; i++) {
        bson_t *doc = envelope(bad_docs[i].drop, bad_docs[i].add, NULL);
        assert_null(outbox_event_parse(doc, &err));
        assert_int_equal(err.code, OUTBOX_ERR_MALFORMED);
        /* The tail words a document without an ObjectId _id its own way
         * (it cannot name it by position); the parser names the field. */
        const char *why = bad_docs[i].has_oid ? bad_docs[i].why : "_id: expected objectId, got string";
        if (!strstr(err.message, why))
            fail_msg("document %zu: \"%s\" does not say \"%s\"", i, err.message, why);
        bson_destroy(doc);
    }
    bson_oid_t id;
    bson_t *doc = envelope("", NULL, &id);
    outbox_event_t *ev = outbox_event_parse(doc, &err);
    bson_destroy(doc);
    assert_non_null(ev);
    assert_true(bson_oid_equal(outbox_event_id(ev), &id));
    assert_string_equal(outbox_event_type(ev), "order.created");
    assert_string_equal(outbox_event_key(ev), "k");
    assert_int_equal(outbox_event_created_ms(ev), 1700000000000);
    assert_int_equal(test_ordernr(ev), 99);
    outbox_event_t *copy = outbox_event_copy(ev);
    outbox_event_destroy(ev);
    assert_string_equal(outbox_event_type(copy), "order.created");
    outbox_event_destroy(copy);
    assert_null(outbox_event_parse(NULL, &err));
    assert_int_equal(err.code, OUTBOX_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_documents_are_reported_one_by_one_and_passed),
        cmocka_unit_test(data_nested_too_deep_for_json_is_malformed),
        cmocka_unit_test(event_parse_is_the_tails_parser),
    };
    return TEST_RUN("tail_malformed", tests);
}
