/*
 * cmd_log.c - the commands on the log itself: init, put, tail, promote.
 */
#include "outboxctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_init(const options_t *o) {
    int status;
    outbox_error_t err;
    unsigned caps = 0;
    outbox_t *ob = open_outbox(o, true, &status);
    if (!ob)
        return status;
    if (outbox_ensure(ob, &err) != OUTBOX_OK) {
        status = fail("init", &err);
    } else {
        outbox_server_caps(ob, &caps, &err);
        printf("outbox %s.%s ready (validator: %s)\n", o->db, o->outbox,
               !(caps & OUTBOX_CAP_VALIDATORS) ? "not supported by this server"
               : o->schemas                    ? "installed"
                                               : "envelope only, no --schemas");
    }
    outbox_destroy(ob);
    return status;
}

int cmd_put(const options_t *o, char **args, int n) {
    int status;
    outbox_error_t err;
    bson_oid_t id;
    bson_t headers = BSON_INITIALIZER;
    if (n != 3) {
        fprintf(stderr, "outboxctl: put needs TYPE KEY JSON\n");
        return EXIT_USAGE;
    }
    for (int i = 0; i < o->n_headers; i++) {
        const char *eq = strchr(o->headers[i], '=');
        if (!eq || eq == o->headers[i]) {
            fprintf(stderr, "outboxctl: --header %s: expected NAME=VALUE\n", o->headers[i]);
            bson_destroy(&headers);
            return EXIT_USAGE;
        }
        bson_append_utf8(&headers, o->headers[i], (int)(eq - o->headers[i]), eq + 1, -1);
    }
    outbox_t *ob = open_outbox(o, false, &status);
    if (!ob) {
        bson_destroy(&headers);
        return status;
    }
    /* Without --schemas, the types the outbox keeps (N.schemas). */
    if (!o->schemas && outbox_load_types(ob, NULL, &err) != OUTBOX_OK) {
        status = fail("put", &err);
        outbox_destroy(ob);
        bson_destroy(&headers);
        return status;
    }
    const char *key = strcmp(args[1], "-") == 0 ? NULL : args[1];
    if (outbox_put_json(ob, NULL, args[0], key, args[2], o->n_headers ? &headers : NULL, &id, &err) !=
        OUTBOX_OK) {
        status = fail("put", &err);
    } else {
        char hex[25];
        bson_oid_to_string(&id, hex);
        printf("%s\n", hex);
    }
    bson_destroy(&headers);
    outbox_destroy(ob);
    return status;
}

int cmd_tail(const options_t *o) {
    int status;
    outbox_error_t err;
    bson_oid_t after;
    outbox_tail_from_t from = OUTBOX_TAIL_FROM_START;
    if ((o->from_now + o->from_start + (o->after != NULL)) > 1) {
        fprintf(stderr, "outboxctl: tail takes one of --from-start, --from-now, --after\n");
        return EXIT_USAGE;
    }
    if (o->after) {
        if (!bson_oid_is_valid(o->after, strlen(o->after))) {
            fprintf(stderr, "outboxctl: --after %s: not an event id (24 hex digits)\n", o->after);
            return EXIT_USAGE;
        }
        bson_oid_init_from_string(&after, o->after);
        from = OUTBOX_TAIL_AFTER;
    } else if (o->from_now) {
        from = OUTBOX_TAIL_FROM_NOW;
    }
    /* The outbox must exist: a tailable find on a missing collection just
     * waits, and "no events" would hide a typo in --db or --outbox. This
     * also makes an unreachable server or failed authentication an error
     * before anything else. */
    store_t st;
    if ((status = store_open(o, &st)) != 0)
        return status;
    status = require_log(&st);
    store_close(&st);
    if (status)
        return status;
    outbox_t *ob = open_outbox(o, false, &status);
    if (!ob)
        return status;
    outbox_tail_t *tail = outbox_tail_new(ob, from, o->after ? &after : NULL, &err);
    if (!tail) {
        status = fail("tail", &err);
        outbox_destroy(ob);
        return status;
    }
    long long printed = 0;
    /* Without --timeout-ms wait for ever, one second per call; with it,
     * until MS have passed since the last event (or the start), however
     * many calls that takes while the tail reconnects. */
    int64_t idle_since = now_ms();
    bool failing = false;          /* a read failed since the last event */
    outbox_error_t last_failure;
    char last_said[OUTBOX_ERROR_MESSAGE_SIZE] = "";
    while (o->limit < 0 || printed < o->limit) {
        const outbox_event_t *ev;
        int64_t step = 1000;
        if (o->timeout_ms >= 0) {
            step = o->timeout_ms - (now_ms() - idle_since);
            if (step < 0)
                step = 0;
        }
        outbox_code_t rc = outbox_tail_next(tail, step, &ev, &err);
        if (rc != OUTBOX_OK && rc != OUTBOX_ERR_TIMED_OUT && rc != OUTBOX_ERR_MALFORMED &&
            o->timeout_ms >= 0 && now_ms() - idle_since >= o->timeout_ms) {
            /* A failing read that used up the time is a failure too. */
            if (rc != OUTBOX_ERR_GAP) {
                status = fail("tail: could not read the log", &err);
                break;
            }
        }
        if (rc == OUTBOX_OK) {
            char *line = outbox_event_to_json(ev, NULL);
            printf("%s\n", line);
            outbox_free(line);
            fflush(stdout);
            printed++;
            idle_since = now_ms();
            failing = false;
            last_said[0] = '\0';
        } else if (rc == OUTBOX_ERR_MALFORMED) {
            /* Never passed over in silence: an error, or with
             * --skip-malformed one line each on stderr. */
            if (!o->skip_malformed) {
                fprintf(stderr, "outboxctl: tail: %s (--skip-malformed passes over such documents)\n",
                        err.message);
                status = EXIT_MALFORMED;
                break;
            }
            fprintf(stderr, "outboxctl: tail: skipped: %s\n", err.message);
            idle_since = now_ms();
        } else if (rc == OUTBOX_ERR_TIMED_OUT) {
            if (o->timeout_ms >= 0) {
                if (failing)
                    status = fail("tail: could not read the log", &last_failure);
                break;
            }
        } else if (rc == OUTBOX_ERR_GAP) {
            status = fail("tail", &err);
            break;
        } else {
            /* The tail reconnects by itself: with --timeout-ms the failure
             * decides the exit status if no event comes in time; without,
             * say why events stall (once per distinct message). */
            failing = true;
            last_failure = err;
            if (o->timeout_ms < 0 && strcmp(last_said, err.message) != 0) {
                fprintf(stderr, "outboxctl: tail: %s (retrying)\n", err.message);
                snprintf(last_said, sizeof last_said, "%s", err.message);
            }
        }
    }
    outbox_tail_destroy(tail);
    outbox_destroy(ob);
    return status;
}

int cmd_promote(const options_t *o) {
    int status;
    outbox_error_t err;
    size_t moved, quarantined;
    outbox_t *ob = open_outbox(o, false, &status);
    if (!ob)
        return status;
    if (outbox_promote_ex(ob, &moved, &quarantined, &err) != OUTBOX_OK) {
        status = fail("promote", &err);
    } else {
        printf("%zu events promoted\n", moved - quarantined);
        /* Each set aside is said, with the last one's reason; the exit
         * status stays 0: the promotion itself succeeded. */
        if (quarantined)
            fprintf(stderr, "outboxctl: promote: quarantined %zu pending document%s; the last: %s\n", quarantined,
                    quarantined == 1 ? "" : "s", err.message);
    }
    outbox_destroy(ob);
    return status;
}
