/*
 * mdfeed: deterministic tick generator for mdcache, and the oracle that says
 * what Redis must hold afterwards.
 *
 * It sends quotes and trades for N symbols (seeded PRNG, so a run can be
 * repeated exactly) over UDP, TCP or a Unix stream socket, in bin1 or jsonl,
 * optionally mixed with duplicates, garbage and heartbeats. While sending it
 * keeps its own model of every symbol's state -- deliberately independent of
 * the daemon's coalescer and formatter, so the two can check each other --
 * and with --expect writes the exact value every price key must end up with.
 *
 * Pacing is open-loop: tick i is due at start + i / rate, whatever happened
 * before, so a slow send does not silently lower the offered rate.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "mdcache_bin1.h"

#define FEED_UDP_MAX 8192   /* datagram payload cap (brief: <= 8 KiB) */
#define FEED_BUF_MAX 65536  /* stream write buffer */
#define FEED_HIST 4096      /* ticks remembered for --dup-ratio */
#define FEED_PRICE_EXP (-2)
#define FEED_SIZE_EXP (-3)

enum { T_UDP, T_TCP, T_UNIX };
enum { F_BIN1, F_JSONL };

/* A decimal as the generator sent it: exp 0 or negative, or absent. */
typedef struct fdec {
    int64_t mant;
    int exp;
    bool present;
} fdec;

/* The oracle's view of one symbol, kept with its own arithmetic. */
typedef struct fsym {
    int64_t base;     /* price mantissa, exp -2 */
    int64_t price;    /* current random-walk price mantissa */
    bool known;       /* at least one tick applied */
    fdec last, bid, ask, vol, high, low;
    int64_t ts_ns;
    bool has_ts;
} fsym;

/* One sent data tick, kept so it can be re-sent verbatim as a duplicate. */
typedef struct ftick {
    int type; /* 1 quote, 2 trade */
    uint32_t sym;
    uint64_t seq;
    int64_t ts_ns;
    fdec v[4];
} ftick;

typedef struct feed {
    /* options */
    int transport, format;
    char host[256];
    int port;
    char path[108];
    uint32_t nsym;
    char prefix[16];
    uint64_t nticks;
    double rate, duration;
    uint32_t per_packet;
    double trade_ratio, dup_ratio, garbage_ratio;
    char source[32];
    uint64_t hb_every;
    const char *expect_path;
    bool progress, decimal_sizes, string_numbers;
    uint64_t seed;
    /* state */
    uint64_t rng;
    int fd;
    fsym *syms;
    ftick hist[FEED_HIST];
    uint64_t nhist;
    uint64_t seq;
    int64_t last_ts;
    unsigned char buf[FEED_BUF_MAX];
    size_t blen;
    uint32_t in_packet;
    /* counters */
    uint64_t sent, dups, garbage, heartbeats, bytes, packets;
} feed;

static volatile sig_atomic_t feed_stop;

static void feed_on_signal(int sig)
{
    (void)sig;
    feed_stop = 1;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "mdfeed: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

/* splitmix64: tiny, seedable, good enough for test data. */
static uint64_t rnd(feed *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(feed *f, uint64_t n) { return n ? rnd(f) % n : 0; }
static double rnd_unit(feed *f) { return (double)(rnd(f) >> 11) / 9007199254740992.0; }

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- oracle arithmetic, independent of src/decimal.c ---- */

static int64_t pow10i(int n)
{
    int64_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static void fdec_add(fdec *acc, fdec x)
{
    if (!acc->present) {
        *acc = x;
        return;
    }
    if (x.exp < acc->exp) {
        acc->mant *= pow10i(acc->exp - x.exp);
        acc->exp = x.exp;
    }
    acc->mant += x.mant * pow10i(x.exp - acc->exp);
}

static size_t fdec_print(fdec d, char *out)
{
    char digits[32];
    uint64_t m;
    int n = 0, frac = -d.exp;
    size_t o = 0;

    if (!d.present)
        return (size_t)sprintf(out, "null");
    if (d.mant < 0)
        out[o++] = '-';
    m = d.mant < 0 ? (uint64_t)0 - (uint64_t)d.mant : (uint64_t)d.mant;
    do {
        digits[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    while (n <= frac)
        digits[n++] = '0';
    for (int i = n - 1; i >= 0; i--) {
        out[o++] = digits[i];
        if (i == frac && frac > 0)
            out[o++] = '.';
    }
    out[o] = '\0';
    return o;
}

static void oracle_apply(fsym *s, const ftick *t)
{
    s->known = true;
    if (t->type == 1) {
        if (t->v[0].present)
            s->bid = t->v[0];
        if (t->v[1].present)
            s->ask = t->v[1];
    } else {
        s->last = t->v[0];
        if (!s->high.present || t->v[0].mant > s->high.mant)
            s->high = t->v[0];
        if (!s->low.present || t->v[0].mant < s->low.mant)
            s->low = t->v[0];
        fdec_add(&s->vol, t->v[1]);
    }
    if (!s->has_ts || t->ts_ns > s->ts_ns) {
        s->ts_ns = t->ts_ns;
        s->has_ts = true;
    }
}

static size_t oracle_value(const fsym *s, char *out)
{
    size_t o = 0;
    const fdec *f[6] = {&s->last, &s->bid, &s->ask, &s->vol, &s->high, &s->low};
    static const char *const name[6] = {"Last", "Bid", "Ask", "Volume", "High", "Low"};

    out[o++] = '{';
    for (int i = 0; i < 6; i++) {
        o += (size_t)sprintf(out + o, "\"%s\":", name[i]);
        o += fdec_print(*f[i], out + o);
        out[o++] = ',';
    }
    if (s->has_ts)
        o += (size_t)sprintf(out + o, "\"Timestamp\":%" PRId64 "}", s->ts_ns / 1000000);
    else
        o += (size_t)sprintf(out + o, "\"Timestamp\":null}");
    return o;
}

/* ---- transport ---- */

static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static void parse_target(feed *f, const char *t)
{
    const char *rest, *colon;

    if (strncmp(t, "unix://", 7) == 0) {
        f->transport = T_UNIX;
        if (strlen(t + 7) == 0 || strlen(t + 7) >= sizeof f->path)
            die("bad unix target '%s'", t);
        strcpy(f->path, t + 7);
        return;
    }
    if (strncmp(t, "udp://", 6) == 0)
        f->transport = T_UDP;
    else if (strncmp(t, "tcp://", 6) == 0)
        f->transport = T_TCP;
    else
        die("bad --target '%s' (want udp://H:P, tcp://H:P or unix:///path)", t);
    rest = t + 6;
    if (rest[0] == '[') {
        colon = strstr(rest, "]:");
        if (!colon)
            die("bad --target '%s'", t);
        snprintf(f->host, sizeof f->host, "%.*s", (int)(colon - rest - 1), rest + 1);
        colon++;
    } else {
        colon = strrchr(rest, ':');
        if (!colon || colon == rest)
            die("bad --target '%s' (missing :port)", t);
        snprintf(f->host, sizeof f->host, "%.*s", (int)(colon - rest), rest);
    }
    f->port = atoi(colon + 1);
    if (f->port <= 0 || f->port > 65535)
        die("bad port in --target '%s'", t);
    if (!host_is_loopback(f->host))
        die("refusing non-loopback target host '%s': mdfeed only sends to 127.0.0.0/8 or ::1",
            f->host);
}

static void feed_connect(feed *f)
{
    if (f->transport == T_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, f->path);
        f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            die("cannot connect to unix socket: %s", strerror(errno));
        return;
    }
    struct addrinfo hints = {0}, *ai;
    char port[16];
    int one = 1;

    hints.ai_socktype = f->transport == T_UDP ? SOCK_DGRAM : SOCK_STREAM;
    snprintf(port, sizeof port, "%d", f->port);
    if (getaddrinfo(f->host, port, &hints, &ai) != 0)
        die("cannot resolve '%s'", f->host);
    f->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (f->fd < 0 || connect(f->fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("cannot connect: %s", strerror(errno));
    freeaddrinfo(ai);
    if (f->transport == T_TCP)
        setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (f->transport == T_UDP) {
        int sz = 4 << 20;
        setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
}

static void feed_flush(feed *f)
{
    size_t off = 0;

    if (f->blen == 0)
        return;
    if (f->transport == T_UDP) {
        for (;;) {
            ssize_t n = send(f->fd, f->buf, f->blen, 0);
            if (n >= 0)
                break;
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
                continue;
            }
            die("send failed: %s", strerror(errno));
        }
    } else {
        while (off < f->blen) {
            ssize_t n = write(f->fd, f->buf + off, f->blen - off);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("write failed: %s", strerror(errno));
            }
            off += (size_t)n;
        }
    }
    f->bytes += f->blen;
    f->packets++;
    f->blen = 0;
    f->in_packet = 0;
}

/* Room for a unit of `need` bytes: a datagram never exceeds FEED_UDP_MAX. */
static void feed_reserve(feed *f, size_t need)
{
    size_t cap = f->transport == T_UDP ? FEED_UDP_MAX : FEED_BUF_MAX;
    if (f->blen + need > cap)
        feed_flush(f);
}

static void feed_unit_done(feed *f)
{
    if (++f->in_packet >= f->per_packet)
        feed_flush(f);
}

/* ---- encoding ---- */

static void sym_name(const feed *f, uint32_t i, char *out)
{
    sprintf(out, "%s%05" PRIu32, f->prefix, i);
}

static size_t json_num(const feed *f, fdec d, char *out)
{
    size_t o = 0;
    bool quote = f->string_numbers && (d.mant & 1);

    if (quote)
        out[o++] = '"';
    o += fdec_print(d, out + o);
    if (quote)
        out[o++] = '"';
    out[o] = '\0';
    return o;
}

static mdcache_bin1_dec to_bin(fdec d)
{
    return d.present ? mdcache_bin1_make(d.mant, (int8_t)d.exp) : mdcache_bin1_absent();
}

static void emit_tick(feed *f, const ftick *t)
{
    char sym[32];

    sym_name(f, t->sym, sym);
    if (f->format == F_BIN1) {
        size_t n;
        feed_reserve(f, 128);
        if (t->type == 1)
            n = mdcache_bin1_put_quote(f->buf + f->blen, sizeof f->buf - f->blen, sym, f->source,
                                       t->seq, 1, t->ts_ns, 1, to_bin(t->v[0]), to_bin(t->v[1]),
                                       to_bin(t->v[2]), to_bin(t->v[3]));
        else
            n = mdcache_bin1_put_trade(f->buf + f->blen, sizeof f->buf - f->blen, sym, f->source,
                                       t->seq, 1, t->ts_ns, 1, to_bin(t->v[0]), to_bin(t->v[1]));
        if (n == 0)
            die("internal: bin1 encode failed for %s", sym);
        f->blen += n;
    } else {
        char line[512], num[4][40];
        int n;
        for (int i = 0; i < 4; i++)
            json_num(f, t->v[i], num[i]);
        if (t->type == 1) {
            char body[256];
            size_t b = 0;
            /* An absent side is left out of the line, as a feed would. */
            if (t->v[0].present)
                b += (size_t)sprintf(body + b, ",\"bid\":%s", num[0]);
            if (t->v[1].present)
                b += (size_t)sprintf(body + b, ",\"ask\":%s", num[1]);
            b += (size_t)sprintf(body + b, ",\"bid_size\":%s,\"ask_size\":%s", num[2], num[3]);
            n = snprintf(line, sizeof line,
                         "{\"type\":\"quote\",\"symbol\":\"%s\"%s,\"ts\":%" PRId64
                         ",\"seq\":%" PRIu64 ",\"source\":\"%s\"}\n",
                         sym, body, t->ts_ns, t->seq, f->source);
        } else {
            n = snprintf(line, sizeof line,
                         "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":%s,\"size\":%s,\"ts\":%" PRId64
                         ",\"seq\":%" PRIu64 ",\"source\":\"%s\"}\n",
                         sym, num[0], num[1], t->ts_ns, t->seq, f->source);
        }
        feed_reserve(f, (size_t)n);
        memcpy(f->buf + f->blen, line, (size_t)n);
        f->blen += (size_t)n;
    }
    feed_unit_done(f);
}

static void emit_heartbeat(feed *f, int64_t ts)
{
    if (f->format == F_BIN1) {
        feed_reserve(f, 64);
        f->blen += mdcache_bin1_put_heartbeat(f->buf + f->blen, sizeof f->buf - f->blen,
                                              f->source, ts);
    } else {
        char line[128];
        int n = snprintf(line, sizeof line,
                         "{\"type\":\"heartbeat\",\"source\":\"%s\",\"ts\":%" PRId64 "}\n",
                         f->source, ts);
        feed_reserve(f, (size_t)n);
        memcpy(f->buf + f->blen, line, (size_t)n);
        f->blen += (size_t)n;
    }
    f->heartbeats++;
    feed_unit_done(f);
}

static void put_raw(feed *f, const void *p, size_t n)
{
    feed_reserve(f, n);
    memcpy(f->buf + f->blen, p, n);
    f->blen += n;
}

/*
 * Garbage the daemon must drop without losing anything around it. In a
 * stream every piece must still be self-delimiting for a receiver that
 * follows the documented resync rules: jsonl junk ends with '\n', bin1 junk
 * never contains the magic byte, and bad bin1 frames carry a consistent len.
 * In a bin1 datagram a bad header drops the rest of the datagram, so garbage
 * always ends its datagram there.
 */
static void emit_garbage(feed *f, int64_t ts)
{
    int kind = (int)rnd_below(f, 6);
    char sym[32];

    sym_name(f, (uint32_t)rnd_below(f, f->nsym), sym);
    if (f->format == F_JSONL) {
        char line[5200];
        size_t n = 0;
        switch (kind) {
        case 0: /* binary junk */
            n = 1 + rnd_below(f, 60);
            for (size_t i = 0; i < n; i++) {
                char c = (char)rnd_below(f, 256);
                line[i] = c == '\n' ? 'x' : c;
            }
            line[0] = '\x01'; /* never a blank line, which a reader may skip silently */
            line[n++] = '\n';
            break;
        case 1:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":\"NaN\","
                                      "\"size\":1,\"ts\":%" PRId64 "}\n", sym, ts);
            break;
        case 2:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":100.00,"
                                      "\"size\":-3,\"ts\":%" PRId64 "}\n", sym, ts);
            break;
        case 3:
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s%s%s%s%s\","
                                      "\"price\":1.00,\"size\":1}\n", sym, sym, sym, sym, sym);
            break;
        case 4: /* oversized line */
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"pad\":\"", sym);
            memset(line + n, 'p', 4200);
            n += 4200;
            n += (size_t)sprintf(line + n, "\",\"price\":1.00,\"size\":1}\n");
            break;
        default: /* cut short */
            n = (size_t)sprintf(line, "{\"type\":\"trade\",\"symbol\":\"%s\",\"pri\n", sym);
            break;
        }
        put_raw(f, line, n);
    } else {
        unsigned char fr[1200];
        size_t n = 0;
        switch (kind) {
        case 0: /* binary junk without the magic byte */
            n = 1 + rnd_below(f, 60);
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)rnd_below(f, 256);
                fr[i] = c == MDCACHE_BIN1_MAGIC ? 0 : c;
            }
            break;
        case 1: /* exponent out of range: the binary NaN */
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, f->source, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            fr[n - 10] = (unsigned char)-40; /* price exponent below -18 */
            break;
        case 2:
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, f->source, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(-3));
            break;
        case 3: /* 40-byte symbol, len consistent */
            n = mdcache_bin1_put_trade(fr, sizeof fr, "X", NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            memmove(fr + 24 + 40, fr + 25, n - 25);
            memset(fr + 24, 'L', 40);
            n += 39;
            fr[2] = (unsigned char)(n & 0xff);
            fr[3] = (unsigned char)(n >> 8);
            fr[5] = 40;
            break;
        case 4: /* unknown type, len consistent */
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            fr[4] = 99;
            break;
        default:
            n = mdcache_bin1_put_trade(fr, sizeof fr, sym, NULL, 0, 0, 0, 0,
                                       mdcache_bin1_make(100, 0), mdcache_bin1_int(1));
            n -= 5;
            /* A datagram can really be cut (its end bounds the frame); in a
             * stream the header must agree, or the next frame would be eaten. */
            if (f->transport != T_UDP) {
                fr[2] = (unsigned char)(n & 0xff);
                fr[3] = (unsigned char)(n >> 8);
            }
            break;
        }
        put_raw(f, fr, n);
        if (f->transport == T_UDP)
            feed_flush(f);
    }
    f->garbage++;
    feed_unit_done(f);
}

/* ---- generation ---- */

static int64_t next_ts(feed *f)
{
    int64_t t = now_ns(CLOCK_REALTIME);
    if (t <= f->last_ts)
        t = f->last_ts + 1;
    f->last_ts = t;
    return t;
}

static fdec mk(int64_t mant, int exp)
{
    fdec d = {mant, exp, true};
    return d;
}

static fdec gen_size(feed *f)
{
    if (f->decimal_sizes && rnd_below(f, 4) == 0)
        return mk(1 + (int64_t)rnd_below(f, 5000), FEED_SIZE_EXP);
    return mk(1 + (int64_t)rnd_below(f, 100), 0);
}

static void gen_tick(feed *f, uint32_t si, ftick *t)
{
    fsym *s = &f->syms[si];
    int64_t step = (int64_t)rnd_below(f, 21) - 10;

    s->price += step;
    if (s->price < s->base / 2 || s->price > s->base * 2)
        s->price = s->base;
    t->sym = si;
    t->seq = ++f->seq;
    t->ts_ns = next_ts(f);
    memset(t->v, 0, sizeof t->v);
    if (rnd_unit(f) < f->trade_ratio) {
        t->type = 2;
        t->v[0] = mk(s->price, FEED_PRICE_EXP);
        t->v[1] = gen_size(f);
    } else {
        int one_side = (int)rnd_below(f, 20); /* 1 in 20 quotes updates one side only */
        t->type = 1;
        t->v[0] = mk(s->price - 1 - (int64_t)rnd_below(f, 5), FEED_PRICE_EXP);
        t->v[1] = mk(s->price + 1 + (int64_t)rnd_below(f, 5), FEED_PRICE_EXP);
        if (one_side == 0)
            t->v[1].present = false;
        else if (one_side == 1)
            t->v[0].present = false;
        t->v[2] = gen_size(f);
        t->v[3] = gen_size(f);
    }
}

static void show_progress(feed *f, int64_t start, bool final)
{
    double el = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
    fprintf(stderr, "\rmdfeed: sent %" PRIu64 "/%" PRIu64 "  %.0f ticks/s  %.1fs   %s", f->sent,
            f->nticks, el > 0 ? (double)f->sent / el : 0.0, el, final ? "\n" : "");
    fflush(stderr);
}

static int write_expect(feed *f)
{
    FILE *o = fopen(f->expect_path, "w");
    char val[512], sym[32];

    if (!o) {
        fprintf(stderr, "mdfeed: cannot write %s: %s\n", f->expect_path, strerror(errno));
        return -1;
    }
    for (uint32_t i = 0; i < f->nsym; i++) {
        if (!f->syms[i].known)
            continue;
        oracle_value(&f->syms[i], val);
        sym_name(f, i, sym);
        fprintf(o, "{\"key\":\"price:%s:latest\",\"value\":\"", sym);
        for (const char *p = val; *p; p++) {
            if (*p == '"')
                fputc('\\', o);
            fputc(*p, o);
        }
        fputs("\"}\n", o);
    }
    return fclose(o) == 0 ? 0 : -1;
}

static void usage(FILE *o)
{
    fputs("usage: mdfeed --target udp://H:P|tcp://H:P|unix:///path [options]\n"
          "  --format bin1|jsonl      wire format (bin1)\n"
          "  --symbols N              symbols (1000), named PREFIX00000..\n"
          "  --symbol-prefix P        symbol name prefix (SYM)\n"
          "  --ticks N                data ticks to send (100000)\n"
          "  --rate R                 ticks/s, 0 = flat out (0)\n"
          "  --duration S             hard time bound in seconds (60)\n"
          "  --per-packet K           ticks per datagram/write (20)\n"
          "  --trade-ratio F          share of trades (0.3)\n"
          "  --source NAME            source name (mdfeed)\n"
          "  --dup-ratio F            re-send old ticks with their seq (0)\n"
          "  --garbage-ratio F        mix in invalid lines/frames (0)\n"
          "  --heartbeat-every N      heartbeat after every N ticks (0 = none)\n"
          "  --decimal-sizes          some sizes with 3 decimals\n"
          "  --string-numbers         some jsonl numbers as strings\n"
          "  --expect FILE            write expected key values as JSON lines\n"
          "  --progress               live progress on stderr\n"
          "  --seed S                 PRNG seed (1)\n",
          o);
}

static double num_arg(const char *name, const char *v, double lo, double hi)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(d >= lo && d <= hi)) {
        fprintf(stderr, "mdfeed: bad value '%s' for --%s\n", v, name);
        exit(2);
    }
    return d;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},        {"format", 1, 0, 'f'},       {"symbols", 1, 0, 'n'},
        {"symbol-prefix", 1, 0, 'P'}, {"ticks", 1, 0, 'k'},        {"rate", 1, 0, 'r'},
        {"duration", 1, 0, 'd'},      {"per-packet", 1, 0, 'K'},   {"trade-ratio", 1, 0, 'T'},
        {"source", 1, 0, 's'},        {"dup-ratio", 1, 0, 'D'},    {"garbage-ratio", 1, 0, 'G'},
        {"heartbeat-every", 1, 0, 'H'}, {"expect", 1, 0, 'e'},     {"progress", 0, 0, 'p'},
        {"seed", 1, 0, 'S'},          {"decimal-sizes", 0, 0, 'z'}, {"string-numbers", 0, 0, 'Z'},
        {"help", 0, 0, 'h'},          {0, 0, 0, 0}};
    static feed F;
    feed *f = &F;
    const char *target = NULL;
    int c;

    f->format = F_BIN1;
    f->nsym = 1000;
    strcpy(f->prefix, "SYM");
    f->nticks = 100000;
    f->duration = 60;
    f->per_packet = 20;
    f->trade_ratio = 0.3;
    strcpy(f->source, "mdfeed");
    f->seed = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case 'f':
            if (strcmp(optarg, "bin1") == 0)
                f->format = F_BIN1;
            else if (strcmp(optarg, "jsonl") == 0)
                f->format = F_JSONL;
            else
                die("bad --format '%s' (bin1 or jsonl)", optarg);
            break;
        case 'n': f->nsym = (uint32_t)num_arg("symbols", optarg, 1, 99999); break;
        case 'P':
            if (strlen(optarg) > 10)
                die("--symbol-prefix '%s' too long (max 10)", optarg);
            strcpy(f->prefix, optarg);
            break;
        case 'k': f->nticks = (uint64_t)num_arg("ticks", optarg, 0, 1e12); break;
        case 'r': f->rate = num_arg("rate", optarg, 0, 1e9); break;
        case 'd': f->duration = num_arg("duration", optarg, 0.001, 1e6); break;
        case 'K': f->per_packet = (uint32_t)num_arg("per-packet", optarg, 1, 10000); break;
        case 'T': f->trade_ratio = num_arg("trade-ratio", optarg, 0, 1); break;
        case 's':
            if (strlen(optarg) == 0 || strlen(optarg) > 31)
                die("--source '%s' must be 1..31 bytes", optarg);
            strcpy(f->source, optarg);
            break;
        case 'D': f->dup_ratio = num_arg("dup-ratio", optarg, 0, 1); break;
        case 'G': f->garbage_ratio = num_arg("garbage-ratio", optarg, 0, 1); break;
        case 'H': f->hb_every = (uint64_t)num_arg("heartbeat-every", optarg, 0, 1e12); break;
        case 'e': f->expect_path = optarg; break;
        case 'p': f->progress = true; break;
        case 'S': f->seed = (uint64_t)num_arg("seed", optarg, 0, 1.8e19); break;
        case 'z': f->decimal_sizes = true; break;
        case 'Z': f->string_numbers = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'", argv[optind]);
    if (!target)
        die("%s", "--target is required (see --help)");
    parse_target(f, target);

    f->rng = f->seed;
    f->syms = calloc(f->nsym, sizeof *f->syms);
    if (!f->syms)
        die("%s", "out of memory");
    for (uint32_t i = 0; i < f->nsym; i++) {
        f->syms[i].base = 100000 + (int64_t)rnd_below(f, 4900000); /* 1000.00 .. 50000.00 */
        f->syms[i].price = f->syms[i].base;
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, feed_on_signal);
    signal(SIGTERM, feed_on_signal);
    feed_connect(f);

    int64_t start = now_ns(CLOCK_MONOTONIC), next_progress = start;
    int64_t deadline = start + (int64_t)(f->duration * 1e9);
    bool timed_out = false;

    while (f->sent < f->nticks && !feed_stop) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        if (f->rate > 0) {
            int64_t due = start + (int64_t)((double)f->sent * 1e9 / f->rate);
            if (due > deadline)
                due = deadline;
            if (due > now) {
                /* Idle: push out what is buffered so nothing waits behind the pause. */
                feed_flush(f);
                struct timespec ts = {due / 1000000000, due % 1000000000};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
        }
        if (f->progress && now >= next_progress) {
            show_progress(f, start, false);
            next_progress = now + 250000000;
        }

        ftick t;
        uint32_t si = f->sent < f->nsym ? (uint32_t)f->sent : (uint32_t)rnd_below(f, f->nsym);
        gen_tick(f, si, &t);
        emit_tick(f, &t);
        oracle_apply(&f->syms[si], &t);
        f->hist[f->nhist++ % FEED_HIST] = t;
        f->sent++;

        if (f->dup_ratio > 0 && rnd_unit(f) < f->dup_ratio) {
            uint64_t n = f->nhist < FEED_HIST ? f->nhist : FEED_HIST;
            ftick d = f->hist[rnd_below(f, n)];
            emit_tick(f, &d);
            f->dups++;
        }
        if (f->garbage_ratio > 0 && rnd_unit(f) < f->garbage_ratio)
            emit_garbage(f, next_ts(f));
        if (f->hb_every && f->sent % f->hb_every == 0)
            emit_heartbeat(f, next_ts(f));
    }
    feed_flush(f);
    if (f->transport != T_UDP)
        shutdown(f->fd, SHUT_WR);
    close(f->fd);

    double el = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
    if (f->progress)
        show_progress(f, start, true);
    if (timed_out)
        fprintf(stderr, "mdfeed: --duration %.3gs reached after %" PRIu64 " of %" PRIu64
                        " ticks, stopping\n", f->duration, f->sent, f->nticks);
    if (f->expect_path && write_expect(f) != 0)
        return 1;
    printf("mdfeed: sent=%" PRIu64 " valid=%" PRIu64 " dups=%" PRIu64 " heartbeats=%" PRIu64
           " garbage=%" PRIu64 " bytes=%" PRIu64 " %s=%" PRIu64 " elapsed=%.3f rate=%.0f\n",
           f->sent, f->sent + f->dups + f->heartbeats, f->dups, f->heartbeats, f->garbage,
           f->bytes, f->transport == T_UDP ? "datagrams" : "writes", f->packets, el,
           el > 0 ? (double)f->sent / el : 0.0);
    free(f->syms);
    return 0;
}
