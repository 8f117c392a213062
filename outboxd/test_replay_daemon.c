/*
 * test_replay_daemon.c - replay from a point in time, end to end (issue 15):
 * outboxd publishes a log to a file sink; `outboxctl checkpoint set SINK
 * --time T` moves the sink back; outboxd, started again, publishes again
 * exactly the events created at or after T, in order, and nothing before.
 * A time older than the log is refused and moves nothing.
 */
#include "config.h"

#include "daemonlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 60000

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Now on the wall clock, as ISO-8601 UTC with milliseconds. */
static void iso_now(char *out, size_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char secs[40];
    strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03ldZ", secs, ts.tv_nsec / 1000000);
}

static void checkpoint_set_time_replays_exactly_what_was_created_since(void **state) {
    (void)state;
    outbox_t *ob = test_outbox("replay_time");
    char *dir = test_tmpdir("replay_time");
    char sinks[700], out[600];
    snprintf(out, sizeof out, "%s/audit.jsonl", dir);
    snprintf(sinks, sizeof sinks, "  - name: audit\n    plugin: file\n    route: \"%s\"\n", out);
    char *config = test_daemon_config(dir, ob, sinks);

    /* Events 1-5, then the time T, then events 6-10: created is the
     * producer's clock in milliseconds, so a pause on each side of T
     * keeps every event clearly before or after it. */
    for (int i = 1; i <= 5; i++)
        test_put_order(ob, i, "k");
    sleep_ms(20);
    char t[64];
    iso_now(t, sizeof t);
    sleep_ms(20);
    for (int i = 6; i <= 10; i++)
        test_put_order(ob, i, "k");

    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    assert_int_equal(test_wait_lines(out, 10, WAIT_MS), 10);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);

    char *said;
    test_outboxctl_use(ob);
    assert_int_equal(test_outboxctl_run(&said, "checkpoint set audit --time 2000-01-01T00:00:00Z"), 1);
    print_message("# a time older than the log: %s", said);
    assert_non_null(strstr(said, "2000-01-01T00:00:00"));
    free(said);
    assert_int_equal(test_outboxctl_run(&said, "checkpoint set audit --time %s", t), 0);
    print_message("# checkpoint set audit --time %s: %s", t, said);
    free(said);
    test_outboxctl_use(NULL);

    test_daemon_start(&d, config, dir);
    assert_int_equal(test_wait_lines(out, 15, WAIT_MS), 15);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    int nrs[32];
    int n = test_jsonl_ordernrs(out, nrs, 32);
    assert_int_equal(n, 15);
    for (int i = 0; i < 10; i++)
        assert_int_equal(nrs[i], i + 1);
    for (int i = 10; i < 15; i++)
        assert_int_equal(nrs[i], i - 4); /* 6, 7, 8, 9, 10 again */
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checkpoint_set_time_replays_exactly_what_was_created_since),
    };
    return TEST_RUN("test_replay_daemon", tests);
}
