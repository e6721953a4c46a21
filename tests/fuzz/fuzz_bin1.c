/*
 * bin1 decoder fuzz target. The input is decoded three ways: as a datagram,
 * as a stream in one piece, and as a stream split at a point taken from the
 * data. Every tick must obey the md_tick invariants, and the two stream
 * feeds must produce exactly the same ticks (reassembly must not change
 * what is decoded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_decode.h"

typedef struct sink {
    uint8_t *log; /* serialised ticks, to compare runs */
    size_t n, cap;
    uint64_t ticks;
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
    for (int i = 0; i < 4; i++) {
        if (md_dec_present(t->v[i]))
            check(t->v[i].exp >= MD_DEC_EXP_MIN && t->v[i].exp <= 0);
        char buf[32];
        check(md_dec_format(t->v[i], buf, sizeof buf) > 0);
    }
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

static void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    (void)ctx;
    (void)what;
    check((unsigned)why < MD_DERR_COUNT && len > 0);
}

/* Feeds data as a stream reader would, in chunks ending at cuts[], keeping
 * the unconsumed tail, then ends it with final set. */
static void stream(sink *s, const uint8_t *data, size_t size, const size_t *cuts, size_t ncuts)
{
    md_decode_stats st = {0};
    md_decoder_ops ops = {on_tick, on_reject, s, &st};
    uint8_t *acc = malloc(size + 1);
    size_t have = 0, from = 0;
    check(acc != NULL);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : size;
        memcpy(acc + have, data + from, to - from);
        have += to - from;
        from = to;
        size_t used = md_bin1_decode(acc, have, 0, &ops);
        check(used <= have);
        /* what is left is at most one incomplete frame */
        check(have - used < MD_BIN1_FRAME_MAX);
        memmove(acc, acc + used, have - used);
        have -= used;
    }
    check(md_bin1_decode(acc, have, 1, &ops) == have);
    check(st.ok == s->ticks);
    free(acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink dg = {0}, whole = {0}, split = {0};
    md_decode_stats st = {0};
    md_decoder_ops ops = {on_tick, on_reject, &dg, &st};

    check(md_bin1_decode(data, size, 1, &ops) == size);
    check(st.ok == dg.ticks);

    size_t cut = size >= 2 ? (((size_t)data[0] << 8) | data[1]) % (size + 1) : 0;
    stream(&whole, data, size, NULL, 0);
    stream(&split, data, size, &cut, 1);
    check(whole.n == split.n && (whole.n == 0 || memcmp(whole.log, split.log, whole.n) == 0));

    free(dg.log);
    free(whole.log);
    free(split.log);
    return 0;
}
