/*
 * test_kafka_sink.c - drives the built Kafka sink plugin the way outboxd
 * does, without outboxd: tests/sinkhost.c loads it with outboxd's own
 * loader, resolves its options with outboxd's own option code (typed
 * options, defaults, KEY_file secrets) and records every ack and log line.
 * check and option errors need no broker; the rest runs against the
 * harness's real Kafka broker and reads the messages back with an
 * independent librdkafka consumer.
 *
 * The test defines rd_kafka_new() itself, calling librdkafka's, to get hold
 * of the plugin's producer and raise a fatal error on it
 * (rd_kafka_test_fatal_error). The program is linked with -export-dynamic,
 * so the plugin's call binds to this one ahead of librdkafka's.
 */
#include "kafka_testlib.h"
#include "sinkhost.h"

#include <outbox/sink.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * rd_kafka_new, watched
 * ------------------------------------------------------------------------- */

static rd_kafka_t *last_producer; /* the last producer anyone created */
static int n_producers;           /* how many were created */

rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size) {
    static rd_kafka_t *(*real)(rd_kafka_type_t, rd_kafka_conf_t *, char *, size_t);
    if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "rd_kafka_new");
    rd_kafka_t *rk = real(type, conf, errstr, errstr_size);
    if (rk != NULL && type == RD_KAFKA_PRODUCER) {
        last_producer = rk;
        n_producers++;
    }
    return rk;
}

/* ----------------------------------------------------------------------------
 * Helpers around tests/sinkhost.h
 * ------------------------------------------------------------------------- */

static sinkhost_t *host_new(void) {
    sinkhost_t *h = sinkhost_new("kafka");
    if (h == NULL) fail_msg("cannot load the kafka plugin (see above)");
    return h;
}

/* No rule of sink.h broken so far (double ack, ack of an event not taken,
 * ack outside open..close, flush returning early, ...). */
static void assert_no_violations(sinkhost_t *h) {
    for (int r = 0; r < SINKHOST_N_RULES; r++) {
        char first[512];
        if (sinkhost_violations(h, (sinkhost_rule_t)r, first, sizeof first) > 0)
            fail_msg("sink.h broken: %s", first);
    }
}

static void host_free(sinkhost_t *h) {
    assert_no_violations(h);
    sinkhost_free(h);
}

/* The latest ack of seq (failing when there is none). */
static sinkhost_ack_t ack_of(sinkhost_t *h, uint64_t seq) {
    sinkhost_ack_t a;
    if (!sinkhost_ack_of(h, seq, &a)) fail_msg("event %llu not acked", (unsigned long long)seq);
    return a;
}

static void assert_acked(sinkhost_t *h, uint64_t seq, outbox_sink_status_t status) {
    sinkhost_ack_t a = ack_of(h, seq);
    if (a.status != status)
        fail_msg("event %llu acked %d (%s), not %d", (unsigned long long)seq, (int)a.status, a.error,
                 (int)status);
}

static bool log_has(sinkhost_t *h, const char *text) { return strstr(sinkhost_log(h), text) != NULL; }

/* How many times text is in the log. */
static int log_count(sinkhost_t *h, const char *text) {
    int n = 0;
    for (const char *p = sinkhost_log(h); (p = strstr(p, text)) != NULL; p += strlen(text)) n++;
    return n;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_acks(sinkhost_t *h, size_t n, int timeout_ms) {
    if (!sinkhost_wait_acks(h, n, timeout_ms))
        fail_msg("%zu acks after %d ms, expected %zu", sinkhost_n_acks(h), timeout_ms, n);
}

/* ----------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------- */

typedef struct {
    char id[25];
    char payload[64];
    outbox_sink_event_t ev;
} event_buf_t;

/* Event seq: id ...seq, payload {"n":seq}, key "k", type "t". */
static void make_event(event_buf_t *b, uint64_t seq, const char *topic, const char *key) {
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%024llx", (unsigned long long)seq);
    snprintf(b->payload, sizeof b->payload, "{\"n\":%llu}", (unsigned long long)seq);
    b->ev.seq = seq;
    b->ev.id = b->id;
    b->ev.type = "t";
    b->ev.key = key;
    b->ev.destination = topic;
    b->ev.payload = (const unsigned char *)b->payload;
    b->ev.payload_len = strlen(b->payload);
    b->ev.created_ms = 1795718725000 + (int64_t)seq;
}

/* Opens an instance with h's options; bootstrap.servers is the test
 * broker's unless set already. */
static void open_ok(sinkhost_t *h) {
    char errbuf[1024] = "";
    if (sinkhost_host(h) == NULL || sinkhost_plugin(h) == NULL) fail_msg("no host");
    int rc = sinkhost_open(h, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open: %d %s", rc, errbuf);
    assert_non_null(sinkhost_state(h));
}

static sinkhost_t *host_on_broker(void) {
    sinkhost_t *h = host_new();
    sinkhost_set(h, "bootstrap.servers", kt_brokers());
    return h;
}

/* Publishes the n events; all must be taken. */
static void publish_ok(sinkhost_t *h, const outbox_sink_event_t *events, size_t n) {
    char errbuf[1024] = "";
    size_t taken = 0;
    int rc = sinkhost_publish(h, events, n, &taken, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
    if (taken != n) fail_msg("publish took %zu of %zu", taken, n);
}

/* Offers the n events as outboxd does until all are taken: what
 * publish_some did not take is offered again after a poll. */
static void publish_all(sinkhost_t *h, const outbox_sink_event_t *events, size_t n) {
    char errbuf[1024] = "";
    size_t next = 0, taken;
    int64_t until = now_ms() + 20000;
    while (next < n && now_ms() < until) {
        int rc = sinkhost_publish(h, events + next, n - next, &taken, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
        next += taken;
        if (next < n) sinkhost_poll(h, 100, errbuf, sizeof errbuf);
    }
    if (next < n) fail_msg("only %zu of %zu events taken within 20 s", next, n);
}

static void flush_ok(sinkhost_t *h) {
    char errbuf[1024] = "";
    int rc = sinkhost_flush(h, 20000, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("flush: %d %s", rc, errbuf);
}

/* ----------------------------------------------------------------------------
 * The plugin's figures (stats)
 * ------------------------------------------------------------------------- */

typedef struct {
    char names[16][65];
    double values[16];
    outbox_sink_stat_kind_t kinds[16];
    int n;
} figures_t;

static void collect(void *ctx, const char *name, outbox_sink_stat_kind_t kind, double value, const char *help) {
    figures_t *f = ctx;
    assert_true(f->n < 16);
    assert_non_null(help);
    assert_true(strlen(name) <= 64);
    for (const char *p = name; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) fail_msg("figure %s reported twice", name);
    snprintf(f->names[f->n], sizeof f->names[f->n], "%s", name);
    f->values[f->n] = value;
    f->kinds[f->n] = kind;
    f->n++;
}

static figures_t stats_of(sinkhost_t *h) {
    figures_t f = {.n = 0};
    sinkhost_plugin(h)->stats(sinkhost_state(h), collect, &f);
    return f;
}

static double figure(const figures_t *f, const char *name, outbox_sink_stat_kind_t kind) {
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->names[i], name) != 0) continue;
        assert_int_equal(f->kinds[i], kind);
        return f->values[i];
    }
    fail_msg("no figure %s", name);
    return -1;
}

/* ----------------------------------------------------------------------------
 * Tests without a broker
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    sinkhost_t *h = host_new();
    const outbox_sink_plugin_t *plugin = sinkhost_plugin(h);
    assert_true(plugin->struct_size >= OUTBOX_SINK_PLUGIN_SIZE_1_1);
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_int_equal(plugin->abi_minor, OUTBOX_SINK_ABI_MINOR);
    assert_string_equal(plugin->name, "kafka");
    assert_non_null(plugin->check);
    assert_non_null(plugin->open);
    assert_non_null(plugin->publish_some);
    assert_null(plugin->publish); /* publish_some says how much it took */
    assert_non_null(plugin->poll);
    assert_non_null(plugin->flush);
    assert_non_null(plugin->close);
    assert_non_null(plugin->stats);
    assert_int_equal(plugin->payloads, OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON);

    /* The sink's own options are typed; librdkafka's secrets are SECRET
     * (so KEY_file works and outboxd scrubs them); any other key goes to
     * librdkafka. */
    static const struct {
        const char *key;
        outbox_sink_option_type_t type;
    } want[] = {
        {"bootstrap.servers", OUTBOX_SINK_OPT_STRING},    {"null_key", OUTBOX_SINK_OPT_ENUM},
        {"open_timeout_ms", OUTBOX_SINK_OPT_DURATION},    {"flush_timeout_ms", OUTBOX_SINK_OPT_DURATION},
        {"sasl.password", OUTBOX_SINK_OPT_SECRET},        {"ssl.key.password", OUTBOX_SINK_OPT_SECRET},
        {"ssl.key.pem", OUTBOX_SINK_OPT_SECRET},          {"ssl.keystore.password", OUTBOX_SINK_OPT_SECRET},
        {"sasl.oauthbearer.config", OUTBOX_SINK_OPT_SECRET},
        {"sasl.oauthbearer.client.secret", OUTBOX_SINK_OPT_SECRET},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const outbox_sink_option_t *o = plugin->options;
        while (o->key != NULL && strcmp(o->key, want[i].key) != 0) o++;
        if (o->key == NULL) fail_msg("option %s is not in the table", want[i].key);
        assert_int_equal(o->type, want[i].type);
    }
    assert_true(plugin->options[0].required);
    const outbox_sink_option_t *o = plugin->options;
    while (o->key != NULL && strcmp(o->key, "*") != 0) o++;
    assert_non_null(o->key);
    assert_null(o[1].key);
    host_free(h);
}

/* A TCP listener on loopback that must never see a connection: check
 * points bootstrap.servers at it. */
static int listener(int *port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* `outboxd --check` runs the plugin's check: an unknown librdkafka
 * property, a value librdkafka refuses, a property the sink refuses and
 * the sink's own bad options are refused there, offline, each message
 * naming the option's line and key; a good configuration passes. check
 * creates no producer and opens no connection (a listener given as
 * bootstrap.servers sees none). */
static void test_check_refuses_bad_options_offline(void **state) {
    static const struct {
        const char *key, *value, *expect;
    } bad[] = {
        {"sasl.mechanism", "NO-SUCH-MECH", "sasl.mechanism: "}, /* an alias: librdkafka knows it */
        {"no.such.property", "1", "no.such.property: No such configuration property"},
        {"linger.ms", "soon", "linger.ms: "},
        {"compression.type", "zip", "compression.type: "},
        {"security.protocol", "TLS", "security.protocol: "},
        {"delivery.report.only.error", "true", "delivery.report.only.error: not allowed"},
        {"transactional.id", "x", "transactional.id: not allowed"},
        {"dr_msg_cb", "x", "dr_msg_cb: "},
        {"null_key", "maybe", "null_key"},
        {"open_timeout_ms", "-1", "open_timeout_ms"},
        {"flush_timeout_ms", "lots", "flush_timeout_ms"},
    };
    int port, fd = listener(&port);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    int producers = n_producers;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sinkhost_t *h = host_new();
        char errbuf[1024] = "";
        sinkhost_set(h, "bootstrap.servers", servers);
        sinkhost_set(h, "linger.ms", "10"); /* line 2 */
        sinkhost_set(h, bad[i].key, bad[i].value);
        int rc = sinkhost_check(h, errbuf, sizeof errbuf);
        print_message("# %s=%s: %s\n", bad[i].key, bad[i].value, errbuf);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s=%s: check gave %d, not FATAL (%s)", bad[i].key, bad[i].value, rc, errbuf);
        if (strstr(errbuf, bad[i].expect) == NULL)
            fail_msg("%s=%s: the message does not say \"%s\": %s", bad[i].key, bad[i].value, bad[i].expect,
                     errbuf);
        /* The line of the option at fault: linger.ms is on line 2 even
         * when set again, the others are on line 3. */
        const char *line = strcmp(bad[i].key, "linger.ms") == 0 ? "sinkhost:2:" : "sinkhost:3:";
        if (strncmp(errbuf, line, strlen(line)) != 0) fail_msg("not at %s: %s", line, errbuf);
        host_free(h);
    }

    /* A good configuration passes, librdkafka properties and all. */
    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sinkhost_set(h, "bootstrap.servers", servers);
    sinkhost_set(h, "compression.type", "zstd");
    sinkhost_set(h, "security.protocol", "SASL_PLAINTEXT");
    sinkhost_set(h, "sasl.mechanisms", "PLAIN");
    sinkhost_set(h, "sasl.password", "not-a-real-one");
    sinkhost_set(h, "open_timeout_ms", "2s");
    if (sinkhost_check(h, errbuf, sizeof errbuf) != OUTBOX_SINK_OK) fail_msg("check refused: %s", errbuf);
    host_free(h);

    assert_int_equal(n_producers, producers); /* check made no producer */
    assert_true(accept(fd, NULL, NULL) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    close(fd);
}

/* Contradicting properties (acks=1 with idempotence on) are only found by
 * rd_kafka_new, which check never calls: open refuses them, FATAL, naming
 * the property. */
static void test_open_refuses_contradicting_properties(void **state) {
    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "acks", "1");
    assert_int_equal(sinkhost_check(h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(sinkhost_open(h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# acks=1: %s\n", errbuf);
    assert_non_null(strstr(errbuf, "acks"));
    assert_null(sinkhost_state(h));
    host_free(h);
}

/* Writes text into DIR/name (mode 0600); returns the path (caller frees). */
static char *write_secret_file(const char *dir, const char *name, const char *text) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(path);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", text);
    fclose(f);
    chmod(path, 0600);
    return path;
}

/* Secrets never show, in check's or open's message or in any log line,
 * even with librdkafka's configuration debugging on; a secret property
 * may come from a file (KEY_file: PATH, read by the host). */
static void test_secrets_are_never_shown(void **state) {
    const char *secret = "s3cr3t-Pa55";
    char dir[] = "/tmp/outbox-kafka-secret-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *file = write_secret_file(dir, "password", secret);

    /* A secret librdkafka cannot use: its message does not quote it. */
    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "security.protocol", "SSL");
    sinkhost_set(h, "ssl.key.pem", secret);
    sinkhost_set(h, "ssl.key.password_file", file);
    assert_int_equal(sinkhost_check(h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(sinkhost_open(h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "ssl.key.pem"));
    assert_null(strstr(errbuf, secret));
    assert_false(log_has(h, secret));
    host_free(h);

    /* A working producer with the password from a file and every
     * configuration line logged: none of them shows it. */
    h = host_new();
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "security.protocol", "SASL_PLAINTEXT");
    sinkhost_set(h, "sasl.mechanisms", "PLAIN");
    sinkhost_set(h, "sasl.username", "outbox");
    sinkhost_set(h, "sasl.password_file", file);
    sinkhost_set(h, "debug", "conf,security");
    assert_int_equal(sinkhost_check(h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    open_ok(h);
    /* The file's content, not its path, reached librdkafka. */
    char value[64];
    size_t len = sizeof value;
    assert_int_equal(rd_kafka_conf_get(rd_kafka_conf(last_producer), "sasl.password", value, &len),
                     RD_KAFKA_CONF_OK);
    assert_string_equal(value, secret);
    sinkhost_poll(h, 200, errbuf, sizeof errbuf);
    sinkhost_close(h);
    assert_true(log_has(h, "sasl.password"));
    assert_false(log_has(h, secret));
    host_free(h);

    /* A missing file: refused by the table, naming the option, not open. */
    h = host_new();
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "sasl.password_file", "/nonexistent/outbox-kafka-password");
    assert_int_equal(sinkhost_check(h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "sasl.password"));
    host_free(h);

    unlink(file);
    free(file);
    rmdir(dir);
}

/* An unreachable cluster at open: RETRY after open_timeout_ms, saying so;
 * with open_timeout_ms 0 open succeeds and the deliveries time out into
 * RETRY acks instead. */
static void test_unreachable_broker_at_open(void **state) {
    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "1s");
    int64_t start = now_ms();
    assert_int_equal(sinkhost_open(h, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    int64_t took = now_ms() - start;
    print_message("# open against 127.0.0.1:1: RETRY after %lld ms: %s\n", (long long)took, errbuf);
    assert_null(sinkhost_state(h));
    assert_non_null(strstr(errbuf, "127.0.0.1:1"));
    assert_non_null(strstr(errbuf, "1000 ms"));
    host_free(h);

    h = host_new();
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "message.timeout.ms", "1500");
    open_ok(h);
    event_buf_t ev[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&ev[i], (uint64_t)i + 1, "outbox-test-unreachable", "k");
        events[i] = ev[i].ev;
    }
    publish_ok(h, events, 3);
    wait_acks(h, 3, 10000);
    for (uint64_t seq = 1; seq <= 3; seq++) assert_acked(h, seq, OUTBOX_SINK_RETRY);
    assert_true(log_has(h, "failed for now"));
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_delivery_retries_total", OUTBOX_SINK_STAT_COUNTER) == 3);
    assert_true(figure(&f, "kafka_in_flight", OUTBOX_SINK_STAT_GAUGE) == 0);
    flush_ok(h); /* nothing in flight any more */
    sinkhost_close(h);
    host_free(h);
}

/* sink.h's bound on close (and here on flush too): only a hang exceeds it. */
#define CLOSE_BOUND_MS 10000

/* flush is bounded and says what is left; close is bounded by
 * flush_timeout_ms and drops the rest (RETRY acks). */
static void test_flush_and_close_are_bounded(void **state) {
    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "flush_timeout_ms", "700ms");
    open_ok(h);
    event_buf_t b[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&b[i], (uint64_t)i + 1, "outbox-test-bounded", "k");
        events[i] = b[i].ev;
    }
    publish_ok(h, events, 3);
    int64_t start = now_ms();
    assert_int_equal(sinkhost_flush(h, 300, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    int64_t took = now_ms() - start;
    print_message("# flush: RETRY after %lld ms: %s\n", (long long)took, errbuf);
    assert_true(took < CLOSE_BOUND_MS);
    assert_non_null(strstr(errbuf, "3 events not delivered"));
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_in_flight", OUTBOX_SINK_STAT_GAUGE) == 3);
    assert_true(figure(&f, "kafka_outq", OUTBOX_SINK_STAT_GAUGE) >= 3);

    /* A flush that timed out already: close does not wait again. */
    start = now_ms();
    sinkhost_close(h);
    took = now_ms() - start;
    print_message("# close after a timed-out flush: %lld ms\n", (long long)took);
    assert_true(took < CLOSE_BOUND_MS);
    host_free(h);

    /* Without a flush first: close waits flush_timeout_ms at most, and
     * the acks it gives are RETRY (or none: outboxd treats unacked events
     * as not delivered). */
    h = host_new();
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "flush_timeout_ms", "700");
    open_ok(h);
    publish_ok(h, events, 3);
    start = now_ms();
    sinkhost_close(h);
    took = now_ms() - start;
    print_message("# close with 3 undeliverable events, flush_timeout_ms=700: %lld ms\n", (long long)took);
    assert_true(took < CLOSE_BOUND_MS);
    assert_true(log_has(h, "closing with 3 events not delivered"));
    for (size_t i = 0; i < sinkhost_n_acks(h); i++) {
        sinkhost_ack_t a;
        assert_true(sinkhost_ack_at(h, i, &a));
        assert_int_equal(a.status, OUTBOX_SINK_RETRY);
    }
    host_free(h);
}

/* A route that expands to an illegal topic (from the event's key: '/',
 * ' ', a newline, too long, "..") is acked FATAL at once, without a broker
 * round trip, with a message naming the type, the topic (escaped: no raw
 * newline reaches a log line) and what is wrong with it. */
static void test_illegal_topic_names_are_fatal_with_the_reason(void **state) {
    char long_topic[251];
    memset(long_topic, 'a', 250);
    long_topic[250] = '\0';
    static const struct {
        const char *topic, *expect;
    } bad[] = {
        {"orders.eu/1", "has '/' at byte 10"},
        {"orders.eu 1", "has a space at byte 10"},
        {"orders.a\nFAKE LOG LINE", "has byte 0x0a at byte 9"},
        {"..", "is only dots"},
        {NULL, "is 250 bytes long, over Kafka's 249"},
    };
    sinkhost_t *h = host_new();
    /* No broker: the check comes before librdkafka is involved. */
    sinkhost_set(h, "bootstrap.servers", "127.0.0.1:1");
    sinkhost_set(h, "open_timeout_ms", "0");
    sinkhost_set(h, "flush_timeout_ms", "0");
    open_ok(h);
    size_t n = sizeof bad / sizeof bad[0];
    event_buf_t b[5];
    outbox_sink_event_t events[5];
    for (size_t i = 0; i < n; i++) {
        make_event(&b[i], i + 1, bad[i].topic ? bad[i].topic : long_topic, "k");
        b[i].ev.type = "order.created";
        events[i] = b[i].ev;
    }
    publish_ok(h, events, n);
    for (size_t i = 0; i < n; i++) {
        sinkhost_ack_t a = ack_of(h, i + 1);
        print_message("# %s\n", a.error);
        assert_int_equal(a.status, OUTBOX_SINK_FATAL);
        if (strstr(a.error, bad[i].expect) == NULL) fail_msg("no \"%s\" in: %s", bad[i].expect, a.error);
        assert_non_null(strstr(a.error, "\"order.created\""));
        assert_non_null(strstr(a.error, "not a valid Kafka topic name"));
        assert_null(strchr(a.error, '\n'));
    }
    assert_non_null(strstr(ack_of(h, 1).error, "\"orders.eu/1\""));
    assert_non_null(strstr(ack_of(h, 3).error, "orders.a\\x0aFAKE LOG LINE"));
    /* Legal at 249 bytes. */
    long_topic[249] = '\0';
    size_t acks = sinkhost_n_acks(h);
    make_event(&b[0], 10, long_topic, "k");
    publish_ok(h, &b[0].ev, 1);
    assert_int_equal(sinkhost_n_acks(h), acks); /* handed to librdkafka, not refused */
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_delivery_failures_total", OUTBOX_SINK_STAT_COUNTER) == (double)n);
    sinkhost_close(h);
    host_free(h);
}

/* ----------------------------------------------------------------------------
 * Tests against the broker
 * ------------------------------------------------------------------------- */

/* Topic, key, headers and payload as README.md says; acks OK once the
 * broker has the message; stats count them. */
static void test_messages_keys_and_headers(void **state) {
    char *topic = kt_topic_name("format");
    kt_create_topic(topic, 3, NULL);

    sinkhost_t *h = host_on_broker();
    open_ok(h);
    static const outbox_sink_header_t headers[] = {{"traceparent", "00-4bf9-01"}, {"x-tenant", "acme"}};
    static const unsigned char bson_like[] = {0x10, 0x00, 0x00, 0x00, 0x10, 'n', 0x00, 0x05,
                                              0x00, 0x00, 0x00, 0x00, 0xff, 0x7f, 0x01, 0x00};
    outbox_sink_event_t events[4] = {
        {.seq = 1, .id = "5f0c6b7e8a9d4e3f2a1b0c01", .type = "order.created", .key = "ord-1",
         .destination = topic, .payload = (const unsigned char *)"{\"n\":1}", .payload_len = 7,
         .created_ms = 1795718725123, .headers = headers, .n_headers = 2},
        {.seq = 2, .id = "5f0c6b7e8a9d4e3f2a1b0c02", .type = "order.created", .key = NULL,
         .destination = topic, .payload = (const unsigned char *)"{\"n\":2}", .payload_len = 7,
         .created_ms = 1795718725124},
        {.seq = 3, .id = "5f0c6b7e8a9d4e3f2a1b0c03", .type = "order.shipped", .key = "ord-1",
         .destination = topic, .payload = bson_like, .payload_len = sizeof bson_like,
         .created_ms = -1},
        {.seq = 4, .id = "5f0c6b7e8a9d4e3f2a1b0c04", .type = "order.created", .key = "ord-1",
         .destination = topic, .payload = (const unsigned char *)"{\"n\":4}", .payload_len = 7,
         .created_ms = 1795718725125},
    };
    publish_ok(h, events, 4);
    flush_ok(h);
    for (uint64_t seq = 1; seq <= 4; seq++) assert_acked(h, seq, OUTBOX_SINK_OK);
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_delivered_total", OUTBOX_SINK_STAT_COUNTER) == 4);
    assert_true(figure(&f, "kafka_in_flight", OUTBOX_SINK_STAT_GAUGE) == 0);
    assert_true(figure(&f, "kafka_delivery_retries_total", OUTBOX_SINK_STAT_COUNTER) == 0);
    assert_true(figure(&f, "kafka_delivery_failures_total", OUTBOX_SINK_STAT_COUNTER) == 0);
    assert_true(figure(&f, "kafka_fatal_errors_total", OUTBOX_SINK_STAT_COUNTER) == 0);
    sinkhost_close(h);

    /* null_key: none sends a null key. */
    sinkhost_t *h2 = host_on_broker();
    sinkhost_set(h2, "null_key", "none");
    open_ok(h2);
    outbox_sink_event_t ev5 = events[1];
    ev5.seq = 5;
    ev5.id = "5f0c6b7e8a9d4e3f2a1b0c05";
    publish_ok(h2, &ev5, 1);
    flush_ok(h2);
    assert_acked(h2, 5, OUTBOX_SINK_OK);
    sinkhost_close(h2);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 5);
    int seen[6] = {0};
    int32_t ord1_partition = -1;
    int64_t last_ord1_offset = -1;
    for (size_t i = 0; i < n; i++) {
        const char *id = kt_header(&r[i], "outbox-id");
        assert_non_null(id);
        int which = (int)strtol(id + 22, NULL, 16);
        assert_in_range(which, 1, 5);
        seen[which]++;
        const outbox_sink_event_t *e = which == 5 ? &ev5 : &events[which - 1];
        assert_string_equal(id, e->id);
        assert_string_equal(kt_header(&r[i], "outbox-type"), e->type);
        assert_int_equal(r[i].value_len, e->payload_len);
        assert_memory_equal(r[i].value, e->payload, e->payload_len);
        if (which == 1) {
            assert_string_equal(kt_header(&r[i], "outbox-created"), "2026-11-26T18:45:25.123Z");
            assert_string_equal(kt_header(&r[i], "traceparent"), "00-4bf9-01");
            assert_string_equal(kt_header(&r[i], "x-tenant"), "acme");
            assert_int_equal(r[i].n_headers, 5);
        } else {
            assert_int_equal(r[i].n_headers, 3);
        }
        if (which == 3) assert_string_equal(kt_header(&r[i], "outbox-created"), "1969-12-31T23:59:59.999Z");
        if (which == 2) assert_string_equal(r[i].key, "order.created"); /* null_key: type */
        if (which == 5) assert_null(r[i].key);
        if (which == 1 || which == 3 || which == 4) {
            /* One key, one partition, in publish order. */
            assert_string_equal(r[i].key, "ord-1");
            if (ord1_partition < 0) ord1_partition = r[i].partition;
            assert_int_equal(r[i].partition, ord1_partition);
            assert_true(r[i].offset > last_ord1_offset);
            last_ord1_offset = r[i].offset;
        }
    }
    for (int i = 1; i <= 5; i++) assert_int_equal(seen[i], 1);
    kt_records_free(r, n);
    host_free(h);
    host_free(h2);
    kt_delete_topic(topic);
    free(topic);
}

/* What can never be delivered is a FATAL ack naming the reason, and the
 * rest of the batch goes on. */
static void test_permanent_failures_are_fatal_acks(void **state) {
    kt_brokers();
    char *topic = kt_topic_name("fatal");
    char *small_topic = kt_topic_name("small");
    kt_create_topic(topic, 1, NULL);
    /* A topic whose own limit is below the producer's message.max.bytes:
     * the broker refuses the message. */
    kt_create_topic(small_topic, 1, "1000");

    sinkhost_t *h = host_on_broker();
    sinkhost_set(h, "message.max.bytes", "2000");
    open_ok(h);
    char big[3000];
    memset(big, 'x', sizeof big);
    event_buf_t b[4];
    make_event(&b[0], 1, topic, "k");
    make_event(&b[1], 2, topic, "k");
    b[1].ev.payload = (const unsigned char *)big;
    b[1].ev.payload_len = sizeof big; /* over message.max.bytes: refused by librdkafka */
    make_event(&b[2], 3, "bad topic!", "k");
    make_event(&b[3], 4, topic, "k");
    outbox_sink_event_t events[4];
    for (int i = 0; i < 4; i++) events[i] = b[i].ev;
    publish_ok(h, events, 4);
    /* The refusals are acked at once, within publish. */
    assert_acked(h, 2, OUTBOX_SINK_FATAL);
    assert_acked(h, 3, OUTBOX_SINK_FATAL);
    flush_ok(h);
    assert_acked(h, 1, OUTBOX_SINK_OK);
    assert_acked(h, 4, OUTBOX_SINK_OK);
    print_message("# too large: %s\n", ack_of(h, 2).error);
    print_message("# bad topic: %s\n", ack_of(h, 3).error);
    assert_non_null(strstr(ack_of(h, 2).error, "message.max.bytes=2000"));
    assert_non_null(strstr(ack_of(h, 3).error, "bad topic!"));

    /* Over the topic's max.message.bytes: the broker refuses the whole
     * batch, innocent neighbours included. Those come back RETRY; sent
     * again (as outboxd does) they go one at a time, and only the culprit
     * is acked FATAL. */
    sinkhost_close(h);
    sinkhost_set(h, "linger.ms", "200"); /* one batch for the three */
    open_ok(h);
    char mid[1500];
    memset(mid, 'y', sizeof mid);
    event_buf_t c[3];
    outbox_sink_event_t three[3];
    for (int i = 0; i < 3; i++) {
        make_event(&c[i], 6 + (uint64_t)i, small_topic, "k");
        three[i] = c[i].ev;
    }
    three[1].payload = (const unsigned char *)mid;
    three[1].payload_len = sizeof mid;
    publish_ok(h, three, 3);
    flush_ok(h);
    for (uint64_t seq = 6; seq <= 8; seq++) assert_acked(h, seq, OUTBOX_SINK_RETRY);
    assert_true(log_has(h, "the broker refused a batch"));
    /* One at a time: publish takes a suspect only when nothing else is in
     * flight, and nothing more until its report, never waiting itself. */
    char errbuf[1024];
    size_t taken = 0;
    assert_int_equal(sinkhost_publish(h, three, 3, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(taken, 1);
    publish_all(h, three + 1, 2);
    flush_ok(h);
    assert_acked(h, 6, OUTBOX_SINK_OK);
    assert_acked(h, 7, OUTBOX_SINK_FATAL);
    assert_acked(h, 8, OUTBOX_SINK_OK);
    print_message("# over the topic's limit: %s\n", ack_of(h, 7).error);
    assert_non_null(strstr(ack_of(h, 7).error, "MSG_SIZE_TOO_LARGE"));
    sinkhost_close(h);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].value, "{\"n\":1}");
    assert_string_equal(r[1].value, "{\"n\":4}");
    kt_records_free(r, n);
    n = kt_consume(small_topic, &r, 30000);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].value, "{\"n\":6}");
    assert_string_equal(r[1].value, "{\"n\":8}");
    kt_records_free(r, n);
    host_free(h);
    kt_delete_topic(topic);
    kt_delete_topic(small_topic);
    free(topic);
    free(small_topic);
}

/* librdkafka's queue full: publish_some takes what fits (OK, *taken short)
 * and outboxd offers the rest again after a poll; every event is in Kafka
 * once, acked once, in order. */
static void test_queue_full_takes_what_fits(void **state) {
    kt_brokers();
    char *topic = kt_topic_name("queue");
    kt_create_topic(topic, 1, NULL);
    sinkhost_t *h = host_on_broker();
    sinkhost_set(h, "queue.buffering.max.messages", "5");
    sinkhost_set(h, "linger.ms", "1000"); /* keeps the first five queued a while */
    open_ok(h);
    event_buf_t b[8];
    outbox_sink_event_t events[8];
    for (int i = 0; i < 8; i++) {
        make_event(&b[i], (uint64_t)i + 1, topic, "k");
        events[i] = b[i].ev;
    }
    char errbuf[1024] = "";
    size_t taken = 99;
    assert_int_equal(sinkhost_publish(h, events, 8, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(taken, 5);
    assert_int_equal(sinkhost_n_acks(h), 0);
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_queue_full_total", OUTBOX_SINK_STAT_COUNTER) == 1);
    assert_true(figure(&f, "kafka_in_flight", OUTBOX_SINK_STAT_GAUGE) == 5);
    /* outboxd offers the rest again, as often as it takes. */
    publish_all(h, events + 5, 3);
    flush_ok(h);
    assert_int_equal(sinkhost_n_acks(h), 8);
    for (uint64_t seq = 1; seq <= 8; seq++) {
        assert_acked(h, seq, OUTBOX_SINK_OK);
        assert_int_equal(sinkhost_acks_for(h, seq), 1);
    }
    sinkhost_close(h);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%zu}", i + 1);
        assert_string_equal(r[i].value, want);
    }
    kt_records_free(r, n);
    host_free(h);
    kt_delete_topic(topic);
    free(topic);
}

/* A fatal producer error: publish returns FATAL (outboxd then closes and
 * opens the sink again), and a new producer delivers. */
static void test_fatal_producer_error_recreates_the_producer(void **state) {
    kt_brokers();
    char *topic = kt_topic_name("fatalerr");
    kt_create_topic(topic, 1, NULL);
    sinkhost_t *h = host_on_broker();
    open_ok(h);
    event_buf_t b[4];
    for (int i = 0; i < 4; i++) make_event(&b[i], (uint64_t)i + 1, topic, "k");
    publish_ok(h, &b[0].ev, 1);
    flush_ok(h);
    assert_acked(h, 1, OUTBOX_SINK_OK);

    /* Two events still queued (linger.ms) when the error strikes: they
     * come back as RETRY acks, so outboxd publishes them again. */
    sinkhost_close(h);
    sinkhost_set(h, "linger.ms", "30000");
    open_ok(h);
    rd_kafka_t *rk = last_producer;
    publish_ok(h, &b[1].ev, 1);
    publish_ok(h, &b[2].ev, 1);
    assert_int_equal(rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by test_kafka_sink"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    char errbuf[1024] = "";
    wait_acks(h, 3, 10000);
    assert_acked(h, 2, OUTBOX_SINK_RETRY);
    assert_acked(h, 3, OUTBOX_SINK_RETRY);
    size_t taken = 99;
    assert_int_equal(sinkhost_publish(h, &b[1].ev, 1, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_int_equal(taken, 0);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "fatal producer error"));
    assert_non_null(strstr(errbuf, "injected by test_kafka_sink"));
    assert_true(log_has(h, "the producer is recreated"));
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_fatal_errors_total", OUTBOX_SINK_STAT_COUNTER) == 1);
    sinkhost_close(h);

    /* What outboxd does next: open again, publish the unacked events. */
    sinkhost_set(h, "linger.ms", "5");
    open_ok(h);
    publish_ok(h, &b[1].ev, 1);
    publish_ok(h, &b[2].ev, 1);
    flush_ok(h);
    assert_acked(h, 2, OUTBOX_SINK_OK);
    assert_acked(h, 3, OUTBOX_SINK_OK);
    sinkhost_close(h);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 3);
    kt_records_free(r, n);
    host_free(h);
    kt_delete_topic(topic);
    free(topic);
}

/* The plugin alone, driven as outboxd drives it (batches of 500, poll
 * between them), to tell its own speed from outboxd's. */
static void test_throughput(void **state) {
    int total = test_scaled(50000);
    kt_brokers();
    char *topic = kt_topic_name("speed");
    kt_create_topic(topic, 6, NULL);
    sinkhost_t *h = host_on_broker();
    sinkhost_quiet(h, true);
    open_ok(h);
    outbox_sink_event_t *events = calloc((size_t)total, sizeof *events);
    char (*ids)[25] = calloc((size_t)total, sizeof *ids);
    char (*keys)[16] = calloc((size_t)total, sizeof *keys);
    static const char payload[] = "{ \"ordernr\" : 12345, \"total\" : 10.5, \"customer\" : \"somebody\" }";
    assert_non_null(events);
    for (int i = 0; i < total; i++) {
        snprintf(ids[i], sizeof ids[i], "%024x", i);
        snprintf(keys[i], sizeof keys[i], "key-%02d", i % 20);
        events[i] = (outbox_sink_event_t){.seq = (uint64_t)i, .id = ids[i], .type = "order.created",
                                          .key = keys[i], .destination = topic,
                                          .payload = (const unsigned char *)payload,
                                          .payload_len = sizeof payload - 1, .created_ms = 1795718725000};
    }
    char errbuf[1024];
    int64_t start = now_ms();
    for (int i = 0; i < total;) {
        size_t n = (size_t)(total - i < 500 ? total - i : 500), taken = 0;
        int rc = sinkhost_publish(h, events + i, n, &taken, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
        i += (int)taken;
        sinkhost_poll(h, 0, errbuf, sizeof errbuf);
    }
    flush_ok(h);
    int64_t took = now_ms() - start;
    assert_int_equal(sinkhost_n_acks(h), (size_t)total);
    figures_t f = stats_of(h);
    assert_true(figure(&f, "kafka_delivered_total", OUTBOX_SINK_STAT_COUNTER) == total);
    print_message("# the plugin alone: %d events acked in %lld ms (%.0f events/s)\n", total, (long long)took,
                  total * 1000.0 / (double)(took > 0 ? took : 1));
    sinkhost_close(h);
    free(events);
    free(ids);
    free(keys);
    host_free(h);
    kt_delete_topic(topic);
    free(topic);
}

/* ----------------------------------------------------------------------------
 * TLS and authentication: the broker's SASL_SSL listener
 * ------------------------------------------------------------------------- */

/* librdkafka from 2.6.1 on can use SCRAM with Kafka 4.x (see kafka.c,
 * scram_hint); before it only PLAIN authenticates to the test broker. */
static bool scram_works(void) { return rd_kafka_version() >= 0x020601ff; }

/* The harness's SASL_SSL listener and test CA (copied: test_service's
 * buffers are reused). */
typedef struct {
    char brokers[256], user[64], password[128], ca[512], other_ca[512];
} sasl_t;

static void sasl_get(sasl_t *a) {
    kt_brokers(); /* skips without a broker; takes the Kafka test lock */
    const char *v[4] = {test_service("OUTBOX_TEST_KAFKA_SASL_BROKERS"), NULL, NULL, NULL};
    v[1] = v[0] ? test_service("OUTBOX_TEST_KAFKA_SASL_USER") : NULL;
    if (v[0] == NULL || v[1] == NULL) {
        if (getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
            fail_msg("no SASL_SSL listener on the test broker, and OUTBOX_TEST_REQUIRE_SERVERS is set");
        TEST_SKIP("the test broker has no SASL_SSL listener (OUTBOX_TEST_KAFKA_SASL_BROKERS): a broker "
                  "started by an older services.sh gets it with services.sh stop-kafka; start-kafka");
    }
    snprintf(a->brokers, sizeof a->brokers, "%s", v[0]);
    snprintf(a->user, sizeof a->user, "%s", v[1]);
    v[2] = test_service("OUTBOX_TEST_KAFKA_SASL_PASSWORD");
    v[3] = test_service("OUTBOX_TEST_TLS_DIR");
    assert_non_null(v[2]);
    assert_non_null(v[3]);
    snprintf(a->password, sizeof a->password, "%s", v[2]);
    snprintf(a->ca, sizeof a->ca, "%s/ca.pem", v[3]);
    snprintf(a->other_ca, sizeof a->other_ca, "%s/other-ca.pem", v[3]);
}

/* Sets h up for the SASL_SSL listener with mechanism and CA; the password
 * is set by the caller (sasl.password or sasl.password_file). */
static void sasl_options(sinkhost_t *h, const sasl_t *a, const char *mechanism, const char *ca) {
    sinkhost_set(h, "bootstrap.servers", a->brokers);
    sinkhost_set(h, "security.protocol", "SASL_SSL");
    sinkhost_set(h, "sasl.mechanisms", mechanism);
    sinkhost_set(h, "sasl.username", a->user);
    sinkhost_set(h, "ssl.ca.location", ca);
    sinkhost_set(h, "open_timeout_ms", "3000");
}

/* Over SASL_SSL with the right password, read from a file
 * (sasl.password_file), the events are delivered, as an independent
 * consumer (kcat, over SASL_SSL too) sees, and the password is in none of
 * the sink's output: not in check's, open's or any log line, with
 * librdkafka's SASL debugging on. SCRAM-SHA-512 where librdkafka can use
 * it with this broker, else PLAIN (test_scram_before_librdkafka_2_6_1...). */
static void test_sasl_ssl_with_the_password_from_a_file_delivers(void **state) {
    sasl_t a;
    sasl_get(&a);
    const char *mechanism = scram_works() ? "SCRAM-SHA-512" : "PLAIN";
    char *topic = kt_topic_name("sasl");
    kt_create_topic(topic, 1, NULL);
    char dir[] = "/tmp/outbox-kafka-sasl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *file = write_secret_file(dir, "password", a.password);

    sinkhost_t *h = host_new();
    char errbuf[1024] = "";
    sasl_options(h, &a, mechanism, a.ca);
    sinkhost_set(h, "sasl.password_file", file);
    sinkhost_set(h, "debug", "security");
    assert_int_equal(sinkhost_check(h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    int rc = sinkhost_open(h, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open over SASL_SSL (%s): %d %s", mechanism, rc, errbuf);
    event_buf_t ev[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&ev[i], (uint64_t)i + 1, topic, "k");
        events[i] = ev[i].ev;
    }
    publish_ok(h, events, 3);
    flush_ok(h);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_acked(h, seq, OUTBOX_SINK_OK);
        assert_null(strstr(ack_of(h, seq).error, a.password));
    }
    sinkhost_close(h);
    assert_true(log_has(h, a.brokers)); /* the start-up line */
    assert_true(log_has(h, "SASL"));    /* the debug lines came */
    assert_false(log_has(h, a.password));
    assert_null(strstr(errbuf, a.password));

    /* kcat is Debian's (librdkafka 2.0.2): PLAIN, see above. */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "kcat -C -b '%s' -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN "
             "-X sasl.username='%s' -X sasl.password='%s' -X ssl.ca.location='%s' "
             "-t '%s' -o beginning -e -q -f '%%s\\n' 2>&1",
             a.brokers, a.user, a.password, a.ca, topic);
    int status = test_run_command(cmd, &out);
    print_message("# SASL_SSL with %s, sasl.password_file: 3 events acked OK; kcat over SASL_SSL read:\n%s",
                  mechanism, out);
    assert_int_equal(status, 0);
    assert_string_equal(out, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    free(out);
    host_free(h);
    unlink(file);
    free(file);
    rmdir(dir);
    kt_delete_topic(topic);
    free(topic);
}

/* A wrong password: open RETRYs (outboxd tries again with backoff) with
 * librdkafka's reason, never shows the password, and logs nothing of its
 * own for the failed connections (one line per attempt, outboxd's). */
static void test_sasl_wrong_password_is_a_clear_retry(void **state) {
    sasl_t a;
    sasl_get(&a);
    const char *mechanism = scram_works() ? "SCRAM-SHA-512" : "PLAIN";
    const char *wrong = "Wrong-Pw-4f1e9b";
    for (int attempt = 1; attempt <= 2; attempt++) {
        sinkhost_t *h = host_new();
        char errbuf[1024];
        sasl_options(h, &a, mechanism, a.ca);
        sinkhost_set(h, "sasl.password", wrong);
        int rc = sinkhost_open(h, errbuf, sizeof errbuf);
        print_message("# wrong password (%s), attempt %d: %d %s\n", mechanism, attempt, rc, errbuf);
        assert_int_equal(rc, OUTBOX_SINK_RETRY);
        assert_null(sinkhost_state(h));
        assert_non_null(strstr(errbuf, a.brokers));
        assert_non_null(strstr(errbuf, "Authentication failed"));
        assert_null(strstr(errbuf, wrong));
        assert_false(log_has(h, wrong));
        assert_int_equal(log_count(h, "Authentication failed"), 0);
        host_free(h);
    }
}

/* A broker certificate that the configured CA did not sign: open RETRYs,
 * saying the certificate could not be verified. */
static void test_sasl_wrong_ca_is_a_clear_retry(void **state) {
    sasl_t a;
    sasl_get(&a);
    sinkhost_t *h = host_new();
    char errbuf[1024];
    sasl_options(h, &a, "PLAIN", a.other_ca);
    sinkhost_set(h, "sasl.password", a.password);
    int rc = sinkhost_open(h, errbuf, sizeof errbuf);
    print_message("# wrong CA: %d %s\n", rc, errbuf);
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_null(sinkhost_state(h));
    assert_non_null(strstr(errbuf, "certificate verify failed"));
    assert_false(log_has(h, a.password));
    assert_null(strstr(errbuf, a.password));
    assert_int_equal(log_count(h, "certificate verify failed"), 0);
    host_free(h);
}

/* With a librdkafka older than 2.6.1, SCRAM and the right password fail
 * against Kafka 4.x as "invalid credentials": open's message says that it
 * is librdkafka's bug and what to do, not only that the password is wrong. */
static void test_scram_before_librdkafka_2_6_1_names_the_cause(void **state) {
    sasl_t a;
    sasl_get(&a);
    if (scram_works())
        TEST_SKIP("librdkafka %s has the SCRAM fix (>= 2.6.1): nothing to explain", rd_kafka_version_str());
    sinkhost_t *h = host_new();
    char errbuf[1024];
    sasl_options(h, &a, "SCRAM-SHA-512", a.ca);
    sinkhost_set(h, "sasl.password", a.password);
    int rc = sinkhost_open(h, errbuf, sizeof errbuf);
    print_message("# SCRAM-SHA-512, right password, librdkafka %s: %d %s\n", rd_kafka_version_str(), rc,
                  errbuf);
    if (rc == OUTBOX_SINK_OK) {
        sinkhost_close(h);
        fail_msg("SCRAM worked with librdkafka %s: scram_works() is wrong", rd_kafka_version_str());
    }
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "older than 2.6.1"));
    assert_non_null(strstr(errbuf, "PR #4895"));
    assert_false(log_has(h, a.password));
    host_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identification),
        cmocka_unit_test(test_check_refuses_bad_options_offline),
        cmocka_unit_test(test_open_refuses_contradicting_properties),
        cmocka_unit_test(test_secrets_are_never_shown),
        cmocka_unit_test(test_unreachable_broker_at_open),
        cmocka_unit_test(test_flush_and_close_are_bounded),
        cmocka_unit_test(test_illegal_topic_names_are_fatal_with_the_reason),
        cmocka_unit_test(test_messages_keys_and_headers),
        cmocka_unit_test(test_permanent_failures_are_fatal_acks),
        cmocka_unit_test(test_queue_full_takes_what_fits),
        cmocka_unit_test(test_fatal_producer_error_recreates_the_producer),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_sasl_ssl_with_the_password_from_a_file_delivers),
        cmocka_unit_test(test_sasl_wrong_password_is_a_clear_retry),
        cmocka_unit_test(test_sasl_wrong_ca_is_a_clear_retry),
        cmocka_unit_test(test_scram_before_librdkafka_2_6_1_names_the_cause),
    };
    return TEST_RUN("kafka sink", tests);
}
