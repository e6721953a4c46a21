/*
 * md_state: per-worker coalescer and source liveness (see include/md_state.h).
 *
 * Symbols live in a dense array filled in insertion order, found through a
 * separate open-addressing index (linear probing, load factor at most 1/2:
 * slots >= 2 * max_keys). Both are allocated once at start-up, but only the
 * index is spread over by the hash: the dense array is touched front to
 * back as symbols arrive, so its untouched tail (calloc'd, hence never
 * written) stays unmapped and resident memory is about symbols seen *
 * sizeof(md_sym) plus 8 bytes per index slot, not max_keys * sizeof(md_sym).
 * Never moving an md_sym is what lets callers hold md_sym pointers.
 *
 * An index slot is one uint64_t: the hash's high 32 bits (the low bits
 * pick the slot, so the high ones are the independent part) over dense
 * index + 1. A probe compares that tag in the slot it already loaded and
 * only reads the md_sym, a second cache line, on a tag match: almost only
 * for the symbol being looked for. Keys are never deleted (a symbol lives
 * as long as the process; max_keys is the memory bound), so there are no
 * tombstones and a probe always ends at an empty slot because at least
 * half the slots stay empty.
 *
 * Everything that walks all symbols (sweep, mark all dirty, reset "*")
 * walks syms[0, count): no empty slots to skip, and it runs in sequential
 * memory.
 *
 * What counts as a change: a tick that makes the JSON value differ (a
 * stored decimal differs in mantissa or exponent, or the printed
 * millisecond timestamp moves). An accepted tick that changes nothing the
 * reader could see (a quote whose only news is sizes, which are not
 * stored) is counted as applied but not queued: the key's TTL is kept up
 * by md_state_sweep while its source is alive, so re-writing an identical
 * value would only cost Redis bandwidth.
 *
 * Per-symbol sequence tracking keeps the last seq of up to MD_SEQ_SLOTS
 * sources, most recently accepted first. A source not in the list takes
 * the last slot (empty, or the least recently accepted source, which is
 * then forgotten: a late replay from a source evicted this way would be
 * accepted again; feeds carrying more than MD_SEQ_SLOTS live sources per
 * symbol are expected to be rare, and raising the constant is the fix).
 */
#include "md_state.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Source hashes are stored in tables where 0 means "empty". */
static inline uint64_t md_src_key(uint64_t h) { return h ? h : 1; }

uint64_t md_sym_hash(const char *sym, size_t len)
{
    uint64_t h = XXH3_64bits(sym, len);

    return h ? h : 1;
}

/* Smallest power of two >= 2 * n, at least 2; 0 if it would not fit 32 bits
 * (which also keeps a dense index + 1 within the low 32 bits of a slot). */
static uint32_t md_table_cap(uint32_t n)
{
    uint64_t cap = 2;

    while (cap < 2 * (uint64_t)n)
        cap <<= 1;
    return cap > (1u << 31) ? 0 : (uint32_t)cap;
}

int md_state_init(md_state *st, uint32_t max_keys)
{
    uint32_t cap;

    memset(st, 0, sizeof(*st));
    if (max_keys == 0)
        return -1;
    cap = md_table_cap(max_keys);
    if (cap == 0)
        return -1;
    st->slots = calloc(cap, sizeof(*st->slots));
    if (!st->slots)
        goto err;
    st->syms = calloc(max_keys, sizeof(*st->syms));
    if (!st->syms)
        goto err;
    st->dirtyq = calloc(max_keys, sizeof(uint32_t));
    if (!st->dirtyq)
        goto err;
    st->mask = cap - 1;
    st->max_keys = max_keys;
    return 0;
err:
    md_state_free(st);
    return -1;
}

void md_state_free(md_state *st)
{
    free(st->slots);
    free(st->syms);
    free(st->dirtyq);
    memset(st, 0, sizeof(*st));
}

#define MD_SLOT_TAG_MASK 0xffffffff00000000ull

/* Returns the index slot holding sym, or the empty slot where it would go. */
static uint32_t md_state_probe(const md_state *st, uint64_t h, const char *sym, size_t len)
{
    uint32_t i = (uint32_t)h & st->mask;

    for (;;) {
        uint64_t e = st->slots[i];
        if (e == 0)
            return i;
        if (((e ^ h) & MD_SLOT_TAG_MASK) == 0) {
            const md_sym *s = &st->syms[(uint32_t)e - 1];
            if (s->hash == h && s->sym_len == len && memcmp(s->symbol, sym, len) == 0)
                return i;
        }
        i = (i + 1) & st->mask;
    }
}

/* The symbol an index slot refers to, NULL for an empty slot. */
static inline md_sym *md_state_at(const md_state *st, uint32_t slot)
{
    uint64_t e = st->slots[slot];

    return e ? &st->syms[(uint32_t)e - 1] : NULL;
}

md_sym *md_state_find(md_state *st, const char *sym, size_t len)
{
    uint64_t h;

    if (len == 0 || len > MD_SYMBOL_MAX)
        return NULL;
    h = md_sym_hash(sym, len);
    return md_state_at(st, md_state_probe(st, h, sym, len));
}

/* Queues s; first_ns is the origin of the tick that caused it (0 = no
 * tick: refresh/reconnect), and the oldest such origin is kept. */
static void md_state_queue(md_state *st, md_sym *s, int64_t first_ns)
{
    uint32_t at;

    if (s->dirty) {
        if (first_ns && (!s->first_dirty_ns || first_ns < s->first_dirty_ns))
            s->first_dirty_ns = first_ns;
        return;
    }
    s->dirty = 1;
    s->first_dirty_ns = first_ns;
    /* A symbol is queued at most once and there are at most max_keys
     * symbols, so dq_len never exceeds max_keys. */
    at = st->dq_head + st->dq_len;
    if (at >= st->max_keys)
        at -= st->max_keys;
    st->dirtyq[at] = (uint32_t)(s - st->syms);
    st->dq_len++;
}

void md_state_mark_dirty(md_state *st, md_sym *s) { md_state_queue(st, s, 0); }

void md_state_requeue(md_state *st, md_sym *s, int64_t first_ns, uint32_t ticks)
{
    md_state_queue(st, s, first_ns);
    s->dirty_ticks += ticks;
}

md_sym *md_state_pop_dirty(md_state *st)
{
    md_sym *s;

    if (st->dq_len == 0)
        return NULL;
    s = &st->syms[st->dirtyq[st->dq_head]];
    if (++st->dq_head == st->max_keys)
        st->dq_head = 0;
    st->dq_len--;
    s->dirty = 0;
    return s;
}

void md_state_mark_all_dirty(md_state *st)
{
    for (uint32_t i = 0; i < st->count; i++)
        md_state_queue(st, &st->syms[i], 0);
}

uint32_t md_state_mark_live_dirty(md_state *st, const md_sources *src, int64_t now,
                                  int64_t source_timeout_ns)
{
    return md_state_mark_live_dirty_where(st, src, now, source_timeout_ns, NULL, NULL);
}

uint32_t md_state_mark_live_dirty_where(md_state *st, const md_sources *src, int64_t now,
                                        int64_t source_timeout_ns,
                                        bool (*where)(const md_sym *, void *), void *ctx)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->count; i++) {
        md_sym *s = &st->syms[i];
        if (s->dirty || (where && !where(s, ctx))) continue;
        if (s->written_ns == 0 || md_sources_alive(src, s->src_hash, now, source_timeout_ns)) {
            md_state_queue(st, s, 0);
            n++;
        }
    }
    return n;
}

static inline bool md_dec_same(md_dec a, md_dec b) { return a.mant == b.mant && a.exp == b.exp; }

/* Floor division so pre-1970 times would still print consistently. */
static inline int64_t md_ts_ms(int64_t ns)
{
    int64_t q = ns / 1000000;

    return (ns % 1000000 < 0) ? q - 1 : q;
}

static void md_state_changed(md_state *st, md_sym *s, const md_tick *t)
{
    s->last_good_due = 1;
    if (s->dirty_ticks < UINT32_MAX) s->dirty_ticks++;
    md_state_queue(st, s, t->origin_ns);
}

static void md_state_reset_sym(md_state *st, md_sym *s, const md_tick *t)
{
    /* After a session reset the sum of zero trades is known: exactly 0. */
    s->volume.mant = 0;
    s->volume.exp = 0;
    s->high = md_dec_absent();
    s->low = md_dec_absent();
    memset(s->seen, 0, sizeof(s->seen));
    md_state_changed(st, s, t);
}

static md_apply_result md_state_reset(md_state *st, const md_tick *t)
{
    st->stats.resets++;
    if (t->sym_len == 1 && t->symbol[0] == '*') {
        for (uint32_t i = 0; i < st->count; i++)
            md_state_reset_sym(st, &st->syms[i], t);
    } else {
        md_sym *s = md_state_find(st, t->symbol, t->sym_len);
        /* Unknown symbol: nothing to reset, and no reason to take a key. */
        if (s)
            md_state_reset_sym(st, s, t);
    }
    return MD_APPLY_OK;
}

/* Index of src in seen[], or -1. */
static int md_seen_find(const md_sym *s, uint64_t src)
{
    for (int i = 0; i < MD_SEQ_SLOTS; i++)
        if (s->seen[i].src == src)
            return i;
    return -1;
}

/* Moves (or inserts) src to the front: seen[] stays in recency order and
 * the last slot is always the one to give up. */
static void md_seen_record(md_sym *s, int at, uint64_t src, uint64_t seq)
{
    if (at < 0)
        at = MD_SEQ_SLOTS - 1;
    memmove(&s->seen[1], &s->seen[0], (size_t)at * sizeof(s->seen[0]));
    s->seen[0].src = src;
    s->seen[0].seq = seq;
}

md_apply_result md_state_apply(md_state *st, const md_tick *t, int64_t now)
{
    uint64_t h = (t->type == MD_TICK_QUOTE || t->type == MD_TICK_TRADE) && t->sym_len
                     ? md_sym_hash(t->symbol, t->sym_len)
                     : 0;
    return md_state_apply_hashed(st, t, h, now);
}

md_apply_result md_state_apply_hashed(md_state *st, const md_tick *t, uint64_t h, int64_t now)
{
    md_sym *s;
    uint64_t src;
    uint32_t slot;
    int seen_at = -1;
    bool changed = false;
    md_dec price = t->v[MD_T_PRICE], size = t->v[MD_T_SIZE];
    md_dec vol;

    (void)now; /* time of arrival is t->origin_ns; kept for API symmetry */
    if (t->type == MD_TICK_RESET)
        return md_state_reset(st, t);
    if (t->type != MD_TICK_QUOTE && t->type != MD_TICK_TRADE)
        return MD_APPLY_IGNORED;
    if (t->sym_len == 0 || t->sym_len > MD_SYMBOL_MAX)
        return MD_APPLY_IGNORED;

    slot = md_state_probe(st, h, t->symbol, t->sym_len);
    s = md_state_at(st, slot);
    src = md_src_key(t->src_hash);

    /* Everything that can refuse the tick is decided before anything is
     * written, so a refused tick leaves no trace. */
    if (s && (t->flags & MD_TICK_F_SEQ)) {
        seen_at = md_seen_find(s, src);
        if (seen_at >= 0 && t->seq <= s->seen[seen_at].seq) {
            st->stats.duplicate++;
            return MD_APPLY_DUPLICATE;
        }
    }
    vol = s ? s->volume : md_dec_absent();
    if (t->type == MD_TICK_TRADE && md_dec_present(size)) {
        if (!md_dec_present(vol)) {
            vol = size;
        } else if (!md_dec_add(vol, size, &vol)) {
            st->stats.overflow++;
            return MD_APPLY_OVERFLOW;
        }
    }
    if (!s) {
        if (st->count == st->max_keys) {
            st->stats.full++;
            return MD_APPLY_FULL;
        }
        s = &st->syms[st->count];
        st->slots[slot] = (h & MD_SLOT_TAG_MASK) | (st->count + 1);
        memset(s, 0, sizeof(*s));
        s->hash = h;
        memcpy(s->symbol, t->symbol, t->sym_len);
        s->symbol[t->sym_len] = '\0';
        s->sym_len = t->sym_len;
        s->last = s->bid = s->ask = md_dec_absent();
        s->volume = s->high = s->low = md_dec_absent();
        st->count++;
        changed = true; /* a new key always has something to say */
    }

    if (t->flags & MD_TICK_F_SEQ)
        md_seen_record(s, seen_at, src, t->seq);

    if (t->type == MD_TICK_QUOTE) {
        md_dec bid = t->v[MD_Q_BID], ask = t->v[MD_Q_ASK];
        if (md_dec_present(bid) && !md_dec_same(bid, s->bid)) {
            s->bid = bid;
            changed = true;
        }
        if (md_dec_present(ask) && !md_dec_same(ask, s->ask)) {
            s->ask = ask;
            changed = true;
        }
    } else {
        if (md_dec_present(price)) {
            if (!md_dec_same(price, s->last)) {
                s->last = price;
                changed = true;
            }
            if (!md_dec_present(s->high) || md_dec_cmp(price, s->high) > 0) {
                s->high = price;
                changed = true;
            }
            if (!md_dec_present(s->low) || md_dec_cmp(price, s->low) < 0) {
                s->low = price;
                changed = true;
            }
        }
        if (!md_dec_same(vol, s->volume)) {
            s->volume = vol;
            changed = true;
        }
    }

    if (t->flags & MD_TICK_F_TS) {
        if (!s->has_ts || t->ts_ns > s->ts_ns) {
            if (!s->has_ts || md_ts_ms(t->ts_ns) != md_ts_ms(s->ts_ns))
                changed = true;
            s->ts_ns = t->ts_ns;
            s->has_ts = 1;
        }
    }
    s->src_hash = t->src_hash;
    st->stats.applied++;
    if (changed)
        md_state_changed(st, s, t);
    return MD_APPLY_OK;
}

uint32_t md_state_sweep(md_state *st, int64_t now, uint32_t budget, int64_t refresh_after_ns,
                        const md_sources *src, int64_t source_timeout_ns,
                        int64_t last_good_interval_ns)
{
    uint32_t queued = 0;
    uint32_t pos = st->sweep_pos;

    /* count only grows, so a cursor below the old count stays valid; a lap
     * is exactly count symbols, each visited once. */
    if (budget > st->count)
        budget = st->count;
    for (uint32_t n = 0; n < budget; n++) {
        md_sym *s = &st->syms[pos];
        bool want = false;

        if (++pos == st->count)
            pos = 0;
        /* Queued already, here or (cluster) in a node's queue. */
        if (s->dirty || (s->routed & MD_ROUTED_LATEST))
            continue;
        if (s->written_ns == 0) {
            /* Never written and not queued (e.g. popped by a writer that
             * could not send): it has never reached Redis, so it must. */
            want = true;
        } else if (now - s->written_ns >= refresh_after_ns &&
                   (!src || md_sources_alive(src, s->src_hash, now, source_timeout_ns))) {
            /* A quiet source's keys are left to expire: that is how
             * readers learn the feed stopped. */
            want = true;
        }
        if (!want && last_good_interval_ns > 0 && s->last_good_due &&
            (s->last_good_ns == 0 || now - s->last_good_ns >= last_good_interval_ns))
            want = true;
        if (want) {
            md_state_queue(st, s, 0);
            queued++;
        }
    }
    st->sweep_pos = pos;
    st->stats.refreshes += queued;
    return queued;
}

/* ---- source liveness ---------------------------------------------------- */

int md_sources_init(md_sources *s, uint32_t max_sources)
{
    uint32_t cap;

    memset(s, 0, sizeof(*s));
    if (max_sources == 0)
        return -1;
    cap = md_table_cap(max_sources);
    if (cap == 0)
        return -1;
    s->tab = calloc(cap, sizeof(*s->tab));
    if (!s->tab)
        return -1;
    s->mask = cap - 1;
    s->max = max_sources;
    return 0;
}

void md_sources_free(md_sources *s)
{
    free(s->tab);
    memset(s, 0, sizeof(*s));
}

static struct md_source *md_sources_slot(const md_sources *s, uint64_t key)
{
    uint32_t i = (uint32_t)key & s->mask;

    while (s->tab[i].hash != 0 && s->tab[i].hash != key)
        i = (i + 1) & s->mask;
    return &s->tab[i];
}

bool md_sources_touch(md_sources *s, uint64_t hash, int64_t now)
{
    uint64_t key = md_src_key(hash);
    struct md_source *e = md_sources_slot(s, key);

    if (e->hash == 0) {
        if (s->count == s->max)
            return false;
        e->hash = key;
        e->last_ns = now;
        s->count++;
        return true;
    }
    /* Keep the newest time if callers' clocks interleave. */
    if (now > e->last_ns)
        e->last_ns = now;
    return true;
}

bool md_sources_alive(const md_sources *s, uint64_t hash, int64_t now, int64_t timeout_ns)
{
    const struct md_source *e = md_sources_slot(s, md_src_key(hash));

    return e->hash != 0 && now - e->last_ns < timeout_ns;
}

uint32_t md_sources_live(const md_sources *s, int64_t now, int64_t timeout_ns)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i <= s->mask; i++)
        if (s->tab[i].hash != 0 && now - s->tab[i].last_ns < timeout_ns)
            n++;
    return n;
}
