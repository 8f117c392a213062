/*
 * test_fencing.c - the fenced writes of a sink's storage (docs/leases.md,
 * section 3), against the real server: a runner deposed by a newer term
 * changes neither the checkpoint nor the dead letters, is told so once
 * (fence->lost) and never retries; claiming the checkpoint stamps the
 * term and hands back the position; abandoning the writers writes
 * nothing; and with no fence (ha.enabled: false) every write is what it
 * was before leases.
 *
 * The fence's valid/lost callbacks are the test's own (the lease manager
 * is another package's): they count their calls, and valid can be held at
 * a gate so that the writer's thread is caught mid-write.
 */
#include "testlib.h"

#include "checkpoint.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Each test's own collection in the test database. */
typedef struct {
    mongoc_client_pool_t *pool;
    char cp_coll[128], dl_coll[128];
} fixture_t;

static void fixture_open(fixture_t *f, const char *label) {
    static int counter;
    bson_error_t berr;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(test_mongodb_uri(), &berr);
    if (!uri)
        fail_msg("uri: %s", berr.message);
    f->pool = mongoc_client_pool_new(uri);
    assert_non_null(f->pool);
    mongoc_client_pool_set_error_api(f->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_uri_destroy(uri);
    snprintf(f->cp_coll, sizeof f->cp_coll, "fence_%s_%d_%d.checkpoints", label, (int)getpid(), ++counter);
    snprintf(f->dl_coll, sizeof f->dl_coll, "fence_%s_%d_%d.deadletter", label, (int)getpid(), counter);
}

static void fixture_close(fixture_t *f) {
    mongoc_client_t *client = test_client();
    const char *colls[] = {f->cp_coll, f->dl_coll};
    for (int i = 0; i < 2; i++) {
        mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, colls[i]);
        mongoc_collection_drop(c, NULL);
        mongoc_collection_destroy(c);
    }
    mongoc_client_destroy(client);
    mongoc_client_pool_destroy(f->pool);
}

/* The sink's checkpoint document as it is in the database (caller
 * destroys); NULL when there is none. */
static bson_t *cp_doc(fixture_t *f, const char *sink) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t *out = NULL;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->cp_coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc))
        out = bson_copy(doc);
    if (mongoc_cursor_error(cur, &berr))
        fail_msg("find %s: %s", f->cp_coll, berr.message);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(filter);
    return out;
}

/* A field of the sink's document as int64; -1 when absent. */
static int64_t cp_int(fixture_t *f, const char *sink, const char *field) {
    bson_t *doc = cp_doc(f, sink);
    bson_iter_t it;
    int64_t v = -1;
    if (doc && bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_NUMBER(&it))
        v = bson_iter_as_int64(&it);
    if (doc)
        bson_destroy(doc);
    return v;
}

/* A string field of the sink's document into out ("" when absent). */
static void cp_str(fixture_t *f, const char *sink, const char *field, char *out, size_t size) {
    bson_t *doc = cp_doc(f, sink);
    bson_iter_t it;
    out[0] = '\0';
    if (doc && bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(out, size, "%s", bson_iter_utf8(&it, NULL));
    if (doc)
        bson_destroy(doc);
}

static bool cp_has(fixture_t *f, const char *sink, const char *field) {
    bson_t *doc = cp_doc(f, sink);
    bool has = doc && bson_has_field(doc, field);
    if (doc)
        bson_destroy(doc);
    return has;
}

/* A checkpoint at position oid with events. */
static outboxd_checkpoint_t position(const bson_oid_t *oid, int64_t events) {
    outboxd_checkpoint_t cp;
    memset(&cp, 0, sizeof cp);
    cp.has_last = true;
    bson_oid_copy(oid, &cp.last_id);
    cp.events = events;
    snprintf(cp.state, sizeof cp.state, "running");
    return cp;
}

/* Whether the sink's document is at position oid. */
static bool cp_at(fixture_t *f, const char *sink, const bson_oid_t *oid) {
    bson_t *doc = cp_doc(f, sink);
    bson_iter_t it;
    bool at = doc && bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it) &&
              bson_oid_equal(bson_iter_oid(&it), oid);
    if (doc)
        bson_destroy(doc);
    return at;
}

static void claim_ok(fixture_t *f, const char *sink, int64_t term, const char *owner, outboxd_checkpoint_t *cp,
                     bool *found) {
    char err[600] = "";
    int64_t seen = 0;
    outboxd_write_rc_t rc = outboxd_checkpoint_claim(f->pool, TEST_DB, f->cp_coll, sink, term, owner, cp, found,
                                                     &seen, err, sizeof err);
    if (rc != OUTBOXD_WRITE_OK)
        fail_msg("claim of %s at term %lld: rc %d: %s", sink, (long long)term, (int)rc, err);
}

/* ---- checkpoint.c ---- */

static void claiming_the_checkpoint_stamps_the_term_and_returns_the_position(void **state) {
    fixture_t f;
    fixture_open(&f, "claim");
    char err[600];
    outboxd_checkpoint_t cp;
    bool found = true;

    /* No document yet: the claim makes one with the term and says so. */
    claim_ok(&f, "fresh", 3, "node-a", &cp, &found);
    assert_false(found);
    assert_false(cp.has_last);
    assert_int_equal(cp_int(&f, "fresh", "term"), 3);
    char owner[80];
    cp_str(&f, "fresh", "owner", owner, sizeof owner);
    assert_string_equal(owner, "node-a");
    assert_true(cp_has(&f, "fresh", "claimed"));

    /* A checkpoint written before leases (no term): the claim stamps it and
     * returns its position and state. */
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    outboxd_checkpoint_t before = position(&oid, 42);
    snprintf(before.state, sizeof before.state, "gap");
    snprintf(before.message, sizeof before.message, "the log overtook it");
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "old", -1, &before, NULL, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_false(cp_has(&f, "old", "term"));
    claim_ok(&f, "old", 7, "node-b", &cp, &found);
    assert_true(found);
    assert_true(cp.has_last);
    assert_true(bson_oid_equal(&cp.last_id, &oid));
    assert_int_equal(cp.events, 42);
    assert_string_equal(cp.state, "gap");
    assert_string_equal(cp.message, "the log overtook it");
    assert_int_equal(cp_int(&f, "old", "term"), 7);

    /* The same term again (a runner restarted by SIGHUP in one process). */
    claim_ok(&f, "old", 7, "node-b", &cp, &found);
    assert_true(found);
    assert_int_equal(cp.events, 42);

    /* A higher term takes it; the position stays. */
    claim_ok(&f, "old", 8, "node-c", &cp, &found);
    assert_int_equal(cp_int(&f, "old", "term"), 8);
    assert_true(cp_at(&f, "old", &oid));
    fixture_close(&f);
}

static void claiming_with_a_lower_term_is_fenced(void **state) {
    fixture_t f;
    fixture_open(&f, "lower");
    outboxd_checkpoint_t cp;
    bool found;
    char err[600] = "";
    int64_t seen = 0;
    claim_ok(&f, "audit", 5, "node-b", &cp, &found);
    outboxd_write_rc_t rc =
        outboxd_checkpoint_claim(f.pool, TEST_DB, f.cp_coll, "audit", 4, "node-a", &cp, &found, &seen, err, sizeof err);
    assert_int_equal(rc, OUTBOXD_WRITE_FENCED);
    assert_int_equal(seen, 5);
    printf("# %s\n", err);
    assert_non_null(strstr(err, "term 5"));
    assert_non_null(strstr(err, "node-b"));
    char owner[80];
    cp_str(&f, "audit", "owner", owner, sizeof owner);
    assert_string_equal(owner, "node-b");
    assert_int_equal(cp_int(&f, "audit", "term"), 5);
    fixture_close(&f);
}

static void a_checkpoint_write_with_an_old_term_changes_nothing(void **state) {
    fixture_t f;
    fixture_open(&f, "oldterm");
    outboxd_checkpoint_t cp;
    bool found;
    char err[600] = "";
    int64_t seen = 0;
    bson_oid_t a, b;
    bson_oid_init(&a, NULL);
    bson_oid_init(&b, NULL);

    claim_ok(&f, "audit", 7, "node-a", &cp, &found);
    outboxd_checkpoint_t at_a = position(&a, 10);
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "audit", 7, &at_a, &seen, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_int_equal(cp_int(&f, "audit", "events"), 10);
    /* The write keeps the claim's stamp. */
    assert_int_equal(cp_int(&f, "audit", "term"), 7);

    /* node-b takes over at term 8; node-a's next write is fenced. */
    claim_ok(&f, "audit", 8, "node-b", &cp, &found);
    assert_true(bson_oid_equal(&cp.last_id, &a));
    outboxd_checkpoint_t at_b = position(&b, 20);
    snprintf(at_b.state, sizeof at_b.state, "stopped");
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "audit", 7, &at_b, &seen, err, sizeof err),
                     OUTBOXD_WRITE_FENCED);
    printf("# %s\n", err);
    assert_int_equal(seen, 8);
    assert_non_null(strstr(err, "term 8, owner node-b"));
    assert_true(cp_at(&f, "audit", &a));
    assert_int_equal(cp_int(&f, "audit", "events"), 10);
    char s[32];
    cp_str(&f, "audit", "state", s, sizeof s);
    assert_string_equal(s, "running");
    assert_int_equal(cp_int(&f, "audit", "term"), 8);

    /* The touch is fenced alike, and writes only at the holder's term. */
    assert_int_equal(outboxd_checkpoint_touch(f.pool, TEST_DB, f.cp_coll, "audit", 7, &seen, err, sizeof err),
                     OUTBOXD_WRITE_FENCED);
    assert_int_equal(seen, 8);
    assert_false(cp_has(&f, "audit", "fenced_at"));
    assert_int_equal(outboxd_checkpoint_touch(f.pool, TEST_DB, f.cp_coll, "audit", 8, &seen, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_true(cp_has(&f, "audit", "fenced_at"));

    /* A fenced write never makes a document (no upsert): a sink whose
     * document an operator deleted stays without one. */
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "gone", 8, &at_b, &seen, err, sizeof err),
                     OUTBOXD_WRITE_FENCED);
    assert_int_equal(seen, -1);
    assert_null(cp_doc(&f, "gone"));
    fixture_close(&f);
}

static void ha_off_writes_as_before(void **state) {
    fixture_t f;
    fixture_open(&f, "haoff");
    char err[600] = "";
    bson_oid_t a;
    bson_oid_init(&a, NULL);
    outboxd_checkpoint_t cp = position(&a, 5);
    /* term < 0: an upsert, no term; the touch writes nothing. */
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "plain", -1, &cp, NULL, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_int_equal(cp_int(&f, "plain", "events"), 5);
    assert_false(cp_has(&f, "plain", "term"));
    assert_false(cp_has(&f, "plain", "owner"));
    assert_int_equal(outboxd_checkpoint_touch(f.pool, TEST_DB, f.cp_coll, "nodoc", -1, NULL, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_null(cp_doc(&f, "nodoc"));
    /* The old call form (until every caller passes a term) is the same upsert. */
    cp.events = 6;
    assert_true(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "plain", &cp, err, sizeof err));
    assert_int_equal(cp_int(&f, "plain", "events"), 6);
    assert_false(cp_has(&f, "plain", "term"));
    fixture_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claiming_the_checkpoint_stamps_the_term_and_returns_the_position),
        cmocka_unit_test(claiming_with_a_lower_term_is_fenced),
        cmocka_unit_test(a_checkpoint_write_with_an_old_term_changes_nothing),
        cmocka_unit_test(ha_off_writes_as_before),
    };
    return TEST_RUN("fencing", tests);
}
