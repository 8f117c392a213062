/*
 * tcp_proxy.h - a loopback TCP proxy the tests put between the library and
 * the server, to cut connections as a network failure would, without
 * disturbing the server other tests share.
 */
#ifndef OUTBOX_TEST_TCP_PROXY_H
#define OUTBOX_TEST_TCP_PROXY_H

#include <stdbool.h>

typedef struct test_proxy test_proxy_t;

/* Listens on 127.0.0.1 (a free port) and forwards to host:port. */
test_proxy_t *test_proxy_start(const char *host, int port);
/* The same to the test MongoDB server (testlib.h's test_mongodb_uri, its
 * first host); asserts on failure. */
test_proxy_t *test_proxy_to_mongodb(void);
int test_proxy_port(const test_proxy_t *proxy);
/* down: close every open connection and refuse new ones until up again. */
void test_proxy_set_down(test_proxy_t *proxy, bool down);
/* silent: keep every connection open but forward nothing, either way,
 * until no longer silent (a network that drops packets: no error, no
 * reset; a call waits for its socket timeout). */
void test_proxy_set_silent(test_proxy_t *proxy, bool silent);
void test_proxy_stop(test_proxy_t *proxy);

#endif
