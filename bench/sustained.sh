#!/usr/bin/env bash
# Sustained-rate probe for the core pipeline (issue #2): offers UDP bin1 at
# a series of open-loop rates, each against a fresh redis-server and
# mdcache, and reports what mdcache took in, what the kernel dropped, how
# many keys it wrote and whether every key in Redis is exact afterwards.
#
# Pinning on the 2-core machine: redis-server and mdfeed on CPU 0, mdcache's
# worker(s) as given by CPUS (default 1). Every run is bounded by TICKS and
# mdfeed's --duration. Latency is mdcache's own figure, per key written:
# from the worker's receipt of the oldest tick the write carries to Redis's
# acknowledgement (issue #3 adds the generator-side, scheduled-time view).
#
#   RATES="100000 300000 0"  (0 = flat out)   TICKS=2000000   SYMBOLS=10000
set -u
cd "$(dirname "$0")/.."
RATES=${RATES:-"100000 200000 300000 400000 600000 0"}
TICKS=${TICKS:-2000000}
SYMBOLS=${SYMBOLS:-10000}
CPUS=${CPUS:-1}
PER=${PER:-50}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket,sys;s=socket.socket(socket.AF_INET,getattr(socket,sys.argv[1]));s.bind(("127.0.0.1",0));print(s.getsockname()[1])' "$1"; }

printf "| offered ticks/s | sent | received | kernel drops (datagrams) | achieved ticks/s | keys written | batches | keys/batch p50 | latency p50 us | p99 us | p99.9 us | max us | exact |\n"
printf "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
for rate in $RATES; do
    rp=$(port SOCK_STREAM); up=$(port SOCK_DGRAM)
    taskset -c 0 redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >/dev/null &
    rpid=$!
    until redis-cli -p "$rp" ping >/dev/null 2>&1; do sleep 0.05; done
    build/mdcache --redis "redis://127.0.0.1:$rp/0" --listen "udp://127.0.0.1:$up?format=bin1" \
        --cpus "$CPUS" --stats-interval 0.5 2>"$TMP/md.log" &
    mpid=$!
    until grep -q "ready:" "$TMP/md.log"; do sleep 0.05; done
    start=$(date +%s.%N)
    taskset -c 0 build/mdfeed --target "udp://127.0.0.1:$up" --format bin1 --symbols "$SYMBOLS" \
        --ticks "$TICKS" --rate "$rate" --per-packet "$PER" --duration 60 --seed "$rate" \
        --source "bench$rate" --expect "$TMP/exp" >"$TMP/feed.log" 2>&1
    # Wait until mdcache stops receiving (its counters settle), bounded.
    prev=-1
    for _ in $(seq 1 40); do
        sleep 0.5
        cur=$(grep " stats: " "$TMP/md.log" | tail -1 | sed 's/.*ticks_in=\([0-9]*\).*dirty=\([0-9]*\).*/\1-\2/')
        [[ $cur == "$prev" && $cur == *-0 ]] && break
        prev=$cur
    done
    kill -TERM $mpid; wait $mpid
    fin=$(grep " final: " "$TMP/md.log")
    get() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$fin"; }
    sent=$(sed -n 's/.*valid=\([0-9]*\).*/\1/p' "$TMP/feed.log")
    el=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' "$TMP/feed.log")
    tin=$(get ticks_in); kd=$(get kernel_drops); kw=$(get keys_written); b=$(get batches)
    ok=$(python3 bench/verify.py "$TMP/exp" "$rp" | head -1)
    ach=$(python3 -c "print(int($tin/$el))")
    lat=$(grep " latency_us: " "$TMP/md.log")
    hq() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
    bk=$(hq p50 "$(grep " batch_keys: " "$TMP/md.log")")
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "${rate/#0/flat out}" "$sent" "$tin" "$kd" \
        "$ach" "$kw" "$b" "$bk" "$(hq p50 "$lat")" "$(hq p99 "$lat")" "$(hq p999 "$lat")" "$(hq max "$lat")" "$ok"
    redis-cli -p "$rp" shutdown nosave >/dev/null 2>&1; wait $rpid 2>/dev/null
done
