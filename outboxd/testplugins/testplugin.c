/*
 * testplugin.c - one source, built into several small plugins that are
 * wrong in one way each (chosen by a VARIANT_* macro), for
 * test_plugin_load.c: outboxd must refuse each with its own message.
 */
#include "outbox/sink.h"

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

#if defined(VARIANT_GOOD)
OUTBOX_SINK_PLUGIN(.name = "good", .version = "1", .description = "a correct plugin",
                   .open = t_open, .publish = t_publish, .close = t_close)
#elif defined(VARIANT_DUP_NAME)
OUTBOX_SINK_PLUGIN(.name = "good", .version = "1", .description = "a second plugin named good",
                   .open = t_open, .publish = t_publish, .close = t_close)
#elif defined(VARIANT_NO_PUBLISH)
OUTBOX_SINK_PLUGIN(.name = "no_publish", .version = "1", .open = t_open, .close = t_close)
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
#endif
    return &changed;
}
#endif
