/*
 * md_expiry: the stale-feed watcher. A key's TTL is its staleness guard:
 * while a source is alive mdcache re-asserts its keys, and when the source
 * goes quiet they expire. This thread is how mdcache notices: one
 * connection of its own subscribes to __keyevent@<db>__:expired, and every
 * expired key of ours (matched against the key templates) is counted per
 * class, logged at a rate limit and, with publish_events, announced as a
 * JSON event on events_channel.
 *
 * Redis only sends those events when notify-keyspace-events contains E and
 * x; the watcher adds them with CONFIG SET when they are missing
 * (set_notify_events), and where CONFIG is forbidden (managed services) it
 * says so once and checks the current setting if it can read it.
 *
 * It is not on the data path: blocking I/O (md_bconn) on its own thread,
 * reconnecting with the same backoff as the workers.
 */
#ifndef MD_EXPIRY_H
#define MD_EXPIRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "md_config.h"
#include "md_format.h"
#include "md_redis.h"
#include "md_stats.h"

#define MD_EXPIRY_CLASSES 7

typedef struct md_expiry {
    const md_config *cfg;
    const md_redis_target *target;
    pthread_t thread;
    bool started;
    _Atomic int stop;
    md_stats_mirror pub; /* expired_*, events_published */
    md_keytpl tpl[MD_EXPIRY_CLASSES]; /* price, fallback, positions, order, order list,
                                       * balances, accounts; nvars 0 = class off */
} md_expiry;

/* Starts the watcher when cfg->watch_expired; 0, or -1 if the thread could
 * not start. */
int md_expiry_start(md_expiry *x, const md_config *cfg, const md_redis_target *t);
/* Stops and joins it (within about 0.2 s, or connect_timeout while it connects). */
void md_expiry_stop(md_expiry *x);
/* Adds its counters into sum. */
void md_expiry_collect(md_expiry *x, md_stats *sum);

/* The JSON event for an expired key, e.g.
 * {"event":"expired","class":"price","key":"price:ES:latest","symbol":"ES","ts":1763740000123};
 * `field` names the key's variable ("symbol", or "account" for the account
 * classes). Returns its length (truncated to cap - 1). */
size_t md_expiry_event_json(char *buf, size_t cap, const char *cls, const char *key,
                            size_t klen, const char *field, const char *sym, size_t slen,
                            int64_t ts_ms);

#endif
