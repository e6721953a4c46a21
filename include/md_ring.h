/*
 * md_ring: bounded lock-free single-producer/single-consumer ring of ticks.
 *
 * The only way ticks cross between worker threads. Modelled on Aeron's
 * spsc_rb: each side owns one index on its own cache line, and each side
 * keeps a private copy of the other's index and re-reads the shared one
 * only when the copy says the ring looks full (producer) or empty
 * (consumer): one cross-core cache miss per wrap, not per tick.
 *
 * "Full" is reported, never hidden: the caller decides whether to drain its
 * own inbound rings and retry, or drop and count.
 *
 * A slot holds one md_tick; an account message (md_acct, md_tick_is_account)
 * takes two consecutive slots, so price ticks do not pay for the longer
 * record. Capacity is counted in slots.
 */
#ifndef MD_RING_H
#define MD_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "md_tick.h"

typedef enum md_ring_result {
    MD_RING_OK = 0,
    MD_RING_FULL = 1,
} md_ring_result;

typedef struct md_ring {
    alignas(64) _Atomic uint64_t tail; /* written by producer */
    uint64_t head_cache;               /* producer's view of head */
    alignas(64) _Atomic uint64_t head; /* written by consumer */
    uint64_t tail_cache;               /* consumer's view of tail */
    alignas(64) uint64_t mask;
    md_tick *slots;
} md_ring;

/* capacity is rounded up to a power of two (minimum 2). 0 on success. */
int md_ring_init(md_ring *r, uint32_t capacity);
void md_ring_free(md_ring *r);

/* Producer side. For account types t must be the head of an md_acct. */
md_ring_result md_ring_push(md_ring *r, const md_tick *t);

/* Consumer side: hands up to `limit` messages to fn in order (an account
 * message as the head of its md_acct), then releases their slots. Returns
 * how many were handled. */
size_t md_ring_drain(md_ring *r, size_t limit, void (*fn)(void *ctx, const md_tick *t),
                     void *ctx);

/* Approximate occupancy, for either side (metrics, tests). */
size_t md_ring_size(const md_ring *r);

#endif
