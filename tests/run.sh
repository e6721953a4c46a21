#!/usr/bin/env bash
# Runs mdcache's tests: every cmocka binary in BUILD_DIR/tests, then (unless
# the second argument is "unit") the integration suite against the real
# daemon and real redis-server processes. Ends with one line
# "N passed, N failed" counting test cases, and fails if anything failed or
# nothing ran.
#
#   bash tests/run.sh build          unit + integration
#   bash tests/run.sh build unit     unit only
#   MD_SAN=1 bash tests/run.sh build-san   (sanitizer options for the daemon)
set -u

BUILD=${1:-build}
MODE=${2:-all}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

passed=0
failed=0
bad_bins=()

if [[ ${MD_SAN:-0} == 1 ]]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

shopt -s nullglob
units=("$BUILD"/tests/test_*)
echo "== unit tests (${#units[@]} binaries in $BUILD/tests)"
for t in "${units[@]}"; do
    [[ -x $t && -f $t ]] || continue
    log=$(mktemp)
    timeout 300 "$t" >"$log" 2>&1
    rc=$?
    # Summed: a binary may run several cmocka groups.
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test(s)\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test(s).*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        f=1 # crashed or exited non-zero without cmocka saying why
    fi
    if [[ $rc -ne 0 || $f -ne 0 ]]; then
        cat "$log"
        echo "-- $(basename "$t"): FAILED (exit $rc, $p passed, $f failed)"
        bad_bins+=("$(basename "$t")")
    else
        echo "-- $(basename "$t"): $p passed"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    rm -f "$log"
done

if [[ $MODE != unit ]]; then
    echo "== integration tests"
    export MDCACHE_BIN=$(cd "$BUILD" 2>/dev/null && pwd)/mdcache
    export MDFEED_BIN=$(cd "$BUILD" 2>/dev/null && pwd)/mdfeed
    export MDGEN_BIN=$(cd "$BUILD" 2>/dev/null && pwd)/mdgen
    tally=$(mktemp)
    if [[ ! -x $MDCACHE_BIN ]]; then
        echo "integration: $MDCACHE_BIN not built"
        failed=$((failed + 1))
    else
        "$PY" "$HERE/integration/runner.py" --tally "$tally"
        rc=$?
        ip=$(sed -n 's/^passed=\([0-9]\+\)$/\1/p' "$tally")
        if_=$(sed -n 's/^failed=\([0-9]\+\)$/\1/p' "$tally")
        ip=${ip:-0}
        if_=${if_:-0}
        if [[ $rc -ne 0 && $if_ -eq 0 ]]; then
            echo "integration: runner exited $rc"
            if_=1
        fi
        passed=$((passed + ip))
        failed=$((failed + if_))
    fi
    rm -f "$tally"
fi

if [[ ${#bad_bins[@]} -gt 0 ]]; then
    echo "failing unit binaries: ${bad_bins[*]}"
fi
echo "$passed passed, $failed failed"
if [[ $failed -ne 0 || $passed -eq 0 ]]; then
    exit 1
fi
exit 0
