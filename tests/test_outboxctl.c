/*
 * test_outboxctl.c - the operator's command line, run as a user would:
 * init, put (prints the id; a bad event exits 2 with the path), tail (one
 * JSON object per line; exit 3 on a gap), and usage errors.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

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
    outbox_t *ob = test_outbox("ctl"); /* a unique name; outboxctl re-ensures it */
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
    };
    return TEST_RUN("outboxctl", tests);
}
