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
    mongoc_client_destroy(client);
    bson_destroy(doc);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ensure_creates_three_collections_and_twice_is_a_noop),
        cmocka_unit_test(ensure_refuses_a_log_that_is_not_capped),
        cmocka_unit_test(ensure_refuses_another_capped_size),
        cmocka_unit_test(server_validator_refuses_what_the_schema_refuses),
    };
    return TEST_RUN("ensure", tests);
}
