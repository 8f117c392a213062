/*
 * test_fencing.c - the fenced writes of a sink's storage (docs/leases.md,
 * section 3), against the real server: a runner deposed by a newer term
 * changes neither the checkpoint nor the dead letters, is told so once
 * (fence->lost) and never retries; claiming the checkpoint stamps the
 * term and hands back the position; abandoning the writers writes
 * nothing; a write racing a claim from another process never undoes it;
 * and with no fence (ha.enabled: false) every write is what it was
 * before leases.
 *
 * The fence's valid/lost callbacks are the test's own (the lease manager
 * is another package's): they count their calls, and valid can be held at
 * a gate so that the writer's thread is caught mid-write. Waits are
 * bounded only against a hang (WAIT_MS), never a pass/fail threshold.
 */
#include "testlib.h"

#include "checkpoint.h"
#include "checkpoint_writer.h"
#include "condwait.h"
#include "deadletter_writer.h"
#include "retry_writer.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each test's own collection in the test database. */
typedef struct {
    mongoc_client_pool_t *pool;
    char cp_coll[128], dl_coll[128];
} fixture_t;

/* A pool on the test server (NULL when the URI is bad). */
static mongoc_client_pool_t *pool_new(void) {
    mongoc_uri_t *uri = mongoc_uri_new_with_error(test_mongodb_uri(), NULL);
    mongoc_client_pool_t *pool = uri ? mongoc_client_pool_new(uri) : NULL;
    if (pool)
        mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_uri_destroy(uri);
    return pool;
}

static void fixture_open(fixture_t *f, const char *label) {
    static int counter;
    f->pool = pool_new();
    assert_non_null(f->pool);
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

static int64_t dl_count(fixture_t *f) {
    return test_count(f->dl_coll);
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

#define WAIT_MS 60000

/* The test's fence: counts what the writers ask and tell. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool valid;       /* what valid answers */
    int allowed;      /* calls of valid beyond this many wait at the gate */
    bool in_gate;     /* a writer waits in valid */
    int valid_calls, lost_calls, done_calls;
    int64_t lost_term, lost_seen;
    char lost_why[600];
} probe_t;

static void probe_init(probe_t *p, bool valid) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->valid = valid;
    p->allowed = INT_MAX;
}

static void probe_destroy(probe_t *p) {
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

static bool probe_valid(void *ctx, int64_t term) {
    probe_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->valid_calls++;
    while (p->valid_calls > p->allowed) {
        p->in_gate = true;
        pthread_cond_broadcast(&p->cond);
        pthread_cond_wait(&p->cond, &p->lock);
    }
    p->in_gate = false;
    bool v = p->valid;
    pthread_mutex_unlock(&p->lock);
    return v;
}

static void probe_lost(void *ctx, int64_t term, int64_t seen_term, const char *why) {
    probe_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->lost_calls++;
    p->lost_term = term;
    p->lost_seen = seen_term;
    snprintf(p->lost_why, sizeof p->lost_why, "%s", why);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void probe_done(void *ctx, uint64_t seq) {
    probe_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    p->done_calls++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static outboxd_fence_t probe_fence(probe_t *p, int64_t term) {
    outboxd_fence_t fence = {.term = term, .valid = probe_valid, .lost = probe_lost, .ctx = p};
    return fence;
}

/* Waits (bounded against a hang) until *counter reaches n. */
static void probe_wait(probe_t *p, const int *counter, int n, const char *what) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&p->lock);
    while (*counter < n) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 > WAIT_MS) {
            pthread_mutex_unlock(&p->lock);
            fail_msg("no %s after %d ms", what, WAIT_MS);
        }
        outboxd_cond_wait_ms(&p->cond, &p->lock, 100);
    }
    pthread_mutex_unlock(&p->lock);
}

/* Waits until a writer's thread waits in the gate. */
static void probe_wait_gate(probe_t *p) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&p->lock);
    while (!p->in_gate) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 > WAIT_MS) {
            pthread_mutex_unlock(&p->lock);
            fail_msg("the writer never asked valid");
        }
        outboxd_cond_wait_ms(&p->cond, &p->lock, 100);
    }
    pthread_mutex_unlock(&p->lock);
}

static void probe_open_gate(probe_t *p) {
    pthread_mutex_lock(&p->lock);
    p->allowed = INT_MAX;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Waits until the writer whose outboxd_retry_writer_t is rw was told to
 * quit (retry_writer.h: the writers embed it first). */
static void wait_quit(outboxd_retry_writer_t *rw) {
    for (int i = 0; i < WAIT_MS / 10; i++) {
        pthread_mutex_lock(&rw->lock);
        bool quit = rw->quit;
        pthread_mutex_unlock(&rw->lock);
        if (quit)
            return;
        usleep(10000);
    }
    fail_msg("the writer was never told to quit");
}

static void *abandon_cpw(void *arg) {
    outboxd_checkpoint_writer_abandon(arg);
    return NULL;
}

static void *abandon_dlw(void *arg) {
    outboxd_deadletter_writer_abandon(arg);
    return NULL;
}

/* A malformed log document to dead-letter (needs no tail to make). */
static outboxd_shared_event_t *bad_event(int n) {
    bson_t doc = BSON_INITIALIZER;
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    BSON_APPEND_OID(&doc, "_id", &oid);
    BSON_APPEND_INT32(&doc, "n", n);
    outboxd_shared_event_t *se = outboxd_shared_event_malformed(&doc, "not an envelope");
    bson_destroy(&doc);
    return se;
}

static void submit_bad(outboxd_deadletter_writer_t *w, uint64_t seq) {
    outboxd_shared_event_t *se = bad_event((int)seq);
    outboxd_deadletter_writer_submit(w, seq, se, "not an envelope", true);
    outboxd_shared_event_unref(se);
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

/* The race a fence exists for: another process keeps writing the
 * checkpoint at term 1 (a deposed holder that has not noticed yet) while
 * this one claims term 2. Once the claim has returned, nothing of the
 * other's may land: the document keeps term 2 and the claimed position,
 * and the other is told FENCED. A server that runs the conditional write
 * as a read and a separate write-back (stock FerretDB 1.x: docs/leases.md
 * section 0) lets a write that read term 1 just before the claim put it
 * back, and this fails. The writer is a process of its own, as a deposed
 * holder is: within one process the writes of a document are serialized
 * (outboxd_checkpoint_doc_lock). */
enum { RACE_ROUNDS = 10, RACE_WRITES_MAX = 20000 };

/* The deposed holder: writes at term 1 until fenced (exit 0); 2 on a
 * server error, 3 when never fenced. */
static void race_writer(const char *coll, const char *sink) {
    mongoc_client_pool_t *pool = pool_new();
    int code = 3;
    if (!pool)
        _exit(2);
    for (int i = 1; i <= RACE_WRITES_MAX && code == 3; i++) {
        char err[600];
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        outboxd_checkpoint_t cp = position(&oid, i);
        outboxd_write_rc_t rc = outboxd_checkpoint_write(pool, TEST_DB, coll, sink, 1, &cp, NULL, err, sizeof err);
        if (rc == OUTBOXD_WRITE_FENCED)
            code = 0;
        else if (rc != OUTBOXD_WRITE_OK) {
            fprintf(stderr, "race writer: %s\n", err);
            code = 2;
        }
    }
    mongoc_client_pool_destroy(pool);
    _exit(code);
}

static void a_write_racing_a_claim_never_undoes_it(void **state) {
    fixture_t f;
    fixture_open(&f, "race");
    for (int round = 1; round <= RACE_ROUNDS; round++) {
        char sink[32];
        snprintf(sink, sizeof sink, "race%d", round);
        outboxd_checkpoint_t cp;
        bool found;
        claim_ok(&f, sink, 1, "node-a", &cp, &found);
        /* No pool across the fork: its monitoring threads would not exist
         * in the child, and what they hold would be leaked there. */
        mongoc_client_pool_destroy(f.pool);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            race_writer(f.cp_coll, sink);
        f.pool = pool_new();
        assert_non_null(f.pool);
        /* Claim while the other writes (it has written a few times). */
        for (int i = 0; i < WAIT_MS / 5 && cp_int(&f, sink, "events") < 3; i++)
            usleep(5000);
        claim_ok(&f, sink, 2, "node-b", &cp, &found);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("round %d: the term-1 writer %s", round,
                     WEXITSTATUS(status) == 3 ? "was never fenced: a write of it undid the claim of term 2"
                                              : "failed (its error is above)");
        assert_int_equal(cp_int(&f, sink, "term"), 2);
        assert_int_equal(cp_int(&f, sink, "events"), cp.events);
        assert_true(cp_at(&f, sink, &cp.last_id));
    }
    printf("# %d rounds of a claim of term 2 racing a process writing at term 1: the claim held every time\n",
           RACE_ROUNDS);
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
    /* Again: the same document, still without a term. */
    cp.events = 6;
    assert_int_equal(outboxd_checkpoint_write(f.pool, TEST_DB, f.cp_coll, "plain", -1, &cp, NULL, err, sizeof err),
                     OUTBOXD_WRITE_OK);
    assert_int_equal(cp_int(&f, "plain", "events"), 6);
    assert_false(cp_has(&f, "plain", "term"));

    /* The writers without a fence: upserts, and dead letters with no
     * checkpoint document to touch. */
    cp.events = 7;
    outboxd_checkpoint_writer_t *w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "new",
                                                                     "sink new: ", NULL);
    assert_int_equal(outboxd_checkpoint_writer_stop(w, &cp), 1);
    assert_int_equal(cp_int(&f, "new", "events"), 7);
    assert_false(cp_has(&f, "new", "term"));
    outboxd_fence_t off = {.term = -1, .valid = NULL, .lost = NULL, .ctx = NULL};
    probe_t p;
    probe_init(&p, true);
    outboxd_deadletter_writer_t *dw = outboxd_deadletter_writer_start(f.pool, TEST_DB, f.cp_coll, f.dl_coll,
                                                                      "nodoc", "sink nodoc: ", probe_done, &p, &off);
    submit_bad(dw, 1);
    assert_int_equal(outboxd_deadletter_writer_stop(dw), 0);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(dl_count(&f), 1);
    assert_null(cp_doc(&f, "nodoc"));
    probe_destroy(&p);
    fixture_close(&f);
}

/* ---- the writers ---- */

static void the_checkpoint_writer_tells_lost_and_stops_retrying(void **state) {
    fixture_t f;
    fixture_open(&f, "cpwlost");
    probe_t p;
    probe_init(&p, true);
    outboxd_checkpoint_t cp;
    bool found;
    claim_ok(&f, "audit", 4, "node-b", &cp, &found); /* node-b took over */
    outboxd_fence_t fence = probe_fence(&p, 3);
    outboxd_checkpoint_writer_t *w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit",
                                                                     "sink audit: ", &fence);
    assert_non_null(w);
    bson_oid_t a, b, c;
    bson_oid_init(&a, NULL);
    bson_oid_init(&b, NULL);
    bson_oid_init(&c, NULL);
    outboxd_checkpoint_t at_a = position(&a, 1), at_b = position(&b, 2), at_c = position(&c, 3);
    outboxd_checkpoint_writer_submit(w, &at_a);
    probe_wait(&p, &p.lost_calls, 1, "lost");
    printf("# lost: %s\n", p.lost_why);
    assert_int_equal(p.lost_term, 3);
    assert_int_equal(p.lost_seen, 4);
    assert_non_null(strstr(p.lost_why, "node-b"));
    /* Neither a newer checkpoint nor the final one is tried again. */
    outboxd_checkpoint_writer_submit(w, &at_b);
    assert_int_equal(outboxd_checkpoint_writer_stop(w, &at_c), 0);
    assert_int_equal(p.lost_calls, 1);
    assert_int_equal(p.valid_calls, 1);
    assert_false(cp_has(&f, "audit", "last_id"));
    assert_int_equal(cp_int(&f, "audit", "term"), 4);
    probe_destroy(&p);
    fixture_close(&f);
}

static void the_checkpoint_writer_writes_only_while_valid(void **state) {
    fixture_t f;
    fixture_open(&f, "cpwvalid");
    probe_t p;
    probe_init(&p, false); /* the deadline passed: nothing may be written */
    outboxd_checkpoint_t cp;
    bool found;
    claim_ok(&f, "audit", 3, "node-a", &cp, &found);
    outboxd_fence_t fence = probe_fence(&p, 3);
    bson_oid_t a, b;
    bson_oid_init(&a, NULL);
    bson_oid_init(&b, NULL);
    outboxd_checkpoint_t at_a = position(&a, 1), at_b = position(&b, 2);
    outboxd_checkpoint_writer_t *w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit",
                                                                     "sink audit: ", &fence);
    outboxd_checkpoint_writer_submit(w, &at_a);
    assert_int_equal(outboxd_checkpoint_writer_stop(w, &at_b), 0);
    assert_true(p.valid_calls >= 1);
    assert_int_equal(p.lost_calls, 0);
    assert_false(cp_has(&f, "audit", "last_id"));

    /* Valid: the final checkpoint is written at the term. */
    p.valid = true;
    w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit", "sink audit: ", &fence);
    assert_int_equal(outboxd_checkpoint_writer_stop(w, &at_b), 1);
    assert_true(cp_at(&f, "audit", &b));
    assert_int_equal(cp_int(&f, "audit", "term"), 3);
    probe_destroy(&p);
    fixture_close(&f);
}

/* A unique index on events and another document holding events: 5 make a
 * write of events 5 fail with a server error (E11000 of an update: an
 * ERROR, not a fence) until the blocker is removed. */
static void block_events(fixture_t *f, int64_t events, bool on) {
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->cp_coll);
    bson_t *blocker = BCON_NEW("_id", BCON_UTF8("blocker"), "events", BCON_INT64(events));
    if (on) {
        bson_t *keys = BCON_NEW("events", BCON_INT32(1));
        bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(f->cp_coll), "indexes", "[", "{", "key", BCON_DOCUMENT(keys),
                               "name", BCON_UTF8("events_unique"), "unique", BCON_BOOL(true), "}", "]");
        if (!mongoc_collection_write_command_with_opts(c, cmd, NULL, NULL, &berr))
            fail_msg("createIndexes: %s", berr.message);
        if (!mongoc_collection_insert_one(c, blocker, NULL, NULL, &berr))
            fail_msg("insert blocker: %s", berr.message);
        bson_destroy(cmd);
        bson_destroy(keys);
    } else {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8("blocker"));
        if (!mongoc_collection_delete_one(c, filter, NULL, NULL, &berr))
            fail_msg("delete blocker: %s", berr.message);
        bson_destroy(filter);
    }
    bson_destroy(blocker);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
}

static void a_failed_checkpoint_write_is_retried_only_while_valid(void **state) {
    fixture_t f;
    fixture_open(&f, "retry");
    outboxd_checkpoint_t cp;
    bool found;
    claim_ok(&f, "audit", 3, "node-a", &cp, &found);
    block_events(&f, 5, true);
    probe_t p;
    probe_init(&p, true);
    outboxd_fence_t fence = probe_fence(&p, 3);
    bson_oid_t a;
    bson_oid_init(&a, NULL);
    outboxd_checkpoint_t at_a = position(&a, 5);

    /* Valid: the write that failed is tried again (every second) and lands
     * once the server takes it. */
    outboxd_checkpoint_writer_t *w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit",
                                                                     "sink audit: ", &fence);
    outboxd_checkpoint_writer_submit(w, &at_a);
    probe_wait(&p, &p.valid_calls, 2, "second attempt");
    assert_false(cp_has(&f, "audit", "last_id"));
    block_events(&f, 5, false);
    for (int i = 0; i < WAIT_MS / 50 && !cp_at(&f, "audit", &a); i++)
        usleep(50000);
    assert_true(cp_at(&f, "audit", &a));
    assert_int_equal(outboxd_checkpoint_writer_stop(w, NULL), 1);
    assert_int_equal(p.lost_calls, 0);

    /* No longer valid after a failure: it is not tried again, not even by
     * the stop. */
    block_events(&f, 6, true);
    probe_t q;
    probe_init(&q, true);
    fence = probe_fence(&q, 3);
    outboxd_checkpoint_t at_b = position(&a, 6);
    w = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit", "sink audit: ", &fence);
    q.allowed = 1; /* the second attempt waits at the gate */
    outboxd_checkpoint_writer_submit(w, &at_b);
    probe_wait_gate(&q);
    pthread_mutex_lock(&q.lock);
    q.valid = false; /* the lease's deadline passed meanwhile */
    pthread_mutex_unlock(&q.lock);
    block_events(&f, 6, false);
    probe_open_gate(&q);
    assert_int_equal(outboxd_checkpoint_writer_stop(w, NULL), 0);
    assert_int_equal(cp_int(&f, "audit", "events"), 5);
    probe_destroy(&q);
    probe_destroy(&p);
    fixture_close(&f);
}

static void a_deadletter_is_not_written_when_the_fence_touch_fails(void **state) {
    fixture_t f;
    fixture_open(&f, "dlfence");
    probe_t p;
    probe_init(&p, true);
    outboxd_checkpoint_t cp;
    bool found;
    claim_ok(&f, "audit", 4, "node-b", &cp, &found);
    outboxd_fence_t fence = probe_fence(&p, 3);
    outboxd_deadletter_writer_t *w = outboxd_deadletter_writer_start(f.pool, TEST_DB, f.cp_coll, f.dl_coll, "audit",
                                                                     "sink audit: ", probe_done, &p, &fence);
    assert_non_null(w);
    submit_bad(w, 1);
    probe_wait(&p, &p.lost_calls, 1, "lost");
    printf("# lost: %s\n", p.lost_why);
    assert_int_equal(p.lost_term, 3);
    assert_int_equal(p.lost_seen, 4);
    submit_bad(w, 2);
    assert_int_equal(outboxd_deadletter_writer_stop(w), 2); /* both stay after the checkpoint */
    assert_int_equal(p.lost_calls, 1);
    assert_int_equal(p.done_calls, 0);
    assert_int_equal(dl_count(&f), 0);
    assert_false(cp_has(&f, "audit", "fenced_at"));

    /* The holder of term 4 writes its dead letter, after the touch. */
    probe_t q;
    probe_init(&q, true);
    fence = probe_fence(&q, 4);
    w = outboxd_deadletter_writer_start(f.pool, TEST_DB, f.cp_coll, f.dl_coll, "audit", "sink audit: ",
                                        probe_done, &q, &fence);
    submit_bad(w, 1);
    probe_wait(&q, &q.done_calls, 1, "done");
    assert_int_equal(outboxd_deadletter_writer_stop(w), 0);
    assert_int_equal(dl_count(&f), 1);
    assert_true(cp_has(&f, "audit", "fenced_at"));
    assert_int_equal(q.lost_calls, 0);
    probe_destroy(&q);
    probe_destroy(&p);
    fixture_close(&f);
}

static void abandon_writes_nothing(void **state) {
    fixture_t f;
    fixture_open(&f, "abandon");
    outboxd_checkpoint_t cp;
    bool found;
    claim_ok(&f, "audit", 3, "node-a", &cp, &found);

    /* The checkpoint writer, caught in the valid check of its first write
     * with a newer checkpoint pending: abandon lets the write in progress
     * complete and writes neither the pending one nor any other. */
    probe_t p;
    probe_init(&p, true);
    p.allowed = 0;
    outboxd_fence_t fence = probe_fence(&p, 3);
    bson_oid_t a, b;
    bson_oid_init(&a, NULL);
    bson_oid_init(&b, NULL);
    outboxd_checkpoint_t at_a = position(&a, 1), at_b = position(&b, 2);
    outboxd_checkpoint_writer_t *cw = outboxd_checkpoint_writer_start(f.pool, TEST_DB, f.cp_coll, "audit",
                                                                      "sink audit: ", &fence);
    outboxd_checkpoint_writer_submit(cw, &at_a);
    probe_wait_gate(&p);
    outboxd_checkpoint_writer_submit(cw, &at_b);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, abandon_cpw, cw), 0);
    wait_quit((outboxd_retry_writer_t *)cw);
    probe_open_gate(&p);
    pthread_join(th, NULL);
    assert_int_equal(p.valid_calls, 1);
    assert_true(cp_at(&f, "audit", &a));
    outboxd_checkpoint_writer_abandon(NULL);

    /* The dead-letter writer alike: the one in progress is written (and
     * told done), the queued one is dropped untold. */
    probe_t q;
    probe_init(&q, true);
    q.allowed = 0;
    fence = probe_fence(&q, 3);
    outboxd_deadletter_writer_t *dw = outboxd_deadletter_writer_start(f.pool, TEST_DB, f.cp_coll, f.dl_coll,
                                                                      "audit", "sink audit: ", probe_done, &q, &fence);
    submit_bad(dw, 1);
    probe_wait_gate(&q);
    submit_bad(dw, 2);
    assert_int_equal(pthread_create(&th, NULL, abandon_dlw, dw), 0);
    wait_quit((outboxd_retry_writer_t *)dw);
    probe_open_gate(&q);
    pthread_join(th, NULL);
    assert_int_equal(q.valid_calls, 1);
    assert_int_equal(q.done_calls, 1);
    assert_int_equal(dl_count(&f), 1);
    outboxd_deadletter_writer_abandon(NULL);
    probe_destroy(&q);
    probe_destroy(&p);
    fixture_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claiming_the_checkpoint_stamps_the_term_and_returns_the_position),
        cmocka_unit_test(claiming_with_a_lower_term_is_fenced),
        cmocka_unit_test(a_checkpoint_write_with_an_old_term_changes_nothing),
        cmocka_unit_test(a_write_racing_a_claim_never_undoes_it),
        cmocka_unit_test(the_checkpoint_writer_tells_lost_and_stops_retrying),
        cmocka_unit_test(the_checkpoint_writer_writes_only_while_valid),
        cmocka_unit_test(a_failed_checkpoint_write_is_retried_only_while_valid),
        cmocka_unit_test(a_deadletter_is_not_written_when_the_fence_touch_fails),
        cmocka_unit_test(abandon_writes_nothing),
        cmocka_unit_test(ha_off_writes_as_before),
    };
    return TEST_RUN("fencing", tests);
}
