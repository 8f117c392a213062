/*
 * event.c - reading an envelope back (outbox_event_t) and printing it as one
 * JSON line, the form outboxctl tail and the file sink use.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELD_ERR(...) (snprintf(errbuf, errbuf_size, __VA_ARGS__), false)

static int compare_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True when a document holds one key twice. BSON allows it; JSON readers
 * keep one of the two values, and which one differs by reader, so such a
 * document could not reach every consumer as it was written. Sorting
 * makes this O(n log n) in a document's keys. */
static bool has_duplicate_key(const bson_t *doc) {
    const char *stack_keys[32], **keys = stack_keys;
    size_t n = 0, cap = sizeof stack_keys / sizeof *stack_keys;
    uint32_t count = bson_count_keys(doc);
    if (count < 2)
        return false;
    if (count > cap) {
        keys = bson_malloc(count * sizeof *keys);
        cap = count;
    }
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (n < cap && bson_iter_next(&it))
            keys[n++] = bson_iter_key(&it);
    qsort(keys, n, sizeof *keys, compare_keys);
    bool dup = false;
    for (size_t i = 1; i < n && !dup; i++)
        dup = strcmp(keys[i - 1], keys[i]) == 0;
    if (keys != stack_keys)
        bson_free(keys);
    return dup;
}

static int walk(const bson_t *doc, bool is_array, int limit) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return -1;
    if (!is_array && has_duplicate_key(doc))
        return -3;
    int deepest = 1;
    while (bson_iter_next(&it)) {
        /* Keys and strings must be UTF-8: libbson's JSON encoder gives up
         * on anything else (NULL), and a sink must never get a changed or
         * empty payload for it. */
        const char *key = bson_iter_key(&it);
        if (!bson_utf8_validate(key, strlen(key), false))
            return -2;
        if (BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t len;
            const char *v = bson_iter_utf8(&it, &len);
            if (!bson_utf8_validate(v, len, true))
                return -2;
            continue;
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) && !BSON_ITER_HOLDS_ARRAY(&it))
            continue;
        if (limit <= 1)
            return 2; /* one level more than allowed: no need to look inside */
        uint32_t len;
        const uint8_t *data;
        bson_t sub;
        bool sub_is_array = BSON_ITER_HOLDS_ARRAY(&it);
        if (sub_is_array)
            bson_iter_array(&it, &len, &data);
        else
            bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&sub, data, len))
            return -1;
        /* Recursion is bounded by limit (at most OUTBOX_MAX_DEPTH frames). */
        int d = walk(&sub, sub_is_array, limit - 1);
        if (d < 0)
            return d;
        if (d + 1 > deepest)
            deepest = d + 1;
        if (deepest > limit)
            return deepest;
    }
    if (it.err_off) /* the iteration stopped at corrupt bytes, not at the end */
        return -1;
    return deepest;
}

int outbox__bson_depth(const bson_t *doc, int limit) {
    return walk(doc, false, limit);
}

/* A string field of the envelope: UTF-8 (libbson does not check on read). */
static bool valid_utf8(const bson_iter_t *it) {
    uint32_t len;
    const char *s = bson_iter_utf8(it, &len);
    return bson_utf8_validate(s, len, false);
}

bool outbox__event_parse(outbox_event_t *ev, const bson_t *doc, char *errbuf, size_t errbuf_size) {
    bson_iter_t it;
    memset(ev, 0, sizeof *ev);
    ev->doc = doc;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return FIELD_ERR("_id: required field is missing");
    if (!BSON_ITER_HOLDS_OID(&it))
        return FIELD_ERR("_id: expected objectId, got %s", outbox__bson_type_name(bson_iter_type(&it)));
    bson_oid_copy(bson_iter_oid(&it), &ev->id);
    if (!bson_iter_init(&it, doc))
        return FIELD_ERR("corrupt document");
    bool have_type = false, have_data = false, have_created = false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "type") == 0) {
            if (!BSON_ITER_HOLDS_UTF8(&it))
                return FIELD_ERR("type: expected string, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            if (!valid_utf8(&it))
                return FIELD_ERR("type: not valid UTF-8");
            ev->type = bson_iter_utf8(&it, NULL);
            if (!ev->type[0])
                return FIELD_ERR("type: empty string");
            have_type = true;
        } else if (strcmp(k, "key") == 0) {
            if (BSON_ITER_HOLDS_UTF8(&it)) {
                if (!valid_utf8(&it))
                    return FIELD_ERR("key: not valid UTF-8");
                ev->key = bson_iter_utf8(&it, NULL);
            } else if (!BSON_ITER_HOLDS_NULL(&it)) {
                return FIELD_ERR("key: expected string or null, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            }
        } else if (strcmp(k, "data") == 0) {
            uint32_t len;
            const uint8_t *data;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it))
                return FIELD_ERR("data: expected object, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            bson_iter_document(&it, &len, &data);
            if (!bson_init_static(&ev->data, data, len))
                return FIELD_ERR("data: corrupt document");
            /* data is level 2 of the envelope. Deeper than the limit cannot
             * be encoded as JSON faithfully (libbson's encoder cuts at 200
             * levels and writes invalid JSON): an error, never a cut. */
            int depth = outbox__bson_depth(&ev->data, OUTBOX_MAX_DEPTH - 1);
            if (depth == -2)
                return FIELD_ERR("data: a key or string is not valid UTF-8");
            if (depth == -3)
                return FIELD_ERR("data: a document holds the same key twice");
            if (depth < 0)
                return FIELD_ERR("data: corrupt document");
            if (depth > OUTBOX_MAX_DEPTH - 1)
                return FIELD_ERR("data: nested deeper than %d levels (the envelope may have at most %d)",
                                 OUTBOX_MAX_DEPTH - 1, OUTBOX_MAX_DEPTH);
            have_data = true;
        } else if (strcmp(k, "created") == 0) {
            if (!BSON_ITER_HOLDS_DATE_TIME(&it))
                return FIELD_ERR("created: expected date, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            ev->created_ms = bson_iter_date_time(&it);
            /* ISO-8601 (and every consumer's date parser) has four-digit
             * years; a date outside them is no producer's clock. */
            if (ev->created_ms < OUTBOX_CREATED_MIN_MS || ev->created_ms > OUTBOX_CREATED_MAX_MS)
                return FIELD_ERR("created: %" PRId64 " ms is outside the years 0000 to 9999", ev->created_ms);
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
            /* Every value a string (docs/envelope.md: no conversion, so
             * every sink sees the same headers; a non-string is reported,
             * never dropped). */
            bson_iter_t h;
            if (!bson_iter_init(&h, &ev->headers))
                return FIELD_ERR("headers: corrupt document");
            while (bson_iter_next(&h)) {
                const char *name = bson_iter_key(&h);
                if (!bson_utf8_validate(name, strlen(name), false))
                    return FIELD_ERR("headers: a name is not valid UTF-8");
                if (!BSON_ITER_HOLDS_UTF8(&h))
                    return FIELD_ERR("headers.%s: expected string, got %s", name,
                                     outbox__bson_type_name(bson_iter_type(&h)));
                if (!valid_utf8(&h))
                    return FIELD_ERR("headers.%s: not valid UTF-8", name);
            }
            ev->has_headers = true;
        } else if (strcmp(k, "v") == 0) {
            if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it))
                return FIELD_ERR("v: expected int, got %s", outbox__bson_type_name(bson_iter_type(&it)));
            int64_t v = bson_iter_as_int64(&it);
            ev->v = v < 0 ? 0 : v > INT32_MAX ? INT32_MAX : (int32_t)v;
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

/* A pointer of the original event moved into the copy's buffer: every
 * pointer of a parsed event points into its envelope. */
static const void *rebase(const void *p, const bson_t *from, const bson_t *to) {
    return p ? bson_get_data(to) + ((const uint8_t *)p - bson_get_data(from)) : NULL;
}

/* An event that owns its envelope, in one allocation: the struct, a
 * bson_t for the document, then the document's bytes (a copy of src).
 * One block where there were three (the struct, bson_copy's bson_t and its
 * buffer): outboxd's reader copies every event it reads, and freeing them
 * again was a third of its time (docs/performance.md, case 13). The struct
 * is zeroed; *doc is the copy, static over the block's bytes. NULL only
 * when src is not a valid BSON buffer. */
static outbox_event_t *new_owned(const bson_t *src, bson_t **doc) {
    /* bson_t is 128-byte aligned, and so is the struct's size. */
    size_t head = (sizeof(outbox_event_t) + 127) / 128 * 128, size = head + sizeof(bson_t) + src->len;
    outbox_event_t *ev = aligned_alloc(128, (size + 127) / 128 * 128);
    if (!ev)
        abort(); /* out of memory, as bson_malloc */
    memset(ev, 0, sizeof *ev);
    *doc = (bson_t *)((uint8_t *)ev + head);
    uint8_t *bytes = (uint8_t *)*doc + sizeof(bson_t);
    memcpy(bytes, bson_get_data(src), src->len);
    if (!bson_init_static(*doc, bytes, src->len)) {
        free(ev);
        return NULL;
    }
    ev->owned = true;
    return ev;
}

outbox_event_t *outbox_event_copy(const outbox_event_t *ev) {
    if (!ev)
        return NULL;
    bson_t *doc;
    outbox_event_t *c = new_owned(ev->doc, &doc);
    if (!c)
        abort(); /* ev's document was parsed: it is valid BSON */
    c->doc = doc;
    bson_oid_copy(&ev->id, &c->id);
    c->type = rebase(ev->type, ev->doc, doc);
    c->key = rebase(ev->key, ev->doc, doc);
    c->created_ms = ev->created_ms;
    c->v = ev->v;
    bson_init_static(&c->data, rebase(bson_get_data(&ev->data), ev->doc, doc), ev->data.len);
    c->has_headers = ev->has_headers;
    if (ev->has_headers)
        bson_init_static(&c->headers, rebase(bson_get_data(&ev->headers), ev->doc, doc), ev->headers.len);
    return c;
}

outbox_event_t *outbox_event_parse(const bson_t *doc, outbox_error_t *error) {
    if (!doc) {
        outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_event_parse: doc is NULL");
        return NULL;
    }
    bson_t *copy;
    outbox_event_t *ev = new_owned(doc, &copy);
    char msg[512];
    if (!ev) {
        outbox__fail(error, OUTBOX_ERR_MALFORMED, "not a valid envelope: corrupt document");
        return NULL;
    }
    /* The parser zeroes the struct and sets doc: owned is set again. */
    if (!outbox__event_parse(ev, copy, msg, sizeof msg)) {
        outbox__fail(error, OUTBOX_ERR_MALFORMED, "not a valid envelope: %s", msg);
        free(ev);
        return NULL;
    }
    ev->owned = true;
    return ev;
}

void outbox_event_destroy(outbox_event_t *ev) {
    if (!ev || !ev->owned)
        return;
    free(ev); /* one block: the struct, the document's bson_t and its bytes */
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
    /* Floor division without overflow (the parser keeps ms within years
     * 0000-9999, but this must not be undefined for any int64). */
    int millis = (int)(ms % 1000);
    time_t secs = (time_t)(ms / 1000);
    if (millis < 0) {
        millis += 1000;
        secs--;
    }
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, size, "%" PRId64, ms);
        return;
    }
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
