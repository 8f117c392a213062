/*
 * test_sink_abi_daemon.c - the host side of sink ABI 1.1 in the real
 * outboxd, against the harness's MongoDB: a plugin built against the ABI
 * 1.0 header (tests/abi/1.0) still loads and publishes; a SIGHUP whose new
 * options fail the plugin's check changes nothing (the running sink keeps
 * publishing, the error names file and line); one whose options pass check
 * but fail open stops that sink as docs/config.md says, and a later good
 * reload resumes it from its checkpoint with nothing lost. The plugins are
 * the test plugins in outboxd/testplugins (abi10, checker).
 */
#include "daemonlib.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLUGINS "outboxd/testplugins"

static void put_range(outbox_t *ob, int from, int to) {
    for (int i = from; i <= to; i++)
        test_put_order(ob, i, "k");
}

/* Lines of path that start with prefix. */
static int lines_with(const char *path, const char *prefix) {
    char *text = test_read_file(path);
    int n = 0;
    for (char *line = text; line && *line;) {
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            n++;
        char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return n;
}

static void a_plugin_built_against_abi_1_0_loads_and_publishes(void **state) {
    outbox_t *ob = test_outbox("abi10");
    char *dir = test_tmpdir("abi10");
    char sinks[1024], out[600];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(sinks, sizeof sinks,
             "  - name: old\n    plugin: abi10\n    route: \"orders.{type}\"\n    options:\n      path: \"%s\"\n", out);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    test_daemon_start_with(&d, config, dir, PLUGINS);
    put_range(ob, 1, 5);
    assert_int_equal(test_wait_lines(out, 5, 30000), 5);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    /* Every event, through the 1.0 host->option (the default "1.0" prefix)
     * and the 1.0 publish. */
    assert_int_equal(lines_with(out, "1.0 orders.order.created {"), 5);
    char *log = test_read_file(d.log);
    if (test_count_in(log, "sink old: ABI 1.0 plugin open, host ABI 1.2") != 1 || test_count_in(log, "sink old: opened") != 1)
        fail_msg("the 1.0 plugin did not open once:\n%s", log);
    free(log);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* The checker sink c, with extra option lines (indented 6). Its options
 * start at line 13 of test_daemon_config's file: path 13, label 14, then
 * extra from line 15. */
static void write_checker(const char *dir, outbox_t *ob, const char *out, const char *label, const char *extra) {
    char sinks[1024];
    snprintf(sinks, sizeof sinks,
             "  - name: c\n    plugin: checker\n    route: orders\n    options:\n      path: \"%s\"\n"
             "      label: %s\n%s",
             out, label, extra);
    free(test_daemon_config(dir, ob, sinks));
}

static void a_reload_failing_check_keeps_the_running_sink_and_one_failing_open_stops_it(void **state) {
    outbox_t *ob = test_outbox("hupcheck");
    char *dir = test_tmpdir("hupcheck");
    char out[600], config[700], want[1200];
    snprintf(out, sizeof out, "%s/c.txt", dir);
    snprintf(config, sizeof config, "%s/outboxd.yaml", dir);
    write_checker(dir, ob, out, "v1", "");
    test_daemon_t d;
    test_daemon_start_with(&d, config, dir, PLUGINS);
    put_range(ob, 1, 5);
    assert_int_equal(test_wait_lines(out, 5, 30000), 5);

    /* 1. New options that check refuses: nothing changes. */
    write_checker(dir, ob, out, "v2", "      valid: no\n");
    kill(d.pid, SIGHUP);
    snprintf(want, sizeof want,
             "reload: %s:15:7: sink c: valid: no is refused by this plugin's check (plugin checker); "
             "the running configuration stays", config);
    test_daemon_wait_log(&d, want, 1);
    put_range(ob, 6, 10);
    assert_int_equal(test_wait_lines(out, 10, 30000), 10);
    assert_int_equal(lines_with(out, "v1 orders "), 10); /* the running instance published them */

    /* 2. New options that pass check but fail open: the changed sink is
     * stopped first, its new instance's open fails (FATAL), and the sink
     * stays stopped (docs/config.md); outboxd itself goes on. */
    write_checker(dir, ob, out, "v3", "      fail_open: yes\n");
    kill(d.pid, SIGHUP);
    test_daemon_wait_log(&d, "reload: sink c is changed: stopping it", 1);
    test_daemon_wait_log(&d, "sink c: plugin checker (", 1);
    test_daemon_wait_log(&d, "open failed: fail_open: open fails on purpose; this sink stops, the others go on", 1);
    test_daemon_wait_log(&d, "reload: done", 1);
    put_range(ob, 11, 15);

    /* 3. A good reload starts it again from its checkpoint: the events put
     * while it was stopped arrive, none twice. */
    write_checker(dir, ob, out, "v4", "");
    kill(d.pid, SIGHUP);
    test_daemon_wait_log(&d, "reload: done", 2);
    put_range(ob, 16, 20);
    assert_int_equal(test_wait_lines(out, 20, 30000), 20);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    assert_int_equal(lines_with(out, "v1 "), 10);
    assert_int_equal(lines_with(out, "v4 "), 10);
    assert_int_equal(lines_with(out, "v2 ") + lines_with(out, "v3 "), 0);
    char *log = test_read_file(d.log);
    assert_int_equal(test_count_in(log, "sink c: opened"), 2); /* v1, v4: the refused v2 never opened */
    free(log);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* `outboxd --check` runs what start and SIGHUP run: the payload the
 * plugin declares it takes, then the plugin's check. */
static void check_refuses_a_payload_the_plugin_does_not_take_and_what_its_check_refuses(void **state) {
    outbox_t *ob = test_outbox("abicheck");
    char *dir = test_tmpdir("abicheck");
    char sinks[1024], cmd[2048], want[1024];
    snprintf(sinks, sizeof sinks,
             "  - name: c\n    plugin: checker\n    route: orders\n    payload: bson\n    options:\n"
             "      path: \"%s/c.txt\"\n", dir);
    char *config = test_daemon_config(dir, ob, sinks);
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/" PLUGINS "' 2>&1",
             b ? b : ".", config, b ? b : ".");
    char *out = NULL;
    assert_int_equal(test_run_command(cmd, &out), 2);
    snprintf(want, sizeof want, "%s:12:14: sink c: payload bson: plugin checker accepts only json", config);
    if (!strstr(out, want))
        fail_msg("expected \"%s\", got: %s", want, out);
    free(out);
    free(config);
    config = test_daemon_config(dir, ob, "  - name: c\n    plugin: checker\n    route: orders\n    options:\n"
                                         "      path: /dev/null\n      label: v1\n      valid: off\n");
    assert_int_equal(test_run_command(cmd, &out), 2);
    snprintf(want, sizeof want, "%s:15:7: sink c: valid: no is refused by this plugin's check (plugin checker)", config);
    if (!strstr(out, want))
        fail_msg("expected \"%s\", got: %s", want, out);
    free(out);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plugin_built_against_abi_1_0_loads_and_publishes),
        cmocka_unit_test(a_reload_failing_check_keeps_the_running_sink_and_one_failing_open_stops_it),
        cmocka_unit_test(check_refuses_a_payload_the_plugin_does_not_take_and_what_its_check_refuses),
    };
    return TEST_RUN("sink_abi_daemon", tests);
}
