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
 * Two threads per sink. The reader thread tails the log into the window
 * while there is room; the runner thread publishes what the window holds,
 * serves the plugin (poll), settles acks and writes the checkpoint. Reading
 * and publishing overlap, so an event is handed to the plugin as soon as it
 * is read (a runner that alternated between reading and publishing had to
 * cut its reads into slices, which held each trickled event back by up to
 * a slice), and a backlog drains at the rate of the slower of the two
 * rather than their sum.
 */
#include "sink_runner.h"

#include "checkpoint.h"
#include "checkpoint_writer.h"
#include "condwait.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 4096          /* events in flight per sink */
#define BATCH 500            /* events per publish call */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define FLUSH_TIMEOUT_MS 10000
#define READ_WAIT_MS 200     /* one wait of the reader for new events */
#define IDLE_WAIT_MS 100     /* the runner's wait for work when nothing is in flight */
#define POLL_WAIT_MS 2       /* the runner's wait in poll with events in flight:
                              * a new event waits for the poll to end */

enum slot_state { SLOT_PENDING = 0, SLOT_DONE, SLOT_RETRY, SLOT_FATAL };

typedef struct {
    bson_t *doc;        /* the envelope, owned */
    bson_oid_t id;
    char id_hex[25];
    bool published;     /* handed to the plugin and not yet asked back */
    enum slot_state state;
    char *error;        /* FATAL text from the plugin, owned */
} slot_t;

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

    pthread_t reader;
    bool reader_running;
    outbox_tail_t *tail;        /* the reader's own once it runs */
    char gap[600];              /* under lock: a gap the reader met (on_gap: stop) */
    outboxd_checkpoint_t cp;    /* the position; last handed to cpw */
    outboxd_checkpoint_writer_t *cpw; /* NULL: written inline */
    bool cp_dirty;
    int64_t since_write;        /* events retired since the last write */
    int64_t last_write_ms;
    atomic_bool stopped;        /* on_error/on_gap stop: idle until shutdown */
    int64_t last_read_warn_ms;  /* the reader's rate limit for "reading the log" warnings */
    /* Counters for the line logged at stop (and the benchmarks). */
    int64_t n_publish_calls, n_publish_failed, n_checkpoint_writes;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
            } else if (status == OUTBOX_SINK_RETRY) {
                s->state = SLOT_RETRY;
            } else {
                s->state = SLOT_FATAL;
                free(s->error);
                s->error = strdup(error ? error : "no reason given");
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

static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    outboxd_sink_runner_t *r = ctx;
    if (*cursor >= r->p.options.n)
        return NULL;
    if (value)
        *value = r->p.options.values[*cursor];
    return r->p.options.keys[(*cursor)++];
}

/* ---- helpers ----------------------------------------------------------------- */

/* Sleeps ms, waking early when the daemon stops. */
static void nap(outboxd_sink_runner_t *r, int64_t ms) {
    int64_t until = now_ms() + ms;
    while (!atomic_load(r->p.stop) && now_ms() < until) {
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

/* Hands the checkpoint to the writer thread (checkpoint_writer.h says
 * why); inline only if that thread could not start. */
static void write_checkpoint(outboxd_sink_runner_t *r) {
    r->cp_dirty = false;
    r->since_write = 0;
    r->last_write_ms = now_ms();
    if (r->cpw) {
        outboxd_checkpoint_writer_submit(r->cpw, &r->cp);
        return;
    }
    char err[600], coll[300];
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);
    if (outboxd_checkpoint_write(r->p.pool, r->p.conf->database, coll, r->p.sink->name, &r->cp, err, sizeof err)) {
        r->n_checkpoint_writes++;
    } else {
        LOG_WARN("%s%s (will retry)", r->prefix, err);
        r->cp_dirty = true; /* again after checkpoint.every_ms */
    }
}

/* Stops this sink for good (until outboxd restarts): state and reason go
 * into the checkpoint document, where outboxctl status shows them. */
static void stop_sink(outboxd_sink_runner_t *r, const char *state, const char *message) {
    LOG_ERR("%s%s; this sink stops, the others go on", r->prefix, message);
    snprintf(r->cp.state, sizeof r->cp.state, "%s", state);
    snprintf(r->cp.message, sizeof r->cp.message, "%s", message);
    atomic_store(&r->stopped, true);
    write_checkpoint(r);
}

static void dead_letter(outboxd_sink_runner_t *r, const slot_t *s) {
    bson_error_t berr;
    char coll[300];
    snprintf(coll, sizeof coll, "%s.deadletter", r->p.conf->outbox);
    bson_t *doc = BCON_NEW("sink", BCON_UTF8(r->p.sink->name), "event_id", BCON_OID(&s->id), "error",
                           BCON_UTF8(s->error ? s->error : ""), "at", BCON_DATE_TIME((int64_t)time(NULL) * 1000),
                           "event", BCON_DOCUMENT(s->doc));
    mongoc_client_t *client = mongoc_client_pool_pop(r->p.pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, r->p.conf->database, coll);
    if (!mongoc_collection_insert_one(c, doc, NULL, NULL, &berr))
        LOG_ERR("%scannot dead-letter event %s: %s", r->prefix, s->id_hex, berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(r->p.pool, client);
    bson_destroy(doc);
}

/* ---- the window ---------------------------------------------------------------- */

static void add_event(outboxd_sink_runner_t *r, const outbox_event_t *ev) {
    pthread_mutex_lock(&r->lock);
    slot_t *s = &r->slots[r->tail_seq % WINDOW];
    s->doc = bson_copy(outbox_event_document(ev));
    bson_oid_copy(outbox_event_id(ev), &s->id);
    bson_oid_to_string(&s->id, s->id_hex);
    s->published = false;
    s->state = type_selected(r->p.sink, outbox_event_type(ev)) ? SLOT_PENDING : SLOT_DONE;
    s->error = NULL;
    r->tail_seq++;
    r->changes++;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->lock);
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
        } else if (s->state == SLOT_FATAL) {
            char msg[700];
            snprintf(msg, sizeof msg, "event %s: %s", s->id_hex, s->error);
            switch (r->p.sink->on_error) {
            case OUTBOXD_ON_ERROR_SKIP:
                LOG_WARN("%s%s (on_error: skip, event not delivered)", r->prefix, msg);
                s->state = SLOT_DONE;
                break;
            case OUTBOXD_ON_ERROR_DEADLETTER:
                LOG_WARN("%s%s (on_error: deadletter, into %s.deadletter)", r->prefix, msg, r->p.conf->outbox);
                dead_letter(r, s);
                s->state = SLOT_DONE;
                break;
            default:
                pthread_mutex_unlock(&r->lock);
                stop_sink(r, "stopped", msg);
                return false;
            }
        }
    }
    while (r->head < r->tail_seq && r->slots[r->head % WINDOW].state == SLOT_DONE) {
        slot_t *s = &r->slots[r->head % WINDOW];
        r->cp.has_last = true;
        bson_oid_copy(&s->id, &r->cp.last_id);
        r->cp.events++;
        r->cp_dirty = true;
        r->since_write++;
        bson_destroy(s->doc);
        free(s->error);
        memset(s, 0, sizeof *s);
        r->head++;
        pthread_cond_signal(&r->room);
    }
    pthread_mutex_unlock(&r->lock);
    return retry;
}

/* Builds outbox_sink_event_t for up to BATCH unpublished events and hands
 * them to the plugin; *sent is how many. Returns the plugin's status (OK
 * with nothing to do too). */
static int publish_pending(outboxd_sink_runner_t *r, size_t *sent, char *errbuf, size_t errbuf_size) {
    outbox_sink_event_t events[BATCH];
    outbox_sink_header_t *headers[BATCH];
    char *payloads[BATCH];
    char *destinations[BATCH];
    uint64_t seqs[BATCH];
    size_t n = 0;
    /* No batch larger than the checkpoint interval, so that a crash
     * re-publishes about every_events at most (plus what async sinks had
     * in flight). */
    size_t max = r->p.conf->checkpoint_every_events < BATCH ? (size_t)r->p.conf->checkpoint_every_events : BATCH;

    pthread_mutex_lock(&r->lock);
    r->changes_seen = r->changes;
    for (uint64_t seq = r->head; seq < r->tail_seq && n < max; seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        if (s->state != SLOT_PENDING || s->published)
            continue;
        bson_iter_t it;
        const char *type = "", *key = NULL;
        int64_t created = 0;
        bson_t data = BSON_INITIALIZER, hdrs = BSON_INITIALIZER; /* empty unless found */
        bool has_hdrs = false;
        if (bson_iter_init(&it, s->doc)) {
            while (bson_iter_next(&it)) {
                const char *k = bson_iter_key(&it);
                if (strcmp(k, "type") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                    type = bson_iter_utf8(&it, NULL);
                else if (strcmp(k, "key") == 0 && BSON_ITER_HOLDS_UTF8(&it))
                    key = bson_iter_utf8(&it, NULL);
                else if (strcmp(k, "created") == 0 && BSON_ITER_HOLDS_DATE_TIME(&it))
                    created = bson_iter_date_time(&it);
                else if (strcmp(k, "data") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                    uint32_t len;
                    const uint8_t *buf;
                    bson_iter_document(&it, &len, &buf);
                    bson_init_static(&data, buf, len);
                } else if (strcmp(k, "headers") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                    uint32_t len;
                    const uint8_t *buf;
                    bson_iter_document(&it, &len, &buf);
                    has_hdrs = bson_init_static(&hdrs, buf, len);
                }
            }
        }
        outbox_sink_event_t *e = &events[n];
        memset(e, 0, sizeof *e);
        e->seq = seq;
        e->id = s->id_hex;
        e->type = type;
        e->key = key;
        e->created_ms = created;
        /* The payload is encoded once, here, whatever the plugin. */
        if (r->p.sink->payload == OUTBOXD_PAYLOAD_BSON) {
            payloads[n] = malloc(data.len);
            memcpy(payloads[n], bson_get_data(&data), data.len);
            e->payload_len = data.len;
        } else {
            size_t len;
            char *json = bson_as_relaxed_extended_json(&data, &len);
            payloads[n] = strdup(json ? json : "{}");
            e->payload_len = strlen(payloads[n]);
            bson_free(json);
        }
        e->payload = (const unsigned char *)payloads[n];
        size_t dcap = strlen(r->p.sink->route) + strlen(type) * 4 + (key ? strlen(key) * 4 : 0) + 16;
        destinations[n] = malloc(dcap);
        if (outboxd_route_expand(r->p.sink->route, type, key, destinations[n], dcap) < 0)
            destinations[n][0] = '\0';
        e->destination = destinations[n];
        headers[n] = NULL;
        if (has_hdrs) {
            size_t cnt = 0;
            bson_iter_t h;
            bson_iter_init(&h, &hdrs);
            while (bson_iter_next(&h))
                cnt += BSON_ITER_HOLDS_UTF8(&h);
            headers[n] = calloc(cnt ? cnt : 1, sizeof *headers[n]);
            bson_iter_init(&h, &hdrs);
            while (bson_iter_next(&h))
                if (BSON_ITER_HOLDS_UTF8(&h)) {
                    headers[n][e->n_headers].name = bson_iter_key(&h);
                    headers[n][e->n_headers].value = bson_iter_utf8(&h, NULL);
                    e->n_headers++;
                }
            e->headers = e->n_headers ? headers[n] : NULL;
        }
        /* Marked before the call: the plugin may ack from inside publish. */
        s->published = true;
        seqs[n] = seq;
        n++;
    }
    pthread_mutex_unlock(&r->lock);
    *sent = n;
    if (n == 0)
        return OUTBOX_SINK_OK;

    r->n_publish_calls++;
    errbuf[0] = '\0';
    int rc = r->p.plugin->publish(r->state, events, n, errbuf, errbuf_size);
    errbuf[errbuf_size - 1] = '\0';
    if (rc != OUTBOX_SINK_OK) {
        /* RETRY or FATAL: the plugin took none of the batch that it has
         * not acked; those are published again later. */
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < n; i++) {
            slot_t *s = &r->slots[seqs[i] % WINDOW];
            if (s->published && s->state == SLOT_PENDING)
                s->published = false;
        }
        pthread_mutex_unlock(&r->lock);
    }
    for (size_t i = 0; i < n; i++) {
        free(payloads[i]);
        free(destinations[i]);
        free(headers[i]);
    }
    return rc == OUTBOX_SINK_RETRY ? OUTBOX_SINK_RETRY : rc == OUTBOX_SINK_OK ? OUTBOX_SINK_OK : OUTBOX_SINK_FATAL;
}

/* ---- plugin lifecycle ---------------------------------------------------------- */

static bool open_plugin(outboxd_sink_runner_t *r) {
    char errbuf[1024];
    int64_t backoff = BACKOFF_MIN_MS;
    while (!atomic_load(r->p.stop)) {
        errbuf[0] = '\0';
        int rc = r->p.plugin->open(&r->host, &r->state, errbuf, sizeof errbuf);
        errbuf[sizeof errbuf - 1] = '\0';
        if (rc == OUTBOX_SINK_OK) {
            r->open = true;
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
        LOG_WARN("%sopen: %s (retrying in %lld ms)", r->prefix, errbuf, (long long)backoff);
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    return false;
}

static void close_plugin(outboxd_sink_runner_t *r) {
    if (!r->open)
        return;
    r->p.plugin->close(r->state);
    r->open = false;
    r->state = NULL;
    /* Whatever was in flight was not delivered: publish it again. */
    pthread_mutex_lock(&r->lock);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++)
        r->slots[seq % WINDOW].published = false;
    pthread_mutex_unlock(&r->lock);
}

static void open_tail(outboxd_sink_runner_t *r) {
    outbox_error_t err;
    r->tail = r->cp.has_last ? outbox_tail_new(r->p.outbox, OUTBOX_TAIL_AFTER, &r->cp.last_id, &err)
                             : outbox_tail_new(r->p.outbox, OUTBOX_TAIL_FROM_START, NULL, &err);
}

static bool reading(outboxd_sink_runner_t *r) {
    return !atomic_load(r->p.stop) && !atomic_load(&r->stopped);
}

/* The reader thread: tails the log into the window while it has room. A
 * gap is handed to the runner (which owns the checkpoint) unless the sink
 * says on_gap: continue; server trouble is retried (the tail reconnects by
 * itself), and said at most every 10 s. */
static void *read_loop(void *arg) {
    outboxd_sink_runner_t *r = arg;
    outbox_error_t err;
    const outbox_event_t *ev;
    while (reading(r)) {
        pthread_mutex_lock(&r->lock);
        while (r->tail_seq - r->head >= WINDOW && reading(r))
            outboxd_cond_wait_ms(&r->room, &r->lock, READ_WAIT_MS);
        pthread_mutex_unlock(&r->lock);
        if (!reading(r))
            break;
        outbox_code_t rc = outbox_tail_next(r->tail, READ_WAIT_MS, &ev, &err);
        if (rc == OUTBOX_OK) {
            add_event(r, ev);
        } else if (rc == OUTBOX_ERR_TIMED_OUT) {
            continue;
        } else if (rc == OUTBOX_ERR_GAP && r->p.sink->on_gap == OUTBOXD_ON_GAP_CONTINUE) {
            LOG_ERR("%s%s; on_gap: continue: resuming at the oldest event, the lost events are "
                    "not published", r->prefix, err.message);
            outbox_tail_destroy(r->tail);
            r->tail = outbox_tail_new(r->p.outbox, OUTBOX_TAIL_FROM_START, NULL, &err);
        } else if (rc == OUTBOX_ERR_GAP) {
            pthread_mutex_lock(&r->lock);
            snprintf(r->gap, sizeof r->gap, "%s", err.message);
            r->changes++;
            pthread_cond_signal(&r->work);
            pthread_mutex_unlock(&r->lock);
            break;
        } else if (now_ms() - r->last_read_warn_ms > 10000) {
            LOG_WARN("%sreading the log: %s (retrying)", r->prefix, err.message);
            r->last_read_warn_ms = now_ms();
        }
    }
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
        r->p.plugin->poll(r->state, POLL_WAIT_MS, errbuf, errbuf_size);
        return;
    }
    if (r->changes == r->changes_seen)
        outboxd_cond_wait_ms(&r->work, &r->lock, IDLE_WAIT_MS);
    pthread_mutex_unlock(&r->lock);
}

static void *run(void *arg) {
    outboxd_sink_runner_t *r = arg;
    char errbuf[1024];
    char coll[300];
    bool found;
    snprintf(coll, sizeof coll, "%s.checkpoints", r->p.conf->outbox);

    /* The checkpoint first: without it the sink cannot know where it is. */
    int64_t backoff = BACKOFF_MIN_MS;
    while (!atomic_load(r->p.stop) &&
           !outboxd_checkpoint_read(r->p.pool, r->p.conf->database, coll, r->p.sink->name, &r->cp, &found,
                                    errbuf, sizeof errbuf)) {
        LOG_WARN("%s%s (retrying)", r->prefix, errbuf);
        nap(r, backoff);
        backoff = next_backoff(backoff);
    }
    r->cpw = outboxd_checkpoint_writer_start(r->p.pool, r->p.conf->database, coll, r->p.sink->name, r->prefix);
    if (found && strcmp(r->cp.state, "gap") == 0) {
        /* A sink stopped at a gap stays stopped until an operator moves its
         * checkpoint (outboxctl checkpoint set/reset). */
        LOG_ERR("%sstopped at a gap: %s", r->prefix, r->cp.message);
        atomic_store(&r->stopped, true);
    }
    snprintf(r->cp.state, sizeof r->cp.state, "%s", atomic_load(&r->stopped) ? "gap" : "running");
    if (!atomic_load(&r->stopped)) {
        r->cp.message[0] = '\0';
        char hex[25];
        if (r->cp.has_last) {
            bson_oid_to_string(&r->cp.last_id, hex);
            LOG_INFO("%sstarting after event %s", r->prefix, hex);
        } else {
            LOG_INFO("%sno checkpoint yet: starting at the oldest event", r->prefix);
        }
        open_tail(r);
    }
    if (!atomic_load(&r->stopped) && !open_plugin(r))
        atomic_store(&r->stopped, true);
    if (!atomic_load(&r->stopped))
        start_reader(r);
    r->last_write_ms = now_ms();
    int64_t retry_backoff = BACKOFF_MIN_MS;

    while (!atomic_load(r->p.stop)) {
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
        int rc = publish_pending(r, &sent, errbuf, sizeof errbuf);
        if (rc != OUTBOX_SINK_OK)
            r->n_publish_failed++;
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
        } else {
            retry_backoff = BACKOFF_MIN_MS;
        }
        /* Wait (for acks, for events) only when there is nothing to
         * publish: a poll that blocked after every batch would cap the rate
         * at a batch per poll timeout (measured: 50k events/s to Kafka). */
        if (sent > 0 && rc == OUTBOX_SINK_OK) {
            if (r->p.plugin->poll)
                r->p.plugin->poll(r->state, 0, errbuf, sizeof errbuf);
        } else if (rc == OUTBOX_SINK_OK) {
            wait_for_work(r, errbuf, sizeof errbuf);
        }
        if (settle(r)) {
            nap(r, retry_backoff);
            retry_backoff = next_backoff(retry_backoff);
        }
        if (r->cp_dirty && (r->since_write >= r->p.conf->checkpoint_every_events ||
                            now_ms() - r->last_write_ms >= r->p.conf->checkpoint_every_ms))
            write_checkpoint(r);
    }

    /* Shutdown: stop reading, let the sink deliver what it has, record it. */
    stop_reader(r);
    if (r->open) {
        if (r->p.plugin->flush) {
            errbuf[0] = '\0';
            if (r->p.plugin->flush(r->state, FLUSH_TIMEOUT_MS, errbuf, sizeof errbuf) != OUTBOX_SINK_OK)
                LOG_WARN("%sflush: %s (unacked events will be published again)", r->prefix, errbuf);
        }
        settle(r);
        close_plugin(r);
    }
    bool final = r->cp_dirty || !atomic_load(&r->stopped);
    if (r->cpw)
        r->n_checkpoint_writes += outboxd_checkpoint_writer_stop(r->cpw, final ? &r->cp : NULL);
    else if (final)
        write_checkpoint(r);
    char hex[25] = "(none)";
    if (r->cp.has_last)
        bson_oid_to_string(&r->cp.last_id, hex);
    LOG_INFO("%sstopped; checkpoint %s, %lld events in all; this run: %lld publish calls (%lld failed), "
             "%lld checkpoint writes", r->prefix, hex, (long long)r->cp.events, (long long)r->n_publish_calls,
             (long long)r->n_publish_failed, (long long)r->n_checkpoint_writes);
    if (r->tail)
        outbox_tail_destroy(r->tail);
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
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->room, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->room);
        pthread_mutex_destroy(&r->lock);
        outboxd_options_free(&r->p.options);
        free(r);
        return NULL;
    }
    return r;
}

void outboxd_sink_runner_join(outboxd_sink_runner_t *r) {
    if (!r)
        return;
    pthread_join(r->thread, NULL);
    for (uint64_t seq = r->head; seq < r->tail_seq; seq++) {
        slot_t *s = &r->slots[seq % WINDOW];
        bson_destroy(s->doc);
        free(s->error);
    }
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->room);
    pthread_mutex_destroy(&r->lock);
    outboxd_options_free(&r->p.options);
    free(r);
}
