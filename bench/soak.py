#!/usr/bin/env python3
"""Soak: mdcache under a steady open-loop load for a long time (default ten
minutes, 100k symbols, 100k ticks/s), its RSS sampled every 10 s. Memory
must follow the symbols held, never the tick rate or the run time: the
report gives the RSS over time and its growth after warm-up, and ends with
every key checked against the generator's model.

  bench/soak.py [--seconds 600] [--rate 100000] [--symbols 100000]
Writes bench/results/soak-latest.md (or --out). Python standard library only.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
from harness import Resp, free_port, load_expect, parse_counters  # noqa: E402
from run import bench_ini, count_bad, pinned_redis  # noqa: E402

BUILD = os.environ.get("MD_BUILD", os.path.join(ROOT, "build"))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=int, default=100000)
    ap.add_argument("--symbols", type=int, default=100000)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "soak-latest.md"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mdsoak-")
    redis = pinned_redis(0)
    md = gen = None
    try:
        port = free_port("udp")
        rep = os.path.join(tmp, "report.json")
        # The bench's TTL (bench/run.py): with the product's 5 s, keys of the
        # generator's source expire a few seconds after it stops, racing
        # the final check of 100k keys.
        ini = bench_ini(os.path.join(tmp, "soak.ini"), last_good=True)
        log = open(os.path.join(tmp, "mdcache.log"), "w+")
        md = subprocess.Popen([os.path.join(BUILD, "mdcache"), "-c", ini, "--redis", redis.url, "--listen",
                               "udp://127.0.0.1:%d?format=bin1" % port, "--cpus", "1",
                               "--stats-interval", "0", "--report", rep],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        end = time.monotonic() + 20
        while "ready:" not in open(log.name).read():
            if md.poll() is not None or time.monotonic() > end:
                sys.exit("soak: mdcache did not start:\n" + open(log.name).read())
            time.sleep(0.05)
        exp = os.path.join(tmp, "expect.jsonl")
        gen = subprocess.Popen([os.path.join(BUILD, "mdgen"), "--target", "udp://127.0.0.1:%d" % port,
                                "--symbols", str(a.symbols), "--rate", str(a.rate), "--duration",
                                str(a.seconds), "--cpus", "0", "--zipf", "0.8", "--expect", exp],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        samples = []
        while gen.poll() is None:
            samples.append((round(time.monotonic() - t0), rss_kb(md.pid)))
            print("soak: %4ds  RSS %d kB" % samples[-1], file=sys.stderr, flush=True)
            time.sleep(a.every)
        out, err = gen.communicate()
        if gen.returncode != 0:
            sys.exit("soak: mdgen failed: " + err)
        gs = parse_counters([l for l in out.splitlines() if l.startswith("mdgen:")][-1])
        samples.append((round(time.monotonic() - t0), rss_kb(md.pid)))
        expected = load_expect(exp)
        c = Resp(redis.port, timeout=30)
        bad = None
        end = time.monotonic() + 30
        while True:
            bad = count_bad(c, expected, exact=True)
            if bad == 0 or time.monotonic() > end:
                break
            time.sleep(0.2)
        c.close()
        md.terminate()
        md.wait(60)
        with open(rep) as f:
            r = json.load(f)
    finally:
        for p in (gen, md):
            if p and p.poll() is None:
                p.kill()
        redis.cleanup()
    warm = [kb for t, kb in samples if t >= 60] or [kb for _, kb in samples]
    growth = warm[-1] - warm[0]
    lines = ["# mdcache soak: %s" % datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "",
             "UDP bin1, %d symbols (Zipf 0.8), %d ticks/s offered for %g s; redis-server and mdgen on "
             "CPU 0, one mdcache worker on CPU 1." % (a.symbols, a.rate, a.seconds), "",
             "- sent %d ticks, mdcache took in %d (kernel drops %d), wrote %d keys in %d batches;"
             % (gs["sent"], r["ticks"], r["kernel_drops"], r["keys_written"], r["batches"]),
             "- keys held at the end: %d; keys wrong after the run: %d of %d (byte for byte);"
             % (r["keys"], bad, len(expected)),
             "- RSS after the first minute: %d kB, at the end: %d kB, growth %+d kB (%+.2f%%), "
             "max %d kB." % (warm[0], warm[-1], growth, 100.0 * growth / warm[0], max(kb for _, kb in samples)),
             "", "| t (s) | RSS (kB) |", "|---:|---:|"]
    lines += ["| %d | %d |" % s for s in samples]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:8]))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
