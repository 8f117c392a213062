/*
 * outboxctl.h - what the commands of outboxctl share: the parsed options,
 * exit codes, opening the outbox or the raw collections, and small BSON
 * and JSON helpers.
 */
#ifndef OUTBOXCTL_H
#define OUTBOXCTL_H

#include "outbox/outbox.h"

#include <stdbool.h>
#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_GAP 3

typedef struct {
    const char *uri, *db, *outbox, *schemas;
    const char *size, *max;
    const char *after;
    bool from_now, from_start;
    long long limit;
    long long timeout_ms;
    const char *headers[32];
    int n_headers;
    const char *sink, *id; /* deadletter filters */
    bool json;             /* status --json */
} options_t;

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
const char *doc_utf8(const bson_t *doc, const char *key);
bool doc_oid(const bson_t *doc, const char *key, bson_oid_t *out);
int64_t doc_date(const bson_t *doc, const char *key);
void json_string(FILE *f, const char *s);

/* The commands; each returns the process's exit status. */
int cmd_init(const options_t *o);
int cmd_put(const options_t *o, char **args, int n);
int cmd_tail(const options_t *o);
int cmd_promote(const options_t *o);
int cmd_status(const options_t *o);
int cmd_checkpoint(const options_t *o, char **args, int n);
int cmd_deadletter(const options_t *o, char **args, int n);

#endif
