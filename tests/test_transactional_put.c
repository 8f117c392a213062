/*
 * test_transactional_put.c - an event put with a session inside a
 * transaction exists exactly when the transaction commits: invisible
 * before, never after an abort. Needs a server with transactions (a
 * replica set); elsewhere the tests skip and say so.
 */
#include "testlib.h"

static outbox_t *transactional_outbox(const char *label) {
    outbox_error_t err;
    unsigned caps;
    outbox_t *ob = test_outbox(label);
    assert_int_equal(outbox_server_caps(ob, &caps, &err), OUTBOX_OK);
    if (!(caps & OUTBOX_CAP_TRANSACTIONS)) {
        test_outbox_drop(ob);
        TEST_SKIP("the test server (%s) has no transactions; run against a mongod replica set",
                  test_mongodb_kind());
    }
    return ob;
}

static int64_t pending_count(outbox_t *ob) {
    char name[256];
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    return test_count(name);
}

static void put_in_transaction(outbox_t *ob, bool commit) {
    outbox_error_t err;
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    assert_non_null(s);
    assert_true(mongoc_client_session_start_transaction(s, NULL, &berr));
    /* The caller's own write, in the same transaction. */
    mongoc_collection_t *orders = mongoc_client_get_collection(client, TEST_DB, "orders");
    bson_t opts = BSON_INITIALIZER;
    assert_true(mongoc_client_session_append(s, &opts, &berr));
    bson_t *order = BCON_NEW("ordernr", BCON_INT32(42), "total", BCON_DOUBLE(1));
    assert_true(mongoc_collection_insert_one(orders, order, &opts, NULL, &berr));
    if (outbox_put(ob, s, "order.created", "order-42", order, NULL, NULL, &err) != OUTBOX_OK)
        fail_msg("put in transaction: %s", err.message);
    /* Not visible outside the transaction yet, in either collection. */
    assert_int_equal(test_count(outbox_name(ob)), 0);
    assert_int_equal(pending_count(ob), 0);
    if (commit)
        assert_true(mongoc_client_session_commit_transaction(s, NULL, &berr));
    else
        assert_true(mongoc_client_session_abort_transaction(s, &berr));
    bson_destroy(order);
    bson_destroy(&opts);
    mongoc_collection_destroy(orders);
    mongoc_client_session_destroy(s);
    mongoc_client_destroy(client);
}

static void committed_event_appears_after_promote(void **state) {
    outbox_error_t err;
    size_t moved;
    int got[4];
    outbox_t *ob = transactional_outbox("txn_commit");
    put_in_transaction(ob, true);
    assert_int_equal(pending_count(ob), 1);
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(pending_count(ob), 0);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 4, 500), 1);
    assert_int_equal(got[0], 42);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

static void aborted_event_never_appears(void **state) {
    outbox_error_t err;
    size_t moved;
    outbox_t *ob = transactional_outbox("txn_abort");
    put_in_transaction(ob, false);
    assert_int_equal(pending_count(ob), 0);
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(test_count(outbox_name(ob)), 0);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(committed_event_appears_after_promote),
        cmocka_unit_test(aborted_event_never_appears),
    };
    return TEST_RUN("transactional_put", tests);
}
