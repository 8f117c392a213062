/*
 * plugin_1_0.c - a sink plugin written for ABI 1.0 and built against the
 * 1.0 header (tests/abi/1.0/outbox/sink.h, found through -I as
 * <outbox/sink.h>): the proof that outboxd keeps loading and running
 * plugins built before ABI 1.1 (outboxd/test_abi_compat.c). It uses only
 * what 1.0 offered: string options through host->option, publish, and
 * acks from within publish. Each event is appended to the file named by
 * option `path` as "DESTINATION PAYLOAD", one line each.
 */
#include <outbox/sink.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if OUTBOX_SINK_ABI_MINOR != 0
#error "plugin_1_0.c must be built against the ABI 1.0 header (tests/abi/1.0)"
#endif

typedef struct {
    const outbox_sink_host_t *host;
    FILE *out;
} state_t;

static const outbox_sink_option_t options[] = {
    {"path", OUTBOX_SINK_OPT_STRING, NULL, 1, 0, 0, NULL, "the file events are appended to"},
    {"prefix", OUTBOX_SINK_OPT_STRING, "1.0", 0, 0, 0, NULL, "written before each line"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static int v10_open(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size) {
    const char *path = host->option(host->ctx, "path");
    FILE *out = fopen(path, "ae");
    if (!out) {
        snprintf(errbuf, errbuf_size, "cannot open %s", path);
        return OUTBOX_SINK_FATAL;
    }
    state_t *s = calloc(1, sizeof *s);
    s->host = host;
    s->out = out;
    *state = s;
    host->log(host->ctx, OUTBOX_SINK_LOG_INFO, "ABI 1.0 plugin open, host ABI %u.%u", host->abi_major,
              host->abi_minor);
    return OUTBOX_SINK_OK;
}

static int v10_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                       size_t errbuf_size) {
    state_t *s = state;
    const char *prefix = s->host->option(s->host->ctx, "prefix");
    for (size_t i = 0; i < n; i++) {
        fprintf(s->out, "%s %s %.*s\n", prefix, events[i].destination, (int)events[i].payload_len,
                (const char *)events[i].payload);
        if (fflush(s->out) != 0) {
            snprintf(errbuf, errbuf_size, "write failed");
            return OUTBOX_SINK_RETRY;
        }
        s->host->ack(s->host->ctx, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    return OUTBOX_SINK_OK;
}

static void v10_close(void *state) {
    state_t *s = state;
    fclose(s->out);
    free(s);
}

OUTBOX_SINK_PLUGIN(.name = "abi10", .version = "1.0", .description = "an ABI 1.0 plugin (test)",
                   .options = options, .open = v10_open, .publish = v10_publish, .close = v10_close)
