/*
 * md_preflight: one blocking round trip to Redis on the main thread before
 * any worker starts: connect, TLS, AUTH, SELECT, PING.
 *
 * Why: a wrong password, a wrong CA or a server name that does not match
 * will never fix themselves by retrying, and a daemon that starts and
 * retries forever with an error buried in its log looks healthy to its
 * supervisor. So those end start-up with one line and exit code 2. A server
 * that is merely not there yet (refused, timed out, loading) is not an
 * error: the workers keep retrying, as they do after any outage.
 */
#ifndef MD_PREFLIGHT_H
#define MD_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

#include "md_config.h"
#include "md_redis.h"
#include "md_topology.h"

typedef enum md_preflight_rc {
    MD_PREFLIGHT_OK = 0,
    MD_PREFLIGHT_UNREACHABLE, /* msg says why; start anyway */
    MD_PREFLIGHT_REFUSED,     /* credentials, certificate or database refused: msg */
} md_preflight_rc;

/* Also reads INFO cluster: a Redis Cluster node sets *is_cluster, reads
 * the slot map into topo and leaves its one-line description in msg; a
 * cluster that [redis] cluster or the URL's database rule out, or a
 * standalone server with cluster = yes, is REFUSED. */
md_preflight_rc md_preflight(const md_config *cfg, const md_redis_target *t, char *msg,
                             size_t cap, md_topology *topo, bool *is_cluster);

/* md_preflight on each seed of cfg->redis in turn (seed: the first one,
 * resolved), until one answers: OK with *answered set (and, for a cluster
 * node, *is_cluster and topo); REFUSED as soon as one refuses, msg naming
 * it; UNREACHABLE when none answered, msg the first failure. With
 * cluster = yes, a server whose INFO was refused (an ACL without +info) is
 * taken as a cluster node on the operator's word, topo left empty. */
md_preflight_rc md_preflight_seeds(const md_config *cfg, const md_redis_target *seed,
                                   md_redis_target *answered, char *msg, size_t cap,
                                   md_topology *topo, bool *is_cluster);

#endif
