/*
 * Binance dialect fuzz target. The input is decoded as a datagram, as a
 * stream in one piece and as a stream cut at two points taken from the
 * data. Every tick must obey the md_tick invariants and what the dialect
 * promises (a quote or a trade, one of the fixed source names, a seq, a
 * whole number of milliseconds), and all three feedings must decode the
 * same ticks and count the same errors and skips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_tick_log.h"

static void on_binance_tick(void *ctx, const md_tick *t)
{
    check(t->type == MD_TICK_QUOTE || t->type == MD_TICK_TRADE);
    check(t->flags & MD_TICK_F_SEQ);
    check(t->ts_ns % 1000000 == 0);
    check(strcmp(t->source, t->type == MD_TICK_QUOTE ? "binance.bookTicker" : "binance.trade") == 0 ||
          strcmp(t->source, "binance.aggTrade") == 0);
    on_tick(ctx, t);
}

static void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    (void)ctx;
    check((unsigned)why < MD_DERR_COUNT && what != NULL && len > 0);
}

static void stream(sink *s, const char *data, size_t size, const size_t *cuts, size_t ncuts)
{
    md_decoder_ops ops = {on_binance_tick, on_reject, s, &s->st};
    stream_lines(md_binance_decode, &ops, data, size, cuts, ncuts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    sink dg = {0}, whole = {0}, split = {0};
    md_decoder_ops ops = {on_binance_tick, on_reject, &dg, &dg.st};

    check(md_binance_decode(s, size, 1, NULL, &ops) == size);

    size_t cuts[2] = {0, 0};
    if (size >= 4) {
        cuts[0] = (((size_t)data[0] << 8) | data[1]) % (size + 1);
        cuts[1] = (((size_t)data[2] << 8) | data[3]) % (size + 1);
        if (cuts[1] < cuts[0]) {
            size_t x = cuts[0];
            cuts[0] = cuts[1];
            cuts[1] = x;
        }
    }
    stream(&whole, s, size, NULL, 0);
    stream(&split, s, size, cuts, 2);
    same_ticks(&dg, &whole);
    same_ticks(&whole, &split);
    check(memcmp(&dg.st, &whole.st, sizeof dg.st) == 0);
    check(memcmp(&whole.st, &split.st, sizeof whole.st) == 0);
    check(dg.st.ok == dg.ticks);

    free(dg.log);
    free(whole.log);
    free(split.log);
    return 0;
}
