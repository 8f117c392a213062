/*
 * read_back.h - the Kafka sink's recover (ABI 1.1; docs/recovery.md): which
 * of the events in doubt after a crash or a takeover the topics hold
 * already. Apart from kafka.c because it is a consumer, not a producer.
 */
#ifndef OUTBOX_KAFKA_READ_BACK_H
#define OUTBOX_KAFKA_READ_BACK_H

#include <outbox/sink.h>
#include <librdkafka/rdkafka.h>

/* Reads the end of every partition of each topic the events go to (the
 * last k messages of each, k the number of events for that topic, which
 * no partition count change can defeat) with a consumer made from conf
 * (taken, destroyed here; the producer's properties: brokers, TLS, SASL),
 * and sets held[i] for each event found there. An event is known by its
 * id header: outbox-id when native, else the header of the message outboxd
 * laid out that carries the event's id (ce_id, id); without one, by its
 * key and value bytes. host gets librdkafka's error lines. Returns OK, or RETRY with errbuf (a broker or
 * topic that cannot be read within timeout_ms). */
int kafka_read_back(const outbox_sink_host_t *host, rd_kafka_conf_t *conf, const outbox_sink_event_t *events,
                    size_t n, int native, unsigned char *held, int timeout_ms, char *errbuf, size_t errbuf_size);

#endif
