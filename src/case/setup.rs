//! `Setup`: how the case's process is prepared before its first step:
//! privilege, placement (namespace nesting, chroot, per-user-ns limits, a
//! foreign pid namespace), shared resources, siblings that share parts of the
//! process with it, extra threads, and whether it runs as a vfork child.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most siblings a setup may create.
pub const MAX_SIBLINGS: usize = 3;
/// Most extra fds a setup may open.
pub const MAX_FDS: u8 = 3;
/// Deepest user namespace a setup may ask for (the kernel allows 33 levels).
pub const MAX_USERNS_DEPTH: u8 = 33;
/// Deepest pid namespace level a setup may ask for (the kernel allows 32).
pub const MAX_PIDNS_LEVEL: u8 = 32;

/// Who the calling process is when the steps start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Privilege {
    /// The executor's own credentials: uid 0 with every capability it has.
    #[default]
    Root,
    /// uid 0 with CAP_SYS_ADMIN removed from the effective, permitted and inheritable sets.
    RootWithoutSysAdmin,
    /// uid/gid 65534 with no capabilities (needs 65534 mapped in the current user namespace).
    Nobody,
    /// In a fresh user namespace created by the setup, uid/gid maps `0 <outer id> 1` written:
    /// root there with a full capability set.
    UserNs,
}

impl Privilege {
    /// All values, for generators and tables.
    pub const ALL: [Privilege; 4] =
        [Privilege::Root, Privilege::RootWithoutSysAdmin, Privilege::Nobody, Privilege::UserNs];

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

/// A process created with raw `clone` before the steps, sharing part of the caller,
/// blocked (answering probe commands) until the case ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sibling {
    /// `clone(CLONE_FILES)`: shares the fd table.
    Files,
    /// `clone(CLONE_FS)`: shares root, cwd and umask.
    Fs,
    /// `clone(CLONE_VM)`: shares the address space.
    Vm,
    /// `clone(CLONE_VM|CLONE_SIGHAND)`: shares the address space and the signal handlers.
    VmSighand,
    /// `clone(CLONE_SYSVSEM)`: shares the SysV semaphore undo list.
    Sysvsem,
}

impl Sibling {
    /// All kinds.
    pub const ALL: [Sibling; 5] = [Sibling::Files, Sibling::Fs, Sibling::Vm, Sibling::VmSighand, Sibling::Sysvsem];

    /// The clone flags that create it (without the exit signal).
    pub fn clone_flags(self) -> u64 {
        use crate::abi::flags::bits;
        match self {
            Sibling::Files => bits::FILES,
            Sibling::Fs => bits::FS,
            Sibling::Vm => bits::VM,
            Sibling::VmSighand => bits::VM | bits::SIGHAND,
            Sibling::Sysvsem => bits::SYSVSEM,
        }
    }

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Sibling::Files => "files",
            Sibling::Fs => "fs",
            Sibling::Vm => "vm",
            Sibling::VmSighand => "vm-sighand",
            Sibling::Sysvsem => "sysvsem",
        }
    }
}

/// A chroot made by the setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chroot {
    /// `chroot` into a prepared subdirectory (with /proc bound inside): the caller is chrooted.
    Subdir,
    /// `chroot("/")`, which does not count as chrooted.
    Root,
}

/// A namespace type whose per-user-namespace limit (`/proc/sys/user/max_<type>_namespaces`)
/// the setup sets to 0 inside a private user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NsType {
    /// user
    User,
    /// mnt
    Mnt,
    /// uts
    Uts,
    /// ipc
    Ipc,
    /// pid
    Pid,
    /// cgroup
    Cgroup,
    /// net
    Net,
    /// time
    Time,
}

impl NsType {
    /// All types.
    pub const ALL: [NsType; 8] =
        [NsType::User, NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Pid, NsType::Cgroup, NsType::Net, NsType::Time];

    /// The short name used in `max_<name>_namespaces`.
    pub fn name(self) -> &'static str {
        match self {
            NsType::User => "user",
            NsType::Mnt => "mnt",
            NsType::Uts => "uts",
            NsType::Ipc => "ipc",
            NsType::Pid => "pid",
            NsType::Cgroup => "cgroup",
            NsType::Net => "net",
            NsType::Time => "time",
        }
    }

    /// The unshare flag that creates one.
    pub fn flag(self) -> u64 {
        use crate::abi::flags::bits;
        match self {
            NsType::User => bits::NEWUSER,
            NsType::Mnt => bits::NEWNS,
            NsType::Uts => bits::NEWUTS,
            NsType::Ipc => bits::NEWIPC,
            NsType::Pid => bits::NEWPID,
            NsType::Cgroup => bits::NEWCGROUP,
            NsType::Net => bits::NEWNET,
            NsType::Time => bits::NEWTIME,
        }
    }
}

/// SysV shared memory segments the setup creates (their creator is the caller, so they are on
/// its list that `unshare(CLONE_NEWIPC)` walks, `exit_shm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shm {
    /// One segment in the caller's IPC namespace, attached and marked for removal (it goes
    /// when its last attach does); `kernel.shm_rmid_forced` as it is there.
    Attached,
    /// A new IPC namespace of the setup's own with `kernel.shm_rmid_forced = 1` (a sysctl of
    /// that namespace only), and two segments in it: one attached and marked for removal, one
    /// unattached.
    RmidForced,
}

impl Shm {
    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Shm::Attached => "attached",
            Shm::RmidForced => "rmid-forced",
        }
    }
}

/// The descriptor number [`Setup::high_fd`] duplicates a setup fd to: above the 64 slots of
/// the fd table a process starts with, so the table grows (to 128 slots).
pub const HIGH_FD: i32 = 100;

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The process state built before the first step. Built in this order:
/// pid-ns nesting, user-ns nesting, the zero limit, the foreign pid ns, chroot,
/// resources (fds, semaphore, cwd/umask), privilege, siblings, threads, vfork. The fields added
/// for kernel coverage fit in that order: `nsfs_bind` first of all (before the pid-ns
/// nesting), then after the fds `high_fd` and `shm` (before the semaphore, which so lives in the
/// IPC namespace `rmid-forced` makes), `sem_clamp` with the semaphore.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// Who the caller is.
    #[serde(default)]
    pub privilege: Privilege,
    /// Extra threads (0..=2), blocked until the case ends.
    #[serde(default)]
    pub threads: u8,
    /// Reach this absolute pid-namespace level first (unshare(NEWPID) + fork, continuing in
    /// the child, level by level); the initial namespace is level 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidns_level: Option<u8>,
    /// Reach this absolute user-namespace depth (unshare(NEWUSER) + maps `0 <outer> 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_depth: Option<u8>,
    /// Enter a private user namespace and set this type's `max_*_namespaces` to 0 there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_zero: Option<NsType>,
    /// setns into a pid namespace owned by a child user namespace, then fork and continue
    /// in the child (spec §3 EINVAL (f)).
    #[serde(default, skip_serializing_if = "is_default")]
    pub foreign_pidns: bool,
    /// chroot before the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroot: Option<Chroot>,
    /// Extra fds (0..=3) opened on /dev/null; odd-numbered ones get FD_CLOEXEC.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fds: u8,
    /// A SysV semaphore with a pending SEM_UNDO adjustment of +1.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sem_undo: bool,
    /// cwd `/proc` and umask 077 instead of `/` and the inherited umask.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cwd_umask: bool,
    /// Siblings created with raw clone (0..=3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub siblings: Vec<Sibling>,
    /// Run the steps in a `clone(CLONE_VM|CLONE_VFORK)` child whose parent stays blocked.
    #[serde(default, skip_serializing_if = "is_default")]
    pub vfork: bool,
    /// One more descriptor on `/` at number [`HIGH_FD`] (dup3), which grows the fd table past
    /// its 64 embedded slots.
    #[serde(default, skip_serializing_if = "is_default")]
    pub high_fd: bool,
    /// SysV shared memory segments created by the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm: Option<Shm>,
    /// With `sem_undo`: after the SEM_UNDO +1, a -1 without SEM_UNDO, so the semaphore is 0
    /// and the pending adjustment -1 would make it negative (exit_sem clamps it to 0).
    #[serde(default, skip_serializing_if = "is_default")]
    pub sem_clamp: bool,
    /// First of all, a private mount namespace of the case's own (a copy of the sandbox's, in
    /// the executor's user namespace) with a newer mount namespace's nsfs file bind-mounted
    /// on `/tmp/uf-nsfs` (a file of the sandbox's /tmp): a copy of it skips that mount (copy_tree, copy_mnt_ns).
    #[serde(default, skip_serializing_if = "is_default")]
    pub nsfs_bind: bool,
    /// An fd (on `/`) moved to this number before `nr_open` is lowered (issue 16 class 1);
    /// 3..=4095. See `case::guest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_at: Option<u32>,
    /// Guest-only: write this to the global `fs.nr_open` after `fd_at` is open (a multiple
    /// of 64, at least 64). Runs only in a throwaway qemu guest (`case::guest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nr_open: Option<u32>,
    /// Guest-only: write this to `/proc/thread-self/fail-nth` right before the last step (an
    /// unshare), so that the N-th fault-injection site on its path fails (issue 16 class 2).
    /// Runs only in a throwaway qemu guest whose kernel has fault injection (`case::guest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_nth: Option<u32>,
    /// Life inside the new namespaces, seen from outside (issue 16 class 3, `case::inside`):
    /// fork a witness before the first step, which stays where the setup left the caller; after
    /// the last step the caller sets a hostname, the witness another, the caller mounts a tmpfs
    /// and writes time namespace offsets, and each side reads what it sees of the other.
    #[serde(default, skip_serializing_if = "is_default")]
    pub inside_witness: bool,
    /// With `inside_witness` (issue 16 class 3, mount propagation): first of all, before
    /// `nsfs_bind`, a private mount namespace of the case's own (a copy of the sandbox's, in the
    /// executor's user namespace) with a shared tmpfs on `/tmp/uf-inside-shared`. After the
    /// last step the caller mounts a tmpfs on its `caller` directory, the witness one on its
    /// `witness` directory, and each looks for the other's: peers see both, a slave copy (made
    /// by NEWNS under another user namespace) only the witness's.
    #[serde(default, skip_serializing_if = "is_default")]
    pub shared_mount: bool,
}

impl Setup {
    /// A setup with only a privilege.
    pub fn with_privilege(privilege: Privilege) -> Setup {
        Setup { privilege, ..Setup::default() }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.privilege.name())?;
        match self.threads {
            0 => {}
            1 => f.write_str(", 1 extra thread")?,
            n => write!(f, ", {n} extra threads")?,
        }
        if let Some(l) = self.pidns_level {
            write!(f, ", pid-ns level {l}")?;
        }
        if let Some(d) = self.userns_depth {
            write!(f, ", user-ns depth {d}")?;
        }
        if let Some(t) = self.limit_zero {
            write!(f, ", max_{}_namespaces=0", t.name())?;
        }
        if self.foreign_pidns {
            f.write_str(", in a foreign pid ns")?;
        }
        match self.chroot {
            Some(Chroot::Subdir) => f.write_str(", chrooted")?,
            Some(Chroot::Root) => f.write_str(", chroot(\"/\")")?,
            None => {}
        }
        if self.fds > 0 {
            write!(f, ", {} fds", self.fds)?;
        }
        if self.sem_undo {
            f.write_str(", semaphore with SEM_UNDO")?;
        }
        if self.cwd_umask {
            f.write_str(", cwd /proc umask 077")?;
        }
        for s in &self.siblings {
            write!(f, ", {} sibling", s.name())?;
        }
        if self.vfork {
            f.write_str(", as a vfork child")?;
        }
        if self.high_fd {
            write!(f, ", fd {HIGH_FD}")?;
        }
        if let Some(k) = self.shm {
            write!(f, ", shm {}", k.name())?;
        }
        if self.sem_clamp {
            f.write_str(", semaphore decremented without SEM_UNDO")?;
        }
        if self.nsfs_bind {
            f.write_str(", nsfs bind mount")?;
        }
        super::guest::fmt_guest_fields(self, f)?;
        if self.inside_witness {
            f.write_str(", inside witness")?;
        }
        if self.shared_mount {
            f.write_str(", shared mount")?;
        }
        Ok(())
    }
}
