/*
 * daemonlib.h - running the real outboxd from tests: a config file, the
 * process, and reading what the file sink wrote.
 */
#ifndef OUTBOX_TEST_DAEMONLIB_H
#define OUTBOX_TEST_DAEMONLIB_H

#include "testlib.h"

#include <sys/types.h>

typedef struct {
    pid_t pid;
    char log[512];
} test_daemon_t;

/* A fresh temporary directory (caller frees the string; removed by
 * test_rmtree). */
char *test_tmpdir(const char *label);
void test_rmtree(const char *dir);

/* Writes a config for ob with the given sinks YAML (the `sinks:` list
 * items, already indented) into dir/outboxd.yaml; returns its path. */
char *test_daemon_config(const char *dir, outbox_t *ob, const char *sinks_yaml);

/* Starts outboxd on config with the build tree's file sink; its log goes
 * to dir/outboxd.log. Returns once outboxd has started its sinks. */
void test_daemon_start(test_daemon_t *d, const char *config, const char *dir);
/* The same with plugins from sink_dir, relative to the build tree
 * ("sinks/redis"). */
void test_daemon_start_with(test_daemon_t *d, const char *config, const char *dir, const char *sink_dir);
/* Starts outboxd on config with plugins from plugin_dir (absolute, or
 * relative to the build tree), its output into log, and returns at once:
 * for tests where outboxd may never get as far as starting its sinks. */
void test_daemon_spawn(test_daemon_t *d, const char *config, const char *plugin_dir, const char *log);
/* Sends sig and waits for the exit; returns the exit status (128+n when
 * killed by signal n). Fails the test (after a SIGKILL) when outboxd is
 * still there after 60 s, or after seconds: a bound that only a hang
 * exceeds. */
int test_daemon_stop(test_daemon_t *d, int sig);
int test_daemon_stop_within(test_daemon_t *d, int sig, int seconds);

/* How often text occurs in s, one occurrence not overlapping the next
 * (0 when s is NULL, as test_read_file returns for a missing log): to
 * assert that outboxd said a line once, or never. */
int test_count_in(const char *s, const char *text);
/* Waits until d's log holds text at least times times (reloads and
 * retries are asynchronous). Fails the test, showing the log, after 60 s:
 * a bound that only a hang exceeds. */
void test_daemon_wait_log(const test_daemon_t *d, const char *text, int times);

/* ordernr of each line of a file sink's JSON-lines file, in order;
 * returns the count (0 when the file does not exist). */
int test_jsonl_ordernrs(const char *path, int *out, int max);
/* Waits until path has at least n lines (up to timeout_ms); returns the
 * count it saw last. */
int test_wait_lines(const char *path, int n, int timeout_ms);

/* The sink's checkpoint document fields; false when absent. */
bool test_checkpoint(outbox_t *ob, const char *sink, bson_oid_t *last_id, char *state, size_t state_size);

#endif
