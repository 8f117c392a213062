/*
 * kafka.c - the Kafka sink: each event becomes one Kafka message, produced
 * with librdkafka to the topic its route names (sinks/kafka/README.md has
 * the message format, the options and the delivery guarantee).
 *
 * The shape of it:
 *
 *  - open builds a librdkafka producer from the sink's `options` map. Every
 *    key that is not one of the sink's own options is a librdkafka
 *    property, set after the sink's safe defaults (idempotence on, acks=all,
 *    no compression, a short linger, a bounded delivery timeout), so the
 *    user can override any of them and librdkafka judges every value. Then
 *    it asks a broker for metadata, so that an unreachable cluster is a
 *    clear RETRY from open instead of a silent stall.
 *  - publish hands each event to rd_kafka_producev (RD_KAFKA_MSG_F_COPY:
 *    outboxd's buffers live only for the call) with the event's seq as the
 *    message's opaque, and returns. Nothing is acked yet.
 *  - poll and flush serve librdkafka's delivery reports; each report acks
 *    its event: OK once the broker has it (acks=all), RETRY for errors that
 *    may pass, FATAL for those that never will (too large, unknown topic,
 *    not authorized), so the sink's on_error policy applies. A few of those
 *    the broker gives a whole batch when one message is at fault; their
 *    events are RETRY and then sent one at a time, so that only the
 *    culprit is FATAL.
 *  - After a RETRY from publish (librdkafka's queue full), outboxd
 *    publishes the rest of the batch again, and the sink skips the events
 *    it still has in flight, so none is produced twice.
 *  - A fatal producer error (idempotence broken, rd_kafka_fatal_error) makes
 *    the next publish return FATAL: outboxd then closes the sink and opens
 *    it again, which builds a new producer, and publishes every unacked
 *    event again.
 *
 * Threads: librdkafka calls the delivery-report and error callbacks only
 * from rd_kafka_poll and rd_kafka_flush, which this sink calls from
 * outboxd's sink thread (publish, poll, flush, close). So the sink's state
 * is touched by one thread only and needs no lock. The log callback is the
 * exception: librdkafka calls it from its own threads, and it only passes
 * the line to host->log, which any thread may call.
 */
#include <outbox/sink.h>

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

/* The sink's own options. Their names use underscores, which librdkafka's
 * string properties never do, so they cannot shadow one. Every other key of
 * the options map goes to librdkafka (OUTBOX_SINK_OPTION_ANY). */
static const outbox_sink_option_t kafka_options[] = {
    {.key = "bootstrap.servers",
     .type = OUTBOX_SINK_OPT_STRING,
     .required = 1,
     .help = "librdkafka's bootstrap.servers: host:port[,host:port...] of one or more brokers"},
    {.key = "null_key",
     .type = OUTBOX_SINK_OPT_ENUM,
     .default_value = "type",
     .choices = "type|none",
     .help = "the message key of an event whose key is null: its type, or no key at all "
             "(librdkafka then spreads such messages over the partitions)"},
    {.key = "open_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "5000",
     .min = 0,
     .max = 600000,
     .help = "how long open waits for a broker to answer; no answer makes open RETRY "
             "(outboxd tries again with backoff). 0: do not wait, connect lazily"},
    {.key = "flush_timeout_ms",
     .type = OUTBOX_SINK_OPT_INT,
     .default_value = "5000",
     .min = 0,
     .max = 600000,
     .help = "how long close waits for outstanding deliveries before it drops them "
             "(outboxd publishes those again later)"},
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

/* The value of one of the sink's own options: the config's, else the
 * table's default (a host other than outboxd may not fill defaults in). */
static const char *kafka_option(const outbox_sink_host_t *host, const char *key) {
    const char *value = host->option(host->ctx, key);
    if (value != NULL) return value;
    for (const outbox_sink_option_t *o = kafka_options; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0) return o->default_value;
    }
    return NULL;
}

static int is_own_option(const char *key) {
    for (const outbox_sink_option_t *o = kafka_options; o->key != NULL; o++) {
        /* bootstrap.servers is in the table only to be required and
         * documented: it is a librdkafka property like the others. */
        if (strcmp(o->key, key) == 0 && strcmp(key, "bootstrap.servers") != 0) return 1;
    }
    return 0;
}

/* A property whose value must never appear in a message or a log line:
 * sasl.password, ssl.key.password, ssl.keystore.password,
 * sasl.oauthbearer.client.secret, ssl.key.pem, sasl.oauthbearer.config and
 * .extensions (may hold secrets), ...assertion.private.key.passphrase, any
 * token. Matched by words rather than listed, so that a property a newer
 * librdkafka adds is covered when its name says what it is; a false match
 * only hides a harmless value. */
static int is_secret(const char *key) {
    static const char *const words[] = {"password", "passphrase", "secret", ".pem",
                                        "oauthbearer.config", "oauthbearer.extensions",
                                        "private.key", "token", "jaas", "credential"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strstr(key, words[i]) != NULL) return 1;
    }
    return 0;
}

static int parse_int(const char *value, long long min, long long max, long long *number) {
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || n < min || n > max) return -1;
    *number = n;
    return 0;
}

/* ----------------------------------------------------------------------------
 * Events in flight
 * ------------------------------------------------------------------------- */

/* The seqs handed to librdkafka whose delivery report has not come yet.
 *
 * Why keep them: after a RETRY from publish (librdkafka's queue was full),
 * outboxd publishes every unacked event of the batch again, including
 * those this sink did produce before the queue filled up. Producing them a
 * second time would put them into Kafka twice; instead publish skips an
 * event whose seq is still in flight, and its delivery report acks it
 * (outboxd has marked it published again by then). It is also how a
 * delivery report finds its seq: the message's opaque is a pointer-sized
 * integer, the table holds the whole 64-bit seq.
 *
 * A table indexed by seq modulo its size: seqs in flight are a window of
 * consecutive numbers (outboxd keeps at most a few thousand), so they do
 * not collide; when two would, the table doubles. slot = seq + 1, 0 = free. */
typedef struct {
    uint64_t *slots;
    size_t mask; /* size - 1; the size is a power of two */
    size_t count;
} inflight_t;

#define INFLIGHT_MIN_SIZE 8192
#define INFLIGHT_MAX_SIZE ((size_t)1 << 24)

static int inflight_init(inflight_t *t) {
    t->slots = calloc(INFLIGHT_MIN_SIZE, sizeof *t->slots);
    t->mask = INFLIGHT_MIN_SIZE - 1;
    t->count = 0;
    return t->slots != NULL ? 0 : -1;
}

static int inflight_has(const inflight_t *t, uint64_t seq) {
    return t->slots[seq & t->mask] == seq + 1;
}

/* Doubles the table until every entry, and seq, has a slot of its own.
 * Returns -1 when out of memory or beyond INFLIGHT_MAX_SIZE. */
static int inflight_grow(inflight_t *t, uint64_t seq) {
    size_t size = (t->mask + 1) * 2;
    for (; size <= INFLIGHT_MAX_SIZE; size *= 2) {
        uint64_t *slots = calloc(size, sizeof *slots);
        int clash = 0;
        if (slots == NULL) return -1;
        for (size_t i = 0; i <= t->mask && !clash; i++) {
            uint64_t v = t->slots[i];
            if (v == 0) continue;
            if (slots[(v - 1) & (size - 1)] != 0) clash = 1;
            slots[(v - 1) & (size - 1)] = v;
        }
        if (!clash && slots[seq & (size - 1)] == 0) {
            free(t->slots);
            t->slots = slots;
            t->mask = size - 1;
            return 0;
        }
        free(slots);
    }
    return -1;
}

static int inflight_add(inflight_t *t, uint64_t seq) {
    if (t->slots[seq & t->mask] != 0 && inflight_grow(t, seq) != 0) return -1;
    t->slots[seq & t->mask] = seq + 1;
    t->count++;
    return 0;
}

/* Removes the seq whose low bits are tag (the message opaque); returns 0
 * and the seq, or -1 when none is in flight. */
static int inflight_take(inflight_t *t, uintptr_t tag, uint64_t *seq) {
    uint64_t *slot = &t->slots[(uint64_t)tag & t->mask];
    if (*slot == 0 || (uintptr_t)(*slot - 1) != tag) return -1;
    *seq = *slot - 1;
    *slot = 0;
    t->count--;
    return 0;
}

/* ----------------------------------------------------------------------------
 * The sink instance
 * ------------------------------------------------------------------------- */

typedef enum { NULL_KEY_TYPE, NULL_KEY_NONE } null_key_t;

#define MAX_SECRETS 16

typedef struct {
    const outbox_sink_host_t *host;
    rd_kafka_t *rk;
    /* The values of secret options (host strings, valid until close
     * returns), blanked out of whatever librdkafka says. Written in open
     * before librdkafka has a thread, read-only after. */
    const char *secrets[MAX_SECRETS];
    size_t n_secrets;
    null_key_t null_key;
    int flush_timeout_ms;
    long long message_max_bytes; /* as librdkafka has it, for error messages */
    inflight_t inflight;

    /* Events of a batch the broker refused as a whole (see
     * is_batch_refusal), to be sent again one at a time; and the one being
     * sent alone right now, whose refusal is its own. */
    inflight_t suspects;
    int isolating;
    uint64_t isolated_seq;

    /* A fatal producer error: set by the error callback; publish then
     * returns FATAL so that outboxd builds a new producer. */
    int fatal;
    int fatal_purged; /* poll has failed what the broken producer held */
    char fatal_reason[512];

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
} kafka_sink_t;

#define FAILURE_LOG_INTERVAL_MS 10000
#define ISOLATE_WAIT_MS 5000 /* for a suspect's lone trip to the broker */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ack(kafka_sink_t *s, uint64_t seq, outbox_sink_status_t status, const char *error) {
    s->host->ack(s->host->ctx, seq, status, error);
}

/* created_ms as ISO-8601 UTC with milliseconds, as the file sink writes it:
 * 2026-11-26T18:45:25.123Z. "" when the time cannot be represented. */
static void format_time(int64_t ms, char *out, size_t size) {
    int64_t secs = ms / 1000;
    int millis = (int)(ms % 1000);
    struct tm tm;

    /* Division truncates toward zero; before 1970 we need the floor. */
    if (millis < 0) {
        millis += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    if ((int64_t)t != secs || gmtime_r(&t, &tm) == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
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
 * answer TOPIC_EXCEPTION). Returns 1 when topic is legal; otherwise 0 with
 * why it is not in why. */
static int check_topic_name(const char *topic, char *why, size_t size) {
    size_t len = strlen(topic);
    if (len == 0) {
        snprintf(why, size, "is empty");
        return 0;
    }
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

/* Copies text into out with every secret value replaced by "*****".
 * librdkafka does not print secrets it knows to be secret, but its error
 * texts can quote a value (a malformed sasl.oauthbearer.config, say), so
 * whatever it says goes through here before outboxd's log sees it. */
static const char *redact(const kafka_sink_t *s, const char *text, char *out, size_t size) {
    size_t len = 0;
    if (size == 0) return "";
    while (*text != '\0' && len + 1 < size) {
        size_t skip = 0;
        for (size_t i = 0; i < s->n_secrets && skip == 0; i++) {
            size_t n = strlen(s->secrets[i]);
            if (n > 0 && strncmp(text, s->secrets[i], n) == 0) skip = n;
        }
        if (skip > 0) {
            len += (size_t)snprintf(out + len, size - len, "*****");
            if (len >= size) len = size - 1;
            text += skip;
        } else {
            out[len++] = *text++;
        }
    }
    out[len] = '\0';
    return out;
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
    uint64_t seq;
    const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "?";
    (void)rk;

    if (inflight_take(&s->inflight, (uintptr_t)m->_private, &seq) != 0) {
        /* Cannot happen: every produced message is in the table. */
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                     "delivery report for an unknown message (topic %s): ignored", topic);
        return;
    }
    int alone = s->isolating && seq == s->isolated_seq;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ack(s, seq, OUTBOX_SINK_OK, NULL);
    } else if (is_batch_refusal(m->err) && !alone && !s->fatal) {
        if (s->suspects.count == 0)
            s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                         "topic %s: the broker refused a batch of messages (%s, %s); its events "
                         "are published again one at a time to find the one at fault",
                         topic, rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
        /* Out of memory for the table: it just stays a plain retry. */
        inflight_add(&s->suspects, seq);
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
        ack(s, seq, OUTBOX_SINK_FATAL, error);
    } else {
        /* Transient, or anything at all after a fatal producer error:
         * then no failure is the event's fault, and the new producer will
         * deliver it. */
        note_transient_failure(s, topic, m->err);
        ack(s, seq, OUTBOX_SINK_RETRY, NULL);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    kafka_sink_t *s = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        if (!s->fatal) {
            char clean[512];
            snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s (%s)",
                     redact(s, fatal, clean, sizeof clean), rd_kafka_err2name(code));
            s->host->log(s->host->ctx, OUTBOX_SINK_LOG_ERROR,
                         "fatal producer error: %s; the producer is recreated and the events "
                         "in flight published again",
                         s->fatal_reason);
        }
        s->fatal = 1;
        return;
    }
    redact(s, reason, s->last_error, sizeof s->last_error);
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
 * host's. Called from librdkafka's threads: it only reads the secrets
 * (fixed since open) and calls host->log, which any thread may call. */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *line) {
    const kafka_sink_t *s = rd_kafka_opaque(rk);
    outbox_sink_log_level_t to;
    char clean[1024];

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
    s->host->log(s->host->ctx, to, "librdkafka %s: %s", facility, redact(s, line, clean, sizeof clean));
}

/* ----------------------------------------------------------------------------
 * Building the producer
 * ------------------------------------------------------------------------- */

/* Sets one property, or writes why not (naming it, never showing a
 * secret's value) and returns -1. */
static int set_property(rd_kafka_conf_t *conf, const char *name, const char *value, char *errbuf,
                        size_t errbuf_size) {
    char why[512];

    for (size_t i = 0; i < sizeof kafka_refused / sizeof kafka_refused[0]; i++) {
        if (strcmp(name, kafka_refused[i].name) == 0) {
            snprintf(errbuf, errbuf_size, "kafka sink: option %s: not allowed (%s)", name,
                     kafka_refused[i].why);
            return -1;
        }
    }
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK) return 0;
    if (is_secret(name))
        /* librdkafka's message may quote the value. */
        snprintf(errbuf, errbuf_size, "kafka sink: option %s: librdkafka refuses its value "
                 "(not shown: it is a secret)", name);
    else
        snprintf(errbuf, errbuf_size, "kafka sink: option %s: %s", name, why);
    return -1;
}

/* The conf: defaults, then every option that is not the sink's own. */
static rd_kafka_conf_t *build_conf(kafka_sink_t *s, char *errbuf, size_t errbuf_size) {
    const outbox_sink_host_t *host = s->host;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[256];

    snprintf(client_id, sizeof client_id, "outboxd-%s", host->sink_name ? host->sink_name : "kafka");
    if (set_property(conf, "client.id", client_id, errbuf, errbuf_size) != 0) goto fail;
    for (size_t i = 0; i < sizeof kafka_defaults / sizeof kafka_defaults[0]; i++) {
        if (set_property(conf, kafka_defaults[i].name, kafka_defaults[i].value, errbuf,
                         errbuf_size) != 0)
            goto fail;
    }

    size_t cursor = 0;
    const char *name, *value = NULL;
    while ((name = host->option_next(host->ctx, &cursor, &value)) != NULL) {
        if (is_own_option(name)) continue;
        if (is_secret(name) && value != NULL) {
            /* One that could not be blanked out must not be used at all. */
            if (s->n_secrets == MAX_SECRETS) {
                snprintf(errbuf, errbuf_size,
                         "kafka sink: option %s: more than %d secret options (the sink blanks "
                         "each out of librdkafka's messages and has room for %d)",
                         name, MAX_SECRETS, MAX_SECRETS);
                goto fail;
            }
            s->secrets[s->n_secrets++] = value;
        }
        if (set_property(conf, name, value != NULL ? value : "", errbuf, errbuf_size) != 0) goto fail;
    }

    /* The sink's own wiring, set last so no option can replace it. */
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
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

static void free_sink(kafka_sink_t *s) {
    if (s->rk != NULL) rd_kafka_destroy(s->rk);
    free(s->inflight.slots);
    free(s->suspects.slots);
    free(s);
}

/* ----------------------------------------------------------------------------
 * The callbacks
 * ------------------------------------------------------------------------- */

static int kafka_open(const outbox_sink_host_t *host, void **state, char *errbuf,
                      size_t errbuf_size) {
    const char *value;
    long long open_timeout, flush_timeout;
    null_key_t null_key;
    char why[512];

    /* The sink's own options: a bad value is a configuration error. */
    value = kafka_option(host, "null_key");
    if (value != NULL && strcmp(value, "type") == 0) {
        null_key = NULL_KEY_TYPE;
    } else if (value != NULL && strcmp(value, "none") == 0) {
        null_key = NULL_KEY_NONE;
    } else {
        snprintf(errbuf, errbuf_size, "kafka sink: option null_key: \"%s\" is not type or none",
                 value ? value : "");
        return OUTBOX_SINK_FATAL;
    }
    value = kafka_option(host, "open_timeout_ms");
    if (value == NULL || parse_int(value, 0, 600000, &open_timeout) != 0) {
        snprintf(errbuf, errbuf_size,
                 "kafka sink: option open_timeout_ms: \"%s\" is not a whole number from 0 to 600000",
                 value ? value : "");
        return OUTBOX_SINK_FATAL;
    }
    value = kafka_option(host, "flush_timeout_ms");
    if (value == NULL || parse_int(value, 0, 600000, &flush_timeout) != 0) {
        snprintf(errbuf, errbuf_size,
                 "kafka sink: option flush_timeout_ms: \"%s\" is not a whole number from 0 to 600000",
                 value ? value : "");
        return OUTBOX_SINK_FATAL;
    }
    const char *servers = host->option(host->ctx, "bootstrap.servers");
    if (servers == NULL || servers[0] == '\0') {
        snprintf(errbuf, errbuf_size, "kafka sink: option bootstrap.servers is required "
                 "(host:port of one or more brokers)");
        return OUTBOX_SINK_FATAL;
    }

    kafka_sink_t *s = calloc(1, sizeof *s);
    if (s == NULL || inflight_init(&s->inflight) != 0 || inflight_init(&s->suspects) != 0) {
        if (s != NULL) free(s->inflight.slots);
        free(s);
        snprintf(errbuf, errbuf_size, "kafka sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    s->host = host;
    s->null_key = null_key;
    s->flush_timeout_ms = (int)flush_timeout;

    rd_kafka_conf_t *conf = build_conf(s, errbuf, errbuf_size);
    if (conf == NULL) {
        free_sink(s);
        return OUTBOX_SINK_FATAL;
    }
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
     * idempotence, ...): a refusal there is a configuration error too. On
     * success it owns conf. */
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (s->rk == NULL) {
        char clean[512];
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka sink: cannot create the producer: %s",
                 redact(s, why, clean, sizeof clean));
        free_sink(s);
        return OUTBOX_SINK_FATAL;
    }

    /* librdkafka connects lazily: without this, an unreachable cluster
     * would only show as deliveries timing out a minute later. */
    int n_brokers = 0;
    if (open_timeout > 0) {
        atomic_store(&s->opening, 1);
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
                     servers, open_timeout, s->last_error, hint);
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
static int produce_alone(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                         size_t errbuf_size);

/* Produces one event. Returns OK when librdkafka took it (or has it from
 * before), or when it was acked FATAL here; RETRY or FATAL (with errbuf)
 * when publish must stop. */
static int produce_one(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                       size_t errbuf_size) {
    char error[600], why[96];

    if (!check_topic_name(ev->destination, why, sizeof why)) {
        char topic[300], type[100];
        outbox_sink_quote(ev->destination, 100, topic, sizeof topic);
        outbox_sink_quote(ev->type != NULL ? ev->type : "", 40, type, sizeof type);
        snprintf(error, sizeof error,
                 "kafka sink: event of type \"%s\": its route expanded to topic \"%s\", which "
                 "%s: not a valid Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not . or ..)",
                 type, topic, why);
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return OUTBOX_SINK_OK;
    }
    /* Still in librdkafka from before a RETRY: its delivery report will
     * ack it (see inflight_t). */
    if (inflight_has(&s->inflight, ev->seq)) return OUTBOX_SINK_OK;
    if (inflight_has(&s->suspects, ev->seq)) return produce_alone(s, ev, errbuf, errbuf_size);
    return produce(s, ev, errbuf, errbuf_size);
}

/* Sends a suspect (see is_batch_refusal) on its own: waits until nothing
 * else is in flight, so that librdkafka cannot batch it with anything,
 * produces it and waits for its delivery report. This blocks publish, but
 * only after the broker refused a batch, and for a round trip per event. */
static int produce_alone(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                         size_t errbuf_size) {
    uint64_t seq;
    inflight_take(&s->suspects, (uintptr_t)ev->seq, &seq);
    rd_kafka_flush(s->rk, ISOLATE_WAIT_MS);
    /* Still something in flight (a slow broker): send it as usual; if the
     * batch is refused again it becomes a suspect again. */
    s->isolating = s->inflight.count == 0;
    s->isolated_seq = ev->seq;
    int rc = produce(s, ev, errbuf, errbuf_size);
    if (rc == OUTBOX_SINK_OK && s->isolating) rd_kafka_flush(s->rk, ISOLATE_WAIT_MS);
    s->isolating = 0;
    return rc;
}

/* Hands one event to librdkafka. Returns as produce_one. */
static int produce(kafka_sink_t *s, const outbox_sink_event_t *ev, char *errbuf,
                   size_t errbuf_size) {
    char error[600], created[64];
    const char *key = ev->key;
    if (key == NULL && s->null_key == NULL_KEY_TYPE) key = ev->type;
    size_t key_len = key != NULL ? strlen(key) : 0;

    rd_kafka_headers_t *headers = rd_kafka_headers_new(3 + ev->n_headers);
    format_time(ev->created_ms, created, sizeof created);
    rd_kafka_header_add(headers, "outbox-id", -1, ev->id, -1);
    rd_kafka_header_add(headers, "outbox-type", -1, ev->type, -1);
    rd_kafka_header_add(headers, "outbox-created", -1, created, -1);
    for (size_t i = 0; i < ev->n_headers; i++)
        rd_kafka_header_add(headers, ev->headers[i].name, -1, ev->headers[i].value, -1);

    if (inflight_add(&s->inflight, ev->seq) != 0) {
        rd_kafka_headers_destroy(headers);
        snprintf(errbuf, errbuf_size, "kafka sink: out of memory (%zu events in flight)",
                 s->inflight.count);
        return OUTBOX_SINK_RETRY;
    }
    /* The opaque carries the seq's low bits, which find it in the table. */
    rd_kafka_resp_err_t err = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(ev->destination), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)ev->payload, ev->payload_len), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)ev->seq), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->flush_timed_out = 0;
        return OUTBOX_SINK_OK;
    }

    /* Not taken: no delivery report will come, and the headers are ours. */
    uint64_t seq;
    inflight_take(&s->inflight, (uintptr_t)ev->seq, &seq);
    rd_kafka_headers_destroy(headers);
    switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        snprintf(errbuf, errbuf_size,
                 "kafka sink: librdkafka's queue is full (%zu events waiting for delivery; "
                 "queue.buffering.max.messages / queue.buffering.max.kbytes)",
                 s->inflight.count);
        return OUTBOX_SINK_RETRY;
    case RD_KAFKA_RESP_ERR__FATAL: {
        char fatal[512];
        rd_kafka_resp_err_t code = rd_kafka_fatal_error(s->rk, fatal, sizeof fatal);
        char clean[512];
        if (!s->fatal)
            snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s (%s)",
                     redact(s, fatal, clean, sizeof clean), rd_kafka_err2name(code));
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
        ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
        return OUTBOX_SINK_OK;
    default:
        if (is_permanent(err)) {
            snprintf(error, sizeof error, "kafka: topic %s: %s (%s)", ev->destination,
                     rd_kafka_err2str(err), rd_kafka_err2name(err));
            ack(s, ev->seq, OUTBOX_SINK_FATAL, error);
            return OUTBOX_SINK_OK;
        }
        snprintf(errbuf, errbuf_size, "kafka sink: topic %s: %s (%s)", ev->destination,
                 rd_kafka_err2str(err), rd_kafka_err2name(err));
        return OUTBOX_SINK_RETRY;
    }
}

/* Queues the batch in librdkafka and returns: the acks come from the
 * delivery reports, served by poll and flush. It stops at the first event
 * librdkafka cannot take (queue full: RETRY); the events before it are
 * produced and will be acked by their reports, the rest are published
 * again by outboxd. */
static int kafka_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                         size_t errbuf_size) {
    kafka_sink_t *s = state;

    if (s->fatal) {
        snprintf(errbuf, errbuf_size, "kafka sink: fatal producer error: %s (recreating the producer)",
                 s->fatal_reason);
        return OUTBOX_SINK_FATAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = produce_one(s, &events[i], errbuf, errbuf_size);
        if (rc != OUTBOX_SINK_OK) return rc;
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
    return OUTBOX_SINK_OK;
}

static int kafka_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    kafka_sink_t *s = state;

    /* rd_kafka_flush serves the delivery reports (the acks) as they come. */
    rd_kafka_flush(s->rk, timeout_ms);
    rd_kafka_poll(s->rk, 0);
    if (s->inflight.count == 0) return OUTBOX_SINK_OK;
    s->flush_timed_out = 1;
    snprintf(errbuf, errbuf_size, "kafka sink: %zu events not delivered within %d ms%s%s",
             s->inflight.count, timeout_ms, s->last_error[0] ? "; last error: " : "", s->last_error);
    return OUTBOX_SINK_RETRY;
}

/* Delivers what it can within flush_timeout_ms, drops the rest (acked
 * RETRY: outboxd publishes those events again), destroys the producer. */
static void kafka_close(void *state) {
    kafka_sink_t *s = state;

    if (s->inflight.count > 0 && !s->fatal && !s->flush_timed_out)
        rd_kafka_flush(s->rk, s->flush_timeout_ms);
    if (s->inflight.count > 0) {
        s->host->log(s->host->ctx, OUTBOX_SINK_LOG_WARNING,
                     "closing with %zu events not delivered: outboxd publishes them again",
                     s->inflight.count);
        /* Their delivery reports come with __PURGE_QUEUE/_INFLIGHT:
         * RETRY acks. Purging also keeps rd_kafka_destroy from waiting for
         * them. */
        rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(s->rk, 0);
    }
    free_sink(s);
}

OUTBOX_SINK_PLUGIN(.name = "kafka", .version = "1.0.0",
                   .description = "one Kafka message per event (librdkafka, idempotent producer)",
                   .options = kafka_options, .open = kafka_open, .publish = kafka_publish,
                   .poll = kafka_poll, .flush = kafka_flush, .close = kafka_close)
