/*
 * pipeline_cost: the per-tick CPU cost of mdcache's hot path, without
 * sockets: decode (bin1 or jsonl) -> coalesce -> format value + SETEX, as
 * one worker does it. Built as build/bench/pipeline_cost.
 *
 * Meant to be run under `valgrind --tool=callgrind --collect-atstart=no
 * --toggle-collect=md_bench_run`, which counts instructions only inside
 * md_bench_run (input generation is excluded); instruction counts are
 * repeatable on a noisy machine where wall-clock is not. Without valgrind
 * it also prints a wall-clock rate, for a rough side-by-side only.
 *
 * The input is synthetic and deterministic: --ticks ticks over --symbols
 * symbols, a 70/30 quote/trade mix, --per-batch ticks between two batch
 * writes (each write formats every dirty symbol, as the batch writer does;
 * the coalescing ratio is printed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_decode.h"
#include "md_format.h"
#include "md_state.h"
#include "mdcache_bin1.h"

typedef struct bench {
    md_state st;
    md_keytpl tpl;
    char *out;
    size_t out_cap, out_len;
    uint64_t ticks, writes;
    int64_t now;
} bench;

static void on_tick(void *ctx, const md_tick *in)
{
    bench *b = ctx;
    md_tick t = *in;
    t.origin_ns = b->now;
    t.src_hash = t.src_len ? md_sym_hash(t.source, t.src_len) : 1;
    /* As the worker does: one hash serves routing and the table. */
    t.sym_hash = md_sym_hash(t.symbol, t.sym_len);
    md_state_apply_hashed(&b->st, &t, t.sym_hash, b->now);
    b->ticks++;
}

static void flush(bench *b)
{
    char key[320], val[512];
    md_sym *s;
    b->out_len = 0;
    while ((s = md_state_pop_dirty(&b->st))) {
        size_t vlen = md_format_price(s, val, sizeof val);
        size_t klen = md_keytpl_format(&b->tpl, s->symbol, s->sym_len, key, sizeof key);
        if (b->out_cap - b->out_len < 2048) b->out_len = 0;
        b->out_len += md_resp_setex(b->out + b->out_len, b->out_cap - b->out_len, key, klen, 5, val,
                                    vlen);
        b->writes++;
    }
}

/* Kept out of line: callgrind toggles collection on this symbol. */
__attribute__((noinline)) void md_bench_run(bench *b, const uint8_t *in, const size_t *chunk_ends,
                                            size_t nchunks, int jsonl, size_t per_batch)
{
    md_decode_stats ds = {0};
    md_decoder_ops ops = {on_tick, NULL, b, &ds};
    size_t start = 0;
    uint64_t next_flush = per_batch;
    for (size_t i = 0; i < nchunks; i++) {
        size_t len = chunk_ends[i] - start;
        if (jsonl)
            md_jsonl_decode((const char *)in + start, len, 1, NULL, &ops);
        else
            md_bin1_decode(in + start, len, 1, &ops);
        start = chunk_ends[i];
        if (b->ticks >= next_flush) {
            flush(b);
            next_flush = b->ticks + per_batch;
        }
    }
    flush(b);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(int argc, char **argv)
{
    size_t nticks = 1000000, nsym = 10000, per_batch = 2000, per_dgram = 20;
    int jsonl = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ticks") && i + 1 < argc) nticks = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--symbols") && i + 1 < argc) nsym = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-batch") && i + 1 < argc) per_batch = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-datagram") && i + 1 < argc) per_dgram = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) jsonl = !strcmp(argv[++i], "jsonl");
        else {
            fprintf(stderr,
                    "usage: %s [--ticks N] [--symbols N] [--per-batch N] [--per-datagram N] "
                    "[--format bin1|jsonl]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!nticks || !nsym || !per_dgram) return 2;
    size_t cap = nticks * (jsonl ? 200 : 80) + 4096;
    uint8_t *in = malloc(cap);
    size_t *ends = malloc((nticks / per_dgram + 2) * sizeof *ends);
    size_t len = 0, nchunks = 0;
    int64_t ts = 1763740000000000000LL;
    for (size_t i = 0; i < nticks; i++) {
        char sym[32];
        snprintf(sym, sizeof sym, "SYM%05zu", (size_t)(rnd() % nsym));
        int64_t px = 2100000 + (int64_t)(rnd() % 2000);
        ts += 1000;
        int trade = rnd() % 10 < 3;
        if (jsonl) {
            if (trade)
                len += (size_t)sprintf((char *)in + len,
                                       "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":%" PRId64
                                       ".%02d,\"size\":%d,\"ts\":%" PRId64 ",\"seq\":%zu,\"source\":\"b\"}\n",
                                       sym, px / 100, (int)(px % 100), 1 + (int)(rnd() % 5), ts, i + 1);
            else
                len += (size_t)sprintf((char *)in + len,
                                       "{\"type\":\"quote\",\"symbol\":\"%s\",\"bid\":%" PRId64
                                       ".%02d,\"ask\":%" PRId64 ".%02d,\"bid_size\":3,\"ask_size\":5,"
                                       "\"ts\":%" PRId64 ",\"seq\":%zu,\"source\":\"b\"}\n",
                                       sym, px / 100, (int)(px % 100), (px + 25) / 100,
                                       (int)((px + 25) % 100), ts, i + 1);
        } else if (trade) {
            len += mdcache_bin1_put_trade(in + len, cap - len, sym, "b", i + 1, 1, ts, 1,
                                          mdcache_bin1_make(px, -2),
                                          mdcache_bin1_int(1 + (int64_t)(rnd() % 5)));
        } else {
            len += mdcache_bin1_put_quote(in + len, cap - len, sym, "b", i + 1, 1, ts, 1,
                                          mdcache_bin1_make(px, -2), mdcache_bin1_make(px + 25, -2),
                                          mdcache_bin1_int(3), mdcache_bin1_int(5));
        }
        if ((i + 1) % per_dgram == 0 || i + 1 == nticks) ends[nchunks++] = len;
    }

    bench b = {0};
    if (md_state_init(&b.st, (uint32_t)nsym + 16) || md_keytpl_init(&b.tpl, "", "price:{symbol}:latest"))
        return 1;
    b.out_cap = 1 << 20;
    b.out = malloc(b.out_cap);
    b.now = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    md_bench_run(&b, in, ends, nchunks, jsonl, per_batch);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("format=%s ticks=%" PRIu64 " symbols=%zu keys=%u writes=%" PRIu64
           " coalescing=%.2f ticks/write wall=%.3fs (%.2f Mticks/s, not for comparison across runs)\n",
           jsonl ? "jsonl" : "bin1", b.ticks, nsym, b.st.count, b.writes,
           b.writes ? (double)b.ticks / (double)b.writes : 0.0, secs, (double)b.ticks / secs / 1e6);
    md_state_free(&b.st);
    free(in);
    free(ends);
    free(b.out);
    return b.ticks == nticks ? 0 : 1;
}
