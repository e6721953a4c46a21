/* md_topology: slot maps from CLUSTER SHARDS and CLUSTER SLOTS replies as a
 * real Redis 7.0 cluster sent them (tests/data, captured from 3 primaries
 * with and without replicas), and from hand-made replies for the cases a
 * healthy cluster does not show: a failed primary, unknown endpoints, TLS
 * ports, and malformed replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "md_topology.h"

static md_topology topo;
static char err[256];

/* The reply hiredis's reader makes of RESP bytes. */
static redisReply *reply_of(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *rep = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &rep), REDIS_OK);
    assert_non_null(rep);
    redisReaderFree(rd);
    return rep;
}

/* path is relative to the repository root; the test may run from below it. */
static char *slurp(const char *path, size_t *len)
{
    static const char *const up[] = {"", "../", "../../"};
    char full[512];
    FILE *f = NULL;
    for (size_t i = 0; i < 3 && !f; i++) {
        snprintf(full, sizeof full, "%s%s", up[i], path);
        f = fopen(full, "rb");
    }
    if (!f) fail_msg("cannot open %s (from the repository root or below it)", path);
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static redisReply *reply_file(const char *path)
{
    size_t n;
    char *s = slurp(path, &n);
    return reply_of(s, n);
}

static uint16_t port_of(uint16_t slot)
{
    assert_int_not_equal(topo.owner[slot], MD_SLOT_NONE);
    return topo.nodes[topo.owner[slot]].port;
}

static void check_three_primaries(uint16_t base)
{
    assert_int_equal(topo.nnodes, 3);
    assert_int_equal(topo.covered, MD_SLOT_COUNT);
    assert_int_equal(port_of(0), base + 1);
    assert_int_equal(port_of(5460), base + 1);
    assert_int_equal(port_of(5461), base + 2);
    assert_int_equal(port_of(10922), base + 2);
    assert_int_equal(port_of(10923), base + 3);
    assert_int_equal(port_of(16383), base + 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(topo.nodes[i].host, "127.0.0.1");
        assert_int_equal(strlen(topo.nodes[i].id), 40);
    }
    /* "foo" is slot 12182 (CLUSTER KEYSLOT). */
    assert_int_equal(md_topology_owner(&topo, "foo", 3)->port, base + 3);
}

static void test_real_replies(void **state)
{
    (void)state;
    redisReply *r = reply_file("tests/data/cluster_shards_3x2.resp");
    assert_int_equal(md_topology_from_shards(&topo, r, false, "127.0.0.1", err, sizeof err), 0);
    check_three_primaries(17100); /* replicas (17104-6) are not write targets */
    char d[256];
    md_topology_describe(&topo, d, sizeof d);
    assert_string_equal(d, "3 primaries: 127.0.0.1:17101 (5461 slots), 127.0.0.1:17102 (5462 "
                           "slots), 127.0.0.1:17103 (5461 slots)");
    freeReplyObject(r);
    r = reply_file("tests/data/cluster_slots_3x2.resp");
    assert_int_equal(md_topology_from_slots(&topo, r, false, "127.0.0.1", err, sizeof err), 0);
    check_three_primaries(17100);
    freeReplyObject(r);
    /* Parsed into a map whose nodes the topology thread had resolved: no
     * node may keep the address of the one that held its index before
     * (a promoted replica was once reached at a survivor's address, which
     * answered MOVED back to it forever). */
    for (int i = 0; i < topo.nnodes; i++) {
        topo.nodes[i].addrlen = 16;
        memset(&topo.nodes[i].addr, 0x5a, sizeof topo.nodes[i].addr);
    }
    r = reply_file("tests/data/cluster_shards_3x0.resp");
    assert_int_equal(md_topology_from_shards(&topo, r, false, "127.0.0.1", err, sizeof err), 0);
    check_three_primaries(17000);
    for (int i = 0; i < topo.nnodes; i++) {
        assert_int_equal(topo.nodes[i].addrlen, 0);
        assert_int_equal(topo.nodes[i].addr.ss_family, 0);
    }
    freeReplyObject(r);
}

static void test_failed_primary(void **state)
{
    (void)state;
    size_t n;
    char *s = slurp("tests/data/cluster_shards_3x2.resp", &n);
    /* Mark the first primary's health failed (same length as online). */
    char *m = strstr(s, "$6\r\nmaster\r\n");
    assert_non_null(m);
    char *h = strstr(m, "$6\r\nonline\r\n");
    assert_non_null(h);
    memcpy(h + 4, "failed", 6);
    redisReply *r = reply_of(s, n);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "127.0.0.1", err, sizeof err), 0);
    assert_int_equal(topo.nnodes, 2);
    assert_true(topo.covered < MD_SLOT_COUNT);
    freeReplyObject(r);
}

/* One shard of slots lo..hi with one primary node given as RESP map items
 * (a string literal: it may hold NUL bytes). */
#define one_shard(items, nitems, lo, hi) one_shard_n(items, sizeof(items) - 1, nitems, lo, hi)
static redisReply *one_shard_n(const char *node_items, size_t len, int nitems, int lo, int hi)
{
    static char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:%d\r\n:%d\r\n$5\r\nnodes\r\n*1\r\n*%d\r\n",
                     lo, hi, nitems);
    assert_true(n > 0 && (size_t)n + len < sizeof buf);
    memcpy(buf + n, node_items, len);
    return reply_of(buf, (size_t)n + len);
}

static void test_endpoints_and_ports(void **state)
{
    (void)state;
    /* Endpoint "?" (unknown): the ip; no ip either: the address we asked. */
    redisReply *r = one_shard("$4\r\nrole\r\n$6\r\nmaster\r\n$8\r\nendpoint\r\n$1\r\n?\r\n"
                              "$2\r\nip\r\n$8\r\n10.0.0.7\r\n$4\r\nport\r\n:7001\r\n",
                              8, 0, 16383);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "seed", err, sizeof err), 0);
    assert_string_equal(topo.nodes[0].host, "10.0.0.7");
    assert_int_equal(topo.nodes[0].port, 7001);
    assert_string_equal(topo.nodes[0].id, "");
    freeReplyObject(r);
    r = one_shard("$4\r\nrole\r\n$6\r\nmaster\r\n$8\r\nendpoint\r\n$0\r\n\r\n"
                  "$4\r\nport\r\n:7001\r\n$8\r\ntls-port\r\n:7101\r\n",
                  8, 0, 16383);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "seed", err, sizeof err), 0);
    assert_string_equal(topo.nodes[0].host, "seed");
    assert_int_equal(topo.nodes[0].port, 7001);
    /* Over TLS the TLS port is the one to use. */
    assert_int_equal(md_topology_from_shards(&topo, r, true, "seed", err, sizeof err), 0);
    assert_int_equal(topo.nodes[0].port, 7101);
    freeReplyObject(r);
    /* An endpoint with a NUL or a blank in it (found by fuzz_topology) is
     * not an address: the ip is used. */
    r = one_shard("$4\r\nrole\r\n$6\r\nmaster\r\n$8\r\nendpoint\r\n$3\r\na\0b\r\n"
                  "$2\r\nip\r\n$8\r\n10.0.0.8\r\n$4\r\nport\r\n:7001\r\n",
                  8, 0, 16383);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "seed", err, sizeof err), 0);
    assert_string_equal(topo.nodes[0].host, "10.0.0.8");
    freeReplyObject(r);
    /* A TLS-only node reports port 0. */
    r = one_shard("$4\r\nrole\r\n$6\r\nmaster\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                  "$4\r\nport\r\n:0\r\n$8\r\ntls-port\r\n:7101\r\n",
                  8, 100, 200);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "seed", err, sizeof err), 0);
    assert_int_equal(topo.nodes[0].port, 7101);
    assert_int_equal(topo.covered, 101);
    char d[256];
    md_topology_describe(&topo, d, sizeof d);
    assert_string_equal(d, "1 primary: 127.0.0.1:7101 (101 slots), 16283 slots without a primary");
    assert_int_equal(topo.owner[99], MD_SLOT_NONE);
    assert_null(md_topology_owner(&topo, "foo", 3));
    freeReplyObject(r);
}

static void test_malformed(void **state)
{
    (void)state;
    redisReply *r = reply_of("+OK\r\n", 5);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "h", err, sizeof err), -1);
    assert_string_equal(err, "CLUSTER SHARDS: not an array");
    assert_int_equal(md_topology_from_slots(&topo, r, false, "h", err, sizeof err), -1);
    assert_string_equal(err, "CLUSTER SLOTS: not an array");
    freeReplyObject(r);
    r = one_shard("$4\r\nrole\r\n$6\r\nmaster\r\n$2\r\nip\r\n$1\r\nh\r\n$4\r\nport\r\n:1\r\n", 6,
                  0, 16384);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "h", err, sizeof err), -1);
    assert_string_equal(err, "slot range 0-16384 out of 0-16383");
    freeReplyObject(r);
    r = reply_of("*1\r\n*2\r\n$5\r\nslots\r\n*0\r\n", 23);
    assert_int_equal(md_topology_from_shards(&topo, r, false, "h", err, sizeof err), -1);
    assert_string_equal(err, "CLUSTER SHARDS: shard 0 lacks slots or nodes");
    freeReplyObject(r);
    const char *bad_slots = "*1\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n$1\r\nx\r\n";
    r = reply_of(bad_slots, strlen(bad_slots));
    assert_int_equal(md_topology_from_slots(&topo, r, false, "h", err, sizeof err), -1);
    assert_string_equal(err, "CLUSTER SLOTS: entry 0: bad primary");
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_replies),
        cmocka_unit_test(test_failed_primary),
        cmocka_unit_test(test_endpoints_and_ports),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
