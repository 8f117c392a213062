/*
 * in_doubt.h - the events a sink's earlier run may already have published
 * (the ones after its durable checkpoint, at most its in-doubt bound), and
 * which of them the plugin's recover found at the destination
 * (docs/recovery.md).
 *
 * The runner fills it once per activation, before its feeder starts; the
 * feeder then looks up each event it takes until every listed one has
 * passed (outboxd_in_doubt_take), so that the lookups cost nothing after
 * the first few thousand events of an activation.
 */
#ifndef OUTBOXD_IN_DOUBT_H
#define OUTBOXD_IN_DOUBT_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct outboxd_in_doubt outboxd_in_doubt_t;

/* The list of n events by id with held[i] (the destination has it), in any
 * order; ids are copied. NULL when out of memory. */
outboxd_in_doubt_t *outboxd_in_doubt_new(const bson_oid_t *ids, const unsigned char *held, size_t n);

/* Whether id is listed and not yet taken; *held then tells whether the
 * destination has it. Each listed id is taken once: a second event with
 * the same id (the log does not forbid one) is not in doubt. */
bool outboxd_in_doubt_take(outboxd_in_doubt_t *d, const bson_oid_t *id, bool *held);

/* Listed events not yet taken. */
size_t outboxd_in_doubt_left(const outboxd_in_doubt_t *d);
/* Of those, the ones the destination holds: while any is left, what is
 * past the checkpoint is still in doubt for the next run. */
size_t outboxd_in_doubt_held_left(const outboxd_in_doubt_t *d);

/* Accepts NULL. */
void outboxd_in_doubt_free(outboxd_in_doubt_t *d);

/* The documents of db.coll after the one with _id after (from the oldest
 * when after is NULL), in natural order, at most cap of them, as the log
 * holds them now: one walk of the log's _ids (a projection, as liboutbox's
 * tail walks it when it opens a cursor; no sort, no count: FerretDB sorts
 * or scans the whole collection for either, 8-10 s for 100,000 documents),
 * then those documents by _id. fn(ctx, doc) is called for each in log
 * order; *docs is how many documents the walk found after `after`
 * (documents without an ObjectId _id included: no envelope, never
 * published, not fetched). A document overwritten between the walk and the
 * fetch is left out (the sink meets that gap itself). *gap: `after` is not
 * in the log. False with errbuf when the server cannot be read. */
bool outboxd_in_doubt_read(mongoc_client_pool_t *pool, const char *db, const char *coll, const bson_oid_t *after,
                           size_t cap, void (*fn)(void *ctx, const bson_t *doc), void *ctx, size_t *docs, bool *gap,
                           char *errbuf, size_t errbuf_size);

#endif
