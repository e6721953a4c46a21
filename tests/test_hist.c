/* md_hist: bucket boundaries, precision, quantiles, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "md_hist.h"

static void test_exact_below_128(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 128; v++) {
        assert_int_equal(md_hist_index(v), v);
        assert_int_equal(md_hist_lower(v), v);
        assert_int_equal(md_hist_upper(v), v);
    }
}

/* Every bucket's edges touch its neighbours', every value lands in the
 * bucket whose edges hold it, and the width stays within 1/64. */
static void test_buckets_tile_and_bound_error(void **state)
{
    (void)state;
    assert_int_equal(md_hist_index(UINT64_MAX), MD_HIST_BUCKETS - 1);
    assert_true(md_hist_upper(MD_HIST_BUCKETS - 1) == UINT64_MAX);
    for (size_t i = 1; i < MD_HIST_BUCKETS; i++) {
        assert_true(md_hist_lower(i) == md_hist_upper(i - 1) + 1);
        uint64_t lo = md_hist_lower(i), hi = md_hist_upper(i);
        assert_int_equal(md_hist_index(lo), i);
        assert_int_equal(md_hist_index(hi), i);
        if (lo >= 128) assert_true((hi - lo) <= lo / 64);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 100000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x & 63);
        size_t i = md_hist_index(v);
        assert_true(md_hist_lower(i) <= v && v <= md_hist_upper(i));
    }
}

static void test_quantiles(void **state)
{
    (void)state;
    md_hist *h = malloc(sizeof *h);
    md_hist_reset(h);
    assert_int_equal(md_hist_quantile(h, 0.99), 0);
    for (uint64_t v = 1; v <= 100; v++) md_hist_record(h, v);
    assert_int_equal(h->count, 100);
    assert_int_equal(h->sum, 5050);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 100);
    assert_int_equal(md_hist_quantile(h, 0.5), 50);
    assert_int_equal(md_hist_quantile(h, 0.99), 99);
    assert_int_equal(md_hist_quantile(h, 1.0), 100);
    assert_int_equal(md_hist_quantile(h, 0.0), 1);
    /* 1000 values of 1,000,000 ns and one outlier: p99.9 is the bulk, max the outlier. */
    md_hist_reset(h);
    for (int i = 0; i < 1000; i++) md_hist_record(h, 1000000);
    md_hist_record(h, 50000000);
    uint64_t p999 = md_hist_quantile(h, 0.999);
    assert_true(p999 >= 1000000 && p999 <= 1000000 + 1000000 / 64);
    assert_int_equal(md_hist_quantile(h, 1.0), 50000000);
    free(h);
}

static void test_merge(void **state)
{
    (void)state;
    md_hist *a = malloc(sizeof *a), *b = malloc(sizeof *b), *all = malloc(sizeof *all);
    md_hist_reset(a);
    md_hist_reset(b);
    md_hist_reset(all);
    for (uint64_t v = 0; v < 5000; v++) {
        md_hist_record(v % 2 ? a : b, v * 977);
        md_hist_record(all, v * 977);
    }
    md_hist *m = malloc(sizeof *m);
    md_hist_reset(m);
    md_hist_merge(m, a);
    md_hist_merge(m, b);
    assert_memory_equal(m, all, sizeof *m);
    /* Merging an empty histogram changes nothing, min included. */
    md_hist_reset(a);
    md_hist_merge(m, a);
    assert_memory_equal(m, all, sizeof *m);
    free(a);
    free(b);
    free(all);
    free(m);
}

/* record_n is n records of one value, and the JSON form lists exactly the
 * non-empty buckets. */
static void test_record_n_and_json(void **state)
{
    (void)state;
    md_hist *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    md_hist_reset(a);
    md_hist_reset(b);
    for (int i = 0; i < 7; i++) md_hist_record(a, 250000);
    md_hist_record(a, 3);
    md_hist_record_n(b, 250000, 7);
    md_hist_record_n(b, 3, 1);
    md_hist_record_n(b, 999, 0);
    assert_memory_equal(a, b, sizeof *a);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    md_hist_write_json(f, b);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want,
             "{\"count\":8,\"sum\":1750003,\"min\":3,\"max\":250000,\"buckets\":[[3,1],[%zu,7]]}",
             md_hist_index(250000));
    assert_string_equal(buf, want);
    free(buf);
    md_hist_reset(b);
    f = open_memstream(&buf, &len);
    md_hist_write_json(f, b);
    fclose(f);
    assert_string_equal(buf, "{\"count\":0,\"sum\":0,\"min\":0,\"max\":0,\"buckets\":[]}");
    free(buf);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_below_128),
        cmocka_unit_test(test_buckets_tile_and_bound_error),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_record_n_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
