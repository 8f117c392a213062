/*
 * brokenplugin.c - one source, built into small plugins for
 * outbox-sink-conformance's own tests (conformance/test_conformance.sh)
 * and for tests/test_sinkhost.c. VARIANT_* picks one; each but "async"
 * breaks exactly one rule of sink.h, so a test can show that the tool
 * names that rule:
 *
 *   async            correct: acks from a thread of its own, takes at most
 *                    CAPACITY events at a time (publish_some, OK with a
 *                    short *taken when full), flush waits for its acks;
 *                    accepts JSON payloads only
 *   double_ack       acks every event twice
 *   missing_ack      never acks every third event
 *   ack_after_close  close leaves its unacked events behind, and the next
 *                    open (of any instance) acks them through the closed
 *                    instance's host
 *   flush_early      acks only from poll, and flush returns OK at once
 *   recover_all      its recover says every event is at the destination,
 *                    those never published too
 *
 * The plugins that ack from their thread stop and join it in close, so
 * nothing of theirs runs after close (sink.h: the module may be unmapped).
 */
#include "outbox/sink.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPACITY 64 /* events in flight at most */

typedef struct {
    const outbox_sink_host_t *host;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t queue[CAPACITY]; /* taken, not acked yet */
    size_t n_queued;
    size_t n_seen;            /* events taken so far (missing_ack counts them) */
    bool stopping;
    bool threaded;
    pthread_t worker;
} inst_t;

#if defined(VARIANT_ACK_AFTER_CLOSE)
/* What a closed instance left behind. */
static pthread_mutex_t leftover_lock = PTHREAD_MUTEX_INITIALIZER;
static const outbox_sink_host_t *leftover_host;
static uint64_t leftover[CAPACITY];
static size_t n_leftover;
#endif

/* Acks what is queued; with the lock held, released around each ack as
 * sink.h allows either way (plugin lock, then host lock). */
static void ack_queued(inst_t *s) {
    while (s->n_queued > 0) {
        uint64_t seq = s->queue[0];
        memmove(s->queue, s->queue + 1, --s->n_queued * sizeof *s->queue);
        s->host->ack(s->host->ctx, seq, OUTBOX_SINK_OK, NULL);
#if defined(VARIANT_DOUBLE_ACK)
        s->host->ack(s->host->ctx, seq, OUTBOX_SINK_OK, NULL);
#endif
    }
    pthread_cond_broadcast(&s->changed);
}

__attribute__((unused)) static void *worker(void *arg) {
    inst_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (s->n_queued > 0)
            ack_queued(s);
        else
            pthread_cond_wait(&s->changed, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static int b_open(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size) {
    (void)errbuf, (void)errbuf_size;
#if defined(VARIANT_ACK_AFTER_CLOSE)
    pthread_mutex_lock(&leftover_lock);
    for (size_t i = 0; i < n_leftover; i++)
        leftover_host->ack(leftover_host->ctx, leftover[i], OUTBOX_SINK_OK, NULL);
    n_leftover = 0;
    pthread_mutex_unlock(&leftover_lock);
#endif
    inst_t *s = calloc(1, sizeof *s);
    if (!s)
        return OUTBOX_SINK_FATAL;
    s->host = host;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
#if !defined(VARIANT_ACK_AFTER_CLOSE) && !defined(VARIANT_FLUSH_EARLY)
    s->threaded = pthread_create(&s->worker, NULL, worker, s) == 0;
    if (!s->threaded) {
        snprintf(errbuf, errbuf_size, "cannot start a thread");
        free(s);
        return OUTBOX_SINK_RETRY;
    }
#endif
    *state = s;
    return OUTBOX_SINK_OK;
}

/* Takes events until CAPACITY are in flight; returns how many. */
static size_t take(inst_t *s, const outbox_sink_event_t *events, size_t n) {
    size_t k = 0;
    pthread_mutex_lock(&s->lock);
    for (; k < n && s->n_queued < CAPACITY; k++) {
        s->n_seen++;
#if defined(VARIANT_MISSING_ACK)
        if (s->n_seen % 3 == 0)
            continue; /* forgotten: never acked */
#endif
        s->queue[s->n_queued++] = events[k].seq;
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return k;
}

__attribute__((unused)) static int b_publish_some(void *state, const outbox_sink_event_t *events, size_t n, size_t *taken,
                          char *errbuf, size_t errbuf_size) {
    (void)errbuf, (void)errbuf_size;
    *taken = take(state, events, n);
    return OUTBOX_SINK_OK;
}

/* The 1.0 way: all or nothing; full is RETRY, acking nothing of it. */
static int b_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                     size_t errbuf_size) {
    inst_t *s = state;
    pthread_mutex_lock(&s->lock);
    bool room = s->n_queued + n <= CAPACITY;
    pthread_mutex_unlock(&s->lock);
    if (!room) {
        snprintf(errbuf, errbuf_size, "queue full");
        return OUTBOX_SINK_RETRY;
    }
    take(s, events, n);
    return OUTBOX_SINK_OK;
}

static int b_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    inst_t *s = state;
    (void)errbuf, (void)errbuf_size;
    pthread_mutex_lock(&s->lock);
    if (!s->threaded && s->n_queued > 0) {
        ack_queued(s);
    } else {
        struct timespec ts;
        deadline_in(&ts, timeout_ms);
        pthread_cond_timedwait(&s->changed, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return OUTBOX_SINK_OK;
}

static int b_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    inst_t *s = state;
#if defined(VARIANT_FLUSH_EARLY)
    (void)s, (void)timeout_ms, (void)errbuf, (void)errbuf_size;
    return OUTBOX_SINK_OK; /* the bug: nothing waited for */
#else
    struct timespec ts;
    int rc = OUTBOX_SINK_OK;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&s->lock);
    if (!s->threaded)
        ack_queued(s);
    while (s->n_queued > 0) {
        if (pthread_cond_timedwait(&s->changed, &s->lock, &ts) != 0) {
            snprintf(errbuf, errbuf_size, "%zu events still unacked", s->n_queued);
            rc = OUTBOX_SINK_RETRY;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
#endif
}

static void b_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx) {
    inst_t *s = state;
    pthread_mutex_lock(&s->lock);
    double queued = (double)s->n_queued, seen = (double)s->n_seen;
    pthread_mutex_unlock(&s->lock);
    emit(emit_ctx, "queued_events", OUTBOX_SINK_STAT_GAUGE, queued, "events taken and not acked");
    emit(emit_ctx, "taken_events_total", OUTBOX_SINK_STAT_COUNTER, seen, "events taken");
}

static void b_close(void *state) {
    inst_t *s = state;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    if (s->threaded)
        pthread_join(s->worker, NULL);
#if defined(VARIANT_ACK_AFTER_CLOSE)
    pthread_mutex_lock(&leftover_lock);
    for (size_t i = 0; i < s->n_queued && n_leftover < CAPACITY; i++)
        leftover[n_leftover++] = s->queue[i];
    leftover_host = s->host;
    pthread_mutex_unlock(&leftover_lock);
#endif
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s);
}

#if defined(VARIANT_ASYNC)
#define NAME "async"
#elif defined(VARIANT_DOUBLE_ACK)
#define NAME "double_ack"
#elif defined(VARIANT_MISSING_ACK)
#define NAME "missing_ack"
#elif defined(VARIANT_ACK_AFTER_CLOSE)
#define NAME "ack_after_close"
#elif defined(VARIANT_FLUSH_EARLY)
#define NAME "flush_early"
#elif defined(VARIANT_RECOVER_ALL)
#define NAME "recover_all"

/* Finds everything, which would make outboxd lose the events it was never
 * given (check 17). */
static int b_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held, char *errbuf,
                     size_t errbuf_size) {
    (void)state;
    (void)events;
    (void)errbuf;
    (void)errbuf_size;
    for (size_t i = 0; i < n; i++)
        held[i] = 1;
    return OUTBOX_SINK_OK;
}
#else
#error "define one VARIANT_*"
#endif

OUTBOX_SINK_PLUGIN(.name = NAME, .version = "1", .description = "a test plugin for outbox-sink-conformance",
                   .open = b_open, .publish = b_publish,
#if defined(VARIANT_ASYNC)
                   .publish_some = b_publish_some,
#endif
                   .poll = b_poll, .flush = b_flush, .close = b_close, .stats = b_stats,
#if defined(VARIANT_RECOVER_ALL)
                   .recover = b_recover,
#endif
#if defined(VARIANT_ASYNC)
                   /* JSON only: the tool's test shows `--payload bson` refused */
                   .payloads = OUTBOX_SINK_PAYLOAD_JSON)
#else
                   .payloads = OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON)
#endif
