/*
 * md_state: a worker's coalescer. Per-symbol state in a dense array
 * indexed by an open-addressing hash, owned by exactly one worker thread
 * (no locks), with a hard capacity fixed at start-up: memory in use grows
 * with the symbols seen, up to max_keys, never with the tick rate; beyond
 * max_keys new symbols are refused and counted.
 *
 * Applying a tick updates the symbol's latest values (latest wins),
 * accumulates session aggregates (Volume, High, Low), drops duplicates and
 * older ticks (seq not above the last seen from the same source), and puts
 * the symbol on the dirty queue once, however many ticks arrive before the
 * batch writer takes it.
 *
 * md_sources tracks liveness: when each source (the `source` field, or the
 * feed connection when there is none) was last heard from, data or
 * heartbeat.
 */
#ifndef MD_STATE_H
#define MD_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "md_decimal.h"
#include "md_tick.h"

#define MD_SEQ_SLOTS 4 /* distinct sources whose seq is tracked per symbol */

enum { MD_ROUTED_LATEST = 1, MD_ROUTED_GOOD = 2 };

typedef struct md_sym {
    uint64_t hash;      /* md_sym_hash(symbol), never 0 */
    char symbol[MD_SYMBOL_MAX + 1];
    uint8_t sym_len;
    uint8_t dirty;          /* on the dirty queue */
    uint8_t last_good_due;  /* value changed since last_good was written */
    uint8_t has_ts;
    uint8_t routed;         /* cluster: MD_ROUTED_* writes waiting in a node's queue */
    uint16_t slot1;         /* cluster: 1 + slot of the price key, 0 unknown (fits the padding
                             * before `last`: the price path's layout is unchanged) */
    md_dec last, bid, ask;  /* absent until known */
    md_dec volume, high, low;
    int64_t ts_ns;          /* newest exchange time seen */
    uint64_t src_hash;      /* source of the newest accepted data tick */
    int64_t written_ns;     /* CLOCK_MONOTONIC when latest was last queued to Redis; 0 never */
    int64_t last_good_ns;   /* when last_good was last queued; 0 never */
    int64_t first_dirty_ns; /* origin_ns of the oldest tick not yet written (latency) */
    uint32_t dirty_ticks;   /* ticks coalesced since the last write was queued */
    struct { uint64_t src; uint64_t seq; } seen[MD_SEQ_SLOTS];
} md_sym;

typedef enum md_apply_result {
    MD_APPLY_OK = 0,
    MD_APPLY_DUPLICATE, /* seq not newer than already seen from that source */
    MD_APPLY_FULL,      /* new symbol, table at max_keys */
    MD_APPLY_OVERFLOW,  /* aggregate would overflow int64 mantissa */
    MD_APPLY_IGNORED,   /* type the coalescer does not handle */
    MD_APPLY_BAD_NAME,  /* account name unusable in the order keys (md_account.h) */
} md_apply_result;

typedef struct md_state_stats {
    uint64_t applied, duplicate, full, overflow, resets;
    uint64_t refreshes; /* keys re-queued by md_state_sweep */
} md_state_stats;

typedef struct md_state {
    /* Hash index, power of two >= 2 * max_keys slots: 0 = empty, else the
     * hash's high 32 bits over (dense index + 1) in the low 32 bits. */
    uint64_t *slots;
    uint32_t mask;      /* index slots - 1 */
    /* Symbols in insertion order, max_keys entries allocated once and only
     * touched as they fill, so resident memory follows symbols seen; an
     * md_sym never moves for the life of the state. */
    md_sym *syms;
    uint32_t max_keys;
    uint32_t count;     /* syms[0, count) in use */
    uint32_t *dirtyq;   /* FIFO of indexes into syms, max_keys entries */
    uint32_t dq_head, dq_len;
    uint32_t sweep_pos; /* sweep cursor into syms, < count once any exist */
    md_state_stats stats;
} md_state;

int md_state_init(md_state *st, uint32_t max_keys);
void md_state_free(md_state *st);

/* Stable symbol hash used both for sharding and for the table (xxh3). Never 0. */
uint64_t md_sym_hash(const char *sym, size_t len);

/* Applies a quote, trade or reset (heartbeats are for md_sources). `now`
 * is CLOCK_MONOTONIC ns. Reset with symbol "*" resets every symbol. */
md_apply_result md_state_apply(md_state *st, const md_tick *t, int64_t now);

/* The same, for a caller that already holds md_sym_hash(t->symbol) (the
 * worker hashed it to pick the owner): saves hashing it twice per tick. */
md_apply_result md_state_apply_hashed(md_state *st, const md_tick *t, uint64_t sym_hash,
                                      int64_t now);

md_sym *md_state_find(md_state *st, const char *sym, size_t len);

/* Queues a symbol for writing unless already queued. */
void md_state_mark_dirty(md_state *st, md_sym *s);

/* Puts back a symbol whose write failed: queued again (its current value
 * is what will be written), keeping the origin of its oldest unwritten
 * tick and the count of ticks the lost write carried. */
void md_state_requeue(md_state *st, md_sym *s, int64_t first_ns, uint32_t ticks);

/* Pops the oldest dirty symbol (clearing its dirty mark), or NULL. */
md_sym *md_state_pop_dirty(md_state *st);

/* Marks every symbol dirty. */
void md_state_mark_all_dirty(md_state *st);

typedef struct md_sources md_sources;

/* After a reconnect: Redis may have lost anything, so every key whose
 * source is still alive (or that was never written) is queued again. Keys
 * of quiet sources are not: resurrecting them would show readers a stale
 * price with a fresh TTL. Returns the number queued. */
uint32_t md_state_mark_live_dirty(md_state *st, const md_sources *src, int64_t now,
                                  int64_t source_timeout_ns);
/* The same for the symbols `where` accepts (a cluster node's keys). */
uint32_t md_state_mark_live_dirty_where(md_state *st, const md_sources *src, int64_t now,
                                        int64_t source_timeout_ns,
                                        bool (*where)(const md_sym *, void *), void *ctx);

/* Visits at most `budget` symbols (in insertion order, wrapping) from the
 * sweep cursor and re-queues:
 *  - symbols whose latest was written >= refresh_after_ns ago while their
 *    source is still alive (so live keys never expire),
 *  - symbols whose last_good is due and last written >= last_good_interval_ns
 *    ago (last_good_interval_ns = 0 disables).
 * Returns the number queued. */
uint32_t md_state_sweep(md_state *st, int64_t now, uint32_t budget, int64_t refresh_after_ns,
                        const md_sources *src, int64_t source_timeout_ns,
                        int64_t last_good_interval_ns);

/* Source liveness table, bounded. */
struct md_sources {
    struct md_source { uint64_t hash; int64_t last_ns; } *tab;
    uint32_t mask, count, max;
};
int md_sources_init(md_sources *s, uint32_t max_sources);
void md_sources_free(md_sources *s);
/* Records that the source was heard from at `now`. False if the table is full. */
bool md_sources_touch(md_sources *s, uint64_t hash, int64_t now);
/* True if heard from within timeout_ns before now. */
bool md_sources_alive(const md_sources *s, uint64_t hash, int64_t now, int64_t timeout_ns);
/* Number of sources alive at now. */
uint32_t md_sources_live(const md_sources *s, int64_t now, int64_t timeout_ns);

#endif
