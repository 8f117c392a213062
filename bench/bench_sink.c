/*
 * bench_sink - the sink ceiling: how fast one sink plugin takes events when
 * neither MongoDB nor outboxd's reading is in the way.
 *
 *   bench_sink --plugin-dir DIR --plugin NAME --route ROUTE --events N
 *              [--format native|cloudevents|debezium]
 *              [--cloudevents-mode auto|binary|structured] [--option key=value]...
 *
 * The plugin is loaded and checked by outboxd's own loader (outboxd/plugin.c)
 * and its options resolved by outboxd's own code (outboxd/options.c: the
 * table's checks and defaults), then driven the way outboxd's sink_runner
 * drives it: at most WINDOW events published and not yet acked, batches
 * of up to BATCH, poll between batches (waiting up to 10 ms only when it
 * has nothing to publish), events acked RETRY (or
 * handed back by a RETRY from publish) published again after a backoff.
 * A FATAL ack, a FATAL return or a stall fails the run.
 *
 * The N messages are made before the clock starts, so the time is the
 * plugin's and its server's: from the first publish to the last OK ack.
 * Prints RESULT events=N seconds=S rate=R.
 *
 * --format lays each message out as outboxd does for a sink's `format`
 * (outboxd/msgformat.c, checked against the plugin by the same
 * outboxd_msgformat_resolve): built per event inside the timed loop, as
 * the runner builds it when it hands the event over, and freed when
 * publish returns (the ABI lends an event for the call only).
 *
 * ROUTE is the destination of every event as given: the harness passes a
 * literal one, and expanding {type}/{key} would need outboxd's config
 * loader (and libyaml), so a route with braces is refused.
 */
#include "bench.h"
#include "outboxd/msgformat.h"
#include "outboxd/options.h"
#include "outboxd/plugin.h"
#include "outboxd/secrets.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW 4096             /* events in flight, as outboxd's sink_runner */
#define BATCH 500               /* events per publish, as outboxd's sink_runner */
#define POLL_MS 10
#define RETRY_BACKOFF_MS 100    /* outboxd's first backoff; a ceiling has no use for its growth */
#define FLUSH_TIMEOUT_MS 10000
#define STALL_NS (120 * 1000000000LL) /* no ack for this long: the run failed */

enum ev_state { EV_PENDING = 0, EV_PUBLISHED, EV_OK, EV_RETRY, EV_FATAL };

typedef struct {
    const outbox_sink_plugin_t *plugin;
    outbox_sink_host_t host;
    outboxd_options_t options;
    void *state;                /* the plugin's */
    const char *route;
    outboxd_msgformat_t msgformat; /* --format, resolved against the plugin */

    bench_msg_t *msgs;
    uint64_t n;

    /* Acks come from any thread (librdkafka's, say): lock guards what
     * they write. */
    pthread_mutex_t lock;
    unsigned char *ev;          /* enum ev_state, one per event, seq = index */
    uint64_t head, tail;        /* window: seqs [head, tail) not yet retired */
    uint64_t acked;             /* events acked OK */
    uint64_t retries;           /* RETRY acks and events a RETRY handed back */
    int64_t last_ack_ns, end_ns;
    char fatal[1024];           /* the first FATAL ack's text */
} bench_t;

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- host services --------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    bench_t *b = ctx;
    char msg[2048];
    va_list ap;
    /* outboxd's default level, so a chatty plugin costs what it costs there. */
    if (level > OUTBOX_SINK_LOG_INFO)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "bench_sink: plugin %s: %s: %s\n", b->plugin->name,
            level <= OUTBOX_SINK_LOG_ERROR ? "error" : level == OUTBOX_SINK_LOG_WARNING ? "warning" : "info", msg);
}

/* An ack for an event that is not in flight is ignored, as outboxd does:
 * it can be a delivery report that came after a RETRY from publish handed
 * the event back, and the event is then published (and acked) again. */
static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    bench_t *b = ctx;
    pthread_mutex_lock(&b->lock);
    if (seq < b->tail && b->ev[seq] == EV_PUBLISHED) {
        b->last_ack_ns = bench_mono_ns();
        if (status == OUTBOX_SINK_OK) {
            b->ev[seq] = EV_OK;
            if (++b->acked == b->n)
                b->end_ns = b->last_ack_ns;
        } else if (status == OUTBOX_SINK_RETRY) {
            b->ev[seq] = EV_RETRY;
            b->retries++;
        } else {
            b->ev[seq] = EV_FATAL;
            if (!b->fatal[0])
                snprintf(b->fatal, sizeof b->fatal, "event %s acked FATAL: %s", b->msgs[seq].id,
                         error ? error : "no reason given");
        }
    }
    pthread_mutex_unlock(&b->lock);
}

static const char *host_option(void *ctx, const char *key) {
    bench_t *b = ctx;
    return outboxd_options_get(&b->options, key);
}

static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    bench_t *b = ctx;
    return outboxd_options_next(&b->options, cursor, value);
}

static int host_options_fill(void *ctx, void *config) {
    bench_t *b = ctx;
    return outboxd_options_fill(&b->options, config);
}

/* ---- setup ------------------------------------------------------------------ */

/* The --option pairs as a config's options map, checked and completed with
 * the plugin's defaults by outboxd's own code. The "line" of an option in
 * its messages is its place on the command line. */
static void resolve_options(bench_t *b, int argc, char **argv) {
    outboxd_option_t *opts = calloc((size_t)argc, sizeof *opts);
    outboxd_sink_conf_t conf = {.name = "bench", .options = opts};
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--option") != 0)
            continue;
        char *pair = argv[++i], *eq = strchr(pair, '=');
        if (!eq || eq == pair)
            bench_die("--option %s: expected key=value", pair);
        outboxd_option_t *o = &opts[conf.n_options++];
        o->key = strndup(pair, (size_t)(eq - pair));
        o->value = eq + 1;
        o->line = i;
        o->column = 1;
    }
    char err[1024];
    bool ok = outboxd_options_resolve("command line", &conf, b->plugin, &b->options, err, sizeof err);
    for (size_t i = 0; i < conf.n_options; i++)
        free(opts[i].key);
    free(opts);
    if (!ok)
        bench_die("%s", err);
    outboxd_secrets_add_options(&b->options); /* as outboxd: a secret is never printed */
}

/* --format and --cloudevents-mode, as a sink's format: and cloudevents:
 * (source "/bench"), refused as outboxd's configuration check refuses
 * what the plugin cannot carry. */
static void resolve_format(bench_t *b, int argc, char **argv) {
    const char *format = bench_arg(argc, argv, "--format", "native");
    const char *mode = bench_arg(argc, argv, "--cloudevents-mode", "auto");
    outboxd_sink_conf_t conf = {.name = "bench", .payload = OUTBOXD_PAYLOAD_JSON, .ce_source = "/bench"};
    /* The names outboxd gives host->format (msgformat.c's one table). */
    for (conf.format = OUTBOXD_MESSAGE_NATIVE;; conf.format++) {
        if (strcmp(format, outboxd_message_format_name(conf.format)) == 0)
            break;
        if (conf.format == OUTBOXD_MESSAGE_DEBEZIUM) /* the last */
            bench_die("--format %s: expected native, cloudevents or debezium", format);
    }
    if (!strcmp(mode, "auto"))
        conf.ce_mode = OUTBOXD_CE_AUTO;
    else if (!strcmp(mode, "binary"))
        conf.ce_mode = OUTBOXD_CE_BINARY;
    else if (!strcmp(mode, "structured"))
        conf.ce_mode = OUTBOXD_CE_STRUCTURED;
    else
        bench_die("--cloudevents-mode %s: expected auto, binary or structured", mode);
    char why[400];
    if (!outboxd_msgformat_resolve(&conf, b->plugin, &b->msgformat, why, sizeof why))
        bench_die("%s", why);
}

static void make_messages(bench_t *b) {
    /* One put_ns for all: this run measures throughput, not latency. */
    int64_t put_ns = bench_now_ns();
    b->msgs = calloc(b->n, sizeof *b->msgs);
    b->ev = calloc(b->n, 1);
    if (!b->msgs || !b->ev)
        bench_die("out of memory for %llu events", (unsigned long long)b->n);
    for (uint64_t i = 0; i < b->n; i++)
        bench_msg_make(&b->msgs[i], i, put_ns);
}

static void open_plugin(bench_t *b) {
    char err[1024] = "";
    b->host = (outbox_sink_host_t){
        .struct_size = sizeof b->host,
        .abi_major = OUTBOX_SINK_ABI_MAJOR,
        .abi_minor = OUTBOX_SINK_ABI_MINOR,
        .ctx = b,
        .sink_name = "bench",
        .log = host_log,
        .ack = host_ack,
        .option = host_option,
        .option_next = host_option_next,
        .route = b->route, /* a literal route: the destination itself */
        .payload = "json",
        .options_fill = host_options_fill,
        .format = outboxd_message_format_name(b->msgformat.format),
        .message_as_given = b->msgformat.format != OUTBOXD_MESSAGE_NATIVE,
    };
    int rc = b->plugin->open(&b->host, &b->state, err, sizeof err);
    err[sizeof err - 1] = '\0';
    if (rc != OUTBOX_SINK_OK)
        bench_die("plugin %s: open failed (%s): %s", b->plugin->name, rc == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL",
                  err);
}

/* ---- the run -------------------------------------------------------------- */

/* Hands up to BATCH pending events of the window to the plugin; *count
 * says how many. Returns its status (OK when there was nothing to do). */
static int publish_pending(bench_t *b, size_t *count, char *err, size_t errsize) {
    outbox_sink_event_t events[BATCH];
    outboxd_message_t built[BATCH]; /* --format's messages, for this call only */
    size_t n = 0;

    pthread_mutex_lock(&b->lock);
    b->tail = b->head + WINDOW < b->n ? b->head + WINDOW : b->n;
    for (uint64_t seq = b->head; seq < b->tail && n < BATCH; seq++) {
        if (b->ev[seq] != EV_PENDING)
            continue;
        const bench_msg_t *m = &b->msgs[seq];
        events[n++] = (outbox_sink_event_t){
            .seq = seq,
            .id = m->id,
            .type = m->type,
            .key = m->key,
            .destination = b->route,
            .payload = (const unsigned char *)m->payload,
            .payload_len = m->payload_len,
            .created_ms = m->created_ms,
        };
        /* Before the call: the plugin may ack from inside publish. */
        b->ev[seq] = EV_PUBLISHED;
    }
    pthread_mutex_unlock(&b->lock);
    *count = n;
    if (n == 0)
        return OUTBOX_SINK_OK;
    if (b->msgformat.format != OUTBOXD_MESSAGE_NATIVE) {
        for (size_t i = 0; i < n; i++) {
            if (!outboxd_message_build(&b->msgformat, &events[i], &built[i]))
                bench_die("out of memory laying out event %s", events[i].id);
            events[i].headers = built[i].n_headers ? built[i].headers : NULL;
            events[i].n_headers = built[i].n_headers;
            if (built[i].body) {
                events[i].payload = built[i].body;
                events[i].payload_len = built[i].body_len;
            }
        }
    }

    err[0] = '\0';
    int rc;
    size_t taken = n;
    if (OUTBOXD_PLUGIN_HAS(b->plugin, publish_some) && b->plugin->publish_some) {
        /* As outboxd's runner: what the plugin did not take goes back. */
        rc = b->plugin->publish_some(b->state, events, n, &taken, err, errsize);
        if (taken > n)
            bench_die("plugin %s: publish_some took %zu of %zu events", b->plugin->name, taken, n);
        pthread_mutex_lock(&b->lock);
        for (size_t i = taken; i < n; i++)
            if (b->ev[events[i].seq] == EV_PUBLISHED)
                b->ev[events[i].seq] = EV_PENDING;
        pthread_mutex_unlock(&b->lock);
        *count = taken;
    } else {
        rc = b->plugin->publish(b->state, events, n, err, errsize);
        if (rc != OUTBOX_SINK_OK) {
            /* What the plugin did not ack during the call it did not take. */
            pthread_mutex_lock(&b->lock);
            for (size_t i = 0; i < n; i++) {
                if (b->ev[events[i].seq] == EV_PUBLISHED) {
                    b->ev[events[i].seq] = EV_PENDING;
                    b->retries++;
                }
            }
            pthread_mutex_unlock(&b->lock);
        }
    }
    if (b->msgformat.format != OUTBOXD_MESSAGE_NATIVE)
        for (size_t i = 0; i < n; i++)
            outboxd_message_clear(&built[i]);
    err[errsize - 1] = '\0';
    return rc == OUTBOX_SINK_OK || rc == OUTBOX_SINK_RETRY ? rc : OUTBOX_SINK_FATAL;
}

/* Turns RETRY acks back into pending events and retires the acked prefix
 * of the window. Returns true when some event awaits a retry. */
static bool settle(bench_t *b) {
    bool retry = false;
    pthread_mutex_lock(&b->lock);
    for (uint64_t seq = b->head; seq < b->tail; seq++) {
        if (b->ev[seq] == EV_RETRY) {
            b->ev[seq] = EV_PENDING;
            retry = true;
        }
    }
    while (b->head < b->tail && b->ev[b->head] == EV_OK)
        b->head++;
    pthread_mutex_unlock(&b->lock);
    return retry;
}

/* Publishes every event until each is acked OK. Returns false with err set
 * when the run failed. */
static bool drive(bench_t *b, int64_t *start_ns, char *err, size_t errsize) {
    const outbox_sink_plugin_t *p = b->plugin;
    char why[1024];
    *start_ns = b->last_ack_ns = bench_mono_ns();
    for (;;) {
        size_t published;
        int rc = publish_pending(b, &published, why, sizeof why);
        if (rc == OUTBOX_SINK_FATAL) {
            snprintf(err, errsize, "publish returned FATAL: %s", why);
            return false;
        }
        if (rc == OUTBOX_SINK_RETRY) {
            fprintf(stderr, "bench_sink: plugin %s: publish: %s (retrying in %d ms)\n", p->name, why,
                    RETRY_BACKOFF_MS);
            nap_ms(RETRY_BACKOFF_MS);
        }
        if (p->poll) {
            /* As outboxd's runner: block for acks only with nothing else to do. */
            int wait = published > 0 && rc == OUTBOX_SINK_OK ? 0 : POLL_MS;
            if (p->poll(b->state, wait, why, sizeof why) == OUTBOX_SINK_FATAL) {
                snprintf(err, errsize, "poll returned FATAL: %s", why);
                return false;
            }
        } else if (published == 0) {
            nap_ms(POLL_MS); /* all in flight: the acks are to come from the plugin's threads */
        }
        if (settle(b))
            nap_ms(RETRY_BACKOFF_MS);

        pthread_mutex_lock(&b->lock);
        bool done = b->acked == b->n, failed = b->fatal[0] != '\0';
        if (failed) {
            snprintf(err, errsize, "%s", b->fatal);
        } else if (!done && bench_mono_ns() - b->last_ack_ns > STALL_NS) {
            snprintf(err, errsize, "no ack for %lld s (%llu of %llu events acked)", STALL_NS / 1000000000LL,
                     (unsigned long long)b->acked, (unsigned long long)b->n);
            failed = true;
        }
        pthread_mutex_unlock(&b->lock);
        if (done || failed)
            return !failed;
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || bench_flag(argc, argv, "--help")) {
        fprintf(stderr, "usage: bench_sink --plugin-dir DIR --plugin NAME --route ROUTE --events N "
                        "[--format native|cloudevents|debezium] [--cloudevents-mode auto|binary|structured] "
                        "[--option key=value]...\n");
        return 2;
    }
    const char *dir = bench_arg(argc, argv, "--plugin-dir", NULL);
    const char *name = bench_arg(argc, argv, "--plugin", NULL);
    bench_t b = {.route = bench_arg(argc, argv, "--route", NULL), .n = (uint64_t)bench_arg_ll(argc, argv, "--events", 0)};
    if (!dir || !name || !b.route)
        bench_die("--plugin-dir, --plugin and --route are required");
    if ((long long)b.n <= 0)
        bench_die("--events must be positive");
    if (strpbrk(b.route, "{}"))
        bench_die("--route %s: give a literal destination ({type} and {key} are not expanded here)", b.route);

    char err[1024];
    outboxd_plugins_t *set = outboxd_plugins_new(dir);
    b.plugin = outboxd_plugins_load(set, name, err, sizeof err);
    if (!b.plugin)
        bench_die("%s", err);
    resolve_options(&b, argc, argv);
    resolve_format(&b, argc, argv);
    make_messages(&b);
    pthread_mutex_init(&b.lock, NULL);
    open_plugin(&b);

    int64_t start_ns;
    bool ok = drive(&b, &start_ns, err, sizeof err);
    if (ok && b.plugin->flush) {
        char ferr[1024] = "";
        if (b.plugin->flush(b.state, FLUSH_TIMEOUT_MS, ferr, sizeof ferr) != OUTBOX_SINK_OK)
            fprintf(stderr, "bench_sink: plugin %s: flush: %s\n", name, ferr);
    }
    b.plugin->close(b.state);
    if (ok) {
        double s = (double)(b.end_ns - start_ns) / 1e9;
        if (b.retries)
            fprintf(stderr, "bench_sink: plugin %s: %llu events published again after RETRY\n", name,
                    (unsigned long long)b.retries);
        printf("RESULT events=%llu seconds=%.6f rate=%.1f\n", (unsigned long long)b.n, s, (double)b.n / s);
    }

    for (uint64_t i = 0; i < b.n; i++)
        bench_msg_free(&b.msgs[i]);
    free(b.msgs);
    free(b.ev);
    pthread_mutex_destroy(&b.lock);
    outboxd_options_free(&b.options);
    outboxd_plugins_free(set);
    if (!ok)
        bench_die("plugin %s: %s", name, err);
    return 0;
}
