/*
 * lease.h - outboxd's leases (docs/leases.md): which sinks this outboxd
 * publishes, and whether it runs the promoter, when several run against one
 * outbox. The manager is one thread per outboxd that does all lease traffic
 * with N.leases (claims by insert, renewals, releases, presence,
 * housekeeping) every ha.renew_ms; runners and writers only read atomics it
 * sets (outboxd_lease_valid) and tell it what they saw (outboxd_lease_lost).
 *
 * Time is outboxd_lease_now_ms(): CLOCK_BOOTTIME, this process's own; no
 * two clocks are ever compared. A lease held at term T is valid until
 * deadline = (send time of its last successful renewal) + lease_ttl_ms -
 * renew_ms, and another instance takes it over no earlier than a full
 * lease_ttl_ms after it saw that renewal: so the two never overlap.
 *
 * Log lines (info or warning; no URI, no secret) carry mono_ms=N, the
 * clock above, so that tests order the lines of several outboxd on one
 * host: "lease NAME: acquired term T ...", "lease NAME: renewal of term T
 * failed ...", "lease NAME: lost term T ...", "lease NAME: released term T".
 */
#ifndef OUTBOXD_LEASE_H
#define OUTBOXD_LEASE_H

#include "conffile.h"
#include "heartbeat.h"

#include <mongoc/mongoc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct outboxd_leases outboxd_leases_t; /* the manager: one per outboxd */
typedef struct outboxd_lease outboxd_lease_t;   /* one per lease name */

/* "No term": what outboxd_lease_wait returns when told to stop. */
#define OUTBOXD_LEASE_NONE INT64_MIN
/* The term of every lease with ha.enabled: false (held for ever). */
#define OUTBOXD_LEASE_TERM_HA_OFF (-1)

/* Milliseconds on CLOCK_BOOTTIME (it counts time suspended: a machine woken
 * past its deadline knows it); CLOCK_MONOTONIC where there is none. The one
 * clock of everything in this file. */
int64_t outboxd_lease_now_ms(void);

/* outbox is the outbox name N (N.leases is used); db, outbox and the
 * settings are copied, conf is not kept. The pool is borrowed and must
 * outlive the manager. With !conf->ha_enabled every lease is held at term
 * -1 for ever, valid always, and nothing is read or written. NULL only
 * when out of memory. */
outboxd_leases_t *outboxd_leases_new(mongoc_client_pool_t *pool, const char *db, const char *outbox,
                                     const outboxd_conf_t *conf);
/* One round now (bounded by the server selection wait: with the server
 * unreachable it holds nothing and says so in the log), then the thread.
 * false only when the thread cannot start. Leases got before start are bid
 * for in that first round: a single instance starts holding everything. */
/* The heartbeat the manager's thread keeps for the watchdog of /healthz
 * (heartbeat.h); before outboxd_leases_start. */
void outboxd_leases_watch(outboxd_leases_t *m, outboxd_heartbeat_t *beat);

bool outboxd_leases_start(outboxd_leases_t *m);
/* INSTANCE:PID:RANDOM, this process's run (the claims' run field). */
const char *outboxd_leases_run_id(const outboxd_leases_t *m);
/* The lease of this name ("sink:NAME", "promoter"), created and bid for on
 * first get (at the next round, which a get after start brings forward);
 * the same pointer for the same name until the manager is freed (also
 * after forget: a get of a forgotten name bids for it again). Owned by the
 * manager. */
outboxd_lease_t *outboxd_leases_get(outboxd_leases_t *m, const char *name);
/* A sink removed by SIGHUP: release if held (its runner has stopped), stop bidding. */
void outboxd_leases_forget(outboxd_leases_t *m, outboxd_lease_t *lease);
/* SIGTERM: stop the thread, release what is still held (runners have
 * stopped), remove the presence. Idempotent. */
void outboxd_leases_stop(outboxd_leases_t *m);
/* Stops if needed, then frees the manager and its leases. NULL is fine. */
void outboxd_leases_free(outboxd_leases_t *m);
/* Tests only: paused, the thread makes no round (it reads and writes
 * nothing, renews nothing), as if this process were frozen; its leases
 * still run out at their deadlines. */
void outboxd_leases_pause_for_test(outboxd_leases_t *m, bool paused);

/* The runner's side: blocks until the lease is held (returns its term) or
 * *stop is set (returns OUTBOXD_LEASE_NONE; *stop is polled every 100 ms).
 * With ha off returns -1 at once. */
int64_t outboxd_lease_wait(outboxd_lease_t *l, atomic_bool *stop);
/* Held at this term, not lost, and now < deadline. Cheap: two atomic loads
 * and a clock read; any thread. Always true for term -1 with ha off. */
bool outboxd_lease_valid(outboxd_lease_t *l, int64_t term);
/* The deadline (outboxd_lease_now_ms clock) of this term; 0 when not held
 * at it (lost, released, another term); INT64_MAX with ha off. */
int64_t outboxd_lease_deadline_ms(outboxd_lease_t *l, int64_t term);
/* The manager wants this term handed over: an operator's release request
 * (outboxctl lease release) or the fair share. The runner stops, writes its
 * last fenced checkpoint and calls outboxd_lease_release. */
bool outboxd_lease_handover_wanted(outboxd_lease_t *l, int64_t term);
/* A writer was fenced: the checkpoint holds seen_term (> term, or -1 when
 * unknown). Marks the term lost (valid is false from now on; the manager
 * stops renewing it), logs once with why, and remembers seen_term as the
 * floor of the next claim. Any thread; a term not held is ignored. */
void outboxd_lease_lost(outboxd_lease_t *l, int64_t term, int64_t seen_term, const char *why);
/* Whether term was lost (not released, not another term), and why, into
 * buf: "claim 8 by node-b is newer", "our renewal deadline passed 1200 ms
 * ago: the database did not answer", or the why a writer gave. For the
 * runner's own log line. */
bool outboxd_lease_lost_why(outboxd_lease_t *l, int64_t term, char *buf, size_t size);
/* After the last fenced checkpoint: marks the claim released in N.leases
 * (on the caller's thread, one update), so that it is free for every
 * instance at once; this manager does not bid for it for 2 * renew_ms.
 * A term not held (lost meanwhile) is ignored. No-op with ha off. */
void outboxd_lease_release(outboxd_lease_t *l, int64_t term);
/* Our instance id (ha.instance_id or the host name), for the checkpoint's owner. */
const char *outboxd_lease_owner_id(outboxd_lease_t *l);
/* The lease's name, as given to outboxd_leases_get. */
const char *outboxd_lease_name(outboxd_lease_t *l);
/* When this term was won: the send time of its claim's insert (the
 * outboxd_lease_now_ms clock); 0 when not held at it; tests and logs. */
int64_t outboxd_lease_acquired_ms(outboxd_lease_t *l, int64_t term);

#endif
