/*
 * url.c: the small string parsers behind md_config -- Redis URLs, listen
 * specs and CPU lists.
 *
 * Each parser builds its result in a local copy and writes *out only on
 * success, so a failed parse never leaves a half-updated config behind.
 * Messages say what is wrong in one line. A Redis URL may carry a password,
 * so no message about one ever quotes the URL or any part of its userinfo:
 * the caller says where the URL came from, we say what is wrong with it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "md_config.h"

#define MD_URL_DB_MAX (1 << 20)
/* cpu_set_t (CPU_SETSIZE) names CPUs 0..1023; sched_setaffinity cannot
 * pin to anything above that without dynamic sets, which we do not use. */
#define MD_CPU_MAX 1023
/* sizeof(((struct sockaddr_un *)0)->sun_path) - 1 on Linux: longer paths
 * would fail only at bind/connect time, far from the config that caused it. */
#define MD_SUN_PATH_MAX 107

int md_config_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Strict unsigned decimal of exactly len bytes: no sign, no blanks. */
static bool parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out. `what` names the part for messages;
 * the content itself is never echoed (it may be a password). */
static int pct_decode(const char *s, size_t len, char *out, size_t cap, const char *what,
                      char *err, size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len) return md_config_errf(err, errlen, "bad %%-escape in the %s", what);
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return md_config_errf(err, errlen, "bad %%-escape in the %s", what);
            c = (char)(h * 16 + l);
            if (c == '\0') return md_config_errf(err, errlen, "%%00 is not allowed in the %s", what);
            i += 2;
        }
        if (o + 1 >= cap) return md_config_errf(err, errlen, "%s too long (max %zu bytes)", what, cap - 1);
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* HOST[:PORT] or [V6]:PORT in s[0..len). Brackets are stripped from IPv6
 * hosts. *has_port tells whether a port was given. */
static int parse_hostport(const char *s, size_t len, char *host, size_t hostcap, uint16_t *port,
                          bool *has_port, char *err, size_t errlen)
{
    const char *h;
    size_t hlen, i;
    *has_port = false;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb) return md_config_errf(err, errlen, "missing ']' after IPv6 address");
        h = s + 1;
        hlen = (size_t)(rb - h);
        if (hlen == 0) return md_config_errf(err, errlen, "empty IPv6 address in []");
        bool colon = false;
        for (i = 0; i < hlen; i++) {
            char c = h[i];
            if (c == ':') colon = true;
            else if (!is_alnum(c) && c != '.' && c != '%' && c != '-' && c != '_')
                return md_config_errf(err, errlen, "bad character in IPv6 address");
        }
        if (!colon) return md_config_errf(err, errlen, "not an IPv6 address inside []");
        i = (size_t)(rb - s) + 1;
        if (i < len && s[i] != ':') return md_config_errf(err, errlen, "unexpected text after ']'");
    } else {
        h = s;
        const char *colon = memchr(s, ':', len);
        hlen = colon ? (size_t)(colon - s) : len;
        if (colon && memchr(colon + 1, ':', len - hlen - 1))
            return md_config_errf(err, errlen, "IPv6 addresses need brackets, e.g. [::1]:6379");
        if (hlen == 0) return md_config_errf(err, errlen, "missing host");
        for (i = 0; i < hlen; i++) {
            char c = h[i];
            if (!is_alnum(c) && c != '.' && c != '-' && c != '_')
                return md_config_errf(err, errlen, "bad character in host name");
        }
        i = hlen;
    }
    if (hlen >= hostcap) return md_config_errf(err, errlen, "host name too long (max %zu bytes)", hostcap - 1);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (i < len) { /* s[i] == ':' */
        unsigned long p;
        const char *ps = s + i + 1;
        size_t plen = len - i - 1;
        if (plen == 0) return md_config_errf(err, errlen, "missing port after ':'");
        if (!parse_uint(ps, plen, 65535, &p) || p == 0)
            return md_config_errf(err, errlen, "bad port '%.*s' (want 1..65535)", (int)(plen > 16 ? 16 : plen),
                        ps);
        *port = (uint16_t)p;
        *has_port = true;
    }
    return 0;
}

/* Parses "db=N" (the only query parameter a Redis URL may carry here). */
static int parse_redis_query(const char *q, size_t len, int *db, bool *has_db, char *err,
                             size_t errlen)
{
    while (len > 0) {
        const char *amp = memchr(q, '&', len);
        size_t plen = amp ? (size_t)(amp - q) : len;
        unsigned long v;
        if (plen >= 3 && memcmp(q, "db=", 3) == 0) {
            if (*has_db) return md_config_errf(err, errlen, "database given twice");
            if (!parse_uint(q + 3, plen - 3, MD_URL_DB_MAX, &v))
                return md_config_errf(err, errlen, "bad database number (want 0..%d)", MD_URL_DB_MAX);
            *db = (int)v;
            *has_db = true;
        } else {
            const char *eq = memchr(q, '=', plen);
            size_t nlen = eq ? (size_t)(eq - q) : plen;
            bool safe = nlen > 0 && nlen <= 32;
            for (size_t i = 0; safe && i < nlen; i++)
                safe = is_alnum(q[i]) || q[i] == '_' || q[i] == '-';
            if (safe)
                return md_config_errf(err, errlen, "unsupported query parameter '%.*s' (only db=N)", (int)nlen,
                            q);
            return md_config_errf(err, errlen, "unsupported query parameter (only db=N)");
        }
        if (!amp) break;
        len -= plen + 1;
        q = amp + 1;
        if (len == 0) return md_config_errf(err, errlen, "empty query parameter");
    }
    return 0;
}

static int parse_userinfo(const char *s, size_t len, md_redis_url *u, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    size_t ulen = colon ? (size_t)(colon - s) : len;
    if (pct_decode(s, ulen, u->user, sizeof u->user, "user name", err, errlen) < 0) return -1;
    if (colon &&
        pct_decode(colon + 1, len - ulen - 1, u->pass, sizeof u->pass, "password", err, errlen) < 0)
        return -1;
    return 0;
}

/* The authority's host[:port],host[:port],... into u->seeds; the first
 * seed is also u->host/u->port, which is all a non-cluster client reads. */
static int parse_seeds(const char *s, size_t len, md_redis_url *u, char *err, size_t errlen)
{
    char why[200];
    bool list = memchr(s, ',', len) != NULL;
    u->nseeds = 0;
    for (;;) {
        const char *comma = memchr(s, ',', len);
        size_t slen = comma ? (size_t)(comma - s) : len;
        unsigned n = u->nseeds + 1u;
        bool has_port;
        if (slen == 0)
            return md_config_errf(err, errlen, "empty seed node %u in the seed list "
                                               "(host[:port],host[:port],...)", n);
        if (u->nseeds >= MD_MAX_SEEDS)
            return md_config_errf(err, errlen, "too many seed nodes (max %d)", MD_MAX_SEEDS);
        u->seeds[u->nseeds].port = 6379;
        if (parse_hostport(s, slen, u->seeds[u->nseeds].host, sizeof u->seeds[0].host,
                           &u->seeds[u->nseeds].port, &has_port, why, sizeof why) < 0) {
            /* A single host keeps the messages it always had. */
            if (!list) return md_config_errf(err, errlen, "%s", why);
            return md_config_errf(err, errlen, "seed node %u: %s", n, why);
        }
        u->nseeds++;
        if (!comma) break;
        len -= slen + 1;
        s = comma + 1;
        if (len == 0)
            return md_config_errf(err, errlen, "empty seed node %u in the seed list "
                                               "(host[:port],host[:port],...)", n + 1);
    }
    memcpy(u->host, u->seeds[0].host, sizeof u->host);
    u->port = u->seeds[0].port;
    return 0;
}

int md_redis_url_parse(const char *url, md_redis_url *out, char *err, size_t errlen)
{
    md_redis_url u;
    const char *rest;
    memset(&u, 0, sizeof u);
    u.port = 6379;

    if (!url || !*url) return md_config_errf(err, errlen, "empty Redis URL");
    if (strncasecmp(url, "redis://", 8) == 0) {
        u.kind = MD_REDIS_TCP;
        rest = url + 8;
    } else if (strncasecmp(url, "rediss://", 9) == 0) {
        u.kind = MD_REDIS_TLS;
        rest = url + 9;
    } else if (strncasecmp(url, "unix://", 7) == 0) {
        u.kind = MD_REDIS_UNIX;
        rest = url + 7;
    } else {
        const char *sep = strstr(url, "://");
        size_t slen = sep ? (size_t)(sep - url) : 0;
        bool safe = slen > 0 && slen <= 16;
        for (size_t i = 0; safe && i < slen; i++)
            safe = is_alnum(url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.';
        if (safe)
            return md_config_errf(err, errlen,
                        "unsupported scheme '%.*s' (want redis://, rediss:// or unix://)",
                        (int)slen, url);
        return md_config_errf(err, errlen,
                    "not a Redis URL (want redis://[user[:pass]@]host[:port][/db], rediss://... "
                    "or unix:///path.sock[?db=N])");
    }

    size_t len = strlen(rest);
    bool has_db = false;
    if (u.kind == MD_REDIS_UNIX) {
        /* unix://[[user]:pass@]/path: the userinfo ends at the first "@/",
         * so a socket path may itself contain '@'. */
        const char *at = NULL;
        if (rest[0] != '/') {
            for (const char *p = rest; (p = strchr(p, '@')) != NULL; p++)
                if (p[1] == '/') {
                    at = p;
                    break;
                }
            if (!at)
                return md_config_errf(err, errlen, "unix socket URL needs an absolute path: unix:///path.sock");
            if (parse_userinfo(rest, (size_t)(at - rest), &u, err, errlen) < 0) return -1;
            rest = at + 1;
            len = strlen(rest);
        }
        const char *q = memchr(rest, '?', len);
        size_t plen = q ? (size_t)(q - rest) : len;
        if (plen <= 1)
            return md_config_errf(err, errlen, "unix socket URL needs an absolute path: unix:///path.sock");
        if (plen > MD_SUN_PATH_MAX)
            return md_config_errf(err, errlen, "unix socket path too long (max %d bytes)", MD_SUN_PATH_MAX);
        /* A cluster hands out host:port addresses, so a socket cannot be
         * one of its seeds; a ',' here is almost surely an attempted seed
         * list, and saying so beats failing later on a path that does not
         * exist. */
        if (memchr(rest, ',', plen))
            return md_config_errf(err, errlen,
                                  "a unix socket URL names one socket, not a seed list (seed "
                                  "nodes need redis:// or rediss://)");
        memcpy(u.path, rest, plen);
        u.path[plen] = '\0';
        if (q && parse_redis_query(q + 1, len - plen - 1, &u.db, &has_db, err, errlen) < 0)
            return -1;
        u.nseeds = 1;
        u.seeds[0].port = u.port;
        *out = u;
        return 0;
    }

    /* redis:// and rediss://. The userinfo ends at the last '@', so an
     * unescaped '@' in a password still works (the path is only /N). */
    const char *at = strrchr(rest, '@');
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), &u, err, errlen) < 0) return -1;
        rest = at + 1;
        len = strlen(rest);
    }
    /* Seed lists tempt people to write redis://h1:1,redis://h2:2 or to
     * mix in unix:///x.sock; the second scheme would otherwise surface as
     * a puzzling port or database error. */
    size_t qpos = strcspn(rest, "?");
    if (memmem(rest, qpos, "://", 3))
        return md_config_errf(err, errlen,
                              "one scheme per URL: seed nodes are host[:port], e.g. "
                              "redis://h1:7000,h2:7001 (a unix socket cannot be a seed)");
    size_t hlen = strcspn(rest, "/?");
    if (hlen == 0) return md_config_errf(err, errlen, "missing host");
    if (parse_seeds(rest, hlen, &u, err, errlen) < 0) return -1;
    const char *p = rest + hlen;
    if (*p == '/') {
        p++;
        size_t dlen = strcspn(p, "?");
        unsigned long v;
        if (dlen > 0) {
            if (!parse_uint(p, dlen, MD_URL_DB_MAX, &v))
                return md_config_errf(err, errlen, "bad database number after '/' (want 0..%d)",
                            MD_URL_DB_MAX);
            u.db = (int)v;
            has_db = true;
        }
        p += dlen;
    }
    if (*p == '?' && parse_redis_query(p + 1, strlen(p + 1), &u.db, &has_db, err, errlen) < 0)
        return -1;
    *out = u;
    return 0;
}

void md_redis_url_redact(const char *url, char *out, size_t cap)
{
    if (!out || cap == 0) return;
    if (!url) {
        out[0] = '\0';
        return;
    }
    /* Any scheme, not only ours: the point is that nothing secret reaches
     * a log, whatever the user pasted. Outside unix:// the last '@' is
     * taken, as the parser does, so that an unescaped '@' in a password
     * cannot leave its tail visible. */
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : NULL;
    const char *at = NULL;
    if (auth && strncasecmp(url, "unix://", 7) == 0) {
        /* Same split as md_redis_url_parse, so the redacted URL names the
         * socket path that is really used. */
        if (auth[0] != '/')
            for (const char *p = auth; (p = strchr(p, '@')) != NULL; p++)
                if (p[1] == '/') {
                    at = p;
                    break;
                }
    } else if (auth) {
        at = strrchr(auth, '@');
    }
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon || colon + 1 == at) {
        snprintf(out, cap, "%s", url);
        return;
    }
    snprintf(out, cap, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* ---- listen specs ---- */

static int parse_format(const char *v, size_t len, md_feed_format *f)
{
    if (len == 4 && memcmp(v, "bin1", 4) == 0) *f = MD_FMT_BIN1;
    else if (len == 5 && memcmp(v, "jsonl", 5) == 0) *f = MD_FMT_JSONL;
    else if (len == 7 && memcmp(v, "binance", 7) == 0) *f = MD_FMT_BINANCE;
    else return -1;
    return 0;
}

int md_listen_parse(const char *spec, md_listen_spec *out, char *err, size_t errlen)
{
    md_listen_spec s;
    const char *rest;
    memset(&s, 0, sizeof s);

    if (!spec || !*spec) return md_config_errf(err, errlen, "empty listen spec");
    if (strlen(spec) >= sizeof s.spec)
        return md_config_errf(err, errlen, "listen spec too long (max %zu bytes)", sizeof s.spec - 1);
    strcpy(s.spec, spec);

    if (strncasecmp(spec, "udp://", 6) == 0) {
        s.kind = MD_LISTEN_UDP;
        s.format = MD_FMT_BIN1;
        rest = spec + 6;
    } else if (strncasecmp(spec, "tcp://", 6) == 0) {
        s.kind = MD_LISTEN_TCP;
        s.format = MD_FMT_JSONL;
        rest = spec + 6;
    } else if (strncasecmp(spec, "unix://", 7) == 0) {
        s.kind = MD_LISTEN_UNIX;
        s.format = MD_FMT_JSONL;
        rest = spec + 7;
    } else if (strncasecmp(spec, "file://", 7) == 0) {
        s.kind = MD_LISTEN_FILE;
        s.format = MD_FMT_JSONL;
        rest = spec + 7;
    } else {
        return md_config_errf(err, errlen,
                    "unknown listen spec '%.64s' (want udp://HOST:PORT, tcp://HOST:PORT, "
                    "unix:///PATH or file://PATH, each with optional ?format=bin1|jsonl|binance)",
                    spec);
    }

    size_t blen = strcspn(rest, "?");
    const char *q = rest[blen] == '?' ? rest + blen + 1 : NULL;
    if (q) {
        bool has_format = false;
        size_t qlen = strlen(q);
        for (;;) {
            const char *amp = memchr(q, '&', qlen);
            size_t plen = amp ? (size_t)(amp - q) : qlen;
            if (plen == 0) return md_config_errf(err, errlen, "empty query parameter in listen spec");
            if (plen >= 7 && memcmp(q, "format=", 7) == 0) {
                if (has_format) return md_config_errf(err, errlen, "format given twice");
                if (parse_format(q + 7, plen - 7, &s.format) < 0)
                    return md_config_errf(err, errlen, "unknown format '%.*s' (want bin1, jsonl or binance)",
                                (int)(plen - 7 > 32 ? 32 : plen - 7), q + 7);
                has_format = true;
            } else {
                const char *eq = memchr(q, '=', plen);
                size_t nlen = eq ? (size_t)(eq - q) : plen;
                return md_config_errf(err, errlen, "unknown query parameter '%.*s' (only format=)",
                            (int)(nlen > 32 ? 32 : nlen), q);
            }
            if (!amp) break;
            qlen -= plen + 1;
            q = amp + 1;
        }
    }

    bool has_port;
    switch (s.kind) {
    case MD_LISTEN_UDP:
    case MD_LISTEN_TCP:
        if (blen == 0) return md_config_errf(err, errlen, "missing HOST:PORT");
        if (parse_hostport(rest, blen, s.host, sizeof s.host, &s.port, &has_port, err, errlen) < 0)
            return -1;
        if (!has_port) return md_config_errf(err, errlen, "missing port (HOST:PORT, port 1..65535)");
        break;
    case MD_LISTEN_UNIX:
        if (blen == 0 || rest[0] != '/')
            return md_config_errf(err, errlen, "unix listen spec needs an absolute path: unix:///path.sock");
        if (blen > MD_SUN_PATH_MAX)
            return md_config_errf(err, errlen, "unix socket path too long (max %d bytes)", MD_SUN_PATH_MAX);
        memcpy(s.path, rest, blen);
        break;
    case MD_LISTEN_FILE:
        if (blen == 0) return md_config_errf(err, errlen, "missing path after file://");
        if (blen >= sizeof s.path)
            return md_config_errf(err, errlen, "file path too long (max %zu bytes)", sizeof s.path - 1);
        memcpy(s.path, rest, blen);
        break;
    }
    *out = s;
    return 0;
}

/* ---- CPU lists ---- */

int md_cpus_parse(const char *list, int *cpus, int max, int *n, char *err, size_t errlen)
{
    int tmp[MD_CPU_MAX + 1];
    unsigned char seen[MD_CPU_MAX + 1];
    int count = 0;
    if (max > MD_CPU_MAX + 1) max = MD_CPU_MAX + 1;
    if (!list) return md_config_errf(err, errlen, "empty CPU list");
    memset(seen, 0, sizeof seen);

    const char *p = list;
    for (;;) {
        size_t ilen = strcspn(p, ",");
        const char *s = p, *e = p + ilen;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        size_t len = (size_t)(e - s);
        int shown = (int)(len > 32 ? 32 : len);
        if (len == 0) {
            if (p == list && p[ilen] == '\0') return md_config_errf(err, errlen, "empty CPU list");
            return md_config_errf(err, errlen, "empty item in CPU list");
        }
        const char *dash = memchr(s, '-', len);
        unsigned long a, b;
        if (dash) {
            if (!parse_uint(s, (size_t)(dash - s), MD_CPU_MAX, &a) ||
                !parse_uint(dash + 1, (size_t)(e - dash - 1), MD_CPU_MAX, &b))
                return md_config_errf(err, errlen, "bad CPU range '%.*s' (want A-B, CPUs 0..%d)", shown, s,
                            MD_CPU_MAX);
            if (a > b)
                return md_config_errf(err, errlen, "bad CPU range '%.*s' (start above end)", shown, s);
        } else {
            if (!parse_uint(s, len, MD_CPU_MAX, &a))
                return md_config_errf(err, errlen, "bad CPU '%.*s' (want a number 0..%d or a range A-B)",
                            shown, s, MD_CPU_MAX);
            b = a;
        }
        for (unsigned long c = a; c <= b; c++) {
            if (seen[c]) return md_config_errf(err, errlen, "CPU %lu listed twice", c);
            if (count >= max) return md_config_errf(err, errlen, "too many CPUs (max %d)", max);
            seen[c] = 1;
            tmp[count++] = (int)c;
        }
        if (p[ilen] == '\0') break;
        p += ilen + 1;
    }
    memcpy(cpus, tmp, (size_t)count * sizeof tmp[0]);
    *n = count;
    return 0;
}
