#!/usr/bin/env bash
# Measures the `exec` fuzz target's exec/s against the bare fork+unshare+wait loop
# (scripts/bench/bare-loop.c) on the same cases: the fuzzer runs SECONDS from an empty
# corpus, then the bare loop replays the cases of the corpus it built for SECONDS.
# usage: scripts/fuzz-bench.sh [SECONDS]   (default 60; needs root or unprivileged user ns)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-60}
case "$SECS" in ''|*[!0-9]*) echo "fuzz-bench: SECONDS must be a number" >&2; exit 2 ;; esac
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$ROOT"
cargo build --release --quiet
(cd fuzz && cargo fuzz build -s none exec)
mkdir -p "$WORK/corpus"
(cd fuzz && cargo fuzz run exec -s none "$WORK/corpus" -- -max_total_time="$SECS") 2> "$WORK/fuzz.log" \
    || { tail -30 "$WORK/fuzz.log"; echo "fuzz-bench: the exec target failed" >&2; exit 1; }
fuzz_rate=$(grep -o 'exec/s: [0-9]*' "$WORK/fuzz.log" | tail -1 | awk '{print $2}')
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$WORK/fuzz.log" | tail -1)
gcc -O2 -o "$WORK/bare-loop" scripts/bench/bare-loop.c
target/release/unshare-fuzz decode --raw-flags "$WORK"/corpus/* > "$WORK/cases.txt"
bare=$("$WORK/bare-loop" "$SECS" < "$WORK/cases.txt")
bare_rate=$(echo "$bare" | sed -n 's/.*: \([0-9]*\) cases\/s.*/\1/p')
echo "exec target: $runs runs in $SECS s, $fuzz_rate exec/s (libFuzzer's figure, all invariants checked)"
echo "$bare"
awk -v f="$fuzz_rate" -v b="$bare_rate" 'BEGIN { printf "ratio exec/bare: %.2f\n", f / b }'
