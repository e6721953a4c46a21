"""Redis AUTH and ACL users (issue #4): passwords from the URL and from
REDIS_PASSWORD, refused credentials and missing passwords at start-up, an ACL
user confined to its keys and database, missing permissions at run time, and
credentials that stop working while mdcache runs."""

import os
import time

from harness import (SLOW, LONG_LIVENESS_INI, MdTestCase, free_port, run_mdcache_once,
                     wait_keys)

PASSWORD = "Zq8-pw-s3cr3t"
# What mdcache needs (Redis 7.0): SETEX for latest keys, SET for last_good,
# SELECT and PING for the handshake; CLIENT SETNAME is optional.
ACL_NEEDED = ["~price:*", "+setex", "+set", "+ping", "+select", "+client|setname"]


class AuthTest(MdTestCase):
    def start_fed(self, r, redis_url, args=(), env=None, ini=LONG_LIVENESS_INI):
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini,
                               args=list(args), redis_url=redis_url, env=env)
        return m, port

    def assert_no_secret(self, text, what, secret=PASSWORD):
        self.assertNotIn(secret, text, "the password appears in %s:\n%s" % (what, text))

    def start_fails(self, url, env=None):
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        t0 = time.monotonic()
        rc, out, err = run_mdcache_once(["--redis", url, "--listen", listen, "--cpus", "0"],
                                        timeout=20, env=env)
        self.assertEqual(rc, 2, "exit %s, want 2; stderr:\n%s" % (rc, err))
        self.assertLess(time.monotonic() - t0, 20 * SLOW)
        return out + err

    def test_password_in_url_and_env(self):
        r = self.start_redis(requirepass=PASSWORD)
        c = self.client(r)

        url = "redis://:%s@127.0.0.1:%d/0" % (PASSWORD, r.port)
        report = os.path.join(self.tmpdir(), "report.json")
        m, port = self.start_fed(r, url, args=["--report", report])
        e1 = self.feed(port, "PWU", "url", symbols=200, ticks=4000, seed=21)
        wait_keys(c, e1, mdcache=m)
        self.assert_clean_exit(m)
        self.assert_no_secret(m.log(), "mdcache's stderr (password in URL)")
        with open(report) as f:
            self.assert_no_secret(f.read(), "the report file")

        m, port = self.start_fed(r, "redis://127.0.0.1:%d/0" % r.port,
                                 env={"REDIS_PASSWORD": PASSWORD})
        e2 = self.feed(port, "PWE", "env", symbols=200, ticks=4000, seed=22)
        wait_keys(c, e2, mdcache=m)
        self.assert_clean_exit(m)
        self.assert_no_secret(m.log(), "mdcache's stderr (REDIS_PASSWORD)")

        listen = "tcp://127.0.0.1:%d" % free_port()
        for args, env in ((["--redis", url], None),
                          (["--redis", "redis://127.0.0.1:%d/0" % r.port],
                           {"REDIS_PASSWORD": PASSWORD})):
            rc, out, err = run_mdcache_once(args + ["--listen", listen, "--check-config"],
                                            env=env)
            self.assertEqual(rc, 0, err)
            self.assert_no_secret(out + err, "--check-config output")
            self.assertIn("***", out)

    def test_wrong_password_exits_2(self):
        r = self.start_redis(requirepass=PASSWORD)
        wrong = "not-the-pw-XY7"
        out = self.start_fails("redis://:%s@127.0.0.1:%d/0" % (wrong, r.port))
        lines = [l for l in out.splitlines() if "WRONGPASS" in l]
        self.assertEqual(len(lines), 1, "want one WRONGPASS line:\n%s" % out)
        self.assertIn("refused the credentials", lines[0])
        self.assertIn("127.0.0.1:%d" % r.port, lines[0])
        self.assert_no_secret(out, "mdcache's output", wrong)

        # An unknown ACL user is refused the same way.
        out = self.start_fails("redis://nosuchuser:%s@127.0.0.1:%d/0" % (wrong, r.port))
        lines = [l for l in out.splitlines() if "WRONGPASS" in l]
        self.assertEqual(len(lines), 1, "want one WRONGPASS line:\n%s" % out)
        self.assertIn("refused the credentials", lines[0])
        self.assert_no_secret(out, "mdcache's output", wrong)

    def test_no_password_but_required_exits_2(self):
        r = self.start_redis(requirepass=PASSWORD)
        out = self.start_fails("redis://127.0.0.1:%d/0" % r.port, env={"REDIS_PASSWORD": None})
        self.assertIn("NOAUTH", out)

    def test_acl_user_and_database(self):
        """An ACL user with only what mdcache needs, in database 3."""
        r = self.start_redis()
        c = self.client(r)
        c.cmd("ACL", "SETUSER", "mdc", "on", ">" + PASSWORD, *ACL_NEEDED)
        m, port = self.start_fed(r, "redis://mdc:%s@127.0.0.1:%d/3" % (PASSWORD, r.port))
        expected = self.feed(port, "ACL", "acl", symbols=200, ticks=4000, seed=23)
        c3 = self.client(r, db=3)
        wait_keys(c3, expected, mdcache=m)
        self.assertEqual(c.cmd("DBSIZE"), 0, "keys landed in db 0")
        clients = [l for l in c.cmd("CLIENT", "LIST").splitlines() if "name=mdcache-w" in l]
        self.assertTrue(clients, "no mdcache-w* connection in CLIENT LIST")
        for l in clients:
            self.assertIn(" user=mdc ", " " + l + " ", l)
            self.assertIn(" db=3 ", " " + l + " ", l)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("redis_noperm", 0), 0, fin)
        self.assert_no_secret(m.log(), "mdcache's stderr")

    def test_missing_permission_then_granted(self):
        """A user that may not SETEX: start-up passes (AUTH/SELECT/PING), writes
        are refused (NOPERM) and kept; once granted, every key arrives. This user
        may not CLIENT SETNAME either, which mdcache must ignore."""
        r = self.start_redis()
        c = self.client(r)
        c.cmd("ACL", "SETUSER", "mdc", "on", ">" + PASSWORD, "~price:*", "+ping", "+select")
        m, port = self.start_fed(r, "redis://mdc:%s@127.0.0.1:%d/0" % (PASSWORD, r.port))
        expected = self.feed(port, "NP", "noperm", symbols=200, ticks=4000, seed=24)
        s = m.wait_stats(lambda s: s.get("redis_noperm", 0) > 0, 30)
        self.assertEqual(s.get("keys_written"), 0, s)
        self.assertEqual(c.cmd("DBSIZE"), 0)
        self.assertTrue(m.alive(), m.tail())
        # The workers' write errors; the expiry watcher's own refusals (this
        # user may not SUBSCRIBE or CONFIG either) are one warning each.
        noperm = [l for l in m.log().splitlines() if "NOPERM" in l and "worker" in l]
        self.assertTrue(noperm and all("price" in l for l in noperm),
                        "NOPERM must be logged with the key class: %s" % noperm[:3])

        watcher = [l for l in m.log().splitlines() if "expiry watcher" in l and "NOPERM" in l]
        self.assertLessEqual(len(watcher), 2, "the watcher's refusals are said once each: %s"
                             % watcher)

        c.cmd("ACL", "SETUSER", "mdc", "+setex", "+set")
        wait_keys(c, expected, mdcache=m)
        self.assert_clean_exit(m)

    def test_fallback_key_forbidden_prices_go_on(self):
        """A user allowed SETEX but not SET: the fallback copy (SET, no TTL by
        default) is refused with NOPERM, and that must not hold up the price
        keys: every price:*:latest arrives, and no fallback key exists."""
        r = self.start_redis()
        c = self.client(r)
        c.cmd("ACL", "SETUSER", "mdc", "on", ">" + PASSWORD, "~price:*", "+setex", "+ping",
              "+select")
        m, port = self.start_fed(r, "redis://mdc:%s@127.0.0.1:%d/0" % (PASSWORD, r.port))
        expected = self.feed(port, "FB", "fallback", symbols=200, ticks=4000, seed=26)
        wait_keys(c, expected, mdcache=m)
        s = m.wait_stats(lambda s: s.get("redis_noperm", 0) > 0, 30)
        self.assertEqual(c.scan_all("price:*:last_good"), [])
        log = m.log().splitlines()
        self.assertTrue(any("price fallback" in l and "NOPERM" in l for l in log), m.tail())
        held = [l for l in log if "writing again in" in l]
        self.assertFalse(held, "a refused fallback key must not hold the writes: %s" % held[:2])
        fin = self.assert_clean_exit(m)
        self.assertGreaterEqual(fin["keys_written"], len(expected), fin)
        self.assertEqual(fin.get("redis_noperm"), fin.get("redis_errors"), fin)

    def test_credentials_lost_at_runtime(self):
        """The user's password changes and its connections are killed: the
        re-handshake fails (counted), mdcache lives on and keeps ingesting; once
        the password is back, every key arrives."""
        r = self.start_redis()
        c = self.client(r)
        c.cmd("ACL", "SETUSER", "mdc", "on", ">" + PASSWORD, *ACL_NEEDED)
        m, port = self.start_fed(r, "redis://mdc:%s@127.0.0.1:%d/0" % (PASSWORD, r.port))
        e1 = self.feed(port, "LA", "lost1", symbols=200, ticks=4000, seed=25)
        wait_keys(c, e1, mdcache=m)

        c.cmd("ACL", "SETUSER", "mdc", "resetpass", ">other-pw")
        self.assertGreaterEqual(c.cmd("CLIENT", "KILL", "USER", "mdc"), 1)
        m.wait_stats(lambda s: s.get("handshake_failures", 0) >= 1, 30)
        e2 = self.feed(port, "LB", "lost2", symbols=200, ticks=4000, seed=26)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 8000, 30)
        self.assertTrue(m.alive(), m.tail())

        c.cmd("ACL", "SETUSER", "mdc", "resetpass", ">" + PASSWORD)
        expected = dict(e1)
        expected.update(e2)
        wait_keys(c, expected, mdcache=m)
        self.assert_clean_exit(m)
        self.assert_no_secret(m.log(), "mdcache's stderr")
        self.assertNotIn("other-pw", m.log())
