//! Fault injection for guest-only fail-nth cases, set up by the guest `/init`
//! (pid 1 of a throwaway qemu guest, `cli::guest`) before it starts the
//! harness: debugfs mounted, and failslab and fail_page_alloc told to fail
//! also the allocations that may sleep (`ignore-gfp-wait` = N: otherwise
//! fail-nth skips every GFP_KERNEL allocation), order-0 pages included
//! (`min-order` = 0), without a stack dump per fault (`verbose` = 0). These are
//! global writes, made only here, in the guest. See docs/guest-only.md.

/// Mounts debugfs and configures fault injection; true when every write worked and
/// `/proc/thread-self/fail-nth` exists (a kernel with FAULT_INJECTION, FAILSLAB and
/// FAULT_INJECTION_DEBUG_FS, such as scripts/kcov-kernel.sh's). On other kernels (the Debian
/// cloud kernels) false, with one console line saying why.
pub fn configure() -> bool {
    if std::process::id() != 1 {
        return false;
    }
    if !std::path::Path::new("/proc/thread-self/fail-nth").exists() {
        eprintln!("uf-guest: no /proc/thread-self/fail-nth (kernel without FAULT_INJECTION): fail-nth cases skip");
        return false;
    }
    let debug = "/sys/kernel/debug";
    if !std::path::Path::new(&format!("{debug}/failslab")).exists() {
        let _ = std::fs::create_dir_all(debug);
        if let Err(e) = super::guest::mount_one("debugfs", debug, "debugfs") {
            eprintln!("uf-guest: mount debugfs on {debug} failed: {e}; fail-nth cases skip");
            return false;
        }
    }
    let writes = [
        ("failslab/ignore-gfp-wait", "N"),
        ("failslab/verbose", "0"),
        ("fail_page_alloc/ignore-gfp-wait", "N"),
        ("fail_page_alloc/min-order", "0"),
        ("fail_page_alloc/verbose", "0"),
    ];
    for (file, value) in writes {
        let path = format!("{debug}/{file}");
        if let Err(e) = std::fs::write(&path, value) {
            eprintln!("uf-guest: write {value} to {path} failed: {e}; fail-nth cases skip");
            return false;
        }
    }
    eprintln!("uf-guest: fault injection ready for fail-nth cases (failslab, fail_page_alloc)");
    true
}
