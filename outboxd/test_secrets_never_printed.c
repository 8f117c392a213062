/*
 * test_secrets_never_printed.c - no credential of a configuration that
 * uses every kind of secret reaches anything outboxd or outboxctl prints:
 * `outboxd --check`, outboxd's log while every sink fails to log in and
 * while the MongoDB client misreads a password with a raw '@', the
 * checkpoint messages, and `outboxctl status` (text and --json). And an
 * ABI 1.1 SECRET option given as KEY_file, which a careless test plugin
 * quotes in every message it can.
 *
 * The secrets come inline, from {file:} and from {env:}; some hold '/',
 * '@' or ':' raw (issue 13: such a password passed the redaction and was
 * printed). The servers refuse them or do not ask for them: that is the
 * point, since error paths are where a client library quotes its URL.
 * Needs the harness (MongoDB, Redis, NATS, Kafka); skips without it.
 */
#include "daemonlib.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Each secret appears once in the configuration, in one form. */
#define MONGO_PW_AT "MgAt@S3CRETpw"         /* raw '@': libmongoc misreads the URI */
#define MONGO_PW_ENV "MgEnvS3CRETpw"        /* mongodb.uri: {env:} */
#define MONGO_PW_SRV "MgSrvS3CRETpw"        /* mongodb+srv:// that DNS cannot find */
#define REDIS_URL_PW "Rd/S3CRETurl"         /* inline url with a raw '/' */
#define REDIS_ENV_PW "RdEnvS3CRET:x@y"      /* url from {env:} */
#define REDIS_FILE_PW "RdFileS3CRETpw"      /* password: {file:} */
#define NATS_URL_PW "Nats/S3CRETurl"        /* servers inline */
#define NATS_ENV_PW "NatsEnvS3CRETpw"       /* password: {env:} */
#define NATS_TOKEN "NatsFileS3CRETtok"      /* token: {file:} */
#define KAFKA_FILE_PW "KfFileS3CRETpw"      /* sasl.password: {file:} */
#define KAFKA_INLINE_PW "KfInlineS3CRETpw"  /* sasl.password inline */

static const char *const secrets[] = {MONGO_PW_AT, "S3CRETpw", MONGO_PW_ENV, MONGO_PW_SRV, REDIS_URL_PW,
                                      REDIS_ENV_PW, REDIS_FILE_PW, NATS_URL_PW, NATS_ENV_PW, NATS_TOKEN,
                                      KAFKA_FILE_PW, KAFKA_INLINE_PW};

static const char *builddir(void) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    return b ? b : ".";
}

static void write_text(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Appends text to the collected output. */
static void collect(char **all, const char *label, const char *text) {
    size_t have = *all ? strlen(*all) : 0, add = strlen(label) + strlen(text) + 8;
    *all = realloc(*all, have + add);
    snprintf(*all + have, add, "== %s\n%s\n", label, text ? text : "");
}

/* Runs a shell command and returns what it printed (stdout and stderr). */
static char *run(const char *cmd) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t cap = 4096, n = 0, got;
    char *out = malloc(cap);
    while ((got = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n == cap - 1)
            out = realloc(out, cap *= 2);
    }
    out[n] = '\0';
    pclose(p);
    return out;
}

/* A plugin folder with copies of the build tree's sinks (outboxd loads
 * NAME.so from one trusted folder, and refuses symlinks out of it). */
static void copy_plugins(const char *dir) {
    static const char *const names[] = {"file", "redis", "nats", "kafka"};
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/plugins' && chmod 755 '%s/plugins'", dir, dir);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/sinks/%s/.libs/%s.so' '%s/plugins/%s.so' && chmod 755 '%s/plugins/%s.so'",
                 builddir(), names[i], names[i], dir, names[i], dir, names[i]);
        if (system(cmd) != 0)
            fail_msg("cannot copy the %s sink (%s)", names[i], cmd);
    }
}

/* Whether plugin NAME declares option KEY (outboxd --plugin-help). */
static bool plugin_has_option(const char *dir, const char *name, const char *key) {
    char cmd[1024], want[128];
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --plugin-dir '%s/plugins' --plugin-help %s", builddir(), dir, name);
    char *out = run(cmd);
    snprintf(want, sizeof want, "\n  %s ", key);
    bool has = strstr(out, want) != NULL;
    free(out);
    if (!has)
        print_message("# sink %s has no option %s yet: that form is not exercised\n", name, key);
    return has;
}

/* Waits until log holds every string of want (up to timeout_ms): a wait
 * for something to have happened, not a pass criterion. */
static void wait_log(const char *log, const char *const *want, size_t n, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        char *text = test_read_file(log);
        size_t found = 0;
        for (size_t i = 0; text && i < n; i++)
            found += strstr(text, want[i]) != NULL;
        free(text);
        if (found == n)
            return;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void secrets_of_every_kind_are_never_printed(void **state) {
    outbox_t *ob = test_outbox("secrets");
    const char *redis = test_service("OUTBOX_TEST_REDIS_URL"), *nats = test_service("OUTBOX_TEST_NATS_URL"),
               *kafka = test_service("OUTBOX_TEST_KAFKA_BROKERS");
    if (!redis || !nats || !kafka)
        TEST_SKIP("needs Redis, NATS and Kafka from the harness");
    test_lock_kafka(); /* not while another test stops the broker */
    char redis_hp[128], nats_hp[128];
    /* host:port of each, from redis://H:P/0 and nats://H:P */
    sscanf(redis + strlen("redis://"), "%127[^/]", redis_hp);
    snprintf(nats_hp, sizeof nats_hp, "%s", nats + strlen("nats://"));

    char *dir = test_tmpdir("secrets");
    copy_plugins(dir);
    char path[700], env_value[512], *all = NULL;
    snprintf(path, sizeof path, "%s/redis.pw", dir);
    write_text(path, REDIS_FILE_PW "\n", 0600);
    snprintf(path, sizeof path, "%s/nats.token", dir);
    write_text(path, NATS_TOKEN "\n", 0600);
    snprintf(path, sizeof path, "%s/kafka.pw", dir);
    write_text(path, KAFKA_FILE_PW "\n", 0600);
    snprintf(env_value, sizeof env_value, "redis://default:%s@%s/0", REDIS_ENV_PW, redis_hp);
    setenv("OUTBOXD_TEST_REDIS_URL", env_value, 1);
    setenv("OUTBOXD_TEST_NATS_PW", NATS_ENV_PW, 1);

    /* The sinks: every kind of secret, each sink failing to log in. A
     * Redis sink that refuses a password inside its url (its check, sink
     * ABI 1.1) must say so without the password, and gets it as option
     * password from {env:} instead. */
    char sinks[8192], cmd[2048];
    int n = snprintf(sinks, sizeof sinks,
                     "  - name: redis-inline\n    plugin: redis\n    route: \"outbox:{type}\"\n    options:\n"
                     "      url: \"redis://default:%s@%s/0\"\n"
                     "  - name: redis-env\n    plugin: redis\n    route: \"outbox:{type}\"\n    options:\n"
                     "      url: {env: OUTBOXD_TEST_REDIS_URL}\n",
                     REDIS_URL_PW, redis_hp);
    char *probe = test_daemon_config(dir, ob, sinks);
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/plugins'", builddir(),
             probe, dir);
    char *out = run(cmd);
    collect(&all, "outboxd --check (passwords in Redis urls)", out);
    bool url_passwords = strstr(out, "a password in the url is not accepted") == NULL;
    free(out);
    free(probe);
    if (!url_passwords) {
        setenv("OUTBOXD_TEST_REDIS_PW", REDIS_ENV_PW, 1);
        n = snprintf(sinks, sizeof sinks,
                     "  - name: redis-env\n    plugin: redis\n    route: \"outbox:{type}\"\n    options:\n"
                     "      url: \"redis://%s/0\"\n      password: {env: OUTBOXD_TEST_REDIS_PW}\n",
                     redis_hp);
    }
    if (plugin_has_option(dir, "redis", "password"))
        n += snprintf(sinks + n, sizeof sinks - (size_t)n,
                      "  - name: redis-file\n    plugin: redis\n    route: \"outbox:{type}\"\n    options:\n"
                      "      url: \"redis://%s/0\"\n      password: {file: redis.pw}\n",
                      redis_hp);
    n += snprintf(sinks + n, sizeof sinks - (size_t)n,
                  "  - name: nats-inline\n    plugin: nats\n    route: \"orders.{type}\"\n    options:\n"
                  "      servers: \"nats://user:%s@%s\"\n      mode: core\n      max_reconnect: 0\n",
                  NATS_URL_PW, nats_hp);
    if (plugin_has_option(dir, "nats", "password"))
        n += snprintf(sinks + n, sizeof sinks - (size_t)n,
                      "  - name: nats-env\n    plugin: nats\n    route: \"orders.{type}\"\n    options:\n"
                      "      servers: \"nats://%s\"\n      user: u\n      password: {env: OUTBOXD_TEST_NATS_PW}\n"
                      "      mode: core\n",
                      nats_hp);
    if (plugin_has_option(dir, "nats", "token"))
        n += snprintf(sinks + n, sizeof sinks - (size_t)n,
                      "  - name: nats-file\n    plugin: nats\n    route: \"orders.{type}\"\n    options:\n"
                      "      servers: \"nats://%s\"\n      token: {file: nats.token}\n      mode: core\n",
                      nats_hp);
    n += snprintf(sinks + n, sizeof sinks - (size_t)n,
                  "  - name: kafka-file\n    plugin: kafka\n    route: \"orders\"\n    options:\n"
                  "      bootstrap.servers: \"%s\"\n      security.protocol: SASL_PLAINTEXT\n"
                  "      sasl.mechanisms: PLAIN\n      sasl.username: outbox\n"
                  "      sasl.password: {file: kafka.pw}\n      open_timeout_ms: 2000\n"
                  "  - name: kafka-inline\n    plugin: kafka\n    route: \"orders\"\n    options:\n"
                  "      bootstrap.servers: \"%s\"\n      security.protocol: SASL_PLAINTEXT\n"
                  "      sasl.mechanisms: PLAIN\n      sasl.username: outbox\n"
                  "      sasl.password: %s\n      open_timeout_ms: 2000\n",
                  kafka, kafka, KAFKA_INLINE_PW);
    assert_true(n < (int)sizeof sinks);

    /* Run 1: the harness's MongoDB (it has no users), so that checkpoints
     * and their messages are written; the file is world-readable, which
     * earns the warning about the inline secrets. */
    char *config = test_daemon_config(dir, ob, sinks);
    chmod(config, 0644);
    char log[700];
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/plugins'", builddir(),
             config, dir);
    out = run(cmd);
    collect(&all, "outboxd --check", out);
    if (!strstr(out, ": ok"))
        fail_msg("outboxd --check refused the configuration:\n%s", out);
    assert_non_null(strstr(out, "holds a secret inline, and the file is readable by everyone (mode 0644)"));
    free(out);

    outbox_error_t err;
    if (outbox_put_json(ob, NULL, "order.created", "k",
                        "{\"ordernr\": 1, \"total\": 0}", NULL, NULL,
                        &err) != OUTBOX_OK)
        fail_msg("put: %s", err.message);
    snprintf(log, sizeof log, "%s/run1.log", dir);
    char plugins[600];
    snprintf(plugins, sizeof plugins, "%s/plugins", dir);
    test_daemon_t d;
    test_daemon_spawn(&d, config, plugins, log);
    /* Until each sink has failed at least once (they retry: no end). */
    const char *const failed[] = {"sink redis-env: ", "sink nats-inline: ", "sink kafka-file: ",
                                  "sink kafka-inline: ", "sink redis-inline: "};
    wait_log(log, failed, sizeof failed / sizeof *failed - !url_passwords, 20000);
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    out = test_read_file(log);
    collect(&all, "outboxd run 1", out);
    free(out);

    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status", builddir(),
             test_mongodb_uri(), TEST_DB, outbox_name(ob));
    out = run(cmd);
    collect(&all, "outboxctl status", out);
    free(out);
    strcat(cmd, " --json");
    out = run(cmd);
    collect(&all, "outboxctl status --json", out);
    free(out);

    /* Run 2: MongoDB URIs with passwords: a raw '@' (libmongoc takes the
     * part after it for a host, and says so), one from {env:}, and a
     * mongodb+srv:// name DNS cannot find. Each runs briefly. */
    const char *const uris[] = {"\"mongodb://alice:" MONGO_PW_AT "@127.0.0.1:37017/?serverSelectionTimeoutMS=500\"",
                                "{env: OUTBOXD_TEST_MONGO_URI}",
                                "\"mongodb+srv://alice:" MONGO_PW_SRV "@db.nosuch.invalid/\""};
    setenv("OUTBOXD_TEST_MONGO_URI", "mongodb://bob:" MONGO_PW_ENV "@127.0.0.1:37017/?serverSelectionTimeoutMS=500",
           1);
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        snprintf(path, sizeof path, "%s/mongo%zu.yaml", dir, i);
        FILE *f = fopen(path, "w");
        fprintf(f,
                "mongodb:\n  uri: %s\n  database: %s\noutbox: %s\nsinks:\n  - name: archive\n    plugin: file\n"
                "    route: \"%s/out/{type}.jsonl\"\n",
                uris[i], TEST_DB, outbox_name(ob), dir);
        fclose(f);
        chmod(path, 0644);
        snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s/plugins'", builddir(),
                 path, dir);
        out = run(cmd);
        collect(&all, "outboxd --check (MongoDB URI)", out);
        free(out);
        snprintf(log, sizeof log, "%s/mongo%zu.log", dir, i);
        test_daemon_spawn(&d, path, plugins, log);
        const char *const tried[] = {"mongodb.uri", "(retrying"};
        wait_log(log, i == 2 ? tried : tried + 1, i == 2 ? 2 : 1, 5000);
        assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
        out = test_read_file(log);
        collect(&all, "outboxd run 2 (MongoDB URI)", out);
        free(out);
    }

    /* The secrets, and libmongoc's lower-cased piece after the raw '@'. */
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++) {
        const char *hit = strcasestr(all, secrets[i]);
        if (hit) {
            const char *line = hit;
            while (line > all && line[-1] != '\n')
                line--;
            fail_msg("secret \"%s\" was printed: %.*s", secrets[i], (int)strcspn(line, "\n"), line);
        }
    }
    /* And the output is what it claims to be: the sinks did fail. */
    if (getenv("OUTBOX_TEST_VERBOSE"))
        fputs(all, stderr);
    free(all);
    free(config);
    test_rmtree(dir);
    free(dir);
    unsetenv("OUTBOXD_TEST_REDIS_URL");
    unsetenv("OUTBOXD_TEST_REDIS_PW");
    unsetenv("OUTBOXD_TEST_NATS_PW");
    unsetenv("OUTBOXD_TEST_MONGO_URI");
    outbox_destroy(ob);
}

/* Whether text holds secret (case-insensitive, as above); fails naming the line. */
static void assert_not_printed(const char *all, const char *secret) {
    const char *hit = strcasestr(all, secret);
    if (hit) {
        const char *line = hit;
        while (line > all && line[-1] != '\n')
            line--;
        fail_msg("secret \"%s\" was printed: %.*s", secret, (int)strcspn(line, "\n"), line);
    }
}

#define CHECKER_TOKEN "ChkFileS3CRETtoken"

/* ABI 1.1: a SECRET option given as KEY_file (token_file), in the hands of
 * a careless plugin (outboxd/testplugins/checker.c with leak: yes) that
 * puts the value into its check's log line and error, its open's log line
 * and RETRY error, and the error of a FATAL ack (which stops the sink and
 * lands in its checkpoint message). Nothing outboxd or outboxctl prints
 * holds it. */
static void a_secret_option_from_key_file_is_never_printed_even_by_a_careless_plugin(void **state) {
    outbox_t *ob = test_outbox("secretfile");
    char *dir = test_tmpdir("secretfile");
    char path[700], sinks[2048], cmd[2048], log[700], plugins[600], *all = NULL, *out;
    snprintf(path, sizeof path, "%s/token", dir);
    write_text(path, CHECKER_TOKEN "\n", 0600);
    snprintf(plugins, sizeof plugins, "%s/outboxd/testplugins", builddir());

    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --plugin-dir '%s' --plugin-help checker", builddir(), plugins);
    out = run(cmd);
    collect(&all, "outboxd --plugin-help checker", out);
    assert_non_null(strstr(out, "token              secret (or token_file: PATH; never printed)"));
    assert_non_null(strstr(out, "spare              secret (or spare_file: PATH; never printed), default (secret)"));
    free(out);

    /* --check with a value check refuses: its error quotes the token. */
    snprintf(sinks, sizeof sinks,
             "  - name: c\n    plugin: checker\n    route: orders\n    options:\n      path: \"%s/c.txt\"\n"
             "      token_file: token\n      leak: yes\n      valid: no\n", dir);
    char *config = test_daemon_config(dir, ob, sinks);
    snprintf(cmd, sizeof cmd, "'%s/outboxd/outboxd' --check --config '%s' --plugin-dir '%s'", builddir(), config,
             plugins);
    out = run(cmd);
    collect(&all, "outboxd --check (refused)", out);
    if (!strstr(out, ":16:7: sink c: valid: refused by check (token *****) (plugin checker)"))
        fail_msg("--check did not refuse as expected:\n%s", out);
    free(out);
    free(config);

    /* The daemon: open fails once quoting it (RETRY), then the first
     * event's FATAL ack quotes it and stops the sink (on_error: stop). */
    snprintf(sinks, sizeof sinks,
             "  - name: c\n    plugin: checker\n    route: orders\n    options:\n      path: \"%s/c.txt\"\n"
             "      token_file: token\n      leak: yes\n", dir);
    config = test_daemon_config(dir, ob, sinks);
    out = run(cmd);
    collect(&all, "outboxd --check", out);
    if (!strstr(out, ": ok"))
        fail_msg("outboxd --check refused the configuration:\n%s", out);
    free(out);
    test_put_order(ob, 1, "k");
    snprintf(log, sizeof log, "%s/outboxd.log", dir);
    test_daemon_t d;
    test_daemon_spawn(&d, config, plugins, log);
    const char *const stopped[] = {"this sink stops, the others go on"};
    wait_log(log, stopped, 1, 30000);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    out = test_read_file(log);
    collect(&all, "outboxd run", out);
    /* The careless lines were there, scrubbed: the test saw what it claims. */
    if (!strstr(out, "sink c: connecting with token *****") || !strstr(out, "the server refused token *****") ||
        !strstr(out, "wants token *****"))
        fail_msg("the plugin's lines are missing from the log:\n%s", out);
    free(out);

    snprintf(cmd, sizeof cmd, "'%s/outboxctl/outboxctl' --uri '%s' --db %s --outbox %s status", builddir(),
             test_mongodb_uri(), TEST_DB, outbox_name(ob));
    out = run(cmd);
    collect(&all, "outboxctl status", out);
    free(out);
    strcat(cmd, " --json");
    out = run(cmd);
    collect(&all, "outboxctl status --json", out);
    if (!strstr(out, "wants token *****"))
        fail_msg("the checkpoint message is not in the status:\n%s", out);
    free(out);

    assert_not_printed(all, CHECKER_TOKEN);
    assert_not_printed(all, "ChkDefaultS3CRET"); /* checker's default for spare */
    if (getenv("OUTBOX_TEST_VERBOSE"))
        fputs(all, stderr);
    free(all);
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secrets_of_every_kind_are_never_printed),
        cmocka_unit_test(a_secret_option_from_key_file_is_never_printed_even_by_a_careless_plugin),
    };
    return TEST_RUN("secrets_never_printed", tests);
}
