/*
 * acks.c - checks 8 and 9: every event the main instance took got exactly
 * one ack (none missing after flush and the timeout, none twice), and with
 * a reachable destination every ack is OK.
 */
#include "conformance.h"

#include <stdio.h>
#include <string.h>

void check_acks(conformance_t *c) {
    static const char one[] = "every published event gets exactly one ack";
    static const char okname[] = "every ack is OK (the destination is reachable)";
    char why[512];
    if (!c->published) {
        tap_skip(one, "not every event was published");
        tap_skip(okname, "not every event was published");
        return;
    }
    size_t missing = 0, not_ok = 0;
    char missing_list[256] = "";
    sinkhost_ack_t first_bad = {0};
    for (size_t i = 0; i < c->n_main; i++) {
        uint64_t seq = conformance_events_at(c->events, i)->seq;
        sinkhost_ack_t ack;
        if (!sinkhost_ack_of(c->host, seq, &ack)) {
            if (missing++ < 8)
                snprintf(missing_list + strlen(missing_list), sizeof missing_list - strlen(missing_list), "%s%llu",
                         missing > 1 ? ", " : "", (unsigned long long)seq);
        } else if (ack.status != OUTBOX_SINK_OK && not_ok++ == 0) {
            first_bad = ack;
        }
    }
    size_t doubles = sinkhost_violations(c->host, SINKHOST_DOUBLE_ACK, why, sizeof why);
    if (missing > 0)
        tap_not_ok(one, "%zu of %zu events got no ack within %d ms after flush (events %s%s)", missing, c->n_main,
                   c->args.timeout_ms, missing_list, missing > 8 ? ", ..." : "");
    else if (doubles > 0)
        tap_not_ok(one, "%s (%zu acks too many)", why, doubles);
    else
        tap_ok(one);
    if (not_ok > 0)
        tap_not_ok(okname, "%zu events acked other than OK; event %llu: %s: %s", not_ok,
                   (unsigned long long)first_bad.seq, first_bad.status == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL",
                   first_bad.error[0] ? first_bad.error : "(no error text)");
    else
        tap_ok(okname);
}
