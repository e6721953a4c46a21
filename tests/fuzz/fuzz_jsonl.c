/*
 * jsonl decoder fuzz target. The input is decoded as a datagram, as a
 * stream in one piece and as a stream split at a point taken from the data.
 * Every tick must obey the md_tick invariants, every account message the
 * md_acct ones, and what jsonl accepts as one the bin1 encoder must carry
 * and the bin1 decoder give back unchanged (fuzz_tick_log.h). All three
 * feedings must decode the same ticks and count the same errors: line
 * reassembly (including the oversized-line skipping state) must not change
 * what is decoded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_tick_log.h"

static void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    (void)ctx;
    (void)what;
    (void)len;
    check((unsigned)why < MD_DERR_COUNT);
}

static void stream(sink *s, const char *data, size_t size, const size_t *cuts, size_t ncuts)
{
    md_decoder_ops ops = {on_tick, on_reject, s, &s->st};
    stream_lines(md_jsonl_decode, &ops, data, size, cuts, ncuts);
}

static void same(const sink *a, const sink *b)
{
    same_ticks(a, b);
    check(memcmp(&a->st, &b->st, sizeof a->st) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    sink dg = {0}, whole = {0}, split = {0};
    md_decoder_ops ops = {on_tick, on_reject, &dg, &dg.st};

    check(md_jsonl_decode(s, size, 1, NULL, &ops) == size);

    size_t cut = size >= 2 ? (((size_t)data[0] << 8) | data[1]) % (size + 1) : 0;
    stream(&whole, s, size, NULL, 0);
    stream(&split, s, size, &cut, 1);
    same(&dg, &whole);
    same(&whole, &split);

    free(dg.log);
    free(whole.log);
    free(split.log);
    return 0;
}
