/*
 * close.c - checks 11 and 12: close returns within sink.h's 10 seconds,
 * after a flush (the main instance) and with events in flight (a second
 * instance, closed right after a publish, without flush or poll); and no
 * ack arrives after close returned. A plugin thread left running would ack
 * late, and a plugin that keeps a closed instance's host would ack through
 * it from another instance: so after a pause a third instance is opened
 * and closed before the hosts are asked.
 */
#include "conformance.h"

#include <stdio.h>
#include <time.h>

#define INFLIGHT_EVENTS 64
#define AFTER_CLOSE_PAUSE_MS 250

static int64_t timed_close(sinkhost_t *h) {
    int64_t t0 = conformance_now_ms();
    sinkhost_close(h);
    return conformance_now_ms() - t0;
}

void check_close(conformance_t *c) {
    static const char name[] = "close returns within 10 s, after flush and with events in flight";
    static const char late[] = "no ack arrives after close returned";
    char errbuf[2048], why[512];
    if (!c->opened) {
        tap_skip(name, "open failed");
        tap_skip(late, "open failed");
        return;
    }
    int64_t bound = CONFORMANCE_CLOSE_BOUND_MS + CONFORMANCE_CLOSE_SLACK_MS;
    int64_t main_ms = timed_close(c->host), inflight_ms = -1;
    size_t inflight_taken = 0;

    c->inflight = sinkhost_another(c->host);
    int rc = sinkhost_open(c->inflight, errbuf, sizeof errbuf);
    if (rc == OUTBOX_SINK_OK) {
        size_t n = conformance_events_count(c->events) - c->n_main - CONFORMANCE_NEVER_PUBLISHED;
        rc = sinkhost_publish(c->inflight, conformance_events_at(c->events, c->n_main), n, &inflight_taken, errbuf,
                              sizeof errbuf);
        if (rc != OUTBOX_SINK_OK || inflight_taken < n)
            c->n_given_back++;
        inflight_ms = timed_close(c->inflight);
    } else {
        tap_diag("a second instance did not open (%s): %s", rc == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL", errbuf);
    }

    if (main_ms > bound)
        tap_not_ok(name, "close after flush took %lld ms", (long long)main_ms);
    else if (inflight_ms > bound)
        tap_not_ok(name, "close with %zu events in flight took %lld ms", inflight_taken, (long long)inflight_ms);
    else if (inflight_ms < 0)
        tap_not_ok(name, "close after flush took %lld ms; but a second instance could not be opened for the "
                   "in-flight case", (long long)main_ms);
    else
        tap_ok(name);
    tap_diag("close after flush: %lld ms; with %zu events in flight (%zu acked before close returned): %lld ms",
             (long long)main_ms, inflight_taken, c->inflight ? sinkhost_n_acks(c->inflight) : 0,
             (long long)inflight_ms);

    struct timespec pause = {0, AFTER_CLOSE_PAUSE_MS * 1000000L};
    nanosleep(&pause, NULL);
    c->reopened = sinkhost_another(c->host);
    if (sinkhost_open(c->reopened, errbuf, sizeof errbuf) == OUTBOX_SINK_OK)
        sinkhost_close(c->reopened);
    nanosleep(&pause, NULL);

    sinkhost_t *hosts[3];
    size_t n = conformance_hosts(c, hosts), count = 0;
    why[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char first[512];
        size_t k = sinkhost_violations(hosts[i], SINKHOST_ACK_OUTSIDE_OPEN, first, sizeof first);
        if (k > 0 && count == 0)
            snprintf(why, sizeof why, "%s", first);
        count += k;
    }
    if (count > 0)
        tap_not_ok(late, "%s (%zu acks outside open..close; a plugin acks nothing after close returns, and "
                   "leaves no thread running)", why, count);
    else
        tap_ok(late);
}
