/*
 * options.c - see options.h.
 */
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const outbox_sink_option_t *find_option(const outbox_sink_plugin_t *plugin, const char *key,
                                               bool *any) {
    *any = false;
    if (!plugin->options)
        return NULL;
    for (const outbox_sink_option_t *o = plugin->options; o->key; o++) {
        if (strcmp(o->key, "*") == 0)
            *any = true;
        else if (strcmp(o->key, key) == 0)
            return o;
    }
    return NULL;
}

static bool is_bool(const char *v) {
    const char *words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(v, words[i]) == 0)
            return true;
    return false;
}

static bool in_choices(const char *choices, const char *v) {
    size_t len = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t wlen = bar ? (size_t)(bar - p) : strlen(p);
        if (wlen == len && strncmp(p, v, len) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static void add(outboxd_options_t *out, const char *key, const char *value) {
    out->keys = realloc(out->keys, (out->n + 1) * sizeof *out->keys);
    out->values = realloc(out->values, (out->n + 1) * sizeof *out->values);
    out->keys[out->n] = strdup(key);
    out->values[out->n] = strdup(value);
    out->n++;
}

bool outboxd_options_resolve(const char *path, const outboxd_sink_conf_t *conf,
                             const outbox_sink_plugin_t *plugin, outboxd_options_t *out,
                             char *errbuf, size_t errbuf_size) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < conf->n_options; i++) {
        const outboxd_option_t *o = &conf->options[i];
        bool any;
        const outbox_sink_option_t *def = find_option(plugin, o->key, &any);
        const char *why = NULL;
        char buf[200];
        if (!def && !any) {
            why = "unknown option";
        } else if (def && def->type == OUTBOX_SINK_OPT_INT) {
            /* Digits with an optional '-', as sink.h says ("decimal"):
             * strtoll alone would take " 5" and "+5", which a plugin's own
             * parser may refuse at open, after --check said ok. */
            char *end;
            errno = 0;
            const char *digits = o->value + (o->value[0] == '-');
            long long v = strtoll(o->value, &end, 10);
            if (errno || *digits < '0' || *digits > '9' || *end) {
                why = "expected an integer";
            } else if (v < def->min || v > def->max) {
                snprintf(buf, sizeof buf, "%lld is out of range %lld..%lld", v, (long long)def->min,
                         (long long)def->max);
                why = buf;
            }
        } else if (def && def->type == OUTBOX_SINK_OPT_BOOL && !is_bool(o->value)) {
            why = "expected true or false";
        } else if (def && def->type == OUTBOX_SINK_OPT_ENUM && !in_choices(def->choices, o->value)) {
            snprintf(buf, sizeof buf, "expected one of %s, got \"%s\"", def->choices, o->value);
            why = buf;
        }
        if (why) {
            snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: option %s: %s (plugin %s)", path, o->line,
                     o->column, conf->name, o->key, why, plugin->name);
            outboxd_options_free(out);
            return false;
        }
        add(out, o->key, o->value);
    }
    for (const outbox_sink_option_t *d = plugin->options; d && d->key; d++) {
        if (strcmp(d->key, "*") == 0 || outboxd_options_get(out, d->key))
            continue;
        if (d->default_value) {
            add(out, d->key, d->default_value);
        } else if (d->required) {
            snprintf(errbuf, errbuf_size, "%s:%d:%d: sink %s: option %s is required by plugin %s (%s)",
                     path, conf->line, conf->column, conf->name, d->key, plugin->name,
                     d->help ? d->help : "no help");
            outboxd_options_free(out);
            return false;
        }
    }
    return true;
}

void outboxd_options_free(outboxd_options_t *opts) {
    for (size_t i = 0; i < opts->n; i++) {
        free(opts->keys[i]);
        free(opts->values[i]);
    }
    free(opts->keys);
    free(opts->values);
    memset(opts, 0, sizeof *opts);
}

const char *outboxd_options_get(const outboxd_options_t *opts, const char *key) {
    for (size_t i = 0; i < opts->n; i++)
        if (strcmp(opts->keys[i], key) == 0)
            return opts->values[i];
    return NULL;
}
