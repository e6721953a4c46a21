#!/usr/bin/python3
"""redis-py baseline for the mdcache bench (issue #3): the feed-to-Redis loop
users run today, in two flavours.

  --mode setex     one synchronous r.setex(key, ttl, value) per tick (the seeds'
                   way)                                     -> "redispy-setex"
  --mode pipeline  one r.pipeline(transaction=False) per received batch (UDP
                   datagram or TCP recv chunk) holding one setex per tick, then
                   execute()                                -> "redispy-pipeline"

Run with Debian's /usr/bin/python3 and python3-redis (redis-py 4.3.4):

  /usr/bin/python3 bench/baselines/redispy_baseline.py --mode setex \\
      --listen 'udp://127.0.0.1:7400?format=bin1' --redis redis://127.0.0.1:6379/0 \\
      --report /tmp/redispy.json

Prints `ready` on stderr once listening and Redis answered PING; on SIGTERM or
SIGINT stops reading, writes the report (see baseline_common.write_report) and
exits 0.
"""
import os
import selectors
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_common as bc  # noqa: E402

try:
    import redis
except ImportError:
    sys.exit("redispy_baseline: redis-py is missing: apt-get install python3-redis, "
             "and run with /usr/bin/python3")

SHUTDOWN_TIMEOUT = 5


class _ShutdownTimeout(Exception):
    pass


class Baseline:
    def __init__(self, args):
        self.args = args
        self.mode = args.mode
        self.system = "redispy-" + args.mode
        self.ttl = args.ttl
        self.r = redis.Redis.from_url(args.redis)
        self.state = bc.State()
        self.ticks = 0
        self.keys_written = 0
        self.write_errors = 0
        self.decode_errors = 0
        self.latency = bc.Hist()
        self.rtt = bc.Hist()
        self.batch = bc.Hist()
        self.stop = False
        self.handle = self.handle_setex if self.mode == "setex" else self.handle_pipeline

    # ---- writing --------------------------------------------------------

    def writes(self, ticks):
        """Applies the ticks in order; yields (key, value, origin_ns) per write."""
        st = self.state
        value = st.value
        for t in ticks:
            if t[0] == bc.RESET:
                hit = st.reset(t)
                for i, s in enumerate(hit):
                    yield s.key, value(s), t[7] if i == len(hit) - 1 else None
                continue
            s = st.apply(t)
            if s is not None:
                yield s.key, value(s), t[7]

    def handle_setex(self, ticks):
        self.ticks += sum(1 for t in ticks if t[0] != bc.RESET)
        r = self.r
        ttl = self.ttl
        mono = time.monotonic_ns
        for key, value, origin in self.writes(ticks):
            t0 = mono()
            try:
                r.setex(key, ttl, value)
            except redis.RedisError:
                self.write_errors += 1
                continue
            t1 = mono()
            self.keys_written += 1
            self.rtt.record(t1 - t0)
            self.batch.record(1)
            if origin is not None:
                self.latency.record(t1 - origin)

    def handle_pipeline(self, ticks):
        self.ticks += sum(1 for t in ticks if t[0] != bc.RESET)
        ttl = self.ttl
        origins = []
        pipe = self.r.pipeline(transaction=False)
        for key, value, origin in self.writes(ticks):
            pipe.setex(key, ttl, value)
            origins.append(origin)
        n = len(origins)
        if not n:
            return
        t0 = time.monotonic_ns()
        try:
            res = pipe.execute(raise_on_error=False)
        except redis.RedisError:
            self.write_errors += n
            return
        t1 = time.monotonic_ns()
        self.rtt.record(t1 - t0)
        self.batch.record(n)
        lat = self.latency
        for ok, origin in zip(res, origins):
            if ok is True:
                self.keys_written += 1
                if origin is not None:
                    lat.record(t1 - origin)
            else:
                self.write_errors += 1

    # ---- reading --------------------------------------------------------

    def run(self):
        sel = selectors.DefaultSelector()
        for i, (transport, host, port, fmt) in enumerate(self.args.listen):
            if transport == "udp":
                s = bc.udp_socket(host, port)
                sel.register(s, selectors.EVENT_READ, ("udp", bc.datagram_decoder(fmt), -1 - i))
            else:
                s = bc.tcp_listener(host, port)
                sel.register(s, selectors.EVENT_READ, ("listen", fmt))
        self.r.ping()

        def on_signal(signo, frame):
            if not self.stop:
                self.stop = True
                # Writes are synchronous: the one in flight is all there is to
                # wait for. A Redis that stopped answering must not hold us.
                signal.signal(signal.SIGALRM, on_alarm)
                signal.alarm(SHUTDOWN_TIMEOUT)

        def on_alarm(signo, frame):
            raise _ShutdownTimeout

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print("ready", file=sys.stderr, flush=True)

        conn_ids = 0
        try:
            while not self.stop:
                for key, _ in sel.select(0.2):
                    kind = key.data[0]
                    sock = key.fileobj
                    if kind == "udp":
                        decode, src = key.data[1], key.data[2]
                        for _ in range(256):
                            if self.stop:
                                break
                            try:
                                data = sock.recv(65536)
                            except BlockingIOError:
                                break
                            ticks = []
                            self.decode_errors += decode(data, src, ticks)
                            if ticks:
                                self.handle(ticks)
                    elif kind == "listen":
                        try:
                            conn, _addr = sock.accept()
                        except BlockingIOError:
                            continue
                        conn.setblocking(False)
                        conn_ids += 1
                        sel.register(conn, selectors.EVENT_READ,
                                     ("conn", bc.stream_decoder(key.data[1], conn_ids)))
                    else:
                        stream = key.data[1]
                        try:
                            chunk = sock.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            chunk = b""
                        ticks = []
                        if chunk:
                            self.decode_errors += stream.feed(chunk, ticks)
                        else:
                            sel.unregister(sock)
                            sock.close()
                            self.decode_errors += stream.close(ticks)
                        if ticks:
                            self.handle(ticks)
                    if self.stop:
                        break
        except _ShutdownTimeout:
            print("redispy_baseline: Redis did not answer within "
                  f"{SHUTDOWN_TIMEOUT} s of the stop signal", file=sys.stderr)
        finally:
            signal.alarm(0)
        drops = bc.udp_kernel_drops([port for transport, _h, port, _f in self.args.listen
                                     if transport == "udp"])
        bc.write_report(self.args.report, self.system, self.ticks, self.keys_written,
                        self.write_errors, self.decode_errors, self.latency, self.rtt,
                        self.batch, duplicates=self.state.duplicates,
                        resets=self.state.resets, kernel_drops=drops)


def main():
    args = bc.parse_args("redispy_baseline", __doc__.split("\n\n")[0],
                         modes=["setex", "pipeline"])
    b = Baseline(args)
    try:
        b.run()
    except OSError as e:
        print(f"redispy_baseline: {e}", file=sys.stderr)
        return 1
    except redis.RedisError as e:
        print(f"redispy_baseline: redis: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
