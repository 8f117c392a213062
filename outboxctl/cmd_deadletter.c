/*
 * cmd_deadletter.c - outboxctl deadletter list|retry.
 */
#include "outboxctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* The dead letters of sink (NULL: all) or the one with _id id (NULL: any),
 * oldest first, at most limit (< 0: no limit), with opts_extra's fields
 * (a projection) added to the find options. */
static mongoc_cursor_t *find_dead_letters(store_t *s, const char *sink, const bson_oid_t *id, int64_t limit,
                                          const bson_t *opts_extra) {
    bson_t filter = BSON_INITIALIZER;
    if (sink)
        BSON_APPEND_UTF8(&filter, "sink", sink);
    if (id)
        BSON_APPEND_OID(&filter, "_id", id);
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    if (limit >= 0)
        BSON_APPEND_INT64(opts, "limit", limit);
    if (opts_extra)
        bson_concat(opts, opts_extra);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(s->deadletter, &filter, opts, NULL);
    bson_destroy(opts);
    bson_destroy(&filter);
    return cur;
}

/* The stored envelope inside a dead letter, borrowed from it. */
static bool dead_letter_event(const bson_t *dl, bson_t *event) {
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, dl, "event") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(event, data, len);
}

/* deadletter list: one JSON object per dead letter. */
static int deadletter_list(store_t *s, const options_t *o) {
    bson_error_t berr;
    const bson_t *dl;
    if (o->limit == 0)
        return 0; /* the server reads limit 0 as no limit */
    mongoc_cursor_t *cur = find_dead_letters(s, o->sink, NULL, o->limit, NULL);
    while (mongoc_cursor_next(cur, &dl)) {
        char hex[25], iso[40];
        bson_oid_t id;
        bson_t out = BSON_INITIALIZER, event;
        bson_iter_t it;
        bool has_event = dead_letter_event(dl, &event);
        const char *v;
        /* A malformed document (outboxd's on_error: deadletter for what is
         * not an envelope) is shown by its reason only: its fields may be
         * anything, deeper than JSON can be printed; the raw document is
         * in the dead letter's event field. */
        bson_iter_t mf;
        bool malformed = bson_iter_init_find(&mf, dl, "malformed") && bson_iter_as_bool(&mf);
        if (malformed)
            has_event = false;
        if (doc_oid(dl, "_id", &id)) {
            bson_oid_to_string(&id, hex);
            BSON_APPEND_UTF8(&out, "id", hex);
        } else {
            BSON_APPEND_NULL(&out, "id");
        }
        if ((v = doc_utf8(dl, "sink")))
            BSON_APPEND_UTF8(&out, "sink", v);
        else
            BSON_APPEND_NULL(&out, "sink");
        if (doc_oid(dl, "event_id", &id)) {
            bson_oid_to_string(&id, hex);
            BSON_APPEND_UTF8(&out, "event_id", hex);
        } else {
            BSON_APPEND_NULL(&out, "event_id");
        }
        v = doc_utf8(dl, "error");
        BSON_APPEND_UTF8(&out, "error", v ? v : "");
        int64_t at = doc_date(dl, "at");
        if (at >= 0) {
            format_iso(at, iso, sizeof iso);
            BSON_APPEND_UTF8(&out, "at", iso);
        } else {
            BSON_APPEND_NULL(&out, "at");
        }
        if (has_event && (v = doc_utf8(&event, "type")))
            BSON_APPEND_UTF8(&out, "type", v);
        else
            BSON_APPEND_NULL(&out, "type");
        if (has_event && (v = doc_utf8(&event, "key")))
            BSON_APPEND_UTF8(&out, "key", v);
        else
            BSON_APPEND_NULL(&out, "key");
        if (has_event && bson_iter_init_find(&it, &event, "data"))
            bson_append_iter(&out, "data", -1, &it);
        else
            BSON_APPEND_NULL(&out, "data");
        if (malformed)
            BSON_APPEND_BOOL(&out, "malformed", true);
        char *line = bson_as_relaxed_extended_json(&out, NULL);
        printf("%s\n", line ? line : "{\"error\":\"this dead letter cannot be shown as JSON\"}");
        bson_free(line);
        bson_destroy(&out);
    }
    int status = 0;
    if (mongoc_cursor_error(cur, &berr)) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->deadletter_name, berr.message);
        status = EXIT_FAILURE;
    }
    mongoc_cursor_destroy(cur);
    return status;
}

/* The envelope that puts a dead-lettered event back into the log: a new
 * event (new _id, created now) with the same type, key, data and headers,
 * and header outbox-retry-of naming the original. False with why in errbuf
 * when the stored event is not a usable envelope. */
static bool retry_envelope(const bson_t *dl, bson_t *out, bson_oid_t *new_id, char *errbuf, size_t size) {
    bson_t event, headers;
    bson_iter_t it;
    bson_oid_t orig;
    char orig_hex[25];
    const char *type;
    if (!dead_letter_event(dl, &event)) {
        snprintf(errbuf, size, "it holds no event document");
        return false;
    }
    if (bson_iter_init_find(&it, dl, "malformed") && bson_iter_as_bool(&it)) {
        snprintf(errbuf, size, "it is a malformed document, not an event (%s); put a corrected event "
                 "with outboxctl put, then delete the dead letter", doc_utf8(dl, "error") ? doc_utf8(dl, "error") : "");
        return false;
    }
    if (!doc_oid(dl, "event_id", &orig) && !doc_oid(&event, "_id", &orig)) {
        snprintf(errbuf, size, "it names no event id");
        return false;
    }
    if (!(type = doc_utf8(&event, "type"))) {
        snprintf(errbuf, size, "its event has no type");
        return false;
    }
    if (!bson_iter_init_find(&it, &event, "data") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        snprintf(errbuf, size, "its event has no data document");
        return false;
    }
    bson_oid_to_string(&orig, orig_hex);
    bson_oid_init(new_id, NULL);
    bson_init(out);
    /* The field order liboutbox writes (docs/envelope.md). */
    BSON_APPEND_OID(out, "_id", new_id);
    BSON_APPEND_UTF8(out, "type", type);
    const char *key = doc_utf8(&event, "key");
    if (key)
        BSON_APPEND_UTF8(out, "key", key);
    else
        BSON_APPEND_NULL(out, "key");
    bson_append_iter(out, "data", -1, &it);
    BSON_APPEND_DATE_TIME(out, "created", now_ms());
    BSON_APPEND_DOCUMENT_BEGIN(out, "headers", &headers);
    if (bson_iter_init_find(&it, &event, "headers") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_t h;
        bson_iter_recurse(&it, &h);
        /* A retry of a retry names the event that failed this time. */
        while (bson_iter_next(&h))
            if (strcmp(bson_iter_key(&h), "outbox-retry-of") != 0)
                bson_append_iter(&headers, bson_iter_key(&h), -1, &h);
    }
    BSON_APPEND_UTF8(&headers, "outbox-retry-of", orig_hex);
    bson_append_document_end(out, &headers);
    BSON_APPEND_INT32(out, "v", OUTBOX_ENVELOPE_VERSION);
    return true;
}

/* Retries one dead letter: its event into the log as a new event, then
 * the dead letter deleted. Returns false, having said why, when it stays. */
static bool retry_one(store_t *s, const bson_t *dl, const bson_oid_t *dl_id) {
    bson_error_t berr;
    char errbuf[300], dl_hex[25], new_hex[25];
    bson_oid_t new_id;
    bson_t event;
    bson_oid_to_string(dl_id, dl_hex);
    if (!retry_envelope(dl, &event, &new_id, errbuf, sizeof errbuf)) {
        fprintf(stderr, "outboxctl: dead letter %s: %s; left as it is\n", dl_hex, errbuf);
        return false;
    }
    bson_oid_to_string(&new_id, new_hex);
    /* Insert, then delete: a crash between the two leaves the event both in
     * the log and in N.deadletter, so a later retry puts it once more (a
     * duplicate, which at-least-once sinks already expect), never a loss,
     * which the other order would risk. */
    bool inserted = mongoc_collection_insert_one(s->log, &event, NULL, NULL, &berr);
    bson_destroy(&event);
    if (!inserted) {
        fprintf(stderr, "outboxctl: dead letter %s: cannot put its event into %s.%s: %s; left as it is\n",
                dl_hex, s->db, s->name, berr.message);
        return false;
    }
    bson_t *filter = BCON_NEW("_id", BCON_OID(dl_id));
    bool deleted = mongoc_collection_delete_one(s->deadletter, filter, NULL, NULL, &berr);
    bson_destroy(filter);
    if (!deleted) {
        fprintf(stderr, "outboxctl: dead letter %s: retried as event %s, but cannot delete it from %s.%s: "
                        "%s; delete it, or a later retry puts the event again\n",
                dl_hex, new_hex, s->db, s->deadletter_name, berr.message);
        return false;
    }
    const char *sink = doc_utf8(dl, "sink");
    printf("dead letter %s (sink %s) retried as event %s\n", dl_hex, sink ? sink : "?", new_hex);
    return true;
}

/* deadletter retry: each selected dead letter becomes a new event at the
 * end of the log, then the dead letter is deleted. A failing one is
 * reported and left in place; the others go on. */
static int deadletter_retry(store_t *s, const options_t *o) {
    bson_error_t berr;
    bson_oid_t id;
    const bson_t *doc;
    long long retried = 0, failed = 0;
    if (o->id) {
        if (!bson_oid_is_valid(o->id, strlen(o->id))) {
            fprintf(stderr, "outboxctl: --id %s: not a dead letter id (24 hex digits)\n", o->id);
            return EXIT_USAGE;
        }
        bson_oid_init_from_string(&id, o->id);
    }
    int status = require_log(s);
    if (status)
        return status;

    /* The selection's ids first, then each dead letter by id: a retried
     * event that fails again becomes a new dead letter, and a cursor still
     * open on N.deadletter could hand it back to this run, over and over
     * while outboxd runs. Only ids are kept: dead letters hold whole events. */
    bson_oid_t *ids = NULL;
    size_t n = 0, cap = 0;
    bson_t *projection = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = find_dead_letters(s, o->sink, o->id ? &id : NULL, -1, projection);
    while (mongoc_cursor_next(cur, &doc)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = bson_realloc(ids, cap * sizeof *ids);
        }
        if (doc_oid(doc, "_id", &ids[n])) {
            n++;
        } else {
            /* outboxd's have ObjectIds; this one cannot be picked out. */
            fprintf(stderr, "outboxctl: a dead letter in %s.%s has no ObjectId _id; left as it is\n", s->db,
                    s->deadletter_name);
            failed++;
        }
    }
    bool read_ok = !mongoc_cursor_error(cur, &berr);
    mongoc_cursor_destroy(cur);
    bson_destroy(projection);
    if (!read_ok) {
        fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->deadletter_name, berr.message);
        bson_free(ids);
        return EXIT_FAILURE;
    }
    if (o->id && n == 0) {
        fprintf(stderr, "outboxctl: no dead letter %s%s%s in %s.%s\n", o->id, o->sink ? " of sink " : "",
                o->sink ? o->sink : "", s->db, s->deadletter_name);
        bson_free(ids);
        return EXIT_FAILURE;
    }

    for (size_t i = 0; i < n; i++) {
        cur = find_dead_letters(s, NULL, &ids[i], 1, NULL);
        if (mongoc_cursor_next(cur, &doc)) {
            if (retry_one(s, doc, &ids[i]))
                retried++;
            else
                failed++;
        } else if (mongoc_cursor_error(cur, &berr)) {
            fprintf(stderr, "outboxctl: cannot read %s.%s: %s\n", s->db, s->deadletter_name, berr.message);
            failed++;
        }
        /* else gone meanwhile: another retry took it; nothing to do. */
        mongoc_cursor_destroy(cur);
    }
    bson_free(ids);
    printf("%lld events retried\n", retried);
    if (failed)
        fprintf(stderr, "outboxctl: %lld dead letters not retried\n", failed);
    return failed ? EXIT_FAILURE : 0;
}

/* deadletter list | deadletter retry: the events sinks with on_error:
 * deadletter could not deliver. */
int cmd_deadletter(const options_t *o, char **args, int n) {
    store_t s;
    bool list = n == 1 && strcmp(args[0], "list") == 0;
    bool retry = n == 1 && strcmp(args[0], "retry") == 0;
    if (!list && !retry) {
        fprintf(stderr, "outboxctl: expected deadletter list or deadletter retry\n");
        return EXIT_USAGE;
    }
    int status = store_open(o, &s);
    if (status)
        return status;
    status = list ? deadletter_list(&s, o) : deadletter_retry(&s, o);
    store_close(&s);
    return status;
}

