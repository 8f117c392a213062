/*
 * lease_doc.h - the documents of N.leases (docs/leases.md, 1.2), built and
 * read in one place so that outboxd and outboxctl agree on them byte for
 * byte: a compound _id matches only with the same field order and an int64
 * term ({lease, term} and {term, lease} are two different keys to the
 * server). libbson only, no threads: compiled into outboxd and outboxctl
 * (outboxd/libleasedoc.la).
 *
 *   a claim:             { _id: { lease: "sink:audit", term: NumberLong(7) }, owner, run, host, pid,
 *                          ttl_ms, renew_ms, renewals: NumberLong, acquired, renewed, released }
 *   a release request:   { _id: { lease: "sink:audit", term: NumberLong(7), op: "release" }, by, at }
 *   an outboxd's presence: { _id: { instance: "node-a", run: "node-a:4711:9f3a0c1e" },
 *                          renewals: NumberLong, renewed, ttl_ms, sinks_held,
 *                          sinks: ["sink:audit", ...] (the sink leases its config has) }
 */
#ifndef OUTBOXD_LEASE_DOC_H
#define OUTBOXD_LEASE_DOC_H

#include <bson/bson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The collection is the outbox's name plus this: N.leases. */
#define OUTBOXD_LEASES_SUFFIX ".leases"
/* The promoter's lease name; a sink's is "sink:NAME". */
#define OUTBOXD_LEASE_PROMOTER "promoter"

/* Each of these initialises *out (the caller bson_destroy()s it) to the
 * one-field document { _id: ... }, always in this field order with an
 * int64 term. The caller may append more fields: a filter (run, released)
 * or the rest of a document to insert. */
void outboxd_lease_claim_id(bson_t *out, const char *lease, int64_t term);   /* {_id: {lease, term}} */
void outboxd_lease_request_id(bson_t *out, const char *lease, int64_t term); /* {_id: {lease, term, op: "release"}} */
void outboxd_lease_presence_id(bson_t *out, const char *instance, const char *run); /* {_id: {instance, run}} */

/* "sink:NAME" into out (cut to size, always terminated). */
void outboxd_lease_name_for_sink(char *out, size_t size, const char *sink);

/* One document of N.leases, parsed. For a claim: lease, term, owner, run,
 * renewals, ttl_ms, renewed_ms, released. For a request (is_request):
 * lease and term. For a presence (is_presence): owner (the instance id),
 * run, renewals, ttl_ms, renewed_ms, sinks_held. renewed_ms is the server's date in ms
 * since the epoch (display only), 0 when absent. Missing numbers are 0. */
typedef struct {
    char lease[200];
    int64_t term;
    bool is_request, is_presence;
    char owner[80], run[120];
    int64_t renewals, ttl_ms, renewed_ms;
    bool released;
    int64_t sinks_held; /* a presence's: the sink leases its run holds */
} outboxd_lease_doc_t;

/* false: not a document of ours (other shape, over-long names); the caller
 * ignores it. */
bool outboxd_lease_doc_parse(const bson_t *doc, outboxd_lease_doc_t *out);

/* A presence's sinks as one string, each name between newlines
 * ("\nsink:a\nsink:b\n"; the caller frees it), for
 * outboxd_lease_list_has. NULL when the document has no list (written by
 * an outboxd from before the lists, which may hold any sink) or memory
 * ran out. Entries that are not strings are skipped. */
char *outboxd_lease_presence_sinks(const bson_t *doc);

/* Whether a list from outboxd_lease_presence_sinks names lease; a NULL
 * list names every lease. */
bool outboxd_lease_list_has(const char *list, const char *lease);

#endif
