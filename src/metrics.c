/* md_metrics: see include/md_metrics.h and docs/metrics.md. */
#include "md_metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_expiry.h"
#include "md_log.h"
#include "md_worker.h"

/* The fuzz build compiles the library without the Makefile's version. */
#ifndef MD_VERSION
#define MD_VERSION "dev"
#endif

/* ---- histogram families ---- */

/* Latency bounds span a loopback round trip (tens of microseconds) to a
 * Redis that stalls for seconds; batch bounds span 1 to past max_batch's
 * range. */
static const uint64_t lat_bounds[] = {
    10000,    25000,     50000,     100000,    250000,     500000,     1000000,
    2500000,  5000000,   10000000,  25000000,  50000000,   100000000,  250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
static const uint64_t batch_bounds[] = {1,   2,    4,    8,    16,   32,    64,    128,   256,
                                        512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 100000};

#define NB(a) (sizeof a / sizeof a[0])
_Static_assert(NB(lat_bounds) <= MD_HIST_PUB_MAX, "too many latency bounds");
_Static_assert(NB(batch_bounds) <= MD_HIST_PUB_MAX, "too many batch bounds");

const md_metrics_hist_def md_metrics_hists[MD_MH_COUNT] = {
    [MD_MH_LATENCY] = {"mdcache_tick_to_ack_seconds",
                       "from a tick's origin (sender stamp, else receipt) to Redis acknowledging "
                       "the write carrying it, per tick",
                       lat_bounds, NB(lat_bounds), 1000000000},
    [MD_MH_RTT] = {"mdcache_redis_rtt_seconds", "from sending a batch to its last reply",
                   lat_bounds, NB(lat_bounds), 1000000000},
    [MD_MH_BATCH] = {"mdcache_batch_keys", "keys per acknowledged batch", batch_bounds,
                     NB(batch_bounds), 1},
};

/* ---- fields ---- */

enum {
#define F_ENUM(n, ...) F_##n,
    MD_STATS_FIELDS(F_ENUM)
#undef F_ENUM
    F_COUNT
};
enum kind { counter, gauge, watcher };

static const struct field {
    const char *name, *help;
    size_t off;
    enum kind kind;
} fields[F_COUNT] = {
#define F_DEF(n, k, h) [F_##n] = {#n, h, offsetof(md_stats, n), k},
    MD_STATS_FIELDS(F_DEF)
#undef F_DEF
};

static uint64_t field_value(const md_stats *s, int f)
{
    return *(const uint64_t *)((const char *)s + fields[f].off);
}

/* Fields that read better as one family with a label than as a family
 * each. Every member keeps its kind; a family with no label is a rename.
 * Sum fields whose parts are exported (decode_errors, redis_errors) are
 * left out: a query would count them twice. */
/* Members end at f == -1 (F_ticks_in is 0, so the end must be explicit). */
#define MAX_MEMBERS 11
static const struct group {
    const char *family; /* NULL: not exported */
    const char *help;
    const char *label;
    struct {
        int f;
        const char *value;
    } m[MAX_MEMBERS];
} groups[] = {
    {"mdcache_drops_total",
     "messages not applied, by reason: ring_full (the ring to the owning worker stayed full), "
     "kernel (datagrams the kernel dropped), truncated (datagram larger than a receive buffer), "
     "duplicate (older or repeated seq), refused (a max_* limit reached), overflow (an "
     "aggregate would overflow)",
     "reason",
     {{F_drops, "ring_full"},
      {F_kernel_drops, "kernel"},
      {F_truncated, "truncated"},
      {F_duplicates, "duplicate"},
      {F_refused, "refused"},
      {F_overflow, "overflow"},
      {-1, NULL}}},
    {"mdcache_keys_written_total",
     "keys written and acknowledged with OK, by class: price (latest price SET/SETEX), account "
     "(positions, order, order list, balances and accounts SETEX)",
     "class",
     {{F_keys_written, "price"}, {F_account_writes, "account"}, {-1, NULL}}},
    {"mdcache_redis_errors_total",
     "error replies from Redis, by type (AUTH is NOAUTH or WRONGPASS, CLUSTERDOWN includes "
     "TRYAGAIN)",
     "type",
     {{F_redis_oom, "OOM"},
      {F_redis_readonly, "READONLY"},
      {F_redis_loading, "LOADING"},
      {F_redis_busy, "BUSY"},
      {F_redis_auth, "AUTH"},
      {F_redis_noperm, "NOPERM"},
      {F_redis_other, "other"},
      {F_cluster_moved, "MOVED"},
      {F_cluster_ask, "ASK"},
      {F_cluster_down, "CLUSTERDOWN"},
      {-1, NULL}}},
    {"mdcache_expired_keys_total",
     "mdcache's keys Redis expired (seen by the expiry watcher), by class: price, fallback "
     "(last_good), positions, orders, balances, accounts",
     "class",
     {{F_expired_price, "price"},
      {F_expired_fallback, "fallback"},
      {F_expired_positions, "positions"},
      {F_expired_orders, "orders"},
      {F_expired_balances, "balances"},
      {F_expired_accounts, "accounts"},
      {-1, NULL}}},
    {"mdcache_redis_sent_bytes_total", "bytes written to Redis", NULL,
     {{F_bytes_out, NULL}, {-1, NULL}}},
    {NULL, NULL, NULL, {{F_decode_errors, NULL}, {F_redis_errors, NULL}, {-1, NULL}}},
};
#define NGROUPS (sizeof groups / sizeof groups[0])

static bool grouped(int f)
{
    for (size_t g = 0; g < NGROUPS; g++)
        for (int i = 0; i < MAX_MEMBERS && groups[g].m[i].f >= 0; i++)
            if (groups[g].m[i].f == f) return true;
    return false;
}

/* ---- text ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->oom) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

size_t md_metrics_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *s = in; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, '\0'};
        if (*s == '\\') rep = "\\\\";
        else if (*s == '"') rep = "\\\"";
        else if (*s == '\n') rep = "\\n";
        else rep = one;
        for (const char *r = rep; *r; r++, o++)
            if (o + 1 < cap) out[o] = *r;
    }
    if (cap) out[o < cap ? o : cap - 1] = '\0';
    return o;
}

static void family(sbuf *b, const char *name, const char *type, const char *help)
{
    /* HELP text escapes only \ and newline; ours have neither, but a
     * future field's comment might. */
    sb_printf(b, "# HELP %s ", name);
    for (const char *s = help; *s; s++) {
        if (*s == '\\') sb_printf(b, "\\\\");
        else if (*s == '\n') sb_printf(b, "\\n");
        else sb_printf(b, "%c", *s);
    }
    sb_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* v / unit as exact decimal text: "0.0025", "3", never an exponent. */
static void fixed(char *buf, size_t cap, uint64_t v, uint64_t unit)
{
    if (unit <= 1) {
        snprintf(buf, cap, "%llu", (unsigned long long)v);
        return;
    }
    int digits = 0;
    for (uint64_t u = unit; u > 1; u /= 10) digits++;
    int n = snprintf(buf, cap, "%llu.%0*llu", (unsigned long long)(v / unit), digits,
                     (unsigned long long)(v % unit));
    if (n <= 0 || (size_t)n >= cap) return;
    char *e = buf + n - 1;
    while (*e == '0') *e-- = '\0';
    if (*e == '.') *e = '\0';
}

static const md_stats zero_stats;

static void render_histograms(sbuf *b, const md_metrics_view *v)
{
    char le[48], sum[48];
    for (int k = 0; k < MD_MH_COUNT; k++) {
        const md_metrics_hist_def *d = &md_metrics_hists[k];
        family(b, d->name, "histogram", d->help);
        for (int w = 0; w < v->nworkers; w++) {
            const md_hist_snap *s = &v->hists[w][k];
            for (size_t j = 0; j < d->nbounds; j++) {
                fixed(le, sizeof le, d->bounds[j], d->unit);
                sb_printf(b, "%s_bucket{worker=\"%d\",le=\"%s\"} %llu\n", d->name, w, le,
                          (unsigned long long)s->le[j]);
            }
            sb_printf(b, "%s_bucket{worker=\"%d\",le=\"+Inf\"} %llu\n", d->name, w,
                      (unsigned long long)s->count);
            fixed(sum, sizeof sum, s->sum, d->unit);
            sb_printf(b, "%s_sum{worker=\"%d\"} %s\n", d->name, w, sum);
            sb_printf(b, "%s_count{worker=\"%d\"} %llu\n", d->name, w,
                      (unsigned long long)s->count);
        }
    }
}

int md_metrics_render(const md_metrics_view *v, char **out, size_t *len)
{
    sbuf b = {malloc(16384), 0, 16384, false};
    if (!b.p) return -1;
    b.p[0] = '\0';
    const md_stats *wst = v->watcher ? v->watcher : &zero_stats;
    char esc[1100];

    family(&b, "mdcache_build_info", "gauge", "always 1; the version is in the label");
    md_metrics_escape(v->version ? v->version : "", esc, sizeof esc);
    sb_printf(&b, "mdcache_build_info{version=\"%s\"} 1\n", esc);
    family(&b, "mdcache_workers", "gauge", "worker threads");
    sb_printf(&b, "mdcache_workers %d\n", v->nworkers);
    if (v->nfeeds > 0) {
        family(&b, "mdcache_feed_info", "gauge", "always 1 per configured feed (listen spec)");
        for (int i = 0; i < v->nfeeds; i++) {
            md_metrics_escape(v->feeds[i], esc, sizeof esc);
            sb_printf(&b, "mdcache_feed_info{listen=\"%s\"} 1\n", esc);
        }
    }

    /* One family per field not folded into a group. */
    for (int f = 0; f < F_COUNT; f++) {
        if (grouped(f)) continue;
        const struct field *fd = &fields[f];
        char name[96];
        snprintf(name, sizeof name, "mdcache_%s%s", fd->name, fd->kind == gauge ? "" : "_total");
        family(&b, name, fd->kind == gauge ? "gauge" : "counter", fd->help);
        if (fd->kind == watcher) {
            sb_printf(&b, "%s %llu\n", name, (unsigned long long)field_value(wst, f));
            continue;
        }
        for (int w = 0; w < v->nworkers; w++)
            sb_printf(&b, "%s{worker=\"%d\"} %llu\n", name, w,
                      (unsigned long long)field_value(&v->workers[w], f));
    }

    for (size_t g = 0; g < NGROUPS; g++) {
        const struct group *gr = &groups[g];
        if (!gr->family) continue;
        bool is_watcher = fields[gr->m[0].f].kind == watcher;
        family(&b, gr->family, fields[gr->m[0].f].kind == gauge ? "gauge" : "counter", gr->help);
        for (int w = 0; w < (is_watcher ? 1 : v->nworkers); w++) {
            const md_stats *s = is_watcher ? wst : &v->workers[w];
            for (int i = 0; i < MAX_MEMBERS && gr->m[i].f >= 0; i++) {
                if (!gr->label && is_watcher)
                    sb_printf(&b, "%s %llu\n", gr->family,
                              (unsigned long long)field_value(s, gr->m[i].f));
                else if (!gr->label)
                    sb_printf(&b, "%s{worker=\"%d\"} %llu\n", gr->family, w,
                              (unsigned long long)field_value(s, gr->m[i].f));
                else if (is_watcher)
                    sb_printf(&b, "%s{%s=\"%s\"} %llu\n", gr->family, gr->label, gr->m[i].value,
                              (unsigned long long)field_value(s, gr->m[i].f));
                else
                    sb_printf(&b, "%s{worker=\"%d\",%s=\"%s\"} %llu\n", gr->family, w, gr->label,
                              gr->m[i].value, (unsigned long long)field_value(s, gr->m[i].f));
            }
        }
    }

    family(&b, "mdcache_decode_errors_total", "counter",
           "lines or frames dropped by the decoders, by reason");
    for (int w = 0; w < v->nworkers; w++)
        for (int i = 0; i < MD_DERR_COUNT; i++)
            sb_printf(&b, "mdcache_decode_errors_total{worker=\"%d\",reason=\"%s\"} %llu\n", w,
                      md_decode_err_name[i], (unsigned long long)v->workers[w].err[i]);

    family(&b, "mdcache_writes_total", "counter",
           "writes Redis acknowledged, by class: price, price_fallback, price_push (PUBLISH), "
           "positions, order, order_delete (DEL of an ended order), order_list, balances, "
           "accounts");
    for (int w = 0; w < v->nworkers; w++)
        for (int i = 0; i < MD_W_COUNT; i++)
            sb_printf(&b, "mdcache_writes_total{worker=\"%d\",class=\"%s\"} %llu\n", w,
                      md_wclass_name[i], (unsigned long long)v->workers[w].written[i]);

    if (v->nfeeds > 0) {
        family(&b, "mdcache_ticks_received_total", "counter",
               "messages decoded, by feed (its listen spec) and type; ticks_in is their sum");
        for (int w = 0; w < v->nworkers; w++)
            for (int f = 0; f < v->nfeeds && f < MD_STATS_FEEDS; f++) {
                md_metrics_escape(v->feeds[f], esc, sizeof esc);
                for (int t = 1; t < MD_TICK_TYPE_COUNT; t++)
                    sb_printf(&b,
                              "mdcache_ticks_received_total{worker=\"%d\",feed=\"%s\","
                              "type=\"%s\"} %llu\n",
                              w, esc, md_tick_type_name[t],
                              (unsigned long long)v->workers[w].feed_in[f][t]);
            }
    }

    if (v->hists) render_histograms(&b, v);

    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ---- HTTP ---- */

/* A scrape request is a request line and a few headers; anything longer
 * is not a scraper. */
#define REQ_MAX 8192
/* One client at a time: a stalled one is dropped after this. */
#define CLIENT_DEADLINE_MS 2000
/* How often the thread looks at the stop flag while idle. */
#define POLL_MS 100

struct md_metrics {
    int fd;
    pthread_t thread;
    bool started;
    _Atomic int stop;
    md_runtime *rt;
    md_expiry *x;
    const md_config *cfg;
    md_stats *st;
    md_hist_snap (*hists)[MD_MH_COUNT];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for ev on fd until the deadline, waking every POLL_MS to honour
 * stop. 1 ready, 0 gave up. */
static int wait_fd(md_metrics *m, int fd, short ev, int64_t deadline)
{
    for (;;) {
        if (atomic_load_explicit(&m->stop, memory_order_relaxed)) return 0;
        int64_t left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)(left < POLL_MS ? left : POLL_MS));
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return 0;
    }
}

static void send_all(md_metrics *m, int fd, const char *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (!wait_fd(m, fd, POLLOUT, deadline)) return;
        } else {
            return;
        }
    }
}

static void respond(md_metrics *m, int fd, const char *status, const char *ctype, const char *body,
                    size_t blen, bool head, int64_t deadline)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, ctype, blen,
                     strncmp(status, "405", 3) == 0 ? "Allow: GET, HEAD\r\n" : "");
    send_all(m, fd, hdr, (size_t)n, deadline);
    if (!head) send_all(m, fd, body, blen, deadline);
}

static void scrape(md_metrics *m, char **out, size_t *len)
{
    md_runtime *rt = m->rt;
    md_stats ws;
    memset(&ws, 0, sizeof ws);
    for (int i = 0; i < rt->nworkers; i++) {
        memset(&m->st[i], 0, sizeof m->st[i]);
        md_stats_collect(&m->st[i], &rt->workers[i].pub);
        for (int k = 0; k < MD_MH_COUNT; k++)
            md_hist_pub_read(&rt->workers[i].hpub[k], &m->hists[i][k], md_metrics_hists[k].nbounds);
    }
    if (m->x) md_expiry_collect(m->x, &ws);
    const char *feeds[MD_MAX_LISTEN];
    for (int i = 0; i < m->cfg->nlisten; i++) feeds[i] = m->cfg->listen[i].spec;
    md_metrics_view v = {.nworkers = rt->nworkers,
                         .workers = m->st,
                         .watcher = &ws,
                         .hists = (const md_hist_snap(*)[MD_MH_COUNT])m->hists,
                         .version = MD_VERSION,
                         .nfeeds = m->cfg->nlisten,
                         .feeds = feeds};
    if (md_metrics_render(&v, out, len) < 0) *out = NULL;
}

static void serve(md_metrics *m, int fd)
{
    int64_t deadline = now_ms() + CLIENT_DEADLINE_MS;
    char req[REQ_MAX + 1];
    size_t got = 0;
    const char *end = NULL;
    while (!end) {
        if (got == REQ_MAX) {
            static const char msg[] = "request too large\n";
            respond(m, fd, "431 Request Header Fields Too Large", "text/plain", msg,
                    sizeof msg - 1, false, deadline);
            return;
        }
        ssize_t r = recv(fd, req + got, REQ_MAX - got, 0);
        if (r == 0) return; /* closed before a whole request: nobody to answer */
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return;
            if (!wait_fd(m, fd, POLLIN, deadline)) return;
            continue;
        }
        got += (size_t)r;
        req[got] = '\0';
        /* Headers end at a blank line; bare LF tolerated as RFC 9112 allows. */
        end = strstr(req, "\r\n\r\n");
        if (!end) end = strstr(req, "\n\n");
    }
    bool head = strncmp(req, "HEAD ", 5) == 0;
    const char *target;
    if (strncmp(req, "GET ", 4) == 0) target = req + 4;
    else if (head) target = req + 5;
    else {
        static const char msg[] = "only GET /metrics\n";
        respond(m, fd, "405 Method Not Allowed", "text/plain", msg, sizeof msg - 1, false,
                deadline);
        return;
    }
    size_t tlen = strcspn(target, " ?\r\n");
    if (tlen != 8 || memcmp(target, "/metrics", 8) != 0) {
        static const char msg[] = "not found: metrics are at /metrics\n";
        respond(m, fd, "404 Not Found", "text/plain", msg, sizeof msg - 1, head, deadline);
        return;
    }
    char *body = NULL;
    size_t blen = 0;
    scrape(m, &body, &blen);
    if (!body) {
        static const char msg[] = "out of memory\n";
        respond(m, fd, "500 Internal Server Error", "text/plain", msg, sizeof msg - 1, head,
                deadline);
        return;
    }
    respond(m, fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, blen, head,
            deadline);
    free(body);
}

static void *run(void *arg)
{
    md_metrics *m = arg;
    while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
        struct pollfd p = {m->fd, POLLIN, 0};
        if (poll(&p, 1, POLL_MS) <= 0) continue;
        int c = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) continue;
        serve(m, c);
        /* Our side closes first. Closing with unread request bytes (a
         * refused oversized request) would send a reset that can destroy
         * the response before the client reads it: half-close, then take
         * what the client still sends, briefly. */
        shutdown(c, SHUT_WR);
        char sink[4096];
        int64_t until = now_ms() + 200;
        for (size_t taken = 0; taken < 65536;) {
            ssize_t r = recv(c, sink, sizeof sink, 0);
            if (r > 0) taken += (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
            else if (!wait_fd(m, c, POLLIN, until)) break;
        }
        close(c);
    }
    return NULL;
}

md_metrics *md_metrics_open(const md_config *cfg, char *err, size_t errlen)
{
    char host[64], why[256];
    uint16_t port;
    if (md_addr_parse(cfg->metrics_addr, host, sizeof host, &port, why, sizeof why) < 0) {
        snprintf(err, errlen, "metrics %s: %s", cfg->metrics_addr, why);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    bool v6 = cfg->metrics_addr[0] == '[';
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, host, &a->sin6_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, host, &a->sin_addr);
        sl = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "metrics %s: socket: %s", cfg->metrics_addr, strerror(errno));
        return NULL;
    }
    int one = 1;
    /* A restart must not wait out the last run's TIME_WAIT connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "metrics %s: %s", cfg->metrics_addr, strerror(errno));
        close(fd);
        return NULL;
    }
    md_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "metrics: out of memory");
        close(fd);
        return NULL;
    }
    m->fd = fd;
    m->cfg = cfg;
    bool loopback = v6 ? strcmp(host, "::1") == 0 : strncmp(host, "127.", 4) == 0;
    if (!loopback)
        md_warn("metrics on %s, not a loopback address: anyone who can reach it reads the "
                "counters",
                cfg->metrics_addr);
    return m;
}

int md_metrics_start(md_metrics *m, md_runtime *rt, md_expiry *x)
{
    m->rt = rt;
    m->x = x;
    m->st = calloc((size_t)rt->nworkers, sizeof *m->st);
    m->hists = calloc((size_t)rt->nworkers, sizeof *m->hists);
    if (!m->st || !m->hists) return -1;
    if (pthread_create(&m->thread, NULL, run, m) != 0) return -1;
    m->started = true;
    return 0;
}

void md_metrics_close(md_metrics *m)
{
    if (!m) return;
    if (m->started) {
        atomic_store(&m->stop, 1);
        pthread_join(m->thread, NULL);
    }
    close(m->fd);
    free(m->st);
    free(m->hists);
    free(m);
}
