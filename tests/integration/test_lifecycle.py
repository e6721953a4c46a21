"""Process lifecycle: SIGTERM flushes everything even while Redis is not
answering, configuration errors and informational flags, and liveness: keys
of a source that only sends heartbeats stay alive, keys of a silent source
expire."""

import os
import signal
import socket
import time
import unittest

from harness import (SLOW, MdTestCase, jl, Num, free_port, run_mdcache_once, run_mdfeed,
                     send_udp, wait_for, wait_keys)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SigtermTest(MdTestCase):
    def test_sigterm_flushes_while_redis_paused(self):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               ini="[keys]\nprice_ttl = 60\n")
        d = self.tmpdir()
        target = ["--target", "tcp://127.0.0.1:%d" % port, "--format", "jsonl"]
        s1, e1 = run_mdfeed(target + ["--symbols", "300", "--ticks", "3000", "--symbol-prefix",
                                      "PA", "--source", "phase1"], os.path.join(d, "1.jsonl"))
        c = self.client(r)
        wait_keys(c, e1, mdcache=m)  # the link is up and writing

        pauser = self.client(r)
        pause_ms = 4000
        t_pause = time.monotonic()
        self.assertEqual(pauser.cmd("CLIENT", "PAUSE", pause_ms, "WRITE"), "OK")
        s2, e2 = run_mdfeed(target + ["--symbols", "500", "--ticks", "20000", "--symbol-prefix",
                                      "PB", "--source", "phase2", "--decimal-sizes"],
                            os.path.join(d, "2.jsonl"))
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= s1["valid"] + s2["valid"], timeout=10)
        t_term = time.monotonic()
        # The point is to stop the daemon while its writes are held back.
        self.assertLess(t_term - t_pause, pause_ms / 1000.0 - 0.5,
                        "too slow to reach SIGTERM inside the pause window; test not meaningful")
        rc = m.terminate(timeout=20)
        t_exit = time.monotonic()
        self.assertEqual(rc, 0, "exit code after SIGTERM; log:\n" + m.tail())
        fin = m.final()
        self.assertIsNotNone(fin, "no final line:\n" + m.tail())
        self.assertEqual(fin.get("ticks_in"), s1["valid"] + s2["valid"], "final: %s" % fin)
        self.assertEqual(fin.get("dirty", 0), 0, "dirty keys left at exit: %s" % fin)
        e = dict(e1)
        e.update(e2)
        wait_keys(c, e, timeout=1, mdcache=m)  # already there: nothing writes any more
        self.assertGreater(t_exit - t_pause, pause_ms / 1000.0 - 0.3,
                           "exited before the pause ended, yet all keys are there?")

    def test_sigint_exits_zero(self):
        r = self.start_redis()
        port = free_port("udp")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=jsonl" % port])
        send_udp(port, [jl(type_="trade", symbol="INT1", price=Num("1.50"), size=2, seq=1,
                           ts=1763740000000000000)])
        c = self.client(r)
        wait_keys(c, {"price:INT1:latest": '{"Last":1.50,"Bid":null,"Ask":null,"Volume":2,'
                                           '"High":1.50,"Low":1.50,"Timestamp":1763740000000}'},
                  mdcache=m)
        m.signal(signal.SIGINT)
        try:
            rc = m.proc.wait(15 * SLOW)
        except Exception:
            rc = None
        self.assertEqual(rc, 0, "SIGINT exit code; log:\n" + m.tail())
        self.assertIsNotNone(m.final(), "no final line:\n" + m.tail())


class ConfigTest(MdTestCase):
    def write(self, text):
        path = os.path.join(self.tmpdir(), "bad.ini")
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_config_error(self, args, *needles):
        rc, out, err = run_mdcache_once(args)
        self.assertEqual(rc, 2, "args %s: exit %s, stderr %r" % (args, rc, err))
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "want a one-line error, got %r" % err)
        for n in needles:
            self.assertIn(n, lines[0], "error line should name %r: %r" % (n, lines[0]))
        return lines[0]

    def test_bad_value_names_file_line_key(self):
        path = self.write("[mdcache]\ncpus = 0\n\n[keys]\nprice_ttl = banana\n")
        self.assert_config_error(["-c", path, "--check-config"], "%s:5" % path, "price_ttl")
        self.assert_config_error(["-c", path], "%s:5" % path, "price_ttl")

    def test_unknown_key_names_file_line_key(self):
        path = self.write("[redis]\nurl = redis://127.0.0.1:1/0\n[keys]\nprice_ttl = 3\n"
                          "no_such_key = 1\n")
        self.assert_config_error(["-c", path, "--check-config"], "%s:5" % path, "no_such_key")

    def test_bad_command_line(self):
        self.assert_config_error(["--listen", "ftp://127.0.0.1:1?format=jsonl", "--check-config"])
        self.assert_config_error(["--cpus", "banana", "--check-config"])
        self.assert_config_error(["-c", "/nonexistent/mdcache.ini", "--check-config"],
                                 "/nonexistent/mdcache.ini")

    def test_check_config_version_help(self):
        path = self.write("[mdcache]\ncpus = 0\nstats_interval = 1\n[feeds]\n"
                          "listen = udp://127.0.0.1:%d?format=bin1\n[redis]\n"
                          "url = redis://127.0.0.1:6390/0\n[keys]\nprice_ttl = 5\n"
                          % free_port("udp"))
        rc, out, err = run_mdcache_once(["-c", path, "--check-config"])
        self.assertEqual(rc, 0, "--check-config of a valid file: %r" % err)
        rc, out, err = run_mdcache_once(["--version"])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(ROOT, "VERSION")) as f:
            self.assertIn(f.read().strip(), out)
        rc, out, err = run_mdcache_once(["--help"])
        self.assertEqual(rc, 0, err)
        self.assertIn("--listen", out)


class LivenessTest(MdTestCase):
    def test_heartbeats_keep_keys_silence_expires_them(self):
        # Liveness is about time, so the margins are seconds, not
        # milliseconds: a refresh is due 2 s before expiry, and a source
        # stays alive for 3 s after a heartbeat sent every 0.25 s.
        ttl = 4
        r = self.start_redis()
        port = free_port("udp")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=jsonl" % port],
                               ini="[keys]\nprice_ttl = %d\nsource_timeout = 3\n" % ttl)
        ts = time.time_ns()
        syms = ["LIVE%d" % i for i in range(20)]
        send_udp(port, [jl(type_="trade", symbol=s, price=Num("%d.00" % (i + 1)), size=1, seq=1,
                           ts=ts, source="hbsrc") for i, s in enumerate(syms)])
        keys = ["price:%s:latest" % s for s in syms]
        exp = {k: '{"Last":%d.00,"Bid":null,"Ask":null,"Volume":1,"High":%d.00,"Low":%d.00,'
                  '"Timestamp":%d}' % (i + 1, i + 1, i + 1, ts // 1000000)
               for i, k in enumerate(keys)}
        c = self.client(r)
        wait_keys(c, exp, mdcache=m)

        # Heartbeats only, for two TTLs: no key may vanish meanwhile.
        hb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(hb.close)
        end = time.monotonic() + 2 * ttl
        missing_seen = []
        while time.monotonic() < end:
            hb.sendto(jl(type_="heartbeat", source="hbsrc", ts=time.time_ns()),
                      ("127.0.0.1", port))
            got = c.get_many(keys)
            missing_seen += [k for k, v in got.items() if v != exp[k]]
            time.sleep(0.25)
        self.assertEqual(missing_seen, [], "keys lost or changed while heartbeats kept coming")
        ttls = c.ttl_many(keys)
        self.assertTrue(all(1 <= t <= ttl for t in ttls.values()), ttls)

        # Silence: every latest key expires; last_good stays.
        gone = wait_for(lambda: all(v is None for v in c.get_many(keys).values()), 30 * SLOW,
                        interval=0.2)
        self.assertTrue(gone, "keys of a silent source still there after 30s: %s"
                        % {k: v for k, v in c.get_many(keys).items() if v is not None})
        good = c.get_many([k.replace(":latest", ":last_good") for k in keys])
        self.assertEqual(sorted(good.values()), sorted(exp.values()))
        self.assertTrue(m.alive(), m.tail())
        self.assert_clean_exit(m)


if __name__ == "__main__":
    unittest.main()
