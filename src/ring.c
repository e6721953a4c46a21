/*
 * md_ring: bounded lock-free SPSC ring of ticks (see include/md_ring.h).
 *
 * Indexes are free-running 64-bit counters (never wrapped, masked only to
 * address a slot), so "full" is tail - head == capacity and "empty" is
 * tail == head with no wasted slot and no ABA: 2^64 ticks is centuries.
 *
 * Ordering contract, in Aeron's vocabulary:
 *  - the producer copies the tick into its slot, then publishes tail with a
 *    release store; the consumer reads tail with an acquire load before it
 *    reads the slot, so it never sees a half-written tick;
 *  - the consumer hands slots to the callback, then publishes head with a
 *    release store; the producer reads head with an acquire load before it
 *    overwrites a slot, so a slot is never reused while still being read.
 * Each side reads its own index relaxed: nobody else writes it.
 */
#include "md_ring.h"

#include <stdlib.h>
#include <string.h>

/* The handful of named accessors; no other atomics in this file. */
static inline uint64_t md_ring_get_own(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static inline uint64_t md_ring_get_acquire(const _Atomic uint64_t *p)
{
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}

static inline void md_ring_put_ordered(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}

int md_ring_init(md_ring *r, uint32_t capacity)
{
    /* 4: a two-slot record plus the pad slot that can precede it must fit. */
    uint64_t cap = 4;

    /* Cap at 2^31 slots: far beyond any sane ring and keeps the rounding
     * loop and the allocation size obviously in range. */
    if (capacity > (1u << 31))
        return -1;
    while (cap < capacity)
        cap <<= 1;
    r->slots = calloc((size_t)cap, sizeof(md_tick));
    if (!r->slots)
        return -1;
    r->mask = cap - 1;
    r->head_cache = 0;
    r->tail_cache = 0;
    atomic_init(&r->tail, 0);
    atomic_init(&r->head, 0);
    return 0;
}

void md_ring_free(md_ring *r)
{
    free(r->slots);
    r->slots = NULL;
    r->mask = 0;
}

md_ring_result md_ring_push(md_ring *r, const md_tick *t)
{
    uint64_t tail = md_ring_get_own(&r->tail);
    uint64_t cap = r->mask + 1;
    if (__builtin_expect(!md_tick_is_account(t->type), 1)) {
        if (tail - r->head_cache >= cap) {
            /* Looks full from the cached view: pay for the shared read once. */
            r->head_cache = md_ring_get_acquire(&r->head);
            if (tail - r->head_cache >= cap)
                return MD_RING_FULL;
        }
        r->slots[tail & r->mask] = *t;
        md_ring_put_ordered(&r->tail, tail + 1);
        return MD_RING_OK;
    }
    /* An account record takes two slots and never wraps, so the callback
     * always sees it contiguous: one that would start in the last slot is
     * preceded by a pad slot (type NONE) that the consumer steps over. */
    uint64_t pad = (tail & r->mask) == r->mask ? 1 : 0;
    if (tail + pad + 2 - r->head_cache > cap) {
        r->head_cache = md_ring_get_acquire(&r->head);
        if (tail + pad + 2 - r->head_cache > cap)
            return MD_RING_FULL;
    }
    if (pad) {
        r->slots[tail & r->mask].type = MD_TICK_NONE;
        tail++;
    }
    memcpy(&r->slots[tail & r->mask], t, sizeof(md_acct));
    md_ring_put_ordered(&r->tail, tail + 2);
    return MD_RING_OK;
}

size_t md_ring_drain(md_ring *r, size_t limit, void (*fn)(void *ctx, const md_tick *t),
                     void *ctx)
{
    uint64_t head = md_ring_get_own(&r->head);
    uint64_t avail = r->tail_cache - head;

    if (avail == 0) {
        r->tail_cache = md_ring_get_acquire(&r->tail);
        avail = r->tail_cache - head;
        if (avail == 0)
            return 0;
    }
    /* The callback reads each record in place; the slots are released in
     * one store after the batch, so the producer sees one head update per
     * drain rather than one per tick. The producer publishes whole records
     * only, so avail never ends inside one. */
    /* At most `limit` slots, so at most `limit` messages; a two-slot
     * record that starts in the last of them is still whole in avail. */
    uint64_t end = avail < limit ? avail : limit, i = 0;
    size_t handled = 0;
    while (i < end) {
        const md_tick *t = &r->slots[(head + i) & r->mask];
        unsigned type = t->type; /* read before fn: an opaque call forces a reload */
        if (__builtin_expect(type != MD_TICK_NONE, 1)) {
            fn(ctx, t);
            handled++;
        }
        i += 1u + (unsigned)md_tick_is_account(type);
    }
    if (i)
        md_ring_put_ordered(&r->head, head + i);
    return handled;
}

size_t md_ring_size(const md_ring *r)
{
    /* head first: tail only grows, so tail >= the head we read. */
    uint64_t head = md_ring_get_acquire(&r->head);
    uint64_t tail = md_ring_get_acquire(&r->tail);

    return (size_t)(tail - head);
}
