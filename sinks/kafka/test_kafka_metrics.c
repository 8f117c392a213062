/*
 * test_kafka_metrics.c - outboxd's metrics and readiness with the real
 * Kafka broker of the harness (issue 15; docs/metrics.md), judged by
 * clients we did not write (curl, promtool) and by what the destinations
 * hold (the file, and the topic read back with librdkafka):
 *   - 20,000 events to a file sink and a Kafka sink: each sink's acked
 *     counter equals what its destination holds, the latency histogram
 *     counts as many, the lag gauges reach 0, and the Kafka plugin's own
 *     figures (ABI 1.1 stats) say as much;
 *   - the broker stopped: the Kafka sink's readiness turns 503 within
 *     http.ready_grace_ms + 1 s, with the sink and its state in the body,
 *     while /healthz stays 200; the broker back: readiness 200 again, and
 *     the event put meanwhile is delivered.
 * The outage test stops and starts the broker (services.sh stop-kafka,
 * start-kafka); the teardown starts it again whatever happened.
 */
#include "httplib.h"
#include "kafka_testlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 180000
#define BUS "{sink=\"bus\",plugin=\"kafka\"}"
#define AUDIT "{sink=\"audit\",plugin=\"file\"}"

static pid_t daemon_pid;   /* the outboxd of the running test, 0 when none */
static bool kafka_stopped; /* this program stopped the broker */

static int cleanup(void **state) {
    (void)state;
    if (daemon_pid > 0) {
        int status;
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, &status, 0);
        daemon_pid = 0;
    }
    if (kafka_stopped && kt_services("start-kafka") == 0)
        kafka_stopped = false;
    return 0;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Puts ordernrs from..to, a thousand per insert. */
static void put_range(outbox_t *ob, int from, int to) {
    outbox_error_t err;
    for (int start = from; start <= to; start += 1000) {
        int end = start + 999 < to ? start + 999 : to;
        outbox_batch_t *batch = outbox_batch_new(ob);
        for (int n = start; n <= end; n++) {
            char key[16];
            snprintf(key, sizeof key, "key-%02d", n % 20);
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(n), "total", BCON_DOUBLE(10.5));
            if (outbox_batch_add(batch, "order.created", key, data, NULL, &err) != OUTBOX_OK)
                fail_msg("batch add %d: %s", n, err.message);
            bson_destroy(data);
        }
        if (outbox_batch_put(batch, NULL, &err) != OUTBOX_OK)
            fail_msg("batch put: %s", err.message);
        outbox_batch_destroy(batch);
    }
}

/* outboxd on config with the file and Kafka plugins in one folder. */
static void daemon_start(test_daemon_t *d, const char *config, const char *dir) {
    static const char *const names[] = {"file", "kafka"};
    char *plugins = test_plugins_dir(dir, names, 2), log[700];
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_start_log(d, config, plugins, log);
    daemon_pid = d->pid;
    free(plugins);
}

static void daemon_stop(test_daemon_t *d) {
    assert_int_equal(test_daemon_stop(d, SIGTERM), 0);
    daemon_pid = 0;
}

static void acked_counters_match_what_the_file_and_the_topic_hold(void **state) {
    (void)state;
    const int n = test_scaled(20000);
    kt_brokers();
    outbox_t *ob = test_outbox("k_metrics");
    char *topic = kt_topic_name("metrics");
    kt_create_topic(topic, 3, NULL);
    char *dir = test_tmpdir("kmetrics"), sinks[2048], out[700];
    snprintf(out, sizeof out, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks,
             "  - name: audit\n    plugin: file\n    route: \"%s\"\n"
             "  - name: bus\n    plugin: kafka\n    route: \"%s\"\n    options:\n      bootstrap.servers: \"%s\"\n",
             out, topic, kt_brokers());
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    test_config_http(config, port, NULL);
    test_config_append(config, "log:\n  survey_ms: 200\n");
    test_daemon_t d;
    daemon_start(&d, config, dir);
    put_range(ob, 1, n);

    free(test_scrape_until(port, "outboxd_sink_events_acked_total" AUDIT, n, WAIT_MS, NULL));
    free(test_scrape_until(port, "outboxd_sink_events_acked_total" BUS, n, WAIT_MS, NULL));
    free(test_scrape_until_equal(port, "outboxd_sink_lag_events" AUDIT, 0, WAIT_MS));
    /* The plugin's figures come once a second, the survey every 200 ms. */
    free(test_scrape_until(port, "outboxd_plugin_kafka_delivered_total" BUS, n, WAIT_MS, NULL));
    char *body = test_scrape_until_equal(port, "outboxd_sink_lag_events" BUS, 0, WAIT_MS);

    kt_record_t *records;
    size_t in_topic = kt_consume(topic, &records, 60000);
    kt_records_free(records, in_topic);
    int in_file = test_wait_lines(out, n, WAIT_MS);
    print_message("# %d events: file %d lines, topic %zu messages; acked %g and %g\n", n, in_file, in_topic,
                  test_scrape_value(body, "outboxd_sink_events_acked_total" AUDIT),
                  test_scrape_value(body, "outboxd_sink_events_acked_total" BUS));
    assert_int_equal((long long)test_scrape_value(body, "outboxd_sink_events_acked_total" AUDIT), in_file);
    assert_int_equal((long long)test_scrape_value(body, "outboxd_sink_events_acked_total" BUS), (long long)in_topic);
    assert_int_equal(in_file, n);
    assert_int_equal((long long)in_topic, n);
    assert_int_equal((long long)test_scrape_value(body, "outboxd_sink_latency_seconds_count" AUDIT), n);
    assert_int_equal((long long)test_scrape_value(body, "outboxd_sink_latency_seconds_count" BUS), n);
    assert_int_equal((long long)test_scrape_value(body, "outboxd_plugin_kafka_delivered_total" BUS), n);
    assert_true(test_scrape_value(body, "outboxd_plugin_kafka_in_flight" BUS) == 0);
    assert_true(test_scrape_value(body, "outboxd_sink_lag_seconds" BUS) == 0);
    assert_true(test_scrape_value(body, "outboxd_sink_log_headroom_ratio" BUS) == 1);
    test_promtool_accepts(dir, body);
    free(body);
    daemon_stop(&d);
    kt_delete_topic(topic);
    free(topic);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

#define GRACE_MS 2000

static void readiness_follows_the_broker(void **state) {
    (void)state;
    kt_brokers();
    outbox_t *ob = test_outbox("k_ready");
    char *topic = kt_topic_name("ready");
    kt_create_topic(topic, 1, NULL);
    char *dir = test_tmpdir("kready"), sinks[2048];
    snprintf(sinks, sizeof sinks,
             "  - name: bus\n    plugin: kafka\n    route: \"%s\"\n    options:\n      bootstrap.servers: \"%s\"\n",
             topic, kt_brokers());
    char *config = test_daemon_config(dir, ob, sinks);
    int port = test_free_port();
    char http[100];
    snprintf(http, sizeof http, "  ready_grace_ms: %d\n", GRACE_MS);
    test_config_http(config, port, http);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    put_range(ob, 1, 1);
    free(test_scrape_until(port, "outboxd_sink_events_acked_total" BUS, 1, WAIT_MS, NULL));
    free(test_http_until(port, "/readyz", 200, WAIT_MS));

    kafka_stopped = true;
    assert_int_equal(kt_services("stop-kafka"), 0);
    double stopped = mono_s();
    put_range(ob, 2, 2);
    char *body = test_http_until(port, "/readyz", 503, WAIT_MS);
    double took = mono_s() - stopped;
    print_message("# /readyz 503 %.1f s after the broker stopped (ready_grace_ms %d): %s\n", took, GRACE_MS, body);
    assert_non_null(strstr(body, "{\"sink\":\"bus\",\"state\":\"retrying\""));
    free(body);
    /* Under valgrind everything is slower; the bound is for a real run. */
    if (!getenv("OUTBOX_TEST_VALGRIND") && took > GRACE_MS / 1000.0 + 1.0)
        fail_msg("/readyz turned 503 %.1f s after the broker stopped: more than ready_grace_ms + 1 s", took);
    assert_int_equal(test_http_get(port, "/healthz", &body), 200);
    free(body);
    char *log = test_read_file(d.log);
    assert_non_null(strstr(log, "sink bus: unreachable: kafka sink: every broker is down"));
    free(log);

    assert_int_equal(kt_services("start-kafka"), 0);
    kafka_stopped = false;
    free(test_http_until(port, "/readyz", 200, WAIT_MS));
    free(test_scrape_until(port, "outboxd_sink_events_acked_total" BUS, 2, WAIT_MS, NULL));
    test_daemon_wait_log(&d, "sink bus: reachable again", 1);
    daemon_stop(&d);
    kt_record_t *records;
    size_t in_topic = kt_consume(topic, &records, 60000);
    kt_records_free(records, in_topic);
    assert_int_equal((long long)in_topic, 2);
    kt_delete_topic(topic);
    free(topic);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(acked_counters_match_what_the_file_and_the_topic_hold, cleanup),
        cmocka_unit_test_teardown(readiness_follows_the_broker, cleanup),
    };
    return TEST_RUN("test_kafka_metrics", tests);
}
