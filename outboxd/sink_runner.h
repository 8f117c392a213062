/*
 * sink_runner.h - one sink, on its own thread: its own tail, its own
 * checkpoint, its own retries. A slow or failing sink never holds back
 * another, because nothing is shared between runners but the (thread-safe)
 * outbox handle and client pool.
 */
#ifndef OUTBOXD_SINK_RUNNER_H
#define OUTBOXD_SINK_RUNNER_H

#include "conffile.h"
#include "options.h"
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
} outboxd_sink_params_t;

typedef struct outboxd_sink_runner outboxd_sink_runner_t;

/* Starts the runner's thread; takes params->options. NULL if the thread
 * could not start. */
outboxd_sink_runner_t *outboxd_sink_runner_start(outboxd_sink_params_t *params);

/* Waits for the thread (after *stop was set), then frees the runner. The
 * thread flushes the sink and writes its checkpoint before it ends. */
void outboxd_sink_runner_join(outboxd_sink_runner_t *runner);

#endif
