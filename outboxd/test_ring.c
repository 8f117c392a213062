/*
 * test_ring.c - the shared reader's ring on its own (no server): it drops
 * its oldest entries by events and by bytes and never waits; a reference a
 * sink's window took keeps an entry alive after the ring dropped it; the id
 * index finds every entry it holds (after long churn too) and forgets
 * dropped ones; a gap mark is an entry a sink reads like any other.
 *
 * The entries are malformed documents (outboxd_shared_event_malformed):
 * they carry an id and a size like events, and need no tail to make.
 */
#include "ring.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An entry with an ObjectId _id (a fresh one in *id) and pad bytes. */
static outboxd_shared_event_t *entry(bson_oid_t *id, size_t pad) {
    bson_t doc = BSON_INITIALIZER;
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    if (id)
        bson_oid_copy(&oid, id);
    BSON_APPEND_OID(&doc, "_id", &oid);
    char *text = calloc(pad + 1, 1);
    memset(text, 'x', pad);
    BSON_APPEND_UTF8(&doc, "pad", text);
    free(text);
    outboxd_shared_event_t *se = outboxd_shared_event_malformed(&doc, "test entry");
    bson_destroy(&doc);
    return se;
}

static outboxd_shared_event_t *entry_without_id(void) {
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", "a string id");
    outboxd_shared_event_t *se = outboxd_shared_event_malformed(&doc, "no ObjectId");
    bson_destroy(&doc);
    return se;
}

static void drops_its_oldest_entries_at_its_event_limit(void **state) {
    (void)state;
    outboxd_ring_t *ring = outboxd_ring_new(4, 1 << 30);
    bson_oid_t ids[10];
    for (int i = 0; i < 10; i++)
        assert_int_equal(outboxd_ring_push(ring, entry(&ids[i], 10)), i);
    uint64_t oldest, next;
    outboxd_ring_bounds(ring, &oldest, &next);
    assert_int_equal(oldest, 6);
    assert_int_equal(next, 10);
    outboxd_shared_event_t *se;
    assert_int_equal(outboxd_ring_get(ring, 5, 0, &se), OUTBOXD_RING_EVICTED);
    assert_null(se);
    for (int i = 6; i < 10; i++) {
        assert_int_equal(outboxd_ring_get(ring, (uint64_t)i, 0, &se), OUTBOXD_RING_OK);
        assert_true(bson_oid_equal(&se->id, &ids[i]));
        outboxd_shared_event_unref(se);
    }
    assert_int_equal(outboxd_ring_get(ring, 10, 0, &se), OUTBOXD_RING_NOT_YET);
    size_t events, bytes;
    uint64_t evicted;
    outboxd_ring_figures(ring, &events, &bytes, &evicted);
    assert_int_equal(events, 4);
    assert_int_equal(evicted, 6);
    outboxd_ring_free(ring);
}

static void drops_its_oldest_entries_at_its_byte_limit_and_keeps_a_huge_one_alone(void **state) {
    (void)state;
    outboxd_shared_event_t *probe = entry(NULL, 1000);
    size_t one = probe->bytes;
    outboxd_shared_event_unref(probe);
    /* Room for three such entries, not four. */
    outboxd_ring_t *ring = outboxd_ring_new(1000, 3 * one + one / 2);
    for (int i = 0; i < 10; i++)
        outboxd_ring_push(ring, entry(NULL, 1000));
    size_t events, bytes;
    uint64_t evicted;
    outboxd_ring_figures(ring, &events, &bytes, &evicted);
    assert_int_equal(events, 3);
    assert_int_equal(bytes, 3 * one);
    assert_int_equal(evicted, 7);
    /* An entry larger than the whole limit: kept, alone. */
    bson_oid_t big;
    uint64_t seq = outboxd_ring_push(ring, entry(&big, 10 * one));
    outboxd_ring_figures(ring, &events, &bytes, &evicted);
    assert_int_equal(events, 1);
    outboxd_shared_event_t *se;
    assert_int_equal(outboxd_ring_get(ring, seq, 0, &se), OUTBOXD_RING_OK);
    assert_true(bson_oid_equal(&se->id, &big));
    outboxd_shared_event_unref(se);
    /* The next one pushes it out. */
    outboxd_ring_push(ring, entry(NULL, 1000));
    outboxd_ring_figures(ring, &events, &bytes, &evicted);
    assert_int_equal(events, 1);
    assert_int_equal(bytes, one);
    outboxd_ring_free(ring);
}

/* A sink's window holds its own reference: the entry outlives the ring's
 * (ASan and valgrind would see a use after free or a leak). */
static void a_windows_reference_keeps_an_entry_the_ring_dropped(void **state) {
    (void)state;
    outboxd_ring_t *ring = outboxd_ring_new(2, 1 << 30);
    bson_oid_t id;
    uint64_t seq = outboxd_ring_push(ring, entry(&id, 100));
    outboxd_shared_event_t *held;
    assert_int_equal(outboxd_ring_get(ring, seq, 0, &held), OUTBOXD_RING_OK);
    assert_int_equal(atomic_load(&held->refs), 2);
    outboxd_ring_push(ring, entry(NULL, 100));
    outboxd_ring_push(ring, entry(NULL, 100)); /* drops the first */
    outboxd_shared_event_t *se;
    assert_int_equal(outboxd_ring_get(ring, seq, 0, &se), OUTBOXD_RING_EVICTED);
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_true(bson_oid_equal(&held->id, &id));
    assert_non_null(held->raw);
    assert_string_equal(held->error, "test entry");
    outboxd_shared_event_unref(held);
    /* And the ring's last reference frees what no window took. */
    outboxd_ring_free(ring);
}

static void the_id_index_finds_what_the_ring_holds_and_forgets_what_it_dropped(void **state) {
    (void)state;
    enum { CAP = 64, N = 5000 };
    outboxd_ring_t *ring = outboxd_ring_new(CAP, 1 << 30);
    bson_oid_t *ids = calloc(N, sizeof *ids);
    for (int i = 0; i < N; i++) {
        outboxd_ring_push(ring, entry(&ids[i], 1));
        if (i % 7 == 3)
            outboxd_ring_push(ring, entry_without_id()); /* takes a place, not indexed */
    }
    uint64_t oldest, next, seq;
    outboxd_ring_bounds(ring, &oldest, &next);
    int found = 0;
    for (int i = 0; i < N; i++) {
        if (outboxd_ring_find(ring, &ids[i], &seq)) {
            outboxd_shared_event_t *se;
            assert_int_equal(outboxd_ring_get(ring, seq, 0, &se), OUTBOXD_RING_OK);
            assert_true(bson_oid_equal(&se->id, &ids[i]));
            outboxd_shared_event_unref(se);
            found++;
        }
    }
    /* Every entry with an id that the ring holds, and no other. */
    int held_with_id = 0;
    for (uint64_t s = oldest; s < next; s++) {
        outboxd_shared_event_t *se;
        assert_int_equal(outboxd_ring_get(ring, s, 0, &se), OUTBOXD_RING_OK);
        held_with_id += se->has_id;
        outboxd_shared_event_unref(se);
    }
    assert_int_equal(found, held_with_id);
    assert_true(found > CAP / 2);
    assert_false(outboxd_ring_find(ring, &ids[0], &seq));
    /* The newest of an id that is in the log twice. */
    bson_oid_t twice = ids[N - 1];
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_OID(&doc, "_id", &twice);
    uint64_t again = outboxd_ring_push(ring, outboxd_shared_event_malformed(&doc, "again"));
    bson_destroy(&doc);
    assert_true(outboxd_ring_find(ring, &twice, &seq));
    assert_int_equal(seq, again);
    free(ids);
    outboxd_ring_free(ring);
}

static void a_gap_mark_is_an_entry_with_its_reason(void **state) {
    (void)state;
    outboxd_ring_t *ring = outboxd_ring_new(8, 1 << 30);
    bson_oid_t before;
    outboxd_ring_push(ring, entry(&before, 1));
    uint64_t seq = outboxd_ring_push(ring, outboxd_shared_event_gap("gap in db.log: event X is no longer in the log"));
    outboxd_shared_event_t *se;
    assert_int_equal(outboxd_ring_get(ring, seq, 0, &se), OUTBOXD_RING_OK);
    assert_true(se->gap);
    assert_false(se->has_id);
    assert_null(se->ev);
    assert_string_equal(se->error, "gap in db.log: event X is no longer in the log");
    outboxd_shared_event_unref(se);
    /* The entry before the mark is found, and a sink on the ring after it
     * meets the mark next. */
    uint64_t at;
    assert_true(outboxd_ring_find(ring, &before, &at));
    assert_int_equal(at + 1, seq);
    outboxd_ring_free(ring);
}

typedef struct {
    outboxd_ring_t *ring;
    bson_oid_t id;
} pusher_t;

static void *push_later(void *arg) {
    pusher_t *p = arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    outboxd_ring_push(p->ring, entry(&p->id, 1));
    return NULL;
}

/* A sink at the ring's head waits for the next entry instead of polling. */
static void a_reader_at_the_head_is_woken_by_the_next_push(void **state) {
    (void)state;
    pusher_t p = {.ring = outboxd_ring_new(8, 1 << 30)};
    pthread_t t;
    pthread_create(&t, NULL, push_later, &p);
    outboxd_shared_event_t *se = NULL;
    outboxd_ring_rc_t rc;
    do
        rc = outboxd_ring_get(p.ring, 0, 10000, &se);
    while (rc == OUTBOXD_RING_NOT_YET); /* a spurious wake-up waits again */
    assert_int_equal(rc, OUTBOXD_RING_OK);
    pthread_join(t, NULL);
    assert_true(bson_oid_equal(&se->id, &p.id));
    outboxd_shared_event_unref(se);
    outboxd_ring_free(p.ring);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(drops_its_oldest_entries_at_its_event_limit),
        cmocka_unit_test(drops_its_oldest_entries_at_its_byte_limit_and_keeps_a_huge_one_alone),
        cmocka_unit_test(a_windows_reference_keeps_an_entry_the_ring_dropped),
        cmocka_unit_test(the_id_index_finds_what_the_ring_holds_and_forgets_what_it_dropped),
        cmocka_unit_test(a_gap_mark_is_an_entry_with_its_reason),
        cmocka_unit_test(a_reader_at_the_head_is_woken_by_the_next_push),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("outboxd_ring", tests, NULL, NULL);
}
