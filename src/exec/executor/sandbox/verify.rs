//! Is each namespace of the outer sandbox really new? unshare's success is not
//! taken on trust: before the call the executor records who it is, after it
//! compares, and nothing is written until every namespace asked for passed.
//!
//! Two kinds of evidence, neither of which writes outside the sandbox:
//!
//! * **ids**: `stat` of `/proc/self/ns/<link>` (st_dev, st_ino) before and after.
//!   Ids that differ are trusted; ids that are equal mean "not new" unless the
//!   behaviour below proves the namespace new (ids that do not change are then
//!   untrustworthy, as on kernels that fake the links); a missing link leaves
//!   the decision to the behaviour.
//! * **behaviour**: mount: every mount of a new mount namespace is a copy with
//!   a new mount id, so the mount ids of `/proc/self/mountinfo` before and after
//!   share none; network: an abstract unix socket bound before the call is
//!   invisible after (binding its name again succeeds, EADDRINUSE means the same
//!   namespace); IPC: the SysV objects of `/proc/sysvipc/*` listed before are
//!   gone after (only when there were some); user: a new user namespace has an
//!   empty `uid_map` until it is written; PID: after the fork, the sandbox's
//!   first process is pid 1. UTS has no behaviour that can be seen without
//!   writing the hostname, so its id decides.
//!
//! Any behaviour that shows the old namespace wins over the ids (a safety
//! check must not be talked out of a finding); a namespace with neither
//! usable ids nor conclusive behaviour counts as not verified, hence not new.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::os::fd::OwnedFd;

use crate::abi::errno::Errno;
use crate::abi::flags::bits;
use crate::sys;

/// A namespace type of the outer sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CLONE_NEWUSER.
    User,
    /// CLONE_NEWNS.
    Mnt,
    /// CLONE_NEWUTS.
    Uts,
    /// CLONE_NEWIPC.
    Ipc,
    /// CLONE_NEWNET.
    Net,
    /// CLONE_NEWPID.
    Pid,
}

impl Kind {
    /// Every kind, in the order they are checked.
    pub const ALL: [Kind; 6] = [Kind::User, Kind::Mnt, Kind::Uts, Kind::Ipc, Kind::Net, Kind::Pid];

    /// The unshare flag.
    pub fn flag(self) -> u64 {
        match self {
            Kind::User => bits::NEWUSER,
            Kind::Mnt => bits::NEWNS,
            Kind::Uts => bits::NEWUTS,
            Kind::Ipc => bits::NEWIPC,
            Kind::Net => bits::NEWNET,
            Kind::Pid => bits::NEWPID,
        }
    }

    /// The flag's name without `CLONE_`.
    pub fn flag_name(self) -> &'static str {
        match self {
            Kind::User => "NEWUSER",
            Kind::Mnt => "NEWNS",
            Kind::Uts => "NEWUTS",
            Kind::Ipc => "NEWIPC",
            Kind::Net => "NEWNET",
            Kind::Pid => "NEWPID",
        }
    }

    /// The `/proc/self/ns` link name, as readlink prints it (`uts:[...]`).
    pub fn link(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mnt => "mnt",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Net => "net",
            Kind::Pid => "pid",
        }
    }

    fn path(self) -> &'static CStr {
        match self {
            Kind::User => c"/proc/self/ns/user",
            Kind::Mnt => c"/proc/self/ns/mnt",
            Kind::Uts => c"/proc/self/ns/uts",
            Kind::Ipc => c"/proc/self/ns/ipc",
            Kind::Net => c"/proc/self/ns/net",
            Kind::Pid => c"/proc/self/ns/pid",
        }
    }

    /// How the namespace is named in messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Mnt => "mount",
            Kind::Uts => "UTS",
            Kind::Ipc => "IPC",
            Kind::Net => "network",
            Kind::Pid => "PID",
        }
    }
}

/// What a behavioural check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// The namespace is new (how we know).
    New(String),
    /// The namespace is the old one (how we know).
    Same(String),
    /// Nothing conclusive (why).
    Unknown(String),
}

/// The decision for one namespace: `Ok(note)` when new (a note when the ids were not
/// trusted), `Err(finding)` when not new or not verified.
pub fn decide(
    kind: Kind,
    before: Result<(u64, u64), Errno>,
    after: Result<(u64, u64), Errno>,
    behaviour: Behaviour,
) -> Result<Option<String>, String> {
    let name = |id: (u64, u64)| format!("{}:[{}]", kind.link(), id.1);
    let ids = match (before, after) {
        (Ok(b), Ok(a)) if a == b => format!("{} before and after", name(b)),
        (Ok(b), Ok(a)) => format!("{} before, {} after", name(b), name(a)),
        (Err(e), _) | (_, Err(e)) => format!("/proc/self/ns/{} unreadable: {e}", kind.link()),
    };
    let unchanged = |why: &str| format!("the {} namespace is unchanged ({why})", kind.label());
    match (before, after, behaviour) {
        (_, _, Behaviour::Same(how)) => Err(unchanged(&format!("{ids}; {how}"))),
        (Ok(b), Ok(a), _) if a != b => Ok(None),
        (Ok(_), Ok(_), Behaviour::New(how)) => Ok(Some(format!(
            "{} namespace new although its id did not change ({how}): the ids are not trusted here",
            kind.label()
        ))),
        (_, _, Behaviour::New(_)) => Ok(None),
        (Ok(_), Ok(_), Behaviour::Unknown(_)) => Err(unchanged(&ids)),
        (_, _, Behaviour::Unknown(why)) => {
            Err(format!("the {} namespace cannot be verified to be new ({ids}; {why})", kind.label()))
        }
    }
}

/// A namespace's id (st_dev, st_ino of its `/proc/self/ns` link), or why it is unreadable.
type NsId = Result<(u64, u64), Errno>;

/// What the executor was before the sandbox's unshare.
pub struct Before {
    ids: Vec<(Kind, NsId)>,
    mount_ids: BTreeSet<u64>,
    sysvipc: BTreeSet<String>,
    uid_map: Option<String>,
    /// A socket bound to an abstract name in the old network namespace (while it is open).
    net_probe: Option<(OwnedFd, Vec<u8>)>,
    net_probe_error: Option<Errno>,
}

impl Before {
    /// Records the identity of every namespace in `kinds` (and the behavioural baselines).
    pub fn capture(kinds: &[Kind]) -> Before {
        let ids = kinds.iter().map(|k| (*k, sys::stat_dev_ino(k.path()))).collect();
        let (net_probe, net_probe_error) = if kinds.contains(&Kind::Net) {
            let name = format!("unshare-fuzz-sandbox-check-{}-{}", sys::getpid(), sys::monotonic_ns()).into_bytes();
            match sys::bind_abstract_unix(&name) {
                Ok(fd) => (Some((fd, name)), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        Before {
            ids,
            mount_ids: mount_ids(),
            sysvipc: sysvipc(),
            uid_map: std::fs::read_to_string("/proc/self/uid_map").ok(),
            net_probe,
            net_probe_error,
        }
    }

    fn id(&self, kind: Kind) -> NsId {
        self.ids.iter().find(|(k, _)| *k == kind).map_or(Err(Errno::ENOENT), |(_, id)| *id)
    }

    /// Checks one namespace after the unshare (PID: see [`Before::check_pid_after_fork`] too).
    pub fn check(&self, kind: Kind) -> Result<Option<String>, String> {
        let behaviour = match kind {
            Kind::Mnt => self.mount_behaviour(),
            Kind::Net => self.net_behaviour(),
            Kind::Ipc => self.ipc_behaviour(),
            Kind::User => self.user_behaviour(),
            Kind::Uts => Behaviour::Unknown("the UTS namespace has no behaviour visible without writing".into()),
            Kind::Pid => return self.pid_before_fork(),
        };
        decide(kind, self.id(kind), sys::stat_dev_ino(kind.path()), behaviour)
    }

    /// Before the fork, only a `pid_for_children` that names the old namespace is conclusive
    /// (after a real NEWPID it is new, or ENOENT until the first process exists); the fork
    /// then settles it ([`Before::check_pid_after_fork`]).
    fn pid_before_fork(&self) -> Result<Option<String>, String> {
        match (self.id(Kind::Pid), sys::stat_dev_ino(c"/proc/self/ns/pid_for_children")) {
            (Ok(b), Ok(a)) if a == b => Err(format!(
                "the PID namespace is unchanged (pid:[{}] before, and pid_for_children names it after)",
                b.1
            )),
            _ => Ok(None),
        }
    }

    /// Checks the PID namespace in the sandbox's first process.
    pub fn check_pid_after_fork(&self) -> Result<Option<String>, String> {
        let pid = sys::getpid();
        let behaviour = if pid == 1 {
            Behaviour::New("the sandbox's first process is pid 1".into())
        } else {
            Behaviour::Same(format!("the sandbox's first process is pid {pid}, not 1"))
        };
        decide(Kind::Pid, self.id(Kind::Pid), sys::stat_dev_ino(Kind::Pid.path()), behaviour)
    }

    /// Closes the network probe's socket (its abstract name vanishes with it).
    pub fn close_net_probe(&mut self) {
        self.net_probe = None;
    }

    fn mount_behaviour(&self) -> Behaviour {
        let after = mount_ids();
        if self.mount_ids.is_empty() || after.is_empty() {
            return Behaviour::Unknown("no mount ids readable from /proc/self/mountinfo".into());
        }
        let common = self.mount_ids.intersection(&after).count();
        if common > 0 {
            Behaviour::Same(format!("{common} mount id(s) of /proc/self/mountinfo are the same before and after"))
        } else {
            Behaviour::New("every mount has a new mount id".into())
        }
    }

    fn net_behaviour(&self) -> Behaviour {
        let Some((_, name)) = &self.net_probe else {
            return Behaviour::Unknown(format!(
                "no abstract unix socket could be bound before ({})",
                self.net_probe_error.unwrap_or(Errno::ENOENT)
            ));
        };
        match sys::bind_abstract_unix(name) {
            Ok(_) => Behaviour::New("an abstract unix socket bound before is not visible after".into()),
            Err(Errno(libc::EADDRINUSE)) => {
                Behaviour::Same("an abstract unix socket bound before is still visible after (EADDRINUSE)".into())
            }
            Err(e) => Behaviour::Unknown(format!("binding the abstract unix socket again failed with {e}")),
        }
    }

    fn ipc_behaviour(&self) -> Behaviour {
        if self.sysvipc.is_empty() {
            return Behaviour::Unknown("no SysV IPC object existed before to compare".into());
        }
        let after = sysvipc();
        if after.is_empty() {
            Behaviour::New(format!("the {} SysV IPC object(s) listed before are gone", self.sysvipc.len()))
        } else if self.sysvipc.intersection(&after).next().is_some() {
            Behaviour::Same("SysV IPC objects of /proc/sysvipc listed before are still listed".into())
        } else {
            Behaviour::Unknown("/proc/sysvipc lists other objects".into())
        }
    }

    fn user_behaviour(&self) -> Behaviour {
        match std::fs::read_to_string("/proc/self/uid_map") {
            Ok(m) if m.trim().is_empty() => Behaviour::New("uid_map is empty, as in a new user namespace".into()),
            Ok(m) if Some(&m) == self.uid_map.as_ref() => Behaviour::Same("uid_map is unchanged and not empty".into()),
            Ok(_) => Behaviour::Unknown("uid_map changed".into()),
            Err(e) => Behaviour::Unknown(format!("/proc/self/uid_map unreadable: {e}")),
        }
    }
}

/// The mount ids (first field) of /proc/self/mountinfo.
fn mount_ids() -> BTreeSet<u64> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// The SysV IPC objects (kind, key and id columns) of /proc/sysvipc/{msg,sem,shm}.
fn sysvipc() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for kind in ["msg", "sem", "shm"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/sysvipc/{kind}")) {
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().take(2).collect();
                set.insert(format!("{kind} {}", cols.join(" ")));
            }
        }
    }
    set
}

/// `Some(true)` if /proc/self/mountinfo has a mount at `/` (None if unreadable).
pub fn root_is_mount_point() -> Option<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    Some(info.lines().any(|l| l.split_whitespace().nth(4) == Some("/")))
}

/// A mount of /proc/self/mountinfo whose optional fields still say `shared:` (its mount point
/// and tag), if any; None when every mount is private or a slave, or mountinfo is unreadable.
pub fn shared_mounts() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    shared_in(&info)
}

fn shared_in(info: &str) -> Option<String> {
    let shared: Vec<String> = info
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let optional = fields.get(6..)?.iter().take_while(|f| **f != "-");
            let tag = optional.into_iter().find(|f| f.starts_with("shared:"))?;
            Some(format!("{} ({tag})", fields.get(4)?))
        })
        .collect();
    match shared.len() {
        0 => None,
        1 => Some(format!("the mount at {}", shared[0])),
        n => Some(format!("the mount at {} (and {} more)", shared[0], n - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: (u64, u64) = (4, 4026531838);
    const OTHER: (u64, u64) = (4, 4026532001);

    #[test]
    fn ids_that_differ_are_trusted_and_equal_ids_are_a_finding() {
        let unknown = || Behaviour::Unknown("no behaviour".into());
        assert_eq!(decide(Kind::Uts, Ok(ID), Ok(OTHER), unknown()), Ok(None));
        let e = decide(Kind::Uts, Ok(ID), Ok(ID), unknown()).unwrap_err();
        assert_eq!(e, "the UTS namespace is unchanged (uts:[4026531838] before and after)");
    }

    #[test]
    fn behaviour_decides_without_ids_and_a_sighting_of_the_old_namespace_wins() {
        let new = || Behaviour::New("fresh".into());
        let same = || Behaviour::Same("old socket seen".into());
        assert_eq!(decide(Kind::Net, Err(Errno::ENOENT), Err(Errno::ENOENT), new()), Ok(None));
        assert!(decide(Kind::Net, Ok(ID), Ok(OTHER), same()).unwrap_err().contains("old socket seen"));
        let note = decide(Kind::Net, Ok(ID), Ok(ID), new()).unwrap().unwrap();
        assert!(note.contains("not trusted"), "{note}");
        let e = decide(Kind::Uts, Err(Errno::ENOENT), Err(Errno::ENOENT), Behaviour::Unknown("none".into()));
        assert!(e.unwrap_err().contains("cannot be verified"));
    }

    #[test]
    fn finds_shared_mounts_in_mountinfo() {
        let private = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n23 22 0:5 / /proc rw master:3 - proc proc rw\n";
        assert_eq!(shared_in(private), None);
        let shared = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n24 22 0:6 / /x rw shared:9 - t t rw\n";
        assert_eq!(shared_in(shared).as_deref(), Some("the mount at / (shared:1) (and 1 more)"));
    }
}
