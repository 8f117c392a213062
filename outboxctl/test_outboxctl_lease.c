/*
 * test_outboxctl_lease.c - what an operator reads and does about outboxd's
 * leases (issue 14, docs/leases.md section 5) with the real outboxctl and
 * the harness's MongoDB: status shows each sink's owner, term and lease age
 * (text and --json), the promoter and the live outboxd runs; `lease
 * release SINK` writes the request outboxd looks for, under the _id
 * outboxd's own lease_doc.c builds, and its exit codes tell "nobody holds
 * it" from "no such sink". Claims are inserted by hand, as outboxd's lease
 * manager writes them, so no daemon runs.
 */
#include "testlib.h"

#include "lease_doc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Each test starts with no --uri/--db/--outbox (testlib's outboxctl runner). */
static int setup(void **state) {
    (void)state;
    test_outboxctl_use(NULL);
    return 0;
}

static void leases_name(char *out, size_t size, const outbox_t *ob) {
    snprintf(out, size, "%s%s", outbox_name(ob), OUTBOXD_LEASES_SUFFIX);
}

/* test_outbox_drop leaves N.leases behind. */
static void drop_all(outbox_t *ob) {
    char name[256];
    mongoc_client_t *client = test_client();
    leases_name(name, sizeof name, ob);
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_checkpoint(const outbox_t *ob, const char *sink) {
    char name[256];
    bson_t *doc = BCON_NEW("_id", BCON_UTF8(sink), "last_id", BCON_NULL, "events", BCON_INT64(0), "state",
                           BCON_UTF8("running"), "message", BCON_UTF8(""));
    snprintf(name, sizeof name, "%s.checkpoints", outbox_name(ob));
    test_insert_raw(name, doc);
    bson_destroy(doc);
}

/* A claim as outboxd's lease manager inserts it (docs/leases.md 1.2),
 * last renewed age_ms ago by the test host's clock (the server's, here). */
static void put_claim(const outbox_t *ob, const char *lease, int64_t term, const char *owner, int64_t ttl_ms,
                      int64_t age_ms, bool released) {
    char name[256], run_id[128];
    bson_t doc;
    snprintf(run_id, sizeof run_id, "%s:4711:9f3a0c1e", owner);
    outboxd_lease_claim_id(&doc, lease, term);
    BSON_APPEND_UTF8(&doc, "owner", owner);
    BSON_APPEND_UTF8(&doc, "run", run_id);
    BSON_APPEND_UTF8(&doc, "host", owner);
    BSON_APPEND_INT32(&doc, "pid", 4711);
    BSON_APPEND_INT64(&doc, "ttl_ms", ttl_ms);
    BSON_APPEND_INT64(&doc, "renew_ms", ttl_ms / 4);
    BSON_APPEND_INT64(&doc, "renewals", 3);
    BSON_APPEND_DATE_TIME(&doc, "acquired", wall_ms() - age_ms - 1000);
    BSON_APPEND_DATE_TIME(&doc, "renewed", wall_ms() - age_ms);
    BSON_APPEND_BOOL(&doc, "released", released);
    leases_name(name, sizeof name, ob);
    test_insert_raw(name, &doc);
    bson_destroy(&doc);
}

static void put_presence(const outbox_t *ob, const char *instance, int64_t sinks_held, int64_t age_ms) {
    char name[256], run_id[128];
    bson_t doc;
    snprintf(run_id, sizeof run_id, "%s:4711:9f3a0c1e", instance);
    outboxd_lease_presence_id(&doc, instance, run_id);
    BSON_APPEND_INT64(&doc, "renewals", 7);
    BSON_APPEND_DATE_TIME(&doc, "renewed", wall_ms() - age_ms);
    BSON_APPEND_INT64(&doc, "ttl_ms", 600000);
    BSON_APPEND_INT64(&doc, "sinks_held", sinks_held);
    leases_name(name, sizeof name, ob);
    test_insert_raw(name, &doc);
    bson_destroy(&doc);
}

/* The text row of sink, split at blanks (no column here is empty). */
static int text_row(const char *out, const char *sink, char cols[12][96]) {
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", sink);
    const char *line = strstr(out, needle);
    if (!line)
        fail_msg("no row for sink %s in:\n%s", sink, out);
    return sscanf(line + 1, "%95s %95s %95s %95s %95s %95s %95s %95s %95s %95s %95s %95s", cols[0], cols[1],
                  cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10], cols[11]);
}

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

static bool json_has(const bson_t *doc, const char *path, bson_iter_t *it) {
    return bson_iter_init(it, doc) && bson_iter_find_descendant(it, path, it);
}

static int64_t json_int(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!json_has(doc, path, &it) || !BSON_ITER_HOLDS_NUMBER(&it))
        fail_msg("%s: not a number", path);
    return bson_iter_as_int64(&it);
}

static bool json_is_null(const bson_t *doc, const char *path) {
    bson_iter_t it;
    return json_has(doc, path, &it) && BSON_ITER_HOLDS_NULL(&it);
}

static const char *json_str(const bson_t *doc, const char *path) {
    bson_iter_t it;
    if (!json_has(doc, path, &it) || !BSON_ITER_HOLDS_UTF8(&it))
        fail_msg("%s: not a string", path);
    return bson_iter_utf8(&it, NULL);
}

/* Four sinks, one of each lease state, the promoter's claim and two
 * presences (one live, one an hour old). */
static outbox_t *ha_outbox(const char *label) {
    outbox_t *ob = test_outbox(label);
    test_outboxctl_use(ob);
    for (const char *const *s = (const char *const[]){"held", "gone", "free", "stale", NULL}; *s; s++)
        put_checkpoint(ob, *s);
    /* held: term 1 released by node-b, term 2 held by node-a (renewed
     * just now; its TTL of ten minutes outlasts any slow test host). */
    put_claim(ob, "sink:held", 1, "node-b", 600000, 5000, true);
    put_claim(ob, "sink:held", 2, "node-a", 600000, 0, false);
    put_claim(ob, "sink:gone", 3, "node-b", 600000, 0, true);
    put_claim(ob, "sink:stale", 5, "node-b", 10000, 60000, false);
    put_claim(ob, "promoter", 4, "node-b", 600000, 0, false);
    put_presence(ob, "node-a", 1, 0);
    put_presence(ob, "node-c", 2, 3600 * 1000);
    return ob;
}

static void status_shows_each_sinks_owner_term_and_lease(void **state) {
    char *out, cols[12][96];
    outbox_t *ob = ha_outbox("ctl_lease_status");

    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    const char *head = strstr(out, "\nSINK ");
    assert_non_null(head);
    assert_non_null(strstr(head, " OWNER "));
    assert_non_null(strstr(head, " TERM "));
    assert_non_null(strstr(head, " LEASE "));
    /* SINK STATE CHECKPOINT LAG LAG_S EVENTS MALFORMED UPDATED OWNER TERM LEASE [stale] */
    assert_true(text_row(out, "held", cols) >= 11);
    assert_string_equal(cols[8], "node-a");
    assert_string_equal(cols[9], "2");
    assert_non_null(strchr(cols[10], 's')); /* an age: "0.0s" */
    assert_true(text_row(out, "gone", cols) >= 11);
    assert_string_equal(cols[8], "-");
    assert_string_equal(cols[9], "3");
    assert_string_equal(cols[10], "released");
    assert_true(text_row(out, "free", cols) >= 11);
    assert_string_equal(cols[8], "-");
    assert_string_equal(cols[9], "-");
    assert_string_equal(cols[10], "-");
    assert_int_equal(text_row(out, "stale", cols), 12);
    assert_string_equal(cols[8], "node-b");
    assert_string_equal(cols[9], "5");
    assert_string_equal(cols[11], "stale");
    assert_non_null(strstr(out, "\npromoter: node-b, term 4, renewed "));
    assert_non_null(strstr(out, "\ninstances: 1 live\n  node-a (run node-a:4711:9f3a0c1e): 1 sink held, renewed "));
    assert_null(strstr(out, "node-c"));
    free(out);

    assert_int_equal(test_outboxctl_run(&out, "status --json"), 0);
    bson_t status, sink;
    bson_error_t berr;
    if (!bson_init_from_json(&status, out, -1, &berr))
        fail_msg("status --json is not JSON (%s): %s", berr.message, out);
    json_sink(&status, "held", &sink);
    assert_string_equal(json_str(&sink, "owner"), "node-a");
    assert_int_equal(json_int(&sink, "term"), 2);
    assert_string_equal(json_str(&sink, "lease_state"), "held");
    assert_true(json_int(&sink, "lease_age_ms") >= 0);
    json_sink(&status, "gone", &sink);
    assert_true(json_is_null(&sink, "owner"));
    assert_int_equal(json_int(&sink, "term"), 3);
    assert_string_equal(json_str(&sink, "lease_state"), "released");
    json_sink(&status, "free", &sink);
    assert_true(json_is_null(&sink, "owner"));
    assert_true(json_is_null(&sink, "term"));
    assert_true(json_is_null(&sink, "lease_age_ms"));
    assert_true(json_is_null(&sink, "lease_state"));
    json_sink(&status, "stale", &sink);
    assert_string_equal(json_str(&sink, "owner"), "node-b");
    assert_int_equal(json_int(&sink, "term"), 5);
    assert_string_equal(json_str(&sink, "lease_state"), "stale");
    assert_true(json_int(&sink, "lease_age_ms") >= 60000);
    assert_string_equal(json_str(&status, "promoter.owner"), "node-b");
    assert_int_equal(json_int(&status, "promoter.term"), 4);
    assert_string_equal(json_str(&status, "promoter.lease_state"), "held");
    assert_string_equal(json_str(&status, "instances.0.instance"), "node-a");
    assert_string_equal(json_str(&status, "instances.0.run"), "node-a:4711:9f3a0c1e");
    assert_int_equal(json_int(&status, "instances.0.sinks_held"), 1);
    assert_true(json_int(&status, "instances.0.age_ms") >= 0);
    bson_iter_t it;
    assert_false(json_has(&status, "instances.1", &it)); /* node-c's presence is an hour old */
    bson_destroy(&status);
    free(out);
    drop_all(ob);
}

/* ha.enabled: false (or an outboxd before HA): no N.leases at all. */
static void status_without_leases_shows_no_owner(void **state) {
    char *out, cols[12][96];
    outbox_t *ob = test_outbox("ctl_lease_none");
    test_outboxctl_use(ob);
    put_checkpoint(ob, "a");
    assert_int_equal(test_outboxctl_run(&out, "status"), 0);
    assert_true(text_row(out, "a", cols) >= 11);
    assert_string_equal(cols[8], "-");
    assert_string_equal(cols[9], "-");
    assert_string_equal(cols[10], "-");
    assert_null(strstr(out, "promoter:"));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "status --json"), 0);
    bson_t status, sink;
    bson_error_t berr;
    if (!bson_init_from_json(&status, out, -1, &berr))
        fail_msg("status --json is not JSON (%s): %s", berr.message, out);
    json_sink(&status, "a", &sink);
    assert_true(json_is_null(&sink, "owner"));
    assert_true(json_is_null(&sink, "term"));
    assert_true(json_is_null(&sink, "lease_state"));
    assert_true(json_is_null(&status, "promoter"));
    bson_iter_t it;
    assert_true(json_has(&status, "instances", &it) && BSON_ITER_HOLDS_ARRAY(&it));
    assert_false(json_has(&status, "instances.0", &it));
    bson_destroy(&status);
    free(out);
    drop_all(ob);
}

/* How many release requests for (lease, term) exist, found by the _id
 * outboxd's lease_doc.c builds: what outboxd's manager will match. */
static int64_t requests(const outbox_t *ob, const char *lease, int64_t term) {
    char name[256];
    bson_t filter;
    bson_error_t berr;
    outboxd_lease_request_id(&filter, lease, term);
    leases_name(name, sizeof name, ob);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, &berr);
    if (n < 0)
        fail_msg("count: %s", berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&filter);
    return n;
}

static void lease_release_writes_the_request_for_the_current_term(void **state) {
    char *out;
    outbox_t *ob = ha_outbox("ctl_lease_release");
    assert_int_equal(test_outboxctl_run(&out, "lease release held"), 0);
    assert_string_equal(out, "release of sink held (term 2, held by node-a) requested; the holder hands it over "
                             "within renew_ms (150000 ms)\n");
    free(out);
    assert_int_equal(requests(ob, "sink:held", 2), 1);
    assert_int_equal(requests(ob, "sink:held", 1), 0);
    /* Asked twice: still one request, and no error. */
    assert_int_equal(test_outboxctl_run(&out, "lease release held"), 0);
    assert_non_null(strstr(out, "was already requested"));
    free(out);
    assert_int_equal(requests(ob, "sink:held", 2), 1);
    /* A holder that stopped renewing: the request is made, and the
     * operator told that the lease expires anyway. */
    assert_int_equal(test_outboxctl_run(&out, "lease release stale"), 0);
    assert_non_null(strstr(out, "release of sink stale (term 5, held by node-b) requested"));
    assert_non_null(strstr(out, "note: its last renewal was "));
    free(out);
    assert_int_equal(requests(ob, "sink:stale", 5), 1);
    drop_all(ob);
}

static void lease_release_exit_codes_tell_unheld_from_unknown(void **state) {
    char *out;
    outbox_t *ob = ha_outbox("ctl_lease_codes");
    /* A sink with a checkpoint and no claim: nobody holds it, exit 1. */
    assert_int_equal(test_outboxctl_run(&out, "lease release free"), 1);
    assert_non_null(strstr(out, "no instance holds sink free"));
    free(out);
    /* Its newest claim was released: nobody holds it either. */
    assert_int_equal(test_outboxctl_run(&out, "lease release gone"), 1);
    assert_non_null(strstr(out, "no instance holds sink gone (term 3 was released by node-b)"));
    free(out);
    assert_int_equal(requests(ob, "sink:gone", 3), 0);
    /* Neither a claim nor a checkpoint: a typo, exit 2. */
    assert_int_equal(test_outboxctl_run(&out, "lease release helt"), 2);
    assert_non_null(strstr(out, "unknown sink helt"));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "lease release"), 2);
    assert_non_null(strstr(out, "expected lease release SINK"));
    free(out);
    assert_int_equal(test_outboxctl_run(&out, "lease grab held"), 2);
    free(out);
    drop_all(ob);
}

/* The document with _id sink in N.checkpoints (the caller destroys it). */
static bson_t *checkpoint_doc(const outbox_t *ob, const char *sink) {
    char name[256];
    const bson_t *doc;
    bson_t *found = NULL;
    snprintf(name, sizeof name, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc))
        found = bson_copy(doc);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    assert_non_null(found);
    return found;
}

/* A holder's checkpoint write, with the fence of docs/leases.md section 3
 * ({_id: SINK, term: T}, no upsert): how many documents it changed. */
static int64_t holder_writes(const outbox_t *ob, const char *sink, int64_t term, const bson_oid_t *last_id) {
    char name[256];
    bson_t reply;
    bson_error_t berr;
    bson_iter_t it;
    snprintf(name, sizeof name, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink), "term", BCON_INT64(term));
    bson_t *update = BCON_NEW("$set", "{", "last_id", BCON_OID(last_id), "}");
    if (!mongoc_collection_update_one(c, filter, update, NULL, &reply, &berr))
        fail_msg("update: %s", berr.message);
    assert_true(bson_iter_init_find(&it, &reply, "modifiedCount"));
    int64_t n = bson_iter_as_int64(&it);
    bson_destroy(&reply);
    bson_destroy(update);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return n;
}

/* The newest claim of lease: its term and owner. */
static int64_t newest_claim(const outbox_t *ob, const char *lease, char *owner, size_t size) {
    char name[256];
    const bson_t *doc;
    int64_t term = -1;
    leases_name(name, sizeof name, ob);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        outboxd_lease_doc_t d;
        if (outboxd_lease_doc_parse(doc, &d) && !d.is_request && !d.is_presence && strcmp(d.lease, lease) == 0 &&
            d.term > term) {
            term = d.term;
            snprintf(owner, size, "%s", d.owner);
        }
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return term;
}

/* checkpoint set while outboxd runs (docs/leases.md section 5): outboxctl
 * takes the next term, so the running holder's next write changes nothing
 * and the operator's position stays for whoever takes the lease next. */
static void checkpoint_set_takes_the_lease_and_fences_the_holder(void **state) {
    char *out, hex[25], owner[80];
    bson_iter_t it;
    outbox_t *ob = ha_outbox("ctl_lease_cpset");
    bson_oid_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = test_put_order(ob, i + 1, "k");
    bson_oid_to_string(&ids[1], hex);
    /* node-a holds term 2 and has stamped it in the checkpoint; its
     * write goes through while the term is its own. */
    char name[256];
    snprintf(name, sizeof name, "%s.checkpoints", outbox_name(ob));
    {
        mongoc_client_t *client = test_client();
        mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
        bson_t *filter = BCON_NEW("_id", BCON_UTF8("held"));
        bson_t *update = BCON_NEW("$set", "{", "term", BCON_INT64(2), "owner", BCON_UTF8("node-a"), "}");
        assert_true(mongoc_collection_update_one(c, filter, update, NULL, NULL, NULL));
        bson_destroy(update);
        bson_destroy(filter);
        mongoc_collection_destroy(c);
        mongoc_client_destroy(client);
    }
    assert_int_equal(holder_writes(ob, "held", 2, &ids[0]), 1);

    assert_int_equal(test_outboxctl_run(&out, "checkpoint set held %s", hex), 0);
    assert_non_null(strstr(out, "sink held: lease taken at term 3 for outboxctl (it was term 2, held by node-a)"));
    free(out);
    assert_int_equal(newest_claim(ob, "sink:held", owner, sizeof owner), 3);
    assert_string_equal(owner, "outboxctl");
    bson_t *doc = checkpoint_doc(ob, "held");
    assert_true(bson_iter_init_find(&it, doc, "term") && bson_iter_as_int64(&it) == 3);
    assert_true(bson_iter_init_find(&it, doc, "last_id") && bson_oid_equal(bson_iter_oid(&it), &ids[1]));
    bson_destroy(doc);
    /* The deposed holder's next write matches nothing: the position stays. */
    assert_int_equal(holder_writes(ob, "held", 2, &ids[2]), 0);
    doc = checkpoint_doc(ob, "held");
    assert_true(bson_iter_init_find(&it, doc, "last_id") && bson_oid_equal(bson_iter_oid(&it), &ids[1]));
    bson_destroy(doc);

    /* A restored checkpoint ahead of every claim: outboxctl's term goes
     * above it, or its own write would be fenced. */
    {
        mongoc_client_t *client = test_client();
        mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
        bson_t *filter = BCON_NEW("_id", BCON_UTF8("held"));
        bson_t *update = BCON_NEW("$set", "{", "term", BCON_INT64(9), "}");
        assert_true(mongoc_collection_update_one(c, filter, update, NULL, NULL, NULL));
        bson_destroy(update);
        bson_destroy(filter);
        mongoc_collection_destroy(c);
        mongoc_client_destroy(client);
    }
    assert_int_equal(test_outboxctl_run(&out, "checkpoint reset held"), 0);
    assert_non_null(strstr(out, "lease taken at term 10 for outboxctl (it was term 3, held by outboxctl)"));
    free(out);
    doc = checkpoint_doc(ob, "held");
    assert_true(bson_iter_init_find(&it, doc, "term") && bson_iter_as_int64(&it) == 10);
    assert_true(bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_NULL(&it));
    bson_destroy(doc);

    /* No claim (ha off): the checkpoint moves as before, no lease taken. */
    assert_int_equal(test_outboxctl_run(&out, "checkpoint set free %s", hex), 0);
    assert_null(strstr(out, "lease taken"));
    free(out);
    assert_int_equal(newest_claim(ob, "sink:free", owner, sizeof owner), -1);
    doc = checkpoint_doc(ob, "free");
    assert_false(bson_iter_init_find(&it, doc, "term"));
    bson_destroy(doc);
    drop_all(ob);
}

static void usage_documents_the_lease_commands(void **state) {
    char *out;
    assert_int_equal(test_outboxctl_run(&out, "--help"), 0);
    assert_non_null(strstr(out, "lease release SINK"));
    assert_non_null(strstr(out, "lease_state"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(status_shows_each_sinks_owner_term_and_lease, setup),
        cmocka_unit_test_setup(status_without_leases_shows_no_owner, setup),
        cmocka_unit_test_setup(lease_release_writes_the_request_for_the_current_term, setup),
        cmocka_unit_test_setup(lease_release_exit_codes_tell_unheld_from_unknown, setup),
        cmocka_unit_test_setup(checkpoint_set_takes_the_lease_and_fences_the_holder, setup),
        cmocka_unit_test_setup(usage_documents_the_lease_commands, setup),
    };
    return TEST_RUN("outboxctl_lease", tests);
}
