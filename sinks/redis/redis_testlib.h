/*
 * redis_testlib.h - redis-server processes of a test's own, for the Redis
 * sink's tests: each on a free port of 127.0.0.1 (and a unix socket) in a
 * temporary directory, with the append-only file fsynced at every write
 * (appendfsync always), so that a server killed with SIGKILL and started
 * again keeps every write it acknowledged. Also reading streams back with
 * hiredis.
 *
 * The harness's shared redis (tests/services) is never used: these tests
 * kill and restart their servers.
 */
#ifndef OUTBOX_REDIS_TESTLIB_H
#define OUTBOX_REDIS_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;              /* 0 while not running */
    int port;
    char dir[128];          /* data, redis.conf, redis.log */
    char sock[160];         /* its unix socket */
    char url[64];           /* redis://127.0.0.1:<port>/0 */
    char password[64];      /* requirepass, for the test's own connections; "" for none */
    char extra_conf[1024];  /* more redis.conf lines */
} test_redis_t;

/* Skips the current test when redis-server is not installed (fails it
 * when OUTBOX_TEST_REQUIRE_SERVERS is set, as in tests/run-all.sh). */
void test_redis_require(void);

/* A TCP port of 127.0.0.1 that nothing listens on right now. */
int test_redis_free_port(void);

/* Starts a fresh server: on r->port when set, else on a free port; with
 * extra redis.conf lines (may be NULL); password is the requirepass the
 * extra lines set, for the test's own connections (NULL: none). Returns
 * once it answers PING. */
void test_redis_start(test_redis_t *r, const char *extra_conf, const char *password);

/* Kills the server with sig and reaps it; its directory stays. */
void test_redis_kill(test_redis_t *r, int sig);

/* Starts it again on the same port and directory: it reloads its data. */
void test_redis_restart(test_redis_t *r);

/* Kills the server (when running) and removes its directory. */
void test_redis_stop(test_redis_t *r);

/* Kills every server this process started that still runs, and removes
 * their directories: for teardowns, after a test failed halfway. */
void test_redis_stop_all(void);

/* A connection of the test's own, authenticated. Asserts. */
redisContext *test_redis_connect(const test_redis_t *r);

/* The same, or NULL when the server is not there (it may be restarting). */
redisContext *test_redis_try_connect(const test_redis_t *r);

/* redisCommand that fails the test on a connection error (an error reply
 * is returned). The caller frees the reply. */
redisReply *test_redis_cmd(redisContext *c, const char *fmt, ...);

/* The integer reply of a command (XLEN, EXISTS, TTL, ...). */
long long test_redis_int(redisContext *c, const char *fmt, ...);

/* Calls fn for each entry of the stream, in order, paging with XRANGE.
 * entry is [id, [field, value, ...]]. Returns the number of entries. */
size_t test_redis_each_entry(redisContext *c, const char *stream,
                             void (*fn)(const redisReply *entry, void *arg), void *arg);

/* The value of field name in an entry, or NULL; *len gets its length. */
const char *test_redis_field(const redisReply *entry, const char *name, size_t *len);

/* The "id" field (the outbox event id) of every entry of the stream, in
 * order, as NUL-terminated 24-hex strings; *n gets the count. The caller
 * frees the array. */
char (*test_redis_event_ids(redisContext *c, const char *stream, size_t *n))[25];

/* Waits until the stream has at least n entries (up to timeout_ms);
 * returns the length it saw last. */
long long test_redis_wait_len(const test_redis_t *r, const char *stream, long long n,
                              int timeout_ms);

#endif
