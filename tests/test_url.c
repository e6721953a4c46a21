/* Tests for src/url.c: Redis URLs, redaction, listen specs, CPU lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_config.h"

static char err[512];

/* ---- Redis URLs ---- */

static md_redis_url url_ok(const char *s)
{
    md_redis_url u;
    memset(&u, 0x5a, sizeof u);
    err[0] = '\0';
    int rc = md_redis_url_parse(s, &u, err, sizeof err);
    if (rc != 0) print_error("unexpected error for %s: %s\n", s, err);
    assert_int_equal(rc, 0);
    return u;
}

/* Parses a bad URL, checks *out is untouched and the message is exact. */
static void url_bad(const char *s, const char *want)
{
    md_redis_url u, before;
    memset(&u, 0x5a, sizeof u);
    before = u;
    err[0] = '\0';
    assert_int_equal(md_redis_url_parse(s, &u, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_memory_equal(&u, &before, sizeof u);
}

static void test_redis_url_defaults(void **state)
{
    (void)state;
    md_redis_url u = url_ok("redis://localhost");
    assert_int_equal(u.kind, MD_REDIS_TCP);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.pass, "");
    assert_string_equal(u.path, "");

    u = url_ok("redis://localhost:6379/0");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    u = url_ok("redis://10.1.2.3/");
    assert_string_equal(u.host, "10.1.2.3");
    assert_int_equal(u.db, 0);
}

static void test_redis_url_full(void **state)
{
    (void)state;
    md_redis_url u = url_ok("redis://alice:s3cret@cache.example.com:6380/7");
    assert_int_equal(u.kind, MD_REDIS_TCP);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.pass, "s3cret");
    assert_string_equal(u.host, "cache.example.com");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 7);

    u = url_ok("redis://:onlypass@h");
    assert_string_equal(u.user, "");
    assert_string_equal(u.pass, "onlypass");
    assert_string_equal(u.host, "h");

    u = url_ok("redis://bob@h:1");
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.pass, "");
    assert_int_equal(u.port, 1);

    u = url_ok("redis://u%40corp:p%40ss%3Aw%2fd@h/3");
    assert_string_equal(u.user, "u@corp");
    assert_string_equal(u.pass, "p@ss:w/d");
    assert_int_equal(u.db, 3);

    /* An unescaped '@' in the password: the last '@' ends the userinfo. */
    u = url_ok("redis://:a@b@h:7");
    assert_string_equal(u.pass, "a@b");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7);

    u = url_ok("redis://h?db=5");
    assert_int_equal(u.db, 5);
    u = url_ok("redis://h/1048576");
    assert_int_equal(u.db, 1 << 20);
    u = url_ok("REDIS://H:65535");
    assert_int_equal(u.port, 65535);
}

static void test_redis_url_ipv6_tls_unix(void **state)
{
    (void)state;
    md_redis_url u = url_ok("redis://[::1]:6380/2");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    u = url_ok("redis://[fe80::1%eth0]");
    assert_string_equal(u.host, "fe80::1%eth0");
    assert_int_equal(u.port, 6379);

    u = url_ok("rediss://u:p@secure.example.com:6390/1");
    assert_int_equal(u.kind, MD_REDIS_TLS);
    assert_string_equal(u.host, "secure.example.com");
    assert_string_equal(u.user, "u");
    assert_string_equal(u.pass, "p");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 1);

    u = url_ok("unix:///run/redis/redis.sock");
    assert_int_equal(u.kind, MD_REDIS_UNIX);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);
    u = url_ok("unix:///tmp/r.sock?db=4");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 4);
    u = url_ok("unix://:pw@/tmp/r@x.sock?db=1");
    assert_string_equal(u.pass, "pw");
    assert_string_equal(u.path, "/tmp/r@x.sock");
    assert_int_equal(u.db, 1);
}

static void test_redis_url_errors(void **state)
{
    (void)state;
    url_bad("", "empty Redis URL");
    url_bad("http://h", "unsupported scheme 'http' (want redis://, rediss:// or unix://)");
    url_bad("localhost:6379",
            "not a Redis URL (want redis://[user[:pass]@]host[:port][/db], rediss://... or "
            "unix:///path.sock[?db=N])");
    url_bad("redis://", "missing host");
    url_bad("redis:///3", "missing host");
    url_bad("redis://h:", "missing port after ':'");
    url_bad("redis://h:0", "bad port '0' (want 1..65535)");
    url_bad("redis://h:65536", "bad port '65536' (want 1..65535)");
    url_bad("redis://h:6x", "bad port '6x' (want 1..65535)");
    url_bad("redis://h/x", "bad database number after '/' (want 0..1048576)");
    url_bad("redis://h/1048577", "bad database number after '/' (want 0..1048576)");
    url_bad("redis://h/-1", "bad database number after '/' (want 0..1048576)");
    url_bad("redis://h/1?db=2", "database given twice");
    url_bad("redis://h?timeout=3", "unsupported query parameter 'timeout' (only db=N)");
    url_bad("redis://::1:6379", "IPv6 addresses need brackets, e.g. [::1]:6379");
    url_bad("redis://[::1", "missing ']' after IPv6 address");
    url_bad("redis://[]:1", "empty IPv6 address in []");
    url_bad("redis://[::1]x", "unexpected text after ']'");
    url_bad("redis://ho st", "bad character in host name");
    url_bad("redis://:p%4@h", "bad %-escape in the password");
    url_bad("redis://:p%zz@h", "bad %-escape in the password");
    url_bad("redis://:p%00@h", "%00 is not allowed in the password");
    url_bad("unix://tmp/r.sock", "unix socket URL needs an absolute path: unix:///path.sock");
    url_bad("unix://", "unix socket URL needs an absolute path: unix:///path.sock");
    url_bad("unix:///r.sock?db=x", "bad database number (want 0..1048576)");

    char longpath[200] = "unix:///";
    memset(longpath + 8, 'a', 120);
    longpath[128] = '\0';
    url_bad(longpath, "unix socket path too long (max 107 bytes)");
    char longpass[400] = "redis://:";
    memset(longpass + 9, 'p', 300);
    strcpy(longpass + 309, "@h");
    url_bad(longpass, "password too long (max 255 bytes)");
}

/* seeds[0] is host/port, so code that knows nothing of seeds keeps working. */
static void assert_first_seed(const md_redis_url *u)
{
    assert_true(u->nseeds >= 1 && u->nseeds <= MD_MAX_SEEDS);
    assert_string_equal(u->seeds[0].host, u->host);
    assert_int_equal(u->seeds[0].port, u->port);
}

static void test_redis_url_single_seed(void **state)
{
    (void)state;
    static const char *urls[] = {"redis://localhost", "redis://u:p@h:7000/3", "rediss://[::1]:6380",
                                 "redis://[fe80::1%eth0]", "redis://h?db=2"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        md_redis_url u = url_ok(urls[i]);
        assert_int_equal(u.nseeds, 1);
        assert_first_seed(&u);
    }
    md_redis_url u = url_ok("unix:///tmp/r.sock");
    assert_int_equal(u.nseeds, 1);
    assert_string_equal(u.seeds[0].host, "");
    assert_first_seed(&u);
}

static void test_redis_url_seeds(void **state)
{
    (void)state;
    md_redis_url u = url_ok("redis://alice:s3cret@h1:7001,h2:7002,[::1]:7003/0");
    assert_int_equal(u.kind, MD_REDIS_TCP);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.pass, "s3cret");
    assert_int_equal(u.db, 0);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "h1");
    assert_int_equal(u.seeds[0].port, 7001);
    assert_string_equal(u.seeds[1].host, "h2");
    assert_int_equal(u.seeds[1].port, 7002);
    assert_string_equal(u.seeds[2].host, "::1");
    assert_int_equal(u.seeds[2].port, 7003);
    assert_string_equal(u.host, "h1");
    assert_int_equal(u.port, 7001);
    assert_first_seed(&u);

    /* Ports default per seed; IPv6 first, with and without a port. */
    u = url_ok("rediss://[fe80::1%eth0],10.0.0.2,cache-3.example.com:7000,[::2]:7001");
    assert_int_equal(u.kind, MD_REDIS_TLS);
    assert_int_equal(u.nseeds, 4);
    assert_string_equal(u.seeds[0].host, "fe80::1%eth0");
    assert_int_equal(u.seeds[0].port, 6379);
    assert_string_equal(u.seeds[1].host, "10.0.0.2");
    assert_int_equal(u.seeds[1].port, 6379);
    assert_string_equal(u.seeds[2].host, "cache-3.example.com");
    assert_int_equal(u.seeds[2].port, 7000);
    assert_string_equal(u.seeds[3].host, "::2");
    assert_int_equal(u.seeds[3].port, 7001);
    assert_string_equal(u.host, "fe80::1%eth0");
    assert_int_equal(u.port, 6379);
    assert_first_seed(&u);

    /* The database may follow a seed list (the config refuses it for a
     * cluster, not the parser), and so may ?db=N. */
    u = url_ok("redis://a,b/4");
    assert_int_equal(u.nseeds, 2);
    assert_int_equal(u.db, 4);
    u = url_ok("redis://a:1,b:2?db=0");
    assert_int_equal(u.nseeds, 2);
    assert_int_equal(u.seeds[1].port, 2);

    /* A comma or '@' in the password is the password's, not a seed. */
    u = url_ok("redis://:a,b@c@h1:1,h2:2");
    assert_string_equal(u.pass, "a,b@c");
    assert_int_equal(u.nseeds, 2);
    assert_string_equal(u.seeds[0].host, "h1");

    /* Exactly MD_MAX_SEEDS. */
    char url[1024] = "redis://";
    for (int i = 0; i < MD_MAX_SEEDS; i++)
        snprintf(url + strlen(url), sizeof url - strlen(url), "%sn%d:%d", i ? "," : "", i,
                 7000 + i);
    u = url_ok(url);
    assert_int_equal(u.nseeds, MD_MAX_SEEDS);
    assert_string_equal(u.seeds[MD_MAX_SEEDS - 1].host, "n15");
    assert_int_equal(u.seeds[MD_MAX_SEEDS - 1].port, 7015);
}

static void test_redis_url_seed_errors(void **state)
{
    (void)state;
    url_bad("redis://a:1,,b:2", "empty seed node 2 in the seed list (host[:port],host[:port],...)");
    url_bad("redis://,a:1", "empty seed node 1 in the seed list (host[:port],host[:port],...)");
    url_bad("redis://a:1,", "empty seed node 2 in the seed list (host[:port],host[:port],...)");
    url_bad("redis://a:1,/0", "empty seed node 2 in the seed list (host[:port],host[:port],...)");
    url_bad("redis://,", "empty seed node 1 in the seed list (host[:port],host[:port],...)");
    url_bad("redis://a:1,b:0", "seed node 2: bad port '0' (want 1..65535)");
    url_bad("redis://a:1,b:65536", "seed node 2: bad port '65536' (want 1..65535)");
    url_bad("rediss://a:x,b:2", "seed node 1: bad port 'x' (want 1..65535)");
    url_bad("redis://a:1,b:", "seed node 2: missing port after ':'");
    url_bad("redis://a:1,[::1", "seed node 2: missing ']' after IPv6 address");
    url_bad("redis://a:1,::1:7000", "seed node 2: IPv6 addresses need brackets, e.g. [::1]:6379");
    url_bad("redis://a:1, b:2", "seed node 2: bad character in host name");
    url_bad("redis://a:1,:2", "seed node 2: missing host");

    char url[1024] = "redis://";
    for (int i = 0; i <= MD_MAX_SEEDS; i++)
        snprintf(url + strlen(url), sizeof url - strlen(url), "%sn%d:%d", i ? "," : "", i,
                 7000 + i);
    url_bad(url, "too many seed nodes (max 16)");

    /* Unix sockets cannot be seeds, neither listed nor mixed in. */
    url_bad("unix:///tmp/a.sock,/tmp/b.sock",
            "a unix socket URL names one socket, not a seed list (seed nodes need redis:// or "
            "rediss://)");
    url_bad("unix://:pw@/tmp/a.sock,h:1?db=1",
            "a unix socket URL names one socket, not a seed list (seed nodes need redis:// or "
            "rediss://)");
    url_bad("redis://h1:1,unix:///tmp/a.sock",
            "one scheme per URL: seed nodes are host[:port], e.g. redis://h1:7000,h2:7001 (a unix "
            "socket cannot be a seed)");
    url_bad("redis://u:p@h1:1,redis://h2:2",
            "one scheme per URL: seed nodes are host[:port], e.g. redis://h1:7000,h2:7001 (a unix "
            "socket cannot be a seed)");
}

static void test_redis_url_errors_hide_password(void **state)
{
    (void)state;
    static const char *bad[] = {
        "redis://u:s3cretpw@h:99999/0", "redis://u:s3cretpw@h/zz",     "rediss://u:s3cretpw@",
        "redis://h?password=s3cretpw",     "amqp://u:s3cretpw@h",      "s3cretpw",
        "unix://:s3cretpw@tmp/x.sock",     "redis://:s3cretpw%@h",
        "redis://u:s3cretpw@a:1,,b:2",     "redis://u:s3cretpw@a:1,b:0",
        "unix://:s3cretpw@/a.sock,/b.sock", "redis://:s3cretpw@a,unix:///x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        md_redis_url u;
        err[0] = '\0';
        assert_int_equal(md_redis_url_parse(bad[i], &u, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        if (strstr(err, "s3cretpw")) fail_msg("'%s' leaked into: %s", bad[i], err);
    }
}

static void redact_is(const char *in, const char *want)
{
    char out[256];
    md_redis_url_redact(in, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_redact(void **state)
{
    (void)state;
    redact_is("redis://u:secret@h:6379/0", "redis://u:***@h:6379/0");
    redact_is("redis://:secret@h", "redis://:***@h");
    redact_is("rediss://user:p%40ss@[::1]:6380/2", "rediss://user:***@[::1]:6380/2");
    redact_is("redis://:a@b@h", "redis://:***@h");
    /* Seed lists: the password goes, every seed stays. */
    redact_is("redis://u:secret@h1:7001,h2:7002,[::1]:7003/0",
              "redis://u:***@h1:7001,h2:7002,[::1]:7003/0");
    redact_is("rediss://:secret@[::1],[::2]:7001", "rediss://:***@[::1],[::2]:7001");
    redact_is("redis://:se,cr@et@h1,h2", "redis://:***@h1,h2");
    redact_is("redis://h1:7001,h2:7002", "redis://h1:7001,h2:7002");
    redact_is("unix://:pw@/tmp/r.sock?db=1", "unix://:***@/tmp/r.sock?db=1");
    redact_is("redis://localhost:6379/0", "redis://localhost:6379/0");
    redact_is("redis://bob@h", "redis://bob@h");
    redact_is("redis://bob:@h", "redis://bob:@h");
    redact_is("unix:///tmp/r.sock", "unix:///tmp/r.sock");
    redact_is("unix:///tmp/a:b@c.sock", "unix:///tmp/a:b@c.sock");
    redact_is("unix://u:p@/tmp/a:b@c.sock", "unix://u:***@/tmp/a:b@c.sock");
    redact_is("amqp://guest:guest@rabbit//", "amqp://guest:***@rabbit//");
    redact_is("not a url", "not a url");
    redact_is("", "");

    char small[12];
    md_redis_url_redact("redis://u:secret@h", small, sizeof small);
    assert_string_equal(small, "redis://u:*");
    md_redis_url_redact(NULL, small, sizeof small);
    assert_string_equal(small, "");
}

/* ---- listen specs ---- */

static md_listen_spec listen_ok(const char *s)
{
    md_listen_spec l;
    err[0] = '\0';
    int rc = md_listen_parse(s, &l, err, sizeof err);
    if (rc != 0) print_error("unexpected error for %s: %s\n", s, err);
    assert_int_equal(rc, 0);
    assert_string_equal(l.spec, s);
    return l;
}

static void listen_bad(const char *s, const char *want)
{
    md_listen_spec l, before;
    memset(&l, 0x5a, sizeof l);
    before = l;
    err[0] = '\0';
    assert_int_equal(md_listen_parse(s, &l, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_memory_equal(&l, &before, sizeof l);
}

static void test_listen_forms(void **state)
{
    (void)state;
    md_listen_spec l = listen_ok("udp://127.0.0.1:7400?format=bin1");
    assert_int_equal(l.kind, MD_LISTEN_UDP);
    assert_int_equal(l.format, MD_FMT_BIN1);
    assert_string_equal(l.host, "127.0.0.1");
    assert_int_equal(l.port, 7400);
    assert_string_equal(l.path, "");

    l = listen_ok("udp://127.0.0.1:7400");
    assert_int_equal(l.format, MD_FMT_BIN1);
    l = listen_ok("udp://127.0.0.1:7400?format=jsonl");
    assert_int_equal(l.format, MD_FMT_JSONL);

    l = listen_ok("tcp://localhost:7401");
    assert_int_equal(l.kind, MD_LISTEN_TCP);
    assert_int_equal(l.format, MD_FMT_JSONL);
    assert_string_equal(l.host, "localhost");
    assert_int_equal(l.port, 7401);
    l = listen_ok("tcp://[::1]:7402?format=binance");
    assert_string_equal(l.host, "::1");
    assert_int_equal(l.port, 7402);
    assert_int_equal(l.format, MD_FMT_BINANCE);
    l = listen_ok("udp://0.0.0.0:9");
    assert_string_equal(l.host, "0.0.0.0");
    l = listen_ok("udp://[::]:9");
    assert_string_equal(l.host, "::");

    l = listen_ok("unix:///run/mdcache/feed.sock?format=jsonl");
    assert_int_equal(l.kind, MD_LISTEN_UNIX);
    assert_int_equal(l.format, MD_FMT_JSONL);
    assert_string_equal(l.path, "/run/mdcache/feed.sock");
    l = listen_ok("unix:///tmp/f.sock?format=bin1");
    assert_int_equal(l.format, MD_FMT_BIN1);

    l = listen_ok("file://captures/day1.jsonl");
    assert_int_equal(l.kind, MD_LISTEN_FILE);
    assert_int_equal(l.format, MD_FMT_JSONL);
    assert_string_equal(l.path, "captures/day1.jsonl");
    l = listen_ok("file:///var/data/b.bin?format=bin1");
    assert_string_equal(l.path, "/var/data/b.bin");
    assert_int_equal(l.format, MD_FMT_BIN1);
}

static void test_listen_errors(void **state)
{
    (void)state;
    listen_bad("", "empty listen spec");
    listen_bad("http://h:1", "unknown listen spec 'http://h:1' (want udp://HOST:PORT, "
                             "tcp://HOST:PORT, unix:///PATH or file://PATH, each with optional "
                             "?format=bin1|jsonl|binance)");
    listen_bad("udp://127.0.0.1", "missing port (HOST:PORT, port 1..65535)");
    listen_bad("udp://", "missing HOST:PORT");
    listen_bad("udp://:7400", "missing host");
    listen_bad("tcp://h:0", "bad port '0' (want 1..65535)");
    listen_bad("tcp://h:70000", "bad port '70000' (want 1..65535)");
    listen_bad("udp://h:1?format=xml", "unknown format 'xml' (want bin1, jsonl or binance)");
    listen_bad("udp://h:1?fmt=bin1", "unknown query parameter 'fmt' (only format=)");
    listen_bad("udp://h:1?format=bin1&format=jsonl", "format given twice");
    listen_bad("udp://h:1?", "empty query parameter in listen spec");
    listen_bad("udp://::1:7400", "IPv6 addresses need brackets, e.g. [::1]:6379");
    listen_bad("udp://h:1/x", "bad port '1/x' (want 1..65535)");
    listen_bad("unix://run/x.sock", "unix listen spec needs an absolute path: unix:///path.sock");
    listen_bad("file://", "missing path after file://");
    listen_bad("file://?format=jsonl", "missing path after file://");

    char big[600] = "file:///";
    memset(big + 8, 'a', 520);
    big[528] = '\0';
    listen_bad(big, "listen spec too long (max 511 bytes)");
    memset(big, 0, sizeof big);
    strcpy(big, "file:///");
    memset(big + 8, 'a', 300);
    listen_bad(big, "file path too long (max 255 bytes)");
}

/* ---- CPU lists ---- */

static void cpus_are(const char *s, const int *want, int nwant)
{
    int cpus[MD_MAX_WORKERS], n = -1;
    err[0] = '\0';
    int rc = md_cpus_parse(s, cpus, MD_MAX_WORKERS, &n, err, sizeof err);
    if (rc != 0) print_error("unexpected error for '%s': %s\n", s, err);
    assert_int_equal(rc, 0);
    assert_int_equal(n, nwant);
    assert_memory_equal(cpus, want, (size_t)nwant * sizeof(int));
}

static void cpus_bad(const char *s, int max, const char *want)
{
    int cpus[8] = {7, 7, 7, 7, 7, 7, 7, 7}, n = 99;
    err[0] = '\0';
    assert_int_equal(md_cpus_parse(s, cpus, max, &n, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_int_equal(n, 99);
    assert_int_equal(cpus[0], 7);
}

static void test_cpus(void **state)
{
    (void)state;
    cpus_are("0", (int[]){0}, 1);
    cpus_are("1,3-5", (int[]){1, 3, 4, 5}, 4);
    cpus_are(" 0 , 2 ", (int[]){0, 2}, 2);
    cpus_are("3,1", (int[]){3, 1}, 2);
    cpus_are("7-7", (int[]){7}, 1);
    cpus_are("\t2-3 ,0", (int[]){2, 3, 0}, 3);
    cpus_are("1023", (int[]){1023}, 1);

    cpus_bad("", 8, "empty CPU list");
    cpus_bad("  ", 8, "empty CPU list");
    cpus_bad("1,,2", 8, "empty item in CPU list");
    cpus_bad("1,", 8, "empty item in CPU list");
    cpus_bad(",1", 8, "empty item in CPU list");
    cpus_bad("1,1", 8, "CPU 1 listed twice");
    cpus_bad("0-2,2", 8, "CPU 2 listed twice");
    cpus_bad("5-3", 8, "bad CPU range '5-3' (start above end)");
    cpus_bad("1-", 8, "bad CPU range '1-' (want A-B, CPUs 0..1023)");
    cpus_bad("-1", 8, "bad CPU range '-1' (want A-B, CPUs 0..1023)");
    cpus_bad("1, x2 ", 8, "bad CPU 'x2' (want a number 0..1023 or a range A-B)");
    cpus_bad("1 2", 8, "bad CPU '1 2' (want a number 0..1023 or a range A-B)");
    cpus_bad("+1", 8, "bad CPU '+1' (want a number 0..1023 or a range A-B)");
    cpus_bad("1024", 8, "bad CPU '1024' (want a number 0..1023 or a range A-B)");
    cpus_bad("0-8", 8, "too many CPUs (max 8)");
    cpus_bad("0-1023", 8, "too many CPUs (max 8)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_defaults),
        cmocka_unit_test(test_redis_url_full),
        cmocka_unit_test(test_redis_url_ipv6_tls_unix),
        cmocka_unit_test(test_redis_url_errors),
        cmocka_unit_test(test_redis_url_single_seed),
        cmocka_unit_test(test_redis_url_seeds),
        cmocka_unit_test(test_redis_url_seed_errors),
        cmocka_unit_test(test_redis_url_errors_hide_password),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
