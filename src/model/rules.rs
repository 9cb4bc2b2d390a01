//! The shape of a kernel's unshare rules: a profile ([`KernelProfile`]), one row of its
//! check sequence ([`Check`]) and what a row reads ([`Ctx`]). The types only; the tables are
//! in `checks.rs` and the profiles of each Linux version in `profile.rs`, which both use them.

use serde::Serialize;

use crate::abi::errno::Errno;
use crate::abi::flags::{Implication, RawFlags, bits};
use crate::abi::ns::NsLink;
use crate::case::NsType;
use crate::env::Environment;

use super::state::CallerState;

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
    /// After NEWTIME (time_for_children differs from time), threads and CLONE_VM children are
    /// refused with EINVAL (5.6 to 6.1; removed in 6.2 by 2b5f9dad32ed; spec §6 M8). Before
    /// the same commit every child, CLONE_VM ones included, entered time_for_children at
    /// fork (so clone3(NEWTIME|VM) gives a child in the new time namespace).
    pub newtime_blocks_threads: bool,
    /// pid_for_children names the new pid namespace right after NEWPID (measured on 7.3.4);
    /// older kernels hide it (ENOENT) until the first child exists (spec §5.9 item 7).
    pub pid_for_children_visible_at_once: bool,
    /// A bit unshare accepts as "new, empty mount namespace" (UNSHARE_EMPTY_MNTNS, bit 20,
    /// measured on 7.3.4): it implies NEWNS, and the caller then no longer reaches /proc.
    pub empty_mntns_bit: Option<u64>,
    /// clone3 refuses PIDFD together with THREAD with EINVAL (before 6.9; allowed by
    /// 83b290c9e3b5). The linux-6.18 profile also describes 6.2 to 6.8, where this is still
    /// true; only 6.12 and 6.18 were measured.
    pub clone3_pidfd_refuses_thread: bool,
    /// Bits above INTO_CGROUP that clone3 accepts on their own (7.3.4: bits 35 and 37, as
    /// measured by `unshare-fuzz flags` under qemu; what they do is not modelled).
    pub clone3_extra_bits: u64,
    /// A first child of a pending pid namespace whose clone fails after alloc_pid (clone3
    /// INTO_CGROUP with a bad fd) leaves that namespace unable to take any process (6.18,
    /// spec-era kernels); 7.3.4 keeps it pending, so a later fork still becomes its init
    /// (measured under qemu; docs/multi-kernel.md).
    pub failed_first_child_kills_pending_pidns: bool,
    /// Releases (major, minor) this profile was measured on or describes, oldest first.
    pub kernels: ((u32, u32), (u32, u32)),
}

impl std::fmt::Debug for KernelProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelProfile").field("name", &self.name).finish_non_exhaustive()
    }
}

/// One row of the check sequence.
pub struct Check {
    /// Stable id, used in reports (`unknown-bit`, `pid-already-unshared`, ...).
    pub id: &'static str,
    /// The step of unshare-semantics.md §2.2 it implements.
    pub step: &'static str,
    /// The errno it produces.
    pub errno: Errno,
    /// When it fires.
    pub cond: fn(&Ctx) -> bool,
    /// One line for humans.
    pub doc: &'static str,
}

/// What a check row may read.
pub struct Ctx<'a> {
    /// Flags after the implications.
    pub f: u64,
    /// The profile's valid mask.
    pub valid_mask: u64,
    /// The caller.
    pub state: &'a CallerState,
    /// The machine.
    pub env: &'a Environment,
    /// The kernel profile (for rows that exist only on some kernels).
    pub profile: &'a KernelProfile,
}

impl Ctx<'_> {
    /// True if any bit of `bit` is in the flag word.
    pub(crate) fn has(&self, bit: u64) -> bool {
        self.f & bit != 0
    }

    /// CAP_SYS_ADMIN in the user ns that will own the new namespaces.
    pub(crate) fn target_has_sys_admin(&self) -> bool {
        self.has(bits::NEWUSER) || self.state.cap_sys_admin
    }

    /// The per-user-namespace limit for `kind` is 0 here.
    pub(crate) fn ucount_full(&self, kind: NsType) -> bool {
        self.state.limit_zero(self.env, kind)
    }

    /// `bit` asks for a namespace type this kernel does not have.
    pub(crate) fn missing(&self, bit: u64, link: NsLink) -> bool {
        self.has(bit) && !super::state::ns_type_present(self.env, link)
    }
}
