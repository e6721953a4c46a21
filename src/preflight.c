/*
 * md_preflight: the start-up check. See include/md_preflight.h.
 *
 * Blocking I/O is fine here: no worker runs yet. Every wait is bounded by
 * connect_timeout from the start of the check. TLS goes through md_tls, the
 * same code the workers use, so a certificate accepted here is accepted
 * there.
 */
#include "md_preflight.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "md_bconn.h"
#include "md_format.h"
#include "md_topo_service.h"
#include "md_topology.h"

/* A cluster node: read its map (or say why it cannot be used). */
static md_bconn_rc cluster_node(md_bconn *p, const md_config *cfg, const md_redis_target *t,
                                md_topology *topo)
{
    char err[160], desc[160];
    if (md_topology_fetch(topo, p, cfg->redis.kind == MD_REDIS_TLS, t->host[0] ? t->host
                                                                                : cfg->redis.host,
                          err, sizeof err) == 0)
        md_topology_describe(topo, desc, sizeof desc);
    else
        snprintf(desc, sizeof desc, "topology unknown: %.80s", err);
    if (cfg->cluster == MD_CLUSTER_NO) {
        /* Writing to one node would lose every key of the others' slots
         * to MOVED. */
        snprintf(p->msg, sizeof p->msg,
                 "is a Redis Cluster node (%.100s), but cluster = no: set cluster = auto or yes, "
                 "or point mdcache at a standalone server",
                 desc);
        return MD_BCONN_REFUSED;
    }
    if (cfg->redis.db != 0) {
        snprintf(p->msg, sizeof p->msg,
                 "is a Redis Cluster node (%.100s): Redis Cluster has only database 0, the URL "
                 "asks for %d",
                 desc, cfg->redis.db);
        return MD_BCONN_REFUSED;
    }
    snprintf(p->msg, sizeof p->msg, "%s", desc);
    return MD_BCONN_OK;
}

static md_bconn_rc do_commands(md_bconn *p, const md_config *cfg, const md_redis_target *t,
                               md_topology *topo, bool *is_cluster)
{
    const md_redis_url *u = &cfg->redis;
    char out[2048], db[16];
    size_t len = 0;
    bool auth = u->pass[0] != 0;
    if (auth) len += md_resp_auth(out + len, sizeof out - len, u->user, u->pass);
    snprintf(db, sizeof db, "%d", u->db);
    const char *sel[2] = {"SELECT", db}, *ping[1] = {"PING"}, *info[2] = {"INFO", "cluster"};
    len += md_resp_cmd(out + len, sizeof out - len, 2, sel, NULL);
    len += md_resp_cmd(out + len, sizeof out - len, 1, ping, NULL);
    len += md_resp_cmd(out + len, sizeof out - len, 2, info, NULL);
    int sent = md_bconn_send(p, out, len);
    memset(out, 0, sizeof out); /* the password */
    if (sent) return p->tls && md_bconn_tls_alert(p) ? MD_BCONN_REFUSED : MD_BCONN_UNREACHABLE;

    md_bconn_rc rc = MD_BCONN_OK;
    for (int i = auth ? 0 : 1; i < 4 && rc == MD_BCONN_OK; i++) {
        redisReply *rep = md_bconn_reply(p, &rc);
        if (!rep) break;
        if (i == 3 && rep->type == REDIS_REPLY_STRING) {
            *is_cluster = strstr(rep->str, "cluster_enabled:1") != NULL;
            if (*is_cluster) {
                rc = cluster_node(p, cfg, t, topo);
            } else if (cfg->cluster == MD_CLUSTER_YES) {
                snprintf(p->msg, sizeof p->msg,
                         "is not a Redis Cluster node (cluster_enabled:0), but cluster = yes");
                rc = MD_BCONN_REFUSED;
            }
        } else if (rep->type == REDIS_REPLY_ERROR) {
            const char *e = rep->str;
            if (i == 0) {
                snprintf(p->msg, sizeof p->msg, "refused the credentials: %s", e);
                rc = MD_BCONN_REFUSED;
            } else if (strncmp(e, "NOAUTH", 6) == 0) {
                snprintf(p->msg, sizeof p->msg,
                         "requires a password (%s); give it in the URL, [redis] password or "
                         "REDIS_PASSWORD",
                         e);
                rc = MD_BCONN_REFUSED;
            } else if (strncmp(e, "LOADING", 7) == 0) {
                snprintf(p->msg, sizeof p->msg, "is loading its data (%s)", e);
                rc = MD_BCONN_UNREACHABLE;
            } else if (i == 1) {
                snprintf(p->msg, sizeof p->msg, "refused SELECT %d: %s", u->db, e);
                rc = MD_BCONN_REFUSED;
            }
            /* PING or INFO refused otherwise (an ACL without +ping or
             * +info): not ours to judge */
        }
        freeReplyObject(rep);
    }
    return rc;
}

/* A TLS handshake that got no answer at all: a stopped server, or a
 * plain-text Redis port, which takes our ClientHello for the start of an
 * inline command and waits for its end of line. The two look the same
 * from the TLS side; a plain-text PING on a second connection tells them
 * apart, and a plain-text port will never start talking TLS. */
static bool plain_port(const md_config *cfg, const md_redis_target *t)
{
    md_redis_target plain = *t;
    plain.tls = NULL;
    md_bconn q;
    md_bconn_deadline(&q, cfg->connect_timeout_s);
    bool is_plain = false;
    if (md_bconn_open(&q, &plain) == MD_BCONN_OK && md_bconn_send(&q, "PING\r\n", 6) == 0) {
        md_bconn_rc rc;
        redisReply *rep = md_bconn_reply(&q, &rc);
        is_plain = rep != NULL;
        if (rep) freeReplyObject(rep);
    }
    md_bconn_close(&q);
    return is_plain;
}

md_preflight_rc md_preflight(const md_config *cfg, const md_redis_target *t, char *msg,
                             size_t cap, md_topology *topo, bool *is_cluster)
{
    *is_cluster = false;
    md_bconn p;
    md_bconn_deadline(&p, cfg->connect_timeout_s);
    md_bconn_rc rc = md_bconn_open(&p, t);
    if (rc == MD_BCONN_UNREACHABLE && t->tls && p.timed_out && plain_port(cfg, t)) {
        snprintf(p.msg, sizeof p.msg, "TLS: no answer, but a plain-text PING is answered: this "
                                      "port does not speak TLS (use redis://, or the server's "
                                      "TLS port)");
        rc = MD_BCONN_REFUSED;
    }
    if (rc == MD_BCONN_OK) rc = do_commands(&p, cfg, t, topo, is_cluster);
    snprintf(msg, cap, "%s", p.msg);
    md_bconn_close(&p);
    return rc == MD_BCONN_OK ? MD_PREFLIGHT_OK
           : rc == MD_BCONN_REFUSED ? MD_PREFLIGHT_REFUSED : MD_PREFLIGHT_UNREACHABLE;
}

md_preflight_rc md_preflight_seeds(const md_config *cfg, const md_redis_target *seed,
                                   md_redis_target *answered, char *msg, size_t cap,
                                   md_topology *topo, bool *is_cluster)
{
    const md_redis_url *u = &cfg->redis;
    char err[512];
    int n = u->kind == MD_REDIS_UNIX ? 1 : u->nseeds;
    msg[0] = '\0';
    for (int i = 0; i < n; i++) {
        md_redis_target t = *seed;
        if (i > 0) {
            md_topo_node nd = {.port = u->seeds[i].port};
            snprintf(nd.host, sizeof nd.host, "%s", u->seeds[i].host);
            if (md_topo_node_target(seed, &nd, &t, err, sizeof err)) {
                if (!msg[0]) snprintf(msg, cap, "seed %s:%u: %s", nd.host, nd.port, err);
                continue;
            }
        }
        switch (md_preflight(cfg, &t, err, sizeof err, topo, is_cluster)) {
        case MD_PREFLIGHT_OK:
            if (!*is_cluster && cfg->cluster == MD_CLUSTER_YES) {
                *is_cluster = true;
                memset(topo, 0, sizeof *topo);
                for (int s = 0; s < MD_SLOT_COUNT; s++) topo->owner[s] = MD_SLOT_NONE;
            }
            *answered = t;
            snprintf(msg, cap, "%s", err);
            return MD_PREFLIGHT_OK;
        case MD_PREFLIGHT_REFUSED:
            snprintf(msg, cap, "redis %s%s%s", t.display, strncmp(err, "TLS:", 4) == 0 ? ": " : " ",
                     err);
            return MD_PREFLIGHT_REFUSED;
        case MD_PREFLIGHT_UNREACHABLE:
            if (!msg[0]) snprintf(msg, cap, "redis %s not reachable at start-up (%s)", t.display, err);
            break;
        }
    }
    return MD_PREFLIGHT_UNREACHABLE;
}
