/*
 * Shared by the decoder fuzz targets: checks every tick a decoder emits
 * against the md_tick invariants (and account records against the md_acct
 * ones) and serialises it into a log, so that two ways of feeding the same
 * input can be compared byte for byte.
 */
#ifndef MD_FUZZ_TICK_LOG_H
#define MD_FUZZ_TICK_LOG_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_decode.h"
#include "mdcache_bin1.h"

typedef struct sink {
    uint8_t *log; /* serialised ticks, to compare runs */
    size_t n, cap;
    uint64_t ticks;
    md_decode_stats st;
} sink;

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void put(sink *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2 + 256;
        s->log = realloc(s->log, s->cap);
        check(s->log != NULL);
    }
    memcpy(s->log + s->n, p, n);
    s->n += n;
}

static int name_ok(const char *s, size_t len, size_t size, int may_be_empty)
{
    if (len >= size || (len == 0 && !may_be_empty) || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    /* account records are zeroed before they are filled */
    for (size_t i = len; i < size; i++)
        if (s[i] != 0)
            return 0;
    return 1;
}

static int dec_negative(md_dec d) { return md_dec_present(d) && d.mant < 0; }

/* What md_tick.h promises of an account record (md_acct), beyond the
 * md_tick invariants on_tick checks. */
static void check_acct(const md_acct *a)
{
    const md_tick *t = &a->t;
    check(name_ok(a->account, a->acct_len, sizeof a->account, 0));
    check(name_ok(a->ref, a->ref_len, sizeof a->ref, t->type != MD_TICK_ORDER));
    check(name_ok(t->symbol, t->sym_len, sizeof t->symbol, t->type != MD_TICK_POSITION));
    check(name_ok(t->source, t->src_len, sizeof t->source, 1));
    check(!(t->sym_len == 1 && t->symbol[0] == '*'));
    check(t->feed_id == 0 && t->src_hash == 0 && t->sym_hash == 0);
    check(!md_dec_present(t->v[3]));
    switch (t->type) {
    case MD_TICK_POSITION:
        check(md_dec_present(t->v[MD_P_NET_POS]) && !md_dec_present(t->v[2]));
        check(a->ref_len == 0 && a->side == 0 && a->status == 0 && a->active == 0);
        break;
    case MD_TICK_ORDER:
        check(a->status >= MD_ORDER_WORKING && a->status <= MD_ORDER_REJECTED);
        check(a->side <= MD_SIDE_SELL && a->active == 0);
        check(!dec_negative(t->v[MD_O_QTY]) && !md_dec_present(t->v[2]));
        break;
    case MD_TICK_BALANCE:
        check(md_dec_present(t->v[MD_B_CASH]) || md_dec_present(t->v[MD_B_REALIZED]) ||
              md_dec_present(t->v[MD_B_UNREALIZED]));
        check(t->sym_len == 0 && a->ref_len == 0 && a->side == 0 && a->status == 0 &&
              a->active == 0);
        break;
    default: /* MD_TICK_ACCOUNT */
        check(t->sym_len == 0 && a->side == 0 && a->status == 0 && a->active <= MD_ACTIVE_YES);
        for (int i = 0; i < 4; i++)
            check(!md_dec_present(t->v[i]));
        break;
    }
}

static void acct_capture(void *ctx, const md_tick *t)
{
    check(md_tick_is_account(t->type));
    memcpy(ctx, t, sizeof(md_acct));
}

static void acct_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    (void)ctx;
    (void)why;
    (void)what;
    (void)len;
    check(0);
}

static mdcache_bin1_dec to_bin1(md_dec d)
{
    return mdcache_bin1_make(d.mant, d.exp);
}

/* Whatever a decoder accepts as an account message, the bin1 encoder can
 * carry, and the bin1 decoder gives the same record back: the two formats
 * and the encoder agree on every rule. */
static void check_acct_via_bin1(const md_acct *a)
{
    const md_tick *t = &a->t;
    unsigned char f[MDCACHE_BIN1_FRAME_MAX];
    int seq = !!(t->flags & MD_TICK_F_SEQ), ts = !!(t->flags & MD_TICK_F_TS);
    size_t n;

    switch (t->type) {
    case MD_TICK_POSITION:
        n = mdcache_bin1_put_position(f, sizeof f, a->account, t->symbol, t->source, t->seq, seq,
                                      t->ts_ns, ts, to_bin1(t->v[0]), to_bin1(t->v[1]));
        break;
    case MD_TICK_ORDER:
        n = mdcache_bin1_put_order(f, sizeof f, a->account, a->ref, t->symbol, t->source, t->seq,
                                   seq, t->ts_ns, ts, a->side, a->status, to_bin1(t->v[0]),
                                   to_bin1(t->v[1]));
        break;
    case MD_TICK_BALANCE:
        n = mdcache_bin1_put_balance(f, sizeof f, a->account, t->source, t->seq, seq, t->ts_ns, ts,
                                     to_bin1(t->v[0]), to_bin1(t->v[1]), to_bin1(t->v[2]));
        break;
    default:
        n = mdcache_bin1_put_account(f, sizeof f, a->account, a->ref, t->source, t->seq, seq,
                                     t->ts_ns, ts, a->active);
        break;
    }
    check(n > 0);
    if (t->origin_ns > 0)
        check((n = mdcache_bin1_add_origin(f, n, sizeof f, t->origin_ns)) > 0);

    md_acct b;
    md_decode_stats st = {0};
    md_decoder_ops ops = {acct_capture, acct_reject, &b, &st};
    check(md_bin1_decode(f, n, 1, &ops) == n && st.ok == 1);
    check(b.t.type == t->type && b.t.flags == t->flags && b.t.seq == t->seq &&
          b.t.ts_ns == t->ts_ns && b.t.origin_ns == t->origin_ns);
    check(b.acct_len == a->acct_len && b.ref_len == a->ref_len && b.side == a->side &&
          b.status == a->status && b.active == a->active);
    check(b.t.sym_len == t->sym_len && b.t.src_len == t->src_len);
    check(memcmp(b.account, a->account, sizeof a->account) == 0);
    check(memcmp(b.ref, a->ref, sizeof a->ref) == 0);
    check(memcmp(b.t.symbol, t->symbol, sizeof t->symbol) == 0);
    check(memcmp(b.t.source, t->source, sizeof t->source) == 0);
    for (int i = 0; i < 4; i++)
        check(b.t.v[i].exp == t->v[i].exp &&
              (!md_dec_present(t->v[i]) || b.t.v[i].mant == t->v[i].mant));
}

static void on_tick(void *ctx, const md_tick *t)
{
    sink *s = ctx;
    check(t->type >= MD_TICK_QUOTE && t->type < MD_TICK_TYPE_COUNT);
    check(t->sym_len <= MD_SYMBOL_MAX && t->src_len <= MD_SOURCE_MAX);
    check(t->symbol[t->sym_len] == '\0' && strlen(t->symbol) == t->sym_len);
    check(t->source[t->src_len] == '\0' && strlen(t->source) == t->src_len);
    for (size_t i = 0; i < t->sym_len; i++)
        check(t->symbol[i] > 0x20 && t->symbol[i] < 0x7f);
    for (int i = 0; i < 4; i++) {
        if (md_dec_present(t->v[i]))
            check(t->v[i].exp >= MD_DEC_EXP_MIN && t->v[i].exp <= 0);
        char buf[32];
        check(md_dec_format(t->v[i], buf, sizeof buf) > 0);
    }
    check(t->ts_ns >= 0);
    put(s, &t->type, 1);
    put(s, &t->flags, 1);
    put(s, t->symbol, t->sym_len + 1u);
    put(s, t->source, t->src_len + 1u);
    put(s, &t->seq, sizeof t->seq);
    put(s, &t->ts_ns, sizeof t->ts_ns);
    for (int i = 0; i < 4; i++) {
        put(s, &t->v[i].mant, sizeof t->v[i].mant);
        put(s, &t->v[i].exp, 1);
    }
    if (md_tick_is_account(t->type)) {
        const md_acct *a = md_tick_acct(t);
        check_acct(a);
        check_acct_via_bin1(a);
        put(s, &t->origin_ns, sizeof t->origin_ns);
        put(s, &a->side, 1);
        put(s, &a->status, 1);
        put(s, &a->active, 1);
        put(s, a->account, a->acct_len + 1u);
        put(s, a->ref, a->ref_len + 1u);
    }
    s->ticks++;
}

/* Same ticks, in the same order. */
static void same_ticks(const sink *a, const sink *b)
{
    check(a->n == b->n && (a->n == 0 || memcmp(a->log, b->log, a->n) == 0));
}

/* Feeds data to a line decoder (jsonl, binance) as a stream cut at
 * cuts[0..ncuts), with the remainder and skipping flag a worker keeps. */
static inline void stream_lines(md_line_decode_fn dec, const md_decoder_ops *ops, const char *data,
                                size_t size, const size_t *cuts, size_t ncuts)
{
    char *acc = malloc(size + 1);
    size_t have = 0, from = 0;
    int skipping = 0;
    check(acc != NULL);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        memcpy(acc + have, data + from, to - from);
        have += to - from;
        from = to;
        size_t used = dec(acc, have, 0, &skipping, ops);
        check(used <= have);
        /* a caller's buffer of one maximal line always makes progress */
        check(have - used < MD_JSONL_LINE_MAX);
        memmove(acc, acc + used, have - used);
        have -= used;
    }
    check(dec(acc, have, 1, &skipping, ops) == have);
    free(acc);
}

#endif
