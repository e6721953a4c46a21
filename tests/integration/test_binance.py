"""format=binance against a real redis-server: raw Binance WebSocket stream
payloads (bookTicker spot and futures, trade, aggTrade, alone and in the
combined-stream wrapper) land in price:{symbol}:latest with exact decimals;
the same capture over two connections gives exactly the keys of one; other
streams are skipped and counted, not errors."""

import socket
import threading
import unittest

from harness import (LONG_LIVENESS_INI, MdTestCase, free_port, price_json, send_stream, send_udp,
                     wait_keys)


def line(s):
    return (s + "\n").encode()


def wrap(stream, payload):
    return '{"stream":"%s","data":%s}' % (stream, payload)


# A capture as a client subscribed to these streams would record it.
SPOT_BOOK = ('{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",'
             '"a":"25.36520000","A":"40.66000000"}')
SPOT_BOOK_OLD = ('{"u":400900216,"s":"BNBUSDT","b":"1.00000000","B":"1.00000000",'
                 '"a":"2.00000000","A":"1.00000000"}')
FUT_BOOK = ('{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BTCUSDT",'
            '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}')


def trade(tid, price, qty, t_ms, sym="BNBBTC"):
    return ('{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%s","q":"%s","T":%d,"m":true,"M":true}'
            % (t_ms + 1, sym, tid, price, qty, t_ms))


def agg(aid, price, qty, t_ms, sym="ETHBTC"):
    return ('{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%s","q":"%s","f":100,"l":105,"T":%d,'
            '"m":true,"M":true}' % (t_ms + 1, sym, aid, price, qty, t_ms))


SKIPPED = [
    '{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,'
    '"b":[["0.0024","10"]],"a":[["0.0026","100"]]}',
    '{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"s":"BNBBTC",'
    '"i":"1m","o":"0.0010","c":"0.0020","x":false}}',
    '{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}',
    '{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","b":"0.0024","a":"0.0026"}',
    wrap("btcusdt@markPrice", '{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
                              '"p":"11794.15000000","T":1562306400000}'),
    wrap("!miniTicker@arr", '[{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC"}]'),
    '{"result":null,"id":1}',
]

CAPTURE = [
    SPOT_BOOK,
    SKIPPED[0],
    wrap("btcusdt@bookTicker", FUT_BOOK),
    trade(12345, "0.00100000", "100", 1672515782136),
    SKIPPED[1],
    wrap("bnbbtc@trade", trade(12346, "0.00120000", "0.5", 1672515782140)),
    trade(12345, "0.00100000", "100", 1672515782136),     # repeated: not counted again
    trade(12344, "0.00500000", "7", 1672515782130),       # older: dropped
    SKIPPED[2],
    SPOT_BOOK_OLD,                                         # older update id: dropped
    agg(5001, "0.05", "1.000", 1672515782150),
    SKIPPED[3],
    wrap("ethbtc@aggTrade", agg(5002, "0.04900", "1.000", 1672515782151)),
    agg(5001, "0.05", "1.000", 1672515782150),             # repeated
    SKIPPED[4],
    trade(1, "64000.10", "0.00100000", 1672515782160, sym="BTCUSDT"),
    SKIPPED[5],
    SKIPPED[6],
]
TICKS = len(CAPTURE) - len(SKIPPED)
DUPLICATES = 4

EXPECTED = {
    # spot bookTicker has no time: Timestamp stays null
    "price:BNBUSDT:latest": price_json(None, "25.35190000", "25.36520000"),
    "price:BTCUSDT:latest": price_json("64000.10", "25.35190000", "25.36520000", "0.00100000",
                                       "64000.10", "64000.10", 1672515782160),
    "price:BNBBTC:latest": price_json("0.00120000", None, None, "100.5", "0.00120000",
                                      "0.00100000", 1672515782140),
    "price:ETHBTC:latest": price_json("0.04900", None, None, "2.000", "0.05", "0.04900",
                                      1672515782151),
}


def capture_bytes():
    return b"".join(line(x) for x in CAPTURE)


class BinanceTest(MdTestCase):
    def start(self, listen, cpus="0,1"):
        r = self.start_redis()
        m = self.start_mdcache(r, [listen], ini=LONG_LIVENESS_INI, cpus=cpus)
        return r, m, self.client(r)

    def check_final(self, m, connections=1, errors=0):
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin.get("skipped"), connections * len(SKIPPED), "final: %s" % fin)
        self.assertEqual(fin.get("decode_errors"), errors, "final: %s" % fin)
        self.assertEqual(fin.get("ticks_in"), connections * TICKS, "final: %s" % fin)
        self.assertEqual(fin.get("duplicates"), DUPLICATES + (connections - 1) * TICKS,
                         "final: %s" % fin)
        self.assertEqual(fin.get("applied"), TICKS - DUPLICATES, "final: %s" % fin)
        return fin

    def test_each_kind_tcp(self):
        port = free_port()
        r, m, c = self.start("tcp://127.0.0.1:%d?format=binance" % port)
        data = capture_bytes() + b'{"e":"trade","s":"BNBBTC","t":1,"p":"NaN","q":"1"}\n'
        # cut into small sends so lines are split across reads
        send_stream(data, port=port, chunks=[data[i:i + 61] for i in range(0, len(data), 61)])
        wait_keys(c, EXPECTED, mdcache=m)
        self.assertEqual(sorted(c.scan_all("price:*:latest")), sorted(EXPECTED))
        fin = self.check_final(m, errors=1)
        self.assertEqual(fin.get("err_bad_number"), 1, "final: %s" % fin)

    def test_udp_one_message_per_datagram(self):
        port = free_port("udp")
        # one worker: datagrams keep their order, as on one exchange connection
        r, m, c = self.start("udp://127.0.0.1:%d?format=binance" % port, cpus="0")
        send_udp(port, [x.encode() for x in CAPTURE])  # no newline: a datagram is a line
        wait_keys(c, EXPECTED, mdcache=m)
        self.check_final(m)

    def test_two_connections_give_the_result_of_one(self):
        """Two redundant connections to the same streams, sending at once in
        small interleaved pieces: exactly the keys and values of one, each
        trade counted once in Volume."""
        port = free_port()
        r, m, c = self.start("tcp://127.0.0.1:%d?format=binance" % port)
        data = capture_bytes()
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        for s in socks:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        m.wait_stats(lambda s: s.get("connections", 0) >= 2)
        go = threading.Barrier(2)

        def run(s, step):
            go.wait()
            for i in range(0, len(data), step):
                s.sendall(data[i:i + step])
            s.shutdown(socket.SHUT_WR)

        threads = [threading.Thread(target=run, args=(s, step))
                   for s, step in zip(socks, (97, 131))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_keys(c, EXPECTED, mdcache=m)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 2 * TICKS)
        for s in socks:
            s.close()
        self.assertEqual(sorted(c.scan_all("price:*:latest")), sorted(EXPECTED))
        self.check_final(m, connections=2)

    def test_same_capture_twice_sequentially(self):
        """A reconnecting client that replays what it already sent (the
        second connection only after the first ended) changes nothing."""
        port = free_port()
        r, m, c = self.start("tcp://127.0.0.1:%d?format=binance" % port)
        send_stream(capture_bytes(), port=port)
        wait_keys(c, EXPECTED, mdcache=m)
        send_stream(capture_bytes(), port=port)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 2 * TICKS)
        wait_keys(c, EXPECTED, mdcache=m)
        self.check_final(m, connections=2)


if __name__ == "__main__":
    unittest.main()
