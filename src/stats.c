/* md_stats: see include/md_stats.h. */
#include "md_stats.h"

#include <stdio.h>

const char *const md_wclass_name[MD_W_COUNT] = {
    "price", "price_fallback", "price_push", "positions", "order",
    "order_delete", "order_list", "balances", "accounts",
};

const char *const md_tick_type_name[MD_TICK_TYPE_COUNT] = {
    "none", "quote", "trade", "heartbeat", "reset", "position", "order", "balance", "account",
};

void md_stats_publish(md_stats_mirror *m, const md_stats *s)
{
#define PUB(n, ...) atomic_store_explicit(&m->n, s->n, memory_order_relaxed);
    MD_STATS_FIELDS(PUB)
#undef PUB
    for (int i = 0; i < MD_DERR_COUNT; i++)
        atomic_store_explicit(&m->err[i], s->err[i], memory_order_relaxed);
    for (int i = 0; i < MD_W_COUNT; i++)
        atomic_store_explicit(&m->written[i], s->written[i], memory_order_relaxed);
    for (int f = 0; f < MD_STATS_FEEDS; f++)
        for (int t = 0; t < MD_TICK_TYPE_COUNT; t++)
            atomic_store_explicit(&m->feed_in[f][t], s->feed_in[f][t], memory_order_relaxed);
}

void md_stats_collect(md_stats *sum, const md_stats_mirror *m)
{
#define COL(n, ...) sum->n += atomic_load_explicit(&m->n, memory_order_relaxed);
    MD_STATS_FIELDS(COL)
#undef COL
    for (int i = 0; i < MD_DERR_COUNT; i++)
        sum->err[i] += atomic_load_explicit(&m->err[i], memory_order_relaxed);
    for (int i = 0; i < MD_W_COUNT; i++)
        sum->written[i] += atomic_load_explicit(&m->written[i], memory_order_relaxed);
    for (int f = 0; f < MD_STATS_FEEDS; f++)
        for (int t = 0; t < MD_TICK_TYPE_COUNT; t++)
            sum->feed_in[f][t] += atomic_load_explicit(&m->feed_in[f][t], memory_order_relaxed);
}

int md_stats_format(const md_stats *s, int with_errors, char *buf, size_t cap)
{
    size_t off = 0;
#define FMT(n, ...)                                                                                   \
    if (off < cap) off += (size_t)snprintf(buf + off, cap - off, "%s%s=%llu", off ? " " : "", #n,  \
                                           (unsigned long long)s->n);
    MD_STATS_FIELDS(FMT)
#undef FMT
    if (with_errors)
        for (int i = 0; i < MD_DERR_COUNT; i++)
            if (off < cap)
                off += (size_t)snprintf(buf + off, cap - off, " err_%s=%llu", md_decode_err_name[i],
                                        (unsigned long long)s->err[i]);
    return (int)(off < cap ? off : cap - 1);
}
