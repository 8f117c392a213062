/*
 * daemonlib.c - see daemonlib.h.
 */
#include "daemonlib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Daemons a test started and has not stopped: a failing assertion leaves
 * the test function early, and its daemon must not outlive the test
 * program. */
static pid_t running[16];

static void kill_leftovers(void) {
    for (size_t i = 0; i < sizeof running / sizeof running[0]; i++) {
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
    }
}

static void remember(pid_t pid, bool add) {
    static bool registered;
    if (!registered) {
        atexit(kill_leftovers);
        registered = true;
    }
    for (size_t i = 0; i < sizeof running / sizeof running[0]; i++) {
        if (add ? running[i] == 0 : running[i] == pid) {
            running[i] = add ? pid : 0;
            return;
        }
    }
}

char *test_tmpdir(const char *label) {
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "/tmp/outbox-test-%s-XXXXXX", label);
    if (!mkdtemp(tmpl))
        fail_msg("mkdtemp: %s", strerror(errno));
    return strdup(tmpl);
}

void test_rmtree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0)
        print_message("# could not remove %s\n", dir);
}

/* The factor of a test lease (daemonlib.h): OUTBOX_TEST_HA_SCALE, else
 * valgrind's or a sanitizer build's. */
static int ha_scale(int valgrind, int sanitizers) {
    const char *s = getenv("OUTBOX_TEST_HA_SCALE");
    if (s && atoi(s) > 0)
        return atoi(s);
    if (getenv("OUTBOX_TEST_VALGRIND") && getenv("OUTBOX_TEST_VALGRIND")[0])
        return valgrind;
#if defined(__SANITIZE_ADDRESS__)
    return sanitizers;
#else
    (void)sanitizers;
    return 1;
#endif
}

int test_daemon_ttl_ms(void) {
    return TEST_DAEMON_TTL_MS * ha_scale(3, 3);
}

int test_daemon_renew_ms(void) {
    return TEST_DAEMON_RENEW_MS * ha_scale(3, 3);
}

int test_ha_ttl_ms(void) {
    return TEST_HA_TTL_MS * ha_scale(3, 2);
}

int test_ha_renew_ms(void) {
    return TEST_HA_RENEW_MS * ha_scale(3, 2);
}

static char *write_config(const char *dir, const char *file, outbox_t *ob, const char *uri, const char *sinks_yaml,
                          const char *ha_yaml, int ttl_ms, int renew_ms) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "mongodb:\n"
            "  uri: \"%s\"\n"
            "  database: %s\n"
            "outbox: %s\n"
            "checkpoint:\n"
            "  every_events: 100\n"
            "  every_ms: 200\n",
            uri, TEST_DB, outbox_name(ob));
    /* After the sinks, so that the sinks' line numbers, which tests of
     * error messages name, are what they were before HA. */
    size_t len = strlen(sinks_yaml);
    fprintf(f, "sinks:\n%s%sha:\n", sinks_yaml, len && sinks_yaml[len - 1] != '\n' ? "\n" : "");
    if (!ha_yaml || !strstr(ha_yaml, "lease_ttl_ms:"))
        fprintf(f, "  lease_ttl_ms: %d\n", ttl_ms);
    if (!ha_yaml || !strstr(ha_yaml, "renew_ms:"))
        fprintf(f, "  renew_ms: %d\n", renew_ms);
    fprintf(f, "%s", ha_yaml ? ha_yaml : "");
    fclose(f);
    return path;
}

char *test_daemon_config_uri(const char *dir, outbox_t *ob, const char *uri, const char *sinks_yaml,
                             const char *ha_yaml) {
    return write_config(dir, "outboxd.yaml", ob, uri, sinks_yaml, ha_yaml, test_ha_ttl_ms(), test_ha_renew_ms());
}

char *test_daemon_config_file(const char *dir, const char *file, outbox_t *ob, const char *sinks_yaml,
                              const char *ha_yaml) {
    return write_config(dir, file, ob, test_mongodb_uri(), sinks_yaml, ha_yaml, test_ha_ttl_ms(), test_ha_renew_ms());
}

char *test_daemon_config_ha(const char *dir, outbox_t *ob, const char *sinks_yaml, const char *ha_yaml) {
    return test_daemon_config_uri(dir, ob, test_mongodb_uri(), sinks_yaml, ha_yaml);
}

char *test_daemon_config(const char *dir, outbox_t *ob, const char *sinks_yaml) {
    return write_config(dir, "outboxd.yaml", ob, test_mongodb_uri(), sinks_yaml, NULL, test_daemon_ttl_ms(),
                        test_daemon_renew_ms());
}

void test_daemon_start(test_daemon_t *d, const char *config, const char *dir) {
    test_daemon_start_with(d, config, dir, "sinks/file");
}

void test_daemon_spawn(test_daemon_t *d, const char *config, const char *plugin_dir, const char *log) {
    char exe[600], plugins[600];
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(exe, sizeof exe, "%s/outboxd/outboxd", b ? b : ".");
    if (plugin_dir[0] == '/')
        snprintf(plugins, sizeof plugins, "%s", plugin_dir);
    else
        snprintf(plugins, sizeof plugins, "%s/%s", b ? b : ".", plugin_dir);
    snprintf(d->log, sizeof d->log, "%s", log);
    /* A fresh log per start: waits read it. */
    FILE *f = fopen(d->log, "w");
    assert_non_null(f);
    fclose(f);
    fflush(stdout);
    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
        /* OUTBOX_TEST_OUTBOXD_VERBOSE=1: debug lines in the log, for a
         * failure that the info lines do not explain. */
        const char *v = getenv("OUTBOX_TEST_OUTBOXD_VERBOSE");
        if (v && v[0] && strcmp(v, "0") != 0)
            execl(exe, exe, "-v", "--config", config, "--plugin-dir", plugins, (char *)NULL);
        else
            execl(exe, exe, "--config", config, "--plugin-dir", plugins, (char *)NULL);
        _exit(127);
    }
    remember(d->pid, true);
}

/* Waits until outboxd runs: before that, the libtool wrapper script (a
 * shell) may still stand where outboxd will, and would die of a SIGTERM
 * that outboxd itself handles. */
static void wait_started(const test_daemon_t *d) {
    for (int i = 0; i < 200; i++) {
        char *text = test_read_file(d->log);
        bool up = text && strstr(text, " sinks, plugins from ");
        free(text);
        if (up)
            return;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("outboxd did not start within 10 s (log: %s)", d->log);
}

char *test_plugins_dir(const char *dir, const char *const *names, size_t n) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    b = b ? b : ".";
    size_t size = strlen(dir) + 20;
    char *plugins = malloc(size), cmd[4096];
    assert_non_null(plugins);
    snprintf(plugins, size, "%s/plugins", dir);
    /* Not group- or world-writable: outboxd refuses such a folder. */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && chmod 755 '%s'", plugins, plugins);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(cmd, sizeof cmd, "test ! -f '%s/sinks/%s/.libs/%s.so' || cp '%s/sinks/%s/.libs/%s.so' '%s/%s.so'", b,
                 names[i], names[i], b, names[i], names[i], plugins, names[i]);
        if (system(cmd) != 0)
            fail_msg("cannot copy the %s sink (%s)", names[i], cmd);
    }
    return plugins;
}

void test_daemon_start_with(test_daemon_t *d, const char *config, const char *dir, const char *sink_dir) {
    char log[512];
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_spawn(d, config, sink_dir, log);
    wait_started(d);
}

/* Waits up to seconds for d's exit, with sig sent first unless it is 0. */
static int wait_exit(test_daemon_t *d, int sig, int seconds) {
    int status;
    remember(d->pid, false);
    if (sig) {
        kill(d->pid, sig);
        /* A paused outboxd (test_daemon_pause) gets the signal only once
         * it runs again; SIGCONT is harmless to one that runs. */
        if (sig != SIGKILL)
            kill(d->pid, SIGCONT);
    }
    for (int i = 0; i < seconds * 10; i++) {
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &status, 0);
    fail_msg("outboxd did not exit within %d s of signal %d (log: %s)", seconds, sig, d->log);
    return -1;
}

int test_daemon_stop_within(test_daemon_t *d, int sig, int seconds) {
    return wait_exit(d, sig, seconds);
}

int test_daemon_wait_exit(test_daemon_t *d, int seconds) {
    return wait_exit(d, 0, seconds);
}

int test_daemon_stop(test_daemon_t *d, int sig) {
    return test_daemon_stop_within(d, sig, 60);
}

int test_count_in(const char *s, const char *text) {
    assert_true(text[0] != '\0');
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, text)) != NULL; p += strlen(text))
        n++;
    return n;
}

void test_daemon_wait_log(const test_daemon_t *d, const char *text, int times) {
    for (int i = 0; i < 600; i++) {
        char *log = test_read_file(d->log);
        bool found = test_count_in(log, text) >= times;
        free(log);
        if (found)
            return;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char *log = test_read_file(d->log);
    fail_msg("outboxd never logged \"%s\" %d time(s) within 60 s (%s):\n%s", text, times, d->log,
             log ? log : "(no log)");
    free(log); /* not reached: fail_msg leaves the test */
}

int test_jsonl_ordernrs(const char *path, int *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (getline(&line, &cap, f) > 0) {
        bson_t doc;
        bson_error_t berr;
        bson_iter_t it;
        if (!bson_init_from_json(&doc, line, -1, &berr))
            fail_msg("%s line %d is not JSON: %s", path, n + 1, line);
        /* A native line, or a structured CloudEvent as the file sink
         * writes a format's message ({"headers":..., "payload": EVENT}). */
        if (!(bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, "data.ordernr", &it)) &&
            !(bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, "payload.data.ordernr", &it)))
            fail_msg("%s line %d has no data.ordernr (nor payload.data.ordernr)", path, n + 1);
        if (n < max)
            out[n] = (int)bson_iter_as_int64(&it);
        n++;
        bson_destroy(&doc);
    }
    free(line);
    fclose(f);
    return n;
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

int test_wait_lines(const char *path, int n, int timeout_ms) {
    int seen = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if ((seen = count_lines(path)) >= n)
            return seen;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return seen;
}

bool test_checkpoint(outbox_t *ob, const char *sink, bson_oid_t *last_id, char *state, size_t state_size) {
    char coll[256];
    const bson_t *doc;
    bool found = false;
    /* All zeros until the document has a position: with leases a
     * runner's claim makes the document before its first checkpoint
     * (valgrind caught a caller comparing an unset id). */
    if (last_id)
        memset(last_id, 0, sizeof *last_id);
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(sink));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        found = true;
        if (last_id && bson_iter_init_find(&it, doc, "last_id") && BSON_ITER_HOLDS_OID(&it))
            bson_oid_copy(bson_iter_oid(&it), last_id);
        if (state && bson_iter_init_find(&it, doc, "state") && BSON_ITER_HOLDS_UTF8(&it))
            snprintf(state, state_size, "%s", bson_iter_utf8(&it, NULL));
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return found;
}

void test_daemon_start_log(test_daemon_t *d, const char *config, const char *plugin_dir, const char *log) {
    test_daemon_spawn(d, config, plugin_dir, log);
    wait_started(d);
}

void test_daemon_pause(test_daemon_t *d) {
    assert_int_equal(kill(d->pid, SIGSTOP), 0);
}

void test_daemon_resume(test_daemon_t *d) {
    assert_int_equal(kill(d->pid, SIGCONT), 0);
}

bool test_lease_claim(outbox_t *ob, const char *lease, char *owner, size_t size, int64_t *term, bool *released) {
    char coll[256];
    const bson_t *doc;
    bool found = false;
    snprintf(coll, sizeof coll, "%s.leases", outbox_name(ob));
    mongoc_client_t *client = test_client();
    mongoc_collection_t *c = mongoc_client_get_collection(client, TEST_DB, coll);
    /* Claims of the lease: release requests have _id.op, presence
     * documents no _id.lease. */
    bson_t *filter = BCON_NEW("_id.lease", BCON_UTF8(lease), "_id.op", "{", "$exists", BCON_BOOL(false), "}");
    bson_t *opts = BCON_NEW("sort", "{", "_id.term", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        found = true;
        if (owner && size) {
            owner[0] = '\0';
            if (bson_iter_init_find(&it, doc, "owner") && BSON_ITER_HOLDS_UTF8(&it))
                snprintf(owner, size, "%s", bson_iter_utf8(&it, NULL));
        }
        if (term)
            *term = bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "_id.term", &it)
                        ? bson_iter_as_int64(&it)
                        : -1;
        if (released)
            *released = bson_iter_init_find(&it, doc, "released") && bson_iter_as_bool(&it);
    }
    bson_error_t err;
    if (mongoc_cursor_error(cur, &err))
        fail_msg("reading %s.%s: %s", TEST_DB, coll, err.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    return found;
}

int64_t test_checkpoint_term(outbox_t *ob, const char *sink) {
    char coll[256];
    bson_t doc;
    bson_iter_t it;
    int64_t term = -1;
    snprintf(coll, sizeof coll, "%s.checkpoints", outbox_name(ob));
    if (test_find_by_id(coll, sink, &doc)) {
        if (bson_iter_init_find(&it, &doc, "term") && BSON_ITER_HOLDS_NUMBER(&it))
            term = bson_iter_as_int64(&it);
        bson_destroy(&doc);
    }
    return term;
}

int test_daemon_check(const char *config, char **out) {
    char cmd[2048];
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/sinks/file' 2>&1",
             b ? b : ".", config, b ? b : ".");
    return test_run_command(cmd, out);
}
