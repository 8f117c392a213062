/*
 * test_nats_sink.c - drives the built NATS sink plugin the way outboxd does,
 * through tests/sinkhost.h (outboxd's own loader and option code, every
 * ack and log line recorded, the contract's rules counted), against
 * nats-server processes the test starts itself. No MongoDB needed.
 *
 * It pins down what each outcome maps to: PubAck -> OK (a duplicate too),
 * no stream for the subject -> FATAL naming it, no PubAck in time -> RETRY,
 * a bad event (subject, header, size) -> FATAL for that event only, a
 * server that is down -> RETRY, publishes in flight across a reconnect ->
 * RETRY, max_pending in flight -> a batch taken in part; that check refuses
 * bad options with no server and open refuses them too (FATAL naming the
 * option); that secrets come through password_file/token_file and never
 * reach a log line or an error; and the figures stats reports.
 */
#include "testlib.h"
#include "natstest.h"
#include "sinkhost.h"

#include <outbox/sink.h>

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

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ----------------------------------------------------------------------------
 * Driving the plugin through the shared test host
 * ------------------------------------------------------------------------- */

static sinkhost_t *new_host(void) {
    sinkhost_t *h = sinkhost_new("nats");
    if (h == NULL) fail_msg("cannot load the nats plugin (see above)");
    return h;
}

/* No rule of sink.h broken (one ack per event, none outside open..close,
 * none for an event not taken, flush not early), then freed. */
static void done_host(sinkhost_t *h) {
    if (h == NULL) return;
    sinkhost_close(h);
    for (int rule = 0; rule < SINKHOST_N_RULES; rule++) {
        char first[512];
        if (sinkhost_violations(h, (sinkhost_rule_t)rule, first, sizeof first) != 0)
            fail_msg("the sink broke rule %d of sink.h: %s", rule, first);
    }
    sinkhost_free(h);
}

static int open_sink(sinkhost_t *h, char *errbuf, size_t size) {
    return sinkhost_open(h, errbuf, size);
}

static void open_ok(sinkhost_t *h) {
    char errbuf[1024];
    int rc = open_sink(h, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open gave %d: %s", rc, errbuf);
}

static void close_sink(sinkhost_t *h) {
    sinkhost_close(h);
}

/* Polls (as outboxd does between batches) until n acks have come. */
static void wait_acks(sinkhost_t *h, size_t n, int timeout_ms) {
    if (!sinkhost_wait_acks(h, n, timeout_ms))
        fail_msg("%zu of %zu acks after %d ms", sinkhost_n_acks(h), n, timeout_ms);
}

static int publish(sinkhost_t *h, const outbox_sink_event_t *ev, size_t n, char *errbuf, size_t size) {
    size_t taken = 0;
    return sinkhost_publish(h, ev, n, &taken, errbuf, size);
}

/* OK, and the whole batch taken. */
static void publish_ok(sinkhost_t *h, const outbox_sink_event_t *ev, size_t n) {
    char errbuf[1024];
    size_t taken = 0;
    int rc = sinkhost_publish(h, ev, n, &taken, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK || taken != n) fail_msg("publish gave %d, took %zu of %zu: %s", rc, taken, n, errbuf);
}

static size_t n_acks(sinkhost_t *h) {
    return sinkhost_n_acks(h);
}

/* The one ack for seq (fails when there is none or more than one). */
static sinkhost_ack_t ack_of(sinkhost_t *h, uint64_t seq) {
    sinkhost_ack_t found;
    size_t count = sinkhost_acks_for(h, seq);
    if (count != 1 || !sinkhost_ack_of(h, seq, &found))
        fail_msg("event %llu acked %zu times", (unsigned long long)seq, count);
    return found;
}

static void assert_ack(sinkhost_t *h, uint64_t seq, outbox_sink_status_t status, const char *text) {
    sinkhost_ack_t a = ack_of(h, seq);
    if (a.status != status)
        fail_msg("event %llu acked %d (%s), expected %d", (unsigned long long)seq, (int)a.status, a.error,
                 (int)status);
    if (text != NULL && strstr(a.error, text) == NULL)
        fail_msg("event %llu: ack error \"%s\" does not say \"%s\"", (unsigned long long)seq, a.error, text);
}

static int logs_have(sinkhost_t *h, const char *text) {
    return strstr(sinkhost_log(h), text) != NULL;
}

static int logs_empty(sinkhost_t *h) {
    return sinkhost_log(h)[0] == '\0';
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
    sinkhost_t *th;
    natstest_server_t srv;
    natsConnection *nc; /* the test's own connection, when it has one */
    jsCtx *js;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/outbox-test-nats-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) return -1;
    fx->th = new_host();
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    char cmd[400];
    natstest_disconnect(fx->nc, fx->js);
    natstest_server_stop(&fx->srv, SIGTERM);
    done_host(fx->th);
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
    sinkhost_set(fx->th, "servers", fx->srv.url);
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    sinkhost_t *h = new_host();
    const outbox_sink_plugin_t *plugin = sinkhost_plugin(h);
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_int_equal(plugin->abi_minor, OUTBOX_SINK_ABI_MINOR);
    assert_string_equal(plugin->build_tag, OUTBOX_SINK_BUILD_TAG);
    assert_string_equal(plugin->name, "nats");
    assert_non_null(plugin->poll);
    assert_non_null(plugin->flush);
    assert_non_null(plugin->check);
    assert_non_null(plugin->publish_some);
    assert_non_null(plugin->stats);
    assert_int_equal(plugin->payloads, OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON);
    /* The keys users write keep working: password_file and token_file are
     * the host's KEY_file form of the SECRET options password and token. */
    static const struct {
        const char *key;
        outbox_sink_option_type_t type;
    } want[] = {{"servers", OUTBOX_SINK_OPT_LIST}, {"mode", OUTBOX_SINK_OPT_ENUM},
                {"creds_file", OUTBOX_SINK_OPT_STRING}, {"user", OUTBOX_SINK_OPT_STRING},
                {"password", OUTBOX_SINK_OPT_SECRET}, {"token", OUTBOX_SINK_OPT_SECRET},
                {"nkey", OUTBOX_SINK_OPT_STRING}, {"nkey_seed_file", OUTBOX_SINK_OPT_STRING},
                {"tls_ca", OUTBOX_SINK_OPT_STRING}, {"tls_cert", OUTBOX_SINK_OPT_STRING},
                {"tls_key", OUTBOX_SINK_OPT_STRING}, {"tls_hostname", OUTBOX_SINK_OPT_STRING},
                {"connect_timeout_ms", OUTBOX_SINK_OPT_DURATION}, {"max_reconnect", OUTBOX_SINK_OPT_INT},
                {"reconnect_wait_ms", OUTBOX_SINK_OPT_DURATION}, {"max_pending", OUTBOX_SINK_OPT_INT},
                {"ack_timeout_ms", OUTBOX_SINK_OPT_DURATION}, {"stream", OUTBOX_SINK_OPT_STRING},
                {"stream_subjects", OUTBOX_SINK_OPT_LIST}, {"duplicate_window_s", OUTBOX_SINK_OPT_INT}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const outbox_sink_option_t *o = plugin->options;
        while (o->key != NULL && strcmp(o->key, want[i].key) != 0) o++;
        if (o->key == NULL) fail_msg("option %s is not in the table", want[i].key);
        if (o->type != want[i].type) fail_msg("option %s has type %d, not %d", o->key, o->type, want[i].type);
        if (!(o->flags & OUTBOX_SINK_OPTION_MAPPED)) fail_msg("option %s is not mapped", o->key);
    }
    done_host(h);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Each bad option is refused by check, with no server anywhere (servers
 * point at a port nothing listens on, and check never connects), the
 * message naming the option and, for the plugin's own rules, the option's
 * line; open refuses it the same way (FATAL, naming the option). */
static void test_check_and_open_refuse_bad_options(void **state) {
    fixture_t *fx = *state;
    char empty[300], missing[300], pw[300];
    snprintf(empty, sizeof empty, "%s/empty", fx->dir);
    snprintf(missing, sizeof missing, "%s/missing", fx->dir);
    snprintf(pw, sizeof pw, "%s/pw", fx->dir);
    write_file(empty, "\n");
    write_file(pw, "pw\n");
    static const struct {
        const char *key, *value, *key2, *value2, *says;
        int line; /* the line check must report (the option's order): 0 for the host's own errors */
    } bad[] = {
        {"mode", "fast", NULL, NULL, "mode", 0},
        {"servers", "", NULL, NULL, "servers", 0},
        {"servers", "http://127.0.0.1:4222", NULL, NULL, "servers: \"http://127.0.0.1:4222\" is not a server URL", 1},
        {"servers", "nats://127.0.0.1:4222,,nats://127.0.0.1:4223", NULL, NULL, "servers", 0},
        {"servers", "nats://127.0.0.1:99999", NULL, NULL, "its port is not 1 to 65535", 1},
        {"servers", "nats://127.0.0.1:4222, nats://:4222", NULL, NULL, "\"nats://:4222\" is not a server URL", 1},
        {"servers", "tls://nats1:4222/x", NULL, NULL, "has a path", 1},
        {"servers", "nats://u:S3CRET@[::1:4222", NULL, NULL, "\"nats://[::1:4222\"", 1},
        {"max_pending", "0", NULL, NULL, "max_pending", 0},
        {"max_pending", "many", NULL, NULL, "max_pending", 0},
        {"ack_timeout_ms", "5", NULL, NULL, "ack_timeout_ms", 0},
        {"ack_timeout_ms", "5 parsecs", NULL, NULL, "ack_timeout_ms", 0},
        {"max_reconnect", "-2", NULL, NULL, "max_reconnect", 0},
        {"reconnect_wait_ms", "-1", NULL, NULL, "reconnect_wait_ms", 0},
        {"connect_timeout_ms", "0", NULL, NULL, "connect_timeout_ms", 0},
        {"duplicate_window_s", "0", NULL, NULL, "duplicate_window_s", 0},
        {"user", "alice", NULL, NULL, "password: user and password go together", 0},
        {"password_file", "EMPTY", "user", "alice", "password", 0},
        {"password_file", "MISSING", "user", "alice", "password_file", 0},
        {"password", "x", "password_file", "PW", "password", 0},
        {"token_file", "MISSING", NULL, NULL, "token_file", 0},
        {"token", "x", "user", "u", "token: use one way to authenticate", 2},
        {"token_file", "PW", "creds_file", "MISSING", "creds_file: use one way to authenticate", 3},
        {"creds_file", "MISSING", NULL, NULL, "creds_file: cannot read", 2},
        {"nkey", "UABC", NULL, NULL, "nkey_seed_file: nkey and nkey_seed_file go together", 0},
        {"nkey", "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU", "nkey_seed_file", "PW",
         "nkey: not a user's public NKey", 2},
        {"tls_key", "MISSING", NULL, NULL, "tls_cert: tls_cert and tls_key go together", 0},
        {"tls_ca", "MISSING", NULL, NULL, "tls_ca: cannot load", 2},
        {"tls_cert", "MISSING", "tls_key", "MISSING", "tls_cert: cannot load", 2},
        {"stream", "a.b", NULL, NULL, "stream: \"a.b\" is not a stream name", 2},
        {"stream", "ORDERS", "mode", "core", "stream: only with mode jetstream", 2},
        {"stream_subjects", "orders.>", NULL, NULL, "stream_subjects: needs option stream", 2},
        {"tls_hostname", "example.org", NULL, NULL, "tls_hostname: TLS is off", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char errbuf[1024], at[64];
        sinkhost_t *th = new_host();
        sinkhost_set(th, "servers", "nats://127.0.0.1:1");
#define FILE_VALUE(v)                                                                                   \
    (strcmp(v, "EMPTY") == 0 ? empty : strcmp(v, "MISSING") == 0 ? missing : strcmp(v, "PW") == 0 ? pw \
                                                                                                    : v)
        sinkhost_set(th, bad[i].key, FILE_VALUE(bad[i].value));
        if (bad[i].key2) sinkhost_set(th, bad[i].key2, FILE_VALUE(bad[i].value2));
        int rc = sinkhost_check(th, errbuf, sizeof errbuf);
        print_message("# check %s=\"%s\": %s\n", bad[i].key, bad[i].value, errbuf);
        if (rc != OUTBOX_SINK_FATAL || strstr(errbuf, bad[i].says) == NULL)
            fail_msg("%s=\"%s\": check gave %d and does not say \"%s\": %s", bad[i].key, bad[i].value, rc,
                     bad[i].says, errbuf);
        snprintf(at, sizeof at, "sinkhost:%d:", bad[i].line);
        if (bad[i].line != 0 && strncmp(errbuf, at, strlen(at)) != 0)
            fail_msg("%s=\"%s\": check does not point at line %d: %s", bad[i].key, bad[i].value, bad[i].line,
                     errbuf);
        assert_null(strstr(errbuf, "S3CRET"));
        rc = open_sink(th, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL || strstr(errbuf, bad[i].says) == NULL)
            fail_msg("%s=\"%s\": open gave %d and does not say \"%s\": %s", bad[i].key, bad[i].value, rc,
                     bad[i].says, errbuf);
        assert_null(sinkhost_state(th));
        done_host(th);
    }
}

static const char *tls_dir(fixture_t *fx);
static bool tls_used; /* see main */

/* check with good options, some of them files it must load (a CA), is OK
 * with no server running: it never connects. */
static void test_check_passes_offline(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024], ca[600], cert[600], key[600];
    const char *dir = tls_dir(fx);
    tls_used = true; /* libnats's TLS is set up by loading the CA */
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/client.pem", dir);
    snprintf(key, sizeof key, "%s/client-key.pem", dir);
    sinkhost_set(fx->th, "servers", "tls://nats1.invalid:4222, nats://u:p@[::1]:1");
    sinkhost_set(fx->th, "tls_ca", ca);
    sinkhost_set(fx->th, "tls_cert", cert);
    sinkhost_set(fx->th, "tls_key", key);
    sinkhost_set(fx->th, "ack_timeout_ms", "10s");
    sinkhost_set(fx->th, "stream", "OUTBOX");
    sinkhost_set(fx->th, "stream_subjects", "events.>, audit.x");
    if (sinkhost_check(fx->th, errbuf, sizeof errbuf) != OUTBOX_SINK_OK) fail_msg("check refused: %s", errbuf);
    assert_true(logs_empty(fx->th));
}

/* Nothing listens: RETRY (outboxd tries again), with the server named and
 * its credentials masked. */
static void test_unreachable_is_retry_and_hides_credentials(void **state) {
    fixture_t *fx = *state;
    char url[128], errbuf[1024];
    snprintf(url, sizeof url, "nats://alice:s3cr3t-pw@127.0.0.1:%d", natstest_free_port());
    sinkhost_set(fx->th, "servers", url);
    sinkhost_set(fx->th, "connect_timeout_ms", "500");
    assert_int_equal(open_sink(fx->th, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    if (strstr(errbuf, "cannot connect") == NULL || strstr(errbuf, "127.0.0.1") == NULL)
        fail_msg("unclear: %s", errbuf);
    if (strstr(errbuf, "s3cr3t") != NULL || strstr(errbuf, "alice") != NULL)
        fail_msg("credentials shown: %s", errbuf);
    assert_false(logs_have(fx->th, "s3cr3t"));
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

    sinkhost_set(fx->th, "servers", fx->srv.url);
    sinkhost_set(fx->th, "mode", "core");
    sinkhost_set(fx->th, "user", "alice");
    sinkhost_set(fx->th, "password_file", pw);
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "core.x", 1);
    publish_ok(fx->th, &e.ev, 1);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(fx->th);

    /* A wrong password: RETRY (the file may be fixed), saying why. */
    sinkhost_set(fx->th, "password_file", wrong);
    assert_int_equal(open_sink(fx->th, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    print_message("# wrong password: %s\n", errbuf);
    if (strstr(errbuf, "uthoriz") == NULL) fail_msg("the error does not say why: %s", errbuf);
    assert_null(strstr(errbuf, "QUUX"));

    /* A token where the server wants a user: refused, not logged. */
    sinkhost_t *th2 = new_host();
    sinkhost_set(th2, "servers", fx->srv.url);
    sinkhost_set(th2, "token_file", token);
    assert_int_equal(open_sink(th2, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    assert_null(strstr(errbuf, "FROB"));
    assert_false(logs_have(th2, "FROB"));
    done_host(th2);
    assert_false(logs_have(fx->th, "XYZZY"));
    assert_false(logs_have(fx->th, "QUUX"));
}

/* A server without JetStream: RETRY, and the message says what to do. */
static void test_no_jetstream_is_retry_with_a_clear_message(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, NULL);
    sinkhost_set(fx->th, "servers", fx->srv.url);
    sinkhost_set(fx->th, "ack_timeout_ms", "1000");
    assert_int_equal(open_sink(fx->th, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
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
    open_ok(fx->th);
    test_event_t e[3];
    outbox_sink_event_t ev[3];
    outbox_sink_header_t headers[] = {{"trace-id", "4bf92f35"}, {"tenant", "Zürich \tA"}};
    for (int i = 0; i < 3; i++) {
        make_event(&e[i], (uint64_t)i + 10, i == 1 ? "orders.shipped" : "orders.created", i + 1);
        e[i].ev.headers = headers;
        e[i].ev.n_headers = 2;
        ev[i] = e[i].ev;
    }
    publish_ok(fx->th, ev, 3);
    wait_acks(fx->th, 3, 10000);
    for (uint64_t seq = 10; seq < 13; seq++) assert_ack(fx->th, seq, OUTBOX_SINK_OK, NULL);
    char errbuf[512];
    assert_int_equal(sinkhost_flush(fx->th, 1000, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    close_sink(fx->th);
    assert_true(logs_have(fx->th, "closed: 3 published, 3 acked (0 of them duplicates"));

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
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "orders.created", 1);
    publish_ok(fx->th, &e.ev, 1);
    wait_acks(fx->th, 1, 10000);
    e.ev.seq = 2;
    publish_ok(fx->th, &e.ev, 1);
    wait_acks(fx->th, 2, 10000);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(fx->th, 2, OUTBOX_SINK_OK, NULL);
    close_sink(fx->th);
    assert_true(logs_have(fx->th, "2 acked (1 of them duplicates the stream already had)"));

    sinkhost_t *th2 = new_host();
    sinkhost_set(th2, "servers", fx->srv.url);
    open_ok(th2);
    e.ev.seq = 3;
    publish_ok(th2, &e.ev, 1);
    wait_acks(th2, 1, 10000);
    assert_ack(th2, 3, OUTBOX_SINK_OK, NULL);
    close_sink(th2);
    done_host(th2);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 1);
}

/* A subject no stream covers: FATAL for those events, naming the subject;
 * the others of the batch are stored. */
static void test_subject_without_stream_is_fatal(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    open_ok(fx->th);
    test_event_t e[4];
    outbox_sink_event_t ev[4];
    for (int i = 0; i < 4; i++) {
        make_event(&e[i], (uint64_t)i + 1, i % 2 ? "nostream.created" : "orders.created", i + 1);
        ev[i] = e[i].ev;
    }
    publish_ok(fx->th, ev, 4);
    wait_acks(fx->th, 4, 10000);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(fx->th, 3, OUTBOX_SINK_OK, NULL);
    assert_ack(fx->th, 2, OUTBOX_SINK_FATAL, "no JetStream stream covers subject \"nostream.created\"");
    assert_ack(fx->th, 4, OUTBOX_SINK_FATAL, "no JetStream stream covers subject \"nostream.created\"");
    print_message("# %s\n", ack_of(fx->th, 2).error);
    close_sink(fx->th);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 2);
}

/* Events that can never be messages are FATAL, each alone; the rest of the
 * batch goes through. */
static void test_bad_events_are_fatal_alone(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    open_ok(fx->th);
    static const struct {
        const char *subject, *hname, *hvalue, *key, *why;
    } cases[] = {
        {"orders.ok", NULL, NULL, "k", NULL},
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

    publish_ok(fx->th, ev, n);
    wait_acks(fx->th, n, 10000);
    for (size_t i = 0; i + 1 < n; i++) {
        if (cases[i].why == NULL)
            assert_ack(fx->th, i + 1, OUTBOX_SINK_OK, NULL);
        else
            assert_ack(fx->th, i + 1, OUTBOX_SINK_FATAL, cases[i].why);
    }
    assert_ack(fx->th, n, OUTBOX_SINK_FATAL, "max_payload");
    print_message("# %s\n", ack_of(fx->th, n).error);
    /* A refused subject names the event. */
    for (size_t i = 0; i + 1 < n; i++) {
        if (strcmp(cases[i].subject, "orders.x\xff") != 0) continue;
        char says[64];
        snprintf(says, sizeof says, "nats sink: event %s: subject ", e[i].id);
        assert_ack(fx->th, i + 1, OUTBOX_SINK_FATAL, says);
        print_message("# %s\n", ack_of(fx->th, i + 1).error);
    }
    free(big);
    close_sink(fx->th);
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

    sinkhost_set(fx->th, "ack_timeout_ms", "300");
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "silent.x", 1);
    publish_ok(fx->th, &e.ev, 1);
    wait_acks(fx->th, 1, 5000);
    assert_ack(fx->th, 1, OUTBOX_SINK_RETRY, "no PubAck for subject \"silent.x\" within 300 ms");
    close_sink(fx->th);

    /* With a long timeout: flush times out, close drops them unacked. */
    sinkhost_t *th2 = new_host();
    sinkhost_set(th2, "servers", fx->srv.url);
    sinkhost_set(th2, "ack_timeout_ms", "60000");
    open_ok(th2);
    test_event_t e2[3];
    outbox_sink_event_t ev[3];
    for (int i = 0; i < 3; i++) {
        make_event(&e2[i], (uint64_t)i + 1, "silent.y", i);
        ev[i] = e2[i].ev;
    }
    publish_ok(th2, ev, 3);
    assert_int_equal(sinkhost_flush(th2, 300, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "3 publish(es) still without a PubAck"));
    close_sink(th2);
    assert_int_equal(n_acks(th2), 0);
    assert_true(logs_have(th2, "3 unacked at close"));
    nap_ms(200); /* an ack after close would be reported by host_ack */
    assert_int_equal(n_acks(th2), 0);
    done_host(th2);
    natsSubscription_Destroy(silent);
}

/* max_pending in flight: the batch is taken up to there (OK, *taken < n:
 * "full for now", outboxd polls and offers the rest again without a
 * backoff); what is in flight keeps its coming ack, and the rest is not
 * acked at all (before ABI 1.1 the sink acked it RETRY itself, and outboxd
 * backed off). */
static void test_max_pending_hands_back_the_rest(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    natsSubscription *silent = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&silent, fx->nc, "silent.>"), NATS_OK);
    natsConnection_Flush(fx->nc);
    sinkhost_set(fx->th, "max_pending", "2");
    sinkhost_set(fx->th, "ack_timeout_ms", "1000");
    open_ok(fx->th);
    test_event_t e[5];
    outbox_sink_event_t ev[5];
    for (int i = 0; i < 5; i++) {
        make_event(&e[i], (uint64_t)i + 1, "silent.z", i);
        ev[i] = e[i].ev;
    }
    char errbuf[512];
    size_t taken = 0;
    assert_int_equal(sinkhost_publish(fx->th, ev, 5, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(taken, 2);
    assert_int_equal(n_acks(fx->th), 0);
    wait_acks(fx->th, 2, 5000);
    assert_ack(fx->th, 1, OUTBOX_SINK_RETRY, "no PubAck");
    assert_ack(fx->th, 2, OUTBOX_SINK_RETRY, "no PubAck");
    /* Room again: the rest is taken, as far as max_pending allows. */
    assert_int_equal(sinkhost_publish(fx->th, ev + 2, 3, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(taken, 2);
    assert_int_equal(n_acks(fx->th), 2);
    close_sink(fx->th);
    natsSubscription_Destroy(silent);
}

/* option stream: the sink creates the stream with its subjects and window,
 * finds it the next time, and refuses events stored by another stream. */
static void test_sink_creates_its_stream(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx); /* ORDERS over orders.> exists too */
    sinkhost_set(fx->th, "stream", "OUTBOX");
    sinkhost_set(fx->th, "stream_subjects", "events.>, audit.x");
    sinkhost_set(fx->th, "duplicate_window_s", "30");
    open_ok(fx->th);
    assert_true(logs_have(fx->th, "created stream OUTBOX (subjects events.>, audit.x, file storage, "
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
    publish_ok(fx->th, ev, 2);
    wait_acks(fx->th, 2, 10000);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(fx->th, 2, OUTBOX_SINK_FATAL, "is stored by another stream than \"OUTBOX\"");
    close_sink(fx->th);

    /* Again: it exists; another window is only a warning. */
    sinkhost_t *th2 = new_host();
    sinkhost_set(th2, "servers", fx->srv.url);
    sinkhost_set(th2, "stream", "OUTBOX");
    open_ok(th2);
    assert_true(logs_have(th2, "stream OUTBOX exists (2 subject(s), duplicate window 30 s)"));
    assert_true(logs_have(th2, "not duplicate_window_s=120"));
    close_sink(th2);
    done_host(th2);

    /* Missing and no subjects to create it with; subjects another stream
     * has: FATAL naming stream_subjects. */
    char errbuf[1024];
    sinkhost_t *th3 = new_host();
    sinkhost_set(th3, "servers", fx->srv.url);
    sinkhost_set(th3, "stream", "NEW");
    assert_int_equal(open_sink(th3, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "option stream_subjects"));
    sinkhost_set(th3, "stream_subjects", "orders.>");
    assert_int_equal(open_sink(th3, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    print_message("# %s\n", errbuf);
    assert_non_null(strstr(errbuf, "option stream_subjects: cannot create stream NEW"));
    done_host(th3);
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
    sinkhost_set(fx->th, "reconnect_wait_ms", "100");
    sinkhost_set(fx->th, "ack_timeout_ms", "60000");
    open_ok(fx->th);

    /* Two publishes that get no PubAck (a silent subscriber): in flight. */
    test_event_t e[4];
    for (int i = 0; i < 4; i++) make_event(&e[i], (uint64_t)i + 1, i < 2 ? "silent.a" : "orders.a", i);
    outbox_sink_event_t ev2[2] = {e[0].ev, e[1].ev};
    publish_ok(fx->th, ev2, 2);

    /* Until libnats sees the socket is dead, a publish may still be taken
     * (written into a dead socket): such events are in flight too. */
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    uint64_t seq = 100;
    for (; seq < 200 && rc == OUTBOX_SINK_OK; seq++) {
        e[3].ev.seq = seq;
        rc = publish(fx->th, &e[3].ev, 1, errbuf, sizeof errbuf);
        nap_ms(5);
    }
    uint64_t last_taken = seq - 2; /* seq - 1 got RETRY */
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, "not connected to NATS"));
    assert_int_equal(n_acks(fx->th), 0);
    print_message("# %llu publish(es) taken after the kill, before the drop was seen\n",
                  (unsigned long long)(last_taken - 99));

    natstest_server_start(&fx->srv, fx->dir, fx->srv.port);
    for (int i = 0; i < 200; i++) {
        rc = publish(fx->th, &e[2].ev, 1, errbuf, sizeof errbuf);
        if (rc == OUTBOX_SINK_OK) break;
        nap_ms(50);
    }
    if (rc != OUTBOX_SINK_OK) fail_msg("no recovery: %s", errbuf);
    wait_acks(fx->th, 3 + (size_t)(last_taken - 99), 10000);
    assert_ack(fx->th, 1, OUTBOX_SINK_RETRY, "connection was lost");
    assert_ack(fx->th, 2, OUTBOX_SINK_RETRY, "connection was lost");
    for (uint64_t s2 = 100; s2 <= last_taken; s2++) assert_ack(fx->th, s2, OUTBOX_SINK_RETRY, "connection was lost");
    assert_ack(fx->th, 3, OUTBOX_SINK_OK, NULL);
    assert_true(logs_have(fx->th, "disconnected from NATS"));
    assert_true(logs_have(fx->th, "reconnected to nats://127.0.0.1"));
    close_sink(fx->th);
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
    sinkhost_set(fx->th, "servers", fx->srv.url);
    sinkhost_set(fx->th, "mode", "core");
    open_ok(fx->th);
    test_event_t e[3];
    outbox_sink_event_t ev[3];
    for (int i = 0; i < 3; i++) {
        make_event(&e[i], (uint64_t)i + 1, i == 1 ? "live.*" : "live.created", i);
        e[i].ev.key = NULL;
        ev[i] = e[i].ev;
    }
    publish_ok(fx->th, ev, 3);
    assert_int_equal(n_acks(fx->th), 3); /* all within publish */
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    assert_ack(fx->th, 2, OUTBOX_SINK_FATAL, "wildcard");
    assert_ack(fx->th, 3, OUTBOX_SINK_OK, NULL);
    for (int i = 0; i < 3; i += 2) {
        natsMsg *m = NULL;
        assert_int_equal(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
        assert_string_equal(natstest_header(m, "Outbox-Id"), e[i].id);
        assert_string_equal(natstest_header(m, "Nats-Msg-Id"), e[i].id);
        assert_string_equal(natstest_header(m, "Outbox-Key"), "");
        assert_int_equal(natstest_ordernr(m), i);
        natsMsg_Destroy(m);
    }
    assert_int_equal(sinkhost_flush(fx->th, 100, errbuf, sizeof errbuf), OUTBOX_SINK_OK);

    /* Server gone: RETRY, nothing acked. */
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    for (int i = 0; i < 100 && rc == OUTBOX_SINK_OK; i++) {
        e[0].ev.seq = 100 + (uint64_t)i;
        rc = publish(fx->th, &e[0].ev, 1, errbuf, sizeof errbuf);
        nap_ms(10);
    }
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    print_message("# core, server down: %s\n", errbuf);
    close_sink(fx->th);
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

    sinkhost_set(fx->th, "servers", url);
    sinkhost_set(fx->th, "mode", "core");
    sinkhost_set(fx->th, "tls_ca", ca);
    sinkhost_set(fx->th, "tls_cert", cert);
    sinkhost_set(fx->th, "tls_key", key);
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.x", 1);
    publish_ok(fx->th, &e.ev, 1);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(fx->th);

    /* The wrong name, no client certificate, an unknown CA: refused. */
    static const struct {
        const char *key, *value;
    } wrong[] = {{"tls_hostname", "other.example"}, {"tls_cert", NULL}, {"tls_ca", NULL}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        sinkhost_t *th = new_host();
        sinkhost_set(th, "servers", url);
        sinkhost_set(th, "mode", "core");
        sinkhost_set(th, "connect_timeout_ms", "1000");
        /* An option whose value is NULL is left out. */
        const char *const given[][2] = {{"tls_ca", ca}, {"tls_cert", cert}, {"tls_key", key}, {"tls_hostname", NULL}};
        for (size_t k = 0; k < 4; k++) {
            const char *value = strcmp(given[k][0], wrong[i].key) == 0 ? wrong[i].value : given[k][1];
            if (strcmp(wrong[i].key, "tls_cert") == 0 && strcmp(given[k][0], "tls_key") == 0) value = NULL;
            if (value != NULL) sinkhost_set(th, given[k][0], value);
        }
        int rc = open_sink(th, errbuf, sizeof errbuf);
        print_message("# %s=%s: %s\n", wrong[i].key, wrong[i].value ? wrong[i].value : "(none)", errbuf);
        if (rc != OUTBOX_SINK_RETRY) fail_msg("%s: open gave %d: %s", wrong[i].key, rc, errbuf);
        assert_non_null(strstr(errbuf, "cannot connect"));
        done_host(th);
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
    int port = natstest_free_port();
    static const char *const forms[] = {"nats://user:Nats/S3CRET@127.0.0.1:",
                                        "nats://user:Nats@S3CRET@127.0.0.1:",
                                        "tls://Nats/S3CRET-token@127.0.0.1:"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char list[300];
        snprintf(url, sizeof url, "%s%d", forms[i], port);
        snprintf(list, sizeof list, "nats://127.0.0.1:%d, %s", port, url);
        sinkhost_t *th = new_host();
        sinkhost_set(th, "servers", list);
        sinkhost_set(th, "mode", "core");
        sinkhost_set(th, "connect_timeout_ms", "300");
        if (i == 2) sinkhost_set(th, "tls_ca", "/nonexistent-ca.pem");
        int rc = open_sink(th, errbuf, sizeof errbuf);
        print_message("# %s: %d: %s\n", forms[i], rc, errbuf);
        assert_true(rc != OUTBOX_SINK_OK);
        if (strstr(errbuf, "S3CRET") != NULL) fail_msg("%s shows the secret: %s", forms[i], errbuf);
        assert_false(logs_have(th, "S3CRET"));
        done_host(th);
    }

    /* A server that wants the password: connected through the URL's
     * credentials; then down, and every message about it clean. */
    const char *extra[] = {"--user", "user", "--pass", "Nats/S3CRET", NULL};
    natstest_require_server();
    natstest_server_start_with(&fx->srv, fx->dir, 0, 0, extra);
    snprintf(url, sizeof url, "nats://user:Nats/S3CRET@127.0.0.1:%d", fx->srv.port);
    sinkhost_set(fx->th, "servers", url);
    sinkhost_set(fx->th, "mode", "core");
    sinkhost_set(fx->th, "reconnect_wait_ms", "50");
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "core.x", 1);
    publish_ok(fx->th, &e.ev, 1);
    natstest_server_stop(&fx->srv, SIGKILL);
    int rc = OUTBOX_SINK_OK;
    for (int i = 0; i < 200 && rc == OUTBOX_SINK_OK; i++) {
        e.ev.seq = 10 + (uint64_t)i;
        rc = publish(fx->th, &e.ev, 1, errbuf, sizeof errbuf);
        nap_ms(10);
    }
    print_message("# server down: %d: %s\n", rc, errbuf);
    assert_int_equal(rc, OUTBOX_SINK_RETRY);
    assert_null(strstr(errbuf, "S3CRET"));
    char shown[64];
    snprintf(shown, sizeof shown, "nats://127.0.0.1:%d", fx->srv.port);
    assert_non_null(strstr(errbuf, shown));
    close_sink(fx->th);
    assert_true(logs_have(fx->th, "disconnected from NATS"));
    assert_false(logs_have(fx->th, "S3CRET"));
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

    sinkhost_set(fx->th, "servers", url);
    sinkhost_set(fx->th, "mode", "core");
    sinkhost_set(fx->th, "tls_ca", ca);
    sinkhost_set(fx->th, "user", "outboxd");
    sinkhost_set(fx->th, "password", "Pw/TLS@S3CRET");
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.auth", 1);
    publish_ok(fx->th, &e.ev, 1);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(fx->th);

    sinkhost_t *th = new_host();
    sinkhost_set(th, "servers", url);
    sinkhost_set(th, "mode", "core");
    sinkhost_set(th, "tls_ca", ca);
    sinkhost_set(th, "user", "outboxd");
    sinkhost_set(th, "password", "Wrong/S3CRET-pw");
    for (int attempt = 0; attempt < 3; attempt++) {
        assert_int_equal(open_sink(th, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (attempt == 0) snprintf(first, sizeof first, "%s", errbuf);
        else assert_string_equal(errbuf, first);
    }
    print_message("# wrong password over TLS: %s\n", first);
    assert_non_null(strstr(first, "uthorization"));
    assert_null(strstr(first, "S3CRET"));
    assert_true(logs_empty(th)); /* nothing logged per attempt */
    done_host(th);

    assert_false(logs_have(fx->th, "S3CRET"));
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

    sinkhost_set(fx->th, "servers", url);
    sinkhost_set(fx->th, "mode", "core");
    sinkhost_set(fx->th, "tls_ca", ca);
    sinkhost_set(fx->th, "tls_cert", cert);
    sinkhost_set(fx->th, "tls_key", key);
    sinkhost_set(fx->th, "tls_hostname", "localhost");
    sinkhost_set(fx->th, "nkey", pub);
    sinkhost_set(fx->th, "nkey_seed_file", seed_file);
    open_ok(fx->th);
    test_event_t e;
    make_event(&e, 1, "tls.nkey", 1);
    publish_ok(fx->th, &e.ev, 1);
    assert_ack(fx->th, 1, OUTBOX_SINK_OK, NULL);
    close_sink(fx->th);

    /* The public key with another key's seed: the signature fails. */
    sinkhost_set(fx->th, "nkey_seed_file", other_seed);
    assert_int_equal(open_sink(fx->th, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    print_message("# nkey with another seed: %s\n", errbuf);
    assert_non_null(strstr(errbuf, "cannot connect"));
    /* A seed where the public key belongs. */
    sinkhost_set(fx->th, "nkey", "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU");
    assert_int_equal(open_sink(fx->th, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "option nkey: not a user's public NKey"));
    assert_null(strstr(errbuf, "SUAML"));

    char *seed = test_read_file(seed_file);
    assert_non_null(seed);
    seed[strcspn(seed, "\n")] = '\0';
    assert_false(logs_have(fx->th, seed));
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
        sinkhost_t *th = new_host();
        sinkhost_set(th, "servers", url);
        sinkhost_set(th, "mode", "core");
        sinkhost_set(th, "connect_timeout_ms", "1000");
        sinkhost_set(th, "tls_ca", round ? ca : other_ca);
        for (int attempt = 0; attempt < 3; attempt++) {
            int rc = open_sink(th, errbuf, sizeof errbuf);
            if (rc != OUTBOX_SINK_RETRY) fail_msg("round %d: open gave %d: %s", round, rc, errbuf);
            if (attempt == 0) snprintf(first, sizeof first, "%s", errbuf);
            else assert_string_equal(errbuf, first);
        }
        print_message("# %s: %s\n", round ? "expired server certificate" : "wrong CA", first);
        assert_non_null(strstr(first, "cannot connect to tls://localhost:"));
        assert_non_null(strstr(first, round ? "certificate has expired" : "unable to get local issuer certificate"));
        assert_non_null(strstr(first, "the TLS handshake failed: check tls_ca"));
        assert_true(logs_empty(th));
        done_host(th);
        natstest_server_stop(&fx->srv, SIGTERM);
    }
}

/* stats: what an operator reads on outboxd's metrics endpoint. */
typedef struct {
    char names[16][65];
    double values[16];
    outbox_sink_stat_kind_t kinds[16];
    int n;
} stats_t;

static void stat_emit(void *ctx, const char *name, outbox_sink_stat_kind_t kind, double value, const char *help) {
    stats_t *st = ctx;
    assert_true(st->n < 16);
    assert_non_null(help);
    snprintf(st->names[st->n], sizeof st->names[0], "%s", name);
    st->values[st->n] = value;
    st->kinds[st->n++] = kind;
}

static double stat_of(sinkhost_t *h, const char *name, outbox_sink_stat_kind_t kind) {
    stats_t st = {0};
    sinkhost_plugin(h)->stats(sinkhost_state(h), stat_emit, &st);
    for (int i = 0; i < st.n; i++) {
        if (strcmp(st.names[i], name) != 0) continue;
        assert_int_equal(st.kinds[i], kind);
        return st.values[i];
    }
    fail_msg("stats has no %s", name);
    return -1;
}

static void test_stats_count_what_happened(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    natsSubscription *silent = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&silent, fx->nc, "silent.>"), NATS_OK);
    natsConnection_Flush(fx->nc);
    sinkhost_set(fx->th, "ack_timeout_ms", "60s");
    open_ok(fx->th);
    test_event_t e[4];
    outbox_sink_event_t ev[4];
    make_event(&e[0], 1, "orders.created", 1);
    make_event(&e[1], 2, "orders.created", 2);
    e[2] = e[1]; /* the same id again: a duplicate */
    e[2].ev.seq = 3;
    make_event(&e[3], 4, "orders.x..y", 4); /* never a subject: FATAL */
    for (int i = 0; i < 4; i++) ev[i] = e[i].ev;
    ev[2].id = e[1].id;
    publish_ok(fx->th, ev, 4);
    wait_acks(fx->th, 4, 10000);
    make_event(&e[0], 5, "silent.x", 5); /* no PubAck ever: in flight */
    publish_ok(fx->th, &e[0].ev, 1);
    assert_true(stat_of(fx->th, "nats_in_flight", OUTBOX_SINK_STAT_GAUGE) == 1);
    assert_true(stat_of(fx->th, "nats_published_total", OUTBOX_SINK_STAT_COUNTER) == 4);
    assert_true(stat_of(fx->th, "nats_acked_total", OUTBOX_SINK_STAT_COUNTER) == 3);
    assert_true(stat_of(fx->th, "nats_duplicates_total", OUTBOX_SINK_STAT_COUNTER) == 1);
    assert_true(stat_of(fx->th, "nats_failed_total", OUTBOX_SINK_STAT_COUNTER) == 1);
    assert_true(stat_of(fx->th, "nats_retried_total", OUTBOX_SINK_STAT_COUNTER) == 0);
    assert_true(stat_of(fx->th, "nats_reconnects_total", OUTBOX_SINK_STAT_COUNTER) == 0);
    close_sink(fx->th);
    natsSubscription_Destroy(silent);
}

/* Two instances at once share nothing (each its connection and acks). */
static void test_two_instances(void **state) {
    fixture_t *fx = *state;
    start_jetstream(fx);
    sinkhost_t *th2 = new_host();
    sinkhost_set(th2, "servers", fx->srv.url);
    sinkhost_set(th2, "max_pending", "10");
    open_ok(fx->th);
    open_ok(th2);
    test_event_t e[200];
    for (int i = 0; i < 200; i++) make_event(&e[i], (uint64_t)i, "orders.created", i);
    for (int i = 0; i < 200; i += 20) {
        outbox_sink_event_t batch[10];
        for (int j = 0; j < 10; j++) batch[j] = e[i + j].ev;
        publish_ok(fx->th, batch, 10);
        for (int j = 0; j < 10; j++) batch[j] = e[i + 10 + j].ev;
        publish_ok(th2, batch, 10);
        wait_acks(th2, (size_t)(i / 20 + 1) * 10, 10000);
    }
    wait_acks(fx->th, 100, 10000);
    close_sink(fx->th);
    close_sink(th2);
    assert_int_equal(n_acks(fx->th), 100);
    assert_int_equal(n_acks(th2), 100);
    done_host(th2);
    assert_int_equal(natstest_stream_count(fx->js, "ORDERS"), 200);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identification),
        cmocka_unit_test_setup_teardown(test_check_and_open_refuse_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_passes_offline, setup, teardown),
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
        cmocka_unit_test_setup_teardown(test_stats_count_what_happened, setup, teardown),
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
    return failed;
}
