//! Capability and credential changes short of CAP_SYS_ADMIN (issue 16 class 5): the
//! operations of a [`crate::case::Step::Caps`] step. Each leaves CAP_SYS_ADMIN where it is,
//! except that `keepcaps-nobody` clears the whole effective set (the uid leaves 0) while
//! PR_SET_KEEPCAPS keeps the permitted set, and `raise` copies the permitted set back into the
//! effective one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// CAP_DAC_OVERRIDE.
pub const CAP_DAC_OVERRIDE: u32 = 1;
/// CAP_SETGID.
pub const CAP_SETGID: u32 = 6;
/// CAP_SETUID.
pub const CAP_SETUID: u32 = 7;
/// CAP_SETPCAP.
pub const CAP_SETPCAP: u32 = 8;
/// CAP_NET_ADMIN.
pub const CAP_NET_ADMIN: u32 = 12;
/// CAP_SYS_CHROOT.
pub const CAP_SYS_CHROOT: u32 = 18;
/// CAP_SYS_PTRACE.
pub const CAP_SYS_PTRACE: u32 = 19;
/// CAP_SYS_ADMIN, which no `drop-*` operation touches.
pub const CAP_SYS_ADMIN: u32 = 21;
/// CAP_SETFCAP: the creator of a user namespace needs it (in its effective set when it
/// unshares) for that namespace's uid_map to map the parent's uid 0 (`verify_root_map`).
pub const CAP_SETFCAP: u32 = 31;
/// CAP_CHECKPOINT_RESTORE (5.9).
pub const CAP_CHECKPOINT_RESTORE: u32 = 40;

/// The uid and gid `keepcaps-nobody` changes to.
pub const CAPS_NOBODY: u32 = 65534;

/// One capability or credential operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapsOp {
    /// Remove CAP_SETUID from the effective, permitted and inheritable sets.
    DropSetuid,
    /// Remove CAP_SETGID from the three sets.
    DropSetgid,
    /// Remove CAP_SETPCAP from the three sets.
    DropSetpcap,
    /// Remove CAP_NET_ADMIN from the three sets.
    DropNetAdmin,
    /// Remove CAP_SYS_CHROOT from the three sets.
    DropSysChroot,
    /// Remove CAP_SYS_PTRACE from the three sets.
    DropSysPtrace,
    /// Remove CAP_CHECKPOINT_RESTORE from the three sets.
    DropCheckpointRestore,
    /// Remove every capability but CAP_SYS_ADMIN from the three sets.
    DropAllButSysAdmin,
    /// `prctl(PR_CAPBSET_DROP)` for every capability but CAP_SYS_ADMIN (needs CAP_SETPCAP):
    /// the bounding set only, the other sets stay.
    BoundAllButSysAdmin,
    /// `prctl(PR_SET_KEEPCAPS, 1)`, `setresgid` and `setresuid` to 65534, then
    /// `prctl(PR_SET_DUMPABLE, 1)`: the permitted set stays, the effective set is cleared.
    KeepcapsNobody,
    /// `capset` with the effective set made equal to the permitted set.
    Raise,
}

impl CapsOp {
    /// All operations, for generators and tables.
    pub const ALL: [CapsOp; 11] = [
        CapsOp::DropSetuid,
        CapsOp::DropSetgid,
        CapsOp::DropSetpcap,
        CapsOp::DropNetAdmin,
        CapsOp::DropSysChroot,
        CapsOp::DropSysPtrace,
        CapsOp::DropCheckpointRestore,
        CapsOp::DropAllButSysAdmin,
        CapsOp::BoundAllButSysAdmin,
        CapsOp::KeepcapsNobody,
        CapsOp::Raise,
    ];

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            CapsOp::DropSetuid => "drop-setuid",
            CapsOp::DropSetgid => "drop-setgid",
            CapsOp::DropSetpcap => "drop-setpcap",
            CapsOp::DropNetAdmin => "drop-net-admin",
            CapsOp::DropSysChroot => "drop-sys-chroot",
            CapsOp::DropSysPtrace => "drop-sys-ptrace",
            CapsOp::DropCheckpointRestore => "drop-checkpoint-restore",
            CapsOp::DropAllButSysAdmin => "drop-all-but-sys-admin",
            CapsOp::BoundAllButSysAdmin => "bound-all-but-sys-admin",
            CapsOp::KeepcapsNobody => "keepcaps-nobody",
            CapsOp::Raise => "raise",
        }
    }

    /// The capabilities a `drop-*` operation removes from the effective, permitted and
    /// inheritable sets; 0 for the others. Never CAP_SYS_ADMIN.
    pub fn drop_mask(self) -> u64 {
        let one = |c: u32| 1u64 << c;
        match self {
            CapsOp::DropSetuid => one(CAP_SETUID),
            CapsOp::DropSetgid => one(CAP_SETGID),
            CapsOp::DropSetpcap => one(CAP_SETPCAP),
            CapsOp::DropNetAdmin => one(CAP_NET_ADMIN),
            CapsOp::DropSysChroot => one(CAP_SYS_CHROOT),
            CapsOp::DropSysPtrace => one(CAP_SYS_PTRACE),
            CapsOp::DropCheckpointRestore => one(CAP_CHECKPOINT_RESTORE),
            CapsOp::DropAllButSysAdmin => !one(CAP_SYS_ADMIN),
            CapsOp::BoundAllButSysAdmin | CapsOp::KeepcapsNobody | CapsOp::Raise => 0,
        }
    }
}

impl fmt::Display for CapsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drop_touches_sys_admin_and_names_are_distinct() {
        for op in CapsOp::ALL {
            assert_eq!(op.drop_mask() & (1 << CAP_SYS_ADMIN), 0, "{op}");
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.name()));
        }
        let names: std::collections::BTreeSet<_> = CapsOp::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), CapsOp::ALL.len());
        assert_eq!(CapsOp::DropAllButSysAdmin.drop_mask().count_ones(), 63);
    }
}
