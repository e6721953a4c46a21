"""mdfeed's account messages against its own oracle: a few thousand ticks
with an account message after every tenth, for 20 accounts (positions going
long, short and flat, orders placed, amended, filled, cancelled and
rejected, balances and account info merging field by field), over TCP jsonl
and over UDP bin1. Redis must end up holding exactly what mdfeed's
independent model says every account key holds (docs/keys.md, "Account
values"), every price key likewise, no key of an order that ended, and no
other hft:* key.

Values are compared byte for byte, except that the entries of a positions
value and of an order list may come in any order: docs/keys.md gives the
order list "in no particular order" and promises no order for positions
either (readers look entries up by symbol or order id). Those two are
compared entry by entry, each entry and everything around them still byte
for byte."""

import json
import os

from harness import CONVERGE_TIMEOUT, MdTestCase, free_port, run_mdfeed, wait_for

# Keys live for a minute, accounts for ten, sources for two: the values are
# checked with no race against expiry or a refresh.
LONG_INI = ("[keys]\nsource_timeout = 120\nprice_ttl = 60\npositions_ttl = 60\n"
            "orders_ttl = 60\nbalances_ttl = 60\naccounts_ttl = 600\n")

ACCOUNTS = 20
TICKS = 4000
EVERY = 10


class Obj(tuple):
    """A JSON object as its (name, value) pairs, in the order written."""


class Number(str):
    """A JSON number as written: 21000.50 stays 21000.50."""


def parse(text):
    return json.loads(text, object_pairs_hook=Obj, parse_float=Number, parse_int=Number)


def ser(x):
    """Compact JSON of a parse() result; equals the text for values written
    as mdcache writes them (no spaces, only '"' and '\\' escaped)."""
    if isinstance(x, Obj):
        return "{" + ",".join(json.dumps(k) + ":" + ser(v) for k, v in x) + "}"
    if isinstance(x, list):
        return "[" + ",".join(ser(v) for v in x) + "]"
    if isinstance(x, Number):
        return str.__str__(x)
    return json.dumps(x)


# The entries that may come in any order, and what identifies one.
UNORDERED = {"positions": "symbol", "orders": "order_id"}


def entries_sorted(v):
    return Obj((k, sorted(x, key=lambda e: dict(e)[UNORDERED[k]]) if k in UNORDERED else x)
               for k, x in v)


def is_unordered_key(key):
    # hft:positions:{account}:all, and the list hft:orders:pending:{account}
    # (an order's own key has one more ':'); the accounts are ACC0000...
    return key.startswith("hft:positions:") or (key.startswith("hft:orders:pending:")
                                                and key.count(":") == 3)


def same(key, actual, expected):
    """actual (None: no such key) is what the key must hold."""
    if expected is None or actual is None or actual == expected:
        return actual == expected
    if not is_unordered_key(key):
        return False
    try:
        a, e = parse(actual), parse(expected)
    except ValueError:
        return False
    # Both as compact as ser() writes them: nothing but the entries' order
    # may differ.
    return (ser(a) == actual and ser(e) == expected
            and ser(entries_sorted(a)) == ser(entries_sorted(e)))


class MdfeedAccountsTest(MdTestCase):
    def run_feed(self, kind, fmt, prefix, source, seed, extra=()):
        r = self.start_redis()
        c = self.client(r)
        port = free_port(kind)
        m = self.start_mdcache(r, ["%s://127.0.0.1:%d?format=%s" % (kind, port, fmt)],
                               ini=LONG_INI)
        path = os.path.join(self.tmpdir(), "%s.expect" % prefix)
        summary, want = run_mdfeed(["--target", "%s://127.0.0.1:%d" % (kind, port),
                                    "--format", fmt, "--symbols", "200", "--ticks", str(TICKS),
                                    "--symbol-prefix", prefix, "--source", source,
                                    "--seed", str(seed), "--accounts", str(ACCOUNTS),
                                    "--account-every", str(EVERY)] + list(extra), path)
        self.assertEqual(summary["sent"], TICKS, summary)
        self.assertEqual(summary["account_msgs"], TICKS // EVERY, summary)
        self.check_coverage(want)
        self.converge(c, m, want)
        fin = self.assert_clean_exit(m)
        # Every line and frame was understood and applied, nothing dropped.
        for k in ("decode_errors", "duplicates", "refused", "kernel_drops"):
            self.assertEqual(fin.get(k), 0, "final: %s" % fin)
        self.assertEqual(fin["ticks_in"], summary["valid"], "final: %s" % fin)
        self.assertEqual(fin["account_msgs"], summary["account_msgs"], "final: %s" % fin)
        ended = sum(1 for v in want.values() if v is None)
        self.assertGreaterEqual(fin["orders_deleted"], ended, "final: %s" % fin)

    def check_coverage(self, want):
        """The run exercised what this test is about."""
        def count(pred):
            return sum(1 for k, v in want.items() if pred(k, v))
        n = {
            "positions": count(lambda k, v: k.startswith("hft:positions:")),
            "order lists": count(lambda k, v: k.startswith("hft:orders:pending:")
                                 and k.count(":") == 3),
            "working orders": count(lambda k, v: k.count(":") == 4 and v is not None),
            "ended orders": count(lambda k, v: v is None),
            "balances": count(lambda k, v: k.startswith("hft:balances:")),
            "accounts": count(lambda k, v: k.startswith("hft:accounts:")),
            "prices": count(lambda k, v: k.startswith("price:")),
        }
        for what, k in n.items():
            self.assertGreater(k, 0, "the run produced no %s: %s" % (what, n))

    def converge(self, c, m, want):
        keys = sorted(want)
        present = {k for k, v in want.items() if v is not None and k.startswith("hft:")}

        def state():
            got = c.get_many(keys)
            bad = [k for k in keys if not same(k, got[k], want[k])]
            extra = sorted(set(c.scan_all("hft:*")) - present)
            return got, bad, extra

        if wait_for(lambda: (lambda s: not s[1] and not s[2])(state()), CONVERGE_TIMEOUT,
                    interval=0.1):
            return
        got, bad, extra = state()
        lines = ["%d of %d keys differ after %gs; first:" % (len(bad), len(keys),
                                                            CONVERGE_TIMEOUT)]
        for k in bad[:8]:
            lines.append("  %s\n    expected %s\n    actual   %s" % (k, want[k], got[k]))
        if extra:
            lines.append("hft:* keys nobody expected (%d): %s" % (len(extra), extra[:8]))
        lines.append("mdcache stats: %s\nlog tail:\n%s" % (m.stats(), m.tail()))
        self.fail("\n".join(lines))

    def test_tcp_jsonl(self):
        # Some numbers as JSON strings, some sizes with decimals: the
        # account lines take both like the price lines.
        self.run_feed("tcp", "jsonl", "TJ", "acct-tcp", 11,
                      ["--string-numbers", "--decimal-sizes", "--heartbeat-every", "500"])

    def test_udp_bin1(self):
        # Paced, a few frames per datagram: nothing is lost to a full socket
        # buffer (kernel_drops stays 0, checked above).
        self.run_feed("udp", "bin1", "UB", "acct-udp", 12,
                      ["--rate", "5000", "--per-packet", "8", "--heartbeat-every", "500"])


if __name__ == "__main__":
    import unittest
    unittest.main()
