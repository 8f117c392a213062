/*
 * test_file_sink.c - drives the built file sink plugin the way outboxd
 * does: dlopen() the module, look up outbox_sink_entry, check the plugin
 * struct, then open/publish/close instances through a test host that
 * records every ack. No server needed.
 *
 * The module is $OUTBOX_TEST_BUILDDIR/sinks/file/.libs/file.so (libtool's
 * layout), or ./sinks/file/.libs/file.so when the variable is not set.
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
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <outbox/sink.h>

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
 * The plugin, loaded once for the whole group
 * ------------------------------------------------------------------------- */

static void *module;
static const outbox_sink_plugin_t *plugin;

static int load_plugin(void **state) {
    const char *builddir = getenv("OUTBOX_TEST_BUILDDIR");
    char path[PATH_MAX];

    snprintf(path, sizeof path, "%s/sinks/file/.libs/file.so", builddir ? builddir : ".");
    module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        fprintf(stderr, "# cannot load the plugin: %s\n", dlerror());
        return -1;
    }
    outbox_sink_entry_fn entry;
    /* The ISO C way to turn dlsym's void * into a function pointer. */
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
 * fsync, recorded and made to fail on demand
 * ------------------------------------------------------------------------- */

#define MAX_FSYNCS 64

static char fsynced[MAX_FSYNCS][PATH_MAX]; /* the files fsynced, in order */
static size_t n_fsyncs;
static const char *fsync_fails_for; /* fsync of this file fails with EIO */

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

/* ----------------------------------------------------------------------------
 * The test host: options from a list, acks recorded
 * ------------------------------------------------------------------------- */

#define MAX_OPTIONS 8
#define MAX_ACKS 128

typedef struct {
    uint64_t seq;
    outbox_sink_status_t status;
    char error[512];
    size_t fsyncs_before; /* n_fsyncs when the ack came */
} ack_t;

typedef struct {
    outbox_sink_host_t host; /* host.ctx points back to this struct */
    const char *keys[MAX_OPTIONS];
    const char *values[MAX_OPTIONS];
    size_t n_options;
    ack_t acks[MAX_ACKS];
    size_t n_acks;
} test_host_t;

static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "# [sink log %d] ", (int)level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    test_host_t *th = ctx;
    if (th->n_acks == MAX_ACKS) fail_msg("more than %d acks", MAX_ACKS);
    ack_t *a = &th->acks[th->n_acks++];
    a->seq = seq;
    a->status = status;
    a->fsyncs_before = n_fsyncs;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
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

static void host_init(test_host_t *th) {
    memset(th, 0, sizeof *th);
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

static void host_set(test_host_t *th, const char *key, const char *value) {
    assert_true(th->n_options < MAX_OPTIONS);
    th->keys[th->n_options] = key;
    th->values[th->n_options] = value;
    th->n_options++;
}

/* The one ack for seq (failing when there is none or more than one). */
static const ack_t *ack_of(const test_host_t *th, uint64_t seq) {
    const ack_t *found = NULL;
    for (size_t i = 0; i < th->n_acks; i++) {
        if (th->acks[i].seq != seq) continue;
        if (found != NULL) fail_msg("event %llu acked twice", (unsigned long long)seq);
        found = &th->acks[i];
    }
    if (found == NULL) fail_msg("event %llu not acked", (unsigned long long)seq);
    return found;
}

static void assert_acked_ok(const test_host_t *th, uint64_t seq) {
    const ack_t *a = ack_of(th, seq);
    if (a->status != OUTBOX_SINK_OK)
        fail_msg("event %llu acked %d (%s), not OK", (unsigned long long)seq, (int)a->status, a->error);
}

static void assert_not_acked(const test_host_t *th, uint64_t seq) {
    for (size_t i = 0; i < th->n_acks; i++) {
        if (th->acks[i].seq == seq) fail_msg("event %llu acked, should not be", (unsigned long long)seq);
    }
}

/* ----------------------------------------------------------------------------
 * Fixture: a fresh directory and host per test
 * ------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    test_host_t th;
    void *sink; /* the open instance, closed by teardown */
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    if (fx == NULL) return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_file_sink.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    host_init(&fx->th);
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
    if (fx->sink != NULL) plugin->close(fx->sink);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void open_sink(fixture_t *fx) {
    char errbuf[512] = "";
    int rc = plugin->open(&fx->th.host, &fx->sink, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("open: %d %s", rc, errbuf);
    assert_non_null(fx->sink);
}

static void close_sink(fixture_t *fx) {
    plugin->close(fx->sink);
    fx->sink = NULL;
}

/* Opens with one option set; returns open's status and its message. */
static int open_with(fixture_t *fx, const char *key, const char *value, char *errbuf, size_t size) {
    host_init(&fx->th);
    host_set(&fx->th, key, value);
    errbuf[0] = '\0';
    return plugin->open(&fx->th.host, &fx->sink, errbuf, size);
}

static int publish(fixture_t *fx, const outbox_sink_event_t *events, size_t n, char *errbuf,
                   size_t size) {
    errbuf[0] = '\0';
    return plugin->publish(fx->sink, events, n, errbuf, size);
}

static void publish_ok(fixture_t *fx, const outbox_sink_event_t *events, size_t n) {
    char errbuf[512];
    int rc = publish(fx, events, n, errbuf, sizeof errbuf);
    if (rc != OUTBOX_SINK_OK) fail_msg("publish: %d %s", rc, errbuf);
}

static void path_in(const fixture_t *fx, const char *name, char *out, size_t size) {
    snprintf(out, size, "%s/%s", fx->dir, name);
}

/* The whole file, NUL-terminated; "" when it does not exist. Caller frees. */
static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0;
    if (fp == NULL) return strdup("");
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t n = fread(data + len, 1, cap - len - 1, fp);
        len += n;
        if (n == 0) break;
    }
    fclose(fp);
    data[len] = '\0';
    return data;
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
    static char ids[64][25], payloads[64][32];
    outbox_sink_event_t ev;
    assert_true(seq < 64);
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
    assert_true(plugin->struct_size >= OUTBOX_SINK_PLUGIN_MIN_SIZE);
    assert_int_equal(plugin->struct_size, sizeof(outbox_sink_plugin_t));
    assert_int_equal(plugin->abi_major, OUTBOX_SINK_ABI_MAJOR);
    assert_int_equal(plugin->abi_minor, OUTBOX_SINK_ABI_MINOR);
    assert_string_equal(plugin->build_tag, OUTBOX_SINK_BUILD_TAG);
    assert_string_equal(plugin->name, "file");
    assert_string_equal(plugin->version, "1.0.0");
    assert_non_null(plugin->description);
    assert_non_null(plugin->open);
    assert_non_null(plugin->publish);
    assert_non_null(plugin->close);

    /* The option table: the four options with their defaults, then the end. */
    static const struct {
        const char *key;
        outbox_sink_option_type_t type;
        const char *default_value;
    } expected[] = {{"fsync", OUTBOX_SINK_OPT_ENUM, "batch"},
                    {"mkdir", OUTBOX_SINK_OPT_BOOL, "true"},
                    {"file_mode", OUTBOX_SINK_OPT_STRING, "0644"},
                    {"max_open_files", OUTBOX_SINK_OPT_INT, "64"}};
    const outbox_sink_option_t *o = plugin->options;
    assert_non_null(o);
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++, o++) {
        assert_non_null(o->key);
        assert_string_equal(o->key, expected[i].key);
        assert_int_equal(o->type, expected[i].type);
        assert_string_equal(o->default_value, expected[i].default_value);
        assert_non_null(o->help);
    }
    assert_string_equal(plugin->options[0].choices, "always|batch|never");
    assert_int_equal(plugin->options[3].min, 1);
    assert_int_equal(plugin->options[3].max, 1024);
    assert_null(o->key);

    /* Only the entry symbol is exported: the rest is static. */
    assert_null(dlsym(module, "file_open"));
    assert_null(dlsym(module, "file_publish"));
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

    assert_int_equal(fx->th.n_acks, 3);
    for (uint64_t seq = 10; seq <= 12; seq++) assert_acked_ok(&fx->th, seq);
    /* Acked in order, too (not required by the ABI, but this sink does). */
    assert_int_equal(fx->th.acks[0].seq, 10);
    assert_int_equal(fx->th.acks[2].seq, 12);

    /* A second batch appends to the same file. */
    outbox_sink_event_t more = simple_event(13, path);
    publish_ok(fx, &more, 1);
    add_line(expected, sizeof expected, 13, path);
    assert_file_equal(path, expected);
    assert_acked_ok(&fx->th, 13);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
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
    assert_int_equal(fx->th.n_acks, 5);
    for (uint64_t seq = 1; seq <= 5; seq++) assert_acked_ok(&fx->th, seq);

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

        host_init(&fx->th);
        host_set(&fx->th, "fsync", policies[p]);
        fsync_reset();
        open_sink(fx);
        outbox_sink_event_t events[4] = {simple_event(1, a), simple_event(2, b), simple_event(3, a),
                                         simple_event(4, a)};
        publish_ok(fx, events, 4);
        assert_int_equal(fx->th.n_acks, 4);
        for (uint64_t seq = 1; seq <= 4; seq++) {
            assert_acked_ok(&fx->th, seq);
            /* The ack came after an fsync of the event's file (none for never). */
            size_t before = ack_of(&fx->th, seq)->fsyncs_before;
            if (strcmp(policies[p], "never") != 0 && fsyncs_of(events[seq - 1].destination, before) == 0)
                fail_msg("fsync=%s: event %llu acked before its file was fsynced", policies[p],
                         (unsigned long long)seq);
        }
        assert_int_equal(n_fsyncs, fsyncs_in_publish[p]);
        assert_int_equal(fsyncs_of(b, n_fsyncs), strcmp(policies[p], "never") == 0 ? 0 : 1);

        close_sink(fx);
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

        host_init(&fx->th);
        host_set(&fx->th, "fsync", policies[p]);
        fsync_reset();
        open_sink(fx);
        outbox_sink_event_t events[3] = {simple_event(1, b), simple_event(2, a), simple_event(3, b)};
        fsync_fails_for = a;
        assert_int_equal(publish(fx, events, 3, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (strstr(errbuf, a) == NULL || strstr(errbuf, strerror(EIO)) == NULL)
            fail_msg("fsync=%s: errbuf does not name %s and the error: %s", policies[p], a, errbuf);
        int batch = strcmp(policies[p], "batch") == 0;
        assert_int_equal(fx->th.n_acks, batch ? 2 : 1);
        assert_acked_ok(&fx->th, 1);
        assert_not_acked(&fx->th, 2);
        if (batch)
            assert_acked_ok(&fx->th, 3);
        else
            assert_not_acked(&fx->th, 3);
        assert_file_equal(a, "");
        add_line(want_b, sizeof want_b, 1, b);
        if (batch) add_line(want_b, sizeof want_b, 3, b);
        assert_file_equal(b, want_b);

        /* outboxd publishes the unacked events again. */
        fsync_fails_for = NULL;
        publish_ok(fx, events + 1, batch ? 1 : 2);
        assert_int_equal(fx->th.n_acks, 3);
        assert_acked_ok(&fx->th, 2);
        assert_acked_ok(&fx->th, 3);
        add_line(want_a, sizeof want_a, 2, a);
        if (!batch) add_line(want_b, sizeof want_b, 3, b);
        assert_file_equal(a, want_a);
        assert_file_equal(b, want_b);
        close_sink(fx);
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
        assert_int_equal(fx->th.n_acks, 0);
    }

    /* Make it writable: mkdir creates blocked/ and blocked/sub/. */
    assert_int_equal(unlink(blocker), 0);
    publish_ok(fx, events, 2);
    assert_int_equal(fx->th.n_acks, 2);
    assert_acked_ok(&fx->th, 1);
    assert_acked_ok(&fx->th, 2);
    add_line(want, sizeof want, 1, dest);
    add_line(want, sizeof want, 2, dest);
    assert_file_equal(dest, want);
}

/* A file whose writes fail (/dev/full: ENOSPC, even for root, reached
 * through a link to /dev as the destination's directory, which the sink
 * follows since it is the route's own directory) gives RETRY; once the path
 * is fixed, the next publish succeeds. The sink must not keep the failed
 * descriptor open, or it would write to /dev/full forever. */
static void test_failed_file_not_kept_open(void **state) {
    fixture_t *fx = *state;
    char dev[PATH_MAX], path[PATH_MAX], errbuf[1024], want[1024] = "";
    path_in(fx, "dev", dev, sizeof dev);
    path_in(fx, "dev/full", path, sizeof path);
    assert_int_equal(symlink("/dev", dev), 0);

    outbox_sink_event_t ev = simple_event(1, path);
    open_sink(fx);
    assert_int_equal(publish(fx, &ev, 1, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
    if (strstr(errbuf, path) == NULL) fail_msg("errbuf does not name %s: %s", path, errbuf);
    if (strstr(errbuf, strerror(ENOSPC)) == NULL) fail_msg("errbuf lacks the cause: %s", errbuf);
    assert_int_equal(fx->th.n_acks, 0);

    assert_int_equal(unlink(dev), 0);
    assert_int_equal(mkdir(dev, 0755), 0);
    publish_ok(fx, &ev, 1);
    assert_acked_ok(&fx->th, 1);
    add_line(want, sizeof want, 1, path);
    assert_file_equal(path, want);
}

/* A failure in the middle of a batch: the events before it are acked (and
 * written once), the failing one and those after it are not acked (and not
 * written); publishing the unacked ones again completes the files with no
 * duplicate. The same for every fsync policy. */
static void test_failure_mid_batch(void **state) {
    fixture_t *fx = *state;

    for (size_t p = 0; p < 3; p++) {
        char good[PATH_MAX], blocker[PATH_MAX], bad[PATH_MAX], name[64], errbuf[1024];
        char want_good[4096] = "", want_bad[4096] = "";
        snprintf(name, sizeof name, "%s-good.jsonl", policies[p]);
        path_in(fx, name, good, sizeof good);
        snprintf(name, sizeof name, "%s-blocked", policies[p]);
        path_in(fx, name, blocker, sizeof blocker);
        snprintf(name, sizeof name, "%s-blocked/x.jsonl", policies[p]);
        path_in(fx, name, bad, sizeof bad);
        FILE *fp = fopen(blocker, "w");
        assert_non_null(fp);
        fclose(fp);

        host_init(&fx->th);
        host_set(&fx->th, "fsync", policies[p]);
        open_sink(fx);

        static const unsigned char bson[] = {5, 0, 0, 0, 0};
        outbox_sink_event_t events[5] = {simple_event(1, good), simple_event(2, good),
                                         simple_event(3, bad), simple_event(4, good),
                                         simple_event(5, bad)};
        events[1].payload = bson; /* FATAL-acked before the failure */
        events[1].payload_len = sizeof bson;
        assert_int_equal(publish(fx, events, 5, errbuf, sizeof errbuf), OUTBOX_SINK_RETRY);
        if (strstr(errbuf, bad) == NULL) fail_msg("%s: errbuf does not name %s: %s", policies[p], bad, errbuf);
        assert_int_equal(fx->th.n_acks, 2);
        assert_acked_ok(&fx->th, 1);
        assert_int_equal(ack_of(&fx->th, 2)->status, OUTBOX_SINK_FATAL);
        assert_not_acked(&fx->th, 3);
        assert_not_acked(&fx->th, 4);
        assert_not_acked(&fx->th, 5);
        add_line(want_good, sizeof want_good, 1, good);
        assert_file_equal(good, want_good);

        /* Fixed; outboxd publishes the unacked events again. */
        assert_int_equal(unlink(blocker), 0);
        publish_ok(fx, events + 2, 3);
        assert_int_equal(fx->th.n_acks, 5);
        for (uint64_t seq = 3; seq <= 5; seq++) assert_acked_ok(&fx->th, seq);
        add_line(want_good, sizeof want_good, 4, good);
        add_line(want_bad, sizeof want_bad, 3, bad);
        add_line(want_bad, sizeof want_bad, 5, bad);
        assert_file_equal(good, want_good);
        assert_file_equal(bad, want_bad);
        close_sink(fx);
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

        host_init(&fx->th);
        host_set(&fx->th, "fsync", policies[p]);
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
        assert_not_acked(&fx->th, 2);
        size_t first_unacked;
        if (strcmp(policies[p], "batch") == 0) {
            assert_int_equal(fx->th.n_acks, 0);
            assert_file_equal(path, "");
            first_unacked = 0;
        } else {
            assert_int_equal(fx->th.n_acks, 1);
            assert_acked_ok(&fx->th, 1);
            assert_file_equal(path, line1);
            first_unacked = 1;
        }

        publish_ok(fx, events + first_unacked, 2 - first_unacked);
        assert_int_equal(fx->th.n_acks, 2);
        assert_acked_ok(&fx->th, 1);
        assert_acked_ok(&fx->th, 2);
        add_line(want, sizeof want, 1, path);
        add_line(want, sizeof want, 2, path);
        assert_file_equal(path, want);
        close_sink(fx);
    }
    signal(SIGXFSZ, saved_handler);
}

/* A payload that is not a JSON object (payload: bson, or anything else) is
 * a FATAL ack for that event alone; the others are written. */
static void test_payload_not_json(void **state) {
    fixture_t *fx = *state;
    char path[PATH_MAX], want[4096] = "";
    path_in(fx, "p.jsonl", path, sizeof path);

    /* A real BSON document of 123 bytes: {"p": "xxx...x"}. Its first byte,
     * the length 123, is '{'. */
    unsigned char bson123[123];
    memset(bson123, 'x', sizeof bson123);
    bson123[0] = 123, bson123[1] = 0, bson123[2] = 0, bson123[3] = 0;
    bson123[4] = 0x02, bson123[5] = 'p', bson123[6] = 0;
    bson123[7] = 111, bson123[8] = 0, bson123[9] = 0, bson123[10] = 0; /* 110 chars + NUL */
    bson123[121] = 0;                                                     /* string's NUL */
    bson123[122] = 0;                                                     /* document's end */
    static const unsigned char bson_empty[] = {5, 0, 0, 0, 0};

    outbox_sink_event_t events[7];
    for (uint64_t i = 0; i < 7; i++) events[i] = simple_event(i + 1, path);
    events[1].payload = bson_empty, events[1].payload_len = sizeof bson_empty;
    events[2].payload = bson123, events[2].payload_len = sizeof bson123;
    events[3].payload = (const unsigned char *)"", events[3].payload_len = 0;
    events[4].payload = (const unsigned char *)"[1,2]", events[4].payload_len = 5;
    events[5].payload = (const unsigned char *)"  \t", events[5].payload_len = 3;

    open_sink(fx);
    publish_ok(fx, events, 7);
    assert_int_equal(fx->th.n_acks, 7);
    assert_acked_ok(&fx->th, 1);
    assert_acked_ok(&fx->th, 7);
    static const struct {
        uint64_t seq;
        const char *error;
    } fatal[] = {
        {2, "file sink needs payload: json (got 5 bytes that are not a JSON object)"},
        {3, "file sink needs payload: json (got 123 bytes that are not a JSON object)"},
        {4, "file sink needs payload: json (got 0 bytes that are not a JSON object)"},
        {5, "file sink needs payload: json (got 5 bytes that are not a JSON object)"},
        {6, "file sink needs payload: json (got 3 bytes that are not a JSON object)"},
    };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        const ack_t *a = ack_of(&fx->th, fatal[i].seq);
        assert_int_equal(a->status, OUTBOX_SINK_FATAL);
        assert_string_equal(a->error, fatal[i].error);
    }
    add_line(want, sizeof want, 1, path);
    add_line(want, sizeof want, 7, path);
    assert_file_equal(path, want);
}

/* A destination that can never be a file (empty; ends with "/") is a FATAL
 * ack for that event, not an endless RETRY. */
static void test_destination_not_a_file(void **state) {
    fixture_t *fx = *state;
    char dir_slash[PATH_MAX];
    snprintf(dir_slash, sizeof dir_slash, "%s/", fx->dir);
    outbox_sink_event_t events[2] = {simple_event(1, ""), simple_event(2, dir_slash)};

    open_sink(fx);
    publish_ok(fx, events, 2);
    assert_int_equal(fx->th.n_acks, 2);
    assert_int_equal(ack_of(&fx->th, 1)->status, OUTBOX_SINK_FATAL);
    assert_int_equal(ack_of(&fx->th, 2)->status, OUTBOX_SINK_FATAL);
    assert_non_null(strstr(ack_of(&fx->th, 2)->error, dir_slash));
}

static void test_bad_options(void **state) {
    fixture_t *fx = *state;
    static const struct {
        const char *key, *value;
    } bad[] = {{"file_mode", "0999"},     {"file_mode", "rw-r--r--"}, {"file_mode", ""},
               {"file_mode", "017777"},   {"file_mode", "-644"},      {"fsync", "sometimes"},
               {"mkdir", "maybe"},        {"max_open_files", "0"},    {"max_open_files", "1025"},
               {"max_open_files", "ten"}, {"max_open_files", ""}};
    char errbuf[512];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx->sink = NULL;
        int rc = open_with(fx, bad[i].key, bad[i].value, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_FATAL)
            fail_msg("%s=\"%s\": open gave %d, not FATAL", bad[i].key, bad[i].value, rc);
        assert_null(fx->sink);
        if (strstr(errbuf, bad[i].key) == NULL)
            fail_msg("%s=\"%s\": message does not name the option: %s", bad[i].key, bad[i].value, errbuf);
    }
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
    assert_int_equal(fx->th.n_acks, 0);
    assert_int_equal(access(dir, F_OK), -1);

    assert_int_equal(mkdir(dir, 0755), 0);
    publish_ok(fx, &ev, 1);
    assert_acked_ok(&fx->th, 1);
    add_line(want, sizeof want, 1, path);
    assert_file_equal(path, want);
}

/* max_open_files=1 with destinations taking turns: every switch closes the
 * other file (after its fsync, for batch), and every line still lands in
 * order in the right file. At most one file is open at a time. */
static void test_max_open_files_one(void **state) {
    fixture_t *fx = *state;

    for (size_t p = 0; p < 3; p++) {
        char paths[3][PATH_MAX], want[3][4096] = {"", "", ""}, errbuf[512];
        for (int f = 0; f < 3; f++) {
            char name[64];
            snprintf(name, sizeof name, "%s/%d.jsonl", policies[p], f);
            path_in(fx, name, paths[f], sizeof paths[f]);
        }
        int fds_before = count_open_fds();
        fsync_reset();
        host_init(&fx->th);
        host_set(&fx->th, "max_open_files", "1");
        host_set(&fx->th, "fsync", policies[p]);
        errbuf[0] = '\0';
        assert_int_equal(plugin->open(&fx->th.host, &fx->sink, errbuf, sizeof errbuf), OUTBOX_SINK_OK);

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
        assert_int_equal(fx->th.n_acks, 12);
        for (uint64_t seq = 1; seq <= 12; seq++) {
            assert_acked_ok(&fx->th, seq);
            /* fsync=batch: a file closed to make room is fsynced first, and
             * its events are acked only after that. */
            size_t before = ack_of(&fx->th, seq)->fsyncs_before;
            if (strcmp(policies[p], "never") != 0 && fsyncs_of(events[seq - 1].destination, before) == 0)
                fail_msg("fsync=%s: event %llu acked before its file was fsynced", policies[p],
                         (unsigned long long)seq);
        }
        close_sink(fx);
        assert_int_equal(count_open_fds(), fds_before);
        for (int f = 0; f < 3; f++) assert_file_equal(paths[f], want[f]);
    }
}

/* Two instances at once, with different options, share nothing. */
static void test_two_instances(void **state) {
    fixture_t *fx = *state;
    char a[PATH_MAX], b[PATH_MAX], errbuf[512], want_a[4096] = "", want_b[4096] = "";
    test_host_t th2;
    void *sink2 = NULL;
    path_in(fx, "one.jsonl", a, sizeof a);
    path_in(fx, "two.jsonl", b, sizeof b);

    host_set(&fx->th, "fsync", "always");
    open_sink(fx);
    host_init(&th2);
    host_set(&th2, "fsync", "never");
    host_set(&th2, "max_open_files", "2");
    assert_int_equal(plugin->open(&th2.host, &sink2, errbuf, sizeof errbuf), OUTBOX_SINK_OK);

    for (uint64_t seq = 1; seq <= 4; seq++) {
        outbox_sink_event_t ev = simple_event(seq, seq % 2 ? a : b);
        if (seq % 2) {
            publish_ok(fx, &ev, 1);
            add_line(want_a, sizeof want_a, seq, a);
        } else {
            assert_int_equal(plugin->publish(sink2, &ev, 1, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
            add_line(want_b, sizeof want_b, seq, b);
        }
    }
    plugin->close(sink2);
    assert_int_equal(fx->th.n_acks, 2);
    assert_int_equal(th2.n_acks, 2);
    assert_acked_ok(&fx->th, 1);
    assert_acked_ok(&fx->th, 3);
    assert_acked_ok(&th2, 2);
    assert_acked_ok(&th2, 4);
    assert_file_equal(a, want_a);
    assert_file_equal(b, want_b);
}

/* ----------------------------------------------------------------------------
 * Destinations stay beneath the route's fixed directory
 * ------------------------------------------------------------------------- */

/* Gives the sink its route as outboxd does (host->route, sink ABI 1.1).
 * Returns 0 when this header's host struct has no route yet. */
static int give_route(fixture_t *fx, const char *route) {
#if OUTBOX_SINK_ABI_MAJOR > 1 || OUTBOX_SINK_ABI_MINOR >= 1
    fx->th.host.route = route;
    return 1;
#else
    (void)fx;
    (void)route;
    return 0;
#endif
}

/* Skips the test when the sink cannot know the route. */
#define NEED_ROUTE(fx, route)                                                                   \
    do {                                                                                        \
        if (!give_route(fx, route)) {                                                           \
            printf("# skip reason: outbox/sink.h %d.%d has no host->route (needs ABI 1.1)\n",   \
                   OUTBOX_SINK_ABI_MAJOR, OUTBOX_SINK_ABI_MINOR);                               \
            fflush(stdout);                                                                     \
            skip();                                                                             \
        }                                                                                       \
    } while (0)

/* The route with {type} and {key} filled in, as outboxd's
 * outboxd_route_expand does (a NULL key is ""). */
static void expand(const char *route, const char *type, const char *key, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = route; *p != '\0';) {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, "{type}", 6) == 0) {
            piece = type, len = strlen(type), p += 6;
        } else if (strncmp(p, "{key}", 5) == 0) {
            piece = key ? key : "", len = strlen(piece), p += 5;
        } else {
            p++;
        }
        assert_true(n + len < size);
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
}

/* Publishes one event of type and key through route (given to the sink
 * when give is set) and checks it is acked FATAL with a message naming the
 * event id, the destination and each needle. */
static void expect_refused(fixture_t *fx, const char *route, const char *type, const char *key,
                           const char *needle) {
    static char dest[PATH_MAX];
    expand(route, type, key, dest, sizeof dest);
    outbox_sink_event_t ev = simple_event(1, dest);
    ev.type = type;
    ev.key = key;
    fx->th.n_acks = 0;
    publish_ok(fx, &ev, 1);
    const ack_t *a = ack_of(&fx->th, 1);
    if (a->status != OUTBOX_SINK_FATAL)
        fail_msg("destination \"%s\" (type \"%s\", key \"%s\") acked %d, not FATAL", dest, type,
                 key ? key : "(null)", (int)a->status);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "event %s: refusing destination \"%s\"", ev.id, dest);
    if (strstr(a->error, want) == NULL || strstr(a->error, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", a->error, want, needle);
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
    char route[PATH_MAX];
    snprintf(route, sizeof route, "%s/srv/out/{key}.jsonl", fx->dir);
    /* With the route, the value is refused for its "/"; without, the path
     * for its ".." components. */
    int routed = give_route(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "order", "../../escape",
                   routed ? "its {key} value \"../../escape\" cannot be a file name: it contains \"/\""
                          : "it has a \"..\" component");
    if (routed) expect_refused(fx, route, "order", "..", "it is \".\" or \"..\"");
    assert_string_equal(files_under(fx->dir), "");
}

static void test_dotdot_in_type_cannot_leave_the_route_dir(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX];
    snprintf(route, sizeof route, "%s/srv/out/{type}.jsonl", fx->dir);
    int routed = give_route(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "../../x", "k",
                   routed ? "its {type} value \"../../x\" cannot be a file name: it contains \"/\""
                          : "it has a \"..\" component");
    assert_string_equal(files_under(fx->dir), "");
}

/* An empty {type} made "/srv/out/.jsonl"; a null key used by the route
 * made "/srv/out/.jsonl" too. */
static void test_empty_value_is_refused(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX], by_key[PATH_MAX];
    snprintf(route, sizeof route, "%s/out/{type}.jsonl", fx->dir);
    snprintf(by_key, sizeof by_key, "%s/out/{key}.jsonl", fx->dir);
    NEED_ROUTE(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "", "k", "its {type} value \"\" cannot be a file name: it is empty");
    close_sink(fx);
    give_route(fx, by_key);
    open_sink(fx);
    expect_refused(fx, by_key, "t", "", "its {key} value \"\" cannot be a file name: it is empty");
    expect_refused(fx, by_key, "t", NULL, "the route uses {key} and the event has no key");
    assert_string_equal(files_under(fx->dir), "");
}

/* A value is one path component: "/" in it is refused, so an absolute
 * value cannot replace a relative route's directory either. */
static void test_slash_or_absolute_value_is_refused(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX], outside[PATH_MAX];
    snprintf(route, sizeof route, "%s/out/{key}.jsonl", fx->dir);
    NEED_ROUTE(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "t", "sub/file", "contains \"/\"");
    expect_refused(fx, route, "t", "/etc/x", "contains \"/\"");
    close_sink(fx);
    /* A relative route: its fixed directory is outboxd's working directory. */
    give_route(fx, "{key}.jsonl");
    open_sink(fx);
    snprintf(outside, sizeof outside, "%s/abs", fx->dir);
    expect_refused(fx, "{key}.jsonl", "t", outside, "contains \"/\"");
    assert_string_equal(files_under(fx->dir), "");
}

/* out/link.jsonl -> ../outside.jsonl: the line would have landed outside. */
static void test_symlinked_file_is_refused(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX], out[PATH_MAX], link[PATH_MAX], outside[PATH_MAX];
    snprintf(route, sizeof route, "%s/out/{key}.jsonl", fx->dir);
    path_in(fx, "out", out, sizeof out);
    path_in(fx, "out/link.jsonl", link, sizeof link);
    path_in(fx, "outside.jsonl", outside, sizeof outside);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(symlink(outside, link), 0);
    give_route(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "t", "link", "goes through a symbolic link");
    /* A dangling link: O_CREAT would have created its target. */
    assert_string_equal(files_under(fx->dir), "out/link.jsonl\n");
}

/* out/{type}/{key}.jsonl with out/t -> ../elsewhere. */
static void test_symlinked_directory_beneath_the_route_dir_is_refused(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX], out[PATH_MAX], link[PATH_MAX], elsewhere[PATH_MAX];
    snprintf(route, sizeof route, "%s/out/{type}/{key}.jsonl", fx->dir);
    path_in(fx, "out", out, sizeof out);
    path_in(fx, "out/t", link, sizeof link);
    path_in(fx, "elsewhere", elsewhere, sizeof elsewhere);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(mkdir(elsewhere, 0755), 0);
    assert_int_equal(symlink(elsewhere, link), 0);
    NEED_ROUTE(fx, route);
    open_sink(fx);
    expect_refused(fx, route, "t", "k", "goes through a symbolic link");
    assert_string_equal(files_under(fx->dir), "out/t\n");
}

/* The route's own directory is the administrator's: links in it are
 * followed, and values that are plain names go through. */
static void test_link_in_the_route_dir_itself_is_followed(void **state) {
    fixture_t *fx = *state;
    char route[PATH_MAX], real[PATH_MAX], link[PATH_MAX], dest[PATH_MAX];
    path_in(fx, "real", real, sizeof real);
    path_in(fx, "link", link, sizeof link);
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink(real, link), 0);
    snprintf(route, sizeof route, "%s/by-type/{type}/{key}.jsonl", link);
    give_route(fx, route);
    open_sink(fx);
    expand(route, "order.created", "..k.", dest, sizeof dest);
    outbox_sink_event_t ev = simple_event(1, dest);
    ev.type = "order.created";
    ev.key = "..k.";
    publish_ok(fx, &ev, 1);
    assert_acked_ok(&fx->th, 1);
    assert_string_equal(files_under(fx->dir), "link\nreal/by-type/order.created/..k..jsonl\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identification),
        cmocka_unit_test_setup_teardown(test_lines_fields_and_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_then_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_file_not_kept_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_write_leaves_no_partial_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_not_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_open_files_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot_in_key_cannot_leave_the_route_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot_in_type_cannot_leave_the_route_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_value_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slash_or_absolute_value_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_file_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_directory_beneath_the_route_dir_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_in_the_route_dir_itself_is_followed, setup, teardown),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("file sink", tests, load_plugin, unload_plugin);
}
