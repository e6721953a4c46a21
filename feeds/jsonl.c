/*
 * jsonl native dialect decoder (docs/protocol.md, "jsonl native dialect").
 *
 * Why a hand-written scanner instead of a JSON library: this runs once per
 * tick on the hot path, and every general-purpose C JSON library we could
 * take from Debian (cJSON, jansson, json-c) builds a heap tree per document
 * and converts numbers to double. We need neither: a line is one flat object
 * of which we want at most eleven keys, and numbers must stay exact decimal
 * text for md_dec_parse. So the scanner makes one pass over the line,
 * records where each interesting value sits (a pointer and a length into
 * the line; duplicate keys simply overwrite, so the last one wins), skips
 * everything else structurally, and allocates nothing.
 *
 * What is validated: the object syntax, strings (escapes, no raw control
 * characters), bracket nesting of skipped values (depth-limited) and every
 * value we use. What is not: the contents of values we ignore beyond their
 * structure (a bareword there is only required to be made of number/literal
 * characters), and UTF-8 well-formedness of ignored strings.
 */
#include <stdbool.h>
#include <string.h>

#include "md_decode.h"

#define JSONL_DEPTH_MAX 32 /* nesting allowed inside ignored values */
#define JSONL_KEY_MAX 16   /* longest key we would recognise, with escapes undone */

enum jf {
    JF_TYPE,
    JF_SYMBOL,
    JF_SOURCE,
    JF_BID,
    JF_ASK,
    JF_BID_SIZE,
    JF_ASK_SIZE,
    JF_PRICE,
    JF_SIZE,
    JF_TS,
    JF_SEQ,
    JF_ORIGIN,
    JF_COUNT
};


enum jkind {
    JV_ABSENT = 0, /* key not in the line */
    JV_STRING,     /* p/n: the bytes between the quotes, still escaped if esc */
    JV_BARE,       /* number or unknown bareword (NaN, Infinity...) */
    JV_NULL,
    JV_OTHER,      /* true, false, object, array */
};

typedef struct jval {
    const char *p;
    size_t n;
    uint8_t kind;
    uint8_t esc;
} jval;

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static inline int hexval(char c)
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
static const char *scan_string(const char *p, const char *end, uint8_t *esc)
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
                    if (hexval(p[i]) < 0)
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
static int unescape(const char *s, size_t n, char *dst, size_t cap)
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
                int v = (hexval(s[i + 1]) << 12) | (hexval(s[i + 2]) << 8) |
                        (hexval(s[i + 3]) << 4) | hexval(s[i + 4]);
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

/* p at '{' or '['. Skips the whole value, checking that brackets match
 * (one bit per level says which kind is open). */
static const char *skip_nested(const char *p, const char *end)
{
    uint64_t open_arr = 0;
    int depth = 0;
    uint8_t esc;

    while (p < end) {
        char c = *p;
        if (c == '{' || c == '[') {
            if (depth == JSONL_DEPTH_MAX)
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
            if (!(p = scan_string(p, end, &esc)))
                return NULL;
        } else {
            p++;
        }
    }
    return NULL;
}

static inline bool is_bare(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '+' || c == '.';
}

/* Parses one value at p into *v. Returns the byte after it, or NULL. */
static const char *scan_value(const char *p, const char *end, jval *v)
{
    const char *q;
    v->esc = 0;
    if (*p == '"') {
        if (!(q = scan_string(p, end, &v->esc)))
            return NULL;
        v->kind = JV_STRING;
        v->p = p + 1;
        v->n = (size_t)(q - p - 2);
        return q;
    }
    if (*p == '{' || *p == '[') {
        if (!(q = skip_nested(p, end)))
            return NULL;
        v->kind = JV_OTHER;
        v->p = p;
        v->n = (size_t)(q - p);
        return q;
    }
    for (q = p; q < end && is_bare(*q); q++)
        ;
    if (q == p)
        return NULL;
    v->p = p;
    v->n = (size_t)(q - p);
    if (v->n == 4 && memcmp(p, "null", 4) == 0)
        v->kind = JV_NULL;
    else if ((v->n == 4 && memcmp(p, "true", 4) == 0) || (v->n == 5 && memcmp(p, "false", 5) == 0))
        v->kind = JV_OTHER;
    else
        v->kind = JV_BARE;
    return q;
}

static int lookup_key(const char *k, size_t n, uint8_t esc)
{
    char kb[JSONL_KEY_MAX];
    if (esc) {
        int m = unescape(k, n, kb, sizeof kb);
        if (m < 0)
            return -1;
        k = kb;
        n = (size_t)m;
    }
    /* Dispatch on length, then compare fixed-size: the compiler inlines
     * each memcmp into one or two loads, where a loop over the table cost
     * a libc call per known key and per unknown key. */
    switch (n) {
    case 2: return memcmp(k, "ts", 2) == 0 ? JF_TS : -1;
    case 3:
        if (memcmp(k, "bid", 3) == 0) return JF_BID;
        if (memcmp(k, "ask", 3) == 0) return JF_ASK;
        if (memcmp(k, "seq", 3) == 0) return JF_SEQ;
        return -1;
    case 4:
        if (memcmp(k, "type", 4) == 0) return JF_TYPE;
        if (memcmp(k, "size", 4) == 0) return JF_SIZE;
        return -1;
    case 5: return memcmp(k, "price", 5) == 0 ? JF_PRICE : -1;
    case 6:
        if (memcmp(k, "symbol", 6) == 0) return JF_SYMBOL;
        if (memcmp(k, "source", 6) == 0) return JF_SOURCE;
        return -1;
    case 8:
        if (memcmp(k, "bid_size", 8) == 0) return JF_BID_SIZE;
        if (memcmp(k, "ask_size", 8) == 0) return JF_ASK_SIZE;
        return -1;
    case 9: return memcmp(k, "origin_ns", 9) == 0 ? JF_ORIGIN : -1;
    default: return -1;
    }
}

/* Scans the object on one line into vals[]. Returns -1 if ok, -2 for a
 * blank line, else MD_DERR_SYNTAX. */
static int scan_object(const char *p, const char *end, jval *vals)
{
    const char *k;
    uint8_t kesc;
    jval v;

    p = skip_ws(p, end);
    if (p == end)
        return -2;
    if (*p != '{')
        return MD_DERR_SYNTAX;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p != '"')
                return MD_DERR_SYNTAX;
            k = p + 1;
            if (!(p = scan_string(p, end, &kesc)))
                return MD_DERR_SYNTAX;
            size_t klen = (size_t)(p - 1 - k);
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return MD_DERR_SYNTAX;
            p = skip_ws(p + 1, end);
            if (p >= end || !(p = scan_value(p, end, &v)))
                return MD_DERR_SYNTAX;
            int f = lookup_key(k, klen, kesc);
            if (f >= 0)
                vals[f] = v;
            p = skip_ws(p, end);
            if (p >= end)
                return MD_DERR_SYNTAX;
            if (*p == '}') {
                p++;
                break;
            }
            if (*p != ',')
                return MD_DERR_SYNTAX;
            p = skip_ws(p + 1, end);
        }
    }
    return skip_ws(p, end) == end ? -1 : MD_DERR_SYNTAX;
}

/* A name (symbol, source) into dst[cap+1]. Returns -1 if ok or absent
 * (*n = 0 then), else MD_DERR_SYMBOL. */
static int get_name(const jval *v, char *dst, size_t cap, uint8_t *n)
{
    *n = 0;
    if (v->kind == JV_ABSENT || v->kind == JV_NULL)
        return -1;
    if (v->kind != JV_STRING)
        return MD_DERR_SYMBOL;
    int m = v->esc ? unescape(v->p, v->n, dst, cap) : (v->n <= cap ? (memcpy(dst, v->p, v->n), (int)v->n) : -1);
    if (m <= 0) /* too long, non-ASCII escape, or "" */
        return MD_DERR_SYMBOL;
    for (int i = 0; i < m; i++)
        if ((unsigned char)dst[i] < 0x21 || (unsigned char)dst[i] > 0x7e)
            return MD_DERR_SYMBOL;
    dst[m] = '\0';
    *n = (uint8_t)m;
    return -1;
}

/* A decimal given as a JSON number or as a string holding one. */
static int get_dec(const jval *v, md_dec *d)
{
    *d = md_dec_absent();
    if (v->kind == JV_ABSENT || v->kind == JV_NULL)
        return -1;
    if ((v->kind == JV_BARE || (v->kind == JV_STRING && !v->esc)) && md_dec_parse(v->p, v->n, d))
        return -1;
    return MD_DERR_BAD_NUMBER;
}

/* A non-negative integer (ts, seq), as a number or a string of digits.
 * Returns -1 with *given = 0 if absent. */
static int get_uint(const jval *v, uint64_t max, uint64_t *out, bool *given)
{
    *given = false;
    if (v->kind == JV_ABSENT || v->kind == JV_NULL)
        return -1;
    if (!(v->kind == JV_BARE || (v->kind == JV_STRING && !v->esc)) || v->n == 0)
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

static int jsonl_type(const jval *v)
{
    char tb[JSONL_KEY_MAX];
    if (v->kind == JV_ABSENT || v->kind == JV_NULL)
        return -MD_DERR_MISSING_FIELD - 1;
    if (v->kind != JV_STRING)
        return -MD_DERR_UNKNOWN_TYPE - 1;
    int n = v->esc ? unescape(v->p, v->n, tb, sizeof tb)
                   : (v->n <= sizeof tb ? (memcpy(tb, v->p, v->n), (int)v->n) : -1);
#define IS(s) (n == (int)sizeof(s) - 1 && memcmp(tb, s, sizeof(s) - 1) == 0)
    if (IS("quote"))
        return MD_TICK_QUOTE;
    if (IS("trade"))
        return MD_TICK_TRADE;
    if (IS("heartbeat"))
        return MD_TICK_HEARTBEAT;
    if (IS("reset"))
        return MD_TICK_RESET;
#undef IS
    /* position, order, balance, account: the account classes are not decoded
     * yet (issue #5); until then they are dropped like any unknown type. */
    return -MD_DERR_UNKNOWN_TYPE - 1;
}

/* Decodes one line into *t. Returns -1 for a tick, -2 for a blank line,
 * else the reason to drop it. */
static int jsonl_line(const char *line, size_t n, md_tick *t)
{
    jval vals[JF_COUNT];
    int err;

    memset(vals, 0, sizeof vals);
    if ((err = scan_object(line, line + n, vals)) != -1)
        return err;
    int type = jsonl_type(&vals[JF_TYPE]);
    if (type < 0)
        return -type - 1;

    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    for (int i = 0; i < 4; i++)
        t->v[i] = md_dec_absent();

    if ((err = get_name(&vals[JF_SYMBOL], t->symbol, MD_SYMBOL_MAX, &t->sym_len)) >= 0)
        return err;
    if ((err = get_name(&vals[JF_SOURCE], t->source, MD_SOURCE_MAX, &t->src_len)) >= 0)
        return err;
    if (type == MD_TICK_HEARTBEAT) {
        if (t->src_len == 0)
            return MD_DERR_MISSING_FIELD;
    } else {
        if (vals[JF_SYMBOL].kind == JV_ABSENT || vals[JF_SYMBOL].kind == JV_NULL)
            return MD_DERR_MISSING_FIELD;
        /* "*" addresses every symbol and only makes sense for a reset. */
        if (type != MD_TICK_RESET && t->sym_len == 1 && t->symbol[0] == '*')
            return MD_DERR_SYMBOL;
    }

    uint64_t u;
    bool given;
    if ((err = get_uint(&vals[JF_TS], INT64_MAX, &u, &given)) >= 0)
        return err;
    if (given) {
        t->ts_ns = (int64_t)u;
        t->flags |= MD_TICK_F_TS;
    }
    if ((err = get_uint(&vals[JF_SEQ], UINT64_MAX, &u, &given)) >= 0)
        return err;
    if (given) {
        t->seq = u;
        t->flags |= MD_TICK_F_SEQ;
    }
    if ((err = get_uint(&vals[JF_ORIGIN], INT64_MAX, &u, &given)) >= 0)
        return err;
    if (given)
        t->origin_ns = (int64_t)u;

    if (type == MD_TICK_QUOTE) {
        static const uint8_t qf[4] = {JF_BID, JF_ASK, JF_BID_SIZE, JF_ASK_SIZE};
        for (int i = 0; i < 4; i++)
            if ((err = get_dec(&vals[qf[i]], &t->v[i])) >= 0)
                return err;
        if (!md_dec_present(t->v[MD_Q_BID]) && !md_dec_present(t->v[MD_Q_ASK]))
            return MD_DERR_MISSING_FIELD;
        if ((md_dec_present(t->v[MD_Q_BID_SIZE]) && t->v[MD_Q_BID_SIZE].mant < 0) ||
            (md_dec_present(t->v[MD_Q_ASK_SIZE]) && t->v[MD_Q_ASK_SIZE].mant < 0))
            return MD_DERR_NEGATIVE;
    } else if (type == MD_TICK_TRADE) {
        if ((err = get_dec(&vals[JF_PRICE], &t->v[MD_T_PRICE])) >= 0 ||
            (err = get_dec(&vals[JF_SIZE], &t->v[MD_T_SIZE])) >= 0)
            return err;
        if (!md_dec_present(t->v[MD_T_PRICE]) || !md_dec_present(t->v[MD_T_SIZE]))
            return MD_DERR_MISSING_FIELD;
        if (t->v[MD_T_SIZE].mant < 0)
            return MD_DERR_NEGATIVE;
    }
    return -1;
}

static void jsonl_reject(const md_decoder_ops *ops, md_decode_err why, const char *p, size_t n)
{
    if (ops->stats)
        ops->stats->err[why]++;
    if (ops->on_reject)
        ops->on_reject(ops->ctx, why, p, n);
}

/*
 * A line, its '\n' included, is at most MD_JSONL_LINE_MAX bytes, so a stream
 * caller whose buffer holds MD_JSONL_LINE_MAX bytes always makes progress:
 * once that many bytes show no '\n' the line is known to be oversized.
 */
size_t md_jsonl_decode(const char *buf, size_t len, int final, int *skipping,
                       const md_decoder_ops *ops)
{
    int local = 0;
    size_t pos = 0;
    md_tick t;

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
            jsonl_reject(ops, MD_DERR_OVERSIZED, line, n);
            *skipping = 1;
            return len;
        }
        if (n >= MD_JSONL_LINE_MAX) {
            jsonl_reject(ops, MD_DERR_OVERSIZED, line, n);
        } else {
            int r = jsonl_line(line, n, &t);
            if (r == -1) {
                if (ops->stats)
                    ops->stats->ok++;
                ops->on_tick(ops->ctx, &t);
            } else if (r >= 0) {
                jsonl_reject(ops, (md_decode_err)r, line, n);
            }
        }
        pos += n + (nl != NULL);
    }
    return pos;
}
