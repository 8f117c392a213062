/*
 * survey.c - see survey.h.
 */
#include "config.h"

#include "survey.h"

#include "clock.h"
#include "condwait.h"
#include "headroom.h"
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The ids of the backward scan come in batches of this many. */
#define SCAN_BATCH 10000
/* A failed survey is logged at most this often (it is retried each round). */
#define FAIL_LOG_EVERY_MS 60000

struct outboxd_survey {
    mongoc_client_pool_t *pool;
    char *db, *log, *checkpoints, *pending, *quarantine;
    outboxd_metrics_t *metrics;
    outboxd_reader_t *reader; /* borrowed; NULL: none */
    outboxd_heartbeat_t *beat;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock; /* conf; the wait on wake */
    pthread_cond_t wake;
    atomic_bool stop;     /* also read by a walk, which it ends */
    outboxd_survey_conf_t conf;
    int64_t failed_said_ms;
};

/* One sink of this round: what its checkpoint says and what the scan finds. */
typedef struct {
    outboxd_sink_metrics_t *entry;
    bool has_doc;              /* a checkpoint document exists */
    bool has_last;             /* ...naming an event (else: the log's start) */
    bson_oid_t last_id;
    int64_t written_ms;        /* its "updated", -1 without */
    bool in_log;               /* its checkpoint event is in the log */
    int64_t created_ms;        /* ...and its created, -1 without */
    bool found;                /* the walk met it */
    int64_t after;             /* documents after it (newer), when found */
} round_sink_t;

outboxd_survey_t *outboxd_survey_new(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                     outboxd_metrics_t *metrics, outboxd_reader_t *reader,
                                     const outboxd_survey_conf_t *conf) {
    outboxd_survey_t *sv = calloc(1, sizeof *sv);
    if (!sv)
        return NULL;
    sv->pool = pool;
    sv->db = strdup(db);
    sv->log = strdup(coll);
    sv->checkpoints = bson_strdup_printf("%s.checkpoints", coll);
    sv->pending = bson_strdup_printf("%s.pending", coll);
    sv->quarantine = bson_strdup_printf("%s.quarantine", coll);
    sv->metrics = metrics;
    sv->reader = reader;
    sv->beat = outboxd_metrics_heartbeat(metrics, OUTBOXD_THREAD_SURVEY);
    sv->conf = *conf;
    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->wake, NULL);
    if (!sv->db || !sv->log) {
        outboxd_survey_free(sv);
        return NULL;
    }
    outboxd_metrics_warn_headroom(metrics, conf->warn_headroom);
    return sv;
}

void outboxd_survey_configure(outboxd_survey_t *sv, const outboxd_survey_conf_t *conf) {
    pthread_mutex_lock(&sv->lock);
    sv->conf = *conf;
    pthread_cond_signal(&sv->wake);
    pthread_mutex_unlock(&sv->lock);
    outboxd_metrics_warn_headroom(sv->metrics, conf->warn_headroom);
}

/* ---- reading -------------------------------------------------------------- */

static int64_t doc_int64(const bson_t *doc, const char *key, int64_t otherwise) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return otherwise;
}

static double doc_double(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_double(&it);
    return 0.0;
}

static int64_t doc_date(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it))
        return bson_iter_date_time(&it);
    return -1;
}

/* The log's figures from the server's collStats: count, size and the
 * capped limits; the average document size for the headroom. */
static bool read_stats(outboxd_survey_t *sv, mongoc_client_t *client, outboxd_log_figures_t *f, double *avg,
                       bson_error_t *berr) {
    mongoc_database_t *db = mongoc_client_get_database(client, sv->db);
    bson_t *cmd = BCON_NEW("collStats", BCON_UTF8(sv->log));
    bson_t reply;
    bool ok = mongoc_database_command_simple(db, cmd, NULL, &reply, berr);
    if (ok) {
        f->events = doc_int64(&reply, "count", 0);
        f->size_bytes = doc_int64(&reply, "size", 0);
        f->capped_size_bytes = doc_int64(&reply, "maxSize", 0);
        f->capped_max_events = doc_int64(&reply, "max", 0);
        *avg = doc_double(&reply, "avgObjSize");
    }
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_database_destroy(db);
    return ok;
}

/* The created time of the first document of coll in order sort (-1: none,
 * or it has no date); false on an error. */
static bool read_first(mongoc_collection_t *coll, bson_t *sort, int64_t *created, bson_error_t *berr) {
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "created", BCON_INT32(1), "}", "limit",
                            BCON_INT64(1));
    if (!bson_empty(sort))
        BSON_APPEND_DOCUMENT(opts, "sort", sort);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    *created = -1;
    if (mongoc_cursor_next(cur, &doc))
        *created = doc_date(doc, "created");
    bool ok = !mongoc_cursor_error(cur, berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

static bool read_checkpoints(outboxd_survey_t *sv, mongoc_client_t *client, round_sink_t *sinks, size_t n,
                             bson_error_t *berr) {
    mongoc_collection_t *coll = mongoc_client_get_collection(client, sv->db, sv->checkpoints);
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "last_id", BCON_INT32(1), "updated", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
            continue; /* not a sink's: sink names are strings */
        const char *name = bson_iter_utf8(&it, NULL);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(sinks[i].entry->sink, name) != 0)
                continue;
            sinks[i].has_doc = true;
            sinks[i].written_ms = doc_date(doc, "updated");
            /* As outboxd reads it: anything but an ObjectId is the start. */
            if (bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it)) {
                sinks[i].has_last = true;
                bson_oid_copy(bson_iter_oid(&it), &sinks[i].last_id);
            }
        }
    }
    bool ok = !mongoc_cursor_error(cur, berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    return ok;
}

/* The sinks the shared reader can place: when it has read all the log
 * holds, a checkpoint event in its ring is as many documents from the
 * newest as the ring says, with no read of the log at all (a sink that
 * keeps up, the usual case). *newest_created_ms: the log's newest
 * document's created, when the reader knows it. */
static bool place_from_reader(outboxd_survey_t *sv, round_sink_t *sinks, size_t n, int64_t *newest_created_ms) {
    if (!sv->reader || n == 0)
        return false;
    bson_oid_t *ids = calloc(n, sizeof *ids);
    int64_t *after = calloc(n, sizeof *after), *created = calloc(n, sizeof *created);
    bool at_head = false;
    if (ids && after && created) {
        for (size_t i = 0; i < n; i++)
            bson_oid_copy(&sinks[i].last_id, &ids[i]); /* zeros where has_last is false: never in the ring */
        at_head = outboxd_reader_at_head(sv->reader, ids, n, after, created, newest_created_ms);
        for (size_t i = 0; at_head && i < n; i++) {
            if (!sinks[i].has_last || after[i] < 0)
                continue;
            sinks[i].in_log = sinks[i].found = true;
            sinks[i].after = after[i];
            sinks[i].created_ms = created[i];
        }
    }
    free(ids);
    free(after);
    free(created);
    return at_head;
}

/* Whether each checkpoint event the reader could not place is still in the
 * log, and its created: one query by _id each (the _id index; an $in of
 * them scans the whole log on some servers), so that a checkpoint event
 * that is gone (a gap) costs no walk. */
static bool look_up(mongoc_collection_t *log, round_sink_t *sinks, size_t n, bson_error_t *berr) {
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "created", BCON_INT32(1), "}", "limit",
                            BCON_INT64(1));
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (!sinks[i].has_last || sinks[i].found)
            continue;
        bson_t *filter = BCON_NEW("_id", BCON_OID(&sinks[i].last_id));
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(log, filter, opts, NULL);
        const bson_t *doc;
        if (mongoc_cursor_next(cur, &doc)) {
            sinks[i].in_log = true;
            sinks[i].created_ms = doc_date(doc, "created");
        }
        ok = !mongoc_cursor_error(cur, berr);
        mongoc_cursor_destroy(cur);
        bson_destroy(filter);
    }
    bson_destroy(opts);
    return ok;
}

/* Places the checkpoint events still to place by walking the log's ids
 * from the oldest, in natural order (as the tails read it, never by
 * comparing ids or times; the plain order of a capped collection, which
 * every server serves without sorting), until each is met: its place is
 * the log's count less the documents before it and itself. A sink far
 * behind, whose checkpoint event nears the oldest end (the one whose
 * headroom matters), costs a few ids. A walk that fails (the capped log
 * overwriting the oldest end under the cursor) leaves those not met
 * unknown; the survey itself goes on. */
static void walk_from_oldest(outboxd_survey_t *sv, mongoc_collection_t *log, int64_t events, round_sink_t *sinks,
                             size_t n) {
    size_t wanted = 0;
    for (size_t i = 0; i < n; i++)
        wanted += sinks[i].in_log && !sinks[i].found;
    if (!wanted)
        return;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "batchSize", BCON_INT32(SCAN_BATCH));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(log, &filter, opts, NULL);
    const bson_t *doc;
    int64_t passed = 0;
    while (wanted && !atomic_load(&sv->stop) && mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            for (size_t i = 0; i < n; i++) {
                round_sink_t *s = &sinks[i];
                if (!s->in_log || s->found || !bson_oid_equal(bson_iter_oid(&it), &s->last_id))
                    continue;
                s->found = true;
                s->after = events - passed - 1;
                if (s->after < 0)
                    s->after = 0; /* written since the count */
                wanted--;
            }
        }
        if (++passed % SCAN_BATCH == 0)
            outboxd_heartbeat_busy(sv->beat); /* a long walk is progress, not a hang */
    }
    bson_error_t berr;
    if (wanted && mongoc_cursor_error(cur, &berr))
        LOG_DEBUG("log survey: a walk of %s.%s stopped: %s", sv->db, sv->log, berr.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
}

/* ---- judging -------------------------------------------------------------- */

/* A sink's figures from what the round read (as outboxctl status computes
 * them: unknown where it says unknown), and its warning. */
static void judge_sink(outboxd_survey_t *sv, const outboxd_survey_conf_t *conf, const outboxd_log_figures_t *log,
                       double avg, const round_sink_t *k) {
    outboxd_sink_survey_t was = outboxd_sink_metrics_survey_get(k->entry);
    outboxd_sink_survey_t f = {.known = true, .checkpoint_written_ms = k->has_doc ? k->written_ms : -1,
                               .warned_ms = was.warned_ms, .warned_low = was.warned_low};
    if (!k->has_last) { /* no checkpoint, or (start): the whole log is ahead */
        f.lag_events = log->events;
        f.lag_ms = log->events && log->newest_created_ms >= 0 && log->oldest_created_ms >= 0
                       ? log->newest_created_ms - log->oldest_created_ms
                       : 0;
    } else if (k->found) {
        f.lag_events = k->after;
        f.lag_ms = k->after == 0 ? 0
                   : k->created_ms < 0 || log->newest_created_ms < 0 ? -1 /* an event without a date */
                                                                       : log->newest_created_ms - k->created_ms;
    } else { /* its checkpoint event left the log (a gap), or the walk could not tell */
        f.lag_events = f.lag_ms = -1;
    }
    bool walk_failed = k->has_last && k->in_log && !k->found;
    if (f.lag_ms < -1 || (f.lag_ms < 0 && f.lag_events == 0))
        f.lag_ms = 0; /* producers' clocks out of order: not a lag */
    /* headroom.h: a sink at the log's start has no checkpoint event. A
     * capped log without an average size yet (the server gives none) has
     * an unknown headroom while anything waits. */
    int64_t backlog = k->has_last ? f.lag_events : log->events - 1;
    if (!k->has_last && log->events == 0)
        f.headroom = 1.0;
    else if (walk_failed)
        f.headroom = -1.0; /* unknown this time: no figure, no warning */
    else if (backlog > 0 && log->capped_size_bytes > 0 && avg <= 0 && log->capped_max_events <= 0)
        f.headroom = -1.0;
    else
        f.headroom = outboxd_headroom_ratio(backlog, avg, log->capped_size_bytes, log->capped_max_events);
    f.headroom_low = f.headroom >= 0 && f.headroom < conf->warn_headroom;
    /* The instance that publishes the sink warns; the others stand by. At
     * most one warning and one "back" line per warn_every_ms, so that a
     * headroom hovering at the threshold does not fill the journal. */
    bool active = atomic_load(&k->entry->state) != OUTBOXD_SINK_STANDBY;
    int64_t now = outboxd_mono_ms();
    bool due = !f.warned_ms || now - f.warned_ms >= conf->warn_every_ms;
    if (f.headroom_low && active && (!f.warned_low || due)) {
        if (f.lag_events < 0)
            LOG_WARN("sink %s: log headroom 0 (log.warn_headroom %.2f): its checkpoint event is no longer in the "
                     "log %s.%s; the sink meets a gap",
                     k->entry->sink, conf->warn_headroom, sv->db, sv->log);
        else
            LOG_WARN("sink %s: log headroom %.2f is below log.warn_headroom %.2f: %lld events are not published "
                     "yet, and the capped log %s.%s overwrites them once about %.0f%% more of it is written",
                     k->entry->sink, f.headroom, conf->warn_headroom, (long long)f.lag_events, sv->db, sv->log,
                     f.headroom * 100.0);
        if (!f.warned_low || due)
            f.warned_ms = now;
        f.warned_low = true;
    } else if (!f.headroom_low && f.headroom >= 0 && f.warned_low && due) {
        LOG_INFO("sink %s: log headroom back to %.2f (log.warn_headroom %.2f)", k->entry->sink, f.headroom,
                 conf->warn_headroom);
        f.warned_low = false;
        f.warned_ms = now;
    }
    outboxd_sink_metrics_survey(k->entry, &f);
}

/* N.pending's backlog (it exists only where transactional puts were made):
 * false when it cannot be read; the log's figures stand without it. */
static bool read_pending(mongoc_collection_t *pending, outboxd_log_figures_t *f, bson_error_t *berr) {
    bson_t *by_created = BCON_NEW("created", BCON_INT32(1));
    int64_t count = mongoc_collection_estimated_document_count(pending, NULL, NULL, NULL, berr);
    bool ok = count >= 0 && read_first(pending, by_created, &f->pending_oldest_created_ms, berr);
    f->pending_events = count > 0 ? count : 0;
    f->pending_known = ok;
    bson_destroy(by_created);
    return ok;
}

/* N.quarantine's size: what the promoter set aside (it exists once it
 * has); false when it cannot be read. */
static bool read_quarantine(mongoc_collection_t *quarantine, outboxd_log_figures_t *f, bson_error_t *berr) {
    int64_t count = mongoc_collection_estimated_document_count(quarantine, NULL, NULL, NULL, berr);
    f->quarantined_events = count > 0 ? count : 0;
    f->quarantine_known = count >= 0;
    return count >= 0;
}

/* One look at the log; false (berr set) when the server could not answer
 * what the figures need (the log's stats, the checkpoints, its ends). */
static bool survey_once(outboxd_survey_t *sv, const outboxd_survey_conf_t *conf, bson_error_t *berr) {
    int64_t started = outboxd_mono_ms();
    outboxd_sink_metrics_t **entries = NULL;
    size_t n = 0;
    if (!outboxd_metrics_sinks(sv->metrics, &entries, &n)) {
        bson_set_error(berr, 0, 0, "out of memory");
        return false;
    }
    round_sink_t *sinks = calloc(n ? n : 1, sizeof *sinks);
    if (!sinks) {
        free(entries);
        bson_set_error(berr, 0, 0, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        sinks[i].entry = entries[i];
    mongoc_client_t *client = mongoc_client_pool_pop(sv->pool);
    mongoc_collection_t *log = mongoc_client_get_collection(client, sv->db, sv->log);
    mongoc_collection_t *pending = mongoc_client_get_collection(client, sv->db, sv->pending);
    mongoc_collection_t *quarantine = mongoc_client_get_collection(client, sv->db, sv->quarantine);
    outboxd_log_figures_t f = {.surveyed = true};
    double avg = 0;
    /* The oldest in the plain order of a capped collection; the newest
     * from the shared reader when it has read all, else by the reverse
     * natural order (cheap on MongoDB; FerretDB sorts the whole log). */
    bson_t *oldest = bson_new(), *newest = BCON_NEW("$natural", BCON_INT32(-1));
    /* The first read says whether the server answers at all. */
    f.mongodb_up = read_stats(sv, client, &f, &avg, berr);
    bool ok = f.mongodb_up && read_checkpoints(sv, client, sinks, n, berr) &&
              read_first(log, oldest, &f.oldest_created_ms, berr);
    if (ok && !place_from_reader(sv, sinks, n, &f.newest_created_ms))
        ok = read_first(log, newest, &f.newest_created_ms, berr);
    ok = ok && look_up(log, sinks, n, berr);
    if (ok) {
        walk_from_oldest(sv, log, f.events, sinks, n);
        bson_error_t perr;
        if (!read_pending(pending, &f, &perr))
            LOG_DEBUG("log survey: cannot read %s.%s: %s", sv->db, sv->pending, perr.message);
        if (!read_quarantine(quarantine, &f, &perr))
            LOG_DEBUG("log survey: cannot read %s.%s: %s", sv->db, sv->quarantine, perr.message);
        for (size_t i = 0; i < n; i++)
            judge_sink(sv, conf, &f, avg, &sinks[i]);
        f.known = true;
        f.surveyed_ms = outboxd_wall_ms();
        f.survey_seconds = (double)(outboxd_mono_ms() - started) / 1000.0;
    }
    outboxd_metrics_log(sv->metrics, &f);
    bson_destroy(newest);
    bson_destroy(oldest);
    mongoc_collection_destroy(pending);
    mongoc_collection_destroy(quarantine);
    mongoc_collection_destroy(log);
    mongoc_client_pool_push(sv->pool, client);
    free(sinks);
    free(entries);
    return ok;
}

/* Whether the shared reader has read all the log holds: a survey then
 * places the sinks that keep up from its ring, nearly free. */
static bool reader_at_head(outboxd_survey_t *sv) {
    int64_t newest;
    return sv->reader && outboxd_reader_at_head(sv->reader, NULL, 0, NULL, NULL, &newest);
}

static void *survey_main(void *arg) {
    outboxd_survey_t *sv = arg;
    int64_t born = outboxd_mono_ms();
    bool first = true;
    pthread_mutex_lock(&sv->lock);
    while (!atomic_load(&sv->stop)) {
        outboxd_survey_conf_t conf = sv->conf;
        if (conf.every_ms == 0) { /* log.survey_ms 0: none, until a reload says otherwise */
            outboxd_heartbeat_idle(sv->beat);
            outboxd_cond_wait_ms(&sv->wake, &sv->lock, 1000);
            continue;
        }
        /* The first survey waits for the reader to read all the log holds
         * (then it costs almost nothing), or for log.survey_ms: at start a
         * backlog is drained, and a survey meanwhile reads the log beside
         * the reader (on FerretDB, finding the newest event sorts it). */
        if (first && !reader_at_head(sv) && outboxd_mono_ms() - born < conf.every_ms) {
            outboxd_heartbeat_idle(sv->beat);
            outboxd_cond_wait_ms(&sv->wake, &sv->lock, 100);
            continue;
        }
        first = false;
        pthread_mutex_unlock(&sv->lock);
        outboxd_heartbeat_busy(sv->beat);
        int64_t started = outboxd_mono_ms();
        bson_error_t berr;
        if (!survey_once(sv, &conf, &berr)) {
            int64_t now = outboxd_mono_ms();
            if (!sv->failed_said_ms || now - sv->failed_said_ms >= FAIL_LOG_EVERY_MS) {
                LOG_WARN("log survey: cannot read %s.%s: %s (the lag and headroom figures are those of the last "
                         "survey; retrying every %lld ms)",
                         sv->db, sv->log, berr.message, (long long)conf.every_ms);
                sv->failed_said_ms = now;
            }
        } else {
            sv->failed_said_ms = 0;
        }
        /* A long walk (a backlog in the middle of a long log) waits ten
         * times its length: the survey takes at most a tenth of the
         * server's time it could have. */
        int64_t took = outboxd_mono_ms() - started;
        int64_t wait = conf.every_ms > 10 * took ? conf.every_ms : 10 * took;
        outboxd_heartbeat_idle(sv->beat);
        pthread_mutex_lock(&sv->lock);
        int64_t until = outboxd_mono_ms() + wait;
        while (!atomic_load(&sv->stop) && outboxd_mono_ms() < until && sv->conf.every_ms == conf.every_ms)
            outboxd_cond_wait_ms(&sv->wake, &sv->lock, until - outboxd_mono_ms());
    }
    pthread_mutex_unlock(&sv->lock);
    outboxd_heartbeat_end(sv->beat);
    return NULL;
}

bool outboxd_survey_start(outboxd_survey_t *sv) {
    sv->running = pthread_create(&sv->thread, NULL, survey_main, sv) == 0;
    return sv->running;
}

void outboxd_survey_stop(outboxd_survey_t *sv) {
    if (!sv || !sv->running)
        return;
    pthread_mutex_lock(&sv->lock);
    atomic_store(&sv->stop, true);
    pthread_cond_signal(&sv->wake);
    pthread_mutex_unlock(&sv->lock);
    pthread_join(sv->thread, NULL);
    sv->running = false;
}

void outboxd_survey_free(outboxd_survey_t *sv) {
    if (!sv)
        return;
    outboxd_survey_stop(sv);
    pthread_cond_destroy(&sv->wake);
    pthread_mutex_destroy(&sv->lock);
    free(sv->db);
    free(sv->log);
    bson_free(sv->checkpoints);
    bson_free(sv->pending);
    bson_free(sv->quarantine);
    free(sv);
}
