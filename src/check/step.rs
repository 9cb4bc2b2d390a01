//! What a step-level check sees ([`StepCtx`]) and the vocabulary the invariants of
//! `invariants.rs` and `clone3.rs` share: an invariant's shape, what it needs of the
//! environment, and the comparisons of snapshots and kcmp answers.

use crate::abi::flags::RawFlags;
use crate::abi::ns::NsLink;
use crate::env::Environment;
use crate::exec::observe::{IntOrErrno, NsValue, Snapshot, StepObservation};
use crate::model::{Expected, KcmpExpect, LinkExpect};

/// Everything a step-level check may look at.
pub struct StepCtx<'a> {
    /// The machine.
    pub env: &'a Environment,
    /// Index of the step in the case.
    pub index: usize,
    /// The raw flags passed (0 for steps other than unshare).
    pub flags: RawFlags,
    /// True for unshare steps.
    pub is_unshare: bool,
    /// Bits of the step's word that its call method cannot pass: the high 32 bits of an
    /// unshare through `int $0x80`; 0 otherwise. `flags` is the word the kernel receives.
    pub dropped_bits: u64,
    /// The model's expectation.
    pub expected: &'a Expected,
    /// State before the step.
    pub before: &'a Snapshot,
    /// State after the setup (before the first step).
    pub initial: &'a Snapshot,
    /// The step as observed.
    pub observed: &'a StepObservation,
}

/// `None`: not applicable to this step; `Some(Ok)`: held; `Some(Err(why))`: violated.
pub type StepCheck = fn(&StepCtx) -> Option<Result<(), String>>;

/// One invariant.
pub struct Invariant {
    /// Stable id (kebab-case sentence).
    pub id: &'static str,
    /// What it asserts.
    pub doc: &'static str,
    /// A reason to skip it on this machine, if any.
    pub needs: fn(&Environment) -> Option<String>,
    /// The check.
    pub check: StepCheck,
}

pub(super) fn nothing_needed(_: &Environment) -> Option<String> {
    None
}

pub(super) fn needs_link(env: &Environment, link: NsLink, what: &str) -> Option<String> {
    (!env.has_link(link)).then(|| format!("this kernel has no /proc/self/ns/{link} ({what} not available)"))
}

pub(super) fn needs_kcmp(env: &Environment) -> Option<String> {
    (!env.kcmp).then(|| "kcmp(2) is not available here (CONFIG_KCMP off or filtered)".to_string())
}

pub(super) fn show(v: NsValue) -> String {
    match v {
        NsValue::Inode(i) => i.to_string(),
        NsValue::Error(e) => e.to_string(),
    }
}

/// Differences in identity: namespace links, pid, ids, capabilities, threads.
pub fn identity_diff(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> =
        a.changed_links(b).into_iter().map(|l| format!("ns/{l} {} -> {}", show(a.link(l)), show(b.link(l)))).collect();
    let mut cmp = |name: &str, x: u64, y: u64, hex: bool| {
        if x != y {
            out.push(if hex { format!("{name} {x:#x} -> {y:#x}") } else { format!("{name} {x} -> {y}") });
        }
    };
    cmp("pid", a.pid as u64, b.pid as u64, false);
    cmp("uid", a.uid.into(), b.uid.into(), false);
    cmp("gid", a.gid.into(), b.gid.into(), false);
    cmp("euid", a.euid.into(), b.euid.into(), false);
    cmp("egid", a.egid.into(), b.egid.into(), false);
    cmp("CapEff", a.cap_eff, b.cap_eff, true);
    cmp("threads", a.threads.into(), b.threads.into(), false);
    out
}

/// Every difference between two snapshots: identity plus cwd, umask, semaphore, kcmp and fd flags.
pub fn state_diff(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut out = identity_diff(a, b);
    if a.cwd != b.cwd {
        out.push(format!("cwd {:?} -> {:?}", a.cwd, b.cwd));
    }
    if a.umask != b.umask {
        out.push(format!("umask {:o} -> {:o}", a.umask, b.umask));
    }
    if a.semval != b.semval {
        out.push(format!("semaphore {:?} -> {:?}", a.semval, b.semval));
    }
    if a.siblings != b.siblings {
        out.push(format!("kcmp with siblings {:?} -> {:?}", a.siblings, b.siblings));
    }
    if a.fd_flags != b.fd_flags {
        out.push(format!("fd flags {:?} -> {:?}", a.fd_flags, b.fd_flags));
    }
    out
}

pub(super) fn verdict(problems: Vec<String>) -> Option<Result<(), String>> {
    Some(if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) })
}

/// True if an observed kcmp value matches the expectation.
pub fn kcmp_matches(want: KcmpExpect, got: IntOrErrno) -> bool {
    match want {
        KcmpExpect::Unmodelled => true,
        KcmpExpect::Same => got == IntOrErrno::Value(0),
        KcmpExpect::Different => matches!(got, IntOrErrno::Value(1 | 2)),
        KcmpExpect::Error(e) => got == IntOrErrno::Error(e),
    }
}

/// kcmp problems for the given type indexes (0 files .. 4 sysvsem), and KCMP_FILE if `fds`.
pub(super) fn kcmp_problems(ctx: &StepCtx, types: &[usize], fds: bool) -> Vec<String> {
    let mut out = Vec::new();
    let after = &ctx.observed.after;
    for (k, want) in ctx.expected.siblings.iter().enumerate() {
        let Some(got) = after.siblings.get(k) else {
            out.push(format!("no kcmp observed for sibling {k} ({})", want.kind.name()));
            continue;
        };
        for t in types {
            if !kcmp_matches(want.kcmp[*t], got.kcmp[*t]) {
                let name = crate::model::expect::KCMP_TYPES[*t].0;
                out.push(format!(
                    "kcmp {name} with the {} sibling: expected {:?}, got {}",
                    want.kind.name(),
                    want.kcmp[*t],
                    got.kcmp[*t]
                ));
            }
        }
        if fds {
            for (i, v) in got.fds.iter().enumerate() {
                if !kcmp_matches(want.fds, *v) {
                    out.push(format!(
                        "kcmp FILE fd #{i} with the {} sibling: expected {:?}, got {v}",
                        want.kind.name(),
                        want.fds
                    ));
                }
            }
        }
    }
    out
}

/// The inodes of the namespaces the process showed before the step, through the links that
/// name namespaces reliably here: an unreliable link's reading names nothing (gVisor 2024
/// numbers the `user` link anew at each read, from the counter of new namespaces), so it
/// must not make a later new namespace look "alive before".
pub(crate) fn alive_inodes(env: &Environment, snapshots: &[&Snapshot]) -> Vec<u64> {
    let trusted = NsLink::ALL.into_iter().filter(|l| env.has_link(*l));
    let trusted: Vec<NsLink> = trusted.collect();
    snapshots.iter().flat_map(|s| trusted.iter().filter_map(|l| s.link(*l).inode())).collect()
}

/// Nothing observable changed across the step (the check of `failure-changes-nothing`; also used
/// by the guest-only invariants, `check::fault` and `check::guest_rows`).
///
/// # Errors
/// What changed.
pub fn unchanged_state(ctx: &StepCtx) -> Result<(), String> {
    // Links left out of ns_links (missing, or not naming namespaces reliably: exec::executor::probe) say
    // nothing; they are compared only where every link is trusted.
    let diff = if NsLink::ALL.iter().all(|l| ctx.env.has_link(*l)) {
        state_diff(ctx.before, &ctx.observed.after)
    } else {
        let mut after = ctx.observed.after.clone();
        for l in NsLink::ALL.into_iter().filter(|l| !ctx.env.has_link(*l)) {
            after.ns[l.index()] = ctx.before.ns[l.index()];
        }
        state_diff(ctx.before, &after)
    };
    if diff.is_empty() { Ok(()) } else { Err(format!("state changed: {}", diff.join(", "))) }
}

/// The namespace links across a step against the model's link expectations (also a
/// thread_call step's thread, `check::caps`).
pub(super) fn link_problems(ctx: &StepCtx) -> Vec<String> {
    let after = &ctx.observed.after;
    let alive = alive_inodes(ctx.env, &[&ctx.env.baseline, ctx.initial, ctx.before]);
    let mut problems = Vec::new();
    let mut fresh_seen: Vec<u64> = Vec::new();
    // A link left out of ns_links is missing or does not name namespaces reliably here
    // (exec::executor::probe); its readings say nothing.
    for link in NsLink::ALL.into_iter().filter(|l| ctx.env.has_link(*l)) {
        let (was, now) = (ctx.before.link(link), after.link(link));
        match ctx.expected.links[link.index()] {
            LinkExpect::Unchanged if was != now => {
                problems.push(format!("ns/{link} should not change: {} -> {}", show(was), show(now)));
            }
            LinkExpect::Fresh => match now {
                NsValue::Inode(i) if alive.contains(&i) => {
                    problems.push(format!("ns/{link} should be a new namespace, but inode {i} was alive before"));
                }
                NsValue::Inode(i) if fresh_seen.contains(&i) => {
                    problems.push(format!("ns/{link} got inode {i}, shared with another new namespace"));
                }
                NsValue::Inode(i) => fresh_seen.push(i),
                NsValue::Error(e) => {
                    problems.push(format!("ns/{link} should be a new namespace, but reading it gave {e}"))
                }
            },
            LinkExpect::Unreadable(e) if now != NsValue::Error(e) => {
                problems.push(format!("ns/{link} should be unreadable with {e}, got {}", show(now)));
            }
            LinkExpect::BeforeOf(other) if now != ctx.before.link(other) => {
                problems.push(format!(
                    "ns/{link} should equal the earlier ns/{other} {}, got {}",
                    show(ctx.before.link(other)),
                    show(now)
                ));
            }
            LinkExpect::AfterOf(other) if now != after.link(other) => {
                problems.push(format!(
                    "ns/{link} should equal ns/{other} {}, got {}",
                    show(after.link(other)),
                    show(now)
                ));
            }
            LinkExpect::AtCaseStart(other) if now != ctx.initial.link(other) => {
                problems.push(format!(
                    "ns/{link} should equal ns/{other} as it was before the first step {}, got {}",
                    show(ctx.initial.link(other)),
                    show(now)
                ));
            }
            _ => {}
        }
    }
    problems
}
