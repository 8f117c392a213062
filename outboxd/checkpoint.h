/*
 * checkpoint.h - a sink's position in N.checkpoints: one document per
 * sink, { _id: <sink name>, last_id: ObjectId, events: long, updated: date,
 * state: "running" | "gap" | "stopped", message: string }.
 */
#ifndef OUTBOXD_CHECKPOINT_H
#define OUTBOXD_CHECKPOINT_H

#include <mongoc/mongoc.h>
#include <stdbool.h>

typedef struct {
    bool has_last;
    bson_oid_t last_id;
    int64_t events;       /* events this sink has handled, in all */
    char state[16];
    char message[512];
} outboxd_checkpoint_t;

/* Reads the sink's checkpoint; *found false when there is none yet.
 * Returns false with errbuf on a server error. */
bool outboxd_checkpoint_read(mongoc_client_pool_t *pool, const char *db, const char *coll,
                             const char *sink, outboxd_checkpoint_t *cp, bool *found,
                             char *errbuf, size_t errbuf_size);

/* Upserts the whole checkpoint document. */
bool outboxd_checkpoint_write(mongoc_client_pool_t *pool, const char *db, const char *coll,
                              const char *sink, const outboxd_checkpoint_t *cp, char *errbuf,
                              size_t errbuf_size);

#endif
