/*
 * md_decimal fuzz target: whatever parses must format to a JSON number that
 * parses back to the very same mantissa and exponent; add and cmp must agree
 * with each other on pairs of parsed values.
 */
#include <stdint.h>
#include <string.h>

#include "md_decimal.h"

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void round_trip(const char *s, size_t n)
{
    md_dec a, b;
    char buf[32];
    if (!md_dec_parse(s, n, &a))
        return;
    check(a.exp >= MD_DEC_EXP_MIN && a.exp <= 0);
    check(a.mant > -1000000000000000000LL && a.mant < 1000000000000000000LL);
    size_t len = md_dec_format(a, buf, sizeof buf);
    check(len > 0 && len < sizeof buf && buf[len] == '\0');
    check(md_dec_parse(buf, len, &b));
    check(a.mant == b.mant && a.exp == b.exp);
    check(md_dec_cmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    round_trip(s, size);

    /* "a|b": pairwise properties */
    const char *bar = memchr(s, '|', size);
    if (!bar)
        return 0;
    size_t na = (size_t)(bar - s);
    md_dec a, b, ab, ba, back;
    round_trip(s, na);
    round_trip(bar + 1, size - na - 1);
    if (!md_dec_parse(s, na, &a) || !md_dec_parse(bar + 1, size - na - 1, &b))
        return 0;
    int c1 = md_dec_cmp(a, b), c2 = md_dec_cmp(b, a);
    check((c1 > 0) == (c2 < 0) && (c1 == 0) == (c2 == 0));
    bool ok1 = md_dec_add(a, b, &ab), ok2 = md_dec_add(b, a, &ba);
    check(ok1 == ok2);
    if (!ok1)
        return 0;
    check(ab.mant == ba.mant && ab.exp == ba.exp);
    check(ab.exp == (a.exp < b.exp ? a.exp : b.exp));
    /* a + b compared with a follows the sign of b */
    int sb = (b.mant > 0) - (b.mant < 0);
    int c = md_dec_cmp(ab, a);
    check((c > 0) - (c < 0) == sb);
    /* (a + b) + (-b) == a */
    md_dec nb = {-b.mant, b.exp};
    check(md_dec_add(ab, nb, &back));
    check(md_dec_cmp(back, a) == 0);
    char buf[32];
    check(md_dec_format(ab, buf, sizeof buf) > 0);
    return 0;
}
