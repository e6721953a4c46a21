"""Redis Cluster (issue #6), what exists so far: the test harness's clusters
(3 primaries + 3 replicas made with redis-cli --cluster create, with a
password, over TLS), and mdcache's start-up check refusing a cluster node
with a clear message, naming the primaries and slots it read with CLUSTER
SHARDS, rather than writing only the keys of that node's slots and losing
the rest to MOVED errors."""

import tlscerts
from harness import MdTestCase, free_port, run_mdcache_once


class ClusterTest(MdTestCase):
    def test_tls_cluster_refused_with_its_topology(self):
        certs = tlscerts.get()
        cl = self.start_cluster(3, 0, tls=certs)
        node = cl.nodes[1]
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        rc, out, err = run_mdcache_once(["--redis", "rediss://127.0.0.1:%d/0" % node.port,
                                         "--cacert", certs.ca_crt, "--listen", listen,
                                         "--cpus", "0"], timeout=20)
        self.assertEqual(rc, 2, err)
        self.assertIn("is a Redis Cluster node (3 primaries:", err)
        # TLS-only nodes: the ports reported are their TLS ports.
        for n in cl.nodes:
            self.assertIn("127.0.0.1:%d (" % n.port, err)

    def test_harness_cluster_with_replicas(self):
        cl = self.start_cluster(3, 1)
        shards = cl.shards()
        self.assertEqual(len(shards), 3)
        covered = sum(hi - lo + 1 for ranges in shards.values() for lo, hi in ranges)
        self.assertEqual(covered, 16384)
        # A key lands on its slot's owner; the others redirect.
        c = cl.nodes[0].client()
        self.addCleanup(c.close)
        self.assertEqual(c.cmd("CLUSTER", "KEYSLOT", "foo"), 12182)

    def test_cluster_node_refused_until_supported(self):
        cl = self.start_cluster(3, 0, requirepass="cl-pw")
        node = cl.nodes[0]
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        rc, out, err = run_mdcache_once(["--redis", "redis://:cl-pw@127.0.0.1:%d/0" % node.port,
                                         "--listen", listen, "--cpus", "0"], timeout=20)
        self.assertEqual(rc, 2, err)
        # The message says what mdcache saw: every primary and its slots,
        # read with CLUSTER SHARDS over the same authenticated connection.
        self.assertIn("is a Redis Cluster node (3 primaries:", err)
        for (host, port), ranges in cl.shards().items():
            n = sum(hi - lo + 1 for lo, hi in ranges)
            self.assertIn("%s:%d (%d slots)" % (host, port, n), err)
        self.assertIn("does not write to Redis Cluster yet", err)
        self.assertNotIn("cl-pw", err)
