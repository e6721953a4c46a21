/*
 * mdcache-inspect: what mdcache's keys look like in Redis right now.
 *
 * Statistics per key class (counts, TTL min/median/max, freshness), the
 * seeds' get_cache_stats counts, and INFO figures per node; or, with
 * --keys/--class, a bounded listing of keys with TTL and freshness. On a
 * Redis Cluster every primary is scanned.
 *
 * It reads keys only with SCAN, never KEYS: KEYS blocks the server for the
 * whole keyspace, and this runs against the Redis that mdcache and the
 * strategies are using. The connection, TLS, credentials and key templates
 * come from mdcache's own configuration code, so the tool sees the keys
 * mdcache writes under the same -c FILE and --redis URL.
 *
 * Exit codes: 0 done, 1 Redis unreachable (or lost mid-way), 2 bad
 * options or configuration, or Redis refused us (credentials, certificate,
 * database): the same split as mdcache's start-up check.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "md_bconn.h"
#include "lib/md_tool.h"
#include "md_config.h"
#include "md_format.h"
#include "md_preflight.h"
#include "md_redis.h"
#include "md_tls.h"
#include "md_topo_service.h"
#include "md_topology.h"

#define PROG "mdcache-inspect"

/* The classes of docs/keys.md, most specific template first, as the
 * expiry watcher matches them: an order key also has the shape of its
 * account's order list key with a longer account name. */
enum { C_PRICE, C_FALLBACK, C_POSITIONS, C_ORDER, C_ORDER_LIST, C_BALANCES, C_ACCOUNTS, NCLASS };
#define C_OTHER NCLASS

static const char *const class_names[NCLASS + 1] = {
    "price", "price_fallback", "positions", "order", "order_list", "balances", "accounts", "other",
};

typedef struct ttl_list {
    int64_t *v; /* PTTL in ms of the keys that have one */
    size_t n, cap;
} ttl_list;

typedef struct class_stats {
    uint64_t keys, fresh, stale, no_ttl;
    ttl_list ttl;
} class_stats;

typedef struct node_row {
    char name[300];
    uint64_t scanned, ours;
    uint64_t per_class[NCLASS + 1];
    char used_memory_human[64];
    long long connected_clients; /* -1: INFO did not say */
    char keyspace[1024];         /* INFO keyspace lines, "db0:keys=..;db1:..." */
} node_row;

/* The seeds' get_cache_stats(), reproduced literally: SCAN 'hft:*' and
 * classify by substring, in the seeds' order. */
typedef struct seed_stats {
    uint64_t accounts, positions, orders, balances, total;
} seed_stats;

typedef struct opts {
    bool json;
    const char *keys_pattern;
    int list_class; /* -1: every class; NCLASS+1: order and order_list */
    bool listing;
    uint64_t limit;
    unsigned count;
    double fresh_s;
    double timeout_s;
} opts;

static md_config cfg;
static md_keytpl tpl[NCLASS];
static bool tpl_on[NCLASS];
static class_stats stats[NCLASS + 1];
static seed_stats seeds_count;
static node_row *rows;
static size_t nrows;
static uint64_t vanished; /* scanned, but gone before PTTL */
static int64_t now_ms;

/* Listing mode: rows printed at the end, so the JSON is one object. */
typedef struct listed_key {
    char *key;
    size_t klen;
    int cls;
    int64_t pttl;
    const char *mark;
    size_t node;
} listed_key;
static listed_key *listed;
static uint64_t nlisted;
static bool truncated;


static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) md_tool_die(1, "out of memory");
    return q;
}

static void usage(FILE *f)
{
    fputs("usage: " PROG " [options]\n"
          "\n"
          "Statistics of mdcache's keys in Redis (SCAN only, never KEYS): keys per class,\n"
          "TTL min/median/max, freshness, the seeds' get_cache_stats counts, and INFO\n"
          "memory/clients/keyspace per node; every primary of a Redis Cluster.\n"
          "\n"
          "Where and what (as mdcache takes them):\n"
          "  -c, --config FILE     mdcache's INI file: [redis] url/password/TLS and [keys]\n"
          "                        templates and prefix\n"
          MD_TOOL_REDIS_HELP
          "\n"
          "Output:\n"
          "      --json            one JSON object instead of tables\n"
          "      --keys PATTERN    list keys matching the SCAN MATCH glob, with class, TTL\n"
          "                        and freshness (no statistics)\n"
          "      --class C         list keys of class C: price, price_fallback, positions,\n"
          "                        order, order_list, orders (both), balances, accounts,\n"
          "                        other (matching no template)\n"
          "      --limit N         list at most N keys (default 100)\n"
          "      --count N         SCAN COUNT hint (default 1000)\n"
          "      --fresh SECONDS   fresh: TTL > 0 and the value's timestamp at most this\n"
          "                        old (default 60)\n"
          "      --timeout SECONDS per round trip (default 10; connect: connect_timeout)\n"
          "  -h, --help\n"
          "\n"
          "Exit: 0 done, 1 Redis unreachable, 2 bad options, configuration, or refused\n"
          "credentials/certificate.\n",
          f);
}

enum {
    O_JSON = MD_TOOL_O_OWN, O_KEYS, O_CLASS, O_LIMIT, O_COUNT, O_FRESH, O_TIMEOUT,
};

static const struct option long_opts[] = {
    MD_TOOL_REDIS_OPTIONS,
    {"json", no_argument, NULL, O_JSON},         {"keys", required_argument, NULL, O_KEYS},
    {"class", required_argument, NULL, O_CLASS}, {"limit", required_argument, NULL, O_LIMIT},
    {"count", required_argument, NULL, O_COUNT}, {"fresh", required_argument, NULL, O_FRESH},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
};


static void parse_args(int argc, char **argv, opts *o)
{
    /* mdcache's own options go to md_config_load, so the URL, the file,
     * the environment and TLS are resolved and validated exactly as the
     * daemon does it. */
    static md_tool_args args;
    int ch;
    md_tool_prog = PROG;
    o->list_class = -1;
    o->limit = 100;
    o->count = 1000;
    o->fresh_s = 60;
    o->timeout_s = 10;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", long_opts, NULL)) != -1) {
        if (md_tool_redis_option(&args, ch, optarg)) continue;
        switch (ch) {
        case 'h':
            usage(stdout);
            exit(0);
        case O_JSON: o->json = true; break;
        case O_KEYS:
            o->keys_pattern = optarg;
            o->listing = true;
            break;
        case O_CLASS: {
            int c;
            for (c = 0; c <= NCLASS; c++)
                if (strcmp(optarg, class_names[c]) == 0) break;
            if (c > NCLASS && strcmp(optarg, "orders") != 0)
                md_tool_die(2,
                            "--class: unknown class '%.64s' (price, price_fallback, positions, "
                            "order, order_list, orders, balances, accounts, other)",
                            optarg);
            o->list_class = c > NCLASS ? NCLASS + 1 : c;
            o->listing = true;
            break;
        }
        case O_LIMIT: o->limit = (uint64_t)md_tool_num("limit", optarg, 1, 1e9, true); break;
        case O_COUNT: o->count = (unsigned)md_tool_num("count", optarg, 1, 1e6, true); break;
        case O_FRESH: o->fresh_s = md_tool_num("fresh", optarg, 0.001, 1e9, false); break;
        case O_TIMEOUT: o->timeout_s = md_tool_num("timeout", optarg, 0.001, 3600, false); break;
        case ':':
            md_tool_die(2, "option %s needs an argument (see --help)", argv[optind - 1]);
        default:
            md_tool_die(2, "unknown option '%.64s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) md_tool_die(2, "unexpected argument '%.64s' (see --help)", argv[optind]);
    md_tool_load(&args, &cfg);
}

static void init_templates(void)
{
    const char *const t[NCLASS] = {
        cfg.price_key,      cfg.last_good_key, cfg.positions_key, cfg.order_key,
        cfg.order_list_key, cfg.balances_key,  cfg.accounts_key,
    };
    for (int c = 0; c < NCLASS; c++) {
        if (!t[c][0]) continue; /* class turned off */
        bool sym = c <= C_FALLBACK;
        if (md_keytpl_init_vars(&tpl[c], cfg.key_prefix, t[c], sym ? "{symbol}" : "{account}",
                                c == C_ORDER ? "{order_id}" : NULL))
            md_tool_die(2, "[keys] template '%s' is not usable", t[c]);
        tpl_on[c] = true;
    }
}

static int classify(const char *key, size_t len)
{
    const char *v;
    size_t vl;
    for (int c = 0; c < NCLASS; c++)
        if (tpl_on[c] && md_keytpl_match(&tpl[c], key, len, &v, &vl)) return c;
    return C_OTHER;
}

static bool contains(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(s + i, w, wl) == 0) return true;
    return false;
}

static void seeds_add(const char *key, size_t len)
{
    if (len < 4 || memcmp(key, "hft:", 4) != 0) return;
    seeds_count.total++;
    if (contains(key, len, "accounts")) seeds_count.accounts++;
    else if (contains(key, len, "positions")) seeds_count.positions++;
    else if (contains(key, len, "orders")) seeds_count.orders++;
    else if (contains(key, len, "balances")) seeds_count.balances++;
}

/* The value's own time in epoch ms, or -1. Every value mdcache writes ends
 * with its top-level Timestamp/timestamp (docs/keys.md fixes the field
 * order), so the last one in the text is the value's, not an entry's. */
static int64_t value_ts_ms(const char *s, size_t n)
{
    const char *best = NULL;
    static const char *const names[2] = {"\"Timestamp\":", "\"timestamp\":"};
    for (int k = 0; k < 2; k++) {
        size_t wl = strlen(names[k]);
        for (size_t i = n >= wl ? n - wl + 1 : 0; i-- > 0;)
            if (memcmp(s + i, names[k], wl) == 0) {
                if (!best || s + i > best) best = s + i + wl;
                break;
            }
    }
    if (!best) return -1;
    char *end;
    double v = strtod(best, &end);
    if (end == best || v <= 0) return -1;
    /* accounts carry seconds with milliseconds (the seeds' time.time());
     * 1e11 s is the year 5138, 1e11 ms is 1973. */
    return v < 1e11 ? (int64_t)(v * 1000.0) : (int64_t)v;
}

static const char *freshness(int64_t pttl, const redisReply *val, double fresh_s)
{
    if (pttl == -1) return "no_ttl";
    if (pttl > 0 && val && val->type == REDIS_REPLY_STRING) {
        int64_t ts = value_ts_ms(val->str, val->len);
        if (ts > 0 && (double)(now_ms - ts) <= fresh_s * 1000.0) return "fresh";
    }
    return "stale";
}

/* ---- Redis I/O ---------------------------------------------------------- */

typedef struct node_conn {
    md_bconn c;
    const char *display;
    double timeout_s;
} node_conn;

static void conn_fail(node_conn *n)
{
    /* A server that stops answering mid-way would make every figure
     * partial; a script is better off with an error than with a count
     * that silently misses a node. */
    md_tool_die(1, "redis %s: %s", n->display, n->c.msg[0] ? n->c.msg : "connection lost");
}

static redisReply *reply(node_conn *n)
{
    md_bconn_rc rc;
    redisReply *r = md_bconn_reply(&n->c, &rc);
    if (!r) conn_fail(n);
    return r;
}

static redisReply *command(node_conn *n, int argc, const char **argv)
{
    md_bconn_deadline(&n->c, n->timeout_s);
    if (md_bconn_command(&n->c, argc, argv)) conn_fail(n);
    return reply(n);
}

static void node_open(node_conn *n, const md_redis_target *t, bool select_db, double timeout_s)
{
    memset(n, 0, sizeof *n);
    n->display = t->display;
    n->timeout_s = timeout_s;
    md_bconn_deadline(&n->c, cfg.connect_timeout_s);
    md_bconn_rc rc = md_bconn_open(&n->c, t);
    if (rc != MD_BCONN_OK)
        md_tool_die(rc == MD_BCONN_REFUSED ? 2 : 1, "redis %s: %s", t->display, n->c.msg);
    md_bconn_deadline(&n->c, timeout_s);
    if (md_bconn_auth(&n->c, &cfg.redis)) {
        bool refused = strncmp(n->c.msg, "refused", 7) == 0;
        md_tool_die(refused ? 2 : 1, "redis %s: %s", t->display, n->c.msg);
    }
    if (select_db && cfg.redis.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", cfg.redis.db);
        const char *a[2] = {"SELECT", db};
        redisReply *r = command(n, 2, a);
        if (r->type == REDIS_REPLY_ERROR)
            md_tool_die(2, "redis %s: SELECT %s: %s", t->display, db, r->str);
        freeReplyObject(r);
    }
}

static void info_fields(node_conn *n, node_row *row)
{
    const char *a[1] = {"INFO"};
    redisReply *r = command(n, 1, a);
    row->connected_clients = -1;
    if (r->type != REDIS_REPLY_STRING) {
        /* An ACL without +info: the keys can still be counted. */
        freeReplyObject(r);
        return;
    }
    size_t ks = 0;
    for (char *line = r->str, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (next) next++;
        while (len && (line[len - 1] == '\r')) len--;
        if (len > 18 && strncmp(line, "used_memory_human:", 18) == 0)
            snprintf(row->used_memory_human, sizeof row->used_memory_human, "%.*s",
                     (int)(len - 18), line + 18);
        else if (len > 18 && strncmp(line, "connected_clients:", 18) == 0)
            row->connected_clients = strtoll(line + 18, NULL, 10);
        else if (len > 3 && strncmp(line, "db", 2) == 0 && line[2] >= '0' && line[2] <= '9' &&
                 memchr(line, ':', len) && ks + len + 2 < sizeof row->keyspace) {
            ks += (size_t)snprintf(row->keyspace + ks, sizeof row->keyspace - ks, "%s%.*s",
                                   ks ? ";" : "", (int)len, line);
        }
    }
    freeReplyObject(r);
}

static void ttl_push(ttl_list *l, int64_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = v;
}

static bool wanted_in_listing(const opts *o, int cls)
{
    if (o->list_class < 0) return true;
    if (o->list_class == NCLASS + 1) return cls == C_ORDER || cls == C_ORDER_LIST;
    return cls == o->list_class;
}

/* One SCAN batch: PTTL and GET of every key that needs them, pipelined in
 * one round trip, then the figures. */
static void batch(node_conn *n, const opts *o, node_row *row, size_t node_ix,
                  redisReply **keys, size_t nkeys)
{
    static char *buf;
    static size_t cap;
    static int *cls;
    static size_t clscap;
    if (nkeys > clscap) {
        clscap = nkeys;
        cls = xrealloc(cls, clscap * sizeof *cls);
    }
    size_t len = 0, asked = 0;
    for (size_t i = 0; i < nkeys; i++) {
        const redisReply *k = keys[i];
        cls[i] = -1;
        if (k->type != REDIS_REPLY_STRING) continue;
        int c = classify(k->str, k->len);
        row->scanned++;
        if (!o->listing) seeds_add(k->str, k->len);
        if (o->listing ? !wanted_in_listing(o, c) : c == C_OTHER) {
            if (!o->listing) {
                stats[C_OTHER].keys++;
                row->per_class[C_OTHER]++;
            }
            continue;
        }
        cls[i] = c;
        const char *a1[2] = {"PTTL", k->str}, *a2[2] = {"GET", k->str};
        size_t lens[2] = {4, k->len}, glens[2] = {3, k->len};
        size_t need = len + 2 * (k->len + 64);
        if (need > cap) {
            cap = need * 2;
            buf = xrealloc(buf, cap);
        }
        len += md_resp_cmd(buf + len, cap - len, 2, a1, lens);
        len += md_resp_cmd(buf + len, cap - len, 2, a2, glens);
        asked++;
    }
    if (!asked) return;
    md_bconn_deadline(&n->c, n->timeout_s);
    if (md_bconn_send(&n->c, buf, len)) conn_fail(n);
    for (size_t i = 0; i < nkeys; i++) {
        if (cls[i] < 0) continue;
        redisReply *t = reply(n), *v = reply(n);
        int64_t pttl = t->type == REDIS_REPLY_INTEGER ? t->integer : -2;
        int c = cls[i];
        if (pttl == -2) {
            vanished++; /* expired between SCAN and PTTL */
        } else if (o->listing) {
            if (nlisted < o->limit) {
                listed = xrealloc(listed, (nlisted + 1) * sizeof *listed);
                listed_key *e = &listed[nlisted++];
                e->key = xrealloc(NULL, keys[i]->len + 1);
                memcpy(e->key, keys[i]->str, keys[i]->len + 1);
                e->klen = keys[i]->len;
                e->cls = c;
                e->pttl = pttl;
                e->mark = freshness(pttl, v, o->fresh_s);
                e->node = node_ix;
            } else {
                truncated = true;
            }
        } else {
            class_stats *s = &stats[c];
            s->keys++;
            row->ours++;
            row->per_class[c]++;
            const char *m = freshness(pttl, v, o->fresh_s);
            if (m[0] == 'f') s->fresh++;
            else if (m[0] == 's') s->stale++;
            else s->no_ttl++;
            if (pttl >= 0) ttl_push(&s->ttl, pttl);
        }
        freeReplyObject(t);
        freeReplyObject(v);
    }
}

static void glob_escape(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 < cap; i++) {
        if (strchr("*?[]\\", in[i])) out[o++] = '\\';
        out[o++] = in[i];
    }
    out[o] = 0;
}

static void scan_node(const md_redis_target *t, bool select_db, const opts *o, size_t node_ix)
{
    node_conn n;
    node_row *row = &rows[node_ix];
    node_open(&n, t, select_db, o->timeout_s);
    snprintf(row->name, sizeof row->name, "%s", t->display);
    info_fields(&n, row);

    /* A class listing scans only its template's fixed head, so the server
     * filters; the template match then decides. */
    char pattern[600] = "*";
    if (o->keys_pattern) {
        snprintf(pattern, sizeof pattern, "%s", o->keys_pattern);
    } else if (o->listing && o->list_class >= 0 && o->list_class != C_OTHER) {
        int c = o->list_class == NCLASS + 1 ? C_ORDER_LIST : o->list_class;
        if (!tpl_on[c] && o->list_class == NCLASS + 1) c = C_ORDER;
        if (!tpl_on[c]) {
            md_bconn_close(&n.c);
            return; /* class turned off: nothing can be of it */
        }
        glob_escape(tpl[c].head, tpl[c].head_len, pattern, sizeof pattern - 1);
        strcat(pattern, "*");
    }
    char cursor[32] = "0", count[16];
    snprintf(count, sizeof count, "%u", o->count);
    /* SCAN always ends (its cursor comes back to 0), but a server that
     * misbehaves must not keep us here: a bound far above any keyspace. */
    for (uint64_t round = 0; round < (1ull << 40); round++) {
        const char *a[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", count};
        redisReply *r = command(&n, 6, a);
        if (r->type == REDIS_REPLY_ERROR) md_tool_die(2, "redis %s: SCAN: %s", t->display, r->str);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
            md_tool_die(1, "redis %s: SCAN: unexpected reply", t->display);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        batch(&n, o, row, node_ix, r->element[1]->element, r->element[1]->elements);
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0 || (o->listing && truncated)) break;
    }
    md_bconn_close(&n.c);
}

/* ---- output ------------------------------------------------------------- */


static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median_ms(ttl_list *l)
{
    qsort(l->v, l->n, sizeof *l->v, cmp_i64);
    return l->n % 2 ? (double)l->v[l->n / 2] : (l->v[l->n / 2 - 1] + l->v[l->n / 2]) / 2.0;
}

static void json_ttl(const char *name, ttl_list *l, int which)
{
    printf(",\"%s\":", name);
    if (!l->n) {
        fputs("null", stdout);
        return;
    }
    double v = which == 0 ? (double)l->v[0] : which == 2 ? (double)l->v[l->n - 1] : median_ms(l);
    printf("%.3f", v / 1000.0);
}

static const char *class_tpl_src(int c)
{
    const char *const t[NCLASS] = {
        cfg.price_key,      cfg.last_good_key, cfg.positions_key, cfg.order_key,
        cfg.order_list_key, cfg.balances_key,  cfg.accounts_key,
    };
    return t[c];
}

static void print_json_stats(const opts *o, const char *url, bool cluster)
{
    printf("{\"url\":");
    md_tool_json_str(url, strlen(url));
    printf(",\"mode\":\"%s\",\"prefix\":", cluster ? "cluster" : "standalone");
    md_tool_json_str(cfg.key_prefix, strlen(cfg.key_prefix));
    printf(",\"fresh_within_s\":%g,\"classes\":{", o->fresh_s);
    for (int c = 0; c < NCLASS; c++) {
        class_stats *s = &stats[c];
        printf("%s\"%s\":{\"template\":", c ? "," : "", class_names[c]);
        if (tpl_on[c]) md_tool_json_str(class_tpl_src(c), strlen(class_tpl_src(c)));
        else fputs("null", stdout);
        printf(",\"keys\":%" PRIu64, s->keys);
        if (s->ttl.n) qsort(s->ttl.v, s->ttl.n, sizeof *s->ttl.v, cmp_i64);
        json_ttl("ttl_min", &s->ttl, 0);
        json_ttl("ttl_median", &s->ttl, 1);
        json_ttl("ttl_max", &s->ttl, 2);
        printf(",\"fresh\":%" PRIu64 ",\"stale\":%" PRIu64 ",\"no_ttl\":%" PRIu64 "}", s->fresh,
               s->stale, s->no_ttl);
    }
    uint64_t ours = 0, scanned = 0;
    for (int c = 0; c < NCLASS; c++) ours += stats[c].keys;
    for (size_t i = 0; i < nrows; i++) scanned += rows[i].scanned;
    printf("},\"orders\":%" PRIu64 ",\"ours\":%" PRIu64 ",\"other\":%" PRIu64
           ",\"scanned\":%" PRIu64 ",\"vanished\":%" PRIu64,
           stats[C_ORDER].keys + stats[C_ORDER_LIST].keys, ours, stats[C_OTHER].keys, scanned,
           vanished);
    printf(",\"cache_stats\":{\"accounts\":%" PRIu64 ",\"positions\":%" PRIu64
           ",\"orders\":%" PRIu64 ",\"balances\":%" PRIu64 ",\"total\":%" PRIu64 "}",
           seeds_count.accounts, seeds_count.positions, seeds_count.orders, seeds_count.balances,
           seeds_count.total);
    printf(",\"nodes\":[");
    for (size_t i = 0; i < nrows; i++) {
        node_row *r = &rows[i];
        printf("%s{\"node\":", i ? "," : "");
        md_tool_json_str(r->name, strlen(r->name));
        printf(",\"scanned\":%" PRIu64 ",\"ours\":%" PRIu64 ",\"classes\":{", r->scanned, r->ours);
        for (int c = 0; c <= NCLASS; c++)
            printf("%s\"%s\":%" PRIu64, c ? "," : "", class_names[c], r->per_class[c]);
        printf("},\"used_memory_human\":");
        if (r->used_memory_human[0])
            md_tool_json_str(r->used_memory_human, strlen(r->used_memory_human));
        else fputs("null", stdout);
        if (r->connected_clients >= 0) printf(",\"connected_clients\":%lld", r->connected_clients);
        else fputs(",\"connected_clients\":null", stdout);
        /* "db0:keys=1,expires=1,avg_ttl=0" -> {"db0":{"keys":1,...}} */
        printf(",\"keyspace\":{");
        char ks[sizeof r->keyspace];
        snprintf(ks, sizeof ks, "%s", r->keyspace);
        int ndb = 0;
        for (char *save = NULL, *db = strtok_r(ks, ";", &save); db; db = strtok_r(NULL, ";", &save)) {
            char *colon = strchr(db, ':');
            if (!colon) continue;
            *colon = 0;
            printf("%s\"%s\":{", ndb++ ? "," : "", db);
            int nf = 0;
            for (char *s2 = NULL, *f = strtok_r(colon + 1, ",", &s2); f; f = strtok_r(NULL, ",", &s2)) {
                char *eq = strchr(f, '=');
                if (!eq) continue;
                *eq = 0;
                printf("%s\"%s\":%lld", nf++ ? "," : "", f, strtoll(eq + 1, NULL, 10));
            }
            putchar('}');
        }
        printf("}}");
    }
    printf("]}\n");
}

static void fmt_ttl(char *b, size_t cap, ttl_list *l, int which)
{
    if (!l->n) {
        snprintf(b, cap, "-");
        return;
    }
    double v = which == 0 ? (double)l->v[0] : which == 2 ? (double)l->v[l->n - 1] : median_ms(l);
    snprintf(b, cap, "%.3f", v / 1000.0);
}

static void print_table_stats(const opts *o, const char *url, bool cluster)
{
    printf("redis %s (%s), freshness window %g s\n\n", url,
           cluster ? "cluster" : "standalone", o->fresh_s);
    printf("%-15s %9s %10s %10s %10s %9s %9s %9s\n", "class", "keys", "ttl min", "median",
           "max", "fresh", "stale", "no ttl");
    for (int c = 0; c < NCLASS; c++) {
        class_stats *s = &stats[c];
        char mn[32], md[32], mx[32];
        if (!tpl_on[c]) {
            printf("%-15s %9s  (off: empty template)\n", class_names[c], "-");
            continue;
        }
        if (s->ttl.n) qsort(s->ttl.v, s->ttl.n, sizeof *s->ttl.v, cmp_i64);
        fmt_ttl(mn, sizeof mn, &s->ttl, 0);
        fmt_ttl(md, sizeof md, &s->ttl, 1);
        fmt_ttl(mx, sizeof mx, &s->ttl, 2);
        printf("%-15s %9" PRIu64 " %10s %10s %10s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
               class_names[c], s->keys, mn, md, mx, s->fresh, s->stale, s->no_ttl);
    }
    printf("%-15s %9" PRIu64 "   (order + order_list)\n", "orders",
           stats[C_ORDER].keys + stats[C_ORDER_LIST].keys);
    printf("%-15s %9" PRIu64 "   (keys matching no template)\n", "other", stats[C_OTHER].keys);
    printf("\nget_cache_stats (hft:*): accounts=%" PRIu64 " positions=%" PRIu64
           " orders=%" PRIu64 " balances=%" PRIu64 " total=%" PRIu64 "\n\n",
           seeds_count.accounts, seeds_count.positions, seeds_count.orders, seeds_count.balances,
           seeds_count.total);
    printf("%-24s %9s %9s %11s %8s  %s\n", "node", "scanned", "ours", "memory", "clients",
           "keyspace");
    for (size_t i = 0; i < nrows; i++) {
        node_row *r = &rows[i];
        char cl[24];
        if (r->connected_clients >= 0) snprintf(cl, sizeof cl, "%lld", r->connected_clients);
        else snprintf(cl, sizeof cl, "-");
        printf("%-24s %9" PRIu64 " %9" PRIu64 " %11s %8s  %s\n", r->name, r->scanned, r->ours,
               r->used_memory_human[0] ? r->used_memory_human : "-", cl,
               r->keyspace[0] ? r->keyspace : "-");
    }
}

static void print_listing(const opts *o, bool cluster)
{
    if (o->json) {
        printf("{\"mode\":\"%s\",\"fresh_within_s\":%g,\"limit\":%" PRIu64 ",\"listed\":%" PRIu64
               ",\"truncated\":%s,\"keys\":[",
               cluster ? "cluster" : "standalone", o->fresh_s, o->limit, nlisted,
               truncated ? "true" : "false");
        for (uint64_t i = 0; i < nlisted; i++) {
            listed_key *e = &listed[i];
            printf("%s{\"key\":", i ? "," : "");
            md_tool_json_str(e->key, e->klen);
            printf(",\"class\":\"%s\",\"ttl\":", class_names[e->cls]);
            if (e->pttl >= 0) printf("%.3f", e->pttl / 1000.0);
            else fputs("null", stdout);
            printf(",\"freshness\":\"%s\",\"node\":", e->mark);
            md_tool_json_str(rows[e->node].name, strlen(rows[e->node].name));
            putchar('}');
        }
        printf("]}\n");
        return;
    }
    printf("%-48s %-15s %10s %-7s %s\n", "key", "class", "ttl", "fresh", "node");
    for (uint64_t i = 0; i < nlisted; i++) {
        listed_key *e = &listed[i];
        char ttl[32];
        if (e->pttl >= 0) snprintf(ttl, sizeof ttl, "%.3f", e->pttl / 1000.0);
        else snprintf(ttl, sizeof ttl, "-");
        printf("%-48.*s %-15s %10s %-7s %s\n", (int)e->klen, e->key, class_names[e->cls], ttl,
               e->mark, rows[e->node].name);
    }
    printf("(%" PRIu64 " key%s%s)\n", nlisted, nlisted == 1 ? "" : "s",
           truncated ? "; more match: raise --limit" : "");
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    opts o = {0};
    parse_args(argc, argv, &o);
    init_templates();

    md_redis_target seed, answered;
    char err[1024];
    bool cluster = false;
    md_tool_find_server(&cfg, &seed, &answered, &cluster);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;


    char url[1100];
    md_redis_url_redact(cfg.redis_url, url, sizeof url);
    if (!cluster) {
        rows = xrealloc(NULL, sizeof *rows);
        memset(rows, 0, sizeof *rows);
        nrows = 1;
        scan_node(&answered, true, &o, 0);
    } else {
        static md_topology topo;
        node_conn n;
        node_open(&n, &answered, false, o.timeout_s);
        md_bconn_deadline(&n.c, o.timeout_s);
        if (md_topology_fetch(&topo, &n.c, cfg.redis.kind == MD_REDIS_TLS,
                              answered.host[0] ? answered.host : cfg.redis.host, err, sizeof err))
            md_tool_die(1, "redis %s: cannot read the cluster's slot map: %s", answered.display,
                        err);
        md_bconn_close(&n.c);
        if (topo.nnodes == 0)
            md_tool_die(1, "redis %s: the cluster has no primary", answered.display);
        rows = xrealloc(NULL, topo.nnodes * sizeof *rows);
        memset(rows, 0, topo.nnodes * sizeof *rows);
        nrows = topo.nnodes;
        static md_redis_target nodes[MD_TOPO_MAX_NODES];
        for (size_t i = 0; i < nrows; i++)
            if (md_topo_node_target(&seed, &topo.nodes[i], &nodes[i], err, sizeof err))
                md_tool_die(1, "cluster node %s:%u: %s", topo.nodes[i].host, topo.nodes[i].port,
                            err);
        for (size_t i = 0; i < nrows && !(o.listing && truncated); i++)
            scan_node(&nodes[i], false, &o, i);
    }

    if (o.listing) print_listing(&o, cluster);
    else if (o.json) print_json_stats(&o, url, cluster);
    else print_table_stats(&o, url, cluster);
    md_tls_ctx_free(seed.tls);
    return 0;
}
