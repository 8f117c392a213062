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
 * The host's contract (what a plugin may rely on, and must honour):
 *  - Threads. outboxd gives each sink instance its own thread. Every
 *    callback of one instance (open, publish/publish_some, poll, flush,
 *    stats, recover, close) is called from that thread, never concurrently.
 *    check, init and fini are called from outboxd's main thread; check may
 *    run while instances of the same plugin are running (a reload), so it
 *    must not touch state they share without the plugin's own locking.
 *    Host services (log, ack, option, option_next, options_fill) may be
 *    called from the instance's thread or from a thread of the sink's
 *    client library (e.g. a librdkafka delivery-report callback), but only
 *    between open and the end of close (log, option, option_next and
 *    options_fill also during check).
 *  - Locks. outboxd holds none of its locks while it calls into a plugin, and
 *    host->ack takes only a short lock of its own that never waits for I/O.
 *    So a plugin may call ack or log while holding its own lock: the order
 *    is always plugin lock, then host lock.
 *  - Time. publish and publish_some must not wait for the network (a full
 *    queue is RETRY or a short *taken, not a wait); poll and flush return
 *    within their timeout; close returns within 10 seconds (outboxd has
 *    called flush first, so close only releases); check never connects.
 *  - Signals. outboxd ignores SIGPIPE process-wide before it loads any
 *    plugin: a write to a closed socket fails with EPIPE instead of killing
 *    the process. A plugin never changes a signal's disposition.
 *  - Unload. A loaded plugin stays loaded until outboxd exits (a reload that
 *    drops its last sink does not unload it); then fini is called and the
 *    module is closed. A plugin leaves no thread running after close
 *    returns (and none after fini), since its code may be unmapped.
 *  - Secrets. outboxd scrubs every value it knows to be secret (the MongoDB
 *    password, secret options) from every line it prints, including the
 *    error texts a plugin returns; a plugin never logs an option's value
 *    itself when the option is a secret.
 *
 * Events reach the sink as plain C types: no libbson or libmongoc type
 * crosses this ABI, so a sink never links against them.
 */
#ifndef OUTBOX_SINK_H
#define OUTBOX_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OUTBOX_SINK_ABI_MAJOR 1
#define OUTBOX_SINK_ABI_MINOR 2

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

    /* -- ABI 1.1 ------------------------------------------------------ */
    /* The sink's route template as the config writes it ("/srv/out/{type}.jsonl"),
     * before expansion; "" when the config has none. Lets a sink check
     * where a destination may lead (the file sink keeps files beneath the
     * route's fixed directory). Test with OUTBOX_SINK_HOST_HAS(host, route). */
    const char *route;

    /* The encoding of every event's payload in this instance: "json" or
     * "bson" (the sink's `payload` in the config). A plugin that declares
     * `payloads` is only ever given one it accepts. */
    const char *payload;

    /* Writes the value of every option of the plugin's table that has an
     * offset (OUTBOX_SINK_OPTION_AT) into the plugin's own config struct at
     * config + offset, already parsed, range-checked and defaulted by
     * outboxd, as the C type of its option type (see outbox_sink_option_type_t).
     * Strings and lists belong to outboxd and live until close returns (until
     * check returns, in check). An option that is absent and has no default
     * is written as NULL (a string) or 0 (a number), except a LIST, which is
     * then an empty list, never NULL (host->option returns NULL only for
     * an option that is neither given nor defaulted).
     * Returns 0. Lets open and check share one parser: the plugin's. Every
     * host whose struct covers this member sets it (outboxd, the test host,
     * outbox-sink-conformance). */
    int (*options_fill)(void *ctx, void *config);

    /* -- ABI 1.2 ------------------------------------------------------ */
    /* The sink's message format (its `format` in the config, docs/formats.md):
     * "native", "cloudevents" or "debezium"; never NULL (in check too). With any but native,
     * message_as_given is 1: outboxd has laid each event out itself, and
     * the plugin sends event->headers as the message's headers (as fields
     * where the protocol has none: Redis), event->payload as its body and
     * event->key as its key, and adds no header or field of its own (what
     * the protocol needs for delivery, such as JetStream's Nats-Msg-Id,
     * stays). Only a plugin that declares OUTBOX_SINK_MESSAGES_AS_GIVEN is
     * given another format than native. Test with
     * OUTBOX_SINK_HOST_HAS(host, message_as_given). */
    const char *format;
    int message_as_given;
} outbox_sink_host_t;

/* True when the host struct is new enough to have member m. */
#define OUTBOX_SINK_HOST_HAS(host, m) \
    ((host)->struct_size >= offsetof(outbox_sink_host_t, m) + sizeof((host)->m))

/* Option types, for the option table.
 * The C type options_fill writes is given for each (ABI 1.1). */
typedef enum outbox_sink_option_type {
    OUTBOX_SINK_OPT_STRING = 1, /* const char * */
    OUTBOX_SINK_OPT_INT = 2,    /* int64_t; decimal, range-checked against min/max */
    OUTBOX_SINK_OPT_BOOL = 3,   /* int (0 or 1); true/false/yes/no/on/off/1/0 */
    OUTBOX_SINK_OPT_ENUM = 4,   /* const char *; one of the '|'-separated words in choices */
    /* -- ABI 1.1 (a 1.0 outboxd reads these as STRING) ------------------ */
    OUTBOX_SINK_OPT_LIST = 5,     /* const char *const *, NULL-terminated, never NULL itself
                                   * (an absent list is empty); written in the config as a
                                   * YAML sequence of strings or as one string "a, b, c"
                                   * (items trimmed; an empty item is an error) */
    OUTBOX_SINK_OPT_DURATION = 6, /* int64_t milliseconds; "250ms", "10s", "5m", "1h", or a
                                   * bare integer meaning milliseconds; min/max in ms */
    OUTBOX_SINK_OPT_SECRET = 7    /* const char *; a password, token or key: also accepted as
                                   * KEY_file: PATH (outboxd reads the file, one trailing
                                   * newline dropped); never printed by outboxd, scrubbed
                                   * from every line it prints, shown as "(secret)". The
                                   * table declares KEY only (never KEY_file); option(KEY)
                                   * and options_fill give the value, whichever way it came;
                                   * KEY and KEY_file together are refused */
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
    int64_t min, max;          /* OUTBOX_SINK_OPT_INT, and DURATION (in ms) */
    const char *choices;       /* OUTBOX_SINK_OPT_ENUM only: "a|b|c" */
    const char *help;
    /* -- ABI 1.1: read by outboxd only when the plugin's option_size covers
     *    them (OUTBOX_SINK_PLUGIN sets option_size) --------------------- */
    size_t offset;             /* where options_fill writes the value ... */
    unsigned flags;            /* ... when OUTBOX_SINK_OPTION_MAPPED is set */
} outbox_sink_option_t;

#define OUTBOX_SINK_OPTION_MAPPED 1u

/* In an option's initializer: options_fill writes this option's value into
 * member of the plugin's config struct type, whose C type must be the one
 * its option type names:
 *   {.key = "fsync", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "true",
 *    OUTBOX_SINK_OPTION_AT(file_config_t, fsync), .help = "..."},        */
#define OUTBOX_SINK_OPTION_AT(type, member) \
    .offset = offsetof(type, member), .flags = OUTBOX_SINK_OPTION_MAPPED

#define OUTBOX_SINK_OPTION_END {NULL, (outbox_sink_option_type_t)0, NULL, 0, 0, 0, NULL, NULL, 0, 0}
#define OUTBOX_SINK_OPTION_ANY {"*", OUTBOX_SINK_OPT_STRING, NULL, 0, 0, 0, NULL, "any other key", 0, 0}

/* Payload encodings, for the plugin's `payloads` (ABI 1.1). */
#define OUTBOX_SINK_PAYLOAD_JSON (1u << 0)
#define OUTBOX_SINK_PAYLOAD_BSON (1u << 1)

/* Kinds of figures a plugin reports through stats (ABI 1.1). */
typedef enum outbox_sink_stat_kind {
    OUTBOX_SINK_STAT_COUNTER = 1, /* only grows while the instance is open */
    OUTBOX_SINK_STAT_GAUGE = 2    /* a level: queue depth, connections */
} outbox_sink_stat_kind_t;

/* Receives one figure from stats: name is [a-z][a-z0-9_]* of at most 64
 * bytes, unique within the plugin, best prefixed with the plugin's name and
 * a counter's ending in _total (Prometheus's conventions: "kafka_outq",
 * "kafka_delivered_total"). outboxd keeps the latest figures of each sink
 * in its checkpoint document (`outboxctl status --json` shows them as
 * plugin_stats); help is one line of plain text, or NULL. Copied by
 * outboxd. */
typedef void (*outbox_sink_stat_fn)(void *emit_ctx, const char *name, outbox_sink_stat_kind_t kind,
                                    double value, const char *help);

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
     * envelope's UTF-8 strings. destination is never empty: an event whose
     * route expands to "" (a route of only {key} and a null key) is failed
     * by outboxd itself, with the reason, and never reaches the plugin
     * (ABI 1.0 plugins were asked to ack such events FATAL; they no longer
     * see them). Required unless publish_some is set. */
    int (*publish)(void *state, const outbox_sink_event_t *events, size_t n, char *errbuf,
                   size_t errbuf_size);

    /* Drives deliveries (serves callbacks, reconnects), waiting at most
     * timeout_ms for something to happen. outboxd calls it whenever it has
     * nothing to publish and between batches, and every quarter of a
     * second (timeout_ms 0) while nothing is in flight. Returns OK; or
     * RETRY, with the reason in errbuf, while the plugin knows that its
     * destination cannot be reached now (every broker down, the
     * connection lost): outboxd then shows the sink as retrying (its
     * state in /metrics; /readyz past http.ready_grace_ms) until a poll
     * returns OK again, and changes nothing else: the plugin keeps and
     * acks its events as before. FATAL is taken as OK here (publish says
     * what is fatal). May be NULL for sinks that ack within publish. */
    int (*poll)(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);

    /* Waits up to timeout_ms until every published event has been acked.
     * Called before checkpoints are written at shutdown and reload. Returns
     * OK when nothing is outstanding, RETRY on timeout. May be NULL when
     * publish acks synchronously. */
    int (*flush)(void *state, int timeout_ms, char *errbuf, size_t errbuf_size);

    /* Releases the instance. Called once after a successful open, after a
     * flush. Events still unacked are treated as not delivered. Required. */
    void (*close)(void *state);

    /* -- ABI 1.1 (every member optional: 0 or NULL means "not offered") - */
    /* sizeof(outbox_sink_option_t) as built: the stride of the options
     * table, which grew in 1.1. Set by OUTBOX_SINK_PLUGIN; 0 means the 1.0
     * size. */
    uint32_t option_size;

    /* The payload encodings the plugin accepts (OUTBOX_SINK_PAYLOAD_*); 0
     * means any. A sink configured with another is refused when its
     * configuration is loaded, naming the file and line. */
    uint32_t payloads;

    /* Validates a configuration without connecting anywhere (it may read
     * the local files its options name, e.g. a CA): parses the options
     * (options_fill), builds what it can offline (a client library's config
     * object), creates nothing, and returns OK,
     * or FATAL with errbuf saying what is wrong. Start the message with
     * the option's key and ": " ("bootstrap.servers: ...") and outboxd
     * reports that option's line. Called for each sink by `outboxd --check`,
     * at start and on reload (SIGHUP) before anything running is stopped:
     * a reload whose new configuration fails a check changes nothing. The
     * host struct offers log, option, option_next, options_fill, route and
     * payload (and sink_name); ack must not be called. */
    int (*check)(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size);

    /* Like publish, but says how much of the batch it took: sets *taken to
     * k (0 <= k <= n) when events[0..k) are the plugin's (each gets exactly
     * one ack, now or later) and events[k..n) are not (never acked; outboxd
     * offers them again). OK with k < n means "full for now": outboxd polls
     * and offers the rest again without a backoff; RETRY backs off first;
     * FATAL reopens the sink (events taken and not acked may still be
     * acked until close returns; the rest are published again after the
     * reopen). When set, outboxd calls it instead of
     * publish, which may then be NULL. */
    int (*publish_some)(void *state, const outbox_sink_event_t *events, size_t n, size_t *taken,
                        char *errbuf, size_t errbuf_size);

    /* Reports the plugin's own figures for this instance (messages in its
     * client's queue, reconnects, bytes sent) by calling emit once per
     * figure. Called from the instance's thread, between other callbacks,
     * at most once a second; must not block. */
    void (*stats)(void *state, outbox_sink_stat_fn emit, void *emit_ctx);

    /* Effectively-once after a crash or a takeover (docs/recovery.md):
     * events[0..n) are the events that an earlier run (or, after a FATAL
     * and a reopen, the closed instance) may already have published, in
     * log order, fully built as publish would get them (destination,
     * headers, payload; seq is an index, never to be acked). outboxd never
     * publishes more than a bounded number of events past its last durable
     * checkpoint, so n is bounded too: whatever of them a destination holds
     * is among its last k messages, k the number of these events that go
     * there. The plugin reads that much back (the end of a topic's
     * partitions, a stream, a file), sets held[i] = 1 for each event it
     * finds there and leaves the others 0; it acks none of them. outboxd
     * settles the held ones itself and publishes the rest. Returns OK;
     * RETRY with errbuf when a destination cannot be read now (outboxd
     * publishes nothing until a recover succeeds, and tries again with
     * backoff). Called after open (and after a reopen), before the first
     * publish; a sink's `recover: false` turns it off. */
    int (*recover)(void *state, const outbox_sink_event_t *events, size_t n, unsigned char *held,
                   char *errbuf, size_t errbuf_size);

    /* Once per process: init after the plugin passed the ABI checks and
     * before its first check or open (a client library's global set-up);
     * returns OK, or FATAL with errbuf and the plugin is refused. fini at
     * exit after every instance is closed, if init succeeded. */
    int (*init)(char *errbuf, size_t errbuf_size);
    void (*fini)(void);

    /* -- ABI 1.2 (every member optional: 0 or NULL means "not offered") - */
    /* OUTBOX_SINK_MESSAGES_AS_GIVEN: the plugin sends events laid out by
     * outboxd as they are given (host->message_as_given), so every
     * `format` of the config is open to it. */
    uint32_t messages;
    /* The CloudEvents protocol binding whose binary content mode the
     * plugin's messages carry ("kafka": headers ce_id, ce_type, ...), or
     * NULL: CloudEvents go in structured mode (one JSON object). */
    const char *cloudevents_binding;

    /* -- members appended by later ABI minors go here ----------------- */
} outbox_sink_plugin_t;

/* The plugin's `messages` (ABI 1.2). */
#define OUTBOX_SINK_MESSAGES_AS_GIVEN (1u << 0)

/* The size of the ABI 1.0 struct: outboxd refuses smaller ones. */
#define OUTBOX_SINK_PLUGIN_MIN_SIZE (offsetof(outbox_sink_plugin_t, close) + sizeof(void (*)(void *)))

/* The size of the ABI 1.1 struct: a plugin that says abi_minor >= 1 must
 * be at least this large (outboxd refuses it otherwise, naming both). */
#define OUTBOX_SINK_PLUGIN_SIZE_1_1 (offsetof(outbox_sink_plugin_t, fini) + sizeof(void (*)(void)))

/* The size of the ABI 1.2 struct. */
#define OUTBOX_SINK_PLUGIN_SIZE_1_2 \
    (offsetof(outbox_sink_plugin_t, cloudevents_binding) + sizeof(const char *))

/* The size of one ABI 1.0 option table entry. */
#define OUTBOX_SINK_OPTION_SIZE_1_0 (offsetof(outbox_sink_option_t, help) + sizeof(const char *))

/* -- Helpers for plugins: header-only, not part of the binary ABI ------- */

/* The length of the well-formed UTF-8 sequence that starts at s: 1 for
 * ASCII (NUL included), 2 to 4, or 0 when it is not one (RFC 3629: no
 * overlong forms, no UTF-16 surrogates, nothing above U+10FFFF). s is
 * NUL-terminated and NUL is never a continuation byte, so this never reads
 * past the end. The host passes only valid UTF-8 in events; a sink uses
 * this to walk a destination by code point (to refuse control characters,
 * C1 included, or to escape a name for a message). */
static inline size_t outbox_sink_utf8_len(const unsigned char *s) {
    size_t n, i;
    uint32_t cp, min;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2, cp = s[0] & 0x1Fu, min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3, cp = s[0] & 0x0Fu, min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4, cp = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0; /* a stray continuation byte, C0/C1 (always overlong), F5..FF */
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Writes text into out (size bytes, always NUL-terminated) fit for a log
 * line or an error message: printable ASCII as it is, '"' and '\\'
 * escaped with a backslash, every other byte as \xNN; after max bytes of
 * text (or when out is full) it ends with "...". A destination is made of
 * event data (its type, its key), which may hold a newline or an escape
 * sequence that must not reach a log line raw. */
static inline void outbox_sink_quote(const char *text, size_t max, char *out, size_t size) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    if (size == 0)
        return;
    for (i = 0; text[i] != '\0' && i < max && o + 8 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (text[i] != '\0' && o + 4 < size) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
}

/* The size of outbox_sink_format_time's text, NUL included. */
#define OUTBOX_SINK_TIME_SIZE 25

/* Writes ms (milliseconds since the Unix epoch, as in created_ms) into out
 * as ISO 8601 UTC with milliseconds: "2026-11-26T18:45:25.123Z". Returns 0,
 * or -1 (out set to "") outside the years 0000..9999, which an envelope's
 * created never is. Civil-from-days arithmetic (H. Hinnant's algorithm): no
 * time_t, no gmtime_r, no locale, so it works the same in every plugin. */
static inline int outbox_sink_format_time(int64_t ms, char out[OUTBOX_SINK_TIME_SIZE]) {
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) { /* floor, so that -1 ms is 23:59:59.999 of the day before */
        rem += 86400000;
        days -= 1;
    }
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    if (y < 0 || y > 9999) {
        out[0] = '\0';
        return -1;
    }
    int64_t v[7] = {y, m, d, rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000};
    static const unsigned char width[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    size_t o = 0;
    for (int i = 0; i < 7; i++) {
        for (int k = width[i] - 1; k >= 0; k--) {
            int64_t x = v[i];
            for (int j = 0; j < k; j++)
                x /= 10;
            out[o++] = (char)('0' + x % 10);
        }
        out[o++] = after[i];
    }
    out[o] = '\0';
    return 0;
}

/* For recover (and any plugin that works destination by destination):
 * calls fn(ctx, idx, k, errbuf, errbuf_size) once per destination among
 * events[0..n), idx holding the indexes of that destination's k events in
 * log order. Returns the first status other than OUTBOX_SINK_OK that fn
 * returns (the rest are not called), or OK; RETRY with errbuf when out of
 * memory. */
typedef int (*outbox_sink_destination_fn)(void *ctx, const size_t *idx, size_t k, char *errbuf,
                                          size_t errbuf_size);

typedef struct {
    const char *destination;
    size_t i;
} outbox_sink_by_destination_t;

static inline int outbox_sink_by_destination_cmp(const void *a, const void *b) {
    const outbox_sink_by_destination_t *x = (const outbox_sink_by_destination_t *)a;
    const outbox_sink_by_destination_t *y = (const outbox_sink_by_destination_t *)b;
    int c = strcmp(x->destination, y->destination);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

static inline int outbox_sink_each_destination(const outbox_sink_event_t *events, size_t n,
                                               outbox_sink_destination_fn fn, void *ctx, char *errbuf,
                                               size_t errbuf_size) {
    outbox_sink_by_destination_t *order =
        (outbox_sink_by_destination_t *)malloc((n ? n : 1) * sizeof *order);
    size_t *idx = (size_t *)malloc((n ? n : 1) * sizeof *idx);
    int rc = OUTBOX_SINK_OK;
    if (order == NULL || idx == NULL) {
        snprintf(errbuf, errbuf_size, "out of memory");
        rc = OUTBOX_SINK_RETRY;
    }
    for (size_t i = 0; rc == OUTBOX_SINK_OK && i < n; i++) {
        order[i].destination = events[i].destination;
        order[i].i = i;
    }
    if (rc == OUTBOX_SINK_OK)
        qsort(order, n, sizeof *order, outbox_sink_by_destination_cmp);
    for (size_t i = 0; rc == OUTBOX_SINK_OK && i < n; i++)
        idx[i] = order[i].i;
    for (size_t a = 0, b; rc == OUTBOX_SINK_OK && a < n; a = b) {
        for (b = a + 1; b < n && strcmp(order[b].destination, order[a].destination) == 0; b++) {
        }
        rc = fn(ctx, idx + a, b - a, errbuf, errbuf_size);
    }
    free(order);
    free(idx);
    return rc;
}

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
            .option_size = sizeof(outbox_sink_option_t),                              \
            __VA_ARGS__};                                                             \
        return &plugin;                                                               \
    }

#ifdef __cplusplus
}
#endif

#endif /* OUTBOX_SINK_H */
