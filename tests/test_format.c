/* Unit tests for md_format: price JSON byte for byte, key templates, RESP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_format.h"

static md_dec D(int64_t mant, int8_t exp)
{
    md_dec d = {mant, exp};
    return d;
}

static md_sym sym_empty(void)
{
    md_sym s;

    memset(&s, 0, sizeof(s));
    s.last = s.bid = s.ask = md_dec_absent();
    s.volume = s.high = s.low = md_dec_absent();
    return s;
}

static md_sym sym_example(void)
{
    md_sym s = sym_empty();

    s.last = D(2100025, -2);
    s.bid = D(210000, -1);
    s.ask = D(210005, -1);
    s.volume = D(12345, 0);
    s.high = D(211000, -1);
    s.low = D(209500, -1);
    s.ts_ns = 1763740000123456789LL;
    s.has_ts = 1;
    return s;
}

static const char EXAMPLE[] =
    "{\"Last\":21000.25,\"Bid\":21000.0,\"Ask\":21000.5,\"Volume\":12345,"
    "\"High\":21100.0,\"Low\":20950.0,\"Timestamp\":1763740000123}";

static void test_price_example(void **state)
{
    (void)state;
    md_sym s = sym_example();
    char buf[512];
    size_t n;

    memset(buf, 'x', sizeof(buf));
    n = md_format_price(&s, buf, sizeof(buf));
    assert_int_equal(n, sizeof(EXAMPLE) - 1);
    assert_memory_equal(buf, EXAMPLE, n);
    assert_int_equal(buf[n], '\0');
}

static void test_price_cap(void **state)
{
    (void)state;
    md_sym s = sym_example();
    char buf[512];
    size_t len = sizeof(EXAMPLE) - 1;

    /* Needs len + 1 (NUL); one byte less is refused. */
    assert_int_equal(md_format_price(&s, buf, len), 0);
    assert_int_equal(md_format_price(&s, buf, len + 1), len);
    assert_string_equal(buf, EXAMPLE);
    assert_int_equal(md_format_price(&s, buf, 0), 0);
}

static void test_price_all_null(void **state)
{
    (void)state;
    md_sym s = sym_empty();
    char buf[512];
    static const char want[] = "{\"Last\":null,\"Bid\":null,\"Ask\":null,\"Volume\":null,"
                               "\"High\":null,\"Low\":null,\"Timestamp\":null}";

    assert_int_equal(md_format_price(&s, buf, sizeof(buf)), sizeof(want) - 1);
    assert_string_equal(buf, want);
}

static void test_price_negative_and_mixed(void **state)
{
    (void)state;
    md_sym s = sym_empty();
    char buf[512];
    static const char want[] = "{\"Last\":-37.63,\"Bid\":-0.001,\"Ask\":null,\"Volume\":0,"
                               "\"High\":-1,\"Low\":-40.00,\"Timestamp\":0}";

    s.last = D(-3763, -2);
    s.bid = D(-1, -3);
    s.volume = D(0, 0);
    s.high = D(-1, 0);
    s.low = D(-4000, -2);
    s.has_ts = 1;
    s.ts_ns = 999999; /* under 1 ms floors to 0 */
    assert_int_equal(md_format_price(&s, buf, sizeof(buf)), sizeof(want) - 1);
    assert_string_equal(buf, want);

    /* Negative ts floors (not truncates) toward -inf. */
    s.ts_ns = -1;
    assert_true(md_format_price(&s, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"Timestamp\":-1}"));
}

static void test_price_worst_case_fits_512(void **state)
{
    (void)state;
    md_sym s = sym_empty();
    char buf[512];
    size_t n;

    s.last = s.bid = s.ask = D(INT64_MIN, -18);
    s.volume = s.high = s.low = D(INT64_MIN, -18);
    s.has_ts = 1;
    s.ts_ns = INT64_MIN;
    n = md_format_price(&s, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(strlen(buf), n);
    assert_non_null(strstr(buf, "\"Last\":-9.223372036854775808,"));
    assert_non_null(strstr(buf, "\"Timestamp\":-9223372036855}"));
    s.ts_ns = INT64_MAX;
    assert_true(md_format_price(&s, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\"Timestamp\":9223372036854}"));
}

static void test_keytpl(void **state)
{
    (void)state;
    md_keytpl k;
    char buf[300];

    assert_int_equal(md_keytpl_init(&k, "", "price:{symbol}:latest"), 0);
    assert_int_equal(md_keytpl_format(&k, "MNQZ5", 5, buf, sizeof(buf)), 18);
    assert_string_equal(buf, "price:MNQZ5:latest");

    assert_int_equal(md_keytpl_init(&k, "prod:", "price:{symbol}:last_good"), 0);
    assert_int_equal(md_keytpl_format(&k, "ESZ5", 4, buf, sizeof(buf)), 25);
    assert_string_equal(buf, "prod:price:ESZ5:last_good");

    assert_int_equal(md_keytpl_init(&k, NULL, "{symbol}"), 0);
    assert_int_equal(md_keytpl_format(&k, "X", 1, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "X");

    assert_int_equal(md_keytpl_init(&k, "p:", "{symbol}:tail"), 0);
    assert_int_equal(k.head_len, 2);
    assert_int_equal(k.tail_len, 5);
    /* Symbol is used by length, not NUL. */
    assert_int_equal(md_keytpl_format(&k, "ABCDEF", 3, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "p:ABC:tail");
    /* Cap: key + NUL must fit. */
    assert_int_equal(md_keytpl_format(&k, "ABC", 3, buf, 10), 0);
    assert_int_equal(md_keytpl_format(&k, "ABC", 3, buf, 11), 10);
}

static void test_keytpl_errors(void **state)
{
    (void)state;
    md_keytpl k;
    char longp[200];

    assert_int_equal(md_keytpl_init(&k, "", "price:latest"), -1);
    assert_int_equal(md_keytpl_init(&k, "", "price:{symbol}:{symbol}"), -1);
    assert_int_equal(md_keytpl_init(&k, "", "price:{sym}:latest"), -1);
    assert_int_equal(md_keytpl_init(&k, "", ""), -1);
    assert_int_equal(md_keytpl_init(&k, "", NULL), -1);
    memset(longp, 'p', sizeof(longp));
    longp[127] = '\0';
    assert_int_equal(md_keytpl_init(&k, longp, "{symbol}"), 0);
    assert_int_equal(k.head_len, 127);
    assert_int_equal(md_keytpl_init(&k, longp, "x{symbol}"), -1); /* head 128 */
    longp[127] = 'p';
    longp[150] = '\0';
    assert_int_equal(md_keytpl_init(&k, "", longp), -1);
    memcpy(longp, "{symbol}", 8);
    assert_int_equal(md_keytpl_init(&k, "", longp), -1); /* tail 142 */
}

static void test_resp_setex(void **state)
{
    (void)state;
    char buf[256];
    static const char want[] = "*4\r\n$5\r\nSETEX\r\n$18\r\nprice:MNQZ5:latest\r\n"
                               "$1\r\n5\r\n$10\r\n{\"Last\":1}\r\n";
    size_t n;

    n = md_resp_setex(buf, sizeof(buf), "price:MNQZ5:latest", 18, 5, "{\"Last\":1}", 10);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    /* Exact fit works, one byte less writes nothing and returns 0. */
    assert_int_equal(md_resp_setex(buf, n, "price:MNQZ5:latest", 18, 5, "{\"Last\":1}", 10), n);
    assert_int_equal(md_resp_setex(buf, n - 1, "price:MNQZ5:latest", 18, 5, "{\"Last\":1}", 10),
                     0);
    assert_int_equal(md_resp_setex(buf, 0, "k", 1, 5, "v", 1), 0);

    n = md_resp_setex(buf, sizeof(buf), "k", 1, 4294967295u, "", 0);
    static const char want2[] = "*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$10\r\n4294967295\r\n$0\r\n\r\n";
    assert_int_equal(n, sizeof(want2) - 1);
    assert_memory_equal(buf, want2, n);

    n = md_resp_setex(buf, sizeof(buf), "k", 1, 0, "v", 1);
    static const char want3[] = "*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n$1\r\n0\r\n$1\r\nv\r\n";
    assert_int_equal(n, sizeof(want3) - 1);
    assert_memory_equal(buf, want3, n);
}

static void test_resp_set_binary(void **state)
{
    (void)state;
    char buf[256];
    static const char val[] = {'a', '\0', '\r', '\n', 'b'};
    static const char want[] = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\na\0\r\nb\r\n";
    size_t n;

    n = md_resp_set(buf, sizeof(buf), "", 0, val, sizeof(val));
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    assert_int_equal(md_resp_set(buf, n - 1, "", 0, val, sizeof(val)), 0);

    /* Lengths with several digits. */
    char big[1000];
    char out[1100];
    memset(big, 'z', sizeof(big));
    n = md_resp_set(out, sizeof(out), "key", 3, big, sizeof(big));
    static const char head[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$1000\r\n";
    assert_int_equal(n, sizeof(head) - 1 + 1000 + 2);
    assert_memory_equal(out, head, sizeof(head) - 1);
    assert_memory_equal(out + sizeof(head) - 1, big, 1000);
    assert_memory_equal(out + n - 2, "\r\n", 2);
}

static void test_resp_cmd(void **state)
{
    (void)state;
    char buf[256];
    size_t n;
    const char *argv[] = {"AUTH", "user", "p\0ss"};
    const size_t lens[] = {4, 4, 4};
    static const char want[] = "*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$4\r\np\0ss\r\n";

    n = md_resp_cmd(buf, sizeof(buf), 3, argv, lens);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    assert_int_equal(md_resp_cmd(buf, n - 1, 3, argv, lens), 0);
    assert_int_equal(md_resp_cmd(buf, n, 3, argv, lens), n);

    /* lens NULL: NUL-terminated arguments. */
    const char *sel[] = {"SELECT", "12"};
    static const char want_sel[] = "*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n";
    n = md_resp_cmd(buf, sizeof(buf), 2, sel, NULL);
    assert_int_equal(n, sizeof(want_sel) - 1);
    assert_memory_equal(buf, want_sel, n);

    /* Empty argument. */
    const char *e[] = {"ECHO", ""};
    static const char want_e[] = "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n";
    n = md_resp_cmd(buf, sizeof(buf), 2, e, NULL);
    assert_int_equal(n, sizeof(want_e) - 1);
    assert_memory_equal(buf, want_e, n);

    /* Ten arguments: two-digit array header. */
    const char *ten[10] = {"DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i"};
    n = md_resp_cmd(buf, sizeof(buf), 10, ten, NULL);
    assert_true(n > 0);
    assert_memory_equal(buf, "*10\r\n$3\r\nDEL\r\n$1\r\na\r\n", 21);
    assert_memory_equal(buf + n - 7, "$1\r\ni\r\n", 7);

    assert_int_equal(md_resp_cmd(buf, sizeof(buf), 0, argv, lens), 0);
    assert_int_equal(md_resp_cmd(buf, sizeof(buf), -1, argv, lens), 0);
}

static void test_resp_auth(void **state)
{
    (void)state;
    char buf[128];
    size_t n = md_resp_auth(buf, sizeof(buf), "", "p@ss word");
    static const char dflt[] = "*2\r\n$4\r\nAUTH\r\n$9\r\np@ss word\r\n";
    assert_int_equal(n, sizeof(dflt) - 1);
    assert_memory_equal(buf, dflt, n);
    n = md_resp_auth(buf, sizeof(buf), "mdc", "pw");
    static const char acl[] = "*3\r\n$4\r\nAUTH\r\n$3\r\nmdc\r\n$2\r\npw\r\n";
    assert_int_equal(n, sizeof(acl) - 1);
    assert_memory_equal(buf, acl, n);
    assert_int_equal(md_resp_auth(buf, n - 1, "mdc", "pw"), 0); /* does not fit: nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_price_example),
        cmocka_unit_test(test_price_cap),
        cmocka_unit_test(test_price_all_null),
        cmocka_unit_test(test_price_negative_and_mixed),
        cmocka_unit_test(test_price_worst_case_fits_512),
        cmocka_unit_test(test_keytpl),
        cmocka_unit_test(test_keytpl_errors),
        cmocka_unit_test(test_resp_setex),
        cmocka_unit_test(test_resp_set_binary),
        cmocka_unit_test(test_resp_cmd),
        cmocka_unit_test(test_resp_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
