/*
 * httplib.c - see httplib.h.
 */
#include "httplib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int test_bound_socket(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int test_free_port(void) {
    int port;
    close(test_bound_socket(&port));
    return port;
}

void test_config_append(const char *config, const char *text) {
    FILE *f = fopen(config, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

void test_config_http(const char *config, int port, const char *extra_yaml) {
    char section[200];
    snprintf(section, sizeof section, "http:\n  listen: \"127.0.0.1:%d\"\n", port);
    test_config_append(config, section);
    if (extra_yaml)
        test_config_append(config, extra_yaml);
}

int test_http_get(int port, const char *path, char **body) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "curl -s -m 10 -w '\\n%%{http_code}' http://127.0.0.1:%d%s", port, path);
    char *out;
    assert_int_equal(test_run_command(cmd, &out), 0);
    char *last = strrchr(out, '\n');
    assert_non_null(last);
    int status = atoi(last + 1);
    *last = '\0';
    *body = out;
    return status;
}

double test_scrape_value(const char *scrape, const char *series) {
    size_t n = strlen(series);
    for (const char *p = scrape; (p = strstr(p, series)); p++) {
        if (p != scrape && p[-1] != '\n')
            continue;
        /* The whole series: "x_total" must not match "x_total_more". */
        if (p[n] != ' ')
            continue;
        return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void sleep_100ms(void) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

char *test_scrape_until(int port, const char *series, double min, int timeout_ms, double *value) {
    char *body = NULL;
    double v = -1;
    for (int waited = 0;; waited += 100) {
        free(body);
        assert_int_equal(test_http_get(port, "/metrics", &body), 200);
        v = test_scrape_value(body, series);
        if (v >= min || waited >= timeout_ms)
            break;
        sleep_100ms();
    }
    if (value)
        *value = v;
    return body;
}

char *test_scrape_until_equal(int port, const char *series, double value, int timeout_ms) {
    char *body = NULL;
    double v = -2;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        free(body);
        assert_int_equal(test_http_get(port, "/metrics", &body), 200);
        v = test_scrape_value(body, series);
        if (v == value)
            return body;
        sleep_100ms();
    }
    fail_msg("%s stayed %g for %d ms, expected %g; last scrape:\n%s", series, v, timeout_ms, value, body);
    return NULL; /* not reached */
}

char *test_http_until(int port, const char *path, int status, int timeout_ms) {
    char *body = NULL;
    int got = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        free(body);
        got = test_http_get(port, path, &body);
        if (got == status)
            return body;
        sleep_100ms();
    }
    fail_msg("%s answered %d for %d ms, expected %d: %s", path, got, timeout_ms, status, body);
    return NULL; /* not reached */
}

void test_promtool_accepts(const char *dir, const char *scrape) {
    char path[700], cmd[800], *verdict;
    snprintf(path, sizeof path, "%s/scrape.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(scrape, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", path);
    int rc = test_run_command(cmd, &verdict);
    if (rc != 0)
        fail_msg("promtool check metrics refused the scrape (exit %d):\n%s\n--- scrape:\n%s", rc, verdict, scrape);
    free(verdict);
}
