/*
 * bin1 decoder (wire format: docs/protocol.md, encoder: include/mdcache_bin1.h).
 *
 * Two kinds of damage are told apart. A bad *header* (magic, version, len
 * out of range) means we no longer know where the next frame starts: a
 * datagram is dropped from there on, a stream is rescanned for the next
 * 0xB1 0x01 pair. A bad *body* in a frame whose header is sound costs only
 * that frame: we trust len and continue right after it. Trusting len is
 * also what lets a v1 receiver skip types it does not know and ignore
 * trailing fields added by later minor revisions.
 *
 * Every present decimal handed on has exp in [-18, 0] and |mant| < 10^18,
 * the same bounds md_dec_parse guarantees for jsonl.
 */
#include <string.h>

#include "md_decode.h"
#include "mdcache_bin1.h"

#define BIN1_MANT_MAX 999999999999999999LL

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* gcc -O2 does not turn the byte loop into one load, and this runs five
 * times per quote: on a little-endian host a memcpy is a single mov. */
static inline uint64_t rd64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
#endif
}

static void bin1_reject(const md_decoder_ops *ops, md_decode_err why, const uint8_t *p, size_t n)
{
    if (ops->stats)
        ops->stats->err[why]++;
    if (ops->on_reject)
        ops->on_reject(ops->ctx, why, (const char *)p, n);
}

/* Checks as much of the header as is present. Returns -1 if nothing is
 * wrong so far (and sets *flen once the len field is in), else the reason. */
static int bin1_check_head(const uint8_t *p, size_t avail, size_t *flen)
{
    if (avail >= 1 && p[0] != MDCACHE_BIN1_MAGIC)
        return MD_DERR_SYNTAX;
    if (avail >= 2 && p[1] != MDCACHE_BIN1_VERSION)
        return MD_DERR_VERSION;
    if (avail >= 4) {
        size_t n = rd16(p + 2);
        if (n < MDCACHE_BIN1_HDR_LEN)
            return MD_DERR_SYNTAX;
        if (n > MD_BIN1_FRAME_MAX)
            return MD_DERR_OVERSIZED;
        *flen = n;
    }
    return -1;
}

/* Symbols and sources become parts of Redis keys and log lines: printable
 * ASCII without spaces only. Checked eight bytes at a time (this ran a
 * compare-and-branch per byte, twice per tick): a word is bad if any byte
 * is below 0x21 or above 0x7e, both exact "has a byte" tests on 64 bits.
 * A short tail is padded with 'A' when 8 bytes can be read before `end`
 * (always, inside a quote or trade, whose body follows the names). */
#define BIN1_ONES 0x0101010101010101ULL
#define BIN1_HIGHS 0x8080808080808080ULL

static inline bool bin1_word_ok(uint64_t x)
{
    uint64_t below = (x - 0x21 * BIN1_ONES) & ~x;  /* a byte < 0x21 */
    uint64_t above = (x + 0x01 * BIN1_ONES) | x;   /* a byte > 0x7e */
    return ((below | above) & BIN1_HIGHS) == 0;
}

static bool bin1_name_ok(const uint8_t *s, size_t n, const uint8_t *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t x;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&x, s, 8);
        if (!bin1_word_ok(x))
            return false;
    }
    if (n && end - s >= 8) {
        uint64_t keep = (1ULL << (8 * n)) - 1;
        memcpy(&x, s, 8);
        return bin1_word_ok((x & keep) | (0x41 * BIN1_ONES & ~keep));
    }
#else
    (void)end;
#endif
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* Copies a name into a tick's 32-byte field, NUL-terminated. A fixed-size
 * copy (two vector moves) when 32 bytes can be read before `end`: the bytes
 * past the name are then whatever followed it in the frame, never looked
 * at since every user goes by the length. */
static inline void bin1_copy_name(char dst[32], const uint8_t *s, size_t n, const uint8_t *end)
{
    if (end - s >= 32)
        memcpy(dst, s, 32);
    else if (n < 16 && end - s >= 16)
        memcpy(dst, s, 16);
    else
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static int bin1_get_dec(const uint8_t *p, md_dec *out)
{
    int8_t exp = (int8_t)p[8];
    if (exp == MDCACHE_BIN1_ABSENT) {
        *out = md_dec_absent();
        return -1;
    }
    int64_t mant = (int64_t)rd64(p);
    if (exp < MD_DEC_EXP_MIN || exp > 0 || mant > BIN1_MANT_MAX || mant < -BIN1_MANT_MAX)
        return MD_DERR_BAD_NUMBER;
    out->mant = mant;
    out->exp = exp;
    return -1;
}

/* An id in an account body at p[*off]: u8 length, then that many bytes of
 * the name alphabet, into dst (NUL-terminated, the rest left as the caller
 * zeroed it). The length is checked against min..max before the frame's
 * room so that an impossible length is an id error wherever it points. */
static int bin1_get_id(const uint8_t *p, size_t *off, size_t lim, size_t min, size_t max,
                       char *dst, uint8_t *len)
{
    if (*off >= lim)
        return MD_DERR_TRUNCATED;
    size_t n = p[*off];
    if (n < min || n > max)
        return MD_DERR_ID;
    if (lim - *off - 1 < n)
        return MD_DERR_TRUNCATED;
    const uint8_t *s = p + *off + 1;
    if (!bin1_name_ok(s, n, p + lim))
        return MD_DERR_ID;
    memcpy(dst, s, n);
    dst[n] = '\0';
    *len = (uint8_t)n;
    *off += 1 + n;
    return -1;
}

/* The header's seq and ts and the origin trailer into *t, as the flags
 * say. Unknown flag bits are ignored so later revisions can add some.
 * Forced inline: shared by two callers, gcc would otherwise keep it out of
 * line and the quote path would pay a call (callgrind: +8 per quote). */
__attribute__((always_inline)) static inline int bin1_stamps(const uint8_t *p, size_t flen,
                                                             unsigned flags, md_tick *t)
{
    if (flags & MDCACHE_BIN1_F_SEQ) {
        t->flags |= MD_TICK_F_SEQ;
        t->seq = rd64(p + 8);
    }
    if (flags & MDCACHE_BIN1_F_TS) {
        int64_t ts = (int64_t)rd64(p + 16);
        if (ts < 0)
            return MD_DERR_BAD_NUMBER;
        t->flags |= MD_TICK_F_TS;
        t->ts_ns = ts;
    }
    /* The origin is the frame's last 8 bytes, after any body fields a later
     * revision may add. Not positive means "not given". */
    if (flags & MDCACHE_BIN1_F_ORIGIN) {
        int64_t o = (int64_t)rd64(p + flen - MDCACHE_BIN1_ORIGIN_LEN);
        t->origin_ns = o > 0 ? o : 0;
    }
    return -1;
}

/*
 * Position, order, balance, account (types 5..8; bodies in
 * docs/protocol.md). Kept apart from bin1_frame, and out of line, so that
 * quotes and trades, nearly all of the traffic, run the same code as
 * before these existed (inlined, it cost a quote 8 instructions).
 * The body is variable-length (ids with their own length bytes), so it is
 * walked field by field against lim, the end of the frame less the origin
 * trailer; bytes after the last field are a later revision's and ignored.
 * Unlike price ticks the whole record is zeroed and names are copied
 * exactly: account records are few, and deterministic bytes let their
 * consumers compare or hash them whole.
 */
__attribute__((noinline)) static int bin1_account(const uint8_t *p, size_t flen,
                                                  md_acct *a)
{
    unsigned type = p[4], sl = p[5], cl = p[6], flags = p[7];
    size_t trailer = (flags & MDCACHE_BIN1_F_ORIGIN) ? MDCACHE_BIN1_ORIGIN_LEN : 0;
    size_t off = MDCACHE_BIN1_HDR_LEN + sl + cl, lim;
    md_tick *t = &a->t;
    int err, ndec;

    if (sl > MD_SYMBOL_MAX || cl > MD_SOURCE_MAX)
        return MD_DERR_SYMBOL;
    if (off + trailer > flen)
        return MD_DERR_TRUNCATED;
    lim = flen - trailer;

    const uint8_t *sym = p + MDCACHE_BIN1_HDR_LEN, *src = sym + sl;
    if (!bin1_name_ok(sym, sl, p + flen) || !bin1_name_ok(src, cl, p + flen))
        return MD_DERR_SYMBOL;
    if (type == MDCACHE_BIN1_POSITION && sl == 0)
        return MD_DERR_SYMBOL;
    /* Balances and accounts belong to no instrument. */
    if ((type == MDCACHE_BIN1_BALANCE || type == MDCACHE_BIN1_ACCOUNT) && sl != 0)
        return MD_DERR_SYMBOL;
    if (sl == 1 && sym[0] == '*')
        return MD_DERR_SYMBOL;

    memset(a, 0, sizeof *a);
    t->type = (uint8_t)type;
    for (int i = 0; i < 4; i++)
        t->v[i] = md_dec_absent();
    memcpy(t->symbol, sym, sl);
    t->sym_len = (uint8_t)sl;
    memcpy(t->source, src, cl);
    t->src_len = (uint8_t)cl;

    if ((err = bin1_get_id(p, &off, lim, 1, MD_ACCOUNT_MAX, a->account, &a->acct_len)) >= 0)
        return err;
    switch (type) {
    case MDCACHE_BIN1_POSITION:
        ndec = 2;
        break;
    case MDCACHE_BIN1_ORDER:
        if ((err = bin1_get_id(p, &off, lim, 1, MD_REF_MAX, a->ref, &a->ref_len)) >= 0)
            return err;
        if (lim - off < 2)
            return MD_DERR_TRUNCATED;
        a->side = p[off++];
        a->status = p[off++];
        if (a->side > MD_SIDE_SELL || a->status < MD_ORDER_WORKING || a->status > MD_ORDER_REJECTED)
            return MD_DERR_BAD_VALUE;
        ndec = 2;
        break;
    case MDCACHE_BIN1_BALANCE:
        ndec = 3;
        break;
    default: /* MDCACHE_BIN1_ACCOUNT */
        if ((err = bin1_get_id(p, &off, lim, 0, MD_REF_MAX, a->ref, &a->ref_len)) >= 0)
            return err;
        if (lim - off < 1)
            return MD_DERR_TRUNCATED;
        a->active = p[off++];
        if (a->active > MD_ACTIVE_YES)
            return MD_DERR_BAD_VALUE;
        ndec = 0;
        break;
    }
    if (lim - off < (size_t)ndec * MDCACHE_BIN1_DEC_LEN)
        return MD_DERR_TRUNCATED;
    for (int i = 0; i < ndec; i++)
        if ((err = bin1_get_dec(p + off + (size_t)i * MDCACHE_BIN1_DEC_LEN, &t->v[i])) >= 0)
            return err;

    if (type == MDCACHE_BIN1_POSITION) {
        if (!md_dec_present(t->v[MD_P_NET_POS]))
            return MD_DERR_MISSING_FIELD;
    } else if (type == MDCACHE_BIN1_ORDER) {
        if (md_dec_present(t->v[MD_O_QTY]) && t->v[MD_O_QTY].mant < 0)
            return MD_DERR_NEGATIVE;
    } else if (type == MDCACHE_BIN1_BALANCE) {
        if (!md_dec_present(t->v[MD_B_CASH]) && !md_dec_present(t->v[MD_B_REALIZED]) &&
            !md_dec_present(t->v[MD_B_UNREALIZED]))
            return MD_DERR_MISSING_FIELD;
    }
    return bin1_stamps(p, flen, flags, t);
}

/* Validates one complete frame (header already checked) and fills *t, the
 * head of an md_acct. Returns -1 on success, else the reason to drop it. */
static int bin1_frame(const uint8_t *p, size_t flen, md_tick *t)
{
    unsigned type = p[4], sl = p[5], cl = p[6], flags = p[7];
    size_t body_len;
    int ndec, err;

    switch (type) {
    case MDCACHE_BIN1_QUOTE:
        ndec = 4;
        break;
    case MDCACHE_BIN1_TRADE:
        ndec = 2;
        break;
    case MDCACHE_BIN1_HEARTBEAT:
    case MDCACHE_BIN1_RESET:
        ndec = 0;
        break;
    default:
        /* Here rather than as cases of their own, so that the switch
         * quotes and trades go through stays as it was. */
        if (md_tick_is_account(type))
            return bin1_account(p, flen, (md_acct *)t);
        return MD_DERR_UNKNOWN_TYPE;
    }
    if (sl > MD_SYMBOL_MAX || cl > MD_SOURCE_MAX)
        return MD_DERR_SYMBOL;
    body_len = (size_t)ndec * MDCACHE_BIN1_DEC_LEN;
    if (flags & MDCACHE_BIN1_F_ORIGIN)
        body_len += MDCACHE_BIN1_ORIGIN_LEN;
    if (MDCACHE_BIN1_HDR_LEN + sl + cl + body_len > flen)
        return MD_DERR_TRUNCATED;

    const uint8_t *sym = p + MDCACHE_BIN1_HDR_LEN, *src = sym + sl, *body = src + cl;
    const uint8_t *end = p + flen;
    if (!bin1_name_ok(sym, sl, end) || !bin1_name_ok(src, cl, end))
        return MD_DERR_SYMBOL;
    if (type == MDCACHE_BIN1_HEARTBEAT) {
        if (cl == 0)
            return MD_DERR_MISSING_FIELD;
    } else {
        if (sl == 0)
            return MD_DERR_SYMBOL;
        /* "*" addresses every symbol and only makes sense for a reset. */
        if (type != MDCACHE_BIN1_RESET && sl == 1 && sym[0] == '*')
            return MD_DERR_SYMBOL;
    }

    /* Field by field rather than a memset of the whole tick: the names'
     * 64 bytes are written just below anyway. */
    t->type = (uint8_t)type;
    t->flags = 0;
    t->feed_id = 0;
    t->seq = 0;
    t->ts_ns = 0;
    t->src_hash = 0;
    t->sym_hash = 0;
    t->origin_ns = 0;
    for (int i = 0; i < 4; i++)
        t->v[i] = md_dec_absent();
    for (int i = 0; i < ndec; i++)
        if ((err = bin1_get_dec(body + (size_t)i * MDCACHE_BIN1_DEC_LEN, &t->v[i])) >= 0)
            return err;
    if (type == MDCACHE_BIN1_QUOTE) {
        if (!md_dec_present(t->v[MD_Q_BID]) && !md_dec_present(t->v[MD_Q_ASK]))
            return MD_DERR_MISSING_FIELD;
        if ((md_dec_present(t->v[MD_Q_BID_SIZE]) && t->v[MD_Q_BID_SIZE].mant < 0) ||
            (md_dec_present(t->v[MD_Q_ASK_SIZE]) && t->v[MD_Q_ASK_SIZE].mant < 0))
            return MD_DERR_NEGATIVE;
    } else if (type == MDCACHE_BIN1_TRADE) {
        if (!md_dec_present(t->v[MD_T_PRICE]) || !md_dec_present(t->v[MD_T_SIZE]))
            return MD_DERR_MISSING_FIELD;
        if (t->v[MD_T_SIZE].mant < 0)
            return MD_DERR_NEGATIVE;
    }
    if ((err = bin1_stamps(p, flen, flags, t)) >= 0)
        return err;
    t->sym_len = (uint8_t)sl;
    bin1_copy_name(t->symbol, sym, sl, end);
    t->src_len = (uint8_t)cl;
    bin1_copy_name(t->source, src, cl, end);
    return -1;
}

size_t md_bin1_decode(const uint8_t *buf, size_t len, int final, const md_decoder_ops *ops)
{
    size_t pos = 0;
    md_acct a; /* room for account messages; price ticks use a.t only */

    while (pos < len) {
        const uint8_t *p = buf + pos;
        size_t avail = len - pos, flen = 0;
        int bad = bin1_check_head(p, avail, &flen);

        if (bad >= 0) {
            if (final) {
                bin1_reject(ops, (md_decode_err)bad, p, avail);
                return len;
            }
            /* Stream: skip to the next plausible header. A lone trailing 0xB1
             * is kept, it may be the first half of the pair. */
            size_t q = pos + 1;
            while (q + 1 < len && !(buf[q] == MDCACHE_BIN1_MAGIC && buf[q + 1] == MDCACHE_BIN1_VERSION))
                q++;
            if (q + 1 >= len) {
                /* No header in sight yet. Counting now would count a run of
                 * garbage once per read that happens to cut it, which
                 * depends on the kernel's timing: leave it for the caller
                 * to retry with more bytes, so the run is counted once,
                 * when its end is seen. Only a run too long to buffer is
                 * consumed (and counted) unfinished. */
                if (len - pos < MD_BIN1_FRAME_MAX)
                    return pos;
                q = (buf[len - 1] == MDCACHE_BIN1_MAGIC) ? len - 1 : len;
            }
            bin1_reject(ops, (md_decode_err)bad, p, q - pos);
            pos = q;
            continue;
        }
        if (avail < MDCACHE_BIN1_HDR_LEN || avail < flen) {
            if (!final)
                return pos;
            bin1_reject(ops, MD_DERR_TRUNCATED, p, avail);
            return len;
        }
        int err = bin1_frame(p, flen, &a.t);
        if (err >= 0) {
            bin1_reject(ops, (md_decode_err)err, p, flen);
        } else {
            if (ops->stats)
                ops->stats->ok++;
            ops->on_tick(ops->ctx, &a.t);
        }
        pos += flen;
    }
    return pos;
}
