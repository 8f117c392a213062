/*
 * check_config.c - checks 3 and 4: the configuration from the command
 * line passes outboxd's option table and the plugin's own check (as
 * `outboxd --check` runs them), and open makes an instance. open's result
 * must be OK, RETRY or FATAL; after a failed open nothing is published
 * (sinkhost refuses to, and the later checks are skipped).
 */
#include "conformance.h"

#include "outboxd/plugin.h"

#include <stdio.h>

void check_config(conformance_t *c) {
    static const char name[] = "check accepts the options (option table, payload, the plugin's check)";
    char errbuf[2048];
    if (!c->host) {
        tap_skip(name, "the plugin did not load");
        return;
    }
    const outbox_sink_plugin_t *p = sinkhost_plugin(c->host);
    if (sinkhost_check(c->host, errbuf, sizeof errbuf) != OUTBOX_SINK_OK) {
        tap_not_ok(name, "%s", errbuf);
        return;
    }
    tap_ok(name);
    if (!(OUTBOXD_PLUGIN_HAS(p, check) && p->check))
        tap_diag("the plugin has no check callback: `outboxd --check` can only apply its option table");
}

void check_open(conformance_t *c) {
    static const char name[] = "open returns OK (results: OK, RETRY or FATAL only)";
    char errbuf[2048];
    if (!c->host) {
        tap_skip(name, "the plugin did not load");
        return;
    }
    int64_t t0 = conformance_now_ms();
    int rc = sinkhost_open(c->host, errbuf, sizeof errbuf);
    int64_t took = conformance_now_ms() - t0;
    char bad[512];
    if (sinkhost_violations(c->host, SINKHOST_BAD_STATUS, bad, sizeof bad) > 0) {
        tap_not_ok(name, "%s", bad);
        return;
    }
    if (rc != OUTBOX_SINK_OK) {
        tap_not_ok(name, "open returned %s after %lld ms: %s (nothing is published after a failed open; is "
                   "the destination reachable with these options?)",
                   rc == OUTBOX_SINK_RETRY ? "RETRY" : "FATAL", (long long)took,
                   errbuf[0] ? errbuf : "(no message in errbuf)");
        return;
    }
    c->opened = true;
    tap_ok(name);
    tap_diag("open took %lld ms", (long long)took);
}
