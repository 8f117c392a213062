/*
 * test_file_sink.c - the built file sink, driven through tests/sinkhost.h:
 * outboxd's own loader, option code and check, and a host that keeps the
 * books of every ack (each test ends by asserting that the plugin broke
 * none of sink.h's rules: no double ack, no ack of an event it gave back,
 * none outside open..close). No server needed.
 *
 * Tests run as root in CI, where permission bits are not enforced, so an
 * unwritable path is made with a regular file where a directory should be:
 * that fails with ENOTDIR for root too. A short write is made with
 * RLIMIT_FSIZE, which root is also subject to.
 *
 * The test also defines fsync() itself, to see when the plugin calls it and
 * to make it fail on demand. The program is linked with -export-dynamic, so
 * the plugin's fsync binds to this one ahead of libc's.
 */
#include "testlib.h"
#include "sinkhost.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * fsync, recorded and made to fail on demand
 * ------------------------------------------------------------------------- */

#define MAX_FSYNCS 64
#define MAX_SEQ 512

static char fsynced[MAX_FSYNCS][PATH_MAX]; /* the files fsynced, in order */
static size_t n_fsyncs;
static const char *fsync_fails_for; /* fsync of this file fails with EIO */
static size_t fsyncs_at_ack[MAX_SEQ]; /* n_fsyncs when seq's latest ack came */

/* Replaces libc's fsync for the plugin (see the top of the file). Syncing
 * for real is not needed here, so it only records the file's path. */
int fsync(int fd) {
    char link[64], path[PATH_MAX];
    ssize_t len;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    len = readlink(link, path, sizeof path - 1);
    if (len < 0) return -1;
    path[len] = '\0';
    if (fsync_fails_for != NULL && strcmp(path, fsync_fails_for) == 0) {
        errno = EIO;
        return -1;
    }
    if (n_fsyncs < MAX_FSYNCS) snprintf(fsynced[n_fsyncs++], PATH_MAX, "%s", path);
    return 0;
}

static void fsync_reset(void) {
    n_fsyncs = 0;
    fsync_fails_for = NULL;
}

/* How many of the first `upto` fsyncs were of path. */
static size_t fsyncs_of(const char *path, size_t upto) {
    size_t n = 0;
    for (size_t i = 0; i < upto && i < n_fsyncs; i++) {
        if (strcmp(fsynced[i], path) == 0) n++;
    }
    return n;
}

static void on_ack(void *ctx, const sinkhost_ack_t *ack) {
    (void)ctx;
    if (ack->seq < MAX_SEQ) fsyncs_at_ack[ack->seq] = n_fsyncs;
}

/* ----------------------------------------------------------------------------
 * Fixture: a fresh directory and host per test
 * ------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char route[128]; /* DIR/{type}.jsonl: the fixed directory is DIR/ */
    sinkhost_t *h;
} fixture_t;

/* A new host for the file sink on fx->route, replacing the one before. */
static sinkhost_t *fresh_host(fixture_t *fx) {
    sinkhost_free(fx->h);
    fx->h = sinkhost_new("file");
    assert_non_null(fx->h);
    sinkhost_route(fx->h, fx->route);
    sinkhost_on_ack(fx->h, on_ack, NULL);
    return fx->h;
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_file_sink.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->route, sizeof fx->route, "%s/{type}.jsonl", fx->dir);
    fresh_host(fx);
    fsync_reset();
    umask(022);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    char first[512];
    size_t broken = 0;
    sinkhost_close(fx->h);
    for (int rule = 0; rule < SINKHOST_N_RULES; rule++) {
        size_t n = sinkhost_violations(fx->h, (sinkhost_rule_t)rule, first, sizeof first);
        if (n > 0) fprintf(stderr, "# the plugin broke a rule of sink.h %zu times: %s\n", n, first);
        broken += n;
    }
    sinkhost_free(fx->h);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return broken == 0 ? 0 : -1;
}

static void open_sink(fixture_t *fx) {
    char errbuf[512];
    int rc = sinkhost_open(fx->h, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open: %d %s", rc, errbuf);
}

/* A fresh host with one option set, opened; returns open's status. */
static int open_with(fixture_t *fx, const char *key, const char *value, char *errbuf, size_t size) {
    sinkhost_set(fresh_host(fx), key, value);
    return sinkhost_open(fx->h, errbuf, size);
}

static int publish(fixture_t *fx, const outbox_sink_event_t *events, size_t n, char *errbuf,
                   size_t size) {
    return sinkhost_publish(fx->h, events, n, NULL, errbuf, size);
}

static void publish_ok(fixture_t *fx, const outbox_sink_event_t *events, size_t n) {
    char errbuf[512];
    int rc = publish(fx, events, n, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
}

static size_t n_acks(fixture_t *fx) { return sinkhost_n_acks(fx->h); }

/* The ack of seq (failing when there is none). */
static sinkhost_ack_t ack_of(fixture_t *fx, uint64_t seq) {
    sinkhost_ack_t a;
    if (!sinkhost_ack_of(fx->h, seq, &a)) fail_msg("event %llu not acked", (unsigned long long)seq);
    return a;
}

static void assert_acked_ok(fixture_t *fx, uint64_t seq) {
    sinkhost_ack_t a = ack_of(fx, seq);
    if (a.status != OUTBOX_SINK_OK)
        fail_msg("event %llu acked %d (%s), not OK", (unsigned long long)seq, (int)a.status, a.error);
}

static void assert_not_acked(fixture_t *fx, uint64_t seq) {
    if (sinkhost_acks_for(fx->h, seq) > 0) fail_msg("event %llu acked, should not be", (unsigned long long)seq);
}

/* The event's ack came after an fsync of its file. */
static void assert_synced_before_ack(const outbox_sink_event_t *ev, const char *policy) {
    if (fsyncs_of(ev->destination, fsyncs_at_ack[ev->seq]) == 0)
        fail_msg("fsync=%s: event %llu acked before its file was fsynced", policy,
                 (unsigned long long)ev->seq);
}

static void path_in(const fixture_t *fx, const char *name, char *out, size_t size) {
    snprintf(out, size, "%s/%s", fx->dir, name);
}

/* The whole file, NUL-terminated; "" when it does not exist. Caller frees. */
static char *slurp(const char *path) {
    char *data = test_read_file(path);
    return data != NULL ? data : strdup("");
}

static void assert_file_equal(const char *path, const char *expected) {
    char *got = slurp(path);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "# %s\n# expected:\n%s# got:\n%s", path, expected, got);
        free(got);
        fail_msg("%s does not hold the expected lines", path);
    }
    free(got);
}

static int count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d) != NULL) n++;
    closedir(d);
    return n;
}

/* ----------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------- */

#define PAYLOAD(s) (const unsigned char *)(s), sizeof(s) - 1

/* A simple event: seq n, id ...00n, payload {"n":n}. The strings live in
 * per-seq static storage, so a test can keep several at once. */
static outbox_sink_event_t simple_event(uint64_t seq, const char *destination) {
    static char ids[MAX_SEQ][25], payloads[MAX_SEQ][32];
    outbox_sink_event_t ev;
    assert_true(seq < MAX_SEQ);
    snprintf(ids[seq], sizeof ids[seq], "%024llx", (unsigned long long)seq);
    snprintf(payloads[seq], sizeof payloads[seq], "{\"n\":%llu}", (unsigned long long)seq);
    memset(&ev, 0, sizeof ev);
    ev.seq = seq;
    ev.id = ids[seq];
    ev.type = "t";
    ev.key = "k";
    ev.destination = destination;
    ev.payload = (const unsigned char *)payloads[seq];
    ev.payload_len = strlen(payloads[seq]);
    ev.created_ms = 1795718725000 + (int64_t)seq;
    return ev;
}

/* The line simple_event(seq, destination) must produce. */
static void simple_line(uint64_t seq, const char *destination, char *out, size_t size) {
    snprintf(out, size,
             "{\"id\":\"%024llx\",\"type\":\"t\",\"key\":\"k\",\"created\":\"2026-11-26T18:45:25.%03dZ\","
             "\"destination\":\"%s\",\"data\":{\"n\":%llu},\"headers\":{}}\n",
             (unsigned long long)seq, (int)seq, destination, (unsigned long long)seq);
}

/* Appends simple_line(seq, destination) to buf. */
static void add_line(char *buf, size_t size, uint64_t seq, const char *destination) {
    char line[1024];
    simple_line(seq, destination, line, sizeof line);
    assert_true(strlen(buf) + strlen(line) < size);
    strcat(buf, line);
}

static const char *policies[] = {"always", "batch", "never"};

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_identification(void **state) {
    fixture_t *fx = *state;
    const outbox_sink_plugin_t *plugin = sinkhost_plugin(fx->h);
    assert_int_equal(plugin->struct_size, sizeof(outbox_sink_plugin_t));
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_int_equal(plugin->abi_minor, OUTBOX_SINK_ABI_MINOR);
    assert_string_equal(plugin->name, "file");
    assert_string_equal(plugin->version, "1.2.0");
    assert_non_null(plugin->description);
    /* The 1.1 shape: a check, JSON only, stats, recover; acked within
     * publish, so no poll or flush. */
    assert_non_null(plugin->check);
    assert_non_null(plugin->recover);
    assert_int_equal(plugin->payloads, OUTBOX_SINK_PAYLOAD_JSON);
    assert_non_null(plugin->stats);
    assert_null(plugin->poll);
    assert_null(plugin->flush);

    /* The option table: the four options with their defaults, each mapped
     * onto the config struct, then the end. */
    static const struct {
        const char *key;
        outbox_sink_option_type_t type;
        const char *default_value;
    } expected[] = {{"fsync", OUTBOX_SINK_OPT_ENUM, "batch"},
                    {"mkdir", OUTBOX_SINK_OPT_BOOL, "true"},
                    {"file_mode", OUTBOX_SINK_OPT_STRING, "0644"},
                    {"max_open_files", OUTBOX_SINK_OPT_INT, "64"}};
    const outbox_sink_option_t *o = plugin->options;
    assert_int_equal(plugin->option_size, sizeof *o);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++, o++) {
        assert_non_null(o->key);
        assert_string_equal(o->key, expected[i].key);
        assert_int_equal(o->type, expected[i].type);
        assert_string_equal(o->default_value, expected[i].default_value);
        assert_true(o->flags & OUTBOX_SINK_OPTION_MAPPED);
        assert_non_null(o->help);
    }
    assert_string_equal(plugin->options[0].choices, "always|batch|never");
    assert_int_equal(plugin->options[3].min, 1);
    assert_int_equal(plugin->options[3].max, 1024);
    assert_null(o->key);

    /* Only the entry symbol is exported: the rest is static. */
    void *module = dlopen(sinkhost_plugin_path(fx->h), RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(module);
    assert_non_null(dlsym(module, OUTBOX_SINK_ENTRY_SYMBOL));
    assert_null(dlsym(module, "file_open"));
    assert_null(dlsym(module, "file_check"));
    dlclose(module);
}

static void test_lines_fields_and_escaping(void **state) {
    fixture_t *fx = *state;
    char path[PATH_MAX], expected[8192];
    path_in(fx, "orders.jsonl", path, sizeof path);

    static const outbox_sink_header_t headers1[] = {
        {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"x-\"quoted\"", "back\\slash\x7f"}};
    static const outbox_sink_header_t headers3[] = {
        {"bad-utf8", "a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82"}};
    outbox_sink_event_t events[3] = {
        {.seq = 10,
         .id = "5f0c6b7e8a9d4e3f2a1b0c9d",
         .type = "order.created",
         .key = "ord-1",
         .destination = path,
         .payload = PAYLOAD("{ \"total\" : 12.5, \"items\" : [ 1, 2 ] }"),
         .created_ms = 1795718725123,
         .headers = headers1,
         .n_headers = 2},
        {.seq = 11,
         .id = "5f0c6b7e8a9d4e3f2a1b0c9e",
         .type = "order.paid",
         .key = NULL,
         .destination = path,
         .payload = PAYLOAD("{}"),
         .created_ms = 0},
        {.seq = 12,
         .id = "5f0c6b7e8a9d4e3f2a1b0c9f",
         .type = "weird\"type\\",
         .key = "tab\tnl\nctl\x01\x1f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         .destination = path,
         .payload = PAYLOAD(" {\n  \"a\": \"x\\ny\"\r\n}\n"),
         .created_ms = -1,
         .headers = headers3,
         .n_headers = 1},
    };

    open_sink(fx);
    publish_ok(fx, events, 3);

    snprintf(expected, sizeof expected,
             "{\"id\":\"5f0c6b7e8a9d4e3f2a1b0c9d\",\"type\":\"order.created\",\"key\":\"ord-1\","
             "\"created\":\"2026-11-26T18:45:25.123Z\",\"destination\":\"%s\","
             "\"data\":{ \"total\" : 12.5, \"items\" : [ 1, 2 ] },"
             "\"headers\":{\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
             "\"x-\\\"quoted\\\"\":\"back\\\\slash\x7f\"}}\n"
             "{\"id\":\"5f0c6b7e8a9d4e3f2a1b0c9e\",\"type\":\"order.paid\",\"key\":null,"
             "\"created\":\"1970-01-01T00:00:00.000Z\",\"destination\":\"%s\","
             "\"data\":{},\"headers\":{}}\n"
             "{\"id\":\"5f0c6b7e8a9d4e3f2a1b0c9f\",\"type\":\"weird\\\"type\\\\\","
             "\"key\":\"tab\\u0009nl\\u000actl\\u0001\\u001f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
             "\"created\":\"1969-12-31T23:59:59.999Z\",\"destination\":\"%s\","
             "\"data\": {   \"a\": \"x\\ny\"  } ,"
             "\"headers\":{\"bad-utf8\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\"}}\n",
             path, path, path);
    assert_file_equal(path, expected);

    assert_int_equal(n_acks(fx), 3);
    for (uint64_t seq = 10; seq <= 12; seq++) assert_acked_ok(fx, seq);
    /* Acked in order, too (not required by the ABI, but this sink does). */
    sinkhost_ack_t a;
    assert_true(sinkhost_ack_at(fx->h, 0, &a) && a.seq == 10);
    assert_true(sinkhost_ack_at(fx->h, 2, &a) && a.seq == 12);

    /* A second batch appends to the same file. */
    outbox_sink_event_t more = simple_event(13, path);
    publish_ok(fx, &more, 1);
    add_line(expected, sizeof expected, 13, path);
    assert_file_equal(path, expected);
    assert_acked_ok(fx, 13);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
}

/* created is the event's own time for every line: events that share a
 * second, cross one, go back to an earlier one, and lie at the edges of
 * the years 0000..9999 (outside them created is null), in one batch; and
 * a line whose escaping makes it six times its input is whole. */
static void test_created_and_long_escaped_lines_are_exact(void **state) {
    fixture_t *fx = *state;
    char path[PATH_MAX];
    path_in(fx, "created.jsonl", path, sizeof path);
    static const int64_t ms[] = {1795718725998, 1795718725999, 1795718726000, 1795718725997,
                                 253402300799999, 253402300800000, -62167219200000,
                                 -62167219200001, 1795718726001};
    static const char *const text[] = {"\"2026-11-26T18:45:25.998Z\"", "\"2026-11-26T18:45:25.999Z\"",
                                       "\"2026-11-26T18:45:26.000Z\"", "\"2026-11-26T18:45:25.997Z\"",
                                       "\"9999-12-31T23:59:59.999Z\"", "null",
                                       "\"0000-01-01T00:00:00.000Z\"", "null",
                                       "\"2026-11-26T18:45:26.001Z\""};
    enum { N = sizeof ms / sizeof ms[0], LONG = 5000 };
    outbox_sink_event_t events[N + 1];
    static char key[LONG + 1];
    memset(key, 0x01, LONG);
    static char expected[N * 256 + LONG * 6 + 512];
    char line[512];
    expected[0] = '\0';
    for (size_t i = 0; i < N; i++) {
        events[i] = simple_event(i, path);
        events[i].created_ms = ms[i];
        snprintf(line, sizeof line,
                 "{\"id\":\"%024zx\",\"type\":\"t\",\"key\":\"k\",\"created\":%s,"
                 "\"destination\":\"%s\",\"data\":{\"n\":%zu},\"headers\":{}}\n",
                 i, text[i], path, i);
        strcat(expected, line);
    }
    events[N] = simple_event(N, path);
    events[N].key = key;
    snprintf(line, sizeof line, "{\"id\":\"%024x\",\"type\":\"t\",\"key\":\"", (unsigned)N);
    strcat(expected, line);
    char *end = expected + strlen(expected);
    for (size_t i = 0; i < LONG; i++, end += 6) memcpy(end, "\\u0001", 6);
    *end = '\0';
    snprintf(line, sizeof line,
             "\",\"created\":\"2026-11-26T18:45:25.%03dZ\",\"destination\":\"%s\","
             "\"data\":{\"n\":%u},\"headers\":{}}\n",
             (int)N, path, (unsigned)N);
    strcat(expected, line);

    open_sink(fx);
    publish_ok(fx, events, N + 1);
    assert_file_equal(path, expected);
}

static void test_two_destinations(void **state) {
    fixture_t *fx = *state;
    char a[PATH_MAX], b[PATH_MAX], dir[PATH_MAX], want_a[4096] = "", want_b[4096] = "";
    path_in(fx, "a.jsonl", a, sizeof a);
    path_in(fx, "deep/er/b.jsonl", b, sizeof b);
    path_in(fx, "deep/er", dir, sizeof dir);

    outbox_sink_event_t events[5];
    for (uint64_t i = 0; i < 5; i++) {
        const char *dest = (i % 2 == 0) ? a : b;
        events[i] = simple_event(i + 1, dest);
        add_line(i % 2 == 0 ? want_a : want_b, 4096, i + 1, dest);
    }
    open_sink(fx);
    publish_ok(fx, events, 5);
    assert_file_equal(a, want_a);
    assert_file_equal(b, want_b);
    assert_int_equal(n_acks(fx), 5);
    for (uint64_t seq = 1; seq <= 5; seq++) assert_acked_ok(fx, seq);

    /* mkdir (on by default) created deep/er with mode 0755. */
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0755);
}

/* Every fsync policy writes the same lines; they differ in when the files
 * are fsynced, which decides what an ack means:
 *   always: one fsync per line, before that line's ack;
 *   batch:  one fsync per file per publish call, before the acks of the
 *           lines written to it;
 *   never:  no fsync at all, not even at close.
 * close fsyncs the files it closes, except for never. */
static void test_fsync_policies(void **state) {
    fixture_t *fx = *state;
    static const size_t fsyncs_in_publish[] = {4, 2, 0}, fsyncs_at_close[] = {2, 2, 0};

    for (size_t p = 0; p < 3; p++) {
        char a[PATH_MAX], b[PATH_MAX], name[64], want_a[4096] = "", want_b[4096] = "";
        snprintf(name, sizeof name, "%s/a.jsonl", policies[p]);
        path_in(fx, name, a, sizeof a);
        snprintf(name, sizeof name, "%s/b.jsonl", policies[p]);
        path_in(fx, name, b, sizeof b);

        sinkhost_set(fresh_host(fx), "fsync", policies[p]);
        fsync_reset();
        open_sink(fx);
        outbox_sink_event_t events[4] = {simple_event(1, a), simple_event(2, b), simple_event(3, a),
                                         simple_event(4, a)};
        publish_ok(fx, events, 4);
        assert_int_equal(n_acks(fx), 4);
        for (uint64_t seq = 1; seq <= 4; seq++) {
            assert_acked_ok(fx, seq);
            if (strcmp(policies[p], "never") != 0) assert_synced_before_ack(&events[seq - 1], policies[p]);
        }
        assert_int_equal(n_fsyncs, fsyncs_in_publish[p]);
        assert_int_equal(fsyncs_of(b, n_fsyncs), strcmp(policies[p], "never") == 0 ? 0 : 1);

        sinkhost_close(fx->h);
        assert_int_equal(n_fsyncs, fsyncs_in_publish[p] + fsyncs_at_close[p]);

        add_line(want_a, sizeof want_a, 1, a);
        add_line(want_b, sizeof want_b, 2, b);
        add_line(want_a, sizeof want_a, 3, a);
        add_line(want_a, sizeof want_a, 4, a);
        assert_file_equal(a, want_a);
        assert_file_equal(b, want_b);
    }
}

/* A failed fsync: the lines not yet fsynced are cut off the file and their
 * events stay unacked (RETRY naming the file); other files are unaffected.
 * With always, the failure stops the batch at event 2, so 3 is not
 * written yet; with batch, all lines are written before the fsyncs, so b
 * gets both of its lines (1 and 3) and only a's event 2 is unacked. */
static void test_fsync_failure(void **state) {
    fixture_t *fx = *state;

    for (size_t p = 0; p < 2; p++) { /* always, batch: never does not fsync */
        char a[PATH_MAX], b[PATH_MAX], name[64], errbuf[1024], want_a[4096] = "", want_b[4096] = "";
        snprintf(name, sizeof name, "%s-a.jsonl", policies[p]);
        path_in(fx, name, a, sizeof a);
        snprintf(name, sizeof name, "%s-b.jsonl", policies[p]);
        path_in(fx, name, b, sizeof b);

        sinkhost_set(fresh_host(fx), "fsync", policies[p]);
        fsync_reset();
        open_sink(fx);
        outbox_sink_event_t events[3] = {simple_event(1, b), simple_event(2, a), simple_event(3, b)};
        fsync_fails_for = a;
        assert_int_equal(publish(fx, events, 3, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (strstr(errbuf, a) == NULL || strstr(errbuf, strerror(EIO)) == NULL)
            fail_msg("fsync=%s: errbuf does not name %s and the error: %s", policies[p], a, errbuf);
        int batch = strcmp(policies[p], "batch") == 0;
        assert_int_equal(n_acks(fx), batch ? 2 : 1);
        assert_acked_ok(fx, 1);
        assert_not_acked(fx, 2);
        if (batch)
            assert_acked_ok(fx, 3);
        else
            assert_not_acked(fx, 3);
        assert_file_equal(a, "");
        add_line(want_b, sizeof want_b, 1, b);
        if (batch) add_line(want_b, sizeof want_b, 3, b);
        assert_file_equal(b, want_b);

        /* outboxd publishes the unacked events again. */
        fsync_fails_for = NULL;
        publish_ok(fx, events + 1, batch ? 1 : 2);
        assert_int_equal(n_acks(fx), 3);
        assert_acked_ok(fx, 2);
        assert_acked_ok(fx, 3);
        add_line(want_a, sizeof want_a, 2, a);
        if (!batch) add_line(want_b, sizeof want_b, 3, b);
        assert_file_equal(a, want_a);
        assert_file_equal(b, want_b);
    }
}

/* A path that cannot be written (its parent is a regular file: ENOTDIR,
 * even for root) gives RETRY naming the path, and no ack. Once the path is
 * writable, the same batch goes through: the sink kept no failed fd. */
static void test_unwritable_then_writable(void **state) {
    fixture_t *fx = *state;
    char blocker[PATH_MAX], dest[PATH_MAX], errbuf[1024], want[4096] = "";
    path_in(fx, "blocked", blocker, sizeof blocker);
    path_in(fx, "blocked/sub/out.jsonl", dest, sizeof dest);

    FILE *fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);

    outbox_sink_event_t events[2] = {simple_event(1, dest), simple_event(2, dest)};
    open_sink(fx);
    for (int attempt = 0; attempt < 2; attempt++) {
        assert_int_equal(publish(fx, events, 2, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (strstr(errbuf, dest) == NULL) fail_msg("errbuf does not name %s: %s", dest, errbuf);
        if (strstr(errbuf, strerror(ENOTDIR)) == NULL) fail_msg("errbuf lacks the cause: %s", errbuf);
        assert_int_equal(n_acks(fx), 0);
    }

    /* Make it writable: mkdir creates blocked/ and blocked/sub/. */
    assert_int_equal(unlink(blocker), 0);
    publish_ok(fx, events, 2);
    assert_int_equal(n_acks(fx), 2);
    assert_acked_ok(fx, 1);
    assert_acked_ok(fx, 2);
    add_line(want, sizeof want, 1, dest);
    add_line(want, sizeof want, 2, dest);
    assert_file_equal(dest, want);
}

/* A file whose writes fail (/dev/full: ENOSPC, even for root, reached
 * through a link to /dev as the route's fixed directory, which the sink
 * follows since the administrator chose it) gives RETRY; once the path is
 * fixed, the next publish succeeds. The sink must not keep the failed
 * descriptor open, or it would write to /dev/full forever. */
static void test_failed_file_not_kept_open(void **state) {
    fixture_t *fx = *state;
    char dev[PATH_MAX], path[PATH_MAX], errbuf[1024], want[1024] = "";
    path_in(fx, "dev", dev, sizeof dev);
    path_in(fx, "dev/full", path, sizeof path);
    assert_int_equal(symlink("/dev", dev), 0);

    snprintf(fx->route, sizeof fx->route, "%s/dev/{type}", fx->dir);
    fresh_host(fx);
    outbox_sink_event_t ev = simple_event(1, path);
    ev.type = "full";
    open_sink(fx);
    assert_int_equal(publish(fx, &ev, 1, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    if (strstr(errbuf, path) == NULL) fail_msg("errbuf does not name %s: %s", path, errbuf);
    if (strstr(errbuf, strerror(ENOSPC)) == NULL) fail_msg("errbuf lacks the cause: %s", errbuf);
    assert_int_equal(n_acks(fx), 0);

    assert_int_equal(unlink(dev), 0);
    assert_int_equal(mkdir(dev, 0755), 0);
    publish_ok(fx, &ev, 1);
    assert_acked_ok(fx, 1);
    snprintf(want, sizeof want,
             "{\"id\":\"%024x\",\"type\":\"full\",\"key\":\"k\",\"created\":\"2026-11-26T18:45:25.001Z\","
             "\"destination\":\"%s\",\"data\":{\"n\":1},\"headers\":{}}\n",
             1, path);
    assert_file_equal(path, want);
}

/* A failure in the middle of a batch: the events before it are acked (and
 * written once), the failing one and those after it are not acked (and not
 * written); publishing the unacked ones again completes the files with no
 * duplicate. The same for every fsync policy. */
static void test_failure_mid_batch(void **state) {
    fixture_t *fx = *state;

    for (size_t p = 0; p < 3; p++) {
        char good[PATH_MAX], blocker[PATH_MAX], bad[PATH_MAX], outside[PATH_MAX], name[64],
            errbuf[1024];
        char want_good[4096] = "", want_bad[4096] = "";
        snprintf(name, sizeof name, "%s-good.jsonl", policies[p]);
        path_in(fx, name, good, sizeof good);
        snprintf(name, sizeof name, "%s-blocked", policies[p]);
        path_in(fx, name, blocker, sizeof blocker);
        snprintf(name, sizeof name, "%s-blocked/x.jsonl", policies[p]);
        path_in(fx, name, bad, sizeof bad);
        path_in(fx, "../outside.jsonl", outside, sizeof outside);
        FILE *fp = fopen(blocker, "w");
        assert_non_null(fp);
        fclose(fp);

        sinkhost_set(fresh_host(fx), "fsync", policies[p]);
        open_sink(fx);

        outbox_sink_event_t events[5] = {simple_event(1, good), simple_event(2, outside),
                                         simple_event(3, bad), simple_event(4, good),
                                         simple_event(5, bad)};
        /* 2 is FATAL-acked before the failure (its destination leaves the
         * route's directory); 3 fails to open (RETRY). */
        assert_int_equal(publish(fx, events, 5, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (strstr(errbuf, bad) == NULL) fail_msg("%s: errbuf does not name %s: %s", policies[p], bad, errbuf);
        assert_int_equal(n_acks(fx), 2);
        assert_acked_ok(fx, 1);
        assert_int_equal(ack_of(fx, 2).status, OUTBOX_SINK_FATAL);
        assert_not_acked(fx, 3);
        assert_not_acked(fx, 4);
        assert_not_acked(fx, 5);
        add_line(want_good, sizeof want_good, 1, good);
        assert_file_equal(good, want_good);

        /* Fixed; outboxd publishes the unacked events again. */
        assert_int_equal(unlink(blocker), 0);
        publish_ok(fx, events + 2, 3);
        assert_int_equal(n_acks(fx), 5);
        for (uint64_t seq = 3; seq <= 5; seq++) assert_acked_ok(fx, seq);
        add_line(want_good, sizeof want_good, 4, good);
        add_line(want_bad, sizeof want_bad, 3, bad);
        add_line(want_bad, sizeof want_bad, 5, bad);
        assert_file_equal(good, want_good);
        assert_file_equal(bad, want_bad);
    }
}

/* A short write (here: the file size limit reached halfway through a line)
 * leaves no partial line: the file is cut back. fsync=always/never have
 * acked the first line; fsync=batch had not fsynced it yet, so it is cut
 * too and not acked. Then everything unacked goes through once. */
static void test_short_write_leaves_no_partial_line(void **state) {
    fixture_t *fx = *state;
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);

    for (size_t p = 0; p < 3; p++) {
        char path[PATH_MAX], name[64], errbuf[1024], line1[1024], want[4096] = "";
        snprintf(name, sizeof name, "%s.jsonl", policies[p]);
        path_in(fx, name, path, sizeof path);
        simple_line(1, path, line1, sizeof line1);

        sinkhost_set(fresh_host(fx), "fsync", policies[p]);
        open_sink(fx);
        outbox_sink_event_t events[2] = {simple_event(1, path), simple_event(2, path)};

        /* Room for the first line and half of the second. */
        struct rlimit small = saved;
        small.rlim_cur = strlen(line1) + strlen(line1) / 2;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int rc = publish(fx, events, 2, errbuf, sizeof errbuf);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);

        assert_int_equal(rc, OUTBOX_SINK_RETRY);
        if (strstr(errbuf, path) == NULL) fail_msg("errbuf does not name %s: %s", path, errbuf);
        assert_not_acked(fx, 2);
        size_t first_unacked;
        if (strcmp(policies[p], "batch") == 0) {
            assert_int_equal(n_acks(fx), 0);
            assert_file_equal(path, "");
            first_unacked = 0;
        } else {
            assert_int_equal(n_acks(fx), 1);
            assert_acked_ok(fx, 1);
            assert_file_equal(path, line1);
            first_unacked = 1;
        }

        publish_ok(fx, events + first_unacked, 2 - first_unacked);
        assert_int_equal(n_acks(fx), 2);
        assert_acked_ok(fx, 1);
        assert_acked_ok(fx, 2);
        add_line(want, sizeof want, 1, path);
        add_line(want, sizeof want, 2, path);
        assert_file_equal(path, want);
    }
    signal(SIGXFSZ, saved_handler);
}

/* The file sink declares payloads JSON only: `payload: bson` is refused
 * when the configuration is loaded (check and open alike), naming the
 * payload, instead of every event being acked FATAL at run time (with
 * on_error: skip, silently lost) as when the sink guessed from the bytes. */
/* recover (docs/recovery.md): among the file's last lines it finds the
 * events published before (one with a 100 KiB payload, so that the read
 * from the end has to grow past its first 64 KiB), not the ones never
 * published, and not an event whose line differs (same id, other data); a
 * partial last line (a crash in the middle of a write) is cut off, so the
 * next line starts on a line of its own. */
static void test_recover_finds_the_published_lines_and_cuts_a_partial_one(void **state) {
    fixture_t *fx = *state;
    char path[PATH_MAX], errbuf[512];
    path_in(fx, "r.jsonl", path, sizeof path);
    enum { N = 400 };
    static outbox_sink_event_t events[N + 5];
    static char big[100 * 1024 + 16];
    for (uint64_t i = 0; i < N + 5; i++) events[i] = simple_event(i + 1, path);
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"n\":", 5);
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    memcpy(big + 5, "399", 3);
    events[N - 2].payload = (const unsigned char *)big; /* seq 399 */
    events[N - 2].payload_len = strlen(big);
    open_sink(fx);
    publish_ok(fx, events, N);
    FILE *f = fopen(path, "a");
    fputs("{\"id\":\"00000000000000000000", f); /* cut short by a crash */
    fclose(f);

    /* In doubt: the last 10 published, then 5 never published; and one
     * published event offered with other data (not its line). */
    outbox_sink_event_t doubt[16];
    unsigned char held[16] = {0};
    for (int i = 0; i < 15; i++) doubt[i] = events[N - 10 + i];
    doubt[15] = simple_event(N - 11, path);
    doubt[15].payload = (const unsigned char *)"{\"n\":-1}";
    doubt[15].payload_len = 8;
    for (int i = 0; i < 16; i++) doubt[i].seq = (uint64_t)i;
    size_t acks = n_acks(fx);
    const outbox_sink_plugin_t *p = sinkhost_plugin(fx->h);
    assert_int_equal(p->recover(sinkhost_state(fx->h), doubt, 16, held, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    for (int i = 0; i < 16; i++) assert_int_equal(held[i], i < 10 ? 1 : 0);
    assert_int_equal(n_acks(fx), acks);

    /* The partial line is gone: the file is N whole lines. */
    f = fopen(path, "r");
    int lines = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        lines += c == '\n';
        last = c;
    }
    fclose(f);
    assert_int_equal(lines, N);
    assert_int_equal(last, '\n');

    /* A destination never written: nothing held, no error. */
    char other[PATH_MAX];
    path_in(fx, "never.jsonl", other, sizeof other);
    doubt[0] = simple_event(1, other);
    held[0] = 0;
    assert_int_equal(p->recover(sinkhost_state(fx->h), doubt, 1, held, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(held[0], 0);
}

static void test_bson_payload_is_refused_at_load(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    sinkhost_payload(fx->h, "bson");
    assert_int_equal(sinkhost_check(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    if (strstr(errbuf, "payload bson: plugin file accepts only json") == NULL)
        fail_msg("check: %s", errbuf);
    assert_int_equal(sinkhost_open(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    if (strstr(errbuf, "payload bson: plugin file accepts only json") == NULL)
        fail_msg("open: %s", errbuf);
    sinkhost_payload(fx->h, "json");
    assert_int_equal(sinkhost_check(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
}

/* A destination that can never be a file (it ends with "/") is a FATAL
 * ack for that event, not an endless RETRY. */
static void test_destination_not_a_file(void **state) {
    fixture_t *fx = *state;
    char dir_slash[PATH_MAX];
    snprintf(dir_slash, sizeof dir_slash, "%s/sub/", fx->dir);
    outbox_sink_event_t ev = simple_event(1, dir_slash);

    open_sink(fx);
    publish_ok(fx, &ev, 1);
    assert_int_equal(ack_of(fx, 1).status, OUTBOX_SINK_FATAL);
    assert_non_null(strstr(ack_of(fx, 1).error, dir_slash));
    assert_non_null(strstr(ack_of(fx, 1).error, "empty path component"));
}

/* Bad option values are refused by check (outboxd --check, and a reload
 * before it stops anything) and by open alike, since both go through the
 * one parser, naming the option and its line; check creates nothing. The
 * table refuses what it can say (enum, bool, range); the plugin refuses
 * file_mode's digits. */
static void test_bad_options_are_refused_by_check_and_open(void **state) {
    fixture_t *fx = *state;
    static const struct {
        const char *key, *value;
    } bad[] = {{"file_mode", "0999"},     {"file_mode", "rw-r--r--"}, {"file_mode", ""},
               {"file_mode", "017777"},   {"file_mode", "-644"},      {"fsync", "sometimes"},
               {"mkdir", "maybe"},        {"max_open_files", "0"},    {"max_open_files", "1025"},
               {"max_open_files", "ten"}, {"max_open_files", ""}};
    char errbuf[1024], want[128];

    snprintf(fx->route, sizeof fx->route, "%s/new/{type}.jsonl", fx->dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sinkhost_set(fresh_host(fx), bad[i].key, bad[i].value);
        /* The option is the config's first: line 1 of "sinkhost". */
        snprintf(want, sizeof want, "sinkhost:1:");
        int rc = sinkhost_check(fx->h, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL || strstr(errbuf, want) == NULL || strstr(errbuf, bad[i].key) == NULL)
            fail_msg("%s=\"%s\": check gave %d: %s", bad[i].key, bad[i].value, rc, errbuf);
        rc = sinkhost_open(fx->h, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL || strstr(errbuf, bad[i].key) == NULL)
            fail_msg("%s=\"%s\": open gave %d: %s", bad[i].key, bad[i].value, rc, errbuf);
        assert_null(sinkhost_state(fx->h));
    }
    /* The plugin's own words for the value the table cannot judge. */
    sinkhost_set(fresh_host(fx), "file_mode", "0999");
    assert_int_equal(sinkhost_check(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "sinkhost:1:1: sink test: file_mode: \"0999\" is not an octal mode such as 0644 (plugin file)"));
    /* Nothing was created on the way. */
    char made[PATH_MAX];
    path_in(fx, "new", made, sizeof made);
    assert_int_equal(access(made, F_OK), -1);
}

/* A route whose text beneath its fixed directory can never name a file,
 * whatever the events hold ("//", "." or ".." there, a trailing "/", no
 * file name at all), is refused by check and open, naming the route,
 * instead of failing every event at run time. The fixed directory itself
 * is the administrator's: "." and ".." there are fine. */
static void test_routes_that_name_no_file_are_refused(void **state) {
    fixture_t *fx = *state;
    /* Routes starting with '/' are beneath the fixture's directory. */
    static const struct {
        const char *route, *why;
    } bad[] = {
        {"/{type}/", "it has an empty path component"},
        {"/{type}//x.jsonl", "it has an empty path component"},
        {"/out/", "it has an empty path component"},
        {"/{type}/../x.jsonl", "it has a \"..\" component"},
        {"/{key}/./x.jsonl", "it has a \".\" component"},
        {"", "it has an empty path component"},
    };
    static const char *const good[] = {"/{type}.jsonl", "/./a/../{type}/{key}.jsonl", "{type}.jsonl",
                                       "/one.jsonl",    "/{{x}}-{type}",              "/..{type}."};
    char errbuf[1024], route[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(route, sizeof route, "%s%s", bad[i].route[0] == '/' ? fx->dir : "", bad[i].route);
        sinkhost_route(fx->h, route);
        int rc = sinkhost_check(fx->h, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL || strstr(errbuf, "route: \"") == NULL || strstr(errbuf, route) == NULL ||
            strstr(errbuf, bad[i].why) == NULL)
            fail_msg("route \"%s\": check gave %d: %s", route, rc, errbuf);
        assert_int_equal(sinkhost_open(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
        assert_non_null(strstr(errbuf, bad[i].why));
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(route, sizeof route, "%s%s", good[i][0] == '/' ? fx->dir : "", good[i]);
        sinkhost_route(fx->h, route);
        if (sinkhost_check(fx->h, errbuf, sizeof errbuf) != OUTBOX_SINK_OK)
            fail_msg("route \"%s\": check refused it: %s", route, errbuf);
    }
}

/* A host from before ABI 1.1 (no options_fill, no route) is told what the
 * sink needs, at open, instead of the sink guessing its options. */
static void test_open_under_an_abi_1_0_host_says_what_it_needs(void **state) {
    fixture_t *fx = *state;
    outbox_sink_host_t old = {.struct_size = (uint32_t)offsetof(outbox_sink_host_t, route),
                              .abi_major = 1,
                              .abi_minor = 0};
    void *sink = NULL;
    char errbuf[512] = "";
    assert_int_equal(sinkhost_plugin(fx->h)->open(&old, &sink, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_null(sink);
    assert_non_null(strstr(errbuf, "this host offers sink ABI 1.0; the file sink needs 1.1"));
}

static void test_file_mode(void **state) {
    fixture_t *fx = *state;
    char path[PATH_MAX], errbuf[512];
    path_in(fx, "private.jsonl", path, sizeof path);

    assert_int_equal(open_with(fx, "file_mode", "0600", errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    outbox_sink_event_t ev = simple_event(1, path);
    publish_ok(fx, &ev, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

/* mkdir: false leaves a missing directory missing: RETRY, until it exists. */
static void test_mkdir_false(void **state) {
    fixture_t *fx = *state;
    char dir[PATH_MAX], path[PATH_MAX], errbuf[1024], want[1024] = "";
    path_in(fx, "missing", dir, sizeof dir);
    path_in(fx, "missing/x.jsonl", path, sizeof path);

    assert_int_equal(open_with(fx, "mkdir", "false", errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    outbox_sink_event_t ev = simple_event(1, path);
    assert_int_equal(publish(fx, &ev, 1, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    assert_non_null(strstr(errbuf, path));
    assert_non_null(strstr(errbuf, strerror(ENOENT)));
    assert_int_equal(n_acks(fx), 0);
    assert_int_equal(access(dir, F_OK), -1);

    assert_int_equal(mkdir(dir, 0755), 0);
    publish_ok(fx, &ev, 1);
    assert_acked_ok(fx, 1);
    add_line(want, sizeof want, 1, path);
    assert_file_equal(path, want);
}

/* max_open_files=1 with destinations taking turns: every switch closes the
 * other file (after its fsync, for batch), and every line still lands in
 * order in the right file. At most one file is open at a time. */
static void test_max_open_files_one(void **state) {
    fixture_t *fx = *state;

    for (size_t p = 0; p < 3; p++) {
        char paths[3][PATH_MAX], want[3][4096] = {"", "", ""};
        for (int f = 0; f < 3; f++) {
            char name[64];
            snprintf(name, sizeof name, "%s/%d.jsonl", policies[p], f);
            path_in(fx, name, paths[f], sizeof paths[f]);
        }
        fresh_host(fx);
        sinkhost_set(fx->h, "max_open_files", "1");
        sinkhost_set(fx->h, "fsync", policies[p]);
        int fds_before = count_open_fds();
        fsync_reset();
        open_sink(fx);

        outbox_sink_event_t events[12];
        for (uint64_t i = 0; i < 12; i++) {
            int f = (int)(i % 3);
            events[i] = simple_event(i + 1, paths[f]);
            add_line(want[f], sizeof want[f], i + 1, paths[f]);
        }
        publish_ok(fx, events, 7);
        assert_true(count_open_fds() <= fds_before + 1);
        publish_ok(fx, events + 7, 5);
        assert_true(count_open_fds() <= fds_before + 1);
        assert_int_equal(n_acks(fx), 12);
        for (uint64_t seq = 1; seq <= 12; seq++) {
            assert_acked_ok(fx, seq);
            /* fsync=batch: a file closed to make room is fsynced first, and
             * its events are acked only after that. */
            if (strcmp(policies[p], "never") != 0) assert_synced_before_ack(&events[seq - 1], policies[p]);
        }
        sinkhost_close(fx->h);
        assert_int_equal(count_open_fds(), fds_before);
        for (int f = 0; f < 3; f++) assert_file_equal(paths[f], want[f]);
    }
}

/* Two instances at once, with different options, share nothing. */
static void test_two_instances(void **state) {
    fixture_t *fx = *state;
    char a[PATH_MAX], b[PATH_MAX], errbuf[512], want_a[4096] = "", want_b[4096] = "";
    path_in(fx, "one.jsonl", a, sizeof a);
    path_in(fx, "two.jsonl", b, sizeof b);

    sinkhost_set(fx->h, "fsync", "always");
    open_sink(fx);
    sinkhost_t *h2 = sinkhost_new("file");
    assert_non_null(h2);
    sinkhost_route(h2, fx->route);
    sinkhost_set(h2, "fsync", "never");
    sinkhost_set(h2, "max_open_files", "2");
    assert_int_equal(sinkhost_open(h2, errbuf, sizeof errbuf), OUTBOX_SINK_OK);

    for (uint64_t seq = 1; seq <= 4; seq++) {
        outbox_sink_event_t ev = simple_event(seq, seq % 2 ? a : b);
        if (seq % 2) {
            publish_ok(fx, &ev, 1);
            add_line(want_a, sizeof want_a, seq, a);
        } else {
            assert_int_equal(sinkhost_publish(h2, &ev, 1, NULL, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
            add_line(want_b, sizeof want_b, seq, b);
        }
    }
    sinkhost_close(h2);
    assert_int_equal(n_acks(fx), 2);
    assert_int_equal(sinkhost_n_acks(h2), 2);
    assert_acked_ok(fx, 1);
    assert_acked_ok(fx, 3);
    assert_int_equal(sinkhost_acks_for(h2, 2), 1);
    assert_int_equal(sinkhost_acks_for(h2, 4), 1);
    sinkhost_free(h2);
    assert_file_equal(a, want_a);
    assert_file_equal(b, want_b);
}

/* The figures the sink offers outboxd's metrics endpoint, counted as the
 * acks went: events written (OK), events refused (FATAL), publish calls
 * that failed on a file (RETRY), and the files held open. */
typedef struct {
    double written, refused, failures, open_files;
    int n, counters;
} stats_seen_t;

static void stat_seen(void *ctx, const char *name, outbox_sink_stat_kind_t kind, double value,
                      const char *help) {
    stats_seen_t *seen = ctx;
    assert_non_null(help);
    seen->n++;
    seen->counters += kind == OUTBOX_SINK_STAT_COUNTER;
    if (strcmp(name, "file_events_written_total") == 0) seen->written = value;
    else if (strcmp(name, "file_events_refused_total") == 0) seen->refused = value;
    else if (strcmp(name, "file_write_failures_total") == 0) seen->failures = value;
    else if (strcmp(name, "file_open_files") == 0) seen->open_files = value;
    else fail_msg("unexpected figure %s", name);
}

static void test_stats_count_writes_refusals_and_failures(void **state) {
    fixture_t *fx = *state;
    char a[PATH_MAX], b[PATH_MAX], blocker[PATH_MAX], bad[PATH_MAX], outside[PATH_MAX], errbuf[1024];
    path_in(fx, "a.jsonl", a, sizeof a);
    path_in(fx, "b.jsonl", b, sizeof b);
    path_in(fx, "blocked", blocker, sizeof blocker);
    path_in(fx, "blocked/x.jsonl", bad, sizeof bad);
    path_in(fx, "../outside.jsonl", outside, sizeof outside);
    FILE *fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);

    open_sink(fx);
    const outbox_sink_plugin_t *plugin = sinkhost_plugin(fx->h);
    stats_seen_t seen = {0};
    plugin->stats(sinkhost_state(fx->h), stat_seen, &seen);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.counters, 3);
    assert_true(seen.written == 0 && seen.refused == 0 && seen.failures == 0 && seen.open_files == 0);

    outbox_sink_event_t events[4] = {simple_event(1, a), simple_event(2, b), simple_event(3, outside),
                                     simple_event(4, bad)};
    assert_int_equal(publish(fx, events, 4, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    memset(&seen, 0, sizeof seen);
    plugin->stats(sinkhost_state(fx->h), stat_seen, &seen);
    assert_true(seen.written == 2 && seen.refused == 1 && seen.failures == 1 && seen.open_files == 2);
}

/* ----------------------------------------------------------------------------
 * Destinations stay beneath the route's fixed directory
 * ------------------------------------------------------------------------- */

/* Opens a fresh host on route (relative to the fixture's directory unless
 * it starts with '{'). */
static void open_on(fixture_t *fx, const char *route) {
    if (route[0] == '{')
        snprintf(fx->route, sizeof fx->route, "%s", route);
    else
        snprintf(fx->route, sizeof fx->route, "%s/%s", fx->dir, route);
    fresh_host(fx);
    open_sink(fx);
}

/* Publishes one event of type and key through the open route and checks
 * it is acked FATAL with a message naming the event id, the destination
 * and the needle. */
static void expect_refused(fixture_t *fx, const char *type, const char *key, const char *needle) {
    static uint64_t seq = 1;
    static char dest[PATH_MAX];
    assert_true(sinkhost_destination(fx->h, type, key, dest, sizeof dest) > 0);
    outbox_sink_event_t ev = simple_event(++seq, dest);
    ev.type = type;
    ev.key = key;
    publish_ok(fx, &ev, 1);
    sinkhost_ack_t a = ack_of(fx, ev.seq);
    if (a.status != OUTBOX_SINK_FATAL)
        fail_msg("destination \"%s\" (type \"%s\", key \"%s\") acked %d, not FATAL", dest, type,
                 key ? key : "(null)", (int)a.status);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "event %s: refusing destination \"%s\"", ev.id, dest);
    if (strstr(a.error, want) == NULL || strstr(a.error, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", a.error, want, needle);
}

/* Every regular file under dir, relative, one per line: what a test
 * expects the sink to have written, and nothing else. */
static char listing[4096];
static size_t listing_prefix;
static int list_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    if (flag == FTW_F || flag == FTW_SL) {
        strncat(listing, path + listing_prefix, sizeof listing - strlen(listing) - 2);
        strcat(listing, "\n");
    }
    return 0;
}
static int compare_lines(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}
static const char *files_under(const char *dir) {
    char *lines[64], copy[sizeof listing];
    size_t n = 0;
    listing[0] = '\0';
    listing_prefix = strlen(dir) + 1;
    nftw(dir, list_one, 16, FTW_PHYS);
    /* In name order, whatever order the directories list them in. */
    memcpy(copy, listing, sizeof copy);
    for (char *line = strtok(copy, "\n"); line != NULL && n < 64; line = strtok(NULL, "\n"))
        lines[n++] = line;
    qsort(lines, n, sizeof *lines, compare_lines);
    listing[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(listing, lines[i]);
        strcat(listing, "\n");
    }
    return listing;
}

/* outboxctl put order '../../../tmp/escape' '{}' with route
 * /srv/out/{key}.jsonl wrote /tmp/escape.jsonl. */
static void test_dotdot_in_key_cannot_leave_the_route_dir(void **state) {
    fixture_t *fx = *state;
    open_on(fx, "srv/out/{key}.jsonl");
    expect_refused(fx, "order", "../../escape",
                   "its {key} value \"../../escape\" cannot be a file name: it contains \"/\"");
    expect_refused(fx, "order", "..", "it is \".\" or \"..\"");
    assert_string_equal(files_under(fx->dir), "");
}

static void test_dotdot_in_type_cannot_leave_the_route_dir(void **state) {
    fixture_t *fx = *state;
    open_on(fx, "srv/out/{type}.jsonl");
    expect_refused(fx, "../../x", "k",
                   "its {type} value \"../../x\" cannot be a file name: it contains \"/\"");
    assert_string_equal(files_under(fx->dir), "");
}

/* An empty {type} made "/srv/out/.jsonl"; a null key used by the route
 * made "/srv/out/.jsonl" too. */
static void test_empty_value_is_refused(void **state) {
    fixture_t *fx = *state;
    open_on(fx, "out/{type}.jsonl");
    expect_refused(fx, "", "k", "its {type} value \"\" cannot be a file name: it is empty");
    open_on(fx, "out/{key}.jsonl");
    expect_refused(fx, "t", "", "its {key} value \"\" cannot be a file name: it is empty");
    expect_refused(fx, "t", NULL, "the route uses {key} and the event has no key");
    assert_string_equal(files_under(fx->dir), "");
}

/* A value is one path component: "/" in it is refused, so an absolute
 * value cannot replace a relative route's directory either. */
static void test_slash_or_absolute_value_is_refused(void **state) {
    fixture_t *fx = *state;
    char outside[PATH_MAX];
    open_on(fx, "out/{key}.jsonl");
    expect_refused(fx, "t", "sub/file", "contains \"/\"");
    expect_refused(fx, "t", "/etc/x", "contains \"/\"");
    /* A relative route: its fixed directory is outboxd's working directory. */
    open_on(fx, "{key}.jsonl");
    snprintf(outside, sizeof outside, "%s/abs", fx->dir);
    expect_refused(fx, "t", outside, "contains \"/\"");
    assert_string_equal(files_under(fx->dir), "");
}

/* out/link.jsonl -> ../outside.jsonl: the line would have landed outside. */
static void test_symlinked_file_is_refused(void **state) {
    fixture_t *fx = *state;
    char out[PATH_MAX], link[PATH_MAX], outside[PATH_MAX];
    path_in(fx, "out", out, sizeof out);
    path_in(fx, "out/link.jsonl", link, sizeof link);
    path_in(fx, "outside.jsonl", outside, sizeof outside);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(symlink(outside, link), 0);
    open_on(fx, "out/{key}.jsonl");
    expect_refused(fx, "t", "link", "goes through a symbolic link");
    /* A dangling link: O_CREAT would have created its target. */
    assert_string_equal(files_under(fx->dir), "out/link.jsonl\n");
}

/* out/{type}/{key}.jsonl with out/t -> ../elsewhere. */
static void test_symlinked_directory_beneath_the_route_dir_is_refused(void **state) {
    fixture_t *fx = *state;
    char out[PATH_MAX], link[PATH_MAX], elsewhere[PATH_MAX];
    path_in(fx, "out", out, sizeof out);
    path_in(fx, "out/t", link, sizeof link);
    path_in(fx, "elsewhere", elsewhere, sizeof elsewhere);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(mkdir(elsewhere, 0755), 0);
    assert_int_equal(symlink(elsewhere, link), 0);
    open_on(fx, "out/{type}/{key}.jsonl");
    expect_refused(fx, "t", "k", "goes through a symbolic link");
    assert_string_equal(files_under(fx->dir), "out/t\n");
}

/* The route's own directory is the administrator's: links in it are
 * followed, and values that are plain names go through. */
static void test_link_in_the_route_dir_itself_is_followed(void **state) {
    fixture_t *fx = *state;
    char real[PATH_MAX], link[PATH_MAX], dest[PATH_MAX];
    path_in(fx, "real", real, sizeof real);
    path_in(fx, "link", link, sizeof link);
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink(real, link), 0);
    open_on(fx, "link/by-type/{type}/{key}.jsonl");
    assert_true(sinkhost_destination(fx->h, "order.created", "..k.", dest, sizeof dest) > 0);
    outbox_sink_event_t ev = simple_event(1, dest);
    ev.type = "order.created";
    ev.key = "..k.";
    publish_ok(fx, &ev, 1);
    assert_acked_ok(fx, 1);
    assert_string_equal(files_under(fx->dir), "link\nreal/by-type/order.created/..k..jsonl\n");
}

#define T(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_identification),
        T(test_lines_fields_and_escaping),
        T(test_created_and_long_escaped_lines_are_exact),
        T(test_two_destinations),
        T(test_fsync_policies),
        T(test_fsync_failure),
        T(test_unwritable_then_writable),
        T(test_failed_file_not_kept_open),
        T(test_failure_mid_batch),
        T(test_short_write_leaves_no_partial_line),
        T(test_recover_finds_the_published_lines_and_cuts_a_partial_one),
        T(test_bson_payload_is_refused_at_load),
        T(test_destination_not_a_file),
        T(test_bad_options_are_refused_by_check_and_open),
        T(test_routes_that_name_no_file_are_refused),
        T(test_open_under_an_abi_1_0_host_says_what_it_needs),
        T(test_file_mode),
        T(test_mkdir_false),
        T(test_max_open_files_one),
        T(test_two_instances),
        T(test_stats_count_writes_refusals_and_failures),
        T(test_dotdot_in_key_cannot_leave_the_route_dir),
        T(test_dotdot_in_type_cannot_leave_the_route_dir),
        T(test_empty_value_is_refused),
        T(test_slash_or_absolute_value_is_refused),
        T(test_symlinked_file_is_refused),
        T(test_symlinked_directory_beneath_the_route_dir_is_refused),
        T(test_link_in_the_route_dir_itself_is_followed),
    };
    return TEST_RUN("file sink", tests);
}
