"""Redis going away, and a full key table: the daemon keeps ingesting, never
crashes, and converges once Redis is back."""

import os

from harness import MdTestCase, free_port, run_mdfeed, wait_keys


class RedisFaultTest(MdTestCase):
    def test_kill_and_restart_empty(self):
        """kill -9 of redis-server; ticks keep coming while it is gone; a new,
        empty server on the same port gets every key back, exact."""
        r = self.start_redis()
        port = free_port()
        # Long source timeout: liveness must not depend on how fast this
        # machine runs the test.
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               ini="[keys]\nsource_timeout = 120\nprice_ttl = 60\n")
        tmp = self.tmpdir()
        target = "tcp://127.0.0.1:%d" % port
        _, before = run_mdfeed(["--target", target, "--format", "jsonl", "--symbols", "400", "--ticks", "20000",
                                "--source", "first", "--symbol-prefix", "A", "--seed", "3"],
                               os.path.join(tmp, "a.jsonl"))
        c = self.client(r)
        wait_keys(c, before, mdcache=m)
        c.close()

        r.kill()
        # Sent while Redis is down: must be absorbed and written later.
        _, during = run_mdfeed(["--target", target, "--format", "jsonl", "--symbols", "400", "--ticks", "20000",
                                "--source", "second", "--symbol-prefix", "B", "--seed", "4"],
                               os.path.join(tmp, "b.jsonl"))
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 40000, 60)  # ingest goes on
        self.assertTrue(m.alive(), m.tail())

        r.restart()
        c = self.client(r)
        expected = dict(before)
        expected.update(during)
        wait_keys(c, expected, mdcache=m)
        m.wait_stats(lambda s: s.get("reconnects", 0) >= 1, 30)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], 40000, fin)
        self.assertEqual(fin["drops"], 0, fin)

    def test_max_keys_refuses_new_symbols(self):
        """Beyond max_keys new symbols are refused and counted; the keys that
        were accepted stay exact; the daemon lives on."""
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               args=["--max-keys", "100"], cpus="0")
        _, expected = run_mdfeed(["--target", "tcp://127.0.0.1:%d" % port, "--format", "jsonl", "--symbols", "1000",
                                  "--ticks", "20000", "--seed", "5"],
                                 os.path.join(self.tmpdir(), "e.jsonl"))
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 20000, 60)
        fin = self.assert_clean_exit(m)
        # One worker holds exactly max_keys.
        self.assertEqual(fin["keys"], 100, fin)
        self.assertGreater(fin["refused"], 0, fin)
        self.assertEqual(fin["applied"] + fin["refused"] + fin["duplicates"], 20000, fin)
        c = self.client(r)
        held = [k for k in c.scan_all("price:*:latest")]
        self.assertEqual(len(held), fin["keys"])
        actual = c.get_many(held)
        wrong = [k for k in held if actual[k] != expected[k]]
        self.assertFalse(wrong, "accepted keys must be exact: %s" % wrong[:5])
