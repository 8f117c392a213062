/*
 * sink_runner.h - one sink, on its own threads: its own position, its own
 * checkpoint, its own retries. Runners share the outbox's reader (reader.h),
 * whose ring never waits for a sink, so a slow or failing sink never holds
 * back another: it falls behind the ring and catches up on a tail of its
 * own.
 */
#ifndef OUTBOXD_SINK_RUNNER_H
#define OUTBOXD_SINK_RUNNER_H

#include "conffile.h"
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
} outboxd_sink_params_t;

typedef struct outboxd_sink_runner outboxd_sink_runner_t;

/* Starts the runner's thread; takes params->options. NULL if the thread
 * could not start. */
outboxd_sink_runner_t *outboxd_sink_runner_start(outboxd_sink_params_t *params);

/* Waits for the thread (after *stop was set), then frees the runner. The
 * thread flushes the sink and writes its checkpoint before it ends. */
void outboxd_sink_runner_join(outboxd_sink_runner_t *runner);

#endif
