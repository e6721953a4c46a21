#!/usr/bin/env python3
"""Recovery after Redis loses everything (issue #4): how long from a Redis
that was killed (SIGKILL) and restarted empty on the same port answering
PING until every key is whole again, i.e. present with the generator's
latest value for it.

For every (symbols, transport, reconnect backoff) point, repeated:
  1. a fresh redis-server pinned to --redis-cpu (plain TCP, or TLS only with
     a CA and server certificate made here by the openssl CLI);
  2. mdcache pinned to --sut-cpu, price_ttl and source_timeout of an hour
     (every source stays live, no key expires, no refresh happens during
     the run), no last_good copy, reconnect_min/max as given;
  3. build/mdgen pinned to --gen-cpu sends every symbol at least once and
     keeps sending; half a second before it stops, Redis is SIGKILLed, so
     batches are in flight when it dies and ticks keep arriving while it is
     down; mdgen writes every key's expected final value;
  4. after --outage seconds (from the kill), a fresh empty redis-server on
     the same port; the harness connects and PINGs every millisecond until
     it answers: that is t = 0;
  5. DBSIZE on that connection every --poll-ms until it reaches the number
     of keys expected, then every key is checked byte for byte with
     pipelined GETs (any key still wrong is re-checked until right);
  6. mdcache's log gives the moment it reconnected (its "reconnected" line,
     1 ms resolution): the wait after t = 0 is the reconnect backoff's share;
     the rest is the re-assertion of every key, paced by Redis.
Once the generator has stopped, mdcache's state is final and it writes each
key once after reconnecting (the run checks that keys written after the
restart equal the keys expected), so a key that appears holds its final value
and "DBSIZE reached N" is the moment the last key became right; the GET pass
confirms it. Resolution: the DBSIZE poll interval plus one round trip.

  bench/recovery.py                              10k, 100k, 1M symbols, TCP, default and fast backoff
  bench/recovery.py --transports tcp,tls --symbols 100000 --repeats 5
Writes bench/results/recovery-latest.{md,json} (or --out). Python standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
import tlscerts  # noqa: E402
from harness import free_port, load_expect, parse_counters  # noqa: E402
from report import _v as fmt, median  # noqa: E402
from run import (STATS_RE, ForeignLoad, MachineTuning, Point, ceiling, pinned_redis,  # noqa: E402
                 versions, wait_quiet)

BUILD = os.environ.get("MD_BUILD", os.path.join(ROOT, "build"))
LONG = 3600  # price_ttl and source_timeout: nothing expires or goes stale in a run


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def wall(stamp):
    """mdcache's log time stamp (UTC, ms) as epoch seconds."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def gen_rate(nsym):
    """Ticks/s for the generator: mdcache takes them all and Redis keeps
    roughly up; every symbol is sent once in the first nsym / rate s."""
    return 20000 if nsym <= 10000 else 100000 if nsym <= 100000 else 300000


def recover_once(a, tmp, nsym, rmin, rmax, tls):
    """One kill / restart / recovery; returns its row."""
    row = {"symbols": nsym, "transport": "tls" if tls else "tcp", "reconnect_min": rmin,
           "reconnect_max": rmax, "outage_s": a.outage, "poll_ms": a.poll_ms}
    redis = pinned_redis(a.redis_cpu, tls)
    md = gen = poll = None
    try:
        ini = os.path.join(tmp, "recovery.ini")
        with open(ini, "w") as f:
            f.write("[mdcache]\nmax_keys = %d\n[redis]\nreconnect_min = %g\nreconnect_max = %g\n"
                    "[keys]\nprice_ttl = %d\nsource_timeout = %d\nlast_good_key =\n"
                    % (max(1000000, 2 * nsym), rmin, rmax, LONG, LONG))
        port = free_port("udp")
        rep = os.path.join(tmp, "report.json")
        if os.path.exists(rep):
            os.unlink(rep)
        logp = os.path.join(tmp, "mdcache.log")
        logf = open(logp, "w")
        md = subprocess.Popen(["taskset", "-c", str(a.sut_cpu), os.path.join(BUILD, "mdcache"), "-c", ini,
                               "--redis", redis.url, "--listen", "udp://127.0.0.1:%d?format=bin1" % port,
                               "--cpus", str(a.sut_cpu), "--stats-interval", "0.1", "--report", rep] +
                              (["--cacert", tls.ca_crt] if tls else []),
                              stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        if not Point._wait_ready(open(logp), md):
            raise RuntimeError("mdcache did not start:\n" + open(logp).read()[-2000:])
        rate = gen_rate(nsym)
        ticks = nsym + rate  # every symbol once, then a second more of load
        send_s = ticks / float(rate)
        exp = os.path.join(tmp, "expect.jsonl")
        gen = subprocess.Popen([os.path.join(BUILD, "mdgen"), "--target", "udp://127.0.0.1:%d" % port,
                                "--symbols", str(nsym), "--rate", str(rate), "--ticks", str(ticks),
                                "--duration", "%.3f" % (send_s + 1), "--max-time", "%.0f" % (send_s * 3 + 20),
                                "--cpus", str(a.gen_cpu), "--seed", "11", "--expect", exp],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t_gen = time.monotonic()
        # Redis dies half a second before the generator is done: batches
        # are in flight, and ticks keep arriving while it is down.
        time.sleep(max(0.0, send_s - 0.5))
        redis.kill()
        t_kill = time.monotonic()
        row["killed_after_s"] = round(t_kill - t_gen, 2)
        out, err = gen.communicate(timeout=send_s * 3 + 30)
        if gen.returncode != 0:
            raise RuntimeError("mdgen failed: " + err[-500:])
        gs = parse_counters([l for l in out.splitlines() if l.startswith("mdgen:")][-1])
        gen = None
        t_gen_end = time.monotonic()
        row["gen_s"] = round(t_gen_end - t_gen, 2)
        expected = load_expect(exp)
        n = len(expected)
        # The restart comes --outage s after the kill, and never before the
        # generator is done and mdcache has had a moment to read the rest.
        t_restart = max(t_kill + a.outage, t_gen_end + 1.0)
        time.sleep(max(0.0, t_restart - time.monotonic()))
        # Restart, then PING every millisecond on a new connection: t = 0 is
        # the first PONG. The poller sits on --poll-cpu.
        os.sched_setaffinity(0, {a.poll_cpu})
        redis.restart(wait=False)
        t_spawn = time.monotonic()
        poll = redis.wait_ping(timeout=20, interval=0.001)
        t0, w0 = time.monotonic(), time.time()
        if not poll:
            raise RuntimeError("restarted redis-server did not answer PING:\n" + redis.log_tail())
        row["spawn_to_ping_ms"] = round((t0 - t_spawn) * 1e3, 1)
        row["outage_actual_s"] = round(t_spawn - t_kill, 2)
        samples = [(0.0, poll.cmd("DBSIZE"))]
        end = t0 + a.timeout
        while samples[-1][1] < n and time.monotonic() < end:
            time.sleep(a.poll_ms / 1e3)
            k = poll.cmd("DBSIZE")
            samples.append((time.monotonic() - t0, k))
        full = samples[-1][1] >= n
        t_full = samples[-1][0]
        t_full_lo = samples[-2][0] if len(samples) > 1 else 0.0
        first = next((t for t, k in samples if k > 0), None)
        # Every key, byte for byte; a wrong one is re-checked until right.
        tv = time.monotonic()
        keys = list(expected)
        bad = wrong_keys(poll, keys, expected)
        row["verify_s"] = round(time.monotonic() - tv, 2)
        row["wrong_at_first_check"] = len(bad)
        t_whole = t_full
        while bad and time.monotonic() < end:
            time.sleep(a.poll_ms / 1e3)
            bad = wrong_keys(poll, bad, expected)
            t_whole = time.monotonic() - t0
        extra = samples[-1][1] - n
        poll.close()
        poll = None
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        # mdcache's side, from its log: the reconnect, and the keys it wrote
        # from the restart on.
        with open(logp) as f:
            lines = f.read().splitlines()
        reconn = [wall(l.split()[0]) for l in lines if " reconnected" in l]
        stats = []
        for l in lines:
            m = STATS_RE.match(l.strip())
            if m:
                stats.append((wall(m.group(1)), parse_counters(m.group(2))))
        before = [s for t, s in stats if t < w0]
        k_before = before[-1]["keys_written"] if before else None
        ticks_before = before[-1]["ticks_in"] if before else None
        md.send_signal(signal.SIGTERM)
        md.wait(30)
        rc, md = md.returncode, None
        logf.close()
        with open(rep) as f:
            r = json.load(f)
        back = [w - w0 for w in reconn if w >= w0 - 0.5]
        row.update({
            "rate": rate, "sent": gs["sent"], "ticks": r["ticks"], "lost_ticks": max(0, gs["sent"] - r["ticks"]),
            "all_ticks_in_before_restart": ticks_before == gs["sent"],
            "keys_expected": n, "keys_extra": extra, "whole": full and not bad,
            "whole_s": round(t_whole, 4), "dbsize_full_s": round(t_full, 4),
            "dbsize_full_lower_s": round(t_full_lo, 4), "first_key_s": round(first, 4) if first is not None else None,
            "reconnected_s": round(back[0], 4) if back else None,
            "reconnects": r.get("reconnects"), "redis_errors": r.get("redis_errors"),
            "writes_after_restart": r["keys_written"] - k_before if k_before is not None else None,
            "dbsize_samples": len(samples), "exit_code": rc,
            "curve": [[round(t, 4), k] for t, k in samples[:: max(1, len(samples) // 200)]] + [[round(t_full, 4), samples[-1][1]]],
        })
        if row["reconnected_s"] is not None:
            fill = t_full - max(0.0, row["reconnected_s"])
            row["fill_s"] = round(fill, 4)
            row["fill_keys_per_s"] = round(n / fill) if fill > 0 else None
            row["backoff_share"] = round(max(0.0, row["reconnected_s"]) / t_whole, 3) if t_whole > 0 else None
        row["correct"] = bool(row["whole"] and row["lost_ticks"] == 0 and extra == 0 and rc == 0)
    except Exception as e:  # a broken run is a row that says so
        row.update({"correct": False, "error": str(e)[:500]})
        log("  %s" % row["error"])
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        if poll:
            poll.close()
        for p in (gen, md):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        redis.cleanup()
    return row


def wrong_keys(c, keys, expected, chunk=5000):
    bad = []
    for i in range(0, len(keys), chunk):
        part = keys[i:i + chunk]
        for k, v in zip(part, c.pipeline([("GET", k) for k in part])):
            if v != expected[k]:
                bad.append(k)
    return bad


def write_report(path, meta, rows):
    with open(path + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
        f.write("\n")
    L = ["# mdcache recovery after Redis restarts empty: %s" % meta["date"], ""]
    L.append("Machine: %s, %s cores, Linux %s. %s. Tuning during the run: %s." % (
        meta["cpu"], meta["cores"], meta["kernel"], meta["pinning"], meta["tuning"]))
    L.append("")
    L.append("Versions: %s; %s." % (meta["mdcache"], meta["redis"].split(" sha=")[0]))
    L.append("")
    L.append("Method: mdgen sends every symbol once and then a second more of ticks (UDP bin1); Redis is "
             "SIGKILLed half a second before the generator stops and restarted empty on the same port %g s "
             "after the kill (or 1 s after the generator is done, if later: `outage` below). t = 0 is the first PONG from the restarted server (a new connection tried every "
             "1 ms). **whole** is when DBSIZE, polled every %g ms on that connection, reached the number of keys "
             "expected; every key was then checked byte for byte against the generator's model. "
             "**reconnect** is mdcache's `reconnected` log line (1 ms resolution) minus t = 0: the reconnect "
             "backoff's share. **fill** is the rest: mdcache re-asserting every key, paced by Redis. mdcache: "
             "price_ttl = source_timeout = %d s (every source live), no last_good copy, defaults otherwise. "
             "Figures are medians over the repeats; every run is below."
             % (meta["outage_s"], meta["poll_ms"], LONG))
    L.append("")
    if meta.get("ceilings"):
        L.append("Reference, Redis filling an empty key space alone (`redis-benchmark -c 8 -P 64 SETEX -r N`): %s."
                 % "; ".join("%s keys over %s: %s SETEX/s" % (fmt(int(k.split("/")[0])), k.split("/")[1].upper(), fmt(v))
                             for k, v in meta["ceilings"].items()))
        L.append("")
    L.append("| symbols | Redis | reconnect_min..max s | runs whole | whole s (median) | reconnect s | backoff share "
             "| fill s | fill keys/s | whole s, every run |")
    L.append("|---:|---|---|---|---:|---:|---:|---:|---:|---|")
    groups = []
    for r in rows:
        g = (r["symbols"], r["transport"], r["reconnect_min"], r["reconnect_max"])
        if g not in groups:
            groups.append(g)
    for g in groups:
        rs = [r for r in rows if (r["symbols"], r["transport"], r["reconnect_min"], r["reconnect_max"]) == g]
        ok = [r for r in rs if r.get("correct")]
        L.append("| %s | %s | %g..%g | %d/%d | %s | %s | %s | %s | %s | %s |" % (
            fmt(g[0]), g[1].upper(), g[2], g[3], len(ok), len(rs),
            fmt(median(r["whole_s"] for r in ok), 3), fmt(median(r.get("reconnected_s") for r in ok), 3),
            "%.0f%%" % (100 * median(r.get("backoff_share") for r in ok)) if ok and median(r.get("backoff_share") for r in ok) is not None else "-",
            fmt(median(r.get("fill_s") for r in ok), 3), fmt(median(r.get("fill_keys_per_s") for r in ok)),
            ", ".join(fmt(r.get("whole_s"), 3) for r in rs)))
    L.append("")
    L.append("Every run (times in s from t = 0; `DBSIZE=N after` is the poll sample before the one that "
             "saw every key: the last key arrived between the two):")
    L.append("")
    L.append("| symbols | Redis | backoff | sent ticks | lost | outage s | PING after spawn ms | reconnect | first key | "
             "DBSIZE=N after | whole | fill keys/s | writes after restart | wrong at first GET pass | GET pass s "
             "| other processes, cores | correct |")
    L.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if r.get("error"):
            L.append("| %s | %s | %g..%g | error: %s |%s" % (fmt(r["symbols"]), r["transport"].upper(), r["reconnect_min"],
                                                        r["reconnect_max"], r["error"].replace("|", "/")[:200], " |" * 13))
            continue
        L.append("| %s | %s | %g..%g | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fmt(r["symbols"]), r["transport"].upper(), r["reconnect_min"], r["reconnect_max"], fmt(r["sent"]),
            fmt(r["lost_ticks"]), fmt(r.get("outage_actual_s"), 1), fmt(r.get("spawn_to_ping_ms"), 1), fmt(r.get("reconnected_s"), 3),
            fmt(r.get("first_key_s"), 3), fmt(r.get("dbsize_full_lower_s"), 3), fmt(r.get("whole_s"), 3),
            fmt(r.get("fill_keys_per_s")), fmt(r.get("writes_after_restart")), fmt(r.get("wrong_at_first_check")),
            fmt(r.get("verify_s"), 1), fmt(r.get("foreign_cores"), 2), "yes" if r.get("correct") else "**no**"))
    L.append("")
    L.append("Run took %s s. Regenerate with `make bench-recovery`; raw rows (with DBSIZE curves) in `%s.json`."
             % (meta["wall_s"], os.path.basename(path)))
    with open(path + ".md", "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="10000,100000,1000000", help="symbol counts, comma-separated")
    ap.add_argument("--transports", default="tcp", help="tcp, tls or tcp,tls (Redis over TLS, peer verified)")
    ap.add_argument("--backoff", default="0.05:0.5,0.05:2,0.05:0.05",
                    help="reconnect_min:reconnect_max pairs, comma-separated (mdcache's default is 0.05:0.5; it was 0.05:2 before 2026-11-22)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--outage", type=float, default=5.0,
                    help="seconds from the kill to the restart (long enough for the backoff to reach its cap); "
                         "never less than until 1 s after the generator is done")
    ap.add_argument("--poll-ms", type=float, default=2.0, help="DBSIZE poll interval, ms")
    ap.add_argument("--timeout", type=float, default=120.0, help="most seconds a recovery may take")
    ap.add_argument("--ceiling", action="store_true", help="also redis-benchmark's fill rate per key space")
    ap.add_argument("--redis-cpu", type=int, default=0)
    ap.add_argument("--sut-cpu", type=int, default=1)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--poll-cpu", type=int, default=1,
                    help="CPU of this harness while it polls (mdcache's: Redis's core is the bottleneck)")
    ap.add_argument("--quiet-wait", type=float, default=0,
                    help="before each run, wait up to this many seconds for other processes to leave the machine")
    ap.add_argument("--no-tuning", action="store_true", help="leave rmem_max and haltpoll alone")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "recovery-latest"),
                    help="output path without extension (.md and .json are written)")
    a = ap.parse_args()
    sizes = [int(float(x)) for x in a.symbols.split(",") if x.strip()]
    transports = [t for t in a.transports.split(",") if t]
    backoffs = [tuple(float(v) for v in b.split(":")) for b in a.backoff.split(",") if b]
    for t in transports:
        if t not in ("tcp", "tls"):
            sys.exit("unknown transport %r" % t)
    for tool in ("taskset", "redis-server", "redis-benchmark") + (("openssl",) if "tls" in transports else ()):
        if not shutil.which(tool):
            sys.exit("recovery: %s not found" % tool)
    tuning = MachineTuning(not a.no_tuning)
    tmp = tempfile.mkdtemp(prefix="mdrecovery-")
    t_start = time.monotonic()
    rows = []
    try:
        tls = tlscerts.get() if "tls" in transports else None
        ceilings = {}
        combos = [(t, b) for t in transports for b in backoffs]
        for nsym in sizes:
            if a.ceiling:
                for t in transports:
                    c = ceiling(a, tmp, nsym=nsym, n=max(200000, 2 * nsym), tls=tls if t == "tls" else None)
                    ceilings["%d/%s" % (nsym, t)] = round(c)
                    log("recovery: redis-benchmark fill over %d keys, %s: %.0f SETEX/s" % (nsym, t, c))
            for i in range(a.repeats):
                # Interleaved, the order turned around every repeat.
                for t, (rmin, rmax) in (combos if i % 2 == 0 else combos[::-1]):
                    log("recovery: %d symbols, %s, backoff %g..%g s, run %d/%d" % (nsym, t, rmin, rmax, i + 1, a.repeats))
                    if a.quiet_wait:
                        wait_quiet(a.quiet_wait)
                    fl = ForeignLoad()
                    r = recover_once(a, tmp, nsym, rmin, rmax, tls if t == "tls" else None)
                    r["foreign_cpu_s"], r["foreign_cores"] = fl.cores()
                    r["repeat"] = i + 1
                    rows.append(r)
                    if not r.get("error"):
                        log("  -> whole %.3f s after PING (reconnect %s s, first key %s s, DBSIZE=N between %.3f and %.3f s), "
                            "fill %s keys/s, writes after restart %s of %d, %s" % (
                                r["whole_s"], r.get("reconnected_s"), r.get("first_key_s"), r["dbsize_full_lower_s"],
                                r["dbsize_full_s"], r.get("fill_keys_per_s"), r.get("writes_after_restart"),
                                r["keys_expected"], "correct" if r["correct"] else "WRONG %r" % {
                                    k: r.get(k) for k in ("lost_ticks", "keys_extra", "whole", "exit_code")}))
        meta = versions()
        meta.update({"pinning": "redis-server on CPU %d with mdgen, mdcache (one worker) on CPU %d, this poller on "
                                "CPU %d" % (a.redis_cpu, a.sut_cpu, a.poll_cpu) if a.gen_cpu == a.redis_cpu else
                                "redis-server on CPU %d, mdcache on CPU %d, mdgen on CPU %d, poller on CPU %d"
                                % (a.redis_cpu, a.sut_cpu, a.gen_cpu, a.poll_cpu),
                     "tuning": ", ".join(tuning.applied) or "none", "outage_s": a.outage, "poll_ms": a.poll_ms,
                     "ceilings": ceilings, "wall_s": round(time.monotonic() - t_start)})
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        write_report(a.out, meta, rows)
        log("recovery: wrote %s.md and .json in %.0f s" % (a.out, time.monotonic() - t_start))
    finally:
        tuning.restore()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if rows and all(r.get("correct") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
