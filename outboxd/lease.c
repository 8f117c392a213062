/*
 * lease.c - see lease.h; the protocol is docs/leases.md, sections 1.3 to
 * 1.8, and this file follows it step by step.
 *
 * Who holds a term is decided by one insert of the claim {_id: {lease,
 * term}}: the one write both FerretDB 1.x and MongoDB make atomic. Only the
 * claim's owner ever updates it afterwards (renewals, its release), so no
 * two writers race on a document. Expiry is judged on this process's own
 * clock: a claim is expired when the read just made shows the same version
 * (term, renewals, released) that a read at least a TTL earlier first
 * showed. The holder's deadline is its own renewal's send time plus
 * TTL - renew_ms, so it stops at least renew_ms before anyone may take over.
 *
 * Threads: the manager thread makes every round; runners read the atomics
 * of their lease (valid, wait); writers call lost; the runner's release
 * and forget/stop make their one update on the caller's thread. The
 * manager's mutex guards the lease list and every lease's mutable state;
 * no round trip runs under it.
 */
#include "lease.h"

#include "condwait.h"
#include "lease_doc.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define WAIT_POLL_MS 100     /* outboxd_lease_wait checks *stop this often */
#define PRESENCE_GONE_TTLS 3 /* a presence unchanged this many TTLs is deleted */
#define WHY_SIZE 256

struct outboxd_lease {
    outboxd_leases_t *m;
    char name[200];
    bool is_sink; /* "sink:..." counts for the fair share; the promoter does not */
    /* Held around every update of this lease's claim: the renewal (manager
     * thread) and the release (runner's thread) must not overlap, because
     * FerretDB 1.x applies an update by reading the document and writing
     * it back whole: a renewal that read the claim before a concurrent
     * release wrote released: true writes released: false back (measured:
     * the release was lost and the lease only expired a TTL later). Taken
     * before m->mu, never the other way round. */
    pthread_mutex_t write_mu;

    /* Read by any thread without the lock. Writers hold m->mu and keep the
     * order that makes outboxd_lease_valid exact: a new term is stored
     * before its deadline; a loss or a release stores deadline 0 first. */
    _Atomic int64_t term;     /* the held term, OUTBOXD_LEASE_NONE when none */
    _Atomic int64_t deadline; /* valid while now < deadline */
    _Atomic int64_t handover; /* the term whose hand-over is wanted, or NONE */
    _Atomic int64_t acquired; /* send time of the winning claim insert */

    /* Under m->mu. */
    bool lost;            /* the held term is lost (deadline 0); no more renewals */
    char why[WHY_SIZE];   /* why it was lost, for the log */
    bool forgotten;       /* no bidding (a sink removed by SIGHUP) */
    int64_t floor;        /* the highest checkpoint term a claim met */
    int64_t abstain_until; /* after our own release: no bid before this */

    /* The manager thread's only: the observation of section 1.5. */
    bool seen;                 /* a claim was seen in a previous read */
    int64_t claimable_since;   /* t_recv of the first of the reads in a row that let us bid; 0 */
    bool by_fallback;          /* held because it had no holder too long: kept, never handed over */
    int64_t v_term, v_renewals; /* the version of the newest claim */
    bool v_released;
    int64_t v_ttl;             /* that claim's ttl_ms */
    int64_t first_seen;        /* t_recv of the first read that showed it */

    outboxd_lease_t *next;
};

/* Another outboxd run's presence, as this one has watched it. */
typedef struct {
    char instance[80], run[120];
    int64_t renewals, ttl, first_seen, sinks_held;
    char *sinks;  /* the sink leases its config has (outboxd_lease_list_has); NULL: any */
    bool present; /* in the read just made */
    bool live;    /* renewed within a TTL */
} presence_t;

struct outboxd_leases {
    mongoc_client_pool_t *pool;
    outboxd_heartbeat_t *beat; /* the watchdog's (heartbeat.h); NULL: none */
    char *db, *coll; /* N.leases */
    bool enabled;
    int64_t ttl, renew;
    char instance[80], host[256], run[120];
    int pid;
    /* Every lease write is w: majority (a claim acknowledged by a primary
     * that then rolls it back would let a second instance claim the same
     * term), bounded by a TTL. Claims are also j: true: a claim lost in a
     * crash of a standalone server could be made twice. Renewals,
     * releases and presence are not: one lost only makes observers wait
     * longer (they see the version change back and start their clock
     * again), and j: true costs about 25 ms per write on FerretDB's
     * SQLite against 5 (measured on the harness), which a round of every
     * renew_ms should not pay. */
    mongoc_write_concern_t *wc, *wc_claim;

    pthread_mutex_t mu;
    pthread_cond_t tick; /* wakes the manager thread */
    pthread_cond_t held; /* wakes outboxd_lease_wait */
    pthread_t thread;
    bool started, stopping, stopped, paused, round_soon;
    int64_t next_round;
    outboxd_lease_t *leases;

    /* The manager thread's only. */
    presence_t *presences;
    size_t n_presences;
    int over_rounds;    /* rounds in a row above the fair share */
    int64_t no_claims_until; /* after a hand-over: no sink claims (m->mu) */
    bool read_failing;  /* the last read of N.leases failed (logged once) */
    uint64_t rng;
};

int64_t outboxd_lease_now_ms(void) {
    struct timespec ts;
#ifdef CLOCK_BOOTTIME
    clock_gettime(CLOCK_BOOTTIME, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_next(outboxd_leases_t *m) {
    /* xorshift64: jitter and the bidding order need no more. */
    uint64_t x = m->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return m->rng = x;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

/* ---- the manager ---- */

outboxd_leases_t *outboxd_leases_new(mongoc_client_pool_t *pool, const char *db, const char *outbox,
                                     const outboxd_conf_t *conf) {
    outboxd_leases_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->pool = pool;
    m->db = strdup(db);
    if (asprintf(&m->coll, "%s%s", outbox, OUTBOXD_LEASES_SUFFIX) < 0)
        m->coll = NULL;
    if (!m->db || !m->coll) {
        free(m->db);
        free(m->coll);
        free(m);
        return NULL;
    }
    m->enabled = conf->ha_enabled;
    /* The loader guarantees 100 <= renew < ttl / 2; a conf filled by hand
     * without them gets the defaults rather than deadlines of 0. */
    bool settings_ok = conf->ha_lease_ttl_ms >= OUTBOXD_HA_TTL_MIN_MS && conf->ha_renew_ms >= 1 &&
                       conf->ha_renew_ms < conf->ha_lease_ttl_ms / 2;
    m->ttl = settings_ok ? conf->ha_lease_ttl_ms : OUTBOXD_HA_TTL_DEFAULT_MS;
    m->renew = settings_ok ? conf->ha_renew_ms : OUTBOXD_HA_RENEW_DEFAULT_MS;
    if (gethostname(m->host, sizeof m->host) != 0 || !m->host[0])
        snprintf(m->host, sizeof m->host, "localhost");
    m->host[sizeof m->host - 1] = '\0';
    snprintf(m->instance, sizeof m->instance, "%.64s", conf->ha_instance_id ? conf->ha_instance_id : m->host);
    m->pid = (int)getpid();
    uint32_t rnd = 0;
    uint64_t seed = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)(wall_ms() ^ ((uint64_t)m->pid << 16));
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)wall_ms() * 2654435761u;
    m->rng = seed | 1;
    snprintf(m->run, sizeof m->run, "%s:%d:%08x", m->instance, m->pid, rnd);
    m->wc = mongoc_write_concern_new();
    mongoc_write_concern_set_w(m->wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
    mongoc_write_concern_set_wtimeout_int64(m->wc, m->ttl);
    m->wc_claim = mongoc_write_concern_copy(m->wc);
    mongoc_write_concern_set_journal(m->wc_claim, true);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->tick, NULL);
    pthread_cond_init(&m->held, NULL);
    return m;
}

const char *outboxd_leases_run_id(const outboxd_leases_t *m) {
    return m->run;
}

outboxd_lease_t *outboxd_leases_get(outboxd_leases_t *m, const char *name) {
    pthread_mutex_lock(&m->mu);
    outboxd_lease_t *l = m->leases;
    while (l && strcmp(l->name, name) != 0)
        l = l->next;
    if (l) {
        l->forgotten = false;
    } else if ((l = calloc(1, sizeof *l)) != NULL) {
        l->m = m;
        pthread_mutex_init(&l->write_mu, NULL);
        snprintf(l->name, sizeof l->name, "%s", name);
        l->is_sink = strncmp(name, "sink:", 5) == 0;
        atomic_store(&l->term, m->enabled ? OUTBOXD_LEASE_NONE : OUTBOXD_LEASE_TERM_HA_OFF);
        atomic_store(&l->deadline, m->enabled ? 0 : INT64_MAX);
        atomic_store(&l->handover, OUTBOXD_LEASE_NONE);
        atomic_store(&l->acquired, 0);
        l->next = m->leases;
        m->leases = l;
    }
    /* A lease got after start is bid for in a round made now, not a
     * renew_ms later: a sink added by SIGHUP starts as fast as at start. */
    m->round_soon = true;
    pthread_cond_signal(&m->tick);
    pthread_mutex_unlock(&m->mu);
    return l;
}

void outboxd_leases_pause_for_test(outboxd_leases_t *m, bool paused) {
    pthread_mutex_lock(&m->mu);
    m->paused = paused;
    pthread_mutex_unlock(&m->mu);
}

/* Stores a loss (m->mu held): valid is false from now on. */
static void mark_lost(outboxd_lease_t *l, int64_t term, const char *why) {
    atomic_store(&l->deadline, 0);
    atomic_store(&l->handover, OUTBOXD_LEASE_NONE);
    l->lost = true;
    snprintf(l->why, sizeof l->why, "%s", why);
    LOG_WARN("lease %s: lost term %lld (%s) mono_ms=%lld", l->name, (long long)term, why,
             (long long)outboxd_lease_now_ms());
}

/* Held by this process, as the manager counts (m->mu held). */
static bool held_locked(const outboxd_lease_t *l) {
    return atomic_load(&l->term) >= 1 && !l->lost;
}

/* The update that marks claim term released, run on the caller's thread. */
static void write_release(outboxd_leases_t *m, outboxd_lease_t *l, int64_t term) {
    const char *name = l->name;
    bson_t filter, opts = BSON_INITIALIZER, reply;
    bson_error_t berr;
    outboxd_lease_claim_id(&filter, name, term);
    BSON_APPEND_UTF8(&filter, "run", m->run);
    bson_t *update = BCON_NEW("$set", "{", "released", BCON_BOOL(true), "}");
    mongoc_write_concern_append(m->wc, &opts);
    mongoc_client_t *client = mongoc_client_pool_pop(m->pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, m->db, m->coll);
    pthread_mutex_lock(&l->write_mu);
    int64_t t_send = outboxd_lease_now_ms();
    bool ok = mongoc_collection_update_one(c, &filter, update, &opts, &reply, &berr);
    pthread_mutex_unlock(&l->write_mu);
    bson_iter_t it;
    int64_t matched = ok && bson_iter_init_find(&it, &reply, "matchedCount") ? bson_iter_as_int64(&it) : 0;
    /* mono_ms is the send time: anything another instance does because of
     * the release comes after it, whenever this line is printed. */
    if (!ok)
        LOG_WARN("lease %s: release of term %lld failed (%s); the lease expires after ha.lease_ttl_ms instead "
                 "mono_ms=%lld",
                 name, (long long)term, berr.message, (long long)t_send);
    else if (matched == 0)
        LOG_INFO("lease %s: released term %lld (its claim was no longer ours) mono_ms=%lld", name, (long long)term,
                 (long long)t_send);
    else
        LOG_INFO("lease %s: released term %lld mono_ms=%lld", name, (long long)term, (long long)t_send);
    bson_destroy(&reply);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(m->pool, client);
    bson_destroy(&filter);
    bson_destroy(update);
    bson_destroy(&opts);
}

/* Gives up term if it is still held (not lost); true when it was. The
 * caller writes the release. m->mu held. */
static bool give_up_locked(outboxd_lease_t *l, int64_t term) {
    if (term < 1 || atomic_load(&l->term) != term || l->lost)
        return false;
    /* A hand-over (rebalance, operator's request): claim no other sink
     * for 2 * renew_ms either, so that the instance it is meant for gets
     * it rather than this one another. */
    if (atomic_load(&l->handover) == term && l->is_sink)
        l->m->no_claims_until = outboxd_lease_now_ms() + 2 * l->m->renew;
    atomic_store(&l->deadline, 0);
    atomic_store(&l->term, OUTBOXD_LEASE_NONE);
    atomic_store(&l->handover, OUTBOXD_LEASE_NONE);
    atomic_store(&l->acquired, 0);
    l->abstain_until = outboxd_lease_now_ms() + 2 * l->m->renew;
    return true;
}

void outboxd_leases_forget(outboxd_leases_t *m, outboxd_lease_t *l) {
    if (!l)
        return;
    pthread_mutex_lock(&m->mu);
    l->forgotten = true;
    int64_t term = atomic_load(&l->term);
    bool release = m->enabled && give_up_locked(l, term);
    pthread_mutex_unlock(&m->mu);
    if (release)
        write_release(m, l, term);
}

/* ---- one round (section 1.3) ---- */

typedef struct {
    outboxd_lease_doc_t *docs;
    char **lists; /* a presence's sinks (outboxd_lease_presence_sinks), else NULL */
    size_t n, cap;
} docs_t;

static void docs_free(docs_t *d) {
    for (size_t i = 0; d->lists && i < d->n; i++)
        free(d->lists[i]);
    free(d->lists);
    free(d->docs);
}

/* The newest claim of a lease in the read, or NULL. */
static const outboxd_lease_doc_t *newest_claim(const docs_t *d, const char *name) {
    const outboxd_lease_doc_t *best = NULL;
    for (size_t i = 0; i < d->n; i++) {
        const outboxd_lease_doc_t *x = &d->docs[i];
        if (!x->is_request && !x->is_presence && strcmp(x->lease, name) == 0 && (!best || x->term > best->term))
            best = x;
    }
    return best;
}

static bool has_doc(const docs_t *d, const char *name, int64_t term, bool request) {
    for (size_t i = 0; i < d->n; i++) {
        const outboxd_lease_doc_t *x = &d->docs[i];
        if (!x->is_presence && x->is_request == request && x->term == term && strcmp(x->lease, name) == 0)
            return true;
    }
    return false;
}

/* find({}) on N.leases into d; false (and berr) on an error. */
static bool read_all(outboxd_leases_t *m, mongoc_collection_t *c, docs_t *d, bson_error_t *berr) {
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        outboxd_lease_doc_t x;
        if (!outboxd_lease_doc_parse(doc, &x))
            continue;
        if (d->n == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 32;
            outboxd_lease_doc_t *grown = realloc(d->docs, cap * sizeof *grown);
            if (grown)
                d->docs = grown;
            char **lists = grown ? realloc(d->lists, cap * sizeof *lists) : NULL;
            if (lists)
                d->lists = lists;
            if (!grown || !lists)
                break;
            d->cap = cap;
        }
        d->lists[d->n] = x.is_presence ? outboxd_lease_presence_sinks(doc) : NULL;
        d->docs[d->n++] = x;
    }
    bool ok = !mongoc_cursor_error(cur, berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    (void)m;
    return ok;
}

static int64_t matched_count(const bson_t *reply) {
    bson_iter_t it;
    return bson_iter_init_find(&it, reply, "matchedCount") ? bson_iter_as_int64(&it) : 0;
}

/* This run's presence: its renewal count and time, how many sink leases it
 * holds, and which sink leases its config has (so that the others know
 * which sinks it can take: section 1.7). */
static void write_presence(outboxd_leases_t *m, mongoc_collection_t *c, int64_t sinks_held, outboxd_lease_t **all,
                           size_t n) {
    bson_t filter, opts = BSON_INITIALIZER, set, list;
    bson_error_t berr;
    outboxd_lease_presence_id(&filter, m->instance, m->run);
    bson_t *update = BCON_NEW("$inc", "{", "renewals", BCON_INT64(1), "}", "$currentDate", "{", "renewed",
                              BCON_BOOL(true), "}");
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_INT64(&set, "ttl_ms", m->ttl);
    BSON_APPEND_INT64(&set, "sinks_held", sinks_held);
    BSON_APPEND_ARRAY_BEGIN(&set, "sinks", &list);
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (!all[i]->is_sink || all[i]->forgotten)
            continue;
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)k++, &kp, key, sizeof key);
        bson_append_utf8(&list, kp, -1, all[i]->name, -1);
    }
    pthread_mutex_unlock(&m->mu);
    bson_append_array_end(&set, &list);
    bson_append_document_end(update, &set);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    mongoc_write_concern_append(m->wc, &opts);
    if (!mongoc_collection_update_one(c, &filter, update, &opts, NULL, &berr))
        LOG_DEBUG("leases: presence of run %s not written: %s", m->run, berr.message);
    bson_destroy(&filter);
    bson_destroy(update);
    bson_destroy(&opts);
}

/* Before a renewal: a holder past its deadline gives the term up rather
 * than renewing it (check_held says so after the read, with the newer
 * claim when there is one). From its deadline on, an observer may take
 * over at any moment, and a renewal applied between that observer's read
 * and its insert would make this holder valid again beside the new one. */
static bool renewable(outboxd_lease_t *l) {
    return outboxd_lease_now_ms() < atomic_load(&l->deadline);
}

/* After the read (d NULL: it failed): lost when a newer claim is there,
 * ours is gone, or the deadline passed; an operator's release request
 * asks for the hand-over. */
static void check_held(outboxd_leases_t *m, outboxd_lease_t *l, int64_t term, const docs_t *d) {
    char why[WHY_SIZE];
    why[0] = '\0';
    const outboxd_lease_doc_t *newest = d ? newest_claim(d, l->name) : NULL;
    int64_t now = outboxd_lease_now_ms(), deadline = atomic_load(&l->deadline);
    if (newest && newest->term > term)
        snprintf(why, sizeof why, "claim %lld by %s is newer", (long long)newest->term, newest->owner);
    else if (d && !has_doc(d, l->name, term, false))
        snprintf(why, sizeof why, "our claim of term %lld is gone from %s", (long long)term, m->coll);
    else if (now >= deadline)
        snprintf(why, sizeof why, "our renewal deadline passed %lld ms ago: the database did not answer",
                 (long long)(now - deadline));
    pthread_mutex_lock(&m->mu);
    if (atomic_load(&l->term) == term && !l->lost) {
        if (why[0]) {
            mark_lost(l, term, why);
        } else if (d && has_doc(d, l->name, term, true) && atomic_load(&l->handover) != term) {
            atomic_store(&l->handover, term);
            LOG_INFO("lease %s: hand-over of term %lld wanted (an operator requested its release) mono_ms=%lld",
                     l->name, (long long)term, (long long)now);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* Held at term and not lost (m->mu taken here). */
static bool still_held(outboxd_leases_t *m, outboxd_lease_t *l, int64_t term) {
    pthread_mutex_lock(&m->mu);
    bool still = atomic_load(&l->term) == term && !l->lost;
    pthread_mutex_unlock(&m->mu);
    return still;
}

/* What a renewal sent at t_send came back with (m->mu held): a new
 * deadline (matched), lost (not matched) or a warning (error). */
static void renewal_result(outboxd_leases_t *m, outboxd_lease_t *l, int64_t term, int64_t t_send, bool ok,
                           bool matched, const char *error) {
    if (atomic_load(&l->term) != term || l->lost)
        return;
    if (!ok) {
        int64_t left = atomic_load(&l->deadline) - outboxd_lease_now_ms();
        LOG_WARN("lease %s: renewal of term %lld failed (%s); it stays valid for %lld ms unless a renewal "
                 "succeeds mono_ms=%lld",
                 l->name, (long long)term, error, (long long)(left > 0 ? left : 0), (long long)t_send);
    } else if (!matched) {
        char why[WHY_SIZE];
        snprintf(why, sizeof why, "our claim of term %lld no longer matched its renewal", (long long)term);
        mark_lost(l, term, why);
    } else {
        atomic_store(&l->deadline, t_send + m->ttl - m->renew);
    }
}

static bson_t *renewal_update(void) {
    return BCON_NEW("$inc", "{", "renewals", BCON_INT64(1), "}", "$currentDate", "{", "renewed", BCON_BOOL(true),
                    "}");
}

/* The renewal of one claim: {_id: claim, run: MYRUN, released: false}. */
static void renew_one(outboxd_leases_t *m, mongoc_collection_t *c, outboxd_lease_t *l, int64_t term) {
    bson_t filter, opts = BSON_INITIALIZER, reply;
    bson_error_t berr;
    outboxd_lease_claim_id(&filter, l->name, term);
    BSON_APPEND_UTF8(&filter, "run", m->run);
    BSON_APPEND_BOOL(&filter, "released", false);
    bson_t *update = renewal_update();
    mongoc_write_concern_append(m->wc, &opts);
    pthread_mutex_lock(&l->write_mu);
    /* Released meanwhile (the runner's thread): no renewal may follow. */
    bool still = still_held(m, l, term);
    int64_t t_send = outboxd_lease_now_ms();
    bool ok = still && mongoc_collection_update_one(c, &filter, update, &opts, &reply, &berr);
    pthread_mutex_unlock(&l->write_mu);
    if (!still)
        bson_init(&reply);
    int64_t matched = ok ? matched_count(&reply) : 0;
    pthread_mutex_lock(&m->mu);
    if (still)
        renewal_result(m, l, term, t_send, ok, matched > 0, berr.message);
    pthread_mutex_unlock(&m->mu);
    bson_destroy(&reply);
    bson_destroy(&filter);
    bson_destroy(update);
    bson_destroy(&opts);
}

/* Step 3: the held leases still within their deadlines renewed in
 * one round trip ({_id: {$in: [claims]}, run, released: false}), so that
 * a round costs the same whatever this instance holds and no deadline
 * waits for the renewals of the others. When fewer than all matched, each
 * is renewed alone to find the ones that are gone. */
static void renew_held(outboxd_leases_t *m, mongoc_collection_t *c, outboxd_lease_t **all, size_t n) {
    outboxd_lease_t **set = calloc(n ? n : 1, sizeof *set);
    int64_t *terms = calloc(n ? n : 1, sizeof *terms);
    bool *still = calloc(n ? n : 1, sizeof *still);
    size_t k = 0;
    for (size_t i = 0; set && terms && still && i < n; i++) {
        pthread_mutex_lock(&m->mu);
        int64_t term = atomic_load(&all[i]->term);
        bool held = held_locked(all[i]);
        pthread_mutex_unlock(&m->mu);
        if (held && renewable(all[i])) {
            set[k] = all[i];
            terms[k++] = term;
        }
    }
    if (k == 1)
        renew_one(m, c, set[0], terms[0]);
    if (k > 1) {
        bson_t filter = BSON_INITIALIZER, id, in, opts = BSON_INITIALIZER, reply;
        bson_error_t berr;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id);
        BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
        for (size_t j = 0; j < k; j++) {
            /* The claim's _id exactly as lease_doc.c builds it. */
            bson_t one, sub;
            bson_iter_t it;
            uint32_t len;
            const uint8_t *data;
            char key[16];
            outboxd_lease_claim_id(&one, set[j]->name, terms[j]);
            if (bson_iter_init_find(&it, &one, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
                bson_iter_document(&it, &len, &data);
                if (bson_init_static(&sub, data, len)) {
                    snprintf(key, sizeof key, "%zu", j);
                    bson_append_document(&in, key, -1, &sub);
                }
            }
            bson_destroy(&one);
        }
        bson_append_array_end(&id, &in);
        bson_append_document_end(&filter, &id);
        BSON_APPEND_UTF8(&filter, "run", m->run);
        BSON_APPEND_BOOL(&filter, "released", false);
        bson_t *update = renewal_update();
        mongoc_write_concern_append(m->wc, &opts);
        int64_t expected = 0;
        for (size_t j = 0; j < k; j++) {
            pthread_mutex_lock(&set[j]->write_mu); /* list order: see write_mu */
            still[j] = still_held(m, set[j], terms[j]);
            expected += still[j];
        }
        int64_t t_send = outboxd_lease_now_ms();
        bool ok = mongoc_collection_update_many(c, &filter, update, &opts, &reply, &berr);
        for (size_t j = k; j > 0; j--)
            pthread_mutex_unlock(&set[j - 1]->write_mu);
        int64_t matched = ok ? matched_count(&reply) : 0;
        if (ok && matched < expected) {
            LOG_DEBUG("leases: %lld of %lld claims renewed together; renewing each alone", (long long)matched,
                      (long long)expected);
            for (size_t j = 0; j < k; j++)
                if (still[j])
                    renew_one(m, c, set[j], terms[j]);
        } else {
            pthread_mutex_lock(&m->mu);
            for (size_t j = 0; j < k; j++)
                if (still[j])
                    renewal_result(m, set[j], terms[j], t_send, ok, true, berr.message);
            pthread_mutex_unlock(&m->mu);
        }
        bson_destroy(&reply);
        bson_destroy(&filter);
        bson_destroy(update);
        bson_destroy(&opts);
    }
    free(set);
    free(terms);
    free(still);
}

/* Step 5 after a claim of term: older claims and answered requests go. */
static void housekeep(outboxd_leases_t *m, mongoc_collection_t *c, const char *name, int64_t term) {
    bson_error_t berr;
    bson_t *claims = BCON_NEW("_id.lease", BCON_UTF8(name), "_id.term", "{", "$lt", BCON_INT64(term - 1), "}",
                              "_id.op", "{", "$exists", BCON_BOOL(false), "}");
    bson_t *requests = BCON_NEW("_id.lease", BCON_UTF8(name), "_id.term", "{", "$lt", BCON_INT64(term), "}",
                                "_id.op", BCON_UTF8("release"));
    if (!mongoc_collection_delete_many(c, claims, NULL, NULL, &berr) ||
        !mongoc_collection_delete_many(c, requests, NULL, NULL, &berr))
        LOG_DEBUG("lease %s: old claims not deleted: %s", name, berr.message);
    bson_destroy(claims);
    bson_destroy(requests);
}

/* Acquire (1.4): insert claim newest+1. true when this process won it. */
static bool try_acquire(outboxd_leases_t *m, mongoc_collection_t *c, outboxd_lease_t *l,
                        const outboxd_lease_doc_t *newest, const char *prev) {
    pthread_mutex_lock(&m->mu);
    int64_t floor = l->floor;
    pthread_mutex_unlock(&m->mu);
    int64_t term = max64(newest ? newest->term : 0, floor) + 1;
    bson_t doc, opts = BSON_INITIALIZER;
    bson_error_t berr;
    outboxd_lease_claim_id(&doc, l->name, term);
    BSON_APPEND_UTF8(&doc, "owner", m->instance);
    BSON_APPEND_UTF8(&doc, "run", m->run);
    BSON_APPEND_UTF8(&doc, "host", m->host);
    BSON_APPEND_INT32(&doc, "pid", m->pid);
    BSON_APPEND_INT64(&doc, "ttl_ms", m->ttl);
    BSON_APPEND_INT64(&doc, "renew_ms", m->renew);
    BSON_APPEND_INT64(&doc, "renewals", 0);
    /* An insert cannot take $currentDate: these two are this machine's
     * wall clock until the first renewal sets renewed on the server's.
     * Display only (outboxctl status). */
    BSON_APPEND_DATE_TIME(&doc, "acquired", wall_ms());
    BSON_APPEND_DATE_TIME(&doc, "renewed", wall_ms());
    BSON_APPEND_BOOL(&doc, "released", false);
    mongoc_write_concern_append(m->wc_claim, &opts);
    int64_t t_send = outboxd_lease_now_ms();
    bool ok = mongoc_collection_insert_one(c, &doc, &opts, NULL, &berr);
    bson_destroy(&doc);
    bson_destroy(&opts);
    if (!ok) {
        if (berr.code == 11000)
            LOG_DEBUG("lease %s: term %lld was claimed by another instance first", l->name, (long long)term);
        else
            LOG_WARN("lease %s: cannot claim term %lld: %s", l->name, (long long)term, berr.message);
        return false;
    }
    pthread_mutex_lock(&m->mu);
    l->lost = false;
    l->why[0] = '\0';
    atomic_store(&l->handover, OUTBOXD_LEASE_NONE);
    atomic_store(&l->acquired, t_send);
    atomic_store(&l->term, term); /* before the deadline: see struct outboxd_lease */
    atomic_store(&l->deadline, t_send + m->ttl - m->renew);
    pthread_cond_broadcast(&m->held);
    pthread_mutex_unlock(&m->mu);
    LOG_INFO("lease %s: acquired term %lld (%s) mono_ms=%lld", l->name, (long long)term, prev, (long long)t_send);
    housekeep(m, c, l->name, term);
    return true;
}

/* Section 1.7's live count (this run included), and presence
 * housekeeping: each other run's presence, its sink list and whether it is
 * live, from the read just made. */
static int64_t watch_presences(outboxd_leases_t *m, mongoc_collection_t *c, docs_t *d, int64_t t_recv) {
    for (size_t i = 0; i < m->n_presences; i++)
        m->presences[i].present = false;
    for (size_t i = 0; i < d->n; i++) {
        const outboxd_lease_doc_t *x = &d->docs[i];
        if (!x->is_presence || strcmp(x->run, m->run) == 0)
            continue;
        presence_t *p = NULL;
        for (size_t j = 0; j < m->n_presences && !p; j++)
            if (strcmp(m->presences[j].run, x->run) == 0 && strcmp(m->presences[j].instance, x->owner) == 0)
                p = &m->presences[j];
        if (!p) {
            presence_t *grown = realloc(m->presences, (m->n_presences + 1) * sizeof *grown);
            if (!grown)
                continue;
            m->presences = grown;
            p = &m->presences[m->n_presences++];
            memset(p, 0, sizeof *p);
            snprintf(p->instance, sizeof p->instance, "%s", x->owner);
            snprintf(p->run, sizeof p->run, "%s", x->run);
            p->renewals = x->renewals;
            p->first_seen = t_recv;
        } else if (p->renewals != x->renewals) {
            p->renewals = x->renewals;
            p->first_seen = t_recv;
        }
        p->ttl = x->ttl_ms;
        p->sinks_held = x->sinks_held;
        free(p->sinks);
        p->sinks = d->lists[i]; /* taken over */
        d->lists[i] = NULL;
        p->present = true;
    }
    int64_t live = 1;
    size_t kept = 0;
    for (size_t i = 0; i < m->n_presences; i++) {
        presence_t *p = &m->presences[i];
        int64_t ttl = max64(m->ttl, p->ttl);
        p->live = p->present && t_recv - p->first_seen < ttl;
        if (p->live)
            live++;
        if (p->present && t_recv - p->first_seen >= PRESENCE_GONE_TTLS * ttl) {
            /* A run that stopped without removing its presence (kill -9). */
            bson_t filter;
            bson_error_t berr;
            outboxd_lease_presence_id(&filter, p->instance, p->run);
            if (!mongoc_collection_delete_one(c, &filter, NULL, NULL, &berr))
                LOG_DEBUG("leases: stale presence of run %s not deleted: %s", p->run, berr.message);
            bson_destroy(&filter);
        }
        if (!p->present || t_recv - p->first_seen >= PRESENCE_GONE_TTLS * ttl) {
            free(p->sinks);
            continue;
        }
        m->presences[kept++] = *p;
    }
    m->n_presences = kept;
    return live;
}

/* The fewest sink leases held by another live run whose config has this
 * lease (one that could take it); INT64_MAX when there is none. */
static int64_t fewest_rival(const outboxd_leases_t *m, const char *lease, const presence_t **who) {
    int64_t fewest = INT64_MAX;
    for (size_t i = 0; i < m->n_presences; i++) {
        const presence_t *p = &m->presences[i];
        if (p->live && outboxd_lease_list_has(p->sinks, lease) && p->sinks_held < fewest) {
            fewest = p->sinks_held;
            if (who)
                *who = p;
        }
    }
    return fewest;
}

/* Section 1.5 for one lease, on the read just made: updates the version
 * and says whether the lease may be bid for; prev describes why. */
static bool observe(outboxd_leases_t *m, outboxd_lease_t *l, const outboxd_lease_doc_t *newest, int64_t t_recv,
                    char *prev, size_t prev_size) {
    if (!newest) {
        l->seen = false;
        snprintf(prev, prev_size, "no claim before");
        return true;
    }
    if (!l->seen || l->v_term != newest->term || l->v_renewals != newest->renewals ||
        l->v_released != newest->released) {
        l->seen = true;
        l->v_term = newest->term;
        l->v_renewals = newest->renewals;
        l->v_released = newest->released;
        l->first_seen = t_recv;
    }
    l->v_ttl = newest->ttl_ms;
    if (newest->released) {
        snprintf(prev, prev_size, "claim %lld by %s was released", (long long)newest->term, newest->owner);
        return true;
    }
    int64_t ttl = max64(m->ttl, newest->ttl_ms);
    if (t_recv - l->first_seen >= ttl) {
        snprintf(prev, prev_size, "claim %lld by %s unrenewed for %lld ms", (long long)newest->term, newest->owner,
                 (long long)(t_recv - l->first_seen));
        return true;
    }
    return false;
}

static void round_run(outboxd_leases_t *m) {
    pthread_mutex_lock(&m->mu);
    int64_t start = outboxd_lease_now_ms();
    int64_t jitter = m->renew / 10;
    int64_t tick = m->renew - jitter + (jitter > 0 ? (int64_t)(rng_next(m) % (uint64_t)(2 * jitter + 1)) : 0);
    m->next_round = start + tick;
    if (m->paused) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    size_t n = 0;
    for (outboxd_lease_t *l = m->leases; l; l = l->next)
        n++;
    outboxd_lease_t **all = calloc(n ? n : 1, sizeof *all);
    n = 0;
    for (outboxd_lease_t *l = all ? m->leases : NULL; l; l = l->next)
        all[n++] = l;
    pthread_mutex_unlock(&m->mu);
    if (!all)
        return;

    mongoc_client_t *client = mongoc_client_pool_pop(m->pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, m->db, m->coll);

    /* 3. Renew what is held first: the deadlines hang on the renewals'
     * send times, which then wait for no read on a slow server. A newer
     * claim cannot exist while our deadline runs (1.6), and the read
     * just after still shows one that does. */
    renew_held(m, c, all, n);

    /* 1. Read everything. */
    docs_t d = {0};
    bson_error_t berr;
    bool read_ok = read_all(m, c, &d, &berr);
    int64_t t_recv = outboxd_lease_now_ms();
    if (!read_ok && !m->read_failing)
        LOG_WARN("leases: cannot read %s.%s: %s; held leases run out at their deadlines, none is taken "
                 "meanwhile mono_ms=%lld",
                 m->db, m->coll, berr.message, (long long)t_recv);
    else if (read_ok && m->read_failing)
        LOG_INFO("leases: %s.%s readable again mono_ms=%lld", m->db, m->coll, (long long)t_recv);
    m->read_failing = !read_ok;

    /* 3, continued: what the read says about the leases held. */
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&m->mu);
        int64_t term = atomic_load(&all[i]->term);
        bool held = held_locked(all[i]);
        pthread_mutex_unlock(&m->mu);
        if (held)
            check_held(m, all[i], term, read_ok ? &d : NULL);
    }

    int64_t sinks = 0, held_sinks = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->is_sink && !all[i]->forgotten)
            sinks++;
        if (all[i]->is_sink && held_locked(all[i]))
            held_sinks++;
    }
    pthread_mutex_unlock(&m->mu);

    /* 2. This run's presence. */
    if (read_ok)
        write_presence(m, c, held_sinks, all, n);

    if (read_ok) {
        /* 4. Observe every lease, then bid within the fair share. */
        int64_t live = watch_presences(m, c, &d, t_recv);
        int64_t share = (sinks + live - 1) / live;
        outboxd_lease_t **cands = calloc(n ? n : 1, sizeof *cands);
        const outboxd_lease_doc_t **newest = calloc(n ? n : 1, sizeof *newest);
        char(*prev)[160] = calloc(n ? n : 1, sizeof *prev);
        size_t n_cands = 0;
        int64_t now = outboxd_lease_now_ms();
        for (size_t i = 0; cands && newest && prev && i < n; i++) {
            outboxd_lease_t *l = all[i];
            const outboxd_lease_doc_t *nc = newest_claim(&d, l->name);
            bool free_or_expired = observe(m, l, nc, t_recv, prev[n_cands], sizeof prev[n_cands]);
            pthread_mutex_lock(&m->mu);
            bool skip = held_locked(l) || l->forgotten || now < l->abstain_until;
            pthread_mutex_unlock(&m->mu);
            if (skip || !free_or_expired) {
                l->claimable_since = 0;
                continue;
            }
            if (!l->claimable_since)
                l->claimable_since = t_recv;
            newest[n_cands] = nc;
            cands[n_cands++] = l;
        }
        /* A random order of the free ones, so that instances starting
         * together do not all race for the same lease first. */
        for (size_t i = n_cands; i > 1; i--) {
            size_t j = (size_t)(rng_next(m) % i);
            outboxd_lease_t *tl = cands[i - 1];
            cands[i - 1] = cands[j];
            cands[j] = tl;
            const outboxd_lease_doc_t *tn = newest[i - 1];
            newest[i - 1] = newest[j];
            newest[j] = tn;
            char tp[160];
            memcpy(tp, prev[i - 1], sizeof tp);
            memcpy(prev[i - 1], prev[j], sizeof tp);
            memcpy(prev[j], tp, sizeof tp);
        }
        pthread_mutex_lock(&m->mu);
        bool may_claim = now >= m->no_claims_until;
        pthread_mutex_unlock(&m->mu);
        /* A free sink lease is ours to take when this run is below its
         * share, or no other live run can take it (its config lacks the
         * sink: instances in the middle of a config roll-out), or no run
         * that can holds fewer sinks than this one. And whatever the
         * counts say, when it stayed free for two rounds: then the others'
         * view disagrees with ours (an outboxd from before the sink lists
         * that lacks the sink), and a sink without a holder is worse than
         * an uneven spread; such a lease is never handed over for balance. */
        for (size_t i = 0; i < n_cands; i++) {
            outboxd_lease_t *l = cands[i];
            bool fallback = false;
            if (l->is_sink) {
                if (!may_claim)
                    continue;
                bool fair = held_sinks < share || held_sinks <= fewest_rival(m, l->name, NULL);
                fallback = !fair && t_recv - l->claimable_since >= 2 * m->renew;
                if (!fair && !fallback)
                    continue;
            }
            l->by_fallback = fallback;
            if (try_acquire(m, c, l, newest[i], prev[i]) && l->is_sink) {
                held_sinks++;
                if (fallback)
                    LOG_INFO("lease %s: taken although this instance holds %lld sink leases: it had no holder "
                             "for %lld ms; it stays here (no hand-over for balance) mono_ms=%lld",
                             l->name, (long long)held_sinks, (long long)(t_recv - l->claimable_since),
                             (long long)outboxd_lease_now_ms());
            }
        }
        /* Two rounds in a row with another live run that can take one of
         * our sinks and holds at least two fewer: hand that sink over (the
         * most recently acquired such, one at a time). Each hand-over makes
         * the spread strictly more even, so it ends; four sinks over three
         * instances do not stay at 2 + 2 + 0, and a sink no other run can
         * take is never given up. */
        outboxd_lease_t *pick = NULL;
        const presence_t *to = NULL;
        bool pending = false;
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < n; i++) {
            outboxd_lease_t *l = all[i];
            if (!l->is_sink || !held_locked(l))
                continue;
            if (atomic_load(&l->handover) == atomic_load(&l->term)) {
                pending = true;
                continue;
            }
            const presence_t *who = NULL;
            if (l->by_fallback || fewest_rival(m, l->name, &who) > held_sinks - 2)
                continue;
            if (!pick || atomic_load(&l->acquired) > atomic_load(&pick->acquired)) {
                pick = l;
                to = who;
            }
        }
        m->over_rounds = pick && !pending ? m->over_rounds + 1 : 0;
        if (m->over_rounds >= 2) {
            atomic_store(&pick->handover, atomic_load(&pick->term));
            LOG_INFO("lease %s: hand-over of term %lld wanted (this instance holds %lld sink leases; instance %s, "
                     "which has this sink too, holds %lld) mono_ms=%lld",
                     pick->name, (long long)atomic_load(&pick->term), (long long)held_sinks, to->instance,
                     (long long)to->sinks_held, (long long)outboxd_lease_now_ms());
            m->over_rounds = 0;
        }
        pthread_mutex_unlock(&m->mu);

        /* Wake exactly when the earliest watched claim expires. */
        pthread_mutex_lock(&m->mu);
        int64_t after = outboxd_lease_now_ms();
        for (size_t i = 0; i < n; i++) {
            outboxd_lease_t *l = all[i];
            if (!l->seen || l->v_released || held_locked(l) || l->forgotten)
                continue;
            int64_t expiry = l->first_seen + max64(m->ttl, l->v_ttl);
            if (expiry > after && expiry < m->next_round)
                m->next_round = expiry;
        }
        pthread_mutex_unlock(&m->mu);
        free(cands);
        free(newest);
        free(prev);
    }

    mongoc_collection_destroy(c);
    mongoc_client_pool_push(m->pool, client);
    LOG_DEBUG("leases: round over %zu leases took %lld ms (the read %lld ms)", n,
              (long long)(outboxd_lease_now_ms() - start), (long long)(t_recv - start));
    docs_free(&d);
    free(all);
}

static void *manager_main(void *arg) {
    outboxd_leases_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        int64_t now = outboxd_lease_now_ms();
        if (!m->round_soon && now < m->next_round) {
            outboxd_heartbeat_idle(m->beat); /* the time to the next round */
            outboxd_cond_wait_ms(&m->tick, &m->mu, m->next_round - now);
            continue;
        }
        m->round_soon = false;
        pthread_mutex_unlock(&m->mu);
        outboxd_heartbeat_busy(m->beat);
        round_run(m);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    outboxd_heartbeat_end(m->beat);
    return NULL;
}

void outboxd_leases_watch(outboxd_leases_t *m, outboxd_heartbeat_t *beat) {
    m->beat = beat;
}

bool outboxd_leases_start(outboxd_leases_t *m) {
    if (!m->enabled) {
        LOG_INFO("leases: ha.enabled is false: every sink and the promoter run here, no lease is read or written");
        return true;
    }
    LOG_INFO("leases: instance %s, run %s, lease_ttl_ms %lld, renew_ms %lld, in %s.%s", m->instance, m->run,
             (long long)m->ttl, (long long)m->renew, m->db, m->coll);
    pthread_mutex_lock(&m->mu);
    m->round_soon = false;
    pthread_mutex_unlock(&m->mu);
    round_run(m);
    if (pthread_create(&m->thread, NULL, manager_main, m) != 0) {
        LOG_ERR("leases: cannot start the lease thread");
        return false;
    }
    m->started = true;
    return true;
}

void outboxd_leases_stop(outboxd_leases_t *m) {
    if (!m || m->stopped)
        return;
    m->stopped = true;
    if (!m->enabled)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_broadcast(&m->tick);
    pthread_mutex_unlock(&m->mu);
    if (m->started)
        pthread_join(m->thread, NULL);
    m->started = false;
    for (;;) {
        outboxd_lease_t *give = NULL;
        int64_t term = 0;
        pthread_mutex_lock(&m->mu);
        for (outboxd_lease_t *l = m->leases; l && !give; l = l->next) {
            term = atomic_load(&l->term);
            if (give_up_locked(l, term))
                give = l;
        }
        pthread_mutex_unlock(&m->mu);
        if (!give)
            break;
        write_release(m, give, term);
    }
    bson_t filter;
    bson_error_t berr;
    outboxd_lease_presence_id(&filter, m->instance, m->run);
    mongoc_client_t *client = mongoc_client_pool_pop(m->pool);
    mongoc_collection_t *c = mongoc_client_get_collection(client, m->db, m->coll);
    if (!mongoc_collection_delete_one(c, &filter, NULL, NULL, &berr))
        LOG_DEBUG("leases: presence of run %s not deleted: %s", m->run, berr.message);
    mongoc_collection_destroy(c);
    mongoc_client_pool_push(m->pool, client);
    bson_destroy(&filter);
}

void outboxd_leases_free(outboxd_leases_t *m) {
    if (!m)
        return;
    outboxd_leases_stop(m);
    while (m->leases) {
        outboxd_lease_t *next = m->leases->next;
        pthread_mutex_destroy(&m->leases->write_mu);
        free(m->leases);
        m->leases = next;
    }
    for (size_t i = 0; i < m->n_presences; i++)
        free(m->presences[i].sinks);
    free(m->presences);
    mongoc_write_concern_destroy(m->wc);
    mongoc_write_concern_destroy(m->wc_claim);
    pthread_cond_destroy(&m->held);
    pthread_cond_destroy(&m->tick);
    pthread_mutex_destroy(&m->mu);
    free(m->db);
    free(m->coll);
    free(m);
}

/* ---- one lease, the runner's side ---- */

int64_t outboxd_lease_wait(outboxd_lease_t *l, atomic_bool *stop) {
    outboxd_leases_t *m = l->m;
    if (!m->enabled)
        return OUTBOXD_LEASE_TERM_HA_OFF;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        /* Held first, then *stop: a runner asks "held now?" with *stop
         * already set. */
        int64_t term = atomic_load(&l->term);
        if (held_locked(l) && outboxd_lease_now_ms() < atomic_load(&l->deadline)) {
            pthread_mutex_unlock(&m->mu);
            return term;
        }
        if (stop && atomic_load(stop))
            break;
        outboxd_cond_wait_ms(&m->held, &m->mu, WAIT_POLL_MS);
    }
    pthread_mutex_unlock(&m->mu);
    return OUTBOXD_LEASE_NONE;
}

bool outboxd_lease_valid(outboxd_lease_t *l, int64_t term) {
    int64_t deadline = atomic_load(&l->deadline); /* first: see struct outboxd_lease */
    if (atomic_load(&l->term) != term)
        return false;
    return deadline == INT64_MAX || outboxd_lease_now_ms() < deadline;
}

int64_t outboxd_lease_deadline_ms(outboxd_lease_t *l, int64_t term) {
    int64_t deadline = atomic_load(&l->deadline);
    return atomic_load(&l->term) == term ? deadline : 0;
}

bool outboxd_lease_handover_wanted(outboxd_lease_t *l, int64_t term) {
    return term >= 1 && atomic_load(&l->handover) == term;
}

void outboxd_lease_lost(outboxd_lease_t *l, int64_t term, int64_t seen_term, const char *why) {
    outboxd_leases_t *m = l->m;
    if (!m->enabled || term < 1)
        return;
    pthread_mutex_lock(&m->mu);
    if (seen_term > l->floor)
        l->floor = seen_term;
    if (atomic_load(&l->term) == term && !l->lost)
        mark_lost(l, term, why ? why : "a write was fenced");
    pthread_mutex_unlock(&m->mu);
}

bool outboxd_lease_lost_why(outboxd_lease_t *l, int64_t term, char *buf, size_t size) {
    outboxd_leases_t *m = l->m;
    pthread_mutex_lock(&m->mu);
    bool lost = atomic_load(&l->term) == term && l->lost;
    if (size > 0)
        snprintf(buf, size, "%s", lost ? l->why : "");
    pthread_mutex_unlock(&m->mu);
    return lost;
}

void outboxd_lease_release(outboxd_lease_t *l, int64_t term) {
    outboxd_leases_t *m = l->m;
    if (!m->enabled)
        return;
    pthread_mutex_lock(&m->mu);
    bool release = give_up_locked(l, term);
    pthread_mutex_unlock(&m->mu);
    if (release)
        write_release(m, l, term);
}

const char *outboxd_lease_owner_id(outboxd_lease_t *l) {
    return l->m->instance;
}

const char *outboxd_lease_name(outboxd_lease_t *l) {
    return l->name;
}

int64_t outboxd_lease_acquired_ms(outboxd_lease_t *l, int64_t term) {
    int64_t acquired = atomic_load(&l->acquired);
    return atomic_load(&l->term) == term ? acquired : 0;
}
