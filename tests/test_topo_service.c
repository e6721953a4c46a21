/* md_topo_service, the parts that need no thread and no network: node
 * targets, and what md_topo_service_get hands a worker (versions, a busy
 * lock). The thread itself is exercised against real clusters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "md_config.h"
#include "md_topo_service.h"
#include "md_topology.h"

static md_topology map, got;
static md_topo_service svc;
static md_config cfg;

static void one_node(md_topology *t, const char *host, uint16_t port)
{
    memset(t, 0, sizeof *t);
    snprintf(t->nodes[0].host, sizeof t->nodes[0].host, "%s", host);
    t->nodes[0].port = port;
    t->nnodes = 1;
    for (size_t s = 0; s < MD_SLOT_COUNT; s++) t->owner[s] = 0;
    t->covered = MD_SLOT_COUNT;
}

static void test_node_target(void **state)
{
    (void)state;
    char err[256];
    md_redis_target seed, t;
    memset(&seed, 0, sizeof seed);
    seed.tls = (md_tls_ctx *)&seed; /* only passed on, never used here */

    md_topo_node n = {.port = 7001};
    snprintf(n.host, sizeof n.host, "127.0.0.1");
    assert_int_equal(md_topo_node_target(&seed, &n, &t, err, sizeof err), 0);
    assert_string_equal(t.display, "127.0.0.1:7001");
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 7001);
    assert_ptr_equal(t.tls, seed.tls);
    assert_int_equal(t.addr.ss_family, AF_INET);
    assert_int_equal(t.addrlen, sizeof(struct sockaddr_in));
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&t.addr;
    assert_int_equal(ntohs(a4->sin_port), 7001);
    assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);

    n.port = 6380;
    snprintf(n.host, sizeof n.host, "::1");
    assert_int_equal(md_topo_node_target(NULL, &n, &t, err, sizeof err), 0);
    assert_string_equal(t.display, "[::1]:6380");
    assert_null(t.tls); /* no seed, no TLS */
    assert_int_equal(t.addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&t.addr)->sin6_port), 6380);
}

/* The service as md_topo_service_start leaves it, minus the thread. */
static void fake_service(void)
{
    memset(&svc, 0, sizeof svc);
    svc.cfg = &cfg;
    assert_int_equal(pthread_mutex_init(&svc.mu, NULL), 0);
    one_node(&svc.cur, "10.0.0.1", 7000);
    atomic_store(&svc.version, 1);
}

static void test_get_versions(void **state)
{
    (void)state;
    fake_service();
    uint32_t ver = 0;
    assert_true(md_topo_service_get(&svc, &got, &ver));
    assert_int_equal(ver, 1);
    assert_int_equal(got.nnodes, 1);
    assert_string_equal(got.nodes[0].host, "10.0.0.1");
    assert_int_equal(got.covered, MD_SLOT_COUNT);

    /* Nothing newer: out is left alone. */
    memset(&got, 0xab, sizeof got);
    assert_false(md_topo_service_get(&svc, &got, &ver));
    assert_int_equal(ver, 1);
    assert_int_equal(got.nnodes, 0xabab);

    /* A new version, while the lock is held (the thread publishing): no
     * copy, no wait; the next call gets it. */
    one_node(&svc.cur, "10.0.0.2", 7000);
    atomic_store(&svc.version, 2);
    assert_int_equal(pthread_mutex_lock(&svc.mu), 0);
    assert_false(md_topo_service_get(&svc, &got, &ver));
    assert_int_equal(ver, 1);
    assert_int_equal(pthread_mutex_unlock(&svc.mu), 0);
    assert_true(md_topo_service_get(&svc, &got, &ver));
    assert_int_equal(ver, 2);
    assert_string_equal(got.nodes[0].host, "10.0.0.2");

    /* Any other version is newer to a worker: it takes the map it lacks. */
    uint32_t other = 7;
    assert_true(md_topo_service_get(&svc, &got, &other));
    assert_int_equal(other, 2);
    pthread_mutex_destroy(&svc.mu);
}

static void test_request_and_stop_unstarted(void **state)
{
    (void)state;
    memset(&svc, 0, sizeof svc);
    md_topo_service_request(&svc); /* no thread to signal: only the flag */
    assert_int_equal(atomic_load(&svc.want), 1);
    md_topo_service_request(&svc);
    assert_int_equal(atomic_load(&svc.want), 1);
    md_topo_service_stop(&svc); /* never started: nothing to do */
    assert_false(svc.started);
}

/* Start publishes the initial map as version 1 at once. The map is whole,
 * so the thread's next refresh is a period away: stopped long before. */
static void test_start_publishes_initial(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    cfg.redis.nseeds = 0;
    one_node(&map, "127.0.0.1", 1);
    md_redis_target seed;
    memset(&seed, 0, sizeof seed);
    assert_int_equal(md_topo_service_start(&svc, &cfg, &seed, &map), 0);
    assert_true(svc.started);
    assert_int_equal(atomic_load(&svc.want), 0);
    uint32_t ver = 0;
    bool ok = false;
    while (!ok) ok = md_topo_service_get(&svc, &got, &ver); /* trylock may meet the thread */
    assert_int_equal(ver, 1);
    /* Its nodes come resolved, so workers never look a name up. */
    assert_int_equal(got.nodes[0].addrlen, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((const struct sockaddr_in *)&got.nodes[0].addr)->sin_port), 1);
    memset(&got.nodes[0].addr, 0, sizeof got.nodes[0].addr);
    got.nodes[0].addrlen = 0;
    assert_memory_equal(&got, &map, sizeof map);
    md_topo_service_stop(&svc);
    assert_false(svc.started);
    md_topo_service_stop(&svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_target),
        cmocka_unit_test(test_get_versions),
        cmocka_unit_test(test_request_and_stop_unstarted),
        cmocka_unit_test(test_start_publishes_initial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
