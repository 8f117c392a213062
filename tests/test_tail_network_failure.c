/*
 * test_tail_network_failure.c - a tail whose connection to the server
 * breaks (cut mid-stream, then unreachable for a while) reports the errors,
 * reconnects by itself, and continues after the last event it returned:
 * nothing missing, nothing twice. A TCP proxy plays the network.
 */
#include "testlib.h"
#include "tcp_proxy.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void tail_recovers_from_a_broken_connection(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    outbox_t *direct = test_outbox("netfail");
    test_proxy_t *proxy = test_proxy_to_mongodb();

    /* A second handle on the same outbox, through the proxy. */
    char proxied[256];
    snprintf(proxied, sizeof proxied,
             "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=3000&connectTimeoutMS=1000&heartbeatFrequencyMS=500",
             test_proxy_port(proxy));
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "uri", proxied, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", outbox_name(direct), &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "tail.await_ms", "100", &err), OUTBOX_OK);
    outbox_t *via_proxy = outbox_new(conf, &err);
    assert_non_null(via_proxy);

    for (int i = 1; i <= 3; i++)
        test_put_order(direct, i, "k");
    outbox_tail_t *tail = outbox_tail_new(via_proxy, OUTBOX_TAIL_FROM_START, NULL, &err);
    int got[16], n = 0;
    while (n < 3 && outbox_tail_next(tail, 5000, &ev, &err) == OUTBOX_OK)
        got[n++] = test_ordernr(ev);
    assert_int_equal(n, 3);

    /* The network fails; events keep being put meanwhile. */
    test_proxy_set_down(proxy, true);
    for (int i = 4; i <= 6; i++)
        test_put_order(direct, i, "k");
    int errors = 0;
    time_t until = time(NULL) + 2;
    while (time(NULL) < until) {
        outbox_code_t rc = outbox_tail_next(tail, 200, &ev, &err);
        assert_int_not_equal(rc, OUTBOX_OK); /* nothing can arrive */
        if (rc == OUTBOX_ERR_SERVER)
            errors++;
        else
            assert_int_equal(rc, OUTBOX_ERR_TIMED_OUT);
    }
    test_proxy_set_down(proxy, false);
    for (int i = 7; i <= 8; i++)
        test_put_order(direct, i, "k");

    /* Back: 4..8, each once, in order. */
    time_t give_up = time(NULL) + 30;
    while (n < 8 && time(NULL) < give_up) {
        outbox_code_t rc = outbox_tail_next(tail, 1000, &ev, &err);
        if (rc == OUTBOX_OK)
            got[n++] = test_ordernr(ev);
        else if (rc == OUTBOX_ERR_SERVER)
            errors++;
        else
            assert_int_equal(rc, OUTBOX_ERR_TIMED_OUT);
    }
    assert_int_equal(outbox_tail_next(tail, 300, &ev, &err), OUTBOX_ERR_TIMED_OUT);
    print_message("# network down 2 s: %d errors reported, then %d events\n", errors, n - 3);
    assert_true(errors >= 1);
    assert_int_equal(n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(got[i], i + 1);

    outbox_tail_destroy(tail);
    outbox_destroy(via_proxy);
    test_proxy_stop(proxy);
    test_outbox_drop(direct);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_recovers_from_a_broken_connection),
    };
    return TEST_RUN("tail_network_failure", tests);
}
