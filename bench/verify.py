#!/usr/bin/env python3
"""Compares Redis against an mdfeed --expect file: every key must hold
exactly the expected value (byte for byte). Prints `checked N mismatched M`
and the first mismatches; exits 1 on any mismatch.

usage: verify.py EXPECT_FILE REDIS_PORT
"""
import json
import subprocess
import sys


def main():
    exp = [json.loads(l) for l in open(sys.argv[1])]
    port = sys.argv[2]
    bad = []
    for i in range(0, len(exp), 1000):
        chunk = exp[i:i + 1000]
        out = subprocess.run(["redis-cli", "-p", port, "--no-raw", "mget"] + [e["key"] for e in chunk],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        got = [json.loads(o.split(") ", 1)[1]) if ") \"" in o else None for o in out]
        bad += [(e["key"], e["value"], g) for e, g in zip(chunk, got) if e["value"] != g]
    print(f"checked {len(exp)} mismatched {len(bad)}")
    for k, e, g in bad[:3]:
        print(f"  {k}: expected {e} got {g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
