/*
 * md_stats: per-worker counters. Each worker counts into a plain struct
 * that only it touches (no atomics on the hot path) and publishes a copy
 * into an atomic mirror a few times a second; the main thread sums the
 * mirrors for the stats line and, later, metrics.
 */
#ifndef MD_STATS_H
#define MD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "md_decode.h"

#define MD_STATS_FIELDS(X)                                                                         \
    X(ticks_in)      /* ticks decoded from feeds on this worker */                                \
    X(applied)       /* ticks applied to the coalescer (owner side) */                            \
    X(account_msgs)  /* position/order/balance/account messages applied (owner side) */           \
    X(duplicates)    /* older or repeated seq dropped */                                          \
    X(refused)       /* refused: max_keys, max_accounts, max_positions or max_orders reached */  \
    X(overflow)      /* aggregates that would overflow, dropped */                                \
    X(drops)         /* ticks dropped: ring to owner stayed full */                               \
    X(kernel_drops)  /* datagrams the kernel dropped (SO_RXQ_OVFL) */                             \
    X(truncated)     /* datagrams larger than a receive buffer */                                 \
    X(decode_errors) /* lines/frames dropped by decoders (sum of err_*) */                        \
    X(skipped)       /* well-formed messages of unused kinds (binance depth, kline...) */         \
    X(heartbeats)    /* heartbeats received */                                                    \
    X(resets)        /* session resets applied */                                                 \
    X(connections)   /* stream connections accepted */                                            \
    X(keys_written)  /* price SET/SETEX acknowledged with OK */                                   \
    X(account_writes) /* account-class SETEX acknowledged with OK */                              \
    X(orders_deleted) /* DEL of terminal orders acknowledged */                                   \
    X(batches)       /* batches fully acknowledged */                                             \
    X(bytes_out)     /* bytes written to Redis */                                                 \
    X(redis_errors)  /* error replies, all types: the sum of the seven below and cluster_* */                   \
    X(redis_oom)     /* OOM: writes paused, keys kept */                                          \
    X(redis_readonly) /* READONLY: node demoted, reconnect */                                     \
    X(redis_loading) /* LOADING: writes paused, keys kept */                                      \
    X(redis_busy)    /* BUSY (script or module): writes paused, keys kept */                      \
    X(redis_auth)    /* NOAUTH/WRONGPASS on a write: re-authenticate */                           \
    X(redis_noperm)  /* NOPERM (ACL): writes paused, keys kept */                                 \
    X(redis_other)   /* any other error: logged, key written again on change or refresh */       \
    X(cluster_moved) /* MOVED replies: slot map updated, key sent to the new owner */             \
    X(cluster_ask)   /* ASK replies: key sent once to the importing node with ASKING */           \
    X(cluster_down)  /* TRYAGAIN/CLUSTERDOWN: that node's writes paused, keys kept */             \
    X(topology_updates) /* new slot maps taken by a worker (refreshes and MOVED) */               \
    X(redis_timeouts) /* connections dropped: a batch waited reply_timeout */                     \
    X(handshake_failures) /* connections whose TLS, AUTH or SELECT failed */                      \
    X(reconnects)    /* Redis connections (re)established after the first */                     \
    X(refreshes)     /* keys re-asserted for live sources */                                      \
    X(expired_price) /* price keys Redis expired (watcher): their source went quiet */            \
    X(expired_fallback) /* price fallback keys Redis expired (last_good_ttl) */                   \
    X(expired_positions) /* positions keys Redis expired: the account's source went quiet */      \
    X(expired_orders) /* order and order list keys Redis expired */                               \
    X(expired_balances) /* balances keys Redis expired */                                         \
    X(expired_accounts) /* accounts keys Redis expired */                                         \
    X(events_published) /* expiry events PUBLISHed on events_channel */                           \
    X(keys)          /* gauge: symbols held */                                                    \
    X(dirty)         /* gauge: symbols waiting to be written */                                   \
    X(accounts)      /* gauge: accounts held */                                                   \
    X(dirty_accounts) /* gauge: accounts with values or deletes waiting */                        \
    X(inflight)      /* gauge: batches sent, not yet acknowledged */                              \
    X(live_sources)  /* gauge */

typedef struct md_stats {
#define MD_STATS_DECL(n) uint64_t n;
    MD_STATS_FIELDS(MD_STATS_DECL)
#undef MD_STATS_DECL
    uint64_t err[MD_DERR_COUNT];
} md_stats;

typedef struct md_stats_mirror {
#define MD_STATS_ADECL(n) _Atomic uint64_t n;
    MD_STATS_FIELDS(MD_STATS_ADECL)
#undef MD_STATS_ADECL
    _Atomic uint64_t err[MD_DERR_COUNT];
} md_stats_mirror;

void md_stats_publish(md_stats_mirror *m, const md_stats *s);
/* Adds the mirror's current values into sum. */
void md_stats_collect(md_stats *sum, const md_stats_mirror *m);
/* "ticks_in=1 applied=2 ..." (with err_<reason>=N when with_errors). */
int md_stats_format(const md_stats *s, int with_errors, char *buf, size_t cap);

#endif
