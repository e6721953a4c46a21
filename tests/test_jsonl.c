/* jsonl native dialect decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_decode.h"

#include "decode_capture.h"

/* Decodes s as one datagram. */
#define dgram(c, s) decode_dgram(md_jsonl_decode, (c), (s))

static void assert_dec(md_dec d, int64_t mant, int exp)
{
    assert_int_equal(d.exp, exp);
    if (exp != MD_DEC_ABSENT)
        assert_int_equal(d.mant, mant);
}

static void test_design_examples(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c,
          "{\"type\":\"quote\",\"symbol\":\"MNQZ5\",\"bid\":21000.00,\"ask\":21000.50,\"bid_size\":3,"
          "\"ask_size\":5,\"ts\":1763740000123456789,\"seq\":17,\"source\":\"cme-a\"}\n"
          "{\"type\":\"trade\",\"symbol\":\"MNQZ5\",\"price\":21000.25,\"size\":2,\"ts\":"
          "1763740000223456789,\"seq\":18}\n"
          "{\"type\":\"heartbeat\",\"source\":\"cme-a\",\"ts\":1763740001000000000}\n"
          "{\"type\":\"reset\",\"symbol\":\"*\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.st.ok, 4);

    const md_tick *t = &c.t[0];
    assert_int_equal(t->type, MD_TICK_QUOTE);
    assert_string_equal(t->symbol, "MNQZ5");
    assert_int_equal(t->sym_len, 5);
    assert_string_equal(t->source, "cme-a");
    assert_int_equal(t->src_len, 5);
    assert_int_equal(t->flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_int_equal(t->seq, 17);
    assert_int_equal(t->ts_ns, 1763740000123456789LL);
    assert_dec(t->v[MD_Q_BID], 2100000, -2);
    assert_dec(t->v[MD_Q_ASK], 2100050, -2);
    assert_dec(t->v[MD_Q_BID_SIZE], 3, 0);
    assert_dec(t->v[MD_Q_ASK_SIZE], 5, 0);
    assert_dec_str(t->v[MD_Q_BID], "21000.00");
    assert_int_equal(t->feed_id, 0);
    assert_int_equal(t->src_hash, 0);
    assert_int_equal(t->origin_ns, 0);

    t = &c.t[1];
    assert_int_equal(t->type, MD_TICK_TRADE);
    assert_int_equal(t->src_len, 0);
    assert_string_equal(t->source, "");
    assert_int_equal(t->seq, 18);
    assert_dec(t->v[MD_T_PRICE], 2100025, -2);
    assert_dec(t->v[MD_T_SIZE], 2, 0);
    assert_dec(t->v[2], 0, MD_DEC_ABSENT);
    assert_dec(t->v[3], 0, MD_DEC_ABSENT);

    t = &c.t[2];
    assert_int_equal(t->type, MD_TICK_HEARTBEAT);
    assert_int_equal(t->sym_len, 0);
    assert_string_equal(t->source, "cme-a");
    assert_int_equal(t->flags, MD_TICK_F_TS);
    assert_int_equal(t->ts_ns, 1763740001000000000LL);

    t = &c.t[3];
    assert_int_equal(t->type, MD_TICK_RESET);
    assert_string_equal(t->symbol, "*");
    assert_int_equal(t->flags, 0);
    for (int i = 0; i < 4; i++)
        assert_dec(t->v[i], 0, MD_DEC_ABSENT);
}

static void test_origin(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c,
          "{\"type\":\"trade\",\"symbol\":\"A\",\"price\":1,\"size\":2,\"origin_ns\":5123456789}\n"
          "{\"type\":\"trade\",\"symbol\":\"B\",\"price\":1,\"size\":2}\n"
          "{\"type\":\"trade\",\"symbol\":\"C\",\"price\":1,\"size\":2,\"origin_ns\":-1}\n"
          "{\"type\":\"trade\",\"symbol\":\"D\",\"price\":1,\"size\":2,\"origin_ns\":\"77\"}\n");
    assert_int_equal(c.n, 3);
    assert_int_equal(c.t[0].origin_ns, 5123456789LL);
    assert_int_equal(c.t[1].origin_ns, 0);
    assert_string_equal(c.t[2].symbol, "D");
    assert_int_equal(c.t[2].origin_ns, 77);
    assert_int_equal(c.st.err[MD_DERR_NEGATIVE] + c.st.err[MD_DERR_BAD_NUMBER], 1);
}

static void test_numbers(void **state)
{
    (void)state;
    capture c = {0};
    /* decimal strings, integer strings, exponents, negative prices */
    dgram(&c, "{\"type\":\"quote\",\"symbol\":\"BTCUSDT\",\"bid\":\"0.00012345\",\"ask\":\"21000.25\","
              "\"bid_size\":\"1e-3\",\"ask_size\":1.5E2,\"ts\":\"1763740000123456789\",\"seq\":\"17\"}\n"
              "{\"type\":\"trade\",\"symbol\":\"CL\",\"price\":-37.63,\"size\":\"0\"}\n"
              "{\"type\":\"quote\",\"symbol\":\"X\",\"bid\":null,\"ask\":1,\"ts\":null,\"seq\":null}\n"
              "{\"type\":\"trade\",\"symbol\":\"X\",\"price\":1,\"size\":1,\"ts\":0,\"seq\":"
              "18446744073709551615}\n"
              "{\"type\":\"trade\",\"symbol\":\"X\",\"price\":1,\"size\":1,\"ts\":9223372036854775807}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 5);
    assert_dec(c.t[0].v[MD_Q_BID], 12345, -8);
    assert_dec_str(c.t[0].v[MD_Q_ASK], "21000.25");
    assert_dec(c.t[0].v[MD_Q_BID_SIZE], 1, -3);
    assert_dec(c.t[0].v[MD_Q_ASK_SIZE], 150, 0);
    assert_int_equal(c.t[0].ts_ns, 1763740000123456789LL);
    assert_int_equal(c.t[0].seq, 17);
    assert_int_equal(c.t[0].flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_dec(c.t[1].v[MD_T_PRICE], -3763, -2);
    assert_dec(c.t[1].v[MD_T_SIZE], 0, 0);
    assert_dec(c.t[2].v[MD_Q_BID], 0, MD_DEC_ABSENT);
    assert_dec(c.t[2].v[MD_Q_ASK], 1, 0);
    assert_int_equal(c.t[2].flags, 0);
    assert_int_equal(c.t[3].seq, UINT64_MAX);
    assert_int_equal(c.t[3].ts_ns, 0);
    assert_int_equal(c.t[3].flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_int_equal(c.t[4].ts_ns, INT64_MAX);
}

static void test_quote_only_bid(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"type\":\"quote\",\"symbol\":\"ESZ5\",\"bid\":6000.25}");
    assert_int_equal(c.n, 1);
    assert_int_equal(errs(&c), 0);
    assert_dec(c.t[0].v[MD_Q_BID], 600025, -2);
    assert_dec(c.t[0].v[MD_Q_ASK], 0, MD_DEC_ABSENT);
    assert_dec(c.t[0].v[MD_Q_BID_SIZE], 0, MD_DEC_ABSENT);
    assert_dec(c.t[0].v[MD_Q_ASK_SIZE], 0, MD_DEC_ABSENT);
    memset(&c, 0, sizeof c);
    dgram(&c, "{\"type\":\"quote\",\"symbol\":\"ESZ5\",\"ask\":\"6000.50\",\"ask_size\":7}");
    assert_int_equal(c.n, 1);
    assert_dec(c.t[0].v[MD_Q_ASK], 600050, -2);
    assert_dec(c.t[0].v[MD_Q_BID], 0, MD_DEC_ABSENT);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"meta\":{\"a\":[1,2,{\"b\":\"}]\\\"\"}],\"c\":{}},\"type\":\"trade\",\"x\":[],"
              "\"flag\":true,\"off\":false,\"nil\":null,\"n\":-1.5e300,\"s\":\"\\u00e9t\\u00e9 \xc3\xa9\","
              "\"symbol\":\"MNQZ5\",\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"
              "\"price\":\"21000.25\",\"size\":2,\"account\":\"PAAPEX2666680000001\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "MNQZ5");
    assert_dec(c.t[0].v[MD_T_PRICE], 2100025, -2);

    /* fields of other types are ignored, even if they would not parse */
    memset(&c, 0, sizeof c);
    dgram(&c, "{\"type\":\"heartbeat\",\"source\":\"s\",\"price\":\"junk\",\"bid\":NaN}\n"
              "{\"type\":\"trade\",\"symbol\":\"A\",\"price\":1,\"size\":1,\"bid\":\"junk\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);

    /* whitespace anywhere JSON allows it; empty object is just a missing type */
    memset(&c, 0, sizeof c);
    dgram(&c, "  {  \"type\" :\t\"reset\" , \"symbol\" : \"ES\"  }  \r\n{}\n{ }\n");
    assert_int_equal(c.n, 1);
    assert_int_equal(c.st.err[MD_DERR_MISSING_FIELD], 2);
}

static void test_escapes_and_duplicates(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"t\\u0079pe\":\"qu\\u006fte\",\"symbol\":\"MN\\u0051Z5\",\"source\":\"a\\/b\\\\c\\\"d\","
              "\"bid\":1}\n"
              "{\"type\":\"trade\",\"symbol\":\"OLD\",\"symbol\":\"NEW\",\"price\":1,\"price\":2.5,"
              "\"size\":1}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.t[0].type, MD_TICK_QUOTE);
    assert_string_equal(c.t[0].symbol, "MNQZ5");
    assert_string_equal(c.t[0].source, "a/b\\c\"d");
    assert_int_equal(c.t[0].src_len, 7);
    assert_string_equal(c.t[1].symbol, "NEW");
    assert_dec(c.t[1].v[MD_T_PRICE], 25, -1);

    /* escapes that unescape to something not printable: symbol error */
    static const char *bad[] = {
        "{\"type\":\"quote\",\"symbol\":\"A\\nB\",\"bid\":1}",
        "{\"type\":\"quote\",\"symbol\":\"A\\u0000B\",\"bid\":1}",
        "{\"type\":\"quote\",\"symbol\":\"A\\u00e9\",\"bid\":1}",
        "{\"type\":\"quote\",\"symbol\":\"A\\u0020B\",\"bid\":1}",
        "{\"type\":\"quote\",\"symbol\":\"MNQZ5\",\"source\":\"a\\tb\",\"bid\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c);
        dgram(&c, bad[i]);
        assert_int_equal(c.n, 0);
        assert_int_equal(c.st.err[MD_DERR_SYMBOL], 1);
    }
}

/* good | bad | good as one datagram: exactly one error of reason why, and
 * both good lines decoded. */
static void expect_line_error(const char *bad, md_decode_err why)
{
    static char buf[16384];
    capture c = {0};
    int n = snprintf(buf, sizeof buf,
                     "{\"type\":\"quote\",\"symbol\":\"GOOD1\",\"bid\":1}\n%s\n"
                     "{\"type\":\"trade\",\"symbol\":\"GOOD2\",\"price\":1,\"size\":1}\n",
                     bad);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    dgram(&c, buf);
    if (c.st.err[why] != 1 || errs(&c) != 1)
        fail_msg("line %.120s: want one %s, got %llu of it and %llu in all", bad,
                 md_decode_err_name[why], (unsigned long long)c.st.err[why],
                 (unsigned long long)errs(&c));
    assert_int_equal(c.rejects, 1);
    assert_int_equal(c.last_why, why);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].symbol, "GOOD1");
    assert_string_equal(c.t[1].symbol, "GOOD2");
}

#define Q(rest) "{\"type\":\"quote\",\"symbol\":\"X\"," rest "}"
#define T(rest) "{\"type\":\"trade\",\"symbol\":\"X\"," rest "}"

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        md_decode_err why;
    } cases[] = {
        {"not json", MD_DERR_SYNTAX},
        {"\x01\x02\xff\xfe", MD_DERR_SYNTAX},
        {"[1,2]", MD_DERR_SYNTAX},
        {"{\"type\":\"quote\"", MD_DERR_SYNTAX},
        {"{\"type\":\"quote\",}", MD_DERR_SYNTAX},
        {"{\"type\" \"quote\"}", MD_DERR_SYNTAX},
        {"{\"type\":}", MD_DERR_SYNTAX},
        {"{type:\"quote\"}", MD_DERR_SYNTAX},
        {"{\"type\":\"quote\"} x", MD_DERR_SYNTAX},
        {"{\"type\":\"quote\"}{}", MD_DERR_SYNTAX},
        {"{\"type\":\"quo", MD_DERR_SYNTAX},
        {"{\"type\":\"qu\tote\"}", MD_DERR_SYNTAX},
        {"{\"type\":\"q\\x\"}", MD_DERR_SYNTAX},
        {"{\"type\":\"q\\u12\"}", MD_DERR_SYNTAX},
        {"{\"a\":[}", MD_DERR_SYNTAX},
        {"{\"a\":[1}],\"type\":\"reset\",\"symbol\":\"X\"}", MD_DERR_SYNTAX},
        {"{\"a\":{\"b\":1]}", MD_DERR_SYNTAX},
        {"{\"a\":@}", MD_DERR_SYNTAX},
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", MD_DERR_SYNTAX},
        {"{\"type\":\"Position\",\"account\":\"A\",\"symbol\":\"X\",\"net_pos\":2}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":\"orders\",\"account\":\"A\",\"order_id\":\"1\",\"status\":\"filled\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":\"bookTicker\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":\"\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":\"QUOTE\",\"symbol\":\"X\",\"bid\":1}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":\"quote-extended-with-a-long-name\"}", MD_DERR_UNKNOWN_TYPE},
        {"{\"type\":1}", MD_DERR_UNKNOWN_TYPE},
        {"{\"symbol\":\"X\",\"bid\":1}", MD_DERR_MISSING_FIELD},
        {"{\"type\":null,\"symbol\":\"X\",\"bid\":1}", MD_DERR_MISSING_FIELD},
        {"{\"type\":\"quote\",\"bid\":1}", MD_DERR_MISSING_FIELD},
        {Q("\"bid_size\":1,\"ask_size\":2"), MD_DERR_MISSING_FIELD},
        {Q("\"bid\":null,\"ask\":null"), MD_DERR_MISSING_FIELD},
        {T("\"price\":1"), MD_DERR_MISSING_FIELD},
        {T("\"size\":1"), MD_DERR_MISSING_FIELD},
        {"{\"type\":\"heartbeat\",\"ts\":1}", MD_DERR_MISSING_FIELD},
        {"{\"type\":\"reset\"}", MD_DERR_MISSING_FIELD},
        {Q("\"bid\":NaN"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":\"NaN\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":Infinity"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":-Infinity"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":\"inf\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1.2.3"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":\"\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":\" 1\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":\"\\u0031\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":true"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":{\"v\":1}"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":[1]"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1234567890123456789"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1e-19"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":.5"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ask_size\":\"x\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":-1"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":\"-1\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":1.5"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":1e9"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":9223372036854775808"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":true"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"ts\":\"\""), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"seq\":-5"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"seq\":18446744073709551616"), MD_DERR_BAD_NUMBER},
        {T("\"price\":1,\"size\":NaN"), MD_DERR_BAD_NUMBER},
        {Q("\"bid\":1,\"bid_size\":-1"), MD_DERR_NEGATIVE},
        {Q("\"bid\":1,\"ask_size\":\"-0.5\""), MD_DERR_NEGATIVE},
        {T("\"price\":1,\"size\":-2"), MD_DERR_NEGATIVE},
        {"{\"type\":\"quote\",\"symbol\":\"\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"A B\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"\xc3\xa9\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"*\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"trade\",\"symbol\":\"*\",\"price\":1,\"size\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":5,\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"X\",\"source\":\"\",\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"quote\",\"symbol\":\"X\",\"source\":[\"a\"],\"bid\":1}", MD_DERR_SYMBOL},
        {"{\"type\":\"heartbeat\",\"source\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\"}", MD_DERR_SYMBOL},
        {"{\"type\":\"reset\",\"symbol\":\"\"}", MD_DERR_SYMBOL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_line_error(cases[i].line, cases[i].why);

    /* 31-byte symbol and source are fine */
    capture c = {0};
    dgram(&c, "{\"type\":\"quote\",\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234\",\"source\":"
              "\"abcdefghijklmnopqrstuvwxyz01234\",\"bid\":1}");
    assert_int_equal(c.n, 1);
    assert_int_equal(c.t[0].sym_len, 31);
    assert_int_equal(c.t[0].src_len, 31);
    assert_string_equal(c.t[0].symbol, "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
}

static void test_lines(void **state)
{
    (void)state;
    capture c = {0};
    /* CRLF, blank and whitespace-only lines, no final newline in a datagram */
    dgram(&c, "\n\r\n   \n\t\r\n{\"type\":\"reset\",\"symbol\":\"A\"}\r\n\n"
              "{\"type\":\"reset\",\"symbol\":\"B\"}");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.rejects, 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[1].symbol, "B");

    /* stream: the unterminated tail is left for the next read */
    memset(&c, 0, sizeof c);
    md_decoder_ops o = ops_for(&c);
    const char *s = "{\"type\":\"reset\",\"symbol\":\"A\"}\n{\"type\":\"reset\",\"sym";
    int skipping = 0;
    assert_int_equal(md_jsonl_decode(s, strlen(s), 0, &skipping, &o), 30);
    assert_int_equal(c.n, 1);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(skipping, 0);
    /* and decoded or dropped with final */
    assert_int_equal(md_jsonl_decode(s + 30, strlen(s) - 30, 1, &skipping, &o), strlen(s) - 30);
    assert_int_equal(c.st.err[MD_DERR_SYNTAX], 1);
}

/* A line of exactly `total` bytes including its '\n': a valid reset padded
 * with spaces. */
static size_t make_line(char *b, size_t total, const char *sym)
{
    int n = snprintf(b, total, "{\"type\":\"reset\",\"symbol\":\"%s\"}", sym);
    memset(b + n, ' ', total - 1 - (size_t)n);
    b[total - 1] = '\n';
    return total;
}

static void test_oversized(void **state)
{
    (void)state;
    static char b[3 * MD_JSONL_LINE_MAX + 256];
    capture c = {0};
    md_decoder_ops o = ops_for(&c);

    /* MD_JSONL_LINE_MAX bytes with the newline is the largest line */
    size_t n = make_line(b, MD_JSONL_LINE_MAX, "MAX");
    n += make_line(b + n, MD_JSONL_LINE_MAX + 1, "OVER");
    n += (size_t)sprintf(b + n, "{\"type\":\"reset\",\"symbol\":\"AFTER\"}\n");
    assert_int_equal(md_jsonl_decode(b, n, 1, NULL, &o), n);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].symbol, "MAX");
    assert_string_equal(c.t[1].symbol, "AFTER");
    assert_int_equal(c.st.err[MD_DERR_OVERSIZED], 1);
    assert_int_equal(errs(&c), 1);
    assert_int_equal(c.last_why, MD_DERR_OVERSIZED);

    /* stream: MD_JSONL_LINE_MAX bytes with no newline -> oversized, skip mode */
    memset(&c, 0, sizeof c);
    int skipping = 0;
    memset(b, 'x', MD_JSONL_LINE_MAX);
    assert_int_equal(md_jsonl_decode(b, MD_JSONL_LINE_MAX - 1, 0, &skipping, &o), 0);
    assert_int_equal(skipping, 0);
    assert_int_equal(md_jsonl_decode(b, MD_JSONL_LINE_MAX, 0, &skipping, &o), MD_JSONL_LINE_MAX);
    assert_int_equal(skipping, 1);
    assert_int_equal(c.st.err[MD_DERR_OVERSIZED], 1);
    /* more of the same line: swallowed silently */
    assert_int_equal(md_jsonl_decode(b, 100, 0, &skipping, &o), 100);
    assert_int_equal(skipping, 1);
    /* end of the long line, then a good one */
    n = (size_t)sprintf(b, "tail\"}\n{\"type\":\"reset\",\"symbol\":\"OK\"}\n");
    assert_int_equal(md_jsonl_decode(b, n, 0, &skipping, &o), n);
    assert_int_equal(skipping, 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "OK");
    assert_int_equal(errs(&c), 1);

    /* the skipping flag alone discards through the next newline */
    memset(&c, 0, sizeof c);
    skipping = 1;
    n = (size_t)sprintf(b, "{\"type\":\"reset\",\"symbol\":\"GONE\"}\n{\"type\":\"reset\",\"symbol\":\"KEPT\"}\n");
    assert_int_equal(md_jsonl_decode(b, n, 0, &skipping, &o), n);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "KEPT");
    assert_int_equal(errs(&c), 0);
}

static void assert_same(const capture *a, const capture *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const md_tick *x = &a->t[i], *y = &b->t[i];
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->sym_len, y->sym_len);
        assert_int_equal(x->src_len, y->src_len);
        assert_string_equal(x->symbol, y->symbol);
        assert_string_equal(x->source, y->source);
        assert_int_equal(x->seq, y->seq);
        assert_int_equal(x->ts_ns, y->ts_ns);
        for (int k = 0; k < 4; k++) {
            assert_int_equal(x->v[k].mant, y->v[k].mant);
            assert_int_equal(x->v[k].exp, y->v[k].exp);
        }
    }
    for (int e = 0; e < MD_DERR_COUNT; e++)
        assert_int_equal(a->st.err[e], b->st.err[e]);
    assert_int_equal(a->st.ok, b->st.ok);
}

static void test_stream_every_split(void **state)
{
    (void)state;
    static char b[2 * MD_JSONL_LINE_MAX + 1024];
    size_t n = (size_t)sprintf(
        b, "{\"type\":\"quote\",\"symbol\":\"MNQZ5\",\"bid\":\"21000.00\",\"ask\":21000.50,"
           "\"ts\":1763740000123456789,\"seq\":17,\"source\":\"cme-a\"}\r\n"
           "\n"
           "{\"type\":\"trade\",\"symbol\":\"MN\\u0051Z5\",\"price\":21000.25,\"size\":2,\"x\":{\"y\":[1]}}\n"
           "garbage\n"
           "{\"type\":\"heartbeat\",\"source\":\"cme-a\"}\n");
    n += make_line(b + n, MD_JSONL_LINE_MAX + 10, "LONG");
    n += (size_t)sprintf(b + n, "{\"type\":\"quote\",\"symbol\":\"ES\",\"bid_size\":-1,\"bid\":1}\n"
                                "{\"type\":\"reset\",\"symbol\":\"*\"}\n"
                                "{\"type\":\"quote\",\"symbol\":\"ES\",\"bid\":1}");
    capture whole = {0};
    md_decoder_ops o = ops_for(&whole);
    assert_int_equal(md_jsonl_decode(b, n, 1, NULL, &o), n);
    assert_int_equal(whole.n, 5);
    assert_int_equal(whole.st.err[MD_DERR_SYNTAX], 1);
    assert_int_equal(whole.st.err[MD_DERR_OVERSIZED], 1);
    assert_int_equal(whole.st.err[MD_DERR_NEGATIVE], 1);
    assert_int_equal(errs(&whole), 3);

    static capture c;
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&c, 0, sizeof c);
        feed_lines(md_jsonl_decode, &c, b, n, &cut, 1);
        assert_same(&whole, &c);
    }
    for (size_t c1 = 0; c1 <= n; c1 += 37) {
        for (size_t c2 = c1; c2 <= n; c2 += 41) {
            size_t cuts[2] = {c1, c2};
            memset(&c, 0, sizeof c);
            feed_lines(md_jsonl_decode, &c, b, n, cuts, 2);
            assert_same(&whole, &c);
        }
    }
    static size_t cuts[sizeof b];
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    memset(&c, 0, sizeof c);
    feed_lines(md_jsonl_decode, &c, b, n, cuts, n);
    assert_same(&whole, &c);
}

/* ---- account messages: position, order, balance, account ---- */

/* The four account examples of DESIGN.md, as written there (with numbers
 * for its "ts":...). */
static void test_account_design_examples(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c,
          "{\"type\":\"position\",\"account\":\"PAAPEX2666680000001\",\"symbol\":\"MNQZ5\","
          "\"net_pos\":2,\"avg_price\":21000.5,\"ts\":1763740000123456789}\n"
          "{\"type\":\"order\",\"account\":\"PAAPEX2666680000001\",\"order_id\":\"D17158695\","
          "\"symbol\":\"MNQZ5\",\"side\":\"buy\",\"qty\":1,\"price\":20990.0,\"status\":\"working\","
          "\"ts\":1763740000123456790}\n"
          "{\"type\":\"balance\",\"account\":\"...\",\"cash\":50000.0,\"realized_pnl\":12.5,"
          "\"unrealized_pnl\":-3.0,\"ts\":1763740000123456791}\n"
          "{\"type\":\"account\",\"account\":\"PAAPEX2666680000001\",\"id\":\"D17158695\","
          "\"active\":true,\"ts\":1763740000123456792}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.st.ok, 4);
    for (size_t i = 0; i < 4; i++) {
        const md_acct *a = &c.a[i];
        assert_int_equal(c.t[i].type, MD_TICK_POSITION + i);
        assert_int_equal(a->t.type, MD_TICK_POSITION + i);
        assert_int_equal(a->t.flags, MD_TICK_F_TS);
        assert_int_equal(a->t.ts_ns, 1763740000123456789LL + (int64_t)i);
        assert_int_equal(a->t.seq, 0);
        assert_int_equal(a->t.src_len, 0);
        assert_string_equal(a->t.source, "");
        assert_int_equal(a->t.origin_ns, 0);
        assert_acct_clean(a);
        assert_dec(a->t.v[3], 0, MD_DEC_ABSENT);
    }

    const md_acct *a = &c.a[0];
    assert_string_equal(a->account, "PAAPEX2666680000001");
    assert_int_equal(a->acct_len, 19);
    assert_string_equal(a->t.symbol, "MNQZ5");
    assert_int_equal(a->t.sym_len, 5);
    assert_dec(a->t.v[MD_P_NET_POS], 2, 0);
    assert_dec(a->t.v[MD_P_AVG_PRICE], 210005, -1);
    assert_dec(a->t.v[2], 0, MD_DEC_ABSENT);
    assert_int_equal(a->ref_len + a->side + a->status + a->active, 0);

    a = &c.a[1];
    assert_string_equal(a->account, "PAAPEX2666680000001");
    assert_string_equal(a->ref, "D17158695");
    assert_int_equal(a->ref_len, 9);
    assert_string_equal(a->t.symbol, "MNQZ5");
    assert_int_equal(a->side, MD_SIDE_BUY);
    assert_int_equal(a->status, MD_ORDER_WORKING);
    assert_int_equal(a->active, 0);
    assert_dec(a->t.v[MD_O_QTY], 1, 0);
    assert_dec(a->t.v[MD_O_PRICE], 209900, -1);
    assert_dec_str(a->t.v[MD_O_PRICE], "20990.0");
    assert_dec(a->t.v[2], 0, MD_DEC_ABSENT);

    a = &c.a[2];
    assert_string_equal(a->account, "...");
    assert_int_equal(a->acct_len, 3);
    assert_int_equal(a->t.sym_len, 0);
    assert_dec(a->t.v[MD_B_CASH], 500000, -1);
    assert_dec(a->t.v[MD_B_REALIZED], 125, -1);
    assert_dec(a->t.v[MD_B_UNREALIZED], -30, -1);
    assert_dec_str(a->t.v[MD_B_UNREALIZED], "-3.0");
    assert_int_equal(a->ref_len + a->side + a->status + a->active, 0);

    a = &c.a[3];
    assert_string_equal(a->account, "PAAPEX2666680000001");
    assert_string_equal(a->ref, "D17158695");
    assert_int_equal(a->ref_len, 9);
    assert_int_equal(a->t.sym_len, 0);
    assert_int_equal(a->active, MD_ACTIVE_YES);
    assert_int_equal(a->side + a->status, 0);
    for (int i = 0; i < 4; i++)
        assert_dec(a->t.v[i], 0, MD_DEC_ABSENT);

    /* the tick the callback got is the head of the record */
    assert_memory_equal(&c.t[1], &c.a[1].t, sizeof c.t[1]);
}

/* Optional fields left out or null, the other words, numbers as strings,
 * source/seq/origin as on prices. */
static void test_account_optional(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c,
          /* 0: flat position, no average price, number as a string */
          "{\"type\":\"position\",\"account\":\"A\",\"symbol\":\"ES\",\"net_pos\":\"0\"}\n"
          /* 1: short position, avg_price null */
          "{\"type\":\"position\",\"account\":\"A\",\"symbol\":\"ES\",\"net_pos\":-3,"
          "\"avg_price\":null,\"source\":\"apex\",\"seq\":\"9\",\"origin_ns\":55}\n"
          /* 2: order with only what it needs */
          "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"o-1\",\"status\":\"filled\"}\n"
          /* 3: sell, the American spelling, nulls */
          "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"o-2\",\"status\":\"canceled\","
          "\"side\":\"sell\",\"symbol\":null,\"qty\":\"0.5\",\"price\":\"-1.25\"}\n"
          /* 4, 5: the other statuses, side null */
          "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"o-3\",\"status\":\"cancelled\","
          "\"side\":null}\n"
          "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"o-4\",\"status\":\"rejected\","
          "\"qty\":0}\n"
          /* 6: one balance value is enough */
          "{\"type\":\"balance\",\"account\":\"A\",\"realized_pnl\":\"-12.50\",\"cash\":null}\n"
          /* 7, 8, 9: account without id; inactive; active null */
          "{\"type\":\"account\",\"account\":\"A\"}\n"
          "{\"type\":\"account\",\"account\":\"A\",\"active\":false,\"id\":null}\n"
          "{\"type\":\"account\",\"account\":\"A\",\"active\":null,\"id\":\"x\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 10);
    for (size_t i = 0; i < c.n; i++)
        assert_acct_clean(&c.a[i]);

    assert_dec(c.a[0].t.v[MD_P_NET_POS], 0, 0);
    assert_dec(c.a[0].t.v[MD_P_AVG_PRICE], 0, MD_DEC_ABSENT);
    assert_int_equal(c.a[0].t.flags, 0);

    const md_acct *a = &c.a[1];
    assert_dec(a->t.v[MD_P_NET_POS], -3, 0);
    assert_dec(a->t.v[MD_P_AVG_PRICE], 0, MD_DEC_ABSENT);
    assert_string_equal(a->t.source, "apex");
    assert_int_equal(a->t.flags, MD_TICK_F_SEQ);
    assert_int_equal(a->t.seq, 9);
    assert_int_equal(a->t.origin_ns, 55);

    a = &c.a[2];
    assert_int_equal(a->t.type, MD_TICK_ORDER);
    assert_string_equal(a->ref, "o-1");
    assert_int_equal(a->t.sym_len, 0);
    assert_int_equal(a->side, MD_SIDE_NONE);
    assert_int_equal(a->status, MD_ORDER_FILLED);
    assert_dec(a->t.v[MD_O_QTY], 0, MD_DEC_ABSENT);
    assert_dec(a->t.v[MD_O_PRICE], 0, MD_DEC_ABSENT);

    a = &c.a[3];
    assert_int_equal(a->status, MD_ORDER_CANCELLED);
    assert_int_equal(a->side, MD_SIDE_SELL);
    assert_int_equal(a->t.sym_len, 0);
    assert_dec(a->t.v[MD_O_QTY], 5, -1);
    assert_dec(a->t.v[MD_O_PRICE], -125, -2);

    assert_int_equal(c.a[4].status, MD_ORDER_CANCELLED);
    assert_int_equal(c.a[4].side, MD_SIDE_NONE);
    assert_int_equal(c.a[5].status, MD_ORDER_REJECTED);
    assert_dec(c.a[5].t.v[MD_O_QTY], 0, 0);

    a = &c.a[6];
    assert_dec(a->t.v[MD_B_CASH], 0, MD_DEC_ABSENT);
    assert_dec(a->t.v[MD_B_REALIZED], -1250, -2);
    assert_dec_str(a->t.v[MD_B_REALIZED], "-12.50");
    assert_dec(a->t.v[MD_B_UNREALIZED], 0, MD_DEC_ABSENT);

    assert_int_equal(c.a[7].ref_len, 0);
    assert_int_equal(c.a[7].active, MD_ACTIVE_UNKNOWN);
    assert_int_equal(c.a[8].ref_len, 0);
    assert_int_equal(c.a[8].active, MD_ACTIVE_NO);
    assert_int_equal(c.a[9].active, MD_ACTIVE_UNKNOWN);
    assert_string_equal(c.a[9].ref, "x");
}

/* Limits, escapes, duplicates, keys of other types. */
static void test_account_fields(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c,
          /* 31-byte account and symbol, 63-byte order id */
          "{\"type\":\"order\",\"account\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234\","
          "\"order_id\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz012345\","
          "\"symbol\":\"abcdefghijklmnopqrstuvwxyz01234\",\"status\":\"working\"}\n"
          /* escapes in keys and values; the last duplicate wins */
          "{\"t\\u0079pe\":\"b\\u0061lance\",\"acc\\u006funt\":\"A\\/B\",\"cash\":1,\"cash\":2,"
          "\"account\":\"C\\\\D\"}\n"
          /* a balance or account ignores a symbol, even a bad one, and price keys */
          "{\"type\":\"balance\",\"account\":\"A\",\"symbol\":\"*\",\"bid\":\"junk\",\"cash\":1}\n"
          "{\"type\":\"account\",\"account\":\"A\",\"symbol\":5,\"net_pos\":NaN}\n"
          /* status and side as escaped strings */
          "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"1\",\"status\":\"fill\\u0065d\","
          "\"side\":\"b\\u0075y\",\"size\":\"junk\",\"cash\":\"junk\"}\n");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 5);
    for (size_t i = 0; i < c.n; i++)
        assert_acct_clean(&c.a[i]);
    assert_int_equal(c.a[0].acct_len, 31);
    assert_int_equal(c.a[0].ref_len, 63);
    assert_string_equal(c.a[0].ref, "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz012345");
    assert_int_equal(c.a[0].t.sym_len, 31);
    assert_int_equal(c.a[1].t.type, MD_TICK_BALANCE);
    assert_string_equal(c.a[1].account, "C\\D");
    assert_dec(c.a[1].t.v[MD_B_CASH], 2, 0);
    assert_int_equal(c.a[2].t.sym_len, 0);
    assert_dec(c.a[2].t.v[MD_B_CASH], 1, 0);
    assert_int_equal(c.a[3].t.sym_len, 0);
    assert_int_equal(c.a[4].status, MD_ORDER_FILLED);
    assert_int_equal(c.a[4].side, MD_SIDE_BUY);

    /* Values of account keys seen on a price line never leak into the next
     * account line (the slots are cleared again for it). */
    memset(&c, 0, sizeof c);
    dgram(&c, "{\"type\":\"trade\",\"symbol\":\"X\",\"price\":1,\"size\":1,\"cash\":5,\"net_pos\":6,"
              "\"account\":\"LEAK\",\"order_id\":\"LEAK\",\"status\":\"filled\",\"id\":\"LEAK\"}\n"
              "{\"type\":\"balance\",\"account\":\"B\",\"unrealized_pnl\":1}\n"
              "{\"type\":\"account\",\"account\":\"B\"}\n"
              "{\"type\":\"position\",\"account\":\"B\",\"symbol\":\"X\"}\n");
    assert_int_equal(c.n, 3);
    assert_int_equal(c.t[0].type, MD_TICK_TRADE);
    assert_dec(c.a[1].t.v[MD_B_CASH], 0, MD_DEC_ABSENT);
    assert_string_equal(c.a[1].account, "B");
    assert_int_equal(c.a[2].ref_len, 0);
    assert_int_equal(c.st.err[MD_DERR_MISSING_FIELD], 1); /* the position has no net_pos */
}

#define ACC(type, rest) "{\"type\":\"" type "\",\"account\":\"A\"," rest "}"
#define POS(rest) ACC("position", "\"symbol\":\"X\"," rest)
#define ORD(rest) ACC("order", "\"order_id\":\"1\"," rest)

static void test_account_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        md_decode_err why;
    } cases[] = {
        /* missing_field */
        {"{\"type\":\"position\",\"symbol\":\"X\",\"net_pos\":1}", MD_DERR_MISSING_FIELD},
        {"{\"type\":\"order\",\"account\":null,\"order_id\":\"1\",\"status\":\"working\"}",
         MD_DERR_MISSING_FIELD},
        {"{\"type\":\"balance\",\"cash\":1}", MD_DERR_MISSING_FIELD},
        {"{\"type\":\"account\",\"id\":\"1\",\"active\":true}", MD_DERR_MISSING_FIELD},
        {ACC("position", "\"net_pos\":1"), MD_DERR_MISSING_FIELD},
        {ACC("position", "\"symbol\":null,\"net_pos\":1"), MD_DERR_MISSING_FIELD},
        {POS("\"avg_price\":1"), MD_DERR_MISSING_FIELD},
        {POS("\"net_pos\":null"), MD_DERR_MISSING_FIELD},
        {ACC("order", "\"status\":\"working\""), MD_DERR_MISSING_FIELD},
        {ACC("order", "\"order_id\":null,\"status\":\"working\""), MD_DERR_MISSING_FIELD},
        {ORD("\"side\":\"buy\""), MD_DERR_MISSING_FIELD},
        {ORD("\"status\":null"), MD_DERR_MISSING_FIELD},
        {ACC("balance", "\"symbol\":\"X\""), MD_DERR_MISSING_FIELD},
        {ACC("balance", "\"cash\":null,\"realized_pnl\":null,\"unrealized_pnl\":null"),
         MD_DERR_MISSING_FIELD},
        /* id */
        {"{\"type\":\"balance\",\"account\":\"\",\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"cash\":1}",
         MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":\"A B\",\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":\"A\\u0000\",\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":\"\xc3\xa9\",\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":\"\\u00e9\",\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"balance\",\"account\":5,\"cash\":1}", MD_DERR_ID},
        {"{\"type\":\"account\",\"account\":[\"A\"]}", MD_DERR_ID},
        {ACC("order", "\"order_id\":\"\",\"status\":\"working\""), MD_DERR_ID},
        {ACC("order",
             "\"order_id\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz0123456\","
             "\"status\":\"working\""),
         MD_DERR_ID},
        {ACC("order", "\"order_id\":\"D 1\",\"status\":\"working\""), MD_DERR_ID},
        {ACC("order", "\"order_id\":17158695,\"status\":\"working\""), MD_DERR_ID},
        {ACC("account", "\"id\":\"\""), MD_DERR_ID},
        {ACC("account",
             "\"id\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz0123456\""),
         MD_DERR_ID},
        {ACC("account", "\"id\":7"), MD_DERR_ID},
        {ACC("account", "\"id\":\"a\\tb\""), MD_DERR_ID},
        /* symbol */
        {ACC("position", "\"symbol\":\"*\",\"net_pos\":1"), MD_DERR_SYMBOL},
        {ACC("position", "\"symbol\":\"\",\"net_pos\":1"), MD_DERR_SYMBOL},
        {ACC("position", "\"symbol\":\"A B\",\"net_pos\":1"), MD_DERR_SYMBOL},
        {ORD("\"symbol\":\"*\",\"status\":\"working\""), MD_DERR_SYMBOL},
        {ORD("\"symbol\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"status\":\"working\""),
         MD_DERR_SYMBOL},
        {ACC("balance", "\"source\":\"\",\"cash\":1"), MD_DERR_SYMBOL},
        {ACC("account", "\"source\":\"a b\""), MD_DERR_SYMBOL},
        /* bad_value */
        {ORD("\"status\":\"open\""), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"WORKING\""), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"\""), MD_DERR_BAD_VALUE},
        {ORD("\"status\":1"), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"working-on-it-for-a-long-while\""), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"working\",\"side\":\"hold\""), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"working\",\"side\":1"), MD_DERR_BAD_VALUE},
        {ORD("\"status\":\"working\",\"side\":\"\""), MD_DERR_BAD_VALUE},
        {ACC("account", "\"active\":\"true\""), MD_DERR_BAD_VALUE},
        {ACC("account", "\"active\":1"), MD_DERR_BAD_VALUE},
        {ACC("account", "\"active\":{}"), MD_DERR_BAD_VALUE},
        {ACC("account", "\"active\":[true]"), MD_DERR_BAD_VALUE},
        {ACC("account", "\"active\":True"), MD_DERR_BAD_VALUE},
        /* bad_number */
        {POS("\"net_pos\":NaN"), MD_DERR_BAD_NUMBER},
        {POS("\"net_pos\":\"1\",\"avg_price\":\"x\""), MD_DERR_BAD_NUMBER},
        {POS("\"net_pos\":1,\"ts\":-1"), MD_DERR_BAD_NUMBER},
        {ORD("\"status\":\"working\",\"qty\":Infinity"), MD_DERR_BAD_NUMBER},
        {ORD("\"status\":\"working\",\"price\":1e-19"), MD_DERR_BAD_NUMBER},
        {ORD("\"status\":\"working\",\"seq\":\"a\""), MD_DERR_BAD_NUMBER},
        {ACC("balance", "\"cash\":1.2.3"), MD_DERR_BAD_NUMBER},
        {ACC("balance", "\"cash\":1,\"unrealized_pnl\":true"), MD_DERR_BAD_NUMBER},
        {ACC("balance", "\"realized_pnl\":1234567890123456789"), MD_DERR_BAD_NUMBER},
        {ACC("account", "\"origin_ns\":1.5"), MD_DERR_BAD_NUMBER},
        /* negative */
        {ORD("\"status\":\"working\",\"qty\":-1"), MD_DERR_NEGATIVE},
        {ORD("\"status\":\"filled\",\"qty\":\"-0.5\""), MD_DERR_NEGATIVE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_line_error(cases[i].line, cases[i].why);
}

/* Prices and account messages share datagrams and streams. */
static void test_account_mixed(void **state)
{
    (void)state;
    capture c = {0};
    dgram(&c, "{\"type\":\"quote\",\"symbol\":\"MNQZ5\",\"bid\":21000.00,\"ask\":21000.50}\n"
              "{\"type\":\"order\",\"account\":\"PAAPEX2666680000001\",\"order_id\":\"D17158695\","
              "\"symbol\":\"MNQZ5\",\"side\":\"buy\",\"qty\":1,\"price\":20990.0,"
              "\"status\":\"working\",\"ts\":7}\n"
              "{\"type\":\"heartbeat\",\"source\":\"apex\",\"ts\":8}");
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.t[0].type, MD_TICK_QUOTE);
    assert_dec(c.t[0].v[MD_Q_ASK], 2100050, -2);
    assert_int_equal(c.t[1].type, MD_TICK_ORDER);
    assert_string_equal(c.a[1].ref, "D17158695");
    assert_int_equal(c.a[1].status, MD_ORDER_WORKING);
    assert_int_equal(c.t[2].type, MD_TICK_HEARTBEAT);
    assert_int_equal(c.a[0].acct_len, 0); /* no account record for prices */
    assert_int_equal(c.a[2].acct_len, 0);

    /* the same plus bad lines as a stream, cut everywhere */
    static char b[1024];
    size_t n = (size_t)snprintf(
        b, sizeof b, "%s",
        "{\"type\":\"position\",\"account\":\"A\",\"symbol\":\"ES\",\"net_pos\":\"-2\"}\n"
        "{\"type\":\"order\",\"account\":\"A\",\"order_id\":\"1\",\"status\":\"nope\"}\n"
        "{\"type\":\"trade\",\"symbol\":\"ES\",\"price\":1,\"size\":1}\r\n"
        "{\"type\":\"balance\",\"account\":\"A\",\"cash\":\"5\"}\n"
        "{\"type\":\"account\",\"account\":\"A\",\"id\":\"X\",\"active\":false}");
    capture whole = {0};
    md_decoder_ops o = ops_for(&whole);
    assert_int_equal(md_jsonl_decode(b, n, 1, NULL, &o), n);
    assert_int_equal(whole.n, 4);
    assert_int_equal(whole.st.err[MD_DERR_BAD_VALUE], 1);
    assert_int_equal(errs(&whole), 1);
    static capture s;
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&s, 0, sizeof s);
        feed_lines(md_jsonl_decode, &s, b, n, &cut, 1);
        assert_same(&whole, &s);
        assert_memory_equal(whole.a, s.a, whole.n * sizeof whole.a[0]);
    }
}

static void test_garbage(void **state)
{
    (void)state;
    static char b[1 << 15];
    uint64_t x = 0x2545f4914f6cdd1dULL;
    static const char alphabet[] = "{}[]\":,\\ \n0123456789.-eEtypequotsymbl";
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof b; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = round < 2 ? (char)x : alphabet[(x >> 32) % (sizeof alphabet - 1)];
        }
        for (int final = 0; final < 2; final++) {
            capture c = {0};
            md_decoder_ops o = ops_for(&c);
            int skipping = 0;
            size_t used = md_jsonl_decode(b, sizeof b, final, final ? NULL : &skipping, &o);
            if (final)
                assert_int_equal(used, sizeof b);
            else
                assert_true(sizeof b - used < MD_JSONL_LINE_MAX);
            for (size_t i = 0; i < c.n; i++) {
                assert_true(c.t[i].sym_len <= MD_SYMBOL_MAX);
                assert_int_equal(strlen(c.t[i].symbol), c.t[i].sym_len);
            }
            assert_true(errs(&c) > 0);
        }
    }
}

static void test_err_names(void **state)
{
    (void)state;
    assert_string_equal(md_decode_err_name[MD_DERR_SYNTAX], "syntax");
    assert_string_equal(md_decode_err_name[MD_DERR_TRUNCATED], "truncated");
    assert_string_equal(md_decode_err_name[MD_DERR_OVERSIZED], "oversized");
    assert_string_equal(md_decode_err_name[MD_DERR_VERSION], "version");
    assert_string_equal(md_decode_err_name[MD_DERR_UNKNOWN_TYPE], "unknown_type");
    assert_string_equal(md_decode_err_name[MD_DERR_MISSING_FIELD], "missing_field");
    assert_string_equal(md_decode_err_name[MD_DERR_BAD_NUMBER], "bad_number");
    assert_string_equal(md_decode_err_name[MD_DERR_NEGATIVE], "negative");
    assert_string_equal(md_decode_err_name[MD_DERR_SYMBOL], "symbol");
    assert_string_equal(md_decode_err_name[MD_DERR_ID], "id");
    assert_string_equal(md_decode_err_name[MD_DERR_BAD_VALUE], "bad_value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_examples),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_quote_only_bid),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_escapes_and_duplicates),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_err_names),
        cmocka_unit_test(test_account_design_examples),
        cmocka_unit_test(test_account_optional),
        cmocka_unit_test(test_account_fields),
        cmocka_unit_test(test_account_errors),
        cmocka_unit_test(test_account_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
