/*
 * md_stats: per-worker counters. Each worker counts into a plain struct
 * that only it touches (no atomics on the hot path) and publishes a copy
 * into an atomic mirror a few times a second; the main thread sums the
 * mirrors for the stats line, and the metrics thread (md_metrics) reads the
 * same mirrors.
 */
#ifndef MD_STATS_H
#define MD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "md_decode.h"

/* X(name, kind, help). The help text is also the metric's # HELP line
 * (docs/metrics.md), so it says what one unit of the field is. kind says who
 * keeps the field and how it moves, for the metrics exporter:
 *   counter  per worker, only ever grows
 *   gauge    per worker, a current level
 *   watcher  a counter kept by the expiry watcher (one per process), zero in
 *            the workers' mirrors */
#define MD_STATS_FIELDS(X)                                                                         \
    X(ticks_in, counter, "ticks decoded from feeds on this worker")                                \
    X(applied, counter, "ticks applied to the coalescer (owner side)")                             \
    X(account_msgs, counter, "position/order/balance/account messages applied (owner side)")       \
    X(duplicates, counter, "older or repeated seq dropped")                                        \
    X(refused, counter, "refused: max_keys, max_accounts, max_positions or max_orders reached")    \
    X(overflow, counter, "aggregates that would overflow, dropped")                                \
    X(drops, counter, "ticks dropped: ring to owner stayed full")                                  \
    X(kernel_drops, counter, "datagrams the kernel dropped (SO_RXQ_OVFL)")                         \
    X(truncated, counter, "datagrams larger than a receive buffer")                                \
    X(decode_errors, counter, "lines/frames dropped by decoders (sum of err_*)")                   \
    X(skipped, counter, "well-formed messages of unused kinds (binance depth, kline...)")          \
    X(heartbeats, counter, "heartbeats received")                                                  \
    X(resets, counter, "session resets applied")                                                   \
    X(connections, counter, "stream connections accepted")                                         \
    X(keys_written, counter, "price SET/SETEX acknowledged with OK")                               \
    X(account_writes, counter, "account-class SETEX acknowledged with OK")                         \
    X(orders_deleted, counter, "DEL of terminal orders acknowledged")                              \
    X(batches, counter, "batches fully acknowledged")                                              \
    X(bytes_out, counter, "bytes written to Redis")                                                \
    X(redis_errors, counter, "error replies of every type: the sum of redis_oom..redis_other and cluster_*") \
    X(redis_oom, counter, "OOM: writes paused, keys kept")                                         \
    X(redis_readonly, counter, "READONLY: node demoted, reconnect")                                \
    X(redis_loading, counter, "LOADING: writes paused, keys kept")                                 \
    X(redis_busy, counter, "BUSY (script or module): writes paused, keys kept")                    \
    X(redis_auth, counter, "NOAUTH/WRONGPASS on a write: re-authenticate")                         \
    X(redis_noperm, counter, "NOPERM (ACL): writes paused, keys kept")                             \
    X(redis_other, counter, "any other error: logged, key written again on change or refresh")     \
    X(cluster_moved, counter, "MOVED replies: slot map updated, key sent to the new owner")        \
    X(cluster_ask, counter, "ASK replies: key sent once to the importing node with ASKING")        \
    X(cluster_down, counter, "TRYAGAIN/CLUSTERDOWN: that node's writes paused, keys kept")         \
    X(topology_updates, counter, "new slot maps taken by a worker (refreshes and MOVED)")          \
    X(redis_timeouts, counter, "connections dropped: a batch waited reply_timeout")                \
    X(handshake_failures, counter, "connections whose TLS, AUTH or SELECT failed")                 \
    X(reconnects, counter, "Redis connections (re)established after the first")                    \
    X(refreshes, counter, "keys re-asserted for live sources")                                     \
    X(expired_price, watcher, "price keys Redis expired (watcher): their source went quiet")       \
    X(expired_fallback, watcher, "price fallback keys Redis expired (last_good_ttl)")              \
    X(expired_positions, watcher, "positions keys Redis expired: the account's source went quiet") \
    X(expired_orders, watcher, "order and order list keys Redis expired")                          \
    X(expired_balances, watcher, "balances keys Redis expired")                                    \
    X(expired_accounts, watcher, "accounts keys Redis expired")                                    \
    X(events_published, watcher, "expiry events PUBLISHed on events_channel")                      \
    X(keys, gauge, "symbols held")                                                                 \
    X(dirty, gauge, "symbols waiting to be written")                                               \
    X(accounts, gauge, "accounts held")                                                            \
    X(dirty_accounts, gauge, "accounts with values or deletes waiting")                            \
    X(inflight, gauge, "batches sent, not yet acknowledged")                                       \
    X(live_sources, gauge, "sources heard from within source_timeout")

/* Writes acknowledged by Redis, by what they wrote (the metrics endpoint's
 * mdcache_writes_total; the stats line keeps keys_written and
 * account_writes, its sums). */
enum md_wclass {
    MD_W_PRICE,
    MD_W_FALLBACK,
    MD_W_PUSH, /* PUBLISH on price_channel */
    MD_W_POSITIONS,
    MD_W_ORDER,
    MD_W_ORDER_DELETE,
    MD_W_ORDER_LIST,
    MD_W_BALANCES,
    MD_W_ACCOUNTS,
    MD_W_COUNT
};
extern const char *const md_wclass_name[MD_W_COUNT];
extern const char *const md_tick_type_name[MD_TICK_TYPE_COUNT];

#define MD_STATS_FEEDS 32 /* MD_MAX_LISTEN */

typedef struct md_stats {
#define MD_STATS_DECL(n, ...) uint64_t n;
    MD_STATS_FIELDS(MD_STATS_DECL)
#undef MD_STATS_DECL
    uint64_t err[MD_DERR_COUNT];
    uint64_t written[MD_W_COUNT];
    /* Messages decoded, by feed (listen index) and type: ticks_in split. */
    uint64_t feed_in[MD_STATS_FEEDS][MD_TICK_TYPE_COUNT];
} md_stats;

typedef struct md_stats_mirror {
#define MD_STATS_ADECL(n, ...) _Atomic uint64_t n;
    MD_STATS_FIELDS(MD_STATS_ADECL)
#undef MD_STATS_ADECL
    _Atomic uint64_t err[MD_DERR_COUNT];
    _Atomic uint64_t written[MD_W_COUNT];
    _Atomic uint64_t feed_in[MD_STATS_FEEDS][MD_TICK_TYPE_COUNT];
} md_stats_mirror;

void md_stats_publish(md_stats_mirror *m, const md_stats *s);
/* Adds the mirror's current values into sum. */
void md_stats_collect(md_stats *sum, const md_stats_mirror *m);
/* "ticks_in=1 applied=2 ..." (with err_<reason>=N when with_errors). */
int md_stats_format(const md_stats *s, int with_errors, char *buf, size_t cap);

#endif
