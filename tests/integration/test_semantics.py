"""Value semantics, hand-written: exact decimals, nulls before a field is
known, duplicates and older seqs dropped, several sources, session reset,
one-sided quotes, the last_good key. The same scenario goes through jsonl and
through bin1 frames built here with struct from docs/protocol.md's layout
(a third party can implement the protocol from the document alone)."""

import unittest

from harness import (MdTestCase, Num, Q, bin1_heartbeat, bin1_quote, bin1_reset, bin1_trade,
                     free_port, jl, price_json, send_stream, send_udp, wait_keys)

T0 = 1763740000123456789


def ms(ns):
    return ns // 1000000


# Each message: (kind, fields). Decimals are strings exactly as the feed sends them.
def trade(sym, price, size, seq=None, ts=None, source=None, as_string=False):
    return ("trade", dict(symbol=sym, price=price, size=size, seq=seq, ts=ts, source=source,
                          as_string=as_string))


def quote(sym, bid=None, ask=None, bid_size="1", ask_size="1", seq=None, ts=None, source=None,
          as_string=False):
    return ("quote", dict(symbol=sym, bid=bid, ask=ask, bid_size=bid_size, ask_size=ask_size,
                          seq=seq, ts=ts, source=source, as_string=as_string))


def reset(sym, source=None):
    return ("reset", dict(symbol=sym, source=source))


SCENARIO = [
    # exact decimals, printed as sent
    trade("EXACT", "21000.25", "1", seq=1, ts=T0 + 1),
    trade("EXACT", "0.00012345", "2", seq=2, ts=T0 + 2, as_string=True),
    trade("EXACT", "21000.00", "3", seq=3, ts=T0 + 3),
    quote("EXACT", "21000.00", "21000.50", seq=4, ts=T0 + 4),
    trade("HALF", "21000.5", "1", seq=1, ts=T0 + 5),
    # volume at the finest exponent: 0.5 + 0.00123 = 0.50123
    trade("VOL", "10.5", "0.5", seq=1, ts=T0 + 6),
    trade("VOL", "10.25", "0.00123", seq=2, ts=T0 + 7),
    # nothing but a quote: Last/Volume/High/Low unknown -> null
    quote("NULLS", "5.00", "5.01", seq=1, ts=T0 + 8),
    # no ts at all: Timestamp null
    quote("NOTS", "7.5", "7.75", seq=1),
    # duplicates and older seqs from the same source are dropped
    trade("DUP", "100.00", "1", seq=10, ts=T0 + 9, source="feed-a"),
    trade("DUP", "200.00", "1", seq=10, ts=T0 + 10, source="feed-a"),
    trade("DUP", "50.00", "1", seq=9, ts=T0 + 11, source="feed-a"),
    quote("DUP", "1.00", "2.00", seq=5, ts=T0 + 12, source="feed-a"),
    # a second source has its own seq numbers
    trade("SRC2", "100.00", "1", seq=100, ts=T0 + 13, source="feed-a"),
    trade("SRC2", "101.00", "2", seq=1, ts=T0 + 14, source="feed-b"),
    # session reset: Volume 0, High/Low unknown, Last/Bid/Ask kept
    trade("RST", "10.00", "5", seq=1, ts=T0 + 15),
    quote("RST", "9.99", "10.01", seq=2, ts=T0 + 16),
    reset("RST"),
    trade("RST2", "10.00", "5", seq=1, ts=T0 + 17),
    reset("RST2"),
    trade("RST2", "11.00", "2", seq=3, ts=T0 + 18),
    # a quote with one side keeps the other
    quote("ONESIDE", "1.10", "1.20", seq=1, ts=T0 + 19),
    quote("ONESIDE", "1.15", None, seq=2, ts=T0 + 20),
    quote("ONESIDE2", "1.10", "1.20", seq=1, ts=T0 + 21),
    quote("ONESIDE2", None, "1.25", seq=2, ts=T0 + 22, as_string=True),
    # integer sizes stay integers
    trade("INTS", "3.00", "2", seq=1, ts=T0 + 23),
    trade("INTS", "4.00", "3", seq=2, ts=T0 + 24),
]

EXPECTED = {
    "EXACT": price_json("21000.00", "21000.00", "21000.50", "6", "21000.25", "0.00012345",
                        ms(T0 + 4)),
    "HALF": price_json("21000.5", None, None, "1", "21000.5", "21000.5", ms(T0 + 5)),
    "VOL": price_json("10.25", None, None, "0.50123", "10.5", "10.25", ms(T0 + 7)),
    "NULLS": price_json(None, "5.00", "5.01", None, None, None, ms(T0 + 8)),
    "NOTS": price_json(None, "7.5", "7.75", None, None, None, None),
    "DUP": price_json("100.00", None, None, "1", "100.00", "100.00", ms(T0 + 9)),
    "SRC2": price_json("101.00", None, None, "3", "101.00", "100.00", ms(T0 + 14)),
    "RST": price_json("10.00", "9.99", "10.01", "0", None, None, ms(T0 + 16)),
    "RST2": price_json("11.00", None, None, "2", "11.00", "11.00", ms(T0 + 18)),
    "ONESIDE": price_json(None, "1.15", "1.20", None, None, None, ms(T0 + 20)),
    "ONESIDE2": price_json(None, "1.10", "1.25", None, None, None, ms(T0 + 22)),
    "INTS": price_json("4.00", None, None, "5", "4.00", "3.00", ms(T0 + 24)),
}
DUPLICATES = 3


def to_jsonl(msg, prefix):
    kind, f = msg
    num = (lambda s: None if s is None else (Q(s) if f.get("as_string") else Num(s)))
    d = {"type_": kind, "symbol": prefix + f["symbol"]}
    if kind == "trade":
        d.update(price=num(f["price"]), size=num(f["size"]))
    elif kind == "quote":
        if f["bid"] is not None:
            d["bid"] = num(f["bid"])
        if f["ask"] is not None:
            d["ask"] = num(f["ask"])
        d.update(bid_size=num(f["bid_size"]), ask_size=num(f["ask_size"]))
    if f.get("ts") is not None:
        d["ts"] = f["ts"]
    if f.get("seq") is not None:
        d["seq"] = f["seq"]
    if f.get("source"):
        d["source"] = f["source"]
    return jl(**d)


def to_bin1(msg, prefix):
    kind, f = msg
    sym = prefix + f["symbol"]
    src = f.get("source") or ""
    if kind == "trade":
        return bin1_trade(sym, f["price"], f["size"], f["seq"], f["ts"], src)
    if kind == "quote":
        return bin1_quote(sym, f["bid"], f["ask"], f["bid_size"], f["ask_size"], f["seq"],
                          f["ts"], src)
    return bin1_reset(sym, src)


def expected(prefix):
    return {"price:%s%s:latest" % (prefix, s): v for s, v in EXPECTED.items()}


class SemanticsTest(MdTestCase):
    def check(self, r, m, prefix):
        c = self.client(r)
        exp = expected(prefix)
        wait_keys(c, exp, mdcache=m)
        self.assert_ttls(c, list(exp), 1, 5)
        # last_good: same value, no TTL, within about a second of the last change.
        good = {k.replace(":latest", ":last_good"): v for k, v in exp.items()}
        wait_keys(c, good, timeout=10, mdcache=m)
        ttls = c.ttl_many(good)
        self.assertEqual(set(ttls.values()), {-1}, "last_good keys must not expire: %s" % ttls)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("duplicates"), DUPLICATES, "final: %s" % fin)
        self.assertEqual(fin.get("decode_errors"), 0, "final: %s" % fin)
        self.assertEqual(fin.get("ticks_in"), len(SCENARIO), "final: %s" % fin)

    def test_jsonl_tcp(self):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port])
        send_stream(b"".join(to_jsonl(x, "J") for x in SCENARIO), port=port)
        self.check(r, m, "J")

    def test_jsonl_udp_one_line_per_datagram(self):
        r = self.start_redis()
        port = free_port("udp")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=jsonl" % port], cpus="0")
        send_udp(port, [to_jsonl(x, "U") for x in SCENARIO])
        self.check(r, m, "U")

    def test_bin1_udp_handmade_frames(self):
        r = self.start_redis()
        port = free_port("udp")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=bin1" % port])
        # Several frames per datagram, as the protocol allows.
        frames = [to_bin1(x, "B") for x in SCENARIO]
        dgrams, cur = [], b""
        for fr in frames:
            if len(cur) + len(fr) > 300:
                dgrams.append(cur)
                cur = b""
            cur += fr
        dgrams.append(cur)
        send_udp(port, dgrams)
        self.check(r, m, "B")

    def test_bin1_tcp_handmade_frames(self):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=bin1" % port])
        send_stream(b"".join(to_bin1(x, "T") for x in SCENARIO), port=port)
        self.check(r, m, "T")

    def test_file_replay_jsonl_and_bin1(self):
        """file:// feeds replay a capture once, through the same stream path;
        the last jsonl line has no newline and must still count."""
        import os
        d = self.tmpdir()
        jpath, bpath = os.path.join(d, "cap.jsonl"), os.path.join(d, "cap.bin1")
        with open(jpath, "wb") as f:
            f.write(b"".join(to_jsonl(x, "FJ") for x in SCENARIO).rstrip(b"\n"))
        with open(bpath, "wb") as f:
            f.write(b"".join(to_bin1(x, "FB") for x in SCENARIO))
        r = self.start_redis()
        m = self.start_mdcache(r, ["file://%s?format=jsonl" % jpath,
                                   "file://%s?format=bin1" % bpath])
        c = self.client(r)
        exp = expected("FJ")
        exp.update(expected("FB"))
        wait_keys(c, exp, mdcache=m)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("ticks_in"), 2 * len(SCENARIO), "final: %s" % fin)
        self.assertEqual(fin.get("duplicates"), 2 * DUPLICATES, "final: %s" % fin)
        self.assertEqual(fin.get("decode_errors"), 0, "final: %s" % fin)

    def test_redis_over_unix_socket(self):
        r = self.start_redis(unix=True)
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               redis_url="unix://" + r.unix)
        send_stream(b"".join(to_jsonl(x, "X") for x in SCENARIO), port=port)
        self.check(r, m, "X")

    def test_reset_all_symbols(self):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=bin1" % port])
        data = (bin1_trade("RA1", "10.00", "5", 1, T0 + 1) + bin1_trade("RA2", "20.00", "7", 1, T0 + 2)
                + bin1_quote("RA2", "19.99", "20.01", 1, 1, 2, T0 + 3)
                + bin1_heartbeat("hb", T0 + 4) + bin1_reset("*"))
        send_stream(data, port=port)
        c = self.client(r)
        wait_keys(c, {
            "price:RA1:latest": price_json("10.00", None, None, "0", None, None, ms(T0 + 1)),
            "price:RA2:latest": price_json("20.00", "19.99", "20.01", "0", None, None, ms(T0 + 3)),
        }, mdcache=m)
        self.assert_clean_exit(m)


if __name__ == "__main__":
    unittest.main()
