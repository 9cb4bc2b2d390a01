//! Lying kernels: each mutant is a seccomp filter that changes what unshare(2)
//! returns, written as data (ordered rules over the 64-bit flag word). A filter
//! sees only the flag word, never the caller's state, so every mutant is a
//! function of the flag word: it can make a call fail with any errno, or return
//! 0 without running it ("success without effect"); it cannot run part of a
//! call, or lie only when something is shared, nested or exhausted.
//!
//! `sandbox::install_mutant` compiles a mutant and installs it in the executor right after the
//! sandbox is built and before the environment probe, so the probe and every case child see
//! the lying kernel. This file is the data and its meaning; it imports no code.

use crate::abi::errno::Errno;
use crate::abi::flags::{NON_USER_NAMESPACES, UNSHARE_VALID_MASK, bits};

/// What a rule does to a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run the call (the honest kernel).
    Allow,
    /// Return 0 without running it (`SECCOMP_RET_ERRNO | 0`).
    FakeSuccess,
    /// Fail with this errno without running it.
    Fail(Errno),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => f.write_str("run it"),
            Action::FakeSuccess => f.write_str("return 0 without running it"),
            Action::Fail(e) => write!(f, "fail with {e}"),
        }
    }
}

/// One rule: it matches a flag word `w` when `w` has every bit of `all`, no bit of `none`,
/// and (unless `any` is 0) at least one bit of `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Bits that must all be set.
    pub all: u64,
    /// Bits of which one must be set (ignored when 0).
    pub any: u64,
    /// Bits that must all be clear.
    pub none: u64,
    /// What happens to a matching call.
    pub action: Action,
}

impl Rule {
    /// True if the rule matches the flag word `w`.
    pub fn matches(&self, w: u64) -> bool {
        w & self.all == self.all && w & self.none == 0 && (self.any == 0 || w & self.any != 0)
    }
}

/// Which entry of unshare a mutant's filter lies on; calls through the other run honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The 64-bit call, `syscall(SYS_unshare, ..)`.
    Native,
    /// The i386 entry, `int $0x80` (x86-64 builds): the filter sees the 32-bit word.
    I386,
    /// Not unshare but `setns(2)` (issue 16 class 4): its rules match every call (a filter of
    /// this kind reads no argument), unshare runs honestly.
    Setns,
    /// Not unshare but `mount(2)` (issue 16 class 3, the inside witness): its rules match every
    /// call (no argument read), unshare runs honestly.
    InsideMount,
    /// Not unshare but `sethostname(2)` (issue 16 class 3, the inside witness): its rules match
    /// every call (no argument read), unshare runs honestly.
    InsideSethostname,
    /// Not unshare but `mount(2)`, its rules over the `mountflags` argument (the fourth; issue
    /// 16 class 3, propagation): unshare runs honestly.
    InsidePropagation,
}

impl Entry {
    /// The argument (0-based) the rules' words are read from: unshare's flag word is the first,
    /// mount's flags the fourth. Entries whose rules match every call read none; 0 for them.
    pub fn arg_index(self) -> u32 {
        match self {
            Entry::InsidePropagation => 3,
            _ => 0,
        }
    }
}

/// A lying kernel.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// Stable name (`--mutant NAME`).
    pub name: &'static str,
    /// What the lying kernel does, in one line.
    pub lie: &'static str,
    /// Where the lie comes from (a spec §6 history item, or what real-world fault it imitates).
    pub origin: &'static str,
    /// Ordered rules; the first that matches decides; no match runs the call.
    pub rules: &'static [Rule],
    /// The entry the filter lies on.
    pub entry: Entry,
}

impl Mutant {
    /// The reference semantics of the filter: what happens to `unshare(w)`.
    pub fn decide(&self, w: u64) -> Action {
        self.rules.iter().find(|r| r.matches(w)).map_or(Action::Allow, |r| r.action)
    }
}

/// Bits unshare rejects on 6.18.
const UNKNOWN: u64 = !UNSHARE_VALID_MASK;
/// The flags that never create a namespace: a rule with `none: NOT_SHARING_ONLY` lies only
/// about words made of these, so namespace links cannot give it away.
const NOT_SHARING_ONLY: u64 = !(bits::THREAD | bits::SIGHAND | bits::VM | bits::FS | bits::FILES | bits::SYSVSEM);

const fn any(any: u64, action: Action) -> Rule {
    Rule { all: 0, any, none: 0, action }
}

const fn all(all: u64, action: Action) -> Rule {
    Rule { all, any: 0, none: 0, action }
}

/// Matches exactly the word `bit`: the lie can only show through what `bit` itself does.
const fn exactly(bit: u64, action: Action) -> Rule {
    Rule { all: bit, any: 0, none: !bit, action }
}

/// Matches words that contain `bit` and nothing but sharing flags.
const fn alone_among_sharing_flags(bit: u64, action: Action) -> Rule {
    Rule { all: bit, any: 0, none: NOT_SHARING_ONLY, action }
}

const OK: Action = Action::FakeSuccess;
const fn fail(e: Errno) -> Action {
    Action::Fail(e)
}

macro_rules! mutant {
    ($name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::Native }
    };
    (i386 $name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::I386 }
    };
    (setns $name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::Setns }
    };
    (inside_mount $name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::InsideMount }
    };
    (inside_sethostname $name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::InsideSethostname }
    };
    (inside_propagation $name:literal, $lie:literal, $origin:literal, [$($rule:expr),+ $(,)?]) => {
        Mutant { name: $name, lie: $lie, origin: $origin, rules: &[$($rule),+], entry: Entry::InsidePropagation }
    };
}

/// Every mutant, in report order.
#[rustfmt::skip]
pub const MUTANTS: &[Mutant] = &[
    mutant!("unknown-bits-succeed",
        "any bit outside 0x7E070F80 returns 0 and does nothing",
        "M0: the pre-2.6.16 -mm unshare ignored unknown flags (the seed article)",
        [any(UNKNOWN, OK)]),
    mutant!("unknown-bits-eperm",
        "any bit outside 0x7E070F80 gives EPERM instead of EINVAL",
        "precedence swap: a permission check ahead of the mask check",
        [any(UNKNOWN, fail(Errno::EPERM))]),
    mutant!("newuser-unknown-eperm",
        "NEWUSER together with an unknown bit gives EPERM instead of EINVAL",
        "M10: Debian's unprivileged_userns_clone check runs before the mask",
        [Rule { all: bits::NEWUSER, any: UNKNOWN, none: 0, action: fail(Errno::EPERM) }]),
    mutant!("thread-always-einval",
        "THREAD gives EINVAL even in a single-threaded process",
        "M1: 2.6.16 to about 2.6.37 rejected CLONE_THREAD unconditionally",
        [any(bits::THREAD, fail(Errno::EINVAL))]),
    mutant!("vm-always-succeeds",
        "VM (with only sharing flags) returns 0, even when the mm is shared",
        "a filter cannot see sharing, so the lie is unconditional; imitates a missing mm_users check",
        [alone_among_sharing_flags(bits::VM, OK)]),
    mutant!("sighand-always-succeeds",
        "SIGHAND (with only sharing flags) returns 0, even when handlers are shared or threads exist",
        "imitates a missing sighand/thread check",
        [alone_among_sharing_flags(bits::SIGHAND, OK)]),
    mutant!("files-noop",
        "unshare(FILES) returns 0 without unsharing the fd table (other words are honest)",
        "imitates a lost unshare_fd",
        [exactly(bits::FILES, OK)]),
    mutant!("fs-noop",
        "unshare(FS) returns 0 without unsharing root/cwd/umask (other words are honest)",
        "imitates a lost unshare_fs",
        [exactly(bits::FS, OK)]),
    mutant!("sysvsem-noop",
        "unshare(SYSVSEM) returns 0 without detaching the undo list (other words are honest)",
        "M1-like: SYSVSEM did nothing useful before 2.6.26",
        [exactly(bits::SYSVSEM, OK)]),
    mutant!("newpid-noop",
        "NEWPID returns 0 without making a pid namespace",
        "imitates a kernel without CONFIG_PID_NS that reports success",
        [any(bits::NEWPID, OK)]),
    mutant!("newns-newuts-noop",
        "NEWNS or NEWUTS returns 0 without making any namespace",
        "imitates the !CONFIG_CGROUPS stub behaviour (old namespace returned) for mnt and uts",
        [any(bits::NEWNS | bits::NEWUTS, OK)]),
    mutant!("newuser-eperm",
        "NEWUSER gives EPERM, to root too",
        "M10 or an LSM userns_create hook applied to everyone",
        [any(bits::NEWUSER, fail(Errno::EPERM))]),
    mutant!("newuser-newns-eagain",
        "NEWUSER|NEWNS gives EAGAIN",
        "the set_cred_ucounts allocation failure (§3 EAGAIN) made permanent",
        [all(bits::NEWUSER | bits::NEWNS, fail(Errno::EAGAIN))]),
    mutant!("newipc-sysvsem-einval",
        "NEWIPC|SYSVSEM gives EINVAL",
        "clone(2)'s rule applied to unshare (spec §2.3: unshare accepts the pair)",
        [all(bits::NEWIPC | bits::SYSVSEM, fail(Errno::EINVAL))]),
    mutant!("newipc-enomem",
        "NEWIPC gives ENOMEM",
        "a permanent allocation failure in copy_ipcs",
        [any(bits::NEWIPC, fail(Errno::ENOMEM))]),
    mutant!("newcgroup-enospc",
        "NEWCGROUP gives ENOSPC",
        "as if max_cgroup_namespaces were 0 everywhere",
        [any(bits::NEWCGROUP, fail(Errno::ENOSPC))]),
    mutant!("newnet-eintr",
        "NEWNET gives EINTR",
        "net-ns setup interrupted (§3 EINTR) without a fatal signal",
        [any(bits::NEWNET, fail(Errno::EINTR))]),
    mutant!("files-emfile",
        "FILES gives EMFILE",
        "the dup_fd nr_open check (§3 EMFILE) firing although nr_open was never lowered",
        [any(bits::FILES, fail(Errno::EMFILE))]),
    mutant!("newtime-enosys",
        "NEWTIME gives ENOSYS",
        "an errno outside unshare's catalogue",
        [any(bits::NEWTIME, fail(Errno::ENOSYS))]),
    mutant!("nonuser-namespaces-eperm-with-newuser",
        "NEWUSER plus any other namespace gives EPERM",
        "the CAP_SYS_ADMIN check made against the caller's user ns instead of the new one (§2.2 step 8a)",
        [Rule { all: bits::NEWUSER, any: NON_USER_NAMESPACES, none: 0, action: fail(Errno::EPERM) }]),
    mutant!("lone-unknown-bits-succeed",
        "a word of unknown bits only (no valid flag at all) returns 0 and does nothing",
        "a 'nothing to unshare' fast path placed before the mask check; spec §5.1 tests single bits",
        [Rule { all: 0, any: UNKNOWN, none: UNSHARE_VALID_MASK, action: OK }]),
    mutant!("all-namespaces-enomem",
        "all seven non-user namespace flags together give ENOMEM",
        "a failure only when every namespace is asked for at once (spec §5.1 tests the full mask)",
        [all(NON_USER_NAMESPACES, fail(Errno::ENOMEM))]),
    mutant!(i386 "i386-newuts-noop",
        "through int $0x80, any word with NEWUTS returns 0 without making a UTS namespace (the 64-bit call is honest)",
        "a compat entry that answers for the call without running it (issue 16 class 7: the same contract through the i386 entry)",
        [all(bits::NEWUTS, OK)]),
    mutant!("newipc-newnet-newcgroup-noop",
        "NEWIPC, NEWNET or NEWCGROUP (with only sharing flags besides) returns 0 without making a namespace",
        "issue 16 class 3: the caller goes on living in the old IPC, network and cgroup namespaces (its message queues, devices and cgroup path)",
        [Rule { all: 0, any: LIVED_IN, none: NOT_SHARING_ONLY & !LIVED_IN, action: OK }]),
    mutant!("inside-newuts-newns-newtime-noop",
        "NEWUTS, NEWNS or NEWTIME (with only sharing flags besides) returns 0 without making a namespace",
        "issue 16 class 3: the caller's hostname, mounts and time offsets stay shared with the namespaces it was in (what the inside witness looks at)",
        [Rule { all: 0, any: INSIDE_WITNESSED, none: NOT_SHARING_ONLY & !INSIDE_WITNESSED, action: OK }]),
    mutant!(setns "setns-noop",
        "every setns(2) returns 0 and does nothing (unshare is honest)",
        "issue 16 class 4: a setns that answers for the call without joining anything (nor checking anything)",
        [Rule { all: 0, any: 0, none: 0, action: OK }]),
    mutant!(inside_mount "inside-mount-noop",
        "every mount(2) returns 0 and mounts nothing (unshare is honest)",
        "issue 16 class 3: a mount that reports success and changes nothing (the inside witness's tmpfs; installed after the sandbox's own mounts)",
        [Rule { all: 0, any: 0, none: 0, action: OK }]),
    mutant!(inside_sethostname "inside-sethostname-noop",
        "every sethostname(2) returns 0 and changes nothing (unshare is honest)",
        "issue 16 class 3: a sethostname that reports success and changes nothing (the inside witness's hostnames; installed after the sandbox set its own)",
        [Rule { all: 0, any: 0, none: 0, action: OK }]),
    mutant!(inside_propagation "inside-propagation-noop",
        "mount(2) with MS_SHARED returns 0 and changes no propagation (every other mount, and unshare, is honest)",
        "issue 16 class 3: propagation flags that report success and do nothing (the setup's shared tmpfs stays private, so no mount propagates; installed after the sandbox's own mounts)",
        [all(libc::MS_SHARED, OK)]),
];

/// The namespaces whose inside `inside-changes-stay-inside` reads from outside (hostname,
/// mounts, time offsets).
const INSIDE_WITNESSED: u64 = bits::NEWUTS | bits::NEWNS | bits::NEWTIME;

/// The namespaces whose inside `life-inside-namespaces` reads (message queues, devices, cgroup).
const LIVED_IN: u64 = bits::NEWIPC | bits::NEWNET | bits::NEWCGROUP;

/// Looks a mutant up by name.
pub fn by_name(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// The names of every mutant, for error messages.
pub fn names() -> String {
    MUTANTS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// The restriction note an executor with this mutant reports (first in
/// `Environment::restrictions`), so that no report can be mistaken for one of an honest kernel.
pub fn restriction_note(mutant: &Mutant, no_new_privs: bool) -> String {
    format!(
        "SELFTEST MUTANT {}: the harness installed a seccomp filter that makes unshare lie ({}){}; violations are expected",
        mutant.name,
        mutant.lie,
        if no_new_privs { ", with PR_SET_NO_NEW_PRIVS set" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::flags::FLAGS;

    fn mentioned(m: &Mutant) -> u64 {
        m.rules.iter().fold(0, |acc, r| acc | r.all | r.any)
    }

    #[test]
    fn names_are_unique_kebab_case_and_found() {
        let mut seen = std::collections::BTreeSet::new();
        for m in MUTANTS {
            assert!(seen.insert(m.name), "duplicate mutant {}", m.name);
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{}", m.name);
            assert!(by_name(m.name).is_some());
            assert!(!m.lie.is_empty() && !m.origin.is_empty(), "{}", m.name);
        }
        assert!(MUTANTS.len() >= 10);
        assert!(by_name("no-such-mutant").is_none());
        assert!(
            super::super::sandbox::install_mutant("no-such-mutant").unwrap_err().contains("unknown selftest mutant")
        );
    }

    #[test]
    fn every_flag_and_unknown_bits_are_lied_about() {
        let all: u64 = MUTANTS.iter().map(mentioned).fold(0, |a, b| a | b);
        for f in FLAGS.iter().filter(|f| f.unshare_since.is_some()) {
            assert_ne!(all & f.bit, 0, "no mutant lies about {}", f.name);
        }
        assert_ne!(all & UNKNOWN, 0, "no mutant lies about unknown bits");
    }

    #[test]
    fn every_error_class_of_spec_3_and_fake_success_appear() {
        let actions: Vec<Action> = MUTANTS.iter().flat_map(|m| m.rules.iter().map(|r| r.action)).collect();
        assert!(actions.contains(&Action::FakeSuccess));
        for e in [Errno::EINVAL, Errno::EPERM, Errno::ENOSPC, Errno::ENOMEM, Errno::EMFILE, Errno::EAGAIN, Errno::EINTR]
        {
            assert!(actions.contains(&Action::Fail(e)), "no mutant returns {e}");
        }
    }

    #[test]
    fn rules_are_satisfiable_and_leave_unshare_0_alone() {
        for m in MUTANTS {
            if !matches!(m.entry, Entry::Setns | Entry::InsideMount | Entry::InsideSethostname) {
                assert_eq!(m.decide(0), Action::Allow, "{} lies about unshare(0), which the probe checks", m.name);
            }
            for r in m.rules {
                assert_eq!(r.all & r.none, 0, "{}: a bit both required and forbidden", m.name);
                assert!(r.any == 0 || r.any & !r.none != 0, "{}: `any` only names forbidden bits", m.name);
                let free = r.any & !r.none;
                assert!(r.matches(r.all | (free & free.wrapping_neg())), "{}: rule never matches", m.name);
                assert_ne!(r.action, Action::Allow, "{}: a rule that changes nothing", m.name);
            }
        }
    }
}
