/*
 * bench_naive - the naive relay that outboxd is compared against: the
 * original module's approach, in C. One loop, and per event:
 *
 *   1. read the next event from a tailable + awaitData cursor on the log,
 *      in natural order from its start;
 *   2. produce it to Kafka and wait for its delivery report;
 *   3. write the checkpoint (update_one with upsert on O.checkpoints),
 *
 * before the next event: one Kafka round trip and one MongoDB round trip
 * an event, where outboxd keeps thousands of events in flight and writes a
 * checkpoint per thousand.
 *
 *   bench_naive --uri U --db D --outbox O --brokers B --topic T --events N
 *               [--seconds S] [--name NAME]
 *
 * Stops after N events or S seconds (no limit by default), whichever comes
 * first, and prints RESULT events=K seconds=S rate=R read_ms=.. produce_ms=..
 * checkpoint_ms=.. (the clock starts when the relay starts reading; the
 * last three say where an event's time went, on average).
 *
 * The messages are those of the kafka sink (key, relaxed Extended JSON of
 * data, headers outbox-id, outbox-type, outbox-created and the envelope's)
 * and the producer has the kafka sink's default settings, so that the two
 * differ only in how they drive it.
 */
#include "bench.h"

#include <librdkafka/rdkafka.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AWAIT_MS 100            /* awaitData wait: keeps --seconds responsive */
#define DELIVERY_TIMEOUT_MS 70000 /* past message.timeout.ms: the report always comes first */
#define CONNECT_TIMEOUT_MS 5000

typedef struct {
    mongoc_collection_t *log, *checkpoints;
    rd_kafka_t *rk;
    const char *topic, *name;
    char ns[300];               /* D.O, for messages */
    /* The delivery report of the one message in flight. */
    bool delivered;
    rd_kafka_resp_err_t delivery_err;
} relay_t;

/* ---- Kafka ---------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    relay_t *r = opaque;
    (void)rk;
    r->delivered = true;
    r->delivery_err = m->err;
}

static void set_property(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK)
        bench_die("kafka: %s=%s: %s", name, value, why);
}

/* A producer with the kafka sink's defaults (sinks/kafka/kafka.c,
 * kafka_defaults). linger.ms=5 is kept although one message at a time has
 * nothing to batch: rd_kafka_flush ignores linger.ms while it waits, so it
 * does not make each event wait 5 ms here, but a relay that polled for the
 * report instead would pay it on every event. */
static rd_kafka_t *new_producer(relay_t *r, const char *brokers) {
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"}, {"acks", "all"},
        {"compression.type", "none"},   {"linger.ms", "5"},
        {"message.timeout.ms", "60000"}, {"log.connection.close", "false"},
    };
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set_property(conf, "bootstrap.servers", brokers);
    set_property(conf, "client.id", "bench_naive");
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        set_property(conf, defaults[i][0], defaults[i][1]);
    rd_kafka_conf_set_opaque(conf, r);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        bench_die("kafka: cannot create the producer: %s", why);
    }
    /* As the sink's open does: an unreachable cluster is an error now, not
     * a minute of silence on the first event. */
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, CONNECT_TIMEOUT_MS);
    if (err)
        bench_die("kafka: no broker of %s answered within %d ms: %s", brokers, CONNECT_TIMEOUT_MS,
                  rd_kafka_err2str(err));
    rd_kafka_metadata_destroy(md);
    return rk;
}

/* created as the kafka sink writes it: ISO-8601 UTC with milliseconds. */
static void format_created(int64_t ms, char *out, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&secs, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* What the message is made of, read from the envelope. */
typedef struct {
    char id[25];
    const char *type, *key;
    char created[40];
    bson_iter_t headers;
    bool has_headers;
    char *payload; /* relaxed Extended JSON of data, as outboxd encodes it; bson_free */
    size_t payload_len;
} event_t;

static void parse_event(const bson_t *doc, const bson_oid_t *id, event_t *ev) {
    bson_iter_t it;
    memset(ev, 0, sizeof *ev);
    bson_oid_to_string(id, ev->id);
    ev->type = "";
    for (bson_iter_init(&it, doc); bson_iter_next(&it);) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "type") && BSON_ITER_HOLDS_UTF8(&it)) {
            ev->type = bson_iter_utf8(&it, NULL);
        } else if (!strcmp(k, "key") && BSON_ITER_HOLDS_UTF8(&it)) {
            ev->key = bson_iter_utf8(&it, NULL);
        } else if (!strcmp(k, "created") && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            format_created(bson_iter_date_time(&it), ev->created, sizeof ev->created);
        } else if (!strcmp(k, "headers") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            ev->has_headers = bson_iter_recurse(&it, &ev->headers);
        } else if (!strcmp(k, "data") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *buf;
            bson_t data;
            bson_iter_document(&it, &len, &buf);
            if (bson_init_static(&data, buf, len))
                ev->payload = bson_as_relaxed_extended_json(&data, &ev->payload_len);
        }
    }
    if (!ev->payload)
        bench_die("event %s in the log has no data document: not an envelope", ev->id);
}

/* The sink's headers, then the envelope's (strings only). */
static rd_kafka_headers_t *make_headers(event_t *ev) {
    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);
    rd_kafka_header_add(headers, "outbox-id", -1, ev->id, -1);
    rd_kafka_header_add(headers, "outbox-type", -1, ev->type, -1);
    rd_kafka_header_add(headers, "outbox-created", -1, ev->created, -1);
    while (ev->has_headers && bson_iter_next(&ev->headers))
        if (BSON_ITER_HOLDS_UTF8(&ev->headers))
            rd_kafka_header_add(headers, bson_iter_key(&ev->headers), -1, bson_iter_utf8(&ev->headers, NULL), -1);
    return headers;
}

/* Produces one envelope and waits for its delivery report. */
static void produce(relay_t *r, const bson_t *doc, const bson_oid_t *id) {
    event_t ev;
    parse_event(doc, id, &ev);
    /* The sink's default null_key=type. */
    const char *key = ev.key ? ev.key : ev.type;
    rd_kafka_headers_t *headers = make_headers(&ev);

    r->delivered = false;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->rk, RD_KAFKA_V_TOPIC(r->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(ev.payload, ev.payload_len),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    bson_free(ev.payload);
    if (err) {
        rd_kafka_headers_destroy(headers); /* not taken: still ours */
        bench_die("kafka: topic %s: cannot produce event %s: %s", r->topic, ev.id, rd_kafka_err2str(err));
    }
    /* The naive part: nothing else happens until the broker has it. */
    rd_kafka_flush(r->rk, DELIVERY_TIMEOUT_MS);
    if (!r->delivered)
        bench_die("kafka: topic %s: no delivery report for event %s within %d ms", r->topic, ev.id,
                  DELIVERY_TIMEOUT_MS);
    if (r->delivery_err)
        bench_die("kafka: topic %s: event %s not delivered: %s", r->topic, ev.id,
                  rd_kafka_err2str(r->delivery_err));
}

/* ---- MongoDB --------------------------------------------------------------- */

/* A tailable cursor that skips the events already relayed: a tailable find
 * on an empty log dies at once and has to be opened again. Counting is a
 * position only while the log is not trimmed under the relay, which the
 * harness sizes it for. */
/* No sort: natural order is a capped collection's default, and FerretDB
 * answers an explicit {$natural: 1} by sorting the whole log first (15 s
 * before the first event of a 200,000-event log, measured). */
static mongoc_cursor_t *open_cursor(relay_t *r, uint64_t skip) {
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("tailable", BCON_BOOL(true), "awaitData", BCON_BOOL(true), "maxAwaitTimeMS",
                            BCON_INT64(AWAIT_MS));
    if (skip > 0)
        BSON_APPEND_INT64(opts, "skip", (int64_t)skip);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(r->log, &filter, opts, NULL);
    bson_destroy(opts);
    bson_destroy(&filter);
    return cur;
}

static void write_checkpoint(relay_t *r, const bson_oid_t *id) {
    bson_error_t err;
    bson_t *selector = BCON_NEW("_id", BCON_UTF8(r->name));
    bson_t *update = BCON_NEW("$set", "{", "last_id", BCON_OID(id), "}");
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    if (!mongoc_collection_update_one(r->checkpoints, selector, update, opts, NULL, &err))
        bench_die("writing checkpoint %s into %s.checkpoints: %s", r->name, r->ns, err.message);
    bson_destroy(opts);
    bson_destroy(update);
    bson_destroy(selector);
}

/* ---- the relay ------------------------------------------------------------- */

/* Where the relay's time goes, in ns over all events. */
typedef struct {
    int64_t read, produce, checkpoint;
} spent_t;

/* Relays events until max or the deadline; returns how many. */
static uint64_t relay(relay_t *r, uint64_t max, int64_t deadline_ns, spent_t *spent) {
    uint64_t done = 0;
    while (done < max && bench_mono_ns() < deadline_ns) {
        mongoc_cursor_t *cur = open_cursor(r, done);
        const bson_t *doc;
        bson_error_t err;
        while (done < max && bench_mono_ns() < deadline_ns) {
            int64_t t0 = bench_mono_ns();
            bool got = mongoc_cursor_next(cur, &doc);
            int64_t t1 = bench_mono_ns();
            spent->read += t1 - t0;
            if (got) {
                bson_iter_t it;
                if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
                    bench_die("a document in %s has no ObjectId _id: not an outbox event", r->ns);
                bson_oid_t id;
                bson_oid_copy(bson_iter_oid(&it), &id);
                produce(r, doc, &id);
                int64_t t2 = bench_mono_ns();
                write_checkpoint(r, &id);
                spent->produce += t2 - t1;
                spent->checkpoint += bench_mono_ns() - t2;
                done++;
                continue;
            }
            if (mongoc_cursor_error(cur, &err))
                bench_die("reading %s: %s", r->ns, err.message);
            if (!mongoc_cursor_more(cur))
                break; /* dead cursor (empty log): open it again */
        }
        mongoc_cursor_destroy(cur);
        if (done < max) {
            struct timespec pause = {0, 10 * 1000000};
            nanosleep(&pause, NULL);
        }
    }
    return done;
}

int main(int argc, char **argv) {
    if (argc < 2 || bench_flag(argc, argv, "--help")) {
        fprintf(stderr, "usage: bench_naive --uri U --db D --outbox O --brokers B --topic T --events N "
                        "[--seconds S] [--name NAME]\n");
        return 2;
    }
    const char *db = bench_arg(argc, argv, "--db", NULL), *outbox = bench_arg(argc, argv, "--outbox", NULL);
    const char *uri_text = bench_arg(argc, argv, "--uri", NULL), *brokers = bench_arg(argc, argv, "--brokers", NULL);
    long long n = bench_arg_ll(argc, argv, "--events", 0);
    long long seconds = bench_arg_ll(argc, argv, "--seconds", 0);
    relay_t r = {.topic = bench_arg(argc, argv, "--topic", NULL), .name = bench_arg(argc, argv, "--name", "naive")};
    if (!uri_text || !db || !outbox || !brokers || !r.topic)
        bench_die("--uri, --db, --outbox, --brokers and --topic are required");
    if (n <= 0 || seconds < 0)
        bench_die("--events must be positive and --seconds not negative");

    mongoc_init();
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_text, &err);
    if (!uri)
        bench_die("--uri: %s", err.message);
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_client_set_appname(client, "bench_naive");
    char checkpoints[300];
    snprintf(checkpoints, sizeof checkpoints, "%s.checkpoints", outbox);
    snprintf(r.ns, sizeof r.ns, "%s.%s", db, outbox);
    r.log = mongoc_client_get_collection(client, db, outbox);
    r.checkpoints = mongoc_client_get_collection(client, db, checkpoints);
    r.rk = new_producer(&r, brokers);

    int64_t t0 = bench_mono_ns();
    int64_t deadline = seconds > 0 ? t0 + seconds * 1000000000LL : INT64_MAX;
    spent_t spent = {0};
    uint64_t done = relay(&r, (uint64_t)n, deadline, &spent);
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    double per = done ? 1e6 * (double)done : 1; /* ns -> ms per event */
    printf("RESULT events=%llu seconds=%.6f rate=%.1f read_ms=%.3f produce_ms=%.3f checkpoint_ms=%.3f\n",
           (unsigned long long)done, s, (double)done / s, (double)spent.read / per, (double)spent.produce / per,
           (double)spent.checkpoint / per);

    rd_kafka_destroy(r.rk);
    mongoc_collection_destroy(r.checkpoints);
    mongoc_collection_destroy(r.log);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return 0;
}
