/*
 * bench_raw.c - the write ceiling: N order events written to a destination
 * with the broker's own client library, without outboxd.
 *
 *     bench_raw file  --events N --path P                  [--batch 500]
 *     bench_raw kafka --events N --brokers B --topic T     [--batch 500]
 *     bench_raw redis --events N --url U --stream S        [--batch 500]
 *     bench_raw nats  --events N --url U --subject SUBJ    [--stream NAME]
 *
 * Each writer does per event what the matching sink does (the same bytes,
 * headers and client settings), so that outboxd's rate divided by this one
 * is the price of the outbox alone. What the sinks do on top for errors
 * and restarts (tables of events in flight, retries, cut-backs) is left
 * out: it is bookkeeping, not transport.
 *
 * The messages are built before the clock starts (bench_msg_make: what
 * outboxd hands the sink); the clock runs from the first send to the last
 * acknowledgement. --batch is outboxd's batch size: the file writer fsyncs
 * once per batch, the redis writer pipelines a batch, the kafka writer
 * serves delivery reports between batches. Prints
 *     RESULT events=N seconds=S rate=R
 */
#include "bench.h"

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <nats/nats.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *path;                    /* file */
    const char *brokers, *topic;         /* kafka */
    const char *url, *stream, *subject;  /* redis (url, stream), nats (url, subject, stream) */
    size_t batch;
} raw_opts_t;

/* The sinks write `created` as ISO-8601 UTC with milliseconds. */
static void format_created(int64_t ms, char *out, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static const char *need(int argc, char **argv, const char *name) {
    const char *value = bench_arg(argc, argv, name, NULL);
    if (value == NULL) bench_die("%s is required for this sink", name);
    return value;
}

/* ----------------------------------------------------------------------------
 * file: one JSON line per event, one write() each, an fsync per batch
 * ------------------------------------------------------------------------- */

/* Appends n bytes to the line at *o, which has room for them (file_line
 * checks the whole line's length first). */
static void put(char **o, const void *bytes, size_t n) {
    memcpy(*o, bytes, n);
    *o += n;
}
#define PUT_LITERAL(o, literal) put((o), (literal), sizeof(literal) - 1)

/* The last second format_created wrote: the events of a batch are created
 * within a few milliseconds, so a hand-written loop (and the file sink)
 * formats the date once per second and only the milliseconds per event. */
typedef struct {
    int64_t sec; /* -1: none yet (the bench's events are after 1970) */
    char text[32];
} created_cache_t;

/* The file sink's line (sinks/file/file.c, format_line), built as lean as
 * a hand-written loop can: each piece copied with its known length, the
 * date formatted once per second. The sink's escaping is left out: ids,
 * keys and types of the bench events are plain ASCII, and relaxed JSON of
 * the payload has no line breaks to replace. (An snprintf of the whole
 * line, as here until 2026-12, cost more than the sink's own formatting,
 * which flattered the sink: this is the ceiling.) */
static size_t file_line(char *buf, size_t size, const bench_msg_t *m, const char *path,
                        size_t path_len, created_cache_t *created) {
    size_t id_len = strlen(m->id), type_len = strlen(m->type), key_len = strlen(m->key);
    if (id_len + type_len + key_len + path_len + m->payload_len + 128 > size)
        bench_die("file: event %s does not fit a line buffer", m->id);
    int64_t sec = m->created_ms / 1000;
    if (sec != created->sec) {
        format_created(m->created_ms, created->text, sizeof created->text);
        created->sec = sec;
    }
    int milli = (int)(m->created_ms % 1000);

    char *o = buf;
    PUT_LITERAL(&o, "{\"id\":\"");
    put(&o, m->id, id_len);
    PUT_LITERAL(&o, "\",\"type\":\"");
    put(&o, m->type, type_len);
    PUT_LITERAL(&o, "\",\"key\":\"");
    put(&o, m->key, key_len);
    PUT_LITERAL(&o, "\",\"created\":\"");
    put(&o, created->text, 20); /* "2026-11-26T18:45:25." */
    *o++ = (char)('0' + milli / 100);
    *o++ = (char)('0' + milli / 10 % 10);
    *o++ = (char)('0' + milli % 10);
    PUT_LITERAL(&o, "Z\",\"destination\":\"");
    put(&o, path, path_len);
    PUT_LITERAL(&o, "\",\"data\":");
    put(&o, m->payload, m->payload_len);
    PUT_LITERAL(&o, ",\"headers\":{}}\n");
    return (size_t)(o - buf);
}

static int64_t raw_file(const raw_opts_t *o, const bench_msg_t *m, size_t n) {
    char line[4096];
    created_cache_t created = {.sec = -1};
    size_t path_len = strlen(o->path);
    int fd = open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) bench_die("file: cannot open %s: %s", o->path, strerror(errno));

    int64_t start = bench_mono_ns();
    for (size_t i = 0; i < n; i++) {
        size_t len = file_line(line, sizeof line, &m[i], o->path, path_len, &created);
        ssize_t written = write(fd, line, len);
        if (written != (ssize_t)len)
            bench_die("file: cannot write to %s: %s", o->path,
                      written < 0 ? strerror(errno) : "short write");
        if ((i + 1) % o->batch == 0 || i + 1 == n) {
            if (fsync(fd) != 0) bench_die("file: cannot fsync %s: %s", o->path, strerror(errno));
        }
    }
    int64_t elapsed = bench_mono_ns() - start;
    close(fd);
    return elapsed;
}

/* ----------------------------------------------------------------------------
 * kafka: rd_kafka_producev per event, delivery reports as the acks
 * ------------------------------------------------------------------------- */

/* The kafka sink's defaults (kafka_defaults in sinks/kafka/kafka.c). */
static const char *const kafka_conf[][2] = {
    {"enable.idempotence", "true"}, {"acks", "all"},
    {"compression.type", "none"},   {"linger.ms", "5"},
    {"message.timeout.ms", "60000"}, {"log.connection.close", "false"},
};

typedef struct {
    size_t delivered, failed;
    char first_error[256];
} kafka_acks_t;

static void kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    kafka_acks_t *acks = opaque;
    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        acks->delivered++;
    } else if (acks->failed++ == 0) {
        snprintf(acks->first_error, sizeof acks->first_error, "%s", rd_kafka_err2str(msg->err));
    }
}

/* Hands one event to librdkafka as the sink does: key, payload, the
 * outbox-* headers, copied (RD_KAFKA_MSG_F_COPY). A full queue is waited
 * out by serving delivery reports. */
static void kafka_produce(rd_kafka_t *rk, const char *topic, const bench_msg_t *m) {
    char created[32];
    format_created(m->created_ms, created, sizeof created);
    for (;;) {
        rd_kafka_headers_t *headers = rd_kafka_headers_new(3);
        rd_kafka_header_add(headers, "outbox-id", -1, m->id, -1);
        rd_kafka_header_add(headers, "outbox-type", -1, m->type, -1);
        rd_kafka_header_add(headers, "outbox-created", -1, created, -1);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, strlen(m->key)), RD_KAFKA_V_VALUE(m->payload, m->payload_len),
            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        /* Not taken: the headers are still ours. */
        rd_kafka_headers_destroy(headers);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            bench_die("kafka: cannot produce to topic %s: %s", topic, rd_kafka_err2str(err));
        rd_kafka_poll(rk, 1);
    }
}

static int64_t raw_kafka(const raw_opts_t *o, const bench_msg_t *m, size_t n) {
    kafka_acks_t acks = {0};
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof err) != RD_KAFKA_CONF_OK)
        bench_die("kafka: bootstrap.servers: %s", err);
    for (size_t i = 0; i < sizeof kafka_conf / sizeof kafka_conf[0]; i++) {
        if (rd_kafka_conf_set(conf, kafka_conf[i][0], kafka_conf[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            bench_die("kafka: %s: %s", kafka_conf[i][0], err);
    }
    rd_kafka_conf_set_opaque(conf, &acks);
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) bench_die("kafka: cannot create a producer: %s", err);

    /* Connected, and the topic's leader known, before the clock starts:
     * outboxd's sink is warm too by the time it publishes. */
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (merr != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("kafka: no metadata for topic %s from %s: %s", o->topic, o->brokers, rd_kafka_err2str(merr));
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("kafka: topic %s: %s (run bench_dest prepare first)", o->topic,
                  rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    int64_t start = bench_mono_ns();
    for (size_t i = 0; i < n; i++) {
        kafka_produce(rk, o->topic, &m[i]);
        /* outboxd polls the sink between batches: the reports are served
         * as it would serve them. */
        if ((i + 1) % o->batch == 0) rd_kafka_poll(rk, 0);
    }
    while (acks.delivered + acks.failed < n) rd_kafka_flush(rk, 1000);
    int64_t elapsed = bench_mono_ns() - start;

    if (acks.failed > 0)
        bench_die("kafka: %zu of %zu messages to topic %s not delivered (first error: %s)", acks.failed,
                  n, o->topic, acks.first_error);
    rd_kafka_destroy(rk);
    return elapsed;
}

/* ----------------------------------------------------------------------------
 * redis: pipelined XADD, a batch at a time, every reply read
 * ------------------------------------------------------------------------- */

/* Connects as the redis sink does (its connect and command timeouts) to
 * a url of the form bench_redis_url takes. */
static redisContext *redis_connect(const char *url) {
    char host[256];
    int port, db;
    bench_redis_url(url, host, &port, &db);

    /* The sink's connect_timeout_ms and command_timeout_ms defaults. */
    redisContext *c = redisConnectWithTimeout(host, port, (struct timeval){2, 0});
    if (c == NULL || c->err)
        bench_die("redis: cannot connect to %s: %s", url, c ? c->errstr : "out of memory");
    redisSetTimeout(c, (struct timeval){10, 0});
    redisEnableKeepAlive(c);
    if (db != 0) {
        redisReply *r = redisCommand(c, "SELECT %d", db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            bench_die("redis: %s: SELECT %d: %s", url, db, r ? r->str : c->errstr);
        freeReplyObject(r);
    }
    return c;
}

/* The redis sink's command: XADD S * id I type T key K created MS payload P. */
static void redis_append_xadd(redisContext *c, const char *stream, const bench_msg_t *m) {
    char created[24];
    snprintf(created, sizeof created, "%" PRId64, m->created_ms);
    const char *argv[] = {"XADD", stream, "*", "id", m->id, "type", m->type, "key", m->key,
                          "created", created, "payload", m->payload};
    enum { ARGC = sizeof argv / sizeof argv[0] };
    size_t lens[ARGC];
    for (size_t k = 0; k < ARGC - 1; k++) lens[k] = strlen(argv[k]);
    lens[ARGC - 1] = m->payload_len; /* the payload goes with its length, as in the sink */
    if (redisAppendCommandArgv(c, ARGC, argv, lens) != REDIS_OK)
        bench_die("redis: cannot build XADD for stream %s: %s", stream, c->errstr);
}

static int64_t raw_redis(const raw_opts_t *o, const bench_msg_t *m, size_t n) {
    redisContext *c = redis_connect(o->url);

    int64_t start = bench_mono_ns();
    for (size_t first = 0; first < n; first += o->batch) {
        size_t count = n - first < o->batch ? n - first : o->batch;
        for (size_t i = 0; i < count; i++) redis_append_xadd(c, o->stream, &m[first + i]);
        for (size_t i = 0; i < count; i++) {
            redisReply *r = NULL;
            /* The first call sends the whole pipeline. */
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
                bench_die("redis: %s: connection lost: %s", o->url, c->errstr);
            if (r->type != REDIS_REPLY_STRING)
                bench_die("redis: XADD to stream %s: %s", o->stream,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
        }
    }
    int64_t elapsed = bench_mono_ns() - start;
    redisFree(c);
    return elapsed;
}

/* ----------------------------------------------------------------------------
 * nats: JetStream asynchronous publish, waiting for every PubAck
 * ------------------------------------------------------------------------- */

/* The nats sink's defaults: max_pending and ack_timeout_ms. */
#define NATS_MAX_PENDING 4096
#define NATS_ACK_TIMEOUT_MS 5000

/* Counted on libnats's thread; read after js_PublishAsyncComplete, which
 * returns only once the last handler has. */
typedef struct {
    atomic_size_t acked, failed;
    atomic_int first_error; /* a natsStatus */
} nats_acks_t;

static void nats_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    nats_acks_t *acks = closure;
    (void)js;
    if (pa != NULL) {
        atomic_fetch_add(&acks->acked, 1);
    } else if (atomic_fetch_add(&acks->failed, 1) == 0) {
        atomic_store(&acks->first_error, pae ? (int)pae->Err : (int)NATS_ERR);
    }
    natsMsg_Destroy(msg);
}

/* The message the sink builds (build_msg in sinks/nats/nats.c). */
static natsMsg *nats_message(const char *subject, const bench_msg_t *m) {
    char created[32];
    natsMsg *msg = NULL;
    format_created(m->created_ms, created, sizeof created);
    natsStatus st = natsMsg_Create(&msg, subject, NULL, m->payload, (int)m->payload_len);
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, "Nats-Msg-Id", m->id);
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, "Outbox-Id", m->id);
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, "Outbox-Type", m->type);
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, "Outbox-Key", m->key);
    if (st == NATS_OK) st = natsMsgHeader_Set(msg, "Outbox-Created", created);
    if (st != NATS_OK) bench_die("nats: cannot build a message: %s", natsStatus_GetText(st));
    return msg;
}

static int64_t raw_nats(const raw_opts_t *o, const bench_msg_t *m, size_t n) {
    nats_acks_t acks = {0};
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;

    natsStatus st = natsOptions_Create(&opts);
    if (st == NATS_OK) st = natsOptions_SetURL(opts, o->url);
    if (st == NATS_OK) st = natsOptions_SetName(opts, "bench_raw");
    if (st == NATS_OK) st = natsConnection_Connect(&nc, opts);
    if (st != NATS_OK) bench_die("nats: cannot connect to %s: %s", o->url, natsStatus_GetText(st));

    jsOptions_Init(&jo);
    jo.Wait = NATS_ACK_TIMEOUT_MS;
    jo.PublishAsync.MaxPending = NATS_MAX_PENDING;
    jo.PublishAsync.AckHandler = nats_on_puback;
    jo.PublishAsync.AckHandlerClosure = &acks;
    /* The sink waits 100 ms for room and then hands the batch back to
     * outboxd to publish again; here the publish simply waits for room. */
    jo.PublishAsync.StallWait = NATS_ACK_TIMEOUT_MS;
    st = natsConnection_JetStream(&js, nc, &jo);
    if (st != NATS_OK) bench_die("nats: JetStream on %s: %s", o->url, natsStatus_GetText(st));

    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = NATS_ACK_TIMEOUT_MS;
    po.ExpectStream = o->stream; /* NULL unless --stream, as the sink's option stream */

    int64_t start = bench_mono_ns();
    for (size_t i = 0; i < n; i++) {
        natsMsg *msg = nats_message(o->subject, &m[i]);
        po.MsgId = m[i].id;
        st = js_PublishMsgAsync(js, &msg, &po);
        natsMsg_Destroy(msg); /* NULL once libnats took it */
        if (st != NATS_OK)
            bench_die("nats: cannot publish to %s: %s", o->subject, natsStatus_GetText(st));
    }
    jsPubOptions complete;
    jsPubOptions_Init(&complete);
    complete.MaxWait = 60000;
    st = js_PublishAsyncComplete(js, &complete);
    int64_t elapsed = bench_mono_ns() - start;

    if (st != NATS_OK)
        bench_die("nats: %zu of %zu PubAcks for %s missing after 60 s: %s",
                  n - atomic_load(&acks.acked) - atomic_load(&acks.failed), n, o->subject,
                  natsStatus_GetText(st));
    if (atomic_load(&acks.failed) > 0)
        bench_die("nats: %zu of %zu publishes to %s failed (first: %s)", atomic_load(&acks.failed), n,
                  o->subject, natsStatus_GetText((natsStatus)atomic_load(&acks.first_error)));
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    /* libnats's own threads and memory, for valgrind's sake. */
    nats_CloseAndWait(0);
    return elapsed;
}

/* ----------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int64_t (*run)(const raw_opts_t *o, const bench_msg_t *m, size_t n);
} writers[] = {
    {"file", raw_file},
    {"kafka", raw_kafka},
    {"redis", raw_redis},
    {"nats", raw_nats},
};

static void usage(void) {
    fprintf(stderr,
            "usage: bench_raw file  --events N --path P                 [--batch 500]\n"
            "       bench_raw kafka --events N --brokers B --topic T    [--batch 500]\n"
            "       bench_raw redis --events N --url U --stream S       [--batch 500]\n"
            "       bench_raw nats  --events N --url U --subject SUBJ   [--stream NAME]\n");
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *sink = argv[1];
    size_t w = 0;
    while (w < sizeof writers / sizeof writers[0] && strcmp(writers[w].name, sink) != 0) w++;
    if (w == sizeof writers / sizeof writers[0]) usage();

    long long events = bench_arg_ll(argc, argv, "--events", 0);
    long long batch = bench_arg_ll(argc, argv, "--batch", 500);
    if (events < 1 || batch < 1) bench_die("--events and --batch must be at least 1");
    raw_opts_t o = {.batch = (size_t)batch};
    if (strcmp(sink, "file") == 0) {
        o.path = need(argc, argv, "--path");
    } else if (strcmp(sink, "kafka") == 0) {
        o.brokers = need(argc, argv, "--brokers");
        o.topic = need(argc, argv, "--topic");
    } else if (strcmp(sink, "redis") == 0) {
        o.url = need(argc, argv, "--url");
        o.stream = need(argc, argv, "--stream");
    } else {
        o.url = need(argc, argv, "--url");
        o.subject = need(argc, argv, "--subject");
        o.stream = bench_arg(argc, argv, "--stream", NULL);
    }

    size_t n = (size_t)events;
    bench_msg_t *m = calloc(n, sizeof *m);
    if (m == NULL) bench_die("out of memory for %zu events", n);
    for (size_t i = 0; i < n; i++) bench_msg_make(&m[i], i, bench_now_ns());

    int64_t elapsed = writers[w].run(&o, m, n);

    for (size_t i = 0; i < n; i++) bench_msg_free(&m[i]);
    free(m);
    double seconds = (double)elapsed / 1e9;
    printf("RESULT events=%zu seconds=%.6f rate=%.1f\n", n, seconds, (double)n / seconds);
    return 0;
}
