/*
 * md_redis: one worker's connection to Redis, driven by the worker's
 * io_uring, and its batch writer.
 *
 * Bytes move through io_uring (connect, send, recv); replies are parsed
 * with hiredis's redisReader. The transport is TCP, a Unix socket, or TLS:
 * then md_tls (OpenSSL over memory BIOs) encrypts each batch before its
 * send and decrypts after each recv, so the io_uring operations and the
 * state machine are the same for all three.
 *
 * Batching: the writer takes dirty symbols from the coalescer and formats
 * them into one buffer of pipelined SETEX commands, written with one send.
 * A new batch is started only when the previous send completed and fewer
 * than max_inflight batches await replies: an idle link gets every update
 * at once, a busy link lets updates coalesce and batches grow.
 *
 * Every command in flight is remembered in order (md_cmd), so each reply
 * is matched to the key it answers: an error puts that key back on the
 * dirty queue when the error class says a retry can succeed, and a lost
 * connection puts back every key not yet acknowledged. Reactions per
 * error class are in docs/connectivity.md.
 */
#ifndef MD_REDIS_H
#define MD_REDIS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "md_config.h"
#include "md_format.h"
#include "md_tls.h"

struct md_worker;
struct md_cluster;
struct md_sym;
struct md_account;
struct redisReader;

typedef enum md_redis_state {
    MD_REDIS_DOWN = 0,   /* waiting for backoff to expire */
    MD_REDIS_CONNECTING, /* connect submitted */
    MD_REDIS_TLS_HELLO,  /* TLS handshake */
    MD_REDIS_HANDSHAKE,  /* AUTH/SELECT/CLIENT SETNAME sent */
    MD_REDIS_READY,
    MD_REDIS_CLOSING,    /* shut down, waiting for pending ops to complete */
} md_redis_state;

/* Resolved once by main; read-only afterwards. */
typedef struct md_redis_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char display[300]; /* host:port or path, no credentials */
    char host[256];    /* cluster nodes: the address the map gives, to find it again */
    uint16_t port;
    md_tls_ctx *tls;   /* rediss:// only; shared, read-only */
} md_redis_target;

int md_redis_resolve(const md_redis_url *u, md_redis_target *t, char *err, size_t errlen);

/* What a reply answers; the handshake ones come first on a connection. */
typedef enum md_cmd_kind {
    MD_CMD_AUTH,
    MD_CMD_SELECT,
    MD_CMD_SETNAME,
    MD_CMD_ASKING, /* before the one command an ASK redirect sends to its target */
    MD_CMD_LATEST, /* SETEX of the price key */
    MD_CMD_GOOD,   /* SET/SETEX of the price fallback key */
    MD_CMD_PUBLISH,/* PUBLISH of a changed price (price_channel) */
    /* Account classes: SETEX of the value, or DEL of a terminal order. */
    MD_CMD_POSITIONS,
    MD_CMD_BALANCE,
    MD_CMD_ACCOUNT,
    MD_CMD_ORDER,
    MD_CMD_ORDER_DEL,
    MD_CMD_ORDER_LIST,
} md_cmd_kind;

/* One command in flight, in send order. */
typedef struct md_cmd {
    union {
        struct md_sym *s;     /* price kinds: the symbol written */
        struct md_account *a; /* account kinds */
    };
    int64_t first_ns;  /* origin of the oldest tick the write carries; 0 = refresh */
    uint32_t ticks;    /* ticks coalesced into the write */
    int32_t order;     /* MD_CMD_ORDER / _DEL: the order slot */
    uint32_t del_gen;  /* MD_CMD_ORDER_DEL: the slot's del_gen when sent */
    uint8_t kind;      /* md_cmd_kind */
} md_cmd;

typedef struct md_batch {
    uint32_t ncmds;    /* commands sent = replies expected */
    uint32_t next;     /* index of the command the next reply answers */
    uint32_t keys;     /* symbols in the batch */
    uint32_t errors;   /* error replies so far */
    uint8_t handshake; /* AUTH/SELECT/SETNAME, not data */
    int64_t sent_ns;
    md_cmd *cmds;
} md_batch;

/* Error replies by what we do about them. */
typedef enum md_rerr {
    MD_RERR_OOM,      /* keep the key, pause writes */
    MD_RERR_READONLY, /* keep the key, reconnect: the node was demoted */
    MD_RERR_LOADING,  /* keep the key, pause writes */
    MD_RERR_BUSY,     /* keep the key, pause writes */
    MD_RERR_AUTH,     /* NOAUTH/WRONGPASS: keep the key, reconnect (re-authenticate) */
    MD_RERR_NOPERM,   /* keep the key, pause writes until the ACL allows them */
    MD_RERR_MOVED,    /* cluster: the slot has another owner; map updated, key re-routed */
    MD_RERR_ASK,      /* cluster: the slot is migrating; the key goes once to the target */
    MD_RERR_CLUSTERDOWN, /* TRYAGAIN/CLUSTERDOWN: keep the key, pause this node's writes */
    MD_RERR_OTHER,    /* log; the key goes out again on its next change or refresh */
} md_rerr;

/* The class of an error reply's text ("OOM command not allowed ..."). */
md_rerr md_redis_error_class(const char *msg);
extern const char *const md_rerr_name[];

/* The key templates every writer formats with. */
typedef struct md_keys {
    md_keytpl price, good, chan;
    md_keytpl acct[MD_CMD_ORDER_LIST + 1]; /* account kinds' keys, by md_cmd_kind */
} md_keys;
int md_keys_init(md_keys *k, const md_config *cfg);

/* Cluster mode: one key to write on one node, waiting in that node's
 * queue. The value is formatted when the node's batch is built, so a node
 * that is slow or down gets the latest value, once, when it can take it. */
typedef struct md_route {
    void *p;       /* md_sym (price kinds) or md_account */
    int64_t first_ns; /* LATEST: origin of the oldest tick it carries (the symbol's own
                       * first_dirty_ns moves on to newer ticks while it waits) */
    int32_t order; /* MD_CMD_ORDER: the order slot (SETEX if working, DEL if ended) */
    uint8_t kind;  /* LATEST, GOOD, POSITIONS, BALANCE, ACCOUNT, ORDER, ORDER_LIST */
    uint8_t ask;   /* an ASK redirect's one try: ASKING goes first */
} md_route;

typedef struct md_redis {
    struct md_worker *w;
    const md_config *cfg;
    const md_redis_target *target;
    md_redis_state state;
    int fd;
    uint32_t gen;         /* bumps per connection: stale completions are recognised */
    uint8_t send_busy, recv_busy, connect_busy;
    bool ever_connected;
    bool clean;           /* this connection had a batch without errors */
    md_tls *tls;          /* TLS targets: this connection's session */
    char *wbuf;           /* commands as formatted (plaintext) */
    size_t wcap, wlen, woff;
    char *cbuf;           /* TLS: ciphertext being sent */
    size_t ccap, clen, coff;
    char *rbuf;           /* what recv delivered (ciphertext under TLS) */
    size_t rcap;
    char *pbuf;           /* TLS: decrypted replies */
    struct redisReader *reader;
    md_batch *batches;    /* FIFO, max_inflight + 1 entries */
    md_cmd *cmds;         /* bcap * (2 * max_batch): backing of md_batch.cmds */
    uint32_t bhead, blen, bcap;
    int64_t phase_ns;     /* when CONNECTING/TLS/HANDSHAKE began */
    int64_t ready_ns;     /* when READY began */
    int64_t retry_at_ns;  /* when DOWN: next connect attempt */
    double backoff_s;
    int64_t hold_until_ns;/* OOM/LOADING/BUSY/NOPERM: no new batch before this */
    double hold_s;
    int64_t acct_hold_until_ns; /* NOPERM on an account key: no account writes before this */
    double acct_hold_s;
    uint64_t rng;
    md_keys keys;
    /* Cluster mode (cl != NULL): this is one primary's connection, index
     * idx of the worker's md_cluster, fed from its own queue. */
    struct md_cluster *cl;
    uint32_t idx;
    md_route *nq;         /* FIFO ring, nq_cap entries (power of two) */
    uint32_t nq_head, nq_len, nq_cap;
    bool wanted;          /* owns slots, or has work: (re)connect when down */
    bool cluster_hold;    /* hold_until_ns is for CLUSTERDOWN/TRYAGAIN: a whole map ends it */
    char *abuf;           /* one account value being formatted */
    size_t acap;
} md_redis;

int md_redis_init(md_redis *r, struct md_worker *w, const md_config *cfg,
                  const md_redis_target *target);
void md_redis_free(md_redis *r);

/* Cluster mode: the same for one primary's connection (idx in user_data). */
int md_redis_init_node(md_redis *r, struct md_worker *w, const md_config *cfg,
                       const md_redis_target *target, struct md_cluster *cl, uint32_t idx);
/* Appends e to the node's queue. -1 when out of memory. */
int md_redis_enqueue(md_redis *r, const md_route *e);

/* Called by the worker every loop turn: connects when due, starts a batch
 * when the link can take one. */
void md_redis_poll(md_redis *r, int64_t now);

/* Completion handlers; `gen` is the connection generation from user_data. */
void md_redis_on_connect(md_redis *r, uint32_t gen, int res, int64_t now);
void md_redis_on_send(md_redis *r, uint32_t gen, int res, int64_t now);
void md_redis_on_recv(md_redis *r, uint32_t gen, int res, int64_t now);

/* True when nothing is dirty and nothing awaits a reply. */
bool md_redis_idle(const md_redis *r);

/* Keys sent but not acknowledged (at exit: not known to be written). */
uint64_t md_redis_unacked(const md_redis *r);

#endif
