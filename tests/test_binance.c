/* Binance dialect decoder, from hand-written messages of every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_decode.h"
#include "md_state.h"

#include "decode_capture.h"

/* The examples of Binance's API documentation, as the brief gives them. */
#define SPOT_BOOK                                                                                  \
    "{\"u\":400900217,\"s\":\"BNBUSDT\",\"b\":\"25.35190000\",\"B\":\"31.21000000\",\"a\":"       \
    "\"25.36520000\",\"A\":\"40.66000000\"}"
#define FUT_BOOK                                                                                   \
    "{\"e\":\"bookTicker\",\"u\":400900217,\"E\":1568014460893,\"T\":1568014460891,\"s\":"        \
    "\"BNBUSDT\",\"b\":\"25.35190000\",\"B\":\"31.21000000\",\"a\":\"25.36520000\",\"A\":"        \
    "\"40.66000000\"}"
#define TRADE                                                                                      \
    "{\"e\":\"trade\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"t\":12345,\"p\":\"0.001\",\"q\":"    \
    "\"100\",\"T\":1672515782136,\"m\":true,\"M\":true}"
#define AGG                                                                                        \
    "{\"e\":\"aggTrade\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"a\":12345,\"p\":\"0.001\",\"q\":" \
    "\"100\",\"f\":100,\"l\":105,\"T\":1672515782136,\"m\":true,\"M\":true}"

/* Decodes s as one datagram. */
#define dgram(c, s) decode_dgram(md_binance_decode, (c), (s))

static void test_book_ticker_spot(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, SPOT_BOOK "\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.st.skipped, 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.st.ok, 1);
    const md_tick *t = &c.t[0];
    assert_int_equal(t->type, MD_TICK_QUOTE);
    assert_string_equal(t->symbol, "BNBUSDT");
    assert_int_equal(t->sym_len, 7);
    assert_string_equal(t->source, "binance.bookTicker");
    assert_int_equal(t->src_len, strlen("binance.bookTicker"));
    /* spot bookTicker carries no time: ts stays unset */
    assert_int_equal(t->flags, MD_TICK_F_SEQ);
    assert_int_equal(t->seq, 400900217);
    assert_int_equal(t->ts_ns, 0);
    assert_int_equal(t->origin_ns, 0);
    assert_dec_str(t->v[MD_Q_BID], "25.35190000");
    assert_dec_str(t->v[MD_Q_ASK], "25.36520000");
    assert_dec_str(t->v[MD_Q_BID_SIZE], "31.21000000");
    assert_dec_str(t->v[MD_Q_ASK_SIZE], "40.66000000");
    assert_int_equal(t->v[MD_Q_BID].mant, 2535190000LL);
    assert_int_equal(t->v[MD_Q_BID].exp, -8);
}

static void test_book_ticker_futures(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, FUT_BOOK);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 1);
    const md_tick *t = &c.t[0];
    assert_int_equal(t->type, MD_TICK_QUOTE);
    assert_string_equal(t->source, "binance.bookTicker");
    assert_int_equal(t->flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_int_equal(t->seq, 400900217);
    /* T (transaction time) wins over E (event time) */
    assert_int_equal(t->ts_ns, 1568014460891000000LL);
    assert_dec_str(t->v[MD_Q_BID], "25.35190000");
    assert_dec_str(t->v[MD_Q_ASK], "25.36520000");
}

static void test_trade_and_agg_trade(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, TRADE "\n" AGG "\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);
    for (int i = 0; i < 2; i++) {
        const md_tick *t = &c.t[i];
        assert_int_equal(t->type, MD_TICK_TRADE);
        assert_string_equal(t->symbol, "BNBBTC");
        assert_int_equal(t->flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
        assert_int_equal(t->seq, 12345);
        assert_int_equal(t->ts_ns, 1672515782136000000LL);
        assert_dec_str(t->v[MD_T_PRICE], "0.001");
        assert_dec_str(t->v[MD_T_SIZE], "100");
        assert_int_equal(t->v[2].exp, MD_DEC_ABSENT);
        assert_int_equal(t->v[3].exp, MD_DEC_ABSENT);
    }
    assert_string_equal(c.t[0].source, "binance.trade");
    assert_string_equal(c.t[1].source, "binance.aggTrade");
}

static void test_times(void **state)
{
    (void)state;
    capture c = {0};
    /* E alone gives the time; neither leaves it unset; numbers as strings */
    dgram(&c, "{\"e\":\"trade\",\"E\":1700000000001,\"s\":\"X\",\"t\":1,\"p\":\"1\",\"q\":\"1\"}\n"
              "{\"e\":\"trade\",\"s\":\"X\",\"t\":2,\"p\":\"1\",\"q\":\"1\"}\n"
              "{\"e\":\"trade\",\"s\":\"X\",\"t\":\"3\",\"T\":\"1700000000002\",\"p\":1.5,\"q\":2}\n"
              "{\"e\":\"trade\",\"s\":\"X\",\"t\":18446744073709551615,\"T\":9223372036854,"
              "\"p\":\"1\",\"q\":\"1\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.t[0].ts_ns, 1700000000001000000LL);
    assert_int_equal(c.t[0].flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_int_equal(c.t[1].flags, MD_TICK_F_SEQ);
    assert_int_equal(c.t[2].seq, 3);
    assert_int_equal(c.t[2].ts_ns, 1700000000002000000LL);
    assert_dec_str(c.t[2].v[MD_T_PRICE], "1.5");
    assert_int_equal(c.t[3].seq, UINT64_MAX);
    assert_int_equal(c.t[3].ts_ns, 9223372036854000000LL);
}

static void test_combined_wrapper(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"stream\":\"bnbusdt@bookTicker\",\"data\":" SPOT_BOOK "}\n"
              "{\"stream\":\"bnbusdt@bookTicker\",\"data\":" FUT_BOOK "}\n"
              "{\"stream\":\"bnbbtc@trade\",\"data\":" TRADE "}\n"
              " { \"data\" : " AGG " , \"stream\" : \"bnbbtc@aggTrade\" } \r\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.t[0].type, MD_TICK_QUOTE);
    assert_int_equal(c.t[0].flags, MD_TICK_F_SEQ);
    assert_int_equal(c.t[1].type, MD_TICK_QUOTE);
    assert_int_equal(c.t[1].ts_ns, 1568014460891000000LL);
    assert_string_equal(c.t[2].source, "binance.trade");
    assert_string_equal(c.t[3].source, "binance.aggTrade");
    assert_dec_str(c.t[0].v[MD_Q_ASK], "25.36520000");

    /* a wrapper inside a wrapper is not unwrapped again: skipped */
    memset(&c, 0, sizeof c);
    dgram(&c, "{\"stream\":\"a\",\"data\":{\"stream\":\"b\",\"data\":" TRADE "}}");
    assert_int_equal(c.n, 0);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.st.skipped, 1);
}

static void test_skipped(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"e\":\"depthUpdate\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"U\":157,\"u\":160,"
        "\"b\":[[\"0.0024\",\"10\"]],\"a\":[[\"0.0026\",\"100\"]]}",
        "{\"e\":\"kline\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"k\":{\"t\":1672515780000,"
        "\"T\":1672515839999,\"s\":\"BNBBTC\",\"i\":\"1m\",\"o\":\"0.0010\",\"c\":\"0.0020\","
        "\"x\":false}}",
        "{\"e\":\"24hrTicker\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"p\":\"0.0015\","
        "\"c\":\"0.0025\",\"b\":\"0.0024\",\"a\":\"0.0026\",\"v\":\"10000\"}",
        "{\"e\":\"24hrMiniTicker\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"c\":\"0.0025\"}",
        "{\"lastUpdateId\":160,\"bids\":[[\"0.0024\",\"10\"]],\"asks\":[[\"0.0026\",\"100\"]]}",
        "{\"e\":\"markPriceUpdate\",\"E\":1562305380000,\"s\":\"BTCUSDT\",\"p\":\"11794.15\","
        "\"r\":\"0.00038167\",\"T\":1562306400000}",
        "{\"result\":null,\"id\":1}",
        "{}",
        "{\"stream\":\"bnbbtc@depth\",\"data\":{\"e\":\"depthUpdate\",\"u\":160,\"s\":\"BNBBTC\"}}",
        "{\"stream\":\"bnbbtc@depth5\",\"data\":{\"lastUpdateId\":160,\"bids\":[],\"asks\":[]}}",
        "{\"stream\":\"!miniTicker@arr\",\"data\":[{\"e\":\"24hrMiniTicker\",\"s\":\"BNBBTC\"}]}",
        "{\"e\":\"Trade\",\"s\":\"X\",\"t\":1,\"p\":\"1\",\"q\":\"1\"}",
    };
    size_t nl = sizeof lines / sizeof lines[0];
    for (size_t i = 0; i < nl; i++) {
        capture c = {0};
        dgram(&c, lines[i]);
        if (c.st.skipped != 1 || c.n || errs(&c))
            fail_msg("line %zu: skipped %llu, ticks %zu, errors %llu: %s", i,
                     (unsigned long long)c.st.skipped, c.n, (unsigned long long)errs(&c),
                     lines[i]);
        assert_int_equal(c.rejects, 0);
    }
    /* blank lines are neither ticks, skips nor errors */
    capture c = {0};
    dgram(&c, "\n  \r\n\t\n");
    assert_int_equal(c.st.skipped + c.n + errs(&c), 0);
}

#define TR(f) "{\"e\":\"trade\",\"s\":\"X\",\"t\":1,\"p\":\"1\",\"q\":\"1\"," f "}"
#define BK(f) "{\"e\":\"bookTicker\",\"s\":\"X\",\"u\":1,\"b\":\"1\",\"a\":\"2\"," f "}"

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        md_decode_err why;
    } cases[] = {
        {"not json", MD_DERR_SYNTAX},
        {"[1,2]", MD_DERR_SYNTAX},
        {"\x01\xff", MD_DERR_SYNTAX},
        {"{\"e\":\"trade\"", MD_DERR_SYNTAX},
        {"{\"e\":\"trade\",}", MD_DERR_SYNTAX},
        {"{\"stream\":\"x\",\"data\":{\"e\":\"trade\",}}", MD_DERR_SYNTAX},
        {"{\"stream\":\"x\",\"data\":{\"e\":\"trade\"]}", MD_DERR_SYNTAX},
        {TR("\"x\":1} {"), MD_DERR_SYNTAX},
        {"{\"e\":1,\"s\":\"X\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"e\":[\"trade\"],\"s\":\"X\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"e\":\"trade\",\"t\":1,\"p\":\"1\",\"q\":\"1\"}", MD_DERR_MISSING_FIELD},
        {TR("\"s\":null"), MD_DERR_MISSING_FIELD},
        {"{\"e\":\"trade\",\"s\":\"X\",\"p\":\"1\",\"q\":\"1\"}", MD_DERR_MISSING_FIELD},
        {"{\"e\":\"aggTrade\",\"s\":\"X\",\"t\":1,\"p\":\"1\",\"q\":\"1\"}", MD_DERR_MISSING_FIELD},
        {"{\"e\":\"trade\",\"s\":\"X\",\"t\":1,\"q\":\"1\"}", MD_DERR_MISSING_FIELD},
        {"{\"e\":\"trade\",\"s\":\"X\",\"t\":1,\"p\":\"1\"}", MD_DERR_MISSING_FIELD},
        {TR("\"p\":null"), MD_DERR_MISSING_FIELD},
        {"{\"e\":\"bookTicker\",\"s\":\"X\",\"b\":\"1\",\"a\":\"2\"}", MD_DERR_MISSING_FIELD},
        {"{\"u\":1,\"s\":\"X\",\"a\":\"2\"}", MD_DERR_MISSING_FIELD},
        {"{\"u\":1,\"s\":\"X\",\"b\":\"2\"}", MD_DERR_MISSING_FIELD},
        {"{\"u\":1,\"b\":\"1\",\"a\":\"2\"}", MD_DERR_MISSING_FIELD},
        {TR("\"p\":\"NaN\""), MD_DERR_BAD_NUMBER},
        {TR("\"p\":NaN"), MD_DERR_BAD_NUMBER},
        {TR("\"q\":\"Infinity\""), MD_DERR_BAD_NUMBER},
        {TR("\"p\":\"1e400\""), MD_DERR_BAD_NUMBER},
        {TR("\"p\":\"\""), MD_DERR_BAD_NUMBER},
        {TR("\"p\":\"1.2.3\""), MD_DERR_BAD_NUMBER},
        {TR("\"p\":true"), MD_DERR_BAD_NUMBER},
        {TR("\"p\":\"1234567890123456789\""), MD_DERR_BAD_NUMBER},
        {TR("\"t\":-1"), MD_DERR_BAD_NUMBER},
        {TR("\"t\":1.5"), MD_DERR_BAD_NUMBER},
        {TR("\"t\":18446744073709551616"), MD_DERR_BAD_NUMBER},
        {TR("\"T\":9223372036855"), MD_DERR_BAD_NUMBER},
        {TR("\"T\":-1"), MD_DERR_BAD_NUMBER},
        {TR("\"E\":\"soon\""), MD_DERR_BAD_NUMBER},
        {"{\"e\":\"aggTrade\",\"s\":\"X\",\"a\":\"x\",\"p\":\"1\",\"q\":\"1\"}", MD_DERR_BAD_NUMBER},
        {BK("\"b\":\"NaN\""), MD_DERR_BAD_NUMBER},
        {BK("\"A\":\"-\""), MD_DERR_BAD_NUMBER},
        {BK("\"u\":\"x\""), MD_DERR_BAD_NUMBER},
        {TR("\"q\":\"-100\""), MD_DERR_NEGATIVE},
        {BK("\"B\":\"-1\""), MD_DERR_NEGATIVE},
        {BK("\"A\":-0.5"), MD_DERR_NEGATIVE},
        {TR("\"s\":\"\""), MD_DERR_SYMBOL},
        {TR("\"s\":\"*\""), MD_DERR_SYMBOL},
        {TR("\"s\":\"BNB BTC\""), MD_DERR_SYMBOL},
        {TR("\"s\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456\""), MD_DERR_SYMBOL},
        {TR("\"s\":12"), MD_DERR_SYMBOL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        capture c = {0};
        dgram(&c, cases[i].line);
        if (c.n != 0 || c.st.err[cases[i].why] != 1 || errs(&c) != 1 || c.st.skipped)
            fail_msg("case %zu: want %s: %s (ticks %zu, errors %llu, skipped %llu)", i,
                     md_decode_err_name[cases[i].why], cases[i].line, c.n,
                     (unsigned long long)errs(&c), (unsigned long long)c.st.skipped);
        assert_int_equal(c.rejects, 1);
        assert_int_equal(c.last_why, cases[i].why);
    }
    /* negative prices are as allowed as in jsonl; only sizes are refused */
    capture c = {0};
    dgram(&c, TR("\"p\":\"-0.5\""));
    assert_int_equal(c.n, 1);
    assert_dec_str(c.t[0].v[MD_T_PRICE], "-0.5");
}

/* Escapes, unknown and duplicate keys, exact decimals. */
static void test_json_details(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"e\":\"tr\\u0061de\",\"s\":\"BN\\u0042BTC\",\"t\":7,\"p\":\"0.00000001\","
              "\"q\":\"12345.67800000\",\"x\":{\"y\":[1,{\"z\":null}]},\"\\u0070\":\"99.10\"}\n"
              "{\"e\":\"trade\",\"s\":\"X\",\"t\":1,\"t\":2,\"p\":\"1\",\"p\":\"2.50\",\"q\":\"1\","
              "\"P\":\"bogus\",\"Q\":[]}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].symbol, "BNBBTC");
    assert_int_equal(c.t[0].seq, 7);
    /* "\u0070" is "p": the last one given wins */
    assert_dec_str(c.t[0].v[MD_T_PRICE], "99.10");
    assert_dec_str(c.t[0].v[MD_T_SIZE], "12345.67800000");
    assert_int_equal(c.t[1].seq, 2);
    assert_dec_str(c.t[1].v[MD_T_PRICE], "2.50");
}

/* Ticks are built from a zeroed md_tick, so equal decodes are equal bytes. */
static void assert_same(const capture *a, const capture *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->t, b->t, a->n * sizeof a->t[0]);
    assert_memory_equal(&a->st, &b->st, sizeof a->st);
}

static void test_stream_every_split(void **state)
{
    (void)state;
    static char b[2 * MD_JSONL_LINE_MAX + 2048];
    size_t n = (size_t)sprintf(b, SPOT_BOOK "\r\n\n{\"stream\":\"bnbbtc@trade\",\"data\":" TRADE
                                            "}\ngarbage\n"
                                            "{\"e\":\"depthUpdate\",\"s\":\"X\",\"b\":[],\"a\":[]}\n");
    /* an oversized line: a trade padded past the limit */
    n += (size_t)sprintf(b + n, "{\"e\":\"trade\",\"s\":\"X\",\"t\":9,\"p\":\"1\",\"q\":\"1\",\"pad\":\"");
    memset(b + n, 'x', MD_JSONL_LINE_MAX);
    n += MD_JSONL_LINE_MAX;
    n += (size_t)sprintf(b + n, "\"}\n" AGG "\n" TR("\"q\":\"-1\"") "\n" FUT_BOOK);

    capture whole = {0};
    md_decoder_ops o = ops_for(&whole);
    assert_int_equal(md_binance_decode(b, n, 1, NULL, &o), n);
    assert_int_equal(whole.n, 4);
    assert_int_equal(whole.st.skipped, 1);
    assert_int_equal(whole.st.err[MD_DERR_SYNTAX], 1);
    assert_int_equal(whole.st.err[MD_DERR_OVERSIZED], 1);
    assert_int_equal(whole.st.err[MD_DERR_NEGATIVE], 1);
    assert_int_equal(errs(&whole), 3);

    static capture c;
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&c, 0, sizeof c);
        feed_lines(md_binance_decode, &c, b, n, &cut, 1);
        assert_same(&whole, &c);
    }
    static size_t cuts[sizeof b];
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    memset(&c, 0, sizeof c);
    feed_lines(md_binance_decode, &c, b, n, cuts, n);
    assert_same(&whole, &c);
}

/* The promise the fixed source names exist for, checked against the real
 * coalescer: the same capture from two connections (interleaved, and one
 * behind the other) gives exactly the state of one. */
static void apply_all(md_state *st, const capture *c, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        md_tick t = c->t[i];
        t.src_hash = md_sym_hash(t.source, t.src_len); /* as the worker does */
        md_state_apply(st, &t, 0);
    }
}

static void test_redundant_connections(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, TRADE "\n" AGG "\n" SPOT_BOOK "\n"
              "{\"e\":\"trade\",\"s\":\"BNBBTC\",\"t\":12346,\"p\":\"0.002\",\"q\":\"5.5\",\"T\":1672515782137}\n"
              "{\"e\":\"trade\",\"s\":\"BNBBTC\",\"t\":12344,\"p\":\"0.009\",\"q\":\"7\"}\n"
              "{\"u\":400900218,\"s\":\"BNBUSDT\",\"b\":\"25.4\",\"a\":\"25.5\"}\n"
              "{\"u\":400900216,\"s\":\"BNBUSDT\",\"b\":\"1\",\"a\":\"2\"}\n");
    assert_int_equal(c.n, 7);

    md_state one, two;
    assert_int_equal(md_state_init(&one, 16), 0);
    assert_int_equal(md_state_init(&two, 16), 0);
    apply_all(&one, &c, 0, c.n);
    for (size_t i = 0; i < c.n; i++) { /* A and B interleaved */
        apply_all(&two, &c, i, i + 1);
        apply_all(&two, &c, i, i + 1);
    }
    apply_all(&two, &c, 0, c.n); /* and a third, late, connection */

    static const char *const syms[] = {"BNBBTC", "BNBUSDT"};
    for (int k = 0; k < 2; k++) {
        md_sym *a = md_state_find(&one, syms[k], strlen(syms[k]));
        md_sym *b = md_state_find(&two, syms[k], strlen(syms[k]));
        assert_non_null(a);
        assert_non_null(b);
        const md_dec *va[] = {&a->last, &a->bid, &a->ask, &a->volume, &a->high, &a->low};
        const md_dec *vb[] = {&b->last, &b->bid, &b->ask, &b->volume, &b->high, &b->low};
        for (int f = 0; f < 6; f++) {
            assert_int_equal(va[f]->mant, vb[f]->mant);
            assert_int_equal(va[f]->exp, vb[f]->exp);
        }
    }
    md_sym *s = md_state_find(&one, "BNBBTC", 6);
    /* trade 12345 (100) + aggTrade 12345 (100, its own source) + trade
     * 12346 (5.5); trade 12344 is older than 12346 and dropped */
    assert_dec_str(s->volume, "205.5");
    assert_dec_str(s->last, "0.002");
    assert_dec_str(s->high, "0.002");
    s = md_state_find(&one, "BNBUSDT", 7);
    assert_dec_str(s->bid, "25.4");
    md_state_free(&one);
    md_state_free(&two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_book_ticker_spot),
        cmocka_unit_test(test_book_ticker_futures),
        cmocka_unit_test(test_trade_and_agg_trade),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_combined_wrapper),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_json_details),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_redundant_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
