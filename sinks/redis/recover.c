/*
 * recover.c - the Redis sink's recover (ABI 1.1; docs/recovery.md): after
 * a crash or a takeover, which of the events in doubt a stream holds
 * already. The earlier run added them to each stream in order, so each one
 * it added is among the stream's last k entries, k being the number of
 * those events that go to that stream (one XREVRANGE ... COUNT k), and its
 * entry's fields are exactly the ones publish writes for it now
 * (redis_entry_fields). This assumes no other writer adds to the streams
 * and nothing trims their newest entries (sinks/redis/README.md).
 */
#include "redis_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A digest of an entry's fields: their lengths and bytes, in order. */
static uint64_t digest_add(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < sizeof n; i++) h = (h ^ ((n >> (8 * i)) & 0xff)) * 1099511628211u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

typedef struct {
    uint64_t digest;
    const redisReply *fields; /* the entry's [field, value, ...] */
} entry_t;

static int by_digest(const void *a, const void *b) {
    uint64_t x = ((const entry_t *)a)->digest, y = ((const entry_t *)b)->digest;
    return x < y ? -1 : x > y;
}

/* Whether the entry's fields are s->argv[0..argc). */
static int same_fields(const redisReply *fields, const redis_sink_t *s, size_t argc) {
    if (fields->elements != argc) return 0;
    for (size_t i = 0; i < argc; i++) {
        const redisReply *f = fields->element[i];
        if (f->type != REDIS_REPLY_STRING || f->len != s->argvlen[i] || memcmp(f->str, s->argv[i], f->len) != 0)
            return 0;
    }
    return 1;
}

/* The events idx[0..n) all go to one stream: marks those among its last n
 * entries. OK, RETRY with errbuf (the connection is dropped), or FATAL
 * when the key is no stream. */
static int recover_stream(redis_sink_t *s, const outbox_sink_event_t *events, const size_t *idx, size_t n,
                          unsigned char *held, char *errbuf, size_t errbuf_size) {
    const char *stream = events[idx[0]].destination;
    char count[24];
    snprintf(count, sizeof count, "%zu", n);
    const char *argv[] = {"XREVRANGE", stream, "+", "-", "COUNT", count};
    redisReply *r = redisCommandArgv(s->c, 6, argv, NULL);
    if (r == NULL) {
        snprintf(errbuf, errbuf_size, "redis sink: XREVRANGE %s on %s: %s", stream, s->url.display,
                 s->c->errstr[0] ? s->c->errstr : "connection lost");
        redis_sink_disconnect(s);
        return OUTBOX_SINK_RETRY;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* WRONGTYPE: publishing there fails for good too (on_error). */
        int transient = redis_error_is_transient(r->str);
        snprintf(errbuf, errbuf_size, "redis sink: XREVRANGE %s on %s: %s", stream, s->url.display, r->str);
        freeReplyObject(r);
        return transient ? OUTBOX_SINK_RETRY : OUTBOX_SINK_OK;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(errbuf, errbuf_size, "redis sink: XREVRANGE %s: unexpected reply (%s)", stream,
                 redis_reply_text(r));
        freeReplyObject(r);
        return OUTBOX_SINK_RETRY;
    }
    entry_t *entries = calloc(r->elements ? r->elements : 1, sizeof *entries);
    if (entries == NULL) {
        freeReplyObject(r);
        snprintf(errbuf, errbuf_size, "redis sink: out of memory");
        return OUTBOX_SINK_RETRY;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY) continue;
        const redisReply *fields = e->element[1];
        uint64_t h = 14695981039346656037u;
        for (size_t j = 0; j < fields->elements; j++)
            if (fields->element[j]->type == REDIS_REPLY_STRING)
                h = digest_add(h, fields->element[j]->str, fields->element[j]->len);
        entries[k++] = (entry_t){h, fields};
    }
    qsort(entries, k, sizeof *entries, by_digest);
    int rc = OUTBOX_SINK_OK;
    for (size_t j = 0; j < n && k > 0; j++) {
        const outbox_sink_event_t *ev = &events[idx[j]];
        char created[24];
        if (redis_entry_reserve(s, ev, 0, 0) != 0) {
            snprintf(errbuf, errbuf_size, "redis sink: out of memory");
            rc = OUTBOX_SINK_RETRY;
            break;
        }
        char *scratch = s->scratch;
        size_t argc = redis_entry_fields(s, ev, 0, &scratch, created);
        entry_t key = {.digest = 14695981039346656037u};
        for (size_t a = 0; a < argc; a++) key.digest = digest_add(key.digest, s->argv[a], s->argvlen[a]);
        entry_t *hit = bsearch(&key, entries, k, sizeof *entries, by_digest);
        while (hit != NULL && hit > entries && hit[-1].digest == key.digest) hit--;
        for (; hit != NULL && hit < entries + k && hit->digest == key.digest; hit++) {
            if (same_fields(hit->fields, s, argc)) {
                held[idx[j]] = 1;
                break;
            }
        }
    }
    free(entries);
    freeReplyObject(r);
    return rc;
}

typedef struct {
    redis_sink_t *s;
    const outbox_sink_event_t *events;
    unsigned char *held;
} recovering_t;

static int recover_one_stream(void *ctx, const size_t *idx, size_t k, char *errbuf, size_t errbuf_size) {
    recovering_t *r = ctx;
    return recover_stream(r->s, r->events, idx, k, r->held, errbuf, errbuf_size);
}

/* Stream by stream (the sink.h helper groups the events by destination). */
int redis_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held, char *errbuf,
                  size_t errbuf_size) {
    redis_sink_t *s = state;
    if (redis_sink_ensure_connected(s, errbuf, errbuf_size) != OUTBOX_SINK_OK) return OUTBOX_SINK_RETRY;
    recovering_t r = {s, events, held};
    return outbox_sink_each_destination(events, n, recover_one_stream, &r, errbuf, errbuf_size);
}
