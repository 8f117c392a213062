/*
 * publish.c - checks 5, 6 and 7: the main instance takes every event
 * (publish, or publish_some with *taken <= n; what is given back is offered
 * again, after a poll, as outboxd does), flush returns OK only once every
 * taken event is acked and within a bound of its timeout, and poll returns
 * within a bound of its timeout.
 */
#include "conformance.h"

#include <stdio.h>
#include <time.h>

#define BATCH 32         /* events per publish call */
#define RETRY_PAUSE_MS 100

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void check_publish(conformance_t *c) {
    static const char name[] = "publish takes every event (publish_some: *taken <= n)";
    char errbuf[2048], why[512];
    if (!c->opened) {
        tap_skip(name, "open failed: nothing is published after a failed open");
        return;
    }
    int64_t deadline = conformance_now_ms() + c->args.timeout_ms;
    size_t done = 0, calls = 0;
    int rc = OUTBOX_SINK_OK;
    errbuf[0] = '\0';
    while (done < c->n_main && conformance_now_ms() < deadline) {
        size_t n = c->n_main - done < BATCH ? c->n_main - done : BATCH, taken = 0;
        rc = sinkhost_publish(c->host, conformance_events_at(c->events, done), n, &taken, errbuf, sizeof errbuf);
        calls++;
        done += taken;
        if (rc != OUTBOX_SINK_OK || taken < n)
            c->n_given_back++;
        if (rc == OUTBOX_SINK_FATAL)
            break;
        if (rc == OUTBOX_SINK_RETRY || taken < n) {
            /* As outboxd: poll (acks make room), and back off after RETRY. */
            char pollbuf[512];
            sinkhost_poll(c->host, RETRY_PAUSE_MS, pollbuf, sizeof pollbuf);
            if (rc == OUTBOX_SINK_RETRY)
                pause_ms(RETRY_PAUSE_MS);
        }
    }
    if (sinkhost_violations(c->host, SINKHOST_TAKEN_OVER_N, why, sizeof why) > 0) {
        tap_not_ok(name, "%s", why);
    } else if (done < c->n_main) {
        tap_not_ok(name, "took %zu of %zu events in %zu calls; the last returned %s: %s", done, c->n_main,
                   calls, rc == OUTBOX_SINK_OK ? "OK (with a short *taken)" : rc == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL",
                   errbuf[0] ? errbuf : "(no message)");
    } else {
        c->published = true;
        tap_ok(name);
        tap_diag("%zu events in %zu calls, %zu of them gave events back", done, calls, c->n_given_back);
    }
}

void check_flush(conformance_t *c) {
    static const char name[] = "flush returns OK only when no ack is outstanding, within its timeout";
    char errbuf[2048], why[512];
    if (!c->published) {
        tap_skip(name, "not every event was published");
        return;
    }
    const outbox_sink_plugin_t *p = sinkhost_plugin(c->host);
    int64_t t0 = conformance_now_ms();
    int rc = sinkhost_flush(c->host, c->args.timeout_ms, errbuf, sizeof errbuf);
    int64_t took = conformance_now_ms() - t0;
    if (sinkhost_violations(c->host, SINKHOST_FLUSH_EARLY, why, sizeof why) > 0) {
        tap_not_ok(name, "%s (%s)", why,
                   p->flush ? "flush must wait until every published event is acked"
                            : "without flush, publish must ack each event before it returns");
    } else if (took > conformance_bound_ms(c->args.timeout_ms)) {
        tap_not_ok(name, "flush(%d ms) returned after %lld ms", c->args.timeout_ms, (long long)took);
    } else {
        tap_ok(name);
        if (!p->flush)
            tap_diag("the plugin has no flush: every event was acked before publish returned");
        else if (rc != OUTBOX_SINK_OK)
            tap_diag("flush returned %s after %lld ms: %s", rc == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL",
                     (long long)took, errbuf);
        else
            tap_diag("flush returned OK after %lld ms", (long long)took);
    }
    /* Acks that flush did not wait for may still come: give them the
     * timeout, so that the ack checks judge what the plugin sends. */
    int64_t deadline = conformance_now_ms() + c->args.timeout_ms;
    while (sinkhost_outstanding(c->host) > 0 && conformance_now_ms() < deadline) {
        if (p->poll)
            sinkhost_poll(c->host, 100, errbuf, sizeof errbuf);
        else
            pause_ms(10);
    }
}

void check_poll(conformance_t *c) {
    static const char name[] = "poll returns within its timeout, and OK while the destination answers";
    char errbuf[2048];
    if (!c->opened) {
        tap_skip(name, "open failed");
        return;
    }
    if (!sinkhost_plugin(c->host)->poll) {
        tap_skip(name, "the plugin has no poll");
        return;
    }
    static const int timeouts[] = {0, 200, 500};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t t0 = conformance_now_ms();
        int rc = sinkhost_poll(c->host, timeouts[i], errbuf, sizeof errbuf);
        int64_t took = conformance_now_ms() - t0;
        if (took > conformance_bound_ms(timeouts[i])) {
            tap_not_ok(name, "poll(%d ms) returned after %lld ms", timeouts[i], (long long)took);
            return;
        }
        /* The destination answered open: a RETRY would have outboxd show
         * the sink as unreachable (sink.h, poll), and /readyz fail. */
        if (rc == OUTBOX_SINK_RETRY) {
            tap_not_ok(name, "poll(%d ms) returned RETRY while the destination answers (outboxd would report the "
                             "sink unreachable, sink.h): %s",
                       timeouts[i], errbuf);
            return;
        }
        if (rc != OUTBOX_SINK_OK)
            tap_diag("poll(%d ms) returned FATAL: %s", timeouts[i], errbuf);
    }
    tap_ok(name);
}
