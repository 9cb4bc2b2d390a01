#!/usr/bin/env bash
# Issue 16's check that `run` provokes the guest-only rows of spec §3's errno table inside
# throwaway qemu guests (docs/guest-only.md): boots scripts/kernels.sh guests with
# `run --cases N --seed S` (human report), prints each guest's table and fails if a guest-only
# row was not provoked where it can be.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/guest-rows.sh [options]

  --cases N        random cases per guest (default 20000)
  --seed S         generator seed (default 3)
  --kernels "LIST" as scripts/kernels.sh --kernels (default: "6.12 K" where K is the KCOV
                   kernel with fault injection, ~/.cache/unshare-fuzz/kcov/default/vmlinux,
                   when it exists; build it with scripts/kcov-kernel.sh)
  --binary PATH    static harness binary (default: kernels.sh builds it)
  --timeout S      per-guest qemu limit (default 3600)
  --out DIR        output directory (default target/guest-rows/<timestamp>)
  --jobs N         guests booted at once (default 2)
  --check-only DIR only check the reports of an earlier scripts/kernels.sh run in DIR
  -h, --help       this text

A guest passes when its harness exits 0 (every invariant held, nothing broken) and each
guest-only row (files-over-nr-open EMFILE, fault-injected-enomem ENOMEM) was observed at
least once, or is "not here" for a reason that holds in that guest (the Debian cloud kernels
have no fault injection). Exit 0 all passed, 1 a guest failed, 2 could not set up.
EOF
}

die() { echo "guest-rows.sh: error: $*" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CASES=20000 SEED=3 KERNELS="" BINARY="" TIMEOUT=3600 OUT="" JOBS=2 CHECK_ONLY=""
KCOV_IMAGE="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kcov/default/vmlinux"
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) CASES=${2?}; shift 2 ;;
        --seed) SEED=${2?}; shift 2 ;;
        --kernels) KERNELS=${2?}; shift 2 ;;
        --binary) BINARY=${2?}; shift 2 ;;
        --timeout) TIMEOUT=${2?}; shift 2 ;;
        --out) OUT=${2?}; shift 2 ;;
        --jobs) JOBS=${2?}; shift 2 ;;
        --check-only) CHECK_ONLY=${2?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
for v in "$CASES" "$SEED" "$TIMEOUT" "$JOBS"; do
    case "$v" in ''|*[!0-9]*) die "numbers only: '$v'" ;; esac
done
# boot_guests: scripts/kernels.sh with `run` (the human report, with the errno table) in $OUT.
boot_guests() {
    if [ -z "$KERNELS" ]; then
        KERNELS=6.12
        if [ -s "$KCOV_IMAGE" ]; then KERNELS+=" $KCOV_IMAGE"
        else echo "guest-rows.sh: no KCOV kernel at $KCOV_IMAGE: fail-nth is checked nowhere (scripts/kcov-kernel.sh builds it)"; fi
    fi
    : "${OUT:=$ROOT/target/guest-rows/$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$(dirname "$OUT")"
    local args=(--kernels "$KERNELS" --args "run,--cases,$CASES,--seed,$SEED" --timeout "$TIMEOUT" --jobs "$JOBS"
        --out "$OUT") rc=0
    [ -n "$BINARY" ] && args+=(--binary "$BINARY")
    # kernels.sh summarises KTAP; these reports are the human ones, so its table step fails:
    # the verdict is taken from each report below.
    bash "$ROOT/scripts/kernels.sh" "${args[@]}" > "$OUT.kernels.log" 2>&1 || rc=$?
    if [ "$rc" = 2 ]; then
        tail -n 20 "$OUT.kernels.log" >&2
        die "scripts/kernels.sh could not set itself up (exit 2)"
    fi
    echo "guests booted in $((SECONDS - start)) s: $KERNELS ($CASES cases, seed $SEED; log $OUT.kernels.log)"
}

start=$SECONDS
if [ -n "$CHECK_ONLY" ]; then OUT=$CHECK_ONLY; else boot_guests; fi

ROWS="files-over-nr-open fault-injected-enomem"
failed=0 n=0
for report in "$OUT"/*/report.ktap; do
    [ -e "$report" ] || continue
    n=$((n + 1))
    name=$(basename "$(dirname "$report")")
    text=$(tr -d '\r' < "$report")
    status=$(sed -n 's/^# guest-exit: *//p' <<<"$text" | tail -n1)
    echo "== $name: guest-exit ${status:-none}; $(grep -m1 '^guest:' <<<"$text" || echo 'guest: (no line)')"
    sed -n '/^errno conditions of spec/,/^$/p' <<<"$text"
    grep -E '^(cases|time|result):' <<<"$text" || true
    [ "$status" = 0 ] || { echo "FAIL $name: the harness did not exit 0"; failed=1; }
    for row in $ROWS; do
        line=$(grep -E "^$row " <<<"$text" || true)
        count=$(awk '{print $3}' <<<"$line")
        if [ -z "$line" ]; then
            echo "FAIL $name: no row $row in the report"; failed=1
        elif [ "${count:-0}" -gt 0 ]; then
            :
        elif [ "$row" = fault-injected-enomem ] && [[ "$line" == *"(not here: this guest's kernel has no fault injection set up)"* ]]; then
            echo "SKIP $name: $row: this guest's kernel has no fault injection (checked in the KCOV guest)"
        else
            echo "FAIL $name: $row provoked 0 times: $line"; failed=1
        fi
    done
done
[ "$n" -gt 0 ] || die "no guest report in $OUT"
echo "guest-rows.sh: $n guests, $((SECONDS - start)) s: $([ "$failed" = 0 ] && echo PASS || echo FAIL)"
exit "$failed"
