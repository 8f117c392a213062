/*
 * testlib.h - what every test program shares: cmocka, the harness's server
 * addresses, fresh outboxes with unique names, and skipping with a reason.
 *
 * Tests talk to the real servers that tests/services/services.sh starts;
 * their addresses come from the environment or from the harness's
 * services.env. A test that needs a server that is not there, or a feature
 * the server lacks, is skipped and says why: it never passes by pretending.
 */
#ifndef OUTBOX_TESTLIB_H
#define OUTBOX_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox/outbox.h"

/* Skips the current test, printing the reason as a TAP diagnostic that
 * tests/tap-cmocka.sh folds into the SKIP line. */
#define TEST_SKIP(...)                                                                    \
    do {                                                                                 \
        test_print_skip(__VA_ARGS__);                                                    \
        skip();                                                                          \
    } while (0)

void test_print_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The value of a harness variable (OUTBOX_TEST_MONGODB_URI, ...): the
 * environment first, then services.env. NULL when unknown. Borrowed. */
const char *test_service(const char *name);

/* The MongoDB URI, or skips the test when there is none. */
const char *test_mongodb_uri(void);

/* "ferretdb" or "mongod" as the harness says; "unknown" otherwise. */
const char *test_mongodb_kind(void);

/* A conf for a fresh, uniquely named outbox in database "outbox_test",
 * with the order example's types declared. Skips without a server. */
outbox_conf_t *test_conf(const char *label);

/* An outbox from test_conf, ensured. Asserts on failure. */
outbox_t *test_outbox(const char *label);
/* The same capped at cap_bytes and cap_events (capped.size, capped.max;
 * NULL: the default). */
outbox_t *test_outbox_capped(const char *label, const char *cap_bytes, const char *cap_events);

/* Drops the outbox's collections and destroys it. */
void test_outbox_drop(outbox_t *ob);

/* A client of its own on the test server (caller destroys it). */
mongoc_client_t *test_client(void);

/* Counts documents in db.coll. */
int64_t test_count(const char *coll);

/* Writes into N.pending an order.created envelope of ordernr with key "k",
 * as a committed transaction leaves it (the test server may have no
 * transactions): what the promoter moves. */
void test_put_pending(outbox_t *ob, int ordernr);

/* The document of db.coll whose _id is the string id, copied into *out
 * (initialized only when found): false when there is none. */
bool test_find_by_id(const char *coll, const char *id, bson_t *out);

/* Whether db.coll exists. */
bool test_collection_exists(const char *coll);

/* Reads the whole file path into a string (caller frees). NULL if absent. */
char *test_read_file(const char *path);

/* Runs the group with TAP output: the one entry point of every test file. */
int test_run(const char *name, const struct CMUnitTest *tests, size_t n);
#define TEST_RUN(name, tests) test_run(name, tests, sizeof(tests) / sizeof((tests)[0]))

#define ORDER_CREATED_SCHEMA                                                              \
    "{\"bsonType\":\"object\",\"required\":[\"ordernr\",\"total\"],"                     \
    "\"additionalProperties\":false,"                                                    \
    "\"properties\":{\"ordernr\":{\"bsonType\":\"int\",\"minimum\":1},"                  \
    "\"total\":{\"bsonType\":\"number\",\"minimum\":0},"                                 \
    "\"customer\":{\"bsonType\":\"string\",\"minLength\":1,\"maxLength\":64},"           \
    "\"lines\":{\"bsonType\":\"array\",\"minItems\":1,\"items\":{\"bsonType\":\"object\"," \
    "\"required\":[\"sku\",\"qty\"],\"properties\":{\"sku\":{\"bsonType\":\"string\","   \
    "\"pattern\":\"^[A-Z]{3}-[0-9]+$\"},\"qty\":{\"bsonType\":\"int\",\"minimum\":1}}}}}}"
#define ORDER_SHIPPED_SCHEMA                                                              \
    "{\"bsonType\":\"object\",\"required\":[\"ordernr\",\"carrier\"],"                   \
    "\"properties\":{\"ordernr\":{\"bsonType\":\"int\"},"                                \
    "\"carrier\":{\"enum\":[\"dhl\",\"ups\",\"postnl\"]}}}"

#define TEST_DB "outbox_test"

#endif

/* Puts one valid order.created event with this ordernr; returns its id. */
bson_oid_t test_put_order(outbox_t *ob, int ordernr, const char *key);

/* The ordernr of an order event read back. */
int test_ordernr(const outbox_event_t *ev);

/* Inserts a document directly into db.coll (as another producer would). */
void test_insert_raw(const char *coll, const bson_t *doc);

/* Reads up to max events from tail (timeout_ms each) into ordernrs; returns
 * how many were read before a timeout. Fails the test on other errors. */
int test_read_ordernrs(outbox_tail_t *tail, int *ordernrs, int max, int64_t timeout_ms);

/* n, or n/10 (at least 1) when OUTBOX_TEST_QUICK is set: tests/run-all.sh
 * sets it for the valgrind and distcheck runs, where the full volumes
 * (tens of thousands of events) add time and no coverage. */
int test_scaled(int n);

/* The one test Kafka broker is stopped and started by some tests (outages):
 * every test that needs it up takes this lock, a file in /tmp held for the
 * life of the process (close-on-exec: outboxd does not inherit it), so
 * that no two run at once under `make -j2 check`. Idempotent. Shell tests
 * take it with flock(1) on OUTBOX_TEST_KAFKA_LOCK's path. */
#define OUTBOX_TEST_KAFKA_LOCK "/tmp/outbox-test-kafka.lock"
void test_lock_kafka(void);

/* Runs a shell command; returns its exit status and (if out) its stdout
 * (caller frees). */
int test_run_command(const char *cmd, char **out);

/* outboxctl of the build tree (OUTBOX_TEST_BUILDDIR), run as a user would.
 * test_outboxctl_use(ob) sets the --uri, --db and --outbox of the runs that
 * follow (NULL: none, as at the start of a test); test_outboxctl_run runs
 * "outboxctl THOSE ARGS 2>&1" with ARGS from fmt, returns its exit status
 * and, if out, what it printed (caller frees). */
void test_outboxctl_use(const outbox_t *ob);
int test_outboxctl_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
