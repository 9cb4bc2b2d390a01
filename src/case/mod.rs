//! `Case`: the single value that is generated, stored, replayed, reported and
//! turned into reproducers: a setup of the calling process and a short
//! sequence of steps.

pub mod caps;
pub mod guest;
pub mod idmap;
pub mod inside;
pub mod set_tid;
pub mod setns;
pub mod setup;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use caps::CapsOp;
pub use set_tid::SetTidStep;
pub use setns::{SetnsStep, SetnsTarget};
pub use setup::{Chroot, HIGH_FD, NsType, Privilege, Setup, Shm, Sibling};

use crate::abi::flags::RawFlags;

/// Most steps a case may hold.
pub const MAX_STEPS: usize = 4;
/// Most extra threads a setup may start.
pub const MAX_THREADS: u8 = 2;

/// One action of the sequence, run in order by the case's current process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// `syscall(SYS_unshare, flags)` with the full 64-bit word.
    Unshare(RawFlags),
    /// `fork()`, then continue in the child (the parent waits for it): the child is pid 1
    /// of a pid namespace made by an earlier NEWPID.
    Fork,
    /// `fork()` a child that exits at once, and reap it (after NEWPID: the new namespace's
    /// init dies).
    ForkExit,
    /// Write `deny` to setgroups and the maps `0 <ids before the last NEWUSER> 1`.
    WriteMaps,
    /// Remove CAP_SYS_ADMIN from the effective, permitted and inheritable sets.
    DropSysAdmin,
    /// `chroot` (and `chdir("/")`).
    Chroot(Chroot),
    /// `pthread_create` a thread that blocks until the case ends.
    SpawnThread,
    /// `syscall(SYS_clone3, &clone_args, 88)` with these flags; the child observes itself,
    /// reports and exits, and the caller (the parent) continues the case. exit_signal is
    /// SIGCHLD, or 0 with THREAD or PARENT (as clone3 requires); see docs/clone3.md.
    Clone3(RawFlags),
    /// `unshare` through the i386 compat entry, `int $0x80` from this 64-bit process (x86-64
    /// only). Its flag word is 32 bits wide: the kernel sees only the low 32 bits of these flags
    /// ([`Step::unshare_word`]).
    UnshareInt80(RawFlags),
    /// A capability or credential change short of CAP_SYS_ADMIN (issue 16 class 5; see
    /// [`CapsOp`]).
    Caps(CapsOp),
    /// A new thread (`pthread_create`) calls `syscall(SYS_unshare, flags)` while the main
    /// thread and any others are alive, reports its result and what it sees of itself
    /// (`/proc/thread-self`), and then stays parked until the case ends; the main thread waits
    /// for its report and continues the case (issue 16 class 5).
    ThreadCall(RawFlags),
    /// `setns(fd, nstype)` on a namespace file or pidfd ([`SetnsStep`], issue 16 class 4).
    Setns(SetnsStep),
    /// A clone3 step that asks for chosen pids through `clone_args.set_tid` ([`SetTidStep`],
    /// issue 16 class 4); otherwise as [`Step::Clone3`].
    Clone3SetTid(SetTidStep),
    /// One write of the caller's own uid_map, gid_map or setgroups ([`idmap::IdmapOp`], issue
    /// 16 class 3).
    Idmap(idmap::IdmapOp),
    /// The same write done by the inside witness (setup field `inside_witness`), a process
    /// that stays in the user namespace the setup left: the parent of the caller's namespace
    /// after one NEWUSER step ("what writing uid_map/gid_map allows" to a parent, issue 16
    /// class 3). The witness opens `uid_map`, `gid_map` or `setgroups` in the caller's
    /// `/proc/self` directory (opened by the caller before the first step) and writes the lines
    /// relative to its own effective ids.
    WitnessIdmap(idmap::IdmapOp),
}

impl Step {
    /// The flag word the kernel receives from an unshare step: the whole word through the
    /// 64-bit entry, its low 32 bits (zero-extended) through `int $0x80`. `None` for every
    /// other kind of step.
    pub fn unshare_word(&self) -> Option<RawFlags> {
        match self {
            Step::Unshare(f) => Some(*f),
            Step::UnshareInt80(f) => Some(RawFlags(f.0 & u64::from(u32::MAX))),
            _ => None,
        }
    }

    /// An unshare call, through either entry.
    pub fn is_unshare(&self) -> bool {
        self.unshare_word().is_some()
    }

    /// The flag word of a clone3 call, with or without `set_tid`; `None` for every other step.
    pub fn clone3_flags(&self) -> Option<RawFlags> {
        match self {
            Step::Clone3(f) => Some(*f),
            Step::Clone3SetTid(s) => Some(s.flags),
            _ => None,
        }
    }
}

/// A setup and 1..=4 steps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// How the calling process is prepared before the first step.
    #[serde(default)]
    pub setup: Setup,
    /// What it then does.
    pub steps: Vec<Step>,
}

/// A case that cannot be run as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// No steps, or more than [`MAX_STEPS`].
    #[error("a case needs 1 to {MAX_STEPS} steps, this one has {0}")]
    StepCount(usize),
    /// More threads than [`MAX_THREADS`].
    #[error("setup asks for {0} extra threads; at most {MAX_THREADS} are supported")]
    Threads(u8),
    /// A step that cannot come where it stands.
    #[error("step {index} ({step}) cannot run here: {why}")]
    StepOrder {
        /// Its position in the steps, from 0.
        index: usize,
        /// The step.
        step: String,
        /// Why not, and what to do.
        why: &'static str,
    },
    /// A setup value out of range.
    #[error("setup field {field} is {value}; {expected}")]
    Setup {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
}

impl Case {
    /// Whether a step asks the caller to leave a namespace of a type in `ns_bits`: an unshare
    /// (through either entry) whose flag word has one of these bits, or any setns step. No other
    /// step moves the caller itself (a clone3 step's child is another process). The case child reads life
    /// inside a namespace type only for such a case (`exec::child::inside`), and the model
    /// predicts those readings only then, so both take it from here.
    pub fn asks_to_leave(&self, ns_bits: u64) -> bool {
        self.steps.iter().any(|step| match step {
            Step::Unshare(_) | Step::UnshareInt80(_) => step.unshare_word().is_some_and(|w| w.0 & ns_bits != 0),
            Step::Fork
            | Step::ForkExit
            | Step::WriteMaps
            | Step::DropSysAdmin
            | Step::Chroot(_)
            | Step::SpawnThread
            | Step::Clone3(_)
            | Step::Clone3SetTid(_)
            | Step::Caps(_) => false,
            // A thread_call's unshare moves its own thread, never the main thread that reads.
            Step::ThreadCall(_) => false,
            // A setns may join another namespace of several types (through a pidfd): read all.
            Step::Setns(_) => true,
            Step::Idmap(_) | Step::WitnessIdmap(_) => false,
        })
    }

    /// A case of plain unshare steps with the default setup.
    pub fn unshare(flags: &[u64]) -> Case {
        Case { setup: Setup::default(), steps: flags.iter().map(|f| Step::Unshare(RawFlags(*f))).collect() }
    }

    /// Checks the limits the executor relies on.
    ///
    /// # Errors
    /// [`CaseError`] naming the limit that is exceeded.
    pub fn validate(&self) -> Result<(), CaseError> {
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(CaseError::StepCount(self.steps.len()));
        }
        let s = &self.setup;
        if s.threads > MAX_THREADS {
            return Err(CaseError::Threads(s.threads));
        }
        let bad = |field, value: String, expected| Err(CaseError::Setup { field, value, expected });
        if s.siblings.len() > setup::MAX_SIBLINGS {
            return bad("siblings", s.siblings.len().to_string(), "at most 3 siblings");
        }
        if s.fds > setup::MAX_FDS {
            return bad("fds", s.fds.to_string(), "at most 3 extra fds");
        }
        if let Some(d) = s.userns_depth.filter(|d| *d > setup::MAX_USERNS_DEPTH) {
            return bad("userns_depth", d.to_string(), "at most 33 (the kernel's limit)");
        }
        if let Some(l) = s.pidns_level.filter(|l| *l > setup::MAX_PIDNS_LEVEL) {
            return bad("pidns_level", l.to_string(), "at most 32 (the kernel's limit)");
        }
        if s.shared_mount && !s.inside_witness {
            return bad(
                "shared_mount",
                "true".into(),
                "shared_mount only with inside_witness: true (the witness looks for the caller's mount)",
            );
        }
        self.validate_witness_idmap()?;
        guest::validate(self)
    }

    /// A `witness_idmap` step needs the witness, and writes into the `/proc/self` directory
    /// the case child opened before the first step: after a `fork` step the caller is another
    /// process.
    fn validate_witness_idmap(&self) -> Result<(), CaseError> {
        let Some(at) = self.steps.iter().position(|s| matches!(s, Step::WitnessIdmap(_))) else { return Ok(()) };
        if !self.setup.inside_witness {
            return Err(CaseError::Setup {
                field: "inside_witness",
                value: "false".into(),
                expected: "inside_witness: true with a witness_idmap step (the witness writes the map)",
            });
        }
        if self.steps[..at].contains(&Step::Fork) {
            return Err(CaseError::StepOrder {
                index: at,
                step: self.steps[at].to_string(),
                why: "a fork step comes before it, and the witness writes the maps of the process that forked \
                      the witness, not of the fork's child: put the witness_idmap step before the fork or drop it",
            });
        }
        Ok(())
    }
}

/// The `exit_signal` a clone3 step passes: 0 with THREAD or PARENT (clone3_args_valid refuses
/// anything else with them; the kernel then uses -1 for a thread and the caller's own exit
/// signal for a sibling), else SIGCHLD.
pub fn clone3_exit_signal(flags: RawFlags) -> u64 {
    use crate::abi::flags::bits;
    if flags.intersects(bits::THREAD | bits::PARENT) { 0 } else { libc::SIGCHLD as u64 }
}

/// The `clone_args.cgroup` a clone3 step passes: a number that is never an open fd, so
/// CLONE_INTO_CGROUP reaches `cgroup_can_fork` and fails there with EBADF (the harness never
/// moves processes between cgroups).
pub const CLONE3_CGROUP_FD: u64 = i32::MAX as u64;

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Unshare(flags) => write!(f, "unshare({flags})"),
            Step::Fork => f.write_str("fork, continue in the child"),
            Step::ForkExit => f.write_str("fork a child that exits"),
            Step::WriteMaps => f.write_str("write uid/gid maps"),
            Step::DropSysAdmin => f.write_str("drop CAP_SYS_ADMIN"),
            Step::Chroot(Chroot::Subdir) => f.write_str("chroot(subdir)"),
            Step::Chroot(Chroot::Root) => f.write_str("chroot(\"/\")"),
            Step::SpawnThread => f.write_str("pthread_create"),
            Step::Clone3(flags) => write!(f, "clone3({flags})"),
            Step::UnshareInt80(flags) => write!(f, "unshare({flags}) via int 0x80"),
            Step::Caps(op) => write!(f, "caps {op}"),
            Step::ThreadCall(flags) => write!(f, "unshare({flags}) in a new thread"),
            Step::Setns(s) => write!(f, "{s}"),
            Step::Clone3SetTid(s) => write!(f, "{s}"),
            Step::Idmap(op) => write!(f, "{op}"),
            Step::WitnessIdmap(op) => write!(f, "witness: {op}"),
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.setup)?;
        for step in &self.steps {
            write!(f, " {step};")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_witness_idmap_step_needs_the_witness_and_no_fork_before_it() {
        let write = Step::WitnessIdmap(idmap::IdmapOp::UidOwn);
        let mut case = Case { setup: Setup::default(), steps: vec![write] };
        assert!(matches!(case.validate(), Err(CaseError::Setup { field: "inside_witness", .. })));
        case.setup.inside_witness = true;
        assert_eq!(case.validate(), Ok(()));
        case.steps = vec![Step::ForkExit, write, Step::Fork];
        assert_eq!(case.validate(), Ok(()), "a fork after it, or a fork_exit, is fine");
        case.steps = vec![Step::Fork, write];
        let e = case.validate().unwrap_err();
        assert!(matches!(e, CaseError::StepOrder { index: 1, .. }), "{e:?}");
        assert!(e.to_string().contains("step 1 (witness: write uid_map own)"), "{e}");
    }

    #[test]
    fn json_form_is_readable_and_strict() {
        let case = Case::unshare(&[0x2_0000 | 0x1_0000_0000]);
        let json = serde_json::to_string(&case).unwrap();
        assert_eq!(json, r#"{"setup":{"privilege":"root","threads":0},"steps":[{"unshare":"NEWNS|0x100000000"}]}"#);
        assert_eq!(serde_json::from_str::<Case>(&json).unwrap(), case);
        let unknown = r#"{"setup":{"privilege":"root","threads":0,"colour":1},"steps":[{"unshare":"0"}]}"#;
        let e = serde_json::from_str::<Case>(unknown).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn clone3_steps_read_and_print_like_unshare_steps() {
        let json = r#"{"steps":[{"clone3":"NEWNS|FILES"},{"unshare":"NEWNS"}]}"#;
        let case: Case = serde_json::from_str(json).unwrap();
        assert_eq!(case.steps[0], Step::Clone3(RawFlags(0x2_0400)));
        assert_eq!(case.to_string(), "[root] clone3(FILES|NEWNS); unshare(NEWNS);");
        let back = serde_json::to_string(&case).unwrap();
        assert!(back.contains(r#"{"clone3":"FILES|NEWNS"}"#), "{back}");
    }

    #[test]
    fn the_i386_entry_passes_the_low_32_bits() {
        let json = r#"{"steps":[{"unshare_int80":"NEWUTS|0x100000000"}]}"#;
        let case: Case = serde_json::from_str(json).unwrap();
        assert_eq!(case.steps[0], Step::UnshareInt80(RawFlags(0x1_0400_0000)));
        assert_eq!(case.steps[0].unshare_word(), Some(RawFlags(0x400_0000)));
        assert_eq!(Step::Unshare(RawFlags(0x1_0400_0000)).unshare_word(), Some(RawFlags(0x1_0400_0000)));
        assert_eq!(Step::Fork.unshare_word(), None);
        assert_eq!(case.to_string(), "[root] unshare(NEWUTS|0x100000000) via int 0x80;");
    }

    #[test]
    fn validate_names_the_limit() {
        assert_eq!(Case::unshare(&[]).validate(), Err(CaseError::StepCount(0)));
        assert_eq!(Case::unshare(&[0; 5]).validate(), Err(CaseError::StepCount(5)));
        let mut c = Case::unshare(&[0]);
        c.setup.threads = 3;
        assert_eq!(c.validate(), Err(CaseError::Threads(3)));
    }

    #[test]
    fn display_is_one_line() {
        let mut c = Case::unshare(&[0x2000_0000, 0]);
        c.setup.threads = 1;
        c.setup.privilege = Privilege::Nobody;
        assert_eq!(c.to_string(), "[nobody, 1 extra thread] unshare(NEWPID); unshare(0);");
    }
}
