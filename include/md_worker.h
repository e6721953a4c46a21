/*
 * md_worker: one pinned thread, one io_uring, one shard of the symbol
 * space. A worker receives from its own feed sockets, decodes, and routes
 * each tick to the worker that owns its symbol (xxh3(symbol) % workers):
 * itself directly, others through SPSC rings. It then coalesces what it
 * owns and writes it to Redis over its own connection.
 *
 * Threads share only: the read-only config and listeners, the rings (one
 * per ordered pair of workers), each worker's `sleeping` flag and ring fd
 * (for wake-ups), the stop flags, and the published stats mirrors.
 */
#ifndef MD_WORKER_H
#define MD_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "md_account.h"
#include "md_config.h"
#include "md_hist.h"
#include "md_listen.h"
#include "md_metrics.h"
#include "md_redis.h"
#include "md_ring.h"
#include "md_state.h"
#include "md_stats.h"

/* user_data layout: op in the top 8 bits, a 24-bit index, 32-bit generation. */
enum md_op {
    MD_OP_IGNORE = 0,
    MD_OP_WAKE,
    MD_OP_UDP,
    MD_OP_ACCEPT,
    MD_OP_STREAM,
    MD_OP_FILE,
    MD_OP_REDIS_CONNECT,
    MD_OP_REDIS_SEND,
    MD_OP_REDIS_RECV,
};
static inline uint64_t md_ud(enum md_op op, uint32_t idx, uint32_t gen)
{
    return ((uint64_t)op << 56) | ((uint64_t)(idx & 0xffffff) << 32) | gen;
}
static inline enum md_op md_ud_op(uint64_t ud) { return (enum md_op)(ud >> 56); }
static inline uint32_t md_ud_idx(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffff; }
static inline uint32_t md_ud_gen(uint64_t ud) { return (uint32_t)ud; }

typedef struct md_runtime md_runtime;
typedef struct md_stream md_stream;
typedef struct md_udp md_udp;

typedef struct md_worker {
    int id;
    int cpu;
    pthread_t thread;
    md_runtime *rt;
    struct io_uring ring;
    alignas(64) _Atomic int sleeping; /* set while blocked in the kernel */
    int ring_fd;
    md_state state;
    md_accounts accounts;
    md_sources sources;
    md_redis redis;        /* one server */
    struct md_cluster *cluster; /* Redis Cluster: a connection per primary instead */
    md_stats st;           /* owner-only counters */
    md_stats_mirror pub;   /* published copy */
    md_decode_stats dstats;
    /* Owner-only until the worker exits; main reads them after the join. */
    md_hist *h_latency;    /* receipt of the oldest coalesced tick -> Redis ack, ns */
    md_hist *h_rtt;        /* batch send -> last reply, ns */
    md_hist *h_batch;      /* keys per batch */
    /* Coarse live copies for the metrics endpoint, refreshed by publish()
     * when metrics are on; hpub_seen: each histogram's count at the last. */
    md_hist_pub hpub[MD_MH_COUNT];
    uint64_t hpub_seen[MD_MH_COUNT];
    md_udp *udp;           /* one per UDP listener */
    int nudp;
    md_stream *streams;    /* connection slots */
    uint32_t nstreams;
    struct io_uring_buf_ring *sbr; /* provided buffers for stream receives */
    uint8_t *sbufs;
    uint32_t pending_wake; /* bitmask of workers pushed to this turn (<= 32 used) */
    uint64_t pending_wake_hi;
    const md_listener *cur;/* listener whose bytes are being decoded */
    bool reading;          /* false once shutdown began: feed data is ignored */
    bool flushed;
    uint64_t unflushed;    /* dirty keys left at exit */
    int64_t now;           /* CLOCK_MONOTONIC ns at the top of this loop turn */
} md_worker;

struct md_runtime {
    const md_config *cfg;
    md_listener listeners[MD_MAX_LISTEN];
    md_redis_target redis_target;
    struct md_topo_service *topo; /* Redis Cluster mode, else NULL */
    int nworkers;
    md_worker *workers;
    md_ring *rings;        /* rings[from * n + to] */
    _Atomic int stop;      /* SIGTERM/SIGINT seen */
    _Atomic int stopped_reading; /* workers past phase 1 */
    _Atomic int ready;     /* workers whose loop is running */
    _Atomic int failed;    /* a worker could not start */
};

int md_runtime_start(md_runtime *rt);
/* Requests shutdown and joins workers; returns keys left unwritten. */
uint64_t md_runtime_stop(md_runtime *rt);
void md_runtime_stats(md_runtime *rt, md_stats *sum);
/* After md_runtime_stop: every worker's histograms merged into the given
 * (reset) ones. */
void md_runtime_histograms(md_runtime *rt, md_hist *latency, md_hist *rtt, md_hist *batch);
void md_runtime_free(md_runtime *rt);

int64_t md_now_ns(void);

/* A free SQE on the worker's ring, submitting first if the queue is full. */
struct io_uring_sqe *md_worker_sqe(md_worker *w);

#endif
