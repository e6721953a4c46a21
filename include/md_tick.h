/*
 * md_tick: one decoded feed message, the unit that flows from a decoder,
 * through the SPSC rings, into the owning worker's coalescer.
 *
 * Fixed size and plain data so that rings can copy it by value into a slot;
 * no pointers into receive buffers survive the decoder.
 */
#ifndef MD_TICK_H
#define MD_TICK_H

#include <stdint.h>

#include "md_decimal.h"

#define MD_SYMBOL_MAX 31 /* bytes, not counting a NUL */
#define MD_SOURCE_MAX 31

typedef enum md_tick_type {
    MD_TICK_NONE = 0,
    MD_TICK_QUOTE = 1,
    MD_TICK_TRADE = 2,
    MD_TICK_HEARTBEAT = 3,
    MD_TICK_RESET = 4, /* session reset; symbol "*" means every symbol */
    /* Account classes (issue #5) will take 5..8. */
    MD_TICK_TYPE_COUNT
} md_tick_type;

enum {
    MD_TICK_F_SEQ = 1u << 0, /* seq is valid */
    MD_TICK_F_TS = 1u << 1,  /* ts_ns is valid */
};

typedef struct md_tick {
    uint8_t type;     /* md_tick_type */
    uint8_t flags;    /* MD_TICK_F_* */
    uint8_t sym_len;  /* bytes in symbol */
    uint8_t src_len;  /* bytes in source; 0 = none given (listener is the source) */
    uint32_t feed_id; /* which listener/connection it came from (set by the worker) */
    uint64_t seq;     /* per-source sequence number */
    int64_t ts_ns;    /* exchange time, Unix epoch nanoseconds */
    uint64_t src_hash;/* set by the worker: hash of source (or feed) identity */
    uint64_t sym_hash;/* set by the worker: md_sym_hash(symbol), computed once for
                       * routing and reused by the owner's table */
    /* CLOCK_MONOTONIC at which this tick's latency clock starts. Decoders
     * set the sender's origin stamp (bin1 origin trailer, jsonl origin_ns),
     * 0 when none; the worker replaces 0, or a time in its future (another
     * host's clock), with its own receive time. */
    int64_t origin_ns;
    /* quote: bid, ask, bid_size, ask_size; trade: price, size (in v[0], v[1]) */
    md_dec v[4];
    char symbol[MD_SYMBOL_MAX + 1]; /* NUL-terminated too */
    char source[MD_SOURCE_MAX + 1];
} md_tick;

/* Value slots, named. */
enum { MD_Q_BID = 0, MD_Q_ASK = 1, MD_Q_BID_SIZE = 2, MD_Q_ASK_SIZE = 3 };
enum { MD_T_PRICE = 0, MD_T_SIZE = 1 };

#endif
