/*
 * test_envelope_other_driver.c - events written by another language's
 * driver (pymongo, by tests/envelope_writer.py, from docs/envelope.md
 * alone) read back through the C tail: in order, every field as written,
 * and resumable after a checkpoint.
 */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#define COUNT 12

static void python_events_tail_in_order_and_resume(void **state) {
    outbox_error_t err;
    char cmd[1024];
    char *out = NULL;
    const char *srcdir = getenv("OUTBOX_TEST_SRCDIR");
    const char *uri = test_mongodb_uri();
    /* The python3 on PATH may not be Debian's (pyenv, a venv): take the
     * first one that has pymongo. */
    const char *candidates[] = {getenv("OUTBOX_TEST_PYTHON"), "python3", "/usr/bin/python3"};
    const char *python = NULL;
    for (int i = 0; i < 3 && !python; i++) {
        snprintf(cmd, sizeof cmd, "%s -c 'import pymongo' 2>/dev/null", candidates[i] ? candidates[i] : "false");
        if (candidates[i] && test_run_command(cmd, NULL) == 0)
            python = candidates[i];
    }
    if (!python)
        TEST_SKIP("no python3 with pymongo (apt-get install python3-pymongo)");
    outbox_t *ob = test_outbox("pymongo");
    snprintf(cmd, sizeof cmd, "%s '%s/tests/envelope_writer.py' '%s' %s %s %d", python,
             srcdir ? srcdir : ".", uri, TEST_DB, outbox_name(ob), COUNT);
    if (test_run_command(cmd, &out) != 0)
        fail_msg("%s failed: %s", cmd, out);

    /* The writer printed the ids in insertion order. */
    bson_oid_t ids[COUNT];
    char *line = out;
    for (int i = 0; i < COUNT; i++) {
        assert_true(bson_oid_is_valid(line, 24));
        bson_oid_init_from_string(&ids[i], line);
        line += 25;
    }

    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    for (int i = 1; i <= COUNT; i++) {
        const outbox_event_t *ev;
        if (outbox_tail_next(tail, 2000, &ev, &err) != OUTBOX_OK)
            fail_msg("event %d: %s", i, err.message);
        assert_true(bson_oid_equal(outbox_event_id(ev), &ids[i - 1]));
        assert_string_equal(outbox_event_type(ev), "order.created");
        assert_int_equal(test_ordernr(ev), i);
        assert_int_equal(outbox_event_version(ev), 1);
        assert_true(outbox_event_created_ms(ev) > 0);
        if (i % 2) {
            assert_null(outbox_event_key(ev));
            assert_null(outbox_event_headers(ev));
        } else {
            char key[32], seq[16];
            bson_iter_t it;
            snprintf(key, sizeof key, "order-%d", i);
            snprintf(seq, sizeof seq, "%d", i);
            assert_string_equal(outbox_event_key(ev), key);
            assert_true(bson_iter_init_find(&it, outbox_event_headers(ev), "seq"));
            assert_string_equal(bson_iter_utf8(&it, NULL), seq);
        }
    }
    outbox_tail_destroy(tail);

    /* All share one created time: resuming after event 5 must give 6.. */
    int got[COUNT];
    tail = outbox_tail_new(ob, OUTBOX_TAIL_AFTER, &ids[4], &err);
    assert_int_equal(test_read_ordernrs(tail, got, COUNT, 500), COUNT - 5);
    for (int i = 0; i < COUNT - 5; i++)
        assert_int_equal(got[i], i + 6);
    outbox_tail_destroy(tail);
    free(out);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(python_events_tail_in_order_and_resume),
    };
    return TEST_RUN("envelope_other_driver", tests);
}
