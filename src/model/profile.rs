//! Kernel profiles: the set of rules (mask, what happens to unknown bits,
//! implications, check table, effects) that describe one kernel's unshare.
//! Linux 6.18 is the reference; older kernels are data next to it: their own
//! implication tables and check rows (`checks.rs`), and flags. A profile that
//! differs from another in one respect is written with struct-update syntax
//! (`..LINUX_6_18`), so adding a kernel is adding a `const` and listing it in
//! [`PROFILES`].
//!
//! The historical profiles (spec §6) also serve as *model mutants*: run as the
//! oracle against a 6.18 kernel, each must disagree on some generated case
//! (`unshare-fuzz selftest`), which shows that the generators exercise the rules
//! that make them differ.

use serde::Serialize;

use crate::flags::{IMPLICATIONS_6_18, Implication, RawFlags, UNSHARE_VALID_MASK, bits};

use super::checks::{CHECKS_2_6_16, CHECKS_3_11, CHECKS_6_18, Check};

/// What a kernel does with bits outside its valid mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownBits {
    /// They stay in the word and the check table decides (the `unknown-bit` row: EINVAL).
    Checked,
    /// They are dropped after the implications: the call behaves as if they were not passed
    /// (spec §6 M0, the early 2.6.16 unshare).
    Ignored,
}

impl UnknownBits {
    /// The flag word the checks and effects see, after the implications.
    pub fn apply(self, implied: RawFlags, valid_mask: u64) -> RawFlags {
        match self {
            UnknownBits::Checked => implied,
            UnknownBits::Ignored => RawFlags(implied.0 & valid_mask),
        }
    }
}

/// One kernel's unshare rules.
#[derive(Clone, Copy, Serialize)]
pub struct KernelProfile {
    /// Stable name (`linux-6.18`).
    pub name: &'static str,
    /// One line on which kernels it describes.
    pub describes: &'static str,
    /// Where its rules come from (sections of unshare-semantics.md).
    pub sources: &'static str,
    /// Bits accepted.
    pub valid_mask: u64,
    /// What happens to bits outside `valid_mask`.
    pub unknown_bits: UnknownBits,
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
    sources: "§1-§5 (measured on 6.18.44)",
    valid_mask: UNSHARE_VALID_MASK,
    unknown_bits: UnknownBits::Checked,
    implications: IMPLICATIONS_6_18,
    checks: CHECKS_6_18,
    newns_always_new_fs: true,
};

/// Linux 6.18 without upstream 6c4b2243cb6c "unshare: fix unshare_fs() handling".
///
/// Step 5 copies the fs_struct only when it is shared, so NEWNS on an unshared fs_struct
/// switches the live one to the new tree. The other half of that bug (spec §6 M12: a NEWNS
/// that fails at a later namespace leaves root and cwd on detached mounts) is not in the
/// model: the snapshot records (dev, ino) of cwd, which a detached copy keeps, and no mount ids.
pub const LINUX_6_18_WITHOUT_UNSHARE_FS_FIX: KernelProfile = KernelProfile {
    name: "linux-6.18-without-unshare-fs-fix",
    describes: "Linux 6.2 to 6.18 before the 2026 stable backport of 6c4b2243cb6c: NEWNS reuses an unshared fs_struct",
    sources: "§2.2 [†], §5.7, §6 M12",
    newns_always_new_fs: false,
    ..LINUX_6_18
};

/// Implications of Linux 3.9 to 3.11 (spec §6 M3, M4), in the order `sys_unshare` applied them.
pub const IMPLICATIONS_3_11: &[Implication] = &[
    Implication { when: bits::NEWUSER, adds: bits::THREAD | bits::FS },
    Implication { when: bits::NEWPID, adds: bits::THREAD },
    Implication { when: bits::THREAD, adds: bits::VM },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Linux 3.9 to 3.11: NEWPID implies THREAD; THREAD implies VM implies SIGHAND, and all
/// three fail while the mm has other users; no cgroup or time namespaces; the user-ns depth
/// limit gives EUSERS and the pid-ns one EINVAL; no per-user-ns limits.
pub const LINUX_3_11: KernelProfile = KernelProfile {
    name: "linux-3.11",
    describes: "Linux 3.9 to 3.11 (3.8 also lacked NEWUSER => FS and the chroot check)",
    sources: "§6 M2, M3, M4, M6, M7",
    valid_mask: UNSHARE_VALID_MASK & !(bits::NEWCGROUP | bits::NEWTIME),
    unknown_bits: UnknownBits::Checked,
    implications: IMPLICATIONS_3_11,
    checks: CHECKS_3_11,
    newns_always_new_fs: false,
};

/// Implications of Linux 2.6.16 (spec §6 M1). "SIGHAND implies THREAD when the signal
/// struct is shared" is the `sighand-shared` row's thread condition in [`CHECKS_2_6_16`].
pub const IMPLICATIONS_2_6_16: &[Implication] = &[
    Implication { when: bits::THREAD, adds: bits::VM },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Linux 2.6.16 as the seed article describes it: unknown flags ignored, only
/// THREAD|FS|NEWNS|SIGHAND|VM|FILES|SYSVSEM known, THREAD and SYSVSEM always EINVAL.
pub const LINUX_2_6_16: KernelProfile = KernelProfile {
    name: "linux-2.6.16",
    describes: "Linux 2.6.16 (the first unshare; unknown flags ignored as in the -mm series)",
    sources: "§6 M0, M1, M2",
    valid_mask: bits::THREAD | bits::FS | bits::NEWNS | bits::SIGHAND | bits::VM | bits::FILES | bits::SYSVSEM,
    unknown_bits: UnknownBits::Ignored,
    implications: IMPLICATIONS_2_6_16,
    checks: CHECKS_2_6_16,
    newns_always_new_fs: false,
};

/// Every profile, newest first.
pub const PROFILES: &[KernelProfile] = &[LINUX_6_18, LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, LINUX_3_11, LINUX_2_6_16];

/// The profiles of older kernels (spec §6), each a model mutant of [`LINUX_6_18`].
pub const HISTORICAL: &[KernelProfile] = &[LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, LINUX_3_11, LINUX_2_6_16];

/// Looks a profile up by name.
pub fn by_name(name: &str) -> Option<&'static KernelProfile> {
    PROFILES.iter().find(|p| p.name == name)
}
