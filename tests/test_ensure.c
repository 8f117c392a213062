/*
 * test_ensure.c - ensure() creates the outbox's collections once, leaves
 * them alone after, refuses a log that is not capped or capped otherwise,
 * and installs the validator where the server has one.
 */
#include "testlib.h"

#include <string.h>

static bool collection_info(const char *name, bool *capped, int64_t *size) {
    mongoc_client_t *client = test_client();
    mongoc_database_t *db = mongoc_client_get_database(client, TEST_DB);
    bson_t opts = BSON_INITIALIZER, filter;
    const bson_t *doc;
    bool found = false;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "filter", &filter);
    BSON_APPEND_UTF8(&filter, "name", name);
    bson_append_document_end(&opts, &filter);
    mongoc_cursor_t *cur = mongoc_database_find_collections_with_opts(db, &opts);
    *capped = false;
    *size = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        found = true;
        if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "options.capped", &it))
            *capped = bson_iter_as_bool(&it);
        if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "options.size", &it))
            *size = bson_iter_as_int64(&it);
    }
    mongoc_cursor_destroy(cur);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    bson_destroy(&opts);
    return found;
}

static void ensure_creates_three_collections_and_twice_is_a_noop(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf("ensure");
    assert_int_equal(outbox_conf_set(conf, "capped.size", "1048576", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    bson_oid_t id = test_put_order(ob, 1, "k");
    (void)id;
    if (outbox_ensure(ob, &err) != OUTBOX_OK)
        fail_msg("second ensure: %s", err.message);

    bool capped;
    int64_t size;
    char name[256];
    assert_true(collection_info(outbox_name(ob), &capped, &size));
    assert_true(capped);
    assert_true(size == 1048576);
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    assert_true(collection_info(name, &capped, &size));
    assert_false(capped);
    snprintf(name, sizeof name, "%s.checkpoints", outbox_name(ob));
    assert_true(collection_info(name, &capped, &size));
    /* The second ensure kept the event. */
    assert_int_equal(test_count(outbox_name(ob)), 1);
    test_outbox_drop(ob);
}

static void ensure_refuses_a_log_that_is_not_capped(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf("notcapped");
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    bson_t *doc = BCON_NEW("x", BCON_INT32(1));
    test_insert_raw(outbox_name(ob), doc); /* creates an ordinary collection */
    bson_destroy(doc);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_ERR_NOT_CAPPED);
    char want[400];
    snprintf(want, sizeof want, "%s.%s exists but is not a capped collection", TEST_DB, outbox_name(ob));
    if (!strstr(err.message, want))
        fail_msg("message \"%s\" does not say \"%s\"", err.message, want);
    test_outbox_drop(ob);
}

static void ensure_refuses_another_capped_size(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf("size");
    assert_int_equal(outbox_conf_set(conf, "capped.size", "1048576", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);

    outbox_conf_t *conf2 = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf2, "uri", test_mongodb_uri(), &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf2, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf2, "outbox", outbox_name(ob), &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf2, "capped.size", "2097152", &err), OUTBOX_OK);
    outbox_t *ob2 = outbox_new(conf2, &err);
    assert_int_equal(outbox_ensure(ob2, &err), OUTBOX_ERR_CAPPED_MISMATCH);
    if (!strstr(err.message, "is capped at 1048576 bytes, but capped.size asks for 2097152"))
        fail_msg("unexpected message: %s", err.message);
    outbox_destroy(ob2);

    /* Without capped.size the existing log is accepted as it is. */
    outbox_conf_t *conf3 = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf3, "uri", test_mongodb_uri(), &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf3, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf3, "outbox", outbox_name(ob), &err), OUTBOX_OK);
    outbox_t *ob3 = outbox_new(conf3, &err);
    assert_int_equal(outbox_ensure(ob3, &err), OUTBOX_OK);
    outbox_destroy(ob3);
    test_outbox_drop(ob);
}

static void server_validator_refuses_what_the_schema_refuses(void **state) {
    outbox_error_t err;
    unsigned caps;
    outbox_t *ob = test_outbox("validator");
    assert_int_equal(outbox_server_caps(ob, &caps, &err), OUTBOX_OK);
    if (!(caps & OUTBOX_CAP_VALIDATORS)) {
        test_outbox_drop(ob);
        TEST_SKIP("the test server (%s) has no $jsonSchema validators", test_mongodb_kind());
    }
    /* A producer that bypasses liboutbox (another language) writes an
     * order.created without ordernr: the server must refuse it. */
    bson_error_t berr;
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("order.created"), "key", BCON_NULL,
                           "data", "{", "total", BCON_DOUBLE(1), "}", "created", BCON_DATE_TIME(0),
                           "v", BCON_INT32(1));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, outbox_name(ob));
    assert_false(mongoc_collection_insert_one(c, doc, NULL, NULL, &berr));
    assert_int_equal(berr.code, 121); /* DocumentValidationFailure */
    mongoc_collection_destroy(c);
    /* N.pending checks the envelope alone: a type this service did not
     * declare (another service's ensure may have replaced N's types) never
     * fails a business transaction; the promoter quarantines it. Not an
     * envelope at all is refused there too. */
    char pending[256];
    snprintf(pending, sizeof pending, "%s.pending", outbox_name(ob));
    c = mongoc_client_get_collection(client, TEST_DB, pending);
    bson_t *other = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("invoice.sent"), "key", BCON_NULL,
                             "data", "{", "n", BCON_INT32(1), "}", "created", BCON_DATE_TIME(0), "v",
                             BCON_INT32(1));
    if (!mongoc_collection_insert_one(c, other, NULL, NULL, &berr))
        fail_msg("N.pending refused an envelope of an undeclared type: %s", berr.message);
    bson_t *not_envelope = BCON_NEW("type", BCON_INT32(7));
    assert_false(mongoc_collection_insert_one(c, not_envelope, NULL, NULL, &berr));
    assert_int_equal(berr.code, 121);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(other);
    bson_destroy(not_envelope);
    bson_destroy(doc);
    test_outbox_drop(ob);
}

static void drop(const char *name) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    bson_error_t berr;
    if (!mongoc_collection_drop(c, &berr))
        fail_msg("drop %s: %s", name, berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
}

static void expect_message(const outbox_error_t *err, const char *a, const char *b) {
    if (!strstr(err->message, a) || !strstr(err->message, b))
        fail_msg("message \"%s\" does not say \"%s\" and \"%s\"", err->message, a, b);
}

/* What outboxd runs at start and the promoter before it writes: a log
 * that was never ensured is named with what to run, never created by a
 * write as an ordinary collection. */
static void verify_names_what_is_missing_and_what_to_run(void **state) {
    outbox_error_t err;
    char want[300], pending[256];
    outbox_t *ob = outbox_new(test_conf("verify"), &err);
    assert_non_null(ob);
    snprintf(pending, sizeof pending, "%s.pending", outbox_name(ob));
    assert_int_equal(outbox_verify(ob, &err), OUTBOX_ERR_NOT_ENSURED);
    snprintf(want, sizeof want, "%s.%s does not exist", TEST_DB, outbox_name(ob));
    expect_message(&err, want, "outboxctl init");
    /* The promoter refuses too, and creates nothing. */
    size_t moved = 7;
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_ERR_NOT_ENSURED);
    assert_int_equal(moved, 7);
    assert_false(test_collection_exists(outbox_name(ob)));

    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    if (outbox_verify(ob, &err) != OUTBOX_OK)
        fail_msg("verify after ensure: %s", err.message);
    drop(pending);
    assert_int_equal(outbox_verify(ob, &err), OUTBOX_ERR_NOT_ENSURED);
    snprintf(want, sizeof want, "%s.%s does not exist", TEST_DB, pending);
    expect_message(&err, want, "outboxctl init");
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);

    drop(outbox_name(ob));
    bson_t *doc = BCON_NEW("x", BCON_INT32(1));
    test_insert_raw(outbox_name(ob), doc); /* an ordinary collection */
    bson_destroy(doc);
    assert_int_equal(outbox_verify(ob, &err), OUTBOX_ERR_NOT_CAPPED);
    expect_message(&err, "is not a capped collection", outbox_name(ob));
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ensure_creates_three_collections_and_twice_is_a_noop),
        cmocka_unit_test(ensure_refuses_a_log_that_is_not_capped),
        cmocka_unit_test(ensure_refuses_another_capped_size),
        cmocka_unit_test(server_validator_refuses_what_the_schema_refuses),
        cmocka_unit_test(verify_names_what_is_missing_and_what_to_run),
    };
    return TEST_RUN("ensure", tests);
}
