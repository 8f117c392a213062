/*
 * test_http_daemon.c - outboxd's HTTP endpoint (issue 15; http.h,
 * docs/metrics.md) against a real outboxd, judged by clients we did not
 * write: curl fetches, Prometheus's promtool checks the scrape.
 *   - /metrics: promtool accepts it, and the counters say what the sink's
 *     file holds (every event read, published and acked once, none
 *     failed), with the sink's state running;
 *   - /readyz turns 503 naming a sink that retries past
 *     http.ready_grace_ms, and 200 again once it publishes; /healthz stays
 *     200 meanwhile;
 *   - /healthz turns 503 naming a sink whose plugin call hangs past
 *     http.stuck_ms, and 200 again once it returns;
 *   - --check refuses a port in use and an address of the wrong form,
 *     naming the file and the line.
 * Waits are bounded only against a hang.
 */
#include "config.h"

#include "httplib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000

/* The scrape's value of series as a count (-1: absent). */
static long long series(const char *scrape, const char *prefix) {
    return (long long)test_scrape_value(scrape, prefix);
}

#define get test_http_get

#define SINK_LABELS "{sink=\"audit\",plugin=\"file\"}"

static void metrics_count_what_reached_the_sink_and_promtool_accepts_them(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("http_metrics");
    char *dir = test_tmpdir("http_metrics");
    char sinks[700], out[600];
    snprintf(out, sizeof out, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    test_config_http(config, port, NULL);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "http: serving /metrics, /healthz and /readyz on", 1);
    enum { N = 2000 };
    for (int i = 1; i <= N; i++)
        test_put_order(ob, i, "k");
    assert_int_equal(test_wait_lines(out, N, WAIT_MS), N);

    /* The acks come before the lines are in the file: wait for the count. */
    char *body = test_scrape_until(port, "outboxd_sink_events_acked_total" SINK_LABELS, N, WAIT_MS, NULL);
    assert_int_equal(series(body, "outboxd_sink_events_read_total" SINK_LABELS), N);
    assert_int_equal(series(body, "outboxd_sink_events_published_total" SINK_LABELS), N);
    assert_int_equal(series(body, "outboxd_sink_events_acked_total" SINK_LABELS), N);
    assert_int_equal(series(body, "outboxd_sink_events_retried_total" SINK_LABELS), 0);
    assert_int_equal(series(body, "outboxd_sink_events_failed_total{sink=\"audit\",plugin=\"file\",reason=\"fatal\"}"),
                     0);
    assert_int_equal(series(body, "outboxd_sink_state{sink=\"audit\",plugin=\"file\",state=\"running\"}"), 1);
    assert_int_equal(series(body, "outboxd_sink_state{sink=\"audit\",plugin=\"file\",state=\"retrying\"}"), 0);
    assert_true(series(body, "outboxd_sink_publish_batches_total" SINK_LABELS) >= 1);
    assert_true(series(body, "outboxd_sink_checkpoint_writes_total" SINK_LABELS) >= 1);
    assert_int_equal(series(body, "outboxd_build_info{version=\"" PACKAGE_VERSION "\",abi=\"1.2\"}"), 1);

    /* Prometheus's own checker reads the scrape. */
    test_promtool_accepts(dir, body);
    free(body);

    assert_int_equal(get(port, "/healthz", &body), 200);
    free(body);
    assert_int_equal(get(port, "/readyz", &body), 200);
    assert_non_null(strstr(body, "\"status\":\"ready\""));
    free(body);
    assert_int_equal(get(port, "/nosuch", &body), 404);
    free(body);
    print_message("# %d events: read, published and acked %d times each in /metrics; promtool check metrics: ok\n", N,
                  N);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The sink's route needs dir/gate/ to be a folder; a regular file there
 * makes every publish fail with RETRY (ENOTDIR) until it is removed. */
static void readyz_names_a_sink_that_retries_past_the_grace(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("http_ready");
    char *dir = test_tmpdir("http_ready");
    char sinks[700], out[600], gate[600];
    snprintf(out, sizeof out, "%s/gate/audit.jsonl", dir);
    snprintf(gate, sizeof gate, "%s/gate", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    FILE *g = fopen(gate, "w");
    assert_non_null(g);
    fclose(g);
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    test_config_http(config, port, "  ready_grace_ms: 1000\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "http: serving /metrics, /healthz and /readyz on", 1);
    test_put_order(ob, 1, "k");
    test_daemon_wait_log(&d, "sink audit: publish:", 1);

    char *body = test_http_until(port, "/readyz", 503, WAIT_MS);
    print_message("# /readyz while the sink retries: %s", body);
    assert_non_null(strstr(body, "\"sink\":\"audit\",\"state\":\"retrying\""));
    assert_non_null(strstr(body, "\"mongodb\":\"ok\""));
    free(body);
    assert_int_equal(get(port, "/healthz", &body), 200);
    free(body);

    /* The gate opens: the event goes, readiness comes back. */
    assert_int_equal(unlink(gate), 0);
    assert_int_equal(test_wait_lines(out, 1, WAIT_MS), 1);
    free(test_http_until(port, "/readyz", 200, WAIT_MS));
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The sink's destination is a FIFO with no reader: the file sink's open
 * of it, inside publish, blocks. Past http.stuck_ms /healthz fails naming
 * the sink and the call; a reader unblocks it and /healthz passes again. */
static void healthz_fails_while_a_plugin_call_hangs(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("http_stuck");
    char *dir = test_tmpdir("http_stuck");
    char sinks[700], fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.jsonl", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", fifo);
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    test_config_http(config, port, "  stuck_ms: 1000\n");
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "http: serving /metrics, /healthz and /readyz on", 1);
    char *body = NULL;
    assert_int_equal(get(port, "/healthz", &body), 200);
    free(body);
    test_put_order(ob, 1, "k");

    body = test_http_until(port, "/healthz", 503, WAIT_MS);
    print_message("# /healthz while publish hangs: %s", body);
    assert_non_null(strstr(body, "\"sink\":\"audit\",\"in\":\"publish\""));
    free(body);
    assert_int_equal(get(port, "/metrics", &body), 200);
    assert_true(series(body, "outboxd_sink_plugin_call_seconds" SINK_LABELS) >= 1);
    free(body);

    /* A reader: the open returns, the event goes through the pipe. */
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    free(test_http_until(port, "/healthz", 200, WAIT_MS));
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    close(rd);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void check_refuses_a_busy_port_and_a_bad_address_with_file_and_line(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("http_check");
    char *dir = test_tmpdir("http_check");
    char sinks[700], listen[64], *out, where[700];
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s/a.jsonl\"\n", dir);
    int port;
    int fd = test_bound_socket(&port);
    char *config = test_daemon_config(dir, ob, sinks);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    test_config_http(config, port, NULL);
    /* The http section follows the sinks and ha: its listen is on line 16. */
    snprintf(where, sizeof where, "%s:16: http.listen \"%s\": cannot listen there: Address already in use", config,
             listen);
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, where))
        fail_msg("expected \"%s\" in:\n%s", where, out);
    free(out);
    close(fd);
    assert_int_equal(test_daemon_check(config, &out), 0);
    free(out);
    free(config);

    config = test_daemon_config(dir, ob, sinks);
    test_config_append(config, "http:\n  listen: \"127.0.0.1:99999\"\n");
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "outboxd.yaml:16:11: http.listen: the port must be a number from 1 to 65535, got \"99999\""))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);

    config = test_daemon_config(dir, ob, sinks);
    test_config_append(config, "http:\n  listen: \"::1:9187\"\n");
    assert_int_equal(test_daemon_check(config, &out), 2);
    if (!strstr(out, "outboxd.yaml:16:11: http.listen: expected HOST:PORT (an IPv6 address in brackets"))
        fail_msg("unexpected: %s", out);
    free(out);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_count_what_reached_the_sink_and_promtool_accepts_them),
        cmocka_unit_test(readyz_names_a_sink_that_retries_past_the_grace),
        cmocka_unit_test(healthz_fails_while_a_plugin_call_hangs),
        cmocka_unit_test(check_refuses_a_busy_port_and_a_bad_address_with_file_and_line),
    };
    return TEST_RUN("test_http_daemon", tests);
}
