#!/usr/bin/env bash
# Boot the unshare-fuzz harness as /init under several Debian kernels in qemu
# and compare the KTAP reports. See docs/multi-kernel.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/kernels.sh [options]

  --kernels "LIST"   kernels to boot, space separated (default: "5.10 6.1 6.12 latest")
                     each item is MAJOR.MINOR (newest Debian cloud kernel of that
                     series), "latest" (newest released Debian cloud kernel, sid),
                     "next" (newest including -rc kernels from experimental), an
                     exact package name linux-image-...-cloud-amd64, or the path of a
                     kernel image built here (a "/" in it; e.g. the KCOV kernel with
                     fault injection, ~/.cache/unshare-fuzz/kcov/default/vmlinux, named
                     after the "release" file next to it)
  --args "A,B,..."   harness arguments, comma separated, passed as uf.args=
                     (default: run,--cases,300,--format,ktap); --throwaway-kernel
                     is always put first: the guest kernel is a throwaway, so a
                     faked outer sandbox is reported and the cases still run
  --timeout SECONDS  per-kernel wall-clock limit for qemu (default: 900; the guest
                     itself kills the harness 15 s earlier and reports it)
  --out DIR          output directory (default: target/kernels/<timestamp>)
  --quick            CI-sized: one kernel (6.12), run,--cases,50,--format,ktap,
                     timeout 300 (explicit --kernels/--args/--timeout still win)
  --binary PATH      use this static harness binary instead of building it
  --jobs N           kernels booted in parallel (default: number of cores)
  --cache DIR        kernel cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kernels)
  --append "STR"     extra kernel command line
  --extra FILE       put FILE into the initramfs root too (repeatable); with
                     --append uf.exec=/NAME the guest runs it instead of the harness
                     (e.g. a static C reproducer; docs/guest-only.md)
  --gzip             gzip the initramfs (default: uncompressed, which boots faster)
  --vmlinuz          boot the compressed vmlinuz (default: the uncompressed ELF
                     vmlinux extracted from it, booted via PVH; falls back to
                     vmlinuz when extraction fails)
  --no-strip         keep debug info in the initramfs copy of the binary
                     (default: strip --strip-debug; symbols are kept)
  --refresh          refresh the kernel package indexes even if they are recent
  --no-install       do not apt-get install anything; fail if tools are missing
  --all              every distinct Debian cloud kernel image (package=version) that the
                     private apt's suites offer (bullseye, bullseye-security, bookworm,
                     bookworm-security, bookworm-backports, trixie, trixie-security,
                     trixie-backports, sid, experimental, -rc kernels included), plus the
                     newest generic linux-image-*-amd64 of trixie for comparison; default
                     args run,--cases,300,--seed,50,--format,ktap (seed 50 reaches the
                     pre-fix NEWNS failure at case 24; 90+ kernels must fit in an
                     hour of TCG), timeout 600
  --list             only resolve and fetch the kernels, print them, and exit
  -h, --help         this text

Exit status: 0 if every kernel booted, the harness exited 0 and no KTAP line is
"not ok"; 1 otherwise; 2 on usage or setup errors.
EOF
}

die() { echo "kernels.sh: error: $*" >&2; exit 2; }
log() { echo "kernels.sh: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

KERNELS="" ARGS="" TIMEOUT="" OUT="" QUICK=0 BINARY="" JOBS="" APPEND="" GZIP=0
REFRESH=0 INSTALL=1 LIST_ONLY=0 USE_VMLINUZ=0 STRIP=1 ALL=0
EXTRA=()
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kernels"

while [ $# -gt 0 ]; do
    case "$1" in
        --kernels) KERNELS=${2?--kernels needs a value}; shift 2 ;;
        --args) ARGS=${2?--args needs a value}; shift 2 ;;
        --timeout) TIMEOUT=${2?--timeout needs a value}; shift 2 ;;
        --out) OUT=${2?--out needs a value}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --binary) BINARY=${2?--binary needs a value}; shift 2 ;;
        --jobs) JOBS=${2?--jobs needs a value}; shift 2 ;;
        --cache) CACHE=${2?--cache needs a value}; shift 2 ;;
        --append) APPEND=${2?--append needs a value}; shift 2 ;;
        --extra) EXTRA+=("${2?--extra needs a file}"); shift 2 ;;
        --gzip) GZIP=1; shift ;;
        --vmlinuz) USE_VMLINUZ=1; shift ;;
        --no-strip) STRIP=0; shift ;;
        --refresh) REFRESH=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --list) LIST_ONLY=1; shift ;;
        --all) ALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

if [ "$ALL" = 1 ]; then
    [ -z "$KERNELS" ] || die "--all and --kernels exclude each other"
    : "${ARGS:=run,--cases,300,--seed,50,--format,ktap}" "${TIMEOUT:=600}"
fi
if [ "$QUICK" = 1 ]; then
    : "${KERNELS:=6.12}" "${ARGS:=run,--cases,50,--format,ktap}" "${TIMEOUT:=300}"
fi
: "${KERNELS:=5.10 6.1 6.12 latest}" "${ARGS:=run,--cases,300,--format,ktap}" "${TIMEOUT:=900}"
: "${JOBS:=$(nproc)}"
case "$TIMEOUT" in ''|*[!0-9]*) die "--timeout must be a number of seconds" ;; esac
case "$JOBS" in ''|*[!0-9]*|0) die "--jobs must be a positive number" ;; esac
case "$ARGS" in *[[:space:]]*) die "--args must not contain whitespace (use commas)" ;; esac

# ---------------------------------------------------------------- host tools

APT_UPDATED=0
apt_update_once() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
}

ensure_backports_source() {
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding bookworm-backports to /etc/apt/sources.list.d/bookworm-backports.sources"
        cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        APT_UPDATED=0
    fi
}

install_tools() {
    local missing=() cmd
    for cmd in cpio dpkg-deb apt-get python3 timeout gzip zstd lz4 xz; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if ! command -v qemu-system-x86_64 >/dev/null; then missing+=(qemu-system-x86_64); fi
    [ ${#missing[@]} = 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing tools: ${missing[*]} (and --no-install given)"
    [ "$(id -u)" = 0 ] || die "missing tools: ${missing[*]}; run as root to install them"
    export DEBIAN_FRONTEND=noninteractive
    if ! command -v qemu-system-x86_64 >/dev/null; then
        # bookworm's own qemu is older than the preinstalled qemu-utils from
        # backports; installing it would make apt remove qemu-utils.
        if grep -qs 'VERSION_CODENAME=bookworm' /etc/os-release; then
            ensure_backports_source
            apt_update_once
            log "installing qemu-system-x86 from bookworm-backports"
            apt-get install -y -q --no-remove --no-install-recommends \
                -t bookworm-backports qemu-system-x86 >&2
        else
            apt_update_once
            apt-get install -y -q --no-remove --no-install-recommends qemu-system-x86 >&2
        fi
    fi
    local pkgs=()
    command -v cpio >/dev/null || pkgs+=(cpio)
    command -v python3 >/dev/null || pkgs+=(python3)
    command -v gzip >/dev/null || pkgs+=(gzip)
    # decompressors for extracting vmlinux from vmlinuz
    command -v zstd >/dev/null || pkgs+=(zstd)
    command -v lz4 >/dev/null || pkgs+=(lz4)
    command -v xz >/dev/null || pkgs+=(xz-utils)
    if [ ${#pkgs[@]} -gt 0 ]; then
        apt_update_once
        apt-get install -y -q --no-remove --no-install-recommends "${pkgs[@]}" >&2
    fi
}

# ----------------------------------------------------------- kernel packages
#
# Kernel packages come from a private apt configuration under $CACHE/apt (its
# own sources list, package lists and caches), so that adding bullseye, sid
# and experimental never changes what the host's apt installs.

APTDIR="$CACHE/apt"
SUITES=(
    "debian bullseye" "debian-security bullseye-security"
    "debian bookworm" "debian-security bookworm-security" "debian bookworm-backports"
    "debian trixie" "debian-security trixie-security" "debian trixie-backports"
    "debian sid" "debian experimental"
)
APT_OPTS=()

# shellcheck source=lib/private-apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/private-apt.sh"

setup_private_apt() {
    mkdir -p "$CACHE/debs"
    private_apt_sources "$APTDIR" "${SUITES[@]}" || die "cannot set up the private apt configuration in $APTDIR"
    private_apt_options "$APTDIR"
}

refresh_private_apt() {
    local stamp="$APTDIR/updated"
    if [ "$REFRESH" = 1 ] || [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ] \
        || ! cmp -s "$APTDIR/sources.list" "$APTDIR/sources.list.stamp" 2>/dev/null; then
        log "refreshing kernel package indexes in $APTDIR"
        if apt-get "${APT_OPTS[@]}" update -qq >&2; then
            touch "$stamp"; cp "$APTDIR/sources.list" "$APTDIR/sources.list.stamp"
        elif ls "$APTDIR"/lists/*_Packages* >/dev/null 2>&1; then
            log "warning: index refresh failed; using the cached indexes"
        else
            die "cannot fetch kernel package indexes"
        fi
    fi
}

# resolve_kernel LABEL -> prints "PACKAGE VERSION" (newest matching version)
resolve_kernel() {
    local label=$1 re allow_rc=0
    case "$label" in
        linux-image-*) re="^$(printf '%s' "$label" | sed 's/[.+]/\\&/g')\$"; allow_rc=1 ;;
        latest) re='^linux-image-[0-9][^ ]*-cloud-amd64$' ;;
        next) re='^linux-image-[0-9][^ ]*-cloud-amd64$'; allow_rc=1 ;;
        [0-9]*.[0-9]*)
            re="^linux-image-$(printf '%s' "$label" | sed 's/\./\\./g')[.+-][^ ]*-cloud-amd64\$" ;;
        *) echo "unknown kernel label '$label'" >&2; return 1 ;;
    esac
    local cands
    cands=$(apt-cache "${APT_OPTS[@]}" search --names-only "$re" | awk '{print $1}' \
        | grep -E "$re" || true)
    [ -n "$cands" ] || { echo "no package matches $re" >&2; return 1; }
    # shellcheck disable=SC2086
    apt-cache "${APT_OPTS[@]}" madison $cands | awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); print $1, $2}' \
        | sort -u -k2,2V | tail -n 40 | {
            local best_p="" best_v="" p v
            while read -r p v; do
                if [ "$allow_rc" = 0 ] && [[ "$v" == *"~rc"* || "$v" == *"~exp"* ]]; then continue; fi
                if [ -z "$best_v" ] || dpkg --compare-versions "$v" gt "$best_v"; then
                    best_p=$p best_v=$v
                fi
            done
            [ -n "$best_p" ] || { echo "no released version for $label" >&2; return 1; }
            echo "$best_p $best_v"
        }
}

# resolve_all -> prints "PACKAGE VERSION SUITE" for every distinct cloud kernel image of every
# suite, then the newest generic (non-cloud) amd64 kernel of trixie (its suite says "generic").
resolve_all() {
    local re='^linux-image-[0-9][^ ]*-cloud-amd64$' cands
    cands=$(apt-cache "${APT_OPTS[@]}" search --names-only "$re" | awk '{print $1}' | grep -E "$re" || true)
    [ -n "$cands" ] || { echo "no cloud kernel package found" >&2; return 1; }
    # madison: "PKG | VERSION | URL SUITE/main amd64 Packages"
    # shellcheck disable=SC2086
    apt-cache "${APT_OPTS[@]}" madison $cands \
        | awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); split($3, a, " "); sub(/\/.*/, "", a[2]); print $1, $2, a[2]}' \
        | sort -u -k1,2 | sort -k2,2V
    local gre='^linux-image-[0-9][^ ]*-amd64$' gen best
    gen=$(apt-cache "${APT_OPTS[@]}" search --names-only "$gre" | awk '{print $1}' | grep -E "$gre" \
        | grep -v -e '-cloud-' -e '-rt-' -e '-dbg' -e 'unsigned' || true)
    [ -n "$gen" ] || return 0
    # shellcheck disable=SC2086
    best=$(apt-cache "${APT_OPTS[@]}" madison $gen \
        | awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); split($3, a, " "); sub(/\/.*/, "", a[2]); print $1, $2, a[2]}' \
        | awk '$3 == "trixie" || $3 == "trixie-security"' | sort -k2,2V | tail -n1)
    [ -n "$best" ] && echo "${best% *} generic"
    return 0
}

# extract_vmlinux VMLINUZ OUT: finds the compressed payload in a bzImage (the
# way the kernel's scripts/extract-vmlinux does) and writes the ELF vmlinux.
extract_vmlinux() {
    local in=$1 out=$2 spec magic cmd off
    for spec in '28b52ffd|zstd -dcq' 'fd377a585a00|xz -dc' '02214c18|lz4 -dc' \
                '1f8b08|gzip -dc' '425a68|bzip2 -dc' '5d000000|xz -dc --format=lzma'; do
        magic=${spec%%|*} cmd=${spec#*|}
        command -v "${cmd%% *}" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "$(echo "$magic" | sed 's/../\\x&/g')" "$in" \
                     | cut -d: -f1 | head -n 5); do
            # shellcheck disable=SC2086
            tail -c +$((off + 1)) "$in" | $cmd > "$out.tmp" 2>/dev/null || true
            if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
                mv "$out.tmp" "$out"; return 0
            fi
        done
    done
    rm -f "$out.tmp"
    return 1
}

# fetch_kernel PACKAGE VERSION -> prints the path of the kernel image to boot
fetch_kernel() {
    local pkg=$1 ver=$2 dir deb
    dir="$CACHE/$pkg/$ver"
    if [ -s "$dir/vmlinuz" ]; then pick_image "$dir"; return 0; fi
    # From Linux 7.x on, linux-image-ABI-FLAVOUR is an empty package that
    # depends on linux-binary-ABI-FLAVOUR, which holds /boot/vmlinuz-*.
    local binpkg
    binpkg=$(apt-cache "${APT_OPTS[@]}" show "$pkg=$ver" 2>/dev/null \
        | sed -n 's/^Depends: //p' | head -n1 | tr ',' '\n' \
        | sed -n 's/^ *\(linux-binary-[^ ]*\).*/\1/p' | head -n1)
    [ -n "$binpkg" ] || binpkg=$pkg
    deb="$CACHE/debs/${binpkg}_${ver//:/%3a}_amd64.deb"
    if [ ! -s "$deb" ]; then
        log "downloading $binpkg=$ver"
        (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download -q "$binpkg=$ver" >&2) || return 1
    fi
    [ -s "$deb" ] || { echo "download of $binpkg=$ver did not produce $deb" >&2; return 1; }
    local tmp
    tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
    dpkg-deb -x "$deb" "$tmp"
    local img
    # boot/vmlinuz-RELEASE up to 6.x; usr/lib/modules/RELEASE/vmlinuz from 7.x
    img=$( { find "$tmp/boot" -maxdepth 1 -name 'vmlinuz-*'
             find "$tmp/usr/lib/modules" "$tmp/lib/modules" -mindepth 2 -maxdepth 2 -name vmlinuz
           } 2>/dev/null | head -n1)
    [ -n "$img" ] || { rm -rf "$tmp"; echo "no vmlinuz in $deb" >&2; return 1; }
    mkdir -p "$dir"
    cp "$img" "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
    case "$img" in
        */boot/vmlinuz-*) basename "$img" | sed 's/^vmlinuz-//' ;;
        *) basename "$(dirname "$img")" ;;
    esac > "$dir/release"
    rm -rf "$tmp"
    pick_image "$dir"
}

# pick_image DIR: vmlinux (extracted once, cached) unless --vmlinuz
pick_image() {
    local dir=$1
    if [ "$USE_VMLINUZ" = 0 ]; then
        if [ ! -s "$dir/vmlinux" ] && [ ! -e "$dir/vmlinux.failed" ]; then
            extract_vmlinux "$dir/vmlinuz" "$dir/vmlinux" || {
                log "could not extract vmlinux from $dir/vmlinuz; booting vmlinuz"
                touch "$dir/vmlinux.failed"; }
        fi
        if [ -s "$dir/vmlinux" ]; then echo "$dir/vmlinux"; return 0; fi
    fi
    echo "$dir/vmlinuz"
}

# ------------------------------------------------------------ harness binary

build_harness() {
    log "building the static harness (cargo build --release)"
    (cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --target x86_64-unknown-linux-gnu >&2)
    BINARY="$ROOT/target/x86_64-unknown-linux-gnu/release/unshare-fuzz"
}

check_static() {
    [ -x "$1" ] || die "binary $1 does not exist or is not executable"
    if LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        die "$1 is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static'"
    fi
}

build_initramfs() {
    local bin=$1 out=$2 stage
    stage=$(mktemp -d "${TMPDIR:-/tmp}/uf-initramfs.XXXXXX")
    mkdir -p "$stage"/{proc,sys,dev,tmp}
    if [ "$STRIP" = 1 ] && command -v strip >/dev/null; then
        strip --strip-debug -o "$stage/init" "$bin"
    else
        cp "$bin" "$stage/init"
    fi
    chmod 0755 "$stage/init"
    if [ -d "$ROOT/corpus" ]; then cp -r "$ROOT/corpus" "$stage/corpus"; else mkdir "$stage/corpus"; fi
    local f
    for f in "${EXTRA[@]}"; do cp "$f" "$stage/" || die "--extra $f: cannot copy"; done
    (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
        | cpio --null -o -H newc --owner 0:0 --quiet) > "$out.tmp"
    if [ "$GZIP" = 1 ]; then gzip -1 -c "$out.tmp" > "$out"; rm -f "$out.tmp"; else mv "$out.tmp" "$out"; fi
    rm -rf "$stage"
}

# ------------------------------------------------------------------ booting

choose_accel() {
    if { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -w /dev/kvm ]; then
        ACCEL=(-accel kvm -cpu host); ACCEL_NAME=kvm
    else
        ACCEL=(-accel tcg -cpu max); ACCEL_NAME=tcg
    fi
}

# boot_one NAME VMLINUZ -> results in $OUT/NAME/
boot_one() {
    local name=$1 kernel=$2 dir="$OUT/$1" guest_timeout
    mkdir -p "$dir"
    guest_timeout=$(( TIMEOUT > 30 ? TIMEOUT - 15 : 0 ))
    # The guest kernel is a throwaway: if its unshare fakes the outer sandbox, the harness
    # reports the violation (sandbox-namespaces-are-new) and runs the cases anyway.
    # no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss its ticks and
    # panic ("IO-APIC + timer doesn't work!", seen on 6.12 with load 10); the guest needs no check.
    local append="console=ttyS0 panic=-1 no_timer_check uf.args=--throwaway-kernel,$ARGS"
    [ "$guest_timeout" -gt 0 ] && append+=" uf.timeout=$guest_timeout"
    [ -n "$APPEND" ] && append+=" $APPEND"
    local start end rc=0
    start=$(date +%s.%N)
    : > "$dir/report.ktap"
    timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 -M q35 "${ACCEL[@]}" -m 1G -smp 1 \
        -nographic -monitor none -nic none -no-reboot \
        -kernel "$kernel" -initrd "$INITRD" -append "$append" \
        -serial "file:$dir/console.log" -serial "file:$dir/report.ktap" \
        </dev/null >"$dir/qemu.log" 2>&1 &
    local qemu=$!
    # A kernel without ACPI (the KCOV kernels) only halts at power-off: qemu is stopped here
    # once the guest has written its exit line.
    while kill -0 "$qemu" 2>/dev/null; do
        if grep -q '# guest-exit:' "$dir/report.ktap" 2>/dev/null; then
            sleep 2
            kill "$qemu" 2>/dev/null || true
            break
        fi
        sleep 1
    done
    wait "$qemu" || rc=$?
    end=$(date +%s.%N)
    echo "$rc" > "$dir/qemu.rc"
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' > "$dir/seconds"
}

main() {
    install_tools
    mkdir -p "$CACHE"
    setup_private_apt
    refresh_private_apt

    local label pkg ver vmlinuz name suite
    NAMES=()
    declare -gA KPATH=() KPKG=() KLABEL=()
    if [ "$ALL" = 1 ]; then
        local all
        all=$(resolve_all) || die "cannot list the Debian kernels"
        log "--all: $(echo "$all" | wc -l) kernel images"
        while read -r pkg ver suite; do
            [ -n "$pkg" ] || continue
            if ! vmlinuz=$(fetch_kernel "$pkg" "$ver"); then
                log "cannot fetch $pkg=$ver"; FAILED+=("$pkg=$ver (download failed)"); continue
            fi
            name=${ver%%-*}
            [ "$suite" = generic ] && name+="-generic"
            # The same upstream version built for two suites (a backport): both are booted.
            [ -n "${KPATH[$name]:-}" ] && name+="-$suite"
            [ -n "${KPATH[$name]:-}" ] && continue
            NAMES+=("$name"); KPATH[$name]=$vmlinuz; KPKG[$name]="$pkg=$ver"; KLABEL[$name]=$suite
            log "kernel $suite -> $pkg=$ver"
        done <<<"$all"
    fi
    for label in $KERNELS; do
        [ "$ALL" = 1 ] && break
        if [[ "$label" == */* ]]; then
            # guest: a kernel image built here (scripts/kcov-kernel.sh), booted as it is.
            [ -s "$label" ] || { log "no kernel image at '$label'"; FAILED+=("$label (no such image)"); continue; }
            name=$(cat "$(dirname "$label")/release" 2>/dev/null || basename "$(dirname "$label")")
            [ -n "${KPATH[$name]:-}" ] && continue
            NAMES+=("$name"); KPATH[$name]=$label; KPKG[$name]="local:$label"; KLABEL[$name]=local
            log "kernel local -> $label"
            continue
        fi
        local resolved
        if ! resolved=$(resolve_kernel "$label"); then
            log "cannot resolve kernel '$label'"; FAILED+=("$label (not found)"); continue
        fi
        read -r pkg ver <<<"$resolved"
        if ! vmlinuz=$(fetch_kernel "$pkg" "$ver"); then
            log "cannot fetch $pkg=$ver"; FAILED+=("$label (download failed)"); continue
        fi
        name=${ver%%-*}   # upstream version, e.g. 6.12.117
        [ -n "${KPATH[$name]:-}" ] && continue
        NAMES+=("$name"); KPATH[$name]=$vmlinuz; KPKG[$name]="$pkg=$ver"; KLABEL[$name]=$label
        log "kernel $label -> $pkg=$ver"
    done
    if [ "$LIST_ONLY" = 1 ]; then
        for name in "${NAMES[@]}"; do printf '%s\t%s\t%s\n' "${KLABEL[$name]}" "${KPKG[$name]}" "${KPATH[$name]}"; done
        if [ ${#FAILED[@]} -gt 0 ]; then return 1; fi
        return 0
    fi
    [ ${#NAMES[@]} -gt 0 ] || die "no kernel available"

    if [ -z "$BINARY" ]; then build_harness; fi
    check_static "$BINARY"

    : "${OUT:=$ROOT/target/kernels/$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    INITRD="$OUT/initramfs.cpio"
    if [ "$GZIP" = 1 ]; then INITRD+=.gz; fi
    build_initramfs "$BINARY" "$INITRD"
    choose_accel
    echo "accel: $ACCEL_NAME ($( [ "$ACCEL_NAME" = kvm ] && echo 'kvm_intel/kvm_amd loaded' || echo 'no kvm_intel/kvm_amd module: software emulation' ))"
    echo "harness: $BINARY; args: $ARGS; timeout: ${TIMEOUT}s; jobs: $JOBS; out: $OUT"

    local running=0
    for name in "${NAMES[@]}"; do
        if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
        log "booting $name (${KPKG[$name]}, $(basename "${KPATH[$name]}"))"
        boot_one "$name" "${KPATH[$name]}" &
        running=$((running + 1))
    done
    wait || true

    local ktaps=() dir st rc secs
    printf '\n%-12s %-8s %-52s %7s  %s\n' kernel label package seconds result
    for name in "${NAMES[@]}"; do
        dir="$OUT/$name"
        rc=$(cat "$dir/qemu.rc" 2>/dev/null || echo '?')
        secs=$(cat "$dir/seconds" 2>/dev/null || echo '?')
        st=$(tr -d '\r' < "$dir/report.ktap" 2>/dev/null | sed -n 's/^.*# guest-exit: *//p' | tail -n1)
        cp "$dir/report.ktap" "$OUT/$name.ktap" 2>/dev/null || : > "$OUT/$name.ktap"
        ktaps+=("$OUT/$name.ktap")
        local result
        if [ -z "$st" ]; then
            if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then result="NO guest-exit (qemu killed after ${TIMEOUT}s)"
            else result="NO guest-exit (qemu exit $rc)"; fi
            FAILED+=("$name")
        elif [ "$st" != 0 ]; then
            result="harness exit: $st"; FAILED+=("$name")
        else
            result="ok"
        fi
        printf '%-12s %-8s %-52s %7s  %s\n' "$name" "${KLABEL[$name]}" "${KPKG[$name]}" "$secs" "$result"
    done
    for name in "${NAMES[@]}"; do
        dir="$OUT/$name"
        if ! tr -d '\r' < "$dir/report.ktap" 2>/dev/null | grep -q '# guest-exit:'; then
            echo
            echo "=== $name: no '# guest-exit' line; last 30 console lines ($dir/console.log) ==="
            tail -n 30 "$dir/console.log" 2>/dev/null | tr -d '\r' || echo "(no console log)"
            if [ -s "$dir/qemu.log" ]; then echo "--- qemu output ---"; tail -n 10 "$dir/qemu.log"; fi
        fi
    done

    echo
    local table_rc=0
    python3 "$ROOT/scripts/ktap-table.py" "${ktaps[@]}" || table_rc=$?
    echo
    echo "results in $OUT"
    if [ ${#FAILED[@]} -gt 0 ]; then
        echo "FAILED: ${FAILED[*]}"
        return 1
    fi
    if [ "$table_rc" != 0 ]; then
        echo "FAILED: some KTAP report has 'not ok' or could not be read"
        return 1
    fi
    return 0
}

FAILED=()
main
