"""build/mdcache-top against a real mdcache's metrics endpoint: rates per
worker while mdfeed streams at a bounded rate, --once --json totals equal to
mdcache's final stats line once the feed stopped, and the exit codes of an
unreachable endpoint, a port that does not speak Prometheus, and bad
options. No rate's magnitude is asserted beyond > 0; every wait is on a
condition, with a generous bound."""

import json
import os
import socket
import subprocess
import threading

from harness import (CONVERGE_TIMEOUT, LONG_LIVENESS_INI, MDCACHE_BIN, SLOW, MdfeedRun,
                     MdTestCase, free_port, wait_for)

TOP_BIN = os.environ.get("TOP_BIN", os.path.join(os.path.dirname(MDCACHE_BIN), "mdcache-top"))


def top_run(args, timeout=60):
    p = subprocess.run([TOP_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


def plain_blocks(out):
    """[{row name: [column values]}] from --plain output: one dict per block
    (blocks are separated by a blank line; rows start with a worker number or
    'total')."""
    blocks = []
    for text in out.strip("\n").split("\n\n"):
        rows = {}
        for line in text.splitlines():
            cols = line.split()
            if cols and (cols[0].isdigit() or cols[0] == "total"):
                rows[cols[0]] = cols[1:]
        blocks.append(rows)
    return blocks


class TopTest(MdTestCase):
    def start_stack(self):
        r = self.start_redis()
        feed, mport = free_port(), free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % feed],
                               ini=LONG_LIVENESS_INI,
                               args=["--metrics", "127.0.0.1:%d" % mport])
        return r, m, feed, mport

    def test_rates_then_totals(self):
        r, m, feed, mport = self.start_stack()
        addr = "127.0.0.1:%d" % mport
        rate, seconds = 2000, 60
        run = MdfeedRun(["--target", "tcp://127.0.0.1:%d" % feed, "--format", "jsonl",
                         "--symbols", "200", "--ticks", str(rate * seconds), "--rate", str(rate),
                         "--duration", str(seconds * SLOW), "--symbol-prefix", "TOP",
                         "--source", "top-src", "--seed", "3"],
                        os.path.join(self.tmpdir(), "top.expect"))
        self.addCleanup(run.kill)
        # The stream is flowing before the first scrape.
        m.wait_stats(lambda s: s.get("ticks_in", 0) > 0)

        rc, out, err = top_run(["--metrics", addr, "--plain", "--interval", "0.5",
                                "--count", "3"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(run.running(), "the feed ended before the view did; raise its --ticks")
        blocks = plain_blocks(out)
        self.assertEqual(len(blocks), 3, out)
        for b in blocks:
            self.assertEqual(sorted(b), ["0", "1", "total"], out)
        self.assertIn("ticks/s", out)
        self.assertTrue(any(float(b["total"][0]) > 0 for b in blocks),
                        "no block with ticks/s > 0:\n" + out)

        # --json while it flows: one object per interval, the same rows.
        rc, out, err = top_run(["--metrics", addr, "--json", "--interval", "0.5",
                                "--count", "2"])
        self.assertEqual(rc, 0, err)
        objs = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(objs), 2, out)
        for o in objs:
            self.assertEqual(o["status"], "ok")
            self.assertEqual([w["worker"] for w in o["workers"]], [0, 1])
            self.assertGreaterEqual(o["total"]["rates"]["ticks_in"], 0)
        self.assertTrue(any(o["total"]["rates"]["ticks_in"] > 0 for o in objs), out)

        summary, _ = run.stop()
        sent = summary["sent"]

        def settled():
            rc, out, err = top_run(["--metrics", addr, "--once", "--json"])
            self.assertEqual(rc, 0, err)
            o = json.loads(out)
            t = o["total"]
            done = (t["counters"]["ticks_in"] == sent and t["counters"]["applied"] == sent
                    and t["gauges"]["dirty"] == 0 and t["gauges"]["inflight"] == 0)
            return o if done else None
        o = wait_for(settled, CONVERGE_TIMEOUT * SLOW)
        self.assertIsNotNone(o, "metrics never settled at %d ticks; log:\n%s" % (sent, m.tail()))
        self.assertNotIn("rates", o["total"], "--once shows totals, not rates")
        self.assertEqual(len(o["workers"]), 2)
        c = o["total"]["counters"]
        self.assertEqual(sum(w["counters"]["ticks_in"] for w in o["workers"]), c["ticks_in"])
        self.assertEqual(o["total"]["gauges"]["keys"], 200)

        fin = self.assert_clean_exit(m)
        self.assertEqual(c["ticks_in"], fin["ticks_in"])
        self.assertEqual(c["applied"], fin["applied"])
        self.assertEqual(c["keys_written_price"], fin["keys_written"])
        self.assertEqual(c["keys_written_account"], fin["account_writes"])
        self.assertEqual(c["batches"], fin["batches"])
        self.assertEqual(c["redis_sent_bytes"], fin["bytes_out"])
        self.assertEqual(c["decode_errors"], fin["decode_errors"])
        self.assertEqual(c["redis_errors"], fin["redis_errors"])
        self.assertEqual(c["reconnects"], fin["reconnects"])
        self.assertEqual(c["drops"], sum(fin[k] for k in ("drops", "kernel_drops", "truncated",
                                                          "duplicates", "refused", "overflow")))
        self.assertIsNotNone(o["total"]["tick_to_ack_p50_s"])
        self.assertLessEqual(o["total"]["tick_to_ack_p50_s"], o["total"]["tick_to_ack_p99_s"])

    def test_idle_interval_has_no_latency(self):
        """No tick between two scrapes: rates 0 and the quantiles n/a."""
        r, m, feed, mport = self.start_stack()
        rc, out, err = top_run(["--metrics", "127.0.0.1:%d" % mport, "--plain",
                                "--interval", "0.2", "--count", "1"])
        self.assertEqual(rc, 0, err)
        rows = plain_blocks(out)[0]
        self.assertEqual(float(rows["total"][0]), 0.0, out)
        self.assertEqual(rows["total"][-2:], ["n/a", "n/a"], out)

    def test_unreachable(self):
        port = free_port()  # nothing listens there
        for args in (["--once"], ["--plain", "--count", "1"], ["--json", "--count", "1"]):
            rc, out, err = top_run(["--metrics", "127.0.0.1:%d" % port] + args)
            self.assertEqual(rc, 1, (args, out, err))
            self.assertEqual(out, "")
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("127.0.0.1:%d" % port, err)

    def test_not_prometheus(self):
        """A port that answers something else (here, an HTML page) ends the
        tool with a clear message instead of a table of zeros."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        port = srv.getsockname()[1]
        bodies = [b"<html><body>hello</body></html>\n", b"just_a_name\n",
                  b"other_metric 1\n"]

        def serve():
            for body in bodies:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                with c:
                    c.settimeout(5)
                    try:
                        c.recv(4096)
                        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + body)
                    except OSError:
                        pass
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        for want in ("not Prometheus text", "not Prometheus text", "no mdcache_ metrics"):
            rc, out, err = top_run(["--metrics", "127.0.0.1:%d" % port, "--once"])
            self.assertEqual(rc, 1, (out, err))
            self.assertIn(want, err)
        t.join(5)

    def test_bad_options(self):
        cases = [
            (["--interval", "0"], "--interval"),
            (["--interval", "x"], "--interval"),
            (["--count", "0"], "--count"),
            (["--count", "1.5"], "--count"),
            (["--metrics", "127.0.0.1"], "--metrics"),
            (["--metrics", "127.0.0.1:0"], "--metrics"),
            (["--metrics", "localhost:9464"], "--metrics"),
            (["--plain", "--json"], "exclude"),
            (["--once", "--count", "2"], "--once"),
            (["--bogus"], "unknown option"),
            (["--interval"], "needs an argument"),
            (["extra"], "unexpected argument"),
        ]
        for args, want in cases:
            rc, out, err = top_run(args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn(want, err, args)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        rc, out, err = top_run(["--help"])
        self.assertEqual(rc, 0, err)
        self.assertIn("--metrics HOST:PORT", out)
