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

/* The options, as outboxd's options_fill writes them (options.c has the
 * table) and nats_config_parse completes them. The strings are outboxd's:
 * they live until close returns (until check returns, in check). */
typedef struct {
    const char *const *servers; /* never empty after parsing */
    const char *mode;
    const char *creds_file, *user, *password, *token, *nkey, *nkey_seed_file;
    const char *tls_ca, *tls_cert, *tls_key, *tls_hostname;
    int64_t connect_timeout_ms, max_reconnect, reconnect_wait_ms, max_pending, ack_timeout_ms;
    const char *stream;
    const char *const *stream_subjects;
    int64_t duplicate_window_s;
    /* Set by nats_config_parse: */
    int core;    /* mode core */
    int tls_url; /* some server is tls:// */
    int tls;     /* TLS on: tls_ca, tls_cert or a tls:// server */
} nats_config_t;

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
    int as_given; /* host->message_as_given (ABI 1.2): events go as outboxd laid them out */
    nats_config_t cfg;
    int core;                /* cfg.core */
    char servers_shown[1024]; /* the servers as list_shown() gives them: for messages */
    const char *stream;      /* cfg.stream: option stream, or NULL */
    int64_t ack_timeout_ms;  /* cfg.ack_timeout_ms */

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

/* options.c: the option table and the one parser of check and open */
extern const outbox_sink_option_t nats_options[];
/* host->options_fill into c, then what the table cannot say. Returns 0;
 * -1 with errbuf "KEY: what is wrong" (check's form: outboxd shows KEY's
 * line); -2 when the host has no options_fill. */
int nats_config_parse(const outbox_sink_host_t *host, nats_config_t *c, char *errbuf, size_t size);
void url_host(const char *url, char *out, size_t size);
void server_shown(const char *url, char *out, size_t size);
void list_shown(const char *const *servers, char *out, size_t size);

/* subject.c: an event becomes a message */
int nats_build_msg(const outbox_sink_event_t *ev, int as_given, natsMsg **msg, char *why, size_t why_size);

/* connection.c: the connection, authentication, TLS, the stream */
void nats_error_text(natsStatus st, char *out, size_t size);
int nats_close_connection(nats_sink_t *s);
/* libnats's options from c, into *out: OK; FATAL with errbuf "KEY: ..."
 * (check's form) for a bad option or a file that cannot be loaded; RETRY
 * (out of memory). s gets the connection callbacks; NULL in check, which
 * builds the options and drops them, never connecting. */
int nats_build_options(const nats_config_t *c, const char *sink_name, nats_sink_t *s, natsOptions **out,
                       char *errbuf, size_t errbuf_size);
/* Makes sure the stream named by option stream exists (see connection.c). */
int nats_ensure_stream(nats_sink_t *s, char *errbuf, size_t errbuf_size);

/* publish.c: publishing and acks */
void nats_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
int nats_publish_some(void *state, const outbox_sink_event_t *events, size_t n, size_t *taken, char *errbuf,
                      size_t errbuf_size);
void nats_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx);
int nats_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);
int nats_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);
size_t nats_take_back_all(nats_sink_t *s);
/* Asks the JetStream API which stream holds subject. Returns 1 (its name in
 * name), 0 when none does, -1 when the question got no answer (why in err). */
int nats_stream_for_subject(nats_sink_t *s, const char *subject, char *name, size_t name_size, char *err,
                            size_t err_size);

/* recover.c: which events in doubt a stream holds already (ABI 1.1) */
int nats_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held, char *errbuf,
                 size_t errbuf_size);

#endif
