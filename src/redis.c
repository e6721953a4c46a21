/*
 * md_redis: a worker's Redis connection and batch writer. See
 * include/md_redis.h.
 *
 * The connection is a small state machine advanced by io_uring
 * completions: DOWN -> CONNECTING -> HANDSHAKE (AUTH, SELECT) -> READY,
 * and on any error CLOSING -> DOWN with capped, jittered exponential
 * backoff. A reconnect marks every key dirty: we cannot know which of the
 * batches in flight Redis applied, nor whether it kept its data, so the
 * latest state of every key is written again and readers converge.
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

#include "md_log.h"
#include "md_worker.h"

#define MD_RBUF 65536
#define MD_KEY_MAX 320
#define MD_VAL_MAX 512
/* Room one key needs in the batch buffer: SETEX latest + SET last_good. */
#define MD_PER_KEY_MAX (2 * (MD_KEY_MAX + MD_VAL_MAX + 64))

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
    if (u->kind == MD_REDIS_TLS) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported yet");
        return -1;
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
    r->wcap = (size_t)cfg->max_batch * MD_PER_KEY_MAX + 4096;
    r->wbuf = malloc(r->wcap);
    r->rcap = MD_RBUF;
    r->rbuf = malloc(r->rcap);
    r->bcap = cfg->max_inflight + 1;
    r->batches = calloc(r->bcap, sizeof *r->batches);
    r->lat = calloc((size_t)r->bcap * cfg->max_batch, sizeof *r->lat);
    r->backoff_s = cfg->reconnect_min_s;
    r->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->id << 32) ^ (uint64_t)md_now_ns();
    if (!r->wbuf || !r->rbuf || !r->batches || !r->lat || new_reader(r)) return -1;
    if (md_keytpl_init(&r->price_tpl, cfg->key_prefix, cfg->price_key)) return -1;
    if (cfg->last_good_key[0] && md_keytpl_init(&r->good_tpl, cfg->key_prefix, cfg->last_good_key))
        return -1;
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
    free(r->wbuf);
    free(r->rbuf);
    free(r->batches);
    free(r->lat);
    r->lat = NULL;
    r->reader = NULL;
    r->wbuf = r->rbuf = NULL;
    r->batches = NULL;
}

/* ---- connection state machine --------------------------------------- */

static double jitter01(md_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (double)(r->rng >> 11) / (double)(1ull << 53);
}

static void finish_close(md_redis *r, int64_t now)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->state = MD_REDIS_DOWN;
    /* Full jitter over the upper half of the window: clients that lost the
     * same server at once do not all come back in the same millisecond. */
    double d = r->backoff_s * (0.5 + 0.5 * jitter01(r));
    r->retry_at_ns = now + (int64_t)(d * 1e9);
    r->backoff_s *= 2;
    if (r->backoff_s > r->cfg->reconnect_max_s) r->backoff_s = r->cfg->reconnect_max_s;
}

static void fail(md_redis *r, int64_t now)
{
    if (r->state == MD_REDIS_DOWN || r->state == MD_REDIS_CLOSING) return;
    r->blen = 0;
    r->bhead = 0;
    r->wlen = r->woff = 0;
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
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_RECV, 0, r->gen));
    r->recv_busy = 1;
}

static void submit_send(md_redis *r)
{
    struct io_uring_sqe *sqe = md_worker_sqe(r->w);
    io_uring_prep_send(sqe, r->fd, r->wbuf + r->woff, r->wlen - r->woff, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_SEND, 0, r->gen));
    r->send_busy = 1;
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
        setsockopt(r->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    r->gen++;
    /* The connect and its linked timeout must go in one submission. */
    if (io_uring_sq_space_left(&r->w->ring) < 2) io_uring_submit(&r->w->ring);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->w->ring);
    io_uring_prep_connect(sqe, r->fd, (struct sockaddr *)&r->target->addr, r->target->addrlen);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_REDIS_CONNECT, 0, r->gen));
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
}

static void become_ready(md_redis *r)
{
    r->state = MD_REDIS_READY;
    r->backoff_s = r->cfg->reconnect_min_s;
    if (r->ever_connected) {
        r->w->st.reconnects++;
        md_info("worker %d: redis %s reconnected; re-asserting the keys of live sources",
                r->w->id, r->target->display);
    } else {
        md_info("worker %d: connected to redis %s", r->w->id, r->target->display);
    }
    r->ever_connected = true;
    md_state_mark_live_dirty(&r->w->state, &r->w->sources, r->w->now,
                             (int64_t)(r->cfg->source_timeout_s * 1e9));
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
    if (new_reader(r)) {
        fail(r, now);
        return;
    }
    r->wlen = r->woff = 0;
    r->bhead = r->blen = 0;
    const md_redis_url *u = &r->cfg->redis;
    uint32_t nrep = 0;
    if (u->pass[0]) {
        const char *argv[3] = {"AUTH", u->user, u->pass};
        size_t lens[3] = {4, strlen(u->user), strlen(u->pass)};
        if (u->user[0]) {
            r->wlen += md_resp_cmd(r->wbuf + r->wlen, r->wcap - r->wlen, 3, argv, lens);
        } else {
            const char *a2[2] = {"AUTH", u->pass};
            size_t l2[2] = {4, lens[2]};
            r->wlen += md_resp_cmd(r->wbuf + r->wlen, r->wcap - r->wlen, 2, a2, l2);
        }
        nrep++;
    }
    if (u->db) {
        char db[16];
        int n = snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        r->wlen += md_resp_cmd(r->wbuf + r->wlen, r->wcap - r->wlen, 2, argv, lens);
        nrep++;
    }
    arm_recv(r);
    if (nrep == 0) {
        become_ready(r);
        return;
    }
    r->batches[0] = (md_batch){.replies = nrep, .handshake = 1, .sent_ns = now};
    r->blen = 1;
    r->state = MD_REDIS_HANDSHAKE;
    submit_send(r);
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
    r->woff += (size_t)res;
    r->w->st.bytes_out += (uint64_t)res;
    if (r->woff < r->wlen) {
        submit_send(r); /* short write: the rest follows in order */
        return;
    }
    r->wlen = r->woff = 0;
}

static void on_reply(md_redis *r, int64_t now)
{
    reply_sink *k = sink(r);
    if (r->blen == 0) {
        md_error("worker %d: redis %s: reply with no command outstanding; reconnecting",
                 r->w->id, r->target->display);
        fail(r, now);
        return;
    }
    md_batch *b = &r->batches[r->bhead];
    if (k->type == REDIS_REPLY_ERROR) {
        if (b->handshake) {
            /* AUTH or SELECT refused: the message (e.g. WRONGPASS) names no
             * secret; retrying with backoff copes with ACLs fixed later. */
            MD_LOG_RL(MD_LOG_ERROR, 1, "worker %d: redis %s refused the handshake: %s", r->w->id,
                      r->target->display, k->err);
            r->w->st.redis_errors++;
            fail(r, now);
            return;
        }
        r->w->st.redis_errors++;
        MD_LOG_RL(MD_LOG_WARN, 3, "worker %d: redis error reply: %s", r->w->id, k->err);
    } else if (!b->handshake) {
        r->w->st.keys_written++;
    }
    if (--b->replies == 0) {
        bool hs = b->handshake;
        if (!hs) {
            /* Every tick coalesced into a write is charged the latency of
             * the oldest one: an upper bound, counted once per tick so the
             * distribution is per tick like the baselines' (bench/). */
            md_worker *w = r->w;
            md_hist_record(w->h_rtt, (uint64_t)(now - b->sent_ns));
            md_hist_record(w->h_batch, b->keys);
            for (uint32_t i = 0; i < b->keys; i++)
                if (b->lat[i].first_ns)
                    md_hist_record_n(w->h_latency, (uint64_t)(now - b->lat[i].first_ns),
                                     b->lat[i].ticks);
        }
        r->bhead = (r->bhead + 1) % r->bcap;
        r->blen--;
        if (hs)
            become_ready(r);
        else
            r->w->st.batches++;
    }
}

void md_redis_on_recv(md_redis *r, uint32_t gen, int res, int64_t now)
{
    if (gen != r->gen) return;
    r->recv_busy = 0;
    if (absorb_if_closing(r, now)) return;
    if (res <= 0) {
        MD_LOG_RL(MD_LOG_WARN, 1, "worker %d: redis %s: %s", r->w->id, r->target->display,
                  res == 0 ? "connection closed by server" : strerror(-res));
        fail(r, now);
        return;
    }
    if (redisReaderFeed(r->reader, r->rbuf, (size_t)res) != REDIS_OK) {
        fail(r, now);
        return;
    }
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK) {
            md_error("worker %d: redis %s: protocol error: %s", r->w->id, r->target->display,
                     r->reader->errstr);
            fail(r, now);
            return;
        }
        if (!rep) break;
        on_reply(r, now);
        if (r->state == MD_REDIS_CLOSING || r->state == MD_REDIS_DOWN) return;
    }
    arm_recv(r);
}

/* ---- the batch writer ------------------------------------------------ */

static void start_batch(md_redis *r, int64_t now)
{
    md_state *st = &r->w->state;
    const md_config *cfg = r->cfg;
    const int64_t good_every = (int64_t)(cfg->last_good_interval_s * 1e9);
    const bool good = cfg->last_good_key[0] != 0;
    char key[MD_KEY_MAX], val[MD_VAL_MAX];
    uint32_t nrep = 0, nkeys = 0;
    size_t len = 0;
    uint32_t tail = (r->bhead + r->blen) % r->bcap;
    md_batch_lat *lat = r->lat + (size_t)tail * cfg->max_batch;
    md_sym *s;
    while (nkeys < cfg->max_batch && r->wcap - len >= MD_PER_KEY_MAX &&
           (s = md_state_pop_dirty(st))) {
        lat[nkeys] = (md_batch_lat){s->first_dirty_ns, s->dirty_ticks};
        s->dirty_ticks = 0;
        size_t vlen = md_format_price(s, val, sizeof val);
        size_t klen = md_keytpl_format(&r->price_tpl, s->symbol, s->sym_len, key, sizeof key);
        len += md_resp_setex(r->wbuf + len, r->wcap - len, key, klen, cfg->price_ttl_s, val, vlen);
        nrep++;
        s->written_ns = now;
        if (good && s->last_good_due && (s->last_good_ns == 0 || now - s->last_good_ns >= good_every)) {
            klen = md_keytpl_format(&r->good_tpl, s->symbol, s->sym_len, key, sizeof key);
            if (cfg->last_good_ttl_s)
                len += md_resp_setex(r->wbuf + len, r->wcap - len, key, klen, cfg->last_good_ttl_s,
                                     val, vlen);
            else
                len += md_resp_set(r->wbuf + len, r->wcap - len, key, klen, val, vlen);
            nrep++;
            s->last_good_due = 0;
            s->last_good_ns = now;
        }
        nkeys++;
    }
    if (!nrep) return;
    r->batches[tail] = (md_batch){
        .replies = nrep, .keys = nkeys, .handshake = 0, .sent_ns = now, .lat = lat};
    r->blen++;
    r->wlen = len;
    r->woff = 0;
    submit_send(r);
}

void md_redis_poll(md_redis *r, int64_t now)
{
    switch (r->state) {
    case MD_REDIS_DOWN:
        if (now >= r->retry_at_ns) start_connect(r, now);
        break;
    case MD_REDIS_READY:
        if (!r->send_busy && r->wlen == 0 && r->blen < r->cfg->max_inflight &&
            r->w->state.dq_len > 0)
            start_batch(r, now);
        break;
    case MD_REDIS_CLOSING:
        absorb_if_closing(r, now);
        break;
    default: break;
    }
}

bool md_redis_idle(const md_redis *r)
{
    return r->w->state.dq_len == 0 && r->blen == 0 && r->wlen == 0;
}
