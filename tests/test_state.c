/* Unit tests for md_state (coalescer) and md_sources (liveness): the price
 * semantics of DESIGN.md, checked on exact stored decimals. */
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_state.h"

#define SEC 1000000000LL

static md_dec D(int64_t mant, int8_t exp)
{
    md_dec d = {mant, exp};
    return d;
}

#define NA md_dec_absent()

static md_tick mk(uint8_t type, const char *sym)
{
    md_tick t;

    memset(&t, 0, sizeof(t));
    t.type = type;
    t.sym_len = (uint8_t)strlen(sym);
    memcpy(t.symbol, sym, t.sym_len);
    for (int i = 0; i < 4; i++)
        t.v[i] = md_dec_absent();
    t.src_hash = 0xA;
    t.origin_ns = 1000;
    return t;
}

static md_tick quote(const char *sym, md_dec bid, md_dec ask)
{
    md_tick t = mk(MD_TICK_QUOTE, sym);

    t.v[MD_Q_BID] = bid;
    t.v[MD_Q_ASK] = ask;
    t.v[MD_Q_BID_SIZE] = D(3, 0);
    t.v[MD_Q_ASK_SIZE] = D(5, 0);
    return t;
}

static md_tick trade(const char *sym, md_dec price, md_dec size)
{
    md_tick t = mk(MD_TICK_TRADE, sym);

    t.v[MD_T_PRICE] = price;
    t.v[MD_T_SIZE] = size;
    return t;
}

static md_tick with_seq(md_tick t, uint64_t src, uint64_t seq)
{
    t.flags |= MD_TICK_F_SEQ;
    t.src_hash = src;
    t.seq = seq;
    return t;
}

static md_tick with_ts(md_tick t, int64_t ts)
{
    t.flags |= MD_TICK_F_TS;
    t.ts_ns = ts;
    return t;
}

static void assert_dec(md_dec got, const char *want)
{
    char buf[32];

    assert_true(md_dec_format(got, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, want);
}

static md_sym *find(md_state *st, const char *sym)
{
    return md_state_find(st, sym, strlen(sym));
}

static md_apply_result apply(md_state *st, md_tick t) { return md_state_apply(st, &t, 0); }

/* Pops everything; returns how many were queued. */
static int drain_dirty(md_state *st)
{
    int n = 0;

    while (md_state_pop_dirty(st))
        n++;
    return n;
}

static void test_hash(void **state)
{
    (void)state;
    assert_true(md_sym_hash("MNQZ5", 5) != 0);
    assert_true(md_sym_hash("", 0) != 0);
    assert_int_equal(md_sym_hash("MNQZ5", 5), md_sym_hash("MNQZ5xyz", 5));
    assert_true(md_sym_hash("MNQZ5", 5) != md_sym_hash("MNQH6", 5));
}

static void test_init_sizes(void **state)
{
    (void)state;
    md_state st;

    assert_int_equal(md_state_init(&st, 0), -1);
    assert_int_equal(md_state_init(&st, 1), 0);
    assert_int_equal(st.mask + 1, 2);
    md_state_free(&st);
    assert_int_equal(md_state_init(&st, 3), 0);
    assert_int_equal(st.mask + 1, 8);
    md_state_free(&st);
    assert_int_equal(md_state_init(&st, 1000), 0);
    assert_int_equal(st.mask + 1, 2048);
    assert_int_equal(st.max_keys, 1000);
    md_state_free(&st);
}

static void test_new_symbol_all_absent(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_null(find(&st, "MNQZ5"));
    assert_int_equal(apply(&st, quote("MNQZ5", D(2100000, -2), NA)), MD_APPLY_OK);
    s = find(&st, "MNQZ5");
    assert_non_null(s);
    assert_string_equal(s->symbol, "MNQZ5");
    assert_int_equal(s->sym_len, 5);
    assert_dec(s->bid, "21000.00");
    assert_false(md_dec_present(s->ask));
    assert_false(md_dec_present(s->last));
    assert_false(md_dec_present(s->volume));
    assert_false(md_dec_present(s->high));
    assert_false(md_dec_present(s->low));
    assert_int_equal(s->has_ts, 0);
    assert_int_equal(s->src_hash, 0xA);
    assert_int_equal(st.count, 1);
    assert_int_equal(st.stats.applied, 1);
    md_state_free(&st);
}

static void test_latest_wins_absent_kept(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, quote("ES", D(500025, -2), D(500050, -2))), MD_APPLY_OK);
    assert_int_equal(apply(&st, quote("ES", D(500000, -2), NA)), MD_APPLY_OK);
    s = find(&st, "ES");
    assert_dec(s->bid, "5000.00");
    assert_dec(s->ask, "5000.50"); /* absent ask kept the previous one */
    assert_int_equal(apply(&st, quote("ES", NA, D(50010, -1))), MD_APPLY_OK);
    assert_dec(s->bid, "5000.00");
    assert_dec(s->ask, "5001.0");
    /* A trade does not touch bid/ask; a quote does not touch last. */
    assert_int_equal(apply(&st, trade("ES", D(50005, -1), D(1, 0))), MD_APPLY_OK);
    assert_dec(s->last, "5000.5");
    assert_dec(s->bid, "5000.00");
    assert_int_equal(apply(&st, quote("ES", D(4999, 0), D(5002, 0))), MD_APPLY_OK);
    assert_dec(s->last, "5000.5");
    assert_dec(s->bid, "4999");
    /* Trade with no size: price updates, volume unchanged. */
    assert_int_equal(apply(&st, trade("ES", D(5001, 0), NA)), MD_APPLY_OK);
    assert_dec(s->last, "5001");
    assert_dec(s->volume, "1");
    assert_int_equal(st.count, 1);
    md_state_free(&st);
}

static void test_volume_exact_and_high_low(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, trade("BTCUSDT", D(9000050, -2), D(5, -1))), MD_APPLY_OK);
    s = find(&st, "BTCUSDT");
    assert_dec(s->volume, "0.5");
    assert_dec(s->high, "90000.50");
    assert_dec(s->low, "90000.50");
    assert_int_equal(apply(&st, trade("BTCUSDT", D(90100, 0), D(123, -5))), MD_APPLY_OK);
    assert_dec(s->volume, "0.50123");
    assert_dec(s->last, "90100");
    assert_dec(s->high, "90100");
    assert_dec(s->low, "90000.50");
    assert_int_equal(apply(&st, trade("BTCUSDT", D(899999, -1), D(1, 0))), MD_APPLY_OK);
    assert_dec(s->volume, "1.50123");
    assert_dec(s->last, "89999.9");
    assert_dec(s->high, "90100");
    assert_dec(s->low, "89999.9");
    /* Numerically equal to the high: the stored high keeps its own form. */
    assert_int_equal(apply(&st, trade("BTCUSDT", D(9010000, -2), D(0, 0))), MD_APPLY_OK);
    assert_dec(s->last, "90100.00");
    assert_dec(s->high, "90100");
    md_state_free(&st);
}

static void test_negative_prices(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    /* Spreads and some futures (oil, 2020) trade below zero. */
    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, trade("CLK0", D(-3763, -2), D(1, 0))), MD_APPLY_OK);
    assert_int_equal(apply(&st, trade("CLK0", D(-1, 0), D(1, 0))), MD_APPLY_OK);
    assert_int_equal(apply(&st, trade("CLK0", D(-40, 0), D(1, 0))), MD_APPLY_OK);
    s = find(&st, "CLK0");
    assert_dec(s->high, "-1");
    assert_dec(s->low, "-40");
    assert_dec(s->last, "-40");
    assert_dec(s->volume, "3");
    md_state_free(&st);
}

static void test_overflow(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;
    md_tick t;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, trade("X", D(10, 0), D(INT64_MAX - 5, 0))), MD_APPLY_OK);
    st.stats.applied = 0;
    t = with_seq(with_ts(trade("X", D(99, 0), D(6, 0)), 5 * SEC), 0xB, 1);
    assert_int_equal(apply(&st, t), MD_APPLY_OVERFLOW);
    s = find(&st, "X");
    /* Nothing changed: not last, not high, not ts, not the seq record. */
    assert_int_equal(s->volume.mant, INT64_MAX - 5);
    assert_dec(s->last, "10");
    assert_dec(s->high, "10");
    assert_int_equal(s->has_ts, 0);
    assert_int_equal(s->seen[0].src, 0);
    assert_int_equal(st.stats.overflow, 1);
    assert_int_equal(st.stats.applied, 0);
    /* Finer exponent scaling overflows too. */
    assert_int_equal(apply(&st, trade("X", D(10, 0), D(1, -1))), MD_APPLY_OVERFLOW);
    assert_int_equal(apply(&st, trade("X", D(10, 0), D(5, 0))), MD_APPLY_OK);
    assert_int_equal(s->volume.mant, INT64_MAX);
    md_state_free(&st);
}

static void test_ts_max(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, with_ts(quote("A", D(1, 0), D(2, 0)), 2000 * SEC)), MD_APPLY_OK);
    s = find(&st, "A");
    assert_int_equal(s->has_ts, 1);
    assert_int_equal(s->ts_ns, 2000 * SEC);
    /* An older exchange time does not move Timestamp back, but the values
     * of the tick still apply (latest arrival wins; seq guards order). */
    assert_int_equal(apply(&st, with_ts(quote("A", D(3, 0), NA), 1000 * SEC)), MD_APPLY_OK);
    assert_int_equal(s->ts_ns, 2000 * SEC);
    assert_dec(s->bid, "3");
    assert_int_equal(apply(&st, with_ts(trade("A", D(3, 0), D(1, 0)), 2001 * SEC)), MD_APPLY_OK);
    assert_int_equal(s->ts_ns, 2001 * SEC);
    /* No ts flag: ts untouched even though the field holds garbage. */
    md_tick t = quote("A", D(4, 0), NA);
    t.ts_ns = 9999 * SEC;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_int_equal(s->ts_ns, 2001 * SEC);
    md_state_free(&st);
}

static void test_seq_duplicates(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, with_seq(quote("A", D(10, 0), D(11, 0)), 0xA, 17)), MD_APPLY_OK);
    s = find(&st, "A");
    assert_int_equal(drain_dirty(&st), 1);
    /* Same seq and older seq from the same source: dropped, nothing moves. */
    assert_int_equal(apply(&st, with_seq(quote("A", D(9, 0), D(12, 0)), 0xA, 17)),
                     MD_APPLY_DUPLICATE);
    assert_int_equal(apply(&st, with_seq(trade("A", D(9, 0), D(1, 0)), 0xA, 3)),
                     MD_APPLY_DUPLICATE);
    assert_int_equal(st.stats.duplicate, 2);
    assert_dec(s->bid, "10");
    assert_false(md_dec_present(s->last));
    assert_false(md_dec_present(s->volume));
    assert_int_equal(s->dirty, 0);
    assert_null(md_state_pop_dirty(&st));
    /* Newer from the same source: accepted. */
    assert_int_equal(apply(&st, with_seq(quote("A", D(12, 0), NA), 0xA, 18)), MD_APPLY_OK);
    assert_dec(s->bid, "12");
    /* A lower seq from a different source is its own sequence: accepted. */
    assert_int_equal(apply(&st, with_seq(quote("A", D(13, 0), NA), 0xB, 2)), MD_APPLY_OK);
    assert_dec(s->bid, "13");
    assert_int_equal(s->src_hash, 0xB);
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 0xB, 2)), MD_APPLY_DUPLICATE);
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 0xA, 18)), MD_APPLY_DUPLICATE);
    /* Ticks without seq are never considered duplicates. */
    assert_int_equal(apply(&st, quote("A", D(14, 0), NA)), MD_APPLY_OK);
    assert_dec(s->bid, "14");
    /* Sequences are per symbol. */
    assert_int_equal(apply(&st, with_seq(quote("B", D(1, 0), NA), 0xA, 1)), MD_APPLY_OK);
    md_state_free(&st);
}

static void test_seq_source_hash_zero(void **state)
{
    (void)state;
    md_state st;

    /* src_hash 0 must not be mistaken for an empty seen[] slot. */
    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, quote("A", D(1, 0), NA)), MD_APPLY_OK);
    assert_int_equal(apply(&st, with_seq(quote("A", D(2, 0), NA), 0, 0)), MD_APPLY_OK);
    assert_int_equal(apply(&st, with_seq(quote("A", D(3, 0), NA), 0, 0)), MD_APPLY_DUPLICATE);
    assert_int_equal(apply(&st, with_seq(quote("A", D(3, 0), NA), 0, 1)), MD_APPLY_OK);
    md_state_free(&st);
}

static void test_seen_slot_replacement(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    /* Sources 1..4 fill the slots; source 1 is then the least recent. */
    for (uint64_t src = 1; src <= MD_SEQ_SLOTS; src++)
        assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), src, 100)), MD_APPLY_OK);
    s = find(&st, "A");
    assert_int_equal(s->seen[0].src, MD_SEQ_SLOTS);
    assert_int_equal(s->seen[MD_SEQ_SLOTS - 1].src, 1);
    /* Touching source 1 makes source 2 the least recent. */
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 1, 101)), MD_APPLY_OK);
    assert_int_equal(s->seen[0].src, 1);
    assert_int_equal(s->seen[0].seq, 101);
    assert_int_equal(s->seen[MD_SEQ_SLOTS - 1].src, 2);
    /* A fifth source evicts source 2 ... */
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 99, 5)), MD_APPLY_OK);
    assert_int_equal(s->seen[0].src, 99);
    for (int i = 0; i < MD_SEQ_SLOTS; i++)
        assert_true(s->seen[i].src != 2);
    /* ... whose old seq is then forgotten (documented trade-off), while the
     * sources still tracked keep rejecting replays. */
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 2, 50)), MD_APPLY_OK);
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 1, 101)), MD_APPLY_DUPLICATE);
    assert_int_equal(apply(&st, with_seq(quote("A", D(1, 0), NA), 99, 5)), MD_APPLY_DUPLICATE);
    md_state_free(&st);
}

static void test_reset_one_and_all(void **state)
{
    (void)state;
    md_state st;
    md_sym *a, *b;
    md_tick r;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, with_seq(trade("A", D(105, -1), D(2, 0)), 0xA, 50)), MD_APPLY_OK);
    assert_int_equal(apply(&st, quote("A", D(10, 0), D(11, 0))), MD_APPLY_OK);
    assert_int_equal(apply(&st, with_seq(trade("B", D(7, 0), D(3, 0)), 0xA, 60)), MD_APPLY_OK);
    a = find(&st, "A");
    b = find(&st, "B");
    assert_int_equal(drain_dirty(&st), 2);
    a->last_good_due = 0;

    r = mk(MD_TICK_RESET, "A");
    r.origin_ns = 777;
    assert_int_equal(apply(&st, r), MD_APPLY_OK);
    assert_int_equal(st.stats.resets, 1);
    assert_int_equal(a->volume.mant, 0);
    assert_int_equal(a->volume.exp, 0);
    assert_dec(a->volume, "0");
    assert_false(md_dec_present(a->high));
    assert_false(md_dec_present(a->low));
    assert_dec(a->last, "10.5");
    assert_dec(a->bid, "10");
    assert_dec(a->ask, "11");
    assert_int_equal(a->seen[0].src, 0);
    assert_int_equal(a->dirty, 1);
    assert_int_equal(a->last_good_due, 1);
    assert_int_equal(a->first_dirty_ns, 777);
    assert_dec(b->volume, "3"); /* other symbols untouched */
    assert_ptr_equal(md_state_pop_dirty(&st), a);
    assert_null(md_state_pop_dirty(&st));
    /* New session: seq restarts and is accepted. */
    assert_int_equal(apply(&st, with_seq(trade("A", D(11, 0), D(1, 0)), 0xA, 1)), MD_APPLY_OK);
    assert_dec(a->volume, "1");
    assert_dec(a->high, "11");
    assert_int_equal(apply(&st, with_seq(trade("B", D(8, 0), D(1, 0)), 0xA, 1)),
                     MD_APPLY_DUPLICATE);
    drain_dirty(&st);

    r = mk(MD_TICK_RESET, "*");
    assert_int_equal(apply(&st, r), MD_APPLY_OK);
    assert_int_equal(st.stats.resets, 2);
    assert_dec(a->volume, "0");
    assert_dec(b->volume, "0");
    assert_false(md_dec_present(b->high));
    assert_dec(b->last, "7");
    assert_int_equal(drain_dirty(&st), 2);
    assert_int_equal(apply(&st, with_seq(trade("B", D(8, 0), D(1, 0)), 0xA, 1)), MD_APPLY_OK);
    /* Volume after reset sums from exact zero at the trade's exponent. */
    assert_int_equal(apply(&st, trade("B", D(8, 0), D(25, -2))), MD_APPLY_OK);
    assert_dec(b->volume, "1.25");
    md_state_free(&st);
}

static void test_reset_unknown_symbol(void **state)
{
    (void)state;
    md_state st;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, quote("A", D(1, 0), NA)), MD_APPLY_OK);
    drain_dirty(&st);
    assert_int_equal(apply(&st, mk(MD_TICK_RESET, "NOPE")), MD_APPLY_OK);
    assert_null(find(&st, "NOPE"));
    assert_int_equal(st.count, 1);
    assert_null(md_state_pop_dirty(&st));
    assert_int_equal(st.stats.resets, 1); /* reset events received */
    md_state_free(&st);
}

static void test_ignored_types(void **state)
{
    (void)state;
    md_state st;
    md_tick t;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, mk(MD_TICK_HEARTBEAT, "A")), MD_APPLY_IGNORED);
    assert_int_equal(apply(&st, mk(MD_TICK_NONE, "A")), MD_APPLY_IGNORED);
    assert_int_equal(apply(&st, mk(200, "A")), MD_APPLY_IGNORED);
    t = quote("A", D(1, 0), NA);
    t.sym_len = 0;
    assert_int_equal(apply(&st, t), MD_APPLY_IGNORED);
    t.sym_len = MD_SYMBOL_MAX + 1;
    assert_int_equal(apply(&st, t), MD_APPLY_IGNORED);
    assert_int_equal(st.count, 0);
    assert_null(md_state_pop_dirty(&st));
    md_state_free(&st);
}

static void test_max_keys(void **state)
{
    (void)state;
    md_state st;
    char sym[8];

    assert_int_equal(md_state_init(&st, 3), 0);
    for (int i = 0; i < 3; i++) {
        sym[0] = (char)('A' + i);
        sym[1] = '\0';
        assert_int_equal(apply(&st, trade(sym, D(i, 0), D(1, 0))), MD_APPLY_OK);
    }
    assert_int_equal(drain_dirty(&st), 3);
    assert_int_equal(apply(&st, trade("D", D(1, 0), D(1, 0))), MD_APPLY_FULL);
    assert_int_equal(apply(&st, quote("EEEE", D(1, 0), NA)), MD_APPLY_FULL);
    assert_int_equal(st.stats.full, 2);
    assert_int_equal(st.count, 3);
    assert_null(find(&st, "D"));
    assert_null(md_state_pop_dirty(&st));
    /* Existing keys still update with the table full. */
    assert_int_equal(apply(&st, trade("B", D(42, 0), D(2, 0))), MD_APPLY_OK);
    assert_dec(find(&st, "B")->last, "42");
    assert_dec(find(&st, "B")->volume, "3");
    assert_ptr_equal(md_state_pop_dirty(&st), find(&st, "B"));
    md_state_free(&st);
}

static void test_many_keys_distinct(void **state)
{
    (void)state;
    md_state st;
    char sym[16];

    /* Enough keys to force probe chains; every key must stay distinct. */
    assert_int_equal(md_state_init(&st, 5000), 0);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(sym, sizeof(sym), "S%d", i);
        md_tick t = trade(sym, D(i, 0), D(i + 1, 0));
        assert_int_equal(n, (int)t.sym_len);
        assert_int_equal(apply(&st, t), MD_APPLY_OK);
    }
    assert_int_equal(st.count, 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(sym, sizeof(sym), "S%d", i);
        md_sym *s = find(&st, sym);
        assert_non_null(s);
        assert_int_equal(s->last.mant, i);
        assert_int_equal(s->volume.mant, i + 1);
    }
    assert_int_equal(drain_dirty(&st), 5000);
    md_state_free(&st);
}

static void test_dirty_once_fifo(void **state)
{
    (void)state;
    md_state st;
    md_tick t;
    md_sym *a, *b, *c;

    assert_int_equal(md_state_init(&st, 3), 0);
    t = quote("A", D(1, 0), NA);
    t.origin_ns = 100;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("B", D(1, 0), NA);
    t.origin_ns = 200;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("A", D(2, 0), NA);
    t.origin_ns = 300;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("C", D(1, 0), NA);
    t.origin_ns = 400;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    a = find(&st, "A");
    b = find(&st, "B");
    c = find(&st, "C");
    assert_int_equal(st.dq_len, 3);
    /* first_dirty_ns is the oldest unwritten tick, not the newest. */
    assert_int_equal(a->first_dirty_ns, 100);
    assert_int_equal(a->last_good_due, 1);
    assert_ptr_equal(md_state_pop_dirty(&st), a);
    assert_int_equal(a->dirty, 0);
    /* Requeue A behind B and C; the queue wraps around its storage. */
    t = quote("A", D(3, 0), NA);
    t.origin_ns = 500;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_int_equal(a->first_dirty_ns, 500);
    assert_ptr_equal(md_state_pop_dirty(&st), b);
    assert_ptr_equal(md_state_pop_dirty(&st), c);
    assert_ptr_equal(md_state_pop_dirty(&st), a);
    assert_null(md_state_pop_dirty(&st));
    /* Explicit mark is idempotent too; its first_dirty_ns 0 = not a tick. */
    md_state_mark_dirty(&st, b);
    md_state_mark_dirty(&st, b);
    assert_int_equal(b->first_dirty_ns, 0);
    assert_ptr_equal(md_state_pop_dirty(&st), b);
    assert_null(md_state_pop_dirty(&st));
    md_state_free(&st);
}

static void test_unchanged_not_queued(void **state)
{
    (void)state;
    md_state st;
    md_sym *s;
    md_tick t;

    assert_int_equal(md_state_init(&st, 4), 0);
    t = with_ts(quote("A", D(10, 0), D(11, 0)), 5 * SEC);
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    s = find(&st, "A");
    assert_int_equal(drain_dirty(&st), 1);
    s->last_good_due = 0;
    /* Same prices (sizes differ, not stored), same millisecond: nothing a
     * reader could see changed. */
    t.v[MD_Q_BID_SIZE] = D(99, 0);
    t.ts_ns = 5 * SEC + 999;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_int_equal(s->ts_ns, 5 * SEC + 999);
    assert_int_equal(s->dirty, 0);
    assert_int_equal(s->last_good_due, 0);
    /* Same numeric price, different written form: that is visible. */
    t.v[MD_Q_BID] = D(100, -1);
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_int_equal(s->dirty, 1);
    drain_dirty(&st);
    /* Next millisecond: visible (Timestamp moves). */
    t.ts_ns = 5 * SEC + 1000000;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_int_equal(s->dirty, 1);
    assert_int_equal(s->last_good_due, 1);
    md_state_free(&st);
}

static void test_mark_all_dirty(void **state)
{
    (void)state;
    md_state st;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(apply(&st, quote("A", D(1, 0), NA)), MD_APPLY_OK);
    assert_int_equal(apply(&st, quote("B", D(1, 0), NA)), MD_APPLY_OK);
    assert_int_equal(apply(&st, quote("C", D(1, 0), NA)), MD_APPLY_OK);
    assert_int_equal(drain_dirty(&st), 3);
    assert_int_equal(apply(&st, quote("B", D(2, 0), NA)), MD_APPLY_OK);
    md_state_mark_all_dirty(&st);
    assert_int_equal(st.dq_len, 3); /* B not queued twice */
    assert_ptr_equal(md_state_pop_dirty(&st), find(&st, "B"));
    assert_int_equal(drain_dirty(&st), 2);
    md_state_free(&st);
}

/* After a reconnect only keys of live sources (and never-written keys) are
 * queued: a quiet source's key must not come back with a fresh TTL. */
static void test_mark_live_dirty(void **state)
{
    (void)state;
    md_state st;
    md_sources src;
    md_tick t;
    md_sym *s;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(md_sources_init(&src, 4), 0);
    t = quote("LIVE", D(1, 0), NA);
    t.src_hash = 0x111;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("DEAD", D(1, 0), NA);
    t.src_hash = 0x222;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("NEW", D(1, 0), NA);
    t.src_hash = 0x222;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    while ((s = md_state_pop_dirty(&st)) != NULL)
        if (strcmp(s->symbol, "NEW") != 0) s->written_ns = 1 * SEC;
    assert_true(md_sources_touch(&src, 0x111, 9 * SEC));
    assert_true(md_sources_touch(&src, 0x222, 1 * SEC));
    assert_int_equal(md_state_mark_live_dirty(&st, &src, 10 * SEC, 3 * SEC), 2);
    assert_int_equal(st.dq_len, 2);
    assert_ptr_equal(md_state_pop_dirty(&st), find(&st, "LIVE"));
    assert_ptr_equal(md_state_pop_dirty(&st), find(&st, "NEW"));
    /* Already queued keys are not counted or queued twice. */
    md_state_mark_dirty(&st, find(&st, "LIVE"));
    assert_int_equal(md_state_mark_live_dirty(&st, &src, 10 * SEC, 3 * SEC), 1);
    assert_int_equal(st.dq_len, 2);
    md_sources_free(&src);
    md_state_free(&st);
}

/* Marks everything written at `when`, as the batch writer would. */
static void write_all(md_state *st, int64_t when)
{
    md_sym *s;

    while ((s = md_state_pop_dirty(st)) != NULL)
        s->written_ns = when;
}

static void test_sweep_refresh_liveness(void **state)
{
    (void)state;
    md_state st;
    md_sources src;
    md_tick t;
    const int64_t refresh = 4 * SEC, timeout = 3 * SEC;

    assert_int_equal(md_state_init(&st, 8), 0);
    assert_int_equal(md_sources_init(&src, 4), 0);
    t = quote("LIVE", D(1, 0), NA);
    t.src_hash = 0x111;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    t = quote("DEAD", D(1, 0), NA);
    t.src_hash = 0x222;
    assert_int_equal(apply(&st, t), MD_APPLY_OK);
    assert_true(md_sources_touch(&src, 0x111, 1 * SEC));
    assert_true(md_sources_touch(&src, 0x222, 1 * SEC));
    write_all(&st, 1 * SEC);

    /* Too early: nothing. */
    assert_int_equal(md_state_sweep(&st, 4 * SEC, 1000, refresh, &src, timeout, 0), 0);
    /* 0x111 keeps talking (heartbeats), 0x222 goes quiet. */
    assert_true(md_sources_touch(&src, 0x111, 4 * SEC));
    assert_int_equal(md_state_sweep(&st, 5 * SEC, 1000, refresh, &src, timeout, 0), 1);
    md_sym *s = md_state_pop_dirty(&st);
    assert_ptr_equal(s, find(&st, "LIVE"));
    assert_int_equal(s->first_dirty_ns, 0);
    assert_null(md_state_pop_dirty(&st));
    assert_int_equal(st.stats.refreshes, 1);
    s->written_ns = 5 * SEC;
    /* The dead source's key is never re-queued: it must expire. */
    assert_int_equal(md_state_sweep(&st, 8 * SEC, 1000, refresh, &src, timeout, 0), 0);
    assert_int_equal(md_state_sweep(&st, 100 * SEC, 1000, refresh, &src, timeout, 0), 0);
    /* Already dirty keys are not counted again. */
    assert_true(md_sources_touch(&src, 0x111, 100 * SEC));
    md_state_mark_dirty(&st, find(&st, "LIVE"));
    assert_int_equal(md_state_sweep(&st, 100 * SEC, 1000, refresh, &src, timeout, 0), 0);
    write_all(&st, 100 * SEC);
    /* Never written and not queued: queued whatever the source does. */
    find(&st, "DEAD")->written_ns = 0;
    assert_int_equal(md_state_sweep(&st, 100 * SEC, 1000, refresh, &src, timeout, 0), 1);
    assert_ptr_equal(md_state_pop_dirty(&st), find(&st, "DEAD"));
    md_sources_free(&src);
    md_state_free(&st);
}

static void test_sweep_budget_cursor(void **state)
{
    (void)state;
    md_state st;
    char sym[4] = "K0";
    md_sym *k[6];

    /* The sweep walks the symbols (dense, insertion order), not the index:
     * 4 keys, a budget of 3 visits K0 K1 K2, then K3 K0 K1 (K0 and K1
     * already queued, so not counted). */
    assert_int_equal(md_state_init(&st, 6), 0);
    assert_int_equal(md_state_sweep(&st, 10 * SEC, 5, SEC, NULL, SEC, 0), 0); /* empty */
    assert_int_equal(st.sweep_pos, 0);
    for (int i = 0; i < 4; i++) {
        sym[1] = (char)('0' + i);
        assert_int_equal(apply(&st, quote(sym, D(1, 0), NA)), MD_APPLY_OK);
        k[i] = find(&st, sym);
        assert_ptr_equal(k[i], &st.syms[i]);
    }
    write_all(&st, 1);
    assert_int_equal(md_state_sweep(&st, 10 * SEC, 3, SEC, NULL, SEC, 0), 3);
    assert_int_equal(st.sweep_pos, 3);
    assert_int_equal(md_state_sweep(&st, 10 * SEC, 3, SEC, NULL, SEC, 0), 1);
    assert_int_equal(st.sweep_pos, 2);
    assert_int_equal(st.dq_len, 4);
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(md_state_pop_dirty(&st), k[i]);
    /* A budget above count visits each symbol exactly once: cursor back in
     * place, every key queued once, in lap order from the cursor. */
    write_all(&st, 10 * SEC);
    assert_int_equal(md_state_sweep(&st, 20 * SEC, 0, SEC, NULL, SEC, 0), 0);
    assert_int_equal(md_state_sweep(&st, 20 * SEC, 1000, SEC, NULL, SEC, 0), 4);
    assert_int_equal(st.sweep_pos, 2);
    assert_int_equal(st.stats.refreshes, 8);
    assert_ptr_equal(md_state_pop_dirty(&st), k[2]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[3]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[0]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[1]);
    assert_null(md_state_pop_dirty(&st));
    /* New symbols join the lap where they were appended: from cursor 2 a
     * budget of 4 visits K2 K3 K4 K5 (K4, K5 still queued from their first
     * tick, so not counted), then K0 K1. */
    write_all(&st, 10 * SEC);
    for (int i = 4; i < 6; i++) {
        sym[1] = (char)('0' + i);
        assert_int_equal(apply(&st, quote(sym, D(1, 0), NA)), MD_APPLY_OK);
        k[i] = find(&st, sym);
        assert_ptr_equal(k[i], &st.syms[i]);
    }
    assert_int_equal(md_state_sweep(&st, 20 * SEC, 4, SEC, NULL, SEC, 0), 2);
    assert_int_equal(st.sweep_pos, 0);
    assert_int_equal(md_state_sweep(&st, 20 * SEC, 2, SEC, NULL, SEC, 0), 2);
    assert_int_equal(st.sweep_pos, 2);
    assert_ptr_equal(md_state_pop_dirty(&st), k[4]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[5]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[2]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[3]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[0]);
    assert_ptr_equal(md_state_pop_dirty(&st), k[1]);
    assert_null(md_state_pop_dirty(&st));
    md_state_free(&st);
}

/* Memory follows symbols seen only if symbols are stored densely, in
 * arrival order, and never move: checked here on a table filled to
 * max_keys (not a power of two, so the index has spare slots). */
static void test_dense_layout_full(void **state)
{
    (void)state;
    md_state st;
    char sym[16];
    const uint32_t n = 3000;
    md_sym *first;
    uint32_t visited = 0, calls = 0;

    assert_int_equal(md_state_init(&st, n), 0);
    assert_int_equal(st.mask + 1, 8192);
    assert_non_null(st.syms);
    assert_int_equal(apply(&st, trade("S0", D(0, 0), D(1, 0))), MD_APPLY_OK);
    first = find(&st, "S0");
    assert_ptr_equal(first, &st.syms[0]);
    for (uint32_t i = 1; i < n; i++) {
        snprintf(sym, sizeof(sym), "S%u", (unsigned)i);
        assert_int_equal(apply(&st, trade(sym, D(i, 0), D(1, 0))), MD_APPLY_OK);
        assert_int_equal(st.count, i + 1);
    }
    assert_int_equal(apply(&st, trade("ONE_TOO_MANY", D(1, 0), D(1, 0))), MD_APPLY_FULL);
    assert_int_equal(st.count, n);
    /* Dense order is insertion order, and lookups land on those entries. */
    for (uint32_t i = 0; i < n; i++) {
        int len = snprintf(sym, sizeof(sym), "S%u", (unsigned)i);
        md_sym *s = find(&st, sym);
        assert_ptr_equal(s, &st.syms[i]);
        assert_int_equal(s->sym_len, len);
        assert_string_equal(s->symbol, sym);
        assert_int_equal(s->last.mant, i);
        assert_int_equal(s->hash, md_sym_hash(sym, (size_t)len));
    }
    assert_ptr_equal(find(&st, "S0"), first); /* never moved */
    assert_null(find(&st, "ONE_TOO_MANY"));
    assert_null(find(&st, "S3000"));
    /* The index holds exactly count entries, each naming a distinct symbol
     * whose hash tag it carries. */
    uint32_t used = 0;
    for (uint32_t i = 0; i <= st.mask; i++) {
        uint64_t e = st.slots[i];
        if (e == 0)
            continue;
        used++;
        assert_true((uint32_t)e >= 1 && (uint32_t)e <= n);
        assert_int_equal(e >> 32, st.syms[(uint32_t)e - 1].hash >> 32);
    }
    assert_int_equal(used, n);
    /* The dirty queue yields dense entries in arrival order. */
    for (uint32_t i = 0; i < n; i++)
        assert_ptr_equal(md_state_pop_dirty(&st), &st.syms[i]);
    assert_null(md_state_pop_dirty(&st));
    /* A full sweep cycle visits exactly count entries: with an odd budget
     * every symbol is queued once, in dense order, and the cursor comes
     * back to 0 after exactly n visits. */
    write_all(&st, 1);
    while (visited < n) {
        uint32_t b = n - visited < 7 ? n - visited : 7;
        assert_int_equal(md_state_sweep(&st, 10 * SEC, b, SEC, NULL, SEC, 0), b);
        visited += b;
        calls++;
        assert_int_equal(st.sweep_pos, visited % n);
    }
    assert_int_equal(calls, (n + 6) / 7);
    assert_int_equal(st.dq_len, n);
    for (uint32_t i = 0; i < n; i++)
        assert_ptr_equal(md_state_pop_dirty(&st), &st.syms[i]);
    /* mark_all_dirty and reset "*" walk the same dense entries. */
    md_state_mark_all_dirty(&st);
    assert_int_equal(st.dq_len, n);
    for (uint32_t i = 0; i < n; i++)
        assert_ptr_equal(md_state_pop_dirty(&st), &st.syms[i]);
    assert_int_equal(apply(&st, mk(MD_TICK_RESET, "*")), MD_APPLY_OK);
    assert_int_equal(st.dq_len, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(st.syms[i].volume.mant, 0);
        assert_ptr_equal(md_state_pop_dirty(&st), &st.syms[i]);
    }
    md_state_free(&st);
}

static void test_index_collisions(void **state)
{
    (void)state;
    md_state st;
    char sym[16], same[4][16];
    int found = 0;

    /* Symbols that all want the same index slot must probe past each
     * other and stay distinct, including a miss that walks the chain. */
    assert_int_equal(md_state_init(&st, 16), 0);
    uint32_t want = (uint32_t)md_sym_hash("C0", 2) & st.mask;
    for (int i = 0; found < 4; i++) {
        int len = snprintf(sym, sizeof(sym), "C%d", i);
        if (((uint32_t)md_sym_hash(sym, (size_t)len) & st.mask) == want)
            memcpy(same[found++], sym, (size_t)len + 1);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(apply(&st, trade(same[i], D(i + 1, 0), D(1, 0))), MD_APPLY_OK);
    for (int i = 0; i < 4; i++) {
        md_sym *s = find(&st, same[i]);
        assert_ptr_equal(s, &st.syms[i]);
        assert_int_equal(s->last.mant, i + 1);
    }
    /* Slots want .. want+3 (wrapping) are taken, in insertion order. */
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal((uint32_t)st.slots[(want + i) & st.mask], i + 1);
    assert_null(find(&st, "C-none"));
    assert_int_equal(st.count, 4);
    md_state_free(&st);
}

static void test_init_limits(void **state)
{
    (void)state;
    md_state st;

    /* A dense index + 1 must fit the low 32 bits of a slot and the index
     * size 32 bits: max_keys above 2^30 is refused, and leaves st clean. */
    assert_int_equal(md_state_init(&st, (1u << 30) + 1), -1);
    assert_null(st.slots);
    assert_null(st.syms);
    assert_null(st.dirtyq);
    assert_int_equal(st.max_keys, 0);
    md_state_free(&st); /* safe on a failed init */
}

static void test_sweep_last_good(void **state)
{
    (void)state;
    md_state st;
    md_sources src;
    md_sym *s;
    const int64_t lg = 60 * SEC, refresh = 4 * SEC, timeout = 3 * SEC;

    assert_int_equal(md_state_init(&st, 4), 0);
    assert_int_equal(md_sources_init(&src, 4), 0);
    assert_int_equal(apply(&st, quote("A", D(1, 0), NA)), MD_APPLY_OK);
    s = find(&st, "A");
    assert_int_equal(s->last_good_due, 1);
    /* The writer writes latest and last_good at t=10s. */
    assert_ptr_equal(md_state_pop_dirty(&st), s);
    s->written_ns = 10 * SEC;
    s->last_good_ns = 10 * SEC;
    s->last_good_due = 0;
    /* A change at 20s, written as latest only (last_good interval not up). */
    assert_int_equal(apply(&st, quote("A", D(2, 0), NA)), MD_APPLY_OK);
    assert_ptr_equal(md_state_pop_dirty(&st), s);
    s->written_ns = 20 * SEC;
    assert_int_equal(s->last_good_due, 1);
    /* Source is dead (never touched): only last_good can bring it back. */
    assert_int_equal(md_state_sweep(&st, 69 * SEC, 100, refresh, &src, timeout, lg), 0);
    assert_int_equal(md_state_sweep(&st, 70 * SEC, 100, refresh, &src, timeout, 0), 0);
    assert_int_equal(md_state_sweep(&st, 70 * SEC, 100, refresh, &src, timeout, lg), 1);
    assert_ptr_equal(md_state_pop_dirty(&st), s);
    s->last_good_ns = 70 * SEC;
    s->last_good_due = 0;
    /* Not due (no change since): never again, however long it waits. */
    assert_int_equal(md_state_sweep(&st, 1000 * SEC, 100, refresh, &src, timeout, lg), 0);
    /* last_good never written: due at once. */
    s->last_good_ns = 0;
    s->last_good_due = 1;
    assert_int_equal(md_state_sweep(&st, 1000 * SEC, 100, refresh, &src, timeout, lg), 1);
    md_sources_free(&src);
    md_state_free(&st);
}

static void test_sources(void **state)
{
    (void)state;
    md_sources s;

    assert_int_equal(md_sources_init(&s, 0), -1);
    assert_int_equal(md_sources_init(&s, 2), 0);
    assert_false(md_sources_alive(&s, 1, 0, SEC));
    assert_true(md_sources_touch(&s, 0x10, 10 * SEC));
    assert_true(md_sources_touch(&s, 0, 10 * SEC)); /* 0 is a valid hash */
    assert_false(md_sources_touch(&s, 0x30, 10 * SEC)); /* bounded */
    assert_int_equal(s.count, 2);
    assert_true(md_sources_touch(&s, 0x10, 11 * SEC)); /* known: still fine */
    assert_true(md_sources_alive(&s, 0x10, 12 * SEC - 1, SEC));
    assert_false(md_sources_alive(&s, 0x10, 12 * SEC, SEC));
    assert_true(md_sources_alive(&s, 0, 10 * SEC, SEC));
    assert_false(md_sources_alive(&s, 0x30, 10 * SEC, SEC));
    /* An older touch does not move time backwards. */
    assert_true(md_sources_touch(&s, 0x10, 5 * SEC));
    assert_true(md_sources_alive(&s, 0x10, 11 * SEC, SEC));
    assert_int_equal(md_sources_live(&s, 10 * SEC + 1, SEC), 2);
    assert_int_equal(md_sources_live(&s, 11 * SEC + 1, SEC), 1);
    assert_int_equal(md_sources_live(&s, 20 * SEC, SEC), 0);
    md_sources_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_init_sizes),
        cmocka_unit_test(test_new_symbol_all_absent),
        cmocka_unit_test(test_latest_wins_absent_kept),
        cmocka_unit_test(test_volume_exact_and_high_low),
        cmocka_unit_test(test_negative_prices),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_ts_max),
        cmocka_unit_test(test_seq_duplicates),
        cmocka_unit_test(test_seq_source_hash_zero),
        cmocka_unit_test(test_seen_slot_replacement),
        cmocka_unit_test(test_reset_one_and_all),
        cmocka_unit_test(test_reset_unknown_symbol),
        cmocka_unit_test(test_ignored_types),
        cmocka_unit_test(test_max_keys),
        cmocka_unit_test(test_many_keys_distinct),
        cmocka_unit_test(test_dirty_once_fifo),
        cmocka_unit_test(test_unchanged_not_queued),
        cmocka_unit_test(test_mark_all_dirty),
        cmocka_unit_test(test_mark_live_dirty),
        cmocka_unit_test(test_sweep_refresh_liveness),
        cmocka_unit_test(test_sweep_budget_cursor),
        cmocka_unit_test(test_sweep_last_good),
        cmocka_unit_test(test_dense_layout_full),
        cmocka_unit_test(test_index_collisions),
        cmocka_unit_test(test_init_limits),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
