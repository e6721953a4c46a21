/*
 * Binance dialect decoder (docs/protocol.md, "Binance dialect"): raw public
 * WebSocket stream payloads as captured from the exchange, one per line,
 * alone or inside the combined-stream wrapper {"stream":..,"data":{..}}.
 *
 * bookTicker (spot: no "e"; futures: "e":"bookTicker") becomes a quote,
 * trade and aggTrade become trades. Everything else Binance sends on a
 * public stream (depth, kline, tickers, snapshots, subscription replies) is
 * well-formed but of no use to a price key: it is counted as skipped, not
 * as an error, so a user can subscribe to a combined stream without the
 * error counters filling up.
 *
 * Duplicates: each message kind gets its own fixed source name and its
 * exchange id as seq (bookTicker u, trade t, aggTrade a). The coalescer
 * (md_state_apply_hashed in src/state.c) tracks the last seq per (symbol,
 * source) and refuses a tick whose seq is not strictly above it, before
 * touching Volume/High/Low. So a message seen again, from a second
 * connection to the same stream or a replay, is dropped as a duplicate and
 * a trade is never counted twice. The source must not depend on the
 * connection for that to hold, hence fixed names rather than none (none
 * would make each connection its own source).
 */
#include <stdbool.h>
#include <string.h>

#include "json.h"
#include "md_decode.h"

#define BN_SRC_BOOK "binance.bookTicker"
#define BN_SRC_TRADE "binance.trade"
#define BN_SRC_AGG "binance.aggTrade"

/* Binance times are epoch milliseconds; larger ones would not fit ts_ns. */
#define BN_MS_MAX ((uint64_t)INT64_MAX / 1000000u)

enum bf {
    BF_EVENT,   /* e: event type */
    BF_ETIME,   /* E: event time, ms */
    BF_TTIME,   /* T: trade / transaction time, ms */
    BF_SYMBOL,  /* s */
    BF_UPDATE,  /* u: bookTicker update id */
    BF_BID,     /* b */
    BF_BID_QTY, /* B */
    BF_A,       /* a: ask price (bookTicker) or aggregate trade id (aggTrade) */
    BF_ASK_QTY, /* A */
    BF_PRICE,   /* p */
    BF_QTY,     /* q */
    BF_TRADE_ID,/* t */
    BF_DATA,    /* data: the payload of the combined-stream wrapper */
    BF_COUNT
};

/* Binance keys are case-sensitive single letters (b and B differ). */
static int binance_key(const char *k, size_t n)
{
    if (n == 4)
        return memcmp(k, "data", 4) == 0 ? BF_DATA : -1;
    if (n != 1)
        return -1;
    switch (k[0]) {
    case 'e': return BF_EVENT;
    case 'E': return BF_ETIME;
    case 'T': return BF_TTIME;
    case 's': return BF_SYMBOL;
    case 'u': return BF_UPDATE;
    case 'b': return BF_BID;
    case 'B': return BF_BID_QTY;
    case 'a': return BF_A;
    case 'A': return BF_ASK_QTY;
    case 'p': return BF_PRICE;
    case 'q': return BF_QTY;
    case 't': return BF_TRADE_ID;
    default: return -1;
    }
}

enum bn_kind { BN_BOOK, BN_TRADE, BN_AGG };

/* Which message this is: a bn_kind, MD_JSON_SKIPPED, or a drop reason
 * encoded as -reason - 4 (below every MD_JSON_* value). */
static int binance_kind(const md_json_val *v)
{
    char eb[MD_JSON_KEY_MAX];
    const md_json_val *e = &v[BF_EVENT];

    if (e->kind == MD_JV_ABSENT || e->kind == MD_JV_NULL)
        /* Only spot bookTicker comes without "e"; it is the one with "u"
         * (partial depth snapshots carry lastUpdateId instead). */
        return v[BF_UPDATE].kind != MD_JV_ABSENT ? BN_BOOK : MD_JSON_SKIPPED;
    if (e->kind != MD_JV_STRING)
        return -MD_DERR_UNKNOWN_TYPE - 4;
    int n = md_json_get_str(e, eb, sizeof eb);
#define IS(s) (n == (int)sizeof(s) - 1 && memcmp(eb, s, sizeof(s) - 1) == 0)
    if (IS("bookTicker"))
        return BN_BOOK;
    if (IS("trade"))
        return BN_TRADE;
    if (IS("aggTrade"))
        return BN_AGG;
#undef IS
    return MD_JSON_SKIPPED;
}

/* A decimal the message must carry: -1 if ok, else the reason. */
static int need_dec(const md_json_val *v, md_dec *d)
{
    int err = md_json_get_dec(v, d);
    if (err >= 0)
        return err;
    return md_dec_present(*d) ? -1 : MD_DERR_MISSING_FIELD;
}

static bool negative(md_dec d) { return md_dec_present(d) && d.mant < 0; }

/* The object in [p, end) into *t: an md_json_line_fn result. nested is set
 * for the payload of a wrapper, which is not unwrapped again. */
static int binance_object(const char *p, const char *end, md_tick *t, bool nested)
{
    md_json_val v[BF_COUNT];
    int err;

    memset(v, 0, sizeof v);
    if ((err = md_json_scan_object(p, end, v, binance_key)) != MD_JSON_TICK)
        return err;
    if (!nested && v[BF_DATA].kind == MD_JV_OTHER) {
        /* Array payloads (!ticker@arr and the like) are all streams we
         * skip; only an object can be one we use. */
        if (v[BF_DATA].p[0] != '{')
            return MD_JSON_SKIPPED;
        return binance_object(v[BF_DATA].p, v[BF_DATA].p + v[BF_DATA].n, t, true);
    }
    int kind = binance_kind(v);
    if (kind == MD_JSON_SKIPPED)
        return kind;
    if (kind < 0)
        return -kind - 4;

    md_json_tick_start(t, kind == BN_BOOK ? MD_TICK_QUOTE : MD_TICK_TRADE);
    static const char *const src[] = {[BN_BOOK] = BN_SRC_BOOK, [BN_TRADE] = BN_SRC_TRADE,
                                      [BN_AGG] = BN_SRC_AGG};
    t->src_len = (uint8_t)strlen(src[kind]);
    memcpy(t->source, src[kind], t->src_len);

    if ((err = md_json_get_name(&v[BF_SYMBOL], t->symbol, MD_SYMBOL_MAX, &t->sym_len)) >= 0)
        return err;
    if (t->sym_len == 0)
        return MD_DERR_MISSING_FIELD;
    if (t->sym_len == 1 && t->symbol[0] == '*') /* reserved for resets */
        return MD_DERR_SYMBOL;

    /* Exchange time: T (trade or transaction time) is closer to the event
     * than E (when the message was sent); both are checked if given. */
    uint64_t ms, u;
    bool e_given, t_given, given;
    if ((err = md_json_get_uint(&v[BF_TTIME], BN_MS_MAX, &ms, &t_given)) >= 0)
        return err;
    if ((err = md_json_get_uint(&v[BF_ETIME], BN_MS_MAX, t_given ? &u : &ms, &e_given)) >= 0)
        return err;
    if (t_given || e_given) {
        t->ts_ns = (int64_t)(ms * 1000000u);
        t->flags |= MD_TICK_F_TS;
    }

    static const uint8_t id_field[] = {[BN_BOOK] = BF_UPDATE, [BN_TRADE] = BF_TRADE_ID,
                                       [BN_AGG] = BF_A};
    if ((err = md_json_get_uint(&v[id_field[kind]], UINT64_MAX, &u, &given)) >= 0)
        return err;
    if (!given)
        return MD_DERR_MISSING_FIELD; /* without it duplicates could not be told */
    t->seq = u;
    t->flags |= MD_TICK_F_SEQ;

    if (kind == BN_BOOK) {
        if ((err = need_dec(&v[BF_BID], &t->v[MD_Q_BID])) >= 0 ||
            (err = need_dec(&v[BF_A], &t->v[MD_Q_ASK])) >= 0 ||
            (err = md_json_get_dec(&v[BF_BID_QTY], &t->v[MD_Q_BID_SIZE])) >= 0 ||
            (err = md_json_get_dec(&v[BF_ASK_QTY], &t->v[MD_Q_ASK_SIZE])) >= 0)
            return err;
        if (negative(t->v[MD_Q_BID_SIZE]) || negative(t->v[MD_Q_ASK_SIZE]))
            return MD_DERR_NEGATIVE;
    } else {
        if ((err = need_dec(&v[BF_PRICE], &t->v[MD_T_PRICE])) >= 0 ||
            (err = need_dec(&v[BF_QTY], &t->v[MD_T_SIZE])) >= 0)
            return err;
        if (negative(t->v[MD_T_SIZE]))
            return MD_DERR_NEGATIVE;
    }
    return MD_JSON_TICK;
}

static int binance_line(const char *line, size_t n, md_tick *t)
{
    return binance_object(line, line + n, t, false);
}

size_t md_binance_decode(const char *buf, size_t len, int final, int *skipping,
                         const md_decoder_ops *ops)
{
    return md_json_lines(buf, len, final, skipping, ops, binance_line);
}
