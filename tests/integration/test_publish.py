"""Push for readers (issue #5, item 4): with [keys] price_channel set, every
changed price is PUBLISHed on price:{symbol} right after its SETEX, so a
reader can subscribe instead of polling; unchanged keys that are only
re-asserted (refreshes) are not pushed; with the key unset nothing is."""

import socket

from harness import CONVERGE_TIMEOUT, SLOW, MdTestCase, Resp, free_port, wait_keys


class Subscriber:
    """A PSUBSCRIBE connection that collects messages as {channel: [data, ...]}."""

    def __init__(self, redis, pattern):
        self.c = redis.client(timeout=CONVERGE_TIMEOUT)
        self.c.sock.sendall(Resp.encode(["PSUBSCRIBE", pattern]))
        ack = self.c._reply()
        assert ack[0] == "psubscribe", ack
        self.got = {}
        self.count = 0

    def _take(self, reply):
        if isinstance(reply, list) and reply and reply[0] == "pmessage":
            self.got.setdefault(reply[2], []).append(reply[3])
            self.count += 1
            return True
        return False

    def until(self, pred, timeout):
        """Reads messages until pred(self) holds; False if timeout passes first."""
        self.c.sock.settimeout(timeout)
        try:
            while not pred(self):
                self._take(self.c._reply())
        except socket.timeout:
            return pred(self)
        return True

    def drain(self):
        """Every message Redis queued for us before now: a PING in subscribed
        mode is answered after them, in order."""
        self.c.sock.settimeout(CONVERGE_TIMEOUT)
        self.c.sock.sendall(Resp.encode(["PING"]))
        while True:
            r = self.c._reply()
            if not self._take(r):
                assert isinstance(r, list) and r[0] == "pong", r
                return

    def close(self):
        self.c.close()


def channel_of(key):
    return key[:-len(":latest")]  # price:SYM:latest -> price:SYM


class PublishTest(MdTestCase):
    def start_fed(self, r, ini):
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini)
        return m, port

    def test_changed_prices_pushed_refreshes_not(self):
        r = self.start_redis()
        sub = Subscriber(r, "price:*")
        self.addCleanup(sub.close)
        # price_ttl 2 s: live keys are re-asserted every second, unchanged.
        m, port = self.start_fed(r, "[keys]\nsource_timeout = 120\nprice_ttl = 2\n"
                                    "price_channel = price:{symbol}\n")
        expected = self.feed(port, "PUB", "pub", symbols=300, ticks=6000, seed=41)
        c = self.client(r)
        wait_keys(c, expected, mdcache=m)
        want = {channel_of(k): v for k, v in expected.items()}

        def last_is_final(s):
            return all(s.got.get(ch, [None])[-1] == v for ch, v in want.items())
        self.assertTrue(sub.until(last_is_final, CONVERGE_TIMEOUT),
                        "the last message per channel must be the key's final value; "
                        "%d channels of %d seen" % (len(sub.got), len(want)))
        self.assertEqual(set(sub.got), set(want), "a message on a channel nobody wrote")
        self.assertLessEqual(sub.count, 6000, "more pushes than ticks")

        # Refreshes: wait until every key has been re-written at least once
        # more after the feed; none of those writes may push.
        sub.drain()
        before = sub.count
        written = m.wait_stats(lambda s: True)["keys_written"]
        m.wait_stats(lambda s: s.get("keys_written", 0) >= written + 2 * len(expected), 30)
        sub.drain()
        self.assertEqual(sub.count, before, "re-asserting an unchanged key pushed it")
        self.assert_clean_exit(m)

    def test_off_by_default(self):
        r = self.start_redis()
        sub = Subscriber(r, "*")
        self.addCleanup(sub.close)
        m, port = self.start_fed(r, "[keys]\nsource_timeout = 120\nprice_ttl = 60\n")
        expected = self.feed(port, "NOP", "nopub", symbols=100, ticks=2000, seed=42)
        wait_keys(self.client(r), expected, mdcache=m)
        sub.drain()
        self.assertEqual(sub.count, 0, "pushed without price_channel: %s" % list(sub.got)[:3])
        self.assert_clean_exit(m)
