//! The one table of `CLONE_*` bits, the set of bits unshare(2) accepts, the
//! implication rules, and symbolic printing/parsing of raw flag words.
//!
//! Everything else in the crate (model, generators, reports, reproducers)
//! reads this table; no other module repeats a flag constant.
//!
//! # References
//! unshare-semantics.md §1 (bits and mask) and §2.1 (implications);
//! `include/uapi/linux/sched.h`.

#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::abi::ns::NsLink;

/// What a bit means to unshare(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Creates a namespace (`NEWNS`, `NEWUTS`, ...).
    Namespace,
    /// Unshares a resource that may be shared with another process (`FS`, `FILES`, `SYSVSEM`).
    Sharing,
    /// Succeeds only when nothing is shared (`THREAD`, `SIGHAND`, `VM`).
    SharingCheckOnly,
    /// A clone(2)/clone3(2) flag that unshare(2) rejects.
    CloneOnly,
}

/// One named `CLONE_*` bit.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// Name without the `CLONE_` prefix, as printed (`NEWNS`).
    pub name: &'static str,
    /// The bit value.
    pub bit: u64,
    /// What unshare does with it.
    pub kind: FlagKind,
    /// Upstream release (major, minor, patch) since which unshare accepts it; `None` if it never does.
    pub unshare_since: Option<(u32, u32, u32)>,
    /// The `/proc/self/ns` link whose inode changes when the call succeeds, if any.
    pub ns_link: Option<NsLink>,
    /// Printed by name (true for bits unshare or legacy clone(2) knows); clone3-only
    /// bits are printed in hex, as in `NEWNS|0x100000000`.
    pub print_by_name: bool,
    /// One line on what the bit does in unshare.
    pub doc: &'static str,
    /// What clone(2) and clone3(2) do with it (see [`CloneMeaning`]).
    pub clone: CloneMeaning,
}

/// A kernel release (major, minor, patch).
pub type KernelVersion = (u32, u32, u32);

/// What a bit means to legacy clone(2) and to clone3(2), next to its unshare meaning.
///
/// # References
/// clone(2) of man-pages 6.03 for `clone_since` (its "since Linux x.y" headings);
/// torvalds/linux kernel/fork.c `clone3_args_valid` and `copy_process` for `clone3_since`
/// (see docs/clone3.md for the commits read).
#[derive(Debug, Clone, Copy)]
pub struct CloneMeaning {
    /// Upstream release since which legacy clone(2) honours the bit; `None` if clone never
    /// does (it reads the bit as something else, or the bit is clone3-only).
    pub clone_since: Option<KernelVersion>,
    /// Upstream release since which clone3(2) accepts the bit; `None` if clone3 rejects it
    /// with EINVAL before doing anything.
    pub clone3_since: Option<KernelVersion>,
    /// One line on what the bit does in clone3 (and in clone, where they differ).
    pub doc: &'static str,
}

const fn spec(
    name: &'static str,
    bit: u64,
    kind: FlagKind,
    unshare_since: Option<(u32, u32, u32)>,
    ns_link: Option<NsLink>,
    doc: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        bit,
        kind,
        unshare_since,
        ns_link,
        print_by_name: bit <= 0x8000_0000,
        doc,
        clone: CloneMeaning { clone_since: None, clone3_since: None, doc: "" },
    }
}

impl FlagSpec {
    /// The same entry with its clone(2)/clone3(2) meaning filled in.
    const fn cloned(
        mut self,
        clone_since: Option<KernelVersion>,
        clone3_since: Option<KernelVersion>,
        doc: &'static str,
    ) -> FlagSpec {
        self.clone = CloneMeaning { clone_since, clone3_since, doc };
        self
    }
}

/// clone3 itself (upstream 7f192e3cd316 "fork: add clone3", Linux 5.3).
const C3: Option<KernelVersion> = Some((5, 3, 0));

use FlagKind::{CloneOnly, Namespace, Sharing, SharingCheckOnly};

/// Every named `CLONE_*` bit, in bit order.
pub const FLAGS: &[FlagSpec] =
    &[
        spec(
            "NEWTIME",
            0x80,
            Namespace,
            Some((5, 6, 0)),
            Some(NsLink::TimeForChildren),
            "new time namespace for children; the caller stays in its own",
        )
        .cloned(
            None,
            Some((6, 3, 0)),
            "the child starts in a new time namespace (unless VM: then only its time_for_children is new); \
         clone3 only since a402f1e35313 (6.3, backported to 5.10+), before EINVAL; legacy clone reads \
         0x80 as part of the exit signal",
        ),
        spec(
            "VM",
            0x100,
            SharingCheckOnly,
            Some((2, 6, 16)),
            None,
            "no-op if the mm is not shared, else EINVAL (never unshares memory)",
        )
        .cloned(Some((2, 0, 0)), C3, "the child shares the address space"),
        spec(
            "FS",
            0x200,
            Sharing,
            Some((2, 6, 16)),
            None,
            "private copy of root, cwd and umask if the fs_struct is shared",
        )
        .cloned(Some((2, 0, 0)), C3, "the child shares root, cwd and umask (EINVAL with NEWNS or NEWUSER)"),
        spec("FILES", 0x400, Sharing, Some((2, 6, 16)), None, "private copy of the fd table if it is shared").cloned(
            Some((2, 0, 0)),
            C3,
            "the child shares the fd table",
        ),
        spec(
            "SIGHAND",
            0x800,
            SharingCheckOnly,
            Some((2, 6, 16)),
            None,
            "no-op if signal handlers are not shared, else EINVAL",
        )
        .cloned(
            Some((2, 0, 0)),
            C3,
            "the child shares the signal handlers (needs VM; EINVAL with CLEAR_SIGHAND)",
        ),
        spec("PIDFD", 0x1000, CloneOnly, None, None, "clone only: return a pidfd").cloned(
            Some((5, 2, 0)),
            C3,
            "a pidfd for the child is stored at clone_args.pidfd (with THREAD since 83b290c9e3b5, 6.9)",
        ),
        spec("PTRACE", 0x2000, CloneOnly, None, None, "clone only: continue tracing the child").cloned(
            Some((2, 2, 0)),
            C3,
            "if the caller is traced, the child is traced too",
        ),
        spec("VFORK", 0x4000, CloneOnly, None, None, "clone only: parent sleeps until the child releases its mm")
            .cloned(Some((2, 2, 0)), C3, "the caller sleeps until the child exits or execs"),
        spec("PARENT", 0x8000, CloneOnly, None, None, "clone only: child gets the caller's parent").cloned(
            Some((2, 3, 12)),
            C3,
            "the child is a sibling of the caller (EINVAL from an init; exit_signal must be 0 in clone3)",
        ),
        spec(
            "THREAD",
            0x1_0000,
            SharingCheckOnly,
            Some((2, 6, 16)),
            None,
            "no-op if the thread group has one thread, else EINVAL",
        )
        .cloned(
            Some((2, 4, 0)),
            C3,
            "the child is a thread of the caller (needs SIGHAND; EINVAL with NEWUSER, NEWPID or after unshare(NEWPID))",
        ),
        spec("NEWNS", 0x2_0000, Namespace, Some((2, 6, 16)), Some(NsLink::Mnt), "new mount namespace (implies FS)")
            .cloned(Some((2, 4, 19)), C3, "the child starts in a new mount namespace (EINVAL with FS)"),
        spec("SYSVSEM", 0x4_0000, Sharing, Some((2, 6, 26)), None, "detach from the SysV semaphore undo list").cloned(
            Some((2, 5, 10)),
            C3,
            "the child shares the caller's undo list, made for the caller if it had none (EINVAL with NEWIPC)",
        ),
        spec("SETTLS", 0x8_0000, CloneOnly, None, None, "clone only: set the child's TLS").cloned(
            Some((2, 5, 32)),
            C3,
            "the child's TLS base is clone_args.tls",
        ),
        spec("PARENT_SETTID", 0x10_0000, CloneOnly, None, None, "clone only: store the child's TID in the parent")
            .cloned(Some((2, 5, 49)), C3, "the child's TID is stored at clone_args.parent_tid in the caller"),
        spec("CHILD_CLEARTID", 0x20_0000, CloneOnly, None, None, "clone only: clear the TID in the child at exit")
            .cloned(
                Some((2, 5, 49)),
                C3,
                "clone_args.child_tid is zeroed (and futex-woken) in the child's memory when it exits",
            ),
        spec("DETACHED", 0x40_0000, CloneOnly, None, None, "clone only: unused, ignored by clone").cloned(
            None,
            None,
            "ignored by legacy clone; EINVAL in clone3 (kept free for reuse)",
        ),
        spec("UNTRACED", 0x80_0000, CloneOnly, None, None, "clone only: tracer cannot force PTRACE on the child")
            .cloned(Some((2, 5, 46)), C3, "a tracer cannot force CLONE_PTRACE on the child"),
        spec("CHILD_SETTID", 0x100_0000, CloneOnly, None, None, "clone only: store the TID in the child").cloned(
            Some((2, 5, 49)),
            C3,
            "the child's TID is stored at clone_args.child_tid in the child's memory",
        ),
        spec("NEWCGROUP", 0x200_0000, Namespace, Some((4, 6, 0)), Some(NsLink::Cgroup), "new cgroup namespace").cloned(
            Some((4, 6, 0)),
            C3,
            "the child starts in a new cgroup namespace",
        ),
        spec("NEWUTS", 0x400_0000, Namespace, Some((2, 6, 19)), Some(NsLink::Uts), "new UTS namespace").cloned(
            Some((2, 6, 19)),
            C3,
            "the child starts in a new UTS namespace",
        ),
        spec(
            "NEWIPC",
            0x800_0000,
            Namespace,
            Some((2, 6, 19)),
            Some(NsLink::Ipc),
            "new IPC namespace (also detaches the semaphore undo list)",
        )
        .cloned(Some((2, 6, 19)), C3, "the child starts in a new IPC namespace (EINVAL with SYSVSEM)"),
        spec(
            "NEWUSER",
            0x1000_0000,
            Namespace,
            Some((3, 8, 0)),
            Some(NsLink::User),
            "new user namespace (implies THREAD and FS)",
        )
        .cloned(Some((3, 8, 0)), C3, "the child starts in a new user namespace (EINVAL with FS or THREAD)"),
        spec(
            "NEWPID",
            0x2000_0000,
            Namespace,
            Some((3, 8, 0)),
            Some(NsLink::PidForChildren),
            "new pid namespace for children; the caller does not move",
        )
        .cloned(Some((2, 6, 24)), C3, "the child is pid 1 of a new pid namespace (EINVAL with THREAD)"),
        spec("NEWNET", 0x4000_0000, Namespace, Some((2, 6, 24)), Some(NsLink::Net), "new network namespace").cloned(
            Some((2, 6, 24)),
            C3,
            "the child starts in a new network namespace",
        ),
        spec("IO", 0x8000_0000, CloneOnly, None, None, "clone only: share the I/O context").cloned(
            Some((2, 6, 25)),
            C3,
            "the child shares the I/O context",
        ),
        spec("CLEAR_SIGHAND", 0x1_0000_0000, CloneOnly, None, None, "clone3 only: reset signal handlers in the child")
            .cloned(
                None,
                Some((5, 5, 0)),
                "handlers not set to SIG_IGN are reset to SIG_DFL in the child (b612e5df4587; EINVAL with SIGHAND)",
            ),
        spec("INTO_CGROUP", 0x2_0000_0000, CloneOnly, None, None, "clone3 only: start the child in a given cgroup")
            .cloned(
                None,
                Some((5, 7, 0)),
                "the child starts in the cgroup v2 directory open at clone_args.cgroup (ef2c41cf38a7)",
            ),
    ];

/// `CSIGNAL`: the low byte that legacy clone(2) reads as the child's exit signal.
pub const CSIGNAL: u64 = 0xff;

/// The bits clone3(2) accepts on Linux 6.18, derived from the table: `0x3FFBFFF80`
/// (`clone3_args_valid`: the 32 legacy bits and CLEAR_SIGHAND|INTO_CGROUP, minus DETACHED
/// and CSIGNAL except NEWTIME).
pub const CLONE3_VALID_MASK: u64 = {
    let mut mask = 0;
    let mut i = 0;
    while i < FLAGS.len() {
        if FLAGS[i].clone.clone3_since.is_some() {
            mask |= FLAGS[i].bit;
        }
        i += 1;
    }
    mask
};

/// Looks a flag up by name (with or without the `CLONE_` prefix, any case).
pub fn by_name(name: &str) -> Option<&'static FlagSpec> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CLONE_").unwrap_or(&upper);
    FLAGS.iter().find(|f| f.name == bare)
}

/// Looks a flag up by its single-bit value.
pub fn by_bit(bit: u64) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|f| f.bit == bit)
}

/// Bit values, named for readability in the model and the generators.
pub mod bits {
    #![allow(missing_docs)]
    pub const NEWTIME: u64 = 0x80;
    pub const VM: u64 = 0x100;
    pub const FS: u64 = 0x200;
    pub const FILES: u64 = 0x400;
    pub const SIGHAND: u64 = 0x800;
    pub const THREAD: u64 = 0x1_0000;
    pub const NEWNS: u64 = 0x2_0000;
    pub const SYSVSEM: u64 = 0x4_0000;
    pub const NEWCGROUP: u64 = 0x200_0000;
    pub const NEWUTS: u64 = 0x400_0000;
    pub const NEWIPC: u64 = 0x800_0000;
    pub const NEWUSER: u64 = 0x1000_0000;
    pub const NEWPID: u64 = 0x2000_0000;
    pub const NEWNET: u64 = 0x4000_0000;
    // The clone-only bits (clone3.rs and the generators name them).
    pub const PIDFD: u64 = 0x1000;
    pub const PTRACE: u64 = 0x2000;
    pub const VFORK: u64 = 0x4000;
    pub const PARENT: u64 = 0x8000;
    pub const SETTLS: u64 = 0x8_0000;
    pub const PARENT_SETTID: u64 = 0x10_0000;
    pub const CHILD_CLEARTID: u64 = 0x20_0000;
    pub const DETACHED: u64 = 0x40_0000;
    pub const UNTRACED: u64 = 0x80_0000;
    pub const CHILD_SETTID: u64 = 0x100_0000;
    pub const IO: u64 = 0x8000_0000;
    pub const CLEAR_SIGHAND: u64 = 0x1_0000_0000;
    pub const INTO_CGROUP: u64 = 0x2_0000_0000;
}

/// The bits unshare(2) accepts on Linux 6.18 (spec §1): `0x7E070F80`.
pub const UNSHARE_VALID_MASK: u64 = bits::NEWTIME
    | bits::VM
    | bits::FS
    | bits::FILES
    | bits::SIGHAND
    | bits::THREAD
    | bits::NEWNS
    | bits::SYSVSEM
    | bits::NEWCGROUP
    | bits::NEWUTS
    | bits::NEWIPC
    | bits::NEWUSER
    | bits::NEWPID
    | bits::NEWNET;

/// All namespace-creating bits except NEWUSER (they need CAP_SYS_ADMIN in the target user ns).
pub const NON_USER_NAMESPACES: u64 =
    bits::NEWNS | bits::NEWUTS | bits::NEWIPC | bits::NEWPID | bits::NEWCGROUP | bits::NEWNET | bits::NEWTIME;

/// All namespace-creating bits.
pub const ALL_NAMESPACES: u64 = NON_USER_NAMESPACES | bits::NEWUSER;

/// One implication rule: if `when` is set, `adds` is added.
#[derive(Debug, Clone, Copy)]
pub struct Implication {
    /// The triggering bit.
    pub when: u64,
    /// The bits it adds.
    pub adds: u64,
}

/// The implications of Linux 6.18, applied once each, in this order (spec §2.1).
pub const IMPLICATIONS_6_18: &[Implication] = &[
    Implication { when: bits::NEWUSER, adds: bits::THREAD | bits::FS },
    Implication { when: bits::VM, adds: bits::SIGHAND },
    Implication { when: bits::SIGHAND, adds: bits::THREAD },
    Implication { when: bits::NEWNS, adds: bits::FS },
];

/// Applies `rules` in order, as `ksys_unshare` does before any check.
pub fn apply_implications(flags: RawFlags, rules: &[Implication]) -> RawFlags {
    let mut f = flags.0;
    for rule in rules {
        if f & rule.when != 0 {
            f |= rule.adds;
        }
    }
    RawFlags(f)
}

/// A full-width flag word exactly as passed to `SYS_unshare`.
///
/// Printed symbolically (`NEWNS|NEWUSER|0x100000000`): named bits in bit order,
/// then every remaining bit as one hex number; `0` for no bits. Parsing
/// accepts names (with or without `CLONE_`), hex (`0x..`) and decimal
/// numbers joined by `|`. `parse(print(x)) == x` for every `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RawFlags(pub u64);

impl RawFlags {
    /// The raw value.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// True if every bit of `other` is set.
    pub fn contains(self, other: u64) -> bool {
        self.0 & other == other
    }

    /// True if any bit of `other` is set.
    pub fn intersects(self, other: u64) -> bool {
        self.0 & other != 0
    }

    /// Bits outside the 6.18 unshare mask.
    pub fn unknown_to_unshare(self) -> u64 {
        self.0 & !UNSHARE_VALID_MASK
    }

    /// Bits clone3 rejects outright on 6.18 (outside [`CLONE3_VALID_MASK`]).
    pub fn unknown_to_clone3(self) -> u64 {
        self.0 & !CLONE3_VALID_MASK
    }
}

impl fmt::Display for RawFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut rest = self.0;
        let mut first = true;
        for spec in FLAGS.iter().filter(|s| s.print_by_name) {
            if rest & spec.bit != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(spec.name)?;
                rest &= !spec.bit;
                first = false;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

/// Why a flag expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad flag expression {input:?}: {problem} (expected names such as NEWNS or CLONE_NEWNS, hex such as 0x100000000, or decimal, joined by '|')"
)]
pub struct ParseFlagsError {
    /// The whole input.
    pub input: String,
    /// What was wrong.
    pub problem: String,
}

impl FromStr for RawFlags {
    type Err = ParseFlagsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem: String| ParseFlagsError { input: s.to_string(), problem };
        if s.trim().is_empty() {
            return Err(err("empty".into()));
        }
        let mut value = 0u64;
        for token in s.split('|') {
            let t = token.trim();
            if t.is_empty() {
                return Err(err("empty term between '|'".into()));
            }
            let v = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16).map_err(|e| err(format!("term {t:?}: {e}")))?
            } else if t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u64>().map_err(|e| err(format!("term {t:?}: {e}")))?
            } else {
                by_name(t).map(|spec| spec.bit).ok_or_else(|| err(format!("unknown flag name {t:?}")))?
            };
            value |= v;
        }
        Ok(RawFlags(value))
    }
}

impl Serialize for RawFlags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RawFlags {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawFlags;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a flag expression such as \"NEWNS|NEWUSER|0x100000000\" or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawFlags, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawFlags, E> {
                Ok(RawFlags(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests;
