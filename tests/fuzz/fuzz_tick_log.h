/*
 * Shared by the decoder fuzz targets: checks every tick a decoder emits
 * against the md_tick invariants and serialises it into a log, so that two
 * ways of feeding the same input can be compared byte for byte.
 */
#ifndef MD_FUZZ_TICK_LOG_H
#define MD_FUZZ_TICK_LOG_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_decode.h"

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

static void on_tick(void *ctx, const md_tick *t)
{
    sink *s = ctx;
    check(t->type >= MD_TICK_QUOTE && t->type <= MD_TICK_RESET);
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
