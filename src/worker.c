/*
 * md_worker: the per-core event loop. See include/md_worker.h for the
 * threading contract.
 *
 * One loop turn: reap every completion (feed datagrams, accepted
 * connections, stream bytes, Redis I/O), decode and route the ticks, drain
 * the rings other workers fill for us, let the batch writer start a batch
 * if the link can take one, wake the workers we pushed to if they sleep,
 * then submit and wait. Nothing in the loop blocks except that final wait,
 * and it is bounded by a timeout so timers (liveness sweep, stats, shutdown)
 * run even when no I/O arrives.
 */
#include "md_worker.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_decode.h"
#include "md_cluster.h"
#include "md_log.h"

#define MD_SQ_ENTRIES 1024
#define MD_CQ_ENTRIES 16384
#define MD_MAX_STREAMS 1024       /* stream connections per worker */
#define MD_STREAM_BGID 1000       /* buffer group for stream receives */
#define MD_STREAM_NBUFS 256
#define MD_STREAM_BUFSZ 16384
#define MD_STREAM_CAP 16384       /* reassembly buffer: > 2 x the longest unit */
#define MD_FILE_CHUNK 65536
#define MD_DRAIN_LIMIT 4096       /* ticks per inbound ring per turn */
#define MD_PUSH_RETRIES 100000
#define MD_SWEEP_EVERY_NS 10000000LL
#define MD_PUBLISH_EVERY_NS 20000000LL
#define MD_MAX_WAIT_NS 50000000LL

struct md_udp {
    const md_listener *l;
    int fd;
    uint16_t bgid;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    uint32_t nbufs, bufsz;
    struct msghdr msg;
    uint32_t ovfl_seen;
    bool armed;
};

struct md_stream {
    const md_listener *l;
    int fd;
    uint32_t gen;
    bool used, is_file, eof;
    int skipping;
    uint64_t off;       /* file offset */
    uint8_t *buf;       /* reassembly buffer */
    uint32_t len;
    uint8_t *rdbuf;     /* file:// only: its own read buffer, since several
                         * replays can have reads in flight at once */
};

int64_t md_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct io_uring_sqe *md_worker_sqe(md_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (!sqe) {
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe; /* cannot be NULL right after a submit of a full queue */
}

/* ---- routing: decoded tick -> owner ---------------------------------- */

static void apply_account(md_worker *w, const md_acct *m)
{
    /* The receipt time stands in for a missing ts only: not read otherwise. */
    int64_t wall_ns = 0;
    if (!(m->t.flags & MD_TICK_F_TS)) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        wall_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
    }
    switch (md_accounts_apply(&w->accounts, m, wall_ns)) {
    case MD_APPLY_OK: w->st.account_msgs++; break;
    case MD_APPLY_DUPLICATE: w->st.duplicates++; break;
    case MD_APPLY_FULL:
        w->st.refused++;
        MD_LOG_RL(MD_LOG_WARN, 2,
                  "worker %d: account '%s': max_accounts, max_positions or max_orders reached, "
                  "message refused",
                  w->id, m->account);
        break;
    case MD_APPLY_BAD_NAME:
        w->st.refused++;
        MD_LOG_RL(MD_LOG_WARN, 2,
                  "account '%s': order refused: the name contains '%s', which separates account "
                  "and order id in order_key, so its keys would collide with another account's",
                  m->account, w->accounts.sep);
        break;
    default: break;
    }
}

static void apply_local(md_worker *w, const md_tick *t)
{
    if (t->type == MD_TICK_HEARTBEAT) {
        md_sources_touch(&w->sources, t->src_hash, w->now);
        return;
    }
    md_sources_touch(&w->sources, t->src_hash, w->now);
    if (md_tick_is_account(t->type)) {
        apply_account(w, md_tick_acct(t));
        return;
    }
    switch (md_state_apply_hashed(&w->state, t, t->sym_hash, w->now)) {
    case MD_APPLY_OK:
        w->st.applied++;
        if (t->type == MD_TICK_RESET) w->st.resets++;
        break;
    case MD_APPLY_DUPLICATE: w->st.duplicates++; break;
    case MD_APPLY_FULL:
        w->st.refused++;
        MD_LOG_RL(MD_LOG_WARN, 2, "worker %d: max_keys reached, symbol '%s' refused", w->id,
                  t->symbol);
        break;
    case MD_APPLY_OVERFLOW:
        w->st.overflow++;
        MD_LOG_RL(MD_LOG_WARN, 2, "symbol '%s': aggregate overflow, tick dropped", t->symbol);
        break;
    case MD_APPLY_IGNORED:
    case MD_APPLY_BAD_NAME: break;
    }
}

static void apply_cb(void *ctx, const md_tick *t) { apply_local(ctx, t); }

static size_t drain_inbound(md_worker *w)
{
    md_runtime *rt = w->rt;
    size_t n = 0;
    for (int j = 0; j < rt->nworkers; j++) {
        if (j == w->id) continue;
        n += md_ring_drain(&rt->rings[j * rt->nworkers + w->id], MD_DRAIN_LIMIT, apply_cb, w);
    }
    return n;
}

static void push_to(md_worker *w, int to, const md_tick *t)
{
    md_runtime *rt = w->rt;
    md_ring *r = &rt->rings[w->id * rt->nworkers + to];
    for (int i = 0; i < MD_PUSH_RETRIES; i++) {
        if (md_ring_push(r, t) == MD_RING_OK) {
            if (to < 64) w->pending_wake_hi |= 1ull << to;
            return;
        }
        /* The owner is behind. Wake it, and drain our own inbound rings so
         * that two workers pushing to each other cannot deadlock. */
        if (atomic_exchange(&rt->workers[to].sleeping, 0)) {
            struct io_uring_sqe *sqe = md_worker_sqe(w);
            io_uring_prep_msg_ring(sqe, rt->workers[to].ring_fd, 0, md_ud(MD_OP_WAKE, 0, 0), 0);
            io_uring_sqe_set_data64(sqe, md_ud(MD_OP_IGNORE, 0, 0));
            io_uring_submit(&w->ring);
        }
        drain_inbound(w);
        sched_yield();
    }
    w->st.drops++;
    MD_LOG_RL(MD_LOG_WARN, 2, "worker %d: ring to worker %d full, %s '%s' dropped", w->id, to,
              md_tick_is_account(t->type) ? "message for account" : "tick for",
              md_tick_is_account(t->type) ? md_tick_acct(t)->account : t->symbol);
}

static void route(md_worker *w, const md_tick *t)
{
    int n = w->rt->nworkers;
    bool all = t->type == MD_TICK_HEARTBEAT ||
               (t->type == MD_TICK_RESET && t->sym_len == 1 && t->symbol[0] == '*');
    if (t->type == MD_TICK_HEARTBEAT) w->st.heartbeats++;
    if (all) {
        apply_local(w, t);
        for (int j = 0; j < n; j++)
            if (j != w->id) push_to(w, j, t);
        return;
    }
    int owner = (int)(t->sym_hash % (uint64_t)n);
    if (owner == w->id)
        apply_local(w, t);
    else
        push_to(w, owner, t);
}

/* Fills in what the worker knows about a decoded message: its feed, its
 * latency origin and its source and routing hashes. */
static void stamp(md_worker *w, md_tick *t)
{
    t->feed_id = (uint32_t)w->cur->id;
    /* A sender's origin stamp is only believable if it is not in our
     * future (then it is some other host's clock). */
    if (t->origin_ns <= 0 || t->origin_ns > w->now) t->origin_ns = w->now;
    t->src_hash = t->src_len ? md_sym_hash(t->source, t->src_len) : w->cur->feed_hash;
    t->sym_hash = t->sym_len ? md_sym_hash(t->symbol, t->sym_len) : 0;
    w->st.ticks_in++;
    w->st.feed_in[w->cur->id][t->type < MD_TICK_TYPE_COUNT ? t->type : 0]++;
}

static void on_tick(void *ctx, const md_tick *in)
{
    md_worker *w = ctx;
    if (md_tick_is_account(in->type)) {
        /* Accounts, not symbols, pick the owner: every message of an
         * account meets the same positions and orders. */
        md_acct m = *md_tick_acct(in);
        stamp(w, &m.t);
        m.t.sym_hash = md_sym_hash(m.account, m.acct_len);
        route(w, &m.t);
        return;
    }
    md_tick t = *in;
    stamp(w, &t);
    route(w, &t);
}

static void on_reject(void *ctx, md_decode_err why, const char *what, size_t len)
{
    md_worker *w = ctx;
    char shown[81];
    size_t n = len < 80 ? len : 80;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)what[i];
        shown[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
    }
    shown[n] = 0;
    MD_LOG_RL(MD_LOG_WARN, 5, "%s: dropped input (%s): %s%s", w->cur->spec->spec,
              md_decode_err_name[why], shown, len > 80 ? "..." : "");
}

static size_t decode(md_worker *w, const md_listener *l, int *skipping, const uint8_t *p,
                     size_t n, int final)
{
    md_decoder_ops ops = {on_tick, on_reject, w, &w->dstats};
    w->cur = l;
    switch (l->spec->format) {
    case MD_FMT_BIN1: return md_bin1_decode(p, n, final, &ops);
    case MD_FMT_BINANCE: return md_binance_decode((const char *)p, n, final, skipping, &ops);
    case MD_FMT_JSONL: break;
    }
    return md_jsonl_decode((const char *)p, n, final, skipping, &ops);
}

/* ---- streams: TCP, Unix, file ---------------------------------------- */

/* Feeds bytes of a stream through its reassembly buffer so that frames
 * and lines split across reads decode exactly as if they came whole. The
 * common case (nothing left over) decodes straight from the receive
 * buffer without copying. */
static void stream_data(md_worker *w, md_stream *s, const uint8_t *p, size_t n)
{
    if (s->len == 0) {
        size_t c = decode(w, s->l, &s->skipping, p, n, 0);
        p += c;
        n -= c;
        if (n > MD_STREAM_CAP) { /* decoders never leave this much; be safe */
            w->dstats.err[MD_DERR_OVERSIZED]++;
            return;
        }
        memcpy(s->buf, p, n);
        s->len = (uint32_t)n;
        return;
    }
    while (n > 0) {
        size_t take = MD_STREAM_CAP - s->len;
        if (take > n) take = n;
        memcpy(s->buf + s->len, p, take);
        s->len += (uint32_t)take;
        p += take;
        n -= take;
        size_t c = decode(w, s->l, &s->skipping, s->buf, s->len, 0);
        if (c == 0 && s->len == MD_STREAM_CAP) {
            w->dstats.err[MD_DERR_OVERSIZED]++;
            c = s->len;
        }
        memmove(s->buf, s->buf + c, s->len - c);
        s->len -= (uint32_t)c;
    }
}

static void stream_finish(md_worker *w, md_stream *s)
{
    if (s->len) decode(w, s->l, &s->skipping, s->buf, s->len, 1);
    s->len = 0;
}

static void stream_free(md_worker *w, md_stream *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->used = false;
    s->gen++;
    (void)w;
}

static md_stream *stream_alloc(md_worker *w, const md_listener *l, int fd)
{
    for (uint32_t i = 0; i < w->nstreams; i++) {
        md_stream *s = &w->streams[i];
        if (s->used) continue;
        if (!s->buf && !(s->buf = malloc(MD_STREAM_CAP))) return NULL;
        s->used = true;
        s->l = l;
        s->fd = fd;
        s->len = 0;
        s->skipping = 0;
        s->off = 0;
        s->eof = false;
        s->is_file = l->spec->kind == MD_LISTEN_FILE;
        return s;
    }
    return NULL;
}

static void arm_stream_recv(md_worker *w, md_stream *s)
{
    struct io_uring_sqe *sqe = md_worker_sqe(w);
    io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = MD_STREAM_BGID;
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_STREAM, (uint32_t)(s - w->streams), s->gen));
}

static void arm_file_read(md_worker *w, md_stream *s)
{
    struct io_uring_sqe *sqe = md_worker_sqe(w);
    io_uring_prep_read(sqe, s->fd, s->rdbuf, MD_FILE_CHUNK, s->off);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_FILE, (uint32_t)(s - w->streams), s->gen));
}

static void arm_accept(md_worker *w, const md_listener *l)
{
    struct io_uring_sqe *sqe = md_worker_sqe(w);
    io_uring_prep_multishot_accept(sqe, l->fds[w->id], NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_ACCEPT, (uint32_t)l->id, 0));
}

static void recycle_stream_buf(md_worker *w, uint32_t bid)
{
    io_uring_buf_ring_add(w->sbr, w->sbufs + (size_t)bid * MD_STREAM_BUFSZ, MD_STREAM_BUFSZ,
                          (unsigned short)bid, io_uring_buf_ring_mask(MD_STREAM_NBUFS), 0);
    io_uring_buf_ring_advance(w->sbr, 1);
}

static void on_accept(md_worker *w, struct io_uring_cqe *cqe)
{
    const md_listener *l = &w->rt->listeners[md_ud_idx(cqe->user_data)];
    if (cqe->res >= 0) {
        if (!w->reading) {
            close(cqe->res);
        } else {
            md_stream *s = stream_alloc(w, l, cqe->res);
            if (!s) {
                MD_LOG_RL(MD_LOG_WARN, 2, "%s: too many connections, one refused", l->spec->spec);
                close(cqe->res);
            } else {
                w->st.connections++;
                md_debug("%s: connection accepted on worker %d", l->spec->spec, w->id);
                arm_stream_recv(w, s);
            }
        }
    } else if (cqe->res != -ECANCELED) {
        MD_LOG_RL(MD_LOG_WARN, 2, "%s: accept: %s", l->spec->spec, strerror(-cqe->res));
    }
    if (!(cqe->flags & IORING_CQE_F_MORE) && w->reading) arm_accept(w, l);
}

static void on_stream(md_worker *w, struct io_uring_cqe *cqe)
{
    md_stream *s = &w->streams[md_ud_idx(cqe->user_data)];
    bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
    uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (!s->used || s->gen != md_ud_gen(cqe->user_data)) {
        if (has_buf) recycle_stream_buf(w, bid);
        return;
    }
    if (cqe->res > 0) {
        if (w->reading) stream_data(w, s, w->sbufs + (size_t)bid * MD_STREAM_BUFSZ, (size_t)cqe->res);
        recycle_stream_buf(w, bid);
        if (!(cqe->flags & IORING_CQE_F_MORE)) {
            if (w->reading) arm_stream_recv(w, s);
            else stream_free(w, s);
        }
        return;
    }
    if (has_buf) recycle_stream_buf(w, bid);
    if (cqe->res == -ENOBUFS && w->reading) { /* receive buffers exhausted: re-arm */
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_stream_recv(w, s);
        return;
    }
    if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -ECONNRESET)
        MD_LOG_RL(MD_LOG_WARN, 2, "%s: receive: %s", s->l->spec->spec, strerror(-cqe->res));
    if (w->reading) stream_finish(w, s); /* a last line without '\n' still counts */
    if (!(cqe->flags & IORING_CQE_F_MORE)) stream_free(w, s);
}

static void on_file(md_worker *w, struct io_uring_cqe *cqe)
{
    md_stream *s = &w->streams[md_ud_idx(cqe->user_data)];
    if (!s->used || s->gen != md_ud_gen(cqe->user_data)) return;
    if (cqe->res > 0 && w->reading) {
        stream_data(w, s, s->rdbuf, (size_t)cqe->res);
        s->off += (uint64_t)cqe->res;
        arm_file_read(w, s);
        return;
    }
    if (cqe->res < 0) md_error("%s: read: %s", s->l->spec->spec, strerror(-cqe->res));
    else if (w->reading) {
        stream_finish(w, s);
        md_info("%s: replay finished, %llu bytes", s->l->spec->spec, (unsigned long long)s->off);
    }
    /* The listener owns the file descriptor. */
    s->fd = -1;
    stream_free(w, s);
}

/* ---- UDP ------------------------------------------------------------- */

static void arm_udp(md_worker *w, md_udp *u)
{
    struct io_uring_sqe *sqe = md_worker_sqe(w);
    io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->msg, MSG_TRUNC);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = u->bgid;
    io_uring_sqe_set_data64(sqe, md_ud(MD_OP_UDP, (uint32_t)(u - w->udp), 0));
    u->armed = true;
}

static void on_udp(md_worker *w, struct io_uring_cqe *cqe)
{
    md_udp *u = &w->udp[md_ud_idx(cqe->user_data)];
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        uint8_t *buf = u->bufs + (size_t)bid * u->bufsz;
        if (cqe->res > 0 && w->reading) {
            struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &u->msg);
            if (o) {
                for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(o, &u->msg); c;
                     c = io_uring_recvmsg_cmsg_nexthdr(o, &u->msg, c)) {
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                        uint32_t d;
                        memcpy(&d, CMSG_DATA(c), sizeof d);
                        if (d != u->ovfl_seen) w->st.kernel_drops += (uint32_t)(d - u->ovfl_seen);
                        u->ovfl_seen = d;
                    }
                }
                if (o->flags & MSG_TRUNC) {
                    w->st.truncated++;
                    MD_LOG_RL(MD_LOG_WARN, 2,
                              "%s: datagram of %u bytes cut to %u (raise udp_buffer_size)",
                              u->l->spec->spec, o->payloadlen,
                              io_uring_recvmsg_payload_length(o, cqe->res, &u->msg));
                }
                decode(w, u->l, NULL, io_uring_recvmsg_payload(o, &u->msg),
                       io_uring_recvmsg_payload_length(o, cqe->res, &u->msg), 1);
            }
        }
        io_uring_buf_ring_add(u->br, buf, u->bufsz, (unsigned short)bid,
                              io_uring_buf_ring_mask(u->nbufs), 0);
        io_uring_buf_ring_advance(u->br, 1);
    } else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
        MD_LOG_RL(MD_LOG_WARN, 2, "%s: receive: %s", u->l->spec->spec, strerror(-cqe->res));
    }
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        u->armed = false;
        if (w->reading) arm_udp(w, u);
    }
}

/* ---- set-up ---------------------------------------------------------- */

/* liburing 2.3 lacks io_uring_setup_buf_ring: map and register the ring
 * ourselves, as liburing's examples/io_uring-udp.c does. */
static struct io_uring_buf_ring *setup_buf_ring(md_worker *w, uint16_t bgid, uint32_t nbufs,
                                                uint32_t bufsz, uint8_t **bufs_out)
{
    size_t rsz = nbufs * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return NULL;
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)mem, .ring_entries = nbufs,
                                   .bgid = bgid};
    int rc = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (rc) {
        md_error("worker %d: registering provided buffers failed: %s (needs Linux >= 5.19)",
                 w->id, strerror(-rc));
        munmap(mem, rsz);
        return NULL;
    }
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    uint8_t *bufs = malloc((size_t)nbufs * bufsz);
    if (!bufs) return NULL;
    for (uint32_t i = 0; i < nbufs; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * bufsz, bufsz, (unsigned short)i,
                              io_uring_buf_ring_mask(nbufs), (int)i);
    io_uring_buf_ring_advance(br, (int)nbufs);
    *bufs_out = bufs;
    return br;
}

static int worker_setup(md_worker *w)
{
    md_runtime *rt = w->rt;
    const md_config *cfg = rt->cfg;
    struct io_uring_params p = {0};
    /* DEFER_TASKRUN (6.1+): completion work runs only when this thread
     * asks for events, never interrupting the loop, and a thread waiting
     * for one completion is woken exactly when it is there. TASKRUN_FLAG
     * tells liburing (and spin_until) when such a kernel entry is due, so
     * a busy loop never strands completions. Older kernels get
     * COOP_TASKRUN, which only spares the IPI, then no flags at all. */
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0] && rc == -EINVAL; i++) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE | modes[i];
        p.cq_entries = MD_CQ_ENTRIES;
        rc = io_uring_queue_init_params(MD_SQ_ENTRIES, &w->ring, &p);
    }
    if (rc) {
        md_error("worker %d: io_uring_queue_init: %s", w->id, strerror(-rc));
        return -1;
    }
    w->ring_fd = w->ring.ring_fd;

    uint32_t per_worker = cfg->max_keys;
    if (rt->nworkers > 1) {
        /* Hashing spreads symbols unevenly by a few percent; headroom keeps
         * one worker from refusing keys long before the process-wide limit. */
        per_worker = cfg->max_keys / (uint32_t)rt->nworkers;
        per_worker += per_worker / 8 + 16;
    }
    if (md_state_init(&w->state, per_worker) || md_sources_init(&w->sources, 4096)) {
        md_error("worker %d: out of memory for %u keys", w->id, per_worker);
        return -1;
    }
    uint32_t accts = cfg->max_accounts;
    if (rt->nworkers > 1) {
        accts = cfg->max_accounts / (uint32_t)rt->nworkers;
        accts += accts / 8 + 16;
    }
    if (md_accounts_init(&w->accounts, accts, cfg->max_positions, cfg->max_orders)) {
        md_error("worker %d: out of memory for %u accounts", w->id, accts);
        return -1;
    }
    {
        uint8_t on = 0;
        if (cfg->positions_key[0]) on |= MD_AC_BIT(MD_AC_POSITIONS);
        if (cfg->order_list_key[0]) on |= MD_AC_BIT(MD_AC_ORDERS);
        if (cfg->balances_key[0]) on |= MD_AC_BIT(MD_AC_BALANCE);
        if (cfg->accounts_key[0]) on |= MD_AC_BIT(MD_AC_INFO);
        /* The order key's separator (validated: present, non-empty). */
        char sep[128] = "";
        const char *a = strstr(cfg->order_key, "{account}"), *o = strstr(cfg->order_key, "{order_id}");
        if (a && o && o > a + 9 && (size_t)(o - a - 9) < sizeof sep)
            memcpy(sep, a + 9, (size_t)(o - a - 9));
        md_accounts_configure(&w->accounts, on, cfg->order_key[0] != 0, sep);
    }

    w->streams = calloc(MD_MAX_STREAMS, sizeof *w->streams);
    w->udp = calloc(MD_MAX_LISTEN, sizeof *w->udp);
    if (!w->streams || !w->udp) return -1;
    w->nstreams = MD_MAX_STREAMS;
    for (uint32_t i = 0; i < w->nstreams; i++) w->streams[i].fd = -1;
    w->sbr = setup_buf_ring(w, MD_STREAM_BGID, MD_STREAM_NBUFS, MD_STREAM_BUFSZ, &w->sbufs);
    if (!w->sbr) return -1;

    for (int i = 0; i < cfg->nlisten; i++) {
        const md_listener *l = &rt->listeners[i];
        switch (l->spec->kind) {
        case MD_LISTEN_UDP: {
            md_udp *u = &w->udp[w->nudp];
            u->l = l;
            u->fd = l->fds[w->id];
            u->bgid = (uint16_t)w->nudp;
            u->nbufs = cfg->udp_buffers;
            u->bufsz = cfg->udp_buffer_size;
            u->msg.msg_controllen = CMSG_SPACE(sizeof(uint32_t));
            u->br = setup_buf_ring(w, u->bgid, u->nbufs, u->bufsz, &u->bufs);
            if (!u->br) return -1;
            w->nudp++;
            arm_udp(w, u);
            break;
        }
        case MD_LISTEN_TCP:
        case MD_LISTEN_UNIX:
            arm_accept(w, l);
            break;
        case MD_LISTEN_FILE:
            if (w->id == 0) {
                md_stream *s = stream_alloc(w, l, l->fds[0]);
                if (!s || !(s->rdbuf = malloc(MD_FILE_CHUNK))) return -1;
                arm_file_read(w, s);
            }
            break;
        }
    }
    if (rt->topo) {
        w->cluster = md_cluster_new(w, cfg, rt->topo, &rt->redis_target);
        return w->cluster ? 0 : -1;
    }
    if (md_redis_init(&w->redis, w, cfg, &rt->redis_target)) return -1;
    return 0;
}

static void worker_teardown(md_worker *w)
{
    for (uint32_t i = 0; i < w->nstreams; i++) {
        md_stream *s = &w->streams[i];
        if (s->used && !s->is_file && s->fd >= 0) close(s->fd);
        free(s->buf);
        free(s->rdbuf);
    }
    md_redis_free(&w->redis);
    md_cluster_free(w->cluster);
    w->cluster = NULL;
    io_uring_queue_exit(&w->ring);
    free(w->streams);
    for (int i = 0; i < w->nudp; i++) free(w->udp[i].bufs);
    free(w->udp);
    free(w->sbufs);
    md_state_free(&w->state);
    md_accounts_free(&w->accounts);
    md_sources_free(&w->sources);
}

/* ---- the loop -------------------------------------------------------- */

static void dispatch(md_worker *w, struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    switch (md_ud_op(ud)) {
    case MD_OP_IGNORE:
    case MD_OP_WAKE: break;
    case MD_OP_UDP: on_udp(w, cqe); break;
    case MD_OP_ACCEPT: on_accept(w, cqe); break;
    case MD_OP_STREAM: on_stream(w, cqe); break;
    case MD_OP_FILE: on_file(w, cqe); break;
    case MD_OP_REDIS_CONNECT:
    case MD_OP_REDIS_SEND:
    case MD_OP_REDIS_RECV: {
        md_redis *r = w->cluster ? md_cluster_conn(w->cluster, md_ud_idx(ud)) : &w->redis;
        if (!r) break;
        if (md_ud_op(ud) == MD_OP_REDIS_CONNECT)
            md_redis_on_connect(r, md_ud_gen(ud), cqe->res, w->now);
        else if (md_ud_op(ud) == MD_OP_REDIS_SEND)
            md_redis_on_send(r, md_ud_gen(ud), cqe->res, w->now);
        else
            md_redis_on_recv(r, md_ud_gen(ud), cqe->res, w->now);
        break;
    }
    }
}

_Static_assert(MD_MAX_LISTEN <= MD_STATS_FEEDS, "every feed has its row in md_stats.feed_in");

static bool writer_idle(const md_worker *w)
{
    return w->cluster ? md_cluster_idle(w->cluster) : md_redis_idle(&w->redis);
}

static void send_wakes(md_worker *w)
{
    uint64_t m = w->pending_wake_hi;
    if (!m) return;
    w->pending_wake_hi = 0;
    /* Pairs with the fence in the consumer's sleep path: either it sees our
     * ring entries, or we see its sleeping flag. */
    atomic_thread_fence(memory_order_seq_cst);
    while (m) {
        int j = __builtin_ctzll(m);
        m &= m - 1;
        md_worker *o = &w->rt->workers[j];
        if (atomic_load_explicit(&o->sleeping, memory_order_relaxed) &&
            atomic_exchange(&o->sleeping, 0)) {
            struct io_uring_sqe *sqe = md_worker_sqe(w);
            io_uring_prep_msg_ring(sqe, o->ring_fd, 0, md_ud(MD_OP_WAKE, 0, 0), 0);
            io_uring_sqe_set_data64(sqe, md_ud(MD_OP_IGNORE, 0, 0));
        }
    }
}

static bool inbound_empty(md_worker *w)
{
    md_runtime *rt = w->rt;
    for (int j = 0; j < rt->nworkers; j++)
        if (j != w->id && md_ring_size(&rt->rings[j * rt->nworkers + w->id])) return false;
    return true;
}

static void publish(md_worker *w)
{
    uint64_t e = 0;
    for (int i = 0; i < MD_DERR_COUNT; i++) {
        w->st.err[i] = w->dstats.err[i];
        e += w->dstats.err[i];
    }
    w->st.decode_errors = e;
    w->st.skipped = w->dstats.skipped;
    w->st.keys = w->state.count;
    w->st.dirty = w->state.dq_len;
    w->st.inflight = w->cluster ? md_cluster_inflight(w->cluster) : w->redis.blen;
    w->st.refreshes = w->state.stats.refreshes + w->accounts.stats.refreshes;
    w->st.accounts = w->accounts.count;
    w->st.dirty_accounts = w->accounts.dq_len;
    int64_t to = (int64_t)(w->rt->cfg->source_timeout_s * 1e9);
    w->st.live_sources = md_sources_live(&w->sources, w->now, to);
    md_stats_publish(&w->pub, &w->st);
    if (w->rt->cfg->metrics_addr[0]) {
        const md_hist *h[MD_MH_COUNT] = {w->h_latency, w->h_rtt, w->h_batch};
        for (int k = 0; k < MD_MH_COUNT; k++) {
            /* A fold reads the whole 30 KB histogram: skip it when nothing
             * was recorded since the last one, the common case when idle. */
            if (h[k]->count == w->hpub_seen[k]) continue;
            w->hpub_seen[k] = h[k]->count;
            md_hist_publish(&w->hpub[k], h[k], md_metrics_hists[k].bounds,
                            md_metrics_hists[k].nbounds);
        }
    }
}

static void stop_reading(md_worker *w)
{
    w->reading = false;
    /* Cancel every feed operation; their final completions only recycle
     * buffers. Stream sockets are shut so their receives end. */
    for (int i = 0; i < w->nudp; i++) {
        struct io_uring_sqe *sqe = md_worker_sqe(w);
        io_uring_prep_cancel64(sqe, md_ud(MD_OP_UDP, (uint32_t)i, 0), 0);
        io_uring_sqe_set_data64(sqe, md_ud(MD_OP_IGNORE, 0, 0));
    }
    for (int i = 0; i < w->rt->cfg->nlisten; i++) {
        const md_listener *l = &w->rt->listeners[i];
        if (l->spec->kind != MD_LISTEN_TCP && l->spec->kind != MD_LISTEN_UNIX) continue;
        struct io_uring_sqe *sqe = md_worker_sqe(w);
        io_uring_prep_cancel64(sqe, md_ud(MD_OP_ACCEPT, (uint32_t)l->id, 0),
                               IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, md_ud(MD_OP_IGNORE, 0, 0));
    }
    for (uint32_t i = 0; i < w->nstreams; i++) {
        md_stream *s = &w->streams[i];
        if (s->used && !s->is_file) shutdown(s->fd, SHUT_RDWR);
    }
    atomic_fetch_add(&w->rt->stopped_reading, 1);
}

/* idle = spin: poll for work instead of sleeping, for a worker that owns
 * its core. Saves the two wake-ups (feed datagram, Redis reply) that
 * dominate latency at moderate rates. Never sets `sleeping`, so producers
 * never spend a msg_ring on us. Completions still need a kernel entry
 * (DEFER_TASKRUN): TASKRUN_FLAG says when, and io_uring_get_events runs
 * them without waiting. */
static void spin_until(md_worker *w, int64_t until)
{
    io_uring_submit(&w->ring);
    for (unsigned n = 0;; n++) {
        if (io_uring_cq_ready(&w->ring) || !inbound_empty(w)) return;
        if (IO_URING_READ_ONCE(*w->ring.sq.kflags) & IORING_SQ_TASKRUN) {
            io_uring_get_events(&w->ring);
            continue;
        }
        if ((n & 63) == 0 && md_now_ns() >= until) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

static void *worker_main(void *arg)
{
    md_worker *w = arg;
    md_runtime *rt = w->rt;
    const md_config *cfg = rt->cfg;
    w->now = md_now_ns();
    w->reading = true;
    if (worker_setup(w)) {
        atomic_store(&rt->failed, 1);
        atomic_fetch_add(&rt->stopped_reading, 1);
        atomic_fetch_add(&rt->ready, 1);
        return NULL;
    }
    atomic_fetch_add(&rt->ready, 1);

    const int64_t refresh_after = (int64_t)(cfg->price_ttl_s * cfg->refresh_fraction * 1e9);
    int64_t acct_refresh[MD_AC_COUNT];
    acct_refresh[MD_AC_POSITIONS] = (int64_t)(cfg->positions_ttl_s * cfg->refresh_fraction * 1e9);
    acct_refresh[MD_AC_ORDERS] = (int64_t)(cfg->orders_ttl_s * cfg->refresh_fraction * 1e9);
    acct_refresh[MD_AC_BALANCE] = (int64_t)(cfg->balances_ttl_s * cfg->refresh_fraction * 1e9);
    acct_refresh[MD_AC_INFO] = (int64_t)(cfg->accounts_ttl_s * cfg->refresh_fraction * 1e9);
    /* Accounts have 1 s TTLs: lap them every quarter of the shortest
     * refresh window, like symbols. */
    int64_t acct_lap = acct_refresh[MD_AC_POSITIONS];
    for (int c = 1; c < MD_AC_COUNT; c++)
        if (acct_refresh[c] < acct_lap) acct_lap = acct_refresh[c];
    acct_lap /= 4;
    if (acct_lap > 250000000LL) acct_lap = 250000000LL;
    if (acct_lap < MD_SWEEP_EVERY_NS) acct_lap = MD_SWEEP_EVERY_NS;
    const int64_t src_timeout = (int64_t)(cfg->source_timeout_s * 1e9);
    const int64_t good_every = cfg->last_good_key[0] ? (int64_t)(cfg->last_good_interval_s * 1e9) : 0;
    /* Visit the whole table at least every quarter of the refresh window
     * (and at most every 250 ms), a slice per 10 ms timer tick. */
    int64_t full_sweep = refresh_after / 4;
    if (full_sweep > 250000000LL) full_sweep = 250000000LL;
    if (full_sweep < MD_SWEEP_EVERY_NS) full_sweep = MD_SWEEP_EVERY_NS;

    int64_t next_sweep = w->now, next_publish = w->now, deadline = 0;
    bool final_drained = false;
    for (;;) {
        w->now = md_now_ns();
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            dispatch(w, cqe);
            seen++;
        }
        io_uring_cq_advance(&w->ring, seen);
        size_t drained = drain_inbound(w);

        if (w->reading && atomic_load(&rt->stop)) {
            stop_reading(w);
            md_debug("worker %d: stopped reading", w->id);
        }
        if (!w->reading && !final_drained &&
            atomic_load(&rt->stopped_reading) == rt->nworkers) {
            /* No worker pushes any more: what is in the rings is all there is. */
            while (drain_inbound(w)) {}
            final_drained = true;
            deadline = w->now + (int64_t)(cfg->shutdown_timeout_s * 1e9);
        }
        if (w->now >= next_sweep) {
            /* Budget follows the symbols held, so a full lap still ends
             * within full_sweep however many arrive. */
            uint32_t sweep_budget =
                (uint32_t)((uint64_t)w->state.count * MD_SWEEP_EVERY_NS / (uint64_t)full_sweep) + 1;
            md_state_sweep(&w->state, w->now, sweep_budget, refresh_after, &w->sources,
                           src_timeout, good_every);
            uint32_t acct_budget =
                (uint32_t)((uint64_t)w->accounts.count * MD_SWEEP_EVERY_NS / (uint64_t)acct_lap) + 1;
            md_accounts_sweep(&w->accounts, w->now, acct_budget, acct_refresh, &w->sources,
                              src_timeout);
            next_sweep = w->now + MD_SWEEP_EVERY_NS;
        }
        if (w->cluster)
            md_cluster_poll(w->cluster, w->now);
        else
            md_redis_poll(&w->redis, w->now);
        send_wakes(w);
        if (w->now >= next_publish) {
            publish(w);
            next_publish = w->now + MD_PUBLISH_EVERY_NS;
        }
        if (final_drained && (writer_idle(w) || w->now >= deadline)) break;

        int64_t wait = MD_MAX_WAIT_NS;
        if (next_sweep - w->now < wait) wait = next_sweep - w->now;
        if (wait < 0 || seen || drained) wait = 0;
        if (wait > 0 && cfg->idle == MD_IDLE_SPIN) {
            spin_until(w, w->now + wait);
            continue;
        }
        if (wait > 0) {
            atomic_store(&w->sleeping, 1);
            atomic_thread_fence(memory_order_seq_cst);
            if (!inbound_empty(w)) wait = 0;
        }
        if (wait == 0) {
            atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
            io_uring_submit(&w->ring);
            continue;
        }
        struct __kernel_timespec ts = {.tv_sec = wait / 1000000000LL,
                                       .tv_nsec = wait % 1000000000LL};
        struct io_uring_cqe *c = NULL;
        int rc = io_uring_submit_and_wait_timeout(&w->ring, &c, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            MD_LOG_RL(MD_LOG_ERROR, 2, "worker %d: io_uring wait: %s", w->id, strerror(-rc));
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
    }
    /* Sent but unacknowledged counts as not written: Redis may never have
     * applied it. */
    w->unflushed = w->state.dq_len + md_accounts_pending(&w->accounts) +
                   (w->cluster ? md_cluster_unacked(w->cluster) : md_redis_unacked(&w->redis));
    w->flushed = w->unflushed == 0 && writer_idle(w);
    publish(w);
    worker_teardown(w);
    return NULL;
}

/* ---- runtime --------------------------------------------------------- */

int md_runtime_start(md_runtime *rt)
{
    const md_config *cfg = rt->cfg;
    int n = rt->nworkers = cfg->ncpus;
    rt->workers = calloc((size_t)n, sizeof *rt->workers);
    rt->rings = calloc((size_t)n * (size_t)n, sizeof *rt->rings);
    if (!rt->workers || !rt->rings) return -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && md_ring_init(&rt->rings[i * n + j], cfg->ring_size)) return -1;
    for (int i = 0; i < n; i++) {
        md_worker *w = &rt->workers[i];
        w->h_latency = malloc(sizeof *w->h_latency);
        w->h_rtt = malloc(sizeof *w->h_rtt);
        w->h_batch = malloc(sizeof *w->h_batch);
        if (!w->h_latency || !w->h_rtt || !w->h_batch) return -1;
        md_hist_reset(w->h_latency);
        md_hist_reset(w->h_rtt);
        md_hist_reset(w->h_batch);
    }
    for (int i = 0; i < n; i++) {
        md_worker *w = &rt->workers[i];
        w->id = i;
        w->cpu = cfg->cpus[i];
        w->rt = rt;
        w->ring_fd = -1;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        int rc = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        if (rc == 0 && cfg->sched_priority) {
            /* Only the workers run SCHED_FIFO: the topology, expiry and
             * metrics threads must never take a worker's core from it. */
            struct sched_param sp = {.sched_priority = (int)cfg->sched_priority};
            rc = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
            if (rc == 0) rc = pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
            if (rc == 0) rc = pthread_attr_setschedparam(&attr, &sp);
        }
        if (rc == 0) rc = pthread_create(&w->thread, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc) {
            md_error("worker %d: cannot start pinned to CPU %d: %s", i, w->cpu, strerror(rc));
            atomic_store(&rt->stop, 1);
            for (int j = 0; j < i; j++) pthread_join(rt->workers[j].thread, NULL);
            return -1;
        }
        char name[16];
        snprintf(name, sizeof name, "mdcache-w%hu", (unsigned short)i);
        pthread_setname_np(w->thread, name);
    }
    /* Wake-ups target ring fds, so every ring must exist before any worker
     * can push: wait until all have set up (or one failed). */
    while (atomic_load(&rt->ready) < n) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&rt->failed)) {
        md_runtime_stop(rt);
        return -1;
    }
    return 0;
}

uint64_t md_runtime_stop(md_runtime *rt)
{
    atomic_store(&rt->stop, 1);
    uint64_t left = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        pthread_join(rt->workers[i].thread, NULL);
        left += rt->workers[i].unflushed;
    }
    return left;
}

void md_runtime_stats(md_runtime *rt, md_stats *sum)
{
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < rt->nworkers; i++) md_stats_collect(sum, &rt->workers[i].pub);
}

void md_runtime_histograms(md_runtime *rt, md_hist *latency, md_hist *rtt, md_hist *batch)
{
    for (int i = 0; i < rt->nworkers; i++) {
        md_hist_merge(latency, rt->workers[i].h_latency);
        md_hist_merge(rtt, rt->workers[i].h_rtt);
        md_hist_merge(batch, rt->workers[i].h_batch);
    }
}

void md_runtime_free(md_runtime *rt)
{
    if (rt->workers) {
        for (int i = 0; i < rt->nworkers; i++) {
            free(rt->workers[i].h_latency);
            free(rt->workers[i].h_rtt);
            free(rt->workers[i].h_batch);
        }
    }
    if (rt->rings) {
        for (int i = 0; i < rt->nworkers * rt->nworkers; i++)
            if (rt->rings[i].slots) md_ring_free(&rt->rings[i]);
    }
    free(rt->workers);
    free(rt->rings);
    rt->workers = NULL;
    rt->rings = NULL;
}
