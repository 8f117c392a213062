/*
 * sinkset.c - see sinkset.h.
 *
 * Sinks that survive a reload keep pointing into the configuration they
 * were started with, so configurations are reference counted: the old one
 * is freed when its last running sink stops.
 */
#include "sinkset.h"

#include "check.h"
#include "lease_doc.h"
#include "log.h"
#include "options.h"
#include "secrets.h"
#include "sink_runner.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    outboxd_conf_t *conf;
    char *path;
    int refs; /* touched by the main thread only */
} conf_ref_t;

typedef struct {
    conf_ref_t *ref;
    const outboxd_sink_conf_t *sink;
    outboxd_sink_params_t params;
    bool runs;              /* false: optional sink left out */
    atomic_bool stop;       /* this sink's own stop flag */
    atomic_bool release;    /* set before stop at SIGTERM: hand the lease over */
    outboxd_sink_runner_t *runner;
} entry_t;

struct outboxd_sinkset {
    conf_ref_t *ref;
    entry_t **entries;
    size_t n;
};

static void ref_release(conf_ref_t *ref) {
    if (--ref->refs == 0) {
        outboxd_conf_free(ref->conf);
        free(ref->path);
        free(ref);
    }
}

static void entry_free(entry_t *e) {
    if (e->runner)
        outboxd_sink_runner_join(e->runner); /* takes params.options */
    else
        outboxd_options_free(&e->params.options);
    ref_release(e->ref);
    free(e);
}

outboxd_sinkset_t *outboxd_sinkset_prepare(outboxd_conf_t *conf, const char *path,
                                           outboxd_plugins_t *plugins, char *errbuf,
                                           size_t errbuf_size) {
    outboxd_sinkset_t *set = calloc(1, sizeof *set);
    set->ref = calloc(1, sizeof *set->ref);
    set->ref->conf = conf;
    set->ref->path = strdup(path);
    set->ref->refs = 1;
    set->entries = calloc(conf->n_sinks ? conf->n_sinks : 1, sizeof *set->entries);
    for (size_t i = 0; i < conf->n_sinks; i++) {
        const outboxd_sink_conf_t *s = &conf->sinks[i];
        entry_t *e = calloc(1, sizeof *e);
        e->ref = set->ref;
        e->ref->refs++;
        e->sink = s;
        set->entries[set->n++] = e;
        char why[1600];
        const outbox_sink_plugin_t *p = outboxd_plugins_load(plugins, s->plugin, why, sizeof why);
        if (!p) {
            if (s->optional) {
                LOG_ERR("%s:%d:%d: sink %s (optional) is left out: %s", path, s->line, s->column, s->name, why);
                continue;
            }
            snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: %s", path, s->line, s->column, s->name, why);
            goto fail;
        }
        if (!outboxd_options_resolve(path, s, p, &e->params.options, errbuf, errbuf_size))
            goto fail;
        /* Before the plugin's check can print anything (a secret given as
         * KEY_file is known only now). */
        outboxd_secrets_add_options(&e->params.options);
        /* The payload it asks for, then the plugin's own check: at start,
         * --check and SIGHUP alike, before anything running is touched. */
        if (!outboxd_sink_check(path, s, p, &e->params.options, errbuf, errbuf_size))
            goto fail;
        e->params.sink = s;
        e->params.plugin = p;
        e->params.plugin_path = outboxd_plugins_path(plugins, p);
        e->params.conf = conf;
        e->params.stop = &e->stop;
        e->params.release_at_stop = &e->release;
        e->runs = true;
    }
    return set;
fail:
    /* conf stays the caller's: detach it before freeing the rest. */
    set->ref->conf = NULL;
    for (size_t i = 0; i < set->n; i++)
        entry_free(set->entries[i]);
    free(set->entries);
    ref_release(set->ref);
    free(set);
    return NULL;
}

const outboxd_conf_t *outboxd_sinkset_conf(const outboxd_sinkset_t *set) {
    return set->ref->conf;
}

void outboxd_sinkset_print(const outboxd_sinkset_t *set, FILE *out) {
    for (size_t i = 0; i < set->n; i++) {
        const entry_t *e = set->entries[i];
        if (e->runs)
            fprintf(out, "sink %s: plugin %s %s (%s), ok\n", e->sink->name, e->params.plugin->name,
                    e->params.plugin->version ? e->params.plugin->version : "", e->params.plugin_path);
    }
}

static void entry_lease(entry_t *e, outboxd_leases_t *leases) {
    if (!e->runs || e->params.lease)
        return;
    char name[300];
    outboxd_lease_name_for_sink(name, sizeof name, e->sink->name);
    e->params.lease = outboxd_leases_get(leases, name);
}

void outboxd_sinkset_leases(outboxd_sinkset_t *set, outboxd_leases_t *leases) {
    for (size_t i = 0; i < set->n; i++)
        entry_lease(set->entries[i], leases);
}

void outboxd_sinkset_metrics(outboxd_sinkset_t *set, outboxd_metrics_t *metrics) {
    for (size_t i = 0; metrics && i < set->n; i++) {
        entry_t *e = set->entries[i];
        if (e->runs && !e->params.metrics) {
            e->params.metrics = outboxd_metrics_sink(metrics, e->sink->name, e->sink->plugin);
            atomic_store(&e->params.metrics->optional, e->sink->optional);
        }
    }
}

static void start_entry(entry_t *e, outbox_t *outbox, mongoc_client_pool_t *pool, outboxd_reader_t *reader) {
    if (!e->runs || e->runner)
        return;
    if (!e->params.lease) {
        /* outboxd_sinkset_leases was not called: a bug, said rather than
         * running a sink that nothing fences. */
        LOG_ERR("sink %s: has no lease: not started", e->sink->name);
        return;
    }
    e->params.outbox = outbox;
    e->params.pool = pool;
    e->params.reader = reader;
    /* Before the reader's first read, it waits for this sink's position. */
    outboxd_reader_expect(reader);
    e->runner = outboxd_sink_runner_start(&e->params);
    if (!e->runner) {
        LOG_ERR("sink %s: cannot start its thread", e->sink->name);
        outboxd_reader_join_none(reader);
    }
}

void outboxd_sinkset_start(outboxd_sinkset_t *set, outbox_t *outbox, mongoc_client_pool_t *pool,
                           outboxd_reader_t *reader) {
    for (size_t i = 0; i < set->n; i++)
        start_entry(set->entries[i], outbox, pool, reader);
}

static bool strs_equal(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether a running sink can stay as it is under the new configuration. */
static bool same_sink(const outboxd_conf_t *ca, const outboxd_sink_conf_t *a, const outboxd_conf_t *cb,
                      const outboxd_sink_conf_t *b) {
    if (ca->checkpoint_every_events != cb->checkpoint_every_events ||
        ca->checkpoint_every_ms != cb->checkpoint_every_ms)
        return false;
    if (!strs_equal(a->plugin, b->plugin) || !strs_equal(a->route, b->route) || a->payload != b->payload ||
        a->on_error != b->on_error || a->on_gap != b->on_gap || a->optional != b->optional || a->recover != b->recover ||
        a->format != b->format || a->ce_mode != b->ce_mode || !strs_equal(a->ce_source, b->ce_source) ||
        a->n_types != b->n_types || a->n_options != b->n_options)
        return false;
    for (size_t i = 0; i < a->n_types; i++)
        if (!strs_equal(a->types[i], b->types[i]))
            return false;
    for (size_t i = 0; i < a->n_options; i++) {
        const outboxd_option_t *oa = &a->options[i], *ob = &b->options[i];
        if (!strs_equal(oa->key, ob->key) || !strs_equal(oa->value, ob->value) ||
            oa->is_sequence != ob->is_sequence || oa->n_items != ob->n_items)
            return false;
        /* ["a, b"] and [a, b] join alike: compare the items themselves. */
        for (size_t k = 0; k < oa->n_items; k++)
            if (!strs_equal(oa->items[k].text, ob->items[k].text))
                return false;
    }
    return true;
}

outboxd_sinkset_t *outboxd_sinkset_reload(outboxd_sinkset_t *old, outboxd_sinkset_t *next,
                                          outbox_t *outbox, mongoc_client_pool_t *pool,
                                          outboxd_reader_t *reader, outboxd_leases_t *leases) {
    /* Stop what goes away or changes first, so that a changed sink never
     * runs twice at once (two writers of one checkpoint). */
    for (size_t i = 0; i < old->n; i++) {
        entry_t *o = old->entries[i];
        entry_t *keep_in = NULL;
        size_t j;
        for (j = 0; j < next->n; j++) {
            entry_t *nx = next->entries[j];
            if (strcmp(nx->sink->name, o->sink->name) == 0) {
                if (o->runs && nx->runs && same_sink(old->ref->conf, o->sink, next->ref->conf, nx->sink))
                    keep_in = nx;
                break;
            }
        }
        if (keep_in) {
            /* Unchanged: the running entry takes the new one's place. */
            LOG_INFO("reload: sink %s is unchanged and keeps running", o->sink->name);
            entry_free(keep_in);
            next->entries[j] = o;
        } else {
            bool removed = j == next->n || !next->entries[j]->runs;
            LOG_INFO("reload: sink %s is %s: stopping it", o->sink->name, j < next->n ? "changed" : "removed");
            outboxd_lease_t *lease = o->params.lease;
            outboxd_sink_metrics_t *metrics = o->params.metrics;
            atomic_store(&o->stop, true);
            entry_free(o); /* its runner's last checkpoint is written: the lease may go */
            if (removed)
                outboxd_sink_metrics_hide(metrics);
            /* A changed sink keeps its lease (the same one, by name, for
             * the new runner); a removed one hands it over. */
            if (removed && lease)
                outboxd_leases_forget(leases, lease);
        }
        old->entries[i] = NULL;
    }
    for (size_t j = 0; j < next->n; j++) {
        if (!next->entries[j]->runner && next->entries[j]->runs)
            LOG_INFO("reload: starting sink %s", next->entries[j]->sink->name);
        entry_lease(next->entries[j], leases);
        start_entry(next->entries[j], outbox, pool, reader);
    }
    free(old->entries);
    ref_release(old->ref);
    free(old);
    return next;
}

void outboxd_sinkset_request_stop(outboxd_sinkset_t *set) {
    for (size_t i = 0; set && i < set->n; i++) {
        atomic_store(&set->entries[i]->release, true);
        atomic_store(&set->entries[i]->stop, true);
    }
}

void outboxd_sinkset_stop(outboxd_sinkset_t *set) {
    if (!set)
        return;
    /* All at once, then wait: each flushes on its own thread, and hands
     * its lease over after its last checkpoint. */
    for (size_t i = 0; i < set->n; i++) {
        atomic_store(&set->entries[i]->release, true);
        atomic_store(&set->entries[i]->stop, true);
    }
    for (size_t i = 0; i < set->n; i++)
        entry_free(set->entries[i]);
    free(set->entries);
    ref_release(set->ref);
    free(set);
}
