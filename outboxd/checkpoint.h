/*
 * checkpoint.h - a sink's position in N.checkpoints: one document per
 * sink, { _id: <sink name>, last_id: ObjectId, events: long, updated: date,
 * state: "running" | "gap" | "stopped", message: string,
 * plugin_stats: { NAME: number, ... } }.
 *
 * plugin_stats holds the figures the sink's plugin reported through its
 * stats callback (ABI 1.1), as of the last checkpoint write: outboxd asks
 * for them at most once a second and writes the latest set with every
 * checkpoint write, so they are as fresh as `updated`. Names are
 * [a-z][a-z0-9_]* of at most 64 bytes (outboxd drops any other, with one log
 * line); values are doubles. The field is absent when the plugin offers no
 * stats. outboxctl status shows it.
 *
 * The reading figures of this outboxd run (issue 17), with every write:
 * reader: { shared_tails: N } the tails the outbox's shared reader opened
 * (1 unless its own tail lost events), catchup_tails: the tails of its own
 * this sink opened to catch up (it fell behind the shared reader's ring,
 * its checkpoint was not on it, or the ring marked a gap), catchups: how
 * often it came back onto the ring from one. They count from outboxd's
 * start; none is read back.
 */
#ifndef OUTBOXD_CHECKPOINT_H
#define OUTBOXD_CHECKPOINT_H

#include <mongoc/mongoc.h>
#include <stdbool.h>

/* At most this many figures of a plugin are kept (more are dropped, with one
 * log line), each named by at most OUTBOXD_STAT_NAME_MAX bytes. */
#define OUTBOXD_STATS_MAX 128
#define OUTBOXD_STAT_NAME_MAX 64

typedef struct {
    char name[OUTBOXD_STAT_NAME_MAX + 1];
    double value;
} outboxd_stat_t;

typedef struct {
    bool has_last;
    bson_oid_t last_id;
    int64_t events;       /* events this sink has handled, in all */
    char state[16];
    char message[512];
    /* The plugin's latest figures. has_stats: the plugin offers stats, so
     * plugin_stats is written (else it is removed: no stale figures from an
     * earlier plugin). Not read back by outboxd_checkpoint_read. */
    bool has_stats;
    size_t n_stats;
    outboxd_stat_t stats[OUTBOXD_STATS_MAX];
    /* The reading figures; written when has_reader. */
    bool has_reader;
    int64_t shared_tails, catchup_tails, catchups;
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
