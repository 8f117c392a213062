/*
 * test_transactional_put.c - an event put with a session inside a
 * transaction exists exactly when the transaction commits: invisible
 * before, never after an abort; a write conflict is retried by
 * outbox_with_transaction and its event is published once; an error
 * inside the transaction leaves neither the caller's writes nor the
 * events. Needs a server with transactions (a replica set); elsewhere the
 * tests skip and say so. test_transaction_errors.c has what any server
 * can run.
 */
#include "testlib.h"

#include <string.h>

/* The caller's collection exists before its transactions: MongoDB 4.2
 * creates no collection inside one. */
static mongoc_collection_t *orders_collection(mongoc_client_t *client) {
    bson_error_t berr;
    mongoc_database_t *db = mongoc_client_get_database(client, TEST_DB);
    mongoc_collection_t *c = mongoc_database_create_collection(db, "orders", NULL, &berr);
    if (!c && berr.code != 48 /* NamespaceExists */)
        fail_msg("create orders: %s", berr.message);
    if (c)
        mongoc_collection_destroy(c);
    mongoc_database_destroy(db);
    return mongoc_client_get_collection(client, TEST_DB, "orders");
}

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
    mongoc_collection_t *orders = orders_collection(client);
    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    assert_non_null(s);
    assert_true(mongoc_client_session_start_transaction(s, NULL, &berr));
    /* The caller's own write, in the same transaction. */
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

/* --- the helper and write conflicts ---------------------------------- */

typedef struct {
    outbox_t *ob;
    mongoc_client_t *client;
    mongoc_client_session_t *other; /* a transaction holding the order */
    int calls;
} conflict_t;

static bool set_status(mongoc_client_session_t *session, mongoc_collection_t *orders, const char *status,
                       bson_t **reply, bson_error_t *error) {
    bson_t opts = BSON_INITIALIZER, r;
    if (!mongoc_client_session_append(session, &opts, error)) {
        bson_destroy(&opts);
        return false;
    }
    bson_t *sel = BCON_NEW("ordernr", BCON_INT32(7));
    bson_t *upd = BCON_NEW("$set", "{", "status", BCON_UTF8(status), "}");
    bool ok = mongoc_collection_update_one(orders, sel, upd, &opts, &r, error);
    if (!ok && reply)
        *reply = bson_copy(&r);
    bson_destroy(&r);
    bson_destroy(sel);
    bson_destroy(upd);
    bson_destroy(&opts);
    return ok;
}

/* The callback: ship order 7 and put its event. On the first call another
 * transaction has already written the order: the update meets a
 * WriteConflict (labelled TransientTransactionError), the other commits,
 * and the helper runs the callback again. */
static bool ship_order(mongoc_client_session_t *session, void *ctx, bson_t **reply, bson_error_t *error) {
    conflict_t *c = ctx;
    c->calls++;
    mongoc_collection_t *orders = mongoc_client_get_collection(mongoc_client_session_get_client(session), TEST_DB,
                                                                "orders");
    bool ok = set_status(session, orders, "shipped", reply, error);
    if (!ok && c->other) {
        bson_error_t berr;
        if (!mongoc_client_session_commit_transaction(c->other, NULL, &berr))
            fail_msg("the other transaction's commit: %s", berr.message);
        mongoc_client_session_destroy(c->other);
        c->other = NULL;
    }
    if (ok) {
        outbox_batch_t *b = outbox_batch_new(c->ob); /* built inside: a retry builds it again */
        bson_t *data = BCON_NEW("ordernr", BCON_INT32(7), "carrier", BCON_UTF8("dhl"));
        outbox_error_t err;
        if (outbox_batch_add(b, "order.shipped", "order-7", data, NULL, &err) != OUTBOX_OK)
            fail_msg("add: %s", err.message);
        ok = outbox_batch_put_cb(b, session, reply, error);
        bson_destroy(data);
        outbox_batch_destroy(b);
    }
    mongoc_collection_destroy(orders);
    return ok;
}

static void a_write_conflict_is_retried_and_its_event_published_once(void **state) {
    (void)state;
    outbox_error_t err;
    bson_error_t berr;
    outbox_t *ob = transactional_outbox("txn_conflict");
    mongoc_client_t *client = test_client();
    mongoc_collection_t *orders = orders_collection(client);
    bson_t *order = BCON_NEW("ordernr", BCON_INT32(7), "status", BCON_UTF8("new"));
    assert_true(mongoc_collection_insert_one(orders, order, NULL, NULL, &berr));
    conflict_t c = {.ob = ob, .client = client};
    /* Another transaction writes the order first and holds it. */
    c.other = mongoc_client_start_session(client, NULL, &berr);
    assert_non_null(c.other);
    assert_true(mongoc_client_session_start_transaction(c.other, NULL, &berr));
    assert_true(set_status(c.other, orders, "packed", NULL, &berr));

    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    assert_non_null(s);
    if (outbox_with_transaction(ob, s, ship_order, &c, NULL, NULL, &err) != OUTBOX_OK)
        fail_msg("with_transaction: %s", err.message);
    assert_int_equal(c.calls, 2);
    assert_null(c.other);
    size_t moved;
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(test_count(outbox_name(ob)), 1);
    mongoc_client_session_destroy(s);
    bson_destroy(order);
    mongoc_collection_destroy(orders);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* Two events in one batch and a failing write of the caller's after them:
 * the server aborts the transaction, and none of it stands. */
static void an_error_inside_the_transaction_leaves_nothing(void **state) {
    (void)state;
    outbox_error_t err;
    bson_error_t berr;
    outbox_t *ob = transactional_outbox("txn_error");
    mongoc_client_t *client = test_client();
    mongoc_collection_t *orders = orders_collection(client);
    bson_oid_t taken;
    bson_oid_init(&taken, NULL);
    bson_t *first = BCON_NEW("_id", BCON_OID(&taken), "ordernr", BCON_INT32(8));
    assert_true(mongoc_collection_insert_one(orders, first, NULL, NULL, &berr));
    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    assert_true(mongoc_client_session_start_transaction(s, NULL, &berr));
    outbox_batch_t *b = outbox_batch_new(ob);
    for (int i = 1; i <= 2; i++) {
        bson_t *data = BCON_NEW("ordernr", BCON_INT32(i), "total", BCON_DOUBLE(1));
        assert_int_equal(outbox_batch_add(b, "order.created", "k", data, NULL, &err), OUTBOX_OK);
        bson_destroy(data);
    }
    if (outbox_batch_put(b, s, &err) != OUTBOX_OK)
        fail_msg("put: %s", err.message);
    bson_t opts = BSON_INITIALIZER;
    assert_true(mongoc_client_session_append(s, &opts, &berr));
    assert_false(mongoc_collection_insert_one(orders, first, &opts, NULL, &berr)); /* duplicate _id */
    assert_false(mongoc_client_session_commit_transaction(s, NULL, &berr));
    assert_int_equal(pending_count(ob), 0);
    /* The batch may be written again in the next transaction: a retry.
     * (abort: whatever state the failed commit left the session in.) */
    mongoc_client_session_abort_transaction(s, NULL);
    assert_true(mongoc_client_session_start_transaction(s, NULL, &berr));
    if (outbox_batch_put(b, s, &err) != OUTBOX_OK)
        fail_msg("the retry's put: %s", err.message);
    assert_true(mongoc_client_session_commit_transaction(s, NULL, &berr));
    assert_int_equal(pending_count(ob), 2);
    bson_destroy(&opts);
    outbox_batch_destroy(b);
    mongoc_client_session_destroy(s);
    bson_destroy(first);
    mongoc_collection_destroy(orders);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* --- a failover during a put ------------------------------------------ */

typedef struct {
    outbox_t *ob;
    int calls;
} failover_t;

/* The first attempt: the primary steps down (the test's replica set has
 * one node, which steps up again after stepDownSecs), so the put meets
 * NotWritablePrimary or a network error, both TransientTransactionError.
 * The second attempt finds the primary back. */
static bool put_across_a_step_down(mongoc_client_session_t *session, void *ctx, bson_t **reply, bson_error_t *error) {
    failover_t *f = ctx;
    if (++f->calls == 1) {
        mongoc_client_t *admin = test_client();
        bson_t *cmd = BCON_NEW("replSetStepDown", BCON_INT32(2), "force", BCON_BOOL(true));
        bson_error_t berr;
        mongoc_client_command_simple(admin, "admin", cmd, NULL, NULL, &berr); /* the connection may close */
        bson_destroy(cmd);
        mongoc_client_destroy(admin);
    }
    outbox_batch_t *b = outbox_batch_new(f->ob);
    bson_t *data = BCON_NEW("ordernr", BCON_INT32(9), "total", BCON_DOUBLE(1));
    outbox_error_t err;
    bool ok = outbox_batch_add(b, "order.created", "order-9", data, NULL, &err) == OUTBOX_OK &&
              outbox_batch_put_cb(b, session, reply, error);
    bson_destroy(data);
    outbox_batch_destroy(b);
    return ok;
}

static void a_failover_during_a_put_is_retried_and_published_once(void **state) {
    (void)state;
    outbox_error_t err;
    bson_error_t berr;
    outbox_t *ob = transactional_outbox("txn_failover");
    mongoc_client_t *client = test_client();
    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    assert_non_null(s);
    failover_t f = {.ob = ob};
    if (outbox_with_transaction(ob, s, put_across_a_step_down, &f, NULL, NULL, &err) != OUTBOX_OK)
        fail_msg("with_transaction across a step-down: %s (%d attempts)", err.message, f.calls);
    assert_true(f.calls >= 2);
    size_t moved;
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(test_count(outbox_name(ob)), 1);
    print_message("# a step-down during the put: %d attempts, the event once in the log\n", f.calls);
    mongoc_client_session_destroy(s);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* --- commit order ------------------------------------------------------ */

static outbox_code_t put_order_in(outbox_t *ob, mongoc_client_session_t *s, int ordernr, outbox_error_t *err) {
    bson_t *data = BCON_NEW("ordernr", BCON_INT32(ordernr), "total", BCON_DOUBLE(1));
    outbox_code_t rc = outbox_put(ob, s, "order.created", "order-k", data, NULL, NULL, err);
    bson_destroy(data);
    return rc;
}

/* Two transactions on one key: A puts first (the older ObjectId) and
 * commits second; B puts and commits first. The promoter follows the
 * change stream: the log has B's event before A's, the order of the
 * commits (a poll by _id would give A's first). */
static void two_transactions_on_one_key_are_published_in_commit_order(void **state) {
    (void)state;
    outbox_error_t err;
    bson_error_t berr;
    outbox_t *ob = transactional_outbox("txn_order");
    outbox_promoter_t *p = outbox_promoter_new(ob);
    size_t moved, quarantined, total = 0;
    if (outbox_promoter_run(p, 100, &moved, &quarantined, &err) != OUTBOX_OK)
        fail_msg("promoter: %s", err.message);
    assert_true(outbox_promoter_follows_commits(p));
    mongoc_client_t *client = test_client();
    mongoc_client_session_t *a = mongoc_client_start_session(client, NULL, &berr);
    mongoc_client_session_t *b = mongoc_client_start_session(client, NULL, &berr);
    assert_true(mongoc_client_session_start_transaction(a, NULL, &berr));
    assert_true(mongoc_client_session_start_transaction(b, NULL, &berr));
    if (put_order_in(ob, a, 1, &err) != OUTBOX_OK || put_order_in(ob, b, 2, &err) != OUTBOX_OK)
        fail_msg("put: %s", err.message);
    assert_true(mongoc_client_session_commit_transaction(b, NULL, &berr));
    assert_true(mongoc_client_session_commit_transaction(a, NULL, &berr));
    for (int i = 0; i < 100 && total < 2; i++) {
        if (outbox_promoter_run(p, 200, &moved, &quarantined, &err) != OUTBOX_OK)
            fail_msg("promoter: %s", err.message);
        total += moved;
    }
    assert_int_equal(total, 2);
    int got[4];
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 4, 500), 2);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 1);
    outbox_tail_destroy(tail);
    mongoc_client_session_destroy(a);
    mongoc_client_session_destroy(b);
    mongoc_client_destroy(client);
    outbox_promoter_destroy(p);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(committed_event_appears_after_promote),
        cmocka_unit_test(aborted_event_never_appears),
        cmocka_unit_test(a_write_conflict_is_retried_and_its_event_published_once),
        cmocka_unit_test(an_error_inside_the_transaction_leaves_nothing),
        cmocka_unit_test(two_transactions_on_one_key_are_published_in_commit_order),
        cmocka_unit_test(a_failover_during_a_put_is_retried_and_published_once),
    };
    return TEST_RUN("transactional_put", tests);
}
