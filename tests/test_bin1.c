/* bin1 decoder, exercised through the public encoder header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_decode.h"
#include "mdcache_bin1.h"

#include "decode_capture.h"

static size_t decode(capture *c, const uint8_t *b, size_t len, int final)
{
    md_decoder_ops o = ops_for(c);
    return md_bin1_decode(b, len, final, &o);
}

static mdcache_bin1_dec B(int64_t m, int e) { return mdcache_bin1_make(m, (int8_t)e); }
static const mdcache_bin1_dec NONE = {0, MDCACHE_BIN1_ABSENT};

static void assert_dec(md_dec d, int64_t mant, int exp)
{
    assert_int_equal(d.exp, exp);
    if (exp != MD_DEC_ABSENT)
        assert_int_equal(d.mant, mant);
}

static void assert_tick_eq(const md_tick *a, const md_tick *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->sym_len, b->sym_len);
    assert_int_equal(a->src_len, b->src_len);
    assert_string_equal(a->symbol, b->symbol);
    assert_string_equal(a->source, b->source);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ts_ns, b->ts_ns);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a->v[i].exp, b->v[i].exp);
        assert_int_equal(a->v[i].mant, b->v[i].mant);
    }
}

/* A quote and a trade used by several tests. */
static size_t put_q(uint8_t *b, size_t cap, const char *sym)
{
    return mdcache_bin1_put_quote(b, cap, sym, "cme-a", 17, 1, 1763740000123456789LL, 1,
                                  B(2100000, -2), B(2100050, -2), B(3, 0), B(5, 0));
}

static size_t put_t(uint8_t *b, size_t cap, const char *sym, uint64_t seq)
{
    return mdcache_bin1_put_trade(b, cap, sym, NULL, seq, 1, 0, 0, B(2100025, -2), B(2, 0));
}

static void test_quote_round_trip(void **state)
{
    (void)state;
    uint8_t b[256];
    capture c = {0};
    size_t n = put_q(b, sizeof b, "MNQZ5");
    assert_int_equal(n, 24 + 5 + 5 + 36);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.st.ok, 1);
    assert_int_equal(errs(&c), 0);
    const md_tick *t = &c.t[0];
    assert_int_equal(t->type, MD_TICK_QUOTE);
    assert_int_equal(t->flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
    assert_int_equal(t->sym_len, 5);
    assert_string_equal(t->symbol, "MNQZ5");
    assert_int_equal(t->src_len, 5);
    assert_string_equal(t->source, "cme-a");
    assert_int_equal(t->seq, 17);
    assert_int_equal(t->ts_ns, 1763740000123456789LL);
    assert_dec(t->v[MD_Q_BID], 2100000, -2);
    assert_dec(t->v[MD_Q_ASK], 2100050, -2);
    assert_dec(t->v[MD_Q_BID_SIZE], 3, 0);
    assert_dec(t->v[MD_Q_ASK_SIZE], 5, 0);
    /* the worker fills these */
    assert_int_equal(t->feed_id, 0);
    assert_int_equal(t->src_hash, 0);
    assert_int_equal(t->origin_ns, 0);

    /* no source, no seq/ts, only a bid, extreme exponents */
    memset(&c, 0, sizeof c);
    n = mdcache_bin1_put_quote(b, sizeof b, "BTCUSDT", NULL, 99, 0, 5, 0, B(12345, -8), NONE,
                               B(999999999999999999LL, -18), NONE);
    assert_int_equal(n, 24 + 7 + 36);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    t = &c.t[0];
    assert_int_equal(t->flags, 0);
    assert_int_equal(t->seq, 0); /* not valid: not carried over */
    assert_int_equal(t->ts_ns, 0);
    assert_int_equal(t->src_len, 0);
    assert_string_equal(t->source, "");
    assert_dec(t->v[MD_Q_BID], 12345, -8);
    assert_dec(t->v[MD_Q_ASK], 0, MD_DEC_ABSENT);
    assert_dec(t->v[MD_Q_BID_SIZE], 999999999999999999LL, -18);
    assert_dec(t->v[MD_Q_ASK_SIZE], 0, MD_DEC_ABSENT);

    /* only an ask, negative prices are allowed (spreads, some energy contracts) */
    memset(&c, 0, sizeof c);
    n = mdcache_bin1_put_quote(b, sizeof b, "CL-SPREAD", NULL, 0, 0, 0, 0, NONE, B(-37, -2), NONE,
                               NONE);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_dec(c.t[0].v[MD_Q_ASK], -37, -2);
    assert_dec(c.t[0].v[MD_Q_BID], 0, MD_DEC_ABSENT);

    /* 31-byte names are the limit; 32 cannot be encoded */
    const char *s31 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
    memset(&c, 0, sizeof c);
    n = mdcache_bin1_put_quote(b, sizeof b, s31, s31, 1, 1, 1, 1, B(1, 0), NONE, NONE, NONE);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, s31);
    assert_string_equal(c.t[0].source, s31);
    assert_int_equal(c.t[0].sym_len, 31);
    assert_int_equal(mdcache_bin1_put_quote(b, sizeof b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", NULL,
                                            0, 0, 0, 0, B(1, 0), NONE, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_quote(b, sizeof b, NULL, NULL, 0, 0, 0, 0, B(1, 0), NONE,
                                            NONE, NONE),
                     0);
}

static void test_trade_heartbeat_reset(void **state)
{
    (void)state;
    uint8_t b[512];
    capture c = {0};
    size_t n = 0, k;

    k = mdcache_bin1_put_trade(b + n, sizeof b - n, "MNQZ5", "cme-a", 18, 1, 1763740000999LL, 1,
                               B(2100025, -2), B(2, 0));
    assert_int_equal(k, 24 + 5 + 5 + 18);
    n += k;
    k = mdcache_bin1_put_heartbeat(b + n, sizeof b - n, "cme-a", 1763740001000000000LL);
    assert_int_equal(k, 24 + 5);
    n += k;
    k = mdcache_bin1_put_reset(b + n, sizeof b - n, "*", NULL);
    assert_int_equal(k, 25);
    n += k;
    k = mdcache_bin1_put_reset(b + n, sizeof b - n, "MNQZ5", "cme-a");
    assert_int_equal(k, 34);
    n += k;

    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 4);
    assert_int_equal(errs(&c), 0);

    const md_tick *t = &c.t[0];
    assert_int_equal(t->type, MD_TICK_TRADE);
    assert_string_equal(t->symbol, "MNQZ5");
    assert_string_equal(t->source, "cme-a");
    assert_int_equal(t->seq, 18);
    assert_int_equal(t->ts_ns, 1763740000999LL);
    assert_dec(t->v[MD_T_PRICE], 2100025, -2);
    assert_dec(t->v[MD_T_SIZE], 2, 0);
    assert_dec(t->v[2], 0, MD_DEC_ABSENT);
    assert_dec(t->v[3], 0, MD_DEC_ABSENT);

    t = &c.t[1];
    assert_int_equal(t->type, MD_TICK_HEARTBEAT);
    assert_int_equal(t->sym_len, 0);
    assert_string_equal(t->symbol, "");
    assert_string_equal(t->source, "cme-a");
    assert_int_equal(t->flags, MD_TICK_F_TS);
    assert_int_equal(t->ts_ns, 1763740001000000000LL);
    for (int i = 0; i < 4; i++)
        assert_dec(t->v[i], 0, MD_DEC_ABSENT);

    t = &c.t[2];
    assert_int_equal(t->type, MD_TICK_RESET);
    assert_string_equal(t->symbol, "*");
    assert_int_equal(t->src_len, 0);
    assert_int_equal(t->flags, 0);

    t = &c.t[3];
    assert_int_equal(t->type, MD_TICK_RESET);
    assert_string_equal(t->symbol, "MNQZ5");
    assert_string_equal(t->source, "cme-a");

    /* encoder refusals */
    assert_int_equal(mdcache_bin1_put_heartbeat(b, sizeof b, NULL, 1), 0);
    assert_int_equal(mdcache_bin1_put_heartbeat(b, sizeof b, "", 1), 0);
    assert_int_equal(mdcache_bin1_put_reset(b, sizeof b, "", NULL), 0);
    assert_int_equal(mdcache_bin1_put_trade(b, 46, "MNQZ5", NULL, 0, 0, 0, 0, B(1, 0), B(1, 0)), 0);
    assert_int_equal(mdcache_bin1_put_trade(b, 47, "MNQZ5", NULL, 0, 0, 0, 0, B(1, 0), B(1, 0)), 47);
}

/* The example in docs/protocol.md, byte for byte. */
static void test_doc_example(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0xb1, 0x01, 0x46, 0x00, 0x01, 0x05, 0x05, 0x03,                         /* header */
        0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                         /* seq 17 */
        0x15, 0x8d, 0x81, 0x77, 0x2f, 0x10, 0x7a, 0x18,                         /* ts */
        'M', 'N', 'Q', 'Z', '5', 'c', 'm', 'e', '-', 'a',                       /* names */
        0x20, 0x0b, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe,                   /* bid 21000.00 */
        0x52, 0x0b, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe,                   /* ask 21000.50 */
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                   /* bid_size 3 */
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                   /* ask_size 5 */
    };
    uint8_t b[128];
    size_t n = put_q(b, sizeof b, "MNQZ5");
    assert_int_equal(n, sizeof want);
    assert_memory_equal(b, want, sizeof want);

    /* and the trade 21000.25 x 2 */
    static const uint8_t trade_body[] = {0x39, 0x0b, 0x20, 0, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 0, 0, 0, 0};
    n = put_t(b, sizeof b, "MNQZ5", 18);
    assert_int_equal(n, 24 + 5 + 18);
    assert_memory_equal(b + 29, trade_body, sizeof trade_body);
}

static void test_many_per_datagram(void **state)
{
    (void)state;
    uint8_t b[1400];
    capture c = {0};
    size_t n = 0;
    char sym[16];
    for (int i = 0; i < 20; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        size_t k = (i % 2) ? put_t(b + n, sizeof b - n, sym, (uint64_t)i) : put_q(b + n, sizeof b - n, sym);
        assert_true(k > 0);
        n += k;
    }
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 20);
    for (int i = 0; i < 20; i++) {
        snprintf(sym, sizeof sym, "S%d", i);
        assert_string_equal(c.t[i].symbol, sym);
        assert_int_equal(c.t[i].type, (i % 2) ? MD_TICK_TRADE : MD_TICK_QUOTE);
    }
}

/* Builds good | bad | good, decodes it as a datagram and checks that exactly
 * one error of reason `why` was counted and both good frames came through. */
static void expect_frame_error(const uint8_t *bad, size_t bad_len, md_decode_err why)
{
    uint8_t b[3000];
    capture c = {0};
    size_t n = put_q(b, sizeof b, "GOOD1");
    memcpy(b + n, bad, bad_len);
    n += bad_len;
    n += put_t(b + n, sizeof b - n, "GOOD2", 1);
    assert_int_equal(decode(&c, b, n, 1), n);
    if (c.st.err[why] != 1 || errs(&c) != 1)
        fail_msg("want one %s, got %llu of it and %llu in all", md_decode_err_name[why],
                 (unsigned long long)c.st.err[why], (unsigned long long)errs(&c));
    assert_int_equal(c.rejects, 1);
    assert_int_equal(c.last_why, why);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.t[0].symbol, "GOOD1");
    assert_string_equal(c.t[1].symbol, "GOOD2");
    assert_int_equal(c.st.ok, 2);
}

static void test_body_errors(void **state)
{
    (void)state;
    uint8_t f[1100];
    size_t n;

    /* unknown types, skipped by len */
    for (unsigned ty = 0; ty < 256; ty++) {
        if (ty >= 1 && ty <= 8)
            continue;
        n = put_q(f, sizeof f, "X");
        f[4] = (uint8_t)ty;
        expect_frame_error(f, n, MD_DERR_UNKNOWN_TYPE);
    }
    /* an unknown type with a body longer than any v1 body */
    n = put_q(f, sizeof f, "X");
    memset(f + n, 0x5a, 200);
    n += 200;
    f[2] = (uint8_t)(n & 0xff);
    f[3] = (uint8_t)(n >> 8);
    f[4] = 9;
    expect_frame_error(f, n, MD_DERR_UNKNOWN_TYPE);

    /* len shorter than names + body need */
    n = put_q(f, sizeof f, "X");
    f[2] = (uint8_t)(n - 1);
    expect_frame_error(f, n - 1, MD_DERR_TRUNCATED);
    n = put_t(f, sizeof f, "X", 1);
    f[2] = 24;
    expect_frame_error(f, 24, MD_DERR_TRUNCATED);

    /* missing fields */
    n = mdcache_bin1_put_quote(f, sizeof f, "X", NULL, 0, 0, 0, 0, NONE, NONE, B(1, 0), B(1, 0));
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), NONE);
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, NONE, B(1, 0));
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);
    n = mdcache_bin1_put_heartbeat(f, sizeof f, "src", 1);
    f[6] = 0; /* source gone; its bytes become trailing padding */
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);

    /* bad numbers */
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 1), B(1, 0));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, -19), B(1, 0));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), B(1, 127));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1000000000000000000LL, 0),
                               B(1, 0));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_quote(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), NONE, NONE,
                               B(INT64_MIN, -2));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, -1, 1, B(1, 0), B(1, 0));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);

    /* negative sizes; negative prices are fine (checked in round trip) */
    n = mdcache_bin1_put_trade(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), B(-1, 0));
    expect_frame_error(f, n, MD_DERR_NEGATIVE);
    n = mdcache_bin1_put_quote(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), B(2, 0), B(-1, -3),
                               B(1, 0));
    expect_frame_error(f, n, MD_DERR_NEGATIVE);
    n = mdcache_bin1_put_quote(f, sizeof f, "X", NULL, 0, 0, 0, 0, B(1, 0), B(2, 0), NONE,
                               B(-5, 0));
    expect_frame_error(f, n, MD_DERR_NEGATIVE);

    /* symbols and sources */
    n = put_q(f, sizeof f, "AB");
    f[24] = ' ';
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = put_q(f, sizeof f, "AB");
    f[25] = 0x7f;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = put_q(f, sizeof f, "AB");
    f[27] = 0x00; /* inside "cme-a" */
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_quote(f, sizeof f, "", NULL, 0, 0, 0, 0, B(1, 0), NONE, NONE, NONE);
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_quote(f, sizeof f, "*", NULL, 0, 0, 0, 0, B(1, 0), NONE, NONE, NONE);
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_trade(f, sizeof f, "*", NULL, 0, 0, 0, 0, B(1, 0), B(1, 0));
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_reset(f, sizeof f, "X", NULL);
    f[5] = 0;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    /* sym_len 32: len is sound, so only this frame goes */
    n = put_q(f, sizeof f, "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
    f[5] = 32;
    memmove(f + 24 + 32, f + 24 + 31, n - 24 - 31);
    f[24 + 31] = 'Z';
    n++;
    f[2] = (uint8_t)n;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = put_q(f, sizeof f, "X");
    f[6] = 200;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
}

/* Trailing bytes after the body and unknown flag bits are for later
 * revisions: ignored, not errors. */
static void test_forward_compat(void **state)
{
    (void)state;
    uint8_t b[600];
    capture c = {0};
    size_t n = put_t(b, sizeof b, "MNQZ5", 7);
    memset(b + n, 0xee, 100);
    n += 100;
    b[2] = (uint8_t)(n & 0xff);
    b[3] = (uint8_t)(n >> 8);
    b[7] |= 0xfc;
    size_t m = put_t(b + n, sizeof b - n, "NEXT", 8);
    assert_int_equal(decode(&c, b, n + m, 1), n + m);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.t[0].flags, MD_TICK_F_SEQ);
    assert_int_equal(c.t[0].seq, 7);
    assert_string_equal(c.t[1].symbol, "NEXT");

    /* exactly MD_BIN1_FRAME_MAX is allowed */
    memset(&c, 0, sizeof c);
    uint8_t big[1100];
    n = put_t(big, sizeof big, "BIG", 1);
    memset(big + n, 0, MD_BIN1_FRAME_MAX - n);
    big[2] = MD_BIN1_FRAME_MAX & 0xff;
    big[3] = MD_BIN1_FRAME_MAX >> 8;
    assert_int_equal(decode(&c, big, MD_BIN1_FRAME_MAX, 1), MD_BIN1_FRAME_MAX);
    assert_int_equal(c.n, 1);
    assert_int_equal(errs(&c), 0);
}

/* Header damage in a datagram: frames before it survive, the rest is gone. */
static void expect_datagram_head_error(void (*mangle)(uint8_t *), md_decode_err why)
{
    uint8_t b[512];
    capture c = {0};
    size_t n = put_q(b, sizeof b, "GOOD1");
    size_t bad_at = n;
    n += put_t(b + n, sizeof b - n, "LOST1", 1);
    n += put_t(b + n, sizeof b - n, "LOST2", 2);
    mangle(b + bad_at);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "GOOD1");
    assert_int_equal(c.st.err[why], 1);
    assert_int_equal(errs(&c), 1);
    assert_int_equal(c.rejects, 1);
}

static void m_magic(uint8_t *f) { f[0] = 0xB2; }
static void m_version(uint8_t *f) { f[1] = 2; }
static void m_version0(uint8_t *f) { f[1] = 0; }
static void m_short(uint8_t *f) { f[2] = 23; f[3] = 0; }
static void m_zero(uint8_t *f) { f[2] = 0; f[3] = 0; }
static void m_big(uint8_t *f) { f[2] = 0x01; f[3] = 0x04; } /* 1025 */
static void m_huge(uint8_t *f) { f[2] = 0xff; f[3] = 0xff; }
static void m_past_end(uint8_t *f) { f[2] = 0x00; f[3] = 0x02; } /* 512: beyond the datagram */

static void test_datagram_header_errors(void **state)
{
    (void)state;
    expect_datagram_head_error(m_magic, MD_DERR_SYNTAX);
    expect_datagram_head_error(m_version, MD_DERR_VERSION);
    expect_datagram_head_error(m_version0, MD_DERR_VERSION);
    expect_datagram_head_error(m_short, MD_DERR_SYNTAX);
    expect_datagram_head_error(m_zero, MD_DERR_SYNTAX);
    expect_datagram_head_error(m_big, MD_DERR_OVERSIZED);
    expect_datagram_head_error(m_huge, MD_DERR_OVERSIZED);
    expect_datagram_head_error(m_past_end, MD_DERR_TRUNCATED);
}

static void test_datagram_cut(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n1 = put_q(b, sizeof b, "GOOD1");
    size_t n2 = put_t(b + n1, sizeof b - n1, "CUT", 1);
    /* cut anywhere inside the second frame: first decoded, one truncated */
    for (size_t cut = n1 + 1; cut < n1 + n2; cut++) {
        capture c = {0};
        assert_int_equal(decode(&c, b, cut, 1), cut);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.st.err[MD_DERR_TRUNCATED], 1);
        assert_int_equal(errs(&c), 1);
    }
    capture c = {0};
    assert_int_equal(decode(&c, b, 0, 1), 0);
    assert_int_equal(c.n + errs(&c), 0);
}

/* Stream mode: incomplete frames are left for the caller. */
static void test_stream_partial(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n1 = put_q(b, sizeof b, "ONE");
    size_t n2 = put_t(b + n1, sizeof b - n1, "TWO", 1);
    for (size_t cut = 0; cut < n1 + n2; cut++) {
        capture c = {0};
        size_t want = cut < n1 ? 0 : n1;
        assert_int_equal(decode(&c, b, cut, 0), want);
        assert_int_equal(c.n, cut < n1 ? 0 : 1);
        assert_int_equal(errs(&c), 0);
    }
}

/* Feeds `data` the way a stream reader would: chunk by chunk, keeping the
 * unconsumed tail in front of the next chunk. cuts[] are chunk ends. */
static void feed_stream(capture *c, const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts)
{
    static uint8_t acc[1 << 16];
    size_t have = 0, from = 0;
    md_decoder_ops o = ops_for(c);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        memcpy(acc + have, data + from, to - from);
        have += to - from;
        from = to;
        size_t used = md_bin1_decode(acc, have, 0, &o);
        assert_true(used <= have);
        memmove(acc, acc + used, have - used);
        have -= used;
    }
    size_t used = md_bin1_decode(acc, have, 1, &o);
    assert_int_equal(used, have);
}

static void assert_same_ticks(const capture *a, const capture *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_tick_eq(&a->t[i], &b->t[i]);
        /* account records are zeroed before they are filled: whole-record equal */
        assert_memory_equal(&a->a[i], &b->a[i], sizeof a->a[i]);
    }
}

static size_t build_mixed(uint8_t *b, size_t cap, int with_garbage)
{
    size_t n = 0;
    n += put_q(b + n, cap - n, "MNQZ5");
    n += put_t(b + n, cap - n, "MNQZ5", 18);
    if (with_garbage) {
        /* garbage holding a lone magic and a bad version, then a bad-body frame */
        static const uint8_t junk[] = {0x00, 0xb1, 0x02, 0x55, 0xb1, 0xff, 0x13, 0x37};
        memcpy(b + n, junk, sizeof junk);
        n += sizeof junk;
    }
    n += mdcache_bin1_put_heartbeat(b + n, cap - n, "cme-a", 123);
    size_t badq = mdcache_bin1_put_quote(b + n, cap - n, "BAD", NULL, 0, 0, 0, 0, NONE, NONE, NONE,
                                         NONE);
    n += badq;
    n += mdcache_bin1_put_reset(b + n, cap - n, "*", NULL);
    n += mdcache_bin1_put_quote(b + n, cap - n, "ESZ5", "cme-b", 1, 1, 2, 1, B(600025, -2), NONE,
                                B(10, 0), NONE);
    /* variable-length bodies: the ids' length bytes split too */
    n += mdcache_bin1_put_order(b + n, cap - n, "PAAPEX2666680000001", "D17158695", "MNQZ5", "apex",
                                3, 1, 4, 1, MDCACHE_BIN1_SIDE_SELL, MDCACHE_BIN1_STATUS_FILLED,
                                B(1, 0), B(209900, -1));
    n += mdcache_bin1_put_account(b + n, cap - n, "PAAPEX2666680000001", "D17158695", NULL, 0, 0,
                                  5, 1, MDCACHE_BIN1_ACTIVE_YES);
    return n;
}

static void test_stream_every_split(void **state)
{
    (void)state;
    uint8_t b[1024];
    for (int g = 0; g < 2; g++) {
        size_t n = build_mixed(b, sizeof b, g);
        capture whole = {0};
        assert_int_equal(decode(&whole, b, n, 0), n);
        assert_int_equal(whole.n, 7);
        assert_int_equal(whole.t[5].type, MD_TICK_ORDER);
        assert_string_equal(whole.a[5].ref, "D17158695");
        assert_int_equal(whole.a[6].active, MD_ACTIVE_YES);
        assert_int_equal(whole.st.err[MD_DERR_MISSING_FIELD], 1);
        assert_int_equal(errs(&whole), g ? 2 : 1);
        capture wholeg = {0};
        assert_int_equal(decode(&wholeg, b, n, 1), n);
        if (!g)
            assert_same_ticks(&whole, &wholeg);

        for (size_t cut = 0; cut <= n; cut++) {
            capture c = {0};
            feed_stream(&c, b, n, &cut, 1);
            assert_same_ticks(&whole, &c);
            if (!g) /* clean streams: the errors are the same too */
                assert_int_equal(errs(&c), 1);
        }
        /* two cuts, every pair */
        for (size_t c1 = 0; c1 <= n; c1 += 3) {
            for (size_t c2 = c1; c2 <= n; c2 += 5) {
                size_t cuts[2] = {c1, c2};
                capture c = {0};
                feed_stream(&c, b, n, cuts, 2);
                assert_same_ticks(&whole, &c);
            }
        }
        /* one byte at a time */
        static size_t cuts[1024];
        for (size_t i = 0; i < n; i++)
            cuts[i] = i + 1;
        capture c = {0};
        feed_stream(&c, b, n, cuts, n);
        assert_same_ticks(&whole, &c);
    }
}

/* Stream resync: garbage in front and between frames is skipped. */
static void test_stream_resync(void **state)
{
    (void)state;
    uint8_t b[512];
    capture c = {0};
    size_t n = 0;
    static const uint8_t junk[] = "hello\xb1\x00 world\xb1\xb1";
    memcpy(b, junk, sizeof junk - 1);
    n += sizeof junk - 1;
    n += put_q(b + n, sizeof b - n, "A");
    b[n++] = 0xb1; /* bad version follows */
    b[n++] = 0x07;
    n += put_q(b + n, sizeof b - n, "B");
    /* valid-looking header with oversized len: resync finds C */
    static const uint8_t over[] = {0xb1, 0x01, 0xff, 0x7f};
    memcpy(b + n, over, sizeof over);
    n += sizeof over;
    n += put_q(b + n, sizeof b - n, "C");
    assert_int_equal(decode(&c, b, n, 0), n);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.t[0].symbol, "A");
    assert_string_equal(c.t[1].symbol, "B");
    assert_string_equal(c.t[2].symbol, "C");
    assert_int_equal(c.st.err[MD_DERR_SYNTAX], 1);
    assert_int_equal(c.st.err[MD_DERR_VERSION], 1);
    assert_int_equal(c.st.err[MD_DERR_OVERSIZED], 1);
    assert_int_equal(errs(&c), 3);

    /* Garbage whose end is not in the buffer yet is left for the next read
     * and not counted; at the end of the stream (final) it is. */
    memset(&c, 0, sizeof c);
    static const uint8_t tail[] = {0x00, 0x01, 0x02, 0xb1};
    assert_int_equal(decode(&c, tail, sizeof tail, 0), 0);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(decode(&c, tail, sizeof tail, 1), sizeof tail);
    assert_int_equal(errs(&c), 1);

    /* One run of garbage cut by a read boundary counts once, as a whole. */
    uint8_t g[128];
    size_t gn = 0;
    static const uint8_t junk2[] = "garbage-run-cut-in-two";
    memcpy(g, junk2, sizeof junk2 - 1);
    gn += sizeof junk2 - 1;
    gn += put_q(g + gn, sizeof g - gn, "D");
    memset(&c, 0, sizeof c);
    size_t used = decode(&c, g, 10, 0); /* first read: garbage only */
    assert_int_equal(used, 0);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(decode(&c, g, gn, 0), gn); /* caller retries with more */
    assert_int_equal(errs(&c), 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "D");

    /* A run too long to buffer is consumed and counted unfinished. */
    static uint8_t longjunk[MD_BIN1_FRAME_MAX + 10];
    memset(longjunk, 'x', sizeof longjunk);
    memset(&c, 0, sizeof c);
    assert_int_equal(decode(&c, longjunk, sizeof longjunk, 0), sizeof longjunk);
    assert_int_equal(errs(&c), 1);
}

/* Pseudo-random bytes (fixed seed): no crash, everything consumed, and any
 * tick that comes out obeys the invariants. */
static void test_garbage(void **state)
{
    (void)state;
    static uint8_t b[1 << 15];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < sizeof b; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (uint8_t)x;
            /* sprinkle plausible headers so some frames get deep */
            if (round >= 2 && (x >> 40) % 97 == 0 && i + 4 < sizeof b) {
                b[i] = 0xb1;
                b[++i] = 0x01;
            }
        }
        for (int final = 0; final < 2; final++) {
            capture c = {0};
            size_t used = decode(&c, b, sizeof b, final);
            assert_true(used <= sizeof b);
            if (final)
                assert_int_equal(used, sizeof b);
            else
                assert_true(used + MD_BIN1_FRAME_MAX > sizeof b);
            for (size_t i = 0; i < c.n; i++) {
                assert_true(c.t[i].sym_len <= MD_SYMBOL_MAX);
                assert_int_equal(strlen(c.t[i].symbol), c.t[i].sym_len);
            }
            assert_true(errs(&c) > 0);
        }
    }
}

/* Names are checked eight bytes at a time: every length, every position,
 * every kind of bad byte, inside a quote (names followed by a body) and a
 * heartbeat (source at the very end of the frame, checked byte by byte). */
static void test_name_bytes_every_position(void **state)
{
    (void)state;
    static const uint8_t bad[] = {0x00, 0x09, 0x20, 0x7f, 0x80, 0xc3, 0xff};
    uint8_t b[256];
    char name[32];
    for (size_t len = 1; len <= 31; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            /* Edges of the allowed range at this position pass. */
            for (int edge = 0; edge < 2; edge++) {
                memset(name, 'a', len);
                name[len] = '\0';
                name[pos] = edge ? 0x7e : 0x21;
                capture c = {0};
                size_t n = mdcache_bin1_put_quote(b, sizeof b, name, name, 1, 1, 0, 0, B(1, 0),
                                                  B(2, 0), B(1, 0), B(1, 0));
                assert_int_equal(decode(&c, b, n, 1), n);
                assert_int_equal(c.n, 1);
                assert_memory_equal(c.t[0].symbol, name, len + 1);
                assert_memory_equal(c.t[0].source, name, len + 1);
                memset(&c, 0, sizeof c);
                n = mdcache_bin1_put_heartbeat(b, sizeof b, name, 5);
                assert_int_equal(decode(&c, b, n, 1), n);
                assert_int_equal(c.n, 1);
                assert_string_equal(c.t[0].source, name);
            }
            for (size_t k = 0; k < sizeof bad; k++) {
                memset(name, 'a', len);
                name[len] = '\0';
                capture c = {0};
                /* Symbol bad, then source bad, then heartbeat source bad. */
                for (int where = 0; where < 3; where++) {
                    size_t n = where < 2 ? mdcache_bin1_put_quote(b, sizeof b, name, name, 1, 1, 0, 0,
                                                                 B(1, 0), B(2, 0), B(1, 0), B(1, 0))
                                         : mdcache_bin1_put_heartbeat(b, sizeof b, name, 5);
                    size_t at = 24 + pos + (where == 1 ? len : 0);
                    b[at] = bad[k];
                    memset(&c, 0, sizeof c);
                    assert_int_equal(decode(&c, b, n, 1), n);
                    assert_int_equal(c.n, 0);
                    assert_int_equal(c.st.err[MD_DERR_SYMBOL], 1);
                }
            }
        }
    }
}

/* The origin trailer: the frame's last 8 bytes, behind the body. */
static void test_origin(void **state)
{
    (void)state;
    uint8_t b[512];
    capture c = {0};
    size_t q = put_q(b, sizeof b, "MNQZ5");
    size_t n = mdcache_bin1_add_origin(b, q, sizeof b, 5123456789LL);
    assert_int_equal(n, q + 8);
    assert_int_equal(b[7], 0x07);
    assert_int_equal(b[2] | (b[3] << 8), (int)n);
    /* Only once per frame, and only if it fits. */
    assert_int_equal(mdcache_bin1_add_origin(b, n, sizeof b, 1), 0);
    size_t t = put_t(b + n, sizeof b - n, "ESZ5", 9);
    assert_int_equal(mdcache_bin1_add_origin(b + n, t, t + 7, 1), 0);
    size_t t2 = mdcache_bin1_add_origin(b + n, t, sizeof b - n, 77);
    assert_int_equal(t2, t + 8);
    size_t plain = put_t(b + n + t2, sizeof b - n - t2, "NQZ5", 10);
    size_t all = n + t2 + plain;
    assert_int_equal(decode(&c, b, all, 1), all);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.t[0].origin_ns, 5123456789LL);
    assert_dec(c.t[0].v[MD_Q_ASK_SIZE], 5, 0);
    assert_int_equal(c.t[1].origin_ns, 77);
    assert_dec(c.t[1].v[MD_T_SIZE], 2, 0);
    assert_int_equal(c.t[2].origin_ns, 0);

    /* A later revision's extra body bytes sit between body and origin. */
    memset(&c, 0, sizeof c);
    t = put_t(b, sizeof b, "ESZ5", 9);
    memset(b + t, 0xEE, 5);
    b[2] = (uint8_t)(t + 5);
    n = mdcache_bin1_add_origin(b, t + 5, sizeof b, 42);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.t[0].origin_ns, 42);

    /* Flag set but no room for it after the body: truncated, nothing else lost. */
    memset(&c, 0, sizeof c);
    t = put_t(b, sizeof b, "ESZ5", 9);
    b[7] |= MDCACHE_BIN1_F_ORIGIN;
    plain = put_t(b + t, sizeof b - t, "NQZ5", 10);
    assert_int_equal(decode(&c, b, t + plain, 1), t + plain);
    assert_int_equal(c.st.err[MD_DERR_TRUNCATED], 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.t[0].symbol, "NQZ5");

    /* Zero or negative: not given. */
    memset(&c, 0, sizeof c);
    t = put_t(b, sizeof b, "ESZ5", 9);
    n = mdcache_bin1_add_origin(b, t, sizeof b, -5);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.t[0].origin_ns, 0);
}

/* ---- account messages: position, order, balance, account ---- */

static const char *const ACCT = "PAAPEX2666680000001";
static const char *const S31 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
static const char *const S63 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz012345";

static void test_account_round_trip(void **state)
{
    (void)state;
    uint8_t b[1400];
    capture c = {0};
    size_t n = 0, k;
    const int64_t ts = 1763740000123456789LL;

    k = mdcache_bin1_put_position(b + n, sizeof b - n, ACCT, "MNQZ5", "apex", 5, 1, ts, 1, B(2, 0),
                                  B(210005, -1));
    assert_int_equal(k, 24 + 5 + 4 + 1 + 19 + 18);
    n += k;
    k = mdcache_bin1_put_order(b + n, sizeof b - n, ACCT, "D17158695", "MNQZ5", "apex", 6, 1, ts + 1,
                               1, MDCACHE_BIN1_SIDE_BUY, MDCACHE_BIN1_STATUS_WORKING, B(1, 0),
                               B(209900, -1));
    assert_int_equal(k, 24 + 5 + 4 + 1 + 19 + 1 + 9 + 2 + 18);
    n += k;
    k = mdcache_bin1_put_balance(b + n, sizeof b - n, ACCT, "apex", 7, 1, ts + 2, 1, B(500000, -1),
                                 B(125, -1), B(-30, -1));
    assert_int_equal(k, 24 + 4 + 1 + 19 + 27);
    n += k;
    k = mdcache_bin1_put_account(b + n, sizeof b - n, ACCT, "D17158695", "apex", 8, 1, ts + 3, 1,
                                 MDCACHE_BIN1_ACTIVE_YES);
    assert_int_equal(k, 24 + 4 + 1 + 19 + 1 + 9 + 1);
    n += k;

    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.st.ok, 4);
    for (size_t i = 0; i < 4; i++) {
        const md_acct *a = &c.a[i];
        assert_int_equal(a->t.type, MD_TICK_POSITION + i);
        assert_int_equal(a->t.flags, MD_TICK_F_SEQ | MD_TICK_F_TS);
        assert_int_equal(a->t.seq, 5 + i);
        assert_int_equal(a->t.ts_ns, ts + (int64_t)i);
        assert_int_equal(a->t.origin_ns, 0);
        assert_string_equal(a->t.source, "apex");
        assert_int_equal(a->t.src_len, 4);
        assert_string_equal(a->account, ACCT);
        assert_int_equal(a->acct_len, 19);
        assert_acct_clean(a);
        assert_dec(a->t.v[3], 0, MD_DEC_ABSENT);
    }

    const md_acct *a = &c.a[0];
    assert_string_equal(a->t.symbol, "MNQZ5");
    assert_int_equal(a->t.sym_len, 5);
    assert_dec(a->t.v[MD_P_NET_POS], 2, 0);
    assert_dec(a->t.v[MD_P_AVG_PRICE], 210005, -1);
    assert_dec(a->t.v[2], 0, MD_DEC_ABSENT);
    assert_int_equal(a->ref_len, 0);
    assert_int_equal(a->side + a->status + a->active, 0);

    a = &c.a[1];
    assert_string_equal(a->t.symbol, "MNQZ5");
    assert_string_equal(a->ref, "D17158695");
    assert_int_equal(a->ref_len, 9);
    assert_int_equal(a->side, MD_SIDE_BUY);
    assert_int_equal(a->status, MD_ORDER_WORKING);
    assert_int_equal(a->active, 0);
    assert_dec(a->t.v[MD_O_QTY], 1, 0);
    assert_dec(a->t.v[MD_O_PRICE], 209900, -1);
    assert_dec_str(a->t.v[MD_O_PRICE], "20990.0");

    a = &c.a[2];
    assert_int_equal(a->t.sym_len, 0);
    assert_string_equal(a->t.symbol, "");
    assert_dec(a->t.v[MD_B_CASH], 500000, -1);
    assert_dec(a->t.v[MD_B_REALIZED], 125, -1);
    assert_dec(a->t.v[MD_B_UNREALIZED], -30, -1);
    assert_int_equal(a->ref_len + a->side + a->status + a->active, 0);

    a = &c.a[3];
    assert_int_equal(a->t.sym_len, 0);
    assert_string_equal(a->ref, "D17158695");
    assert_int_equal(a->active, MD_ACTIVE_YES);
    for (int i = 0; i < 4; i++)
        assert_dec(a->t.v[i], 0, MD_DEC_ABSENT);

    /* The head the callback got is the tick part of the record. */
    assert_tick_eq(&c.t[1], &c.a[1].t);
}

/* Optional fields left out, and the other values of the enums. */
static void test_account_optional(void **state)
{
    (void)state;
    uint8_t b[1400];
    capture c = {0};
    size_t n = 0;

    /* flat position without an average price, no source, no seq/ts */
    n += mdcache_bin1_put_position(b + n, sizeof b - n, "A", "ES", NULL, 0, 0, 0, 0, B(0, 0), NONE);
    /* a short position */
    n += mdcache_bin1_put_position(b + n, sizeof b - n, "A", "ES", NULL, 0, 0, 0, 0, B(-3, 0),
                                   B(-125, -2));
    /* order: no symbol, side, qty or price */
    n += mdcache_bin1_put_order(b + n, sizeof b - n, "A", "o-1", NULL, NULL, 0, 0, 0, 0,
                                MDCACHE_BIN1_SIDE_NONE, MDCACHE_BIN1_STATUS_CANCELLED, NONE, NONE);
    n += mdcache_bin1_put_order(b + n, sizeof b - n, S31, S63, S31, S31, 0, 0, 0, 0,
                                MDCACHE_BIN1_SIDE_SELL, MDCACHE_BIN1_STATUS_REJECTED, B(0, 0),
                                B(-5, 0));
    n += mdcache_bin1_put_order(b + n, sizeof b - n, "A", "o-2", "", NULL, 0, 0, 0, 0,
                                MDCACHE_BIN1_SIDE_BUY, MDCACHE_BIN1_STATUS_FILLED, B(25, -1), NONE);
    /* balance: any one of the three is enough */
    n += mdcache_bin1_put_balance(b + n, sizeof b - n, "A", NULL, 0, 0, 0, 0, NONE, NONE, B(7, 0));
    /* account: no id, active unknown; and inactive */
    n += mdcache_bin1_put_account(b + n, sizeof b - n, "A", NULL, NULL, 0, 0, 0, 0,
                                  MDCACHE_BIN1_ACTIVE_UNKNOWN);
    n += mdcache_bin1_put_account(b + n, sizeof b - n, "A", "", NULL, 0, 0, 0, 0,
                                  MDCACHE_BIN1_ACTIVE_NO);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 8);
    for (size_t i = 0; i < c.n; i++) {
        assert_acct_clean(&c.a[i]);
        assert_int_equal(c.a[i].t.flags, 0);
    }

    assert_dec(c.a[0].t.v[MD_P_NET_POS], 0, 0);
    assert_dec(c.a[0].t.v[MD_P_AVG_PRICE], 0, MD_DEC_ABSENT);
    assert_int_equal(c.a[0].t.src_len, 0);
    assert_dec(c.a[1].t.v[MD_P_NET_POS], -3, 0);
    assert_dec(c.a[1].t.v[MD_P_AVG_PRICE], -125, -2);

    const md_acct *a = &c.a[2];
    assert_int_equal(a->t.type, MD_TICK_ORDER);
    assert_int_equal(a->t.sym_len, 0);
    assert_int_equal(a->side, MD_SIDE_NONE);
    assert_int_equal(a->status, MD_ORDER_CANCELLED);
    assert_dec(a->t.v[MD_O_QTY], 0, MD_DEC_ABSENT);
    assert_dec(a->t.v[MD_O_PRICE], 0, MD_DEC_ABSENT);

    /* the limits: 31-byte account, symbol and source, 63-byte order id */
    a = &c.a[3];
    assert_string_equal(a->account, S31);
    assert_int_equal(a->acct_len, 31);
    assert_string_equal(a->ref, S63);
    assert_int_equal(a->ref_len, 63);
    assert_string_equal(a->t.symbol, S31);
    assert_string_equal(a->t.source, S31);
    assert_int_equal(a->side, MD_SIDE_SELL);
    assert_int_equal(a->status, MD_ORDER_REJECTED);
    assert_dec(a->t.v[MD_O_QTY], 0, 0);
    assert_dec(a->t.v[MD_O_PRICE], -5, 0);

    assert_int_equal(c.a[4].t.sym_len, 0);
    assert_int_equal(c.a[4].status, MD_ORDER_FILLED);
    assert_dec(c.a[4].t.v[MD_O_QTY], 25, -1);

    a = &c.a[5];
    assert_dec(a->t.v[MD_B_CASH], 0, MD_DEC_ABSENT);
    assert_dec(a->t.v[MD_B_REALIZED], 0, MD_DEC_ABSENT);
    assert_dec(a->t.v[MD_B_UNREALIZED], 7, 0);

    assert_int_equal(c.a[6].ref_len, 0);
    assert_int_equal(c.a[6].active, MD_ACTIVE_UNKNOWN);
    assert_int_equal(c.a[7].ref_len, 0);
    assert_int_equal(c.a[7].active, MD_ACTIVE_NO);
}

static void test_account_encoder_refusals(void **state)
{
    (void)state;
    uint8_t b[1400];
    const char *a32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    const char *r64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234abcdefghijklmnopqrstuvwxyz0123456";
    assert_int_equal(strlen(a32), 32);
    assert_int_equal(strlen(r64), 64);
    assert_int_equal(strlen(S63), 63);

    /* account: NULL, empty, over-long, for every type */
    const char *bad_acct[] = {NULL, "", a32};
    for (size_t i = 0; i < 3; i++) {
        const char *x = bad_acct[i];
        assert_int_equal(mdcache_bin1_put_position(b, sizeof b, x, "ES", NULL, 0, 0, 0, 0, B(1, 0),
                                                   NONE),
                         0);
        assert_int_equal(mdcache_bin1_put_order(b, sizeof b, x, "o", NULL, NULL, 0, 0, 0, 0, 0,
                                                MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                         0);
        assert_int_equal(mdcache_bin1_put_balance(b, sizeof b, x, NULL, 0, 0, 0, 0, B(1, 0), NONE,
                                                  NONE),
                         0);
        assert_int_equal(mdcache_bin1_put_account(b, sizeof b, x, NULL, NULL, 0, 0, 0, 0, 0), 0);
    }
    /* order id: NULL, empty, 64 bytes; account id: 64 bytes */
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", NULL, NULL, NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", "", NULL, NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", r64, NULL, NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_true(mdcache_bin1_put_order(b, sizeof b, "A", S63, NULL, NULL, 0, 0, 0, 0, 0,
                                       MDCACHE_BIN1_STATUS_WORKING, NONE, NONE) > 0);
    assert_int_equal(mdcache_bin1_put_account(b, sizeof b, "A", r64, NULL, 0, 0, 0, 0, 0), 0);
    assert_true(mdcache_bin1_put_account(b, sizeof b, "A", S63, NULL, 0, 0, 0, 0, 0) > 0);
    /* values with no wire code */
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", "o", NULL, NULL, 0, 0, 0, 0, 3,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", "o", NULL, NULL, 0, 0, 0, 0, 0, 0,
                                            NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", "o", NULL, NULL, 0, 0, 0, 0, 0, 5,
                                            NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_account(b, sizeof b, "A", NULL, NULL, 0, 0, 0, 0, 3), 0);
    /* a position needs its instrument; names over 31 bytes */
    assert_int_equal(mdcache_bin1_put_position(b, sizeof b, "A", NULL, NULL, 0, 0, 0, 0, B(1, 0),
                                               NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_position(b, sizeof b, "A", "", NULL, 0, 0, 0, 0, B(1, 0),
                                               NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, sizeof b, "A", "o", a32, NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_balance(b, sizeof b, "A", a32, 0, 0, 0, 0, B(1, 0), NONE,
                                              NONE),
                     0);
    /* does not fit: one byte short, then exactly */
    size_t need = 24 + 2 + 2 + 2 + 2 + 18; /* "ES", account "A" and order "o" with lengths */
    assert_int_equal(mdcache_bin1_put_order(b, need - 1, "A", "o", "ES", NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     0);
    assert_int_equal(mdcache_bin1_put_order(b, need, "A", "o", "ES", NULL, 0, 0, 0, 0, 0,
                                            MDCACHE_BIN1_STATUS_WORKING, NONE, NONE),
                     need);
    need = 24 + 2 + 1 + 1; /* account "A", id length 0, active */
    assert_int_equal(mdcache_bin1_put_account(b, need - 1, "A", NULL, NULL, 0, 0, 0, 0, 0), 0);
    assert_int_equal(mdcache_bin1_put_account(b, need, "A", NULL, NULL, 0, 0, 0, 0, 0), need);
}

/* Frames to damage: no source, one-byte symbol where there is one, so the
 * body starts at 25 (position, order) or 24 (balance, account). */
static size_t acct_pos(uint8_t *f, mdcache_bin1_dec net, mdcache_bin1_dec avg)
{
    return mdcache_bin1_put_position(f, 1100, "ACC", "X", NULL, 0, 0, 0, 0, net, avg);
}

static size_t acct_ord(uint8_t *f, unsigned side, unsigned status, mdcache_bin1_dec qty,
                       mdcache_bin1_dec px)
{
    return mdcache_bin1_put_order(f, 1100, "ACC", "ORD", "X", NULL, 0, 0, 0, 0, side, status, qty,
                                  px);
}

static size_t acct_bal(uint8_t *f, mdcache_bin1_dec cash, mdcache_bin1_dec r, mdcache_bin1_dec u)
{
    return mdcache_bin1_put_balance(f, 1100, "ACC", NULL, 0, 0, 0, 0, cash, r, u);
}

static size_t acct_acc(uint8_t *f, const char *id, unsigned active)
{
    return mdcache_bin1_put_account(f, 1100, "ACC", id, NULL, 0, 0, 0, 0, active);
}

static void set_len(uint8_t *f, size_t n)
{
    f[2] = (uint8_t)(n & 0xff);
    f[3] = (uint8_t)(n >> 8);
}

/* Every reason an account frame can be dropped for, each in the middle of
 * a datagram whose other frames must come through. */
static void test_account_errors(void **state)
{
    (void)state;
    uint8_t f[1100];
    size_t n;
    const size_t P = 25; /* body of acct_pos/acct_ord: acct_len */

    /* id: account empty, over-long, bad bytes */
    n = acct_pos(f, B(1, 0), NONE);
    f[P] = 0;
    expect_frame_error(f, n, MD_DERR_ID);
    n = acct_pos(f, B(1, 0), NONE);
    f[P] = 32; /* over-long, however much room the frame has */
    expect_frame_error(f, n, MD_DERR_ID);
    n = acct_pos(f, B(1, 0), NONE);
    f[P] = 255;
    expect_frame_error(f, n, MD_DERR_ID);
    static const uint8_t badb[] = {0x00, 0x20, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof badb; i++) {
        n = acct_pos(f, B(1, 0), NONE);
        f[P + 2] = badb[i];
        expect_frame_error(f, n, MD_DERR_ID);
        n = acct_bal(f, B(1, 0), NONE, NONE);
        f[24 + 3] = badb[i];
        expect_frame_error(f, n, MD_DERR_ID);
        n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
        f[P + 4 + 1 + 1] = badb[i]; /* inside the order id */
        expect_frame_error(f, n, MD_DERR_ID);
        n = acct_acc(f, "ID7", 0);
        f[24 + 4 + 1 + 2] = badb[i]; /* inside the account id */
        expect_frame_error(f, n, MD_DERR_ID);
    }
    /* id: order id empty or over-long */
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 4] = 0;
    expect_frame_error(f, n, MD_DERR_ID);
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 4] = 64;
    expect_frame_error(f, n, MD_DERR_ID);
    n = acct_acc(f, "ID7", 0);
    f[24 + 4] = 64;
    expect_frame_error(f, n, MD_DERR_ID);

    /* truncated: a length running past the frame, a body cut short */
    n = acct_pos(f, B(1, 0), NONE);
    set_len(f, P + 3); /* acct_len 3, two of its bytes */
    expect_frame_error(f, P + 3, MD_DERR_TRUNCATED);
    n = acct_pos(f, B(1, 0), NONE);
    set_len(f, P); /* not even the length byte */
    expect_frame_error(f, P, MD_DERR_TRUNCATED);
    n = acct_pos(f, B(1, 0), NONE);
    set_len(f, n - 1); /* avg_price one byte short */
    expect_frame_error(f, n - 1, MD_DERR_TRUNCATED);
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 4] = 63; /* order id longer than the frame holds */
    expect_frame_error(f, n, MD_DERR_TRUNCATED);
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    set_len(f, P + 4 + 4 + 1); /* side, no status */
    expect_frame_error(f, P + 4 + 4 + 1, MD_DERR_TRUNCATED);
    n = acct_bal(f, B(1, 0), B(1, 0), B(1, 0));
    set_len(f, n - 9);
    expect_frame_error(f, n - 9, MD_DERR_TRUNCATED);
    n = acct_acc(f, "ID7", 0);
    set_len(f, n - 1); /* no active byte */
    expect_frame_error(f, n - 1, MD_DERR_TRUNCATED);
    n = acct_acc(f, NULL, 0);
    f[7] |= MDCACHE_BIN1_F_ORIGIN; /* no room for the stamp behind the body */
    expect_frame_error(f, n, MD_DERR_TRUNCATED);
    n = acct_pos(f, B(1, 0), NONE);
    f[5] = 30; /* names past the frame */
    expect_frame_error(f, n, MD_DERR_TRUNCATED);

    /* bad_value: side, status, active without a wire meaning */
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 8] = 3;
    expect_frame_error(f, n, MD_DERR_BAD_VALUE);
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 9] = 0;
    expect_frame_error(f, n, MD_DERR_BAD_VALUE);
    n = acct_ord(f, 0, MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    f[P + 9] = 5;
    expect_frame_error(f, n, MD_DERR_BAD_VALUE);
    n = acct_acc(f, NULL, 0);
    f[n - 1] = 3;
    expect_frame_error(f, n, MD_DERR_BAD_VALUE);

    /* missing_field: position without net_pos, balance without any value */
    n = acct_pos(f, NONE, B(1, 0));
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);
    n = acct_bal(f, NONE, NONE, NONE);
    expect_frame_error(f, n, MD_DERR_MISSING_FIELD);

    /* negative: order quantity */
    n = acct_ord(f, 1, MDCACHE_BIN1_STATUS_WORKING, B(-1, 0), B(1, 0));
    expect_frame_error(f, n, MD_DERR_NEGATIVE);

    /* bad_number: exponents, mantissas, ts */
    n = acct_pos(f, B(1, 1), NONE);
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = acct_pos(f, B(1, 0), B(1, -19));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = acct_ord(f, 1, MDCACHE_BIN1_STATUS_FILLED, B(1, 0), B(1000000000000000000LL, 0));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = acct_bal(f, B(1, 0), NONE, B(INT64_MIN, -2));
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);
    n = mdcache_bin1_put_account(f, sizeof f, "ACC", NULL, NULL, 0, 0, -1, 1, 0);
    expect_frame_error(f, n, MD_DERR_BAD_NUMBER);

    /* symbol: position without one or with "*", order with "*", a symbol
     * on a balance or account, bad source, over-long names */
    n = acct_bal(f, B(1, 0), B(1, 0), B(1, 0));
    f[4] = MDCACHE_BIN1_POSITION; /* a fine position body, but sym_len 0 */
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_position(f, sizeof f, "ACC", "*", NULL, 0, 0, 0, 0, B(1, 0), NONE);
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_order(f, sizeof f, "ACC", "ORD", "*", NULL, 0, 0, 0, 0, 0,
                               MDCACHE_BIN1_STATUS_WORKING, NONE, NONE);
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = acct_pos(f, B(1, 0), B(1, 0));
    f[4] = MDCACHE_BIN1_BALANCE;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = acct_pos(f, B(1, 0), B(1, 0));
    f[4] = MDCACHE_BIN1_ACCOUNT;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = acct_pos(f, B(1, 0), NONE);
    f[24] = ' ';
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = mdcache_bin1_put_balance(f, sizeof f, "ACC", "src", 0, 0, 0, 0, B(1, 0), NONE, NONE);
    f[25] = 0x80;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
    n = acct_pos(f, B(1, 0), NONE);
    f[6] = 32;
    expect_frame_error(f, n, MD_DERR_SYMBOL);
}

/* Later revisions may append fields to a body: ignored, before the origin
 * stamp, which stays last. */
static void test_account_forward_compat(void **state)
{
    (void)state;
    uint8_t b[600];
    capture c = {0};
    size_t n = mdcache_bin1_put_order(b, sizeof b, ACCT, "D1", "MNQZ5", NULL, 1, 1, 2, 1,
                                      MDCACHE_BIN1_SIDE_BUY, MDCACHE_BIN1_STATUS_WORKING, B(1, 0),
                                      B(209900, -1));
    memset(b + n, 0xee, 11);
    n += 11;
    set_len(b, n);
    n = mdcache_bin1_add_origin(b, n, sizeof b, 4242);
    assert_true(n > 0);
    size_t m = mdcache_bin1_put_balance(b + n, sizeof b - n, ACCT, NULL, 0, 0, 0, 0, B(1, 0), NONE,
                                        NONE);
    m = mdcache_bin1_add_origin(b + n, m, sizeof b - n, 77);
    assert_int_equal(decode(&c, b, n + m, 1), n + m);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.a[0].t.origin_ns, 4242);
    assert_string_equal(c.a[0].ref, "D1");
    assert_dec(c.a[0].t.v[MD_O_PRICE], 209900, -1);
    assert_int_equal(c.a[1].t.origin_ns, 77);
    assert_dec(c.a[1].t.v[MD_B_CASH], 1, 0);
}

/* Prices and account messages share datagrams. */
static void test_account_mixed_datagram(void **state)
{
    (void)state;
    uint8_t b[1400];
    capture c = {0};
    size_t n = put_q(b, sizeof b, "MNQZ5");
    n += mdcache_bin1_put_order(b + n, sizeof b - n, ACCT, "D17158695", "MNQZ5", "apex", 6, 1, 7, 1,
                                MDCACHE_BIN1_SIDE_BUY, MDCACHE_BIN1_STATUS_WORKING, B(1, 0),
                                B(209900, -1));
    n += mdcache_bin1_put_heartbeat(b + n, sizeof b - n, "apex", 8);
    assert_int_equal(decode(&c, b, n, 1), n);
    assert_int_equal(errs(&c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.t[0].type, MD_TICK_QUOTE);
    assert_dec(c.t[0].v[MD_Q_ASK], 2100050, -2);
    assert_int_equal(c.t[1].type, MD_TICK_ORDER);
    assert_string_equal(c.a[1].account, ACCT);
    assert_string_equal(c.a[1].ref, "D17158695");
    assert_string_equal(c.a[1].t.symbol, "MNQZ5");
    assert_int_equal(c.a[1].status, MD_ORDER_WORKING);
    assert_int_equal(c.t[2].type, MD_TICK_HEARTBEAT);
    assert_string_equal(c.t[2].source, "apex");
    /* price ticks carry no account record */
    assert_int_equal(c.a[0].acct_len, 0);
    assert_int_equal(c.a[2].acct_len, 0);
}

/* The account layouts of docs/protocol.md, byte for byte. */
static void test_account_doc_example(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0xb1, 0x01, 0x41, 0x00, 0x06, 0x05, 0x00, 0x02, /* header: len 65, order, sym 5, ts */
        0, 0, 0, 0, 0, 0, 0, 0,                         /* seq (not valid) */
        0x15, 0x8d, 0x81, 0x77, 0x2f, 0x10, 0x7a, 0x18, /* ts */
        'M', 'N', 'Q', 'Z', '5',                        /* symbol */
        0x05, 'A', 'P', 'E', 'X', '1',                  /* account */
        0x09, 'D', '1', '7', '1', '5', '8', '6', '9', '5', /* order_id */
        0x01, 0x01,                                     /* side buy, status working */
        0x01, 0, 0, 0, 0, 0, 0, 0, 0x00,                /* qty 1 */
        0xec, 0x33, 0x03, 0, 0, 0, 0, 0, 0xff,          /* price 20990.0 */
    };
    uint8_t b[128];
    size_t n = mdcache_bin1_put_order(b, sizeof b, "APEX1", "D17158695", "MNQZ5", NULL, 0, 0,
                                      1763740000123456789LL, 1, MDCACHE_BIN1_SIDE_BUY,
                                      MDCACHE_BIN1_STATUS_WORKING, B(1, 0), B(209900, -1));
    assert_int_equal(n, sizeof want);
    assert_memory_equal(b, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_round_trip),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_name_bytes_every_position),
        cmocka_unit_test(test_trade_heartbeat_reset),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_many_per_datagram),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_forward_compat),
        cmocka_unit_test(test_datagram_header_errors),
        cmocka_unit_test(test_datagram_cut),
        cmocka_unit_test(test_stream_partial),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_stream_resync),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_account_round_trip),
        cmocka_unit_test(test_account_optional),
        cmocka_unit_test(test_account_encoder_refusals),
        cmocka_unit_test(test_account_errors),
        cmocka_unit_test(test_account_forward_compat),
        cmocka_unit_test(test_account_mixed_datagram),
        cmocka_unit_test(test_account_doc_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
