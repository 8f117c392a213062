/*
 * plugin.c - see plugin.h. The checks follow PostgreSQL's magic block
 * (dfmgr.c): identification first, version before anything whose layout
 * the version decides, and every mismatch reported as "outboxd has X,
 * plugin has Y" with the file named. Before that, the file itself is
 * vetted as OpenSSH's StrictModes and PostgreSQL's data directory check
 * vet theirs: a plugin runs inside outboxd with every credential it holds,
 * so only root or outboxd's own user may be able to change it.
 */
#include "plugin.h"

#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The identification members, which every ABI major keeps in place. */
#define IDENT_SIZE (offsetof(outbox_sink_plugin_t, description))

typedef struct {
    char *path;
    lt_dlhandle handle;
    const outbox_sink_plugin_t *plugin;
    bool inited; /* init succeeded: fini is owed at the end */
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
    /* sink.h: fini after every instance is closed (the caller stopped
     * them all), then the module is closed. */
    for (size_t i = set->n; i-- > 0;)
        if (set->items[i].inited)
            set->items[i].plugin->fini();
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
    /* A plugin that says 1.1 promises the 1.1 members: reading them from a
     * shorter struct would read past it. */
    if (p->abi_minor >= 1 && p->struct_size < OUTBOX_SINK_PLUGIN_SIZE_1_1) {
        snprintf(errbuf, errbuf_size,
                 "%s: plugin struct too small for the ABI it declares: ABI %u.%u needs at least %zu bytes "
                 "(OUTBOX_SINK_PLUGIN_SIZE_1_1), plugin has %u (rebuild it against outbox/sink.h)",
                 path, p->abi_major, p->abi_minor, (size_t)OUTBOX_SINK_PLUGIN_SIZE_1_1, p->struct_size);
        return false;
    }
    if (p->abi_minor >= 2 && p->struct_size < OUTBOX_SINK_PLUGIN_SIZE_1_2) {
        snprintf(errbuf, errbuf_size,
                 "%s: plugin struct too small for the ABI it declares: ABI %u.%u needs at least %zu bytes "
                 "(OUTBOX_SINK_PLUGIN_SIZE_1_2), plugin has %u (rebuild it against outbox/sink.h)",
                 path, p->abi_major, p->abi_minor, (size_t)OUTBOX_SINK_PLUGIN_SIZE_1_2, p->struct_size);
        return false;
    }
    if (OUTBOXD_PLUGIN_HAS(p, option_size) && p->option_size != 0 &&
        p->option_size < OUTBOX_SINK_OPTION_SIZE_1_0) {
        snprintf(errbuf, errbuf_size,
                 "%s: plugin option table entries too small: outboxd needs at least %zu bytes (ABI %d.0), "
                 "plugin has option_size %u", path, (size_t)OUTBOX_SINK_OPTION_SIZE_1_0, OUTBOX_SINK_ABI_MAJOR,
                 p->option_size);
        return false;
    }
    /* ABI 1.1: publish_some replaces publish, which may then be NULL. */
    bool publishes = p->publish || (OUTBOXD_PLUGIN_HAS(p, publish_some) && p->publish_some);
    const char *missing = !p->open ? "open" : !publishes ? "publish (or publish_some)" : !p->close ? "close" : NULL;
    if (missing) {
        snprintf(errbuf, errbuf_size, "%s: plugin \"%s\" has no %s callback, which is required", path,
                 p->name, missing);
        return false;
    }
    return true;
}

/* Refuses a file or directory that someone other than root or outboxd's
 * own user could change (its owner, or anyone through group or world write
 * permission): whoever can replace a plugin runs code inside outboxd, with
 * its credentials for the database and every broker. file is the plugin
 * being loaded, named in the message; what and path say which of its
 * directories, or the file itself, is at fault. */
static bool trusted(const char *file, const char *what, const char *path, const struct stat *st,
                    char *errbuf, size_t errbuf_size) {
    uid_t euid = geteuid();
    if (st->st_uid != 0 && st->st_uid != euid) {
        snprintf(errbuf, errbuf_size,
                 "%s: refusing to load: %s%s is owned by uid %ld, not by root or outboxd's user "
                 "(uid %ld)", file, what, path, (long)st->st_uid, (long)euid);
        return false;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(errbuf, errbuf_size,
                 "%s: refusing to load: %s%s is %s-writable (mode %04o); only its owner may "
                 "write to it", file, what, path, (st->st_mode & S_IWOTH) ? "world" : "group",
                 (unsigned)(st->st_mode & 07777));
        return false;
    }
    return true;
}

/* The directories from dir (the resolved plugin_dir) down to the one that
 * holds real (the resolved plugin, beneath dir) must all be trusted: write
 * access to any of them is enough to swap what lies beneath. */
static bool trusted_dirs(const char *file, const char *dir, const char *real, char *errbuf,
                         size_t errbuf_size) {
    size_t dir_len = strlen(dir), len = strlen(real);
    char *prefix = strdup(real);
    bool ok = true;
    for (size_t i = dir_len; ok && i < len; i++) {
        if (i != dir_len && real[i] != '/')
            continue;
        memcpy(prefix, real, i);
        prefix[i] = '\0';
        struct stat st;
        if (stat(prefix, &st) != 0) {
            snprintf(errbuf, errbuf_size, "%s: cannot stat %s: %s", file, prefix, strerror(errno));
            ok = false;
        } else {
            ok = trusted(file, i == dir_len ? "plugin_dir " : "directory ", prefix, &st, errbuf,
                         errbuf_size);
        }
    }
    free(prefix);
    return ok;
}

/* Finds plugin NAME in the set's directory: NAME.so, or else .libs/NAME.so
 * (where libtool keeps a module in a build tree). The .la file is never
 * read: its libdir and dlname could send outboxd anywhere. The file,
 * resolved through any symbolic links, must stay beneath the resolved
 * plugin_dir; it and every directory down to it must be trusted; and it
 * must be an ELF file. Returns the resolved path to open (to free) and
 * sets shown to the path to name in messages, or returns NULL with errbuf
 * naming the file and the reason. */
static char *find_plugin(const outboxd_plugins_t *set, const char *name, char *shown,
                         size_t shown_size, char *errbuf, size_t errbuf_size) {
    struct stat st;
    snprintf(shown, shown_size, "%s/%s.so", set->dir, name);
    if (lstat(shown, &st) != 0 && errno == ENOENT) {
        char libs[4096];
        snprintf(libs, sizeof libs, "%s/.libs/%s.so", set->dir, name);
        if (lstat(libs, &st) == 0)
            snprintf(shown, shown_size, "%s", libs);
    }
    char *dir = realpath(set->dir, NULL);
    if (!dir) {
        snprintf(errbuf, errbuf_size, "plugin \"%s\": cannot load %s: plugin_dir %s: %s", name, shown,
                 set->dir, strerror(errno));
        return NULL;
    }
    char *real = realpath(shown, NULL);
    if (!real) {
        snprintf(errbuf, errbuf_size, "plugin \"%s\": cannot load %s: %s", name, shown, strerror(errno));
        free(dir);
        return NULL;
    }
    /* A plugin_dir of "/" resolves to "/", and every file is beneath it. */
    size_t dir_len = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
    if (strncmp(real, dir, dir_len) != 0 || real[dir_len] != '/') {
        snprintf(errbuf, errbuf_size,
                 "%s: refusing to load: it resolves to %s, outside plugin_dir %s (a symbolic link "
                 "may only point within it)", shown, real, dir);
        goto fail;
    }
    if (!trusted_dirs(shown, dir, real, errbuf, errbuf_size))
        goto fail;
    if (stat(real, &st) != 0) {
        snprintf(errbuf, errbuf_size, "%s: cannot stat: %s", shown, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(errbuf, errbuf_size, "%s: refusing to load: not a regular file", shown);
        goto fail;
    }
    if (!trusted(shown, "the file", "", &st, errbuf, errbuf_size))
        goto fail;
    /* dlopen would call anything it cannot map "file not found" or "invalid
     * ELF header"; say what it is. */
    unsigned char magic[4] = {0};
    FILE *f = fopen(real, "rbe");
    if (!f) {
        snprintf(errbuf, errbuf_size, "%s: cannot read: %s", shown, strerror(errno));
        goto fail;
    }
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got != sizeof magic || memcmp(magic, "\177ELF", 4) != 0) {
        snprintf(errbuf, errbuf_size, "%s: not an ELF shared object", shown);
        goto fail;
    }
    free(dir);
    return real;
fail:
    free(real);
    free(dir);
    return NULL;
}

const outbox_sink_plugin_t *outboxd_plugins_load(outboxd_plugins_t *set, const char *name,
                                                 char *errbuf, size_t errbuf_size) {
    char path[4096];
    if (!valid_name(name)) {
        snprintf(errbuf, errbuf_size, "plugin \"%s\": not a valid plugin name (letters, digits, _ and -)", name);
        return NULL;
    }
    char *real = find_plugin(set, name, path, sizeof path, errbuf, errbuf_size);
    if (!real)
        return NULL;

    pthread_mutex_lock(&ltdl_lock);
    /* lt_dlopen with the full name of a .so opens that file and nothing
     * else: no .la, no search path, no other suffix. The resolved name, so
     * that no link is followed again after the checks. */
    lt_dlhandle h = lt_dlopen(real);
    free(real);
    if (!h) {
        const char *why = lt_dlerror();
        pthread_mutex_unlock(&ltdl_lock);
        snprintf(errbuf, errbuf_size, "plugin \"%s\": cannot load %s: %s", name, path,
                 why ? why : "unknown error");
        return NULL;
    }
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
    pthread_mutex_unlock(&ltdl_lock);
    /* Once per process, before any check or open (ABI 1.1). Not under the
     * ltdl lock: a client library's set-up may take its time. */
    bool inited = false;
    if (OUTBOXD_PLUGIN_HAS(p, init) && p->init) {
        char why[1024] = "";
        int rc = p->init(why, sizeof why);
        why[sizeof why - 1] = '\0';
        if (rc != OUTBOX_SINK_OK) {
            snprintf(errbuf, errbuf_size, "%s: plugin \"%s\" refused to start: init failed: %s", path, p->name,
                     why[0] ? why : "(no message)");
            pthread_mutex_lock(&ltdl_lock);
            lt_dlclose(h);
            pthread_mutex_unlock(&ltdl_lock);
            return NULL;
        }
        inited = OUTBOXD_PLUGIN_HAS(p, fini) && p->fini;
    }
    set->items = realloc(set->items, (set->n + 1) * sizeof *set->items);
    set->items[set->n].path = strdup(path);
    set->items[set->n].handle = h;
    set->items[set->n].plugin = p;
    set->items[set->n].inited = inited;
    set->n++;
    return p;
}
