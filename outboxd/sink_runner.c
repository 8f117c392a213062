/*
 * sink_runner.c - see sink_runner.h.
 *
 * The runner keeps a window of events read from the log and not yet
 * retired, in log order. Each is published once (again after a RETRY) and
 * acked by the plugin, possibly out of order and from another thread. The
 * checkpoint advances only over the contiguous prefix of the window whose
 * events are done (acked OK, skipped, dead-lettered, or filtered out by
 * type), so a crash never loses an event: at worst the events after the
 * last written checkpoint are published again (at-least-once).
 *
 * Two threads per sink. The feeder thread takes events into the window
 * while there is room: from the outbox's shared reader (reader.h), at the
 * sink's own position in its ring, or, while the sink is not on the ring
 * (it fell behind it, its checkpoint is not on it, the ring marked a gap),
 * from a catch-up tail of its own, until the event it read there is on
 * the ring again. The runner thread publishes what the window holds,
 * serves the plugin (poll), settles acks and writes the checkpoint. Reading
 * and publishing overlap, so an event is handed to the plugin as soon as it
 * is read (a runner that alternated between reading and publishing had to
 * cut its reads into slices, which held each trickled event back by up to
 * a slice), and a backlog drains at the rate of the slower of the two
 * rather than their sum.
 *
 * The window holds references to shared events (shared_event.h): parsed
 * and encoded once by the shared reader for every sink. A dead letter is
 * written by the sink's dead-letter writer thread (deadletter_writer.h);
 * its event counts as done only once it is written.
 *
 * Leases (docs/leases.md, sections 3 and 4): the runner thread loops
 * between standing by (waiting on the lease, holding nothing) and one
 * activation at the lease's term T: claim the checkpoint at T, join the
 * reader, open the plugin, publish while outboxd_lease_valid(T). Its
 * writers are fenced at T (a write whose {_id, term: T} matches nothing
 * tells fence_lost). An activation ends by a stop (SIGTERM, a reload), a
 * hand-over (flush, last fenced checkpoint, release), or a loss (no flush,
 * nothing more written, the window dropped).
 *
 * Effectively-once (docs/recovery.md): with a plugin that has recover, the
 * runner publishes nothing more than in_doubt_max documents past its last
 * durable checkpoint; an activation whose checkpoint says in_doubt asks
 * the plugin, before the feeder starts, which of those documents the
 * destination holds (recover_once; the feeder settles those unpublished),
 * then writes in_doubt: true before its first publish; a clean stop writes
 * it false. After a reopen, recover_unsettled does the same for the events
 * the closed instance took and never acked.
 */
#include "sink_runner.h"

#include "clock.h"

#include "msgformat.h"

#include "checkpoint.h"
#include "checkpoint_writer.h"
#include "condwait.h"
#include "deadletter_writer.h"
#include "in_doubt.h"
#include "lease.h"
#include "log.h"
#include "plugin.h"
#include "secrets.h"
#include "shared_event.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 2048          /* events in flight per sink; the ring holds twice as many (conffile.h) */
#define BATCH 500            /* events per publish call */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define FLUSH_TIMEOUT_MS 10000
#define READ_WAIT_MS 200     /* one wait of the reader for new events */
#define TAKE_MAX 256         /* ring entries a feeder takes under one lock */
#define IDLE_WAIT_MS 100     /* the runner's wait for work when nothing is in flight */
#define IDLE_POLL_MS 250     /* ...and how often it polls the plugin meanwhile */
#define POLL_WAIT_MS 2       /* the runner's wait in poll with events in flight:
                              * a new event waits for the poll to end */
#define SLOW_READ_MS 5000    /* a read of the log that took this much longer than
                              * its wait is said in the log (a huge event, a
                              * struggling server) */
#define STATS_EVERY_MS 1000  /* the plugin's stats callback, at most this often */
#define BAD_STATS_KEPT 64    /* bad stat names remembered, each logged once */
#define IN_DOUBT_MAX 100000  /* the most documents published past the durable
                              * checkpoint (docs/recovery.md) */

/* SLOT_MALFORMED: a document of the log that is not an envelope (liboutbox's
 * parser said why); never published, settled by on_error like a FATAL.
 * SLOT_DEADLETTER: handed to the dead-letter writer, done once written. */
enum slot_state { SLOT_PENDING = 0, SLOT_DONE, SLOT_RETRY, SLOT_FATAL, SLOT_MALFORMED, SLOT_DEADLETTER };

/* A failure said once, then again only when its text changes or a minute
 * passed (repeat_due). */
typedef struct {
    char last[1024];
    int64_t said_ms;
    unsigned attempts;
} repeat_t;

typedef struct {
    outboxd_shared_event_t *se; /* a reference, owned: the event (se->ev), or a
                                 * malformed document (se->raw); its id */
    bool published;     /* handed to the plugin and not yet asked back */
    bool unsettled;     /* handed to a plugin instance that closed before
                         * it acked: maybe at the destination (recover_window) */
    enum slot_state state;
    char *error;        /* FATAL text from the plugin or why a document is
                         * malformed, owned, secrets scrubbed */
    /* The event as the plugin gets it, built at its first offer and kept
     * until it is retired: a publish_some that took part of a batch, or a
     * RETRY, offers the rest again without encoding them again. */
    bool built;
    outbox_sink_event_t out;  /* seq set at each offer */
    char *own_payload;        /* owned: out.payload when the shared event has no
                               * encoding in this sink's format (read while no
                               * sink used it); else out.payload points into se */
    size_t own_len;
    bool payload_failed;      /* no payload of it can be made (json_failed) */
    char *destination;        /* owned: out.destination */
    outboxd_message_t msg;    /* owned: out.headers and out.payload in a format
                               * other than native (msgformat.h) */
    outboxd_fail_reason_t fail; /* SLOT_FATAL: who failed it (the figures' reason) */
} slot_t;

/* Where the feeder takes events from. */
enum feed_mode { FEED_RING = 0, FEED_WAIT, FEED_PRIVATE };

struct outboxd_sink_runner {
    outboxd_sink_params_t p;
    pthread_t thread;
    char prefix[128];           /* "sink NAME: " for log lines */
    outbox_sink_host_t host;
    void *state;                /* the plugin's */
    bool open;

    pthread_mutex_t lock;       /* guards the window: acks come from any thread */
    pthread_cond_t work;        /* signalled on a new event, an ack, news from the reader */
    pthread_cond_t room;        /* signalled when the window has room again */
    slot_t slots[WINDOW];
    uint64_t head, tail_seq;    /* window: seqs [head, tail_seq) */
    uint64_t changes;           /* bumped with every signal of work */
    uint64_t changes_seen;      /* what publish_pending last looked at */

    pthread_t reader;           /* the feeder */
    bool reader_running;
    char gap[600];              /* under lock: a gap the feeder met (on_gap: stop) */
    unsigned format;            /* OUTBOXD_FORMAT_* of payload */
    outboxd_msgformat_t msgformat; /* the message layout (format:), msgformat.h */

    /* The feeder's own (after it started). */
    outboxd_reader_member_t *member;
    enum feed_mode mode;
    uint64_t ring_pos;          /* RING: the next position; WAIT: the next to scan */
    outbox_tail_t *tail;        /* PRIVATE: the catch-up tail */
    bool has_pos;               /* the last event with an ObjectId taken (or the
                                 * checkpoint's): where a catch-up tail starts */
    bson_oid_t pos_id;
    int64_t noid_since;         /* documents without an ObjectId _id taken after it */
    int64_t skip_noid;          /* RING after a catch-up: that many to pass over */
    int64_t pass_over;          /* PRIVATE: malformed reports to pass over (taken already) */
    int64_t private_read;       /* taken from the current catch-up tail */
    atomic_llong n_catchup_tails, n_catchups;

    outboxd_deadletter_writer_t *dlw; /* on_error: deadletter */
    outboxd_shared_event_t **retired; /* [WINDOW] under lock: to release unlocked */
    size_t n_retired;
    outboxd_checkpoint_t cp;    /* the position; last handed to cpw */
    outboxd_checkpoint_writer_t *cpw; /* NULL: written inline */
    bool cp_dirty;
    int64_t since_write;        /* events retired since the last write */
    int64_t last_write_ms;
    atomic_bool stopped;        /* on_error/on_gap stop: idle until shutdown */
    bool unreachable;           /* the plugin's last poll said RETRY (sink.h) */
    repeat_t unreachable_said;
    int64_t last_idle_poll_ms;  /* the last poll while nothing was in flight */
    int64_t last_read_warn_ms;  /* the reader's rate limit for "reading the log" warnings */
    /* Counters for the line logged at stop (and the benchmarks). */
    int64_t n_publish_calls, n_publish_failed, n_checkpoint_writes, n_dead_letters;
    int64_t n_malformed;        /* malformed documents met in this run */
    int64_t cp_writes_told;     /* of the checkpoint writes, those in the figures */

    /* The route template's shape, for the exact size of each destination. */
    size_t route_literal, route_n_type, route_n_key;

    /* The plugin's stats (ABI 1.1), asked for on the runner thread only. */
    int64_t last_stats_ms;
    outboxd_stat_t stats_next[OUTBOXD_STATS_MAX]; /* filled by stats_emit */
    size_t n_stats_next;
    char *bad_stats[BAD_STATS_KEPT]; /* names already said to be bad, quoted */
    size_t n_bad_stats;
    bool bad_stats_full_said, stats_full_said;

    /* Leases. term: the activation's (OUTBOXD_LEASE_NONE standing by; -1
     * with ha off), set before the feeder and the writers start and read
     * by them. */
    int64_t term;
    outboxd_fence_t fence;
    bool expecting;             /* an outboxd_reader_expect not yet answered */
    atomic_bool ending;         /* the activation ends (hand-over, loss): the
                                 * feeder stops even though the lease holds */
    pthread_mutex_t lost_lock;  /* guards what a fenced writer told */
    bool lost_told;
    char lost_why[600];

    /* Effectively-once (docs/recovery.md). recovering: the plugin has
     * recover and the sink's recover is on, so nothing is published more
     * than in_doubt_max documents past the last durable checkpoint
     * (durable_seq, under lock: the window position just after it), and
     * each activation first asks the plugin which of those the destination
     * holds. in_doubt: that answer, the feeder's from when it starts. */
    bool recovering;
    uint64_t in_doubt_max;
    uint64_t durable_seq;
    outboxd_in_doubt_t *in_doubt;
    int64_t n_recovered;        /* this activation's, for the stop line */
    bool marked;                /* this activation recovered what was in doubt and
                                 * wrote in_doubt: true before publishing */
    bool at_limit;              /* the last publish_pending stopped at the bound */
};

/* The sink's figures (metrics.h), when it keeps them. */
static void count(outboxd_sink_runner_t *r, size_t field, long long n) {
    if (r->p.metrics && n)
        atomic_fetch_add((atomic_llong *)((char *)r->p.metrics + field), n);
}
#define COUNT(r, field, n) count((r), offsetof(outboxd_sink_metrics_t, field), (n))

static void count_failed(outboxd_sink_runner_t *r, outboxd_fail_reason_t reason) {
    if (r->p.metrics)
        atomic_fetch_add(&r->p.metrics->failed[reason], 1);
}

static void set_state(outboxd_sink_runner_t *r, outboxd_sink_state_t state) {
    outboxd_sink_metrics_state(r->p.metrics, state);
}

static void plugin_call(outboxd_sink_runner_t *r, outboxd_plugin_call_t call) {
    outboxd_sink_metrics_call(r->p.metrics, call);
}

/* The checkpoint writes so far (inline, and the writer thread's) into the
 * figures: the writer counts on its thread, the runner adds what is new. */
static void report_checkpoint_writes(outboxd_sink_runner_t *r) {
    int64_t now = r->n_checkpoint_writes + (r->cpw ? outboxd_checkpoint_writer_writes(r->cpw) : 0);
    if (now > r->cp_writes_told) {
        COUNT(r, checkpoint_writes, now - r->cp_writes_told);
        r->cp_writes_told = now;
    }
}

/* A copy of text from a plugin (ack, callback errbuf) with every known
 * secret scrubbed out: plugins put client library messages in it, which
 * may quote a URL with its password. Caller frees. */
static char *scrubbed_dup(const char *text) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, text, len + 1);
    outboxd_secrets_scrub(copy, len + 1);
    return copy;
}

/* Whether this activation may still publish and write: its lease is held
 * at its term and its deadline has not passed (atomics and a clock read;
 * always true with ha off). Any of the sink's threads. */
static bool holding(outboxd_sink_runner_t *r) {
    return r->term != OUTBOXD_LEASE_NONE && outboxd_lease_valid(r->p.lease, r->term);
}

/* The fence the writers ask before each attempt and tell when a write
 * matched nothing (another instance claimed a newer term): the lease is
 * marked lost at once, and the runner stands by at its next check. */
static bool fence_valid(void *ctx, int64_t term) {
    outboxd_sink_runner_t *r = ctx;
    return outboxd_lease_valid(r->p.lease, term);
}

static void fence_lost(void *ctx, int64_t term, int64_t seen_term, const char *why) {
    outboxd_sink_runner_t *r = ctx;
    pthread_mutex_lock(&r->lost_lock);
    if (!r->lost_told) {
        r->lost_told = true;
        snprintf(r->lost_why, sizeof r->lost_why, "%s", why ? why : "a fenced write matched nothing");
    }
    pthread_mutex_unlock(&r->lost_lock);
    outboxd_lease_lost(r->p.lease, term, seen_term, why);
}

/* Counts an attempt that failed with text; true when it is to be logged,
 * with *again set when the same text was logged before. */
static bool repeat_due(repeat_t *rep, const char *text, bool *again) {
    rep->attempts++;
    *again = strcmp(text, rep->last) == 0;
    if (*again && outboxd_mono_ms() - rep->said_ms < 60000)
        return false;
    snprintf(rep->last, sizeof rep->last, "%s", text);
    rep->said_ms = outboxd_mono_ms();
    return true;
}

/* ---- host services ------------------------------------------------------- */

static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    outboxd_sink_runner_t *r = ctx;
    va_list ap;
    va_start(ap, fmt);
    outboxd_vlog(level, r->prefix, fmt, ap);
    va_end(ap);
}

static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    outboxd_sink_runner_t *r = ctx;
    pthread_mutex_lock(&r->lock);
    if (seq >= r->head && seq < r->tail_seq) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (s->published && s->state == SLOT_PENDING) {
            s->published = false;
            if (status == OUTBOX_SINK_OK) {
                s->state = SLOT_DONE;
                COUNT(r, acked, 1);
                outboxd_sink_metrics_latency(r->p.metrics, s->out.created_ms);
            } else if (status == OUTBOX_SINK_RETRY) {
                s->state = SLOT_RETRY;
                COUNT(r, retried, 1);
            } else {
                s->state = SLOT_FATAL;
                s->fail = OUTBOXD_FAIL_FATAL;
                free(s->error);
                s->error = scrubbed_dup(error ? error : "no reason given");
            }
            r->changes++;
            pthread_cond_signal(&r->work);
        }
    }
    pthread_mutex_unlock(&r->lock);
}

static const char *host_option(void *ctx, const char *key) {
    outboxd_sink_runner_t *r = ctx;
    return outboxd_options_get(&r->p.options, key);
}

/* host->option_next and host->options_fill (ABI 1.1): the options as
 * options.c resolved, parsed and defaulted them before the runner started;
 * read-only from then on, so any thread may call them. */
static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    outboxd_sink_runner_t *r = ctx;
    return outboxd_options_next(&r->p.options, cursor, value);
}

static int host_options_fill(void *ctx, void *config) {
    outboxd_sink_runner_t *r = ctx;
    return outboxd_options_fill(&r->p.options, config);
}

/* ---- stats (ABI 1.1) --------------------------------------------------------- */

static bool stat_name_valid(const char *name) {
    if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    size_t i = 1;
    for (; name[i] && i <= OUTBOXD_STAT_NAME_MAX; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return false;
    return i <= OUTBOXD_STAT_NAME_MAX;
}

/* Logs that the plugin's figure named name was dropped and why, once per
 * name (the first BAD_STATS_KEPT names; then one line saying that further
 * ones are dropped unsaid). Runner thread only. */
static void stat_dropped(outboxd_sink_runner_t *r, const char *name, const char *why) {
    char shown[300];
    outbox_sink_quote(name ? name : "(null)", 80, shown, sizeof shown);
    for (size_t i = 0; i < r->n_bad_stats; i++)
        if (strcmp(r->bad_stats[i], shown) == 0)
            return;
    if (r->n_bad_stats == BAD_STATS_KEPT) {
        if (!r->bad_stats_full_said)
            LOG_WARN("%splugin %s: more than %d bad stat names; further ones are dropped without a log line",
                     r->prefix, r->p.plugin->name, BAD_STATS_KEPT);
        r->bad_stats_full_said = true;
        return;
    }
    r->bad_stats[r->n_bad_stats++] = scrubbed_dup(shown);
    LOG_WARN("%splugin %s: stat \"%s\" dropped: %s", r->prefix, r->p.plugin->name, shown, why);
}

/* The emit function handed to the plugin's stats: checks one figure and
 * keeps it for the snapshot being built. */
static void stats_emit(void *emit_ctx, const char *name, outbox_sink_stat_kind_t kind, double value,
                       const char *help) {
    outboxd_sink_runner_t *r = emit_ctx;
    (void)help;
    if (!stat_name_valid(name)) {
        stat_dropped(r, name, "a name is [a-z][a-z0-9_]* of at most 64 bytes");
        return;
    }
    if (kind != OUTBOX_SINK_STAT_COUNTER && kind != OUTBOX_SINK_STAT_GAUGE) {
        stat_dropped(r, name, "its kind is neither OUTBOX_SINK_STAT_COUNTER nor OUTBOX_SINK_STAT_GAUGE");
        return;
    }
    for (size_t i = 0; i < r->n_stats_next; i++) {
        if (strcmp(r->stats_next[i].name, name) == 0) {
            stat_dropped(r, name, "the plugin reported it twice in one call (the first value is kept)");
            return;
        }
    }
    if (r->n_stats_next == OUTBOXD_STATS_MAX) {
        if (!r->stats_full_said)
            LOG_WARN("%splugin %s: more than %d stats; the rest are dropped", r->prefix, r->p.plugin->name,
                     OUTBOXD_STATS_MAX);
        r->stats_full_said = true;
        return;
    }
    outboxd_stat_t *st = &r->stats_next[r->n_stats_next++];
    snprintf(st->name, sizeof st->name, "%s", name);
    st->value = value;
    st->kind = (int)kind;
}

/* Asks the plugin for its figures, at most once a second, between other
 * callbacks on the runner thread (sink.h); the latest set goes into the
 * checkpoint, and so with the next checkpoint write into plugin_stats. */
static void collect_stats(outboxd_sink_runner_t *r) {
    const outbox_sink_plugin_t *p = r->p.plugin;
    if (!r->open || !OUTBOXD_PLUGIN_HAS(p, stats) || !p->stats)
        return;
    int64_t now = outboxd_mono_ms();
    if (r->last_stats_ms && now - r->last_stats_ms < STATS_EVERY_MS)
        return;
    r->last_stats_ms = now;
    r->n_stats_next = 0;
    p->stats(r->state, stats_emit, r);
    memcpy(r->cp.stats, r->stats_next, r->n_stats_next * sizeof r->stats_next[0]);
    r->cp.n_stats = r->n_stats_next;
    outboxd_sink_metrics_stats(r->p.metrics, r->stats_next, r->n_stats_next);
}

/* ---- helpers ----------------------------------------------------------------- */

/* Sleeps ms, waking early when the daemon stops or the lease is gone. */
static void nap(outboxd_sink_runner_t *r, int64_t ms) {
    int64_t until = outboxd_mono_ms() + ms;
    while (!atomic_load(r->p.stop) && holding(r) && outboxd_mono_ms() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int64_t next_backoff(int64_t current) {
    int64_t next = current * 2;
    if (next > BACKOFF_MAX_MS)
        next = BACKOFF_MAX_MS;
    /* Jitter, so sinks that failed together do not retry together. */
    return next / 2 + rand() % (next / 2 + 1);
}

static bool type_selected(const outboxd_sink_conf_t *sink, const char *type) {
    if (sink->n_types == 0)
        return true;
    for (size_t i = 0; i < sink->n_types; i++)
        if (strcmp(sink->types[i], type) == 0)
            return true;
    return false;
}

/* A checkpoint at window position seq is durable (the writer's thread, or
 * the runner's for an inline write): what may be published moves on. */
static void checkpoint_written(void *ctx, uint64_t seq) {
    outboxd_sink_runner_t *r = ctx;
    pthread_mutex_lock(&r->lock);
    if (seq > r->durable_seq) {
        r->durable_seq = seq;
        r->changes++;
        pthread_cond_signal(&r->work);
    }
    pthread_mutex_unlock(&r->lock);
}

/* Hands the checkpoint to the writer thread (checkpoint_writer.h says
 * why); inline only if that thread could not start. */
static void write_checkpoint(outboxd_sink_runner_t *r) {
    r->cp.has_reader = true;
    r->cp.shared_tails = outboxd_reader_shared_tails(r->p.reader);
    r->cp.catchup_tails = atomic_load(&r->n_catchup_tails);
    r->cp.catchups = atomic_load(&r->n_catchups);
    r->cp_dirty = false;
    r->since_write = 0;
    r->last_write_ms = outboxd_mono_ms();
    if (r->cpw) {
        outboxd_checkpoint_writer_submit(r->cpw, &r->cp);
        return;
    }
    char err[600], coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);
    if (!holding(r))
        return; /* written by whoever holds the lease now */
    int64_t seen = -1;
    outboxd_write_rc_t rc = outboxd_checkpoint_write(r->p.pool, r->p.conf->database, coll, r->p.sink->name,
                                                     r->term, &r->cp, &seen, err, sizeof err);
    if (rc == OUTBOXD_WRITE_OK) {
        r->n_checkpoint_writes++;
        checkpoint_written(r, r->cp.seq);
    } else if (rc == OUTBOXD_WRITE_FENCED) {
        fence_lost(r, r->term, seen, err);
    } else {
        LOG_WARN("%s%s (will retry)", r->prefix, err);
        r->cp_dirty = true; /* again after checkpoint.every_ms */
    }
}

/* Stops this sink for good (until outboxd restarts): state and reason go
 * into the checkpoint document, where outboxctl status shows them. */
static void stop_sink(outboxd_sink_runner_t *r, const char *state, const char *message) {
    LOG_ERR("%s%s; this sink stops, the others go on", r->prefix, message);
    set_state(r, strcmp(state, "gap") == 0 ? OUTBOXD_SINK_GAP : OUTBOXD_SINK_STOPPED);
    snprintf(r->cp.state, sizeof r->cp.state, "%s", state);
    snprintf(r->cp.message, sizeof r->cp.message, "%s", message);
    atomic_store(&r->stopped, true);
    write_checkpoint(r);
}

/* The dead-letter writer's word that the event at seq is in N.deadletter
 * (its thread): now it is done, and the checkpoint may pass it. */
static void dead_letter_done(void *ctx, uint64_t seq) {
    outboxd_sink_runner_t *r = ctx;
    pthread_mutex_lock(&r->lock);
    if (seq >= r->head && seq < r->tail_seq && r->slots[seq % WINDOW].state == SLOT_DEADLETTER) {
        r->slots[seq % WINDOW].state = SLOT_DONE;
        r->n_dead_letters++;
        COUNT(r, dead_lettered, 1);
        r->changes++;
        pthread_cond_signal(&r->work);
    }
    pthread_mutex_unlock(&r->lock);
}

/* Hands the slot's event to the dead-letter writer (lock held: no round
 * trip here, the writer's thread does it). */
static void dead_letter(outboxd_sink_runner_t *r, slot_t *s, uint64_t seq, bool malformed) {
    s->state = SLOT_DEADLETTER;
    outboxd_deadletter_writer_submit(r->dlw, seq, s->se, s->error ? s->error : "", malformed);
}

/* ---- the window ---------------------------------------------------------------- */

/* Frees what a slot owns and clears it; its shared event is released
 * now, or kept in r->retired for release_retired() when keep is set (the
 * window's lock is held: a last reference frees the event's copy and
 * encodings, no work for a lock that ack threads take). */
static void slot_free(outboxd_sink_runner_t *r, slot_t *s, bool keep) {
    if (keep && s->se)
        r->retired[r->n_retired++] = s->se;
    else
        outboxd_shared_event_unref(s->se);
    free(s->error);
    free(s->own_payload);
    free(s->destination);
    outboxd_message_clear(&s->msg);
    memset(s, 0, sizeof *s);
}

/* Releases what retire_done() kept; called without the lock. Only the
 * runner thread retires, so r->retired is its own between the two. */
static void release_retired(outboxd_sink_runner_t *r) {
    pthread_mutex_lock(&r->lock);
    size_t n = r->n_retired;
    r->n_retired = 0;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n; i++)
        outboxd_shared_event_unref(r->retired[i]);
}

/* The sink's payload of se when the shared event has none in its format:
 * read while no sink used that format (a sink that uses it came with a
 * reload), so encoded here, for this sink alone, outside the window's
 * lock. *failed: no payload of it can be made. */
static void own_payload(const outboxd_sink_runner_t *r, const outboxd_shared_event_t *se, char **own, size_t *len,
                        bool *failed) {
    *own = NULL;
    *len = 0;
    *failed = se->ev && r->format == OUTBOXD_FORMAT_JSON && se->json_failed;
    if (se->ev && r->format == OUTBOXD_FORMAT_JSON && !se->json && !se->json_failed) {
        *own = outboxd_payload_encode_json(outbox_event_data(se->ev), len);
        *failed = !*own;
    }
}

/* Takes se (the caller's reference) into the window. An event whose type
 * the sink does not select is done at once (the checkpoint passes it in
 * order); a document that is not an envelope takes its place like an
 * event and is settled by on_error, whatever the type filter. */
static void add_to_window_many(outboxd_sink_runner_t *r, outboxd_shared_event_t **ses, size_t n) {
    char *errors[TAKE_MAX], *own[TAKE_MAX];
    size_t own_len[TAKE_MAX];
    bool failed[TAKE_MAX], held[TAKE_MAX];
    size_t n_held = 0;
    for (size_t i = 0; i < n; i++) {
        outboxd_shared_event_t *se = ses[i];
        /* In doubt after a crash and found at the destination by recover:
         * done like an event of a type not selected, never offered. */
        held[i] = false;
        if (r->in_doubt && se->ev && outboxd_in_doubt_take(r->in_doubt, &se->id, &held[i])) {
            n_held += held[i];
            if (!outboxd_in_doubt_left(r->in_doubt)) {
                outboxd_in_doubt_free(r->in_doubt); /* every listed one passed */
                r->in_doubt = NULL;
            }
        }
        errors[i] = se->ev ? NULL : scrubbed_dup(se->error ? se->error : "not a valid envelope");
        own_payload(r, se, &own[i], &own_len[i], &failed[i]);
        /* The feeder's position, for a catch-up tail: read now, since once
         * in the window se may be retired and freed by the runner at any
         * time. */
        if (se->has_id) {
            r->has_pos = true;
            bson_oid_copy(&se->id, &r->pos_id);
            r->noid_since = 0;
        } else {
            r->noid_since++;
        }
    }
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        outboxd_shared_event_t *se = ses[i];
        slot_t *s = &r->slots[r->tail_seq % WINDOW];
        memset(s, 0, sizeof *s);
        s->se = se;
        s->error = errors[i];
        s->own_payload = own[i];
        s->own_len = own_len[i];
        s->payload_failed = failed[i];
        if (se->ev)
            s->state = !held[i] && type_selected(r->p.sink, outbox_event_type(se->ev)) ? SLOT_PENDING : SLOT_DONE;
        else
            s->state = SLOT_MALFORMED;
        r->tail_seq++;
    }
    COUNT(r, read, (long long)n);
    if (n_held) {
        COUNT(r, recovered, (long long)n_held);
        r->n_recovered += (int64_t)n_held;
    }
    r->changes++;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->lock);
}

/* Takes se (the caller's reference) into the window. An event whose type
 * the sink does not select is done at once (the checkpoint passes it in
 * order); a document that is not an envelope takes its place like an
 * event and is settled by on_error, whatever the type filter. The window
 * has room (the feeder waited for it). */
static void add_to_window(outboxd_sink_runner_t *r, outboxd_shared_event_t *se) {
    add_to_window_many(r, &se, 1);
}

/* Counts a malformed document in the sink's checkpoint document
 * (malformed: the count, last_malformed: the last one's reason and when),
 * where outboxctl status shows it. An update of its own: the checkpoint
 * writer sets the other fields and never these. Counted each time one is
 * met, so again if outboxd restarts before the checkpoint passed it. */
static void count_malformed(outboxd_sink_runner_t *r, const char *why) {
    bson_error_t berr;
    char coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);
    /* With a lease (term >= 0) fenced like the checkpoint: {_id, term: T},
     * no upsert (the claim made the document). */
    bool fenced = r->term >= 0;
    if (fenced && !holding(r))
        return;
    bson_t *filter = fenced ? BCON_NEW("_id", BCON_UTF8(r->p.sink->name), "term", BCON_INT64(r->term))
                            : BCON_NEW("_id", BCON_UTF8(r->p.sink->name));
    bson_t *update = BCON_NEW("$inc", "{", "malformed", BCON_INT64(1), "}", "$set", "{", "last_malformed",
                              BCON_UTF8(why), "last_malformed_at", BCON_DATE_TIME((int64_t)time(NULL) * 1000), "}");
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(!fenced));
    mongoc_client_t *client = mongoc_client_pool_pop(r->p.pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, r->p.conf->database, coll);
    /* Two upserts of a missing document at once (this and the checkpoint
     * writer's first write) can meet a duplicate key: once more then. */
    bson_t reply;
    outboxd_checkpoint_doc_lock(); /* one write of the document at a time: checkpoint.h */
    bool ok = mongoc_collection_update_one(c, filter, update, opts, &reply, &berr);
    if (!ok && !fenced) {
        bson_destroy(&reply);
        ok = mongoc_collection_update_one(c, filter, update, opts, &reply, &berr);
    }
    outboxd_checkpoint_doc_unlock();
    bson_iter_t it;
    if (ok && fenced && bson_iter_init_find(&it, &reply, "matchedCount") && bson_iter_as_int64(&it) == 0)
        fence_lost(r, r->term, -1, "the checkpoint document no longer has our term (counting a malformed document)");
    bson_destroy(&reply);
    if (!ok)
        LOG_ERR("%scannot count a malformed document in %s.%s: %s", r->prefix, r->p.conf->database, coll,
                berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(r->p.pool, client);
    bson_destroy(opts);
    bson_destroy(update);
    bson_destroy(filter);
    r->n_malformed++;
}

/* Retires the done prefix of the window into the checkpoint. Called with
 * the lock held; also before a stop, so that the stopped sink's checkpoint
 * is the event right before the one that stopped it. */
static void retire_done(outboxd_sink_runner_t *r) {
    while (r->head < r->tail_seq && r->slots[r->head % WINDOW].state == SLOT_DONE) {
        slot_t *s = &r->slots[r->head % WINDOW];
        /* A document without an ObjectId _id cannot be a position (the
         * tail resumes by _id): the checkpoint stays on the event before
         * it, and a restart meets it again. */
        if (s->se->has_id) {
            r->cp.has_last = true;
            bson_oid_copy(&s->se->id, &r->cp.last_id);
            r->cp.seq = r->head + 1;
        }
        if (s->se->ev)
            r->cp.events++;
        r->cp_dirty = true;
        r->since_write++;
        slot_free(r, s, true);
        r->head++;
        pthread_cond_signal(&r->room);
    }
}

/* Whether a dead letter of an event before seq is still being written
 * (lock held). */
static bool dead_letters_pending(outboxd_sink_runner_t *r, uint64_t seq) {
    for (uint64_t i = r->head; i < seq; i++)
        if (r->slots[i % WINDOW].state == SLOT_DEADLETTER)
            return true;
    return false;
}

/* Applies on_error to FATAL acks, turns RETRY acks back into work, and
 * retires the done prefix into the checkpoint. Returns true when some
 * events await a retry. */
static bool settle(outboxd_sink_runner_t *r) {
    bool retry = false;
    pthread_mutex_lock(&r->lock);
    for (uint64_t seq = r->head; seq < r->tail_seq && !atomic_load(&r->stopped); seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (s->state == SLOT_RETRY) {
            s->state = SLOT_PENDING;
            retry = true;
        } else if (s->state == SLOT_MALFORMED) {
            bool stop = r->p.sink->on_error != OUTBOXD_ON_ERROR_SKIP &&
                        r->p.sink->on_error != OUTBOXD_ON_ERROR_DEADLETTER;
            retire_done(r);
            /* Stopping waits until every event before it is acked, so the
             * checkpoint is the event right before it. */
            if (stop && r->head != seq)
                break;
            /* With a lease, the dead-letter writer touches this document
             * (the fence) before each dead letter, and FerretDB's update is
             * a read and a whole-document write: a count made meanwhile
             * could be lost. So the count waits until no dead letter
             * before it is still being written (settle runs again when one
             * is done). */
            if (r->term >= 0 && r->dlw && dead_letters_pending(r, seq))
                break;
            /* The slot is the runner's alone (never published, acks do not
             * touch it), so the database round trips run unlocked. */
            char msg[900];
            snprintf(msg, sizeof msg, "%s", s->error);
            pthread_mutex_unlock(&r->lock);
            release_retired(r);
            count_malformed(r, msg);
            count_failed(r, OUTBOXD_FAIL_MALFORMED);
            switch (r->p.sink->on_error) {
            case OUTBOXD_ON_ERROR_SKIP:
                LOG_WARN("%s%s (on_error: skip, not delivered)", r->prefix, msg);
                COUNT(r, skipped, 1);
                break;
            case OUTBOXD_ON_ERROR_DEADLETTER:
                LOG_WARN("%s%s (on_error: deadletter, into %s.deadletter)", r->prefix, msg, r->p.conf->outbox);
                break;
            default:
                stop_sink(r, "stopped", msg);
                return false;
            }
            pthread_mutex_lock(&r->lock);
            if (r->p.sink->on_error == OUTBOXD_ON_ERROR_DEADLETTER)
                dead_letter(r, s, seq, true);
            else
                s->state = SLOT_DONE;
        } else if (s->state == SLOT_FATAL) {
            char msg[700];
            snprintf(msg, sizeof msg, "event %s: %s", s->se->id_hex, s->error);
            count_failed(r, s->fail);
            switch (r->p.sink->on_error) {
            case OUTBOXD_ON_ERROR_SKIP:
                LOG_WARN("%s%s (on_error: skip, event not delivered)", r->prefix, msg);
                s->state = SLOT_DONE;
                COUNT(r, skipped, 1);
                break;
            case OUTBOXD_ON_ERROR_DEADLETTER:
                LOG_WARN("%s%s (on_error: deadletter, into %s.deadletter)", r->prefix, msg, r->p.conf->outbox);
                dead_letter(r, s, seq, false);
                break;
            default:
                retire_done(r);
                pthread_mutex_unlock(&r->lock);
                release_retired(r);
                stop_sink(r, "stopped", msg);
                return false;
            }
        }
    }
    retire_done(r);
    pthread_mutex_unlock(&r->lock);
    release_retired(r);
    return retry;
}

/* The route template's shape: its literal bytes and how many {type} and
 * {key} it holds, read the way outboxd_route_expand() reads it ("{{" and
 * "}}" are one literal byte each, any other byte one). The size of each
 * expanded destination is then exact, whatever the values: a guess (the
 * template's length plus four times each value's) fell short for a
 * template that repeats a placeholder, and the event got an empty
 * destination. */
static void route_shape(outboxd_sink_runner_t *r) {
    const char *route = r->p.sink->route ? r->p.sink->route : "";
    r->route_literal = r->route_n_type = r->route_n_key = 0;
    for (const char *p = route; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            r->route_literal++;
            p += 2;
        } else if (!strncmp(p, "{type}", 6)) {
            r->route_n_type++;
            p += 6;
        } else if (!strncmp(p, "{key}", 5)) {
            r->route_n_key++;
            p += 5;
        } else {
            r->route_literal++;
            p++;
        }
    }
}

/* n * len + total, or SIZE_MAX when that does not fit a size_t. */
static size_t add_product(size_t total, size_t n, size_t len) {
    if (len && n > (SIZE_MAX - total) / len)
        return SIZE_MAX;
    return total + n * len;
}

/* The bytes of the event's destination, its NUL included. */
static size_t destination_size(const outboxd_sink_runner_t *r, const char *type, const char *key) {
    size_t size = add_product(r->route_literal, r->route_n_type, strlen(type));
    size = add_product(size, r->route_n_key, key ? strlen(key) : 0);
    if (size == SIZE_MAX)
        abort(); /* beyond memory anyway: values are at most 16 MB, templates 1 MB */
    return size + 1;
}

/* Why the event's route expanded to "": an event outboxd fails itself
 * (sink.h: a plugin never sees an empty destination). Caller frees. */
static char *empty_destination_reason(const outboxd_sink_runner_t *r, const slot_t *s, const char *type,
                                      const char *key) {
    char why[200];
    if (r->route_n_key && !key)
        snprintf(why, sizeof why, "event %s has a null key", s->se->id_hex);
    else if (r->route_n_key && !*key)
        snprintf(why, sizeof why, "event %s has an empty key", s->se->id_hex);
    else if (r->route_n_type && !*type)
        snprintf(why, sizeof why, "event %s has an empty type", s->se->id_hex);
    else
        snprintf(why, sizeof why, "the route is empty");
    const char *route = r->p.sink->route ? r->p.sink->route : "";
    size_t size = strlen(route) + strlen(why) + 64;
    char *text = malloc(size);
    if (!text)
        abort();
    snprintf(text, size, "route %s expanded to an empty destination: %s", route, why);
    outboxd_secrets_scrub(text, size);
    return text;
}

/* Builds the event as the plugin gets it (s->out), once: the payload the
 * shared reader encoded in the sink's format (JSON or BSON, per the sink's
 * config, whatever the plugin), the route expanded into exactly dsize
 * bytes, the headers the shared event lists. */
static void build_event(outboxd_sink_runner_t *r, slot_t *s, size_t dsize) {
    /* Parsed once, by liboutbox, when it was read (the one parser of the
     * envelope: only valid envelopes reach this point). */
    const outboxd_shared_event_t *se = s->se;
    const outbox_event_t *ev = se->ev;
    const char *type = outbox_event_type(ev), *key = outbox_event_key(ev);
    outbox_sink_event_t *e = &s->out;
    memset(e, 0, sizeof *e);
    e->id = se->id_hex;
    e->type = type;
    e->key = key;
    e->created_ms = outbox_event_created_ms(ev);
    size_t len = 0;
    const unsigned char *payload = outboxd_shared_event_payload(se, r->format, &len);
    if (s->own_payload) {
        payload = (const unsigned char *)s->own_payload;
        len = s->own_len;
    }
    e->payload = payload;
    e->payload_len = len;
    s->destination = malloc(dsize);
    if (!s->destination || outboxd_route_expand(r->p.sink->route, type, key, s->destination, dsize) != (long)(dsize - 1))
        abort(); /* out of memory, or route_shape() and outboxd_route_expand() disagree */
    e->destination = s->destination;
    e->n_headers = se->n_headers;
    e->headers = se->n_headers ? se->headers : NULL;
    /* A format other than native: outboxd lays the message out, the
     * plugin sends it as given (sink.h, message_as_given). */
    if (r->msgformat.format != OUTBOXD_MESSAGE_NATIVE) {
        if (!outboxd_message_build(&r->msgformat, e, &s->msg))
            abort(); /* out of memory */
        e->n_headers = s->msg.n_headers;
        e->headers = s->msg.n_headers ? s->msg.headers : NULL;
        if (s->msg.body) {
            e->payload = s->msg.body;
            e->payload_len = s->msg.body_len;
        }
    }
    s->built = true;
}

static bool has_publish_some(const outbox_sink_plugin_t *p) {
    return OUTBOXD_PLUGIN_HAS(p, publish_some) && p->publish_some;
}

/* Builds outbox_sink_event_t for up to BATCH unpublished events and hands
 * them to the plugin; *sent is how many it took, *full whether it said OK
 * but took fewer than it was offered (publish_some: "full for now").
 * Returns the plugin's status (OK with nothing to do too). An event whose
 * route expands to "" is failed here, like a FATAL ack, and settle()
 * applies on_error to it; with on_error: stop nothing after it is
 * published. */
static int publish_pending(outboxd_sink_runner_t *r, size_t *sent, bool *full, char *errbuf, size_t errbuf_size) {
    outbox_sink_event_t events[BATCH];
    uint64_t seqs[BATCH];
    size_t sizes[BATCH]; /* of each destination, NUL included */
    size_t n = 0;
    /* No batch larger than the checkpoint interval, so that a crash
     * re-publishes about every_events at most (plus what async sinks had
     * in flight). */
    size_t max = r->p.conf->checkpoint_every_events < BATCH ? (size_t)r->p.conf->checkpoint_every_events : BATCH;

    pthread_mutex_lock(&r->lock);
    r->changes_seen = r->changes;
    /* Effectively-once: never more than in_doubt_max documents past the
     * last durable checkpoint, the most a recovery reads back. */
    uint64_t limit = r->recovering ? r->durable_seq + r->in_doubt_max : UINT64_MAX;
    r->at_limit = false;
    for (uint64_t seq = r->head; seq < r->tail_seq && n < max; seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (seq >= limit) {
            r->at_limit = true;
            break;
        }
        /* on_error: stop stops at a malformed document: nothing after it
         * is published, so the sink stops exactly there. */
        if (s->state == SLOT_MALFORMED && r->p.sink->on_error != OUTBOXD_ON_ERROR_SKIP &&
            r->p.sink->on_error != OUTBOXD_ON_ERROR_DEADLETTER)
            break;
        if (s->state != SLOT_PENDING || s->published)
            continue;
        if (s->payload_failed) {
            /* No JSON of it can be made: failed by outboxd, never offered. */
            s->state = SLOT_FATAL;
            s->fail = OUTBOXD_FAIL_PAYLOAD;
            free(s->error);
            size_t size = 200;
            s->error = malloc(size);
            if (!s->error)
                abort();
            snprintf(s->error, size, "its data cannot be encoded as JSON: not well-formed BSON (payload: json)");
            r->changes++;
            if (r->p.sink->on_error != OUTBOXD_ON_ERROR_SKIP && r->p.sink->on_error != OUTBOXD_ON_ERROR_DEADLETTER)
                break;
            continue;
        }
        const char *type = outbox_event_type(s->se->ev), *key = outbox_event_key(s->se->ev);
        size_t dsize = destination_size(r, type, key);
        if (dsize == 1) {
            /* Nothing to send it to: failed by outboxd, never offered. */
            s->state = SLOT_FATAL;
            s->fail = OUTBOXD_FAIL_ROUTE;
            free(s->error);
            s->error = empty_destination_reason(r, s, type, key);
            r->changes++;
            if (r->p.sink->on_error != OUTBOXD_ON_ERROR_SKIP && r->p.sink->on_error != OUTBOXD_ON_ERROR_DEADLETTER)
                break;
            continue;
        }
        /* Marked before the call: the plugin may ack from inside publish. */
        s->published = true;
        seqs[n] = seq;
        sizes[n] = dsize;
        n++;
    }
    pthread_mutex_unlock(&r->lock);
    /* Built outside the lock, which a client library's ack thread needs:
     * only this thread touches what a slot holds for the plugin, and the
     * slot stays until this thread retires it. */
    for (size_t i = 0; i < n; i++) {
        slot_t *s = &r->slots[seqs[i] % WINDOW];
        if (!s->built)
            build_event(r, s, sizes[i]);
        events[i] = s->out;
        events[i].seq = seqs[i];
    }
    *sent = 0;
    *full = r->at_limit; /* wait briefly (acks, the checkpoint's write), then again */
    if (n == 0)
        return OUTBOX_SINK_OK;
    if (!holding(r)) {
        /* The lease went while the batch was built: nothing is offered. */
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
            slot_t *s = &r->slots[seqs[i] % WINDOW];
            if (s->published && s->state == SLOT_PENDING)
                s->published = false;
        }
        pthread_mutex_unlock(&r->lock);
        return OUTBOX_SINK_OK;
    }

    r->n_publish_calls++;
    COUNT(r, batches, 1);
    errbuf[0] = '\0';
    size_t taken;
    int rc;
    if (has_publish_some(r->p.plugin)) {
        /* events[0..taken) are the plugin's; the rest go back. */
        taken = 0;
        plugin_call(r, OUTBOXD_CALL_PUBLISH);
        rc = r->p.plugin->publish_some(r->state, events, n, &taken, errbuf, errbuf_size);
        plugin_call(r, OUTBOXD_CALL_NONE);
        if (taken > n) {
            snprintf(errbuf, errbuf_size, "publish_some said it took %zu of the %zu events it was given (a bug "
                     "in plugin %s, %s): treated as FATAL", taken, n, r->p.plugin->name, r->p.plugin_path);
            rc = OUTBOX_SINK_FATAL;
            taken = 0;
        }
    } else {
        /* publish: RETRY or FATAL means it took none of the batch that it
         * has not acked; those are published again later. */
        plugin_call(r, OUTBOXD_CALL_PUBLISH);
        rc = r->p.plugin->publish(r->state, events, n, errbuf, errbuf_size);
        plugin_call(r, OUTBOXD_CALL_NONE);
        taken = rc == OUTBOX_SINK_OK ? n : 0;
    }
    errbuf[errbuf_size - 1] = '\0';
    outboxd_secrets_scrub(errbuf, errbuf_size);
    if (taken < n) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = taken; i < n; i++) {
            slot_t *s = &r->slots[seqs[i] % WINDOW];
            if (s->published && s->state == SLOT_PENDING)
                s->published = false;
        }
        pthread_mutex_unlock(&r->lock);
    }
    COUNT(r, published, (long long)taken);
    if (rc != OUTBOX_SINK_OK)
        COUNT(r, retried, (long long)(n - taken)); /* offered again later */
    *sent = taken;
    *full = rc == OUTBOX_SINK_OK && (taken < n || r->at_limit);
    return rc == OUTBOX_SINK_RETRY ? OUTBOX_SINK_RETRY : rc == OUTBOX_SINK_OK ? OUTBOX_SINK_OK : OUTBOX_SINK_FATAL;
}

/* ---- plugin lifecycle ---------------------------------------------------------- */

/* A failure that a retry loop meets again and again (a wrong CA or
 * password fails every attempt the same way) is said once, and again only
 * when its text changes or a minute has passed, with the attempts so far. */
static bool open_plugin(outboxd_sink_runner_t *r) {
    char errbuf[1024];
    int64_t backoff = BACKOFF_MIN_MS;
    repeat_t rep = {.attempts = 0};
    while (!atomic_load(r->p.stop) && holding(r)) {
        errbuf[0] = '\0';
        plugin_call(r, OUTBOXD_CALL_OPEN);
        int rc = r->p.plugin->open(&r->host, &r->state, errbuf, sizeof errbuf);
        plugin_call(r, OUTBOXD_CALL_NONE);
        errbuf[sizeof errbuf - 1] = '\0';
        outboxd_secrets_scrub(errbuf, sizeof errbuf);
        if (rc == OUTBOX_SINK_OK) {
            r->open = true;
            r->unreachable = false;
            set_state(r, OUTBOXD_SINK_RUNNING);
            LOG_INFO("%sopened (plugin %s %s, %s)", r->prefix, r->p.plugin->name,
                     r->p.plugin->version ? r->p.plugin->version : "?", r->p.plugin_path);
            return true;
        }
        if (rc != OUTBOX_SINK_RETRY) {
            char msg[1200];
            snprintf(msg, sizeof msg, "plugin %s (%s): open failed: %s", r->p.plugin->name, r->p.plugin_path, errbuf);
            stop_sink(r, "stopped", msg);
            return false;
        }
        set_state(r, OUTBOXD_SINK_RETRYING);
        bool again;
        if (repeat_due(&rep, errbuf, &again)) {
            if (again)
                LOG_WARN("%sopen: %s (still failing after %u attempts; retrying)", r->prefix, errbuf, rep.attempts);
            else
                LOG_WARN("%sopen: %s (retrying in %lld ms)", r->prefix, errbuf, (long long)backoff);
        }
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    return false;
}

static void close_plugin(outboxd_sink_runner_t *r) {
    if (!r->open)
        return;
    plugin_call(r, OUTBOXD_CALL_CLOSE);
    r->p.plugin->close(r->state);
    plugin_call(r, OUTBOXD_CALL_NONE);
    r->open = false;
    r->state = NULL;
    /* Whatever was in flight was not acked: publish it again (after a
     * reopen, recover_unsettled asks first which arrived). */
    pthread_mutex_lock(&r->lock);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (s->published && s->state == SLOT_PENDING)
            s->unsettled = true;
        s->published = false;
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- recovery (docs/recovery.md) ------------------------------------------------ */

static bool has_recover(const outbox_sink_plugin_t *p) {
    return OUTBOXD_PLUGIN_HAS(p, recover) && p->recover;
}

/* What recover_once gathers from the log: the events in doubt, built. */
typedef struct {
    outboxd_sink_runner_t *r;
    slot_t *slots;
    outbox_sink_event_t *events;
    bson_oid_t *ids;
    size_t n, cap;
} gathered_t;

/* One document in doubt (outboxd_in_doubt_read's fn): an event the sink
 * would publish is built as the plugin gets it; the rest are never
 * published (no envelope, a type not selected, failed by outboxd). */
static void gather(void *ctx, const bson_t *doc) {
    gathered_t *g = ctx;
    outboxd_sink_runner_t *r = g->r;
    outbox_error_t err;
    outbox_event_t *ev = outbox_event_parse(doc, &err);
    if (!ev || g->n == g->cap)
        goto out;
    if (!type_selected(r->p.sink, outbox_event_type(ev)))
        goto out;
    slot_t *s = &g->slots[g->n];
    s->se = outboxd_shared_event_new(ev, r->format);
    own_payload(r, s->se, &s->own_payload, &s->own_len, &s->payload_failed);
    size_t dsize = destination_size(r, outbox_event_type(ev), outbox_event_key(ev));
    if (s->payload_failed || dsize == 1 || !s->se->has_id) {
        slot_free(r, s, false);
        goto out;
    }
    build_event(r, s, dsize);
    g->events[g->n] = s->out;
    g->events[g->n].seq = g->n;
    bson_oid_copy(&s->se->id, &g->ids[g->n]);
    g->n++;
out:
    outbox_event_destroy(ev);
}

/* One recovery: reads from the log the documents after the checkpoint that
 * an earlier run may have published (at most in_doubt_max, no further than
 * the log's end now: a run that died before cannot have published one put
 * later), builds the events among them as the plugin gets them, and asks
 * its recover which the destination holds; on OK leaves the answer in
 * r->in_doubt. Returns the plugin's status, RETRY with errbuf when the log
 * cannot be read. */
static int recover_once(outboxd_sink_runner_t *r, char *errbuf, size_t errbuf_size) {
    int64_t started = outboxd_mono_ms();
    errbuf[0] = '\0';
    size_t cap = (size_t)r->in_doubt_max;
    gathered_t g = {.r = r, .cap = cap};
    g.slots = calloc(cap, sizeof *g.slots);
    g.events = calloc(cap, sizeof *g.events);
    g.ids = calloc(cap, sizeof *g.ids);
    unsigned char *held = calloc(cap, 1);
    if (!g.slots || !g.events || !g.ids || !held)
        abort();
    size_t docs = 0;
    bool gap = false;
    int rc = OUTBOX_SINK_OK;
    /* (A gap: the feeder meets it next, and on_gap settles it.) */
    if (!outboxd_in_doubt_read(r->p.pool, r->p.conf->database, r->p.conf->outbox,
                               r->cp.has_last ? &r->cp.last_id : NULL, cap, gather, &g, &docs, &gap, errbuf,
                               errbuf_size))
        rc = OUTBOX_SINK_RETRY;
    int64_t read_ms = outboxd_mono_ms() - started;
    size_t n = g.n;
    if (rc == OUTBOX_SINK_OK && n > 0) {
        plugin_call(r, OUTBOXD_CALL_RECOVER);
        rc = r->p.plugin->recover(r->state, g.events, n, held, errbuf, errbuf_size);
        plugin_call(r, OUTBOXD_CALL_NONE);
        errbuf[errbuf_size - 1] = '\0';
        outboxd_secrets_scrub(errbuf, errbuf_size);
    }
    if (rc == OUTBOX_SINK_OK) {
        size_t at_destination = 0;
        for (size_t i = 0; i < n; i++)
            at_destination += held[i] != 0;
        r->in_doubt = outboxd_in_doubt_new(g.ids, held, n);
        if (!r->in_doubt)
            abort();
        COUNT(r, recoveries, 1);
        LOG_INFO("%srecovered: %zu of the %zu events in doubt are at the destination already and are not "
                 "published again (%zu documents after the checkpoint read from the log in %lld ms, the "
                 "destination read back in %lld ms)", r->prefix, at_destination, n, docs, (long long)read_ms,
                 (long long)(outboxd_mono_ms() - started - read_ms));
    }
    for (size_t i = 0; i < n; i++)
        slot_free(r, &g.slots[i], false);
    free(g.slots);
    free(g.events);
    free(g.ids);
    free(held);
    return rc;
}

/* After the plugin was reopened (a FATAL publish): the events of the
 * window the closed instance took and never acked may have arrived; the
 * new instance's recover says which, and those are done. */
static int recover_unsettled(outboxd_sink_runner_t *r, char *errbuf, size_t errbuf_size) {
    outbox_sink_event_t *events = calloc(WINDOW, sizeof *events);
    uint64_t *seqs = calloc(WINDOW, sizeof *seqs);
    unsigned char *held = calloc(WINDOW, 1);
    if (!events || !seqs || !held)
        abort();
    size_t n = 0;
    /* Only this thread builds, offers and retires slots: what it reads of
     * them here stays put; acks of the closed instance can come no more. */
    pthread_mutex_lock(&r->lock);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (s->unsettled && s->built && s->state == SLOT_PENDING && !s->published) {
            events[n] = s->out;
            events[n].seq = n;
            seqs[n++] = seq;
        }
    }
    pthread_mutex_unlock(&r->lock);
    errbuf[0] = '\0';
    int rc = OUTBOX_SINK_OK;
    if (n > 0) {
        plugin_call(r, OUTBOXD_CALL_RECOVER);
        rc = r->p.plugin->recover(r->state, events, n, held, errbuf, errbuf_size);
        plugin_call(r, OUTBOXD_CALL_NONE);
        errbuf[errbuf_size - 1] = '\0';
        outboxd_secrets_scrub(errbuf, errbuf_size);
    }
    if (rc == OUTBOX_SINK_OK) {
        size_t found = 0;
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
            slot_t *s = &r->slots[seqs[i] % WINDOW];
            if (held[i] && s->state == SLOT_PENDING) {
                s->state = SLOT_DONE;
                found++;
            }
        }
        for (uint64_t seq = r->head; seq < r->tail_seq; seq++)
            r->slots[seq % WINDOW].unsettled = false;
        r->n_recovered += (int64_t)found;
        r->changes++;
        pthread_mutex_unlock(&r->lock);
        COUNT(r, recovered, (long long)found);
        COUNT(r, recoveries, 1);
        if (n > 0)
            LOG_INFO("%srecovered: %zu of the %zu events the closed instance had not acked are at the destination "
                     "already and are not published again", r->prefix, found, n);
    }
    free(events);
    free(seqs);
    free(held);
    return rc;
}

/* Writes the checkpoint with in_doubt: true before this activation
 * publishes anything (docs/recovery.md): a crash from now on leaves the
 * events after it in doubt. Retried with backoff; false when the
 * activation ends first (a stop, the lease gone: a fenced write). */
static bool mark_in_doubt(outboxd_sink_runner_t *r) {
    char err[600], coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);
    int64_t backoff = BACKOFF_MIN_MS;
    repeat_t rep = {.attempts = 0};
    r->cp.in_doubt = 1;
    while (!atomic_load(r->p.stop) && holding(r)) {
        int64_t seen = -1;
        outboxd_write_rc_t rc = outboxd_checkpoint_write(r->p.pool, r->p.conf->database, coll, r->p.sink->name,
                                                         r->term, &r->cp, &seen, err, sizeof err);
        if (rc == OUTBOXD_WRITE_OK) {
            r->n_checkpoint_writes++;
            r->marked = true;
            return true;
        }
        if (rc == OUTBOXD_WRITE_FENCED) {
            fence_lost(r, r->term, seen, err);
            return false;
        }
        bool again;
        if (repeat_due(&rep, err, &again))
            LOG_WARN("%s%s (%s; nothing is published until it is written)", r->prefix, err,
                     again ? "still failing" : "retrying");
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    return false;
}

/* Runs a recovery (once: recover_once or recover_unsettled) until it
 * succeeds (nothing is published meanwhile), with backoff. False when the
 * activation ends first (a stop, the lease gone or wanted elsewhere). */
static bool recover_with_retry(outboxd_sink_runner_t *r, int (*once)(outboxd_sink_runner_t *, char *, size_t)) {
    char errbuf[1024];
    int64_t backoff = BACKOFF_MIN_MS;
    repeat_t rep = {.attempts = 0};
    while (!atomic_load(r->p.stop) && holding(r) &&
           !(r->term >= 0 && outboxd_lease_handover_wanted(r->p.lease, r->term))) {
        int rc = once(r, errbuf, sizeof errbuf);
        if (rc == OUTBOX_SINK_OK)
            return true;
        set_state(r, OUTBOXD_SINK_RETRYING);
        const char *why = errbuf[0] ? errbuf : "no reason given";
        bool again;
        if (repeat_due(&rep, why, &again)) {
            if (again)
                LOG_WARN("%srecover: %s (still failing after %u attempts; nothing is published until it "
                         "succeeds)", r->prefix, why, rep.attempts);
            else
                LOG_WARN("%srecover: %s (nothing is published until it succeeds; retrying in %lld ms)", r->prefix,
                         why, (long long)backoff);
        }
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    return false;
}

/* ---- the feeder ----------------------------------------------------------------- */

/* The feeder takes events only while the lease is held (and checks it
 * again before every take). */
static bool reading(outboxd_sink_runner_t *r) {
    return !atomic_load(r->p.stop) && !atomic_load(&r->stopped) && !atomic_load(&r->ending) && holding(r);
}

static void warn_read(outboxd_sink_runner_t *r, const char *message) {
    if (outboxd_mono_ms() - r->last_read_warn_ms > 10000) {
        LOG_WARN("%sreading the log: %s (retrying)", r->prefix, message);
        r->last_read_warn_ms = outboxd_mono_ms();
    }
}

/* Leaves the ring for a catch-up tail of its own, after the last event
 * with an ObjectId it took (or its checkpoint; or at the log's start).
 * The documents without one that it took after that event, the new tail
 * reports again: they are passed over. */
static void go_private(outboxd_sink_runner_t *r, const char *why) {
    outbox_error_t err;
    char hex[25] = "";
    if (r->has_pos)
        bson_oid_to_string(&r->pos_id, hex);
    r->tail = r->has_pos ? outbox_tail_new(r->p.outbox, OUTBOX_TAIL_AFTER, &r->pos_id, &err)
                         : outbox_tail_new(r->p.outbox, OUTBOX_TAIL_FROM_START, NULL, &err);
    if (!r->tail)
        abort(); /* only for bad arguments, which these are not */
    atomic_fetch_add(&r->n_catchup_tails, 1);
    r->mode = FEED_PRIVATE;
    outboxd_reader_member_at(r->member, false, 0);
    r->pass_over = r->noid_since;
    r->private_read = 0;
    LOG_INFO("%s%s: catching up on a tail of its own %s%s", r->prefix, why,
             r->has_pos ? "after event " : "from the oldest event", hex);
}

/* After an event taken from the catch-up tail, or when that tail has
 * nothing new: back onto the ring if the sink's position is on it. */
static void try_rejoin(outboxd_sink_runner_t *r) {
    outboxd_place_t place = outboxd_reader_place(r->p.reader, r->has_pos ? &r->pos_id : NULL);
    if (place.kind != OUTBOXD_PLACE_RING)
        return;
    outbox_tail_destroy(r->tail);
    r->tail = NULL;
    r->mode = FEED_RING;
    r->ring_pos = place.seq;
    r->skip_noid = r->noid_since;
    outboxd_reader_member_at(r->member, true, r->ring_pos);
    atomic_fetch_add(&r->n_catchups, 1);
    LOG_INFO("%sback on the shared reader after %lld events on its own tail", r->prefix,
             (long long)r->private_read);
}

/* The next entries of the ring at the sink's position, up to room. */
static void feed_ring(outboxd_sink_runner_t *r, size_t room) {
    outboxd_shared_event_t *got[TAKE_MAX], *take[TAKE_MAX];
    size_t n = 0, k = 0, i;
    outboxd_ring_rc_t rc = outboxd_ring_take(outboxd_reader_ring(r->p.reader), r->ring_pos,
                                             room < TAKE_MAX ? room : TAKE_MAX, READ_WAIT_MS, got, &n);
    if (rc == OUTBOXD_RING_NOT_YET)
        return;
    if (rc == OUTBOXD_RING_EVICTED) {
        go_private(r, "behind the shared reader (its ring no longer holds this sink's next event)");
        return;
    }
    bool gap = false;
    for (i = 0; i < n && !gap; i++) {
        outboxd_shared_event_t *se = got[i];
        r->ring_pos++;
        if (se->gap) {
            /* The shared reader lost events of its own: whether this sink
             * did, its own tail tells (and on_gap applies to it). */
            outboxd_shared_event_unref(se);
            gap = true;
        } else if (r->skip_noid > 0 && !se->has_id) {
            r->skip_noid--; /* taken on the catch-up tail already */
            outboxd_shared_event_unref(se);
        } else {
            r->skip_noid = 0;
            take[k++] = se;
        }
    }
    for (; i < n; i++)
        outboxd_shared_event_unref(got[i]); /* after a gap mark: not this way */
    if (k)
        add_to_window_many(r, take, k);
    outboxd_reader_member_at(r->member, !gap, r->ring_pos);
    if (gap)
        go_private(r, "the shared reader's stream has a gap here");
}

/* A sink whose checkpoint is ahead of where the shared reader started:
 * the ring's entries are passed over until its checkpoint's event. */
static void feed_wait(outboxd_sink_runner_t *r) {
    outboxd_shared_event_t *se;
    outboxd_ring_rc_t rc = outboxd_ring_get(outboxd_reader_ring(r->p.reader), r->ring_pos, READ_WAIT_MS, &se);
    if (rc == OUTBOXD_RING_NOT_YET)
        return;
    if (rc == OUTBOXD_RING_EVICTED) {
        go_private(r, "its checkpoint's event left the shared reader's ring before this sink saw it");
        return;
    }
    r->ring_pos++;
    outboxd_reader_member_at(r->member, true, r->ring_pos);
    if (se->gap) {
        go_private(r, "the shared reader's stream has a gap before this sink's checkpoint");
    } else if (se->has_id && r->has_pos && bson_oid_equal(&se->id, &r->pos_id)) {
        r->mode = FEED_RING;
        LOG_DEBUG("%sits checkpoint's event came through the shared reader: reading from the ring", r->prefix);
    }
    outboxd_shared_event_unref(se);
}

/* One read of the catch-up tail. False when the sink stops at a gap. */
static bool feed_private(outboxd_sink_runner_t *r) {
    outbox_error_t err;
    const outbox_event_t *ev;
    int64_t started = outboxd_mono_ms();
    outbox_code_t rc = outbox_tail_next(r->tail, READ_WAIT_MS, &ev, &err);
    int64_t took = outboxd_mono_ms() - started;
    if (took > READ_WAIT_MS + SLOW_READ_MS)
        LOG_WARN("%sone read of the log took %lld ms (waiting at most %d ms for new events): a "
                 "large event, or a slow or unreachable server, holds back this sink", r->prefix,
                 (long long)took, READ_WAIT_MS);
    if (rc == OUTBOX_OK) {
        /* Encoded here, on this thread, for this sink alone. */
        add_to_window(r, outboxd_shared_event_new(ev, r->format));
        r->private_read++;
        try_rejoin(r);
    } else if (rc == OUTBOX_ERR_MALFORMED) {
        /* Never silent: each is settled by on_error (settle()). */
        const bson_t *doc = outbox_tail_malformed_document(r->tail);
        if (!doc)
            return true;
        outboxd_shared_event_t *se = outboxd_shared_event_malformed(doc, err.message);
        if (!se->has_id && r->pass_over > 0) {
            r->pass_over--; /* taken from the ring before this tail opened */
            outboxd_shared_event_unref(se);
            return true;
        }
        bool has_id = se->has_id;
        add_to_window(r, se);
        r->private_read++;
        if (has_id)
            try_rejoin(r);
    } else if (rc == OUTBOX_ERR_TIMED_OUT) {
        /* Nothing new: the shared reader may hold this place by now. */
        try_rejoin(r);
    } else if (rc == OUTBOX_ERR_GAP && r->p.sink->on_gap == OUTBOXD_ON_GAP_CONTINUE) {
        LOG_ERR("%s%s; on_gap: continue: resuming at the oldest event, the lost events are "
                "not published", r->prefix, err.message);
        outbox_tail_destroy(r->tail);
        r->tail = NULL;
        r->has_pos = false;
        r->noid_since = 0;
        go_private(r, "after a gap");
    } else if (rc == OUTBOX_ERR_GAP) {
        pthread_mutex_lock(&r->lock);
        snprintf(r->gap, sizeof r->gap, "%s", err.message);
        r->changes++;
        pthread_cond_signal(&r->work);
        pthread_mutex_unlock(&r->lock);
        return false;
    } else {
        warn_read(r, err.message);
    }
    return true;
}

/* The feeder thread: takes events into the window while it has room,
 * from the ring or the sink's catch-up tail. A gap is handed to the runner
 * (which owns the checkpoint) unless the sink says on_gap: continue;
 * server trouble is retried (the tail reconnects by itself), and said at
 * most every 10 s. */
static void *read_loop(void *arg) {
    outboxd_sink_runner_t *r = arg;
    while (reading(r)) {
        pthread_mutex_lock(&r->lock);
        while (r->tail_seq - r->head >= WINDOW && reading(r))
            outboxd_cond_wait_ms(&r->room, &r->lock, READ_WAIT_MS);
        size_t room = WINDOW - (size_t)(r->tail_seq - r->head);
        pthread_mutex_unlock(&r->lock);
        if (!reading(r))
            break;
        if (r->mode == FEED_RING)
            feed_ring(r, room);
        else if (r->mode == FEED_WAIT)
            feed_wait(r);
        else if (!feed_private(r))
            break;
    }
    /* No longer reading: the shared reader no longer paces itself by it. */
    outboxd_reader_member_at(r->member, false, 0);
    return NULL;
}

static void start_reader(outboxd_sink_runner_t *r) {
    if (pthread_create(&r->reader, NULL, read_loop, r) == 0) {
        r->reader_running = true;
        return;
    }
    stop_sink(r, "stopped", "cannot start the thread that reads the log");
}

static void stop_reader(outboxd_sink_runner_t *r) {
    if (!r->reader_running)
        return;
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->room);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->reader, NULL);
    r->reader_running = false;
}

/* Calls the plugin's poll. Its RETRY says that the destination cannot be
 * reached now (sink.h): the sink shows as retrying (/metrics, /readyz)
 * until a poll returns OK again, said once in the log (and again each
 * minute, or when the reason changes). What is published does not change:
 * the plugin keeps its events, and acks them when it can. */
static void poll_plugin(outboxd_sink_runner_t *r, int timeout_ms, char *errbuf, size_t errbuf_size) {
    errbuf[0] = '\0';
    plugin_call(r, OUTBOXD_CALL_POLL);
    int rc = r->p.plugin->poll(r->state, timeout_ms, errbuf, errbuf_size);
    plugin_call(r, OUTBOXD_CALL_NONE);
    if (rc == OUTBOX_SINK_RETRY) {
        errbuf[errbuf_size - 1] = '\0';
        outboxd_secrets_scrub(errbuf, errbuf_size);
        const char *why = errbuf[0] ? errbuf : "no reason given";
        bool again;
        if (repeat_due(&r->unreachable_said, why, &again))
            LOG_WARN("%sunreachable: %s (%s; events wait, none is lost)", r->prefix, why,
                     again ? "still" : "the sink retries");
        r->unreachable = true;
        set_state(r, OUTBOXD_SINK_RETRYING);
    } else if (rc == OUTBOX_SINK_OK && r->unreachable) {
        LOG_INFO("%sreachable again", r->prefix);
        r->unreachable = false;
        memset(&r->unreachable_said, 0, sizeof r->unreachable_said);
    }
}

/* After publish_some took only part of a batch: a short poll of the plugin
 * (POLL_WAIT_MS), or, for a plugin without poll, a wait of as long for an
 * ack (its queue drains by its own threads). */
static void wait_for_room(outboxd_sink_runner_t *r, char *errbuf, size_t errbuf_size) {
    if (r->p.plugin->poll) {
        poll_plugin(r, POLL_WAIT_MS, errbuf, errbuf_size);
        return;
    }
    pthread_mutex_lock(&r->lock);
    if (r->changes == r->changes_seen)
        outboxd_cond_wait_ms(&r->work, &r->lock, POLL_WAIT_MS);
    pthread_mutex_unlock(&r->lock);
}

/* What the runner does when publish_pending found nothing to publish:
 * serve the plugin while events are in flight, else sleep until something
 * changes (an event read, an ack, a gap). The change counter, checked under
 * the lock that its writers hold, makes a wake-up between publish_pending
 * and the wait impossible to miss. */
static void wait_for_work(outboxd_sink_runner_t *r, char *errbuf, size_t errbuf_size) {
    pthread_mutex_lock(&r->lock);
    bool in_flight = r->tail_seq > r->head;
    if (in_flight && r->p.plugin->poll) {
        pthread_mutex_unlock(&r->lock);
        poll_plugin(r, POLL_WAIT_MS, errbuf, errbuf_size);
        return;
    }
    /* Idle: a poll that does not wait, now and then, so that the plugin
     * serves its callbacks and can tell a destination gone while nothing
     * is sent (a broker down before the next event comes). */
    if (r->p.plugin->poll && outboxd_mono_ms() - r->last_idle_poll_ms >= IDLE_POLL_MS) {
        pthread_mutex_unlock(&r->lock);
        r->last_idle_poll_ms = outboxd_mono_ms();
        poll_plugin(r, 0, errbuf, errbuf_size);
        return;
    }
    if (r->changes == r->changes_seen)
        outboxd_cond_wait_ms(&r->work, &r->lock, IDLE_WAIT_MS);
    pthread_mutex_unlock(&r->lock);
}

/* Answers the reader's expectation of this sink's position (once per
 * activation, and once at start): it will not join this time. */
static void join_none(outboxd_sink_runner_t *r) {
    if (r->expecting)
        outboxd_reader_join_none(r->p.reader);
    r->expecting = false;
}

/* How an activation ended. */
enum run_end { END_STOP = 0, END_LOST, END_HANDOVER };

/* Reads the checkpoint (ha off, term -1: as before leases) or claims it at
 * the activation's term: stamps term and owner on it, and from then on
 * every write of an instance at an older term is fenced. Retried while the
 * lease is held. False when the runner goes no further (stopped, or the
 * lease is gone: *end says which). */
static bool claim_checkpoint(outboxd_sink_runner_t *r, const char *coll, bool *found, enum run_end *end) {
    char errbuf[1024];
    int64_t backoff = BACKOFF_MIN_MS;
    repeat_t rep = {.attempts = 0};
    for (;;) {
        if (atomic_load(r->p.stop)) {
            *end = END_STOP;
            break;
        }
        if (!holding(r)) {
            *end = END_LOST;
            break;
        }
        memset(&r->cp, 0, sizeof r->cp);
        if (r->term < 0) {
            if (outboxd_checkpoint_read(r->p.pool, r->p.conf->database, coll, r->p.sink->name, &r->cp, found,
                                        errbuf, sizeof errbuf))
                return true;
        } else {
            int64_t seen = -1;
            outboxd_write_rc_t rc = outboxd_checkpoint_claim(r->p.pool, r->p.conf->database, coll, r->p.sink->name,
                                                             r->term, outboxd_lease_owner_id(r->p.lease), &r->cp,
                                                             found, &seen, errbuf, sizeof errbuf);
            if (rc == OUTBOXD_WRITE_OK)
                return true;
            if (rc == OUTBOXD_WRITE_FENCED) {
                fence_lost(r, r->term, seen, errbuf);
                *end = END_LOST;
                break;
            }
        }
        bool again;
        if (repeat_due(&rep, errbuf, &again)) {
            if (again)
                LOG_WARN("%s%s (still failing after %u attempts; retrying)", r->prefix, errbuf, rep.attempts);
            else
                LOG_WARN("%s%s (retrying)", r->prefix, errbuf);
        }
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    if (*end == END_STOP && rep.attempts > 0)
        /* Stopped before the checkpoint could be read: nothing started, and
         * nothing may be written (a final write now would put an empty
         * position over the one it could not read). */
        LOG_INFO("%sstopped before its checkpoint could be read; nothing was published", r->prefix);
    return false;
}

/* Who has the sink's checkpoint now (one read, no write): for the loss's
 * log line, so that it names both terms whatever noticed the loss first.
 * False when it cannot be read or has no term. */
static bool checkpoint_holder(outboxd_sink_runner_t *r, int64_t *term, char *owner, size_t owner_size) {
    char coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(r->p.sink->name));
    bson_t *opts = BCON_NEW("projection", "{", "term", BCON_INT32(1), "owner", BCON_INT32(1), "}", "limit",
                            BCON_INT64(1));
    mongoc_client_t *client = mongoc_client_pool_pop(r->p.pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, r->p.conf->database, coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    const bson_t *doc;
    bool found = false;
    owner[0] = '\0';
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "term") && BSON_ITER_HOLDS_NUMBER(&it)) {
            *term = bson_iter_as_int64(&it);
            found = true;
        }
        if (bson_iter_init_find(&it, doc, "owner") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(owner, owner_size, "%s", bson_iter_utf8(&it, NULL));
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(r->p.pool, client);
    bson_destroy(opts);
    bson_destroy(filter);
    return found;
}

/* Why the lease is gone, for the one error line of a loss: what a fenced
 * writer of this sink saw (it names the checkpoint's term and owner), else
 * what the lease manager knows (a newer claim, the deadline passed) and
 * whose the checkpoint is now. */
static void lost_reason(outboxd_sink_runner_t *r, char *out, size_t size) {
    pthread_mutex_lock(&r->lost_lock);
    bool told = r->lost_told;
    char why[sizeof r->lost_why];
    snprintf(why, sizeof why, "%s", r->lost_why);
    pthread_mutex_unlock(&r->lost_lock);
    if (told) {
        snprintf(out, size, "%s", why);
        return;
    }
    char mgr[400], owner[128];
    if (!outboxd_lease_lost_why(r->p.lease, r->term, mgr, sizeof mgr))
        snprintf(mgr, sizeof mgr, "the lease manager no longer holds it");
    int64_t seen = -1;
    if (checkpoint_holder(r, &seen, owner, sizeof owner) && seen != r->term)
        snprintf(out, size, "%s; the checkpoint has term %lld, owner %s", mgr, (long long)seen,
                 owner[0] ? owner : "unknown");
    else
        snprintf(out, size, "%s", mgr);
}

/* The lease is lost (docs/leases.md, section 3): nothing more is offered
 * or written. The feeder stops, the plugin closes without flush (acks that
 * still come find no window), the writers drop what they hold, the window
 * goes and the sink leaves the reader; one error line; then standby. What
 * the window held is published by the new holder from the checkpoint on. */
static void lose(outboxd_sink_runner_t *r) {
    atomic_store(&r->ending, true); /* the lease may be valid again by now */
    stop_reader(r);
    outboxd_in_doubt_free(r->in_doubt);
    r->in_doubt = NULL;
    close_plugin(r);
    if (r->dlw)
        outboxd_deadletter_writer_abandon(r->dlw);
    r->dlw = NULL;
    if (r->cpw) {
        r->n_checkpoint_writes += outboxd_checkpoint_writer_writes(r->cpw);
        outboxd_checkpoint_writer_abandon(r->cpw);
    }
    r->cpw = NULL;
    report_checkpoint_writes(r);
    pthread_mutex_lock(&r->lock);
    uint64_t dropped = r->tail_seq - r->head;
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++)
        slot_free(r, &r->slots[seq % WINDOW], true);
    r->head = r->tail_seq;
    pthread_mutex_unlock(&r->lock);
    release_retired(r);
    if (r->tail)
        outbox_tail_destroy(r->tail);
    r->tail = NULL;
    outboxd_reader_leave(r->p.reader, r->member);
    r->member = NULL;
    char why[900];
    lost_reason(r, why, sizeof why);
    LOG_ERR("%slease lost: term %lld is no longer ours (%s); stopped publishing, dropped %llu events in the "
            "window unwritten; standing by mono_ms=%lld", r->prefix, (long long)r->term, why,
            (unsigned long long)dropped, (long long)outboxd_lease_now_ms());
}

/* The end of an activation that keeps the lease to the last: stop
 * reading, let the sink deliver what it has (within the lease's
 * deadline), record it (the last fenced checkpoint), leave the reader;
 * then release the lease when asked (hand-over, SIGTERM) and it is still
 * ours (a fenced last write lost it: nothing to release). */
static void wind_down(outboxd_sink_runner_t *r, bool release) {
    char errbuf[1024];
    atomic_store(&r->ending, true); /* a hand-over ends with the lease still held */
    stop_reader(r);
    /* Events the recovery found at the destination that the feeder never
     * took: past the checkpoint and published, so still in doubt. */
    bool held_untaken = r->in_doubt && outboxd_in_doubt_held_left(r->in_doubt) > 0;
    outboxd_in_doubt_free(r->in_doubt);
    r->in_doubt = NULL;
    if (r->open) {
        if (r->p.plugin->flush) {
            int64_t timeout = FLUSH_TIMEOUT_MS;
            int64_t left = outboxd_lease_deadline_ms(r->p.lease, r->term) - outboxd_lease_now_ms();
            if (left < timeout)
                timeout = left > 0 ? left : 0;
            errbuf[0] = '\0';
            plugin_call(r, OUTBOXD_CALL_FLUSH);
            int flushed = r->p.plugin->flush(r->state, (int)timeout, errbuf, sizeof errbuf);
            plugin_call(r, OUTBOXD_CALL_NONE);
            if (flushed != OUTBOX_SINK_OK) {
                errbuf[sizeof errbuf - 1] = '\0';
                outboxd_secrets_scrub(errbuf, sizeof errbuf);
                LOG_WARN("%sflush: %s (unacked events will be published again)", r->prefix, errbuf);
            }
        }
        settle(r);
        collect_stats(r); /* the final checkpoint's figures, if a second has passed */
        close_plugin(r);
    }
    if (r->dlw) {
        /* Dead letters still queued get one more try; an event whose dead
         * letter is not written stays after the checkpoint. */
        size_t left = outboxd_deadletter_writer_stop(r->dlw);
        r->dlw = NULL;
        if (left)
            LOG_WARN("%s%zu dead letters could not be written; their events are handled again after a restart",
                     r->prefix, left);
        settle(r);
    }
    /* Nothing left in doubt after a clean stop: every event handed to the
     * plugin was acked (flush) and retired into the checkpoint, so the
     * next activation has nothing to recover. */
    if (r->marked) {
        /* (A done event left in the window, behind one not done, may be
         * one the recovery found at the destination: in doubt too.) */
        bool unsettled = held_untaken;
        pthread_mutex_lock(&r->lock);
        for (uint64_t seq = r->head; seq < r->tail_seq; seq++) {
            const slot_t *s = &r->slots[seq % WINDOW];
            unsettled |= s->unsettled || s->published || s->state == SLOT_DONE;
        }
        pthread_mutex_unlock(&r->lock);
        r->cp.in_doubt = unsettled ? 1 : 0;
    }
    bool final = r->cp_dirty || !atomic_load(&r->stopped) || r->cp.in_doubt == 0;
    if (r->cpw)
        r->n_checkpoint_writes += outboxd_checkpoint_writer_stop(r->cpw, final ? &r->cp : NULL);
    else if (final)
        write_checkpoint(r);
    r->cpw = NULL;
    report_checkpoint_writes(r);
    char hex[25] = "(none)";
    if (r->cp.has_last)
        bson_oid_to_string(&r->cp.last_id, hex);
    LOG_INFO("%sstopped; checkpoint %s, %lld events in all; this run: %lld publish calls (%lld failed), "
             "%lld checkpoint writes, %lld malformed documents, %lld dead letters, %lld catch-up tails, "
             "%lld catch-ups, %lld events recovered", r->prefix, hex, (long long)r->cp.events,
             (long long)r->n_publish_calls, (long long)r->n_publish_failed, (long long)r->n_checkpoint_writes,
             (long long)r->n_malformed, (long long)r->n_dead_letters, (long long)atomic_load(&r->n_catchup_tails),
             (long long)atomic_load(&r->n_catchups), (long long)r->n_recovered);
    if (r->tail)
        outbox_tail_destroy(r->tail);
    r->tail = NULL;
    outboxd_reader_leave(r->p.reader, r->member);
    r->member = NULL;
    /* Whatever the window still holds was not acked: the next holder
     * publishes it again from the checkpoint. */
    pthread_mutex_lock(&r->lock);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++)
        slot_free(r, &r->slots[seq % WINDOW], true);
    r->head = r->tail_seq;
    pthread_mutex_unlock(&r->lock);
    release_retired(r);
    if (r->term < 0)
        return;
    if (release && holding(r)) {
        outboxd_lease_release(r->p.lease, r->term);
        LOG_INFO("%sterm %lld handed over after the last checkpoint mono_ms=%lld", r->prefix, (long long)r->term,
                 (long long)outboxd_lease_now_ms());
    }
}

/* One activation at term (held): from the checkpoint's claim to the end
 * of publishing. Answers the reader's expectation (join or join_none). */
static enum run_end activate(outboxd_sink_runner_t *r, int64_t term) {
    char errbuf[1024];
    char coll[300];
    bool found = false;
    enum run_end end = END_STOP;
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);

    r->term = term;
    r->fence = (outboxd_fence_t){.term = term, .valid = fence_valid, .lost = fence_lost, .ctx = r};
    pthread_mutex_lock(&r->lost_lock);
    r->lost_told = false;
    r->lost_why[0] = '\0';
    pthread_mutex_unlock(&r->lost_lock);
    atomic_store(&r->stopped, false);
    atomic_store(&r->ending, false);
    r->gap[0] = '\0';
    r->mode = FEED_RING;
    r->ring_pos = 0;
    r->has_pos = false;
    r->noid_since = r->skip_noid = r->pass_over = r->private_read = 0;
    r->cp_dirty = false;
    r->since_write = 0;
    r->last_stats_ms = 0;
    r->recovering = r->p.sink->recover && has_recover(r->p.plugin);
    /* The most a run publishes past its last durable checkpoint: the
     * window in flight, and what is retired between two writes; at most
     * IN_DOUBT_MAX (a recovery holds that many events at once), so a huge
     * checkpoint.every_events writes the checkpoint at least that often. */
    r->in_doubt_max = WINDOW + 2 * (uint64_t)r->p.conf->checkpoint_every_events;
    if (r->in_doubt_max > IN_DOUBT_MAX)
        r->in_doubt_max = IN_DOUBT_MAX;
    r->in_doubt = NULL;
    r->n_recovered = 0;
    r->at_limit = false;
    r->marked = false;
    if (term >= 0)
        LOG_INFO("%sactive at term %lld mono_ms=%lld", r->prefix, (long long)term, (long long)outboxd_lease_now_ms());

    /* The checkpoint first: without it the sink cannot know where it is. */
    if (!claim_checkpoint(r, coll, &found, &end)) {
        join_none(r);
        if (end == END_LOST)
            lose(r);
        return end;
    }
    const outboxd_fence_t *fence = term >= 0 ? &r->fence : NULL;
    /* (The read cleared cp: whether plugin_stats is written is set here.) */
    r->cp.has_stats = OUTBOXD_PLUGIN_HAS(r->p.plugin, stats) && r->p.plugin->stats;
    r->cpw = outboxd_checkpoint_writer_start(r->p.pool, r->p.conf->database, coll, r->p.sink->name, r->prefix,
                                             fence);
    /* The claimed checkpoint is durable: the window starts there. */
    pthread_mutex_lock(&r->lock);
    r->durable_seq = r->cp.seq = r->head;
    pthread_mutex_unlock(&r->lock);
    if (r->cpw)
        outboxd_checkpoint_writer_on_written(r->cpw, checkpoint_written, r);
    if (found && strcmp(r->cp.state, "gap") == 0) {
        /* A sink stopped at a gap stays stopped until an operator moves its
         * checkpoint (outboxctl checkpoint set/reset). */
        LOG_ERR("%sstopped at a gap: %s", r->prefix, r->cp.message);
        atomic_store(&r->stopped, true);
        set_state(r, OUTBOXD_SINK_GAP);
    }
    snprintf(r->cp.state, sizeof r->cp.state, "%s", atomic_load(&r->stopped) ? "gap" : "running");
    outboxd_place_t place = {OUTBOXD_PLACE_STOPPED, 0};
    if (!atomic_load(&r->stopped)) {
        r->cp.message[0] = '\0';
        char hex[25];
        if (r->cp.has_last) {
            bson_oid_to_string(&r->cp.last_id, hex);
            LOG_INFO("%sstarting after event %s", r->prefix, hex);
        } else {
            LOG_INFO("%sno checkpoint yet: starting at the oldest event", r->prefix);
        }
        /* Joined before the plugin opens (which may retry for long): the
         * shared reader waits for every sink's position to start. */
        r->has_pos = r->cp.has_last;
        r->pos_id = r->cp.last_id;
        r->expecting = false;
        r->member = outboxd_reader_join(r->p.reader, r->p.sink->name, r->format,
                                        r->cp.has_last ? &r->cp.last_id : NULL, r->p.stop, &place);
    } else {
        join_none(r);
    }
    if (!atomic_load(&r->stopped) && r->p.sink->on_error == OUTBOXD_ON_ERROR_DEADLETTER) {
        char dlcoll[300];
        snprintf(dlcoll, sizeof dlcoll, "%s.deadletter", r->p.conf->outbox);
        r->dlw = outboxd_deadletter_writer_start(r->p.pool, r->p.conf->database, coll, dlcoll, r->p.sink->name,
                                                 r->prefix, dead_letter_done, r, fence);
        if (!r->dlw)
            stop_sink(r, "stopped", "cannot start the thread that writes dead letters");
    }
    /* (An open given up because the lease went is no stop: the loop below
     * sees the loss.) */
    if (!atomic_load(&r->stopped) && place.kind != OUTBOXD_PLACE_STOPPED && !open_plugin(r) && holding(r))
        atomic_store(&r->stopped, true);
    if (r->member && atomic_load(&r->stopped))
        outboxd_reader_member_at(r->member, false, 0);
    /* Effectively-once: what the destination holds already, before the
     * feeder takes anything: only when an earlier run may have published
     * past the checkpoint (in_doubt; a document from an outboxd before the
     * field, with a position, may have too). Then in_doubt: true is written
     * before the first publish. (Ended first by a stop or a loss: the loop
     * below sees it.) */
    bool in_doubt = r->cp.in_doubt == 1 || (r->cp.in_doubt < 0 && r->cp.has_last);
    if (r->recovering && !in_doubt)
        LOG_INFO("%srecovered: nothing in doubt (the last run stopped cleanly, or none ran)", r->prefix);
    bool recovered = !r->recovering || atomic_load(&r->stopped) || place.kind == OUTBOXD_PLACE_STOPPED ||
                     !r->open || ((!in_doubt || recover_with_retry(r, recover_once)) && mark_in_doubt(r));
    if (!r->recovering)
        r->cp.in_doubt = 1; /* kept true by every write: a later recover: true recovers */
    if (!atomic_load(&r->stopped) && place.kind != OUTBOXD_PLACE_STOPPED && r->open && recovered) {
        if (r->recovering)
            set_state(r, OUTBOXD_SINK_RUNNING);
        r->ring_pos = place.seq;
        if (place.kind == OUTBOXD_PLACE_RING)
            r->mode = FEED_RING;
        else if (place.kind == OUTBOXD_PLACE_WAIT)
            r->mode = FEED_WAIT;
        else
            go_private(r, r->cp.has_last ? "its checkpoint is not where the shared reader reads"
                                         : "the shared reader's ring no longer holds the oldest event");
        start_reader(r);
    }
    r->last_write_ms = outboxd_mono_ms();
    int64_t retry_backoff = BACKOFF_MIN_MS;

    while (!atomic_load(r->p.stop)) {
        /* Before anything is offered: the lease (docs/leases.md 1.6). */
        if (!holding(r)) {
            end = END_LOST;
            break;
        }
        if (term >= 0 && outboxd_lease_handover_wanted(r->p.lease, term)) {
            end = END_HANDOVER;
            break;
        }
        if (atomic_load(&r->stopped)) {
            nap(r, 200);
            continue;
        }
        pthread_mutex_lock(&r->lock);
        char gap[sizeof r->gap];
        snprintf(gap, sizeof gap, "%s", r->gap);
        pthread_mutex_unlock(&r->lock);
        if (gap[0]) {
            stop_sink(r, "gap", gap);
            continue;
        }
        size_t sent = 0;
        bool full = false;
        int rc = publish_pending(r, &sent, &full, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_OK)
            r->n_publish_failed++;
        if (!atomic_load(&r->stopped))
            set_state(r, rc == OUTBOX_SINK_OK && !r->unreachable ? OUTBOXD_SINK_RUNNING : OUTBOXD_SINK_RETRYING);
        if (rc == OUTBOX_SINK_RETRY) {
            LOG_WARN("%spublish: %s (retrying in %lld ms)", r->prefix, errbuf, (long long)retry_backoff);
            nap(r, retry_backoff);
            retry_backoff = next_backoff(retry_backoff);
        } else if (rc == OUTBOX_SINK_FATAL) {
            LOG_ERR("%spublish: %s (reopening the sink)", r->prefix, errbuf);
            close_plugin(r);
            nap(r, retry_backoff);
            retry_backoff = next_backoff(retry_backoff);
            if (!open_plugin(r))
                continue;
            if (r->recovering && !recover_with_retry(r, recover_unsettled))
                continue;
        } else {
            retry_backoff = BACKOFF_MIN_MS;
        }
        /* Wait (for acks, for events) only when there is nothing to
         * publish: a poll that blocked after every batch would cap the rate
         * at a batch per poll timeout (measured: 50k events/s to Kafka). */
        if (full) {
            /* publish_some took part of the batch: "full for now". Let the
             * plugin drain (poll, or an ack) briefly, then offer the rest
             * again, with no backoff. */
            wait_for_room(r, errbuf, sizeof errbuf);
        } else if (sent > 0 && rc == OUTBOX_SINK_OK) {
            if (r->p.plugin->poll)
                poll_plugin(r, 0, errbuf, sizeof errbuf);
        } else if (rc == OUTBOX_SINK_OK) {
            wait_for_work(r, errbuf, sizeof errbuf);
        }
        if (settle(r)) {
            nap(r, retry_backoff);
            retry_backoff = next_backoff(retry_backoff);
        }
        collect_stats(r);
        report_checkpoint_writes(r);
        /* At the bound, the checkpoint goes now: publishing waits for it. */
        if (r->cp_dirty && (r->since_write >= r->p.conf->checkpoint_every_events || r->at_limit ||
                            outboxd_mono_ms() - r->last_write_ms >= r->p.conf->checkpoint_every_ms))
            write_checkpoint(r);
    }
    if (end == END_STOP && term >= 0 && !holding(r))
        end = END_LOST; /* the lease went as outboxd stopped: nothing more may be written */

    if (end == END_LOST) {
        lose(r);
    } else {
        if (term >= 0)
            LOG_INFO("%sterm %lld: stopped publishing (%s) mono_ms=%lld", r->prefix, (long long)term,
                     end == END_HANDOVER ? "hand-over wanted" : "outboxd stops", (long long)outboxd_lease_now_ms());
        /* Shutdown: stop reading, let the sink deliver what it has, record it. */
        wind_down(r, end == END_HANDOVER || (r->p.release_at_stop && atomic_load(r->p.release_at_stop)));
    }
    return end;
}

/* The runner thread: standby and activations, until outboxd stops (or
 * this sink is stopped by a reload). */
static void *run(void *arg) {
    outboxd_sink_runner_t *r = arg;
    r->expecting = true; /* outboxd_sinkset_start told the reader to expect us */
    bool said_standby = false;
    for (;;) {
        /* Held already? (stop set: a look, no wait.) A sink that stands
         * by at start tells the reader at once, which then decides where
         * to start from the active sinks alone. */
        atomic_bool look = true;
        int64_t term = outboxd_lease_wait(r->p.lease, &look);
        if (term == OUTBOXD_LEASE_NONE) {
            join_none(r);
            set_state(r, OUTBOXD_SINK_STANDBY);
            if (!said_standby)
                LOG_INFO("%sstanding by: another outboxd holds its lease mono_ms=%lld", r->prefix,
                         (long long)outboxd_lease_now_ms());
            said_standby = true;
            term = outboxd_lease_wait(r->p.lease, r->p.stop);
            if (term == OUTBOXD_LEASE_NONE)
                break;
        }
        said_standby = false;
        if (!r->expecting) {
            /* The reader counts on an answer (join or join_none) for each. */
            outboxd_reader_expect(r->p.reader);
            r->expecting = true;
        }
        set_state(r, OUTBOXD_SINK_STARTING);
        enum run_end end = activate(r, term);
        r->term = OUTBOXD_LEASE_NONE;
        if (end == END_STOP || atomic_load(r->p.stop))
            break;
    }
    join_none(r);
    return NULL;
}

outboxd_sink_runner_t *outboxd_sink_runner_start(outboxd_sink_params_t *params) {
    outboxd_sink_runner_t *r = calloc(1, sizeof *r);
    r->p = *params;
    memset(&params->options, 0, sizeof params->options);
    snprintf(r->prefix, sizeof r->prefix, "sink %s: ", r->p.sink->name);
    r->host.struct_size = sizeof r->host;
    r->host.abi_major = OUTBOX_SINK_ABI_MAJOR;
    r->host.abi_minor = OUTBOX_SINK_ABI_MINOR;
    r->host.ctx = r;
    r->host.sink_name = r->p.sink->name;
    r->host.log = host_log;
    r->host.ack = host_ack;
    r->host.option = host_option;
    r->host.option_next = host_option_next;
    /* ABI 1.1 */
    r->host.route = r->p.sink->route ? r->p.sink->route : "";
    r->host.payload = r->p.sink->payload == OUTBOXD_PAYLOAD_BSON ? "bson" : "json";
    r->format = r->p.sink->payload == OUTBOXD_PAYLOAD_BSON ? OUTBOXD_FORMAT_BSON : OUTBOXD_FORMAT_JSON;
    /* ABI 1.2: the message format, checked against the plugin when the
     * configuration was (check.c): a refusal here would be a bug, said. */
    char why[400];
    if (!outboxd_msgformat_resolve(r->p.sink, r->p.plugin, &r->msgformat, why, sizeof why)) {
        LOG_ERR("%s%s: format native instead (a bug: the configuration's check should have refused it)", r->prefix,
                why);
        r->msgformat.format = OUTBOXD_MESSAGE_NATIVE;
    }
    r->host.format = outboxd_message_format_name(r->msgformat.format);
    r->host.message_as_given = r->msgformat.format != OUTBOXD_MESSAGE_NATIVE;
    r->retired = calloc(WINDOW, sizeof *r->retired);
    if (!r->retired)
        abort();
    atomic_init(&r->n_catchup_tails, 0);
    atomic_init(&r->n_catchups, 0);
    r->host.options_fill = host_options_fill;
    route_shape(r);
    r->term = OUTBOXD_LEASE_NONE;
    pthread_mutex_init(&r->lost_lock, NULL);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->room, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->lost_lock);
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->room);
        pthread_mutex_destroy(&r->lock);
        outboxd_options_free(&r->p.options);
        free(r->retired);
        free(r);
        return NULL;
    }
    return r;
}

void outboxd_sink_runner_join(outboxd_sink_runner_t *r) {
    if (!r)
        return;
    pthread_join(r->thread, NULL);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++)
        slot_free(r, &r->slots[seq % WINDOW], false);
    release_retired(r);
    free(r->retired);
    for (size_t i = 0; i < r->n_bad_stats; i++)
        free(r->bad_stats[i]);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->room);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->lost_lock);
    outboxd_options_free(&r->p.options);
    free(r);
}
