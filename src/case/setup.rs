//! `Setup`: how the case's process is prepared before its first step.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who the calling process is when the steps start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    /// The executor's own credentials: uid 0 with every capability it has.
    #[default]
    Root,
    /// uid 0 with CAP_SYS_ADMIN removed from the effective, permitted and inheritable sets.
    RootWithoutSysAdmin,
    /// uid/gid 65534 with no capabilities (needs 65534 mapped in the executor's user namespace).
    Nobody,
    /// In a fresh user namespace created by the setup, uid/gid maps `0 <outer id> 1` written:
    /// root there with a full capability set.
    UserNs,
}

impl Privilege {
    /// All values, for generators and tables.
    pub const ALL: [Privilege; 4] = [
        Privilege::Root,
        Privilege::RootWithoutSysAdmin,
        Privilege::Nobody,
        Privilege::UserNs,
    ];

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Root => "root",
            Privilege::RootWithoutSysAdmin => "root-without-sys-admin",
            Privilege::Nobody => "nobody",
            Privilege::UserNs => "user-ns",
        }
    }
}

/// The process state built before the first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Who the caller is (applied first).
    #[serde(default)]
    pub privilege: Privilege,
    /// Extra threads (0..=2) started after the privilege change, blocked until the case ends.
    #[serde(default)]
    pub threads: u8,
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.privilege.name())?;
        match self.threads {
            0 => Ok(()),
            1 => f.write_str(", 1 extra thread"),
            n => write!(f, ", {n} extra threads"),
        }
    }
}
