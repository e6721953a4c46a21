/* md_expiry: the JSON event and the key-template match it relies on, the
 * channel it subscribes to, and how its node table follows a cluster's
 * slot map (no connection is made: nodes are only added, kept, dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "md_config.h"
#include "md_expiry.h"
#include "md_format.h"
#include "md_topology.h"

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

static void test_channel(void **state)
{
    (void)state;
    static md_config cfg;
    md_config_defaults(&cfg);
    cfg.redis.db = 3;
    md_expiry x;
    memset(&x, 0, sizeof x);
    x.cfg = &cfg;
    char chan[64];
    md_expiry_channel(&x, chan, sizeof chan);
    assert_string_equal(chan, "__keyevent@3__:expired");
    /* A cluster has database 0 only, whatever the URL said. */
    md_topo_service svc;
    x.topo = &svc;
    md_expiry_channel(&x, chan, sizeof chan);
    assert_string_equal(chan, "__keyevent@0__:expired");
}

static void set_nodes(md_topology *t, const char *const *hosts, const uint16_t *ports, int n)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        snprintf(t->nodes[i].host, sizeof t->nodes[i].host, "%s", hosts[i]);
        t->nodes[i].port = ports[i];
    }
    t->nnodes = (uint16_t)n;
}

static md_expiry_node *node_at(md_expiry *x, const char *host, uint16_t port)
{
    for (int i = 0; i < x->nnodes; i++)
        if (x->nodes[i].port == port && strcmp(x->nodes[i].host, host) == 0) return &x->nodes[i];
    return NULL;
}

static void test_follow(void **state)
{
    (void)state;
    static md_config cfg;
    static md_topology t;
    md_config_defaults(&cfg);
    cfg.reconnect_min_s = 0.25;
    md_expiry x;
    memset(&x, 0, sizeof x);
    x.cfg = &cfg;
    x.nodes = calloc(MD_TOPO_MAX_NODES, sizeof *x.nodes);
    assert_non_null(x.nodes);

    const char *h1[] = {"10.0.0.1", "10.0.0.2", "::1"};
    const uint16_t p1[] = {7000, 7000, 7001};
    set_nodes(&t, h1, p1, 3);
    assert_int_equal(md_expiry_follow(&x, &t), 3);
    assert_int_equal(x.nnodes, 3);
    for (int i = 0; i < 3; i++) {
        md_expiry_node *n = node_at(&x, h1[i], p1[i]);
        assert_non_null(n);
        assert_false(n->up);
        assert_int_equal(n->retry_ms, 0); /* due at once */
        assert_int_equal(n->c.fd, -1);
        assert_true(n->backoff_s == 0.25);
    }
    assert_string_equal(node_at(&x, "::1", 7001)->target.display, "[::1]:7001");
    assert_string_equal(node_at(&x, "10.0.0.2", 7000)->target.display, "10.0.0.2:7000");

    /* State the thread would have set: it must survive for kept nodes. */
    md_expiry_node *keep = node_at(&x, "10.0.0.2", 7000);
    keep->warned = keep->refused = true;
    keep->retry_ms = 12345;
    keep->backoff_s = 0.5;

    /* A failover: 10.0.0.1 is gone, its replica 10.0.0.4 took over, the map
     * lists the shards in another order. The same host on another port is
     * another node. */
    const char *h2[] = {"::1", "10.0.0.4", "10.0.0.2", "10.0.0.2"};
    const uint16_t p2[] = {7001, 7000, 7000, 7002};
    set_nodes(&t, h2, p2, 4);
    assert_int_equal(md_expiry_follow(&x, &t), 3); /* one dropped, two added */
    assert_int_equal(x.nnodes, 4);
    assert_null(node_at(&x, "10.0.0.1", 7000));
    keep = node_at(&x, "10.0.0.2", 7000);
    assert_non_null(keep);
    assert_true(keep->warned && keep->refused);
    assert_int_equal(keep->retry_ms, 12345);
    assert_true(keep->backoff_s == 0.5);
    assert_non_null(node_at(&x, "10.0.0.4", 7000));
    assert_non_null(node_at(&x, "10.0.0.2", 7002));

    /* The same map again changes nothing. */
    assert_int_equal(md_expiry_follow(&x, &t), 0);
    assert_int_equal(x.nnodes, 4);

    /* A node dropped while subscribed: its connection is closed (here a
     * never-opened one, which closing must tolerate). */
    node_at(&x, "::1", 7001)->up = true;
    set_nodes(&t, h2 + 1, p2 + 1, 1);
    assert_int_equal(md_expiry_follow(&x, &t), 3);
    assert_int_equal(x.nnodes, 1);
    assert_non_null(node_at(&x, "10.0.0.4", 7000));

    /* An empty map (nobody answered yet) empties the table. */
    set_nodes(&t, NULL, NULL, 0);
    assert_int_equal(md_expiry_follow(&x, &t), 1);
    assert_int_equal(x.nnodes, 0);
    free(x.nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_keytpl_match),
        cmocka_unit_test(test_keytpl_two_vars),
        cmocka_unit_test(test_channel),
        cmocka_unit_test(test_follow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
