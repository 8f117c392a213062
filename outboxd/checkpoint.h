/*
 * checkpoint.h - a sink's position in N.checkpoints: one document per
 * sink, { _id: <sink name>, last_id: ObjectId, events: long, updated: date,
 * state: "running" | "gap" | "stopped", message: string,
 * plugin_stats: { NAME: number, ... }, in_doubt: bool }.
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
 *
 * High availability (docs/leases.md, sections 1.2 and 3): the document
 * also holds term (int64) and owner (instance id) and claimed (date),
 * stamped by outboxd_checkpoint_claim when a runner activates at a lease's
 * term, and fenced_at (date), set by the dead-letter writer's touch. Every
 * later write of an active runner filters on {_id, term: T}: once another
 * instance claimed a higher term, the deposed runner's writes match
 * nothing and come back OUTBOXD_WRITE_FENCED, never to be retried. A term
 * below 0 means no fence (ha.enabled: false): the writes are what they
 * were before leases (an upsert, no term).
 */
#ifndef OUTBOXD_CHECKPOINT_H
#define OUTBOXD_CHECKPOINT_H

#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

/* At most this many figures of a plugin are kept (more are dropped, with one
 * log line), each named by at most OUTBOXD_STAT_NAME_MAX bytes. */
#define OUTBOXD_STATS_MAX 128
#define OUTBOXD_STAT_NAME_MAX 64

typedef struct {
    char name[OUTBOXD_STAT_NAME_MAX + 1];
    double value;
    int kind; /* outbox_sink_stat_kind_t: counter or gauge (/metrics' TYPE) */
} outboxd_stat_t;

typedef struct {
    bool has_last;
    bson_oid_t last_id;
    int64_t events;       /* events this sink has handled, in all */
    uint64_t seq;         /* the runner's window position just after last_id:
                           * not written, handed back by the writer's
                           * on_written once this checkpoint is durable */
    /* in_doubt (docs/recovery.md): true while a run may have published
     * past this position (set before its first publish, kept by every
     * write), false after a clean stop with nothing unacknowledged or a
     * position an operator set. Read back: 1, 0, or -1 when the document
     * (or the field, from an outboxd before it) is absent; written unless
     * -1. */
    int in_doubt;
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

/* Held around every write of a checkpoint document by this process (the
 * functions below take it themselves; another writer of the document, such
 * as the runner's count of malformed documents, takes it too): FerretDB 1.x
 * loses one of two updates of one document made at once. */
void outboxd_checkpoint_doc_lock(void);
void outboxd_checkpoint_doc_unlock(void);

/* Reads the sink's checkpoint; *found false when there is none yet.
 * Returns false with errbuf on a server error. */
bool outboxd_checkpoint_read(mongoc_client_pool_t *pool, const char *db, const char *coll,
                             const char *sink, outboxd_checkpoint_t *cp, bool *found,
                             char *errbuf, size_t errbuf_size);

typedef enum { OUTBOXD_WRITE_OK = 0, OUTBOXD_WRITE_ERROR, OUTBOXD_WRITE_FENCED } outboxd_write_rc_t;

/* What a fenced writer asks before each attempt and tells after a fenced
 * one; term < 0: no fence (ha off). The writers copy the struct; ctx must
 * outlive them. valid and lost are called on the writer's thread. */
typedef struct {
    int64_t term;
    bool (*valid)(void *ctx, int64_t term);
    void (*lost)(void *ctx, int64_t term, int64_t seen_term, const char *why);
    void *ctx;
} outboxd_fence_t;

/* Activation at term (>= 0): one findAndModify of {_id: sink, $or: [{term:
 * {$lte: term}}, {term: {$exists: false}}]} that sets term, owner and
 * claimed (upsert, write concern majority), and reads the position from
 * the document it returns into cp, as outboxd_checkpoint_read does.
 * *found: the document existed before (false: no checkpoint yet). $lte,
 * not $lt: a runner restarted in the same process at the same term claims
 * again. FENCED when the document has a higher term (*seen_term says which;
 * the insert of the upsert met the existing _id: E11000). ERROR with errbuf
 * on a server error. */
outboxd_write_rc_t outboxd_checkpoint_claim(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, const char *owner,
                                            outboxd_checkpoint_t *cp, bool *found, int64_t *seen_term,
                                            char *errbuf, size_t errbuf_size);

/* Writes the checkpoint document. term >= 0: an update of {_id: sink,
 * term: term} without upsert; matching nothing is FENCED (*seen_term: the
 * document's term now, -1 when it has none or is gone; errbuf says so).
 * term < 0: an upsert of {_id: sink}, as before leases. seen_term may be
 * NULL. */
outboxd_write_rc_t outboxd_checkpoint_write(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, const outboxd_checkpoint_t *cp,
                                            int64_t *seen_term, char *errbuf, size_t errbuf_size);

/* The fence touch before a dead letter: {_id: sink, term: term} gets
 * fenced_at = now; FENCED as for the write. term < 0: OK, nothing is
 * written. */
outboxd_write_rc_t outboxd_checkpoint_touch(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                            const char *sink, int64_t term, int64_t *seen_term,
                                            char *errbuf, size_t errbuf_size);

#endif
