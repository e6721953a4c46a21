/*
 * config.c: md_config from defaults, the INI file, the command line and the
 * environment, merged and validated once at start-up.
 *
 * Every INI key lives in one table (keys[] below) that drives the file
 * parser, the command-line overrides, validation, md_config_print and the
 * --help text, so a new key is one line here and cannot be forgotten in
 * one of those places.
 *
 * The INI syntax is inih's, read through our own line reader so that we
 * (a) know the line number of every key, for "FILE:LINE: [section] key:
 * why" messages, (b) stop at the first error instead of applying the rest
 * of a broken file, (c) reject lines longer than inih's fixed line buffer
 * instead of letting inih silently split them in two, and (d) strip
 * leading blanks, because inih would otherwise read an indented line as a
 * continuation of the previous value (Python-style multi-line values) --
 * surprising in a file where every value is one word.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "md_config.h"

#ifndef MD_VERSION
#define MD_VERSION "dev"
#endif

#define MD_DEFAULT_REDIS_URL "redis://localhost:6379/0"
/* A config file is a few dozen lines; anything this big is a wrong path. */
#define MD_CONFIG_MAX_BYTES (1 << 20)

static const char FROM_CLI[] = "command line";
static const char FROM_FILE[] = "config file";
static const char FROM_REDIS_URL[] = "REDIS_URL";
static const char FROM_CELERY[] = "CELERY_BROKER_URL";
static const char FROM_DEFAULT[] = "default";

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};
static const char *const idle_names[] = {"wait", "spin", NULL};
static const char *const bool_names[] = {"no", "yes", NULL};
/* Indexed by md_cluster_mode. */
static const char *const cluster_names[] = {"auto", "yes", "no", NULL};
/* K_ENUM stores through an int *. */
_Static_assert(sizeof(md_cluster_mode) == sizeof(int), "md_cluster_mode must be int-sized");

typedef enum key_kind {
    K_U32,      /* uint32_t in [min, max] */
    K_SECONDS,  /* double, decimal seconds in [min, max] */
    K_FRACTION, /* double strictly between min and max */
    K_STR,      /* char[size] */
    K_ADDR,     /* char[size] holding HOST:PORT, numeric host (md_addr_parse) */
    K_TEMPLATE, /* char[size] holding exactly one "{symbol}" */
    K_LOGLEVEL,
    K_ENUM,     /* int: index into key_def.names */
    K_CPUS,
    K_LISTEN,   /* repeatable */
    K_URL,      /* resolved with the environment in md_config_load */
    K_PASSWORD, /* idem */
} key_kind;

enum {
    F_POW2 = 1,     /* K_U32: power of two */
    F_MIN_OPEN = 2, /* K_SECONDS: min itself is not allowed */
    F_EMPTY_OK = 4, /* K_TEMPLATE: "" is allowed (disables the key class) */
    F_ACCOUNT = 8,  /* K_TEMPLATE: the variable is {account}, not {symbol} */
    F_ORDER_ID = 16,/* K_TEMPLATE with F_ACCOUNT: {order_id} follows {account} */
};

typedef struct key_def {
    const char *section;
    const char *name;
    key_kind kind;
    size_t off;  /* offsetof(md_config, field) */
    size_t size; /* K_STR / K_TEMPLATE buffer size */
    double min, max;
    unsigned flags;
    const char *opt; /* command-line override, without "--"; NULL if none */
    const char *help;
} key_def;

enum key_id {
    KEY_CPUS,
    KEY_LOG_LEVEL,
    KEY_STATS_INTERVAL,
    KEY_REPORT_FILE,
    KEY_METRICS,
    KEY_IDLE,
    KEY_SCHED_PRIORITY,
    KEY_MLOCK,
    KEY_MAX_KEYS,
    KEY_MAX_ACCOUNTS,
    KEY_MAX_POSITIONS,
    KEY_MAX_ORDERS,
    KEY_SHUTDOWN_TIMEOUT,
    KEY_LISTEN,
    KEY_UDP_BUFFERS,
    KEY_UDP_BUFFER_SIZE,
    KEY_RING_SIZE,
    KEY_URL,
    KEY_PASSWORD,
    KEY_CLUSTER,
    KEY_MAX_BATCH,
    KEY_MAX_INFLIGHT,
    KEY_CONNECT_TIMEOUT,
    KEY_RECONNECT_MIN,
    KEY_RECONNECT_MAX,
    KEY_KEEPALIVE,
    KEY_REPLY_TIMEOUT,
    KEY_CLIENT_NAME,
    KEY_CACERT,
    KEY_CACERTDIR,
    KEY_CERT,
    KEY_KEY,
    KEY_SNI,
    KEY_INSECURE,
    KEY_PREFIX,
    KEY_PRICE_KEY,
    KEY_PRICE_TTL,
    KEY_LAST_GOOD_KEY,
    KEY_LAST_GOOD_INTERVAL,
    KEY_LAST_GOOD_TTL,
    KEY_PRICE_CHANNEL,
    KEY_WATCH_EXPIRED,
    KEY_SET_NOTIFY_EVENTS,
    KEY_PUBLISH_EVENTS,
    KEY_EVENTS_CHANNEL,
    KEY_POSITIONS_KEY,
    KEY_POSITIONS_TTL,
    KEY_ORDER_KEY,
    KEY_ORDER_LIST_KEY,
    KEY_ORDERS_TTL,
    KEY_BALANCES_KEY,
    KEY_BALANCES_TTL,
    KEY_ACCOUNTS_KEY,
    KEY_ACCOUNTS_TTL,
    KEY_REFRESH_FRACTION,
    KEY_SOURCE_TIMEOUT,
    NKEYS
};

#define OFF(field) offsetof(md_config, field)
#define SZ(field) sizeof(((md_config *)0)->field)

/* K_ENUM keys: the accepted spellings, NULL-terminated; the int stored is
 * the index. */
static const char *const *const enum_names[NKEYS] = {
    [KEY_IDLE] = idle_names,           [KEY_INSECURE] = bool_names,
    [KEY_MLOCK] = bool_names,
    [KEY_WATCH_EXPIRED] = bool_names,  [KEY_SET_NOTIFY_EVENTS] = bool_names,
    [KEY_PUBLISH_EVENTS] = bool_names, [KEY_CLUSTER] = cluster_names,
};

/* Grouped by section, in the order md_config_print writes them. */
static const key_def keys[NKEYS] = {
    [KEY_CPUS] = {"mdcache", "cpus", K_CPUS, OFF(cpus), 0, 0, 0, 0, "cpus",
                  "CPUs for worker threads, e.g. 1,3-5"},
    [KEY_LOG_LEVEL] = {"mdcache", "log_level", K_LOGLEVEL, OFF(log_level), 0, 0, 0, 0, "log-level",
                       "error, warn, info or debug"},
    [KEY_STATS_INTERVAL] = {"mdcache", "stats_interval", K_SECONDS, OFF(stats_interval_s), 0, 0,
                            86400, 0, "stats-interval",
                            "seconds between stats lines (0 = off)"},
    [KEY_REPORT_FILE] = {"mdcache", "report_file", K_STR, OFF(report_file), SZ(report_file), 0, 0,
                         0, "report", "JSON counters and latency histograms written at exit"},
    [KEY_METRICS] = {"mdcache", "metrics", K_ADDR, OFF(metrics_addr), SZ(metrics_addr), 0, 0, 0,
                     "metrics", "Prometheus /metrics on HOST:PORT, e.g. 127.0.0.1:9464 (empty = off)"},
    [KEY_IDLE] = {"mdcache", "idle", K_ENUM, OFF(idle), 0, 0, 0, 0, "idle",
                  "wait: idle workers sleep (shared machines); spin: they poll, for isolated cores"},
    [KEY_SCHED_PRIORITY] = {"mdcache", "sched_priority", K_U32, OFF(sched_priority), 0, 0, 99, 0,
                            "sched-priority",
                            "0: normal scheduling; 1..99: workers run SCHED_FIFO at that priority"},
    [KEY_MLOCK] = {"mdcache", "mlock", K_ENUM, OFF(mlock), 0, 0, 0, 0, NULL,
                   "yes: lock mdcache's memory in RAM (mlockall), pages locked as they are used"},
    [KEY_MAX_KEYS] = {"mdcache", "max_keys", K_U32, OFF(max_keys), 0, 1, 1000000000, 0, "max-keys",
                      "most keys held in memory, whole process"},
    [KEY_MAX_ACCOUNTS] = {"mdcache", "max_accounts", K_U32, OFF(max_accounts), 0, 1, 100000000, 0,
                          NULL, "most accounts held in memory, whole process"},
    [KEY_MAX_POSITIONS] = {"mdcache", "max_positions", K_U32, OFF(max_positions), 0, 1, 100000, 0,
                           NULL, "most open positions per account"},
    [KEY_MAX_ORDERS] = {"mdcache", "max_orders", K_U32, OFF(max_orders), 0, 1, 100000, 0, NULL,
                        "most working orders per account"},
    [KEY_SHUTDOWN_TIMEOUT] = {"mdcache", "shutdown_timeout", K_SECONDS, OFF(shutdown_timeout_s), 0,
                              0, 3600, 0, "shutdown-timeout", "seconds to flush dirty keys on SIGTERM"},
    [KEY_LISTEN] = {"feeds", "listen", K_LISTEN, OFF(listen), 0, 0, 0, 0, NULL,
                    "a feed to read; repeatable (see Listen specs)"},
    [KEY_UDP_BUFFERS] = {"feeds", "udp_buffers", K_U32, OFF(udp_buffers), 0, 1, 32768, F_POW2,
                         NULL, "receive buffers per UDP socket (power of 2)"},
    [KEY_UDP_BUFFER_SIZE] = {"feeds", "udp_buffer_size", K_U32, OFF(udp_buffer_size), 0, 512,
                             65536, 0, NULL, "bytes per UDP buffer (largest datagram)"},
    [KEY_RING_SIZE] = {"feeds", "ring_size", K_U32, OFF(ring_size), 0, 2, 16777216, 0, NULL,
                       "ticks per worker-to-worker ring"},
    [KEY_URL] = {"redis", "url", K_URL, OFF(redis_url), 0, 0, 0, 0, NULL,
                 "Redis server (see Redis URL)"},
    [KEY_PASSWORD] = {"redis", "password", K_PASSWORD, 0, 0, 0, 0, 0, NULL,
                      "used when the URL carries none"},
    [KEY_CLUSTER] = {"redis", "cluster", K_ENUM, OFF(cluster), 0, 0, 0, 0, "cluster",
                     "Redis Cluster: auto (ask the server), yes or no"},
    [KEY_MAX_BATCH] = {"redis", "max_batch", K_U32, OFF(max_batch), 0, 1, 100000, 0, NULL,
                       "most keys in one pipelined batch"},
    [KEY_MAX_INFLIGHT] = {"redis", "max_inflight", K_U32, OFF(max_inflight), 0, 1, 64, 0, NULL,
                          "most batches sent and not yet acknowledged"},
    [KEY_CONNECT_TIMEOUT] = {"redis", "connect_timeout", K_SECONDS, OFF(connect_timeout_s), 0, 0,
                             3600, F_MIN_OPEN, NULL, "seconds to connect"},
    [KEY_RECONNECT_MIN] = {"redis", "reconnect_min", K_SECONDS, OFF(reconnect_min_s), 0, 0, 3600,
                           F_MIN_OPEN, NULL, "first reconnect delay, seconds"},
    [KEY_RECONNECT_MAX] = {"redis", "reconnect_max", K_SECONDS, OFF(reconnect_max_s), 0, 0, 3600,
                           F_MIN_OPEN, NULL, "cap on the reconnect delay, seconds"},
    [KEY_KEEPALIVE] = {"redis", "keepalive", K_SECONDS, OFF(keepalive_s), 0, 0, 7200, 0, NULL,
                       "TCP keepalive idle seconds (0 = off)"},
    [KEY_REPLY_TIMEOUT] = {"redis", "reply_timeout", K_SECONDS, OFF(reply_timeout_s), 0, 0, 3600,
                           0, "reply-timeout", "reconnect when a batch waits this long (0 = off)"},
    [KEY_CLIENT_NAME] = {"redis", "client_name", K_STR, OFF(client_name), SZ(client_name), 0, 0,
                         0, NULL, "CLIENT SETNAME prefix, -w<N> appended (empty = none)"},
    [KEY_CACERT] = {"redis", "cacert", K_STR, OFF(tls_cacert), SZ(tls_cacert), 0, 0, 0, "cacert",
                    "TLS: CA file to verify the server (default: system store)"},
    [KEY_CACERTDIR] = {"redis", "cacertdir", K_STR, OFF(tls_cacertdir), SZ(tls_cacertdir), 0, 0, 0,
                       "cacertdir", "TLS: CA directory (c_rehash layout)"},
    [KEY_CERT] = {"redis", "cert", K_STR, OFF(tls_cert), SZ(tls_cert), 0, 0, 0, "cert",
                  "TLS: client certificate (mutual TLS)"},
    [KEY_KEY] = {"redis", "key", K_STR, OFF(tls_key), SZ(tls_key), 0, 0, 0, "key",
                 "TLS: client certificate's private key"},
    [KEY_SNI] = {"redis", "sni", K_STR, OFF(tls_sni), SZ(tls_sni), 0, 0, 0, "sni",
                 "TLS: server name to send and verify (default: URL host)"},
    [KEY_INSECURE] = {"redis", "insecure", K_ENUM, OFF(tls_insecure), 0, 0, 0, 0, NULL,
                      "TLS: yes skips server verification (logged as a warning)"},
    [KEY_PREFIX] = {"keys", "prefix", K_STR, OFF(key_prefix), SZ(key_prefix), 0, 0, 0, NULL,
                    "prepended to every key"},
    [KEY_PRICE_KEY] = {"keys", "price_key", K_TEMPLATE, OFF(price_key), SZ(price_key), 0, 0, 0,
                       NULL, "latest price key, with {symbol}"},
    [KEY_PRICE_TTL] = {"keys", "price_ttl", K_U32, OFF(price_ttl_s), 0, 1, 31536000, 0, NULL,
                       "seconds a price key lives without a refresh"},
    [KEY_LAST_GOOD_KEY] = {"keys", "last_good_key", K_TEMPLATE, OFF(last_good_key),
                           SZ(last_good_key), 0, 0, F_EMPTY_OK, NULL,
                           "fallback price key; empty disables it"},
    [KEY_PRICE_CHANNEL] = {"keys", "price_channel", K_TEMPLATE, OFF(price_channel),
                           SZ(price_channel), 0, 0, F_EMPTY_OK, NULL,
                           "PUBLISH each changed price on this channel, e.g. price:{symbol}; "
                           "empty = off"},
    [KEY_WATCH_EXPIRED] = {"keys", "watch_expired", K_ENUM, OFF(watch_expired), 0, 0, 0, 0, NULL,
                           "yes: count and log our keys that expire (stale sources)"},
    [KEY_SET_NOTIFY_EVENTS] = {"keys", "set_notify_events", K_ENUM, OFF(set_notify_events), 0, 0,
                               0, 0, NULL,
                               "yes: add Ex to notify-keyspace-events with CONFIG SET if missing"},
    [KEY_PUBLISH_EVENTS] = {"keys", "publish_events", K_ENUM, OFF(publish_events), 0, 0, 0, 0,
                            NULL, "yes: PUBLISH a JSON event per expired key on events_channel"},
    [KEY_EVENTS_CHANNEL] = {"keys", "events_channel", K_STR, OFF(events_channel),
                            SZ(events_channel), 0, 0, 0, NULL, "channel for publish_events"},
    [KEY_LAST_GOOD_INTERVAL] = {"keys", "last_good_interval", K_SECONDS, OFF(last_good_interval_s),
                                0, 0, 86400, 0, NULL, "seconds between fallback writes"},
    [KEY_LAST_GOOD_TTL] = {"keys", "last_good_ttl", K_U32, OFF(last_good_ttl_s), 0, 0, 31536000, 0,
                           NULL, "fallback key TTL in seconds (0 = no expiry)"},
    [KEY_POSITIONS_KEY] = {"keys", "positions_key", K_TEMPLATE, OFF(positions_key),
                           SZ(positions_key), 0, 0, F_EMPTY_OK | F_ACCOUNT, NULL,
                           "an account's open positions, with {account}; empty = off"},
    [KEY_POSITIONS_TTL] = {"keys", "positions_ttl", K_U32, OFF(positions_ttl_s), 0, 1, 31536000, 0,
                           NULL, "seconds a positions key lives without a refresh"},
    [KEY_ORDER_KEY] = {"keys", "order_key", K_TEMPLATE, OFF(order_key), SZ(order_key), 0, 0,
                       F_EMPTY_OK | F_ACCOUNT | F_ORDER_ID, NULL,
                       "one working order, with {account} then {order_id}; empty = off"},
    [KEY_ORDER_LIST_KEY] = {"keys", "order_list_key", K_TEMPLATE, OFF(order_list_key),
                            SZ(order_list_key), 0, 0, F_EMPTY_OK | F_ACCOUNT, NULL,
                            "an account's working orders, with {account}; empty = off"},
    [KEY_ORDERS_TTL] = {"keys", "orders_ttl", K_U32, OFF(orders_ttl_s), 0, 1, 31536000, 0, NULL,
                        "seconds an order or order list key lives without a refresh"},
    [KEY_BALANCES_KEY] = {"keys", "balances_key", K_TEMPLATE, OFF(balances_key),
                          SZ(balances_key), 0, 0, F_EMPTY_OK | F_ACCOUNT, NULL,
                          "an account's balance, with {account}; empty = off"},
    [KEY_BALANCES_TTL] = {"keys", "balances_ttl", K_U32, OFF(balances_ttl_s), 0, 1, 31536000, 0,
                          NULL, "seconds a balances key lives without a refresh"},
    [KEY_ACCOUNTS_KEY] = {"keys", "accounts_key", K_TEMPLATE, OFF(accounts_key),
                          SZ(accounts_key), 0, 0, F_EMPTY_OK | F_ACCOUNT, NULL,
                          "an account's info, with {account}; empty = off"},
    [KEY_ACCOUNTS_TTL] = {"keys", "accounts_ttl", K_U32, OFF(accounts_ttl_s), 0, 1, 31536000, 0,
                          NULL, "seconds an accounts key lives without a refresh"},
    [KEY_REFRESH_FRACTION] = {"keys", "refresh_fraction", K_FRACTION, OFF(refresh_fraction), 0,
                              0, 1, 0, NULL, "re-assert an unchanged key after TTL * this"},
    [KEY_SOURCE_TIMEOUT] = {"keys", "source_timeout", K_SECONDS, OFF(source_timeout_s), 0, 0,
                            86400, F_MIN_OPEN, NULL, "quiet seconds before a source is dead"},
};

static const char *const sections[] = {"mdcache", "feeds", "redis", "keys"};


static uint32_t *u32_at(md_config *c, const key_def *k) { return (uint32_t *)((char *)c + k->off); }
static const uint32_t *cu32_at(const md_config *c, const key_def *k)
{
    return (const uint32_t *)((const char *)c + k->off);
}
static double *dbl_at(md_config *c, const key_def *k) { return (double *)((char *)c + k->off); }
static const double *cdbl_at(const md_config *c, const key_def *k)
{
    return (const double *)((const char *)c + k->off);
}
static char *str_at(md_config *c, const key_def *k) { return (char *)c + k->off; }
static const char *cstr_at(const md_config *c, const key_def *k)
{
    return (const char *)c + k->off;
}

/* ---- values ---- */

/* Shortest fixed-point text that reads back to exactly v: "0.05", not
 * "0.050000000000000003" and never "5e-05", which our parser rejects. */
static void fmt_seconds(double v, char *buf, size_t cap)
{
    for (int p = 0; p <= 17; p++) {
        snprintf(buf, cap, "%.*f", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void range_text(const key_def *k, char *buf, size_t cap)
{
    char lo[32], hi[32];
    fmt_seconds(k->min, lo, sizeof lo);
    fmt_seconds(k->max, hi, sizeof hi);
    switch (k->kind) {
    case K_U32:
        snprintf(buf, cap, "%s %s..%s", k->flags & F_POW2 ? "a power of two" : "an integer", lo, hi);
        break;
    case K_SECONDS:
        if (k->flags & F_MIN_OPEN)
            snprintf(buf, cap, "seconds above %s, at most %s (e.g. 0.5)", lo, hi);
        else
            snprintf(buf, cap, "seconds %s..%s (e.g. 0.5)", lo, hi);
        break;
    case K_FRACTION:
        snprintf(buf, cap, "a fraction strictly between %s and %s (e.g. 0.5)", lo, hi);
        break;
    default:
        snprintf(buf, cap, "a value");
    }
}

static bool num_in_range(const key_def *k, double v)
{
    switch (k->kind) {
    case K_U32:
        if (v < k->min || v > k->max) return false;
        if (k->flags & F_POW2) {
            uint32_t u = (uint32_t)v;
            return (u & (u - 1)) == 0;
        }
        return true;
    case K_SECONDS:
        if (k->flags & F_MIN_OPEN ? v <= k->min : v < k->min) return false;
        return v <= k->max;
    case K_FRACTION:
        return v > k->min && v < k->max;
    default:
        return true;
    }
}

/* Integers: plain decimal digits, nothing else (no sign, no blanks, no
 * "0x", no trailing junk). */
static bool parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (*s < '0' || *s > '9') return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Seconds as a plain decimal: "2", "0.05", ".5". No exponent, no sign, no
 * "inf"/"nan", which strtod alone would take. */
static bool parse_decimal(const char *s, double *out)
{
    size_t digits = 0, dots = 0, n = 0;
    for (const char *p = s; *p; p++, n++) {
        if (*p >= '0' && *p <= '9') digits++;
        else if (*p == '.') dots++;
        else return false;
    }
    if (digits == 0 || dots > 1 || n > 32) return false;
    *out = strtod(s, NULL);
    return true;
}

static int count_token(const char *s, const char *tok)
{
    int n = 0;
    size_t len = strlen(tok);
    for (const char *p = s; (p = strstr(p, tok)) != NULL; p += len) n++;
    return n;
}

static int count_symbol(const char *s) { return count_token(s, "{symbol}"); }

/* A template's variables, as key k wants them: NULL if fine, else what is
 * wrong, for "must ..." messages. */
static const char *template_problem(const key_def *k, const char *v)
{
    if (!v[0] && (k->flags & F_EMPTY_OK)) return NULL;
    if (!(k->flags & F_ACCOUNT))
        return count_symbol(v) == 1 ? NULL : "must contain {symbol} exactly once";
    if (count_token(v, "{account}") != 1) return "must contain {account} exactly once";
    if (!(k->flags & F_ORDER_ID)) return NULL;
    const char *o = strstr(v, "{order_id}");
    /* Something must separate the two, or a key could not be told apart. */
    if (count_token(v, "{order_id}") != 1 || o <= strstr(v, "{account}") + 9)
        return "must contain {account}, then something, then {order_id}, each once";
    return NULL;
}

int md_addr_parse(const char *s, char *host, size_t hostcap, uint16_t *port, char *err,
                  size_t errlen)
{
    static const char want[] = "expected HOST:PORT with a numeric IPv4 or [IPv6] address, e.g. "
                               "127.0.0.1:9464";
    const char *colon, *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return md_config_errf(err, errlen, "%s, got '%.64s'", want, s);
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return md_config_errf(err, errlen, "%s, got '%.64s'", want, s);
        hlen = (size_t)(colon - s);
    }
    char tmp[64];
    unsigned char bin[16];
    if (hlen == 0 || hlen >= sizeof tmp || hlen >= hostcap)
        return md_config_errf(err, errlen, "%s, got '%.64s'", want, s);
    memcpy(tmp, h, hlen);
    tmp[hlen] = '\0';
    /* Numeric only: a name would be resolved once at start-up and could
     * silently bind somewhere other than the operator meant. */
    int fam = s[0] == '[' ? AF_INET6 : AF_INET;
    if (inet_pton(fam, tmp, bin) != 1)
        return md_config_errf(err, errlen, "%s, got '%.64s'", want, s);
    unsigned long long p;
    if (!parse_u64(colon + 1, &p) || p < 1 || p > 65535)
        return md_config_errf(err, errlen, "port must be 1..65535, got '%.64s'", s);
    memcpy(host, tmp, hlen + 1);
    *port = (uint16_t)p;
    return 0;
}

/* Sets one scalar key from text; `why` gets the reason on failure. Shared
 * by the INI handler and the command-line overrides. */
static int set_key(md_config *cfg, const key_def *k, const char *v, char *why, size_t whylen)
{
    char range[160];
    switch (k->kind) {
    case K_U32: {
        unsigned long long u;
        range_text(k, range, sizeof range);
        if (!parse_u64(v, &u) || u > UINT32_MAX || !num_in_range(k, (double)u))
            return md_config_errf(why, whylen, "expected %s, got '%.64s'", range, v);
        *u32_at(cfg, k) = (uint32_t)u;
        return 0;
    }
    case K_SECONDS:
    case K_FRACTION: {
        double d;
        range_text(k, range, sizeof range);
        if (!parse_decimal(v, &d) || !num_in_range(k, d))
            return md_config_errf(why, whylen, "expected %s, got '%.64s'", range, v);
        *dbl_at(cfg, k) = d;
        return 0;
    }
    case K_STR:
    case K_TEMPLATE: {
        size_t len = strlen(v);
        if (len >= k->size)
            return md_config_errf(why, whylen, "too long (%zu bytes, max %zu)", len, k->size - 1);
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return md_config_errf(why, whylen, "control character in value");
        const char *bad = k->kind == K_TEMPLATE ? template_problem(k, v) : NULL;
        if (bad)
            return md_config_errf(why, whylen, "%s%s, got '%.64s'", bad,
                                  k->flags & F_EMPTY_OK ? " (or be empty)" : "", v);
        memcpy(str_at(cfg, k), v, len + 1);
        return 0;
    }
    case K_ADDR: {
        size_t len = strlen(v);
        char host[64];
        uint16_t port;
        if (len >= k->size)
            return md_config_errf(why, whylen, "too long (%zu bytes, max %zu)", len, k->size - 1);
        if (len && md_addr_parse(v, host, sizeof host, &port, why, whylen) < 0) return -1;
        memcpy(str_at(cfg, k), v, len + 1);
        return 0;
    }
    case K_LOGLEVEL:
        for (int i = 0; i < 4; i++)
            if (strcmp(v, log_level_names[i]) == 0) {
                cfg->log_level = (md_log_level)i;
                return 0;
            }
        if (strcmp(v, "warning") == 0) {
            cfg->log_level = MD_LOG_WARN;
            return 0;
        }
        return md_config_errf(why, whylen, "expected error, warn, info or debug, got '%.64s'", v);
    case K_ENUM: {
        char list[160];
        size_t o = 0;
        const char *const *names = enum_names[k - keys];
        for (int i = 0; names[i]; i++) {
            if (strcmp(v, names[i]) == 0) {
                *(int *)((char *)cfg + k->off) = i;
                return 0;
            }
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s",
                                  !i ? "" : names[i + 1] ? ", " : " or ", names[i]);
        }
        return md_config_errf(why, whylen, "expected %s, got '%.64s'", list, v);
    }
    case K_CPUS: {
        int n;
        if (md_cpus_parse(v, cfg->cpus, MD_MAX_WORKERS, &n, why, whylen) < 0) return -1;
        cfg->ncpus = n;
        return 0;
    }
    default: /* K_LISTEN, K_URL, K_PASSWORD: handled by the callers */
        return md_config_errf(why, whylen, "internal: not a scalar key");
    }
}

static void fmt_cpus(const md_config *cfg, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < cfg->ncpus && o < cap;) {
        int j = i;
        /* Only ascending runs fold into "a-b": md_cpus_parse keeps the given
         * order, and the printed list must read back to the same order. */
        while (j + 1 < cfg->ncpus && cfg->cpus[j + 1] == cfg->cpus[j] + 1) j++;
        const char *sep = i ? "," : "";
        if (j - i >= 2)
            o += (size_t)snprintf(buf + o, cap - o, "%s%d-%d", sep, cfg->cpus[i], cfg->cpus[j]);
        else {
            o += (size_t)snprintf(buf + o, cap - o, "%s%d", sep, cfg->cpus[i]);
            j = i;
        }
        i = j + 1;
    }
}

/* The value of a scalar key as the INI file would spell it. */
static void fmt_key(const md_config *cfg, const key_def *k, char *buf, size_t cap)
{
    switch (k->kind) {
    case K_U32:
        snprintf(buf, cap, "%u", *cu32_at(cfg, k));
        break;
    case K_SECONDS:
    case K_FRACTION:
        fmt_seconds(*cdbl_at(cfg, k), buf, cap);
        break;
    case K_STR:
    case K_ADDR:
    case K_TEMPLATE:
        snprintf(buf, cap, "%s", cstr_at(cfg, k));
        break;
    case K_LOGLEVEL:
        snprintf(buf, cap, "%s",
                 (unsigned)cfg->log_level < 4 ? log_level_names[cfg->log_level] : "info");
        break;
    case K_ENUM:
        snprintf(buf, cap, "%s", enum_names[k - keys][*(const int *)((const char *)cfg + k->off)]);
        break;
    case K_CPUS:
        fmt_cpus(cfg, buf, cap);
        break;
    default:
        buf[0] = '\0';
    }
}

/* ---- INI files ---- */

typedef struct file_ctx {
    md_config *cfg;
    const char *name;     /* file name for messages */
    const char *p, *end;  /* unread input */
    int line;             /* lines handed to inih so far = line of the current key */
    int err_line;         /* first error we found ourselves; 0 = none */
    char why[600];        /* its message, without "FILE:LINE: " */
    bool listen_reset;    /* the first listen line replaces the list */
    int seen[NKEYS];      /* line each key was set on; 0 = not in this file */
    char url[1024];       /* [redis] url, applied by the caller */
    char password[256];   /* [redis] password, idem */
} file_ctx;

__attribute__((format(printf, 2, 3))) static void ctx_fail(file_ctx *c, const char *fmt, ...)
{
    if (c->err_line) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    c->err_line = c->line;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\v' || ch == '\f'; }

static bool known_section(const char *s, size_t len)
{
    while (len && is_blank(*s)) s++, len--;
    while (len && is_blank(s[len - 1])) len--;
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (strlen(sections[i]) == len && memcmp(sections[i], s, len) == 0) return true;
    return false;
}

/* fgets-style reader for ini_parse_stream over an in-memory file. */
static char *ctx_reader(char *str, int num, void *stream)
{
    file_ctx *c = stream;
    if (c->err_line || c->p >= c->end) return NULL;
    const char *s = c->p;
    const char *nl = memchr(s, '\n', (size_t)(c->end - s));
    size_t len = nl ? (size_t)(nl - s) + 1 : (size_t)(c->end - s);
    c->p += len;
    c->line++;

    if (memchr(s, '\0', len)) {
        ctx_fail(c, "NUL byte in line");
        return NULL;
    }
    while (len && is_blank(*s)) s++, len--;
    size_t text = len;
    while (text && (s[text - 1] == '\n' || s[text - 1] == '\r')) text--;
    /* inih's buffer must hold the line plus "\r\n" and the NUL. */
    if (num < 4 || text > (size_t)num - 3) {
        ctx_fail(c, "line too long (%zu characters, max %d)", text, num - 3);
        return NULL;
    }
    /* Caught here rather than in the handler so that an empty unknown
     * section, which never reaches the handler, is still reported. */
    if (text && s[0] == '[') {
        const char *rb = memchr(s, ']', text);
        if (rb && !known_section(s + 1, (size_t)(rb - s - 1))) {
            ctx_fail(c, "[%.*s]: unknown section (known: [mdcache], [feeds], [redis], [keys])",
                     (int)((size_t)(rb - s - 1) > 64 ? 64 : rb - s - 1), s + 1);
            return NULL;
        }
    }
    /* Only the text: inih would strip the line ending anyway, and a run of
     * '\r's must not push the copy past its buffer. */
    memcpy(str, s, text);
    str[text] = '\0';
    return str;
}

static int ctx_handler(void *user, const char *section, const char *name, const char *value)
{
    file_ctx *c = user;
    char sec[32], why[512], val[1024];
    size_t len;

    if (c->err_line) return 0;
    /* inih keeps blanks inside "[ redis ]"; we do not care for them. */
    while (is_blank(*section)) section++;
    len = strlen(section);
    while (len && is_blank(section[len - 1])) len--;
    if (len == 0) {
        ctx_fail(c, "%.64s: key outside any section (put it under [mdcache], [feeds], [redis] "
                    "or [keys])",
                 name);
        return 0;
    }
    if (len >= sizeof sec) len = sizeof sec - 1; /* the reader rejected unknown ones */
    memcpy(sec, section, len);
    sec[len] = '\0';

    const key_def *k = NULL;
    int id;
    for (id = 0; id < NKEYS; id++)
        if (strcmp(keys[id].section, sec) == 0 && strcmp(keys[id].name, name) == 0) {
            k = &keys[id];
            break;
        }
    if (!k) {
        char list[512];
        size_t o = 0;
        list[0] = '\0';
        for (int i = 0; i < NKEYS && o < sizeof list; i++)
            if (strcmp(keys[i].section, sec) == 0)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
                                      keys[i].name);
        ctx_fail(c, "[%s] %.64s: unknown key (keys in [%s]: %s)", sec, name, sec, list);
        return 0;
    }
    if (k->kind != K_LISTEN && c->seen[id]) {
        ctx_fail(c, "[%s] %s: given twice (first on line %d)", sec, k->name, c->seen[id]);
        return 0;
    }
    c->seen[id] = c->line;

    /* One pair of double quotes is stripped, so that `prefix = ""` means
     * empty and a value may keep leading or trailing blanks. */
    len = strlen(value);
    if (len >= sizeof val) {
        ctx_fail(c, "[%s] %s: value too long", sec, k->name);
        return 0;
    }
    if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
        memcpy(val, value + 1, len - 2);
        val[len - 2] = '\0';
    } else {
        memcpy(val, value, len + 1);
    }

    md_config *cfg = c->cfg;
    switch (k->kind) {
    case K_LISTEN:
        if (!c->listen_reset) {
            cfg->nlisten = 0;
            c->listen_reset = true;
        }
        if (cfg->nlisten >= MD_MAX_LISTEN) {
            ctx_fail(c, "[%s] %s: too many listen specs (max %d)", sec, k->name, MD_MAX_LISTEN);
            return 0;
        }
        if (md_listen_parse(val, &cfg->listen[cfg->nlisten], why, sizeof why) < 0) {
            ctx_fail(c, "[%s] %s: %s", sec, k->name, why);
            return 0;
        }
        cfg->nlisten++;
        return 1;
    case K_URL: {
        md_redis_url u;
        if (strlen(val) >= sizeof c->url) {
            ctx_fail(c, "[%s] %s: too long (max %zu bytes)", sec, k->name, sizeof c->url - 1);
            return 0;
        }
        if (md_redis_url_parse(val, &u, why, sizeof why) < 0) {
            ctx_fail(c, "[%s] %s: %s", sec, k->name, why);
            return 0;
        }
        strcpy(c->url, val);
        return 1;
    }
    case K_PASSWORD:
        if (strlen(val) >= sizeof c->password) {
            ctx_fail(c, "[%s] %s: too long (max %zu bytes)", sec, k->name,
                     sizeof c->password - 1);
            return 0;
        }
        strcpy(c->password, val);
        return 1;
    default:
        if (set_key(cfg, k, val, why, sizeof why) < 0) {
            ctx_fail(c, "[%s] %s: %s", sec, k->name, why);
            return 0;
        }
        return 1;
    }
}

/* Parses text[0..len) into cfg (scalar keys and listen directly; url and
 * password are left in c for the caller, who knows about the environment). */
static int load_text(md_config *cfg, const char *text, size_t len, const char *name, file_ctx *c,
                     char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->name = name;
    c->p = text;
    c->end = text + len;
    int rc = ini_parse_stream(ctx_reader, c, ctx_handler, c);
    /* inih reports the first line it found wrong: its own syntax errors, or
     * where our handler returned 0. Ours carry a reason; a line of inih's
     * that comes first is a syntax error. */
    if (rc > 0 && (!c->err_line || rc < c->err_line))
        return md_config_errf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", name,
                    rc);
    if (c->err_line) return md_config_errf(err, errlen, "%s:%d: %s", name, c->err_line, c->why);
    if (rc < 0) return md_config_errf(err, errlen, "%s: cannot parse (out of memory)", name);
    return 0;
}

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return md_config_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) goto oom;
    for (;;) {
        if (len == cap) {
            if (cap >= MD_CONFIG_MAX_BYTES) {
                free(buf);
                fclose(f);
                return md_config_errf(err, errlen, "%s: too large for a config file (max %d bytes)", path,
                            MD_CONFIG_MAX_BYTES);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) goto oom;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return md_config_errf(err, errlen, "%s: cannot read: %s", path, strerror(e));
    }
    fclose(f);
    *out = buf;
    *outlen = len;
    return 0;
oom:
    free(buf);
    fclose(f);
    return md_config_errf(err, errlen, "%s: out of memory", path);
}

/* For the standalone loaders: a file's url replaces cfg's, and its
 * password fills in when the effective URL has none. */
static void apply_file_redis(md_config *cfg, const file_ctx *c)
{
    md_redis_url u;
    if (c->seen[KEY_URL] && md_redis_url_parse(c->url, &u, NULL, 0) == 0) {
        strcpy(cfg->redis_url, c->url);
        cfg->redis_url_from = FROM_FILE;
        cfg->redis = u;
    }
    if (c->seen[KEY_PASSWORD] && c->password[0] &&
        (md_redis_url_parse(cfg->redis_url, &u, NULL, 0) < 0 || u.pass[0] == '\0'))
        strcpy(cfg->redis.pass, c->password);
}

int md_config_load_string(md_config *cfg, const char *ini, const char *name, char *err,
                          size_t errlen)
{
    file_ctx c;
    if (!name) name = "<string>";
    if (load_text(cfg, ini ? ini : "", ini ? strlen(ini) : 0, name, &c, err, errlen) < 0)
        return -1;
    apply_file_redis(cfg, &c);
    return 0;
}

static int load_file_ctx(md_config *cfg, const char *path, file_ctx *c, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    if (strlen(path) >= sizeof cfg->config_path)
        return md_config_errf(err, errlen, "%s: config file path too long (max %zu bytes)", path,
                    sizeof cfg->config_path - 1);
    if (read_file(path, &buf, &len, err, errlen) < 0) return -1;
    int rc = load_text(cfg, buf, len, path, c, err, errlen);
    free(buf);
    if (rc == 0) strcpy(cfg->config_path, path);
    return rc;
}

int md_config_load_file(md_config *cfg, const char *path, char *err, size_t errlen)
{
    file_ctx c;
    if (load_file_ctx(cfg, path, &c, err, errlen) < 0) return -1;
    apply_file_redis(cfg, &c);
    return 0;
}

/* ---- defaults, validation, printing ---- */

void md_config_defaults(md_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->cpus[0] = 0;
    cfg->ncpus = 1;
    cfg->log_level = MD_LOG_INFO;
    cfg->stats_interval_s = 5;
    cfg->max_keys = 1000000;
    cfg->shutdown_timeout_s = 5;
    cfg->udp_buffers = 256;
    cfg->udp_buffer_size = 16384;
    cfg->ring_size = 65536;
    strcpy(cfg->redis_url, MD_DEFAULT_REDIS_URL);
    cfg->redis_url_from = FROM_DEFAULT;
    md_redis_url_parse(MD_DEFAULT_REDIS_URL, &cfg->redis, NULL, 0);
    cfg->max_batch = 256;
    cfg->max_inflight = 8;
    cfg->connect_timeout_s = 2;
    cfg->reconnect_min_s = 0.05;
    cfg->reconnect_max_s = 0.5;
    cfg->keepalive_s = 15;
    cfg->reply_timeout_s = 10;
    strcpy(cfg->client_name, "mdcache");
    strcpy(cfg->price_key, "price:{symbol}:latest");
    cfg->price_ttl_s = 5;
    strcpy(cfg->last_good_key, "price:{symbol}:last_good");
    cfg->last_good_interval_s = 1;
    cfg->last_good_ttl_s = 0;
    cfg->refresh_fraction = 0.5;
    cfg->watch_expired = 1;
    cfg->set_notify_events = 1;
    strcpy(cfg->events_channel, "mdcache:events");
    cfg->source_timeout_s = 3;
    cfg->max_accounts = 100000;
    cfg->max_positions = 1000;
    cfg->max_orders = 1000;
    /* The seeds' keys and TTLs (seeds/orca-redis-operations.md). */
    strcpy(cfg->positions_key, "hft:positions:{account}:all");
    cfg->positions_ttl_s = 1;
    strcpy(cfg->order_key, "hft:orders:pending:{account}:{order_id}");
    strcpy(cfg->order_list_key, "hft:orders:pending:{account}");
    cfg->orders_ttl_s = 1;
    strcpy(cfg->balances_key, "hft:balances:{account}:all");
    cfg->balances_ttl_s = 2;
    strcpy(cfg->accounts_key, "hft:accounts:{account}");
    cfg->accounts_ttl_s = 300;
}

/* Whole-config checks after the merge. Single values were range-checked as
 * they were read (with their file line); this re-checks them in case a
 * caller filled the struct by hand, and adds what depends on the machine
 * or on more than one key. `cpus_where` says where the CPU list came from. */
static int validate(const md_config *cfg, const char *cpus_where, bool daemon, char *err,
                    size_t errlen)
{
    char range[160], val[64];
    if (daemon && cfg->nlisten < 1)
        return md_config_errf(err, errlen, "no feeds: give --listen SPEC or [feeds] listen");
    if (cfg->nlisten > MD_MAX_LISTEN)
        return md_config_errf(err, errlen, "[feeds] listen: too many listen specs (max %d)", MD_MAX_LISTEN);
    if (cfg->ncpus < 1 || cfg->ncpus > MD_MAX_WORKERS)
        return md_config_errf(err, errlen, "%s: need 1..%d CPUs", cpus_where, MD_MAX_WORKERS);
    long nconf = sysconf(_SC_NPROCESSORS_CONF);
    /* CPUs are the daemon's: a tool reading the same file runs anywhere. */
    for (int i = 0; i < cfg->ncpus && daemon; i++) {
        int cpu = cfg->cpus[i];
        if (cpu < 0 || (nconf > 0 && cpu >= nconf))
            return md_config_errf(err, errlen, "%s: CPU %d does not exist (this machine has CPUs 0..%ld)",
                        cpus_where, cpu, nconf - 1);
        for (int j = 0; j < i; j++)
            if (cfg->cpus[j] == cpu)
                return md_config_errf(err, errlen, "%s: CPU %d listed twice", cpus_where, cpu);
    }
    for (int id = 0; id < NKEYS; id++) {
        const key_def *k = &keys[id];
        double v;
        if (k->kind == K_U32) v = *cu32_at(cfg, k);
        else if (k->kind == K_SECONDS || k->kind == K_FRACTION) v = *cdbl_at(cfg, k);
        else continue;
        if (!num_in_range(k, v)) {
            range_text(k, range, sizeof range);
            fmt_key(cfg, k, val, sizeof val);
            return md_config_errf(err, errlen, "[%s] %s: expected %s, got '%s'", k->section, k->name, range,
                        val);
        }
    }
    if (count_symbol(cfg->price_key) != 1)
        return md_config_errf(err, errlen, "[keys] price_key: must contain {symbol} exactly once");
    if (cfg->metrics_addr[0]) {
        char host[64], why[160];
        uint16_t port;
        if (md_addr_parse(cfg->metrics_addr, host, sizeof host, &port, why, sizeof why) < 0)
            return md_config_errf(err, errlen, "[mdcache] metrics: %s", why);
    }
    for (int id = 0; id < NKEYS; id++) {
        const key_def *k = &keys[id];
        const char *bad = k->kind == K_TEMPLATE && (k->flags & F_ACCOUNT)
                              ? template_problem(k, cstr_at(cfg, k)) : NULL;
        if (bad) return md_config_errf(err, errlen, "[%s] %s: %s", k->section, k->name, bad);
    }
    if (cfg->publish_events && !cfg->events_channel[0])
        return md_config_errf(err, errlen, "[keys] publish_events = yes needs an events_channel");
    if (cfg->publish_events && !cfg->watch_expired)
        return md_config_errf(err, errlen,
                              "[keys] publish_events = yes needs watch_expired = yes (the events "
                              "are the expiries it sees)");
    if (cfg->price_channel[0] && count_symbol(cfg->price_channel) != 1)
        return md_config_errf(err, errlen,
                    "[keys] price_channel: must contain {symbol} exactly once (or be empty)");
    if (cfg->last_good_key[0] && count_symbol(cfg->last_good_key) != 1)
        return md_config_errf(err, errlen,
                    "[keys] last_good_key: must contain {symbol} exactly once (or be empty)");
    if (cfg->reconnect_min_s > cfg->reconnect_max_s) {
        char a[32], b[32];
        fmt_seconds(cfg->reconnect_min_s, a, sizeof a);
        fmt_seconds(cfg->reconnect_max_s, b, sizeof b);
        return md_config_errf(err, errlen, "[redis] reconnect_min (%s) is larger than reconnect_max (%s)", a,
                    b);
    }
    for (const char *p = cfg->client_name; *p; p++)
        if (*p == ' ' || *p == '\n')
            return md_config_errf(err, errlen, "[redis] client_name: no blanks allowed (Redis refuses them)");
    /* Silently talking plain TCP to a server someone configured a CA for
     * would defeat the point of configuring it. */
    static const int tls_keys[] = {KEY_CACERT, KEY_CACERTDIR, KEY_CERT, KEY_KEY, KEY_SNI};
    for (size_t i = 0; i < sizeof tls_keys / sizeof tls_keys[0]; i++) {
        const key_def *k = &keys[tls_keys[i]];
        if (cstr_at(cfg, k)[0] && cfg->redis.kind != MD_REDIS_TLS)
            return md_config_errf(err, errlen,
                                  "[redis] %s (--%s) is a TLS option, but the Redis URL is not "
                                  "rediss://",
                                  k->name, k->opt);
    }
    if (cfg->tls_insecure && cfg->redis.kind != MD_REDIS_TLS)
        return md_config_errf(err, errlen,
                              "[redis] insecure (--insecure) is a TLS option, but the Redis URL is "
                              "not rediss://");
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return md_config_errf(err, errlen, "[redis] %s is set without %s: a client certificate "
                                           "needs both --cert and --key",
                              cfg->tls_cert[0] ? "cert" : "key", cfg->tls_cert[0] ? "key" : "cert");
    return 0;
}

/* [redis] cluster against the URL. Checked with the configuration rather
 * than left to the first connection, so that the mistake is reported once,
 * naming where each setting came from, instead of surfacing as a refused
 * SELECT or a MOVED that cannot be followed. `cluster_where` names where the
 * mode came from, with its value; `url_src` names the URL's source briefly,
 * `url_where` as URL errors do. */
static int validate_cluster(const md_config *cfg, const char *cluster_where, const char *url_src,
                            const char *url_where, char *err, size_t errlen)
{
    const md_redis_url *u = &cfg->redis;
    switch (cfg->cluster) {
    case MD_CLUSTER_YES:
        if (u->kind == MD_REDIS_UNIX)
            return md_config_errf(err, errlen,
                                  "%s: a unix socket cannot reach a Redis Cluster (its nodes are "
                                  "addressed by host:port); the Redis URL (%s) needs redis:// or "
                                  "rediss:// seed nodes",
                                  cluster_where, url_src);
        if (u->db != 0)
            return md_config_errf(err, errlen,
                                  "%s: Redis Cluster has only database 0, but the Redis URL (%s) "
                                  "selects database %d",
                                  cluster_where, url_src, u->db);
        return 0;
    case MD_CLUSTER_NO:
        if (u->nseeds > 1)
            return md_config_errf(err, errlen,
                                  "%s: the Redis URL (%s) names %u seed nodes; several seed nodes "
                                  "need cluster = yes or auto",
                                  cluster_where, url_src, (unsigned)u->nseeds);
        return 0;
    default:
        /* Several seeds mean a cluster whatever the server says later. */
        if (u->nseeds > 1 && u->db != 0)
            return md_config_errf(err, errlen,
                                  "%s: several seed nodes mean a Redis Cluster, and Redis Cluster "
                                  "has only database 0 (this URL selects database %d)",
                                  url_where, u->db);
        return 0;
    }
}

/* name = value, quoted when inih would otherwise lose blanks at either end,
 * take a leading ';' for a comment, or strip a pair of quotes that belong
 * to the value. (Blank + ';' inside a value cannot be written at all.) */
static void print_kv(FILE *f, const char *name, const char *v)
{
    size_t len = strlen(v);
    bool quote = len && (is_blank(v[0]) || is_blank(v[len - 1]) || v[0] == ';' ||
                         (len >= 2 && v[0] == '"' && v[len - 1] == '"'));
    if (len == 0) fprintf(f, "%s =\n", name);
    else if (quote) fprintf(f, "%s = \"%s\"\n", name, v);
    else fprintf(f, "%s = %s\n", name, v);
}

void md_config_print(const md_config *cfg, void *file)
{
    FILE *f = file ? file : stdout;
    char buf[1100];
    const char *sec = NULL;
    md_redis_url u;

    fprintf(f, "; mdcache %s effective configuration", MD_VERSION);
    if (cfg->config_path[0]) fprintf(f, " (file: %s)", cfg->config_path);
    fprintf(f, "\n");
    for (int id = 0; id < NKEYS; id++) {
        const key_def *k = &keys[id];
        if (!sec || strcmp(sec, k->section) != 0) {
            fprintf(f, "%s[%s]\n", sec ? "\n" : "", k->section);
            sec = k->section;
        }
        switch (k->kind) {
        case K_LISTEN:
            if (cfg->nlisten == 0) fprintf(f, "; no listen spec\n");
            for (int i = 0; i < cfg->nlisten && i < MD_MAX_LISTEN; i++)
                print_kv(f, k->name, cfg->listen[i].spec);
            break;
        case K_URL:
            md_redis_url_redact(cfg->redis_url, buf, sizeof buf);
            fprintf(f, "; from %s\n", cfg->redis_url_from ? cfg->redis_url_from : FROM_DEFAULT);
            print_kv(f, k->name, buf);
            break;
        case K_PASSWORD:
            /* Only when it is not already (redacted) in the URL. */
            if (cfg->redis.pass[0] &&
                (md_redis_url_parse(cfg->redis_url, &u, NULL, 0) < 0 || u.pass[0] == '\0'))
                print_kv(f, k->name, "***");
            break;
        default:
            fmt_key(cfg, k, buf, sizeof buf);
            print_kv(f, k->name, buf);
        }
    }
}

/* ---- command line ---- */

enum { OPT_CHECK = 0x100, OPT_VERSION, OPT_REDIS, OPT_LISTEN, OPT_INSECURE, OPT_MLOCK, OPT_KEY = 0x200 };

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cpus", required_argument, NULL, OPT_KEY + KEY_CPUS},
    {"log-level", required_argument, NULL, OPT_KEY + KEY_LOG_LEVEL},
    {"stats-interval", required_argument, NULL, OPT_KEY + KEY_STATS_INTERVAL},
    {"max-keys", required_argument, NULL, OPT_KEY + KEY_MAX_KEYS},
    {"report", required_argument, NULL, OPT_KEY + KEY_REPORT_FILE},
    {"metrics", required_argument, NULL, OPT_KEY + KEY_METRICS},
    {"idle", required_argument, NULL, OPT_KEY + KEY_IDLE},
    {"shutdown-timeout", required_argument, NULL, OPT_KEY + KEY_SHUTDOWN_TIMEOUT},
    {"reply-timeout", required_argument, NULL, OPT_KEY + KEY_REPLY_TIMEOUT},
    {"cluster", required_argument, NULL, OPT_KEY + KEY_CLUSTER},
    {"cacert", required_argument, NULL, OPT_KEY + KEY_CACERT},
    {"cacertdir", required_argument, NULL, OPT_KEY + KEY_CACERTDIR},
    {"cert", required_argument, NULL, OPT_KEY + KEY_CERT},
    {"key", required_argument, NULL, OPT_KEY + KEY_KEY},
    {"sni", required_argument, NULL, OPT_KEY + KEY_SNI},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"mlock", no_argument, NULL, OPT_MLOCK},
    {"sched-priority", required_argument, NULL, OPT_KEY + KEY_SCHED_PRIORITY},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    md_config d;
    char buf[128];
    const char *sec = NULL;
    md_config_defaults(&d);
    fprintf(f,
            "Usage: mdcache [OPTIONS]\n"
            "Keeps the latest market data from UDP/TCP/Unix feeds in Redis.\n"
            "\n"
            "Options (each overrides the config file):\n"
            "  -c, --config FILE          INI config file (sections and keys below)\n"
            "      --redis URL            Redis server; see [redis] url\n"
            "      --listen SPEC          feed to read; repeatable; replaces the file's list\n"
            "      --cpus LIST            worker CPUs, e.g. 0 or 1,3-5\n"
            "      --log-level LEVEL      error, warn, info or debug\n"
            "      --stats-interval SECS  stats line on stderr every SECS (0 = off)\n"
            "      --max-keys N           most keys held in memory\n"
            "      --report FILE          write JSON counters and histograms at exit\n"
            "      --metrics HOST:PORT    serve Prometheus metrics at http://HOST:PORT/metrics\n"
            "      --idle wait|spin       idle workers sleep (default) or poll (isolated cores)\n"
            "      --sched-priority N     workers run SCHED_FIFO at priority N (1..99; 0 = normal)\n"
            "      --mlock                lock mdcache's memory in RAM (mlockall)\n"
            "      --shutdown-timeout SECS  on SIGTERM, how long to try to flush\n"
            "      --reply-timeout SECS   reconnect when Redis leaves a batch unanswered\n"
            "      --cluster auto|yes|no  Redis Cluster: auto asks the server at start-up\n"
            "TLS (rediss:// URLs; same names as redis-cli, and as [redis] keys):\n"
            "      --cacert FILE          CA certificates to verify the server with\n"
            "      --cacertdir DIR        CA directory (default for both: the system store)\n"
            "      --cert FILE            client certificate, for mutual TLS\n"
            "      --key FILE             its private key\n"
            "      --sni NAME             server name sent and verified (default: URL host)\n"
            "      --insecure             do not verify the server (warned at start)\n"
            "      --check-config         validate, print the effective config, exit\n"
            "      --version              print the version and exit\n"
            "  -h, --help                 print this text and exit\n"
            "\n"
            "Redis URL, first found: --redis, [redis] url, $REDIS_URL, $CELERY_BROKER_URL,\n"
            "%s. When the URL has no password, [redis] password or\n"
            "$REDIS_PASSWORD supplies it. Forms:\n"
            "  redis://[user[:pass]@]host[:port][/db]   (%%-escapes in user and pass)\n"
            "  redis://h1[:port],h2[:port],...[/0]      Redis Cluster seed nodes (max %d)\n"
            "  rediss://...                              TLS (see the TLS options)\n"
            "  unix:///path/to.sock[?db=N]\n"
            "\n"
            "Listen specs, each with optional ?format=bin1|jsonl|binance:\n"
            "  udp://HOST:PORT (default bin1)   tcp://HOST:PORT (default jsonl)\n"
            "  unix:///PATH (jsonl)             file://PATH (jsonl, replay)\n"
            "\n"
            "Config file keys, with their defaults:\n",
            MD_DEFAULT_REDIS_URL, MD_MAX_SEEDS);
    for (int id = 0; id < NKEYS; id++) {
        const key_def *k = &keys[id];
        if (!sec || strcmp(sec, k->section) != 0) {
            fprintf(f, "[%s]\n", k->section);
            sec = k->section;
        }
        if (k->kind == K_LISTEN || k->kind == K_URL || k->kind == K_PASSWORD) {
            snprintf(buf, sizeof buf, "%s", k->kind == K_URL ? MD_DEFAULT_REDIS_URL : "");
        } else {
            fmt_key(&d, k, buf, sizeof buf);
        }
        char kv[160];
        snprintf(kv, sizeof kv, "%s = %s", k->name, buf);
        if (strlen(kv) > 36) fprintf(f, "  %s\n  %-36s %s\n", kv, "", k->help);
        else fprintf(f, "  %-36s %s\n", kv, k->help);
    }
    fprintf(f, "\nSee docs/configuration.md and docs/mdcache.example.ini.\n");
}

static const char *opt_name(int val, char *buf, size_t cap)
{
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == val) {
            snprintf(buf, cap, "--%s", o->name);
            return buf;
        }
    if (val > 0 && val < 0x80) snprintf(buf, cap, "-%c", val);
    else snprintf(buf, cap, "?");
    return buf;
}

static int load(md_config *cfg, int argc, char **argv, bool daemon, char *err, size_t errlen);

int md_config_load(md_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    return load(cfg, argc, argv, true, err, errlen);
}

int md_config_load_client(md_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    return load(cfg, argc, argv, false, err, errlen);
}

static int load(md_config *cfg, int argc, char **argv, bool daemon, char *err, size_t errlen)
{
    const char *cli[NKEYS] = {0};
    const char *cli_listen[MD_MAX_LISTEN];
    int ncli_listen = 0;
    const char *config = NULL, *cli_redis = NULL;
    bool help = false, version = false, check = false;
    char why[512], name[64];
    file_ctx fc;
    int ch;

    md_config_defaults(cfg);
    memset(&fc, 0, sizeof fc);
    /* getopt keeps state between calls; glibc re-initialises fully only
     * when optind is 0. */
#ifdef __GLIBC__
    optind = 0;
#else
    optind = 1;
#endif
    opterr = 0;
    /* "+": stop at the first non-option instead of permuting argv; ":":
     * tell a missing argument apart from an unknown option. */
    while (argc > 0 && (ch = getopt_long(argc, argv, "+:c:h", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            help = true;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_VERSION:
            version = true;
            break;
        case OPT_REDIS:
            cli_redis = optarg;
            break;
        case OPT_INSECURE:
            cli[KEY_INSECURE] = "yes";
            break;
        case OPT_MLOCK:
            cli[KEY_MLOCK] = "yes";
            break;
        case OPT_LISTEN:
            if (ncli_listen >= MD_MAX_LISTEN)
                return md_config_errf(err, errlen, "--listen: too many listen specs (max %d)",
                            MD_MAX_LISTEN);
            cli_listen[ncli_listen++] = optarg;
            break;
        case ':':
            return md_config_errf(err, errlen, "option %s needs an argument (see --help)",
                        opt_name(optopt, name, sizeof name));
        case '?':
            if (optopt == 0 || optopt == '?')
                return md_config_errf(err, errlen, "unknown option '%.64s' (see --help)", argv[optind - 1]);
            /* glibc sets optopt to a long option's val when it was given
             * "=value" but takes none. */
            for (const struct option *o = long_opts; o->name; o++)
                if (o->val == optopt)
                    return md_config_errf(err, errlen, "option --%s takes no argument (see --help)",
                                o->name);
            if (optopt > 0x20 && optopt < 0x7f)
                return md_config_errf(err, errlen, "unknown option '-%c' (see --help)", optopt);
            return md_config_errf(err, errlen, "unknown option (see --help)");
        default:
            if (ch >= OPT_KEY && ch < OPT_KEY + NKEYS) cli[ch - OPT_KEY] = optarg;
            break;
        }
    }
    if (argc > 0 && optind < argc)
        return md_config_errf(err, errlen, "unexpected argument '%.64s' (see --help)", argv[optind]);
    if (help) {
        usage(stdout);
        return 1;
    }
    if (version) {
        printf("mdcache %s\n", MD_VERSION);
        return 1;
    }

    if (config && load_file_ctx(cfg, config, &fc, err, errlen) < 0) return -1;

    for (int id = 0; id < NKEYS; id++)
        if (cli[id] && set_key(cfg, &keys[id], cli[id], why, sizeof why) < 0)
            return md_config_errf(err, errlen, "--%s: %s", keys[id].opt, why);
    if (ncli_listen) {
        for (int i = 0; i < ncli_listen; i++)
            if (md_listen_parse(cli_listen[i], &cfg->listen[i], why, sizeof why) < 0)
                return md_config_errf(err, errlen, "--listen: %s", why);
        cfg->nlisten = ncli_listen;
    }

    /* The Redis URL: first of command line, file, environment, default. */
    const char *url, *from, *env, *url_src;
    char where[400];
    if (cli_redis) {
        url = cli_redis;
        from = FROM_CLI;
        url_src = "--redis";
        snprintf(where, sizeof where, "--redis");
    } else if (fc.seen[KEY_URL]) {
        url = fc.url;
        from = FROM_FILE;
        url_src = "[redis] url";
        snprintf(where, sizeof where, "%s:%d: [redis] url", config, fc.seen[KEY_URL]);
    } else if ((env = getenv("REDIS_URL")) && *env) {
        url = env;
        from = FROM_REDIS_URL;
        url_src = FROM_REDIS_URL;
        snprintf(where, sizeof where, "REDIS_URL");
    } else if ((env = getenv("CELERY_BROKER_URL")) && *env) {
        url = env;
        from = FROM_CELERY;
        url_src = FROM_CELERY;
        snprintf(where, sizeof where, "CELERY_BROKER_URL");
    } else {
        url = MD_DEFAULT_REDIS_URL;
        from = FROM_DEFAULT;
        url_src = "the default";
        snprintf(where, sizeof where, "default Redis URL");
    }
    if (strlen(url) >= sizeof cfg->redis_url)
        return md_config_errf(err, errlen, "%s: URL too long (max %zu bytes)", where,
                    sizeof cfg->redis_url - 1);
    if (md_redis_url_parse(url, &cfg->redis, why, sizeof why) < 0)
        return md_config_errf(err, errlen, "%s: %s", where, why);
    strcpy(cfg->redis_url, url);
    cfg->redis_url_from = from;
    if (cfg->redis.pass[0] == '\0') {
        if (fc.seen[KEY_PASSWORD] && fc.password[0]) {
            strcpy(cfg->redis.pass, fc.password);
        } else if ((env = getenv("REDIS_PASSWORD")) && *env) {
            if (strlen(env) >= sizeof cfg->redis.pass)
                return md_config_errf(err, errlen, "REDIS_PASSWORD: too long (max %zu bytes)",
                            sizeof cfg->redis.pass - 1);
            strcpy(cfg->redis.pass, env);
        }
    }

    char cluster_where[400];
    const char *mode = (unsigned)cfg->cluster < 3 ? cluster_names[cfg->cluster] : "?";
    if (cli[KEY_CLUSTER])
        snprintf(cluster_where, sizeof cluster_where, "--cluster %s", mode);
    else if (fc.seen[KEY_CLUSTER])
        snprintf(cluster_where, sizeof cluster_where, "%s:%d: [redis] cluster = %s", config,
                 fc.seen[KEY_CLUSTER], mode);
    else
        snprintf(cluster_where, sizeof cluster_where, "[redis] cluster = %s", mode);
    if (validate_cluster(cfg, cluster_where, url_src, where, err, errlen) < 0) return -1;

    const char *cpus_where = "[mdcache] cpus";
    if (cli[KEY_CPUS]) cpus_where = "--cpus";
    else if (fc.seen[KEY_CPUS]) {
        snprintf(where, sizeof where, "%s:%d: [mdcache] cpus", config, fc.seen[KEY_CPUS]);
        cpus_where = where;
    }
    if (validate(cfg, cpus_where, daemon, err, errlen) < 0) return -1;

    if (check) {
        cfg->check_only = true;
        md_config_print(cfg, stdout);
        fflush(stdout);
    }
    return 0;
}
