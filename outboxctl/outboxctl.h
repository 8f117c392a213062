/*
 * outboxctl.h - what the commands of outboxctl share: the parsed options,
 * exit codes, opening the outbox or the raw collections, and small BSON
 * and JSON helpers.
 */
#ifndef OUTBOXCTL_H
#define OUTBOXCTL_H

#include "outbox/outbox.h"
#include "lease_doc.h" /* outboxd's, -I outboxd */

#include <stdbool.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_GAP 3
#define EXIT_MALFORMED 4 /* tail met a document that is not an envelope */

typedef struct {
    const char *uri, *db, *outbox, *schemas;
    const char *uri_source;  /* where uri came from, for messages: "--uri",
                              * "--uri-file PATH", "OUTBOX_URI", ... */
    const char *size, *max;
    const char *after;
    bool from_now, from_start;
    long long limit;
    long long timeout_ms;
    const char *headers[32];
    int n_headers;
    const char *sink, *id; /* deadletter filters */
    bool json;             /* status --json */
    bool skip_malformed;   /* tail --skip-malformed */
    bool create;           /* checkpoint set --create */
    const char *time;      /* checkpoint set SINK --time ISO-8601 */
    double warn_headroom;  /* status --warn-headroom: a sink below is LOW */
    bool warn_headroom_set;
} options_t;

/* status's --warn-headroom when not given: the default of outboxd's
 * log.warn_headroom, so that outboxctl and outboxd's warning agree. */
#define OUTBOXCTL_WARN_HEADROOM_DEFAULT 0.2

/* Reads a connection string from a file (--uri-file, OUTBOX_URI_FILE): the
 * first line, without its end-of-line; so the password need not be on the
 * command line, where ps shows it. NULL with a message on failure; caller
 * frees with free(). */
char *read_uri_file(const char *path);

/* Prints "outboxctl: " and the connection string with its password hidden
 * (outbox_uri_redacted: the only form in which outboxctl prints one). */
void print_uri_redacted(FILE *f, const char *uri);

/* Prints "outboxctl: WHAT: message" and returns the exit status for the
 * error's code. */
int fail(const char *what, const outbox_error_t *err);
bool parse_count(const char *s, long long *out);
/* The outbox of --uri/--db/--outbox (and --schemas, --size, --max when
 * with_size); NULL with *status set on failure. */
outbox_t *open_outbox(const options_t *o, bool with_size, int *status);

/* The collections outboxd keeps beside the log (N.checkpoints,
 * N.deadletter), which liboutbox does not wrap: reached with libmongoc. */
typedef struct {
    const char *db, *name;
    mongoc_client_t *client;
    mongoc_collection_t *log, *checkpoints, *deadletter;
    char checkpoints_name[300], deadletter_name[300];
} store_t;

int store_open(const options_t *o, store_t *s);
void store_close(store_t *s);
/* 0 when the log N exists, else an exit status after a message. */
int require_log(store_t *s);

int64_t now_ms(void);
void format_iso(int64_t ms, char *out, size_t size);
/* An ISO-8601 time with a zone, YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm)
 * (also +hhmm), as milliseconds since the epoch; a fraction finer than a
 * millisecond rounds up. False for anything else (no zone, 24:00, Feb 30). */
bool parse_iso_time(const char *s, int64_t *ms);
const char *doc_utf8(const bson_t *doc, const char *key);
bool doc_oid(const bson_t *doc, const char *key, bson_oid_t *out);
int64_t doc_date(const bson_t *doc, const char *key);
void json_string(FILE *f, const char *s);

/* outboxd's leases in N.leases (docs/leases.md 1.2, 5): cmd_lease.c, with
 * outboxd's lease_doc.c (lease_doc.h) to build and parse them. */
typedef struct {
    outboxd_lease_doc_t doc;
    int64_t renew_ms;   /* a claim's renew_ms, 0 when absent */
} lease_entry_t;

typedef struct {
    lease_entry_t *entries; /* every document of N.leases that is outboxd's */
    size_t n;
    int64_t now_ms;         /* the server's hello.localTime (else this machine's clock) */
} leases_t;

/* A lease as status shows it: its newest claim. */
typedef struct {
    bool claimed, released;
    int64_t term;
    char owner[80], run[120];
    int64_t ttl_ms, renew_ms;
    int64_t age_ms;    /* server's now - the claim's last renewal; -1 unknown */
    const char *state; /* "held", "released", "stale" (unrenewed for longer than ttl_ms), NULL: no claim */
} lease_view_t;

/* Reads N.leases whole (a few documents per sink); 0 or an exit status
 * after a message. A missing collection (ha off) reads as empty. */
int leases_read(store_t *s, leases_t *out);
void leases_free(leases_t *l);
void leases_find(const leases_t *l, const char *lease, lease_view_t *v);
void leases_sink(const leases_t *l, const char *sink, lease_view_t *v);
void leases_promoter(const leases_t *l, lease_view_t *v);
/* Up to max live-looking presences (renewed within their ttl_ms). */
size_t leases_instances(const leases_t *l, const lease_entry_t **out, size_t max);
/* s with control characters masked, for a text column. */
void lease_text(char *out, size_t size, const char *s);

/* The commands; each returns the process's exit status. */
int cmd_init(const options_t *o);
int cmd_put(const options_t *o, char **args, int n);
int cmd_tail(const options_t *o);
int cmd_promote(const options_t *o);
int cmd_status(const options_t *o);
int cmd_checkpoint(const options_t *o, char **args, int n);
int cmd_deadletter(const options_t *o, char **args, int n);
int cmd_lease(const options_t *o, char **args, int n);
int cmd_schema(const options_t *o, char **args, int n);

/* From here on, stdout and stderr never show the password of uri (nor
 * the pieces of it a driver message may quote): scrub.c. */
void outboxctl_scrub_output(const char *uri);

#endif
