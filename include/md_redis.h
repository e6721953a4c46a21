/*
 * md_redis: one worker's connection to Redis, driven by the worker's
 * io_uring, and its batch writer.
 *
 * Bytes move through io_uring (connect, send, recv); replies are parsed
 * with hiredis's redisReader. The transport is a plain fd today (TCP or
 * Unix socket); TLS (issue #4) slots in as a filter between the batch
 * buffer and the socket: OpenSSL over memory BIOs, encrypting wbuf into a
 * cipher buffer before the send and decrypting rbuf after the recv, so the
 * io_uring operations and the state machine stay as they are.
 *
 * Batching: the writer takes dirty symbols from the coalescer and formats
 * them into one buffer of pipelined SETEX commands, written with one send.
 * A new batch is started only when the previous send completed and fewer
 * than max_inflight batches await replies: an idle link gets every update
 * at once, a busy link lets updates coalesce and batches grow.
 */
#ifndef MD_REDIS_H
#define MD_REDIS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "md_config.h"
#include "md_format.h"

struct md_worker;
struct redisReader;

typedef enum md_redis_state {
    MD_REDIS_DOWN = 0,   /* waiting for backoff to expire */
    MD_REDIS_CONNECTING, /* connect submitted */
    MD_REDIS_HANDSHAKE,  /* AUTH/SELECT sent */
    MD_REDIS_READY,
    MD_REDIS_CLOSING,    /* shut down, waiting for pending ops to complete */
} md_redis_state;

/* Resolved once by main; read-only afterwards. */
typedef struct md_redis_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char display[300]; /* host:port or path, no credentials */
} md_redis_target;

int md_redis_resolve(const md_redis_url *u, md_redis_target *t, char *err, size_t errlen);

/* Per symbol in a batch, what its acknowledgement means for latency. */
typedef struct md_batch_lat {
    int64_t first_ns; /* origin of the oldest tick the write carries; 0 = refresh */
    uint32_t ticks;   /* ticks coalesced into the write */
} md_batch_lat;

typedef struct md_batch {
    uint32_t replies;    /* replies still expected */
    uint32_t keys;       /* symbols in the batch */
    uint8_t handshake;   /* AUTH/SELECT, not data */
    int64_t sent_ns;
    md_batch_lat *lat;   /* keys entries */
} md_batch;

typedef struct md_redis {
    struct md_worker *w;
    const md_config *cfg;
    const md_redis_target *target;
    md_redis_state state;
    int fd;
    uint32_t gen;         /* bumps per connection: stale completions are recognised */
    uint8_t send_busy, recv_busy, connect_busy;
    bool ever_connected;
    bool need_reassert;   /* mark every key dirty once READY */
    char *wbuf;
    size_t wcap, wlen, woff;
    char *rbuf;
    size_t rcap;
    struct redisReader *reader;
    md_batch *batches;    /* FIFO, max_inflight + 1 entries */
    md_batch_lat *lat;    /* bcap * max_batch: backing of md_batch.lat */
    uint32_t bhead, blen, bcap;
    int64_t retry_at_ns;  /* when DOWN: next connect attempt */
    double backoff_s;
    uint64_t rng;
    md_keytpl price_tpl, good_tpl;
    char *ttl_str;
} md_redis;

int md_redis_init(md_redis *r, struct md_worker *w, const md_config *cfg,
                  const md_redis_target *target);
void md_redis_free(md_redis *r);

/* Called by the worker every loop turn: connects when due, starts a batch
 * when the link can take one. */
void md_redis_poll(md_redis *r, int64_t now);

/* Completion handlers; `gen` is the connection generation from user_data. */
void md_redis_on_connect(md_redis *r, uint32_t gen, int res, int64_t now);
void md_redis_on_send(md_redis *r, uint32_t gen, int res, int64_t now);
void md_redis_on_recv(md_redis *r, uint32_t gen, int res, int64_t now);

/* True when nothing is dirty and nothing awaits a reply. */
bool md_redis_idle(const md_redis *r);

#endif
