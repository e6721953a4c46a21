/*
 * md_expiry: the stale-feed watcher. See include/md_expiry.h.
 *
 * Keyspace notifications are fire-and-forget in Redis: an event that
 * happens while we are not subscribed is lost (in a cluster, also one that
 * happens on a promoted replica before a refreshed map names it). So the
 * counters say what was seen, not what happened; docs/keys.md says so.
 * Events of keys that are not ours (another application's, in the same
 * database) are skipped.
 *
 * One thread serves every node: poll() over the subscribed connections,
 * connects (blocking, within connect_timeout) when a down node is due.
 * A standalone server is the one-node case of the same loop.
 */
#include "md_expiry.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "md_bconn.h"
#include "md_log.h"
#include "md_tls.h"

#define MD_EXPIRY_POLL_MS 200 /* how often the loop looks at the stop flag and the map */
#define MD_EXPIRY_DRAIN 256   /* replies taken from one node per turn: a flood on one
                               * node must not starve the others */

size_t md_expiry_event_json(char *buf, size_t cap, const char *cls, const char *key,
                            size_t klen, const char *field, const char *sym, size_t slen,
                            int64_t ts_ms)
{
    /* Keys are ours in shape, but their bytes came from Redis: escape. */
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < cap) buf[o++] = (c);                                                           \
    } while (0)
#define PUTS(s)                                                                                    \
    for (const char *p_ = (s); *p_; p_++) PUT(*p_)
#define PUTJ(p, n)                                                                                 \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                          \
        unsigned char c_ = (unsigned char)(p)[i_];                                                 \
        if (c_ == '"' || c_ == '\\') {                                                             \
            PUT('\\');                                                                             \
            PUT((char)c_);                                                                         \
        } else if (c_ < 0x20) {                                                                    \
            char u_[8];                                                                            \
            snprintf(u_, sizeof u_, "\\u%04x", c_);                                                \
            PUTS(u_);                                                                              \
        } else {                                                                                   \
            PUT((char)c_);                                                                         \
        }                                                                                          \
    }
    PUTS("{\"event\":\"expired\",\"class\":\"");
    PUTS(cls);
    PUTS("\",\"key\":\"");
    PUTJ(key, klen);
    PUTS("\",\"");
    PUTS(field);
    PUTS("\":\"");
    PUTJ(sym, slen);
    char ts[32];
    snprintf(ts, sizeof ts, "\",\"ts\":%lld}", (long long)ts_ms);
    PUTS(ts);
#undef PUT
#undef PUTS
#undef PUTJ
    if (cap) buf[o] = '\0';
    return o;
}

static int64_t epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One command's reply within connect_timeout: the reply, or NULL (msg). */
static redisReply *ask(md_bconn *c, const md_config *cfg, int argc, const char *const *argv)
{
    md_bconn_deadline(c, cfg->connect_timeout_s);
    if (md_bconn_command(c, argc, argv)) return NULL;
    md_bconn_rc rc;
    return md_bconn_reply(c, &rc);
}

static bool has_flags(const char *f, bool *E, bool *x)
{
    *E = strchr(f, 'E') != NULL;
    *x = strchr(f, 'x') != NULL || strchr(f, 'A') != NULL; /* A = "g$lshzxet" */
    return *E && *x;
}

/* Makes sure node n sends expired-key events, or says once why it cannot. */
static void ensure_notify(md_expiry *x, md_expiry_node *n)
{
    const md_config *cfg = x->cfg;
    md_bconn *c = &n->c;
    const char *get[3] = {"CONFIG", "GET", "notify-keyspace-events"};
    redisReply *rep = ask(c, cfg, 3, get);
    if (!rep) return;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        if (!n->warned)
            md_warn("expiry watcher: redis %s refused CONFIG GET (%s); cannot check that "
                    "notify-keyspace-events contains E and x, without which expired keys go "
                    "unnoticed",
                    n->target.display, rep->type == REDIS_REPLY_ERROR ? rep->str : "odd reply");
        n->warned = true;
        freeReplyObject(rep);
        return;
    }
    char flags[64];
    snprintf(flags, sizeof flags, "%s", rep->element[1]->str);
    freeReplyObject(rep);
    bool E, X;
    if (has_flags(flags, &E, &X)) return;
    char want[72];
    snprintf(want, sizeof want, "%s%s%s", flags, E ? "" : "E", X ? "" : "x");
    if (!cfg->set_notify_events) {
        if (!n->warned)
            md_warn("expiry watcher: notify-keyspace-events is '%s' on redis %s, so expired keys "
                    "are not notified; set it to '%s' (or set_notify_events = yes)",
                    flags, n->target.display, want);
        n->warned = true;
        return;
    }
    const char *set[4] = {"CONFIG", "SET", "notify-keyspace-events", want};
    rep = ask(c, cfg, 4, set);
    if (!rep) return;
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!n->warned)
            md_warn("expiry watcher: redis %s refused CONFIG SET notify-keyspace-events %s (%s); "
                    "expired keys go unnoticed until an operator sets it",
                    n->target.display, want, rep->str);
        n->warned = true;
    } else {
        md_info("expiry watcher: notify-keyspace-events set to '%s' on redis %s (was '%s')", want,
                n->target.display, flags);
    }
    freeReplyObject(rep);
}

/* The thread's own state, beside the node table. */
typedef struct watcher {
    md_stats st;
    char chan[64];
    md_bconn pub;      /* PUBLISH of events: a subscribed connection cannot */
    bool pub_open;
    char pub_host[256]; /* cluster: the node pub is connected to */
    uint16_t pub_port;
} watcher;

static int find_node(const md_expiry *x, const char *host, uint16_t port)
{
    for (int i = 0; i < x->nnodes; i++)
        if (x->nodes[i].port == port && strcmp(x->nodes[i].host, host) == 0) return i;
    return -1;
}

/* PUBLISHes one event. The connection is opened to the node the event came
 * from, which has just shown it is up; in a cluster any node will do, as
 * the cluster forwards a PUBLISH to every node's subscribers. */
static void publish_event(md_expiry *x, watcher *w, const md_expiry_node *n, const char *json)
{
    const md_config *cfg = x->cfg;
    md_bconn *pub = &w->pub;
    if (!w->pub_open) {
        md_bconn_deadline(pub, cfg->connect_timeout_s);
        if (md_bconn_open(pub, &n->target) != MD_BCONN_OK || md_bconn_auth(pub, &cfg->redis)) {
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: cannot publish events: %s", pub->msg);
            md_bconn_close(pub);
            return;
        }
        w->pub_open = true;
        snprintf(w->pub_host, sizeof w->pub_host, "%s", n->host);
        w->pub_port = n->port;
    }
    const char *argv[3] = {"PUBLISH", cfg->events_channel, json};
    redisReply *rep = ask(pub, cfg, 3, argv);
    if (rep && rep->type != REDIS_REPLY_ERROR) {
        w->st.events_published++;
    } else {
        MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: PUBLISH on %s failed: %s", cfg->events_channel,
                  rep ? rep->str : pub->msg);
        if (!rep) {
            md_bconn_close(pub);
            w->pub_open = false;
        }
    }
    if (rep) freeReplyObject(rep);
}

/* Our key classes, most specific template first: an order key also has
 * the shape of its account's order list key with a longer account. */
static const struct {
    const char *name;  /* "class" in events */
    const char *field; /* what the template's variable names */
    size_t counter;    /* offsetof(md_stats, ...) */
} md_expiry_classes[MD_EXPIRY_CLASSES] = {
    {"price", "symbol", offsetof(md_stats, expired_price)},
    {"price_fallback", "symbol", offsetof(md_stats, expired_fallback)},
    {"positions", "account", offsetof(md_stats, expired_positions)},
    {"order", "account", offsetof(md_stats, expired_orders)},
    {"order_list", "account", offsetof(md_stats, expired_orders)},
    {"balances", "account", offsetof(md_stats, expired_balances)},
    {"accounts", "account", offsetof(md_stats, expired_accounts)},
};

static void on_expired(md_expiry *x, watcher *w, const md_expiry_node *n, const char *key,
                       size_t klen)
{
    const char *sym = NULL;
    size_t slen = 0;
    int c;
    for (c = 0; c < MD_EXPIRY_CLASSES; c++)
        if (x->tpl[c].nvars && md_keytpl_match(&x->tpl[c], key, klen, &sym, &slen)) break;
    if (c == MD_EXPIRY_CLASSES) return; /* not ours */
    (*(uint64_t *)((char *)&w->st + md_expiry_classes[c].counter))++;
    MD_LOG_RL(MD_LOG_INFO, 5, "stale: %.*s expired (its source went quiet)", (int)klen, key);
    md_stats_publish(&x->pub, &w->st);
    if (x->cfg->publish_events) {
        char json[1024];
        md_expiry_event_json(json, sizeof json, md_expiry_classes[c].name, key, klen,
                             md_expiry_classes[c].field, sym, slen, epoch_ms());
        publish_event(x, w, n, json);
        md_stats_publish(&x->pub, &w->st);
    }
}

void md_expiry_channel(const md_expiry *x, char *buf, size_t cap)
{
    snprintf(buf, cap, "__keyevent@%d__:expired", x->topo ? 0 : x->cfg->redis.db);
}

static void node_down(md_expiry_node *n, double wait_s)
{
    md_bconn_close(&n->c);
    n->up = n->more = false;
    n->retry_ms = md_bconn_now_ms() + (int64_t)(wait_s * 1000);
}

/* Connects to n, turns the events on and subscribes; on failure schedules
 * the next attempt on n's backoff. */
static void node_connect(md_expiry *x, watcher *w, md_expiry_node *n)
{
    const md_config *cfg = x->cfg;
    if (x->topo) {
        /* Resolved at every attempt: a node that moved to another address
         * under the same name is found again. */
        md_topo_node tn;
        memset(&tn, 0, sizeof tn);
        snprintf(tn.host, sizeof tn.host, "%s", n->host);
        tn.port = n->port;
        char err[300];
        if (md_topo_node_target(x->target, &tn, &n->target, err, sizeof err)) {
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: %s; retrying", err);
            snprintf(n->target.display, sizeof n->target.display, "%s:%u", n->host, n->port);
            node_down(n, n->backoff_s);
            n->backoff_s = n->backoff_s * 2 > cfg->reconnect_max_s ? cfg->reconnect_max_s
                                                                   : n->backoff_s * 2;
            return;
        }
    }
    md_bconn *c = &n->c;
    md_bconn_deadline(c, cfg->connect_timeout_s);
    bool ok = md_bconn_open(c, &n->target) == MD_BCONN_OK && md_bconn_auth(c, &cfg->redis) == 0;
    if (ok) ensure_notify(x, n);
    const char *sub[2] = {"SUBSCRIBE", w->chan};
    redisReply *rep = ok ? ask(c, cfg, 2, sub) : NULL;
    ok = rep && rep->type == REDIS_REPLY_ARRAY;
    if (!ok && rep && rep->type == REDIS_REPLY_ERROR) {
        /* Refused, not failed (an ACL without +subscribe): say it once
         * with the fix, then keep trying quietly in case it is granted. */
        if (!n->refused)
            md_warn("expiry watcher: redis %s refused SUBSCRIBE %s (%s): expired keys are not "
                    "counted; grant +subscribe and &%s, or set watch_expired = no",
                    n->target.display, w->chan, rep->str, w->chan);
        n->refused = true;
        freeReplyObject(rep);
        node_down(n, cfg->reconnect_max_s);
        return;
    }
    if (!ok) {
        MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: redis %s: %s; retrying", n->target.display,
                  c->msg);
        if (rep) freeReplyObject(rep);
        node_down(n, n->backoff_s);
        n->backoff_s =
            n->backoff_s * 2 > cfg->reconnect_max_s ? cfg->reconnect_max_s : n->backoff_s * 2;
        return;
    }
    freeReplyObject(rep);
    md_info("expiry watcher: subscribed to %s on redis %s", w->chan, n->target.display);
    n->backoff_s = cfg->reconnect_min_s;
    n->up = true;
    n->more = true; /* events may have come in with the SUBSCRIBE reply */
}

/* The next reply if one is there, without waiting: 1 (*out set), 0 none
 * yet, -1 the connection failed (msg). md_bconn_reply is not used here:
 * it waits up to a deadline, and after a wait that ends with nothing, a TLS
 * connection is searched for an alert, which can swallow bytes of an event
 * arriving at that moment. */
static int next_reply(md_bconn *c, redisReply **out)
{
    char buf[16384];
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(c->rd, &rep) != REDIS_OK) {
            snprintf(c->msg, sizeof c->msg, "protocol error: %s", c->rd->errstr);
            return -1;
        }
        if (rep) {
            *out = rep;
            return 1;
        }
        if (c->tls) {
            size_t got = 0;
            md_tls_rc t = md_tls_read(c->tls, buf, sizeof buf, &got);
            if (t == MD_TLS_OK) {
                redisReaderFeed(c->rd, buf, got);
                continue;
            }
            if (t != MD_TLS_WANT) {
                snprintf(c->msg, sizeof c->msg, "TLS: %s",
                         t == MD_TLS_ERR ? md_tls_error(c->tls) : "closed by the server");
                return -1;
            }
        }
        ssize_t k = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k > 0) {
            if (c->tls) md_tls_put_cipher(c->tls, buf, (size_t)k);
            else redisReaderFeed(c->rd, buf, (size_t)k);
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
        snprintf(c->msg, sizeof c->msg, "%s", k == 0 ? "closed the connection" : strerror(errno));
        return -1;
    }
}

/* Reads what node n has sent, up to MD_EXPIRY_DRAIN replies. */
static void drain(md_expiry *x, watcher *w, md_expiry_node *n)
{
    for (int i = 0; i < MD_EXPIRY_DRAIN; i++) {
        redisReply *rep = NULL;
        int rc = next_reply(&n->c, &rep);
        if (rc == 0) {
            n->more = false;
            return;
        }
        if (rc < 0) {
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: redis %s: %s; resubscribing",
                      n->target.display, n->c.msg);
            node_down(n, 0); /* at once, as a first connect; backoff if that fails */
            return;
        }
        /* ["message", channel, key] */
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            rep->element[2]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[0]->str, "message") == 0)
            on_expired(x, w, n, rep->element[2]->str, rep->element[2]->len);
        freeReplyObject(rep);
    }
    n->more = true;
}

static bool in_map(const md_topology *t, const char *host, uint16_t port)
{
    for (int i = 0; i < t->nnodes; i++)
        if (t->nodes[i].port == port && strcmp(t->nodes[i].host, host) == 0) return true;
    return false;
}

int md_expiry_follow(md_expiry *x, const md_topology *t)
{
    int changes = 0;
    for (int i = 0; i < x->nnodes;) {
        md_expiry_node *n = &x->nodes[i];
        if (in_map(t, n->host, n->port)) {
            i++;
            continue;
        }
        if (n->up) md_info("expiry watcher: redis %s is no longer a primary", n->target.display);
        md_bconn_close(&n->c);
        if (i != x->nnodes - 1) memcpy(n, &x->nodes[x->nnodes - 1], sizeof *n);
        x->nnodes--;
        changes++;
    }
    for (int j = 0; j < t->nnodes && x->nnodes < MD_TOPO_MAX_NODES; j++) {
        const md_topo_node *tn = &t->nodes[j];
        if (find_node(x, tn->host, tn->port) >= 0) continue;
        md_expiry_node *n = &x->nodes[x->nnodes++];
        memset(n, 0, sizeof *n);
        snprintf(n->host, sizeof n->host, "%s", tn->host);
        n->port = tn->port;
        bool v6 = strchr(tn->host, ':') != NULL;
        snprintf(n->target.display, sizeof n->target.display, "%s%s%s:%u", v6 ? "[" : "",
                 tn->host, v6 ? "]" : "", tn->port);
        n->c.fd = -1;
        n->backoff_s = x->cfg->reconnect_min_s;
        n->retry_ms = 0; /* due at once */
        changes++;
    }
    return changes;
}

static void *watch(void *arg)
{
    md_expiry *x = arg;
    watcher *w = calloc(1, sizeof *w);
    struct pollfd *fds = calloc(MD_TOPO_MAX_NODES, sizeof *fds);
    int *idx = calloc(MD_TOPO_MAX_NODES, sizeof *idx);
    if (!w || !fds || !idx) {
        md_error("expiry watcher: out of memory: expired keys will not be counted");
        free(w);
        free(fds);
        free(idx);
        return NULL;
    }
    md_expiry_channel(x, w->chan, sizeof w->chan);
    w->pub.fd = -1;

    while (!atomic_load(&x->stop)) {
        if (x->topo && md_topo_service_get(x->topo, x->map, &x->map_ver)) {
            md_expiry_follow(x, x->map);
            if (w->pub_open && find_node(x, w->pub_host, w->pub_port) < 0) {
                md_bconn_close(&w->pub);
                w->pub_open = false;
            }
        }
        for (int i = 0; i < x->nnodes && !atomic_load(&x->stop); i++)
            if (!x->nodes[i].up && x->nodes[i].retry_ms <= md_bconn_now_ms())
                node_connect(x, w, &x->nodes[i]);
        int nf = 0, timeout = MD_EXPIRY_POLL_MS;
        int64_t now = md_bconn_now_ms();
        for (int i = 0; i < x->nnodes; i++) {
            md_expiry_node *n = &x->nodes[i];
            if (n->up) {
                fds[nf] = (struct pollfd){.fd = n->c.fd, .events = POLLIN};
                idx[nf++] = i;
                if (n->more) timeout = 0;
            } else if (n->retry_ms - now < timeout) {
                timeout = n->retry_ms > now ? (int)(n->retry_ms - now) : 0;
            }
        }
        if (poll(fds, (nfds_t)nf, timeout) < 0 && errno != EINTR) {
            /* Not expected with valid descriptors; do not spin if it happens. */
            MD_LOG_RL(MD_LOG_WARN, 1, "expiry watcher: poll: %s", strerror(errno));
            struct timespec ts = {0, MD_EXPIRY_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        for (int k = 0; k < nf && !atomic_load(&x->stop); k++) {
            md_expiry_node *n = &x->nodes[idx[k]];
            if (n->up && (fds[k].revents || n->more)) drain(x, w, n);
        }
    }
    for (int i = 0; i < x->nnodes; i++) md_bconn_close(&x->nodes[i].c);
    if (w->pub_open) md_bconn_close(&w->pub);
    free(w);
    free(fds);
    free(idx);
    return NULL;
}

int md_expiry_start(md_expiry *x, const md_config *cfg, const md_redis_target *t,
                    md_topo_service *topo)
{
    memset(x, 0, sizeof *x);
    x->cfg = cfg;
    x->target = t;
    x->topo = topo;
    if (!cfg->watch_expired) return 0;
    /* Same order as md_expiry_classes; an empty template stays nvars 0. */
    const char *const tpls[MD_EXPIRY_CLASSES] = {
        cfg->price_key,    cfg->last_good_key,  cfg->positions_key, cfg->order_key,
        cfg->order_list_key, cfg->balances_key, cfg->accounts_key,
    };
    for (int c = 0; c < MD_EXPIRY_CLASSES; c++) {
        bool sym = c < 2, order = c == 3;
        if (tpls[c][0] && md_keytpl_init_vars(&x->tpl[c], cfg->key_prefix, tpls[c],
                                              sym ? "{symbol}" : "{account}",
                                              order ? "{order_id}" : NULL))
            return -1;
    }
    x->nodes = calloc(topo ? MD_TOPO_MAX_NODES : 1, sizeof *x->nodes);
    x->map = topo ? malloc(sizeof *x->map) : NULL;
    if (!x->nodes || (topo && !x->map)) goto fail;
    if (!topo) {
        /* The one node; its nodes[] identity (host, port) is never looked at. */
        md_expiry_node *n = &x->nodes[0];
        n->target = *t;
        n->c.fd = -1;
        n->backoff_s = cfg->reconnect_min_s;
        x->nnodes = 1;
    }
    if (pthread_create(&x->thread, NULL, watch, x)) goto fail;
    pthread_setname_np(x->thread, "mdcache-expiry");
    x->started = true;
    return 0;
fail:
    free(x->nodes);
    free(x->map);
    x->nodes = NULL;
    x->map = NULL;
    return -1;
}

void md_expiry_stop(md_expiry *x)
{
    if (!x->started) return;
    atomic_store(&x->stop, 1);
    pthread_join(x->thread, NULL);
    free(x->nodes);
    free(x->map);
    x->nodes = NULL;
    x->map = NULL;
    x->nnodes = 0;
    x->started = false;
}

void md_expiry_collect(md_expiry *x, md_stats *sum) { md_stats_collect(sum, &x->pub); }
