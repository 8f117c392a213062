/*
 * test_outboxd.c - the daemon end to end, with the file sink: every sink
 * gets every event, in order, each with its own checkpoint; a failing sink
 * never holds back another and recovers with nothing missing; kill -9 ten
 * times under load publishes each event exactly once; a gap stops only the sink it hit; SIGTERM drains and exits 0;
 * an event's key cannot lead the file sink out of its route's directory;
 * configuration and plugin mistakes stop outboxd with the file and line.
 */
#include "crashlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SINK(name, route, extra) \
    "  - name: " name "\n    plugin: file\n    route: \"" route "\"\n" extra

static void put_range(outbox_t *ob, int from, int to) {
    for (int i = from; i <= to; i++)
        test_put_order(ob, i, i % 3 ? "odd" : "even");
}

/* Every ordernr from..to present, in order of first appearance; returns
 * the number of duplicate lines. */
static int check_complete(const char *path, int from, int to) {
    int cap = (to - from + 1) * 3 + 16;
    int *got = calloc((size_t)cap, sizeof *got);
    char *seen = calloc((size_t)to + 1, 1);
    int n = test_jsonl_ordernrs(path, got, cap);
    int next = from, dups = 0;
    for (int i = 0; i < n && i < cap; i++) {
        int v = got[i];
        assert_in_range(v, from, to);
        if (seen[v]) {
            dups++;
            continue;
        }
        if (v != next)
            fail_msg("%s: line %d has ordernr %d, expected %d (order broken or event missing)", path, i + 1, v, next);
        seen[v] = 1;
        next++;
    }
    if (next != to + 1)
        fail_msg("%s: events %d..%d missing", path, next, to);
    free(got);
    free(seen);
    return dups;
}

/* Waits until the file's last line is event last (events arrive in order,
 * duplicates only before it). */
static bool wait_for_last(const char *path, int last, int timeout_ms) {
    int cap = last * 3 + 16;
    int *got = calloc((size_t)cap, sizeof *got);
    bool seen = false;
    for (int waited = 0; waited <= timeout_ms && !seen; waited += 100) {
        int n = test_jsonl_ordernrs(path, got, cap);
        seen = n > 0 && n <= cap && got[n - 1] == last;
        if (!seen) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    free(got);
    return seen;
}

static void two_sinks_get_every_event_and_sigterm_writes_checkpoints(void **state) {
    outbox_t *ob = test_outbox("d_two");
    char *dir = test_tmpdir("two");
    char sinks[1024], a[600], b[600];
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a/{type}.jsonl", "") SINK("b", "%s/b/all.jsonl", "    options:\n      fsync: never\n"), dir, dir);
    char *config = test_daemon_config(dir, ob, sinks);
    put_range(ob, 1, 300);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    put_range(ob, 301, 500);
    snprintf(a, sizeof a, "%s/a/order.created.jsonl", dir);
    snprintf(b, sizeof b, "%s/b/all.jsonl", dir);
    assert_int_equal(test_wait_lines(a, 500, 30000), 500);
    assert_int_equal(test_wait_lines(b, 500, 30000), 500);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(a, 1, 500), 0);
    assert_int_equal(check_complete(b, 1, 500), 0);

    /* Both checkpoints at the last event. */
    outbox_error_t err;
    bson_oid_t last, cp;
    char st[32] = "";
    const outbox_event_t *ev;
    outbox_tail_t *t = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    while (outbox_tail_next(t, 300, &ev, &err) == OUTBOX_OK)
        bson_oid_copy(outbox_event_id(ev), &last);
    outbox_tail_destroy(t);
    assert_true(test_checkpoint(ob, "a", &cp, st, sizeof st));
    assert_true(bson_oid_equal(&cp, &last));
    assert_string_equal(st, "running");
    assert_true(test_checkpoint(ob, "b", &cp, NULL, 0));
    assert_true(bson_oid_equal(&cp, &last));
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* outboxd never creates the outbox (its size and schemas are the
 * producers' choice): one that was never created stops it at start with
 * what to run, and nothing is created behind the operator's back. Once
 * created, the same config runs. */
static void an_outbox_never_created_stops_outboxd_with_what_to_run(void **state) {
    (void)state;
    outbox_error_t err;
    outbox_t *ob = outbox_new(test_conf("d_never_created"), &err);
    assert_non_null(ob);
    char *dir = test_tmpdir("never_created");
    char sinks[700], log[700];
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", ""), dir);
    char *config = test_daemon_config(dir, ob, sinks);
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_t d;
    test_daemon_spawn(&d, config, "sinks/file", log);
    assert_int_equal(test_daemon_wait_exit(&d, 60), 2);
    char *text = test_read_file(log), want[700];
    snprintf(want, sizeof want, "%s: outbox: %s.%s does not exist", config, TEST_DB, outbox_name(ob));
    if (!strstr(text, want) || !strstr(text, "outboxctl init"))
        fail_msg("expected \"%s ... outboxctl init\", got:\n%s", want, text);
    free(text);
    assert_false(test_collection_exists(outbox_name(ob)));

    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    put_range(ob, 1, 10);
    test_daemon_start(&d, config, dir);
    char out[700];
    snprintf(out, sizeof out, "%s/a.jsonl", dir);
    assert_int_equal(test_wait_lines(out, 10, 30000), 10);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void a_failing_sink_does_not_hold_back_the_other(void **state) {
    outbox_t *ob = test_outbox("d_fail");
    char *dir = test_tmpdir("fail");
    char sinks[1024], good[600], bad[600], blocker[600];
    /* b's directory is blocked by a regular file: ENOTDIR, even for root. */
    snprintf(blocker, sizeof blocker, "%s/blocked", dir);
    FILE *f = fopen(blocker, "w");
    fclose(f);
    snprintf(sinks, sizeof sinks, SINK("good", "%s/good.jsonl", "") SINK("bad", "%s/blocked/bad.jsonl", ""), dir, dir);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    put_range(ob, 1, 200);
    snprintf(good, sizeof good, "%s/good.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/blocked/bad.jsonl", dir);
    assert_int_equal(test_wait_lines(good, 200, 30000), 200);
    /* good's checkpoint advanced; bad has nothing and no checkpoint past it. */
    bson_oid_t cp;
    assert_true(test_checkpoint(ob, "good", &cp, NULL, 0));
    put_range(ob, 201, 250);
    assert_int_equal(test_wait_lines(good, 250, 30000), 250);

    /* The path becomes writable: bad catches up, nothing missing. */
    unlink(blocker);
    assert_int_equal(test_wait_lines(bad, 250, 60000), 250);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(good, 1, 250), 0);
    assert_int_equal(check_complete(bad, 1, 250), 0);
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink bad: publish:") || !strstr(log, "blocked"))
        fail_msg("the log does not say why sink bad stalled:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* Exactly once across crashes (docs/recovery.md): kill -9 ten times at
 * random points while events are put, then a drain; the file holds every
 * event once, in order. format: a line per event of a CloudEvents run is
 * matched as well as a native one (recover compares whole lines). */
static void kill_9_run(const char *label, const char *extra) {
    outbox_t *ob = test_outbox(label);
    char *dir = test_tmpdir(label);
    char sinks[1024], path[600];
    snprintf(sinks, sizeof sinks, SINK("k", "%s/k.jsonl", "%s"), dir, extra);
    snprintf(path, sizeof path, "%s/k.jsonl", dir);
    /* No lease: a restarted outboxd would wait out its dead one's. */
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    int total = test_scaled(20000) < 4000 ? 4000 : test_scaled(20000);
    test_crash_t t = {.ob = ob, .config = config, .dir = dir, .sink_dir = "sinks/file", .sink = "k",
                      .total = total, .keys = 7, .kills = 10, .batch = 50, .pause_ms = 20};
    long recovered = test_crash_run(&t);
    int *got = calloc((size_t)total * 2 + 16, sizeof *got);
    int n = test_jsonl_ordernrs(path, got, total * 2 + 16);
    char what[200];
    snprintf(what, sizeof what, "file%s, kill -9 x10 (%ld events found at the destination by recovery)",
             extra[0] ? " (cloudevents)" : "", recovered);
    test_crash_check(what, got, (size_t)n, total, 7);
    assert_true(recovered > 0); /* some kill came with events in doubt, or it proved nothing */
    free(got);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void kill_9_under_load_publishes_each_event_once(void **state) {
    kill_9_run("d_kill", "");
}

static void kill_9_with_cloudevents_publishes_each_event_once(void **state) {
    kill_9_run("d_killce", "    format: cloudevents\n    cloudevents:\n      source: /test\n");
}

/* Nothing is published until recovery succeeds: a destination that cannot
 * be read back (k0.jsonl is a directory: EISDIR) holds back every other
 * one too (k1.jsonl gains nothing while the recover is retried); once it
 * can be read, every event arrives exactly once. */
static void recovery_that_fails_publishes_nothing_until_it_succeeds(void **state) {
    outbox_t *ob = test_outbox("d_recfail");
    char *dir = test_tmpdir("recfail");
    char sinks[1024], k0[600], k1[600];
    snprintf(sinks, sizeof sinks, SINK("r", "%s/{key}.jsonl", ""), dir);
    snprintf(k0, sizeof k0, "%s/k0.jsonl", dir);
    snprintf(k1, sizeof k1, "%s/k1.jsonl", dir);
    assert_int_equal(mkdir(k0, 0755), 0);
    for (int i = 1; i <= 100; i++)
        test_put_order(ob, i, i % 2 ? "k1" : "k0");
    /* As a run that crashed before its first checkpoint write leaves it:
     * no position, in_doubt (docs/recovery.md). */
    char coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("r"), "last_id", BCON_NULL, "events", BCON_INT64(0), "state",
                           BCON_UTF8("running"), "in_doubt", BCON_BOOL(true));
    test_insert_raw(coll, doc);
    bson_destroy(doc);
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "sink r: recover: file sink: cannot read back", 1);
    /* Retried with backoff meanwhile (100, 200, 400, 800 ms): time enough
     * for k1's events to go out, if anything went out before recovery. */
    struct timespec pause = {2, 0};
    nanosleep(&pause, NULL);
    assert_int_equal(test_wait_lines(k1, 1, 0), 0);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "events in doubt are at the destination"), 0);
    free(log);
    assert_int_equal(rmdir(k0), 0);
    assert_int_equal(test_wait_lines(k0, 50, 30000), 50);
    assert_int_equal(test_wait_lines(k1, 50, 30000), 50);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    int got[120], n0 = test_jsonl_ordernrs(k0, got, 120), n1 = test_jsonl_ordernrs(k1, got + 60, 60);
    assert_int_equal(n0, 50);
    assert_int_equal(n1, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(got[i], 2 * (i + 1));
        assert_int_equal(got[60 + i], 2 * i + 1);
    }
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The sink's checkpoint document's in_doubt: 1, 0, or -1 when absent. */
static int checkpoint_in_doubt(outbox_t *ob, const char *sink) {
    char coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    bson_t doc;
    bson_iter_t it;
    int v = -1;
    if (test_find_by_id(coll, sink, &doc)) {
        if (bson_iter_init_find(&it, &doc, "in_doubt") && BSON_ITER_HOLDS_BOOL(&it))
            v = bson_iter_bool(&it);
        bson_destroy(&doc);
    }
    return v;
}

/* A clean stop leaves nothing in doubt, so the next start recovers
 * nothing (no read of the log or the destination); a kill -9 leaves it in
 * doubt, and the next start recovers (docs/recovery.md). */
static void a_clean_stop_leaves_nothing_in_doubt_a_kill_does(void **state) {
    outbox_t *ob = test_outbox("d_doubt");
    char *dir = test_tmpdir("doubt");
    char sinks[1024], path[600];
    snprintf(sinks, sizeof sinks, SINK("c", "%s/c.jsonl", ""), dir);
    snprintf(path, sizeof path, "%s/c.jsonl", dir);
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    put_range(ob, 1, 50);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    assert_int_equal(test_wait_lines(path, 50, 30000), 50);
    assert_int_equal(checkpoint_in_doubt(ob, "c"), 1); /* written before the first publish */
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(checkpoint_in_doubt(ob, "c"), 0);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "recovered: nothing in doubt"), 1); /* a new sink */
    free(log);

    test_daemon_start(&d, config, dir);
    put_range(ob, 51, 100);
    assert_int_equal(test_wait_lines(path, 100, 30000), 100);
    assert_int_equal(test_daemon_stop(&d, SIGKILL), 128 + SIGKILL);
    log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "recovered: nothing in doubt"), 1); /* after a clean stop */
    free(log);
    assert_int_equal(checkpoint_in_doubt(ob, "c"), 1);

    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "events in doubt are at the destination already", 1);
    put_range(ob, 101, 120);
    assert_int_equal(test_wait_lines(path, 120, 30000), 120);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(path, 1, 120), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void a_gap_stops_only_that_sink(void **state) {
    outbox_error_t err;
    outbox_conf_t *conf = test_conf("d_gap");
    assert_int_equal(outbox_conf_set(conf, "capped.size", "4096", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    bson_oid_t first = test_put_order(ob, 1, "k");
    put_range(ob, 2, 200);
    /* Wait until the log has overwritten event 1. */
    for (int i = 0; i < 300; i++) {
        outbox_tail_t *t = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &first, &err);
        const outbox_event_t *ev;
        outbox_code_t rc = outbox_tail_next(t, 100, &ev, &err);
        outbox_tail_destroy(t);
        if (rc == OUTBOX_ERR_GAP)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* Sink "late" had read only event 1 when it last ran. */
    char coll[256];
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    bson_t *cp = BCON_NEW("_id", BCON_UTF8("late"), "last_id", BCON_OID(&first), "events", BCON_INT64(1),
                          "state", BCON_UTF8("running"), "message", BCON_UTF8(""));
    test_insert_raw(coll, cp);
    bson_destroy(cp);

    char *dir = test_tmpdir("gap");
    char sinks[1024], ok_path[600];
    snprintf(sinks, sizeof sinks, SINK("fresh", "%s/fresh.jsonl", "") SINK("late", "%s/late.jsonl", ""), dir, dir);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    char state_buf[32] = "";
    for (int i = 0; i < 300 && strcmp(state_buf, "gap") != 0; i++) {
        test_checkpoint(ob, "late", NULL, state_buf, sizeof state_buf);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_string_equal(state_buf, "gap");
    /* The other sink goes on. */
    snprintf(ok_path, sizeof ok_path, "%s/fresh.jsonl", dir);
    put_range(ob, 201, 205);
    int got[512];
    for (int i = 0; i < 300; i++) {
        int n = test_jsonl_ordernrs(ok_path, got, 512);
        if (n > 0 && got[n - 1] == 205)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int n = test_jsonl_ordernrs(ok_path, got, 512);
    assert_true(n > 0 && got[n - 1] == 205);
    char late_path[600];
    snprintf(late_path, sizeof late_path, "%s/late.jsonl", dir);
    assert_int_equal(test_jsonl_ordernrs(late_path, got, 512), 0);
    /* outboxctl status shows it, and says so in its exit status. */
    char cmd[1500], *out;
    const char *bd = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status 2>&1", bd ? bd : ".",
             test_mongodb_uri(), TEST_DB, outbox_name(ob));
    assert_int_equal(test_run_command(cmd, &out), 3);
    if (!strstr(out, "late") || !strstr(out, "gap"))
        fail_msg("outboxctl status does not show the gap:\n%s", out);
    free(out);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink late: gap in "))
        fail_msg("the log does not report the gap:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The file sink acks FATAL an event whose destination goes through a
 * symbolic link beneath its route's directory (here a dangling one, where
 * each failing sink's file would be): a way to make every event fail
 * permanently, to watch each on_error policy. */
static void on_error_policies_stop_skip_and_deadletter(void **state) {
    outbox_t *ob = test_outbox("d_onerr");
    char *dir = test_tmpdir("onerr");
    char sinks[2048], path[600], coll[256];
    snprintf(sinks, sizeof sinks,
             SINK("stopper", "%s/stop/{type}.jsonl", "")
             SINK("skipper", "%s/skip/{type}.jsonl", "    on_error: skip\n")
             SINK("dead", "%s/dead/{type}.jsonl", "    on_error: deadletter\n")
             SINK("fine", "%s/fine.jsonl", ""), dir, dir, dir, dir);
    static const char *const failing[] = {"stop", "skip", "dead"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, failing[i]);
        assert_int_equal(mkdir(path, 0755), 0);
        strncat(path, "/order.created.jsonl", sizeof path - strlen(path) - 1);
        assert_int_equal(symlink("/nonexistent", path), 0);
    }
    char *config = test_daemon_config(dir, ob, sinks);
    put_range(ob, 1, 20);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    snprintf(path, sizeof path, "%s/fine.jsonl", dir);
    assert_int_equal(test_wait_lines(path, 20, 30000), 20);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    for (int i = 0; i < 300 && test_count(coll) < 20; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    /* deadletter: every event in N.deadletter, with sink and error. */
    assert_int_equal(test_count(coll), 20);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    const bson_t *doc;
    assert_true(mongoc_cursor_next(cur, &doc));
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, doc, "sink"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "dead");
    assert_true(bson_iter_init_find(&it, doc, "error"));
    assert_non_null(strstr(bson_iter_utf8(&it, NULL), "goes through a symbolic link"));
    assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "event.data.ordernr", &it));
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&empty);

    /* skip and deadletter move their checkpoints past every event; stop
     * stops at the first, and says why. */
    char st[32] = "";
    bson_oid_t skip_cp, dead_cp, fine_cp;
    assert_true(test_checkpoint(ob, "fine", &fine_cp, NULL, 0));
    assert_true(test_checkpoint(ob, "skipper", &skip_cp, NULL, 0));
    assert_true(test_checkpoint(ob, "dead", &dead_cp, NULL, 0));
    assert_true(bson_oid_equal(&skip_cp, &fine_cp));
    assert_true(bson_oid_equal(&dead_cp, &fine_cp));
    assert_true(test_checkpoint(ob, "stopper", NULL, st, sizeof st));
    assert_string_equal(st, "stopped");
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink stopper: event ") || !strstr(log, "this sink stops, the others go on") ||
        !strstr(log, "sink skipper: event ") || !strstr(log, "(on_error: skip"))
        fail_msg("the log does not report the policies:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    char name[256];
    snprintf(name, sizeof name, "%s.deadletter", outbox_name(ob));
    client = test_client();
    c = mongoc_client_get_collection(client, TEST_DB, name);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    test_outbox_drop(ob);
}

/* Issue 13: with route DIR/srv/out/{key}.jsonl, an event keyed
 * "../../escape" wrote DIR/escape.jsonl. Now the file sink refuses it with a
 * FATAL ack, and on_error: deadletter keeps it, with the reason, in
 * N.deadletter; the events around it are written where they belong. */
static void a_key_cannot_lead_the_file_sink_out_of_its_directory(void **state) {
    outbox_t *ob = test_outbox("d_escape");
    char *dir = test_tmpdir("escape");
    char sinks[1024], fine[600], escaped[600], coll[256];
    snprintf(sinks, sizeof sinks, SINK("files", "%s/srv/out/{key}.jsonl", "    on_error: deadletter\n"), dir);
    char *config = test_daemon_config(dir, ob, sinks);
    test_put_order(ob, 1, "before");
    test_put_order(ob, 2, "../../escape");
    test_put_order(ob, 3, "after");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    snprintf(fine, sizeof fine, "%s/srv/out/after.jsonl", dir);
    assert_int_equal(test_wait_lines(fine, 1, 30000), 1);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    for (int i = 0; i < 300 && test_count(coll) < 1; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    snprintf(escaped, sizeof escaped, "%s/escape.jsonl", dir);
    struct stat st;
    if (stat(escaped, &st) == 0)
        fail_msg("%s was written: the key led the sink out of %s/srv/out/", escaped, dir);
    snprintf(fine, sizeof fine, "%s/srv/out/before.jsonl", dir);
    assert_int_equal(test_wait_lines(fine, 1, 0), 1);
    assert_int_equal(test_count(coll), 1);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    assert_true(mongoc_cursor_next(cur, &doc));
    assert_true(bson_iter_init_find(&it, doc, "error"));
    const char *error = bson_iter_utf8(&it, NULL);
    if (!strstr(error, "refusing destination") || !strstr(error, "../../escape"))
        fail_msg("the dead letter's error does not say why: %s", error);
    assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "event.key", &it));
    assert_string_equal(bson_iter_utf8(&it, NULL), "../../escape");
    mongoc_cursor_destroy(cur);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&empty);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

typedef struct {
    outbox_t *ob;
    int from, to;
} producer_arg_t;

static void *produce(void *arg) {
    producer_arg_t *p = arg;
    put_range(p->ob, p->from, p->to);
    return NULL;
}

/* Reads the id of the file's last line. */
static bool last_line_id(const char *path, bson_oid_t *id) {
    char *text = test_read_file(path);
    if (!text)
        return false;
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = '\0';
    char *line = strrchr(text, '\n');
    line = line ? line + 1 : text;
    char *start = strstr(line, "\"id\":\"");
    bool ok = start && bson_oid_is_valid(start + 6, 24);
    if (ok)
        bson_oid_init_from_string(id, start + 6);
    free(text);
    return ok;
}

static void sigterm_under_load_drains_and_a_restart_duplicates_nothing(void **state) {
    outbox_t *ob = test_outbox("d_term");
    char *dir = test_tmpdir("term");
    char sinks[1024], path[600];
    snprintf(sinks, sizeof sinks, SINK("t", "%s/t.jsonl", ""), dir);
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    producer_arg_t arg = {.ob = ob, .from = 1, .to = 1500};
    pthread_t producer;
    pthread_create(&producer, NULL, produce, &arg);
    test_wait_lines(path, 300, 30000);
    /* Mid-stream: the producer is still putting. */
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    int published = test_jsonl_ordernrs(path, NULL, 0);
    bson_oid_t cp, last;
    assert_true(test_checkpoint(ob, "t", &cp, NULL, 0));
    assert_true(last_line_id(path, &last));
    /* Drained: the checkpoint is the last event written, nothing in flight. */
    assert_true(bson_oid_equal(&cp, &last));
    pthread_join(producer, NULL);
    test_daemon_start(&d, config, dir);
    assert_true(wait_for_last(path, 1500, 60000));
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(path, 1, 1500), 0); /* no duplicate after a clean stop */
    print_message("# SIGTERM after %d of 1500 events: checkpoint = last line, restart duplicated none\n", published);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void sighup_adds_changes_and_removes_sinks_without_disturbing_others(void **state) {
    outbox_t *ob = test_outbox("d_hup");
    char *dir = test_tmpdir("hup");
    char sinks[2048], a[600], b[600], c[600];
    snprintf(a, sizeof a, "%s/a.jsonl", dir);
    snprintf(b, sizeof b, "%s/b.jsonl", dir);
    snprintf(c, sizeof c, "%s/c.jsonl", dir);
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", "") SINK("c", "%s/c.jsonl", ""), dir, dir);
    char *config = test_daemon_config(dir, ob, sinks);
    put_range(ob, 1, 100);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    assert_int_equal(test_wait_lines(a, 100, 30000), 100);
    assert_int_equal(test_wait_lines(c, 100, 30000), 100);

    /* Add b, change c's route, keep a. */
    char c2[600];
    snprintf(c2, sizeof c2, "%s/c2.jsonl", dir);
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", "") SINK("b", "%s/b.jsonl", "") SINK("c", "%s/c2.jsonl", ""),
             dir, dir, dir);
    free(test_daemon_config(dir, ob, sinks));
    kill(d.pid, SIGHUP);
    put_range(ob, 101, 150);
    assert_int_equal(test_wait_lines(b, 150, 30000), 150);   /* new: from the oldest event */
    assert_int_equal(test_wait_lines(a, 150, 30000), 150);
    /* changed: the old c ran until the reload stopped it, the new one
     * continues after its checkpoint, into the new route. */
    int c_lines = test_jsonl_ordernrs(c, NULL, 0);
    assert_int_equal(test_wait_lines(c2, 150 - c_lines, 30000), 150 - c_lines);

    /* Remove c; a broken file keeps everything as it is. */
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", "") SINK("b", "%s/b.jsonl", ""), dir, dir);
    free(test_daemon_config(dir, ob, sinks));
    kill(d.pid, SIGHUP);
    test_daemon_wait_log(&d, "reload: done", 2);
    put_range(ob, 151, 160);
    assert_int_equal(test_wait_lines(b, 160, 30000), 160);
    free(test_daemon_config(dir, ob, "  - name: a\n    plugn: file\n"));
    kill(d.pid, SIGHUP);
    put_range(ob, 161, 170);
    assert_int_equal(test_wait_lines(a, 170, 30000), 170);
    assert_int_equal(test_wait_lines(b, 170, 30000), 170);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    assert_int_equal(check_complete(a, 1, 170), 0);
    assert_int_equal(check_complete(b, 1, 170), 0);
    /* c then c2: 1..150 exactly once, in order, nothing after c's removal. */
    int got[400];
    int n1 = test_jsonl_ordernrs(c, got, 200);
    int n2 = test_jsonl_ordernrs(c2, got + n1, 200);
    assert_int_equal(n1 + n2, 150);
    for (int i = 0; i < 150; i++)
        assert_int_equal(got[i], i + 1);
    char *log = test_read_file(d.log);
    /* a was opened once: never restarted by the reloads. */
    assert_int_equal(test_count_in(log, "sink a: opened"), 1);
    assert_int_equal(test_count_in(log, "sink c: opened"), 2);
    if (!strstr(log, "reload: sink c is removed: stopping it") ||
        !strstr(log, "unknown key \"plugn\"") || !strstr(log, "the running configuration stays"))
        fail_msg("the log does not tell the reloads:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* outboxd speaks systemd's notify protocol (Type=notify): READY=1 once its
 * sinks run, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 at the
 * end. A datagram socket of the test plays systemd. */
static void tells_systemd_ready_reloading_and_stopping(void **state) {
    if (test_run_command("grep -q 'define HAVE_SYSTEMD 1' \"$OUTBOX_TEST_BUILDDIR/config.h\"", NULL) != 0)
        TEST_SKIP("outboxd was built without libsystemd (--without-systemd)");
    outbox_t *ob = test_outbox("d_notify");
    char *dir = test_tmpdir("notify");
    char sinks[1024], sock_path[600];
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", ""), dir);
    char *config = test_daemon_config(dir, ob, sinks);
    snprintf(sock_path, sizeof sock_path, "%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setenv("NOTIFY_SOCKET", sock_path, 1);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    unsetenv("NOTIFY_SOCKET");
    char got[4096] = "";
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    strcat(got, buf);
    kill(d.pid, SIGHUP);
    for (int i = 0; i < 2 && (n = recv(fd, buf, sizeof buf - 1, 0)) > 0; i++) {
        buf[n] = '\0';
        strncat(got, buf, sizeof got - strlen(got) - 1);
    }
    kill(d.pid, SIGTERM);
    if ((n = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
        buf[n] = '\0';
        strncat(got, buf, sizeof got - strlen(got) - 1);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    close(fd);
    const char *ready = strstr(got, "READY=1"), *reloading = strstr(got, "RELOADING=1");
    if (!ready || !reloading || reloading < ready || !strstr(reloading, "READY=1") || !strstr(got, "STOPPING=1"))
        fail_msg("notifications in the wrong order or missing:\n%s", got);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void config_and_plugin_mistakes_name_the_file_and_line(void **state) {
    outbox_t *ob = test_outbox("d_check");
    char *dir = test_tmpdir("check");
    char sinks[1024], *out;

    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", ""), dir);
    char *config = test_daemon_config(dir, ob, sinks);
    assert_int_equal(test_daemon_check(config, &out), 0);
    assert_non_null(strstr(out, "sink a: plugin file"));
    free(out);
    free(config);

    /* A plugin that does not exist: line 9 is the sink's entry. */
    config = test_daemon_config(dir, ob, "  - name: x\n    plugin: nosuch\n    route: \"r\"\n");
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "outboxd.yaml:9:5: sink x: plugin \"nosuch\": cannot load"))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);

    /* The same, marked optional: outboxd runs without it. */
    snprintf(sinks, sizeof sinks, "  - name: x\n    plugin: nosuch\n    route: \"r\"\n    optional: true\n" SINK("a", "%s/a.jsonl", ""), dir);
    config = test_daemon_config(dir, ob, sinks);
    assert_int_equal(test_daemon_check(config, &out), 0);
    assert_non_null(strstr(out, "sink x (optional) is left out"));
    free(out);
    free(config);

    /* An option the plugin does not know, and a bad value. */
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", "    options:\n      fsinc: always\n"), dir);
    config = test_daemon_config(dir, ob, sinks);
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "outboxd.yaml:13:7: sink a: option fsinc: unknown option (plugin file)"))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);
    snprintf(sinks, sizeof sinks, SINK("a", "%s/a.jsonl", "    options:\n      fsync: sometimes\n"), dir);
    config = test_daemon_config(dir, ob, sinks);
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "sink a: option fsync: expected one of always|batch|never, got \"sometimes\""))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);

    /* What outboxd says of a plugin. */
    char cmd[1200];
    const char *bd = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --plugin-help file --plugin-dir '%s/sinks/file' 2>&1", bd ? bd : ".", bd ? bd : ".");
    assert_int_equal(test_run_command(cmd, &out), 0);
    if (!strstr(out, "plugin file ") || !strstr(out, "fsync") || !strstr(out, "one of always|batch|never, default batch"))
        fail_msg("unexpected --plugin-help output: %s", out);
    free(out);

    /* A config error from the parser. */
    config = test_daemon_config(dir, ob, "  - name: a\n    plugn: file\n");
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "outboxd.yaml:10:5: unknown key \"plugn\""))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_sinks_get_every_event_and_sigterm_writes_checkpoints),
        cmocka_unit_test(a_failing_sink_does_not_hold_back_the_other),
        cmocka_unit_test(an_outbox_never_created_stops_outboxd_with_what_to_run),
        cmocka_unit_test(kill_9_under_load_publishes_each_event_once),
        cmocka_unit_test(kill_9_with_cloudevents_publishes_each_event_once),
        cmocka_unit_test(recovery_that_fails_publishes_nothing_until_it_succeeds),
        cmocka_unit_test(a_clean_stop_leaves_nothing_in_doubt_a_kill_does),
        cmocka_unit_test(sigterm_under_load_drains_and_a_restart_duplicates_nothing),
        cmocka_unit_test(a_gap_stops_only_that_sink),
        cmocka_unit_test(on_error_policies_stop_skip_and_deadletter),
        cmocka_unit_test(a_key_cannot_lead_the_file_sink_out_of_its_directory),
        cmocka_unit_test(sighup_adds_changes_and_removes_sinks_without_disturbing_others),
        cmocka_unit_test(config_and_plugin_mistakes_name_the_file_and_line),
        cmocka_unit_test(tells_systemd_ready_reloading_and_stopping),
    };
    return TEST_RUN("outboxd", tests);
}
