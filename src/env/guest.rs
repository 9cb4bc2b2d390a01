//! Whether the executor runs in a throwaway qemu guest started by this harness's
//! own `/init` (`cli::guest`), where guest-only cases (`case::guest`) may change
//! the whole kernel. Pure data and the pure decision; the executor reads the
//! inputs (`exec::executor::guest_probe`). See docs/guest-only.md.

use serde::{Deserialize, Serialize};

/// Set to [`GUEST_TOKEN`] by the guest `/init` (pid 1 of a qemu guest) for the harness it
/// starts, and by nothing else.
pub const GUEST_VAR: &str = "UNSHARE_FUZZ_QEMU_GUEST";
/// The value of [`GUEST_VAR`] (a word nobody sets by accident).
pub const GUEST_TOKEN: &str = "pid1-of-a-throwaway-qemu-guest";
/// Set to `1` by the guest `/init` when it configured failslab and fail_page_alloc for
/// fail-nth (ignore-gfp-wait off, order-0 pages, quiet) and `/proc/thread-self/fail-nth` exists.
pub const FAULTS_VAR: &str = "UNSHARE_FUZZ_GUEST_FAULTS";
/// The kernel command-line parameter `scripts/kernels.sh` and `scripts/kcov.sh` always pass.
pub const CMDLINE_MARK: &str = "uf.args=";

/// A throwaway guest, as the executor found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKernel {
    /// `fs.nr_open` as it was when the executor started: restored after every case that
    /// lowered it.
    pub nr_open: u32,
    /// Fault injection is ready for fail-nth cases.
    pub fault_injection: bool,
}

/// The decision: a guest only when the guest init's token is in the environment **and** the
/// running kernel's command line carries [`CMDLINE_MARK`] (a host's kernel command line does
/// not), and `fs.nr_open` could be read.
pub fn decide(token: Option<&str>, cmdline: &str, nr_open: Option<u32>, faults: bool) -> Option<GuestKernel> {
    let booted_by_us = cmdline.split_whitespace().any(|w| w.starts_with(CMDLINE_MARK));
    if token != Some(GUEST_TOKEN) || !booted_by_us {
        return None;
    }
    Some(GuestKernel { nr_open: nr_open?, fault_injection: faults })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_marks_are_needed() {
        let cmd = "console=ttyS0 panic=-1 uf.args=--throwaway-kernel,replay,/corpus uf.timeout=100";
        let host = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro";
        assert_eq!(
            decide(Some(GUEST_TOKEN), cmd, Some(1_048_576), true),
            Some(GuestKernel { nr_open: 1_048_576, fault_injection: true })
        );
        // The variable alone (set by hand on a host) is not enough, nor the command line alone.
        assert_eq!(decide(Some(GUEST_TOKEN), host, Some(1_048_576), false), None);
        assert_eq!(decide(None, cmd, Some(1_048_576), false), None);
        assert_eq!(decide(Some("1"), cmd, Some(1_048_576), false), None);
        assert_eq!(decide(Some(GUEST_TOKEN), cmd, None, false), None);
    }
}
