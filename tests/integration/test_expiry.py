"""Stale detection through keyspace notifications (issue #5, item 3): mdcache
turns on expired-key events (CONFIG SET notify-keyspace-events), counts the
expiry of its own keys per class when a source goes quiet, publishes a JSON
event per key when asked to, ignores keys that are not its own, and on a
server where CONFIG is forbidden says so once and goes on."""

import json
import socket

from harness import CONVERGE_TIMEOUT, MdTestCase, Resp, free_port, wait_for, wait_keys

# One-second keys, a source dead after one quiet second: keys of a source
# that stops expire within about two seconds of its last tick.
SHORT_INI = "[keys]\nprice_ttl = 1\nsource_timeout = 1\nrefresh_fraction = 0.5\n"


class ExpiryTest(MdTestCase):
    def start_fed(self, r, ini, **kw):
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini, **kw)
        return m, port

    def test_quiet_source_expires_counted_and_published(self):
        r = self.start_redis()
        c = self.client(r)
        self.assertEqual(c.cmd("CONFIG", "GET", "notify-keyspace-events")[1], "")
        sub = r.client(timeout=CONVERGE_TIMEOUT)
        self.addCleanup(sub.close)
        sub.sock.sendall(Resp.encode(["SUBSCRIBE", "mdcache:events"]))
        self.assertEqual(sub._reply()[0], "subscribe")
        m, port = self.start_fed(r, SHORT_INI + "publish_events = yes\n")
        # The watcher turned the events on (E and x, whatever order).
        self.assertTrue(wait_for(lambda: set("Ex") <= set(
            c.cmd("CONFIG", "GET", "notify-keyspace-events")[1]), CONVERGE_TIMEOUT))
        m.wait_stats(lambda s: True)
        self.assertIn("expiry watcher: subscribed", m.log())

        # Someone else's volatile key must not be counted.
        c.cmd("SET", "other:app:key", "1", "PX", "50")
        expected = self.feed(port, "EXP", "quiet", symbols=50, ticks=500, seed=51)
        self.assertEqual(len(expected), 50)
        # The source says nothing more: every key expires, and each is seen.
        # (At least: on a machine slow enough to miss a refresh while the
        # source still counted as alive, a key expires, is re-asserted and
        # expires again, and each expiry is counted.)
        m.wait_stats(lambda s: s.get("expired_price", 0) >= 50, 60)
        self.assertEqual(c.scan_all("price:EXP*:latest"), [])

        events = []
        sub.sock.settimeout(CONVERGE_TIMEOUT)
        while set(e["key"] for e in events) != set(expected):
            msg = sub._reply()
            self.assertEqual(msg[0], "message", msg)
            events.append(json.loads(msg[2]))
            self.assertIn(events[-1]["key"], expected, "an event for a key mdcache never wrote")
        for e in events:
            self.assertEqual(e["event"], "expired")
            self.assertEqual(e["class"], "price")
            self.assertEqual("price:%s:latest" % e["symbol"], e["key"])
            self.assertIsInstance(e["ts"], int)
        fin = self.assert_clean_exit(m)
        self.assertGreaterEqual(fin["expired_price"], 50, fin)
        self.assertEqual(fin["events_published"], fin["expired_price"], fin)

    def test_config_forbidden_warns_once(self):
        """Managed Redis often renames CONFIG away: mdcache cannot check or set
        notify-keyspace-events, says so once, and writes keys as always."""
        r = self.start_redis(args=["--rename-command", "CONFIG", ""])
        m, port = self.start_fed(r, "[keys]\nsource_timeout = 120\nprice_ttl = 60\n")
        expected = self.feed(port, "NC", "noconfig", symbols=100, ticks=2000, seed=52)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assertTrue(wait_for(lambda: "expiry watcher: subscribed" in m.log(), CONVERGE_TIMEOUT),
                        m.tail())
        warn = [l for l in m.log().splitlines() if "CONFIG GET" in l]
        self.assertEqual(len(warn), 1, "want one warning about CONFIG: %s" % warn)
        self.assertIn("notify-keyspace-events", warn[0])
        self.assert_clean_exit(m)

    def test_watch_off(self):
        r = self.start_redis()
        m, port = self.start_fed(r, "[keys]\nwatch_expired = no\nsource_timeout = 120\n"
                                    "price_ttl = 60\n")
        expected = self.feed(port, "WO", "off", symbols=20, ticks=200, seed=53)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assertEqual(self.client(r).cmd("CONFIG", "GET", "notify-keyspace-events")[1], "",
                         "watch_expired = no must leave the server's setting alone")
        self.assertNotIn("expiry watcher", m.log())
        self.assert_clean_exit(m)
