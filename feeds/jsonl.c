/*
 * jsonl native dialect decoder (docs/protocol.md, "jsonl native dialect").
 * The JSON scanning and line framing are shared with the other JSON
 * dialects in json.h; this file only knows the native keys and types.
 */
#include <stdbool.h>
#include <string.h>

#include "json.h"
#include "md_decode.h"

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

static int lookup_key(const char *k, size_t n)
{
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

static int jsonl_type(const md_json_val *v)
{
    char tb[MD_JSON_KEY_MAX];
    if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL)
        return -MD_DERR_MISSING_FIELD - 1;
    if (v->kind != MD_JV_STRING)
        return -MD_DERR_UNKNOWN_TYPE - 1;
    int n = md_json_get_str(v, tb, sizeof tb);
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

/* Decodes one line into *t (an md_json_line_fn): MD_JSON_TICK,
 * MD_JSON_BLANK, or the reason to drop it. */
static int jsonl_line(const char *line, size_t n, md_tick *t)
{
    md_json_val vals[JF_COUNT];
    int err;

    memset(vals, 0, sizeof vals);
    if ((err = md_json_scan_object(line, line + n, vals, lookup_key)) != MD_JSON_TICK)
        return err;
    int type = jsonl_type(&vals[JF_TYPE]);
    if (type < 0)
        return -type - 1;

    md_json_tick_start(t, type);

    if ((err = md_json_get_name(&vals[JF_SYMBOL], t->symbol, MD_SYMBOL_MAX, &t->sym_len)) >= 0)
        return err;
    if ((err = md_json_get_name(&vals[JF_SOURCE], t->source, MD_SOURCE_MAX, &t->src_len)) >= 0)
        return err;
    if (type == MD_TICK_HEARTBEAT) {
        if (t->src_len == 0)
            return MD_DERR_MISSING_FIELD;
    } else {
        if (vals[JF_SYMBOL].kind == MD_JV_ABSENT || vals[JF_SYMBOL].kind == MD_JV_NULL)
            return MD_DERR_MISSING_FIELD;
        /* "*" addresses every symbol and only makes sense for a reset. */
        if (type != MD_TICK_RESET && t->sym_len == 1 && t->symbol[0] == '*')
            return MD_DERR_SYMBOL;
    }

    uint64_t u;
    bool given;
    if ((err = md_json_get_uint(&vals[JF_TS], INT64_MAX, &u, &given)) >= 0)
        return err;
    if (given) {
        t->ts_ns = (int64_t)u;
        t->flags |= MD_TICK_F_TS;
    }
    if ((err = md_json_get_uint(&vals[JF_SEQ], UINT64_MAX, &u, &given)) >= 0)
        return err;
    if (given) {
        t->seq = u;
        t->flags |= MD_TICK_F_SEQ;
    }
    if ((err = md_json_get_uint(&vals[JF_ORIGIN], INT64_MAX, &u, &given)) >= 0)
        return err;
    if (given)
        t->origin_ns = (int64_t)u;

    if (type == MD_TICK_QUOTE) {
        static const uint8_t qf[4] = {JF_BID, JF_ASK, JF_BID_SIZE, JF_ASK_SIZE};
        for (int i = 0; i < 4; i++)
            if ((err = md_json_get_dec(&vals[qf[i]], &t->v[i])) >= 0)
                return err;
        if (!md_dec_present(t->v[MD_Q_BID]) && !md_dec_present(t->v[MD_Q_ASK]))
            return MD_DERR_MISSING_FIELD;
        if ((md_dec_present(t->v[MD_Q_BID_SIZE]) && t->v[MD_Q_BID_SIZE].mant < 0) ||
            (md_dec_present(t->v[MD_Q_ASK_SIZE]) && t->v[MD_Q_ASK_SIZE].mant < 0))
            return MD_DERR_NEGATIVE;
    } else if (type == MD_TICK_TRADE) {
        if ((err = md_json_get_dec(&vals[JF_PRICE], &t->v[MD_T_PRICE])) >= 0 ||
            (err = md_json_get_dec(&vals[JF_SIZE], &t->v[MD_T_SIZE])) >= 0)
            return err;
        if (!md_dec_present(t->v[MD_T_PRICE]) || !md_dec_present(t->v[MD_T_SIZE]))
            return MD_DERR_MISSING_FIELD;
        if (t->v[MD_T_SIZE].mant < 0)
            return MD_DERR_NEGATIVE;
    }
    return MD_JSON_TICK;
}

size_t md_jsonl_decode(const char *buf, size_t len, int final, int *skipping,
                       const md_decoder_ops *ops)
{
    return md_json_lines(buf, len, final, skipping, ops, jsonl_line);
}
