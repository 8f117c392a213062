/*
 * bench.h - what the benchmark programs share: the events they move, the
 * clocks they read, and the one line each prints for bench/bench.py.
 *
 * Every program prints exactly one line on stdout when it succeeds:
 *     RESULT key=value key=value ...
 * (values without spaces), and diagnostics on stderr. It exits 0 on
 * success, 1 on a failure (a wrong count is a failure: a benchmark that
 * moved the wrong events measured nothing).
 *
 * The events are the README's order events (~200 bytes as stored): type
 * order.created, a customer key, data {ordernr, total, customer, lines[2],
 * put_ns}. put_ns is when the producer put the event (CLOCK_REALTIME, ns),
 * so that any consumer on this machine can compute put-to-readable
 * latency from the payload alone.
 */
#ifndef OUTBOX_BENCH_H
#define OUTBOX_BENCH_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_TYPE "order.created"
/* The order example's schema plus put_ns (the example's forbids other
 * properties). */
#define BENCH_SCHEMA                                                                      \
    "{\"bsonType\":\"object\",\"required\":[\"ordernr\",\"total\",\"lines\"],"           \
    "\"additionalProperties\":false,"                                                    \
    "\"properties\":{\"ordernr\":{\"bsonType\":\"int\",\"minimum\":1},"                  \
    "\"total\":{\"bsonType\":\"number\",\"minimum\":0},"                                 \
    "\"customer\":{\"bsonType\":\"string\",\"minLength\":1,\"maxLength\":64},"           \
    "\"put_ns\":{\"bsonType\":\"long\"},"                                                \
    "\"lines\":{\"bsonType\":\"array\",\"minItems\":1,\"items\":{\"bsonType\":\"object\"," \
    "\"required\":[\"sku\",\"qty\"],\"properties\":{\"sku\":{\"bsonType\":\"string\","   \
    "\"pattern\":\"^[A-Z]{3}-[0-9]+$\"},\"qty\":{\"bsonType\":\"int\",\"minimum\":1}}}}}}"

/* Distinct keys in the generated events (Kafka partitions by key). */
#define BENCH_KEYS 64

/* Wall clock in ns (comparable across processes on one machine). */
int64_t bench_now_ns(void);
/* Monotonic clock in ns (for durations inside one process). */
int64_t bench_mono_ns(void);

/* Event i's data document, as every producer builds it. */
void bench_order_data(bson_t *data, uint64_t i, int64_t put_ns);
/* Event i's key: "customer-NNN". */
void bench_order_key(char *buf, size_t size, uint64_t i);

/* The message outboxd hands a sink for event i, built without MongoDB:
 * the raw producers and the sink-ceiling driver send exactly these. */
typedef struct {
    char id[25];        /* 24 hex digits, unique per i */
    const char *type;   /* BENCH_TYPE */
    char key[32];
    int64_t created_ms;
    char *payload;      /* relaxed Extended JSON of the data, as outboxd encodes it; owned */
    size_t payload_len;
} bench_msg_t;

void bench_msg_make(bench_msg_t *m, uint64_t i, int64_t put_ns);
void bench_msg_free(bench_msg_t *m);

/* put_ns from a payload holding `"put_ns" : N` (relaxed JSON) anywhere in
 * it; -1 when there is none. Works on a JSON line holding the payload
 * too (the file sink). */
int64_t bench_put_ns_of(const char *text, size_t len);

/* Splits redis://host[:port][/db] (the redis sink's form, without user or
 * password: the bench server has none) into host (size 256), port (6379
 * when left out) and db (0); dies on anything else. */
void bench_redis_url(const char *url, char host[256], int *port, int *db);

/* Latency samples in ns. */
typedef struct {
    int64_t *v;
    size_t n, cap;
    size_t skip; /* warm-up: the first `skip` samples added are dropped */
} bench_samples_t;

void bench_samples_add(bench_samples_t *s, int64_t ns);
/* Sorts, then the q-quantile (0..1) in ns; 0 when empty. */
int64_t bench_samples_quantile(bench_samples_t *s, double q);
void bench_samples_free(bench_samples_t *s);
/* Appends " count=N p50_ms=.. p99_ms=.. max_ms=.." to a RESULT line. */
void bench_samples_print(bench_samples_t *s, FILE *out);

/* Command-line helpers: --name value pairs. */
const char *bench_arg(int argc, char **argv, const char *name, const char *dflt);
long long bench_arg_ll(int argc, char **argv, const char *name, long long dflt);
bool bench_flag(int argc, char **argv, const char *name);

/* Prints "PROG: message" on stderr and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
