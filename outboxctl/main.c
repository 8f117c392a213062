/*
 * main.c - the operator's command line for an outbox: create it, put
 * an event by hand, tail the log, promote pending transactional events;
 * and for outboxd's state in the database: sink status and lag, moving a
 * sink's checkpoint, listing and retrying dead letters, handing a sink's
 * lease over to another outboxd.
 *
 * Exit codes (documented in --help and outboxctl(1)): 0 success, 1 failure
 * (server, I/O), 2 bad usage or an event that fails validation, 3 a gap,
 * 4 a malformed document met by tail.
 */
#include "outboxctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: outboxctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  init [--size BYTES] [--max DOCS]   create the outbox (capped log N, N.pending,\n"
    "                                     N.checkpoints) if missing; stores the\n"
    "                                     --schemas in N.schemas (a type stored with\n"
    "                                     another schema is refused: schema set) and\n"
    "                                     installs them as a validator where supported\n"
    "  put TYPE KEY JSON [--header K=V]   validate and put one event; prints its id.\n"
    "                                     KEY - means no key (null). Without\n"
    "                                     --schemas, against the outbox's own types\n"
    "                                     (N.schemas)\n"
    "  tail [--from-start | --from-now | --after ID] [--limit N] [--timeout-ms MS]\n"
    "       [--skip-malformed]           print events, one JSON object per line:\n"
    "                                     id, type, key, created, data, headers.\n"
    "                                     Stops after N events, or when no event came\n"
    "                                     for MS milliseconds (default: never); exit 1\n"
    "                                     when the server could not be read in that\n"
    "                                     time. A document in the log that is not an\n"
    "                                     event envelope ends tail with exit 4, unless\n"
    "                                     --skip-malformed: then stderr names it and\n"
    "                                     tail goes on\n"
    "  promote                            move committed transactional events from\n"
    "                                     N.pending into the log (outboxd does this)\n"
    "  status [--json] [--warn-headroom R]\n"
    "                                     the log's size, oldest and newest event, its\n"
    "                                     capacity, the pending backlog (N.pending:\n"
    "                                     transactional puts not yet promoted, and how\n"
    "                                     long ago the oldest was put), and per sink\n"
    "                                     (N.checkpoints): state, checkpoint\n"
    "                                     ((start) = the oldest event), lag in events\n"
    "                                     and seconds, HEADROOM (the share of the\n"
    "                                     capped log still free for writes before the\n"
    "                                     sink's checkpoint event is overwritten, by\n"
    "                                     documents and by bytes at the average event\n"
    "                                     size, the smaller: outboxd's formula; 1 when\n"
    "                                     nothing waits, 0 in a gap, - unknown) and\n"
    "                                     WARN (LOW when below R, default 0.2 as\n"
    "                                     outboxd's log.warn_headroom; 0 never warns;\n"
    "                                     no effect on the exit status), events\n"
    "                                     handled, last update, message, and its\n"
    "                                     lease (N.leases): OWNER,\n"
    "                                     TERM, LEASE (age of the last renewal on the\n"
    "                                     server's clock, \"stale\" past its TTL,\n"
    "                                     \"released\", or - when unclaimed); then the\n"
    "                                     promoter's lease and the live outboxd runs.\n"
    "                                     A sink whose checkpoint event is no\n"
    "                                     longer in the log is in a gap (exit 3).\n"
    "                                     --json keys: db, outbox, gap (any sink),\n"
    "                                     log {events, oldest, newest: {id, created}\n"
    "                                     or null, capacity {bytes, events (null: no\n"
    "                                     limit), avg_event_bytes} or null, pending\n"
    "                                     {events, oldest_age_seconds (null: none)}},\n"
    "                                     warn_headroom, sinks [{name, state, gap,\n"
    "                                     checkpoint (id or null = start), lag_events,\n"
    "                                     lag_seconds (null in a gap), headroom and\n"
    "                                     headroom_low (null when unknown), events,\n"
    "                                     updated, message, plugin_stats ({name:\n"
    "                                     number} or null), owner (null: not held),\n"
    "                                     term, lease_age_ms, lease_state (held,\n"
    "                                     released, stale; null: no claim)}],\n"
    "                                     instances [{instance, run, sinks_held,\n"
    "                                     age_ms}], promoter ({lease, owner, term,\n"
    "                                     lease_age_ms, lease_state} or null); times\n"
    "                                     ISO-8601 UTC.\n"
    "                                     lag_seconds: newest created minus the\n"
    "                                     checkpoint event's (the oldest event's\n"
    "                                     for (start)), 0 when lag_events is 0\n"
    "  checkpoint set SINK ID [--create]  move SINK's checkpoint to event ID (which\n"
    "                                     must be in the log): it resumes after ID;\n"
    "                                     state running, events handled kept. SINK\n"
    "                                     must have a checkpoint already (a typo is\n"
    "                                     refused), unless --create\n"
    "  checkpoint set SINK --time T [--create]\n"
    "                                     replay from a point in time: SINK\n"
    "                                     republishes every event created at or after\n"
    "                                     T. Walking the log in its order, the\n"
    "                                     checkpoint becomes the event just before the\n"
    "                                     first one created at or after T ((start)\n"
    "                                     when that is the oldest); later events\n"
    "                                     created before T (producers' clocks differ)\n"
    "                                     are republished too. T after the newest\n"
    "                                     event: the newest, nothing to republish. T\n"
    "                                     older than the oldest event is refused (exit\n"
    "                                     1): events of that time may be gone. T is\n"
    "                                     ISO-8601 with a zone: 2026-12-05T10:00:00Z,\n"
    "                                     ...:00.123Z, ...:00+01:00 (else exit 2)\n"
    "  checkpoint reset SINK              SINK restarts at the oldest event in the log.\n"
    "                                     With HA (a claim of SINK in N.leases),\n"
    "                                     outboxctl takes SINK's lease first (the next\n"
    "                                     term): the running holder's next write is\n"
    "                                     fenced and it stops the sink; an instance\n"
    "                                     resumes from the new position once that\n"
    "                                     claim expires (one TTL). Without HA, stop\n"
    "                                     outboxd before moving a checkpoint: it\n"
    "                                     writes its own position over it as it runs\n"
    "  deadletter list [--sink S] [--limit N]\n"
    "                                     dead letters (N.deadletter), oldest first, one\n"
    "                                     JSON object per line: id, sink, event_id,\n"
    "                                     error, at, type, key, data\n"
    "  deadletter retry [--sink S] [--id DEADLETTER_ID]\n"
    "                                     put each selected dead-lettered event back at\n"
    "                                     the end of the log as a new event (new id,\n"
    "                                     created now, header outbox-retry-of = the\n"
    "                                     original id), then delete the dead letter.\n"
    "                                     Every sink sees the event again, not only the\n"
    "                                     one that failed it\n"
    "  lease release SINK                 ask the outboxd holding SINK's lease to hand\n"
    "                                     it over (HA): it stops publishing, writes its\n"
    "                                     checkpoint and releases within renew_ms;\n"
    "                                     another instance takes the sink. Exit 1 when\n"
    "                                     no instance holds SINK, 2 when there is no\n"
    "                                     such sink (no claim and no checkpoint)\n"
    "  schema list | show TYPE | set TYPE FILE\n"
    "                                     the types the outbox keeps (N.schemas:\n"
    "                                     init --schemas stores them; put without\n"
    "                                     --schemas validates against them): each\n"
    "                                     type's version; a type's schema as JSON;\n"
    "                                     replace a type's schema (the one way to\n"
    "                                     change it: a different declaration is\n"
    "                                     refused by init) with a new version, and\n"
    "                                     the log's validator with it\n"
    "\n"
    "Options (each also read from the environment variable shown):\n"
    "  --uri URI        MongoDB connection string            OUTBOX_URI\n"
    "  --uri-file PATH  the connection string from the first line of a file,\n"
    "                   so the password is not on the command line (ps shows\n"
    "                   it there)                            OUTBOX_URI_FILE\n"
    "  --db NAME        database                             OUTBOX_DB\n"
    "  --outbox NAME    outbox (capped collection) name      OUTBOX_NAME\n"
    "  --schemas DIR    event types: one TYPE.json $jsonSchema file per type;\n"
    "                   put needs it to validate             OUTBOX_SCHEMAS\n"
    "  -h, --help       this text;  -V, --version  the version\n"
    "\n"
    "Connection strings are printed with their password hidden.\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 bad usage or validation error,\n"
    "3 gap (the capped log overwrote events after the tail's starting point;\n"
    "for status: some sink is in a gap), 4 tail met a malformed document.\n";

/* FerretDB lacks endSessions, and the driver warns about that whenever a
 * client closes; it says nothing about the outbox, so it is not shown. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message,
                        void *data) {
    if (level == MONGOC_LOG_LEVEL_WARNING &&
        (strstr(message, "endSessions") || strstr(message, "Falling back to malloc for counters")))
        return;
    mongoc_log_default_handler(level, domain, message, data);
}

int main(int argc, char **argv) {
    enum { O_URI = 256, O_DB, O_OUTBOX, O_SCHEMAS, O_SIZE, O_MAX, O_FROM_START, O_FROM_NOW, O_AFTER,
           O_LIMIT, O_TIMEOUT, O_HEADER, O_SINK, O_ID, O_JSON, O_URI_FILE, O_SKIP_MALFORMED, O_CREATE,
           O_TIME, O_WARN_HEADROOM };
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
        {"sink", required_argument, NULL, O_SINK},
        {"id", required_argument, NULL, O_ID},
        {"json", no_argument, NULL, O_JSON},
        {"uri-file", required_argument, NULL, O_URI_FILE},
        {"skip-malformed", no_argument, NULL, O_SKIP_MALFORMED},
        {"create", no_argument, NULL, O_CREATE},
        {"time", required_argument, NULL, O_TIME},
        {"warn-headroom", required_argument, NULL, O_WARN_HEADROOM},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    options_t o = {.db = getenv("OUTBOX_DB"), .outbox = getenv("OUTBOX_NAME"),
                   .schemas = getenv("OUTBOX_SCHEMAS"), .limit = -1, .timeout_ms = -1,
                   .warn_headroom = OUTBOXCTL_WARN_HEADROOM_DEFAULT};
    const char *uri_arg = NULL, *uri_file_arg = NULL;
    char *uri_from_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (c) {
        case O_URI: uri_arg = optarg; break;
        case O_URI_FILE: uri_file_arg = optarg; break;
        case O_SKIP_MALFORMED: o.skip_malformed = true; break;
        case O_CREATE: o.create = true; break;
        case O_TIME: o.time = optarg; break; /* parsed by checkpoint set, which names it */
        case O_WARN_HEADROOM: {
            char *end;
            errno = 0;
            o.warn_headroom = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o.warn_headroom >= 0.0 && o.warn_headroom <= 1.0)) {
                fprintf(stderr, "outboxctl: --warn-headroom %s: expected a ratio from 0 to 1\n", optarg);
                return EXIT_USAGE;
            }
            o.warn_headroom_set = true;
            break;
        }
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
        case O_SINK: o.sink = optarg; break;
        case O_ID: o.id = optarg; break;
        case O_JSON: o.json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("outboxctl (service-outbox) %s\n", outbox_version_str()); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (o.warn_headroom_set && strcmp(argv[optind], "status") != 0) {
        fprintf(stderr, "outboxctl: --warn-headroom goes with status only\n");
        return EXIT_USAGE;
    }
    /* The connection string: the command line over the environment, and
     * never two sources at one level (which would be a guess). */
    const char *env_uri = getenv("OUTBOX_URI"), *env_uri_file = getenv("OUTBOX_URI_FILE");
    if (env_uri && !*env_uri)
        env_uri = NULL;
    if (env_uri_file && !*env_uri_file)
        env_uri_file = NULL;
    if (uri_arg && uri_file_arg) {
        fprintf(stderr, "outboxctl: give --uri or --uri-file, not both\n");
        return EXIT_USAGE;
    }
    if (!uri_arg && !uri_file_arg && env_uri && env_uri_file) {
        fprintf(stderr, "outboxctl: OUTBOX_URI and OUTBOX_URI_FILE are both set; unset one\n");
        return EXIT_USAGE;
    }
    const char *file = uri_file_arg ? uri_file_arg : !uri_arg && !env_uri ? env_uri_file : NULL;
    if (uri_arg) {
        o.uri = uri_arg;
        o.uri_source = "--uri";
    } else if (file) {
        if (!(uri_from_file = read_uri_file(file)))
            return EXIT_USAGE;
        o.uri = uri_from_file;
        o.uri_source = uri_file_arg ? "--uri-file" : "OUTBOX_URI_FILE";
    } else if (env_uri) {
        o.uri = env_uri;
        o.uri_source = "OUTBOX_URI";
    }
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int n = argc - optind - 1;
    int status;
    if (o.uri)
        outboxctl_scrub_output(o.uri);
    /* The handler first: mongoc_init itself may warn (the counters' shared
     * memory), and that line in stdout or stderr broke status --json for
     * whoever read both (the tests, under load). */
    mongoc_log_set_handler(log_handler, NULL);
    mongoc_init();
    if (strcmp(cmd, "init") == 0 && n == 0)
        status = cmd_init(&o);
    else if (strcmp(cmd, "put") == 0)
        status = cmd_put(&o, args, n);
    else if (strcmp(cmd, "tail") == 0 && n == 0)
        status = cmd_tail(&o);
    else if (strcmp(cmd, "promote") == 0 && n == 0)
        status = cmd_promote(&o);
    else if (strcmp(cmd, "status") == 0 && n == 0)
        status = cmd_status(&o);
    else if (strcmp(cmd, "checkpoint") == 0)
        status = cmd_checkpoint(&o, args, n);
    else if (strcmp(cmd, "deadletter") == 0)
        status = cmd_deadletter(&o, args, n);
    else if (strcmp(cmd, "lease") == 0)
        status = cmd_lease(&o, args, n);
    else if (strcmp(cmd, "schema") == 0)
        status = cmd_schema(&o, args, n);
    else {
        fprintf(stderr, "outboxctl: unknown command or extra arguments: %s\n", cmd);
        status = EXIT_USAGE;
    }
    mongoc_cleanup();
    free(uri_from_file);
    return status;
}

