/*
 * crashlib.c - see crashlib.h.
 */
#include "crashlib.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const test_crash_t *t;
    bson_oid_t last;
    char error[600]; /* a put that failed: the test fails on the main thread */
} producer_t;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Puts every event, t->batch to a put, pausing t->pause_ms between puts.
 * On this thread cmocka could not fail, so a failed put is kept for the
 * main thread. */
static void *produce(void *arg) {
    producer_t *p = arg;
    const test_crash_t *t = p->t;
    int per = t->batch > 0 ? t->batch : 1;
    for (int first = 1; first <= t->total; first += per) {
        outbox_error_t err;
        outbox_batch_t *b = outbox_batch_new(t->ob);
        int last = first + per - 1 < t->total ? first + per - 1 : t->total;
        for (int i = first; i <= last; i++) {
            char key[32];
            snprintf(key, sizeof key, "k%d", i % t->keys);
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(i), "total", BCON_DOUBLE(10.5));
            outbox_code_t rc = outbox_batch_add(b, "order.created", key, data, NULL, &err);
            bson_destroy(data);
            if (rc != OUTBOX_OK) {
                snprintf(p->error, sizeof p->error, "event %d: %s", i, err.message);
                outbox_batch_destroy(b);
                return NULL;
            }
        }
        if (outbox_batch_put(b, NULL, &err) != OUTBOX_OK) {
            snprintf(p->error, sizeof p->error, "put of events %d..%d: %s", first, last, err.message);
            outbox_batch_destroy(b);
            return NULL;
        }
        bson_oid_copy(outbox_batch_id(b, (size_t)(last - first)), &p->last);
        outbox_batch_destroy(b);
        if (t->pause_ms > 0)
            sleep_ms(t->pause_ms);
    }
    return NULL;
}

/* Starts run number k with a log of its own, dir/outboxd-K.log. */
static void start(const test_crash_t *t, test_daemon_t *d, int k) {
    char log[600];
    snprintf(log, sizeof log, "%s/outboxd-%d.log", t->dir, k);
    test_daemon_start_log(d, t->config, t->sink_dir, log);
}

/* The events the runs' recoveries found at the destination ("recovered: N
 * of the M events in doubt"), summed over every log. */
static long recovered_in_logs(const test_crash_t *t, int runs) {
    long sum = 0;
    for (int k = 0; k < runs; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/outboxd-%d.log", t->dir, k);
        char *log = test_read_file(path);
        for (const char *q = log; q && (q = strstr(q, "recovered: ")) != NULL; q++)
            sum += strtol(q + strlen("recovered: "), NULL, 10);
        free(log);
    }
    return sum;
}

/* The tests' configs write a checkpoint every 100 events or 200 ms
 * (daemonlib.c): then a kill often finds nothing published past the last
 * write, and a run under valgrind, whose producer is slow, recovered
 * nothing in ten kills. Every 2000 events or 5 s leaves events in doubt at
 * nearly every kill, within the bound (2048 + 2 x 2000). */
static void sparse_checkpoints(const char *config) {
    char *text = test_read_file(config);
    const char *from = "  every_events: 100\n  every_ms: 200\n";
    char *at = text ? strstr(text, from) : NULL;
    if (!at)
        fail_msg("%s: no checkpoint section of daemonlib's form", config);
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f, "%.*s  every_events: 2000\n  every_ms: 5000\n%s", (int)(at - text), text, at + strlen(from));
    fclose(f);
    free(text);
}

long test_crash_run(const test_crash_t *t) {
    producer_t p = {.t = t};
    sparse_checkpoints(t->config);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, produce, &p), 0);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int k = 0; k < t->kills; k++) {
        test_daemon_t d;
        start(t, &d, k);
        /* A random point: somewhere in the first second after the sink
         * opened (every other kill: while it may still read back what the
         * destination holds), or after it recovered (while it publishes). */
        char mark[200];
        snprintf(mark, sizeof mark, k % 2 ? "sink %s: recovered: " : "sink %s: opened", t->sink);
        test_daemon_wait_log(&d, mark, 1);
        sleep_ms(100 + (int)(rand_r(&seed) % 900));
        assert_int_equal(test_daemon_stop(&d, SIGKILL), 128 + SIGKILL);
        if (t->down_ms > 0)
            sleep_ms(t->down_ms);
        if (t->between)
            t->between(t->ctx, k);
    }
    pthread_join(thread, NULL);
    if (p.error[0])
        fail_msg("%s", p.error);
    test_daemon_t d;
    start(t, &d, t->kills);
    bool done = false;
    for (int i = 0; i < 1800 && !done; i++) {
        bson_oid_t cp;
        done = test_checkpoint(t->ob, t->sink, &cp, NULL, 0) && bson_oid_equal(&cp, &p.last);
        if (!done)
            sleep_ms(100);
    }
    int status = test_daemon_stop(&d, SIGTERM);
    if (!done) {
        char *log = test_read_file(d.log);
        fail_msg("sink %s did not reach the last event within 180 s; log:\n%s", t->sink, log ? log : "(none)");
    }
    assert_int_equal(status, 0);
    return recovered_in_logs(t, t->kills + 1);
}

static void check(const char *what, const int *ordernrs, size_t n, int total, int keys, bool in_order) {
    int *seen_at = calloc((size_t)total + 1, sizeof *seen_at);
    int *last_of_key = calloc((size_t)keys, sizeof *last_of_key);
    assert_non_null(seen_at);
    assert_non_null(last_of_key);
    for (size_t i = 0; i < n; i++) {
        int v = ordernrs[i];
        if (v < 1 || v > total)
            fail_msg("%s: message %zu has ordernr %d, not one of 1..%d", what, i + 1, v, total);
        if (seen_at[v])
            fail_msg("%s: event %d is there twice (messages %d and %zu)", what, v, seen_at[v], i + 1);
        seen_at[v] = (int)i + 1;
        int key = v % keys;
        if (in_order && last_of_key[key] > v)
            fail_msg("%s: key k%d has event %d after event %d", what, key, v, last_of_key[key]);
        last_of_key[key] = v;
    }
    for (int v = 1; v <= total; v++)
        if (!seen_at[v])
            fail_msg("%s: event %d is missing (%zu messages for %d events)", what, v, n, total);
    print_message("# %s: all %d events exactly once%s\n", what, total, in_order ? ", in order per key" : "");
    free(seen_at);
    free(last_of_key);
}

void test_crash_check(const char *what, const int *ordernrs, size_t n, int total, int keys) {
    check(what, ordernrs, n, total, keys, true);
}

void test_crash_check_once(const char *what, const int *ordernrs, size_t n, int total) {
    check(what, ordernrs, n, total, 1, false);
}
