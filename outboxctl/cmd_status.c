/*
 * cmd_status.c - outboxctl status: per sink, its checkpoint, state and lag
 * (in events, counted in natural order, and in seconds), and the figures
 * its plugin reports (plugin_stats in the checkpoint document: sink ABI
 * 1.1's stats callback, as of the sink's last checkpoint write). --json
 * gives them per sink as "plugin_stats": {NAME: number, ...}, or null when
 * the plugin reports none; the text output adds one short line per sink
 * that has any. With HA (issue 14), each sink's lease from N.leases: who
 * holds it, at which term, and how long ago it was renewed (on the
 * server's clock); plus the promoter's lease and the live outboxd runs.
 * Issue 15: per sink the log's headroom (outboxd's formula, headroom.h),
 * marked LOW under --warn-headroom, and the backlog of transactional puts
 * in N.pending that the promoter has not moved into the log yet. Issue 22:
 * the pending documents it could not promote, set aside in N.quarantine.
 */
#include "outboxctl.h"

#include "headroom.h" /* outboxd's, -I outboxd: one formula for both */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* One sink as status reports it: its checkpoint document, then what the
 * walk of the log found out about it. */
typedef struct {
    char *name, *state, *message;
    bool has_last;        /* last_id is an ObjectId; else the sink is at (start) */
    bson_oid_t last_id;
    int64_t events;       /* handled, in all */
    int64_t malformed;    /* malformed documents met (outboxd counts them) */
    char *last_malformed; /* why the last one was, NULL when none */
    int64_t updated_ms;   /* -1: unknown */
    bool in_log;          /* last_id was found in the log ... */
    int64_t index;        /* ... at this natural-order index */
    int64_t created_ms;   /* the checkpoint event's created, -1 unknown */
    bool gap;
    int64_t lag_events;   /* -1: unknown (gap) */
    int64_t lag_ms;       /* -1: unknown */
    bson_t *plugin_stats; /* the checkpoint's plugin_stats, NULL when absent */
    lease_view_t lease;   /* the newest claim of sink:NAME */
    double headroom;      /* outboxd_headroom_ratio; -1: unknown */
    bool headroom_low;    /* headroom below --warn-headroom */
} sink_status_t;

typedef struct {
    int64_t events;
    bson_oid_t oldest, newest;
    int64_t oldest_ms, newest_ms; /* created, -1 unknown */
    /* The capped log's limits and its average document, from collStats:
     * what headroom is worked out from. */
    bool capacity_known;
    int64_t cap_bytes, cap_events; /* cap_events 0: no limit by documents */
    double avg_obj_bytes;          /* 0: unknown (FerretDB omits it for an empty log) */
    /* N.pending: transactional puts the promoter has not moved yet. */
    int64_t pending_events;
    int64_t pending_oldest_ms;     /* the oldest one's created, -1 when none */
    /* N.quarantine: pending documents the promoter could not promote. */
    int64_t quarantined;
    int64_t quarantined_newest_ms; /* -1 when none */
    char quarantined_reason[400];  /* the newest one's reason */
} log_status_t;

static void free_sinks(sink_status_t *sinks, size_t n) {
    for (size_t i = 0; i < n; i++) {
        bson_free(sinks[i].name);
        bson_free(sinks[i].state);
        bson_free(sinks[i].message);
        bson_free(sinks[i].last_malformed);
        if (sinks[i].plugin_stats)
            bson_destroy(sinks[i].plugin_stats);
    }
    bson_free(sinks);
}

/* Reads every checkpoint document, sorted by sink name. */
static bool read_checkpoints(store_t *s, sink_status_t **out, size_t *n_out) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->checkpoints, &filter, opts, NULL);
    sink_status_t *sinks = NULL;
    size_t n = 0, cap = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        const char *name = doc_utf8(doc, "_id");
        if (!name)
            continue; /* not outboxd's: sink names are strings */
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            sinks = bson_realloc(sinks, cap * sizeof *sinks);
        }
        sink_status_t *k = &sinks[n++];
        memset(k, 0, sizeof *k);
        const char *state = doc_utf8(doc, "state"), *message = doc_utf8(doc, "message");
        k->name = bson_strdup(name);
        k->state = bson_strdup(state ? state : "running");
        k->message = bson_strdup(message ? message : "");
        /* As outboxd reads it: anything but an ObjectId means (start). */
        k->has_last = doc_oid(doc, "last_id", &k->last_id);
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "events") && BSON_ITER_HOLDS_NUMBER(&it))
            k->events = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "malformed") && BSON_ITER_HOLDS_NUMBER(&it))
            k->malformed = bson_iter_as_int64(&it);
        const char *last_malformed = doc_utf8(doc, "last_malformed");
        k->last_malformed = last_malformed ? bson_strdup(last_malformed) : NULL;
        k->updated_ms = doc_date(doc, "updated");
        k->created_ms = -1;
        if (bson_iter_init_find(&it, doc, "plugin_stats") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&it, &len, &data);
            k->plugin_stats = bson_new_from_data(data, len);
        }
    }
    bool ok = !mongoc_cursor_error(cur, &berr);
    if (!ok) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->checkpoints_name, berr.message);
        free_sinks(sinks, n);
    } else {
        *out = sinks;
        *n_out = n;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

/* Walks the log's _ids in natural order, as a tail does to resume (only
 * the ids cross the network): counts the events, notes the oldest and the
 * newest, and the position of each sink's checkpoint event. Positions are
 * never worked out by comparing ids or times: natural order is neither. */
static bool walk_log(store_t *s, log_status_t *log, sink_status_t *sinks, size_t n) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "sort", "{", "$natural",
                            BCON_INT32(1), "}", "batchSize", BCON_INT32(100000));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->log, &filter, opts, NULL);
    memset(log, 0, sizeof *log);
    log->oldest_ms = log->newest_ms = -1;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_oid_t id;
        if (!doc_oid(doc, "_id", &id))
            continue; /* not an event: readers skip it too */
        if (log->events == 0)
            bson_oid_copy(&id, &log->oldest);
        bson_oid_copy(&id, &log->newest);
        for (size_t i = 0; i < n; i++) {
            if (sinks[i].has_last && !sinks[i].in_log && bson_oid_equal(&id, &sinks[i].last_id)) {
                sinks[i].in_log = true;
                sinks[i].index = log->events;
            }
        }
        log->events++;
    }
    bool ok = !mongoc_cursor_error(cur, &berr);
    if (!ok)
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->name, berr.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

/* Fills in the created times the walk did not fetch: the oldest and newest
 * events' and each checkpoint event's, in one query by _id. */
static bool lookup_created(store_t *s, log_status_t *log, sink_status_t *sinks, size_t n) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER, id_doc, in;
    uint32_t k = 0;
    if (log->events == 0)
        return true;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id_doc);
    BSON_APPEND_ARRAY_BEGIN(&id_doc, "$in", &in);
    const bson_oid_t *ids[2] = {&log->oldest, &log->newest};
    for (int j = 0; j < 2; j++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string(k++, &kp, key, sizeof key);
        BSON_APPEND_OID(&in, kp, ids[j]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!sinks[i].in_log)
            continue;
        char key[16];
        const char *kp;
        bson_uint32_to_string(k++, &kp, key, sizeof key);
        BSON_APPEND_OID(&in, kp, &sinks[i].last_id);
    }
    bson_append_array_end(&id_doc, &in);
    bson_append_document_end(&filter, &id_doc);
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "created", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->log, &filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_oid_t id;
        if (!doc_oid(doc, "_id", &id))
            continue;
        int64_t created = doc_date(doc, "created");
        if (bson_oid_equal(&id, &log->oldest))
            log->oldest_ms = created;
        if (bson_oid_equal(&id, &log->newest))
            log->newest_ms = created;
        for (size_t i = 0; i < n; i++)
            if (sinks[i].in_log && bson_oid_equal(&id, &sinks[i].last_id))
                sinks[i].created_ms = created;
    }
    bool ok = !mongoc_cursor_error(cur, &berr);
    if (!ok)
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->name, berr.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

static double doc_number(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_double(&it) : 0.0;
}

/* The log's limits (maxSize, max) and avgObjSize from collStats, which
 * MongoDB and FerretDB both answer with these three. A failure is not
 * status's: the headroom is then unknown, and status says why on stderr. */
static void read_capacity(store_t *s, log_status_t *log) {
    bson_error_t berr;
    bson_t reply;
    bson_t *cmd = BCON_NEW("collStats", BCON_UTF8(s->name));
    if (!mongoc_client_command_simple(s->client, s->db, cmd, NULL, &reply, &berr)) {
        fprintf(stderr, "outboxctl: cannot read the size of %s.%s (collStats: %s): headroom unknown\n", s->db,
                s->name, berr.message);
    } else {
        double max_size = doc_number(&reply, "maxSize"), max = doc_number(&reply, "max");
        log->avg_obj_bytes = doc_number(&reply, "avgObjSize");
        log->cap_bytes = max_size > 0 ? (int64_t)max_size : 0;
        /* Some servers report a log without a document limit as 0, others
         * as -1: both mean none. */
        log->cap_events = max > 0 ? (int64_t)max : 0;
        log->capacity_known = log->cap_bytes > 0;
        if (!log->capacity_known)
            fprintf(stderr, "outboxctl: %s.%s has no capped size (collStats maxSize): headroom unknown\n",
                    s->db, s->name);
    }
    bson_destroy(&reply);
    bson_destroy(cmd);
}

/* N.pending's backlog: how many, and the oldest one's created (the time
 * its producer put it, so its age is how long the promoter has left it). */
static bool read_pending(store_t *s, log_status_t *log) {
    bson_error_t berr;
    const bson_t *doc;
    char name[320];
    bool ok = true;
    snprintf(name, sizeof name, "%s.pending", s->name);
    mongoc_collection_t *pending = mongoc_client_get_collection(s->client, s->db, name);
    bson_t all = BSON_INITIALIZER;
    log->pending_oldest_ms = -1;
    log->pending_events = mongoc_collection_count_documents(pending, &all, NULL, NULL, NULL, &berr);
    if (log->pending_events < 0)
        ok = false;
    bson_t *dated = BCON_NEW("created", "{", "$type", BCON_UTF8("date"), "}");
    bson_t *opts = BCON_NEW("projection", "{", "created", BCON_INT32(1), "}", "sort", "{", "created", BCON_INT32(1),
                            "}", "limit", BCON_INT64(1));
    if (ok && log->pending_events > 0) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(pending, dated, opts, NULL);
        if (mongoc_cursor_next(cur, &doc))
            log->pending_oldest_ms = doc_date(doc, "created");
        ok = !mongoc_cursor_error(cur, &berr);
        mongoc_cursor_destroy(cur);
    }
    if (!ok)
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, name, berr.message);
    bson_destroy(opts);
    bson_destroy(dated);
    bson_destroy(&all);
    mongoc_collection_destroy(pending);
    return ok;
}

/* N.quarantine: how many the promoter set aside, and the newest one's
 * reason and time (each document keeps its own; docs/transactions.md). */
static bool read_quarantine(store_t *s, log_status_t *log) {
    bson_error_t berr;
    const bson_t *doc;
    char name[320];
    snprintf(name, sizeof name, "%s.quarantine", s->name);
    mongoc_collection_t *q = mongoc_client_get_collection(s->client, s->db, name);
    bson_t all = BSON_INITIALIZER;
    log->quarantined_newest_ms = -1;
    log->quarantined_reason[0] = '\0';
    log->quarantined = mongoc_collection_count_documents(q, &all, NULL, NULL, NULL, &berr);
    bool ok = log->quarantined >= 0;
    if (ok && log->quarantined > 0) {
        bson_t *opts = BCON_NEW("sort", "{", "quarantined", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(q, &all, opts, NULL);
        if (mongoc_cursor_next(cur, &doc)) {
            bson_iter_t it;
            log->quarantined_newest_ms = doc_date(doc, "quarantined");
            if (bson_iter_init_find(&it, doc, "reason") && BSON_ITER_HOLDS_UTF8(&it))
                snprintf(log->quarantined_reason, sizeof log->quarantined_reason, "%s", bson_iter_utf8(&it, NULL));
        }
        ok = !mongoc_cursor_error(cur, &berr);
        mongoc_cursor_destroy(cur);
        bson_destroy(opts);
    }
    if (!ok)
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, name, berr.message);
    bson_destroy(&all);
    mongoc_collection_destroy(q);
    return ok;
}

/* Each sink's headroom: outboxd's own formula over the lag the walk
 * counted. A sink at (start) has no checkpoint event: as headroom.h asks,
 * the oldest event stands for it, so its backlog is the log's events less
 * one (an empty log: nothing waits, 1). A sink in a gap gets the formula's
 * 0 (its checkpoint event is already gone), which is LOW. Unknown (-1)
 * only when the log's figures are: its capped size, or its average
 * document while events wait (with none waiting it is 1 whatever they are). */
static void compute_headroom(const log_status_t *log, sink_status_t *sinks, size_t n, double warn) {
    for (size_t i = 0; i < n; i++) {
        sink_status_t *k = &sinks[i];
        int64_t lag = k->gap ? -1 : k->has_last ? k->lag_events : log->events > 0 ? log->events - 1 : 0;
        if (lag > 0 && (!log->capacity_known || log->avg_obj_bytes <= 0)) {
            k->headroom = -1;
            k->headroom_low = false;
            continue;
        }
        k->headroom = outboxd_headroom_ratio(lag, log->avg_obj_bytes, log->cap_bytes, log->cap_events);
        k->headroom_low = k->headroom < warn;
    }
}

/* Lag and gap of each sink from what the walk found. A sink is in a gap
 * when its checkpoint event is no longer in the log (even if outboxd has
 * not noticed yet and its state still says running), or when outboxd
 * recorded one. */
static void compute_lag(const log_status_t *log, sink_status_t *sinks, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sink_status_t *k = &sinks[i];
        int64_t from_ms;
        k->gap = strcmp(k->state, "gap") == 0;
        k->lag_events = k->lag_ms = -1;
        if (k->has_last && !k->in_log) {
            k->gap = true;
            continue;
        }
        if (k->has_last) {
            k->lag_events = log->events - k->index - 1;
            from_ms = k->created_ms;
        } else {
            /* (start): every event in the log is still to come. */
            k->lag_events = log->events;
            from_ms = log->oldest_ms;
        }
        if (k->lag_events == 0)
            k->lag_ms = 0;
        else if (from_ms >= 0 && log->newest_ms >= 0)
            /* Producers' clocks disagree: a later event may say earlier. */
            k->lag_ms = log->newest_ms > from_ms ? log->newest_ms - from_ms : 0;
    }
}

/* Whether name is one outboxd writes: [a-z][a-z0-9_]*, at most 64 bytes.
 * The document is anyone's with write access to the database: another name
 * is not printed. */
static bool stat_name_ok(const char *name) {
    size_t i = 0;
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    for (i = 1; name[i]; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
            return false;
    return i <= 64;
}

/* A figure as JSON: the shortest of %.15g and %.17g that reads back the
 * same (42, 0.5, 1e+21), null for NaN and the infinities (JSON has none). */
static void stat_number(FILE *f, double v) {
    char text[40];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    snprintf(text, sizeof text, "%.15g", v);
    if (strtod(text, NULL) != v)
        snprintf(text, sizeof text, "%.17g", v);
    fputs(text, f);
}

/* Calls fn for each figure of the sink's plugin_stats that outboxctl
 * shows: a number under a valid name. */
static void each_stat(const sink_status_t *k, void (*fn)(void *ctx, const char *name, double value, bool first),
                      void *ctx) {
    bson_iter_t it;
    bool first = true;
    if (!k->plugin_stats || !bson_iter_init(&it, k->plugin_stats))
        return;
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_NUMBER(&it) || !stat_name_ok(bson_iter_key(&it)))
            continue;
        fn(ctx, bson_iter_key(&it), bson_iter_as_double(&it), first);
        first = false;
    }
}

static void stat_json(void *ctx, const char *name, double value, bool first) {
    (void)ctx;
    fputs(first ? "" : ",", stdout);
    json_string(stdout, name);
    fputc(':', stdout);
    stat_number(stdout, value);
}

/* owner, term, lease_age_ms, lease_state of a lease (docs/leases.md 5):
 * owner null when nobody holds it (no claim, or released); term null only
 * without a claim. */
static void lease_json(const lease_view_t *v) {
    fputs(",\"owner\":", stdout);
    if (v->claimed && !v->released)
        json_string(stdout, v->owner);
    else
        fputs("null", stdout);
    if (v->claimed)
        printf(",\"term\":%lld", (long long)v->term);
    else
        fputs(",\"term\":null", stdout);
    if (v->claimed && v->age_ms >= 0)
        printf(",\"lease_age_ms\":%lld", (long long)v->age_ms);
    else
        fputs(",\"lease_age_ms\":null", stdout);
    fputs(",\"lease_state\":", stdout);
    if (v->state)
        json_string(stdout, v->state);
    else
        fputs("null", stdout);
}

#define MAX_INSTANCES 256

/* How long ago ms was on the server's clock (leases' now_ms), never below 0. */
static double age_seconds(const leases_t *leases, int64_t ms) {
    return leases->now_ms > ms ? (double)(leases->now_ms - ms) / 1000.0 : 0.0;
}

static void print_status_json(const store_t *s, const log_status_t *log, const sink_status_t *sinks,
                              size_t n, bool any_gap, const leases_t *leases, double warn) {
    char hex[25], iso[40];
    fputs("{\"db\":", stdout);
    json_string(stdout, s->db);
    fputs(",\"outbox\":", stdout);
    json_string(stdout, s->name);
    printf(",\"gap\":%s,\"log\":{\"events\":%lld", any_gap ? "true" : "false", (long long)log->events);
    const char *which[2] = {"oldest", "newest"};
    const bson_oid_t *ids[2] = {&log->oldest, &log->newest};
    int64_t created[2] = {log->oldest_ms, log->newest_ms};
    for (int j = 0; j < 2; j++) {
        if (log->events == 0) {
            printf(",\"%s\":null", which[j]);
            continue;
        }
        bson_oid_to_string(ids[j], hex);
        printf(",\"%s\":{\"id\":\"%s\",\"created\":", which[j], hex);
        if (created[j] >= 0) {
            format_iso(created[j], iso, sizeof iso);
            printf("\"%s\"}", iso);
        } else {
            fputs("null}", stdout);
        }
    }
    fputs(",\"capacity\":", stdout);
    if (log->capacity_known) {
        printf("{\"bytes\":%lld,\"events\":", (long long)log->cap_bytes);
        if (log->cap_events > 0)
            printf("%lld", (long long)log->cap_events);
        else
            fputs("null", stdout);
        fputs(",\"avg_event_bytes\":", stdout);
        if (log->avg_obj_bytes > 0)
            stat_number(stdout, log->avg_obj_bytes);
        else
            fputs("null", stdout);
        fputc('}', stdout);
    } else {
        fputs("null", stdout);
    }
    printf(",\"pending\":{\"events\":%lld,\"oldest_age_seconds\":", (long long)log->pending_events);
    if (log->pending_oldest_ms >= 0)
        printf("%.3f}", age_seconds(leases, log->pending_oldest_ms));
    else
        fputs("null}", stdout);
    printf(",\"quarantine\":{\"events\":%lld,\"newest_age_seconds\":", (long long)log->quarantined);
    if (log->quarantined_newest_ms >= 0)
        printf("%.3f", age_seconds(leases, log->quarantined_newest_ms));
    else
        fputs("null", stdout);
    fputs(",\"newest_reason\":", stdout);
    if (log->quarantined_reason[0])
        json_string(stdout, log->quarantined_reason);
    else
        fputs("null", stdout);
    fputc('}', stdout);
    fputs("},\"warn_headroom\":", stdout);
    stat_number(stdout, warn);
    fputs(",\"sinks\":[", stdout);
    for (size_t i = 0; i < n; i++) {
        const sink_status_t *k = &sinks[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        json_string(stdout, k->name);
        fputs(",\"state\":", stdout);
        json_string(stdout, k->gap ? "gap" : k->state);
        printf(",\"gap\":%s,\"checkpoint\":", k->gap ? "true" : "false");
        if (k->has_last) {
            bson_oid_to_string(&k->last_id, hex);
            printf("\"%s\"", hex);
        } else {
            fputs("null", stdout);
        }
        if (k->lag_events >= 0)
            printf(",\"lag_events\":%lld", (long long)k->lag_events);
        else
            fputs(",\"lag_events\":null", stdout);
        if (k->lag_ms >= 0)
            printf(",\"lag_seconds\":%.3f", (double)k->lag_ms / 1000.0);
        else
            fputs(",\"lag_seconds\":null", stdout);
        fputs(",\"headroom\":", stdout);
        if (k->headroom >= 0) {
            stat_number(stdout, k->headroom);
            printf(",\"headroom_low\":%s", k->headroom_low ? "true" : "false");
        } else {
            fputs("null,\"headroom_low\":null", stdout);
        }
        printf(",\"events\":%lld,\"malformed\":%lld,\"last_malformed\":", (long long)k->events,
               (long long)k->malformed);
        if (k->last_malformed)
            json_string(stdout, k->last_malformed);
        else
            fputs("null", stdout);
        fputs(",\"updated\":", stdout);
        if (k->updated_ms >= 0) {
            format_iso(k->updated_ms, iso, sizeof iso);
            printf("\"%s\"", iso);
        } else {
            fputs("null", stdout);
        }
        fputs(",\"message\":", stdout);
        json_string(stdout, k->message);
        fputs(",\"plugin_stats\":", stdout);
        if (k->plugin_stats) {
            fputc('{', stdout);
            each_stat(k, stat_json, NULL);
            fputc('}', stdout);
        } else {
            fputs("null", stdout);
        }
        lease_json(&k->lease);
        fputc('}', stdout);
    }
    fputs("],\"instances\":[", stdout);
    const lease_entry_t *live[MAX_INSTANCES];
    size_t n_live = leases_instances(leases, live, MAX_INSTANCES);
    for (size_t i = 0; i < n_live; i++) {
        fputs(i ? ",{\"instance\":" : "{\"instance\":", stdout);
        json_string(stdout, live[i]->doc.owner);
        fputs(",\"run\":", stdout);
        json_string(stdout, live[i]->doc.run);
        int64_t age = leases->now_ms - live[i]->doc.renewed_ms;
        printf(",\"sinks_held\":%lld,\"age_ms\":%lld}", (long long)live[i]->doc.sinks_held, (long long)(age > 0 ? age : 0));
    }
    fputs("],\"promoter\":", stdout);
    lease_view_t promoter;
    leases_promoter(leases, &promoter);
    if (promoter.claimed) {
        fputs("{\"lease\":\"promoter\"", stdout);
        lease_json(&promoter);
        fputc('}', stdout);
    } else {
        fputs("null", stdout);
    }
    fputs("}\n", stdout);
}

/* The text line of a sink's figures: "NAME=VALUE, ..." cut with ", ..."
 * after about STATS_LINE_MAX bytes, so that it stays one short line. */
#define STATS_LINE_MAX 160
typedef struct {
    char text[STATS_LINE_MAX + 80];
    size_t len;
    bool cut;
} stats_line_t;

static void stat_text(void *ctx, const char *name, double value, bool first) {
    stats_line_t *l = ctx;
    char number[40];
    if (l->cut)
        return;
    if (l->len >= STATS_LINE_MAX) {
        snprintf(l->text + l->len, sizeof l->text - l->len, ", ...");
        l->cut = true;
        return;
    }
    if (!isfinite(value))
        snprintf(number, sizeof number, "%s", isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
    else if (snprintf(number, sizeof number, "%.15g", value), strtod(number, NULL) != value)
        snprintf(number, sizeof number, "%.17g", value);
    int w = snprintf(l->text + l->len, sizeof l->text - l->len, "%s%s=%s", first ? "" : ", ", name, number);
    if (w > 0)
        l->len += (size_t)w < sizeof l->text - l->len ? (size_t)w : sizeof l->text - l->len - 1;
}

/* The text table: one row per sink, columns padded to line up. A cell
 * holds a sink name or an instance id (64 bytes) whole. */
#define CELL 80
/* Columns added later go before MESSAGE, so that those before keep their
 * places for whoever reads them by position. */
enum { COL_SINK, COL_STATE, COL_CHECKPOINT, COL_LAG, COL_LAG_S, COL_EVENTS, COL_MALFORMED, COL_UPDATED,
       COL_OWNER, COL_TERM, COL_LEASE, COL_HEADROOM, COL_WARN, COL_MESSAGE, N_COLS };

/* A lease's age for the text table: "2.1s", "14.2s stale", "released", or
 * "-" with no claim. */
static void lease_cell(const lease_view_t *v, char *out, size_t size) {
    if (!v->claimed)
        snprintf(out, size, "-");
    else if (v->released)
        snprintf(out, size, "released");
    else if (v->age_ms < 0)
        snprintf(out, size, "?");
    else
        snprintf(out, size, "%.1fs%s", (double)v->age_ms / 1000.0, strcmp(v->state, "stale") == 0 ? " stale" : "");
}

static void status_row(const sink_status_t *k, char cells[N_COLS][CELL]) {
    snprintf(cells[COL_SINK], CELL, "%s", k->name);
    snprintf(cells[COL_STATE], CELL, "%s", k->gap ? "gap" : k->state);
    if (k->has_last)
        bson_oid_to_string(&k->last_id, cells[COL_CHECKPOINT]);
    else
        snprintf(cells[COL_CHECKPOINT], CELL, "(start)");
    if (k->lag_events >= 0)
        snprintf(cells[COL_LAG], CELL, "%lld", (long long)k->lag_events);
    else
        snprintf(cells[COL_LAG], CELL, "gap");
    if (k->lag_ms >= 0)
        snprintf(cells[COL_LAG_S], CELL, "%.3f", (double)k->lag_ms / 1000.0);
    else
        snprintf(cells[COL_LAG_S], CELL, "-");
    /* Two decimals rounded down, so that a LOW sink never shows the
     * threshold itself (0.199 as 0.20) and 1.00 means nothing waits. */
    if (k->headroom >= 0)
        snprintf(cells[COL_HEADROOM], CELL, "%.2f", floor(k->headroom * 100.0) / 100.0);
    else
        snprintf(cells[COL_HEADROOM], CELL, "-");
    snprintf(cells[COL_WARN], CELL, "%s", k->headroom_low ? "LOW" : "-");
    snprintf(cells[COL_EVENTS], CELL, "%lld", (long long)k->events);
    snprintf(cells[COL_MALFORMED], CELL, "%lld", (long long)k->malformed);
    if (k->updated_ms >= 0)
        format_iso(k->updated_ms, cells[COL_UPDATED], CELL);
    else
        snprintf(cells[COL_UPDATED], CELL, "-");
    if (k->lease.claimed && !k->lease.released)
        lease_text(cells[COL_OWNER], CELL, k->lease.owner);
    else
        snprintf(cells[COL_OWNER], CELL, "-");
    if (k->lease.claimed)
        snprintf(cells[COL_TERM], CELL, "%lld", (long long)k->lease.term);
    else
        snprintf(cells[COL_TERM], CELL, "-");
    lease_cell(&k->lease, cells[COL_LEASE], CELL);
    cells[COL_MESSAGE][0] = '\0'; /* printed whole, from k->message */
}

/* The promoter's lease and the live outboxd runs, when N.leases has
 * anything (HA on): "promoter: node-a, term 3, renewed 0.4s ago". */
static void print_leases_text(const leases_t *leases) {
    char owner[80], run[120];
    lease_view_t p;
    if (leases->n == 0)
        return;
    leases_promoter(leases, &p);
    lease_text(owner, sizeof owner, p.owner);
    if (!p.claimed)
        printf("promoter: no claim\n");
    else if (p.released)
        printf("promoter: released (term %lld, by %s)\n", (long long)p.term, owner);
    else
        printf("promoter: %s, term %lld, renewed %.1fs ago%s\n", owner, (long long)p.term,
               (double)(p.age_ms > 0 ? p.age_ms : 0) / 1000.0, strcmp(p.state, "stale") == 0 ? " (stale)" : "");
    const lease_entry_t *live[MAX_INSTANCES];
    size_t n_live = leases_instances(leases, live, MAX_INSTANCES);
    printf("instances: %zu live\n", n_live);
    for (size_t i = 0; i < n_live; i++) {
        lease_text(owner, sizeof owner, live[i]->doc.owner);
        lease_text(run, sizeof run, live[i]->doc.run);
        int64_t age = leases->now_ms - live[i]->doc.renewed_ms;
        printf("  %s (run %s): %lld sink%s held, renewed %.1fs ago\n", owner, run, (long long)live[i]->doc.sinks_held,
               live[i]->doc.sinks_held == 1 ? "" : "s", (double)(age > 0 ? age : 0) / 1000.0);
    }
}

static void print_status_text(const store_t *s, const log_status_t *log, const sink_status_t *sinks,
                              size_t n, const leases_t *leases, double warn) {
    static const char *const heads[N_COLS] = {"SINK", "STATE", "CHECKPOINT", "LAG", "LAG_S", "EVENTS",
                                              "MALFORMED", "UPDATED", "OWNER", "TERM", "LEASE", "HEADROOM",
                                              "WARN", "MESSAGE"};
    /* Numbers are right-aligned, text left-aligned. */
    static const bool right[N_COLS] = {[COL_LAG] = true, [COL_LAG_S] = true, [COL_HEADROOM] = true,
                                       [COL_EVENTS] = true, [COL_MALFORMED] = true, [COL_TERM] = true};
    char hex[25], iso[40];
    printf("log %s.%s: %lld events", s->db, s->name, (long long)log->events);
    if (log->events > 0) {
        bson_oid_to_string(&log->oldest, hex);
        format_iso(log->oldest_ms >= 0 ? log->oldest_ms : 0, iso, sizeof iso);
        printf(", oldest %s %s", hex, log->oldest_ms >= 0 ? iso : "(no created)");
        bson_oid_to_string(&log->newest, hex);
        format_iso(log->newest_ms >= 0 ? log->newest_ms : 0, iso, sizeof iso);
        printf(", newest %s %s", hex, log->newest_ms >= 0 ? iso : "(no created)");
    }
    putchar('\n');
    if (log->capacity_known) {
        printf("log capacity: %lld bytes", (long long)log->cap_bytes);
        if (log->cap_events > 0)
            printf(" or %lld events", (long long)log->cap_events);
        if (log->avg_obj_bytes > 0)
            printf(", %.0f bytes per event on average", log->avg_obj_bytes);
        printf("; HEADROOM is LOW below %g\n", warn);
    }
    printf("pending %s.%s.pending: %lld event%s", s->db, s->name, (long long)log->pending_events,
           log->pending_events == 1 ? "" : "s");
    if (log->pending_oldest_ms >= 0)
        printf(", the oldest put %.1fs ago", age_seconds(leases, log->pending_oldest_ms));
    putchar('\n');
    if (log->quarantined > 0) {
        printf("QUARANTINED %s.%s.quarantine: %lld pending document%s the promoter could not promote", s->db,
               s->name, (long long)log->quarantined, log->quarantined == 1 ? "" : "s");
        if (log->quarantined_newest_ms >= 0)
            printf("; the newest %.1fs ago: %s", age_seconds(leases, log->quarantined_newest_ms),
                   log->quarantined_reason);
        putchar('\n');
    }
    if (n == 0) {
        printf("no sinks: %s.%s is empty\n", s->db, s->checkpoints_name);
        print_leases_text(leases);
        return;
    }
    size_t width[N_COLS];
    char(*cells)[N_COLS][CELL] = bson_malloc(n * sizeof *cells);
    for (int c = 0; c < N_COLS; c++)
        width[c] = strlen(heads[c]);
    for (size_t i = 0; i < n; i++) {
        status_row(&sinks[i], cells[i]);
        for (int c = 0; c < COL_MESSAGE; c++)
            if (strlen(cells[i][c]) > width[c])
                width[c] = strlen(cells[i][c]);
    }
    for (size_t i = 0; i <= n; i++) {
        for (int c = 0; c < N_COLS; c++) {
            const char *cell = i == 0 ? heads[c] : c == COL_MESSAGE ? sinks[i - 1].message : cells[i - 1][c];
            if (c == COL_MESSAGE) {
                printf("%s", cell);
                /* Where the malformed count comes from, unless the state
                 * message already says it (a sink stopped by one). */
                const sink_status_t *k = i ? &sinks[i - 1] : NULL;
                if (k && k->malformed > 0 && k->last_malformed && !strstr(k->message, k->last_malformed))
                    printf("%slast malformed: %s", k->message[0] ? "; " : "", k->last_malformed);
            }
            else
                printf(right[c] ? "%*s  " : "%-*s  ", (int)width[c], cell);
        }
        putchar('\n');
    }
    bson_free(cells);
    /* Then one line per sink whose plugin reports figures. */
    for (size_t i = 0; i < n; i++) {
        stats_line_t line = {.len = 0};
        line.text[0] = '\0';
        each_stat(&sinks[i], stat_text, &line);
        if (line.len)
            printf("plugin stats of %s: %s\n", sinks[i].name, line.text);
    }
    print_leases_text(leases);
}

/* status: where each sink of outboxd is, and how far behind. */
int cmd_status(const options_t *o) {
    store_t s;
    log_status_t log;
    sink_status_t *sinks = NULL;
    size_t n = 0;
    int status = store_open(o, &s);
    if (status)
        return status;
    if ((status = require_log(&s)) != 0) {
        store_close(&s);
        return status;
    }
    if (!read_checkpoints(&s, &sinks, &n)) {
        store_close(&s);
        return EXIT_FAILURE;
    }
    leases_t leases;
    if (leases_read(&s, &leases) != 0) {
        free_sinks(sinks, n);
        store_close(&s);
        return EXIT_FAILURE;
    }
    for (size_t i = 0; i < n; i++)
        leases_sink(&leases, sinks[i].name, &sinks[i].lease);
    if (!walk_log(&s, &log, sinks, n) || !lookup_created(&s, &log, sinks, n) || !read_pending(&s, &log) ||
        !read_quarantine(&s, &log)) {
        status = EXIT_FAILURE;
    } else {
        bool any_gap = false;
        read_capacity(&s, &log);
        compute_lag(&log, sinks, n);
        compute_headroom(&log, sinks, n, o->warn_headroom);
        for (size_t i = 0; i < n; i++)
            any_gap |= sinks[i].gap;
        if (o->json)
            print_status_json(&s, &log, sinks, n, any_gap, &leases, o->warn_headroom);
        else
            print_status_text(&s, &log, sinks, n, &leases, o->warn_headroom);
        status = any_gap ? EXIT_GAP : 0;
    }
    leases_free(&leases);
    free_sinks(sinks, n);
    store_close(&s);
    return status;
}

