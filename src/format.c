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

/* Epoch ms, floored (so -1 ns is -1 ms, not 0). */
static int64_t md_epoch_ms(int64_t ns)
{
    int64_t ms = ns / 1000000;
    return ns % 1000000 < 0 ? ms - 1 : ms;
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
        p += md_fmt_i64(md_epoch_ms(s->ts_ns), p);
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

/* Copies src[0, n) into dst (cap bytes) leaving room for a NUL. */
static bool md_tpl_part(char *dst, size_t cap, uint8_t *len, const char *src, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, src, n);
    dst[n] = '\0';
    *len = (uint8_t)n;
    return true;
}

int md_keytpl_init_vars(md_keytpl *k, const char *prefix, const char *tpl, const char *var1,
                        const char *var2)
{
    const char *at1, *at2 = NULL;
    size_t plen, l1 = strlen(var1), l2 = var2 ? strlen(var2) : 0;
    char head[sizeof(k->head)];

    memset(k, 0, sizeof(*k));
    if (!tpl)
        return -1;
    if (!prefix)
        prefix = "";
    at1 = strstr(tpl, var1);
    if (!at1 || strstr(at1 + l1, var1))
        return -1;
    if (var2) {
        /* Both variables, once each, the first before the second, with
         * something between them so a key can be split again. */
        at2 = strstr(at1 + l1, var2);
        if (!at2 || at2 == at1 + l1 || strstr(at2 + l2, var2) || strstr(tpl, var2) != at2)
            return -1;
    }
    plen = strlen(prefix);
    if (plen + (size_t)(at1 - tpl) >= sizeof(head))
        return -1;
    memcpy(head, prefix, plen);
    memcpy(head + plen, tpl, (size_t)(at1 - tpl));
    if (!md_tpl_part(k->head, sizeof(k->head), &k->head_len, head, plen + (size_t)(at1 - tpl)))
        return -1;
    if (var2) {
        if (!md_tpl_part(k->mid, sizeof(k->mid), &k->mid_len, at1 + l1, (size_t)(at2 - at1 - l1)) ||
            !md_tpl_part(k->tail, sizeof(k->tail), &k->tail_len, at2 + l2, strlen(at2 + l2)))
            return -1;
        k->nvars = 2;
    } else {
        if (!md_tpl_part(k->tail, sizeof(k->tail), &k->tail_len, at1 + l1, strlen(at1 + l1)))
            return -1;
        k->nvars = 1;
    }
    return 0;
}

int md_keytpl_init(md_keytpl *k, const char *prefix, const char *tpl)
{
    return md_keytpl_init_vars(k, prefix, tpl, "{symbol}", NULL);
}

size_t md_keytpl_format2(const md_keytpl *k, const char *a, size_t alen, const char *b,
                         size_t blen, char *buf, size_t cap)
{
    size_t n = (size_t)k->head_len + alen + k->mid_len + blen + k->tail_len;
    char *p = buf;

    if (n + 1 > cap)
        return 0;
    memcpy(p, k->head, k->head_len);
    p += k->head_len;
    memcpy(p, a, alen);
    p += alen;
    memcpy(p, k->mid, k->mid_len);
    p += k->mid_len;
    memcpy(p, b, blen);
    p += blen;
    memcpy(p, k->tail, k->tail_len);
    buf[n] = '\0';
    return n;
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
    if (k->nvars == 2) {
        /* The first variable ends at the first mid that leaves a non-empty
         * second one; a name containing mid itself is split there. */
        const char *v = *sym;
        size_t vl = *sym_len;
        for (size_t i = 1; i + k->mid_len < vl; i++)
            if (memcmp(v + i, k->mid, k->mid_len) == 0) {
                *sym_len = i;
                return true;
            }
        return false;
    }
    return true;
}

/* ---- account values ----------------------------------------------------- */

/* Names are printable ASCII without space (the decoders see to it), so the
 * only bytes JSON needs escaped are '"' and '\\': at most 2 * len + 2. */
static size_t md_put_jstr(char *p, const char *s, size_t len)
{
    char *o = p;

    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '"';
    return (size_t)(o - p);
}

static size_t md_put_jstr_or_null(char *p, const char *s, size_t len)
{
    return len ? md_put_jstr(p, s, len) : md_put_lit(p, "null");
}


static size_t md_put_ts_ms(char *p, int64_t ns)
{
    return ns ? md_fmt_i64(md_epoch_ms(ns), p) : md_put_lit(p, "null");
}

/* Worst cases, escaping included: the fixed parts of a value, one
 * position entry, one order object. */
#define MD_ACCT_HEAD_MAX 512
#define MD_POS_JSON_MAX 256
#define MD_ORDER_JSON_MAX 512

size_t md_account_value_max(uint32_t max_positions, uint32_t max_orders)
{
    size_t p = (size_t)max_positions * MD_POS_JSON_MAX, o = (size_t)max_orders * MD_ORDER_JSON_MAX;
    return MD_ACCT_HEAD_MAX + (p > o ? p : o);
}

static size_t md_put_order(char *p, const md_account *a, const md_order *o)
{
    static const char *const side[] = {"null", "\"buy\"", "\"sell\""};
    static const char *const status[] = {"null", "\"working\"", "\"filled\"", "\"cancelled\"",
                                         "\"rejected\""};
    char *q = p;

    q += md_put_lit(q, "{\"account\":");
    q += md_put_jstr(q, a->name, a->name_len);
    q += md_put_lit(q, ",\"order_id\":");
    q += md_put_jstr(q, o->id, o->id_len);
    q += md_put_lit(q, ",\"symbol\":");
    q += md_put_jstr_or_null(q, o->symbol, o->sym_len);
    q += md_put_lit(q, ",\"side\":");
    q += md_put_lit(q, side[o->side <= MD_SIDE_SELL ? o->side : 0]);
    q += md_put_lit(q, ",\"qty\":");
    q += md_put_dec(q, o->qty);
    q += md_put_lit(q, ",\"price\":");
    q += md_put_dec(q, o->price);
    q += md_put_lit(q, ",\"status\":");
    q += md_put_lit(q, status[o->status <= MD_ORDER_REJECTED ? o->status : 0]);
    q += md_put_lit(q, ",\"timestamp\":");
    q += md_put_ts_ms(q, o->ts_ns);
    *q++ = '}';
    return (size_t)(q - p);
}

/* The tail every list value shares: ],"count":N,"timestamp":ms} */
static size_t md_put_list_end(char *p, uint32_t count, int64_t ts_ns)
{
    char *q = p;

    q += md_put_lit(q, "],\"count\":");
    q += md_fmt_u64(count, q);
    q += md_put_lit(q, ",\"timestamp\":");
    q += md_put_ts_ms(q, ts_ns);
    *q++ = '}';
    *q = '\0';
    return (size_t)(q - p);
}

size_t md_format_positions(const md_account *a, char *buf, size_t cap)
{
    char *q = buf;

    if (cap < MD_ACCT_HEAD_MAX + (size_t)a->npos * MD_POS_JSON_MAX)
        return 0;
    q += md_put_lit(q, "{\"account\":");
    q += md_put_jstr(q, a->name, a->name_len);
    q += md_put_lit(q, ",\"positions\":[");
    for (uint32_t i = 0; i < a->npos; i++) {
        const md_position *p = &a->pos[i];
        if (i)
            *q++ = ',';
        q += md_put_lit(q, "{\"symbol\":");
        q += md_put_jstr(q, p->symbol, p->sym_len);
        q += md_put_lit(q, ",\"net_pos\":");
        q += md_put_dec(q, p->net_pos);
        q += md_put_lit(q, ",\"avg_price\":");
        q += md_put_dec(q, p->avg_price);
        q += md_put_lit(q, ",\"timestamp\":");
        q += md_put_ts_ms(q, p->ts_ns);
        *q++ = '}';
    }
    q += md_put_list_end(q, a->npos, a->ts_ns[MD_AC_POSITIONS]);
    return (size_t)(q - buf);
}

size_t md_format_order(const md_account *a, const md_order *o, char *buf, size_t cap)
{
    size_t n;

    if (cap < MD_ORDER_JSON_MAX)
        return 0;
    n = md_put_order(buf, a, o);
    buf[n] = '\0';
    return n;
}

size_t md_format_orders(const md_account *a, char *buf, size_t cap)
{
    char *q = buf;
    uint32_t listed = 0;

    if (cap < MD_ACCT_HEAD_MAX + (size_t)a->working * MD_ORDER_JSON_MAX)
        return 0;
    q += md_put_lit(q, "{\"account\":");
    q += md_put_jstr(q, a->name, a->name_len);
    q += md_put_lit(q, ",\"orders\":[");
    for (uint32_t i = 0; i < a->nord; i++) {
        if (a->ord[i].slot != MD_OSLOT_LIVE)
            continue;
        if (listed++)
            *q++ = ',';
        q += md_put_order(q, a, &a->ord[i]);
    }
    q += md_put_list_end(q, listed, a->ts_ns[MD_AC_ORDERS]);
    return (size_t)(q - buf);
}

size_t md_format_balance(const md_account *a, char *buf, size_t cap)
{
    char *q = buf;

    if (cap < MD_ACCT_HEAD_MAX)
        return 0;
    q += md_put_lit(q, "{\"account\":");
    q += md_put_jstr(q, a->name, a->name_len);
    q += md_put_lit(q, ",\"cash\":");
    q += md_put_dec(q, a->cash);
    q += md_put_lit(q, ",\"realized_pnl\":");
    q += md_put_dec(q, a->realized);
    q += md_put_lit(q, ",\"unrealized_pnl\":");
    q += md_put_dec(q, a->unrealized);
    q += md_put_lit(q, ",\"timestamp\":");
    q += md_put_ts_ms(q, a->ts_ns[MD_AC_BALANCE]);
    *q++ = '}';
    *q = '\0';
    return (size_t)(q - buf);
}

size_t md_format_accounts(const md_account *a, char *buf, size_t cap)
{
    static const char *const active[] = {"null", "false", "true"};
    char *q = buf;
    int64_t ms = md_epoch_ms(a->ts_ns[MD_AC_INFO]);

    if (cap < MD_ACCT_HEAD_MAX)
        return 0;
    q += md_put_lit(q, "{\"accounts\":[{\"name\":");
    q += md_put_jstr(q, a->name, a->name_len);
    q += md_put_lit(q, ",\"id\":");
    q += md_put_jstr_or_null(q, a->id, a->id_len);
    q += md_put_lit(q, ",\"active\":");
    q += md_put_lit(q, active[a->active <= MD_ACTIVE_YES ? a->active : 0]);
    /* The seeds' writer stores time.time(): epoch seconds with a fraction. */
    q += md_put_lit(q, "}],\"count\":1,\"cached\":false,\"timestamp\":");
    q += md_fmt_i64(ms / 1000, q);
    *q++ = '.';
    *q++ = (char)('0' + (ms % 1000) / 100);
    *q++ = (char)('0' + (ms % 100) / 10);
    *q++ = (char)('0' + ms % 10);
    *q++ = '}';
    *q = '\0';
    return (size_t)(q - buf);
}
