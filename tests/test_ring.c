/* Unit tests for md_ring: order, full/empty edges, wrap-around, drain limits,
 * and a real two-thread run checking order and completeness. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_ring.h"

static md_tick tick_seq(uint64_t seq)
{
    md_tick t;

    memset(&t, 0, sizeof(t));
    t.type = MD_TICK_TRADE;
    t.flags = MD_TICK_F_SEQ;
    t.seq = seq;
    /* Something in the far end of the struct too, to catch partial copies. */
    t.source[MD_SOURCE_MAX] = (char)(seq & 0x7f);
    t.v[3].mant = (int64_t)seq * 7;
    return t;
}

/* Every third message an account record, with bytes set at its far end
 * (past the md_tick head) so a record copied or read as one slot fails. */
static md_acct msg_seq(uint64_t seq)
{
    md_acct a;

    memset(&a, 0, sizeof(a));
    a.t = tick_seq(seq);
    if (seq % 3 == 0) {
        a.t.type = MD_TICK_ORDER;
        a.ref[MD_REF_MAX] = (char)(seq & 0x7f);
        a.account[0] = (char)('A' + seq % 26);
        a.status = MD_ORDER_WORKING;
    }
    return a;
}

typedef struct collect {
    uint64_t got[64];
    size_t n;
    size_t bad; /* account records whose far bytes were not msg_seq's */
} collect;

static void collect_fn(void *ctx, const md_tick *t)
{
    collect *c = ctx;

    if (md_tick_is_account(t->type) &&
        md_tick_acct(t)->ref[MD_REF_MAX] != (char)(t->seq & 0x7f))
        c->bad++;
    if (c->n < 64)
        c->got[c->n] = t->seq;
    c->n++;
}

static void test_capacity_rounding(void **state)
{
    (void)state;
    md_ring r;
    static const uint32_t in[] = {0, 1, 2, 3, 4, 5, 1000, 1024, 1025};
    /* At least 4: an account record (2 slots) and its pad must fit. */
    static const uint64_t want[] = {4, 4, 4, 4, 4, 8, 1024, 1024, 2048};

    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        assert_int_equal(md_ring_init(&r, in[i]), 0);
        assert_int_equal(r.mask + 1, want[i]);
        md_ring_free(&r);
    }
}

static void test_push_drain_order(void **state)
{
    (void)state;
    md_ring r;
    collect c = {0};

    assert_int_equal(md_ring_init(&r, 8), 0);
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 0);
    for (uint64_t i = 1; i <= 5; i++) {
        md_tick t = tick_seq(i);
        assert_int_equal(md_ring_push(&r, &t), MD_RING_OK);
    }
    assert_int_equal(md_ring_size(&r), 5);
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 5);
    assert_int_equal(c.n, 5);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(c.got[i], i + 1);
    assert_int_equal(md_ring_size(&r), 0);
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 0);
    md_ring_free(&r);
}

static void test_full_at_capacity(void **state)
{
    (void)state;
    md_ring r;
    collect c = {0};
    md_tick t;

    assert_int_equal(md_ring_init(&r, 4), 0);
    for (uint64_t i = 0; i < 4; i++) {
        t = tick_seq(i);
        assert_int_equal(md_ring_push(&r, &t), MD_RING_OK);
    }
    t = tick_seq(99);
    assert_int_equal(md_ring_push(&r, &t), MD_RING_FULL);
    assert_int_equal(md_ring_push(&r, &t), MD_RING_FULL);
    assert_int_equal(md_ring_size(&r), 4);

    /* One slot freed -> exactly one more push fits. */
    assert_int_equal(md_ring_drain(&r, 1, collect_fn, &c), 1);
    assert_int_equal(c.got[0], 0);
    t = tick_seq(4);
    assert_int_equal(md_ring_push(&r, &t), MD_RING_OK);
    assert_int_equal(md_ring_push(&r, &t), MD_RING_FULL);

    /* The consumer works from its cached tail (3 left) and only re-reads
     * the shared one once that looks empty: the late push comes next call. */
    assert_int_equal(md_ring_drain(&r, 10, collect_fn, &c), 3);
    assert_int_equal(md_ring_drain(&r, 10, collect_fn, &c), 1);
    assert_int_equal(c.n, 5);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(c.got[i], i); /* 99 never went in */
    md_ring_free(&r);
}

static void test_drain_limit(void **state)
{
    (void)state;
    md_ring r;
    collect c = {0};

    assert_int_equal(md_ring_init(&r, 16), 0);
    for (uint64_t i = 0; i < 10; i++) {
        md_tick t = tick_seq(i);
        assert_int_equal(md_ring_push(&r, &t), MD_RING_OK);
    }
    assert_int_equal(md_ring_drain(&r, 3, collect_fn, &c), 3);
    assert_int_equal(md_ring_size(&r), 7);
    assert_int_equal(md_ring_drain(&r, 0, collect_fn, &c), 0);
    assert_int_equal(md_ring_drain(&r, 4, collect_fn, &c), 4);
    assert_int_equal(md_ring_drain(&r, 4, collect_fn, &c), 3);
    assert_int_equal(md_ring_drain(&r, 4, collect_fn, &c), 0);
    assert_int_equal(c.n, 10);
    for (uint64_t i = 0; i < 10; i++)
        assert_int_equal(c.got[i], i);
    md_ring_free(&r);
}

typedef struct check {
    uint64_t next;
    uint64_t bad;
    int mixed; /* messages come from msg_seq */
} check;

static void check_fn(void *ctx, const md_tick *t)
{
    check *c = ctx;

    if (t->seq != c->next || t->v[3].mant != (int64_t)t->seq * 7 ||
        t->source[MD_SOURCE_MAX] != (char)(t->seq & 0x7f))
        c->bad++;
    if (md_tick_is_account(t->type)) {
        const md_acct *a = md_tick_acct(t);
        if (t->seq % 3 != 0 || a->ref[MD_REF_MAX] != (char)(t->seq & 0x7f) ||
            a->account[0] != (char)('A' + t->seq % 26) || a->status != MD_ORDER_WORKING)
            c->bad++;
    } else if (c->mixed && t->seq % 3 == 0) {
        c->bad++;
    }
    c->next = t->seq + 1;
}

static void test_wraparound(void **state)
{
    (void)state;
    md_ring r;
    check c = {0, 0, 0};
    uint64_t seq = 0;

    /* Odd batch sizes against a ring of 8 so every slot boundary is hit
     * across 1000 laps. */
    assert_int_equal(md_ring_init(&r, 8), 0);
    for (int round = 0; round < 2000; round++) {
        size_t batch = (size_t)(round % 8) + 1;
        for (size_t i = 0; i < batch; i++) {
            md_tick t = tick_seq(seq++);
            assert_int_equal(md_ring_push(&r, &t), MD_RING_OK);
        }
        assert_int_equal(md_ring_size(&r), batch);
        assert_int_equal(md_ring_drain(&r, 64, check_fn, &c), batch);
    }
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.next, seq);
    assert_true(seq > 1000 * 8);
    md_ring_free(&r);
}

/* Enough for ~15,000 wraps of the 64-slot ring; more only adds run time
 * on a loaded 2-core CI machine (and 10x under sanitizers). */
#define MT_COUNT 1000000ULL

static void *producer(void *arg)
{
    md_ring *r = arg;

    for (uint64_t i = 0; i < MT_COUNT; i++) {
        md_acct a = msg_seq(i);
        while (md_ring_push(r, &a.t) == MD_RING_FULL)
            sched_yield(); /* with 2 cores the consumer may share ours */
    }
    return NULL;
}

static void test_two_threads(void **state)
{
    (void)state;
    md_ring r;
    pthread_t th;
    check c = {0, 0, 1};
    uint64_t total = 0;

    /* Small ring so the producer hits FULL and both caches get exercised. */
    assert_int_equal(md_ring_init(&r, 64), 0);
    assert_int_equal(pthread_create(&th, NULL, producer, &r), 0);
    while (total < MT_COUNT) {
        size_t n = md_ring_drain(&r, 37, check_fn, &c);
        if (!n) sched_yield();
        total += n;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(total, MT_COUNT);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.next, MT_COUNT);
    assert_int_equal(md_ring_size(&r), 0);
    md_ring_free(&r);
}

/* Account records take two slots and never wrap: one that would start in
 * the last slot is preceded by a pad slot, which counts against capacity
 * and which the consumer steps over. */
static void test_account_records(void **state)
{
    (void)state;
    md_ring r;
    collect c = {0};
    md_acct a;
    static const uint64_t first[] = {0, 1, 2, 3, 4}; /* 0 and 3 are accounts */

    assert_int_equal(md_ring_init(&r, 8), 0);
    for (size_t i = 0; i < 5; i++) {
        a = msg_seq(first[i]);
        assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    }
    assert_int_equal(md_ring_size(&r), 7);
    a = msg_seq(5);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    a = msg_seq(6);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_FULL);
    /* Draining the two-slot record frees exactly room for another. */
    assert_int_equal(md_ring_drain(&r, 1, collect_fn, &c), 1);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    /* The consumer finishes its cached view before it sees the late push. */
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 5);
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 1);
    assert_int_equal(md_ring_size(&r), 0);
    assert_int_equal(c.n, 7);
    for (uint64_t i = 0; i < 7; i++)
        assert_int_equal(c.got[i], i);

    /* Head and tail at slot 2 of a ring of 4... */
    md_ring_free(&r);
    memset(&c, 0, sizeof c);
    assert_int_equal(md_ring_init(&r, 4), 0);
    for (uint64_t s = 1; s <= 3; s++) { /* ticks 1, 2 and 4 in slots 0-2 */
        a = msg_seq(s == 3 ? 4 : s);
        assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    }
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 3);
    /* ...an account record at slot 3 pads it and lands in slots 0-1. */
    a = msg_seq(6);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    assert_int_equal(md_ring_size(&r), 3);
    a = msg_seq(7);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_OK);
    a = msg_seq(8);
    assert_int_equal(md_ring_push(&r, &a.t), MD_RING_FULL);
    assert_int_equal(md_ring_drain(&r, 100, collect_fn, &c), 2);
    assert_int_equal(md_ring_size(&r), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.got[3], 6);
    assert_int_equal(c.got[4], 7);
    assert_int_equal(c.bad, 0);
    md_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_rounding),
        cmocka_unit_test(test_push_drain_order),
        cmocka_unit_test(test_full_at_capacity),
        cmocka_unit_test(test_drain_limit),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_account_records),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
