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
    /* Account messages: carried as md_acct (below), routed by account. */
    MD_TICK_POSITION = 5,
    MD_TICK_ORDER = 6,
    MD_TICK_BALANCE = 7,
    MD_TICK_ACCOUNT = 8,
    MD_TICK_TYPE_COUNT
} md_tick_type;

static inline int md_tick_is_account(unsigned type)
{
    return type >= MD_TICK_POSITION && type <= MD_TICK_ACCOUNT;
}

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
enum { MD_P_NET_POS = 0, MD_P_AVG_PRICE = 1 };
enum { MD_O_QTY = 0, MD_O_PRICE = 1 };
enum { MD_B_CASH = 0, MD_B_REALIZED = 1, MD_B_UNREALIZED = 2 };

/*
 * An account message (position, order, balance, account). It is an md_tick
 * followed by the fields prices never need, so that a decoder hands it to
 * the same md_tick_fn callback (check md_tick_is_account(t->type), then
 * the pointer is really an md_acct) and the rings carry it in a longer
 * record: price ticks, by far the most numerous, stay 176 bytes on their
 * way between cores instead of paying for account and order ids.
 *
 * In the embedded tick: symbol is the instrument (position, order; empty
 * for balance and account), v[] holds the MD_P_/MD_O_/MD_B_ slots, absent
 * values have MD_DEC_ABSENT, and sym_hash is set by the worker to the hash
 * of the account: accounts, not symbols, pick the owning worker.
 */
#define MD_ACCOUNT_MAX 31 /* bytes, not counting a NUL */
#define MD_REF_MAX 63     /* order_id / account id: room for UUIDs and FIX ClOrdIDs */

typedef enum md_side { MD_SIDE_NONE = 0, MD_SIDE_BUY = 1, MD_SIDE_SELL = 2 } md_side;

typedef enum md_order_status {
    MD_ORDER_NONE = 0,
    MD_ORDER_WORKING = 1,   /* pending: kept in Redis while its source is alive */
    MD_ORDER_FILLED = 2,    /* terminal: deleted from Redis at once */
    MD_ORDER_CANCELLED = 3, /* terminal */
    MD_ORDER_REJECTED = 4,  /* terminal */
} md_order_status;

typedef enum md_active { MD_ACTIVE_UNKNOWN = 0, MD_ACTIVE_NO = 1, MD_ACTIVE_YES = 2 } md_active;

typedef struct md_acct {
    md_tick t;
    uint8_t acct_len;
    uint8_t ref_len;
    uint8_t side;   /* order: md_side */
    uint8_t status; /* order: md_order_status, never NONE once decoded */
    uint8_t active; /* account: md_active */
    char account[MD_ACCOUNT_MAX + 1]; /* NUL-terminated too; never empty */
    char ref[MD_REF_MAX + 1];         /* order: order_id (required); account: id (optional) */
} md_acct;

static inline const md_acct *md_tick_acct(const md_tick *t) { return (const md_acct *)t; }

#endif
