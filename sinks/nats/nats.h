/*
 * nats.h - what the NATS sink's files share (not installed): the instance
 * struct and the functions one file offers another. The NATS sink: each
 * event becomes one NATS message on the subject its route names, published to JetStream (the default) or to core
 * NATS (sinks/nats/README.md has the headers, the options and the delivery
 * guarantee of each mode).
 *
 * JetStream mode publishes asynchronously (js_PublishMsgAsync) with the
 * event id as Nats-Msg-Id, so the stream drops a re-published event inside
 * its duplicate window: outboxd delivers at least once, the stream ends up
 * with each event once. Every PubAck becomes the host's ack, from libnats's
 * own thread (the ack handler). Core mode publishes and acks a batch once a
 * flush (a PING/PONG round trip) has shown that the server read it.
 *
 * What makes this sink longer than the file sink is keeping three promises
 * on top of an asynchronous client:
 *
 *  - Exactly one ack per event, and none after close. Each message in
 *    flight sits in a small table (natsMsg pointer -> the host's seq) that
 *    the ack handler, the reconnect check and close take entries out of,
 *    under one mutex. close takes back what libnats still holds and waits
 *    until the table is empty before it frees anything, because libnats
 *    calls the handler from a thread close cannot join.
 *  - Stream order across a lost connection. libnats would buffer publishes
 *    while it reconnects and send them first on the new connection, ahead of
 *    the events that were in flight on the old one and must be sent again.
 *    So the sink turns that buffer off (ReconnectBufSize 0: publishing while
 *    disconnected fails at once), and after a reconnect it hands every
 *    publish still in flight back to outboxd (RETRY) before it sends
 *    anything new. outboxd then publishes them again in log order; the ones
 *    the old server had stored come back as duplicates and are not stored
 *    twice.
 *  - A clear, permanent error for a subject that no stream covers. The
 *    server answers such a publish with "503 no responders". Before calling
 *    that FATAL, the sink asks the JetStream API which stream holds the
 *    subject (from poll, on the sink's thread), so a momentary 503 while a
 *    stream is being restored is a RETRY and not a lost event.
 *
 * The plugin never calls nats_Close(): libnats's state is global to the
 * process and another sink in the same outboxd may use it. The module is
 * linked with -z nodelete (local.mk) so that unloading it can never unmap
 * libnats under its own background threads.
 */
#ifndef OUTBOX_SINK_NATS_H
#define OUTBOX_SINK_NATS_H

#include <outbox/sink.h>

#include <nats/nats.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A message in flight: libnats owns it and will hand it back to the ack
 * handler with its PubAck. NULL msg: a free slot. */
typedef struct {
    natsMsg *msg;
    uint64_t seq;
} inflight_t;

/* An event whose publish got "503 no responders", waiting for poll to find
 * out whether a stream covers its subject. */
typedef struct {
    uint64_t seq;
    char *subject;
} suspect_t;

typedef struct {
    const outbox_sink_host_t *host;
    int core;                /* mode: core */
    char servers_shown[1024]; /* the servers as list_shown() gives them: for messages */
    char *stream;            /* option stream, or NULL */
    int64_t ack_timeout_ms;

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    natsStatistics *stats;
    uint64_t reconnects;     /* the connection's reconnect count at the last check */

    /* Everything below is shared with libnats's threads (ack handler,
     * connection callbacks) and guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;     /* broadcast on every ack, and when the connection closes */
    inflight_t *table;       /* open addressing, cap a power of two */
    size_t cap, count;
    suspect_t *suspects;
    size_t n_suspects, suspects_cap;
    uint64_t ack_events;     /* acks and suspects so far: poll waits for a change */
    uint64_t ack_events_polled;
    int closing;             /* close has begun: connection callbacks stay quiet */
    int conn_closed;         /* the closed callback has run: no more callbacks */
    /* For the log: what happened to the events. */
    uint64_t published, acked_ok, duplicates, retried, failed;
    /* Rate-limited warnings (one line per RATE_MS per kind). */
    int64_t retry_warned_ms, error_warned_ms;
    uint64_t retries_unreported;
    char last_retry[300];
} nats_sink_t;

#define RATE_MS 5000

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on s->cond for up to ms (mu held). */
static inline void wait_ms(nats_sink_t *s, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

/* options.c: the option table and reading values */
extern const outbox_sink_option_t nats_options[];
const char *nats_option(const outbox_sink_host_t *host, const char *key);
const char *nats_option_set(const outbox_sink_host_t *host, const char *key);
int int_option(const outbox_sink_host_t *host, const char *key, long long *number, char *errbuf, size_t errbuf_size);
int split_list(const char *list, char ***items_out);
void free_list(char **items, int n);
int valid_server_url(const char *url);
void url_host(const char *url, char *out, size_t size);
void server_shown(const char *url, char *out, size_t size);
void list_shown(char **servers, int n, char *out, size_t size);
int is_ip_address(const char *host);
char *read_secret(const char *key, const char *path, char *errbuf, size_t errbuf_size);
void free_secret(char *secret);
int valid_stream_name(const char *name);

/* subject.c: an event becomes a message */
int nats_build_msg(const outbox_sink_event_t *ev, natsMsg **msg, char *why, size_t why_size);

/* connection.c: the connection, authentication, TLS, the stream */
void nats_error_text(natsStatus st, char *out, size_t size);
int nats_close_connection(nats_sink_t *s);
int nats_configure(nats_sink_t *s, const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size);
int nats_ensure_stream(nats_sink_t *s, const outbox_sink_host_t *host, long long window_s, char *errbuf, size_t errbuf_size);

/* publish.c: publishing and acks */
void nats_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
int nats_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf, size_t errbuf_size);
int nats_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);
int nats_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);
size_t nats_take_back_all(nats_sink_t *s);

#endif
