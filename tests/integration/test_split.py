"""Stream reassembly: the same few messages are sent on one TCP connection per
split point, cut at every byte boundary into two send() calls (TCP_NODELAY),
plus one connection that sends a byte at a time. Each connection uses its own
symbol, so every split point has its own exact expected value. Correctness
must not depend on how the kernel happens to coalesce the pieces."""

import unittest

from harness import (MdTestCase, Num, Q, bin1_heartbeat, bin1_quote, bin1_trade, free_port, jl,
                     price_json, send_stream, wait_keys)

T0 = 1763740000000000000


def jsonl_messages(sym, i):
    ts = T0 + i * 1000000
    return b"".join([
        jl(type_="quote", symbol=sym, bid=Num("100.25"), ask=Num("100.50"), bid_size=3,
           ask_size=Num("4"), ts=ts + 1, seq=1),
        jl(type_="trade", symbol=sym, price=Num("100.25"), size=Num("0.5"), ts=ts + 2, seq=2),
        jl(type_="heartbeat", source="split-hb", ts=ts + 3),
        jl(type_="trade", symbol=sym, price=Q("100.50"), size=Q("2"), ts=ts + 4, seq=3),
        jl(type_="quote", symbol=sym, bid=Num("100.30"), bid_size=1, ask_size=1, ts=ts + 5,
           seq=4),
    ]), 5


def bin1_messages(sym, i):
    ts = T0 + i * 1000000
    return b"".join([
        bin1_quote(sym, "100.25", "100.50", "3", "4", 1, ts + 1),
        bin1_trade(sym, "100.25", "0.5", 2, ts + 2),
        bin1_heartbeat("split-hb", ts + 3),
        bin1_trade(sym, "100.50", "2", 3, ts + 4),
        bin1_quote(sym, "100.30", None, "1", "1", 4, ts + 5),
    ]), 5


def expected_value(i):
    return price_json("100.50", "100.30", "100.50", "2.5", "100.50", "100.25",
                      (T0 + i * 1000000 + 5) // 1000000)


class SplitTest(MdTestCase):
    def run_split(self, fmt, make, prefix):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=%s" % (port, fmt)])
        sample, per_conn = make(prefix + "0000", 0)
        n = len(sample)
        exp, sent = {}, 0
        for k in range(0, n + 1):
            sym = "%s%04d" % (prefix, k)
            data, cnt = make(sym, k)
            self.assertEqual(len(data), n)
            send_stream(None, port=port, chunks=[data[:k], data[k:]])
            exp["price:%s:latest" % sym] = expected_value(k)
            sent += cnt
        # And one connection that trickles a byte per send().
        sym = "%sBYTE" % prefix
        data, cnt = make(sym, n + 1)
        send_stream(None, port=port, chunks=[data[j:j + 1] for j in range(len(data))])
        exp["price:%s:latest" % sym] = expected_value(n + 1)
        sent += cnt

        c = self.client(r)
        wait_keys(c, exp, mdcache=m)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= sent)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("ticks_in"), sent, "final: %s" % fin)
        self.assertEqual(fin.get("decode_errors"), 0, "final: %s" % fin)
        self.assertEqual(fin.get("duplicates"), 0, "final: %s" % fin)

    def test_jsonl_every_split(self):
        self.run_split("jsonl", jsonl_messages, "SPJ")

    def test_bin1_every_split(self):
        self.run_split("bin1", bin1_messages, "SPB")


if __name__ == "__main__":
    unittest.main()
