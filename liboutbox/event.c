/*
 * event.c - reading an envelope back (outbox_event_t) and printing it as one
 * JSON line, the form outboxctl tail and the file sink use.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define FIELD_ERR(...) (snprintf(errbuf, errbuf_size, __VA_ARGS__), false)

bool outbox__event_parse(outbox_event_t *ev, const bson_t *doc, char *errbuf, size_t errbuf_size) {
    bson_iter_t it;
    memset(ev, 0, sizeof *ev);
    ev->doc = doc;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
        return FIELD_ERR("_id: expected objectId");
    bson_oid_copy(bson_iter_oid(&it), &ev->id);
    if (!bson_iter_init(&it, doc))
        return FIELD_ERR("corrupt document");
    bool have_type = false, have_data = false, have_created = false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "type") == 0) {
            if (!BSON_ITER_HOLDS_UTF8(&it))
                return FIELD_ERR("type: expected string, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            ev->type = bson_iter_utf8(&it, NULL);
            have_type = true;
        } else if (strcmp(k, "key") == 0) {
            if (BSON_ITER_HOLDS_UTF8(&it))
                ev->key = bson_iter_utf8(&it, NULL);
            else if (!BSON_ITER_HOLDS_NULL(&it))
                return FIELD_ERR("key: expected string or null, got %s", outbox__bson_type_name(bson_iter_type(&it)));
        } else if (strcmp(k, "data") == 0) {
            uint32_t len;
            const uint8_t *data;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                return FIELD_ERR("data: expected object, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&ev->data, data, len))
                return FIELD_ERR("data: corrupt document");
            have_data = true;
        } else if (strcmp(k, "created") == 0) {
            if (!BSON_ITER_HOLDS_DATE_TIME(&it))
                return FIELD_ERR("created: expected date, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            ev->created_ms = bson_iter_date_time(&it);
            have_created = true;
        } else if (strcmp(k, "headers") == 0) {
            uint32_t len;
            const uint8_t *data;
            if (BSON_ITER_HOLDS_NULL(&it))
                continue;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                return FIELD_ERR("headers: expected object, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&ev->headers, data, len))
                return FIELD_ERR("headers: corrupt document");
            ev->has_headers = true;
        } else if (strcmp(k, "v") == 0) {
            if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it))
                return FIELD_ERR("v: expected int, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            ev->v = (int32_t)bson_iter_as_int64(&it);
        }
    }
    if (!have_type)
        return FIELD_ERR("type: required field is missing");
    if (!have_data)
        return FIELD_ERR("data: required field is missing");
    if (!have_created)
        return FIELD_ERR("created: required field is missing");
    if (ev->v < 1)
        return FIELD_ERR("v: required field is missing or below 1");
    return true;
}

const bson_oid_t *outbox_event_id(const outbox_event_t *ev) { return &ev->id; }
const char *outbox_event_type(const outbox_event_t *ev) { return ev->type; }
const char *outbox_event_key(const outbox_event_t *ev) { return ev->key; }
int64_t outbox_event_created_ms(const outbox_event_t *ev) { return ev->created_ms; }
const bson_t *outbox_event_data(const outbox_event_t *ev) { return &ev->data; }
const bson_t *outbox_event_headers(const outbox_event_t *ev) { return ev->has_headers ? &ev->headers : NULL; }
int32_t outbox_event_version(const outbox_event_t *ev) { return ev->v; }
const bson_t *outbox_event_document(const outbox_event_t *ev) { return ev->doc; }

/* ISO-8601 UTC with milliseconds: 2026-11-26T18:45:25.123Z */
static void format_iso(int64_t ms, char *out, size_t size) {
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", millis);
}

char *outbox_event_to_json(const outbox_event_t *ev, size_t *len) {
    char hex[25], iso[40];
    bson_t out = BSON_INITIALIZER, empty = BSON_INITIALIZER;
    bson_oid_to_string(&ev->id, hex);
    format_iso(ev->created_ms, iso, sizeof iso);
    BSON_APPEND_UTF8(&out, "id", hex);
    BSON_APPEND_UTF8(&out, "type", ev->type);
    if (ev->key)
        BSON_APPEND_UTF8(&out, "key", ev->key);
    else
        BSON_APPEND_NULL(&out, "key");
    BSON_APPEND_UTF8(&out, "created", iso);
    BSON_APPEND_DOCUMENT(&out, "data", &ev->data);
    BSON_APPEND_DOCUMENT(&out, "headers", ev->has_headers ? &ev->headers : &empty);
    char *json = bson_as_relaxed_extended_json(&out, len);
    bson_destroy(&out);
    bson_destroy(&empty);
    return json;
}
