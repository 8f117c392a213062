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
    /* Without --timeout-ms wait for ever, one second per call. */
    int64_t step = o->timeout_ms >= 0 ? o->timeout_ms : 1000;
    while (o->limit < 0 || printed < o->limit) {
        const outbox_event_t *ev;
        outbox_code_t rc = outbox_tail_next(tail, step, &ev, &err);
        if (rc == OUTBOX_OK) {
            char *line = outbox_event_to_json(ev, NULL);
            printf("%s\n", line);
            outbox_free(line);
            fflush(stdout);
            printed++;
        } else if (rc == OUTBOX_ERR_TIMED_OUT) {
            if (o->timeout_ms >= 0)
                break;
        } else if (rc == OUTBOX_ERR_GAP) {
            status = fail("tail", &err);
            break;
        } else {
            /* The tail reconnects by itself; say why events stall. */
            fprintf(stderr, "outboxctl: tail: %s (retrying)\n", err.message);
        }
    }
    outbox_tail_destroy(tail);
    outbox_destroy(ob);
    return status;
}

int cmd_promote(const options_t *o) {
    int status;
    outbox_error_t err;
    size_t moved;
    outbox_t *ob = open_outbox(o, false, &status);
    if (!ob)
        return status;
    if (outbox_promote(ob, &moved, &err) != OUTBOX_OK)
        status = fail("promote", &err);
    else
        printf("%zu events promoted\n", moved);
    outbox_destroy(ob);
    return status;
}
