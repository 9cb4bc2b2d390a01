//! The fixed-size messages a case child writes to its pipe, one per event
//! (setup failed, state before the first step, each step, done). Each is
//! smaller than `PIPE_BUF`, so a write is atomic, and each is self-contained,
//! so whatever the child managed to report survives its death.

use crate::abi::errno::{CallResult, Errno};
use crate::abi::ns::NsLink;

const MAGIC: u32 = 0x5546_5a31; // "UFZ1"

/// Siblings a snapshot has room for.
pub const SIBS: usize = 3;
/// Setup fds a snapshot has room for.
pub const FDS: usize = 3;
/// Probe results a message has room for.
pub const PROBES: usize = 12;
/// "Not applicable" in kcmp, fd-flag, semaphore and probe slots.
pub const NONE: i32 = i32::MIN;
/// Set in [`RawSnapshot::threads`] when the count could not be read; the low bits hold the
/// errno (a real count never comes near this bit).
pub const THREADS_ERR: u32 = 1 << 31;

/// Timestamps a `Done` message carries (see [`clock`]).
pub const CLOCKS: usize = 4;

/// Slots of `clock` in a [`MsgKind::Done`] message: CLOCK_MONOTONIC nanoseconds taken by
/// the case child, for the phase timeline of `bench`.
pub mod clock {
    /// First instruction of the child after fork.
    pub const START: usize = 0;
    /// Setup built.
    pub const SETUP: usize = 1;
    /// The state before the first step observed and sent.
    pub const BEFORE: usize = 2;
    /// Steps, their observations and the probes done; about to exit.
    pub const END: usize = 3;
}

/// Bytes per message.
pub const MSG_LEN: usize = 4 + 4 + 4 + 4 + 8 + SNAP_LEN + 4 * PROBES + 8 * CLOCKS;
const SNAP_LEN: usize =
    8 * NsLink::COUNT + 4 * NsLink::COUNT + 4 + 4 * 4 + 8 + 4 + 8 + 8 + 4 + 4 + 4 * SIBS * 5 + 4 * SIBS * FDS + 4 * FDS;

/// What a message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgKind {
    /// A setup operation failed (`op`, `errno`); nothing follows but `Done`.
    SetupFailed = 1,
    /// The state after the setup.
    Before = 2,
    /// One step: `rc`, `errno` and the state after it.
    Step = 3,
    /// The child reached its end.
    Done = 4,
    /// Results of the behavioural probes after the last step.
    Probe = 5,
    /// What a clone3 step saw of its child (sent right before that step's `Step` message):
    /// `rc` the returned pid, `snap` the child's own view, `snap.kcmp[0]` parent-vs-child kcmp,
    /// `probe` the [`child_probe`] slots.
    Child = 6,
    /// Written by the executor after the case ended, not by the case: what it saw from outside
    /// (the [`outside_probe`] slots).
    Outside = 7,
    /// Life inside the caller's namespaces after the last step (`exec::child::inside`): the
    /// [`inside_probe`] slots.
    Inside = 8,
}

/// Slots of `probe` in a [`MsgKind::Probe`] message, beyond the six sharing probes (0 to 5,
/// in the order of [`crate::exec::observe::ProbeObservation`]'s fields): the namespace markers of
/// `exec::child::markers`, read before the first step and after the last.
pub mod marker_probe {
    /// The network marker before the first step: reachable 1, not 0, or -errno.
    pub const NET_BEFORE: usize = 6;
    /// The network marker after the last step.
    pub const NET_AFTER: usize = 7;
    /// The IPC marker before the first step: exists 1, not 0, or -errno.
    pub const IPC_BEFORE: usize = 8;
    /// The IPC marker after the last step.
    pub const IPC_AFTER: usize = 9;
    /// The root's mount id after the last step is the one before the first (1), or not (0), or -errno.
    pub const MNT_KEPT: usize = 10;
    /// The caller set its hostname to the UTS marker after the last step (1), or -errno.
    pub const UTS_WRITTEN: usize = 11;
}

/// Slots of `probe` in a [`MsgKind::Outside`] message.
pub mod outside_probe {
    /// The executor, after the case, found the UTS marker as its own hostname (1) or not (0).
    pub const UTS_SEEN: usize = 0;
}

/// Slots of `probe` in a [`MsgKind::Inside`] message (`exec::child::inside`): each 1 yes,
/// 0 no, a count, -errno when unread, or [`NONE`] without the marker.
pub mod inside_probe {
    /// The executor's POSIX message queue exists here, before the first step.
    pub const MQ_BEFORE: usize = 0;
    /// The same after the last step.
    pub const MQ_AFTER: usize = 1;
    /// Network devices before the first step.
    pub const DEVS_BEFORE: usize = 2;
    /// Network devices after the last step.
    pub const DEVS_AFTER: usize = 3;
    /// Devices up, before the first step.
    pub const UP_BEFORE: usize = 4;
    /// Devices up, after the last step.
    pub const UP_AFTER: usize = 5;
    /// After the last step: the loopback device exists and is down (1), exists and is up (0),
    /// is missing (2).
    pub const LO_AFTER: usize = 6;
    /// After the last step, the caller sits at the root of its cgroup namespace.
    pub const CG_ROOT_AFTER: usize = 7;
    /// After the last step, `/proc/thread-self/cgroup` reads as before the first step.
    pub const CG_SAME: usize = 8;
}

/// Slots of `probe` in a [`MsgKind::Child`] message.
pub mod child_probe {
    /// `waitpid(pid, 0)`: exit code (>= 0) or -errno.
    pub const WAIT: usize = 0;
    /// SIGCHLD pending afterwards (1/0).
    pub const SIGCHLD: usize = 1;
    /// A pidfd was stored (1/0).
    pub const PIDFD: usize = 2;
    /// The child's TID was stored at parent_tid (1/0).
    pub const PARENT_TID: usize = 3;
    /// The child's report arrived (1/0).
    pub const REPORTED: usize = 4;
    /// Who made the kcmp comparisons: 1 parent, 2 child, 0 nobody.
    pub const KCMP_SIDE: usize = 5;
}

/// A setup operation, named in `SetupFailed` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SetupOp {
    /// `setpgid(0, 0)`
    Setpgid = 1,
    /// `prctl(PR_SET_PDEATHSIG)`
    Pdeathsig = 2,
    /// `capget`
    Capget = 3,
    /// `capset` without CAP_SYS_ADMIN
    CapsetDropSysAdmin = 4,
    /// `setgroups(0, NULL)`
    Setgroups = 5,
    /// `setresgid(65534)`
    SetgidNobody = 6,
    /// `setresuid(65534)`
    SetuidNobody = 7,
    /// `prctl(PR_SET_DUMPABLE, 1)`
    Dumpable = 8,
    /// `unshare(NEWUSER)` of the user-ns setup
    UnshareUserNs = 9,
    /// writing `/proc/self/setgroups`
    WriteSetgroups = 10,
    /// writing `/proc/self/uid_map`
    WriteUidMap = 11,
    /// writing `/proc/self/gid_map`
    WriteGidMap = 12,
    /// `pthread_create`
    PthreadCreate = 13,
    /// unshare(NEWPID) + fork of the pid-ns nesting
    PidNesting = 14,
    /// unshare(NEWUSER) + maps of the user-ns nesting
    UserNesting = 15,
    /// writing max_*_namespaces
    WriteLimit = 16,
    /// building the foreign pid namespace (helper, setns, fork)
    ForeignPidns = 17,
    /// chroot + chdir
    Chroot = 18,
    /// opening the setup fds
    OpenFds = 19,
    /// semget + semop(SEM_UNDO)
    Semaphore = 20,
    /// chdir + umask
    CwdUmask = 21,
    /// clone of a sibling
    Sibling = 22,
    /// clone(CLONE_VM|CLONE_VFORK)
    Vfork = 23,
    /// the setup asks for more nesting than possible from the executor's position
    Plan = 24,
    /// pipes and stack for a clone3 step
    Clone3Prep = 25,
    /// dup3 of a setup fd to fd 100
    HighFd = 26,
    /// the SysV shared memory segments (and the IPC namespace of `rmid-forced`)
    Shm = 27,
    /// the private mount namespace with an nsfs bind mount
    NsfsBind = 28,
    /// moving an fd to the setup's fd_at (guest-only cases)
    FdAt = 29,
    /// writing /proc/sys/fs/nr_open (guest-only cases)
    NrOpen = 30,
    /// opening or writing /proc/thread-self/fail-nth (guest-only cases)
    FailNth = 31,
    /// the private mount namespace with a shared tmpfs (`shared_mount`)
    SharedMount = 32,
}

impl SetupOp {
    /// Human name.
    pub fn describe(code: u32) -> &'static str {
        match code {
            1 => "setpgid(0, 0)",
            2 => "prctl(PR_SET_PDEATHSIG)",
            3 => "capget",
            4 => "capset without CAP_SYS_ADMIN",
            5 => "setgroups(0, NULL)",
            6 => "setresgid(65534)",
            7 => "setresuid(65534)",
            8 => "prctl(PR_SET_DUMPABLE, 1)",
            9 => "unshare(NEWUSER) for the user-ns setup",
            10 => "write /proc/self/setgroups",
            11 => "write /proc/self/uid_map",
            12 => "write /proc/self/gid_map",
            13 => "pthread_create",
            14 => "unshare(NEWPID) + fork (pid-ns nesting)",
            15 => "unshare(NEWUSER) + id maps (user-ns nesting)",
            16 => "write /proc/sys/user/max_*_namespaces",
            17 => "foreign pid namespace (helper, setns, fork)",
            18 => "chroot",
            19 => "open the setup fds",
            20 => "semget + semop(SEM_UNDO)",
            21 => "chdir(/proc) + umask(077)",
            22 => "clone of a sibling",
            23 => "clone(CLONE_VM|CLONE_VFORK)",
            24 => "plan the nesting from the executor's position",
            25 => "pipes and stack for a clone3 step",
            26 => "dup3 of a setup fd to fd 100",
            27 => "SysV shm segments (shmget, shmat, IPC_RMID; unshare(NEWIPC) + shm_rmid_forced=1)",
            28 => "private mount namespace with an nsfs bind mount (unshare(NEWNS), setns, mount MS_BIND)",
            29 => "move an fd to the setup's fd_at",
            30 => "write /proc/sys/fs/nr_open",
            31 => "open or write /proc/thread-self/fail-nth",
            32 => "private mount namespace with a shared tmpfs (unshare(NEWNS), mount tmpfs, mkdir, MS_SHARED)",
            _ => "unknown setup operation",
        }
    }
}

/// The raw form of a [`Snapshot`](crate::exec::observe::Snapshot), filled without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSnapshot {
    /// Inode per link (0 if `ns_err` is set).
    pub ns_ino: [u64; NsLink::COUNT],
    /// errno per link (0 if readable).
    pub ns_err: [i32; NsLink::COUNT],
    /// getpid().
    pub pid: i32,
    /// uid, gid, euid, egid.
    pub ids: [u32; 4],
    /// CapEff.
    pub cap_eff: u64,
    /// Thread count, or [`THREADS_ERR`] | errno when it could not be read.
    pub threads: u32,
    /// `stat(".")`: device and inode of the cwd.
    pub cwd: [u64; 2],
    /// `Umask:` of /proc/self/status.
    pub umask: u32,
    /// GETVAL of the setup semaphore, or -errno, or [`NONE`].
    pub semval: i32,
    /// kcmp against each sibling for the types of `model::expect::KCMP_TYPES` (-errno on error).
    pub kcmp: [[i32; 5]; SIBS],
    /// KCMP_FILE of each setup fd against the same fd of each sibling.
    pub kcmp_file: [[i32; FDS]; SIBS],
    /// F_GETFD of each setup fd (-errno once closed).
    pub fd_flags: [i32; FDS],
}

impl RawSnapshot {
    /// Nothing observed yet: zeros, and [`NONE`] in the optional slots.
    pub const EMPTY: RawSnapshot = RawSnapshot {
        ns_ino: [0; NsLink::COUNT],
        ns_err: [0; NsLink::COUNT],
        pid: 0,
        ids: [0; 4],
        cap_eff: 0,
        threads: 0,
        cwd: [0; 2],
        umask: 0,
        semval: NONE,
        kcmp: [[NONE; 5]; SIBS],
        kcmp_file: [[NONE; FDS]; SIBS],
        fd_flags: [NONE; FDS],
    };
}

impl Default for RawSnapshot {
    fn default() -> Self {
        RawSnapshot::EMPTY
    }
}

/// One message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// What it reports.
    pub kind: MsgKind,
    /// Setup op code (SetupFailed) or step index (Step).
    pub op: u32,
    /// errno (SetupFailed, or a failed Step).
    pub errno: i32,
    /// Raw return value (Step).
    pub rc: i64,
    /// State (Before, Step).
    pub snap: RawSnapshot,
    /// Probe results (Probe), [`NONE`] where not applicable.
    pub probe: [i32; PROBES],
    /// Timestamps (Done), see [`clock`]; 0 where not taken.
    pub clock: [u64; CLOCKS],
}

struct Writer<'a> {
    buf: &'a mut [u8; MSG_LEN],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

struct Reader<'a> {
    buf: &'a [u8; MSG_LEN],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
}

impl Msg {
    /// A message with an empty snapshot.
    pub const fn new(kind: MsgKind) -> Msg {
        Msg { kind, op: 0, errno: 0, rc: 0, snap: RawSnapshot::EMPTY, probe: [NONE; PROBES], clock: [0; CLOCKS] }
    }

    /// Little-endian wire form.
    pub fn encode(&self, buf: &mut [u8; MSG_LEN]) {
        let mut w = Writer { buf, at: 0 };
        w.put(&MAGIC.to_le_bytes());
        w.put(&(self.kind as u32).to_le_bytes());
        w.put(&self.op.to_le_bytes());
        w.put(&self.errno.to_le_bytes());
        w.put(&self.rc.to_le_bytes());
        for v in self.snap.ns_ino {
            w.put(&v.to_le_bytes());
        }
        for v in self.snap.ns_err {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.snap.pid.to_le_bytes());
        for v in self.snap.ids {
            w.put(&v.to_le_bytes());
        }
        w.put(&self.snap.cap_eff.to_le_bytes());
        w.put(&self.snap.threads.to_le_bytes());
        w.put(&self.snap.cwd[0].to_le_bytes());
        w.put(&self.snap.cwd[1].to_le_bytes());
        w.put(&self.snap.umask.to_le_bytes());
        w.put(&self.snap.semval.to_le_bytes());
        for row in self.snap.kcmp {
            for v in row {
                w.put(&v.to_le_bytes());
            }
        }
        for row in self.snap.kcmp_file {
            for v in row {
                w.put(&v.to_le_bytes());
            }
        }
        for v in self.snap.fd_flags {
            w.put(&v.to_le_bytes());
        }
        for v in self.probe {
            w.put(&v.to_le_bytes());
        }
        for v in self.clock {
            w.put(&v.to_le_bytes());
        }
    }

    /// Parses the wire form; `None` if the magic or the kind is wrong.
    pub fn decode(buf: &[u8; MSG_LEN]) -> Option<Msg> {
        let mut r = Reader { buf, at: 0 };
        if r.u32() != MAGIC {
            return None;
        }
        let kind = match r.u32() {
            1 => MsgKind::SetupFailed,
            2 => MsgKind::Before,
            3 => MsgKind::Step,
            4 => MsgKind::Done,
            5 => MsgKind::Probe,
            6 => MsgKind::Child,
            7 => MsgKind::Outside,
            8 => MsgKind::Inside,
            _ => return None,
        };
        let op = r.u32();
        let errno = r.i32();
        let rc = r.i64();
        let mut snap = Msg::new(MsgKind::Done).snap;
        for v in snap.ns_ino.iter_mut() {
            *v = r.u64();
        }
        for v in snap.ns_err.iter_mut() {
            *v = r.i32();
        }
        snap.pid = r.i32();
        for v in snap.ids.iter_mut() {
            *v = r.u32();
        }
        snap.cap_eff = r.u64();
        snap.threads = r.u32();
        snap.cwd = [r.u64(), r.u64()];
        snap.umask = r.u32();
        snap.semval = r.i32();
        for row in snap.kcmp.iter_mut() {
            for v in row.iter_mut() {
                *v = r.i32();
            }
        }
        for row in snap.kcmp_file.iter_mut() {
            for v in row.iter_mut() {
                *v = r.i32();
            }
        }
        for v in snap.fd_flags.iter_mut() {
            *v = r.i32();
        }
        let mut probe = [NONE; PROBES];
        for v in probe.iter_mut() {
            *v = r.i32();
        }
        let mut clock = [0u64; CLOCKS];
        for v in clock.iter_mut() {
            *v = r.u64();
        }
        Some(Msg { kind, op, errno, rc, snap, probe, clock })
    }

    /// The decoded form of a [`MsgKind::Child`] message.
    pub fn child_observation(&self) -> crate::exec::observe::ChildObservation {
        use crate::exec::observe::{ChildObservation, IntOrErrno, KcmpSide};
        let p = |slot: usize| self.probe[slot];
        let int = |v: i32| if v < 0 { IntOrErrno::Error(Errno(-v)) } else { IntOrErrno::Value(v) };
        let kcmp_side = match p(child_probe::KCMP_SIDE) {
            1 => KcmpSide::Parent,
            2 => KcmpSide::Child,
            _ => KcmpSide::Nobody,
        };
        let row = self.snap.kcmp[0];
        let kcmp = (kcmp_side != KcmpSide::Nobody).then(|| row.map(int));
        let mut own = self.snap;
        own.kcmp = [[NONE; 5]; SIBS];
        ChildObservation {
            returned: self.rc as i32,
            reported: p(child_probe::REPORTED) == 1,
            state: own.to_snapshot(),
            kcmp,
            kcmp_side,
            wait: int(p(child_probe::WAIT)),
            sigchld: p(child_probe::SIGCHLD) == 1,
            pidfd: p(child_probe::PIDFD) == 1,
            parent_tid: p(child_probe::PARENT_TID) == 1,
        }
    }

    /// The call result of a Step message.
    pub fn call_result(&self) -> CallResult {
        if self.rc < 0 { CallResult::Failure(Errno(self.errno)) } else { CallResult::Success }
    }
}

#[cfg(test)]
mod tests;
