#!/usr/bin/env bash
# Run unshare-fuzz inside gVisor (runsc) and report every way its unshare differs
# from Linux. See docs/gvisor.md.
set -uo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/gvisor.sh [options]

  --cases N          random cases per runsc version (default: 300)
  --seed S           seed of the run (default: 17)
  --out DIR          output directory (default: target/gvisor/<timestamp>)
  --runsc PATH       use this runsc binary (then --version only names the column)
  --version V        2022 (bookworm's runsc 0.0~20221219), 2024 (bookworm-backports'
                     0.0~20240729) or both (default: both)
  --binary PATH      the harness binary (default: target/x86_64-unknown-linux-gnu/release/unshare-fuzz, built
                     with cargo when missing)
  --cache DIR        runsc cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/gvisor)
  --save-limit N     failures shrunk by run --save-failures per version (default: 16)
  --pick-limit N     further distinct differences shrunk with minimize (default: 40)
  --timeout SECONDS  wall-clock limit per version (default: 1500)
  --install-only     only install the runsc versions (exit 0) or say why not (exit 2)
  -h, --help         this text

Writes into DIR/<version>/: report.txt (human), report.ktap, report.json (`run --json`),
failures/ (one shrunk corpus case per distinct difference, shrunk on gVisor itself),
reproducers/*.c (`unshare-fuzz repro`), and DIR/differences.md (one row per distinct
difference; with --version both one table with a column per version).

Exit status: 0 when gVisor matched the model, 1 when it differed (the expected finding),
2 when it could not be set up, a case was broken or no case reached the syscall.
USAGE
}

die() { echo "gvisor.sh: error: $*" >&2; exit 2; }
log() { echo "gvisor.sh: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CASES=300 SEED=17 OUT="" RUNSC="" VERSION=both BINARY="" SAVE_LIMIT=16 PICK_LIMIT=40 TIMEOUT=1500 INSTALL_ONLY=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/gvisor"

while [ $# -gt 0 ]; do
    case "$1" in
        --cases) CASES=${2?--cases needs a value}; shift 2 ;;
        --seed) SEED=${2?--seed needs a value}; shift 2 ;;
        --out) OUT=${2?--out needs a value}; shift 2 ;;
        --runsc) RUNSC=${2?--runsc needs a value}; shift 2 ;;
        --version) VERSION=${2?--version needs a value}; shift 2 ;;
        --binary) BINARY=${2?--binary needs a value}; shift 2 ;;
        --cache) CACHE=${2?--cache needs a value}; shift 2 ;;
        --save-limit) SAVE_LIMIT=${2?--save-limit needs a value}; shift 2 ;;
        --pick-limit) PICK_LIMIT=${2?--pick-limit needs a value}; shift 2 ;;
        --timeout) TIMEOUT=${2?--timeout needs a value}; shift 2 ;;
        --install-only) INSTALL_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
case "$VERSION" in 2022) VERSIONS=(2022) ;; 2024) VERSIONS=(2024) ;; both) VERSIONS=(2022 2024) ;;
    *) die "--version must be 2022, 2024 or both" ;; esac
case "$CASES$SEED$SAVE_LIMIT$PICK_LIMIT$TIMEOUT" in *[!0-9]*) die "--cases, --seed, --save-limit and --timeout take numbers" ;; esac
[ -n "$RUNSC" ] && [ "$VERSION" = both ] && die "--runsc names one binary: give --version 2022 or 2024 too"
[ "$(id -u)" = 0 ] || die "runsc do needs root"
if [ "$INSTALL_ONLY" = 0 ]; then
    : "${OUT:=$ROOT/target/gvisor/$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT" || die "cannot create $OUT"
    OUT=$(cd "$OUT" && pwd)
fi

# ------------------------------------------------------------------ runsc
#
# runsc comes from Debian packages, fetched with a private apt configuration under
# $CACHE/apt (as scripts/kernels.sh does), so adding bookworm-backports never changes what
# the host's apt installs; each version is unpacked with dpkg-deb -x into $CACHE/<version>.

APTDIR="$CACHE/apt"
APT_OPTS=()
# shellcheck source=lib/private-apt.sh
. "$ROOT/scripts/lib/private-apt.sh"
setup_private_apt() {
    mkdir -p "$CACHE/debs" || return 1
    private_apt_sources "$APTDIR" "debian bookworm" "debian bookworm-backports" || return 1
    private_apt_options "$APTDIR"
    if [ ! -e "$APTDIR/updated" ] || [ -n "$(find "$APTDIR/updated" -mmin +1440)" ]; then
        log "fetching the bookworm and bookworm-backports package indexes into $APTDIR"
        if apt-get "${APT_OPTS[@]}" update -qq >&2; then
            touch "$APTDIR/updated"
        elif ! ls "$APTDIR"/lists/*_Packages* >/dev/null 2>&1; then
            log "cannot fetch the package indexes"; return 1
        fi
    fi
}

# runsc_for VERSION -> prints the path of that version's runsc, installing it when missing
runsc_for() {
    local v=$1 want bin="$CACHE/$1/usr/bin/runsc" ver
    [ -x "$bin" ] && { echo "$bin"; return 0; }
    case "$v" in 2022) want='0.0~20221219' ;; 2024) want='0.0~20240729' ;; esac
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { log "apt-get and dpkg-deb are needed"; return 1; }
    [ ${#APT_OPTS[@]} -gt 0 ] || setup_private_apt || return 1
    ver=$(apt-cache "${APT_OPTS[@]}" madison runsc 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
        | grep -F "$want" | head -1)
    [ -n "$ver" ] || { log "no runsc $want in bookworm or bookworm-backports"; return 1; }
    log "downloading runsc $ver"
    (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download -q "runsc=$ver" >&2) || { log "apt-get download runsc=$ver failed"; return 1; }
    local deb
    deb=$(ls -t "$CACHE"/debs/runsc_"${ver//:/%3a}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { log "the downloaded runsc package is missing"; return 1; }
    rm -rf "$CACHE/$v.tmp" && mkdir -p "$CACHE/$v.tmp" && dpkg-deb -x "$deb" "$CACHE/$v.tmp" \
        && rm -rf "$CACHE/${v:?}" && mv "$CACHE/$v.tmp" "$CACHE/$v" || { log "dpkg-deb -x $deb failed"; return 1; }
    echo "$ver" > "$CACHE/$v/VERSION"
    echo "$bin"
}

if [ "$INSTALL_ONLY" = 1 ]; then
    for v in "${VERSIONS[@]}"; do runsc_for "$v" || exit 2; done
    exit 0
fi

# ------------------------------------------------------------------ harness
if [ -z "$BINARY" ]; then
    BINARY="$ROOT/target/x86_64-unknown-linux-gnu/release/unshare-fuzz"
    if [ ! -x "$BINARY" ]; then
        log "building the harness (cargo build --release)"
        (cd "$ROOT" && nice -n 10 cargo build --release -q >&2) || die "cannot build the harness"
    fi
fi
[ -x "$BINARY" ] || die "no harness binary at $BINARY"
BINARY=$(readlink -f "$BINARY")

# run_version VERSION RUNSC DIR: runs `run` inside runsc, then shrinks and makes the reproducers
# there. runsc do gives the sandbox a tmpfs overlay over a read-only view of the host, so the
# results are written under /var/tmp inside and come out as a tar stream on stdout (the host is
# never made writable to the sandbox). Prints the harness's exit status.
run_version() {
    local v=$1 runsc=$2 dir=$3 state
    state=$(mktemp -d "${TMPDIR:-/tmp}/gvisor-sh.XXXXXX") || return 1
    mkdir -p "$dir" "$dir/debug"
    local inner
    # shellcheck disable=SC2016  # expanded inside the sandbox
    inner='
        D=/var/tmp/uf-gvisor; rm -rf $D; mkdir -p $D/failures $D/reproducers; cd $D || exit 99
        "$UF" --throwaway-kernel run --cases "$UF_CASES" --seed "$UF_SEED" --json $D/report.json \
            --ktap $D/report.ktap --save-failures $D/failures --save-limit "$UF_SAVE_LIMIT" \
            > $D/report.txt 2> $D/stderr.txt
        echo $? > $D/status
        # One more shrunk case for each distinct difference that --save-failures did not cover.
        if [ -s $D/report.json ] && python3 "$UF_PY" pick $D "$UF_PICK_LIMIT" > $D/pick-count 2>> $D/stderr.txt; then
            for f in $D/pick/*.json; do
                [ -e "$f" ] || continue
                "$UF" --throwaway-kernel minimize "$f" -o $D/failures/$(basename "$f") >> $D/minimize.txt 2>&1
            done
        fi
        for f in $D/failures/*.json $D/pick/*.json; do
            [ -e "$f" ] || continue
            b=$(basename "$f" .json)
            case "$f" in */pick/*) b=found-$b ;; esac
            "$UF" --throwaway-kernel repro "$f" > $D/reproducers/$b.c 2>> $D/stderr.txt || rm -f $D/reproducers/$b.c
        done
        tar -C $D -cf - .'
    log "runsc $v ($runsc): run --cases $CASES --seed $SEED"
    timeout "$TIMEOUT" env UF="$BINARY" UF_PY="$ROOT/scripts/gvisor_differences.py" \
        UF_PICK_LIMIT="$PICK_LIMIT" UF_CASES="$CASES" UF_SEED="$SEED" UF_SAVE_LIMIT="$SAVE_LIMIT" \
        "$runsc" --root="$state" --network=none --platform=ptrace --debug-log="$dir/debug/" \
        do sh -c "$inner" 2> "$dir/runsc-stderr.txt" | tar -xf - -C "$dir"
    local rc=("${PIPESTATUS[@]}")
    rm -rf "$state"
    if [ ! -s "$dir/status" ]; then
        log "runsc $v: no result (runsc exit ${rc[0]}; see $dir/runsc-stderr.txt)"
        echo 99; return 0
    fi
    cat "$dir/status"
}

# Compiles every reproducer and runs each under runsc on its own (the difference must show:
# exit 1), writing DIR/reproducers/NAME.out and .status.
check_reproducers() {
    local v=$1 runsc=$2 dir=$3 c bin state
    command -v gcc >/dev/null || { log "no gcc: the reproducers are not compiled"; return 0; }
    for c in "$dir"/reproducers/*.c; do
        [ -e "$c" ] || continue
        bin=${c%.c}
        gcc -O1 -o "$bin" "$c" -pthread 2> "$bin.gcc.txt" || { echo gcc-failed > "$bin.status"; continue; }
        state=$(mktemp -d "${TMPDIR:-/tmp}/gvisor-sh.XXXXXX") || continue
        # gVisor is the throwaway kernel: the reproducer's sandbox goes on where / cannot be made private.
        timeout 120 env UNSHARE_FUZZ_THROWAWAY_KERNEL=1 "$runsc" --root="$state" --network=none --platform=ptrace \
            do "$bin" > "$bin.out" 2>&1
        echo $? > "$bin.status"
        rm -rf "$state"
    done
}

declare -A STATUS
for v in "${VERSIONS[@]}"; do
    if [ -n "$RUNSC" ]; then r=$RUNSC; else r=$(runsc_for "$v") || { STATUS[$v]=setup; continue; }; fi
    [ -x "$r" ] || { log "runsc $v: $r is not executable"; STATUS[$v]=setup; continue; }
    s=$(run_version "$v" "$r" "$OUT/$v")
    STATUS[$v]=$s
    check_reproducers "$v" "$r" "$OUT/$v"
    "$r" --version 2>/dev/null | head -1 > "$OUT/$v/runsc-version.txt"
    log "runsc $v: harness exit status $s; $(grep -E '^result:' "$OUT/$v/report.txt" 2>/dev/null)"
done

python3 "$ROOT/scripts/gvisor_differences.py" table "$OUT" "${VERSIONS[@]}" > "$OUT/differences.md" \
    || log "cannot write $OUT/differences.md"

# 0: every version matched; 1: a version differed (run exit 1); 2: any could not be set up, had
# a broken case, or reached no syscall (run exit bit 2), or did not finish.
worst=0
for v in "${VERSIONS[@]}"; do
    case "${STATUS[$v]}" in
        0) ;;
        1) [ $worst -lt 1 ] && worst=1 ;;
        *) worst=2 ;;
    esac
done
log "reports in $OUT (differences: $OUT/differences.md); exit $worst"
exit $worst
