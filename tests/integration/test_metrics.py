"""Prometheus metrics (issue #7, item 1): with --metrics HOST:PORT, mdcache
serves the text exposition format at /metrics from its own thread. A real
run is scraped and parsed here with a small parser of the format; its
counters must match what was sent and what the final stats line says."""

import re
import socket
import time
import urllib.error
import urllib.request

from harness import (CONVERGE_TIMEOUT, LONG_LIVENESS_INI, SLOW, MdTestCase, free_port,
                     run_mdcache_once, wait_for, wait_keys)

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text):
    """{family: {"help", "type", "samples": [(name, {label: value}, float)]}};
    raises AssertionError on anything the 0.0.4 text format does not allow
    or on a sample whose family has no HELP and TYPE before it."""
    fams = {}
    cur = None
    assert text.endswith("\n"), "exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert name not in fams, "line %d: family %s twice" % (n, name)
            fams[name] = {"help": help_, "type": None, "samples": []}
            cur = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == cur and fams[name]["type"] is None, "line %d: %r" % (n, line)
            assert typ in ("counter", "gauge", "histogram"), "line %d: %r" % (n, line)
            fams[name]["type"] = typ
            continue
        assert not line.startswith("#") and line, "line %d: %r" % (n, line)
        m = SAMPLE_RE.match(line)
        assert m, "line %d: not a sample: %r" % (n, line)
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL_RE.match(labels_text, pos)
                assert lm, "line %d: bad labels %r" % (n, labels_text)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        assert cur and fams[cur]["type"], "line %d: sample before HELP/TYPE: %r" % (n, line)
        if fams[cur]["type"] == "histogram":
            assert name in (cur + "_bucket", cur + "_sum", cur + "_count"), (n, line)
        else:
            assert name == cur, "line %d: %s among family %s's samples" % (n, name, cur)
        fams[cur]["samples"].append((name, labels, float(value)))
    for name, f in fams.items():
        assert f["type"], "family %s without TYPE" % name
        if f["type"] == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
    return fams


def total(fams, family, **match):
    return sum(v for name, labels, v in fams[family]["samples"]
               if name == family and all(labels.get(k) == w for k, w in match.items()))


def http_get(port, path="/metrics", timeout=10):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout * SLOW) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def raw_request(port, chunks, timeout=10):
    """Sends chunks (bytes) one send() each, with a pause between; returns the
    whole response read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW) as s:
        for c in chunks:
            s.sendall(c)
            time.sleep(0.05)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


class MetricsTest(MdTestCase):
    def start_with_metrics(self, r, extra_ini=""):
        feed = free_port()
        mport = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % feed],
                               ini=LONG_LIVENESS_INI + extra_ini,
                               args=["--metrics", "127.0.0.1:%d" % mport])
        return m, feed, mport

    def test_counters_match_what_was_sent(self):
        r = self.start_redis()
        m, feed, mport = self.start_with_metrics(r)
        self.assertIn("metrics on http://127.0.0.1:%d/metrics" % mport, m.log())
        N, SYMS = 6000, 250
        expected = self.feed(feed, "MET", "met", symbols=SYMS, ticks=N, seed=7)
        wait_keys(self.client(r), expected, mdcache=m)

        def settled():
            status, headers, body = http_get(mport)
            self.assertEqual(status, 200)
            self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            f = parse_exposition(body)
            done = (total(f, "mdcache_ticks_in_total") == N
                    and total(f, "mdcache_applied_total") == N
                    and total(f, "mdcache_dirty") == 0 and total(f, "mdcache_inflight") == 0)
            return f if done else None
        f = wait_for(settled, CONVERGE_TIMEOUT)
        self.assertIsNotNone(f, "metrics never showed %d ticks settled; log:\n%s" % (N, m.tail()))

        workers = len(f["mdcache_ticks_in_total"]["samples"])
        self.assertEqual(workers, 2, "--cpus 0,1: one series per worker")
        self.assertEqual(total(f, "mdcache_workers"), 2)
        self.assertEqual(total(f, "mdcache_keys"), SYMS)
        self.assertEqual(total(f, "mdcache_decode_errors_total"), 0)
        self.assertEqual(total(f, "mdcache_drops_total"), 0)
        self.assertEqual(total(f, "mdcache_redis_errors_total"), 0)
        price_written = total(f, "mdcache_keys_written_total", **{"class": "price"})
        self.assertGreaterEqual(price_written, SYMS)
        self.assertEqual(total(f, "mdcache_keys_written_total", **{"class": "account"}), 0)
        self.assertGreater(total(f, "mdcache_batches_total"), 0)
        # Finer: every write class, and ticks by feed and type.
        self.assertEqual(total(f, "mdcache_writes_total", **{"class": "price"}), price_written)
        self.assertEqual(total(f, "mdcache_writes_total", **{"class": "positions"}), 0)
        spec = "tcp://127.0.0.1:%d?format=jsonl" % feed
        by_type = {t: total(f, "mdcache_ticks_received_total", feed=spec, type=t)
                   for t in ("quote", "trade", "heartbeat", "reset", "position", "order",
                             "balance", "account")}
        self.assertEqual(sum(by_type.values()), N, by_type)
        self.assertGreater(by_type["quote"], 0, by_type)
        self.assertGreater(by_type["trade"], 0, by_type)
        self.assertGreater(total(f, "mdcache_redis_sent_bytes_total"), 0)
        self.assertEqual(total(f, "mdcache_expired_keys_total"), 0)
        self.assertIn("mdcache_live_sources", f)
        for name, labels, v in f["mdcache_expired_keys_total"]["samples"]:
            self.assertNotIn("worker", labels, "the watcher's counters are process-wide")

        # Histograms: cumulative, +Inf == _count, one set per worker.
        for fam in ("mdcache_tick_to_ack_seconds", "mdcache_redis_rtt_seconds",
                    "mdcache_batch_keys"):
            self.assertEqual(f[fam]["type"], "histogram")
            count = 0
            for w in ("0", "1"):
                buckets = [(lab["le"], v) for n, lab, v in f[fam]["samples"]
                           if n == fam + "_bucket" and lab["worker"] == w]
                vals = [v for _, v in buckets]
                self.assertEqual(vals, sorted(vals), "%s worker %s not cumulative" % (fam, w))
                self.assertEqual(buckets[-1][0], "+Inf")
                c = [v for n, lab, v in f[fam]["samples"]
                     if n == fam + "_count" and lab["worker"] == w]
                self.assertEqual(c, [buckets[-1][1]])
                count += c[0]
            self.assertGreater(count, 0, fam)
        batches = total(f, "mdcache_batches_total")
        self.assertEqual(sum(v for n, _, v in f["mdcache_batch_keys"]["samples"]
                             if n == "mdcache_batch_keys_count"), batches)

        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], N)
        self.assertEqual(fin["keys_written"], price_written,
                         "nothing was dirty at the scrape: the final count must match it")
        self.assertEqual(fin["batches"], batches)

    def test_http_details(self):
        r = self.start_redis()
        m, feed, mport = self.start_with_metrics(r)
        for path in ("/", "/metricsx", "/metrics/", "/favicon.ico"):
            status, _, body = http_get(mport, path)
            self.assertEqual(status, 404, path)
        # A query string is not part of the path.
        self.assertEqual(http_get(mport, "/metrics?x=1")[0], 200)

        resp = raw_request(mport, [b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"])
        self.assertTrue(resp.startswith(b"HTTP/1.1 405 "), resp[:60])
        # The request in pieces, one byte of the blank line at a time.
        resp = raw_request(mport, [b"GE", b"T /met", b"rics HTTP/1.1\r\nHo", b"st: x\r\n",
                                   b"\r", b"\n"])
        self.assertTrue(resp.startswith(b"HTTP/1.1 200 OK\r\n"), resp[:60])
        self.assertIn(b"\r\nConnection: close\r\n", resp)
        head, _, body = resp.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        self.assertEqual(len(body), length)
        parse_exposition(body.decode())
        # Bounded request size.
        resp = raw_request(mport, [b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000])
        self.assertTrue(resp.startswith(b"HTTP/1.1 431 "), resp[:60])

        # A client that connects and says nothing is dropped; the next is served.
        idle = socket.create_connection(("127.0.0.1", mport))
        self.addCleanup(idle.close)
        t0 = time.monotonic()
        self.assertEqual(http_get(mport, timeout=10)[0], 200)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        self.assertTrue(m.alive())
        self.assert_clean_exit(m)

    def test_bad_address_exits_2(self):
        for addr in ("localhost:9464", "127.0.0.1", "127.0.0.1:0", "[::1]9464", "x"):
            rc, _, err = run_mdcache_once(["--listen", "udp://127.0.0.1:7400",
                                           "--metrics", addr])
            self.assertEqual(rc, 2, (addr, err))
            self.assertIn("--metrics: ", err)
        rc, _, err = run_mdcache_once(["--listen", "udp://127.0.0.1:7400", "--check-config",
                                       "--metrics", "127.0.0.1:9464"])
        self.assertEqual(rc, 0, err)

        # A taken port is refused at start, before Redis is even asked.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            rc, _, err = run_mdcache_once(["--listen", "udp://127.0.0.1:%d" % free_port("udp"),
                                           "--redis", "redis://127.0.0.1:%d/0" % free_port(),
                                           "--metrics", "127.0.0.1:%d" % port])
        self.assertEqual(rc, 2, err)
        self.assertIn("metrics 127.0.0.1:%d: Address already in use" % port, err)

    def test_off_by_default(self):
        r = self.start_redis()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % free_port()],
                               ini=LONG_LIVENESS_INI)
        self.assertNotIn("metrics on", m.log())
        self.assert_clean_exit(m)
