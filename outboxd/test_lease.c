/*
 * test_lease.c - the lease manager (outboxd/lease.c, docs/leases.md 1.3 to
 * 1.8): several managers in one process, as several outboxd would be,
 * against the harness's real server; no daemon. TTL 1 s and renew 300 ms
 * (10 s where a test must tell a hand-over from an expiry). No timing
 * thresholds: assertions are orders on the one process clock
 * (outboxd_lease_now_ms) and bounds that only a hang exceeds.
 */
#include "testlib.h"

#include "lease.h"
#include "lease_doc.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTL 1000
#define RENEW 300
#define HANG_MS 60000 /* a bound only a hang exceeds */

static void sleep_ms(int64_t ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static outboxd_conf_t ha_conf(bool enabled, const char *instance, int64_t ttl, int64_t renew) {
    outboxd_conf_t conf;
    memset(&conf, 0, sizeof conf);
    conf.ha_enabled = enabled;
    conf.ha_lease_ttl_ms = ttl;
    conf.ha_renew_ms = renew;
    conf.ha_instance_id = (char *)instance;
    return conf;
}

/* One test's outbox name (only N.leases is used) and its pool. */
typedef struct {
    char outbox[64], coll[80];
    mongoc_client_pool_t *pool;
} fixture_t;

static void fixture_init(fixture_t *f) {
    static int seq;
    mongoc_uri_t *uri = mongoc_uri_new(test_mongodb_uri());
    assert_non_null(uri);
    f->pool = mongoc_client_pool_new(uri);
    assert_non_null(f->pool);
    mongoc_client_pool_set_error_api(f->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_uri_destroy(uri);
    snprintf(f->outbox, sizeof f->outbox, "leasetest_%d_%d_%ld", (int)getpid(), ++seq, (long)time(NULL) % 100000);
    snprintf(f->coll, sizeof f->coll, "%s" OUTBOXD_LEASES_SUFFIX, f->outbox);
}

static void fixture_done(fixture_t *f) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->coll);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    mongoc_client_pool_destroy(f->pool);
}

static outboxd_leases_t *manager(fixture_t *f, const char *instance, int64_t ttl, int64_t renew) {
    outboxd_conf_t conf = ha_conf(true, instance, ttl, renew);
    outboxd_leases_t *m = outboxd_leases_new(f->pool, TEST_DB, f->outbox, &conf);
    assert_non_null(m);
    return m;
}

/* Claims of lease in N.leases (not requests, not presences). */
static int64_t count_claims(fixture_t *f, const char *lease) {
    bson_error_t berr;
    bson_t *filter = BCON_NEW("_id.lease", BCON_UTF8(lease), "_id.op", "{", "$exists", BCON_BOOL(false), "}");
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->coll);
    int64_t n = mongoc_collection_count_documents(c, filter, NULL, NULL, NULL, &berr);
    if (n < 0)
        fail_msg("count claims: %s", berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(filter);
    return n;
}

/* The claim (lease, term) parsed; false when absent. */
static bool read_claim(fixture_t *f, const char *lease, int64_t term, outboxd_lease_doc_t *out) {
    bson_t filter;
    const bson_t *doc;
    outboxd_lease_claim_id(&filter, lease, term);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
    bool found = mongoc_cursor_next(cur, &doc) && outboxd_lease_doc_parse(doc, out);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&filter);
    return found;
}

/* The claim of lease with the highest term; false when there is none. */
static bool newest_claim_doc(fixture_t *f, const char *lease, outboxd_lease_doc_t *out) {
    const bson_t *doc;
    bson_t *filter = BCON_NEW("_id.lease", BCON_UTF8(lease), "_id.op", "{", "$exists", BCON_BOOL(false), "}");
    bson_t *opts = BCON_NEW("sort", "{", "_id.term", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f->coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    bool found = mongoc_cursor_next(cur, &doc) && outboxd_lease_doc_parse(doc, out);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(filter);
    bson_destroy(opts);
    return found;
}

/* The term l holds now (valid), or OUTBOXD_LEASE_NONE. */
static int64_t held_term(outboxd_lease_t *l) {
    atomic_bool stop = true;
    int64_t term = outboxd_lease_wait(l, &stop); /* held is checked before stop */
    return term != OUTBOXD_LEASE_NONE && outboxd_lease_valid(l, term) ? term : OUTBOXD_LEASE_NONE;
}

/* Waits (bounded against a hang) until l holds a term; returns it. */
static int64_t wait_held(outboxd_lease_t *l) {
    int64_t until = outboxd_lease_now_ms() + HANG_MS;
    int64_t term;
    while ((term = held_term(l)) == OUTBOXD_LEASE_NONE) {
        if (outboxd_lease_now_ms() > until)
            fail_msg("lease %s not held after %d ms", outboxd_lease_name(l), HANG_MS);
        sleep_ms(10);
    }
    return term;
}

/* A runner's part: hold when the lease is held, and hand over when the
 * manager asks (the release a real runner makes after its last checkpoint). */
typedef struct {
    outboxd_lease_t *lease;
    atomic_bool stop;
    pthread_t thread;
} runner_t;

static void *runner_main(void *arg) {
    runner_t *r = arg;
    while (!atomic_load(&r->stop)) {
        int64_t term = outboxd_lease_wait(r->lease, &r->stop);
        if (term == OUTBOXD_LEASE_NONE)
            break;
        while (!atomic_load(&r->stop) && outboxd_lease_valid(r->lease, term)) {
            if (outboxd_lease_handover_wanted(r->lease, term)) {
                outboxd_lease_release(r->lease, term);
                break;
            }
            sleep_ms(10);
        }
        sleep_ms(10);
    }
    return NULL;
}

static runner_t *runner_start(outboxd_lease_t *l) {
    runner_t *r = calloc(1, sizeof *r);
    r->lease = l;
    atomic_store(&r->stop, false);
    assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
    return r;
}

static void runner_stop(runner_t *r) {
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    free(r);
}

/* ---- the documents ---- */

/* A presence's sink list names exactly its sinks (no prefix or suffix of
 * one matches), and a presence without one (an outboxd from before the
 * lists) is taken to have every sink. */
static void presence_lists_name_exactly_their_sinks(void **state) {
    (void)state;
    bson_t *doc = BCON_NEW("_id", "{", "instance", "a", "run", "a:1:x", "}", "sinks", "[", "sink:a", "sink:ab",
                           BCON_INT32(7), "]");
    char *list = outboxd_lease_presence_sinks(doc);
    assert_non_null(list);
    assert_true(outboxd_lease_list_has(list, "sink:a"));
    assert_true(outboxd_lease_list_has(list, "sink:ab"));
    assert_false(outboxd_lease_list_has(list, "sink:b"));
    assert_false(outboxd_lease_list_has(list, "sink:"));
    assert_false(outboxd_lease_list_has(list, "sink:abc"));
    assert_false(outboxd_lease_list_has(list, "a"));
    free(list);
    bson_destroy(doc);
    doc = BCON_NEW("_id", "{", "instance", "a", "run", "a:1:x", "}", "sinks", "[", "]");
    list = outboxd_lease_presence_sinks(doc);
    assert_non_null(list);
    assert_false(outboxd_lease_list_has(list, "sink:a"));
    free(list);
    bson_destroy(doc);
    doc = BCON_NEW("_id", "{", "instance", "a", "run", "a:1:x", "}", "sinks_held", BCON_INT64(2));
    assert_null(outboxd_lease_presence_sinks(doc));
    assert_true(outboxd_lease_list_has(NULL, "sink:anything"));
    bson_destroy(doc);
}

static void claim_ids_have_one_field_order_and_an_int64_term(void **state) {
    bson_t id;
    outboxd_lease_claim_id(&id, "sink:audit", 7);
    char *json = bson_as_canonical_extended_json(&id, NULL);
    assert_string_equal(json, "{ \"_id\" : { \"lease\" : \"sink:audit\", \"term\" : { \"$numberLong\" : \"7\" } } }");
    bson_free(json);
    bson_destroy(&id);
    outboxd_lease_request_id(&id, "sink:audit", 7);
    json = bson_as_canonical_extended_json(&id, NULL);
    assert_string_equal(json, "{ \"_id\" : { \"lease\" : \"sink:audit\", \"term\" : { \"$numberLong\" : \"7\" }, "
                              "\"op\" : \"release\" } }");
    bson_free(json);
    bson_destroy(&id);
    char name[32];
    outboxd_lease_name_for_sink(name, sizeof name, "audit");
    assert_string_equal(name, "sink:audit");

    /* What the parser makes of each kind, and of what is not ours. */
    outboxd_lease_doc_t d;
    outboxd_lease_claim_id(&id, "sink:audit", 7);
    BSON_APPEND_UTF8(&id, "owner", "node-a");
    BSON_APPEND_UTF8(&id, "run", "node-a:1:0000abcd");
    BSON_APPEND_INT64(&id, "renewals", 3);
    BSON_APPEND_INT64(&id, "ttl_ms", 10000);
    BSON_APPEND_BOOL(&id, "released", true);
    assert_true(outboxd_lease_doc_parse(&id, &d));
    assert_false(d.is_request || d.is_presence);
    assert_string_equal(d.lease, "sink:audit");
    assert_int_equal(d.term, 7);
    assert_string_equal(d.owner, "node-a");
    assert_int_equal(d.renewals, 3);
    assert_int_equal(d.ttl_ms, 10000);
    assert_true(d.released);
    bson_destroy(&id);
    outboxd_lease_request_id(&id, "sink:audit", 7);
    assert_true(outboxd_lease_doc_parse(&id, &d));
    assert_true(d.is_request);
    bson_destroy(&id);
    outboxd_lease_presence_id(&id, "node-a", "node-a:1:0000abcd");
    assert_true(outboxd_lease_doc_parse(&id, &d));
    assert_true(d.is_presence);
    assert_string_equal(d.owner, "node-a");
    bson_destroy(&id);
    bson_t *other = BCON_NEW("_id", BCON_UTF8("audit"));
    assert_false(outboxd_lease_doc_parse(other, &d));
    bson_destroy(other);
    other = BCON_NEW("_id", "{", "lease", BCON_UTF8("sink:audit"), "term", BCON_DOUBLE(7), "}");
    assert_false(outboxd_lease_doc_parse(other, &d));
    bson_destroy(other);
}

/* ---- the protocol ---- */

typedef struct {
    outboxd_leases_t *m;
    pthread_barrier_t *barrier;
} starter_t;

static void *start_main(void *arg) {
    starter_t *s = arg;
    pthread_barrier_wait(s->barrier);
    assert_true(outboxd_leases_start(s->m));
    return NULL;
}

static void a_free_lease_is_taken_by_one_manager_only(void **state) {
    fixture_t f;
    fixture_init(&f);
    enum { N = 4 };
    outboxd_leases_t *m[N];
    outboxd_lease_t *l[N];
    starter_t s[N];
    pthread_t t[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "node-%c", 'a' + i);
        m[i] = manager(&f, id, TTL, RENEW);
        l[i] = outboxd_leases_get(m[i], "sink:one");
        s[i] = (starter_t){m[i], &barrier};
    }
    /* Every first round at once: four inserts of claim 1 race. */
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, start_main, &s[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    /* Frozen where the race left them: who won the insert of term 1 (even
     * if a slow server let its deadline pass since). */
    for (int i = 0; i < N; i++)
        outboxd_leases_pause_for_test(m[i], true);
    int winners = 0;
    for (int i = 0; i < N; i++)
        if (outboxd_lease_acquired_ms(l[i], 1) != 0)
            winners++;
    assert_int_equal(winners, 1);
    assert_int_equal(count_claims(&f, "sink:one"), 1);
    for (int i = 0; i < N; i++)
        outboxd_leases_free(m[i]);
    pthread_barrier_destroy(&barrier);
    fixture_done(&f);
}

static void a_renewed_lease_is_never_taken_over(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", TTL, RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    outboxd_leases_t *b = manager(&f, "node-b", TTL, RENEW);
    outboxd_lease_t *lb = outboxd_leases_get(b, "sink:one");
    assert_true(outboxd_leases_start(b));
    int64_t until = outboxd_lease_now_ms() + 3 * TTL;
    int samples = 0;
    while (outboxd_lease_now_ms() < until) {
        assert_int_equal(held_term(lb), OUTBOXD_LEASE_NONE);
        samples++;
        sleep_ms(20);
    }
    /* A kept renewing the one term it won: no other claim was made. */
    outboxd_lease_doc_t d;
    assert_true(read_claim(&f, "sink:one", term, &d));
    assert_string_equal(d.owner, "node-a");
    assert_false(d.released);
    assert_true(d.renewals >= 1);
    assert_int_equal(count_claims(&f, "sink:one"), 1);
    printf("# %d samples over 3 TTLs, B never held; A's claim renewed %lld times\n", samples, (long long)d.renewals);
    outboxd_leases_free(b);
    outboxd_leases_free(a);
    fixture_done(&f);
}

static void an_unrenewed_lease_is_taken_only_after_the_holders_deadline(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", TTL, RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    outboxd_leases_t *b = manager(&f, "node-b", TTL, RENEW);
    outboxd_lease_t *lb = outboxd_leases_get(b, "sink:one");
    assert_true(outboxd_leases_start(b));
    /* A's renewals stop, as if its process were frozen. */
    outboxd_leases_pause_for_test(a, true);
    while (outboxd_lease_valid(la, term))
        sleep_ms(5);
    int64_t a_deadline = outboxd_lease_deadline_ms(la, term);
    assert_true(a_deadline > 0);
    int64_t b_term = wait_held(lb);
    int64_t b_acquired = outboxd_lease_acquired_ms(lb, b_term);
    printf("# A's deadline at mono_ms %lld, B's claim sent at mono_ms %lld (%lld ms later)\n", (long long)a_deadline,
           (long long)b_acquired, (long long)(b_acquired - a_deadline));
    assert_true(a_deadline < b_acquired);
    assert_int_equal(b_term, term + 1);
    assert_false(outboxd_lease_valid(la, term));
    /* A wakes up: its next round sees the newer claim and gives up. */
    outboxd_leases_pause_for_test(a, false);
    char why[256];
    int64_t until = outboxd_lease_now_ms() + HANG_MS;
    while (!outboxd_lease_lost_why(la, term, why, sizeof why)) {
        assert_true(outboxd_lease_now_ms() < until);
        sleep_ms(10);
    }
    printf("# A: %s\n", why);
    assert_non_null(strstr(why, "by node-b"));
    assert_int_equal(held_term(la), OUTBOXD_LEASE_NONE);
    assert_int_equal(held_term(lb), b_term);
    outboxd_leases_free(b);
    outboxd_leases_free(a);
    fixture_done(&f);
}

static void three_managers_four_leases_each_holds_one_or_two(void **state) {
    fixture_t f;
    fixture_init(&f);
    enum { M = 3, L = 5 }; /* four sinks and the promoter */
    static const char *names[L] = {"sink:s1", "sink:s2", "sink:s3", "sink:s4", OUTBOXD_LEASE_PROMOTER};
    outboxd_leases_t *m[M];
    outboxd_lease_t *l[M][L];
    runner_t *r[M][L];
    starter_t s[M];
    pthread_t t[M];
    pthread_barrier_t barrier;
    for (int i = 0; i < M; i++) {
        char id[16];
        snprintf(id, sizeof id, "node-%c", 'a' + i);
        m[i] = manager(&f, id, TTL, RENEW);
        for (int j = 0; j < L; j++) {
            l[i][j] = outboxd_leases_get(m[i], names[j]);
            r[i][j] = runner_start(l[i][j]);
        }
        s[i] = (starter_t){m[i], &barrier};
    }
    pthread_barrier_init(&barrier, NULL, M - 1);
    /* A first, alone: it takes all four (its share is 4 while it sees no
     * other instance); then B and C at once, so that the share falls to 2
     * and A must hand leases over. */
    assert_true(outboxd_leases_start(m[0]));
    for (int j = 0; j < L; j++)
        wait_held(l[0][j]);
    for (int i = 1; i < M; i++)
        assert_int_equal(pthread_create(&t[i], NULL, start_main, &s[i]), 0);
    for (int i = 1; i < M; i++)
        pthread_join(t[i], NULL);
    int64_t started = outboxd_lease_now_ms();
    bool converged = false;
    int overlaps = 0;
    while (!converged) {
        assert_true(outboxd_lease_now_ms() - started < HANG_MS);
        int per_manager[M] = {0};
        converged = true;
        for (int j = 0; j < L; j++) {
            int holders = 0;
            for (int i = 0; i < M; i++) {
                int64_t term = held_term(l[i][j]);
                if (term == OUTBOXD_LEASE_NONE)
                    continue;
                holders++;
                if (j < L - 1)
                    per_manager[i]++;
                /* Never two holders: i held it before and after another did. */
                for (int k = 0; k < M; k++)
                    if (k != i && held_term(l[k][j]) != OUTBOXD_LEASE_NONE && outboxd_lease_valid(l[i][j], term))
                        overlaps++;
            }
            if (holders != 1)
                converged = false;
        }
        for (int i = 0; i < M; i++)
            if (per_manager[i] < 1 || per_manager[i] > 2)
                converged = false;
        if (converged)
            printf("# converged after %lld ms: sink leases held %d, %d, %d\n",
                   (long long)(outboxd_lease_now_ms() - started), per_manager[0], per_manager[1], per_manager[2]);
        else
            sleep_ms(20);
    }
    assert_int_equal(overlaps, 0);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < L; j++)
            runner_stop(r[i][j]);
    for (int i = 0; i < M; i++)
        outboxd_leases_free(m[i]);
    pthread_barrier_destroy(&barrier);
    fixture_done(&f);
}

/* A hand-over is told from an expiry by the TTL: 10 s here, so that a
 * takeover by expiry comes after the holder's deadline + renew_ms, a
 * hand-over long before. The holder renews every 2 s (it abstains for
 * 4 s after its release), the standby every 300 ms. */
#define LONG_TTL 10000
#define HOLDER_RENEW 2000

static void a_released_lease_is_free_at_once(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", LONG_TTL, HOLDER_RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    outboxd_leases_t *b = manager(&f, "node-b", LONG_TTL, RENEW);
    outboxd_lease_t *lb = outboxd_leases_get(b, "sink:one");
    assert_true(outboxd_leases_start(b));
    int64_t a_deadline = outboxd_lease_deadline_ms(la, term);
    outboxd_lease_release(la, term);
    assert_false(outboxd_lease_valid(la, term));
    outboxd_lease_doc_t d;
    assert_true(read_claim(&f, "sink:one", term, &d));
    assert_true(d.released);
    int64_t b_term = wait_held(lb);
    int64_t b_acquired = outboxd_lease_acquired_ms(lb, b_term);
    printf("# B claimed term %lld %lld ms before A's claim could have expired\n", (long long)b_term,
           (long long)(a_deadline + HOLDER_RENEW - b_acquired));
    assert_int_equal(b_term, term + 1);
    assert_true(b_acquired < a_deadline + HOLDER_RENEW);
    assert_int_equal(held_term(la), OUTBOXD_LEASE_NONE);
    outboxd_leases_free(b);
    outboxd_leases_free(a);
    fixture_done(&f);
}

static void a_release_request_is_handed_over(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", LONG_TTL, HOLDER_RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    runner_t *ra = runner_start(la);
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    outboxd_leases_t *b = manager(&f, "node-b", LONG_TTL, RENEW);
    outboxd_lease_t *lb = outboxd_leases_get(b, "sink:one");
    runner_t *rb = runner_start(lb);
    assert_true(outboxd_leases_start(b));
    /* What outboxctl lease release writes. */
    bson_t req;
    outboxd_lease_request_id(&req, "sink:one", term);
    BSON_APPEND_UTF8(&req, "by", "test_lease");
    BSON_APPEND_DATE_TIME(&req, "at", (int64_t)time(NULL) * 1000);
    int64_t a_deadline = outboxd_lease_deadline_ms(la, term);
    test_insert_raw(f.coll, &req);
    bson_destroy(&req);
    int64_t b_term = wait_held(lb);
    int64_t b_acquired = outboxd_lease_acquired_ms(lb, b_term);
    assert_int_equal(b_term, term + 1);
    /* Handed over (A's claim says released), not expired. */
    outboxd_lease_doc_t d;
    assert_true(read_claim(&f, "sink:one", term, &d));
    assert_true(d.released);
    assert_true(b_acquired < a_deadline + LONG_TTL);
    assert_int_equal(held_term(la), OUTBOXD_LEASE_NONE);
    runner_stop(rb);
    runner_stop(ra);
    outboxd_leases_free(b);
    outboxd_leases_free(a);
    fixture_done(&f);
}

static void claims_of_a_restored_checkpoint_term_are_above_it(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", TTL, RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    assert_int_equal(term, 1);
    /* The checkpoint claim met term 41 (a restored backup): fenced. */
    outboxd_lease_lost(la, term, 41, "the checkpoint has term 41");
    assert_false(outboxd_lease_valid(la, term));
    char why[256];
    assert_true(outboxd_lease_lost_why(la, term, why, sizeof why));
    assert_string_equal(why, "the checkpoint has term 41");
    /* Its own claim 1 expires unrenewed; the next claim is above 41 (42,
     * or more if a slow server let a term lapse since). */
    int64_t next = wait_held(la);
    assert_true(next > 41);
    outboxd_lease_doc_t d;
    assert_true(read_claim(&f, "sink:one", next, &d));
    assert_string_equal(d.owner, "node-a");
    outboxd_leases_free(a);
    fixture_done(&f);
}

static void ha_off_holds_everything_and_writes_nothing(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_conf_t conf = ha_conf(false, "node-a", TTL, RENEW);
    outboxd_leases_t *m = outboxd_leases_new(f.pool, TEST_DB, f.outbox, &conf);
    assert_non_null(m);
    outboxd_lease_t *sink = outboxd_leases_get(m, "sink:one");
    outboxd_lease_t *promoter = outboxd_leases_get(m, OUTBOXD_LEASE_PROMOTER);
    assert_true(outboxd_leases_start(m));
    atomic_bool stop = false;
    assert_int_equal(outboxd_lease_wait(sink, &stop), OUTBOXD_LEASE_TERM_HA_OFF);
    assert_int_equal(outboxd_lease_wait(promoter, &stop), OUTBOXD_LEASE_TERM_HA_OFF);
    assert_true(outboxd_lease_valid(sink, -1));
    assert_true(outboxd_lease_deadline_ms(sink, -1) == INT64_MAX);
    assert_false(outboxd_lease_handover_wanted(sink, -1));
    sleep_ms(2 * RENEW);
    outboxd_lease_release(sink, -1);
    outboxd_lease_lost(sink, -1, 5, "ignored");
    assert_true(outboxd_lease_valid(sink, -1));
    outboxd_leases_forget(m, sink);
    outboxd_leases_free(m);
    /* Nothing was written: N.leases does not exist. */
    bson_error_t berr;
    mongoc_client_t *client = test_client();
    mongoc_database_t *db = mongoc_client_get_database(client, TEST_DB);
    assert_false(mongoc_database_has_collection(db, f.coll, &berr));
    mongoc_database_destroy(db);
    mongoc_client_destroy(client);
    fixture_done(&f);
}

static void stop_releases_what_is_held_and_removes_the_presence(void **state) {
    fixture_t f;
    fixture_init(&f);
    outboxd_leases_t *a = manager(&f, "node-a", TTL, RENEW);
    outboxd_lease_t *la = outboxd_leases_get(a, "sink:one");
    outboxd_lease_t *lp = outboxd_leases_get(a, OUTBOXD_LEASE_PROMOTER);
    assert_true(outboxd_leases_start(a));
    int64_t term = wait_held(la);
    wait_held(lp);
    outboxd_leases_stop(a);
    assert_false(outboxd_lease_valid(la, term));
    /* The newest claim of each is released, and the presence is gone. */
    outboxd_lease_doc_t d;
    assert_true(newest_claim_doc(&f, "sink:one", &d));
    assert_true(d.released);
    assert_true(newest_claim_doc(&f, OUTBOXD_LEASE_PROMOTER, &d));
    assert_true(d.released);
    bson_error_t berr;
    bson_t *presence = BCON_NEW("_id.instance", "{", "$exists", BCON_BOOL(true), "}");
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, f.coll);
    assert_int_equal(mongoc_collection_count_documents(c, presence, NULL, NULL, NULL, &berr), 0);
    bson_destroy(presence);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    outboxd_leases_free(a);
    fixture_done(&f);
}

int main(void) {
    if (getenv("OUTBOXD_DEBUG"))
        outboxd_log_set_level(OUTBOX_SINK_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_ids_have_one_field_order_and_an_int64_term),
        cmocka_unit_test(presence_lists_name_exactly_their_sinks),
        cmocka_unit_test(a_free_lease_is_taken_by_one_manager_only),
        cmocka_unit_test(a_renewed_lease_is_never_taken_over),
        cmocka_unit_test(an_unrenewed_lease_is_taken_only_after_the_holders_deadline),
        cmocka_unit_test(three_managers_four_leases_each_holds_one_or_two),
        cmocka_unit_test(a_released_lease_is_free_at_once),
        cmocka_unit_test(a_release_request_is_handed_over),
        cmocka_unit_test(claims_of_a_restored_checkpoint_term_are_above_it),
        cmocka_unit_test(ha_off_holds_everything_and_writes_nothing),
        cmocka_unit_test(stop_releases_what_is_held_and_removes_the_presence),
    };
    return TEST_RUN("lease", tests);
}
