/* md_metrics: the exposition text (well-formed, exact values, labels
 * escaped) and the histograms' live copies. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "md_metrics.h"

static md_stats st[2], wst;
static md_hist_snap hs[2][MD_MH_COUNT];

static char *render(bool hists, int nfeeds, const char *const *feeds)
{
    md_metrics_view v = {.nworkers = 2,
                         .workers = st,
                         .watcher = &wst,
                         .hists = hists ? (const md_hist_snap(*)[MD_MH_COUNT])hs : NULL,
                         .version = "1.2.3",
                         .nfeeds = nfeeds,
                         .feeds = feeds};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(md_metrics_render(&v, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return;
    fail_msg("no line '%s'", line);
}

static void no_prefix(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        if (strncmp(p, prefix, n) == 0) fail_msg("unexpected line starting '%s'", prefix);
        if (!strchr(p, '\n')) break;
    }
}

static int fill(void **state)
{
    (void)state;
    memset(st, 0, sizeof st);
    memset(&wst, 0, sizeof wst);
    memset(hs, 0, sizeof hs);
    st[0].ticks_in = 7;
    st[1].ticks_in = 11;
    st[1].keys = 3;
    st[0].inflight = 2;
    st[0].keys_written = 40;
    st[1].account_writes = 5;
    st[0].drops = 4;
    st[1].kernel_drops = 6;
    st[0].redis_oom = 1;
    st[1].cluster_moved = 8;
    st[0].redis_errors = 1; /* sums: must not be exported besides their parts */
    st[0].decode_errors = 2;
    st[0].err[0] = 2;
    st[1].bytes_out = 12345;
    st[0].written[MD_W_FALLBACK] = 13;
    st[1].written[MD_W_ORDER_DELETE] = 2;
    st[1].feed_in[1][MD_TICK_TRADE] = 11;
    wst.expired_price = 9;
    wst.events_published = 4;
    return 0;
}

static bool name_ok(const char *s, size_t n)
{
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return false;
    return true;
}

/* A small parser of the text format: every line is "# HELP name text",
 * "# TYPE name type" or "name[{l="v",...}] value"; each family has HELP
 * then TYPE once, before its samples, which are contiguous. Returns the
 * number of families. */
static int check_well_formed(const char *text)
{
    char fams[256][96];
    char types[256][16];
    int nf = 0;
    char cur[96] = "";
    const char *p = text;
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    while (*p) {
        const char *e = strchr(p, '\n');
        assert_non_null(e);
        char line[2048];
        size_t n = (size_t)(e - p);
        assert_true(n > 0 && n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = e + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            char *nm = line + 7, *sp = strchr(nm, ' ');
            assert_non_null(sp);
            assert_true(name_ok(nm, (size_t)(sp - nm)));
            *sp = '\0';
            for (int i = 0; i < nf; i++)
                if (strcmp(fams[i], nm) == 0) fail_msg("family %s twice", nm);
            assert_true(nf < 256 && strlen(nm) < sizeof cur);
            snprintf(fams[nf], sizeof fams[nf], "%.95s", nm);
            types[nf][0] = '\0';
            snprintf(cur, sizeof cur, "%.95s", nm);
            nf++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char *nm = line + 7, *sp = strchr(nm, ' ');
            assert_non_null(sp);
            *sp = '\0';
            assert_string_equal(nm, cur);
            assert_true(types[nf - 1][0] == '\0');
            const char *t = sp + 1;
            assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0 ||
                        strcmp(t, "histogram") == 0);
            snprintf(types[nf - 1], sizeof types[nf - 1], "%s", t);
            if (strcmp(t, "counter") == 0) {
                size_t l = strlen(nm);
                assert_true(l > 6 && strcmp(nm + l - 6, "_total") == 0);
            }
            continue;
        }
        assert_true(line[0] != '#');
        /* A sample of the current family, whose TYPE came first. */
        assert_true(nf > 0 && types[nf - 1][0]);
        size_t nl = strcspn(line, "{ ");
        assert_true(name_ok(line, nl));
        char nm[96];
        snprintf(nm, sizeof nm, "%.*s", (int)nl, line);
        if (strcmp(types[nf - 1], "histogram") == 0) {
            size_t fl = strlen(cur);
            assert_true(strncmp(nm, cur, fl) == 0);
            assert_true(strcmp(nm + fl, "_bucket") == 0 || strcmp(nm + fl, "_sum") == 0 ||
                        strcmp(nm + fl, "_count") == 0);
        } else {
            assert_string_equal(nm, cur);
        }
        char *q = line + nl;
        if (*q == '{') {
            q++;
            for (;;) {
                size_t ln = strcspn(q, "=");
                assert_true(name_ok(q, ln));
                q += ln;
                assert_true(q[0] == '=' && q[1] == '"');
                q += 2;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        assert_true(q[1] == '\\' || q[1] == '"' || q[1] == 'n');
                        q++;
                    }
                    q++;
                }
                assert_true(*q == '"');
                q++;
                if (*q == ',') {
                    q++;
                    continue;
                }
                assert_true(*q == '}');
                q++;
                break;
            }
        }
        assert_true(*q == ' ');
        q++;
        char *end;
        strtod(q, &end);
        assert_true(end != q && *end == '\0');
    }
    return nf;
}

static void test_exact_values(void **state)
{
    (void)state;
    char *t = render(false, 0, NULL);
    check_well_formed(t);
    has_line(t, "# TYPE mdcache_ticks_in_total counter");
    has_line(t, "# HELP mdcache_ticks_in_total ticks decoded from feeds on this worker");
    has_line(t, "mdcache_ticks_in_total{worker=\"0\"} 7");
    has_line(t, "mdcache_ticks_in_total{worker=\"1\"} 11");
    has_line(t, "# TYPE mdcache_keys gauge");
    has_line(t, "mdcache_keys{worker=\"1\"} 3");
    has_line(t, "mdcache_inflight{worker=\"0\"} 2");
    has_line(t, "mdcache_keys_written_total{worker=\"0\",class=\"price\"} 40");
    has_line(t, "mdcache_keys_written_total{worker=\"1\",class=\"account\"} 5");
    has_line(t, "# TYPE mdcache_writes_total counter");
    has_line(t, "mdcache_writes_total{worker=\"0\",class=\"price_fallback\"} 13");
    has_line(t, "mdcache_writes_total{worker=\"1\",class=\"order_delete\"} 2");
    has_line(t, "mdcache_writes_total{worker=\"0\",class=\"price\"} 0");
    has_line(t, "mdcache_drops_total{worker=\"0\",reason=\"ring_full\"} 4");
    has_line(t, "mdcache_drops_total{worker=\"1\",reason=\"kernel\"} 6");
    has_line(t, "mdcache_redis_errors_total{worker=\"0\",type=\"OOM\"} 1");
    has_line(t, "mdcache_redis_errors_total{worker=\"1\",type=\"MOVED\"} 8");
    has_line(t, "mdcache_redis_sent_bytes_total{worker=\"1\"} 12345");
    has_line(t, "mdcache_decode_errors_total{worker=\"0\",reason=\"syntax\"} 2");
    /* The watcher's counters: one process-wide series, no worker label. */
    has_line(t, "mdcache_expired_keys_total{class=\"price\"} 9");
    has_line(t, "mdcache_events_published_total 4");
    has_line(t, "mdcache_build_info{version=\"1.2.3\"} 1");
    has_line(t, "mdcache_workers 2");
    /* Sums of exported parts, and renamed or grouped fields, appear once. */
    no_prefix(t, "mdcache_redis_errors_total{worker=\"0\"} ");
    no_prefix(t, "mdcache_decode_errors_total{worker=\"0\"} ");
    no_prefix(t, "mdcache_bytes_out_total");
    no_prefix(t, "mdcache_account_writes_total");
    no_prefix(t, "mdcache_expired_price");
    no_prefix(t, "mdcache_events_published_total{");
    no_prefix(t, "mdcache_tick_to_ack_seconds");
    free(t);
}

/* Every stats field shows up, under its own name or in its group. */
static void test_every_field_exported(void **state)
{
    (void)state;
    static const char *grouped[] = {"drops", "kernel_drops", "truncated", "duplicates",
                                    "refused", "overflow", "keys_written", "account_writes",
                                    "redis_errors", "decode_errors", "bytes_out"};
    char *t = render(false, 0, NULL);
#define CHECK_FIELD(n, k, h)                                                                       \
    do {                                                                                           \
        bool g = false;                                                                            \
        for (size_t i = 0; i < sizeof grouped / sizeof grouped[0]; i++)                            \
            if (strcmp(grouped[i], #n) == 0) g = true;                                             \
        if (g || strncmp(#n, "expired_", 8) == 0 || strncmp(#n, "redis_", 6) == 0 ||               \
            strncmp(#n, "cluster_", 8) == 0)                                                       \
            break;                                                                                 \
        char want[128];                                                                            \
        snprintf(want, sizeof want, "# TYPE mdcache_%s%s %s", #n,                                  \
                 strcmp(#k, "gauge") == 0 ? "" : "_total",                                         \
                 strcmp(#k, "gauge") == 0 ? "gauge" : "counter");                                  \
        has_line(t, want);                                                                         \
    } while (0);
    MD_STATS_FIELDS(CHECK_FIELD)
#undef CHECK_FIELD
    has_line(t, "# TYPE mdcache_redis_timeouts_total counter");
    has_line(t, "mdcache_redis_errors_total{worker=\"1\",type=\"CLUSTERDOWN\"} 0");
    has_line(t, "mdcache_expired_keys_total{class=\"accounts\"} 0");
    free(t);
}

static void test_histograms(void **state)
{
    (void)state;
    md_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    md_hist_reset(h);
    /* ns: 20 us twice, 3 ms, 20 s (above every bound). */
    md_hist_record_n(h, 20000, 2);
    md_hist_record(h, 3000000);
    md_hist_record(h, 20000000000ull);
    md_hist_pub *pub = calloc(1, sizeof *pub);
    assert_non_null(pub);
    const md_metrics_hist_def *d = &md_metrics_hists[MD_MH_LATENCY];
    md_hist_publish(pub, h, d->bounds, d->nbounds);
    md_hist_pub_read(pub, &hs[1][MD_MH_LATENCY], d->nbounds);
    assert_int_equal(hs[1][MD_MH_LATENCY].count, 4);

    md_hist_reset(h);
    for (uint64_t v = 1; v <= 10; v++) md_hist_record(h, v);
    d = &md_metrics_hists[MD_MH_BATCH];
    md_hist_publish(pub, h, d->bounds, d->nbounds);
    md_hist_pub_read(pub, &hs[0][MD_MH_BATCH], d->nbounds);

    char *t = render(true, 0, NULL);
    check_well_formed(t);
    has_line(t, "# TYPE mdcache_tick_to_ack_seconds histogram");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"0.00001\"} 0");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"0.000025\"} 2");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"0.025\"} 3");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"0.0025\"} 2");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"0.005\"} 3");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"10\"} 3");
    has_line(t, "mdcache_tick_to_ack_seconds_bucket{worker=\"1\",le=\"+Inf\"} 4");
    has_line(t, "mdcache_tick_to_ack_seconds_sum{worker=\"1\"} 20.00304");
    has_line(t, "mdcache_tick_to_ack_seconds_count{worker=\"1\"} 4");
    has_line(t, "mdcache_tick_to_ack_seconds_count{worker=\"0\"} 0");
    /* Below 128 the fine buckets are exact, so the batch bounds are. */
    has_line(t, "mdcache_batch_keys_bucket{worker=\"0\",le=\"1\"} 1");
    has_line(t, "mdcache_batch_keys_bucket{worker=\"0\",le=\"4\"} 4");
    has_line(t, "mdcache_batch_keys_bucket{worker=\"0\",le=\"8\"} 8");
    has_line(t, "mdcache_batch_keys_bucket{worker=\"0\",le=\"16\"} 10");
    has_line(t, "mdcache_batch_keys_sum{worker=\"0\"} 55");
    has_line(t, "# TYPE mdcache_redis_rtt_seconds histogram");
    free(t);
    free(pub);
    free(h);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(md_metrics_escape("plain", buf, sizeof buf), 5);
    assert_string_equal(buf, "plain");
    md_metrics_escape("a\"b\\c\nd", buf, sizeof buf);
    assert_string_equal(buf, "a\\\"b\\\\c\\nd");
    /* Like snprintf: the needed length, the output cut and terminated. */
    assert_int_equal(md_metrics_escape("\"\"\"", buf, 4), 6);
    assert_string_equal(buf, "\\\"\\");
    assert_int_equal(md_metrics_escape("", buf, sizeof buf), 0);
    assert_string_equal(buf, "");

    const char *feeds[] = {"unix:///tmp/a\"b\\c.sock", "udp://127.0.0.1:7400"};
    char *t = render(false, 2, feeds);
    check_well_formed(t);
    has_line(t, "mdcache_feed_info{listen=\"unix:///tmp/a\\\"b\\\\c.sock\"} 1");
    has_line(t, "mdcache_feed_info{listen=\"udp://127.0.0.1:7400\"} 1");
    /* By feed and type, the feed named by its (escaped) listen spec. */
    has_line(t, "mdcache_ticks_received_total{worker=\"1\",feed=\"udp://127.0.0.1:7400\","
                "type=\"trade\"} 11");
    has_line(t, "mdcache_ticks_received_total{worker=\"0\",feed=\"unix:///tmp/a\\\"b\\\\c."
                "sock\",type=\"quote\"} 0");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exact_values, fill),
        cmocka_unit_test_setup(test_every_field_exported, fill),
        cmocka_unit_test_setup(test_histograms, fill),
        cmocka_unit_test_setup(test_label_escaping, fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
