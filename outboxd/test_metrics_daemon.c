/*
 * test_metrics_daemon.c - what outboxd's survey of the log (survey.h) and
 * its watchdog tell an operator (issue 15; docs/metrics.md), against a real
 * outboxd and server, judged by curl and promtool:
 *   - after a drain, every sink's lag is 0 and its headroom 1, the latency
 *     histogram counts every acked event, the log's figures are the log's,
 *     and the scrape declares every family of examples/metric-names.txt
 *     (the list the dashboard and the alert rules are checked against);
 *   - a stopped sink on a small capped log: its lag counts what was put
 *     after its checkpoint, exactly (placed by the survey's walk of the
 *     log; the drain above is placed by the shared reader's ring); its headroom falls as the formula of
 *     headroom.h says; below log.warn_headroom outboxd warns, at most once
 *     per log.warn_every_ms; the headroom reaches 0 while the checkpoint
 *     event is still in the log, and only the next write opens the gap the
 *     sink then meets;
 *   - a server that stops answering (a network that drops every packet,
 *     no reset) holds the shared reader in a read: /healthz turns 503
 *     naming the thread, and 200 again once the network is back;
 *   - a committed transactional put the promoter cannot promote (issue 22)
 *     is quarantined, said in the log, counted by the gauge and named by
 *     outboxctl status, and the events around it are published.
 * Waits are bounded only against a hang.
 */
#include "config.h"

#include "httplib.h"
#include "tcp_proxy.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000
#define AUDIT "{sink=\"audit\",plugin=\"file\"}"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every family of examples/metric-names.txt is declared in scrape with its
 * type; a prefix entry (NAME*) has at least one family. */
static void scrape_declares_every_listed_family(const char *scrape) {
    const char *src = getenv("OUTBOX_TEST_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/metric-names.txt", src ? src : ".");
    char *list = test_read_file(path);
    if (!list)
        fail_msg("cannot read %s (set OUTBOX_TEST_SRCDIR to the source tree)", path);
    int families = 0;
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char name[200], type[40], want[300];
        if (line[0] == '#' || sscanf(line, "%199s %39s", name, type) != 2)
            continue;
        size_t n = strlen(name);
        if (name[n - 1] == '*') {
            name[n - 1] = '\0';
            snprintf(want, sizeof want, "# TYPE %s", name);
        } else {
            snprintf(want, sizeof want, "# TYPE %s %s\n", name, type);
        }
        if (!strstr(scrape, want))
            fail_msg("examples/metric-names.txt lists %s %s, which the scrape does not declare (\"%s\"):\n%s", name,
                     type, want, scrape);
        families++;
    }
    free(list);
    print_message("# the scrape declares all %d families of examples/metric-names.txt\n", families);
}

/* Fails, showing the whole scrape, unless series' value OP want (an absent
 * series is -1): a failure says which figure was off and what the others
 * were at that moment. */
static void expect(const char *body, const char *series, const char *op, double want) {
    double v = test_scrape_value(body, series);
    bool ok = strcmp(op, "==") == 0 ? v == want : strcmp(op, ">") == 0 ? v > want : v >= want;
    if (!ok)
        fail_msg("%s is %g, expected %s %g; the scrape:\n%s", series, v, op, want, body);
}

/* A config in dir with one file sink, audit, writing to out, the HTTP
 * endpoint on a free port (*port) and a survey every 100 ms. */
static char *audit_config(outbox_t *ob, const char *dir, char *out, size_t out_size, int *port) {
    char sinks[700];
    snprintf(out, out_size, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    char *config = test_daemon_config(dir, ob, sinks);
    *port = test_free_port();
    test_config_http(config, *port, NULL);
    test_config_append(config, "log:\n  survey_ms: 100\n");
    return config;
}

static void after_a_drain_lag_is_zero_and_latency_counts_every_ack(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("metrics_drain");
    char *dir = test_tmpdir("metrics_drain");
    char out[600];
    int port;
    char *config = audit_config(ob, dir, out, sizeof out, &port);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    const int n = getenv("OUTBOX_TEST_QUICK") ? 300 : 3000;
    for (int i = 1; i <= n; i++)
        test_put_order(ob, i, "k");
    assert_int_equal(test_wait_lines(out, n, WAIT_MS), n);

    free(test_scrape_until(port, "outboxd_sink_events_acked_total" AUDIT, n, WAIT_MS, NULL));
    /* The checkpoint reaches the newest event within checkpoint.every_ms;
     * the survey then finds nothing after it. The log's count is the
     * server's collStats count, which FerretDB's SQLite backend estimates
     * from its pages: seen at 2,154 of 3,000 once in CI (ASan), exact in
     * every other run (docs/metrics.md). Every figure below holds once both
     * have settled, so they are read from a scrape where the count has. */
    free(test_scrape_until_equal(port, "outboxd_sink_lag_events" AUDIT, 0, WAIT_MS));
    char *body = test_scrape_until_equal(port, "outboxd_log_events", n, WAIT_MS);
    expect(body, "outboxd_sink_events_acked_total" AUDIT, "==", n);
    expect(body, "outboxd_sink_latency_seconds_count" AUDIT, "==", n);
    expect(body, "outboxd_sink_latency_seconds_bucket{sink=\"audit\",plugin=\"file\",le=\"+Inf\"}", "==", n);
    expect(body, "outboxd_sink_latency_seconds_sum" AUDIT, ">", 0);
    expect(body, "outboxd_sink_lag_seconds" AUDIT, "==", 0);
    expect(body, "outboxd_sink_log_headroom_ratio" AUDIT, "==", 1);
    expect(body, "outboxd_sink_headroom_low" AUDIT, "==", 0);
    expect(body, "outboxd_sink_checkpoint_age_seconds" AUDIT, ">=", 0);
    expect(body, "outboxd_sink_ready" AUDIT, "==", 1);
    expect(body, "outboxd_log_events", "==", n);
    expect(body, "outboxd_log_capped_size_bytes", ">", 0);
    expect(body, "outboxd_log_size_bytes", ">", 0);
    expect(body, "outboxd_log_oldest_event_age_seconds", ">=",
           test_scrape_value(body, "outboxd_log_newest_event_age_seconds"));
    expect(body, "outboxd_mongodb_up", "==", 1);
    expect(body, "outboxd_pending_events", "==", 0);
    expect(body, "outboxd_quarantined_events", "==", 0);
    expect(body, "outboxd_log_warn_headroom_ratio", "==", 0.2);
    /* The file plugin reports its own figures (ABI 1.1 stats). */
    assert_non_null(strstr(body, "\noutboxd_plugin_file_"));
    const char *threads[] = {"reader", "lease", "survey"};
    for (int i = 0; i < 3; i++) {
        char series[100];
        snprintf(series, sizeof series, "outboxd_thread_heartbeat_age_seconds{thread=\"%s\"}", threads[i]);
        double age = test_scrape_value(body, series);
        if (age < 0 || age >= 60)
            fail_msg("%s: %g, expected a live thread's (0 to 60 s):\n%s", series, age, body);
    }
    test_promtool_accepts(dir, body);
    scrape_declares_every_listed_family(body);
    print_message("# %d events: lag 0, headroom 1, latency count %d, log events %d\n", n, n, n);
    free(body);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* A foreign producer's document in N.pending that is no envelope. */
static void put_pending_foreign(outbox_t *ob) {
    char name[256];
    snprintf(name, sizeof name, "%s.pending", outbox_name(ob));
    bson_oid_t id;
    bson_oid_init(&id, NULL);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "type", BCON_UTF8("order.created"), "data",
                           BCON_UTF8("not a document"));
    test_insert_raw(name, doc);
    bson_destroy(doc);
}

static void a_pending_put_the_promoter_cannot_promote_is_quarantined_and_said(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("metrics_quarantine");
    char *dir = test_tmpdir("metrics_quarantine");
    char out[600];
    int port;
    char *config = audit_config(ob, dir, out, sizeof out, &port);
    test_put_pending(ob, 1);
    put_pending_foreign(ob);
    test_put_pending(ob, 2);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    assert_int_equal(test_wait_lines(out, 2, WAIT_MS), 2);
    int got[4];
    assert_int_equal(test_jsonl_ordernrs(out, got, 4), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 2);
    char *body = test_scrape_until_equal(port, "outboxd_quarantined_events", 1, WAIT_MS);
    free(body);
    body = test_scrape_until_equal(port, "outboxd_pending_events", 0, WAIT_MS);
    free(body);
    test_daemon_wait_log(&d, "promoter: quarantined 1 pending document; the last: pending document ", 1);
    test_daemon_wait_log(&d, "not an event envelope: data", 1);
    char *status = NULL;
    test_outboxctl_use(ob);
    assert_int_equal(test_outboxctl_run(&status, "status"), 0);
    if (!strstr(status, "QUARANTINED") || !strstr(status, "1 pending document the promoter could not promote") ||
        !strstr(status, "not an event envelope"))
        fail_msg("outboxctl status does not name the quarantined document:\n%s", status);
    free(status);
    test_outboxctl_use(NULL);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* A document in the log that is no event: a sink with on_error: stop
 * stops at it, its checkpoint on the event before. */
static void put_malformed(outbox_t *ob) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *log = mongoc_client_get_collection(client, TEST_DB, outbox_name(ob));
    bson_t *doc = BCON_NEW("type", BCON_INT32(7));
    bson_error_t berr;
    if (!mongoc_collection_insert_one(log, doc, NULL, NULL, &berr))
        fail_msg("insert: %s", berr.message);
    bson_destroy(doc);
    mongoc_collection_destroy(log);
    mongoc_client_destroy(client);
}

/* Waits until the event id is no longer in the log. */
static void wait_gone(outbox_t *ob, const bson_oid_t *id) {
    mongoc_client_t *client = test_client();
    mongoc_collection_t *log = mongoc_client_get_collection(client, TEST_DB, outbox_name(ob));
    bson_t *filter = BCON_NEW("_id", BCON_OID(id));
    bson_error_t berr;
    int64_t n = 1;
    for (int waited = 0; waited < WAIT_MS && n != 0; waited += 100) {
        n = mongoc_collection_count_documents(log, filter, NULL, NULL, NULL, &berr);
        if (n < 0)
            fail_msg("count: %s", berr.message);
        if (n)
            sleep_ms(100);
    }
    assert_int_equal(n, 0);
    bson_destroy(filter);
    mongoc_collection_destroy(log);
    mongoc_client_destroy(client);
}

#define CAP 100 /* the log's capped.max */

static void headroom_falls_warns_and_reaches_zero_before_the_gap(void **state) {
    (void)state;
    /* Capped by documents (1 MiB holds far more than CAP of them): the
     * headroom by documents is the smaller, 1 - lag / (CAP - 1). */
    outbox_t *ob = test_outbox_capped("metrics_headroom", "1048576", "100");
    char *dir = test_tmpdir("metrics_headroom");
    char sinks[700], out[600];
    snprintf(out, sizeof out, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n    on_error: stop\n", out);
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    test_config_http(config, port, NULL);
    test_config_append(config, "log:\n  survey_ms: 100\n  warn_every_ms: 1000\n  warn_headroom: 0.2\n");
    /* A ring of 16: the checkpoint event soon leaves it, and the survey
     * places it by its walk of the log (the drain test above places its
     * sink by the ring). */
    test_config_append(config, "reader:\n  ring_events: 16\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);

    /* One event published, then a document that stops the sink: its
     * checkpoint stays on event 1, the one place it can resume from. */
    bson_oid_t first_id = test_put_order(ob, 1, "k");
    assert_int_equal(test_wait_lines(out, 1, WAIT_MS), 1);
    put_malformed(ob);
    free(test_scrape_until(port, "outboxd_sink_state{sink=\"audit\",plugin=\"file\",state=\"stopped\"}", 1, WAIT_MS,
                           NULL));
    int lag = 1; /* the malformed document */

    /* Up to lag 79: 20 of 99 places left, at the threshold, no warning. */
    for (int i = 2; lag < 79; i++, lag++)
        test_put_order(ob, i, "k");
    char *body = test_scrape_until_equal(port, "outboxd_sink_lag_events" AUDIT, lag, WAIT_MS);
    double h = test_scrape_value(body, "outboxd_sink_log_headroom_ratio" AUDIT);
    if (fabs(h - (1.0 - 79.0 / 99.0)) > 1e-9)
        fail_msg("headroom %.10g at lag 79 of a log of 100, expected %.10g", h, 1.0 - 79.0 / 99.0);
    assert_true(test_scrape_value(body, "outboxd_sink_headroom_low" AUDIT) == 0);
    free(body);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "sink audit: log headroom"), 0);
    free(log);

    /* Lag 80: below 0.2. One warning, then one per warn_every_ms. */
    test_put_order(ob, 100, "k");
    lag++;
    test_daemon_wait_log(&d, "sink audit: log headroom 0.19 is below log.warn_headroom 0.20: 80 events", 1);
    double first = mono_s();
    body = test_scrape_until_equal(port, "outboxd_sink_headroom_low" AUDIT, 1, WAIT_MS);
    free(body);
    /* Said again while it stays low, but at most once per second. */
    test_daemon_wait_log(&d, "sink audit: log headroom 0.19 is below", 3);
    log = test_read_file(d.log);
    int warnings = test_count_in(log, "sink audit: log headroom 0.19 is below");
    double elapsed = mono_s() - first;
    free(log);
    print_message("# %d warnings in %.1f s at warn_every_ms 1000\n", warnings, elapsed);
    if (warnings > 1 + (int)elapsed)
        fail_msg("%d warnings in %.1f s: expected at most one per second (1000 ms), the first at once", warnings,
                 elapsed);

    /* Lag 99: the log is full, its oldest document is the checkpoint
     * event. Headroom 0, and yet no gap: nothing is lost. */
    for (int i = 101; lag < CAP - 1; i++, lag++)
        test_put_order(ob, i, "k");
    body = test_scrape_until_equal(port, "outboxd_sink_lag_events" AUDIT, CAP - 1, WAIT_MS);
    assert_true(test_scrape_value(body, "outboxd_sink_log_headroom_ratio" AUDIT) == 0);
    assert_int_equal((long long)test_scrape_value(body, "outboxd_log_events"), CAP);
    free(body);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "at a gap"), 0);
    assert_int_equal(test_count_in(log, "is no longer in the capped log"), 0);
    free(log);

    /* One more write overwrites the checkpoint event (at once on MongoDB;
     * the test server trims capped logs every second): the sink, started
     * again, meets the gap (on_gap: stop, the default). */
    test_put_order(ob, 1000, "k");
    wait_gone(ob, &first_id);
    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "is no longer in the capped log", 1);
    free(test_scrape_until(port, "outboxd_sink_state{sink=\"audit\",plugin=\"file\",state=\"gap\"}", 1, WAIT_MS,
                           NULL));
    /* The survey after the restart (within log.survey_ms) finds the
     * checkpoint event gone: no lag, no headroom. */
    free(test_scrape_until_equal(port, "outboxd_sink_log_headroom_ratio" AUDIT, 0, WAIT_MS));
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* outboxd reaches the server through a proxy that turns silent: the shared
 * reader's read waits on a socket that never answers. */
static void healthz_names_the_reader_when_the_server_goes_silent(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("metrics_silent");
    char *dir = test_tmpdir("metrics_silent");
    test_proxy_t *proxy = test_proxy_to_mongodb();
    char proxied[256], sinks[700], out[600];
    snprintf(proxied, sizeof proxied, "mongodb://127.0.0.1:%d/", test_proxy_port(proxy));
    snprintf(out, sizeof out, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    char *config = test_daemon_config_uri(dir, ob, proxied, sinks, NULL);
    int port = test_free_port();
    test_config_http(config, port, "  stuck_ms: 1000\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    test_put_order(ob, 1, "k");
    assert_int_equal(test_wait_lines(out, 1, WAIT_MS), 1);
    char *body;
    assert_int_equal(test_http_get(port, "/healthz", &body), 200);
    free(body);

    test_proxy_set_silent(proxy, true);
    body = test_http_until(port, "/healthz", 503, WAIT_MS);
    print_message("# /healthz while the server is silent: %s", body);
    assert_non_null(strstr(body, "{\"thread\":\"reader\",\"for_ms\":"));
    free(body);

    test_proxy_set_silent(proxy, false);
    free(test_http_until(port, "/healthz", 200, WAIT_MS));
    test_put_order(ob, 2, "k");
    assert_int_equal(test_wait_lines(out, 2, WAIT_MS), 2);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    test_proxy_stop(proxy);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(after_a_drain_lag_is_zero_and_latency_counts_every_ack),
        cmocka_unit_test(headroom_falls_warns_and_reaches_zero_before_the_gap),
        cmocka_unit_test(healthz_names_the_reader_when_the_server_goes_silent),
        cmocka_unit_test(a_pending_put_the_promoter_cannot_promote_is_quarantined_and_said),
    };
    return TEST_RUN("test_metrics_daemon", tests);
}
