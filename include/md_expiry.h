/*
 * md_expiry: the stale-feed watcher. A key's TTL is its staleness guard:
 * while a source is alive mdcache re-asserts its keys, and when the source
 * goes quiet they expire. This thread is how mdcache notices: connections
 * of its own subscribe to __keyevent@<db>__:expired, and every expired key
 * of ours (matched against the key templates) is counted per class, logged
 * at a rate limit and, with publish_events, announced as a JSON event on
 * events_channel.
 *
 * A standalone server gets one subscribed connection. A Redis Cluster
 * sends keyspace events only to the clients of the node where the key
 * expired, so there the watcher keeps one subscribed connection per
 * primary of the newest slot map (md_topo_service), in database 0, the
 * only one a cluster has: it subscribes on primaries that appear, drops
 * nodes that are no longer primaries (a replica never expires a key on its
 * own, it waits for its primary's DEL), and reconnects a failed node on
 * its own backoff without holding up the others. Events published with
 * publish_events go out on one more connection, to any node: a subscribed
 * connection cannot PUBLISH, and a cluster forwards a PUBLISH to every
 * node's subscribers.
 *
 * Redis only sends those events when notify-keyspace-events contains E and
 * x; the watcher adds them with CONFIG SET on each node it subscribes on
 * when they are missing (set_notify_events), and where CONFIG is forbidden
 * (managed services) it says so once per node and checks the current
 * setting if it can read it.
 *
 * It is not on the data path: blocking I/O (md_bconn) on its own thread,
 * reconnecting with the same backoff as the workers.
 */
#ifndef MD_EXPIRY_H
#define MD_EXPIRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_bconn.h"
#include "md_config.h"
#include "md_format.h"
#include "md_redis.h"
#include "md_stats.h"
#include "md_topo_service.h"
#include "md_topology.h"

#define MD_EXPIRY_CLASSES 7

/* A node the watcher subscribes on: the server, or one cluster primary. */
typedef struct md_expiry_node {
    char host[256];          /* cluster: the primary as the slot map names it */
    uint16_t port;
    md_redis_target target;  /* cluster: resolved again at each connect */
    md_bconn c;              /* subscribed when up */
    bool up;
    bool more;               /* replies may wait in c's buffers, where poll() cannot see them */
    bool warned, refused;    /* said once per node: CONFIG, SUBSCRIBE */
    double backoff_s;
    int64_t retry_ms;        /* CLOCK_MONOTONIC ms: when down, the next connect */
} md_expiry_node;

typedef struct md_expiry {
    const md_config *cfg;
    const md_redis_target *target; /* standalone: the server; cluster: the seed (TLS context) */
    md_topo_service *topo;         /* NULL: standalone */
    md_expiry_node *nodes;         /* the thread's: 1, or up to MD_TOPO_MAX_NODES primaries */
    int nnodes;
    md_topology *map;              /* cluster: the thread's copy of the newest map */
    uint32_t map_ver;
    pthread_t thread;
    bool started;
    _Atomic int stop;
    md_stats_mirror pub; /* expired_*, events_published */
    md_keytpl tpl[MD_EXPIRY_CLASSES]; /* price, fallback, positions, order, order list,
                                       * balances, accounts; nvars 0 = class off */
} md_expiry;

/* Starts the watcher when cfg->watch_expired; 0, or -1 if the thread could
 * not start. topo: NULL for a standalone server (t is the server), else the
 * cluster's slot map service, already started (t is the seed whose TLS
 * context serves every node). */
int md_expiry_start(md_expiry *x, const md_config *cfg, const md_redis_target *t,
                    md_topo_service *topo);
/* Stops and joins it (within about 0.2 s, or connect_timeout while it connects). */
void md_expiry_stop(md_expiry *x);

/* The thread's step on a new slot map, exposed for tests: makes x->nodes
 * the primaries of t. Nodes still primaries keep their connection and
 * state, the others are closed and dropped, new ones are added down and
 * due at once. x->nodes holds MD_TOPO_MAX_NODES. Returns nodes added plus
 * dropped. */
int md_expiry_follow(md_expiry *x, const md_topology *t);

/* The channel expired-key events come on: "__keyevent@<db>__:expired", db 0
 * in a cluster. */
void md_expiry_channel(const md_expiry *x, char *buf, size_t cap);

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
