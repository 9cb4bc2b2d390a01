#!/usr/bin/env bash
# Build, once and cached outside the clone, a minimal x86_64 kernel with KCOV,
# fault injection and debug info from Debian's linux-source-6.12, for the
# harness's coverage mode (docs/coverage.md) and for guest-only cases that
# need a kernel without a namespace type (issue 16).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/kcov-kernel.sh [options]

  --variant NAME     default (every namespace type), or no-uts, no-ipc, no-user,
                     no-pid, no-net, no-cgroup, no-time: the same kernel built
                     without that namespace type (unshare of its flag: EINVAL),
                     or no-uts-ipc-time: UTS_NS, IPC_NS and TIME_NS off at once (one
                     build for issue 16 class 6; CGROUPS stays on, see docs/guest-only.md)
  --cache DIR        cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kcov)
  --version V        linux-source-6.12 package version (default: 6.12.118-1~deb12u1, the
                     one docs/coverage.md was measured on, else the newest of bookworm and
                     trixie the private apt knows)
  --jobs N           make -j (default: number of cores); make runs under nice -n 10
  --rebuild          build again even if the cache holds this variant
  --no-install       do not apt-get install the build tools; fail if missing
  --print            print the cached kernel's directory (build it if missing)
  -h, --help         this text

On success the variant's directory holds vmlinux (ELF with debug info, booted
by qemu through PVH and read by addr2line), bzImage, .config, release,
build-seconds and src (a symlink to the source tree the line numbers refer to).
Its path is printed as the last line of standard output.
EOF
}

die() { echo "kcov-kernel.sh: error: $*" >&2; exit 2; }
log() { echo "kcov-kernel.sh: $*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VARIANT=default CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kcov" VERSION=""
MEASURED_VERSION="6.12.118-1~deb12u1"
JOBS=$(nproc) REBUILD=0 INSTALL=1
while [ $# -gt 0 ]; do
    case "$1" in
        --variant) VARIANT=${2?--variant needs a value}; shift 2 ;;
        --cache) CACHE=${2?--cache needs a value}; shift 2 ;;
        --version) VERSION=${2?--version needs a value}; shift 2 ;;
        --jobs) JOBS=${2?--jobs needs a value}; shift 2 ;;
        --rebuild) REBUILD=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --print) shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
case "$VARIANT" in
    default|no-uts|no-ipc|no-user|no-pid|no-net|no-cgroup|no-time|no-uts-ipc-time) ;;
    *) die "unknown variant '$VARIANT' (default, no-uts, no-ipc, no-user, no-pid, no-net, no-cgroup, no-time, no-uts-ipc-time)" ;;
esac
case "$JOBS" in ''|*[!0-9]*|0) die "--jobs must be a positive number" ;; esac

OUTDIR="$CACHE/$VARIANT"
if [ "$REBUILD" = 0 ] && [ -s "$OUTDIR/vmlinux" ] && [ -s "$OUTDIR/build-seconds" ]; then
    log "cached: $OUTDIR ($(cat "$OUTDIR/release"), built in $(cat "$OUTDIR/build-seconds") s)"
    echo "$OUTDIR"
    exit 0
fi

# ---------------------------------------------------------------- build tools

install_build_tools() {
    local missing=() cmd
    for cmd in gcc make flex bison bc perl python3 xz dpkg-deb; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [ -e /usr/include/libelf.h ] || [ -e /usr/include/gelf.h ] || missing+=(libelf-dev)
    [ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
    [ ${#missing[@]} = 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing build tools: ${missing[*]} (and --no-install given)"
    [ "$(id -u)" = 0 ] || die "missing build tools: ${missing[*]}; run as root to install them"
    log "installing build tools (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -q --no-remove --no-install-recommends \
        gcc make flex bison bc perl python3 xz-utils libelf-dev libssl-dev dpkg >&2
}

# ------------------------------------------------------------- kernel source
#
# linux-source-6.12 is fetched through scripts/kernels.sh's private apt
# configuration (its own sources list with bookworm-security, bookworm-backports
# and trixie), so the host's apt sources are never changed.

fetch_source() {
    local apt_cache="${XDG_CACHE_HOME:-$HOME/.cache}/unshare-fuzz/kernels"
    if [ ! -s "$apt_cache/apt/sources.list" ] || ! ls "$apt_cache"/apt/lists/*_Packages* >/dev/null 2>&1; then
        log "setting up the private apt configuration (scripts/kernels.sh --list --kernels 6.12)"
        "$ROOT/scripts/kernels.sh" --list --kernels 6.12 --cache "$apt_cache" >/dev/null
    fi
    # shellcheck source=lib/private-apt.sh
    . "$ROOT/scripts/lib/private-apt.sh"
    private_apt_options "$apt_cache/apt"
    if [ -z "$VERSION" ]; then
        local known
        known=$(apt-cache "${APT_OPTS[@]}" madison linux-source-6.12 \
            | awk -F'|' '$3 ~ /bookworm|trixie/ {gsub(/ /,"",$2); print $2}' | sort -V)
        # The version docs/coverage.md and docs/coverage-reasons.tsv (file:line) were measured
        # on, when the archive still has it; else the newest (then the reasons' line numbers
        # may be off, and the report counts the lines left without a reason).
        if printf '%s\n' "$known" | grep -qxF "$MEASURED_VERSION"; then
            VERSION=$MEASURED_VERSION
        else
            VERSION=$(printf '%s\n' "$known" | tail -n1)
            [ -n "$VERSION" ] && log "note: $MEASURED_VERSION (measured in docs/coverage.md) is gone; using $VERSION"
        fi
        [ -n "$VERSION" ] || die "the private apt knows no linux-source-6.12 (run scripts/kernels.sh --refresh --list)"
    fi
    mkdir -p "$CACHE/debs"
    DEB="$CACHE/debs/linux-source-6.12_${VERSION//:/%3a}_all.deb"
    if [ ! -s "$DEB" ]; then
        log "downloading linux-source-6.12=$VERSION (about 150 MB)"
        (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download -q "linux-source-6.12=$VERSION" >&2)
    fi
    [ -s "$DEB" ] || die "download of linux-source-6.12=$VERSION did not produce $DEB"
    SRC="$CACHE/src/$VERSION"
    if [ ! -e "$SRC/Makefile" ]; then
        log "unpacking $DEB into $SRC"
        local tmp
        tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
        dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-6.12.tar.xz'
        mkdir -p "$SRC.tmp"
        tar -xJf "$tmp/usr/src/linux-source-6.12.tar.xz" -C "$SRC.tmp" --strip-components=1
        rm -rf "$tmp" "$SRC"
        mv "$SRC.tmp" "$SRC"
    fi
}

# --------------------------------------------------------------------- config

# Options on top of tinyconfig. tinyconfig has EXPERT=y, which turns off much a
# static Rust program needs (MULTIUSER, FUTEX, EPOLL, ...); they are turned on.
OPTIONS_ON=(
    64BIT PRINTK BUG TTY SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD BINFMT_ELF
    BINFMT_SCRIPT PVH HYPERVISOR_GUEST PARAVIRT
    MULTIUSER FUTEX EPOLL SIGNALFD TIMERFD EVENTFD SHMEM POSIX_TIMERS FILE_LOCKING
    ADVISE_SYSCALLS MEMBARRIER RSEQ FHANDLE KALLSYMS KALLSYMS_ALL BASE_FULL
    PROC_FS PROC_SYSCTL SYSCTL SYSFS DEVTMPFS TMPFS DEBUG_FS SECURITYFS
    NET UNIX
    NAMESPACES UTS_NS IPC_NS USER_NS PID_NS NET_NS TIME_NS
    CGROUPS CGROUP_PIDS MEMCG
    SYSVIPC POSIX_MQUEUE
    SECCOMP SECCOMP_FILTER CHECKPOINT_RESTORE KCMP
    DEBUG_KERNEL KCOV KCOV_INSTRUMENT_ALL
    FAULT_INJECTION FAILSLAB FAIL_PAGE_ALLOC FAULT_INJECTION_DEBUG_FS
    FAULT_INJECTION_STACKTRACE_FILTER
    DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT DEBUG_INFO_REDUCED
)
OPTIONS_OFF=(
    DEBUG_INFO_NONE DEBUG_INFO_BTF KCOV_ENABLE_COMPARISONS RANDOMIZE_BASE
    MODULES SOUND DRM USB WLAN WIRELESS
)

configure() {
    local b=$1 o
    nice -n 10 make -s -C "$SRC" O="$b" tinyconfig >&2
    local args=()
    for o in "${OPTIONS_ON[@]}"; do args+=(--enable "$o"); done
    for o in "${OPTIONS_OFF[@]}"; do args+=(--disable "$o"); done
    case "$VARIANT" in
        no-uts) args+=(--disable UTS_NS) ;;
        no-ipc) args+=(--disable IPC_NS) ;;
        no-user) args+=(--disable USER_NS) ;;
        no-pid) args+=(--disable PID_NS) ;;
        no-net) args+=(--disable NET_NS) ;;
        no-cgroup) args+=(--disable CGROUPS) ;;
        no-time) args+=(--disable TIME_NS) ;;
        no-uts-ipc-time) args+=(--disable UTS_NS --disable IPC_NS --disable TIME_NS) ;;
    esac
    "$SRC/scripts/config" --file "$b/.config" "${args[@]}" --set-str LOCALVERSION "-uf-kcov-$VARIANT"
    # Twice: an option whose dependency was enabled by the first pass.
    nice -n 10 make -s -C "$SRC" O="$b" olddefconfig >&2
    "$SRC/scripts/config" --file "$b/.config" "${args[@]}"
    nice -n 10 make -s -C "$SRC" O="$b" olddefconfig >&2
    # Check that what was asked for is what olddefconfig kept.
    local want missing=()
    want=(PRINTK SERIAL_8250_CONSOLE BLK_DEV_INITRD PROC_FS SYSFS DEVTMPFS TMPFS DEBUG_FS
          NAMESPACES SYSVIPC POSIX_MQUEUE SECCOMP_FILTER CHECKPOINT_RESTORE KCMP KCOV
          FAULT_INJECTION FAILSLAB FAULT_INJECTION_DEBUG_FS PVH)
    case "$VARIANT" in no-uts|no-uts-ipc-time) ;; *) want+=(UTS_NS) ;; esac
    case "$VARIANT" in no-ipc|no-uts-ipc-time) ;; *) want+=(IPC_NS) ;; esac
    case "$VARIANT" in no-user) ;; *) want+=(USER_NS) ;; esac
    case "$VARIANT" in no-pid) ;; *) want+=(PID_NS) ;; esac
    case "$VARIANT" in no-net) ;; *) want+=(NET_NS) ;; esac
    case "$VARIANT" in no-cgroup) ;; *) want+=(CGROUPS) ;; esac
    case "$VARIANT" in no-time|no-uts-ipc-time) ;; *) want+=(TIME_NS) ;; esac
    for o in "${want[@]}"; do
        grep -qx "CONFIG_$o=y" "$b/.config" || missing+=("$o")
    done
    grep -q '^CONFIG_DEBUG_INFO=y' "$b/.config" || missing+=(DEBUG_INFO)
    [ ${#missing[@]} = 0 ] || die "olddefconfig dropped: ${missing[*]} (see $b/.config)"
    if [ "$VARIANT" != default ]; then
        local offs off
        offs=$(echo "${VARIANT#no-}" | tr a-z- A-Z' ')
        for off in $offs; do
            [ "$off" = CGROUP ] && off=CGROUPS || off=${off}_NS
            ! grep -qx "CONFIG_$off=y" "$b/.config" || die "variant $VARIANT: CONFIG_$off is still on"
        done
    fi
}

# ---------------------------------------------------------------------- build

main() {
    install_build_tools
    fetch_source
    local b="$CACHE/build/$VARIANT" start end
    mkdir -p "$b"
    start=$(date +%s)
    log "configuring $VARIANT in $b (source $SRC)"
    configure "$b"
    log "building $VARIANT with make -j$JOBS under nice -n 10 (about 15 minutes on 2 cores)"
    if ! nice -n 10 make -s -C "$SRC" O="$b" -j"$JOBS" vmlinux bzImage > "$b/build.log" 2>&1; then
        tail -n 40 "$b/build.log" >&2
        die "kernel build failed (log: $b/build.log)"
    fi
    end=$(date +%s)
    mkdir -p "$OUTDIR.tmp"
    cp "$b/vmlinux" "$OUTDIR.tmp/vmlinux"
    cp "$b/arch/x86/boot/bzImage" "$OUTDIR.tmp/bzImage"
    cp "$b/.config" "$OUTDIR.tmp/config"
    cp "$b/System.map" "$OUTDIR.tmp/System.map"
    cat "$b/include/config/kernel.release" > "$OUTDIR.tmp/release"
    echo "$VERSION" > "$OUTDIR.tmp/source-version"
    ln -sfn "$SRC" "$OUTDIR.tmp/src"
    echo $((end - start)) > "$OUTDIR.tmp/build-seconds"
    rm -rf "$OUTDIR"
    mv "$OUTDIR.tmp" "$OUTDIR"
    echo "kcov kernel $VARIANT ($(cat "$OUTDIR/release")): built in $((end - start)) s with -j$JOBS"
    echo "$OUTDIR"
}

main
