/*
 * test_tail_order.c - a tail delivers events in insertion order, waits for
 * new ones, and starts where it was asked to: the oldest event, or now.
 */
#include "testlib.h"

static void tail_on_empty_outbox_receives_later_events_in_order(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    int got[8];
    outbox_t *ob = test_outbox("tail_empty");
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_non_null(tail);
    /* Nothing yet: the tail waits and times out, it does not fail. */
    assert_int_equal(outbox_tail_next(tail, 300, &ev, &err), OUTBOX_ERR_TIMED_OUT);
    assert_null(ev);
    test_put_order(ob, 1, "a");
    test_put_order(ob, 2, "b");
    test_put_order(ob, 3, "a");
    assert_int_equal(test_read_ordernrs(tail, got, 8, 3000), 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 2);
    assert_int_equal(got[2], 3);
    /* And it keeps following the log. */
    test_put_order(ob, 4, "c");
    assert_int_equal(test_read_ordernrs(tail, got, 8, 1000), 1);
    assert_int_equal(got[0], 4);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

static void tail_from_now_skips_the_backlog(void **state) {
    outbox_error_t err;
    int got[8];
    outbox_t *ob = test_outbox("tail_now");
    test_put_order(ob, 1, "a");
    test_put_order(ob, 2, "a");
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_NOW, NULL, &err);
    const outbox_event_t *ev;
    assert_int_equal(outbox_tail_next(tail, 300, &ev, &err), OUTBOX_ERR_TIMED_OUT);
    test_put_order(ob, 3, "a");
    assert_int_equal(test_read_ordernrs(tail, got, 8, 2000), 1);
    assert_int_equal(got[0], 3);
    outbox_tail_destroy(tail);

    outbox_tail_t *from_start = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(from_start, got, 8, 500), 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[2], 3);
    outbox_tail_destroy(from_start);
    test_outbox_drop(ob);
}

static void natural_order_wins_over_id_order(void **state) {
    /* Two producers whose clocks disagree: the later insert carries the
     * smaller ObjectId. The tail must follow insertion order. */
    outbox_error_t err;
    int got[4];
    outbox_t *ob = test_outbox("tail_natural");
    bson_oid_t later_id, earlier_id;
    bson_oid_init_from_string(&later_id, "7fffffff0000000000000001");
    bson_oid_init_from_string(&earlier_id, "100000000000000000000001");
    bson_t *a = BCON_NEW("_id", BCON_OID(&later_id), "type", BCON_UTF8("order.created"), "key", BCON_NULL,
                         "data", "{", "ordernr", BCON_INT32(1), "total", BCON_DOUBLE(1), "}",
                         "created", BCON_DATE_TIME(2000), "v", BCON_INT32(1));
    bson_t *b = BCON_NEW("_id", BCON_OID(&earlier_id), "type", BCON_UTF8("order.created"), "key", BCON_NULL,
                         "data", "{", "ordernr", BCON_INT32(2), "total", BCON_DOUBLE(1), "}",
                         "created", BCON_DATE_TIME(1000), "v", BCON_INT32(1));
    test_insert_raw(outbox_name(ob), a);
    test_insert_raw(outbox_name(ob), b);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 4, 500), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 2);
    outbox_tail_destroy(tail);
    bson_destroy(a);
    bson_destroy(b);
    test_outbox_drop(ob);
}

/* A tail reads a backlog in round trips of tail.batch_size events: across
 * each round trip's boundary nothing is lost or read twice, and a batch
 * size of 0 leaves it to the server. */
static void backlog_arrives_whole_across_round_trips(void **state) {
    static const char *sizes[] = {"7", "1000", "0"};
    outbox_error_t err;
    int n = 60, got[64];
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        outbox_conf_t *conf = test_conf("tail_batches");
        assert_int_equal(outbox_conf_set(conf, "tail.batch_size", sizes[s], &err), OUTBOX_OK);
        outbox_t *ob = outbox_new(conf, &err);
        assert_non_null(ob);
        assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
        for (int i = 1; i <= n; i++)
            test_put_order(ob, i, "k");
        outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
        assert_non_null(tail);
        assert_int_equal(test_read_ordernrs(tail, got, 64, 500), n);
        for (int i = 0; i < n; i++)
            assert_int_equal(got[i], i + 1);
        outbox_tail_destroy(tail);
        test_outbox_drop(ob);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_on_empty_outbox_receives_later_events_in_order),
        cmocka_unit_test(tail_from_now_skips_the_backlog),
        cmocka_unit_test(natural_order_wins_over_id_order),
        cmocka_unit_test(backlog_arrives_whole_across_round_trips),
    };
    return TEST_RUN("tail_order", tests);
}
