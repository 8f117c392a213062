/*
 * test_tls_mongodb.c - liboutbox and outboxd over TLS to a real server: the
 * harness's FerretDB TLS listener (tests/services/README.md: the test CA's
 * server certificate, a client certificate required). What a user relies
 * on: with the right CA and certificate everything works as over plain TCP;
 * with a wrong CA, without a client certificate, or against a server whose
 * certificate has expired, the error says what TLS said (with the URI's
 * password blanked out), outboxd keeps retrying without crashing and without
 * a line per retry, and stops cleanly on SIGTERM.
 *
 * The whole program talks TLS: OUTBOX_TEST_MONGODB_URI is set to the TLS
 * URI before the first test, so testlib's helpers (test_outbox,
 * test_daemon_config, ...) all go through it. Skipped, saying why, when the
 * harness has no TLS listener (a real mongod, or a FerretDB started by an
 * older services.sh).
 */
#include "daemonlib.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tls_uri[1024], tls_dir[512];

/* The TLS URI and the test CA's folder, or skips. Also points testlib's
 * MongoDB URI at the TLS listener for the rest of the program. */
static void need_tls(void) {
    test_mongodb_uri(); /* skips without any server */
    const char *uri = test_service("OUTBOX_TEST_MONGODB_TLS_URI");
    if (!uri) {
        if (getenv("OUTBOX_TEST_REQUIRE_SERVERS") && strcmp(test_mongodb_kind(), "ferretdb") == 0)
            fail_msg("no MongoDB TLS listener, and OUTBOX_TEST_REQUIRE_SERVERS is set");
        TEST_SKIP("no MongoDB TLS listener (OUTBOX_TEST_MONGODB_TLS_URI): the harness gives one with "
                  "FerretDB only, and a FerretDB started by an older services.sh needs down/up");
    }
    snprintf(tls_uri, sizeof tls_uri, "%s", uri);
    const char *dir = test_service("OUTBOX_TEST_TLS_DIR");
    assert_non_null(dir);
    snprintf(tls_dir, sizeof tls_dir, "%s", dir);
    setenv("OUTBOX_TEST_MONGODB_URI", tls_uri, 1);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ensure, put and tail through liboutbox over TLS with a client
 * certificate: the same results as over plain TCP. */
static void liboutbox_ensures_puts_and_tails_over_tls(void **state) {
    need_tls();
    outbox_t *ob = test_outbox("tls");
    for (int i = 1; i <= 3; i++)
        test_put_order(ob, i, "k");
    outbox_error_t err;
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    if (!tail)
        fail_msg("tail over TLS: %s", err.message);
    int got[3];
    assert_int_equal(test_read_ordernrs(tail, got, 3, 5000), 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[2], 3);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

/* outboxd reads the log over TLS and publishes (file sink). */
static void outboxd_publishes_over_tls(void **state) {
    need_tls();
    outbox_t *ob = test_outbox("tlsd");
    char *dir = test_tmpdir("tlsd");
    char sinks[1024], out[700];
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(sinks, sizeof sinks,
             "  - name: f\n"
             "    plugin: file\n"
             "    route: \"%s\"\n",
             out);
    char *config = test_daemon_config(dir, ob, sinks);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    for (int i = 1; i <= 5; i++)
        test_put_order(ob, i, "k");
    int lines = test_wait_lines(out, 5, 20000);
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    if (lines != 5) {
        char *log = test_read_file(d.log);
        fail_msg("%d of 5 events published over TLS; log:\n%s", lines, log);
    }
    free(config);
    test_rmtree(dir);
    free(dir);
    test_outbox_drop(ob);
}

/* tls_uri with one query option replaced (or added), and user:password
 * before the host so that the test can look for the password in output. */
static void variant_uri(char *out, size_t size, const char *host_port, const char *ca, const char *cert) {
    snprintf(out, size, "mongodb://tlsuser:S3cret-TLS-pw@%s/?tls=true&tlsCAFile=%s%s%s&serverSelectionTimeoutMS=1500"
             "&connectTimeoutMS=1500",
             host_port, ca, cert ? "&tlsCertificateKeyFile=" : "", cert ? cert : "");
}

/* The host:port of the TLS URI ("127.0.0.1:37018"). */
static void tls_host_port(char *out, size_t size) {
    const char *p = strstr(tls_uri, "://");
    assert_non_null(p);
    p += 3;
    size_t n = strcspn(p, "/?");
    snprintf(out, size, "%.*s", (int)n, p);
}

/* liboutbox's ensure against uri fails with an error containing expect,
 * never the password; returns nothing, prints the message. */
static void liboutbox_refuses(const char *what, const char *uri, const char *expect) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    assert_int_equal(outbox_conf_set(conf, "uri", uri, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "database", TEST_DB, &err), OUTBOX_OK);
    assert_int_equal(outbox_conf_set(conf, "outbox", "t_tls_refused", &err), OUTBOX_OK);
    outbox_t *ob = outbox_new(conf, &err);
    outbox_code_t rc = ob ? outbox_ensure(ob, &err) : OUTBOX_ERR_CONF;
    print_message("# %s: liboutbox: %s\n", what, err.message);
    assert_int_not_equal(rc, OUTBOX_OK);
    if (!strstr(err.message, expect))
        fail_msg("%s: the error does not say \"%s\": %s", what, expect, err.message);
    assert_null(strstr(err.message, "S3cret-TLS-pw"));
    if (ob)
        outbox_destroy(ob); /* owns conf */
    else
        outbox_conf_destroy(conf);
}

/* outboxd with uri: starts, says expect, keeps retrying (alive after a
 * few seconds, no crash), does not log a line per retry, never shows the
 * password, and stops on SIGTERM. */
static void outboxd_retries_quietly(const char *what, const char *uri, const char *expect) {
    char *dir = test_tmpdir("tlsbad");
    char sinks[1024], out[700], config[700];
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(sinks, sizeof sinks,
             "  - name: f\n"
             "    plugin: file\n"
             "    route: \"%s\"\n",
             out);
    snprintf(config, sizeof config, "%s/outboxd.yaml", dir);
    FILE *f = fopen(config, "w");
    assert_non_null(f);
    fprintf(f,
            "mongodb:\n"
            "  uri: \"%s\"\n"
            "  database: %s\n"
            "outbox: t_tls_refused\n"
            "sinks:\n%s",
            uri, TEST_DB, sinks);
    fclose(f);
    chmod(config, 0600);
    test_daemon_t d;
    test_daemon_start(&d, config, dir);
    /* Long enough for several retries with outboxd's backoff. */
    int64_t until = now_ms() + 8000;
    while (now_ms() < until) {
        int status;
        if (waitpid(d.pid, &status, WNOHANG) == d.pid) {
            char *log = test_read_file(d.log);
            fail_msg("%s: outboxd exited (status %d) instead of retrying; log:\n%s", what, status, log);
        }
        sleep_ms(200);
    }
    assert_int_equal(test_daemon_stop(&d, SIGTERM), 0);
    char *log = test_read_file(d.log);
    assert_non_null(log);
    print_message("# %s: outboxd's log over 8 s:\n", what);
    for (char *line = log, *eol; *line; line = eol + 1) {
        eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line) - 1;
        print_message("#   %.*s\n", (int)(eol - line), line);
    }
    if (!strstr(log, expect)) {
        free(log);
        fail_msg("%s: outboxd's log does not say \"%s\"", what, expect);
    }
    bool leaked = strstr(log, "S3cret-TLS-pw") != NULL;
    /* Count up to the SIGTERM: the start's check of the outbox and each
     * of outboxd's two readers of the database (the sink's checkpoint, the
     * promoter) may say it once in 8 s; a line per retry is what this
     * guards against (about 6 here). */
    char *stop = strstr(log, "SIGTERM");
    if (stop)
        *stop = '\0';
    int n = test_count_in(log, expect);
    free(log);
    test_rmtree(dir);
    free(dir);
    if (leaked)
        fail_msg("%s: the URI's password is in outboxd's log", what);
    if (n > 3)
        fail_msg("%s: \"%s\" logged %d times in 8 s, once per retry: outboxd must not repeat it", what,
                 expect, n);
}

/* A server certificate that the configured CA did not sign. */
static void wrong_ca_is_a_clear_error_and_a_retry(void **state) {
    need_tls();
    char hp[128], ca[600], cert[600], uri[2048];
    tls_host_port(hp, sizeof hp);
    snprintf(ca, sizeof ca, "%s/other-ca.pem", tls_dir);
    snprintf(cert, sizeof cert, "%s/client-bundle.pem", tls_dir);
    variant_uri(uri, sizeof uri, hp, ca, cert);
    liboutbox_refuses("wrong CA", uri, "certificate verify failed");
    outboxd_retries_quietly("wrong CA", uri, "certificate verify failed");
}

/* No client certificate where the server requires one: refused (what
 * libmongoc can say is vague, see below), never connected. */
static void missing_client_certificate_is_a_clear_error(void **state) {
    need_tls();
    char hp[128], ca[600], uri[2048];
    tls_host_port(hp, sizeof hp);
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
    variant_uri(uri, sizeof uri, hp, ca, NULL);
    /* With TLS 1.3 the client's handshake is done before the server checks
     * the client's certificate; the server then closes the connection, and
     * libmongoc can only say that the read failed. */
    liboutbox_refuses("no client certificate", uri, "socket error");
}

/* Picks a free loopback port (the kernel's choice). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static pid_t own_ferretdb; /* the expired-certificate FerretDB, for the teardown */
static char *own_ferretdb_dir;

static int stop_own_ferretdb(void **state) {
    if (own_ferretdb > 0) {
        kill(own_ferretdb, SIGTERM);
        waitpid(own_ferretdb, NULL, 0);
        own_ferretdb = 0;
    }
    if (own_ferretdb_dir) {
        test_rmtree(own_ferretdb_dir);
        free(own_ferretdb_dir);
        own_ferretdb_dir = NULL;
    }
    return 0;
}

/* A server presenting a certificate that expired in 2020 (signed by the
 * right CA): a FerretDB of this test's own (stopped by the teardown). */
static void expired_server_certificate_is_a_clear_error(void **state) {
    need_tls();
    const char *bin = test_service("OUTBOX_TEST_FERRETDB");
    if (!bin)
        TEST_SKIP("the harness names no FerretDB binary (OUTBOX_TEST_FERRETDB) to serve the expired "
                  "certificate with");
    char ferretdb[600];
    snprintf(ferretdb, sizeof ferretdb, "%s", bin);
    char *dir = own_ferretdb_dir = test_tmpdir("tlsexp");
    int port = free_port(), plain = free_port();
    char a_tls[64], a_plain[64], sqlite[700], st[700], cert[600], key[600], log[700];
    snprintf(a_tls, sizeof a_tls, "--listen-tls=127.0.0.1:%d", port);
    snprintf(a_plain, sizeof a_plain, "--listen-addr=127.0.0.1:%d", plain);
    snprintf(sqlite, sizeof sqlite, "--sqlite-url=file:%s/", dir);
    snprintf(st, sizeof st, "--state-dir=%s", dir);
    snprintf(cert, sizeof cert, "--listen-tls-cert-file=%s/expired.pem", tls_dir);
    snprintf(key, sizeof key, "--listen-tls-key-file=%s/expired-key.pem", tls_dir);
    snprintf(log, sizeof log, "%s/ferretdb.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(ferretdb, ferretdb, "--handler=sqlite", sqlite, st, a_plain, a_tls, cert, key, "--debug-addr=-",
              "--telemetry=disable", "--log-level=error", (char *)NULL);
        _exit(127);
    }
    own_ferretdb = pid;
    int64_t until = now_ms() + 15000;
    while (!port_open(port) && now_ms() < until && waitpid(pid, NULL, WNOHANG) == 0)
        sleep_ms(50);
    if (!port_open(port)) {
        char *text = test_read_file(log);
        print_message("# its log:\n%s\n", text ? text : "(none)");
        free(text);
        fail_msg("FerretDB with the expired certificate did not listen on %d", port);
    }

    char hp[64], ca[600], client[600], uri[2048];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
    snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
    snprintf(client, sizeof client, "%s/client-bundle.pem", tls_dir);
    variant_uri(uri, sizeof uri, hp, ca, client);
    liboutbox_refuses("expired server certificate", uri, "certificate has expired");
    outboxd_retries_quietly("expired server certificate", uri, "certificate has expired");

}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(liboutbox_ensures_puts_and_tails_over_tls),
        cmocka_unit_test(outboxd_publishes_over_tls),
        cmocka_unit_test(wrong_ca_is_a_clear_error_and_a_retry),
        cmocka_unit_test(missing_client_certificate_is_a_clear_error),
        cmocka_unit_test_teardown(expired_server_certificate_is_a_clear_error, stop_own_ferretdb),
    };
    return TEST_RUN("MongoDB over TLS", tests);
}
