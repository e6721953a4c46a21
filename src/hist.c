/* md_hist: see include/md_hist.h. */
#include "md_hist.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void md_hist_reset(md_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t md_hist_index(uint64_t v)
{
    if (v < 2 * MD_HIST_SUB) return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);   /* >= SUB_BITS + 1 */
    unsigned shift = e - MD_HIST_SUB_BITS;              /* v >> shift in [SUB, 2*SUB) */
    return (size_t)shift * MD_HIST_SUB + (size_t)(v >> shift);
}

uint64_t md_hist_lower(size_t idx)
{
    if (idx < 2 * MD_HIST_SUB) return idx;
    unsigned shift = (unsigned)(idx / MD_HIST_SUB) - 1;
    uint64_t m = idx - (uint64_t)shift * MD_HIST_SUB;
    return m << shift;
}

uint64_t md_hist_upper(size_t idx)
{
    if (idx < 2 * MD_HIST_SUB) return idx;
    unsigned shift = (unsigned)(idx / MD_HIST_SUB) - 1;
    uint64_t m = idx - (uint64_t)shift * MD_HIST_SUB;
    /* The top bucket's edge would overflow: it ends at UINT64_MAX. */
    if (shift >= 64 - MD_HIST_SUB_BITS - 1 && m == 2 * MD_HIST_SUB - 1) return UINT64_MAX;
    return ((m + 1) << shift) - 1;
}

void md_hist_record(md_hist *h, uint64_t v)
{
    h->b[md_hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void md_hist_record_n(md_hist *h, uint64_t v, uint64_t n)
{
    if (!n) return;
    h->b[md_hist_index(v)] += n;
    h->count += n;
    h->sum += v * n;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

void md_hist_write_json(FILE *f, const md_hist *h)
{
    fprintf(f, "{\"count\":%" PRIu64 ",\"sum\":%" PRIu64 ",\"min\":%" PRIu64 ",\"max\":%" PRIu64
               ",\"buckets\":[",
            h->count, h->sum, h->count ? h->min : 0, h->max);
    const char *sep = "";
    for (size_t i = 0; i < MD_HIST_BUCKETS; i++) {
        if (!h->b[i]) continue;
        fprintf(f, "%s[%zu,%" PRIu64 "]", sep, i, h->b[i]);
        sep = ",";
    }
    fputs("]}", f);
}

void md_hist_merge(md_hist *into, const md_hist *from)
{
    for (size_t i = 0; i < MD_HIST_BUCKETS; i++) into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->count && from->min < into->min) into->min = from->min;
    if (from->max > into->max) into->max = from->max;
}

uint64_t md_hist_quantile(const md_hist *h, double q)
{
    if (!h->count) return 0;
    if (q <= 0) return h->min;
    if (q > 1) q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < MD_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t u = md_hist_upper(i);
            return u > h->max ? h->max : u;
        }
    }
    return h->max;
}

void md_hist_publish(md_hist_pub *p, const md_hist *h, const uint64_t *bounds, size_t n)
{
    uint64_t run = 0;
    size_t j = 0;
    for (size_t i = 0; i < MD_HIST_BUCKETS; i++) {
        if (!h->b[i]) continue;
        uint64_t up = md_hist_upper(i);
        while (j < n && up > bounds[j])
            atomic_store_explicit(&p->le[j++], run, memory_order_relaxed);
        run += h->b[i];
    }
    while (j < n) atomic_store_explicit(&p->le[j++], run, memory_order_relaxed);
    atomic_store_explicit(&p->sum, h->sum, memory_order_relaxed);
    /* Release after the buckets: a reader that acquires count sees buckets
     * at least as new. */
    atomic_store_explicit(&p->count, run, memory_order_release);
}

void md_hist_pub_read(const md_hist_pub *p, md_hist_snap *out, size_t n)
{
    memset(out, 0, sizeof *out);
    out->count = atomic_load_explicit(&p->count, memory_order_acquire);
    out->sum = atomic_load_explicit(&p->sum, memory_order_relaxed);
    for (size_t j = 0; j < n && j < MD_HIST_PUB_MAX; j++) {
        uint64_t v = atomic_load_explicit(&p->le[j], memory_order_relaxed);
        /* A bucket published after count was read may be ahead of it. */
        out->le[j] = v < out->count ? v : out->count;
    }
    for (size_t j = 1; j < n && j < MD_HIST_PUB_MAX; j++)
        if (out->le[j] < out->le[j - 1]) out->le[j] = out->le[j - 1];
}
