/*
 * shared_event.c - see shared_event.h.
 */
#include "shared_event.h"

#include "ejson.h"

#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort(); /* out of memory: libbson aborts itself elsewhere */
    return p;
}

static char *scrubbed_dup(const char *text) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, text, len + 1);
    outboxd_secrets_scrub(copy, len + 1);
    return copy;
}

char *outboxd_payload_encode_json(const bson_t *data, size_t *len) {
    /* outboxd's own writer (ejson.h, docs/envelope.md "The JSON payload"):
     * compact, shortest doubles, always valid UTF-8, where libbson's printer
     * padded with spaces, wrote 19.95 as 19.949999999999999289 and gave up
     * (NULL) on strings the parser lets through (bytes C0 80). NULL now
     * means bytes that are not BSON (only possible inside a code-with-
     * scope's scope, which the parser does not walk): such an event is
     * failed by outboxd with the reason (json_failed), never an abort. */
    return outboxd_ejson_encode(data, len);
}

outboxd_shared_event_t *outboxd_shared_event_new(const outbox_event_t *ev, unsigned formats) {
    size_t json_len = 0;
    char *json = NULL;
    if (formats & OUTBOXD_FORMAT_JSON)
        json = outboxd_payload_encode_json(outbox_event_data(ev), &json_len);
    outboxd_shared_event_t *se = xcalloc(1, sizeof *se + (json ? json_len + 1 : 0));
    atomic_init(&se->refs, 1);
    if (json) {
        memcpy(se->json_text, json, json_len + 1);
        se->json = se->json_text;
        se->json_len = json_len;
        free(json);
    }
    se->json_failed = (formats & OUTBOXD_FORMAT_JSON) && !se->json;
    se->ev = outbox_event_copy(ev);
    if (!se->ev)
        abort();
    se->has_id = true;
    bson_oid_copy(outbox_event_id(se->ev), &se->id);
    bson_oid_to_string(&se->id, se->id_hex);
    const bson_t *hdrs = outbox_event_headers(se->ev);
    /* What the allocations take: this block, and the event's copy in one
     * block of its own (liboutbox's event.c: the 384-byte struct, a
     * 128-byte bson_t and the document, rounded up to 128 bytes). */
    size_t doc_len = outbox_event_document(se->ev)->len;
    se->bytes = sizeof *se + (se->json ? json_len + 1 : 0) + (384 + 128 + doc_len + 127) / 128 * 128;
    if (hdrs) {
        /* Every value is a UTF-8 string: the parser refuses an envelope
         * with any other (docs/envelope.md), so nothing is dropped here. */
        bson_iter_t h;
        size_t cnt = 0;
        bson_iter_init(&h, hdrs);
        while (bson_iter_next(&h))
            cnt++;
        if (cnt) {
            se->headers = xcalloc(cnt, sizeof *se->headers);
            bson_iter_init(&h, hdrs);
            while (bson_iter_next(&h)) {
                se->headers[se->n_headers].name = bson_iter_key(&h);
                se->headers[se->n_headers].value = bson_iter_utf8(&h, NULL);
                se->n_headers++;
            }
            se->bytes += cnt * sizeof *se->headers;
        }
    }
    return se;
}

outboxd_shared_event_t *outboxd_shared_event_malformed(const bson_t *doc, const char *why) {
    outboxd_shared_event_t *se = xcalloc(1, sizeof *se);
    bson_iter_t it;
    atomic_init(&se->refs, 1);
    se->raw = bson_copy(doc);
    se->error = scrubbed_dup(why);
    se->has_id = bson_iter_init_find(&it, se->raw, "_id") && BSON_ITER_HOLDS_OID(&it);
    if (se->has_id) {
        bson_oid_copy(bson_iter_oid(&it), &se->id);
        bson_oid_to_string(&se->id, se->id_hex);
    } else {
        snprintf(se->id_hex, sizeof se->id_hex, "(no ObjectId _id)");
    }
    se->bytes = sizeof *se + se->raw->len + strlen(se->error) + 1 + 128;
    return se;
}

outboxd_shared_event_t *outboxd_shared_event_gap(const char *why) {
    outboxd_shared_event_t *se = xcalloc(1, sizeof *se);
    atomic_init(&se->refs, 1);
    se->gap = true;
    se->error = scrubbed_dup(why);
    snprintf(se->id_hex, sizeof se->id_hex, "(gap)");
    se->bytes = sizeof *se + strlen(se->error) + 1;
    return se;
}

void outboxd_shared_event_unref(outboxd_shared_event_t *se) {
    if (!se || atomic_fetch_sub_explicit(&se->refs, 1, memory_order_acq_rel) != 1)
        return;
    outbox_event_destroy(se->ev);
    if (se->raw)
        bson_destroy(se->raw);
    free(se->error);
    free(se->headers);
    free(se);
}

const unsigned char *outboxd_shared_event_payload(const outboxd_shared_event_t *se, unsigned format, size_t *len) {
    if (format == OUTBOXD_FORMAT_BSON) {
        const bson_t *data = outbox_event_data(se->ev);
        *len = data->len;
        return bson_get_data(data);
    }
    *len = se->json_len;
    return (const unsigned char *)se->json;
}
