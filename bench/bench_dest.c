/*
 * bench_dest.c - the destinations of the benchmark: make one fresh, count
 * what arrived, wait for a count, and consume as a reader would to measure
 * put-to-readable latency.
 *
 *     bench_dest COMMAND SINK [options]
 *
 * COMMAND is prepare, count, wait or latency; SINK and its options:
 *     kafka --brokers B --topic T [--partitions P]    (P for prepare, default 1)
 *     redis --url redis://host:port[/db] --stream S
 *     nats  --url nats://host:port --stream NAME [--subject SUBJ]
 *                                      (SUBJ for prepare and latency)
 *     file  --path P
 * and for wait and latency: --events N [--timeout-s S] (default 60 s);
 * latency also takes --warmup K: the first K messages are read but not
 * measured (a new topic's first messages wait for its metadata).
 *
 * What each prints on stdout (diagnostics go to stderr):
 *     prepare  RESULT ok=1                 a fresh, empty destination
 *     count    RESULT count=N              messages at the destination now
 *     wait     RESULT count=C at_ns=T      once count >= N; T = bench_now_ns()
 *                                          when it was seen; exit 1 at the timeout
 *     latency  READY, then                 once subscribed (start the producer then)
 *              RESULT received=K count=.. p50_ms=.. p99_ms=.. max_ms=..
 *                                          bench_now_ns() - put_ns of each of the
 *                                          first N new messages, or those before
 *                                          the timeout
 */
#include "bench.h"

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <nats/nats.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *brokers, *topic;         /* kafka */
    const char *url, *stream, *subject;  /* redis (url, stream), nats */
    const char *path;                    /* file */
    int partitions;
    long long events;
    int64_t timeout_ns;
    char where[512]; /* the destination, for messages: "kafka topic T at B" */
} dest_t;

/* An open destination: what count needs, kept open so that wait can count
 * every 5 ms cheaply. Only the sink's own fields are used. */
typedef struct {
    rd_kafka_t *rk;  /* kafka: a consumer, which also counts */
    int partitions;
    redisContext *redis;
    natsConnection *nc;
    jsCtx *js;
    int fd;          /* file: -1 until the file exists */
    long long lines; /* file: newlines read so far */
} conn_t;

#define POLL_MAX_MS 50 /* wait_for_count */
#define POLL_MIN_MS 1

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Milliseconds left until deadline (monotonic ns), at most cap. */
static int ms_left(int64_t deadline, int cap) {
    int64_t left = (deadline - bench_mono_ns() + 999999) / 1000000;
    if (left < 0) return 0;
    return left < cap ? (int)left : cap;
}

/* The harness starts the producer once it reads this line. */
static void say_ready(void) {
    puts("READY");
    fflush(stdout);
}

/* One message's put-to-readable latency; now was read when it arrived. */
static void sample(bench_samples_t *s, const dest_t *d, int64_t now, const char *text, size_t len) {
    int64_t put_ns = bench_put_ns_of(text, len);
    if (put_ns < 0) bench_die("%s: a message without put_ns: %.*s", d->where, (int)len, text);
    bench_samples_add(s, now - put_ns);
}

/* ----------------------------------------------------------------------------
 * kafka
 * ------------------------------------------------------------------------- */

static rd_kafka_t *kafka_client(const dest_t *d, rd_kafka_type_t type, const char *const (*conf)[2],
                                size_t n_conf) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", d->brokers, err, sizeof err) != RD_KAFKA_CONF_OK)
        bench_die("kafka: bootstrap.servers: %s", err);
    for (size_t i = 0; i < n_conf; i++) {
        if (rd_kafka_conf_set(c, conf[i][0], conf[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            bench_die("kafka: %s: %s", conf[i][0], err);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (rk == NULL) bench_die("kafka: cannot create a client for %s: %s", d->brokers, err);
    return rk;
}

/* The topic's partition count as metadata shows it; 0 when it has none. */
static int kafka_partitions(rd_kafka_t *rk, const char *topic) {
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Creates the topic. An existing one is an error: the harness names each
 * run's topic afresh, so it would hold another run's messages. */
static void kafka_prepare(const dest_t *d) {
    char err[512];
    rd_kafka_t *rk = kafka_client(d, RD_KAFKA_PRODUCER, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(d->topic, d->partitions, 1, err, sizeof err);
    if (nt == NULL) bench_die("%s: %s", d->where, err);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (ev == NULL) bench_die("%s: no answer to CreateTopics within 60 s", d->where);
    if (rd_kafka_event_error(ev))
        bench_die("%s: cannot create it: %s", d->where, rd_kafka_event_error_string(ev));
    size_t n;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("%s: cannot create it: %s", d->where, rd_kafka_topic_result_error_string(results[i]));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);

    /* The controller has it; producers need the broker's metadata too. */
    int seen = 0;
    for (int i = 0; i < 200 && seen != d->partitions; i++) {
        if ((seen = kafka_partitions(rk, d->topic)) != d->partitions) nap_ms(50);
    }
    if (seen != d->partitions)
        bench_die("%s: metadata shows %d of %d partitions after 10 s", d->where, seen, d->partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

/* A consumer that is only ever assigned partitions: it never joins its
 * group (librdkafka 2.0 wants a group.id for assign all the same) and
 * commits nothing, so no rebalance delays it. The fetch settings keep the
 * broker from holding a fetch back for more data: a message is handed
 * over as soon as it is readable (isolation.level stays the default). */
static void kafka_open(const dest_t *d, conn_t *c) {
    static const char *const conf[][2] = {
        {"group.id", "bench_dest"},
        {"fetch.wait.max.ms", "5"},
        {"fetch.min.bytes", "1"},
        {"enable.partition.eof", "false"},
        {"enable.auto.commit", "false"},
    };
    c->rk = kafka_client(d, RD_KAFKA_CONSUMER, conf, sizeof conf / sizeof conf[0]);
    c->partitions = kafka_partitions(c->rk, d->topic);
    if (c->partitions == 0) bench_die("%s: no such topic (run bench_dest prepare first)", d->where);
}

/* Partition p's offsets: the oldest message's, and the next one's. */
static void kafka_watermarks(const dest_t *d, conn_t *c, int p, int64_t *low, int64_t *high) {
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(c->rk, d->topic, p, low, high, 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("%s: partition %d: cannot read its watermarks: %s", d->where, p, rd_kafka_err2str(err));
}

/* Sums high - low watermark over the partitions. Without transactions
 * (the sink produces none) every offset is a message. */
static long long kafka_count(const dest_t *d, conn_t *c) {
    long long total = 0;
    for (int p = 0; p < c->partitions; p++) {
        int64_t low, high;
        kafka_watermarks(d, c, p, &low, &high);
        total += high - low;
    }
    return total;
}

static void kafka_close(conn_t *c) {
    rd_kafka_destroy(c->rk);
}

static void kafka_latency(const dest_t *d, conn_t *c, bench_samples_t *s) {
    /* Each partition from its high watermark, read before READY, rather
     * than RD_KAFKA_OFFSET_END: librdkafka resolves END only when the fetch
     * starts, which may be after the producer's first messages. */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(c->partitions);
    for (int p = 0; p < c->partitions; p++) {
        int64_t low, high;
        kafka_watermarks(d, c, p, &low, &high);
        rd_kafka_topic_partition_list_add(list, d->topic, p)->offset = high;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("%s: cannot assign its partitions: %s", d->where, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
    say_ready();

    int64_t deadline = bench_mono_ns() + d->timeout_ns;
    while ((long long)s->n < d->events && bench_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, ms_left(deadline, 100));
        if (m == NULL) continue;
        int64_t now = bench_now_ns();
        /* Consumer errors (a broker connection lost) are librdkafka's to
         * recover from; a message that never comes shows in received. */
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            fprintf(stderr, "bench_dest: %s: %s\n", d->where, rd_kafka_message_errstr(m));
        else
            sample(s, d, now, m->payload, m->len);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c->rk);
}

/* ----------------------------------------------------------------------------
 * redis
 * ------------------------------------------------------------------------- */

static redisReply *redis_command(const dest_t *d, redisContext *c, int argc, const char **argv) {
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL) bench_die("%s: %s: %s", d->where, argv[0], c->errstr);
    if (r->type == REDIS_REPLY_ERROR) bench_die("%s: %s: %s", d->where, argv[0], r->str);
    return r;
}

/* Connects to a url of the form bench_redis_url takes. */
static void redis_open(const dest_t *d, conn_t *c) {
    char host[256];
    int port, db;
    bench_redis_url(d->url, host, &port, &db);

    c->redis = redisConnectWithTimeout(host, port, (struct timeval){2, 0});
    if (c->redis == NULL || c->redis->err)
        bench_die("redis: cannot connect to %s: %s", d->url, c->redis ? c->redis->errstr : "out of memory");
    if (db != 0) {
        char number[16];
        snprintf(number, sizeof number, "%d", db);
        const char *argv[] = {"SELECT", number};
        freeReplyObject(redis_command(d, c->redis, 2, argv));
    }
}

static void redis_prepare(const dest_t *d) {
    conn_t c = {0};
    redis_open(d, &c);
    const char *argv[] = {"DEL", d->stream};
    freeReplyObject(redis_command(d, c.redis, 2, argv));
    redisFree(c.redis);
}

static long long redis_count(const dest_t *d, conn_t *c) {
    const char *argv[] = {"XLEN", d->stream};
    redisReply *r = redis_command(d, c->redis, 2, argv);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static void redis_close(conn_t *c) {
    redisFree(c->redis);
}

/* The payload field of a stream entry [id, [field, value, ...]]. */
static const redisReply *redis_payload(const redisReply *entry) {
    const redisReply *fields = entry->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, "payload") == 0) return fields->element[i + 1];
    }
    return NULL;
}

static void redis_latency(const dest_t *d, conn_t *c, bench_samples_t *s) {
    /* Read on from the last entry there is before READY. XREAD's "$"
     * would mean the last entry when the first XREAD arrives, which may
     * be after the producer's first entries. */
    char last[64] = "0-0", block[16];
    const char *range[] = {"XREVRANGE", d->stream, "+", "-", "COUNT", "1"};
    redisReply *r = redis_command(d, c->redis, 6, range);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(last, sizeof last, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    say_ready();

    int64_t deadline = bench_mono_ns() + d->timeout_ns;
    while ((long long)s->n < d->events && bench_mono_ns() < deadline) {
        /* BLOCK returns as soon as an entry is there; the 1 s bound only
         * lets the loop see its deadline. */
        snprintf(block, sizeof block, "%d", ms_left(deadline, 1000) + 1);
        const char *argv[] = {"XREAD", "COUNT", "1000", "BLOCK", block, "STREAMS", d->stream, last};
        r = redis_command(d, c->redis, 8, argv);
        int64_t now = bench_now_ns();
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            const redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                const redisReply *payload = redis_payload(entries->element[i]);
                if (payload == NULL) bench_die("%s: an entry without a payload field", d->where);
                sample(s, d, now, payload->str, payload->len);
            }
            if (entries->elements > 0)
                snprintf(last, sizeof last, "%s", entries->element[entries->elements - 1]->element[0]->str);
        }
        freeReplyObject(r);
    }
}

/* ----------------------------------------------------------------------------
 * nats
 * ------------------------------------------------------------------------- */

static void nats_open(const dest_t *d, conn_t *c) {
    natsStatus st = natsConnection_ConnectTo(&c->nc, d->url);
    if (st != NATS_OK) bench_die("nats: cannot connect to %s: %s", d->url, natsStatus_GetText(st));
    st = natsConnection_JetStream(&c->js, c->nc, NULL);
    if (st != NATS_OK) bench_die("nats: JetStream on %s: %s", d->url, natsStatus_GetText(st));
}

static void nats_close(conn_t *c) {
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    /* libnats's own threads and memory, for valgrind's sake. */
    nats_CloseAndWait(0);
}

static const char *need_subject(const dest_t *d) {
    if (d->subject == NULL) bench_die("nats: --subject is required for prepare and latency");
    return d->subject;
}

/* The stream as the nats sink creates one (ensure_stream in
 * sinks/nats/nats.c): the subjects, file storage, its default duplicate
 * window of 120 s, nats-server's defaults for the rest. */
static void nats_prepare(const dest_t *d) {
    conn_t c = {0};
    jsErrCode jerr = 0;
    const char *subjects[] = {need_subject(d)};
    nats_open(d, &c);
    natsStatus st = js_DeleteStream(c.js, d->stream, NULL, &jerr);
    if (st != NATS_OK && st != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        bench_die("%s: cannot delete it: %s (%d)", d->where, natsStatus_GetText(st), (int)jerr);

    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsStreamConfig_Init(&cfg);
    cfg.Name = d->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = (int64_t)120 * 1000000000;
    st = js_AddStream(&si, c.js, &cfg, NULL, &jerr);
    if (st != NATS_OK)
        bench_die("%s: cannot create it for subject %s: %s (%d)", d->where, d->subject,
                  natsStatus_GetText(st), (int)jerr);
    jsStreamInfo_Destroy(si);
    nats_close(&c);
}

static long long nats_count(const dest_t *d, conn_t *c) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, c->js, d->stream, NULL, &jerr);
    if (st != NATS_OK)
        bench_die("%s: cannot read its info: %s (%d)", d->where, natsStatus_GetText(st), (int)jerr);
    long long n = (long long)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* An ordered push consumer delivering only new messages: it reads what
 * the stream stored, so "readable" means stored, with no acks and no pull
 * round trips in the way. Creating it is synchronous, so the consumer's
 * start is fixed before READY. */
static void nats_latency(const dest_t *d, conn_t *c, bench_samples_t *s) {
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = d->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverNew;
    natsStatus st = js_SubscribeSync(&sub, c->js, need_subject(d), NULL, &so, &jerr);
    if (st != NATS_OK)
        bench_die("%s: cannot subscribe to %s: %s (%d)", d->where, d->subject, natsStatus_GetText(st),
                  (int)jerr);
    /* A burst of messages must not be dropped as a slow consumer's. */
    natsSubscription_SetPendingLimits(sub, -1, -1);
    say_ready();

    int64_t deadline = bench_mono_ns() + d->timeout_ns;
    while ((long long)s->n < d->events && bench_mono_ns() < deadline) {
        natsMsg *m = NULL;
        st = natsSubscription_NextMsg(&m, sub, ms_left(deadline, 100) + 1);
        int64_t now = bench_now_ns();
        if (st == NATS_TIMEOUT) continue;
        if (st != NATS_OK) bench_die("%s: reading %s: %s", d->where, d->subject, natsStatus_GetText(st));
        sample(s, d, now, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
    /* Unsubscribe deletes the ephemeral consumer; Destroy alone would not. */
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/* ----------------------------------------------------------------------------
 * file
 * ------------------------------------------------------------------------- */

static void file_prepare(const dest_t *d) {
    if (unlink(d->path) != 0 && errno != ENOENT)
        bench_die("%s: cannot remove it: %s", d->where, strerror(errno));
}

static void file_open(const dest_t *d, conn_t *c) {
    (void)d;
    c->fd = -1;
    c->lines = 0;
}

/* Reads only what was appended since the last call. A file that does not
 * exist yet has no lines. */
static long long file_count(const dest_t *d, conn_t *c) {
    char buf[65536];
    ssize_t got;
    if (c->fd < 0 && (c->fd = open(d->path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno != ENOENT) bench_die("%s: cannot open it: %s", d->where, strerror(errno));
        return 0;
    }
    while ((got = read(c->fd, buf, sizeof buf)) > 0) {
        const char *p = buf, *end = buf + got;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            c->lines++;
            p++;
        }
    }
    if (got < 0) bench_die("%s: cannot read it: %s", d->where, strerror(errno));
    return c->lines;
}

static void file_close(conn_t *c) {
    if (c->fd >= 0) close(c->fd);
}

/* Samples every whole line in buf[0..*len) and keeps the partial last
 * one at the start of buf. */
static void file_take_lines(const dest_t *d, char *buf, size_t *len, int64_t now, bench_samples_t *s) {
    char *start = buf, *nl;
    while ((nl = memchr(start, '\n', (size_t)(buf + *len - start))) != NULL) {
        sample(s, d, now, start, (size_t)(nl - start));
        start = nl + 1;
    }
    *len = (size_t)(buf + *len - start);
    memmove(buf, start, *len);
}

/* inotify wakes the reader when the file is written, so no polling
 * interval is added to the latency. The file is created if missing (the
 * writer appends to it all the same) so that it can be watched from the
 * start, and read from its end as it is now. */
static void file_latency(const dest_t *d, conn_t *c, bench_samples_t *s) {
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    int in = inotify_init1(IN_CLOEXEC);
    c->fd = open(d->path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (buf == NULL || in < 0 || c->fd < 0)
        bench_die("%s: cannot watch it: %s", d->where, strerror(errno));
    if (inotify_add_watch(in, d->path, IN_MODIFY) < 0)
        bench_die("%s: cannot watch it: %s", d->where, strerror(errno));
    if (lseek(c->fd, 0, SEEK_END) < 0) bench_die("%s: cannot seek: %s", d->where, strerror(errno));
    say_ready();

    int64_t deadline = bench_mono_ns() + d->timeout_ns;
    while ((long long)s->n < d->events && bench_mono_ns() < deadline) {
        char events[4096];
        struct pollfd pfd = {.fd = in, .events = POLLIN};
        if (poll(&pfd, 1, ms_left(deadline, 1000)) <= 0) continue;
        /* The events only say "written": drain them, then read to the end. */
        if (read(in, events, sizeof events) < 0) bench_die("inotify: %s", strerror(errno));
        ssize_t got;
        while ((got = read(c->fd, buf + len, cap - len)) > 0) {
            len += (size_t)got;
            file_take_lines(d, buf, &len, bench_now_ns(), s);
            if (len == cap) bench_die("%s: a line longer than %zu bytes", d->where, cap);
        }
        if (got < 0) bench_die("%s: cannot read it: %s", d->where, strerror(errno));
    }
    close(in);
    free(buf);
}

/* ----------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

static const struct sink {
    const char *name;
    void (*prepare)(const dest_t *d);
    void (*open)(const dest_t *d, conn_t *c);
    long long (*count)(const dest_t *d, conn_t *c);
    void (*close)(conn_t *c);
    void (*latency)(const dest_t *d, conn_t *c, bench_samples_t *s);
} sinks[] = {
    {"kafka", kafka_prepare, kafka_open, kafka_count, kafka_close, kafka_latency},
    {"redis", redis_prepare, redis_open, redis_count, redis_close, redis_latency},
    {"nats", nats_prepare, nats_open, nats_count, nats_close, nats_latency},
    {"file", file_prepare, file_open, file_count, file_close, file_latency},
};

static void usage(void) {
    fprintf(stderr,
            "usage: bench_dest prepare|count|wait|latency SINK [options]\n"
            "  kafka --brokers B --topic T [--partitions P]\n"
            "  redis --url redis://host:port[/db] --stream S\n"
            "  nats  --url nats://host:port --stream NAME [--subject SUBJ]\n"
            "  file  --path P\n"
            "  wait and latency also: --events N [--timeout-s S (default 60)]\n");
    exit(1);
}

static const char *need(int argc, char **argv, const char *name) {
    const char *value = bench_arg(argc, argv, name, NULL);
    if (value == NULL) bench_die("%s is required for %s", name, argv[2]);
    return value;
}

/* The sink's options into d, checked. */
static void parse_dest(int argc, char **argv, dest_t *d) {
    const char *sink = argv[2];
    if (strcmp(sink, "kafka") == 0) {
        d->brokers = need(argc, argv, "--brokers");
        d->topic = need(argc, argv, "--topic");
        d->partitions = (int)bench_arg_ll(argc, argv, "--partitions", 1);
        if (d->partitions < 1) bench_die("--partitions must be at least 1");
        snprintf(d->where, sizeof d->where, "kafka topic %s at %s", d->topic, d->brokers);
    } else if (strcmp(sink, "redis") == 0) {
        d->url = need(argc, argv, "--url");
        d->stream = need(argc, argv, "--stream");
        snprintf(d->where, sizeof d->where, "redis stream %s at %s", d->stream, d->url);
    } else if (strcmp(sink, "nats") == 0) {
        d->url = need(argc, argv, "--url");
        d->stream = need(argc, argv, "--stream");
        d->subject = bench_arg(argc, argv, "--subject", NULL);
        snprintf(d->where, sizeof d->where, "nats stream %s at %s", d->stream, d->url);
    } else {
        d->path = need(argc, argv, "--path");
        snprintf(d->where, sizeof d->where, "file %s", d->path);
    }
    d->events = bench_arg_ll(argc, argv, "--events", 0);
    d->timeout_ns = bench_arg_ll(argc, argv, "--timeout-s", 60) * 1000000000LL;
}

/* Counts until the count reaches d->events. Each count is a request to
 * the broker (watermarks per partition, XLEN, stream info), and in a
 * fan-out one waiter per sink polls beside the run it measures: polling
 * every few milliseconds throughout cost the brokers CPU the database then
 * lacked, more with more sinks. So it polls every POLL_MAX_MS while the
 * end is far, and as the rate seen so far brings the end near, at a
 * quarter of the time still to go (at least POLL_MIN_MS): the moment the
 * last event arrived is still seen within a few milliseconds. */
static int wait_for_count(const struct sink *sink, const dest_t *d, conn_t *c) {
    int64_t deadline = bench_mono_ns() + d->timeout_ns;
    int64_t first_ns = 0;
    long long first = -1;
    for (;;) {
        long long count = sink->count(d, c);
        int64_t seen_ns = bench_now_ns();
        if (count >= d->events) {
            printf("RESULT count=%lld at_ns=%lld\n", count, (long long)seen_ns);
            return 0;
        }
        if (bench_mono_ns() >= deadline) {
            fprintf(stderr, "bench_dest: %s: timed out with %lld of %lld messages after %lld s\n",
                    d->where, count, d->events, (long long)(d->timeout_ns / 1000000000));
            return 1;
        }
        int nap = POLL_MAX_MS;
        if (first < 0 && count > 0) {
            first = count;
            first_ns = seen_ns;
        } else if (first >= 0 && count > first && seen_ns > first_ns) {
            double per_ns = (double)(count - first) / (double)(seen_ns - first_ns);
            double left_ms = (double)(d->events - count) / per_ns / 1e6;
            if (left_ms / 4 < nap)
                nap = left_ms / 4 > POLL_MIN_MS ? (int)(left_ms / 4) : POLL_MIN_MS;
        }
        nap_ms(nap);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) usage();
    const char *command = argv[1];
    const struct sink *sink = NULL;
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++) {
        if (strcmp(sinks[i].name, argv[2]) == 0) sink = &sinks[i];
    }
    if (sink == NULL) usage();
    dest_t d = {0};
    parse_dest(argc, argv, &d);

    int status = 0;
    conn_t c = {0};
    if (strcmp(command, "prepare") == 0) {
        sink->prepare(&d);
        puts("RESULT ok=1");
    } else if (strcmp(command, "count") == 0) {
        sink->open(&d, &c);
        long long count = sink->count(&d, &c);
        sink->close(&c);
        printf("RESULT count=%lld\n", count);
    } else if (strcmp(command, "wait") == 0 || strcmp(command, "latency") == 0) {
        if (d.events < 1 || d.timeout_ns < 1)
            bench_die("%s needs --events N (and --timeout-s S, if given, at least 1)", command);
        sink->open(&d, &c);
        if (strcmp(command, "wait") == 0) {
            status = wait_for_count(sink, &d, &c);
        } else {
            bench_samples_t samples = {.skip = (size_t)bench_arg_ll(argc, argv, "--warmup", 0)};
            sink->latency(&d, &c, &samples);
            printf("RESULT received=%zu", samples.n);
            bench_samples_print(&samples, stdout);
            putchar('\n');
            bench_samples_free(&samples);
        }
        sink->close(&c);
    } else {
        usage();
    }
    return status;
}
