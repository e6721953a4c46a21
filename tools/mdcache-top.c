/*
 * mdcache-top: rates per second per worker, read from mdcache's metrics
 * endpoint (--metrics HOST:PORT, docs/metrics.md).
 *
 * It scrapes GET /metrics over plain HTTP/1.0 and differences two scrapes,
 * so it sees exactly what Prometheus would, costs mdcache nothing beyond a
 * scrape (the endpoint never touches a worker), and needs no Redis access
 * or configuration file. Latency quantiles come from the histogram buckets
 * gained between the two scrapes: the latency of that interval, not since
 * start.
 *
 * Exit codes: 0 done (--once, --count, SIGINT/SIGTERM), 1 the endpoint is
 * unreachable at start or answers with something that is not mdcache's
 * Prometheus text, 2 bad options.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/md_tool.h"

#define PROG "mdcache-top"
#define MAX_WORKERS 256
#define MAX_BOUNDS 64
/* Far above a real exposition (a few hundred lines per worker); a bound
 * keeps a misdirected scrape from eating memory. */
#define MAX_BODY (16u << 20)

typedef enum out_mode { OUT_TTY, OUT_PLAIN, OUT_JSON } out_mode;

/* Counters shown as rates; labelled families are summed over the label
 * unless the label selects one of them (keys written by class). */
enum { C_TICKS, C_APPLIED, C_PRICE, C_ACCOUNT, C_BATCHES, C_BYTES, C_DROPS, C_DECERR, C_REDERR,
       C_RECONN, NC };
enum { G_KEYS, G_DIRTY, G_INFLIGHT, G_LIVE, G_ACCOUNTS, NG };

static const struct {
    const char *metric, *cls; /* cls: the class label it needs, or NULL */
    const char *json, *head;
} counters[NC] = {
    [C_TICKS] = {"mdcache_ticks_in_total", NULL, "ticks_in", "ticks/s"},
    [C_APPLIED] = {"mdcache_applied_total", NULL, "applied", "applied/s"},
    [C_PRICE] = {"mdcache_keys_written_total", "price", "keys_written_price", "price/s"},
    [C_ACCOUNT] = {"mdcache_keys_written_total", "account", "keys_written_account", "acct/s"},
    [C_BATCHES] = {"mdcache_batches_total", NULL, "batches", "batch/s"},
    [C_BYTES] = {"mdcache_redis_sent_bytes_total", NULL, "redis_sent_bytes", "sentB/s"},
    [C_DROPS] = {"mdcache_drops_total", NULL, "drops", "drops/s"},
    [C_DECERR] = {"mdcache_decode_errors_total", NULL, "decode_errors", "decerr/s"},
    [C_REDERR] = {"mdcache_redis_errors_total", NULL, "redis_errors", "rederr/s"},
    [C_RECONN] = {"mdcache_reconnects_total", NULL, "reconnects", "reconn/s"},
};

static const struct {
    const char *metric, *json, *head;
} gauges[NG] = {
    [G_KEYS] = {"mdcache_keys", "keys", "keys"},
    [G_DIRTY] = {"mdcache_dirty", "dirty", "dirty"},
    [G_INFLIGHT] = {"mdcache_inflight", "inflight", "infl"},
    [G_LIVE] = {"mdcache_live_sources", "live_sources", "live"},
    [G_ACCOUNTS] = {"mdcache_accounts", "accounts", "accts"},
};

#define HIST "mdcache_tick_to_ack_seconds_bucket"

typedef struct wstat {
    double c[NC], g[NG];
    double b[MAX_BOUNDS]; /* cumulative bucket counts, by index into snap.le */
    bool seen;
} wstat;

typedef struct snap {
    wstat w[MAX_WORKERS];
    int nworkers;
    double le[MAX_BOUNDS]; /* bucket bounds as first seen (ascending, +Inf last) */
    int nle;
    int64_t t_ns; /* monotonic, when the response was complete */
} snap;

static struct {
    out_mode out;
    bool once;
    uint64_t count; /* 0: until interrupted */
    double interval_s, timeout_s;
    char host[256], port[8];
    char url[300];
} o;

static volatile sig_atomic_t stop_sig;
static char err_msg[512];

static void on_signal(int sig)
{
    stop_sig = sig;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *f)
{
    fputs("usage: " PROG " [options]\n"
          "\n"
          "Rates per second per worker from mdcache's Prometheus endpoint (mdcache\n"
          "--metrics HOST:PORT): ticks received and applied, keys written (price,\n"
          "account), batches, bytes sent to Redis, drops, decode errors, Redis errors,\n"
          "reconnects; the gauges keys, dirty, in-flight, live sources, accounts; and\n"
          "tick-to-ack p50/p99 of each interval, from the histogram's new samples.\n"
          "\n"
          "      --metrics HOST:PORT  the endpoint, numeric host (default 127.0.0.1:9464;\n"
          "                        IPv6 as [::1]:9464)\n"
          "      --interval SECONDS  between scrapes (default 1)\n"
          "      --count N         exit 0 after N intervals\n"
          "      --once            print the current counters and gauges once, no rates\n"
          "      --plain           one block per interval (the default when stdout is not\n"
          "                        a terminal; on a terminal the table is redrawn in place)\n"
          "      --json            one JSON object per interval\n"
          "      --timeout SECONDS per scrape (default 2)\n"
          "  -h, --help\n"
          "\n"
          "Exit: 0 done or interrupted, 1 endpoint unreachable at start or not\n"
          "mdcache's Prometheus text, 2 bad options. Unreachable later: shown, retried.\n",
          f);
}

enum { O_METRICS = MD_TOOL_O_OWN, O_INTERVAL, O_COUNT, O_ONCE, O_PLAIN, O_JSON, O_TIMEOUT };

static const struct option long_opts[] = {
    {"metrics", required_argument, NULL, O_METRICS},
    {"interval", required_argument, NULL, O_INTERVAL},
    {"count", required_argument, NULL, O_COUNT},
    {"once", no_argument, NULL, O_ONCE},
    {"plain", no_argument, NULL, O_PLAIN},
    {"json", no_argument, NULL, O_JSON},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* HOST:PORT or [V6]:PORT, numeric as mdcache's own --metrics: a name
 * would put a resolver (and its timeouts) into every scrape. */
static void parse_addr(const char *s)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            md_tool_die(2, "--metrics: expected HOST:PORT or [V6]:PORT, got '%.64s'", s);
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            md_tool_die(2, "--metrics: expected HOST:PORT or [V6]:PORT, got '%.64s'", s);
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof o.host) md_tool_die(2, "--metrics: bad host in '%.64s'", s);
    memcpy(o.host, h, hl);
    o.host[hl] = 0;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        md_tool_die(2, "--metrics: bad port in '%.64s' (1..65535)", s);
    snprintf(o.port, sizeof o.port, "%ld", p);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    if (getaddrinfo(o.host, o.port, &hints, &ai))
        md_tool_die(2, "--metrics: '%s' is not a numeric address", o.host);
    freeaddrinfo(ai);
    snprintf(o.url, sizeof o.url, strchr(o.host, ':') ? "http://[%s]:%s/metrics" : "http://%s:%s/metrics",
             o.host, o.port);
}

static void parse_args(int argc, char **argv)
{
    int ch;
    bool out_set = false, count_set = false, interval_set = false;
    md_tool_prog = PROG;
    o.interval_s = 1;
    o.timeout_s = 2;
    o.out = isatty(STDOUT_FILENO) ? OUT_TTY : OUT_PLAIN;
    parse_addr("127.0.0.1:9464");
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            usage(stdout);
            exit(0);
        case O_METRICS: parse_addr(optarg); break;
        case O_INTERVAL:
            o.interval_s = md_tool_num("interval", optarg, 0.05, 86400, false);
            interval_set = true;
            break;
        case O_COUNT:
            o.count = (uint64_t)md_tool_num("count", optarg, 1, 1e12, true);
            count_set = true;
            break;
        case O_TIMEOUT: o.timeout_s = md_tool_num("timeout", optarg, 0.01, 3600, false); break;
        case O_ONCE: o.once = true; break;
        case O_PLAIN:
        case O_JSON:
            if (out_set && o.out != (ch == O_PLAIN ? OUT_PLAIN : OUT_JSON))
                md_tool_die(2, "--plain and --json exclude each other");
            o.out = ch == O_PLAIN ? OUT_PLAIN : OUT_JSON;
            out_set = true;
            break;
        case ':': md_tool_die(2, "option %s needs an argument (see --help)", argv[optind - 1]);
        default: md_tool_die(2, "unknown option '%.64s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) md_tool_die(2, "unexpected argument '%.64s' (see --help)", argv[optind]);
    if (o.once && (count_set || interval_set))
        md_tool_die(2, "--once takes one scrape: no --count or --interval");
    /* A drawn-in-place table makes no sense for a single scrape. */
    if (o.once && o.out == OUT_TTY) o.out = OUT_PLAIN;
}

/* ---- HTTP --------------------------------------------------------------- */

static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = (deadline - now_ns()) / 1000000;
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return -1;
        if (stop_sig) return -1;
    }
}

/* The response to GET /metrics in *out (NUL-terminated), its length in
 * *len; -1 with err_msg set when the endpoint cannot be reached or read in
 * time (the caller decides whether that ends the tool). */
static int fetch(char **out, size_t *len)
{
    int64_t deadline = now_ns() + (int64_t)(o.timeout_s * 1e9);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    int gai = getaddrinfo(o.host, o.port, &hints, &ai);
    if (gai) {
        snprintf(err_msg, sizeof err_msg, "%s: %s", o.url, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err_msg, sizeof err_msg, "%s: socket: %s", o.url, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    const char *stage = "connect";
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (rc < 0 && errno != EINPROGRESS) goto fail;
    if (rc < 0) {
        if (wait_fd(fd, POLLOUT, deadline)) {
            errno = stop_sig ? EINTR : ETIMEDOUT;
            goto fail;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    stage = "send";
    char req[400];
    int rl = snprintf(req, sizeof req,
                      "GET /metrics HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: " PROG
                      "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
                      strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "", o.port);
    for (int off = 0; off < rl;) {
        ssize_t w = send(fd, req + off, (size_t)(rl - off), MSG_NOSIGNAL);
        if (w > 0) {
            off += (int)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) goto fail;
        if (wait_fd(fd, POLLOUT, deadline)) {
            errno = stop_sig ? EINTR : ETIMEDOUT;
            goto fail;
        }
    }
    stage = "read";
    /* HTTP/1.0 with Connection: close: the response ends at EOF. */
    for (;;) {
        if (cap - n < 65536) {
            if (cap >= MAX_BODY) {
                errno = EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) md_tool_die(1, "out of memory");
            buf = nb;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0) break;
        if (errno != EAGAIN && errno != EINTR) goto fail;
        if (wait_fd(fd, POLLIN, deadline)) {
            errno = stop_sig ? EINTR : ETIMEDOUT;
            goto fail;
        }
    }
    close(fd);
    if (!buf) {
        snprintf(err_msg, sizeof err_msg, "%s: connection closed without a response", o.url);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
fail:
    snprintf(err_msg, sizeof err_msg, "%s: %s: %s", o.url, stage, strerror(errno));
    close(fd);
    free(buf);
    return -1;
}

/* ---- Prometheus text ---------------------------------------------------- */

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

typedef struct labels {
    char worker[16], le[32], cls[32];
    bool has_worker, has_le, has_cls;
} labels;

/* One label value after its opening quote, unescaped into dst (cut at
 * cap, which only matters for labels we do not read); p is left after the
 * closing quote. False on a bad escape or a missing quote. */
static bool label_value(const char **pp, const char *end, char *dst, size_t cap)
{
    const char *p = *pp;
    size_t k = 0;
    while (p < end && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            if (p >= end) return false;
            c = *p++;
            if (c == 'n') c = '\n';
            else if (c != '\\' && c != '"') return false;
        }
        if (dst && k + 1 < cap) dst[k++] = c;
    }
    if (p >= end) return false;
    if (dst) dst[k] = 0;
    *pp = p + 1;
    return true;
}

static bool parse_labels(const char **pp, const char *end, labels *lb)
{
    const char *p = *pp; /* after '{' */
    for (;;) {
        if (p < end && *p == '}') break;
        const char *nm = p;
        if (p >= end || !name_start(*p) || *p == ':') return false;
        while (p < end && name_char(*p)) p++;
        size_t nl = (size_t)(p - nm);
        if (p + 1 >= end || p[0] != '=' || p[1] != '"') return false;
        p += 2;
        char *dst = NULL;
        size_t cap = 0;
        if (nl == 6 && !memcmp(nm, "worker", 6)) dst = lb->worker, cap = sizeof lb->worker, lb->has_worker = true;
        else if (nl == 2 && !memcmp(nm, "le", 2)) dst = lb->le, cap = sizeof lb->le, lb->has_le = true;
        else if (nl == 5 && !memcmp(nm, "class", 5)) dst = lb->cls, cap = sizeof lb->cls, lb->has_cls = true;
        if (!label_value(&p, end, dst, cap)) return false;
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != '}') return false;
    }
    *pp = p + 1;
    return true;
}

static bool parse_double(const char *s, double *v)
{
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    return e != s && !*e && errno != ERANGE;
}

static int le_index(snap *s, double le)
{
    for (int i = 0; i < s->nle; i++)
        if (s->le[i] == le) return i;
    if (s->nle == MAX_BOUNDS) return -1;
    s->le[s->nle] = le;
    return s->nle++;
}

static void add_sample(snap *s, const char *name, size_t nl, const labels *lb, double v)
{
    if (nl == strlen("mdcache_workers") && !memcmp(name, "mdcache_workers", nl)) {
        if (v > s->nworkers && v <= MAX_WORKERS) s->nworkers = (int)v;
        return;
    }
    if (!lb->has_worker) return;
    char *e;
    long w = strtol(lb->worker, &e, 10);
    if (e == lb->worker || *e || w < 0 || w >= MAX_WORKERS) return;
    wstat *ws = &s->w[w];
    if (w >= s->nworkers) s->nworkers = (int)w + 1;
    ws->seen = true;
    if (nl == strlen(HIST) && !memcmp(name, HIST, nl)) {
        double le;
        if (!lb->has_le) return;
        if (!parse_double(lb->le, &le)) return;
        int i = le_index(s, le);
        if (i >= 0) ws->b[i] = v;
        return;
    }
    for (int i = 0; i < NC; i++)
        if (strlen(counters[i].metric) == nl && !memcmp(counters[i].metric, name, nl) &&
            (!counters[i].cls || (lb->has_cls && !strcmp(lb->cls, counters[i].cls))))
            ws->c[i] += v;
    for (int i = 0; i < NG; i++)
        if (strlen(gauges[i].metric) == nl && !memcmp(gauges[i].metric, name, nl)) ws->g[i] += v;
}

/* The response parsed into s. 0, or -1 with err_msg saying why it is not
 * mdcache's Prometheus text (the tool then ends: polling something else
 * again would not help). */
static int parse_response(char *resp, size_t len, snap *s)
{
    memset(s, 0, sizeof *s);
    char *hend = strstr(resp, "\r\n\r\n");
    int status = 0;
    if (len < 12 || strncmp(resp, "HTTP/1.", 7) || sscanf(resp + 8, " %3d", &status) != 1 || !hend) {
        snprintf(err_msg, sizeof err_msg, "%s: not an HTTP response (is this mdcache's metrics port?)",
                 o.url);
        return -1;
    }
    if (status != 200) {
        char *eol = strstr(resp, "\r\n");
        snprintf(err_msg, sizeof err_msg, "%s: %.*s", o.url, (int)(eol - resp), resp);
        return -1;
    }
    char *p = hend + 4, *end = resp + len;
    int lineno = 0;
    bool mdcache = false;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        lineno++;
        char *q = p, *le = eol;
        if (le > q && le[-1] == '\r') le--;
        p = eol + 1;
        if (q == le || *q == '#') continue;
        const char *name = q;
        if (!name_start(*q)) goto bad;
        while (q < le && name_char(*q)) q++;
        size_t nl = (size_t)(q - name);
        labels lb = {0};
        if (q < le && *q == '{') {
            const char *c = q + 1;
            if (!parse_labels(&c, le, &lb)) goto bad;
            q = (char *)c;
        }
        if (q >= le || (*q != ' ' && *q != '\t')) goto bad;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        char num[64];
        size_t k = 0;
        while (q < le && *q != ' ' && *q != '\t' && k + 1 < sizeof num) num[k++] = *q++;
        num[k] = 0;
        double v;
        if (!parse_double(num, &v)) goto bad;
        while (q < le && (*q == ' ' || *q == '\t')) q++;
        if (q < le) { /* an optional timestamp: an integer */
            if (*q == '-') q++;
            const char *d = q;
            while (q < le && *q >= '0' && *q <= '9') q++;
            if (q == d || q != le) goto bad;
        }
        if (nl > 8 && !memcmp(name, "mdcache_", 8)) mdcache = true;
        add_sample(s, name, nl, &lb, v);
        continue;
    bad:
        snprintf(err_msg, sizeof err_msg, "%s: line %d is not Prometheus text: '%.60s'", o.url, lineno,
                 name);
        for (char *c = err_msg; *c; c++)
            if ((unsigned char)*c < ' ') *c = '?';
        return -1;
    }
    if (!mdcache) {
        snprintf(err_msg, sizeof err_msg, "%s: no mdcache_ metrics in the response", o.url);
        return -1;
    }
    s->t_ns = now_ns();
    return 0;
}

/* ---- figures ------------------------------------------------------------ */

/* A counter's growth; a counter that went back means mdcache restarted,
 * and (as Prometheus' rate()) all of its new value is growth. */
static double grew(double cur, double prev)
{
    return cur >= prev ? cur - prev : cur;
}

/* The q-quantile of the tick-to-ack samples added between prev and cur
 * (prev NULL: all samples), summed over worker w or all (w < 0): linear
 * within the bucket that holds it, as histogram_quantile(). NAN if none. */
static double quantile(const snap *cur, const snap *prev, int w, double q)
{
    double cum[MAX_BOUNDS] = {0};
    int nle = cur->nle;
    for (int i = 0; i < nle; i++) {
        int pi = -1;
        if (prev)
            for (int j = 0; j < prev->nle; j++)
                if (prev->le[j] == cur->le[i]) pi = j;
        for (int k = 0; k < cur->nworkers; k++) {
            if (w >= 0 && k != w) continue;
            double pv = prev && pi >= 0 && prev->w[k].seen ? prev->w[k].b[pi] : 0;
            cum[i] += grew(cur->w[k].b[i], pv);
        }
    }
    /* Bounds in ascending order, in case the exposition was not. */
    if (nle == 0) return NAN;
    int idx[MAX_BOUNDS] = {0};
    for (int i = 0; i < nle; i++) idx[i] = i;
    for (int i = 1; i < nle; i++)
        for (int j = i; j > 0 && cur->le[idx[j]] < cur->le[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    double total = cum[idx[nle - 1]];
    if (!(total > 0)) return NAN;
    double rank = q * total, below = 0, lo = 0;
    for (int i = 0; i < nle; i++) {
        double c = cum[idx[i]], hi = cur->le[idx[i]];
        if (c >= rank && c > below) {
            if (isinf(hi)) return lo; /* beyond the last finite bound: say that bound */
            return lo + (hi - lo) * (rank - below) / (c - below);
        }
        if (c > below) below = c;
        lo = hi;
    }
    return lo;
}

static void fmt_latency(char *b, size_t cap, double s)
{
    if (isnan(s)) snprintf(b, cap, "n/a");
    else if (s < 1e-3) snprintf(b, cap, "%.0fus", s * 1e6);
    else if (s < 1) snprintf(b, cap, "%.2fms", s * 1e3);
    else snprintf(b, cap, "%.2fs", s);
}

/* Per worker w, or the total (w < 0). */
static void figures(const snap *cur, const snap *prev, int w, double *c, double *g)
{
    double dt = prev ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
    for (int i = 0; i < NC; i++) c[i] = 0;
    for (int i = 0; i < NG; i++) g[i] = 0;
    for (int k = 0; k < cur->nworkers; k++) {
        if (w >= 0 && k != w) continue;
        for (int i = 0; i < NC; i++) {
            double v = cur->w[k].c[i];
            if (prev) v = dt > 0 ? grew(v, prev->w[k].seen ? prev->w[k].c[i] : 0) / dt : 0;
            c[i] += v;
        }
        for (int i = 0; i < NG; i++) g[i] += cur->w[k].g[i];
    }
}


/* ---- output ------------------------------------------------------------- */

static bool drawn;

/* On a terminal every line ends by clearing the rest of it, so a redraw
 * over a longer previous one leaves nothing behind. */
static void eol(void)
{
    fputs(o.out == OUT_TTY ? "\033[K\n" : "\n", stdout);
}

static void begin_block(const char *status, double dt)
{
    char t[40];
    md_tool_iso_time(t, sizeof t);
    if (o.out == OUT_TTY) fputs("\033[H", stdout);
    printf(PROG " %s  %s  %s", o.url, t, status);
    if (dt > 0) printf("  interval %.2fs", dt);
    eol();
}

static void end_block(void)
{
    if (o.out == OUT_TTY) fputs("\033[J", stdout);
    else if (o.out == OUT_PLAIN) putchar('\n');
    fflush(stdout);
    drawn = true;
}

static void table(const snap *cur, const snap *prev)
{
    printf("%-7s", "worker");
    for (int i = 0; i < NC; i++) {
        /* Since start (--once) the same columns are totals: no "/s". */
        const char *h = counters[i].head;
        int hl = prev ? (int)strlen(h) : (int)strlen(h) - 2;
        printf(" %*.*s", i == C_BYTES ? 11 : 9, hl, h);
    }
    for (int i = 0; i < NG; i++) printf(" %7s", gauges[i].head);
    printf(" %9s %9s", "ack p50", "ack p99");
    eol();
    for (int w = -1; w < cur->nworkers; w++) {
        /* The total goes last: read it where the eye ends. */
        int row = w + 1 < cur->nworkers ? w + 1 : -1;
        if (row >= 0 && !cur->w[row].seen) continue;
        double c[NC], g[NG];
        figures(cur, prev, row, c, g);
        if (row < 0) printf("%-7s", "total");
        else printf("%-7d", row);
        for (int i = 0; i < NC; i++) printf(prev ? " %*.1f" : " %*.0f", i == C_BYTES ? 11 : 9, c[i]);
        for (int i = 0; i < NG; i++) printf(" %7.0f", g[i]);
        char p50[16], p99[16];
        fmt_latency(p50, sizeof p50, quantile(cur, prev, row, 0.50));
        fmt_latency(p99, sizeof p99, quantile(cur, prev, row, 0.99));
        printf(" %9s %9s", p50, p99);
        eol();
    }
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.15g", v);
    else fputs("null", stdout);
}

static void json_row(const snap *cur, const snap *prev, int w)
{
    double c[NC], g[NG];
    figures(cur, prev, w, c, g);
    if (w >= 0) printf("{\"worker\":%d,", w);
    else putchar('{');
    printf(prev ? "\"rates\":{" : "\"counters\":{");
    for (int i = 0; i < NC; i++) {
        printf("%s\"%s\":", i ? "," : "", counters[i].json);
        json_num(c[i]);
    }
    printf("},\"gauges\":{");
    for (int i = 0; i < NG; i++) {
        printf("%s\"%s\":", i ? "," : "", gauges[i].json);
        json_num(g[i]);
    }
    printf("},\"tick_to_ack_p50_s\":");
    json_num(quantile(cur, prev, w, 0.50));
    printf(",\"tick_to_ack_p99_s\":");
    json_num(quantile(cur, prev, w, 0.99));
    putchar('}');
}


/* prev NULL: counters since mdcache started (--once). */
static void show(const snap *cur, const snap *prev)
{
    double dt = prev ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 0;
    if (o.out == OUT_JSON) {
        char t[40];
        md_tool_iso_time(t, sizeof t);
        printf("{\"time\":\"%s\",\"url\":", t);
        md_tool_json_str(o.url, strlen(o.url));
        printf(",\"status\":\"ok\"");
        if (prev) printf(",\"interval_s\":%.6f", dt);
        printf(",\"workers\":[");
        bool first = true;
        for (int w = 0; w < cur->nworkers; w++) {
            if (!cur->w[w].seen) continue;
            if (!first) putchar(',');
            first = false;
            json_row(cur, prev, w);
        }
        printf("],\"total\":");
        json_row(cur, prev, -1);
        printf("}\n");
        fflush(stdout);
        return;
    }
    begin_block(prev ? "ok" : "since start", dt);
    table(cur, prev);
    end_block();
}

static void show_unreachable(void)
{
    if (o.out == OUT_JSON) {
        char t[40];
        md_tool_iso_time(t, sizeof t);
        printf("{\"time\":\"%s\",\"url\":", t);
        md_tool_json_str(o.url, strlen(o.url));
        printf(",\"status\":\"unreachable\",\"error\":");
        md_tool_json_str(err_msg, strlen(err_msg));
        printf("}\n");
        fflush(stdout);
        return;
    }
    begin_block("unreachable", 0);
    printf("%s", err_msg);
    eol();
    end_block();
}

/* ---- main --------------------------------------------------------------- */

/* 0, 1 endpoint not reachable (err_msg set); exits 1 if it answered with
 * something else than mdcache's metrics. */
static int scrape(snap *s)
{
    char *resp;
    size_t len;
    if (fetch(&resp, &len)) return 1;
    int rc = parse_response(resp, len, s);
    free(resp);
    if (rc) md_tool_die(1, "%s", err_msg);
    return 0;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a sleep or a scrape in progress must end at once. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Two snapshots of a few hundred KiB each: on the heap, swapped. */
    snap *prev = malloc(sizeof *prev), *cur = malloc(sizeof *cur);
    if (!prev || !cur) md_tool_die(1, "out of memory");
    if (scrape(prev)) md_tool_die(1, "%s", stop_sig ? "interrupted" : err_msg);
    if (o.once) {
        show(prev, NULL);
        free(prev);
        free(cur);
        return 0;
    }
    if (o.out == OUT_TTY) {
        fputs("\033[H\033[2J", stdout);
        begin_block("first scrape taken; rates after the next", 0);
        end_block();
    }
    int64_t period = (int64_t)(o.interval_s * 1e9), next = now_ns();
    uint64_t shown = 0;
    while (!stop_sig && (!o.count || shown < o.count)) {
        /* Scrapes on a fixed schedule, so a slow one does not shift the
         * rest; one that overran its slot is not made up for. */
        next += period;
        int64_t t = now_ns();
        if (next < t) next = t;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000), .tv_nsec = (long)(next % 1000000000)};
        while (!stop_sig && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        if (stop_sig) break;
        if (scrape(cur)) {
            if (stop_sig) break;
            show_unreachable();
        } else {
            show(cur, prev);
            snap *x = prev;
            prev = cur;
            cur = x;
        }
        shown++;
    }
    if (o.out == OUT_TTY && drawn) fflush(stdout);
    free(prev);
    free(cur);
    return 0;
}
