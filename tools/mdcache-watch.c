/*
 * mdcache-watch: a live view of the prices mdcache writes, pushed by Redis.
 *
 * Nothing is polled. When mdcache publishes changed prices ([keys]
 * price_channel, or --channel) the tool SUBSCRIBEs to the channel of each
 * symbol and shows the value the message carries. Otherwise (or with
 * --keyspace) it SUBSCRIBEs to the keyspace notification channel of each
 * price key and GETs the key when the server says it was set. Either way
 * the key is read once at start, so the view is whole before the first
 * push.
 *
 * On a Redis Cluster a PUBLISH reaches subscribers on every node, so one
 * subscription anywhere is enough; keyspace notifications stay on the node
 * that owns the key, so there the tool subscribes on each key's owner.
 *
 * Connection, TLS, credentials and key templates come from mdcache's own
 * configuration code (md_config_load), as for mdcache-inspect, so -c FILE
 * points the tool at the daemon's Redis and keys.
 *
 * Exit codes: 0 done (--count, --duration, SIGINT/SIGTERM), 1 Redis
 * unreachable or lost, 2 bad options or configuration, Redis refused us,
 * or the server does not send the notifications keyspace mode needs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "md_bconn.h"
#include "lib/md_tool.h"
#include "md_config.h"
#include "md_format.h"
#include "md_preflight.h"
#include "md_redis.h"
#include "md_slot.h"
#include "md_tick.h"
#include "md_tls.h"
#include "md_topo_service.h"
#include "md_topology.h"

#define PROG "mdcache-watch"
#define MAX_SYMS 256

typedef enum out_mode { OUT_TTY, OUT_PLAIN, OUT_JSON } out_mode;

typedef struct opts {
    out_mode out;
    bool keyspace;
    bool enable_notifications;
    bool initial;
    bool require_key;
    const char *channel; /* --channel: overrides [keys] price_channel */
    uint64_t count;      /* 0: no limit */
    double duration_s;   /* 0: no limit */
    double timeout_s;
} opts;

/* One Redis node: `data` for GET/PTTL, `sub` once it carries subscriptions
 * (a subscribed connection accepts no GET, hence two). */
typedef struct node {
    md_redis_target t;
    md_bconn data, sub;
    bool data_open, sub_open;
    size_t nsubs;
} node;

typedef struct sym {
    const char *name;
    size_t len;
    char key[256];
    size_t klen;
    char chan[300]; /* the channel subscribed for it */
    size_t clen;
    size_t data_node; /* index into nodes: who owns the key */
    size_t sub_node;  /* who carries its subscription */
    char *val;        /* latest value, NULL: no key */
    size_t vlen;
    int64_t pttl;     /* -2 none, -1 no TTL, else ms at pttl_at */
    int64_t pttl_at;  /* monotonic ms */
    uint64_t updates;
} sym;

static md_config cfg;
static md_keytpl key_tpl, chan_tpl;
static sym syms[MAX_SYMS];
static size_t nsyms;
static node *nodes;
static size_t nnodes;
static opts o;
static uint64_t printed; /* updates, for --count */
static volatile sig_atomic_t stop_sig;
static bool table_drawn;
static bool is_cluster;


static void usage(FILE *f)
{
    fputs("usage: " PROG " [options] SYMBOL...\n"
          "\n"
          "Live view of mdcache's price keys, pushed by Redis (no polling): the\n"
          "price_channel messages when mdcache publishes them, else keyspace\n"
          "notifications of each price key. Every key is read once at start.\n"
          "\n"
          "Where and what (as mdcache takes them):\n"
          "  -c, --config FILE     mdcache's INI file: [redis] url/password/TLS and [keys]\n"
          "                        price_key, price_channel and prefix\n"
          MD_TOOL_REDIS_HELP
          "\n"
          "Source:\n"
          "      --channel TPL     the channel template mdcache publishes on, e.g.\n"
          "                        'price:{symbol}' (default: [keys] price_channel)\n"
          "      --keyspace        use keyspace notifications even when a channel is set\n"
          "      --enable-notifications\n"
          "                        keyspace mode: add K and $ to notify-keyspace-events\n"
          "                        (CONFIG SET) where missing, instead of failing\n"
          "\n"
          "Output:\n"
          "      --plain           one line per update: TIME SYMBOL JSON (the default when\n"
          "                        stdout is not a terminal)\n"
          "      --json            one JSON object per update:\n"
          "                        {\"time\",\"symbol\",\"key\",\"value\"}\n"
          "      --initial         --plain/--json: print the values read at start first\n"
          "      --require-key     exit 2 if a symbol has no price key at start\n"
          "      --count N         exit 0 after N updates\n"
          "      --duration SECONDS  exit 0 after this long\n"
          "      --timeout SECONDS per round trip (default 10; connect: connect_timeout)\n"
          "  -h, --help\n"
          "\n"
          "Exit: 0 done or interrupted, 1 Redis unreachable or lost, 2 bad options,\n"
          "configuration, refused credentials/certificate, or missing notifications.\n",
          f);
}

enum {
    O_PLAIN = MD_TOOL_O_OWN, O_JSON, O_KEYSPACE, O_ENABLE, O_CHANNEL, O_INITIAL, O_REQUIRE, O_COUNT,
    O_DURATION, O_TIMEOUT,
};

static const struct option long_opts[] = {
    MD_TOOL_REDIS_OPTIONS,
    {"plain", no_argument, NULL, O_PLAIN},
    {"json", no_argument, NULL, O_JSON},
    {"keyspace", no_argument, NULL, O_KEYSPACE},
    {"enable-notifications", no_argument, NULL, O_ENABLE},
    {"channel", required_argument, NULL, O_CHANNEL},
    {"initial", no_argument, NULL, O_INITIAL},
    {"require-key", no_argument, NULL, O_REQUIRE},
    {"count", required_argument, NULL, O_COUNT},
    {"duration", required_argument, NULL, O_DURATION},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};


/* A symbol mdcache could have written: what its decoders accept (1..31
 * bytes, not the reset wildcard). Spaces and control bytes are refused
 * too: on a command line they are a quoting mistake, not an instrument. */
static void check_symbol(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MD_SYMBOL_MAX)
        md_tool_die(2, "symbol '%.64s': must be 1..%d bytes", s, MD_SYMBOL_MAX);
    if (strcmp(s, "*") == 0) md_tool_die(2, "symbol '*' is the reset wildcard, not a symbol");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7f) md_tool_die(2, "symbol '%.64s': contains a space or control byte", s);
    }
}

static void parse_args(int argc, char **argv)
{
    static md_tool_args args;
    int ch;
    md_tool_prog = PROG;
    bool out_set = false;
    o.timeout_s = 10;
    o.out = isatty(STDOUT_FILENO) ? OUT_TTY : OUT_PLAIN;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:h", long_opts, NULL)) != -1) {
        if (md_tool_redis_option(&args, ch, optarg)) continue;
        switch (ch) {
        case 'h':
            usage(stdout);
            exit(0);
        case O_PLAIN:
        case O_JSON:
            if (out_set && o.out != (ch == O_PLAIN ? OUT_PLAIN : OUT_JSON))
                md_tool_die(2, "--plain and --json exclude each other");
            o.out = ch == O_PLAIN ? OUT_PLAIN : OUT_JSON;
            out_set = true;
            break;
        case O_KEYSPACE: o.keyspace = true; break;
        case O_ENABLE: o.enable_notifications = true; break;
        case O_CHANNEL: o.channel = optarg; break;
        case O_INITIAL: o.initial = true; break;
        case O_REQUIRE: o.require_key = true; break;
        case O_COUNT: o.count = (uint64_t)md_tool_num("count", optarg, 1, 1e12, true); break;
        case O_DURATION: o.duration_s = md_tool_num("duration", optarg, 0.001, 1e9, false); break;
        case O_TIMEOUT: o.timeout_s = md_tool_num("timeout", optarg, 0.001, 3600, false); break;
        case ':':
            md_tool_die(2, "option %s needs an argument (see --help)", argv[optind - 1]);
        default:
            md_tool_die(2, "unknown option '%.64s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc) md_tool_die(2, "no symbol given (usage: " PROG " [options] SYMBOL...)");
    for (int i = optind; i < argc; i++) {
        check_symbol(argv[i]);
        bool dup = false;
        for (size_t j = 0; j < nsyms; j++) dup |= strcmp(syms[j].name, argv[i]) == 0;
        if (dup) continue;
        if (nsyms == MAX_SYMS) md_tool_die(2, "at most %d symbols", MAX_SYMS);
        syms[nsyms].name = argv[i];
        syms[nsyms].len = strlen(argv[i]);
        nsyms++;
    }
    md_tool_load(&args, &cfg);
    if (o.channel) {
        if (strlen(o.channel) >= sizeof cfg.price_channel) md_tool_die(2, "--channel: too long");
        snprintf(cfg.price_channel, sizeof cfg.price_channel, "%s", o.channel);
    }
    if (!cfg.price_channel[0]) o.keyspace = true;
}

static void init_keys(void)
{
    if (md_keytpl_init(&key_tpl, cfg.key_prefix, cfg.price_key))
        md_tool_die(2, "[keys] price_key '%s' is not usable", cfg.price_key);
    if (!o.keyspace && md_keytpl_init(&chan_tpl, cfg.key_prefix, cfg.price_channel))
        md_tool_die(2, "channel template '%s': needs {symbol} exactly once", cfg.price_channel);
    for (size_t i = 0; i < nsyms; i++) {
        sym *s = &syms[i];
        s->klen = md_keytpl_format(&key_tpl, s->name, s->len, s->key, sizeof s->key - 1);
        if (!s->klen) md_tool_die(2, "symbol '%s': key too long", s->name);
        s->key[s->klen] = 0;
        if (o.keyspace) {
            /* Keyspace channels name the database; a cluster has only db 0. */
            int n = snprintf(s->chan, sizeof s->chan, "__keyspace@%d__:%s", cfg.redis.db, s->key);
            if (n < 0 || (size_t)n >= sizeof s->chan) md_tool_die(2, "symbol '%s': key too long", s->name);
            s->clen = (size_t)n;
        } else {
            s->clen = md_keytpl_format(&chan_tpl, s->name, s->len, s->chan, sizeof s->chan - 1);
            if (!s->clen) md_tool_die(2, "symbol '%s': channel too long", s->name);
            s->chan[s->clen] = 0;
        }
        s->pttl = -2;
    }
}

/* ---- Redis I/O ---------------------------------------------------------- */

static void lost(const node *n, const md_bconn *c)
{
    /* A view that silently stopped updating would look like a quiet
     * market; saying so and exiting is the honest answer. */
    md_tool_die(1, "redis %s: %s", n->t.display, c->msg[0] ? c->msg : "connection lost");
}

static redisReply *reply(node *n, md_bconn *c)
{
    md_bconn_rc rc;
    md_bconn_deadline(c, o.timeout_s);
    redisReply *r = md_bconn_reply(c, &rc);
    if (!r) lost(n, c);
    return r;
}

static redisReply *command(node *n, md_bconn *c, int argc, const char **argv)
{
    md_bconn_deadline(c, o.timeout_s);
    if (md_bconn_command(c, argc, argv)) lost(n, c);
    return reply(n, c);
}

static void conn_open(node *n, md_bconn *c, bool select_db)
{
    memset(c, 0, sizeof *c);
    md_bconn_deadline(c, cfg.connect_timeout_s);
    md_bconn_rc rc = md_bconn_open(c, &n->t);
    if (rc != MD_BCONN_OK)
        md_tool_die(rc == MD_BCONN_REFUSED ? 2 : 1, "redis %s: %s", n->t.display, c->msg);
    md_bconn_deadline(c, o.timeout_s);
    if (md_bconn_auth(c, &cfg.redis)) {
        bool refused = strncmp(c->msg, "refused", 7) == 0;
        md_tool_die(refused ? 2 : 1, "redis %s: %s", n->t.display, c->msg);
    }
    if (select_db && cfg.redis.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", cfg.redis.db);
        const char *a[2] = {"SELECT", db};
        redisReply *r = command(n, c, 2, a);
        if (r->type == REDIS_REPLY_ERROR) md_tool_die(2, "redis %s: SELECT %s: %s", n->t.display, db, r->str);
        freeReplyObject(r);
    }
}

static md_bconn *data_conn(node *n)
{
    if (!n->data_open) {
        /* A cluster has only database 0, and SELECT is refused there. */
        conn_open(n, &n->data, !is_cluster);
        n->data_open = true;
    }
    return &n->data;
}

/* Keyspace mode needs K (keyspace channel) and $ (string commands) or A
 * (every class): mdcache's own watcher only adds E and x, so a server set
 * up for it alone sends nothing here. Without --enable-notifications the
 * server's configuration is left alone: it is shared, and other clients
 * pay for every notification class turned on. */
static void check_notifications(node *n)
{
    md_bconn *c = data_conn(n);
    const char *get[3] = {"CONFIG", "GET", "notify-keyspace-events"};
    redisReply *r = command(n, c, 3, get);
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr,
                PROG ": redis %s: cannot read notify-keyspace-events (%s); updates arrive only "
                "if it contains K and $ (or A)\n",
                n->t.display, r->str);
        freeReplyObject(r);
        return;
    }
    char cur[64] = "";
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(cur, sizeof cur, "%s", r->element[1]->str);
    freeReplyObject(r);
    bool k = strchr(cur, 'K'), str = strchr(cur, '$') || strchr(cur, 'A');
    if (k && str) return;
    if (!o.enable_notifications)
        md_tool_die(2,
            "redis %s: notify-keyspace-events is '%s', keyspace mode needs K and $ (or A): "
            "run with --enable-notifications, or CONFIG SET notify-keyspace-events %s%s%s, "
            "or set price_channel in mdcache's config",
            n->t.display, cur, cur, k ? "" : "K", str ? "" : "$");
    char want[72];
    snprintf(want, sizeof want, "%s%s%s", cur, k ? "" : "K", str ? "" : "$");
    const char *set[4] = {"CONFIG", "SET", "notify-keyspace-events", want};
    r = command(n, c, 4, set);
    if (r->type == REDIS_REPLY_ERROR)
        md_tool_die(2, "redis %s: CONFIG SET notify-keyspace-events %s refused: %s", n->t.display, want,
            r->str);
    freeReplyObject(r);
    fprintf(stderr, PROG ": redis %s: notify-keyspace-events '%s' -> '%s'\n", n->t.display, cur,
            want);
}

static void subscribe_all(void)
{
    for (size_t i = 0; i < nnodes; i++) {
        node *n = &nodes[i];
        size_t k = 0;
        const char **argv = calloc(n->nsubs + 1, sizeof *argv);
        if (!argv) md_tool_die(1, "out of memory");
        argv[k++] = "SUBSCRIBE";
        for (size_t j = 0; j < nsyms; j++)
            if (syms[j].sub_node == i) argv[k++] = syms[j].chan;
        if (k == 1) {
            free(argv);
            continue;
        }
        conn_open(n, &n->sub, false);
        n->sub_open = true;
        md_bconn_deadline(&n->sub, o.timeout_s);
        if (md_bconn_command(&n->sub, (int)k, argv)) lost(n, &n->sub);
        /* One confirmation per channel; only then is nothing missed, so
         * the initial GETs come after. */
        for (size_t j = 1; j < k; j++) {
            redisReply *r = reply(n, &n->sub);
            if (r->type == REDIS_REPLY_ERROR) md_tool_die(2, "redis %s: SUBSCRIBE: %s", n->t.display, r->str);
            freeReplyObject(r);
        }
        free(argv);
    }
}

/* ---- values and output -------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void set_value(sym *s, const char *v, size_t n)
{
    free(s->val);
    s->val = NULL;
    s->vlen = 0;
    if (!v) return;
    s->val = malloc(n + 1);
    if (!s->val) md_tool_die(1, "out of memory");
    memcpy(s->val, v, n);
    s->val[n] = 0;
    s->vlen = n;
}

/* A field of mdcache's price JSON as its text ("21000.25", "null"); the
 * field order and the absence of nesting are fixed by docs/keys.md, so a
 * search for the quoted name is exact. */
static void field(const sym *s, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "-");
    if (!s->val) return;
    char pat[32];
    int pl = snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = strstr(s->val, pat);
    if (!p) return;
    p += pl;
    size_t n = strcspn(p, ",}");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

static void fmt_age(char *b, size_t cap, const sym *s)
{
    char ts[32];
    field(s, "Timestamp", ts, sizeof ts);
    char *end;
    double v = strtod(ts, &end);
    if (end == ts || v <= 0) {
        snprintf(b, cap, "-");
        return;
    }
    double age = (double)(wall_ms() - (int64_t)v) / 1000.0;
    if (age < 0) age = 0; /* a feed clock ahead of ours */
    if (age < 60) snprintf(b, cap, "%.1fs", age);
    else if (age < 3600) snprintf(b, cap, "%.0fm", age / 60);
    else if (age < 86400) snprintf(b, cap, "%.1fh", age / 3600);
    else snprintf(b, cap, "%.0fd", age / 86400);
}

static void fmt_ttl(char *b, size_t cap, const sym *s)
{
    if (!s->val) snprintf(b, cap, "-");
    else if (s->pttl == -2) snprintf(b, cap, "gone");
    else if (s->pttl == -1) snprintf(b, cap, "none");
    else {
        /* Counted down from the last PTTL rather than asked again: the
         * view stays push-only. */
        int64_t left = s->pttl - (md_bconn_now_ms() - s->pttl_at);
        snprintf(b, cap, "%.1fs", left > 0 ? (double)left / 1000.0 : 0.0);
    }
}

static void read_key(sym *s, bool want_value);

static void draw_table(void)
{
    /* A countdown that ran out is checked once: mdcache's refreshes of an
     * unchanged key are not published, so on the channel only PTTL tells
     * a refreshed key from one that expired with its feed. */
    for (size_t i = 0; i < nsyms; i++) {
        sym *s = &syms[i];
        if (s->val && s->pttl >= 0 && s->pttl - (md_bconn_now_ms() - s->pttl_at) <= 0)
            read_key(s, false);
    }
    if (table_drawn) printf("\033[%zuA", nsyms + 1);
    printf("\r\033[2K%-14s %14s %14s %14s %12s %8s %7s %8s\n", "SYMBOL", "LAST", "BID", "ASK",
           "VOLUME", "AGE", "TTL", "UPDATES");
    for (size_t i = 0; i < nsyms; i++) {
        sym *s = &syms[i];
        char last[32], bid[32], ask[32], vol[32], age[16], ttl[16];
        field(s, "Last", last, sizeof last);
        field(s, "Bid", bid, sizeof bid);
        field(s, "Ask", ask, sizeof ask);
        field(s, "Volume", vol, sizeof vol);
        fmt_age(age, sizeof age, s);
        fmt_ttl(ttl, sizeof ttl, s);
        if (!s->val) snprintf(last, sizeof last, "(no key)");
        printf("\r\033[2K%-14.31s %14s %14s %14s %12s %8s %7s %8" PRIu64 "\n", s->name, last, bid,
               ask, vol, age, ttl, s->updates);
    }
    fflush(stdout);
    table_drawn = true;
}


static void print_line(const sym *s, bool initial)
{
    char t[40];
    md_tool_iso_time(t, sizeof t);
    if (o.out == OUT_PLAIN) {
        printf("%s %s %s\n", t, s->name, s->val ? s->val : "null");
    } else {
        printf("{\"time\":\"%s\",\"symbol\":", t);
        md_tool_json_str(s->name, s->len);
        printf(",\"key\":");
        md_tool_json_str(s->key, s->klen);
        /* The value is mdcache's own JSON and goes in as is; anything else
         * under the key (another writer) is quoted, so the line stays JSON. */
        printf(",\"value\":");
        if (!s->val) fputs("null", stdout);
        else if (s->val[0] == '{') fputs(s->val, stdout);
        else md_tool_json_str(s->val, s->vlen);
        printf("%s}\n", initial ? ",\"initial\":true" : "");
    }
    if (fflush(stdout) == EOF) exit(0); /* the reader went away (| head) */
}

/* GET (and, for the table, PTTL) of one key in one round trip. */
static void read_key(sym *s, bool want_value)
{
    node *n = &nodes[s->data_node];
    md_bconn *c = data_conn(n);
    char buf[700];
    size_t len = 0;
    const char *g[2] = {"GET", s->key}, *p[2] = {"PTTL", s->key};
    size_t gl[2] = {3, s->klen}, pl[2] = {4, s->klen};
    if (want_value) len += md_resp_cmd(buf + len, sizeof buf - len, 2, g, gl);
    if (o.out == OUT_TTY) len += md_resp_cmd(buf + len, sizeof buf - len, 2, p, pl);
    if (!len) return;
    md_bconn_deadline(c, o.timeout_s);
    if (md_bconn_send(c, buf, len)) lost(n, c);
    if (want_value) {
        redisReply *r = reply(n, c);
        if (r->type == REDIS_REPLY_ERROR)
            md_tool_die(strncmp(r->str, "MOVED", 5) == 0 ? 1 : 2, "redis %s: GET %s: %s%s", n->t.display,
                s->key, r->str,
                strncmp(r->str, "MOVED", 5) == 0 ? " (the cluster was resharded: start again)" : "");
        if (r->type == REDIS_REPLY_STRING) set_value(s, r->str, r->len);
        else set_value(s, NULL, 0);
        freeReplyObject(r);
    }
    if (o.out == OUT_TTY) {
        redisReply *r = reply(n, c);
        s->pttl = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
        s->pttl_at = md_bconn_now_ms();
        freeReplyObject(r);
    }
}

static void updated(sym *s)
{
    s->updates++;
    printed++;
    if (o.out != OUT_TTY) print_line(s, false);
}

static sym *sym_of_channel(const char *ch, size_t n)
{
    for (size_t i = 0; i < nsyms; i++)
        if (syms[i].clen == n && memcmp(syms[i].chan, ch, n) == 0) return &syms[i];
    return NULL;
}

static bool same_value(const sym *s, const char *v, size_t n)
{
    return s->val && v && s->vlen == n && memcmp(s->val, v, n) == 0;
}

/* One pushed message. Returns true if it changed what is shown. */
static bool on_message(redisReply *r)
{
    /* RESP2 (no HELLO 3 is sent): pub/sub messages are plain arrays. */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
        return false;
    sym *s = sym_of_channel(r->element[1]->str, r->element[1]->len);
    if (!s) return false;
    const char *payload = r->element[2]->str;
    size_t plen = r->element[2]->len;
    if (!o.keyspace) {
        /* Equal to what is shown: published before the initial GET read
         * it, so already counted there. */
        if (same_value(s, payload, plen)) return false;
        set_value(s, payload, plen);
        if (o.out == OUT_TTY) read_key(s, false);
        updated(s);
        return true;
    }
    if (strcmp(payload, "set") == 0) {
        char *before = s->val ? strdup(s->val) : NULL;
        size_t blen = s->vlen;
        read_key(s, true);
        /* mdcache re-asserts an unchanged key every price_ttl ×
         * refresh_fraction, and a GET after a burst of SETs sees the last
         * one for each event: neither is news, as the channel would not
         * have published them either. */
        bool same = same_value(s, before, blen) || (before == NULL && s->val == NULL);
        free(before);
        if (!same) updated(s);
        return true;
    }
    if (strcmp(payload, "expired") == 0 || strcmp(payload, "del") == 0) {
        /* Only delivered when the server also sends x / g events: the key
         * going away is how readers learn a feed stopped. */
        if (!s->val) return false;
        set_value(s, NULL, 0);
        s->pttl = -2;
        updated(s);
        return true;
    }
    if (strcmp(payload, "expire") == 0 && o.out == OUT_TTY) {
        read_key(s, false);
        return true;
    }
    return false;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_sig = 1;
}

static bool done(void)
{
    return stop_sig || (o.count && printed >= o.count);
}

/* Every message already received, without waiting: a deadline of now
 * makes md_bconn_reply stop when the socket and the TLS buffer are empty.
 * Returns true if the view changed. */
static bool drain(node *n)
{
    bool changed = false;
    for (int guard = 0; guard < 100000 && !done(); guard++) {
        md_bconn_rc brc;
        md_bconn_deadline(&n->sub, 0);
        redisReply *r = md_bconn_reply(&n->sub, &brc);
        if (!r) {
            if (!n->sub.timed_out) lost(n, &n->sub);
            /* Under TLS the give-up path can still move decrypted bytes
             * into the reader (md_bconn_tls_alert); a whole reply there
             * would otherwise wait for the next packet. */
            void *rep = NULL;
            if (redisReaderGetReply(n->sub.rd, &rep) != REDIS_OK || !rep) break;
            r = rep;
        }
        changed |= on_message(r);
        freeReplyObject(r);
    }
    return changed;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    init_keys();
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    md_redis_target seed, answered;
    char err[1024];
    bool cluster = false;
    md_tool_find_server(&cfg, &seed, &answered, &cluster);
    is_cluster = cluster;

    if (!cluster) {
        nodes = calloc(1, sizeof *nodes);
        if (!nodes) md_tool_die(1, "out of memory");
        nnodes = 1;
        nodes[0].t = answered;
        for (size_t i = 0; i < nsyms; i++) nodes[0].nsubs++;
    } else {
        static md_topology topo;
        /* Index 0 is the node that answered: channel subscriptions go
         * there, since a PUBLISH on any node reaches every node. */
        node first = {.t = answered};
        conn_open(&first, &first.data, false);
        md_bconn_deadline(&first.data, o.timeout_s);
        if (md_topology_fetch(&topo, &first.data, cfg.redis.kind == MD_REDIS_TLS,
                              answered.host[0] ? answered.host : cfg.redis.host, err, sizeof err))
            md_tool_die(1, "redis %s: cannot read the cluster's slot map: %s", answered.display, err);
        md_bconn_close(&first.data);
        if (topo.nnodes == 0) md_tool_die(1, "redis %s: the cluster has no primary", answered.display);
        nodes = calloc(topo.nnodes + 1u, sizeof *nodes);
        if (!nodes) md_tool_die(1, "out of memory");
        nodes[0].t = answered;
        nnodes = 1 + topo.nnodes;
        for (size_t i = 0; i < topo.nnodes; i++)
            if (md_topo_node_target(&seed, &topo.nodes[i], &nodes[1 + i].t, err, sizeof err))
                md_tool_die(1, "cluster node %s:%u: %s", topo.nodes[i].host, topo.nodes[i].port, err);
        for (size_t i = 0; i < nsyms; i++) {
            sym *s = &syms[i];
            uint16_t owner = topo.owner[md_slot_of(s->key, s->klen)];
            if (owner == MD_SLOT_NONE)
                md_tool_die(1, "cluster: no primary owns the slot of %s (a failover under way?)", s->key);
            s->data_node = 1u + owner;
            s->sub_node = o.keyspace ? s->data_node : 0;
            nodes[s->sub_node].nsubs++;
        }
    }

    if (o.keyspace) {
        /* Static: check_notifications may end the tool, and nothing may be
         * left unreachable then (LeakSanitizer counts it). */
        static bool checked[MD_TOPO_MAX_NODES + 1];
        for (size_t i = 0; i < nsyms; i++)
            if (!checked[syms[i].data_node]) {
                checked[syms[i].data_node] = true;
                check_notifications(&nodes[syms[i].data_node]);
            }
    }
    subscribe_all();

    bool missing = false;
    for (size_t i = 0; i < nsyms; i++) {
        read_key(&syms[i], true);
        if (!syms[i].val) {
            missing = true;
            if (o.require_key)
                md_tool_die(2, "symbol %s: no key %s (unknown symbol, or its feed is quiet)", syms[i].name,
                    syms[i].key);
        }
    }
    if (missing && o.out != OUT_TTY) {
        for (size_t i = 0; i < nsyms; i++)
            if (!syms[i].val)
                fprintf(stderr, PROG ": %s: no key %s yet (unknown symbol, or its feed is quiet); "
                                "watching\n", syms[i].name, syms[i].key);
    }
    fprintf(stderr, PROG ": watching %zu symbol%s via %s%s%s\n", nsyms, nsyms == 1 ? "" : "s",
            o.keyspace ? "keyspace notifications" : "channel ", o.keyspace ? "" : cfg.price_channel,
            cluster ? " (cluster)" : "");
    if (o.out == OUT_TTY) draw_table();
    else if (o.initial)
        for (size_t i = 0; i < nsyms; i++) print_line(&syms[i], true);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: poll must return at once for the exit to be prompt. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct pollfd *pfd = calloc(nnodes, sizeof *pfd);
    if (!pfd) md_tool_die(1, "out of memory");
    int64_t start = md_bconn_now_ms(), last_draw = start;
    int64_t end = o.duration_s > 0 ? start + (int64_t)(o.duration_s * 1000) : INT64_MAX;
    bool dirty = false;
    while (!done()) {
        /* Every connection is drained, not only those poll named: replies
         * read along with an earlier one (the SUBSCRIBE confirmations, a
         * TLS record holding several messages) wait in our buffers, where
         * poll cannot see them. */
        for (size_t i = 0; i < nnodes && !done(); i++)
            if (nodes[i].sub_open) dirty |= drain(&nodes[i]);
        int64_t now = md_bconn_now_ms();
        if (o.out == OUT_TTY && (dirty || now - last_draw >= 1000)) {
            draw_table();
            last_draw = now;
            dirty = false;
        }
        if (done() || now >= end) break;
        /* The table's ages and TTLs count on their own, so it is redrawn
         * once a second even when nothing arrives. */
        int64_t wait = end - now;
        if (o.out == OUT_TTY && wait > 1000) wait = 1000 - (now - last_draw) % 1000;
        if (wait < 1) wait = 1;
        if (wait > 1000000) wait = 1000000;
        nfds_t np = 0;
        for (size_t i = 0; i < nnodes; i++)
            if (nodes[i].sub_open) {
                pfd[np].fd = nodes[i].sub.fd;
                pfd[np].events = POLLIN;
                pfd[np].revents = 0;
                np++;
            }
        if (poll(pfd, np, (int)wait) < 0 && errno != EINTR) md_tool_die(1, "poll: %s", strerror(errno));
    }
    if (o.out == OUT_TTY) draw_table();
    for (size_t i = 0; i < nnodes; i++) {
        if (nodes[i].sub_open) md_bconn_close(&nodes[i].sub);
        if (nodes[i].data_open) md_bconn_close(&nodes[i].data);
    }
    for (size_t i = 0; i < nsyms; i++) free(syms[i].val);
    free(pfd);
    free(nodes);
    md_tls_ctx_free(seed.tls);
    return 0;
}
