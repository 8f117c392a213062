/*
 * shared_event.h - one document of the log as every sink of outboxd shares
 * it: parsed once (liboutbox's parser), its payload encoded once per payload
 * format in use, its headers listed once, and reference counted, so that the
 * shared reader's ring and each sink's window hold the same copy. An event
 * lives while anything holds it: the ring may drop it while a slow sink's
 * window still has it.
 *
 * Three kinds: an event (ev set), a malformed document (raw and error set:
 * not an envelope, liboutbox said why), and a gap mark (gap set, error says
 * what the shared reader's own tail reported): a discontinuity in the
 * shared stream that each sink must look at from its own position.
 *
 * Everything but refs is written before the event is shared and never
 * again, so any thread may read it without a lock.
 */
#ifndef OUTBOXD_SHARED_EVENT_H
#define OUTBOXD_SHARED_EVENT_H

#include "outbox/outbox.h"
#include "outbox/sink.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* The payload formats, as bits of a mask (the same values as the plugin
 * ABI's OUTBOX_SINK_PAYLOAD_*). */
#define OUTBOXD_FORMAT_JSON OUTBOX_SINK_PAYLOAD_JSON
#define OUTBOXD_FORMAT_BSON OUTBOX_SINK_PAYLOAD_BSON

typedef struct outboxd_shared_event {
    atomic_int refs;
    outbox_event_t *ev;     /* the parsed envelope, owned; NULL unless an event */
    bson_t *raw;            /* a malformed document, owned; NULL otherwise */
    char *error;            /* why malformed, or the gap's text; scrubbed; owned */
    bool gap;               /* a gap mark of the shared reader */
    bool has_id;            /* the document has an ObjectId _id */
    bson_oid_t id;
    char id_hex[25];        /* "(no ObjectId _id)" when it has none */
    char *json;             /* the data as JSON, NUL-terminated, in this
                             * struct's own block (json_text); NULL when not
                             * encoded (no sink used json when it was read) */
    size_t json_len;
    bool json_failed;       /* the encoder could not take the data (libbson's
                             * gives up on bytes C0 80 in a string): no JSON
                             * of it can be made, the sink fails it */
    outbox_sink_header_t *headers; /* into ev's strings; NULL when none */
    size_t n_headers;
    size_t bytes;           /* what it holds, for the ring's byte limit */
    char json_text[];       /* json's bytes: one allocation with the struct,
                             * of the exact size (the encoder's buffer has up
                             * to twice the room; the ring holds thousands) */
} outboxd_shared_event_t;

/* A copy of ev (borrowed from a tail) with its payload encoded in each
 * format of formats (a mask of OUTBOXD_FORMAT_*; bson needs no encoding:
 * it is the data's own bytes). One reference, the caller's. */
outboxd_shared_event_t *outboxd_shared_event_new(const outbox_event_t *ev, unsigned formats);

/* A document that is not an envelope, with why (copied and scrubbed). */
outboxd_shared_event_t *outboxd_shared_event_malformed(const bson_t *doc, const char *why);

/* A gap mark with what the shared reader's tail reported. */
outboxd_shared_event_t *outboxd_shared_event_gap(const char *why);

static inline outboxd_shared_event_t *outboxd_shared_event_ref(outboxd_shared_event_t *se) {
    atomic_fetch_add_explicit(&se->refs, 1, memory_order_relaxed);
    return se;
}

/* Drops one reference; the last one frees it. Accepts NULL. */
void outboxd_shared_event_unref(outboxd_shared_event_t *se);

/* The payload of an event in format (one OUTBOXD_FORMAT_*): bson points
 * into the event's own document; json is the shared encoding, or NULL when
 * it failed (json_failed) or the event was read while no sink used json
 * (then the caller encodes it with outboxd_payload_encode_json and owns
 * that copy). */
const unsigned char *outboxd_shared_event_payload(const outboxd_shared_event_t *se, unsigned format, size_t *len);

/* The one place a payload is encoded as JSON: relaxed Extended JSON
 * (shared_event.c says with which encoder). malloc'd, NUL-terminated, *len
 * without the NUL; caller frees. NULL when the encoder cannot take data
 * (see json_failed). */
char *outboxd_payload_encode_json(const bson_t *data, size_t *len);

#endif
