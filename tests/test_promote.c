/*
 * test_promote.c - the promoter moves committed pending events into the log
 * and survives being interrupted between its two steps: nothing is lost,
 * and at most one copy too many appears. Runs without transactions: the
 * pending events are written as a committed transaction leaves them.
 */
#include "testlib.h"
#include "promote.h"

static void write_pending(outbox_t *ob, int first, int count) {
    char name[256];
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    for (int i = first; i < first + count; i++) {
        bson_oid_t id;
        bson_oid_init(&id, NULL);
        bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("order.created"), "key",
                               BCON_UTF8("k"), "data", "{", "ordernr", BCON_INT32(i), "total",
                               BCON_DOUBLE(1), "}", "created", BCON_DATE_TIME(0), "v", BCON_INT32(1));
        test_insert_raw(name, doc);
        bson_destroy(doc);
    }
}

static void promote_moves_pending_events_in_order(void **state) {
    outbox_error_t err;
    size_t moved;
    int got[1200];
    char name[256];
    outbox_t *ob = test_outbox("promote");
    write_pending(ob, 1, 1100); /* more than one promoter batch */
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 1100);
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    assert_int_equal(test_count(name), 0);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 1200, 1000), 1100);
    for (int i = 0; i < 1100; i++)
        assert_int_equal(got[i], i + 1);
    outbox_tail_destroy(tail);
    assert_int_equal(outbox_promote(ob, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 0);
    test_outbox_drop(ob);
}

static void promote_interrupted_between_steps_loses_nothing(void **state) {
    outbox_error_t err;
    size_t moved;
    int got[16];
    char name[256];
    outbox_t *ob = test_outbox("promote_crash");
    write_pending(ob, 1, 5);
    /* Step one only, as if the promoter died before deleting. */
    assert_int_equal(outbox__promote_batch(ob, 500, true, &moved, &err), OUTBOX_OK);
    assert_int_equal(moved, 5);
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    assert_int_equal(test_count(name), 5);
    /* A new event committed meanwhile, then the promoter runs again. */
    write_pending(ob, 6, 1);
    if (outbox_promote(ob, &moved, &err) != OUTBOX_OK)
        fail_msg("second promote: %s", err.message);
    assert_int_equal(test_count(name), 0);

    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    int n = test_read_ordernrs(tail, got, 16, 1000);
    outbox_tail_destroy(tail);
    /* Each of 1..6 at least once, and no event more than twice. */
    int seen[7] = {0};
    for (int i = 0; i < n; i++) {
        assert_in_range(got[i], 1, 6);
        seen[got[i]]++;
    }
    int duplicates = 0;
    for (int i = 1; i <= 6; i++) {
        assert_in_range(seen[i], 1, 2);
        duplicates += seen[i] - 1;
    }
    print_message("# promote re-run after interruption: %d events, %d duplicates (the log's "
                  "_id index makes it 0 where the server enforces it)\n", n, duplicates);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(promote_moves_pending_events_in_order),
        cmocka_unit_test(promote_interrupted_between_steps_loses_nothing),
    };
    return TEST_RUN("promote", tests);
}
