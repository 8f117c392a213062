/*
 * test_ha.c - HA end to end (issue 14, docs/leases.md 7.3): several real
 * outboxd with the same configuration on one outbox, on the harness's
 * MongoDB, a Redis server of the test's own and file sinks; leases of
 * 1 s with renewals every 300 ms (tests/daemonlib.h):
 *
 *  - kill -9 of the holder of each sink, five times each, two instances, a
 *    file sink and a Redis sink (no dedupe), 20,000 events put meanwhile:
 *    every event at each destination exactly once and in order (each new
 *    holder's recover finds what the killed one published after its last
 *    checkpoint: docs/recovery.md);
 *  - never two holders, beside every test: a thread samples N.leases and
 *    N.checkpoints every 20 ms (a sink's claims are one per term and the
 *    newest term never goes back; its checkpoint's term never goes back and
 *    is never ahead of the newest claim), and from every outboxd's log, per
 *    sink, the spans [active, stopped publishing] of different terms do
 *    not overlap (log lines carry mono_ms=N, CLOCK_BOOTTIME, one clock for
 *    every process on the host; a killed outboxd's span ends at the kill,
 *    a span ends at the latest at the renewal deadline: check_spans);
 *  - the database unreachable for longer than the TTL (each outboxd through
 *    a TCP proxy of its own): each holder stops publishing while it is
 *    unreachable; back again, each sink resumes in exactly one instance and
 *    nothing is missing;
 *  - three instances, four sinks: each sink held by exactly one, and every
 *    instance runs at least one.
 *
 * Takeover times are printed as TAP diagnostics, never asserted: the
 * waits are bounds that only a hang exceeds. Without leases in outboxd
 * (outboxd --check refuses `ha:`, or outboxd starts its sinks and writes
 * no claim) the tests skip, saying so.
 */
#include "daemonlib.h"
#include "tcp_proxy.h"

#ifdef TEST_HA_REDIS
#include "redis_testlib.h"
#endif

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SINKS 4
#define MAX_INSTANCES 3
#define MAX_LOGS 64
/* A bound that only a hang exceeds. */
#define HANG_MS 60000

static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* outboxd's lease clock (outboxd_lease_now_ms): CLOCK_BOOTTIME, the same
 * for every process on this host, so the test's own readings and the
 * mono_ms of the logs are on one time line. */
static int64_t mono_ms(void) {
    struct timespec ts;
#ifdef CLOCK_BOOTTIME
    clock_gettime(CLOCK_BOOTTIME, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------------------------------
 * Instances: one folder, config and log per outboxd; every log it ever
 * wrote is kept for the span check.
 * ------------------------------------------------------------------------- */

typedef struct {
    char path[700];
    char id[8];
    int64_t killed_ms; /* when it was killed (-9); 0: it was not */
} run_log_t;

static run_log_t logs[MAX_LOGS];
static int n_logs;

typedef struct {
    char id[8];
    char dir[600];
    char *config;
    test_daemon_t d;
    bool running;
    int run_log; /* index in logs[] of the current run */
} inst_t;

static char plugin_dir[700];

/* The test's instances, outbox and folder: the teardown kills, drops and
 * removes what a test that failed or skipped halfway left. */
static inst_t g_ins[MAX_INSTANCES];
static outbox_t *g_ob;
static char *g_dir;
static void cleanup(void);

/* A plugin folder with copies of the build tree's sinks (outboxd loads
 * NAME.so from one trusted folder and refuses links out of it). */
static void copy_plugins(const char *dir) {
    static const char *const names[] = {"file", "redis"};
    char *plugins = test_plugins_dir(dir, names, sizeof names / sizeof names[0]);
    snprintf(plugin_dir, sizeof plugin_dir, "%s", plugins);
    free(plugins);
}

/* Instance id's config in dir/ID/outboxd.yaml; uri NULL: the server's. */
static void inst_init(inst_t *in, const char *dir, const char *id, outbox_t *ob, const char *uri,
                      const char *sinks) {
    char ha[128];
    memset(in, 0, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    snprintf(in->dir, sizeof in->dir, "%s/%s", dir, id);
    assert_int_equal(mkdir(in->dir, 0755), 0);
    snprintf(ha, sizeof ha, "  instance_id: %s\n", id);
    in->config = uri ? test_daemon_config_uri(in->dir, ob, uri, sinks, ha) : test_daemon_config_ha(in->dir, ob, sinks, ha);
    in->run_log = -1;
}

static void inst_start(inst_t *in) {
    assert_true(n_logs < MAX_LOGS);
    run_log_t *l = &logs[n_logs];
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/outboxd.%d.log", in->dir, n_logs);
    snprintf(l->id, sizeof l->id, "%s", in->id);
    in->run_log = n_logs++;
    test_daemon_start_log(&in->d, in->config, plugin_dir, l->path);
    in->running = true;
}

static void inst_kill9(inst_t *in) {
    logs[in->run_log].killed_ms = mono_ms();
    assert_int_equal(test_daemon_stop(&in->d, SIGKILL), 128 + SIGKILL);
    in->running = false;
}

static void inst_term(inst_t *in) {
    if (in->running)
        assert_int_equal(test_daemon_stop(&in->d, SIGTERM), 0);
    in->running = false;
}

static void inst_free(inst_t *in) {
    free(in->config);
    in->config = NULL;
}

/* The last lines of every log of this test, for a failure's message: one
 * TAP diagnostic per line (cmocka cuts a long message). */
static void print_logs(void) {
    enum { TAIL = 80 };
    for (int i = 0; i < n_logs; i++) {
        char *text = test_read_file(logs[i].path);
        int lines = 0;
        for (const char *c = text; c && *c; c++)
            lines += *c == '\n';
        print_message("# ==> %s (instance %s%s), %s%d lines:\n", logs[i].path, logs[i].id,
                      logs[i].killed_ms ? ", killed" : "", lines > TAIL ? "the last of " : "", lines);
        int skip = lines > TAIL ? lines - TAIL : 0;
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            if (skip-- <= 0)
                print_message("#   %s\n", line);
        }
        free(text);
    }
}

#define FAIL_WITH_LOGS(...)                                                                                    \
    do {                                                                                                       \
        print_logs();                                                                                          \
        fail_msg(__VA_ARGS__);                                                                                 \
    } while (0)

/* ----------------------------------------------------------------------------
 * Leases as the database shows them
 * ------------------------------------------------------------------------- */

/* Whether outboxd knows leases at all: --check must accept `ha:`. */
static void require_ha_config(const char *dir, outbox_t *ob) {
    char sub[700], cmd[2600], *out = NULL;
    snprintf(sub, sizeof sub, "%s/check", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    char sinks[800];
    snprintf(sinks, sizeof sinks, "  - name: c\n    plugin: file\n    route: \"%s/c.jsonl\"\n", sub);
    char *config = test_daemon_config_ha(sub, ob, sinks, "  instance_id: check\n");
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s' 2>&1", builddir(), config,
             plugin_dir);
    int rc = test_run_command(cmd, &out);
    free(config);
    if (rc != 0) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s", out ? out : "");
        free(out);
        TEST_SKIP("outboxd without leases: outboxd --check refuses the ha section: %s", reason);
    }
    free(out);
}

/* Whether outboxd wrote a claim of the sink's lease: an outboxd that
 * started its sinks has made its first lease round (docs/leases.md 4). */
static void require_claims(outbox_t *ob, const char *sink) {
    char lease[200];
    snprintf(lease, sizeof lease, "sink:%s", sink);
    for (int waited = 0; waited < 2000; waited += 100) {
        if (test_lease_claim(ob, lease, NULL, 0, NULL, NULL))
            return;
        sleep_ms(100);
    }
    TEST_SKIP("outboxd without leases: it started its sinks and wrote no claim of %s in N.leases", lease);
}

/* The instance holding the sink, once its runner has claimed the
 * checkpoint with the newest claim's term: the index in ins, or -1. */
static int active_holder(outbox_t *ob, const char *sink, inst_t *ins, int n, int64_t *term_out) {
    char lease[200], owner[80];
    int64_t term;
    bool released;
    snprintf(lease, sizeof lease, "sink:%s", sink);
    if (!test_lease_claim(ob, lease, owner, sizeof owner, &term, &released) || released)
        return -1;
    if (test_checkpoint_term(ob, sink) != term)
        return -1;
    for (int i = 0; i < n; i++) {
        if (ins[i].running && strcmp(ins[i].id, owner) == 0) {
            if (term_out)
                *term_out = term;
            return i;
        }
    }
    return -1;
}

static int wait_active_holder(outbox_t *ob, const char *sink, inst_t *ins, int n, int64_t *term) {
    for (int waited = 0; waited < HANG_MS; waited += 20) {
        int h = active_holder(ob, sink, ins, n, term);
        if (h >= 0)
            return h;
        sleep_ms(20);
    }
    FAIL_WITH_LOGS("no running instance holds sink %s with its checkpoint claimed after %d s", sink, HANG_MS / 1000);
    return -1;
}

static void drop_leases(outbox_t *ob) {
    char coll[256];
    snprintf(coll, sizeof coll, "%s.leases", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    mongoc_collection_drop(c, NULL);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
}

/* ----------------------------------------------------------------------------
 * The sampler: N.checkpoints, then N.leases, every 20 ms
 * ------------------------------------------------------------------------- */

typedef struct {
    outbox_t *ob;
    const char *sinks[MAX_SINKS];
    int n_sinks;
    atomic_bool stop;
    pthread_t thread;
    int samples, read_errors;
    int64_t cp_term[MAX_SINKS], claim_term[MAX_SINKS];
    char failure[600]; /* the first rule broken; "" when none */
    bool running;
} sampler_t;

static sampler_t g_sampler;

static int sink_index(const sampler_t *s, const char *lease) {
    for (int i = 0; i < s->n_sinks; i++)
        if (strncmp(lease, "sink:", 5) == 0 && strcmp(lease + 5, s->sinks[i]) == 0)
            return i;
    return -1;
}

static bool sample_once(sampler_t *s, mongoc_client_t *client) {
    char coll[256];
    const bson_t *doc;
    bson_error_t err;
    int64_t cp[MAX_SINKS], newest[MAX_SINKS];
    int at_newest[MAX_SINKS];
    bson_t empty = BSON_INITIALIZER;
    for (int i = 0; i < MAX_SINKS; i++)
        cp[i] = newest[i] = -1, at_newest[i] = 0;

    /* Checkpoints first: a claim is never older than the checkpoint term
     * it allowed, so the later read of claims must show one at least as
     * high. */
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(s->ob));
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        char lease[200];
        snprintf(lease, sizeof lease, "sink:%s", bson_iter_utf8(&it, NULL));
        int i = sink_index(s, lease);
        if (i >= 0 && bson_iter_init_find(&it, doc, "term") && BSON_ITER_HOLDS_NUMBER(&it))
            cp[i] = bson_iter_as_int64(&it);
    }
    bool ok = !mongoc_cursor_error(cur, &err);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    if (!ok)
        return false;

    snprintf(coll, sizeof coll, "%s.leases", outbox_name(s->ob));
    c = mongoc_client_get_collection(client, TEST_DB, coll);
    cur = mongoc_collection_find_with_opts(c, &empty, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, "_id.lease", &it) ||
            !BSON_ITER_HOLDS_UTF8(&it))
            continue; /* a presence */
        int i = sink_index(s, bson_iter_utf8(&it, NULL));
        bson_iter_t op;
        if (i < 0 || (bson_iter_init(&op, doc) && bson_iter_find_descendant(&op, "_id.op", &op)))
            continue; /* the promoter's, or a release request */
        if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, "_id.term", &it))
            continue;
        int64_t term = bson_iter_as_int64(&it);
        if (term > newest[i])
            newest[i] = term, at_newest[i] = 1;
        else if (term == newest[i])
            at_newest[i]++;
    }
    ok = !mongoc_cursor_error(cur, &err);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(c);
    if (!ok)
        return false;

    for (int i = 0; i < s->n_sinks && !s->failure[0]; i++) {
        const char *sink = s->sinks[i];
        if (at_newest[i] > 1)
            snprintf(s->failure, sizeof s->failure, "sample %d: sink %s has %d claims of term %" PRId64,
                     s->samples + 1, sink, at_newest[i], newest[i]);
        else if (newest[i] < s->claim_term[i])
            snprintf(s->failure, sizeof s->failure,
                     "sample %d: sink %s: the newest claim went back from term %" PRId64 " to %" PRId64,
                     s->samples + 1, sink, s->claim_term[i], newest[i]);
        else if (cp[i] < s->cp_term[i])
            snprintf(s->failure, sizeof s->failure,
                     "sample %d: sink %s: the checkpoint's term went back from %" PRId64 " to %" PRId64,
                     s->samples + 1, sink, s->cp_term[i], cp[i]);
        else if (cp[i] > newest[i])
            snprintf(s->failure, sizeof s->failure,
                     "sample %d: sink %s: the checkpoint has term %" PRId64 ", above every claim (newest %" PRId64 ")",
                     s->samples + 1, sink, cp[i], newest[i]);
        s->claim_term[i] = newest[i];
        s->cp_term[i] = cp[i];
    }
    s->samples++;
    return true;
}

static void *sampler_main(void *arg) {
    sampler_t *s = arg;
    mongoc_client_t *client = test_client();
    while (!atomic_load(&s->stop)) {
        if (!sample_once(s, client))
            s->read_errors++;
        sleep_ms(20);
    }
    mongoc_client_destroy(client);
    return NULL;
}

static void sampler_start(sampler_t *s, outbox_t *ob, const char *const *sinks, int n) {
    memset(s, 0, sizeof *s);
    s->ob = ob;
    s->n_sinks = n;
    for (int i = 0; i < n; i++) {
        s->sinks[i] = sinks[i];
        s->cp_term[i] = s->claim_term[i] = -1;
    }
    atomic_init(&s->stop, false);
    assert_int_equal(pthread_create(&s->thread, NULL, sampler_main, s), 0);
    s->running = true;
}

static void sampler_stop(sampler_t *s) {
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    s->running = false;
}

/* Stops it and fails the test on the first rule it saw broken. */
static void sampler_check(sampler_t *s) {
    sampler_stop(s);
    print_message("# never two holders: %d samples of N.leases and N.checkpoints (every 20 ms; %d reads failed), "
                  "newest terms:",
                  s->samples, s->read_errors);
    for (int i = 0; i < s->n_sinks; i++)
        print_message(" %s %" PRId64, s->sinks[i], s->claim_term[i]);
    print_message("\n");
    if (s->failure[0])
        FAIL_WITH_LOGS("%s", s->failure);
    assert_true(s->samples > 0);
}

/* ----------------------------------------------------------------------------
 * The spans of each term, from every log: from the runner's "active at term
 * T" to when it stopped publishing at T
 * ------------------------------------------------------------------------- */

typedef struct {
    int64_t term, acquired, start, end; /* end: INT64_MAX while unknown */
    int log;
} span_t;

static int64_t field_after(const char *line, const char *key) {
    const char *p = strstr(line, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static int by_term(const void *a, const void *b) {
    const span_t *x = a, *y = b;
    return x->term < y->term ? -1 : x->term > y->term;
}

static span_t *span_of(span_t **spans, int *n, int log, int64_t term) {
    for (int i = 0; i < *n; i++)
        if ((*spans)[i].log == log && (*spans)[i].term == term)
            return &(*spans)[i];
    *spans = realloc(*spans, (size_t)(*n + 1) * sizeof **spans);
    span_t *sp = &(*spans)[(*n)++];
    *sp = (span_t){term, -1, -1, INT64_MAX, log};
    return sp;
}

static void end_at(span_t *sp, int64_t at) {
    if (at >= 0 && at < sp->end)
        sp->end = at;
}

/* Fails when two terms' publishing spans of the sink overlap; returns how
 * many terms the logs show acquired. A span starts when the runner says
 * "sink NAME: active at term T" (before it claims the checkpoint and
 * publishes; the manager's "lease sink:NAME: acquired term T" when there is
 * no such line) and ends at the earliest of: its line saying it stopped
 * publishing at T (last_publish_ms=N on it, when there, is the end of its
 * last publish call), the release of T, the renewal deadline the manager
 * says passed ("lost term T (our renewal deadline passed N ms ago", the
 * moment outboxd_lease_valid turned false for every check of the runner),
 * and the kill of the process. takeover_ms (may be NULL) gets, per kill of
 * a holder of the sink, the time from the kill to the next term's
 * acquisition, n_takeovers their count. */
static int check_spans(const char *sink, int64_t *takeover_ms, int *n_takeovers) {
    char lease_prefix[200], sink_prefix[200];
    snprintf(lease_prefix, sizeof lease_prefix, "lease sink:%s: ", sink);
    snprintf(sink_prefix, sizeof sink_prefix, "sink %s: ", sink);
    span_t *spans = NULL;
    int n = 0;
    for (int l = 0; l < n_logs; l++) {
        char *text = test_read_file(logs[l].path);
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            int64_t at = field_after(line, "mono_ms=");
            const char *p;
            if (at < 0)
                continue;
            if ((p = strstr(line, lease_prefix)) != NULL) {
                if (strstr(p, "acquired term ")) {
                    span_t *sp = span_of(&spans, &n, l, field_after(p, "acquired term "));
                    sp->acquired = at;
                } else if (strstr(p, "released term ")) {
                    end_at(span_of(&spans, &n, l, field_after(p, "released term ")), at);
                } else if (strstr(p, "lost term ") && strstr(p, "deadline passed ")) {
                    end_at(span_of(&spans, &n, l, field_after(p, "lost term ")),
                           at - field_after(p, "deadline passed "));
                }
            } else if ((p = strstr(line, sink_prefix)) != NULL) {
                if (strstr(p, "active at term ")) {
                    span_t *sp = span_of(&spans, &n, l, field_after(p, "active at term "));
                    if (sp->start < 0)
                        sp->start = at;
                } else if (strstr(p, "stopped publishing") && field_after(p, "term ") >= 0) {
                    int64_t last = field_after(p, "last_publish_ms=");
                    end_at(span_of(&spans, &n, l, field_after(p, "term ")), last >= 0 ? last : at);
                }
            }
        }
        free(text);
    }
    /* Spans of terms this process never acquired (a runner's line about a
     * term another process holds) are not spans. */
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].acquired < 0)
            continue;
        if (spans[i].start < 0)
            spans[i].start = spans[i].acquired;
        if (logs[spans[i].log].killed_ms)
            end_at(&spans[i], logs[spans[i].log].killed_ms);
        spans[kept++] = spans[i];
    }
    n = kept;
    qsort(spans, (size_t)n, sizeof *spans, by_term);
    if (n_takeovers)
        *n_takeovers = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && spans[i].term == spans[i - 1].term)
            FAIL_WITH_LOGS("sink %s: term %" PRId64 " acquired twice (%s and %s)", sink, spans[i].term,
                           logs[spans[i - 1].log].path, logs[spans[i].log].path);
        for (int j = i + 1; j < n; j++) {
            if (spans[i].end == INT64_MAX)
                FAIL_WITH_LOGS("sink %s: no line of %s says when term %" PRId64 " stopped publishing, and term %" PRId64
                               " came after it",
                               sink, logs[spans[i].log].path, spans[i].term, spans[j].term);
            if (spans[i].end > spans[j].start)
                FAIL_WITH_LOGS("sink %s: term %" PRId64 " (%s, instance %s) published until mono_ms=%" PRId64
                               ", after term %" PRId64 " (%s, instance %s) went active at mono_ms=%" PRId64,
                               sink, spans[i].term, logs[spans[i].log].path, logs[spans[i].log].id, spans[i].end,
                               spans[j].term, logs[spans[j].log].path, logs[spans[j].log].id, spans[j].start);
        }
        if (takeover_ms && i + 1 < n && logs[spans[i].log].killed_ms == spans[i].end)
            takeover_ms[(*n_takeovers)++] = spans[i + 1].acquired - spans[i].end;
    }
    free(spans);
    return n;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_takeovers(const char *sink, int64_t *ms, int n) {
    if (n == 0)
        return;
    qsort(ms, (size_t)n, sizeof *ms, cmp_i64);
    print_message("# sink %s: %d takeovers after kill -9, kill to the other instance's claim: median %" PRId64
                  " ms, max %" PRId64 " ms (lease_ttl_ms + renew_ms = %d ms)\n",
                  sink, n, ms[n / 2], ms[n - 1], test_ha_ttl_ms() + test_ha_renew_ms());
}

/* ----------------------------------------------------------------------------
 * Events: put, and read back
 * ------------------------------------------------------------------------- */

/* Puts order.created events from..to in batches of up to 1000 (one insert
 * each); ids[n] receives each id (if ids). False, with the reason in err,
 * when a put failed: the producer thread cannot fail the test itself. */
static bool try_put_range(outbox_t *ob, int from, int to, bson_oid_t *ids, char *err_out, size_t err_size) {
    outbox_error_t err;
    for (int start = from; start <= to; start += 1000) {
        int end = start + 999 < to ? start + 999 : to;
        outbox_batch_t *batch = outbox_batch_new(ob);
        bool ok = true;
        for (int n = start; n <= end && ok; n++) {
            bson_t *data = BCON_NEW("ordernr", BCON_INT32(n), "total", BCON_DOUBLE(19.95));
            ok = outbox_batch_add(batch, "order.created", "k", data, NULL, &err) == OUTBOX_OK;
            bson_destroy(data);
        }
        ok = ok && outbox_batch_put(batch, NULL, &err) == OUTBOX_OK;
        for (int n = start; ok && ids && n <= end; n++)
            bson_oid_copy(outbox_batch_id(batch, (size_t)(n - start)), &ids[n]);
        outbox_batch_destroy(batch);
        if (!ok) {
            snprintf(err_out, err_size, "putting events %d..%d: %s", start, end, err.message);
            return false;
        }
    }
    return true;
}

static void put_range(outbox_t *ob, int from, int to, bson_oid_t *ids) {
    char err[OUTBOX_ERROR_MESSAGE_SIZE + 64];
    if (!try_put_range(ob, from, to, ids, err, sizeof err))
        fail_msg("%s", err);
}

/* "Under load": the events go in PUT_BATCHES batches, one every
 * PUT_PAUSE_MS, while the test kills holders. */
#define PUT_BATCHES 100
#define PUT_PAUSE_MS 150

typedef struct {
    outbox_t *ob;
    int total;
    bson_oid_t *ids; /* [1..total] */
    atomic_int put;  /* events put so far */
    char error[OUTBOX_ERROR_MESSAGE_SIZE + 64]; /* "" unless a put failed */
} producer_t;

/* The producer thread while it runs: the cleanup waits for it before it
 * drops the outbox the thread puts into. */
static pthread_t g_producer;
static bool g_producing;
static producer_t g_prod;

static void *produce(void *arg) {
    producer_t *p = arg;
    int per = (p->total + PUT_BATCHES - 1) / PUT_BATCHES;
    for (int from = 1; from <= p->total; from += per) {
        int to = from + per - 1 < p->total ? from + per - 1 : p->total;
        if (!try_put_range(p->ob, from, to, p->ids, p->error, sizeof p->error))
            return NULL;
        atomic_store(&p->put, to);
        sleep_ms(PUT_PAUSE_MS);
    }
    return NULL;
}

/* Every ordernr 1..total, as increasing runs: each line is the one after
 * the line before, or starts a run again at an earlier event (a new holder
 * publishing again what came after the last checkpoint); at most restarts
 * such runs. Fails on a gap. Returns the number of repeated lines. */
static int check_runs(const char *path, int total, int restarts) {
    int cap = total * 3 + 64;
    int *got = calloc((size_t)cap, sizeof *got);
    int n = test_jsonl_ordernrs(path, got, cap);
    if (n > cap)
        fail_msg("%s: %d lines for %d events: more than three times each", path, n, total);
    int high = 0, backs = 0, repeats = 0;
    for (int i = 0; i < n; i++) {
        int v = got[i], prev = i ? got[i - 1] : 0;
        if (v != prev + 1) {
            if (v > prev + 1 || v < 1)
                FAIL_WITH_LOGS("%s: line %d has ordernr %d after %d: events missing", path, i + 1, v, prev);
            backs++;
        }
        if (v <= high)
            repeats++;
        else if (v != high + 1)
            FAIL_WITH_LOGS("%s: line %d has ordernr %d, expected %d (events missing)", path, i + 1, v, high + 1);
        else
            high = v;
    }
    free(got);
    if (high != total)
        FAIL_WITH_LOGS("%s: events %d..%d missing", path, high + 1, total);
    if (backs > restarts)
        FAIL_WITH_LOGS("%s: %d runs start again at an earlier event, but the sink changed holder only %d times", path,
                       backs, restarts);
    return repeats;
}

/* Waits until the file's highest ordernr is last; fails when it stops
 * growing for HANG_MS (a hang; a slow machine only makes it take longer). */
static void wait_file_last(const char *path, int last) {
    int cap = last * 3 + 64;
    int *got = calloc((size_t)cap, sizeof *got);
    int high = 0;
    for (int still = 0; still <= HANG_MS; still += 100) {
        int n = test_jsonl_ordernrs(path, got, cap);
        int h = 0;
        for (int i = 0; i < n && i < cap; i++)
            h = got[i] > h ? got[i] : h;
        if (h >= last) {
            free(got);
            return;
        }
        if (h > high)
            high = h, still = 0;
        sleep_ms(100);
    }
    free(got);
    FAIL_WITH_LOGS("%s never got event %d: it stopped at %d for %d s", path, last, high, HANG_MS / 1000);
}

#ifdef TEST_HA_REDIS
/* Which event (1..total) has this id; 0: none of them. */
static int event_of(const bson_oid_t *ids, int total, const char *hex) {
    for (int n = 1; n <= total; n++) {
        char h[25];
        bson_oid_to_string(&ids[n], h);
        if (strcmp(h, hex) == 0)
            return n;
    }
    return 0;
}

/* The stream holds exactly the events put, once each and in order. */
static void check_stream_exact(const test_redis_t *r, const char *stream, const bson_oid_t *ids, int total) {
    redisContext *c = test_redis_connect(r);
    size_t n;
    char(*got)[25] = test_redis_event_ids(c, stream, &n);
    redisFree(c);
    for (size_t i = 0; i < n && i < (size_t)total; i++) {
        char want[25];
        bson_oid_to_string(&ids[i + 1], want);
        if (strcmp(got[i], want) != 0) {
            int was = event_of(ids, total, got[i]);
            FAIL_WITH_LOGS("stream %s: entry %zu is event %d (%s), expected event %zu (%s)", stream, i + 1, was,
                           got[i], i + 1,
                           was == 0 ? "not one put" : (size_t)was <= i ? "a duplicate" : "events missing before it");
        }
    }
    free(got);
    if (n != (size_t)total)
        FAIL_WITH_LOGS("stream %s: %zu entries for %d events", stream, n, total);
}
#endif

/* ----------------------------------------------------------------------------
 * The tests
 * ------------------------------------------------------------------------- */

static void reset_logs(void) {
    n_logs = 0;
    memset(logs, 0, sizeof logs);
}

#define FILE_SINK(name, path) "  - name: " name "\n    plugin: file\n    route: \"" path "\"\n    options:\n      fsync: never\n"

static void kill9_of_each_holder_five_times_publishes_each_event_once(void **state) {
    (void)state;
    enum { KILLS = 5 };
    const int total = test_scaled(20000);
    reset_logs();
#ifdef TEST_HA_REDIS
    test_redis_t r = {0};
    test_redis_require(); /* before the outbox: a skip leaves nothing behind */
#endif
    outbox_t *ob = g_ob = test_outbox("ha_kill");
    char *dir = g_dir = test_tmpdir("hakill");
    copy_plugins(dir);
    require_ha_config(dir, ob);

    char sinks[2048], file[700];
    snprintf(file, sizeof file, "%s/out/files.jsonl", dir);
    int len = snprintf(sinks, sizeof sinks, FILE_SINK("files", "%s"), file);
#ifdef TEST_HA_REDIS
    test_redis_start(&r, NULL, NULL);
    snprintf(sinks + len, sizeof sinks - (size_t)len,
             "  - name: stream\n    plugin: redis\n    route: \"ha\"\n    options:\n      url: \"%s\"\n",
             r.url);
    const char *names[] = {"files", "stream"};
    const int n_sinks = 2;
#else
    (void)len;
    print_message("# the Redis sink is not built: the file sink alone\n");
    const char *names[] = {"files"};
    const int n_sinks = 1;
#endif
    inst_t *ins = g_ins;
    inst_init(&ins[0], dir, "a", ob, NULL, sinks);
    inst_init(&ins[1], dir, "b", ob, NULL, sinks);
    sampler_t *sampler = &g_sampler;
    sampler_start(sampler, ob, names, n_sinks);
    inst_start(&ins[0]);
    require_claims(ob, "files");
    inst_start(&ins[1]);

    producer_t *p = &g_prod;
    p->ob = ob;
    p->total = total;
    p->ids = calloc((size_t)total + 1, sizeof(bson_oid_t));
    p->error[0] = '\0';
    atomic_init(&p->put, 0);
    assert_int_equal(pthread_create(&g_producer, NULL, produce, p), 0);
    g_producing = true;

    int kills[MAX_SINKS] = {0};
    for (int round = 1; round <= KILLS; round++) {
        for (int s = 0; s < n_sinks; s++) {
            int64_t term, next_term = -1;
            int h = wait_active_holder(ob, names[s], ins, 2, &term);
            inst_t *victim = &ins[h], *other = &ins[1 - h];
            inst_kill9(victim);
            kills[s]++;
            /* The other instance takes it over (a term above) and claims
             * the checkpoint. */
            int h2 = wait_active_holder(ob, names[s], ins, 2, &next_term);
            assert_ptr_equal(&ins[h2], other);
            assert_true(next_term > term);
            inst_start(victim);
        }
    }
    pthread_join(g_producer, NULL);
    g_producing = false;
    if (p->error[0])
        fail_msg("producer: %s", p->error);
    wait_file_last(file, total);
#ifdef TEST_HA_REDIS
    /* As wait_file_last: a failure only when the stream stops growing. */
    for (long long got = 0, was = -1; got < total; was = got) {
        got = test_redis_wait_len(&r, "ha", total, HANG_MS);
        if (got < total && got == was)
            FAIL_WITH_LOGS("stream ha never got %d entries: it stopped at %lld for %d s", total, got, HANG_MS / 1000);
    }
#endif
    inst_term(&ins[0]);
    inst_term(&ins[1]);
    sampler_check(sampler);

    for (int s = 0; s < n_sinks; s++) {
        int64_t takeovers[64];
        int n_takeovers;
        int terms = check_spans(names[s], takeovers, &n_takeovers);
        print_takeovers(names[s], takeovers, n_takeovers);
        /* Every kill of a holder of the sink was a change of holder. */
        assert_true(terms >= kills[s] + 1);
        if (s == 0) {
            int repeats = check_runs(file, total, terms - 1);
            print_message("# file sink: %d events, all present in order; %d lines published again "
                          "across %d terms (each new holder's recover found the events in doubt)\n",
                          total, repeats, terms);
            if (repeats != 0)
                FAIL_WITH_LOGS("%s: %d events published twice across the takeovers", file, repeats);
        }
    }
#ifdef TEST_HA_REDIS
    check_stream_exact(&r, "ha", p->ids, total);
    print_message("# redis sink (recover, no dedupe): %d events, each exactly once and in order\n", total);
    test_redis_stop(&r);
#endif
    cleanup();
}

/* Whether the log says, at mono_ms >= since, that the sink stopped
 * publishing (the runner's line) or that term T of its lease was lost (the
 * manager's: its deadline passed, so outboxd_lease_valid refuses every
 * publish from then on, whether or not the runner had begun). */
static bool said_stop_since(const char *path, const char *sink, int64_t term, int64_t since) {
    char sink_prefix[200], lost[240];
    bool said = false;
    snprintf(sink_prefix, sizeof sink_prefix, "sink %s: ", sink);
    snprintf(lost, sizeof lost, "lease sink:%s: lost term %" PRId64 " ", sink, term);
    char *text = test_read_file(path);
    for (char *line = text, *next; line && *line && !said; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        const char *p = strstr(line, sink_prefix);
        said = field_after(line, "mono_ms=") >= since &&
               ((p && strstr(p, "stopped publishing")) || strstr(line, lost));
    }
    free(text);
    return said;
}

static void database_unreachable_longer_than_the_ttl(void **state) {
    (void)state;
    const int total = test_scaled(4000);
    reset_logs();
    outbox_t *ob = g_ob = test_outbox("ha_unreach");
    char *dir = g_dir = test_tmpdir("haunreach");
    copy_plugins(dir);
    require_ha_config(dir, ob);

    bson_error_t berr;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(test_mongodb_uri(), &berr);
    assert_non_null(uri);
    const mongoc_host_list_t *host = mongoc_uri_get_hosts(uri);
    test_proxy_t *proxy[2];
    char proxied[2][256];
    for (int i = 0; i < 2; i++) {
        proxy[i] = test_proxy_start(host->host, host->port);
        assert_non_null(proxy[i]);
        /* Short waits, so that outboxd notices the outage and the return
         * within a second or two (libmongoc's defaults are 30 s / 10 s). */
        snprintf(proxied[i], sizeof proxied[i],
                 "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=2000&connectTimeoutMS=1000"
                 "&heartbeatFrequencyMS=500",
                 test_proxy_port(proxy[i]));
    }
    mongoc_uri_destroy(uri);

    const char *names[] = {"f1", "f2"};
    char sinks[2048], file[2][700];
    for (int i = 0; i < 2; i++)
        snprintf(file[i], sizeof file[i], "%s/out/%s.jsonl", dir, names[i]);
    snprintf(sinks, sizeof sinks, FILE_SINK("f1", "%s") FILE_SINK("f2", "%s"), file[0], file[1]);
    inst_t *ins = g_ins;
    inst_init(&ins[0], dir, "a", ob, proxied[0], sinks);
    inst_init(&ins[1], dir, "b", ob, proxied[1], sinks);
    sampler_t *sampler = &g_sampler;
    sampler_start(sampler, ob, names, 2);
    inst_start(&ins[0]);
    require_claims(ob, "f1");
    inst_start(&ins[1]);

    put_range(ob, 1, total / 4, NULL);
    /* The fair share (one sink each) settles first: the holders watched
     * below are the ones the outage meets, and each has published (the
     * second quarter) when it comes. */
    int holder[2] = {-1, -1};
    for (int waited = 0; holder[0] < 0 || holder[1] < 0 || holder[0] == holder[1]; waited += 50) {
        if (waited > HANG_MS)
            FAIL_WITH_LOGS("the two sinks were not spread over the two instances within %d s", HANG_MS / 1000);
        sleep_ms(50);
        holder[0] = active_holder(ob, names[0], ins, 2, NULL);
        holder[1] = active_holder(ob, names[1], ins, 2, NULL);
    }
    put_range(ob, total / 4 + 1, total / 2, NULL);
    for (int s = 0; s < 2; s++)
        wait_file_last(file[s], total / 2);

    /* The database goes away for both, for three TTLs. */
    int64_t down_at = mono_ms();
    test_proxy_set_down(proxy[0], true);
    test_proxy_set_down(proxy[1], true);
    /* Each holder at that moment (the newest claims, which nobody can
     * change now; read on the test's own connection) stops publishing on
     * its own while it cannot reach the database: it cannot renew. */
    for (int s = 0; s < 2; s++) {
        char lease[200], owner[80];
        int64_t term;
        bool released;
        snprintf(lease, sizeof lease, "sink:%s", names[s]);
        if (!test_lease_claim(ob, lease, owner, sizeof owner, &term, &released) || released)
            continue; /* between two holders when the outage came */
        int h = strcmp(owner, ins[0].id) == 0 ? 0 : strcmp(owner, ins[1].id) == 0 ? 1 : -1;
        assert_true(h >= 0);
        for (int waited = 0; !said_stop_since(logs[ins[h].run_log].path, names[s], term, down_at); waited += 50) {
            if (waited > HANG_MS)
                FAIL_WITH_LOGS("sink %s: its holder (instance %s, term %" PRId64 ") never said it stopped publishing "
                               "while the database was unreachable",
                               names[s], owner, term);
            sleep_ms(50);
        }
    }
    int64_t stopped_at = mono_ms();
    print_message("# database unreachable: both holders said they stopped publishing within %" PRId64
                  " ms of the outage (lease_ttl_ms %d, renew_ms %d)\n",
                  stopped_at - down_at, test_ha_ttl_ms(), test_ha_renew_ms());
    put_range(ob, total / 2 + 1, total, NULL);
    int64_t until = down_at + 3 * test_ha_ttl_ms();
    if (mono_ms() < until)
        sleep_ms((int)(until - mono_ms()));
    test_proxy_set_down(proxy[0], false);
    test_proxy_set_down(proxy[1], false);

    /* Back: each sink resumes in one instance, and nothing is missing. */
    for (int s = 0; s < 2; s++) {
        wait_active_holder(ob, names[s], ins, 2, NULL);
        wait_file_last(file[s], total);
    }
    inst_term(&ins[0]);
    inst_term(&ins[1]);
    sampler_check(sampler);
    for (int s = 0; s < 2; s++) {
        int terms = check_spans(names[s], NULL, NULL);
        int repeats = check_runs(file[s], total, terms - 1);
        print_message("# sink %s: %d events present after the outage, %d terms, %d lines published again\n",
                      names[s], total, terms, repeats);
    }
    cleanup();
    for (int i = 0; i < 2; i++)
        test_proxy_stop(proxy[i]);
}

static void three_instances_four_sinks_each_runs_at_least_one(void **state) {
    (void)state;
    const int total = test_scaled(2000);
    reset_logs();
    outbox_t *ob = g_ob = test_outbox("ha_three");
    char *dir = g_dir = test_tmpdir("hathree");
    copy_plugins(dir);
    require_ha_config(dir, ob);

    const char *names[] = {"s1", "s2", "s3", "s4"};
    char sinks[4096], file[4][700];
    size_t len = 0;
    for (int s = 0; s < 4; s++) {
        snprintf(file[s], sizeof file[s], "%s/out/%s.jsonl", dir, names[s]);
        len += (size_t)snprintf(sinks + len, sizeof sinks - len,
                                "  - name: %s\n    plugin: file\n    route: \"%s\"\n    options:\n      fsync: never\n",
                                names[s], file[s]);
    }
    inst_t *ins = g_ins;
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        inst_init(&ins[i], dir, ids[i], ob, NULL, sinks);
    sampler_t *sampler = &g_sampler;
    sampler_start(sampler, ob, names, 4);
    inst_start(&ins[0]);
    require_claims(ob, "s1");
    inst_start(&ins[1]);
    inst_start(&ins[2]);

    /* The fair share (ceil(4/3) = 2) spreads them: 2 + 1 + 1. */
    int held[3];
    bool spread = false;
    for (int waited = 0; waited < HANG_MS && !spread; waited += 100) {
        memset(held, 0, sizeof held);
        bool all = true;
        for (int s = 0; s < 4; s++) {
            int h = active_holder(ob, names[s], ins, 3, NULL);
            if (h < 0)
                all = false;
            else
                held[h]++;
        }
        spread = all && held[0] >= 1 && held[1] >= 1 && held[2] >= 1;
        if (!spread)
            sleep_ms(100);
    }
    if (!spread)
        FAIL_WITH_LOGS("after %d s the sinks are held %d/%d/%d by instances a/b/c", HANG_MS / 1000, held[0], held[1],
                       held[2]);
    print_message("# three instances, four sinks: a holds %d, b %d, c %d\n", held[0], held[1], held[2]);

    put_range(ob, 1, total, NULL);
    for (int s = 0; s < 4; s++)
        wait_file_last(file[s], total);
    for (int i = 0; i < 3; i++)
        inst_term(&ins[i]);
    sampler_check(sampler);
    for (int s = 0; s < 4; s++) {
        int terms = check_spans(names[s], NULL, NULL);
        check_runs(file[s], total, terms - 1);
    }
    cleanup();
}

/* What a test leaves, gone: its outboxd, the sampler, the outbox (with
 * N.leases, which test_outbox_drop does not know) and the folder. */
static void cleanup(void) {
    if (g_producing)
        pthread_join(g_producer, NULL);
    g_producing = false;
    free(g_prod.ids);
    g_prod.ids = NULL;
    sampler_stop(&g_sampler);
    for (int i = 0; i < MAX_INSTANCES; i++) {
        if (g_ins[i].running)
            test_daemon_stop(&g_ins[i].d, SIGKILL);
        g_ins[i].running = false;
        inst_free(&g_ins[i]);
    }
    if (g_ob) {
        drop_leases(g_ob);
        test_outbox_drop(g_ob);
        g_ob = NULL;
    }
    if (g_dir) {
        test_rmtree(g_dir);
        free(g_dir);
        g_dir = NULL;
    }
}

static int teardown(void **state) {
    (void)state;
    cleanup();
#ifdef TEST_HA_REDIS
    test_redis_stop_all();
#endif
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(kill9_of_each_holder_five_times_publishes_each_event_once, teardown),
        cmocka_unit_test_teardown(database_unreachable_longer_than_the_ttl, teardown),
        cmocka_unit_test_teardown(three_instances_four_sinks_each_runs_at_least_one, teardown),
    };
    /* OUTBOX_TEST_HA_ONLY=NAME (a cmocka filter, * allowed) runs one test:
     * each takes up to a minute. */
    if (getenv("OUTBOX_TEST_HA_ONLY"))
        cmocka_set_test_filter(getenv("OUTBOX_TEST_HA_ONLY"));
    return TEST_RUN("ha", tests);
}
