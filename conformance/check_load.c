/*
 * check_load.c - checks 1 and 2: the plugin loads as outboxd loads it (the
 * same loader, outboxd/plugin.c: file trust, ABI major, sizes, build tag,
 * name, required callbacks, init), and its option table is one outboxd can
 * serve (keys unique, known types, enum choices, sane ranges, "*" last,
 * distinct offsets for mapped options).
 */
#include "conformance.h"

#include "outboxd/conffile.h"
#include "outboxd/options.h"
#include "outboxd/plugin.h"
#include "outboxd/secrets.h"

#include <stdio.h>
#include <string.h>

void check_load(conformance_t *c) {
    static const char name[] = "loads as outboxd loads it (ABI version, sizes, build tag, name, callbacks, init)";
    char errbuf[2048];
    c->host = sinkhost_load(c->args.plugin, errbuf, sizeof errbuf);
    if (!c->host) {
        tap_not_ok(name, "%s", errbuf);
        return;
    }
    const outbox_sink_plugin_t *p = sinkhost_plugin(c->host);
    tap_ok(name);
    tap_diag("plugin %s %s (%s): ABI %u.%u, struct %u bytes, from %s", p->name, p->version ? p->version : "",
             p->description ? p->description : "no description", p->abi_major, p->abi_minor, p->struct_size,
             sinkhost_plugin_path(c->host));
    char has[256] = "";
#define HAS(m)                                                                       \
    if (OUTBOXD_PLUGIN_HAS(p, m) && p->m)                                            \
        snprintf(has + strlen(has), sizeof has - strlen(has), "%s%s", has[0] ? " " : "", #m);
    HAS(publish) HAS(poll) HAS(flush) HAS(check) HAS(publish_some) HAS(stats) HAS(recover) HAS(init) HAS(fini)
#undef HAS
    tap_diag("callbacks besides open and close: %s", has[0] ? has : "none");

    sinkhost_quiet(c->host, !c->args.verbose);
    sinkhost_origin(c->host, "command line");
    sinkhost_route(c->host, c->args.route);
    sinkhost_payload(c->host, c->args.payload);
    for (size_t i = 0; i < c->args.n_options; i++) {
        sinkhost_set(c->host, c->args.keys[i], c->args.values[i]);
        /* Before anything can print them, as outboxd registers a config's
         * secrets when it loads it (a KEY_file's content is registered by
         * sinkhost when the options are resolved). */
        size_t klen = strlen(c->args.keys[i]);
        bool names_a_file = klen > 5 && strcmp(c->args.keys[i] + klen - 5, "_file") == 0;
        if (conformance_secret_option(p, c->args.keys[i]) && !names_a_file)
            outboxd_secrets_add(c->args.values[i]);
        outboxd_secrets_add_uri(c->args.values[i]);
    }
}

bool conformance_secret_option(const outbox_sink_plugin_t *p, const char *key) {
    if (outboxd_conf_key_is_secret(key))
        return true;
    size_t len = strlen(key);
    for (size_t i = 0; outboxd_option_entry(p, i); i++) {
        const outbox_sink_option_t *o = outboxd_option_entry(p, i);
        size_t klen = strlen(o->key);
        if (o->type == OUTBOX_SINK_OPT_SECRET &&
            (strcmp(o->key, key) == 0 || (len == klen + 5 && strncmp(key, o->key, klen) == 0 &&
                                          strcmp(key + klen, "_file") == 0)))
            return true;
    }
    return false;
}

static bool valid_key(const char *key) {
    if (!key[0])
        return false;
    for (const char *k = key; *k; k++)
        if ((unsigned char)*k <= ' ' || *k == ':' || (unsigned char)*k >= 0x7f)
            return false;
    return true;
}

/* Why entry i of the table is wrong, or NULL. */
static const char *entry_problem(const outbox_sink_plugin_t *p, size_t i, char *buf, size_t size) {
    const outbox_sink_option_t *o = outboxd_option_entry(p, i);
    int max_type = p->abi_minor >= 1 ? OUTBOX_SINK_OPT_SECRET : OUTBOX_SINK_OPT_ENUM;
    if (strcmp(o->key, "*") == 0) {
        if (outboxd_option_entry(p, i + 1) != NULL)
            return "\"*\" (OUTBOX_SINK_OPTION_ANY) must be the last entry before OUTBOX_SINK_OPTION_END";
        return NULL;
    }
    if (!valid_key(o->key)) {
        snprintf(buf, size, "option \"%s\": a key is printable ASCII without spaces or ':'", o->key);
        return buf;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(outboxd_option_entry(p, j)->key, o->key) == 0) {
            snprintf(buf, size, "option %s is declared twice", o->key);
            return buf;
        }
    }
    if ((int)o->type < OUTBOX_SINK_OPT_STRING || (int)o->type > max_type) {
        snprintf(buf, size, "option %s: type %d is not an option type of ABI %u.%u", o->key, (int)o->type,
                 p->abi_major, p->abi_minor);
        return buf;
    }
    if (o->type == OUTBOX_SINK_OPT_ENUM && (!o->choices || !o->choices[0])) {
        snprintf(buf, size, "option %s: an ENUM needs choices (\"a|b|c\")", o->key);
        return buf;
    }
    if ((o->type == OUTBOX_SINK_OPT_INT || o->type == OUTBOX_SINK_OPT_DURATION) && o->min > o->max) {
        snprintf(buf, size, "option %s: min %lld is above max %lld", o->key, (long long)o->min, (long long)o->max);
        return buf;
    }
    size_t offset;
    if (outboxd_option_mapped(p, o, &offset)) {
        for (size_t j = 0; j < i; j++) {
            size_t other;
            const outbox_sink_option_t *e = outboxd_option_entry(p, j);
            if (strcmp(e->key, "*") != 0 && outboxd_option_mapped(p, e, &other) && other == offset) {
                snprintf(buf, size, "options %s and %s are written at the same offset %zu", e->key, o->key, offset);
                return buf;
            }
        }
    }
    return NULL;
}

void check_options(conformance_t *c) {
    static const char name[] = "the option table is well-formed (unique keys, known types, choices, ranges)";
    if (!c->host) {
        tap_skip(name, "the plugin did not load");
        return;
    }
    const outbox_sink_plugin_t *p = sinkhost_plugin(c->host);
    char buf[512];
    size_t n = 0;
    for (; outboxd_option_entry(p, n); n++) {
        const char *why = entry_problem(p, n, buf, sizeof buf);
        if (why) {
            tap_not_ok(name, "%s", why);
            return;
        }
    }
    tap_ok(name);
    tap_diag("%zu options (entries of %zu bytes)", n, outboxd_option_stride(p));
}
