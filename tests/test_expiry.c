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
    size_t n = md_expiry_event_json(buf, sizeof buf, "price", "price:ES:latest", 15, "ES", 2,
                                    1763740000123);
    const char *want = "{\"event\":\"expired\",\"class\":\"price\",\"key\":\"price:ES:latest\","
                       "\"symbol\":\"ES\",\"ts\":1763740000123}";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    /* Bytes from Redis are escaped, never passed through raw. */
    md_expiry_event_json(buf, sizeof buf, "price", "p:\"\\\n:l", 7, "\"\\\n", 3, 1);
    assert_string_equal(buf, "{\"event\":\"expired\",\"class\":\"price\",\"key\":\"p:\\\"\\\\\\u000a:l\","
                             "\"symbol\":\"\\\"\\\\\\u000a\",\"ts\":1}");
    /* Truncated, still NUL-terminated. */
    n = md_expiry_event_json(buf, 10, "price", "k", 1, "s", 1, 1);
    assert_int_equal(n, 9);
    assert_int_equal(strlen(buf), 9);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_keytpl_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
