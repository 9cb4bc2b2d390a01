#!/usr/bin/env bash
# Measures the `exec` fuzz target against the bare fork+unshare+wait loop
# (scripts/bench/bare-loop.c). 1) The fuzzer runs SECONDS from an empty corpus: libFuzzer's
# exec/s while exploring. 2) On the same cases (the corpus it built, each case equally
# often), the bare loop and the exec target (libFuzzer's replay mode, `-runs=K FILES`,
# every invariant checked) are timed one after the other: that ratio compares like with like.
# usage: scripts/fuzz-bench.sh [SECONDS]   (default 60; needs root or unprivileged user ns)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-60}
case "$SECS" in ''|*[!0-9]*) echo "fuzz-bench: SECONDS must be a number" >&2; exit 2 ;; esac
command -v cargo-fuzz >/dev/null || (cd "$HOME" && cargo install cargo-fuzz --locked)
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
files=("$WORK"/corpus/*)
target/x86_64-unknown-linux-gnu/release/unshare-fuzz decode --raw-flags "${files[@]}" > "$WORK/cases.txt"
sleep 5 # let the kernel finish tearing down the fuzzer's namespaces
bare=$("$WORK/bare-loop" "$SECS" < "$WORK/cases.txt")
bare_rate=$(echo "$bare" | sed -n 's/.*: \([0-9]*\) cases\/s.*/\1/p')
bare_count=$(echo "$bare" | sed -n 's/^bare: \([0-9]*\) cases.*/\1/p')
k=$(( bare_count / 2 / ${#files[@]} )); [ "$k" -ge 1 ] || k=1
sleep 5
start=$(date +%s%N)
fuzz/target/x86_64-unknown-linux-gnu/release/exec -runs="$k" "${files[@]}" > "$WORK/same.log" 2>&1 \
    || { tail -30 "$WORK/same.log"; echo "fuzz-bench: the exec target failed on its corpus" >&2; exit 1; }
ns=$(( $(date +%s%N) - start ))
same=$(awk -v n="$(( k * ${#files[@]} ))" -v ns="$ns" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
echo "1) exploring: $runs runs in $SECS s, $fuzz_rate exec/s (libFuzzer's figure; mutated inputs, all invariants checked)"
echo "2) same cases (${#files[@]} corpus cases, each equally often):"
echo "   $bare"
echo "   exec target: $(( k * ${#files[@]} )) cases in $(awk -v ns="$ns" 'BEGIN { printf "%.1f", ns / 1e9 }') s: $same cases/s"
awk -v f="$same" -v b="$bare_rate" 'BEGIN { printf "   ratio exec/bare: %.2f\n", f / b }'
