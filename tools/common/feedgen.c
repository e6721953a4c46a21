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

/* ---- account messages: generator ---- */

int fg_accts_init(fg_accts *a, uint32_t n, const char *source, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    snprintf(a->source, sizeof a->source, "%s", source);
    /* A PRNG stream of its own: the price ticks draw exactly what they drew
     * without accounts, so their values do not depend on --accounts. */
    a->rng = seed ^ 0x6163636f756e7473ULL;
    (void)fg_rnd(&a->rng);
    a->a = calloc(n ? n : 1, sizeof *a->a);
    if (!a->a)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        a->a[i].ofirst = a->a[i].olast = UINT32_MAX;
    return 0;
}

void fg_accts_free(fg_accts *a)
{
    free(a->a);
    free(a->ord);
    memset(a, 0, sizeof *a);
}

void fg_acct_name(uint32_t i, char out[32])
{
    snprintf(out, 32, "ACC%04" PRIu32, i);
}

/* The k-th instrument account acct trades: a few per account, as real
 * accounts hold a handful of contracts, not the whole universe. */
static int32_t acct_sym(const fg_model *m, uint32_t acct, uint64_t k)
{
    uint32_t per = m->nsym < FG_ACCT_SYMS ? m->nsym : FG_ACCT_SYMS;
    return (int32_t)(((uint64_t)acct * per + k % per) % m->nsym);
}

/* An amount of money, cents in [lo, lo + span), printed with two decimals
 * or one, as different back offices do: both must come out as sent. */
static fg_dec gen_money(uint64_t *rng, int64_t lo, uint64_t span)
{
    int64_t cents = lo + (int64_t)fg_rnd_below(rng, span);
    if (fg_rnd_below(rng, 3) == 0)
        return fg_mk(cents / 10, -1);
    return fg_mk(cents, -2);
}

static int gen_order(fg_accts *a, const fg_model *m, uint32_t ai, fg_amsg *out)
{
    uint64_t *r = &a->rng;
    fg_acct *ac = &a->a[ai];
    fg_order *o;
    uint32_t oi;

    out->type = FG_ORDER;
    out->status = FG_ST_WORKING;
    if (ac->nwork && (ac->nwork == FG_ACCT_WORKING || fg_rnd_below(r, 100) < 55)) {
        uint32_t j = (uint32_t)fg_rnd_below(r, ac->nwork);
        uint64_t what = fg_rnd_below(r, 100);

        oi = ac->work[j];
        o = &a->ord[oi];
        out->order = oi;
        memcpy(out->ref, o->id, sizeof out->ref);
        if (what < 40) {
            /* A modify as venues report it: the new price and nothing else,
             * so the rest of the order must survive from earlier messages. */
            int64_t step = 1 + (int64_t)fg_rnd_below(r, 10);
            if (fg_rnd_below(r, 2))
                step = -step;
            o->gprice = o->gprice + step > 0 ? o->gprice + step : o->gprice - step;
            out->v[1] = fg_mk(o->gprice, FG_PRICE_EXP);
            return 0;
        }
        out->status = what < 70 ? FG_ST_FILLED : what < 90 ? FG_ST_CANCELLED : FG_ST_REJECTED;
        out->us_spelling = out->status == FG_ST_CANCELLED && fg_rnd_below(r, 2) == 0;
        if (out->status == FG_ST_FILLED) {
            /* A fill report names the instrument and the fill price;
             * cancels and rejects name the order only. */
            out->sym = (int32_t)o->gsym;
            out->v[1] = fg_mk(o->gprice, FG_PRICE_EXP);
        }
        o->open = false;
        ac->work[j] = ac->work[--ac->nwork];
        return 0;
    }

    if (a->nord == a->ord_cap) {
        uint32_t cap = a->ord_cap ? 2 * a->ord_cap : 256;
        fg_order *p = realloc(a->ord, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        a->ord = p;
        a->ord_cap = cap;
    }
    oi = a->nord++;
    o = &a->ord[oi];
    memset(o, 0, sizeof *o);
    o->acct = ai;
    snprintf(o->id, sizeof o->id, "%s-%" PRIu32, a->source, oi + 1);
    o->gsym = (uint32_t)acct_sym(m, ai, fg_rnd_below(r, FG_ACCT_SYMS));
    o->gprice = m->syms[o->gsym].price + (int64_t)fg_rnd_below(r, 41) - 20;
    if (o->gprice <= 0)
        o->gprice = 1;
    out->order = oi;
    memcpy(out->ref, o->id, sizeof out->ref);
    out->sym = (int32_t)o->gsym;
    out->side = fg_rnd_below(r, 2) ? FG_SIDE_SELL : FG_SIDE_BUY;
    out->v[0] = fg_rnd_below(r, 5) == 0 ? fg_mk(1 + (int64_t)fg_rnd_below(r, 5000), FG_SIZE_EXP)
                                        : fg_mk(1 + (int64_t)fg_rnd_below(r, 10), 0);
    out->v[1] = fg_mk(o->gprice, FG_PRICE_EXP);
    /* Now and then a venue refuses a new order outright: its key must
     * never be left behind, though it was never working. */
    if (fg_rnd_below(r, 20) == 0) {
        out->status = FG_ST_REJECTED;
    } else {
        o->open = true;
        ac->work[ac->nwork++] = oi;
    }
    return 0;
}

int fg_acct_gen(fg_accts *a, const fg_model *m, uint64_t seq, int64_t ts_ns, fg_amsg *out)
{
    uint64_t *r = &a->rng;
    uint32_t ai = (uint32_t)fg_rnd_below(r, a->n);
    fg_acct *ac = &a->a[ai];
    uint64_t kind = fg_rnd_below(r, 100);

    memset(out, 0, sizeof *out);
    out->acct = ai;
    out->seq = seq;
    out->ts_ns = ts_ns;
    out->sym = -1;
    if (kind < 30) {
        int32_t si = acct_sym(m, ai, fg_rnd_below(r, FG_ACCT_SYMS));
        int64_t net = (int64_t)fg_rnd_below(r, 11) - 5;
        out->type = FG_POSITION;
        out->sym = si;
        out->v[0] = fg_mk(net, 0);
        /* A flat position has no average; the feed leaves it out. */
        if (net != 0) {
            int64_t px = m->syms[si].price;
            /* An average over several fills has more decimals than a price. */
            if (fg_rnd_below(r, 3) == 0)
                out->v[1] = fg_mk(px * 100 + (int64_t)fg_rnd_below(r, 100), FG_PRICE_EXP - 2);
            else
                out->v[1] = fg_mk(px, FG_PRICE_EXP);
        }
    } else if (kind < 70) {
        if (gen_order(a, m, ai, out))
            return -1;
    } else if (kind < 85) {
        /* The first balance is whole; later ones carry what changed. */
        unsigned mask = ac->sent_balance ? 1u + (unsigned)fg_rnd_below(r, 7) : 7u;
        out->type = FG_BALANCE;
        ac->sent_balance = true;
        if (mask & 1)
            out->v[0] = gen_money(r, 2500000, 10000000);
        if (mask & 2)
            out->v[1] = gen_money(r, -500000, 1000001);
        if (mask & 4)
            out->v[2] = gen_money(r, -100000, 200001);
    } else {
        /* 1: active only, 2: id only, 3: both; the first message has both. */
        unsigned what = ac->sent_info ? 1u + (unsigned)fg_rnd_below(r, 3) : 3u;
        out->type = FG_ACCOUNT;
        ac->sent_info = true;
        if (what & 2)
            snprintf(out->ref, sizeof out->ref, "D%08" PRIu64, fg_rnd_below(r, 100000000));
        if (what & 1)
            out->active = fg_rnd_below(r, 5) ? FG_ACTIVE_YES : FG_ACTIVE_NO;
    }
    a->msgs[out->type]++;
    return 0;
}

/* ---- account messages: oracle (docs/keys.md, "Account values") ---- */

void fg_acct_apply(fg_accts *a, const fg_amsg *msg)
{
    fg_acct *ac = &a->a[msg->acct];
    int cls;

    switch (msg->type) {
    case FG_POSITION: {
        uint32_t i = 0;
        cls = FG_AC_POSITIONS;
        while (i < ac->npos && ac->pos[i].sym != (uint32_t)msg->sym)
            i++;
        if (msg->v[0].mant == 0) {
            /* Flat: no longer an open position. */
            if (i < ac->npos) {
                memmove(&ac->pos[i], &ac->pos[i + 1], (ac->npos - i - 1) * sizeof ac->pos[0]);
                ac->npos--;
            }
            break;
        }
        if (i == ac->npos) {
            if (ac->npos == FG_ACCT_SYMS)
                abort(); /* the generator gives an account FG_ACCT_SYMS instruments */
            ac->npos++;
        }
        /* The message is the whole position: nothing of the old entry stays. */
        ac->pos[i].sym = (uint32_t)msg->sym;
        ac->pos[i].net = msg->v[0];
        ac->pos[i].avg = msg->v[1];
        ac->pos[i].ts_ns = msg->ts_ns;
        break;
    }
    case FG_ORDER: {
        fg_order *o = &a->ord[msg->order];
        cls = FG_AC_ORDERS;
        if (!o->seen) {
            o->seen = true;
            o->sym = -1;
            o->side = FG_SIDE_NONE;
            o->qty = o->price = (fg_dec){0, 0, false};
            o->next = UINT32_MAX;
            if (ac->olast == UINT32_MAX)
                ac->ofirst = msg->order;
            else
                a->ord[ac->olast].next = msg->order;
            ac->olast = msg->order;
        }
        /* Fields merge: what the message carries replaces, the rest stays. */
        if (msg->sym >= 0)
            o->sym = msg->sym;
        if (msg->side != FG_SIDE_NONE)
            o->side = msg->side;
        if (msg->v[0].present)
            o->qty = msg->v[0];
        if (msg->v[1].present)
            o->price = msg->v[1];
        o->status = msg->status;
        o->live = msg->status == FG_ST_WORKING;
        o->ts_ns = msg->ts_ns;
        break;
    }
    case FG_BALANCE:
        cls = FG_AC_BALANCE;
        if (msg->v[0].present)
            ac->cash = msg->v[0];
        if (msg->v[1].present)
            ac->realized = msg->v[1];
        if (msg->v[2].present)
            ac->unrealized = msg->v[2];
        break;
    default:
        cls = FG_AC_INFO;
        if (msg->ref[0])
            memcpy(ac->id, msg->ref, sizeof ac->id);
        if (msg->active != FG_ACTIVE_UNKNOWN)
            ac->active = msg->active;
        break;
    }
    ac->known[cls] = true;
    if (msg->ts_ns > ac->ts_ns[cls])
        ac->ts_ns[cls] = msg->ts_ns;
}

/* ---- account messages: expected values ---- */

/* A JSON string: names may hold '"' and '\' (a source name can). */
static void put_jstr(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

static void put_dec(FILE *o, fg_dec d)
{
    char b[48];
    fg_dec_print(d, b);
    fputs(b, o);
}

static void put_ms(FILE *o, int64_t ns)
{
    fprintf(o, "%" PRId64, ns / 1000000);
}

static void put_order(FILE *o, const fg_model *m, const char *acct, const fg_order *x)
{
    static const char *const side[] = {"null", "\"buy\"", "\"sell\""};
    static const char *const status[] = {"null", "\"working\"", "\"filled\"", "\"cancelled\"",
                                         "\"rejected\""};
    char sym[32];

    fputs("{\"account\":", o);
    put_jstr(o, acct);
    fputs(",\"order_id\":", o);
    put_jstr(o, x->id);
    fputs(",\"symbol\":", o);
    if (x->sym >= 0) {
        fg_sym_name(m, (uint32_t)x->sym, sym);
        put_jstr(o, sym);
    } else {
        fputs("null", o);
    }
    fprintf(o, ",\"side\":%s,\"qty\":", side[x->side]);
    put_dec(o, x->qty);
    fputs(",\"price\":", o);
    put_dec(o, x->price);
    fprintf(o, ",\"status\":%s,\"timestamp\":", status[x->status]);
    put_ms(o, x->ts_ns);
    fputc('}', o);
}

/* One {"key":K,"value":V} line; V is the JSON text of the value as a JSON
 * string, or null for a key that must not exist. */
static void put_expect(FILE *out, const char *key, const char *val)
{
    fputs("{\"key\":", out);
    put_jstr(out, key);
    fputs(",\"value\":", out);
    if (val)
        put_jstr(out, val);
    else
        fputs("null", out);
    fputs("}\n", out);
}

/* Builds a value with stdio into a growing buffer; ends it into *val. */
static FILE *val_open(char **val, size_t *len)
{
    FILE *o = open_memstream(val, len);
    if (!o) {
        perror("open_memstream");
        exit(1);
    }
    return o;
}

static void val_emit(FILE *out, FILE *v, char **val, const char *key)
{
    if (fclose(v) != 0) {
        perror("open_memstream");
        exit(1);
    }
    put_expect(out, key, *val);
    free(*val);
    *val = NULL;
}

static void write_acct(FILE *out, const fg_accts *a, const fg_model *m, uint32_t i)
{
    static const char *const active[] = {"null", "false", "true"};
    const fg_acct *ac = &a->a[i];
    char name[32], key[160], sym[32], *val = NULL;
    size_t len;
    FILE *v;

    fg_acct_name(i, name);
    if (ac->known[FG_AC_POSITIONS]) {
        v = val_open(&val, &len);
        fputs("{\"account\":", v);
        put_jstr(v, name);
        fputs(",\"positions\":[", v);
        for (uint32_t k = 0; k < ac->npos; k++) {
            const fg_pos *p = &ac->pos[k];
            fg_sym_name(m, p->sym, sym);
            fputs(k ? ",{\"symbol\":" : "{\"symbol\":", v);
            put_jstr(v, sym);
            fputs(",\"net_pos\":", v);
            put_dec(v, p->net);
            fputs(",\"avg_price\":", v);
            put_dec(v, p->avg);
            fputs(",\"timestamp\":", v);
            put_ms(v, p->ts_ns);
            fputc('}', v);
        }
        fprintf(v, "],\"count\":%" PRIu32 ",\"timestamp\":", ac->npos);
        put_ms(v, ac->ts_ns[FG_AC_POSITIONS]);
        fputc('}', v);
        snprintf(key, sizeof key, "hft:positions:%s:all", name);
        val_emit(out, v, &val, key);
    }
    if (ac->known[FG_AC_ORDERS]) {
        uint32_t n = 0;
        v = val_open(&val, &len);
        fputs("{\"account\":", v);
        put_jstr(v, name);
        fputs(",\"orders\":[", v);
        for (uint32_t j = ac->ofirst; j != UINT32_MAX; j = a->ord[j].next) {
            if (!a->ord[j].live)
                continue;
            if (n++)
                fputc(',', v);
            put_order(v, m, name, &a->ord[j]);
        }
        fprintf(v, "],\"count\":%" PRIu32 ",\"timestamp\":", n);
        put_ms(v, ac->ts_ns[FG_AC_ORDERS]);
        fputc('}', v);
        snprintf(key, sizeof key, "hft:orders:pending:%s", name);
        val_emit(out, v, &val, key);
        /* Each working order has its key; a terminal one must have none. */
        for (uint32_t j = ac->ofirst; j != UINT32_MAX; j = a->ord[j].next) {
            const fg_order *x = &a->ord[j];
            snprintf(key, sizeof key, "hft:orders:pending:%s:%s", name, x->id);
            if (!x->live) {
                put_expect(out, key, NULL);
                continue;
            }
            v = val_open(&val, &len);
            put_order(v, m, name, x);
            val_emit(out, v, &val, key);
        }
    }
    if (ac->known[FG_AC_BALANCE]) {
        v = val_open(&val, &len);
        fputs("{\"account\":", v);
        put_jstr(v, name);
        fputs(",\"cash\":", v);
        put_dec(v, ac->cash);
        fputs(",\"realized_pnl\":", v);
        put_dec(v, ac->realized);
        fputs(",\"unrealized_pnl\":", v);
        put_dec(v, ac->unrealized);
        fputs(",\"timestamp\":", v);
        put_ms(v, ac->ts_ns[FG_AC_BALANCE]);
        fputc('}', v);
        snprintf(key, sizeof key, "hft:balances:%s:all", name);
        val_emit(out, v, &val, key);
    }
    if (ac->known[FG_AC_INFO]) {
        /* The seeds' time.time(): epoch seconds with the milliseconds. */
        int64_t ms = ac->ts_ns[FG_AC_INFO] / 1000000;
        v = val_open(&val, &len);
        fputs("{\"accounts\":[{\"name\":", v);
        put_jstr(v, name);
        fputs(",\"id\":", v);
        if (ac->id[0])
            put_jstr(v, ac->id);
        else
            fputs("null", v);
        fprintf(v, ",\"active\":%s}],\"count\":1,\"cached\":false,\"timestamp\":%" PRId64
                   ".%03" PRId64 "}",
                active[ac->active], ms / 1000, ms % 1000);
        snprintf(key, sizeof key, "hft:accounts:%s", name);
        val_emit(out, v, &val, key);
    }
}

int fg_acct_write_expect(const fg_accts *a, const fg_model *m, const char *path,
                         const char *who)
{
    FILE *o = fopen(path, "a");

    if (!o) {
        fprintf(stderr, "%s: cannot write %s: %s\n", who, path, strerror(errno));
        return -1;
    }
    for (uint32_t i = 0; i < a->n; i++)
        write_acct(o, a, m, i);
    if (fclose(o) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", who, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- account messages: encoding ---- */

/* A jsonl line under construction; the longest account line is far below
 * its size (names are at most 31 or 63 bytes). */
typedef struct jline {
    char b[1024];
    size_t n;
} jline;

static void jl_raw(jline *l, const char *s)
{
    size_t k = strlen(s);
    memcpy(l->b + l->n, s, k);
    l->n += k;
}

static void jl_str(jline *l, const char *key, const char *s)
{
    l->n += (size_t)sprintf(l->b + l->n, ",\"%s\":\"", key);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            l->b[l->n++] = '\\';
        l->b[l->n++] = *s;
    }
    l->b[l->n++] = '"';
}

static void jl_dec(jline *l, const char *key, fg_dec d, bool string_numbers)
{
    if (!d.present)
        return; /* an absent field is left out of the line, as a feed would */
    l->n += (size_t)sprintf(l->b + l->n, ",\"%s\":", key);
    l->n += json_num(string_numbers, d, l->b + l->n);
}

size_t fg_acct_encode(const fg_model *m, int format, const fg_amsg *msg, const char *source,
                      bool string_numbers, unsigned char *out, size_t cap)
{
    static const char *const type[] = {"position", "order", "balance", "account"};
    static const char *const status[] = {"", "working", "filled", "cancelled", "rejected"};
    char name[32], sym[32] = "";
    jline l;

    fg_acct_name(msg->acct, name);
    if (msg->sym >= 0)
        fg_sym_name(m, (uint32_t)msg->sym, sym);
    if (format == FG_BIN1) {
        switch (msg->type) {
        case FG_POSITION:
            return mdcache_bin1_put_position(out, cap, name, sym, source, msg->seq, 1,
                                             msg->ts_ns, 1, to_bin(msg->v[0]), to_bin(msg->v[1]));
        case FG_ORDER:
            return mdcache_bin1_put_order(out, cap, name, msg->ref, msg->sym >= 0 ? sym : NULL,
                                          source, msg->seq, 1, msg->ts_ns, 1,
                                          (unsigned)msg->side, (unsigned)msg->status,
                                          to_bin(msg->v[0]), to_bin(msg->v[1]));
        case FG_BALANCE:
            return mdcache_bin1_put_balance(out, cap, name, source, msg->seq, 1, msg->ts_ns, 1,
                                            to_bin(msg->v[0]), to_bin(msg->v[1]),
                                            to_bin(msg->v[2]));
        default:
            return mdcache_bin1_put_account(out, cap, name, msg->ref, source, msg->seq, 1,
                                            msg->ts_ns, 1, (unsigned)msg->active);
        }
    }
    l.n = (size_t)sprintf(l.b, "{\"type\":\"%s\"", type[msg->type - FG_POSITION]);
    jl_str(&l, "account", name);
    switch (msg->type) {
    case FG_POSITION:
        jl_str(&l, "symbol", sym);
        jl_dec(&l, "net_pos", msg->v[0], string_numbers);
        jl_dec(&l, "avg_price", msg->v[1], string_numbers);
        break;
    case FG_ORDER:
        jl_str(&l, "order_id", msg->ref);
        if (msg->sym >= 0)
            jl_str(&l, "symbol", sym);
        if (msg->side != FG_SIDE_NONE)
            jl_str(&l, "side", msg->side == FG_SIDE_BUY ? "buy" : "sell");
        jl_dec(&l, "qty", msg->v[0], string_numbers);
        jl_dec(&l, "price", msg->v[1], string_numbers);
        jl_str(&l, "status", msg->us_spelling ? "canceled" : status[msg->status]);
        break;
    case FG_BALANCE:
        jl_dec(&l, "cash", msg->v[0], string_numbers);
        jl_dec(&l, "realized_pnl", msg->v[1], string_numbers);
        jl_dec(&l, "unrealized_pnl", msg->v[2], string_numbers);
        break;
    default:
        if (msg->ref[0])
            jl_str(&l, "id", msg->ref);
        if (msg->active != FG_ACTIVE_UNKNOWN)
            jl_raw(&l, msg->active == FG_ACTIVE_YES ? ",\"active\":true" : ",\"active\":false");
        break;
    }
    l.n += (size_t)sprintf(l.b + l.n, ",\"ts\":%" PRId64 ",\"seq\":%" PRIu64, msg->ts_ns,
                           msg->seq);
    jl_str(&l, "source", source);
    jl_raw(&l, "}\n");
    if (l.n > cap)
        return 0;
    memcpy(out, l.b, l.n);
    return l.n;
}
