/*
 * test_tail_resume.c - a tail opened after a checkpoint (an event id)
 * delivers exactly the events inserted after that event, found by its
 * position in the log, never by time: events that share the checkpoint's
 * millisecond, or whose ObjectIds sort before it, are not skipped.
 */
#include "testlib.h"

/* Six events with one created time and ObjectIds that sort against the
 * insertion order; returns their ids in insertion order. */
static void insert_same_millisecond(outbox_t *ob, bson_oid_t *ids) {
    const char *hex[6] = {"650000000000000000000006", "650000000000000000000001",
                          "650000000000000000000005", "650000000000000000000002",
                          "650000000000000000000004", "650000000000000000000003"};
    for (int i = 0; i < 6; i++) {
        bson_oid_init_from_string(&ids[i], hex[i]);
        bson_t *doc = BCON_NEW("_id", BCON_OID(&ids[i]), "type", BCON_UTF8("order.created"),
                               "key", BCON_UTF8("same-ms"), "data", "{", "ordernr", BCON_INT32(i + 1),
                               "total", BCON_DOUBLE(1), "}", "created", BCON_DATE_TIME(1764182725123),
                               "v", BCON_INT32(1));
        test_insert_raw(outbox_name(ob), doc);
        bson_destroy(doc);
    }
}

static void tail_after_checkpoint_gets_exactly_the_later_events(void **state) {
    outbox_error_t err;
    bson_oid_t ids[6];
    int got[8];
    outbox_t *ob = test_outbox("resume");
    insert_same_millisecond(ob, ids);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &ids[2], &err);
    assert_int_equal(test_read_ordernrs(tail, got, 8, 500), 3);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[1], 5);
    assert_int_equal(got[2], 6);
    bson_oid_t last;
    assert_true(outbox_tail_last_id(tail, &last));
    assert_true(bson_oid_equal(&last, &ids[5]));
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

static void tail_after_the_newest_event_waits_for_new_ones(void **state) {
    outbox_error_t err;
    bson_oid_t ids[6];
    int got[8];
    outbox_t *ob = test_outbox("resume_end");
    insert_same_millisecond(ob, ids);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &ids[5], &err);
    assert_int_equal(test_read_ordernrs(tail, got, 8, 300), 0);
    test_put_order(ob, 7, "k");
    assert_int_equal(test_read_ordernrs(tail, got, 8, 2000), 1);
    assert_int_equal(got[0], 7);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

static void resuming_twice_from_successive_checkpoints_loses_nothing(void **state) {
    /* What a relay does after each restart: resume from the last event it
     * handled. Across several restarts every event arrives once. */
    outbox_error_t err;
    int got[64], seen = 0;
    outbox_t *ob = test_outbox("resume_chain");
    for (int i = 1; i <= 30; i++)
        test_put_order(ob, i, i % 2 ? "odd" : "even");
    bson_oid_t checkpoint;
    bool have = false;
    while (seen < 30) {
        outbox_tail_t *tail = have ? outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &checkpoint, &err)
                                   : outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
        int n = test_read_ordernrs(tail, got + seen, 7, 1000); /* "crash" after 7 */
        assert_true(n > 0);
        seen += n;
        assert_true(outbox_tail_last_id(tail, &checkpoint));
        have = true;
        outbox_tail_destroy(tail);
    }
    assert_int_equal(seen, 30);
    for (int i = 0; i < 30; i++)
        assert_int_equal(got[i], i + 1);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_after_checkpoint_gets_exactly_the_later_events),
        cmocka_unit_test(tail_after_the_newest_event_waits_for_new_ones),
        cmocka_unit_test(resuming_twice_from_successive_checkpoints_loses_nothing),
    };
    return TEST_RUN("tail_resume", tests);
}
