/*
 * bin1 decoder fuzz target. The input is decoded three ways: as a datagram,
 * as a stream in one piece, and as a stream split at a point taken from the
 * data. Every tick must obey the md_tick invariants, every account
 * message the md_acct ones and survive a round trip through the encoder
 * (fuzz_tick_log.h), and the two stream feeds must produce exactly the
 * same ticks (reassembly must not change what is decoded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_tick_log.h"

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
    same_ticks(&whole, &split);

    free(dg.log);
    free(whole.log);
    free(split.log);
    return 0;
}
