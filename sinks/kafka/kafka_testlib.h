/*
 * kafka_testlib.h - what the Kafka sink's tests share: the test broker's
 * address (or a skip), one Kafka test at a time, topics made and dropped
 * with the admin API, and an independent librdkafka consumer that reads a
 * whole topic back.
 */
#ifndef OUTBOX_KAFKA_TESTLIB_H
#define OUTBOX_KAFKA_TESTLIB_H

#include "testlib.h"

#include <librdkafka/rdkafka.h>

/* The broker list of the harness's Kafka (OUTBOX_TEST_KAFKA_BROKERS), or
 * skips the test when there is none (fails under
 * OUTBOX_TEST_REQUIRE_SERVERS). Also takes the Kafka test lock (below). */
const char *kt_brokers(void);

/* Kafka tests stop and start the one test broker: two of them (this
 * program's and another's, `make -j2 check`) must not run at once. Takes a
 * lock on a file in /tmp for the life of the process (not inherited by
 * outboxd: close-on-exec). Idempotent. */
void kt_lock(void);

/* A fresh topic name: outbox-test-LABEL-PID-N. Caller frees. */
char *kt_topic_name(const char *label);

/* Creates topic with partitions partitions (replication factor 1) and, if
 * max_message_bytes is not NULL, that topic-level max.message.bytes; waits
 * until the broker's metadata shows all partitions. Fails the test on error. */
void kt_create_topic(const char *topic, int partitions, const char *max_message_bytes);

/* Grows topic to partitions partitions; waits until the metadata shows
 * them. Fails the test on error. */
void kt_grow_topic(const char *topic, int partitions);

/* Deletes topic; a failure is only reported. */
void kt_delete_topic(const char *topic);

/* One message read back. */
typedef struct {
    int32_t partition;
    int64_t offset;
    char *key;         /* NULL for a null key */
    char *value;       /* NUL-terminated copy */
    size_t value_len;
    size_t n_headers;
    char **header_names, **header_values;
} kt_record_t;

/* Reads every message of topic, partition by partition in offset order,
 * from the beginning to the end each partition has now. Waits up to
 * timeout_ms in all. *out is malloc'd (kt_records_free). Returns the count. */
size_t kt_consume(const char *topic, kt_record_t **out, int timeout_ms);
void kt_records_free(kt_record_t *records, size_t n);

/* The value of the last header called name, or NULL. */
const char *kt_header(const kt_record_t *r, const char *name);

/* Runs tests/services/services.sh with command (stop-kafka, start-kafka);
 * returns its exit status. */
int kt_services(const char *command);

#endif
