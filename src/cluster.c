/*
 * md_cluster: a worker's Redis Cluster writer. See include/md_cluster.h.
 */
#include "md_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_account.h"
#include "md_log.h"
#include "md_slot.h"
#include "md_state.h"
#include "md_worker.h"

#define MD_KEY_MAX 320

static uint32_t conn_find(const md_cluster *cl, const char *host, uint16_t port)
{
    for (uint32_t i = 0; i < cl->nconn; i++) {
        const md_redis_target *t = &cl->tgt[i];
        if (t->port == port && strcmp(t->host, host) == 0) return i;
    }
    return MD_SLOT_NONE;
}

/* True for an IPv4 or IPv6 literal: resolving it asks no name server. */
static bool numeric_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The connection to host:port, made on first use: from `node` (a map's,
 * resolved by md_topo_service), else from host:port if it is an address
 * literal; a host name in a redirect waits for the map, which brings it
 * resolved. MD_SLOT_NONE when there is no address yet or the table is
 * full. */
static uint32_t conn_for(md_cluster *cl, const char *host, uint16_t port,
                         const md_topo_node *node)
{
    uint32_t i = conn_find(cl, host, port);
    if (i != MD_SLOT_NONE) return i;
    if ((!node || !node->addrlen) && !numeric_host(host)) {
        MD_LOG_RL(MD_LOG_INFO, 5,
                  "worker %d: cluster node %s:%u: a host name; connecting once the topology "
                  "thread has resolved it",
                  cl->w->id, host, port);
        return MD_SLOT_NONE;
    }
    if (cl->nconn == MD_CLUSTER_MAX_CONNS) {
        MD_LOG_RL(MD_LOG_ERROR, 5, "worker %d: cluster: more than %d nodes seen; %s:%u ignored",
                  cl->w->id, MD_CLUSTER_MAX_CONNS, host, port);
        return MD_SLOT_NONE;
    }
    md_topo_node n = {.port = port};
    if (node) n = *node;
    snprintf(n.host, sizeof n.host, "%s", host);
    char err[300];
    i = cl->nconn;
    if (md_topo_node_target(cl->seed, &n, &cl->tgt[i], err, sizeof err)) {
        MD_LOG_RL(MD_LOG_WARN, 2, "worker %d: cluster node %s:%u: %s", cl->w->id, host, port, err);
        return MD_SLOT_NONE;
    }
    md_redis *r = calloc(1, sizeof *r);
    if (!r || md_redis_init_node(r, cl->w, cl->cfg, &cl->tgt[i], cl, i)) {
        if (r) md_redis_free(r);
        free(r);
        MD_LOG_RL(MD_LOG_ERROR, 2, "worker %d: cluster node %s:%u: out of memory", cl->w->id,
                  host, port);
        return MD_SLOT_NONE;
    }
    cl->conn[i] = r;
    cl->nconn++;
    return i;
}

/* 1 + the slot of a key of a, by class: cached, the name never changes. */
static uint16_t acct_slot1(md_cluster *cl, md_account *a, int c, uint8_t kind)
{
    if (!a->slot1[c]) {
        char key[MD_KEY_MAX];
        size_t n = md_keytpl_format(&cl->keys.acct[kind], a->name, a->name_len, key, sizeof key);
        a->slot1[c] = (uint16_t)(md_slot_of(key, n) + 1);
    }
    return a->slot1[c];
}

static uint16_t entry_slot(md_cluster *cl, const md_route *e)
{
    char key[MD_KEY_MAX];
    size_t n;
    md_sym *s = e->p;
    md_account *a = e->p;
    switch (e->kind) {
    case MD_CMD_LATEST:
        if (!s->slot1) {
            n = md_keytpl_format(&cl->keys.price, s->symbol, s->sym_len, key, sizeof key);
            s->slot1 = (uint16_t)(md_slot_of(key, n) + 1);
        }
        return (uint16_t)(s->slot1 - 1);
    case MD_CMD_GOOD: /* written at most once per last_good_interval: not worth a cache */
        n = md_keytpl_format(&cl->keys.good, s->symbol, s->sym_len, key, sizeof key);
        return md_slot_of(key, n);
    case MD_CMD_ORDER: {
        const md_order *o = &a->ord[e->order];
        n = md_keytpl_format2(&cl->keys.acct[MD_CMD_ORDER], a->name, a->name_len, o->id,
                              o->id_len, key, sizeof key);
        return md_slot_of(key, n);
    }
    case MD_CMD_POSITIONS: return (uint16_t)(acct_slot1(cl, a, MD_AC_POSITIONS, e->kind) - 1);
    case MD_CMD_BALANCE: return (uint16_t)(acct_slot1(cl, a, MD_AC_BALANCE, e->kind) - 1);
    case MD_CMD_ACCOUNT: return (uint16_t)(acct_slot1(cl, a, MD_AC_INFO, e->kind) - 1);
    default: return (uint16_t)(acct_slot1(cl, a, MD_AC_ORDERS, e->kind) - 1);
    }
}

static void no_memory(md_cluster *cl)
{
    if (!cl->oom) md_error("worker %d: cluster: out of memory queueing keys", cl->w->id);
    cl->oom = true;
}

static void park(md_cluster *cl, const md_route *e)
{
    if (cl->nparked == cl->parked_cap) {
        uint32_t cap = cl->parked_cap ? 2 * cl->parked_cap : 1024;
        md_route *p = realloc(cl->parked, cap * sizeof *p);
        if (!p) {
            no_memory(cl);
            return;
        }
        cl->parked = p;
        cl->parked_cap = cap;
    }
    cl->parked[cl->nparked++] = *e;
}

/* Puts e on the queue of its slot's owner, or parks it. */
static void route(md_cluster *cl, md_route e)
{
    e.ask = 0;
    uint16_t own = cl->owner[entry_slot(cl, &e)];
    if (own == MD_SLOT_NONE) {
        park(cl, &e);
        return;
    }
    if (md_redis_enqueue(cl->conn[own], &e)) no_memory(cl);
}

/* Re-routes the parked keys and every node queue, after the map changed. */
static void reroute_all(md_cluster *cl)
{
    for (uint32_t i = 0; i < cl->nconn; i++) {
        md_redis *r = cl->conn[i];
        while (r->nq_len) {
            park(cl, &r->nq[r->nq_head]);
            r->nq_head = (r->nq_head + 1) & (r->nq_cap - 1);
            r->nq_len--;
        }
    }
    uint32_t n = cl->nparked;
    cl->nparked = 0;
    /* route() may park again, appending behind the ones being taken. */
    /* route() parks again at most one entry per entry taken, so it only
     * ever writes over entries already taken: this compacts in place. */
    for (uint32_t i = 0; i < n; i++) route(cl, cl->parked[i]);
}

static void adopt_map(md_cluster *cl)
{
    uint16_t idx[MD_TOPO_MAX_NODES];
    for (uint32_t i = 0; i < cl->map.nnodes; i++)
        idx[i] = (uint16_t)conn_for(cl, cl->map.nodes[i].host, cl->map.nodes[i].port,
                                    &cl->map.nodes[i]);
    for (uint32_t i = 0; i < cl->nconn; i++) cl->conn[i]->wanted = false;
    for (uint32_t s = 0; s < MD_SLOT_COUNT; s++) {
        uint16_t o = cl->map.owner[s];
        cl->owner[s] = o == MD_SLOT_NONE ? MD_SLOT_NONE : idx[o];
        if (cl->owner[s] != MD_SLOT_NONE) cl->conn[cl->owner[s]]->wanted = true;
    }
    cl->w->st.topology_updates++;
    if (cl->map.covered == MD_SLOT_COUNT) {
        /* The cluster is whole again: nodes held for CLUSTERDOWN write at
         * once, not at the end of their backoff step. */
        for (uint32_t i = 0; i < cl->nconn; i++) {
            md_redis *r = cl->conn[i];
            if (!r->cluster_hold) continue;
            r->cluster_hold = false;
            r->hold_until_ns = 0;
            r->hold_s = cl->cfg->reconnect_min_s;
        }
    }
    md_info("worker %d: cluster map: %u primaries, %u of %d slots covered", cl->w->id,
            cl->map.nnodes, cl->map.covered, MD_SLOT_COUNT);
    reroute_all(cl);
}

md_cluster *md_cluster_new(struct md_worker *w, const md_config *cfg, md_topo_service *svc,
                           const md_redis_target *seed)
{
    md_cluster *cl = calloc(1, sizeof *cl);
    if (!cl) return NULL;
    cl->w = w;
    cl->cfg = cfg;
    cl->svc = svc;
    cl->seed = seed;
    for (uint32_t s = 0; s < MD_SLOT_COUNT; s++) cl->owner[s] = MD_SLOT_NONE;
    if (md_keys_init(&cl->keys, cfg)) {
        free(cl);
        return NULL;
    }
    if (md_topo_service_get(svc, &cl->map, &cl->ver)) adopt_map(cl);
    return cl;
}

void md_cluster_free(md_cluster *cl)
{
    if (!cl) return;
    for (uint32_t i = 0; i < cl->nconn; i++) {
        md_redis_free(cl->conn[i]);
        free(cl->conn[i]);
    }
    free(cl->parked);
    free(cl);
}

md_redis *md_cluster_conn(md_cluster *cl, uint32_t idx)
{
    return idx < cl->nconn ? cl->conn[idx] : NULL;
}

/* The dirty queues into the node queues. */
static void route_dirty(md_cluster *cl, int64_t now)
{
    md_worker *w = cl->w;
    const md_config *cfg = cl->cfg;
    const bool good = cfg->last_good_key[0] != 0;
    const int64_t good_every = (int64_t)(cfg->last_good_interval_s * 1e9);
    md_sym *s;
    while ((s = md_state_pop_dirty(&w->state))) {
        if (!(s->routed & MD_ROUTED_LATEST)) {
            s->routed |= MD_ROUTED_LATEST;
            route(cl, (md_route){.p = s, .first_ns = s->first_dirty_ns, .order = -1,
                                 .kind = MD_CMD_LATEST});
        }
        if (good && s->last_good_due && !(s->routed & MD_ROUTED_GOOD) &&
            (s->last_good_ns == 0 || now - s->last_good_ns >= good_every)) {
            s->routed |= MD_ROUTED_GOOD;
            route(cl, (md_route){.p = s, .order = -1, .kind = MD_CMD_GOOD});
        }
    }
    static const struct { int c; uint8_t kind; } cls[] = {
        {MD_AC_POSITIONS, MD_CMD_POSITIONS},
        {MD_AC_BALANCE, MD_CMD_BALANCE},
        {MD_AC_INFO, MD_CMD_ACCOUNT},
    };
    md_account *a;
    while ((a = md_accounts_peek(&w->accounts))) {
        for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++) {
            uint8_t bit = (uint8_t)MD_AC_BIT(cls[i].c);
            if (!(a->due & bit)) continue;
            a->due &= (uint8_t)~bit;
            if (!cl->keys.acct[cls[i].kind].nvars || (a->routed & bit)) continue;
            a->routed |= bit;
            route(cl, (md_route){.p = a, .order = -1, .kind = cls[i].kind});
        }
        int32_t i;
        while ((i = md_account_next_order(a)) >= 0) {
            md_order *o = &a->ord[i];
            if (!cl->keys.acct[MD_CMD_ORDER].nvars) {
                if (o->slot == MD_OSLOT_GONE) md_account_order_deleted(a, (uint32_t)i, o->del_gen);
                continue;
            }
            if (o->routed) continue;
            o->routed = 1;
            route(cl, (md_route){.p = a, .order = i, .kind = MD_CMD_ORDER});
        }
        /* Order keys are queued before the list; on different nodes that
         * order is not kept (docs/cluster.md). */
        uint8_t lbit = (uint8_t)MD_AC_BIT(MD_AC_ORDERS);
        if (a->due & lbit) {
            a->due &= (uint8_t)~lbit;
            if (!cl->keys.acct[MD_CMD_ORDER_LIST].nvars) {
                a->written_ns[MD_AC_ORDERS] = now;
            } else if (!(a->routed & lbit)) {
                a->routed |= lbit;
                route(cl, (md_route){.p = a, .order = -1, .kind = MD_CMD_ORDER_LIST});
            }
        }
        md_accounts_pop(&w->accounts);
    }
}

void md_cluster_route(md_cluster *cl, int64_t now)
{
    if (atomic_load_explicit(&cl->svc->version, memory_order_relaxed) != cl->ver &&
        md_topo_service_get(cl->svc, &cl->map, &cl->ver))
        adopt_map(cl);
    route_dirty(cl, now);
    if (cl->nparked) md_cluster_want_refresh(cl);
}

void md_cluster_poll(md_cluster *cl, int64_t now)
{
    md_cluster_route(cl, now);
    for (uint32_t i = 0; i < cl->nconn; i++) md_redis_poll(cl->conn[i], now);
}

bool md_cluster_idle(const md_cluster *cl)
{
    if (cl->w->state.dq_len || cl->w->accounts.dq_len || cl->nparked) return false;
    for (uint32_t i = 0; i < cl->nconn; i++)
        if (!md_redis_idle(cl->conn[i])) return false;
    return true;
}

uint64_t md_cluster_unacked(const md_cluster *cl)
{
    uint64_t n = cl->nparked;
    for (uint32_t i = 0; i < cl->nconn; i++)
        n += cl->conn[i]->nq_len + md_redis_unacked(cl->conn[i]);
    return n;
}

uint32_t md_cluster_inflight(const md_cluster *cl)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cl->nconn; i++) n += cl->conn[i]->blen;
    return n;
}

/* "host:port", the host possibly an IPv6 address without brackets. */
static bool split_addr(const char *addr, char *host, size_t cap, uint16_t *port)
{
    const char *c = strrchr(addr, ':');
    if (!c || c == addr || (size_t)(c - addr) >= cap) return false;
    char *end;
    unsigned long p = strtoul(c + 1, &end, 10);
    if (end == c + 1 || *end || p == 0 || p > 65535) return false;
    const char *h = addr;
    size_t n = (size_t)(c - addr);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    memcpy(host, h, n);
    host[n] = 0;
    *port = (uint16_t)p;
    return true;
}

uint32_t md_cluster_moved(md_cluster *cl, uint16_t slot, const char *addr)
{
    char host[256];
    uint16_t port;
    md_cluster_want_refresh(cl);
    if (!split_addr(addr, host, sizeof host, &port)) return MD_SLOT_NONE;
    uint32_t i = conn_for(cl, host, port, NULL);
    if (i == MD_SLOT_NONE) return i;
    cl->owner[slot] = (uint16_t)i;
    cl->conn[i]->wanted = true;
    return i;
}

bool md_cluster_ask(md_cluster *cl, const char *addr, const md_route *e)
{
    char host[256];
    uint16_t port;
    md_cluster_want_refresh(cl);
    if (!split_addr(addr, host, sizeof host, &port)) return false;
    uint32_t i = conn_for(cl, host, port, NULL);
    return i != MD_SLOT_NONE && md_redis_enqueue(cl->conn[i], e) == 0;
}

bool md_cluster_sym_on(const md_sym *s, void *conn)
{
    const md_redis *r = conn;
    /* Not routed yet (slot unknown): queue it, the router sends it where
     * it belongs. */
    return !s->slot1 || r->cl->owner[s->slot1 - 1] == r->idx;
}

void md_cluster_want_refresh(md_cluster *cl) { md_topo_service_request(cl->svc); }
