"""Account caches (issue #5, item 1, and liveness for them, item 2): positions,
orders, balances and accounts from jsonl and bin1 land in Redis under the
seeds' keys with their own TTLs and the values docs/keys.md defines;
positions merge per account; a terminal order is deleted at once (its key
and its entry in the list); a Redis restarted empty gets every value of a
live account back; a quiet account's keys expire within one TTL and the
watcher counts it, while an account whose source only sends heartbeats
keeps its keys; the class templates are configurable and can be turned
off."""

import json
import socket
import time

from harness import (CONVERGE_TIMEOUT, SLOW, MdTestCase, Num, Resp, bin1_account, bin1_balance,
                     bin1_heartbeat, bin1_order, bin1_position, free_port, jl, send_stream,
                     send_udp, wait_for, wait_keys)

TS = 1763740000123456789
TS_MS = TS // 1000000

# Account keys live for a minute and sources for two: values are checked
# without any race against expiry.
LONG_INI = ("[keys]\nsource_timeout = 120\nprice_ttl = 60\npositions_ttl = 60\n"
            "orders_ttl = 60\nbalances_ttl = 60\naccounts_ttl = 600\n")

ACCT = "PAAPEX2666680000001"


def design_messages():
    """The DESIGN.md examples, one per class, plus a second position and order."""
    return b"".join([
        jl(type_="position", account=ACCT, symbol="MNQZ5", net_pos=2, avg_price=Num("21000.5"),
           ts=TS, source="oms"),
        jl(type_="position", account=ACCT, symbol="ESZ5", net_pos=-1, avg_price=Num("6000.25"),
           ts=TS, source="oms"),
        jl(type_="order", account=ACCT, order_id="D17158695", symbol="MNQZ5", side="buy", qty=1,
           price=Num("20990.0"), status="working", ts=TS, source="oms"),
        jl(type_="order", account=ACCT, order_id="D17158696", symbol="ESZ5", side="sell", qty=2,
           price=Num("6010.00"), status="working", ts=TS, source="oms"),
        jl(type_="balance", account=ACCT, cash=Num("50000.0"), realized_pnl=Num("12.5"),
           unrealized_pnl=Num("-3.0"), ts=TS, source="oms"),
        jl(type_="account", account=ACCT, id="D17158695", active=True, ts=TS, source="oms"),
    ])


def order_json(oid, sym, side, qty, price, status="working", account=ACCT, ts_ms=TS_MS):
    return ('{"account":"%s","order_id":"%s","symbol":"%s","side":"%s","qty":%s,"price":%s,'
            '"status":"%s","timestamp":%d}' % (account, oid, sym, side, qty, price, status, ts_ms))


def expected_values(account=ACCT, ts_ms=TS_MS):
    o1 = order_json("D17158695", "MNQZ5", "buy", 1, "20990.0", account=account, ts_ms=ts_ms)
    o2 = order_json("D17158696", "ESZ5", "sell", 2, "6010.00", account=account, ts_ms=ts_ms)
    return {
        "hft:positions:%s:all" % account:
            '{"account":"%s","positions":['
            '{"symbol":"MNQZ5","net_pos":2,"avg_price":21000.5,"timestamp":%d},'
            '{"symbol":"ESZ5","net_pos":-1,"avg_price":6000.25,"timestamp":%d}],'
            '"count":2,"timestamp":%d}' % (account, ts_ms, ts_ms, ts_ms),
        "hft:orders:pending:%s:D17158695" % account: o1,
        "hft:orders:pending:%s:D17158696" % account: o2,
        "hft:orders:pending:%s" % account:
            '{"account":"%s","orders":[%s,%s],"count":2,"timestamp":%d}'
            % (account, o1, o2, ts_ms),
        "hft:balances:%s:all" % account:
            '{"account":"%s","cash":50000.0,"realized_pnl":12.5,"unrealized_pnl":-3.0,'
            '"timestamp":%d}' % (account, ts_ms),
        "hft:accounts:%s" % account:
            '{"accounts":[{"name":"%s","id":"D17158695","active":true}],"count":1,'
            '"cached":false,"timestamp":%d.%03d}' % (account, ts_ms // 1000, ts_ms % 1000),
    }


class AccountsTest(MdTestCase):
    def start_fed(self, r, ini, fmt="jsonl", kind="tcp"):
        port = free_port(kind)
        m = self.start_mdcache(r, ["%s://127.0.0.1:%d?format=%s" % (kind, port, fmt)], ini=ini)
        return m, port

    def wait_values(self, c, want, m, timeout=CONVERGE_TIMEOUT):
        ok = wait_for(lambda: c.get_many(list(want)) == want, timeout)
        if not ok:
            got = c.get_many(list(want))
            self.fail("account keys differ:\n%s\nlog:\n%s" % (
                "\n".join("%s\n  got  %s\n  want %s" % (k, got[k], v)
                          for k, v in want.items() if got[k] != v), m.tail()))

    def test_values_ttls_and_seeds_readers(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, LONG_INI)
        send_stream(design_messages(), port=port)
        want = expected_values()
        self.wait_values(c, want, m)
        ttls = {k: c.cmd("PTTL", k) for k in want}
        for k, t in ttls.items():
            hi = 600000 if k.startswith("hft:accounts:") else 60000
            self.assertTrue(hi - 30000 < t <= hi, "%s: PTTL %s" % (k, t))
        # What the seeds' readers do with these keys works on ours.
        acc = json.loads(c.cmd("GET", "hft:accounts:" + ACCT))
        self.assertEqual(acc["count"], 1)
        self.assertEqual(acc["accounts"][0], {"name": ACCT, "id": "D17158695", "active": True})
        stats = {"accounts": 0, "positions": 0, "orders": 0, "balances": 0, "total": 0}
        for key in c.scan_all("hft:*"):
            stats["total"] += 1
            for cls in ("accounts", "positions", "orders", "balances"):
                if cls in key:
                    stats[cls] += 1
                    break
        self.assertEqual(stats, {"accounts": 1, "positions": 1, "orders": 3, "balances": 1,
                                 "total": 6})

        # Redis restarted empty: every value of the live account comes back.
        r.kill()
        r.restart()
        self.wait_values(self.client(r), want, m)
        fin = self.assert_clean_exit(m)
        self.assertGreaterEqual(fin["account_msgs"], 6)
        self.assertGreaterEqual(fin["account_writes"], 12)

    def test_default_ttls(self):
        # The seeds' TTLs; a live source keeps re-asserting them, so each key
        # is seen, sooner or later, with a TTL within its class's.
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, "[keys]\nsource_timeout = 120\n")
        send_stream(design_messages(), port=port)
        limits = {"hft:positions:%s:all" % ACCT: 1000, "hft:orders:pending:%s" % ACCT: 1000,
                  "hft:orders:pending:%s:D17158695" % ACCT: 1000,
                  "hft:balances:%s:all" % ACCT: 2000, "hft:accounts:%s" % ACCT: 300000}
        for k, hi in limits.items():
            self.assertTrue(wait_for(lambda: 0 < c.cmd("PTTL", k) <= hi, CONVERGE_TIMEOUT),
                            "%s never seen with a TTL in (0, %d] ms" % (k, hi))
        self.assert_clean_exit(m)

    def test_terminal_orders_deleted_at_once(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, LONG_INI)
        s = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(s.close)
        s.sendall(design_messages())
        self.wait_values(c, expected_values(), m)
        # Filled, cancelled, rejected: each key goes at once (its TTL is a
        # minute, so only a DEL can remove it within the wait) and the list
        # loses it; the others stay.
        k1 = "hft:orders:pending:%s:D17158695" % ACCT
        k2 = "hft:orders:pending:%s:D17158696" % ACCT
        k3 = "hft:orders:pending:%s:X3" % ACCT
        lst = "hft:orders:pending:%s" % ACCT
        s.sendall(jl(type_="order", account=ACCT, order_id="D17158695", status="filled",
                     ts=TS + 1000000, source="oms"))
        o2 = order_json("D17158696", "ESZ5", "sell", 2, "6010.00")
        self.wait_values(c, {k1: None, lst: '{"account":"%s","orders":[%s],"count":1,'
                                            '"timestamp":%d}' % (ACCT, o2, TS_MS + 1)}, m)
        self.assertEqual(c.cmd("GET", k2), o2)
        s.sendall(jl(type_="order", account=ACCT, order_id="X3", symbol="NQ", side="buy", qty=1,
                     status="working", ts=TS + 2000000, source="oms"))
        self.assertTrue(wait_for(lambda: c.cmd("GET", k3) is not None, CONVERGE_TIMEOUT))
        s.sendall(jl(type_="order", account=ACCT, order_id="D17158696", status="cancelled",
                     source="oms") +
                  jl(type_="order", account=ACCT, order_id="X3", status="rejected", source="oms"))
        self.assertTrue(wait_for(lambda: c.get_many([k2, k3]) == {k2: None, k3: None},
                                 CONVERGE_TIMEOUT), m.tail())
        self.assertTrue(wait_for(lambda: '"orders":[],"count":0' in (c.cmd("GET", lst) or ""),
                                 CONVERGE_TIMEOUT), c.cmd("GET", lst))
        # A terminal order never seen working still gets its key deleted
        # (one left by an earlier run of mdcache, say).
        stale = "hft:orders:pending:%s:OLD1" % ACCT
        c.cmd("SET", stale, "left over")
        s.sendall(jl(type_="order", account=ACCT, order_id="OLD1", status="cancelled",
                     source="oms"))
        self.assertTrue(wait_for(lambda: c.cmd("GET", stale) is None, CONVERGE_TIMEOUT))
        s.close()
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["orders_deleted"], 4)

    def test_unchanged_order_kept_while_others_change(self):
        # Each order key has its own TTL: an order nobody touches must be
        # re-asserted on its own clock even though the account's list is
        # rewritten all the time for another order. Four-second orders,
        # refreshed every two; the other order changes every 0.1 s for
        # three TTLs.
        ttl = 4
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, "[keys]\nsource_timeout = 120\norders_ttl = %d\n" % ttl)
        s = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(s.close)
        s.sendall(jl(type_="order", account="CH", order_id="KEEP", symbol="ES", side="buy",
                     qty=1, price=Num("10.0"), status="working", source="oms"))
        keep = "hft:orders:pending:CH:KEEP"
        self.assertTrue(wait_for(lambda: c.cmd("GET", keep) is not None, CONVERGE_TIMEOUT))
        missing = []
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 3 * ttl:
            n += 1
            s.sendall(jl(type_="order", account="CH", order_id="CHURN", symbol="ES", side="sell",
                         qty=1, price=Num("%d.0" % (20 + n % 50)), status="working",
                         source="oms"))
            if c.cmd("GET", keep) is None:
                missing.append(round(time.monotonic() - start, 2))
            time.sleep(0.1)
        self.assertEqual(missing, [], "the unchanged order's key vanished while its source "
                                      "was alive")
        self.assertEqual(m.stats().get("expired_orders", 0), 0)
        s.close()
        self.assert_clean_exit(m)

    def test_account_keys_forbidden_prices_go_on_then_granted(self):
        """An ACL user allowed price:* only: account writes get NOPERM, which
        holds the account writes (kept, counted, retried on the backoff
        schedule) but never the prices; once the ACL allows hft:*, every
        account value arrives without another message."""
        r = self.start_redis()
        c = self.client(r)
        pw = "acct-pw-1"
        c.cmd("ACL", "SETUSER", "mdc", "on", ">" + pw, "~price:*", "+setex", "+set", "+del",
              "+ping", "+select")
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=LONG_INI,
                               redis_url="redis://mdc:%s@127.0.0.1:%d/0" % (pw, r.port))
        send_stream(design_messages(), port=port)
        expected = self.feed(port, "AP", "acl-prices", symbols=100, ticks=2000, seed=61)
        wait_keys(c, expected, mdcache=m)
        m.wait_stats(lambda s: s.get("redis_noperm", 0) > 0, CONVERGE_TIMEOUT)
        self.assertEqual(c.scan_all("hft:*"), [])
        self.assertIn("account writes are held", m.log())
        c.cmd("ACL", "SETUSER", "mdc", "~hft:*")
        self.wait_values(c, expected_values(), m)
        self.assert_clean_exit(m)

    def test_bin1_all_classes(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, LONG_INI, fmt="bin1", kind="udp")
        acct = "PA-BIN1"
        send_udp(port, [
            bin1_position(acct, "MNQZ5", "2", "21000.5", ts=TS, source="oms") +
            bin1_position(acct, "ESZ5", "-1", "6000.25", ts=TS, source="oms"),
            bin1_order(acct, "D17158695", "MNQZ5", 1, 1, "1", "20990.0", ts=TS, source="oms") +
            bin1_order(acct, "D17158696", "ESZ5", 2, 1, "2", "6010.00", ts=TS, source="oms"),
            bin1_balance(acct, "50000.0", "12.5", "-3.0", ts=TS, source="oms") +
            bin1_account(acct, "D17158695", 2, ts=TS, source="oms"),
        ])
        self.wait_values(c, expected_values(acct), m)
        send_udp(port, [bin1_order(acct, "D17158695", "", 0, 2, None, None, source="oms")])
        self.assertTrue(wait_for(
            lambda: c.cmd("GET", "hft:orders:pending:%s:D17158695" % acct) is None,
            CONVERGE_TIMEOUT))
        self.assert_clean_exit(m)

    def test_templates_prefix_and_classes_off(self):
        r = self.start_redis()
        c = self.client(r)
        m, port = self.start_fed(r, LONG_INI + "prefix = md:\npositions_key = pos:{account}\n"
                                 "order_key = ord:{account}/{order_id}\norder_list_key =\n"
                                 "balances_key =\n")
        send_stream(design_messages(), port=port)
        self.assertTrue(wait_for(lambda: c.cmd("GET", "md:hft:accounts:" + ACCT) is not None,
                                 CONVERGE_TIMEOUT), m.tail())
        self.assertTrue(wait_for(lambda: c.cmd("GET", "md:ord:%s/D17158696" % ACCT) is not None,
                                 CONVERGE_TIMEOUT), m.tail())
        want = expected_values()
        self.assertEqual(c.cmd("GET", "md:pos:" + ACCT), want["hft:positions:%s:all" % ACCT])
        keys = sorted(c.scan_all("*"))
        self.assertEqual(keys, sorted(["md:hft:accounts:" + ACCT, "md:pos:" + ACCT,
                                       "md:ord:%s/D17158695" % ACCT,
                                       "md:ord:%s/D17158696" % ACCT]))
        self.assert_clean_exit(m)

    def test_quiet_account_expires_heartbeat_only_account_stays(self):
        # Four-second positions, sources dead after one quiet second: a live
        # account's key is re-asserted every two seconds (two to spare), a
        # quiet one's expires at most five seconds after its last message.
        ttl = 4
        r = self.start_redis()
        c = self.client(r)
        port = free_port("udp")
        sub = r.client(timeout=CONVERGE_TIMEOUT)
        self.addCleanup(sub.close)
        sub.sock.sendall(Resp.encode(["SUBSCRIBE", "mdcache:events"]))
        self.assertEqual(sub._reply()[0], "subscribe")
        m = self.start_mdcache(r, ["udp://127.0.0.1:%d?format=bin1" % port],
                               ini="[keys]\npositions_ttl = %d\nsource_timeout = 1\n"
                                   "publish_events = yes\n" % ttl)
        send_udp(port, [bin1_position("QUIET", "ES", "1", "10", source="s-quiet"),
                        bin1_position("BEAT", "ES", "1", "10", source="s-beat")])
        qk, bk = "hft:positions:QUIET:all", "hft:positions:BEAT:all"
        self.assertTrue(wait_for(lambda: None not in c.get_many([qk, bk]).values(),
                                 CONVERGE_TIMEOUT), m.tail())
        hb = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(hb.close)
        missing = []
        # Heartbeats from s-beat only, for at least three TTLs and until the
        # watcher counted the quiet account's expiry (bounded: 60 s).
        start = time.monotonic()
        while time.monotonic() - start < 60 * SLOW:
            hb.sendto(bin1_heartbeat("s-beat"), ("127.0.0.1", port))
            if c.cmd("GET", bk) is None:
                missing.append(round(time.monotonic() - start, 2))
            done = time.monotonic() - start > 3 * ttl and c.cmd("GET", qk) is None
            if done and m.stats().get("expired_positions", 0) >= 1:
                break
            time.sleep(0.2)
        self.assertIsNone(c.cmd("GET", qk), "the quiet account's positions never expired")
        self.assertEqual(missing, [], "heartbeats alone must keep the account's key")
        self.assertGreaterEqual(m.wait_stats(lambda s: s.get("expired_positions", 0) >= 1)
                                ["expired_positions"], 1)
        self.assertIn("stale: hft:positions:QUIET:all expired", m.log())
        # The event names the class and the account.
        msg = sub._reply()
        self.assertEqual(msg[0], "message", msg)
        ev = json.loads(msg[2])
        self.assertEqual((ev["event"], ev["class"], ev["key"], ev["account"]),
                         ("expired", "positions", qk, "QUIET"))
        self.assert_clean_exit(m)


if __name__ == "__main__":
    import unittest
    unittest.main()
