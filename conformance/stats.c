/*
 * stats.c - check 10: the figures stats reports are ones outboxd can
 * show: names [a-z][a-z0-9_]* of at most 64 bytes, unique, a known kind,
 * a finite value (a counter never negative), help on one line.
 */
#include "conformance.h"

#include "outboxd/plugin.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_FIGURES 256

typedef struct {
    char names[MAX_FIGURES][65];
    size_t n;
    char problem[512];
} seen_t;

static bool valid_name(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > 64 || name[0] < 'a' || name[0] > 'z')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void emit(void *ctx, const char *name, outbox_sink_stat_kind_t kind, double value, const char *help) {
    seen_t *s = ctx;
    if (s->problem[0])
        return;
    if (!name || !valid_name(name)) {
        snprintf(s->problem, sizeof s->problem, "figure \"%.80s\": a name is [a-z][a-z0-9_]*, 64 bytes at most",
                 name ? name : "(null)");
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            snprintf(s->problem, sizeof s->problem, "figure %s reported twice in one call", name);
            return;
        }
    }
    if (kind != OUTBOX_SINK_STAT_COUNTER && kind != OUTBOX_SINK_STAT_GAUGE)
        snprintf(s->problem, sizeof s->problem, "figure %s: kind %d is neither COUNTER nor GAUGE", name, (int)kind);
    else if (!isfinite(value))
        snprintf(s->problem, sizeof s->problem, "figure %s: the value is not a finite number", name);
    else if (kind == OUTBOX_SINK_STAT_COUNTER && value < 0)
        snprintf(s->problem, sizeof s->problem, "figure %s: a counter is never negative (%g)", name, value);
    else if (help && strpbrk(help, "\r\n"))
        snprintf(s->problem, sizeof s->problem, "figure %s: help is one line", name);
    else if (s->n < MAX_FIGURES)
        snprintf(s->names[s->n++], sizeof s->names[0], "%s", name);
}

void check_stats(conformance_t *c) {
    static const char name[] = "stats reports valid figures (names, kinds, values)";
    if (!c->opened) {
        tap_skip(name, "open failed");
        return;
    }
    const outbox_sink_plugin_t *p = sinkhost_plugin(c->host);
    if (!(OUTBOXD_PLUGIN_HAS(p, stats) && p->stats)) {
        tap_skip(name, "the plugin has no stats");
        return;
    }
    static seen_t seen;
    memset(&seen, 0, sizeof seen);
    p->stats(sinkhost_state(c->host), emit, &seen);
    if (seen.problem[0]) {
        tap_not_ok(name, "%s", seen.problem);
        return;
    }
    tap_ok(name);
    tap_diag("%zu figures", seen.n);
}
