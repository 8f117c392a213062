/*
 * test_nats_outboxd.c - the NATS sink end to end: the real outboxd, the
 * MongoDB test server, and nats-server processes of the test's own.
 *
 *  - 50,000 events reach a JetStream stream: all stored, once, in log
 *    order, with their headers (read back through a JetStream consumer);
 *  - outboxd killed with -9 mid-stream, twice, and restarted: the stream
 *    still holds each event once (Nats-Msg-Id de-duplication); a plain
 *    subscriber counts how many publishes were repeats;
 *  - nats-server frozen (SIGSTOP) with publishes in flight, killed with -9
 *    and restarted on its port and store: nothing missing, nothing twice,
 *    order kept, and the sink recovered by itself (no reopen);
 *  - core mode delivers to a live subscriber, in order, with headers;
 *  - a subject no stream covers: FATAL with a message naming it, and the
 *    sink's on_error policy (stop, deadletter) applies, while a sink with a
 *    good route goes on;
 *  - `outboxd --check` refuses a bad server URL, naming file and line, with
 *    no server running.
 */
#include "crashlib.h"
#include "natstest.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ----------------------------------------------------------------------------
 * Fixture: an outbox, a directory, a server, outboxd; all cleaned up in
 * teardown, even after a failed assertion.
 * ------------------------------------------------------------------------- */

typedef struct {
    outbox_t *ob;
    char *dir;
    natstest_server_t srv;
    natsConnection *nc;
    jsCtx *js;
    test_daemon_t d;
    bool daemon_running;
    char (*ids)[25]; /* event ids by ordernr - 1 */
    int n_ids;
} fixture_t;

static int setup(void **state) {
    *state = calloc(1, sizeof(fixture_t));
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    if (fx->daemon_running) test_daemon_stop(&fx->d, SIGKILL);
    natstest_disconnect(fx->nc, fx->js);
    natstest_server_stop(&fx->srv, SIGTERM);
    if (fx->dir) {
        test_rmtree(fx->dir);
        free(fx->dir);
    }
    if (fx->ob) test_outbox_drop(fx->ob);
    free(fx->ids);
    free(fx);
    return 0;
}

/* Servers first (skipping without them), then an outbox and a directory. */
static void fixture_init(fixture_t *fx, const char *label, int jetstream) {
    test_mongodb_uri();
    natstest_require_server();
    fx->ob = test_outbox(label);
    fx->dir = test_tmpdir(label);
    natstest_server_start_with(&fx->srv, fx->dir, 0, jetstream, NULL);
    fx->nc = natstest_connect(fx->srv.url, jetstream ? &fx->js : NULL);
}

static void daemon_start(fixture_t *fx, const char *config) {
    test_daemon_start_with(&fx->d, config, fx->dir, "sinks/nats");
    fx->daemon_running = true;
}

static int daemon_stop(fixture_t *fx, int sig) {
    fx->daemon_running = false;
    return test_daemon_stop(&fx->d, sig);
}

/* One sink of plugin nats, as a sinks: list item. */
static void nats_sink_yaml(char *out, size_t size, const char *name, const char *route, const char *url,
                           const char *extra_options, const char *extra_keys) {
    snprintf(out, size,
             "  - name: %s\n"
             "    plugin: nats\n"
             "    route: \"%s\"\n"
             "%s"
             "    options:\n"
             "      servers: \"%s\"\n"
             "      reconnect_wait_ms: 100\n"
             "%s",
             name, route, extra_keys ? extra_keys : "", url, extra_options ? extra_options : "");
}

/* Writes dir/outboxd.yaml for the outbox and the sinks: test_daemon_config's
 * file with a checkpoint every 1000 events. Every 100 (its setting) makes
 * FerretDB's checkpoint writes, not the sink, the bottleneck here. */
static char *write_config(fixture_t *fx, const char *sinks_yaml) {
    char *path = test_daemon_config(fx->dir, fx->ob, sinks_yaml);
    char *text = test_read_file(path);
    char *at = text ? strstr(text, "every_events: 100\n") : NULL;
    assert_non_null(at);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%.*severy_events: 1000\n%s", (int)(at - text), text, at + strlen("every_events: 100\n"));
    fclose(f);
    free(text);
    return path;
}

/* Puts order events from..to in batches of 1000 (one insert each), with a
 * trace-id header, remembering their ids. */
static void put_orders(fixture_t *fx, int from, int to) {
    outbox_error_t err;
    if (fx->n_ids < to) {
        fx->ids = realloc(fx->ids, (size_t)to * sizeof *fx->ids);
        fx->n_ids = to;
    }
    for (int start = from; start <= to; start += 1000) {
        int end = start + 999 < to ? start + 999 : to;
        outbox_batch_t *b = outbox_batch_new(fx->ob);
        for (int i = start; i <= end; i++) {
            char key[16], trace[32];
            snprintf(key, sizeof key, "k%d", i % 7);
            snprintf(trace, sizeof trace, "t-%d", i);
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(i), "total", BCON_DOUBLE(10.5));
            bson_t *headers = BCON_NEW("trace-id", BCON_UTF8(trace));
            if (outbox_batch_add(b, "order.created", key, data, headers, &err) != OUTBOX_OK)
                fail_msg("batch add %d: %s", i, err.message);
            bson_destroy(data);
            bson_destroy(headers);
        }
        if (outbox_batch_put(b, NULL, &err) != OUTBOX_OK) fail_msg("batch put: %s", err.message);
        for (int i = start; i <= end; i++)
            bson_oid_to_string(outbox_batch_id(b, (size_t)(i - start)), fx->ids[i - 1]);
        outbox_batch_destroy(b);
    }
}

/* ----------------------------------------------------------------------------
 * Checking what the stream holds
 * ------------------------------------------------------------------------- */

typedef struct {
    fixture_t *fx;
    int n;           /* messages read */
    int next;        /* the ordernr expected next */
    int out_of_order;
    int duplicates;
    char *seen;      /* by ordernr */
    int total;
    bool check_headers;
} stream_check_t;

static void check_one(natsMsg *msg, void *arg) {
    stream_check_t *c = arg;
    int nr = natstest_ordernr(msg);
    c->n++;
    if (nr < 1 || nr > c->total) fail_msg("message %d has ordernr %d", c->n, nr);
    if (c->seen[nr]) {
        c->duplicates++;
        return;
    }
    c->seen[nr] = 1;
    if (nr != c->next) c->out_of_order++;
    c->next = nr + 1;
    if (c->check_headers) {
        char want[32];
        const char *id = c->fx->ids[nr - 1];
        if (strcmp(natstest_header(msg, "Nats-Msg-Id"), id) != 0 || strcmp(natstest_header(msg, "Outbox-Id"), id) != 0)
            fail_msg("ordernr %d: Nats-Msg-Id \"%s\", Outbox-Id \"%s\", event id %s", nr,
                     natstest_header(msg, "Nats-Msg-Id"), natstest_header(msg, "Outbox-Id"), id);
        assert_string_equal(natstest_header(msg, "Outbox-Type"), "order.created");
        snprintf(want, sizeof want, "k%d", nr % 7);
        assert_string_equal(natstest_header(msg, "Outbox-Key"), want);
        snprintf(want, sizeof want, "t-%d", nr);
        assert_string_equal(natstest_header(msg, "trace-id"), want);
        assert_int_equal(strlen(natstest_header(msg, "Outbox-Created")), 24);
        assert_string_equal(natsMsg_GetSubject(msg), "orders.order.created");
    }
}

/* Reads the whole stream: every ordernr 1..total present. Returns the
 * check's counts for the caller to judge and report. */
static stream_check_t check_stream(fixture_t *fx, const char *stream, int total, bool headers) {
    stream_check_t c = {.fx = fx, .next = 1, .total = total, .check_headers = headers};
    c.seen = calloc((size_t)total + 1, 1);
    natstest_read_stream(fx->js, stream, "orders.>", check_one, &c);
    int missing = 0;
    for (int i = 1; i <= total; i++) missing += !c.seen[i];
    free(c.seen);
    c.seen = NULL;
    if (missing) fail_msg("%s: %d of %d events missing", stream, missing, total);
    return c;
}

static char *read_log(const test_daemon_t *d) {
    char *log = test_read_file(d->log);
    assert_non_null(log);
    return log;
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

#define FIFTY_K_FULL 50000
#define FIFTY_K test_scaled(FIFTY_K_FULL)

static void fifty_thousand_events_stored_in_order_with_headers(void **state) {
    fixture_t *fx = *state;
    char sinks[2048];
    fixture_init(fx, "n_50k", 1);
    natstest_add_stream(fx->js, "ORDERS", "orders.>", 0);
    nats_sink_yaml(sinks, sizeof sinks, "n", "orders.{type}", fx->srv.url, NULL, NULL);
    char *config = write_config(fx, sinks);

    /* All put first, so that the time to the stream is outboxd's and the
     * sink's alone (with FerretDB's reads). */
    int64_t t0 = now_ms();
    put_orders(fx, 1, FIFTY_K);
    int64_t t_put = now_ms();
    daemon_start(fx, config);
    int64_t got = natstest_wait_count(fx->js, "ORDERS", FIFTY_K, 150000);
    int64_t t_all = now_ms();
    assert_int_equal(got, FIFTY_K);
    assert_int_equal(daemon_stop(fx, SIGTERM), 0);

    stream_check_t c = check_stream(fx, "ORDERS", FIFTY_K, true);
    assert_int_equal(c.n, FIFTY_K);
    assert_int_equal(c.duplicates, 0);
    assert_int_equal(c.out_of_order, 0);
    char *log = read_log(&fx->d);
    char closing[128];
    snprintf(closing, sizeof closing, "closed: %d published, %d acked (0 of them duplicates", FIFTY_K, FIFTY_K);
    if (!strstr(log, closing))
        fail_msg("the sink's closing line is missing or unexpected:\n%s", log);
    free(log);
    print_message("# %d events: put in %.1f s (%.0f/s, batches of 1000); then outboxd stored them "
                  "all in the stream in %.1f s (%.0f events/s, checkpoint every 1000); in order, once "
                  "each, headers checked\n",
                  FIFTY_K, (t_put - t0) / 1000.0, FIFTY_K * 1000.0 / (double)(t_put - t0 ? t_put - t0 : 1),
                  (t_all - t_put) / 1000.0, FIFTY_K * 1000.0 / (double)(t_all - t_put ? t_all - t_put : 1));
    free(config);
}

/* Counts every message a plain subscriber sees on orders.>: JetStream's
 * de-duplication drops repeats from the stream, not from the subject, so
 * this counts the publishes that were repeats. */
static int64_t drain_count(natsSubscription *sub) {
    int64_t n = 0;
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 500) == NATS_OK) {
        natsMsg_Destroy(m);
        n++;
    }
    return n;
}

#define KILLED_FULL 20000
#define KILLED test_scaled(KILLED_FULL)

static void kill_9_of_outboxd_mid_stream_stores_nothing_twice(void **state) {
    fixture_t *fx = *state;
    char sinks[2048];
    fixture_init(fx, "n_kill", 1);
    natstest_add_stream(fx->js, "ORDERS", "orders.>", 0); /* 2-minute window */
    natsSubscription *watch = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&watch, fx->nc, "orders.>"), NATS_OK);
    natsSubscription_SetPendingLimits(watch, -1, -1);
    natsConnection_Flush(fx->nc);
    nats_sink_yaml(sinks, sizeof sinks, "n", "orders.{type}", fx->srv.url, NULL, NULL);
    char *config = write_config(fx, sinks);
    put_orders(fx, 1, KILLED);

    int64_t seen_at_kill[2];
    int64_t marks[2] = {KILLED / 5, KILLED * 11 / 20}; /* 4,000 and 11,000 of 20,000 */
    for (int round = 0; round < 2; round++) {
        daemon_start(fx, config);
        seen_at_kill[round] = natstest_wait_count(fx->js, "ORDERS", marks[round], 60000);
        assert_int_equal(daemon_stop(fx, SIGKILL), 128 + SIGKILL);
    }
    daemon_start(fx, config);
    assert_int_equal(natstest_wait_count(fx->js, "ORDERS", KILLED, 90000), KILLED);
    nap_ms(500); /* a repeat now would show in the count below */
    assert_int_equal(daemon_stop(fx, SIGTERM), 0);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), KILLED);

    stream_check_t c = check_stream(fx, "ORDERS", KILLED, true);
    assert_int_equal(c.duplicates, 0);
    assert_int_equal(c.out_of_order, 0);
    int64_t published = drain_count(watch);
    natsSubscription_Destroy(watch);
    print_message("# kill -9 of outboxd at %lld and %lld stored events, restarted: the stream holds "
                  "each of %d events once, in order; %lld publishes were repeats of stored events "
                  "(recover found the others stored before publishing)\n",
                  (long long)seen_at_kill[0], (long long)seen_at_kill[1], KILLED,
                  (long long)(published - KILLED));
    /* Recovery read the stream back: nothing stored was published again,
     * so not even the duplicate window had work to do. */
    assert_int_equal(published, KILLED);
    free(config);
}

/* Exactly once across crashes without the duplicate window's help
 * (docs/recovery.md): a stream that forgets an id after 1 s, outboxd down
 * for 3 s after each of ten kills at random points while events are put;
 * read back from the stream. */
typedef struct {
    int *got;
    size_t n, cap;
} ordernrs_t;

static void collect_ordernr(natsMsg *msg, void *arg) {
    ordernrs_t *o = arg;
    if (o->n < o->cap) o->got[o->n] = natstest_ordernr(msg);
    o->n++;
}

static void kill_9_ten_times_with_a_1s_window_stores_each_event_once(void **state) {
    fixture_t *fx = *state;
    char sinks[2048];
    fixture_init(fx, "n_once", 1);
    natstest_add_stream(fx->js, "ONCE", "once.>", 1);
    nats_sink_yaml(sinks, sizeof sinks, "once", "once.{type}", fx->srv.url, NULL, NULL);
    char *config = test_daemon_config_ha(fx->dir, fx->ob, sinks, "  enabled: false\n");
    int total = test_scaled(20000) < 4000 ? 4000 : test_scaled(20000);
    test_crash_t t = {.ob = fx->ob, .config = config, .dir = fx->dir, .sink_dir = "sinks/nats", .sink = "once",
                      .total = total, .keys = 7, .kills = 10, .down_ms = 3000, .batch = 50, .pause_ms = 20};
    long recovered = test_crash_run(&t);
    ordernrs_t o = {.got = calloc((size_t)total * 2, sizeof(int)), .cap = (size_t)total * 2};
    natstest_read_stream(fx->js, "ONCE", "once.>", collect_ordernr, &o);
    char what[200];
    snprintf(what, sizeof what, "nats, 1 s duplicate window, kill -9 x10 with 3 s down (%ld events found at the "
                                "destination by recovery)", recovered);
    test_crash_check(what, o.got, o.n < o.cap ? o.n : o.cap, total, 7);
    assert_true(recovered > 0);
    free(o.got);
    free(config);
}

static void nats_server_restart_mid_stream_loses_nothing(void **state) {
    fixture_t *fx = *state;
    char sinks[2048];
    fixture_init(fx, "n_srv", 1);
    natstest_add_stream(fx->js, "ORDERS", "orders.>", 0);
    nats_sink_yaml(sinks, sizeof sinks, "n", "orders.{type}", fx->srv.url, "      ack_timeout_ms: 2000\n", NULL);
    char *config = write_config(fx, sinks);
    put_orders(fx, 1, KILLED);
    daemon_start(fx, config);

    /* Frozen first (SIGSTOP): PubAcks stop coming while outboxd keeps
     * publishing, so that the crash surely catches publishes in flight,
     * some stored without a PubAck, some never read. */
    int64_t at_kill = natstest_wait_count(fx->js, "ORDERS", KILLED / 4, 60000);
    natstest_disconnect(fx->nc, fx->js);
    fx->nc = NULL;
    fx->js = NULL;
    kill(fx->srv.pid, SIGSTOP);
    /* Frozen longer than the sink's ack_timeout_ms (2 s): whatever
     * outboxd publishes meanwhile is surely in flight at the kill. With
     * 500 ms, a slow run (ASan in CI) could fall between two of the shared
     * reader's round trips of 1,000 events, publish nothing while frozen and
     * have nothing in flight. */
    nap_ms(3000);
    natstest_server_stop(&fx->srv, SIGKILL);
    int64_t t_down = now_ms();
    nap_ms(1000);
    natstest_server_start(&fx->srv, fx->dir, fx->srv.port);
    fx->nc = natstest_connect(fx->srv.url, &fx->js);
    int64_t after_restart = natstest_stream_count(fx->js, "ORDERS");
    assert_int_equal(natstest_wait_count(fx->js, "ORDERS", KILLED, 120000), KILLED);
    int64_t t_done = now_ms();
    nap_ms(300);
    assert_int_equal(daemon_stop(fx, SIGTERM), 0);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), KILLED);

    stream_check_t c = check_stream(fx, "ORDERS", KILLED, true);
    assert_int_equal(c.duplicates, 0);
    assert_int_equal(c.out_of_order, 0);
    char *log = read_log(&fx->d);
    /* Recovered by itself: one open, a disconnect and a reconnect. */
    assert_int_equal(test_count_in(log, "sink n: opened"), 1);
    if (!strstr(log, "sink n: disconnected from NATS") || !strstr(log, "sink n: reconnected to"))
        fail_msg("the log does not tell the disconnect and reconnect:\n%s", log);
    const char *closed = strstr(log, "sink n: closed: ");
    if (!closed || strstr(closed, " 0 retried")) {
        /* The whole log, through print_message: fail_msg's buffer cut it
         * after ten lines, before the closing line that says why. */
        print_message("%s\n", log);
        fail_msg("nothing was in flight at the crash (or no closing line): the log is above; stored at the "
                 "freeze: %lld of %d", (long long)at_kill, KILLED);
    }
    print_message("# nats-server frozen then killed (-9) at %lld stored events, back after 1 s with %lld stored: "
                  "all %d stored once, in order, %.1f s after the kill; %.*s\n",
                  (long long)at_kill, (long long)after_restart, KILLED, (t_done - t_down) / 1000.0,
                  closed ? (int)strcspn(closed, "\n") : 0, closed ? closed : "");
    free(log);
    free(config);
}

static void core_mode_delivers_to_a_live_subscriber(void **state) {
    fixture_t *fx = *state;
    char sinks[2048];
    fixture_init(fx, "n_core", 0);
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, fx->nc, "live.>"), NATS_OK);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(fx->nc);
    nats_sink_yaml(sinks, sizeof sinks, "c", "live.{type}", fx->srv.url, "      mode: core\n", NULL);
    char *config = write_config(fx, sinks);
    daemon_start(fx, config);
    put_orders(fx, 1, 2000);
    for (int i = 1; i <= 2000; i++) {
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, sub, 30000);
        if (st != NATS_OK) fail_msg("message %d: %s", i, natsStatus_GetText(st));
        assert_int_equal(natstest_ordernr(m), i);
        assert_string_equal(natsMsg_GetSubject(m), "live.order.created");
        assert_string_equal(natstest_header(m, "Outbox-Id"), fx->ids[i - 1]);
        natsMsg_Destroy(m);
    }
    assert_int_equal(daemon_stop(fx, SIGTERM), 0);
    natsSubscription_Destroy(sub);
    char *log = read_log(&fx->d);
    if (!strstr(log, "sink c: closed: 2000 published, 2000 acked"))
        fail_msg("unexpected closing line:\n%s", log);
    free(log);
    free(config);
}

static void subject_without_stream_is_fatal_and_on_error_applies(void **state) {
    fixture_t *fx = *state;
    char a[1024], b[1024], g[1024], sinks[4096], coll[256];
    fixture_init(fx, "n_nostream", 1);
    natstest_add_stream(fx->js, "ORDERS", "orders.>", 0);
    nats_sink_yaml(a, sizeof a, "stopper", "nostream.{type}", fx->srv.url, NULL, NULL);
    nats_sink_yaml(b, sizeof b, "dead", "nostream.{type}", fx->srv.url, NULL, "    on_error: deadletter\n");
    nats_sink_yaml(g, sizeof g, "good", "orders.{type}", fx->srv.url, NULL, NULL);
    snprintf(sinks, sizeof sinks, "%s%s%s", a, b, g);
    char *config = write_config(fx, sinks);
    put_orders(fx, 1, 20);
    daemon_start(fx, config);

    assert_int_equal(natstest_wait_count(fx->js, "ORDERS", 20, 30000), 20);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(fx->ob));
    for (int i = 0; i < 300 && test_count(coll) < 20; i++) nap_ms(100);
    char st[32] = "";
    for (int i = 0; i < 300 && strcmp(st, "stopped") != 0; i++) {
        test_checkpoint(fx->ob, "stopper", NULL, st, sizeof st);
        nap_ms(100);
    }
    assert_int_equal(daemon_stop(fx, SIGTERM), 0);

    assert_string_equal(st, "stopped");
    assert_int_equal(test_count(coll), 20);
    const char *want = "no JetStream stream covers subject \"nostream.order.created\"";
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    const bson_t *doc;
    int n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, doc, "sink"));
        assert_string_equal(bson_iter_utf8(&it, NULL), "dead");
        assert_true(bson_iter_init_find(&it, doc, "error"));
        if (!strstr(bson_iter_utf8(&it, NULL), want)) fail_msg("dead letter error: %s", bson_iter_utf8(&it, NULL));
        n++;
    }
    assert_int_equal(n, 20);
    mongoc_cursor_destroy(cur);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    bson_destroy(&empty);

    char *log = read_log(&fx->d);
    const char *line = strstr(log, "sink stopper: event ");
    if (!line || !strstr(log, want) || !strstr(log, "this sink stops, the others go on"))
        fail_msg("the log does not tell why stopper stopped:\n%s", log);
    print_message("# %.*s\n", (int)strcspn(line, "\n"), line);
    free(log);
    stream_check_t chk = check_stream(fx, "ORDERS", 20, true);
    assert_int_equal(chk.n, 20);
    free(config);
}

/* Runs `outboxd --check` on config with the NATS plugin; returns its exit
 * status, everything it printed in out. */
static int outboxd_check(const char *config, char *out, size_t out_size) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/sinks/nats' 2>&1",
             b ? b : ".", config, b ? b : ".");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `outboxd --check` refuses a bad NATS server URL, naming the file and the
 * line of option servers, with no server anywhere (MongoDB and NATS point
 * at ports nothing listens on: check never connects), and never shows the
 * password; the same file with the URL fixed passes. Before sink ABI 1.1
 * --check said ok, and the sink failed at open, in the running daemon. */
static void check_refuses_a_bad_server_url_offline(void **state) {
    char *dir = test_tmpdir("nats-check");
    char path[600], out[8192], where[700];
    snprintf(path, sizeof path, "%s/outboxd.yaml", dir);
    for (int good = 0; good < 2; good++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f,
                "mongodb:\n"
                "  uri: \"mongodb://127.0.0.1:1/\"\n"
                "  database: shop\n"
                "outbox: events\n"
                "sinks:\n"
                "  - name: to-nats\n"
                "    plugin: nats\n"
                "    route: \"orders.{type}\"\n"
                "    options:\n"
                "      servers: \"nats://127.0.0.1:1, %s\"\n"
                "      user: outboxd\n"
                "      password: \"N4ts/S3CRET\"\n",
                good ? "nats://nats2.invalid:4222" : "nats://nats2.invalid:4222x");
        fclose(f);
        chmod(path, 0600); /* an inline secret in a file others can read is warned about */
        int rc = outboxd_check(path, out, sizeof out);
        print_message("# outboxd --check (%s URL): exit %d\n%s", good ? "good" : "bad", rc, out);
        assert_null(strstr(out, "S3CRET"));
        if (good) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_not_equal(rc, 0);
        snprintf(where, sizeof where, "%s:10:", path);
        assert_non_null(strstr(out, where));
        assert_non_null(strstr(out, "servers: \"nats://nats2.invalid:4222x\" is not a server URL"));
        assert_non_null(strstr(out, "its port is not 1 to 65535"));
    }
    test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_refuses_a_bad_server_url_offline),
        cmocka_unit_test_setup_teardown(fifty_thousand_events_stored_in_order_with_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_9_of_outboxd_mid_stream_stores_nothing_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_9_ten_times_with_a_1s_window_stores_each_event_once, setup, teardown),
        cmocka_unit_test_setup_teardown(nats_server_restart_mid_stream_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(core_mode_delivers_to_a_live_subscriber, setup, teardown),
        cmocka_unit_test_setup_teardown(subject_without_stream_is_fatal_and_on_error_applies, setup, teardown),
    };
    int failed = TEST_RUN("nats sink with outboxd", tests);
    nats_CloseAndWait(5000); /* libnats's threads and memory, for valgrind */
    return failed;
}
