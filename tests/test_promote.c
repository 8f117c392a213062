/*
 * test_promote.c - the promoter moves committed pending events into the log
 * and survives being interrupted between its two steps: nothing is lost,
 * and at most one copy too many appears. Runs without transactions: the
 * pending events are written as a committed transaction leaves them.
 */
#include "testlib.h"
#include "promote.h"

static void write_pending(outbox_t *ob, int first, int count) {
    for (int i = first; i < first + count; i++)
        test_put_pending(ob, i);
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
    size_t moved, quarantined;
    int got[16];
    char name[256];
    outbox_t *ob = test_outbox("promote_crash");
    write_pending(ob, 1, 5);
    /* Step one only, as if the promoter died before deleting. */
    assert_int_equal(outbox__promote_batch(ob, NULL, 500, true, &moved, &quarantined, NULL, &err), OUTBOX_OK);
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

/* A unique index on data.ordernr in N: a stand-in, on servers without
 * validators (FerretDB), for any refusal of one event by N. */
static void unique_ordernr(outbox_t *ob) {
    mongoc_client_t *client = test_client();
    mongoc_database_t *db = mongoc_client_get_database(client, TEST_DB);
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(outbox_name(ob)), "indexes", "[", "{", "key", "{",
                           "data.ordernr", BCON_INT32(1), "}", "name", BCON_UTF8("ordernr"), "unique",
                           BCON_BOOL(true), "}", "]");
    bson_error_t berr;
    if (!mongoc_database_command_simple(db, cmd, NULL, NULL, &berr))
        fail_msg("createIndexes: %s", berr.message);
    bson_destroy(cmd);
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
}

static int64_t count_where(const char *coll, const char *field, const char *substring) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW(field, "{", "$regex", BCON_UTF8(substring), "}");
    bson_error_t berr;
    int64_t n = mongoc_collection_count_documents(c, filter, NULL, NULL, NULL, &berr);
    if (n < 0)
        fail_msg("count %s: %s", coll, berr.message);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return n;
}

/* One pending document that is no envelope (a foreign producer's) and one
 * event N refuses must not stop the promotion of the others: both go to
 * N.quarantine with their reason, the others into the log in order, and
 * N.pending is left empty. */
static void a_document_that_cannot_be_promoted_is_quarantined(void **state) {
    outbox_error_t err;
    size_t moved, quarantined;
    int got[16];
    char pending[256], quarantine[256];
    outbox_t *ob = test_outbox("promote_quarantine");
    snprintf(pending, sizeof pending, "%s.pending", outbox_name(ob));
    snprintf(quarantine, sizeof quarantine, "%s.quarantine", outbox_name(ob));
    unique_ordernr(ob);
    write_pending(ob, 1, 3);
    bson_t *foreign = BCON_NEW("type", BCON_INT32(7), "data", "{", "ordernr", BCON_INT32(99), "}");
    test_insert_raw(pending, foreign);
    bson_destroy(foreign);
    write_pending(ob, 2, 1); /* ordernr 2 again: the index refuses it */
    write_pending(ob, 4, 2);
    if (outbox_promote_ex(ob, &moved, &quarantined, &err) != OUTBOX_OK)
        fail_msg("promote: %s", err.message);
    assert_int_equal(moved, 7);
    assert_int_equal(quarantined, 2);
    /* The call names the last one it quarantined, and why. */
    if (!strstr(err.message, "cannot be promoted") || !strstr(err.message, "error 11000"))
        fail_msg("promote's report: %s", err.message);
    assert_int_equal(test_count(pending), 0);
    assert_int_equal(test_count(quarantine), 2);
    assert_int_equal(count_where(quarantine, "reason", "^not an event envelope: .*type"), 1);
    assert_int_equal(count_where(quarantine, "reason", "error 11000"), 1);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 16, 1000), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], i + 1);
    outbox_tail_destroy(tail);
    /* Nothing is left to do, and nothing is quarantined twice. */
    assert_int_equal(outbox_promote_ex(ob, &moved, &quarantined, &err), OUTBOX_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(quarantined, 0);
    assert_int_equal(test_count(quarantine), 2);
    test_outbox_drop(ob);
}

/* Without change streams (no transactions either) the promoter handle
 * polls by _id, as outbox_promote does, and says so. */
static void a_promoter_without_change_streams_polls(void **state) {
    (void)state;
    outbox_error_t err;
    unsigned caps;
    size_t moved, quarantined;
    int got[8];
    outbox_t *ob = test_outbox("promoter_poll");
    assert_int_equal(outbox_server_caps(ob, &caps, &err), OUTBOX_OK);
    outbox_promoter_t *p = outbox_promoter_new(ob);
    write_pending(ob, 1, 3);
    if (outbox_promoter_run(p, 100, &moved, &quarantined, &err) != OUTBOX_OK)
        fail_msg("promoter: %s", err.message);
    if (caps & OUTBOX_CAP_TRANSACTIONS) {
        /* A replica set: the first round read the backlog after it opened
         * the stream. */
        assert_true(outbox_promoter_follows_commits(p));
    } else {
        assert_false(outbox_promoter_follows_commits(p));
    }
    assert_int_equal(moved, 3);
    assert_int_equal(quarantined, 0);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(test_read_ordernrs(tail, got, 8, 500), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(got[i], i + 1);
    outbox_tail_destroy(tail);
    outbox_promoter_destroy(p);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(promote_moves_pending_events_in_order),
        cmocka_unit_test(promote_interrupted_between_steps_loses_nothing),
        cmocka_unit_test(a_document_that_cannot_be_promoted_is_quarantined),
        cmocka_unit_test(a_promoter_without_change_streams_polls),
    };
    return TEST_RUN("promote", tests);
}
