/*
 * natstest.h - what the NATS sink's tests share: nats-server processes of
 * their own (a free port, JetStream with its store in a directory of the
 * test's), and JetStream through libnats (Debian has no `nats` CLI):
 * creating a stream, counting it, reading it back in order.
 *
 * Every server started here is also remembered, and killed at exit should
 * a test end without stopping it (a failed assertion jumps past its
 * cleanup); on Linux a server also dies with the test process, should that
 * crash.
 */
#ifndef OUTBOX_NATSTEST_H
#define OUTBOX_NATSTEST_H

#include <nats/nats.h>

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;        /* 0 when not running */
    int port;
    char store[600];  /* -sd: JetStream's file store, kept across restarts */
    char log[600];    /* the server's log (-l) */
    char url[64];     /* nats://127.0.0.1:PORT */
} natstest_server_t;

/* The nats-server program ($OUTBOX_TEST_NATS_SERVER, PATH, /usr/sbin), or
 * NULL. */
const char *natstest_server_binary(void);

/* Skips the current test, saying why, when there is no nats-server. */
void natstest_require_server(void);

/* A TCP port nothing listens on right now. */
int natstest_free_port(void);

/* Starts `nats-server -js` on 127.0.0.1: on port (0: one the server
 * chooses and reports in a ports file, so that no other test's server can
 * take it first), with its store in dir/store and its log in
 * dir/nats-PID.log, and returns once JetStream answers; srv->port,
 * srv->url and srv->log say where. Starting again with the same srv
 * restarts it on the same port and store. */
void natstest_server_start(natstest_server_t *srv, const char *dir, int port);

/* The same with JetStream on or off, and extra command-line arguments
 * (NULL-terminated, may be NULL): "--user", "u", "--pass", "p". */
void natstest_server_start_with(natstest_server_t *srv, const char *dir, int port, int jetstream,
                                const char *const *extra);

/* Sends sig (SIGTERM, SIGKILL) and waits for the exit. No-op when not
 * running. */
void natstest_server_stop(natstest_server_t *srv, int sig);

/* A connection to url with its JetStream context (fails the test if it
 * cannot). Destroy both with natstest_disconnect. */
natsConnection *natstest_connect(const char *url, jsCtx **js);
void natstest_disconnect(natsConnection *nc, jsCtx *js);

/* Creates a file-storage stream over the comma-separated subjects, with a
 * de-duplication window of dup_window_s seconds (0: the server's default,
 * 2 minutes). */
void natstest_add_stream(jsCtx *js, const char *name, const char *subjects, int dup_window_s);

/* Messages in the stream (its state), or -1 when it cannot be read. */
int64_t natstest_stream_count(jsCtx *js, const char *stream);

/* Waits until the stream has at least n messages or timeout_ms passed;
 * returns the last count seen. */
int64_t natstest_wait_count(jsCtx *js, const char *stream, int64_t n, int timeout_ms);

/* Reads the whole stream in order through an ephemeral pull consumer
 * filtered on subject, calling fn for each message (msg is borrowed).
 * Returns how many were read. */
typedef void (*natstest_msg_fn)(natsMsg *msg, void *arg);
int64_t natstest_read_stream(jsCtx *js, const char *stream, const char *subject,
                             natstest_msg_fn fn, void *arg);

/* data.ordernr of a message whose payload is an order event's JSON (-1
 * when it has none). */
int natstest_ordernr(natsMsg *msg);

/* The value of header name, or "" when absent. Borrowed from msg. */
const char *natstest_header(natsMsg *msg, const char *name);

#endif
