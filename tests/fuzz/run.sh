#!/usr/bin/env bash
# Runs every libFuzzer target in build/fuzz/ for SECONDS each, starting
# from the committed seed corpus (copied, so runs never grow the repo).
# Any crash, leak or sanitizer report fails the run and leaves the
# reproducer in build/fuzz/artifacts/.
set -euo pipefail
secs=${1:-20}
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz/artifacts
fail=0
for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=${f##*/fuzz_}
    work=$(mktemp -d)
    if [ -d "tests/fuzz/corpus/$name" ]; then cp -r "tests/fuzz/corpus/$name/." "$work/"; fi
    echo "fuzz_$name: ${secs}s"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 \
        -artifact_prefix=build/fuzz/artifacts/ "$work" >"build/fuzz/fuzz_$name.log" 2>&1; then
        echo "fuzz_$name FAILED; log: build/fuzz/fuzz_$name.log"
        tail -40 "build/fuzz/fuzz_$name.log"
        fail=1
    else
        grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "build/fuzz/fuzz_$name.log" | tail -1 || true
    fi
    rm -rf "$work"
done
exit $fail
