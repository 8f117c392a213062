/*
 * plugin.h - loading sink plugins (shared objects, through libltdl) and
 * checking them against the ABI before any of their code runs.
 */
#ifndef OUTBOXD_PLUGIN_H
#define OUTBOXD_PLUGIN_H

#include "outbox/sink.h"

#include <stddef.h>

/* True when the plugin's struct (as it was built) has member m: a member
 * an older minor lacks is never read (sink.h's compatibility rule). */
#define OUTBOXD_PLUGIN_HAS(p, m) \
    ((p)->struct_size >= offsetof(outbox_sink_plugin_t, m) + sizeof((p)->m))

typedef struct outboxd_plugin outboxd_plugin_t;
typedef struct outboxd_plugins outboxd_plugins_t;

/* A set of loaded plugins: each file once, each plugin name once. */
outboxd_plugins_t *outboxd_plugins_new(const char *plugin_dir);
void outboxd_plugins_free(outboxd_plugins_t *set);

/* Loads plugin NAME, or returns the already loaded one. The file is
 * NAME.so in the set's directory, or .libs/NAME.so there (libtool's build
 * tree); a .la file is never read. Before anything is opened, each refusal
 * naming the file: it resolves (through symbolic links) to a place beneath
 * the resolved plugin_dir; the file and every directory from plugin_dir
 * down to it are owned by root or outboxd's effective user and writable by
 * their owner only; it is a regular file starting with the ELF magic ("not
 * an ELF shared object" otherwise). Then, in this order: the entry symbol
 * exists; struct_size covers at least the identification; abi_major
 * equals outboxd's; struct_size covers the ABI 1.0 callbacks; the build tag
 * matches; the plugin has a name, and no other loaded file has that name;
 * a plugin that declares abi_minor >= 1 has a struct of at least
 * OUTBOX_SINK_PLUGIN_SIZE_1_1 (both sizes named otherwise); option_size,
 * when set, covers a 1.0 option entry; open, publish (or, in 1.1,
 * publish_some) and close are set. Then, once per plugin, its init (ABI
 * 1.1) when it has one: a failure refuses the plugin with init's message.
 * outboxd_plugins_free calls fini for each plugin whose init succeeded
 * (after the caller closed every instance), then unloads. */
const outbox_sink_plugin_t *outboxd_plugins_load(outboxd_plugins_t *set, const char *name,
                                                 char *errbuf, size_t errbuf_size);

/* The file a loaded plugin came from (for messages), or NULL. */
const char *outboxd_plugins_path(const outboxd_plugins_t *set, const outbox_sink_plugin_t *plugin);

#endif
