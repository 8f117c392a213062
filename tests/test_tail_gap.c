/*
 * test_tail_gap.c - when the capped log overwrites events a reader had not
 * read yet, the reader is told (OUTBOX_ERR_GAP, with the ids it knows) and
 * never carries on silently.
 */
#include "testlib.h"

#include <string.h>
#include <time.h>

/* A 4 KiB log (about 20 order events), filled far past its size. */
static outbox_t *small_outbox(const char *label) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf(label);
    assert_int_equal(outbox_conf_set(conf, "capped.size", "4096", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    if (outbox_ensure(ob, &err) != OUTBOX_OK)
        fail_msg("ensure: %s", err.message);
    return ob;
}

static bool event_exists(outbox_t *ob, const bson_oid_t *id) {
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, outbox_name(ob));
    bson_t *filter = BCON_NEW("_id", BCON_OID(id));
    int64_t n = mongoc_collection_count_documents(c, filter, NULL, NULL, NULL, &berr);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return n > 0;
}

/* Capped servers may trim lazily (FerretDB: once a second); wait for it. */
static void wait_until_trimmed(outbox_t *ob, const bson_oid_t *id) {
    for (int i = 0; i < 300 && event_exists(ob, id); i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (event_exists(ob, id))
        fail_msg("the capped log was not trimmed within 30 s");
}

static void tail_from_an_overwritten_checkpoint_reports_the_gap(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    outbox_t *ob = small_outbox("gap");
    bson_oid_t first = test_put_order(ob, 1, "k");
    for (int i = 2; i <= 200; i++)
        test_put_order(ob, i, "k");
    wait_until_trimmed(ob, &first);

    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &first, &err);
    assert_int_equal(outbox_tail_next(tail, 1000, &ev, &err), OUTBOX_ERR_GAP);
    char hex[25];
    bson_oid_to_string(&first, hex);
    if (!strstr(err.message, hex) || !strstr(err.message, "is no longer in the capped log") ||
        !strstr(err.message, "the oldest event now is "))
        fail_msg("gap message lacks what is known: %s", err.message);
    /* It stays reported: the tail does not carry on past the gap. */
    assert_int_equal(outbox_tail_next(tail, 100, &ev, &err), OUTBOX_ERR_GAP);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

static void a_reader_overtaken_by_the_log_stops_at_the_gap(void **state) {
    outbox_error_t err;
    const outbox_event_t *ev;
    outbox_t *ob = small_outbox("gap_live");
    bson_oid_t first = test_put_order(ob, 1, "k");
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_int_equal(outbox_tail_next(tail, 2000, &ev, &err), OUTBOX_OK);
    assert_int_equal(test_ordernr(ev), 1);
    for (int i = 2; i <= 200; i++)
        test_put_order(ob, i, "k");
    wait_until_trimmed(ob, &first);

    /* What it still delivers is a gapless run 2, 3, ...; then the gap. */
    int expect = 2;
    outbox_code_t rc;
    while ((rc = outbox_tail_next(tail, 2000, &ev, &err)) == OUTBOX_OK) {
        assert_int_equal(test_ordernr(ev), expect);
        expect++;
    }
    if (rc != OUTBOX_ERR_GAP)
        fail_msg("after %d events: %s (%s), want a gap", expect - 1, outbox_strerror(rc), err.message);
    assert_true(expect < 200);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tail_from_an_overwritten_checkpoint_reports_the_gap),
        cmocka_unit_test(a_reader_overtaken_by_the_log_stops_at_the_gap),
    };
    return TEST_RUN("tail_gap", tests);
}
