/*
 * checker.c - an ABI 1.1 test plugin with a check, for the daemon tests of
 * outboxd's host side: a reload whose new options fail check keeps the
 * running sink (`valid: no` is refused by check), one whose options pass
 * check but fail open (`fail_open: yes`), and secrets (`token`, a SECRET
 * option, given as token_file) that a careless plugin puts into its log
 * lines and error texts (`leak: yes`), which outboxd must scrub. Each
 * event is appended to the file `path` as "LABEL DESTINATION PAYLOAD".
 */
#include "outbox/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    int valid;
    int fail_open;
    const char *token;
    int leak;
    const char *label;
} config_t;

typedef struct {
    const outbox_sink_host_t *host;
    config_t cfg;
    FILE *out;
    int leaked_ack; /* leak: the first event is acked FATAL quoting the token */
} state_t;

static const outbox_sink_option_t options[] = {
    {.key = "path", .type = OUTBOX_SINK_OPT_STRING, .required = 1, OUTBOX_SINK_OPTION_AT(config_t, path),
     .help = "the file events are appended to"},
    {.key = "valid", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "yes", OUTBOX_SINK_OPTION_AT(config_t, valid),
     .help = "no: check refuses the configuration"},
    {.key = "fail_open", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "no",
     OUTBOX_SINK_OPTION_AT(config_t, fail_open), .help = "yes: check passes, open fails (FATAL)"},
    {.key = "token", .type = OUTBOX_SINK_OPT_SECRET, OUTBOX_SINK_OPTION_AT(config_t, token),
     .help = "a credential"},
    {.key = "spare", .type = OUTBOX_SINK_OPT_SECRET, .default_value = "ChkDefaultS3CRET",
     .help = "a secret with a default, which --plugin-help must not show"},
    {.key = "leak", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "no", OUTBOX_SINK_OPTION_AT(config_t, leak),
     .help = "yes: put the token into log lines and error texts, as a careless plugin would"},
    {.key = "label", .type = OUTBOX_SINK_OPT_STRING, .default_value = "v1", OUTBOX_SINK_OPTION_AT(config_t, label),
     .help = "written before each line"},
    OUTBOX_SINK_OPTION_END,
};

static int c_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    config_t cfg;
    host->options_fill(host->ctx, &cfg);
    if (cfg.leak && cfg.token)
        host->log(host->ctx, OUTBOX_SINK_LOG_WARNING, "check sees token %s", cfg.token);
    if (!cfg.valid) {
        if (cfg.leak && cfg.token)
            snprintf(errbuf, errbuf_size, "valid: refused by check (token %s)", cfg.token);
        else
            snprintf(errbuf, errbuf_size, "valid: no is refused by this plugin's check");
        return OUTBOX_SINK_FATAL;
    }
    return OUTBOX_SINK_OK;
}

/* Plugin-wide: a leaking open fails once per process, then succeeds. */
static int leaked_open;

static int c_open(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size) {
    state_t *s = calloc(1, sizeof *s);
    s->host = host;
    host->options_fill(host->ctx, &s->cfg);
    if (s->cfg.leak && s->cfg.token) {
        host->log(host->ctx, OUTBOX_SINK_LOG_INFO, "connecting with token %s", s->cfg.token);
        if (!leaked_open++) {
            snprintf(errbuf, errbuf_size, "the server refused token %s", s->cfg.token);
            free(s);
            return OUTBOX_SINK_RETRY;
        }
    }
    if (s->cfg.fail_open) {
        snprintf(errbuf, errbuf_size, "fail_open: open fails on purpose");
        free(s);
        return OUTBOX_SINK_FATAL;
    }
    s->out = fopen(s->cfg.path, "ae");
    if (!s->out) {
        snprintf(errbuf, errbuf_size, "path: cannot open %s", s->cfg.path);
        free(s);
        return OUTBOX_SINK_FATAL;
    }
    *state = s;
    return OUTBOX_SINK_OK;
}

static int c_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf, size_t errbuf_size) {
    state_t *s = state;
    for (size_t i = 0; i < n; i++) {
        if (s->cfg.leak && s->cfg.token && !s->leaked_ack) {
            char why[256];
            snprintf(why, sizeof why, "rejected by a server that wants token %s", s->cfg.token);
            s->leaked_ack = 1;
            s->host->ack(s->host->ctx, events[i].seq, OUTBOX_SINK_FATAL, why);
            continue;
        }
        fprintf(s->out, "%s %s %.*s\n", s->cfg.label, events[i].destination, (int)events[i].payload_len,
                (const char *)events[i].payload);
        if (fflush(s->out) != 0) {
            snprintf(errbuf, errbuf_size, "write failed");
            return OUTBOX_SINK_RETRY;
        }
        s->host->ack(s->host->ctx, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    return OUTBOX_SINK_OK;
}

static void c_close(void *state) {
    state_t *s = state;
    fclose(s->out);
    free(s);
}

OUTBOX_SINK_PLUGIN(.name = "checker", .version = "1", .description = "an ABI 1.1 plugin with a check (test)",
                   .options = options, .payloads = OUTBOX_SINK_PAYLOAD_JSON, .check = c_check, .open = c_open,
                   .publish = c_publish, .close = c_close)
