/*
 * reader.c - see reader.h.
 *
 * The reader thread first waits until every sink it expects has joined
 * (each reads its own checkpoint first), then decides where to start: the
 * log's start if one sink has no checkpoint, else after the checkpoint that
 * comes first in the log's natural order (one query of the log: the
 * checkpoints' ids, sorted $natural, projected to _id). The sinks whose
 * checkpoint is that one start on the ring at its first position; those
 * whose checkpoint is later wait for it to pass through the ring; those
 * whose checkpoint is no longer in the log read on a tail of their own,
 * which reports their gap. Then it tails the log into the ring.
 *
 * It idles without members (docs/leases.md, section 4): it decides no
 * origin and opens no tail while no sink has joined (every sink of this
 * instance stands by for a lease another outboxd holds, or is stopped),
 * and when the last member leaves it closes its tail, empties the ring
 * and goes back to "origin not decided": the next sink that joins has its
 * origin decided as at start. A pure standby instance thus reads nothing
 * from the log, and the database serves one tailable cursor per instance
 * that publishes.
 */
#include "reader.h"

#include "clock.h"

#include "condwait.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_WAIT_MS 200     /* one wait of the reader for new events */
#define SLOW_READ_MS 5000    /* a read that took this much longer is said in the log */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define PACE_WAIT_MS 2       /* the reader's wait while the leading sink has half a ring to read */

struct outboxd_reader_member {
    outboxd_reader_member_t *next;
    char *name;
    unsigned formats;
    bool from_start;
    bson_oid_t after;
    bool decided;           /* under lock: place is set */
    outboxd_place_t place;
    atomic_bool on_ring;    /* the feeder's, for the reader's pace */
    atomic_uint_fast64_t pos;
};

struct outboxd_reader {
    outbox_t *outbox;
    mongoc_client_pool_t *pool;
    char *db, *coll;
    /* Replaced by an empty one when the reader goes idle (the last member
     * left: no feeder reads it then); feeders load it at each take. */
    _Atomic(outboxd_ring_t *) ring;
    size_t ring_events, ring_bytes;

    pthread_t thread;
    bool running;
    atomic_bool stop;
    outboxd_heartbeat_t *beat; /* the watchdog's (heartbeat.h); NULL: none */

    pthread_mutex_t lock;   /* guards what follows */
    pthread_cond_t changed; /* a join, a decision, a stop */
    int pending;            /* sinks expected that have not joined yet */
    outboxd_reader_member_t *members;
    bool started;           /* the origin is decided: joins are placed at once */
    bool no_ring;           /* the thread could not start: every sink reads alone */
    bool origin_from_start; /* the ring began at the log's start... */
    bson_oid_t origin_after;/* ...or right after this event */
    uint64_t origin_seq;    /* the ring's first position */

    atomic_bool at_head;    /* its last read found nothing new: the ring's
                             * newest entry is the log's newest document */
    atomic_uint formats;    /* the payload formats the members use */
    atomic_llong shared_tails;
    const outboxd_reader_source_t *source; /* NULL: the log (outboxd_reader_set_source) */
    int64_t events_read, malformed_read, gaps;
    int64_t last_warn_ms;
};

static void nap(outboxd_reader_t *r, int64_t ms) {
    int64_t until = outboxd_mono_ms() + ms;
    while (!atomic_load(&r->stop) && outboxd_mono_ms() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

outboxd_reader_t *outboxd_reader_new(outbox_t *outbox, mongoc_client_pool_t *pool, const char *db,
                                     const char *coll, size_t ring_events, size_t ring_bytes) {
    outboxd_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->outbox = outbox;
    r->pool = pool;
    r->db = strdup(db);
    r->coll = strdup(coll);
    if (!r->db || !r->coll)
        abort();
    r->ring_events = ring_events;
    r->ring_bytes = ring_bytes;
    atomic_init(&r->ring, outboxd_ring_new(ring_events, ring_bytes));
    atomic_init(&r->stop, false);
    atomic_init(&r->formats, 0);
    atomic_init(&r->shared_tails, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    return r;
}

void outboxd_reader_expect(outboxd_reader_t *r) {
    pthread_mutex_lock(&r->lock);
    r->pending++;
    pthread_mutex_unlock(&r->lock);
}

void outboxd_reader_join_none(outboxd_reader_t *r) {
    pthread_mutex_lock(&r->lock);
    if (r->pending > 0)
        r->pending--;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

static void update_formats(outboxd_reader_t *r) {
    unsigned f = 0;
    for (outboxd_reader_member_t *m = r->members; m; m = m->next)
        f |= m->formats;
    atomic_store(&r->formats, f);
}

/* Where a sink after `after` goes on, now (lock held, origin decided). */
static outboxd_place_t place_locked(outboxd_reader_t *r, const bson_oid_t *after) {
    outboxd_place_t p = {OUTBOXD_PLACE_PRIVATE, 0};
    uint64_t oldest, next, seq;
    if (r->no_ring)
        return p;
    outboxd_ring_bounds(r->ring, &oldest, &next);
    if (!after) {
        /* From the log's start: the ring's first entries, if it began
         * there and has dropped none of them. */
        if (r->origin_from_start && oldest == r->origin_seq) {
            p.kind = OUTBOXD_PLACE_RING;
            p.seq = r->origin_seq;
        }
        return p;
    }
    if (outboxd_ring_find(r->ring, after, &seq)) {
        p.kind = OUTBOXD_PLACE_RING;
        p.seq = seq + 1;
    } else if (!r->origin_from_start && bson_oid_equal(after, &r->origin_after) && oldest == r->origin_seq) {
        p.kind = OUTBOXD_PLACE_RING;
        p.seq = r->origin_seq;
    }
    return p;
}

outboxd_place_t outboxd_reader_place(outboxd_reader_t *r, const bson_oid_t *after) {
    outboxd_place_t p = {OUTBOXD_PLACE_PRIVATE, 0};
    pthread_mutex_lock(&r->lock);
    if (r->started)
        p = place_locked(r, after);
    pthread_mutex_unlock(&r->lock);
    return p;
}

outboxd_reader_member_t *outboxd_reader_join(outboxd_reader_t *r, const char *name, unsigned formats,
                                             const bson_oid_t *after, atomic_bool *stop,
                                             outboxd_place_t *place) {
    outboxd_reader_member_t *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name)))
        abort();
    m->formats = formats;
    m->from_start = after == NULL;
    atomic_init(&m->on_ring, false);
    atomic_init(&m->pos, 0);
    if (after)
        bson_oid_copy(after, &m->after);
    pthread_mutex_lock(&r->lock);
    m->next = r->members;
    r->members = m;
    update_formats(r);
    /* Each join (or join_none) answers one expect, whether the origin is
     * decided or not: a sink that joins again after standing by expects
     * again first, so the count stays right across idle periods. */
    if (r->pending > 0)
        r->pending--;
    if (r->started) {
        m->place = place_locked(r, after);
        m->decided = true;
    }
    pthread_cond_broadcast(&r->changed);
    while (!m->decided && !atomic_load(stop) && !atomic_load(&r->stop))
        outboxd_cond_wait_ms(&r->changed, &r->lock, 200);
    *place = m->decided ? m->place : (outboxd_place_t){OUTBOXD_PLACE_STOPPED, 0};
    outboxd_reader_member_at(m, place->kind == OUTBOXD_PLACE_RING || place->kind == OUTBOXD_PLACE_WAIT, place->seq);
    pthread_mutex_unlock(&r->lock);
    return m;
}

void outboxd_reader_member_at(outboxd_reader_member_t *m, bool on_ring, uint64_t pos) {
    atomic_store_explicit(&m->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&m->on_ring, on_ring, memory_order_relaxed);
}

/* Whether the reader waits before reading on: the ring is full and the
 * most advanced sink on it is still in its older half. Reading on would
 * drop entries that sinks on the ring have yet to read, with no sink
 * needing the new ones: a backlog drained by one sink would have it fall
 * off the ring and read the log a second time on a tail of its own. It
 * waits for the leading sink only: a slow or failing sink falls behind
 * the others and off the ring, and catches up on its own tail. With no
 * sink on the ring it reads on (sinks on tails of their own rejoin when
 * they reach what it holds). */
static bool pace(outboxd_reader_t *r) {
    uint64_t oldest, next, lead = 0;
    if (!outboxd_ring_at_limit(r->ring, &oldest, &next))
        return false;
    bool any = false;
    pthread_mutex_lock(&r->lock);
    for (outboxd_reader_member_t *m = r->members; m; m = m->next) {
        if (!atomic_load_explicit(&m->on_ring, memory_order_relaxed))
            continue;
        uint64_t pos = atomic_load_explicit(&m->pos, memory_order_relaxed);
        /* A source of the caller's has no log behind it: the slowest sink
         * sets the pace (outboxd_reader_set_source). */
        if (!any || (r->source ? pos < lead : pos > lead))
            lead = pos;
        any = true;
    }
    pthread_mutex_unlock(&r->lock);
    return any && lead < oldest + (next - oldest) / 2;
}

void outboxd_reader_leave(outboxd_reader_t *r, outboxd_reader_member_t *m) {
    if (!m)
        return;
    pthread_mutex_lock(&r->lock);
    for (outboxd_reader_member_t **p = &r->members; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    update_formats(r);
    pthread_mutex_unlock(&r->lock);
    free(m->name);
    free(m);
}

/* Which of the ids are still in the log, and which of those comes first
 * in natural order: present[i], *first (an index into ids, or -1). Two
 * queries: the ids looked up by _id (the index), then, when more than one
 * is present, the log's _ids walked in natural order (a projection, as a
 * tail resuming after an event walks it) up to the first of them. A find
 * of the ids sorted by $natural took 2.6 s on FerretDB for a log of 20,000
 * events: the server sorts what it filtered without an index. */
static bool look_up_positions(outboxd_reader_t *r, const bson_oid_t *ids, size_t n, bool *present, long *first,
                              char *errbuf, size_t errbuf_size) {
    bson_t filter = BSON_INITIALIZER, in, inner, opts = BSON_INITIALIZER, sub, empty = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &inner);
    BSON_APPEND_ARRAY_BEGIN(&inner, "$in", &in);
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_OID(&in, key, &ids[i]);
    }
    bson_append_array_end(&inner, &in);
    bson_append_document_end(&filter, &inner);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "_id", 1);
    bson_append_document_end(&opts, &sub);
    *first = -1;
    memset(present, 0, n * sizeof *present);
    mongoc_client_t *client = mongoc_client_pool_pop(r->pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, r->db, r->coll);
    const bson_t *doc;
    bson_error_t berr;
    size_t n_present = 0;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, &opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (!present[i] && bson_oid_equal(bson_iter_oid(&it), &ids[i])) {
                present[i] = true;
                n_present++;
                if (*first < 0)
                    *first = (long)i;
            }
        }
    }
    bool ok = !mongoc_cursor_error(cur, &berr);
    mongoc_cursor_destroy(cur);
    bool distinct = false; /* more than one distinct id present */
    for (size_t i = 0; ok && i < n; i++)
        if (present[i] && !bson_oid_equal(&ids[i], &ids[*first]))
            distinct = true;
    if (ok && distinct) {
        /* The first present one in natural order. */
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
        BSON_APPEND_INT32(&sub, "$natural", 1);
        bson_append_document_end(&opts, &sub);
        BSON_APPEND_INT32(&opts, "batchSize", 100000);
        cur = mongoc_collection_find_with_opts(c, &empty, &opts, NULL);
        bool met = false;
        while (!met && mongoc_cursor_next(cur, &doc)) {
            bson_iter_t it;
            if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
                continue;
            for (size_t i = 0; i < n && !met; i++) {
                if (present[i] && bson_oid_equal(bson_iter_oid(&it), &ids[i])) {
                    *first = (long)i;
                    met = true;
                }
            }
        }
        ok = met || !mongoc_cursor_error(cur, &berr);
        if (ok && !met) /* trimmed meanwhile: none of them is there any more */
            *first = -1;
        mongoc_cursor_destroy(cur);
    }
    (void)n_present;
    if (!ok)
        snprintf(errbuf, errbuf_size, "cannot look up the sinks' checkpoints in %s.%s: %s", r->db, r->coll,
                 berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(r->pool, client);
    bson_destroy(&filter);
    bson_destroy(&opts);
    bson_destroy(&empty);
    return ok;
}

/* Waits for the sinks (every one expected, and at least one joined: the
 * reader idles without members), decides where the ring begins and where
 * each sink that joined so far goes on. False when outboxd stops
 * meanwhile. */
static bool decide_origin(outboxd_reader_t *r) {
    outboxd_heartbeat_idle(r->beat); /* waiting for sinks is by design */
    pthread_mutex_lock(&r->lock);
    while ((r->pending > 0 || !r->members) && !atomic_load(&r->stop))
        outboxd_cond_wait_ms(&r->changed, &r->lock, 200);
    /* The positions of the sinks that joined: what the ring starts from. */
    size_t n = 0, cap = 0;
    bool any_from_start = false;
    for (outboxd_reader_member_t *m = r->members; m; m = m->next, cap++)
        any_from_start |= m->from_start;
    bson_oid_t *ids = calloc(cap ? cap : 1, sizeof *ids);
    bool *present = calloc(cap ? cap : 1, sizeof *present);
    if (!ids || !present)
        abort();
    for (outboxd_reader_member_t *m = r->members; m; m = m->next)
        if (!m->from_start)
            bson_oid_copy(&m->after, &ids[n++]);
    pthread_mutex_unlock(&r->lock);

    long first = -1;
    if (n > 0 && r->source) {
        LOG_ERR("shared reader: a sink has a checkpoint, and the events come from a source that is not the log: "
                "it reads nothing");
        n = 0;
    }
    if (n > 0) {
        char err[600];
        int64_t backoff = RETRY_MIN_MS;
        outboxd_heartbeat_busy(r->beat);
        while (!look_up_positions(r, ids, n, present, &first, err, sizeof err)) {
            if (atomic_load(&r->stop))
                break;
            if (outboxd_mono_ms() - r->last_warn_ms > 10000) {
                LOG_WARN("shared reader: %s (retrying)", err);
                r->last_warn_ms = outboxd_mono_ms();
            }
            nap(r, backoff);
            backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            outboxd_heartbeat_busy(r->beat);
        }
    }
    if (atomic_load(&r->stop)) {
        free(ids);
        free(present);
        return false;
    }

    pthread_mutex_lock(&r->lock);
    uint64_t oldest, next;
    outboxd_ring_bounds(r->ring, &oldest, &next);
    r->origin_seq = next;
    r->origin_from_start = any_from_start || first < 0;
    if (!r->origin_from_start)
        bson_oid_copy(&ids[first], &r->origin_after);
    for (outboxd_reader_member_t *m = r->members; m; m = m->next) {
        m->decided = true;
        if (m->from_start) {
            /* (A sink that joined while the ids were looked up may start
             * at the log's start when the ring does not.) */
            m->place = r->origin_from_start ? (outboxd_place_t){OUTBOXD_PLACE_RING, r->origin_seq}
                                            : (outboxd_place_t){OUTBOXD_PLACE_PRIVATE, 0};
            continue;
        }
        m->place = (outboxd_place_t){OUTBOXD_PLACE_PRIVATE, 0};
        for (size_t i = 0; i < n; i++) {
            if (!bson_oid_equal(&ids[i], &m->after))
                continue;
            if (!r->origin_from_start && bson_oid_equal(&m->after, &r->origin_after))
                m->place = (outboxd_place_t){OUTBOXD_PLACE_RING, r->origin_seq};
            else if (present[i])
                m->place = (outboxd_place_t){OUTBOXD_PLACE_WAIT, r->origin_seq};
            break;
        }
    }
    /* On the ring before the first read, so that the reader paces itself
     * by them from the start. */
    for (outboxd_reader_member_t *m = r->members; m; m = m->next)
        outboxd_reader_member_at(m, m->place.kind != OUTBOXD_PLACE_PRIVATE, m->place.seq);
    r->started = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);

    if (r->origin_from_start) {
        LOG_INFO("shared reader: reading %s.%s from its oldest event%s", r->db, r->coll,
                 any_from_start ? " (a sink has no checkpoint yet)" : "");
    } else {
        char hex[25];
        bson_oid_to_string(&r->origin_after, hex);
        LOG_INFO("shared reader: reading %s.%s after event %s (the oldest checkpoint)", r->db, r->coll, hex);
    }
    free(ids);
    free(present);
    return true;
}

static outbox_tail_t *open_tail(outboxd_reader_t *r, bool from_start) {
    if (r->source)
        return NULL; /* the events come from the source */
    outbox_error_t err;
    outbox_tail_t *t = from_start ? outbox_tail_new(r->outbox, OUTBOX_TAIL_FROM_START, NULL, &err)
                                  : outbox_tail_new(r->outbox, OUTBOX_TAIL_AFTER, &r->origin_after, &err);
    if (!t)
        abort(); /* only for bad arguments, which these are not */
    atomic_fetch_add(&r->shared_tails, 1);
    return t;
}

/* Whether the last member has left: then (lock held) the reader goes
 * idle. The ring is replaced by an empty one, so that a sink that joins
 * later is placed by a fresh decision and no stale entry holds memory;
 * no feeder reads the old ring (every member's feeder stopped before it
 * left). */
static bool go_idle(outboxd_reader_t *r) {
    pthread_mutex_lock(&r->lock);
    bool idle = !r->members && !r->no_ring;
    outboxd_ring_t *old = NULL;
    if (idle) {
        r->started = false;
        old = atomic_exchange(&r->ring, outboxd_ring_new(r->ring_events, r->ring_bytes));
        atomic_store(&r->at_head, false);
    }
    pthread_mutex_unlock(&r->lock);
    if (old) {
        LOG_INFO("shared reader: no sink reads any more: idle, no tail open, until a sink joins");
        outboxd_ring_free(old);
    }
    return idle;
}

/* Reads the log into the ring while some sink is a member. False when
 * outboxd stops, true when the reader went idle. */
static bool read_while_members(outboxd_reader_t *r) {
    outbox_tail_t *tail = open_tail(r, r->origin_from_start);
    outbox_error_t err;
    const outbox_event_t *ev;
    bool idle = false;
    /* One reading of the clock per event: the end of a read is the start
     * of the next step (clock_gettime was 4 % of the reader, read three
     * times per event). */
    int64_t now = outboxd_mono_ms();
    while (!atomic_load(&r->stop)) {
        /* Each step (a read of at most READ_WAIT_MS, or a pause for a slow
         * sink) is progress; a read that never returns is not. */
        outboxd_heartbeat_busy_at(r->beat, now);
        if (go_idle(r)) {
            idle = true;
            break;
        }
        if (pace(r)) {
            struct timespec ts = {0, PACE_WAIT_MS * 1000 * 1000};
            nanosleep(&ts, NULL);
            now = outboxd_mono_ms();
            continue;
        }
        int64_t started = now;
        outbox_code_t rc = r->source ? r->source->next(r->source->ctx, READ_WAIT_MS, &ev, &err)
                                     : outbox_tail_next(tail, READ_WAIT_MS, &ev, &err);
        now = outboxd_mono_ms();
        int64_t took = now - started;
        if (took > READ_WAIT_MS + SLOW_READ_MS)
            LOG_WARN("shared reader: one read of the log took %lld ms (waiting at most %d ms for new events): "
                     "a large event, or a slow or unreachable server, holds back every sink on the ring",
                     (long long)took, READ_WAIT_MS);
        atomic_store(&r->at_head, rc == OUTBOX_ERR_TIMED_OUT);
        if (rc == OUTBOX_OK) {
            /* Decoded and encoded here, outside every lock. */
            outboxd_ring_push(r->ring, outboxd_shared_event_new(ev, atomic_load(&r->formats)));
            r->events_read++;
        } else if (rc == OUTBOX_ERR_MALFORMED) {
            const bson_t *doc = tail ? outbox_tail_malformed_document(tail) : NULL;
            if (doc) {
                outboxd_ring_push(r->ring, outboxd_shared_event_malformed(doc, err.message));
                r->malformed_read++;
            }
        } else if (rc == OUTBOX_ERR_TIMED_OUT) {
            continue;
        } else if (rc == OUTBOX_ERR_GAP) {
            /* Not the sinks' gap yet: each that reaches the mark goes on
             * from its own position on a tail of its own, which tells. */
            LOG_WARN("shared reader: %s; it goes on from the oldest event, and each sink from its own position "
                     "(a sink that lost events applies its on_gap)", err.message);
            outboxd_ring_push(r->ring, outboxd_shared_event_gap(err.message));
            r->gaps++;
            outbox_tail_destroy(tail);
            tail = open_tail(r, true);
        } else if (outboxd_mono_ms() - r->last_warn_ms > 10000) {
            LOG_WARN("shared reader: reading the log: %s (retrying)", err.message);
            r->last_warn_ms = outboxd_mono_ms();
        }
    }
    outbox_tail_destroy(tail);
    return idle;
}

static void *read_loop(void *arg) {
    outboxd_reader_t *r = arg;
    while (decide_origin(r) && read_while_members(r))
        ;
    outboxd_heartbeat_end(r->beat);
    return NULL;
}

void outboxd_reader_set_source(outboxd_reader_t *r, const outboxd_reader_source_t *source) {
    r->source = source;
}

void outboxd_reader_watch(outboxd_reader_t *r, outboxd_heartbeat_t *beat) {
    r->beat = beat;
}

bool outboxd_reader_start(outboxd_reader_t *r) {
    if (pthread_create(&r->thread, NULL, read_loop, r) == 0) {
        r->running = true;
        return true;
    }
    /* No shared reader: every sink reads on a tail of its own, as before
     * there was one, rather than wait for a ring that never fills. */
    pthread_mutex_lock(&r->lock);
    r->started = r->no_ring = true;
    for (outboxd_reader_member_t *m = r->members; m; m = m->next) {
        m->decided = true;
        m->place = (outboxd_place_t){OUTBOXD_PLACE_PRIVATE, 0};
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return false;
}

void outboxd_reader_stop(outboxd_reader_t *r) {
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    outboxd_ring_wake(r->ring);
    if (r->running) {
        pthread_join(r->thread, NULL);
        r->running = false;
        size_t events, bytes;
        uint64_t evicted;
        outboxd_ring_figures(r->ring, &events, &bytes, &evicted);
        LOG_INFO("shared reader: stopped; %lld shared tails opened, %lld events and %lld malformed documents "
                 "read, %lld gaps; the ring dropped %llu entries and holds %zu (%zu bytes)",
                 (long long)atomic_load(&r->shared_tails), (long long)r->events_read, (long long)r->malformed_read,
                 (long long)r->gaps, (unsigned long long)evicted, events, bytes);
    }
}

void outboxd_reader_free(outboxd_reader_t *r) {
    if (!r)
        return;
    outboxd_reader_stop(r);
    while (r->members) {
        outboxd_reader_member_t *m = r->members;
        r->members = m->next;
        free(m->name);
        free(m);
    }
    outboxd_ring_free(r->ring);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(r->db);
    free(r->coll);
    free(r);
}

bool outboxd_reader_at_head(outboxd_reader_t *r, const bson_oid_t *ids, size_t n, int64_t *after,
                            int64_t *created_ms, int64_t *newest_created_ms) {
    for (size_t i = 0; i < n; i++)
        after[i] = created_ms[i] = -1;
    /* Under the lock: going idle swaps the ring (and frees the old one)
     * only under it. */
    pthread_mutex_lock(&r->lock);
    outboxd_ring_t *ring = atomic_load(&r->ring);
    uint64_t oldest, next;
    outboxd_shared_event_t *se = NULL;
    bool at_head = atomic_load(&r->at_head) && ring;
    if (at_head) {
        outboxd_ring_bounds(ring, &oldest, &next);
        at_head = next > oldest && outboxd_ring_get(ring, next - 1, 0, &se) == OUTBOXD_RING_OK;
    }
    if (at_head) {
        *newest_created_ms = se->ev ? outbox_event_created_ms(se->ev) : -1;
        outboxd_shared_event_unref(se);
        for (size_t i = 0; i < n; i++) {
            uint64_t seq;
            if (!outboxd_ring_find(ring, &ids[i], &seq) || seq >= next ||
                outboxd_ring_get(ring, seq, 0, &se) != OUTBOXD_RING_OK)
                continue;
            after[i] = (int64_t)(next - 1 - seq);
            created_ms[i] = se->ev ? outbox_event_created_ms(se->ev) : -1;
            outboxd_shared_event_unref(se);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return at_head;
}

outboxd_ring_t *outboxd_reader_ring(outboxd_reader_t *r) {
    return atomic_load(&r->ring);
}

int64_t outboxd_reader_shared_tails(outboxd_reader_t *r) {
    return atomic_load(&r->shared_tails);
}
