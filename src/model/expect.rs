//! The shapes of the model's expectations: per step and for the final
//! behavioural probes. Pure data, serialisable for reports.

#![deny(missing_docs)]

use serde::Serialize;

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::RawFlags;
use crate::abi::ns::NsLink;
use crate::case::Sibling;

/// kcmp types observed per sibling, in this order.
pub const KCMP_TYPES: [(&str, i32); 5] = [("files", 2), ("fs", 3), ("vm", 1), ("sighand", 4), ("sysvsem", 6)];
/// `KCMP_FILE`.
pub const KCMP_FILE: i32 = 0;

/// What one `/proc/self/ns` link does across a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkExpect {
    /// Same value as before.
    Unchanged,
    /// A namespace that did not exist before: an inode not alive before the step.
    Fresh,
    /// The link cannot be read, with this errno (pid_for_children after NEWPID).
    Unreadable(#[serde(serialize_with = "ser_display")] Errno),
    /// Equal to the value another link had before the step (time after fork is time_for_children).
    BeforeOf(NsLink),
    /// Equal to the value another link has after the step (pid_for_children of a new init is its pid ns).
    AfterOf(NsLink),
    /// Equal to the value another link had before the case's first step (a setns back into a
    /// namespace the case started in).
    AtCaseStart(NsLink),
}

fn ser_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Credentials after a step, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Creds {
    /// uid, euid.
    pub uid: u32,
    /// gid, egid.
    pub gid: u32,
    /// CapEff.
    pub cap_eff: u64,
}

/// getpid() across a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PidExpect {
    /// Same process.
    Unchanged,
    /// A new process (fork), not init of a new namespace.
    Changed,
    /// A new process that is pid 1 of a new pid namespace.
    One,
}

/// One kcmp result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KcmpExpect {
    /// The model says nothing about it.
    Unmodelled,
    /// 0: the same object.
    Same,
    /// 1 or 2: different objects.
    Different,
    /// kcmp fails with this errno (EPERM across user namespaces).
    Error(#[serde(serialize_with = "ser_display")] Errno),
}

/// The setup semaphore's value as read by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SemExpect {
    /// The setup made no semaphore.
    NoSemaphore,
    /// GETVAL returns this.
    Value(i32),
    /// GETVAL fails (EINVAL once the caller is in a new IPC namespace).
    Error(#[serde(serialize_with = "ser_display")] Errno),
}

/// What kcmp against one sibling should show after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiblingExpect {
    /// Its kind.
    pub kind: Sibling,
    /// Per type of [`KCMP_TYPES`].
    pub kcmp: [KcmpExpect; 5],
    /// `KCMP_FILE` of each setup fd against the sibling's same fd.
    pub fds: KcmpExpect,
}

/// Sharing facts before a step, for the invariants that only apply in some situations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SharingBefore {
    /// fd table shared.
    pub files: bool,
    /// fs_struct shared.
    pub fs: bool,
    /// mm shared with another process.
    pub mm: bool,
    /// sighand shared with another process.
    pub sighand: bool,
    /// Threads in the group.
    pub threads: u32,
    /// A semaphore adjustment pending in a private undo list.
    pub undo_private: bool,
    /// A semaphore adjustment pending in a shared undo list.
    pub undo_shared: bool,
}

/// What the model expects of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// For unshare steps, the flags after implications; 0 for other steps.
    pub effective_flags: RawFlags,
    /// Bits of `effective_flags` this kernel's unshare does not know (the profile's mask).
    pub unknown_bits: u64,
    /// Success or the errno.
    pub result: CallResult,
    /// Id of the rule that decided a failure, or `"success"`.
    pub rule: &'static str,
    /// Other failing rules that lost on precedence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_failing: Vec<&'static str>,
    /// What happens to each `/proc/self/ns` link.
    pub links: [LinkExpect; NsLink::COUNT],
    /// Credentials after the step.
    pub creds: Creds,
    /// getpid() across the step.
    pub pid: PidExpect,
    /// Thread count after the step.
    pub threads: u32,
    /// cwd may change (chroot steps); otherwise it must not.
    pub cwd_changes: bool,
    /// The caller keeps the same fs_struct object across the step, so kcmp(KCMP_FS) against
    /// every sibling keeps its value; false when it is copied (FS while shared; NEWNS since
    /// the 2026 unshare_fs fix) or the step forks.
    pub fs_struct_kept: bool,
    /// The semaphore's value as read by the caller after the step.
    pub semval: SemExpect,
    /// kcmp against each sibling after the step.
    pub siblings: Vec<SiblingExpect>,
    /// Sharing before the step.
    pub before: SharingBefore,
    /// The caller still reaches /proc after the step, so its namespace links, thread count and
    /// umask can be observed (false after UNSHARE_EMPTY_MNTNS).
    pub proc_visible: bool,
    /// A failed NEWNS call left the caller's root and cwd on the detached copy of the mount
    /// tree (kernels without the unshare_fs fix, spec §6 M12): the step changes nothing but
    /// that, and from then on the caller reaches no /proc and counts as chrooted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub root_detached: bool,
    /// For clone3 steps: the flags passed and what the child should show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone3: Option<Clone3Expect>,
    /// For the step a guest-only fail-nth setup arms (`case::guest`): what the model expects
    /// instead when the injected allocation failure makes the call fail (ENOMEM, nothing
    /// changed). The observation picks which of the two is judged (`check::fault`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_enomem: Option<Box<FaultAlternative>>,
    /// For thread_call steps whose thread started: what its own unshare should do
    /// (`model::caps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_call: Option<ThreadCallExpect>,
}

/// The other admissible outcome of a step under fail-nth: a failure by ENOMEM that leaves
/// everything as before, and the final probes that then follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultAlternative {
    /// The step, refused with ENOMEM (rule [`FAULT_RULE`]).
    pub step: Expected,
    /// The final probes after it.
    pub final_probe: FinalExpect,
}

/// The rule id of a call failed by an injected allocation failure.
pub const FAULT_RULE: &str = "fault-injected-enomem";

/// For the namespace types whose identity is also read by behaviour (`exec::child::markers`):
/// whether the caller's namespace after the last step is the one it had before the first
/// (`Some(true)`), a new one (`Some(false)`), or not predicted (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct KeptNamespaces {
    /// The mount namespace (`None` also when a chroot step changes what `/` is).
    pub mnt: Option<bool>,
    /// The IPC namespace.
    pub ipc: Option<bool>,
    /// The network namespace.
    pub net: Option<bool>,
    /// The UTS namespace.
    pub uts: Option<bool>,
}

/// What the behavioural probes at the end of a case should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct FinalExpect {
    /// With a FILES sibling: whether the fd table is still shared at the end.
    pub files_shared: Option<bool>,
    /// With a FILES sibling and a setup fd: whether closing our fd 0 closes the sibling's too.
    pub close_is_shared: Option<bool>,
    /// With an FS sibling: whether root/cwd/umask are still shared at the end.
    pub fs_shared: Option<bool>,
    /// With a semaphore and a sibling: its value as seen from the setup's IPC namespace.
    pub sem_value_outside: Option<i32>,
    /// Whether the caller ends in the namespaces it had before the first step.
    pub kept: KeptNamespaces,
    /// The probes can run (the caller still reaches /proc); set by the checker.
    #[serde(skip)]
    pub proc_visible: bool,
    /// Life inside the namespaces after the last step (`life-inside-namespaces`).
    #[serde(skip_serializing_if = "InsideExpect::is_empty")]
    pub inside: InsideExpect,
}

/// What the caller should see of life inside its namespaces after the last step
/// (`exec::child::inside`, judged by `check::inside`); `None` where nothing is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct InsideExpect {
    /// The caller keeps the IPC namespace that holds the executor's POSIX message queue (it
    /// stays visible exactly then).
    pub mq_kept: Option<bool>,
    /// The network devices the caller sees.
    pub devices: Option<DevicesExpect>,
    /// The caller keeps its cgroup namespace (its cgroup file reads as before), or has a new
    /// one rooted at its own cgroup (every line "/"). `None` when it cannot reach /proc.
    pub cgroup_kept: Option<bool>,
    /// The inside witness's exchange (`inside_witness` setups; `model::inside_witness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<super::inside_witness::WitnessExpect>,
}

impl InsideExpect {
    /// Nothing predicted.
    pub fn is_empty(&self) -> bool {
        *self == InsideExpect::default()
    }
}

/// The network devices after the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DevicesExpect {
    /// The caller's network namespace is the one it started in: the same devices, as many up.
    Kept,
    /// A new network namespace: as many devices as the sandbox's network namespace (itself made
    /// by unshare(NEWNET), nothing added: a loopback and the fallback tunnels of the loaded
    /// modules), none of them up, the loopback among them and down.
    Fresh,
}

/// How one of the child's namespace links relates to what the parent shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildLink {
    /// Equal to this link of the parent before the call.
    ParentBefore(NsLink),
    /// Equal to this link of the parent after the call (pid_for_children once it is readable).
    ParentAfter(NsLink),
    /// A namespace the parent never showed: an inode not seen in any of the parent's snapshots.
    Fresh,
    /// Equal to another of the child's own links.
    Child(NsLink),
}

/// The child's TID as it reads it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildTid {
    /// 1: the init of a new pid namespace.
    One,
    /// The value clone3 returned to the parent (same pid namespace).
    Returned,
}

/// What the child of a successful clone3 should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildExpect {
    /// Per link of [`NsLink::ALL`].
    pub links: [ChildLink; NsLink::COUNT],
    /// Its TID as it reads it.
    pub tid: ChildTid,
    /// Its ids and CapEff.
    pub creds: Creds,
    /// kcmp parent vs child for files, fs, vm, sighand, sysvsem; `None` when nobody can
    /// compare (a CLONE_VFORK child in another pid or user namespace than its parent).
    pub kcmp: Option<[KcmpExpect; 5]>,
    /// The caller reaps it with `waitpid(pid, 0)` (exit code 0); otherwise waitpid gives
    /// ECHILD (a thread, or a CLONE_PARENT sibling whose exit goes to the caller's parent).
    pub reaped_by_caller: bool,
    /// SIGCHLD reaches the caller; `None` when other threads of the caller may take it.
    pub sigchld: Option<bool>,
    /// A pidfd is stored (PIDFD).
    pub pidfd: bool,
    /// The TID is stored in the parent (PARENT_SETTID).
    pub parent_tid: bool,
    /// The pids a clone3_set_tid step asked for (`model::set_tid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_tid: Option<SetTidExpect>,
}

/// The pids of a successful clone3 with `set_tid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SetTidExpect {
    /// The child's own pid (TID) as it reads it: the innermost entry.
    pub own: i32,
    /// What clone3 returns: the entry for the caller's pid namespace, when the list reaches it.
    pub returned: Option<i32>,
}

/// The model's view of one clone3 step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clone3Expect {
    /// The flags passed (clone3 applies no implications).
    pub flags: RawFlags,
    /// The exit_signal passed (see `case::clone3_exit_signal`).
    pub exit_signal: u64,
    /// The child, when the call is predicted to succeed.
    pub child: Option<ChildExpect>,
    /// The call (successful or not) got as far as `copy_semundo` with CLONE_SYSVSEM while the
    /// caller had no undo list: the caller now has one, so kcmp SYSVSEM against a sibling
    /// without one changes even if the call failed.
    pub undo_list_made: bool,
}

/// What the thread of a thread_call step should see of its own unshare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadCallExpect {
    /// The flags after the implications.
    pub effective_flags: RawFlags,
    /// Its result.
    pub result: CallResult,
    /// The deciding rule.
    pub rule: &'static str,
    /// The thread's own `/proc/thread-self/ns` links across the call, against the main
    /// thread's before the step.
    pub links: [LinkExpect; NsLink::COUNT],
}
