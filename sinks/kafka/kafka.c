/*
 * kafka.c - the Kafka sink: each event becomes one Kafka message, produced
 * with librdkafka to the topic its route names (sinks/kafka/README.md has
 * the message format, the options and the delivery guarantee).
 *
 * The shape of it:
 *
 *  - One parser, kafka_parse, serves check and open: outboxd writes the
 *    sink's own options into kafka_config_t (options_fill), and every other
 *    key of the options map is a librdkafka property, set with
 *    rd_kafka_conf_set after the sink's safe defaults (idempotence on,
 *    acks=all, no compression, a short linger, a bounded delivery timeout),
 *    so the user can override any of them and librdkafka judges every
 *    value. check stops there (it never creates a producer, so it never
 *    touches the network); open goes on to rd_kafka_new and asks a broker
 *    for metadata, so that an unreachable cluster is a clear RETRY from
 *    open instead of a silent stall.
 *  - publish_some hands events to rd_kafka_producev (RD_KAFKA_MSG_F_COPY:
 *    outboxd's buffers live only for the call) with the event's seq as the
 *    message's opaque, until librdkafka's queue is full, and says how many
 *    it took: outboxd offers the rest again, so no event is produced twice
 *    by this sink. Nothing is acked yet.
 *  - poll and flush serve librdkafka's delivery reports; each report acks
 *    its event: OK once the broker has it (acks=all), RETRY for errors that
 *    may pass, FATAL for those that never will (too large, unknown topic,
 *    not authorized), so the sink's on_error policy applies. A few of those
 *    the broker gives a whole batch when one message is at fault; their
 *    events are RETRY and then sent one at a time, so that only the
 *    culprit is FATAL.
 *  - A fatal producer error (idempotence broken, rd_kafka_fatal_error) makes
 *    the next publish return FATAL: outboxd then closes the sink and opens
 *    it again, which builds a new producer, and publishes every unacked
 *    event again.
 *
 * Secrets: the table declares librdkafka's secret properties SECRET, so
 * outboxd reads `KEY_file: PATH` for them and scrubs their values from
 * every line it prints, librdkafka's included (they reach outboxd through
 * host->log and errbuf). The sink itself never prints an option's value
 * when librdkafka refuses a secret one.
 *
 * Threads: librdkafka calls the delivery-report and error callbacks only
 * from rd_kafka_poll and rd_kafka_flush, which this sink calls from
 * outboxd's sink thread (publish_some, poll, flush, close). So the sink's
 * state is touched by one thread only and needs no lock. The log callback
 * is the exception: librdkafka calls it from its own threads, and it only
 * passes the line to host->log, which any thread may call.
 */
#include <outbox/sink.h>

#include <librdkafka/rdkafka.h>
#include "read_back.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

/* The sink's own options, as outboxd writes them (options_fill). */
typedef struct {
    const char *servers;      /* bootstrap.servers, also set in librdkafka's conf */
    const char *null_key;     /* "type" or "none" */
    int64_t open_timeout_ms;
    int64_t flush_timeout_ms;
} kafka_config_t;

/* A librdkafka property whose value is a secret: outboxd accepts it as
 * KEY_file too, never prints it and scrubs it from every line. */
#define KAFKA_SECRET(name, what) {.key = name, .type = OUTBOX_SINK_OPT_SECRET, .help = what}

/* The sink's own options have underscores in their names, which
 * librdkafka's string properties never do, so they cannot shadow one.
 * bootstrap.servers and the secrets are librdkafka properties listed for
 * their type and help; every other key goes to librdkafka as it is
 * (OUTBOX_SINK_OPTION_ANY). */
static const outbox_sink_option_t kafka_options[] = {
    {.key = "bootstrap.servers", .type = OUTBOX_SINK_OPT_STRING, .required = 1,
     OUTBOX_SINK_OPTION_AT(kafka_config_t, servers),
     .help = "librdkafka's bootstrap.servers: host:port[,host:port...] of one or more brokers"},
    {.key = "null_key", .type = OUTBOX_SINK_OPT_ENUM, .default_value = "type", .choices = "type|none",
     OUTBOX_SINK_OPTION_AT(kafka_config_t, null_key),
     .help = "the message key of an event whose key is null: its type, or no key at all "
             "(librdkafka then spreads such messages over the partitions)"},
    {.key = "open_timeout_ms", .type = OUTBOX_SINK_OPT_DURATION, .default_value = "5000", .min = 0,
     .max = 600000, OUTBOX_SINK_OPTION_AT(kafka_config_t, open_timeout_ms),
     .help = "how long open waits for a broker to answer; no answer makes open RETRY "
             "(outboxd tries again with backoff). 0: do not wait, connect lazily"},
    {.key = "flush_timeout_ms", .type = OUTBOX_SINK_OPT_DURATION, .default_value = "5000", .min = 0,
     .max = 600000, OUTBOX_SINK_OPTION_AT(kafka_config_t, flush_timeout_ms),
     .help = "how long close waits for outstanding deliveries before it drops them "
             "(outboxd publishes those again later)"},
    /* The properties librdkafka marks sensitive (its _RK_SENSITIVE, shown
     * as [redacted] in its configuration dump), and the OAUTHBEARER
     * secrets of later versions; one this librdkafka does not know is
     * refused by check as any unknown property is. */
    KAFKA_SECRET("sasl.password", "SASL password (PLAIN, SCRAM)"),
    KAFKA_SECRET("ssl.key.password", "passphrase of the client's private key"),
    KAFKA_SECRET("ssl.key.pem", "the client's private key, PEM"),
    KAFKA_SECRET("ssl.keystore.password", "password of the client's PKCS#12 keystore"),
    KAFKA_SECRET("sasl.oauthbearer.config", "OAUTHBEARER configuration (may hold credentials)"),
    KAFKA_SECRET("sasl.oauthbearer.client.secret", "OIDC client secret"),
    KAFKA_SECRET("sasl.oauthbearer.assertion.private.key.passphrase",
                 "passphrase of the OIDC assertion's private key (librdkafka >= 2.11)"),
    KAFKA_SECRET("sasl.oauthbearer.assertion.private.key.pem",
                 "the OIDC assertion's private key, PEM (librdkafka >= 2.11)"),
    /* Any other key: a librdkafka property. The END after it matters:
     * outboxd reads the table up to the NULL key. */
    OUTBOX_SINK_OPTION_ANY,
    OUTBOX_SINK_OPTION_END};

/* The defaults the sink sets before the user's properties: each can be
 * overridden in `options`, and librdkafka refuses contradictions (acks=1
 * with idempotence on, say) when the producer is created. */
static const struct {
    const char *name, *value;
} kafka_defaults[] = {
    /* No duplicates from librdkafka's own retries, and the order of each
     * partition kept even when requests are retried. */
    {"enable.idempotence", "true"},
    {"acks", "all"},
    /* Compression costs CPU on both ends; whoever wants it says so. */
    {"compression.type", "none"},
    /* Batching for throughput, at a latency cost of a few ms at most. */
    {"linger.ms", "5"},
    /* A delivery that cannot complete within a minute is reported as a
     * (transient) failure, and outboxd publishes the event again: the
     * event is never lost, and outboxd's log shows that something is
     * wrong rather than librdkafka's default of five silent minutes. */
    {"message.timeout.ms", "60000"},
    /* Brokers close idle connections (connections.max.idle.ms); that is
     * not worth an error line. Real failures are still logged. */
    {"log.connection.close", "false"},
};

/* Properties the sink relies on and refuses to take from the config. */
static const struct {
    const char *name, *why;
} kafka_refused[] = {
    {"delivery.report.only.error", "the sink acks events from their delivery reports"},
    {"transactional.id", "the sink produces outside transactions"},
};

/* The table's entry for key, or NULL (then key is only a librdkafka
 * property). */
static const outbox_sink_option_t *table_entry(const char *key) {
    for (const outbox_sink_option_t *o = kafka_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o;
    }
    return NULL;
}

/* ----------------------------------------------------------------------------
 * The sink instance
 * ------------------------------------------------------------------------- */

typedef enum { NULL_KEY_TYPE, NULL_KEY_NONE } null_key_t;

typedef struct {
    const outbox_sink_host_t *host;
    int as_given; /* host->message_as_given (ABI 1.2): send events as given */
    rd_kafka_t *rk;
    null_key_t null_key;
    int flush_timeout_ms;
    long long message_max_bytes; /* as librdkafka has it, for error messages */

    /* Events handed to librdkafka whose delivery report has not come yet,
     * and the highest seq produced (see seq_of). */
    size_t in_flight;
    uint64_t max_seq;

    /* Events of a batch the broker refused as a whole (see
     * is_batch_refusal), to be sent again one at a time when outboxd
     * offers them again (produce_one); and the one on its lone trip now,
     * whose refusal is its own. Few, and only after such a refusal: a
     * plain array. */
    uint64_t *suspects;
    size_t n_suspects, suspects_cap;
    int isolating;
    uint64_t isolated_seq;

    /* A fatal producer error: set by the error callback; publish then
     * returns FATAL so that outboxd builds a new producer. */
    int fatal;
    int fatal_purged; /* poll has failed what the broken producer held */
    char fatal_reason[512];

    /* Every broker is down: set by the error callback (on the runner's
     * thread, inside rd_kafka_poll), cleared by a delivery or by the
     * prober, a thread of this sink that asks a broker for metadata once a
     * second meanwhile (so that poll itself never waits for the network).
     * poll returns RETRY while it is set. */
    atomic_int all_down;
    char down_reason[512]; /* the runner's thread only */
    pthread_t prober;
    int prober_started;
    pthread_mutex_t probe_lock;
    pthread_cond_t probe_wake;
    int probe_stop; /* under probe_lock */

    /* The last error librdkafka reported, for open's RETRY message. */
    char last_error[512];
    rd_kafka_resp_err_t last_error_code;

    /* Set while open waits for a broker: librdkafka's connection failures
     * then go into open's RETRY message only, not also into the log (as
     * a FAIL line and an error callback each), so that a wrong password or
     * CA gives outboxd's one line per attempt, not three. Read by
     * librdkafka's threads (on_log). */
    atomic_int opening;

    /* Transient delivery failures, reported at most every 10 s. */
    int64_t failures_logged_ms;
    long long failures_unlogged;

    /* flush timed out and nothing was produced since: close need not wait
     * for those deliveries all over again. */
    int flush_timed_out;

    /* For stats: what the delivery reports said, and how often
     * publish_some stopped at a full queue. */
    uint64_t n_delivered, n_retried, n_failed, n_queue_full, n_fatal_errors;
} kafka_sink_t;

#define FAILURE_LOG_INTERVAL_MS 10000

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ack(kafka_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
    s->host->ack(s->host->ctx, seq, status, error);
}

/* The seq of a message from its opaque. With 64-bit pointers the opaque is
 * the seq. With 32-bit ones it holds the seq's low bits, and the seq is
 * rebuilt from the highest seq produced: outboxd's window of events in
 * flight is far below 2^32, so every seq in flight is less than 2^32
 * below it. (One expression for both: it is the identity on 64 bits.) */
static uint64_t seq_of(const kafka_sink_t *s, void *opaque) {
    uintptr_t low = (uintptr_t)opaque;
    return s->max_seq - (uint64_t)(uintptr_t)((uintptr_t)s->max_seq - low);
}

static int is_suspect(const kafka_sink_t *s, uint64_t seq) {
    for (size_t i = 0; i < s->n_suspects; i++) {
        if (s->suspects[i] == seq) return 1;
    }
    return 0;
}

static void suspect_take(kafka_sink_t *s, uint64_t seq) {
    for (size_t i = 0; i < s->n_suspects; i++) {
        if (s->suspects[i] != seq) continue;
        s->suspects[i] = s->suspects[--s->n_suspects];
        return;
    }
}

/* Out of memory only makes the event a plain retry (sent as usual). */
static void suspect_add(kafka_sink_t *s, uint64_t seq) {
    if (s->n_suspects == s->suspects_cap) {
        size_t cap = s->suspects_cap ? s->suspects_cap * 2 : 64;
        uint64_t *grown = realloc(s->suspects, cap * sizeof *grown);
        if (grown == NULL) return;
        s->suspects = grown;
        s->suspects_cap = cap;
    }
    s->suspects[s->n_suspects++] = seq;
}

#define TOPIC_MAX_LEN 249

static int is_topic_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Kafka's rule for topic names (its Topic.validate): 1 to 249 of
 * [a-zA-Z0-9._-], and not "." or "..". Checked here because a bad name is
 * a property of the event (its route expanded badly): a FATAL ack now
 * beats a broker round trip later (librdkafka would send it, the broker
 * answer TOPIC_EXCEPTION). An empty one never comes: outboxd fails such
 * events itself. Returns 1 when topic is legal; otherwise 0 with why it
 * is not in why. */
static int check_topic_name(const char *topic, char *why, size_t size) {
    size_t len = strlen(topic);
    if (strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0) {
        snprintf(why, size, "is only dots");
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)topic[i];
        if (is_topic_char(c)) continue;
        if (c == ' ')
            snprintf(why, size, "has a space at byte %zu", i + 1);
        else if (c >= 0x21 && c < 0x7f)
            snprintf(why, size, "has '%c' at byte %zu", c, i + 1);
        else
            snprintf(why, size, "has byte 0x%02x at byte %zu", c, i + 1);
        return 0;
    }
    if (len > TOPIC_MAX_LEN) {
        snprintf(why, size, "is %zu bytes long, over Kafka's %d", len, TOPIC_MAX_LEN);
        return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------------------
 * librdkafka's callbacks
 * ------------------------------------------------------------------------- */

/* Delivery errors that will never pass for this event: its ack is FATAL and
 * the sink's on_error applies. Everything else (timeouts, a broker down,
 * leader changes, purges at close) is RETRY: outboxd publishes the event
 * again, so an unknown error never loses one. */
static int is_permanent(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:        /* over message.max.bytes */
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:               /* corrupt */
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT: /* headers on an old format */
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:           /* invalid topic name */
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:     /* topic missing, auto-create off */
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}

/* Permanent errors the broker gives a whole batch (a ProduceRequest's
 * record set for one partition) when one of its messages is at fault: a
 * message over the topic's max.message.bytes fails every message batched
 * with it. Acking them all FATAL would dead-letter (or skip) innocent
 * events, so they are RETRY, and each is then sent alone (produce_one):
 * alone, a refusal is its own and FATAL. */
static int is_batch_refusal(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        return 1;
    default:
        return 0;
    }
}

/* Counts a transient delivery failure, and says so at most every
 * FAILURE_LOG_INTERVAL_MS: during an outage every event in flight fails,
 * and one line per event would bury the log. */
static void note_transient_failure(kafka_sink_t *s, const char *topic, rd_kafka_resp_err_t err) {
    int64_t now = now_ms();
    /* Purged by close, which says so itself. */
    if (err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) return;
    s->failures_unlogged++;
    if (s->failures_logged_ms != 0 && now - s->failures_logged_ms < FAILURE_LOG_INTERVAL_MS) return;
    s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                 "%lld deliver%s failed for now (last: topic %s: %s, %s); outboxd publishes %s "
                 "again",
                 s->failures_unlogged, s->failures_unlogged == 1 ? "y" : "ies", topic,
                 rd_kafka_err2str(err), rd_kafka_err2name(err),
                 s->failures_unlogged == 1 ? "the event" : "the events");
    s->failures_unlogged = 0;
    s->failures_logged_ms = now;
}

/* One message's delivery report: the ack of its event. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    kafka_sink_t *s = opaque;
    uint64_t seq = seq_of(s, m->_private);
    const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "?";
    (void)rk;

    s->in_flight--;
    int alone = s->isolating && seq == s->isolated_seq;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->n_delivered++;
        atomic_store(&s->all_down, 0); /* a broker took it: not every one is down */
        ack(s, seq, OUTBOX_SINK_OK, NULL);
    } else if (is_batch_refusal(m->err) && !alone && !s->fatal) {
        if (s->n_suspects == 0)
            s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                         "topic %s: the broker refused a batch of messages (%s, %s); its events "
                         "are published again one at a time to find the one at fault",
                         topic, rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
        suspect_add(s, seq);
        s->n_retried++;
        ack(s, seq, OUTBOX_SINK_RETRY, NULL);
    } else if (is_permanent(m->err) && !s->fatal) {
        char error[600];
        if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            snprintf(error, sizeof error,
                     "kafka: topic %s: %s (%s): the message of %zu bytes (key and headers on "
                     "top) is over the broker's or the topic's limit (max.message.bytes)",
                     topic, rd_kafka_err2str(m->err), rd_kafka_err2name(m->err), m->len);
        else
            snprintf(error, sizeof error, "kafka: topic %s: %s (%s)", topic,
                     rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
        s->n_failed++;
        ack(s, seq, OUTBOX_SINK_FATAL, error);
    } else {
        /* Transient, or anything at all after a fatal producer error:
         * then no failure is the event's fault, and the new producer will
         * deliver it. */
        note_transient_failure(s, topic, m->err);
        s->n_retried++;
        ack(s, seq, OUTBOX_SINK_RETRY, NULL);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    kafka_sink_t *s = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        if (!s->fatal) {
            s->n_fatal_errors++;
            snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s (%s)", fatal,
                     rd_kafka_err2name(code));
            s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                         "fatal producer error: %s; the producer is recreated and the events "
                         "in flight published again",
                         s->fatal_reason);
        }
        s->fatal = 1;
        return;
    }
    snprintf(s->last_error, sizeof s->last_error, "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && !atomic_load(&s->opening)) {
        atomic_store(&s->all_down, 1);
        snprintf(s->down_reason, sizeof s->down_reason, "%s", reason);
    }
    /* "All brokers down" names no cause; keep the one before it. */
    if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) s->last_error_code = (rd_kafka_resp_err_t)err;
    /* "All brokers down" and connection failures come with librdkafka's
     * own log lines already (log_cb below); the rest is worth a line,
     * except while open waits: open's RETRY message says it. */
    if (err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN &&
        !atomic_load(&s->opening))
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING, "librdkafka: %s (%s)", s->last_error,
                     rd_kafka_err2name((rd_kafka_resp_err_t)err));
}

/* librdkafka's own log lines, with its syslog levels mapped onto the
 * host's. Called from librdkafka's threads: it only reads `opening` and
 * calls host->log, which any thread may call (and which scrubs secrets). */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *line) {
    const kafka_sink_t *s = rd_kafka_opaque(rk);
    outbox_sink_log_level_t to;

    if (s == NULL) return;
    /* A broker connection that failed while open waits: open's RETRY says
     * why (the error callback has the same text). */
    if (atomic_load(&s->opening) && strcmp(facility, "FAIL") == 0) return;
    if (level <= 3)
        to = OUTBOX_SINK_LOG_ERROR;
    else if (level == 4)
        to = OUTBOX_SINK_LOG_WARNING;
    else if (level <= 6)
        to = OUTBOX_SINK_LOG_INFO;
    else
        to = OUTBOX_SINK_LOG_DEBUG;
    s->host->log(s->host->ctx, to, "librdkafka %s: %s", facility, line);
}

/* ----------------------------------------------------------------------------
 * Building the producer
 * ------------------------------------------------------------------------- */

/* librdkafka's SASL mechanisms. rd_kafka_conf_set takes any one word for
 * sasl.mechanisms (and its alias sasl.mechanism) and only rd_kafka_new,
 * which check cannot call, refuses an unknown one: checked here so that
 * `outboxd --check` catches the typo. */
#define KAFKA_MECHANISMS "GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"

static int is_mechanism(const char *name) {
    return strcmp(name, "sasl.mechanisms") == 0 || strcmp(name, "sasl.mechanism") == 0;
}

static int known_mechanism(const char *value) {
    static const char *const known[] = {"GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                        "OAUTHBEARER"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(value, known[i]) == 0) return 1;
    }
    return 0;
}

/* Sets one property, or writes why not, starting with its name, and
 * returns -1. librdkafka's reason for refusing a value may quote it, so
 * for a secret only the refusal is told. */
static int set_property(rd_kafka_conf_t *conf, const char *name, const char *value, int secret,
                        char *errbuf, size_t errbuf_size) {
    char why[512];

    for (size_t i = 0; i < sizeof kafka_refused / sizeof kafka_refused[0]; i++) {
        if (strcmp(name, kafka_refused[i].name) == 0) {
            snprintf(errbuf, errbuf_size, "%s: not allowed (%s)", name, kafka_refused[i].why);
            return -1;
        }
    }
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, why, sizeof why);
    if (res == RD_KAFKA_CONF_OK && is_mechanism(name) && !known_mechanism(value)) {
        snprintf(errbuf, errbuf_size, "%s: \"%s\" is not one of %s", name, value, KAFKA_MECHANISMS);
        return -1;
    }
    if (res == RD_KAFKA_CONF_OK) return 0;
    if (secret && res == RD_KAFKA_CONF_INVALID)
        snprintf(errbuf, errbuf_size, "%s: librdkafka refuses its value (not shown: it is a secret)",
                 name);
    else
        snprintf(errbuf, errbuf_size, "%s: %s", name, why);
    return -1;
}

/* The one parser, for check and open: outboxd writes the sink's own
 * options into cfg, and every other option is set in a new librdkafka conf
 * after the sink's defaults, so that librdkafka judges each property (an
 * unknown one, a bad value) without a producer, offline. Returns the conf
 * (the caller destroys it or gives it to rd_kafka_new), or NULL with
 * errbuf "KEY: why", so that outboxd names that option's line. */
static rd_kafka_conf_t *kafka_parse(const outbox_sink_host_t *host, kafka_config_t *cfg,
                                    char *errbuf, size_t errbuf_size) {
    char client_id[256];

    memset(cfg, 0, sizeof *cfg);
    if (!OUTBOX_SINK_HOST_HAS(host, options_fill) || host->options_fill(host->ctx, cfg) != 0) {
        snprintf(errbuf, errbuf_size, "kafka sink: needs an outboxd with sink ABI 1.1 or later "
                 "(options_fill); this one has %u.%u", host->abi_major, host->abi_minor);
        return NULL;
    }
    if (cfg->servers == NULL || cfg->servers[0] == '\0') {
        snprintf(errbuf, errbuf_size, "bootstrap.servers: required: host:port of one or more brokers");
        return NULL;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(client_id, sizeof client_id, "outboxd-%s", host->sink_name ? host->sink_name : "kafka");
    if (set_property(conf, "client.id", client_id, 0, errbuf, errbuf_size) != 0) goto fail;
    for (size_t i = 0; i < sizeof kafka_defaults / sizeof kafka_defaults[0]; i++) {
        if (set_property(conf, kafka_defaults[i].name, kafka_defaults[i].value, 0, errbuf,
                         errbuf_size) != 0)
            goto fail;
    }
    size_t cursor = 0;
    const char *name, *value = NULL;
    while ((name = host->option_next(host->ctx, &cursor, &value)) != NULL) {
        const outbox_sink_option_t *o = table_entry(name);
        int secret = o != NULL && o->type == OUTBOX_SINK_OPT_SECRET;
        /* The sink's own options are in cfg, not for librdkafka. */
        if (o != NULL && !secret && strcmp(name, "bootstrap.servers") != 0) continue;
        if (set_property(conf, name, value != NULL ? value : "", secret, errbuf, errbuf_size) != 0)
            goto fail;
    }
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* A conf property as text, for the start-up line; "?" when unknown. */
static void conf_value(const rd_kafka_conf_t *conf, const char *name, char *out, size_t size) {
    size_t len = size;
    if (rd_kafka_conf_get(conf, name, out, &len) != RD_KAFKA_CONF_OK) snprintf(out, size, "?");
}

/* librdkafka before 2.6.1 appends its client nonce twice in the SCRAM
 * client-final message (librdkafka PR #4895). Kafka 4.x brokers check the
 * nonce as RFC 5802 says and answer "invalid credentials" to the right
 * password; Debian 12 ships librdkafka 2.0.2. Saying so spares the user a
 * hunt for a password that is not wrong. Writes "" when it does not apply. */
#define SCRAM_FIXED_VERSION 0x020601ff
static void scram_hint(const kafka_sink_t *s, const char *mechanism, char *out, size_t size) {
    out[0] = '\0';
    if (rd_kafka_version() >= SCRAM_FIXED_VERSION || strncmp(mechanism, "SCRAM-", 6) != 0) return;
    if (s->last_error_code != RD_KAFKA_RESP_ERR__AUTHENTICATION) return;
    snprintf(out, size,
             "; note: this librdkafka (%s) is older than 2.6.1, whose SCRAM Kafka 4.x brokers "
             "refuse as invalid credentials even with the right password (librdkafka PR #4895): "
             "use a librdkafka >= 2.6.1, or sasl.mechanisms=PLAIN over SASL_SSL",
             rd_kafka_version_str());
}

/* Asks the cluster for its brokers, waiting up to timeout_ms. Returns 0 when
 * a broker answered. */
static int check_cluster(kafka_sink_t *s, int timeout_ms, int *n_brokers) {
    const struct rd_kafka_metadata *md = NULL;
    /* all_topics=0 and no topic: only the broker list. */
    rd_kafka_resp_err_t err = rd_kafka_metadata(s->rk, 0, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Serve the error events queued meanwhile: they say why. */
        rd_kafka_poll(s->rk, 0);
        if (s->last_error[0] == '\0')
            snprintf(s->last_error, sizeof s->last_error, "%s", rd_kafka_err2str(err));
        return -1;
    }
    *n_brokers = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* The prober: while every broker is down, a metadata request (up to a
 * second) once a second; the first answer clears all_down. librdkafka
 * says when its last broker goes, never when one comes back, and poll must
 * not wait for the network. Started by poll the first time every broker is
 * down; stopped before the producer is destroyed. */
static void *prober_main(void *arg) {
    kafka_sink_t *s = arg;
    pthread_mutex_lock(&s->probe_lock);
    while (!s->probe_stop) {
        if (atomic_load(&s->all_down)) {
            pthread_mutex_unlock(&s->probe_lock);
            const struct rd_kafka_metadata *md = NULL;
            if (rd_kafka_metadata(s->rk, 0, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR)
                atomic_store(&s->all_down, 0);
            if (md) rd_kafka_metadata_destroy(md);
            pthread_mutex_lock(&s->probe_lock);
        }
        if (s->probe_stop) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&s->probe_wake, &s->probe_lock, &until);
    }
    pthread_mutex_unlock(&s->probe_lock);
    return NULL;
}

static void free_sink(kafka_sink_t *s) {
    if (s->prober_started) {
        pthread_mutex_lock(&s->probe_lock);
        s->probe_stop = 1;
        pthread_cond_signal(&s->probe_wake);
        pthread_mutex_unlock(&s->probe_lock);
        pthread_join(s->prober, NULL);
    }
    pthread_cond_destroy(&s->probe_wake);
    pthread_mutex_destroy(&s->probe_lock);
    if (s->rk != NULL) rd_kafka_destroy(s->rk);
    free(s->suspects);
    free(s);
}

/* ----------------------------------------------------------------------------
 * The callbacks
 * ------------------------------------------------------------------------- */

static int kafka_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    kafka_config_t cfg;
    rd_kafka_conf_t *conf = kafka_parse(host, &cfg, errbuf, errbuf_size);
    if (conf == NULL) return OUTBOX_SINK_FATAL;
    rd_kafka_conf_destroy(conf);
    return OUTBOX_SINK_OK;
}

static int kafka_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                      size_t errbuf_size) {
    kafka_config_t cfg;
    char why[512];

    rd_kafka_conf_t *conf = kafka_parse(host, &cfg, errbuf, errbuf_size);
    if (conf == NULL) return OUTBOX_SINK_FATAL;
    kafka_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    s->host = host;
    s->as_given = OUTBOX_SINK_HOST_HAS(host, message_as_given) && host->message_as_given;
    pthread_mutex_init(&s->probe_lock, NULL);
    pthread_cond_init(&s->probe_wake, NULL);
    s->null_key = cfg.null_key != NULL && strcmp(cfg.null_key, "none") == 0 ? NULL_KEY_NONE
                                                                            : NULL_KEY_TYPE;
    s->flush_timeout_ms = (int)cfg.flush_timeout_ms;
    const char *servers = cfg.servers;
    int64_t open_timeout = cfg.open_timeout_ms;

    /* The sink's own wiring, set last so no option can replace it. */
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);

    char idempotence[16], acks[16], compression[32], linger[32], timeout[32], max_bytes[32];
    conf_value(conf, "enable.idempotence", idempotence, sizeof idempotence);
    conf_value(conf, "acks", acks, sizeof acks);
    conf_value(conf, "compression.type", compression, sizeof compression);
    conf_value(conf, "linger.ms", linger, sizeof linger);
    conf_value(conf, "message.timeout.ms", timeout, sizeof timeout);
    conf_value(conf, "message.max.bytes", max_bytes, sizeof max_bytes);
    s->message_max_bytes = strtoll(max_bytes, NULL, 10);
    char mechanism[64];
    conf_value(conf, "sasl.mechanisms", mechanism, sizeof mechanism);

    /* rd_kafka_new checks the properties against each other (acks with
     * idempotence, ...), which check cannot do without a producer: a
     * refusal here is a configuration error too. On success it owns conf.
     * "opening" is set first: rd_kafka_new's threads connect to the
     * bootstrap brokers at once, and a TLS handshake that failed before it
     * was set was logged besides open's RETRY (test_sasl_wrong_ca_is_a_
     * clear_retry failed so in CI's sanitizer run, where the window is
     * wider). */
    if (open_timeout > 0)
        atomic_store(&s->opening, 1);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (s->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka sink: cannot create the producer: %s", why);
        free_sink(s);
        return OUTBOX_SINK_FATAL;
    }

    /* librdkafka connects lazily: without this, an unreachable cluster
     * would only show as deliveries timing out a minute later. */
    int n_brokers = 0;
    if (open_timeout > 0) {
        int rc = check_cluster(s, (int)open_timeout, &n_brokers);
        /* On failure "opening" stays set until free_sink has destroyed the
         * producer: its threads may fail another connection attempt in
         * between, and open's RETRY already says why (a line logged then
         * made test_sasl_wrong_ca_is_a_clear_retry fail now and then). */
        if (rc == 0)
            atomic_store(&s->opening, 0);
        if (rc != 0) {
            char hint[300];
            scram_hint(s, mechanism, hint, sizeof hint);
            snprintf(errbuf, errbuf_size,
                     "kafka sink: no broker of bootstrap.servers=%s could be used within %lld ms "
                     "(%s)%s",
                     servers, (long long)open_timeout, s->last_error, hint);
            free_sink(s);
            return OUTBOX_SINK_RETRY;
        }
    }
    s->last_error[0] = '\0';

    char reach[64];
    if (open_timeout > 0)
        snprintf(reach, sizeof reach, "%d broker%s reachable", n_brokers, n_brokers == 1 ? "" : "s");
    else
        snprintf(reach, sizeof reach, "connecting lazily");
    host->log(host->ctx, OUTBOX_SINK_LOG_INFO,
              "producing to %s (%s): enable.idempotence=%s acks=%s compression.type=%s "
              "linger.ms=%s message.timeout.ms=%s message.max.bytes=%s",
              servers, reach, idempotence, acks, compression, linger, timeout, max_bytes);
    *state = s;
    return OUTBOX_SINK_OK;
}

static int produce(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                   size_t errbuf_size);

/* recover (ABI 1.1; docs/recovery.md): read_back.c reads the topics' ends
 * with a consumer made from the sink's own properties (brokers, TLS, SASL),
 * within open_timeout_ms (at least 10 s). */
static int kafka_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held,
                         char *errbuf, size_t errbuf_size) {
    kafka_sink_t *s = state;
    kafka_config_t cfg;
    rd_kafka_conf_t *conf = kafka_parse(s->host, &cfg, errbuf, errbuf_size);
    if (conf == NULL) return OUTBOX_SINK_RETRY;
    int timeout = cfg.open_timeout_ms > 10000 ? (int)cfg.open_timeout_ms : 10000;
    return kafka_read_back(s->host, conf, events, n, !s->as_given, held, timeout, errbuf, errbuf_size);
}

/* What produce_one returns when it cannot take the event now: librdkafka's
 * queue is full, or a suspect must travel alone. publish_some stops there
 * with OK (outboxd polls, which serves delivery reports, then offers the
 * rest again): never a wait inside publish. */
#define KAFKA_NOT_NOW (-1)

/* Produces one event. Returns OK when librdkafka took it, or when it was
 * acked FATAL here; KAFKA_NOT_NOW; RETRY or FATAL (with errbuf) when
 * publish_some must stop.
 *
 * A suspect (see is_batch_refusal) is sent alone, so that librdkafka
 * cannot batch it with anything and its refusal is its own: only when
 * nothing else is in flight, and nothing else is taken until its delivery
 * report has come. */
static int produce_one(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                       size_t errbuf_size) {
    char error[600], why[96];

    if (s->isolating && s->in_flight > 0) return KAFKA_NOT_NOW;
    s->isolating = 0;
    if (!check_topic_name(ev->destination, why, sizeof why)) {
        char topic[300], type[100];
        outbox_sink_quote(ev->destination, 100, topic, sizeof topic);
        outbox_sink_quote(ev->type != NULL ? ev->type : "", 40, type, sizeof type);
        snprintf(error, sizeof error,
                 "kafka sink: event of type \"%s\": its route expanded to topic \"%s\", which "
                 "%s: not a valid Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not . or ..)",
                 type, topic, why);
        s->n_failed++;
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return OUTBOX_SINK_OK;
    }
    int suspect = s->n_suspects > 0 && is_suspect(s, ev->seq);
    if (suspect && s->in_flight > 0) return KAFKA_NOT_NOW;
    int rc = produce(s, ev, errbuf, errbuf_size);
    if (suspect && rc == OUTBOX_SINK_OK) {
        suspect_take(s, ev->seq);
        s->isolating = 1;
        s->isolated_seq = ev->seq;
    }
    return rc;
}

/* Hands one event to librdkafka. Returns as produce_one. */
static int produce(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                   size_t errbuf_size) {
    char error[600], created[OUTBOX_SINK_TIME_SIZE];
    const char *key = ev->key;
    /* null_key: type keeps one type's events in order on one partition, in
     * every format (the message's attributes still say the key is null). */
    if (key == NULL && s->null_key == NULL_KEY_TYPE) key = ev->type;
    size_t key_len = key != NULL ? strlen(key) : 0;

    rd_kafka_headers_t *headers = rd_kafka_headers_new(3 + ev->n_headers);
    /* A format other than native (sink.h, message_as_given): outboxd laid
     * the message out, and it goes as given, with no header of ours. */
    if (!s->as_given) {
        outbox_sink_format_time(ev->created_ms, created);
        rd_kafka_header_add(headers, "outbox-id", -1, ev->id, -1);
        rd_kafka_header_add(headers, "outbox-type", -1, ev->type, -1);
        rd_kafka_header_add(headers, "outbox-created", -1, created, -1);
    }
    for (size_t i = 0; i < ev->n_headers; i++)
        rd_kafka_header_add(headers, ev->headers[i].name, -1, ev->headers[i].value, -1);

    /* The opaque carries the seq (see seq_of). */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(ev->destination), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)ev->payload, ev->payload_len), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)ev->seq), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->in_flight++;
        if (ev->seq > s->max_seq) s->max_seq = ev->seq;
        s->flush_timed_out = 0;
        return OUTBOX_SINK_OK;
    }

    /* Not taken: no delivery report will come, and the headers are ours. */
    rd_kafka_headers_destroy(headers);
    switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        /* queue.buffering.max.messages / .kbytes: outboxd offers the
         * event again once poll has served some deliveries. */
        s->n_queue_full++;
        return KAFKA_NOT_NOW;
    case RD_KAFKA_RESP_ERR__FATAL: {
        char fatal[512];
        rd_kafka_resp_err_t code = rd_kafka_fatal_error(s->rk, fatal, sizeof fatal);
        if (!s->fatal)
            snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s (%s)", fatal,
                     rd_kafka_err2name(code));
        s->fatal = 1;
        snprintf(errbuf, errbuf_size, "kafka sink: fatal producer error: %s (recreating the producer)",
                 s->fatal_reason);
        return OUTBOX_SINK_FATAL;
    }
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        snprintf(error, sizeof error,
                 "kafka: topic %s: %s (%s): the message (%zu bytes of payload, key and headers "
                 "on top) is over message.max.bytes=%lld",
                 ev->destination, rd_kafka_err2str(err), rd_kafka_err2name(err), ev->payload_len,
                 s->message_max_bytes);
        s->n_failed++;
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return OUTBOX_SINK_OK;
    default:
        if (is_permanent(err)) {
            snprintf(error, sizeof error, "kafka: topic %s: %s (%s)", ev->destination,
                     rd_kafka_err2str(err), rd_kafka_err2name(err));
            s->n_failed++;
            ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
            return OUTBOX_SINK_OK;
        }
        snprintf(errbuf, errbuf_size, "kafka sink: topic %s: %s (%s)", ev->destination,
                 rd_kafka_err2str(err), rd_kafka_err2name(err));
        return OUTBOX_SINK_RETRY;
    }
}

/* Hands events to librdkafka until its queue is full, and says how many
 * it took: those are acked later by their delivery reports (or were acked
 * FATAL here, for a topic Kafka would refuse); outboxd offers the others
 * again after a poll has made room, so no event is produced twice. */
static int kafka_publish_some(void *state, const outbox_sink_event_t *events, size_t n,
                              size_t *taken, char *errbuf, size_t errbuf_size) {
    kafka_sink_t *s = state;

    *taken = 0;
    if (s->fatal) {
        snprintf(errbuf, errbuf_size, "kafka sink: fatal producer error: %s (recreating the producer)",
                 s->fatal_reason);
        return OUTBOX_SINK_FATAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = produce_one(s, &events[i], errbuf, errbuf_size);
        if (rc == KAFKA_NOT_NOW) return OUTBOX_SINK_OK;
        if (rc != OUTBOX_SINK_OK) return rc;
        *taken = i + 1;
    }
    return OUTBOX_SINK_OK;
}

static int kafka_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    kafka_sink_t *s = state;

    rd_kafka_poll(s->rk, timeout_ms);
    if (s->fatal) {
        /* This producer is done for. Fail whatever it still holds now
         * (RETRY acks) rather than wait for librdkafka to: outboxd only
         * calls publish, which returns FATAL and so gets the producer
         * recreated, when it has events to publish again. */
        if (!s->fatal_purged) {
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            s->fatal_purged = 1;
        }
        snprintf(errbuf, errbuf_size, "kafka sink: fatal producer error: %s", s->fatal_reason);
        return OUTBOX_SINK_FATAL;
    }
    if (atomic_load(&s->all_down) && !s->prober_started)
        s->prober_started = pthread_create(&s->prober, NULL, prober_main, s) == 0;
    if (atomic_load(&s->all_down)) {
        snprintf(errbuf, errbuf_size, "kafka sink: every broker is down (%s)", s->down_reason);
        return OUTBOX_SINK_RETRY;
    }
    return OUTBOX_SINK_OK;
}

static int kafka_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    kafka_sink_t *s = state;

    /* rd_kafka_flush serves the delivery reports (the acks) as they come. */
    rd_kafka_flush(s->rk, timeout_ms);
    rd_kafka_poll(s->rk, 0);
    if (s->in_flight == 0) return OUTBOX_SINK_OK;
    s->flush_timed_out = 1;
    snprintf(errbuf, errbuf_size, "kafka sink: %zu events not delivered within %d ms%s%s",
             s->in_flight, timeout_ms, s->last_error[0] ? "; last error: " : "", s->last_error);
    return OUTBOX_SINK_RETRY;
}

/* Delivers what it can within flush_timeout_ms, drops the rest (acked
 * RETRY: outboxd publishes those events again), destroys the producer. */
static void kafka_close(void *state) {
    kafka_sink_t *s = state;

    if (s->in_flight > 0 && !s->fatal && !s->flush_timed_out)
        rd_kafka_flush(s->rk, s->flush_timeout_ms);
    if (s->in_flight > 0) {
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                     "closing with %zu events not delivered: outboxd publishes them again",
                     s->in_flight);
        /* Their delivery reports come with __PURGE_QUEUE/_INFLIGHT:
         * RETRY acks. Purging also keeps rd_kafka_destroy from waiting for
         * them. */
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(s->rk, 0);
    }
    free_sink(s);
}

/* Figures for outboxd's metrics. Called from the sink's thread, like the
 * delivery reports that move the counters. */
static void kafka_stats(void *state, outbox_sink_stat_fn emit, void *ctx) {
    const kafka_sink_t *s = state;
    emit(ctx, "kafka_outq", OUTBOX_SINK_STAT_GAUGE, (double)rd_kafka_outq_len(s->rk),
         "messages and requests in librdkafka's queues (rd_kafka_outq_len)");
    emit(ctx, "kafka_in_flight", OUTBOX_SINK_STAT_GAUGE, (double)s->in_flight,
         "events handed to librdkafka whose delivery report has not come");
    emit(ctx, "kafka_delivered_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_delivered,
         "events the broker confirmed (acked OK)");
    emit(ctx, "kafka_delivery_retries_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_retried,
         "delivery failures that may pass (acked RETRY)");
    emit(ctx, "kafka_delivery_failures_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_failed,
         "events Kafka will never take (acked FATAL)");
    emit(ctx, "kafka_queue_full_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_queue_full,
         "times publish stopped at librdkafka's full queue");
    emit(ctx, "kafka_fatal_errors_total", OUTBOX_SINK_STAT_COUNTER, (double)s->n_fatal_errors,
         "fatal producer errors (the producer is recreated)");
}

OUTBOX_SINK_PLUGIN(.name = "kafka", .version = "1.2.0",
                   .description = "one Kafka message per event (librdkafka, idempotent producer)",
                   .options = kafka_options,
                   .payloads = OUTBOX_SINK_PAYLOAD_JSON | OUTBOX_SINK_PAYLOAD_BSON,
                   .check = kafka_check, .open = kafka_open, .publish_some = kafka_publish_some,
                   .poll = kafka_poll, .flush = kafka_flush, .close = kafka_close,
                   .stats = kafka_stats, .recover = kafka_recover, .messages = OUTBOX_SINK_MESSAGES_AS_GIVEN,
                   .cloudevents_binding = "kafka")
