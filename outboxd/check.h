/*
 * check.h - a sink's configuration judged against its plugin before
 * anything runs: the payload encoding it asks for, then the plugin's own
 * check (ABI 1.1) through a host that offers only what check may use. Run
 * by sinkset prepare, so `outboxd --check`, start and SIGHUP (before the
 * running set is touched) all refuse the same configurations.
 */
#ifndef OUTBOXD_CHECK_H
#define OUTBOXD_CHECK_H

#include "conffile.h"
#include "options.h"
#include "outbox/sink.h"

#include <stdbool.h>
#include <stddef.h>

/* Refuses a sink whose `payload` is not among the plugin's declared
 * payloads (when the plugin declares any): "PATH:LINE:COLUMN: sink NAME:
 * payload bson: plugin P accepts only json", at the sink's payload line
 * (the sink's own when it is not written). */
bool outboxd_sink_payload_check(const char *path, const outboxd_sink_conf_t *sink,
                                const outbox_sink_plugin_t *plugin, char *errbuf, size_t errbuf_size);

/* The payload check above, then plugin->check when the plugin has one,
 * with a check-only host: log (prefixed with the sink's name), option,
 * option_next, options_fill (from opts), route and payload; ack is there
 * but only logs an error. A refusal is "PATH:LINE:COLUMN: sink NAME:
 * MESSAGE (plugin P)", at the line of option KEY when MESSAGE starts with
 * "KEY: " for a key of the sink's options (KEY_file counts for KEY), else
 * at the sink's; the message is scrubbed of every registered secret.
 * True when the sink passes (or the plugin has no check). */
bool outboxd_sink_check(const char *path, const outboxd_sink_conf_t *sink,
                        const outbox_sink_plugin_t *plugin, const outboxd_options_t *opts,
                        char *errbuf, size_t errbuf_size);

#endif
