/*
 * test_outboxctl.c - the operator's command line, run as a user would:
 * init, put (prints the id; a bad event exits 2 with the path), tail (one
 * JSON object per line; exit 3 on a gap), and usage errors.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ctl[1024];

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char args[1024], cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", ctl, args);
    return test_run_command(cmd, out);
}

static int setup(void **state) {
    const char *b = getenv("OUTBOX_TEST_BUILDDIR");
    const char *s = getenv("OUTBOX_TEST_SRCDIR");
    snprintf(ctl, sizeof ctl, "OUTBOX_SCHEMAS='%s/examples/schemas' '%s/outboxctl/outboxctl'", s ? s : ".", b ? b : ".");
    return 0;
}

static void init_put_tail_round_trip(void **state) {
    char *out;
    char conn[1024];
    const char *uri = test_mongodb_uri();
    /* A unique name, not yet created: outboxctl init creates it with the
     * examples' schemas (an outbox ensured with the tests' own schemas
     * would refuse them: N.schemas keeps the first declaration). */
    outbox_t *ob = outbox_new(test_conf("ctl"), NULL);
    assert_non_null(ob);
    snprintf(conn, sizeof conn, "--uri '%s' --db %s --outbox %s", uri, TEST_DB, outbox_name(ob));

    assert_int_equal(run(&out, "%s init", conn), 0);
    assert_non_null(strstr(out, "ready"));
    free(out);

    assert_int_equal(run(&out, "%s put order.shipped order-1 '{\"ordernr\": 1, \"carrier\": \"ups\"}' --header trace=t1", conn), 0);
    assert_true(bson_oid_is_valid(out, 24) && out[24] == '\n');
    char first[25];
    memcpy(first, out, 24);
    first[24] = '\0';
    free(out);
    assert_int_equal(run(&out, "%s put order.shipped - '{\"ordernr\": 2, \"carrier\": \"dhl\"}'", conn), 0);
    free(out);

    /* Validation error: exit 2, the type and path in the message. */
    assert_int_equal(run(&out, "%s put order.shipped x '{\"ordernr\": \"3\", \"carrier\": \"dhl\"}'", conn), 2);
    assert_non_null(strstr(out, "event 0 (order.shipped): data.ordernr: expected int, got string"));
    free(out);

    assert_int_equal(run(&out, "%s tail --from-start --timeout-ms 500", conn), 0);
    /* Two lines, each a JSON object with the documented fields. */
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    bson_t line;
    bson_error_t berr;
    if (!bson_init_from_json(&line, out, -1, &berr))
        fail_msg("not JSON: %s", out);
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, &line, "id"));
    assert_string_equal(bson_iter_utf8(&it, NULL), first);
    assert_true(bson_iter_init_find(&it, &line, "key"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "order-1");
    assert_true(bson_iter_init_find(&it, &line, "created"));
    assert_true(bson_iter_init_find(&it, &line, "headers") && BSON_ITER_HOLDS_DOCUMENT(&it));
    assert_true(bson_iter_init(&it, &line) && bson_iter_find_descendant(&it, "headers.trace", &it));
    assert_string_equal(bson_iter_utf8(&it, NULL), "t1");
    assert_true(bson_iter_init(&it, &line) && bson_iter_find_descendant(&it, "data.carrier", &it));
    assert_string_equal(bson_iter_utf8(&it, NULL), "ups");
    bson_destroy(&line);
    assert_non_null(strstr(nl + 1, "\"key\" : null"));
    assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n'));
    free(out);

    assert_int_equal(run(&out, "%s tail --after %s --limit 1", conn, first), 0);
    assert_non_null(strstr(out, "\"ordernr\" : 2"));
    free(out);
    test_outbox_drop(ob);
}

static void tail_exits_3_on_a_gap(void **state) {
    char *out;
    const char *uri = test_mongodb_uri();
    outbox_t *ob = test_outbox("ctl_gap");
    test_put_order(ob, 1, "k");
    /* An id that was never in the log is a lost position too. */
    assert_int_equal(run(&out, "--uri '%s' --db %s --outbox %s tail --after 0123456789abcdef01234567 --timeout-ms 200",
                         uri, TEST_DB, outbox_name(ob)), 3);
    assert_non_null(strstr(out, "gap in "));
    assert_non_null(strstr(out, "0123456789abcdef01234567"));
    free(out);
    test_outbox_drop(ob);
}

/* A document in the log that is not an envelope ends tail with exit 4
 * and a message naming it; it once printed "(retrying)" and exited 0.
 * --skip-malformed goes on, naming each on stderr. */
static void tail_exits_4_on_a_malformed_document_unless_skip_malformed(void **state) {
    char *out, conn[1024];
    const char *uri = test_mongodb_uri();
    outbox_t *ob = test_outbox("ctl_malformed");
    snprintf(conn, sizeof conn, "--uri '%s' --db %s --outbox %s", uri, TEST_DB, outbox_name(ob));
    test_put_order(ob, 1, "k");
    bson_t *bad = BCON_NEW("_id", BCON_UTF8("foreign-7"), "type", BCON_INT32(7), "data", "[", "]");
    test_insert_raw(outbox_name(ob), bad);
    bson_destroy(bad);
    test_put_order(ob, 2, "k");

    assert_int_equal(run(&out, "%s tail --timeout-ms 500", conn), 4);
    assert_non_null(strstr(out, "\"ordernr\" : 1"));
    assert_null(strstr(out, "\"ordernr\" : 2"));
    assert_non_null(strstr(out, "{ \"_id\" : \"foreign-7\" }"));
    assert_non_null(strstr(out, "is not a valid envelope"));
    free(out);

    /* stdout: the two events; stderr: the skipped document. */
    char cmd[3072];
    snprintf(cmd, sizeof cmd, "%s %s tail --timeout-ms 500 --skip-malformed 2>/dev/null", ctl, conn);
    assert_int_equal(test_run_command(cmd, &out), 0);
    assert_non_null(strstr(out, "\"ordernr\" : 1"));
    assert_non_null(strstr(out, "\"ordernr\" : 2"));
    assert_null(strstr(out, "foreign-7"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s %s tail --timeout-ms 500 --skip-malformed 2>&1 >/dev/null", ctl, conn);
    assert_int_equal(test_run_command(cmd, &out), 0);
    assert_non_null(strstr(out, "outboxctl: tail: skipped: document { \"_id\" : \"foreign-7\" }"));
    free(out);
    test_outbox_drop(ob);
}

/* With --timeout-ms, tail once exited 0 (as if the log were quiet) when
 * the outbox did not exist or the server could not be reached. */
static void tail_with_a_timeout_fails_when_it_cannot_read_the_log(void **state) {
    char *out;
    const char *uri = test_mongodb_uri();
    assert_int_equal(run(&out, "--uri '%s' --db %s --outbox no_such_outbox_%d tail --timeout-ms 300", uri, TEST_DB,
                         (int)getpid()), 1);
    assert_non_null(strstr(out, "does not exist"));
    free(out);
    assert_int_equal(run(&out, "--uri 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300' --db %s --outbox o "
                               "tail --timeout-ms 300", TEST_DB), 1);
    assert_non_null(strstr(out, "127.0.0.1:1"));
    free(out);
}

/* Every connection string outboxctl prints goes through
 * outbox_uri_redacted(): whatever the command and however it fails, the
 * password never shows (stdout and stderr, libmongoc's own lines too). The
 * URI can also come from a file or the environment, off the command line. */
static void no_outboxctl_output_shows_the_uri_password(void **state) {
    char *out, path[256];
    const char *secret = "S3CRETpw";
    const char *uris[] = {
        "mongodb+srv://alice:S3CRETpw@db.nosuch.invalid/",
        "mongodb://alice:S3CRETpw@127.0.0.1:1/?serverSelectionTimeoutMS=200",
        "mongodb://alice:S3CRETpw@[::1",
        "mongodb://alice:S3CR/ET@pw@127.0.0.1:1/?serverSelectionTimeoutMS=200",
        /* libmongoc reads what follows a raw '@' as a host and quotes it,
         * lower-cased, in its error ("Failed to resolve 'etpw@127.0.0.1'"). */
        "mongodb://alice:S3CR@ETpw@127.0.0.1:1/?serverSelectionTimeoutMS=200",
    };
    const char *commands[] = {"status", "status --json", "tail --timeout-ms 200", "init", "promote",
                              "put order.shipped k '{\"ordernr\":1,\"carrier\":\"ups\"}'",
                              "checkpoint set s 0123456789abcdef01234567 --create", "checkpoint reset s",
                              "deadletter list", "deadletter retry"};
    snprintf(path, sizeof path, "/tmp/outbox-test-uri-%d", (int)getpid());
    for (size_t u = 0; u < sizeof uris / sizeof uris[0]; u++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "%s\n", uris[u]);
        fclose(f);
        for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
            /* Each source for two commands: they share the code that
             * reads the URI, and 120 runs would cost seconds. */
            for (int h = 0; h < (c < 2 ? 3 : 1); h++) {
                char cmd[3072];
                if (h == 0)
                    snprintf(cmd, sizeof cmd, "%s --uri '%s' --db %s --outbox o %s 2>&1", ctl, uris[u], TEST_DB,
                             commands[c]);
                else if (h == 1)
                    snprintf(cmd, sizeof cmd, "%s --uri-file '%s' --db %s --outbox o %s 2>&1", ctl, path, TEST_DB,
                             commands[c]);
                else /* the environment */
                    snprintf(cmd, sizeof cmd, "env OUTBOX_URI='%s' %s --db %s --outbox o %s 2>&1", uris[u], ctl,
                             TEST_DB, commands[c]);
                int rc = test_run_command(cmd, &out);
                if (strstr(out, secret) || strstr(out, "S3CR/ET") || strcasestr(out, "ETpw"))
                    fail_msg("%s printed the password (exit %d):\n%s", cmd, rc, out);
                assert_true(rc != 0); /* none of these can succeed */
                free(out);
            }
        }
    }
    /* The redacted form is what is shown. */
    assert_int_equal(run(&out, "--uri '%s' --db d --outbox o status", uris[0]), 2);
    assert_non_null(strstr(out, "mongodb+srv://alice:*****@db.nosuch.invalid/"));
    free(out);
    unlink(path);
}

/* --uri-file and OUTBOX_URI_FILE work against a real server, and two
 * sources at one level are refused rather than guessed between. */
static void the_uri_can_come_from_a_file(void **state) {
    char *out, path[256];
    const char *uri = test_mongodb_uri();
    outbox_t *ob = test_outbox("ctl_uri_file");
    snprintf(path, sizeof path, "/tmp/outbox-test-urifile-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", uri);
    fclose(f);
    assert_int_equal(run(&out, "--uri-file %s --db %s --outbox %s put order.shipped k '{\"ordernr\":1,\"carrier\":\"ups\"}'",
                         path, TEST_DB, outbox_name(ob)), 0);
    free(out);
    char cmd[3072];
    snprintf(cmd, sizeof cmd, "env -u OUTBOX_URI OUTBOX_URI_FILE=%s %s --db %s --outbox %s tail --timeout-ms 300 2>&1",
             path, ctl, TEST_DB, outbox_name(ob));
    assert_int_equal(test_run_command(cmd, &out), 0);
    assert_non_null(strstr(out, "\"carrier\" : \"ups\""));
    free(out);
    assert_int_equal(run(&out, "--uri-file %s --uri '%s' --db %s --outbox %s status", path, uri, TEST_DB,
                         outbox_name(ob)), 2);
    assert_non_null(strstr(out, "not both"));
    free(out);
    assert_int_equal(run(&out, "--uri-file /nonexistent/uri --db %s --outbox %s status", TEST_DB, outbox_name(ob)), 2);
    assert_non_null(strstr(out, "--uri-file /nonexistent/uri: No such file or directory"));
    free(out);
    unlink(path);
    test_outbox_drop(ob);
}

static void usage_errors_exit_2(void **state) {
    char *out;
    assert_int_equal(run(&out, "--db d --outbox o --uri mongodb://127.0.0.1:1/ frobnicate"), 2);
    assert_non_null(strstr(out, "unknown command"));
    free(out);
    assert_int_equal(run(&out, "--db d --outbox o --uri mongodb://127.0.0.1:1/ tail --after nothex"), 2);
    assert_non_null(strstr(out, "--after nothex: not an event id"));
    free(out);
    assert_int_equal(run(&out, "--help"), 0);
    assert_non_null(strstr(out, "Exit status"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(init_put_tail_round_trip, setup),
        cmocka_unit_test_setup(tail_exits_3_on_a_gap, setup),
        cmocka_unit_test_setup(usage_errors_exit_2, setup),
        cmocka_unit_test_setup(tail_exits_4_on_a_malformed_document_unless_skip_malformed, setup),
        cmocka_unit_test_setup(tail_with_a_timeout_fails_when_it_cannot_read_the_log, setup),
        cmocka_unit_test_setup(no_outboxctl_output_shows_the_uri_password, setup),
        cmocka_unit_test_setup(the_uri_can_come_from_a_file, setup),
    };
    return TEST_RUN("outboxctl", tests);
}
