/*
 * outboxctl.c - the operator's command line for an outbox: create it, put
 * an event by hand, tail the log, promote pending transactional events.
 *
 * Exit codes (documented in --help and the README): 0 success, 1 failure
 * (server, I/O), 2 bad usage or an event that fails validation, 3 a gap.
 */
#include "outbox/outbox.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define EXIT_GAP 3

static const char usage[] =
    "usage: outboxctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  init [--size BYTES] [--max DOCS]   create the outbox (capped log N, N.pending,\n"
    "                                     N.checkpoints) if missing; installs the\n"
    "                                     --schemas as a validator where supported\n"
    "  put TYPE KEY JSON [--header K=V]   validate and put one event; prints its id.\n"
    "                                     KEY - means no key (null)\n"
    "  tail [--from-start | --from-now | --after ID] [--limit N] [--timeout-ms MS]\n"
    "                                     print events, one JSON object per line:\n"
    "                                     id, type, key, created, data, headers.\n"
    "                                     Stops after N events, or when no event came\n"
    "                                     for MS milliseconds (default: never)\n"
    "  promote                            move committed transactional events from\n"
    "                                     N.pending into the log (outboxd does this)\n"
    "\n"
    "Options (each also read from the environment variable shown):\n"
    "  --uri URI        MongoDB connection string            OUTBOX_URI\n"
    "  --db NAME        database                             OUTBOX_DB\n"
    "  --outbox NAME    outbox (capped collection) name      OUTBOX_NAME\n"
    "  --schemas DIR    event types: one TYPE.json $jsonSchema file per type;\n"
    "                   put needs it to validate             OUTBOX_SCHEMAS\n"
    "  -h, --help       this text;  -V, --version  the version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 bad usage or validation error,\n"
    "3 gap (the capped log overwrote events after the tail's starting point).\n";

typedef struct {
    const char *uri, *db, *outbox, *schemas;
    const char *size, *max;
    const char *after;
    bool from_now, from_start;
    long long limit;
    long long timeout_ms;
    const char *headers[32];
    int n_headers;
} options_t;

/* FerretDB lacks endSessions, and the driver warns about that whenever a
 * client closes; it says nothing about the outbox, so it is not shown. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                        void *data) {
    if (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "endSessions"))
        return;
    mongoc_log_default_handler(level, domain, message, data);
}

static int fail(const char *what, const outbox_error_t *err) {
    fprintf(stderr, "outboxctl: %s%s%s\n", what ? what : "", what ? ": " : "", err->message);
    return err->code == OUTBOX_ERR_VALIDATION || err->code == OUTBOX_ERR_UNKNOWN_TYPE ||
                   err->code == OUTBOX_ERR_SCHEMA || err->code == OUTBOX_ERR_CONF
               ? EXIT_USAGE
           : err->code == OUTBOX_ERR_GAP ? EXIT_GAP
                                         : EXIT_FAILURE;
}

static bool parse_count(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static outbox_t *open_outbox(const options_t *o, bool with_size, int *status) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    *status = EXIT_USAGE;
    if (!o->uri || !o->db || !o->outbox) {
        fprintf(stderr, "outboxctl: --uri, --db and --outbox are required (or OUTBOX_URI, "
                        "OUTBOX_DB, OUTBOX_NAME)\n");
        goto fail;
    }
    if (outbox_conf_set(conf, "uri", o->uri, &err) || outbox_conf_set(conf, "database", o->db, &err) ||
        outbox_conf_set(conf, "outbox", o->outbox, &err) ||
        (with_size && o->size && outbox_conf_set(conf, "capped.size", o->size, &err)) ||
        (with_size && o->max && outbox_conf_set(conf, "capped.max", o->max, &err)) ||
        (o->schemas && outbox_conf_add_types_dir(conf, o->schemas, &err))) {
        *status = fail(NULL, &err);
        goto fail;
    }
    outbox_t *ob = outbox_new(conf, &err);
    if (!ob) {
        *status = fail(NULL, &err);
        goto fail;
    }
    *status = 0;
    return ob;
fail:
    outbox_conf_destroy(conf);
    return NULL;
}

static int cmd_init(const options_t *o) {
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

static int cmd_put(const options_t *o, char **args, int n) {
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

static int cmd_tail(const options_t *o) {
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

static int cmd_promote(const options_t *o) {
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

int main(int argc, char **argv) {
    enum { O_URI = 256, O_DB, O_OUTBOX, O_SCHEMAS, O_SIZE, O_MAX, O_FROM_START, O_FROM_NOW, O_AFTER,
           O_LIMIT, O_TIMEOUT, O_HEADER };
    static const struct option longopts[] = {
        {"uri", required_argument, NULL, O_URI},
        {"db", required_argument, NULL, O_DB},
        {"outbox", required_argument, NULL, O_OUTBOX},
        {"schemas", required_argument, NULL, O_SCHEMAS},
        {"size", required_argument, NULL, O_SIZE},
        {"max", required_argument, NULL, O_MAX},
        {"from-start", no_argument, NULL, O_FROM_START},
        {"from-now", no_argument, NULL, O_FROM_NOW},
        {"after", required_argument, NULL, O_AFTER},
        {"limit", required_argument, NULL, O_LIMIT},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"header", required_argument, NULL, O_HEADER},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    options_t o = {.uri = getenv("OUTBOX_URI"), .db = getenv("OUTBOX_DB"),
                   .outbox = getenv("OUTBOX_NAME"), .schemas = getenv("OUTBOX_SCHEMAS"),
                   .limit = -1, .timeout_ms = -1};
    int c;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case O_URI: o.uri = optarg; break;
        case O_DB: o.db = optarg; break;
        case O_OUTBOX: o.outbox = optarg; break;
        case O_SCHEMAS: o.schemas = optarg; break;
        case O_SIZE: o.size = optarg; break;
        case O_MAX: o.max = optarg; break;
        case O_FROM_START: o.from_start = true; break;
        case O_FROM_NOW: o.from_now = true; break;
        case O_AFTER: o.after = optarg; break;
        case O_LIMIT:
            if (!parse_count(optarg, &o.limit)) {
                fprintf(stderr, "outboxctl: --limit %s: expected a count\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_TIMEOUT:
            if (!parse_count(optarg, &o.timeout_ms)) {
                fprintf(stderr, "outboxctl: --timeout-ms %s: expected milliseconds\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_HEADER:
            if (o.n_headers == (int)(sizeof o.headers / sizeof o.headers[0])) {
                fprintf(stderr, "outboxctl: at most 32 --header options\n");
                return EXIT_USAGE;
            }
            o.headers[o.n_headers++] = optarg;
            break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("outboxctl (service-outbox) %s\n", outbox_version_str()); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int n = argc - optind - 1;
    int status;
    mongoc_init();
    mongoc_log_set_handler(log_handler, NULL);
    if (strcmp(cmd, "init") == 0 && n == 0)
        status = cmd_init(&o);
    else if (strcmp(cmd, "put") == 0)
        status = cmd_put(&o, args, n);
    else if (strcmp(cmd, "tail") == 0 && n == 0)
        status = cmd_tail(&o);
    else if (strcmp(cmd, "promote") == 0 && n == 0)
        status = cmd_promote(&o);
    else {
        fprintf(stderr, "outboxctl: unknown command or extra arguments: %s\n", cmd);
        status = EXIT_USAGE;
    }
    mongoc_cleanup();
    return status;
}
