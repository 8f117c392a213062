/*
 * conformance.h - what the parts of outbox-sink-conformance share: the
 * command line, the run (the hosts, the events, what was seen), TAP output,
 * and one function per group of checks. Each check prints its own TAP
 * lines, in the order of the plan below.
 */
#ifndef OUTBOX_CONFORMANCE_H
#define OUTBOX_CONFORMANCE_H

#include "outbox/sink.h"
#include "sinkhost.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The command line. */
typedef struct {
    const char *plugin;   /* PLUGIN.so */
    char **keys, **values; /* --option KEY=VALUE, in order (owned) */
    size_t n_options;
    const char *route;    /* --route, or the default */
    const char *payload;  /* "json" | "bson" */
    size_t n_events;      /* --events */
    int timeout_ms;       /* --timeout: how long acks, flush and publish may take */
    bool verbose;         /* --verbose: the plugin's log lines as they come */
} conformance_args_t;

#define CONFORMANCE_DEFAULT_ROUTE "outbox-conformance.{type}"
#define CONFORMANCE_DEFAULT_EVENTS 100
#define CONFORMANCE_DEFAULT_TIMEOUT_MS 10000
/* sink.h: close returns within 10 seconds; allowed a little more for a
 * loaded machine. */
#define CONFORMANCE_CLOSE_BOUND_MS 10000
#define CONFORMANCE_CLOSE_SLACK_MS 5000

/* Parses argv; returns 0, 1 after printing help or the version (exit 0),
 * or -1 after printing the usage error on stderr (exit 2). */
int conformance_args_parse(conformance_args_t *args, int argc, char **argv);
void conformance_args_free(conformance_args_t *args);

/* Test events: seqs 1..n, unique ids per run, one type, keys, headers, the
 * payload encoded as the sink's payload says, destinations expanded from
 * the route by outboxd's own code. */
typedef struct conformance_events conformance_events_t;
conformance_events_t *conformance_events_new(sinkhost_t *h, const char *payload, size_t n);
const outbox_sink_event_t *conformance_events_at(const conformance_events_t *e, size_t i);
size_t conformance_events_count(const conformance_events_t *e);
void conformance_events_free(conformance_events_t *e);

/* A run. */
typedef struct {
    conformance_args_t args;
    sinkhost_t *host;      /* the main instance */
    sinkhost_t *inflight;  /* closed with events in flight */
    sinkhost_t *reopened;  /* opened after that close */
    conformance_events_t *events;
    size_t n_main;         /* events for the main instance: [0, n_main); the rest for inflight */
    bool opened;           /* the main instance opened */
    bool published;        /* every event of the main instance was taken */
    size_t n_given_back;   /* publish calls that gave events back (RETRY, FATAL, short *taken) */
} conformance_t;

/* The checks, in plan order; each prints the TAP lines it counts. */
#define CONFORMANCE_PLAN 17
/* Events at the end of the run's set that nothing publishes: recover must
 * not find them (check 17). */
#define CONFORMANCE_NEVER_PUBLISHED 16
void check_load(conformance_t *c);       /* 1 line: loads as outboxd loads it */
void check_options(conformance_t *c);    /* 1: the option table */
void check_config(conformance_t *c);     /* 1: check accepts the options */
void check_open(conformance_t *c);       /* 1: open, OK/RETRY/FATAL only */
void check_publish(conformance_t *c);    /* 1: every event taken, *taken <= n */
void check_flush(conformance_t *c);      /* 1: flush waits for acks, within its timeout */
void check_poll(conformance_t *c);       /* 1: poll within its timeout */
void check_acks(conformance_t *c);       /* 2: exactly one ack each; acks OK */
void check_stats(conformance_t *c);      /* 1: stats names and kinds */
void check_recover(conformance_t *c);    /* 1: recover finds the published events, and only those */
void check_close(conformance_t *c);      /* 2: close in time with events in flight; no ack after */
void check_rules(conformance_t *c);      /* 3: no unknown acks; given-back events stay unacked; statuses */
void check_secrets(conformance_t *c);    /* 1: no secret in the plugin's log */

/* Whether option key holds a secret: a SECRET option of the plugin's table
 * (or its KEY_file), or a key that names a credential (outboxd's rule). */
bool conformance_secret_option(const outbox_sink_plugin_t *p, const char *key);

/* The hosts of the run that exist, for checks over all of them. */
size_t conformance_hosts(conformance_t *c, sinkhost_t *out[3]);

/* Milliseconds on the monotonic clock. */
int64_t conformance_now_ms(void);
/* The bound a call given timeout_ms must return within: 5 times it, and
 * never less than 2 seconds more (a loaded machine). */
int64_t conformance_bound_ms(int timeout_ms);

/* TAP on stdout. Every text passes through outboxd's secrets registry
 * first, so a secret option's value is never printed. */
void tap_plan(int n);
void tap_ok(const char *name);
void tap_not_ok(const char *name, const char *why_fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_skip(const char *name, const char *why_fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Each line of text as a diagnostic, prefixed. */
void tap_diag_lines(const char *prefix, const char *text);
int tap_count(void);
int tap_failures(void);

#endif
