/*
 * sinkhost.h - the one test host for sink plugins. It loads a built plugin
 * through outboxd's own loader (outboxd/plugin.c: the same ABI checks, the
 * same refusals), resolves its options through outboxd's own option code
 * (outboxd/options.c: the same types, ranges, defaults and options_fill),
 * runs the plugin's check through outboxd_sink_check, and offers the plugin
 * a host struct that records every ack, thread-safely (acks come from
 * client-library threads too).
 *
 * Beyond recording, it keeps the books sink.h asks a plugin to keep, and
 * counts every break of them (sinkhost_violations): an event acked twice,
 * an ack for an event the plugin never took or gave back, an ack outside
 * open..close, publish_some taking more than n, flush returning OK while
 * acks are outstanding, a status that is not OK, RETRY or FATAL. The sink
 * tests and outbox-sink-conformance (conformance/) share it: one host for
 * every sink, so a test and the conformance tool cannot disagree about the
 * contract.
 *
 * It needs neither cmocka nor a server: plain C, linked from
 * tests/libsinkhost.la (which brings outboxd/libhost.la).
 *
 * Threads: every call below except sinkhost_n_acks, sinkhost_ack_of,
 * sinkhost_ack_at, sinkhost_acks_for, sinkhost_outstanding,
 * sinkhost_violations and sinkhost_log is the instance's thread (the
 * test's), as outboxd calls a plugin from one thread per instance.
 */
#ifndef OUTBOX_TESTS_SINKHOST_H
#define OUTBOX_TESTS_SINKHOST_H

#include "outbox/sink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sinkhost sinkhost_t;

/* One ack as the plugin gave it (error "" when the plugin passed NULL). */
typedef struct {
    uint64_t seq;
    outbox_sink_status_t status;
    char error[512];
} sinkhost_ack_t;

/* Loads plugin_name and makes a host for it: sink name "test", payload
 * "json", route "". plugin_name is either a plugin's name, loaded from
 * $OUTBOX_TEST_BUILDDIR/sinks/NAME (its .libs/NAME.so, as outboxd finds
 * it; "." when the variable is unset), or a path ending in ".so", loaded
 * with the file's folder as the plugin directory. Returns NULL after
 * printing the loader's reason on stderr. Free with sinkhost_free. */
sinkhost_t *sinkhost_new(const char *plugin_name);

/* As sinkhost_new, but the loader's reason goes into errbuf (always
 * NUL-terminated) instead of stderr. */
sinkhost_t *sinkhost_load(const char *plugin_name, char *errbuf, size_t size);

/* Another host for the same loaded plugin (a second sink of one plugin in
 * outboxd: init ran once, fini runs when the last host is freed), with a
 * copy of h's configuration. */
sinkhost_t *sinkhost_another(sinkhost_t *h);

/* Configuration, used by the next check or open. Options keep the order
 * they were first set in (their "line" in messages is that order, from 1);
 * setting a key again replaces its value. The strings are copied. */
void sinkhost_set(sinkhost_t *h, const char *key, const char *value); /* an option */
void sinkhost_route(sinkhost_t *h, const char *route);
void sinkhost_payload(sinkhost_t *h, const char *payload); /* "json" | "bson" */
/* The name messages give as the configuration file ("sinkhost" by
 * default): outbox-sink-conformance says "--option". */
void sinkhost_origin(sinkhost_t *h, const char *origin);
/* Log lines are echoed on stderr as TAP diagnostics ("# sink log: ...")
 * unless quiet. */
void sinkhost_quiet(sinkhost_t *h, bool quiet);

/* The route expanded for an event of this type and key (NULL: a null
 * key), by outboxd's own expansion: what the event's destination must be.
 * Returns the length, or -1 when out (size bytes) is too small. */
long sinkhost_destination(sinkhost_t *h, const char *type, const char *key, char *out, size_t size);

const outbox_sink_plugin_t *sinkhost_plugin(sinkhost_t *h);
/* The file the loader opened (for messages). */
const char *sinkhost_plugin_path(sinkhost_t *h);

/* The option table, then the plugin's check (when it has one), as
 * `outboxd --check` runs them. OUTBOX_SINK_OK, or OUTBOX_SINK_FATAL with
 * the reason ("ORIGIN:LINE:1: sink test: ...") in errbuf. */
int sinkhost_check(sinkhost_t *h, char *errbuf, size_t size);

/* Resolves the options (FATAL with the reason when the table refuses
 * them), refuses a payload the plugin does not declare, then calls open.
 * Returns open's status as the plugin gave it (see sinkhost_violations for
 * one that is none of OK/RETRY/FATAL). On failure nothing stays open and
 * nothing can be published. */
int sinkhost_open(sinkhost_t *h, char *errbuf, size_t size);

/* Offers n events: publish_some when the plugin has it, else publish.
 * *taken (may be NULL) is how many the plugin took: publish_some's k, or
 * for publish n on OK and the number it acked during the call otherwise
 * (sink.h: the rest are given back). Events the plugin did not take must
 * never be acked; that is recorded as a violation. Returns the plugin's
 * status; FATAL without calling the plugin when no instance is open. */
int sinkhost_publish(sinkhost_t *h, const outbox_sink_event_t *ev, size_t n, size_t *taken,
                     char *errbuf, size_t size);

/* poll and flush; OUTBOX_SINK_OK when the plugin has none. A flush that
 * returns OK while events are unacked (or, without a flush callback, any
 * event left unacked) is recorded as a violation. */
int sinkhost_poll(sinkhost_t *h, int timeout_ms, char *errbuf, size_t size);
int sinkhost_flush(sinkhost_t *h, int timeout_ms, char *errbuf, size_t size);

/* Closes the instance (no flush first: call sinkhost_flush for that). Any
 * ack after close returns is recorded as a violation; events still unacked
 * are given back. A no-op when nothing is open. The host may be opened
 * again afterwards. */
void sinkhost_close(sinkhost_t *h);

void *sinkhost_state(sinkhost_t *h); /* the plugin's instance state, or NULL */
const outbox_sink_host_t *sinkhost_host(sinkhost_t *h);

/* Acks, thread-safe. */
size_t sinkhost_n_acks(sinkhost_t *h);                              /* every ack so far */
bool sinkhost_ack_of(sinkhost_t *h, uint64_t seq, sinkhost_ack_t *out); /* the latest; false: none */
size_t sinkhost_acks_for(sinkhost_t *h, uint64_t seq);              /* how many seq got */
bool sinkhost_ack_at(sinkhost_t *h, size_t i, sinkhost_ack_t *out);  /* the i-th, arrival order */
size_t sinkhost_outstanding(sinkhost_t *h); /* events taken and not acked yet */

/* Until n acks have come in all (polling the plugin, or waiting when it
 * has no poll), at most timeout_ms. */
bool sinkhost_wait_acks(sinkhost_t *h, size_t n, int timeout_ms);

/* Called for each ack after it is recorded, from the acking thread, with
 * no lock of the host held (a test may compare it with its own records). */
void sinkhost_on_ack(sinkhost_t *h, void (*fn)(void *ctx, const sinkhost_ack_t *ack), void *ctx);

/* Every line the plugin logged so far, each ending in "\n". Valid until
 * the next call of sinkhost_log or sinkhost_free. */
const char *sinkhost_log(sinkhost_t *h);

/* The rules of sink.h that the host can see broken. */
typedef enum {
    SINKHOST_DOUBLE_ACK = 0,   /* an event acked more than once per publish */
    SINKHOST_ACK_NOT_TAKEN,    /* an ack for an event the plugin gave back: beyond
                                  publish_some's *taken, or left unacked when publish
                                  returned RETRY/FATAL */
    SINKHOST_ACK_OUTSIDE_OPEN, /* an ack before open returned OK or after close returned */
    SINKHOST_TAKEN_OVER_N,     /* publish_some set *taken > n */
    SINKHOST_FLUSH_EARLY,      /* flush returned OK (or there is none) with acks outstanding */
    SINKHOST_BAD_STATUS,       /* a callback's result or an ack's status not OK/RETRY/FATAL */
    SINKHOST_ACK_UNKNOWN,      /* an ack (while open) for a seq that was never published */
    SINKHOST_N_RULES
} sinkhost_rule_t;

/* How often rule was broken so far; the first break's description goes
 * into first (may be NULL; "" when never). Thread-safe. */
size_t sinkhost_violations(sinkhost_t *h, sinkhost_rule_t rule, char *first, size_t size);

/* Closes if open, then unloads (after the plugin's fini) unless another
 * host of sinkhost_another still uses the plugin. NULL is ignored. */
void sinkhost_free(sinkhost_t *h);

#endif
