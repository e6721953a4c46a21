"""build/mdcache-watch against real servers: prices pushed by mdcache on its
price_channel, the same through keyspace notifications of the price keys
(standalone, and on a 3-primary cluster where each key's notifications stay
on its owner), the notify-keyspace-events check, and bad options.

Ticks go to mdcache one at a time, and the next is sent only once the watch
printed the previous one, so mdcache cannot coalesce two of them into one
write: every tick is one update and the order of the lines is the order
of the ticks. Nothing here depends on how fast anything is; each wait is
on a condition, with a generous bound."""

import json
import os
import signal
import socket
import subprocess
import threading

from harness import (CONVERGE_TIMEOUT, LONG_LIVENESS_INI, MDCACHE_BIN, MdTestCase, Num,
                     free_port, jl, key_slot, wait_for)

WATCH_BIN = os.environ.get("WATCH_BIN", os.path.join(os.path.dirname(MDCACHE_BIN),
                                                     "mdcache-watch"))


def watch_run(args, timeout=60):
    p = subprocess.run([WATCH_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Watch:
    """mdcache-watch in the background, its stdout lines collected as they
    come (a thread: the pipe must never fill and stall the tool)."""

    def __init__(self, args, tmpdir):
        self.err_path = os.path.join(tmpdir, "watch.err")
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen([WATCH_BIN] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.lines = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def wait_watching(self, test):
        """The tool says 'watching' once it is subscribed and has read the
        keys: from then on no update can be missed."""
        ok = wait_for(lambda: "watching" in self.stderr() or self.proc.poll() is not None,
                      CONVERGE_TIMEOUT)
        test.assertTrue(ok and self.proc.poll() is None,
                        "mdcache-watch not watching (exit %s): %s"
                        % (self.proc.poll(), self.stderr()))

    def wait_exit(self, timeout=CONVERGE_TIMEOUT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._t.join(timeout)
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def plain_updates(lines):
    """[(symbol, value dict or None)] from --plain lines 'TIME SYMBOL JSON'."""
    out = []
    for line in lines:
        _time, sym, val = line.split(" ", 2)
        out.append((sym, json.loads(val)))
    return out


class WatchTest(MdTestCase):
    def start_watch(self, args):
        w = Watch(args, self.tmpdir())
        self.addCleanup(w.cleanup)
        w.wait_watching(self)
        return w

    def jsonl_feed(self, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(s.close)
        return s

    def tick_by_tick(self, w, feed, ticks, parse=plain_updates):
        """Sends each (symbol, price) trade and waits until the watch
        printed it; returns the watch's updates."""
        for sym, price in ticks:
            # mdcache drops a seq it already applied from this source.
            self.seq = getattr(self, "seq", 0) + 1
            feed.sendall(jl(type_="trade", symbol=sym, price=Num(price), size=Num("1"),
                            source="watch-src", seq=self.seq))

            def printed():
                got = parse(list(w.lines))
                return any(s == sym and v and v.get("Last") == float(price) for s, v in got)
            self.assertTrue(wait_for(printed, CONVERGE_TIMEOUT),
                            "tick %s %s not shown; lines so far: %s\nstderr: %s"
                            % (sym, price, w.lines, w.stderr()))
        return parse(list(w.lines))

    def check_in_order(self, got, ticks, base=None):
        """Every tick's price, per symbol, in the order sent; Volume counts
        the trades (size 1 each), so each line is its own tick's write."""
        for sym in {s for s, _ in ticks}:
            want = [float(p) for s, p in ticks if s == sym]
            seen = [v["Last"] for s, v in got if s == sym]
            self.assertEqual(seen, want, "symbol %s: %s" % (sym, got))
            vols = [v["Volume"] for s, v in got if s == sym]
            b = (base or {}).get(sym, 0)
            self.assertEqual(vols, list(range(b + 1, b + len(want) + 1)),
                             "symbol %s: %s" % (sym, got))

    TICKS = [("WA", "100.10"), ("WB", "200.10"), ("WA", "100.20"), ("WB", "200.20"),
             ("WA", "100.30"), ("WB", "200.30")]

    def test_price_channel(self):
        """mdcache publishes (price_channel in its file): the watch, given
        the same file, subscribes to the channels and shows each message."""
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               ini=LONG_LIVENESS_INI + "price_channel = price:{symbol}\n")
        w = self.start_watch(["-c", m.ini_path, "--redis", r.url, "--plain",
                              "--count", str(len(self.TICKS)), "WA", "WB"])
        self.assertIn("via channel price:{symbol}", w.stderr())
        feed = self.jsonl_feed(port)
        self.tick_by_tick(w, feed, self.TICKS)
        self.assertEqual(w.wait_exit(), 0, w.stderr())
        self.check_in_order(plain_updates(w.lines), self.TICKS)
        self.assertEqual(len(w.lines), len(self.TICKS), w.lines)
        # The value shown is the key's, byte for byte.
        c = self.client(r)
        last = {}
        for line in w.lines:
            _time, sym, val = line.split(" ", 2)
            last[sym] = val
        for sym in ("WA", "WB"):
            self.assertEqual(last[sym], c.cmd("GET", "price:%s:latest" % sym))

        # Without --count it runs until interrupted, and SIGINT is a clean end.
        w = self.start_watch(["-c", m.ini_path, "--redis", r.url, "--plain", "WA"])
        self.tick_by_tick(w, feed, [("WA", "100.40")])
        w.proc.send_signal(signal.SIGINT)
        self.assertEqual(w.wait_exit(), 0, w.stderr())
        self.assert_clean_exit(m)

    def test_keyspace_standalone(self):
        """No price_channel: keyspace notifications of each price key, the
        key read on each 'set'. Values already there are shown with
        --initial; an unchanged refresh is not an update."""
        r = self.start_redis(args=["--notify-keyspace-events", "K$"])
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               ini=LONG_LIVENESS_INI)
        feed = self.jsonl_feed(port)
        c = self.client(r)
        # A first value for WA, so the start has something to read.
        feed.sendall(jl(type_="trade", symbol="WA", price=Num("99.00"), size=Num("1"),
                        source="watch-src", seq=100))
        self.assertTrue(wait_for(lambda: c.cmd("GET", "price:WA:latest") is not None,
                                 CONVERGE_TIMEOUT), m.tail())
        initial = c.cmd("GET", "price:WA:latest")
        w = self.start_watch(["--redis", r.url, "--plain", "--initial",
                              "--count", str(len(self.TICKS)), "WA", "WB"])
        self.assertIn("via keyspace notifications", w.stderr())
        self.assertIn("WB: no key price:WB:latest yet", w.stderr())
        # An unchanged value written again (as mdcache's refresh does) is
        # no news.
        c.cmd("SETEX", "price:WA:latest", "60", initial)
        ticks = [(s, p) for s, p in self.TICKS]
        for n, (sym, price) in enumerate(ticks, 1):
            feed.sendall(jl(type_="trade", symbol=sym, price=Num(price), size=Num("1"),
                            source="watch-src", seq=200 + n))

            def printed():
                return any(s == sym and v and v.get("Last") == float(price)
                           for s, v in plain_updates(list(w.lines)[2:]))
            self.assertTrue(wait_for(printed, CONVERGE_TIMEOUT),
                            "tick %s %s not shown; lines: %s\nstderr: %s"
                            % (sym, price, w.lines, w.stderr()))
        self.assertEqual(w.wait_exit(), 0, w.stderr())
        first = plain_updates(w.lines[:2])
        self.assertEqual(first, [("WA", json.loads(initial)), ("WB", None)])
        got = plain_updates(w.lines[2:])
        self.assertEqual(len(got), len(ticks), w.lines)
        self.check_in_order(got, ticks, base={"WA": 1})
        self.assert_clean_exit(m)

    def test_keyspace_needs_notifications(self):
        """A server without K$: exit 2 naming the setting, and the server
        left alone; --enable-notifications adds what is missing."""
        r = self.start_redis()
        c = self.client(r)
        rc, out, err = watch_run(["--redis", r.url, "--plain", "--duration", "30", "WA"])
        self.assertEqual(rc, 2, err)
        self.assertIn("notify-keyspace-events", err)
        self.assertIn("--enable-notifications", err)
        self.assertEqual(c.cmd("CONFIG", "GET", "notify-keyspace-events")[1], "")
        # --keyspace wins over a channel, and the check applies to it too.
        rc, out, err = watch_run(["--redis", r.url, "--keyspace", "--channel", "price:{symbol}",
                                  "--duration", "30", "WA"])
        self.assertEqual(rc, 2, err)
        rc, out, err = watch_run(["--redis", r.url, "--plain", "--enable-notifications",
                                  "--duration", "0.3", "WA"])
        self.assertEqual(rc, 0, err)
        flags = c.cmd("CONFIG", "GET", "notify-keyspace-events")[1]
        self.assertIn("K", flags)
        self.assertTrue("$" in flags or "A" in flags, flags)

    def test_cluster_keyspace(self):
        """3 primaries: keyspace notifications are node-local, so each key
        is watched on the primary that owns its slot. --json lines."""
        cl = self.start_cluster(3, 0, args=["--notify-keyspace-events", "K$"])
        # One symbol per primary.
        by_owner = {}
        for i in range(1000):
            sym = "WC%d" % i
            owner = cl.owner(key_slot("price:%s:latest" % sym))
            by_owner.setdefault(owner.port, sym)
            if len(by_owner) == 3:
                break
        syms = sorted(by_owner.values())
        self.assertEqual(len(syms), 3, by_owner)
        port = free_port()
        m = self.start_mdcache(None, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               redis_url=cl.url(), ini=LONG_LIVENESS_INI)
        ticks = [(s, "%d.5" % (10 * k + j)) for j in range(2) for k, s in enumerate(syms, 1)]

        def parse(lines):
            out = []
            for line in lines:
                d = json.loads(line)
                self.assertEqual(d["key"], "price:%s:latest" % d["symbol"])
                out.append((d["symbol"], d["value"]))
            return out
        w = self.start_watch(["--redis", cl.url(), "--json", "--count", str(len(ticks))] + syms)
        self.assertIn("(cluster)", w.stderr())
        self.tick_by_tick(w, self.jsonl_feed(port), ticks, parse=parse)
        self.assertEqual(w.wait_exit(), 0, w.stderr())
        self.check_in_order(parse(w.lines), ticks)
        self.assert_clean_exit(m)

    def test_bad_options(self):
        r = self.start_redis()
        url = r.url
        cases = [
            ["--redis", url],                               # no symbol
            ["--redis", url, "--bogus", "ES"],
            ["--redis", url, "--count", "0", "ES"],
            ["--redis", url, "--count", "x", "ES"],
            ["--redis", url, "--duration", "-1", "ES"],
            ["--redis", url, "--plain", "--json", "ES"],
            ["--redis", url, "--channel", "nosymbol", "ES"],
            ["--redis", url, "ES", "A B"],                  # not a symbol
            ["--redis", url, "*"],
            ["--redis", url, "X" * 40],
            ["--redis", "http://nope", "ES"],
            ["-c", "/nonexistent/mdcache.ini", "ES"],
        ]
        for args in cases:
            rc, out, err = watch_run(args)
            self.assertEqual(rc, 2, "%s: exit %s, stderr %r" % (args, rc, err))
            self.assertEqual(out, "", args)
            self.assertTrue(err.startswith("mdcache-watch: "), (args, err))
            self.assertEqual(len(err.strip().splitlines()), 1, (args, err))
        # A symbol with no key is unknown to Redis: fatal only when asked.
        rc, out, err = watch_run(["--redis", url, "--require-key", "--channel",
                                  "price:{symbol}", "NOSUCH"])
        self.assertEqual(rc, 2, err)
        self.assertIn("NOSUCH", err)
        # Nothing listening: unreachable is exit 1.
        rc, out, err = watch_run(["--redis", "redis://127.0.0.1:%d/0" % free_port(), "ES"])
        self.assertEqual(rc, 1, err)
        self.assertIn("not reachable", err)
        rc, out, err = watch_run(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("usage: mdcache-watch", out)
