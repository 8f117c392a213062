/*
 * read_back.c - see read_back.h.
 *
 * The earlier run produced the events in log order, each to the partition
 * of its key; whatever of them a partition stores is at its end, among its
 * last k messages. Every partition is read from high watermark - k to the
 * high watermark as it is now, with assign (no consumer group, nothing
 * committed).
 *
 * What this cannot see (sinks/kafka/README.md): a produce request of the
 * killed process that the broker applies after this read, and messages
 * that another producer appended to the topic meanwhile (they push ours
 * further back than k).
 */
#include "read_back.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What identifies an event in a message: its id (in id_header), or else
 * its key and value. */
typedef struct {
    uint64_t digest;
    size_t i;
} mark_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static int mark_cmp(const void *a, const void *b) {
    uint64_t x = ((const mark_t *)a)->digest, y = ((const mark_t *)b)->digest;
    return x < y ? -1 : x > y;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka's own lines during the read: errors only (the consumer warns
 * about every producer property of the conf it was made from). */
static void quiet_log(const rd_kafka_t *rk, int level, const char *facility, const char *line) {
    const outbox_sink_host_t *host = rd_kafka_opaque(rk);
    if (host != NULL && level <= 3) host->log(host->ctx, OUTBOX_SINK_LOG_ERROR, "librdkafka %s: %s", facility, line);
}

/* The digest of what identifies event e: its id, or its key and value. */
static uint64_t event_digest(const outbox_sink_event_t *e, const char *id_header) {
    uint64_t h = 14695981039346656037u;
    if (id_header != NULL) return fnv(h, e->id, strlen(e->id));
    return fnv(h, e->payload, e->payload_len); /* (the key is compared by same()) */
}

/* Whether message m is event e (the digests matched). */
static int same(const rd_kafka_message_t *m, const outbox_sink_event_t *e, const char *id_header) {
    if (id_header != NULL) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *v;
        size_t len;
        return rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
               rd_kafka_header_get_last(hdrs, id_header, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
               len == strlen(e->id) && memcmp(v, e->id, len) == 0;
    }
    size_t key_len = e->key != NULL ? strlen(e->key) : 0;
    return m->len == e->payload_len && (m->len == 0 || memcmp(m->payload, e->payload, m->len) == 0) &&
           (e->key == NULL || (m->key_len == key_len && memcmp(m->key, e->key, key_len) == 0));
}

static uint64_t message_digest(const rd_kafka_message_t *m, const char *id_header, int *ok) {
    uint64_t h = 14695981039346656037u;
    *ok = 1;
    if (id_header != NULL) {
        rd_kafka_headers_t *hdrs = NULL;
        const void *v;
        size_t len;
        if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_header_get_last(hdrs, id_header, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            *ok = 0;
            return 0;
        }
        return fnv(h, v, len);
    }
    return fnv(h, m->payload, m->len);
}

/* The header that carries the event's id: ours when native; else the
 * first header of the message outboxd laid out whose value is the id
 * (CloudEvents binary ce_id, Debezium id); NULL when none does. */
static const char *id_header_of(const outbox_sink_event_t *e, int native) {
    if (native) return "outbox-id";
    for (size_t i = 0; i < e->n_headers; i++)
        if (strcmp(e->headers[i].value, e->id) == 0) return e->headers[i].name;
    return NULL;
}

typedef struct {
    rd_kafka_t *rk;
    const outbox_sink_event_t *events;
    const char *id_header;
    unsigned char *held;
    int64_t deadline;
} reading_t;

/* The events idx[0..k) of one topic: reads the topic's partitions' ends. */
static int read_topic(void *ctx, const size_t *idx, size_t k, char *errbuf, size_t errbuf_size) {
    reading_t *rd = ctx;
    rd_kafka_t *rk = rd->rk;
    const outbox_sink_event_t *events = rd->events;
    const char *topic = events[idx[0]].destination, *id_header = rd->id_header;
    unsigned char *held = rd->held;
    int64_t deadline = rd->deadline;
    int rc = OUTBOX_SINK_OK;
    mark_t *marks = malloc(k * sizeof *marks);
    if (marks == NULL) {
        snprintf(errbuf, errbuf_size, "kafka sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    for (size_t j = 0; j < k; j++) marks[j] = (mark_t){event_digest(&events[idx[j]], id_header), idx[j]};
    qsort(marks, k, sizeof *marks, mark_cmp);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int left_ms = (int)(deadline - now_ms());
    rd_kafka_resp_err_t err = rkt != NULL ? rd_kafka_metadata(rk, 0, rkt, &md, left_ms > 0 ? left_ms : 1)
                                          : rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
        snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s: %s", topic,
                 rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        rc = OUTBOX_SINK_RETRY;
        goto out;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) goto out; /* never written */
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s: %s", topic,
                 rd_kafka_err2str(md->topics[0].err));
        rc = OUTBOX_SINK_RETRY;
        goto out;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(parts > 0 ? parts : 1);
    int64_t *end = calloc((size_t)(parts > 0 ? parts : 1), sizeof *end);
    int waiting = 0;
    for (int p = 0; p < parts && rc == OUTBOX_SINK_OK; p++) {
        int64_t lo = 0, hi = 0;
        left_ms = (int)(deadline - now_ms());
        err = rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[p].id, &lo, &hi,
                                               left_ms > 0 ? left_ms : 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s partition %d: %s", topic,
                     md->topics[0].partitions[p].id, rd_kafka_err2str(err));
            rc = OUTBOX_SINK_RETRY;
            break;
        }
        int64_t from = hi - (int64_t)k > lo ? hi - (int64_t)k : lo;
        end[p] = hi;
        if (from >= hi) continue;
        rd_kafka_topic_partition_list_add(assign, topic, md->topics[0].partitions[p].id)->offset = from;
        waiting++;
    }
    if (rc == OUTBOX_SINK_OK && waiting > 0 && (err = rd_kafka_assign(rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s: %s", topic, rd_kafka_err2str(err));
        rc = OUTBOX_SINK_RETRY;
    }
    while (rc == OUTBOX_SINK_OK && waiting > 0) {
        if (now_ms() >= deadline) {
            snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s: %d partitions not read to their "
                     "end in time", topic, waiting);
            rc = OUTBOX_SINK_RETRY;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int p = 0;
            while (p < parts && md->topics[0].partitions[p].id != m->partition) p++;
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                int ok;
                mark_t key = {.digest = message_digest(m, id_header, &ok)};
                mark_t *hit = ok ? bsearch(&key, marks, k, sizeof *marks, mark_cmp) : NULL;
                while (hit != NULL && hit > marks && hit[-1].digest == key.digest) hit--;
                for (; hit != NULL && hit < marks + k && hit->digest == key.digest; hit++)
                    if (same(m, &events[hit->i], id_header)) held[hit->i] = 1;
            }
            /* Read to the end it had when the read began. */
            if (p < parts && end[p] >= 0 &&
                (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->offset + 1 >= end[p])) {
                end[p] = -1;
                waiting--;
            }
        } else {
            snprintf(errbuf, errbuf_size, "kafka sink: reading back topic %s: %s", topic, rd_kafka_message_errstr(m));
            rc = OUTBOX_SINK_RETRY;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
    free(end);
    rd_kafka_topic_partition_list_destroy(assign);
out:
    if (md != NULL) rd_kafka_metadata_destroy(md);
    if (rkt != NULL) rd_kafka_topic_destroy(rkt);
    free(marks);
    return rc;
}

int kafka_read_back(const outbox_sink_host_t *host, rd_kafka_conf_t *conf, const outbox_sink_event_t *events,
                    size_t n, int native, unsigned char *held, int timeout_ms, char *errbuf, size_t errbuf_size) {
    char why[512];
    if (n == 0) {
        rd_kafka_conf_destroy(conf);
        return OUTBOX_SINK_OK;
    }
    /* A consumer that joins no group (assign, not subscribe: the group.id
     * librdkafka wants for assign is never joined) and commits nothing. */
    if (rd_kafka_conf_set(conf, "group.id", "outboxd-read-back", why, sizeof why) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", why, sizeof why) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka sink: the read-back consumer: %s", why);
        return OUTBOX_SINK_RETRY;
    }
    rd_kafka_conf_set_opaque(conf, (void *)host);
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka sink: cannot create the read-back consumer: %s", why);
        return OUTBOX_SINK_RETRY;
    }
    /* One layout for every event of the sink: the first one says where
     * the id is. Topic by topic (the sink.h helper groups by destination). */
    reading_t rd = {rk, events, id_header_of(&events[0], native), held, now_ms() + timeout_ms};
    int rc = outbox_sink_each_destination(events, n, read_topic, &rd, errbuf, errbuf_size);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
