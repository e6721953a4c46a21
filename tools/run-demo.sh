#!/usr/bin/env bash
# The `make run` demo: mdcache fed by two mdfeed processes (UDP bin1 and TCP
# jsonl, the latter with account messages for 20 accounts too) for a bounded
# time against $REDIS_URL, or against a private redis-server started here
# when REDIS_URL is unset. Ends with a summary and a few keys read back;
# everything it started is stopped on exit.
#
#   DEMO_SECONDS (15)   how long the feeds run
#   DEMO_RATE (50000)   ticks/s, both feeds together
#   DEMO_SYMBOLS (1000)
set -u

BUILD=${BUILD:-build}
SECONDS_=${DEMO_SECONDS:-15}
RATE=${DEMO_RATE:-50000}
SYMBOLS=${DEMO_SYMBOLS:-1000}
ACCOUNTS=20
MDCACHE=$BUILD/mdcache
MDFEED=$BUILD/mdfeed

for b in "$MDCACHE" "$MDFEED"; do
    [[ -x $b ]] || { echo "run-demo: $b is not built (run make)" >&2; exit 1; }
done
for t in redis-cli python3; do
    command -v $t >/dev/null || { echo "run-demo: $t not found (make deps)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/mdcache-demo.XXXXXX)
REDIS_PID=
MD_PID=
FEED_PIDS=()
cleanup() {
    for p in "${FEED_PIDS[@]}" $MD_PID $REDIS_PID; do
        kill "$p" 2>/dev/null
    done
    for p in "${FEED_PIDS[@]}" $MD_PID $REDIS_PID; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # $1 = tcp|udp
    python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"
}

wait_until() { # $1 = seconds, rest = command
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# ---- Redis
if [[ -z ${REDIS_URL:-} ]]; then
    RPORT=$(free_port tcp)
    mkdir -p "$TMP/redis"
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP/redis" --daemonize no --logfile "$TMP/redis/redis.log" &
    REDIS_PID=$!
    if ! wait_until 10 redis-cli -p "$RPORT" ping; then
        echo "run-demo: private redis-server did not start:" >&2
        tail -5 "$TMP/redis/redis.log" >&2
        exit 1
    fi
    REDIS_URL=redis://127.0.0.1:$RPORT/0
    echo "run-demo: private redis-server on 127.0.0.1:$RPORT"
else
    echo "run-demo: using REDIS_URL from the environment"
fi
RCLI=(redis-cli -u "$REDIS_URL")

# ---- mdcache
UPORT=$(free_port udp)
TPORT=$(free_port tcp)
NCPU=$(nproc 2>/dev/null || echo 1)
CPUS=0
((NCPU > 1)) && CPUS=0,1
"$MDCACHE" --redis "$REDIS_URL" \
    --listen "udp://127.0.0.1:$UPORT?format=bin1" \
    --listen "tcp://127.0.0.1:$TPORT?format=jsonl" \
    --cpus "$CPUS" --stats-interval 1 --log-level info 2>"$TMP/mdcache.log" &
MD_PID=$!
if ! wait_until 20 grep -q 'ready:' "$TMP/mdcache.log"; then
    echo "run-demo: mdcache did not become ready:" >&2
    tail -20 "$TMP/mdcache.log" >&2
    exit 1
fi
echo "run-demo: mdcache ready (pid $MD_PID), feeds: udp://127.0.0.1:$UPORT bin1, tcp://127.0.0.1:$TPORT jsonl"
# ---- feeds: half the rate each, for DEMO_SECONDS
HALF=$((RATE / 2))
TICKS=$((HALF * SECONDS_))
T_START=$SECONDS
echo "run-demo: feeding $SYMBOLS symbols at $RATE ticks/s for ${SECONDS_}s, and $ACCOUNTS accounts (tcp feed)"
"$MDFEED" --target "udp://127.0.0.1:$UPORT" --format bin1 --symbols "$SYMBOLS" \
    --ticks "$TICKS" --rate "$HALF" --duration "$((SECONDS_ + 5))" --source demo-udp \
    --heartbeat-every 1000 --seed 1 --progress >"$TMP/feed-udp.out" 2>"$TMP/feed-udp.err" &
F1=$!
"$MDFEED" --target "tcp://127.0.0.1:$TPORT" --format jsonl --symbols "$SYMBOLS" \
    --ticks "$TICKS" --rate "$HALF" --duration "$((SECONDS_ + 5))" --source demo-tcp \
    --decimal-sizes --heartbeat-every 1000 --accounts "$ACCOUNTS" --seed 1 \
    >"$TMP/feed-tcp.out" 2>"$TMP/feed-tcp.err" &
F2=$!
FEED_PIDS+=($F1 $F2)
# One progress line, refreshed in place: both feeds and mdcache's latest stats.
feed_sent() { tr '\r' '\n' <"$1" | sed -n 's/.*sent \([0-9]*\)\/.*/\1/p' | tail -1; }
# One counter of a stats or final line: $1 = line, $2 = name.
counter() {
    local v
    v=$(sed -n "s/.* $2=\\([0-9]*\\).*/\\1/p" <<<"$1")
    echo "${v:-0}"
}
while kill -0 $F1 2>/dev/null || kill -0 $F2 2>/dev/null; do
    u=$(feed_sent "$TMP/feed-udp.err")
    st=$(grep ' stats: ' "$TMP/mdcache.log" | tail -1)
    printf '\r  %3ds  udp sent %s, tcp alike | ticks_in %s keys_written %s | account_msgs %s account_writes %s orders_deleted %s   ' \
        "$((SECONDS - T_START))" "${u:-0}" "$(counter "$st" ticks_in)" \
        "$(counter "$st" keys_written)" "$(counter "$st" account_msgs)" \
        "$(counter "$st" account_writes)" "$(counter "$st" orders_deleted)"
    sleep 0.5
done
echo
wait $F1; rc1=$?
wait $F2; rc2=$?
if ((rc1 != 0 || rc2 != 0)); then
    echo "run-demo: a feed failed:" >&2
    cat "$TMP/feed-udp.err" "$TMP/feed-tcp.err" >&2
fi
sleep 1.2 # let one more stats line and last_good writes through

# Account keys live 1-2 s and are kept only while mdcache refreshes them
# for a live source: read one of each class now, before mdcache stops.
ACCT_READ="$TMP/accounts-read"
{
    n_pos=$("${RCLI[@]}" --scan --pattern 'hft:positions:*:all' | wc -l)
    n_ord=$("${RCLI[@]}" --scan --pattern 'hft:orders:pending:*' | grep -c '^hft:orders:pending:[^:]*:')
    n_lst=$("${RCLI[@]}" --scan --pattern 'hft:orders:pending:*' | grep -c '^hft:orders:pending:[^:]*$')
    n_bal=$("${RCLI[@]}" --scan --pattern 'hft:balances:*:all' | wc -l)
    n_acc=$("${RCLI[@]}" --scan --pattern 'hft:accounts:*' | wc -l)
    echo "==== one key of each account class read back (before mdcache stopped)"
    for pat in 'hft:positions:*:all' 'hft:orders:pending:*' 'hft:balances:*:all' 'hft:accounts:*'; do
        # An order list, not one order's own key: no ':' after the account.
        k=$("${RCLI[@]}" --scan --pattern "$pat" | grep -v '^hft:orders:pending:[^:]*:' | sort | head -1)
        if [[ -z $k ]]; then
            echo "(no key matches $pat)"
            continue
        fi
        v=$("${RCLI[@]}" GET "$k")
        echo "$k  TTL=$("${RCLI[@]}" TTL "$k") (PTTL $("${RCLI[@]}" PTTL "$k") ms)"
        if ((${#v} > 400)); then
            echo "    ${v:0:400}... (${#v} bytes)"
        else
            echo "    $v"
        fi
    done
} >"$ACCT_READ" 2>&1

# ---- stop mdcache, read its final counters
PEAK_RSS=$(awk '/VmHWM/ {print $2 " " $3}' /proc/$MD_PID/status 2>/dev/null)
kill -TERM $MD_PID
wait $MD_PID
MD_RC=$?
MD_PID=

echo
echo "==== summary"
echo "feed udp/bin1 : $(cat "$TMP/feed-udp.out")"
echo "feed tcp/jsonl: $(cat "$TMP/feed-tcp.out")"
echo "mdcache exit  : $MD_RC"
FINAL=$(grep ' final: ' "$TMP/mdcache.log" | tail -1)
echo "mdcache final : ${FINAL#* final: }"
echo "accounts      : $(counter "$FINAL" account_msgs) messages applied, $(counter "$FINAL" account_writes) values written, $(counter "$FINAL" orders_deleted) terminal orders deleted"
[[ -n $PEAK_RSS ]] && echo "mdcache peak RSS: $PEAK_RSS"
NKEYS=$("${RCLI[@]}" --scan --pattern 'price:*:latest' | wc -l)
echo "keys in Redis (price:*:latest): $NKEYS"
echo "account keys in Redis before mdcache stopped: positions $n_pos, order lists $n_lst, working orders $n_ord, balances $n_bal, accounts $n_acc"
echo
echo "==== 5 keys read back"
"${RCLI[@]}" --scan --pattern 'price:*:latest' | sort | head -5 | while read -r k; do
    echo "$k  TTL=$("${RCLI[@]}" TTL "$k")"
    echo "    $("${RCLI[@]}" GET "$k")"
done
echo
cat "$ACCT_READ"
if grep -q ' final: ' "$TMP/mdcache.log" && ((MD_RC == 0 && rc1 == 0 && rc2 == 0)); then
    exit 0
fi
echo "run-demo: something went wrong (mdcache exit $MD_RC, feeds exit $rc1 $rc2); mdcache log tail:" >&2
tail -20 "$TMP/mdcache.log" >&2
exit 1
