/* md_expiry: the JSON event and the key-template match it relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_expiry.h"
#include "md_format.h"

static void test_event_json(void **state)
{
    (void)state;
    char buf[256];
    size_t n = md_expiry_event_json(buf, sizeof buf, "price", "price:ES:latest", 15, "symbol", "ES",
                                    2, 1763740000123);
    const char *want = "{\"event\":\"expired\",\"class\":\"price\",\"key\":\"price:ES:latest\","
                       "\"symbol\":\"ES\",\"ts\":1763740000123}";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    /* Bytes from Redis are escaped, never passed through raw. */
    md_expiry_event_json(buf, sizeof buf, "price", "p:\"\\\n:l", 7, "symbol", "\"\\\n", 3,
                         1);
    assert_string_equal(buf, "{\"event\":\"expired\",\"class\":\"price\",\"key\":\"p:\\\"\\\\\\u000a:l\","
                             "\"symbol\":\"\\\"\\\\\\u000a\",\"ts\":1}");
    /* Truncated, still NUL-terminated. */
    n = md_expiry_event_json(buf, 10, "price", "k", 1, "symbol", "s", 1, 1);
    assert_int_equal(n, 9);
    assert_int_equal(strlen(buf), 9);
    /* Account classes name the account. */
    md_expiry_event_json(buf, sizeof buf, "positions", "hft:positions:PA1:all", 21, "account",
                         "PA1", 3, 5);
    assert_string_equal(buf, "{\"event\":\"expired\",\"class\":\"positions\",\"key\":"
                             "\"hft:positions:PA1:all\",\"account\":\"PA1\",\"ts\":5}");
}

static void test_keytpl_match(void **state)
{
    (void)state;
    md_keytpl t;
    const char *sym;
    size_t n;
    assert_int_equal(md_keytpl_init(&t, "md:", "price:{symbol}:latest"), 0);
    assert_true(md_keytpl_match(&t, "md:price:ESZ5:latest", 20, &sym, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(sym, "ESZ5", 4);
    assert_false(md_keytpl_match(&t, "md:price::latest", 16, &sym, &n));        /* no symbol */
    assert_false(md_keytpl_match(&t, "price:ESZ5:latest", 17, &sym, &n));      /* no prefix */
    assert_false(md_keytpl_match(&t, "md:price:ESZ5:last_good", 23, &sym, &n)); /* other tail */
    assert_false(md_keytpl_match(&t, "md:", 3, &sym, &n));
}

/* Two-variable templates (the order key): the first variable ends at the
 * first separator that leaves a non-empty second one. */
static void test_keytpl_two_vars(void **state)
{
    (void)state;
    md_keytpl t;
    const char *v;
    size_t n;
    char key[128];
    assert_int_equal(md_keytpl_init_vars(&t, "x:", "hft:orders:pending:{account}:{order_id}",
                                         "{account}", "{order_id}"),
                     0);
    n = md_keytpl_format2(&t, "PA1", 3, "D17", 3, key, sizeof key);
    assert_string_equal(key, "x:hft:orders:pending:PA1:D17");
    assert_int_equal(n, strlen(key));
    assert_true(md_keytpl_match(&t, key, n, &v, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(v, "PA1", 3);
    /* The order list key of the same account lacks the second variable. */
    assert_false(md_keytpl_match(&t, "x:hft:orders:pending:PA1", 24, &v, &n));
    assert_false(md_keytpl_match(&t, "x:hft:orders:pending:PA1:", 25, &v, &n));
    /* Too small a buffer: nothing written past it, 0 returned. */
    assert_int_equal(md_keytpl_format2(&t, "PA1", 3, "D17", 3, key, 10), 0);
    /* Refused shapes: missing, repeated, reversed or adjacent variables. */
    assert_int_equal(md_keytpl_init_vars(&t, "", "o:{account}", "{account}", "{order_id}"), -1);
    assert_int_equal(md_keytpl_init_vars(&t, "", "o:{account}:{order_id}:{order_id}", "{account}",
                                         "{order_id}"),
                     -1);
    assert_int_equal(md_keytpl_init_vars(&t, "", "o:{order_id}:{account}", "{account}",
                                         "{order_id}"),
                     -1);
    assert_int_equal(md_keytpl_init_vars(&t, "", "o:{account}{order_id}", "{account}",
                                         "{order_id}"),
                     -1);
    assert_int_equal(md_keytpl_init_vars(&t, "", "p:{account}:all", "{account}", NULL), 0);
    assert_int_equal(t.nvars, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_keytpl_match),
        cmocka_unit_test(test_keytpl_two_vars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
