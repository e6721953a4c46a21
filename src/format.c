/*
 * md_format: price JSON, key templates and RESP commands (include/md_format.h).
 *
 * Everything here runs once per written key in the batch writer, so it
 * appends into caller buffers with explicit bounds, no allocation and no
 * printf family: integers go through md_fmt_u64, decimals through
 * md_dec_format. Every function either writes its whole output or reports
 * 0, so a caller that runs out of room flushes and retries with the same
 * arguments.
 */
#include "md_format.h"

#include <string.h>

/* Digits of v, written backwards into the end of a 20-byte scratch. */
static size_t md_fmt_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + sizeof(tmp) - n, n);
    return n;
}

static size_t md_u64_digits(uint64_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static size_t md_fmt_i64(int64_t v, char *out)
{
    if (v < 0) {
        out[0] = '-';
        /* Negate in unsigned arithmetic: -INT64_MIN does not fit int64. */
        return 1 + md_fmt_u64(0 - (uint64_t)v, out + 1);
    }
    return md_fmt_u64((uint64_t)v, out);
}

/* ---- price value -------------------------------------------------------- */

#define MD_PRICE_SCRATCH 512

static size_t md_put_lit(char *p, const char *lit)
{
    size_t n = strlen(lit);

    memcpy(p, lit, n);
    return n;
}

static size_t md_put_dec(char *p, md_dec d)
{
    /* md_dec_format needs at most 32 bytes; the scratch is sized for 7 of
     * them plus the field names and the timestamp. */
    return md_dec_format(d, p, 32);
}

size_t md_format_price(const md_sym *s, char *buf, size_t cap)
{
    char tmp[MD_PRICE_SCRATCH];
    char *p = tmp;
    size_t n;

    p += md_put_lit(p, "{\"Last\":");
    p += md_put_dec(p, s->last);
    p += md_put_lit(p, ",\"Bid\":");
    p += md_put_dec(p, s->bid);
    p += md_put_lit(p, ",\"Ask\":");
    p += md_put_dec(p, s->ask);
    p += md_put_lit(p, ",\"Volume\":");
    p += md_put_dec(p, s->volume);
    p += md_put_lit(p, ",\"High\":");
    p += md_put_dec(p, s->high);
    p += md_put_lit(p, ",\"Low\":");
    p += md_put_dec(p, s->low);
    p += md_put_lit(p, ",\"Timestamp\":");
    if (s->has_ts) {
        /* Epoch ms, floored (so -1 ns is -1 ms, not 0). */
        int64_t ms = s->ts_ns / 1000000;
        if (s->ts_ns % 1000000 < 0)
            ms--;
        p += md_fmt_i64(ms, p);
    } else {
        p += md_put_lit(p, "null");
    }
    *p++ = '}';
    n = (size_t)(p - tmp);
    if (n + 1 > cap)
        return 0;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

/* ---- key templates ------------------------------------------------------ */

#define MD_SYMBOL_TOKEN "{symbol}"

int md_keytpl_init(md_keytpl *k, const char *prefix, const char *tpl)
{
    const char *at;
    size_t plen, hlen, tlen;
    size_t tok = sizeof(MD_SYMBOL_TOKEN) - 1;

    memset(k, 0, sizeof(*k));
    if (!tpl)
        return -1;
    if (!prefix)
        prefix = "";
    at = strstr(tpl, MD_SYMBOL_TOKEN);
    if (!at || strstr(at + tok, MD_SYMBOL_TOKEN))
        return -1;
    plen = strlen(prefix);
    hlen = plen + (size_t)(at - tpl);
    tlen = strlen(at + tok);
    /* Leave room for a NUL so head/tail stay printable C strings. */
    if (hlen >= sizeof(k->head) || tlen >= sizeof(k->tail))
        return -1;
    memcpy(k->head, prefix, plen);
    memcpy(k->head + plen, tpl, (size_t)(at - tpl));
    memcpy(k->tail, at + tok, tlen);
    k->head_len = (uint8_t)hlen;
    k->tail_len = (uint8_t)tlen;
    return 0;
}

/* Writes head + sym + tail and a NUL; returns the key length, 0 if the key
 * and its NUL do not fit. */
size_t md_keytpl_format(const md_keytpl *k, const char *sym, size_t sym_len, char *buf,
                        size_t cap)
{
    size_t n = (size_t)k->head_len + sym_len + k->tail_len;

    if (n + 1 > cap || n < sym_len)
        return 0;
    memcpy(buf, k->head, k->head_len);
    memcpy(buf + k->head_len, sym, sym_len);
    memcpy(buf + k->head_len + sym_len, k->tail, k->tail_len);
    buf[n] = '\0';
    return n;
}

/* ---- RESP --------------------------------------------------------------- */

/* Bytes of "$<len>\r\n<bytes>\r\n". */
static inline size_t md_resp_bulk_size(size_t len) { return 1 + md_u64_digits(len) + 2 + len + 2; }

static inline char *md_resp_put_bulk(char *p, const char *s, size_t len)
{
    *p++ = '$';
    p += md_fmt_u64(len, p);
    *p++ = '\r';
    *p++ = '\n';
    if (len)
        memcpy(p, s, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static inline char *md_resp_put_header(char *p, uint64_t argc)
{
    *p++ = '*';
    p += md_fmt_u64(argc, p);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

size_t md_resp_setex(char *buf, size_t cap, const char *key, size_t klen, uint32_t ttl_s,
                     const char *val, size_t vlen)
{
    char ttl[10];
    size_t tlen = md_fmt_u64(ttl_s, ttl);
    size_t need = 4 + md_resp_bulk_size(5) + md_resp_bulk_size(klen) + md_resp_bulk_size(tlen) +
                  md_resp_bulk_size(vlen);
    char *p = buf;

    if (need > cap)
        return 0;
    p = md_resp_put_header(p, 4);
    p = md_resp_put_bulk(p, "SETEX", 5);
    p = md_resp_put_bulk(p, key, klen);
    p = md_resp_put_bulk(p, ttl, tlen);
    p = md_resp_put_bulk(p, val, vlen);
    return (size_t)(p - buf);
}

size_t md_resp_set(char *buf, size_t cap, const char *key, size_t klen, const char *val,
                   size_t vlen)
{
    size_t need = 4 + md_resp_bulk_size(3) + md_resp_bulk_size(klen) + md_resp_bulk_size(vlen);
    char *p = buf;

    if (need > cap)
        return 0;
    p = md_resp_put_header(p, 3);
    p = md_resp_put_bulk(p, "SET", 3);
    p = md_resp_put_bulk(p, key, klen);
    p = md_resp_put_bulk(p, val, vlen);
    return (size_t)(p - buf);
}

/* lens may be NULL for NUL-terminated arguments (cold paths: AUTH, SELECT,
 * CONFIG); an empty command (argc <= 0) is refused. */
size_t md_resp_cmd(char *buf, size_t cap, int argc, const char *const *argv,
                   const size_t *lens)
{
    size_t need;
    char *p = buf;

    if (argc <= 0)
        return 0;
    need = 1 + md_u64_digits((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        need += md_resp_bulk_size(lens ? lens[i] : strlen(argv[i]));
    if (need > cap)
        return 0;
    p = md_resp_put_header(p, (uint64_t)argc);
    for (int i = 0; i < argc; i++)
        p = md_resp_put_bulk(p, argv[i], lens ? lens[i] : strlen(argv[i]));
    return (size_t)(p - buf);
}

size_t md_resp_auth(char *buf, size_t cap, const char *user, const char *pass)
{
    const char *argv[3] = {"AUTH", user, pass};
    if (user[0]) return md_resp_cmd(buf, cap, 3, argv, NULL);
    argv[1] = pass; /* the default user: the form every Redis version takes */
    return md_resp_cmd(buf, cap, 2, argv, NULL);
}

bool md_keytpl_match(const md_keytpl *k, const char *key, size_t len, const char **sym,
                     size_t *sym_len)
{
    if (len <= (size_t)k->head_len + k->tail_len) return false;
    if (memcmp(key, k->head, k->head_len) != 0) return false;
    if (memcmp(key + len - k->tail_len, k->tail, k->tail_len) != 0) return false;
    *sym = key + k->head_len;
    *sym_len = len - k->head_len - k->tail_len;
    return true;
}
