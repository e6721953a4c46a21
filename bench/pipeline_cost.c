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
 *
 * --ring routes every tick through an md_ring (push at decode, drain after
 * each datagram), the hand-off between two workers, so its cost per tick
 * can be compared across versions (the source builds against older trees:
 * the ring's API has not changed). --account-every K mixes in one account
 * message (position, order or balance of 100 accounts) after every K
 * ticks, applied and formatted as the worker and the batch writer do.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "md_decode.h"
#include "md_format.h"
#include "md_ring.h"
#include "md_state.h"
#include "mdcache_bin1.h"

#ifdef MD_ACCOUNT_MAX /* trees with account messages (issue #5) */
#include "md_account.h"
#define HAVE_ACCOUNTS 1
#endif

typedef struct bench {
    md_state st;
    md_keytpl tpl;
    md_ring *ring; /* --ring */
    char *out;
    size_t out_cap, out_len;
    uint64_t ticks, writes;
    int64_t now;
#ifdef HAVE_ACCOUNTS
    md_accounts acc;
    md_keytpl acc_tpl;
    char *aval;
    size_t aval_cap;
    uint64_t acct_msgs;
#endif
} bench;

static void apply(bench *b, const md_tick *t)
{
#ifdef HAVE_ACCOUNTS
    if (md_tick_is_account(t->type)) {
        md_accounts_apply(&b->acc, md_tick_acct(t), 1);
        b->acct_msgs++;
        return;
    }
#endif
    md_state_apply_hashed(&b->st, t, t->sym_hash, b->now);
}

static void apply_cb(void *ctx, const md_tick *t) { apply(ctx, t); }

static void on_tick(void *ctx, const md_tick *in)
{
    bench *b = ctx;
#ifdef HAVE_ACCOUNTS
    if (md_tick_is_account(in->type)) {
        md_acct m = *md_tick_acct(in);
        m.t.src_hash = m.t.src_len ? md_sym_hash(m.t.source, m.t.src_len) : 1;
        m.t.sym_hash = md_sym_hash(m.account, m.acct_len);
        if (b->ring) {
            while (md_ring_push(b->ring, &m.t) != MD_RING_OK)
                md_ring_drain(b->ring, 64, apply_cb, b);
        } else {
            apply(b, &m.t);
        }
        return;
    }
#endif
    md_tick t = *in;
    t.origin_ns = b->now;
    t.src_hash = t.src_len ? md_sym_hash(t.source, t.src_len) : 1;
    /* As the worker does: one hash serves routing and the table. */
    t.sym_hash = md_sym_hash(t.symbol, t.sym_len);
    b->ticks++;
    if (b->ring) {
        while (md_ring_push(b->ring, &t) != MD_RING_OK)
            md_ring_drain(b->ring, 64, apply_cb, b);
    } else {
        apply(b, &t);
    }
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
#ifdef HAVE_ACCOUNTS
    /* As the batch writer does: every due value of every dirty account. */
    md_account *a;
    while ((a = md_accounts_peek(&b->acc))) {
        size_t n = 0;
        if (a->due & MD_AC_BIT(MD_AC_POSITIONS)) n += md_format_positions(a, b->aval, b->aval_cap);
        if (a->due & MD_AC_BIT(MD_AC_BALANCE)) n += md_format_balance(a, b->aval, b->aval_cap);
        int32_t i;
        while ((i = md_account_next_order(a)) >= 0) {
            if (a->ord[i].slot == MD_OSLOT_GONE)
                md_account_order_deleted(a, (uint32_t)i, ++a->ord[i].del_gen);
            else n += md_format_order(a, &a->ord[i], b->aval, b->aval_cap);
        }
        if (a->due & MD_AC_BIT(MD_AC_ORDERS)) n += md_format_orders(a, b->aval, b->aval_cap);
        char key[320];
        size_t klen = md_keytpl_format(&b->acc_tpl, a->name, a->name_len, key, sizeof key);
        if (b->out_cap - b->out_len < 2048) b->out_len = 0;
        b->out_len += md_resp_setex(b->out + b->out_len, b->out_cap - b->out_len, key, klen, 1,
                                    b->aval, n < 512 ? n : 512);
        a->due = 0;
        md_accounts_pop(&b->acc);
        b->writes++;
    }
#endif
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
        if (b->ring)
            while (md_ring_drain(b->ring, 64, apply_cb, b)) {}
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
    size_t nticks = 1000000, nsym = 10000, per_batch = 2000, per_dgram = 20, acct_every = 0;
    int jsonl = 0, use_ring = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ticks") && i + 1 < argc) nticks = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--symbols") && i + 1 < argc) nsym = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-batch") && i + 1 < argc) per_batch = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--per-datagram") && i + 1 < argc) per_dgram = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) jsonl = !strcmp(argv[++i], "jsonl");
        else if (!strcmp(argv[i], "--ring")) use_ring = 1;
#ifdef HAVE_ACCOUNTS
        else if (!strcmp(argv[i], "--account-every") && i + 1 < argc)
            acct_every = strtoull(argv[++i], NULL, 10);
#endif
        else {
            fprintf(stderr,
                    "usage: %s [--ticks N] [--symbols N] [--per-batch N] [--per-datagram N] "
                    "[--format bin1|jsonl] [--ring] [--account-every K]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!nticks || !nsym || !per_dgram) return 2;
    size_t cap = nticks * (jsonl ? 200 : 80) * (acct_every ? 3 : 1) + 4096;
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
#ifdef HAVE_ACCOUNTS
        if (acct_every && (i + 1) % acct_every == 0) {
            char acct[16], oid[24];
            uint64_t k = (i + 1) / acct_every;
            int an = (int)(rnd() % 100);
            snprintf(acct, sizeof acct, "ACC%03d", an);
            /* An account trades 8 symbols, as mdfeed's do: its positions
             * value stays the size a real account's has. */
            snprintf(sym, sizeof sym, "SYM%05zu", (size_t)(an * 8 + (int)(rnd() % 8)) % nsym);
            snprintf(oid, sizeof oid, "O%" PRIu64, k / 2); /* each order: working, then filled */
            int kind = (int)(k % 3);
            if (jsonl) {
                if (kind == 0)
                    len += (size_t)sprintf((char *)in + len,
                                           "{\"type\":\"position\",\"account\":\"%s\",\"symbol\":"
                                           "\"%s\",\"net_pos\":%d,\"avg_price\":%" PRId64 ".%02d,"
                                           "\"ts\":%" PRId64 ",\"source\":\"b\"}\n",
                                           acct, sym, (int)(rnd() % 5), px / 100, (int)(px % 100), ts);
                else if (kind == 1)
                    len += (size_t)sprintf((char *)in + len,
                                           "{\"type\":\"order\",\"account\":\"%s\",\"order_id\":"
                                           "\"%s\",\"symbol\":\"%s\",\"side\":\"buy\",\"qty\":1,"
                                           "\"price\":%" PRId64 ".%02d,\"status\":\"%s\",\"ts\":%"
                                           PRId64 ",\"source\":\"b\"}\n",
                                           acct, oid, sym, px / 100, (int)(px % 100),
                                           k % 2 ? "filled" : "working", ts);
                else
                    len += (size_t)sprintf((char *)in + len,
                                           "{\"type\":\"balance\",\"account\":\"%s\",\"cash\":%"
                                           PRId64 ".%02d,\"realized_pnl\":1.5,\"unrealized_pnl\":"
                                           "-2.25,\"ts\":%" PRId64 ",\"source\":\"b\"}\n",
                                           acct, px / 100, (int)(px % 100), ts);
            } else if (kind == 0) {
                len += mdcache_bin1_put_position(in + len, cap - len, acct, sym, "b", 0, 0, ts, 1,
                                                 mdcache_bin1_int((int64_t)(rnd() % 5)),
                                                 mdcache_bin1_make(px, -2));
            } else if (kind == 1) {
                len += mdcache_bin1_put_order(in + len, cap - len, acct, oid, sym, "b", 0, 0, ts, 1,
                                              MDCACHE_BIN1_SIDE_BUY,
                                              k % 2 ? MDCACHE_BIN1_STATUS_FILLED
                                                    : MDCACHE_BIN1_STATUS_WORKING,
                                              mdcache_bin1_int(1), mdcache_bin1_make(px, -2));
            } else {
                len += mdcache_bin1_put_balance(in + len, cap - len, acct, "b", 0, 0, ts, 1,
                                                mdcache_bin1_make(px, -2), mdcache_bin1_make(15, -1),
                                                mdcache_bin1_make(-225, -2));
            }
        }
#endif
        if ((i + 1) % per_dgram == 0 || i + 1 == nticks) ends[nchunks++] = len;
    }

    bench b = {0};
    if (md_state_init(&b.st, (uint32_t)nsym + 16) || md_keytpl_init(&b.tpl, "", "price:{symbol}:latest"))
        return 1;
    b.out_cap = 1 << 20;
    b.out = malloc(b.out_cap);
    b.now = 1;
    md_ring ring;
    if (use_ring) {
        if (md_ring_init(&ring, 1024)) return 1;
        b.ring = &ring;
    }
#ifdef HAVE_ACCOUNTS
    if (md_accounts_init(&b.acc, 128, 1000, 1000) ||
        md_keytpl_init_vars(&b.acc_tpl, "", "hft:x:{account}", "{account}", NULL))
        return 1;
    b.aval_cap = md_account_value_max(1000, 1000);
    b.aval = malloc(b.aval_cap);
#endif
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    md_bench_run(&b, in, ends, nchunks, jsonl, per_batch);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("format=%s%s ticks=%" PRIu64 " symbols=%zu keys=%u writes=%" PRIu64
           " coalescing=%.2f ticks/write wall=%.3fs (%.2f Mticks/s, not for comparison across runs)\n",
           jsonl ? "jsonl" : "bin1", use_ring ? " ring" : "", b.ticks, nsym, b.st.count, b.writes,
           b.writes ? (double)b.ticks / (double)b.writes : 0.0, secs, (double)b.ticks / secs / 1e6);
#ifdef HAVE_ACCOUNTS
    if (acct_every)
        printf("account messages=%" PRIu64 " accounts=%u\n", b.acct_msgs, b.acc.count);
    md_accounts_free(&b.acc);
    free(b.aval);
#endif
    if (use_ring) md_ring_free(&ring);
    md_state_free(&b.st);
    free(in);
    free(ends);
    free(b.out);
    return b.ticks == nticks ? 0 : 1;
}
