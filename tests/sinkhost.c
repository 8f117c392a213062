/*
 * sinkhost.c - see sinkhost.h. A host for one plugin, built from outboxd's
 * own loader, option code and check (outboxd/libhost.la), plus the books
 * of every event the plugin was offered: which it took, which it acked and
 * how, so that each break of sink.h's rules is seen where it happens.
 *
 * One lock guards the books and the log; host->ack and host->log take it
 * briefly and never call out while holding it (sink.h: the order is always
 * plugin lock, then host lock).
 */
#include "sinkhost.h"

#include "outboxd/check.h"
#include "outboxd/conffile.h"
#include "outboxd/options.h"
#include "outboxd/plugin.h"
#include "outboxd/secrets.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where an event stands in the books. */
typedef enum {
    EV_OFFERED, /* inside the publish call that passed it */
    EV_TAKEN,   /* the plugin's: exactly one ack due */
    EV_ACKED,   /* acked since it was last taken */
    EV_GIVEN_BACK /* not taken, or still unacked at a failed publish or at close */
} ev_state_t;

typedef struct {
    uint64_t seq;
    ev_state_t state;
    size_t n_acks;          /* ever, over every publish of this seq */
    size_t last_ack;        /* index into acks of the latest */
} record_t;

typedef enum { PHASE_CLOSED, PHASE_OPENING, PHASE_OPEN, PHASE_CLOSING } phase_t;

/* The loaded plugin, shared by the hosts sinkhost_another made: loaded
 * (and init called) once, unloaded (after fini) with the last host. */
typedef struct {
    outboxd_plugins_t *plugins;
    size_t refs;
} loaded_t;

static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;

struct sinkhost {
    loaded_t *loaded;
    const outbox_sink_plugin_t *plugin;
    char *origin;
    bool quiet;

    /* The sink as a config file would give it; options in the order set. */
    outboxd_sink_conf_t conf;
    char *payload_name;       /* "json" | "bson", what host->payload says */
    outboxd_options_t opts;   /* resolved at open, kept until close */
    bool resolved;

    outbox_sink_host_t host;
    void *state;

    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t acked;     /* broadcast on every ack */
    phase_t phase;
    record_t *recs;           /* one per seq ever offered */
    size_t n_recs, cap_recs;
    size_t *slots;            /* hash of seq -> index into recs + 1 (0: empty) */
    size_t n_slots;
    sinkhost_ack_t *acks;     /* in arrival order */
    size_t n_acks, cap_acks;
    size_t outstanding;       /* records in EV_TAKEN */
    size_t violations[SINKHOST_N_RULES];
    char first[SINKHOST_N_RULES][512];
    char *log;                /* every line, "\n"-terminated */
    size_t log_len, log_cap;
    char *log_snapshot;       /* what sinkhost_log returned last */
    void (*on_ack)(void *ctx, const sinkhost_ack_t *ack);
    void *on_ack_ctx;
};

static void *xrealloc(void *p, size_t size) {
    void *q = realloc(p, size);
    if (!q)
        abort();
    return q;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static const char *status_name(int status) {
    return status == OUTBOX_SINK_OK ? "OK" : status == OUTBOX_SINK_RETRY ? "RETRY"
         : status == OUTBOX_SINK_FATAL ? "FATAL" : "not a status";
}

/* Records a break of rule; called with the lock held. */
static void violation(sinkhost_t *h, sinkhost_rule_t rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(sinkhost_t *h, sinkhost_rule_t rule, const char *fmt, ...) {
    if (h->violations[rule]++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->first[rule], sizeof h->first[rule], fmt, ap);
        va_end(ap);
    }
}

/* ---- the books: seq -> record --------------------------------------------- */

static size_t slot_of(uint64_t seq, size_t n_slots) {
    /* Fibonacci hashing: seqs are often consecutive small numbers. */
    return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> 20) & (n_slots - 1);
}

static record_t *find(sinkhost_t *h, uint64_t seq) {
    if (h->n_slots == 0)
        return NULL;
    for (size_t i = slot_of(seq, h->n_slots);; i = (i + 1) & (h->n_slots - 1)) {
        if (h->slots[i] == 0)
            return NULL;
        if (h->recs[h->slots[i] - 1].seq == seq)
            return &h->recs[h->slots[i] - 1];
    }
}

static void rehash(sinkhost_t *h, size_t n_slots) {
    free(h->slots);
    h->slots = calloc(n_slots, sizeof *h->slots);
    if (!h->slots)
        abort();
    h->n_slots = n_slots;
    for (size_t r = 0; r < h->n_recs; r++) {
        size_t i = slot_of(h->recs[r].seq, n_slots);
        while (h->slots[i] != 0)
            i = (i + 1) & (n_slots - 1);
        h->slots[i] = r + 1;
    }
}

static record_t *find_or_add(sinkhost_t *h, uint64_t seq) {
    record_t *rec = find(h, seq);
    if (rec)
        return rec;
    if (h->n_recs == h->cap_recs) {
        h->cap_recs = h->cap_recs ? h->cap_recs * 2 : 64;
        h->recs = xrealloc(h->recs, h->cap_recs * sizeof *h->recs);
    }
    rec = &h->recs[h->n_recs++];
    memset(rec, 0, sizeof *rec);
    rec->seq = seq;
    rec->state = EV_GIVEN_BACK;
    if (h->n_recs * 2 > h->n_slots) {
        rehash(h, h->n_slots ? h->n_slots * 2 : 128);
    } else {
        size_t i = slot_of(seq, h->n_slots);
        while (h->slots[i] != 0)
            i = (i + 1) & (h->n_slots - 1);
        h->slots[i] = h->n_recs;
    }
    return rec;
}

/* ---- host services ---------------------------------------------------------- */

static void host_log(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...) {
    sinkhost_t *h = ctx;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    pthread_mutex_lock(&h->lock);
    if (h->log_len + len + 2 > h->log_cap) {
        h->log_cap = (h->log_len + len + 2) * 2;
        h->log = xrealloc(h->log, h->log_cap);
    }
    memcpy(h->log + h->log_len, line, len);
    h->log_len += len;
    h->log[h->log_len++] = '\n';
    h->log[h->log_len] = '\0';
    bool quiet = h->quiet;
    pthread_mutex_unlock(&h->lock);
    if (!quiet) {
        outboxd_secrets_scrub(line, sizeof line);
        fprintf(stderr, "# sink log (%d): %s\n", (int)level, line);
    }
}

static void host_ack(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error) {
    sinkhost_t *h = ctx;
    sinkhost_ack_t ack = {.seq = seq, .status = status};
    snprintf(ack.error, sizeof ack.error, "%s", error ? error : "");
    unsigned long long s = (unsigned long long)seq;

    pthread_mutex_lock(&h->lock);
    if (status != OUTBOX_SINK_OK && status != OUTBOX_SINK_RETRY && status != OUTBOX_SINK_FATAL)
        violation(h, SINKHOST_BAD_STATUS, "event %llu acked with status %d, not OK, RETRY or FATAL",
                  s, (int)status);
    record_t *rec = find(h, seq);
    if (h->phase != PHASE_OPEN && h->phase != PHASE_CLOSING) {
        violation(h, SINKHOST_ACK_OUTSIDE_OPEN, "event %llu acked %s %s", s, status_name(status),
                  h->phase == PHASE_OPENING ? "during open" : rec ? "after close returned"
                                                                  : "before any open");
    } else if (!rec) {
        violation(h, SINKHOST_ACK_UNKNOWN, "event %llu acked %s but was never published", s,
                  status_name(status));
    } else if (rec->state == EV_ACKED) {
        violation(h, SINKHOST_DOUBLE_ACK, "event %llu acked twice: %s, then %s", s,
                  status_name(h->acks[rec->last_ack].status), status_name(status));
    } else if (rec->state == EV_GIVEN_BACK) {
        violation(h, SINKHOST_ACK_NOT_TAKEN,
                  "event %llu acked %s although the plugin did not take it (beyond *taken, or "
                  "unacked when publish returned RETRY/FATAL)", s, status_name(status));
    } else {
        if (rec->state == EV_TAKEN)
            h->outstanding--;
        rec->state = EV_ACKED;
    }
    if (h->n_acks == h->cap_acks) {
        h->cap_acks = h->cap_acks ? h->cap_acks * 2 : 64;
        h->acks = xrealloc(h->acks, h->cap_acks * sizeof *h->acks);
    }
    h->acks[h->n_acks] = ack;
    if (rec) {
        rec->n_acks++;
        rec->last_ack = h->n_acks;
    }
    h->n_acks++;
    pthread_cond_broadcast(&h->acked);
    void (*fn)(void *, const sinkhost_ack_t *) = h->on_ack;
    void *fn_ctx = h->on_ack_ctx;
    pthread_mutex_unlock(&h->lock);
    if (fn)
        fn(fn_ctx, &ack);
}

static const char *host_option(void *ctx, const char *key) {
    sinkhost_t *h = ctx;
    return outboxd_options_get(&h->opts, key);
}

static const char *host_option_next(void *ctx, size_t *cursor, const char **value) {
    sinkhost_t *h = ctx;
    return outboxd_options_next(&h->opts, cursor, value);
}

static int host_options_fill(void *ctx, void *config) {
    sinkhost_t *h = ctx;
    return outboxd_options_fill(&h->opts, config);
}

/* ---- set-up -------------------------------------------------------------------- */

sinkhost_t *sinkhost_load(const char *plugin_name, char *errbuf, size_t size) {
    char *dir, *name;
    size_t len = strlen(plugin_name);
    if (len > 3 && strcmp(plugin_name + len - 3, ".so") == 0) {
        const char *slash = strrchr(plugin_name, '/');
        dir = slash ? strndup(plugin_name, (size_t)(slash - plugin_name) + (slash == plugin_name))
                    : xstrdup(".");
        const char *base = slash ? slash + 1 : plugin_name;
        name = strndup(base, strlen(base) - 3);
    } else {
        const char *builddir = getenv("OUTBOX_TEST_BUILDDIR");
        size_t n = strlen(builddir ? builddir : ".") + len + 16;
        dir = malloc(n);
        if (dir)
            snprintf(dir, n, "%s/sinks/%s", builddir ? builddir : ".", plugin_name);
        name = xstrdup(plugin_name);
    }
    if (!dir || !name)
        abort();

    sinkhost_t *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->loaded = calloc(1, sizeof *h->loaded);
    if (!h->loaded)
        abort();
    h->loaded->plugins = outboxd_plugins_new(dir);
    h->loaded->refs = 1;
    h->plugin = outboxd_plugins_load(h->loaded->plugins, name, errbuf, size);
    free(dir);
    if (!h->plugin) {
        outboxd_plugins_free(h->loaded->plugins);
        free(h->loaded);
        free(h);
        free(name);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->acked, NULL);
    h->origin = xstrdup("sinkhost");
    h->conf.name = xstrdup("test");
    h->conf.plugin = name;
    h->conf.route = xstrdup("");
    h->conf.payload = OUTBOXD_PAYLOAD_JSON;
    h->conf.line = h->conf.column = 1;
    h->payload_name = xstrdup("json");
    h->phase = PHASE_CLOSED;
    h->log = xstrdup("");
    h->log_cap = 1;
    return h;
}

sinkhost_t *sinkhost_another(sinkhost_t *h) {
    sinkhost_t *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    pthread_mutex_lock(&loaded_lock);
    h->loaded->refs++;
    pthread_mutex_unlock(&loaded_lock);
    o->loaded = h->loaded;
    o->plugin = h->plugin;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->acked, NULL);
    o->origin = xstrdup(h->origin);
    o->quiet = h->quiet;
    o->conf.name = xstrdup(h->conf.name);
    o->conf.plugin = xstrdup(h->conf.plugin);
    o->conf.route = xstrdup(h->conf.route);
    o->conf.payload = h->conf.payload;
    o->conf.line = o->conf.column = 1;
    o->payload_name = xstrdup(h->payload_name);
    for (size_t i = 0; i < h->conf.n_options; i++)
        sinkhost_set(o, h->conf.options[i].key, h->conf.options[i].value);
    o->phase = PHASE_CLOSED;
    o->log = xstrdup("");
    o->log_cap = 1;
    return o;
}

sinkhost_t *sinkhost_new(const char *plugin_name) {
    char errbuf[2048];
    sinkhost_t *h = sinkhost_load(plugin_name, errbuf, sizeof errbuf);
    if (!h)
        fprintf(stderr, "# sinkhost: %s\n", errbuf);
    return h;
}

void sinkhost_set(sinkhost_t *h, const char *key, const char *value) {
    for (size_t i = 0; i < h->conf.n_options; i++) {
        if (strcmp(h->conf.options[i].key, key) == 0) {
            free(h->conf.options[i].value);
            h->conf.options[i].value = xstrdup(value);
            return;
        }
    }
    h->conf.options = xrealloc(h->conf.options, (h->conf.n_options + 1) * sizeof *h->conf.options);
    outboxd_option_t *o = &h->conf.options[h->conf.n_options++];
    memset(o, 0, sizeof *o);
    o->key = xstrdup(key);
    o->value = xstrdup(value);
    /* As the config loader marks it: a key that names a credential. */
    o->secret = outboxd_conf_key_is_secret(key);
    o->line = o->value_line = (int)h->conf.n_options;
    o->column = 1;
    o->value_column = (int)strlen(key) + 3;
}

void sinkhost_route(sinkhost_t *h, const char *route) {
    free(h->conf.route);
    h->conf.route = xstrdup(route);
}

void sinkhost_payload(sinkhost_t *h, const char *payload) {
    free(h->payload_name);
    h->payload_name = xstrdup(payload);
    h->conf.payload = strcmp(payload, "bson") == 0 ? OUTBOXD_PAYLOAD_BSON : OUTBOXD_PAYLOAD_JSON;
}

void sinkhost_origin(sinkhost_t *h, const char *origin) {
    free(h->origin);
    h->origin = xstrdup(origin);
}

void sinkhost_quiet(sinkhost_t *h, bool quiet) {
    pthread_mutex_lock(&h->lock);
    h->quiet = quiet;
    pthread_mutex_unlock(&h->lock);
}

long sinkhost_destination(sinkhost_t *h, const char *type, const char *key, char *out, size_t size) {
    return outboxd_route_expand(h->conf.route, type, key, out, size);
}

const outbox_sink_plugin_t *sinkhost_plugin(sinkhost_t *h) {
    return h->plugin;
}

const char *sinkhost_plugin_path(sinkhost_t *h) {
    return outboxd_plugins_path(h->loaded->plugins, h->plugin);
}

void *sinkhost_state(sinkhost_t *h) {
    return h->state;
}

const outbox_sink_host_t *sinkhost_host(sinkhost_t *h) {
    return &h->host;
}

/* ---- the callbacks ------------------------------------------------------------- */

/* A callback's result, checked: anything but OK/RETRY/FATAL is recorded
 * and read as FATAL, as outboxd reads it. */
static int result(sinkhost_t *h, const char *callback, int rc) {
    if (rc == OUTBOX_SINK_OK || rc == OUTBOX_SINK_RETRY || rc == OUTBOX_SINK_FATAL)
        return rc;
    pthread_mutex_lock(&h->lock);
    violation(h, SINKHOST_BAD_STATUS, "%s returned %d, not OK, RETRY or FATAL", callback, rc);
    pthread_mutex_unlock(&h->lock);
    return OUTBOX_SINK_FATAL;
}

int sinkhost_check(sinkhost_t *h, char *errbuf, size_t size) {
    outboxd_options_t opts;
    errbuf[0] = '\0';
    /* outboxd_sink_check checks the payload first, as outboxd does. */
    if (!outboxd_options_resolve(h->origin, &h->conf, h->plugin, &opts, errbuf, size))
        return OUTBOX_SINK_FATAL;
    bool ok = outboxd_sink_check(h->origin, &h->conf, h->plugin, &opts, errbuf, size);
    outboxd_options_free(&opts);
    return ok ? OUTBOX_SINK_OK : OUTBOX_SINK_FATAL;
}

int sinkhost_open(sinkhost_t *h, char *errbuf, size_t size) {
    errbuf[0] = '\0';
    if (h->phase != PHASE_CLOSED) {
        snprintf(errbuf, size, "sinkhost: an instance is open already");
        return OUTBOX_SINK_FATAL;
    }
    if (h->resolved)
        outboxd_options_free(&h->opts);
    h->resolved = false;
    if (!outboxd_sink_payload_check(h->origin, &h->conf, h->plugin, errbuf, size))
        return OUTBOX_SINK_FATAL;
    if (!outboxd_options_resolve(h->origin, &h->conf, h->plugin, &h->opts, errbuf, size))
        return OUTBOX_SINK_FATAL;
    h->resolved = true;
    /* As outboxd does, so that what the host prints is scrubbed; the
     * recorded log (sinkhost_log) stays as the plugin wrote it. */
    outboxd_secrets_add_options(&h->opts);

    memset(&h->host, 0, sizeof h->host);
    h->host.struct_size = sizeof h->host;
    h->host.abi_major = OUTBOX_SINK_ABI_MAJOR;
    h->host.abi_minor = OUTBOX_SINK_ABI_MINOR;
    h->host.ctx = h;
    h->host.sink_name = h->conf.name;
    h->host.log = host_log;
    h->host.ack = host_ack;
    h->host.option = host_option;
    h->host.option_next = host_option_next;
    h->host.route = h->conf.route;
    h->host.payload = h->payload_name;
    h->host.options_fill = host_options_fill;
    /* ABI 1.2: the test host lays nothing out: every plugin sends its own
     * layout (outboxd's formats are tested with outboxd, test_formats.sh). */
    h->host.format = "native";
    h->host.message_as_given = 0;

    pthread_mutex_lock(&h->lock);
    h->phase = PHASE_OPENING;
    pthread_mutex_unlock(&h->lock);
    void *state = NULL;
    int rc = result(h, "open", h->plugin->open(&h->host, &state, errbuf, size));
    if (size)
        errbuf[size - 1] = '\0';
    pthread_mutex_lock(&h->lock);
    h->phase = rc == OUTBOX_SINK_OK ? PHASE_OPEN : PHASE_CLOSED;
    pthread_mutex_unlock(&h->lock);
    h->state = rc == OUTBOX_SINK_OK ? state : NULL;
    return rc;
}

int sinkhost_publish(sinkhost_t *h, const outbox_sink_event_t *ev, size_t n, size_t *taken,
                     char *errbuf, size_t size) {
    size_t took = 0;
    errbuf[0] = '\0';
    if (taken)
        *taken = 0;
    if (h->phase != PHASE_OPEN) {
        snprintf(errbuf, size, "sinkhost: no open instance to publish to");
        return OUTBOX_SINK_FATAL;
    }
    /* Marked before the call: the plugin may ack from inside it. */
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++)
        find_or_add(h, ev[i].seq)->state = EV_OFFERED;
    pthread_mutex_unlock(&h->lock);

    bool some = OUTBOXD_PLUGIN_HAS(h->plugin, publish_some) && h->plugin->publish_some;
    int rc;
    if (some) {
        rc = result(h, "publish_some",
                    h->plugin->publish_some(h->state, ev, n, &took, errbuf, size));
    } else {
        rc = result(h, "publish", h->plugin->publish(h->state, ev, n, errbuf, size));
    }
    if (size)
        errbuf[size - 1] = '\0';

    pthread_mutex_lock(&h->lock);
    if (some && took > n) {
        violation(h, SINKHOST_TAKEN_OVER_N, "publish_some set *taken to %zu for a batch of %zu", took, n);
        took = n;
    }
    if (!some)
        took = 0;
    for (size_t i = 0; i < n; i++) {
        record_t *rec = find(h, ev[i].seq);
        bool is_taken = some ? i < took : rc == OUTBOX_SINK_OK;
        if (rec->state == EV_ACKED) {
            if (!some)
                took++;
            else if (!is_taken)
                violation(h, SINKHOST_ACK_NOT_TAKEN,
                          "event %llu (index %zu) was acked, but publish_some took only %zu of %zu",
                          (unsigned long long)ev[i].seq, i, took, n);
        } else if (rec->state == EV_OFFERED) {
            rec->state = is_taken ? EV_TAKEN : EV_GIVEN_BACK;
            if (is_taken)
                h->outstanding++;
        }
    }
    if (!some && rc == OUTBOX_SINK_OK)
        took = n;
    pthread_mutex_unlock(&h->lock);
    if (taken)
        *taken = took;
    return rc;
}

int sinkhost_poll(sinkhost_t *h, int timeout_ms, char *errbuf, size_t size) {
    errbuf[0] = '\0';
    if (h->phase != PHASE_OPEN || !h->plugin->poll)
        return OUTBOX_SINK_OK;
    int rc = result(h, "poll", h->plugin->poll(h->state, timeout_ms, errbuf, size));
    if (size)
        errbuf[size - 1] = '\0';
    return rc;
}

int sinkhost_flush(sinkhost_t *h, int timeout_ms, char *errbuf, size_t size) {
    errbuf[0] = '\0';
    if (h->phase != PHASE_OPEN)
        return OUTBOX_SINK_OK;
    int rc = OUTBOX_SINK_OK;
    if (h->plugin->flush) {
        rc = result(h, "flush", h->plugin->flush(h->state, timeout_ms, errbuf, size));
        if (size)
            errbuf[size - 1] = '\0';
    }
    if (rc == OUTBOX_SINK_OK) {
        /* Acks only lower the count: what is outstanding now was at return. */
        pthread_mutex_lock(&h->lock);
        if (h->outstanding > 0) {
            if (h->plugin->flush)
                violation(h, SINKHOST_FLUSH_EARLY, "flush returned OK with %zu events unacked",
                          h->outstanding);
            else
                violation(h, SINKHOST_FLUSH_EARLY,
                          "the plugin has no flush (so publish must ack before it returns), yet "
                          "%zu events were unacked", h->outstanding);
        }
        pthread_mutex_unlock(&h->lock);
    }
    return rc;
}

void sinkhost_close(sinkhost_t *h) {
    if (h->phase != PHASE_OPEN)
        return;
    pthread_mutex_lock(&h->lock);
    h->phase = PHASE_CLOSING;
    pthread_mutex_unlock(&h->lock);
    h->plugin->close(h->state);
    h->state = NULL;
    pthread_mutex_lock(&h->lock);
    h->phase = PHASE_CLOSED;
    /* sink.h: events still unacked are treated as not delivered. */
    for (size_t i = 0; i < h->n_recs; i++)
        if (h->recs[i].state == EV_TAKEN || h->recs[i].state == EV_OFFERED)
            h->recs[i].state = EV_GIVEN_BACK;
    h->outstanding = 0;
    pthread_mutex_unlock(&h->lock);
    /* Options stay resolved: a thread the plugin failed to stop may still
     * read them, and sinkhost_open or sinkhost_free releases them. */
}

/* ---- reading the books --------------------------------------------------------- */

size_t sinkhost_n_acks(sinkhost_t *h) {
    pthread_mutex_lock(&h->lock);
    size_t n = h->n_acks;
    pthread_mutex_unlock(&h->lock);
    return n;
}

bool sinkhost_ack_of(sinkhost_t *h, uint64_t seq, sinkhost_ack_t *out) {
    pthread_mutex_lock(&h->lock);
    record_t *rec = find(h, seq);
    bool found = rec && rec->n_acks > 0;
    if (found && out)
        *out = h->acks[rec->last_ack];
    pthread_mutex_unlock(&h->lock);
    return found;
}

size_t sinkhost_acks_for(sinkhost_t *h, uint64_t seq) {
    pthread_mutex_lock(&h->lock);
    record_t *rec = find(h, seq);
    size_t n = rec ? rec->n_acks : 0;
    /* Acks for a seq that was never offered are in the list, not the books. */
    if (!rec)
        for (size_t i = 0; i < h->n_acks; i++)
            n += h->acks[i].seq == seq;
    pthread_mutex_unlock(&h->lock);
    return n;
}

bool sinkhost_ack_at(sinkhost_t *h, size_t i, sinkhost_ack_t *out) {
    pthread_mutex_lock(&h->lock);
    bool found = i < h->n_acks;
    if (found && out)
        *out = h->acks[i];
    pthread_mutex_unlock(&h->lock);
    return found;
}

size_t sinkhost_outstanding(sinkhost_t *h) {
    pthread_mutex_lock(&h->lock);
    size_t n = h->outstanding;
    pthread_mutex_unlock(&h->lock);
    return n;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sinkhost_wait_acks(sinkhost_t *h, size_t n, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (sinkhost_n_acks(h) >= n)
            return true;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        int slice = left < 100 ? (int)left : 100;
        if (h->phase == PHASE_OPEN && h->plugin->poll) {
            char errbuf[512];
            sinkhost_poll(h, slice, errbuf, sizeof errbuf);
            slice = 5; /* a poll that returns at once must not spin */
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)slice * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&h->lock);
        if (h->n_acks < n)
            pthread_cond_timedwait(&h->acked, &h->lock, &ts);
        pthread_mutex_unlock(&h->lock);
    }
}

void sinkhost_on_ack(sinkhost_t *h, void (*fn)(void *ctx, const sinkhost_ack_t *ack), void *ctx) {
    pthread_mutex_lock(&h->lock);
    h->on_ack = fn;
    h->on_ack_ctx = ctx;
    pthread_mutex_unlock(&h->lock);
}

const char *sinkhost_log(sinkhost_t *h) {
    pthread_mutex_lock(&h->lock);
    free(h->log_snapshot);
    h->log_snapshot = xstrdup(h->log);
    pthread_mutex_unlock(&h->lock);
    return h->log_snapshot;
}

size_t sinkhost_violations(sinkhost_t *h, sinkhost_rule_t rule, char *first, size_t size) {
    if ((unsigned)rule >= SINKHOST_N_RULES)
        return 0;
    pthread_mutex_lock(&h->lock);
    size_t n = h->violations[rule];
    if (first && size)
        snprintf(first, size, "%s", h->first[rule]);
    pthread_mutex_unlock(&h->lock);
    return n;
}

void sinkhost_free(sinkhost_t *h) {
    if (!h)
        return;
    sinkhost_close(h);
    if (h->resolved)
        outboxd_options_free(&h->opts);
    /* Unloading runs the plugin's fini (outboxd does it at exit), after
     * every host of the plugin closed. */
    pthread_mutex_lock(&loaded_lock);
    bool last = --h->loaded->refs == 0;
    pthread_mutex_unlock(&loaded_lock);
    if (last) {
        outboxd_plugins_free(h->loaded->plugins);
        free(h->loaded);
    }
    for (size_t i = 0; i < h->conf.n_options; i++) {
        free(h->conf.options[i].key);
        free(h->conf.options[i].value);
    }
    free(h->conf.options);
    free(h->conf.name);
    free(h->conf.plugin);
    free(h->conf.route);
    free(h->payload_name);
    free(h->origin);
    free(h->recs);
    free(h->slots);
    free(h->acks);
    free(h->log);
    free(h->log_snapshot);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->acked);
    free(h);
}
