/*
 * test_put.c - put validates before it writes: a refused event names its
 * type and the failing path and writes nothing, not even the valid events
 * of its batch; an accepted one is stored in the documented envelope.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void expect_refused(outbox_t *ob, const char *type, const char *json, outbox_code_t code,
                           const char *message) {
    outbox_error_t err;
    bson_oid_t id;
    outbox_code_t rc = outbox_put_json(ob, NULL, type, "k", json, NULL, &id, &err);
    if (rc != code)
        fail_msg("put %s %s: got %s (%s), want %s", type, json, outbox_strerror(rc),
                 rc ? err.message : "", outbox_strerror(code));
    assert_string_equal(err.message, message);
}

static void invalid_events_are_refused_and_nothing_is_written(void **state) {
    outbox_t *ob = test_outbox("put_invalid");
    char want[300];
    snprintf(want, sizeof want, "event 0: type \"order.cancelled\" is not declared for outbox %s.%s",
             TEST_DB, outbox_name(ob));
    expect_refused(ob, "order.cancelled", "{\"ordernr\": 1}", OUTBOX_ERR_UNKNOWN_TYPE, want);
    expect_refused(ob, "order.created", "{\"total\": 1}", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.created): data.ordernr: required property is missing");
    expect_refused(ob, "order.created", "{\"ordernr\": \"7\", \"total\": 1}", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.created): data.ordernr: expected int, got string");
    expect_refused(ob, "order.created", "{\"ordernr\": 7, \"total\": 1, \"extra\": true}",
                   OUTBOX_ERR_VALIDATION,
                   "event 0 (order.created): data.extra: property not allowed (additionalProperties is false)");
    expect_refused(ob, "order.created", "{\"ordernr\": -3, \"total\": 1}", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.created): data.ordernr: -3 is below minimum 1");
    expect_refused(ob, "order.created", "{\"ordernr\": 1,", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.created): data: not a JSON object: Incomplete JSON");
    assert_int_equal(test_count(outbox_name(ob)), 0);
    test_outbox_drop(ob);
}

/* libbson reads the JSON array [1] as the document {"0": 1}: put must
 * refuse it, never store the coerced document. */
static void data_that_is_not_a_json_object_is_refused_not_coerced(void **state) {
    outbox_t *ob = test_outbox("put_not_object");
    expect_refused(ob, "order.shipped", "[1]", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.shipped): data: expected a JSON object, got an array");
    expect_refused(ob, "order.shipped", "  \n[{\"ordernr\": 1, \"carrier\": \"ups\"}]", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.shipped): data: expected a JSON object, got an array");
    expect_refused(ob, "order.shipped", "7", OUTBOX_ERR_VALIDATION,
                   "event 0 (order.shipped): data: expected a JSON object, got a scalar");
    /* JSON readers keep one of two equal keys, each reader its own pick:
     * the event would not reach every consumer as it was written. */
    expect_refused(ob, "order.shipped", "{\"ordernr\": 1, \"carrier\": \"ups\", \"ordernr\": 2}",
                   OUTBOX_ERR_VALIDATION, "event 0 (order.shipped): data: a document holds the same key twice");
    assert_int_equal(test_count(outbox_name(ob)), 0);
    test_outbox_drop(ob);
}

static void header_values_that_are_not_utf8_are_refused(void **state) {
    outbox_error_t err;
    bson_oid_t id;
    outbox_t *ob = test_outbox("put_header_utf8");
    bson_t headers = BSON_INITIALIZER;
    bson_append_utf8(&headers, "trace", 5, "a\xff\xfe" "b", 4);
    assert_int_equal(outbox_put_json(ob, NULL, "order.shipped", "k", "{\"ordernr\": 1, \"carrier\": \"ups\"}",
                                     &headers, &id, &err), OUTBOX_ERR_VALIDATION);
    assert_string_equal(err.message, "event 0 (order.shipped): headers.trace: not valid UTF-8");
    bson_destroy(&headers);
    assert_int_equal(test_count(outbox_name(ob)), 0);
    test_outbox_drop(ob);
}

/* {"ordernr": 1, "carrier": "ups", "nest": {"n": {"n": ... {"leaf": 1}}}}:
 * data with depth levels in all (data itself is 1). The nested part is
 * written as raw BSON in one buffer: building it by appending level after
 * level would copy it once per level. */
static bson_t *deep_data(int depth) {
    bson_t *data = bson_new();
    BSON_APPEND_INT32(data, "ordernr", 1);
    BSON_APPEND_UTF8(data, "carrier", "ups");
    if (depth > 1) {
        size_t wraps = (size_t)depth - 2, total = 15 + 8 * wraps;
        uint8_t *buf = calloc(1, total);
        for (size_t i = 0; i < wraps; i++) {
            uint32_t len = (uint32_t)(total - 8 * i);
            memcpy(buf + 7 * i, &len, 4); /* little-endian hosts only */
            buf[7 * i + 4] = 0x03;        /* embedded document */
            buf[7 * i + 5] = 'n';
            buf[total - 1 - i] = 0;       /* its terminator */
        }
        static const uint8_t leaf[15] = {15, 0, 0, 0, 0x10, 'l', 'e', 'a', 'f', 0, 1, 0, 0, 0, 0};
        memcpy(buf + 7 * wraps, leaf, sizeof leaf);
        bson_t nest;
        assert_true(bson_init_static(&nest, buf, total));
        BSON_APPEND_DOCUMENT(data, "nest", &nest);
        free(buf);
    }
    return data;
}

/* MongoDB's nesting limit is 100 levels for the stored document, the
 * envelope being one: data may have 99. A 100,000-deep document once
 * crashed put inside libbson; 250 levels were stored and later written
 * as invalid JSON. Both are refused at put, naming the limit. */
static void data_nested_beyond_the_limit_is_refused(void **state) {
    outbox_error_t err;
    bson_oid_t id;
    outbox_t *ob = test_outbox("put_deep");
    bson_t *ok = deep_data(OUTBOX_MAX_DEPTH - 1);
    assert_int_equal(outbox_put(ob, NULL, "order.shipped", "k", ok, NULL, &id, &err), OUTBOX_OK);
    bson_destroy(ok);
    int depths[] = {OUTBOX_MAX_DEPTH, 250, 100000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        bson_t *deep = deep_data(depths[i]);
        assert_int_equal(outbox_put(ob, NULL, "order.shipped", "k", deep, NULL, &id, &err), OUTBOX_ERR_LIMIT);
        assert_non_null(strstr(err.message, "event 0 (order.shipped): data: nested deeper than 99 levels"));
        bson_destroy(deep);
    }
    assert_int_equal(test_count(outbox_name(ob)), 1);
    test_outbox_drop(ob);
}

/* Events above OUTBOX_EVENT_MAX_SIZE are refused with their size. */
static void an_event_larger_than_the_limit_is_refused(void **state) {
    outbox_error_t err;
    bson_oid_t id;
    outbox_t *ob = test_outbox("put_large");
    size_t n = OUTBOX_EVENT_MAX_SIZE;
    char *blob = malloc(n + 1);
    memset(blob, 'x', n);
    blob[n] = '\0';
    bson_t *data = bson_new();
    BSON_APPEND_INT32(data, "ordernr", 1);
    BSON_APPEND_UTF8(data, "carrier", "ups");
    BSON_APPEND_UTF8(data, "blob", blob);
    assert_int_equal(outbox_put(ob, NULL, "order.shipped", "k", data, NULL, &id, &err), OUTBOX_ERR_LIMIT);
    assert_non_null(strstr(err.message, "bytes of BSON, more than the 8388608 an event may have"));
    bson_destroy(data);
    /* Just below the limit for data, the envelope around it crosses it. */
    data = bson_new();
    BSON_APPEND_INT32(data, "ordernr", 1);
    BSON_APPEND_UTF8(data, "carrier", "ups");
    blob[n - 80] = '\0';
    BSON_APPEND_UTF8(data, "blob", blob);
    assert_true(data->len <= OUTBOX_EVENT_MAX_SIZE);
    assert_int_equal(outbox_put(ob, NULL, "order.shipped", "a-key-that-makes-the-envelope-larger", data, NULL, &id,
                                &err), OUTBOX_ERR_LIMIT);
    assert_non_null(strstr(err.message, "the envelope has"));
    bson_destroy(data);
    free(blob);
    assert_int_equal(test_count(outbox_name(ob)), 0);
    test_outbox_drop(ob);
}

static void a_batch_with_one_bad_event_writes_nothing(void **state) {
    outbox_error_t err;
    outbox_t *ob = test_outbox("put_batch_bad");
    outbox_batch_t *b = outbox_batch_new(ob);
    assert_int_equal(outbox_batch_add_json(b, "order.created", "a", "{\"ordernr\": 1, \"total\": 1}", NULL, &err), OUTBOX_OK);
    assert_int_equal(outbox_batch_add_json(b, "order.shipped", "a", "{\"ordernr\": 1, \"carrier\": \"mule\"}", NULL, &err),
                     OUTBOX_ERR_VALIDATION);
    assert_string_equal(err.message, "event 1 (order.shipped): data.carrier: \"mule\" is not one of [ \"dhl\", \"ups\", \"postnl\" ]");
    /* The caller decides: here it gives the batch up. */
    assert_int_equal(outbox_batch_count(b), 1);
    outbox_batch_destroy(b);
    assert_int_equal(test_count(outbox_name(ob)), 0);

    bson_t headers = BSON_INITIALIZER;
    BSON_APPEND_INT32(&headers, "retries", 3);
    b = outbox_batch_new(ob);
    assert_int_equal(outbox_batch_add_json(b, "order.created", "a", "{\"ordernr\": 1, \"total\": 1}", &headers, &err),
                     OUTBOX_ERR_VALIDATION);
    assert_string_equal(err.message, "event 0 (order.created): headers.retries: expected string, got int");
    outbox_batch_destroy(b);
    bson_destroy(&headers);
    test_outbox_drop(ob);
}

static void batch_put_stores_the_envelope_in_order(void **state) {
    outbox_error_t err;
    outbox_t *ob = test_outbox("put_batch");
    bson_t headers = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&headers, "trace-id", "abc123");
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;
    outbox_batch_t *b = outbox_batch_new(ob);
    assert_int_equal(outbox_batch_add_json(b, "order.created", "order-1", "{\"ordernr\": 1, \"total\": 2.5}", &headers, &err), OUTBOX_OK);
    assert_int_equal(outbox_batch_add_json(b, "order.shipped", NULL, "{\"ordernr\": 1, \"carrier\": \"dhl\"}", NULL, &err), OUTBOX_OK);
    if (outbox_batch_put(b, NULL, &err) != OUTBOX_OK)
        fail_msg("batch put: %s", err.message);
    /* A written batch cannot be written again. */
    assert_int_equal(outbox_batch_put(b, NULL, &err), OUTBOX_ERR_INVALID_ARG);
    assert_non_null(outbox_batch_id(b, 1));
    assert_null(outbox_batch_id(b, 2));

    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    const outbox_event_t *ev;
    assert_int_equal(outbox_tail_next(tail, 5000, &ev, &err), OUTBOX_OK);
    assert_true(bson_oid_equal(outbox_event_id(ev), outbox_batch_id(b, 0)));
    assert_string_equal(outbox_event_type(ev), "order.created");
    assert_string_equal(outbox_event_key(ev), "order-1");
    assert_int_equal(outbox_event_version(ev), OUTBOX_ENVELOPE_VERSION);
    assert_true(outbox_event_created_ms(ev) >= before);
    assert_true(outbox_event_created_ms(ev) <= (int64_t)time(NULL) * 1000 + 1000);
    assert_non_null(outbox_event_headers(ev));
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, outbox_event_headers(ev), "trace-id"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "abc123");
    assert_true(bson_iter_init_find(&it, outbox_event_data(ev), "total"));
    assert_true(bson_iter_as_double(&it) == 2.5);
    /* The stored document is exactly the envelope of docs/envelope.md. */
    const char *fields[] = {"_id", "type", "key", "data", "created", "headers", "v"};
    assert_true(bson_iter_init(&it, outbox_event_document(ev)));
    for (int i = 0; i < 7; i++) {
        assert_true(bson_iter_next(&it));
        assert_string_equal(bson_iter_key(&it), fields[i]);
    }
    assert_false(bson_iter_next(&it));

    assert_int_equal(outbox_tail_next(tail, 5000, &ev, &err), OUTBOX_OK);
    assert_true(bson_oid_equal(outbox_event_id(ev), outbox_batch_id(b, 1)));
    assert_null(outbox_event_key(ev));
    assert_null(outbox_event_headers(ev));
    char *json = outbox_event_to_json(ev, NULL);
    char want[200];
    char hex[25];
    bson_oid_to_string(outbox_batch_id(b, 1), hex);
    snprintf(want, sizeof want, "{ \"id\" : \"%s\", \"type\" : \"order.shipped\", \"key\" : null, \"created\" : \"", hex);
    assert_memory_equal(json, want, strlen(want));
    assert_non_null(strstr(json, "\"data\" : { \"ordernr\" : 1, \"carrier\" : \"dhl\" }, \"headers\" : {  } }"));
    outbox_free(json);
    outbox_tail_destroy(tail);
    outbox_batch_destroy(b);
    bson_destroy(&headers);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(invalid_events_are_refused_and_nothing_is_written),
        cmocka_unit_test(a_batch_with_one_bad_event_writes_nothing),
        cmocka_unit_test(data_that_is_not_a_json_object_is_refused_not_coerced),
        cmocka_unit_test(header_values_that_are_not_utf8_are_refused),
        cmocka_unit_test(data_nested_beyond_the_limit_is_refused),
        cmocka_unit_test(an_event_larger_than_the_limit_is_refused),
        cmocka_unit_test(batch_put_stores_the_envelope_in_order),
    };
    return TEST_RUN("put", tests);
}
