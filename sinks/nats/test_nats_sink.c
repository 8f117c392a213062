/*
 * test_nats_sink.c - drives the built NATS sink plugin the way outboxd does
 * (dlopen, outbox_sink_entry, open/publish/poll/flush/close) through a test
 * host that records every ack and log line, against nats-server processes
 * the test starts itself. No MongoDB needed.
 *
 * It pins down what each outcome maps to: PubAck -> OK (a duplicate too),
 * no stream for the subject -> FATAL naming it, no PubAck in time -> RETRY,
 * a bad event (subject, header, size) -> FATAL for that event only, a
 * server that is down -> RETRY, publishes in flight across a reconnect ->
 * RETRY, bad options -> FATAL naming the option; and that no secret ever
 * reaches a log line or an error.
 *
 * The module is $OUTBOX_TEST_BUILDDIR/sinks/nats/.libs/nats.so (libtool's
 * layout), or ./sinks/nats/.libs/nats.so.
 */
#include "testlib.h"
#include "natstest.h"

#include <outbox/sink.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * The plugin, loaded once
 * ------------------------------------------------------------------------- */

static void *module;
static const outbox_sink_plugin_t *plugin;

static void load_plugin(void) {
    const char *builddir = getenv("OUTBOX_TEST_BUILDDIR");
    char path[PATH_MAX];
    if (plugin != NULL) return;
    snprintf(path, sizeof path, "%s/sinks/nats/.libs/nats.so", builddir ? builddir : ".");
    module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) fail_msg("cannot load the plugin: %s", dlerror());
    outbox_sink_entry_fn entry;
    *(void **)&entry = dlsym(module, OUTBOX_SINK_ENTRY_SYMBOL);
    if (entry == NULL) fail_msg("%s has no %s", path, OUTBOX_SINK_ENTRY_SYMBOL);
    plugin = entry();
    assert_non_null(plugin);
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ----------------------------------------------------------------------------
 * The test host: options from a list; acks and log lines recorded. Acks
 * come from libnats's threads, hence the mutex.
 * ------------------------------------------------------------------------- */

#define MAX_OPTIONS 24

typedef struct {
    uint64_t seq;
    outbox_sink_status_t status;
    char error[600];
} ack_t;

typedef struct {
    outbox_sink_host_t host;
    const char *keys[MAX_OPTIONS];
    const char *values[MAX_OPTIONS];
    size_t n_options;
    pthread_mutex_t mu;
    ack_t *acks;
    size_t n_acks, cap;
    char *logs; /* every log line, "\n"-separated */
    size_t logs_len;
    int closed; /* set after close returns: an ack then is a bug */
} test_host_t;

static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    test_host_t *th = ctx;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&th->mu);
    size_t len = strlen(line);
    char *grown = realloc(th->logs, th->logs_len + len + 2);
    assert_non_null(grown);
    th->logs = grown;
    memcpy(th->logs + th->logs_len, line, len);
    th->logs_len += len;
    th->logs[th->logs_len++] = '\n';
    th->logs[th->logs_len] = '\0';
    pthread_mutex_unlock(&th->mu);
    print_message("# [sink log %d] %s\n", (int)level, line);
}

static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    test_host_t *th = ctx;
    pthread_mutex_lock(&th->mu);
    if (th->closed) fprintf(stderr, "# BUG: ack of %llu after close\n", (unsigned long long)seq);
    if (th->n_acks == th->cap) {
        th->cap = th->cap ? th->cap * 2 : 256;
        th->acks = realloc(th->acks, th->cap * sizeof *th->acks);
        assert_non_null(th->acks);
    }
    ack_t *a = &th->acks[th->n_acks++];
    a->seq = seq;
    a->status = status;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    pthread_mutex_unlock(&th->mu);
}

static const char *host_option(void *ctx, const char *key) {
    test_host_t *th = ctx;
    for (size_t i = 0; i < th->n_options; i++)
        if (strcmp(th->keys[i], key) == 0) return th->values[i];
    return NULL;
}

static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    test_host_t *th = ctx;
    if (*cursor >= th->n_options) return NULL;
    *value = th->values[*cursor];
    return th->keys[(*cursor)++];
}

static void host_init(test_host_t *th) {
    memset(th, 0, sizeof *th);
    pthread_mutex_init(&th->mu, NULL);
    th->host.struct_size = sizeof th->host;
    th->host.abi_major = OUTBOX_SINK_ABI_MAJOR;
    th->host.abi_minor = OUTBOX_SINK_ABI_MINOR;
    th->host.ctx = th;
    th->host.sink_name = "test";
    th->host.log = host_log;
    th->host.ack = host_ack;
    th->host.option = host_option;
    th->host.option_next = host_option_next;
}

static void host_done(test_host_t *th) {
    free(th->acks);
    free(th->logs);
    pthread_mutex_destroy(&th->mu);
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
    pthread_mutex_lock(&th->mu);
    size_t n = th->n_acks;
    pthread_mutex_unlock(&th->mu);
    return n;
}

/* The one ack for seq (fails when there is none or more than one). */
static ack_t ack_of(test_host_t *th, uint64_t seq) {
    ack_t found = {0};
    int count = 0;
    pthread_mutex_lock(&th->mu);
    for (size_t i = 0; i < th->n_acks; i++) {
        if (th->acks[i].seq == seq) {
            found = th->acks[i];
            count++;
        }
    }
    pthread_mutex_unlock(&th->mu);
    if (count != 1) fail_msg("event %llu acked %d times", (unsigned long long)seq, count);
    return found;
}

static void assert_ack(test_host_t *th, uint64_t seq, outbox_sink_status_t status, const char *text) {
    ack_t a = ack_of(th, seq);
    if (a.status != status)
        fail_msg("event %llu acked %d (%s), expected %d", (unsigned long long)seq, (int)a.status, a.error,
                 (int)status);
    if (text != NULL && strstr(a.error, text) == NULL)
        fail_msg("event %llu: ack error \"%s\" does not say \"%s\"", (unsigned long long)seq, a.error, text);
}

static int logs_have(test_host_t *th, const char *text) {
    pthread_mutex_lock(&th->mu);
    int found = th->logs != NULL && strstr(th->logs, text) != NULL;
    pthread_mutex_unlock(&th->mu);
    return found;
}

/* ----------------------------------------------------------------------------
 * Driving the plugin
 * ------------------------------------------------------------------------- */

static int open_sink(test_host_t *th, void **sink, char *errbuf, size_t size) {
    load_plugin();
    errbuf[0] = '\0';
    *sink = NULL;
    int rc = plugin->open(&th->host, sink, errbuf, size);
    errbuf[size - 1] = '\0';
    return rc;
}

static void *open_ok(test_host_t *th) {
    char errbuf[1024];
    void *sink;
    int rc = open_sink(th, &sink, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open gave %d: %s", rc, errbuf);
    return sink;
}

static void close_sink(test_host_t *th, void *sink) {
    plugin->close(sink);
    pthread_mutex_lock(&th->mu);
    th->closed = 1;
    pthread_mutex_unlock(&th->mu);
}

/* Polls (as outboxd does between batches) until n acks have come. */
static void wait_acks(test_host_t *th, void *sink, size_t n, int timeout_ms) {
    char errbuf[512];
    int64_t waited = 0;
    while (n_acks(th) < n && waited < timeout_ms) {
        plugin->poll(sink, 20, errbuf, sizeof errbuf);
        nap_ms(5);
        waited += 25;
    }
    if (n_acks(th) < n) fail_msg("%zu of %zu acks after %d ms", n_acks(th), n, timeout_ms);
}

static int publish(void *sink, const outbox_sink_event_t *ev, size_t n, char *errbuf, size_t size) {
    errbuf[0] = '\0';
    int rc = plugin->publish(sink, ev, n, errbuf, size);
    errbuf[size - 1] = '\0';
    return rc;
}

static void publish_ok(void *sink, const outbox_sink_event_t *ev, size_t n) {
    char errbuf[1024];
    int rc = publish(sink, ev, n, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish gave %d: %s", rc, errbuf);
}

/* An event: ids are unique per run, 24 hex digits as outboxd's. */
typedef struct {
    outbox_sink_event_t ev;
    char id[25];
    char subject[256];
    char payload[256];
} test_event_t;

static void make_event(test_event_t *t, uint64_t seq, const char *subject, int ordernr) {
    static unsigned counter;
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%08x%08x%08x", (unsigned)time(NULL), (unsigned)getpid(), ++counter);
    snprintf(t->subject, sizeof t->subject, "%s", subject);
    snprintf(t->payload, sizeof t->payload, "{ \"ordernr\" : %d, \"total\" : 10.5 }", ordernr);
    t->ev.seq = seq;
    t->ev.id = t->id;
    t->ev.type = "order.created";
    t->ev.key = "k1";
    t->ev.destination = t->subject;
    t->ev.payload = (const unsigned char *)t->payload;
    t->ev.payload_len = strlen(t->payload);
    t->ev.created_ms = 1790000000123LL;
}

/* ----------------------------------------------------------------------------
 * Fixture: a temporary directory, a host, and maybe a server
 * ------------------------------------------------------------------------- */

typedef struct {
    char dir[256];
    test_host_t th;
    natstest_server_t srv;
    natsConnection *nc; /* the test's own connection, when it has one */
    jsCtx *js;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/outbox-test-nats-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) return -1;
    host_init(&fx->th);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    char cmd[400];
    natstest_disconnect(fx->nc, fx->js);
    natstest_server_stop(&fx->srv, SIGTERM);
    host_done(&fx->th);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0) print_message("# could not remove %s\n", fx->dir);
    free(fx);
    return 0;
}

/* A JetStream server with stream ORDERS over orders.>, the test connected
 * to it, and the host pointed at it. */
static void start_jetstream(fixture_t *fx) {
    natstest_require_server();
    natstest_server_start(&fx->srv, fx->dir, 0);
    fx->nc = natstest_connect(fx->srv.url, &fx->js);
    natstest_add_stream(fx->js, "ORDERS", "orders.>", 0);
    host_set(&fx->th, "servers", fx->srv.url);
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    load_plugin();
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_string_equal(plugin->build_tag, OUTBOX_SINK_BUILD_TAG);
    assert_string_equal(plugin->name, "nats");
    assert_non_null(plugin->poll);
    assert_non_null(plugin->flush);
    const char *want[] = {"servers", "mode", "creds_file", "user", "password", "password_file", "token",
                          "token_file", "nkey", "nkey_seed_file",
                          "tls_ca", "tls_cert", "tls_key", "tls_hostname", "max_reconnect", "reconnect_wait_ms",
                          "max_pending", "ack_timeout_ms", "stream", "stream_subjects",
                          "duplicate_window_s"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const outbox_sink_option_t *o = plugin->options;
        while (o->key != NULL && strcmp(o->key, want[i]) != 0) o++;
        if (o->key == NULL) fail_msg("option %s is not in the table", want[i]);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Each bad option is FATAL from open, and the message names it; nothing is
 * connected (the servers point nowhere). */
static void test_bad_options(void **state) {
    fixture_t *fx = *state;
    char empty[300], missing[300];
    snprintf(empty, sizeof empty, "%s/empty", fx->dir);
    snprintf(missing, sizeof missing, "%s/missing", fx->dir);
    write_file(empty, "\n");
    static const struct {
        const char *key, *value, *key2, *value2;
    } bad[] = {
        {"mode", "fast", NULL, NULL},
        {"servers", "", NULL, NULL},
        {"servers", "http://127.0.0.1:4222", NULL, NULL},
        {"servers", "nats://127.0.0.1:4222,,nats://127.0.0.1:4223", NULL, NULL},
        {"servers", "nats://127.0.0.1:99999", NULL, NULL},
        {"servers", "nats://:4222", NULL, NULL},
        {"max_pending", "0", NULL, NULL},
        {"max_pending", "many", NULL, NULL},
        {"ack_timeout_ms", "5", NULL, NULL},
        {"max_reconnect", "-2", NULL, NULL},
        {"reconnect_wait_ms", "-1", NULL, NULL},
        {"connect_timeout_ms", "0", NULL, NULL},
        {"duplicate_window_s", "0", NULL, NULL},
        {"user", "alice", NULL, NULL},
        {"password_file", "EMPTY", "user", "alice"},
        {"password_file", "MISSING", "user", "alice"},
        {"token_file", "MISSING", NULL, NULL},
        {"token_file", "EMPTY", "creds_file", "MISSING"},
        {"creds_file", "MISSING", NULL, NULL},
        {"tls_key", "MISSING", NULL, NULL},
        {"tls_ca", "MISSING", NULL, NULL},
        {"tls_cert", "MISSING", "tls_key", "MISSING"},
        {"stream", "a.b", NULL, NULL},
        {"stream", "ORDERS", "mode", "core"},
        {"stream_subjects", "orders.>", NULL, NULL},
        {"tls_hostname", "example.org", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char errbuf[1024];
        void *sink = NULL;
        test_host_t th;
        host_init(&th);
        host_set(&th, "servers", "nats://127.0.0.1:1");
#define FILE_VALUE(v) (strcmp(v, "EMPTY") == 0 ? empty : strcmp(v, "MISSING") == 0 ? missing : v)
        host_set(&th, bad[i].key, FILE_VALUE(bad[i].value));
        if (bad[i].key2) host_set(&th, bad[i].key2, FILE_VALUE(bad[i].value2));
        int rc = open_sink(&th, &sink, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s=\"%s\": open gave %d, not FATAL (%s)", bad[i].key, bad[i].value, rc, errbuf);
        assert_null(sink);
        if (strstr(errbuf, "nats sink: option ") == NULL || strstr(errbuf, bad[i].key) == NULL)
            fail_msg("%s=\"%s\": the message does not name the option: %s", bad[i].key, bad[i].value, errbuf);
        print_message("# %s=\"%s\": %s\n", bad[i].key, bad[i].value, errbuf);
        host_done(&th);
    }
}

/* Nothing listens: RETRY (outboxd tries again), with the server named and
 * its credentials masked. */
static void test_unreachable_is_retry_and_hides_credentials(void **state) {
    fixture_t *fx = *state;
    char url[128], errbuf[1024];
    void *sink;
    snprintf(url, sizeof url, "nats://alice:s3cr3t-pw@127.0.0.1:%d", natstest_free_port());
    host_set(&fx->th, "servers", url);
    host_set(&fx->th, "connect_timeout_ms", "500");
    assert_int_equal(open_sink(&fx->th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    if (strstr(errbuf, "cannot connect") == NULL || strstr(errbuf, "127.0.0.1") == NULL)
        fail_msg("unclear: %s", errbuf);
    if (strstr(errbuf, "s3cr3t") != NULL || strstr(errbuf, "alice") != NULL)
        fail_msg("credentials shown: %s", errbuf);
    assert_false(logs_have(&fx->th, "s3cr3t"));
}

/* Secrets from files reach the server, never a log line or an error. */
static void test_user_password_and_token_stay_secret(void **state) {
    fixture_t *fx = *state;
    char pw[300], wrong[300], token[300], errbuf[1024];
    const char *extra[] = {"--user", "alice", "--pass", "pw-XYZZY-42", NULL};
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, extra);
    snprintf(pw, sizeof pw, "%s/pw", fx->dir);
    snprintf(wrong, sizeof wrong, "%s/wrong", fx->dir);
    snprintf(token, sizeof token, "%s/token", fx->dir);
    write_file(pw, "pw-XYZZY-42\n");
    write_file(wrong, "wrong-QUUX-7\n");
    write_file(token, "tok-FROB-9\n");

    host_set(&fx->th, "servers", fx->srv.url);
    host_set(&fx->th, "mode", "core");
    host_set(&fx->th, "user", "alice");
    host_set(&fx->th, "password_file", pw);
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "core.x", 1);
    publish_ok(sink, &e.ev, 1);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(&fx->th, sink);

    /* A wrong password: RETRY (the file may be fixed), saying why. */
    host_set(&fx->th, "password_file", wrong);
    assert_int_equal(open_sink(&fx->th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    print_message("# wrong password: %s\n", errbuf);
    if (strstr(errbuf, "uthoriz") == NULL) fail_msg("the error does not say why: %s", errbuf);
    assert_null(strstr(errbuf, "QUUX"));

    /* A token where the server wants a user: refused, not logged. */
    test_host_t th2;
    host_init(&th2);
    host_set(&th2, "servers", fx->srv.url);
    host_set(&th2, "token_file", token);
    assert_int_equal(open_sink(&th2, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    assert_null(strstr(errbuf, "FROB"));
    assert_false(logs_have(&th2, "FROB"));
    host_done(&th2);
    assert_false(logs_have(&fx->th, "XYZZY"));
    assert_false(logs_have(&fx->th, "QUUX"));
}

/* A server without JetStream: RETRY, and the message says what to do. */
static void test_no_jetstream_is_retry_with_a_clear_message(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    void *sink;
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, NULL);
    host_set(&fx->th, "servers", fx->srv.url);
    host_set(&fx->th, "ack_timeout_ms", "1000");
    assert_int_equal(open_sink(&fx->th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    if (strstr(errbuf, "JetStream is not enabled") == NULL) fail_msg("unclear: %s", errbuf);
}

static const char *expect_key;

/* Each event is stored once, with its headers, and its PubAck is the ack. */
typedef struct {
    int n;
    const test_event_t *events;
} readback_t;

static void check_message(natsMsg *msg, void *arg) {
    readback_t *r = arg;
    const test_event_t *e = &r->events[r->n++];
    assert_string_equal(natsMsg_GetSubject(msg), e->subject);
    assert_int_equal(natsMsg_GetDataLength(msg), (int)strlen(e->payload));
    assert_memory_equal(natsMsg_GetData(msg), e->payload, strlen(e->payload));
    assert_string_equal(natstest_header(msg, "Nats-Msg-Id"), e->id);
    assert_string_equal(natstest_header(msg, "Outbox-Id"), e->id);
    assert_string_equal(natstest_header(msg, "Outbox-Type"), "order.created");
    assert_string_equal(natstest_header(msg, "Outbox-Key"), expect_key);
    assert_string_equal(natstest_header(msg, "Outbox-Created"), "2026-09-21T14:13:20.123Z");
    assert_string_equal(natstest_header(msg, "trace-id"), "4bf92f35");
    assert_string_equal(natstest_header(msg, "tenant"), "Zürich \tA");
}

static void test_jetstream_pubacks_and_headers(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    void *sink = open_ok(&fx->th);
    test_event_t e[3];
    outbox_sink_event_t ev[3];
    outbox_sink_header_t headers[] = {{"trace-id", "4bf92f35"}, {"tenant", "Zürich \tA"}};
    for (int i = 0; i < 3; i++) {
        make_event(&e[i], (uint64_t)i + 10, i == 1 ? "orders.shipped" : "orders.created", i + 1);
        e[i].ev.headers = headers;
        e[i].ev.n_headers = 2;
        ev[i] = e[i].ev;
    }
    publish_ok(sink, ev, 3);
    wait_acks(&fx->th, sink, 3, 10000);
    for (uint64_t seq = 10; seq < 13; seq++) assert_ack(&fx->th, seq, OUTBOX_SINK_OK, NULL);
    char errbuf[512];
    assert_int_equal(plugin->flush(sink, 1000, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    close_sink(&fx->th, sink);
    assert_true(logs_have(&fx->th, "closed: 3 published, 3 acked (0 of them duplicates"));

    readback_t r = {0, e};
    expect_key = "k1";
    assert_int_equal(natstest_read_stream(fx->js, "ORDERS", "orders.>", check_message, &r), 3);
}

/* The same event id twice: the stream keeps one, and the second PubAck
 * (duplicate: true) is still OK, as is one for an event published again by
 * a later instance. */
static void test_duplicate_is_delivered(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "orders.created", 1);
    publish_ok(sink, &e.ev, 1);
    wait_acks(&fx->th, sink, 1, 10000);
    e.ev.seq = 2;
    publish_ok(sink, &e.ev, 1);
    wait_acks(&fx->th, sink, 2, 10000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(&fx->th, 2, OUTBOX_SINK_OK, NULL);
    close_sink(&fx->th, sink);
    assert_true(logs_have(&fx->th, "2 acked (1 of them duplicates the stream already had)"));

    test_host_t th2;
    host_init(&th2);
    host_set(&th2, "servers", fx->srv.url);
    sink = open_ok(&th2);
    e.ev.seq = 3;
    publish_ok(sink, &e.ev, 1);
    wait_acks(&th2, sink, 1, 10000);
    assert_ack(&th2, 3, OUTBOX_SINK_OK, NULL);
    close_sink(&th2, sink);
    host_done(&th2);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 1);
}

/* A subject no stream covers: FATAL for those events, naming the subject;
 * the others of the batch are stored. */
static void test_subject_without_stream_is_fatal(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    void *sink = open_ok(&fx->th);
    test_event_t e[4];
    outbox_sink_event_t ev[4];
    for (int i = 0; i < 4; i++) {
        make_event(&e[i], (uint64_t)i + 1, i % 2 ? "nostream.created" : "orders.created", i + 1);
        ev[i] = e[i].ev;
    }
    publish_ok(sink, ev, 4);
    wait_acks(&fx->th, sink, 4, 10000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(&fx->th, 3, OUTBOX_SINK_OK, NULL);
    assert_ack(&fx->th, 2, OUTBOX_SINK_FATAL, "no JetStream stream covers subject \"nostream.created\"");
    assert_ack(&fx->th, 4, OUTBOX_SINK_FATAL, "no JetStream stream covers subject \"nostream.created\"");
    print_message("# %s\n", ack_of(&fx->th, 2).error);
    close_sink(&fx->th, sink);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 2);
}

/* Events that can never be messages are FATAL, each alone; the rest of the
 * batch goes through. */
static void test_bad_events_are_fatal_alone(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    void *sink = open_ok(&fx->th);
    static const struct {
        const char *subject, *hname, *hvalue, *key, *why;
    } cases[] = {
        {"orders.ok", NULL, NULL, "k", NULL},
        {"", NULL, NULL, "k", "is empty"},
        {"orders.*", NULL, NULL, "k", "wildcard"},
        {"orders.>", NULL, NULL, "k", "wildcard"},
        {"orders..x", NULL, NULL, "k", "empty token"},
        {"orders.with space", NULL, NULL, "k", "white space"},
        /* issue 13: the whole subject rule, each naming the event */
        {".orders", NULL, NULL, "k", "empty token"},
        {"orders.", NULL, NULL, "k", "subject \"orders.\" refused: it has an empty token"},
        {"orders.a*b", NULL, NULL, "k", "wildcard"},
        {"orders.a>", NULL, NULL, "k", "wildcard"},
        {"orders.\t", NULL, NULL, "k", "subject \"orders.\\x09\" refused: it has white space"},
        {"orders.x\x7f", NULL, NULL, "k", "control character"},
        {"orders.x\xc2\x85", NULL, NULL, "k", "control character"},
        {"orders.x\xff", NULL, NULL, "k", "subject \"orders.x\\xff\" refused: it is not valid UTF-8"},
        {"orders.x\xed\xa0\x80", NULL, NULL, "k", "not valid UTF-8"},
        {"orders.Zürich", NULL, NULL, "k", NULL},
        {"LONG", NULL, NULL, "k", NULL},
        {"LONG+", NULL, NULL, "k", "longer than 3072 bytes"},
        {"orders.ok", "bad name", "v", "k", "envelope header \"bad name\""},
        {"orders.ok", "a:b", "v", "k", "envelope header \"a:b\""},
        {"orders.ok", "x-h", "line\r\nbreak", "k", "line break"},
        {"orders.ok", "Nats-Expected-Stream", "OTHER", "k", "Nats- prefix is reserved"},
        {"orders.ok", "outbox-id", "fake", "k", "Outbox- prefix is reserved"},
        {"orders.ok", NULL, NULL, "bad\nkey", "Outbox-Key"},
        {"orders.ok", "x-fine", "v", NULL, NULL},
    };
    size_t n = sizeof cases / sizeof cases[0];
    test_event_t e[32];
    outbox_sink_event_t ev[32];
    outbox_sink_header_t h[32];
    /* LONG: the longest subject allowed, 3072 bytes; LONG+ one more. */
    static char longest[3072 + 2];
    memset(longest, 'x', sizeof longest - 1);
    memcpy(longest, "orders.", 7);
    longest[3072] = '\0';
    static char too_long[3072 + 2];
    memcpy(too_long, longest, 3072);
    memcpy(too_long + 3072, "y", 2);
    assert_true(n + 1 <= 32);
    for (size_t i = 0; i < n; i++) {
        make_event(&e[i], i + 1, cases[i].subject, (int)i);
        if (strcmp(cases[i].subject, "LONG") == 0) e[i].ev.destination = longest;
        if (strcmp(cases[i].subject, "LONG+") == 0) e[i].ev.destination = too_long;
        e[i].ev.key = cases[i].key;
        if (cases[i].hname) {
            h[i].name = cases[i].hname;
            h[i].value = cases[i].hvalue;
            e[i].ev.headers = &h[i];
            e[i].ev.n_headers = 1;
        }
        ev[i] = e[i].ev;
    }
    /* Larger than the server's max_payload (1 MiB by default). */
    size_t big_len = 1100 * 1024;
    unsigned char *big = malloc(big_len);
    memset(big, 'x', big_len);
    make_event(&e[n], n + 1, "orders.big", 0);
    e[n].ev.payload = big;
    e[n].ev.payload_len = big_len;
    ev[n] = e[n].ev;
    n++;

    publish_ok(sink, ev, n);
    wait_acks(&fx->th, sink, n, 10000);
    for (size_t i = 0; i + 1 < n; i++) {
        if (cases[i].why == NULL)
            assert_ack(&fx->th, i + 1, OUTBOX_SINK_OK, NULL);
        else
            assert_ack(&fx->th, i + 1, OUTBOX_SINK_FATAL, cases[i].why);
    }
    assert_ack(&fx->th, n, OUTBOX_SINK_FATAL, "max_payload");
    print_message("# %s\n", ack_of(&fx->th, n).error);
    /* A refused subject names the event. */
    for (size_t i = 0; i + 1 < n; i++) {
        if (strcmp(cases[i].subject, "orders.x\xff") != 0) continue;
        char says[64];
        snprintf(says, sizeof says, "nats sink: event %s: subject ", e[i].id);
        assert_ack(&fx->th, i + 1, OUTBOX_SINK_FATAL, says);
        print_message("# %s\n", ack_of(&fx->th, i + 1).error);
    }
    free(big);
    close_sink(&fx->th, sink);
    /* Only the good ones reached the server: orders.ok, x-fine, Zürich, LONG. */
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 4);
}

/* A plain subscriber that never answers stands where a stream should: no
 * 503, no PubAck either. The publish is RETRY after ack_timeout_ms; flush
 * says how many are outstanding; close leaves unacked what has no ack. */
static void test_no_puback_is_retry_and_close_acks_nothing_more(void **state) {
    fixture_t *fx = *state;
    char errbuf[512];
    start_jetstream(fx);
    natsSubscription *silent = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&silent, fx->nc, "silent.>"), NATS_OK);
    natsConnection_Flush(fx->nc);

    host_set(&fx->th, "ack_timeout_ms", "300");
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "silent.x", 1);
    publish_ok(sink, &e.ev, 1);
    wait_acks(&fx->th, sink, 1, 5000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_RETRY, "no PubAck for subject \"silent.x\" within 300 ms");
    close_sink(&fx->th, sink);

    /* With a long timeout: flush times out, close drops them unacked. */
    test_host_t th2;
    host_init(&th2);
    host_set(&th2, "servers", fx->srv.url);
    host_set(&th2, "ack_timeout_ms", "60000");
    sink = open_ok(&th2);
    test_event_t e2[3];
    outbox_sink_event_t ev[3];
    for (int i = 0; i < 3; i++) {
        make_event(&e2[i], (uint64_t)i + 1, "silent.y", i);
        ev[i] = e2[i].ev;
    }
    publish_ok(sink, ev, 3);
    assert_int_equal(plugin->flush(sink, 300, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "3 publish(es) still without a PubAck"));
    close_sink(&th2, sink);
    assert_int_equal(n_acks(&th2), 0);
    assert_true(logs_have(&th2, "3 unacked at close"));
    nap_ms(200); /* an ack after close would be reported by host_ack */
    assert_int_equal(n_acks(&th2), 0);
    host_done(&th2);
    natsSubscription_Destroy(silent);
}

/* max_pending in flight: the batch stops there; what is in flight keeps its
 * coming ack, the rest is handed back (RETRY) at once. */
static void test_max_pending_hands_back_the_rest(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    natsSubscription *silent = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&silent, fx->nc, "silent.>"), NATS_OK);
    natsConnection_Flush(fx->nc);
    host_set(&fx->th, "max_pending", "2");
    host_set(&fx->th, "ack_timeout_ms", "1000");
    void *sink = open_ok(&fx->th);
    test_event_t e[5];
    outbox_sink_event_t ev[5];
    for (int i = 0; i < 5; i++) {
        make_event(&e[i], (uint64_t)i + 1, "silent.z", i);
        ev[i] = e[i].ev;
    }
    publish_ok(sink, ev, 5);
    assert_int_equal(n_acks(&fx->th), 3);
    for (uint64_t seq = 3; seq <= 5; seq++) assert_ack(&fx->th, seq, OUTBOX_SINK_RETRY, "stalled");
    wait_acks(&fx->th, sink, 5, 5000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_RETRY, "no PubAck");
    assert_ack(&fx->th, 2, OUTBOX_SINK_RETRY, "no PubAck");
    close_sink(&fx->th, sink);
    natsSubscription_Destroy(silent);
}

/* option stream: the sink creates the stream with its subjects and window,
 * finds it the next time, and refuses events stored by another stream. */
static void test_sink_creates_its_stream(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx); /* ORDERS over orders.> exists too */
    host_set(&fx->th, "stream", "OUTBOX");
    host_set(&fx->th, "stream_subjects", "events.>, audit.x");
    host_set(&fx->th, "duplicate_window_s", "30");
    void *sink = open_ok(&fx->th);
    assert_true(logs_have(&fx->th, "created stream OUTBOX (subjects events.>, audit.x, file storage, "
                                   "duplicate window 30 s)"));
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, fx->js, "OUTBOX", NULL, NULL), NATS_OK);
    assert_int_equal(si->Config->SubjectsLen, 2);
    assert_string_equal(si->Config->Subjects[0], "events.>");
    assert_string_equal(si->Config->Subjects[1], "audit.x");
    assert_int_equal(si->Config->Duplicates, 30LL * 1000000000);
    assert_int_equal(si->Config->Storage, js_FileStorage);
    jsStreamInfo_Destroy(si);

    test_event_t e[2];
    outbox_sink_event_t ev[2];
    make_event(&e[0], 1, "events.created", 1);
    make_event(&e[1], 2, "orders.created", 2);
    ev[0] = e[0].ev;
    ev[1] = e[1].ev;
    publish_ok(sink, ev, 2);
    wait_acks(&fx->th, sink, 2, 10000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(&fx->th, 2, OUTBOX_SINK_FATAL, "is stored by another stream than \"OUTBOX\"");
    close_sink(&fx->th, sink);

    /* Again: it exists; another window is only a warning. */
    test_host_t th2;
    host_init(&th2);
    host_set(&th2, "servers", fx->srv.url);
    host_set(&th2, "stream", "OUTBOX");
    sink = open_ok(&th2);
    assert_true(logs_have(&th2, "stream OUTBOX exists (2 subject(s), duplicate window 30 s)"));
    assert_true(logs_have(&th2, "not duplicate_window_s=120"));
    close_sink(&th2, sink);
    host_done(&th2);

    /* Missing and no subjects to create it with; subjects another stream
     * has: FATAL naming stream_subjects. */
    char errbuf[1024];
    test_host_t th3;
    host_init(&th3);
    host_set(&th3, "servers", fx->srv.url);
    host_set(&th3, "stream", "NEW");
    assert_int_equal(open_sink(&th3, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "option stream_subjects"));
    host_set(&th3, "stream_subjects", "orders.>");
    assert_int_equal(open_sink(&th3, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "option stream_subjects: cannot create stream NEW"));
    host_done(&th3);
}

/* The server goes away: publish is RETRY (nothing is buffered); it comes
 * back on the same port and store: the sink reconnects by itself, and
 * what was in flight on the lost connection is handed back (RETRY), before
 * anything new is sent. */
static void test_server_down_then_back(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    start_jetstream(fx);
    natsSubscription *silent = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&silent, fx->nc, "silent.>"), NATS_OK);
    natsConnection_Flush(fx->nc);
    host_set(&fx->th, "reconnect_wait_ms", "100");
    host_set(&fx->th, "ack_timeout_ms", "60000");
    void *sink = open_ok(&fx->th);

    /* Two publishes that get no PubAck (a silent subscriber): in flight. */
    test_event_t e[4];
    for (int i = 0; i < 4; i++) make_event(&e[i], (uint64_t)i + 1, i < 2 ? "silent.a" : "orders.a", i);
    outbox_sink_event_t ev2[2] = {e[0].ev, e[1].ev};
    publish_ok(sink, ev2, 2);

    /* Until libnats sees the socket is dead, a publish may still be taken
     * (written into a dead socket): such events are in flight too. */
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    uint64_t seq = 100;
    for (; seq < 200 && rc == OUTBOX_SINK_OK; seq++) {
        e[3].ev.seq = seq;
        rc = publish(sink, &e[3].ev, 1, errbuf, sizeof errbuf);
        nap_ms(5);
    }
    uint64_t last_taken = seq - 2; /* seq - 1 got RETRY */
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "not connected to NATS"));
    assert_int_equal(n_acks(&fx->th), 0);
    print_message("# %llu publish(es) taken after the kill, before the drop was seen\n",
                  (unsigned long long)(last_taken - 99));

    natstest_server_start(&fx->srv, fx->dir, fx->srv.port);
    for (int i = 0; i < 200; i++) {
        rc = publish(sink, &e[2].ev, 1, errbuf, sizeof errbuf);
        if (rc == OUTBOX_SINK_OK) break;
        nap_ms(50);
    }
    if (rc != OUTBOX_SINK_OK) fail_msg("no recovery: %s", errbuf);
    wait_acks(&fx->th, sink, 3 + (size_t)(last_taken - 99), 10000);
    assert_ack(&fx->th, 1, OUTBOX_SINK_RETRY, "connection was lost");
    assert_ack(&fx->th, 2, OUTBOX_SINK_RETRY, "connection was lost");
    for (uint64_t s2 = 100; s2 <= last_taken; s2++) assert_ack(&fx->th, s2, OUTBOX_SINK_RETRY, "connection was lost");
    assert_ack(&fx->th, 3, OUTBOX_SINK_OK, NULL);
    assert_true(logs_have(&fx->th, "disconnected from NATS"));
    assert_true(logs_have(&fx->th, "reconnected to nats://127.0.0.1"));
    close_sink(&fx->th, sink);
    natsSubscription_Destroy(silent);
}

/* Core NATS: acked within publish once the flush returns; a live
 * subscriber gets the messages, headers included. */
static void test_core_mode(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, NULL);
    fx->nc = natstest_connect(fx->srv.url, NULL);
    natsSubscription *sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&sub, fx->nc, "live.>"), NATS_OK);
    natsConnection_Flush(fx->nc);
    host_set(&fx->th, "servers", fx->srv.url);
    host_set(&fx->th, "mode", "core");
    void *sink = open_ok(&fx->th);
    test_event_t e[3];
    outbox_sink_event_t ev[3];
    for (int i = 0; i < 3; i++) {
        make_event(&e[i], (uint64_t)i + 1, i == 1 ? "live.*" : "live.created", i);
        e[i].ev.key = NULL;
        ev[i] = e[i].ev;
    }
    publish_ok(sink, ev, 3);
    assert_int_equal(n_acks(&fx->th), 3); /* all within publish */
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(&fx->th, 2, OUTBOX_SINK_FATAL, "wildcard");
    assert_ack(&fx->th, 3, OUTBOX_SINK_OK, NULL);
    for (int i = 0; i < 3; i += 2) {
        natsMsg *m = NULL;
        assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
        assert_string_equal(natstest_header(m, "Outbox-Id"), e[i].id);
        assert_string_equal(natstest_header(m, "Nats-Msg-Id"), e[i].id);
        assert_string_equal(natstest_header(m, "Outbox-Key"), "");
        assert_int_equal(natstest_ordernr(m), i);
        natsMsg_Destroy(m);
    }
    assert_int_equal(plugin->flush(sink, 100, errbuf, sizeof errbuf), OUTBOX_SINK_OK);

    /* Server gone: RETRY, nothing acked. */
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    for (int i = 0; i < 100 && rc == OUTBOX_SINK_OK; i++) {
        e[0].ev.seq = 100 + (uint64_t)i;
        rc = publish(sink, &e[0].ev, 1, errbuf, sizeof errbuf);
        nap_ms(10);
    }
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    print_message("# core, server down: %s\n", errbuf);
    close_sink(&fx->th, sink);
    natsSubscription_Destroy(sub);
}

/* ----------------------------------------------------------------------------
 * Secrets, authentication and TLS (issue 13)
 * ------------------------------------------------------------------------- */

/* The project's test CA (tests/services/make-test-ca.sh): the harness's
 * (OUTBOX_TEST_TLS_DIR in services.env), else made by the script into the
 * test's directory. Files: ca.pem, server.pem, server-key.pem (CN and SAN
 * localhost, 127.0.0.1), client.pem, client-key.pem, other-ca.pem,
 * expired.pem, expired-key.pem. */
static const char *tls_dir(fixture_t *fx) {
    static char dir[512];
    const char *harness = test_service("OUTBOX_TEST_TLS_DIR");
    char probe[600];
    if (harness != NULL) {
        snprintf(probe, sizeof probe, "%s/expired-key.pem", harness);
        if (access(probe, R_OK) == 0) return harness;
    }
    const char *srcdir = getenv("OUTBOX_TEST_SRCDIR");
    char cmd[1400];
    snprintf(dir, sizeof dir, "%s/tls", fx->dir);
    snprintf(cmd, sizeof cmd, "'%s/tests/services/make-test-ca.sh' '%s' >'%s.log' 2>&1",
             srcdir ? srcdir : ".", dir, dir);
    if (system(cmd) != 0) TEST_SKIP("no test CA: tests/services/make-test-ca.sh failed (openssl?)");
    return dir;
}

static void tls_file(char *out, size_t size, const char *dir, const char *name) {
    snprintf(out, size, "%s/%s", dir, name);
}

/* The TLS options of a nats-server: its certificate and key, and the CA
 * that verifies client certificates when verify is set. */
typedef struct {
    char cert[600], key[600], ca[600];
    const char *argv[16];
} server_tls_t;

static const char *const *server_tls_args(server_tls_t *t, const char *dir, const char *cert,
                                          const char *key, int verify, const char *const *more) {
    int n = 0;
    tls_file(t->cert, sizeof t->cert, dir, cert);
    tls_file(t->key, sizeof t->key, dir, key);
    tls_file(t->ca, sizeof t->ca, dir, "ca.pem");
    if (verify) t->argv[n++] = "--tlsverify";
    else t->argv[n++] = "--tls";
    t->argv[n++] = "--tlscert";
    t->argv[n++] = t->cert;
    t->argv[n++] = "--tlskey";
    t->argv[n++] = t->key;
    t->argv[n++] = "--tlscacert";
    t->argv[n++] = t->ca;
    for (int i = 0; more && more[i] && n < 15; i++) t->argv[n++] = more[i];
    t->argv[n] = NULL;
    return t->argv;
}

/* TLS with the project's CA: the server's certificate is checked, chain
 * and name (libnats checks the name only when told it: the sink tells it
 * the first server's host, or tls_hostname); a client certificate is sent
 * when the server asks for one. */
static bool tls_used; /* see main */

static void test_tls(void **state) {
    fixture_t *fx = *state;
    char ca[600], cert[600], key[600], url[128], errbuf[1024];
    server_tls_t st;
    natstest_require_server();
    const char *dir = tls_dir(fx);
    tls_file(ca, sizeof ca, dir, "ca.pem");
    tls_file(cert, sizeof cert, dir, "client.pem");
    tls_file(key, sizeof key, dir, "client-key.pem");
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0,
                               server_tls_args(&st, dir, "server.pem", "server-key.pem", 1, NULL));
    snprintf(url, sizeof url, "tls://localhost:%d", fx->srv.port);
    tls_used = true;

    host_set(&fx->th, "servers", url);
    host_set(&fx->th, "mode", "core");
    host_set(&fx->th, "tls_ca", ca);
    host_set(&fx->th, "tls_cert", cert);
    host_set(&fx->th, "tls_key", key);
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.x", 1);
    publish_ok(sink, &e.ev, 1);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(&fx->th, sink);

    /* The wrong name, no client certificate, an unknown CA: refused. */
    static const struct {
        const char *key, *value;
    } wrong[] = {{"tls_hostname", "other.example"}, {"tls_cert", NULL}, {"tls_ca", NULL}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        test_host_t th;
        host_init(&th);
        host_set(&th, "servers", url);
        host_set(&th, "mode", "core");
        host_set(&th, "connect_timeout_ms", "1000");
        host_set(&th, "tls_ca", ca);
        host_set(&th, "tls_cert", cert);
        host_set(&th, "tls_key", key);
        host_set(&th, wrong[i].key, wrong[i].value);
        if (strcmp(wrong[i].key, "tls_cert") == 0) host_set(&th, "tls_key", NULL);
        int rc = open_sink(&th, &sink, errbuf, sizeof errbuf);
        print_message("# %s=%s: %s\n", wrong[i].key, wrong[i].value ? wrong[i].value : "(none)", errbuf);
        if (rc != OUTBOX_SINK_RETRY) fail_msg("%s: open gave %d: %s", wrong[i].key, rc, errbuf);
        assert_non_null(strstr(errbuf, "cannot connect"));
        host_done(&th);
    }
}

/* issue 13: a password holding '/' in a servers URL used to pass the
 * masking (which stopped at the '/') and showed in every open error and
 * every "reconnecting to" retry message. The sink prints scheme://host:port
 * only: the test opens against a port nothing listens on, then against a
 * server that wants that password, takes it down and publishes (RETRY,
 * "reconnecting to ..."), and finds the secret nowhere. */
static void test_server_url_password_never_printed(void **state) {
    fixture_t *fx = *state;
    char url[200], errbuf[1024];
    void *sink;
    int port = natstest_free_port();
    static const char *const forms[] = {"nats://user:Nats/S3CRET@127.0.0.1:",
                                        "nats://user:Nats@S3CRET@127.0.0.1:",
                                        "tls://Nats/S3CRET-token@127.0.0.1:"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char list[300];
        snprintf(url, sizeof url, "%s%d", forms[i], port);
        snprintf(list, sizeof list, "nats://127.0.0.1:%d, %s", port, url);
        test_host_t th;
        host_init(&th);
        host_set(&th, "servers", list);
        host_set(&th, "mode", "core");
        host_set(&th, "connect_timeout_ms", "300");
        host_set(&th, "tls_ca", i == 2 ? "/nonexistent-ca.pem" : NULL);
        int rc = open_sink(&th, &sink, errbuf, sizeof errbuf);
        print_message("# %s: %d: %s\n", forms[i], rc, errbuf);
        assert_true(rc != OUTBOX_SINK_OK);
        if (strstr(errbuf, "S3CRET") != NULL) fail_msg("%s shows the secret: %s", forms[i], errbuf);
        assert_false(logs_have(&th, "S3CRET"));
        host_done(&th);
    }

    /* A server that wants the password: connected through the URL's
     * credentials; then down, and every message about it clean. */
    const char *extra[] = {"--user", "user", "--pass", "Nats/S3CRET", NULL};
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, extra);
    snprintf(url, sizeof url, "nats://user:Nats/S3CRET@127.0.0.1:%d", fx->srv.port);
    host_set(&fx->th, "servers", url);
    host_set(&fx->th, "mode", "core");
    host_set(&fx->th, "reconnect_wait_ms", "50");
    sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "core.x", 1);
    publish_ok(sink, &e.ev, 1);
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    for (int i = 0; i < 200 && rc == OUTBOX_SINK_OK; i++) {
        e.ev.seq = 10 + (uint64_t)i;
        rc = publish(sink, &e.ev, 1, errbuf, sizeof errbuf);
        nap_ms(10);
    }
    print_message("# server down: %d: %s\n", rc, errbuf);
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_null(strstr(errbuf, "S3CRET"));
    char shown[64];
    snprintf(shown, sizeof shown, "nats://127.0.0.1:%d", fx->srv.port);
    assert_non_null(strstr(errbuf, shown));
    close_sink(&fx->th, sink);
    assert_true(logs_have(&fx->th, "disconnected from NATS"));
    assert_false(logs_have(&fx->th, "S3CRET"));
}

/* Over TLS (the project's CA, no client certificate), a user and
 * password given as values, as outboxd passes them after resolving
 * {file: PATH} or {env: NAME}; then a token the same way. The right ones
 * deliver; a wrong password is RETRY (README: a corrected secret is picked
 * up at the next open) with the server's "Authorization Violation", the
 * same text at each attempt, and no log line of the sink's own; no secret
 * anywhere. */
static void test_tls_with_user_and_password(void **state) {
    fixture_t *fx = *state;
    char ca[600], url[128], errbuf[1024], first[1024] = "";
    server_tls_t st;
    natstest_require_server();
    const char *dir = tls_dir(fx);
    tls_file(ca, sizeof ca, dir, "ca.pem");
    const char *auth[] = {"--user", "outboxd", "--pass", "Pw/TLS@S3CRET", NULL};
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0,
                               server_tls_args(&st, dir, "server.pem", "server-key.pem", 0, auth));
    snprintf(url, sizeof url, "nats://localhost:%d", fx->srv.port);
    tls_used = true;

    host_set(&fx->th, "servers", url);
    host_set(&fx->th, "mode", "core");
    host_set(&fx->th, "tls_ca", ca);
    host_set(&fx->th, "user", "outboxd");
    host_set(&fx->th, "password", "Pw/TLS@S3CRET");
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.auth", 1);
    publish_ok(sink, &e.ev, 1);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(&fx->th, sink);

    test_host_t th;
    host_init(&th);
    host_set(&th, "servers", url);
    host_set(&th, "mode", "core");
    host_set(&th, "tls_ca", ca);
    host_set(&th, "user", "outboxd");
    host_set(&th, "password", "Wrong/S3CRET-pw");
    for (int attempt = 0; attempt < 3; attempt++) {
        assert_int_equal(open_sink(&th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (attempt == 0) snprintf(first, sizeof first, "%s", errbuf);
        else assert_string_equal(errbuf, first);
    }
    print_message("# wrong password over TLS: %s\n", first);
    assert_non_null(strstr(first, "uthorization"));
    assert_null(strstr(first, "S3CRET"));
    assert_true(th.logs == NULL); /* nothing logged per attempt */
    host_done(&th);

    /* Both ways at once, or half of one: FATAL, naming the option. */
    static const struct {
        const char *k1, *v1, *k2, *v2, *says;
    } bad[] = {
        {"password", "x", "password_file", "/etc/hostname", "set password or password_file"},
        {"token", "x", "token_file", "/etc/hostname", "set token or token_file"},
        {"token", "x", "user", "u", "use one way to authenticate"},
        {"password", "x", NULL, NULL, "option user: user and password go together"},
        {"nkey", "UABC", NULL, NULL, "nkey and nkey_seed_file go together"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        host_init(&th);
        host_set(&th, "servers", url);
        host_set(&th, bad[i].k1, bad[i].v1);
        if (bad[i].k2) host_set(&th, bad[i].k2, bad[i].v2);
        assert_int_equal(open_sink(&th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
        if (strstr(errbuf, bad[i].says) == NULL) fail_msg("\"%s\" does not say \"%s\"", errbuf, bad[i].says);
        host_done(&th);
    }
    assert_false(logs_have(&fx->th, "S3CRET"));
}

/* ---- NKeys: made with the openssl program, encoded as NATS does -------- */

/* RFC 4648 base32 without padding, as the nkeys library writes it. */
static void base32(const unsigned char *in, size_t n, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned buffer = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0) out[o++] = alphabet[(buffer << (5 - bits)) & 31];
    out[o] = '\0';
}

/* CRC-16/XMODEM, the nkeys checksum, appended little-endian. */
static unsigned crc16(const unsigned char *p, size_t n) {
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

/* The last 32 bytes of a DER file: the raw Ed25519 key of a PKCS#8 private
 * key (the seed) or of a SubjectPublicKeyInfo. */
static void der_tail32(const char *path, unsigned char out[32]) {
    unsigned char buf[256];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n >= 32);
    memcpy(out, buf + n - 32, 32);
}

/* A user NKey pair: the public key (U..., 56 characters) into pub, the
 * seed (SU...) into the file seed_path. Skips without openssl. */
static void make_user_nkey(const char *dir, char pub[64], char *seed_path, size_t size) {
    char cmd[1400], der[600], pubder[600], seed_text[80];
    unsigned char raw[40], seed[32], key[32];
    snprintf(der, sizeof der, "%s/nkey.der", dir);
    snprintf(pubder, sizeof pubder, "%s/nkey.pub.der", dir);
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm ed25519 -outform DER -out '%s' 2>/dev/null &&"
             " openssl pkey -inform DER -in '%s' -pubout -outform DER -out '%s' 2>/dev/null",
             der, der, pubder);
    if (system(cmd) != 0) TEST_SKIP("the openssl program cannot make an Ed25519 key");
    der_tail32(der, seed);
    der_tail32(pubder, key);
    /* Public: prefix 'U' (20 << 3), key, crc. */
    raw[0] = 20 << 3;
    memcpy(raw + 1, key, 32);
    unsigned crc = crc16(raw, 33);
    raw[33] = crc & 0xff;
    raw[34] = crc >> 8;
    base32(raw, 35, pub);
    /* Seed: 'S' (18 << 3) and 'U' in two bytes, seed, crc. */
    raw[0] = (18 << 3) | ((20 << 3) >> 5);
    raw[1] = ((20 << 3) & 31) << 3;
    memcpy(raw + 2, seed, 32);
    crc = crc16(raw, 34);
    raw[34] = crc & 0xff;
    raw[35] = crc >> 8;
    base32(raw, 36, seed_text);
    snprintf(seed_path, size, "%s/user.nk", dir);
    FILE *f = fopen(seed_path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", seed_text);
    fclose(f);
    chmod(seed_path, 0600);
    explicit_bzero(seed, sizeof seed);
    explicit_bzero(seed_text, sizeof seed_text);
}

/* Over TLS with a client certificate, NKey authentication: the server
 * knows the user's public key only; libnats signs the server's nonce with
 * the seed from nkey_seed_file. Another key's seed is refused (RETRY), and
 * the seed shows nowhere. (A creds file needs a user JWT signed by an
 * account of an operator: Debian has no nsc to make one; the option
 * creds_file is the same libnats call with the JWT added.) */
static void test_tls_with_nkey(void **state) {
    fixture_t *fx = *state;
    char ca[600], cert[600], key[600], url[128], errbuf[1024];
    char pub[64], seed_file[600], conf[600], other_pub[64], other_seed[600], other_dir[600];
    server_tls_t st;
    natstest_require_server();
    const char *dir = tls_dir(fx);
    tls_file(ca, sizeof ca, dir, "ca.pem");
    tls_file(cert, sizeof cert, dir, "client.pem");
    tls_file(key, sizeof key, dir, "client-key.pem");
    make_user_nkey(fx->dir, pub, seed_file, sizeof seed_file);
    snprintf(other_dir, sizeof other_dir, "%s/other", fx->dir);
    mkdir(other_dir, 0700);
    make_user_nkey(other_dir, other_pub, other_seed, sizeof other_seed);
    assert_int_equal(strlen(pub), 56);

    snprintf(conf, sizeof conf, "%s/nkey.conf", fx->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "authorization { users = [ { nkey: \"%s\" } ] }\n", pub);
    fclose(f);
    const char *more[] = {"-c", conf, NULL};
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0,
                               server_tls_args(&st, dir, "server.pem", "server-key.pem", 1, more));
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", fx->srv.port);
    tls_used = true;

    host_set(&fx->th, "servers", url);
    host_set(&fx->th, "mode", "core");
    host_set(&fx->th, "tls_ca", ca);
    host_set(&fx->th, "tls_cert", cert);
    host_set(&fx->th, "tls_key", key);
    host_set(&fx->th, "tls_hostname", "localhost");
    host_set(&fx->th, "nkey", pub);
    host_set(&fx->th, "nkey_seed_file", seed_file);
    void *sink = open_ok(&fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.nkey", 1);
    publish_ok(sink, &e.ev, 1);
    assert_ack(&fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(&fx->th, sink);

    /* The public key with another key's seed: the signature fails. */
    host_set(&fx->th, "nkey_seed_file", other_seed);
    assert_int_equal(open_sink(&fx->th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    print_message("# nkey with another seed: %s\n", errbuf);
    assert_non_null(strstr(errbuf, "cannot connect"));
    /* A seed where the public key belongs. */
    host_set(&fx->th, "nkey", "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU");
    assert_int_equal(open_sink(&fx->th, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "option nkey: not a user's public NKey"));
    assert_null(strstr(errbuf, "SUAML"));

    char *seed = test_read_file(seed_file);
    assert_non_null(seed);
    seed[strcspn(seed, "\n")] = '\0';
    assert_false(logs_have(&fx->th, seed));
    assert_null(strstr(errbuf, seed));
    free(seed);
}

/* A certificate the sink cannot trust: the server's from another CA (the
 * sink's tls_ca is other-ca.pem), or the right CA's but expired. Open is
 * RETRY (the certificate may be renewed) with a message that says so, the
 * same at each attempt so that outboxd's log can say it once, and the
 * sink logs nothing of its own per attempt. Never a crash (the process's
 * exit with TLS used is main's business: libnats 3.4.1's exit handler). */
static void test_tls_wrong_ca_and_expired_certificate(void **state) {
    fixture_t *fx = *state;
    char ca[600], other_ca[600], url[128], errbuf[1024], first[1024];
    server_tls_t st;
    natstest_require_server();
    const char *dir = tls_dir(fx);
    tls_file(ca, sizeof ca, dir, "ca.pem");
    tls_file(other_ca, sizeof other_ca, dir, "other-ca.pem");
    tls_used = true;

    for (int round = 0; round < 2; round++) {
        natstest_server_start_with(&fx->srv, fx->dir, 0, 0,
                                   server_tls_args(&st, dir, round ? "expired.pem" : "server.pem",
                                                   round ? "expired-key.pem" : "server-key.pem", 0, NULL));
        snprintf(url, sizeof url, "tls://localhost:%d", fx->srv.port);
        test_host_t th;
        host_init(&th);
        host_set(&th, "servers", url);
        host_set(&th, "mode", "core");
        host_set(&th, "connect_timeout_ms", "1000");
        host_set(&th, "tls_ca", round ? ca : other_ca);
        for (int attempt = 0; attempt < 3; attempt++) {
            void *sink;
            int rc = open_sink(&th, &sink, errbuf, sizeof errbuf);
            if (rc != OUTBOX_SINK_RETRY) fail_msg("round %d: open gave %d: %s", round, rc, errbuf);
            if (attempt == 0) snprintf(first, sizeof first, "%s", errbuf);
            else assert_string_equal(errbuf, first);
        }
        print_message("# %s: %s\n", round ? "expired server certificate" : "wrong CA", first);
        assert_non_null(strstr(first, "cannot connect to tls://localhost:"));
        assert_non_null(strstr(first, round ? "certificate has expired" : "unable to get local issuer certificate"));
        assert_non_null(strstr(first, "the TLS handshake failed: check tls_ca"));
        assert_true(th.logs == NULL);
        host_done(&th);
        natstest_server_stop(&fx->srv, SIGTERM);
    }
}

/* Two instances at once share nothing (each its connection and acks). */
static void test_two_instances(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    test_host_t th2;
    host_init(&th2);
    host_set(&th2, "servers", fx->srv.url);
    host_set(&th2, "max_pending", "10");
    void *a = open_ok(&fx->th), *b = open_ok(&th2);
    test_event_t e[200];
    for (int i = 0; i < 200; i++) make_event(&e[i], (uint64_t)i, "orders.created", i);
    for (int i = 0; i < 200; i += 20) {
        outbox_sink_event_t batch[10];
        for (int j = 0; j < 10; j++) batch[j] = e[i + j].ev;
        publish_ok(a, batch, 10);
        for (int j = 0; j < 10; j++) batch[j] = e[i + 10 + j].ev;
        publish_ok(b, batch, 10);
        wait_acks(&th2, b, (size_t)(i / 20 + 1) * 10, 10000);
    }
    wait_acks(&fx->th, a, 100, 10000);
    close_sink(&fx->th, a);
    close_sink(&th2, b);
    assert_int_equal(n_acks(&fx->th), 100);
    assert_int_equal(n_acks(&th2), 100);
    host_done(&th2);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identification),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_is_retry_and_hides_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_password_and_token_stay_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_jetstream_is_retry_with_a_clear_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jetstream_pubacks_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_is_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subject_without_stream_is_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_events_are_fatal_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_puback_is_retry_and_close_acks_nothing_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_pending_hands_back_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_creates_its_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_down_then_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_url_password_never_printed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_with_user_and_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_with_nkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_wrong_ca_and_expired_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
    };
    int failed = TEST_RUN("nats sink", tests);
    /* libnats's global threads and memory: gone before exit, so that
     * valgrind and LeakSanitizer see a clean process. The plugin itself
     * never does this (other sinks may share libnats). Not after TLS was
     * used: then libnats 3.4.1's exit handler frees OpenSSL's compression
     * method list, which OpenSSL 3 frees again (a double free at exit),
     * and it does so only when nats_Close has brought libnats's references
     * to zero. */
    if (!tls_used) nats_CloseAndWait(5000);
    if (module != NULL) dlclose(module);
    return failed;
}
