/* feedgen: see feedgen.h. */
#include "feedgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mdcache_bin1.h"

uint64_t fg_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t fg_rnd_below(uint64_t *s, uint64_t n) { return n ? fg_rnd(s) % n : 0; }
double fg_rnd_unit(uint64_t *s) { return (double)(fg_rnd(s) >> 11) / 9007199254740992.0; }

int64_t fg_now(clockid_t c)
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

static void fg_dec_add(fg_dec *acc, fg_dec x)
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

double fg_num_arg(const char *who, const char *name, const char *v, double lo, double hi)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || !(d >= lo && d <= hi)) {
        fprintf(stderr, "%s: bad value '%s' for --%s (%g..%g)\n", who, v, name, lo, hi);
        exit(2);
    }
    return d;
}

fg_dec fg_mk(int64_t mant, int exp)
{
    fg_dec d = {mant, exp, true};
    return d;
}

size_t fg_dec_print(fg_dec d, char *out)
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

int fg_model_init(fg_model *m, uint32_t nsym, const char *prefix, uint64_t *rng)
{
    m->nsym = nsym;
    if (prefix != m->prefix)
        snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
    m->syms = calloc(nsym, sizeof *m->syms);
    if (!m->syms)
        return -1;
    for (uint32_t i = 0; i < nsym; i++) {
        m->syms[i].base = 100000 + (int64_t)fg_rnd_below(rng, 4900000); /* 1000.00 .. 50000.00 */
        m->syms[i].price = m->syms[i].base;
    }
    return 0;
}

void fg_model_free(fg_model *m)
{
    free(m->syms);
    m->syms = NULL;
}

void fg_sym_name(const fg_model *m, uint32_t i, char out[32])
{
    snprintf(out, 32, "%s%05" PRIu32, m->prefix, i);
}

static fg_dec gen_size(const fg_model *m, uint64_t *rng)
{
    if (m->decimal_sizes && fg_rnd_below(rng, 4) == 0)
        return fg_mk(1 + (int64_t)fg_rnd_below(rng, 5000), FG_SIZE_EXP);
    return fg_mk(1 + (int64_t)fg_rnd_below(rng, 100), 0);
}

void fg_gen_tick(fg_model *m, uint64_t *rng, uint32_t si, uint64_t seq, int64_t ts_ns, fg_tick *t)
{
    fg_sym *s = &m->syms[si];
    int64_t step = (int64_t)fg_rnd_below(rng, 21) - 10;

    s->price += step;
    if (s->price < s->base / 2 || s->price > s->base * 2)
        s->price = s->base;
    t->sym = si;
    t->seq = seq;
    t->ts_ns = ts_ns;
    t->origin_ns = 0;
    memset(t->v, 0, sizeof t->v);
    if (fg_rnd_unit(rng) < m->trade_ratio) {
        t->type = 2;
        t->v[0] = fg_mk(s->price, FG_PRICE_EXP);
        t->v[1] = gen_size(m, rng);
    } else {
        int one_side = (int)fg_rnd_below(rng, 20); /* 1 in 20 quotes updates one side only */
        t->type = 1;
        t->v[0] = fg_mk(s->price - 1 - (int64_t)fg_rnd_below(rng, 5), FG_PRICE_EXP);
        t->v[1] = fg_mk(s->price + 1 + (int64_t)fg_rnd_below(rng, 5), FG_PRICE_EXP);
        if (one_side == 0)
            t->v[1].present = false;
        else if (one_side == 1)
            t->v[0].present = false;
        t->v[2] = gen_size(m, rng);
        t->v[3] = gen_size(m, rng);
    }
}

void fg_apply(fg_model *m, const fg_tick *t)
{
    fg_sym *s = &m->syms[t->sym];
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
        fg_dec_add(&s->vol, t->v[1]);
    }
    if (!s->has_ts || t->ts_ns > s->ts_ns) {
        s->ts_ns = t->ts_ns;
        s->has_ts = true;
    }
}

size_t fg_value(const fg_sym *s, char *out)
{
    size_t o = 0;
    const fg_dec *f[6] = {&s->last, &s->bid, &s->ask, &s->vol, &s->high, &s->low};
    static const char *const name[6] = {"Last", "Bid", "Ask", "Volume", "High", "Low"};

    out[o++] = '{';
    for (int i = 0; i < 6; i++) {
        o += (size_t)sprintf(out + o, "\"%s\":", name[i]);
        o += fg_dec_print(*f[i], out + o);
        out[o++] = ',';
    }
    if (s->has_ts)
        o += (size_t)sprintf(out + o, "\"Timestamp\":%" PRId64 "}", s->ts_ns / 1000000);
    else
        o += (size_t)sprintf(out + o, "\"Timestamp\":null}");
    return o;
}

int fg_write_expect(const fg_model *m, const char *path, const char *who)
{
    FILE *o = fopen(path, "w");
    char val[512], sym[32];

    if (!o) {
        fprintf(stderr, "%s: cannot write %s: %s\n", who, path, strerror(errno));
        return -1;
    }
    for (uint32_t i = 0; i < m->nsym; i++) {
        if (!m->syms[i].known)
            continue;
        fg_value(&m->syms[i], val);
        fg_sym_name(m, i, sym);
        fprintf(o, "{\"key\":\"price:%s:latest\",\"value\":\"", sym);
        for (const char *p = val; *p; p++) {
            if (*p == '"')
                fputc('\\', o);
            fputc(*p, o);
        }
        fputs("\"}\n", o);
    }
    if (fclose(o) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", who, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- encoding ---- */

static size_t json_num(bool string_numbers, fg_dec d, char *out)
{
    size_t o = 0;
    bool quote = string_numbers && (d.mant & 1);

    if (quote)
        out[o++] = '"';
    o += fg_dec_print(d, out + o);
    if (quote)
        out[o++] = '"';
    out[o] = '\0';
    return o;
}

static mdcache_bin1_dec to_bin(fg_dec d)
{
    return d.present ? mdcache_bin1_make(d.mant, (int8_t)d.exp) : mdcache_bin1_absent();
}

size_t fg_encode(const fg_model *m, int format, const fg_tick *t, const char *source,
                 bool string_numbers, unsigned char *out, size_t cap)
{
    char sym[32];

    fg_sym_name(m, t->sym, sym);
    if (format == FG_BIN1) {
        size_t n;
        if (t->type == 1)
            n = mdcache_bin1_put_quote(out, cap, sym, source, t->seq, 1, t->ts_ns, 1,
                                       to_bin(t->v[0]), to_bin(t->v[1]), to_bin(t->v[2]),
                                       to_bin(t->v[3]));
        else
            n = mdcache_bin1_put_trade(out, cap, sym, source, t->seq, 1, t->ts_ns, 1,
                                       to_bin(t->v[0]), to_bin(t->v[1]));
        if (n && t->origin_ns)
            n = mdcache_bin1_add_origin(out, n, cap, t->origin_ns);
        return n;
    }
    char line[512], num[4][40], origin[40] = "";
    int n;
    for (int i = 0; i < 4; i++)
        json_num(string_numbers, t->v[i], num[i]);
    if (t->origin_ns)
        snprintf(origin, sizeof origin, ",\"origin_ns\":%" PRId64, t->origin_ns);
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
                     "{\"type\":\"quote\",\"symbol\":\"%s\"%s,\"ts\":%" PRId64 ",\"seq\":%" PRIu64
                     ",\"source\":\"%s\"%s}\n",
                     sym, body, t->ts_ns, t->seq, source, origin);
    } else {
        n = snprintf(line, sizeof line,
                     "{\"type\":\"trade\",\"symbol\":\"%s\",\"price\":%s,\"size\":%s,\"ts\":%" PRId64
                     ",\"seq\":%" PRIu64 ",\"source\":\"%s\"%s}\n",
                     sym, num[0], num[1], t->ts_ns, t->seq, source, origin);
    }
    if (n <= 0 || (size_t)n > cap)
        return 0;
    memcpy(out, line, (size_t)n);
    return (size_t)n;
}

/* ---- targets ---- */

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

int fg_target_parse(const char *spec, fg_target *t, char *err, size_t errlen)
{
    const char *rest, *colon;

    memset(t, 0, sizeof *t);
    if (strncmp(spec, "unix://", 7) == 0 || strncmp(spec, "file://", 7) == 0) {
        t->transport = spec[0] == 'u' ? FG_UNIX : FG_FILE;
        if (strlen(spec + 7) == 0 || strlen(spec + 7) >= sizeof t->path) {
            snprintf(err, errlen, "bad unix target '%s'", spec);
            return -1;
        }
        strcpy(t->path, spec + 7);
        return 0;
    }
    if (strncmp(spec, "udp://", 6) == 0)
        t->transport = FG_UDP;
    else if (strncmp(spec, "tcp://", 6) == 0)
        t->transport = FG_TCP;
    else {
        snprintf(err, errlen, "bad target '%s' (want udp://H:P, tcp://H:P, unix:///path or file://path)", spec);
        return -1;
    }
    rest = spec + 6;
    if (rest[0] == '[') {
        colon = strstr(rest, "]:");
        if (!colon) {
            snprintf(err, errlen, "bad target '%s'", spec);
            return -1;
        }
        snprintf(t->host, sizeof t->host, "%.*s", (int)(colon - rest - 1), rest + 1);
        colon++;
    } else {
        colon = strrchr(rest, ':');
        if (!colon || colon == rest) {
            snprintf(err, errlen, "bad target '%s' (missing :port)", spec);
            return -1;
        }
        snprintf(t->host, sizeof t->host, "%.*s", (int)(colon - rest), rest);
    }
    t->port = atoi(colon + 1);
    if (t->port <= 0 || t->port > 65535) {
        snprintf(err, errlen, "bad port in target '%s'", spec);
        return -1;
    }
    if (!host_is_loopback(t->host)) {
        snprintf(err, errlen,
                 "refusing non-loopback target host '%s': only 127.0.0.0/8 or ::1", t->host);
        return -1;
    }
    return 0;
}

int fg_connect(const fg_target *t, char *err, size_t errlen)
{
    int fd;
    if (t->transport == FG_FILE) {
        fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            snprintf(err, errlen, "cannot create %s: %s", t->path, strerror(errno));
        return fd;
    }
    if (t->transport == FG_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, t->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            snprintf(err, errlen, "cannot connect to unix socket: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    struct addrinfo hints = {0}, *ai;
    char port[16];
    int one = 1;

    hints.ai_socktype = t->transport == FG_UDP ? SOCK_DGRAM : SOCK_STREAM;
    snprintf(port, sizeof port, "%d", t->port);
    if (getaddrinfo(t->host, port, &hints, &ai) != 0) {
        snprintf(err, errlen, "cannot resolve '%s'", t->host);
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        snprintf(err, errlen, "cannot connect: %s", strerror(errno));
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(ai);
    if (t->transport == FG_TCP)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (t->transport == FG_UDP) {
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    return fd;
}
