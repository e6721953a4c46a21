/*
 * mdcache_bin1.h: encoder for the mdcache "bin1" feed protocol, version 1.
 *
 * For feed handlers that send ticks to mdcache. Self-contained (C99, only
 * <stdint.h>, <stddef.h> and <string.h>), header-only: copy it into your
 * tree. The full specification is docs/protocol.md; in short:
 *
 *   A datagram or stream carries back-to-back frames. Little-endian, no padding.
 *
 *   off size field
 *     0   1  magic   0xB1
 *     1   1  version 1
 *     2   2  len     whole frame in bytes, header included (<= 1024)
 *     4   1  type    MDCACHE_BIN1_QUOTE ...
 *     5   1  sym_len 0..31
 *     6   1  src_len 0..31
 *     7   1  flags   MDCACHE_BIN1_F_SEQ | MDCACHE_BIN1_F_TS
 *     8   8  seq     u64, per-source sequence number
 *    16   8  ts_ns   i64, exchange time, Unix epoch nanoseconds
 *    24      symbol (sym_len bytes), source (src_len bytes), body
 *
 *   A decimal is 9 bytes: i64 mantissa, i8 exponent; value = mant * 10^exp,
 *   exp in -18..0, exp = -128 means "absent". 21000.25 is {2100025, -2}.
 *
 *   Types 1..4 carry prices (quote, trade, heartbeat, session reset);
 *   5..8 carry account state (position, order, balance, account). An
 *   account body starts with the account name (u8 length, then bytes) and,
 *   for orders and accounts, an order or account id (u8 length, bytes); the
 *   exact bodies are in docs/protocol.md and next to each encoder below.
 *
 * Every encoder writes one frame at buf and returns its length, or 0 if cap
 * is too small or an argument cannot be encoded (symbol or source longer
 * than 31 bytes, NULL symbol where one is required, NULL, empty or over-long
 * account or order id, a side, status or active value with no wire code).
 * Frames can be appended back to back into one datagram, up to your MTU.
 *
 *   unsigned char buf[1400];
 *   size_t n = 0, k;
 *   mdcache_bin1_dec bid = {2100000, -2}, ask = {2100050, -2};
 *   k = mdcache_bin1_put_quote(buf + n, sizeof buf - n, "MNQZ5", "cme-a",
 *                              17, 1, ts, 1, bid, ask,
 *                              mdcache_bin1_int(3), mdcache_bin1_int(5));
 *   if (k == 0) { flush buf[0..n) and retry }
 *   n += k;
 */
#ifndef MDCACHE_BIN1_H
#define MDCACHE_BIN1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MDCACHE_BIN1_MAGIC 0xB1u
#define MDCACHE_BIN1_VERSION 1u
#define MDCACHE_BIN1_HDR_LEN 24u
#define MDCACHE_BIN1_FRAME_MAX 1024u /* largest frame a receiver accepts */
#define MDCACHE_BIN1_NAME_MAX 31u    /* symbol and source, bytes */
#define MDCACHE_BIN1_DEC_LEN 9u      /* bytes per decimal on the wire */
#define MDCACHE_BIN1_ABSENT (-128)   /* exponent value meaning "no value" */
#define MDCACHE_BIN1_EXP_MIN (-18)

/* Frame types. Receivers skip types they do not know by len, so a sender
 * may send account frames to an mdcache that predates them: they are
 * dropped as unknown_type there, nothing else is lost. */
enum mdcache_bin1_type {
    MDCACHE_BIN1_QUOTE = 1,     /* body: bid, ask, bid_size, ask_size */
    MDCACHE_BIN1_TRADE = 2,     /* body: price, size */
    MDCACHE_BIN1_HEARTBEAT = 3, /* no body; source required */
    MDCACHE_BIN1_RESET = 4,     /* no body; symbol or "*" for all symbols */
    MDCACHE_BIN1_POSITION = 5,  /* symbol; body: account, net_pos, avg_price */
    MDCACHE_BIN1_ORDER = 6,     /* body: account, order_id, side, status, qty, price */
    MDCACHE_BIN1_BALANCE = 7,   /* body: account, cash, realized, unrealized */
    MDCACHE_BIN1_ACCOUNT = 8    /* body: account, id, active */
};

#define MDCACHE_BIN1_ACCOUNT_MAX 31u /* account name, bytes */
#define MDCACHE_BIN1_REF_MAX 63u     /* order id, account id: bytes */

/* Order side (u8). */
#define MDCACHE_BIN1_SIDE_NONE 0u
#define MDCACHE_BIN1_SIDE_BUY 1u
#define MDCACHE_BIN1_SIDE_SELL 2u

/* Order status (u8). WORKING keeps the order; the others end it. */
#define MDCACHE_BIN1_STATUS_WORKING 1u
#define MDCACHE_BIN1_STATUS_FILLED 2u
#define MDCACHE_BIN1_STATUS_CANCELLED 3u
#define MDCACHE_BIN1_STATUS_REJECTED 4u

/* Account active flag (u8). */
#define MDCACHE_BIN1_ACTIVE_UNKNOWN 0u
#define MDCACHE_BIN1_ACTIVE_NO 1u
#define MDCACHE_BIN1_ACTIVE_YES 2u

/* Header flags; receivers ignore bits they do not know. */
#define MDCACHE_BIN1_F_SEQ 0x01u /* seq is valid */
#define MDCACHE_BIN1_F_TS 0x02u  /* ts_ns is valid */
#define MDCACHE_BIN1_F_ORIGIN 0x04u /* the frame ends with an 8-byte origin_ns */
#define MDCACHE_BIN1_ORIGIN_LEN 8u

typedef struct mdcache_bin1_dec {
    int64_t mant;
    int8_t exp; /* MDCACHE_BIN1_EXP_MIN..0, or MDCACHE_BIN1_ABSENT */
} mdcache_bin1_dec;

static inline mdcache_bin1_dec mdcache_bin1_make(int64_t mant, int8_t exp)
{
    mdcache_bin1_dec d;
    d.mant = mant;
    d.exp = exp;
    return d;
}
static inline mdcache_bin1_dec mdcache_bin1_int(int64_t v) { return mdcache_bin1_make(v, 0); }
static inline mdcache_bin1_dec mdcache_bin1_absent(void)
{
    return mdcache_bin1_make(0, (int8_t)MDCACHE_BIN1_ABSENT);
}

/* ---- byte helpers: explicit little-endian, whatever the host order ---- */

static inline void mdcache_bin1_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline size_t mdcache_bin1_strlen(const char *s)
{
    return s ? strlen(s) : 0;
}

static inline unsigned char *mdcache_bin1_put_dec(unsigned char *p, mdcache_bin1_dec d)
{
    mdcache_bin1_le64(p, (uint64_t)d.mant);
    p[8] = (unsigned char)d.exp;
    return p + MDCACHE_BIN1_DEC_LEN;
}

/* Writes header and names; returns a pointer to where the body goes, or NULL
 * if the frame (body_len bytes of body) does not fit or cannot be encoded. */
static inline unsigned char *mdcache_bin1_put_head(void *buf, size_t cap, unsigned type,
                                                   const char *symbol, const char *source,
                                                   uint64_t seq, int has_seq, int64_t ts_ns,
                                                   int has_ts, size_t body_len)
{
    unsigned char *p = (unsigned char *)buf;
    size_t sl = mdcache_bin1_strlen(symbol), cl = mdcache_bin1_strlen(source);
    size_t len;

    if (sl > MDCACHE_BIN1_NAME_MAX || cl > MDCACHE_BIN1_NAME_MAX)
        return NULL;
    len = MDCACHE_BIN1_HDR_LEN + sl + cl + body_len;
    if (len > cap || len > MDCACHE_BIN1_FRAME_MAX)
        return NULL;
    p[0] = (unsigned char)MDCACHE_BIN1_MAGIC;
    p[1] = (unsigned char)MDCACHE_BIN1_VERSION;
    p[2] = (unsigned char)(len & 0xff);
    p[3] = (unsigned char)(len >> 8);
    p[4] = (unsigned char)type;
    p[5] = (unsigned char)sl;
    p[6] = (unsigned char)cl;
    p[7] = (unsigned char)((has_seq ? MDCACHE_BIN1_F_SEQ : 0u) | (has_ts ? MDCACHE_BIN1_F_TS : 0u));
    mdcache_bin1_le64(p + 8, has_seq ? seq : 0);
    mdcache_bin1_le64(p + 16, has_ts ? (uint64_t)ts_ns : 0);
    p += MDCACHE_BIN1_HDR_LEN;
    if (sl)
        memcpy(p, symbol, sl);
    p += sl;
    if (cl)
        memcpy(p, source, cl);
    return p + cl;
}

/* ---- encoders: return bytes written, 0 if it does not fit ---- */

/* Quote: at least one of bid/ask must be present (else the receiver drops
 * it); sizes must not be negative. source may be NULL. */
static inline size_t mdcache_bin1_put_quote(void *buf, size_t cap, const char *symbol,
                                            const char *source, uint64_t seq, int has_seq,
                                            int64_t ts_ns, int has_ts, mdcache_bin1_dec bid,
                                            mdcache_bin1_dec ask, mdcache_bin1_dec bid_size,
                                            mdcache_bin1_dec ask_size)
{
    unsigned char *p;
    if (!symbol)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_QUOTE, symbol, source, seq, has_seq, ts_ns,
                              has_ts, 4 * MDCACHE_BIN1_DEC_LEN);
    if (!p)
        return 0;
    p = mdcache_bin1_put_dec(p, bid);
    p = mdcache_bin1_put_dec(p, ask);
    p = mdcache_bin1_put_dec(p, bid_size);
    p = mdcache_bin1_put_dec(p, ask_size);
    return (size_t)(p - (unsigned char *)buf);
}

/* Trade: price and size are both required; size must not be negative. */
static inline size_t mdcache_bin1_put_trade(void *buf, size_t cap, const char *symbol,
                                            const char *source, uint64_t seq, int has_seq,
                                            int64_t ts_ns, int has_ts, mdcache_bin1_dec price,
                                            mdcache_bin1_dec size)
{
    unsigned char *p;
    if (!symbol)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_TRADE, symbol, source, seq, has_seq, ts_ns,
                              has_ts, 2 * MDCACHE_BIN1_DEC_LEN);
    if (!p)
        return 0;
    p = mdcache_bin1_put_dec(p, price);
    p = mdcache_bin1_put_dec(p, size);
    return (size_t)(p - (unsigned char *)buf);
}

/* Heartbeat: keeps the source's keys alive while prices do not move. The
 * source name is required (it says whose keys to refresh). */
static inline size_t mdcache_bin1_put_heartbeat(void *buf, size_t cap, const char *source,
                                                int64_t ts_ns)
{
    unsigned char *p;
    if (!source || !*source)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_HEARTBEAT, NULL, source, 0, 0, ts_ns, 1, 0);
    return p ? (size_t)(p - (unsigned char *)buf) : 0;
}

/* Session reset of one symbol, or of every symbol with symbol "*": Volume,
 * High and Low start over. source may be NULL. */
static inline size_t mdcache_bin1_put_reset(void *buf, size_t cap, const char *symbol,
                                            const char *source)
{
    unsigned char *p;
    if (!symbol || !*symbol)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_RESET, symbol, source, 0, 0, 0, 0, 0);
    return p ? (size_t)(p - (unsigned char *)buf) : 0;
}

/* A length-prefixed id (u8 length, bytes) of 1..max bytes, or 0..max
 * with may_be_empty (NULL counts as empty): its wire size, or 0 if it
 * cannot be encoded. */
static inline size_t mdcache_bin1_id_size(const char *s, size_t max, int may_be_empty)
{
    size_t n = mdcache_bin1_strlen(s);
    if (n > max || (n == 0 && !may_be_empty))
        return 0;
    return 1 + n;
}

static inline unsigned char *mdcache_bin1_put_id(unsigned char *p, const char *s)
{
    size_t n = mdcache_bin1_strlen(s);
    *p++ = (unsigned char)n;
    if (n)
        memcpy(p, s, n);
    return p + n;
}

/* Position of one account in one instrument. Body: account (u8 length,
 * 1..31 bytes), net_pos (required, any sign; 0 means flat), avg_price (may
 * be absent). symbol is the instrument and required. */
static inline size_t mdcache_bin1_put_position(void *buf, size_t cap, const char *account,
                                               const char *symbol, const char *source,
                                               uint64_t seq, int has_seq, int64_t ts_ns,
                                               int has_ts, mdcache_bin1_dec net_pos,
                                               mdcache_bin1_dec avg_price)
{
    unsigned char *p;
    size_t al = mdcache_bin1_id_size(account, MDCACHE_BIN1_ACCOUNT_MAX, 0);
    if (!al || !symbol || !*symbol)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_POSITION, symbol, source, seq, has_seq,
                              ts_ns, has_ts, al + 2 * MDCACHE_BIN1_DEC_LEN);
    if (!p)
        return 0;
    p = mdcache_bin1_put_id(p, account);
    p = mdcache_bin1_put_dec(p, net_pos);
    p = mdcache_bin1_put_dec(p, avg_price);
    return (size_t)(p - (unsigned char *)buf);
}

/* An order's state. Body: account (u8 length, 1..31 bytes), order_id (u8
 * length, 1..63 bytes), side (MDCACHE_BIN1_SIDE_*), status
 * (MDCACHE_BIN1_STATUS_*), qty (may be absent, never negative), price (may
 * be absent). symbol may be NULL. */
static inline size_t mdcache_bin1_put_order(void *buf, size_t cap, const char *account,
                                            const char *order_id, const char *symbol,
                                            const char *source, uint64_t seq, int has_seq,
                                            int64_t ts_ns, int has_ts, unsigned side,
                                            unsigned status, mdcache_bin1_dec qty,
                                            mdcache_bin1_dec price)
{
    unsigned char *p;
    size_t al = mdcache_bin1_id_size(account, MDCACHE_BIN1_ACCOUNT_MAX, 0);
    size_t rl = mdcache_bin1_id_size(order_id, MDCACHE_BIN1_REF_MAX, 0);
    if (!al || !rl || side > MDCACHE_BIN1_SIDE_SELL || status < MDCACHE_BIN1_STATUS_WORKING ||
        status > MDCACHE_BIN1_STATUS_REJECTED)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_ORDER, symbol, source, seq, has_seq, ts_ns,
                              has_ts, al + rl + 2 + 2 * MDCACHE_BIN1_DEC_LEN);
    if (!p)
        return 0;
    p = mdcache_bin1_put_id(p, account);
    p = mdcache_bin1_put_id(p, order_id);
    *p++ = (unsigned char)side;
    *p++ = (unsigned char)status;
    p = mdcache_bin1_put_dec(p, qty);
    p = mdcache_bin1_put_dec(p, price);
    return (size_t)(p - (unsigned char *)buf);
}

/* An account's money. Body: account (u8 length, 1..31 bytes), cash,
 * realized, unrealized (any sign, each may be absent, not all three). No
 * symbol. */
static inline size_t mdcache_bin1_put_balance(void *buf, size_t cap, const char *account,
                                              const char *source, uint64_t seq, int has_seq,
                                              int64_t ts_ns, int has_ts, mdcache_bin1_dec cash,
                                              mdcache_bin1_dec realized,
                                              mdcache_bin1_dec unrealized)
{
    unsigned char *p;
    size_t al = mdcache_bin1_id_size(account, MDCACHE_BIN1_ACCOUNT_MAX, 0);
    if (!al)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_BALANCE, NULL, source, seq, has_seq, ts_ns,
                              has_ts, al + 3 * MDCACHE_BIN1_DEC_LEN);
    if (!p)
        return 0;
    p = mdcache_bin1_put_id(p, account);
    p = mdcache_bin1_put_dec(p, cash);
    p = mdcache_bin1_put_dec(p, realized);
    p = mdcache_bin1_put_dec(p, unrealized);
    return (size_t)(p - (unsigned char *)buf);
}

/* An account's identity and state. Body: account (u8 length, 1..31
 * bytes), id (u8 length, 0..63 bytes; NULL or "" for none), active
 * (MDCACHE_BIN1_ACTIVE_*). No symbol. */
static inline size_t mdcache_bin1_put_account(void *buf, size_t cap, const char *account,
                                              const char *id, const char *source, uint64_t seq,
                                              int has_seq, int64_t ts_ns, int has_ts,
                                              unsigned active)
{
    unsigned char *p;
    size_t al = mdcache_bin1_id_size(account, MDCACHE_BIN1_ACCOUNT_MAX, 0);
    size_t rl = mdcache_bin1_id_size(id, MDCACHE_BIN1_REF_MAX, 1);
    if (!al || !rl || active > MDCACHE_BIN1_ACTIVE_YES)
        return 0;
    p = mdcache_bin1_put_head(buf, cap, MDCACHE_BIN1_ACCOUNT, NULL, source, seq, has_seq, ts_ns,
                              has_ts, al + rl + 1);
    if (!p)
        return 0;
    p = mdcache_bin1_put_id(p, account);
    p = mdcache_bin1_put_id(p, id);
    *p++ = (unsigned char)active;
    return (size_t)(p - (unsigned char *)buf);
}

/* Appends origin_ns to a frame just written at `frame` (frame_len bytes,
 * cap bytes of room from `frame`): CLOCK_MONOTONIC nanoseconds on this host
 * at which the tick's life began (when the handler received it from the
 * venue, or when a load generator scheduled it). mdcache then measures its
 * tick-to-Redis latency from that moment instead of from its own receipt.
 * Returns the new frame length, or 0 if it does not fit. */
static inline size_t mdcache_bin1_add_origin(void *frame, size_t frame_len, size_t cap,
                                             int64_t origin_ns)
{
    unsigned char *p = (unsigned char *)frame;
    size_t len = frame_len + MDCACHE_BIN1_ORIGIN_LEN;

    if (frame_len < MDCACHE_BIN1_HDR_LEN || len > cap || len > MDCACHE_BIN1_FRAME_MAX ||
        (p[7] & MDCACHE_BIN1_F_ORIGIN))
        return 0;
    mdcache_bin1_le64(p + frame_len, (uint64_t)origin_ns);
    p[2] = (unsigned char)(len & 0xff);
    p[3] = (unsigned char)(len >> 8);
    p[7] = (unsigned char)(p[7] | MDCACHE_BIN1_F_ORIGIN);
    return len;
}

#endif
