/*
 * plugin.c - see plugin.h. The checks follow PostgreSQL's magic block
 * (dfmgr.c): identification first, version before anything whose layout
 * the version decides, and every mismatch reported as "outboxd has X,
 * plugin has Y" with the file named.
 */
#include "plugin.h"

#include <ltdl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The identification members, which every ABI major keeps in place. */
#define IDENT_SIZE (offsetof(outbox_sink_plugin_t, description))

typedef struct {
    char *path;
    lt_dlhandle handle;
    const outbox_sink_plugin_t *plugin;
} loaded_t;

struct outboxd_plugins {
    char *dir;
    loaded_t *items;
    size_t n;
};

/* lt_dlinit/lt_dlexit are reference counted but not thread-safe. */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

outboxd_plugins_t *outboxd_plugins_new(const char *plugin_dir) {
    outboxd_plugins_t *set = calloc(1, sizeof *set);
    set->dir = strdup(plugin_dir);
    pthread_mutex_lock(&ltdl_lock);
    lt_dlinit();
    pthread_mutex_unlock(&ltdl_lock);
    return set;
}

void outboxd_plugins_free(outboxd_plugins_t *set) {
    if (!set)
        return;
    pthread_mutex_lock(&ltdl_lock);
    for (size_t i = 0; i < set->n; i++) {
        lt_dlclose(set->items[i].handle);
        free(set->items[i].path);
    }
    lt_dlexit();
    pthread_mutex_unlock(&ltdl_lock);
    free(set->items);
    free(set->dir);
    free(set);
}

const char *outboxd_plugins_path(const outboxd_plugins_t *set, const outbox_sink_plugin_t *plugin) {
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i].plugin == plugin)
            return set->items[i].path;
    return NULL;
}

static bool valid_name(const char *name) {
    if (!name[0])
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* The checks of plugin.h, on a plugin struct that came from path. */
static bool check_plugin(const outboxd_plugins_t *set, const char *path, const outbox_sink_plugin_t *p,
                         char *errbuf, size_t errbuf_size) {
    if (!p) {
        snprintf(errbuf, errbuf_size, "%s: outbox_sink_entry() returned NULL", path);
        return false;
    }
    if (p->struct_size < IDENT_SIZE) {
        snprintf(errbuf, errbuf_size,
                 "%s: not a sink plugin: its struct is %u bytes, smaller than the identification "
                 "block (%zu bytes)", path, p->struct_size, (size_t)IDENT_SIZE);
        return false;
    }
    if (p->abi_major != OUTBOX_SINK_ABI_MAJOR) {
        snprintf(errbuf, errbuf_size,
                 "%s: incompatible sink ABI: outboxd has ABI %d.%d, plugin has %u.%u (rebuild the "
                 "plugin against this outboxd's outbox/sink.h)", path, OUTBOX_SINK_ABI_MAJOR,
                 OUTBOX_SINK_ABI_MINOR, p->abi_major, p->abi_minor);
        return false;
    }
    if (p->struct_size < OUTBOX_SINK_PLUGIN_MIN_SIZE) {
        snprintf(errbuf, errbuf_size,
                 "%s: plugin struct too small: outboxd needs at least %zu bytes (ABI %d.0), plugin "
                 "has %u", path, (size_t)OUTBOX_SINK_PLUGIN_MIN_SIZE, OUTBOX_SINK_ABI_MAJOR,
                 p->struct_size);
        return false;
    }
    if (!p->build_tag || strcmp(p->build_tag, OUTBOX_SINK_BUILD_TAG) != 0) {
        snprintf(errbuf, errbuf_size, "%s: incompatible build: outboxd has build tag \"%s\", plugin has \"%s\"",
                 path, OUTBOX_SINK_BUILD_TAG, p->build_tag ? p->build_tag : "(none)");
        return false;
    }
    if (!p->name || !valid_name(p->name)) {
        snprintf(errbuf, errbuf_size, "%s: the plugin has no valid name (letters, digits, _ and -)", path);
        return false;
    }
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->items[i].plugin->name, p->name) == 0) {
            snprintf(errbuf, errbuf_size, "%s: plugin name \"%s\" is already taken by %s", path, p->name,
                     set->items[i].path);
            return false;
        }
    }
    const char *missing = !p->open ? "open" : !p->publish ? "publish" : !p->close ? "close" : NULL;
    if (missing) {
        snprintf(errbuf, errbuf_size, "%s: plugin \"%s\" has no %s callback, which is required", path,
                 p->name, missing);
        return false;
    }
    return true;
}

const outbox_sink_plugin_t *outboxd_plugins_load(outboxd_plugins_t *set, const char *name,
                                                 char *errbuf, size_t errbuf_size) {
    char base[4096];
    if (!valid_name(name)) {
        snprintf(errbuf, errbuf_size, "plugin \"%s\": not a valid plugin name (letters, digits, _ and -)", name);
        return NULL;
    }
    snprintf(base, sizeof base, "%s/%s", set->dir, name);

    pthread_mutex_lock(&ltdl_lock);
    /* lt_dlopenext tries NAME.la, then NAME.so (the platform's suffix). */
    lt_dlhandle h = lt_dlopenext(base);
    if (!h) {
        const char *why = lt_dlerror();
        pthread_mutex_unlock(&ltdl_lock);
        snprintf(errbuf, errbuf_size, "plugin \"%s\": cannot load %s.so (or .la): %s", name, base,
                 why ? why : "unknown error");
        return NULL;
    }
    const lt_dlinfo *info = lt_dlgetinfo(h);
    const char *path = info && info->filename ? info->filename : base;
    /* Opening a file twice gives the same handle: reuse it. */
    for (size_t i = 0; i < set->n; i++) {
        if (set->items[i].handle == h) {
            lt_dlclose(h);
            pthread_mutex_unlock(&ltdl_lock);
            return set->items[i].plugin;
        }
    }
    /* C has no portable cast from data to function pointers; POSIX
     * guarantees this one (dlsym), and memcpy says so without a warning. */
    void *sym = lt_dlsym(h, OUTBOX_SINK_ENTRY_SYMBOL);
    if (!sym) {
        snprintf(errbuf, errbuf_size, "%s: not a sink plugin: it does not export %s()", path,
                 OUTBOX_SINK_ENTRY_SYMBOL);
        lt_dlclose(h);
        pthread_mutex_unlock(&ltdl_lock);
        return NULL;
    }
    outbox_sink_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const outbox_sink_plugin_t *p = entry();
    if (!check_plugin(set, path, p, errbuf, errbuf_size)) {
        lt_dlclose(h);
        pthread_mutex_unlock(&ltdl_lock);
        return NULL;
    }
    set->items = realloc(set->items, (set->n + 1) * sizeof *set->items);
    set->items[set->n].path = strdup(path);
    set->items[set->n].handle = h;
    set->items[set->n].plugin = p;
    set->n++;
    pthread_mutex_unlock(&ltdl_lock);
    return p;
}
