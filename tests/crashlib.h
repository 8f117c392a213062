/*
 * crashlib.h - exactly-once across crashes, the same way for every sink
 * (docs/recovery.md): outboxd is killed with SIGKILL at random points while
 * a producer puts events, restarted each time, and finally left to drain;
 * the test then reads back what its destination holds, with a consumer of
 * the destination's own kind, and checks it with test_crash_check.
 *
 * The config's checkpoint section (daemonlib's) is made sparser, every
 * 2000 events or 5 s, so that most kills leave events in doubt.
 *
 * The kills land within a second after the sink opened (every other one,
 * so some land while it recovers) or after it recovered: the plugin must
 * have recover and the sink's recover be on.
 *
 * The events are order.created with data.ordernr 1..total and key
 * "k<ordernr % keys>", put in batches on a thread of the harness.
 */
#ifndef OUTBOX_TEST_CRASHLIB_H
#define OUTBOX_TEST_CRASHLIB_H

#include "daemonlib.h"

typedef struct {
    outbox_t *ob;             /* the outbox the config names */
    const char *config;       /* outboxd's config (test_daemon_config) */
    const char *dir;          /* its folder: the log goes there */
    const char *sink_dir;     /* the plugin's folder in the build tree ("sinks/redis") */
    const char *sink;         /* the sink's name, whose checkpoint says when it is done */
    int total, keys;          /* events, and keys they cycle through */
    int kills;                /* SIGKILLs */
    int down_ms;              /* how long outboxd stays down after each kill */
    int batch, pause_ms;      /* the producer's pace: events per put, and a pause
                               * after each put */
    /* Before each restart after a kill (may be NULL): a test changes the
     * destination there (a topic's partitions grow). */
    void (*between)(void *ctx, int kill);
    void *ctx;
} test_crash_t;

/* Runs the kills and the final drain; returns once the sink's checkpoint
 * is the last event put and outboxd stopped with SIGTERM (exit 0). Each
 * run logs into dir/outboxd-K.log. Returns how many events the runs'
 * recoveries found at the destination already (their "recovered: N"
 * lines): a test asserts that some were, or its kills proved nothing. */
long test_crash_run(const test_crash_t *t);

/* Checks what the destination holds, ordernrs in destination order (a
 * Kafka topic's partitions one after another): every event 1..total
 * exactly once, and each key's events in ordernr order. Fails the test
 * naming the first duplicate, missing event or reordering; prints a
 * one-line summary with what. */
void test_crash_check(const char *what, const int *ordernrs, size_t n, int total, int keys);
/* The same without the order: a topic whose partitions grew sends a key's
 * later events to another partition, and partitions have no order between
 * them. */
void test_crash_check_once(const char *what, const int *ordernrs, size_t n, int total);

#endif
