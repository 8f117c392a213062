/*
 * common.c - see bench.h.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_order_key(char *buf, size_t size, uint64_t i) {
    snprintf(buf, size, "customer-%03u", (unsigned)(i % BENCH_KEYS));
}

void bench_order_data(bson_t *data, uint64_t i, int64_t put_ns) {
    char customer[32], sku[2][16];
    bench_order_key(customer, sizeof customer, i);
    snprintf(sku[0], sizeof sku[0], "ABC-%u", (unsigned)(i % 9973));
    snprintf(sku[1], sizeof sku[1], "XYZ-%u", (unsigned)(i % 7919));
    bson_t lines, line;
    BSON_APPEND_INT32(data, "ordernr", (int32_t)(i % 2000000000) + 1);
    BSON_APPEND_DOUBLE(data, "total", 10.5 + (double)(i % 1000));
    BSON_APPEND_UTF8(data, "customer", customer);
    BSON_APPEND_ARRAY_BEGIN(data, "lines", &lines);
    for (int k = 0; k < 2; k++) {
        char idx[2] = {(char)('0' + k), 0};
        BSON_APPEND_DOCUMENT_BEGIN(&lines, idx, &line);
        BSON_APPEND_UTF8(&line, "sku", sku[k]);
        BSON_APPEND_INT32(&line, "qty", (int32_t)(1 + (i + (uint64_t)k) % 5));
        bson_append_document_end(&lines, &line);
    }
    bson_append_array_end(data, &lines);
    BSON_APPEND_INT64(data, "put_ns", put_ns);
}

void bench_msg_make(bench_msg_t *m, uint64_t i, int64_t put_ns) {
    bson_t data = BSON_INITIALIZER;
    bench_order_data(&data, i, put_ns);
    size_t len;
    char *json = bson_as_relaxed_extended_json(&data, &len);
    m->payload = malloc(len + 1);
    memcpy(m->payload, json, len + 1);
    m->payload_len = len;
    bson_free(json);
    bson_destroy(&data);
    /* An ObjectId-shaped id: 4 bytes of time, then i. */
    snprintf(m->id, sizeof m->id, "%08x%016llx", (unsigned)(put_ns / 1000000000), (unsigned long long)i);
    m->type = BENCH_TYPE;
    bench_order_key(m->key, sizeof m->key, i);
    m->created_ms = put_ns / 1000000;
}

void bench_msg_free(bench_msg_t *m) {
    free(m->payload);
    m->payload = NULL;
}

int64_t bench_put_ns_of(const char *text, size_t len) {
    static const char needle[] = "\"put_ns\"";
    const char *end = text + len;
    for (const char *p = text; p + sizeof needle - 1 <= end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + sizeof needle - 1 > end)
            return -1;
        if (memcmp(p, needle, sizeof needle - 1) != 0)
            continue;
        p += sizeof needle - 1;
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        /* Canonical JSON would say {"$numberLong": "N"}: skip to digits. */
        while (p < end && (*p < '0' || *p > '9'))
            p++;
        int64_t v = 0;
        bool any = false;
        while (p < end && *p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            any = true;
        }
        return any ? v : -1;
    }
    return -1;
}

void bench_redis_url(const char *url, char host[256], int *port, int *db) {
    int used = 0;
    char *end;
    if (sscanf(url, "redis://%255[^:/]%n", host, &used) != 1)
        bench_die("redis: \"%s\" is not redis://host[:port][/db]", url);
    const char *rest = url + used;
    *port = 6379;
    *db = 0;
    if (*rest == ':') {
        *port = (int)strtol(rest + 1, &end, 10);
        rest = end;
    }
    if (*rest == '/' && rest[1] != '\0')
        *db = atoi(rest + 1);
}

void bench_samples_add(bench_samples_t *s, int64_t ns) {
    if (s->skip > 0) {
        s->skip--;
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            bench_die("out of memory");
    }
    s->v[s->n++] = ns;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t bench_samples_quantile(bench_samples_t *s, double q) {
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_i64);
    /* Nearest rank: the smallest sample with at least q of them at or below. */
    size_t rank = (size_t)(q * (double)s->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > s->n)
        rank = s->n;
    return s->v[rank - 1];
}

void bench_samples_free(bench_samples_t *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}

void bench_samples_print(bench_samples_t *s, FILE *out) {
    fprintf(out, " count=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f", s->n,
            (double)bench_samples_quantile(s, 0.50) / 1e6, (double)bench_samples_quantile(s, 0.99) / 1e6,
            (double)bench_samples_quantile(s, 1.0) / 1e6);
}

const char *bench_arg(int argc, char **argv, const char *name, const char *dflt) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

long long bench_arg_ll(int argc, char **argv, const char *name, long long dflt) {
    const char *v = bench_arg(argc, argv, name, NULL);
    if (!v)
        return dflt;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v)
        bench_die("%s: not a number: %s", name, v);
    return n;
}

bool bench_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}
