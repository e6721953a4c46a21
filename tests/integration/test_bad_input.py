"""Bad input never stops the pipeline: every kind of malformed line or frame,
mixed between good ticks on UDP datagrams, TCP and Unix streams, is dropped
and counted by reason, and every good tick around it is applied exactly."""

import os
import struct
import unittest

from harness import (MdTestCase, Num, Q, bin1_dec, bin1_frame, bin1_trade, free_port, jl,
                     price_json, send_stream, send_udp, wait_keys, BIN1_TRADE)

T0 = 1763740000000000000
LONG_SYM = "L" * 40


def jsonl_garbage(sym):
    """(reason, line) pairs; each must count exactly one error."""
    return [
        ("syntax", b"\x01\x02\xff\xfe{{garbage\x00\x80]]\n"),
        ("bad_number", jl(type_="trade", symbol=sym, price=Q("NaN"), size=1, ts=T0)),
        ("bad_number", jl(type_="trade", symbol=sym, price=Q("inf"), size=1, ts=T0)),
        ("negative", jl(type_="trade", symbol=sym, price=Num("1.00"), size=-3, ts=T0)),
        ("symbol", jl(type_="trade", symbol=LONG_SYM, price=Num("1.00"), size=1, ts=T0)),
        ("oversized", jl(type_="trade", symbol=sym, pad="p" * 5000, price=Num("1.00"), size=1)),
        ("missing_field", jl(type_="trade", price=Num("1.00"), size=1, ts=T0)),
        ("unknown_type", jl(type_="bogus", symbol=sym, price=Num("1.00"), size=1)),
        ("syntax", b'{"type":"trade","symbol":"' + sym.encode() + b'","pri\n'),
    ]


def bin1_garbage(sym, datagram):
    """(reason, bytes) pairs, each exactly one error; no stray magic+version
    pair inside, so a stream decoder resynchronises on the next good frame."""
    good = bin1_trade(sym, "1.00", "1")
    neg = bin1_trade(sym, "1.00", "-3")
    badexp = bin1_frame(BIN1_TRADE, sym, "", None, None,
                        struct.pack("<qb", 100, -30) + bin1_dec("1"))
    longsym = bin1_frame(BIN1_TRADE, LONG_SYM, "", None, None, bin1_dec("1.00") + bin1_dec("1"))
    unknown = bin1_frame(99, sym, "", None, None, bin1_dec("1.00") + bin1_dec("1"))
    badver = bin1_frame(BIN1_TRADE, sym, "", None, None, bin1_dec("1.00") + bin1_dec("1"),
                        version=2)
    big = bin1_frame(BIN1_TRADE, sym, "", None, None,
                     bin1_dec("1.00") + bin1_dec("1") + b"\x00" * 1100)
    out = [
        ("syntax", bytes(b for b in ((i * 37 + 5) % 256 for i in range(64)) if b != 0xB1)),
        ("negative", neg),
        ("bad_number", badexp),
        ("symbol", longsym),
        ("unknown_type", unknown),
        ("version", badver),
        ("oversized", big),
    ]
    if datagram:
        out.append(("truncated", good[:-5]))  # the datagram's end cuts the frame
    return out


class BadInputTest(MdTestCase):
    def test_garbage_everywhere(self):
        r = self.start_redis()
        d = self.tmpdir()
        pu_j, pu_b = free_port("udp"), free_port("udp")
        pt_j, pt_b = free_port(), free_port()
        su_j, su_b = os.path.join(d, "j.sock"), os.path.join(d, "b.sock")
        m = self.start_mdcache(r, [
            "udp://127.0.0.1:%d?format=jsonl" % pu_j, "udp://127.0.0.1:%d?format=bin1" % pu_b,
            "tcp://127.0.0.1:%d?format=jsonl" % pt_j, "tcp://127.0.0.1:%d?format=bin1" % pt_b,
            "unix://%s?format=jsonl" % su_j, "unix://%s?format=bin1" % su_b,
        ], cpus="0,1")

        expected, reasons = {}, {}
        total_bad = total_good = 0

        def good_jsonl(ch, i):
            sym = "%s%02d" % (ch, i)
            expected["price:%s:latest" % sym] = price_json("%d.25" % (i + 1), None, None, "0.5",
                                                          "%d.25" % (i + 1), "%d.25" % (i + 1),
                                                          (T0 + i) // 1000000)
            return jl(type_="trade", symbol=sym, price=Num("%d.25" % (i + 1)), size=Num("0.5"),
                      ts=T0 + i, seq=1)

        def good_bin1(ch, i):
            sym = "%s%02d" % (ch, i)
            expected["price:%s:latest" % sym] = price_json("%d.75" % (i + 1), None, None, "2",
                                                          "%d.75" % (i + 1), "%d.75" % (i + 1),
                                                          (T0 + i) // 1000000)
            return bin1_trade(sym, "%d.75" % (i + 1), "2", 1, T0 + i)

        def count(kind, items):
            nonlocal total_bad
            for why, _ in items:
                reasons.setdefault(kind, {}).setdefault(why, 0)
                reasons[kind][why] += 1
                total_bad += 1

        # UDP jsonl: good line, bad line, good line in one datagram; the bad
        # line must not take its neighbours with it.
        g = jsonl_garbage("UJX")
        count("jsonl", g)
        dgrams = []
        for i, (_, bad) in enumerate(g):
            dgrams.append(good_jsonl("UJ", 2 * i) + bad + good_jsonl("UJ", 2 * i + 1))
            total_good += 2
        send_udp(pu_j, dgrams)

        # UDP bin1: a bad frame ends its datagram (an untrusted header loses
        # the rest of the datagram by design), after a good frame.
        g = bin1_garbage("UBX", datagram=True)
        count("bin1", g)
        send_udp(pu_b, [good_bin1("UB", i) + bad for i, (_, bad) in enumerate(g)]
                 + [good_bin1("UB", len(g))])
        total_good += len(g) + 1

        # Streams: good, bad, good, bad, ..., good.
        for ch, fmt, kw in (("TJ", "jsonl", dict(port=pt_j)), ("TB", "bin1", dict(port=pt_b)),
                            ("NJ", "jsonl", dict(unix=su_j)), ("NB", "bin1", dict(unix=su_b))):
            g = jsonl_garbage(ch + "X") if fmt == "jsonl" else bin1_garbage(ch + "X", False)
            count(fmt, g)
            mk = good_jsonl if fmt == "jsonl" else good_bin1
            data = b""
            for i, (_, bad) in enumerate(g):
                data += mk(ch, i) + bad
            data += mk(ch, len(g))
            total_good += len(g) + 1
            send_stream(data, **kw)

        c = self.client(r)
        wait_keys(c, expected, mdcache=m)
        m.wait_stats(lambda s: s.get("decode_errors", 0) >= total_bad)
        self.assertTrue(m.alive(), "mdcache died on bad input:\n" + m.tail())
        # Nothing from a bad line may have reached Redis.
        stray = [k for k in c.scan_all("price:*") if "X" in k.split(":")[1] or "LLLL" in k]
        self.assertEqual(stray, [], "keys written from malformed input")

        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("decode_errors"), total_bad,
                         "each malformed unit counts exactly one error; expected by reason %s; "
                         "final: %s" % (reasons, fin))
        self.assertEqual(fin.get("ticks_in"), total_good, "final: %s" % fin)
        wanted = set(reasons["jsonl"]) | set(reasons["bin1"])
        missing = [w for w in sorted(wanted) if fin.get("err_" + w, 0) <= 0]
        self.assertEqual(missing, [], "err_<reason> counters not raised: %s; final: %s"
                         % (missing, fin))
        self.assertEqual(sum(fin.get("err_" + w, 0) for w in
                             ("syntax", "truncated", "oversized", "version", "unknown_type",
                              "missing_field", "bad_number", "negative", "symbol")),
                         total_bad, "err_* do not add up; final: %s" % fin)

    def test_mdfeed_garbage_streams(self):
        """mdfeed's own garbage mix on a bin1 UDP feed and a bin1 TCP stream."""
        from harness import run_mdfeed
        r = self.start_redis()
        pu, pt = free_port("udp"), free_port()
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=bin1" % pu,
                                   "tcp://127.0.0.1:%d?format=bin1" % pt], cpus="0,1")
        d = self.tmpdir()
        s1, e1 = run_mdfeed(["--target", "udp://127.0.0.1:%d" % pu, "--format", "bin1",
                             "--symbols", "200", "--ticks", "20000", "--rate", "40000",
                             "--garbage-ratio", "0.02", "--symbol-prefix", "GU", "--seed", "3"],
                            os.path.join(d, "u.jsonl"))
        s2, e2 = run_mdfeed(["--target", "tcp://127.0.0.1:%d" % pt, "--format", "bin1",
                             "--symbols", "200", "--ticks", "20000", "--garbage-ratio", "0.02",
                             "--symbol-prefix", "GT", "--seed", "4"], os.path.join(d, "t.jsonl"))
        self.assertGreater(s1["garbage"], 0)
        c = self.client(r)
        e1.update(e2)
        wait_keys(c, e1, mdcache=m)
        m.wait_stats(lambda s: s.get("decode_errors", 0) >= s1["garbage"] + s2["garbage"])
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("decode_errors"), s1["garbage"] + s2["garbage"], "final: %s" % fin)
        self.assertEqual(fin.get("ticks_in"), s1["valid"] + s2["valid"], "final: %s" % fin)


if __name__ == "__main__":
    unittest.main()
