/*
 * bench_pipeline - outboxd's own ceiling (issue 21): the whole daemon
 * (outboxd_daemon_main, daemon.h: the configuration, plugins, leases, the
 * shared reader's ring, the sink runners and their checkpoints, written
 * to the real database at their usual cadence) with its events fed from
 * memory instead of the log, so that neither the server's reading nor its
 * CPU bounds the figure.
 *
 *   bench_pipeline --events N --config FILE [--plugin-dir DIR] [...]
 *
 * Every argument but --events N is outboxd's. The outbox must exist and
 * its sinks start without a checkpoint (the reader looks nothing up: see
 * outboxd_reader_set_source). The events are bench_put's order events
 * (bench_order_data, bench_order_key), each with an ObjectId of its own
 * (this run's start time, then its number), handed to the reader one by
 * one as a tail would hand them: an envelope parsed by liboutbox's one
 * parser (outbox_event_parse). After the N-th the source has nothing more
 * and outboxd runs on until SIGTERM, as under the harness, which measures
 * from the start to the moment each destination holds all N.
 *
 * The source's own cost per event (patching the id into one of TEMPLATES
 * prepared envelopes, then the parse and its copy) is in the reader's
 * thread, where a cursor's decode would be.
 */
#include "bench.h"
#include "outboxd/daemon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEMPLATES 1024 /* distinct keys and data, as bench_put's first 1024 */

typedef struct {
    uint64_t n, next;
    uint32_t epoch;              /* the ids' first 4 bytes: seconds at start */
    bson_t *templates[TEMPLATES];
    size_t id_offset;            /* where _id's 12 bytes are in a template */
    outbox_event_t *current;     /* the last event handed out; the reader's until the next call */
} generator_t;

static bson_t *make_template(uint64_t i, int64_t put_ns, size_t *id_offset) {
    bson_t *doc = bson_new();
    bson_oid_t zero;
    char key[32];
    memset(&zero, 0, sizeof zero);
    BSON_APPEND_OID(doc, "_id", &zero);
    BSON_APPEND_UTF8(doc, "type", BENCH_TYPE);
    bench_order_key(key, sizeof key, i);
    BSON_APPEND_UTF8(doc, "key", key);
    bson_t data;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "data", &data);
    bench_order_data(&data, i, put_ns);
    bson_append_document_end(doc, &data);
    BSON_APPEND_DATE_TIME(doc, "created", put_ns / 1000000);
    BSON_APPEND_INT32(doc, "v", OUTBOX_ENVELOPE_VERSION); /* as liboutbox's put lays it out */
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        bench_die("template %llu has no _id", (unsigned long long)i);
    *id_offset = (size_t)((const uint8_t *)bson_iter_oid(&it) - bson_get_data(doc));
    return doc;
}

/* outboxd_reader_source_t.next: the next event, or nothing after the N-th. */
static outbox_code_t generate(void *ctx, int wait_ms, const outbox_event_t **event, outbox_error_t *error) {
    generator_t *g = ctx;
    outbox_event_destroy(g->current);
    g->current = NULL;
    if (g->next >= g->n) {
        struct timespec ts = {0, (long)(wait_ms < 10 ? wait_ms : 10) * 1000000L};
        nanosleep(&ts, NULL);
        return OUTBOX_ERR_TIMED_OUT;
    }
    bson_t *t = g->templates[g->next % TEMPLATES];
    /* The id: big-endian seconds, then the number, as bench_msg_make's. The
     * template is ours, so its bytes are patched in place. */
    uint8_t *id = (uint8_t *)bson_get_data(t) + g->id_offset;
    for (int b = 0; b < 4; b++)
        id[b] = (uint8_t)(g->epoch >> (24 - 8 * b));
    for (int b = 0; b < 8; b++)
        id[4 + b] = (uint8_t)(g->next >> (56 - 8 * b));
    g->current = outbox_event_parse(t, error);
    if (!g->current)
        bench_die("bench_pipeline: event %llu: %s", (unsigned long long)g->next, error->message);
    g->next++;
    *event = g->current;
    return OUTBOX_OK;
}

int main(int argc, char **argv) {
    generator_t g = {.n = (uint64_t)bench_arg_ll(argc, argv, "--events", 0)};
    if ((long long)g.n <= 0)
        bench_die("usage: bench_pipeline --events N --config FILE [outboxd's other arguments]");
    /* outboxd's command line: this one without --events N. */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    if (!args)
        bench_die("out of memory");
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            i++;
            continue;
        }
        args[nargs++] = argv[i];
    }
    int64_t put_ns = bench_now_ns();
    g.epoch = (uint32_t)(put_ns / 1000000000);
    for (size_t i = 0; i < TEMPLATES; i++)
        g.templates[i] = make_template(i, put_ns, &g.id_offset);

    outboxd_reader_source_t source = {.next = generate, .ctx = &g};
    int status = outboxd_daemon_main(nargs, args, &source);

    outbox_event_destroy(g.current);
    for (size_t i = 0; i < TEMPLATES; i++)
        bson_destroy(g.templates[i]);
    free(args);
    return status;
}
