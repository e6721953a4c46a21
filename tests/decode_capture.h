/*
 * Shared by the decoder unit tests: a callback sink that keeps every tick
 * and counts rejects, so a test can assert on exactly what a decoder
 * produced. Include after <cmocka.h>.
 */
#ifndef MD_TEST_DECODE_CAPTURE_H
#define MD_TEST_DECODE_CAPTURE_H

#include <string.h>

#include "md_decimal.h"
#include "md_decode.h"

#define CAP_TICKS 256

typedef struct capture {
    md_tick t[CAP_TICKS];
    /* a[i] is the whole record when t[i] is an account message (the
     * decoder hands those as the head of an md_acct), zero otherwise. */
    md_acct a[CAP_TICKS];
    size_t n;
    md_decode_stats st;
    size_t rejects;
    md_decode_err last_why;
} capture;

static inline void on_tick(void *ctx, const md_tick *t)
{
    capture *c = ctx;
    assert_true(c->n < CAP_TICKS);
    c->t[c->n] = *t;
    /* Copying sizeof(md_acct) from an md_tick a decoder wrongly passed
     * alone would read past it: ASan builds catch that here. */
    if (md_tick_is_account(t->type))
        memcpy(&c->a[c->n], t, sizeof(md_acct));
    else
        memset(&c->a[c->n], 0, sizeof(md_acct));
    c->n++;
}

/* Every reject names at least one offending byte. */
static inline void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    capture *c = ctx;
    assert_non_null(what);
    assert_true(len > 0);
    c->rejects++;
    c->last_why = why;
}

static inline md_decoder_ops ops_for(capture *c)
{
    md_decoder_ops o = {on_tick, on_reject, c, &c->st};
    return o;
}

static inline uint64_t errs(const capture *c)
{
    uint64_t s = 0;
    for (int i = 0; i < MD_DERR_COUNT; i++)
        s += c->st.err[i];
    return s;
}

/* Decodes s as one datagram with a line decoder; all of it is consumed. */
static inline void decode_dgram(md_line_decode_fn dec, capture *c, const char *s)
{
    md_decoder_ops o = ops_for(c);
    size_t len = strlen(s);
    assert_int_equal(dec(s, len, 1, NULL, &o), len);
}

/* A decimal as mdcache prints it. */
static inline void assert_dec_str(md_dec d, const char *want)
{
    char buf[48];
    md_dec_format(d, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* Feeds data to a line decoder as a stream cut at cuts[0..ncuts), with the
 * caller-held remainder and skipping flag a worker keeps. */
static inline void feed_lines(md_line_decode_fn dec, capture *c, const char *data, size_t len,
                              const size_t *cuts, size_t ncuts)
{
    static char acc[1 << 16];
    size_t have = 0, from = 0;
    int skipping = 0;
    md_decoder_ops o = ops_for(c);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        memcpy(acc + have, data + from, to - from);
        have += to - from;
        from = to;
        size_t used = dec(acc, have, 0, &skipping, &o);
        assert_true(used <= have);
        /* the caller's buffer never needs more than a line */
        assert_true(have - used < MD_JSONL_LINE_MAX);
        memmove(acc, acc + used, have - used);
        have -= used;
    }
    assert_int_equal(dec(acc, have, 1, &skipping, &o), have);
}

/* Every byte of a name field past its length is zero: account records are
 * deterministic, whatever followed the name in the input. */
static inline void assert_zero_tail(const char *s, size_t len, size_t size)
{
    for (size_t i = len; i < size; i++)
        if (s[i] != 0)
            fail_msg("byte %zu of a %zu-byte field is %d", i, size, s[i]);
}

/* What a decoder promises of every account record it hands on: lengths
 * that match the NUL-terminated names, zeroed tails, and nothing of the
 * worker's own fields filled in. */
static inline void assert_acct_clean(const md_acct *a)
{
    assert_true(a->acct_len >= 1 && a->acct_len <= MD_ACCOUNT_MAX);
    assert_int_equal(strlen(a->account), a->acct_len);
    assert_int_equal(strlen(a->ref), a->ref_len);
    assert_zero_tail(a->account, a->acct_len, sizeof a->account);
    assert_zero_tail(a->ref, a->ref_len, sizeof a->ref);
    assert_zero_tail(a->t.symbol, a->t.sym_len, sizeof a->t.symbol);
    assert_zero_tail(a->t.source, a->t.src_len, sizeof a->t.source);
    assert_int_equal(a->t.feed_id, 0);
    assert_int_equal(a->t.src_hash, 0);
    assert_int_equal(a->t.sym_hash, 0);
}

#endif
