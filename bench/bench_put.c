/*
 * bench_put - puts order events into an outbox through liboutbox, the way
 * a service would.
 *
 *   bench_put --uri U --db D --outbox O --events N [--batch 1000]
 *             [--capped-size BYTES]
 *       A backlog: N events in batches (outbox_batch_put), as fast as the
 *       server takes them. Prints
 *       RESULT events=N seconds=S rate=R bytes=B last_id=HEX
 *       (B: the BSON size of one stored envelope, for the report).
 *
 *   bench_put ... --rate R --seconds S [--threads T]
 *       A steady load: R events/s in all for S seconds, one outbox_put per
 *       event (a service puts its events one at a time), from T threads
 *       (default 2) each on its own schedule. put_ns is taken just before
 *       the put, so latency measured from it includes the put itself.
 *       Prints RESULT events=N seconds=S rate=R behind_max_ms=L (L: how far
 *       the producers fell behind their schedule at worst).
 *
 *   bench_put ... --ensure-only
 *       Only creates the outbox (for readers that start before the producer).
 *
 * The outbox is created (ensure) with the bench schema when missing.
 */
#include "bench.h"
#include "outbox/outbox.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    outbox_t *ob;
    double rate;        /* this thread's events/s */
    int64_t start_ns, end_ns;
    uint64_t first, stride; /* this thread puts events first, first+stride, ... */
    uint64_t put;
    int64_t behind_max_ns;
    char error[512];
} producer_t;

static outbox_t *open_outbox(int argc, char **argv) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    const char *size = bench_arg(argc, argv, "--capped-size", "134217728");
    if (outbox_conf_set(conf, "uri", bench_arg(argc, argv, "--uri", "mongodb://127.0.0.1:37017/"), &err) ||
        outbox_conf_set(conf, "database", bench_arg(argc, argv, "--db", "outbox_bench"), &err) ||
        outbox_conf_set(conf, "outbox", bench_arg(argc, argv, "--outbox", "bench"), &err) ||
        outbox_conf_set(conf, "capped.size", size, &err) ||
        outbox_conf_add_type(conf, BENCH_TYPE, BENCH_SCHEMA, &err))
        bench_die("%s", err.message);
    outbox_t *ob = outbox_new(conf, &err);
    if (!ob)
        bench_die("%s", err.message);
    if (outbox_ensure(ob, &err) != OUTBOX_OK)
        bench_die("%s", err.message);
    return ob;
}

static int backlog(outbox_t *ob, uint64_t n, size_t batch_size) {
    outbox_error_t err;
    char key[32], last[25] = "";
    uint32_t bytes = 0;
    int64_t t0 = bench_mono_ns();
    for (uint64_t i = 0; i < n;) {
        outbox_batch_t *b = outbox_batch_new(ob);
        for (size_t k = 0; k < batch_size && i < n; k++, i++) {
            bson_t data = BSON_INITIALIZER;
            bench_order_data(&data, i, bench_now_ns());
            bench_order_key(key, sizeof key, i);
            outbox_code_t rc = outbox_batch_add(b, BENCH_TYPE, key, &data, NULL, &err);
            bson_destroy(&data);
            if (rc != OUTBOX_OK)
                bench_die("%s", err.message);
        }
        if (outbox_batch_put(b, NULL, &err) != OUTBOX_OK)
            bench_die("%s", err.message);
        bson_oid_to_string(outbox_batch_id(b, outbox_batch_count(b) - 1), last);
        outbox_batch_destroy(b);
    }
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    {
        /* The stored size of one envelope, as the server returns it. */
        outbox_tail_t *t = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
        const outbox_event_t *ev;
        if (t && outbox_tail_next(t, 1000, &ev, &err) == OUTBOX_OK)
            bytes = outbox_event_document(ev)->len;
        outbox_tail_destroy(t);
    }
    printf("RESULT events=%llu seconds=%.6f rate=%.1f bytes=%u last_id=%s\n", (unsigned long long)n, s,
           (double)n / s, (unsigned)bytes, last);
    return 0;
}

static void sleep_until(int64_t mono_ns) {
    struct timespec ts = {mono_ns / 1000000000, mono_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static void *produce(void *arg) {
    producer_t *p = arg;
    outbox_error_t err;
    char key[32];
    /* Event k of this thread is due at start + k / rate. */
    for (uint64_t k = 0;; k++) {
        int64_t due = p->start_ns + (int64_t)((double)k * 1e9 / p->rate);
        if (due >= p->end_ns)
            break;
        int64_t now = bench_mono_ns();
        if (now < due)
            sleep_until(due);
        else if (now - due > p->behind_max_ns)
            p->behind_max_ns = now - due;
        uint64_t i = p->first + k * p->stride;
        bson_t data = BSON_INITIALIZER;
        bench_order_data(&data, i, bench_now_ns());
        bench_order_key(key, sizeof key, i);
        outbox_code_t rc = outbox_put(p->ob, NULL, BENCH_TYPE, key, &data, NULL, NULL, &err);
        bson_destroy(&data);
        if (rc != OUTBOX_OK) {
            snprintf(p->error, sizeof p->error, "%s", err.message);
            break;
        }
        p->put++;
    }
    return NULL;
}

static int steady(outbox_t *ob, double rate, double seconds, int threads) {
    producer_t *p = calloc((size_t)threads, sizeof *p);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    int64_t start = bench_mono_ns() + 10000000; /* all threads on one schedule */
    for (int t = 0; t < threads; t++) {
        p[t].ob = ob;
        p[t].rate = rate / threads;
        /* Staggered, so that the threads' puts interleave evenly. */
        p[t].start_ns = start + (int64_t)(1e9 / rate * t);
        p[t].end_ns = start + (int64_t)(seconds * 1e9);
        p[t].first = (uint64_t)t;
        p[t].stride = (uint64_t)threads;
        if (pthread_create(&tid[t], NULL, produce, &p[t]) != 0)
            bench_die("cannot start a producer thread");
    }
    uint64_t put = 0;
    int64_t behind = 0;
    const char *error = NULL;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        put += p[t].put;
        if (p[t].behind_max_ns > behind)
            behind = p[t].behind_max_ns;
        if (p[t].error[0])
            error = p[t].error;
    }
    double s = (double)(bench_mono_ns() - start) / 1e9;
    if (error)
        fprintf(stderr, "bench_put: %s\n", error);
    else
        printf("RESULT events=%llu seconds=%.6f rate=%.1f behind_max_ms=%.3f\n", (unsigned long long)put, s,
               (double)put / s, (double)behind / 1e6);
    free(p);
    free(tid);
    return error ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || bench_flag(argc, argv, "--help")) {
        fprintf(stderr, "usage: bench_put --uri U --db D --outbox O (--events N [--batch B] | --rate R "
                        "--seconds S [--threads T] | --ensure-only) [--capped-size BYTES]\n");
        return 2;
    }
    mongoc_init();
    outbox_t *ob = open_outbox(argc, argv);
    int rc;
    if (bench_flag(argc, argv, "--ensure-only")) {
        printf("RESULT ok=1\n");
        rc = 0;
    } else if (bench_arg(argc, argv, "--rate", NULL)) {
        double rate = (double)bench_arg_ll(argc, argv, "--rate", 1000);
        double seconds = (double)bench_arg_ll(argc, argv, "--seconds", 60);
        int threads = (int)bench_arg_ll(argc, argv, "--threads", 2);
        if (rate <= 0 || seconds <= 0 || threads < 1)
            bench_die("--rate, --seconds and --threads must be positive");
        rc = steady(ob, rate, seconds, threads);
    } else {
        long long n = bench_arg_ll(argc, argv, "--events", 0);
        long long batch = bench_arg_ll(argc, argv, "--batch", 1000);
        if (n <= 0 || batch <= 0)
            bench_die("--events and --batch must be positive");
        rc = backlog(ob, (uint64_t)n, (size_t)batch);
    }
    outbox_destroy(ob);
    mongoc_cleanup();
    return rc;
}
