"""The benchmark's own parts, against the real daemon: build/mdgen's streams
(threads, Zipf skew, bursts, origin stamps) converge exactly, its bounds and
option checks hold, and mdcache's --report file accounts for every tick."""

import json
import os
import subprocess
import unittest

from harness import ROOT, SLOW, MdTestCase, free_port, load_expect, parse_counters, wait_keys

MDGEN = os.environ.get("MDGEN_BIN", os.path.join(ROOT, "build", "mdgen"))


def run_mdgen(args, timeout=60):
    p = subprocess.run([MDGEN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout * SLOW)
    lines = [l for l in p.stdout.splitlines() if l.startswith("mdgen:")]
    return p.returncode, (parse_counters(lines[-1]) if lines else None), p.stderr


class MdgenTest(MdTestCase):
    def converge(self, listen, target, args, symbols):
        r = self.start_redis()
        rep = os.path.join(self.tmpdir(), "report.json")
        m = self.start_mdcache(r, [listen], cpus="0", args=["--report", rep])
        exp = os.path.join(self.tmpdir(), "expect.jsonl")
        rc, summary, err = run_mdgen(["--target", target, "--symbols", str(symbols),
                                      "--expect", exp] + args)
        self.assertEqual(rc, 0, err)
        expected = load_expect(exp)
        self.assertEqual(len(expected), symbols, "every symbol is sent at least once")
        wait_keys(self.client(r), expected, mdcache=m)
        self.assert_clean_exit(m)
        with open(rep) as f:
            report = json.load(f)
        self.assertEqual(report["ticks"], summary["sent"])
        self.assertEqual(report["unflushed"], 0)
        # Every tick that changed a key is in the latency histogram once;
        # a quote equal to the one before changes nothing and is not.
        lat = report["latency_ns"]
        self.assertLessEqual(lat["count"], summary["sent"])
        self.assertGreater(lat["count"], summary["sent"] * 0.95)
        self.assertEqual(sum(c for _, c in lat["buckets"]), lat["count"])
        return summary, report

    def test_udp_bin1_threads_zipf_bursts(self):
        port = free_port("udp")
        s, _ = self.converge("udp://127.0.0.1:%d?format=bin1" % port, "udp://127.0.0.1:%d" % port,
                             ["--rate", "20000", "--duration", "1.5", "--threads", "2",
                              "--cpus", "0,1", "--zipf", "1.1", "--burst", "100:20:5",
                              "--per-datagram", "16", "--seed", "3"], 3000)
        self.assertEqual(s["threads"], 2)
        # Bursts add ticks above the base rate: 1.5 s x 20k = 30k scheduled.
        self.assertEqual(s["scheduled"], 30000)
        self.assertEqual(s["sent"], 30000)

    def test_unix_jsonl_flat_out(self):
        path = os.path.join(self.tmpdir(), "feed.sock")
        s, report = self.converge("unix://%s?format=jsonl" % path, "unix://%s" % path,
                                  ["--format", "jsonl", "--rate", "0", "--ticks", "50000",
                                   "--seed", "4"], 2000)
        self.assertEqual(s["sent"], 50000)
        self.assertEqual(report["decode_errors"], 0)

    def test_tcp_bin1_without_origin(self):
        port = free_port()
        self.converge("tcp://127.0.0.1:%d?format=bin1" % port, "tcp://127.0.0.1:%d" % port,
                      ["--rate", "10000", "--duration", "1", "--no-origin"], 500)

    def test_report_unwritable(self):
        # Everything is flushed, but the run's record could not be written:
        # a clear error naming the file, and a non-zero exit.
        r = self.start_redis()
        path = os.path.join(self.tmpdir(), "no-such-dir", "report.json")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=bin1" % free_port("udp")], cpus="0",
                               args=["--report", path])
        self.assertEqual(m.terminate(), 1, m.tail())
        self.assertIn("report %s: No such file or directory" % path, m.log())
        self.assertIn("every key flushed, but the report was not written", m.log())

    def test_bad_options(self):
        for args, msg in [
            (["--target", "udp://10.0.0.1:9"], "non-loopback"),
            (["--target", "udp://127.0.0.1:9", "--rate", "0"], "needs --ticks"),
            (["--target", "udp://127.0.0.1:9", "--burst", "10:20:2"], "bad --burst"),
            (["--target", "udp://127.0.0.1:9", "--format", "xml"], "bad --format"),
            (["--target", "udp://127.0.0.1:9", "--zipf", "-1"], "bad value"),
            (["--symbols", "10"], "--target is required"),
        ]:
            rc, _, err = run_mdgen(args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
            self.assertIn(msg, err)

    def test_time_bound(self):
        # Nobody reads a TCP connection that is never accepted beyond the
        # backlog... a Unix listener that never reads: --max-time still ends it.
        import socket
        path = os.path.join(self.tmpdir(), "sink.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        self.addCleanup(srv.close)
        rc, s, err = run_mdgen(["--target", "unix://" + path, "--format", "jsonl", "--rate", "0",
                                "--ticks", "100000000", "--max-time", "1"], timeout=30)
        self.assertEqual(rc, 0, err)
        self.assertEqual(s["timed_out"], 1)
        self.assertLess(s["sent"], 100000000)
        self.assertIn("--max-time", err)


if __name__ == "__main__":
    unittest.main()
