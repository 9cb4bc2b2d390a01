# shellcheck shell=bash
# A private apt configuration for fetching Debian packages (kernel images, runsc,
# linux-source) without touching the host's apt: its own sources list, package lists
# and cache under one directory, and no dpkg status. Sourced by scripts/kernels.sh,
# scripts/gvisor.sh and scripts/kcov-kernel.sh.
#
#   private_apt_sources DIR "ARCHIVE SUITE"...   writes DIR/sources.list (main, amd64,
#                                                signed by the Debian archive keyring)
#   private_apt_options DIR                      sets the array APT_OPTS for apt-get and
#                                                apt-cache to use DIR only
#
# Both return 1 (with a message on stderr) when they cannot; neither runs apt-get.

private_apt_sources() {
    local dir=$1 s keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    shift
    [ -r "$keyring" ] || { echo "private-apt: no $keyring (install debian-archive-keyring)" >&2; return 1; }
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/sources.list.d" "$dir/preferences.d" \
        || { echo "private-apt: cannot create $dir" >&2; return 1; }
    {
        for s in "$@"; do
            # shellcheck disable=SC2086  # split "ARCHIVE SUITE"
            set -- $s
            echo "deb [arch=amd64 signed-by=$keyring] http://deb.debian.org/$1 $2 main"
        done
    } > "$dir/sources.list.new" && mv "$dir/sources.list.new" "$dir/sources.list"
}

private_apt_options() {
    local dir=$1
    APT_OPTS=(
        -o "Dir::Etc::SourceList=$dir/sources.list"
        -o "Dir::Etc::SourceParts=$dir/sources.list.d"
        -o "Dir::Etc::Preferences=$dir/preferences"
        -o "Dir::Etc::PreferencesParts=$dir/preferences.d"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::State::status=/dev/null"
        -o "Dir::Cache=$dir/cache"
        -o "Dir::Cache::pkgcache=pkgcache.bin"
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Architecture=amd64"
        -o "APT::Architectures::=amd64"
        -o "Acquire::Languages=none"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
        -o "Debug::NoLocking=1"
        -o "APT::Sandbox::User=root"
    )
}
