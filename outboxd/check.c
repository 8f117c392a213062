/*
 * check.c - see check.h. The check-only host is built on the stack for
 * one call: check runs on outboxd's main thread and must not keep the host
 * (sink.h: strings live until check returns).
 */
#include "check.h"

#include "log.h"
#include "msgformat.h"
#include "plugin.h"
#include "secrets.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const outboxd_sink_conf_t *sink;
    const outboxd_options_t *opts;
    char prefix[300];
} check_ctx_t;

static const char *payload_name(outboxd_payload_t p) {
    return p == OUTBOXD_PAYLOAD_BSON ? "bson" : "json";
}

bool outboxd_sink_payload_check(const char *path, const outboxd_sink_conf_t *sink,
                                const outbox_sink_plugin_t *plugin, char *errbuf, size_t errbuf_size) {
    if (!OUTBOXD_PLUGIN_HAS(plugin, payloads) || plugin->payloads == 0)
        return true;
    unsigned want = sink->payload == OUTBOXD_PAYLOAD_BSON ? OUTBOX_SINK_PAYLOAD_BSON : OUTBOX_SINK_PAYLOAD_JSON;
    if (plugin->payloads & want)
        return true;
    char accepted[32] = "";
    if (plugin->payloads & OUTBOX_SINK_PAYLOAD_JSON)
        strcat(accepted, "json");
    if (plugin->payloads & OUTBOX_SINK_PAYLOAD_BSON)
        strcat(accepted, accepted[0] ? " or bson" : "bson");
    int line = sink->payload_line ? sink->payload_line : sink->line;
    int column = sink->payload_line ? sink->payload_column : sink->column;
    snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: payload %s: plugin %s accepts only %s", path, line, column,
             sink->name, payload_name(sink->payload), plugin->name,
             accepted[0] ? accepted : "encodings this outboxd does not know");
    return false;
}

__attribute__((format(printf, 3, 4))) static void check_log(void *ctx, outbox_sink_log_level_t level,
                                                            const char *fmt, ...) {
    check_ctx_t *c = ctx;
    va_list ap;
    va_start(ap, fmt);
    outboxd_vlog(level, c->prefix, fmt, ap);
    va_end(ap);
}

/* sink.h: ack must not be called during check. A plugin that does gets an
 * error in the log, never a crash: there is nothing to ack. */
static void check_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    check_ctx_t *c = ctx;
    (void)status;
    (void)error;
    outboxd_log(OUTBOX_SINK_LOG_ERROR, "%splugin bug: ack (seq %llu) called during check; ignored", c->prefix,
                (unsigned long long)seq);
}

static const char *check_option(void *ctx, const char *key) {
    check_ctx_t *c = ctx;
    return outboxd_options_get(c->opts, key);
}

static const char *check_option_next(void *ctx, size_t *cursor, const char **value) {
    check_ctx_t *c = ctx;
    return outboxd_options_next(c->opts, cursor, value);
}

static int check_options_fill(void *ctx, void *config) {
    check_ctx_t *c = ctx;
    return outboxd_options_fill(c->opts, config);
}

/* Where the message points: the route's value for "route: ...", option
 * KEY's line (or KEY_file's) when it starts with "KEY: ", else the sink's. */
static void position_of(const outboxd_sink_conf_t *sink, const char *msg, int *line, int *column) {
    *line = sink->line;
    *column = sink->column;
    const char *colon = strstr(msg, ": ");
    if (!colon)
        return;
    size_t len = (size_t)(colon - msg);
    if (len == 5 && strncmp(msg, "route", 5) == 0 && sink->route_line > 0) {
        /* A plugin's check may judge the route too (the file sink's fixed
         * directory): point at the route's value. */
        *line = sink->route_line;
        *column = sink->route_column;
        return;
    }
    for (size_t i = 0; i < sink->n_options; i++) {
        const char *k = sink->options[i].key;
        size_t klen = strlen(k);
        if ((klen == len && strncmp(k, msg, len) == 0) ||
            (klen == len + 5 && strncmp(k, msg, len) == 0 && strcmp(k + len, "_file") == 0)) {
            *line = sink->options[i].line;
            *column = sink->options[i].column;
            return;
        }
    }
}

bool outboxd_sink_check(const char *path, const outboxd_sink_conf_t *sink,
                        const outbox_sink_plugin_t *plugin, const outboxd_options_t *opts,
                        char *errbuf, size_t errbuf_size) {
    if (!outboxd_sink_payload_check(path, sink, plugin, errbuf, errbuf_size))
        return false;
    outboxd_msgformat_t mf;
    char why[400];
    if (!outboxd_msgformat_resolve(sink, plugin, &mf, why, sizeof why)) {
        int line = sink->format_line ? sink->format_line : sink->line;
        int column = sink->format_line ? sink->format_column : sink->column;
        snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: %s", path, line, column, sink->name, why);
        return false;
    }
    if (!OUTBOXD_PLUGIN_HAS(plugin, check) || !plugin->check)
        return true;
    check_ctx_t c = {.sink = sink, .opts = opts};
    snprintf(c.prefix, sizeof c.prefix, "sink %s: ", sink->name);
    outbox_sink_host_t host = {
        .struct_size = sizeof host,
        .abi_major = OUTBOX_SINK_ABI_MAJOR,
        .abi_minor = OUTBOX_SINK_ABI_MINOR,
        .ctx = &c,
        .sink_name = sink->name,
        .log = check_log,
        .ack = check_ack,
        .option = check_option,
        .option_next = check_option_next,
        .route = sink->route ? sink->route : "",
        .payload = payload_name(sink->payload),
        .options_fill = check_options_fill,
        /* ABI 1.2: what the sink's open will be told. */
        .format = outboxd_message_format_name(mf.format),
        .message_as_given = mf.format != OUTBOXD_MESSAGE_NATIVE,
    };
    char msg[1024] = "";
    int rc = plugin->check(&host, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    if (rc == OUTBOX_SINK_OK)
        return true;
    /* Scrubbed before it goes anywhere: a careless plugin may quote a secret. */
    outboxd_secrets_scrub(msg, sizeof msg);
    int line, column;
    position_of(sink, msg, &line, &column);
    snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: %s (plugin %s)", path, line, column, sink->name,
             msg[0] ? msg : "check failed without saying why", plugin->name);
    return false;
}
