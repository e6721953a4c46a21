#!/usr/bin/env python3
"""mdcache writing to Redis Cluster (issue #6): what the cluster costs on
this machine, and how long a failover takes to converge.

Part 1, throughput and latency (--part throughput). For every symbol count
and offered rate (paced rates, then flat out), three configurations, run
--repeats times each, interleaved (the order turned around every repeat):

  standalone  one redis-server, cluster mode off (what mdcache wrote to before #6)
  cluster-1   a Redis Cluster of one primary owning all 16384 slots
  cluster-3   a Redis Cluster of three primaries (redis-cli --cluster create), no replicas

Every point starts fresh servers (all of them pinned to --redis-cpu), mdcache
with one worker (--cpus --sut-cpu, the process pinned there too), and
build/mdgen pinned to --gen-cpu sending UDP bin1 exactly as bench/run.py
drives it (open loop, each tick stamped with its scheduled send time). Then
every key is read back from the node that owns it and compared byte for
byte with the generator's model; then mdcache is stopped with SIGTERM and
its --report gives ticks, keys written, the latency histogram (tick's
scheduled send to Redis's acknowledgement, latency_ns), the Redis round
trip (rtt_ns), the batch sizes and the cluster counters (cluster_moved,
cluster_ask, cluster_down, topology_updates). A point is correct when every
key is exact, no tick was lost, no error was counted, no MOVED/ASK was seen
(nothing moves during these runs) and mdcache exited 0.

Part 2, failover (--part failover). A cluster of three primaries with one
replica each, every node on --redis-cpu; mdcache and mdgen as above, mdgen
at --failover-rate over --failover-symbols for a bounded time. Next to it
this harness feeds marker symbols (a quote every --marker-ms, its round
number in the price): half of them hash to the primary that will be killed,
half to the others. --kill-after s into the stream one primary (a different
one each run) is killed with SIGKILL. Measured:

  promote   kill -> its replica answers ROLE with "master" (polled every 5 ms);
  map       promotion -> mdcache logs a worker's slot map covering every slot again;
  converge  promotion -> every marker key, read from its owner (the promoted
            replica for the killed primary's slots), holds a round at least as
            new as the last one sent before the promotion: every write made
            between the kill and the promotion is on the new owner;
  final     feed stopped (both mdgen and markers, --feed-after-kill s after the
            kill) -> every key of the generator and every marker exact.

Also: how long the markers on the surviving primaries went without a write
(the cluster refuses every write, on every node, between the moment the
dead primary is marked FAIL and the promotion: cluster_state:fail).

  bench/cluster.py                        full run (10-15 minutes here)
  bench/cluster.py --quick                smoke test, under a minute
  bench/cluster.py --part failover --failover-runs 5

Prints the tables (markdown) on stdout; --out PATH also writes PATH.md and
PATH.json (every run). Exit 1 if any run was not correct. Python standard
library only.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
from harness import (ClusterClient, RedisCluster, RedisServer, RespError,  # noqa: E402
                     bin1_quote, free_port, key_slot, load_expect, parse_counters, wait_for)
import report  # noqa: E402
from report import median  # noqa: E402
from run import ForeignLoad, MachineTuning, Point, bench_ini, versions, wait_quiet  # noqa: E402

BUILD = os.environ.get("MD_BUILD", os.path.join(ROOT, "build"))
CONFIGS = ("standalone", "cluster-1", "cluster-3")
NODE_TIMEOUT_MS = 2000  # what the harness gives every cluster node (--cluster-node-timeout)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def wall(stamp):
    """mdcache's log time stamp (UTC, ms) as epoch seconds."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# ------------------------------------------------------------ servers

def node_args():
    # A primary starts a diskless full sync 5 s after a replica asks by
    # default, and a replica that never synced cannot be promoted: at once.
    return ["--repl-diskless-sync-delay", "0"]


class Servers:
    """The Redis side of one point: a standalone server, or a cluster of n
    primaries with r replicas each, every process pinned to `cpu`. nodes:
    every RedisServer; url: mdcache's --redis (every node as a seed)."""

    def __init__(self, kind, cpu, primaries=1, replicas=0):
        self.kind, self.cluster, self.single = kind, None, None
        prefix = ["taskset", "-c", str(cpu)]
        try:
            if kind == "standalone":
                self.single = RedisServer(prefix=prefix).start()
                self.nodes = [self.single]
            elif primaries == 1 and replicas == 0:
                # redis-cli --cluster create wants three primaries: one node
                # takes every slot by hand.
                self.single = RedisServer(cluster=True, prefix=prefix, args=node_args()).start()
                self.nodes = [self.single]
                c = self.single.client()
                try:
                    c.cmd("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
                finally:
                    c.close()
                if not wait_for(self._all_ok, 30, interval=0.05):
                    raise RuntimeError("one-node cluster not ok")
            else:
                self.cluster = RedisCluster(primaries=primaries, replicas=replicas, prefix=prefix,
                                            args=node_args())
                self.cluster.start()
                self.nodes = self.cluster.nodes
                if not wait_for(self._all_ok, 60, interval=0.1):
                    raise RuntimeError("cluster not ok")
                if replicas and not wait_for(self.replicas_synced, 60, interval=0.1):
                    raise RuntimeError("replicas not in sync")
        except BaseException:
            self.cleanup()
            raise
        self.url = ("redis://%s/0" % ",".join("127.0.0.1:%d" % n.port for n in self.nodes))

    def live(self):
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def _info(self, n, section):
        c = n.client(timeout=2)
        try:
            return c.cmd("INFO", section) if section != "cluster-info" else c.cmd("CLUSTER", "INFO")
        finally:
            c.close()

    def _all_ok(self):
        try:
            return all("cluster_state:ok" in self._info(n, "cluster-info") for n in self.live())
        except (OSError, ConnectionError, RespError):
            return False

    def replicas_synced(self):
        """Every replica's link to its primary is up and its first sync done
        (only then can it take over): the harness's check."""
        return self.cluster is None or self.cluster.replicas_synced()

    def by_id(self, node_id):
        """ClusterClient asks for nodes by id; the one-node cluster has no
        RedisCluster to know them, so it finds them by port instead."""
        return self.cluster.by_id(node_id) if self.cluster else None

    def nodes_view(self, via):
        """CLUSTER NODES of `via`: {id: (port, flags, master_id, slots set)} and myself's id."""
        c = via.client(timeout=5)
        try:
            text = c.cmd("CLUSTER", "NODES")
        finally:
            c.close()
        out, me = {}, None
        for line in text.splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            slots = set()
            for s in f[8:]:
                if s.startswith("["):
                    continue
                lo, _, hi = s.partition("-")
                slots.update(range(int(lo), int(hi or lo) + 1))
            flags = f[2].split(",")
            out[f[0]] = (port, flags, f[3], slots)
            if "myself" in flags:
                me = f[0]
        return out, me

    def node_at(self, port):
        return next(n for n in self.nodes if n.port == port)

    def cpu_s(self):
        """CPU seconds (user + system) the live redis-servers have used so
        far, from /proc/PID/stat (taskset execs redis-server: same pid)."""
        tot = 0
        for n in self.live():
            try:
                with open("/proc/%d/stat" % n.proc.pid) as f:
                    v = f.read().rsplit(")", 1)[1].split()
                tot += int(v[11]) + int(v[12])
            except (OSError, IndexError, ValueError):
                pass
        return tot / float(os.sysconf("SC_CLK_TCK"))

    def cleanup(self):
        if self.cluster:
            self.cluster.cleanup()
        if self.single:
            self.single.cleanup()


class Reader:
    """Reads keys from the node owning each: the one server, or, for a
    cluster, through the test harness's ClusterClient (which follows MOVED
    and ASK). A node that does not answer gives the key a value starting
    with '<' (no value mdcache writes)."""

    def __init__(self, servers):
        self.s = servers
        self.cc = ClusterClient(servers) if servers.kind != "standalone" else None
        self.c = None

    def close(self):
        if self.cc:
            self.cc.close()
        if self.c:
            self.c.close()
            self.c = None

    def get_many(self, keys):
        if self.cc:
            return self.cc.get_many(keys)
        try:
            if self.c is None:
                self.c = self.s.single.client(timeout=10)
            return self.c.get_many(list(keys))
        except (OSError, ConnectionError):
            if self.c:
                self.c.close()
            self.c = None
            return {k: "<unreachable>" for k in keys}

    def wrong(self, expected, keys=None):
        keys = list(expected) if keys is None else keys
        got = self.get_many(keys)
        return [k for k in keys if got.get(k) != expected[k]]


# ------------------------------------------------------------ mdcache

class Md:
    """build/mdcache pinned to --sut-cpu, one worker there, UDP bin1 listener."""

    def __init__(self, a, tmp, servers, stats_interval=0):
        self.port = free_port("udp")
        self.rep = os.path.join(tmp, "report.json")
        if os.path.exists(self.rep):
            os.unlink(self.rep)
        self.logp = os.path.join(tmp, "mdcache.log")
        ini = bench_ini(os.path.join(tmp, "mdcache.ini"))
        self.argv = ["taskset", "-c", str(a.sut_cpu), os.path.join(BUILD, "mdcache"), "-c", ini,
                     "--redis", servers.url, "--listen", "udp://127.0.0.1:%d?format=bin1" % self.port,
                     "--cpus", str(a.sut_cpu), "--stats-interval", str(stats_interval),
                     "--report", self.rep]
        self.logf = open(self.logp, "w+")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        if not Point._wait_ready(self.logf, self.proc):
            raise RuntimeError("mdcache did not start:\n" + self.tail())

    def tail(self, n=15):
        self.logf.flush()
        with open(self.logp) as f:
            return "".join(f.readlines()[-n:])

    def lines(self):
        self.logf.flush()
        with open(self.logp) as f:
            return f.read().splitlines()

    def stop(self):
        """SIGTERM; (exit code, rusage, peak RSS kB, report dict)."""
        ru, hwm = Point._stop(self.proc)
        rc = self.proc.returncode
        self.proc = None
        with open(self.rep) as f:
            r = json.load(f)
        return rc, ru, hwm, r

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def mdgen_argv(a, port, nsym, rate, ticks, duration, exp, seed=7):
    gen = [os.path.join(BUILD, "mdgen"), "--target", "udp://127.0.0.1:%d" % port, "--format", "bin1",
           "--symbols", str(nsym), "--rate", str(rate), "--duration", str(duration),
           "--per-datagram", str(a.per_datagram), "--cpus", str(a.gen_cpu), "--expect", exp,
           "--seed", str(seed), "--max-time", str(int(duration * 3 + 20))]
    if ticks:
        # Flat out, as bench/run.py: 8 KB datagrams of up to 64 ticks, so the
        # generator (on Redis's core) is not the first to run out of breath.
        gen += ["--ticks", str(ticks), "--per-datagram", "64", "--datagram-bytes", "8192"]
    return gen


ERR_COUNTERS = ("redis_errors", "redis_timeouts", "handshake_failures", "overflow", "drops", "kernel_drops",
                "decode_errors", "write_errors")
CLUSTER_COUNTERS = ("cluster_moved", "cluster_ask", "cluster_down", "topology_updates")


def counters(r):
    """Every numeric top-level value of mdcache's report that is a counter."""
    return {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ------------------------------------------------------------ part 1

def throughput_point(a, tmp, kind, nsym, rate, ticks):
    row = {"config": kind, "symbols": nsym, "offered_tps": rate, "flat_out_ticks": ticks}
    prim = {"standalone": 0, "cluster-1": 1, "cluster-3": 3}[kind]
    servers = md = None
    try:
        t_setup = time.monotonic()
        servers = Servers(kind, a.redis_cpu, primaries=max(1, prim))
        md = Md(a, tmp, servers)
        row["setup_s"] = round(time.monotonic() - t_setup, 2)
        rcpu0 = servers.cpu_s()
        exp = os.path.join(tmp, "expect.jsonl")
        g = subprocess.run(mdgen_argv(a, md.port, nsym, rate, ticks, a.duration, exp),
                           capture_output=True, text=True, timeout=a.duration * 3 + 60)
        if g.returncode != 0:
            raise RuntimeError("mdgen failed: %s" % g.stderr[-500:])
        gs = parse_counters([l for l in g.stdout.splitlines() if l.startswith("mdgen:")][-1])
        t_gen_end = time.monotonic()
        expected = load_expect(exp)
        rd = Reader(servers)
        t0 = time.monotonic()
        best, since, bad, drained, passes = None, t0, len(expected), None, 0
        try:
            while True:
                started = time.monotonic()
                bad = len(rd.wrong(expected))
                passes += 1
                now = time.monotonic()
                if bad == 0:
                    drained = started - t0
                    break
                if best is None or bad < best:
                    best, since = bad, now
                if now - since > a.stall_s or now - t0 > a.drain_max_s:
                    break
                time.sleep(0.2)
            after_gen = time.monotonic() - t_gen_end
            # Redis CPU for the writes: the checks' GETs are not the
            # system's work; one more pass measures what a pass costs.
            c_a = servers.cpu_s()
            rd.wrong(expected)
            redis_cpu = (c_a - rcpu0) - passes * (servers.cpu_s() - c_a)
        finally:
            rd.close()
        rc, ru, hwm, r = md.stop()
        lat, rtt, bat = report.Hist(r["latency_ns"]), report.Hist(r["rtt_ns"]), report.Hist(r["batch_keys"])
        el = gs["elapsed"]
        busy = el + (drained if drained is not None else after_gen)
        cpu = ru.ru_utime + ru.ru_stime
        q = lambda h, p: round(h.quantile(p) / 1e3, 1)
        c = counters(r)
        row.update({
            "sent": gs["sent"], "gen_elapsed_s": el, "gen_lag_p99_us": gs.get("lag_p99_us"),
            "gen_timed_out": bool(gs.get("timed_out")),
            "ticks": r["ticks"], "keys_written": r["keys_written"],
            "achieved_tps": round(min(r["ticks"], gs["sent"]) / busy) if busy else 0,
            "keys_per_s": round(r["keys_written"] / busy) if busy else 0,
            "coalescing": round(r["ticks"] / r["keys_written"], 2) if r["keys_written"] else None,
            "p50_us": q(lat, .5), "p90_us": q(lat, .9), "p99_us": q(lat, .99), "p999_us": q(lat, .999),
            "max_us": round(lat.max / 1e3, 1),
            "rtt_p50_us": q(rtt, .5), "rtt_p99_us": q(rtt, .99),
            "batch_p50": bat.quantile(.5), "batch_p99": bat.quantile(.99),
            "cpu_s": round(cpu, 3), "cpu_s_per_mtick": round(cpu / (r["ticks"] / 1e6), 3) if r["ticks"] else None,
            "rss_mb": round(hwm / 1024, 1),
            "redis_cpu_s": round(redis_cpu, 2),
            "redis_us_per_key": round(redis_cpu / r["keys_written"] * 1e6, 2) if r["keys_written"] else None,
            "keys_expected": len(expected), "keys_wrong": bad,
            "drain_s": round(drained, 2) if drained is not None else None,
            "lost_ticks": max(0, gs["sent"] - r["ticks"]), "exit_code": rc,
            "errors": {k: c[k] for k in ERR_COUNTERS if c.get(k)},
            "cluster": {k: c.get(k) for k in CLUSTER_COUNTERS},
            "counters": c,
            "histograms": {"latency_ns": r["latency_ns"], "rtt_ns": r["rtt_ns"], "batch_keys": r["batch_keys"]},
        })
        moved = (c.get("cluster_moved") or 0) + (c.get("cluster_ask") or 0)
        row["correct"] = (bad == 0 and row["lost_ticks"] == 0 and not row["errors"] and moved == 0
                          and rc == 0 and not row["gen_timed_out"])
        if not row["correct"]:
            row["log_tail"] = md_tail_lines(md)
    except Exception as e:  # a broken point is a row that says so
        row.update({"correct": False, "error": str(e)[:800]})
        if md:
            row["log_tail"] = md_tail_lines(md)
        log("  %s" % row["error"])
    finally:
        if md:
            md.cleanup()
        if servers:
            servers.cleanup()
    return row


def md_tail_lines(md, n=20):
    try:
        return [l for l in md.lines() if " stats: " not in l][-n:]
    except OSError:
        return []


def part_throughput(a, tmp, rows):
    plan = [(r, 0) for r in a.rate_list] + ([(0, a.flat_out_ticks)] if a.flat_out_ticks else [])
    for nsym in a.symbol_list:
        for rate, ticks in plan:
            for i in range(a.repeats):
                order = list(CONFIGS[i % 3:] + CONFIGS[:i % 3])
                for kind in order:
                    if a.quiet_wait:
                        wait_quiet(a.quiet_wait)
                    log("cluster-bench: %-10s %6d symbols, %s, repeat %d/%d" % (
                        kind, nsym, "flat out (%d ticks)" % ticks if not rate else "%d ticks/s" % rate,
                        i + 1, a.repeats))
                    for attempt in range(1 + a.retries):
                        fl = ForeignLoad()
                        row = throughput_point(a, tmp, kind, nsym, rate, ticks)
                        row["foreign_cpu_s"], row["foreign_cores"] = fl.cores()
                        row["repeat"] = i + 1
                        rows.append(row)
                        if row["foreign_cores"] <= a.max_foreign or attempt == a.retries:
                            break
                        # Other sessions' work on this 2-vCPU VM decides
                        # such a run more than the configuration does.
                        row["discarded"] = True
                        log("  -> other processes used %.2f cores during it: %s, run again" % (
                            row["foreign_cores"], "correct" if row.get("correct") else "NOT correct"))
                    if not row.get("error"):
                        log("  -> %s ticks/s, %s keys/s, p50 %s us, p99 %s us, RTT p50 %s us, batch p50 %s, "
                            "cluster %s, other load %s cores, %s" % (
                                row["achieved_tps"], row["keys_per_s"], row["p50_us"], row["p99_us"],
                                row["rtt_p50_us"], row["batch_p50"], row["cluster"], row["foreign_cores"],
                                "correct" if row["correct"] else "WRONG (%s keys wrong, %s lost, errors %s, exit %s)"
                                % (row["keys_wrong"], row["lost_ticks"], row["errors"], row["exit_code"])))


# ------------------------------------------------------------ part 2

class Markers(threading.Thread):
    """Sends one quote to every marker symbol every `period` s, round k
    carrying Bid k.25 / Ask k.50 and seq k (source "probe"), until stopped or
    `max_rounds`. sent[k] = monotonic time round k was sent."""

    def __init__(self, port, symbols, period, max_rounds, cpu):
        super().__init__(daemon=True)
        self.port, self.symbols, self.period, self.max_rounds, self.cpu = port, symbols, period, max_rounds, cpu
        self.sent = {}
        self.last = 0
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        os.sched_setaffinity(0, {self.cpu})
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            nxt = time.monotonic()
            for k in range(1, self.max_rounds + 1):
                if self.halt.is_set():
                    break
                ts = time.time_ns()
                frames = [bin1_quote(sym, "%d.25" % k, "%d.50" % k, seq=k, ts=ts, source="probe")
                          for sym in self.symbols]
                dg = b""
                for f in frames:
                    if len(dg) + len(f) > 1400:
                        s.sendto(dg, ("127.0.0.1", self.port))
                        dg = b""
                    dg += f
                if dg:
                    s.sendto(dg, ("127.0.0.1", self.port))
                with self.lock:
                    self.sent[k] = (time.monotonic(), ts // 1000000)
                    self.last = k
                nxt += self.period
                d = nxt - time.monotonic()
                if d > 0:
                    self.halt.wait(d)
        finally:
            s.close()

    def last_before(self, t):
        with self.lock:
            return max((k for k, (tk, _) in self.sent.items() if tk <= t), default=0)


def round_of(v):
    """The marker round a value holds (its Bid is k.25), or 0."""
    if not v or v.startswith("<"):
        return 0
    try:
        b = json.loads(v, parse_float=str).get("Bid")
        return int(str(b).split(".")[0]) if b is not None else 0
    except (ValueError, AttributeError):
        return 0


def pick_markers(slots, n, prefix):
    """n symbols PREFIX#### whose price key hashes into `slots`."""
    out, i = [], 0
    while len(out) < n and i < 1000000:
        sym = "%s%05d" % (prefix, i)
        if key_slot("price:%s:latest" % sym) in slots:
            out.append(sym)
        i += 1
    return out


def failover_run(a, tmp, run_idx):
    row = {"run": run_idx + 1, "rate": a.failover_rate, "symbols": a.failover_symbols,
           "node_timeout_ms": NODE_TIMEOUT_MS}
    servers = md = gen = markers = None
    conns = {}
    try:
        servers = Servers("cluster-3r", a.redis_cpu, primaries=3, replicas=1)
        view, me = servers.nodes_view(servers.nodes[0])
        prims = sorted((d for d in view.items() if "master" in d[1][1] and d[1][3]), key=lambda d: d[1][0])
        victim_id, (vport, _, _, vslots) = prims[run_idx % len(prims)]
        rep_id, rinfo = next((nid, d) for nid, d in view.items() if d[2] == victim_id)
        victim, replica = servers.node_at(vport), servers.node_at(rinfo[0])
        survivors = [servers.node_at(d[0]) for nid, d in prims if nid != victim_id]
        row.update({"victim_port": vport, "replica_port": replica.port, "victim_slots": len(vslots)})
        other_slots = set(range(16384)) - vslots
        m_victim = pick_markers(vslots, a.markers // 2, "PRBV")
        m_other = pick_markers(other_slots, a.markers // 2, "PRBO")
        md = Md(a, tmp, servers, stats_interval=0.1)
        os.sched_setaffinity(0, {a.poll_cpu})
        exp = os.path.join(tmp, "expect.jsonl")
        feed_s = a.kill_after + a.feed_after_kill
        gen = subprocess.Popen(mdgen_argv(a, md.port, a.failover_symbols, a.failover_rate, 0, feed_s, exp, seed=13),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t_gen = time.monotonic()
        markers = Markers(md.port, m_victim + m_other, a.marker_ms / 1e3,
                          int(feed_s * 1e3 / a.marker_ms) + 10, a.poll_cpu)
        markers.start()
        # Wait for the kill: every marker must have landed once by then.
        time.sleep(max(0.0, t_gen + a.kill_after - time.monotonic()))
        victim.kill()
        t_kill, w_kill = time.monotonic(), time.time()
        row["markers_before_kill"] = markers.last
        # (i) promotion: the replica says it is a master.
        rc_ = replica.client(timeout=2)
        conns[replica.port] = rc_
        t_prom = None
        deadline = t_kill + a.failover_timeout
        # Survivors' markers while the cluster is down: the longest any of
        # them went without a newer round (from the kill on).
        surv_conns = {n.port: n.client(timeout=2) for n in survivors}
        conns.update(surv_conns)
        owner_of = {}
        for sym in m_other:
            s = key_slot("price:%s:latest" % sym)
            owner_of[sym] = next(n for n in survivors if s in view[[nid for nid, d in view.items()
                                                                   if d[0] == n.port][0]][3])
        surv_stale_max = 0.0
        surv_round = {}

        def poll_survivors(now):
            nonlocal surv_stale_max
            by = {}
            for sym in m_other:
                by.setdefault(owner_of[sym], []).append(sym)
            rounds = []
            for n, syms in by.items():
                try:
                    vals = conns[n.port].pipeline([("GET", "price:%s:latest" % s) for s in syms])
                except (OSError, ConnectionError):
                    vals = [None] * len(syms)
                rounds += [round_of(v) if not isinstance(v, RespError) else 0 for v in vals]
            for sym, k in zip([s for n, ss in by.items() for s in ss], rounds):
                if k > surv_round.get(sym, 0):
                    surv_round[sym] = k
            # Staleness: how old the newest round every survivor marker holds is.
            lo = min(surv_round.get(s, 0) for s in m_other)
            if lo in markers.sent:
                # Only while rounds are still being sent: after the feed
                # stops no marker gets newer, and that is not a stall.
                with markers.lock:
                    t_last = markers.sent[markers.last][0] if markers.last else now
                surv_stale_max = max(surv_stale_max, min(now, t_last + markers.period) - markers.sent[lo][0])
            return lo

        while time.monotonic() < deadline:
            try:
                role = rc_.cmd("ROLE")
                if role and role[0] == "master":
                    t_prom = time.monotonic()
                    break
            except (OSError, ConnectionError, RespError):
                pass
            poll_survivors(time.monotonic())
            time.sleep(0.005)
        if t_prom is None:
            raise RuntimeError("replica 127.0.0.1:%d not promoted within %g s" % (replica.port, a.failover_timeout))
        w_prom = w_kill + (t_prom - t_kill)
        row["promote_s"] = round(t_prom - t_kill, 3)
        r_p = markers.last_before(t_prom)
        row["round_at_promotion"] = r_p
        # (ii) convergence: every marker, read from its owner, at round >= r_p.
        t_vconv = t_sconv = t_agree = None
        next_agree = 0.0
        while time.monotonic() < deadline and (t_vconv is None or t_sconv is None or t_agree is None):
            now = time.monotonic()
            if t_agree is None and now >= next_agree:
                # Every live node sees the replica as the owner of the slots.
                if all_agree(servers, replica, vslots):
                    t_agree = now
                next_agree = time.monotonic() + 0.02
                now = time.monotonic()
            if t_vconv is None:
                try:
                    vals = rc_.pipeline([("GET", "price:%s:latest" % s) for s in m_victim])
                    if all(not isinstance(v, RespError) and round_of(v) >= r_p for v in vals):
                        t_vconv = now
                except (OSError, ConnectionError):
                    pass
            lo = poll_survivors(now)
            if t_sconv is None and lo >= r_p:
                t_sconv = now
            time.sleep(0.005)
        converged = t_vconv is not None and t_sconv is not None
        if not converged:
            # What the new owner holds, and what mdcache says, for the report;
            # the run then ends as the others do, for mdcache's counters.
            diag = {"round_at_promotion": r_p, "last_round_sent": markers.last}
            try:
                vals = rc_.pipeline([("GET", "price:%s:latest" % s) for s in m_victim])
                diag["killed_markers_rounds_on_new_owner"] = sorted(set(
                    round_of(v) if not isinstance(v, RespError) else str(v) for v in vals))[:10]
                diag["new_owner_dbsize"] = rc_.cmd("DBSIZE")
            except (OSError, ConnectionError, RespError) as e:
                diag["new_owner"] = str(e)
            diag["survivor_rounds_min"] = min(surv_round.get(x, 0) for x in m_other)
            diag["redis_nodes"] = node_diag(servers)
            st = [l for l in md.lines() if " stats: " in l]
            diag["mdcache_stats"] = st[-1][:1200] if st else None
            row["diagnosis"] = diag
            row["error"] = ("markers did not converge within %g s of the kill (killed primary's: %s, others': %s)"
                            % (a.failover_timeout, "yes" if t_vconv else "no", "yes" if t_sconv else "no"))
            log("  %s" % row["error"])
        row["converge_victim_s"] = round(t_vconv - t_prom, 3) if t_vconv else None
        row["converge_others_s"] = round(t_sconv - t_prom, 3) if t_sconv else None
        row["converge_s"] = round(max(t_vconv, t_sconv) - t_prom, 3) if converged else None
        row["others_stale_max_s"] = round(surv_stale_max, 3)
        if t_agree is not None:
            row["all_nodes_agree_s"] = round(t_agree - t_kill, 3)
        # Feed end, then every key exact.
        out, err = gen.communicate(timeout=feed_s * 3 + 30)
        markers.halt.set()
        markers.join(10)
        t_feed_end = time.monotonic()
        if gen.returncode != 0:
            raise RuntimeError("mdgen failed: " + err[-500:])
        gs = parse_counters([l for l in out.splitlines() if l.startswith("mdgen:")][-1])
        gen = None
        expected = load_expect(exp)
        k_last = markers.last
        ts_last = markers.sent[k_last][1]
        rd = Reader(servers)
        t_final = None
        mk = ["price:%s:latest" % s for s in m_victim + m_other]
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < (a.drain_max_s if converged else 2.0):
                started = time.monotonic()
                bad = rd.wrong(expected)
                got = rd.get_many(mk)
                mbad = [k for k in mk if not marker_exact(got.get(k), k_last, ts_last)]
                if not bad and not mbad:
                    t_final = started
                    break
                time.sleep(0.05)
        finally:
            rd.close()
        row["final_s"] = round(t_final - t_feed_end, 3) if t_final is not None else None
        row["keys_wrong"] = len(bad)
        row["markers_wrong"] = len(mbad)
        if bad:
            row["wrong_sample"] = {k: [expected[k], None] for k in bad[:3]}
        # mdcache's side, from its log: when a worker took a map covering
        # every slot again after the kill; errors and warnings around it.
        lines = md.lines()
        maps = []
        for l in lines:
            m = re.match(r"^(\S+) .*worker \d+: cluster map: (\d+) primaries, (\d+) of \d+ slots covered", l)
            if m and wall(m.group(1)) >= w_kill - 0.001:
                maps.append((wall(m.group(1)) - w_prom, int(m.group(2)), int(m.group(3))))
        row["maps_after_kill"] = [[round(t, 3), p, s] for t, p, s in maps]
        full = [t for t, p, s in maps if s == 16384 and p == 3]
        row["map_s"] = round(full[0], 3) if full else None
        fail_seen = [t for t, p, s_ in maps if s_ < 16384]
        row["fail_seen_s"] = round(fail_seen[0] + row["promote_s"], 3) if fail_seen else None
        # What mdcache said from the kill on: the first lines about the dead
        # node, every map it took, and the CLUSTERDOWN holds (rate-limited).
        after = [l for l in lines if " stats: " not in l and re.match(r"^(\S+) ", l)
                 and wall(l.split()[0]) >= w_kill - 0.001]
        row["log_excerpt"] = (after[:4] + [l for l in after[4:] if re.search(
            r"cluster map|slot map|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|ERROR", l)])[:30]
        rc, ru, hwm, r = md.stop()
        md_ = md
        md = None
        md_.cleanup()
        c = counters(r)
        row.update({"sent": gs["sent"], "ticks": r["ticks"], "lost_ticks": max(0, gs["sent"] - r["ticks"]),
                    "gen_timed_out": bool(gs.get("timed_out")), "exit_code": rc,
                    "marker_rounds": k_last, "feed_s": feed_s,
                    "cluster": {k: c.get(k) for k in CLUSTER_COUNTERS},
                    "errors": {k: c[k] for k in ERR_COUNTERS if c.get(k)},
                    "reconnects": c.get("reconnects"), "keys_written": r["keys_written"], "counters": c})
        row["correct"] = (converged and t_final is not None and row["lost_ticks"] == 0 and rc == 0
                          and not row["gen_timed_out"])
    except Exception as e:
        row.update({"correct": False, "error": str(e)[:800]})
        if md:
            row["log_tail"] = md_tail_lines(md)
        if servers and servers.cluster:
            try:
                row["cluster_nodes"] = servers.cluster.describe()[:3000] if hasattr(servers.cluster, "describe") else None
            except Exception:
                pass
        log("  %s" % row["error"])
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        if markers:
            markers.halt.set()
            markers.join(5)
        for c in conns.values():
            c.close()
        if gen and gen.poll() is None:
            gen.kill()
            gen.wait()
        if md:
            md.cleanup()
        if servers:
            servers.cleanup()
    return row


def node_diag(servers):
    """Per live node: role, MOVED replies sent and SETEX calls over one
    second, and its clients' last commands (mdcache's writers show as
    setex)."""
    def snap():
        out = {}
        for n in servers.live():
            try:
                c = n.client(timeout=2)
                try:
                    info, cs, role, cl = c.pipeline([("INFO", "errorstats"), ("INFO", "commandstats"),
                                                     ("ROLE",), ("CLIENT", "LIST")])
                finally:
                    c.close()
                m = re.search(r"errorstat_MOVED:count=(\d+)", info)
                st = re.search(r"cmdstat_setex:calls=(\d+)", cs)
                out[n.port] = (role[0], int(m.group(1)) if m else 0, int(st.group(1)) if st else 0,
                               sorted(re.findall(r" cmd=(\S+)", cl)))
            except (OSError, ConnectionError, RespError, TypeError) as e:
                out[n.port] = (str(e), 0, 0, [])
        return out
    a = snap()
    time.sleep(1.0)
    b = snap()
    return {str(p): {"role": b[p][0], "moved_per_s": b[p][1] - a.get(p, b[p])[1],
                     "setex_per_s": b[p][2] - a.get(p, b[p])[2], "client_cmds": b[p][3]} for p in b}


def marker_exact(v, k, ts_ms):
    if not v or v.startswith("<"):
        return False
    try:
        d = json.loads(v, parse_float=str)
    except ValueError:
        return False
    return d.get("Bid") == "%d.25" % k and d.get("Ask") == "%d.50" % k and d.get("Timestamp") == ts_ms


def all_agree(servers, replica, vslots):
    for n in servers.live():
        try:
            view, _ = servers.nodes_view(n)
        except (OSError, ConnectionError, RespError):
            return False
        owner = [d for d in view.values() if d[0] == replica.port]
        if not owner or "master" not in owner[0][1] or not vslots <= owner[0][3]:
            return False
    return True


def part_failover(a, tmp, rows):
    for i in range(a.failover_runs):
        if a.quiet_wait:
            wait_quiet(a.quiet_wait)
        log("cluster-bench: failover run %d/%d: 3 primaries + 3 replicas, %d ticks/s over %d symbols, "
            "kill -9 after %g s" % (i + 1, a.failover_runs, a.failover_rate, a.failover_symbols, a.kill_after))
        fl = ForeignLoad()
        row = failover_run(a, tmp, i)
        row["foreign_cpu_s"], row["foreign_cores"] = fl.cores()
        rows.append(row)
        if not row.get("error") and row.get("converge_s") is not None:
            log("  -> promoted %.3f s after the kill; mdcache's map +%s s; markers converged +%.3f s "
                "(killed primary's +%.3f, others' +%.3f); others without writes at most %.3f s; all keys exact "
                "%s s after the feed stopped; cluster %s; %s" % (
                    row["promote_s"], row.get("map_s"), row["converge_s"], row["converge_victim_s"],
                    row["converge_others_s"], row["others_stale_max_s"], row.get("final_s"), row["cluster"],
                    "correct" if row["correct"] else "WRONG (%s keys wrong, %s markers wrong, %s lost, exit %s)" % (
                        row.get("keys_wrong"), row.get("markers_wrong"), row.get("lost_ticks"), row.get("exit_code"))))


# ------------------------------------------------------------ report

def fmt(x, nd=0):
    return report._v(x, nd)


def rate_label(r):
    if r["offered_tps"]:
        return "%gk" % (r["offered_tps"] / 1e3)
    return "flat out (%s ticks)" % fmt(r["flat_out_ticks"])


def ratio(a, b, nd=2):
    return ("%." + str(nd) + "f") % (a / b) if a and b else "-"


def tables(meta, rows):
    L = []
    tp = [r for r in rows if "config" in r]
    fo = [r for r in rows if "promote_s" in r or ("run" in r and "config" not in r)]
    if tp:
        L.append("### Throughput and latency (medians of %d interleaved runs)" % meta["repeats"])
        L.append("")
        L.append("keys/s = keys written over the send window plus the drain; latency = tick's scheduled send "
                 "to Redis's acknowledgement (mdcache's `latency_ns`); RTT = batch sent to last reply "
                 "(`rtt_ns`, per node in a cluster). Ratios are against `standalone` at the same point.")
        L.append("")
        L.append("| symbols | offered | config | correct | ticks/s | keys/s | keys/s ratio | p50 us | p99 us "
                 "| p99 ratio | RTT p50 / p99 us | batch p50 | mdcache CPU s / M ticks | Redis CPU us / key |")
        L.append("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
        groups = []
        for r in tp:
            g = (r["symbols"], r["offered_tps"], r["flat_out_ticks"])
            if g not in groups:
                groups.append(g)
        for g in groups:
            med = {}
            for kind in CONFIGS:
                rs = [r for r in tp if (r["symbols"], r["offered_tps"], r["flat_out_ticks"]) == g
                      and r["config"] == kind and not r.get("discarded")]
                ok = [r for r in rs if r.get("correct")]
                med[kind] = {k: median(r.get(k) for r in ok) for k in
                             ("achieved_tps", "keys_per_s", "p50_us", "p99_us", "rtt_p50_us", "rtt_p99_us",
                              "batch_p50", "cpu_s_per_mtick", "redis_us_per_key")}
                med[kind]["n"], med[kind]["of"] = len(ok), len(rs)
            for kind in CONFIGS:
                m, s = med[kind], med["standalone"]
                if not m["of"]:
                    continue
                L.append("| %s | %s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |" % (
                    fmt(g[0]), rate_label({"offered_tps": g[1], "flat_out_ticks": g[2]}), kind, m["n"], m["of"],
                    fmt(m["achieved_tps"]), fmt(m["keys_per_s"]),
                    "1" if kind == "standalone" else ratio(m["keys_per_s"], s["keys_per_s"]),
                    fmt(m["p50_us"]), fmt(m["p99_us"]),
                    "1" if kind == "standalone" else ratio(m["p99_us"], s["p99_us"]),
                    fmt(m["rtt_p50_us"]), fmt(m["rtt_p99_us"]), fmt(m["batch_p50"]), fmt(m["cpu_s_per_mtick"], 2),
                    fmt(m["redis_us_per_key"], 2)))
        L.append("")
        L.append("Every run:")
        L.append("")
        L.append("| symbols | offered | config | run | mdgen s | ticks/s | keys/s | p50 us | p99 us | p99.9 us "
                 "| RTT p50 / p99 us | batch p50 | Redis CPU us / key | moved / ask / down / maps | errors "
                 "| other load, cores | correct |")
        L.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|---:|---|")
        for r in tp:
            cl = r.get("cluster") or {}
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s |" % (
                fmt(r["symbols"]), rate_label(r), r["config"], r.get("repeat"), fmt(r.get("gen_elapsed_s"), 2),
                fmt(r.get("achieved_tps")),
                fmt(r.get("keys_per_s")), fmt(r.get("p50_us")), fmt(r.get("p99_us")), fmt(r.get("p999_us")),
                fmt(r.get("rtt_p50_us")), fmt(r.get("rtt_p99_us")), fmt(r.get("batch_p50")),
                fmt(r.get("redis_us_per_key"), 2),
                " / ".join(fmt(cl.get(k)) for k in CLUSTER_COUNTERS) if cl else "-",
                ", ".join("%s=%s" % kv for kv in (r.get("errors") or {}).items()) or r.get("error", "none")[:80],
                fmt(r.get("foreign_cores"), 2),
                ("yes" if r.get("correct") else "**no**") + (", discarded (other load)" if r.get("discarded") else "")))
        L.append("")
    if fo:
        L.append("### Failover: 3 primaries + 3 replicas, `kill -9` of one primary under load")
        L.append("")
        L.append("cluster-node-timeout %d ms (the harness's). promote = kill until the replica answers ROLE "
                 "\"master\"; map = promotion until an mdcache worker logs a map covering all 16384 slots; "
                 "converge = promotion until every marker key, read from its owner, holds a round at least as new "
                 "as the last one sent before the promotion (killed primary's markers / the others'); "
                 "others idle = the longest the surviving primaries' markers went without a newer round; final = "
                 "feed stopped until every key (generator's and markers) exact. Seconds." % NODE_TIMEOUT_MS)
        L.append("")
        L.append("| run | killed | mdcache sees it failed (from kill) | promote | map | converge | killed's / others' "
                 "| others idle | all nodes agree (from kill) | final | moved / ask / down / maps | errors "
                 "| other load, cores | correct |")
        L.append("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|---|")
        for r in fo:
            cl = r.get("cluster") or {}
            L.append("| %s | :%s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["run"], r.get("victim_port", "-"), fmt(r.get("fail_seen_s"), 3), fmt(r.get("promote_s"), 3),
                fmt(r.get("map_s"), 3),
                fmt(r.get("converge_s"), 3), fmt(r.get("converge_victim_s"), 3), fmt(r.get("converge_others_s"), 3),
                fmt(r.get("others_stale_max_s"), 3), fmt(r.get("all_nodes_agree_s"), 3), fmt(r.get("final_s"), 3),
                " / ".join(fmt(cl.get(k)) for k in CLUSTER_COUNTERS) if cl else "-",
                "; ".join(x for x in (", ".join("%s=%s" % kv for kv in (r.get("errors") or {}).items()),
                                      r.get("error", "")[:120],
                                      "exit %s" % r["exit_code"] if r.get("exit_code") else "") if x) or "none",
                fmt(r.get("foreign_cores"), 2), "yes" if r.get("correct") else "**no**"))
        ok = [r for r in fo if r.get("correct")]
        if ok:
            L.append("| **median** | | %s | **%s** | %s | **%s** | %s / %s | %s | %s | %s | | | | %d/%d |" % (
                fmt(median(r.get("fail_seen_s") for r in ok), 3),
                fmt(median(r["promote_s"] for r in ok), 3), fmt(median(r.get("map_s") for r in ok), 3),
                fmt(median(r["converge_s"] for r in ok), 3), fmt(median(r["converge_victim_s"] for r in ok), 3),
                fmt(median(r["converge_others_s"] for r in ok), 3),
                fmt(median(r["others_stale_max_s"] for r in ok), 3),
                fmt(median(r.get("all_nodes_agree_s") for r in ok), 3), fmt(median(r.get("final_s") for r in ok), 3),
                len(ok), len(fo)))
        L.append("")
    return L


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test, under a minute: one repeat, 1k symbols, "
                    "one paced rate and a small flat-out run, one failover, no re-runs")
    ap.add_argument("--part", default="throughput,failover", help="throughput, failover or both")
    ap.add_argument("--symbols", default="100000,1000", help="symbol counts for part 1")
    ap.add_argument("--rates", default="50000,200000", help="paced rates for part 1, ticks/s")
    ap.add_argument("--flat-out-ticks", type=int, default=2000000, help="flat-out run of this many ticks (0: none)")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per paced point")
    ap.add_argument("--per-datagram", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="runs of every point and configuration")
    ap.add_argument("--failover-runs", type=int, default=5)
    ap.add_argument("--failover-rate", type=int, default=20000)
    ap.add_argument("--failover-symbols", type=int, default=10000)
    ap.add_argument("--markers", type=int, default=100, help="marker symbols, half on the killed primary's slots")
    ap.add_argument("--marker-ms", type=float, default=20.0, help="one marker round every this many ms")
    ap.add_argument("--kill-after", type=float, default=3.0, help="seconds of load before the kill")
    ap.add_argument("--feed-after-kill", type=float, default=10.0, help="seconds of load after the kill")
    ap.add_argument("--failover-timeout", type=float, default=30.0)
    ap.add_argument("--redis-cpu", type=int, default=0, help="every redis-server")
    ap.add_argument("--sut-cpu", type=int, default=1, help="mdcache (one worker)")
    ap.add_argument("--gen-cpu", type=int, default=0, help="mdgen")
    ap.add_argument("--poll-cpu", type=int, default=1, help="this harness's pollers and marker sender (failover)")
    ap.add_argument("--quiet-wait", type=float, default=0,
                    help="before each run, wait up to this many seconds for other processes to leave the machine")
    ap.add_argument("--max-foreign", type=float, default=0.3,
                    help="a throughput run during which other processes used more than this many cores is "
                         "kept in the JSON and the every-run table as discarded, left out of the medians, "
                         "and run again (at most --retries times)")
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--stall-s", type=float, default=3.0)
    ap.add_argument("--drain-max-s", type=float, default=20.0)
    ap.add_argument("--no-tuning", action="store_true", help="leave rmem_max and haltpoll alone (see bench/run.py)")
    ap.add_argument("--out", help="also write OUT.md and OUT.json (every run, histograms)")
    a = ap.parse_args()
    if a.quick:
        a.symbols, a.rates, a.flat_out_ticks, a.repeats, a.duration = "1000", "50000", 100000, 1, 2.0
        a.retries = 0
        a.failover_runs, a.kill_after, a.feed_after_kill, a.failover_timeout = 1, 2.0, 5.0, 15.0
    a.symbol_list = [int(float(x)) for x in a.symbols.split(",") if x.strip()]
    a.rate_list = [int(float(x)) for x in a.rates.split(",") if x.strip()]
    parts = [p for p in a.part.split(",") if p]
    for p in parts:
        if p not in ("throughput", "failover"):
            sys.exit("unknown part %r" % p)
    for tool in ("taskset", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit("cluster-bench: %s not found (run tools/install-deps.sh)" % tool)
    for b in ("mdcache", "mdgen"):
        if not os.access(os.path.join(BUILD, b), os.X_OK):
            sys.exit("cluster-bench: %s/%s not built (make)" % (BUILD, b))
    tuning = MachineTuning(not a.no_tuning)
    tmp = tempfile.mkdtemp(prefix="mdcluster-")
    t0 = time.monotonic()
    rows = []
    try:
        if "throughput" in parts:
            part_throughput(a, tmp, rows)
        if "failover" in parts:
            part_failover(a, tmp, rows)
    finally:
        tuning.restore()
        shutil.rmtree(tmp, ignore_errors=True)
    meta = versions()
    meta.update({"pinning": "every redis-server on CPU %d, mdcache (one worker, --cpus %d, process pinned) on CPU %d, "
                            "mdgen on CPU %d%s" % (a.redis_cpu, a.sut_cpu, a.sut_cpu, a.gen_cpu,
                                                   ", failover pollers and marker sender on CPU %d" % a.poll_cpu
                                                   if "failover" in parts else ""),
                 "tuning": ", ".join(tuning.applied) or "none", "repeats": a.repeats, "duration_s": a.duration,
                 "argv": sys.argv[1:], "wall_s": round(time.monotonic() - t0), "quick": a.quick,
                 "node_timeout_ms": NODE_TIMEOUT_MS})
    L = ["## mdcache and Redis Cluster: %s" % meta["date"], "",
         "Machine: %s, %s cores, Linux %s; %s; %s. Pinning: %s. Tuning: %s. Wall time %s s." % (
             meta["cpu"], meta["cores"], meta["kernel"], meta["mdcache"], meta["redis"].split(" sha=")[0],
             meta["pinning"], meta["tuning"], meta["wall_s"]), ""]
    L += tables(meta, rows)
    text = "\n".join(L) + "\n"
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)
        with open(a.out + ".md", "w") as f:
            f.write(text)
        with open(a.out + ".json", "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
            f.write("\n")
    bad = [r for r in rows if not r.get("correct") and not r.get("discarded")]
    for r in rows:
        if r.get("discarded") and not r.get("correct"):
            log("cluster-bench: not correct, but discarded for other load (%s cores): %s" % (
                r.get("foreign_cores"), json.dumps({k: v for k, v in r.items()
                                                    if k not in ("histograms", "counters")})[:600]))
    for r in bad:
        log("cluster-bench: NOT CORRECT: %s" % json.dumps({k: v for k, v in r.items() if k != "histograms"})[:1500])
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
