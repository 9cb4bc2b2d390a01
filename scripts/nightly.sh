#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run indirectly through `step`
# Nightly run of unshare-fuzz: build, property tests with many cases, a long `run`
# (KTAP, JUnit and JSON reports), every cargo-fuzz target (exec, model, corpus_format),
# seeded from corpus/, for BUDGET_SECONDS each in libFuzzer fork mode (one job per core),
# a canary proving that a violation does abort the exec target, corpus replay (KTAP,
# JUnit, JSON), and every new fuzz artifact turned into a minimized corpus file plus a C
# reproducer.
#
# usage: scripts/nightly.sh BUDGET_SECONDS [OUT_DIR]
#   OUT_DIR defaults to target/nightly/<UTC timestamp>. Everything lands there:
#   summary.txt, nightly.xml (JUnit, one test case per step), run.{txt,json,ktap,xml},
#   tests.log, seeds.log, fuzz/<target>/{fuzz.log,corpus/,artifacts/}, candidates/*.{json,c},
#   replay.{ktap,xml,json}.
# Knobs (environment): NIGHTLY_PROPTEST_CASES (default 3000), NIGHTLY_RUN_CASES (20000),
#   NIGHTLY_SEED (default: the date, YYYYMMDD), NIGHTLY_JOBS (default nproc),
#   NIGHTLY_SANITIZER (none | address; address needs the nightly toolchain),
#   NIGHTLY_CORPUS_DIR (a persistent libFuzzer corpus root, e.g. restored from a CI cache;
#   default fuzz/corpus), NIGHTLY_SKIP_TESTS=1 (skip cargo test).
# Exit status: 0 when every step passed, 1 when any step failed or any target left an
# artifact, 2 on usage errors. Runs unattended; installs gcc and cargo-fuzz if missing.
set -uo pipefail

usage() { sed -n "3,21p" "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    usage >&2
    exit 2
fi
BUDGET=$1
case "$BUDGET" in ''|*[!0-9]*|0) echo "nightly: BUDGET_SECONDS must be a positive number" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${2:-$ROOT/target/nightly/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT" || { echo "nightly: cannot create $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
PROPTEST_N=${NIGHTLY_PROPTEST_CASES:-3000}
RUN_CASES=${NIGHTLY_RUN_CASES:-20000}
SEED=${NIGHTLY_SEED:-$(date -u +%Y%m%d)}
JOBS=${NIGHTLY_JOBS:-$(nproc)}
SANITIZER=${NIGHTLY_SANITIZER:-none}
CORPUS_ROOT=${NIGHTLY_CORPUS_DIR:-$ROOT/fuzz/corpus}
BIN=$ROOT/target/x86_64-unknown-linux-gnu/release/unshare-fuzz
FUZZ_TOOLCHAIN=()
[ "$SANITIZER" = none ] || FUZZ_TOOLCHAIN=(+nightly)

cd "$ROOT" || exit 2
: > "$OUT/summary.txt"
STEPS=()     # "name|status|seconds|message"
FAILED=0

log() { echo "nightly: $*" | tee -a "$OUT/summary.txt" >&2; }

# record NAME STATUS(pass|fail|skip) SECONDS MESSAGE
record() {
    STEPS+=("$1|$2|$3|$4")
    [ "$2" = fail ] && FAILED=1
    log "$(printf '%-28s %-4s %5ss  %s' "$1" "$2" "$3" "$4")"
}

# step NAME LOGFILE COMMAND...: runs a command, records pass/fail with its exit status.
step() {
    local name=$1 logfile=$2 start rc
    shift 2
    start=$(date +%s)
    "$@" > "$logfile" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        record "$name" pass $(( $(date +%s) - start )) "log: ${logfile#"$OUT"/}"
    else
        record "$name" fail $(( $(date +%s) - start )) "exit $rc, log: ${logfile#"$OUT"/}"
    fi
    return $rc
}

# in_fuzz COMMAND...: runs a command in fuzz/ (cargo-fuzz's own workspace).
in_fuzz() { (cd "$ROOT/fuzz" && "$@"); }

# ---------------------------------------------------------------- tools
install_tools() {
    if ! command -v gcc > /dev/null; then
        apt-get update -q && apt-get install -y -q gcc || return 1
    fi
    if ! cargo fuzz --version > /dev/null 2>&1; then
        (cd "$HOME" && cargo install cargo-fuzz --locked) || return 1
    fi
    if [ "$SANITIZER" != none ] && ! rustup run nightly rustc --version > /dev/null 2>&1; then
        rustup toolchain install nightly --profile minimal || return 1
    fi
    cargo --version && cargo fuzz --version && gcc --version | head -1
}
step tools "$OUT/tools.log" install_tools || { log "cannot install the tools; stopping"; exit 1; }

# ---------------------------------------------------------------- build
step build "$OUT/build.log" cargo build --release --locked || { log "build failed; stopping"; exit 1; }
step fuzz-build "$OUT/fuzz-build.log" in_fuzz cargo "${FUZZ_TOOLCHAIN[@]}" fuzz build -s "$SANITIZER"

# ---------------------------------------------------------------- tests
if [ "${NIGHTLY_SKIP_TESTS:-0}" = 1 ]; then
    record tests skip 0 "NIGHTLY_SKIP_TESTS=1"
else
    step "tests (PROPTEST_CASES=$PROPTEST_N)" "$OUT/tests.log" \
        env PROPTEST_CASES="$PROPTEST_N" cargo test --release --locked
fi

# ---------------------------------------------------------------- run
step "run ($RUN_CASES cases, seed $SEED)" "$OUT/run.txt" \
    "$BIN" run --cases "$RUN_CASES" --seed "$SEED" --jobs "$JOBS" \
    --json "$OUT/run.json" --ktap "$OUT/run.ktap" --junit "$OUT/run.xml"

# ---------------------------------------------------------------- seeds
# Every target starts from the readable corpus (`unshare-fuzz seeds`: compact JSON cases for
# exec and model, which read them verbatim; the files themselves, bad ones too, for
# corpus_format) plus the corpus grown on earlier nights.
TARGETS=$(cd fuzz && cargo fuzz list 2> /dev/null)
seeds() {
    local t dir sources
    for t in $TARGETS; do
        dir=$OUT/fuzz/$t
        mkdir -p "$dir/corpus" "$dir/artifacts"
        if [ -d "$CORPUS_ROOT/$t" ]; then cp -r "$CORPUS_ROOT/$t/." "$dir/corpus/" 2> /dev/null; fi
        sources=("$ROOT/corpus")
        [ "$t" = corpus_format ] && sources+=("$ROOT/tests/data/bad-corpus")
        "$BIN" seeds --target "$t" "${sources[@]}" "$dir/corpus" || return 1
    done
}
step seeds "$OUT/seeds.log" seeds

# ---------------------------------------------------------------- fuzz
for t in $TARGETS; do
    dir=$OUT/fuzz/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    start=$(date +%s)
    (cd fuzz && cargo "${FUZZ_TOOLCHAIN[@]}" fuzz run "$t" -s "$SANITIZER" "$dir/corpus" -- \
        -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$BUDGET" -artifact_prefix="$dir/artifacts/") > "$dir/fuzz.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    found=$(find "$dir/artifacts" -type f | wc -l)
    rate=$(grep -o 'exec/s: [0-9]*' "$dir/fuzz.log" | tail -1 | awk '{print $2}')
    refusal=$(grep -m1 'NOT judging' "$dir/fuzz.log")
    inputs=$(find "$dir/corpus" -type f | wc -l)
    msg="exec/s ${rate:-?}, corpus $inputs, artifacts $found, log: fuzz/$t/fuzz.log"
    if [ -n "$refusal" ]; then
        record "fuzz $t" fail "$secs" "${refusal#*: } ($msg)"
    elif [ "$found" -gt 0 ]; then
        record "fuzz $t" fail "$secs" "$msg"
    elif [ $rc != 0 ]; then
        record "fuzz $t" fail "$secs" "libFuzzer exit $rc, $msg"
    else
        record "fuzz $t" pass "$secs" "$msg"
    fi
    # Keep the grown corpus for the next night (CI: cache NIGHTLY_CORPUS_DIR).
    mkdir -p "$CORPUS_ROOT/$t" && cp -r "$dir/corpus/." "$CORPUS_ROOT/$t/" 2> /dev/null
done

# ---------------------------------------------------------------- artifacts -> candidates
# candidate TARGET ARTIFACT DEST: minimizes the artifact with libFuzzer's minimizer (which
# keeps the failure while shrinking the bytes), decodes it into DEST/<name>.bin.json (a
# corpus file, origin "fuzz"; `minimize` shrinks it further when that command exists) and
# writes a C reproducer DEST/<name>.c next to it. A corpus_format artifact is a text that
# breaks the corpus parser, not a case: it is kept as DEST/<name>.bin (and .txt) only.
candidate() {
    local t=$1 art=$2 dest=$3 base min
    base=$t-$(basename "$art")
    mkdir -p "$dest"
    in_fuzz cargo "${FUZZ_TOOLCHAIN[@]}" fuzz tmin "$t" -s "$SANITIZER" -r 500 "$art" \
        -- -artifact_prefix="$dest/minimized-" > "$dest/$base.tmin.log" 2>&1
    # shellcheck disable=SC2012 # libFuzzer's artifact names are hex digests
    min=$(ls -t "$dest"/minimized-* 2> /dev/null | head -1)
    [ -n "$min" ] || min=$art
    mv "$min" "$dest/$base.bin" 2> /dev/null || cp "$art" "$dest/$base.bin"
    if [ "$t" = corpus_format ]; then
        "$BIN" __target corpus_format "$dest/$base.bin" > "$dest/$base.txt" 2>&1
        echo "candidate: $dest/$base.bin (a corpus-parser input; see $dest/$base.txt)"
        return 0
    fi
    "$BIN" decode --save "$dest" "$dest/$base.bin" || return 1
    if "$BIN" minimize --help > /dev/null 2>&1; then
        "$BIN" minimize "$dest/$base.bin.json" || true
    fi
    if "$BIN" repro "$dest/$base.bin.json" > "$dest/$base.c" 2> "$dest/$base.repro.err"; then
        echo "candidate: $dest/$base.bin.json and $dest/$base.c"
    elif grep -q "does not support" "$dest/$base.repro.err"; then
        # The C prelude lacks this step kind (clone3): keep the readable case, say why.
        rm -f "$dest/$base.c"
        echo "candidate: $dest/$base.bin.json (no C reproducer: $(tail -1 "$dest/$base.repro.err"))"
    else
        cat "$dest/$base.repro.err"
        return 1
    fi
}

# ---------------------------------------------------------------- canary
# A violation must abort the exec target and leave an artifact that decodes, minimizes and
# becomes a C reproducer that compiles: the model is told, through the self-test switch,
# that the executor lacks CAP_SYS_ADMIN.
canary() ( # a subshell: the self-test switch must not leak
    local dir=$OUT/canary art
    rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
    export UNSHARE_FUZZ_SELFTEST_WRONG_MODEL=1
    in_fuzz cargo "${FUZZ_TOOLCHAIN[@]}" fuzz run exec -s "$SANITIZER" "$dir/corpus" -- \
        -runs=20000 -artifact_prefix="$dir/artifacts/" > "$dir/fuzz.log" 2>&1
    art=$(find "$dir/artifacts" -name 'crash-*' | head -1)
    [ -n "$art" ] || { echo "canary: the exec target did not abort on an injected violation"; return 1; }
    grep -q "unshare invariant violated" "$dir/fuzz.log" || { echo "canary: no violation message"; return 1; }
    candidate exec "$art" "$dir/candidates" || return 1
    cat "$dir"/candidates/*.bin.json
    if compgen -G "$dir/candidates/*.c" > /dev/null; then
        gcc -O2 -Wall -o "$dir/candidates/repro" "$dir"/candidates/*.c || return 1
    else
        echo "canary: this artifact's case has a step the C reproducer refuses (see above); no C file to compile"
    fi
)
if echo "$TARGETS" | grep -qx exec; then
    step canary "$OUT/canary.log" canary
fi

# ---------------------------------------------------------------- replay
replay() { "$BIN" replay --jobs "$JOBS" --format ktap --junit "$OUT/replay.xml" --json "$OUT/replay.json" > "$OUT/replay.ktap"; }
step replay "$OUT/replay.log" replay

candidates() {
    local n=0 art t arts=()
    mapfile -t arts < <(find "$OUT/fuzz" -path '*/artifacts/*' -type f 2> /dev/null)
    for art in "${arts[@]}"; do
        t=$(basename "$(dirname "$(dirname "$art")")")
        candidate "$t" "$art" "$OUT/candidates" || return 1
        n=$((n + 1))
    done
    echo "$n candidate(s) from new artifacts"
}
step candidates "$OUT/candidates.log" candidates

# ---------------------------------------------------------------- summary
junit() {
    local total=${#STEPS[@]} failures=0 skipped=0 s name status secs msg
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name status secs msg <<< "$s"
        [ "$status" = fail ] && failures=$((failures + 1))
        [ "$status" = skip ] && skipped=$((skipped + 1))
    done
    esc() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo "<testsuites name=\"unshare-fuzz-nightly\" tests=\"$total\" failures=\"$failures\" errors=\"0\" skipped=\"$skipped\">"
    echo "  <testsuite name=\"unshare-fuzz.nightly\" tests=\"$total\" failures=\"$failures\" errors=\"0\" skipped=\"$skipped\">"
    for s in "${STEPS[@]}"; do
        IFS='|' read -r name status secs msg <<< "$s"
        echo "    <testcase name=\"$(echo "$name" | esc)\" classname=\"nightly\" time=\"$secs\">"
        [ "$status" = fail ] && echo "      <failure message=\"$(echo "$msg" | esc)\"/>"
        [ "$status" = skip ] && echo "      <skipped message=\"$(echo "$msg" | esc)\"/>"
        echo "    </testcase>"
    done
    echo "  </testsuite>"
    echo "</testsuites>"
}
junit > "$OUT/nightly.xml"
if [ "$FAILED" = 0 ]; then
    log "RESULT: every step passed; reports in $OUT"
    exit 0
fi
log "RESULT: FAILED (see the steps above); reports in $OUT"
exit 1
