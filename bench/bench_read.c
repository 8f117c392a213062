/*
 * bench_read - a plain libmongoc tailable + awaitData cursor on the outbox,
 * with none of liboutbox or outboxd: the baselines that outboxd's reading
 * is measured against.
 *
 *   bench_read --uri U --db D --outbox O --events N
 *       The read ceiling: reads the log from its start in natural order
 *       until N events have come, and prints
 *       RESULT events=N seconds=S rate=R
 *
 *   bench_read ... --latency --events N [--timeout-s S] [--warmup K]
 *       The latency baseline: once it has read what the log already holds
 *       it prints READY, then for each new event records now - data.put_ns
 *       (the put-to-readable latency of a raw tailable cursor) until N
 *       events (after K more, read but not measured) or the timeout, and prints
 *       RESULT received=K count=K p50_ms=.. p99_ms=.. max_ms=..
 *
 * The cursor options are the ones liboutbox's tail uses (tailable,
 * awaitData, maxAwaitTimeMS, batchSize 1000 as OUTBOX_DEFAULT_BATCH_SIZE),
 * so that the two differ only in what liboutbox and outboxd add.
 */
#include "bench.h"

#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mongoc_cursor_t *open_cursor(mongoc_collection_t *coll, int64_t await_ms) {
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("tailable", BCON_BOOL(true), "awaitData", BCON_BOOL(true), "maxAwaitTimeMS",
                            BCON_INT64(await_ms), "batchSize", BCON_INT32(1000));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    bson_destroy(opts);
    bson_destroy(&filter);
    return cur;
}

static int64_t put_ns_of(const bson_t *doc) {
    bson_iter_t it;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "data.put_ns", &it) &&
        BSON_ITER_HOLDS_INT64(&it))
        return bson_iter_int64(&it);
    return -1;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Reads the log from its start. Events already read are skipped after a
 * cursor has to be reopened (a tailable cursor on an empty capped
 * collection dies at once), so the count never includes an event twice. */
static int run(mongoc_collection_t *coll, uint64_t n, bool latency, uint64_t warmup, int64_t timeout_ns) {
    bson_error_t err;
    const bson_t *doc;
    uint64_t seen = 0, received = 0;
    bench_samples_t samples = {.skip = warmup};
    n += warmup; /* read, not measured */
    bool ready = !latency;
    int64_t t0 = bench_mono_ns(), deadline = t0 + timeout_ns;

    while (received < n && bench_mono_ns() < deadline) {
        mongoc_cursor_t *cur = open_cursor(coll, 100);
        uint64_t skip = seen;
        while (received < n && bench_mono_ns() < deadline) {
            if (mongoc_cursor_next(cur, &doc)) {
                if (skip > 0) {
                    skip--;
                    continue;
                }
                seen++;
                if (!ready)
                    continue; /* the log's past: not part of the measurement */
                if (latency) {
                    int64_t put = put_ns_of(doc);
                    if (put < 0)
                        bench_die("an event without data.put_ns: not the bench's events");
                    bench_samples_add(&samples, bench_now_ns() - put);
                }
                received++;
                continue;
            }
            if (mongoc_cursor_error(cur, &err))
                bench_die("reading %s: %s", mongoc_collection_get_name(coll), err.message);
            if (!ready && skip == 0) {
                /* Caught up with the log's past: from here on, new events. */
                ready = true;
                printf("READY\n");
                fflush(stdout);
            }
            if (!mongoc_cursor_more(cur))
                break; /* dead cursor (empty collection): reopen */
        }
        mongoc_cursor_destroy(cur);
        if (received < n)
            nap_ms(10);
    }
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    if (latency) {
        printf("RESULT received=%zu", samples.n);
        bench_samples_print(&samples, stdout);
        printf("\n");
    } else if (received < n) {
        bench_die("timed out after %llu of %llu events", (unsigned long long)received, (unsigned long long)n);
    } else {
        printf("RESULT events=%llu seconds=%.6f rate=%.1f\n", (unsigned long long)n, s, (double)n / s);
    }
    bench_samples_free(&samples);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || bench_flag(argc, argv, "--help")) {
        fprintf(stderr, "usage: bench_read --uri U --db D --outbox O --events N [--latency] [--timeout-s S]\n");
        return 2;
    }
    long long n = bench_arg_ll(argc, argv, "--events", 0);
    long long timeout_s = bench_arg_ll(argc, argv, "--timeout-s", 3600);
    if (n <= 0)
        bench_die("--events must be positive");
    mongoc_init();
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(bench_arg(argc, argv, "--uri", "mongodb://127.0.0.1:37017/"), &err);
    if (!uri)
        bench_die("--uri: %s", err.message);
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, bench_arg(argc, argv, "--db", "outbox_bench"),
                                                             bench_arg(argc, argv, "--outbox", "bench"));
    long long warmup = bench_arg_ll(argc, argv, "--warmup", 0);
    int rc = run(coll, (uint64_t)n, bench_flag(argc, argv, "--latency"), (uint64_t)(warmup > 0 ? warmup : 0),
                 timeout_s * 1000000000LL);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
