/*
 * test_outboxd_malformed.c - documents in the log that are not envelopes,
 * through the real outboxd: each follows the sink's on_error policy (stop
 * says why in the checkpoint; skip logs one line naming the document;
 * deadletter stores the reason and the raw document), every sink counts
 * them in its checkpoint document, where outboxctl status shows the count,
 * and the checkpoint moves past them. They were once passed over with one
 * rate-limited log line for all of them, status said nothing, and nothing
 * reached the dead-letter collection.
 */
#include "daemonlib.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SINK(name, route, extra) \
    "  - name: " name "\n    plugin: file\n    route: \"" route "\"\n" extra

static void insert_bad(outbox_t *ob, bson_t *doc) {
    test_insert_raw(outbox_name(ob), doc);
    bson_destroy(doc);
}

static int64_t checkpoint_int(outbox_t *ob, const char *sink, const char *field) {
    char coll[256];
    const bson_t *doc;
    int64_t v = -1;
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    bson_iter_t it;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_NUMBER(&it))
        v = bson_iter_as_int64(&it);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return v;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void malformed_documents_follow_on_error_and_are_counted(void **state) {
    outbox_t *ob = test_outbox("d_malformed");
    char *dir = test_tmpdir("malformed");
    char sinks[2048], path[600], coll[256], hex_a[25], hex_d[25];
    snprintf(sinks, sizeof sinks,
             SINK("stopper", "%s/stop.jsonl", "")
             SINK("skipper", "%s/skip.jsonl", "    on_error: skip\n")
             SINK("dead", "%s/dead.jsonl", "    on_error: deadletter\n"), dir, dir, dir);
    char *config = test_daemon_config(dir, ob, sinks);

    bson_oid_t ev3, a, b, d;
    test_put_order(ob, 1, "k");
    test_put_order(ob, 2, "k");
    ev3 = test_put_order(ob, 3, "k");
    bson_oid_init(&a, NULL);
    bson_oid_to_string(&a, hex_a);
    insert_bad(ob, BCON_NEW("_id", BCON_OID(&a), "type", BCON_INT32(7), "key", BCON_NULL, "data", "{", "}",
                            "created", BCON_DATE_TIME(1700000000000), "v", BCON_INT32(1)));
    insert_bad(ob, BCON_NEW("_id", BCON_UTF8("foreign-1"), "type", BCON_UTF8("order.created"), "data", "{", "}",
                            "created", BCON_DATE_TIME(1700000000000), "v", BCON_INT32(1)));
    bson_oid_init(&b, NULL);
    insert_bad(ob, BCON_NEW("_id", BCON_OID(&b), "type", BCON_UTF8("order.created"), "key", BCON_NULL,
                            "data", "{", "ordernr", BCON_INT32(99), "}", "created", BCON_DATE_TIME(1700000000000),
                            "headers", "{", "retries", BCON_INT32(3), "}", "v", BCON_INT32(1)));
    test_put_order(ob, 4, "k");
    test_put_order(ob, 5, "k");
    test_put_order(ob, 6, "k");
    bson_oid_init(&d, NULL);
    bson_oid_to_string(&d, hex_d);
    insert_bad(ob, BCON_NEW("_id", BCON_OID(&d), "type", BCON_UTF8("order.created"), "data", "[", "]",
                            "created", BCON_DATE_TIME(1700000000000), "v", BCON_INT32(1)));

    test_daemon_t dm;
    test_daemon_start(&dm, config, dir);
    snprintf(path, sizeof path, "%s/skip.jsonl", dir);
    assert_int_equal(test_wait_lines(path, 6, 30000), 6);
    snprintf(path, sizeof path, "%s/dead.jsonl", dir);
    assert_int_equal(test_wait_lines(path, 6, 30000), 6);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    for (int i = 0; i < 300 && (test_count(coll) < 4 || checkpoint_int(ob, "skipper", "malformed") < 4); i++)
        nap_ms(100);
    assert_int_equal(test_daemon_stop(&dm, SIGTERM), 0);

    /* deadletter: the four documents, each with its reason and as it was. */
    assert_int_equal(test_count(coll), 4);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    const bson_t *doc;
    const char *reasons[] = {"type: expected string, got int", "_id: expected objectId",
                             "headers.retries: expected string, got int", "data: expected object, got array"};
    for (int i = 0; i < 4; i++) {
        bson_iter_t it;
        assert_true(mongoc_cursor_next(cur, &doc));
        assert_true(bson_iter_init_find(&it, doc, "sink"));
        assert_string_equal(bson_iter_utf8(&it, NULL), "dead");
        assert_true(bson_iter_init_find(&it, doc, "malformed") && bson_iter_as_bool(&it));
        assert_true(bson_iter_init_find(&it, doc, "error"));
        if (!strstr(bson_iter_utf8(&it, NULL), reasons[i]))
            fail_msg("dead letter %d: \"%s\" does not say \"%s\"", i, bson_iter_utf8(&it, NULL), reasons[i]);
        assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "event._id", &it));
        if (i == 1)
            assert_string_equal(bson_iter_utf8(&it, NULL), "foreign-1");
        assert_true(bson_iter_init_find(&it, doc, "event_id"));
        assert_true(i == 1 ? BSON_ITER_HOLDS_NULL(&it) : BSON_ITER_HOLDS_OID(&it));
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&empty);

    /* skip and deadletter: past everything, four counted. */
    bson_oid_t cp;
    char st[32] = "";
    assert_true(test_checkpoint(ob, "skipper", &cp, st, sizeof st));
    assert_true(bson_oid_equal(&cp, &d));
    assert_true(test_checkpoint(ob, "dead", &cp, st, sizeof st));
    assert_true(bson_oid_equal(&cp, &d));
    assert_int_equal(checkpoint_int(ob, "skipper", "malformed"), 4);
    assert_int_equal(checkpoint_int(ob, "dead", "malformed"), 4);
    /* stop: at the event before the first, stopped, saying why. */
    assert_true(test_checkpoint(ob, "stopper", &cp, st, sizeof st));
    assert_true(bson_oid_equal(&cp, &ev3));
    assert_string_equal(st, "stopped");
    assert_int_equal(checkpoint_int(ob, "stopper", "malformed"), 1);
    snprintf(path, sizeof path, "%s/stop.jsonl", dir);
    assert_int_equal(test_wait_lines(path, 3, 100), 3);

    /* skip: one log line for each, naming it. */
    char *log = test_read_file(dm.log);
    assert_non_null(log);
    char want[200];
    snprintf(want, sizeof want, "event %s in %s.%s is not a valid envelope: type: expected string", hex_a, TEST_DB,
             outbox_name(ob));
    assert_non_null(strstr(log, want));
    if (!strstr(log, "sink skipper: document { \"_id\" : \"foreign-1\" }") || !strstr(log, "(on_error: skip"))
        fail_msg("no skip line for the document without an ObjectId:\n%s", log);
    snprintf(want, sizeof want, "sink skipper: event %s", hex_d);
    assert_non_null(strstr(log, want));
    free(log);

    /* status shows the count. */
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status --json",
             getenv("OUTBOX_TEST_BUILDDIR") ? getenv("OUTBOX_TEST_BUILDDIR") : ".", test_mongodb_uri(), TEST_DB,
             outbox_name(ob));
    assert_int_equal(test_run_command(cmd, &out), 0);
    if (!strstr(out, "\"name\":\"skipper\"") || !strstr(out, "\"malformed\":4,\"last_malformed\":"))
        fail_msg("status --json does not show the count: %s", out);
    free(out);

    test_rmtree(dir);
    free(dir);
    free(config);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_documents_follow_on_error_and_are_counted),
    };
    return TEST_RUN("outboxd_malformed", tests);
}
