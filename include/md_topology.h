/*
 * md_topology: a Redis Cluster's slot map, as mdcache writes to it: which
 * primary owns each of the 16384 slots, and where to reach it.
 *
 * Read from CLUSTER SHARDS (Redis 7) or, on older servers, CLUSTER SLOTS,
 * parsed from hiredis replies. Only primaries are kept: writes go nowhere
 * else, and after a failover the refreshed map names the promoted replica.
 * A shard whose primary is marked failed leaves its slots without an owner
 * until a refresh finds the new one.
 */
#ifndef MD_TOPOLOGY_H
#define MD_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "md_slot.h"

struct redisReply;

#define MD_TOPO_MAX_NODES 128 /* primaries; a cluster this size is far beyond one host */
#define MD_SLOT_NONE 0xffff

typedef struct md_topo_node {
    char host[256];
    uint16_t port;
    char id[41]; /* node id, "" when the reply gave none */
    /* Resolved by md_topo_service on its own thread (addrlen 0 until then),
     * so a worker never waits on a name lookup for a node of the map. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
} md_topo_node;

typedef struct md_topology {
    md_topo_node nodes[MD_TOPO_MAX_NODES];
    uint16_t nnodes;
    uint16_t owner[MD_SLOT_COUNT]; /* index into nodes, or MD_SLOT_NONE */
    uint32_t covered;              /* slots with an owner */
} md_topology;

/* Parse a CLUSTER SHARDS / CLUSTER SLOTS reply into t (reset first).
 * `tls`: prefer a node's TLS port where the reply gives one. `asked_host`:
 * the address the reply came from, used for nodes that report no usable
 * address of their own (an empty or "?" endpoint). 0 on success; -1 with
 * a one-line reason in err for a reply of the wrong shape. */
int md_topology_from_shards(md_topology *t, const struct redisReply *r, bool tls,
                            const char *asked_host, char *err, size_t errlen);
int md_topology_from_slots(md_topology *t, const struct redisReply *r, bool tls,
                           const char *asked_host, char *err, size_t errlen);

struct md_bconn;

/* Asks a node over c (connected, authenticated) with CLUSTER SHARDS, or
 * CLUSTER SLOTS where the server predates it, and parses the answer. 0, or
 * -1 with a one-line reason in err. */
int md_topology_fetch(md_topology *t, struct md_bconn *c, bool tls, const char *asked_host,
                      char *err, size_t errlen);

/* "3 primaries: 127.0.0.1:7001 (5461 slots), ..." for messages. */
void md_topology_describe(const md_topology *t, char *buf, size_t cap);

/* The node owning key's slot, or NULL if the slot has no owner. */
const md_topo_node *md_topology_owner(const md_topology *t, const char *key, size_t len);

#endif
