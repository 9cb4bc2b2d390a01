//! Kernel profiles: the set of rules (mask, implications, check table,
//! effects) that describe one kernel's unshare. Linux 6.18 is the reference;
//! older kernels are expressed by swapping rows.

use serde::Serialize;

use crate::flags::{IMPLICATIONS_6_18, Implication, UNSHARE_VALID_MASK};

use super::checks::{CHECKS_6_18, Check};

/// One kernel's unshare rules.
#[derive(Clone, Copy, Serialize)]
pub struct KernelProfile {
    /// Stable name (`linux-6.18`).
    pub name: &'static str,
    /// One line on which kernels it describes.
    pub describes: &'static str,
    /// Bits accepted.
    pub valid_mask: u64,
    /// Implications, applied in order before any check.
    #[serde(skip)]
    pub implications: &'static [Implication],
    /// The ordered check sequence.
    #[serde(skip)]
    pub checks: &'static [Check],
    /// NEWNS always gets a new fs_struct (upstream 6c4b2243cb6c, 2026 stable backports).
    pub newns_always_new_fs: bool,
}

impl std::fmt::Debug for KernelProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelProfile").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Linux 6.18.44, as measured in unshare-semantics.md.
pub const LINUX_6_18: KernelProfile = KernelProfile {
    name: "linux-6.18",
    describes: "Linux 6.2 and later with the 2026 unshare_fs fix (6.18.44 measured)",
    valid_mask: UNSHARE_VALID_MASK,
    implications: IMPLICATIONS_6_18,
    checks: CHECKS_6_18,
    newns_always_new_fs: true,
};

/// Every profile, newest first.
pub const PROFILES: &[KernelProfile] = &[LINUX_6_18];

/// Looks a profile up by name.
pub fn by_name(name: &str) -> Option<&'static KernelProfile> {
    PROFILES.iter().find(|p| p.name == name)
}
