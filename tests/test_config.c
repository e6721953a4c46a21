/* Tests for src/config.c: defaults, the INI file, command line, environment,
 * validation, printing and the round trip through md_config_print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "md_config.h"

static char err[1024];
static md_config cfg, cfg2;

static void clear_env(void)
{
    unsetenv("REDIS_URL");
    unsetenv("CELERY_BROKER_URL");
    unsetenv("REDIS_PASSWORD");
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    err[0] = '\0';
    return 0;
}

/* Writes text to a fresh temp file; the caller unlinks it. */
static char *temp_file(const char *text)
{
    static char paths[8][64];
    static int next;
    char *p = paths[next++ % 8];
    strcpy(p, "/tmp/mdcache-test-XXXXXX");
    int fd = mkstemp(p);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return p;
}

#define ARGV(...) ((char *[]){"mdcache", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"mdcache", __VA_ARGS__}) / sizeof(char *)))
#define LOAD(...) md_config_load(&cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), err, sizeof err)
#define LOAD_CLIENT(...)                                                                           \
    md_config_load_client(&cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), err, sizeof err)

static int load_ok_str(const char *ini)
{
    md_config_defaults(&cfg);
    int rc = md_config_load_string(&cfg, ini, "t.ini", err, sizeof err);
    if (rc != 0) print_error("unexpected error: %s\n", err);
    return rc;
}

static void load_bad_str(const char *ini, const char *want)
{
    md_config_defaults(&cfg);
    err[0] = '\0';
    assert_int_equal(md_config_load_string(&cfg, ini, "t.ini", err, sizeof err), -1);
    assert_string_equal(err, want);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    assert_string_equal(cfg.config_path, "");
    assert_int_equal(cfg.ncpus, 1);
    assert_int_equal(cfg.cpus[0], 0);
    assert_int_equal(cfg.log_level, MD_LOG_INFO);
    assert_true(cfg.stats_interval_s == 5.0);
    assert_int_equal(cfg.max_keys, 1000000);
    assert_true(cfg.shutdown_timeout_s == 5.0);
    assert_int_equal(cfg.nlisten, 0);
    assert_int_equal(cfg.udp_buffers, 256);
    assert_int_equal(cfg.udp_buffer_size, 16384);
    assert_int_equal(cfg.ring_size, 65536);
    assert_string_equal(cfg.redis_url, "redis://localhost:6379/0");
    assert_string_equal(cfg.redis_url_from, "default");
    assert_int_equal(cfg.redis.kind, MD_REDIS_TCP);
    assert_string_equal(cfg.redis.host, "localhost");
    assert_int_equal(cfg.redis.port, 6379);
    assert_int_equal(cfg.redis.db, 0);
    assert_string_equal(cfg.redis.pass, "");
    assert_int_equal(cfg.redis.nseeds, 1);
    assert_string_equal(cfg.redis.seeds[0].host, "localhost");
    assert_int_equal(cfg.redis.seeds[0].port, 6379);
    assert_int_equal(cfg.cluster, MD_CLUSTER_AUTO);
    assert_int_equal(cfg.max_batch, 256);
    assert_int_equal(cfg.max_inflight, 8);
    assert_true(cfg.connect_timeout_s == 2.0);
    assert_true(cfg.reconnect_min_s == 0.05);
    assert_true(cfg.reconnect_max_s == 0.5);
    assert_string_equal(cfg.key_prefix, "");
    assert_string_equal(cfg.price_key, "price:{symbol}:latest");
    assert_int_equal(cfg.price_ttl_s, 5);
    assert_string_equal(cfg.last_good_key, "price:{symbol}:last_good");
    assert_true(cfg.last_good_interval_s == 1.0);
    assert_int_equal(cfg.last_good_ttl_s, 0);
    assert_true(cfg.refresh_fraction == 0.5);
    assert_true(cfg.source_timeout_s == 3.0);
    /* Account classes: the seeds' keys and TTLs. */
    assert_int_equal(cfg.max_accounts, 100000);
    assert_int_equal(cfg.max_positions, 1000);
    assert_int_equal(cfg.max_orders, 1000);
    assert_string_equal(cfg.positions_key, "hft:positions:{account}:all");
    assert_int_equal(cfg.positions_ttl_s, 1);
    assert_string_equal(cfg.order_key, "hft:orders:pending:{account}:{order_id}");
    assert_string_equal(cfg.order_list_key, "hft:orders:pending:{account}");
    assert_int_equal(cfg.orders_ttl_s, 1);
    assert_string_equal(cfg.balances_key, "hft:balances:{account}:all");
    assert_int_equal(cfg.balances_ttl_s, 2);
    assert_string_equal(cfg.accounts_key, "hft:accounts:{account}");
    assert_int_equal(cfg.accounts_ttl_s, 300);
    assert_false(cfg.check_only);
}

/* ---- the INI file ---- */

static const char every_key[] = "; every key, none at its default\n"
                                "[mdcache]\n"
                                "cpus = 1,0\n"
                                "log_level = debug\n"
                                "stats_interval = 0\n"
                                "report_file = /tmp/md-report.json\n"
                                "metrics = [::1]:9464\n"
                                "idle = spin\n"
                                "sched_priority = 20\n"
                                "mlock = yes\n"
                                "max_keys = 5000\n"
                                "max_accounts = 50\n"
                                "max_positions = 7\n"
                                "max_orders = 9\n"
                                "shutdown_timeout = 1.5\n"
                                "\n"
                                "[feeds]\n"
                                "listen = udp://127.0.0.1:7400?format=bin1\n"
                                "listen = tcp://[::1]:7401\n"
                                "listen = unix:///tmp/md.sock?format=binance\n"
                                "udp_buffers = 1024\n"
                                "udp_buffer_size = 2048\n"
                                "ring_size = 4096\n"
                                "[redis]\n"
                                "url = rediss://app@redis.internal:6390/3\n"
                                "password = fromfile\n"
                                "cluster = no\n"
                                "max_batch = 100\n"
                                "max_inflight = 12\n"
                                "connect_timeout = 0.25\n"
                                "reconnect_min = 0.01\n"
                                "reconnect_max = 10\n"
                                "[keys]\n"
                                "prefix = md:\n"
                                "price_key = px:{symbol}\n"
                                "price_ttl = 30\n"
                                "last_good_key = lg:{symbol}\n"
                                "last_good_interval = 2.5\n"
                                "last_good_ttl = 86400\n"
                                "positions_key = p:{account}\n"
                                "positions_ttl = 3\n"
                                "order_key = o:{account}:{order_id}\n"
                                "order_list_key = ol:{account}\n"
                                "orders_ttl = 4\n"
                                "balances_key = b:{account}\n"
                                "balances_ttl = 5\n"
                                "accounts_key = a:{account}\n"
                                "accounts_ttl = 6\n"
                                "refresh_fraction = 0.25\n"
                                "source_timeout = 7\n";

static void check_every_key(const md_config *c)
{
    assert_int_equal(c->ncpus, 2);
    assert_int_equal(c->cpus[0], 1);
    assert_int_equal(c->cpus[1], 0);
    assert_int_equal(c->log_level, MD_LOG_DEBUG);
    assert_true(c->stats_interval_s == 0.0);
    assert_string_equal(c->report_file, "/tmp/md-report.json");
    assert_string_equal(c->metrics_addr, "[::1]:9464");
    assert_int_equal(c->idle, MD_IDLE_SPIN);
    assert_int_equal(c->sched_priority, 20);
    assert_int_equal(c->mlock, 1);
    assert_int_equal(c->max_keys, 5000);
    assert_true(c->shutdown_timeout_s == 1.5);
    assert_int_equal(c->nlisten, 3);
    assert_int_equal(c->listen[0].kind, MD_LISTEN_UDP);
    assert_int_equal(c->listen[0].port, 7400);
    assert_string_equal(c->listen[1].host, "::1");
    assert_int_equal(c->listen[1].format, MD_FMT_JSONL);
    assert_string_equal(c->listen[2].path, "/tmp/md.sock");
    assert_int_equal(c->listen[2].format, MD_FMT_BINANCE);
    assert_int_equal(c->udp_buffers, 1024);
    assert_int_equal(c->udp_buffer_size, 2048);
    assert_int_equal(c->ring_size, 4096);
    assert_string_equal(c->redis_url, "rediss://app@redis.internal:6390/3");
    assert_int_equal(c->redis.kind, MD_REDIS_TLS);
    assert_string_equal(c->redis.host, "redis.internal");
    assert_int_equal(c->redis.port, 6390);
    assert_int_equal(c->redis.db, 3);
    assert_string_equal(c->redis.user, "app");
    assert_string_equal(c->redis.pass, "fromfile");
    assert_int_equal(c->cluster, MD_CLUSTER_NO);
    assert_int_equal(c->max_batch, 100);
    assert_int_equal(c->max_inflight, 12);
    assert_true(c->connect_timeout_s == 0.25);
    assert_true(c->reconnect_min_s == 0.01);
    assert_true(c->reconnect_max_s == 10.0);
    assert_string_equal(c->key_prefix, "md:");
    assert_string_equal(c->price_key, "px:{symbol}");
    assert_int_equal(c->price_ttl_s, 30);
    assert_string_equal(c->last_good_key, "lg:{symbol}");
    assert_true(c->last_good_interval_s == 2.5);
    assert_int_equal(c->last_good_ttl_s, 86400);
    assert_true(c->refresh_fraction == 0.25);
    assert_true(c->source_timeout_s == 7.0);
    assert_int_equal(c->max_accounts, 50);
    assert_int_equal(c->max_positions, 7);
    assert_int_equal(c->max_orders, 9);
    assert_string_equal(c->positions_key, "p:{account}");
    assert_int_equal(c->positions_ttl_s, 3);
    assert_string_equal(c->order_key, "o:{account}:{order_id}");
    assert_string_equal(c->order_list_key, "ol:{account}");
    assert_int_equal(c->orders_ttl_s, 4);
    assert_string_equal(c->balances_key, "b:{account}");
    assert_int_equal(c->balances_ttl_s, 5);
    assert_string_equal(c->accounts_key, "a:{account}");
    assert_int_equal(c->accounts_ttl_s, 6);
}

static void test_every_key(void **state)
{
    (void)state;
    assert_int_equal(load_ok_str(every_key), 0);
    check_every_key(&cfg);
    assert_string_equal(cfg.redis_url_from, "config file");
}

static void test_syntax_details(void **state)
{
    (void)state;
    /* Indented keys, CRLF, '#' comments, inline " ;" comments, quotes,
     * blanks inside the section brackets, warning as an alias. */
    assert_int_equal(load_ok_str("# top comment\r\n"
                                 "[ keys ]\r\n"
                                 "    prefix = \"  spaced \"\r\n"
                                 "\tprice_ttl = 9 ; nine seconds\r\n"
                                 "last_good_key = \"\"\n"
                                 "[mdcache]\n"
                                 "log_level = warning\n"
                                 "cpus = 0 , 1\n"),
                     0);
    assert_string_equal(cfg.key_prefix, "  spaced ");
    assert_int_equal(cfg.price_ttl_s, 9);
    assert_string_equal(cfg.last_good_key, "");
    assert_int_equal(cfg.log_level, MD_LOG_WARN);
    assert_int_equal(cfg.ncpus, 2);
    /* A long run of '\r' after a short line is not part of its length
     * (a fuzzer found this overrunning inih's line buffer). */
    char crs[400] = "[keys]\nprefix = cr";
    memset(crs + strlen(crs), '\r', 300);
    assert_int_equal(load_ok_str(crs), 0);
    assert_string_equal(cfg.key_prefix, "cr");
    /* A UTF-8 BOM and "key: value" (configparser style) are accepted. */
    assert_int_equal(load_ok_str("\xEF\xBB\xBF[redis]\nmax_batch: 77\n"), 0);
    assert_int_equal(cfg.max_batch, 77);
    /* An empty file changes nothing. */
    assert_int_equal(load_ok_str(""), 0);
    assert_int_equal(cfg.max_batch, 256);
    /* A second load replaces the listen list, it does not append. */
    assert_int_equal(load_ok_str("[feeds]\nlisten = udp://127.0.0.1:1\nlisten = udp://127.0.0.1:2\n"),
                     0);
    assert_int_equal(md_config_load_string(&cfg, "[feeds]\nlisten = udp://127.0.0.1:3\n", "b.ini",
                                           err, sizeof err),
                     0);
    assert_int_equal(cfg.nlisten, 1);
    assert_int_equal(cfg.listen[0].port, 3);
}

static void test_value_errors(void **state)
{
    (void)state;
    load_bad_str("[redis]\nmax_batch = abc\n",
                 "t.ini:2: [redis] max_batch: expected an integer 1..100000, got 'abc'");
    load_bad_str("[redis]\n\n; c\nmax_batch = 100001\n",
                 "t.ini:4: [redis] max_batch: expected an integer 1..100000, got '100001'");
    load_bad_str("[redis]\nmax_batch = -1\n",
                 "t.ini:2: [redis] max_batch: expected an integer 1..100000, got '-1'");
    load_bad_str("[redis]\nmax_batch = 12x\n",
                 "t.ini:2: [redis] max_batch: expected an integer 1..100000, got '12x'");
    load_bad_str("[redis]\nmax_batch = 99999999999999999999999\n",
                 "t.ini:2: [redis] max_batch: expected an integer 1..100000, got "
                 "'99999999999999999999999'");
    load_bad_str("[redis]\nmax_inflight = 65\n",
                 "t.ini:2: [redis] max_inflight: expected an integer 1..64, got '65'");
    load_bad_str("[feeds]\nudp_buffers = 100\n",
                 "t.ini:2: [feeds] udp_buffers: expected a power of two 1..32768, got '100'");
    load_bad_str("[feeds]\nudp_buffer_size = 511\n",
                 "t.ini:2: [feeds] udp_buffer_size: expected an integer 512..65536, got '511'");
    load_bad_str("[feeds]\nring_size = 1\n",
                 "t.ini:2: [feeds] ring_size: expected an integer 2..16777216, got '1'");
    load_bad_str("[mdcache]\nmax_keys = 0\n",
                 "t.ini:2: [mdcache] max_keys: expected an integer 1..1000000000, got '0'");
    load_bad_str("[mdcache]\nstats_interval = 1e3\n",
                 "t.ini:2: [mdcache] stats_interval: expected seconds 0..86400 (e.g. 0.5), got '1e3'");
    load_bad_str("[mdcache]\nshutdown_timeout = -1\n",
                 "t.ini:2: [mdcache] shutdown_timeout: expected seconds 0..3600 (e.g. 0.5), got '-1'");
    load_bad_str("[redis]\nconnect_timeout = 0\n",
                 "t.ini:2: [redis] connect_timeout: expected seconds above 0, at most 3600 (e.g. "
                 "0.5), got '0'");
    load_bad_str("[redis]\nreconnect_min = 1..2\n",
                 "t.ini:2: [redis] reconnect_min: expected seconds above 0, at most 3600 (e.g. "
                 "0.5), got '1..2'");
    load_bad_str("[keys]\nrefresh_fraction = 1\n",
                 "t.ini:2: [keys] refresh_fraction: expected a fraction strictly between 0 and 1 "
                 "(e.g. 0.5), got '1'");
    load_bad_str("[keys]\nprice_ttl = 0\n",
                 "t.ini:2: [keys] price_ttl: expected an integer 1..31536000, got '0'");
    load_bad_str("[keys]\nprice_key = price:latest\n",
                 "t.ini:2: [keys] price_key: must contain {symbol} exactly once, got 'price:latest'");
    load_bad_str("[keys]\nprice_key = {symbol}:{symbol}\n",
                 "t.ini:2: [keys] price_key: must contain {symbol} exactly once, got "
                 "'{symbol}:{symbol}'");
    load_bad_str("[keys]\nlast_good_key = lg\n",
                 "t.ini:2: [keys] last_good_key: must contain {symbol} exactly once (or be empty), "
                 "got 'lg'");
    load_bad_str("[keys]\npositions_key = p:{symbol}\n",
                 "t.ini:2: [keys] positions_key: must contain {account} exactly once (or be "
                 "empty), got 'p:{symbol}'");
    load_bad_str("[keys]\norder_key = o:{account}\n",
                 "t.ini:2: [keys] order_key: must contain {account}, then something, then "
                 "{order_id}, each once (or be empty), got 'o:{account}'");
    load_bad_str("[keys]\norder_key = o:{account}{order_id}\n",
                 "t.ini:2: [keys] order_key: must contain {account}, then something, then "
                 "{order_id}, each once (or be empty), got 'o:{account}{order_id}'");
    load_bad_str("[keys]\norder_key = o:{order_id}:{account}\n",
                 "t.ini:2: [keys] order_key: must contain {account}, then something, then "
                 "{order_id}, each once (or be empty), got 'o:{order_id}:{account}'");
    load_bad_str("[keys]\naccounts_ttl = 0\n",
                 "t.ini:2: [keys] accounts_ttl: expected an integer 1..31536000, got '0'");
    load_bad_str("[mdcache]\nmax_orders = 0\n",
                 "t.ini:2: [mdcache] max_orders: expected an integer 1..100000, got '0'");
    load_bad_str("[keys]\nprefix = 0123456789012345678901234567890123456789012345678901234567890123\n",
                 "t.ini:2: [keys] prefix: too long (64 bytes, max 63)");
    load_bad_str("[mdcache]\nlog_level = loud\n",
                 "t.ini:2: [mdcache] log_level: expected error, warn, info or debug, got 'loud'");
    load_bad_str("[mdcache]\nidle = busy\n",
                 "t.ini:2: [mdcache] idle: expected wait or spin, got 'busy'");
    load_bad_str("[redis]\ncluster = maybe\n",
                 "t.ini:2: [redis] cluster: expected auto, yes or no, got 'maybe'");
    load_bad_str("[redis]\ncluster = YES\n",
                 "t.ini:2: [redis] cluster: expected auto, yes or no, got 'YES'");
    load_bad_str("[redis]\nurl = redis://a:1,,b:2\n",
                 "t.ini:2: [redis] url: empty seed node 2 in the seed list "
                 "(host[:port],host[:port],...)");
    load_bad_str("[redis]\nurl = redis://u:hunter2@a:1,b:0\n",
                 "t.ini:2: [redis] url: seed node 2: bad port '0' (want 1..65535)");
    load_bad_str("[mdcache]\ncpus = 1,1\n", "t.ini:2: [mdcache] cpus: CPU 1 listed twice");
    load_bad_str("[mdcache]\ncpus =\n", "t.ini:2: [mdcache] cpus: empty CPU list");
    load_bad_str("[feeds]\nlisten = udp://1.2.3.4\n",
                 "t.ini:2: [feeds] listen: missing port (HOST:PORT, port 1..65535)");
    load_bad_str("[redis]\nurl = redis://u:hunter2@h:0\n",
                 "t.ini:2: [redis] url: bad port '0' (want 1..65535)");
}

static void test_structure_errors(void **state)
{
    (void)state;
    load_bad_str("[keys]\nprefix = a\nbogus = 1\n",
                 "t.ini:3: [keys] bogus: unknown key (keys in [keys]: prefix, price_key, price_ttl, "
                 "last_good_key, last_good_interval, last_good_ttl, price_channel, "
                 "watch_expired, set_notify_events, publish_events, events_channel, "
                 "positions_key, positions_ttl, order_key, order_list_key, orders_ttl, "
                 "balances_key, balances_ttl, accounts_key, accounts_ttl, "
                 "refresh_fraction, source_timeout)");
    load_bad_str("[keys]\nprice_channel = prices\n",
                 "t.ini:2: [keys] price_channel: must contain {symbol} exactly once (or be "
                 "empty), got 'prices'");
    load_bad_str("[redis]\nmaxbatch = 1\n",
                 "t.ini:2: [redis] maxbatch: unknown key (keys in [redis]: url, password, "
                 "cluster, max_batch, max_inflight, connect_timeout, reconnect_min, reconnect_max, "
                 "keepalive, reply_timeout, client_name, cacert, cacertdir, cert, key, sni, "
                 "insecure)");
    load_bad_str("[mdcache]\ncpus = 0\n[nope]\n",
                 "t.ini:3: [nope]: unknown section (known: [mdcache], [feeds], [redis], [keys])");
    load_bad_str("[feeds]\n[Redis]\nurl = redis://h\n",
                 "t.ini:2: [Redis]: unknown section (known: [mdcache], [feeds], [redis], [keys])");
    load_bad_str("max_batch = 1\n", "t.ini:1: max_batch: key outside any section (put it under "
                                    "[mdcache], [feeds], [redis] or [keys])");
    load_bad_str("[redis]\nmax_batch = 1\n\nmax_batch = 2\n",
                 "t.ini:4: [redis] max_batch: given twice (first on line 2)");
    load_bad_str("[redis]\nmax_batch\n",
                 "t.ini:2: syntax error (expected [section] or key = value)");
    load_bad_str("[redis\nmax_batch = 1\n",
                 "t.ini:1: syntax error (expected [section] or key = value)");
    /* The first error wins, whether inih's or ours. */
    load_bad_str("[redis]\ngarbage\nmax_batch = x\n",
                 "t.ini:2: syntax error (expected [section] or key = value)");
    load_bad_str("[redis]\nmax_batch = x\ngarbage\n",
                 "t.ini:2: [redis] max_batch: expected an integer 1..100000, got 'x'");

    char longline[400];
    strcpy(longline, "[keys]\nprefix = ");
    memset(longline + strlen(longline), 'a', 250);
    longline[16 + 250] = '\0';
    strcat(longline, "\nprice_ttl = 3\n");
    load_bad_str(longline, "t.ini:2: line too long (259 characters, max 197)");

    char nul[] = "[keys]\nprice_ttl = 3\nprefix = a\0b\n";
    md_config_defaults(&cfg);
    /* Only a file can hold a NUL byte; a string ends at it. */
    char *path = temp_file("");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(nul, 1, sizeof nul - 1, f), sizeof nul - 1);
    fclose(f);
    assert_int_equal(md_config_load_file(&cfg, path, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:3: NUL byte in line", path);
    assert_string_equal(err, want);
    unlink(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    assert_int_equal(md_config_load_file(&cfg, "/nonexistent/mdcache.ini", err, sizeof err), -1);
    assert_string_equal(err, "/nonexistent/mdcache.ini: cannot open: No such file or directory");
    assert_int_equal(md_config_load_file(&cfg, "/tmp", err, sizeof err), -1);
    assert_string_equal(err, "/tmp: cannot read: Is a directory");

    char *path = temp_file("[feeds]\nlisten = udp://127.0.0.1:7400\n[redis]\nmax_batch = 0\n");
    char want[256];
    assert_int_equal(LOAD("-c", path), -1);
    snprintf(want, sizeof want,
             "%s:4: [redis] max_batch: expected an integer 1..100000, got '0'", path);
    assert_string_equal(err, want);
    unlink(path);

    assert_int_equal(LOAD("--config", "/nonexistent/x.ini"), -1);
    assert_string_equal(err, "/nonexistent/x.ini: cannot open: No such file or directory");
}

/* ---- command line ---- */

static void test_cli_basics(void **state)
{
    (void)state;
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:7400"), 0);
    assert_int_equal(cfg.nlisten, 1);
    assert_string_equal(cfg.listen[0].spec, "udp://127.0.0.1:7400");
    assert_string_equal(cfg.redis_url_from, "default");
    assert_false(cfg.check_only);

    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--listen", "tcp://127.0.0.1:2",
                          "--cpus", "1-1", "--log-level", "error", "--stats-interval", "0.5",
                          "--max-keys", "77", "--redis", "unix:///tmp/r.sock?db=2", "--idle",
                          "spin", "--report", "/tmp/r.json", "--metrics", "127.0.0.1:9464",
                          "--sched-priority", "99", "--mlock"),
                     0);
    assert_int_equal(cfg.sched_priority, 99);
    assert_int_equal(cfg.mlock, 1);
    assert_string_equal(cfg.metrics_addr, "127.0.0.1:9464");
    assert_int_equal(cfg.nlisten, 2);
    assert_int_equal(cfg.listen[1].kind, MD_LISTEN_TCP);
    assert_int_equal(cfg.ncpus, 1);
    assert_int_equal(cfg.cpus[0], 1);
    assert_int_equal(cfg.log_level, MD_LOG_ERROR);
    assert_true(cfg.stats_interval_s == 0.5);
    assert_int_equal(cfg.max_keys, 77);
    assert_int_equal(cfg.idle, MD_IDLE_SPIN);
    assert_string_equal(cfg.report_file, "/tmp/r.json");
    assert_int_equal(cfg.redis.kind, MD_REDIS_UNIX);
    assert_int_equal(cfg.redis.db, 2);
    assert_string_equal(cfg.redis_url_from, "command line");

    /* Each call starts from the defaults and resets getopt. */
    assert_int_equal(LOAD("--listen=udp://127.0.0.1:3"), 0);
    assert_int_equal(cfg.max_keys, 1000000);
    assert_int_equal(cfg.listen[0].port, 3);
}

static void test_cli_errors(void **state)
{
    (void)state;
    /* A tool's load: the daemon's feeds and CPUs are not its business,
     * everything else is checked as for the daemon. */
    assert_int_equal(LOAD("--redis", "redis://127.0.0.1:7000,127.0.0.1:7001"), -1);
    assert_int_equal(LOAD_CLIENT("--redis", "redis://127.0.0.1:7000,127.0.0.1:7001", "--cpus",
                                 "1000"),
                     0);
    assert_int_equal(cfg.redis.nseeds, 2);
    assert_int_equal(LOAD_CLIENT("--redis", "redis://127.0.0.1:0"), -1);
    assert_int_equal(LOAD_CLIENT("--cluster", "no", "--redis", "redis://a:1,b:2"), -1);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--sched-priority", "100"), -1);
    assert_string_equal(err, "--sched-priority: expected an integer 0..99, got '100'");
    assert_int_equal(LOAD("--bogus"), -1);
    assert_string_equal(err, "unknown option '--bogus' (see --help)");
    assert_int_equal(LOAD("-x"), -1);
    assert_string_equal(err, "unknown option '-x' (see --help)");
    assert_int_equal(LOAD("--redis"), -1);
    assert_string_equal(err, "option --redis needs an argument (see --help)");
    assert_int_equal(LOAD("-c"), -1);
    assert_string_equal(err, "option --config needs an argument (see --help)");
    assert_int_equal(LOAD("--version=2"), -1);
    assert_string_equal(err, "option --version takes no argument (see --help)");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "extra"), -1);
    assert_string_equal(err, "unexpected argument 'extra' (see --help)");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--max-keys", "x"), -1);
    assert_string_equal(err, "--max-keys: expected an integer 1..1000000000, got 'x'");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--stats-interval", "-1"), -1);
    assert_string_equal(err, "--stats-interval: expected seconds 0..86400 (e.g. 0.5), got '-1'");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--log-level", "x"), -1);
    assert_string_equal(err, "--log-level: expected error, warn, info or debug, got 'x'");
    assert_int_equal(LOAD("--listen", "bogus"), -1);
    assert_string_equal(err, "--listen: unknown listen spec 'bogus' (want udp://HOST:PORT, "
                             "tcp://HOST:PORT, unix:///PATH or file://PATH, each with optional "
                             "?format=bin1|jsonl|binance)");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--redis", "redis://:pw@h:x"), -1);
    assert_string_equal(err, "--redis: bad port 'x' (want 1..65535)");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cpus", "0-"), -1);
    assert_string_equal(err, "--cpus: bad CPU range '0-' (want A-B, CPUs 0..1023)");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "on"), -1);
    assert_string_equal(err, "--cluster: expected auto, yes or no, got 'on'");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster"), -1);
    assert_string_equal(err, "option --cluster needs an argument (see --help)");

    /* --metrics: numeric host and a port, nothing resolved or defaulted. */
    static const char *bad_metrics[] = {"9464", "localhost:9464", "127.0.0.1", "127.0.0.1:",
                                        "127.0.0.1:0", "127.0.0.1:65536", "::1:9464",
                                        "[::1]9464", "[127.0.0.1]:1", "1.2.3:80", ":80"};
    for (size_t i = 0; i < sizeof bad_metrics / sizeof bad_metrics[0]; i++) {
        assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--metrics", (char *)bad_metrics[i]),
                         -1);
        assert_non_null(strstr(err, "--metrics: "));
    }
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--metrics", "localhost:9464"), -1);
    assert_string_equal(err, "--metrics: expected HOST:PORT with a numeric IPv4 or [IPv6] "
                             "address, e.g. 127.0.0.1:9464, got 'localhost:9464'");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--metrics", "127.0.0.1:0"), -1);
    assert_string_equal(err, "--metrics: port must be 1..65535, got '127.0.0.1:0'");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--metrics", "0.0.0.0:9464"), 0);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--metrics", ""), 0);
    assert_string_equal(cfg.metrics_addr, "");
}

/* Sends stdout to a temp file between capture_begin and capture_end. */
static int cap_fd = -1, cap_saved = -1;
static char captured[16384];

static void capture_begin(void)
{
    char path[] = "/tmp/mdcache-out-XXXXXX";
    cap_fd = mkstemp(path);
    assert_true(cap_fd >= 0);
    unlink(path);
    fflush(stdout);
    cap_saved = dup(1);
    dup2(cap_fd, 1);
}

static const char *capture_end(void)
{
    fflush(stdout);
    dup2(cap_saved, 1);
    close(cap_saved);
    ssize_t n = pread(cap_fd, captured, sizeof captured - 1, 0);
    close(cap_fd);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

#ifndef MD_VERSION
#define MD_VERSION "dev"
#endif

static void test_help_version(void **state)
{
    (void)state;
    capture_begin();
    int rc = LOAD("--version");
    assert_string_equal(capture_end(), "mdcache " MD_VERSION "\n");
    assert_int_equal(rc, 1);

    capture_begin();
    rc = LOAD("--help");
    const char *help = capture_end();
    assert_int_equal(rc, 1);
    static const char *must[] = {
        "Usage: mdcache", "--config FILE", "--redis URL", "--listen SPEC", "--cpus LIST",
        "--log-level", "--stats-interval", "--max-keys", "--report FILE", "--idle wait|spin",
        "--metrics HOST:PORT", "metrics =",
        "--check-config", "--version", "--help",
        "REDIS_URL", "CELERY_BROKER_URL", "REDIS_PASSWORD", "[mdcache]", "[feeds]", "[redis]",
        "[keys]", "cpus = 0", "log_level = info", "stats_interval = 5", "max_keys = 1000000",
        "shutdown_timeout = 5", "listen =", "udp_buffers = 256", "udp_buffer_size = 16384",
        "ring_size = 65536", "url = redis://localhost:6379/0", "password =", "max_batch = 256",
        "max_inflight = 8", "connect_timeout = 2", "reconnect_min = 0.05", "reconnect_max = 0.5",
        "prefix =", "price_key = price:{symbol}:latest", "price_ttl = 5",
        "last_good_key = price:{symbol}:last_good", "last_good_interval = 1", "last_good_ttl = 0",
        "refresh_fraction = 0.5", "source_timeout = 3", "price_channel =", "keepalive = 15",
        "reply_timeout = 10", "client_name = mdcache", "cacert =", "cacertdir =", "cert =",
        "key =", "sni =", "insecure = no", "--cacert FILE", "--insecure", "--sni NAME",
        "--shutdown-timeout", "--reply-timeout", "--cluster auto|yes|no", "cluster = auto",
        "h1[:port],h2[:port],...", "--sched-priority N", "--mlock", "sched_priority = 0",
        "mlock = no"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (!strstr(help, must[i])) fail_msg("--help lacks '%s'", must[i]);

    capture_begin();
    assert_int_equal(LOAD("-h"), 1);
    /* --help wins over an otherwise incomplete config (no feeds). */
    assert_int_equal(LOAD("--max-keys", "5", "--help"), 1);
    capture_end();
}

/* ---- validation ---- */

static void test_validation(void **state)
{
    (void)state;
    assert_int_equal(LOAD("--max-keys", "5"), -1);
    assert_string_equal(err, "no feeds: give --listen SPEC or [feeds] listen");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cpus", "1023"), -1);
    long n = sysconf(_SC_NPROCESSORS_CONF);
    char want[512];
    snprintf(want, sizeof want, "--cpus: CPU 1023 does not exist (this machine has CPUs 0..%ld)",
             n - 1);
    assert_string_equal(err, want);

    char *path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[mdcache]\ncpus = 0,1000\n");
    assert_int_equal(LOAD("-c", path), -1);
    snprintf(want, sizeof want,
             "%s:4: [mdcache] cpus: CPU 1000 does not exist (this machine has CPUs 0..%ld)", path,
             n - 1);
    assert_string_equal(err, want);
    /* The command line's CPU list replaces the file's bad one. */
    assert_int_equal(LOAD("-c", path, "--cpus", "0"), 0);
    unlink(path);

    path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\nreconnect_min = 3\n");
    assert_int_equal(LOAD("-c", path), -1);
    assert_string_equal(err, "[redis] reconnect_min (3) is larger than reconnect_max (0.5)");
    unlink(path);

    path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[keys]\npublish_events = yes\n"
                     "events_channel =\n");
    assert_int_equal(LOAD("-c", path), -1);
    assert_string_equal(err, "[keys] publish_events = yes needs an events_channel");
    unlink(path);
    path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[keys]\npublish_events = yes\n"
                     "watch_expired = no\n");
    assert_int_equal(LOAD("-c", path), -1);
    assert_string_equal(err, "[keys] publish_events = yes needs watch_expired = yes (the events "
                             "are the expiries it sees)");
    unlink(path);
}

/* ---- Redis Cluster: [redis] cluster against the URL ---- */

static void test_cluster(void **state)
{
    (void)state;
    /* Seed lists under auto and yes; the first seed is host/port. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--redis",
                          "redis://u:pw@h1:7001,h2,[::1]:7003"),
                     0);
    assert_int_equal(cfg.cluster, MD_CLUSTER_AUTO);
    assert_int_equal(cfg.redis.nseeds, 3);
    assert_string_equal(cfg.redis.host, "h1");
    assert_int_equal(cfg.redis.port, 7001);
    assert_string_equal(cfg.redis.seeds[1].host, "h2");
    assert_int_equal(cfg.redis.seeds[1].port, 6379);
    assert_string_equal(cfg.redis.seeds[2].host, "::1");
    assert_int_equal(cfg.redis.seeds[2].port, 7003);
    assert_string_equal(cfg.redis.pass, "pw");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes", "--redis",
                          "rediss://h1:7001,h2:7002/0"),
                     0);
    assert_int_equal(cfg.cluster, MD_CLUSTER_YES);
    assert_int_equal(cfg.redis.kind, MD_REDIS_TLS);
    assert_int_equal(cfg.redis.nseeds, 2);
    /* One seed goes with every mode; yes with the default URL too. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes"), 0);
    assert_int_equal(cfg.redis.nseeds, 1);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes", "--redis",
                          "redis://h?db=0"),
                     0);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "no", "--redis",
                          "redis://h:1/5"),
                     0);
    assert_int_equal(cfg.cluster, MD_CLUSTER_NO);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "auto", "--redis",
                          "redis://h:1/5"),
                     0);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "no", "--redis",
                          "unix:///tmp/r.sock?db=3"),
                     0);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--redis", "unix:///tmp/r.sock"), 0);
    assert_int_equal(cfg.redis.nseeds, 1);

    /* cluster = yes: TCP or TLS only, database 0 only. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes", "--redis",
                          "unix:///tmp/r.sock"),
                     -1);
    assert_string_equal(err, "--cluster yes: a unix socket cannot reach a Redis Cluster (its "
                             "nodes are addressed by host:port); the Redis URL (--redis) needs "
                             "redis:// or rediss:// seed nodes");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes", "--redis",
                          "redis://:pw@h1:1/3"),
                     -1);
    assert_string_equal(err, "--cluster yes: Redis Cluster has only database 0, but the Redis URL "
                             "(--redis) selects database 3");
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "yes", "--redis",
                          "redis://h1:1,h2:2?db=1"),
                     -1);
    assert_string_equal(err, "--cluster yes: Redis Cluster has only database 0, but the Redis URL "
                             "(--redis) selects database 1");
    /* cluster = no: one server, so one seed. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--cluster", "no", "--redis",
                          "redis://h1:1,h2:2"),
                     -1);
    assert_string_equal(err, "--cluster no: the Redis URL (--redis) names 2 seed nodes; several "
                             "seed nodes need cluster = yes or auto");
    /* auto: several seeds are a cluster, so database 0 too. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--redis", "redis://h1:1,h2:2/2"), -1);
    assert_string_equal(err, "--redis: several seed nodes mean a Redis Cluster, and Redis Cluster "
                             "has only database 0 (this URL selects database 2)");

    /* From a file: the message names the key's line; the URL from the
     * environment is named by its variable. */
    char want[600];
    char *path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\n"
                           "url = unix:///tmp/r.sock\ncluster = yes\n");
    assert_int_equal(LOAD("-c", path), -1);
    snprintf(want, sizeof want,
             "%s:5: [redis] cluster = yes: a unix socket cannot reach a Redis Cluster (its nodes "
             "are addressed by host:port); the Redis URL ([redis] url) needs redis:// or "
             "rediss:// seed nodes",
             path);
    assert_string_equal(err, want);
    /* --cluster and --redis override the file's. */
    assert_int_equal(LOAD("-c", path, "--cluster", "auto"), 0);
    assert_int_equal(cfg.cluster, MD_CLUSTER_AUTO);
    assert_int_equal(LOAD("-c", path, "--redis", "redis://h1:1,h2:2"), 0);
    assert_int_equal(cfg.cluster, MD_CLUSTER_YES);
    unlink(path);

    path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\ncluster = no\n");
    setenv("REDIS_URL", "redis://:s3cret@a:1,b:2,c:3", 1);
    assert_int_equal(LOAD("-c", path), -1);
    snprintf(want, sizeof want,
             "%s:4: [redis] cluster = no: the Redis URL (REDIS_URL) names 3 seed nodes; several "
             "seed nodes need cluster = yes or auto",
             path);
    assert_string_equal(err, want);
    assert_int_equal(LOAD("-c", path, "--cluster", "yes"), 0);
    assert_int_equal(cfg.redis.nseeds, 3);
    assert_string_equal(cfg.redis_url_from, "REDIS_URL");
    unsetenv("REDIS_URL");
    unlink(path);

    path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\nurl = redis://a,b/7\n");
    assert_int_equal(LOAD("-c", path), -1);
    snprintf(want, sizeof want,
             "%s:4: [redis] url: several seed nodes mean a Redis Cluster, and Redis Cluster has "
             "only database 0 (this URL selects database 7)",
             path);
    assert_string_equal(err, want);
    unlink(path);

    /* Seed list errors name their source, whichever it is. */
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1", "--redis", "redis://a:1,"), -1);
    assert_string_equal(err, "--redis: empty seed node 2 in the seed list "
                             "(host[:port],host[:port],...)");
    setenv("REDIS_URL", "unix:///a.sock,/b.sock", 1);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1"), -1);
    assert_string_equal(err, "REDIS_URL: a unix socket URL names one socket, not a seed list "
                             "(seed nodes need redis:// or rediss://)");
    unsetenv("REDIS_URL");
    char many[512] = "redis://";
    for (int i = 0; i <= MD_MAX_SEEDS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sn%d", i ? "," : "", i);
    setenv("CELERY_BROKER_URL", many, 1);
    assert_int_equal(LOAD("--listen", "udp://127.0.0.1:1"), -1);
    assert_string_equal(err, "CELERY_BROKER_URL: too many seed nodes (max 16)");
    unsetenv("CELERY_BROKER_URL");
}

/* ---- precedence ---- */

static void test_redis_url_precedence(void **state)
{
    (void)state;
    char *path = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\nurl = redis://file:1/1\n");
    char *nourl = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n");

    assert_int_equal(LOAD("-c", nourl), 0);
    assert_string_equal(cfg.redis_url, "redis://localhost:6379/0");
    assert_string_equal(cfg.redis_url_from, "default");

    setenv("CELERY_BROKER_URL", "redis://celery:2/2", 1);
    assert_int_equal(LOAD("-c", nourl), 0);
    assert_string_equal(cfg.redis.host, "celery");
    assert_string_equal(cfg.redis_url_from, "CELERY_BROKER_URL");

    setenv("REDIS_URL", "redis://env:3/3", 1);
    assert_int_equal(LOAD("-c", nourl), 0);
    assert_string_equal(cfg.redis.host, "env");
    assert_int_equal(cfg.redis.port, 3);
    assert_string_equal(cfg.redis_url_from, "REDIS_URL");

    assert_int_equal(LOAD("-c", path), 0);
    assert_string_equal(cfg.redis.host, "file");
    assert_string_equal(cfg.redis_url, "redis://file:1/1");
    assert_string_equal(cfg.redis_url_from, "config file");

    assert_int_equal(LOAD("-c", path, "--redis", "redis://cli:4/4"), 0);
    assert_string_equal(cfg.redis.host, "cli");
    assert_int_equal(cfg.redis.db, 4);
    assert_string_equal(cfg.redis_url_from, "command line");

    /* An empty variable counts as unset. */
    setenv("REDIS_URL", "", 1);
    assert_int_equal(LOAD("-c", nourl), 0);
    assert_string_equal(cfg.redis_url_from, "CELERY_BROKER_URL");

    setenv("CELERY_BROKER_URL", "amqp://guest:guest@rabbit//", 1);
    assert_int_equal(LOAD("-c", nourl), -1);
    assert_string_equal(err,
                        "CELERY_BROKER_URL: unsupported scheme 'amqp' (want redis://, rediss:// or "
                        "unix://)");
    unlink(path);
    unlink(nourl);
}

static void test_password_precedence(void **state)
{
    (void)state;
    char *nopw = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n");
    char *filepw = temp_file("[feeds]\nlisten = udp://127.0.0.1:1\n[redis]\npassword = frompass\n");

    assert_int_equal(LOAD("-c", nopw), 0);
    assert_string_equal(cfg.redis.pass, "");

    setenv("REDIS_PASSWORD", "fromenv", 1);
    assert_int_equal(LOAD("-c", nopw), 0);
    assert_string_equal(cfg.redis.pass, "fromenv");
    /* The config file's password comes before the environment's... */
    assert_int_equal(LOAD("-c", filepw), 0);
    assert_string_equal(cfg.redis.pass, "frompass");
    /* ...and the URL's own before both, wherever the URL came from. */
    assert_int_equal(LOAD("-c", filepw, "--redis", "redis://:fromurl@h"), 0);
    assert_string_equal(cfg.redis.pass, "fromurl");
    setenv("REDIS_URL", "redis://u:envurl@h", 1);
    assert_int_equal(LOAD("-c", filepw), 0);
    assert_string_equal(cfg.redis.pass, "envurl");
    assert_string_equal(cfg.redis.user, "u");
    /* A password-less URL from the command line still gets one. */
    assert_int_equal(LOAD("-c", nopw, "--redis", "redis://h"), 0);
    assert_string_equal(cfg.redis.pass, "fromenv");

    /* md_config_load_string alone: a file password fills in a bare URL. */
    md_config_defaults(&cfg);
    assert_int_equal(md_config_load_string(&cfg, "[redis]\npassword = p1\nurl = redis://h\n", "a",
                                           err, sizeof err),
                     0);
    assert_string_equal(cfg.redis.pass, "p1");
    md_config_defaults(&cfg);
    assert_int_equal(md_config_load_string(&cfg, "[redis]\nurl = redis://:p2@h\npassword = p1\n",
                                           "a", err, sizeof err),
                     0);
    assert_string_equal(cfg.redis.pass, "p2");
    unlink(nopw);
    unlink(filepw);
}

static void test_cli_over_file(void **state)
{
    (void)state;
    char *path = temp_file("[mdcache]\nmax_keys = 10\nlog_level = debug\n"
                           "[feeds]\nlisten = udp://127.0.0.1:1\nlisten = udp://127.0.0.1:2\n");
    assert_int_equal(LOAD("-c", path), 0);
    assert_int_equal(cfg.max_keys, 10);
    assert_int_equal(cfg.nlisten, 2);
    assert_string_equal(cfg.config_path, path);

    assert_int_equal(LOAD("-c", path, "--max-keys", "20", "--listen", "tcp://127.0.0.1:9"), 0);
    assert_int_equal(cfg.max_keys, 20);
    assert_int_equal(cfg.log_level, MD_LOG_DEBUG); /* not overridden: the file's */
    assert_int_equal(cfg.nlisten, 1);              /* --listen replaced the list */
    assert_int_equal(cfg.listen[0].kind, MD_LISTEN_TCP);
    assert_int_equal(cfg.listen[0].port, 9);
    /* Option order does not matter: -c after the overrides. */
    assert_int_equal(LOAD("--max-keys", "30", "-c", path), 0);
    assert_int_equal(cfg.max_keys, 30);
    unlink(path);
}

/* ---- printing ---- */

static char *print_to_string(const md_config *c)
{
    static char buf[16384];
    FILE *f = tmpfile();
    assert_non_null(f);
    md_config_print(c, f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void assert_same_config(const md_config *a, const md_config *b)
{
    assert_int_equal(a->ncpus, b->ncpus);
    assert_memory_equal(a->cpus, b->cpus, (size_t)a->ncpus * sizeof(int));
    assert_int_equal(a->log_level, b->log_level);
    assert_true(a->stats_interval_s == b->stats_interval_s);
    assert_int_equal(a->idle, b->idle);
    assert_int_equal(a->sched_priority, b->sched_priority);
    assert_int_equal(a->mlock, b->mlock);
    assert_string_equal(a->report_file, b->report_file);
    assert_string_equal(a->metrics_addr, b->metrics_addr);
    assert_int_equal(a->max_keys, b->max_keys);
    assert_true(a->shutdown_timeout_s == b->shutdown_timeout_s);
    assert_int_equal(a->nlisten, b->nlisten);
    for (int i = 0; i < a->nlisten; i++) {
        assert_int_equal(a->listen[i].kind, b->listen[i].kind);
        assert_int_equal(a->listen[i].format, b->listen[i].format);
        assert_string_equal(a->listen[i].host, b->listen[i].host);
        assert_int_equal(a->listen[i].port, b->listen[i].port);
        assert_string_equal(a->listen[i].path, b->listen[i].path);
        assert_string_equal(a->listen[i].spec, b->listen[i].spec);
    }
    assert_int_equal(a->udp_buffers, b->udp_buffers);
    assert_int_equal(a->udp_buffer_size, b->udp_buffer_size);
    assert_int_equal(a->ring_size, b->ring_size);
    assert_string_equal(a->redis_url, b->redis_url);
    assert_int_equal(a->redis.kind, b->redis.kind);
    assert_string_equal(a->redis.host, b->redis.host);
    assert_int_equal(a->redis.port, b->redis.port);
    assert_string_equal(a->redis.path, b->redis.path);
    assert_string_equal(a->redis.user, b->redis.user);
    assert_string_equal(a->redis.pass, b->redis.pass);
    assert_int_equal(a->redis.db, b->redis.db);
    assert_int_equal(a->redis.nseeds, b->redis.nseeds);
    for (int i = 0; i < a->redis.nseeds; i++) {
        assert_string_equal(a->redis.seeds[i].host, b->redis.seeds[i].host);
        assert_int_equal(a->redis.seeds[i].port, b->redis.seeds[i].port);
    }
    assert_int_equal(a->cluster, b->cluster);
    assert_int_equal(a->max_batch, b->max_batch);
    assert_int_equal(a->max_inflight, b->max_inflight);
    assert_true(a->connect_timeout_s == b->connect_timeout_s);
    assert_true(a->reconnect_min_s == b->reconnect_min_s);
    assert_true(a->reconnect_max_s == b->reconnect_max_s);
    assert_string_equal(a->key_prefix, b->key_prefix);
    assert_string_equal(a->price_key, b->price_key);
    assert_int_equal(a->price_ttl_s, b->price_ttl_s);
    assert_string_equal(a->last_good_key, b->last_good_key);
    assert_true(a->last_good_interval_s == b->last_good_interval_s);
    assert_int_equal(a->last_good_ttl_s, b->last_good_ttl_s);
    assert_true(a->refresh_fraction == b->refresh_fraction);
    assert_true(a->source_timeout_s == b->source_timeout_s);
}

static void round_trip(const md_config *c)
{
    char *text = print_to_string(c);
    md_config_defaults(&cfg2);
    if (md_config_load_string(&cfg2, text, "printed", err, sizeof err) != 0)
        fail_msg("printed config does not load: %s\n%s", err, text);
    assert_same_config(c, &cfg2);
}

static void test_print_round_trip(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    round_trip(&cfg);

    /* Every key away from its default (the file's password aside, which
     * prints as *** by design). */
    assert_int_equal(load_ok_str(every_key), 0);
    cfg.redis.pass[0] = '\0';
    round_trip(&cfg);

    assert_int_equal(load_ok_str("[mdcache]\ncpus = 0-3,7,5-6,9,8\nstats_interval = 0.001\n"
                                 "[keys]\nprefix = \" pad\"\nlast_good_key = \"\"\n"
                                 "price_key = \"\"{symbol}\"\"\n"
                                 "[feeds]\nlisten = file://rel/x.jsonl\n"),
                     0);
    round_trip(&cfg);
    assert_non_null(strstr(print_to_string(&cfg), "cpus = 0-3,7,5,6,9,8\n"));
    assert_non_null(strstr(print_to_string(&cfg), "stats_interval = 0.001\n"));
    assert_non_null(strstr(print_to_string(&cfg), "prefix = \" pad\"\n"));
    assert_non_null(strstr(print_to_string(&cfg), "last_good_key =\n"));
    assert_non_null(strstr(print_to_string(&cfg), "price_key = \"\"{symbol}\"\"\n"));
    assert_string_equal(cfg.price_key, "\"{symbol}\"");
    /* A value starting with ';' (given as "key =;v") must not print as a
     * comment (found by the fuzzer). */
    assert_int_equal(load_ok_str("[keys]\nlast_good_key =;lg:{symbol}\n"), 0);
    assert_string_equal(cfg.last_good_key, ";lg:{symbol}");
    round_trip(&cfg);
    assert_non_null(strstr(print_to_string(&cfg), "last_good_key = \";lg:{symbol}\"\n"));

    /* A seed list and cluster = yes print and load back, password hidden. */
    assert_int_equal(load_ok_str("[redis]\nurl = rediss://u:s3cret@h1:7001,[::1]:7002,h3\n"
                                 "cluster = yes\n"),
                     0);
    assert_non_null(strstr(print_to_string(&cfg),
                           "url = rediss://u:***@h1:7001,[::1]:7002,h3\ncluster = yes\n"));
    assert_null(strstr(print_to_string(&cfg), "s3cret"));
    assert_int_equal(load_ok_str("[redis]\nurl = redis://h1:7001,[::1]:7002,h3/0\n"
                                 "cluster = yes\n"),
                     0);
    round_trip(&cfg);
    assert_int_equal(cfg2.redis.nseeds, 3);

    /* Through the whole of md_config_load too, URL from the environment. */
    setenv("REDIS_URL", "redis://envhost:7000/9", 1);
    assert_int_equal(LOAD("--listen", "udp://[::1]:5", "--max-keys", "3"), 0);
    round_trip(&cfg);
    assert_non_null(strstr(print_to_string(&cfg), "; from REDIS_URL\nurl = redis://envhost:7000/9\n"));
}

static void test_print_hides_password(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    assert_int_equal(md_config_load_string(&cfg, "[redis]\nurl = redis://u:t0psecret@h:1/2\n", "a",
                                           err, sizeof err),
                     0);
    char *text = print_to_string(&cfg);
    assert_null(strstr(text, "t0psecret"));
    assert_non_null(strstr(text, "url = redis://u:***@h:1/2\n"));
    assert_null(strstr(text, "password ="));

    md_config_defaults(&cfg);
    assert_int_equal(md_config_load_string(&cfg, "[redis]\npassword = t0psecret\n", "a", err,
                                           sizeof err),
                     0);
    text = print_to_string(&cfg);
    assert_null(strstr(text, "t0psecret"));
    assert_non_null(strstr(text, "url = redis://localhost:6379/0\npassword = ***\n"));
    /* The printed file still loads (with *** as the password). */
    md_config_defaults(&cfg2);
    assert_int_equal(md_config_load_string(&cfg2, text, "printed", err, sizeof err), 0);
    assert_string_equal(cfg2.redis.pass, "***");
}

static void test_check_config(void **state)
{
    (void)state;
    setenv("REDIS_PASSWORD", "t0psecret", 1);
    capture_begin();
    int rc = LOAD("--listen", "udp://127.0.0.1:7400", "--check-config");
    const char *text = capture_end();
    assert_int_equal(rc, 0);
    assert_true(cfg.check_only);
    assert_string_equal(cfg.redis.pass, "t0psecret");
    assert_null(strstr(text, "t0psecret"));
    assert_non_null(strstr(text, "password = ***\n"));
    assert_non_null(strstr(text, "listen = udp://127.0.0.1:7400\n"));
    md_config_defaults(&cfg2);
    assert_int_equal(md_config_load_string(&cfg2, text, "checked", err, sizeof err), 0);
}

/* ---- the shipped example ---- */

static void test_example_ini_loads(void **state)
{
    (void)state;
    /* Tests run from the repository root; also try from build/tests. */
    static const char *cands[] = {"docs/mdcache.example.ini", "../docs/mdcache.example.ini",
                                  "../../docs/mdcache.example.ini"};
    const char *path = NULL;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0] && !path; i++)
        if (access(cands[i], R_OK) == 0) path = cands[i];
    if (!path) fail_msg("docs/mdcache.example.ini not found from the current directory");

    assert_int_equal(LOAD("-c", (char *)path), 0);
    /* It shows every default, so apart from its one listen line it must
     * equal the defaults. */
    md_config_defaults(&cfg2);
    cfg2.nlisten = 1;
    assert_int_equal(md_listen_parse("udp://127.0.0.1:7400?format=bin1", &cfg2.listen[0], err,
                                     sizeof err),
                     0);
    assert_same_config(&cfg, &cfg2);
    assert_string_equal(cfg.redis_url_from, "config file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_every_key, setup),
        cmocka_unit_test_setup(test_syntax_details, setup),
        cmocka_unit_test_setup(test_value_errors, setup),
        cmocka_unit_test_setup(test_structure_errors, setup),
        cmocka_unit_test_setup(test_file_errors, setup),
        cmocka_unit_test_setup(test_cli_basics, setup),
        cmocka_unit_test_setup(test_cli_errors, setup),
        cmocka_unit_test_setup(test_help_version, setup),
        cmocka_unit_test_setup(test_validation, setup),
        cmocka_unit_test_setup(test_cluster, setup),
        cmocka_unit_test_setup(test_redis_url_precedence, setup),
        cmocka_unit_test_setup(test_password_precedence, setup),
        cmocka_unit_test_setup(test_cli_over_file, setup),
        cmocka_unit_test_setup(test_print_round_trip, setup),
        cmocka_unit_test_setup(test_print_hides_password, setup),
        cmocka_unit_test_setup(test_check_config, setup),
        cmocka_unit_test_setup(test_example_ini_loads, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
