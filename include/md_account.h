/*
 * md_account: a worker's account caches (positions, orders, balances,
 * account info), the account-side twin of md_state. Owned by one worker
 * thread: accounts are sharded by the hash of their name, so every message
 * of an account, from any feed, is applied by the same worker.
 *
 * Per account it keeps what the Redis values need (docs/keys.md):
 *  - positions: one entry per symbol, merged into the account's single
 *    positions value; a position with net_pos 0 is flat and leaves it;
 *  - orders: one slot per working order, each written to its own key and
 *    listed in the account's order list; an order that turns filled,
 *    cancelled or rejected becomes a tombstone that the writer deletes from
 *    Redis (DEL of its key, list rewritten without it) and that is freed
 *    only once Redis acknowledged the DEL;
 *  - the balance and the account info, merged field by field.
 *
 * What must be written is tracked per class (`due` bits) and, for orders,
 * per order (a queue of dirty order slots). An account is on the dirty
 * queue at most once, however many of its messages arrive before the batch
 * writer takes it. Memory is bounded: max_accounts accounts per worker
 * (allocated once, touched as they fill, like md_state), and per account
 * at most max_positions positions and max_orders order slots, grown on
 * demand. A tombstone gives its slot up to a new order when all are taken:
 * its key, if Redis ever had it, then expires within the orders TTL.
 */
#ifndef MD_ACCOUNT_H
#define MD_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "md_decimal.h"
#include "md_state.h"
#include "md_tick.h"

/* Value classes of an account; bits of md_account.due and .known. */
enum md_acls {
    MD_AC_POSITIONS = 0,
    MD_AC_ORDERS,   /* the order list; order keys follow their slots */
    MD_AC_BALANCE,
    MD_AC_INFO,     /* the accounts value */
    MD_AC_COUNT
};
#define MD_AC_BIT(c) (1u << (c))

typedef struct md_position {
    uint64_t hash;  /* md_sym_hash(symbol) */
    char symbol[MD_SYMBOL_MAX + 1];
    uint8_t sym_len;
    md_dec net_pos, avg_price;
    int64_t ts_ns;  /* message ts, or its receipt time (epoch ns) */
} md_position;

enum md_oslot { MD_OSLOT_FREE = 0, MD_OSLOT_LIVE, MD_OSLOT_GONE };

typedef struct md_order {
    uint64_t hash;  /* md_sym_hash(id) */
    char id[MD_REF_MAX + 1];
    uint8_t id_len;
    char symbol[MD_SYMBOL_MAX + 1];
    uint8_t sym_len;
    uint8_t side, status; /* md_side, md_order_status */
    uint8_t slot;         /* md_oslot: LIVE = working, GONE = terminal, DEL pending */
    uint8_t dirty;        /* on the account's order queue */
    uint8_t routed;       /* cluster: its write waits in a node's queue */
    md_dec qty, price;
    int64_t ts_ns;
    int64_t written_ns; /* CLOCK_MONOTONIC of its last SETEX (LIVE) or DEL (GONE); 0 never */
    uint32_t del_gen;   /* DELs sent from this slot, kept across reuse: an acknowledgement
                         * frees the slot only if it answers the latest one */
} md_order;

typedef struct md_account {
    uint64_t hash;  /* md_sym_hash(name), never 0 */
    char name[MD_ACCOUNT_MAX + 1];
    uint8_t name_len;
    uint8_t queued; /* on the accounts dirty queue */
    uint8_t due;    /* MD_AC_BIT()s to write */
    uint8_t known;  /* MD_AC_BIT()s that have a value */
    uint8_t routed; /* cluster: MD_AC_BIT()s whose write waits in a node's queue */
    uint16_t slot1[MD_AC_COUNT]; /* cluster: 1 + slot of each class's key; 0 unknown */
    uint8_t active; /* md_active */
    uint8_t id_len;
    char id[MD_REF_MAX + 1];
    uint64_t src_hash; /* source of the newest accepted message: liveness */
    struct { uint64_t src; uint64_t seq; } seen[MD_SEQ_SLOTS];
    md_position *pos;
    uint32_t npos, pos_cap;
    md_order *ord;     /* slots [0, nord); FREE ones are reused */
    uint32_t nord, ord_cap, working;
    uint32_t *oq;      /* dirty order slots, FIFO-free stack, ord_cap entries */
    uint32_t oq_len;
    md_dec cash, realized, unrealized;
    int64_t ts_ns[MD_AC_COUNT];      /* newest message time per class (epoch ns) */
    int64_t written_ns[MD_AC_COUNT]; /* CLOCK_MONOTONIC when last queued to Redis; 0 never */
} md_account;

typedef struct md_accounts_stats {
    uint64_t applied, duplicate, full, positions_full, orders_full;
    uint64_t bad_names;  /* order messages refused: account name contains the order key's separator */
    uint64_t evicted;    /* tombstones given up to make room (their keys expire by TTL) */
    uint64_t refreshes; /* account values re-queued by the sweep */
} md_accounts_stats;

typedef struct md_accounts {
    uint64_t *slots;  /* hash index: hash's high 32 bits over (index + 1) */
    uint32_t mask;
    md_account *accts;
    uint32_t max, count;
    uint32_t max_positions, max_orders;
    uint8_t enabled;     /* MD_AC_BIT()s of classes written (template not empty) */
    bool order_keys;     /* one key per order is written */
    char sep[128];       /* order key text between {account} and {order_id} */
    size_t sep_len;
    uint32_t *dirtyq; /* FIFO of account indexes, max entries */
    uint32_t dq_head, dq_len;
    uint32_t sweep_pos;
    md_accounts_stats stats;
} md_accounts;

int md_accounts_init(md_accounts *t, uint32_t max_accounts, uint32_t max_positions,
                     uint32_t max_orders);
void md_accounts_free(md_accounts *t);

/* Which classes are written (default: all, with order keys). sep is the
 * order key template's text between {account} and {order_id}: an account
 * whose name contains it could not be told from another account's order
 * key (account "A:B"'s list key is account "A"'s key of order "B"), so its
 * order messages are refused (MD_APPLY_BAD_NAME). NULL or "" for none. */
void md_accounts_configure(md_accounts *t, uint8_t enabled, bool order_keys, const char *sep);

md_account *md_accounts_find(md_accounts *t, const char *name, size_t len);

/* Applies a position, order, balance or account message (m->t.sym_hash is
 * md_sym_hash(account)). wall_ns is CLOCK_REALTIME at receipt: the value's
 * timestamp when the message carries no ts. */
md_apply_result md_accounts_apply(md_accounts *t, const md_acct *m, int64_t wall_ns);

/* The batch writer's side. peek returns the oldest dirty account without
 * taking it; the writer takes its due values (clearing their bits, popping
 * dirty orders) as far as the batch has room, and pops the account only
 * once nothing of it is left to write. */
md_account *md_accounts_peek(md_accounts *t);
void md_accounts_pop(md_accounts *t);
/* True when nothing of a is left to write. */
static inline bool md_account_done(const md_account *a) { return !a->due && !a->oq_len; }
/* Next dirty order slot (its dirty mark cleared), or -1. */
int32_t md_account_next_order(md_account *a);

/* A write of class c (or, for c = MD_AC_COUNT, of order slot `order`, a
 * SETEX for LIVE and a DEL for GONE) failed or was never acknowledged:
 * queue it again. */
void md_accounts_requeue(md_accounts *t, md_account *a, int c, int32_t order);
/* Redis acknowledged DEL number `gen` (del_gen when it was sent) of a GONE
 * order: its slot is free again, unless the order came back or another
 * DEL was sent since. */
void md_account_order_deleted(md_account *a, uint32_t order, uint32_t gen);

/* After a reconnect: every value of a live account (and of any never
 * written), and every pending DEL, is queued again. Returns accounts queued. */
uint32_t md_accounts_mark_live_dirty(md_accounts *t, const md_sources *src, int64_t now,
                                     int64_t source_timeout_ns);

/* Visits at most `budget` accounts from the sweep cursor and re-queues the
 * values of live accounts written at least refresh_after_ns[class] ago,
 * each working order whose own key was written that long ago (orders
 * class), and DELs still owed after as long, live account or not. Returns
 * the number of values queued. */
uint32_t md_accounts_sweep(md_accounts *t, int64_t now, uint32_t budget,
                           const int64_t refresh_after_ns[MD_AC_COUNT], const md_sources *src,
                           int64_t source_timeout_ns);

/* Values and DELs waiting to be written (at exit: not written). */
uint64_t md_accounts_pending(const md_accounts *t);

#endif
