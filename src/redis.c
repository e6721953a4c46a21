/*
 * md_redis: a worker's Redis connection and batch writer. See
 * include/md_redis.h.
 *
 * The connection is a small state machine advanced by io_uring
 * completions: DOWN -> CONNECTING -> [TLS] -> HANDSHAKE (AUTH, SELECT,
 * CLIENT SETNAME) -> READY, and on any error CLOSING -> DOWN with capped,
 * jittered exponential backoff. Keys of batches that were not acknowledged
 * when a connection is lost are queued again, and on READY every key of a
 * live source is re-asserted: we cannot know what Redis kept (it may have
 * restarted empty), so readers converge either way.
 *
 * Replies are parsed by hiredis's redisReader with our own reply-object
 * functions: SETEX answers "+OK" a million times a second, and building a
 * heap redisReply for each one to throw it away would be most of the cost.
 * We only need the type of each top-level reply and the text of errors.
 */
#include "md_redis.h"

#include <errno.h>
#include <hiredis/read.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "md_account.h"
#include "md_cluster.h"
#include "md_log.h"
#include "md_state.h"
#include "md_worker.h"

#define MD_RBUF 65536
#define MD_CBUF (256 * 1024) /* TLS: ciphertext taken per send */
#define MD_KEY_MAX 320
#define MD_VAL_MAX 512
/* Room one key needs in the batch buffer: SETEX latest, SET last_good,
 * PUBLISH. */
#define MD_CMDS_PER_KEY 3
#define MD_PER_KEY_MAX (MD_CMDS_PER_KEY * (MD_KEY_MAX + MD_VAL_MAX + 64))

/* ---- reply objects --------------------------------------------------- */

static char md_reply_sentinel;

typedef struct reply_sink {
    int type;
    char err[160];
} reply_sink;

static void *on_string(const redisReadTask *t, char *s, size_t len)
{
    if (!t->parent) {
        reply_sink *k = t->privdata;
        k->type = t->type;
        if (t->type == REDIS_REPLY_ERROR) {
            size_t n = len < sizeof k->err - 1 ? len : sizeof k->err - 1;
            memcpy(k->err, s, n);
            k->err[n] = 0;
        }
    }
    return &md_reply_sentinel;
}
static void *on_array(const redisReadTask *t, int n)
{
    (void)n;
    if (!t->parent) ((reply_sink *)t->privdata)->type = t->type;
    return &md_reply_sentinel;
}
static void *on_integer(const redisReadTask *t, long long v)
{
    (void)v;
    if (!t->parent) ((reply_sink *)t->privdata)->type = t->type;
    return &md_reply_sentinel;
}
static void *on_nil(const redisReadTask *t)
{
    if (!t->parent) ((reply_sink *)t->privdata)->type = t->type;
    return &md_reply_sentinel;
}
static void on_free(void *o) { (void)o; }

static redisReplyObjectFunctions md_reply_fns = {on_string, on_array, on_integer, on_nil, on_free};

/* hiredis 0.14 copies reader->privdata into every task: it is our sink. */

/* ---- set-up ---------------------------------------------------------- */

int md_redis_resolve(const md_redis_url *u, md_redis_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (u->kind == MD_REDIS_UNIX) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(u->path) >= sizeof sun.sun_path) {
            snprintf(err, errlen, "redis socket path too long: %s", u->path);
            return -1;
        }
        strcpy(sun.sun_path, u->path);
        memcpy(&t->addr, &sun, sizeof sun);
        t->addrlen = sizeof sun;
        snprintf(t->display, sizeof t->display, "unix:%s", u->path);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "redis host '%s': %s", u->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(t->host, sizeof t->host, "%s", u->host);
    t->port = u->port;
    snprintf(t->display, sizeof t->display, "%s%s%s:%u", strchr(u->host, ':') ? "[" : "", u->host,
             strchr(u->host, ':') ? "]" : "", u->port);
    return 0;
}

static reply_sink *sink(md_redis *r) { return r->reader->privdata; }

static int new_reader(md_redis *r)
{
    if (r->reader) {
        free(r->reader->privdata);
        r->reader->privdata = NULL;
        redisReaderFree(r->reader);
    }
    r->reader = redisReaderCreateWithFunctions(&md_reply_fns);
    if (!r->reader) return -1;
    reply_sink *k = calloc(1, sizeof *k);
    if (!k) return -1;
    r->reader->privdata = k;
    return 0;
}

int md_redis_init(md_redis *r, struct md_worker *w, const md_config *cfg,
                  const md_redis_target *target)
{
    memset(r, 0, sizeof *r);
    r->w = w;
    r->cfg = cfg;
    r->target = target;
    r->fd = -1;
    r->state = MD_REDIS_DOWN;
    /* An account value can be far longer than a price (an order list of
     * max_orders orders): the buffer holds a full batch of prices or one
     * such value, whichever is more. */
    r->acap = md_account_value_max(cfg->max_positions, cfg->max_orders);
    r->abuf = malloc(r->acap);
    r->wcap = (size_t)cfg->max_batch * MD_PER_KEY_MAX + r->acap + MD_KEY_MAX + 4096;
    r->wbuf = malloc(r->wcap);
    if (!r->abuf) return -1;
    r->rcap = MD_RBUF;
    r->rbuf = malloc(r->rcap);
    if (target->tls) {
        r->ccap = MD_CBUF;
        r->cbuf = malloc(r->ccap);
        r->pbuf = malloc(r->rcap);
        if (!r->cbuf || !r->pbuf) return -1;
    }
    r->bcap = cfg->max_inflight + 1;
    r->batches = calloc(r->bcap, sizeof *r->batches);
    /* Per batch: MD_CMDS_PER_KEY commands per key at most; the handshake
     * needs three. */
    const size_t per = MD_CMDS_PER_KEY * (size_t)cfg->max_batch + 4;
    r->cmds = calloc((size_t)r->bcap * per, sizeof *r->cmds);
    if (!r->wbuf || !r->rbuf || !r->batches || !r->cmds || new_reader(r)) return -1;
    for (uint32_t i = 0; i < r->bcap; i++) r->batches[i].cmds = r->cmds + (size_t)i * per;
    r->backoff_s = cfg->reconnect_min_s;
    r->hold_s = cfg->reconnect_min_s;
    r->acct_hold_s = cfg->reconnect_min_s;
    r->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->id << 32) ^ (uint64_t)md_now_ns();
    return md_keys_init(&r->keys, cfg);
}

int md_keys_init(md_keys *k, const md_config *cfg)
{
    memset(k, 0, sizeof *k);
    if (md_keytpl_init(&k->price, cfg->key_prefix, cfg->price_key)) return -1;
    if (cfg->last_good_key[0] && md_keytpl_init(&k->good, cfg->key_prefix, cfg->last_good_key))
        return -1;
    if (cfg->price_channel[0] && md_keytpl_init(&k->chan, cfg->key_prefix, cfg->price_channel))
        return -1;
    static const struct { uint8_t kind; size_t off; } acct_keys[] = {
        {MD_CMD_POSITIONS, offsetof(md_config, positions_key)},
        {MD_CMD_BALANCE, offsetof(md_config, balances_key)},
        {MD_CMD_ACCOUNT, offsetof(md_config, accounts_key)},
        {MD_CMD_ORDER, offsetof(md_config, order_key)},
        {MD_CMD_ORDER_DEL, offsetof(md_config, order_key)},
        {MD_CMD_ORDER_LIST, offsetof(md_config, order_list_key)},
    };
    for (size_t i = 0; i < sizeof acct_keys / sizeof acct_keys[0]; i++) {
        const char *tpl = (const char *)cfg + acct_keys[i].off;
        bool two = acct_keys[i].kind == MD_CMD_ORDER || acct_keys[i].kind == MD_CMD_ORDER_DEL;
        /* An empty template leaves nvars 0: that class is not written. */
        if (tpl[0] && md_keytpl_init_vars(&k->acct[acct_keys[i].kind], cfg->key_prefix, tpl,
                                          "{account}", two ? "{order_id}" : NULL))
            return -1;
    }
    return 0;
}

int md_redis_init_node(md_redis *r, struct md_worker *w, const md_config *cfg,
                       const md_redis_target *target, struct md_cluster *cl, uint32_t idx)
{
    if (md_redis_init(r, w, cfg, target)) return -1;
    r->cl = cl;
    r->idx = idx;
    r->nq_cap = 1024;
    r->nq = malloc(r->nq_cap * sizeof *r->nq);
    return r->nq ? 0 : -1;
}

int md_redis_enqueue(md_redis *r, const md_route *e)
{
    if (r->nq_len == r->nq_cap) {
        /* Doubling unrolls the ring: entries [head, cap) then [0, head). */
        md_route *q = malloc(2 * (size_t)r->nq_cap * sizeof *q);
        if (!q) return -1;
        uint32_t first = r->nq_cap - r->nq_head;
        memcpy(q, r->nq + r->nq_head, first * sizeof *q);
        memcpy(q + first, r->nq, r->nq_head * sizeof *q);
        free(r->nq);
        r->nq = q;
        r->nq_head = 0;
        r->nq_cap *= 2;
    }
    r->nq[(r->nq_head + r->nq_len++) & (r->nq_cap - 1)] = *e;
    r->wanted = true;
    return 0;
}

void md_redis_free(md_redis *r)
{
    if (r->fd >= 0) close(r->fd);
    if (r->reader) {
        free(r->reader->privdata);
        r->reader->privdata = NULL;
        redisReaderFree(r->reader);
    }
    md_tls_free(r->tls);
    free(r->wbuf);
    free(r->abuf);
    free(r->cbuf);
    free(r->rbuf);
    free(r->pbuf);
    free(r->batches);
    free(r->cmds);
    free(r->nq);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

/* ---- error classes --------------------------------------------------- */

const char *const md_rerr_name[] = {"OOM",   "READONLY", "LOADING",     "BUSY", "AUTH",
                                     "NOPERM", "MOVED",    "ASK",         "CLUSTERDOWN", "other"};

md_rerr md_redis_error_class(const char *msg)
{
    /* The first word of an error reply is its code (Redis's convention). */
    static const struct { const char *code; md_rerr cls; } codes[] = {
        {"OOM", MD_RERR_OOM},         {"READONLY", MD_RERR_READONLY},
        {"LOADING", MD_RERR_LOADING}, {"BUSY", MD_RERR_BUSY},
        {"NOAUTH", MD_RERR_AUTH},     {"WRONGPASS", MD_RERR_AUTH},
        {"NOPERM", MD_RERR_NOPERM},   {"MOVED", MD_RERR_MOVED},
        {"ASK", MD_RERR_ASK},         {"TRYAGAIN", MD_RERR_CLUSTERDOWN},
        {"CLUSTERDOWN", MD_RERR_CLUSTERDOWN},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i].code);
        if (strncmp(msg, codes[i].code, n) == 0 && (msg[n] == ' ' || msg[n] == '\0'))
            return codes[i].cls;
    }
    return MD_RERR_OTHER;
}

static const char *cmd_class(uint8_t kind)
{
    switch (kind) {
    case MD_CMD_GOOD: return "price fallback";
    case MD_CMD_PUBLISH: return "price push";
    case MD_CMD_POSITIONS: return "positions";
    case MD_CMD_BALANCE: return "balances";
    case MD_CMD_ACCOUNT: return "accounts";
    case MD_CMD_ORDER: return "order";
    case MD_CMD_ORDER_DEL: return "order delete";
    case MD_CMD_ORDER_LIST: return "order list";
    default: return "price";
    }
}

static bool is_account_kind(uint8_t kind) { return kind >= MD_CMD_POSITIONS; }

/* The account class a command writes (MD_AC_COUNT: one order's key). */
static int cmd_acls(uint8_t kind)
{
    switch (kind) {
    case MD_CMD_POSITIONS: return MD_AC_POSITIONS;
    case MD_CMD_BALANCE: return MD_AC_BALANCE;
    case MD_CMD_ACCOUNT: return MD_AC_INFO;
    case MD_CMD_ORDER_LIST: return MD_AC_ORDERS;
    default: return MD_AC_COUNT;
    }
}

/* What a data command wrote, for logs: the symbol or the account. */
static const char *cmd_name(const md_cmd *c) { return is_account_kind(c->kind) ? c->a->name : c->s->symbol; }

/* ---- connection state machine --------------------------------------- */

static double jitter01(md_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (double)(r->rng >> 11) / (double)(1ull << 53);
}

/* Full jitter over the upper half of the window: clients that lost the
 * same server at once do not all come back in the same millisecond. */
static int64_t backoff_step(md_redis *r, double *cur, int64_t now)
{
    double d = *cur * (0.5 + 0.5 * jitter01(r));
    *cur *= 2;
    if (*cur > r->cfg->reconnect_max_s) *cur = r->cfg->reconnect_max_s;
    return now + (int64_t)(d * 1e9);
}

static void finish_close(md_redis *r, int64_t now)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->state = MD_REDIS_DOWN;
    r->retry_at_ns = backoff_step(r, &r->backoff_s, now);
}

/* A write that failed or was never acknowledged: its key goes back on the
 * dirty queue, so its current value is written again. */
static void requeue(md_redis *r, const md_cmd *c)
{
    md_sym *s = c->s;
    if (c->kind == MD_CMD_GOOD) {
        s->last_good_due = 1;
        s->last_good_ns = 0;
        md_state_requeue(&r->w->state, s, 0, 0);
    } else if (c->kind == MD_CMD_LATEST) {
        md_state_requeue(&r->w->state, s, c->first_ns, c->ticks);
    } else if (is_account_kind(c->kind)) {
        md_accounts_requeue(&r->w->accounts, c->a, cmd_acls(c->kind), c->order);
    }
}

static void requeue_unacked(md_redis *r)
{
    for (uint32_t i = 0; i < r->blen; i++) {
        md_batch *b = &r->batches[(r->bhead + i) % r->bcap];
        for (uint32_t j = b->next; j < b->ncmds; j++) requeue(r, &b->cmds[j]);
    }
}

uint64_t md_redis_unacked(const md_redis *r)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < r->blen; i++) {
        const md_batch *b = &r->batches[(r->bhead + i) % r->bcap];
        for (uint32_t j = b->next; j < b->ncmds; j++)
            n += b->cmds[j].kind == MD_CMD_LATEST || is_account_kind(b->cmds[j].kind);
    }
    return n;
}

static void fail(md_redis *r, int64_t now)
{
    if (r->state == MD_REDIS_DOWN || r->state == MD_REDIS_CLOSING) return;
    requeue_unacked(r);
    /* A cluster node that fails may have been replaced by its replica. */
    if (r->cl) md_cluster_want_refresh(r->cl);
    /* A connection that worked starts the backoff over; one that fails as
     * soon as it writes (READONLY, NOAUTH) keeps doubling it. */
    if (r->state == MD_REDIS_READY && (r->clean || now - r->ready_ns >= 1000000000LL))
        r->backoff_s = r->cfg->reconnect_min_s;
    r->blen = 0;
    r->bhead = 0;
    r->wlen = r->woff = 0;
    r->clen = r->coff = 0;
    if (r->fd >= 0) shutdown(r->fd, SHUT_RDWR);
    r->state = MD_REDIS_CLOSING;
    if (!r->send_busy && !r->recv_busy && !r->connect_busy) finish_close(r, now);
}

/* Completions that arrive while closing only count down the pending
 * operations; the last one closes the socket. True if closing. */
static bool absorb_if_closing(md_redis *r, int64_t now)
{
    if (r->state != MD_REDIS_CLOSING) return false;
    if (!r->send_busy && !r->recv_busy && !r->connect_busy) finish_close(r, now);
    return true;
}

static void arm_recv(md_redis *r)
{
    struct io_uring_sqe *sqe = md_worker_sqe(r->w);
    io_uring_prep_recv(sqe, r->fd, r->rbuf, r->rcap, 0);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_RECV, r->idx, r->gen));
    r->recv_busy = 1;
}

static void submit_send(md_redis *r, const char *p, size_t n)
{
    struct io_uring_sqe *sqe = md_worker_sqe(r->w);
    io_uring_prep_send(sqe, r->fd, p, n, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_SEND, r->idx, r->gen));
    r->send_busy = 1;
}

/* ---- the byte path: plaintext commands -> [TLS] -> socket ------------ */

/* True while bytes of earlier commands have not all been handed to the
 * kernel: the next batch waits, so it can grow. */
static bool out_busy(const md_redis *r)
{
    if (r->send_busy) return true;
    return r->tls ? r->clen > r->coff || md_tls_pending(r->tls) > 0 : r->wlen > r->woff;
}

static void out_flush(md_redis *r)
{
    if (r->send_busy) return;
    if (r->tls) {
        if (r->coff >= r->clen) {
            r->clen = md_tls_take_cipher(r->tls, r->cbuf, r->ccap);
            r->coff = 0;
        }
        if (r->clen > r->coff) submit_send(r, r->cbuf + r->coff, r->clen - r->coff);
    } else if (r->wlen > r->woff) {
        submit_send(r, r->wbuf + r->woff, r->wlen - r->woff);
    }
}

/* wbuf[0, len) holds formatted commands: send them (encrypted first under
 * TLS, which frees wbuf at once). */
static int queue_commands(md_redis *r, size_t len)
{
    if (r->tls) {
        if (md_tls_write(r->tls, r->wbuf, len)) return -1;
        r->wlen = r->woff = 0;
    } else {
        r->wlen = len;
        r->woff = 0;
    }
    out_flush(r);
    return 0;
}

static void start_connect(md_redis *r, int64_t now)
{
    int fam = r->target->addr.ss_family;
    r->fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        MD_LOG_RL(MD_LOG_ERROR, 2, "redis: socket: %s", strerror(errno));
        r->state = MD_REDIS_CLOSING;
        finish_close(r, now);
        return;
    }
    if (fam != AF_UNIX) {
        int one = 1;
        setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (r->cfg->keepalive_s > 0) {
            /* The kernel's default waits two hours before the first probe:
             * a Redis host that vanished would hold our batches that long. */
            int idle = (int)r->cfg->keepalive_s, cnt = 3;
            if (idle < 1) idle = 1;
            int intvl = idle / 3 > 0 ? idle / 3 : 1;
            setsockopt(r->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
            setsockopt(r->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
            setsockopt(r->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
            setsockopt(r->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        }
    }
    r->gen++;
    /* The connect and its linked timeout must go in one submission. */
    if (io_uring_sq_space_left(&r->w->ring) < 2) io_uring_submit(&r->w->ring);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->w->ring);
    io_uring_prep_connect(sqe, r->fd, (struct sockaddr *)&r->target->addr, r->target->addrlen);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_CONNECT, r->idx, r->gen));
    sqe->flags |= IOSQE_IO_LINK;
    static __thread struct __kernel_timespec ts; /* must outlive the submit */
    double t = r->cfg->connect_timeout_s;
    ts.tv_sec = (long long)t;
    ts.tv_nsec = (long long)((t - (double)ts.tv_sec) * 1e9);
    struct io_uring_sqe *to = io_uring_get_sqe(&r->w->ring);
    io_uring_prep_link_timeout(to, &ts, 0);
    io_uring_sqe_set_data64(to, md_ud(MD_OP_IGNORE, 0, 0));
    io_uring_submit(&r->w->ring); /* ts is read at submit time */
    r->connect_busy = 1;
    r->state = MD_REDIS_CONNECTING;
    r->phase_ns = now;
}

static void become_ready(md_redis *r, int64_t now)
{
    r->state = MD_REDIS_READY;
    r->ready_ns = now;
    r->clean = false;
    if (r->ever_connected) {
        r->w->st.reconnects++;
        md_info("worker %d: redis %s reconnected; re-asserting the keys of live sources",
                r->w->id, r->target->display);
    } else {
        md_info("worker %d: connected to redis %s%s", r->w->id, r->target->display,
                r->tls ? " (TLS)" : "");
    }
    r->ever_connected = true;
    /* A cluster node re-asserts the price keys it owns (the others'
     * nodes did not go anywhere); account values, far fewer, go whole. */
    md_state_mark_live_dirty_where(&r->w->state, &r->w->sources, r->w->now,
                                   (int64_t)(r->cfg->source_timeout_s * 1e9),
                                   r->cl ? md_cluster_sym_on : NULL, r);
    md_accounts_mark_live_dirty(&r->w->accounts, &r->w->sources, r->w->now,
                                (int64_t)(r->cfg->source_timeout_s * 1e9));
}

static void handshake_failed(md_redis *r, int64_t now, const char *what, const char *why)
{
    r->w->st.handshake_failures++;
    MD_LOG_RL(MD_LOG_ERROR, 1, "worker %d: redis %s %s: %s; retrying with backoff", r->w->id,
              r->target->display, what, why);
    fail(r, now);
}

/* After connect (and TLS): AUTH, SELECT and CLIENT SETNAME in one write. */
static void start_session(md_redis *r, int64_t now)
{
    if (new_reader(r)) {
        fail(r, now);
        return;
    }
    const md_redis_url *u = &r->cfg->redis;
    md_batch *b = &r->batches[0];
    *b = (md_batch){.handshake = 1, .sent_ns = now, .cmds = b->cmds};
    size_t len = 0;
    if (u->pass[0]) {
        len += md_resp_auth(r->wbuf + len, r->wcap - len, u->user, u->pass);
        b->cmds[b->ncmds++] = (md_cmd){.kind = MD_CMD_AUTH};
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        len += md_resp_cmd(r->wbuf + len, r->wcap - len, 2, argv, NULL);
        b->cmds[b->ncmds++] = (md_cmd){.kind = MD_CMD_SELECT};
    }
    if (r->cfg->client_name[0]) {
        /* Named per worker, so CLIENT LIST tells operators which is which. */
        char name[96];
        snprintf(name, sizeof name, "%s-w%d", r->cfg->client_name, r->w->id);
        const char *argv[3] = {"CLIENT", "SETNAME", name};
        len += md_resp_cmd(r->wbuf + len, r->wcap - len, 3, argv, NULL);
        b->cmds[b->ncmds++] = (md_cmd){.kind = MD_CMD_SETNAME};
    }
    if (b->ncmds == 0) {
        become_ready(r, now);
        return;
    }
    r->bhead = 0;
    r->blen = 1;
    r->state = MD_REDIS_HANDSHAKE;
    r->phase_ns = now;
    if (queue_commands(r, len)) handshake_failed(r, now, "TLS", md_tls_error(r->tls));
}

void md_redis_on_connect(md_redis *r, uint32_t gen, int res, int64_t now)
{
    if (gen != r->gen) return;
    r->connect_busy = 0;
    if (absorb_if_closing(r, now)) return;
    if (res < 0) {
        MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: connect: %s", r->w->id,
                  r->target->display, res == -ECANCELED ? "timed out" : strerror(-res));
        fail(r, now);
        return;
    }
    r->wlen = r->woff = r->clen = r->coff = 0;
    r->bhead = r->blen = 0;
    arm_recv(r);
    if (!r->target->tls) {
        start_session(r, now);
        return;
    }
    /* A fresh session per connection: nothing of a failed one is reused. */
    char err[256];
    md_tls_free(r->tls);
    r->tls = md_tls_new(r->target->tls, err, sizeof err);
    if (!r->tls) {
        handshake_failed(r, now, "TLS", err);
        return;
    }
    r->state = MD_REDIS_TLS_HELLO;
    r->phase_ns = now;
    if (md_tls_handshake(r->tls) == MD_TLS_ERR) {
        handshake_failed(r, now, "TLS", md_tls_error(r->tls));
        return;
    }
    out_flush(r); /* the ClientHello */
}

void md_redis_on_send(md_redis *r, uint32_t gen, int res, int64_t now)
{
    if (gen != r->gen) return;
    r->send_busy = 0;
    if (absorb_if_closing(r, now)) return;
    if (res < 0) {
        MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: send: %s", r->w->id, r->target->display,
                  strerror(-res));
        fail(r, now);
        return;
    }
    r->w->st.bytes_out += (uint64_t)res;
    if (r->tls) {
        r->coff += (size_t)res;
        if (r->coff >= r->clen) r->clen = r->coff = 0;
    } else {
        r->woff += (size_t)res;
        if (r->woff >= r->wlen) r->wlen = r->woff = 0;
    }
    out_flush(r); /* the rest of a short write, or more ciphertext */
}

/* OOM, LOADING, BUSY, NOPERM: the connection is fine, Redis cannot take
 * writes for now. Writing on would only collect more of the same errors,
 * so new batches wait, with the reconnect backoff's schedule. */
static void hold_writes(md_redis *r, int64_t now, const char *err, const md_cmd *c)
{
    if (now < r->hold_until_ns) return; /* one step per episode, not per reply */
    r->hold_until_ns = backoff_step(r, &r->hold_s, now);
    MD_LOG_RL(MD_LOG_WARN, 2,
              "worker %d: redis %s refused a %s write: %s; keeping %u dirty keys, writing again "
              "in %.2fs",
              r->w->id, r->target->display, cmd_class(c->kind), err, r->w->state.dq_len,
              (double)(r->hold_until_ns - now) / 1e9);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the slot and the address. */
static bool parse_redirect(const char *err, uint16_t *slot, const char **addr)
{
    const char *p = strchr(err, ' ');
    if (!p) return false;
    char *end;
    unsigned long v = strtoul(p + 1, &end, 10);
    if (end == p + 1 || *end != ' ' || v >= MD_SLOT_COUNT || !end[1]) return false;
    *slot = (uint16_t)v;
    *addr = end + 1;
    return true;
}

/* What a command wrote, as a node queue entry. */
static md_route route_of(const md_cmd *c)
{
    return (md_route){.p = is_account_kind(c->kind) ? (void *)c->a : (void *)c->s,
                      .first_ns = c->first_ns,
                      .order = c->order,
                      .kind = c->kind == MD_CMD_ORDER_DEL ? MD_CMD_ORDER : c->kind};
}

/* The key of c is queued again without going through the dirty queue (an
 * ASK's one try): restore what formatting took from it. */
static void mark_routed(md_redis *r, const md_cmd *c)
{
    (void)r;
    md_sym *s = c->s;
    switch (c->kind) {
    case MD_CMD_LATEST:
        s->routed |= MD_ROUTED_LATEST;
        s->dirty_ticks += c->ticks; /* the entry carries c->first_ns */
        break;
    case MD_CMD_GOOD:
        s->routed |= MD_ROUTED_GOOD;
        break;
    case MD_CMD_ORDER:
    case MD_CMD_ORDER_DEL:
        if ((uint32_t)c->order < c->a->nord) c->a->ord[c->order].routed = 1;
        break;
    default:
        if (is_account_kind(c->kind)) c->a->routed |= (uint8_t)MD_AC_BIT(cmd_acls(c->kind));
        break;
    }
}

/* MOVED: the map learns the slot's owner, and the key goes back on the
 * dirty queue to be routed there. ASK: the key goes to the importing
 * node once, with ASKING; the map stays (the migration is not over). */
static void redirect(md_redis *r, md_cmd *c, md_rerr cls, const char *err)
{
    uint16_t slot;
    const char *addr;
    if (!r->cl || c->kind == MD_CMD_PUBLISH || !parse_redirect(err, &slot, &addr)) {
        MD_LOG_RL(MD_LOG_WARN, 3, "worker %d: redis %s: %s to a %s write for '%s' (%s)",
                  r->w->id, r->target->display, md_rerr_name[cls], cmd_class(c->kind),
                  cmd_name(c), r->cl ? err : "not in cluster mode: set [redis] cluster");
        return;
    }
    if (cls == MD_RERR_MOVED) {
        if (md_cluster_moved(r->cl, slot, addr) == r->idx) {
            /* A node never redirects to itself: this connection reaches
             * another node than the map says. Resending at once would
             * loop; wait for the next map instead. */
            MD_LOG_RL(MD_LOG_ERROR, 1,
                      "worker %d: redis %s answered MOVED to its own address (%s): the "
                      "connection reaches another node; holding its writes",
                      r->w->id, r->target->display, err);
            hold_writes(r, r->w->now, err, c);
        }
        requeue(r, c);
        return;
    }
    md_route e = route_of(c);
    e.ask = 1;
    if (md_cluster_ask(r->cl, addr, &e))
        mark_routed(r, c);
    else
        requeue(r, c);
}

/* An error reply to a data command. False if the connection was dropped. */
static bool on_data_error(md_redis *r, md_cmd *c, const char *err, int64_t now)
{
    md_stats *st = &r->w->st;
    md_rerr cls = md_redis_error_class(err);
    st->redis_errors++;
    switch (cls) {
    case MD_RERR_OOM: st->redis_oom++; break;
    case MD_RERR_READONLY: st->redis_readonly++; break;
    case MD_RERR_LOADING: st->redis_loading++; break;
    case MD_RERR_BUSY: st->redis_busy++; break;
    case MD_RERR_AUTH: st->redis_auth++; break;
    case MD_RERR_NOPERM: st->redis_noperm++; break;
    case MD_RERR_MOVED: st->cluster_moved++; break;
    case MD_RERR_ASK: st->cluster_ask++; break;
    case MD_RERR_CLUSTERDOWN: st->cluster_down++; break;
    case MD_RERR_OTHER: st->redis_other++; break;
    }
    if (c->kind == MD_CMD_ASKING) return true; /* the command after it answers for both */
    switch (cls) {
    case MD_RERR_READONLY:
    case MD_RERR_AUTH:
        /* A demoted node or lost credentials: this connection will refuse
         * every write. Reconnecting re-authenticates, and reaches the new
         * primary if the address now leads there. fail() puts this key and
         * every later one in flight back on the queue. */
        MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s refused a %s write: %s; reconnecting",
                  r->w->id, r->target->display, cmd_class(c->kind), err);
        fail(r, now);
        return false;
    case MD_RERR_NOPERM:
        if (c->kind == MD_CMD_GOOD) {
            /* An ACL that allows the price keys but not the fallback key
             * (say +setex without +set) must not hold up every price: the
             * fallback is tried again at its next interval. */
            c->s->last_good_due = 1;
            MD_LOG_RL(MD_LOG_WARN, 1,
                      "worker %d: redis %s refused a price fallback write: %s; price keys "
                      "go on, the fallback is retried every last_good_interval",
                      r->w->id, r->target->display, err);
            return true;
        }
        if (is_account_kind(c->kind)) {
            /* Same reasoning: an ACL written for price:* must not stop the
             * prices. Account writes alone are held, on the backoff
             * schedule, and the value stays owed (and counted at exit). */
            requeue(r, c);
            if (now >= r->acct_hold_until_ns) {
                r->acct_hold_until_ns = backoff_step(r, &r->acct_hold_s, now);
                MD_LOG_RL(MD_LOG_WARN, 1,
                          "worker %d: redis %s refused a %s write for account '%s': %s; price "
                          "keys go on, account writes are held for %.2fs",
                          r->w->id, r->target->display, cmd_class(c->kind), c->a->name, err,
                          (double)(r->acct_hold_until_ns - now) / 1e9);
            }
            return true;
        }
        if (c->kind == MD_CMD_PUBLISH) {
            /* A push is a courtesy to readers: the key holds the truth. */
            MD_LOG_RL(MD_LOG_WARN, 1,
                      "worker %d: redis %s refused a price push (PUBLISH): %s; keys go on",
                      r->w->id, r->target->display, err);
            return true;
        }
        /* fall through */
    case MD_RERR_OOM:
    case MD_RERR_LOADING:
    case MD_RERR_BUSY:
        if (c->kind == MD_CMD_PUBLISH) return true; /* its SETEX got the same answer */
        requeue(r, c);
        hold_writes(r, now, err, c);
        return true;
    case MD_RERR_MOVED:
    case MD_RERR_ASK:
        redirect(r, c, cls, err);
        return true;
    case MD_RERR_CLUSTERDOWN:
        /* A slot migrating a multi-key command (TRYAGAIN) or a cluster
         * that lost a shard: waiting is all that helps, and the new map
         * may route the key elsewhere. */
        requeue(r, c);
        if (r->cl) md_cluster_want_refresh(r->cl);
        hold_writes(r, now, err, c);
        r->cluster_hold = true;
        return true;
    case MD_RERR_OTHER:
        /* Unknown: retrying at once could loop forever on a permanent
         * error. The key is written again on its next change or refresh. */
        MD_LOG_RL(MD_LOG_WARN, 3, "worker %d: redis %s: error reply to a %s write for '%s': %s",
                  r->w->id, r->target->display, cmd_class(c->kind), cmd_name(c), err);
        return true;
    }
    return true;
}

/* A data command Redis acknowledged. */
static void on_written(md_redis *r, const md_cmd *c, int64_t now)
{
    static const uint8_t wclass[] = {
        [MD_CMD_LATEST] = MD_W_PRICE,        [MD_CMD_GOOD] = MD_W_FALLBACK,
        [MD_CMD_PUBLISH] = MD_W_PUSH,        [MD_CMD_POSITIONS] = MD_W_POSITIONS,
        [MD_CMD_BALANCE] = MD_W_BALANCES,    [MD_CMD_ACCOUNT] = MD_W_ACCOUNTS,
        [MD_CMD_ORDER] = MD_W_ORDER,         [MD_CMD_ORDER_DEL] = MD_W_ORDER_DELETE,
        [MD_CMD_ORDER_LIST] = MD_W_ORDER_LIST,
    };
    md_worker *w = r->w;
    w->st.written[wclass[c->kind]]++;
    if (c->kind == MD_CMD_LATEST) {
        w->st.keys_written++;
        /* Every tick coalesced into a write is charged the latency of the
         * oldest one: an upper bound, counted once per tick so the
         * distribution is per tick like the baselines' (bench/). */
        if (c->first_ns)
            md_hist_record_n(w->h_latency, (uint64_t)(now - c->first_ns), c->ticks);
    } else if (c->kind == MD_CMD_ORDER_DEL) {
        w->st.orders_deleted++;
        md_account_order_deleted(c->a, (uint32_t)c->order, c->del_gen);
    } else if (is_account_kind(c->kind)) {
        w->st.account_writes++;
    }
}

/* One reply, matched to the command it answers. False if the connection
 * was dropped. */
static bool on_reply(md_redis *r, int64_t now)
{
    reply_sink *k = sink(r);
    if (r->blen == 0) {
        md_error("worker %d: redis %s: reply with no command outstanding; reconnecting",
                 r->w->id, r->target->display);
        fail(r, now);
        return false;
    }
    md_batch *b = &r->batches[r->bhead];
    md_cmd *c = &b->cmds[b->next];
    bool is_err = k->type == REDIS_REPLY_ERROR;
    if (b->handshake) {
        if (is_err && c->kind == MD_CMD_AUTH) {
            /* The message (WRONGPASS ...) names no secret. Credentials
             * fixed later (an ACL edited back) are picked up by the retry. */
            handshake_failed(r, now, "refused the credentials", k->err);
            return false;
        }
        if (is_err && c->kind == MD_CMD_SELECT) {
            handshake_failed(r, now, "refused SELECT", k->err);
            return false;
        }
        if (is_err) /* CLIENT SETNAME: only a convenience; an ACL may forbid it */
            md_debug("worker %d: redis %s: CLIENT SETNAME refused: %s", r->w->id,
                     r->target->display, k->err);
    } else if (is_err) {
        b->errors++;
        if (!on_data_error(r, c, k->err, now)) return false;
    } else if (c->kind >= MD_CMD_LATEST) { /* not ASKING: the command after it counts */
        on_written(r, c, now);
    }
    if (++b->next < b->ncmds) return true;

    bool hs = b->handshake;
    if (!hs) {
        md_hist_record(r->w->h_rtt, (uint64_t)(now - b->sent_ns));
        md_hist_record(r->w->h_batch, b->keys);
        r->w->st.batches++;
        if (b->errors == 0) {
            r->clean = true;
            r->cluster_hold = false;
            r->hold_s = r->cfg->reconnect_min_s;
            r->acct_hold_s = r->cfg->reconnect_min_s;
        }
    }
    r->bhead = (r->bhead + 1) % r->bcap;
    r->blen--;
    if (hs) become_ready(r, now);
    return true;
}

static bool feed_replies(md_redis *r, const char *p, size_t n, int64_t now)
{
    if (redisReaderFeed(r->reader, p, n) != REDIS_OK) {
        fail(r, now);
        return false;
    }
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK) {
            md_error("worker %d: redis %s: protocol error: %s", r->w->id, r->target->display,
                     r->reader->errstr);
            fail(r, now);
            return false;
        }
        if (!rep) return true;
        if (!on_reply(r, now)) return false;
    }
}

/* Ciphertext in: finish the handshake, or decrypt and parse replies. */
static bool tls_in(md_redis *r, size_t n, int64_t now)
{
    md_tls_put_cipher(r->tls, r->rbuf, n);
    if (r->state == MD_REDIS_TLS_HELLO) {
        md_tls_rc rc = md_tls_handshake(r->tls);
        if (rc == MD_TLS_ERR || rc == MD_TLS_CLOSED) {
            handshake_failed(r, now, "TLS", rc == MD_TLS_ERR ? md_tls_error(r->tls)
                                                             : "closed during the handshake");
            return false;
        }
        out_flush(r);
        if (rc == MD_TLS_WANT) return true;
        start_session(r, now);
        if (r->state != MD_REDIS_HANDSHAKE && r->state != MD_REDIS_READY) return false;
    }
    for (;;) {
        size_t got;
        md_tls_rc rc = md_tls_read(r->tls, r->pbuf, r->rcap, &got);
        if (rc == MD_TLS_OK) {
            if (!feed_replies(r, r->pbuf, got, now)) return false;
            continue;
        }
        if (rc == MD_TLS_WANT) break;
        /* A server that rejects our client certificate says so here under
         * TLS 1.3: the alert arrives after our side finished. */
        if (r->state == MD_REDIS_HANDSHAKE)
            handshake_failed(r, now, "TLS",
                             rc == MD_TLS_CLOSED ? "closed by the server" : md_tls_error(r->tls));
        else
            MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: TLS: %s", r->w->id,
                      r->target->display,
                      rc == MD_TLS_CLOSED ? "closed by the server" : md_tls_error(r->tls));
        fail(r, now);
        return false;
    }
    out_flush(r); /* post-handshake messages (key updates) may need an answer */
    return true;
}

void md_redis_on_recv(md_redis *r, uint32_t gen, int res, int64_t now)
{
    if (gen != r->gen) return;
    r->recv_busy = 0;
    if (absorb_if_closing(r, now)) return;
    if (res <= 0) {
        const char *why = res == 0 ? "connection closed by server" : strerror(-res);
        if (r->state == MD_REDIS_TLS_HELLO || r->state == MD_REDIS_HANDSHAKE)
            handshake_failed(r, now, "dropped the connection during the handshake", why);
        else
            MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: %s", r->w->id, r->target->display,
                      why);
        fail(r, now);
        return;
    }
    bool ok = r->tls ? tls_in(r, (size_t)res, now) : feed_replies(r, r->rbuf, (size_t)res, now);
    if (ok) arm_recv(r);
}

/* ---- the batch writer ------------------------------------------------ */

/* Room in the batch buffer for one more command carrying vlen value bytes. */
static bool has_room(const md_redis *r, size_t len, size_t vlen)
{
    return r->wcap - len >= MD_KEY_MAX + vlen + 128;
}

/* The account class each account command kind writes, and its TTL. */
static uint32_t acct_ttl(const md_config *cfg, uint8_t kind)
{
    switch (kind) {
    case MD_CMD_POSITIONS: return cfg->positions_ttl_s;
    case MD_CMD_BALANCE: return cfg->balances_ttl_s;
    case MD_CMD_ACCOUNT: return cfg->accounts_ttl_s;
    default: return cfg->orders_ttl_s;
    }
}

/* SETEX of one of a's values (positions, balances, accounts, order list)
 * into the batch at *len, cmds[*n]. False if the batch has no room for it
 * (nothing written). The class's template is known to be set. */
static bool emit_acct(md_redis *r, md_account *a, uint8_t kind, md_cmd *cmds, uint32_t *n,
                      uint32_t max_cmds, size_t *len, int64_t now)
{
    char key[MD_KEY_MAX];
    size_t vlen = kind == MD_CMD_POSITIONS ? md_format_positions(a, r->abuf, r->acap)
                  : kind == MD_CMD_BALANCE ? md_format_balance(a, r->abuf, r->acap)
                  : kind == MD_CMD_ACCOUNT ? md_format_accounts(a, r->abuf, r->acap)
                                           : md_format_orders(a, r->abuf, r->acap);
    if (*n >= max_cmds || !has_room(r, *len, vlen)) return false;
    size_t klen = md_keytpl_format(&r->keys.acct[kind], a->name, a->name_len, key, sizeof key);
    *len += md_resp_setex(r->wbuf + *len, r->wcap - *len, key, klen, acct_ttl(r->cfg, kind),
                          r->abuf, vlen);
    cmds[(*n)++] = (md_cmd){.a = a, .order = -1, .kind = kind};
    a->written_ns[cmd_acls(kind)] = now;
    return true;
}

/* SETEX of working order i's key, or DEL of an ended one's. False if the
 * batch has no room (nothing written). */
static bool emit_order(md_redis *r, md_account *a, int32_t i, md_cmd *cmds, uint32_t *n,
                       uint32_t max_cmds, size_t *len, int64_t now)
{
    char key[MD_KEY_MAX];
    md_order *o = &a->ord[i];
    bool del = o->slot == MD_OSLOT_GONE;
    size_t vlen = del ? 0 : md_format_order(a, o, r->abuf, r->acap);
    if (*n >= max_cmds || !has_room(r, *len, vlen)) return false;
    size_t klen = md_keytpl_format2(&r->keys.acct[MD_CMD_ORDER], a->name, a->name_len, o->id,
                                    o->id_len, key, sizeof key);
    if (del) {
        const char *argv[2] = {"DEL", key};
        size_t lens[2] = {3, klen};
        *len += md_resp_cmd(r->wbuf + *len, r->wcap - *len, 2, argv, lens);
        o->del_gen++;
    } else {
        *len += md_resp_setex(r->wbuf + *len, r->wcap - *len, key, klen, r->cfg->orders_ttl_s,
                              r->abuf, vlen);
    }
    cmds[(*n)++] = (md_cmd){.a = a, .order = i, .del_gen = o->del_gen,
                            .kind = del ? MD_CMD_ORDER_DEL : MD_CMD_ORDER};
    o->written_ns = now;
    return true;
}

/* Writes what account a has due into the batch, from wbuf[*len] and
 * cmds[*n], at most max_cmds commands. True if a has nothing left to
 * write; false if the batch ran out of room first (the rest stays due). */
static bool add_account(md_redis *r, md_account *a, md_cmd *cmds, uint32_t *n, uint32_t max_cmds,
                        size_t *len, int64_t now)
{
    static const struct { int c; uint8_t kind; } simple[] = {
        {MD_AC_POSITIONS, MD_CMD_POSITIONS},
        {MD_AC_BALANCE, MD_CMD_BALANCE},
        {MD_AC_INFO, MD_CMD_ACCOUNT},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        int c = simple[i].c;
        if (!(a->due & MD_AC_BIT(c))) continue;
        /* An empty template switched the class off. */
        if (r->keys.acct[simple[i].kind].nvars &&
            !emit_acct(r, a, simple[i].kind, cmds, n, max_cmds, len, now))
            return false;
        a->due &= (uint8_t)~MD_AC_BIT(c);
    }
    /* Orders before the list, so a reader who finds an id in the list
     * finds its key too. */
    int32_t i;
    while ((i = md_account_next_order(a)) >= 0) {
        md_order *o = &a->ord[i];
        if (r->keys.acct[MD_CMD_ORDER].nvars == 0) { /* no order keys: nothing to delete */
            if (o->slot == MD_OSLOT_GONE) md_account_order_deleted(a, (uint32_t)i, o->del_gen);
            continue;
        }
        if (!emit_order(r, a, i, cmds, n, max_cmds, len, now)) {
            md_accounts_requeue(&r->w->accounts, a, MD_AC_COUNT, i);
            return false;
        }
    }
    if (a->due & MD_AC_BIT(MD_AC_ORDERS)) {
        if (r->keys.acct[MD_CMD_ORDER_LIST].nvars &&
            !emit_acct(r, a, MD_CMD_ORDER_LIST, cmds, n, max_cmds, len, now))
            return false;
        a->due &= (uint8_t)~MD_AC_BIT(MD_AC_ORDERS);
        a->written_ns[MD_AC_ORDERS] = now;
    }
    return md_account_done(a);
}

/* The batch formatted in wbuf[0, len) goes out as b. */
static void send_batch(md_redis *r, md_batch *b, uint32_t ncmds, uint32_t nkeys, size_t len,
                       int64_t now)
{
    *b = (md_batch){.ncmds = ncmds, .keys = nkeys, .sent_ns = now, .cmds = b->cmds};
    r->blen++;
    if (queue_commands(r, len)) {
        MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: TLS: %s", r->w->id, r->target->display,
                  md_tls_error(r->tls));
        fail(r, now);
    }
}

/* SETEX of s's price key, from wbuf[len]; returns the new length. The
 * value is left in val for the fallback key and the push. */
static inline size_t emit_latest(md_redis *r, md_sym *s, md_cmd *cmds, uint32_t *n, size_t len,
                                 char *val, size_t *vlen, int64_t now)
{
    char key[MD_KEY_MAX];
    cmds[(*n)++] = (md_cmd){.s = s, .first_ns = s->first_dirty_ns, .ticks = s->dirty_ticks,
                            .kind = MD_CMD_LATEST};
    s->dirty_ticks = 0;
    *vlen = md_format_price(s, val, MD_VAL_MAX);
    size_t klen = md_keytpl_format(&r->keys.price, s->symbol, s->sym_len, key, sizeof key);
    len += md_resp_setex(r->wbuf + len, r->wcap - len, key, klen, r->cfg->price_ttl_s, val, *vlen);
    s->written_ns = now;
    return len;
}

/* SET (or SETEX with last_good_ttl) of s's fallback key. */
static inline size_t emit_good(md_redis *r, md_sym *s, md_cmd *cmds, uint32_t *n, size_t len,
                               const char *val, size_t vlen, int64_t now)
{
    char key[MD_KEY_MAX];
    size_t klen = md_keytpl_format(&r->keys.good, s->symbol, s->sym_len, key, sizeof key);
    if (r->cfg->last_good_ttl_s)
        len += md_resp_setex(r->wbuf + len, r->wcap - len, key, klen, r->cfg->last_good_ttl_s, val,
                             vlen);
    else
        len += md_resp_set(r->wbuf + len, r->wcap - len, key, klen, val, vlen);
    cmds[(*n)++] = (md_cmd){.s = s, .kind = MD_CMD_GOOD};
    s->last_good_due = 0;
    s->last_good_ns = now;
    return len;
}

/* PUBLISH of a changed price: only when the write carries ticks, not when
 * a live key is merely re-asserted: readers want news, not TTLs. */
static inline size_t emit_publish(md_redis *r, md_sym *s, md_cmd *cmds, uint32_t *n, size_t len,
                                  const char *val, size_t vlen)
{
    char key[MD_KEY_MAX];
    const char *argv[3] = {"PUBLISH", key, val};
    size_t lens[3] = {7, 0, vlen};
    lens[1] = md_keytpl_format(&r->keys.chan, s->symbol, s->sym_len, key, sizeof key);
    len += md_resp_cmd(r->wbuf + len, r->wcap - len, 3, argv, lens);
    cmds[(*n)++] = (md_cmd){.s = s, .kind = MD_CMD_PUBLISH};
    return len;
}

static void start_batch(md_redis *r, int64_t now)
{
    md_state *st = &r->w->state;
    const md_config *cfg = r->cfg;
    const int64_t good_every = (int64_t)(cfg->last_good_interval_s * 1e9);
    const bool good = cfg->last_good_key[0] != 0;
    const bool push = cfg->price_channel[0] != 0;
    char val[MD_VAL_MAX];
    uint32_t nkeys = 0;
    size_t len = 0;
    uint32_t tail = (r->bhead + r->blen) % r->bcap;
    md_batch *b = &r->batches[tail];
    md_cmd *cmds = b->cmds;
    uint32_t ncmds = 0;
    md_sym *s;
    md_account *a;
    /* Accounts first, but with at most half the batch, so neither a burst
     * of prices nor one of account updates keeps the other waiting. */
    uint32_t acct_max = cfg->max_batch > 1 ? cfg->max_batch / 2 : 1;
    while (now >= r->acct_hold_until_ns && (a = md_accounts_peek(&r->w->accounts)) != NULL) {
        bool done = add_account(r, a, cmds, &ncmds, acct_max, &len, now);
        if (!done) break;
        md_accounts_pop(&r->w->accounts);
    }
    nkeys = ncmds;
    while (nkeys < cfg->max_batch && r->wcap - len >= MD_PER_KEY_MAX &&
           (s = md_state_pop_dirty(st))) {
        size_t vlen;
        uint32_t first = ncmds;
        len = emit_latest(r, s, cmds, &ncmds, len, val, &vlen, now);
        if (good && s->last_good_due && (s->last_good_ns == 0 || now - s->last_good_ns >= good_every))
            len = emit_good(r, s, cmds, &ncmds, len, val, vlen, now);
        if (push && cmds[first].ticks) len = emit_publish(r, s, cmds, &ncmds, len, val, vlen);
        nkeys++;
    }
    if (ncmds) send_batch(r, b, ncmds, nkeys, len, now);
}

/* Cluster mode: a batch from this node's queue, in queue order. */
static void start_node_batch(md_redis *r, int64_t now)
{
    const md_config *cfg = r->cfg;
    const bool push = cfg->price_channel[0] != 0;
    const uint32_t max_cmds = MD_CMDS_PER_KEY * cfg->max_batch;
    char val[MD_VAL_MAX];
    md_batch *b = &r->batches[(r->bhead + r->blen) % r->bcap];
    md_cmd *cmds = b->cmds;
    uint32_t ncmds = 0, nkeys = 0, held = 0;
    size_t len = 0, vlen;
    while (r->nq_len > held && nkeys < cfg->max_batch && r->wcap - len >= MD_PER_KEY_MAX &&
           ncmds + MD_CMDS_PER_KEY + 1 <= max_cmds) {
        md_route e = r->nq[r->nq_head];
        r->nq_head = (r->nq_head + 1) & (r->nq_cap - 1);
        r->nq_len--;
        if (is_account_kind(e.kind) && now < r->acct_hold_until_ns) {
            /* NOPERM on account keys holds them alone; prices go on. */
            md_redis_enqueue(r, &e);
            held++;
            continue;
        }
        size_t at = len;
        uint32_t n0 = ncmds;
        bool ok = true;
        if (e.ask) {
            const char *argv[1] = {"ASKING"};
            len += md_resp_cmd(r->wbuf + len, r->wcap - len, 1, argv, NULL);
            cmds[ncmds++] = (md_cmd){.kind = MD_CMD_ASKING};
        }
        md_sym *s = e.p;
        md_account *a = e.p;
        switch (e.kind) {
        case MD_CMD_LATEST: {
            s->routed &= (uint8_t)~MD_ROUTED_LATEST;
            if (e.first_ns && (!s->first_dirty_ns || e.first_ns < s->first_dirty_ns))
                s->first_dirty_ns = e.first_ns;
            uint32_t first = ncmds;
            len = emit_latest(r, s, cmds, &ncmds, len, val, &vlen, now);
            if (push && cmds[first].ticks) len = emit_publish(r, s, cmds, &ncmds, len, val, vlen);
            break;
        }
        case MD_CMD_GOOD:
            s->routed &= (uint8_t)~MD_ROUTED_GOOD;
            vlen = md_format_price(s, val, sizeof val);
            len = emit_good(r, s, cmds, &ncmds, len, val, vlen, now);
            break;
        case MD_CMD_ORDER:
            if ((uint32_t)e.order >= a->nord) break;
            if (a->ord[e.order].slot != MD_OSLOT_FREE)
                ok = emit_order(r, a, e.order, cmds, &ncmds, max_cmds, &len, now);
            if (ok) a->ord[e.order].routed = 0;
            break;
        default:
            ok = emit_acct(r, a, e.kind, cmds, &ncmds, max_cmds, &len, now);
            if (ok) a->routed &= (uint8_t)~MD_AC_BIT(cmd_acls(e.kind));
            break;
        }
        if (!ok) {
            /* No room left for this value: it heads the next batch. */
            len = at;
            ncmds = n0;
            r->nq_head = (r->nq_head - 1) & (r->nq_cap - 1);
            r->nq[r->nq_head] = e;
            r->nq_len++;
            break;
        }
        nkeys++;
    }
    if (ncmds) send_batch(r, b, ncmds, nkeys, len, now);
}

static bool has_work(const md_redis *r, int64_t now)
{
    if (r->cl) return r->nq_len > 0;
    return r->w->state.dq_len > 0 || (r->w->accounts.dq_len > 0 && now >= r->acct_hold_until_ns);
}

void md_redis_poll(md_redis *r, int64_t now)
{
    switch (r->state) {
    case MD_REDIS_DOWN:
        /* A cluster node that owns no slot any more (failed over, slots
         * moved away) is not called again until it has work. */
        if (now >= r->retry_at_ns && (!r->cl || r->wanted)) start_connect(r, now);
        break;
    case MD_REDIS_TLS_HELLO:
    case MD_REDIS_HANDSHAKE:
        /* connect_timeout covers the whole way to READY: a server that
         * accepts but never answers (stopped, or a TLS port spoken to in
         * plain text) must not hold the connection forever. */
        if (now - r->phase_ns > (int64_t)(r->cfg->connect_timeout_s * 1e9))
            handshake_failed(r, now, r->state == MD_REDIS_TLS_HELLO ? "TLS" : "handshake",
                             "no answer within connect_timeout");
        break;
    case MD_REDIS_READY:
        if (r->blen > 0 && r->cfg->reply_timeout_s > 0 &&
            now - r->batches[r->bhead].sent_ns > (int64_t)(r->cfg->reply_timeout_s * 1e9)) {
            r->w->st.redis_timeouts++;
            MD_LOG_RL(MD_LOG_WARN, 1,
                      "worker %d: redis %s: no reply for %.1fs (reply_timeout); reconnecting",
                      r->w->id, r->target->display, r->cfg->reply_timeout_s);
            fail(r, now);
            break;
        }
        if (!out_busy(r) && r->blen < r->cfg->max_inflight && has_work(r, now) &&
            now >= r->hold_until_ns) {
            if (r->cl)
                start_node_batch(r, now);
            else
                start_batch(r, now);
        }
        break;
    case MD_REDIS_CLOSING:
        absorb_if_closing(r, now);
        break;
    default: break;
    }
}

bool md_redis_idle(const md_redis *r)
{
    if (r->cl) return r->nq_len == 0 && r->blen == 0;
    return r->w->state.dq_len == 0 && r->w->accounts.dq_len == 0 && r->blen == 0;
}
