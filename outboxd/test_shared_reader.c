/*
 * test_shared_reader.c - the real outboxd with one shared reader per outbox
 * (issue 17), against the harness's servers:
 *   - sinks that keep up share one tail of the log: every sink gets every
 *     event once, in order, the reader opened one tail and no sink a tail
 *     of its own (outboxd's own figures, in the checkpoint documents);
 *     with OUTBOXD_TEST_KAFKA (test_shared_reader_kafka): three file sinks
 *     and a Kafka sink, 50,000 events;
 *   - a sink blocked past the ring's size falls off it while the other goes
 *     on, catches up on a tail of its own and comes back onto the ring:
 *     nothing missing and no duplicate at either hand-over, checked event
 *     by event;
 *   - the same with kill -9 of outboxd while the sink is catching up, and a
 *     restart: nothing missing, and the only repeats are the crash's (a run
 *     of events published again after the last checkpoint write).
 */
#include "daemonlib.h"

#ifdef OUTBOXD_TEST_KAFKA
#include "kafka_testlib.h"
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Each of the two programs built from this file uses only some helpers. */
#define MAYBE_UNUSED __attribute__((unused))

MAYBE_UNUSED static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Puts order.created events from..to in batches of up to 1000 (one insert
 * each); key_of(n) is event n's key. ids[n] receives each id (if ids). */
static void put_range(outbox_t *ob, int from, int to, const char *(*key_of)(int), bson_oid_t *ids) {
    outbox_error_t err;
    for (int start = from; start <= to; start += 1000) {
        int end = start + 999 < to ? start + 999 : to;
        outbox_batch_t *batch = outbox_batch_new(ob);
        for (int n = start; n <= end; n++) {
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(n), "total", BCON_DOUBLE(19.95));
            if (outbox_batch_add(batch, "order.created", key_of(n), data, NULL, &err) != OUTBOX_OK)
                fail_msg("batch add %d: %s", n, err.message);
            bson_destroy(data);
        }
        if (outbox_batch_put(batch, NULL, &err) != OUTBOX_OK)
            fail_msg("batch put: %s", err.message);
        for (int n = start; ids && n <= end; n++)
            bson_oid_copy(outbox_batch_id(batch, (size_t)(n - start)), &ids[n]);
        outbox_batch_destroy(batch);
    }
}

static const char *key_k(int n) {
    (void)n;
    return "k";
}

/* The reading figures outboxd writes into a sink's checkpoint document. */
typedef struct {
    int64_t shared_tails, catchup_tails, catchups;
} figures_t;

static bool reading_figures(outbox_t *ob, const char *sink, figures_t *f) {
    char coll[256];
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    const bson_t *doc;
    bool found = false;
    memset(f, 0, sizeof *f);
    f->shared_tails = f->catchup_tails = f->catchups = -1;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "reader.shared_tails", &it))
            f->shared_tails = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "catchup_tails"))
            f->catchup_tails = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "catchups"))
            f->catchups = bson_iter_as_int64(&it);
        found = f->shared_tails >= 0;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return found;
}

/* Every ordernr from..to exactly once, in order (each line the one after
 * the line before): what a sink that was never restarted must have
 * written, hand-overs between the ring and a catch-up tail included. */
static void check_exact(const char *path, int from, int to) {
    int cap = to - from + 1 + 64;
    int *got = calloc((size_t)cap, sizeof *got);
    int n = test_jsonl_ordernrs(path, got, cap);
    for (int i = 0; i < n && i < cap; i++) {
        if (got[i] != from + i)
            fail_msg("%s: line %d has ordernr %d, expected %d (%s)", path, i + 1, got[i], from + i,
                     got[i] < from + i ? "a duplicate" : "events missing");
    }
    if (n != to - from + 1)
        fail_msg("%s: %d lines, expected %d (events %d..%d)", path, n, to - from + 1, from, to);
    free(got);
}

/* Every ordernr from..to, in order, where the only repeats are runs that
 * start again at an earlier event, at most restarts of them (a crash
 * publishes the events after the last checkpoint write again). Returns
 * the number of repeated lines. */
MAYBE_UNUSED static int check_with_restarts(const char *path, int from, int to, int restarts) {
    int cap = (to - from + 1) * 2 + 64;
    int *got = calloc((size_t)cap, sizeof *got);
    int n = test_jsonl_ordernrs(path, got, cap);
    int high = from - 1, backs = 0, repeats = 0;
    for (int i = 0; i < n && i < cap; i++) {
        int v = got[i];
        int prev = i ? got[i - 1] : from - 1;
        if (v != prev + 1) {
            if (v > prev + 1 || v < from)
                fail_msg("%s: line %d has ordernr %d after %d: events missing", path, i + 1, v, prev);
            backs++; /* starts again at an earlier event */
        }
        if (v <= high)
            repeats++;
        else if (v != high + 1)
            fail_msg("%s: line %d has ordernr %d, expected %d (events missing)", path, i + 1, v, high + 1);
        else
            high = v;
    }
    if (backs > restarts)
        fail_msg("%s: %d runs started again at an earlier event, only %d restarts of outboxd to explain them",
                 path, backs, restarts);
    if (high != to)
        fail_msg("%s: events %d..%d missing", path, high + 1, to);
    free(got);
    return repeats;
}

/* Waits until the file's last line is event last. */
MAYBE_UNUSED static bool wait_for_last(const char *path, int last, int timeout_ms) {
    int cap = last * 2 + 64;
    int *got = calloc((size_t)cap, sizeof *got);
    bool seen = false;
    for (int waited = 0; waited <= timeout_ms && !seen; waited += 100) {
        int n = test_jsonl_ordernrs(path, got, cap);
        seen = n > 0 && n <= cap && got[n - 1] == last;
        if (!seen)
            sleep_ms(100);
    }
    free(got);
    return seen;
}

/* A plugin folder with copies of the build tree's sinks (outboxd loads
 * NAME.so from one trusted folder and refuses links out of it). */
MAYBE_UNUSED static void copy_plugins(const char *dir, const char *const *names, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/plugins' && chmod 755 '%s/plugins'", dir, dir);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/sinks/%s/.libs/%s.so' '%s/plugins/%s.so' && chmod 755 '%s/plugins/%s.so'",
                 builddir(), names[i], names[i], dir, names[i], dir, names[i]);
        if (system(cmd) != 0)
            fail_msg("cannot copy the %s sink (%s)", names[i], cmd);
    }
}

/* The test config, with the ring limited to ring_events entries. */
static char *config_with_ring(const char *dir, outbox_t *ob, const char *sinks, int ring_events) {
    char *text = malloc(strlen(sinks) + 200);
    snprintf(text, strlen(sinks) + 200, "%s", sinks);
    /* HA on (one instance holds every sink), with a lease three times
     * daemonlib's: draining tens of thousands of events keeps FerretDB so
     * busy that a 1 s lease's renewals miss their 700 ms window (measured:
     * 30 losses in one run), and this test is about the reader, not the
     * leases (outboxd/test_ha_daemon.c and tests/test_ha.c are). */
    char ha[120];
    snprintf(ha, sizeof ha, "  lease_ttl_ms: %d\n  renew_ms: %d\n", 3 * test_ha_ttl_ms(), 3 * test_ha_renew_ms());
    char *path = test_daemon_config_ha(dir, ob, text, ha);
    free(text);
    if (ring_events > 0) {
        FILE *f = fopen(path, "a");
        assert_non_null(f);
        fprintf(f, "reader:\n  ring_events: %d\n", ring_events);
        fclose(f);
    }
    return path;
}

#define FILE_SINK(name, route) "  - name: " name "\n    plugin: file\n    route: \"" route "\"\n    options:\n      fsync: never\n"

/* A gate: a regular file where a sink's route needs a directory, so that
 * the file sink's every publish fails with RETRY (ENOTDIR, even for root)
 * until the gate is removed. */
MAYBE_UNUSED static void close_gate(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

MAYBE_UNUSED static void open_gate(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

#ifndef OUTBOXD_TEST_KAFKA

/* A sink blocked while the other publishes many times the ring's size: it
 * falls off the ring, and once unblocked it drains its window, catches up
 * on a tail of its own and comes back onto the ring. */
static void a_blocked_sink_falls_off_the_ring_catches_up_alone_and_rejoins_without_gap_or_duplicate(void **state) {
    (void)state;
    /* FIRST > a sink's window (2048) + the ring (4096, the default): the
     * other sink's progress pushes the blocked one's next event off it. */
    enum { FIRST = 14000, MORE = 300 };
    outbox_t *ob = test_outbox("sr_block");
    char *dir = test_tmpdir("srblock");
    char sinks[2048], fast[600], slow[600];
    snprintf(sinks, sizeof sinks, FILE_SINK("fast", "%s/fast.jsonl") FILE_SINK("slow", "%s/gate/slow.jsonl"), dir,
             dir);
    snprintf(fast, sizeof fast, "%s/fast.jsonl", dir);
    snprintf(slow, sizeof slow, "%s/gate/slow.jsonl", dir);
    close_gate(dir, "gate");
    char *config = config_with_ring(dir, ob, sinks, 0);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    put_range(ob, 1, FIRST, key_k, NULL);
    /* The other sink is not held back by it. */
    assert_int_equal(test_wait_lines(fast, FIRST, 60000), FIRST);
    test_daemon_wait_log(&d, "sink slow: publish:", 1);

    open_gate(dir, "gate");
    test_daemon_wait_log(&d, "sink slow: behind the shared reader", 1);
    test_daemon_wait_log(&d, "sink slow: back on the shared reader", 1);
    assert_int_equal(test_wait_lines(slow, FIRST, 60000), FIRST);
    /* Back on the ring: what comes next reaches it from there. */
    put_range(ob, FIRST + 1, FIRST + MORE, key_k, NULL);
    assert_int_equal(test_wait_lines(fast, FIRST + MORE, 60000), FIRST + MORE);
    assert_int_equal(test_wait_lines(slow, FIRST + MORE, 60000), FIRST + MORE);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    check_exact(fast, 1, FIRST + MORE);
    check_exact(slow, 1, FIRST + MORE);
    figures_t ff, fs;
    assert_true(reading_figures(ob, "fast", &ff));
    assert_true(reading_figures(ob, "slow", &fs));
    assert_int_equal(ff.shared_tails, 1);
    assert_int_equal(ff.catchup_tails, 0);
    assert_int_equal(fs.shared_tails, 1);
    assert_int_equal(fs.catchup_tails, 1); /* it went private once... */
    assert_int_equal(fs.catchups, 1);      /* ...and came back */
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "sink slow: back on the shared reader"), 1);
    assert_int_equal(test_count_in(log, "sink fast: behind the shared reader"), 0);
    if (!strstr(log, "shared reader: stopped; 1 shared tails opened"))
        fail_msg("the log does not count the shared reader's tails:\n%s", log);
    free(log);
    print_message("# %d events, ring of 4096: sink slow went private once and came back; nothing missing, no "
                  "duplicate\n", FIRST + MORE);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* Events 1..A_END go to the slow sink's gate a, the rest to gate b.
 * B_END - A_END > the window (2048) + the default ring (4096): while the slow sink
 * is held at gate b, the event its catch-up tail read last is older than
 * any the ring holds, so it cannot be back on the ring when killed. */
enum { A_END = 6000, B_END = 20000, AFTER = 200 };

static const char *key_ab(int n) {
    return n <= A_END ? "a" : "b";
}

static void kill_9_during_a_catch_up_and_a_restart_lose_nothing(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("sr_kill");
    char *dir = test_tmpdir("srkill");
    char sinks[2048], fast[600], slow_a[600], slow_b[600];
    snprintf(sinks, sizeof sinks, FILE_SINK("fast", "%s/fast.jsonl") FILE_SINK("slow", "%s/{key}.d/slow.jsonl"),
             dir, dir);
    snprintf(fast, sizeof fast, "%s/fast.jsonl", dir);
    snprintf(slow_a, sizeof slow_a, "%s/a.d/slow.jsonl", dir);
    snprintf(slow_b, sizeof slow_b, "%s/b.d/slow.jsonl", dir);
    close_gate(dir, "a.d");
    close_gate(dir, "b.d");
    char *config = config_with_ring(dir, ob, sinks, 0);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    put_range(ob, 1, B_END, key_ab, NULL);
    assert_int_equal(test_wait_lines(fast, B_END, 60000), B_END);

    /* Gate a opens: the sink catches up on its own tail through event
     * A_END and stops at A_END + 1 (gate b), its window full of b's events
     * and the ring far ahead: it is mid catch-up for as long as b stays
     * shut. */
    test_daemon_wait_log(&d, "sink slow: publish:", 1);
    open_gate(dir, "a.d");
    test_daemon_wait_log(&d, "sink slow: behind the shared reader", 1);
    assert_int_equal(test_wait_lines(slow_a, A_END, 60000), A_END);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "sink slow: back on the shared reader"), 0);
    free(log);
    assert_int_equal(test_daemon_stop(&d, SIGKILL), 128 + SIGKILL);

    /* Restarted with b still shut: the sink starts from its checkpoint
     * and is held at b again; the other sink takes the events after B_END.
     * How slow goes on depends on the order the leases come back in (after
     * kill -9 the restarted outboxd waits out the dead one's leases, each
     * on its own):
     * - both active before the reader starts: the reader starts at the
     *   older checkpoint (slow's), fast catches up on a tail of its own,
     *   and the reader, pacing itself to the one sink on the ring, waits
     *   for slow: slow stays on the ring throughout;
     * - fast active first: the reader starts at fast's checkpoint and slow
     *   goes onto a tail of its own at once ("its checkpoint is not where
     *   the shared reader reads"), to come back once it reaches the ring.
     * Either way every event must come, with no repeat but the crash's,
     * and a sink that left the ring must be back on it at the end. */
    test_daemon_start(&d, config, dir);
    put_range(ob, B_END + 1, B_END + AFTER, key_ab, NULL);
    assert_true(wait_for_last(fast, B_END + AFTER, 60000));
    open_gate(dir, "b.d");
    assert_int_equal(test_wait_lines(slow_b, B_END + AFTER - A_END, 60000), B_END + AFTER - A_END);
    log = test_read_file(d.log);
    int left = test_count_in(log, "sink slow: its checkpoint is not where the shared reader reads") +
               test_count_in(log, "sink slow: behind the shared reader");
    free(log);
    if (left > 0)
        test_daemon_wait_log(&d, "sink slow: back on the shared reader", left);
    figures_t fs;
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_true(reading_figures(ob, "slow", &fs));
    assert_int_equal(fs.shared_tails, 1);
    assert_int_equal(fs.catchup_tails, left);
    assert_int_equal(fs.catchups, left);

    /* a: the events published after the last checkpoint write before the
     * kill come again after the restart, as one run; nothing else. b: never
     * published before the kill: each exactly once. fast: once or, after
     * its last checkpoint write, one run again. */
    int repeats = check_with_restarts(slow_a, 1, A_END, 1);
    check_exact(slow_b, A_END + 1, B_END + AFTER);
    int fast_repeats = check_with_restarts(fast, 1, B_END + AFTER, 1);
    print_message("# kill -9 mid catch-up, restart: %d events in all, none missing; %d of a's and %d of fast's "
                  "events published again after the kill (after their last checkpoint write), none at a "
                  "hand-over; after the restart slow left the ring %d time(s) and came back as often\n",
                  B_END + AFTER, repeats, fast_repeats, left);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* Three file sinks on one outbox, fed in batches that each sink takes
 * before the next: they keep up, and the log is read once. */
static void sinks_that_keep_up_share_one_tail(void **state) {
    (void)state;
    int total = test_scaled(20000), batch = 2000;
    outbox_t *ob = test_outbox("sr_share");
    char *dir = test_tmpdir("srshare");
    char sinks[2048], path[3][600];
    static const char *const names[] = {"f1", "f2", "f3"};
    snprintf(sinks, sizeof sinks, FILE_SINK("f1", "%s/f1.jsonl") FILE_SINK("f2", "%s/f2.jsonl")
             FILE_SINK("f3", "%s/f3.jsonl"), dir, dir, dir);
    for (int i = 0; i < 3; i++)
        snprintf(path[i], sizeof path[i], "%s/%s.jsonl", dir, names[i]);
    char *config = config_with_ring(dir, ob, sinks, 0);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    for (int from = 1; from <= total; from += batch) {
        int to = from + batch - 1 < total ? from + batch - 1 : total;
        put_range(ob, from, to, key_k, NULL);
        for (int i = 0; i < 3; i++)
            assert_int_equal(test_wait_lines(path[i], to, 60000), to);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    for (int i = 0; i < 3; i++) {
        check_exact(path[i], 1, total);
        figures_t f;
        assert_true(reading_figures(ob, names[i], &f));
        assert_int_equal(f.shared_tails, 1);
        assert_int_equal(f.catchup_tails, 0);
    }
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sinks_that_keep_up_share_one_tail),
        cmocka_unit_test(a_blocked_sink_falls_off_the_ring_catches_up_alone_and_rejoins_without_gap_or_duplicate),
        cmocka_unit_test(kill_9_during_a_catch_up_and_a_restart_lose_nothing),
    };
    return TEST_RUN("outboxd_shared_reader", tests);
}

#else /* OUTBOXD_TEST_KAFKA */

/* The Kafka topic's ordernrs (one partition: the log's order). */
static int *topic_ordernrs(const char *topic, size_t *n) {
    kt_record_t *r;
    *n = kt_consume(topic, &r, 60000);
    int *out = calloc(*n + 1, sizeof *out);
    for (size_t i = 0; i < *n; i++) {
        const char *p = strstr(r[i].value, "\"ordernr\"");
        if (!p || !(p = strchr(p, ':')))
            fail_msg("message without ordernr: %s", r[i].value);
        out[i] = (int)strtol(p + 1, NULL, 10);
    }
    kt_records_free(r, *n);
    return out;
}

/* Three file sinks and Kafka from one outbox of 50,000 events (5,000 with
 * OUTBOX_TEST_QUICK), put in batches that every sink takes before the
 * next, so that all keep up: every sink gets every event exactly once, in
 * order, and the database served one tail: the shared reader's. */
static void three_files_and_kafka_get_every_event_once_in_order_from_one_tail(void **state) {
    (void)state;
    int total = test_scaled(50000), batch = 5000;
    const char *brokers = kt_brokers();
    outbox_t *ob = test_outbox("sr_fanout");
    char *topic = kt_topic_name("fanout");
    kt_create_topic(topic, 1, NULL);
    char *dir = test_tmpdir("srfanout");
    static const char *const plugins[] = {"file", "kafka"};
    copy_plugins(dir, plugins, 2);
    static const char *const names[] = {"f1", "f2", "f3"};
    char sinks[4096], path[3][600];
    snprintf(sinks, sizeof sinks,
             FILE_SINK("f1", "%s/f1.jsonl") FILE_SINK("f2", "%s/f2.jsonl") FILE_SINK("f3", "%s/f3.jsonl")
             "  - name: k\n    plugin: kafka\n    route: \"%s\"\n    options:\n      bootstrap.servers: \"%s\"\n",
             dir, dir, dir, topic, brokers);
    for (int i = 0; i < 3; i++)
        snprintf(path[i], sizeof path[i], "%s/%s.jsonl", dir, names[i]);
    char *config = config_with_ring(dir, ob, sinks, 0);
    bson_oid_t *ids = calloc((size_t)total + 1, sizeof *ids);
    char plugin_dir[700], log[700];
    snprintf(plugin_dir, sizeof plugin_dir, "%s/plugins", dir);
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_t d;
    test_daemon_spawn(&d, config, plugin_dir, log);
    test_daemon_wait_log(&d, " sinks, plugins from ", 1);
    for (int from = 1; from <= total; from += batch) {
        int to = from + batch - 1 < total ? from + batch - 1 : total;
        put_range(ob, from, to, key_k, ids);
        for (int i = 0; i < 3; i++)
            assert_int_equal(test_wait_lines(path[i], to, 120000), to);
        /* Kafka: its checkpoint (written after acks) at the batch's end. */
        bson_oid_t cp;
        int waited = 0;
        while (!(test_checkpoint(ob, "k", &cp, NULL, 0) && bson_oid_equal(&cp, &ids[to])) && waited < 120000) {
            sleep_ms(100);
            waited += 100;
        }
        if (waited >= 120000)
            fail_msg("the Kafka sink's checkpoint did not reach event %d (log: %s)", to, d.log);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    for (int i = 0; i < 3; i++)
        check_exact(path[i], 1, total);
    size_t n;
    int *got = topic_ordernrs(topic, &n);
    for (size_t i = 0; i < n; i++)
        if (got[i] != (int)i + 1)
            fail_msg("%s: message %zu has ordernr %d, expected %zu", topic, i, got[i], i + 1);
    assert_int_equal(n, (size_t)total);
    free(got);
    static const char *const all[] = {"f1", "f2", "f3", "k"};
    for (int i = 0; i < 4; i++) {
        figures_t f;
        assert_true(reading_figures(ob, all[i], &f));
        if (f.shared_tails != 1 || f.catchup_tails != 0)
            fail_msg("sink %s: the shared reader opened %lld tails and the sink %lld of its own (log: %s)", all[i],
                     (long long)f.shared_tails, (long long)f.catchup_tails, d.log);
    }
    char *text = test_read_file(d.log);
    if (!strstr(text, "shared reader: stopped; 1 shared tails opened"))
        fail_msg("the log does not count the shared reader's tails:\n%s", text);
    free(text);
    print_message("# %d events to 3 file sinks and Kafka: each exactly once, in order; 1 tail of the log "
                  "(the shared reader's), no catch-up tail\n", total);
    free(ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_files_and_kafka_get_every_event_once_in_order_from_one_tail),
    };
    return TEST_RUN("outboxd_shared_reader_kafka", tests);
}

#endif
