/*
 * test_outboxd_start_stop.c - outboxd starts and stops cleanly whatever the
 * state of MongoDB: a mongodb+srv:// name that DNS cannot resolve is
 * retried (it used to crash outboxd, and under systemd a DNS outage at boot
 * became a crash loop), SIGINT and SIGTERM end it with status 0 while the
 * server is unreachable (it took ~26 s, the driver's server selection
 * timeout), and `--check` refuses what the daemon would refuse, at its
 * FILE:LINE:COLUMN. No timing threshold but a bound that only a hang
 * exceeds.
 */
#include "daemonlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

/* dir/NAME.yaml with the given mongodb section and a file sink. */
static char *write_config(const char *dir, const char *name, const char *mongodb, const char *sink_options) {
    char *path = malloc(700);
    snprintf(path, 700, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "mongodb:\n%soutbox: events\nsinks:\n  - name: archive\n    plugin: file\n"
               "    route: \"%s/out/{type}.jsonl\"\n%s",
            mongodb, dir, sink_options ? sink_options : "");
    fclose(f);
    return path;
}

static bool log_has(const char *log, const char *what) {
    char *text = test_read_file(log);
    bool has = text && strstr(text, what);
    free(text);
    return has;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void srv_uri_that_dns_cannot_resolve_is_retried_not_a_crash(void **state) {
    char *dir = test_tmpdir("srv"), log[700];
    char *config = write_config(dir, "srv", "  uri: \"mongodb+srv://alice:pw@db.nosuch.invalid/\"\n  database: shop\n",
                                NULL);
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_t d;
    test_daemon_spawn(&d, config, "sinks/file", log);
    int waited = 0;
    while (!log_has(log, "the MongoDB client cannot start") && waited < 20000) {
        int status;
        if (waitpid(d.pid, &status, WNOHANG) == d.pid)
            fail_msg("outboxd ended (status %d, signal %d) instead of retrying: %s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0, log);
        nap_ms(100);
        waited += 100;
    }
    char want[800];
    snprintf(want, sizeof want, "%s: mongodb.uri: the MongoDB client cannot start: ", config);
    assert_true(log_has(log, want));
    assert_true(log_has(log, "(retrying in 1 s)"));
    /* Still there, and a SIGTERM during the wait is a clean stop. */
    assert_int_equal(kill(d.pid, 0), 0);
    assert_int_equal(test_daemon_stop_within(&d, SIGTERM, 30), 0);
    assert_true(log_has(log, "SIGTERM: stopped before the MongoDB client could start"));
    free(config);
    test_rmtree(dir);
    free(dir);
}

/* Port 1 on loopback: nothing listens, every connection is refused. */
static void stop_is_clean_while_mongodb_is_unreachable(void **state) {
    static const int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < 2; i++) {
        char *dir = test_tmpdir("unreachable");
        char *config = write_config(dir, "down", "  uri: \"mongodb://127.0.0.1:1/\"\n  database: shop\n", NULL);
        test_daemon_t d;
        test_daemon_start(&d, config, dir);
        nap_ms(500); /* the sink and the promoter are now waiting for a server */
        /* 20 s: the old ~26 s wait fails it; the fix takes ~2 s. */
        assert_int_equal(test_daemon_stop_within(&d, sigs[i], 20), 0);
        assert_true(log_has(d.log, "stopped"));
        free(config);
        test_rmtree(dir);
        free(dir);
    }
}

/* Run `outboxd --check` on config; returns its exit status, output in out. */
static int check(const char *config, char *out, size_t out_size) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/sinks/file' 2>&1", builddir(),
             config, builddir());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --check said ok to these, and the daemon then failed ("database is not
 * set", no place), or a plugin refused the value at open. */
static void check_refuses_what_the_daemon_would_refuse(void **state) {
    static const struct {
        const char *mongodb, *options, *where, *what;
    } cases[] = {
        {"  uri: \"mongodb://u:pw@[::1\"\n  database: shop\n", NULL, ":2:8: ", "mongodb.uri: not a valid MongoDB connection string"},
        {"  uri: \"mongodb://h/\"\n  database: a.b\n", NULL, ":3:13: ", "is not a valid database name"},
        {"  uri: \"mongodb://h/\"\n  database: shop\n", NULL, ":4:9: ", "is not a valid collection name"},
        {"  uri: \"mongodb://h/\"\n  database: shop\n", "    options:\n      max_open_files: \"+5\"\n", ":10:7: ",
         "option max_open_files: expected an integer"},
    };
    char *dir = test_tmpdir("check");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *config = write_config(dir, "bad", cases[i].mongodb, cases[i].options);
        if (i == 2) { /* the outbox line: a name MongoDB keeps for itself */
            char *text = test_read_file(config);
            char *at = strstr(text, "outbox: events");
            FILE *f = fopen(config, "w");
            fprintf(f, "%.*soutbox: system.foo%s", (int)(at - text), text, at + strlen("outbox: events"));
            fclose(f);
            free(text);
        }
        char out[4096], want[1024];
        assert_int_equal(check(config, out, sizeof out), 2);
        snprintf(want, sizeof want, "%s%s", config, cases[i].where);
        if (!strstr(out, want) || !strstr(out, cases[i].what))
            fail_msg("case %zu: expected \"%s...%s\", got: %s", i, want, cases[i].what, out);
        assert_null(strstr(out, "pw@"));
        free(config);
    }
    test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(srv_uri_that_dns_cannot_resolve_is_retried_not_a_crash),
        cmocka_unit_test(stop_is_clean_while_mongodb_is_unreachable),
        cmocka_unit_test(check_refuses_what_the_daemon_would_refuse),
    };
    return TEST_RUN("outboxd_start_stop", tests);
}
