/*
 * internal.h - what the files of liboutbox share and the public header does
 * not show: the structs behind the opaque handles and the error helpers.
 * Internal functions are named outbox__* (two underscores); the library
 * exports only ^outbox_[a-z], so they never become ABI.
 */
#ifndef OUTBOX_CORE_INTERNAL_H
#define OUTBOX_CORE_INTERNAL_H

#include "outbox/outbox.h"
#include "schema.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_DEFAULT_CAPPED_SIZE (64 * 1024 * 1024)
#define OUTBOX_DEFAULT_AWAIT_MS 250
/* Events per server round trip of a tail. Without a batchSize the server
 * sends up to 16 MiB per getMore: a 60,000-event backlog came back as one
 * batch, built for ~6 s on the server before the tail saw its first event,
 * and held whole in the client's memory; the reader could not hand events
 * on while the next batch was being built. 1,000 events cost no measurable
 * throughput on FerretDB (docs/performance.md). */
#define OUTBOX_DEFAULT_BATCH_SIZE 1000

/* MongoDB server error codes the library reacts to. */
#define OUTBOX_MONGO_NAMESPACE_EXISTS 48
#define OUTBOX_MONGO_CAPPED_POSITION_LOST 136
#define OUTBOX_MONGO_DUPLICATE_KEY 11000
#define OUTBOX_MONGO_NAMESPACE_NOT_FOUND 26
#define OUTBOX_MONGO_NOT_SUPPORTED_IN_TXN 263 /* OperationNotSupportedInTransaction */

typedef struct {
    char *name;
    outbox_schema_t *schema;
} outbox_type_t;

struct outbox_conf {
    char *uri;
    char *database;
    char *outbox;
    int64_t capped_size; /* 0 = not set */
    int64_t capped_max;  /* 0 = no limit */
    int64_t await_ms;
    int64_t batch_size; /* tail.batch_size; 0 = the server's default */
    mongoc_client_pool_t *pool; /* borrowed */
    outbox_type_t *types;
    size_t n_types;
};

struct outbox {
    outbox_conf_t *conf;
    mongoc_client_pool_t *pool; /* conf->pool, or owned_pool */
    mongoc_client_pool_t *owned_pool;
    mongoc_uri_t *owned_uri;
    char *pending_name;     /* "N.pending" */
    char *checkpoints_name; /* "N.checkpoints" */
    char *quarantine_name;  /* "N.quarantine" */
    char *schemas_name;     /* "N.schemas" */
    pthread_mutex_t caps_lock;
    bool caps_known;
    unsigned caps;
    _Atomic bool pending_verified; /* a transactional put found N.pending */
    _Atomic bool log_verified;     /* the promoter found N capped */
};

/* A zeroed struct that embeds a bson_t. bson_t is declared with 128-byte
 * alignment, which malloc does not give; free it with free(). Like
 * bson_malloc, it aborts when memory runs out. */
static inline void *outbox__calloc_aligned(size_t size) {
    size_t rounded = (size + 127) / 128 * 128;
    void *p = aligned_alloc(128, rounded);
    if (!p)
        abort();
    memset(p, 0, rounded);
    return p;
}

/* Fills error (if not NULL) with code and a formatted message; returns code
 * so callers can `return outbox__fail(...)`. */
outbox_code_t outbox__fail(outbox_error_t *error, outbox_code_t code, const char *fmt, ...)
    BSON_GNUC_PRINTF(3, 4);
/* As outbox__fail for a driver error: the server code is kept, the message
 * is "<what>: <driver message>". Returns OUTBOX_ERR_SERVER. */
outbox_code_t outbox__fail_bson(outbox_error_t *error, const bson_error_t *berr, const char *fmt,
                                ...) BSON_GNUC_PRINTF(3, 4);
void outbox__clear_error(outbox_error_t *error);

const outbox_type_t *outbox__conf_find_type(const outbox_conf_t *conf, const char *type);

/* A client from the outbox's pool (blocks while all are in use); give it
 * back with outbox__client_push. */
mongoc_client_t *outbox__client_pop(outbox_t *outbox);
void outbox__client_push(outbox_t *outbox, mongoc_client_t *client);

/* outbox_verify through a client the caller holds (a transaction's
 * session's client, so that a pool of one cannot deadlock). */
outbox_code_t outbox__verify_with(outbox_t *outbox, mongoc_client_t *client, outbox_error_t *error);

/* The reply's errorLabels as " [Label, Label]" into buf ("" when none). */
void outbox__labels_text(const bson_t *reply, char *buf, size_t size);

/* Stores each declared type's schema in N.schemas (version 1 when new);
 * OUTBOX_ERR_SCHEMA when N.schemas holds another schema for a declared
 * type. */
outbox_code_t outbox__schemas_store(outbox_t *outbox, mongoc_client_t *client, outbox_error_t *error);

/* Every type N.schemas keeps, appended to types as { TYPE: schema, ... }. */
outbox_code_t outbox__schemas_read(outbox_t *outbox, mongoc_client_t *client, bson_t *types, outbox_error_t *error);

/* The quarantine of the promoter: "N.quarantine". */
#define OUTBOX_QUARANTINE_SUFFIX ".quarantine"

/* The event behind the public outbox_event_t: a borrowed envelope with the
 * fields already looked up. */
struct outbox_event {
    /* The two bson_t first: libbson aligns bson_t to 128 bytes, so small
     * members before them would pad the struct from 384 to 512 bytes, and
     * outboxd's ring holds thousands of copies. */
    bson_t data;
    bson_t headers;
    const bson_t *doc;
    bson_oid_t id;
    const char *type;
    const char *key;
    int64_t created_ms;
    int32_t v;
    bool has_headers;
    bool owned;          /* the event is one block of ours, doc within it
                          * (outbox_event_copy, outbox_event_parse) */
};

/* Reads an envelope; false (with a message naming the field) when doc is not
 * one. event borrows doc. The one parser of the envelope: the tail, outboxd
 * (through the tail and outbox_event_copy) and the fuzz target use it, so a
 * document is an event for all of them or for none (docs/envelope.md). */
bool outbox__event_parse(outbox_event_t *event, const bson_t *doc, char *errbuf,
                         size_t errbuf_size);

/* The nesting depth of doc (itself 1), counting documents and arrays as
 * MongoDB does; stops counting (returns limit + 1) past limit, so a
 * hostile depth costs no stack. -1 when doc is corrupt, -2 when a key or
 * string in it is not UTF-8 (a NUL inside a string is allowed), -3 when a
 * document in it (not an array) holds one key twice. */
int outbox__bson_depth(const bson_t *doc, int limit);

/* The envelope's `created` must lie within 0000-01-01T00:00:00.000Z and
 * 9999-12-31T23:59:59.999Z, the dates ISO-8601 writes with four digits. */
#define OUTBOX_CREATED_MIN_MS INT64_C(-62167219200000)
#define OUTBOX_CREATED_MAX_MS INT64_C(253402300799999)

#endif
