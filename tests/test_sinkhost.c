/*
 * test_sinkhost.c - the shared sink test host (tests/sinkhost.h) on the
 * file sink, the reference plugin: a plugin loads through outboxd's loader
 * (its refusals reach the test), options are refused as outboxd refuses
 * them (naming their line), each published event's ack is recorded once,
 * and nothing is published to an instance that is not open. The host's
 * detection of broken plugins is shown on conformance/testplugins (the
 * double_ack plugin here; all of them in conformance/test_conformance.sh).
 * No server needed.
 */
#include "testlib.h"

#include "sinkhost.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char route[128];
    sinkhost_t *h;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_sinkhost.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->route, sizeof fx->route, "%s/{type}.jsonl", fx->dir);
    fx->h = sinkhost_new("file");
    if (!fx->h)
        return -1;
    sinkhost_route(fx->h, fx->route);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    sinkhost_free(fx->h);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Event seq, id 00..0seq, type "t", payload {"n":seq}, for host h (its
 * route expanded). The strings live in per-seq static storage. */
static outbox_sink_event_t event(sinkhost_t *h, uint64_t seq) {
    static char ids[16][25], payloads[16][32], destinations[16][256];
    assert_true(seq < 16);
    assert_true(sinkhost_destination(h, "t", "k", destinations[seq], sizeof destinations[seq]) > 0);
    snprintf(ids[seq], sizeof ids[seq], "%024llx", (unsigned long long)seq);
    snprintf(payloads[seq], sizeof payloads[seq], "{\"n\":%llu}", (unsigned long long)seq);
    outbox_sink_event_t ev = {.seq = seq, .id = ids[seq], .type = "t", .key = "k", .destination = destinations[seq],
                              .payload = (const unsigned char *)payloads[seq],
                              .payload_len = strlen(payloads[seq]), .created_ms = 1795718725000};
    return ev;
}

static void assert_no_violations(sinkhost_t *h) {
    char first[512];
    for (int r = 0; r < SINKHOST_N_RULES; r++)
        if (sinkhost_violations(h, (sinkhost_rule_t)r, first, sizeof first) != 0)
            fail_msg("rule %d broken: %s", r, first);
}

static void loads_the_built_plugin_through_outboxds_loader(void **state) {
    fixture_t *fx = *state;
    assert_string_equal(sinkhost_plugin(fx->h)->name, "file");
    const char *path = sinkhost_plugin_path(fx->h);
    assert_non_null(path);
    assert_non_null(strstr(path, "/sinks/file/.libs/file.so"));
}

static void the_loaders_refusal_reaches_the_test(void **state) {
    (void)state;
    char errbuf[1024];
    assert_null(sinkhost_load("/nonexistent/dir/nosuch.so", errbuf, sizeof errbuf));
    /* outboxd's own words: the plugin and the reason. */
    assert_non_null(strstr(errbuf, "nosuch"));
    assert_non_null(strstr(errbuf, "cannot load"));
}

static void an_option_the_table_refuses_is_named_by_its_line(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    sinkhost_set(fx->h, "fsync", "never");
    sinkhost_set(fx->h, "no_such_option", "1");
    assert_int_equal(sinkhost_check(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "sinkhost:2:1: sink test: option no_such_option: unknown option"));
    assert_int_equal(sinkhost_open(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "sinkhost:2:1: sink test: option no_such_option: unknown option"));
    assert_null(sinkhost_state(fx->h));
}

static void each_published_event_gets_exactly_one_recorded_ack(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    outbox_sink_event_t ev[3] = {event(fx->h, 1), event(fx->h, 2), event(fx->h, 3)};
    size_t taken = 0;
    sinkhost_set(fx->h, "fsync", "never");
    assert_int_equal(sinkhost_check(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(sinkhost_open(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(sinkhost_publish(fx->h, ev, 3, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(taken, 3);
    assert_true(sinkhost_wait_acks(fx->h, 3, 10000));
    assert_int_equal(sinkhost_flush(fx->h, 1000, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        sinkhost_ack_t ack;
        assert_true(sinkhost_ack_of(fx->h, seq, &ack));
        assert_int_equal(ack.status, OUTBOX_SINK_OK);
        assert_int_equal(sinkhost_acks_for(fx->h, seq), 1);
    }
    assert_false(sinkhost_ack_of(fx->h, 4, NULL));
    assert_int_equal(sinkhost_n_acks(fx->h), 3);
    assert_int_equal(sinkhost_outstanding(fx->h), 0);
    sinkhost_close(fx->h);
    assert_no_violations(fx->h);
    char path[256];
    snprintf(path, sizeof path, "%s/t.jsonl", fx->dir);
    char *lines = test_read_file(path);
    assert_non_null(lines);
    assert_non_null(strstr(lines, "\"data\":{\"n\":3}"));
    free(lines);
}

static void nothing_is_published_to_an_instance_that_is_not_open(void **state) {
    fixture_t *fx = *state;
    char errbuf[1024];
    outbox_sink_event_t ev = event(fx->h, 1);
    size_t taken = 7;
    assert_int_equal(sinkhost_publish(fx->h, &ev, 1, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_int_equal(taken, 0);
    /* After a failed open, too. */
    sinkhost_set(fx->h, "max_open_files", "0");
    assert_int_equal(sinkhost_open(fx->h, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_int_equal(sinkhost_publish(fx->h, &ev, 1, &taken, errbuf, sizeof errbuf), OUTBOX_SINK_FATAL);
    assert_non_null(strstr(errbuf, "no open instance"));
    assert_int_equal(sinkhost_n_acks(fx->h), 0);
}

/* The host sees a double ack (conformance/testplugins/double_ack acks
 * every event twice, from a thread of its own). */
static void a_double_ack_is_counted_and_described(void **state) {
    (void)state;
    char errbuf[1024], path[4096], first[512];
    const char *builddir = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(path, sizeof path, "%s/conformance/testplugins/.libs/double_ack.so", builddir ? builddir : ".");
    sinkhost_t *h = sinkhost_load(path, errbuf, sizeof errbuf);
    if (!h)
        fail_msg("%s", errbuf);
    sinkhost_route(h, "d/{type}");
    outbox_sink_event_t ev[2] = {event(h, 1), event(h, 2)};
    assert_int_equal(sinkhost_open(h, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_int_equal(sinkhost_publish(h, ev, 2, NULL, errbuf, sizeof errbuf), OUTBOX_SINK_OK);
    assert_true(sinkhost_wait_acks(h, 4, 10000));
    assert_int_equal(sinkhost_acks_for(h, 1), 2);
    assert_int_equal(sinkhost_violations(h, SINKHOST_DOUBLE_ACK, first, sizeof first), 2);
    assert_string_equal(first, "event 1 acked twice: OK, then OK");
    sinkhost_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(loads_the_built_plugin_through_outboxds_loader, setup, teardown),
        cmocka_unit_test(the_loaders_refusal_reaches_the_test),
        cmocka_unit_test_setup_teardown(an_option_the_table_refuses_is_named_by_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(each_published_event_gets_exactly_one_recorded_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_is_published_to_an_instance_that_is_not_open, setup, teardown),
        cmocka_unit_test(a_double_ack_is_counted_and_described),
    };
    return TEST_RUN("sinkhost", tests);
}
