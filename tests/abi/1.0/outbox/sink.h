/*
 * sink.h - the sink plugin ABI of outboxd: the only header a sink needs.
 *
 * A sink is a shared object that outboxd loads at run time (libltdl) from its
 * plugin directory (`pkg-config --variable=plugindir outbox-sink`). It
 * exports exactly one symbol, the function `outbox_sink_entry`, which returns
 * a pointer to a constant outbox_sink_plugin_t describing the sink and its
 * callbacks. OUTBOX_SINK_PLUGIN() below writes that function for you.
 *
 * Before it calls anything, outboxd checks the plugin struct: the same
 * abi_major as its own, a struct_size at least OUTBOX_SINK_PLUGIN_MIN_SIZE,
 * the same build tag (pointer size, byte order, ...), a name, and the
 * required callbacks. Each refusal names the file and both values. Two
 * plugins with one name are refused too.
 *
 * Compatibility rules (the promise, kept like SQLite's and libcurl's):
 *  - Structs only grow at the end; nothing is reordered or removed. A
 *    retired callback keeps its slot (and may be NULL).
 *  - abi_minor grows when members are appended; the host reads a member only
 *    when the struct_size the other side gave covers it. A plugin built
 *    against an older minor therefore loads in a newer outboxd, and a plugin
 *    reads a host member only if host->struct_size covers it
 *    (OUTBOX_SINK_HOST_HAS()).
 *  - abi_major changes only when that is impossible; outboxd refuses other
 *    majors, and packages carry it as outbox-sink-abi-N.
 *
 * Threads: outboxd gives each sink its own thread. Every callback of one
 * sink instance (open, publish, poll, flush, close) is called from that
 * thread, never concurrently. Host services (log, ack, option) may be called
 * from that thread or from a thread of the sink's client library (e.g. a
 * librdkafka delivery-report callback), but only between open and the end
 * of close.
 *
 * Events reach the sink as plain C types: no libbson or libmongoc type
 * crosses this ABI, so a sink never links against them.
 */
#ifndef OUTBOX_SINK_H
#define OUTBOX_SINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OUTBOX_SINK_ABI_MAJOR 1
#define OUTBOX_SINK_ABI_MINOR 0

/* What must match between outboxd and a plugin beyond the ABI version:
 * pointer size and byte order. Compared as a string, so a mismatch can be
 * reported as "outboxd has X, plugin has Y". */
#define OUTBOX_SINK_STR_(x) #x
#define OUTBOX_SINK_STR(x) OUTBOX_SINK_STR_(x)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define OUTBOX_SINK_BYTE_ORDER "be"
#else
#define OUTBOX_SINK_BYTE_ORDER "le"
#endif
#define OUTBOX_SINK_BUILD_TAG                                                          \
    "ptr" OUTBOX_SINK_STR(__SIZEOF_POINTER__) "-" OUTBOX_SINK_BYTE_ORDER "-size" \
        OUTBOX_SINK_STR(__SIZEOF_SIZE_T__)

/* Callback results. Anything else is treated as OUTBOX_SINK_FATAL. */
typedef enum outbox_sink_status {
    OUTBOX_SINK_OK = 0,
    OUTBOX_SINK_RETRY = 1, /* transient: outboxd backs off and tries again */
    OUTBOX_SINK_FATAL = 2  /* permanent: the sink's on_error policy applies */
} outbox_sink_status_t;

/* Log levels for host->log. */
typedef enum outbox_sink_log_level {
    OUTBOX_SINK_LOG_ERROR = 3,
    OUTBOX_SINK_LOG_WARNING = 4,
    OUTBOX_SINK_LOG_INFO = 6,
    OUTBOX_SINK_LOG_DEBUG = 7
} outbox_sink_log_level_t;

/* One envelope header (docs/envelope.md), as NUL-terminated UTF-8. */
typedef struct outbox_sink_header {
    const char *name;
    const char *value;
} outbox_sink_header_t;

/* One event, ready to ship. Events come as an array, so the plugin's
 * sizeof(outbox_sink_event_t) must equal outboxd's: this struct can never
 * grow or change within an ABI major. Per-event data added later would
 * come through a host service instead (see OUTBOX_SINK_HOST_HAS).
 *
 * outboxd has already expanded the route into
 * destination and encoded the payload (JSON or BSON, per the sink's
 * config): the sink only sends bytes. Every pointer is owned by outboxd and
 * valid only during the publish call that passed it; copy what must live
 * longer (client libraries that copy, such as librdkafka with
 * RD_KAFKA_MSG_F_COPY, need nothing more). */
typedef struct outbox_sink_event {
    uint64_t seq;                 /* the host's sequence number: pass it to ack */
    const char *id;               /* the event id, 24 hex digits */
    const char *type;             /* the event type */
    const char *key;              /* the key, or NULL when the envelope's is null */
    const char *destination;      /* the route expanded: topic, stream, subject, path */
    const unsigned char *payload; /* the encoded event; not NUL-terminated */
    size_t payload_len;
    int64_t created_ms;           /* milliseconds since the Unix epoch */
    const outbox_sink_header_t *headers; /* envelope headers; NULL when n_headers is 0 */
    size_t n_headers;
} outbox_sink_event_t;

/* Services outboxd offers a sink. Owned by outboxd; valid from open to the
 * end of close. */
typedef struct outbox_sink_host {
    uint32_t struct_size;  /* sizeof the host's struct: see OUTBOX_SINK_HOST_HAS */
    uint16_t abi_major, abi_minor;
    void *ctx;             /* pass back as the first argument of each service */
    const char *sink_name; /* the name this instance has in the config */

    /* Writes one log line, prefixed by outboxd with the sink's name. */
    void (*log)(void *ctx, outbox_sink_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

    /* Reports the outcome of one published event, by its seq: OK when the
     * destination has it (as durably as the sink promises), RETRY to have
     * outboxd publish it again later, FATAL (with error text, copied by
     * outboxd) for the on_error policy. Exactly one ack per published
     * event; acks may come in any order and from any thread. */
    void (*ack)(void *ctx, uint64_t seq, outbox_sink_status_t status, const char *error);

    /* The value of one key of the sink's `options` map in the config, or
     * NULL when absent. The string belongs to outboxd and lives until close
     * returns. Keys the plugin's option table does not declare are refused
     * by outboxd before open, unless the table ends with
     * OUTBOX_SINK_OPTION_ANY (sinks whose client validates its own
     * properties, e.g. librdkafka), in which case option_next lists them. */
    const char *(*option)(void *ctx, const char *key);

    /* Iterates over all option keys in config order: start with *cursor =
     * 0; returns NULL at the end. */
    const char *(*option_next)(void *ctx, size_t *cursor, const char **value);
} outbox_sink_host_t;

/* True when the host struct is new enough to have member m. */
#define OUTBOX_SINK_HOST_HAS(host, m) \
    ((host)->struct_size >= offsetof(outbox_sink_host_t, m) + sizeof((host)->m))

/* Option types, for the option table. */
typedef enum outbox_sink_option_type {
    OUTBOX_SINK_OPT_STRING = 1,
    OUTBOX_SINK_OPT_INT = 2,  /* decimal, range-checked against min/max */
    OUTBOX_SINK_OPT_BOOL = 3, /* true/false/yes/no/on/off/1/0 */
    OUTBOX_SINK_OPT_ENUM = 4  /* one of the '|'-separated words in choices */
} outbox_sink_option_type_t;

/* One option a sink accepts. outboxd checks the config against the table
 * before open (unknown key, wrong type, out of range: an error naming the
 * file, line and key), fills defaults, and prints the table in
 * `outboxd --plugin-help NAME`. The table always ends with
 * OUTBOX_SINK_OPTION_END (a NULL key). An OUTBOX_SINK_OPTION_ANY entry
 * before it accepts every other key (for sinks whose client library checks
 * its own properties, e.g. librdkafka). */
typedef struct outbox_sink_option {
    const char *key;
    outbox_sink_option_type_t type;
    const char *default_value; /* NULL: no default (required if required) */
    int required;
    int64_t min, max;          /* OUTBOX_SINK_OPT_INT only */
    const char *choices;       /* OUTBOX_SINK_OPT_ENUM only: "a|b|c" */
    const char *help;
} outbox_sink_option_t;

#define OUTBOX_SINK_OPTION_END {NULL, (outbox_sink_option_type_t)0, NULL, 0, 0, 0, NULL, NULL}
#define OUTBOX_SINK_OPTION_ANY {"*", OUTBOX_SINK_OPT_STRING, NULL, 0, 0, 0, NULL, "any other key"}

/* The plugin: returned by outbox_sink_entry(). Members below min_size are
 * the ABI 1.0 set; later minors append after them. */
typedef struct outbox_sink_plugin {
    /* -- identification: read first, before anything else ------------ */
    uint32_t struct_size;  /* sizeof(outbox_sink_plugin_t) as built */
    uint16_t abi_major;    /* OUTBOX_SINK_ABI_MAJOR as built */
    uint16_t abi_minor;    /* OUTBOX_SINK_ABI_MINOR as built */
    const char *build_tag; /* OUTBOX_SINK_BUILD_TAG as built */
    const char *name;      /* the plugin's name, as configs write it: "file" */
    const char *version;   /* the plugin's own version */
    const char *description;
    const outbox_sink_option_t *options; /* may be NULL: no options */

    /* -- callbacks (ABI 1.0) ------------------------------------------ */
    /* Creates one sink instance; the options are already checked. Sets
     * *state (opaque to outboxd). May block (connecting). On failure writes
     * a message into errbuf (size errbuf_size, always NUL-terminated by
     * outboxd afterwards) and returns RETRY (outboxd calls open again after
     * a backoff) or FATAL (bad configuration: the sink stops). Required. */
    int (*open)(const outbox_sink_host_t *host, void **state, char *errbuf, size_t errbuf_size);

    /* Hands over a batch of n events in log order. The sink queues or sends
     * them and acks each one through host->ack, later or before returning.
     * Returns OK when it took the batch. RETRY when it could not take all
     * of it now (queue full, disconnected, a write failed): the events it
     * acked during the call stay acked, and every event of the batch it has
     * not acked is published again after a backoff (so a sink that writes
     * as it goes must ack exactly what it wrote). FATAL when the sink is
     * broken: outboxd closes and reopens it, and publishes every unacked
     * event again. Should not block for long: a full queue is RETRY, not a
     * wait. Strings in the events are never NULL (except key) and are the
     * envelope's UTF-8 strings; destination is "" when the route could not
     * be expanded (a sink should ack such an event FATAL).
     * Required. */
    int (*publish)(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                   size_t errbuf_size);

    /* Drives deliveries (serves callbacks, reconnects), waiting at most
     * timeout_ms for something to happen. outboxd calls it whenever it has
     * nothing to publish and between batches. May be NULL for sinks that
     * ack within publish. */
    int (*poll)(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);

    /* Waits up to timeout_ms until every published event has been acked.
     * Called before checkpoints are written at shutdown and reload. Returns
     * OK when nothing is outstanding, RETRY on timeout. May be NULL when
     * publish acks synchronously. */
    int (*flush)(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);

    /* Releases the instance. Called once after a successful open, after a
     * flush. Events still unacked are treated as not delivered. Required. */
    void (*close)(void *state);

    /* -- members appended by later ABI minors go here ----------------- */
} outbox_sink_plugin_t;

/* The size of the ABI 1.0 struct: outboxd refuses smaller ones. */
#define OUTBOX_SINK_PLUGIN_MIN_SIZE (offsetof(outbox_sink_plugin_t, close) + sizeof(void (*)(void *)))

/* The one symbol a plugin exports. */
#define OUTBOX_SINK_ENTRY_SYMBOL "outbox_sink_entry"
typedef const outbox_sink_plugin_t *(*outbox_sink_entry_fn)(void);

#if defined(__GNUC__)
#define OUTBOX_SINK_EXPORT __attribute__((visibility("default")))
#else
#define OUTBOX_SINK_EXPORT
#endif

/* Defines outbox_sink_entry() returning a static plugin struct whose
 * identification is filled from this header; the arguments are the rest,
 * as designated initializers:
 *
 *   OUTBOX_SINK_PLUGIN(.name = "file", .version = "1.0",
 *                      .description = "JSON lines into files",
 *                      .options = file_options, .open = file_open,
 *                      .publish = file_publish, .flush = file_flush,
 *                      .close = file_close)
 */
#define OUTBOX_SINK_PLUGIN(...)                                                        \
    OUTBOX_SINK_EXPORT const outbox_sink_plugin_t *outbox_sink_entry(void);           \
    OUTBOX_SINK_EXPORT const outbox_sink_plugin_t *outbox_sink_entry(void) {          \
        static const outbox_sink_plugin_t plugin = {                                  \
            .struct_size = sizeof(outbox_sink_plugin_t),                              \
            .abi_major = OUTBOX_SINK_ABI_MAJOR,                                       \
            .abi_minor = OUTBOX_SINK_ABI_MINOR,                                       \
            .build_tag = OUTBOX_SINK_BUILD_TAG,                                       \
            __VA_ARGS__};                                                             \
        return &plugin;                                                               \
    }

#ifdef __cplusplus
}
#endif

#endif /* OUTBOX_SINK_H */
