/*
 * md_topology: the cluster slot map (see include/md_topology.h).
 *
 * Both replies come from the server, so every element is checked for type
 * and range before use: a malformed reply is an error, never a crash or a
 * slot pointed at garbage.
 */
#include "md_topology.h"

#include <hiredis/hiredis.h>

#include "md_bconn.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int md_topo_err(char *err, size_t errlen,
                                                             const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void md_topo_reset(md_topology *t)
{
    t->nnodes = 0;
    t->covered = 0;
    for (size_t i = 0; i < MD_SLOT_COUNT; i++)
        t->owner[i] = MD_SLOT_NONE;
}

static bool md_is_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* A usable host: not empty, not "?" (Redis's "unknown endpoint"), and
 * printable without blanks, so it reads back whole as a C string and in
 * logs. Anything else falls back. */
static const char *md_host_or(const redisReply *r, const char *fallback)
{
    if (!md_is_str(r) || r->len == 0 || r->len >= sizeof(((md_topo_node *)0)->host) ||
        (r->len == 1 && r->str[0] == '?'))
        return fallback;
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)r->str[i] <= 0x20 || (unsigned char)r->str[i] >= 0x7f)
            return fallback;
    return r->str;
}

/* Index of the primary host:port (added when new), or -1 if full. */
static int md_topo_add(md_topology *t, const char *host, long long port, const char *id)
{
    for (int i = 0; i < t->nnodes; i++)
        if (t->nodes[i].port == port && strcmp(t->nodes[i].host, host) == 0)
            return i;
    if (t->nnodes == MD_TOPO_MAX_NODES)
        return -1;
    md_topo_node *n = &t->nodes[t->nnodes];
    /* Whole: a map parsed into a used one must not keep an address the
     * topology thread resolved for another node at this index. */
    memset(n, 0, sizeof *n);
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = (uint16_t)port;
    snprintf(n->id, sizeof n->id, "%s", id ? id : "");
    return t->nnodes++;
}

static int md_topo_assign(md_topology *t, long long lo, long long hi, int node, char *err,
                          size_t errlen)
{
    if (lo < 0 || hi >= MD_SLOT_COUNT || lo > hi)
        return md_topo_err(err, errlen, "slot range %lld-%lld out of 0-16383", lo, hi);
    for (long long s = lo; s <= hi; s++) {
        if (t->owner[s] == MD_SLOT_NONE)
            t->covered++;
        t->owner[s] = (uint16_t)node;
    }
    return 0;
}

/* Value of `key` in a RESP2 map (flat array of name, value), or NULL. */
static const redisReply *md_map_get(const redisReply *m, const char *key)
{
    if (!m || m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2)
        if (md_is_str(m->element[i]) && strcmp(m->element[i]->str, key) == 0)
            return m->element[i + 1];
    return NULL;
}

static bool md_int_of(const redisReply *r, long long *v)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return false;
    *v = r->integer;
    return true;
}

int md_topology_from_shards(md_topology *t, const redisReply *r, bool tls,
                            const char *asked_host, char *err, size_t errlen)
{
    md_topo_reset(t);
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return md_topo_err(err, errlen, "CLUSTER SHARDS: not an array");
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *shard = r->element[s];
        const redisReply *slots = md_map_get(shard, "slots");
        const redisReply *nodes = md_map_get(shard, "nodes");
        if (!slots || slots->type != REDIS_REPLY_ARRAY || slots->elements % 2 ||
            !nodes || nodes->type != REDIS_REPLY_ARRAY)
            return md_topo_err(err, errlen, "CLUSTER SHARDS: shard %zu lacks slots or nodes", s);
        int primary = -1;
        for (size_t n = 0; n < nodes->elements; n++) {
            const redisReply *node = nodes->element[n];
            const redisReply *role = md_map_get(node, "role");
            const redisReply *health = md_map_get(node, "health");
            if (!md_is_str(role) || strcmp(role->str, "master") != 0)
                continue;
            /* A primary the cluster marked failed takes no writes: its
             * slots stay unowned until the promoted replica shows up. */
            if (md_is_str(health) && strcmp(health->str, "online") != 0)
                continue;
            long long port = 0, tport = 0;
            bool has_port = md_int_of(md_map_get(node, "port"), &port);
            bool has_tls = md_int_of(md_map_get(node, "tls-port"), &tport);
            if (tls && has_tls && tport > 0)
                port = tport;
            else if (!has_port || port <= 0)
                port = has_tls ? tport : 0;
            if (port <= 0 || port > 65535)
                return md_topo_err(err, errlen, "CLUSTER SHARDS: shard %zu: no usable port", s);
            const char *host = md_host_or(md_map_get(node, "endpoint"),
                                          md_host_or(md_map_get(node, "ip"), asked_host));
            const redisReply *id = md_map_get(node, "id");
            if (!host)
                return md_topo_err(err, errlen, "CLUSTER SHARDS: shard %zu: no address", s);
            primary = md_topo_add(t, host, port, md_is_str(id) ? id->str : NULL);
            if (primary < 0)
                return md_topo_err(err, errlen, "more than %d primaries", MD_TOPO_MAX_NODES);
            break;
        }
        if (primary < 0)
            continue;
        for (size_t i = 0; i < slots->elements; i += 2) {
            long long lo, hi;
            if (!md_int_of(slots->element[i], &lo) || !md_int_of(slots->element[i + 1], &hi))
                return md_topo_err(err, errlen, "CLUSTER SHARDS: shard %zu: bad slot range", s);
            if (md_topo_assign(t, lo, hi, primary, err, errlen))
                return -1;
        }
    }
    return 0;
}

int md_topology_from_slots(md_topology *t, const redisReply *r, bool tls,
                           const char *asked_host, char *err, size_t errlen)
{
    (void)tls; /* CLUSTER SLOTS reports the port of the connection's kind */
    md_topo_reset(t);
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return md_topo_err(err, errlen, "CLUSTER SLOTS: not an array");
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        long long lo, hi, port;
        if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            !md_int_of(e->element[0], &lo) || !md_int_of(e->element[1], &hi))
            return md_topo_err(err, errlen, "CLUSTER SLOTS: entry %zu has the wrong shape", i);
        const redisReply *p = e->element[2]; /* the primary comes first */
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 2 || !md_int_of(p->element[1], &port) ||
            port <= 0 || port > 65535)
            return md_topo_err(err, errlen, "CLUSTER SLOTS: entry %zu: bad primary", i);
        const char *host = md_host_or(p->element[0], asked_host);
        if (!host)
            return md_topo_err(err, errlen, "CLUSTER SLOTS: entry %zu: no address", i);
        int node = md_topo_add(t, host, port,
                                p->elements > 2 && md_is_str(p->element[2]) ? p->element[2]->str
                                                                            : NULL);
        if (node < 0)
            return md_topo_err(err, errlen, "more than %d primaries", MD_TOPO_MAX_NODES);
        if (md_topo_assign(t, lo, hi, node, err, errlen))
            return -1;
    }
    return 0;
}

const md_topo_node *md_topology_owner(const md_topology *t, const char *key, size_t len)
{
    uint16_t o = t->owner[md_slot_of(key, len)];
    return o == MD_SLOT_NONE ? NULL : &t->nodes[o];
}

int md_topology_fetch(md_topology *t, md_bconn *c, bool tls, const char *asked_host, char *err,
                      size_t errlen)
{
    static const char *const shards[2] = {"CLUSTER", "SHARDS"}, *const slots[2] = {"CLUSTER",
                                                                                  "SLOTS"};
    md_bconn_rc rc;
    for (int old = 0; old < 2; old++) {
        if (md_bconn_command(c, 2, old ? slots : shards))
            return md_topo_err(err, errlen, "%s", c->msg);
        redisReply *r = md_bconn_reply(c, &rc);
        if (!r)
            return md_topo_err(err, errlen, "%s", c->msg);
        /* Redis before 7.0 does not know SHARDS: ask the older way. */
        if (!old && r->type == REDIS_REPLY_ERROR && strstr(r->str, "nknown subcommand")) {
            freeReplyObject(r);
            continue;
        }
        int res;
        if (r->type == REDIS_REPLY_ERROR)
            res = md_topo_err(err, errlen, "CLUSTER %s: %s", old ? "SLOTS" : "SHARDS", r->str);
        else if (old)
            res = md_topology_from_slots(t, r, tls, asked_host, err, errlen);
        else
            res = md_topology_from_shards(t, r, tls, asked_host, err, errlen);
        freeReplyObject(r);
        return res;
    }
    return -1; /* not reached */
}

void md_topology_describe(const md_topology *t, char *buf, size_t cap)
{
    uint32_t per[MD_TOPO_MAX_NODES] = {0};
    size_t o;
    for (size_t s = 0; s < MD_SLOT_COUNT; s++)
        if (t->owner[s] != MD_SLOT_NONE)
            per[t->owner[s]]++;
    o = (size_t)snprintf(buf, cap, "%u primar%s", t->nnodes, t->nnodes == 1 ? "y" : "ies");
    for (int i = 0; i < t->nnodes && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s %s:%u (%u slots)", i ? "," : ":",
                              t->nodes[i].host, t->nodes[i].port, per[i]);
    if (o < cap && t->covered < MD_SLOT_COUNT)
        snprintf(buf + o, cap - o, ", %u slots without a primary",
                 MD_SLOT_COUNT - t->covered);
}
