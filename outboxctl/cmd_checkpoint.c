/*
 * cmd_checkpoint.c - outboxctl checkpoint set|reset: moving a sink's
 * position. Without leases (outboxd's ha.enabled false, or never run with
 * HA) outboxd must be stopped first: it writes its own position over the
 * checkpoint as it runs. With leases (docs/leases.md section 5) outboxctl
 * takes the sink's lease first: it inserts the next claim in N.leases and
 * stamps that term into the checkpoint it writes, so the running holder's
 * next write is fenced (it stops the sink), and whoever takes the lease
 * after outboxctl's claim expires resumes from the operator's position.
 */
#include "outboxctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* "ID", "(start)" for a null last_id, "(none)" when there was no document. */
static void describe_last(const bson_t *doc, char *out, size_t size) {
    bson_oid_t id;
    if (!doc)
        snprintf(out, size, "(none)");
    else if (doc_oid(doc, "last_id", &id))
        bson_oid_to_string(&id, out);
    else
        snprintf(out, size, "(start)");
}

/* Prints the known sinks after an unknown one, as a hint for typos. */
static void print_known_sinks(store_t *s) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->checkpoints, &filter, opts, NULL);
    int n = 0;
    fprintf(stderr, "outboxctl: known sinks:");
    while (mongoc_cursor_next(cur, &doc)) {
        const char *name = doc_utf8(doc, "_id");
        if (name)
            fprintf(stderr, "%s %s", n++ ? "," : "", name);
    }
    if (mongoc_cursor_error(cur, &berr))
        fprintf(stderr, " (cannot read them: %s)", berr.message);
    else if (n == 0)
        fprintf(stderr, " none (%s.%s is empty)", s->db, s->checkpoints_name);
    fputc('\n', stderr);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
}

/* The term in sink's checkpoint document: -1 when it has none, -3 when
 * there is no document, -2 on a server error (after a message). */
static int64_t checkpoint_term(store_t *s, const char *sink) {
    bson_error_t berr;
    const bson_t *doc;
    bson_iter_t it;
    int64_t term = -3;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->checkpoints, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc))
        term = bson_iter_init_find(&it, doc, "term") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->checkpoints_name, berr.message);
        term = -2;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    return term;
}

/* Takes sink's lease for outboxctl when outboxd uses leases for it: inserts
 * the claim of the next term (never renewed, so it expires after the
 * holder's TTL and a standby takes the next one). *term is -1 when the sink
 * has no claim (no fence: outboxd must be stopped, as before HA). 0 or an
 * exit status after a message. */
static int claim_for_outboxctl(store_t *s, const char *sink, bool upsert, int64_t *term, lease_view_t *was) {
    char lease[256], name[320], host[256] = "", run_id[320];
    *term = -1;
    outboxd_lease_name_for_sink(lease, sizeof lease, sink);
    snprintf(name, sizeof name, "%s%s", s->name, OUTBOXD_LEASES_SUFFIX);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    snprintf(run_id, sizeof run_id, "outboxctl:%s:%ld", host, (long)getpid());
    /* Another claim of the same term (a standby's, at this very moment)
     * wins the insert: read again and take the next. */
    for (int attempt = 0; attempt < 5; attempt++) {
        leases_t l;
        int status = leases_read(s, &l);
        if (status)
            return status;
        leases_sink(&l, sink, was);
        leases_free(&l);
        if (!was->claimed)
            return 0;
        int64_t cp_term = checkpoint_term(s, sink);
        if (cp_term == -2)
            return EXIT_FAILURE;
        if (cp_term == -3 && !upsert)
            return 0; /* refused below, without taking the lease from its holder */
        /* Above the checkpoint's term too (a restored checkpoint can be
         * ahead of every claim), so that the write below is not fenced. */
        int64_t next = (was->term > cp_term ? was->term : cp_term) + 1;
        bson_t doc;
        bson_error_t berr;
        outboxd_lease_claim_id(&doc, lease, next);
        BSON_APPEND_UTF8(&doc, "owner", "outboxctl");
        BSON_APPEND_UTF8(&doc, "run", run_id);
        BSON_APPEND_UTF8(&doc, "host", host);
        BSON_APPEND_INT32(&doc, "pid", (int32_t)getpid());
        BSON_APPEND_INT64(&doc, "ttl_ms", was->ttl_ms);
        BSON_APPEND_INT64(&doc, "renew_ms", was->renew_ms);
        BSON_APPEND_INT64(&doc, "renewals", 0);
        BSON_APPEND_DATE_TIME(&doc, "acquired", now_ms());
        BSON_APPEND_DATE_TIME(&doc, "renewed", now_ms());
        BSON_APPEND_BOOL(&doc, "released", false);
        mongoc_write_concern_t *wc = mongoc_write_concern_new();
        mongoc_write_concern_set_wmajority(wc, 0);
        bson_t opts = BSON_INITIALIZER;
        mongoc_write_concern_append(wc, &opts);
        mongoc_collection_t *coll = mongoc_client_get_collection(s->client, s->db, name);
        bool ok = mongoc_collection_insert_one(coll, &doc, &opts, NULL, &berr);
        mongoc_collection_destroy(coll);
        bson_destroy(&opts);
        mongoc_write_concern_destroy(wc);
        bson_destroy(&doc);
        if (ok) {
            *term = next;
            return 0;
        }
        if (berr.code != 11000) {
            fprintf(stderr, "outboxctl: cannot claim the lease of sink %s in %s.%s: %s; checkpoint not changed\n",
                    sink, s->db, name, berr.message);
            return EXIT_FAILURE;
        }
    }
    fprintf(stderr, "outboxctl: the lease of sink %s kept changing hands; checkpoint not changed, try again\n",
            sink);
    return EXIT_FAILURE;
}

/* Moves one sink's checkpoint in a single findAndModify, which hands back
 * the document as it was, so "old -> new" is exactly what was replaced.
 * last_id NULL means (start). upsert creates a missing document (events
 * 0); without it a missing sink is refused. With a lease, the write is the
 * fenced claim of docs/leases.md section 3 at outboxctl's term. */
static int move_checkpoint(store_t *s, const char *sink, const bson_oid_t *last_id, const char *message,
                           bool upsert) {
    bson_error_t berr;
    bson_t reply, set;
    bson_iter_t it;
    int64_t term;
    lease_view_t was;
    int status = claim_for_outboxctl(s, sink, upsert, &term, &was);
    if (status)
        return status;
    bson_t *query = BCON_NEW("_id", BCON_UTF8(sink));
    if (term >= 0) {
        bson_t *fence = BCON_NEW("$or", "[", "{", "term", "{", "$lte", BCON_INT64(term), "}", "}", "{", "term", "{",
                                 "$exists", BCON_BOOL(false), "}", "}", "]");
        bson_concat(query, fence);
        bson_destroy(fence);
    }
    bson_t update = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    if (last_id)
        BSON_APPEND_OID(&set, "last_id", last_id);
    else
        BSON_APPEND_NULL(&set, "last_id");
    BSON_APPEND_UTF8(&set, "state", "running");
    /* The operator's position: the sink publishes everything after it,
     * whatever the destination holds (no recovery: docs/recovery.md). */
    BSON_APPEND_BOOL(&set, "in_doubt", false);
    BSON_APPEND_UTF8(&set, "message", message);
    BSON_APPEND_DATE_TIME(&set, "updated", now_ms());
    if (term >= 0) {
        BSON_APPEND_INT64(&set, "term", term);
        BSON_APPEND_UTF8(&set, "owner", "outboxctl");
        BSON_APPEND_DATE_TIME(&set, "claimed", now_ms());
    }
    bson_append_document_end(&update, &set);
    if (upsert) {
        /* events is kept as it is; a new document starts counting at 0. */
        bson_t *on_insert = BCON_NEW("events", BCON_INT64(0));
        BSON_APPEND_DOCUMENT(&update, "$setOnInsert", on_insert);
        bson_destroy(on_insert);
    }
    mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(fam, &update);
    mongoc_find_and_modify_opts_set_flags(fam, upsert ? MONGOC_FIND_AND_MODIFY_UPSERT
                                                      : MONGOC_FIND_AND_MODIFY_NONE);
    if (!mongoc_collection_find_and_modify_with_opts(s->checkpoints, query, fam, &reply, &berr)) {
        if (term >= 0 && berr.code == 11000) /* the upsert met a document with a higher term */
            fprintf(stderr, "outboxctl: the checkpoint of sink %s moved past term %lld meanwhile (another "
                            "instance claimed it); nothing changed, try again\n", sink, (long long)term);
        else
            fprintf(stderr, "outboxctl: cannot write the checkpoint of sink %s in %s.%s: %s\n", sink, s->db,
                    s->checkpoints_name, berr.message);
        status = EXIT_FAILURE;
    } else {
        bson_t old;
        bool had = false;
        if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            had = bson_init_static(&old, data, len);
        }
        int64_t now_term = !had && !upsert && term >= 0 ? checkpoint_term(s, sink) : -1;
        if (now_term > term) {
            fprintf(stderr, "outboxctl: the checkpoint of sink %s moved past term %lld meanwhile (term %lld: "
                            "another instance claimed it); nothing changed, try again\n", sink, (long long)term,
                    (long long)now_term);
            status = EXIT_FAILURE;
        } else if (!had && !upsert) {
            fprintf(stderr, "outboxctl: sink %s has no checkpoint in %s.%s; nothing changed (checkpoint set "
                            "--create makes one for a sink that has not run yet)\n", sink, s->db,
                    s->checkpoints_name);
            print_known_sinks(s);
            status = EXIT_FAILURE;
        } else {
            char old_last[25], new_last[25];
            const char *old_state = had ? doc_utf8(&old, "state") : NULL;
            describe_last(had ? &old : NULL, old_last, sizeof old_last);
            if (last_id)
                bson_oid_to_string(last_id, new_last);
            else
                snprintf(new_last, sizeof new_last, "(start)");
            printf("sink %s: checkpoint %s -> %s, state %s -> running\n", sink, old_last, new_last,
                   old_state ? old_state : "(none)");
            if (term >= 0) {
                char owner[80];
                lease_text(owner, sizeof owner, was.owner);
                printf("sink %s: lease taken at term %lld for outboxctl (it was term %lld, %s%s): its outboxd stops "
                       "the sink at its next write or lease round; an instance resumes it from here once "
                       "outboxctl's claim expires (%lld ms)\n", sink, (long long)term, (long long)was.term,
                       was.released ? "released by " : "held by ", owner, (long long)was.ttl_ms);
            }
        }
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(fam);
    bson_destroy(&update);
    bson_destroy(query);
    return status;
}

/* Whether event id is in the log: a point lookup on the _id index. */
static int event_in_log(store_t *s, const bson_oid_t *id, bool *found) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t *filter = BCON_NEW("_id", BCON_OID(id));
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->log, filter, opts, NULL);
    *found = mongoc_cursor_next(cur, &doc);
    int status = 0;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->name, berr.message);
        status = EXIT_FAILURE;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    return status;
}

/* Where a replay from a point in time starts, found by walking the log in
 * natural order (the order outboxd publishes), never by comparing ids or
 * created times: neither is that order, and created is each producer's
 * clock, so it need not grow along the log. */
typedef struct {
    int64_t events;          /* in the log */
    bool any_created;        /* some event has a created date ... */
    bson_oid_t oldest;       /* ... the first in natural order, */
    int64_t oldest_ms;       /* with this created */
    bool found;              /* an event created at or after the time ... */
    bson_oid_t first;        /* ... the first such in natural order, */
    int64_t first_ms;        /* with this created, */
    bool has_before;         /* the event before it (else it is the oldest) */
    bson_oid_t before;
    int64_t replay;          /* events from first to the end of the log */
    bson_oid_t newest;
} replay_point_t;

static int find_replay_point(store_t *s, int64_t at_ms, replay_point_t *rp) {
    bson_error_t berr;
    const bson_t *doc;
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "created", BCON_INT32(1), "}", "sort", "{",
                            "$natural", BCON_INT32(1), "}", "batchSize", BCON_INT32(100000));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->log, &filter, opts, NULL);
    memset(rp, 0, sizeof *rp);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_oid_t id;
        if (!doc_oid(doc, "_id", &id))
            continue; /* not a position: readers pass it, and so does this walk */
        int64_t created = doc_date(doc, "created");
        if (!rp->any_created && created >= 0) {
            rp->any_created = true;
            bson_oid_copy(&id, &rp->oldest);
            rp->oldest_ms = created;
        }
        if (!rp->found && created >= 0 && created >= at_ms) {
            rp->found = true;
            bson_oid_copy(&id, &rp->first);
            rp->first_ms = created;
            rp->has_before = rp->events > 0;
            if (rp->has_before)
                bson_oid_copy(&rp->newest, &rp->before);
        }
        rp->replay += rp->found;
        bson_oid_copy(&id, &rp->newest);
        rp->events++;
    }
    int status = 0;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->name, berr.message);
        status = EXIT_FAILURE;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    return status;
}

/* checkpoint set SINK --time T: the checkpoint becomes the event just
 * before the first event (in natural order) created at or after T, so the
 * sink republishes every event created at or after T (and the events
 * created earlier that come after that one in the log, from producers
 * whose clocks lag). Refused when T is older than the oldest event: the
 * events of that time were overwritten, and the replay would miss them. */
static int set_from_time(store_t *s, const char *sink, const char *arg, int64_t at_ms, bool create) {
    replay_point_t rp;
    char at[40], when[40], hex[25], message[96];
    int status = find_replay_point(s, at_ms, &rp);
    if (status)
        return status;
    format_iso(at_ms, at, sizeof at);
    if (rp.events > 0 && !rp.any_created) {
        fprintf(stderr, "outboxctl: --time %s: no event in the log %s.%s has a created date; checkpoint of "
                        "sink %s not changed\n", arg, s->db, s->name, sink);
        return EXIT_FAILURE;
    }
    if (rp.any_created && at_ms < rp.oldest_ms) {
        bson_oid_to_string(&rp.oldest, hex);
        format_iso(rp.oldest_ms, when, sizeof when);
        fprintf(stderr, "outboxctl: --time %s is older than the oldest event in the log %s.%s (%s, created %s): "
                        "events created between the two may have been overwritten by the capped log, and a replay "
                        "could not republish them; checkpoint of sink %s not changed (checkpoint reset %s "
                        "replays from the oldest event)\n",
                arg, s->db, s->name, hex, when, sink, sink);
        return EXIT_FAILURE;
    }
    /* An empty log or a first event at or after T: (start). No event at
     * or after T: the newest event, so nothing is republished. */
    const bson_oid_t *to = rp.found ? (rp.has_before ? &rp.before : NULL) : rp.events ? &rp.newest : NULL;
    snprintf(message, sizeof message, "set by outboxctl --time %s", at);
    if ((status = move_checkpoint(s, sink, to, message, create)) != 0)
        return status;
    if (rp.found) {
        bson_oid_to_string(&rp.first, hex);
        format_iso(rp.first_ms, when, sizeof when);
        printf("sink %s: replays from %s: %lld event%s to republish, from event %s (created %s), the first in "
               "the log's order created at or after it\n", sink, at, (long long)rp.replay,
               rp.replay == 1 ? "" : "s", hex, when);
    } else if (rp.events > 0) {
        printf("sink %s: every event in the log was created before %s: checkpoint at the newest event, "
               "nothing to republish\n", sink, at);
    } else {
        printf("sink %s: the log is empty: checkpoint (start), nothing to republish\n", sink);
    }
    return 0;
}

/* checkpoint set SINK ID | checkpoint set SINK --time T | checkpoint reset
 * SINK: moves a sink's position, typically to restart a sink stopped at a
 * gap, or to replay from a point in time. */
int cmd_checkpoint(const options_t *o, char **args, int n) {
    store_t s;
    bson_oid_t id;
    int64_t at_ms = 0;
    bool set = n == (o->time ? 2 : 3) && strcmp(args[0], "set") == 0;
    if (o->time && n == 3 && strcmp(args[0], "set") == 0) {
        fprintf(stderr, "outboxctl: checkpoint set: give an event ID or --time, not both\n");
        return EXIT_USAGE;
    }
    if (o->create && !set) {
        fprintf(stderr, "outboxctl: --create goes with checkpoint set only\n");
        return EXIT_USAGE;
    }
    if (o->time && !set) {
        fprintf(stderr, "outboxctl: --time goes with checkpoint set SINK only\n");
        return EXIT_USAGE;
    }
    bool reset = n == 2 && strcmp(args[0], "reset") == 0 && !o->time;
    if (!set && !reset) {
        fprintf(stderr, "outboxctl: expected checkpoint set SINK ID, checkpoint set SINK --time ISO-8601 or "
                        "checkpoint reset SINK\n");
        return EXIT_USAGE;
    }
    if (set && o->time && !parse_iso_time(o->time, &at_ms)) {
        fprintf(stderr, "outboxctl: --time %s: not an ISO-8601 time with a zone (2026-12-05T10:00:00Z, "
                        "2026-12-05T10:00:00.123Z, 2026-12-05T11:00:00+01:00)\n", o->time);
        return EXIT_USAGE;
    }
    if (set && !o->time) {
        if (!bson_oid_is_valid(args[2], strlen(args[2]))) {
            fprintf(stderr, "outboxctl: checkpoint set: %s: not an event id (24 hex digits)\n", args[2]);
            return EXIT_USAGE;
        }
        bson_oid_init_from_string(&id, args[2]);
    }
    int status = store_open(o, &s);
    if (status)
        return status;
    if (set && o->time) {
        status = set_from_time(&s, args[1], o->time, at_ms, o->create);
    } else if (set) {
        bool found;
        if ((status = event_in_log(&s, &id, &found)) == 0 && !found) {
            fprintf(stderr, "outboxctl: event %s is not in the log %s.%s; checkpoint of sink %s not changed\n",
                    args[2], s.db, s.name, args[1]);
            status = EXIT_FAILURE;
        }
        /* Only a sink that has a checkpoint already, unless --create: a
         * typo in the name would otherwise make a checkpoint for a sink
         * that does not exist and leave the real one where it was. */
        if (status == 0)
            status = move_checkpoint(&s, args[1], &id, "set by outboxctl", o->create);
    } else {
        status = move_checkpoint(&s, args[1], NULL, "reset by outboxctl", false);
    }
    store_close(&s);
    return status;
}
