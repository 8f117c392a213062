/*
 * test_concurrent_producers.c - several threads put at once while one tail
 * reads: the tail sees every event exactly once, and each producer's events
 * in the order that producer put them.
 */
#include "testlib.h"

#include <pthread.h>
#include <stdlib.h>

#define PRODUCERS 4
#define PER_PRODUCER_FULL 10000
static int per_producer; /* test_scaled(PER_PRODUCER_FULL), set by the test */
#define TOTAL (PRODUCERS * per_producer)

typedef struct {
    outbox_t *ob;
    int producer;
    int failures;
    char error[OUTBOX_ERROR_MESSAGE_SIZE];
} producer_t;

static void *produce(void *arg) {
    producer_t *p = arg;
    char key[16];
    snprintf(key, sizeof key, "producer-%d", p->producer);
    for (int i = 1; i <= per_producer; i++) {
        outbox_error_t err;
        bson_t *data = BCON_NEW("ordernr", BCON_INT32(p->producer * 100000 + i), "total", BCON_DOUBLE(1));
        if (outbox_put(p->ob, NULL, "order.created", key, data, NULL, NULL, &err) != OUTBOX_OK) {
            p->failures++;
            snprintf(p->error, sizeof p->error, "%s", err.message);
        }
        bson_destroy(data);
    }
    return NULL;
}

static void four_producers_one_tail_every_event_exactly_once(void **state) {
    outbox_error_t err;
    per_producer = test_scaled(PER_PRODUCER_FULL);
    outbox_t *ob = test_outbox("concurrent");
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    pthread_t threads[PRODUCERS];
    producer_t producers[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        producers[p] = (producer_t){.ob = ob, .producer = p + 1};
        assert_int_equal(pthread_create(&threads[p], NULL, produce, &producers[p]), 0);
    }

    int last_seq[PRODUCERS + 1] = {0};
    unsigned char *seen = calloc(PRODUCERS * per_producer + 1, 1);
    int received = 0, duplicates = 0, out_of_order = 0;
    const outbox_event_t *ev;
    outbox_code_t rc;
    /* Stop at TOTAL, or when nothing arrives for 10 s. */
    while (received < TOTAL && (rc = outbox_tail_next(tail, 10000, &ev, &err)) == OUTBOX_OK) {
        int nr = test_ordernr(ev);
        int p = nr / 100000, seq = nr % 100000;
        assert_in_range(p, 1, PRODUCERS);
        assert_in_range(seq, 1, per_producer);
        int slot = (p - 1) * per_producer + seq;
        if (seen[slot]++)
            duplicates++;
        if (seq <= last_seq[p])
            out_of_order++;
        last_seq[p] = seq;
        received++;
    }
    for (int p = 0; p < PRODUCERS; p++) {
        pthread_join(threads[p], NULL);
        if (producers[p].failures)
            fail_msg("producer %d: %d puts failed, last: %s", p + 1, producers[p].failures, producers[p].error);
    }
    /* Anything left after the producers finished? */
    while (outbox_tail_next(tail, 500, &ev, &err) == OUTBOX_OK)
        received++, duplicates++;
    int missing = 0;
    for (int i = 1; i <= TOTAL; i++)
        missing += !seen[i];
    print_message("# %d producers x %d puts: received %d, missing %d, duplicates %d, out of order %d\n",
                  PRODUCERS, per_producer, received, missing, duplicates, out_of_order);
    assert_int_equal(missing, 0);
    assert_int_equal(duplicates, 0);
    assert_int_equal(out_of_order, 0);
    assert_int_equal(received, TOTAL);
    free(seen);
    outbox_tail_destroy(tail);
    test_outbox_drop(ob);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(four_producers_one_tail_every_event_exactly_once),
    };
    return TEST_RUN("concurrent_producers", tests);
}
