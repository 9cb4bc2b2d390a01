//! The abstract state of the calling process that unshare's checks read
//! (unshare-semantics.md Appendix A, "state P"), built from the environment
//! and the setup, and carried from step to step.

#![deny(missing_docs)]

use crate::abi::ns::NsLink;
use crate::case::{NsType, Sibling};
use crate::env::Environment;

/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_CHROOT`.
pub const CAP_SYS_CHROOT: u32 = 18;
pub use super::setns_state::{SetnsOwner, SetnsState};
pub use crate::env::{PIDNS_MAX_LEVEL, USERNS_MAX_DEPTH};

/// What the caller shares with one sibling right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiblingState {
    /// How it was created.
    pub kind: Sibling,
    /// Same fd table.
    pub files: bool,
    /// Same fs_struct.
    pub fs: bool,
    /// Same mm.
    pub mm: bool,
    /// Same sighand struct.
    pub sighand: bool,
    /// Same (non-null) SysV undo list.
    pub undo: bool,
    /// kcmp against it is allowed (the caller is still in the sibling's user namespace).
    pub kcmp_allowed: bool,
    /// Its pid means something in the caller's active pid namespace (not after a fork into a
    /// new one, whose processes cannot see their ancestors' namespace).
    pub pid_visible: bool,
}

/// Where `pid_for_children` stands relative to the active pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidChildren {
    /// Same as the active pid namespace.
    Active,
    /// A new namespace from NEWPID whose init has not been forked yet.
    Pending,
    /// A new namespace whose init has already exited: fork fails with ENOMEM.
    Dead,
}

/// The caller's undo list for the setup's semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// No adjustment pending in the caller's list (or no list).
    None,
    /// A +1 adjustment pending in a list only the caller holds.
    Private,
    /// A +1 adjustment pending in a list shared with a CLONE_SYSVSEM sibling (or a blocked parent).
    Shared,
}

/// The setup's semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sem {
    /// The caller is still in the IPC namespace that holds it.
    pub caller_in_ns: bool,
    /// Its value as seen from that namespace.
    pub value: i32,
    /// The caller's undo state.
    pub undo: Undo,
}

/// What the model knows about the caller before a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerState {
    /// Threads in the thread group.
    pub threads: u32,
    /// The caller is a vfork child whose parent is blocked (the mm is shared with it).
    pub vfork_parent: bool,
    /// CAP_SYS_ADMIN in the caller's current user namespace.
    pub cap_sys_admin: bool,
    /// uid as it reads now.
    pub uid: u32,
    /// gid as it reads now.
    pub gid: u32,
    /// Effective capabilities as they read now.
    pub cap_eff: u64,
    /// euid and egid have mappings in the current user namespace.
    pub ids_mapped: bool,
    /// The current user namespace was made by a NEWUSER step and its maps are still unwritten.
    pub maps_writable: bool,
    /// Root is not the root of the mount namespace.
    pub chrooted: bool,
    /// Depth of the current user namespace below the initial one, if known.
    pub userns_depth: Option<u32>,
    /// Level of the active pid namespace, if known.
    pub pid_level: Option<u32>,
    /// pid_for_children relative to the active pid namespace.
    pub pid_children: PidChildren,
    /// The active pid namespace is owned by a user namespace that is not an ancestor of ours.
    pub pid_owner_foreign: bool,
    /// time_for_children differs from the active time namespace.
    pub time_pending: bool,
    /// Namespace types whose limit is 0 in the current user namespace or an ancestor.
    pub limits_zero: Vec<NsType>,
    /// Siblings, in setup order.
    pub siblings: Vec<SiblingState>,
    /// The setup's semaphore, if any.
    pub sem: Option<Sem>,
    /// Number of setup fds still open.
    pub fds: u8,
    /// The caller reaches /proc (false after a new, empty mount namespace, or after a failed
    /// NEWNS left its root detached with nothing mounted below it).
    pub proc_visible: bool,
    /// The caller's mount namespace is owned by its current user namespace. When it is not,
    /// a copy of it (NEWNS) locks every mount below the root (`lock_mnt_tree`), and a locked
    /// mount stays attached to a detached root (`disconnect_mount`).
    pub mnt_owned_by_userns: bool,
    /// The mounts of the caller's mount namespace are locked (MNT_LOCKED): it descends from a
    /// copy made for another user namespace. Copies keep the flag (`clone_mnt`). The sandbox
    /// mounts its own /proc and /tmp, which start unlocked.
    pub mounts_locked: bool,
    /// The calling thread has a SysV semaphore undo list (kcmp KCMP_SYSVSEM compares these
    /// pointers; a clone3 child without CLONE_SYSVSEM has none).
    pub undo_list: bool,
    /// The caller is the init of its pid namespace (CLONE_PARENT is refused from an init).
    pub is_init: bool,
    /// SIGCHLD is SIG_IGN in the caller's handler table: a CLONE_SIGHAND child that was the init
    /// of a pid namespace set it when it exited (zap_pid_ns_processes writes the shared table),
    /// so the caller's later children are reaped by the kernel. Kept across fork.
    pub sigchld_ignored: bool,
    /// Set when a step's result depends on a fact that cannot be known here (`model::limits`):
    /// the case is then skipped with this reason.
    pub unknowable: Option<String>,
    /// An exited CLONE_SIGHAND child of a clone3(PARENT) step is still a zombie, which the
    /// caller's parent has not reaped: `release_task` → `__exit_signal` → `__cleanup_sighand`
    /// has not run, so `sighand->count` still counts it and unshare(SIGHAND|VM) gives EINVAL
    /// (`check_unshare_flags`). Its mm was dropped at exit (`exit_mm`). A fork clears it (the
    /// new caller has its own table).
    pub sighand_held_by_zombie: bool,
    /// SIGCHLD is SIG_IGN in the caller's parent: a CLONE_PARENT child, which reports with the
    /// caller's own exit signal (SIGCHLD), is reaped at exit by `do_notify_parent` instead of
    /// staying a zombie. The executor and the setup's processes keep the default; after a fork
    /// step the parent is the previous caller, with its [`Self::sigchld_ignored`].
    pub parent_ignores_sigchld: bool,
    /// The fd table holds an fd whose table (rounded up to 64 slots) is larger than the lowered
    /// `fs.nr_open` of a guest-only setup (`case::guest`): every copy of it fails with EMFILE.
    pub fd_table_over_nr_open: bool,
    /// What the caps steps and NEWUSER record for later steps (`model::caps`).
    pub caps: super::caps_state::CapsState,
    /// What setns steps read: namespace owners and the pid-namespace depth (`model::setns`).
    pub setns: SetnsState,
    /// The current user namespace's maps and setgroups state (`model::idmap`).
    pub idmap: super::idmap_state::IdmapState,
}

impl CallerState {
    /// True if the fd table is shared with another process.
    pub fn files_shared(&self) -> bool {
        self.siblings.iter().any(|s| s.files)
    }
    /// True if the fs_struct is shared with another process.
    pub fn fs_shared(&self) -> bool {
        self.siblings.iter().any(|s| s.fs)
    }
    /// True if the mm is used by another process.
    pub fn mm_shared(&self) -> bool {
        self.vfork_parent || self.siblings.iter().any(|s| s.mm)
    }
    /// True if the sighand struct is shared with another process (a sibling, or a zombie that
    /// still holds it).
    pub fn sighand_shared_with_process(&self) -> bool {
        self.sighand_held_by_zombie || self.siblings.iter().any(|s| s.sighand)
    }
    /// True if the limit for `t` is 0 here (in this user namespace or an ancestor).
    pub fn limit_zero(&self, env: &Environment, t: NsType) -> bool {
        self.limits_zero.contains(&t) || env.max_namespaces(t.name()) == Some(0)
    }
    /// True if the caller has capability `cap` in its current user namespace.
    pub fn has_cap(&self, cap: u32) -> bool {
        self.cap_eff & (1u64 << cap) != 0
    }
}

/// The kernel has the namespace type of `link`: its `/proc/self/ns` link exists (and names
/// namespaces reliably), or the start-up headroom probe made one such namespace. A kernel may
/// implement a type without showing its link (gVisor 2022 has no `mnt`, `uts`, `ipc` links), and
/// a link that does not name namespaces reliably is left out of `ns_links`; on Linux a missing
/// link means the type is configured out, and the probe's unshare then fails with EINVAL.
pub fn ns_type_present(env: &Environment, link: NsLink) -> bool {
    if env.has_link(link) {
        return true;
    }
    let h = &env.headroom;
    let made = |r: Option<crate::env::Room>| r.is_some_and(|r| r.made > 0);
    match link {
        NsLink::User => made(h.user_nested),
        NsLink::Pid | NsLink::PidForChildren => made(h.pid_nested),
        NsLink::Mnt => made(h.flat.get("mnt").copied()),
        NsLink::Uts => made(h.flat.get("uts").copied()),
        NsLink::Ipc => made(h.flat.get("ipc").copied()),
        NsLink::Net => made(h.flat.get("net").copied()),
        NsLink::Cgroup => made(h.flat.get("cgroup").copied()),
        NsLink::Time | NsLink::TimeForChildren => made(h.flat.get("time").copied()),
    }
}
