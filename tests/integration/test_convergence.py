"""Bulk convergence: mdfeed sends 100k+ ticks over 1000+ symbols and keeps its
own model of the result; every key in Redis must end up exactly equal to it,
with a live TTL, and the daemon's counters must account for every tick."""

import os
import unittest

from harness import MdTestCase, free_port, run_mdfeed, wait_keys

SYMBOLS = 1200
TICKS = 100000


class ConvergenceTest(MdTestCase):
    def check_counters(self, m, summary, garbage_expected=0, udp=False):
        fin = self.assert_clean_exit(m)
        notes = []
        if udp and fin.get("kernel_drops", 0) != 0:
            notes.append("kernel dropped %d datagrams (receive buffer overflow): "
                         "the daemon did not keep up" % fin["kernel_drops"])
        self.assertEqual(fin.get("ticks_in"), summary["valid"],
                         "ticks_in != valid ticks sent (%d data + %d dups + %d heartbeats); "
                         "final: %s %s" % (summary["sent"], summary["dups"],
                                           summary["heartbeats"], fin, "; ".join(notes)))
        if udp:
            self.assertEqual(fin.get("kernel_drops"), 0, "; ".join(notes))
        self.assertEqual(fin.get("duplicates"), summary["dups"],
                         "every re-sent tick must be counted as a duplicate; final: %s" % fin)
        self.assertEqual(fin.get("decode_errors"), garbage_expected, "final: %s" % fin)
        self.assertEqual(fin.get("drops"), 0, "final: %s" % fin)
        self.assertEqual(fin.get("redis_errors"), 0, "final: %s" % fin)
        self.assertGreaterEqual(fin.get("keys", 0), SYMBOLS, "final: %s" % fin)
        return fin

    def run_case(self, listen, target, feed_args, udp=False, garbage=0):
        r = self.start_redis()
        m = self.start_mdcache(r, [listen], cpus="0,1")
        exp_path = os.path.join(self.tmpdir(), "expect.jsonl")
        summary, expected = run_mdfeed(["--target", target, "--symbols", str(SYMBOLS),
                                        "--ticks", str(TICKS)] + feed_args, exp_path)
        self.assertEqual(summary["sent"], TICKS, "mdfeed did not send everything: %s" % summary)
        self.assertEqual(len(expected), SYMBOLS)
        c = self.client(r)
        wait_keys(c, expected, mdcache=m)
        self.assert_ttls(c, list(expected), 1, 5)
        self.assertTrue(m.alive(), "mdcache died:\n" + m.tail())
        fin = self.check_counters(m, summary, garbage_expected=summary.get("garbage", 0),
                                  udp=udp)
        # After the SIGTERM flush the keys are still exact.
        wait_keys(c, expected, timeout=1, mdcache=m)
        return fin

    def test_udp_bin1_two_workers(self):
        port = free_port("udp")
        self.run_case("udp://127.0.0.1:%d?format=bin1" % port, "udp://127.0.0.1:%d" % port,
                      ["--format", "bin1", "--rate", "50000", "--per-packet", "20",
                       "--dup-ratio", "0.02", "--seed", "11"], udp=True)

    def test_tcp_jsonl_strings_and_decimal_sizes(self):
        port = free_port()
        self.run_case("tcp://127.0.0.1:%d?format=jsonl" % port, "tcp://127.0.0.1:%d" % port,
                      ["--format", "jsonl", "--string-numbers", "--decimal-sizes",
                       "--per-packet", "37", "--dup-ratio", "0.02", "--seed", "12"])

    def test_tcp_bin1(self):
        port = free_port()
        self.run_case("tcp://127.0.0.1:%d?format=bin1" % port, "tcp://127.0.0.1:%d" % port,
                      ["--format", "bin1", "--decimal-sizes", "--per-packet", "13",
                       "--seed", "14"])

    def test_unix_jsonl_with_garbage(self):
        path = os.path.join(self.tmpdir(), "feed.sock")
        fin = self.run_case("unix://%s?format=jsonl" % path, "unix://%s" % path,
                            ["--format", "jsonl", "--decimal-sizes", "--garbage-ratio", "0.01",
                             "--seed", "13"])
        self.assertGreater(fin.get("decode_errors", 0), 0)


if __name__ == "__main__":
    unittest.main()
