/*
 * tail.c - reading the capped log in natural (insertion) order with a
 * tailable + awaitData cursor, and finding one's place again after the
 * cursor dies.
 *
 * Position is the _id of the last event returned, never a time: natural
 * order is neither _id order nor created order (producers' clocks differ,
 * and events share milliseconds), so "created > t" or "_id > x" would skip
 * or repeat events. To resume after an event the tail
 *   1. looks the event up by _id: absent means the log wrapped past it, a
 *      gap, reported as OUTBOX_ERR_GAP and never skipped over;
 *   2. walks the log's _ids (a projection: 12 bytes an event cross the
 *      network) in natural order to find the event's index k;
 *   3. opens the tailable cursor with skip k, so its first document must be
 *      that event again. If it is not, the log was trimmed between 2 and 3;
 *      the tail starts over from 1.
 * MongoDB offers no public way to start a tailable cursor at a record id,
 * so this is the one exact method; its cost is the walk of step 2, paid only
 * when a cursor is (re)opened. See docs/design.md.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 2000
#define MAX_REPOSITION 8

struct outbox_tail {
    outbox_t *ob;
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    mongoc_cursor_t *cursor;
    outbox_tail_from_t from;
    bool resolved_now;     /* FROM_NOW: the starting point was looked up */
    bool has_last;
    bson_oid_t last;       /* position: the last event returned */
    bool expect_first;     /* cursor opened with skip: first doc must be last */
    int repositions;
    bool gap;
    outbox_error_t gap_error;
    int64_t backoff_ms;
    int64_t reopen_at_us;  /* monotonic; 0 = now */
    int64_t extra;         /* documents without an ObjectId _id passed
                            * since last (they cannot be a position) */
    int64_t pass_over;     /* after a reopen: how many of those to pass
                            * over again without reporting them */
    const bson_t *malformed; /* the document of the last MALFORMED return */
    outbox_event_t event;
};

static int64_t now_us(void) {
    return bson_get_monotonic_time();
}

static void sleep_ms(int64_t ms) {
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

outbox_tail_t *outbox_tail_new(outbox_t *ob, outbox_tail_from_t from, const bson_oid_t *after,
                               outbox_error_t *error) {
    outbox__clear_error(error);
    if (!ob) {
        outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_tail_new: outbox is NULL");
        return NULL;
    }
    if (from != OUTBOX_TAIL_FROM_START && from != OUTBOX_TAIL_FROM_NOW && from != OUTBOX_TAIL_AFTER) {
        outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_tail_new: unknown starting point %d", (int)from);
        return NULL;
    }
    if (from == OUTBOX_TAIL_AFTER && !after) {
        outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_tail_new: OUTBOX_TAIL_AFTER needs an event id");
        return NULL;
    }
    outbox_tail_t *t = outbox__calloc_aligned(sizeof *t); /* embeds bson_t (the event) */
    t->ob = ob;
    t->from = from;
    if (from == OUTBOX_TAIL_AFTER) {
        t->has_last = true;
        bson_oid_copy(after, &t->last);
    }
    t->client = outbox__client_pop(ob);
    t->coll = mongoc_client_get_collection(t->client, ob->conf->database, ob->conf->outbox);
    t->backoff_ms = BACKOFF_MIN_MS;
    return t;
}

void outbox_tail_destroy(outbox_tail_t *t) {
    if (!t)
        return;
    if (t->cursor)
        mongoc_cursor_destroy(t->cursor);
    mongoc_collection_destroy(t->coll);
    outbox__client_push(t->ob, t->client);
    free(t);
}

const bson_t *outbox_tail_malformed_document(const outbox_tail_t *t) {
    return t ? t->malformed : NULL;
}

/* The _id of a document as short JSON, for naming a malformed document. */
static void describe_id(const bson_t *doc, char *out, size_t size) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id")) {
        snprintf(out, size, "no _id");
        return;
    }
    bson_t wrap = BSON_INITIALIZER;
    bson_append_value(&wrap, "_id", 3, bson_iter_value(&it));
    char *json = bson_as_relaxed_extended_json(&wrap, NULL);
    snprintf(out, size, "%s", json ? json : "{ \"_id\" : ? }");
    if (json && strlen(json) >= size && size > 4)
        memcpy(out + size - 4, "...", 4);
    bson_free(json);
    bson_destroy(&wrap);
}

bool outbox_tail_last_id(const outbox_tail_t *t, bson_oid_t *id_out) {
    if (!t || !t->has_last)
        return false;
    if (id_out)
        bson_oid_copy(&t->last, id_out);
    return true;
}

/* find() returning at most one document's _id (and created), in natural
 * order (dir 1) or reverse (dir -1), with an optional filter. */
static outbox_code_t find_one_id(outbox_tail_t *t, const bson_t *filter, int dir, bool *found,
                                 bson_oid_t *id, int64_t *created_ms, outbox_error_t *error) {
    bson_error_t berr;
    bson_t opts = BSON_INITIALIZER, sub, empty = BSON_INITIALIZER;
    const bson_t *doc;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "_id", 1);
    BSON_APPEND_INT32(&sub, "created", 1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "$natural", dir);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT64(&opts, "limit", 1);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(t->coll, filter ? filter : &empty, &opts, NULL);
    *found = false;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it)) {
            *found = true;
            bson_oid_copy(bson_iter_oid(&it), id);
        }
        if (created_ms)
            *created_ms = bson_iter_init_find(&it, doc, "created") && BSON_ITER_HOLDS_DATE_TIME(&it)
                              ? bson_iter_date_time(&it)
                              : -1;
    }
    outbox_code_t rc = OUTBOX_OK;
    if (mongoc_cursor_error(cur, &berr))
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", t->ob->conf->database, t->ob->conf->outbox);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&empty);
    return rc;
}

static void format_time(int64_t ms, char *out, size_t size) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The log no longer holds the event the tail must resume after. Say what is
 * known: the lost position, its time (from the ObjectId), and where the log
 * now starts. */
static outbox_code_t report_gap(outbox_tail_t *t, outbox_error_t *error) {
    char last_hex[25], oldest_hex[25], last_time[32], oldest_time[32];
    bool found;
    bson_oid_t oldest;
    int64_t oldest_created = -1;
    outbox_error_t sub;
    bson_oid_to_string(&t->last, last_hex);
    format_time((int64_t)bson_oid_get_time_t(&t->last) * 1000, last_time, sizeof last_time);
    if (find_one_id(t, NULL, 1, &found, &oldest, &oldest_created, &sub) != OUTBOX_OK)
        found = false;
    if (found) {
        bson_oid_to_string(&oldest, oldest_hex);
        format_time(oldest_created >= 0 ? oldest_created : (int64_t)bson_oid_get_time_t(&oldest) * 1000,
                    oldest_time, sizeof oldest_time);
    }
    outbox__fail(&t->gap_error, OUTBOX_ERR_GAP,
                 "gap in %s.%s: event %s (id time %s), after which this reader resumes, is no "
                 "longer in the capped log; %s%s%s%s: events after it were overwritten before "
                 "they were read",
                 t->ob->conf->database, t->ob->conf->outbox, last_hex, last_time,
                 found ? "the oldest event now is " : "the log is empty",
                 found ? oldest_hex : "", found ? " created " : "", found ? oldest_time : "");
    t->gap = true;
    if (error)
        *error = t->gap_error;
    return OUTBOX_ERR_GAP;
}

/* Step 2 of resuming: the natural-order index of t->last, walking _ids. */
static outbox_code_t find_index(outbox_tail_t *t, bool *found, int64_t *index, outbox_error_t *error) {
    bson_error_t berr;
    bson_t opts = BSON_INITIALIZER, sub, empty = BSON_INITIALIZER;
    const bson_t *doc;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "_id", 1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "$natural", 1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_INT32(&opts, "batchSize", 100000);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(t->coll, &empty, &opts, NULL);
    *found = false;
    *index = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it) &&
            bson_oid_equal(bson_iter_oid(&it), &t->last)) {
            *found = true;
            break;
        }
        (*index)++;
    }
    outbox_code_t rc = OUTBOX_OK;
    if (!*found && mongoc_cursor_error(cur, &berr))
        rc = outbox__fail_bson(error, &berr, "cannot read %s.%s", t->ob->conf->database, t->ob->conf->outbox);
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    bson_destroy(&empty);
    return rc;
}

static outbox_code_t open_cursor(outbox_tail_t *t, outbox_error_t *error) {
    outbox_code_t rc;
    bool found;
    int64_t skip = 0;

    if (t->from == OUTBOX_TAIL_FROM_NOW && !t->resolved_now && !t->has_last) {
        bson_oid_t newest;
        if ((rc = find_one_id(t, NULL, -1, &found, &newest, NULL, error)) != OUTBOX_OK)
            return rc;
        if (found) {
            t->has_last = true;
            bson_oid_copy(&newest, &t->last);
        }
        t->resolved_now = true;
    }
    if (t->has_last) {
        bson_t filter = BSON_INITIALIZER;
        bson_oid_t id;
        BSON_APPEND_OID(&filter, "_id", &t->last);
        rc = find_one_id(t, &filter, 1, &found, &id, NULL, error);
        bson_destroy(&filter);
        if (rc != OUTBOX_OK)
            return rc;
        if (!found)
            return report_gap(t, error);
        if ((rc = find_index(t, &found, &skip, error)) != OUTBOX_OK)
            return rc;
        if (!found) /* trimmed between the lookup and the walk */
            return report_gap(t, error);
    }

    /* Documents without an ObjectId _id right after last were reported
     * already: pass over them again. Without a last position they are
     * reported again (capped trimming could make a count from the start
     * skip real events, and a repeat is better than a loss). */
    if (t->has_last)
        t->pass_over = t->extra;
    else
        t->extra = t->pass_over = 0;

    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "tailable", true);
    BSON_APPEND_BOOL(&opts, "awaitData", true);
    BSON_APPEND_INT64(&opts, "maxAwaitTimeMS", t->ob->conf->await_ms);
    if (t->ob->conf->batch_size > 0)
        BSON_APPEND_INT32(&opts, "batchSize", (int32_t)t->ob->conf->batch_size);
    if (skip > 0)
        BSON_APPEND_INT64(&opts, "skip", skip);
    bson_t empty = BSON_INITIALIZER;
    t->cursor = mongoc_collection_find_with_opts(t->coll, &empty, &opts, NULL);
    t->expect_first = t->has_last;
    bson_destroy(&opts);
    bson_destroy(&empty);
    return OUTBOX_OK;
}

static void close_cursor(outbox_tail_t *t, int64_t delay_ms) {
    if (t->cursor)
        mongoc_cursor_destroy(t->cursor);
    t->cursor = NULL;
    t->reopen_at_us = delay_ms > 0 ? now_us() + delay_ms * 1000 : 0;
}

/* A failure to reach or read the server: wait longer each time before the
 * next attempt, so a down server is not hammered. */
static void close_with_backoff(outbox_tail_t *t) {
    close_cursor(t, t->backoff_ms);
    t->backoff_ms = t->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : t->backoff_ms * 2;
}

outbox_code_t outbox_tail_next(outbox_tail_t *t, int64_t timeout_ms, const outbox_event_t **event,
                               outbox_error_t *error) {
    bson_error_t berr;
    const bson_t *doc;
    char msg[300];

    outbox__clear_error(error);
    if (event)
        *event = NULL;
    if (!t || !event)
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_tail_next: tail and event are required");
    t->malformed = NULL;
    if (t->gap) {
        if (error)
            *error = t->gap_error;
        return OUTBOX_ERR_GAP;
    }
    int64_t deadline = now_us() + (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (;;) {
        if (!t->cursor) {
            int64_t wait_us = t->reopen_at_us - now_us();
            if (wait_us > 0) {
                int64_t left_us = deadline - now_us();
                if (left_us <= 0)
                    return outbox__fail(error, OUTBOX_ERR_TIMED_OUT, "no event within %" PRId64 " ms", timeout_ms);
                sleep_ms((wait_us < left_us ? wait_us : left_us) / 1000 + 1);
                continue;
            }
            outbox_code_t rc = open_cursor(t, error);
            if (rc == OUTBOX_ERR_GAP)
                return rc;
            if (rc != OUTBOX_OK) {
                close_with_backoff(t);
                return rc;
            }
        }
        if (mongoc_cursor_next(t->cursor, &doc)) {
            bson_iter_t it;
            bool has_id = bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it);
            t->backoff_ms = BACKOFF_MIN_MS;
            if (t->expect_first) {
                t->expect_first = false;
                if (has_id && bson_oid_equal(bson_iter_oid(&it), &t->last)) {
                    t->repositions = 0;
                    continue; /* the event we resume after: already returned */
                }
                /* The log was trimmed between finding the index and opening
                 * the cursor: find the place again. */
                if (++t->repositions > MAX_REPOSITION) {
                    close_with_backoff(t);
                    return outbox__fail(error, OUTBOX_ERR_SERVER,
                                        "cannot find the resume position in %s.%s: the log "
                                        "is trimmed faster than it can be read",
                                        t->ob->conf->database, t->ob->conf->outbox);
                }
                close_cursor(t, 0);
                continue;
            }
            if (!has_id && t->pass_over > 0) {
                t->pass_over--;
                continue; /* reported before the cursor was reopened */
            }
            t->pass_over = 0;
            if (!has_id) {
                /* Not an envelope, and it cannot be a position either (the
                 * tail resumes by ObjectId): counted after the last event
                 * so that a reopened cursor passes over it again. A new
                 * tail from a checkpoint before it reports it again. */
                char idtext[120], lasthex[25];
                describe_id(doc, idtext, sizeof idtext);
                t->extra++;
                t->malformed = doc;
                if (t->has_last)
                    bson_oid_to_string(&t->last, lasthex);
                return outbox__fail(error, OUTBOX_ERR_MALFORMED,
                                    "document %s in %s.%s (number %" PRId64 " after %s%s) is not "
                                    "a valid envelope: _id: expected objectId",
                                    idtext, t->ob->conf->database, t->ob->conf->outbox, t->extra,
                                    t->has_last ? "event " : "the tail's start",
                                    t->has_last ? lasthex : "");
            }
            t->has_last = true;
            t->extra = 0;
            bson_oid_copy(bson_iter_oid(&it), &t->last);
            if (!outbox__event_parse(&t->event, doc, msg, sizeof msg)) {
                char hex[25];
                bson_oid_to_string(&t->last, hex);
                t->malformed = doc;
                return outbox__fail(error, OUTBOX_ERR_MALFORMED,
                                    "event %s in %s.%s is not a valid envelope: %s", hex,
                                    t->ob->conf->database, t->ob->conf->outbox, msg);
            }
            *event = &t->event;
            return OUTBOX_OK;
        }
        if (mongoc_cursor_error(t->cursor, &berr)) {
            /* CappedPositionLost: the log overwrote the cursor's position.
             * Reopening at once finds out whether events were lost. */
            if (berr.code == OUTBOX_MONGO_CAPPED_POSITION_LOST) {
                close_cursor(t, 0);
                continue;
            }
            close_with_backoff(t);
            return outbox__fail_bson(error, &berr, "tail of %s.%s", t->ob->conf->database, t->ob->conf->outbox);
        }
        if (!mongoc_cursor_more(t->cursor)) {
            /* The server closed the cursor without an error: a tailable
             * find on an empty log does this. Try again shortly. */
            close_cursor(t, t->ob->conf->await_ms < 100 ? t->ob->conf->await_ms : 100);
        }
        if (now_us() >= deadline)
            return outbox__fail(error, OUTBOX_ERR_TIMED_OUT, "no event within %" PRId64 " ms", timeout_ms);
    }
}
