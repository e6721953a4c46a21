/* md_decimal: exact parse, add, compare and format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_decimal.h"

static md_dec P(const char *s)
{
    md_dec d;
    assert_true(md_dec_parse(s, strlen(s), &d));
    return d;
}

static md_dec D(int64_t mant, int exp)
{
    md_dec d = {mant, (int8_t)exp};
    return d;
}

static void expect_parse(const char *s, int64_t mant, int exp)
{
    md_dec d = {12345, 5};
    if (!md_dec_parse(s, strlen(s), &d))
        fail_msg("rejected \"%s\"", s);
    if (d.mant != mant || d.exp != exp)
        fail_msg("\"%s\" -> %lld e%d, want %lld e%d", s, (long long)d.mant, d.exp, (long long)mant,
                 exp);
}

static void expect_reject(const char *s)
{
    md_dec d;
    if (md_dec_parse(s, strlen(s), &d))
        fail_msg("accepted \"%s\" as %lld e%d", s, (long long)d.mant, d.exp);
}

static void expect_fmt(md_dec d, const char *want)
{
    char buf[32];
    size_t n = md_dec_format(d, buf, sizeof buf);
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);
}

/* parse then format gives the input back, byte for byte */
static void expect_round(const char *s)
{
    expect_fmt(P(s), s);
}

static void test_parse_exact(void **state)
{
    (void)state;
    expect_parse("21000.25", 2100025, -2);
    expect_parse("21000.00", 2100000, -2);
    expect_parse("21000", 21000, 0);
    expect_parse("0.00012345", 12345, -8);
    expect_parse("-0.001", -1, -3);
    expect_parse("1e-3", 1, -3);
    expect_parse("1E-3", 1, -3);
    expect_parse("5", 5, 0);
    expect_parse("0", 0, 0);
    expect_parse("-0", 0, 0);
    expect_parse("0.0", 0, -1);
    expect_parse("1.5E2", 150, 0);
    expect_parse("1.5e+2", 150, 0);
    expect_parse("1.50e1", 150, -1);
    expect_parse("1e0", 1, 0);
    expect_parse("12.5e-3", 125, -4);
    expect_parse("0e50", 0, 0);
    expect_parse("-12.5", -125, -1);
    expect_parse("0.000000000000000001", 1, -18);
    expect_parse("999999999999999999", 999999999999999999LL, 0);
    expect_parse("-999999999999999999", -999999999999999999LL, 0);
    expect_parse("0.999999999999999999", 999999999999999999LL, -18);
    expect_parse("9.99999999999999999e17", 999999999999999999LL, 0);
    expect_parse("1e17", 100000000000000000LL, 0);
    expect_parse("0.00000000000000000100e2", 100, -18);
}

static void test_parse_reject(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "-", "+1", "1.", ".5", "-.5", "01", "-01", "00", "1e", "1e+", "1e-", "e3", "1.e3",
        "NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "0x10", "1 ", " 1", "1,5", "1..2",
        "1.2.3", "--1", "1e3.5", "abc", "1f", "21000.25x",
        /* 19 significant digits */
        "1234567890123456789", "9223372036854775807", "0.1234567890123456789",
        "1000000000000000000",
        /* exponent below -18 */
        "1e-19", "0.0000000000000000001", "0.0000000000000000000", "1.5e-18",
        /* positive exponent folding past 18 digits */
        "1e18", "999999999999999999e1", "1e400", "1e99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_reject(bad[i]);
    /* length is exact: bytes past len are not read, embedded NUL is rejected */
    md_dec d;
    assert_true(md_dec_parse("12.5xyz", 4, &d));
    assert_int_equal(d.mant, 125);
    assert_false(md_dec_parse("1\0002", 3, &d));
}

static void test_format(void **state)
{
    (void)state;
    expect_fmt(D(2100025, -2), "21000.25");
    expect_fmt(D(2100000, -2), "21000.00");
    expect_fmt(D(5, 0), "5");
    expect_fmt(D(0, 0), "0");
    expect_fmt(D(0, -3), "0.000");
    expect_fmt(D(-5, -1), "-0.5");
    expect_fmt(D(5, -1), "0.5");
    expect_fmt(D(-1, -3), "-0.001");
    expect_fmt(D(1, -3), "0.001");
    expect_fmt(D(1, -18), "0.000000000000000001");
    expect_fmt(D(INT64_MAX, 0), "9223372036854775807");
    expect_fmt(D(INT64_MIN, 0), "-9223372036854775808");
    expect_fmt(D(INT64_MIN, -18), "-9.223372036854775808");
    expect_fmt(D(INT64_MIN, -19), "-0.9223372036854775808"); /* out of range, still sane */
    expect_fmt(D(12, 2), "1200");
    expect_fmt(md_dec_absent(), "null");

    /* too small a buffer: 0, nothing pretended */
    char b[16];
    assert_int_equal(md_dec_format(D(2100025, -2), b, 8), 0);
    assert_int_equal(md_dec_format(D(2100025, -2), b, 9), 8);
    assert_string_equal(b, "21000.25");
    assert_int_equal(md_dec_format(md_dec_absent(), b, 4), 0);
    assert_int_equal(md_dec_format(md_dec_absent(), b, 5), 4);
    char big[64];
    assert_int_equal(md_dec_format(D(1, 100), big, sizeof big), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *s[] = {
        "21000.25", "21000.00", "0.00012345", "-0.001", "5", "0", "0.0", "-12.5", "0.50123",
        "999999999999999999", "-999999999999999999", "0.000000000000000001", "1.00000000000000000",
        "123456789.123456789", "-0.5",
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        expect_round(s[i]);
    expect_fmt(P("1e-3"), "0.001");
    expect_fmt(P("1.5E2"), "150");
    expect_fmt(P("-0"), "0");
    expect_fmt(P("2.50e-1"), "0.250");
}

static void expect_add(const char *a, const char *b, const char *want)
{
    md_dec r;
    char buf[32];
    assert_true(md_dec_add(P(a), P(b), &r));
    md_dec_format(r, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_add(void **state)
{
    (void)state;
    expect_add("0.5", "0.00123", "0.50123");
    expect_add("0.00123", "0.5", "0.50123");
    expect_add("0.1", "0.2", "0.3");
    expect_add("21000.25", "-21000.25", "0.00");
    expect_add("1", "2.50", "3.50");
    expect_add("-1.5", "0.25", "-1.25");
    expect_add("999999999999999999", "1", "1000000000000000000");
    expect_add("0.000000000000000001", "1", "1.000000000000000001");

    md_dec r = D(7, 7);
    /* absent counts as zero */
    assert_true(md_dec_add(md_dec_absent(), P("2.50"), &r));
    assert_int_equal(r.mant, 250);
    assert_int_equal(r.exp, -2);
    assert_true(md_dec_add(P("3"), md_dec_absent(), &r));
    assert_int_equal(r.mant, 3);
    assert_int_equal(r.exp, 0);
    assert_true(md_dec_add(md_dec_absent(), md_dec_absent(), &r));
    assert_int_equal(r.mant, 0);
    assert_int_equal(r.exp, 0);

    /* overflow: out untouched */
    r = D(42, -1);
    assert_false(md_dec_add(D(INT64_MAX, 0), D(1, 0), &r));
    assert_false(md_dec_add(D(INT64_MIN, 0), D(-1, 0), &r));
    assert_false(md_dec_add(D(10, 0), D(1, -18), &r));           /* 10e18 > int64 */
    assert_false(md_dec_add(D(-10, 0), D(1, -18), &r));
    assert_false(md_dec_add(D(INT64_MAX / 10 + 1, 0), D(0, -1), &r));
    assert_int_equal(r.mant, 42);
    assert_int_equal(r.exp, -1);
    /* right at the edge still works */
    assert_true(md_dec_add(D(9, 0), D(1, -18), &r));
    assert_int_equal(r.mant, 9000000000000000001LL);
    assert_int_equal(r.exp, -18);
    assert_true(md_dec_add(D(INT64_MAX - 1, 0), D(1, 0), &r));
    assert_int_equal(r.mant, INT64_MAX);
}

static void test_cmp(void **state)
{
    (void)state;
    assert_int_equal(md_dec_cmp(P("2.50"), P("2.5")), 0);
    assert_int_equal(md_dec_cmp(P("0"), P("-0.000")), 0);
    assert_true(md_dec_cmp(P("2.5"), P("2.51")) < 0);
    assert_true(md_dec_cmp(P("2.51"), P("2.5")) > 0);
    assert_true(md_dec_cmp(P("-1"), P("0.001")) < 0);
    assert_true(md_dec_cmp(P("0.001"), P("-1")) > 0);
    assert_true(md_dec_cmp(P("-2.5"), P("-2.49")) < 0);
    assert_true(md_dec_cmp(P("21000.25"), P("21000")) > 0);
    assert_true(md_dec_cmp(P("0"), P("0.000000000000000001")) < 0);
    /* scaling the coarser side would overflow: decided by magnitude */
    assert_true(md_dec_cmp(D(INT64_MAX, 0), D(INT64_MAX, -18)) > 0);
    assert_true(md_dec_cmp(D(INT64_MAX, -18), D(INT64_MAX, 0)) < 0);
    assert_true(md_dec_cmp(D(-INT64_MAX, 0), D(-INT64_MAX, -18)) < 0);
    assert_true(md_dec_cmp(D(-INT64_MAX, -18), D(-INT64_MAX, 0)) > 0);
    assert_true(md_dec_cmp(D(INT64_MIN, 0), D(INT64_MIN, -1)) < 0);
    assert_int_equal(md_dec_cmp(D(INT64_MIN, 0), D(INT64_MIN, 0)), 0);
    assert_int_equal(md_dec_cmp(D(1, 0), D(1000000000000000000LL, -18)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_exact), cmocka_unit_test(test_parse_reject),
        cmocka_unit_test(test_format),      cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_add),         cmocka_unit_test(test_cmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
