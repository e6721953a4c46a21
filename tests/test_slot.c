/* md_slot: CRC16 and hash tags, against a bitwise CRC and against the
 * slots a real Redis 7.0 cluster reported with CLUSTER KEYSLOT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_slot.h"

/* The definition, one bit at a time. */
static uint16_t crc16_bitwise(const char *s, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)s[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void test_crc16(void **state)
{
    (void)state;
    /* The check value of CRC-16/XMODEM. */
    assert_int_equal(md_crc16("123456789", 9), 0x31c3);
    char buf[256];
    for (int i = 0; i < 256; i++) buf[i] = (char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof buf; n += 7)
        assert_int_equal(md_crc16(buf, n), crc16_bitwise(buf, n));
}

static void test_real_redis_slots(void **state)
{
    (void)state;
    /* CLUSTER KEYSLOT on Redis 7.0.15. */
    static const struct { const char *key; uint16_t slot; } v[] = {
        {"123456789", 12739},
        {"foo", 12182},
        {"bar", 5061},
        {"hello", 866},
        {"price:MNQZ5:latest", 1900},
        {"price:ESZ5:last_good", 10945},
        {"hft:positions:PAAPEX2666680000001:all", 12783},
        {"hft:orders:pending:PAAPEX2666680000001:D17158695", 15916},
        {"{user1000}.following", 3443},
        {"{user1000}.followers", 3443},
        {"foo{}{bar}", 8363},   /* empty first tag: whole key */
        {"foo{{bar}}zap", 4015}, /* tag is "{bar" */
        {"foo{bar}{zap}", 5061}, /* first tag only: "bar" */
        {"{}", 15257},
        {"{", 4092},
        {"}", 12090},
        {"a{b}c", 3300},
        {"price:{MNQZ5}:latest", 4776},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint16_t got = md_slot_of(v[i].key, strlen(v[i].key));
        if (got != v[i].slot) fail_msg("'%s': slot %u, Redis says %u", v[i].key, got, v[i].slot);
    }
    char x[100];
    memset(x, 'x', sizeof x);
    assert_int_equal(md_slot_of(x, sizeof x), 2134);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_real_redis_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
