/*
 * md_cluster: one worker's writer for a Redis Cluster.
 *
 * The coalescer (md_state, md_accounts) is the same as for one server: one
 * dirty queue per worker. Each loop turn the router empties it into the
 * queues of the primaries' connections (md_redis, one per primary per
 * worker), one entry per key: the price key and the fallback key of a
 * symbol, and each account value, usually live on different nodes. A
 * per-key `routed` mark keeps a key at most once in those queues, so ticks
 * that arrive while a node is slow or down still coalesce into one write,
 * formatted when that node's batch is built. Every node writes on its own:
 * a slow node holds back only its own keys.
 *
 * Topology: the worker's copy of the slot map comes from md_topo_service,
 * which fetches it on a thread of its own. MOVED sets the slot's owner at
 * once (connecting to a node never seen before) and puts the key back on
 * the dirty queue, so it is routed again; ASK sends ASKING plus the one
 * command to the importing node, map unchanged; both ask the service for a
 * refresh, which it serves once per burst. A map that changes re-routes
 * every queued key. Keys whose slot has no owner (a primary failed and its
 * replica is not yet promoted) wait, coalescing, until a map names one.
 */
#ifndef MD_CLUSTER_H
#define MD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "md_redis.h"
#include "md_topo_service.h"
#include "md_topology.h"

#define MD_CLUSTER_MAX_CONNS 256 /* primaries of every map seen, and MOVED/ASK targets */

struct md_worker;

typedef struct md_cluster {
    struct md_worker *w;
    const md_config *cfg;
    md_topo_service *svc;
    const md_redis_target *seed; /* its TLS context serves every node */
    md_keys keys;
    md_topology map;             /* this worker's copy of the newest map */
    uint32_t ver;
    uint32_t nconn;
    md_redis *conn[MD_CLUSTER_MAX_CONNS];
    md_redis_target tgt[MD_CLUSTER_MAX_CONNS];
    uint16_t owner[MD_SLOT_COUNT]; /* slot -> conn index, or MD_SLOT_NONE */
    md_route *parked;            /* keys whose slot has no owner yet */
    uint32_t nparked, parked_cap;
    bool oom;                    /* a queue could not grow: logged once */
} md_cluster;

md_cluster *md_cluster_new(struct md_worker *w, const md_config *cfg, md_topo_service *svc,
                           const md_redis_target *seed);
void md_cluster_free(md_cluster *cl);

/* The connection a completion belongs to (user_data's index), or NULL. */
md_redis *md_cluster_conn(md_cluster *cl, uint32_t idx);

/* Each loop turn: takes a newer map if there is one, routes the dirty
 * keys, and polls every connection. */
void md_cluster_poll(md_cluster *cl, int64_t now);

/* The first half of a poll, without I/O (for tests): a newer map, then
 * the dirty keys into the node queues. */
void md_cluster_route(md_cluster *cl, int64_t now);

/* Nothing dirty, queued or awaiting a reply. */
bool md_cluster_idle(const md_cluster *cl);
/* Keys not known to be written: queued, parked, sent but unacknowledged. */
uint64_t md_cluster_unacked(const md_cluster *cl);
/* Batches awaiting replies, over every connection. */
uint32_t md_cluster_inflight(const md_cluster *cl);

/* From a connection's reply handling. `addr` is the "host:port" of the
 * redirect. moved: the slot's owner is now addr; returns the index of its
 * connection (MD_SLOT_NONE if addr is unusable). ask: e goes once to addr,
 * with ASKING; false if addr is unusable (the key then waits for a
 * refresh). */
uint32_t md_cluster_moved(md_cluster *cl, uint16_t slot, const char *addr); /* conn index */
bool md_cluster_ask(md_cluster *cl, const char *addr, const md_route *e);
/* True unless s's price key is known to live on another node than
 * conn (an md_redis of a cluster): what a (re)connected node re-asserts. */
bool md_cluster_sym_on(const struct md_sym *s, void *conn);

/* A node failed, was redirected away from, or said CLUSTERDOWN. */
void md_cluster_want_refresh(md_cluster *cl);

#endif
