/* md_account: positions merge, order lifecycle (working -> terminal -> DEL
 * acknowledged), balances and account info, sequence checks, limits,
 * liveness (sweep, reconnect), and the exact JSON of every account value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_account.h"
#include "md_format.h"

#define SEC 1000000000LL
#define WALL 1763740000123000000LL /* receipt time when a message has no ts */

static md_acct msg(int type, const char *account)
{
    md_acct m;
    memset(&m, 0, sizeof m);
    m.t.type = (uint8_t)type;
    m.acct_len = (uint8_t)strlen(account);
    memcpy(m.account, account, m.acct_len);
    m.t.sym_hash = md_sym_hash(account, m.acct_len);
    m.t.src_hash = 42;
    for (int i = 0; i < 4; i++) m.t.v[i] = md_dec_absent();
    return m;
}

static void with_symbol(md_acct *m, const char *sym)
{
    m->t.sym_len = (uint8_t)strlen(sym);
    memcpy(m->t.symbol, sym, m->t.sym_len);
}

static void with_ts(md_acct *m, int64_t ts)
{
    m->t.flags |= MD_TICK_F_TS;
    m->t.ts_ns = ts;
}

static void with_seq(md_acct *m, uint64_t seq)
{
    m->t.flags |= MD_TICK_F_SEQ;
    m->t.seq = seq;
}

static md_acct position(const char *account, const char *sym, int64_t net, int64_t avg_mant,
                        int8_t avg_exp)
{
    md_acct m = msg(MD_TICK_POSITION, account);
    with_symbol(&m, sym);
    m.t.v[MD_P_NET_POS] = (md_dec){net, 0};
    m.t.v[MD_P_AVG_PRICE] = (md_dec){avg_mant, avg_exp};
    return m;
}

static md_acct order(const char *account, const char *id, int status)
{
    md_acct m = msg(MD_TICK_ORDER, account);
    m.ref_len = (uint8_t)strlen(id);
    memcpy(m.ref, id, m.ref_len);
    m.status = (uint8_t)status;
    return m;
}

static md_accounts tab;

/* What the batch writer does with the next dirty order: its slot, and for
 * a DEL the generation its acknowledgement will carry. */
static int32_t take_order(md_account *a, uint32_t *gen)
{
    int32_t i = md_account_next_order(a);
    if (i >= 0 && a->ord[i].slot == MD_OSLOT_GONE)
        *gen = ++a->ord[i].del_gen;
    return i;
}

static int setup(void **state)
{
    (void)state;
    return md_accounts_init(&tab, 4, 3, 3);
}

static int teardown(void **state)
{
    (void)state;
    md_accounts_free(&tab);
    return 0;
}

static char val[1 << 14];

static void test_positions_merge(void **state)
{
    (void)state;
    md_acct m = position("PA1", "MNQZ5", 2, 210005, -1);
    with_ts(&m, 1763740000123456789LL);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    m = position("PA1", "ESZ5", -1, 6000, 0);
    m.t.v[MD_P_AVG_PRICE] = md_dec_absent();
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    md_account *a = md_accounts_find(&tab, "PA1", 3);
    assert_non_null(a);
    assert_int_equal(a->npos, 2);
    assert_int_equal(a->due, MD_AC_BIT(MD_AC_POSITIONS));
    assert_int_equal(md_accounts_pending(&tab), 1);
    md_format_positions(a, val, sizeof val);
    assert_string_equal(val, "{\"account\":\"PA1\",\"positions\":["
                             "{\"symbol\":\"MNQZ5\",\"net_pos\":2,\"avg_price\":21000.5,"
                             "\"timestamp\":1763740000123},"
                             "{\"symbol\":\"ESZ5\",\"net_pos\":-1,\"avg_price\":null,"
                             "\"timestamp\":1763740000123}],\"count\":2,"
                             "\"timestamp\":1763740000123}");
    /* An update replaces that symbol's entry; flat leaves the value. */
    m = position("PA1", "MNQZ5", 3, 21001, 0);
    md_accounts_apply(&tab, &m, WALL + SEC);
    assert_int_equal(a->npos, 2);
    m = position("PA1", "ESZ5", 0, 0, 0);
    md_accounts_apply(&tab, &m, WALL + SEC);
    assert_int_equal(a->npos, 1);
    md_format_positions(a, val, sizeof val);
    assert_string_equal(val, "{\"account\":\"PA1\",\"positions\":["
                             "{\"symbol\":\"MNQZ5\",\"net_pos\":3,\"avg_price\":21001,"
                             "\"timestamp\":1763740001123}],\"count\":1,"
                             "\"timestamp\":1763740001123}");
    m = position("PA1", "MNQZ5", 0, 0, 0);
    md_accounts_apply(&tab, &m, WALL + SEC);
    md_format_positions(a, val, sizeof val);
    assert_string_equal(val, "{\"account\":\"PA1\",\"positions\":[],\"count\":0,"
                             "\"timestamp\":1763740001123}");
    /* Limit: 3 positions per account in this table. */
    for (int i = 0; i < 3; i++) {
        char sym[8] = {'S', (char)('0' + i), 0};
        m = position("PA1", sym, 1, 1, 0);
        assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    }
    m = position("PA1", "S9", 1, 1, 0);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_FULL);
    assert_int_equal(tab.stats.positions_full, 1);
    m = position("PA1", "S0", 0, 0, 0); /* a flat one frees room */
    md_accounts_apply(&tab, &m, WALL);
    m = position("PA1", "S9", 1, 1, 0);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
}

static void test_order_lifecycle(void **state)
{
    (void)state;
    md_acct m = order("PA1", "D1", MD_ORDER_WORKING);
    with_symbol(&m, "MNQZ5");
    m.side = MD_SIDE_BUY;
    m.t.v[MD_O_QTY] = (md_dec){1, 0};
    m.t.v[MD_O_PRICE] = (md_dec){209900, -1};
    with_ts(&m, 5 * SEC);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    md_account *a = md_accounts_find(&tab, "PA1", 3);
    assert_int_equal(a->working, 1);
    assert_int_equal(a->due, MD_AC_BIT(MD_AC_ORDERS));
    assert_int_equal(md_accounts_pending(&tab), 2); /* the order key and the list */
    md_format_order(a, &a->ord[0], val, sizeof val);
    const char *want = "{\"account\":\"PA1\",\"order_id\":\"D1\",\"symbol\":\"MNQZ5\","
                       "\"side\":\"buy\",\"qty\":1,\"price\":20990.0,\"status\":\"working\","
                       "\"timestamp\":5000}";
    assert_string_equal(val, want);
    md_format_orders(a, val, sizeof val);
    char list[1024];
    snprintf(list, sizeof list, "{\"account\":\"PA1\",\"orders\":[%s],\"count\":1,\"timestamp\":5000}",
             want);
    assert_string_equal(val, list);

    /* An update carrying only a new price merges into the order. */
    m = order("PA1", "D1", MD_ORDER_WORKING);
    m.t.v[MD_O_PRICE] = (md_dec){20995, 0};
    md_accounts_apply(&tab, &m, WALL);
    assert_int_equal(a->ord[0].qty.mant, 1);
    assert_int_equal(a->ord[0].price.mant, 20995);
    assert_int_equal(a->ord[0].side, MD_SIDE_BUY);

    /* The writer takes the order once, however many updates came. */
    assert_int_equal(md_account_next_order(a), 0);
    assert_int_equal(md_account_next_order(a), -1);

    /* Filled: a tombstone the writer deletes; out of the list at once. */
    uint32_t g1 = 0, g2 = 0;
    m = order("PA1", "D1", MD_ORDER_FILLED);
    md_accounts_apply(&tab, &m, WALL);
    assert_int_equal(a->working, 0);
    assert_int_equal(a->ord[0].slot, MD_OSLOT_GONE);
    md_format_orders(a, val, sizeof val);
    assert_non_null(strstr(val, "\"orders\":[],\"count\":0"));
    assert_int_equal(take_order(a, &g1), 0);
    /* Before the DEL is acknowledged the order comes back: not freed. */
    m = order("PA1", "D1", MD_ORDER_WORKING);
    md_accounts_apply(&tab, &m, WALL);
    md_account_order_deleted(a, 0, g1);
    assert_int_equal(a->ord[0].slot, MD_OSLOT_LIVE);
    assert_int_equal(a->working, 1);
    assert_int_equal(take_order(a, &g2), 0); /* its SETEX */
    /* ...and ends again: a second DEL. The first one's acknowledgement,
     * arriving now, must not free the slot while the second is unanswered:
     * if the second is lost with the connection it is sent again. */
    m = order("PA1", "D1", MD_ORDER_CANCELLED);
    md_accounts_apply(&tab, &m, WALL);
    assert_int_equal(take_order(a, &g2), 0);
    assert_int_not_equal(g1, g2);
    md_account_order_deleted(a, 0, g1);
    assert_int_equal(a->ord[0].slot, MD_OSLOT_GONE);
    md_accounts_requeue(&tab, a, MD_AC_COUNT, 0); /* connection lost */
    assert_int_equal(take_order(a, &g2), 0);
    md_account_order_deleted(a, 0, g2);
    assert_int_equal(a->nord, 0);

    /* A lost DEL (connection dropped) is queued again. */
    m = order("PA1", "D2", MD_ORDER_REJECTED);
    md_accounts_apply(&tab, &m, WALL);
    assert_int_equal(take_order(a, &g1), 0);
    md_accounts_requeue(&tab, a, MD_AC_COUNT, 0);
    assert_int_equal(take_order(a, &g1), 0);
    md_account_order_deleted(a, 0, g1);
    assert_int_equal(a->nord, 0);

    /* Limit: 3 order slots. Working orders never give theirs up; a
     * tombstone does, to a new working order (its key, if any, expires by
     * TTL), even with its DEL still queued. */
    const char *ids[] = {"O1", "O2", "O3"};
    for (int i = 0; i < 3; i++) {
        m = order("PA1", ids[i], MD_ORDER_WORKING);
        assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    }
    while (take_order(a, &g1) >= 0) {}
    m = order("PA1", "O4", MD_ORDER_WORKING);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_FULL);
    m = order("PA1", "X9", MD_ORDER_CANCELLED); /* terminal, never seen: no tombstone */
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_FULL);
    m = order("PA1", "O2", MD_ORDER_FILLED);
    md_accounts_apply(&tab, &m, WALL);
    assert_int_equal(a->oq_len, 1);
    m = order("PA1", "O4", MD_ORDER_WORKING);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    assert_int_equal(a->ord[1].slot, MD_OSLOT_LIVE);
    assert_memory_equal(a->ord[1].id, "O4", 3);
    assert_int_equal(a->oq_len, 1); /* O2's DEL gone, O4's SETEX queued */
    assert_int_equal(take_order(a, &g1), 1);
    assert_int_equal(a->working, 3);
    assert_int_equal(tab.stats.orders_full, 2);
    assert_int_equal(tab.stats.evicted, 1);
}

static void test_balance_and_info(void **state)
{
    (void)state;
    md_acct m = msg(MD_TICK_BALANCE, "PA\"1");
    m.t.v[MD_B_CASH] = (md_dec){500000, -1};
    m.t.v[MD_B_REALIZED] = (md_dec){125, -1};
    with_ts(&m, 7 * SEC + 999999);
    md_accounts_apply(&tab, &m, WALL);
    md_account *a = md_accounts_find(&tab, "PA\"1", 4);
    md_format_balance(a, val, sizeof val);
    assert_string_equal(val, "{\"account\":\"PA\\\"1\",\"cash\":50000.0,\"realized_pnl\":12.5,"
                             "\"unrealized_pnl\":null,\"timestamp\":7000}");
    m = msg(MD_TICK_BALANCE, "PA\"1");
    m.t.v[MD_B_UNREALIZED] = (md_dec){-30, -1};
    md_accounts_apply(&tab, &m, WALL); /* no ts: receipt time, and fields merge */
    md_format_balance(a, val, sizeof val);
    assert_string_equal(val, "{\"account\":\"PA\\\"1\",\"cash\":50000.0,\"realized_pnl\":12.5,"
                             "\"unrealized_pnl\":-3.0,\"timestamp\":1763740000123}");

    m = msg(MD_TICK_ACCOUNT, "PA\"1");
    m.ref_len = 9;
    memcpy(m.ref, "D17158695", 9);
    m.active = MD_ACTIVE_YES;
    md_accounts_apply(&tab, &m, WALL);
    md_format_accounts(a, val, sizeof val);
    assert_string_equal(val, "{\"accounts\":[{\"name\":\"PA\\\"1\",\"id\":\"D17158695\","
                             "\"active\":true}],\"count\":1,\"cached\":false,"
                             "\"timestamp\":1763740000.123}");
    m = msg(MD_TICK_ACCOUNT, "PA2");
    md_accounts_apply(&tab, &m, WALL);
    md_format_accounts(md_accounts_find(&tab, "PA2", 3), val, sizeof val);
    assert_string_equal(val, "{\"accounts\":[{\"name\":\"PA2\",\"id\":null,\"active\":null}],"
                             "\"count\":1,\"cached\":false,\"timestamp\":1763740000.123}");
    assert_int_equal(a->due, MD_AC_BIT(MD_AC_BALANCE) | MD_AC_BIT(MD_AC_INFO));
}

static void test_seq_and_limits(void **state)
{
    (void)state;
    md_acct m = msg(MD_TICK_BALANCE, "PA1");
    m.t.v[MD_B_CASH] = (md_dec){100, 0};
    with_seq(&m, 10);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    /* Older or repeated from the same source, any class: refused. */
    m.t.v[MD_B_CASH] = (md_dec){1, 0};
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_DUPLICATE);
    md_acct p = position("PA1", "ES", 1, 1, 0);
    with_seq(&p, 9);
    assert_int_equal(md_accounts_apply(&tab, &p, WALL), MD_APPLY_DUPLICATE);
    assert_int_equal(md_accounts_find(&tab, "PA1", 3)->cash.mant, 100);
    /* Another source has its own sequence. */
    p.t.src_hash = 43;
    assert_int_equal(md_accounts_apply(&tab, &p, WALL), MD_APPLY_OK);
    assert_int_equal(tab.stats.duplicate, 2);
    /* max_accounts = 4 */
    const char *names[] = {"PA2", "PA3", "PA4", "PA5"};
    for (int i = 0; i < 4; i++) {
        m = msg(MD_TICK_ACCOUNT, names[i]);
        assert_int_equal(md_accounts_apply(&tab, &m, WALL), i < 3 ? MD_APPLY_OK : MD_APPLY_FULL);
    }
    assert_int_equal(tab.count, 4);
    assert_int_equal(tab.stats.full, 1);
}

/* Drains what the writer would take, as if it was written at `now`. */
static void write_all(int64_t now)
{
    md_account *a;
    while ((a = md_accounts_peek(&tab)) != NULL) {
        for (int c = 0; c < MD_AC_COUNT; c++)
            if (a->due & MD_AC_BIT(c)) a->written_ns[c] = now;
        a->due = 0;
        int32_t i;
        uint32_t gen = 0;
        while ((i = take_order(a, &gen)) >= 0) {
            a->ord[i].written_ns = now;
            if (a->ord[i].slot == MD_OSLOT_GONE) md_account_order_deleted(a, (uint32_t)i, gen);
        }
        md_accounts_pop(&tab);
    }
}

static void test_liveness(void **state)
{
    (void)state;
    md_sources src;
    assert_int_equal(md_sources_init(&src, 16), 0);
    const int64_t refresh[MD_AC_COUNT] = {SEC / 2, SEC / 2, SEC, 150 * SEC};
    const int64_t timeout = 3 * SEC;
    int64_t now = 100 * SEC;

    md_acct m = position("LIVE", "ES", 1, 1, 0);
    m.t.src_hash = 1;
    md_accounts_apply(&tab, &m, WALL);
    m = order("LIVE", "O1", MD_ORDER_WORKING);
    m.t.src_hash = 1;
    md_accounts_apply(&tab, &m, WALL);
    m = position("QUIET", "ES", 1, 1, 0);
    m.t.src_hash = 2;
    md_accounts_apply(&tab, &m, WALL);
    md_sources_touch(&src, 1, now);
    md_sources_touch(&src, 2, now);
    write_all(now);
    assert_int_equal(md_accounts_pending(&tab), 0);

    /* Before the refresh window nothing is due. */
    assert_int_equal(md_accounts_sweep(&tab, now + SEC / 4, 10, refresh, &src, timeout), 0);
    /* Source 1 keeps sending (heartbeats count); source 2 went quiet. */
    now += 4 * SEC;
    md_sources_touch(&src, 1, now);
    /* LIVE: positions, order list and its one working order. */
    assert_int_equal(md_accounts_sweep(&tab, now, 10, refresh, &src, timeout), 3);
    md_account *live = md_accounts_find(&tab, "LIVE", 4);
    assert_int_equal(live->due, MD_AC_BIT(MD_AC_POSITIONS) | MD_AC_BIT(MD_AC_ORDERS));
    assert_int_equal(live->oq_len, 1);
    assert_int_equal(md_accounts_find(&tab, "QUIET", 5)->due, 0);
    assert_int_equal(tab.stats.refreshes, 3);
    write_all(now);

    /* A DEL that Redis refused is owed even for a quiet account. */
    m = order("QUIET", "O9", MD_ORDER_CANCELLED);
    m.t.src_hash = 2;
    md_accounts_apply(&tab, &m, WALL);
    md_account *quiet = md_accounts_find(&tab, "QUIET", 5);
    quiet->due = 0; /* as if written, list included */
    quiet->written_ns[MD_AC_ORDERS] = now;
    assert_int_equal(md_account_next_order(quiet), 0); /* sent ... and refused: still GONE */
    md_accounts_pop(&tab);
    now += 5 * SEC;
    md_sources_touch(&src, 1, now);
    md_accounts_sweep(&tab, now, 10, refresh, &src, timeout);
    assert_int_equal(quiet->oq_len, 1);
    assert_int_equal(quiet->due, 0); /* its positions are left to expire */
    write_all(now);

    /* After a reconnect: everything of live accounts, nothing of quiet ones. */
    assert_int_equal(md_accounts_mark_live_dirty(&tab, &src, now, timeout), 1);
    assert_int_equal(live->due, MD_AC_BIT(MD_AC_POSITIONS) | MD_AC_BIT(MD_AC_ORDERS));
    assert_int_equal(quiet->due, 0);
    write_all(now);

    /* Each order key is timed on its own: O2 changing (and the list with
     * it) must not postpone the refresh of O1, whose key was not written. */
    m = order("LIVE", "O2", MD_ORDER_WORKING);
    m.t.src_hash = 1;
    md_accounts_apply(&tab, &m, WALL);
    write_all(now + SEC * 4 / 10);
    md_sources_touch(&src, 1, now + SEC * 6 / 10);
    md_accounts_sweep(&tab, now + SEC * 6 / 10, 10, refresh, &src, timeout);
    assert_int_equal(live->oq_len, 1);
    assert_memory_equal(live->ord[md_account_next_order(live)].id, "O1", 3);
    assert_int_equal(live->due & MD_AC_BIT(MD_AC_ORDERS), 0); /* the list was just written */
    md_sources_free(&src);
}

/* Classes switched off are never written nor refreshed, and do not make a
 * quiet account look never written after a reconnect; order messages of
 * an account whose name holds the order key's separator are refused. */
static void test_configured_classes(void **state)
{
    (void)state;
    md_sources src;
    assert_int_equal(md_sources_init(&src, 16), 0);
    md_accounts_configure(&tab, MD_AC_BIT(MD_AC_POSITIONS) | MD_AC_BIT(MD_AC_ORDERS), true, ":");
    md_acct m = position("Q", "ES", 1, 1, 0);
    md_accounts_apply(&tab, &m, WALL);
    m = msg(MD_TICK_BALANCE, "Q");
    m.t.v[MD_B_CASH] = (md_dec){1, 0};
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    md_account *q = md_accounts_find(&tab, "Q", 1);
    assert_int_equal(q->due, MD_AC_BIT(MD_AC_POSITIONS));
    assert_int_equal(q->known, MD_AC_BIT(MD_AC_POSITIONS));
    write_all(SEC);
    /* Quiet (never touched in src): a reconnect queues nothing of it. */
    assert_int_equal(md_accounts_mark_live_dirty(&tab, &src, 100 * SEC, 3 * SEC), 0);
    assert_int_equal(md_accounts_pending(&tab), 0);

    m = order("A:B", "O1", MD_ORDER_WORKING);
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_BAD_NAME);
    m = position("A:B", "ES", 1, 1, 0); /* positions keys have one variable: fine */
    assert_int_equal(md_accounts_apply(&tab, &m, WALL), MD_APPLY_OK);
    assert_int_equal(tab.stats.bad_names, 1);
    md_sources_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_positions_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_balance_and_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_liveness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configured_classes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
