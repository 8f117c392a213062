/*
 * kafka_testlib.c - see kafka_testlib.h.
 */
#include "kafka_testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

void kt_lock(void) {
    test_lock_kafka();
}

const char *kt_brokers(void) {
    const char *brokers = test_service("OUTBOX_TEST_KAFKA_BROKERS");
    if (brokers == NULL && getenv("OUTBOX_TEST_REQUIRE_SERVERS"))
        fail_msg("no Kafka test broker, and OUTBOX_TEST_REQUIRE_SERVERS is set (tests/run-all.sh "
                 "sets it: there the harness must have started one)");
    if (brokers == NULL)
        TEST_SKIP("no Kafka test broker: run tests/services/services.sh up (or set "
                  "OUTBOX_TEST_KAFKA_BROKERS)");
    kt_lock();
    return brokers;
}

char *kt_topic_name(const char *label) {
    static int counter;
    char name[200];
    snprintf(name, sizeof name, "outbox-test-%s-%d-%ld-%d", label, (int)getpid(), (long)time(NULL),
             ++counter);
    return strdup(name);
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char err[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", kt_brokers(), err, sizeof err) != RD_KAFKA_CONF_OK)
        fail_msg("bootstrap.servers: %s", err);
    /* The test's clients log nothing: failures show as failed asserts. */
    rd_kafka_conf_set_log_cb(conf, NULL);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (rk == NULL) fail_msg("rd_kafka_new: %s", err);
    return rk;
}

/* The number of partitions metadata shows for topic (0 when unknown). */
static int partition_count(rd_kafka_t *rk, const char *topic) {
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

/* Runs one admin request (create or delete) and waits for its result. */
static void admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                       const char *what, const char *topic, int must_succeed) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL) fail_msg("%s %s: no answer within 30 s", what, topic);
    if (rd_kafka_event_type(ev) != type) fail_msg("%s %s: unexpected event", what, topic);
    const rd_kafka_topic_result_t **results;
    size_t n = 0;
    if (rd_kafka_event_error(ev)) {
        if (must_succeed) fail_msg("%s %s: %s", what, topic, rd_kafka_event_error_string(ev));
        print_message("# %s %s: %s\n", what, topic, rd_kafka_event_error_string(ev));
    } else {
        if (type == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
            results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        else if (type == RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT)
            results = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        else
            results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            if (rd_kafka_topic_result_error(results[i]) == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
            if (must_succeed)
                fail_msg("%s %s: %s", what, topic, rd_kafka_topic_result_error_string(results[i]));
            print_message("# %s %s: %s\n", what, topic, rd_kafka_topic_result_error_string(results[i]));
        }
    }
    rd_kafka_event_destroy(ev);
}

/* The controller has the change; waits until the broker's metadata shows
 * partitions partitions too (10 s at most, then fails the test). */
static void wait_partitions(rd_kafka_t *rk, const char *topic, int partitions) {
    int seen = 0;
    for (int i = 0; i < 100 && seen != partitions; i++) {
        seen = partition_count(rk, topic);
        if (seen != partitions) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (seen != partitions) fail_msg("topic %s: metadata shows %d of %d partitions", topic, seen, partitions);
}

void kt_create_topic(const char *topic, int partitions, const char *max_message_bytes) {
    char err[512];
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
    if (nt == NULL) fail_msg("NewTopic %s: %s", topic, err);
    if (max_message_bytes != NULL &&
        rd_kafka_NewTopic_set_config(nt, "max.message.bytes", max_message_bytes) != 0)
        fail_msg("NewTopic %s: cannot set max.message.bytes", topic);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "create topic", topic, 1);
    rd_kafka_NewTopic_destroy(nt);
    wait_partitions(rk, topic, partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void kt_grow_topic(const char *topic, int partitions) {
    char err[512];
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)partitions, err, sizeof err);
    if (np == NULL) fail_msg("NewPartitions %s: %s", topic, err);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, "grow topic", topic, 1);
    rd_kafka_NewPartitions_destroy(np);
    wait_partitions(rk, topic, partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void kt_delete_topic(const char *topic) {
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "delete topic", topic, 0);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static char *copy_bytes(const void *data, size_t len) {
    char *s = malloc(len + 1);
    assert_non_null(s);
    if (len > 0) memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

static void add_record(kt_record_t **records, size_t *n, size_t *cap, const rd_kafka_message_t *m) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *records = realloc(*records, *cap * sizeof **records);
        assert_non_null(*records);
    }
    kt_record_t *r = &(*records)[(*n)++];
    memset(r, 0, sizeof *r);
    r->partition = m->partition;
    r->offset = m->offset;
    r->key = m->key != NULL ? copy_bytes(m->key, m->key_len) : NULL;
    r->value = copy_bytes(m->payload, m->len);
    r->value_len = m->len;
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t count = rd_kafka_header_cnt(hdrs);
        r->header_names = calloc(count ? count : 1, sizeof *r->header_names);
        r->header_values = calloc(count ? count : 1, sizeof *r->header_values);
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            r->header_names[r->n_headers] = strdup(name);
            r->header_values[r->n_headers] = value ? copy_bytes(value, size) : NULL;
            r->n_headers++;
        }
    }
}

size_t kt_consume(const char *topic, kt_record_t **out, int timeout_ms) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* assign() without a group: no offsets are committed anywhere. */
    if (rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "outbox-test-reader", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) != RD_KAFKA_CONF_OK)
        fail_msg("consumer conf: %s", err);
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    int partitions = partition_count(rk, topic);
    if (partitions == 0) fail_msg("topic %s does not exist", topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) fail_msg("assign %s failed", topic);
    rd_kafka_topic_partition_list_destroy(list);

    kt_record_t *records = NULL;
    size_t n = 0, cap = 0;
    char *at_eof = calloc((size_t)partitions, 1);
    int eofs = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (eofs == partitions || elapsed > timeout_ms) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < partitions && !at_eof[m->partition]) {
                at_eof[m->partition] = 1;
                eofs++;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            print_message("# consumer: %s\n", rd_kafka_message_errstr(m));
        } else {
            /* A message after an EOF: the partition grew meanwhile. */
            if (at_eof[m->partition]) {
                at_eof[m->partition] = 0;
                eofs--;
            }
            add_record(&records, &n, &cap, m);
        }
        rd_kafka_message_destroy(m);
    }
    if (eofs != partitions)
        print_message("# consumer: %s: only %d of %d partitions read to the end within %d ms\n", topic,
                      eofs, partitions, timeout_ms);
    free(at_eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *out = records;
    return n;
}

void kt_records_free(kt_record_t *records, size_t n) {
    for (size_t i = 0; i < n; i++) {
        kt_record_t *r = &records[i];
        free(r->key);
        free(r->value);
        for (size_t h = 0; h < r->n_headers; h++) {
            free(r->header_names[h]);
            free(r->header_values[h]);
        }
        free(r->header_names);
        free(r->header_values);
    }
    free(records);
}

const char *kt_header(const kt_record_t *r, const char *name) {
    const char *found = NULL;
    for (size_t h = 0; h < r->n_headers; h++)
        if (strcmp(r->header_names[h], name) == 0) found = r->header_values[h];
    return found;
}

int kt_services(const char *command) {
    char cmd[1200];
    const char *src = getenv("OUTBOX_TEST_SRCDIR");
    snprintf(cmd, sizeof cmd, "bash '%s/tests/services/services.sh' %s >&2", src ? src : ".", command);
    return test_run_command(cmd, NULL);
}
