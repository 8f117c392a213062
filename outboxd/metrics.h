/*
 * metrics.h - what outboxd counts, for GET /metrics (http.c) and the
 * readiness check: one registry per process, one entry per sink name.
 *
 * A sink runner owns nothing here: it gets a pointer to its sink's entry
 * (outboxd_metrics_sink) and bumps atomic counters and its state, from any
 * of its threads, without a lock. Entries live as long as the registry, so
 * a runner replaced by a SIGHUP reload goes on counting in the same entry
 * (Prometheus counters only grow within a process); a sink removed by a
 * reload is hidden from the scrape (outboxd_sink_metrics_hide), not freed.
 * The registry's lock guards the list only, never a counter.
 *
 * Names and units follow Prometheus's conventions (docs/metrics.md lists
 * every series): counters end in _total, times are in seconds.
 */
#ifndef OUTBOXD_METRICS_H
#define OUTBOXD_METRICS_H

#include "checkpoint.h"
#include "heartbeat.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sink's state, one gauge per state (1 for the current one). */
typedef enum {
    OUTBOXD_SINK_STARTING = 0, /* opening: the plugin, the checkpoint */
    OUTBOXD_SINK_RUNNING,      /* publishing (or idle with nothing to publish) */
    OUTBOXD_SINK_RETRYING,     /* the last publish or open failed with RETRY: backing off */
    OUTBOXD_SINK_GAP,          /* stopped at a gap (on_gap: stop) */
    OUTBOXD_SINK_STOPPED,      /* stopped by on_error: stop, or a plugin that cannot open */
    OUTBOXD_SINK_STANDBY,      /* another outboxd holds its lease */
    OUTBOXD_SINK_N_STATES
} outboxd_sink_state_t;

/* The state's name as the state label and the readiness body show it. */
const char *outboxd_sink_state_name(outboxd_sink_state_t state);

/* Why an event failed (the reason label of failed_total). */
typedef enum {
    OUTBOXD_FAIL_FATAL = 0,  /* the plugin acked FATAL */
    OUTBOXD_FAIL_MALFORMED,  /* a document of the log that is no event */
    OUTBOXD_FAIL_ROUTE,      /* its route expanded to an empty destination */
    OUTBOXD_FAIL_PAYLOAD,    /* its data cannot be encoded as the sink's payload */
    OUTBOXD_FAIL_N
} outboxd_fail_reason_t;

/* The plugin call a sink's runner is in, for the watchdog of /healthz. */
typedef enum {
    OUTBOXD_CALL_NONE = 0,
    OUTBOXD_CALL_OPEN,
    OUTBOXD_CALL_PUBLISH,
    OUTBOXD_CALL_POLL,
    OUTBOXD_CALL_FLUSH,
    OUTBOXD_CALL_CLOSE,
    OUTBOXD_CALL_RECOVER,
    OUTBOXD_CALL_N
} outboxd_plugin_call_t;

/* The upper bounds (seconds) of the end-to-end latency histogram's buckets,
 * from 5 ms to 10 minutes; one more bucket, +Inf, holds the rest. */
#define OUTBOXD_LATENCY_BUCKETS 16

/* What the log survey (survey.h) found of a sink at its last look. */
typedef struct {
    bool known;             /* the survey has looked at this sink */
    int64_t lag_events;     /* documents of the log after its checkpoint;
                             * -1: unknown (its checkpoint event left the log) */
    int64_t lag_ms;         /* newest event's created minus its checkpoint
                             * event's (0 with nothing to publish); -1 unknown */
    int64_t checkpoint_written_ms; /* wall clock of the checkpoint document's
                                    * last write ("updated"); -1: no document */
    double headroom;        /* headroom.h; 0 when lag_events is unknown; -1:
                             * unknown (no average document size yet) */
    bool headroom_low;      /* below log.warn_headroom */
    /* The survey's own: when it last logged of the headroom (mono), and
     * whether that was a warning. */
    int64_t warned_ms;
    bool warned_low;
} outboxd_sink_survey_t;

typedef struct outboxd_sink_metrics {
    /* Events, each counted once per step it reaches (a retried event is
     * published again and counted again in published and retried). */
    atomic_llong read;          /* taken into the sink's window */
    atomic_llong published;     /* handed to the plugin's publish */
    atomic_llong acked;         /* acked OK by the plugin */
    atomic_llong retried;       /* acked or refused RETRY: offered again */
    atomic_llong failed[OUTBOXD_FAIL_N];
    atomic_llong dead_lettered; /* written to N.deadletter (on_error: deadletter) */
    atomic_llong skipped;       /* passed over (on_error: skip) */
    atomic_llong recovered;     /* in doubt after a crash or a takeover and found
                                 * at the destination by the plugin's recover:
                                 * settled without publishing */
    atomic_llong recoveries;    /* recover calls that succeeded */
    atomic_llong batches;       /* calls of the plugin's publish */
    atomic_llong checkpoint_writes;
    atomic_int state;           /* outboxd_sink_state_t */
    atomic_llong state_since_ms; /* CLOCK_MONOTONIC ms of the last state change */
    atomic_int call;            /* outboxd_plugin_call_t the runner is in */
    atomic_llong call_since_ms; /* when it entered it */
    atomic_bool present;        /* shown in the scrape (a reload may hide it) */
    atomic_bool optional;       /* the sink's optional: /readyz does not wait for it */
    /* End-to-end latency, created to ack: counts per bucket (not yet
     * cumulative), and the sum in microseconds. */
    atomic_llong latency[OUTBOXD_LATENCY_BUCKETS + 1];
    atomic_llong latency_sum_us;
    /* Under figures_lock: the plugin's own figures (ABI 1.1 stats, the
     * latest set) and the log survey's. */
    pthread_mutex_t figures_lock;
    outboxd_stat_t stats[OUTBOXD_STATS_MAX];
    size_t n_stats;
    outboxd_sink_survey_t survey;
    /* The registry's (under its lock). */
    char *sink, *plugin;
    struct outboxd_sink_metrics *next;
} outboxd_sink_metrics_t;

typedef struct outboxd_metrics outboxd_metrics_t;

/* A registry; NULL when out of memory. */
outboxd_metrics_t *outboxd_metrics_new(void);
/* Frees the registry and every entry: no runner may use one any more. */
void outboxd_metrics_free(outboxd_metrics_t *m);

/* The entry of the sink (made, state STARTING, on first use; its plugin
 * name updated), marked present. Never NULL (aborts when out of memory:
 * a runner cannot start without it). */
outboxd_sink_metrics_t *outboxd_metrics_sink(outboxd_metrics_t *m, const char *sink, const char *plugin);
/* Hides a sink's series from the scrape and the readiness check (a reload
 * removed the sink; outboxd_metrics_sink shows it again). */
void outboxd_sink_metrics_hide(outboxd_sink_metrics_t *s);

/* Sets the sink's state (and the time it changed, when it did). */
void outboxd_sink_metrics_state(outboxd_sink_metrics_t *s, outboxd_sink_state_t state);

/* The runner enters (call) or leaves (OUTBOXD_CALL_NONE) a plugin call. */
void outboxd_sink_metrics_call(outboxd_sink_metrics_t *s, outboxd_plugin_call_t call);

/* One event acked OK, created_ms (the event's created) to now. */
void outboxd_sink_metrics_latency(outboxd_sink_metrics_t *s, int64_t created_ms);

/* The plugin's latest figures (ABI 1.1 stats), replacing the previous set. */
void outboxd_sink_metrics_stats(outboxd_sink_metrics_t *s, const outboxd_stat_t *stats, size_t n);

/* The survey's figures of the sink: set, and read back (its last ones). */
void outboxd_sink_metrics_survey(outboxd_sink_metrics_t *s, const outboxd_sink_survey_t *figures);
outboxd_sink_survey_t outboxd_sink_metrics_survey_get(outboxd_sink_metrics_t *s);

/* Every entry shown in the scrape now, in the configuration's order, into a
 * new array (*out, to free; the entries are the registry's and live as long
 * as it does). False when out of memory. */
bool outboxd_metrics_sinks(outboxd_metrics_t *m, outboxd_sink_metrics_t ***out, size_t *n);

/* What the log survey found of the log itself. */
typedef struct {
    bool surveyed;            /* a survey has run: mongodb_up says something */
    bool mongodb_up;          /* the last survey's first read was answered */
    bool known;               /* some survey succeeded: the figures below are set */
    int64_t events;           /* documents in the log */
    int64_t size_bytes;       /* the server's figure of the log's data size */
    int64_t capped_size_bytes;
    int64_t capped_max_events; /* 0: no limit by documents */
    int64_t oldest_created_ms, newest_created_ms; /* -1: an empty log */
    bool pending_known;        /* N.pending could be read */
    int64_t pending_events;    /* documents of N.pending */
    int64_t pending_oldest_created_ms; /* -1: none */
    bool quarantine_known;     /* N.quarantine could be read */
    int64_t quarantined_events; /* documents of N.quarantine: pending ones the promoter could not promote */
    int64_t surveyed_ms;       /* wall clock of the last successful survey */
    double survey_seconds;     /* how long it took */
} outboxd_log_figures_t;

/* The survey's figures of the log (known false: the survey failed, the
 * other figures stay those of the last success; mongodb_up says whether
 * the server answered at all). */
void outboxd_metrics_log(outboxd_metrics_t *m, const outboxd_log_figures_t *figures);

/* The configured thresholds the scrape shows and judges by: http's
 * ready_grace_ms (outboxd_sink_ready) and log.warn_headroom. */
void outboxd_metrics_ready_grace(outboxd_metrics_t *m, int64_t ready_grace_ms);
void outboxd_metrics_warn_headroom(outboxd_metrics_t *m, double warn_headroom);

/* outboxd's own threads, each watched by its heartbeat (heartbeat.h). */
typedef enum {
    OUTBOXD_THREAD_READER = 0,
    OUTBOXD_THREAD_LEASES,
    OUTBOXD_THREAD_SURVEY,
    OUTBOXD_THREAD_N
} outboxd_thread_t;
outboxd_heartbeat_t *outboxd_metrics_heartbeat(outboxd_metrics_t *m, outboxd_thread_t thread);

/* A growable text buffer for the renderers (http.c frees text). */
typedef struct {
    char *text;
    size_t len, cap;
    bool failed; /* out of memory: text is incomplete */
} outboxd_buf_t;
void outboxd_buf_printf(outboxd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The whole scrape, Prometheus text format 0.0.4, into b. */
void outboxd_metrics_render(outboxd_metrics_t *m, outboxd_buf_t *b);

/* Readiness of the sinks: true when every present sink that is not
 * optional is running, idle or standing by, or has been retrying (or
 * starting) for less than grace_ms. Otherwise false, and b gets one JSON
 * object per such sink that is not ready, in a JSON array
 * ("[{"sink":"audit","state":"retrying","for_ms":31000}]"). */
bool outboxd_metrics_sinks_ready(outboxd_metrics_t *m, int64_t grace_ms, outboxd_buf_t *b);

/* Liveness: false when a sink's runner has been inside one plugin call
 * for stuck_ms or longer (a publish, open, poll, flush or close that never
 * returns holds that sink for good), or one of outboxd's own threads has
 * been busy that long without a beat (heartbeat.h), with b getting a JSON
 * array naming each ("[{"sink":"audit","in":"publish","for_ms":61000},
 * {"thread":"reader","for_ms":60500}]"). Waiting for events, for a lease
 * or in a back-off is not being stuck. */
bool outboxd_metrics_sinks_live(outboxd_metrics_t *m, int64_t stuck_ms, outboxd_buf_t *b);

#endif
