//! The weights shared by the proptest strategies and the `arbitrary` impls,
//! following syzkaller's recipe for flag words: mostly subsets of the valid
//! bits, sometimes 0, sometimes a neighbouring (invalid) bit added, about 1
//! in 100 a fully random u64.

use crate::abi::flags::{CLONE3_VALID_MASK, FLAGS, UNSHARE_VALID_MASK};

/// Out of 100: a subset of the valid bits.
pub const FLAGS_SUBSET: u32 = 78;
/// Out of 100: a wide word, the full valid mask minus up to [`WIDE_MAX_DROPPED`] bits. Subsets
/// of at most [`SUBSET_MAX_DRAWS`] draws never reach 7 or more valid bits (all namespaces,
/// all flags: spec §5.1); `unshare-fuzz selftest`'s `all-namespaces-enomem` showed the gap.
pub const FLAGS_WIDE: u32 = 2;
/// Most valid bits a wide word leaves out.
pub const WIDE_MAX_DROPPED: usize = 3;
/// Out of 100: the word 0.
pub const FLAGS_ZERO: u32 = 5;
/// Out of 100: a subset plus one invalid bit next to a valid one (or a known clone-only bit).
pub const FLAGS_NEIGHBOUR: u32 = 14;
/// Out of 100 neighbour words: the invalid bit alone, with no valid bit (spec §5.1 single
/// bits; `unshare-fuzz selftest`'s `lone-unknown-bits-succeed` showed the gap).
pub const NEIGHBOUR_ALONE: u32 = 25;
/// Out of 100: any u64, bits 32..63 included.
pub const FLAGS_RANDOM: u32 = 1;

/// How many valid bits a subset draws (with repetition): 1..=this.
pub const SUBSET_MAX_DRAWS: usize = 6;

/// Out of 100: how many draws a subset makes, 1..=[`SUBSET_MAX_DRAWS`]. One draw in three
/// gives a single flag, the words of the spec's sharing matrix (§5.2); with uniform counts
/// they were 1% of all words and `unshare-fuzz selftest`'s `fs-noop` (a lie about exactly
/// FS) needed up to 1656 cases.
pub const SUBSET_DRAW_WEIGHTS: [u32; SUBSET_MAX_DRAWS] = [34, 18, 12, 12, 12, 12];

/// Maps a roll in 0..100 to a number of draws with [`SUBSET_DRAW_WEIGHTS`].
pub fn subset_draws(roll: u32) -> usize {
    let mut r = roll;
    for (i, w) in SUBSET_DRAW_WEIGHTS.iter().enumerate() {
        if r < *w {
            return i + 1;
        }
        r -= w;
    }
    SUBSET_MAX_DRAWS
}

/// Invalid bits worth trying: CSIGNAL bits, neighbours of valid bits, clone3-only bits,
/// the future UNSHARE_EMPTY_MNTNS bit (20), and the top bit.
pub const INTERESTING_INVALID_BITS: &[u32] = &[0, 1, 4, 6, 12, 13, 14, 15, 19, 20, 24, 31, 32, 33, 34, 63];

/// Out of 100 for the number of extra threads 0, 1, 2.
pub const THREAD_WEIGHTS: [u32; 3] = [70, 20, 10];

/// The single valid bits, in table order.
pub fn valid_bits() -> Vec<u64> {
    FLAGS.iter().map(|f| f.bit).filter(|b| b & UNSHARE_VALID_MASK != 0).collect()
}

/// The single bits clone3 accepts, in table order.
pub fn clone3_valid_bits() -> Vec<u64> {
    FLAGS.iter().map(|f| f.bit).filter(|b| b & CLONE3_VALID_MASK != 0).collect()
}

/// The namespace bits, in table order (what a differential pair asks both calls for).
pub fn namespace_bits() -> Vec<u64> {
    FLAGS.iter().filter(|f| f.kind == crate::abi::flags::FlagKind::Namespace).map(|f| f.bit).collect()
}

/// Out of 100 cases: a differential pair, `clone3(F | extra)` and `unshare(F)` with the same
/// non-empty set F of namespace bits (clone3-and-unshare-agree-on-namespaces needs both).
pub const DIFFERENTIAL_PAIR: u32 = 25;
/// Out of 100 pairs: the clone3 step comes first (the caller is then unchanged when it
/// unshares, so both calls start from the same state).
pub const PAIR_CLONE3_FIRST: u32 = 70;
/// How many namespace bits a pair draws (with repetition): 1..=this.
pub const PAIR_MAX_DRAWS: usize = 3;
/// Out of 100 pairs: one of [`PAIR_EXTRAS`] is added to the clone3 side.
pub const PAIR_EXTRA: u32 = 35;
/// Sharing bits a pair may add to its clone3 side (never FS: with NEWNS or NEWUSER that is
/// EINVAL, which would only lose the pair).
pub const PAIR_EXTRAS: &[u64] = &[
    crate::abi::flags::bits::FILES,
    crate::abi::flags::bits::SYSVSEM,
    crate::abi::flags::bits::VM,
    crate::abi::flags::bits::VFORK | crate::abi::flags::bits::VM,
    crate::abi::flags::bits::PIDFD,
    crate::abi::flags::bits::PARENT,
    crate::abi::flags::bits::IO,
];

/// clone3 flag words, out of 100, in the same spirit as unshare's but over clone3's own
/// valid bits, plus shapes that make THREAD, VFORK and the pointer flags succeed.
pub mod clone3 {
    use crate::abi::flags::bits::*;

    /// A subset of clone3's valid bits.
    pub const SUBSET: u32 = 55;
    /// One of [`SHAPES`] with some namespace bits.
    pub const SHAPED: u32 = 25;
    /// The word 0.
    pub const ZERO: u32 = 5;
    /// A subset plus one bit clone3 refuses.
    pub const NEIGHBOUR: u32 = 14;
    /// Any u64.
    pub const RANDOM: u32 = 1;
    /// Bits clone3 refuses: CSIGNAL bits, DETACHED, unassigned bits, the top bit.
    pub const INVALID_BITS: &[u32] = &[0, 1, 4, 6, 22, 34, 35, 40, 63];
    /// Words that succeed on their own (a thread, a vfork, siblings, the pointer flags).
    pub const SHAPES: &[u64] = &[
        THREAD | SIGHAND | VM,
        THREAD | SIGHAND | VM | SETTLS | CHILD_SETTID | CHILD_CLEARTID | PARENT_SETTID,
        THREAD | SIGHAND | VM | PIDFD | FILES | FS,
        VFORK | VM,
        VFORK,
        VM | SIGHAND,
        VM | SIGHAND | CLEAR_SIGHAND,
        PARENT,
        PIDFD | PARENT_SETTID | CHILD_SETTID,
        FILES | FS | SYSVSEM | IO,
        PTRACE | UNTRACED,
    ];
    /// How many namespace bits a shape draws (with repetition): 0..=this.
    pub const SHAPE_MAX_NS_DRAWS: usize = 2;
}

/// Which kind of flag word a roll in 0..100 selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagClass {
    /// A subset of valid bits.
    Subset,
    /// The valid mask minus a few bits.
    Wide,
    /// Zero.
    Zero,
    /// Subset plus an interesting invalid bit.
    Neighbour,
    /// Fully random.
    Random,
}

/// Maps a roll in 0..100 to a class with the weights above.
pub fn flag_class(roll: u32) -> FlagClass {
    if roll < FLAGS_SUBSET {
        FlagClass::Subset
    } else if roll < FLAGS_SUBSET + FLAGS_WIDE {
        FlagClass::Wide
    } else if roll < FLAGS_SUBSET + FLAGS_WIDE + FLAGS_ZERO {
        FlagClass::Zero
    } else if roll < FLAGS_SUBSET + FLAGS_WIDE + FLAGS_ZERO + FLAGS_NEIGHBOUR {
        FlagClass::Neighbour
    } else {
        FlagClass::Random
    }
}

/// Maps a roll in 0..100 to a thread count with [`THREAD_WEIGHTS`].
pub fn thread_count(roll: u32) -> u8 {
    if roll < THREAD_WEIGHTS[0] {
        0
    } else if roll < THREAD_WEIGHTS[0] + THREAD_WEIGHTS[1] {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_bits_are_invalid() {
        assert_eq!(FLAGS_SUBSET + FLAGS_WIDE + FLAGS_ZERO + FLAGS_NEIGHBOUR + FLAGS_RANDOM, 100);
        const { assert!(NEIGHBOUR_ALONE <= 100) };
        assert_eq!(THREAD_WEIGHTS.iter().sum::<u32>(), 100);
        assert_eq!(SUBSET_DRAW_WEIGHTS.iter().sum::<u32>(), 100);
        let draws: Vec<usize> = (0..100).map(subset_draws).collect();
        for (i, w) in SUBSET_DRAW_WEIGHTS.iter().enumerate() {
            assert_eq!(draws.iter().filter(|d| **d == i + 1).count(), *w as usize, "{} draws", i + 1);
        }
        assert_eq!(valid_bits().len(), 14);
        for b in INTERESTING_INVALID_BITS {
            assert_eq!((1u64 << b) & UNSHARE_VALID_MASK, 0, "bit {b}");
        }
        use steps::*;
        assert_eq!(
            UNSHARE
                + CLONE3
                + FORK
                + FORK_EXIT
                + WRITE_MAPS
                + DROP_SYS_ADMIN
                + CHROOT
                + SPAWN_THREAD
                + UNSHARE_INT80
                + CAPS
                + THREAD_CALL,
            100
        );
        assert_eq!(CAPS_OP_WEIGHTS.iter().sum::<u32>(), CAPS_OP_TOTAL);
        let ops: Vec<crate::case::CapsOp> = (0..CAPS_OP_TOTAL).map(caps_op).collect();
        for (op, w) in crate::case::CapsOp::ALL.iter().zip(CAPS_OP_WEIGHTS) {
            assert_eq!(ops.iter().filter(|o| *o == op).count(), w as usize, "{op}");
        }
        use clone3::*;
        assert_eq!(SUBSET + SHAPED + ZERO + NEIGHBOUR + RANDOM, 100);
        for b in clone3::INVALID_BITS {
            assert_eq!((1u64 << b) & CLONE3_VALID_MASK, 0, "bit {b}");
        }
        assert_eq!(clone3_valid_bits().len(), 26);
        assert_eq!(namespace_bits().len(), 8);
        let classes: Vec<FlagClass> = (0..100).map(flag_class).collect();
        assert_eq!(classes.iter().filter(|c| **c == FlagClass::Random).count(), 1);
        assert_eq!(classes.iter().filter(|c| **c == FlagClass::Wide).count(), FLAGS_WIDE as usize);
    }
}

/// Setup weights, each out of 100 unless said otherwise.
pub mod setup {
    /// A pid-namespace level is asked for.
    pub const PIDNS_LEVEL: u32 = 12;
    /// The absolute levels asked for (the limit is 32; the sandbox is level 1).
    pub const PIDNS_LEVELS: &[u8] = &[2, 3, 31, 32];
    /// A user-namespace depth is asked for.
    pub const USERNS_DEPTH: u32 = 12;
    /// The absolute depths asked for (the limit is 33).
    pub const USERNS_DEPTHS: &[u8] = &[1, 2, 32, 33];
    /// A zero limit in a private user namespace.
    pub const LIMIT_ZERO: u32 = 10;
    /// The foreign pid namespace.
    pub const FOREIGN_PIDNS: u32 = 5;
    /// chroot into the subdirectory.
    pub const CHROOT_SUBDIR: u32 = 10;
    /// chroot("/").
    pub const CHROOT_ROOT: u32 = 5;
    /// Extra fds (1..=3).
    pub const FDS: u32 = 40;
    /// A semaphore with SEM_UNDO.
    pub const SEM_UNDO: u32 = 25;
    /// cwd /proc and umask 077.
    pub const CWD_UMASK: u32 = 25;
    /// Number of siblings 0, 1, 2, 3.
    pub const SIBLING_COUNTS: [u32; 4] = [45, 30, 17, 8];
    /// Run as a vfork child.
    pub const VFORK: u32 = 8;
    /// A descriptor at number 100 (the fd table grows past 64 slots; kernel coverage).
    pub const HIGH_FD: u32 = 10;
    /// SysV shm segments: attached in the caller's IPC namespace; in one with shm_rmid_forced.
    pub const SHM_ATTACHED: u32 = 5;
    /// See [`SHM_ATTACHED`].
    pub const SHM_RMID_FORCED: u32 = 5;
    /// Of the cases with a semaphore: decremented without SEM_UNDO after the SEM_UNDO +1.
    pub const SEM_CLAMP: u32 = 40;
    /// A private mount namespace with an nsfs bind mount.
    pub const NSFS_BIND: u32 = 6;
    /// An inside witness (`case::inside`: hostnames, a tmpfs, time offsets, setgroups seen
    /// from outside the new namespaces).
    pub const INSIDE_WITNESS: u32 = 4;
    /// Of the inside witness setups, those with a shared tmpfs (`shared_mount`: mount
    /// propagation between the caller's copy and the witness's).
    pub const SHARED_MOUNT: u32 = 50;
}

/// Step weights (out of 100).
pub mod steps {
    /// unshare (through the 64-bit entry).
    pub const UNSHARE: u32 = 47;
    /// unshare through the i386 entry (`int $0x80`), with the same flag words: the high half
    /// of a word is then dropped by the entry, not refused by unshare.
    pub const UNSHARE_INT80: u32 = 3;
    /// clone3.
    pub const CLONE3: u32 = 16;
    /// fork, continue in the child.
    pub const FORK: u32 = 7;
    /// fork a child that exits.
    pub const FORK_EXIT: u32 = 5;
    /// write uid/gid maps.
    pub const WRITE_MAPS: u32 = 5;
    /// drop CAP_SYS_ADMIN.
    pub const DROP_SYS_ADMIN: u32 = 3;
    /// chroot (subdir twice as often as "/").
    pub const CHROOT: u32 = 3;
    /// pthread_create.
    pub const SPAWN_THREAD: u32 = 3;
    /// A capability or credential change short of CAP_SYS_ADMIN (`case::caps`), each operation
    /// equally often.
    pub const CAPS: u32 = 5;
    /// unshare from a new thread, with the flag words of unshare.
    pub const THREAD_CALL: u32 = 3;
    /// Weights of the caps operations, in the order of `CapsOp::ALL`, out of
    /// [`CAPS_OP_TOTAL`]: keepcaps-nobody, the drops that take CAP_SETUID, and raise more
    /// often than the rest, so that "no CAP_SETUID, then keepcaps-nobody" (EPERM) and
    /// "keepcaps, then raise" come up in a run of 20,000 cases.
    pub const CAPS_OP_WEIGHTS: [u32; 11] = [3, 1, 1, 1, 1, 1, 1, 3, 1, 4, 2];
    /// Sum of [`CAPS_OP_WEIGHTS`].
    pub const CAPS_OP_TOTAL: u32 = 19;

    /// The caps operation for a roll in `0..CAPS_OP_TOTAL`.
    pub fn caps_op(roll: u32) -> crate::case::CapsOp {
        let mut r = roll % CAPS_OP_TOTAL;
        for (w, op) in CAPS_OP_WEIGHTS.iter().zip(crate::case::CapsOp::ALL) {
            if r < *w {
                return op;
            }
            r -= w;
        }
        crate::case::CapsOp::Raise
    }
}

/// Guest-only setups (`case::guest`, docs/guest-only.md), generated only when the run's
/// environment is a throwaway qemu guest (`generate::guest`). Each is out of 100 cases; the
/// rest of the case is drawn as on a host and then fitted to the setup.
pub mod guest {
    /// A lowered `fs.nr_open` with an fd at [`FD_ATS`] (EMFILE, `files-over-nr-open`).
    pub const NR_OPEN: u32 = 10;
    /// fail-nth on the last unshare (ENOMEM, `fault-injected-enomem`); only where the guest's
    /// kernel has fault injection set up.
    pub const FAIL_NTH: u32 = 10;
    /// The fd numbers: both sides of the 64 embedded slots and of 128, tables of 256, 512 and
    /// 1024 slots. Below 1024, the default RLIMIT_NOFILE of a guest's init (a number at or
    /// above the limit is skipped by the model: `model::guest::skip_reason`).
    pub const FD_ATS: &[u32] = &[63, 64, 100, 127, 128, 200, 511, 1023];
    /// The lowered limits (multiples of 64, as `case::guest::validate` requires).
    pub const NR_OPENS: &[u32] = &[64, 128, 256, 1024];
    /// Out of 100 nr_open setups: a `files` sibling shares the table (EMFILE needs it shared).
    pub const NR_OPEN_SHARED: u32 = 80;
    /// Out of 100 nr_open setups: FILES is added to the first unshare step.
    pub const NR_OPEN_FILES_FLAG: u32 = 70;
    /// The fail-nth values, 1..=this. The first allocations of every unshare path fail with
    /// ENOMEM or are absorbed; larger N reach the sites that answer ENOSPC, EAGAIN, EEXIST,
    /// ENODEV or EINVAL instead (docs/kernel-vs-spec.md item 15, at N >= 6 in the sweep), which
    /// the model reports as findings: `kcov.sh --fail-nth-sweep` visits those on purpose.
    pub const FAIL_NTH_MAX: u32 = 3;
}

/// setns steps (issue 16 class 4): their nstype words and the short scenarios that make a
/// setns step meet the state it is about (a pending pid or time namespace, a new user
/// namespace, a fork into the new pid namespace).
pub mod setns {
    use crate::abi::flags::{RawFlags, bits};
    use crate::case::{SetnsStep, SetnsTarget, Step};

    /// Out of 100 steps of the plain step mix: a setns step (low, so the other rows stay provoked).
    pub const STEP: u32 = 3;
    /// Out of 100 cases: a setns scenario ([`scenario`]).
    pub const SCENARIO: u32 = 6;
    /// How many prefixes [`scenario`] knows per target.
    pub const PREFIXES: u32 = 4;

    /// The nstype for `target` from a roll in 0..100: the file's own type (45), 0 (30), the
    /// namespace bit `ns` (17: mostly another type), any 32-bit word `random` (8). With a pidfd,
    /// `ns` stands for the own type.
    pub fn nstype(target: SetnsTarget, roll: u32, ns: u64, random: u32) -> RawFlags {
        RawFlags(match roll {
            0..45 => target.ns_flag().unwrap_or(ns),
            45..75 => 0,
            75..92 => ns,
            _ => u64::from(random),
        })
    }

    /// A scenario for `target`: a prefix chosen by `choice` (0..[`PREFIXES`]), then the setns
    /// step with its own type.
    pub fn scenario(target: SetnsTarget, choice: u32) -> Vec<Step> {
        let u = |f: u64| Step::Unshare(RawFlags(f));
        let mut steps = match (target, choice % PREFIXES) {
            (SetnsTarget::PidForChildren | SetnsTarget::StartPid, 0) => vec![u(bits::NEWPID)],
            (SetnsTarget::PidForChildren | SetnsTarget::StartPid, 1) => vec![u(bits::NEWPID), Step::Fork],
            (SetnsTarget::PidForChildren | SetnsTarget::StartPid, 2) => vec![u(bits::NEWPID), Step::ForkExit],
            (SetnsTarget::PidForChildren, _) => vec![u(bits::NEWUSER | bits::NEWPID), Step::ForkExit],
            // The start pid namespace from inside the new one (pidns_install's ancestor walk):
            // twice, as many setups refuse it earlier (EPERM without capabilities over it).
            (SetnsTarget::StartPid, _) => vec![u(bits::NEWPID), Step::Fork],
            (SetnsTarget::TimeForChildren | SetnsTarget::StartTime, 0) => vec![u(bits::NEWTIME)],
            (SetnsTarget::TimeForChildren | SetnsTarget::StartTime, 1) => vec![u(bits::NEWTIME), Step::Fork],
            (SetnsTarget::TimeForChildren | SetnsTarget::StartTime, 2) => vec![Step::SpawnThread],
            (SetnsTarget::TimeForChildren | SetnsTarget::StartTime, _) => vec![u(bits::NEWTIME), u(bits::NEWUSER)],
            (SetnsTarget::StartUts, 0) => vec![u(bits::NEWUTS)],
            (SetnsTarget::StartUts, 1) => vec![u(bits::NEWUSER | bits::NEWUTS)],
            (SetnsTarget::StartUts, 2) => vec![u(bits::NEWUTS), Step::DropSysAdmin],
            (SetnsTarget::StartUts, _) => vec![],
            (SetnsTarget::StartUser, 0) => vec![u(bits::NEWUSER)],
            (SetnsTarget::StartUser, 1) => vec![u(bits::NEWUSER), Step::SpawnThread],
            (SetnsTarget::StartUser, _) => vec![],
            (SetnsTarget::ExitedPidfd, _) => vec![],
        };
        let nstype = RawFlags(target.ns_flag().unwrap_or(bits::NEWUTS));
        steps.push(Step::Setns(SetnsStep { target, nstype }));
        steps
    }
}

/// clone3 set_tid steps (issue 16 class 4): short scenarios that put a clone3_set_tid step
/// after the state it is about (a pending pid namespace, a new user namespace, a fork into a
/// new pid namespace), with the lists and sizes that reach each rule of `model::set_tid`.
pub mod set_tid {
    use crate::abi::flags::{RawFlags, bits};
    use crate::case::{SetTidStep, Step};

    /// Out of 100 cases: a set_tid scenario. Drawn after the rest of the case (both
    /// generators), so the draws of every other case stay as they were.
    pub const SCENARIO: u32 = 4;
    /// How many prefixes [`scenario`] knows.
    pub const PREFIXES: u32 = 6;
    /// The pids a list draws from: 1 (free only where there is no init yet), 300 (below every
    /// pid_max, free in a namespace the case made), 2, and three out of range.
    pub const TIDS: [i32; 9] = [1, 1, 1, 300, 300, 2, 0, -1, 4 * 1024 * 1024];

    /// The draws of one scenario.
    #[derive(Debug, Clone, Copy)]
    pub struct Draw {
        /// Which prefix (0..[`PREFIXES`]).
        pub prefix: u32,
        /// The flag word, a roll in 0..100: 0 (35), NEWPID (30), NEWUSER|NEWPID (20), `ns` (15).
        pub flags_roll: u32,
        /// A namespace bit.
        pub ns: u64,
        /// Indices into [`TIDS`] for the two entries.
        pub tids: [u32; 2],
        /// Two entries instead of one.
        pub two: bool,
        /// The size, a roll in 0..100: the list's length (80), 0 (5), a null list (5), 33 (5),
        /// 8 (5: above the levels of any chain here).
        pub size_roll: u32,
    }

    /// The scenario's steps: the prefix, then the clone3_set_tid step.
    pub fn scenario(d: Draw) -> Vec<Step> {
        let u = |f: u64| Step::Unshare(RawFlags(f));
        let mut steps = match d.prefix % PREFIXES {
            0 => vec![],
            1 => vec![u(bits::NEWPID)],
            2 => vec![u(bits::NEWUSER | bits::NEWPID)],
            3 => vec![u(bits::NEWUSER | bits::NEWPID), Step::Fork],
            4 => vec![u(bits::NEWPID), Step::Fork],
            _ => vec![u(bits::NEWUSER)],
        };
        let flags = match d.flags_roll {
            0..35 => 0,
            35..65 => bits::NEWPID,
            65..85 => bits::NEWUSER | bits::NEWPID,
            _ => d.ns,
        };
        let pick = |i: u32| TIDS[i as usize % TIDS.len()];
        let list = [pick(d.tids[0]), pick(d.tids[1])];
        let mut st = SetTidStep::new(flags, &list[..1 + usize::from(d.two)]);
        match d.size_roll {
            80..85 => st.size = 0,
            // A null list lists nothing (as its JSON form says), with the size it would have had.
            85..90 => st = SetTidStep { null: true, len: 0, tids: [0; 4], ..st },
            90..95 => st.size = 33,
            95..100 => st.size = 8,
            _ => {}
        }
        steps.push(Step::Clone3SetTid(st));
        steps
    }
}

pub mod caps;
pub mod propagation;
