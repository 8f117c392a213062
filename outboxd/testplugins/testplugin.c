/*
 * testplugin.c - one source, built into several small plugins that are
 * wrong in one way each (chosen by a VARIANT_* macro), for
 * test_plugin_load.c: outboxd must refuse each with its own message.
 */
#include "outbox/sink.h"

#include <stdio.h>
#include <stdlib.h>

__attribute__((unused)) static int t_open(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size) {
    *state = (void *)host;
    return OUTBOX_SINK_OK;
}

__attribute__((unused)) static int t_publish(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                     size_t errbuf_size) {
    const outbox_sink_host_t *host = state;
    for (size_t i = 0; i < n; i++)
        host->ack(host->ctx, events[i].seq, OUTBOX_SINK_OK, NULL);
    return OUTBOX_SINK_OK;
}

__attribute__((unused)) static void t_close(void *state) {
}

__attribute__((unused)) static int t_publish_some(void *state, const outbox_sink_event_t *events, size_t n,
                                                  size_t *taken, char *errbuf, size_t errbuf_size) {
    *taken = 0;
    return t_publish(state, events, n, errbuf, errbuf_size);
}

/* init and fini leave a trace in the file $OUTBOX_TEST_INIT_LOG, so that
 * the test sees how often each ran. */
__attribute__((unused)) static void trace(const char *what) {
    const char *path = getenv("OUTBOX_TEST_INIT_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%s\n", what);
        fclose(f);
    }
}

__attribute__((unused)) static int t_init(char *errbuf, size_t errbuf_size) {
    trace("init");
    return OUTBOX_SINK_OK;
}

__attribute__((unused)) static int t_init_fatal(char *errbuf, size_t errbuf_size) {
    trace("init");
    snprintf(errbuf, errbuf_size, "the client library is too old");
    return OUTBOX_SINK_FATAL;
}

__attribute__((unused)) static void t_fini(void) {
    trace("fini");
}

#if defined(VARIANT_GOOD)
OUTBOX_SINK_PLUGIN(.name = "good", .version = "1", .description = "a correct plugin",
                   .open = t_open, .publish = t_publish, .close = t_close)
#elif defined(VARIANT_DUP_NAME)
OUTBOX_SINK_PLUGIN(.name = "good", .version = "1", .description = "a second plugin named good",
                   .open = t_open, .publish = t_publish, .close = t_close)
#elif defined(VARIANT_NO_PUBLISH)
OUTBOX_SINK_PLUGIN(.name = "no_publish", .version = "1", .open = t_open, .close = t_close)
#elif defined(VARIANT_PUBLISH_SOME_ONLY)
/* ABI 1.1: publish_some instead of publish. */
OUTBOX_SINK_PLUGIN(.name = "publish_some_only", .version = "1", .open = t_open, .publish_some = t_publish_some,
                   .close = t_close)
#elif defined(VARIANT_INIT_FINI)
OUTBOX_SINK_PLUGIN(.name = "init_fini", .version = "1", .open = t_open, .publish = t_publish, .close = t_close,
                   .init = t_init, .fini = t_fini)
#elif defined(VARIANT_INIT_FATAL)
OUTBOX_SINK_PLUGIN(.name = "init_fatal", .version = "1", .open = t_open, .publish = t_publish, .close = t_close,
                   .init = t_init_fatal, .fini = t_fini)
#elif defined(VARIANT_NO_SYMBOL)
/* Exports something, but not outbox_sink_entry. */
OUTBOX_SINK_EXPORT int not_a_sink(void);
OUTBOX_SINK_EXPORT int not_a_sink(void) {
    return 0;
}
#else
/* Hand-made structs, as a plugin built against another header would have. */
OUTBOX_SINK_EXPORT const outbox_sink_plugin_t *outbox_sink_entry(void);
OUTBOX_SINK_EXPORT const outbox_sink_plugin_t *outbox_sink_entry(void) {
    static const outbox_sink_plugin_t plugin = {
        .struct_size = sizeof(outbox_sink_plugin_t),
        .abi_major = OUTBOX_SINK_ABI_MAJOR,
        .abi_minor = OUTBOX_SINK_ABI_MINOR,
        .build_tag = OUTBOX_SINK_BUILD_TAG,
        .name = "variant",
        .version = "1",
        .open = t_open,
        .publish = t_publish,
        .close = t_close,
    };
    static outbox_sink_plugin_t changed;
    changed = plugin;
#if defined(VARIANT_BAD_ABI)
    changed.abi_major = 99;
#elif defined(VARIANT_SHORT_STRUCT)
    /* An ABI 1 struct that stops before the callbacks. */
    changed.struct_size = (uint32_t)offsetof(outbox_sink_plugin_t, open);
#elif defined(VARIANT_BAD_TAG)
    changed.build_tag = "ptr4-be-size4";
#elif defined(VARIANT_SMALL_1_1)
    /* Says 1.1 but has only the 1.0 members. */
    changed.struct_size = (uint32_t)OUTBOX_SINK_PLUGIN_MIN_SIZE;
#elif defined(VARIANT_SMALL_OPTIONS)
    changed.option_size = 16;
#endif
    return &changed;
}
#endif
