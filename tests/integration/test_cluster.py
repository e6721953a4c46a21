"""Redis Cluster (issue #6): mdcache writing to real clusters made by the
harness (redis-cli --cluster create on loopback ports), fed by tools/mdfeed
whose --expect gives every key's final value. Every key is read back from
the primary that owns its slot (harness.ClusterClient), so a key written to
the wrong node, or lost to a redirect, shows up as a difference.

- 3 primaries + 3 replicas: 120k ticks over 10k symbols plus account
  messages; every key exact, keys on every primary, one connection per
  primary per worker, no redirect at all in a stable cluster;
- failover: a primary (the first seed) killed with SIGKILL mid-stream, its
  replica promoted; every key converges and mdcache took the new map;
- resharding: slots migrated by hand with keys of migrating slots written
  by mdcache (ASK, deterministic), then given away while mdcache's ACL user
  may not read the map (MOVED, deterministic), then `redis-cli --cluster
  reshard` while the stream flows; every key converges;
- a cluster with a password, and one over TLS;
- bad seed lists and a cluster mode that does not fit: exit 2, one line.

No test depends on timing: everything waits for a condition (a counter, the
cluster's own view, a value) with a generous bound; the long streams are
bounded by mdfeed's --ticks and --duration and stopped once the test has
done what it does while they flow."""

import os
import re
import sys
import time

import tlscerts
from harness import (CONVERGE_TIMEOUT, SLOW, ClusterClient, MdfeedRun, MdTestCase, free_port,
                     key_slot, run_mdcache_once, run_mdfeed, wait_for)
from test_mdfeed_accounts import LONG_INI, same

WORKER_NAME = re.compile(r"\bname=(mdcache-w\d+)(?:\s|$)")


class ClusterHarnessTest(MdTestCase):
    """The harness's clusters and tools, without mdcache."""

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

    def test_harness_slots_migration_and_client(self):
        """key_slot() agrees with CLUSTER KEYSLOT; ClusterClient reads every
        key from its owner and follows ASK (slots migrating) and MOVED (its
        map out of date); a hand-made migration gives ASK for a key the
        source lacks; redis-cli --cluster reshard runs with the password."""
        cl = self.start_cluster(3, 0, requirepass="cl-pw")
        c = cl.nodes[0].client()
        self.addCleanup(c.close)
        keys = (["price:SYM%05d:latest" % i for i in range(1500)]
                + ["hft:orders:pending:ACC%04d:D%d" % (i, i) for i in range(200)]
                + ["{tag}a", "a{tag}", "x{}y", "x{{y}}", "{}", "}{x}", "\u00e9t\u00e9"])
        got = c.pipeline([("CLUSTER", "KEYSLOT", k) for k in keys])
        self.assertEqual(got, [key_slot(k) for k in keys])

        cc = ClusterClient(cl)
        self.addCleanup(cc.close)
        cc.refresh()
        want = {"k:%d" % i: "v%d" % i for i in range(3000)}
        by_node = {}
        for k, v in want.items():
            by_node.setdefault(cc.owner[key_slot(k)], []).append(("SET", k, v))
        self.assertEqual(len(by_node), 3)
        for node, cmds in by_node.items():
            cn = node.client()
            self.addCleanup(cn.close)
            self.assertEqual(set(cn.pipeline(cmds)), {"OK"})
        self.assertEqual(cc.get_many(want), want)
        self.assertTrue(all(n > 0 for n in cc.dbsizes().values()), cc.dbsizes())

        src, dst, third = cl.primaries()
        slots = cl.slots_of(src)[:40]
        cl.begin_migration(slots, src, dst)
        self.assertFalse(cl.settled())
        moved = cl.migrate_keys(slots[:20], src, dst)
        self.assertGreater(moved, 0)
        self.assertEqual(cc.get_many(want), want)  # some through ASK
        new = next(k for k in ("n:%d" % i for i in range(100000)) if key_slot(k) in slots)
        cs = src.client()
        self.addCleanup(cs.close)
        r = cs.pipeline([("SET", new, "1")])[0]
        self.assertTrue(str(r).startswith("ASK %d 127.0.0.1:%d" % (key_slot(new), dst.port)), r)
        cl.migrate_keys(slots, src, dst)
        cl.finish_migration(slots, src, dst)
        self.assertEqual(cc.get_many(want), want)  # through MOVED: the map was old
        cl.wait_settled()
        self.assertEqual(cl.owner(slots[0]), dst)
        n_src = len(cl.slots_of(src))
        cl.reshard(third, src, 100, pipeline=3)
        cl.wait_settled()
        self.assertEqual(len(cl.slots_of(src)), n_src + 100)
        self.assertEqual(cc.get_many(want), want)


class ClusterWriteTest(MdTestCase):
    """mdcache writing to a cluster."""

    def cluster_client(self, cl):
        cc = ClusterClient(cl)
        self.addCleanup(cc.close)
        return cc

    def start_on(self, cl, seeds=None, args=(), ini=LONG_INI):
        """mdcache with a TCP jsonl feed, its --redis naming `seeds` (default:
        the first primary alone, so cluster mode comes from INFO)."""
        port = free_port()
        m = self.start_mdcache(None, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               redis_url=cl.url(seeds if seeds is not None else cl.nodes[:1]),
                               ini=ini, args=list(args), cpus="0,1")
        return m, port

    def feed_run(self, port, prefix, symbols, ticks, seed, accounts=0, extra=()):
        """One bounded mdfeed run (jsonl over TCP): (summary, expected)."""
        path = os.path.join(self.tmpdir(), "%s.expect" % prefix)
        args = ["--target", "tcp://127.0.0.1:%d" % port, "--format", "jsonl",
                "--symbols", str(symbols), "--ticks", str(ticks), "--symbol-prefix", prefix,
                "--source", "src-" + prefix, "--seed", str(seed)]
        if accounts:
            args += ["--accounts", str(accounts), "--account-every", "10"]
        summary, want = run_mdfeed(args + list(extra), path)
        self.assertEqual(summary["sent"], ticks, summary)
        return summary, want

    def stream(self, port, prefix, symbols, seed, rate=20000, max_seconds=150):
        """A long paced mdfeed run in the background (bounded by rate x
        max_seconds ticks and --duration max_seconds); stop() it when done."""
        path = os.path.join(self.tmpdir(), "%s.expect" % prefix)
        s = MdfeedRun(["--target", "tcp://127.0.0.1:%d" % port, "--format", "jsonl",
                       "--symbols", str(symbols), "--ticks", str(int(rate * max_seconds)),
                       "--rate", str(rate), "--duration", str(max_seconds * SLOW),
                       "--symbol-prefix", prefix, "--source", "src-" + prefix,
                       "--seed", str(seed)], path)
        self.addCleanup(s.kill)
        return s

    def wait_ticks(self, m, at_least, timeout=60, feed=None):
        """Waits until mdcache counted at_least ticks_in (or the background
        feed ended by itself, when given); returns the stats."""
        def ok(s):
            return s.get("ticks_in", 0) >= at_least or (feed is not None and not feed.running())
        return m.wait_stats(ok, timeout)

    def converge(self, cc, m, want, timeout=None):
        """Polls until every key holds its expected value (None: no such key;
        positions and order lists compared entry by entry, see
        test_mdfeed_accounts), read from its slot's owner."""
        timeout = CONVERGE_TIMEOUT if timeout is None else timeout
        keys = sorted(want)
        last = {}

        def good():
            got = cc.get_many(keys)
            last["got"] = got
            last["bad"] = [k for k in keys if not same(k, got[k], want[k])]
            return not last["bad"]

        if wait_for(good, timeout, interval=0.2):
            return last["got"]
        got, bad = last["got"], last["bad"]
        lines = ["%d of %d keys differ after %gs; first:" % (len(bad), len(keys), timeout)]
        for k in bad[:8]:
            lines.append("  %s (slot %d)\n    expected %s\n    actual   %s"
                         % (k, key_slot(k), want[k], got[k]))
        lines.append("cluster:\n%s" % cc.cluster.describe())
        lines.append("mdcache stats: %s\nlog tail:\n%s" % (m.stats(), m.tail(40)))
        self.fail("\n".join(lines))

    def worker_connections(self, node):
        """{client name: count} of mdcache's worker connections to node."""
        c = node.client()
        try:
            text = c.cmd("CLIENT", "LIST")
        finally:
            c.close()
        out = {}
        for line in text.splitlines():
            mm = WORKER_NAME.search(line)
            if mm:
                out[mm.group(1)] = out.get(mm.group(1), 0) + 1
        return out

    def cluster_log(self, m):
        return "\n".join(l for l in m.log().splitlines()
                         if re.search(r"cluster|topolog|slot|MOVED|ASK|failover", l, re.I))

    def note(self, text):
        """A line in the test output (the runner prints at verbosity 2)."""
        sys.stderr.write("\n    [%s] %s " % (self._testMethodName, text))
        sys.stderr.flush()

    # ------------------------------------------------------------ the tests

    def test_3x3_every_key_exact_on_its_owner(self):
        """120k ticks over 10k symbols and account messages for 50 accounts
        into 3 primaries + 3 replicas, mdcache given one seed (cluster mode
        from INFO cluster): every key exact on its slot's owner, every
        primary holds keys and has one connection per worker, and a stable
        cluster costs no redirect at all."""
        t0 = time.monotonic()
        cl = self.start_cluster(3, 1)
        cc = self.cluster_client(cl)
        m, port = self.start_on(cl)
        summary, want = self.feed_run(port, "CL", 10000, 120000, 21, accounts=50,
                                  extra=["--string-numbers", "--decimal-sizes"])
        prices = [k for k in want if k.startswith("price:")]
        self.assertEqual(len(prices), 10000)
        self.assertGreater(len(want) - len(prices), 100, "account keys expected too")
        self.converge(cc, m, want)

        # Spread over every primary: by the slot map, and by what each holds.
        per_owner = {}
        for k in want:
            per_owner[cc.owner[key_slot(k)].port] = per_owner.get(cc.owner[key_slot(k)].port,
                                                                  0) + 1
        primaries = cl.primaries()
        self.assertEqual(sorted(per_owner), sorted(n.port for n in primaries), per_owner)
        sizes = cc.dbsizes()
        self.assertTrue(len(sizes) == 3 and all(v > 0 for v in sizes.values()), sizes)
        # Every worker holds one connection per primary, and none to a replica.
        for n in primaries:
            self.assertEqual(self.worker_connections(n), {"mdcache-w0": 1, "mdcache-w1": 1},
                             "worker connections to primary 127.0.0.1:%d" % n.port)
        for n in cl.nodes:
            if n not in primaries:
                self.assertEqual(self.worker_connections(n), {},
                                 "worker connections to replica 127.0.0.1:%d" % n.port)

        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], summary["valid"], fin)
        self.assertEqual(fin["account_msgs"], summary["account_msgs"], fin)
        for k in ("decode_errors", "refused", "drops", "redis_errors", "cluster_moved",
                  "cluster_ask", "cluster_down"):
            self.assertEqual(fin.get(k), 0, "%s: final: %s" % (k, fin))
        self.converge(cc, m, want, timeout=5)
        self.note("%d keys on %s; %.1fs" % (len(want), sizes, time.monotonic() - t0))

    def test_failover_mid_stream_converges(self):
        """A primary, the first seed of mdcache's list, is killed with SIGKILL
        while a stream flows; its replica is promoted; the stream goes on,
        and every key, those written before the kill too, converges on the
        new primary. mdcache counted the new map (topology_updates)."""
        t0 = time.monotonic()
        cl = self.start_cluster(3, 1)
        cc = self.cluster_client(cl)
        victim, other, _ = cl.primaries()
        m, port = self.start_on(cl, seeds=[victim, other])

        sa, want = self.feed_run(port, "FA", 5000, 30000, 31, accounts=20)
        self.converge(cc, m, want)
        # What was acknowledged is on the replicas too: the kill below can
        # lose only writes still in flight (mdcache must re-send those).
        self.assertTrue(wait_for(cl.replicas_caught_up, 30 * SLOW, interval=0.1),
                        "replicas never caught up:\n%s" % cl.describe())
        done = sa["valid"]

        feed = self.stream(port, "FB", 5000, 32)
        before = self.wait_ticks(m, done + 20000, feed=feed)
        self.assertTrue(feed.running(), "the stream ended before the kill")
        slots = cl.slots_of(victim)
        replicas = cl.replicas_of(victim)
        victim.kill()
        t_kill = time.monotonic()
        promoted = cl.wait_failover(victim, slots)
        t_promoted = time.monotonic() - t_kill
        self.assertIn(promoted, replicas)
        # The stream goes on past the promotion, then ends.
        self.wait_ticks(m, m.stats()["ticks_in"] + 20000, feed=feed)
        sb, want_b = feed.stop()
        want.update(want_b)
        done += sb["valid"]
        # And a new stream after it.
        sc, want_c = self.feed_run(port, "FC", 2000, 10000, 33)
        want.update(want_c)
        done += sc["valid"]

        self.converge(cc, m, want)
        self.assertTrue(m.alive(), "mdcache died:\n" + m.tail())
        after = m.wait_stats(lambda s: s.get("topology_updates", 0)
                             > before.get("topology_updates", 0))
        # The log says so, naming the promoted primary.
        told = [l for l in self.cluster_log(m).splitlines()
                if "127.0.0.1:%d" % promoted.port in l]
        self.assertTrue(told, "no cluster line names the promoted primary 127.0.0.1:%d:\n%s"
                        % (promoted.port, self.cluster_log(m)[-3000:]))
        self.assertEqual(cc.dbsizes().keys(), {n.port for n in cl.primaries()})
        self.assertNotIn(victim.port, cc.dbsizes())
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], done, fin)
        self.converge(cc, m, want, timeout=5)
        self.note("%d keys; promoted after %.1fs; topology_updates %s -> %s; "
                  "cluster_moved=%s cluster_down=%s redis_errors=%s reconnects=%s; %.1fs; "
                  "log: %s"
                  % (len(want), t_promoted, before.get("topology_updates"),
                     after.get("topology_updates"), fin.get("cluster_moved"),
                     fin.get("cluster_down"), fin.get("redis_errors"), fin.get("reconnects"),
                     time.monotonic() - t0, told[0].strip()[:300]))

    def test_resharding_mid_stream_ask_and_moved(self):
        """Slots move while mdcache writes. (1) ASK, by hand: 256 slots of a
        primary set IMPORTING/MIGRATING and their keys migrated, then a new
        symbol set is fed: its keys in those slots are missing on the
        source, which answers -ASK to each, so ASK is certain. (2) MOVED:
        mdcache's ACL user is denied CLUSTER SHARDS and SLOTS, the slots are
        given to the target, and new keys are fed: a refresh cannot tell
        mdcache the new owner, only -MOVED can, so MOVED is certain, and the
        keys converging shows that MOVED alone routes them. (3) With map
        reads allowed again, `redis-cli --cluster reshard` moves 1000 slots
        between the other primaries while a stream flows. Every key
        converges after each step."""
        t0 = time.monotonic()
        cl = self.start_cluster(3, 0)
        cl.on_every_node("ACL", "SETUSER", "mdc", "on", ">mdc-pw", "~*", "&*", "+@all")
        cc = self.cluster_client(cl)
        p0, p1, p2 = cl.primaries()
        port = free_port()
        m = self.start_mdcache(None, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=LONG_INI,
                               redis_url=cl.url([p0, p1], username="mdc", password="mdc-pw"),
                               cpus="0,1")

        sa, want = self.feed_run(port, "RA", 10000, 40000, 41, accounts=20)
        self.converge(cc, m, want)
        done = sa["valid"]

        # (1) ASK: slots of p0 migrating to p1, every key of theirs on p1.
        slots = cl.slots_of(p0)[:256]
        cl.begin_migration(slots, p0, p1)
        migrated = cl.migrate_keys(slots, p0, p1)
        self.assertGreater(migrated, 0)
        sb, want_b = self.feed_run(port, "RB", 10000, 20000, 42)
        in_slots = [k for k in want_b if key_slot(k) in set(slots)]
        self.assertGreater(len(in_slots), 20, "the new keys must fall in the migrating slots")
        want.update(want_b)
        done += sb["valid"]
        self.converge(cc, m, want)
        s1 = m.wait_stats(lambda s: s.get("cluster_ask", 0) > 0)
        # The keys of the migrating slots are on the importing node.
        cd = p1.client()
        self.addCleanup(cd.close)
        held = cd.pipeline([c for k in in_slots for c in (("ASKING",), ("EXISTS", k))])[1::2]
        self.assertEqual(held, [1] * len(in_slots))

        # (2) MOVED: no map reads for mdcache; the slots go to p1; new keys.
        cl.on_every_node("ACL", "SETUSER", "mdc", "-cluster|shards", "-cluster|slots")
        cl.migrate_keys(slots, p0, p1)  # nothing left, normally
        cl.finish_migration(slots, p0, p1)
        sc, want_c = self.feed_run(port, "RC", 10000, 20000, 43)
        self.assertGreater(len([k for k in want_c if key_slot(k) in set(slots)]), 20)
        want.update(want_c)
        done += sc["valid"]
        cl.wait_settled()
        self.converge(cc, m, want)
        s2 = m.wait_stats(lambda s: s.get("cluster_moved", 0) > 0)
        cl.on_every_node("ACL", "SETUSER", "mdc", "+cluster|shards", "+cluster|slots")

        # (3) redis-cli --cluster reshard while a stream flows.
        feed = self.stream(port, "RD", 5000, 44)
        self.wait_ticks(m, done + 20000, feed=feed)
        self.assertTrue(feed.running(), "the stream ended before the reshard")
        n_p0 = len(cl.slots_of(p0))
        out = cl.reshard(p2, p0, 1000, pipeline=2)
        self.assertIn("Moving slot", out)
        cl.wait_settled()
        self.wait_ticks(m, m.stats()["ticks_in"] + 20000, feed=feed)
        sd, want_d = feed.stop()
        want.update(want_d)
        done += sd["valid"]
        self.converge(cc, m, want)
        self.assertEqual(len(cl.slots_of(p0)), n_p0 + 1000)
        s3 = m.stats()

        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], done, fin)
        self.converge(cc, m, want, timeout=5)
        self.note("%d keys; %d migrated by hand; ask/moved after (1) %s/%s, after (2) %s/%s, "
                  "after reshard %s/%s, final %s/%s; topology_updates=%s; %.1fs"
                  % (len(want), migrated, s1.get("cluster_ask"), s1.get("cluster_moved"),
                     s2.get("cluster_ask"), s2.get("cluster_moved"), s3.get("cluster_ask"),
                     s3.get("cluster_moved"), fin["cluster_ask"], fin["cluster_moved"],
                     fin.get("topology_updates"), time.monotonic() - t0))

    def small_run(self, cl, args=(), secret=None):
        cc = self.cluster_client(cl)
        m, port = self.start_on(cl, seeds=cl.nodes[1:3], args=args)
        summary, want = self.feed_run(port, "SM", 3000, 30000, 51, accounts=10)
        self.converge(cc, m, want)
        sizes = cc.dbsizes()
        self.assertTrue(len(sizes) == 3 and all(v > 0 for v in sizes.values()), sizes)
        for n in cl.primaries():
            self.assertEqual(self.worker_connections(n), {"mdcache-w0": 1, "mdcache-w1": 1},
                             "worker connections to 127.0.0.1:%d" % n.port)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], summary["valid"], fin)
        for k in ("redis_errors", "handshake_failures", "cluster_moved", "cluster_ask"):
            self.assertEqual(fin.get(k), 0, "%s: final: %s" % (k, fin))
        if secret:
            self.assertNotIn(secret, m.log(), "the password appears in mdcache's log")
        return fin

    def test_cluster_with_password(self):
        """requirepass on every node (masterauth for the bus): the password
        from the URL authenticates every connection to every primary."""
        cl = self.start_cluster(3, 0, requirepass="cl-pw-8e1")
        self.small_run(cl, secret="cl-pw-8e1")

    def test_cluster_over_tls(self):
        """TLS-only nodes (tls-cluster): rediss:// seeds verified against the
        test CA; the primaries are reached on the TLS ports they report."""
        certs = tlscerts.get()
        cl = self.start_cluster(3, 0, tls=certs)
        self.assertTrue(cl.url().startswith("rediss://127.0.0.1:"))
        self.small_run(cl, args=["--cacert", certs.ca_crt])

    def test_cluster_over_tls_with_password(self):
        certs = tlscerts.get()
        cl = self.start_cluster(3, 0, tls=certs, requirepass="cl-tls-pw")
        self.small_run(cl, args=["--cacert", certs.ca_crt], secret="cl-tls-pw")


class ClusterConfigTest(MdTestCase):
    """Seed lists and cluster modes that cannot work end start-up with one
    line and exit 2, never quoting the password."""

    def start_fails(self, url, args=(), *needles):
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        argv = ["--redis", url, "--listen", listen, "--cpus", "0"] + list(args)
        rc, _out, err = run_mdcache_once(argv, timeout=20)
        self.assertEqual(rc, 2, "%s: exit %s, want 2; stderr:\n%s" % (argv, rc, err))
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "%s: want a one-line error, got:\n%s" % (argv, err))
        self.assertNotIn("unknown option", lines[0])
        for n in needles:
            self.assertIn(n, lines[0], argv)
        self.assertNotIn("seed-pw", err)
        return lines[0]

    def test_bad_seed_lists_exit_2(self):
        a, b = free_port(), free_port()
        two = "redis://:seed-pw@127.0.0.1:%d,127.0.0.1:%d" % (a, b)
        line = self.start_fails(two + "/0", ["--cluster", "no"], "--cluster no")
        self.assertIn("seed", line)
        self.start_fails("redis://:seed-pw@127.0.0.1:%d,,127.0.0.1:%d/0" % (a, b), (), "seed")
        self.start_fails("redis://:seed-pw@127.0.0.1:%d,/0" % a, (), "seed")
        self.start_fails("redis://:seed-pw@127.0.0.1:%d,127.0.0.1:0/0" % a, (), "seed", "port")
        # Redis Cluster has only database 0.
        self.start_fails(two + "/3", (), "database")
        self.start_fails("redis://:seed-pw@127.0.0.1:%d/3" % a, ["--cluster", "yes"],
                         "database")

    def test_cluster_yes_against_a_standalone_server_exits_2(self):
        r = self.start_redis(requirepass="seed-pw")
        line = self.start_fails("redis://:seed-pw@127.0.0.1:%d/0" % r.port, ["--cluster", "yes"])
        self.assertIn("cluster", line.lower())


if __name__ == "__main__":
    import unittest
    unittest.main()
