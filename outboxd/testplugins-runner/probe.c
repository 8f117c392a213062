/*
 * probe.c - a sink built against the ABI 1.1 header that records what the
 * sink runner hands it, for outboxd/test_runner_abi11.c: each event it
 * takes ("event ID DESTINATION", one line each, in the order taken), every
 * empty destination it is ever given ("empty-destination ID"), a publish
 * call that should have been a publish_some call ("publish-called"; the
 * events are then taken and acked all the same), its
 * open ("open payload=json|bson"), and each stats call ("stats N"), all
 * into the file named by the option `out`.
 *
 * publish_some takes at most `max_take` events per call (0: all) and keeps
 * at most that many unacked: it acks them in poll and flush, so that with a
 * small max_take the runner meets "took fewer than offered" again and again
 * and must offer the rest once more. With `stats: true` it reports
 * events_taken and stats_calls, and with `bad_stat: true` also a figure
 * whose name breaks the rule (outboxd drops it, saying so once). With
 * `overtake: true` publish_some claims one event more than it was given.
 * With `fatal_after_take: true` publish_some records and takes what it is
 * given, acks none of it and returns FATAL (a connection that broke after
 * the events went out). With `recover: true` its recover (ABI 1.1) marks
 * held the events the out file records as taken, by any instance
 * ("recover N HELD" is recorded); without, it marks none.
 *
 * Options are read through host->options_fill into probe_config_t (through
 * host->option on a host without it).
 */
#include "outbox/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *out;
    int64_t max_take;
    int stats;
    int bad_stat;
    int overtake;
    int fatal_after_take;
    int recover;
} probe_config_t;

static const outbox_sink_option_t probe_options[] = {
    {.key = "out", .type = OUTBOX_SINK_OPT_STRING, .required = 1, OUTBOX_SINK_OPTION_AT(probe_config_t, out),
     .help = "the file that records what the sink was given"},
    {.key = "max_take", .type = OUTBOX_SINK_OPT_INT, .default_value = "0", .min = 0, .max = 100000,
     OUTBOX_SINK_OPTION_AT(probe_config_t, max_take),
     .help = "publish_some takes at most this many events per call and keeps as many unacked (0: all)"},
    {.key = "stats", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "false",
     OUTBOX_SINK_OPTION_AT(probe_config_t, stats), .help = "report events_taken and stats_calls"},
    {.key = "bad_stat", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "false",
     OUTBOX_SINK_OPTION_AT(probe_config_t, bad_stat), .help = "also report a figure named Bad-Name"},
    {.key = "overtake", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "false",
     OUTBOX_SINK_OPTION_AT(probe_config_t, overtake),
     .help = "publish_some says it took one event more than it was given (a plugin bug), and acks none"},
    {.key = "fatal_after_take", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "false",
     OUTBOX_SINK_OPTION_AT(probe_config_t, fatal_after_take),
     .help = "publish_some takes and records the events, acks none, and returns FATAL"},
    {.key = "recover", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "false",
     OUTBOX_SINK_OPTION_AT(probe_config_t, recover),
     .help = "recover marks held the events the out file records"},
    OUTBOX_SINK_OPTION_END,
};

typedef struct {
    const outbox_sink_host_t *host;
    probe_config_t conf;
    FILE *out;
    uint64_t *inflight; /* seqs taken and not yet acked */
    size_t n_inflight, cap;
    double taken, stats_calls;
} probe_t;

static int probe_open(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size) {
    probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return OUTBOX_SINK_RETRY;
    p->host = host;
    if (OUTBOX_SINK_HOST_HAS(host, options_fill) && host->options_fill) {
        host->options_fill(host->ctx, &p->conf);
    } else {
        /* An older outboxd (the tests run this plugin on one to show what
         * it got wrong): the strings, parsed here. */
        const char *v;
        p->conf.out = host->option(host->ctx, "out");
        p->conf.max_take = (v = host->option(host->ctx, "max_take")) ? strtoll(v, NULL, 10) : 0;
        p->conf.stats = (v = host->option(host->ctx, "stats")) && !strcmp(v, "true");
        p->conf.bad_stat = (v = host->option(host->ctx, "bad_stat")) && !strcmp(v, "true");
        p->conf.overtake = (v = host->option(host->ctx, "overtake")) && !strcmp(v, "true");
        p->conf.fatal_after_take = (v = host->option(host->ctx, "fatal_after_take")) && !strcmp(v, "true");
        p->conf.recover = (v = host->option(host->ctx, "recover")) && !strcmp(v, "true");
    }
    if (!p->conf.out || !(p->out = fopen(p->conf.out, "a"))) {
        snprintf(errbuf, errbuf_size, "out: cannot open %s", p->conf.out ? p->conf.out : "(none)");
        free(p);
        return OUTBOX_SINK_FATAL;
    }
    p->cap = p->conf.max_take > 0 ? (size_t)p->conf.max_take : 0;
    p->inflight = p->cap ? calloc(p->cap, sizeof *p->inflight) : NULL;
    fprintf(p->out, "open payload=%s\n", OUTBOX_SINK_HOST_HAS(host, payload) && host->payload ? host->payload : "?");
    fflush(p->out);
    *state = p;
    return OUTBOX_SINK_OK;
}

static void record(probe_t *p, const outbox_sink_event_t *e) {
    if (!e->destination || !*e->destination)
        fprintf(p->out, "empty-destination %s\n", e->id);
    fprintf(p->out, "event %s %s\n", e->id, e->destination ? e->destination : "");
}

/* The runner must call publish_some when the plugin has it: a publish
 * call is recorded (and then served like publish_some taking it all, so
 * that an older runner shows its other defects too). */
static int probe_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                         size_t errbuf_size) {
    probe_t *p = state;
    (void)errbuf;
    (void)errbuf_size;
    fprintf(p->out, "publish-called\n");
    for (size_t i = 0; i < n; i++) {
        record(p, &events[i]);
        p->host->ack(p->host->ctx, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    fflush(p->out);
    p->taken += (double)n;
    return OUTBOX_SINK_OK;
}

static void ack_inflight(probe_t *p) {
    for (size_t i = 0; i < p->n_inflight; i++)
        p->host->ack(p->host->ctx, p->inflight[i], OUTBOX_SINK_OK, NULL);
    p->n_inflight = 0;
}

static int probe_publish_some(void *state, const outbox_sink_event_t *events, size_t n, size_t *taken,
                              char *errbuf, size_t errbuf_size) {
    probe_t *p = state;
    (void)errbuf;
    (void)errbuf_size;
    if (p->conf.overtake) {
        fprintf(p->out, "overtake %zu\n", n);
        fflush(p->out);
        *taken = n + 1;
        return OUTBOX_SINK_OK;
    }
    if (p->conf.fatal_after_take) {
        for (size_t i = 0; i < n; i++)
            record(p, &events[i]);
        fflush(p->out);
        *taken = n;
        snprintf(errbuf, errbuf_size, "probe: fatal_after_take");
        return OUTBOX_SINK_FATAL;
    }
    size_t k = n;
    if (p->cap)
        k = p->cap - p->n_inflight < n ? p->cap - p->n_inflight : n;
    for (size_t i = 0; i < k; i++) {
        record(p, &events[i]);
        if (p->cap)
            p->inflight[p->n_inflight++] = events[i].seq;
        else
            p->host->ack(p->host->ctx, events[i].seq, OUTBOX_SINK_OK, NULL);
    }
    fflush(p->out);
    p->taken += (double)k;
    *taken = k;
    return OUTBOX_SINK_OK;
}

static int probe_poll(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    (void)timeout_ms;
    (void)errbuf;
    (void)errbuf_size;
    ack_inflight(state);
    return OUTBOX_SINK_OK;
}

static int probe_flush(void *state, int timeout_ms, char *errbuf, size_t errbuf_size) {
    return probe_poll(state, timeout_ms, errbuf, errbuf_size);
}

static void probe_stats(void *state, outbox_sink_stat_fn emit, void *emit_ctx) {
    probe_t *p = state;
    if (!p->conf.stats)
        return;
    p->stats_calls++;
    emit(emit_ctx, "events_taken", OUTBOX_SINK_STAT_COUNTER, p->taken, "events publish_some took");
    emit(emit_ctx, "stats_calls", OUTBOX_SINK_STAT_COUNTER, p->stats_calls, NULL);
    if (p->conf.bad_stat)
        emit(emit_ctx, "Bad-Name", OUTBOX_SINK_STAT_GAUGE, 1, "a name outboxd refuses");
    fprintf(p->out, "stats %.0f\n", p->stats_calls);
    fflush(p->out);
}

static int probe_recover(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held,
                         char *errbuf, size_t errbuf_size) {
    probe_t *p = state;
    size_t found = 0;
    if (p->conf.recover) {
        FILE *f = fopen(p->conf.out, "r");
        if (!f) {
            snprintf(errbuf, errbuf_size, "probe: cannot read %s back", p->conf.out);
            return OUTBOX_SINK_RETRY;
        }
        char line[1200];
        while (fgets(line, sizeof line, f)) {
            char id[25];
            if (sscanf(line, "event %24s", id) != 1)
                continue;
            for (size_t i = 0; i < n; i++)
                if (!held[i] && !strcmp(events[i].id, id)) {
                    held[i] = 1;
                    found++;
                }
        }
        fclose(f);
    }
    fprintf(p->out, "recover %zu %zu\n", n, found);
    fflush(p->out);
    return OUTBOX_SINK_OK;
}

static void probe_close(void *state) {
    probe_t *p = state;
    fclose(p->out);
    free(p->inflight);
    free(p);
}

OUTBOX_SINK_PLUGIN(.name = "probe", .version = "1", .description = "records what the sink runner hands it",
                   .options = probe_options, .open = probe_open, .publish = probe_publish,
                   .poll = probe_poll, .flush = probe_flush, .close = probe_close,
                   .publish_some = probe_publish_some, .stats = probe_stats, .recover = probe_recover)
