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

    /* unknown and reserved types, skipped by len */
    for (unsigned ty = 0; ty < 256; ty++) {
        if (ty >= 1 && ty <= 4)
            continue;
        n = put_q(f, sizeof f, "X");
        f[4] = (uint8_t)ty;
        expect_frame_error(f, n, MD_DERR_UNKNOWN_TYPE);
    }
    /* a reserved type with a body longer than any v1 body */
    n = put_q(f, sizeof f, "X");
    memset(f + n, 0x5a, 200);
    n += 200;
    f[2] = (uint8_t)(n & 0xff);
    f[3] = (uint8_t)(n >> 8);
    f[4] = MDCACHE_BIN1_ACCOUNT;
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
    for (size_t i = 0; i < a->n; i++)
        assert_tick_eq(&a->t[i], &b->t[i]);
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
        assert_int_equal(whole.n, 5);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
