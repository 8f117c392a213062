/*
 * test_outboxctl_ops.c - outboxctl's commands for outboxd's state, run as an
 * operator would: status (lag counted in natural order, gaps exit 3, text
 * and --json; the log headroom and LOW mark, N.pending's backlog),
 * checkpoint set/reset (also from a point in time, --time),
 * deadletter list/retry. Checkpoints and dead letters are written
 * directly, as outboxd writes them.
 */
#include "testlib.h"

#include "../outboxd/headroom.h" /* the formula status must apply */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each test starts with no --uri/--db/--outbox (testlib's outboxctl runner). */
static int setup(void **state) {
    (void)state;
    test_outboxctl_use(NULL);
    return 0;
}

static void coll_name(char *out, size_t size, const outbox_t *ob, const char *suffix) {
    snprintf(out, size, "%s%s", outbox_name(ob), suffix);
}

/* test_outbox_drop leaves N.deadletter behind. */
static void drop_all(outbox_t *ob) {
    char name[256];
    mongoc_client_t *client = test_client();
    coll_name(name, sizeof name, ob, ".deadletter");
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* A checkpoint document as outboxd writes it; last_id NULL is null. */
static void put_checkpoint(const outbox_t *ob, const char *sink, const bson_oid_t *last_id,
                           int64_t events, const char *state, const char *message) {
    char name[256];
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(sink));
    if (last_id)
        BSON_APPEND_OID(doc, "last_id", last_id);
    else
        BSON_APPEND_NULL(doc, "last_id");
    BSON_APPEND_INT64(doc, "events", events);
    BSON_APPEND_DATE_TIME(doc, "updated", 1700000000000);
    BSON_APPEND_UTF8(doc, "state", state);
    BSON_APPEND_UTF8(doc, "message", message);
    coll_name(name, sizeof name, ob, ".checkpoints");
    test_insert_raw(name, doc);
    bson_destroy(doc);
}

/* The document with this _id (a string) in N<suffix>, or NULL. */
static bson_t *find_doc(const outbox_t *ob, const char *suffix, const char *id) {
    char name[256];
    const bson_t *doc;
    bson_t *found = NULL;
    mongoc_client_t *client = test_client();
    coll_name(name, sizeof name, ob, suffix);
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc))
        found = bson_copy(doc);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return found;
}

static int64_t count_in(const outbox_t *ob, const char *suffix) {
    char name[256];
    coll_name(name, sizeof name, ob, suffix);
    return test_count(name);
}

/* An envelope as another producer writes it, with a chosen created time. */
static bson_t *envelope(const bson_oid_t *id, int ordernr, const char *key, int64_t created_ms,
                        const char *trace) {
    bson_t *doc = BCON_NEW("_id", BCON_OID(id), "type", BCON_UTF8("order.created"));
    if (key)
        BSON_APPEND_UTF8(doc, "key", key);
    else
        BSON_APPEND_NULL(doc, "key");
    bson_t *data = BCON_NEW("ordernr", BCON_INT32(ordernr), "total", BCON_DOUBLE(10.5));
    BSON_APPEND_DOCUMENT(doc, "data", data);
    bson_destroy(data);
    BSON_APPEND_DATE_TIME(doc, "created", created_ms);
    if (trace) {
        bson_t *headers = BCON_NEW("trace", BCON_UTF8(trace));
        BSON_APPEND_DOCUMENT(doc, "headers", headers);
        bson_destroy(headers);
    }
    BSON_APPEND_INT32(doc, "v", 1);
    return doc;
}

/* The row of sink in status's text table, split into its columns before
 * MESSAGE (for a sink without a stale lease, whose LEASE is one word):
 * SINK STATE CHECKPOINT LAG LAG_S EVENTS MALFORMED UPDATED OWNER TERM
 * LEASE HEADROOM WARN. */
enum { TEXT_COLS = 13, COL_HEADROOM = 11, COL_WARN = 12 };
static void text_row(const char *out, const char *sink, char cols[TEXT_COLS][64]) {
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", sink);
    const char *line = strstr(out, needle);
    if (!line)
        fail_msg("no row for sink %s in:\n%s", sink, out);
    assert_int_equal(sscanf(line + 1, "%63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s", cols[0],
                            cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9],
                            cols[10], cols[11], cols[12]),
                     TEXT_COLS);
}

/* The element of status --json's sinks array named sink. */
static void json_sink(const bson_t *status, const char *sink, bson_t *out) {
    bson_iter_t it, arr;
    assert_true(bson_iter_init_find(&it, status, "sinks") && BSON_ITER_HOLDS_ARRAY(&it));
    bson_iter_recurse(&it, &arr);
    while (bson_iter_next(&arr)) {
        uint32_t len;
        const uint8_t *data;
        bson_iter_t name;
        bson_iter_document(&arr, &len, &data);
        bson_init_static(out, data, len);
        if (bson_iter_init_find(&name, out, "name") && strcmp(bson_iter_utf8(&name, NULL), sink) == 0)
            return;
    }
    fail_msg("no sink %s in status --json", sink);
}

static int64_t json_int(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) || !BSON_ITER_HOLDS_NUMBER(&it))
        fail_msg("%s: not a number", path);
    return bson_iter_as_int64(&it);
}

static bool json_is_null(const bson_t *doc, const char *path) {
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &it) && BSON_ITER_HOLDS_NULL(&it);
}

static const char *json_str(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) || !BSON_ITER_HOLDS_UTF8(&it))
        fail_msg("%s: not a string", path);
    return bson_iter_utf8(&it, NULL);
}

static bool json_bool(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) || !BSON_ITER_HOLDS_BOOL(&it))
        fail_msg("%s: not a bool", path);
    return bson_iter_bool(&it);
}

static double json_double(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) || !BSON_ITER_HOLDS_NUMBER(&it))
        fail_msg("%s: not a number", path);
    return bson_iter_as_double(&it);
}

/* status --json parsed; the caller destroys it. */
static void status_json(bson_t *status, int expect_exit, const char *extra) {
    char *out;
    bson_error_t berr;
    assert_int_equal(test_outboxctl_run(&out, "status --json %s", extra), expect_exit);
    if (!bson_init_from_json(status, out, -1, &berr))
        fail_msg("status --json is not JSON (%s): %s", berr.message, out);
    free(out);
}

static void status_counts_lag_in_natural_order(void **state) {
    char *out, hex[10][25], lost_hex[25] = "0123456789abcdef01234567";
    bson_oid_t ids[10], lost;
    outbox_t *ob = test_outbox("ctl_status");
    test_outboxctl_use(ob);
    const int64_t base = 1700000000000;

    /* Ten events one second apart, inserted in the reverse of their ids'
     * order: counting by comparing ids would get every lag wrong. */
    for (int i = 0; i < 10; i++)
        bson_oid_init(&ids[9 - i], NULL);
    for (int i = 0; i < 10; i++) {
        bson_t *doc = envelope(&ids[i], i + 1, "k", base + i * 1000, NULL);
        test_insert_raw(outbox_name(ob), doc);
        bson_destroy(doc);
        bson_oid_to_string(&ids[i], hex[i]);
    }
    bson_oid_init_from_string(&lost, lost_hex);
    put_checkpoint(ob, "at3", &ids[2], 3, "running", "");
    put_checkpoint(ob, "done", &ids[9], 10, "running", "");
    put_checkpoint(ob, "fresh", NULL, 0, "running", "");
    /* Never in the log: outboxd has not noticed, its state says running. */
    put_checkpoint(ob, "lost", &lost, 5, "running", "");

    assert_int_equal(test_outboxctl_run(&out, "status"), 3);
    assert_non_null(strstr(out, ": 10 events"));
    assert_non_null(strstr(out, hex[0]));
    assert_non_null(strstr(out, hex[9]));
    char cols[TEXT_COLS][64];
    text_row(out, "at3", cols);
    assert_string_equal(cols[1], "running");
    assert_string_equal(cols[2], hex[2]);
    assert_string_equal(cols[3], "7");
    assert_non_null(strstr(strstr(out, "\nat3 "), " 7.000 "));
    text_row(out, "done", cols);
    assert_string_equal(cols[3], "0");
    text_row(out, "fresh", cols);
    assert_string_equal(cols[2], "(start)");
    assert_string_equal(cols[3], "10");
    text_row(out, "lost", cols);
    assert_string_equal(cols[1], "gap");
    assert_string_equal(cols[2], lost_hex);
    assert_string_equal(cols[3], "gap");
    free(out);

    assert_int_equal(test_outboxctl_run(&out, "status --json"), 3);
    bson_t status, sink;
    bson_error_t berr;
    if (!bson_init_from_json(&status, out, -1, &berr))
        fail_msg("status --json is not JSON (%s): %s", berr.message, out);
    assert_true(json_bool(&status, "gap"));
    assert_int_equal(json_int(&status, "log.events"), 10);
    assert_string_equal(json_str(&status, "log.oldest.id"), hex[0]);
    assert_string_equal(json_str(&status, "log.newest.id"), hex[9]);
    assert_string_equal(json_str(&status, "log.oldest.created"), "2023-11-14T22:13:20.000Z");
    json_sink(&status, "at3", &sink);
    assert_false(json_bool(&sink, "gap"));
    assert_string_equal(json_str(&sink, "state"), "running");
    assert_string_equal(json_str(&sink, "checkpoint"), hex[2]);
    assert_int_equal(json_int(&sink, "lag_events"), 7);
    assert_int_equal(json_int(&sink, "lag_seconds"), 7);
    assert_int_equal(json_int(&sink, "events"), 3);
    assert_string_equal(json_str(&sink, "updated"), "2023-11-14T22:13:20.000Z");
    json_sink(&status, "done", &sink);
    assert_int_equal(json_int(&sink, "lag_events"), 0);
    assert_int_equal(json_int(&sink, "lag_seconds"), 0);
    json_sink(&status, "fresh", &sink);
    assert_true(json_is_null(&sink, "checkpoint"));
    assert_int_equal(json_int(&sink, "lag_events"), 10);
    assert_int_equal(json_int(&sink, "lag_seconds"), 9); /* from the oldest event */
    json_sink(&status, "lost", &sink);
    assert_true(json_bool(&sink, "gap"));
    assert_string_equal(json_str(&sink, "state"), "gap");
    assert_true(json_is_null(&sink, "lag_events"));
    assert_true(json_is_null(&sink, "lag_seconds"));
    bson_destroy(&status);
    free(out);

    /* Without the lost sink nothing is in a gap: exit 0. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset lost"), 0);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    text_row(out, "lost", cols);
    assert_string_equal(cols[1], "running");
    assert_string_equal(cols[3], "10");
    free(out);
    drop_all(ob);
}

static void status_of_a_missing_outbox_fails(void **state) {
    char *out;
    outbox_t *ob = test_outbox("ctl_status_none");
    test_outboxctl_use(ob);
    drop_all(ob);
    assert_int_equal(test_outboxctl_run(&out, "status"), 1);
    assert_non_null(strstr(out, "does not exist"));
    free(out);
}

static void checkpoint_set_and_reset(void **state) {
    char *out, hex[5][25], lost_hex[25] = "0123456789abcdef01234567";
    bson_oid_t ids[5], lost, got;
    bson_iter_t it;
    outbox_t *ob = test_outbox("ctl_checkpoint");
    test_outboxctl_use(ob);
    for (int i = 0; i < 5; i++) {
        ids[i] = test_put_order(ob, i + 1, "k");
        bson_oid_to_string(&ids[i], hex[i]);
    }
    bson_oid_init_from_string(&lost, lost_hex);

    /* A sink with no checkpoint is refused (a typo must not create a
     * checkpoint for a sink that does not exist) ... */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s1 %s", hex[1]), 1);
    assert_non_null(strstr(out, "sink s1 has no checkpoint"));
    assert_non_null(strstr(out, "--create"));
    free(out);
    assert_null(find_doc(ob, ".checkpoints", "s1"));
    /* ... unless --create: then it gets one. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s1 %s --create", hex[1]), 0);
    assert_non_null(strstr(out, "(none) -> "));
    assert_non_null(strstr(out, hex[1]));
    free(out);
    bson_t *doc = find_doc(ob, ".checkpoints", "s1");
    assert_non_null(doc);
    assert_true(bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it));
    assert_true(bson_oid_equal(bson_iter_oid(&it), &ids[1]));
    assert_true(bson_iter_init_find(&it, doc, "events") && bson_iter_as_int64(&it) == 0);
    bson_destroy(doc);

    /* A sink outboxd stopped at a gap: moved, running, events kept. */
    put_checkpoint(ob, "g", &lost, 42, "gap", "gap in the log");
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set g %s", hex[3]), 0);
    assert_non_null(strstr(out, lost_hex));
    assert_non_null(strstr(out, hex[3]));
    assert_non_null(strstr(out, "state gap -> running"));
    free(out);
    doc = find_doc(ob, ".checkpoints", "g");
    assert_non_null(doc);
    assert_true(bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it));
    assert_true(bson_oid_equal(bson_iter_oid(&it), &ids[3]));
    assert_true(bson_iter_init_find(&it, doc, "state"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "running");
    assert_true(bson_iter_init_find(&it, doc, "message"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "set by outboxctl");
    assert_true(bson_iter_init_find(&it, doc, "events") && bson_iter_as_int64(&it) == 42);
    bson_destroy(doc);
    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    char cols[TEXT_COLS][64];
    text_row(out, "g", cols);
    assert_string_equal(cols[3], "1");
    free(out);

    /* An id that is not in the log: exit 1, named, nothing changed. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set g %s", lost_hex), 1);
    assert_non_null(strstr(out, lost_hex));
    assert_non_null(strstr(out, outbox_name(ob)));
    free(out);
    doc = find_doc(ob, ".checkpoints", "g");
    assert_true(bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it));
    bson_oid_copy(bson_iter_oid(&it), &got);
    assert_true(bson_oid_equal(&got, &ids[3]));
    bson_destroy(doc);
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set g nothex"), 2);
    free(out);

    /* reset: back to the oldest event, events kept. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset g"), 0);
    assert_non_null(strstr(out, "-> (start)"));
    free(out);
    doc = find_doc(ob, ".checkpoints", "g");
    assert_true(bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_NULL(&it));
    assert_true(bson_iter_init_find(&it, doc, "state"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "running");
    assert_true(bson_iter_init_find(&it, doc, "message"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "reset by outboxctl");
    assert_true(bson_iter_init_find(&it, doc, "events") && bson_iter_as_int64(&it) == 42);
    bson_destroy(doc);
    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    text_row(out, "g", cols);
    assert_string_equal(cols[2], "(start)");
    assert_string_equal(cols[3], "5");
    free(out);

    /* An unknown sink is refused, with the known ones, and not created. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset nosuch"), 1);
    assert_non_null(strstr(out, "nosuch"));
    assert_non_null(strstr(out, "known sinks: g, s1"));
    free(out);
    assert_null(find_doc(ob, ".checkpoints", "nosuch"));
    assert_int_equal(count_in(ob, ".checkpoints"), 2);

    assert_int_equal(test_outboxctl_run(&out, "checkpoint"), 2);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset"), 2);
    free(out);
    drop_all(ob);
}

/* last_id of sink's checkpoint: true and *id for an ObjectId, false for
 * null ((start)); fails the test without a document. */
static bool checkpoint_last_id(const outbox_t *ob, const char *sink, bson_oid_t *id) {
    bson_iter_t it;
    bson_t *doc = find_doc(ob, ".checkpoints", sink);
    if (!doc)
        fail_msg("sink %s has no checkpoint", sink);
    assert_true(bson_iter_init_find(&it, doc, "last_id"));
    bool has = BSON_ITER_HOLDS_OID(&it);
    if (has)
        bson_oid_copy(bson_iter_oid(&it), id);
    else
        assert_true(BSON_ITER_HOLDS_NULL(&it));
    bson_destroy(doc);
    return has;
}

static void assert_checkpoint_is(const outbox_t *ob, const char *sink, const bson_oid_t *want) {
    bson_oid_t got;
    char got_hex[25] = "(start)", want_hex[25] = "(start)";
    bool has = checkpoint_last_id(ob, sink, &got);
    if (has)
        bson_oid_to_string(&got, got_hex);
    if (want)
        bson_oid_to_string(want, want_hex);
    if (has != (want != NULL) || (has && !bson_oid_equal(&got, want)))
        fail_msg("checkpoint of %s is %s, expected %s", sink, got_hex, want_hex);
}

/* checkpoint set SINK --time T: the checkpoint is the event just before the
 * first event in natural order created at or after T, so the sink
 * republishes every event created from T on. */
static void checkpoint_set_from_a_time(void **state) {
    char *out, hex[6][25];
    bson_oid_t ids[6];
    outbox_t *ob = test_outbox("ctl_cp_time");
    test_outboxctl_use(ob);
    const int64_t base = 1796464800000; /* 2026-12-05T10:00:00Z */
    /* In natural order; the fourth producer's clock lags, so created does
     * not grow along the log: e3 (10:00:01.5) comes after e2 (10:00:02). */
    const int64_t offsets[6] = {0, 1000, 2000, 1500, 3000, 4000};
    for (int i = 0; i < 6; i++) {
        bson_oid_init(&ids[i], NULL);
        bson_oid_to_string(&ids[i], hex[i]);
        bson_t *doc = envelope(&ids[i], i + 1, "k", base + offsets[i], NULL);
        test_insert_raw(outbox_name(ob), doc);
        bson_destroy(doc);
    }
    put_checkpoint(ob, "s", &ids[5], 6, "running", "");

    /* Exactly e2's created: from e2 on, the checkpoint is e1. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T10:00:02Z"), 0);
    assert_non_null(strstr(out, "4 events to republish"));
    assert_non_null(strstr(out, hex[2]));
    free(out);
    assert_checkpoint_is(ob, "s", &ids[1]);
    /* 10:00:01.7: e3 (created 10:00:01.5) is the last event created before
     * it, but e2 (10:00:02), which comes before e3, was created after it:
     * the checkpoint stays before e2, and e3 is republished too. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T10:00:01.700Z"), 0);
    free(out);
    assert_checkpoint_is(ob, "s", &ids[1]);
    /* An offset, and a fraction: 11:00:02.5+01:00 is 10:00:02.5Z, after e2
     * and e3, before e4. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T11:00:02.5+01:00"), 0);
    free(out);
    assert_checkpoint_is(ob, "s", &ids[3]);
    /* Finer than the millisecond: e2 at 10:00:02.000 is before .0005. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T10:00:02.0005Z"), 0);
    free(out);
    assert_checkpoint_is(ob, "s", &ids[3]);
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T05:00:03-05:00"), 0);
    free(out);
    assert_checkpoint_is(ob, "s", &ids[3]);

    /* The oldest event's created exactly: the whole log, (start). */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T10:00:00.000Z"), 0);
    assert_non_null(strstr(out, "-> (start)"));
    assert_non_null(strstr(out, "6 events to republish"));
    free(out);
    assert_checkpoint_is(ob, "s", NULL);
    /* After the newest: at the newest, nothing to republish, said so. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T10:00:04.001Z"), 0);
    assert_non_null(strstr(out, "nothing to republish"));
    free(out);
    assert_checkpoint_is(ob, "s", &ids[5]);
    bson_t *doc = find_doc(ob, ".checkpoints", "s");
    assert_string_equal(json_str(doc, "message"), "set by outboxctl --time 2026-12-05T10:00:04.001Z");
    assert_string_equal(json_str(doc, "state"), "running");
    assert_int_equal(json_int(doc, "events"), 6);
    bson_destroy(doc);

    /* Older than the oldest event: refused, naming both times; nothing
     * changed. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time 2026-12-05T09:59:59.999Z"), 1);
    assert_non_null(strstr(out, "--time 2026-12-05T09:59:59.999Z is older than the oldest event"));
    assert_non_null(strstr(out, hex[0]));
    assert_non_null(strstr(out, "created 2026-12-05T10:00:00.000Z"));
    assert_non_null(strstr(out, "not changed"));
    free(out);
    assert_checkpoint_is(ob, "s", &ids[5]);

    /* Malformed times: exit 2, the argument named. */
    const char *bad[] = {"2026-12-05", "2026-12-05T10:00:00", "2026-02-30T10:00:00Z", "2026-12-05T24:00:00Z",
                         "2026-12-05T10:00:00.Z", "2026-12-05T10:00:00+1", "yesterday", "2026-12-05T10:00:00Zx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char needle[80];
        assert_int_equal(test_outboxctl_run(&out, "checkpoint set s --time '%s'", bad[i]), 2);
        snprintf(needle, sizeof needle, "--time %s: not an ISO-8601 time", bad[i]);
        if (!strstr(out, needle))
            fail_msg("no \"%s\" in: %s", needle, out);
        free(out);
    }
    assert_checkpoint_is(ob, "s", &ids[5]);
    /* An id and a time, or a time for reset: bad usage. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set s %s --time 2026-12-05T10:00:02Z", hex[1]), 2);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset s --time 2026-12-05T10:00:02Z"), 2);
    free(out);

    /* As with an id: a sink with no checkpoint needs --create. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set new --time 2026-12-05T10:00:03Z"), 1);
    assert_non_null(strstr(out, "--create"));
    free(out);
    assert_null(find_doc(ob, ".checkpoints", "new"));
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set new --time 2026-12-05T10:00:03Z --create"), 0);
    free(out);
    assert_checkpoint_is(ob, "new", &ids[3]);
    drop_all(ob);
}

static void put_events(outbox_t *ob, bson_oid_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        bson_oid_init(&ids[i], NULL);
        bson_t *doc = envelope(&ids[i], i + 1, "k", 1700000000000 + i * 1000, NULL);
        test_insert_raw(outbox_name(ob), doc);
        bson_destroy(doc);
    }
}

/* status: each sink's log headroom (1 - backlog / capped size, by
 * documents and by bytes at the log's average document size, whichever is
 * less), LOW under --warn-headroom; and N.pending's backlog. */
static void status_headroom_and_pending(void **state) {
    char *out, cols[TEXT_COLS][64], name[256];
    bson_oid_t ids[50], lost;
    bson_t status, sink;
    outbox_t *ob = test_outbox_capped("ctl_headroom", "67108864", "100");
    test_outboxctl_use(ob);
    put_events(ob, ids, 50);
    put_checkpoint(ob, "done", &ids[49], 50, "running", "");
    put_checkpoint(ob, "behind", &ids[9], 10, "running", ""); /* 40 to publish */
    put_checkpoint(ob, "fresh", NULL, 0, "running", "");      /* 50 */

    /* 40 of 100 documents waiting: by documents about 0.6 (headroom.h:
     * of the places the checkpoint event does not take, those the backlog
     * does not fill). By bytes, 40 events in 64 MiB, it is above 0.99
     * even at FerretDB's avgObjSize, which is its storage size over the
     * count (measured from 573 to 10,590 bytes for these events). (start)
     * with 50 events: the oldest stands for the checkpoint event, 49
     * waiting, about 0.5. Nothing waiting: 1. */
    status_json(&status, 0, "");
    int64_t cap = json_int(&status, "log.capacity.bytes");
    double avg = json_double(&status, "log.capacity.avg_event_bytes");
    double behind = outboxd_headroom_ratio(40, avg, cap, 100), fresh = outboxd_headroom_ratio(49, avg, cap, 100);
    assert_true(behind > 0.58 && behind < 0.61);
    assert_true(fresh > 0.49 && fresh < 0.52);
    assert_int_equal(json_int(&status, "log.capacity.events"), 100);
    assert_true(json_double(&status, "warn_headroom") == 0.2);
    json_sink(&status, "done", &sink);
    assert_true(json_double(&sink, "headroom") == 1.0);
    assert_false(json_bool(&sink, "headroom_low"));
    json_sink(&status, "behind", &sink);
    assert_float_equal(json_double(&sink, "headroom"), behind, 1e-9);
    assert_false(json_bool(&sink, "headroom_low"));
    json_sink(&status, "fresh", &sink);
    assert_float_equal(json_double(&sink, "headroom"), fresh, 1e-9);
    assert_false(json_bool(&sink, "headroom_low"));
    /* Nothing pending yet. */
    assert_int_equal(json_int(&status, "log.pending.events"), 0);
    assert_true(json_is_null(&status, "log.pending.oldest_age_seconds"));
    bson_destroy(&status);

    /* --warn-headroom 0.55: the sink at 0.5 is LOW, the one at 0.6 not. */
    status_json(&status, 0, "--warn-headroom 0.55");
    json_sink(&status, "fresh", &sink);
    assert_true(json_bool(&sink, "headroom_low"));
    json_sink(&status, "behind", &sink);
    assert_false(json_bool(&sink, "headroom_low"));
    bson_destroy(&status);
    assert_int_equal(test_outboxctl_run(&out, "status --warn-headroom 0.55"), 0);
    char cell[16];
    text_row(out, "fresh", cols);
    snprintf(cell, sizeof cell, "%.2f", floor(fresh * 100.0) / 100.0);
    assert_string_equal(cols[COL_HEADROOM], cell);
    assert_string_equal(cols[COL_WARN], "LOW");
    text_row(out, "behind", cols);
    snprintf(cell, sizeof cell, "%.2f", floor(behind * 100.0) / 100.0);
    assert_string_equal(cols[COL_HEADROOM], cell);
    assert_string_equal(cols[COL_WARN], "-");
    text_row(out, "done", cols);
    assert_string_equal(cols[COL_HEADROOM], "1.00");
    assert_string_equal(cols[COL_WARN], "-");
    free(out);

    /* A sink in a gap has no headroom left: 0, LOW (the formula's answer). */
    bson_oid_init_from_string(&lost, "0123456789abcdef01234567");
    put_checkpoint(ob, "lost", &lost, 5, "running", "");
    status_json(&status, 3, "");
    json_sink(&status, "lost", &sink);
    assert_true(json_double(&sink, "headroom") == 0.0);
    assert_true(json_bool(&sink, "headroom_low"));
    bson_destroy(&status);
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset lost"), 0);
    free(out);

    /* Transactional puts not yet promoted: counted, the oldest's age. */
    coll_name(name, sizeof name, ob, ".pending");
    for (int i = 0; i < 2; i++) {
        bson_oid_t id;
        bson_oid_init(&id, NULL);
        bson_t *doc = envelope(&id, i + 1, "k", (int64_t)time(NULL) * 1000 - (i ? 5000 : 60000), NULL);
        test_insert_raw(name, doc);
        bson_destroy(doc);
    }
    status_json(&status, 0, "");
    assert_int_equal(json_int(&status, "log.pending.events"), 2);
    double age = json_double(&status, "log.pending.oldest_age_seconds");
    if (age < 59.0 || age > 120.0)
        fail_msg("oldest pending event %.3f s old, expected about 60", age);
    bson_destroy(&status);
    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    assert_non_null(strstr(out, ".pending: 2 events, the oldest put "));
    free(out);

    /* A bad threshold, or one for another command: bad usage. */
    const char *bad[] = {"1.5", "-0.1", "x", "0.2x", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(test_outboxctl_run(&out, "status --warn-headroom %s", bad[i]), 2);
        assert_non_null(strstr(out, "--warn-headroom"));
        free(out);
    }
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset done --warn-headroom 0.3"), 2);
    free(out);
    drop_all(ob);

    /* By bytes: a log with no document limit, 40 events waiting. */
    ob = test_outbox_capped("ctl_headroom_bytes", "1048576", "0");
    test_outboxctl_use(ob);
    put_events(ob, ids, 50);
    put_checkpoint(ob, "behind", &ids[9], 10, "running", "");
    status_json(&status, 0, "");
    assert_true(json_is_null(&status, "log.capacity.events"));
    cap = json_int(&status, "log.capacity.bytes");
    avg = json_double(&status, "log.capacity.avg_event_bytes");
    assert_true(cap >= 1048576 && cap < 1048576 + 4096);
    assert_true(avg > 0);
    json_sink(&status, "behind", &sink);
    double headroom = json_double(&sink, "headroom");
    assert_float_equal(headroom, outboxd_headroom_ratio(40, avg, cap, 0), 1e-9);
    assert_true(headroom < 1.0);
    bson_destroy(&status);
    drop_all(ob);
}

/* A dead letter as outboxd writes it; returns its _id. */
static bson_oid_t put_dead_letter(const outbox_t *ob, const char *sink, const bson_t *event, const char *error) {
    char name[256];
    bson_oid_t id, event_id;
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, event, "_id"));
    bson_oid_copy(bson_iter_oid(&it), &event_id);
    bson_oid_init(&id, NULL);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "sink", BCON_UTF8(sink), "event_id", BCON_OID(&event_id),
                           "error", BCON_UTF8(error), "at", BCON_DATE_TIME(1700000000000), "event",
                           BCON_DOCUMENT(event));
    coll_name(name, sizeof name, ob, ".deadletter");
    test_insert_raw(name, doc);
    bson_destroy(doc);
    return id;
}

/* Reads the whole log in order; returns how many events, copies in docs. */
static int read_log(outbox_t *ob, bson_t **docs, int max) {
    outbox_error_t err;
    const outbox_event_t *ev;
    int n = 0;
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_non_null(tail);
    while (n < max && outbox_tail_next(tail, 500, &ev, &err) == OUTBOX_OK)
        docs[n++] = bson_copy(outbox_event_document(ev));
    outbox_tail_destroy(tail);
    return n;
}

/* The event in docs that retried original, checked against it. */
static void check_retried(bson_t **docs, int n, const bson_t *original, const char *trace) {
    bson_iter_t it;
    bson_oid_t orig_id;
    char orig_hex[25];
    assert_true(bson_iter_init_find(&it, original, "_id"));
    bson_oid_copy(bson_iter_oid(&it), &orig_id);
    bson_oid_to_string(&orig_id, orig_hex);
    for (int i = 0; i < n; i++) {
        if (!bson_iter_init(&it, docs[i]) || !bson_iter_find_descendant(&it, "headers.outbox-retry-of", &it) ||
            strcmp(bson_iter_utf8(&it, NULL), orig_hex) != 0)
            continue;
        assert_true(bson_iter_init_find(&it, docs[i], "_id"));
        assert_false(bson_oid_equal(bson_iter_oid(&it), &orig_id));
        assert_string_equal(json_str(docs[i], "type"), json_str(original, "type"));
        assert_int_equal(json_int(docs[i], "data.ordernr"), json_int(original, "data.ordernr"));
        if (json_is_null(original, "key"))
            assert_true(json_is_null(docs[i], "key"));
        else
            assert_string_equal(json_str(docs[i], "key"), json_str(original, "key"));
        if (trace)
            assert_string_equal(json_str(docs[i], "headers.trace"), trace);
        assert_int_equal(json_int(docs[i], "v"), 1);
        assert_true(bson_iter_init_find(&it, docs[i], "created") && BSON_ITER_HOLDS_DATE_TIME(&it));
        assert_true(bson_iter_date_time(&it) > 1700000000000 + 3 * 1000);
        return;
    }
    fail_msg("no event retries %s", orig_hex);
}

static void deadletter_list_and_retry(void **state) {
    char *out, dl_hex[3][25], ev_hex[3][25];
    bson_oid_t ev_ids[3], dl_ids[3];
    bson_t *events[3], *docs[16];
    outbox_t *ob = test_outbox("ctl_deadletter");
    test_outboxctl_use(ob);
    const char *sinks[3] = {"kafka", "kafka", "redis"};
    const char *keys[3] = {"order-1", NULL, "order-3"};
    for (int i = 0; i < 3; i++) {
        bson_oid_init(&ev_ids[i], NULL);
        bson_oid_to_string(&ev_ids[i], ev_hex[i]);
        events[i] = envelope(&ev_ids[i], i + 1, keys[i], 1700000000000 + i * 1000, i == 0 ? "t1" : NULL);
        test_insert_raw(outbox_name(ob), events[i]);
    }
    for (int i = 0; i < 3; i++) {
        char error[64];
        snprintf(error, sizeof error, "broker said no %d", i + 1);
        dl_ids[i] = put_dead_letter(ob, sinks[i], events[i], error);
        bson_oid_to_string(&dl_ids[i], dl_hex[i]);
    }

    /* list: one object per line, oldest first, with the documented fields. */
    assert_int_equal(test_outboxctl_run(&out, "deadletter list"), 0);
    char *line = out;
    for (int i = 0; i < 3; i++) {
        bson_t obj;
        bson_error_t berr;
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        if (!bson_init_from_json(&obj, line, -1, &berr))
            fail_msg("not JSON (%s): %s", berr.message, line);
        assert_string_equal(json_str(&obj, "id"), dl_hex[i]);
        assert_string_equal(json_str(&obj, "sink"), sinks[i]);
        assert_string_equal(json_str(&obj, "event_id"), ev_hex[i]);
        assert_non_null(strstr(json_str(&obj, "error"), "broker said no"));
        assert_string_equal(json_str(&obj, "at"), "2023-11-14T22:13:20.000Z");
        assert_string_equal(json_str(&obj, "type"), "order.created");
        if (keys[i])
            assert_string_equal(json_str(&obj, "key"), keys[i]);
        else
            assert_true(json_is_null(&obj, "key"));
        assert_int_equal(json_int(&obj, "data.ordernr"), i + 1);
        bson_destroy(&obj);
        line = nl + 1;
    }
    assert_string_equal(line, "");
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "deadletter list --sink redis"), 0);
    assert_non_null(strstr(out, dl_hex[2]));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "deadletter list --limit 2"), 0);
    assert_non_null(strstr(out, dl_hex[1]));
    assert_null(strstr(out, dl_hex[2]));
    free(out);

    /* retry --sink: only kafka's, at the end of the log as new events. */
    assert_int_equal(test_outboxctl_run(&out, "deadletter retry --sink kafka"), 0);
    assert_non_null(strstr(out, "2 events retried"));
    free(out);
    assert_int_equal(count_in(ob, ".deadletter"), 1);
    int n = read_log(ob, docs, 16);
    assert_int_equal(n, 5);
    check_retried(docs + 3, 2, events[0], "t1");
    check_retried(docs + 3, 2, events[1], NULL);
    for (int i = 0; i < n; i++)
        bson_destroy(docs[i]);
    assert_int_equal(test_outboxctl_run(&out, "deadletter list"), 0);
    assert_non_null(strstr(out, dl_hex[2]));
    assert_null(strstr(out, dl_hex[0]));
    free(out);

    /* retry --id: an unknown one fails; the known one goes. */
    assert_int_equal(test_outboxctl_run(&out, "deadletter retry --id %s", dl_hex[0]), 1);
    assert_non_null(strstr(out, dl_hex[0]));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "deadletter retry --id nothex"), 2);
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "deadletter retry --id %s", dl_hex[2]), 0);
    assert_non_null(strstr(out, "1 events retried"));
    free(out);
    assert_int_equal(count_in(ob, ".deadletter"), 0);
    n = read_log(ob, docs, 16);
    assert_int_equal(n, 6);
    check_retried(docs + 5, 1, events[2], NULL);
    for (int i = 0; i < n; i++)
        bson_destroy(docs[i]);

    /* Nothing left: retry has nothing to do, and says so. */
    assert_int_equal(test_outboxctl_run(&out, "deadletter retry"), 0);
    assert_non_null(strstr(out, "0 events retried"));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "deadletter frob"), 2);
    free(out);
    for (int i = 0; i < 3; i++)
        bson_destroy(events[i]);
    drop_all(ob);
}

static void usage_documents_the_commands(void **state) {
    char *out;
    assert_int_equal(test_outboxctl_run(&out, "--help"), 0);
    assert_non_null(strstr(out, "status [--json]"));
    assert_non_null(strstr(out, "checkpoint set SINK ID"));
    assert_non_null(strstr(out, "checkpoint reset SINK"));
    assert_non_null(strstr(out, "deadletter list"));
    assert_non_null(strstr(out, "deadletter retry"));
    assert_non_null(strstr(out, "outbox-retry-of"));
    assert_non_null(strstr(out, "lag_events"));
    assert_non_null(strstr(out, "checkpoint set SINK --time"));
    assert_non_null(strstr(out, "--warn-headroom"));
    assert_non_null(strstr(out, "headroom_low"));
    assert_non_null(strstr(out, "oldest_age_seconds"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(status_counts_lag_in_natural_order, setup),
        cmocka_unit_test_setup(status_of_a_missing_outbox_fails, setup),
        cmocka_unit_test_setup(checkpoint_set_and_reset, setup),
        cmocka_unit_test_setup(checkpoint_set_from_a_time, setup),
        cmocka_unit_test_setup(status_headroom_and_pending, setup),
        cmocka_unit_test_setup(deadletter_list_and_retry, setup),
        cmocka_unit_test_setup(usage_documents_the_commands, setup),
    };
    return TEST_RUN("outboxctl_ops", tests);
}
