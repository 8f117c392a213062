/*
 * test_kafka_sink.c - drives the built Kafka sink plugin the way outboxd
 * does, without outboxd: dlopen() the module, check the plugin struct, then
 * open/publish/poll/flush/close instances through a test host that records
 * every ack and log line. Option errors need no broker; the rest runs
 * against the harness's real Kafka broker and reads the messages back with
 * an independent librdkafka consumer.
 *
 * The module is $OUTBOX_TEST_BUILDDIR/sinks/kafka/.libs/kafka.so (libtool's
 * layout), or ./sinks/kafka/.libs/kafka.so when the variable is not set.
 *
 * The test defines rd_kafka_new() itself, calling librdkafka's, to get hold
 * of the plugin's producer and raise a fatal error on it
 * (rd_kafka_test_fatal_error). The program is linked with -export-dynamic,
 * so the plugin's call binds to this one ahead of librdkafka's.
 */
#include "kafka_testlib.h"

#include <outbox/sink.h>

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------------------------
 * The plugin, loaded once for the whole group
 * ------------------------------------------------------------------------- */

static void *module;
static const outbox_sink_plugin_t *plugin;

static int load_plugin(void **state) {
    const char *builddir = getenv("OUTBOX_TEST_BUILDDIR");
    char path[PATH_MAX];

    snprintf(path, sizeof path, "%s/sinks/kafka/.libs/kafka.so", builddir ? builddir : ".");
    module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        fprintf(stderr, "# cannot load the plugin: %s\n", dlerror());
        return -1;
    }
    outbox_sink_entry_fn entry;
    *(void **)&entry = dlsym(module, OUTBOX_SINK_ENTRY_SYMBOL);
    if (entry == NULL) {
        fprintf(stderr, "# %s has no %s: %s\n", path, OUTBOX_SINK_ENTRY_SYMBOL, dlerror());
        return -1;
    }
    plugin = entry();
    return plugin == NULL ? -1 : 0;
}

static int unload_plugin(void **state) {
    if (module != NULL) dlclose(module);
    return 0;
}

/* ----------------------------------------------------------------------------
 * rd_kafka_new, watched
 * ------------------------------------------------------------------------- */

static rd_kafka_t *last_producer; /* the last producer anyone created */

rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size) {
    static rd_kafka_t *(*real)(rd_kafka_type_t, rd_kafka_conf_t *, char *, size_t);
    if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "rd_kafka_new");
    rd_kafka_t *rk = real(type, conf, errstr, errstr_size);
    if (rk != NULL && type == RD_KAFKA_PRODUCER) last_producer = rk;
    return rk;
}

/* ----------------------------------------------------------------------------
 * The test host: options from a list, acks and log lines recorded
 * ------------------------------------------------------------------------- */

#define MAX_OPTIONS 16
#define MAX_ACKS 256
#define LOG_SIZE 65536

typedef struct {
    uint64_t seq;
    outbox_sink_status_t status;
    char error[600];
} ack_t;

typedef struct {
    outbox_sink_host_t host; /* host.ctx points back to this struct */
    const char *keys[MAX_OPTIONS];
    const char *values[MAX_OPTIONS];
    size_t n_options;
    pthread_mutex_t lock; /* log lines come from librdkafka's threads */
    ack_t acks[MAX_ACKS];
    size_t n_acks;
    bool count_only; /* volume tests: count the acks, keep none */
    size_t n_ok, n_not_ok;
    char log[LOG_SIZE];
    size_t log_len;
} test_host_t;

static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    test_host_t *th = ctx;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "# [sink log %d] %s\n", (int)level, line);
    pthread_mutex_lock(&th->lock);
    size_t len = strlen(line);
    if (th->log_len + len + 2 < LOG_SIZE) {
        memcpy(th->log + th->log_len, line, len);
        th->log_len += len;
        th->log[th->log_len++] = '\n';
        th->log[th->log_len] = '\0';
    }
    pthread_mutex_unlock(&th->lock);
}

static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    test_host_t *th = ctx;
    pthread_mutex_lock(&th->lock);
    if (th->count_only) {
        if (status == OUTBOX_SINK_OK)
            th->n_ok++;
        else
            th->n_not_ok++;
    } else if (th->n_acks < MAX_ACKS) {
        ack_t *a = &th->acks[th->n_acks++];
        a->seq = seq;
        a->status = status;
        snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    }
    pthread_mutex_unlock(&th->lock);
}

static const char *host_option(void *ctx, const char *key) {
    test_host_t *th = ctx;
    for (size_t i = 0; i < th->n_options; i++) {
        if (strcmp(th->keys[i], key) == 0) return th->values[i];
    }
    return NULL;
}

static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    test_host_t *th = ctx;
    if (*cursor >= th->n_options) return NULL;
    *value = th->values[*cursor];
    return th->keys[(*cursor)++];
}

static test_host_t *host_new(void) {
    test_host_t *th = calloc(1, sizeof *th);
    assert_non_null(th);
    pthread_mutex_init(&th->lock, NULL);
    th->host.struct_size = sizeof th->host;
    th->host.abi_major = OUTBOX_SINK_ABI_MAJOR;
    th->host.abi_minor = OUTBOX_SINK_ABI_MINOR;
    th->host.ctx = th;
    th->host.sink_name = "test";
    th->host.log = host_log;
    th->host.ack = host_ack;
    th->host.option = host_option;
    th->host.option_next = host_option_next;
    return th;
}

static void host_free(test_host_t *th) {
    pthread_mutex_destroy(&th->lock);
    free(th);
}

static void host_set(test_host_t *th, const char *key, const char *value) {
    for (size_t i = 0; i < th->n_options; i++) {
        if (strcmp(th->keys[i], key) == 0) {
            th->values[i] = value;
            return;
        }
    }
    assert_true(th->n_options < MAX_OPTIONS);
    th->keys[th->n_options] = key;
    th->values[th->n_options] = value;
    th->n_options++;
}

static size_t n_acks(test_host_t *th) {
    pthread_mutex_lock(&th->lock);
    size_t n = th->n_acks;
    pthread_mutex_unlock(&th->lock);
    return n;
}

/* The one ack for seq (failing when there is none or more than one). */
static const ack_t *ack_of(test_host_t *th, uint64_t seq) {
    const ack_t *found = NULL;
    for (size_t i = 0; i < n_acks(th); i++) {
        if (th->acks[i].seq != seq) continue;
        if (found != NULL) fail_msg("event %llu acked twice", (unsigned long long)seq);
        found = &th->acks[i];
    }
    if (found == NULL) fail_msg("event %llu not acked", (unsigned long long)seq);
    return found;
}

static void assert_acked(test_host_t *th, uint64_t seq, outbox_sink_status_t status) {
    const ack_t *a = ack_of(th, seq);
    if (a->status != status)
        fail_msg("event %llu acked %d (%s), not %d", (unsigned long long)seq, (int)a->status, a->error,
                 (int)status);
}

static bool log_has(test_host_t *th, const char *text) {
    pthread_mutex_lock(&th->lock);
    bool found = strstr(th->log, text) != NULL;
    pthread_mutex_unlock(&th->lock);
    return found;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls the sink until it has given n acks in all, up to timeout_ms. */
static void poll_until_acks(void *sink, test_host_t *th, size_t n, int timeout_ms) {
    char errbuf[512];
    int64_t until = now_ms() + timeout_ms;
    while (n_acks(th) < n && now_ms() < until) plugin->poll(sink, 100, errbuf, sizeof errbuf);
    if (n_acks(th) < n) fail_msg("%zu acks after %d ms, expected %zu", n_acks(th), timeout_ms, n);
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

/* Opens an instance on the test broker with th's options (bootstrap.servers
 * added). */
static void *open_ok(test_host_t *th) {
    char errbuf[1024] = "";
    void *sink = NULL;
    host_set(th, "bootstrap.servers", kt_brokers());
    int rc = plugin->open(&th->host, &sink, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open: %d %s", rc, errbuf);
    assert_non_null(sink);
    return sink;
}

static void publish_ok(void *sink, const outbox_sink_event_t *events, size_t n) {
    char errbuf[1024] = "";
    int rc = plugin->publish(sink, events, n, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
}

static void flush_ok(void *sink) {
    char errbuf[1024] = "";
    int rc = plugin->flush(sink, 20000, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("flush: %d %s", rc, errbuf);
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    assert_true(plugin->struct_size >= OUTBOX_SINK_PLUGIN_MIN_SIZE);
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_string_equal(plugin->build_tag, OUTBOX_SINK_BUILD_TAG);
    assert_string_equal(plugin->name, "kafka");
    assert_non_null(plugin->version);
    assert_non_null(plugin->open);
    assert_non_null(plugin->publish);
    assert_non_null(plugin->poll);
    assert_non_null(plugin->flush);
    assert_non_null(plugin->close);

    const outbox_sink_option_t *o = plugin->options;
    assert_string_equal(o[0].key, "bootstrap.servers");
    assert_true(o[0].required);
    assert_string_equal(o[1].key, "null_key");
    assert_string_equal(o[1].choices, "type|none");
    assert_string_equal(o[1].default_value, "type");
    assert_string_equal(o[2].key, "open_timeout_ms");
    assert_string_equal(o[3].key, "flush_timeout_ms");
    /* Every other key goes to librdkafka. */
    assert_string_equal(o[4].key, "*");
    assert_null(o[5].key);

    assert_null(dlsym(module, "kafka_open"));
    assert_null(dlsym(module, "kafka_publish"));
}

/* A bad option is FATAL from open, with a message naming it (and
 * librdkafka's reason); no broker is needed to find out. */
static void test_bad_options_name_the_property(void **state) {
    static const struct {
        const char *key, *value, *expect;
    } bad[] = {
        {"no.such.property", "1", "No such configuration property"},
        {"linger.ms", "soon", "linger.ms"},
        {"compression.type", "zip", "compression.type"},
        {"acks", "1", "acks"}, /* contradicts enable.idempotence: refused by rd_kafka_new */
        {"null_key", "maybe", "null_key"},
        {"open_timeout_ms", "-1", "open_timeout_ms"},
        {"flush_timeout_ms", "lots", "flush_timeout_ms"},
        {"delivery.report.only.error", "true", "delivery.report.only.error"},
        {"transactional.id", "x", "transactional.id"},
        {"dr_msg_cb", "x", "dr_msg_cb"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_host_t *th = host_new();
        char errbuf[1024] = "";
        void *sink = NULL;
        host_set(th, "bootstrap.servers", "127.0.0.1:1");
        host_set(th, bad[i].key, bad[i].value);
        int rc = plugin->open(&th->host, &sink, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s=%s: open gave %d, not FATAL (%s)", bad[i].key, bad[i].value, rc, errbuf);
        assert_null(sink);
        if (strstr(errbuf, bad[i].key) == NULL || strstr(errbuf, bad[i].expect) == NULL)
            fail_msg("%s=%s: the message does not say \"%s\" and name the option: %s", bad[i].key,
                     bad[i].value, bad[i].expect, errbuf);
        print_message("# %s=%s: %s\n", bad[i].key, bad[i].value, errbuf);
        host_free(th);
    }

    /* bootstrap.servers is required (outboxd checks it first; the plugin
     * too, for other hosts). */
    test_host_t *th = host_new();
    char errbuf[1024] = "";
    void *sink = NULL;
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "bootstrap.servers"));
    host_free(th);
}

/* Secrets never show, in open's message or in any log line, even with
 * librdkafka's configuration debugging on. */
static void test_secrets_are_never_shown(void **state) {
    const char *secret = "s3cr3t-Pa55";
    test_host_t *th = host_new();
    char errbuf[1024] = "";
    void *sink = NULL;
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "security.protocol", "SASL_PLAINTEXT");
    host_set(th, "sasl.username", "outbox");
    host_set(th, "sasl.password", secret);
    host_set(th, "sasl.mechanisms", "NO-SUCH-MECH");
    host_set(th, "debug", "conf");
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "NO-SUCH-MECH"));
    assert_null(strstr(errbuf, secret));
    assert_false(log_has(th, secret));
    host_free(th);

    /* A secret librdkafka cannot use: its message does not quote it. */
    th = host_new();
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "security.protocol", "SSL");
    host_set(th, "ssl.key.pem", secret);
    host_set(th, "ssl.key.password", secret);
    errbuf[0] = '\0';
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "ssl.key.pem"));
    assert_null(strstr(errbuf, secret));
    assert_false(log_has(th, secret));
    host_free(th);

    /* A working producer with secrets set and every configuration line
     * logged: none of them shows the secret. */
    th = host_new();
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "sasl.password", secret);
    host_set(th, "ssl.key.password", secret);
    host_set(th, "debug", "conf,security");
    errbuf[0] = '\0';
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    plugin->poll(sink, 200, errbuf, sizeof errbuf);
    plugin->close(sink);
    assert_true(log_has(th, "sasl.password"));
    assert_false(log_has(th, secret));
    host_free(th);
}

/* An unreachable cluster at open: RETRY after open_timeout_ms, saying so;
 * with open_timeout_ms 0 open succeeds and the deliveries time out into
 * RETRY acks instead. */
static void test_unreachable_broker_at_open(void **state) {
    test_host_t *th = host_new();
    char errbuf[1024] = "";
    void *sink = NULL;
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "1000");
    int64_t start = now_ms();
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    int64_t took = now_ms() - start;
    print_message("# open against 127.0.0.1:1: RETRY after %lld ms: %s\n", (long long)took, errbuf);
    assert_null(sink);
    assert_true(took >= 900 && took < 5000);
    assert_non_null(strstr(errbuf, "127.0.0.1:1"));
    assert_non_null(strstr(errbuf, "1000 ms"));
    host_free(th);

    th = host_new();
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "message.timeout.ms", "1500");
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    event_buf_t ev[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&ev[i], (uint64_t)i + 1, "outbox-test-unreachable", "k");
        events[i] = ev[i].ev;
    }
    publish_ok(sink, events, 3);
    poll_until_acks(sink, th, 3, 10000);
    for (uint64_t seq = 1; seq <= 3; seq++) assert_acked(th, seq, OUTBOX_SINK_RETRY);
    assert_true(log_has(th, "failed for now"));
    flush_ok(sink); /* nothing in flight any more */
    plugin->close(sink);
    host_free(th);
}

/* Topic, key, headers and payload as README.md says; acks OK once the
 * broker has the message. */
static void test_messages_keys_and_headers(void **state) {
    const char *brokers = kt_brokers();
    (void)brokers;
    char *topic = kt_topic_name("format");
    kt_create_topic(topic, 3, NULL);

    test_host_t *th = host_new();
    void *sink = open_ok(th);
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
    publish_ok(sink, events, 4);
    flush_ok(sink);
    for (uint64_t seq = 1; seq <= 4; seq++) assert_acked(th, seq, OUTBOX_SINK_OK);
    plugin->close(sink);

    /* null_key: none sends a null key. */
    test_host_t *th2 = host_new();
    host_set(th2, "null_key", "none");
    sink = open_ok(th2);
    outbox_sink_event_t ev5 = events[1];
    ev5.seq = 5;
    ev5.id = "5f0c6b7e8a9d4e3f2a1b0c05";
    publish_ok(sink, &ev5, 1);
    flush_ok(sink);
    assert_acked(th2, 5, OUTBOX_SINK_OK);
    plugin->close(sink);

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
    host_free(th);
    host_free(th2);
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

    test_host_t *th = host_new();
    host_set(th, "message.max.bytes", "2000");
    void *sink = open_ok(th);
    char big[3000];
    memset(big, 'x', sizeof big);
    event_buf_t b[5];
    make_event(&b[0], 1, topic, "k");
    make_event(&b[1], 2, topic, "k");
    b[1].ev.payload = (const unsigned char *)big;
    b[1].ev.payload_len = sizeof big; /* over message.max.bytes: refused by librdkafka */
    make_event(&b[2], 3, "bad topic!", "k");
    make_event(&b[3], 4, "", "k");   /* a route that could not be expanded */
    make_event(&b[4], 5, topic, "k");
    outbox_sink_event_t events[5];
    for (int i = 0; i < 5; i++) events[i] = b[i].ev;
    publish_ok(sink, events, 5);
    /* The refusals are acked at once, within publish. */
    assert_acked(th, 2, OUTBOX_SINK_FATAL);
    assert_acked(th, 3, OUTBOX_SINK_FATAL);
    assert_acked(th, 4, OUTBOX_SINK_FATAL);
    flush_ok(sink);
    assert_acked(th, 1, OUTBOX_SINK_OK);
    assert_acked(th, 5, OUTBOX_SINK_OK);
    print_message("# too large: %s\n", ack_of(th, 2)->error);
    print_message("# bad topic: %s\n", ack_of(th, 3)->error);
    assert_non_null(strstr(ack_of(th, 2)->error, "message.max.bytes=2000"));
    assert_non_null(strstr(ack_of(th, 3)->error, "bad topic!"));
    assert_non_null(strstr(ack_of(th, 4)->error, "not a valid Kafka topic name"));

    /* Over the topic's max.message.bytes: the broker refuses the whole
     * batch, innocent neighbours included. Those come back RETRY; sent
     * again (as outboxd does) they go one at a time, and only the culprit
     * is acked FATAL. */
    plugin->close(sink);
    th->n_acks = 0;
    host_set(th, "linger.ms", "200"); /* one batch for the three */
    sink = open_ok(th);
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
    publish_ok(sink, three, 3);
    flush_ok(sink);
    for (uint64_t seq = 6; seq <= 8; seq++) assert_acked(th, seq, OUTBOX_SINK_RETRY);
    assert_true(log_has(th, "the broker refused a batch"));
    th->n_acks = 0;
    publish_ok(sink, three, 3);
    flush_ok(sink);
    assert_acked(th, 6, OUTBOX_SINK_OK);
    assert_acked(th, 7, OUTBOX_SINK_FATAL);
    assert_acked(th, 8, OUTBOX_SINK_OK);
    print_message("# over the topic's limit: %s\n", ack_of(th, 7)->error);
    assert_non_null(strstr(ack_of(th, 7)->error, "MSG_SIZE_TOO_LARGE"));
    plugin->close(sink);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].value, "{\"n\":1}");
    assert_string_equal(r[1].value, "{\"n\":5}");
    kt_records_free(r, n);
    n = kt_consume(small_topic, &r, 30000);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].value, "{\"n\":6}");
    assert_string_equal(r[1].value, "{\"n\":8}");
    kt_records_free(r, n);
    host_free(th);
    kt_delete_topic(topic);
    kt_delete_topic(small_topic);
    free(topic);
    free(small_topic);
}

/* librdkafka's queue full: publish stops there with RETRY; when outboxd
 * publishes the batch again, the events still in flight are not produced
 * twice: each is in Kafka once and acked once. */
static void test_queue_full_retries_without_duplicates(void **state) {
    kt_brokers();
    char *topic = kt_topic_name("queue");
    kt_create_topic(topic, 1, NULL);
    test_host_t *th = host_new();
    host_set(th, "queue.buffering.max.messages", "5");
    host_set(th, "linger.ms", "1000"); /* keeps the first five queued a while */
    void *sink = open_ok(th);
    event_buf_t b[8];
    outbox_sink_event_t events[8];
    for (int i = 0; i < 8; i++) {
        make_event(&b[i], (uint64_t)i + 1, topic, "k");
        events[i] = b[i].ev;
    }
    char errbuf[1024] = "";
    assert_int_equal(plugin->publish(sink, events, 8, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "queue is full"));
    assert_int_equal(n_acks(th), 0);
    /* outboxd publishes every unacked event of the batch again. */
    assert_int_equal(plugin->publish(sink, events, 8, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    poll_until_acks(sink, th, 5, 10000);
    for (uint64_t seq = 1; seq <= 5; seq++) assert_acked(th, seq, OUTBOX_SINK_OK);
    publish_ok(sink, events + 5, 3);
    flush_ok(sink);
    assert_int_equal(n_acks(th), 8);
    for (uint64_t seq = 1; seq <= 8; seq++) assert_acked(th, seq, OUTBOX_SINK_OK);
    plugin->close(sink);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%zu}", i + 1);
        assert_string_equal(r[i].value, want);
    }
    kt_records_free(r, n);
    host_free(th);
    kt_delete_topic(topic);
    free(topic);
}

/* A fatal producer error: publish returns FATAL (outboxd then closes and
 * opens the sink again), and a new producer delivers. */
static void test_fatal_producer_error_recreates_the_producer(void **state) {
    kt_brokers();
    char *topic = kt_topic_name("fatalerr");
    kt_create_topic(topic, 1, NULL);
    test_host_t *th = host_new();
    void *sink = open_ok(th);
    rd_kafka_t *rk = last_producer;
    event_buf_t b[4];
    for (int i = 0; i < 4; i++) make_event(&b[i], (uint64_t)i + 1, topic, "k");
    publish_ok(sink, &b[0].ev, 1);
    flush_ok(sink);
    assert_acked(th, 1, OUTBOX_SINK_OK);

    /* Two events still queued (linger.ms) when the error strikes: they
     * come back as RETRY acks, so outboxd publishes them again. */
    plugin->close(sink);
    host_set(th, "linger.ms", "30000");
    sink = open_ok(th);
    rk = last_producer;
    publish_ok(sink, &b[1].ev, 1);
    publish_ok(sink, &b[2].ev, 1);
    assert_int_equal(rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by test_kafka_sink"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    char errbuf[1024] = "";
    poll_until_acks(sink, th, 3, 10000);
    assert_acked(th, 2, OUTBOX_SINK_RETRY);
    assert_acked(th, 3, OUTBOX_SINK_RETRY);
    th->n_acks = 1; /* forget them, as outboxd does when it publishes them again */
    assert_int_equal(plugin->publish(sink, &b[1].ev, 1, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "fatal producer error"));
    assert_non_null(strstr(errbuf, "injected by test_kafka_sink"));
    assert_true(log_has(th, "the producer is recreated"));
    plugin->close(sink);

    /* What outboxd does next: open again, publish the unacked events. */
    host_set(th, "linger.ms", "5");
    sink = open_ok(th);
    assert_ptr_not_equal(last_producer, NULL);
    publish_ok(sink, &b[1].ev, 1);
    publish_ok(sink, &b[2].ev, 1);
    flush_ok(sink);
    assert_acked(th, 2, OUTBOX_SINK_OK);
    assert_acked(th, 3, OUTBOX_SINK_OK);
    plugin->close(sink);

    kt_record_t *r;
    size_t n = kt_consume(topic, &r, 30000);
    assert_int_equal(n, 3);
    kt_records_free(r, n);
    host_free(th);
    kt_delete_topic(topic);
    free(topic);
}

/* flush is bounded and says what is left; close is bounded by
 * flush_timeout_ms and drops the rest (RETRY acks). */
static void test_flush_and_close_are_bounded(void **state) {
    test_host_t *th = host_new();
    char errbuf[1024] = "";
    void *sink = NULL;
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "flush_timeout_ms", "700");
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    event_buf_t b[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&b[i], (uint64_t)i + 1, "outbox-test-bounded", "k");
        events[i] = b[i].ev;
    }
    publish_ok(sink, events, 3);
    int64_t start = now_ms();
    assert_int_equal(plugin->flush(sink, 300, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    int64_t took = now_ms() - start;
    print_message("# flush: RETRY after %lld ms: %s\n", (long long)took, errbuf);
    assert_true(took < 2000);
    assert_non_null(strstr(errbuf, "3 events not delivered"));

    /* A flush that timed out already: close does not wait again. */
    start = now_ms();
    plugin->close(sink);
    took = now_ms() - start;
    print_message("# close after a timed-out flush: %lld ms\n", (long long)took);
    assert_true(took < 2000);
    host_free(th);

    /* Without a flush first: close waits flush_timeout_ms at most. */
    th = host_new();
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "flush_timeout_ms", "700");
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    publish_ok(sink, events, 3);
    start = now_ms();
    plugin->close(sink);
    took = now_ms() - start;
    print_message("# close with 3 undeliverable events, flush_timeout_ms=700: %lld ms\n", (long long)took);
    assert_true(took >= 600 && took < 3000);
    assert_true(log_has(th, "closing with 3 events not delivered"));
    /* Acks given during close are RETRY or none at all (outboxd treats
     * unacked events as not delivered). */
    for (size_t i = 0; i < n_acks(th); i++) assert_int_equal(th->acks[i].status, OUTBOX_SINK_RETRY);
    host_free(th);
}

/* The plugin alone, driven as outboxd drives it (batches of 500, poll
 * between them), to tell its own speed from outboxd's. */
static void test_throughput(void **state) {
    int total = test_scaled(50000);
    kt_brokers();
    char *topic = kt_topic_name("speed");
    kt_create_topic(topic, 6, NULL);
    test_host_t *th = host_new();
    th->count_only = true;
    void *sink = open_ok(th);
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
    for (int i = 0; i < total; i += 500) {
        size_t n = (size_t)(total - i < 500 ? total - i : 500);
        publish_ok(sink, events + i, n);
        plugin->poll(sink, 0, errbuf, sizeof errbuf);
    }
    flush_ok(sink);
    int64_t took = now_ms() - start;
    assert_int_equal(th->n_ok, (size_t)total);
    assert_int_equal(th->n_not_ok, 0);
    print_message("# the plugin alone: %d events acked in %lld ms (%.0f events/s)\n", total, (long long)took,
                  total * 1000.0 / (double)(took > 0 ? took : 1));
    plugin->close(sink);
    free(events);
    free(ids);
    free(keys);
    host_free(th);
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

/* Opens an instance on the SASL_SSL listener with mechanism, password and
 * CA; returns open's result, errbuf holding its message. */
static int sasl_open(test_host_t *th, const sasl_t *a, const char *mechanism, const char *password,
                     const char *ca, void **sink, char *errbuf, size_t errbuf_size) {
    host_set(th, "bootstrap.servers", a->brokers);
    host_set(th, "security.protocol", "SASL_SSL");
    host_set(th, "sasl.mechanisms", mechanism);
    host_set(th, "sasl.username", a->user);
    host_set(th, "sasl.password", password);
    host_set(th, "ssl.ca.location", ca);
    if (host_option(th, "open_timeout_ms") == NULL) host_set(th, "open_timeout_ms", "3000");
    errbuf[0] = '\0';
    *sink = NULL;
    return plugin->open(&th->host, sink, errbuf, errbuf_size);
}

/* How many lines of the host's log contain text. */
static int log_count(test_host_t *th, const char *text) {
    int n = 0;
    pthread_mutex_lock(&th->lock);
    for (const char *p = th->log; (p = strstr(p, text)) != NULL; p += strlen(text)) n++;
    pthread_mutex_unlock(&th->lock);
    return n;
}

/* Over SASL_SSL with the right password the events are delivered, as an
 * independent consumer (kcat, over SASL_SSL too) sees, and the password is
 * in none of the sink's output. SCRAM-SHA-512 where librdkafka can use it
 * with this broker, else PLAIN (test_scram_before_librdkafka_2_6_1...). */
static void test_sasl_ssl_with_the_right_password_delivers(void **state) {
    sasl_t a;
    sasl_get(&a);
    const char *mechanism = scram_works() ? "SCRAM-SHA-512" : "PLAIN";
    char *topic = kt_topic_name("sasl");
    kt_create_topic(topic, 1, NULL);

    test_host_t *th = host_new();
    char errbuf[1024];
    void *sink;
    /* librdkafka's SASL and TLS debugging on: its lines go through the
     * sink's redaction too. */
    host_set(th, "debug", "security");
    int rc = sasl_open(th, &a, mechanism, a.password, a.ca, &sink, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open over SASL_SSL (%s): %d %s", mechanism, rc, errbuf);
    event_buf_t ev[3];
    outbox_sink_event_t events[3];
    for (int i = 0; i < 3; i++) {
        make_event(&ev[i], (uint64_t)i + 1, topic, "k");
        events[i] = ev[i].ev;
    }
    publish_ok(sink, events, 3);
    flush_ok(sink);
    for (uint64_t seq = 1; seq <= 3; seq++) assert_acked(th, seq, OUTBOX_SINK_OK);
    plugin->close(sink);
    assert_true(log_has(th, a.brokers)); /* the start-up line */
    assert_true(log_has(th, "SASL")); /* the debug lines came */
    assert_false(log_has(th, a.password));

    /* kcat is Debian's (librdkafka 2.0.2): PLAIN, see above. */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "kcat -C -b '%s' -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN "
             "-X sasl.username='%s' -X sasl.password='%s' -X ssl.ca.location='%s' "
             "-t '%s' -o beginning -e -q -f '%%s\\n' 2>&1",
             a.brokers, a.user, a.password, a.ca, topic);
    int status = test_run_command(cmd, &out);
    print_message("# SASL_SSL with %s: 3 events acked OK; kcat over SASL_SSL read:\n%s", mechanism, out);
    assert_int_equal(status, 0);
    assert_string_equal(out, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    free(out);
    host_free(th);
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
        test_host_t *th = host_new();
        char errbuf[1024];
        void *sink;
        int rc = sasl_open(th, &a, mechanism, wrong, a.ca, &sink, errbuf, sizeof errbuf);
        print_message("# wrong password (%s), attempt %d: %d %s\n", mechanism, attempt, rc, errbuf);
        assert_int_equal(rc, OUTBOX_SINK_RETRY);
        assert_null(sink);
        assert_non_null(strstr(errbuf, a.brokers));
        assert_non_null(strstr(errbuf, "Authentication failed"));
        assert_null(strstr(errbuf, wrong));
        assert_false(log_has(th, wrong));
        assert_int_equal(log_count(th, "Authentication failed"), 0);
        host_free(th);
    }
}

/* A broker certificate that the configured CA did not sign: open RETRYs,
 * saying the certificate could not be verified. */
static void test_sasl_wrong_ca_is_a_clear_retry(void **state) {
    sasl_t a;
    sasl_get(&a);
    test_host_t *th = host_new();
    char errbuf[1024];
    void *sink;
    int rc = sasl_open(th, &a, "PLAIN", a.password, a.other_ca, &sink, errbuf, sizeof errbuf);
    print_message("# wrong CA: %d %s\n", rc, errbuf);
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_null(sink);
    assert_non_null(strstr(errbuf, "certificate verify failed"));
    assert_false(log_has(th, a.password));
    assert_null(strstr(errbuf, a.password));
    assert_int_equal(log_count(th, "certificate verify failed"), 0);
    host_free(th);
}

/* With a librdkafka older than 2.6.1, SCRAM and the right password fail
 * against Kafka 4.x as "invalid credentials": open's message says that it
 * is librdkafka's bug and what to do, not only that the password is wrong. */
static void test_scram_before_librdkafka_2_6_1_names_the_cause(void **state) {
    sasl_t a;
    sasl_get(&a);
    if (scram_works())
        TEST_SKIP("librdkafka %s has the SCRAM fix (>= 2.6.1): nothing to explain", rd_kafka_version_str());
    test_host_t *th = host_new();
    char errbuf[1024];
    void *sink;
    int rc = sasl_open(th, &a, "SCRAM-SHA-512", a.password, a.ca, &sink, errbuf, sizeof errbuf);
    print_message("# SCRAM-SHA-512, right password, librdkafka %s: %d %s\n", rd_kafka_version_str(), rc,
                  errbuf);
    if (rc == OUTBOX_SINK_OK) {
        plugin->close(sink);
        fail_msg("SCRAM worked with librdkafka %s: scram_works() is wrong", rd_kafka_version_str());
    }
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "older than 2.6.1"));
    assert_non_null(strstr(errbuf, "PR #4895"));
    assert_false(log_has(th, a.password));
    host_free(th);
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
        {"", "is empty"},
        {NULL, "is 250 bytes long, over Kafka's 249"},
    };
    test_host_t *th = host_new();
    char errbuf[1024] = "";
    void *sink = NULL;
    /* No broker: the check comes before librdkafka is involved. */
    host_set(th, "bootstrap.servers", "127.0.0.1:1");
    host_set(th, "open_timeout_ms", "0");
    host_set(th, "flush_timeout_ms", "0");
    assert_int_equal(plugin->open(&th->host, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    size_t n = sizeof bad / sizeof bad[0];
    event_buf_t b[6];
    outbox_sink_event_t events[6];
    for (size_t i = 0; i < n; i++) {
        make_event(&b[i], i + 1, bad[i].topic ? bad[i].topic : long_topic, "k");
        b[i].ev.type = "order.created";
        events[i] = b[i].ev;
    }
    publish_ok(sink, events, n);
    for (size_t i = 0; i < n; i++) {
        const ack_t *a = ack_of(th, i + 1);
        print_message("# %s\n", a->error);
        assert_int_equal(a->status, OUTBOX_SINK_FATAL);
        if (strstr(a->error, bad[i].expect) == NULL) fail_msg("no \"%s\" in: %s", bad[i].expect, a->error);
        assert_non_null(strstr(a->error, "\"order.created\""));
        assert_non_null(strstr(a->error, "not a valid Kafka topic name"));
        assert_null(strchr(a->error, '\n'));
    }
    assert_non_null(strstr(ack_of(th, 1)->error, "\"orders.eu/1\""));
    assert_non_null(strstr(ack_of(th, 3)->error, "orders.a\\x0aFAKE LOG LINE"));
    /* Legal at 249 bytes. */
    long_topic[249] = '\0';
    th->n_acks = 0;
    make_event(&b[0], 10, long_topic, "k");
    publish_ok(sink, &b[0].ev, 1);
    assert_int_equal(n_acks(th), 0); /* handed to librdkafka, not refused */
    plugin->close(sink);
    host_free(th);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identification),
        cmocka_unit_test(test_bad_options_name_the_property),
        cmocka_unit_test(test_secrets_are_never_shown),
        cmocka_unit_test(test_unreachable_broker_at_open),
        cmocka_unit_test(test_messages_keys_and_headers),
        cmocka_unit_test(test_permanent_failures_are_fatal_acks),
        cmocka_unit_test(test_queue_full_retries_without_duplicates),
        cmocka_unit_test(test_fatal_producer_error_recreates_the_producer),
        cmocka_unit_test(test_flush_and_close_are_bounded),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_sasl_ssl_with_the_right_password_delivers),
        cmocka_unit_test(test_sasl_wrong_password_is_a_clear_retry),
        cmocka_unit_test(test_sasl_wrong_ca_is_a_clear_retry),
        cmocka_unit_test(test_scram_before_librdkafka_2_6_1_names_the_cause),
        cmocka_unit_test(test_illegal_topic_names_are_fatal_with_the_reason),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("kafka sink", tests, load_plugin, unload_plugin);
}
