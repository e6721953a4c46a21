/*
 * md_decimal: exact fixed-point decimals (see include/md_decimal.h).
 *
 * Invariant kept by md_dec_parse (and relied on by the decoders): a parsed
 * value has |mant| <= 999999999999999999 (18 significant digits) and exp in
 * [-18, 0]. Sums may grow past 18 digits up to the int64 range; formatting
 * and comparison accept any int64 mantissa, including INT64_MIN.
 */
#include "md_decimal.h"

#include <string.h>

#define MD_DEC_DIGITS_MAX 18

static const int64_t md_pow10[19] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

static inline int md_isdigit(char c) { return c >= '0' && c <= '9'; }

/*
 * Strict JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Anything looser ("1.", ".5", "+1", "01", "0x10", "inf") is refused so that
 * what we accept is exactly what we can print back as a JSON number.
 */
bool md_dec_parse(const char *s, size_t len, md_dec *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t mant = 0;
    int sig = 0;   /* significant digits accumulated (leading zeros skipped) */
    int frac = 0;  /* digits after the point */

    if (len == 0)
        return false;
    if (s[i] == '-') {
        neg = true;
        if (++i == len)
            return false;
    }
    if (!md_isdigit(s[i]))
        return false;
    if (s[i] == '0') {
        i++;
        if (i < len && md_isdigit(s[i]))
            return false; /* leading zero */
    } else {
        while (i < len && md_isdigit(s[i])) {
            if (++sig > MD_DEC_DIGITS_MAX)
                return false;
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i == len || !md_isdigit(s[i]))
            return false;
        while (i < len && md_isdigit(s[i])) {
            /* Zeros before the first significant digit cost no precision. */
            if (sig > 0 || s[i] != '0') {
                if (++sig > MD_DEC_DIGITS_MAX)
                    return false;
            }
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            if (frac < 100000) /* saturate; the exp check below rejects it */
                frac++;
            i++;
        }
    }
    int e = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        bool eneg = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i == len || !md_isdigit(s[i]))
            return false;
        while (i < len && md_isdigit(s[i])) {
            if (e < 1000) /* saturate: anything this large is out of range anyway */
                e = e * 10 + (s[i] - '0');
            i++;
        }
        if (eneg)
            e = -e;
    }
    if (i != len)
        return false;

    int exp = e - frac;
    if (exp < MD_DEC_EXP_MIN)
        return false;
    if (exp > 0) {
        /* Fold positive exponents into the mantissa, keeping the 18-digit bound.
         * Zero stays zero whatever the exponent ("0e50" is just 0). */
        if (mant != 0) {
            if (exp > MD_DEC_DIGITS_MAX)
                return false;
            if (mant > (uint64_t)(md_pow10[MD_DEC_DIGITS_MAX] - 1) / (uint64_t)md_pow10[exp])
                return false;
            mant *= (uint64_t)md_pow10[exp];
        }
        exp = 0;
    }
    out->mant = neg ? -(int64_t)mant : (int64_t)mant;
    out->exp = (int8_t)exp;
    return true;
}

/* Absent reads as 0 at exponent 0 so that accumulators can start absent. */
static inline md_dec md_dec_or_zero(md_dec d)
{
    if (!md_dec_present(d)) {
        d.mant = 0;
        d.exp = 0;
    }
    return d;
}

bool md_dec_add(md_dec a, md_dec b, md_dec *out)
{
    a = md_dec_or_zero(a);
    b = md_dec_or_zero(b);
    if (a.exp < b.exp) {
        md_dec t = a;
        a = b;
        b = t;
    }
    /* Now a is the coarser one: scale it down to b's exponent. */
    int diff = a.exp - b.exp;
    int64_t am = a.mant, sum;
    if (diff > 18)
        return false; /* cannot happen with valid exponents; be safe anyway */
    if (__builtin_mul_overflow(am, md_pow10[diff], &am))
        return false;
    if (__builtin_add_overflow(am, b.mant, &sum))
        return false;
    out->mant = sum;
    out->exp = b.exp;
    return true;
}

static inline int md_sign(int64_t v) { return (v > 0) - (v < 0); }

/* Absent sorts below every present value; the header asks callers not to rely
 * on that, but it keeps the function total. */
int md_dec_cmp(md_dec a, md_dec b)
{
    bool pa = md_dec_present(a), pb = md_dec_present(b);
    if (!pa || !pb)
        return (int)pa - (int)pb;
    int sa = md_sign(a.mant), sb = md_sign(b.mant);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    int flip = 1;
    if (a.exp < b.exp) {
        md_dec t = a;
        a = b;
        b = t;
        flip = -1;
    }
    int diff = a.exp - b.exp;
    int64_t am;
    /* Same sign: if scaling the coarser one overflows, its magnitude is larger
     * than any int64 and so larger than |b|. */
    if (diff > 18 || __builtin_mul_overflow(a.mant, md_pow10[diff], &am))
        return sa * flip;
    return flip * ((am > b.mant) - (am < b.mant));
}

/* Two digits per division: the formatter runs six times per key written,
 * which makes it the hottest function of the batch writer. */
static const char md_dec_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                      "25262728293031323334353637383940414243444546474849"
                                      "50515253545556575859606162636465666768697071727374"
                                      "75767778798081828384858687888990919293949596979899";

/* Copies n <= 20 bytes. The digit runs copied here have variable length,
 * which made each copy a libc call; with 24 bytes of room at dst (and 24
 * readable at src) one fixed-size copy does, the bytes past n being
 * overwritten by whatever is written next. */
static inline void md_copy_digits(char *dst, const char *src, size_t n, size_t room)
{
    if (room >= 24)
        memcpy(dst, src, 24);
    else
        memcpy(dst, src, n);
}

size_t md_dec_format(md_dec d, char *buf, size_t cap)
{
    /* Digits end at digits + 24 and grow leftwards; the 24 bytes after
     * that end keep every fixed-size read in md_copy_digits inside. */
    char digits[48];
    char *dp = digits + 24;

    if (!md_dec_present(d)) {
        if (cap < 5)
            return 0;
        memcpy(buf, "null", 5);
        return 4;
    }
    /* Magnitude in unsigned so INT64_MIN needs no special case. */
    uint64_t mag = d.mant < 0 ? (uint64_t)0 - (uint64_t)d.mant : (uint64_t)d.mant;
    while (mag >= 100) {
        unsigned r = (unsigned)(mag % 100);
        mag /= 100;
        dp -= 2;
        memcpy(dp, md_dec_pairs + 2 * r, 2);
    }
    if (mag >= 10) {
        dp -= 2;
        memcpy(dp, md_dec_pairs + 2 * mag, 2);
    } else {
        *--dp = (char)('0' + mag);
    }
    size_t nd = (size_t)(digits + 24 - dp);

    int exp = d.exp;
    size_t fd = exp < 0 ? (size_t)-exp : 0;
    size_t total = (d.mant < 0) + (exp < 0 ? (nd > fd ? nd : fd + 1) + 1 : nd + (size_t)exp);
    if (total + 1 > cap)
        return 0;

    char *o = buf;
    if (d.mant < 0)
        *o++ = '-';
    if (exp >= 0) {
        md_copy_digits(o, dp, nd, cap - (size_t)(o - buf));
        o += nd;
        memset(o, '0', (size_t)exp);
        o += exp;
    } else if (nd <= fd) {
        /* Pure fraction: "0." then leading zeros, never ".5". */
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', fd - nd);
        o += fd - nd;
        md_copy_digits(o, dp, nd, cap - (size_t)(o - buf));
        o += nd;
    } else {
        md_copy_digits(o, dp, nd - fd, cap - (size_t)(o - buf));
        o += nd - fd;
        *o++ = '.';
        md_copy_digits(o, dp + nd - fd, fd, cap - (size_t)(o - buf));
        o += fd;
    }
    *o = '\0';
    return (size_t)(o - buf);
}
