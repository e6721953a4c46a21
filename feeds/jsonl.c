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
    JF_PRICE_COUNT, /* the keys of price ticks (and the keys they share) end here */
    /* Account messages only (lookup_acct_key). */
    JF_ACCOUNT = JF_PRICE_COUNT,
    JF_ORDER_ID,
    JF_ID,
    JF_NET_POS,
    JF_AVG_PRICE,
    JF_SIDE,
    JF_QTY,
    JF_STATUS,
    JF_CASH,
    JF_REALIZED,
    JF_UNREALIZED,
    JF_ACTIVE,
    JF_COUNT
};

/* The keys only account messages use, asked only for keys lookup_key
 * does not know: price lines, with their few keys, never get here. */
__attribute__((noinline)) static int lookup_acct_key(const char *k, size_t n)
{
    switch (n) {
    case 2: return memcmp(k, "id", 2) == 0 ? JF_ID : -1;
    case 3: return memcmp(k, "qty", 3) == 0 ? JF_QTY : -1;
    case 4:
        if (memcmp(k, "side", 4) == 0) return JF_SIDE;
        if (memcmp(k, "cash", 4) == 0) return JF_CASH;
        return -1;
    case 6:
        if (memcmp(k, "status", 6) == 0) return JF_STATUS;
        if (memcmp(k, "active", 6) == 0) return JF_ACTIVE;
        return -1;
    case 7:
        if (memcmp(k, "account", 7) == 0) return JF_ACCOUNT;
        if (memcmp(k, "net_pos", 7) == 0) return JF_NET_POS;
        return -1;
    case 8: return memcmp(k, "order_id", 8) == 0 ? JF_ORDER_ID : -1;
    case 9: return memcmp(k, "avg_price", 9) == 0 ? JF_AVG_PRICE : -1;
    case 12: return memcmp(k, "realized_pnl", 12) == 0 ? JF_REALIZED : -1;
    case 14: return memcmp(k, "unrealized_pnl", 14) == 0 ? JF_UNREALIZED : -1;
    default: return -1;
    }
}

static int lookup_key(const char *k, size_t n)
{
    /* Dispatch on length, then compare fixed-size: the compiler inlines
     * each memcmp into one or two loads, where a loop over the table cost
     * a libc call per known key and per unknown key. The account keys are
     * a table of their own behind the misses: merged into this switch
     * they cost a quote line 21 instructions. */
    switch (n) {
    case 2: return memcmp(k, "ts", 2) == 0 ? JF_TS : lookup_acct_key(k, n);
    case 3:
        if (memcmp(k, "bid", 3) == 0) return JF_BID;
        if (memcmp(k, "ask", 3) == 0) return JF_ASK;
        if (memcmp(k, "seq", 3) == 0) return JF_SEQ;
        return lookup_acct_key(k, n);
    case 4:
        if (memcmp(k, "type", 4) == 0) return JF_TYPE;
        if (memcmp(k, "size", 4) == 0) return JF_SIZE;
        return lookup_acct_key(k, n);
    case 5: return memcmp(k, "price", 5) == 0 ? JF_PRICE : -1;
    case 6:
        if (memcmp(k, "symbol", 6) == 0) return JF_SYMBOL;
        if (memcmp(k, "source", 6) == 0) return JF_SOURCE;
        return lookup_acct_key(k, n);
    case 8:
        if (memcmp(k, "bid_size", 8) == 0) return JF_BID_SIZE;
        if (memcmp(k, "ask_size", 8) == 0) return JF_ASK_SIZE;
        return lookup_acct_key(k, n);
    case 9: return memcmp(k, "origin_ns", 9) == 0 ? JF_ORIGIN : lookup_acct_key(k, n);
    default: return lookup_acct_key(k, n);
    }
}

/* jsonl_type's result for an account type: negative like a drop reason
 * (-reason - 1), so that the price path tests for both at once, but below
 * all of them. Its own inverse. */
#define JSONL_ACCT(type) (-64 - (type))

/* A price tick type, JSONL_ACCT(an account type), or -reason - 1. */
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
    if (IS("position"))
        return JSONL_ACCT(MD_TICK_POSITION);
    if (IS("order"))
        return JSONL_ACCT(MD_TICK_ORDER);
    if (IS("balance"))
        return JSONL_ACCT(MD_TICK_BALANCE);
    if (IS("account"))
        return JSONL_ACCT(MD_TICK_ACCOUNT);
#undef IS
    return -MD_DERR_UNKNOWN_TYPE - 1;
}

/*
 * The account path below reaches json.h's getters only through these
 * out-of-line wrappers, one call site each. Called directly from the dozen
 * places an account message needs them, they stopped being worth inlining
 * to gcc, and the price path, which shares them, paid for the calls: 10 to
 * 30 instructions a line.
 */

/* ts, seq and origin_ns into *t: -1 if ok, else the reason. Forced inline
 * into the price path (a call there costs more than the body); the account
 * path reaches it through the out-of-line wrapper below. */
__attribute__((always_inline)) static inline int jsonl_stamps(const md_json_val *vals,
                                                              md_tick *t)
{
    uint64_t u;
    bool given;
    int err;
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
    return -1;
}

__attribute__((noinline)) static int acct_stamps(const md_json_val *vals, md_tick *t)
{
    return jsonl_stamps(vals, t);
}

__attribute__((noinline)) static int acct_dec(const md_json_val *v, md_dec *d)
{
    return md_json_get_dec(v, d);
}

/* A name by the symbol rules, up to cap bytes: -1 if ok or absent (*n = 0
 * then), else why (MD_DERR_SYMBOL for symbols and sources, MD_DERR_ID for
 * accounts and ids). */
__attribute__((noinline)) static int acct_name(const md_json_val *v, char *dst, size_t cap,
                                               uint8_t *n, md_decode_err why)
{
    return md_json_get_name(v, dst, cap, n) >= 0 ? (int)why : -1;
}

/* A word field into *out: base plus the word's index in words[], or
 * absent_val when the field is absent or null. -1 if ok, else
 * MD_DERR_BAD_VALUE (not a string, or a word not in the list). */
__attribute__((noinline)) static int acct_word(const md_json_val *v, const char *const *words,
                                               int nwords, int base, int absent_val, uint8_t *out)
{
    char wb[MD_JSON_KEY_MAX];
    if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL) {
        *out = (uint8_t)absent_val;
        return -1;
    }
    int n = md_json_get_str(v, wb, sizeof wb);
    for (int i = 0; n > 0 && i < nwords; i++) {
        if ((size_t)n == strlen(words[i]) && memcmp(wb, words[i], (size_t)n) == 0) {
            *out = (uint8_t)(base + i);
            return -1;
        }
    }
    return MD_DERR_BAD_VALUE;
}

/*
 * An account message (position, order, balance, account) into *a.
 * Checks run in this order, the first failure naming the reason: account
 * (absent: missing_field, bad: id); symbol (position, order) and source
 * (symbol); order_id or id (id; an order without order_id: missing_field);
 * ts, seq, origin_ns (bad_number); side, status (bad_value; an order
 * without status: missing_field); the decimals (bad_number); their presence
 * (missing_field); qty (negative); active (bad_value).
 *
 * Out of line and cold: account lines are rare next to prices, and this
 * way the price path compiles to the code it had before they existed.
 */
__attribute__((noinline, cold)) static int jsonl_account(const md_json_val *vals, int type,
                                                         md_acct *a)
{
    static const char *const sides[] = {"buy", "sell"};
    /* Same order as md_order_status from WORKING on; "canceled", the
     * American spelling some venues send, last and mapped below. */
    static const char *const statuses[] = {"working", "filled", "cancelled", "rejected",
                                           "canceled"};
    md_tick *t = &a->t;
    int err;

    /* The whole record, not only the tick: unused bytes of the names stay
     * zero, so that consumers may hash or compare records whole. */
    memset(a, 0, sizeof *a);
    t->type = (uint8_t)type;
    for (int i = 0; i < 4; i++)
        t->v[i] = md_dec_absent();

    err = acct_name(&vals[JF_ACCOUNT], a->account, MD_ACCOUNT_MAX, &a->acct_len, MD_DERR_ID);
    if (err >= 0)
        return err;
    if (a->acct_len == 0)
        return MD_DERR_MISSING_FIELD;

    /* Balances and accounts belong to no instrument: a symbol there is
     * ignored like any key the type does not use. */
    if (type == MD_TICK_POSITION || type == MD_TICK_ORDER) {
        err = acct_name(&vals[JF_SYMBOL], t->symbol, MD_SYMBOL_MAX, &t->sym_len, MD_DERR_SYMBOL);
        if (err >= 0)
            return err;
        if (t->sym_len == 0 && type == MD_TICK_POSITION)
            return MD_DERR_MISSING_FIELD;
        if (t->sym_len == 1 && t->symbol[0] == '*')
            return MD_DERR_SYMBOL;
    }
    err = acct_name(&vals[JF_SOURCE], t->source, MD_SOURCE_MAX, &t->src_len, MD_DERR_SYMBOL);
    if (err >= 0)
        return err;

    if (type == MD_TICK_ORDER || type == MD_TICK_ACCOUNT) {
        const md_json_val *ref = &vals[type == MD_TICK_ORDER ? JF_ORDER_ID : JF_ID];
        if ((err = acct_name(ref, a->ref, MD_REF_MAX, &a->ref_len, MD_DERR_ID)) >= 0)
            return err;
        if (a->ref_len == 0 && type == MD_TICK_ORDER)
            return MD_DERR_MISSING_FIELD;
    }

    if ((err = acct_stamps(vals, t)) >= 0)
        return err;

    switch (type) {
    case MD_TICK_POSITION:
        if ((err = acct_dec(&vals[JF_NET_POS], &t->v[MD_P_NET_POS])) >= 0 ||
            (err = acct_dec(&vals[JF_AVG_PRICE], &t->v[MD_P_AVG_PRICE])) >= 0)
            return err;
        /* 0 is a position too (flat); only no value at all is missing. */
        if (!md_dec_present(t->v[MD_P_NET_POS]))
            return MD_DERR_MISSING_FIELD;
        break;
    case MD_TICK_ORDER:
        if ((err = acct_word(&vals[JF_SIDE], sides, 2, MD_SIDE_BUY, MD_SIDE_NONE, &a->side)) >= 0 ||
            (err = acct_word(&vals[JF_STATUS], statuses, 5, MD_ORDER_WORKING, MD_ORDER_NONE,
                             &a->status)) >= 0)
            return err;
        if (a->status == MD_ORDER_NONE)
            return MD_DERR_MISSING_FIELD;
        if (a->status > MD_ORDER_REJECTED) /* "canceled" */
            a->status = MD_ORDER_CANCELLED;
        if ((err = acct_dec(&vals[JF_QTY], &t->v[MD_O_QTY])) >= 0 ||
            (err = acct_dec(&vals[JF_PRICE], &t->v[MD_O_PRICE])) >= 0)
            return err;
        if (md_dec_present(t->v[MD_O_QTY]) && t->v[MD_O_QTY].mant < 0)
            return MD_DERR_NEGATIVE;
        break;
    case MD_TICK_BALANCE: {
        static const uint8_t bf[3] = {JF_CASH, JF_REALIZED, JF_UNREALIZED};
        for (int i = 0; i < 3; i++)
            if ((err = acct_dec(&vals[bf[i]], &t->v[i])) >= 0)
                return err;
        if (!md_dec_present(t->v[MD_B_CASH]) && !md_dec_present(t->v[MD_B_REALIZED]) &&
            !md_dec_present(t->v[MD_B_UNREALIZED]))
            return MD_DERR_MISSING_FIELD;
        break;
    }
    default: { /* MD_TICK_ACCOUNT */
        const md_json_val *v = &vals[JF_ACTIVE];
        if (v->kind == MD_JV_ABSENT || v->kind == MD_JV_NULL) {
            a->active = MD_ACTIVE_UNKNOWN;
        } else {
            int b = md_json_get_bool(v);
            if (b < 0)
                return MD_DERR_BAD_VALUE;
            a->active = b ? MD_ACTIVE_YES : MD_ACTIVE_NO;
        }
        break;
    }
    }
    return MD_JSON_TICK;
}

/* Decodes one line into *t (an md_json_line_fn): MD_JSON_TICK,
 * MD_JSON_BLANK, or the reason to drop it. */
static int jsonl_line(const char *line, size_t n, md_tick *t)
{
    md_json_val vals[JF_COUNT];
    bool all = false;
    int err;

    /* Only the price keys' slots are cleared first: clearing all of them
     * cost a quote line 36 instructions. The account keys' slots may then
     * hold leftovers, so an account line, once recognised, is scanned
     * again with every slot cleared. The second scan jumps back here
     * rather than calling the scanner from a second place: gcc inlines it
     * (with lookup_key) only while it has a single call site, and a shared
     * out-of-line scanner cost a quote line 70 instructions. */
    memset(vals, 0, JF_PRICE_COUNT * sizeof vals[0]);
rescan:
    if ((err = md_json_scan_object(line, line + n, vals, lookup_key)) != MD_JSON_TICK)
        return err;
    int type = jsonl_type(&vals[JF_TYPE]);
    if (__builtin_expect(type < 0, 0)) {
        if (type > JSONL_ACCT(0))
            return -type - 1;
        if (!all) {
            all = true;
            memset(vals, 0, sizeof vals);
            goto rescan;
        }
        return jsonl_account(vals, JSONL_ACCT(type), (md_acct *)t);
    }

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

    if ((err = jsonl_stamps(vals, t)) >= 0)
        return err;

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
    md_acct a; /* jsonl_line's output: a.t for prices, all of it for accounts */
    return md_json_lines_into(buf, len, final, skipping, ops, jsonl_line, &a.t);
}
