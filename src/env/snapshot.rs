//! The state of a process as the harness sees it: its namespace links, ids, capabilities,
//! cwd, umask and what its siblings share ([`Snapshot`]). The executor's baseline, the
//! model's starting state and every observation of a case are made of these; pure data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::abi::errno::Errno;
use crate::abi::ns::NsLink;

/// The value of one `/proc/self/ns/*` link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsValue {
    /// `stat` gave this inode.
    Inode(u64),
    /// `stat` failed with this errno (ENOENT for `pid_for_children` right after NEWPID).
    Error(Errno),
}

impl NsValue {
    /// The inode, if there is one.
    pub fn inode(self) -> Option<u64> {
        match self {
            NsValue::Inode(i) => Some(i),
            NsValue::Error(_) => None,
        }
    }
}

impl Serialize for NsValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NsValue::Inode(i) => s.serialize_u64(*i),
            NsValue::Error(e) => e.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NsValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Inode(u64),
            Error(Errno),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Inode(i) => NsValue::Inode(i),
            Raw::Error(e) => NsValue::Error(e),
        })
    }
}

/// An integer result or an errno (kcmp, F_GETFD, GETVAL, probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntOrErrno {
    /// The call returned this.
    Value(i32),
    /// The call failed with this.
    Error(Errno),
}

impl From<Result<i32, Errno>> for IntOrErrno {
    fn from(r: Result<i32, Errno>) -> Self {
        match r {
            Ok(v) => IntOrErrno::Value(v),
            Err(e) => IntOrErrno::Error(e),
        }
    }
}

impl std::fmt::Display for IntOrErrno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrErrno::Value(v) => write!(f, "{v}"),
            IntOrErrno::Error(e) => write!(f, "{e}"),
        }
    }
}

impl Serialize for IntOrErrno {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrErrno::Value(v) => s.serialize_i32(*v),
            IntOrErrno::Error(e) => e.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrErrno {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Value(i32),
            Error(Errno),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Value(v) => IntOrErrno::Value(v),
            Raw::Error(e) => IntOrErrno::Error(e),
        })
    }
}

/// kcmp between the caller and one sibling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiblingView {
    /// For the types files, fs, vm, sighand, sysvsem.
    pub kcmp: [IntOrErrno; 5],
    /// KCMP_FILE of each setup fd against the sibling's same fd.
    pub fds: Vec<IntOrErrno>,
}

/// The caller's observable state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every `/proc/self/ns/*` link, in [`NsLink::ALL`] order.
    #[serde(with = "ns_map")]
    pub ns: [NsValue; NsLink::COUNT],
    /// `getpid()`.
    pub pid: i32,
    /// Real uid as seen in the current user namespace.
    pub uid: u32,
    /// Real gid as seen in the current user namespace.
    pub gid: u32,
    /// Effective uid.
    pub euid: u32,
    /// Effective gid.
    pub egid: u32,
    /// Effective capability set (`capget`).
    pub cap_eff: u64,
    /// Threads in the thread group (entries of `/proc/self/task`); 0 when it could not be
    /// read, and then `threads_error` says why (no process has 0 threads: 0 is never data).
    pub threads: u32,
    /// Why the thread count could not be read (EMFILE under a descriptor limit, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_error: Option<Errno>,
    /// (st_dev, st_ino) of the cwd.
    pub cwd: (u64, u64),
    /// The umask.
    pub umask: u32,
    /// GETVAL of the setup semaphore, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semval: Option<IntOrErrno>,
    /// kcmp against each sibling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub siblings: Vec<SiblingView>,
    /// F_GETFD of each setup fd.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fd_flags: Vec<IntOrErrno>,
}

impl Snapshot {
    /// What this snapshot could not observe because the harness ran out of a resource
    /// (descriptors, memory): a thread count or namespace id that could not be read. Such
    /// errors are the harness's, never the kernel's answer to the step: the checker skips
    /// what depends on them.
    pub fn unobserved(&self) -> Option<String> {
        let exhausted = |e: Errno| matches!(e.0, libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN);
        if let Some(e) = self.threads_error {
            return Some(format!("the thread count could not be read ({e})"));
        }
        NsLink::ALL.into_iter().find_map(|l| match self.link(l) {
            NsValue::Error(e) if exhausted(e) => Some(format!("the namespace ids could not be read ({e})")),
            _ => None,
        })
    }

    /// The value of one link.
    pub fn link(&self, link: NsLink) -> NsValue {
        self.ns[link.index()]
    }

    /// The links whose value differs between `self` and `later`.
    pub fn changed_links(&self, later: &Snapshot) -> Vec<NsLink> {
        NsLink::ALL.into_iter().filter(|l| self.link(*l) != later.link(*l)).collect()
    }
}

mod ns_map {
    use super::*;

    pub fn serialize<S: serde::Serializer>(ns: &[NsValue; NsLink::COUNT], s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<NsLink, NsValue> = NsLink::ALL.into_iter().zip(ns.iter().copied()).collect();
        map.serialize(s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[NsValue; NsLink::COUNT], D::Error> {
        let map = BTreeMap::<NsLink, NsValue>::deserialize(d)?;
        let mut out = [NsValue::Error(Errno::ENOENT); NsLink::COUNT];
        for link in NsLink::ALL {
            out[link.index()] =
                *map.get(&link).ok_or_else(|| serde::de::Error::custom(format!("snapshot lacks ns link {link}")))?;
        }
        Ok(out)
    }
}
