/*
 * httplib.h - the test side of outboxd's HTTP endpoint (docs/metrics.md):
 * a free port, an http section for a test's config, GET by curl (a client
 * we did not write), the value of one series in a scrape, and Prometheus's
 * promtool as the judge of a whole scrape.
 */
#ifndef OUTBOX_TEST_HTTPLIB_H
#define OUTBOX_TEST_HTTPLIB_H

#include "daemonlib.h"

/* A socket listening on a free loopback port (the caller closes it). */
int test_bound_socket(int *port);
/* A loopback port free now (bound and closed at once). */
int test_free_port(void);

/* Appends an http section listening on 127.0.0.1:port to config, with
 * extra_yaml's lines (indented two spaces, e.g. "  stuck_ms: 1000\n")
 * under it; extra_yaml may be NULL. */
void test_config_http(const char *config, int port, const char *extra_yaml);

/* Appends text (whole YAML lines) to config. */
void test_config_append(const char *config, const char *text);

/* GET path on 127.0.0.1:port with curl: the HTTP status, and the body into
 * *body (the caller frees it). */
int test_http_get(int port, const char *path, char **body);

/* The value of the series in scrape whose line starts with series (a name
 * and, when it has labels, all of them: name{a="1",b="2"}); -1 when the
 * scrape has no such line. */
double test_scrape_value(const char *scrape, const char *series);

/* Scrapes /metrics until series has a value of at least min (or timeout_ms
 * passes): the last scrape (the caller frees it), and its value in *value. */
char *test_scrape_until(int port, const char *series, double min, int timeout_ms, double *value);

/* Scrapes until series has exactly value; the test fails, with the last
 * scrape, when timeout_ms passes first. The last scrape (to free). */
char *test_scrape_until_equal(int port, const char *series, double value, int timeout_ms);

/* GET path until it answers status; the test fails, with the last answer,
 * when timeout_ms passes first. The body (to free). */
char *test_http_until(int port, const char *path, int status, int timeout_ms);

/* promtool check metrics on scrape: fails the test with promtool's words
 * and the scrape when it refuses it. dir: where to write the scrape. */
void test_promtool_accepts(const char *dir, const char *scrape);

#endif
