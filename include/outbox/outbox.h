/*
 * outbox.h - liboutbox, the public C API of service-outbox.
 *
 * A transactional outbox on MongoDB: a service declares its event types with
 * schemas, puts events into a capped collection (the outbox, its event log),
 * atomically with its own writes when it passes a session that is inside a
 * transaction, and tails the log in insertion order to publish the events.
 *
 * Conventions, the same throughout this header:
 *  - Handles are opaque. Whoever calls *_new owns the result and frees it with
 *    the matching *_destroy; every *_destroy accepts NULL.
 *  - Functions that can fail return an outbox_code_t and fill a
 *    caller-allocated outbox_error_t (which may be NULL when the caller does
 *    not want the text). OUTBOX_OK is 0. Bad input is reported, never
 *    aborts the process.
 *  - Strings passed in are copied unless the doc comment says "borrowed".
 *    Pointers handed out are borrowed from the handle and valid as long as
 *    the doc comment says, usually until the next call on the same handle.
 *  - Thread safety: an outbox_t is safe to share between threads once
 *    created (put, batch, promote and ensure may run concurrently). An
 *    outbox_tail_t and an outbox_batch_t belong to one thread at a time.
 *
 * Events are MongoDB documents in a versioned envelope (docs/envelope.md):
 * { _id: ObjectId, type: string, key: string|null, data: document,
 *   created: date, headers: {string: string} (optional), v: 1 }.
 */
#ifndef OUTBOX_OUTBOX_H
#define OUTBOX_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <mongoc/mongoc.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define OUTBOX_EXPORT __attribute__((visibility("default")))
#else
#define OUTBOX_EXPORT
#endif

/* --- Version -------------------------------------------------------------
 * OUTBOX_VERSION_NUM is what this header was shipped with (compile time);
 * outbox_version_num() is what the loaded library is (run time). Both are
 * 0xMMmmpp: major, minor, patch. */
#define OUTBOX_VERSION_MAJOR 0
#define OUTBOX_VERSION_MINOR 1
#define OUTBOX_VERSION_PATCH 0
#define OUTBOX_VERSION_NUM 0x000100
#define OUTBOX_VERSION_STR "0.1.0"

OUTBOX_EXPORT int outbox_version_num(void);
OUTBOX_EXPORT const char *outbox_version_str(void);

/* The envelope version this library writes (the "v" field). */
#define OUTBOX_ENVELOPE_VERSION 1

/* --- Errors --------------------------------------------------------------
 * Codes are append-only: a new code goes last, none is ever renumbered or
 * removed (a retired code keeps its number). */
typedef enum outbox_code {
    OUTBOX_OK = 0,
    OUTBOX_ERR_INVALID_ARG = 1,   /* a NULL handle, an empty name, ... */
    OUTBOX_ERR_NOMEM = 2,
    OUTBOX_ERR_CONF = 3,          /* unknown conf key or bad value */
    OUTBOX_ERR_SCHEMA = 4,        /* a schema is not valid JSON or uses
                                     something outside the subset */
    OUTBOX_ERR_UNKNOWN_TYPE = 5,  /* put of a type that was not declared */
    OUTBOX_ERR_VALIDATION = 6,    /* data does not match its type's schema */
    OUTBOX_ERR_SERVER = 7,        /* MongoDB (or driver) error; see
                                     outbox_error_t.server_code */
    OUTBOX_ERR_NOT_CAPPED = 8,    /* the outbox collection exists and is not
                                     capped */
    OUTBOX_ERR_CAPPED_MISMATCH = 9, /* capped with another size or max */
    OUTBOX_ERR_GAP = 10,          /* a tail's checkpoint event is no longer
                                     in the log: events were lost to it */
    OUTBOX_ERR_TIMED_OUT = 11,    /* no event within the timeout; not a
                                     failure */
    OUTBOX_ERR_UNSUPPORTED = 12,  /* the server lacks what the call needs */
    OUTBOX_ERR_IO = 13,           /* a local file could not be read */
    OUTBOX_ERR_NOT_FOUND = 14,    /* an event id or name does not exist */
    OUTBOX_ERR_MALFORMED = 15,    /* a document in the log is not an event
                                     envelope (docs/envelope.md); the tail
                                     has moved past it */
    OUTBOX_ERR_LIMIT = 16,        /* a limit was reached: an event's size or
                                     nesting depth, or a schema pattern's
                                     match limit (the data was neither
                                     accepted nor refused by the schema) */
    OUTBOX_ERR_NOT_ENSURED = 17   /* the outbox's collections are not all
                                     there: run outbox_ensure (outboxctl
                                     init) first */
} outbox_code_t;

/* Size of outbox_error_t.message, including the terminating NUL. */
#define OUTBOX_ERROR_MESSAGE_SIZE 500

/* Caller-allocated, fixed size (like bson_error_t). On failure code is set
 * and message says what went wrong, naming the type, path, collection or
 * file involved. server_code is MongoDB's error code when the server gave
 * one (e.g. 136 CappedPositionLost), else 0. */
typedef struct outbox_error {
    outbox_code_t code;
    int32_t server_code;
    char message[OUTBOX_ERROR_MESSAGE_SIZE];
} outbox_error_t;

/* A static English name of the code ("validation failed", ...). Never NULL. */
OUTBOX_EXPORT const char *outbox_strerror(outbox_code_t code);

/* --- Configuration -------------------------------------------------------
 * A conf collects everything an outbox needs before it exists. */
typedef struct outbox_conf outbox_conf_t;

OUTBOX_EXPORT outbox_conf_t *outbox_conf_new(void);
OUTBOX_EXPORT void outbox_conf_destroy(outbox_conf_t *conf);

/* Sets one property from a string. Keys:
 *   uri           MongoDB connection string (ignored when a pool is set)
 *   database      database name (required)
 *   outbox        the outbox (capped collection) name (required)
 *   capped.size   capped size in bytes; when unset, ensure() creates the log
 *                 with 64 MiB and accepts any size of an existing one
 *   capped.max    maximum number of documents (0 = no limit, the default)
 *   tail.await_ms how long one server round trip of a tail waits for new
 *                 events (awaitData), default 250; bounds how far
 *                 outbox_tail_next() can overshoot its timeout
 *   tail.batch_size events per server round trip of a tail, default 1000;
 *                 0 leaves it to the server (MongoDB then sends up to 16 MiB
 *                 per round trip: a large backlog arrives late and all at
 *                 once, and the client holds all of it)
 * Returns OUTBOX_ERR_CONF naming the key for an unknown key or a bad value;
 * the conf is unchanged then. */
OUTBOX_EXPORT outbox_code_t outbox_conf_set(outbox_conf_t *conf, const char *key,
                                            const char *value, outbox_error_t *error);

/* Uses an existing client pool (borrowed: it must outlive the outbox) instead
 * of a uri. The outbox pops and pushes clients; it never destroys the pool. */
OUTBOX_EXPORT void outbox_conf_set_client_pool(outbox_conf_t *conf,
                                               mongoc_client_pool_t *pool);

/* Declares an event type with its schema, JSON text in the subset of
 * MongoDB $jsonSchema described in docs/schemas.md. The schema is parsed and
 * checked now: a malformed one is OUTBOX_ERR_SCHEMA with the type and the
 * keyword's path. Declaring a type twice replaces its schema. */
OUTBOX_EXPORT outbox_code_t outbox_conf_add_type(outbox_conf_t *conf, const char *type,
                                                 const char *schema_json,
                                                 outbox_error_t *error);

/* Declares every TYPE.json file in dir as type TYPE (see outbox_conf_add_type).
 * Errors name the file. */
OUTBOX_EXPORT outbox_code_t outbox_conf_add_types_dir(outbox_conf_t *conf, const char *dir,
                                                      outbox_error_t *error);

/* --- The outbox ----------------------------------------------------------- */
typedef struct outbox outbox_t;

/* Creates an outbox handle. On success it takes ownership of conf (do not
 * use or destroy it afterwards); on failure conf stays the caller's. No
 * server round trip happens here. */
OUTBOX_EXPORT outbox_t *outbox_new(outbox_conf_t *conf, outbox_error_t *error);
OUTBOX_EXPORT void outbox_destroy(outbox_t *outbox);

/* Borrowed names, valid for the life of the outbox. */
OUTBOX_EXPORT const char *outbox_database(const outbox_t *outbox);
OUTBOX_EXPORT const char *outbox_name(const outbox_t *outbox);

/* Stores the declared types in N.schemas first (below: a declaration that
 * differs from the stored one is refused before anything changes), then
 * creates, idempotently, the capped log N, N.pending and N.checkpoints,
 * and when the server supports validators (see outbox_server_caps)
 * installs on N a $jsonSchema validator of the envelope and every type
 * N.schemas keeps (every service's, not only this conf's), and on
 * N.pending one of the envelope alone (another service's ensure must never
 * make a business transaction fail; the promoter quarantines what N
 * refuses).
 * An existing N that is not capped is OUTBOX_ERR_NOT_CAPPED; one capped with
 * another size or max than the conf set is OUTBOX_ERR_CAPPED_MISMATCH. */
OUTBOX_EXPORT outbox_code_t outbox_ensure(outbox_t *outbox, outbox_error_t *error);

/* --- Schemas kept in the outbox ---------------------------------------------
 * N.schemas holds every declared type: { _id: TYPE, schema: the schema as
 * a document, version: 1, 2, ..., updated: date }, for producers in any
 * language (docs/schemas.md). outbox_ensure stores each type the conf
 * declares (version 1 when new) and refuses, with OUTBOX_ERR_SCHEMA naming
 * the type and the stored version, a declaration that differs from the
 * stored schema: two producers never disagree silently, and a schema
 * changes only through outbox_schema_set. */

/* Declares in the outbox's conf every type of N.schemas that the conf does
 * not declare itself (its declarations stand; ensure compares them).
 * *loaded (may be NULL) receives how many. Call it before the outbox is
 * shared between threads. */
OUTBOX_EXPORT outbox_code_t outbox_load_types(outbox_t *outbox, size_t *loaded, outbox_error_t *error);

/* Stores schema_json as type's schema in N.schemas, checked as
 * outbox_conf_add_type checks it: a new type gets version 1, a changed
 * schema the stored version + 1, the same schema keeps its version.
 * *version (may be NULL) receives the version stored. A concurrent set of
 * the same type is refused (OUTBOX_ERR_SCHEMA: try again). The log's
 * validator follows at the next outbox_ensure (outboxctl schema set runs
 * one). */
OUTBOX_EXPORT outbox_code_t outbox_schema_set(outbox_t *outbox, const char *type,
                                              const char *schema_json, int64_t *version,
                                              outbox_error_t *error);

/* Checks, changing nothing, that outbox_ensure ran: N exists and is capped,
 * N.pending exists and is not. OUTBOX_ERR_NOT_ENSURED names what is missing
 * and says what to run; OUTBOX_ERR_NOT_CAPPED for an N that is an ordinary
 * collection; OUTBOX_ERR_SERVER when the server could not be asked (then
 * nothing is known). outboxd runs it at start, and the promoter before it
 * writes into N (an insert into a missing N would create it uncapped). */
OUTBOX_EXPORT outbox_code_t outbox_verify(outbox_t *outbox, outbox_error_t *error);

/* What the server can do, as found out by asking it (cached after the first
 * call). Fills *caps with OUTBOX_CAP_* bits. */
#define OUTBOX_CAP_TRANSACTIONS 0x1u /* replica set or sharded, wire >= 8 */
#define OUTBOX_CAP_VALIDATORS 0x2u   /* $jsonSchema collection validators */
OUTBOX_EXPORT outbox_code_t outbox_server_caps(outbox_t *outbox, unsigned *caps,
                                               outbox_error_t *error);

/* --- Put ------------------------------------------------------------------
 * A batch collects events, validating each as it is added, and writes them
 * in one insert. With session == NULL, or a session that is not inside a
 * transaction, the events go straight into N. With a session inside a
 * transaction they go into N.pending inside that transaction, so they exist
 * only if it commits; outbox_promote() (run by outboxd) later moves them
 * into N with the same _id. */
typedef struct outbox_batch outbox_batch_t;

OUTBOX_EXPORT outbox_batch_t *outbox_batch_new(outbox_t *outbox);
OUTBOX_EXPORT void outbox_batch_destroy(outbox_batch_t *batch);

/* Validates and appends one event. type must be declared; key may be NULL
 * (stored as null); data is copied; headers may be NULL, else a document of
 * string values. Nothing is written yet. A validation failure is
 * OUTBOX_ERR_VALIDATION with "event N (TYPE): data.path: ..." and leaves the
 * batch as it was. */
OUTBOX_EXPORT outbox_code_t outbox_batch_add(outbox_batch_t *batch, const char *type,
                                             const char *key, const bson_t *data,
                                             const bson_t *headers, outbox_error_t *error);

/* As outbox_batch_add, with data as (relaxed or canonical) Extended JSON. */
OUTBOX_EXPORT outbox_code_t outbox_batch_add_json(outbox_batch_t *batch, const char *type,
                                                  const char *key, const char *data_json,
                                                  const bson_t *headers,
                                                  outbox_error_t *error);

OUTBOX_EXPORT size_t outbox_batch_count(const outbox_batch_t *batch);

/* Writes every event of the batch in one ordered insert (see above for
 * where). session may be NULL. On success the batch stays as it is (ids
 * readable). On failure outside a transaction, the events before the one
 * the error names were written and the others were not; inside a
 * transaction the server has aborted the whole transaction (the caller's
 * writes too): retry all of it when the reply says so (outbox_batch_put_reply).
 * A batch written outside a transaction cannot be written again
 * (OUTBOX_ERR_INVALID_ARG). One written inside a transaction can be written
 * again inside a transaction, with the same ids: a retried transaction (see
 * outbox_with_transaction) puts the same events. The first put inside a
 * transaction on an outbox handle checks once that N.pending exists
 * (outbox_verify): OUTBOX_ERR_NOT_ENSURED otherwise, because MongoDB would
 * refuse it (4.2) or create it without its validator inside the
 * transaction (4.4 and later). */
OUTBOX_EXPORT outbox_code_t outbox_batch_put(outbox_batch_t *batch,
                                             mongoc_client_session_t *session,
                                             outbox_error_t *error);

/* As outbox_batch_put, and reply (uninitialized storage, always initialized
 * on return, as libmongoc's; the caller destroys it; may be NULL) receives
 * the server's reply to the insert. Its errorLabels tell whether the
 * transaction may be retried: mongoc_error_has_label(reply,
 * "TransientTransactionError") (libmongoc adds that label to the reply for
 * a network error or a failover inside a transaction, where
 * error->server_code is 0). The message names the labels too. */
OUTBOX_EXPORT outbox_code_t outbox_batch_put_reply(outbox_batch_t *batch,
                                                   mongoc_client_session_t *session,
                                                   bson_t *reply, outbox_error_t *error);

/* The id of event i (0-based) of the batch, assigned by outbox_batch_add.
 * Borrowed from the batch. NULL when i is out of range. */
OUTBOX_EXPORT const bson_oid_t *outbox_batch_id(const outbox_batch_t *batch, size_t i);

/* One event in one call: a batch of one. id_out (may be NULL) receives the
 * new event's id. */
OUTBOX_EXPORT outbox_code_t outbox_put(outbox_t *outbox, mongoc_client_session_t *session,
                                       const char *type, const char *key,
                                       const bson_t *data, const bson_t *headers,
                                       bson_oid_t *id_out, outbox_error_t *error);
OUTBOX_EXPORT outbox_code_t outbox_put_json(outbox_t *outbox,
                                            mongoc_client_session_t *session,
                                            const char *type, const char *key,
                                            const char *data_json, const bson_t *headers,
                                            bson_oid_t *id_out, outbox_error_t *error);

/* --- Transactions ---------------------------------------------------------
 * Runs fn inside a transaction on session and commits it, with the retry
 * rules of the drivers' convenient transaction API (libmongoc's
 * mongoc_client_session_with_transaction): the whole transaction again
 * while an error carries the label TransientTransactionError (a write
 * conflict, a failover, a network error), the commit again while it carries
 * UnknownTransactionCommitResult, for at most 120 s. fn is libmongoc's
 * callback: it makes the caller's writes (through
 * mongoc_client_session_get_client(session), with the session appended to
 * their options) and puts events with outbox_batch_put_cb; it returns false
 * with *reply set to a new bson_t of the failed operation's reply, whose
 * labels decide a retry (the driver destroys it). fn may run several
 * times: build its batches inside it, or reuse one (same ids each time).
 * opts may be NULL: then writes are acknowledged by a majority, reads see a
 * snapshot, on the primary. OUTBOX_OK when the transaction committed; else
 * OUTBOX_ERR_SERVER, whose message says whether the commit's result is
 * unknown (it may have committed), and reply (may be NULL; uninitialized
 * storage, always initialized) the last reply, with its labels. */
OUTBOX_EXPORT outbox_code_t outbox_with_transaction(outbox_t *outbox,
                                                    mongoc_client_session_t *session,
                                                    mongoc_client_session_with_transaction_cb_t fn,
                                                    void *ctx,
                                                    const mongoc_transaction_opt_t *opts,
                                                    bson_t *reply, outbox_error_t *error);

/* outbox_batch_put in the shape fn wants: true when written; else false,
 * error filled (its message says which event and why) and, when reply is
 * not NULL, *reply a new bson_t holding the server's reply with its
 * errorLabels, for fn to return as its own. */
OUTBOX_EXPORT bool outbox_batch_put_cb(outbox_batch_t *batch, mongoc_client_session_t *session,
                                       bson_t **reply, bson_error_t *error);

/* Moves committed events from N.pending into N, oldest _id first, in one
 * ordered insert per batch: each is inserted into N with its own _id (a
 * duplicate key means an earlier run already moved it), then deleted from
 * N.pending. Reads the primary with read concern majority (never an event
 * of a transaction that may still roll back, never a lagging secondary's
 * stale view) and writes with write concern majority. A pending document
 * that cannot be promoted (not an event envelope, or refused by N: a
 * validator, a size) is moved to N.quarantine with the reason instead of
 * stopping the others; a server or network error stops the run (the next
 * one resumes). Safe to run from several processes at once, and to
 * interrupt at any point: nothing is lost, and an event can appear in N
 * twice only if N did not enforce the _id key (see docs/design.md).
 * Refuses (OUTBOX_ERR_NOT_ENSURED) while N or N.pending is missing.
 * *moved (may be NULL) receives how many events left N.pending, those
 * quarantined included. */
OUTBOX_EXPORT outbox_code_t outbox_promote(outbox_t *outbox, size_t *moved,
                                           outbox_error_t *error);

/* As outbox_promote, with *quarantined (may be NULL) the number of those
 * moved to N.quarantine. When it is not 0 the call still succeeds and
 * *error, when given, names the last quarantined document (its _id) and
 * why: a caller logs it (outboxd does). The quarantine's documents are
 * { _id, doc: the pending document, reason, code: the server's code or 0,
 * quarantined: date } (docs/transactions.md). */
OUTBOX_EXPORT outbox_code_t outbox_promote_ex(outbox_t *outbox, size_t *moved,
                                              size_t *quarantined, outbox_error_t *error);

/* --- The promoter in commit order ------------------------------------------
 * outbox_promote() moves N.pending in _id order, and ObjectIds come from
 * producers' clocks: two transactions on one key that commit within one
 * poll may be published in reverse. A promoter handle follows N.pending's
 * change stream instead where the server has one (every server with
 * transactions: a replica set or a sharded cluster) and moves each
 * transaction's events in the order the transactions committed; elsewhere
 * it polls as outbox_promote() does (no transaction can have written
 * N.pending there). What each order guarantees per key is in
 * docs/transactions.md. A promoter belongs to one thread; it holds one
 * client of the outbox's pool while it follows the stream. */
typedef struct outbox_promoter outbox_promoter_t;

/* NULL only for a NULL outbox, which must outlive the promoter. */
OUTBOX_EXPORT outbox_promoter_t *outbox_promoter_new(outbox_t *outbox);
OUTBOX_EXPORT void outbox_promoter_destroy(outbox_promoter_t *promoter);

/* One round: waits up to wait_ms for committed events (following the
 * stream; a poll returns at once) and moves them, as outbox_promote_ex
 * reports. The first round (and the first after an error, which closes
 * the stream) opens the stream and then moves the backlog in _id order,
 * so nothing committed while no promoter followed is missed. A stream that
 * cannot be opened (no changeStream privilege) does not stop promotion:
 * the round polls, and returns OUTBOX_ERR_UNSUPPORTED with the reason
 * (*moved and *quarantined still count what it moved). While it follows,
 * the promoter holds one client of the outbox's pool and its backlog reads
 * pop another: a caller's pool needs two. */
OUTBOX_EXPORT outbox_code_t outbox_promoter_run(outbox_promoter_t *promoter, int64_t wait_ms,
                                                size_t *moved, size_t *quarantined,
                                                outbox_error_t *error);

/* True when the promoter follows the change stream (known after the first
 * round), false when it polls. */
OUTBOX_EXPORT bool outbox_promoter_follows_commits(const outbox_promoter_t *promoter);

/* --- Events as read back -------------------------------------------------- */
typedef struct outbox_event outbox_event_t;

/* Accessors; every pointer is borrowed from the event. */
OUTBOX_EXPORT const bson_oid_t *outbox_event_id(const outbox_event_t *event);
OUTBOX_EXPORT const char *outbox_event_type(const outbox_event_t *event);
/* NULL when the event's key is null or absent. */
OUTBOX_EXPORT const char *outbox_event_key(const outbox_event_t *event);
/* Milliseconds since the Unix epoch. */
OUTBOX_EXPORT int64_t outbox_event_created_ms(const outbox_event_t *event);
OUTBOX_EXPORT const bson_t *outbox_event_data(const outbox_event_t *event);
/* NULL when the event has no headers. */
OUTBOX_EXPORT const bson_t *outbox_event_headers(const outbox_event_t *event);
OUTBOX_EXPORT int32_t outbox_event_version(const outbox_event_t *event);
/* The whole stored envelope. */
OUTBOX_EXPORT const bson_t *outbox_event_document(const outbox_event_t *event);

/* The event as one line of JSON without a newline:
 * {"id":"<hex>","type":..,"key":..|null,"created":"<ISO-8601 UTC>",
 *  "data":<relaxed Extended JSON>,"headers":{..}}.
 * Caller frees with outbox_free(). len (may be NULL) receives the length. */
OUTBOX_EXPORT char *outbox_event_to_json(const outbox_event_t *event, size_t *len);

/* Frees memory that liboutbox handed to the caller. */
OUTBOX_EXPORT void outbox_free(void *ptr);

/* --- Redaction ------------------------------------------------------------
 * The one function every program of service-outbox prints a connection
 * string through (mongodb://, mongodb+srv://, redis://, nats://, ...): the
 * password of the userinfo becomes "*****". Passwords ought to be
 * percent-encoded but are not always, so a raw '@', '/', ':' or '?' in one
 * still ends up hidden: for an odd URI this may hide more than the
 * password, never less. A comma-separated list of URLs (NATS servers) is
 * redacted URL by URL. Returns a new string (caller frees with
 * outbox_free()), or NULL for NULL or out of memory. */
OUTBOX_EXPORT char *outbox_uri_redacted(const char *uri);

/* Calls fn once for each password that outbox_uri_redacted() hides in uri
 * (one per URL of a list), with the password as written (percent-encoded
 * or not; not NUL-terminated) and its length; fn gets ctx back. For
 * programs that must also keep the password out of other text, such as a
 * client library's error message. */
OUTBOX_EXPORT void outbox_uri_passwords(const char *uri,
                                        void (*fn)(const char *password, size_t len, void *ctx),
                                        void *ctx);

/* --- Tail ------------------------------------------------------------------
 * A tailable + awaitData cursor on N in natural (insertion) order. The tail
 * survives cursor death (empty collection, CappedPositionLost, network
 * errors, server restarts): it reopens after the last event it returned,
 * with backoff, found by that event's _id, never by time. If that event is
 * no longer in N (the capped log wrapped past it), next() returns
 * OUTBOX_ERR_GAP and keeps returning it: the tail never skips silently. */
typedef struct outbox_tail outbox_tail_t;

typedef enum outbox_tail_from {
    OUTBOX_TAIL_FROM_START = 0, /* the oldest event still in the log */
    OUTBOX_TAIL_FROM_NOW = 1,   /* only events put after the tail opened */
    OUTBOX_TAIL_AFTER = 2       /* the events after a given event id */
} outbox_tail_from_t;

/* Creates a tail; after is required for OUTBOX_TAIL_AFTER and ignored
 * otherwise. The server is first contacted by outbox_tail_next(), so a
 * missing checkpoint event shows up there as OUTBOX_ERR_GAP. */
OUTBOX_EXPORT outbox_tail_t *outbox_tail_new(outbox_t *outbox, outbox_tail_from_t from,
                                             const bson_oid_t *after, outbox_error_t *error);
OUTBOX_EXPORT void outbox_tail_destroy(outbox_tail_t *tail);

/* Waits up to timeout_ms (0: do not wait beyond one server round trip) for
 * the next event. Returns OUTBOX_OK with *event set (borrowed, valid until
 * the next call on this tail), OUTBOX_ERR_TIMED_OUT with *event NULL when
 * none came in time, OUTBOX_ERR_GAP when the log lost events this tail had
 * not read yet, or another error; after an error other than GAP the tail
 * may be called again and resumes where it was. */
OUTBOX_EXPORT outbox_code_t outbox_tail_next(outbox_tail_t *tail, int64_t timeout_ms,
                                             const outbox_event_t **event,
                                             outbox_error_t *error);

/* The id of the last event next() returned; false if none yet. */
OUTBOX_EXPORT bool outbox_tail_last_id(const outbox_tail_t *tail, bson_oid_t *id_out);

/* --- Limits (docs/envelope.md) -------------------------------------------
 * An event's envelope, as stored, nests at most OUTBOX_MAX_DEPTH levels of
 * documents and arrays, the envelope itself being level 1 (MongoDB's own
 * limit for documents, which it does not enforce on every path), so data
 * and what it holds have OUTBOX_MAX_DEPTH - 1 levels. Its BSON size is at
 * most OUTBOX_EVENT_MAX_SIZE bytes, well below MongoDB's 16 MiB, so that
 * a reply batch of the tailable cursor never has to carry a near-16 MiB
 * document and the brokers (Kafka and NATS default to 1 MB messages) are
 * not the first to find out. put refuses more with OUTBOX_ERR_LIMIT; the
 * tail reports a deeper document in the log as OUTBOX_ERR_MALFORMED. */
#define OUTBOX_MAX_DEPTH 100
#define OUTBOX_EVENT_MAX_SIZE (8 * 1024 * 1024)

/* --- Malformed documents and owned events ----------------------------------
 * When outbox_tail_next() returns OUTBOX_ERR_MALFORMED, the document it met
 * is not an envelope (the error says which field, and names the document by
 * its _id, or by its position when it has no ObjectId _id). The tail has
 * moved past it: the next call returns what follows. This returns that raw
 * document (borrowed, valid until the next call on the tail), or NULL when
 * the last call did not return OUTBOX_ERR_MALFORMED. */
OUTBOX_EXPORT const bson_t *outbox_tail_malformed_document(const outbox_tail_t *tail);

/* A copy of event that owns its envelope, for keeping an event past the
 * next outbox_tail_next() call (outboxd's in-flight window). Its accessors
 * work as on the original. NULL only for NULL. Free with
 * outbox_event_destroy(). */
OUTBOX_EXPORT outbox_event_t *outbox_event_copy(const outbox_event_t *event);
/* An event read from an envelope document that came some other way than
 * a tail (a change stream, an export, a generator), by the same parser the
 * tail uses (docs/envelope.md): it owns a copy of doc, and its accessors
 * work as on a tail's event. NULL, with OUTBOX_ERR_MALFORMED and a message
 * naming the field in *error, when doc is not a valid envelope; with
 * OUTBOX_ERR_INVALID_ARG for a NULL doc. Free with outbox_event_destroy(). */
OUTBOX_EXPORT outbox_event_t *outbox_event_parse(const bson_t *doc, outbox_error_t *error);
/* Frees an event made by outbox_event_copy() or outbox_event_parse();
 * accepts NULL. Never call it on an event a tail returned (that one is
 * borrowed). */
OUTBOX_EXPORT void outbox_event_destroy(outbox_event_t *event);

#ifdef __cplusplus
}
#endif

#endif /* OUTBOX_OUTBOX_H */
