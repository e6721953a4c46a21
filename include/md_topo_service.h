/*
 * md_topo_service: the one place that asks a Redis Cluster for its slot
 * map while mdcache runs, on a thread of its own.
 *
 * Workers never wait on the network for a topology: when a MOVED, a dead
 * node or an unowned slot tells one that its map is out of date, it calls
 * md_topo_service_request (an atomic store) and goes on coalescing. This
 * thread then asks the known nodes in turn (every primary of the last
 * map, then the seeds from --redis) with CLUSTER SHARDS over a blocking
 * md_bconn, publishes the new map under a version number, and each worker
 * copies it (md_topo_service_get, a trylock and a memcpy) at the top of a
 * loop turn. Requests that arrive while a refresh runs are served by the
 * next one: a burst of redirects costs one refresh, not one per reply.
 * Refreshes are at least MD_TOPO_MIN_GAP_MS apart (up to MD_TOPO_MAX_GAP_MS
 * once they have found the same map for MD_TOPO_SETTLE_MS), and one runs every
 * MD_TOPO_PERIOD_S anyway, so new primaries are found without a MOVED.
 */
#ifndef MD_TOPO_SERVICE_H
#define MD_TOPO_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "md_config.h"
#include "md_redis.h"
#include "md_topology.h"

#define MD_TOPO_MIN_GAP_MS 100
#define MD_TOPO_MAX_GAP_MS 2000 /* the gap once refreshes keep finding the same map */
#define MD_TOPO_SETTLE_MS 30000 /* ... for this long */
#define MD_TOPO_PERIOD_S 5.0

typedef struct md_topo_service {
    const md_config *cfg;
    const md_redis_target *seed; /* the first seed: its TLS context serves every node */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    md_topology cur;             /* guarded by mu */
    _Atomic uint32_t version;    /* bumped per published map; 0 = none yet */
    _Atomic int want;            /* a refresh was asked for */
    _Atomic int stop;
    _Atomic uint64_t refreshes;  /* maps fetched */
    _Atomic uint64_t failures;   /* refreshes that reached no node */
    md_topology *work;           /* the thread's: two maps, the one being read and the best so far */
} md_topo_service;

/* Publishes `initial` (read by the start-up check) as version 1 and starts
 * the thread. 0, or -1 if the thread could not start. */
int md_topo_service_start(md_topo_service *s, const md_config *cfg, const md_redis_target *seed,
                          const md_topology *initial);
void md_topo_service_stop(md_topo_service *s);

/* Never blocks: asks the thread for a refresh. */
void md_topo_service_request(md_topo_service *s);

/* Never blocks: copies the newest map into out when its version differs
 * from *ver (and updates *ver). False when there is nothing newer, or the
 * lock was busy (the caller asks again on its next turn). */
bool md_topo_service_get(md_topo_service *s, md_topology *out, uint32_t *ver);

/* A connectable target for node n: its address resolved, the TLS context
 * and display of `seed`'s kind. 0, or -1 with a reason in err. */
int md_topo_node_target(const md_redis_target *seed, const md_topo_node *n, md_redis_target *out,
                        char *err, size_t errlen);

#endif
