/*
 * test_redis_outboxd.c - the Redis sink end to end: the real outboxd, an
 * outbox on the harness's MongoDB, and redis-servers of the test's own
 * (redis_testlib.h), read back with hiredis.
 *
 *  - 50,000 events: every one in its stream, in order, with every field
 *    equal to the event as the outbox holds it;
 *  - redis-server killed (-9) and started again mid-stream: none missing,
 *    the sink reconnects by itself (duplicates counted and reported);
 *  - outboxd killed (-9) mid-stream, four times: with recover (the
 *    default) no entry is there twice, nor with dedupe alone; with neither
 *    (recover: false) the duplicates are counted and reported;
 *  - outboxd killed (-9) ten times at random points while events are put
 *    (crashlib.h): every event exactly once, in order per key;
 *  - a wrong address: outboxd keeps opening the sink, the log says why,
 *    and once the server is there nothing is missing;
 *  - a wrong password: the sink stops (open FATAL) with a message that
 *    says so and shows no password, while another sink goes on;
 *  - a key of the wrong type: WRONGTYPE is handed to on_error: deadletter
 *    puts the event in N.deadletter with the error, stop stops the sink;
 *  - `outboxd --check` refuses a bad url at its file and line, with no
 *    server anywhere (the plugin's check, ABI 1.1);
 *  - password_file (read by outboxd for the SECRET option password): the
 *    sink logs in, and no byte outboxd --check, outboxd or outboxctl
 *    status prints holds the password, right or wrong.
 *
 * Without MongoDB or redis-server the tests skip, saying why (the --check
 * test needs neither).
 */
#include "crashlib.h"
#include "ejson.h"
#include "redis_testlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PUT_BATCH 1000

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ----------------------------------------------------------------------------
 * outboxd, killed in teardown if a test fails while it runs
 * ------------------------------------------------------------------------- */

static pid_t running_daemon;

static void daemon_start(test_daemon_t *d, const char *config, const char *dir) {
    test_daemon_start_with(d, config, dir, "sinks/redis");
    running_daemon = d->pid;
}

static int daemon_stop(test_daemon_t *d, int sig) {
    int status = test_daemon_stop(d, sig);
    running_daemon = 0;
    return status;
}

static int teardown(void **state) {
    if (running_daemon > 0) {
        int status;
        kill(running_daemon, SIGKILL);
        waitpid(running_daemon, &status, 0);
        running_daemon = 0;
    }
    test_redis_stop_all();
    return 0;
}

/* A config like test_daemon_config's, with the checkpoint interval given:
 * outboxd's publish batches are no larger than every_events. */
static char *write_config(const char *dir, outbox_t *ob, int every_events, int every_ms,
                          const char *sinks_yaml) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/outboxd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "mongodb:\n"
            "  uri: \"%s\"\n"
            "  database: %s\n"
            "outbox: %s\n"
            "checkpoint:\n"
            "  every_events: %d\n"
            "  every_ms: %d\n"
            "sinks:\n%s",
            test_mongodb_uri(), TEST_DB, outbox_name(ob), every_events, every_ms, sinks_yaml);
    fclose(f);
    return path;
}

/* ----------------------------------------------------------------------------
 * Events: order i is order.shipped when i % 10 == 0, else order.created;
 * its key is null when i % 7 == 0, else "cust-<i % 100>"; it has headers
 * when i % 5 == 0. Put in batches: one insert per PUT_BATCH events.
 * ------------------------------------------------------------------------- */

typedef struct {
    char (*ids)[25]; /* the event id of order i at ids[i - from] */
    int from, to;
} put_t;

static void put_orders(outbox_t *ob, int from, int to, put_t *out) {
    outbox_error_t err;
    if (out != NULL) {
        out->ids = calloc((size_t)(to - from + 1), sizeof *out->ids);
        out->from = from;
        out->to = to;
    }
    for (int start = from; start <= to; start += PUT_BATCH) {
        int end = start + PUT_BATCH - 1 < to ? start + PUT_BATCH - 1 : to;
        outbox_batch_t *batch = outbox_batch_new(ob);
        for (int i = start; i <= end; i++) {
            char key[32], trace[32];
            bson_t *data = i % 10 == 0
                               ? BCON_NEW("ordernr", BCON_INT32(i), "carrier", BCON_UTF8("dhl"))
                               : BCON_NEW("ordernr", BCON_INT32(i), "total", BCON_DOUBLE(10.5));
            snprintf(key, sizeof key, "cust-%d", i % 100);
            snprintf(trace, sizeof trace, "t-%d", i);
            bson_t *headers = i % 5 == 0 ? BCON_NEW("trace", BCON_UTF8(trace), "source", BCON_UTF8("test"))
                                         : NULL;
            if (outbox_batch_add(batch, i % 10 == 0 ? "order.shipped" : "order.created",
                                 i % 7 == 0 ? NULL : key, data, headers, &err) != OUTBOX_OK)
                fail_msg("add order %d: %s", i, err.message);
            bson_destroy(data);
            if (headers) bson_destroy(headers);
        }
        if (outbox_batch_put(batch, NULL, &err) != OUTBOX_OK)
            fail_msg("put orders %d..%d: %s", start, end, err.message);
        if (out != NULL) {
            for (int i = start; i <= end; i++)
                bson_oid_to_string(outbox_batch_id(batch, (size_t)(i - start)), out->ids[i - from]);
        }
        outbox_batch_destroy(batch);
    }
}

typedef struct {
    outbox_t *ob;
    int from, to;
    put_t put;
} producer_t;

static void *produce(void *arg) {
    producer_t *p = arg;
    put_orders(p->ob, p->from, p->to, &p->put);
    return NULL;
}

/* The "id" field of the stream's last entry, or "" when it has none. */
static void last_event_id(const test_redis_t *r, const char *stream, char out[25]) {
    out[0] = '\0';
    redisContext *c = test_redis_try_connect(r);
    if (c == NULL) return;
    redisReply *reply = redisCommand(c, "XREVRANGE %s + - COUNT 1", stream);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
        size_t len;
        const char *id = test_redis_field(reply->element[0], "id", &len);
        if (id && len == 24) {
            memcpy(out, id, 24);
            out[24] = '\0';
        }
    }
    freeReplyObject(reply);
    redisFree(c);
}

/* Waits until the stream's last entry is event id (events come in order:
 * the last event is last once everything is in). */
static bool wait_for_last(const test_redis_t *r, const char *stream, const char *id,
                          int timeout_ms) {
    char last[25];
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        last_event_id(r, stream, last);
        if (strcmp(last, id) == 0) return true;
        sleep_ms(100);
    }
    return false;
}

/* Every event of put in the stream, in order of first appearance; returns
 * how many entries repeat an earlier one. */
static int check_complete(const test_redis_t *r, const char *stream, const put_t *put) {
    redisContext *c = test_redis_connect(r);
    size_t n;
    char(*got)[25] = test_redis_event_ids(c, stream, &n);
    size_t want = (size_t)(put->to - put->from + 1), next = 0;
    int dups = 0;
    for (size_t i = 0; i < n; i++) {
        if (next < want && strcmp(got[i], put->ids[next]) == 0) {
            next++;
            continue;
        }
        /* Not the next one: it must be one seen already. */
        bool seen = false;
        for (size_t j = next; j-- > 0 && !seen;) seen = strcmp(got[i], put->ids[j]) == 0;
        if (!seen)
            fail_msg("%s: entry %zu is event %s, expected %s (order broken or event missing)",
                     stream, i + 1, got[i], next < want ? put->ids[next] : "nothing more");
        dups++;
    }
    if (next != want)
        fail_msg("%s: events %zu..%zu of %zu missing", stream, next + 1, want, want);
    free(got);
    redisFree(c);
    return dups;
}

static void assert_log_says(const test_daemon_t *d, const char *text) {
    char *log = test_read_file(d->log);
    if (log == NULL || strstr(log, text) == NULL) fail_msg("the log does not say \"%s\":\n%s", text, log);
    free(log);
}

/* ----------------------------------------------------------------------------
 * 50,000 events, every field
 * ------------------------------------------------------------------------- */

typedef struct {
    char id[25];
    const char *type;
    char *key; /* NULL for a null key */
    char created[24];
    char *payload;
    char **header_fields; /* "h:<name>", value, ... */
    size_t n_header_fields;
} expected_t;

typedef struct {
    expected_t *events;
    size_t n, next;
    const char *type; /* the stream's type: entries match the events of it */
} matcher_t;

static void expected_free(expected_t *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].payload);
        for (size_t h = 0; h < e[i].n_header_fields; h++) free(e[i].header_fields[h]);
        free(e[i].header_fields);
    }
    free(e);
}

/* Reads the whole outbox back: what each entry must hold. The payload is
 * what outboxd sends with payload: json, relaxed Extended JSON of data. */
static expected_t *read_outbox(outbox_t *ob, size_t want, size_t *n) {
    outbox_error_t err;
    const outbox_event_t *ev;
    expected_t *e = calloc(want, sizeof *e);
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    assert_non_null(tail);
    *n = 0;
    while (*n < want && outbox_tail_next(tail, 5000, &ev, &err) == OUTBOX_OK) {
        expected_t *x = &e[(*n)++];
        bson_oid_to_string(outbox_event_id(ev), x->id);
        x->type = strcmp(outbox_event_type(ev), "order.shipped") == 0 ? "order.shipped" : "order.created";
        x->key = outbox_event_key(ev) ? strdup(outbox_event_key(ev)) : NULL;
        snprintf(x->created, sizeof x->created, "%lld", (long long)outbox_event_created_ms(ev));
        /* What outboxd sends: its own writer's JSON (docs/envelope.md). */
        x->payload = outboxd_ejson_encode(outbox_event_data(ev), NULL);
        const bson_t *headers = outbox_event_headers(ev);
        bson_iter_t it;
        if (headers && bson_iter_init(&it, headers)) {
            x->header_fields = calloc(2 * bson_count_keys(headers), sizeof *x->header_fields);
            while (bson_iter_next(&it)) {
                char field[128];
                snprintf(field, sizeof field, "h:%s", bson_iter_key(&it));
                x->header_fields[x->n_header_fields++] = strdup(field);
                x->header_fields[x->n_header_fields++] = strdup(bson_iter_utf8(&it, NULL));
            }
        }
    }
    outbox_tail_destroy(tail);
    return e;
}

/* Checks one entry against the next event of the stream's type: the
 * fields, their order and every value. */
static void match_entry(const redisReply *entry, void *arg) {
    matcher_t *m = arg;
    while (m->next < m->n && strcmp(m->events[m->next].type, m->type) != 0) m->next++;
    if (m->next == m->n) fail_msg("%s: more entries than events", m->type);
    const expected_t *x = &m->events[m->next++];
    const char *want[64];
    size_t n = 0;
    want[n++] = "id";
    want[n++] = x->id;
    want[n++] = "type";
    want[n++] = x->type;
    if (x->key) {
        want[n++] = "key";
        want[n++] = x->key;
    }
    want[n++] = "created";
    want[n++] = x->created;
    want[n++] = "payload";
    want[n++] = x->payload;
    for (size_t h = 0; h < x->n_header_fields; h++) want[n++] = x->header_fields[h];
    const redisReply *fields = entry->element[1];
    if (fields->elements != n)
        fail_msg("entry %s (event %s) has %zu fields and values, expected %zu", entry->element[0]->str,
                 x->id, fields->elements, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields->element[i]->str, want[i]) != 0)
            fail_msg("entry %s (event %s): element %zu is \"%s\", expected \"%s\"",
                     entry->element[0]->str, x->id, i, fields->element[i]->str, want[i]);
    }
}

static void fifty_thousand_events_in_order_with_every_field(void **state) {
    const int total = test_scaled(50000);
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_50k");
    test_redis_start(&r, NULL, NULL);
    char *dir = test_tmpdir("r50k");
    char sinks[1024];

    double t0 = now_s();
    put_orders(ob, 1, total, NULL);
    double put_s = now_s() - t0;

    /* Batches of 500, outboxd's largest. */
    snprintf(sinks, sizeof sinks,
             "  - name: big\n    plugin: redis\n    route: \"obx:{type}\"\n"
             "    options:\n      url: \"%s\"\n",
             r.url);
    char *config = write_config(dir, ob, 500, 1000, sinks);
    test_daemon_t d;
    t0 = now_s();
    daemon_start(&d, config, dir);
    long long created = 0, shipped = 0;
    for (int waited = 0; waited < 120000 && created + shipped < total; waited += 100) {
        created = test_redis_wait_len(&r, "obx:order.created", 0, 0);
        shipped = test_redis_wait_len(&r, "obx:order.shipped", 0, 0);
        if (created + shipped < total) sleep_ms(100);
    }
    double drain_s = now_s() - t0;
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(created, total - total / 10);
    assert_int_equal(shipped, total / 10);

    size_t n;
    expected_t *events = read_outbox(ob, (size_t)total, &n);
    assert_int_equal(n, (size_t)total);
    redisContext *c = test_redis_connect(&r);
    matcher_t m = {events, n, 0, "order.created"};
    assert_int_equal(test_redis_each_entry(c, "obx:order.created", match_entry, &m), (size_t)(total - total / 10));
    matcher_t m2 = {events, n, 0, "order.shipped"};
    assert_int_equal(test_redis_each_entry(c, "obx:order.shipped", match_entry, &m2), (size_t)(total / 10));
    redisFree(c);
    print_message("# %d events put at %.0f/s (batches of %d); outboxd drained them into Redis at "
                  "%.0f events/s (start to last entry, appendfsync always); all in order, every "
                  "field checked\n",
                  total, total / put_s, PUT_BATCH, total / drain_s);
    expected_free(events, n);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

/* ----------------------------------------------------------------------------
 * redis-server restarted mid-stream
 * ------------------------------------------------------------------------- */

static void redis_restart_mid_stream_loses_nothing(void **state) {
    const int total = test_scaled(10000);
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_restart");
    test_redis_start(&r, NULL, NULL);
    char *dir = test_tmpdir("rrestart");
    char sinks[1024];
    snprintf(sinks, sizeof sinks,
             "  - name: rs\n    plugin: redis\n    route: \"rs\"\n"
             "    options:\n      url: \"%s\"\n",
             r.url);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);

    /* The first half flows while Redis runs; the second half is put
     * while it is down, so outboxd has events to publish into the dead
     * server however fast it was before. */
    producer_t p = {.ob = ob, .from = 1, .to = total / 2};
    pthread_t producer;
    pthread_create(&producer, NULL, produce, &p);
    long long before = test_redis_wait_len(&r, "rs", total / 5, 60000);
    assert_true(before >= total / 5);
    test_redis_kill(&r, SIGKILL);
    pthread_join(producer, NULL);
    put_t rest;
    put_orders(ob, total / 2 + 1, total, &rest);
    p.put.ids = realloc(p.put.ids, (size_t)total * sizeof *p.put.ids);
    memcpy(p.put.ids + total / 2, rest.ids, (size_t)(total - total / 2) * sizeof *rest.ids);
    p.put.to = total;
    free(rest.ids);
    sleep_ms(1000); /* outboxd meets a refused connection a few times */
    test_redis_restart(&r);
    assert_true(wait_for_last(&r, "rs", p.put.ids[total - 1], 90000));
    /* Still running: SIGPIPE from a write to the dead connection did not
     * kill it. */
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    int dups = check_complete(&r, "rs", &p.put);
    assert_log_says(&d, "sink rs: publish: redis sink: ");
    assert_log_says(&d, "sink rs: reconnected to ");
    print_message("# redis-server killed (-9) after %lld of %d entries and started again: all "
                  "present in order, %d duplicates (replies lost with the connection)\n",
                  before, total, dups);
    free(p.put.ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

/* ----------------------------------------------------------------------------
 * outboxd killed mid-stream: dedupe against none
 * ------------------------------------------------------------------------- */

/* How many times the server ran EVALSHA and EVAL (INFO commandstats). */
static long long script_calls(const test_redis_t *r) {
    redisContext *c = test_redis_connect(r);
    redisReply *info = test_redis_cmd(c, "INFO commandstats");
    long long total = 0;
    const char *names[] = {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="};
    for (int i = 0; i < 2; i++) {
        const char *p = strstr(info->str, names[i]);
        if (p) total += atoll(p + strlen(names[i]));
    }
    freeReplyObject(info);
    redisFree(c);
    return total;
}

static void kill_9_of_outboxd_duplicates_nothing_with_recover_or_dedupe(void **state) {
    /* Not scaled down in the quick runs: with 1,000 events outboxd could
     * publish them all and checkpoint (idle) before the first kill landed,
     * and then no restart replayed anything (distcheck failed on "absorbed
     * > 0"); 10,000 take a few seconds per round. */
    const int total = 10000;
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_kill");
    test_redis_start(&r, NULL, NULL);
    char *dir = test_tmpdir("rkill");
    char sinks[2048];
    put_t put;
    put_orders(ob, 1, total, &put);

    /* Three sinks on one outboxd, so all meet the same kills: recover (the
     * default), dedupe alone, neither. A checkpoint every 2500 events (5
     * publish batches): a kill lands after events acked but not yet
     * checkpointed, which the restart publishes again unless it finds them. */
    snprintf(sinks, sizeof sinks,
             "  - name: dd\n    plugin: redis\n    route: \"dd\"\n    recover: false\n"
             "    options:\n      url: \"%s\"\n      dedupe: true\n"
             "  - name: rc\n    plugin: redis\n    route: \"rc\"\n"
             "    options:\n      url: \"%s\"\n"
             "  - name: nd\n    plugin: redis\n    route: \"nd\"\n    recover: false\n"
             "    options:\n      url: \"%s\"\n",
             r.url, r.url, r.url);
    char *config = write_config(dir, ob, 2500, 60000, sinks);
    test_daemon_t d;
    for (int round = 1; round <= 4; round++) {
        daemon_start(&d, config, dir);
        /* Kill it while it is (probably) mid-stream. */
        test_redis_wait_len(&r, "dd", (long long)total * round / 5, 60000);
        assert_int_equal(daemon_stop(&d, SIGKILL), 128 + SIGKILL);
    }
    daemon_start(&d, config, dir);
    assert_true(wait_for_last(&r, "dd", put.ids[total - 1], 90000));
    assert_true(wait_for_last(&r, "nd", put.ids[total - 1], 90000));
    assert_true(wait_for_last(&r, "rc", put.ids[total - 1], 90000));
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);

    int dd_dups = check_complete(&r, "dd", &put);
    int nd_dups = check_complete(&r, "nd", &put);
    int rc_dups = check_complete(&r, "rc", &put);
    /* Each script call added an entry or found a duplicate. */
    long long absorbed = script_calls(&r) - (total + dd_dups);
    print_message("# outboxd killed (-9) 4 times under load, %d events: with recover %d duplicate "
                  "entries; with dedupe alone %d (%lld replayed events found already added); with "
                  "neither %d duplicate entries\n",
                  total, rc_dups, dd_dups, absorbed, nd_dups);
    assert_int_equal(rc_dups, 0);
    assert_int_equal(dd_dups, 0);
    /* Replays did happen: dedupe was put to the test. */
    assert_true(absorbed > 0);
    assert_true(nd_dups > 0);
    free(put.ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

/* Exactly once across crashes (docs/recovery.md), without dedupe: ten
 * kills at random points while events are put, read back with XRANGE. */
static void kill_9_ten_times_publishes_each_event_once(void **state) {
    test_redis_t r = {0};
    test_redis_require();
    outbox_t *ob = test_outbox("r_once");
    test_redis_start(&r, NULL, NULL);
    char *dir = test_tmpdir("ronce");
    char sinks[1024];
    snprintf(sinks, sizeof sinks, "  - name: once\n    plugin: redis\n    route: \"once\"\n"
                                  "    options:\n      url: \"%s\"\n", r.url);
    char *config = test_daemon_config_ha(dir, ob, sinks, "  enabled: false\n");
    int total = test_scaled(20000) < 4000 ? 4000 : test_scaled(20000);
    test_crash_t t = {.ob = ob, .config = config, .dir = dir, .sink_dir = "sinks/redis", .sink = "once",
                      .total = total, .keys = 7, .kills = 10, .batch = 50, .pause_ms = 20};
    long recovered = test_crash_run(&t);
    redisContext *c = test_redis_connect(&r);
    redisReply *all = test_redis_cmd(c, "XRANGE once - +");
    int *got = calloc(all->elements + 1, sizeof *got);
    for (size_t i = 0; i < all->elements; i++) {
        size_t len;
        const char *payload = test_redis_field(all->element[i], "payload", &len);
        const char *p = payload ? strstr(payload, "\"ordernr\":") : NULL;
        if (!p)
            fail_msg("entry %zu of stream once has no payload with an ordernr", i + 1);
        got[i] = atoi(p + strlen("\"ordernr\":"));
    }
    char what[200];
    snprintf(what, sizeof what, "redis, kill -9 x10 (%ld events found at the destination by recovery)", recovered);
    test_crash_check(what, got, all->elements, total, 7);
    assert_true(recovered > 0);
    free(got);
    freeReplyObject(all);
    redisFree(c);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

/* ----------------------------------------------------------------------------
 * Mistakes: address, password, key type
 * ------------------------------------------------------------------------- */

static void wrong_address_retries_until_the_server_is_there(void **state) {
    test_redis_t r = {0};
    test_redis_require();
    r.port = test_redis_free_port(); /* nothing there yet */
    outbox_t *ob = test_outbox("r_addr");
    char *dir = test_tmpdir("raddr");
    char sinks[1024], says[200];
    put_t put;
    put_orders(ob, 1, 300, &put);
    snprintf(sinks, sizeof sinks,
             "  - name: wa\n    plugin: redis\n    route: \"wa\"\n"
             "    options:\n      url: \"redis://127.0.0.1:%d/0\"\n      connect_timeout_ms: 500\n",
             r.port);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    snprintf(says, sizeof says,
             "sink wa: open: redis sink: cannot connect to redis://127.0.0.1:%d/0: Connection "
             "refused (retrying in",
             r.port);
    test_daemon_wait_log(&d, says, 1);

    test_redis_start(&r, NULL, NULL);
    assert_true(wait_for_last(&r, "wa", put.ids[299], 60000));
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(&r, "wa", &put), 0);
    free(put.ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

static void wrong_password_stops_the_sink_and_says_why(void **state) {
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_pass");
    test_redis_start(&r, "requirepass Right-Pass-1", "Right-Pass-1");
    char *dir = test_tmpdir("rpass");
    char sinks[2048], pass_file[600], says[600], state_buf[32] = "";
    put_t put;
    snprintf(pass_file, sizeof pass_file, "%s/redis.pass", dir);
    FILE *f = fopen(pass_file, "w");
    fputs("Wrong-Pass-2\n", f);
    fclose(f);
    setenv("OUTBOX_TEST_REDIS_PASS", "Right-Pass-1", 1); /* outboxd inherits it */
    snprintf(sinks, sizeof sinks,
             "  - name: wp\n    plugin: redis\n    route: \"wp\"\n"
             "    options:\n      url: \"%s\"\n      password_file: \"%s\"\n"
             "  - name: ok\n    plugin: redis\n    route: \"ok\"\n"
             "    options:\n      url: \"%s\"\n      password_env: OUTBOX_TEST_REDIS_PASS\n",
             r.url, pass_file, r.url);
    char *config = test_daemon_config(dir, ob, sinks);
    put_orders(ob, 1, 50, &put);
    test_daemon_t d;
    daemon_start(&d, config, dir);
    for (int i = 0; i < 300 && strcmp(state_buf, "stopped") != 0; i++) {
        test_checkpoint(ob, "wp", NULL, state_buf, sizeof state_buf);
        sleep_ms(100);
    }
    assert_string_equal(state_buf, "stopped");
    assert_true(wait_for_last(&r, "ok", put.ids[49], 30000));
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    unsetenv("OUTBOX_TEST_REDIS_PASS");

    snprintf(says, sizeof says,
             "open failed: redis sink: %s refused the login as user default (password from "
             "option password or password_file): WRONGPASS",
             r.url);
    char *log = test_read_file(d.log);
    if (strstr(log, "sink wp: plugin redis") == NULL || strstr(log, says) == NULL ||
        strstr(log, "this sink stops, the others go on") == NULL)
        fail_msg("the log does not say why sink wp stopped:\n%s", log);
    if (strstr(log, "Pass-1") || strstr(log, "Pass-2")) fail_msg("the log shows a password:\n%s", log);
    free(log);
    redisContext *c = test_redis_connect(&r);
    assert_int_equal(test_redis_int(c, "EXISTS wp"), 0);
    redisFree(c);
    assert_int_equal(check_complete(&r, "ok", &put), 0);
    free(put.ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

static void drop_deadletter(outbox_t *ob) {
    char name[256];
    snprintf(name, sizeof name, "%s.deadletter", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, name);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
}

static void wrong_type_goes_to_on_error(void **state) {
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_type");
    test_redis_start(&r, NULL, NULL);
    char *dir = test_tmpdir("rtype");
    char sinks[2048], coll[256], state_buf[32] = "";
    outbox_error_t err;

    redisContext *c = test_redis_connect(&r);
    freeReplyObject(test_redis_cmd(c, "SET dl:bad a-string"));
    freeReplyObject(test_redis_cmd(c, "SET st:bad a-string"));
    snprintf(sinks, sizeof sinks,
             "  - name: dl\n    plugin: redis\n    route: \"dl:{key}\"\n    on_error: deadletter\n"
             "    options:\n      url: \"%s\"\n"
             "  - name: st\n    plugin: redis\n    route: \"st:{key}\"\n    on_error: stop\n"
             "    options:\n      url: \"%s\"\n",
             r.url, r.url);
    char *config = test_daemon_config(dir, ob, sinks);
    /* Every 4th event has key "bad": its stream is a string. */
    for (int i = 1; i <= 40; i++) {
        bson_t *data = BCON_NEW("ordernr", BCON_INT32(i), "total", BCON_DOUBLE(1.0));
        if (outbox_put(ob, NULL, "order.created", i % 4 == 0 ? "bad" : "good", data, NULL, NULL, &err) != OUTBOX_OK)
            fail_msg("put: %s", err.message);
        bson_destroy(data);
    }
    test_daemon_t d;
    daemon_start(&d, config, dir);
    snprintf(coll, sizeof coll, "%s.deadletter", outbox_name(ob));
    for (int i = 0; i < 300 && (test_count(coll) < 10 || strcmp(state_buf, "stopped") != 0); i++) {
        test_checkpoint(ob, "st", NULL, state_buf, sizeof state_buf);
        sleep_ms(100);
    }
    assert_int_equal(test_redis_wait_len(&r, "dl:good", 30, 30000), 30);
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);

    /* deadletter: the 10 bad ones, each with the sink and the error. */
    assert_int_equal(test_count(coll), 10);
    mongoc_client_t *client = test_client();
    mongoc_collection_t *dl = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(dl, &empty, NULL, NULL);
    const bson_t *doc;
    int seen = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, doc, "sink"));
        assert_string_equal(bson_iter_utf8(&it, NULL), "dl");
        assert_true(bson_iter_init_find(&it, doc, "error"));
        const char *error = bson_iter_utf8(&it, NULL);
        if (strstr(error, "redis sink: XADD to stream dl:bad: WRONGTYPE") == NULL)
            fail_msg("unexpected dead letter error: %s", error);
        assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "event.key", &it));
        assert_string_equal(bson_iter_utf8(&it, NULL), "bad");
        seen++;
    }
    assert_int_equal(seen, 10);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(dl);
    mongoc_client_destroy(client);
    bson_destroy(&empty);

    /* stop: the sink stopped at the first bad event, saying why. */
    assert_string_equal(state_buf, "stopped");
    char *log = test_read_file(d.log);
    if (!strstr(log, "sink st: event ") || !strstr(log, "WRONGTYPE") ||
        !strstr(log, "this sink stops, the others go on"))
        fail_msg("the log does not say why sink st stopped:\n%s", log);
    free(log);
    assert_int_equal(test_redis_int(c, "XLEN dl:good"), 30);
    /* The events before the bad one are in; being pipelined, those after
     * it in the same batch may be too. */
    assert_true(test_redis_int(c, "XLEN st:good") >= 3);
    redisFree(c);
    free(config);
    test_rmtree(dir);
    free(dir);
    drop_deadletter(ob);
    test_outbox_drop(ob);
    test_redis_stop(&r);
}

/* ----------------------------------------------------------------------------
 * outboxd --check, and secrets
 * ------------------------------------------------------------------------- */

/* Runs `outboxd --check` on config with the build's Redis plugin; returns
 * its exit status, everything it printed in *out. */
static int run_check(const char *config, char **out) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/sinks/redis' 2>&1",
             b ? b : ".", config, b ? b : ".");
    return test_run_command(cmd, out);
}

/* A url the sink cannot use is refused by `outboxd --check` at its line,
 * with no Redis and no MongoDB anywhere (the config names ports nothing
 * listens on): the plugin's check parses it offline. Before sink ABI 1.1
 * --check passed such a config, and the sink stopped at its first open. */
static void check_refuses_a_bad_url_at_its_line_without_a_server(void **state) {
    static const struct {
        const char *url, *says;
    } cases[] = {
        {"redis://127.0.0.1:1/zero",
         "outboxd.yaml:11:7: sink rs: url: \"redis://127.0.0.1:1/zero\": the database (after the /) is not a number (plugin redis)"},
        {"http://127.0.0.1:1/0", "outboxd.yaml:11:7: sink rs: url: \"http://127.0.0.1:1/0\" is not redis://"},
        {"redis://app:Url/S3cret@127.0.0.1:1/0", "outboxd.yaml:11:7: sink rs: url: a password in the url is not accepted"},
        {"unix://redis.sock", "outboxd.yaml:11:7: sink rs: url: \"unix://redis.sock\": unix:// needs an absolute socket path"},
    };
    char *dir = test_tmpdir("rcheck");
    char path[600], *out;
    snprintf(path, sizeof path, "%s/outboxd.yaml", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f,
                "mongodb:\n  uri: \"mongodb://127.0.0.1:1/\"\n  database: d\noutbox: o\nsinks:\n"
                "  - name: rs\n    plugin: redis\n    route: \"s\"\n    options:\n"
                "      pipeline: 10\n      url: \"%s\"\n",
                cases[i].url);
        fclose(f);
        int status = run_check(path, &out);
        print_message("# %s -> %d: %s", cases[i].url, status, out);
        if (status != 2 || strstr(out, cases[i].says) == NULL)
            fail_msg("outboxd --check on url %s exited %d, expected 2 saying \"%s\":\n%s",
                     cases[i].url, status, cases[i].says, out);
        assert_null(strstr(out, "S3cret"));
        free(out);
    }
    test_rmtree(dir);
    free(dir);
}

/* Appends what a program printed to all, under a label. */
static void collect(char **all, const char *label, const char *text) {
    size_t have = *all ? strlen(*all) : 0, add = strlen(label) + strlen(text ? text : "") + 8;
    *all = realloc(*all, have + add);
    snprintf(*all + have, add, "== %s\n%s\n", label, text ? text : "");
}

/* password_file, as the README documented it since the sink's first
 * release, now read by outboxd for the SECRET option password (relative
 * to the config file's folder, like every {file:}): the right one logs in
 * and delivers, a wrong one stops its sink. Neither password is in
 * anything outboxd --check, outboxd's log or outboxctl status (text and
 * --json) print. The harness's shared Redis has no password, so this
 * runs a redis-server of its own with requirepass. */
static void password_file_logs_in_and_is_printed_nowhere(void **state) {
#define RIGHT_PW "Rd/File@S3cret-right"
#define WRONG_PW "Rd:File/S3cret-wrong"
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
    outbox_t *ob = test_outbox("r_pwfile");
    test_redis_start(&r, "requirepass " RIGHT_PW, RIGHT_PW);
    char *dir = test_tmpdir("rpwfile");
    char sinks[2048], file[700], cmd[2048], state_buf[32] = "", *out = NULL, *all = NULL;
    put_t put;

    snprintf(file, sizeof file, "%s/redis.pass", dir);
    FILE *f = fopen(file, "w");
    fputs(RIGHT_PW "\n", f);
    fclose(f);
    snprintf(file, sizeof file, "%s/wrong.pass", dir);
    f = fopen(file, "w");
    fputs(WRONG_PW "\n", f);
    fclose(f);
    snprintf(sinks, sizeof sinks,
             "  - name: pf\n    plugin: redis\n    route: \"pf\"\n"
             "    options:\n      url: \"%s\"\n      password_file: redis.pass\n"
             "  - name: wp\n    plugin: redis\n    route: \"wp\"\n"
             "    options:\n      url: \"%s\"\n      password_file: wrong.pass\n",
             r.url, r.url);
    char *config = test_daemon_config(dir, ob, sinks);
    put_orders(ob, 1, 50, &put);

    assert_int_equal(run_check(config, &out), 0);
    collect(&all, "outboxd --check", out);
    free(out);

    test_daemon_t d;
    daemon_start(&d, config, dir);
    assert_true(wait_for_last(&r, "pf", put.ids[49], 30000));
    for (int i = 0; i < 300 && strcmp(state_buf, "stopped") != 0; i++) {
        test_checkpoint(ob, "wp", NULL, state_buf, sizeof state_buf);
        sleep_ms(100);
    }
    assert_string_equal(state_buf, "stopped");
    assert_int_equal(daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(check_complete(&r, "pf", &put), 0);
    out = test_read_file(d.log);
    collect(&all, "outboxd", out);
    free(out);

    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status 2>&1",
             b ? b : ".", test_mongodb_uri(), TEST_DB, outbox_name(ob));
    test_run_command(cmd, &out);
    collect(&all, "outboxctl status", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status --json 2>&1",
             b ? b : ".", test_mongodb_uri(), TEST_DB, outbox_name(ob));
    test_run_command(cmd, &out);
    collect(&all, "outboxctl status --json", out);
    free(out);

    /* The wrong password's refusal was printed, without the password. */
    if (strstr(all, "refused the login as user default") == NULL)
        fail_msg("nothing says why sink wp stopped:\n%s", all);
    if (strstr(all, "S3cret") != NULL) fail_msg("a password was printed:\n%s", all);
    free(all);
    free(put.ids);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
    test_redis_stop(&r);
#undef RIGHT_PW
#undef WRONG_PW
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(fifty_thousand_events_in_order_with_every_field, teardown),
        cmocka_unit_test_teardown(redis_restart_mid_stream_loses_nothing, teardown),
        cmocka_unit_test_teardown(kill_9_of_outboxd_duplicates_nothing_with_recover_or_dedupe, teardown),
        cmocka_unit_test_teardown(kill_9_ten_times_publishes_each_event_once, teardown),
        cmocka_unit_test_teardown(wrong_address_retries_until_the_server_is_there, teardown),
        cmocka_unit_test_teardown(wrong_password_stops_the_sink_and_says_why, teardown),
        cmocka_unit_test_teardown(wrong_type_goes_to_on_error, teardown),
        cmocka_unit_test_teardown(check_refuses_a_bad_url_at_its_line_without_a_server, teardown),
        cmocka_unit_test_teardown(password_file_logs_in_and_is_printed_nowhere, teardown),
    };
    /* REDIS_TEST_ONLY=pattern runs only the matching tests (cmocka's
     * filter), when working on one. */
    if (getenv("REDIS_TEST_ONLY")) cmocka_set_test_filter(getenv("REDIS_TEST_ONLY"));
    return TEST_RUN("redis sink with outboxd", tests);
}
