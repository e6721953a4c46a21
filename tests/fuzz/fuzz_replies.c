/*
 * Redis reply fuzz target: the worker's reply path (src/redis.c) fed with
 * whatever a server might send back -- garbage, errors of every class,
 * more replies than commands, replies split at any byte -- while batches
 * of SETEX commands (prices and account values) and DELs of terminal
 * orders are in flight. It must never crash or misread memory, the error
 * counters must add up, no more keys may be acknowledged than were sent,
 * account order slots must stay consistent, and once the connection is
 * given up no key may be left unaccounted for: every unacknowledged one is
 * back on the dirty queue.
 *
 * The input is a script: a byte 0x00-0x3f starts a batch (as if the link
 * could take one) and completes its send; any other byte b is followed by
 * (b & 0x3f) + 1 bytes delivered as one receive. An input whose first byte
 * is odd runs the same script on one primary's connection of a Redis
 * Cluster writer (src/cluster.c, a 3-node map, no thread): MOVED and ASK
 * replies, whatever their text, re-route keys and may add connections, and
 * no key may be lost among the node queues either.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_cluster.h"
#include "md_redis.h"
#include "md_topo_service.h"
#include "md_worker.h"

static void check(int ok)
{
    if (!ok) abort();
}

static md_worker w;
static md_config cfg;
static md_redis_target target;
static md_topo_service svc; /* never started: the map is set by hand */

static void setup_once(void)
{
    static int done;
    if (done) return;
    done = 1;
    md_config_defaults(&cfg);
    cfg.max_batch = 8; /* small batches: many in flight from a short script */
    cfg.max_inflight = 4;
    cfg.client_name[0] = '\0';
    target.addr.ss_family = AF_INET; /* never connected: fd stays -1 */
    snprintf(target.display, sizeof target.display, "fuzz");
    check(io_uring_queue_init(256, &w.ring, 0) == 0);
    w.h_latency = calloc(1, sizeof *w.h_latency);
    w.h_rtt = calloc(1, sizeof *w.h_rtt);
    w.h_batch = calloc(1, sizeof *w.h_batch);
    check(w.h_latency && w.h_rtt && w.h_batch);
    check(pthread_mutex_init(&svc.mu, NULL) == 0);
    svc.cfg = &cfg;
    md_topology *t = &svc.cur;
    t->nnodes = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(t->nodes[i].host, sizeof t->nodes[i].host, "127.0.0.1");
        t->nodes[i].port = (uint16_t)(7001 + i);
    }
    for (int sl = 0; sl < MD_SLOT_COUNT; sl++) t->owner[sl] = (uint16_t)(sl * 3 / MD_SLOT_COUNT);
    t->covered = MD_SLOT_COUNT;
    atomic_store(&svc.version, 1);
}

static uint64_t latest_sent(const md_redis *r, uint64_t prev)
{
    /* Commands queued by the last start_batch: the newest batch. */
    if (r->blen == 0) return prev;
    const md_batch *b = &r->batches[(r->bhead + r->blen - 1) % r->bcap];
    return prev + b->keys;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    md_stats zero = {0};
    w.st = zero;
    w.now = 1000000000000LL;
    check(md_state_init(&w.state, 64) == 0);
    check(md_sources_init(&w.sources, 16) == 0);
    md_redis *r = &w.redis;
    md_cluster *cl = NULL;
    bool cluster = size > 0 && (data[0] & 1);
    if (!cluster) check(md_redis_init(r, &w, &cfg, &target) == 0);

    /* 40 symbols, all dirty. */
    for (int i = 0; i < 40; i++) {
        md_tick t = {.type = MD_TICK_QUOTE, .flags = MD_TICK_F_TS, .ts_ns = 1, .origin_ns = w.now};
        t.sym_len = (uint8_t)snprintf(t.symbol, sizeof t.symbol, "S%02d", i);
        t.v[MD_Q_BID] = (md_dec){100 + i, -2};
        t.v[MD_Q_ASK] = (md_dec){101 + i, -2};
        t.v[MD_Q_BID_SIZE] = t.v[MD_Q_ASK_SIZE] = (md_dec){1, 0};
        check(md_state_apply(&w.state, &t, w.now) == MD_APPLY_OK);
    }
    /* 6 accounts, each with a position, a working and a cancelled order
     * (a DEL) and a balance: every account command kind in flight. */
    check(md_accounts_init(&w.accounts, 8, 4, 4) == 0);
    for (int i = 0; i < 6; i++) {
        static const uint8_t types[] = {MD_TICK_POSITION, MD_TICK_ORDER, MD_TICK_ORDER,
                                        MD_TICK_BALANCE};
        for (int k = 0; k < 4; k++) {
            md_acct m;
            memset(&m, 0, sizeof m);
            m.t.type = types[k];
            m.acct_len = (uint8_t)snprintf(m.account, sizeof m.account, "A%d", i);
            m.t.sym_len = (uint8_t)snprintf(m.t.symbol, sizeof m.t.symbol, "S%d", k);
            m.ref_len = (uint8_t)snprintf(m.ref, sizeof m.ref, "O%d", k);
            m.status = k == 2 ? MD_ORDER_CANCELLED : MD_ORDER_WORKING;
            for (int v = 0; v < 4; v++) m.t.v[v] = (md_dec){1 + v, 0};
            check(md_accounts_apply(&w.accounts, &m, 1) == MD_APPLY_OK);
        }
    }
    if (cluster) {
        /* Every key into the node queues; the script drives node 0's. */
        cl = md_cluster_new(&w, &cfg, &svc, &target);
        check(cl != NULL && cl->nconn == 3);
        md_cluster_route(cl, w.now);
        r = cl->conn[0];
    }
    r->state = MD_REDIS_READY;
    r->ever_connected = true;

    uint64_t sent = 0;
    size_t i = 0;
    while (i < size && r->state == MD_REDIS_READY) {
        uint8_t op = data[i++];
        w.now += 1000;
        if (op < 0x40) {
            uint32_t before = r->blen;
            md_redis_poll(r, w.now);
            if (r->blen > before) {
                sent = latest_sent(r, sent);
                /* the whole batch handed to the kernel at once */
                md_redis_on_send(r, r->gen, (int)(r->wlen - r->woff), w.now);
            }
            continue;
        }
        size_t n = (size_t)(op & 0x3f) + 1;
        if (n > size - i) n = size - i;
        memcpy(r->rbuf, data + i, n);
        i += n;
        md_redis_on_recv(r, r->gen, (int)n, w.now);
    }

    const md_stats *st = &w.st;
    check(st->redis_errors == st->redis_oom + st->redis_readonly + st->redis_loading +
                                  st->redis_busy + st->redis_auth + st->redis_noperm +
                                  st->redis_other + st->cluster_moved + st->cluster_ask +
                                  st->cluster_down);
    check(st->keys_written + st->account_writes + st->orders_deleted <= sent);
    check(w.state.dq_len <= w.state.count);
    check(w.accounts.dq_len <= w.accounts.count);
    for (uint32_t a = 0; a < w.accounts.count; a++) {
        const md_account *ac = &w.accounts.accts[a];
        uint32_t live = 0;
        for (uint32_t o = 0; o < ac->nord; o++) live += ac->ord[o].slot == MD_OSLOT_LIVE;
        check(live == ac->working && ac->oq_len <= ac->nord && ac->nord <= 4);
        /* Something still owed means the account is queued. */
        check(md_account_done(ac) || ac->queued);
    }
    if (cl) {
        /* Whatever the redirects said, a tick not yet written is owed
         * somewhere a later batch finds it: on the dirty queue, or in a
         * node queue (or parked) under its routed mark. */
        md_cluster_route(cl, w.now);
        check(cl->nconn <= MD_CLUSTER_MAX_CONNS);
        for (uint32_t k = 0; k < w.state.count; k++) {
            const md_sym *s = &w.state.syms[k];
            check(!s->dirty_ticks || (s->routed & MD_ROUTED_LATEST));
        }
    }
    if (r->state != MD_REDIS_READY) {
        /* Given up: nothing may still count as in flight, and every key
         * not acknowledged is queued again (or was refused as "other"). */
        check(md_redis_unacked(r) == 0);
        check(r->blen == 0);
    }

    /* Drop the completions of sends to fd -1 queued meanwhile. */
    io_uring_submit(&w.ring);
    io_uring_cq_advance(&w.ring, io_uring_cq_ready(&w.ring));
    if (cl)
        md_cluster_free(cl);
    else
        md_redis_free(r);
    md_state_free(&w.state);
    md_accounts_free(&w.accounts);
    md_sources_free(&w.sources);
    return 0;
}
