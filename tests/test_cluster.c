/* md_cluster's router, without I/O: every key lands in the queue of the
 * connection to the primary owning its slot (price, fallback and each
 * account value on their own), a key waits there once however many ticks
 * arrive, MOVED re-routes a slot (to a node never seen too), ASK queues
 * one try without touching the map, a new map re-routes what waits, and
 * keys of unowned slots wait parked until a map names an owner. The
 * writes themselves are exercised against real clusters
 * (tests/integration/test_cluster.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "md_account.h"
#include "md_cluster.h"
#include "md_config.h"
#include "md_slot.h"
#include "md_topo_service.h"
#include "md_worker.h"

#define NOW 1000000000000LL

static md_config cfg;
static md_worker w;
static md_topo_service svc;
static md_redis_target seed;

/* n primaries 127.0.0.1:7001.. sharing the slots in equal ranges. */
static void set_map(md_topology *t, int n)
{
    memset(t, 0, sizeof *t);
    t->nnodes = (uint16_t)n;
    for (int i = 0; i < n; i++) {
        snprintf(t->nodes[i].host, sizeof t->nodes[i].host, "127.0.0.1");
        t->nodes[i].port = (uint16_t)(7001 + i);
    }
    for (int s = 0; s < MD_SLOT_COUNT; s++) t->owner[s] = (uint16_t)(s * n / MD_SLOT_COUNT);
    t->covered = MD_SLOT_COUNT;
}

static void publish(void)
{
    atomic_fetch_add(&svc.version, 1);
}

static int setup(void **state)
{
    (void)state;
    md_config_defaults(&cfg);
    memset(&w, 0, sizeof w);
    w.now = NOW;
    assert_int_equal(md_state_init(&w.state, 4096), 0);
    assert_int_equal(md_accounts_init(&w.accounts, 16, 8, 8), 0);
    assert_int_equal(md_sources_init(&w.sources, 16), 0);
    memset(&svc, 0, sizeof svc);
    svc.cfg = &cfg;
    assert_int_equal(pthread_mutex_init(&svc.mu, NULL), 0);
    set_map(&svc.cur, 3);
    atomic_store(&svc.version, 1);
    memset(&seed, 0, sizeof seed);
    return 0;
}

static int teardown(void **state)
{
    md_cluster_free(*state);
    md_state_free(&w.state);
    md_accounts_free(&w.accounts);
    md_sources_free(&w.sources);
    pthread_mutex_destroy(&svc.mu);
    return 0;
}

static md_cluster *new_cluster(void **state)
{
    md_cluster *cl = md_cluster_new(&w, &cfg, &svc, &seed);
    assert_non_null(cl);
    *state = cl;
    return cl;
}

static void quote(const char *sym, int64_t bid)
{
    md_tick t = {.type = MD_TICK_QUOTE, .flags = MD_TICK_F_TS, .ts_ns = 1, .origin_ns = NOW};
    t.sym_len = (uint8_t)snprintf(t.symbol, sizeof t.symbol, "%s", sym);
    t.v[MD_Q_BID] = (md_dec){bid, -2};
    t.v[MD_Q_ASK] = (md_dec){bid + 1, -2};
    t.v[MD_Q_BID_SIZE] = t.v[MD_Q_ASK_SIZE] = (md_dec){1, 0};
    assert_int_equal(md_state_apply(&w.state, &t, NOW), MD_APPLY_OK);
}

static uint16_t slot_of(const char *tpl_key)
{
    return md_slot_of(tpl_key, strlen(tpl_key));
}

/* The port of the node owning the slot of `key` in the service's map. */
static uint16_t owner_port(const char *key)
{
    uint16_t o = svc.cur.owner[slot_of(key)];
    return o == MD_SLOT_NONE ? 0 : svc.cur.nodes[o].port;
}

/* The key an entry writes, as the writer formats it. */
static void entry_key(const md_route *e, char *key, size_t cap)
{
    md_sym *s = e->p;
    md_account *a = e->p;
    switch (e->kind) {
    case MD_CMD_LATEST: snprintf(key, cap, "price:%s:latest", s->symbol); break;
    case MD_CMD_GOOD: snprintf(key, cap, "price:%s:last_good", s->symbol); break;
    case MD_CMD_POSITIONS: snprintf(key, cap, "hft:positions:%s:all", a->name); break;
    case MD_CMD_BALANCE: snprintf(key, cap, "hft:balances:%s:all", a->name); break;
    case MD_CMD_ACCOUNT: snprintf(key, cap, "hft:accounts:%s", a->name); break;
    case MD_CMD_ORDER_LIST: snprintf(key, cap, "hft:orders:pending:%s", a->name); break;
    case MD_CMD_ORDER:
        snprintf(key, cap, "hft:orders:pending:%s:%s", a->name, a->ord[e->order].id);
        break;
    default: fail_msg("unexpected entry kind %d", e->kind);
    }
}

/* Every queued entry sits on its key's owner; returns entries of `kind`
 * (all kinds for -1). */
static uint32_t check_queues(const md_cluster *cl, int kind)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cl->nconn; i++) {
        const md_redis *r = cl->conn[i];
        for (uint32_t j = 0; j < r->nq_len; j++) {
            const md_route *e = &r->nq[(r->nq_head + j) & (r->nq_cap - 1)];
            char key[256];
            entry_key(e, key, sizeof key);
            if (owner_port(key) != r->target->port)
                fail_msg("%s (slot %u) queued on :%u, owner :%u", key, slot_of(key),
                         r->target->port, owner_port(key));
            n += kind < 0 || e->kind == kind;
        }
    }
    return n;
}

static void test_every_key_on_its_owner_once(void **state)
{
    md_cluster *cl = new_cluster(state);
    assert_int_equal(cl->nconn, 3);
    char sym[16];
    for (int i = 0; i < 300; i++) {
        snprintf(sym, sizeof sym, "S%03d", i);
        quote(sym, 100 + i);
    }
    md_cluster_route(cl, NOW);
    assert_int_equal(w.state.dq_len, 0);
    assert_int_equal(check_queues(cl, MD_CMD_LATEST), 300);
    /* New symbols' fallback keys are due at once, each on its own slot. */
    assert_int_equal(check_queues(cl, MD_CMD_GOOD), 300);
    for (uint32_t i = 0; i < cl->nconn; i++) assert_true(cl->conn[i]->nq_len > 100);

    /* More ticks while they wait: coalesced, no second entry. */
    for (int i = 0; i < 300; i++) {
        snprintf(sym, sizeof sym, "S%03d", i);
        quote(sym, 200 + i);
    }
    md_cluster_route(cl, NOW + 1);
    assert_int_equal(check_queues(cl, -1), 600);
    md_sym *s = md_state_find(&w.state, "S007", 4);
    assert_int_equal(s->dirty_ticks, 2);

    /* A node that (re)connects re-asserts its own price keys only. */
    for (uint32_t k = 0; k < w.state.count; k++) {
        const md_sym *y = &w.state.syms[k];
        char key[64];
        snprintf(key, sizeof key, "price:%s:latest", y->symbol);
        for (uint32_t c = 0; c < cl->nconn; c++)
            assert_int_equal(md_cluster_sym_on(y, cl->conn[c]),
                             owner_port(key) == cl->conn[c]->target->port);
    }
    assert_int_equal(md_cluster_unacked(cl), 600);
    assert_false(md_cluster_idle(cl));
}

static void test_moved_and_ask(void **state)
{
    md_cluster *cl = new_cluster(state);
    uint16_t slot = slot_of("price:AAPL:latest");
    /* MOVED to a node outside the map: a connection is made for it. */
    assert_int_equal(md_cluster_moved(cl, slot, "127.0.0.1:7009"), 3);
    assert_int_equal(cl->nconn, 4);
    assert_int_equal(md_cluster_moved(cl, slot, "127.0.0.1:7009"), 3); /* known: same one */
    assert_int_equal(atomic_load(&svc.want), 1);
    quote("AAPL", 100);
    md_cluster_route(cl, NOW);
    md_redis *r = cl->conn[3];
    assert_int_equal(r->target->port, 7009);
    assert_int_equal(r->nq_len, 1);
    assert_int_equal(r->nq[r->nq_head].kind, MD_CMD_LATEST);

    /* An IPv6 node, and addresses that are not host:port. */
    md_cluster_moved(cl, 1, "::1:7010");
    assert_int_equal(cl->nconn, 5);
    assert_string_equal(cl->conn[4]->target->display, "[::1]:7010");
    assert_int_equal(md_cluster_moved(cl, 2, "nonsense"), MD_SLOT_NONE);
    md_cluster_moved(cl, 3, "127.0.0.1:0");
    md_cluster_moved(cl, 4, ":7001");
    assert_int_equal(cl->nconn, 5);
    assert_int_equal(cl->owner[2], cl->owner[5]); /* unchanged */

    /* A host name in a redirect is not looked up on the worker: the key
     * waits for the map, whose nodes the topology thread resolved. */
    md_cluster_moved(cl, 6, "node-x.invalid:7011");
    assert_int_equal(cl->nconn, 5);
    md_topo_node *n = &svc.cur.nodes[2];
    snprintf(n->host, sizeof n->host, "node-y.invalid");
    struct sockaddr_in *a4 = (struct sockaddr_in *)&n->addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(7012);
    a4->sin_addr.s_addr = htonl(0x7f000001);
    n->addrlen = sizeof *a4;
    publish();
    md_cluster_route(cl, NOW);
    assert_int_equal(cl->nconn, 6);
    assert_string_equal(cl->conn[5]->target->display, "node-y.invalid:7003");
    assert_int_equal(ntohs(((const struct sockaddr_in *)&cl->conn[5]->target->addr)->sin_port),
                     7012);

    /* ASK: one entry on the target, flagged; the map keeps the owner. */
    md_sym *s = md_state_find(&w.state, "AAPL", 4);
    md_route e = {.p = s, .order = -1, .kind = MD_CMD_LATEST, .ask = 1};
    uint16_t before = cl->owner[slot];
    assert_true(md_cluster_ask(cl, "127.0.0.1:7002", &e));
    assert_int_equal(cl->owner[slot], before);
    md_redis *t = cl->conn[1];
    assert_int_equal(t->target->port, 7002);
    /* Behind whatever was queued there (AAPL's fallback key lives there). */
    const md_route *last = &t->nq[(t->nq_head + t->nq_len - 1) & (t->nq_cap - 1)];
    assert_ptr_equal(last->p, s);
    assert_int_equal(last->kind, MD_CMD_LATEST);
    assert_int_equal(last->ask, 1);
    assert_false(md_cluster_ask(cl, "bad", &e));
}

static void test_new_map_reroutes_and_parks(void **state)
{
    md_cluster *cl = new_cluster(state);
    char sym[16];
    for (int i = 0; i < 200; i++) {
        snprintf(sym, sizeof sym, "S%03d", i);
        quote(sym, 100 + i);
    }
    md_cluster_route(cl, NOW);
    assert_int_equal(check_queues(cl, -1), 400);
    /* The sweep leaves keys waiting in node queues alone (they go out
     * with their latest value anyway). */
    assert_int_equal(md_state_sweep(&w.state, NOW + 100 * 1000000000LL, 1000, 1, NULL, 0, 1), 0);
    /* A node held for CLUSTERDOWN meanwhile. */
    cl->conn[1]->cluster_hold = true;
    cl->conn[1]->hold_until_ns = NOW + 1000000000LL;

    /* A failover: node 7001's slots have no owner for now. What waited for
     * it is parked, the rest stays, and a refresh is asked for. */
    for (int s = 0; s < MD_SLOT_COUNT; s++)
        if (svc.cur.owner[s] == 0) svc.cur.owner[s] = MD_SLOT_NONE;
    svc.cur.covered = MD_SLOT_COUNT - MD_SLOT_COUNT / 3;
    publish();
    atomic_store(&svc.want, 0);
    md_cluster_route(cl, NOW + 1);
    uint32_t queued = check_queues(cl, -1);
    assert_true(cl->nparked > 0);
    assert_int_equal(queued + cl->nparked, 400);
    assert_int_equal(cl->conn[0]->nq_len, 0);
    assert_false(cl->conn[0]->wanted); /* owns nothing: not reconnected to */
    assert_int_equal(atomic_load(&svc.want), 1);
    assert_int_equal(md_cluster_unacked(cl), 400);
    assert_int_equal(cl->conn[1]->hold_until_ns, NOW + 1000000000LL); /* not whole yet */

    /* The promoted replica, a node not seen before, takes those slots. */
    snprintf(svc.cur.nodes[0].host, sizeof svc.cur.nodes[0].host, "127.0.0.1");
    svc.cur.nodes[0].port = 7004;
    set_map(&svc.cur, 3);
    svc.cur.nodes[0].port = 7004;
    publish();
    md_cluster_route(cl, NOW + 2);
    assert_int_equal(cl->nparked, 0);
    assert_int_equal(cl->nconn, 4);
    assert_int_equal(check_queues(cl, -1), 400);
    assert_true(cl->conn[3]->nq_len > 0 && cl->conn[3]->wanted);
    assert_int_equal(w.st.topology_updates, 3);
    /* Whole again: the CLUSTERDOWN hold ends with it. */
    assert_int_equal(cl->conn[1]->hold_until_ns, 0);
    assert_false(cl->conn[1]->cluster_hold);
}

static void test_account_values_each_on_its_owner(void **state)
{
    md_cluster *cl = new_cluster(state);
    md_acct m;
    const char *accts[] = {"ACC1", "ACC2", "ACC3", "ACC4"};
    for (size_t i = 0; i < 4; i++) {
        memset(&m, 0, sizeof m);
        m.acct_len = (uint8_t)strlen(accts[i]);
        memcpy(m.account, accts[i], m.acct_len);
        m.t.sym_hash = md_sym_hash(m.account, m.acct_len);
        m.t.src_hash = 42;
        for (int k = 0; k < 4; k++) m.t.v[k] = md_dec_absent();
        md_acct p = m, o = m, b = m, a = m;
        p.t.type = MD_TICK_POSITION;
        p.t.sym_len = 2;
        memcpy(p.t.symbol, "ES", 2);
        p.t.v[MD_P_NET_POS] = (md_dec){3, 0};
        o.t.type = MD_TICK_ORDER;
        o.ref_len = 3;
        memcpy(o.ref, "o-1", 3);
        o.status = MD_ORDER_WORKING;
        o.side = MD_SIDE_BUY;
        b.t.type = MD_TICK_BALANCE;
        b.t.v[MD_B_CASH] = (md_dec){1000, 0};
        a.t.type = MD_TICK_ACCOUNT;
        assert_int_equal(md_accounts_apply(&w.accounts, &p, NOW), MD_APPLY_OK);
        assert_int_equal(md_accounts_apply(&w.accounts, &o, NOW), MD_APPLY_OK);
        assert_int_equal(md_accounts_apply(&w.accounts, &b, NOW), MD_APPLY_OK);
        assert_int_equal(md_accounts_apply(&w.accounts, &a, NOW), MD_APPLY_OK);
    }
    md_cluster_route(cl, NOW);
    assert_int_equal(w.accounts.dq_len, 0);
    assert_int_equal(check_queues(cl, MD_CMD_POSITIONS), 4);
    assert_int_equal(check_queues(cl, MD_CMD_BALANCE), 4);
    assert_int_equal(check_queues(cl, MD_CMD_ACCOUNT), 4);
    assert_int_equal(check_queues(cl, MD_CMD_ORDER), 4);
    assert_int_equal(check_queues(cl, MD_CMD_ORDER_LIST), 4);
    /* The account's marks keep a second message from queueing again. */
    md_account *acc = md_accounts_find(&w.accounts, "ACC1", 4);
    assert_int_equal(acc->routed, MD_AC_BIT(MD_AC_POSITIONS) | MD_AC_BIT(MD_AC_ORDERS) |
                                      MD_AC_BIT(MD_AC_BALANCE) | MD_AC_BIT(MD_AC_INFO));
    assert_int_equal(acc->due, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_key_on_its_owner_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_and_ask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_map_reroutes_and_parks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_values_each_on_its_owner, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
