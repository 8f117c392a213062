/*
 * events.c - the events outbox-sink-conformance publishes: built as
 * outboxd builds them (sink_runner.c): the payload is the event's data
 * encoded once, as relaxed extended JSON or raw BSON by libbson; the
 * destination is the route expanded by outboxd's own code. Ids are unique
 * per run (time and pid), so a destination that keeps earlier runs' events
 * tells them apart. Header names avoid an "outbox-" prefix, which sinks
 * may keep for their own headers (the NATS sink refuses such names).
 */
#include "conformance.h"

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TYPE "conformance.checked"

typedef struct {
    char id[25];
    char key[32];
    char *destination;
    unsigned char *payload;
    outbox_sink_header_t headers[2];
    char header_value[32];
} storage_t;

struct conformance_events {
    outbox_sink_event_t *ev;
    storage_t *st;
    size_t n;
};

conformance_events_t *conformance_events_new(sinkhost_t *h, const char *payload, size_t n) {
    conformance_events_t *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->ev = calloc(n, sizeof *e->ev);
    e->st = calloc(n, sizeof *e->st);
    if (!e->ev || !e->st)
        abort();
    e->n = n;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    bool bson = strcmp(payload, "bson") == 0;
    for (size_t i = 0; i < n; i++) {
        storage_t *s = &e->st[i];
        outbox_sink_event_t *ev = &e->ev[i];
        /* An ObjectId's shape: seconds, then pid and a counter. */
        snprintf(s->id, sizeof s->id, "%08llx%08x%08zx", (unsigned long long)now.tv_sec & 0xffffffffull,
                 (unsigned)getpid(), i + 1);
        snprintf(s->key, sizeof s->key, "key-%zu", i % 7);
        for (size_t cap = 256;; cap *= 2) {
            s->destination = realloc(s->destination, cap);
            if (!s->destination)
                abort();
            if (sinkhost_destination(h, TYPE, s->key, s->destination, cap) >= 0)
                break;
        }
        bson_t data = BSON_INITIALIZER;
        BSON_APPEND_INT64(&data, "n", (int64_t)(i + 1));
        BSON_APPEND_UTF8(&data, "id", s->id);
        BSON_APPEND_UTF8(&data, "checked_by", "outbox-sink-conformance");
        if (bson) {
            s->payload = malloc(data.len);
            if (!s->payload)
                abort();
            memcpy(s->payload, bson_get_data(&data), data.len);
            ev->payload_len = data.len;
        } else {
            size_t len = 0;
            char *json = bson_as_relaxed_extended_json(&data, &len);
            s->payload = malloc(len + 1);
            if (!json || !s->payload)
                abort();
            memcpy(s->payload, json, len + 1);
            ev->payload_len = len;
            bson_free(json);
        }
        bson_destroy(&data);
        snprintf(s->header_value, sizeof s->header_value, "%zu", i + 1);
        s->headers[0] = (outbox_sink_header_t){"conformance-check", "1"};
        s->headers[1] = (outbox_sink_header_t){"conformance-n", s->header_value};
        ev->seq = i + 1;
        ev->id = s->id;
        ev->type = TYPE;
        ev->key = s->key;
        ev->destination = s->destination;
        ev->payload = s->payload;
        ev->created_ms = now_ms;
        ev->headers = s->headers;
        ev->n_headers = 2;
    }
    return e;
}

const outbox_sink_event_t *conformance_events_at(const conformance_events_t *e, size_t i) {
    return &e->ev[i];
}

size_t conformance_events_count(const conformance_events_t *e) {
    return e->n;
}

void conformance_events_free(conformance_events_t *e) {
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->st[i].destination);
        free(e->st[i].payload);
    }
    free(e->st);
    free(e->ev);
    free(e);
}
