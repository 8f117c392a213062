/*
 * ring.c - see ring.h.
 *
 * The entries are a circular array of max_events pointers addressed by
 * position % max_events. The id index is an open-addressing hash table
 * (linear probing, deletion by backward shift) of positions, at least
 * twice as large as the ring: each slot holds position + 1 (0 is empty) and
 * the key is read from the entry itself, so the table costs 8 bytes a slot.
 * (No hash table library is among outboxd's dependencies; this one is the
 * fifty lines below and is tested by test_ring.)
 */
#include "ring.h"

#include "condwait.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct outboxd_ring {
    pthread_mutex_t lock;
    pthread_cond_t grew;
    size_t max_events, max_bytes;
    outboxd_shared_event_t **entries; /* [max_events] */
    uint64_t oldest, next;            /* the positions held: [oldest, next) */
    size_t bytes;
    uint64_t evicted;
    uint64_t *index;                  /* [index_size]: position + 1, or 0 */
    size_t index_size;                /* a power of two >= 2 * max_events */
};

static size_t hash_id(const bson_oid_t *id) {
    /* FNV-1a over the 12 bytes, then a final mix: the bytes that differ
     * between events (an ObjectId's counter) are its last ones. */
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 12; i++) {
        h ^= id->bytes[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (size_t)h;
}

static outboxd_shared_event_t *at(const outboxd_ring_t *r, uint64_t seq) {
    return r->entries[seq % r->max_events];
}

static void index_add(outboxd_ring_t *r, uint64_t seq, const bson_oid_t *id) {
    size_t mask = r->index_size - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        if (r->index[i] == 0) {
            r->index[i] = seq + 1;
            return;
        }
    }
}

static void index_remove(outboxd_ring_t *r, uint64_t seq, const bson_oid_t *id) {
    size_t mask = r->index_size - 1;
    size_t i = hash_id(id) & mask;
    while (r->index[i] != seq + 1) {
        if (r->index[i] == 0)
            return; /* not indexed (cannot happen: every id is) */
        i = (i + 1) & mask;
    }
    /* Backward shift: move up every later entry of the run that may no
     * longer be found past the hole. */
    for (size_t j = (i + 1) & mask; r->index[j] != 0; j = (j + 1) & mask) {
        size_t home = hash_id(&at(r, r->index[j] - 1)->id) & mask;
        /* Entry j may fill hole i when its home is not within (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            r->index[i] = r->index[j];
            i = j;
        }
    }
    r->index[i] = 0;
}

outboxd_ring_t *outboxd_ring_new(size_t max_events, size_t max_bytes) {
    outboxd_ring_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->max_events = max_events ? max_events : 1;
    r->max_bytes = max_bytes;
    r->entries = calloc(r->max_events, sizeof *r->entries);
    r->index_size = 16;
    while (r->index_size < 2 * r->max_events)
        r->index_size *= 2;
    r->index = calloc(r->index_size, sizeof *r->index);
    if (!r->entries || !r->index)
        abort();
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->grew, NULL);
    return r;
}

void outboxd_ring_free(outboxd_ring_t *r) {
    if (!r)
        return;
    for (uint64_t seq = r->oldest; seq < r->next; seq++)
        outboxd_shared_event_unref(at(r, seq));
    free(r->entries);
    free(r->index);
    pthread_cond_destroy(&r->grew);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Drops the oldest entry (lock held); returns it for the caller to unref
 * once the lock is released. */
static outboxd_shared_event_t *evict_one(outboxd_ring_t *r) {
    outboxd_shared_event_t *old = at(r, r->oldest);
    if (old->has_id)
        index_remove(r, r->oldest, &old->id);
    r->entries[r->oldest % r->max_events] = NULL;
    r->bytes -= old->bytes;
    r->oldest++;
    r->evicted++;
    return old;
}

uint64_t outboxd_ring_push(outboxd_ring_t *r, outboxd_shared_event_t *se) {
    outboxd_shared_event_t *dropped[8];
    size_t n_dropped = 0;
    uint64_t seq;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        /* Room for one more entry, and for its bytes unless the ring would
         * be empty (an event larger than the limit is kept alone). */
        bool full = r->next - r->oldest >= r->max_events ||
                    (r->next > r->oldest && r->bytes + se->bytes > r->max_bytes);
        if (!full)
            break;
        if (n_dropped == sizeof dropped / sizeof dropped[0]) {
            /* Free outside the lock in bounded chunks. */
            pthread_mutex_unlock(&r->lock);
            for (size_t i = 0; i < n_dropped; i++)
                outboxd_shared_event_unref(dropped[i]);
            n_dropped = 0;
            pthread_mutex_lock(&r->lock);
            continue;
        }
        dropped[n_dropped++] = evict_one(r);
    }
    seq = r->next++;
    r->entries[seq % r->max_events] = se;
    r->bytes += se->bytes;
    if (se->has_id)
        index_add(r, seq, &se->id);
    pthread_cond_broadcast(&r->grew);
    pthread_mutex_unlock(&r->lock);
    /* The last reference of a dropped event may be the ring's: freeing it
     * (a copy of the document, its JSON) is no work for the lock. */
    for (size_t i = 0; i < n_dropped; i++)
        outboxd_shared_event_unref(dropped[i]);
    return seq;
}

outboxd_ring_rc_t outboxd_ring_get(outboxd_ring_t *r, uint64_t seq, int64_t wait_ms, outboxd_shared_event_t **se) {
    *se = NULL;
    pthread_mutex_lock(&r->lock);
    if (seq >= r->next && wait_ms > 0)
        outboxd_cond_wait_ms(&r->grew, &r->lock, wait_ms);
    outboxd_ring_rc_t rc;
    if (seq < r->oldest) {
        rc = OUTBOXD_RING_EVICTED;
    } else if (seq >= r->next) {
        rc = OUTBOXD_RING_NOT_YET;
    } else {
        *se = outboxd_shared_event_ref(at(r, seq));
        rc = OUTBOXD_RING_OK;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

outboxd_ring_rc_t outboxd_ring_take(outboxd_ring_t *r, uint64_t seq, size_t max, int64_t wait_ms,
                                    outboxd_shared_event_t **se, size_t *n) {
    *n = 0;
    pthread_mutex_lock(&r->lock);
    if (seq >= r->next && wait_ms > 0)
        outboxd_cond_wait_ms(&r->grew, &r->lock, wait_ms);
    outboxd_ring_rc_t rc = OUTBOXD_RING_OK;
    if (seq < r->oldest) {
        rc = OUTBOXD_RING_EVICTED;
    } else if (seq >= r->next) {
        rc = OUTBOXD_RING_NOT_YET;
    } else {
        while (*n < max && seq + *n < r->next) {
            se[*n] = outboxd_shared_event_ref(at(r, seq + *n));
            (*n)++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

bool outboxd_ring_find(outboxd_ring_t *r, const bson_oid_t *id, uint64_t *seq) {
    bool found = false;
    pthread_mutex_lock(&r->lock);
    size_t mask = r->index_size - 1;
    for (size_t i = hash_id(id) & mask; r->index[i] != 0; i = (i + 1) & mask) {
        uint64_t s = r->index[i] - 1;
        if (bson_oid_equal(&at(r, s)->id, id) && (!found || s > *seq)) {
            *seq = s; /* the newest, should an id be in the log twice */
            found = true;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

void outboxd_ring_bounds(outboxd_ring_t *r, uint64_t *oldest, uint64_t *next) {
    pthread_mutex_lock(&r->lock);
    *oldest = r->oldest;
    *next = r->next;
    pthread_mutex_unlock(&r->lock);
}

bool outboxd_ring_at_limit(outboxd_ring_t *r, uint64_t *oldest, uint64_t *next) {
    pthread_mutex_lock(&r->lock);
    *oldest = r->oldest;
    *next = r->next;
    bool full = r->next - r->oldest >= r->max_events || r->bytes >= r->max_bytes - r->max_bytes / 16;
    pthread_mutex_unlock(&r->lock);
    return full;
}

void outboxd_ring_figures(outboxd_ring_t *r, size_t *events, size_t *bytes, uint64_t *evicted) {
    pthread_mutex_lock(&r->lock);
    *events = (size_t)(r->next - r->oldest);
    *bytes = r->bytes;
    *evicted = r->evicted;
    pthread_mutex_unlock(&r->lock);
}

void outboxd_ring_wake(outboxd_ring_t *r) {
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->grew);
    pthread_mutex_unlock(&r->lock);
}
