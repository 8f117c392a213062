/*
 * test_runner_abi11.c - the sink runner's side of sink ABI 1.1, on the real
 * outboxd (tests/daemonlib) against the harness's MongoDB, with the probe
 * plugin (outboxd/testplugins-runner/probe.c), which records what it is
 * handed:
 *  - publish_some that takes a few events at a time: every event arrives
 *    exactly once and in log order (the rest of each batch is offered again);
 *    one that says it took more than it was given is a FATAL, logged;
 *  - an event whose route expands to "" (route {key}, a null key) is failed
 *    by outboxd itself, with the reason, under on_error (here deadletter):
 *    the plugin never sees an empty destination (it used to get one);
 *  - a route that repeats its placeholders expands exactly with long types
 *    and keys (the destination's size used to be a guess that fell short,
 *    and the event went out with an empty destination);
 *  - the plugin's stats reach the checkpoint document and `outboxctl status`,
 *    and a figure with a bad name is dropped with one log line.
 * No timing threshold: waits are bounds that only a hang exceeds.
 */
#include "daemonlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLUGINS "outboxd/testplugins-runner"
#define WAIT_MS 60000

static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What the probe recorded: the events it took, in order. */
typedef struct {
    char **ids, **destinations;
    int n;
    bool publish_called;  /* publish instead of publish_some */
    int empty;            /* empty destinations it was given */
    int stats_after_last_event; /* the highest "stats N" recorded after the last event */
    char payload[16];     /* host->payload at open */
} record_t;

static void record_free(record_t *rec) {
    for (int i = 0; i < rec->n; i++) {
        free(rec->ids[i]);
        free(rec->destinations[i]);
    }
    free(rec->ids);
    free(rec->destinations);
    memset(rec, 0, sizeof *rec);
}

static void record_read(const char *path, record_t *rec) {
    memset(rec, 0, sizeof *rec);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        int calls;
        if (!strncmp(line, "event ", 6)) {
            char *id = line + 6, *space = strchr(id, ' ');
            assert_non_null(space);
            *space = '\0';
            rec->ids = realloc(rec->ids, (size_t)(rec->n + 1) * sizeof *rec->ids);
            rec->destinations = realloc(rec->destinations, (size_t)(rec->n + 1) * sizeof *rec->destinations);
            rec->ids[rec->n] = strdup(id);
            rec->destinations[rec->n] = strdup(space + 1);
            rec->n++;
            rec->stats_after_last_event = 0;
        } else if (!strncmp(line, "empty-destination ", 18)) {
            rec->empty++;
        } else if (!strcmp(line, "publish-called")) {
            rec->publish_called = true;
        } else if (sscanf(line, "stats %d", &calls) == 1) {
            rec->stats_after_last_event = calls;
        } else if (!strncmp(line, "open payload=", 13)) {
            snprintf(rec->payload, sizeof rec->payload, "%s", line + 13);
        }
    }
    free(line);
    fclose(f);
}

/* Waits until the probe has recorded n events (and, with min_stats, a
 * stats call numbered at least min_stats after them). */
static void wait_record(const char *path, int n, int min_stats, record_t *rec) {
    for (int waited = 0;; waited += 50) {
        record_read(path, rec);
        if (rec->n >= n && rec->stats_after_last_event >= min_stats)
            return;
        if (waited >= WAIT_MS)
            fail_msg("%s: %d events (and stats call %d) after %d ms, waiting for %d (and %d)", path, rec->n,
                     rec->stats_after_last_event, WAIT_MS, n, min_stats);
        record_free(rec);
        nap_ms(50);
    }
}

/* Puts events of the given types and keys (key NULL: a null key) in one
 * batch; writes their ids (hex) into ids. */
static void put_events(outbox_t *ob, int n, const char *const *types, const char *const *keys, char (*ids)[25]) {
    outbox_error_t err;
    outbox_batch_t *b = outbox_batch_new(ob);
    for (int i = 0; i < n; i++) {
        char data[80];
        snprintf(data, sizeof data, "{\"ordernr\":%d,\"total\":1}", i + 1);
        if (outbox_batch_add_json(b, types[i], keys[i], data, NULL, &err) != OUTBOX_OK)
            fail_msg("event %d: %s", i, err.message);
    }
    if (outbox_batch_put(b, NULL, &err) != OUTBOX_OK)
        fail_msg("put: %s", err.message);
    for (int i = 0; i < n; i++)
        bson_oid_to_string(outbox_batch_id(b, (size_t)i), ids[i]);
    outbox_batch_destroy(b);
}

/* Starts outboxd with one probe sink (sink_extra: more keys of the sink,
 * options_extra: more options); the probe records into dir/record.txt. */
static void start_probe(test_daemon_t *d, const char *dir, outbox_t *ob, const char *route, const char *sink_extra,
                        const char *options_extra) {
    char sinks[2000];
    snprintf(sinks, sizeof sinks,
             "  - name: probe\n    plugin: probe\n    route: \"%s\"\n%s    options:\n      out: \"%s/record.txt\"\n%s",
             route, sink_extra, dir, options_extra);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_start_with(d, config, dir, PLUGINS);
    free(config);
}

/* Waits until the sink's checkpoint is at event id. */
static void wait_checkpoint(outbox_t *ob, const char *id) {
    for (int waited = 0;; waited += 50) {
        bson_oid_t last;
        char hex[25] = "";
        memset(&last, 0, sizeof last);
        if (test_checkpoint(ob, "probe", &last, NULL, 0))
            bson_oid_to_string(&last, hex);
        if (!strcmp(hex, id))
            return;
        if (waited >= WAIT_MS)
            fail_msg("the checkpoint is at %s after %d ms, waiting for %s", hex[0] ? hex : "(none)", WAIT_MS, id);
        nap_ms(50);
    }
}

/* ---- publish_some -------------------------------------------------------- */

static void publish_some_taking_three_at_a_time_delivers_each_event_once_in_order(void **state) {
    (void)state;
    enum { N = 200 };
    static char ids[N][25];
    const char *types[N], *keys[N];
    outbox_t *ob = test_outbox("rb_some");
    char *dir = test_tmpdir("rb-some"), path[700];
    snprintf(path, sizeof path, "%s/record.txt", dir);
    for (int i = 0; i < N; i++)
        types[i] = "order.created", keys[i] = "k";
    put_events(ob, N, types, keys, ids);

    /* At most 3 per call, and 3 unacked at most (acked in poll): most
     * calls take fewer than offered, or none. */
    test_daemon_t d;
    start_probe(&d, dir, ob, "orders.{type}", "", "      max_take: 3\n");
    wait_checkpoint(ob, ids[N - 1]);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    record_t rec;
    record_read(path, &rec);
    assert_false(rec.publish_called);
    assert_string_equal(rec.payload, "json"); /* host->payload */
    assert_int_equal(rec.n, N);               /* once each ... */
    for (int i = 0; i < N; i++) {             /* ... in log order */
        assert_string_equal(rec.ids[i], ids[i]);
        assert_string_equal(rec.destinations[i], "orders.order.created");
    }
    record_free(&rec);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

static void publish_some_taking_more_than_offered_is_a_logged_fatal_and_nothing_is_lost(void **state) {
    (void)state;
    char ids[1][25];
    const char *types[1] = {"order.created"}, *keys[1] = {"k"};
    outbox_t *ob = test_outbox("rb_overtake");
    char *dir = test_tmpdir("rb-overtake");
    put_events(ob, 1, types, keys, ids);
    test_daemon_t d;
    start_probe(&d, dir, ob, "orders.{type}", "", "      overtake: true\n");
    const char *said = "publish_some said it took 2 of the 1 events it was given (a bug in plugin probe";
    char *log = NULL;
    for (int waited = 0; !(log = test_read_file(d.log)) || !strstr(log, said); waited += 50) {
        if (waited >= WAIT_MS)
            fail_msg("outboxd did not say \"%s\" within %d ms: %s", said, WAIT_MS, log ? log : "");
        free(log);
        nap_ms(50);
    }
    /* FATAL: the sink is reopened (and offers the event again). */
    assert_non_null(strstr(strstr(log, said), "treated as FATAL (reopening the sink)"));
    free(log);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    /* Not acked, so not passed: it is published again after a restart. */
    bson_oid_t last;
    memset(&last, 0, sizeof last);
    char state_text[32] = "";
    assert_true(test_checkpoint(ob, "probe", &last, state_text, sizeof state_text));
    char hex[25];
    bson_oid_to_string(&last, hex);
    assert_string_not_equal(hex, ids[0]);
    assert_string_equal(state_text, "running");
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* ---- recover after a reopen ------------------------------------------------ */

/* Every publish takes the events and then fails FATAL, unacked (the
 * connection broke after they went out): outboxd reopens the plugin and,
 * before offering them again, asks the new instance's recover which
 * arrived: each event is delivered once, and the sink moves on. */
static void events_taken_before_a_fatal_are_recovered_after_the_reopen_not_sent_twice(void **state) {
    (void)state;
    enum { N = 30 };
    static char ids[N][25];
    const char *types[N], *keys[N];
    outbox_t *ob = test_outbox("rb_reopen");
    char *dir = test_tmpdir("rb-reopen"), path[700];
    snprintf(path, sizeof path, "%s/record.txt", dir);
    for (int i = 0; i < N; i++)
        types[i] = "order.created", keys[i] = "k";
    put_events(ob, N, types, keys, ids);
    test_daemon_t d;
    start_probe(&d, dir, ob, "orders.{type}", "", "      fatal_after_take: true\n      recover: true\n");
    wait_checkpoint(ob, ids[N - 1]);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    record_t rec;
    record_read(path, &rec);
    assert_int_equal(rec.n, N); /* once each, in log order */
    for (int i = 0; i < N; i++)
        assert_string_equal(rec.ids[i], ids[i]);
    record_free(&rec);
    char *log = test_read_file(d.log);
    assert_non_null(strstr(log, "events the closed instance had not acked are at the destination already"));
    free(log);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* ---- destinations ---------------------------------------------------------- */

static void null_key_under_route_key_is_dead_lettered_by_outboxd_never_an_empty_destination(void **state) {
    (void)state;
    enum { N = 5 };
    char ids[N][25];
    const char *types[N] = {"order.created", "order.created", "order.created", "order.created", "order.created"};
    const char *keys[N] = {"k1", "k2", NULL, "k3", "k4"};
    outbox_t *ob = test_outbox("rb_nullkey");
    char *dir = test_tmpdir("rb-nullkey"), path[700], coll[300];
    snprintf(path, sizeof path, "%s/record.txt", dir);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    put_events(ob, N, types, keys, ids);

    test_daemon_t d;
    start_probe(&d, dir, ob, "{key}", "    on_error: deadletter\n", "");
    wait_checkpoint(ob, ids[N - 1]);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    record_t rec;
    record_read(path, &rec);
    assert_int_equal(rec.empty, 0); /* the probe was never given "" */
    const int delivered[] = {0, 1, 3, 4};
    assert_int_equal(rec.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(rec.ids[i], ids[delivered[i]]);
        assert_string_equal(rec.destinations[i], keys[delivered[i]]);
    }
    record_free(&rec);

    /* The null-key event is in N.deadletter, with the reason. */
    char reason[200];
    snprintf(reason, sizeof reason, "route {key} expanded to an empty destination: event %s has a null key", ids[2]);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
    const bson_t *doc;
    int letters = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        char hex[25];
        letters++;
        assert_true(bson_iter_init_find(&it, doc, "event_id") && BSON_ITER_HOLDS_OID(&it));
        bson_oid_to_string(bson_iter_oid(&it), hex);
        assert_string_equal(hex, ids[2]);
        assert_true(bson_iter_init_find(&it, doc, "sink") && BSON_ITER_HOLDS_UTF8(&it));
        assert_string_equal(bson_iter_utf8(&it, NULL), "probe");
        assert_true(bson_iter_init_find(&it, doc, "error") && BSON_ITER_HOLDS_UTF8(&it));
        assert_string_equal(bson_iter_utf8(&it, NULL), reason);
    }
    assert_int_equal(letters, 1);
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, reason), 1); /* said once, in the on_error line */
    free(log);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The route expanded by hand, independently of outboxd: {type}, {key}
 * (nothing for a null key), {{ and }}. */
static void expand(const char *route, const char *type, const char *key, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = route; *p;) {
        const char *piece = p;
        size_t len = 1;
        if (!strncmp(p, "{{", 2) || !strncmp(p, "}}", 2)) {
            p += 2;
        } else if (!strncmp(p, "{type}", 6)) {
            piece = type, len = strlen(type), p += 6;
        } else if (!strncmp(p, "{key}", 5)) {
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

static void route_with_eight_placeholders_and_200_byte_types_and_keys_expands_exactly(void **state) {
    (void)state;
    enum { N = 4 };
    /* 200 bytes each: a type of 99 two-byte characters, and a key that
     * holds a placeholder's text (never expanded again). */
    char type200[201] = "ty", key200[201] = "{type}";
    for (int i = 0; i < 99; i++)
        strcat(type200, "\xc3\xa9"); /* U+00E9 */
    while (strlen(key200) < 200)
        strcat(key200, "k");
    assert_int_equal(strlen(type200), 200);
    assert_int_equal(strlen(key200), 200);
    /* Five {type} and three {key}: with a short key or none, the old
     * guess (template + 4 x type + 4 x key + 16 bytes) fell short. */
    const char *route = "{type}/{key}.{type}-{{x}}-{type}{type}:{key}/{type}@{key}";

    outbox_error_t err;
    outbox_conf_t *conf = test_conf("rb_route");
    assert_int_equal(outbox_conf_add_type(conf, type200, "{\"bsonType\":\"object\"}", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    assert_non_null(ob);
    assert_int_equal(outbox_ensure(ob, &err), OUTBOX_OK);
    char ids[N][25];
    const char *types[N] = {type200, type200, "order.created", type200};
    const char *keys[N] = {key200, "k", key200, NULL};
    put_events(ob, N, types, keys, ids);

    char *dir = test_tmpdir("rb-route"), path[700];
    snprintf(path, sizeof path, "%s/record.txt", dir);
    test_daemon_t d;
    start_probe(&d, dir, ob, route, "", "");
    wait_checkpoint(ob, ids[N - 1]);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    record_t rec;
    record_read(path, &rec);
    assert_int_equal(rec.empty, 0);
    assert_int_equal(rec.n, N);
    for (int i = 0; i < N; i++) {
        char want[4000];
        expand(route, types[i], keys[i], want, sizeof want);
        assert_string_equal(rec.ids[i], ids[i]);
        assert_string_equal(rec.destinations[i], want);
    }
    record_free(&rec);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* ---- stats ------------------------------------------------------------------ */

/* The sink's checkpoint document (caller destroys), NULL when absent. */
static bson_t *checkpoint_doc(outbox_t *ob) {
    char coll[300];
    const bson_t *doc;
    bson_t *copy = NULL;
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8("probe"));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc))
        copy = bson_copy(doc);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return copy;
}

static double number_at(const bson_t *doc, const char *dotted) {
    bson_iter_t it, found;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &found) ||
        !BSON_ITER_HOLDS_NUMBER(&found))
        fail_msg("no number at %s", dotted);
    return bson_iter_as_double(&found);
}

static bool has_path(const bson_t *doc, const char *dotted) {
    bson_iter_t it, found;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, dotted, &found);
}

static void plugin_stats_reach_checkpoint_and_outboxctl_status_bad_name_logged_once(void **state) {
    (void)state;
    enum { N = 20 };
    char ids[N][25];
    const char *types[N], *keys[N];
    for (int i = 0; i < N; i++)
        types[i] = "order.created", keys[i] = "k";
    outbox_t *ob = test_outbox("rb_stats");
    char *dir = test_tmpdir("rb-stats"), path[700];
    snprintf(path, sizeof path, "%s/record.txt", dir);
    put_events(ob, N, types, keys, ids);

    test_daemon_t d;
    start_probe(&d, dir, ob, "orders.{type}", "", "      stats: true\n      bad_stat: true\n");
    /* Three stats calls after the last event: the bad name met three times. */
    record_t rec;
    wait_record(path, N, 3, &rec);
    record_free(&rec);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    bson_t *doc = checkpoint_doc(ob);
    assert_non_null(doc);
    assert_true(number_at(doc, "plugin_stats.events_taken") == N);
    assert_true(number_at(doc, "plugin_stats.stats_calls") >= 3);
    assert_false(has_path(doc, "plugin_stats.Bad-Name"));
    bson_destroy(doc);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "stat \"Bad-Name\" dropped"), 1);
    free(log);

    /* outboxctl status --json: per sink, "plugin_stats"; the text output
     * says them in one line. */
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status --json", builddir(),
             test_mongodb_uri(), TEST_DB, outbox_name(ob));
    assert_int_equal(test_run_command(cmd, &out), 0);
    bson_t status;
    bson_error_t berr;
    if (!bson_init_from_json(&status, out, -1, &berr))
        fail_msg("outboxctl status --json is not JSON (%s): %s", berr.message, out);
    assert_true(number_at(&status, "sinks.0.plugin_stats.events_taken") == N);
    assert_true(number_at(&status, "sinks.0.plugin_stats.stats_calls") >= 3);
    assert_false(has_path(&status, "sinks.0.plugin_stats.Bad-Name"));
    bson_destroy(&status);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status", builddir(),
             test_mongodb_uri(), TEST_DB, outbox_name(ob));
    assert_int_equal(test_run_command(cmd, &out), 0);
    char want[100];
    snprintf(want, sizeof want, "\nplugin stats of probe: events_taken=%d, stats_calls=", N);
    if (!strstr(out, want))
        fail_msg("outboxctl status does not say \"%s\": %s", want + 1, out);
    free(out);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publish_some_taking_three_at_a_time_delivers_each_event_once_in_order),
        cmocka_unit_test(publish_some_taking_more_than_offered_is_a_logged_fatal_and_nothing_is_lost),
        cmocka_unit_test(events_taken_before_a_fatal_are_recovered_after_the_reopen_not_sent_twice),
        cmocka_unit_test(null_key_under_route_key_is_dead_lettered_by_outboxd_never_an_empty_destination),
        cmocka_unit_test(route_with_eight_placeholders_and_200_byte_types_and_keys_expands_exactly),
        cmocka_unit_test(plugin_stats_reach_checkpoint_and_outboxctl_status_bad_name_logged_once),
    };
    return TEST_RUN("outboxd/test_runner_abi11", tests);
}
