/*
 * test_transaction_errors.c - what a producer learns when a put inside a
 * transaction fails, on any server (these need no committed transaction,
 * so they run on FerretDB too; test_transactional_put.c has the rest):
 * the labels that decide a retry are kept, the helper retries on them,
 * an outbox that was never created is named with what to run, and a
 * batch written outside a transaction is never written twice.
 */
#include "testlib.h"
#include "tcp_proxy.h"

#include <string.h>

typedef struct {
    test_proxy_t *proxy;
    outbox_t *direct;    /* ensured, straight to the server */
    outbox_t *proxied;   /* the same outbox through the proxy */
    mongoc_client_t *client; /* the producer's client, through the proxy */
    mongoc_client_pool_t *pool; /* client's pool, when pooled */
} rig_t;

static void rig_up_with(rig_t *r, const char *label, const char *producer_options, bool pooled);

static void rig_up(rig_t *r, const char *label) {
    /* The producer's client waits for the server to come back (a single
     * client otherwise gives a server that failed a 5 s cool-down). */
    rig_up_with(r, label, "serverSelectionTimeoutMS=3000&serverSelectionTryOnce=false&connectTimeoutMS=1000&"
                          "socketTimeoutMS=3000&retryWrites=false", false);
}

static void rig_up_with(rig_t *r, const char *label, const char *producer_options, bool pooled) {
    outbox_error_t err;
    memset(r, 0, sizeof *r);
    r->direct = test_outbox(label);
    r->proxy = test_proxy_to_mongodb();
    char uri[256];
    snprintf(uri, sizeof uri,
             "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=1500&connectTimeoutMS=1000&"
             "socketTimeoutMS=3000&retryWrites=false",
             test_proxy_port(r->proxy));
    outbox_conf_t *conf = test_conf(label);
    assert_int_equal(outbox_conf_set(conf, "uri", uri, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", outbox_name(r->direct), &err), OUTBOX_OK);
    r->proxied = outbox_new(conf, &err);
    assert_non_null(r->proxied);
    char producer_uri[400];
    snprintf(producer_uri, sizeof producer_uri, "mongodb://127.0.0.1:%d/?%s", test_proxy_port(r->proxy),
             producer_options);
    if (pooled) {
        mongoc_uri_t *u = mongoc_uri_new(producer_uri);
        assert_non_null(u);
        r->pool = mongoc_client_pool_new(u);
        mongoc_uri_destroy(u);
        mongoc_client_pool_set_error_api(r->pool, MONGOC_ERROR_API_VERSION_2);
        r->client = mongoc_client_pool_pop(r->pool);
    } else {
        r->client = mongoc_client_new(producer_uri);
        assert_non_null(r->client);
        mongoc_client_set_error_api(r->client, MONGOC_ERROR_API_VERSION_2);
    }
}

static void rig_down(rig_t *r) {
    if (r->pool) {
        mongoc_client_pool_push(r->pool, r->client);
        mongoc_client_pool_destroy(r->pool);
    } else {
        mongoc_client_destroy(r->client);
    }
    outbox_destroy(r->proxied);
    test_proxy_stop(r->proxy);
    test_outbox_drop(r->direct);
}

static mongoc_client_session_t *session_in_transaction(mongoc_client_t *client) {
    bson_error_t berr;
    mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &berr);
    if (!s)
        fail_msg("start session: %s", berr.message);
    /* The client starts it; the server hears of it with the first write. */
    if (!mongoc_client_session_start_transaction(s, NULL, &berr))
        fail_msg("start transaction: %s", berr.message);
    return s;
}

static outbox_batch_t *one_order(outbox_t *ob, int ordernr) {
    outbox_error_t err;
    outbox_batch_t *b = outbox_batch_new(ob);
    bson_t *data = BCON_NEW("ordernr", BCON_INT32(ordernr), "total", BCON_DOUBLE(1));
    assert_int_equal(outbox_batch_add(b, "order.created", "k", data, NULL, &err), OUTBOX_OK);
    bson_destroy(data);
    return b;
}

/* libmongoc puts TransientTransactionError on the reply of a write that
 * met a network error inside a transaction, and nowhere else (the error's
 * code is 0): the put must hand that reply back, and say so. */
static void a_network_error_inside_a_transaction_keeps_its_retry_label(void **state) {
    (void)state;
    rig_t r;
    rig_up(&r, "txn_label");
    mongoc_client_session_t *s = session_in_transaction(r.client);
    outbox_batch_t *b = one_order(r.proxied, 1);
    test_proxy_set_down(r.proxy, true);
    outbox_error_t err;
    bson_t reply;
    assert_int_equal(outbox_batch_put_reply(b, s, &reply, &err), OUTBOX_ERR_SERVER);
    if (!mongoc_error_has_label(&reply, "TransientTransactionError")) {
        char *json = bson_as_relaxed_extended_json(&reply, NULL);
        fail_msg("the reply has no TransientTransactionError label: %s (%s)", json, err.message);
    }
    assert_int_equal(err.server_code, 0);
    if (!strstr(err.message, "[TransientTransactionError]") || !strstr(err.message, "aborted the transaction"))
        fail_msg("the message does not say the transaction may be retried: %s", err.message);
    bson_destroy(&reply);

    /* The same through the callback's shape. */
    bson_t *cb_reply = NULL;
    bson_error_t berr;
    assert_false(outbox_batch_put_cb(b, s, &cb_reply, &berr));
    assert_non_null(cb_reply);
    assert_true(mongoc_error_has_label(cb_reply, "TransientTransactionError"));
    assert_non_null(strstr(berr.message, "TransientTransactionError"));
    bson_destroy(cb_reply);
    print_message("# a put inside a transaction, network down: %s\n", err.message);
    outbox_batch_destroy(b);
    mongoc_client_session_destroy(s);
    rig_down(&r);
}

typedef struct {
    rig_t *rig;
    outbox_batch_t *batch; /* one batch for every attempt */
    int calls;
} attempt_t;

/* The first attempt meets the network down (back up as it returns); the
 * second has it. The producer's client is a pool's: its monitor finds the
 * server again as soon as the network is back, where a single client
 * waits out a cool-down and the helper's next start would fail. */
static bool put_with_network_then_without(mongoc_client_session_t *session, void *ctx, bson_t **reply,
                                          bson_error_t *error) {
    attempt_t *a = ctx;
    a->calls++;
    test_proxy_set_down(a->rig->proxy, a->calls == 1);
    bool ok = outbox_batch_put_cb(a->batch, session, reply, error);
    test_proxy_set_down(a->rig->proxy, false);
    return ok;
}

/* outbox_with_transaction runs the callback again when a put's reply is
 * labelled transient, and not when it is not. FerretDB refuses the
 * transaction itself once it hears of it ("startTransaction"): that second
 * error is not transient, so the helper stops there and says so. */
static void the_helper_retries_a_transient_error_and_only_that(void **state) {
    (void)state;
    rig_t r;
    /* Long enough for valgrind's pace: the first attempt waits it out. */
    rig_up_with(&r, "txn_helper", "serverSelectionTimeoutMS=8000&connectTimeoutMS=2000&socketTimeoutMS=5000&"
                                  "retryWrites=false", true);
    unsigned caps;
    outbox_error_t err;
    assert_int_equal(outbox_server_caps(r.direct, &caps, &err), OUTBOX_OK);
    bson_error_t berr;
    mongoc_client_session_t *s = mongoc_client_start_session(r.client, NULL, &berr);
    assert_non_null(s);
    attempt_t a = {.rig = &r, .batch = one_order(r.proxied, 1)};
    bson_t reply;
    outbox_code_t rc = outbox_with_transaction(r.proxied, s, put_with_network_then_without, &a, NULL, &reply, &err);
    if (caps & OUTBOX_CAP_TRANSACTIONS) {
        /* A replica set commits the second attempt. */
        if (rc != OUTBOX_OK)
            fail_msg("with_transaction: %s", err.message);
        char pending[256];
        snprintf(pending, sizeof pending, "%s.pending", outbox_name(r.direct));
        assert_int_equal(test_count(pending), 1);
    } else {
        assert_int_equal(rc, OUTBOX_ERR_SERVER);
        if (!strstr(err.message, "not retried"))
            fail_msg("with_transaction's message: %s", err.message);
        assert_false(mongoc_error_has_label(&reply, "TransientTransactionError"));
    }
    if (a.calls != 2)
        fail_msg("%d attempts, expected 2: %s", a.calls, err.message);
    print_message("# with_transaction: %d attempts; %s\n", a.calls, rc == OUTBOX_OK ? "committed" : err.message);
    bson_destroy(&reply);
    outbox_batch_destroy(a.batch);
    mongoc_client_session_destroy(s);
    rig_down(&r);
}

/* A transactional put into an outbox nobody created: MongoDB 4.2 refuses
 * to create N.pending inside the transaction, 4.4+ creates it bare. The
 * put refuses before the server is asked to, and says what to run. */
static void a_transactional_put_into_an_outbox_never_created_says_what_to_run(void **state) {
    (void)state;
    outbox_error_t err;
    outbox_t *ob = outbox_new(test_conf("txn_never_ensured"), &err);
    assert_non_null(ob);
    mongoc_client_t *client = test_client();
    mongoc_client_session_t *s = session_in_transaction(client);
    outbox_batch_t *b = one_order(ob, 1);
    assert_int_equal(outbox_batch_put(b, s, &err), OUTBOX_ERR_NOT_ENSURED);
    if (!strstr(err.message, "outboxctl init") || !strstr(err.message, outbox_name(ob)))
        fail_msg("the message does not say what to run: %s", err.message);
    char pending[256];
    snprintf(pending, sizeof pending, "%s.pending", outbox_name(ob));
    assert_false(test_collection_exists(pending));
    outbox_batch_destroy(b);
    mongoc_client_session_destroy(s);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* Outside a transaction a batch is written once: a second write would be
 * a second copy of every event. */
static void a_batch_written_outside_a_transaction_is_never_written_again(void **state) {
    (void)state;
    outbox_error_t err;
    outbox_t *ob = test_outbox("batch_once");
    outbox_batch_t *b = one_order(ob, 1);
    assert_int_equal(outbox_batch_put(b, NULL, &err), OUTBOX_OK);
    assert_int_equal(outbox_batch_put(b, NULL, &err), OUTBOX_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "already written"));
    mongoc_client_t *client = test_client();
    mongoc_client_session_t *s = session_in_transaction(client);
    assert_int_equal(outbox_batch_put(b, s, &err), OUTBOX_ERR_INVALID_ARG);
    assert_int_equal(test_count(outbox_name(ob)), 1);
    outbox_batch_destroy(b);
    mongoc_client_session_destroy(s);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_network_error_inside_a_transaction_keeps_its_retry_label),
        cmocka_unit_test(the_helper_retries_a_transient_error_and_only_that),
        cmocka_unit_test(a_transactional_put_into_an_outbox_never_created_says_what_to_run),
        cmocka_unit_test(a_batch_written_outside_a_transaction_is_never_written_again),
    };
    return TEST_RUN("transaction_errors", tests);
}
