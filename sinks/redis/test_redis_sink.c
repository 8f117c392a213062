/*
 * test_redis_sink.c - drives the built Redis sink plugin the way outboxd
 * does, without outboxd or MongoDB, through tests/sinkhost.h: outboxd's own
 * loader and option code (types, ranges, defaults, password_file), the
 * plugin's check, then open/publish/close with every ack and log line
 * recorded and held to sink.h's rules.
 *
 * Two kinds of server:
 *  - real redis-servers the test starts (redis_testlib.h), for what lands
 *    in the stream: every field, binary payloads, trimming, dedupe, AUTH
 *    and ACL users, databases, unix sockets, WRONGTYPE and OOM replies, a
 *    server killed and started again;
 *  - a scripted fake server (a thread speaking RESP on a free port), for
 *    what a real one will not do on demand: a connection cut after exactly
 *    k replies of a pipeline, replies of an unexpected type, NOSCRIPT, an
 *    old version, LOADING.
 *
 * The module is $OUTBOX_TEST_BUILDDIR/sinks/redis/.libs/redis.so, or
 * ./sinks/redis/.libs/redis.so when the variable is not set.
 */
#include "redis_testlib.h"
#include "sinkhost.h"
#include "testlib.h"

#include <outbox/sink.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * The host: tests/sinkhost.h (outboxd's own loader, option code and
 * check), with the acks of a test step counted from fx->ack_base
 * ------------------------------------------------------------------------- */

typedef struct fake fake_t;
static void fake_stop(fake_t *f);

typedef struct {
    sinkhost_t *h;
    size_t ack_base;     /* acks before it belong to an earlier step */
    test_redis_t redis;
    fake_t *fake;
    char errbuf[1024];
} fixture_t;

/* Every line the hosts freed so far got, for checks across host_init
 * (passwords); logged() adds the current host's. */
static char all_log[65536];

static void keep_log(fixture_t *fx) {
    size_t used = strlen(all_log);
    snprintf(all_log + used, sizeof all_log - used, "%s", sinkhost_log(fx->h));
}

static const char *logged(fixture_t *fx) {
    static char both[sizeof all_log * 2];
    snprintf(both, sizeof both, "%s%s", all_log, sinkhost_log(fx->h));
    return both;
}

/* A fresh host for the redis plugin: no options, no acks. */
static void host_init(fixture_t *fx) {
    if (fx->h != NULL) {
        keep_log(fx);
        sinkhost_free(fx->h);
    }
    fx->h = sinkhost_new("redis");
    if (fx->h == NULL) fail_msg("cannot load the redis plugin (see above)");
    sinkhost_quiet(fx->h, getenv("REDIS_SINK_TEST_VERBOSE") == NULL);
    fx->ack_base = 0;
}

static void host_set(fixture_t *fx, const char *key, const char *value) {
    sinkhost_set(fx->h, key, value);
}

/* Later checks look only at acks from here on. */
static void host_clear_acks(fixture_t *fx) { fx->ack_base = sinkhost_n_acks(fx->h); }

static size_t n_acks(fixture_t *fx) { return sinkhost_n_acks(fx->h) - fx->ack_base; }

static sinkhost_ack_t ack_at(fixture_t *fx, size_t i) {
    sinkhost_ack_t a;
    if (!sinkhost_ack_at(fx->h, fx->ack_base + i, &a)) fail_msg("no ack %zu", i);
    return a;
}

/* The one ack for seq (failing when there is none or more than one). */
static sinkhost_ack_t ack_of(fixture_t *fx, uint64_t seq) {
    sinkhost_ack_t a, found;
    int count = 0;
    for (size_t i = 0; i < n_acks(fx); i++) {
        a = ack_at(fx, i);
        if (a.seq == seq) found = a, count++;
    }
    if (count > 1) fail_msg("event %llu acked twice", (unsigned long long)seq);
    if (count == 0) fail_msg("event %llu not acked", (unsigned long long)seq);
    return found;
}

static void assert_acked_ok(fixture_t *fx, uint64_t seq) {
    sinkhost_ack_t a = ack_of(fx, seq);
    if (a.status != OUTBOX_SINK_OK)
        fail_msg("event %llu acked %d (%s), not OK", (unsigned long long)seq, (int)a.status,
                 a.error);
}

static void assert_acked_fatal(fixture_t *fx, uint64_t seq, const char *text) {
    sinkhost_ack_t a = ack_of(fx, seq);
    if (a.status != OUTBOX_SINK_FATAL)
        fail_msg("event %llu acked %d, not FATAL", (unsigned long long)seq, (int)a.status);
    if (strstr(a.error, text) == NULL)
        fail_msg("event %llu: the error \"%s\" does not say \"%s\"", (unsigned long long)seq,
                 a.error, text);
}

static void assert_not_acked(fixture_t *fx, uint64_t seq) {
    for (size_t i = 0; i < n_acks(fx); i++) {
        if (ack_at(fx, i).seq == seq)
            fail_msg("event %llu acked (%d), should not be", (unsigned long long)seq,
                     (int)ack_at(fx, i).status);
    }
}

/* ----------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------- */

typedef struct {
    outbox_sink_event_t ev;
    char id[25];
    char payload[64];
} test_event_t;

/* Event seq: id 24 hex digits ending in seq, type order.created, key
 * "k<seq>", payload {"n":<seq>}, into stream. */
static void make_event(test_event_t *te, uint64_t seq, const char *stream) {
    memset(te, 0, sizeof *te);
    snprintf(te->id, sizeof te->id, "65f0000000000000%08llx", (unsigned long long)seq);
    int len = snprintf(te->payload, sizeof te->payload, "{\"n\":%llu}", (unsigned long long)seq);
    te->ev.seq = seq;
    te->ev.id = te->id;
    te->ev.type = "order.created";
    te->ev.key = "k";
    te->ev.destination = stream;
    te->ev.payload = (const unsigned char *)te->payload;
    te->ev.payload_len = (size_t)len;
    te->ev.created_ms = 1700000000000LL + (int64_t)seq;
}

/* n events seq first.. into stream, as the array publish takes. */
static outbox_sink_event_t *make_events(test_event_t *storage, size_t n, uint64_t first,
                                        const char *stream, outbox_sink_event_t *out) {
    for (size_t i = 0; i < n; i++) {
        make_event(&storage[i], first + i, stream);
        out[i] = storage[i].ev;
    }
    return out;
}

/* ----------------------------------------------------------------------------
 * Fixture: a host, maybe a real server, maybe a fake one, the open sink
 * ------------------------------------------------------------------------- */

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL) return -1;
    host_init(fx);
    *state = fx;
    return 0;
}

/* Every test also holds the sink to sink.h's rules as the host saw them:
 * one ack per event, none for an event given back, none outside open. */
static int teardown(void **state) {
    fixture_t *fx = *state;
    sinkhost_close(fx->h);
    if (fx->fake != NULL) fake_stop(fx->fake);
    test_redis_stop_all();
    for (int rule = 0; rule < SINKHOST_N_RULES; rule++) {
        char first[512];
        if (sinkhost_violations(fx->h, (sinkhost_rule_t)rule, first, sizeof first) != 0)
            fail_msg("the sink broke a rule of sink.h: %s", first);
    }
    keep_log(fx);
    sinkhost_free(fx->h);
    free(fx);
    return 0;
}

/* Starts a real server for the fixture and points the url at it. */
static void use_server(fixture_t *fx, const char *extra_conf, const char *password) {
    test_redis_start(&fx->redis, extra_conf, password);
    host_set(fx, "url", fx->redis.url);
}

static int try_open(fixture_t *fx) {
    fx->errbuf[0] = '\0';
    return sinkhost_open(fx->h, fx->errbuf, sizeof fx->errbuf);
}

static void open_ok(fixture_t *fx) {
    int rc = try_open(fx);
    if (rc != OUTBOX_SINK_OK) fail_msg("open: %d: %s", rc, fx->errbuf);
}

static int check(fixture_t *fx) {
    fx->errbuf[0] = '\0';
    return sinkhost_check(fx->h, fx->errbuf, sizeof fx->errbuf);
}

static void close_sink(fixture_t *fx) { sinkhost_close(fx->h); }

static int publish(fixture_t *fx, const outbox_sink_event_t *events, size_t n) {
    return sinkhost_publish(fx->h, events, n, NULL, fx->errbuf, sizeof fx->errbuf);
}

static void publish_ok(fixture_t *fx, const outbox_sink_event_t *events, size_t n) {
    int rc = publish(fx, events, n);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d: %s", rc, fx->errbuf);
}

static void assert_contains(const char *text, const char *part) {
    if (strstr(text, part) == NULL) fail_msg("\"%s\" does not say \"%s\"", text, part);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ----------------------------------------------------------------------------
 * The fake server: answers the handshake like Redis 7 and each XADD,
 * EVALSHA or EVAL with the next scripted reply: raw RESP, or "CLOSE" to
 * end the connection right there (after the replies before it, which the
 * client reads first: a clean EOF, not a reset).
 * ------------------------------------------------------------------------- */

#define FAKE_MAX_REPLIES 64

struct fake {
    int listen_fd, port;
    pthread_t thread;
    pthread_mutex_t lock;
    const char *replies[FAKE_MAX_REPLIES];
    size_t n_replies, next_reply;
    const char *version;    /* INFO's redis_version */
    const char *mode;       /* INFO's redis_mode */
    const char *ping_reply; /* raw RESP; NULL for +PONG */
    int connections;
    int commands_seen;      /* XADD, EVALSHA and EVAL */
    int evals_seen;         /* EVAL with the source */
    volatile int stop;
    char url[64];
};

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return;
        data += n;
        len -= (size_t)n;
    }
}

static void send_bulk(int fd, const char *text) {
    char head[32];
    snprintf(head, sizeof head, "$%zu\r\n", strlen(text));
    send_all(fd, head, strlen(head));
    send_all(fd, text, strlen(text));
    send_all(fd, "\r\n", 2);
}

/* Serves one connection; returns when it ends or the fake stops. */
static void fake_serve(fake_t *f, int fd) {
    redisReader *reader = redisReaderCreate();
    char buf[65536];
    int done = 0;

    while (!done && !f->stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        redisReaderFeed(reader, buf, (size_t)n);
        void *reply;
        while (!done && redisReaderGetReply(reader, &reply) == REDIS_OK && reply != NULL) {
            redisReply *cmd = reply;
            const char *name = cmd->element[0]->str;
            if (strcasecmp(name, "PING") == 0) {
                const char *r = f->ping_reply ? f->ping_reply : "+PONG\r\n";
                send_all(fd, r, strlen(r));
            } else if (strcasecmp(name, "INFO") == 0) {
                char info[128];
                snprintf(info, sizeof info, "# Server\r\nredis_version:%s\r\nredis_mode:%s\r\n",
                         f->version, f->mode);
                send_bulk(fd, info);
            } else if (strcasecmp(name, "SCRIPT") == 0) {
                send_bulk(fd, "0123456789abcdef0123456789abcdef01234567");
            } else if (strcasecmp(name, "XADD") == 0 || strcasecmp(name, "EVALSHA") == 0 ||
                       strcasecmp(name, "EVAL") == 0) {
                pthread_mutex_lock(&f->lock);
                const char *r = f->next_reply < f->n_replies ? f->replies[f->next_reply++]
                                                             : "-ERR fake: no reply scripted\r\n";
                f->commands_seen++;
                if (strcasecmp(name, "EVAL") == 0) f->evals_seen++;
                pthread_mutex_unlock(&f->lock);
                if (strcmp(r, "CLOSE") == 0) {
                    /* FIN after the replies sent so far, then wait for the
                     * client to close, so it reads them all. */
                    shutdown(fd, SHUT_WR);
                    while (!f->stop && recv(fd, buf, sizeof buf, 0) > 0) {
                    }
                    done = 1;
                } else {
                    send_all(fd, r, strlen(r));
                }
            } else {
                send_all(fd, "+OK\r\n", 5);
            }
            freeReplyObject(cmd);
        }
    }
    redisReaderFree(reader);
    close(fd);
}

static void *fake_main(void *arg) {
    fake_t *f = arg;
    while (!f->stop) {
        struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_mutex_lock(&f->lock);
        f->connections++;
        pthread_mutex_unlock(&f->lock);
        fake_serve(f, fd);
    }
    return NULL;
}

static fake_t *fake_start(fixture_t *fx) {
    fake_t *f = calloc(1, sizeof *f);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof addr;
    int one = 1;

    assert_non_null(f);
    f->version = "7.0.15";
    f->mode = "standalone";
    pthread_mutex_init(&f->lock, NULL);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(f->listen_fd, 8) != 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&addr, &len) != 0)
        fail_msg("fake server: %s", strerror(errno));
    f->port = ntohs(addr.sin_port);
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", f->port);
    pthread_create(&f->thread, NULL, fake_main, f);
    fx->fake = f;
    host_set(fx, "url", f->url);
    return f;
}

/* Queues the replies for the next commands. */
static void fake_script(fake_t *f, size_t n, const char *const *replies) {
    pthread_mutex_lock(&f->lock);
    assert_true(n <= FAKE_MAX_REPLIES);
    for (size_t i = 0; i < n; i++) f->replies[i] = replies[i];
    f->n_replies = n;
    f->next_reply = 0;
    pthread_mutex_unlock(&f->lock);
}

static void fake_stop(fake_t *f) {
    f->stop = 1;
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

#define ENTRY_ID "$15\r\n1700000000000-0\r\n"

/* ----------------------------------------------------------------------------
 * Tests: identification and options
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    fixture_t *fx = *state;
    const outbox_sink_plugin_t *plugin = sinkhost_plugin(fx->h);
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_int_equal(plugin->abi_minor, OUTBOX_SINK_ABI_MINOR);
    assert_true(plugin->struct_size >= OUTBOX_SINK_PLUGIN_SIZE_1_1);
    assert_string_equal(plugin->build_tag, OUTBOX_SINK_BUILD_TAG);
    assert_string_equal(plugin->name, "redis");
    assert_non_null(plugin->open);
    assert_non_null(plugin->publish);
    assert_non_null(plugin->close);
    assert_non_null(plugin->check);
    assert_non_null(plugin->stats);
    /* Acks come before publish returns: nothing to poll or flush. */
    assert_null(plugin->poll);
    assert_null(plugin->flush);
    /* Bytes to this sink: JSON and BSON payloads alike. */
    assert_int_equal(plugin->payloads, OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON);
    static const struct {
        const char *key;
        outbox_sink_option_type_t type;
        const char *default_value;
    } keys[] = {
        {"url", OUTBOX_SINK_OPT_STRING, "redis://127.0.0.1:6379/0"},
        {"user", OUTBOX_SINK_OPT_STRING, NULL},
        {"password", OUTBOX_SINK_OPT_SECRET, NULL}, /* password_file through outboxd */
        {"password_env", OUTBOX_SINK_OPT_STRING, NULL},
        {"connect_timeout_ms", OUTBOX_SINK_OPT_DURATION, "2000"},
        {"command_timeout_ms", OUTBOX_SINK_OPT_DURATION, "10000"},
        {"pipeline", OUTBOX_SINK_OPT_INT, "500"},
        {"maxlen", OUTBOX_SINK_OPT_INT, NULL},
        {"minid", OUTBOX_SINK_OPT_STRING, NULL},
        {"trim_exact", OUTBOX_SINK_OPT_BOOL, "false"},
        {"dedupe", OUTBOX_SINK_OPT_BOOL, "false"},
        {"dedupe_ttl", OUTBOX_SINK_OPT_INT, "86400"},
        {"dedupe_prefix", OUTBOX_SINK_OPT_STRING, "outbox:dedupe:"},
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const outbox_sink_option_t *o = plugin->options;
        while (o->key != NULL && strcmp(o->key, keys[k].key) != 0) o++;
        if (o->key == NULL) fail_msg("no option %s", keys[k].key);
        assert_int_equal(o->type, keys[k].type);
        assert_true(o->flags & OUTBOX_SINK_OPTION_MAPPED);
        if (keys[k].default_value != NULL) assert_string_equal(o->default_value, keys[k].default_value);
        else assert_null(o->default_value);
    }
}

/* Each bad value is refused by check, offline, at its option's line (as
 * `outboxd --check` and a reload run it), and by open as FATAL naming the
 * option; none needs a server, and none shows a password. */
static void test_check_refuses_bad_options_offline(void **state) {
    fixture_t *fx = *state;
    static const struct {
        const char *key, *value, *says;
    } cases[] = {
        {"url", "http://127.0.0.1:6379", "url: \"http://127.0.0.1:6379\" is not redis://"},
        {"url", "rediss://127.0.0.1:6380/0", "url: rediss:// (TLS) is not supported"},
        {"url", "redis://app:s3cr3t-in-url@127.0.0.1:6379/0", "url: a password in the url is not accepted"},
        {"url", "redis://:s3cr3t-in-url@127.0.0.1/0", "url: a password in the url is not accepted"},
        {"url", "redis://127.0.0.1:70000/0", "url: \"redis://127.0.0.1:70000/0\": the port"},
        {"url", "redis://127.0.0.1:6379/zero", "the database (after the /) is not a number"},
        {"url", "redis:///0", "names no host"},
        {"url", "unix://relative.sock", "absolute socket path"},
        {"url", "unix:///tmp/r.sock?database=2", "only ?db=N"},
        {"user", "two words", "user: a user name has no space"},
        {"minid", "yesterday", "minid: \"yesterday\" is neither a stream id"},
        {"minid", "12x", "minid: "},
        /* The table's types and ranges, checked by outboxd. */
        {"pipeline", "0", "option pipeline: 0 is out of range 1..100000"},
        {"dedupe", "maybe", "option dedupe: expected true or false"},
        {"trim_exact", "perhaps", "option trim_exact"},
        {"dedupe_ttl", "0", "option dedupe_ttl"},
        {"connect_timeout_ms", "-5", "option connect_timeout_ms"},
        {"command_timeout_ms", "11m", "option command_timeout_ms"},
        {"maxlen", "0", "option maxlen"},
        {"no_such_option", "1", "option no_such_option: unknown option"},
        {"password_file", "/nonexistent/redis.pass", "option password_file: cannot read /nonexistent/redis.pass: No such file"},
        {"password_env", "OUTBOX_TEST_NO_SUCH_VARIABLE", "password_env: environment variable OUTBOX_TEST_NO_SUCH_VARIABLE is not set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        host_init(fx);
        host_set(fx, "connect_timeout_ms", "100");
        host_set(fx, cases[i].key, cases[i].value); /* line 2 */
        int rc = check(fx);
        print_message("# check %s: %s -> %s\n", cases[i].key, cases[i].value, fx->errbuf);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s: %s: check gave %d, not FATAL", cases[i].key, cases[i].value, rc);
        assert_contains(fx->errbuf, cases[i].says);
        if (strcmp(cases[i].key, "connect_timeout_ms") != 0) assert_contains(fx->errbuf, "sinkhost:2:");
        assert_null(strstr(fx->errbuf, "s3cr3t"));
        rc = try_open(fx);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s: %s: open gave %d (%s), not FATAL", cases[i].key, cases[i].value, rc,
                     fx->errbuf);
        assert_contains(fx->errbuf, cases[i].says);
        assert_null(strstr(fx->errbuf, "s3cr3t"));
    }
    /* Pairs that exclude each other: the later option's line. */
    host_init(fx);
    host_set(fx, "maxlen", "10");
    host_set(fx, "minid", "1h");
    assert_int_equal(check(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "sinkhost:2:1: sink test: minid: set maxlen or minid, not both");
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "redis sink: option minid: set maxlen or minid, not both");
    host_init(fx);
    host_set(fx, "password_file", "/etc/hostname");
    host_set(fx, "password_env", "HOME");
    assert_int_equal(check(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "sinkhost:2:1: sink test: password_env: set password (or password_file) or password_env, not both");
    assert_null(strstr(logged(fx), "s3cr3t"));
}

/* check connects nowhere: a good configuration passes it whether the
 * server is there or not, and the server sees no connection. */
static void test_check_never_connects(void **state) {
    fixture_t *fx = *state;
    char url[64];
    snprintf(url, sizeof url, "redis://app@127.0.0.1:%d/2", test_redis_free_port());
    host_set(fx, "url", url);
    host_set(fx, "password", "Some-Pass-1");
    host_set(fx, "dedupe", "yes");
    host_set(fx, "minid", "7d");
    host_set(fx, "connect_timeout_ms", "1s");
    if (check(fx) != OUTBOX_SINK_OK) fail_msg("check: %s", fx->errbuf);

    fake_t *f = fake_start(fx);
    if (check(fx) != OUTBOX_SINK_OK) fail_msg("check: %s", fx->errbuf);
    assert_int_equal(f->connections, 0);
    open_ok(fx); /* the same options open */
    assert_int_equal(f->connections, 1);
    assert_null(strstr(logged(fx), "Some-Pass-1"));
}

/* Nothing listens: RETRY, saying where and why, so outboxd tries again. */
static void test_unreachable_is_retry(void **state) {
    fixture_t *fx = *state;
    char url[64];
    int port = test_redis_free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    host_set(fx, "url", url);
    host_set(fx, "connect_timeout_ms", "500");
    assert_int_equal(try_open(fx), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "cannot connect to");
    assert_contains(fx->errbuf, url);
    assert_contains(fx->errbuf, "Connection refused");

    host_set(fx, "url", "unix:///nonexistent/redis.sock");
    assert_int_equal(try_open(fx), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "cannot connect to unix:///nonexistent/redis.sock");
}

/* ----------------------------------------------------------------------------
 * Tests: the entries
 * ------------------------------------------------------------------------- */

/* The entry's fields and values are exactly want (NULL: not compared). */
static void expect_fields(const redisReply *entry, const char *const *want, size_t n_want) {
    const redisReply *fields = entry->element[1];
    if (fields->elements != n_want) {
        fail_msg("entry %s has %zu fields and values, expected %zu", entry->element[0]->str,
                 fields->elements, n_want);
    }
    for (size_t i = 0; i < n_want; i++) {
        if (want[i] != NULL && strcmp(fields->element[i]->str, want[i]) != 0)
            fail_msg("entry %s: element %zu is \"%s\", expected \"%s\"", entry->element[0]->str, i,
                     fields->element[i]->str, want[i]);
    }
}

/* Every field, in the documented order; a null key has no field; an
 * empty key is an empty field; headers as h:<name>; a binary payload
 * (NUL bytes, as payload: bson gives) arrives whole. */
static void test_entry_fields(void **state) {
    fixture_t *fx = *state;
    use_server(fx, NULL, NULL);
    open_ok(fx);

    static const unsigned char bson_payload[] = {0x0c, 0, 0, 0, 0x10, 'n', 0, 7, 0, 0, 0, 0};
    outbox_sink_header_t headers[] = {{"trace", "abc-123"}, {"tenant", "ü"}};
    outbox_sink_event_t ev[3];
    memset(ev, 0, sizeof ev);
    ev[0] = (outbox_sink_event_t){.seq = 10, .id = "65f000000000000000000001", .type = "order.created",
                                  .key = "cust-1", .destination = "orders",
                                  .payload = (const unsigned char *)"{\"n\":1}", .payload_len = 7,
                                  .created_ms = 1700000000123LL, .headers = headers, .n_headers = 2};
    ev[1] = (outbox_sink_event_t){.seq = 11, .id = "65f000000000000000000002", .type = "order.shipped",
                                  .key = NULL, .destination = "orders",
                                  .payload = bson_payload, .payload_len = sizeof bson_payload,
                                  .created_ms = 1700000000124LL};
    ev[2] = (outbox_sink_event_t){.seq = 12, .id = "65f000000000000000000003", .type = "order.created",
                                  .key = "", .destination = "orders",
                                  .payload = (const unsigned char *)"{}", .payload_len = 2,
                                  .created_ms = -5};
    publish_ok(fx, ev, 3);
    for (uint64_t seq = 10; seq <= 12; seq++) assert_acked_ok(fx, seq);

    redisContext *c = test_redis_connect(&fx->redis);
    redisReply *all = test_redis_cmd(c, "XRANGE orders - +");
    assert_int_equal(all->type, REDIS_REPLY_ARRAY);
    assert_int_equal(all->elements, 3);
    const char *want0[] = {"id", "65f000000000000000000001", "type", "order.created", "key",
                           "cust-1", "created", "1700000000123", "payload", "{\"n\":1}",
                           "h:trace", "abc-123", "h:tenant", "ü"};
    expect_fields(all->element[0], want0, 14);
    const char *want1[] = {"id", "65f000000000000000000002", "type", "order.shipped", "created",
                           "1700000000124", "payload", NULL};
    expect_fields(all->element[1], want1, 8); /* the payload, binary, below */
    size_t len;
    const char *payload = test_redis_field(all->element[1], "payload", &len);
    assert_int_equal(len, sizeof bson_payload);
    assert_memory_equal(payload, bson_payload, sizeof bson_payload);
    assert_null(test_redis_field(all->element[1], "key", NULL));
    const char *want2[] = {"id", "65f000000000000000000003", "type", "order.created", "key", "",
                           "created", "-5", "payload", "{}"};
    expect_fields(all->element[2], want2, 10);
    freeReplyObject(all);
    redisFree(c);
}

/* The route's streams, the url's database, a unix socket, and a pipeline
 * smaller than the batch: all in order. */
static void test_streams_database_socket_and_small_pipeline(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[25];
    outbox_sink_event_t events[25];
    char url[256];

    use_server(fx, NULL, NULL);
    snprintf(url, sizeof url, "unix://%s?db=3", fx->redis.sock);
    host_set(fx, "url", url);
    host_set(fx, "pipeline", "4");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "pipeline 4");
    make_events(storage, 25, 1, "a", events);
    for (int i = 0; i < 25; i += 3) events[i].destination = "b";
    publish_ok(fx, events, 25);
    assert_int_equal(n_acks(fx), 25);
    for (uint64_t seq = 1; seq <= 25; seq++) assert_acked_ok(fx, seq);

    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "EXISTS a"), 0); /* not in db 0 */
    freeReplyObject(test_redis_cmd(c, "SELECT 3"));
    size_t na, nb;
    char(*a)[25] = test_redis_event_ids(c, "a", &na);
    char(*b)[25] = test_redis_event_ids(c, "b", &nb);
    assert_int_equal(na, 16);
    assert_int_equal(nb, 9);
    size_t ia = 0, ib = 0;
    for (int i = 0; i < 25; i++) {
        if (i % 3 == 0) assert_string_equal(b[ib++], storage[i].id);
        else assert_string_equal(a[ia++], storage[i].id);
    }
    free(a);
    free(b);
    redisFree(c);
}

/* A key of another type: that event's FATAL with the server's text; the
 * events around it are added. With dedupe, too, and then no dedupe key
 * is left behind that would make a retry a false "duplicate". */
static void test_wrongtype_is_fatal_ack(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[4];
    outbox_sink_event_t events[4];

    use_server(fx, NULL, NULL);
    redisContext *c = test_redis_connect(&fx->redis);
    freeReplyObject(test_redis_cmd(c, "SET notastream hello"));
    for (int dedupe = 0; dedupe <= 1; dedupe++) {
        host_set(fx, "dedupe", dedupe ? "true" : "false");
        host_clear_acks(fx);
        open_ok(fx);
        make_events(storage, 4, 1 + 4 * (uint64_t)dedupe, "good", events);
        events[1].destination = "notastream";
        publish_ok(fx, events, 4);
        assert_acked_ok(fx, events[0].seq);
        assert_acked_fatal(fx, events[1].seq, "XADD to stream notastream: WRONGTYPE");
        assert_acked_ok(fx, events[2].seq);
        assert_acked_ok(fx, events[3].seq);
        close_sink(fx);
    }
    assert_int_equal(test_redis_int(c, "XLEN good"), 6);
    assert_int_equal(test_redis_int(c, "EXISTS outbox:dedupe:notastream:%s", storage[1].id), 0);
    /* Fixed: the retry adds it. */
    freeReplyObject(test_redis_cmd(c, "DEL notastream"));
    open_ok(fx);
    host_clear_acks(fx);
    publish_ok(fx, &events[1], 1);
    assert_acked_ok(fx, events[1].seq);
    assert_int_equal(test_redis_int(c, "XLEN notastream"), 1);
    redisFree(c);
}

/* OOM is no fault of the event: RETRY, nothing acked, and the same
 * events go in once memory is there. */
static void test_oom_is_retry(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[3];
    outbox_sink_event_t events[3];

    use_server(fx, "maxmemory-policy noeviction", NULL);
    open_ok(fx);
    redisContext *c = test_redis_connect(&fx->redis);
    freeReplyObject(test_redis_cmd(c, "CONFIG SET maxmemory 1"));
    make_events(storage, 3, 1, "s", events);
    assert_int_equal(publish(fx, events, 3), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "OOM");
    assert_int_equal(n_acks(fx), 0);
    freeReplyObject(test_redis_cmd(c, "CONFIG SET maxmemory 0"));
    publish_ok(fx, events, 3);
    assert_int_equal(n_acks(fx), 3);
    assert_int_equal(test_redis_int(c, "XLEN s"), 3);
    redisFree(c);
}

/* ----------------------------------------------------------------------------
 * Tests: trimming
 * ------------------------------------------------------------------------- */

static void publish_n(fixture_t *fx, const char *stream, size_t n, uint64_t first) {
    test_event_t *storage = calloc(n, sizeof *storage);
    outbox_sink_event_t *events = calloc(n, sizeof *events);
    make_events(storage, n, first, stream, events);
    publish_ok(fx, events, n);
    free(storage);
    free(events);
}

static void test_trimming(void **state) {
    fixture_t *fx = *state;
    use_server(fx, NULL, NULL);
    redisContext *c = test_redis_connect(&fx->redis);

    /* Exact MAXLEN: exactly that many stay. */
    host_set(fx, "maxlen", "10");
    host_set(fx, "trim_exact", "true");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "trim MAXLEN 10");
    publish_n(fx, "exact", 50, 1);
    assert_int_equal(test_redis_int(c, "XLEN exact"), 10);
    close_sink(fx);

    /* Approximate (the default): whole nodes of 100 entries go, so at
     * least maxlen stay, and not much more. */
    host_set(fx, "maxlen", "100");
    host_set(fx, "trim_exact", "false");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "trim MAXLEN ~ 100");
    publish_n(fx, "approx", 1000, 1);
    long long len = test_redis_int(c, "XLEN approx");
    assert_in_range(len, 100, 200);
    close_sink(fx);

    /* MINID with an id: what is older goes. */
    redisReply *r = test_redis_cmd(c, "XRANGE exact - + COUNT 6");
    char keep_from[64];
    snprintf(keep_from, sizeof keep_from, "%s", r->element[5]->element[0]->str);
    freeReplyObject(r);
    host_init(fx);
    host_set(fx, "url", fx->redis.url);
    host_set(fx, "minid", keep_from);
    host_set(fx, "trim_exact", "yes");
    open_ok(fx);
    publish_n(fx, "exact", 1, 100);
    assert_int_equal(test_redis_int(c, "XLEN exact"), 6); /* entries 6..10 and the new one */
    close_sink(fx);

    /* MINID as an age: after a pause, only the newest entry is young
     * enough. */
    host_set(fx, "minid", "50ms");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "trim MINID (now - 50 ms)");
    sleep_ms(120);
    publish_n(fx, "exact", 1, 101);
    assert_int_equal(test_redis_int(c, "XLEN exact"), 1);
    close_sink(fx);
    host_set(fx, "minid", "7d");
    open_ok(fx);
    publish_n(fx, "exact", 3, 102);
    assert_int_equal(test_redis_int(c, "XLEN exact"), 4);
    redisFree(c);
}

/* ----------------------------------------------------------------------------
 * Tests: dedupe
 * ------------------------------------------------------------------------- */

/* The same events twice (a replay after a crash): added once, acked OK
 * both times; the key remembers the entry for dedupe_ttl; another stream
 * is another scope. After SCRIPT FLUSH (NOSCRIPT) the sink falls back to
 * EVAL and loads the script again. */
static void test_dedupe(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[5];
    outbox_sink_event_t events[5];

    use_server(fx, NULL, NULL);
    host_set(fx, "dedupe", "true");
    host_set(fx, "dedupe_ttl", "600");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "dedupe on (EVALSHA)");
    make_events(storage, 5, 1, "d", events);
    publish_ok(fx, events, 5);
    publish_ok(fx, events, 5);
    assert_int_equal(n_acks(fx), 10);
    for (size_t i = 0; i < 10; i++) assert_int_equal(ack_at(fx, i).status, OUTBOX_SINK_OK);

    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "XLEN d"), 5);
    long long ttl = test_redis_int(c, "TTL outbox:dedupe:d:%s", storage[0].id);
    assert_in_range(ttl, 590, 600);
    redisReply *first = test_redis_cmd(c, "XRANGE d - + COUNT 1");
    redisReply *mark = test_redis_cmd(c, "GET outbox:dedupe:d:%s", storage[0].id);
    assert_string_equal(mark->str, first->element[0]->element[0]->str);
    freeReplyObject(first);
    freeReplyObject(mark);

    /* Another stream: its own scope. */
    for (int i = 0; i < 5; i++) events[i].destination = "d2";
    publish_ok(fx, events, 2);
    assert_int_equal(test_redis_int(c, "XLEN d2"), 2);

    /* The script cache emptied under the sink. */
    freeReplyObject(test_redis_cmd(c, "SCRIPT FLUSH"));
    host_clear_acks(fx);
    publish_ok(fx, events, 5);
    for (uint64_t seq = 1; seq <= 5; seq++) assert_acked_ok(fx, seq);
    assert_int_equal(test_redis_int(c, "XLEN d2"), 5);
    assert_contains(sinkhost_log(fx->h), "NOSCRIPT");
    close_sink(fx);
    assert_contains(sinkhost_log(fx->h), "closing: 10 entries added, 7 duplicates not added again");
    redisFree(c);
}

/* ----------------------------------------------------------------------------
 * Tests: AUTH, ACL users, and never a password in a message
 * ------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_auth(void **state) {
    fixture_t *fx = *state;
    char pass_file[256], wrong_file[256], app_url[128];
    test_event_t storage[1];
    outbox_sink_event_t events[1];

    use_server(fx, "requirepass Default-Pass-42\nuser app on >App-Pass-77 ~* &* +@all", "Default-Pass-42");
    snprintf(pass_file, sizeof pass_file, "%s/default.pass", fx->redis.dir);
    snprintf(wrong_file, sizeof wrong_file, "%s/wrong.pass", fx->redis.dir);
    write_file(pass_file, "Default-Pass-42\n");
    write_file(wrong_file, "Wrong-Pass-99\n");

    /* No password: the server says NOAUTH; FATAL, saying what to set. */
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "wants a password: set option password (as {file: PATH} or {env: NAME})");

    /* A wrong one: FATAL, and the message does not show it. */
    host_set(fx, "password_file", wrong_file);
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "refused the login as user default (password from ");
    assert_contains(fx->errbuf, "WRONGPASS");
    assert_null(strstr(fx->errbuf, "Wrong-Pass-99"));

    /* The right one, from the file (its newline is not part of it). */
    host_set(fx, "password_file", pass_file);
    open_ok(fx);
    make_events(storage, 1, 1, "auth", events);
    publish_ok(fx, events, 1);
    close_sink(fx);

    /* From the environment, as an ACL user named in the url. */
    host_init(fx);
    snprintf(app_url, sizeof app_url, "redis://app@127.0.0.1:%d/0", fx->redis.port);
    host_set(fx, "url", app_url);
    setenv("OUTBOX_TEST_REDIS_APP_PASS", "App-Pass-77", 1);
    host_set(fx, "password_env", "OUTBOX_TEST_REDIS_APP_PASS");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "user app, password from $OUTBOX_TEST_REDIS_APP_PASS");
    publish_ok(fx, events, 1);
    close_sink(fx);
    setenv("OUTBOX_TEST_REDIS_APP_PASS", "Not-The-Pass-1", 1);
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "refused the login as user app");
    assert_null(strstr(fx->errbuf, "Not-The-Pass-1"));
    unsetenv("OUTBOX_TEST_REDIS_APP_PASS");

    /* A user without a password. */
    host_init(fx);
    host_set(fx, "url", app_url);
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "user app is set but no password");

    /* No password anywhere in what the sink logged. */
    assert_null(strstr(logged(fx), "Pass-"));
    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "XLEN auth"), 2);
    redisFree(c);
}

/* issue 13: whatever stands before a url's '@' may be a password, and a
 * '/' or '@' in it used to make the parse take it for a host, and the
 * password then showed in the open error (outboxd's log line and the
 * checkpoint message of `outboxctl status`). Each url here is refused or
 * fails against a port nothing listens on; neither the error nor any log
 * line may hold the secret. */
static void test_password_in_url_is_never_printed(void **state) {
    fixture_t *fx = *state;
    /* "PORT" becomes a port nothing listens on. */
    static const char *const forms[] = {
        "redis://user:pa/S3CRET@127.0.0.1:PORT/0",  /* the issue's case */
        "redis://:pa/S3CRET@127.0.0.1:PORT/0",
        "redis://pa/S3CRET@127.0.0.1:PORT/0",       /* no ':' at all */
        "redis://user:pa@S3CRET@127.0.0.1:PORT/0",  /* a raw '@' */
        "redis://user:pa?S3CRET@127.0.0.1:PORT/0",
        "redis://user:S3CRET@127.0.0.1:PORT/x",     /* and another mistake after it */
        "redis://user:S3CRET@[::1:PORT/0",
        "unix://user:pa/S3CRET@/tmp/outbox-none-PORT.sock",
        "http://user:S3CRET@127.0.0.1:PORT/0",      /* not a redis url at all */
        "redis://S3CRET@127.0.0.1:PORT/0%",         /* a user name; the url is bad after it */
    };
    char port[16];
    snprintf(port, sizeof port, "%d", test_redis_free_port());
    all_log[0] = '\0';
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char url[200];
        const char *at = strstr(forms[i], "PORT");
        snprintf(url, sizeof url, "%.*s%s%s", (int)(at - forms[i]), forms[i], port, at + 4);
        host_init(fx);
        host_set(fx, "url", url);
        host_set(fx, "connect_timeout_ms", "500");
        int rc = try_open(fx);
        print_message("# %s -> %d: %s\n", forms[i], rc, fx->errbuf);
        if (rc == OUTBOX_SINK_OK) fail_msg("%s: open succeeded", forms[i]);
        if (strstr(fx->errbuf, "S3CRET") != NULL) fail_msg("%s: the error shows it: %s", forms[i], fx->errbuf);
        assert_contains(fx->errbuf, "redis sink: ");
    }
    assert_null(strstr(logged(fx), "S3CRET"));
}

/* The credentials as options, which outboxd fills from {file: PATH} or
 * {env: NAME} before open: user and password. Right ones deliver; a wrong
 * password is FATAL (the sink stops, as the README says) with the server's
 * WRONGPASS and where the password came from, never the password. */
static void test_user_and_password_options(void **state) {
    fixture_t *fx = *state;
    char url[128], pass_file[256];
    test_event_t storage[1];
    outbox_sink_event_t events[1];

    use_server(fx, "requirepass Default-Pass-42\nuser app on >App/Pass@77 ~* &* +@all", "Default-Pass-42");
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", fx->redis.port);
    all_log[0] = '\0';

    host_init(fx);
    host_set(fx, "url", url);
    host_set(fx, "user", "app");
    host_set(fx, "password", "App/Pass@77");
    open_ok(fx);
    assert_contains(sinkhost_log(fx->h), "user app, password from option password or password_file");
    make_events(storage, 1, 1, "acl", events);
    publish_ok(fx, events, 1);
    assert_acked_ok(fx, 1);
    close_sink(fx);

    host_set(fx, "password", "Wrong/Pass@99");
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    print_message("# wrong password: %s\n", fx->errbuf);
    assert_contains(fx->errbuf, "refused the login as user app (password from option password or password_file)");
    assert_contains(fx->errbuf, "WRONGPASS");
    assert_null(strstr(fx->errbuf, "Pass@"));

    /* The default user with option password. */
    host_init(fx);
    host_set(fx, "url", url);
    host_set(fx, "password", "Default-Pass-42");
    open_ok(fx);
    publish_ok(fx, events, 1);
    close_sink(fx);

    /* One password source; one user. */
    snprintf(pass_file, sizeof pass_file, "%s/p", fx->redis.dir);
    write_file(pass_file, "Default-Pass-42\n");
    host_set(fx, "password_file", pass_file);
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "option password_file: give either the secret or its _file, not both");
    host_init(fx);
    snprintf(url, sizeof url, "redis://other@127.0.0.1:%d/0", fx->redis.port);
    host_set(fx, "url", url);
    host_set(fx, "user", "app");
    host_set(fx, "password", "App/Pass@77");
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "option user: the url names another user");

    assert_null(strstr(logged(fx), "Pass@"));
    assert_null(strstr(logged(fx), "Pass-42"));
    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "XLEN acl"), 2);
    redisFree(c);
}

/* password_file: PATH, the form the README documented, now read by
 * outboxd for the SECRET option password (sink.h: KEY_file): the file's
 * content logs in (one trailing newline is not part of it), and a file
 * that cannot be a password is refused by check and open, naming the
 * option and the file, never the content. */
static void test_password_file_through_outboxd(void **state) {
    fixture_t *fx = *state;
    char good[256], big[256], nul[256], empty[256];
    test_event_t storage[1];
    outbox_sink_event_t events[1];

    use_server(fx, "requirepass File/Pass@42", "File/Pass@42");
    snprintf(good, sizeof good, "%s/good.pass", fx->redis.dir);
    snprintf(big, sizeof big, "%s/big.pass", fx->redis.dir);
    snprintf(nul, sizeof nul, "%s/nul.pass", fx->redis.dir);
    snprintf(empty, sizeof empty, "%s/empty.pass", fx->redis.dir);
    write_file(good, "File/Pass@42\n");
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    for (int i = 0; i < 65537; i++) fputc('a', f);
    fclose(f);
    f = fopen(nul, "w");
    assert_non_null(f);
    fwrite("ab\0cd\n", 1, 6, f);
    fclose(f);
    write_file(empty, "\n");

    host_set(fx, "password_file", good);
    if (check(fx) != OUTBOX_SINK_OK) fail_msg("check: %s", fx->errbuf);
    open_ok(fx);
    make_events(storage, 1, 1, "pf", events);
    publish_ok(fx, events, 1);
    assert_acked_ok(fx, 1);
    close_sink(fx);

    static const struct {
        const char *says;
    } cases[3] = {{"is larger than 65536 bytes"}, {"holds a NUL byte"}, {"is empty"}};
    const char *files[3] = {big, nul, empty};
    for (int i = 0; i < 3; i++) {
        host_init(fx);
        host_set(fx, "url", fx->redis.url);
        host_set(fx, "password_file", files[i]);
        assert_int_equal(check(fx), OUTBOX_SINK_FATAL);
        assert_contains(fx->errbuf, "option password_file: ");
        assert_contains(fx->errbuf, files[i]);
        assert_contains(fx->errbuf, cases[i].says);
        assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
        assert_contains(fx->errbuf, cases[i].says);
    }
    assert_null(strstr(logged(fx), "Pass@42"));
    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "XLEN pf"), 1);
    redisFree(c);
}

/* The stream name rule (README: Stream names): valid UTF-8, no control
 * character (an empty one never reaches the sink: outboxd fails it). A refused name is that event's FATAL, naming the
 * event id and the name (escaped), before anything is sent; the other
 * events of the batch are added. */
static void test_stream_name_rule(void **state) {
    fixture_t *fx = *state;
    static const struct {
        const char *stream, *says;
    } cases[] = {
        {"orders", NULL},
        {"orders\nx", "stream name \"orders\\x0ax\" refused: it holds a control character"},
        {"orders\x01", "it holds a control character"},
        {"orders\x7f", "it holds a control character"},
        {"orders\xc2\x85", "it holds a control character"},   /* U+0085, C1 */
        {"orders\xff", "stream name \"orders\\xff\" refused: it is not valid UTF-8"},
        {"orders\xc0\xaf", "it is not valid UTF-8"},           /* overlong '/' */
        {"orders\xed\xa0\x80", "it is not valid UTF-8"},       /* a surrogate */
        {"orders\xe2\x82", "it is not valid UTF-8"},           /* cut short */
        {"Zürich orders:{1}", NULL},                           /* spaces, braces, UTF-8: fine */
    };
    size_t n = sizeof cases / sizeof cases[0];
    test_event_t storage[16];
    outbox_sink_event_t events[16];
    use_server(fx, NULL, NULL);
    open_ok(fx);
    for (size_t i = 0; i < n; i++) {
        make_event(&storage[i], i + 1, cases[i].stream);
        events[i] = storage[i].ev;
    }
    publish_ok(fx, events, n);
    for (size_t i = 0; i < n; i++) {
        if (cases[i].says == NULL) {
            assert_acked_ok(fx, i + 1);
            continue;
        }
        assert_acked_fatal(fx, i + 1, cases[i].says);
        assert_acked_fatal(fx, i + 1, storage[i].id); /* names the event */
    }
    print_message("# %s\n", ack_of(fx, 3).error);
    close_sink(fx);
    redisContext *c = test_redis_connect(&fx->redis);
    assert_int_equal(test_redis_int(c, "DBSIZE"), 2);
    redisFree(c);
}

/* A database the server does not have: FATAL, naming the url option. */
static void test_bad_database_is_fatal(void **state) {
    fixture_t *fx = *state;
    char url[128];
    use_server(fx, NULL, NULL);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/99", fx->redis.port);
    host_set(fx, "url", url);
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "option url: SELECT of the database: ERR DB index is out of range");
}

/* ----------------------------------------------------------------------------
 * Tests: connections that break
 * ------------------------------------------------------------------------- */

/* The server killed and started again: publish says RETRY and acks
 * nothing, then reconnects by itself. A large batch to a dead connection
 * makes hiredis write(2) into a reset socket: SIGPIPE, which must not
 * kill the process (it would kill this test program). */
static void test_server_restart_and_sigpipe(void **state) {
    fixture_t *fx = *state;
    size_t n = 3000;
    test_event_t *storage = calloc(n, sizeof *storage);
    outbox_sink_event_t *events = calloc(n, sizeof *events);
    static char big[4096];

    use_server(fx, NULL, NULL);
    host_set(fx, "pipeline", "5000");
    open_ok(fx);
    make_events(storage, n, 1, "r", events);
    memset(big, 'x', sizeof big);
    for (size_t i = 0; i < n; i++) {
        events[i].payload = (const unsigned char *)big;
        events[i].payload_len = sizeof big;
    }
    publish_ok(fx, events, 10);
    test_redis_kill(&fx->redis, SIGKILL);
    host_clear_acks(fx);
    assert_int_equal(publish(fx, events + 10, n - 10), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "connection to");
    assert_int_equal(n_acks(fx), 0);
    /* Still down: RETRY, saying why. */
    assert_int_equal(publish(fx, events + 10, n - 10), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "Connection refused");

    test_redis_restart(&fx->redis);
    publish_ok(fx, events + 10, n - 10);
    assert_int_equal(n_acks(fx), n - 10);
    assert_contains(sinkhost_log(fx->h), "reconnected to");
    redisContext *c = test_redis_connect(&fx->redis);
    /* appendfsync always: the 10 acked before the kill survived it. */
    assert_int_equal(test_redis_int(c, "XLEN r"), (long long)n);
    redisFree(c);
    free(storage);
    free(events);
}

/* The reply-to-ack mapping, on a fake server: each event is acked from its
 * own reply, whatever the others got. */
static void test_reply_mapping(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[7];
    outbox_sink_event_t events[7];
    fake_t *f = fake_start(fx);
    static const char *const replies[] = {
        ENTRY_ID,
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ENTRY_ID,
        "-ERR some permanent problem\r\n",
        ":5\r\n",
        "$-1\r\n",
        ENTRY_ID,
    };
    fake_script(f, 7, replies);
    open_ok(fx);
    make_events(storage, 7, 1, "m", events);
    publish_ok(fx, events, 7);
    assert_int_equal(n_acks(fx), 7);
    assert_acked_ok(fx, 1);
    assert_acked_fatal(fx, 2, "redis sink: XADD to stream m: WRONGTYPE Operation");
    assert_acked_ok(fx, 3);
    assert_acked_fatal(fx, 4, "ERR some permanent problem");
    assert_acked_fatal(fx, 5, "unexpected reply (an integer)");
    assert_acked_fatal(fx, 6, "unexpected reply (nil)");
    assert_acked_ok(fx, 7);
}

/* The connection ends after exactly 2 of 5 replies: those 2 stay acked,
 * the other 3 are not acked and publish says RETRY; the next call
 * reconnects and sends them. */
static void test_connection_lost_mid_pipeline(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[5];
    outbox_sink_event_t events[5];
    fake_t *f = fake_start(fx);
    static const char *const cut[] = {ENTRY_ID, ENTRY_ID, "CLOSE"};
    static const char *const rest[] = {ENTRY_ID, ENTRY_ID, ENTRY_ID};

    open_ok(fx);
    make_events(storage, 5, 1, "m", events);
    fake_script(f, 3, cut);
    assert_int_equal(publish(fx, events, 5), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "connection to");
    assert_contains(fx->errbuf, "lost");
    assert_contains(fx->errbuf, "2 of 5 events of this pipeline acked");
    assert_int_equal(n_acks(fx), 2);
    assert_acked_ok(fx, 1);
    assert_acked_ok(fx, 2);
    for (uint64_t seq = 3; seq <= 5; seq++) assert_not_acked(fx, seq);

    fake_script(f, 3, rest);
    publish_ok(fx, events + 2, 3);
    assert_int_equal(n_acks(fx), 5);
    for (uint64_t seq = 3; seq <= 5; seq++) assert_acked_ok(fx, seq);
    assert_int_equal(f->connections, 2);
    assert_contains(sinkhost_log(fx->h), "reconnected to");
}

/* A transient error in the middle: the events around it are acked from
 * their replies, that one is not, and publish says RETRY with the text;
 * the batch's later pipelines are not sent. */
static void test_transient_error_mid_pipeline(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[6];
    outbox_sink_event_t events[6];
    fake_t *f = fake_start(fx);
    static const char *const replies[] = {
        ENTRY_ID, "-LOADING Redis is loading the dataset in memory\r\n", ENTRY_ID};

    host_set(fx, "pipeline", "3");
    fake_script(f, 3, replies);
    open_ok(fx);
    make_events(storage, 6, 1, "m", events);
    assert_int_equal(publish(fx, events, 6), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "LOADING");
    assert_acked_ok(fx, 1);
    assert_not_acked(fx, 2);
    assert_acked_ok(fx, 3);
    for (uint64_t seq = 4; seq <= 6; seq++) assert_not_acked(fx, seq);
    assert_int_equal(f->commands_seen, 3);
}

/* NOSCRIPT from EVALSHA: that event goes again with EVAL and the source. */
static void test_noscript_falls_back_to_eval(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[3];
    outbox_sink_event_t events[3];
    fake_t *f = fake_start(fx);
    static const char *const replies[] = {
        ENTRY_ID, "-NOSCRIPT No matching script. Please use EVAL.\r\n", ENTRY_ID, ENTRY_ID};

    host_set(fx, "dedupe", "on");
    fake_script(f, 4, replies);
    open_ok(fx);
    make_events(storage, 3, 1, "m", events);
    publish_ok(fx, events, 3);
    for (uint64_t seq = 1; seq <= 3; seq++) assert_acked_ok(fx, seq);
    assert_int_equal(f->commands_seen, 4);
    assert_int_equal(f->evals_seen, 1);
}

/* What the handshake may meet: an old server or a cluster node (FATAL,
 * before any event is handed to on_error), a server still loading
 * (RETRY). */
static void test_old_or_loading_server(void **state) {
    fixture_t *fx = *state;
    fake_t *f = fake_start(fx);

    f->version = "6.0.16";
    host_set(fx, "minid", "24h");
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "runs Redis 6.0, and option minid needs 6.2");
    host_init(fx);
    host_set(fx, "url", f->url);
    open_ok(fx);
    close_sink(fx);
    f->version = "4.0.14";
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "runs Redis 4.0, and a stream needs 5.0");

    f->version = "7.0.15";
    f->mode = "cluster";
    assert_int_equal(try_open(fx), OUTBOX_SINK_FATAL);
    assert_contains(fx->errbuf, "is a Redis Cluster node");
    f->mode = "standalone";
    f->ping_reply = "-LOADING Redis is loading the dataset in memory\r\n";
    assert_int_equal(try_open(fx), OUTBOX_SINK_RETRY);
    assert_contains(fx->errbuf, "PING: LOADING");
}

/* ----------------------------------------------------------------------------
 * Tests: stats
 * ------------------------------------------------------------------------- */

typedef struct {
    char names[16][65];
    double values[16];
    outbox_sink_stat_kind_t kinds[16];
    size_t n;
} figures_t;

static void collect(void *ctx, const char *name, outbox_sink_stat_kind_t kind, double value,
                    const char *help) {
    figures_t *fig = ctx;
    assert_true(fig->n < 16);
    assert_true(strlen(name) <= 64 && name[0] >= 'a' && name[0] <= 'z');
    assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(name));
    for (size_t i = 0; i < fig->n; i++) assert_string_not_equal(fig->names[i], name);
    assert_non_null(help);
    snprintf(fig->names[fig->n], sizeof fig->names[0], "%s", name);
    fig->values[fig->n] = value;
    fig->kinds[fig->n++] = kind;
}

/* The figure name of the sink's stats, asserting its kind. */
static double figure(fixture_t *fx, const char *name, outbox_sink_stat_kind_t kind) {
    figures_t fig = {.n = 0};
    sinkhost_plugin(fx->h)->stats(sinkhost_state(fx->h), collect, &fig);
    for (size_t i = 0; i < fig.n; i++) {
        if (strcmp(fig.names[i], name) != 0) continue;
        assert_int_equal(fig.kinds[i], kind);
        return fig.values[i];
    }
    fail_msg("no figure %s", name);
    return -1;
}

/* What an operator reads on the metrics endpoint: entries added,
 * duplicates the dedupe script kept out, events refused (FATAL acks),
 * connections lost and won back, and whether one is up now. */
static void test_stats(void **state) {
    fixture_t *fx = *state;
    test_event_t storage[3];
    outbox_sink_event_t events[3];

    use_server(fx, NULL, NULL);
    redisContext *c = test_redis_connect(&fx->redis);
    freeReplyObject(test_redis_cmd(c, "SET notastream hello"));
    redisFree(c);
    host_set(fx, "dedupe", "true");
    open_ok(fx);
    assert_int_equal(figure(fx, "redis_connected", OUTBOX_SINK_STAT_GAUGE), 1);
    make_events(storage, 3, 1, "st", events);
    events[1].destination = "notastream";
    publish_ok(fx, events, 3);
    publish_ok(fx, events, 3); /* a replay: two duplicates, one more refusal */
    assert_int_equal(figure(fx, "redis_entries_added_total", OUTBOX_SINK_STAT_COUNTER), 2);
    assert_int_equal(figure(fx, "redis_duplicates_total", OUTBOX_SINK_STAT_COUNTER), 2);
    assert_int_equal(figure(fx, "redis_refused_total", OUTBOX_SINK_STAT_COUNTER), 2);
    assert_int_equal(figure(fx, "redis_transient_errors_total", OUTBOX_SINK_STAT_COUNTER), 0);

    test_redis_kill(&fx->redis, SIGKILL);
    assert_int_equal(publish(fx, events, 1), OUTBOX_SINK_RETRY);
    assert_int_equal(figure(fx, "redis_connections_lost_total", OUTBOX_SINK_STAT_COUNTER), 1);
    assert_int_equal(figure(fx, "redis_connected", OUTBOX_SINK_STAT_GAUGE), 0);
    test_redis_restart(&fx->redis);
    publish_ok(fx, events, 1);
    assert_int_equal(figure(fx, "redis_reconnects_total", OUTBOX_SINK_STAT_COUNTER), 1);
    assert_int_equal(figure(fx, "redis_connected", OUTBOX_SINK_STAT_GAUGE), 1);
}

/* ----------------------------------------------------------------------------
 * Throughput of the plugin alone (no outboxd, no MongoDB)
 * ------------------------------------------------------------------------- */

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Events/s through publish, XADD against the dedupe script, with the
 * server fsyncing each write (as the tests run it) and once a second
 * (Redis' default). Printed, not asserted: it depends on the machine. */
static void test_throughput(void **state) {
    fixture_t *fx = *state;
    const size_t n = 20000, batch = 500;
    test_event_t *storage = calloc(n, sizeof *storage);
    outbox_sink_event_t *events = calloc(n, sizeof *events);
    static char payload[141];
    outbox_sink_header_t headers[] = {{"trace", "0123456789abcdef"}};
    const char *fsyncs[] = {"always", "everysec"};
    long long memory = 0;

    use_server(fx, NULL, NULL);
    memset(payload, 'p', 140);
    make_events(storage, n, 1, "", events);
    for (size_t i = 0; i < n; i++) {
        events[i].payload = (const unsigned char *)payload;
        events[i].payload_len = 140;
        events[i].headers = headers;
        events[i].n_headers = 1;
    }
    redisContext *c = test_redis_connect(&fx->redis);
    for (int f = 0; f < 2; f++) {
        double rate[2];
        freeReplyObject(test_redis_cmd(c, "CONFIG SET appendfsync %s", fsyncs[f]));
        for (int dedupe = 0; dedupe <= 1; dedupe++) {
            char stream[32];
            snprintf(stream, sizeof stream, "tp-%s-%d", fsyncs[f], dedupe);
            for (size_t i = 0; i < n; i++) events[i].destination = stream;
            host_set(fx, "dedupe", dedupe ? "true" : "false");
            host_clear_acks(fx);
            open_ok(fx);
            struct timespec start;
            clock_gettime(CLOCK_MONOTONIC, &start);
            for (size_t i = 0; i < n; i += batch) publish_ok(fx, events + i, batch);
            rate[dedupe] = (double)n / seconds_since(&start);
            assert_int_equal(n_acks(fx), n);
            assert_int_equal(test_redis_int(c, "XLEN %s", stream), (long long)n);
            close_sink(fx);
            if (dedupe) {
                redisReply *r = test_redis_cmd(c, "MEMORY USAGE outbox:dedupe:%s:%s", stream, storage[0].id);
                memory = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
                freeReplyObject(r);
            }
        }
        print_message("# plugin alone, %zu events of 140 bytes + 1 header, batches of %zu, "
                      "appendfsync %s: %.0f events/s, %.0f with dedupe\n",
                      n, batch, fsyncs[f], rate[0], rate[1]);
    }
    print_message("# a dedupe key takes %lld bytes (MEMORY USAGE) for dedupe_ttl\n", memory);
    redisFree(c);
    free(storage);
    free(events);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_refuses_bad_options_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_never_connects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_is_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_database_socket_and_small_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype_is_fatal_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom_is_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trimming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_in_url_is_never_printed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_and_password_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file_through_outboxd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_name_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_database_is_fatal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_restart_and_sigpipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_lost_mid_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_error_mid_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noscript_falls_back_to_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_or_loading_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    /* REDIS_TEST_ONLY=pattern runs only the matching tests (cmocka's
     * filter), when working on one. */
    if (getenv("REDIS_TEST_ONLY")) cmocka_set_test_filter(getenv("REDIS_TEST_ONLY"));
    /* As outboxd does before it loads a plugin (sink.h: Signals): hiredis
     * writes with write(2), and a write to a closed connection must fail
     * with EPIPE, not end the process. */
    signal(SIGPIPE, SIG_IGN);
    return TEST_RUN("redis sink", tests);
}
