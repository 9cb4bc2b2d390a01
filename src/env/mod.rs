//! `Environment`: the facts about the machine and the executor's sandbox that
//! the model needs and every report shows first. Probed once, by the
//! executor, inside its sandbox (see `exec::executor::probe`). Pure data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod facts;
pub mod guest;
pub mod resources;
pub mod snapshot;

use crate::abi::ns::NsLink;
use crate::env::snapshot::Snapshot;

/// Everything probed once at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// `uname -r`.
    pub kernel_release: String,
    /// Real uid of the user who started the harness, outside the sandbox.
    pub host_uid: u32,
    /// How the outer sandbox was built (which namespaces; user namespace or not).
    pub sandbox: String,
    /// True if the sandbox includes its own user namespace (the harness was started unprivileged).
    pub sandbox_user_ns: bool,
    /// The executor's state inside the sandbox: every case starts from it.
    pub baseline: Snapshot,
    /// Highest capability number (`/proc/sys/kernel/cap_last_cap`).
    pub cap_last_cap: u32,
    /// `/proc/sys/kernel/overflowuid`.
    pub overflow_uid: u32,
    /// `/proc/sys/kernel/overflowgid`.
    pub overflow_gid: u32,
    /// Depth of the executor's user namespace below the initial one, when it can be known
    /// (0 if the uid map is the identity of the initial namespace).
    pub userns_depth: Option<u32>,
    /// Level of the executor's pid namespace (0 is the initial one), when it can be known.
    pub pidns_level: Option<u32>,
    /// True if the executor's root is not the root of its mount namespace.
    pub chrooted: bool,
    /// uid and gid 65534 are mapped in the executor's user namespace (the `nobody` setup needs it).
    pub nobody_mapped: bool,
    /// kcmp(2) works here (probed on the executor itself).
    pub kcmp: bool,
    /// Namespace links that exist under `/proc/self/ns`.
    pub ns_links: Vec<NsLink>,
    /// `/proc/sys/user/max_*_namespaces` as seen in the sandbox (key: `user`, `mnt`, ...).
    pub max_namespaces: BTreeMap<String, u64>,
    /// `Seccomp:` of `/proc/self/status` before the sandbox (0 none, 1 strict, 2 filter).
    pub seccomp_mode: u32,
    /// Active security modules (`/sys/kernel/security/lsm`), if readable.
    pub lsms: Vec<String>,
    /// Plain-language notes on anything that may filter or restrict unshare here; empty when
    /// nothing was found. Printed at the top of every report.
    pub restrictions: Vec<String>,
    /// How case children read their namespace ids (chosen by the executor's probe).
    #[serde(default)]
    pub ns_observer: crate::abi::ns::NsObserver,
    /// The CPU the executor (and so every case child) is pinned to, if any
    /// (`exec::executor::placement`).
    #[serde(default)]
    pub pinned_cpu: Option<u32>,
    /// Room for more namespaces, measured by creating them (`exec::executor::headroom`); the
    /// pid-namespace level and user-namespace depth above are derived from it.
    #[serde(default)]
    pub headroom: Headroom,
    /// What single calls returned from the executor's own state (`exec::executor::call_probe`): the
    /// model reads a seccomp or LSM restriction from them (`model::limits`).
    #[serde(default)]
    pub call_probes: CallProbes,
    /// The outer sandbox's namespaces that unshare reported as made but that are not new
    /// (`sandbox-namespaces-are-new`), on a kernel declared a throwaway; each counts as a
    /// violation of the run. Empty otherwise (elsewhere the executor refuses to start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_violations: Vec<String>,
    /// Process, thread and descriptor limits and whether the root is the mount namespace's
    /// root, as measured by the executor (`exec::executor::limits`); unmeasured in older reports.
    #[serde(default)]
    pub resources: crate::env::resources::Resources,
    /// Why the sandbox has no chroot tree (`/tmp/uf-chroot` with /proc bound inside), when it
    /// has none (gVisor 2022 cannot bind-mount /proc): cases that chroot into it are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_chroot_tree: Option<String>,
    /// A throwaway qemu guest started by the harness's own `/init`, where guest-only cases
    /// run (`env::guest`, docs/guest-only.md); `None` everywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<guest::GuestKernel>,
}

/// Room for more namespaces of one kind, measured by creating them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// How many were created before the kernel refused or the probe stopped.
    pub made: u32,
    /// The errno that stopped the probe; `None` when it stopped at its own cap (the room is at
    /// least `made`).
    pub stopped_by: Option<i32>,
}

impl Room {
    /// The kernel refused with ENOSPC: a depth or count limit was reached after `made`.
    pub fn limit_reached(&self) -> bool {
        // EUSERS: the depth limit's errno before Linux 4.9, and gVisor's.
        matches!(self.stopped_by, Some(libc::ENOSPC | libc::EUSERS))
    }

    /// The probe stopped short of its cap because of a limit (ENOSPC) or because it ran out of
    /// processes, fds or memory first (so a limit may be near): the count is within reach.
    /// A filter's or a missing type's errno (EPERM, EINVAL, ...) says nothing about counts.
    pub fn count_in_reach(&self) -> bool {
        matches!(
            self.stopped_by,
            Some(libc::ENOSPC | libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::EUSERS)
        )
    }
}

/// Deepest pid namespace level the kernel allows (`MAX_PID_NS_LEVEL`).
pub const PIDNS_MAX_LEVEL: u32 = 32;
/// Deepest user namespace (levels below the initial one) the kernel allows.
pub const USERNS_MAX_DEPTH: u32 = 33;

impl Headroom {
    /// The pid-namespace level and user-namespace depth the kernel's depth limits see: with
    /// room for `n` more nested namespaces the executor stands at `32 - n` (`33 - n`), exactly
    /// when the probe ended in the kernel's ENOSPC.
    ///
    /// A probe that stopped otherwise after `m` rounds still shows room for `m`: the level is
    /// then given as `32 - m` (`33 - m`), a bound ([`Headroom::pid_exact`] is false): what lies
    /// within the room is predicted, what would go past it is not.
    pub fn levels(&self) -> (Option<u32>, Option<u32>) {
        let pid = self.pid_nested.and_then(|r| PIDNS_MAX_LEVEL.checked_sub(r.made));
        let user = self.user_nested.and_then(|r| USERNS_MAX_DEPTH.checked_sub(r.made));
        (pid, user)
    }

    /// The pid-namespace level is exact: the nesting probe ended in the kernel's ENOSPC.
    pub fn pid_exact(&self) -> bool {
        self.pid_nested.is_some_and(|r| r.limit_reached())
    }

    /// The user-namespace depth is exact: the nesting probe ended in ENOSPC, and no count limit
    /// within reach could have stopped it first.
    pub fn user_exact(&self) -> bool {
        self.user_nested.is_some_and(|r| r.limit_reached()) && self.count_in_reach("user").is_none()
    }

    /// The measured room for namespaces of `kind` (a `max_<kind>_namespaces` name) when a count
    /// limit is within reach of the cases; `None` when it is not (or was not measured).
    pub fn count_in_reach(&self, kind: &str) -> Option<Room> {
        let room = if kind == "user" { self.user_count } else { self.flat.get(kind).copied() };
        room.filter(Room::count_in_reach)
    }
}

/// Measured room for more namespaces, from the executor's place (`exec::executor::headroom`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    /// Nested pid namespaces (`unshare(NEWPID)` + fork, repeated).
    pub pid_nested: Option<Room>,
    /// Nested user namespaces (`unshare(NEWUSER)` + id maps, repeated).
    pub user_nested: Option<Room>,
    /// User namespaces in all, several chains held at once, up to what two executors' cases
    /// could need; stopped short of that cap, a count limit is within reach.
    pub user_count: Option<Room>,
    /// Namespaces of one other type (`mnt`, `uts`, `ipc`, `net`, `cgroup`, `time`) held at
    /// once, up to `flat_cap`.
    pub flat: BTreeMap<String, Room>,
    /// The cap of the flat probes.
    pub flat_cap: u32,
}

/// Results of single calls made once from the executor's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallProbes {
    /// `unshare(1 << bit)` for every bit 0..63, as 0 or the errno; probed only where a seccomp
    /// filter or an LSM rule may restrict unshare.
    pub unshare_bits: Vec<(u8, i32)>,
    /// The errno of `clone3(NULL, 0)`: EINVAL where clone3 exists, ENOSYS where it is missing or
    /// filtered; `None` if not probed.
    pub clone3: Option<i32>,
    /// Contract facts that changed between Linux versions, tested once (`crate::env::facts`).
    #[serde(default)]
    pub facts: crate::env::facts::ProbedFacts,
    /// `unshare(0)` through the i386 entry (`int $0x80`) in a child: 0 where the entry works, an
    /// errno, or the negated signal that killed the child (SIGSEGV without IA32 emulation);
    /// `None` if not probed (older reports) or the child could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int80: Option<i32>,
}

impl CallProbes {
    /// Why unshare through `int $0x80` cannot be run here, if it cannot: the probe did not show
    /// a working entry.
    pub fn int80_missing(&self) -> Option<String> {
        match self.int80 {
            Some(0) => None,
            None => Some("the i386 entry (int $0x80) was not probed here".into()),
            Some(sig) if sig < 0 => Some(format!(
                "the i386 entry (int $0x80) is missing here: unshare(0) through it killed the probe with signal {} \
                 (no IA32 emulation, or ia32_emulation=0)",
                -sig
            )),
            Some(e) => Some(format!("unshare(0) through the i386 entry (int $0x80) failed here with errno {e}")),
        }
    }

    /// clone3 answered ENOSYS: this kernel (or its filter) has no clone3.
    pub fn clone3_missing(&self) -> bool {
        self.clone3 == Some(libc::ENOSYS)
    }
}

impl Environment {
    /// Full capability mask for this kernel (bits 0..=cap_last_cap).
    pub fn full_caps(&self) -> u64 {
        if self.cap_last_cap >= 63 { u64::MAX } else { (1u64 << (self.cap_last_cap + 1)) - 1 }
    }

    /// True if `/proc/self/ns/<link>` exists here.
    pub fn has_link(&self, link: NsLink) -> bool {
        self.ns_links.contains(&link)
    }

    /// The per-user-namespace limit for a namespace type, if readable.
    pub fn max_namespaces(&self, kind: &str) -> Option<u64> {
        self.max_namespaces.get(kind).copied()
    }
}

impl Environment {
    /// The machine of unshare-semantics.md: Linux 6.18 as root in the initial
    /// namespaces, every namespace type present, no limits reached, nothing
    /// filtering unshare. Used where no real probe exists (model-only fuzzing,
    /// unit tests).
    pub fn reference() -> Environment {
        Environment {
            kernel_release: "6.18.44".into(),
            host_uid: 0,
            sandbox: "reference (no real sandbox)".into(),
            sandbox_user_ns: false,
            baseline: reference_baseline(),
            cap_last_cap: 40,
            overflow_uid: 65534,
            overflow_gid: 65534,
            userns_depth: Some(0),
            pidns_level: Some(0),
            chrooted: false,
            nobody_mapped: true,
            kcmp: true,
            ns_links: NsLink::ALL.to_vec(),
            max_namespaces: ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
                .iter()
                .map(|k| (k.to_string(), 96_365))
                .collect(),
            seccomp_mode: 0,
            lsms: vec![],
            restrictions: vec![],
            ns_observer: crate::abi::ns::NsObserver::ProcLinks,
            pinned_cpu: None,
            headroom: reference_headroom(),
            call_probes: CallProbes {
                unshare_bits: Vec::new(),
                clone3: Some(libc::EINVAL),
                facts: Default::default(),
                int80: Some(0),
            },
            sandbox_violations: vec![],
            resources: crate::env::resources::Resources::default(),
            no_chroot_tree: None,
            guest: None,
        }
    }
}

/// The reference machine's baseline: root in the initial namespaces (made-up inodes).
fn reference_baseline() -> Snapshot {
    use crate::env::snapshot::NsValue;
    let mut ns = [NsValue::Inode(0); NsLink::COUNT];
    for (i, link) in NsLink::ALL.iter().enumerate() {
        ns[link.index()] = NsValue::Inode(4_026_531_834 + i as u64);
    }
    ns[NsLink::PidForChildren.index()] = ns[NsLink::Pid.index()];
    ns[NsLink::TimeForChildren.index()] = ns[NsLink::Time.index()];
    Snapshot {
        ns,
        pid: 1,
        uid: 0,
        gid: 0,
        euid: 0,
        egid: 0,
        cap_eff: 0x1ff_feff_ffff,
        threads: 1,
        threads_error: None,
        cwd: (0, 2),
        umask: 0o022,
        semval: None,
        siblings: Vec::new(),
        fd_flags: Vec::new(),
    }
}

/// The reference machine's headroom: every limit of Linux reachable, none reached.
fn reference_headroom() -> Headroom {
    Headroom {
        pid_nested: Some(Room { made: 32, stopped_by: Some(libc::ENOSPC) }),
        user_nested: Some(Room { made: 33, stopped_by: Some(libc::ENOSPC) }),
        user_count: Some(Room { made: 82, stopped_by: None }),
        flat: ["mnt", "uts", "ipc", "net", "cgroup", "time"]
            .iter()
            .map(|k| (k.to_string(), Room { made: 16, stopped_by: None }))
            .collect(),
        flat_cap: 16,
    }
}
