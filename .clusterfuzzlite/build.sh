#!/bin/bash -eu
# Builds every cargo-fuzz target of unshare-fuzz into $OUT (ClusterFuzzLite / OSS-Fuzz
# contract). Also runs outside the container:
#   SRC=/path/to/parent-of-checkout OUT=/tmp/out .clusterfuzzlite/build.sh
# $SRC is the directory holding the checkout `unshare-fuzz` (the Dockerfile copies it to
# $SRC/unshare-fuzz); when that does not exist, the checkout this script lives in is used.
# $SANITIZER (address, memory, undefined, coverage, none; default none) picks the
# cargo-fuzz sanitizer; address and memory need a nightly toolchain (the OSS-Fuzz image's
# default; elsewhere `+nightly` is added).
: "${OUT:?set OUT to the directory that receives the fuzzer binaries}"
: "${SRC:?set SRC to the directory that holds the unshare-fuzz checkout}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$SRC/unshare-fuzz
[ -f "$repo/fuzz/Cargo.toml" ] || repo=$here
cd "$repo/fuzz"

case "${SANITIZER:-none}" in
    address | memory) san=$SANITIZER ;;
    *) san=none ;; # undefined/coverage: plain instrumented build (Rust has no UBSan)
esac
toolchain=()
if [ "$san" != none ] && ! rustc --version | grep -q nightly; then toolchain=(+nightly); fi
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked

cargo "${toolchain[@]}" fuzz build -O --debug-assertions -s "$san"
mkdir -p "$OUT"
for target in $(cargo fuzz list); do
    cp "target/x86_64-unknown-linux-gnu/release/$target" "$OUT/"
    # Seed corpus: the readable corpus/ files, which every target takes verbatim (exec and
    # model read the case of a corpus file, fuzzing::case_from_bytes), the bad corpus files
    # for corpus_format, and fuzz/corpus/<target> when it exists (e.g. restored from a cache).
    seeds=$(mktemp -d)
    while IFS= read -r -d '' f; do
        rel=${f#"$repo"/}
        cp "$f" "$seeds/${rel//\//_}"
    done < <(find "$repo/corpus" -name '*.json' -print0)
    if [ "$target" = corpus_format ]; then cp "$repo"/tests/data/bad-corpus/* "$seeds/"; fi
    if [ -d "corpus/$target" ]; then cp -r "corpus/$target/." "$seeds/"; fi
    rm -f "$OUT/${target}_seed_corpus.zip"
    if ! command -v zip > /dev/null; then
        echo "build.sh: zip is not installed: no seed corpus for $target"
    elif [ -n "$(ls -A "$seeds")" ]; then
        (cd "$seeds" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    fi
    rm -rf "$seeds"
done
# One case takes milliseconds; a slow one is a hang worth reporting.
printf '[libfuzzer]\ntimeout = 25\n' > "$OUT/exec.options"
echo "build.sh: built $(cargo fuzz list | tr '\n' ' ')into $OUT (sanitizer $san)"
