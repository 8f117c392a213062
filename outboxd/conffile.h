/*
 * conffile.h - outboxd's configuration file: YAML, parsed with libyaml, every
 * error reported as FILE:LINE:COLUMN: what.
 */
#ifndef OUTBOXD_CONFFILE_H
#define OUTBOXD_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { OUTBOXD_PAYLOAD_JSON = 0, OUTBOXD_PAYLOAD_BSON = 1 } outboxd_payload_t;
typedef enum { OUTBOXD_ON_ERROR_STOP = 0, OUTBOXD_ON_ERROR_SKIP = 1, OUTBOXD_ON_ERROR_DEADLETTER = 2 } outboxd_on_error_t;
typedef enum { OUTBOXD_ON_GAP_STOP = 0, OUTBOXD_ON_GAP_CONTINUE = 1 } outboxd_on_gap_t;
/* The message layout a sink publishes (docs/formats.md). */
typedef enum { OUTBOXD_MESSAGE_NATIVE = 0, OUTBOXD_MESSAGE_CLOUDEVENTS = 1, OUTBOXD_MESSAGE_DEBEZIUM = 2 } outboxd_message_format_t;
/* cloudevents.mode: auto is binary where the plugin's protocol has a
 * CloudEvents binding with headers (Kafka), structured elsewhere. */
typedef enum { OUTBOXD_CE_AUTO = 0, OUTBOXD_CE_BINARY = 1, OUTBOXD_CE_STRUCTURED = 2 } outboxd_ce_mode_t;

/* One string of an option written as a YAML sequence, and where it is. */
typedef struct {
    char *text;
    int line, column;
} outboxd_option_item_t;

/* One entry of the sink's free-form `options` map, in file order. */
typedef struct {
    char *key;
    char *value; /* a scalar as written (numbers and booleans too); for a
                    sequence, its items joined with ", " (what an ABI 1.0
                    plugin reads through host->option) */
    bool secret; /* a credential (from {file:} / {env:}, or a key that names
                    one): never printed, and scrubbed from every message */
    int line, column; /* the key's position */
    /* ABI 1.1 LIST options: a YAML sequence of strings. NULL / 0 for a
     * scalar; the option table decides whether a sequence is allowed. */
    outboxd_option_item_t *items;
    size_t n_items;
    bool is_sequence;
    int value_line, value_column; /* the value's position */
} outboxd_option_t;

typedef struct {
    char *name;      /* unique among sinks */
    char *plugin;    /* plugin name: file, kafka, ... */
    char *route;     /* template with {type} and {key}; checked at load */
    char **types;    /* type filter; n_types == 0 means every type */
    size_t n_types;
    outboxd_payload_t payload;
    outboxd_message_format_t format;   /* format, default native */
    char *ce_source;           /* cloudevents.source, {outbox} and {db} expanded */
    outboxd_ce_mode_t ce_mode; /* cloudevents.mode */
    int format_line, format_column; /* where format's value is; 0 when not written */
    outboxd_on_error_t on_error;
    outboxd_on_gap_t on_gap;
    bool optional;   /* when its plugin cannot load, run the others */
    bool recover;    /* recover, default true: before publishing after a crash
                      * or a takeover, ask the plugin which events in doubt
                      * the destination holds (docs/recovery.md) */
    outboxd_option_t *options;
    size_t n_options;
    int line, column; /* where the sink's mapping starts */
    int payload_line, payload_column; /* where payload's value is; 0 when not written */
    int route_line, route_column;     /* where route's value is */
} outboxd_sink_conf_t;

typedef struct {
    char *path;         /* the file, as given */
    char *mongodb_uri;  /* from mongodb.uri, or the file mongodb.uri_file */
    char *database;     /* mongodb.database */
    char *outbox;       /* outbox */
    char *plugin_dir;   /* plugin_dir (a relative one taken from the file's
                           folder), or NULL for the built-in default */
    int64_t checkpoint_every_events; /* checkpoint.every_events, default 1000 */
    int64_t checkpoint_every_ms;     /* checkpoint.every_ms, default 1000 */
    int64_t ring_events;             /* reader.ring_events, default OUTBOXD_RING_EVENTS_DEFAULT */
    int64_t ring_bytes;              /* reader.ring_bytes, default OUTBOXD_RING_BYTES_DEFAULT */
    /* ha: per-sink leases with fencing (docs/leases.md). The other keys are
     * checked even when ha.enabled is false. */
    bool ha_enabled;            /* ha.enabled, default true */
    int64_t ha_lease_ttl_ms;    /* default 10000 */
    int64_t ha_renew_ms;        /* default 3000; strictly below ha_lease_ttl_ms / 2 */
    char *ha_instance_id;       /* NULL: the host name */
    /* http: the metrics and health endpoint (http.h). */
    char *http_listen;          /* http.listen, NULL: no endpoint */
    int http_listen_line;       /* its line, for errors at start */
    int64_t http_ready_grace_ms; /* http.ready_grace_ms, default 30000 */
    int64_t http_stuck_ms;      /* http.stuck_ms, default 60000 */
    /* log: the survey of the log and its early warning (survey.h). */
    double log_warn_headroom;   /* log.warn_headroom, default 0.2 */
    int64_t log_survey_ms;      /* log.survey_ms, default 10000 */
    int64_t log_warn_every_ms;  /* log.warn_every_ms, default 60000 */
    outboxd_sink_conf_t *sinks;
    size_t n_sinks;
    /* The first secret written in the file itself (a password in
     * mongodb.uri, a secret option, a URL option with a password), for the
     * start-up warning when the file is readable by others: "mongodb.uri"
     * or "sink NAME option KEY" and where; NULL when there is none. */
    char *inline_secret;
    int inline_secret_line, inline_secret_column;
    /* The file's permission bits when group or others may read it, else 0. */
    unsigned readable_mode;
} outboxd_conf_t;

/* Limits, documented in docs/config.md and outboxd.conf(5). */
#define OUTBOXD_CONF_MAX_BYTES (1024 * 1024)     /* the configuration file */
#define OUTBOXD_CONF_MAX_DEPTH 32                /* nested mappings and sequences */
#define OUTBOXD_SECRET_MAX_BYTES (64 * 1024)     /* a {file:} or uri_file */
#define OUTBOXD_EVERY_EVENTS_MAX 1000000         /* checkpoint.every_events */
#define OUTBOXD_EVERY_MS_MAX 3600000             /* checkpoint.every_ms: an hour */
/* The shared reader's ring (reader.ring_events, reader.ring_bytes). The
 * defaults keep outboxd with three sinks under 40 MB resident (measured:
 * docs/performance.md); the ring holds whichever limit comes first. */
#define OUTBOXD_RING_EVENTS_DEFAULT 4096
#define OUTBOXD_RING_EVENTS_MAX 1000000
#define OUTBOXD_RING_BYTES_DEFAULT (8LL * 1024 * 1024)
#define OUTBOXD_RING_BYTES_MIN 1024LL
#define OUTBOXD_RING_BYTES_MAX (16LL * 1024 * 1024 * 1024)
/* http.ready_grace_ms: how long a sink may retry before /readyz says so. */
#define OUTBOXD_HTTP_GRACE_DEFAULT_MS 30000
#define OUTBOXD_HTTP_GRACE_MAX_MS 3600000
/* http.stuck_ms: how long one plugin call may run before /healthz fails. */
#define OUTBOXD_HTTP_STUCK_DEFAULT_MS 60000
#define OUTBOXD_HTTP_STUCK_MIN_MS 1000
/* log: how often outboxd looks at the log (its figures, each sink's lag
 * and headroom), the headroom below which it warns, and how often it
 * repeats a warning. */
#define OUTBOXD_LOG_WARN_HEADROOM_DEFAULT 0.2
#define OUTBOXD_LOG_SURVEY_DEFAULT_MS 10000
#define OUTBOXD_LOG_WARN_EVERY_DEFAULT_MS 60000
#define OUTBOXD_LOG_SURVEY_MIN_MS 100
#define OUTBOXD_LOG_SURVEY_MAX_MS 3600000
/* ha: the lease's time to live and renewal interval, in milliseconds, and
 * the instance id's length ([A-Za-z0-9._:-], 1 to 64 bytes). */
#define OUTBOXD_HA_TTL_DEFAULT_MS 10000
#define OUTBOXD_HA_RENEW_DEFAULT_MS 3000
#define OUTBOXD_HA_TTL_MIN_MS 1000
#define OUTBOXD_HA_TTL_MAX_MS 600000
#define OUTBOXD_HA_RENEW_MIN_MS 100
#define OUTBOXD_HA_INSTANCE_ID_MAX 64

/* Whether an option of this name holds a credential, so that its value is
 * secret even when written inline: a part (split at '.', '_' and '-') of
 * the key is password, passwd, passphrase, pwd, secret, token, nkey, seed,
 * creds, credentials, apikey or jwt, or the key is one of librdkafka's
 * ssl.key.pem, ssl_key, sasl.oauthbearer.config or sasl.jaas.config; unless
 * its last part is file, path, location or env (a key like password_file
 * names where the secret is, not the secret). Case-insensitive. */
bool outboxd_conf_key_is_secret(const char *key);

/* Loads and checks path. On failure returns NULL and writes
 * "PATH:LINE:COLUMN: message" (or "PATH: message" when there is no
 * position, e.g. the file cannot be opened) into errbuf. Unknown keys,
 * wrong types, missing required keys, bad enum values, duplicate sink
 * names and bad route templates are all errors; so are a database or outbox
 * name or a URI that liboutbox's outbox_conf_set() refuses. mongodb.uri and
 * every option value may be written as {file: PATH} (relative to the file's
 * folder; trailing newlines dropped) or {env: NAME}: those options are
 * marked secret. No secret is ever part of a message; the file or the
 * variable is named instead. */
outboxd_conf_t *outboxd_conf_load(const char *path, char *errbuf, size_t errbuf_size);
void outboxd_conf_free(outboxd_conf_t *conf);

/* Expands a route template: {type} and {key} (an empty string when key is
 * NULL). Returns the length written (excluding the NUL), or -1 when out is
 * too small. The template was checked at load. */
long outboxd_route_expand(const char *route, const char *type, const char *key, char *out,
                          size_t out_size);

#endif
