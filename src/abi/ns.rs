//! The `/proc/self/ns/*` links the harness observes, in one fixed order.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One link under `/proc/self/ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsLink {
    /// `cgroup`
    Cgroup,
    /// `ipc`
    Ipc,
    /// `mnt`
    Mnt,
    /// `net`
    Net,
    /// `pid` (the caller's active pid namespace)
    Pid,
    /// `pid_for_children` (ENOENT between unshare(NEWPID) and the first fork)
    PidForChildren,
    /// `time` (the caller's active time namespace)
    Time,
    /// `time_for_children`
    TimeForChildren,
    /// `user`
    User,
    /// `uts`
    Uts,
}

impl NsLink {
    /// All links, in the order used by snapshots.
    pub const ALL: [NsLink; 10] = [
        NsLink::Cgroup,
        NsLink::Ipc,
        NsLink::Mnt,
        NsLink::Net,
        NsLink::Pid,
        NsLink::PidForChildren,
        NsLink::Time,
        NsLink::TimeForChildren,
        NsLink::User,
        NsLink::Uts,
    ];

    /// Number of links.
    pub const COUNT: usize = 10;

    /// The file name under `/proc/self/ns`.
    pub fn file_name(self) -> &'static str {
        match self {
            NsLink::Cgroup => "cgroup",
            NsLink::Ipc => "ipc",
            NsLink::Mnt => "mnt",
            NsLink::Net => "net",
            NsLink::Pid => "pid",
            NsLink::PidForChildren => "pid_for_children",
            NsLink::Time => "time",
            NsLink::TimeForChildren => "time_for_children",
            NsLink::User => "user",
            NsLink::Uts => "uts",
        }
    }

    /// NUL-terminated path, for use after fork without allocating.
    pub fn c_path(self) -> &'static std::ffi::CStr {
        match self {
            NsLink::Cgroup => c"/proc/self/ns/cgroup",
            NsLink::Ipc => c"/proc/self/ns/ipc",
            NsLink::Mnt => c"/proc/self/ns/mnt",
            NsLink::Net => c"/proc/self/ns/net",
            NsLink::Pid => c"/proc/self/ns/pid",
            NsLink::PidForChildren => c"/proc/self/ns/pid_for_children",
            NsLink::Time => c"/proc/self/ns/time",
            NsLink::TimeForChildren => c"/proc/self/ns/time_for_children",
            NsLink::User => c"/proc/self/ns/user",
            NsLink::Uts => c"/proc/self/ns/uts",
        }
    }

    /// NUL-terminated file name, for `fstatat` under an open `/proc/self/ns`.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            NsLink::Cgroup => c"cgroup",
            NsLink::Ipc => c"ipc",
            NsLink::Mnt => c"mnt",
            NsLink::Net => c"net",
            NsLink::Pid => c"pid",
            NsLink::PidForChildren => c"pid_for_children",
            NsLink::Time => c"time",
            NsLink::TimeForChildren => c"time_for_children",
            NsLink::User => c"user",
            NsLink::Uts => c"uts",
        }
    }

    /// Position in [`NsLink::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl NsLink {
    /// The `nr` of `PIDFD_GET_<link>_NAMESPACE` (`_IO(0xFF, nr)`, include/uapi/linux/pidfd.h,
    /// Linux 6.11+).
    pub fn pidfd_ioctl_nr(self) -> u8 {
        match self {
            NsLink::Cgroup => 1,
            NsLink::Ipc => 2,
            NsLink::Mnt => 3,
            NsLink::Net => 4,
            NsLink::Pid => 5,
            NsLink::PidForChildren => 6,
            NsLink::Time => 7,
            NsLink::TimeForChildren => 8,
            NsLink::User => 9,
            NsLink::Uts => 10,
        }
    }
}

/// How a case child reads the ids of its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsObserver {
    /// `readlinkat` of each `/proc/self/ns/<link>` (every kernel; what the spec describes).
    #[default]
    ProcLinks,
    /// `PIDFD_GET_<link>_NAMESPACE` on a pidfd of itself, then `fstat` (Linux 6.11+): no
    /// per-pid /proc inodes, cheaper while the executor holds its own namespaces open. The
    /// same inode numbers, except that `pid_for_children` names a pending pid namespace at
    /// once, where the link gives ENOENT until its first process exists.
    PidfdIoctl,
}

impl fmt::Display for NsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_paths_agree() {
        for (i, link) in NsLink::ALL.iter().enumerate() {
            assert_eq!(link.index(), i);
            let p = link.c_path().to_str().unwrap();
            assert_eq!(p, format!("/proc/self/ns/{}", link.file_name()));
            assert_eq!(link.c_name().to_str().unwrap(), link.file_name());
        }
    }
}
