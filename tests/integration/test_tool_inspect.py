"""build/mdcache-inspect against real servers: keys written by mdcache (fed
by mdfeed with account messages) to a standalone server, to a 3-primary
cluster, and to a TLS server with a password. The tool's counts per class
must equal what a SCAN from Python finds, on every primary; its listing
must show TTLs and freshness; bad options exit 2 and an unreachable server
exits 1, each with one line on stderr."""

import json
import os
import re
import subprocess
import time

import tlscerts
from harness import (CONVERGE_TIMEOUT, MDCACHE_BIN, ClusterClient, MdTestCase, free_port, run_mdfeed,
                     wait_for)

# Next to the daemon under test: tests/run.sh points MDCACHE_BIN at the
# build being tested (build/ or build-san/).
INSPECT_BIN = os.environ.get("INSPECT_BIN", os.path.join(os.path.dirname(MDCACHE_BIN),
                                                         "mdcache-inspect"))

# Keys outlive the test: nothing expires between the Python count and the
# tool's.
LONG_INI = ("[keys]\nsource_timeout = 120\nprice_ttl = 60\npositions_ttl = 60\n"
            "orders_ttl = 60\nbalances_ttl = 60\naccounts_ttl = 600\n")

CLASSES = ("price", "price_fallback", "positions", "order", "order_list", "balances",
           "accounts")


def class_regexes(prefix=""):
    """docs/keys.md's default templates, most specific first (an order key
    also has the shape of a longer account's order list key)."""
    p = re.escape(prefix)
    return [
        ("price", re.compile(p + r"price:.+:latest\Z", re.S)),
        ("price_fallback", re.compile(p + r"price:.+:last_good\Z", re.S)),
        ("positions", re.compile(p + r"hft:positions:.+:all\Z", re.S)),
        ("order", re.compile(p + r"hft:orders:pending:[^:]+:.+\Z", re.S)),
        ("order_list", re.compile(p + r"hft:orders:pending:.+\Z", re.S)),
        ("balances", re.compile(p + r"hft:balances:.+:all\Z", re.S)),
        ("accounts", re.compile(p + r"hft:accounts:.+\Z", re.S)),
    ]


def count_classes(keys, prefix=""):
    counts = dict.fromkeys(CLASSES, 0)
    counts["other"] = 0
    rx = class_regexes(prefix)
    for k in keys:
        for name, r in rx:
            if r.match(k):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
    return counts


def get_cache_stats(keys):
    """The seeds' get_cache_stats() (seeds/orca-redis-operations.md) over
    the keys a scan_iter('hft:*') returns."""
    stats = {"accounts": 0, "positions": 0, "orders": 0, "balances": 0, "total": 0}
    for key in keys:
        if not key.startswith("hft:"):
            continue
        stats["total"] += 1
        if "accounts" in key:
            stats["accounts"] += 1
        elif "positions" in key:
            stats["positions"] += 1
        elif "orders" in key:
            stats["orders"] += 1
        elif "balances" in key:
            stats["balances"] += 1
    return stats


def inspect(args, timeout=60, env=None):
    p = subprocess.run([INSPECT_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout, p.stderr


class InspectTest(MdTestCase):
    def inspect_json(self, args):
        rc, out, err = inspect(list(args) + ["--json"])
        self.assertEqual(rc, 0, "%s: exit %s\n%s" % (args, rc, err))
        return json.loads(out)

    def feed(self, port, prefix, accounts=20, ticks=4000, seed=7):
        path = os.path.join(self.tmpdir(), "%s.expect" % prefix)
        summary, want = run_mdfeed(["--target", "tcp://127.0.0.1:%d" % port, "--format", "jsonl",
                                    "--symbols", "200", "--ticks", str(ticks),
                                    "--symbol-prefix", prefix, "--source", "src-" + prefix,
                                    "--seed", str(seed), "--accounts", str(accounts),
                                    "--account-every", "10"], path)
        self.assertEqual(summary["sent"], ticks, summary)
        return want

    def settle(self, scan, want, m, prefix=""):
        """Waits until every key mdfeed expects is in Redis, stops mdcache
        (so the keyspace holds still), and returns the keys SCAN finds."""
        present = {prefix + k for k, v in want.items() if v is not None}
        ok = wait_for(lambda: present <= set(scan()), CONVERGE_TIMEOUT, interval=0.1)
        self.assertTrue(ok, "keys missing after %gs: %s\nlog tail:\n%s"
                        % (CONVERGE_TIMEOUT, sorted(present - set(scan()))[:8], m.tail()))
        self.assert_clean_exit(m)
        return sorted(scan())

    def check_counts(self, got, keys, prefix=""):
        want = count_classes(keys, prefix)
        for c in CLASSES:
            self.assertEqual(got["classes"][c]["keys"], want[c], "class %s: %s" % (c, got))
            st = got["classes"][c]
            self.assertEqual(st["fresh"] + st["stale"] + st["no_ttl"], st["keys"], st)
        self.assertEqual(got["other"], want["other"])
        self.assertEqual(got["orders"], want["order"] + want["order_list"])
        self.assertEqual(got["scanned"], len(keys))
        for c in ("price", "positions", "order", "order_list", "balances", "accounts"):
            self.assertGreater(want[c], 0, "the run wrote no %s keys: %s" % (c, want))
        return want

    def test_standalone(self):
        r = self.start_redis()
        c = self.client(r)
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=LONG_INI)
        want = self.feed(port, "IS")
        keys = self.settle(lambda: c.scan_all("*"), want, m)
        # One fresh price, one whose exchange time is long past, and a key
        # of some other application.
        now_ms = int(time.time() * 1000)
        c.cmd("SETEX", "price:ZZFRESH:latest", "100", '{"Last":1,"Timestamp":%d}' % now_ms)
        c.cmd("SETEX", "price:ZZOLD:latest", "100", '{"Last":1,"Timestamp":%d}' % (now_ms - 3600000))
        c.cmd("SET", "someone:else", "x")
        keys = sorted(c.scan_all("*"))

        got = self.inspect_json(["--redis", r.url])
        self.assertEqual(got["mode"], "standalone")
        n = self.check_counts(got, keys)
        self.assertEqual(got["cache_stats"], get_cache_stats(keys))
        # TTLs: every class that has one, within what was configured.
        for cls, hi in (("price", 100), ("positions", 60), ("order", 60), ("balances", 60),
                        ("accounts", 600)):
            st = got["classes"][cls]
            self.assertTrue(0 < st["ttl_min"] <= st["ttl_median"] <= st["ttl_max"] <= hi, st)
        # The fallback keys (last_good_ttl = 0) live without a TTL.
        fb = got["classes"]["price_fallback"]
        self.assertEqual(fb["no_ttl"], fb["keys"], fb)
        self.assertIsNone(fb["ttl_min"])
        self.assertGreaterEqual(got["classes"]["price"]["stale"], 1)
        self.assertGreaterEqual(got["classes"]["price"]["fresh"], 1)
        node, = got["nodes"]
        self.assertEqual(node["scanned"], len(keys))
        self.assertEqual(node["keyspace"]["db0"]["keys"], c.cmd("DBSIZE"))
        self.assertRegex(node["used_memory_human"], r"^[0-9.]+[BKMG]$")
        self.assertGreaterEqual(node["connected_clients"], 1)
        self.assertEqual(node["ours"], len(keys) - n["other"])

        # Listings: TTL and freshness per key, bounded by --limit.
        lst = self.inspect_json(["--redis", r.url, "--keys", "price:ZZ*"])
        marks = {e["key"]: e for e in lst["keys"]}
        self.assertEqual(set(marks), {"price:ZZFRESH:latest", "price:ZZOLD:latest"})
        self.assertEqual(marks["price:ZZFRESH:latest"]["freshness"], "fresh")
        self.assertEqual(marks["price:ZZOLD:latest"]["freshness"], "stale")
        for e in lst["keys"]:
            self.assertTrue(0 < e["ttl"] <= 100, e)
        lst = self.inspect_json(["--redis", r.url, "--class", "balances", "--limit", "5"])
        self.assertEqual(lst["listed"], 5)
        self.assertTrue(lst["truncated"])
        for e in lst["keys"]:
            self.assertEqual(e["class"], "balances")
            self.assertTrue(0 < e["ttl"] <= 60, e)
        lst = self.inspect_json(["--redis", r.url, "--class", "orders", "--limit", "100000"])
        self.assertEqual(lst["listed"], n["order"] + n["order_list"])
        self.assertFalse(lst["truncated"])
        lst = self.inspect_json(["--redis", r.url, "--class", "price_fallback", "--limit", "3"])
        self.assertEqual([e["freshness"] for e in lst["keys"]], ["no_ttl"] * 3)
        self.assertEqual([e["ttl"] for e in lst["keys"]], [None] * 3)

        # The human forms.
        rc, out, err = inspect(["--redis", r.url])
        self.assertEqual(rc, 0, err)
        self.assertIn("get_cache_stats", out)
        self.assertRegex(out, r"(?m)^balances\s+%d\s" % n["balances"])
        rc, out, err = inspect(["--redis", r.url, "--keys", "price:ZZOLD:*"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"price:ZZOLD:latest\s+price\s+[0-9.]+\s+stale")

    def test_cluster_every_primary(self):
        self.cluster_run(self.start_cluster(3, 0), "IC", 8)

    def test_cluster_with_password(self):
        """The URL's password authenticates the tool on every primary."""
        self.cluster_run(self.start_cluster(3, 0, requirepass="insp-cl-pw"), "IP", 10,
                         ticks=2000)

    def cluster_run(self, cl, prefix, seed, ticks=4000):
        cc = ClusterClient(cl)
        self.addCleanup(cc.close)
        port = free_port()
        # One seed: cluster mode comes from INFO cluster, as for mdcache.
        url = cl.url(cl.nodes[:1])
        m = self.start_mdcache(None, ["tcp://127.0.0.1:%d?format=jsonl" % port], redis_url=url,
                               ini=LONG_INI)
        want = self.feed(port, prefix, seed=seed, ticks=ticks)
        keys = self.settle(lambda: cc.scan_all("*"), want, m)

        got = self.inspect_json(["--redis", url])
        self.assertEqual(got["mode"], "cluster")
        self.check_counts(got, keys)
        self.assertEqual(got["cache_stats"], get_cache_stats(keys))
        sizes = cc.dbsizes()
        self.assertEqual(len(got["nodes"]), 3, got["nodes"])
        for node in got["nodes"]:
            p = int(node["node"].rsplit(":", 1)[1])
            self.assertIn(p, sizes)
            self.assertEqual(node["scanned"], sizes[p], node)
            self.assertGreater(node["ours"], 0, node)
            self.assertEqual(node["keyspace"]["db0"]["keys"], sizes[p], node)
        self.assertEqual({int(n["node"].rsplit(":", 1)[1]) for n in got["nodes"]}, set(sizes))

        # A listing spans the primaries.
        lst = self.inspect_json(["--redis", url, "--class", "positions", "--limit", "100000"])
        self.assertEqual(lst["listed"], count_classes(keys)["positions"])
        self.assertGreater(len({e["node"] for e in lst["keys"]}), 1)

    def test_tls_password_config_file(self):
        certs = tlscerts.get()
        r = self.start_redis(tls=certs, requirepass="insp-pw-31")
        c = self.client(r)
        ini = LONG_INI + "prefix = t1:\n[redis]\nurl = %s\npassword = insp-pw-31\ncacert = %s\n" % (
            r.url, certs.ca_crt)
        d = self.tmpdir()
        path = os.path.join(d, "mdcache.ini")
        with open(path, "w") as f:
            f.write(ini)
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini,
                               redis_url=r.url)
        want = self.feed(port, "IT", accounts=10, ticks=2000, seed=9)
        keys = self.settle(lambda: c.scan_all("*"), want, m, prefix="t1:")

        # Everything from mdcache's file: URL, password, CA, prefix.
        got = self.inspect_json(["-c", path])
        self.check_counts(got, keys, prefix="t1:")
        self.assertEqual(got["prefix"], "t1:")
        # The same from the command line, the password in the URL.
        url = r.url.replace("rediss://", "rediss://:insp-pw-31@")
        got2 = self.inspect_json(["--redis", url, "--cacert", certs.ca_crt])
        self.assertEqual(got2["other"], len(keys))  # no prefix given: none are ours
        got3 = self.inspect_json(["-c", path, "--redis", url])
        self.assertEqual([got3["classes"][k]["keys"] for k in CLASSES],
                         [got["classes"][k]["keys"] for k in CLASSES])
        # REDIS_PASSWORD supplies it too.
        rc, out, err = inspect(["--redis", r.url, "--cacert", certs.ca_crt, "--json"],
                               env={"REDIS_PASSWORD": "insp-pw-31"})
        self.assertEqual(rc, 0, err)

        # Refusals are configuration errors: exit 2, one line, no password.
        for args, needle in (
                (["--redis", r.url, "--cacert", certs.ca_crt], "password"),
                (["--redis", url.replace("insp-pw-31", "wrong-pw"), "--cacert", certs.ca_crt],
                 "credentials"),
                (["--redis", url, "--cacert", certs.wrong_ca_crt], "certificate")):
            rc, out, err = inspect(args, env={"REDIS_PASSWORD": ""})
            self.assertEqual(rc, 2, "%s: exit %s\n%s" % (args, rc, err))
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, err)
            self.assertIn(needle, lines[0])
            self.assertNotIn("insp-pw-31", err)
            self.assertEqual(out, "")

    def test_bad_options_exit_2(self):
        d = self.tmpdir()
        bad_ini = os.path.join(d, "bad.ini")
        with open(bad_ini, "w") as f:
            f.write("[keys]\nno_such_key = 1\n")
        r = self.start_redis()
        for args, needle in (
                (["--bogus"], "unknown option"),
                (["--class", "nope"], "unknown class"),
                (["--limit", "0"], "--limit"),
                (["--limit", "x"], "--limit"),
                (["--count", "-5"], "--count"),
                (["--fresh", "abc"], "--fresh"),
                (["--keys"], "needs an argument"),
                (["stray"], "unexpected argument"),
                (["--redis", "ftp://127.0.0.1:1"], "scheme"),
                (["--cluster", "maybe"], "cluster"),
                (["-c", os.path.join(d, "missing.ini")], "missing.ini"),
                (["-c", bad_ini], "no_such_key"),
                (["--redis", "rediss://127.0.0.1:%d" % r.port, "--cacert",
                  os.path.join(d, "nope.crt")], "nope.crt"),
                (["--listen", "udp://127.0.0.1:1"], "unknown option"),
        ):
            rc, out, err = inspect(args)
            self.assertEqual(rc, 2, "%s: exit %s, want 2\n%s" % (args, rc, err))
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, "%s: %s" % (args, err))
            self.assertTrue(lines[0].startswith("mdcache-inspect: "), lines[0])
            self.assertIn(needle, lines[0], args)
            self.assertEqual(out, "")
        rc, out, err = inspect(["--help"])
        self.assertEqual(rc, 0)
        for opt in ("--json", "--keys", "--class", "--limit", "--count", "--cacert", "--redis"):
            self.assertIn(opt, out)

    def test_unreachable_exit_1(self):
        p1, p2 = free_port(), free_port()
        for url in ("redis://127.0.0.1:%d/0" % p1,
                    "redis://127.0.0.1:%d,127.0.0.1:%d/0" % (p1, p2)):
            rc, out, err = inspect(["--redis", url, "--json"])
            self.assertEqual(rc, 1, "%s: exit %s\n%s" % (url, rc, err))
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, err)
            self.assertIn("not reachable", lines[0])
            self.assertEqual(out, "")


if __name__ == "__main__":
    import unittest
    unittest.main()
