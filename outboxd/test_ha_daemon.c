/*
 * test_ha_daemon.c - two real outboxd with the same sink against one outbox
 * (issue 14, docs/leases.md 7.3, package 3): the runner's and the daemon's
 * side of the leases, through their logs, their files and the database.
 *   - SIGTERM of the holder hands the sink over: the standby takes it
 *     because it was released (not after a TTL) and goes on exactly where
 *     the holder's last checkpoint left it (no duplicate);
 *   - an operator's release request (outboxctl lease release) hands the
 *     sink over the same way while the holder keeps running;
 *   - a holder paused (SIGSTOP) past the standby's takeover writes nothing
 *     when it resumes: the checkpoint's term never goes back, the old
 *     holder logs "lease lost" with both terms and its file gets no line
 *     after that, while the new holder's goes on;
 *   - the promoter runs in exactly one instance per term;
 *   - a standby instance opens no tail of the log (the shared reader idles
 *     without members);
 *   - with ha.enabled: false outboxd publishes as before leases: no term in
 *     the checkpoint, no N.leases;
 *   - instances with different sink lists (a config roll-out) leave no sink
 *     without a holder, and hand over only what the other can run;
 *   - SIGHUP keeps the lease of an unchanged sink, hands a removed one over
 *     at once and takes an added one.
 * Each instance has its own instance_id, config file and output file (the
 * sink's route differs; its name, and so its lease, is the same).
 * No timing thresholds: order by the mono_ms=N every lease line carries
 * (one clock for every process on this host); bounds only a hang exceeds.
 *
 * The lease is twice daemonlib's test lease (2 s, renewed every 600 ms):
 * a holder on a loaded two-core machine must not lose it by a late
 * renewal in the middle of a test that asserts a hand-over.
 */
#include "daemonlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* daemonlib's lease for tests about HA (scaled in sanitizer and valgrind
 * runs, where the server answers slower). */
#define TTL_MS test_ha_ttl_ms()
#define RENEW_MS test_ha_renew_ms()

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* dir/INSTANCE.yaml: a file sink for each of names, "audit" writing
 * dir/INSTANCE.jsonl and any other dir/INSTANCE-NAME.jsonl, and the ha
 * section with this instance's id. */
static char *config_with(const char *dir, outbox_t *ob, const char *instance, const char *const *names, int n) {
    char sinks[4096] = "", file[100], ha[100];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], "audit") == 0)
            len += (size_t)snprintf(sinks + len, sizeof sinks - len,
                                    "  - name: audit\n    plugin: file\n    route: \"%s/%s.jsonl\"\n", dir, instance);
        else
            len += (size_t)snprintf(sinks + len, sizeof sinks - len,
                                    "  - name: %s\n    plugin: file\n    route: \"%s/%s-%s.jsonl\"\n", names[i], dir,
                                    instance, names[i]);
        assert_true(len < sizeof sinks);
    }
    snprintf(file, sizeof file, "%s.yaml", instance);
    snprintf(ha, sizeof ha, "  instance_id: %s\n", instance);
    return test_daemon_config_file(dir, file, ob, sinks, ha);
}

/* dir/INSTANCE.yaml: one file sink "audit" writing dir/INSTANCE.jsonl. */
static char *config_for(const char *dir, outbox_t *ob, const char *instance) {
    static const char *const audit[] = {"audit"};
    return config_with(dir, ob, instance, audit, 1);
}

/* Starts the instance with its log in dir/INSTANCE.log and waits until it
 * has started its sinks (the libtool wrapper is gone by then). */
static void start(test_daemon_t *d, const char *dir, const char *config, const char *instance) {
    char log[600];
    snprintf(log, sizeof log, "%s/%s.log", dir, instance);
    test_daemon_start_log(d, config, "sinks/file", log);
}

/* The mono_ms=N of the first line of d's log that holds text; -1 if none. */
static long long mono_of(const test_daemon_t *d, const char *text) {
    char *log = test_read_file(d->log);
    long long v = -1;
    const char *at = log ? strstr(log, text) : NULL;
    if (at) {
        const char *eol = strchr(at, '\n');
        const char *m = strstr(at, "mono_ms=");
        if (m && (!eol || m < eol))
            v = atoll(m + 8);
    }
    free(log);
    return v;
}

/* The first line of d's log holding text (caller frees); NULL if none. */
static char *line_of(const test_daemon_t *d, const char *text) {
    char *log = test_read_file(d->log);
    char *line = NULL;
    const char *at = log ? strstr(log, text) : NULL;
    if (at) {
        const char *start = at;
        while (start > log && start[-1] != '\n')
            start--;
        const char *eol = strchr(at, '\n');
        size_t len = eol ? (size_t)(eol - start) : strlen(start);
        line = strndup(start, len);
    }
    free(log);
    return line;
}

static int count_log(const test_daemon_t *d, const char *text) {
    char *log = test_read_file(d->log);
    int n = test_count_in(log, text);
    free(log);
    return n;
}

/* The sink's checkpoint term and owner; -1 without a document or a term. */
static long long checkpoint_term(outbox_t *ob, const char *sink, char *owner, size_t owner_size) {
    char coll[256];
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    const bson_t *doc;
    long long term = -1;
    if (owner)
        owner[0] = '\0';
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "term") && BSON_ITER_HOLDS_NUMBER(&it))
            term = bson_iter_as_int64(&it);
        if (owner && bson_iter_init_find(&it, doc, "owner") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(owner, owner_size, "%s", bson_iter_utf8(&it, NULL));
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return term;
}

static void put_range(outbox_t *ob, int from, int to) {
    for (int i = from; i <= to; i++)
        test_put_order(ob, i, "k");
}

/* path gets exactly the events from..from+n-1, in order (a duplicate
 * would show as a line more half a second later). */
static void expect_run(const char *path, int from, int n) {
    assert_int_equal(test_wait_lines(path, n, 60000), n);
    sleep_ms(500);
    int got[400];
    assert_true(n < 400);
    int have = test_jsonl_ordernrs(path, got, 400);
    assert_int_equal(have, n);
    for (int i = 0; i < have; i++)
        assert_int_equal(got[i], from + i);
}

/* A holds the sink (started first), B stands by. */
static void start_pair(const char *dir, outbox_t *ob, test_daemon_t *a, test_daemon_t *b, char **ca, char **cb) {
    *ca = config_for(dir, ob, "a");
    *cb = config_for(dir, ob, "b");
    start(a, dir, *ca, "a");
    test_daemon_wait_log(a, "lease sink:audit: acquired term", 1);
    start(b, dir, *cb, "b");
    test_daemon_wait_log(b, "sink audit: standing by", 1);
}

static void sigterm_hands_over_without_waiting_for_the_ttl(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_term");
    char *dir = test_tmpdir("ha_term");
    char *ca, *cb, fa[600], fb[600];
    test_daemon_t a, b;
    start_pair(dir, ob, &a, &b, &ca, &cb);
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    snprintf(fb, sizeof fb, "%s/b.jsonl", dir);
    put_range(ob, 1, 100);
    assert_int_equal(test_wait_lines(fa, 100, 60000), 100);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    test_daemon_wait_log(&b, "lease sink:audit: acquired term", 1);

    /* B took it because A released it (not because it went unrenewed for
     * a TTL), and after A's release. */
    char *acquired = line_of(&b, "lease sink:audit: acquired term");
    assert_non_null(acquired);
    print_message("# B: %s\n", acquired);
    assert_non_null(strstr(acquired, "by a was released"));
    long long released = mono_of(&a, "lease sink:audit: released term");
    long long taken = mono_of(&b, "lease sink:audit: acquired term");
    assert_true(released >= 0 && taken >= 0);
    assert_true(released <= taken);
    print_message("# takeover %lld ms after the release: %.2f TTLs\n", taken - released,
                  (double)(taken - released) / TTL_MS);

    /* B goes on exactly after A's last checkpoint: no event twice. */
    put_range(ob, 101, 200);
    assert_int_equal(test_wait_lines(fb, 100, 60000), 100);
    sleep_ms(500); /* a duplicate would show as a line more */
    int got[400];
    int n = test_jsonl_ordernrs(fb, got, 400);
    if (n != 100) {
        print_message("# B has %d lines, from %d to %d\n", n, n > 0 ? got[0] : 0, n > 0 ? got[n - 1] : 0);
        char *la = test_read_file(a.log), *lb = test_read_file(b.log);
        print_message("# A's log:\n%s\n# B's log:\n%s\n", la, lb);
        free(la);
        free(lb);
    }
    assert_int_equal(n, 100);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], 101 + i);
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    free(acquired);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

static void a_release_request_hands_the_sink_over_while_the_holder_runs(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_release");
    char *dir = test_tmpdir("ha_release");
    char *ca, *cb, fa[600], fb[600], cmd[1600];
    test_daemon_t a, b;
    start_pair(dir, ob, &a, &b, &ca, &cb);
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    snprintf(fb, sizeof fb, "%s/b.jsonl", dir);
    put_range(ob, 1, 100);
    assert_int_equal(test_wait_lines(fa, 100, 60000), 100);
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s lease release audit >/dev/null",
             builddir(), test_mongodb_uri(), TEST_DB, outbox_name(ob));
    assert_int_equal(system(cmd), 0);
    /* A stops publishing, writes its last checkpoint and releases; B
     * takes the sink as released. */
    test_daemon_wait_log(&a, "sink audit: term 1 handed over after the last checkpoint", 1);
    test_daemon_wait_log(&b, "lease sink:audit: acquired term 2 (claim 1 by a was released)", 1);
    put_range(ob, 101, 200);
    expect_run(fb, 101, 100);
    /* A stands by and publishes nothing more. */
    assert_int_equal(test_wait_lines(fa, 0, 0), 100);
    assert_true(count_log(&a, "sink audit: standing by") >= 1);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void a_paused_holder_writes_no_checkpoint_and_stops(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_pause");
    char *dir = test_tmpdir("ha_pause");
    char *ca, *cb, fa[600], fb[600], owner[128];
    test_daemon_t a, b;
    start_pair(dir, ob, &a, &b, &ca, &cb);
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    snprintf(fb, sizeof fb, "%s/b.jsonl", dir);
    put_range(ob, 1, 100);
    assert_int_equal(test_wait_lines(fa, 100, 60000), 100);
    long long term_a = checkpoint_term(ob, "audit", owner, sizeof owner);
    assert_true(term_a >= 1);
    assert_string_equal(owner, "a");

    /* A frozen: B takes over after a TTL and moves the checkpoint. */
    test_daemon_pause(&a);
    test_daemon_wait_log(&b, "lease sink:audit: acquired term", 1);
    put_range(ob, 101, 200);
    assert_int_equal(test_wait_lines(fb, 1, 60000) > 0, 1);
    long long term_b = -1;
    for (int i = 0; i < 600 && term_b <= term_a; i++) {
        term_b = checkpoint_term(ob, "audit", owner, sizeof owner);
        if (term_b <= term_a)
            sleep_ms(100);
    }
    assert_true(term_b > term_a);
    assert_string_equal(owner, "b");

    /* A resumes: it says it lost the lease, naming both terms, and writes
     * nothing: the checkpoint stays B's (sampled until A's line is there,
     * and a while after). */
    test_daemon_resume(&a);
    bool said = false;
    for (int i = 0; i < 600 && !said; i++) {
        long long t = checkpoint_term(ob, "audit", owner, sizeof owner);
        assert_true(t >= term_b);
        assert_string_equal(owner, "b");
        said = count_log(&a, "sink audit: lease lost: term") > 0;
        if (!said)
            sleep_ms(100);
    }
    assert_true(said);
    char *lost = line_of(&a, "sink audit: lease lost: term");
    print_message("# A: %s\n# terms: A %lld, B %lld\n", lost, term_a, term_b);
    char want_a[64], want_b[64];
    snprintf(want_a, sizeof want_a, "lease lost: term %lld ", term_a);
    snprintf(want_b, sizeof want_b, "has term %lld", term_b);
    assert_non_null(strstr(lost, want_a));
    assert_non_null(strstr(lost, want_b));
    assert_non_null(strstr(lost, "stopped publishing"));
    int a_lines = test_wait_lines(fa, 0, 0);

    /* B's output goes on, A's file gets no line more. */
    put_range(ob, 201, 300);
    int got[1000];
    bool b_done = false;
    for (int i = 0; i < 600 && !b_done; i++) {
        int n = test_jsonl_ordernrs(fb, got, 1000);
        b_done = n > 0 && got[n - 1] == 300;
        long long t = checkpoint_term(ob, "audit", owner, sizeof owner);
        assert_true(t >= term_b);
        if (!b_done)
            sleep_ms(100);
    }
    assert_true(b_done);
    assert_int_equal(test_wait_lines(fa, 0, 0), a_lines);
    /* A stands by again (it may take the sink back only by a new term). */
    assert_true(count_log(&a, "sink audit: standing by") >= 1);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    free(lost);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void write_pending(outbox_t *ob, int first, int count) {
    char name[256];
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    for (int i = first; i < first + count; i++) {
        bson_oid_t id;
        bson_oid_init(&id, NULL);
        bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("order.created"), "key", BCON_UTF8("k"),
                               "data", "{", "ordernr", BCON_INT32(i), "total", BCON_DOUBLE(1), "}", "created",
                               BCON_DATE_TIME(0), "v", BCON_INT32(1));
        test_insert_raw(name, doc);
        bson_destroy(doc);
    }
}

/* The terms at which d's promoter said it runs, into terms; their count. */
static int promoter_terms(const test_daemon_t *d, long long *terms, int max) {
    char *log = test_read_file(d->log);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, "promoter: running at term ")) && n < max; p++)
        terms[n++] = atoll(p + strlen("promoter: running at term "));
    free(log);
    return n;
}

/* No term of the promoter's lease ran in both instances. */
static void assert_one_promoter_per_term(const test_daemon_t *a, const test_daemon_t *b) {
    long long ta[64], tb[64];
    int na = promoter_terms(a, ta, 64), nb = promoter_terms(b, tb, 64);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (ta[i] == tb[j])
                fail_msg("the promoter ran at term %lld in both instances", ta[i]);
}

static void the_promoter_runs_in_exactly_one_instance(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_promote");
    char *dir = test_tmpdir("ha_promote");
    char *ca, *cb, fa[600], fb[600], owner[128];
    test_daemon_t a, b;
    start_pair(dir, ob, &a, &b, &ca, &cb);
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    snprintf(fb, sizeof fb, "%s/b.jsonl", dir);
    write_pending(ob, 1, 50);
    /* Moved into the log once (A publishes them: no event twice). */
    assert_int_equal(test_wait_lines(fa, 50, 60000), 50);
    int64_t term;
    assert_true(test_lease_claim(ob, "promoter", owner, sizeof owner, &term, NULL));
    test_daemon_t *holder = strcmp(owner, "a") == 0 ? &a : &b, *other = holder == &a ? &b : &a;
    char running[64];
    snprintf(running, sizeof running, "promoter: running at term %lld ", (long long)term);
    assert_int_equal(count_log(holder, running), 1);
    assert_int_equal(count_log(other, running), 0);
    assert_one_promoter_per_term(&a, &b);

    /* The holder stops: the other runs the promoter, at a newer term. */
    assert_int_equal(test_daemon_stop(holder, SIGTERM), 0);
    test_daemon_wait_log(other, "promoter: running at term", 1);
    int64_t term2;
    assert_true(test_lease_claim(ob, "promoter", owner, sizeof owner, &term2, NULL));
    assert_true(term2 > term);
    assert_string_equal(owner, other == &a ? "a" : "b");
    write_pending(ob, 51, 50);
    /* The other holds the sink now too (handed over at SIGTERM). */
    const char *out = other == &a ? fa : fb;
    int got[400];
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        int n = test_jsonl_ordernrs(out, got, 400);
        done = n > 0 && got[n - 1] == 100;
        if (!done)
            sleep_ms(100);
    }
    assert_true(done);
    assert_one_promoter_per_term(&a, &b);
    assert_int_equal(test_daemon_stop(other, SIGTERM), 0);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void a_standby_instance_opens_no_tail(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_idle");
    char *dir = test_tmpdir("ha_idle");
    char *ca, *cb, fa[600];
    test_daemon_t a, b;
    put_range(ob, 1, 50);
    start_pair(dir, ob, &a, &b, &ca, &cb);
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    put_range(ob, 51, 100);
    assert_int_equal(test_wait_lines(fa, 100, 60000), 100);
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    char *log_b = test_read_file(b.log), *log_a = test_read_file(a.log);
    assert_int_equal(test_count_in(log_b, "shared reader: reading"), 0);
    assert_int_equal(test_count_in(log_b, "shared reader: stopped; 0 shared tails opened"), 1);
    assert_int_equal(test_count_in(log_a, "shared reader: stopped; 1 shared tails opened"), 1);
    free(log_a);
    free(log_b);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void ha_off_writes_no_term_and_no_lease(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("ha_off");
    char *dir = test_tmpdir("ha_off");
    char sinks[700], out[600];
    snprintf(out, sizeof out, "%s/off.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    put_range(ob, 1, 100);
    assert_int_equal(test_wait_lines(out, 100, 60000), 100);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(test_checkpoint_term(ob, "audit"), -1);
    char leases[256];
    snprintf(leases, sizeof leases, "%s.leases", outbox_name(ob));
    assert_int_equal(test_count(leases), 0);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "standing by"), 0);
    assert_int_equal(test_count_in(log, "active at term"), 0);
    assert_int_equal(test_count_in(log, "promoter: running at term"), 0);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* A rolling change of the config: instance a already has three more sinks
 * that b does not know yet. a starts first and takes all four; when b
 * comes, a hands over the one sink b can run (audit) and keeps the three
 * only it can run: none is left without a holder (an instance must not
 * give up a sink that no other can take, nor stay below its share while a
 * sink it can run has no holder). */
static void instances_with_different_sink_lists_run_every_sink(void **state) {
    (void)state;
    static const char *const names[] = {"audit", "e1", "e2", "e3"};
    outbox_t *ob = test_outbox("ha_lists");
    char *dir = test_tmpdir("ha_lists");
    char *ca = config_with(dir, ob, "a", names, 4);
    char *cb = config_for(dir, ob, "b");
    test_daemon_t a, b;
    start(&a, dir, ca, "a");
    for (int i = 0; i < 4; i++) {
        char what[80];
        snprintf(what, sizeof what, "lease sink:%s: acquired term", names[i]);
        test_daemon_wait_log(&a, what, 1);
    }
    start(&b, dir, cb, "b");
    test_daemon_wait_log(&b, "lease sink:audit: acquired term 2", 1);

    /* Every sink publishes every event from here on, audit in b. */
    enum { N = 300 };
    put_range(ob, 1, N);
    char path[600];
    for (int i = 1; i < 4; i++) {
        snprintf(path, sizeof path, "%s/a-%s.jsonl", dir, names[i]);
        int got = test_wait_lines(path, N, 60000);
        if (got != N) {
            char *la = test_read_file(a.log);
            print_message("# a's log:\n%s\n", la);
            free(la);
        }
        assert_int_equal(got, N);
    }
    snprintf(path, sizeof path, "%s/b.jsonl", dir);
    int got[N + 1];
    assert_true(test_wait_lines(path, N, 60000) >= 1);
    int n = test_jsonl_ordernrs(path, got, N + 1);
    assert_true(n >= 1);
    assert_int_equal(got[n - 1], N);
    /* a handed over nothing else, and b took audit from a's release. */
    char *la = test_read_file(a.log);
    assert_int_equal(test_count_in(la, "hand-over of term"), 1);
    assert_int_equal(test_count_in(la, "lease sink:audit: hand-over of term 1 wanted"), 1);
    for (int i = 1; i < 4; i++) {
        char what[80];
        snprintf(what, sizeof what, "lease sink:%s: acquired term", names[i]);
        assert_int_equal(test_count_in(la, what), 1);
    }
    free(la);
    char owner[80];
    assert_int_equal(checkpoint_term(ob, "audit", owner, sizeof owner), 2);
    assert_string_equal(owner, "b");
    for (int i = 1; i < 4; i++) {
        assert_int_equal(checkpoint_term(ob, names[i], owner, sizeof owner), 1);
        assert_string_equal(owner, "a");
    }
    print_message("# a runs e1, e2 and e3 (only it has them), b runs audit: every sink has one holder\n");
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* SIGHUP with HA on: a sink that did not change keeps its lease and term;
 * a sink removed from the holder's config is handed over at once (its
 * lease released after its last checkpoint, so the standby takes it
 * without waiting for a TTL and goes on without a duplicate); a sink
 * added by the reload is taken. */
static void sighup_keeps_unchanged_leases_and_hands_over_removed_sinks(void **state) {
    (void)state;
    static const char *const two[] = {"audit", "extra"};
    static const char *const extra_only[] = {"extra", "late"};
    /* b runs a sink of its own, bonly: with audit and extra, a is then one
     * lease ahead of b, not two, and the balance (docs/leases.md 1.7) never
     * hands audit over. This test is about the reload; under valgrind a
     * balance round came before a's 200th line and moved audit to b. */
    static const char *const b_sinks[] = {"audit", "bonly"};
    outbox_t *ob = test_outbox("ha_hup");
    char *dir = test_tmpdir("ha_hup");
    char *ca = config_for(dir, ob, "a");
    char *cb = config_with(dir, ob, "b", b_sinks, 2);
    test_daemon_t a, b;
    start(&a, dir, ca, "a");
    test_daemon_wait_log(&a, "lease sink:audit: acquired term 1", 1);
    start(&b, dir, cb, "b");
    test_daemon_wait_log(&b, "sink audit: standing by", 1);
    char fa[600], fb[600];
    snprintf(fa, sizeof fa, "%s/a.jsonl", dir);
    snprintf(fb, sizeof fb, "%s/b.jsonl", dir);
    put_range(ob, 1, 100);
    assert_int_equal(test_wait_lines(fa, 100, 60000), 100);

    /* Unchanged: nothing moves. */
    free(config_with(dir, ob, "a", two, 2));
    kill(a.pid, SIGHUP);
    test_daemon_wait_log(&a, "reload: sink audit is unchanged and keeps running", 1);
    test_daemon_wait_log(&a, "lease sink:extra: acquired term 1", 1);
    put_range(ob, 101, 200);
    assert_int_equal(test_wait_lines(fa, 200, 60000), 200);
    char owner[80];
    assert_int_equal(checkpoint_term(ob, "audit", owner, sizeof owner), 1);
    assert_string_equal(owner, "a");

    /* audit removed from a: b takes it as released and goes on from a's
     * last checkpoint. */
    free(config_with(dir, ob, "a", extra_only, 2));
    kill(a.pid, SIGHUP);
    test_daemon_wait_log(&a, "reload: sink audit is removed: stopping it", 1);
    test_daemon_wait_log(&b, "lease sink:audit: acquired term 2 (claim 1 by a was released)", 1);
    test_daemon_wait_log(&a, "lease sink:late: acquired term 1", 1);
    put_range(ob, 201, 300);
    expect_run(fb, 201, 100);
    assert_int_equal(test_wait_lines(fa, 0, 0), 200);
    char path[600];
    snprintf(path, sizeof path, "%s/a-late.jsonl", dir);
    assert_int_equal(test_wait_lines(path, 300, 60000), 300);
    assert_int_equal(test_daemon_stop(&b, SIGTERM), 0);
    assert_int_equal(test_daemon_stop(&a, SIGTERM), 0);
    free(ca);
    free(cb);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigterm_hands_over_without_waiting_for_the_ttl),
        cmocka_unit_test(a_release_request_hands_the_sink_over_while_the_holder_runs),
        cmocka_unit_test(a_paused_holder_writes_no_checkpoint_and_stops),
        cmocka_unit_test(the_promoter_runs_in_exactly_one_instance),
        cmocka_unit_test(a_standby_instance_opens_no_tail),
        cmocka_unit_test(ha_off_writes_no_term_and_no_lease),
        cmocka_unit_test(instances_with_different_sink_lists_run_every_sink),
        cmocka_unit_test(sighup_keeps_unchanged_leases_and_hands_over_removed_sinks),
    };
    return TEST_RUN("test_ha_daemon", tests);
}
