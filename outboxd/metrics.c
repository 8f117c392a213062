/*
 * metrics.c - see metrics.h.
 */
#include "config.h"

#include "metrics.h"

#include "outbox/sink.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct outboxd_metrics {
    pthread_mutex_t lock; /* the list; never a counter */
    outboxd_sink_metrics_t *sinks;
    double start_time; /* the registry's birth, seconds since the epoch */
};

static const char *const state_names[OUTBOXD_SINK_N_STATES] = {"starting", "running", "retrying",
                                                                "gap",      "stopped", "standby"};
static const char *const fail_names[OUTBOXD_FAIL_N] = {"fatal", "malformed", "route", "payload"};
static const char *const call_names[OUTBOXD_CALL_N] = {"", "open", "publish", "poll", "flush", "close"};

const char *outboxd_sink_state_name(outboxd_sink_state_t state) {
    return state >= 0 && state < OUTBOXD_SINK_N_STATES ? state_names[state] : "unknown";
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

outboxd_metrics_t *outboxd_metrics_new(void) {
    outboxd_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return m;
}

void outboxd_metrics_free(outboxd_metrics_t *m) {
    if (!m)
        return;
    while (m->sinks) {
        outboxd_sink_metrics_t *next = m->sinks->next;
        free(m->sinks->sink);
        free(m->sinks->plugin);
        free(m->sinks);
        m->sinks = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

outboxd_sink_metrics_t *outboxd_metrics_sink(outboxd_metrics_t *m, const char *sink, const char *plugin) {
    pthread_mutex_lock(&m->lock);
    outboxd_sink_metrics_t **end = &m->sinks, *s;
    for (s = m->sinks; s && strcmp(s->sink, sink) != 0; s = s->next)
        end = &s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->sink = strdup(sink)))
            abort();
        atomic_init(&s->state, OUTBOXD_SINK_STARTING);
        atomic_init(&s->state_since_ms, mono_ms());
        *end = s; /* in the config's order: the scrape lists them so */
    }
    if (!s->plugin || strcmp(s->plugin, plugin) != 0) {
        char *p = strdup(plugin);
        if (!p)
            abort();
        free(s->plugin);
        s->plugin = p;
    }
    atomic_store(&s->present, true);
    pthread_mutex_unlock(&m->lock);
    return s;
}

void outboxd_sink_metrics_hide(outboxd_sink_metrics_t *s) {
    if (s)
        atomic_store(&s->present, false);
}

void outboxd_sink_metrics_state(outboxd_sink_metrics_t *s, outboxd_sink_state_t state) {
    if (!s)
        return;
    if (atomic_exchange(&s->state, (int)state) != (int)state)
        atomic_store(&s->state_since_ms, mono_ms());
}

void outboxd_sink_metrics_call(outboxd_sink_metrics_t *s, outboxd_plugin_call_t call) {
    if (!s)
        return;
    /* The time first: a reader that sees the call sees its start. */
    if (call != OUTBOXD_CALL_NONE)
        atomic_store(&s->call_since_ms, mono_ms());
    atomic_store(&s->call, (int)call);
}

void outboxd_buf_printf(outboxd_buf_t *b, const char *fmt, ...) {
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->text ? b->text + b->len : NULL, b->text ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->text && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *grown = realloc(b->text, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->text = grown;
        b->cap = cap;
    }
}

/* A label value with \, " and newlines escaped (text format 0.0.4). */
static void put_label(outboxd_buf_t *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            outboxd_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            outboxd_buf_printf(b, "\\n");
        else
            outboxd_buf_printf(b, "%c", *v);
    }
}

static void put_labels(outboxd_buf_t *b, const outboxd_sink_metrics_t *s) {
    outboxd_buf_printf(b, "{sink=\"");
    put_label(b, s->sink);
    outboxd_buf_printf(b, "\",plugin=\"");
    put_label(b, s->plugin ? s->plugin : "");
    outboxd_buf_printf(b, "\"");
}

/* One counter of every present sink, read by off (an atomic_llong of the
 * entry). */
static void sink_counter(outboxd_metrics_t *m, outboxd_buf_t *b, const char *name, const char *help, size_t off) {
    outboxd_buf_printf(b, "# HELP outboxd_sink_%s %s\n# TYPE outboxd_sink_%s counter\n", name, help, name);
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        outboxd_buf_printf(b, "outboxd_sink_%s", name);
        put_labels(b, s);
        outboxd_buf_printf(b, "} %lld\n", (long long)atomic_load((atomic_llong *)((char *)s + off)));
    }
}

void outboxd_metrics_render(outboxd_metrics_t *m, outboxd_buf_t *b) {
    outboxd_buf_printf(b,
                       "# HELP outboxd_build_info outboxd's version and the sink plugin ABI it hosts.\n"
                       "# TYPE outboxd_build_info gauge\n"
                       "outboxd_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n"
                       "# HELP outboxd_start_time_seconds When this outboxd started, in seconds since the epoch.\n"
                       "# TYPE outboxd_start_time_seconds gauge\n"
                       "outboxd_start_time_seconds %.3f\n",
                       PACKAGE_VERSION, OUTBOX_SINK_ABI_MAJOR, OUTBOX_SINK_ABI_MINOR, m->start_time);
    pthread_mutex_lock(&m->lock);
    static const struct {
        const char *name, *help;
        size_t off;
        bool failed_after; /* events_failed_total (labelled by reason) comes next */
    } counters[] = {
        {"events_read_total", "Events taken from the log into the sink's window.",
         offsetof(outboxd_sink_metrics_t, read), false},
        {"events_published_total", "Events handed to the plugin's publish (again when retried).",
         offsetof(outboxd_sink_metrics_t, published), false},
        {"events_acked_total", "Events the plugin acknowledged as delivered.", offsetof(outboxd_sink_metrics_t, acked),
         false},
        {"events_retried_total", "Events the plugin refused with RETRY, to be offered again.",
         offsetof(outboxd_sink_metrics_t, retried), true},
        {"events_dead_lettered_total", "Failed events written to the outbox's dead-letter collection.",
         offsetof(outboxd_sink_metrics_t, dead_lettered), false},
        {"events_skipped_total", "Failed events passed over (on_error: skip).", offsetof(outboxd_sink_metrics_t, skipped),
         false},
        {"publish_batches_total", "Calls of the plugin's publish.", offsetof(outboxd_sink_metrics_t, batches), false},
        {"checkpoint_writes_total", "Writes of the sink's checkpoint document.",
         offsetof(outboxd_sink_metrics_t, checkpoint_writes), false},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        sink_counter(m, b, counters[i].name, counters[i].help, counters[i].off);
        if (!counters[i].failed_after)
            continue;
        outboxd_buf_printf(b, "# HELP outboxd_sink_events_failed_total Events that failed for good, by reason.\n"
                              "# TYPE outboxd_sink_events_failed_total counter\n");
        for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
            for (int r = 0; atomic_load(&s->present) && r < OUTBOXD_FAIL_N; r++) {
                outboxd_buf_printf(b, "outboxd_sink_events_failed_total");
                put_labels(b, s);
                outboxd_buf_printf(b, ",reason=\"%s\"} %lld\n", fail_names[r],
                                   (long long)atomic_load(&s->failed[r]));
            }
        }
    }
    outboxd_buf_printf(b, "# HELP outboxd_sink_state The sink's state: 1 for the current one, 0 for the others.\n"
                          "# TYPE outboxd_sink_state gauge\n");
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        int now = atomic_load(&s->state);
        for (int st = 0; atomic_load(&s->present) && st < OUTBOXD_SINK_N_STATES; st++) {
            outboxd_buf_printf(b, "outboxd_sink_state");
            put_labels(b, s);
            outboxd_buf_printf(b, ",state=\"%s\"} %d\n", state_names[st], st == now);
        }
    }
    outboxd_buf_printf(b, "# HELP outboxd_sink_plugin_call_seconds How long the plugin call the sink is in has run "
                          "(0: in none).\n"
                          "# TYPE outboxd_sink_plugin_call_seconds gauge\n");
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        int call = atomic_load(&s->call);
        outboxd_buf_printf(b, "outboxd_sink_plugin_call_seconds");
        put_labels(b, s);
        outboxd_buf_printf(b, "} %.3f\n",
                           call ? (double)(mono_ms() - atomic_load(&s->call_since_ms)) / 1000.0 : 0.0);
    }
    outboxd_buf_printf(b, "# HELP outboxd_sink_state_seconds How long the sink has been in its current state.\n"
                          "# TYPE outboxd_sink_state_seconds gauge\n");
    int64_t now_ms = mono_ms();
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        outboxd_buf_printf(b, "outboxd_sink_state_seconds");
        put_labels(b, s);
        outboxd_buf_printf(b, "} %.3f\n", (double)(now_ms - atomic_load(&s->state_since_ms)) / 1000.0);
    }
    pthread_mutex_unlock(&m->lock);
}

bool outboxd_metrics_sinks_ready(outboxd_metrics_t *m, int64_t grace_ms, outboxd_buf_t *b) {
    bool ready = true;
    int64_t now_ms = mono_ms();
    outboxd_buf_printf(b, "[");
    pthread_mutex_lock(&m->lock);
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        int st = atomic_load(&s->state);
        int64_t for_ms = now_ms - atomic_load(&s->state_since_ms);
        bool ok = st == OUTBOXD_SINK_RUNNING || st == OUTBOXD_SINK_STANDBY ||
                  ((st == OUTBOXD_SINK_RETRYING || st == OUTBOXD_SINK_STARTING) && for_ms < grace_ms);
        if (ok)
            continue;
        /* Sink names are word characters (conffile.c): no JSON escaping. */
        outboxd_buf_printf(b, "%s{\"sink\":\"%s\",\"state\":\"%s\",\"for_ms\":%lld}", ready ? "" : ",", s->sink,
                           state_names[st], (long long)for_ms);
        ready = false;
    }
    pthread_mutex_unlock(&m->lock);
    outboxd_buf_printf(b, "]");
    return ready;
}

bool outboxd_metrics_sinks_live(outboxd_metrics_t *m, int64_t stuck_ms, outboxd_buf_t *b) {
    bool live = true;
    int64_t now_ms = mono_ms();
    outboxd_buf_printf(b, "[");
    pthread_mutex_lock(&m->lock);
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        int call = atomic_load(&s->call);
        if (!atomic_load(&s->present) || call <= OUTBOXD_CALL_NONE || call >= OUTBOXD_CALL_N)
            continue;
        int64_t for_ms = now_ms - atomic_load(&s->call_since_ms);
        if (for_ms < stuck_ms)
            continue;
        outboxd_buf_printf(b, "%s{\"sink\":\"%s\",\"in\":\"%s\",\"for_ms\":%lld}", live ? "" : ",", s->sink,
                           call_names[call], (long long)for_ms);
        live = false;
    }
    pthread_mutex_unlock(&m->lock);
    outboxd_buf_printf(b, "]");
    return live;
}
