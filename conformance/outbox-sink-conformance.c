/*
 * outbox-sink-conformance.c - the plugin author's contract checker: loads a
 * sink plugin as outboxd does and checks it against <outbox/sink.h>,
 * printing TAP (conformance/README.md, outbox-sink-conformance(1)). Exit 0
 * when every check passes, 1 when one fails, 2 on a usage error.
 *
 * The host is tests/sinkhost.c, the one every sink test uses: outboxd's
 * own loader, option code and check, plus the books of every ack. Each
 * group of checks is a file of its own here; this one runs them in plan
 * order and owns the run.
 */
#include "conformance.h"

#include "outboxd/secrets.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t conformance_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t conformance_bound_ms(int timeout_ms) {
    int64_t five = 5 * (int64_t)timeout_ms, plus = (int64_t)timeout_ms + 2000;
    return five > plus ? five : plus;
}

size_t conformance_hosts(conformance_t *c, sinkhost_t *out[3]) {
    size_t n = 0;
    if (c->host)
        out[n++] = c->host;
    if (c->inflight)
        out[n++] = c->inflight;
    if (c->reopened)
        out[n++] = c->reopened;
    return n;
}

int main(int argc, char **argv) {
    conformance_t c;
    memset(&c, 0, sizeof c);
    int parsed = conformance_args_parse(&c.args, argc, argv);
    if (parsed != 0) {
        conformance_args_free(&c.args);
        return parsed > 0 ? 0 : 2;
    }
    /* sink.h: outboxd ignores SIGPIPE before it loads a plugin. */
    signal(SIGPIPE, SIG_IGN);

    tap_plan(CONFORMANCE_PLAN);
    check_load(&c);
    if (c.host) {
        c.n_main = c.args.n_events;
        c.events = conformance_events_new(c.host, c.args.payload, c.n_main + 64 + CONFORMANCE_NEVER_PUBLISHED);
        if (!conformance_events_at(c.events, 0)->destination[0]) {
            fprintf(stderr, "outbox-sink-conformance: --route \"%s\" expands to an empty destination\n",
                    c.args.route);
            conformance_events_free(c.events);
            sinkhost_free(c.host);
            conformance_args_free(&c.args);
            return 2;
        }
    }
    check_options(&c);
    check_config(&c);
    check_open(&c);
    check_publish(&c);
    check_flush(&c);
    check_poll(&c);
    check_acks(&c);
    check_stats(&c);
    check_recover(&c);
    check_close(&c);
    check_rules(&c);
    check_secrets(&c);
    if (tap_count() != CONFORMANCE_PLAN)
        tap_diag("internal error: %d checks run, %d planned", tap_count(), CONFORMANCE_PLAN);

    if (tap_failures() > 0 && c.host) {
        const char *log = sinkhost_log(c.host);
        if (log[0]) {
            tap_diag("the plugin's log (main instance):");
            tap_diag_lines("  ", log);
        }
    }
    tap_diag("%d of %d checks failed", tap_failures(), CONFORMANCE_PLAN);
    int failed = tap_failures() > 0 || tap_count() != CONFORMANCE_PLAN;

    /* Closed hosts only: freeing the last one calls fini and unloads. */
    sinkhost_free(c.reopened);
    sinkhost_free(c.inflight);
    sinkhost_free(c.host);
    conformance_events_free(c.events);
    conformance_args_free(&c.args);
    outboxd_secrets_clear();
    return failed ? 1 : 0;
}
