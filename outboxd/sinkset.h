/*
 * sinkset.h - the sinks of one configuration: checked (plugins loaded,
 * options resolved) before anything starts, started, replaced on reload
 * (SIGHUP) sink by sink, and stopped.
 */
#ifndef OUTBOXD_SINKSET_H
#define OUTBOXD_SINKSET_H

#include "conffile.h"
#include "lease.h"
#include "metrics.h"
#include "plugin.h"
#include "reader.h"

#include "outbox/outbox.h"

typedef struct outboxd_sinkset outboxd_sinkset_t;

/* Loads every sink's plugin and checks its options. A sink marked optional
 * whose plugin cannot load is left out with an error logged. On success
 * takes conf; on failure returns NULL with errbuf ("FILE:LINE:COLUMN: ...")
 * and conf stays the caller's. */
outboxd_sinkset_t *outboxd_sinkset_prepare(outboxd_conf_t *conf, const char *path,
                                           outboxd_plugins_t *plugins, char *errbuf,
                                           size_t errbuf_size);

const outboxd_conf_t *outboxd_sinkset_conf(const outboxd_sinkset_t *set);

/* "sink NAME: plugin P V (FILE), ok" for each sink that will run. */
void outboxd_sinkset_print(const outboxd_sinkset_t *set, FILE *out);

/* Gets each sink's lease ("sink:NAME") from the manager, so that its first
 * round (outboxd_leases_start) bids for them: call before it. */
void outboxd_sinkset_leases(outboxd_sinkset_t *set, outboxd_leases_t *leases);
/* Hands each sink that runs its entry in the registry (metrics.h), before
 * outboxd_sinkset_start or _reload; a reload hides the sinks it removes.
 * Without it the sinks keep no figures. */
void outboxd_sinkset_metrics(outboxd_sinkset_t *set, outboxd_metrics_t *metrics);

/* Starts each sink's threads; each waits for its lease, then joins reader
 * (which must outlive the set's running sinks). */
void outboxd_sinkset_start(outboxd_sinkset_t *set, outbox_t *outbox, mongoc_client_pool_t *pool,
                           outboxd_reader_t *reader);

/* Moves from the running set old to the prepared set next: sinks that
 * are gone or changed stop (flushing and writing their checkpoints), sinks
 * that are the same keep running untouched, new and changed ones start
 * and join the shared reader; stopped ones leave it. A changed sink keeps
 * its lease and term (its new runner claims the checkpoint again); a
 * removed sink's lease is released (outboxd_leases_forget); a new sink's
 * is bid for at the manager's next round. Frees old; returns next. */
outboxd_sinkset_t *outboxd_sinkset_reload(outboxd_sinkset_t *old, outboxd_sinkset_t *next,
                                          outbox_t *outbox, mongoc_client_pool_t *pool,
                                          outboxd_reader_t *reader, outboxd_leases_t *leases);

/* Tells every sink to stop, without waiting: so that sinks and the
 * promoter wind down at once, each bounded by its own database wait. */
void outboxd_sinkset_request_stop(outboxd_sinkset_t *set);

/* Stops every sink (each flushes, writes its checkpoint and releases its
 * lease: SIGTERM hands the sinks over) and frees the set. Also frees a set
 * that was never started. */
void outboxd_sinkset_stop(outboxd_sinkset_t *set);

#endif
