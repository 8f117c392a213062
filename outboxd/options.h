/*
 * options.h - a sink's `options` map checked against its plugin's option
 * table, parsed into typed values with the table's defaults filled in: the
 * values host->option() and host->option_next() serve as strings, and
 * host->options_fill() writes into the plugin's own config struct (ABI 1.1).
 *
 * The option table is read with the plugin's own stride (option_size): an
 * ABI 1.0 plugin's entries are smaller, and their 1.1 members (offset,
 * flags) are never read.
 */
#ifndef OUTBOXD_OPTIONS_H
#define OUTBOXD_OPTIONS_H

#include "conffile.h"
#include "outbox/sink.h"

/* One entry of the plugin's table, parsed. */
typedef struct {
    const outbox_sink_option_t *def; /* the table entry (read within the stride only) */
    bool present;       /* given in the config or defaulted */
    bool secret;        /* a SECRET option, or a value the config marked secret */
    int64_t number;     /* INT, DURATION (milliseconds); BOOL as 0/1 */
    const char *text;   /* STRING, ENUM, SECRET: the value (owned by values[]) */
    char **list;        /* LIST: NULL-terminated, owned, never NULL once resolved */
} outboxd_option_value_t;

typedef struct {
    /* Every key with its value as a string, config order first, then the
     * defaults: what host->option and option_next serve. A secret given as
     * KEY_file appears under KEY with the file's content. */
    char **keys;
    char **values;
    size_t n;
    /* One per entry of the plugin's table (the "*" entry included, unused). */
    outboxd_option_value_t *typed;
    size_t n_typed;
    const outbox_sink_plugin_t *plugin;
} outboxd_options_t;

/* The stride of plugin's option table: option_size when the plugin struct
 * covers that member and it is nonzero, else OUTBOX_SINK_OPTION_SIZE_1_0. */
size_t outboxd_option_stride(const outbox_sink_plugin_t *plugin);

/* Entry i of plugin's option table, or NULL past the END entry (or when
 * there is no table). Only the members the stride covers may be read; use
 * outboxd_option_mapped() for offset and flags. */
const outbox_sink_option_t *outboxd_option_entry(const outbox_sink_plugin_t *plugin, size_t i);

/* Whether the entry has OUTBOX_SINK_OPTION_MAPPED (and the stride covers
 * offset and flags); sets *offset then. */
bool outboxd_option_mapped(const outbox_sink_plugin_t *plugin, const outbox_sink_option_t *entry,
                           size_t *offset);

/* "string", "integer", "boolean", "one of", "list", "duration", "secret". */
const char *outboxd_option_type_name(outbox_sink_option_type_t type);

/* Checks conf's options against plugin's table and parses them: unknown
 * keys (unless the table accepts any), types, ranges, enum choices,
 * required keys; LIST (a YAML sequence of strings or "a, b, c", items
 * trimmed, no empty item), DURATION ("250ms", "10s", "5m", "1h" or a bare
 * integer of milliseconds; min/max in ms, unbounded when both are 0; no
 * overflow), SECRET (also as KEY_file: PATH, read relative to path's
 * folder, at most OUTBOXD_SECRET_MAX_BYTES, one trailing newline dropped;
 * KEY and KEY_file together are an error). Errors are
 * "PATH:LINE:COLUMN: sink NAME: option KEY: ..." and never show a secret's
 * value. On success fills out (free with outboxd_options_free).
 *
 * It does not register secrets (so that it links without the secrets
 * registry): call outboxd_secrets_add_options(out) before anything prints. */
bool outboxd_options_resolve(const char *path, const outboxd_sink_conf_t *conf,
                             const outbox_sink_plugin_t *plugin, outboxd_options_t *out,
                             char *errbuf, size_t errbuf_size);
void outboxd_options_free(outboxd_options_t *opts);

/* The value of key as a string, or NULL when absent (host->option). */
const char *outboxd_options_get(const outboxd_options_t *opts, const char *key);

/* host->option_next: start with *cursor = 0; returns the next key (and its
 * value in *value when value is not NULL), NULL at the end. */
const char *outboxd_options_next(const outboxd_options_t *opts, size_t *cursor, const char **value);

/* host->options_fill: writes every mapped option of the plugin's table at
 * config + offset as the C type sink.h gives its option type: const char *
 * (STRING, ENUM, SECRET; NULL when absent), int64_t (INT, DURATION; 0 when
 * absent), int (BOOL), const char *const * (LIST, NULL-terminated, never
 * NULL). The strings live as long as opts. Returns 0. */
int outboxd_options_fill(const outboxd_options_t *opts, void *config);

#endif
