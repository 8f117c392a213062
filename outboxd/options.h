/*
 * options.h - a sink's `options` map checked against its plugin's option
 * table, with the table's defaults filled in: the values host->option()
 * serves.
 */
#ifndef OUTBOXD_OPTIONS_H
#define OUTBOXD_OPTIONS_H

#include "conffile.h"
#include "outbox/sink.h"

typedef struct {
    char **keys;
    char **values;
    size_t n;
} outboxd_options_t;

/* Checks conf's options against plugin's table: unknown keys (unless the
 * table accepts any), types, ranges, enum choices, required keys. Errors
 * are "PATH:LINE:COLUMN: sink NAME: option KEY: ...". On success fills out
 * (free with outboxd_options_free). */
bool outboxd_options_resolve(const char *path, const outboxd_sink_conf_t *conf,
                             const outbox_sink_plugin_t *plugin, outboxd_options_t *out,
                             char *errbuf, size_t errbuf_size);
void outboxd_options_free(outboxd_options_t *opts);
const char *outboxd_options_get(const outboxd_options_t *opts, const char *key);

#endif
