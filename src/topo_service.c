/*
 * md_topo_service: the cluster slot map, refreshed on a thread of its own.
 * See include/md_topo_service.h.
 *
 * Workers ask with an atomic store and a pthread_cond_signal made without
 * the mutex, so a signal can land just before this thread waits and be
 * lost: every wait is at most MD_TOPO_WAIT_MS, after which `want` is looked
 * at again, so a lost wake-up costs that much and no more.
 */
#include "md_topo_service.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "md_bconn.h"
#include "md_log.h"

#define MD_TOPO_WAIT_MS 50

int md_topo_node_target(const md_redis_target *seed, const md_topo_node *n, md_redis_target *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (n->addrlen > 0 && n->addrlen <= sizeof out->addr) {
        memcpy(&out->addr, &n->addr, n->addrlen);
        out->addrlen = n->addrlen;
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        char port[8];
        snprintf(port, sizeof port, "%u", n->port);
        int rc = getaddrinfo(n->host, port, &hints, &ai);
        if (rc) {
            snprintf(err, errlen, "redis host '%s': %s", n->host, gai_strerror(rc));
            return -1;
        }
        memcpy(&out->addr, ai->ai_addr, ai->ai_addrlen);
        out->addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    snprintf(out->host, sizeof out->host, "%s", n->host);
    out->port = n->port;
    bool v6 = strchr(n->host, ':') != NULL;
    snprintf(out->display, sizeof out->display, "%s%s%s:%u", v6 ? "[" : "", n->host, v6 ? "]" : "",
             n->port);
    out->tls = seed ? seed->tls : NULL;
    return 0;
}

/* Equal for the workers: the same primaries owning the same slots. Node
 * order is compared through host:port, not index, because two nodes may
 * list the shards in different orders and a map that only moved its nodes
 * around is not worth re-routing every queued key for. */
static bool same_map(const md_topology *a, const md_topology *b)
{
    if (a->nnodes != b->nnodes || a->covered != b->covered) return false;
    uint16_t to_b[MD_TOPO_MAX_NODES];
    for (int i = 0; i < a->nnodes; i++) {
        int j = 0;
        while (j < b->nnodes && (a->nodes[i].port != b->nodes[j].port ||
                                 strcmp(a->nodes[i].host, b->nodes[j].host) != 0))
            j++;
        if (j == b->nnodes) return false;
        to_b[i] = (uint16_t)j;
    }
    for (size_t s = 0; s < MD_SLOT_COUNT; s++) {
        uint16_t o = a->owner[s];
        if (o == MD_SLOT_NONE ? b->owner[s] != MD_SLOT_NONE : b->owner[s] != to_b[o]) return false;
    }
    return true;
}

/* One candidate's map into t. 0, or -1 with a reason naming the node. */
static int fetch_from(md_topo_service *s, const md_topo_node *n, md_topology *t, char *err,
                      size_t errlen)
{
    const md_config *cfg = s->cfg;
    md_redis_target tgt;
    char why[200];
    if (md_topo_node_target(s->seed, n, &tgt, why, sizeof why)) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    md_bconn c;
    /* One deadline for connect, AUTH and the reply: a node that is slow at
     * any of them costs connect_timeout at most before the next is tried. */
    md_bconn_deadline(&c, cfg->connect_timeout_s);
    int rc = -1;
    if (md_bconn_open(&c, &tgt) != MD_BCONN_OK || md_bconn_auth(&c, &cfg->redis))
        snprintf(err, errlen, "%.100s: %.180s", tgt.display, c.msg);
    else if (md_topology_fetch(t, &c, cfg->redis.kind == MD_REDIS_TLS, n->host, why, sizeof why))
        snprintf(err, errlen, "%.100s: %.180s", tgt.display, why);
    else
        rc = 0;
    md_bconn_close(&c);
    return rc;
}

static bool in_map(const md_topology *t, const char *host, uint16_t port)
{
    for (int i = 0; i < t->nnodes; i++)
        if (t->nodes[i].port == port && strcmp(t->nodes[i].host, host) == 0) return true;
    return false;
}

/* Asks the candidates in turn; the best map read lands in *best.
 * 1: a map that covers every slot; 0: only incomplete ones; -1: none. */
static int read_map(md_topo_service *s, md_topology **best, char *err, size_t errlen)
{
    const md_redis_url *u = &s->cfg->redis;
    md_topology *got = s->work, *keep = s->work + 1;
    bool have = false;
    int ncand = s->cur.nnodes + u->nseeds;
    err[0] = '\0';
    /* The current primaries first: they answered last time and one of them
     * is almost always still up. The seeds then cover a map whose
     * primaries all moved away. cur is written by this thread only, so it
     * is read here without the lock. */
    for (int i = 0; i < ncand && !atomic_load(&s->stop); i++) {
        md_topo_node seed_node;
        const md_topo_node *n;
        if (i < s->cur.nnodes) {
            n = &s->cur.nodes[i];
        } else {
            const int k = i - s->cur.nnodes;
            if (!u->seeds[k].host[0] || in_map(&s->cur, u->seeds[k].host, u->seeds[k].port))
                continue; /* unix (no cluster there), or just asked */
            memset(&seed_node, 0, sizeof seed_node);
            snprintf(seed_node.host, sizeof seed_node.host, "%s", u->seeds[k].host);
            seed_node.port = u->seeds[k].port;
            n = &seed_node;
        }
        char why[300];
        if (fetch_from(s, n, got, why, sizeof why)) {
            snprintf(err, errlen, "%s", why);
            continue;
        }
        if (got->covered == 0) {
            snprintf(err, errlen, "%.100s:%u: no slot has a primary", n->host, n->port);
            continue;
        }
        if (!have || got->covered > keep->covered) {
            md_topology *t = keep;
            keep = got;
            got = t;
            have = true;
        }
        if (keep->covered == MD_SLOT_COUNT) break;
    }
    *best = keep;
    return !have ? -1 : keep->covered == MD_SLOT_COUNT ? 1 : 0;
}

/* Name lookups happen here, on this thread, once per node per map. */
static void resolve_nodes(const md_redis_target *seed, md_topology *t)
{
    for (int i = 0; i < t->nnodes; i++) {
        md_topo_node *n = &t->nodes[i];
        md_redis_target tg;
        char err[300];
        if (n->addrlen) continue;
        if (md_topo_node_target(seed, n, &tg, err, sizeof err) == 0) {
            memcpy(&n->addr, &tg.addr, tg.addrlen);
            n->addrlen = tg.addrlen;
        } else {
            MD_LOG_RL(MD_LOG_WARN, 5, "cluster: node %s:%u: %s", n->host, n->port, err);
        }
    }
}

/* True if t differs from the map published before (and is now it). */
static bool publish(md_topo_service *s, md_topology *t)
{
    atomic_fetch_add(&s->refreshes, 1);
    if (same_map(&s->cur, t)) return false;
    resolve_nodes(s->seed, t);
    pthread_mutex_lock(&s->mu);
    memcpy(&s->cur, t, sizeof s->cur);
    uint32_t v = atomic_load(&s->version) + 1;
    if (v == 0) v = 1; /* 0 means "no map yet" to a worker */
    atomic_store(&s->version, v);
    pthread_mutex_unlock(&s->mu);
    char desc[1024];
    md_topology_describe(t, desc, sizeof desc);
    md_info("cluster: slot map version %u: %s", v, desc);
    return true;
}

/* Waits up to ms, or until signalled. `wanted`: a request was already
 * pending (its gap running), so only stop can cut the wait short. */
static void wait_ms(md_topo_service *s, int64_t ms, bool wanted)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    if (!atomic_load(&s->stop) && (wanted || !atomic_load(&s->want)))
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg)
{
    md_topo_service *s = arg;
    const md_config *cfg = s->cfg;
    const int64_t period = (int64_t)(MD_TOPO_PERIOD_S * 1000);
    /* Requests are served MD_TOPO_MIN_GAP_MS apart while the map moves (a
     * failover changes it twice within seconds: the primary flagged
     * failed, then its replica promoted). Once it has not changed for
     * MD_TOPO_SETTLE_MS, refreshes that find nothing new stretch the gap
     * to MD_TOPO_MAX_GAP_MS, so a primary that stays dead without a
     * replica costs its cluster a CLUSTER SHARDS every 2 s, not ten a
     * second. */
    int64_t last = md_bconn_now_ms(); /* the initial map was read just now */
    int64_t gap = MD_TOPO_MIN_GAP_MS, changed_ms = last;
    int64_t retry_at = 0;             /* after a refresh that reached no node */
    double backoff = cfg->reconnect_min_s;
    while (!atomic_load(&s->stop)) {
        int64_t now = md_bconn_now_ms(), due = last + period;
        bool wanted = atomic_load(&s->want);
        if (wanted && last + gap < due) due = last + gap;
        if (retry_at && retry_at < due) due = retry_at > last + gap ? retry_at : last + gap;
        if (now < due) {
            wait_ms(s, due - now < MD_TOPO_WAIT_MS ? due - now : MD_TOPO_WAIT_MS, wanted);
            continue;
        }
        /* Cleared before asking, so a request made while this refresh runs
         * gets a refresh of its own after it. */
        atomic_store(&s->want, 0);
        last = now;
        md_topology *best;
        char err[300];
        int rc = read_map(s, &best, err, sizeof err);
        if (atomic_load(&s->stop)) break;
        if (rc < 0) {
            atomic_fetch_add(&s->failures, 1);
            MD_LOG_RL(MD_LOG_WARN, 1,
                      "cluster: slot map refresh reached no node (last: %s); keeping version %u",
                      err[0] ? err : "no node to ask", atomic_load(&s->version));
            retry_at = md_bconn_now_ms() + (int64_t)(backoff * 1000);
            backoff = backoff * 2 > cfg->reconnect_max_s ? cfg->reconnect_max_s : backoff * 2;
            continue;
        }
        retry_at = 0;
        backoff = cfg->reconnect_min_s;
        if (publish(s, best)) changed_ms = now;
        if (now - changed_ms < MD_TOPO_SETTLE_MS)
            gap = MD_TOPO_MIN_GAP_MS;
        else
            gap = gap * 2 > MD_TOPO_MAX_GAP_MS ? MD_TOPO_MAX_GAP_MS : gap * 2;
        /* Slots without a primary (a failover under way): ask again after
         * the gap until a promoted replica owns them. */
        if (rc == 0) atomic_store(&s->want, 1);
    }
    return NULL;
}

int md_topo_service_start(md_topo_service *s, const md_config *cfg, const md_redis_target *seed,
                          const md_topology *initial)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->seed = seed;
    s->work = malloc(2 * sizeof *s->work);
    if (!s->work) return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(s->work);
        s->work = NULL;
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    memcpy(&s->cur, initial, sizeof s->cur);
    resolve_nodes(seed, &s->cur);
    atomic_store(&s->version, 1);
    /* No seed answered at start-up, or a failover was under way: look
     * again as soon as the gap allows, not a period later. */
    if (initial->covered < MD_SLOT_COUNT) atomic_store(&s->want, 1);
    if (pthread_create(&s->thread, NULL, run, s)) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s->work);
        s->work = NULL;
        return -1;
    }
    pthread_setname_np(s->thread, "mdcache-topo");
    s->started = true;
    return 0;
}

void md_topo_service_stop(md_topo_service *s)
{
    if (!s->started) return;
    atomic_store(&s->stop, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->work);
    s->work = NULL;
    s->started = false;
}

void md_topo_service_request(md_topo_service *s)
{
    /* A second request while one is pending changes nothing: skip the
     * signal, which every MOVED of a burst would otherwise send. */
    if (atomic_exchange(&s->want, 1) == 0 && s->started) pthread_cond_signal(&s->cv);
}

bool md_topo_service_get(md_topo_service *s, md_topology *out, uint32_t *ver)
{
    /* Workers call this every loop turn: the lock-free look keeps them off
     * the mutex's cache line until there is something to copy. */
    if (atomic_load(&s->version) == *ver) return false;
    if (pthread_mutex_trylock(&s->mu)) return false;
    uint32_t v = atomic_load(&s->version);
    bool got = v != *ver;
    if (got) {
        memcpy(out, &s->cur, sizeof *out);
        *ver = v;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}
