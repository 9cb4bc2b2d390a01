//! Kernel facts tested once at start (`exec::executor::call_probe::facts`), where unshare's or clone3's
//! contract itself changed between Linux versions: the release string only names the starting
//! profile, and the model follows what the probe saw (`ProbedFacts::adjust`, in `model::facts`). A probe may only choose
//! between behaviours that some Linux version really has; any other answer (gVisor, a lying
//! seccomp mutant) is recorded as [`Probed::Unknown`] and switches nothing, so the cases that
//! depend on it are judged against the profile and report the difference as a violation.
//! A missing bug fix is never such a fact (`check::known` names it instead).

#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// One probed fact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probed {
    /// Not probed (an older executor, a reference environment).
    #[default]
    NotProbed,
    /// One of the behaviours a Linux version has.
    Fact(bool),
    /// An answer no Linux version gives, as seen.
    Unknown(String),
}

/// clone3 bits above INTO_CGROUP that Linux 7.3 accepts alone (measured on 7.3.4).
pub const CLONE3_BITS_7_3: u64 = (1 << 35) | (1 << 37);

/// The facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbedFacts {
    /// `/proc/self/ns/pid_for_children` names the new pid namespace right after
    /// unshare(NEWPID) (7.x), rather than ENOENT until the first child (up to 6.18).
    #[serde(default)]
    pub pid_for_children_at_once: Probed,
    /// unshare(bit 20) alone succeeds and leaves the caller without /proc
    /// (UNSHARE_EMPTY_MNTNS, 7.x), rather than EINVAL.
    #[serde(default)]
    pub empty_mntns_bit: Probed,
    /// After unshare(NEWTIME), clone3(VM|VFORK) fails with EINVAL (5.6 to 6.1), rather than
    /// succeeding (6.2 and later, 2b5f9dad32ed).
    #[serde(default)]
    pub newtime_blocks_vm_children: Probed,
    /// clone3 bits 34..=63 accepted alone, as a mask; a fact only when it is a set some Linux
    /// accepts (none, or 7.3's bits 35 and 37).
    #[serde(default)]
    pub clone3_extra_bits: Option<u64>,
}

/// One fact as the reports show it: its name, what was seen, and the rule it switched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactLine {
    /// The fact.
    pub fact: &'static str,
    /// Its value as probed.
    pub value: String,
    /// The profile switch it set and whether that changed the starting profile.
    pub rule: String,
}
