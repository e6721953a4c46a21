"""The expiry watcher on a Redis Cluster (issue #6): keyspace notifications
are node-local, so mdcache subscribes on every primary (database 0), turns
the events on on each, counts the expiry of its own keys whatever node they
lived on, publishes one JSON event per key (a PUBLISH reaches subscribers of
every node), and follows a failover to the promoted replica."""

import json

from harness import (CONVERGE_TIMEOUT, MdTestCase, Resp, free_port, key_slot, wait_for)

SHORT_INI = "[keys]\nprice_ttl = 1\nsource_timeout = 1\nrefresh_fraction = 0.5\n"


def subscribed_line(node):
    return "expiry watcher: subscribed to __keyevent@0__:expired on redis 127.0.0.1:%d" % node.port


def key_on(slots, prefix):
    """A price key of ours whose slot is in `slots`."""
    slots = set(slots)
    for i in range(1000000):
        k = "price:%s%d:latest" % (prefix, i)
        if key_slot(k) in slots:
            return k
    raise AssertionError("no key found for the slots")


class ClusterExpiryTest(MdTestCase):
    def start_on(self, cl, ini):
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        return self.start_mdcache(None, [listen], redis_url=cl.url(), ini=ini)

    def wait_replicas_synced(self, cl):
        """The kill comes only once every replica's link is up, so the
        failover does not depend on how far a first sync got."""
        def synced():
            for n in cl.live():
                c = n.client(timeout=5)
                try:
                    info = c.cmd("INFO", "replication")
                finally:
                    c.close()
                if "role:slave" in info and "master_link_status:up" not in info:
                    return False
            return True
        self.assertTrue(wait_for(synced, CONVERGE_TIMEOUT, interval=0.2), cl.describe())

    def test_every_primary_watched_counted_and_published(self):
        cl = self.start_cluster(3, 0)
        prim = cl.primaries()
        self.assertEqual(len(prim), 3)
        sub = prim[0].client(timeout=CONVERGE_TIMEOUT)
        self.addCleanup(sub.close)
        sub.sock.sendall(Resp.encode(["SUBSCRIBE", "mdcache:events"]))
        self.assertEqual(sub._reply()[0], "subscribe")
        m = self.start_on(cl, SHORT_INI + "publish_events = yes\n")
        for p in prim:
            self.assertTrue(wait_for(lambda: subscribed_line(p) in m.log(), CONVERGE_TIMEOUT),
                            m.tail())
            flags = self.client(p).cmd("CONFIG", "GET", "notify-keyspace-events")[1]
            self.assertTrue(set("Ex") <= set(flags), "127.0.0.1:%d: %r" % (p.port, flags))

        # One key of ours on each primary, through its slot, with a 1 s TTL;
        # and someone else's volatile key, which must not be counted.
        keys = []
        for p in prim:
            k = key_on(cl.slots_of(p), "CX")
            keys.append(k)
            self.client(p).cmd("SET", k, "1", "PX", "1000")
        self.client(cl.owner(key_slot("other:app:key"))).cmd("SET", "other:app:key", "1",
                                                              "PX", "100")

        m.wait_stats(lambda s: s.get("expired_price", 0) >= len(keys), 30)
        events = []
        sub.sock.settimeout(CONVERGE_TIMEOUT)
        while set(e["key"] for e in events) != set(keys):
            msg = sub._reply()
            self.assertEqual(msg[0], "message", msg)
            events.append(json.loads(msg[2]))
            self.assertIn(events[-1]["key"], keys, "an event for a key that is not ours")
        for e in events:
            self.assertEqual((e["event"], e["class"]), ("expired", "price"))
        fin = self.assert_clean_exit(m)
        # Nothing else writes price keys here: each expiry is seen exactly once.
        self.assertEqual(fin["expired_price"], len(keys), fin)
        self.assertEqual(fin["events_published"], len(keys), fin)

    def test_failover_followed(self):
        cl = self.start_cluster(3, 1)
        self.wait_replicas_synced(cl)
        m = self.start_on(cl, SHORT_INI)
        prim = cl.primaries()
        for p in prim:
            self.assertTrue(wait_for(lambda: subscribed_line(p) in m.log(), CONVERGE_TIMEOUT),
                            m.tail())
        dead = prim[0]
        slots = cl.slots_of(dead)
        dead.kill()
        new = cl.wait_failover(dead, slots)
        # The refreshed map names the promoted replica: the watcher subscribes
        # there and turns the events on (a replica's setting was never set).
        self.assertTrue(wait_for(lambda: subscribed_line(new) in m.log(), CONVERGE_TIMEOUT),
                        m.tail())
        flags = self.client(new).cmd("CONFIG", "GET", "notify-keyspace-events")[1]
        self.assertTrue(set("Ex") <= set(flags), flags)

        before = m.stats().get("expired_price", 0)
        keys = [key_on(slots, "FO")] + [key_on(cl.slots_of(p), "FO") for p in prim[1:]]
        for k, node in zip(keys, [new] + prim[1:]):
            self.client(node).cmd("SET", k, "1", "PX", "1000")
        m.wait_stats(lambda s: s.get("expired_price", 0) >= before + len(keys), 30)
        self.assert_clean_exit(m)
