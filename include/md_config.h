/*
 * md_config: everything mdcache is told, from the command line, the INI
 * file (inih), and the environment, merged and validated once at start-up.
 * After md_config_load() returns the struct is read-only and shared by all
 * threads.
 *
 * Precedence: command line > config file > environment > defaults. A
 * `--listen` on the command line replaces the file's whole listen list.
 * Redis URL: --redis, [redis] url, REDIS_URL, CELERY_BROKER_URL,
 * redis://localhost:6379/0. REDIS_PASSWORD supplies the password when the
 * URL has none. A redis:// or rediss:// URL may name several seed nodes of a
 * Redis Cluster: redis://[user:pass@]h1:7000,h2:7001,[::1]:7002[/0].
 */
#ifndef MD_CONFIG_H
#define MD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_MAX_WORKERS 64
#define MD_MAX_LISTEN 32
/* Seeds are only where the slot map is read from (the first that answers;
 * the rest are fallbacks), and the map names every node: a few are plenty. */
#define MD_MAX_SEEDS 16

typedef enum md_listen_kind { MD_LISTEN_UDP, MD_LISTEN_TCP, MD_LISTEN_UNIX, MD_LISTEN_FILE } md_listen_kind;
typedef enum md_feed_format { MD_FMT_BIN1, MD_FMT_JSONL, MD_FMT_BINANCE } md_feed_format;

typedef struct md_listen_spec {
    md_listen_kind kind;
    md_feed_format format;
    char host[256];   /* udp/tcp: numeric IPv4/IPv6 or name; "[::1]" stored as "::1" */
    uint16_t port;
    char path[256];   /* unix socket path or file path */
    char spec[512];   /* as given, for logs and metrics labels */
} md_listen_spec;

typedef enum md_redis_kind { MD_REDIS_TCP, MD_REDIS_TLS, MD_REDIS_UNIX } md_redis_kind;

typedef struct md_redis_url {
    md_redis_kind kind;
    char host[256];   /* the first seed node: == seeds[0].host */
    uint16_t port;    /* default 6379; == seeds[0].port */
    char path[256];   /* unix socket */
    char user[128];   /* ACL user, "" = default; shared by every seed */
    char pass[256];   /* "" = none; percent-decoded; shared by every seed */
    int db;           /* /N path or ?db=N for unix; default 0 */
    uint8_t nseeds;   /* 1..MD_MAX_SEEDS for TCP/TLS, in URL order; 1 for unix */
    struct {
        char host[256]; /* "[::1]" stored as "::1"; "" for unix */
        uint16_t port;  /* default 6379 per seed */
    } seeds[MD_MAX_SEEDS];
} md_redis_url;

typedef enum md_log_level { MD_LOG_ERROR = 0, MD_LOG_WARN, MD_LOG_INFO, MD_LOG_DEBUG } md_log_level;

enum { MD_IDLE_WAIT = 0, MD_IDLE_SPIN = 1 };

/* [redis] cluster. AUTO decides at start-up from the server (INFO
 * cluster_enabled); several seed nodes in the URL already mean a cluster. */
typedef enum md_cluster_mode { MD_CLUSTER_AUTO = 0, MD_CLUSTER_YES, MD_CLUSTER_NO } md_cluster_mode;

typedef struct md_config {
    char config_path[256];     /* "" when none */
    /* [mdcache] */
    int cpus[MD_MAX_WORKERS];  /* cpus = 0,2-3; default: CPU 0 */
    int ncpus;
    md_log_level log_level;    /* log_level = error|warn|info|debug (info) */
    double stats_interval_s;   /* stats_interval = 5 (0 = off) */
    int idle;                  /* idle = wait (MD_IDLE_WAIT) | spin (MD_IDLE_SPIN) */
    uint32_t sched_priority;   /* sched_priority = 0 (normal) | 1..99: workers run SCHED_FIFO */
    int mlock;                 /* mlock = no|yes: mlockall at start */
    char report_file[1024];    /* report_file = "" (off): JSON counters + histograms at exit */
    char metrics_addr[128];    /* metrics = "" (off): HOST:PORT serving Prometheus /metrics */
    uint32_t max_keys;         /* max_keys = 1000000 (whole process) */
    uint32_t max_accounts;     /* max_accounts = 100000 (whole process) */
    uint32_t max_positions;    /* max_positions = 1000 per account */
    uint32_t max_orders;       /* max_orders = 1000 working (and deleting) orders per account */
    double shutdown_timeout_s; /* shutdown_timeout = 5 */
    /* [feeds] */
    md_listen_spec listen[MD_MAX_LISTEN]; /* listen = SPEC (repeatable) */
    int nlisten;
    uint32_t udp_buffers;      /* udp_buffers = 256 per UDP socket, power of two */
    uint32_t udp_buffer_size;  /* udp_buffer_size = 16384 */
    uint32_t ring_size;        /* ring_size = 65536 ticks per worker pair */
    /* [redis] */
    char redis_url[1024];      /* as resolved (may contain the password: never log it) */
    const char *redis_url_from;/* "command line", "config file", "REDIS_URL", ... */
    md_redis_url redis;
    md_cluster_mode cluster;   /* cluster = auto|yes|no (auto) */
    uint32_t max_batch;        /* max_batch = 2048 keys per batch */
    uint32_t max_inflight;     /* max_inflight = 4 unacknowledged batches */
    double connect_timeout_s;  /* connect_timeout = 2 */
    double reconnect_min_s;    /* reconnect_min = 0.05 */
    double reconnect_max_s;    /* reconnect_max = 0.5 */
    double keepalive_s;        /* keepalive = 15: TCP keepalive idle seconds (0 = off) */
    double reply_timeout_s;    /* reply_timeout = 10: oldest batch unanswered => reconnect (0 = off) */
    char client_name[64];      /* client_name = mdcache: CLIENT SETNAME <name>-w<N> ("" = none) */
    /* TLS (rediss:// only), named like redis-cli's options */
    char tls_cacert[1024];     /* cacert = FILE (default: the system store) */
    char tls_cacertdir[1024];  /* cacertdir = DIR */
    char tls_cert[1024];       /* cert = FILE: client certificate (mutual TLS) */
    char tls_key[1024];        /* key = FILE: its private key */
    char tls_sni[256];         /* sni = NAME: sent and verified instead of the URL host */
    int tls_insecure;          /* insecure = no|yes: skip peer verification */
    /* [keys] */
    char key_prefix[64];       /* prefix = "" */
    char price_key[128];       /* price_key = price:{symbol}:latest */
    uint32_t price_ttl_s;      /* price_ttl = 5 */
    char last_good_key[128];   /* last_good_key = price:{symbol}:last_good ("" disables) */
    char price_channel[128];   /* price_channel = "" (off): PUBLISH each changed price here */
    int watch_expired;         /* watch_expired = yes: subscribe to expired-key events */
    int set_notify_events;     /* set_notify_events = yes: may CONFIG SET notify-keyspace-events */
    int publish_events;        /* publish_events = no: PUBLISH a JSON event per expired key */
    char events_channel[128];  /* events_channel = mdcache:events */
    double last_good_interval_s; /* last_good_interval = 1 */
    uint32_t last_good_ttl_s;  /* last_good_ttl = 0 (no expiry) */
    char positions_key[128];   /* positions_key = hft:positions:{account}:all ("" = off) */
    uint32_t positions_ttl_s;  /* positions_ttl = 1 */
    char order_key[128];       /* order_key = hft:orders:pending:{account}:{order_id} */
    char order_list_key[128];  /* order_list_key = hft:orders:pending:{account} */
    uint32_t orders_ttl_s;     /* orders_ttl = 1 */
    char balances_key[128];    /* balances_key = hft:balances:{account}:all */
    uint32_t balances_ttl_s;   /* balances_ttl = 2 */
    char accounts_key[128];    /* accounts_key = hft:accounts:{account} */
    uint32_t accounts_ttl_s;   /* accounts_ttl = 300 */
    double refresh_fraction;   /* refresh_fraction = 0.5: re-assert after TTL * this */
    double source_timeout_s;   /* source_timeout = 3: quiet longer => not alive */
    /* command line only */
    bool check_only;           /* --check-config */
} md_config;

/* Fills defaults, parses argv (getopt_long), loads the file (-c), applies
 * the environment, validates. Returns 0 to run, 1 when the program should
 * exit 0 at once (--help, --version printed to stdout), -1 on error with a
 * one-line message in err (file errors read "FILE:LINE: [section] key: why"). */
int md_config_load(md_config *cfg, int argc, char **argv, char *err, size_t errlen);
/* The same for a tool that reads mdcache's configuration to reach its
 * Redis (tools/): the daemon's own needs, feeds and existing CPUs, are not
 * required. */
int md_config_load_client(md_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Loads only an INI file on top of cfg (used by md_config_load and the fuzzer). */
int md_config_load_file(md_config *cfg, const char *path, char *err, size_t errlen);
/* Same, from a NUL-terminated string; `name` is used in messages. */
int md_config_load_string(md_config *cfg, const char *ini, const char *name, char *err,
                          size_t errlen);

void md_config_defaults(md_config *cfg);

/* Prints the effective configuration as INI (password shown as "***"). */
void md_config_print(const md_config *cfg, void *file /* FILE* */);

/* Parsers, each 0 on success, -1 with a message in err. */
int md_redis_url_parse(const char *url, md_redis_url *out, char *err, size_t errlen);
int md_listen_parse(const char *spec, md_listen_spec *out, char *err, size_t errlen);
int md_cpus_parse(const char *list, int *cpus, int max, int *n, char *err, size_t errlen);
/* "127.0.0.1:9464" or "[::1]:9464": numeric host (brackets removed) and
 * port 1..65535. */
int md_addr_parse(const char *s, char *host, size_t hostcap, uint16_t *port, char *err,
                  size_t errlen);

/* Writes a message into err (if any) and returns -1: the error path of
 * every parser above. */
int md_config_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A copy of url with any password replaced by "***", for logs. */
void md_redis_url_redact(const char *url, char *out, size_t cap);

#endif
