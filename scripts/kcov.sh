#!/usr/bin/env bash
# Kernel line coverage of unshare's path (docs/coverage.md): builds or reuses
# the KCOV kernel (scripts/kcov-kernel.sh), boots it under qemu with the
# harness as /init, runs random cases, the corpus and (optionally) the
# coverage-guided search with KCOV on, and prints the coverage report.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/kcov.sh [options]

  --cases N        random cases (default 3000)
  --seed N         generator seed (default 1)
  --guided N       cases of the coverage-guided search after the corpus (default 0)
  --no-corpus      do not run the corpus
  --fail-nth-sweep M  after the corpus, sweep fail-nth 1..M over the corpus's guest-only
                   fail-nth cases, each until its unshare succeeds (docs/guest-only.md)
  --timeout S      qemu wall-clock limit in seconds (default 3600)
  --out DIR        output directory (default target/kcov/<timestamp>)
  --binary PATH    static harness binary (default: built with cargo, crt-static)
  --variant NAME   kernel variant of scripts/kcov-kernel.sh (default: default)
  --cache DIR      kernel cache (default ~/.cache/unshare-fuzz/kcov)
  --min-lines N    exit 1 if the union reaches fewer target lines than N (CI check)
  -h, --help       this text

Output in DIR: console.log (guest console), data.txt (the guest's records),
report.txt (the text report, also printed), coverage.html, candidates/ (the
guided search's corpus candidates). Exit 0 on success, 1 if the guest run
failed or --min-lines was not met, 2 if it could not set itself up.
EOF
}

die() { echo "kcov.sh: error: $*" >&2; exit 2; }
log() { echo "kcov.sh: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CASES=3000 SEED=1 GUIDED=0 CORPUS=1 SWEEP=0 TIMEOUT=3600 OUT="" BINARY="" VARIANT=default MIN_LINES=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kcov"
while [ $# -gt 0 ]; do
    case "$1" in
        --cases) CASES=${2?}; shift 2 ;;
        --seed) SEED=${2?}; shift 2 ;;
        --guided) GUIDED=${2?}; shift 2 ;;
        --no-corpus) CORPUS=0; shift ;;
        --fail-nth-sweep) SWEEP=${2?}; shift 2 ;;
        --timeout) TIMEOUT=${2?}; shift 2 ;;
        --out) OUT=${2?}; shift 2 ;;
        --binary) BINARY=${2?}; shift 2 ;;
        --variant) VARIANT=${2?}; shift 2 ;;
        --cache) CACHE=${2?}; shift 2 ;;
        --min-lines) MIN_LINES=${2?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
for v in "$CASES" "$SEED" "$GUIDED" "$TIMEOUT" "$MIN_LINES" "$SWEEP"; do
    case "$v" in ''|*[!0-9]*) die "numbers only: '$v'" ;; esac
done

# The kernel (built once, cached outside the clone).
KDIR=$("$ROOT/scripts/kcov-kernel.sh" --variant "$VARIANT" --cache "$CACHE" | tail -n1) \
    || die "the KCOV kernel could not be built (see above)"
[ -s "$KDIR/vmlinux" ] || die "no vmlinux in '$KDIR'"
echo "kernel: $KDIR ($(cat "$KDIR/release"), built in $(cat "$KDIR/build-seconds") s)"

# qemu (scripts/kernels.sh installs it; here only checked).
command -v qemu-system-x86_64 >/dev/null \
    || die "qemu-system-x86_64 is missing: run scripts/kernels.sh --list once (it installs qemu)"
command -v cpio >/dev/null || die "cpio is missing"

if [ -z "$BINARY" ]; then
    log "building the static harness (cargo build --release, crt-static)"
    (cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --quiet --target x86_64-unknown-linux-gnu >&2) || die "cargo build failed"
    BINARY="$ROOT/target/x86_64-unknown-linux-gnu/release/unshare-fuzz"
fi
[ -x "$BINARY" ] || die "no harness binary at $BINARY"

: "${OUT:=$ROOT/target/kcov/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The filter: the PCs of the target functions' coverage points (maps the kernel once).
start=$(date +%s)
"$BINARY" kcov filter --kernel "$KDIR" > "$OUT/filter.txt" || die "kcov filter failed"
echo "filter: $(wc -l < "$OUT/filter.txt") coverage points in the target functions ($(( $(date +%s) - start )) s)"

# The initramfs: the harness as /init, the corpus, the filter.
stage=$(mktemp -d "${TMPDIR:-/tmp}/uf-kcov.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{proc,sys,dev,tmp}
strip --strip-debug -o "$stage/init" "$BINARY" 2>/dev/null || cp "$BINARY" "$stage/init"
chmod 0755 "$stage/init"
cp -r "$ROOT/corpus" "$stage/corpus"
cp "$OUT/filter.txt" "$stage/kcov-filter"
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) \
    > "$OUT/initramfs.cpio"

ARGS="--throwaway-kernel,kcov,run,--cases,$CASES,--seed,$SEED,--filter,/kcov-filter,--guided,$GUIDED"
[ "$CORPUS" = 1 ] && ARGS+=",--corpus,/corpus"
[ "$SWEEP" -gt 0 ] && ARGS+=",--fail-nth-sweep,$SWEEP"
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    ACCEL=(-accel kvm -cpu host)
else
    ACCEL=(-accel tcg -cpu max)
fi
log "booting $KDIR/vmlinux (${ACCEL[1]}): $ARGS"
start=$(date +%s.%N)
rc=0
: > "$OUT/data.txt"
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -M q35 "${ACCEL[@]}" -m 1G -smp 1 \
    -nographic -monitor none -nic none -no-reboot \
    -kernel "$KDIR/vmlinux" -initrd "$OUT/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 uf.args=$ARGS uf.timeout=$((TIMEOUT > 30 ? TIMEOUT - 15 : TIMEOUT))" \
    -serial "file:$OUT/console.log" -serial "file:$OUT/data.txt" </dev/null >"$OUT/qemu.log" 2>&1 &
QEMU=$!
# The minimal kernel has no ACPI, so the guest's power-off only halts it: qemu is stopped
# here once the guest has written its exit line (or has exited on its own).
booted=""
while kill -0 "$QEMU" 2>/dev/null; do
    if [ -z "$booted" ] && grep -q '^uf-guest: running' "$OUT/console.log" 2>/dev/null; then
        booted=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    fi
    if grep -q '^# guest-exit:' "$OUT/data.txt" 2>/dev/null; then
        sleep 2
        kill "$QEMU" 2>/dev/null || true
        break
    fi
    sleep 1
done
wait "$QEMU" || rc=$?
end=$(date +%s.%N)
echo "qemu: $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }') s wall (exit $rc);" \
    "boot to the harness's start: ${booted:-?} s (seen on the console, polled every second)"
status=$(tr -d '\r' < "$OUT/data.txt" | sed -n 's/^# guest-exit: *//p' | tail -n1)
if [ "$status" != 0 ]; then
    echo "kcov.sh: the guest run did not end with exit 0 (guest-exit: ${status:-none}); last console lines:" >&2
    tail -n 30 "$OUT/console.log" | tr -d '\r' >&2
    exit 1
fi

"$BINARY" kcov report --kernel "$KDIR" --data "$OUT/data.txt" --reasons "$ROOT/docs/coverage-reasons.tsv" \
    --html "$OUT/coverage.html" --distill --candidates "$OUT/candidates" | tee "$OUT/report.txt"
echo "results in $OUT"
if [ "$MIN_LINES" -gt 0 ]; then
    got=$(sed -n 's/^all *\([0-9]*\) \/.*/\1/p' "$OUT/report.txt" | head -n1)
    if [ "${got:-0}" -lt "$MIN_LINES" ]; then
        echo "kcov.sh: FAIL: the union reached ${got:-0} target lines, fewer than --min-lines $MIN_LINES" >&2
        exit 1
    fi
    echo "kcov.sh: the union reached $got target lines (at least $MIN_LINES)"
fi
