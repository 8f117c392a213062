/*
 * test_file_outboxd.c - `outboxd --check` with the file sink: what the
 * sink's check and its declared payloads refuse is refused before anything
 * runs, naming the config file and the line to fix. No server is needed
 * (the MongoDB URI points at a closed port and is never dialled).
 */
#include "daemonlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes a config whose one sink is `sink_yaml` (from its "- name:" line
 * on, indented by two) into dir, runs outboxd --check on it with the built
 * file sink, and returns its exit status, with stdout and stderr in *out. */
static int check(const char *dir, const char *sink_yaml, char **out) {
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/outboxd.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "mongodb:\n"                       /* 1 */
            "  uri: mongodb://127.0.0.1:1/\n"  /* 2 */
            "  database: shop\n"               /* 3 */
            "outbox: events\n"                 /* 4 */
            "sinks:\n"                         /* 5 */
            "%s",                              /* 6: "  - name: ..." */
            sink_yaml);
    fclose(f);
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/sinks/file' 2>&1",
             b ? b : ".", path, b ? b : ".");
    return test_run_command(cmd, out);
}

static void expect(const char *dir, const char *sink_yaml, int status, const char *needle) {
    char *out = NULL;
    int got = check(dir, sink_yaml, &out);
    if (got != status || strstr(out, needle) == NULL)
        fail_msg("exit %d (want %d), output lacks \"%s\":\n%s", got, status, needle, out);
    free(out);
}

/* A bad file_mode (which only the plugin can judge) names the file, the
 * option's line and the value, and nothing is created. */
static void check_refuses_a_bad_file_mode_naming_file_and_line(void **state) {
    char *dir = test_tmpdir("file-check");
    char yaml[1024], want[1024], made[600];
    snprintf(yaml, sizeof yaml,
             "  - name: audit\n"                     /* 6 */
             "    plugin: file\n"                    /* 7 */
             "    route: \"%s/out/{type}.jsonl\"\n"  /* 8 */
             "    options:\n"                        /* 9 */
             "      fsync: always\n"                 /* 10 */
             "      file_mode: \"0999\"\n",          /* 11 */
             dir);
    snprintf(want, sizeof want,
             "%s/outboxd.yaml:11:7: sink audit: file_mode: \"0999\" is not an octal mode such as 0644 "
             "(plugin file)",
             dir);
    expect(dir, yaml, 2, want);
    snprintf(made, sizeof made, "%s/out", dir);
    assert_int_equal(access(made, F_OK), -1);

    /* Fixed, the same config passes. */
    snprintf(yaml, sizeof yaml,
             "  - name: audit\n    plugin: file\n    route: \"%s/out/{type}.jsonl\"\n"
             "    options:\n      fsync: always\n      file_mode: \"0640\"\n",
             dir);
    expect(dir, yaml, 0, "sink audit: plugin file");
    test_rmtree(dir);
    free(dir);
}

/* A route that can never name a file, and payload: bson, which the file
 * sink does not take: both refused at load, not event by event. */
static void check_refuses_a_route_without_a_file_and_payload_bson(void **state) {
    char *dir = test_tmpdir("file-check");
    char yaml[1024], want[1024];
    snprintf(yaml, sizeof yaml, "  - name: audit\n    plugin: file\n    route: \"%s/{type}/\"\n", dir);
    snprintf(want, sizeof want, "outboxd.yaml:8:12: sink audit: route: \"%s/{type}/\" names no file", dir);
    expect(dir, yaml, 2, want);

    snprintf(yaml, sizeof yaml,
             "  - name: audit\n    plugin: file\n    route: \"%s/{type}.jsonl\"\n    payload: bson\n", dir);
    expect(dir, yaml, 2, "outboxd.yaml:9:14: sink audit: payload bson: plugin file accepts only json");
    test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_refuses_a_bad_file_mode_naming_file_and_line),
        cmocka_unit_test(check_refuses_a_route_without_a_file_and_payload_bson),
    };
    return TEST_RUN("file sink under outboxd --check", tests);
}
