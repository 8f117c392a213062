/*
 * test_kafka_outboxd.c - the Kafka sink end to end: the real outboxd
 * publishing to the harness's real Apache Kafka broker, read back with an
 * independent librdkafka consumer. Every event arrives, in order per key,
 * with its headers; a broker outage mid-stream loses nothing, outboxd
 * recovers by itself, and its checkpoint never runs ahead of what the
 * broker has; kill -9 of outboxd publishes each event exactly once (the
 * sink's recover reads the partitions' ends back), also when the topic's
 * partitions grow between a kill and the restart; a bad librdkafka property, an unreachable broker at start and
 * a message over message.max.bytes do what sinks/kafka/README.md says.
 *
 * The outage tests stop and start the broker (tests/services/services.sh
 * stop-kafka, start-kafka); each test's teardown starts it again and kills
 * a leftover outboxd, whatever happened.
 */
#include "crashlib.h"
#include "kafka_testlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEYS 20

/* ----------------------------------------------------------------------------
 * Clean-up that must happen even when a test fails
 * ------------------------------------------------------------------------- */

static pid_t daemon_pid;   /* the outboxd of the running test, 0 when none */
static bool kafka_stopped; /* this program stopped the broker */

static void stop_kafka(void) {
    kafka_stopped = true;
    assert_int_equal(kt_services("stop-kafka"), 0);
}

static void start_kafka(void) {
    assert_int_equal(kt_services("start-kafka"), 0);
    kafka_stopped = false;
}

static int cleanup(void **state) {
    if (daemon_pid > 0) {
        int status;
        kill(daemon_pid, SIGCONT);
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, &status, 0);
        daemon_pid = 0;
    }
    if (kafka_stopped && kt_services("start-kafka") == 0) kafka_stopped = false;
    return 0;
}

static void daemon_start(test_daemon_t *d, const char *config, const char *dir) {
    test_daemon_start_with(d, config, dir, "sinks/kafka");
    daemon_pid = d->pid;
}

static int daemon_stop(test_daemon_t *d, int sig) {
    int rc = test_daemon_stop(d, sig);
    daemon_pid = 0;
    return rc;
}

/* ----------------------------------------------------------------------------
 * Events: ordernr n has key key-(n % KEYS) and header trace-id: trace-n
 * ------------------------------------------------------------------------- */

typedef struct {
    outbox_t *ob;
    bson_oid_t *ids; /* ids[n]: the id of ordernr n */
    int cap;
    pthread_mutex_t lock;
    int last;        /* the highest ordernr put */
} events_t;

static void events_init(events_t *e, outbox_t *ob, int cap) {
    memset(e, 0, sizeof *e);
    e->ob = ob;
    e->cap = cap;
    e->ids = calloc((size_t)cap + 1, sizeof *e->ids);
    assert_non_null(e->ids);
    pthread_mutex_init(&e->lock, NULL);
}

static void events_free(events_t *e) {
    free(e->ids);
    pthread_mutex_destroy(&e->lock);
}

/* Puts ordernrs from..to in batches of up to 1000 (one insert each). The
 * data of ordernr big_one, if any, is made larger than 10 kB. */
static void put_range(events_t *e, int from, int to, int big_one) {
    outbox_error_t err;
    for (int start = from; start <= to; start += 1000) {
        int end = start + 999 < to ? start + 999 : to;
        outbox_batch_t *batch = outbox_batch_new(e->ob);
        for (int n = start; n <= end; n++) {
            char key[16], trace[32];
            snprintf(key, sizeof key, "key-%02d", n % KEYS);
            snprintf(trace, sizeof trace, "trace-%d", n);
            bson_t *headers = BCON_NEW("trace-id", BCON_UTF8(trace));
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(n), "total", BCON_DOUBLE(10.5));
            if (n == big_one) {
                bson_t lines;
                char index[16];
                BSON_APPEND_ARRAY_BEGIN(data, "lines", &lines);
                for (int i = 0; i < 400; i++) {
                    snprintf(index, sizeof index, "%d", i);
                    bson_t *line = BCON_NEW("sku", BCON_UTF8("ABC-12345"), "qty", BCON_INT32(i + 1));
                    BSON_APPEND_DOCUMENT(&lines, index, line);
                    bson_destroy(line);
                }
                bson_append_array_end(data, &lines);
            }
            if (outbox_batch_add(batch, "order.created", key, data, headers, &err) != OUTBOX_OK)
                fail_msg("batch add %d: %s", n, err.message);
            bson_destroy(data);
            bson_destroy(headers);
        }
        if (outbox_batch_put(batch, NULL, &err) != OUTBOX_OK) fail_msg("batch put: %s", err.message);
        pthread_mutex_lock(&e->lock);
        for (int n = start; n <= end; n++) bson_oid_copy(outbox_batch_id(batch, (size_t)(n - start)), &e->ids[n]);
        e->last = end;
        pthread_mutex_unlock(&e->lock);
        outbox_batch_destroy(batch);
    }
}

static int events_last(events_t *e) {
    pthread_mutex_lock(&e->lock);
    int last = e->last;
    pthread_mutex_unlock(&e->lock);
    return last;
}

/* The ordernr whose id is id (0 when none). */
static int ordernr_of(events_t *e, const bson_oid_t *id) {
    pthread_mutex_lock(&e->lock);
    int found = 0;
    for (int n = e->last; n >= 1 && found == 0; n--)
        if (bson_oid_equal(&e->ids[n], id)) found = n;
    pthread_mutex_unlock(&e->lock);
    return found;
}

/* The ordernr the sink's checkpoint is at (0 when it has none). */
static int checkpoint_ordernr(events_t *e, const char *sink) {
    bson_oid_t id;
    memset(&id, 0, sizeof id);
    if (!test_checkpoint(e->ob, sink, &id, NULL, 0)) return 0;
    bson_oid_t zero;
    memset(&zero, 0, sizeof zero);
    if (bson_oid_equal(&id, &zero)) return 0;
    return ordernr_of(e, &id);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Waits until the checkpoint of sink is at ordernr last. */
static void wait_checkpoint(events_t *e, const char *sink, int last, int timeout_ms, const test_daemon_t *d) {
    int at = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 200) {
        if ((at = checkpoint_ordernr(e, sink)) == last) return;
        sleep_ms(200);
    }
    fail_msg("checkpoint of sink %s at ordernr %d after %d ms, expected %d (log: %s)", sink, at, timeout_ms,
             last, d->log);
}

/* ----------------------------------------------------------------------------
 * Reading the topic back
 * ------------------------------------------------------------------------- */

static int record_ordernr(const kt_record_t *r) {
    const char *p = strstr(r->value, "\"ordernr\"");
    if (p == NULL || (p = strchr(p, ':')) == NULL) fail_msg("message without ordernr: %s", r->value);
    return (int)strtol(p + 1, NULL, 10);
}

typedef struct {
    size_t messages;
    int duplicates;
    unsigned char *seen; /* seen[n]: ordernr n is in the topic */
} check_t;

/* Checks every message of topic against events 1..e->last: the key, the
 * headers, the id; per key, the events in their order of first appearance
 * must be exactly that key's events in put order (so none is missing and
 * the order is kept); repeats are counted as duplicates. Events in skip
 * (ordernr, or 0) must not be there. */
static void check_topic(events_t *e, const char *topic, int skip, check_t *out) {
    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 60000);
    int last = e->last;
    int next[KEYS];
    int32_t partition_of[KEYS];
    unsigned char *seen = calloc((size_t)last + 1, 1);
    int duplicates = 0;
    for (int k = 0; k < KEYS; k++) {
        next[k] = k == 0 ? KEYS : k;
        if (next[k] == skip) next[k] += KEYS;
        partition_of[k] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        int nr = record_ordernr(&r[i]);
        if (nr < 1 || nr > last || nr == skip) fail_msg("%s: unexpected ordernr %d", topic, nr);
        int k = nr % KEYS;
        char key[16], trace[32], id[25];
        snprintf(key, sizeof key, "key-%02d", k);
        snprintf(trace, sizeof trace, "trace-%d", nr);
        bson_oid_to_string(&e->ids[nr], id);
        if (r[i].key == NULL || strcmp(r[i].key, key) != 0)
            fail_msg("%s: ordernr %d has key %s, expected %s", topic, nr, r[i].key ? r[i].key : "(null)", key);
        const char *h_id = kt_header(&r[i], "outbox-id"), *h_type = kt_header(&r[i], "outbox-type");
        const char *h_created = kt_header(&r[i], "outbox-created"), *h_trace = kt_header(&r[i], "trace-id");
        if (!h_id || strcmp(h_id, id) != 0 || !h_type || strcmp(h_type, "order.created") != 0 || !h_created ||
            strlen(h_created) != 24 || h_created[23] != 'Z' || !h_trace || strcmp(h_trace, trace) != 0)
            fail_msg("%s: ordernr %d: headers missing or wrong (outbox-id %s, outbox-type %s, outbox-created %s, "
                     "trace-id %s)",
                     topic, nr, h_id ? h_id : "-", h_type ? h_type : "-", h_created ? h_created : "-",
                     h_trace ? h_trace : "-");
        /* A key always goes to one partition: that is what keeps its order. */
        if (partition_of[k] < 0) partition_of[k] = r[i].partition;
        if (r[i].partition != partition_of[k])
            fail_msg("%s: key %s in partitions %d and %d", topic, key, partition_of[k], r[i].partition);
        if (seen[nr]) {
            duplicates++;
            continue;
        }
        if (nr != next[k])
            fail_msg("%s: key %s: ordernr %d at partition %d offset %lld, expected %d (order broken or events "
                     "missing)",
                     topic, key, nr, r[i].partition, (long long)r[i].offset, next[k]);
        seen[nr] = 1;
        next[k] += KEYS;
        if (next[k] == skip) next[k] += KEYS;
    }
    for (int k = 0; k < KEYS; k++)
        if (next[k] <= last) fail_msg("%s: key-%02d: ordernr %d and later missing", topic, k, next[k]);
    kt_records_free(r, n);
    out->messages = n;
    out->duplicates = duplicates;
    out->seen = seen;
}

/* The sinks YAML of one Kafka sink named k. */
static void kafka_sink_yaml(char *out, size_t size, const char *topic, const char *extra_sink,
                            const char *extra_options) {
    snprintf(out, size,
             "  - name: k\n"
             "    plugin: kafka\n"
             "    route: \"%s\"\n"
             "%s"
             "    options:\n"
             "      bootstrap.servers: \"%s\"\n"
             "%s",
             topic, extra_sink, kt_brokers(), extra_options);
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void fifty_thousand_events_twenty_keys_all_delivered_in_order(void **state) {
    int total = test_scaled(50000);
    kt_brokers();
    outbox_t *ob = test_outbox("k_bulk");
    char *topic = kt_topic_name("bulk");
    kt_create_topic(topic, 6, NULL);
    events_t e;
    events_init(&e, ob, total);

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    put_range(&e, 1, total, 0);
    double put_s = seconds_since(&start);

    char *dir = test_tmpdir("kbulk"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "", "");
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    clock_gettime(CLOCK_MONOTONIC, &start);
    daemon_start(&d, config, dir);
    wait_checkpoint(&e, "k", total, 180000, &d);
    double deliver_s = seconds_since(&start);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);

    check_t c;
    check_topic(&e, topic, 0, &c);
    print_message("# %d events, %d keys, 6 partitions: all delivered, order kept per key, headers present; "
                  "%zu messages, %d duplicates\n",
                  total, KEYS, c.messages, c.duplicates);
    print_message("# put %.0f events/s (batches of 1000); outboxd to Kafka %.0f events/s (%.1f s, from start to "
                  "checkpoint at the last event)\n",
                  total / put_s, total / deliver_s, deliver_s);
    assert_int_equal(c.duplicates, 0); /* nothing restarted: idempotent producer, no repeats */
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink k: producing to ") || !strstr(log, "enable.idempotence=true acks=-1"))
        fail_msg("the log does not show the producer's settings:\n%s", log);
    free(log);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

/* A producer that puts `batch` events every 250 ms up to `total`. */
typedef struct {
    events_t *e;
    int total, batch;
} producer_t;

static void *produce(void *arg) {
    producer_t *p = arg;
    for (int n = 1; n <= p->total; n += p->batch) {
        int end = n + p->batch - 1 < p->total ? n + p->batch - 1 : p->total;
        put_range(p->e, n, end, 0);
        sleep_ms(250);
    }
    return NULL;
}

static void broker_outage_mid_stream_loses_nothing_and_checkpoint_stays_behind(void **state) {
    int batch = test_scaled(100), total = batch * 200; /* about 50 s of puts */
    kt_brokers();
    outbox_t *ob = test_outbox("k_outage");
    char *topic = kt_topic_name("outage");
    kt_create_topic(topic, 3, NULL);
    events_t e;
    events_init(&e, ob, total);
    char *dir = test_tmpdir("koutage"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "", "");
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    producer_t p = {.e = &e, .total = total, .batch = batch};
    pthread_t producer;
    pthread_create(&producer, NULL, produce, &p);

    /* Mid-stream: events flowing, then the broker goes away for 30 s. */
    for (int i = 0; i < 100 && checkpoint_ordernr(&e, "k") < batch * 8; i++) sleep_ms(100);
    int before = checkpoint_ordernr(&e, "k");
    assert_true(before > 0);
    stop_kafka();
    struct timespec down;
    clock_gettime(CLOCK_MONOTONIC, &down);
    sleep_ms(2000); /* the last checkpoint writes of what was acked before */
    int during = checkpoint_ordernr(&e, "k");
    int put_at_stop = events_last(&e);
    while (seconds_since(&down) < 30) {
        sleep_ms(1000);
        int now = checkpoint_ordernr(&e, "k");
        if (now != during)
            fail_msg("the checkpoint moved from ordernr %d to %d with the broker down", during, now);
    }

    /* Freeze outboxd, bring the broker back, and read what it has: the
     * checkpoint must not be past any event the broker lacks. */
    kill(d.pid, SIGSTOP);
    sleep_ms(500);
    int frozen = checkpoint_ordernr(&e, "k");
    start_kafka();
    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 60000);
    unsigned char *in_kafka = calloc((size_t)total + 1, 1);
    for (size_t i = 0; i < n; i++) in_kafka[record_ordernr(&r[i])] = 1;
    kt_records_free(r, n);
    for (int nr = 1; nr <= frozen; nr++)
        if (!in_kafka[nr])
            fail_msg("the checkpoint is at ordernr %d but the broker lacks ordernr %d", frozen, nr);
    free(in_kafka);
    kill(d.pid, SIGCONT);

    /* outboxd goes on by itself: everything arrives. */
    pthread_join(producer, NULL);
    wait_checkpoint(&e, "k", total, 180000, &d);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    check_t c;
    check_topic(&e, topic, 0, &c);
    char *log = test_read_file(d.log);
    int opens = test_count_in(log, "sink k: opened");
    print_message("# broker down 30 s mid-stream (checkpoint at ordernr %d when it stopped, %d of %d put): "
                  "checkpoint held at %d during the outage, %zu messages already in Kafka when it came back "
                  "cover it; after: all %d events, order kept per key, %d duplicates, sink opened %d time(s)\n",
                  before, put_at_stop, total, during, n, total, c.duplicates, opens);
    free(log);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

static void kill_9_mid_stream_loses_nothing(void **state) {
    /* At least 6,000 even in quick runs: with fewer, outboxd can drain the
     * second third between two looks at its checkpoint, and the kill is no
     * longer mid-stream. */
    int total = test_scaled(20000) < 6000 ? 6000 : test_scaled(20000);
    kt_brokers();
    outbox_t *ob = test_outbox("k_kill");
    char *topic = kt_topic_name("kill");
    kt_create_topic(topic, 3, NULL);
    events_t e;
    events_init(&e, ob, total);
    put_range(&e, 1, total, 0);
    char *dir = test_tmpdir("kkill"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "", "");
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    int killed_at[2];
    for (int round = 0; round < 2; round++) {
        daemon_start(&d, config, dir);
        int target = total * (round + 1) / 3;
        for (int i = 0; i < 3000 && checkpoint_ordernr(&e, "k") < target; i++) sleep_ms(10);
        killed_at[round] = checkpoint_ordernr(&e, "k");
        assert_true(killed_at[round] < total); /* really mid-stream */
        assert_int_equal(daemon_stop(&d, SIGKILL), 128 + SIGKILL);
    }
    daemon_start(&d, config, dir);
    wait_checkpoint(&e, "k", total, 120000, &d);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    check_t c;
    check_topic(&e, topic, 0, &c);
    print_message("# kill -9 x2 mid-stream (checkpoints at ordernr %d and %d): all %d events present, order "
                  "kept per key, %d duplicates (recover found the events in doubt in the topic)\n",
                  killed_at[0], killed_at[1], total, c.duplicates);
    assert_int_equal(c.duplicates, 0);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

/* Exactly once across crashes (docs/recovery.md): ten kills at random
 * points while events are put, read back with a plain consumer; with
 * grow, the topic's partitions grow from 3 to 5 after the fifth kill (a
 * key's later events then go to another partition: exactly once, and in
 * order per key within each partition's share). */
typedef struct {
    const char *topic;
} grow_t;

static void grow_after_fifth(void *ctx, int kill) {
    if (kill == 4)
        kt_grow_topic(((grow_t *)ctx)->topic, 5);
}

static void kill_9_ten_times(const char *label, bool grow) {
    kt_brokers();
    outbox_t *ob = test_outbox(label);
    char *topic = kt_topic_name(label);
    kt_create_topic(topic, 3, NULL);
    char *dir = test_tmpdir(label), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "", "");
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    int total = test_scaled(20000) < 4000 ? 4000 : test_scaled(20000);
    grow_t g = {topic};
    test_crash_t t = {.ob = ob, .config = config, .dir = dir, .sink_dir = "sinks/kafka", .sink = "k",
                      .total = total, .keys = 7, .kills = 10, .batch = 50, .pause_ms = 20,
                      .between = grow ? grow_after_fifth : NULL, .ctx = &g};
    long recovered = test_crash_run(&t);
    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 60000);
    int *got = calloc(n + 1, sizeof *got);
    for (size_t i = 0; i < n; i++)
        got[i] = record_ordernr(&r[i]);
    char what[200];
    snprintf(what, sizeof what, "kafka%s, kill -9 x10 (%ld events found at the destination by recovery)",
             grow ? " (partitions 3 -> 5 after the fifth kill)" : "", recovered);
    if (grow)
        test_crash_check_once(what, got, n, total);
    else
        test_crash_check(what, got, n, total, 7);
    assert_true(recovered > 0);
    free(got);
    kt_records_free(r, n);
    free(config);
    test_rmtree(dir);
    free(dir);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

static void kill_9_ten_times_publishes_each_event_once(void **state) {
    kill_9_ten_times("k_once", false);
}

static void kill_9_with_partitions_growing_publishes_each_event_once(void **state) {
    kill_9_ten_times("k_grow", true);
}

/* Runs outboxd (with --check when check) on config with the build tree's
 * Kafka sink; returns its exit status, everything it printed in out. */
static int run_outboxd(const char *config, bool check, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd'%s --config '%s' --plugin-dir '%s/sinks/kafka' 2>&1",
             getenv("OUTBOX_TEST_BUILDDIR"), check ? " --check" : "", config, getenv("OUTBOX_TEST_BUILDDIR"));
    return test_run_command(cmd, out);
}

/* A config whose Kafka sink has `property: value` on line 11, with
 * neither a broker nor MongoDB where it points (127.0.0.1:1). */
static char *offline_config(const char *dir, const char *property, const char *value) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/outboxd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "mongodb:\n"
            "  uri: \"mongodb://127.0.0.1:1/\"\n"
            "  database: shop\n"
            "outbox: events\n"
            "sinks:\n"
            "  - name: k\n"
            "    plugin: kafka\n"
            "    route: \"orders\"\n"
            "    options:\n"
            "      bootstrap.servers: \"127.0.0.1:1\"\n"
            "      %s: \"%s\"\n",
            property, value);
    fclose(f);
    return path;
}

/* `outboxd --check` runs the sink's check: a property librdkafka does not
 * know is refused, naming the file, the line and the property, with no
 * broker (nor MongoDB) anywhere, and outboxd started on that file stops at
 * once with the same message. A good one passes --check just as offline. */
static void check_refuses_an_unknown_property_naming_file_and_line(void **state) {
    char *dir = test_tmpdir("kcheck"), *out = NULL, want[700];
    char *config = offline_config(dir, "linger.mss", "5");
    snprintf(want, sizeof want, "%s:11:7: sink k: linger.mss: No such configuration property", config);
    for (int check = 1; check >= 0; check--) {
        int status = run_outboxd(config, check, &out);
        print_message("# outboxd%s on a config with linger.mss: exit %d: %s", check ? " --check" : "", status, out);
        assert_int_equal(status, 2);
        if (!strstr(out, want)) fail_msg("outboxd%s does not say \"%s\":\n%s", check ? " --check" : "", want, out);
        free(out);
    }
    free(config);

    config = offline_config(dir, "sasl.mechanism", "SCRAM-SHA-1");
    snprintf(want, sizeof want, "%s:11:7: sink k: sasl.mechanism: \"SCRAM-SHA-1\" is not one of", config);
    assert_int_equal(run_outboxd(config, true, &out), 2);
    if (!strstr(out, want)) fail_msg("outboxd --check does not say \"%s\":\n%s", want, out);
    free(out);
    free(config);

    config = offline_config(dir, "linger.ms", "5");
    int status = run_outboxd(config, true, &out);
    if (status != 0 || !strstr(out, ": ok")) fail_msg("outboxd --check refused a good config (%d):\n%s", status, out);
    free(out);
    free(config);
    test_rmtree(dir);
    free(dir);
}

/* Properties that contradict each other (acks=1 with idempotence on) pass
 * check (only rd_kafka_new finds them): open fails FATAL naming them;
 * outboxd logs it, stops that sink (state "stopped" in its checkpoint,
 * with the message) and keeps running. */
static void contradicting_properties_stop_the_sink_naming_them(void **state) {
    kt_brokers();
    outbox_t *ob = test_outbox("k_badprop");
    char *dir = test_tmpdir("kbadprop"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, "outbox-test-never", "", "      acks: \"1\"\n");
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "this sink stops", 1);
    char st[32] = "";
    for (int i = 0; i < 50 && strcmp(st, "stopped") != 0; i++) {
        test_checkpoint(ob, "k", NULL, st, sizeof st);
        sleep_ms(100);
    }
    assert_string_equal(st, "stopped");
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink k: plugin kafka") || !strstr(log, "open failed: kafka sink: cannot create the producer: "
                                                                "`acks` must be set to `all`"))
        fail_msg("the log does not name the property:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The broker down when outboxd starts: open says so and RETRYs with
 * backoff; once the broker is back, everything is delivered. */
static void unreachable_broker_at_start_is_retried(void **state) {
    int total = 500;
    kt_brokers();
    outbox_t *ob = test_outbox("k_late");
    char *topic = kt_topic_name("late");
    kt_create_topic(topic, 2, NULL);
    events_t e;
    events_init(&e, ob, total);
    put_range(&e, 1, total, 0);
    char *dir = test_tmpdir("klate"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "", "      open_timeout_ms: \"2000\"\n");
    char *config = test_daemon_config(dir, ob, sinks);
    stop_kafka();
    test_daemon_t d;
    daemon_start(&d, config, dir);
    test_daemon_wait_log(&d, "(retrying in", 1);
    assert_int_equal(checkpoint_ordernr(&e, "k"), 0);
    start_kafka();
    struct timespec up;
    clock_gettime(CLOCK_MONOTONIC, &up);
    wait_checkpoint(&e, "k", total, 90000, &d);
    double after = seconds_since(&up);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    check_t c;
    check_topic(&e, topic, 0, &c);
    assert_int_equal(c.duplicates, 0);
    char *log = test_read_file(d.log);
    char want[300];
    snprintf(want, sizeof want, "sink k: open: kafka sink: no broker of bootstrap.servers=%s could be used within 2000 ms",
             kt_brokers());
    if (!strstr(log, want)) fail_msg("the log does not say why open failed:\n%s", log);
    print_message("# broker down at start: open RETRYed %d time(s); all %d events delivered %.1f s after the "
                  "broker was back\n",
                  test_count_in(log, want), total, after);
    free(log);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

/* An event over message.max.bytes is acked FATAL: on_error: deadletter
 * puts it into N.deadletter with librdkafka's error; the others go on. */
static void message_over_max_bytes_is_dead_lettered(void **state) {
    int total = 21, big = 11;
    kt_brokers();
    outbox_t *ob = test_outbox("k_big");
    char *topic = kt_topic_name("big");
    kt_create_topic(topic, 1, NULL);
    events_t e;
    events_init(&e, ob, total);
    put_range(&e, 1, total, big);
    char *dir = test_tmpdir("kbig"), sinks[2048];
    kafka_sink_yaml(sinks, sizeof sinks, topic, "    on_error: deadletter\n", "      message.max.bytes: \"10000\"\n");
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    wait_checkpoint(&e, "k", total, 60000, &d);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);

    check_t c;
    check_topic(&e, topic, big, &c);
    assert_int_equal(c.messages, total - 1);
    char coll[256];
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    assert_int_equal(test_count(coll), 1);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *dl = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(dl, &empty, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    assert_true(mongoc_cursor_next(cur, &doc));
    assert_true(bson_iter_init_find(&it, doc, "error"));
    const char *error = bson_iter_utf8(&it, NULL);
    print_message("# dead-lettered: %s\n", error);
    assert_non_null(strstr(error, "MSG_SIZE_TOO_LARGE"));
    assert_non_null(strstr(error, "message.max.bytes=10000"));
    assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "event.data.ordernr", &it));
    assert_int_equal(bson_iter_int32(&it), big);
    mongoc_cursor_destroy(cur);
    mongoc_collection_drop(dl, NULL);
    mongoc_collection_destroy(dl);
    mongoc_client_destroy(client);
    bson_destroy(&empty);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

/* The harness's SASL_SSL listener (tests/services/README.md), or skips. */
static void sasl_listener(char *brokers, char *user, char *password, char *ca, size_t size) {
    kt_brokers();
    const char *b = test_service("OUTBOX_TEST_KAFKA_SASL_BROKERS");
    if (!b) {
        if (getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
            fail_msg("no SASL_SSL listener on the test broker, and OUTBOX_TEST_REQUIRE_SERVERS is set");
        TEST_SKIP("the test broker has no SASL_SSL listener (OUTBOX_TEST_KAFKA_SASL_BROKERS): a broker "
                  "started by an older services.sh gets it with services.sh stop-kafka; start-kafka");
    }
    snprintf(brokers, size, "%s", b);
    snprintf(user, size, "%s", test_service("OUTBOX_TEST_KAFKA_SASL_USER"));
    snprintf(password, size, "%s", test_service("OUTBOX_TEST_KAFKA_SASL_PASSWORD"));
    snprintf(ca, size, "%s/ca.pem", test_service("OUTBOX_TEST_TLS_DIR"));
}

/* outboxd over SASL_SSL, the password read from a file
 * (sasl.password_file: PATH, the SECRET option's KEY_file): everything
 * delivered (read back by an independent consumer), and the password in
 * nothing outboxd or outboxctl printed: not in --check's output, not in
 * outboxd's log, not in `outboxctl status` (text or --json). SCRAM-SHA-512
 * where librdkafka can use it with Kafka 4.x (>= 2.6.1), else PLAIN
 * (sinks/kafka/README.md). */
static void sasl_ssl_with_the_password_in_a_file_delivers_and_never_shows_it(void **state) {
    int total = 200;
    char brokers[512], user[512], password[512], ca[512];
    sasl_listener(brokers, user, password, ca, sizeof brokers);
    const char *mechanism = rd_kafka_version() >= 0x020601ff ? "SCRAM-SHA-512" : "PLAIN";
    outbox_t *ob = test_outbox("k_sasl");
    char *topic = kt_topic_name("sasl");
    kt_create_topic(topic, 2, NULL);
    events_t e;
    events_init(&e, ob, total);
    put_range(&e, 1, total, 0);
    char *dir = test_tmpdir("ksasl"), pwfile[700], sinks[4096];
    snprintf(pwfile, sizeof pwfile, "%s/kafka-password", dir);
    FILE *f = fopen(pwfile, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", password);
    fclose(f);
    chmod(pwfile, 0600);
    snprintf(sinks, sizeof sinks,
             "  - name: k\n"
             "    plugin: kafka\n"
             "    route: \"%s\"\n"
             "    options:\n"
             "      bootstrap.servers: \"%s\"\n"
             "      security.protocol: SASL_SSL\n"
             "      sasl.mechanisms: %s\n"
             "      sasl.username: %s\n"
             "      sasl.password_file: \"%s\"\n"
             "      ssl.ca.location: \"%s\"\n",
             topic, brokers, mechanism, user, pwfile, ca);
    char *config = test_daemon_config(dir, ob, sinks);
    chmod(config, 0600);
    char *out = NULL;
    int status = run_outboxd(config, true, &out);
    if (status != 0 || strstr(out, password)) fail_msg("outboxd --check (exit %d):\n%s", status, out);
    free(out);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    wait_checkpoint(&e, "k", total, 60000, &d);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    check_t c;
    check_topic(&e, topic, 0, &c);
    assert_int_equal(c.messages, total);
    assert_int_equal(c.duplicates, 0);
    char *log = test_read_file(d.log);
    assert_non_null(strstr(log, brokers));
    if (strstr(log, password)) fail_msg("the password is in outboxd's log:\n%s", log);
    for (int json = 0; json <= 1; json++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status%s 2>&1",
                 getenv("OUTBOX_TEST_BUILDDIR"), test_mongodb_uri(), TEST_DB, outbox_name(ob), json ? " --json" : "");
        test_run_command(cmd, &out);
        if (!strstr(out, "k")) fail_msg("outboxctl status shows no sink k:\n%s", out);
        if (strstr(out, password)) fail_msg("the password is in outboxctl status:\n%s", out);
        /* The plugin's figures (stats) reach the checkpoint. */
        if (json && !strstr(out, "\"kafka_delivered_total\":"))
            fail_msg("outboxctl status --json shows no kafka_delivered_total:\n%s", out);
        free(out);
    }
    print_message("# outboxd over SASL_SSL (%s, password from a file): %d events delivered\n", mechanism, total);
    free(log);
    free(c.seen);
    free(config);
    test_rmtree(dir);
    free(dir);
    events_free(&e);
    kt_delete_topic(topic);
    free(topic);
    test_outbox_drop(ob);
}

/* A route with {key} whose key makes an illegal topic ('/' or ' '): that
 * event is acked FATAL and, with on_error: deadletter, dead-lettered with
 * the sink's reason; the events around it are delivered. */
static void illegal_topic_from_the_key_is_dead_lettered_with_the_reason(void **state) {
    kt_brokers();
    outbox_t *ob = test_outbox("k_topic");
    char *prefix = kt_topic_name("key");
    char good[300], route[300];
    snprintf(good, sizeof good, "%s.eu-2", prefix);
    snprintf(route, sizeof route, "%s.{key}", prefix);
    test_put_order(ob, 1, "eu/1");
    test_put_order(ob, 2, "eu-2");
    bson_oid_t last = test_put_order(ob, 3, "eu 3");
    char *dir = test_tmpdir("ktopic"), sinks[2048];
    snprintf(sinks, sizeof sinks,
             "  - name: k\n"
             "    plugin: kafka\n"
             "    route: \"%s\"\n"
             "    on_error: deadletter\n"
             "    options:\n"
             "      bootstrap.servers: \"%s\"\n",
             route, kt_brokers());
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    char coll[256];
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    /* The checkpoint passes the last event once all three are settled. */
    bson_oid_t at;
    bool done = false;
    for (int waited = 0; !done && waited < 30000; waited += 200) {
        done = test_checkpoint(ob, "k", &at, NULL, 0) && bson_oid_equal(&at, &last);
        if (!done) sleep_ms(200);
    }
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    if (!done) fail_msg("the checkpoint did not reach the third event (log: %s)", d.log);
    kt_record_t *r;
    size_t n = kt_consume(good, &r, 10000);
    assert_int_equal(n, 1);
    kt_records_free(r, n);
    assert_int_equal(test_count(coll), 2);

    mongoc_client_t *client = test_client();
    mongoc_collection_t *dl = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(dl, &empty, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    int slash = 0, space = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        assert_true(bson_iter_init_find(&it, doc, "error"));
        const char *error = bson_iter_utf8(&it, NULL);
        print_message("# dead-lettered: %s\n", error);
        assert_non_null(strstr(error, "not a valid Kafka topic name"));
        if (strstr(error, ".eu/1\", which has '/' at byte")) slash++;
        if (strstr(error, ".eu 3\", which has a space at byte")) space++;
    }
    assert_int_equal(slash, 1);
    assert_int_equal(space, 1);
    mongoc_cursor_destroy(cur);
    mongoc_collection_drop(dl, NULL);
    mongoc_collection_destroy(dl);
    mongoc_client_destroy(client);
    bson_destroy(&empty);
    free(config);
    test_rmtree(dir);
    free(dir);
    kt_delete_topic(good);
    free(prefix);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(fifty_thousand_events_twenty_keys_all_delivered_in_order, cleanup),
        cmocka_unit_test_teardown(broker_outage_mid_stream_loses_nothing_and_checkpoint_stays_behind, cleanup),
        cmocka_unit_test_teardown(kill_9_mid_stream_loses_nothing, cleanup),
        cmocka_unit_test_teardown(kill_9_ten_times_publishes_each_event_once, cleanup),
        cmocka_unit_test_teardown(kill_9_with_partitions_growing_publishes_each_event_once, cleanup),
        cmocka_unit_test_teardown(check_refuses_an_unknown_property_naming_file_and_line, cleanup),
        cmocka_unit_test_teardown(contradicting_properties_stop_the_sink_naming_them, cleanup),
        cmocka_unit_test_teardown(unreachable_broker_at_start_is_retried, cleanup),
        cmocka_unit_test_teardown(message_over_max_bytes_is_dead_lettered, cleanup),
        cmocka_unit_test_teardown(sasl_ssl_with_the_password_in_a_file_delivers_and_never_shows_it, cleanup),
        cmocka_unit_test_teardown(illegal_topic_from_the_key_is_dead_lettered_with_the_reason, cleanup),
    };
    return TEST_RUN("kafka sink through outboxd", tests);
}
