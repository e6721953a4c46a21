"""Error replies and stalls from a real Redis (issue #4): OOM, READONLY,
LOADING, BUSY, NOAUTH, other errors (NOREPLICAS), a blocked server (DEBUG
SLEEP), a stopped server (reply timeout), killed connections, and SIGTERM
while Redis is gone. In each case mdcache counts the error by type, lives
on, keeps what it could not write, and converges once Redis is well again."""

import re
import signal
import threading
import time

from harness import (SLOW, LONG_LIVENESS_INI, MdTestCase, RespError, free_port, wait_for,
                     wait_keys)


def mdcache_client_ids(c):
    """CLIENT LIST ids of mdcache's worker connections (named mdcache-w<N>)."""
    return [re.search(r"\bid=(\d+)", l).group(1) for l in c.cmd("CLIENT", "LIST").splitlines()
            if re.search(r"\bname=mdcache-w\d+\b", l)]


class RedisErrorTest(MdTestCase):
    def start_fed(self, r, args=(), ini=LONG_LIVENESS_INI, redis_url=None):
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini,
                               args=list(args), redis_url=redis_url)
        return m, port

    def background(self, fn):
        """Runs fn in a daemon thread; its exception (if any) is kept in box."""
        box = {}

        def run():
            try:
                box["result"] = fn()
            except BaseException as e:  # noqa: B902 - reported by the test
                box["error"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, box

    def assert_errors_sum(self, fin):
        kinds = ("redis_oom", "redis_readonly", "redis_loading", "redis_busy", "redis_auth",
                 "redis_noperm", "redis_other")
        self.assertEqual(fin.get("redis_errors"), sum(fin.get(k, 0) for k in kinds),
                         "redis_errors must be the sum of the typed counters: %s" % fin)

    def test_oom(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "OA", "oom1", symbols=200, ticks=4000, seed=31)
        wait_keys(c, e1, mdcache=m)

        c.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
        c.cmd("CONFIG", "SET", "maxmemory", "1")
        e2 = self.feed(port, "OB", "oom2", symbols=200, ticks=4000, seed=32)
        m.wait_stats(lambda s: s.get("redis_oom", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())
        c.cmd("CONFIG", "SET", "maxmemory", "0")

        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assert_errors_sum(fin)

    def test_readonly_replica(self):
        """The server is demoted to a replica (of an empty B, which wipes it):
        writes get -READONLY; once promoted again every live key is back."""
        a = self.start_redis()
        b = self.start_redis()
        c = self.client(a)
        m, port = self.start_fed(a)
        e1 = self.feed(port, "RA", "ro1", symbols=200, ticks=4000, seed=33)
        wait_keys(c, e1, mdcache=m)

        c.cmd("REPLICAOF", "127.0.0.1", b.port)
        self.assertTrue(wait_for(lambda: "master_link_status:up" in c.cmd("INFO", "replication"),
                                 30 * SLOW), c.cmd("INFO", "replication"))
        e2 = self.feed(port, "RB", "ro2", symbols=200, ticks=4000, seed=34)
        m.wait_stats(lambda s: s.get("redis_readonly", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())

        c.cmd("REPLICAOF", "NO", "ONE")
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        self.assertEqual(self.client(b).cmd("DBSIZE"), 0, "nothing may be written to B")
        fin = self.assert_clean_exit(m)
        self.assert_errors_sum(fin)

    def test_loading(self):
        """A restarted server loading a big dump slowly answers -LOADING (the
        hidden key-load-delay config of 7.0 makes it take minutes); once
        loading is sped up and done, every key arrives."""
        r = self.start_redis(debug=True)
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "LA", "load1", symbols=200, ticks=4000, seed=35)
        wait_keys(c, e1, mdcache=m)
        self.assertEqual(c.cmd("DEBUG", "POPULATE", "200000", "filler"), "OK")
        self.assertEqual(c.cmd("SAVE"), "OK")
        c.close()

        r.kill()
        # 2 ms per key: loading 200k keys would take 400 s; events (so clients
        # and CONFIG SET) are served every ~1 kB of the dump.
        r.restart(extra_args=["--key-load-delay", "2000",
                              "--loading-process-events-interval-bytes", "1024"],
                  wait_ping=False)
        c = self.client(r)
        self.assertIn("loading:1", c.cmd("INFO", "persistence"))
        e2 = self.feed(port, "LB", "load2", symbols=200, ticks=4000, seed=36)
        m.wait_stats(lambda s: s.get("redis_loading", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())
        self.assertIn("loading:1", c.cmd("INFO", "persistence"),
                      "the server finished loading too early: test not meaningful")

        c.cmd("CONFIG", "SET", "key-load-delay", "0")  # allowed while loading
        self.assertTrue(wait_for(lambda: "loading:0" in c.cmd("INFO", "persistence"),
                                 60 * SLOW, interval=0.1))
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assert_errors_sum(fin)

    def test_busy_script(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "BA", "busy1", symbols=200, ticks=4000, seed=37)
        wait_keys(c, e1, mdcache=m)

        c.cmd("CONFIG", "SET", "busy-reply-threshold", "100")
        looper = r.client(timeout=300 * SLOW)
        self.addCleanup(looper.close)
        self.addCleanup(self._script_kill, r)
        t, box = self.background(lambda: looper.pipeline([("EVAL", "while true do end", "0")]))

        def busy():
            try:
                return isinstance(c.pipeline([("PING",)])[0], RespError)
            except OSError:
                return False
        self.assertTrue(wait_for(busy, 30 * SLOW), "the script never made the server BUSY")
        e2 = self.feed(port, "BB", "busy2", symbols=200, ticks=4000, seed=38)
        m.wait_stats(lambda s: s.get("redis_busy", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())

        self.assertEqual(c.cmd("SCRIPT", "KILL"), "OK")
        t.join(30 * SLOW)
        self.assertFalse(t.is_alive())
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assert_errors_sum(fin)

    @staticmethod
    def _script_kill(r):
        try:
            c = r.client(timeout=5)
            try:
                c.pipeline([("SCRIPT", "KILL")])
            finally:
                c.close()
        except (OSError, ConnectionError):
            pass

    def test_noauth_at_runtime(self):
        """The server starts requiring a password and mdcache's connections are
        killed: mdcache has none, so its writes get -NOAUTH; once the password
        is dropped again, every key arrives."""
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "NA", "noauth1", symbols=200, ticks=4000, seed=39)
        wait_keys(c, e1, mdcache=m)

        c.cmd("CONFIG", "SET", "requirepass", "runtime-pw")
        r.password = "runtime-pw"
        self.addCleanup(setattr, r, "password", None)
        c.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        e2 = self.feed(port, "NB", "noauth2", symbols=200, ticks=4000, seed=40)
        s = m.wait_stats(lambda s: s.get("redis_auth", 0) + s.get("handshake_failures", 0) >= 1,
                         30)
        self.assertTrue(m.alive(), m.tail())

        c.cmd("CONFIG", "SET", "requirepass", "")
        r.password = None
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assertGreaterEqual(fin.get("redis_auth", 0), 1,
                                "a data command refused with NOAUTH counts as redis_auth "
                                "(stats when first seen: %s)" % s)
        self.assert_errors_sum(fin)

    def test_other_error_noreplicas(self):
        """An error mdcache has no special reaction for (-NOREPLICAS): counted
        as redis_other; the keys are written again at their next change or
        refresh (refresh after 6 s here), so all converge once it clears."""
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, ini=LONG_LIVENESS_INI + "refresh_fraction = 0.1\n")
        e1 = self.feed(port, "XA", "other1", symbols=200, ticks=4000, seed=41)
        wait_keys(c, e1, mdcache=m)

        c.cmd("CONFIG", "SET", "min-replicas-to-write", "1")
        e2 = self.feed(port, "XB", "other2", symbols=200, ticks=4000, seed=42)
        m.wait_stats(lambda s: s.get("redis_other", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())
        c.cmd("CONFIG", "SET", "min-replicas-to-write", "0")

        e3 = self.feed(port, "XC", "other3", symbols=200, ticks=4000, seed=43)
        expected = dict(e1)
        expected.update(e3)
        wait_keys(c, expected, mdcache=m)  # new ticks
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)  # refused ones, by refresh
        fin = self.assert_clean_exit(m)
        self.assert_errors_sum(fin)

    def test_debug_sleep(self):
        """Redis blocked for 2 s (shorter than reply_timeout) while ticks flow."""
        r = self.start_redis(debug=True)
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "DA", "sleep1", symbols=200, ticks=4000, seed=44)
        wait_keys(c, e1, mdcache=m)

        sleeper = r.client(timeout=60 * SLOW)
        self.addCleanup(sleeper.close)
        t, box = self.background(lambda: sleeper.cmd("DEBUG", "SLEEP", "2"))
        e2 = self.feed(port, "DB", "sleep2", symbols=200, ticks=4000, seed=45)
        t.join(60 * SLOW)
        self.assertEqual(box.get("result"), "OK", box)
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        self.assertTrue(m.alive(), m.tail())
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("redis_errors", 0), 0, fin)

    def test_reply_timeout(self):
        """A stopped (SIGSTOP) server: the unanswered batch is given up after
        reply_timeout, the connection re-made; after SIGCONT every key arrives."""
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, args=["--reply-timeout", "0.5"])
        e1 = self.feed(port, "TA", "tmo1", symbols=200, ticks=4000, seed=46)
        wait_keys(c, e1, mdcache=m)

        self.addCleanup(self._cont, r)
        r.proc.send_signal(signal.SIGSTOP)
        e2 = self.feed(port, "TB", "tmo2", symbols=200, ticks=4000, seed=47)
        m.wait_stats(lambda s: s.get("redis_timeouts", 0) >= 1, 30)
        self.assertTrue(m.alive(), m.tail())
        r.proc.send_signal(signal.SIGCONT)

        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assertGreaterEqual(fin.get("reconnects", 0), 1, fin)

    @staticmethod
    def _cont(r):
        if r.proc and r.proc.poll() is None:
            r.proc.send_signal(signal.SIGCONT)

    def test_client_kill(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r)
        e1 = self.feed(port, "KA", "kill1", symbols=200, ticks=4000, seed=48)
        wait_keys(c, e1, mdcache=m)

        ids = mdcache_client_ids(c)
        self.assertTrue(ids, "no mdcache-w* connection in CLIENT LIST:\n" + c.cmd("CLIENT", "LIST"))
        for i in ids:
            c.cmd("CLIENT", "KILL", "ID", i)
        e2 = self.feed(port, "KB", "kill2", symbols=200, ticks=4000, seed=49)
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        m.wait_stats(lambda s: s.get("reconnects", 0) >= 1, 30)
        self.assertTrue(wait_for(lambda: mdcache_client_ids(c), 30 * SLOW))
        self.assert_clean_exit(m)

    def test_sigterm_while_redis_down(self):
        """Redis is gone for good: SIGTERM waits shutdown_timeout (1 s), then
        exits 1 and says how many keys were not written."""
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, ini=LONG_LIVENESS_INI + "[mdcache]\nshutdown_timeout = 1\n")
        e1 = self.feed(port, "SA", "term1", symbols=200, ticks=4000, seed=50)
        wait_keys(c, e1, mdcache=m)
        c.close()

        r.kill()
        self.feed(port, "SB", "term2", symbols=200, ticks=4000, seed=51)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 8000, 30)
        t0 = time.monotonic()
        rc = m.terminate(timeout=30)
        self.assertEqual(rc, 1, "exit code after SIGTERM with Redis down; log:\n" + m.tail())
        self.assertLess(time.monotonic() - t0, 30 * SLOW)
        found = re.findall(r"shutdown: (\d+) keys were not written to Redis", m.log())
        self.assertEqual(len(found), 1, m.tail())
        self.assertGreater(int(found[0]), 0)
        self.assertLessEqual(int(found[0]), 2 * 400, "more unwritten keys than exist")
