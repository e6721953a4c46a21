"""build/mdcache-replay against a real mdcache and redis-server.

Captures are recorded by mdfeed itself (its file:// target writes exactly
the bytes it would have sent), with --expect giving what Redis must hold
afterwards; the replay must bring Redis to exactly those values, over TCP,
UDP and a Unix socket, in both formats. Pacing is checked for order and
completeness only, never for timing: a loaded machine may run late, but it
must not reorder or lose anything. Bad options and damaged captures must
stop with exit 2 and say what and where."""

import os
import struct
import subprocess

from harness import (CONVERGE_TIMEOUT, MDCACHE_BIN, SLOW, MdTestCase, bin1_trade, free_port, jl, Num,
                     parse_counters, price_json, run_mdfeed, wait_for)
from test_mdfeed_accounts import LONG_INI, same

# Next to the daemon under test (build/ or build-san/, as tests/run.sh sets it).
REPLAY_BIN = os.environ.get("MDCACHE_REPLAY_BIN",
                            os.path.join(os.path.dirname(MDCACHE_BIN), "mdcache-replay"))


def run_replay(args, timeout=120):
    """(exit code, stdout, stderr); stderr's '\r' kept (text mode would make them '\n')."""
    p = subprocess.run([REPLAY_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def bin1_frames(data):
    """Offsets of the frames of a clean bin1 capture, by their len fields."""
    out, off = [], 0
    while off < len(data):
        out.append(off)
        off += struct.unpack_from("<H", data, off + 2)[0]
    return out


class ReplayTest(MdTestCase):
    def record(self, fmt, prefix, seed, extra=()):
        """An mdfeed capture in a file: (path, mdfeed summary, expected keys)."""
        d = self.tmpdir()
        path = os.path.join(d, "capture.%s" % fmt)
        summary, want = run_mdfeed(["--target", "file://" + path, "--format", fmt,
                                    "--symbols", "200", "--symbol-prefix", prefix,
                                    "--source", "rec-" + prefix, "--seed", str(seed)]
                                   + list(extra), os.path.join(d, "expect"))
        return path, summary, want

    def listener(self, kind, fmt):
        """mdcache listening on one fresh loopback endpoint: (mdcache, client, target)."""
        r = self.start_redis()
        c = self.client(r)
        if kind == "unix":
            sock = os.path.join(self.tmpdir(), "feed.sock")
            spec, target = "unix://%s?format=%s" % (sock, fmt), "unix://" + sock
        else:
            port = free_port(kind)
            spec = "%s://127.0.0.1:%d?format=%s" % (kind, port, fmt)
            target = "%s://127.0.0.1:%d" % (kind, port)
        m = self.start_mdcache(r, [spec], ini=LONG_INI)
        return m, c, target

    def replay(self, args):
        rc, out, err = run_replay(args)
        self.assertEqual(rc, 0, "mdcache-replay %s: exit %d\n%s%s" % (args, rc, out, err))
        lines = [l for l in out.splitlines() if l.startswith("mdcache-replay:")]
        self.assertEqual(len(lines), 1, "want one summary line: %r" % out)
        for k in ("sent=", "bytes=", "skipped=", "elapsed=", "rate="):
            self.assertIn(k, lines[0])
        return parse_counters(lines[0]), err

    def converge(self, c, m, want):
        keys = sorted(want)

        def bad():
            got = c.get_many(keys)
            return [k for k in keys if not same(k, got[k], want[k])], got

        if wait_for(lambda: not bad()[0], CONVERGE_TIMEOUT, interval=0.1):
            return
        b, got = bad()
        self.fail("%d of %d keys differ; first: %s\nmdcache stats: %s\nlog tail:\n%s"
                  % (len(b), len(keys),
                     ["%s: want %s got %s" % (k, want[k], got[k]) for k in b[:5]],
                     m.stats(), m.tail()))

    def check_clean(self, m, valid):
        """Everything replayed was received, understood and applied once."""
        fin = self.assert_clean_exit(m)
        for k in ("decode_errors", "duplicates", "kernel_drops"):
            self.assertEqual(fin.get(k), 0, "final: %s" % fin)
        self.assertEqual(fin["ticks_in"], valid, "final: %s" % fin)
        return fin

    def round_trip(self, kind, fmt, prefix, seed, rec_extra=(), replay_extra=()):
        path, summary, want = self.record(fmt, prefix, seed,
                                          ["--ticks", "4000", "--accounts", "10",
                                           "--heartbeat-every", "500"] + list(rec_extra))
        m, c, target = self.listener(kind, fmt)
        got, _ = self.replay(["--target", target, path] + list(replay_extra))
        self.assertEqual(got["sent"], summary["valid"], got)
        self.assertEqual(got["bytes"], os.path.getsize(path), got)
        self.assertEqual(got["skipped"], 0, got)
        self.converge(c, m, want)
        self.check_clean(m, summary["valid"])

    # ---- every key as mdfeed's oracle says ----

    def test_tcp_bin1(self):
        self.round_trip("tcp", "bin1", "RTB", 21)

    def test_udp_jsonl_batched(self):
        # Several lines per datagram, paced so that no socket buffer
        # overflows (kernel_drops must stay 0).
        self.round_trip("udp", "jsonl", "RUJ", 22, ["--string-numbers", "--decimal-sizes"],
                        ["--rate", "20000", "--per-packet", "8"])

    def test_udp_bin1_large_datagrams(self):
        self.round_trip("udp", "bin1", "RUB", 23, (),
                        ["--rate", "20000", "--per-packet", "64", "--datagram-max", "8192"])

    def test_unix_jsonl(self):
        self.round_trip("unix", "jsonl", "RXJ", 24, (), ["--flat-out", "--format", "jsonl"])

    # ---- pacing: order and completeness, never timing ----

    def test_speed_keeps_order(self):
        # Recorded at 2000 ticks/s (so the ts really spread over ~0.5 s),
        # replayed at 3x: every tick arrives, none behind a later one (a
        # reordered tick would be refused by its seq and show up as a
        # duplicate and a wrong value).
        path, summary, want = self.record("bin1", "SPD", 31, ["--ticks", "1000", "--rate", "2000"])
        m, c, target = self.listener("tcp", "bin1")
        got, _ = self.replay(["--target", target, "--speed", "3", path])
        self.assertEqual(got["sent"], 1000, got)
        self.converge(c, m, want)
        self.check_clean(m, summary["valid"])

    def test_speed_loop_without_seq(self):
        # No seq: nothing but arrival order decides. Each loop must send
        # every trade again, in order, so Volume counts them all and Last
        # is the last one of the file.
        d = self.tmpdir()
        path = os.path.join(d, "trades.jsonl")
        t0, prices, lines = 1763740000000000000, [], []
        for i in range(120):
            p = "%d.%02d" % (100 + (i * 37) % 50, i % 100)
            prices.append(p)
            lines.append(jl(type_="trade", symbol="LOOPX", price=Num(p), size=Num("2"),
                            ts=t0 + i * 1000000))
        lines.insert(5, b"\n")  # a blank line: skipped silently, not an error
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        m, c, target = self.listener("tcp", "jsonl")
        got, _ = self.replay(["--target", target, "--speed", "5", "--loop", "3", path])
        self.assertEqual(got["sent"], 360, got)
        self.assertEqual(got["skipped"], 0, got)
        hi = max(prices, key=float)
        lo = min(prices, key=float)
        want = {"price:LOOPX:latest": price_json(last=prices[-1], volume=720, high=hi, low=lo,
                                                 ts_ms=(t0 + 119 * 1000000) // 1000000)}
        self.converge(c, m, want)
        self.check_clean(m, 360)

    def test_rate_bin1_without_ts(self):
        # Frames without ts: --rate paces them; without it they go flat out.
        d = self.tmpdir()
        path = os.path.join(d, "nots.bin1")
        with open(path, "wb") as f:
            for i in range(50):
                f.write(bin1_trade("NOTS", "10.%02d" % i, 1))
        m, c, target = self.listener("udp", "bin1")
        got, _ = self.replay(["--target", target, "--rate", "500", path])
        self.assertEqual(got["sent"], 50, got)
        got, _ = self.replay(["--target", target, path])
        self.assertEqual(got["sent"], 50, got)
        self.converge(c, m, {"price:NOTS:latest": price_json(last="10.49", volume=100,
                                                             high="10.49", low="10.00")})
        self.check_clean(m, 100)

    # ---- damaged captures ----

    def test_skip_bad_bin1(self):
        path, summary, want = self.record("bin1", "SKB", 41, ["--ticks", "2000"])
        with open(path, "rb") as f:
            data = f.read()
        offs = bin1_frames(data)
        cut = offs[len(offs) // 2]
        junk = b"\x00junk\x01\x02" * 5
        bad = os.path.join(self.tmpdir(), "bad.bin1")
        with open(bad, "wb") as f:
            f.write(data[:cut] + junk + data[cut:])
        # Without --skip-bad: nothing sent, the offset named.
        rc, out, err = run_replay(["--target", "tcp://127.0.0.1:1", bad])
        self.assertEqual(rc, 2, err)
        self.assertIn("byte offset %d" % cut, err)
        self.assertIn("--skip-bad", err)
        self.assertEqual(out, "")
        m, c, target = self.listener("tcp", "bin1")
        got, _ = self.replay(["--target", target, "--skip-bad", bad])
        self.assertEqual(got["skipped"], 1, got)
        self.assertEqual(got["sent"], summary["valid"], got)
        self.assertEqual(got["bytes"], len(data), got)
        self.converge(c, m, want)
        self.check_clean(m, summary["valid"])

    def test_skip_bad_jsonl(self):
        d = self.tmpdir()
        path = os.path.join(d, "bad.jsonl")
        good = [jl(type_="trade", symbol="SKJ", price=Num("1.%02d" % i), size=Num("1"),
                   ts=1763740000000000000 + i) for i in range(10)]
        lines = good[:4] + [b'{"type":"trade","symbol":"SKJ","pri\n'] + good[4:] \
            + [b"x" * 5000 + b"\n"]
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        rc, out, err = run_replay(["--target", "tcp://127.0.0.1:1", path])
        self.assertEqual(rc, 2, err)
        self.assertIn("bad.jsonl:5:", err)
        m, c, target = self.listener("tcp", "jsonl")
        got, _ = self.replay(["--target", target, "--skip-bad", path])
        self.assertEqual((got["sent"], got["skipped"]), (10, 2), got)
        self.converge(c, m, {"price:SKJ:latest": price_json(
            last="1.09", volume=10, high="1.09", low="1.00", ts_ms=1763740000000)})
        self.check_clean(m, 10)

    # ---- errors: exit 2, clear words ----

    def test_bad_options_and_files(self):
        d = self.tmpdir()
        ok = os.path.join(d, "ok.jsonl")
        with open(ok, "wb") as f:
            f.write(jl(type_="trade", symbol="E", price=Num("1.00"), size=Num("1")))
        weird = os.path.join(d, "weird.cap")
        with open(weird, "wb") as f:
            f.write(b"hello, world\n")
        trunc = os.path.join(d, "trunc.bin1")
        with open(trunc, "wb") as f:
            f.write(bin1_trade("T", "1.00", 1) + bin1_trade("T", "1.00", 1)[:30])
        t = "tcp://127.0.0.1:1"
        cases = [
            ([ok], "--target is required"),
            (["--target", t], "no capture FILE"),
            (["--target", t, ok, ok], "one capture FILE"),
            (["--target", "tcp://192.0.2.1:9", ok], "non-loopback"),
            (["--target", "ftp://127.0.0.1:9", ok], "bad target"),
            (["--target", "file://" + os.path.join(d, "x"), ok], "not a listener"),
            (["--target", t, "--speed", "0", ok], "--speed"),
            (["--target", t, "--speed", "fast", ok], "--speed"),
            (["--target", t, "--rate", "-1", ok], "--rate"),
            (["--target", t, "--speed", "2", "--flat-out", ok], "exclude each other"),
            (["--target", t, "--loop", "0", ok], "--loop"),
            (["--target", t, "--max-time", "0", ok], "--max-time"),
            (["--target", t, "--per-packet", "0", ok], "--per-packet"),
            (["--target", t, "--datagram-max", "70000", ok], "--datagram-max"),
            (["--target", t, "--format", "xml", ok], "bad --format"),
            (["--target", t, "--frobnicate", ok], "unknown option '--frobnicate'"),
            (["--target", t, ok, "--loop"], "needs a value"),
            (["--target", t, os.path.join(d, "missing")], "cannot open"),
            (["--target", t, d], "not a regular file"),
            (["--target", t, weird], "cannot tell the format"),
            (["--target", t, "--format", "bin1", ok], "bad bin1 frame at byte offset 0"),
            (["--target", t, trunc], "byte offset %d: file ends inside a frame"
             % len(bin1_trade("T", "1.00", 1))),
        ]
        for args, words in cases:
            rc, out, err = run_replay(args, timeout=20)
            self.assertEqual(rc, 2, "%s: exit %d, stderr %r" % (args, rc, err))
            self.assertIn(words, err, args)
            self.assertTrue(err.startswith("mdcache-replay: "), err)
            self.assertEqual(out, "", args)
        rc, out, err = run_replay(["--help"], timeout=20)
        self.assertEqual(rc, 0)
        for opt in ("--target", "--format", "--speed", "--rate", "--flat-out", "--loop",
                    "--max-time", "--per-packet", "--datagram-max", "--skip-bad", "--progress"):
            self.assertIn(opt, out)

    def test_max_time_and_progress(self):
        # 10 messages 1 s apart, bounded to a fraction of a second: it stops,
        # says so, and still prints its summary; exit 0 (the bound was asked).
        d = self.tmpdir()
        path = os.path.join(d, "slow.jsonl")
        with open(path, "wb") as f:
            for i in range(10):
                f.write(jl(type_="trade", symbol="SLOW", price=Num("1.00"), size=Num("1"),
                           ts=1763740000000000000 + i * 1000000000))
        m, c, target = self.listener("tcp", "jsonl")
        got, err = self.replay(["--target", target, "--max-time", "0.5", "--progress", path])
        self.assertGreaterEqual(got["sent"], 1, got)
        self.assertLess(got["sent"], 10, got)
        self.assertIn("--max-time", err)
        self.assertIn("\rmdcache-replay: sent ", err)
        self.assertIn("% of file", err)
        self.assertTrue(wait_for(lambda: c.get_many(["price:SLOW:latest"])["price:SLOW:latest"],
                                 CONVERGE_TIMEOUT), "what was sent never reached Redis")
        m.terminate()


if __name__ == "__main__":
    import unittest
    unittest.main()
