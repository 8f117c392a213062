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
 * items, already indented) into dir/outboxd.yaml; returns its path. HA is
 * on with test_daemon_ttl_ms() / test_daemon_renew_ms() (below), in an
 * `ha:` section after the sinks (the sinks' line numbers stay what tests of
 * error messages name); a test may append sections of its own (reader:). */
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
/* Waits for an outboxd that is to exit by itself (a refusal at start);
 * returns its exit status. Fails the test (after a SIGKILL) when it is
 * still there after seconds. */
int test_daemon_wait_exit(test_daemon_t *d, int seconds);
int test_daemon_stop_within(test_daemon_t *d, int sig, int seconds);

/* How often text occurs in s, one occurrence not overlapping the next
 * (0 when s is NULL, as test_read_file returns for a missing log): to
 * assert that outboxd said a line once, or never. */
int test_count_in(const char *s, const char *text);
/* Waits until d's log holds text at least times times (reloads and
 * retries are asynchronous). Fails the test, showing the log, after 60 s:
 * a bound that only a hang exceeds. */
void test_daemon_wait_log(const test_daemon_t *d, const char *text, int times);

/* ordernr of each line of a file sink's JSON-lines file, in order (native
 * lines, or a format's {"headers", "payload"} with a structured CloudEvent);
 * returns the count (0 when the file does not exist). */
int test_jsonl_ordernrs(const char *path, int *out, int max);
/* outboxd --check of config with the file plugin's folder: its exit
 * status, and its stdout and stderr together in *out (caller frees). */
int test_daemon_check(const char *config, char **out);
/* Waits until path has at least n lines (up to timeout_ms); returns the
 * count it saw last. */
int test_wait_lines(const char *path, int n, int timeout_ms);

/* The sink's checkpoint document fields; false when absent. last_id is all
 * zeros while the document has no position yet (a lease claim made it). */
bool test_checkpoint(outbox_t *ob, const char *sink, bson_oid_t *last_id, char *state, size_t state_size);

/* ---- HA (docs/leases.md) ------------------------------------------------
 * Every config daemonlib writes has HA on, in an `ha:` section after the
 * sinks. Two leases:
 *  - test_daemon_config (tests not about HA): TEST_DAEMON_TTL_MS /
 *    TEST_DAEMON_RENEW_MS, 4 s / 1 s: an outboxd alone must never lose its
 *    own lease to a slow server (on the shared 2-core machine a one-document
 *    update took p99 1.06 s, FerretDB rounds 1-3 s under load), yet a kill -9
 *    and restart waits only ~5 s for outboxd's own dead lease (an instance
 *    that starts waits a full TTL), not the default 10 s. Times 3 in the
 *    valgrind run (OUTBOX_TEST_VALGRIND: memcheck keeps both cores busy and
 *    the server's answers slow down with it), times 3 in a sanitizer build.
 *  - test_daemon_config_ha / _uri (tests about HA: test_ha, test_ha_daemon):
 *    TEST_HA_TTL_MS / TEST_HA_RENEW_MS, 2 s / 500 ms (1 s / 300 ms lost
 *    renewals in CI's sanitizer run, where a FerretDB round took over the
 *    700 ms it left), so that their kill -9s
 *    and takeovers take two or three seconds; times 3 in the valgrind run, times
 *    2 in a sanitizer build (an ASan outboxd under load lost 1 s leases by
 *    the dozen).
 * OUTBOX_TEST_HA_SCALE=N replaces either factor. outboxd itself never runs
 * under valgrind here (tap-cmocka.sh runs the test program under memcheck
 * without --trace-children; the outboxd it execs is native): the factors
 * are for the load, not for a slower outboxd. */
#define TEST_DAEMON_TTL_MS 4000
#define TEST_DAEMON_RENEW_MS 1000
#define TEST_HA_TTL_MS 2000
#define TEST_HA_RENEW_MS 500
/* The values in force (factors applied). */
int test_daemon_ttl_ms(void);
int test_daemon_renew_ms(void);
int test_ha_ttl_ms(void);
int test_ha_renew_ms(void);

/* A config for a test about HA: the `ha:` mapping's lines (indented two
 * spaces, e.g. "  instance_id: a\n") and lease_ttl_ms / renew_ms of
 * test_ha_ttl_ms() / test_ha_renew_ms() unless ha_yaml sets them; NULL:
 * those alone. */
char *test_daemon_config_ha(const char *dir, outbox_t *ob, const char *sinks_yaml, const char *ha_yaml);
/* The same with another MongoDB URI (a TCP proxy's). */
char *test_daemon_config_uri(const char *dir, outbox_t *ob, const char *uri, const char *sinks_yaml,
                             const char *ha_yaml);
/* The same written to dir/FILE instead of dir/outboxd.yaml: one config
 * per instance when several run from one folder. */
char *test_daemon_config_file(const char *dir, const char *file, outbox_t *ob, const char *sinks_yaml,
                              const char *ha_yaml);

/* test_daemon_spawn, then waits until outboxd has started its sinks (as
 * test_daemon_start does): for several outboxd with logs in one folder. */
void test_daemon_start_log(test_daemon_t *d, const char *config, const char *plugin_dir, const char *log);

/* dir/plugins with a copy of each named plugin of the build tree (those
 * not built, e.g. without their library, left out): one plugin folder for
 * an outboxd that runs sinks of several kinds. Returns the folder's path
 * (the caller frees it). */
char *test_plugins_dir(const char *dir, const char *const *names, size_t n);

/* SIGSTOP / SIGCONT: a holder that stops running without dying (a VM
 * frozen by its hypervisor). test_daemon_stop resumes a paused outboxd so
 * that its signal arrives. */
void test_daemon_pause(test_daemon_t *d);
void test_daemon_resume(test_daemon_t *d);

/* The newest claim of lease ("sink:NAME", "promoter") in the outbox's
 * N.leases (docs/leases.md 1.2: the highest _id.term among the documents
 * with that _id.lease, requests left out): its owner (instance id), term
 * and released flag. False when the lease has no claim. Any pointer may be
 * NULL. */
bool test_lease_claim(outbox_t *ob, const char *lease, char *owner, size_t size, int64_t *term, bool *released);

/* The term in the sink's checkpoint document; -1 when there is no
 * document or it has no term (HA off, or never claimed). */
int64_t test_checkpoint_term(outbox_t *ob, const char *sink);

#endif
