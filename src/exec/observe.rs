//! What the executor saw: snapshots of the caller's state before and after
//! each step, and how the case's process ended. Pure data; the executor
//! fills it, the checker reads it.

use serde::{Deserialize, Serialize};

use crate::abi::errno::{CallResult, Errno};
// The state types every observation is made of live one layer down (the model starts from
// them too); re-exported so an observation reads as one vocabulary.
pub use crate::env::snapshot::{IntOrErrno, NsValue, SiblingView, Snapshot};

/// Who compared the clone3 child with its parent through kcmp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KcmpSide {
    /// The parent, while the child waited (every child but a CLONE_VFORK one).
    Parent,
    /// The CLONE_VFORK child itself, against the blocked parent.
    Child,
    /// Nobody: a CLONE_VFORK child in another pid or user namespace cannot name its parent.
    Nobody,
}

/// What a clone3 step saw of its child, from both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildObservation {
    /// clone3's return value in the caller: the child's pid (its TID with CLONE_THREAD).
    pub returned: i32,
    /// The child reported itself before exiting.
    pub reported: bool,
    /// The child's own view: `/proc/thread-self/ns/*`, `pid` = its gettid(), ids and CapEff
    /// (threads, cwd, umask and the rest are not read and stay zero).
    pub state: Snapshot,
    /// kcmp between parent and child for files, fs, vm, sighand, sysvsem, and who made it.
    pub kcmp: Option<[IntOrErrno; 5]>,
    /// Who compared.
    pub kcmp_side: KcmpSide,
    /// `waitpid(pid, 0)` by the caller: the child's exit code, or the errno (ECHILD when the
    /// child is not the caller's to reap: a thread, or a CLONE_PARENT sibling).
    pub wait: IntOrErrno,
    /// A SIGCHLD (blocked around the call) was pending for the caller afterwards.
    pub sigchld: bool,
    /// The kernel stored a pidfd at `clone_args.pidfd`.
    pub pidfd: bool,
    /// The kernel stored the child's TID at `clone_args.parent_tid`.
    pub parent_tid: bool,
}

/// One step as executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepObservation {
    /// What the call returned.
    pub result: CallResult,
    /// The state right after it.
    pub after: Snapshot,
    /// For a successful clone3 step: what was seen of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildObservation>,
}

/// The behavioural probes made after the last step (each `None` when not applicable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProbeObservation {
    /// A file the FILES sibling opened afterwards is visible to the caller (1) or not (0).
    pub sibling_fd_visible: Option<IntOrErrno>,
    /// A file the caller opened afterwards is visible to the FILES sibling (1) or not (0).
    pub caller_fd_visible: Option<IntOrErrno>,
    /// After the caller closed setup fd 0, the FILES sibling's fd 0 is still open (1) or not (0).
    pub closed_fd_open_in_sibling: Option<IntOrErrno>,
    /// The FS sibling's chdir moved the caller's cwd (1) or not (0).
    pub fs_cwd_followed: Option<IntOrErrno>,
    /// The FS sibling's umask changed the caller's umask (1) or not (0).
    pub fs_umask_followed: Option<IntOrErrno>,
    /// The semaphore's value read by a sibling in the setup's IPC namespace.
    pub sem_value_outside: Option<IntOrErrno>,
    /// The executor's network marker (an abstract unix socket) was reachable (1) or not (0)
    /// before the first step and after the last (`exec::child::markers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_marker: Option<[IntOrErrno; 2]>,
    /// The executor's IPC marker (a SysV shared memory segment) existed (1) or not (0) before
    /// the first step and after the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_marker: Option<[IntOrErrno; 2]>,
    /// The mount id of `/` after the last step is the one before the first (1) or not (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnt_root_kept: Option<IntOrErrno>,
    /// The caller set its hostname to the UTS marker after the last step (1, or the errno),
    /// and the executor then found the marker as its own hostname (1) or not (0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts_marker: Option<[IntOrErrno; 2]>,
    /// Life inside the namespaces (`exec::child::inside`), when the child reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside: Option<InsideObservation>,
    /// The inside witness's exchange (`exec::child::inside_witness`), when the setup asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inside_witness: Option<WitnessObservation>,
}

/// What the caller and the inside witness saw of each other after the last step
/// (`exec::child::inside_witness`; slots of `record::inside_witness_probe`): 1 yes, 0 no, a
/// number of seconds, an errno, or `None` when there was nothing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WitnessObservation {
    /// The witness was forked before the first step.
    pub forked: Option<IntOrErrno>,
    /// The caller's sethostname (1 set and read back, 0 reported done but not there).
    pub uts_caller_set: Option<IntOrErrno>,
    /// The witness then read the caller's hostname as its own.
    pub uts_witness_sees: Option<IntOrErrno>,
    /// The witness's sethostname (1 set and read back, 0 reported done but not there).
    pub uts_witness_set: Option<IntOrErrno>,
    /// The caller then read the witness's hostname as its own.
    pub uts_caller_sees: Option<IntOrErrno>,
    /// The caller's tmpfs mount (1 there, 0 reported done but not there).
    pub mnt_caller: Option<IntOrErrno>,
    /// The witness then saw a mount on the directory.
    pub mnt_witness_sees: Option<IntOrErrno>,
    /// The witness's user namespace has setgroups "deny".
    pub setgroups_witness: Option<IntOrErrno>,
    /// The caller's user namespace has setgroups "deny".
    pub setgroups_caller: Option<IntOrErrno>,
    /// Opening `/proc/self/timens_offsets` for writing.
    pub time_open: Option<IntOrErrno>,
    /// Writing the offsets.
    pub time_write: Option<IntOrErrno>,
    /// The witness's CLOCK_MONOTONIC lies between two readings of the caller's.
    pub time_caller_same: Option<IntOrErrno>,
    /// Whole seconds a child forked after the write reads CLOCK_MONOTONIC ahead of the caller.
    pub time_child_monotonic: Option<IntOrErrno>,
    /// The same for CLOCK_BOOTTIME.
    pub time_child_boottime: Option<IntOrErrno>,
    /// `shared_mount`: the caller's tmpfs on its directory of the shared tmpfs (1 there, 0
    /// reported done but not there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_caller: Option<IntOrErrno>,
    /// `shared_mount`: the witness then saw a mount on the caller's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_witness_sees: Option<IntOrErrno>,
    /// `shared_mount`: the witness's tmpfs on its own directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_witness: Option<IntOrErrno>,
    /// `shared_mount`: the caller then saw a mount on the witness's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_caller_sees: Option<IntOrErrno>,
}

/// What the caller saw of life inside its namespaces, before its first step and after its last
/// (`exec::child::inside`); each reading 1 yes, 0 no, a count, an errno, or `None` when there
/// was nothing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InsideObservation {
    /// The executor's POSIX message queue existed (1) or not (0), before and after.
    pub mq_marker: Option<[IntOrErrno; 2]>,
    /// Network devices of the caller's network namespace, before and after.
    pub devices: Option<[IntOrErrno; 2]>,
    /// Of those, devices up, before and after.
    pub devices_up: Option<[IntOrErrno; 2]>,
    /// After the last step: the loopback is down (1), up (0), missing (2).
    pub loopback_down: Option<IntOrErrno>,
    /// After the last step, every line of `/proc/thread-self/cgroup` names "/" (1) or not (0).
    pub cgroup_at_root: Option<IntOrErrno>,
    /// After the last step, `/proc/thread-self/cgroup` reads as before the first (1) or not (0).
    pub cgroup_same: Option<IntOrErrno>,
}

/// The part of a case that ran: the state after setup and each step executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// State after the setup, right before the first step.
    pub before: Snapshot,
    /// Steps in order; fewer than the case's steps if the process died midway.
    pub steps: Vec<StepObservation>,
    /// The final behavioural probes, if the case got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeObservation>,
}

/// How a case's process ended, with whatever it had reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// All steps ran and were reported.
    Completed {
        /// What was seen.
        trace: Trace,
    },
    /// A setup operation failed before the first step.
    SetupFailed {
        /// Which operation (`"setuid(65534)"`, `"write uid_map"`, ...).
        op: String,
        /// Its errno.
        errno: Errno,
    },
    /// The watchdog killed the process group after the timeout.
    Timeout {
        /// The timeout that ran out, in milliseconds.
        timeout_ms: u64,
        /// What was reported before that.
        partial: Option<Trace>,
    },
    /// The process died by a signal.
    Crash {
        /// The signal number.
        signal: i32,
        /// What was reported before that.
        partial: Option<Trace>,
    },
    /// The harness itself failed (bad record, exit without report, ...).
    Broken {
        /// What went wrong.
        reason: String,
    },
}

impl Outcome {
    /// True if at least one step reached the system call.
    pub fn reached_syscall(&self) -> bool {
        match self {
            Outcome::Completed { trace } => !trace.steps.is_empty(),
            Outcome::Timeout { partial, .. } | Outcome::Crash { partial, .. } => {
                partial.as_ref().is_some_and(|t| !t.steps.is_empty())
            }
            Outcome::SetupFailed { .. } | Outcome::Broken { .. } => false,
        }
    }

    /// Short name of the outcome kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::SetupFailed { .. } => "setup-failed",
            Outcome::Timeout { .. } => "timeout",
            Outcome::Crash { .. } => "crash",
            Outcome::Broken { .. } => "broken",
        }
    }
}
