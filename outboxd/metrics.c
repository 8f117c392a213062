/*
 * metrics.c - see metrics.h.
 */
#include "config.h"

#include "metrics.h"

#include "clock.h"

#include "outbox/sink.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct outboxd_metrics {
    pthread_mutex_t lock; /* the list and the log's figures; never a counter */
    outboxd_sink_metrics_t *sinks;
    double start_time; /* the registry's birth, seconds since the epoch */
    outboxd_log_figures_t log;
    atomic_llong ready_grace_ms;
    _Atomic double warn_headroom;
    outboxd_heartbeat_t threads[OUTBOXD_THREAD_N];
};

/* The latency histogram's bucket bounds, seconds (metrics.h). */
static const double latency_le[OUTBOXD_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                           2.5,   5,    10,    30,   60,  120,  300, 600};
static const char *const thread_names[OUTBOXD_THREAD_N] = {"reader", "lease", "survey"};

static const char *const state_names[OUTBOXD_SINK_N_STATES] = {"starting", "running", "retrying",
                                                                "gap",      "stopped", "standby"};
static const char *const fail_names[OUTBOXD_FAIL_N] = {"fatal", "malformed", "route", "payload"};
static const char *const call_names[OUTBOXD_CALL_N] = {"", "open", "publish", "poll", "flush", "close", "recover"};

const char *outboxd_sink_state_name(outboxd_sink_state_t state) {
    return state >= 0 && state < OUTBOXD_SINK_N_STATES ? state_names[state] : "unknown";
}

outboxd_metrics_t *outboxd_metrics_new(void) {
    outboxd_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    atomic_init(&m->ready_grace_ms, 30000);
    atomic_init(&m->warn_headroom, 0.2);
    return m;
}

void outboxd_metrics_free(outboxd_metrics_t *m) {
    if (!m)
        return;
    while (m->sinks) {
        outboxd_sink_metrics_t *next = m->sinks->next;
        pthread_mutex_destroy(&m->sinks->figures_lock);
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
        atomic_init(&s->state_since_ms, outboxd_mono_ms());
        pthread_mutex_init(&s->figures_lock, NULL);
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
        atomic_store(&s->state_since_ms, outboxd_mono_ms());
}

void outboxd_sink_metrics_call(outboxd_sink_metrics_t *s, outboxd_plugin_call_t call) {
    if (!s)
        return;
    /* The time first: a reader that sees the call sees its start. */
    if (call != OUTBOXD_CALL_NONE)
        atomic_store(&s->call_since_ms, outboxd_mono_ms());
    atomic_store(&s->call, (int)call);
}

void outboxd_sink_metrics_latency(outboxd_sink_metrics_t *s, int64_t created_ms) {
    if (!s)
        return;
    /* A producer's clock ahead of ours would make it negative: 0 then. */
    int64_t us = (outboxd_wall_ms() - created_ms) * 1000;
    if (us < 0)
        us = 0;
    size_t b = 0;
    while (b < OUTBOXD_LATENCY_BUCKETS && (double)us / 1e6 > latency_le[b])
        b++;
    atomic_fetch_add(&s->latency[b], 1);
    atomic_fetch_add(&s->latency_sum_us, us);
}

void outboxd_sink_metrics_stats(outboxd_sink_metrics_t *s, const outboxd_stat_t *stats, size_t n) {
    if (!s)
        return;
    if (n > OUTBOXD_STATS_MAX)
        n = OUTBOXD_STATS_MAX;
    pthread_mutex_lock(&s->figures_lock);
    memcpy(s->stats, stats, n * sizeof *stats);
    s->n_stats = n;
    pthread_mutex_unlock(&s->figures_lock);
}

void outboxd_sink_metrics_survey(outboxd_sink_metrics_t *s, const outboxd_sink_survey_t *figures) {
    pthread_mutex_lock(&s->figures_lock);
    s->survey = *figures;
    pthread_mutex_unlock(&s->figures_lock);
}

outboxd_sink_survey_t outboxd_sink_metrics_survey_get(outboxd_sink_metrics_t *s) {
    pthread_mutex_lock(&s->figures_lock);
    outboxd_sink_survey_t f = s->survey;
    pthread_mutex_unlock(&s->figures_lock);
    return f;
}

bool outboxd_metrics_sinks(outboxd_metrics_t *m, outboxd_sink_metrics_t ***out, size_t *n) {
    pthread_mutex_lock(&m->lock);
    size_t count = 0;
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next)
        count += atomic_load(&s->present);
    outboxd_sink_metrics_t **all = calloc(count ? count : 1, sizeof *all);
    size_t i = 0;
    for (outboxd_sink_metrics_t *s = m->sinks; all && s; s = s->next)
        if (atomic_load(&s->present) && i < count)
            all[i++] = s;
    pthread_mutex_unlock(&m->lock);
    *out = all;
    *n = i;
    return all != NULL;
}

void outboxd_metrics_log(outboxd_metrics_t *m, const outboxd_log_figures_t *figures) {
    pthread_mutex_lock(&m->lock);
    if (figures->known) {
        m->log = *figures;
    } else {
        m->log.surveyed = true;
        m->log.mongodb_up = figures->mongodb_up;
    }
    pthread_mutex_unlock(&m->lock);
}

void outboxd_metrics_ready_grace(outboxd_metrics_t *m, int64_t ready_grace_ms) {
    atomic_store(&m->ready_grace_ms, ready_grace_ms);
}

void outboxd_metrics_warn_headroom(outboxd_metrics_t *m, double warn_headroom) {
    atomic_store(&m->warn_headroom, warn_headroom);
}

outboxd_heartbeat_t *outboxd_metrics_heartbeat(outboxd_metrics_t *m, outboxd_thread_t thread) {
    return m && thread >= 0 && thread < OUTBOXD_THREAD_N ? &m->threads[thread] : NULL;
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

/* A sample's value as the text format spells it (NaN, +Inf, -Inf), with
 * every digit a double holds (sizes past 10 GB, times in milliseconds). */
static void put_value(outboxd_buf_t *b, double v) {
    if (isnan(v))
        outboxd_buf_printf(b, "NaN");
    else if (isinf(v))
        outboxd_buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else
        outboxd_buf_printf(b, "%.17g", v);
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

/* ---- the rest of the scrape, under the registry's lock ------------------- */

/* Whether the sink counts as ready (/readyz, outboxd_sink_ready), and for
 * how long it has been in its state. */
static bool sink_ready(const outboxd_sink_metrics_t *s, int64_t now_ms, int64_t grace_ms, int64_t *for_ms) {
    int st = atomic_load(&s->state);
    *for_ms = now_ms - atomic_load(&s->state_since_ms);
    return st == OUTBOXD_SINK_RUNNING || st == OUTBOXD_SINK_STANDBY ||
           ((st == OUTBOXD_SINK_RETRYING || st == OUTBOXD_SINK_STARTING) && *for_ms < grace_ms);
}

static void render_latency(outboxd_metrics_t *m, outboxd_buf_t *b) {
    outboxd_buf_printf(b, "# HELP outboxd_sink_latency_seconds From an event's created time to the sink's ack.\n"
                          "# TYPE outboxd_sink_latency_seconds histogram\n");
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        long long cumulative = 0;
        for (size_t i = 0; i <= OUTBOXD_LATENCY_BUCKETS; i++) {
            cumulative += atomic_load(&s->latency[i]);
            outboxd_buf_printf(b, "outboxd_sink_latency_seconds_bucket");
            put_labels(b, s);
            if (i < OUTBOXD_LATENCY_BUCKETS)
                outboxd_buf_printf(b, ",le=\"%g\"} %lld\n", latency_le[i], cumulative);
            else
                outboxd_buf_printf(b, ",le=\"+Inf\"} %lld\n", cumulative);
        }
        outboxd_buf_printf(b, "outboxd_sink_latency_seconds_sum");
        put_labels(b, s);
        outboxd_buf_printf(b, "} %.6f\noutboxd_sink_latency_seconds_count", (double)atomic_load(&s->latency_sum_us) / 1e6);
        put_labels(b, s);
        outboxd_buf_printf(b, "} %lld\n", cumulative);
    }
}

/* One gauge of the survey's figures per sink it has looked at; value()
 * returns false when the figure is unknown (the series is then absent). */
typedef bool (*survey_value_fn)(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v);

static bool lag_events_of(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v) {
    (void)wall_ms;
    *v = (double)f->lag_events;
    return f->lag_events >= 0;
}
static bool lag_seconds_of(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v) {
    (void)wall_ms;
    *v = (double)f->lag_ms / 1000.0;
    return f->lag_ms >= 0;
}
static bool checkpoint_age_of(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v) {
    *v = f->checkpoint_written_ms > wall_ms ? 0.0 : (double)(wall_ms - f->checkpoint_written_ms) / 1000.0;
    return f->checkpoint_written_ms >= 0;
}
static bool headroom_of(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v) {
    (void)wall_ms;
    *v = f->headroom;
    return f->headroom >= 0;
}
static bool headroom_low_of(const outboxd_sink_survey_t *f, int64_t wall_ms, double *v) {
    (void)wall_ms;
    *v = f->headroom_low;
    return true;
}

static void render_survey(outboxd_metrics_t *m, outboxd_buf_t *b) {
    static const struct {
        const char *name, *help;
        survey_value_fn value;
    } gauges[] = {
        {"lag_events", "Documents of the log after the sink's checkpoint (absent: its checkpoint event left the log).",
         lag_events_of},
        {"lag_seconds", "The newest event's created time minus that of the sink's checkpoint event.", lag_seconds_of},
        {"checkpoint_age_seconds", "Time since the sink's checkpoint document was last written.", checkpoint_age_of},
        {"log_headroom_ratio", "Share of the capped log that may be written before the sink's checkpoint event "
                               "is overwritten (0: a gap is imminent).",
         headroom_of},
        {"headroom_low", "1 while the sink's log headroom is below log.warn_headroom.", headroom_low_of},
    };
    int64_t wall_ms = outboxd_wall_ms();
    for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
        outboxd_buf_printf(b, "# HELP outboxd_sink_%s %s\n# TYPE outboxd_sink_%s gauge\n", gauges[g].name,
                           gauges[g].help, gauges[g].name);
        for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
            if (!atomic_load(&s->present))
                continue;
            pthread_mutex_lock(&s->figures_lock);
            double v;
            bool known = s->survey.known && gauges[g].value(&s->survey, wall_ms, &v);
            pthread_mutex_unlock(&s->figures_lock);
            if (!known)
                continue;
            outboxd_buf_printf(b, "outboxd_sink_%s", gauges[g].name);
            put_labels(b, s);
            outboxd_buf_printf(b, "} ");
            put_value(b, v);
            outboxd_buf_printf(b, "\n");
        }
    }
}

/* The plugins' own figures (ABI 1.1 stats), one family per exported name
 * (outboxd_plugin_NAME) with every sink that reports it, as the text
 * format wants a family's samples together. A counter is named with
 * _total, as Prometheus's conventions want, even if the plugin left it
 * out; a figure whose exported name a family already has with another
 * kind, or that a sink already reported under that name (a counter "x"
 * and a gauge "x_total"), is left out, so that no family is declared
 * twice. */
typedef struct {
    const outboxd_sink_metrics_t *sink;
    char name[OUTBOXD_STAT_NAME_MAX + 8]; /* as exported, with _total */
    int kind;
    double value;
} stat_row_t;

static int stat_row_cmp(const void *a, const void *b) {
    const stat_row_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->sink < y->sink ? -1 : x->sink > y->sink);
}

static bool ends_with(const char *s, const char *end) {
    size_t n = strlen(s), k = strlen(end);
    return n >= k && strcmp(s + n - k, end) == 0;
}

static void render_plugin_stats(outboxd_metrics_t *m, outboxd_buf_t *b) {
    size_t n = 0, cap = 0;
    stat_row_t *rows = NULL;
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        pthread_mutex_lock(&s->figures_lock);
        for (size_t i = 0; i < s->n_stats && !b->failed; i++) {
            if (n == cap) {
                size_t grown_cap = cap ? cap * 2 : 32;
                stat_row_t *grown = realloc(rows, grown_cap * sizeof *rows);
                if (!grown) {
                    b->failed = true;
                    break;
                }
                rows = grown;
                cap = grown_cap;
            }
            const outboxd_stat_t *st = &s->stats[i];
            bool counter = st->kind == OUTBOX_SINK_STAT_COUNTER;
            rows[n].sink = s;
            snprintf(rows[n].name, sizeof rows[n].name, "%s%s", st->name,
                     counter && !ends_with(st->name, "_total") ? "_total" : "");
            rows[n].kind = st->kind;
            rows[n++].value = st->value;
        }
        pthread_mutex_unlock(&s->figures_lock);
    }
    if (n)
        qsort(rows, n, sizeof *rows, stat_row_cmp);
    for (size_t i = 0; i < n;) {
        const stat_row_t *first = &rows[i];
        outboxd_buf_printf(b,
                           "# HELP outboxd_plugin_%s The sink plugin's own figure %s (ABI 1.1 stats).\n"
                           "# TYPE outboxd_plugin_%s %s\n",
                           first->name, first->name, first->name,
                           first->kind == OUTBOX_SINK_STAT_COUNTER ? "counter" : "gauge");
        size_t j = i;
        for (; j < n && strcmp(rows[j].name, first->name) == 0; j++) {
            if (rows[j].kind != first->kind || (j > i && rows[j].sink == rows[j - 1].sink))
                continue;
            outboxd_buf_printf(b, "outboxd_plugin_%s", first->name);
            put_labels(b, rows[j].sink);
            outboxd_buf_printf(b, "} ");
            put_value(b, rows[j].value);
            outboxd_buf_printf(b, "\n");
        }
        i = j;
    }
    free(rows);
}

/* One unlabelled gauge; its sample only when known (the family's HELP
 * and TYPE always, so that every family of docs/metrics.md is declared in
 * every scrape). */
static void log_gauge(outboxd_buf_t *b, const char *name, const char *help, bool known, double v) {
    outboxd_buf_printf(b, "# HELP outboxd_%s %s\n# TYPE outboxd_%s gauge\n", name, help, name);
    if (!known)
        return;
    outboxd_buf_printf(b, "outboxd_%s ", name);
    put_value(b, v);
    outboxd_buf_printf(b, "\n");
}

static void render_log(outboxd_metrics_t *m, outboxd_buf_t *b) {
    const outboxd_log_figures_t *f = &m->log;
    int64_t wall_ms = outboxd_wall_ms();
    bool known = f->known, any = known && f->oldest_created_ms >= 0 && f->newest_created_ms >= 0;
    bool pending = known && f->pending_known;
    log_gauge(b, "mongodb_up", "1 when the last survey of the log could read MongoDB, else 0 (absent: no survey yet).",
              f->surveyed, f->mongodb_up);
    log_gauge(b, "log_warn_headroom_ratio", "The configured log.warn_headroom.", true, atomic_load(&m->warn_headroom));
    log_gauge(b, "log_events", "Documents in the log (the capped collection).", known, (double)f->events);
    log_gauge(b, "log_size_bytes", "The log's data size, as the server counts it.", known, (double)f->size_bytes);
    log_gauge(b, "log_capped_size_bytes", "The log's capped size: the most it holds before overwriting.", known,
              (double)f->capped_size_bytes);
    log_gauge(b, "log_capped_max_events", "The most documents the log holds before overwriting (absent: no limit).",
              known && f->capped_max_events > 0, (double)f->capped_max_events);
    log_gauge(b, "log_oldest_event_age_seconds", "Age of the oldest event in the log, by its created time.", any,
              (double)(wall_ms - f->oldest_created_ms) / 1000.0);
    log_gauge(b, "log_newest_event_age_seconds", "Age of the newest event in the log, by its created time.", any,
              (double)(wall_ms - f->newest_created_ms) / 1000.0);
    log_gauge(b, "pending_events", "Transactional puts in N.pending, waiting for the promoter.", pending,
              (double)f->pending_events);
    log_gauge(b, "pending_oldest_age_seconds", "Age of the oldest document in N.pending (absent: none).",
              pending && f->pending_oldest_created_ms >= 0, (double)(wall_ms - f->pending_oldest_created_ms) / 1000.0);
    log_gauge(b, "quarantined_events",
              "Pending documents the promoter could not promote, kept in N.quarantine with the reason.",
              known && f->quarantine_known, (double)f->quarantined_events);
    log_gauge(b, "log_survey_timestamp_seconds", "When the last successful survey of the log ended.", known,
              (double)f->surveyed_ms / 1000.0);
    log_gauge(b, "log_survey_duration_seconds", "How long the last successful survey of the log took.", known,
              f->survey_seconds);
}

/* Busy for this long since the last beat; 0 while idle. */
static double thread_busy_seconds(const outboxd_heartbeat_t *h, int64_t now_ms) {
    if (!atomic_load(&h->busy))
        return 0.0;
    int64_t since = atomic_load(&h->since_ms);
    return now_ms > since ? (double)(now_ms - since) / 1000.0 : 0.0;
}

static void render_threads(outboxd_metrics_t *m, outboxd_buf_t *b) {
    int64_t now_ms = outboxd_mono_ms();
    outboxd_buf_printf(b, "# HELP outboxd_thread_heartbeat_age_seconds Time since the thread's last sign of progress "
                          "while busy (0 while it waits by design).\n"
                          "# TYPE outboxd_thread_heartbeat_age_seconds gauge\n");
    for (int t = 0; t < OUTBOXD_THREAD_N; t++)
        if (atomic_load(&m->threads[t].started))
            outboxd_buf_printf(b, "outboxd_thread_heartbeat_age_seconds{thread=\"%s\"} %.3f\n", thread_names[t],
                               thread_busy_seconds(&m->threads[t], now_ms));
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
        {"events_recovered_total", "Events in doubt after a crash or a takeover that the destination held already "
                                   "(the plugin's recover): settled without publishing them again.",
         offsetof(outboxd_sink_metrics_t, recovered), false},
        {"recoveries_total", "Recoveries (reads of the destination before publishing) that succeeded.",
         offsetof(outboxd_sink_metrics_t, recoveries), false},
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
                           call ? (double)(outboxd_mono_ms() - atomic_load(&s->call_since_ms)) / 1000.0 : 0.0);
    }
    outboxd_buf_printf(b, "# HELP outboxd_sink_state_seconds How long the sink has been in its current state.\n"
                          "# TYPE outboxd_sink_state_seconds gauge\n");
    int64_t now_ms = outboxd_mono_ms();
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        outboxd_buf_printf(b, "outboxd_sink_state_seconds");
        put_labels(b, s);
        outboxd_buf_printf(b, "} %.3f\n", (double)(now_ms - atomic_load(&s->state_since_ms)) / 1000.0);
    }
    int64_t grace_ms = atomic_load(&m->ready_grace_ms);
    outboxd_buf_printf(b, "# HELP outboxd_sink_ready 1 when /readyz counts the sink ready, else 0.\n"
                          "# TYPE outboxd_sink_ready gauge\n");
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        int64_t for_ms;
        outboxd_buf_printf(b, "outboxd_sink_ready");
        put_labels(b, s);
        outboxd_buf_printf(b, "} %d\n", sink_ready(s, now_ms, grace_ms, &for_ms));
    }
    render_latency(m, b);
    render_survey(m, b);
    render_plugin_stats(m, b);
    render_log(m, b);
    pthread_mutex_unlock(&m->lock);
    render_threads(m, b);
}

bool outboxd_metrics_sinks_ready(outboxd_metrics_t *m, int64_t grace_ms, outboxd_buf_t *b) {
    bool ready = true;
    int64_t now_ms = outboxd_mono_ms();
    outboxd_buf_printf(b, "[");
    pthread_mutex_lock(&m->lock);
    for (outboxd_sink_metrics_t *s = m->sinks; s; s = s->next) {
        if (!atomic_load(&s->present))
            continue;
        int st = atomic_load(&s->state);
        int64_t for_ms;
        if (atomic_load(&s->optional) || sink_ready(s, now_ms, grace_ms, &for_ms))
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
    int64_t now_ms = outboxd_mono_ms();
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
    for (int t = 0; t < OUTBOXD_THREAD_N; t++) {
        const outboxd_heartbeat_t *h = &m->threads[t];
        int64_t for_ms = (int64_t)(thread_busy_seconds(h, now_ms) * 1000.0);
        if (!atomic_load(&h->started) || for_ms < stuck_ms)
            continue;
        outboxd_buf_printf(b, "%s{\"thread\":\"%s\",\"for_ms\":%lld}", live ? "" : ",", thread_names[t],
                           (long long)for_ms);
        live = false;
    }
    outboxd_buf_printf(b, "]");
    return live;
}
