//! `Environment`: the facts about the machine and the executor's sandbox that
//! the model needs and every report shows first. Probed once, by the
//! executor, inside its sandbox (see `exec::probe`). Pure data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ns::NsLink;
use crate::observe::Snapshot;

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
    pub ns_observer: crate::ns::NsObserver,
    /// The CPU the executor (and so every case child) is pinned to, if any
    /// (`exec::placement`).
    #[serde(default)]
    pub pinned_cpu: Option<u32>,
    /// Process, thread and descriptor limits and whether the root is the mount namespace's
    /// root, as measured by the executor (`exec::limits`); unmeasured in older reports.
    #[serde(default)]
    pub resources: crate::resources::Resources,
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
        use crate::observe::NsValue;
        let mut ns = [NsValue::Inode(0); NsLink::COUNT];
        for (i, link) in NsLink::ALL.iter().enumerate() {
            ns[link.index()] = NsValue::Inode(4_026_531_834 + i as u64);
        }
        ns[NsLink::PidForChildren.index()] = ns[NsLink::Pid.index()];
        ns[NsLink::TimeForChildren.index()] = ns[NsLink::Time.index()];
        Environment {
            kernel_release: "6.18.44".into(),
            host_uid: 0,
            sandbox: "reference (no real sandbox)".into(),
            sandbox_user_ns: false,
            baseline: Snapshot {
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
            },
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
            ns_observer: crate::ns::NsObserver::ProcLinks,
            pinned_cpu: None,
            resources: crate::resources::Resources::default(),
        }
    }
}
