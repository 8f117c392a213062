/*
 * recover.c - check 17: recover (ABI 1.1; docs/recovery.md) finds the
 * events at the destination and only those. The main instance, still open
 * after flush, is handed one list as outboxd builds it after a crash: the
 * last events it published and saw acked, then events nothing published
 * (in log order, as after a crash: a prefix went out). Every published one
 * must be marked held, no unpublished one, and recover acks nothing. A
 * plugin that misses a published event costs a duplicate; one that marks
 * an unpublished event held makes outboxd lose it.
 */
#include "conformance.h"

#include "outboxd/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBLISHED_ASKED 32 /* the main instance's last events in the list */

void check_recover(conformance_t *c) {
    static const char name[] = "recover finds the published events at the destination, and only those";
    const outbox_sink_plugin_t *p = c->host ? sinkhost_plugin(c->host) : NULL;
    if (!p || !(OUTBOXD_PLUGIN_HAS(p, recover) && p->recover)) {
        tap_skip(name, "the plugin has no recover: outboxd is at-least-once with it (docs/recovery.md)");
        return;
    }
    if (!c->published || sinkhost_outstanding(c->host) > 0) {
        tap_skip(name, "not every event was published and acked");
        return;
    }
    size_t k = c->n_main < PUBLISHED_ASKED ? c->n_main : PUBLISHED_ASKED;
    size_t total = conformance_events_count(c->events), n = k + CONFORMANCE_NEVER_PUBLISHED;
    outbox_sink_event_t *list = calloc(n, sizeof *list);
    unsigned char *held = calloc(n, 1);
    if (!list || !held)
        abort();
    for (size_t i = 0; i < k; i++)
        list[i] = *conformance_events_at(c->events, c->n_main - k + i);
    for (size_t i = 0; i < CONFORMANCE_NEVER_PUBLISHED; i++)
        list[k + i] = *conformance_events_at(c->events, total - CONFORMANCE_NEVER_PUBLISHED + i);
    for (size_t i = 0; i < n; i++)
        list[i].seq = i; /* an index, never to be acked (sink.h) */
    char errbuf[2048] = "";
    size_t acks = sinkhost_n_acks(c->host);
    int64_t t0 = conformance_now_ms();
    int rc = p->recover(sinkhost_state(c->host), list, n, held, errbuf, sizeof errbuf);
    int64_t took = conformance_now_ms() - t0;
    size_t missed = 0, invented = 0, first_missed = 0, first_invented = 0;
    for (size_t i = 0; i < n; i++) {
        if (i < k && !held[i] && missed++ == 0)
            first_missed = i;
        if (i >= k && held[i] && invented++ == 0)
            first_invented = i;
    }
    if (rc != OUTBOX_SINK_OK)
        tap_not_ok(name, "recover returned %s with the destination reachable: %s",
                   rc == OUTBOX_SINK_RETRY ? "RETRY" : rc == OUTBOX_SINK_FATAL ? "FATAL" : "an unknown status",
                   errbuf[0] ? errbuf : "(no message)");
    else if (sinkhost_n_acks(c->host) != acks)
        tap_not_ok(name, "recover acked %zu events: it must ack none", sinkhost_n_acks(c->host) - acks);
    else if (invented)
        tap_not_ok(name, "%zu of %d events never published were marked held (the first: event %s): outboxd would "
                   "never publish them", invented, CONFORMANCE_NEVER_PUBLISHED, list[first_invented].id);
    else if (missed)
        tap_not_ok(name, "%zu of %zu published events were not found (the first: event %s): each would be "
                   "published twice", missed, k, list[first_missed].id);
    else {
        tap_ok(name);
        tap_diag("recover found the %zu published events among %zu in %lld ms", k, n, (long long)took);
    }
    free(list);
    free(held);
}
