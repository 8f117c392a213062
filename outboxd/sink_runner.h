/*
 * sink_runner.h - one sink, on its own threads: its own position, its own
 * checkpoint, its own retries. Runners share the outbox's reader (reader.h),
 * whose ring never waits for a sink, so a slow or failing sink never holds
 * back another: it falls behind the ring and catches up on a tail of its
 * own.
 *
 * With leases (docs/leases.md) a runner publishes only while it holds its
 * sink's lease: it waits for it (standing by: no plugin open, no window,
 * not a member of the reader), then claims the checkpoint at the lease's
 * term, joins the reader from it and publishes, checking the lease before
 * each publish call and in its feeder. When the lease is lost (its
 * deadline passed, another instance claimed a newer term, a fenced write)
 * it stops offering events at once, closes the plugin without flush,
 * drops its writers' pending writes and its window, leaves the reader,
 * logs "lease lost" with both terms, and stands by again. A hand-over (an
 * operator's release request, the fair share) and SIGTERM end with the
 * last fenced checkpoint and the lease's release instead. With
 * ha.enabled: false the lease is held for ever at term -1 and none of
 * this shows.
 */
#ifndef OUTBOXD_SINK_RUNNER_H
#define OUTBOXD_SINK_RUNNER_H

#include "conffile.h"
#include "lease.h"
#include "metrics.h"
#include "options.h"
#include "reader.h"

#include "outbox/outbox.h"
#include "outbox/sink.h"

#include <stdatomic.h>

typedef struct {
    outbox_t *outbox;            /* borrowed, thread-safe */
    mongoc_client_pool_t *pool;  /* borrowed, the outbox's pool */
    const outboxd_conf_t *conf;  /* borrowed for the runner's life */
    const outboxd_sink_conf_t *sink;
    const outbox_sink_plugin_t *plugin;
    const char *plugin_path;
    outboxd_options_t options;   /* owned by the runner once started */
    atomic_bool *stop;           /* the daemon's shutdown flag */
    outboxd_reader_t *reader;    /* borrowed: the outbox's shared reader; the
                                  * runner joins it (or says it will not) */
    outboxd_lease_t *lease;      /* borrowed; never NULL (ha off: always held) */
    outboxd_sink_metrics_t *metrics; /* borrowed: the sink's counters and state
                                  * (metrics.h); NULL: none kept */
    atomic_bool *release_at_stop;/* set before *stop at SIGTERM: release the lease
                                  * after the last checkpoint (a reload keeps it,
                                  * for the runner that replaces this one) */
} outboxd_sink_params_t;

typedef struct outboxd_sink_runner outboxd_sink_runner_t;

/* Starts the runner's thread; takes params->options. NULL if the thread
 * could not start. */
outboxd_sink_runner_t *outboxd_sink_runner_start(outboxd_sink_params_t *params);

/* Waits for the thread (after *stop was set), then frees the runner. The
 * thread flushes the sink and writes its checkpoint before it ends (when
 * it holds its lease; a standby runner just ends). */
void outboxd_sink_runner_join(outboxd_sink_runner_t *runner);

#endif
