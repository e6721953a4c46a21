/*
 * md_json: the JSON line scanner shared by the JSON dialects (jsonl.c,
 * binance.c). Private to feeds/.
 *
 * Why a hand-written scanner instead of a JSON library: this runs once per
 * tick on the hot path, and every general-purpose C JSON library we could
 * take from Debian (cJSON, jansson, json-c) builds a heap tree per document
 * and converts numbers to double. We need neither: a line is one flat object
 * of which we want a dozen keys at most, and numbers must stay exact decimal
 * text for md_dec_parse. So the scanner makes one pass over the line,
 * records where each interesting value sits (a pointer and a length into
 * the line; duplicate keys simply overwrite, so the last one wins), skips
 * everything else structurally, and allocates nothing.
 *
 * What is validated: the object syntax, strings (escapes, no raw control
 * characters), bracket nesting of skipped values (depth-limited) and every
 * value a dialect uses. What is not: the contents of values we ignore beyond
 * their structure (a bareword there is only required to be made of
 * number/literal characters), and UTF-8 well-formedness of ignored strings.
 *
 * Everything is static inline on purpose: jsonl is the hot path, and each
 * dialect passes its own key table and line decoder as constant function
 * pointers, which the compiler inlines so the shared code costs the same
 * as a private copy would.
 */
#ifndef MD_FEEDS_JSON_H
#define MD_FEEDS_JSON_H

#include <stdbool.h>
#include <string.h>

#include "md_decode.h"

#define MD_JSON_DEPTH_MAX 32 /* nesting allowed inside ignored values */
#define MD_JSON_KEY_MAX 16   /* longest key (or type name) we would recognise, escapes undone */

enum md_json_kind {
    MD_JV_ABSENT = 0, /* key not in the line */
    MD_JV_STRING,     /* p/n: the bytes between the quotes, still escaped if esc */
    MD_JV_BARE,       /* number or unknown bareword (NaN, Infinity...) */
    MD_JV_NULL,
    MD_JV_OTHER,      /* true, false, object, array (p/n: the whole value) */
};

typedef struct md_json_val {
    const char *p;
    size_t n;
    uint8_t kind;
    uint8_t esc;
} md_json_val;

/* Maps a key (escapes undone) to the dialect's field index, or -1. */
typedef int (*md_json_key_fn)(const char *k, size_t n);

/* Line decoder results other than a drop reason (which are >= 0). */
enum { MD_JSON_TICK = -1, MD_JSON_BLANK = -2, MD_JSON_SKIPPED = -3 };

/* Decodes one line (without its '\n') into *t: MD_JSON_TICK, MD_JSON_BLANK,
 * MD_JSON_SKIPPED (a valid message the dialect does not use), or the
 * md_decode_err to drop it for. A dialect with account messages passes an
 * md_acct's head to md_json_lines_into and fills it in through a cast. */
typedef int (*md_json_line_fn)(const char *line, size_t n, md_tick *t);

static inline const char *md_json_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static inline int md_json_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* p at the opening quote. Returns the byte after the closing quote, or NULL
 * if the string is malformed or unterminated. */
static inline const char *md_json_scan_string(const char *p, const char *end, uint8_t *esc)
{
    *esc = 0;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            *esc = 1;
            if (++p >= end)
                return NULL;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                break;
            case 'u':
                if (end - p < 5)
                    return NULL;
                for (int i = 1; i <= 4; i++)
                    if (md_json_hexval(p[i]) < 0)
                        return NULL;
                p += 4;
                break;
            default:
                return NULL;
            }
        }
    }
    return NULL;
}

/* Undoes the escapes of an already scanned string into dst. Returns the
 * length, or -1 if it does not fit in cap or needs a non-ASCII character
 * (names we use are ASCII; anything else cannot be valid anyway). */
static inline int md_json_unescape(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') {
            char e = s[++i];
            switch (e) {
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                int v = (md_json_hexval(s[i + 1]) << 12) | (md_json_hexval(s[i + 2]) << 8) |
                        (md_json_hexval(s[i + 3]) << 4) | md_json_hexval(s[i + 4]);
                if (v >= 0x80)
                    return -1;
                c = (char)v;
                i += 4;
                break;
            }
            default: c = e; break; /* " \ / */
            }
        }
        if (o >= cap)
            return -1;
        dst[o++] = c;
    }
    return (int)o;
}

/* A string value with its escapes undone into dst[cap] (not NUL-terminated):
 * its length, or -1 if it is not a string or does not fit. */
static inline int md_json_get_str(const md_json_val *v, char *dst, size_t cap)
{
    if (v->kind != MD_JV_STRING)
        return -1;
    if (v->esc)
        return md_json_unescape(v->p, v->n, dst, cap);
    if (v->n > cap)
        return -1;
    memcpy(dst, v->p, v->n);
    return (int)v->n;
}

/* p at '{' or '['. Skips the whole value, checking that brackets match
 * (one bit per level says which kind is open). */
static inline const char *md_json_skip_nested(const char *p, const char *end)
{
    uint64_t open_arr = 0;
    int depth = 0;
    uint8_t esc;

    while (p < end) {
        char c = *p;
        if (c == '{' || c == '[') {
            if (depth == MD_JSON_DEPTH_MAX)
                return NULL;
            open_arr = (open_arr << 1) | (c == '[');
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if ((open_arr & 1) != (uint64_t)(c == ']'))
                return NULL;
            open_arr >>= 1;
            p++;
            if (--depth == 0)
                return p;
        } else if (c == '"') {
            if (!(p = md_json_scan_string(p, end, &esc)))
                return NULL;
        } else {
            p++;
        }
    }
    return NULL;
}

static inline bool md_json_is_bare(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '+' || c == '.';
}

/* Parses one value at p into *v. Returns the byte after it, or NULL. */
static inline const char *md_json_scan_value(const char *p, const char *end, md_json_val *v)
{
    const char *q;
    v->esc = 0;
    if (*p == '"') {
        if (!(q = md_json_scan_string(p, end, &v->esc)))
            return NULL;
        v->kind = MD_JV_STRING;
        v->p = p + 1;
        v->n = (size_t)(q - p - 2);
        return q;
    }
    if (*p == '{' || *p == '[') {
        if (!(q = md_json_skip_nested(p, end)))
            return NULL;
        v->kind = MD_JV_OTHER;
        v->p = p;
        v->n = (size_t)(q - p);
        return q;
    }
    for (q = p; q < end && md_json_is_bare(*q); q++)
        ;
    if (q == p)
        return NULL;
    v->p = p;
    v->n = (size_t)(q - p);
    if (v->n == 4 && memcmp(p, "null", 4) == 0)
        v->kind = MD_JV_NULL;
    else if ((v->n == 4 && memcmp(p, "true", 4) == 0) || (v->n == 5 && memcmp(p, "false", 5) == 0))
        v->kind = MD_JV_OTHER;
    else
        v->kind = MD_JV_BARE;
    return q;
}

/* Scans the one object in [p, end) into vals[], indexed by what lookup
 * says for each key (keys it does not know are skipped). Returns
 * MD_JSON_TICK (-1) if ok, MD_JSON_BLANK for nothing but whitespace, else
 * MD_DERR_SYNTAX. */
static inline int md_json_scan_object(const char *p, const char *end, md_json_val *vals,
                                      md_json_key_fn lookup)
{
    const char *k;
    uint8_t kesc;
    md_json_val v;

    p = md_json_skip_ws(p, end);
    if (p == end)
        return MD_JSON_BLANK;
    if (*p != '{')
        return MD_DERR_SYNTAX;
    p = md_json_skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p != '"')
                return MD_DERR_SYNTAX;
            k = p + 1;
            if (!(p = md_json_scan_string(p, end, &kesc)))
                return MD_DERR_SYNTAX;
            size_t klen = (size_t)(p - 1 - k);
            p = md_json_skip_ws(p, end);
            if (p >= end || *p != ':')
                return MD_DERR_SYNTAX;
            p = md_json_skip_ws(p + 1, end);
            if (p >= end || !(p = md_json_scan_value(p, end, &v)))
                return MD_DERR_SYNTAX;
            int f;
            if (kesc) {
                char kb[MD_JSON_KEY_MAX];
                int m = md_json_unescape(k, klen, kb, sizeof kb);
                f = m < 0 ? -1 : lookup(kb, (size_t)m);
            } else {
                f = lookup(k, klen);
            }
            if (f >= 0)
                vals[f] = v;
            p = md_json_skip_ws(p, end);
            if (p >= end)
                return MD_DERR_SYNTAX;
            if (*p == '}') {
                p++;
                break;
            }
            if (*p != ',')
                return MD_DERR_SYNTAX;
            p = md_json_skip_ws(p + 1, end);
        }
    }
    return md_json_skip_ws(p, end) == end ? MD_JSON_TICK : MD_DERR_SYNTAX;
}

/* A name (symbol, source) into dst[cap+1]. Returns -1 if ok or absent
 * (*n = 0 then), else MD_DERR_SYMBOL. */
static inline int md_json_get_name(const md_json_val *v, char *dst, size_t cap, uint8_t *n)
{
    *n = 0;
    if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL)
        return -1;
    if (v->kind != MD_JV_STRING)
        return MD_DERR_SYMBOL;
    int m = md_json_get_str(v, dst, cap);
    if (m <= 0) /* too long, non-ASCII escape, or "" */
        return MD_DERR_SYMBOL;
    for (int i = 0; i < m; i++)
        if ((unsigned char)dst[i] < 0x21 || (unsigned char)dst[i] > 0x7e)
            return MD_DERR_SYMBOL;
    dst[m] = '\0';
    *n = (uint8_t)m;
    return -1;
}

/* A JSON true or false: 1 or 0, or -1 for anything else. true and false
 * stay MD_JV_OTHER rather than a kind of their own because the Binance
 * dialect takes any MD_JV_OTHER "data" for a wrapper it must look into;
 * the first byte tells them from objects and arrays. */
static inline int md_json_get_bool(const md_json_val *v)
{
    if (v->kind != MD_JV_OTHER)
        return -1;
    return v->p[0] == 't' ? 1 : v->p[0] == 'f' ? 0 : -1;
}

/* A decimal given as a JSON number or as a string holding one. Returns -1
 * if ok or absent (*d absent then), else MD_DERR_BAD_NUMBER. */
static inline int md_json_get_dec(const md_json_val *v, md_dec *d)
{
    *d = md_dec_absent();
    if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL)
        return -1;
    if ((v->kind == MD_JV_BARE || (v->kind == MD_JV_STRING && !v->esc)) &&
        md_dec_parse(v->p, v->n, d))
        return -1;
    return MD_DERR_BAD_NUMBER;
}

/* A non-negative integer up to max, as a number or a string of digits.
 * Returns -1 with *given = 0 if absent. */
static inline int md_json_get_uint(const md_json_val *v, uint64_t max, uint64_t *out, bool *given)
{
    *given = false;
    if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL)
        return -1;
    if (!(v->kind == MD_JV_BARE || (v->kind == MD_JV_STRING && !v->esc)) || v->n == 0)
        return MD_DERR_BAD_NUMBER;
    uint64_t x = 0;
    for (size_t i = 0; i < v->n; i++) {
        char c = v->p[i];
        if (c < '0' || c > '9')
            return MD_DERR_BAD_NUMBER; /* '-', '.', 'e': negative or not an integer */
        /* No division per digit: overflow builtins, then the range. */
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(c - '0'), &x) ||
            x > max)
            return MD_DERR_BAD_NUMBER;
    }
    *out = x;
    *given = true;
    return -1;
}

/* A fresh tick of the given type: nothing known yet, every value absent. */
static inline void md_json_tick_start(md_tick *t, int type)
{
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    for (int i = 0; i < 4; i++)
        t->v[i] = md_dec_absent();
}

static inline void md_json_reject(const md_decoder_ops *ops, md_decode_err why, const char *p,
                                  size_t n)
{
    if (ops->stats)
        ops->stats->err[why]++;
    if (ops->on_reject)
        ops->on_reject(ops->ctx, why, p, n);
}

/*
 * The line framing of every JSON dialect (md_jsonl_decode's contract in
 * md_decode.h): splits buf into lines, hands each to decode_line and acts
 * on the result. A line, its '\n' included, is at most MD_JSONL_LINE_MAX
 * bytes, so a stream caller whose buffer holds MD_JSONL_LINE_MAX bytes
 * always makes progress: once that many bytes show no '\n' the line is
 * known to be oversized.
 */
static inline size_t md_json_lines_into(const char *buf, size_t len, int final, int *skipping,
                                        const md_decoder_ops *ops, md_json_line_fn decode_line,
                                        md_tick *t)
{
    int local = 0;
    size_t pos = 0;

    if (!skipping)
        skipping = &local;
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;

        if (*skipping) {
            /* Rest of a line already counted as oversized. */
            if (!nl) {
                if (final)
                    *skipping = 0;
                return len;
            }
            *skipping = 0;
            pos += n + 1;
            continue;
        }
        if (!nl && !final) {
            if (n < MD_JSONL_LINE_MAX)
                return pos;
            md_json_reject(ops, MD_DERR_OVERSIZED, line, n);
            *skipping = 1;
            return len;
        }
        if (n >= MD_JSONL_LINE_MAX) {
            md_json_reject(ops, MD_DERR_OVERSIZED, line, n);
        } else {
            int r = decode_line(line, n, t);
            if (r == MD_JSON_TICK) {
                if (ops->stats)
                    ops->stats->ok++;
                ops->on_tick(ops->ctx, t);
            } else if (r == MD_JSON_SKIPPED) {
                if (ops->stats)
                    ops->stats->skipped++;
            } else if (r >= 0) {
                md_json_reject(ops, (md_decode_err)r, line, n);
            }
        }
        pos += n + (nl != NULL);
    }
    return pos;
}

/* md_json_lines_into with room for price ticks only. The storage is the
 * caller's so that dialects without account messages keep a frame small
 * enough for gcc to go on inlining all of this (an md_acct here cost every
 * Binance line 6 instructions). */
static inline size_t md_json_lines(const char *buf, size_t len, int final, int *skipping,
                                   const md_decoder_ops *ops, md_json_line_fn decode_line)
{
    md_tick t;
    return md_json_lines_into(buf, len, final, skipping, ops, decode_line, &t);
}

#endif
