//! The named invariants: each a stable id, a sentence, what it needs from the
//! environment, and a check over one step (prediction next to observation).
//! The ids are part of the reports' public shape: never rename one.

#![deny(missing_docs)]

use crate::env::Environment;
use crate::errno::{CallResult, Errno};
use crate::flags::{RawFlags, bits};
use crate::model::{CredExpect, Expected, LinkExpect};
use crate::ns::NsLink;
use crate::observe::{NsValue, Snapshot, StepObservation};

/// Everything a step-level check may look at.
pub struct StepCtx<'a> {
    /// The machine.
    pub env: &'a Environment,
    /// Index of the step in the case.
    pub index: usize,
    /// The raw flags passed.
    pub flags: RawFlags,
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

fn nothing_needed(_: &Environment) -> Option<String> {
    None
}

fn needs_link(env: &Environment, link: NsLink, what: &str) -> Option<String> {
    (!env.has_link(link))
        .then(|| format!("this kernel has no /proc/self/ns/{link} ({what} not available)"))
}

/// Differences between two snapshots, ignoring nothing.
pub fn state_diff(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = a
        .changed_links(b)
        .into_iter()
        .map(|l| format!("ns/{l} {} -> {}", show(a.link(l)), show(b.link(l))))
        .collect();
    let mut cmp = |name: &str, x: u64, y: u64, hex: bool| {
        if x != y {
            out.push(if hex {
                format!("{name} {x:#x} -> {y:#x}")
            } else {
                format!("{name} {x} -> {y}")
            });
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

fn show(v: NsValue) -> String {
    match v {
        NsValue::Inode(i) => i.to_string(),
        NsValue::Error(e) => e.to_string(),
    }
}

fn unchanged(ctx: &StepCtx) -> Result<(), String> {
    let diff = state_diff(ctx.before, &ctx.observed.after);
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("state changed: {}", diff.join(", ")))
    }
}

fn unknown_bits_einval(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.expected.effective_flags.unknown_to_unshare() == 0 {
        return None;
    }
    Some(match ctx.observed.result {
        CallResult::Failure(Errno::EINVAL) => unchanged(ctx),
        other => Err(format!(
            "bits {:#x} are unknown to unshare, expected EINVAL, got {other}",
            ctx.expected.effective_flags.unknown_to_unshare()
        )),
    })
}

fn errno_matches_model(ctx: &StepCtx) -> Option<Result<(), String>> {
    let (want, got) = (ctx.expected.result, ctx.observed.result);
    Some(if want == got {
        Ok(())
    } else {
        Err(format!(
            "model expected {want} (rule {}), kernel returned {got}",
            ctx.expected.rule
        ))
    })
}

fn failure_changes_nothing(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.observed.result.is_success() {
        return None;
    }
    Some(unchanged(ctx))
}

fn alive_inodes(ctx: &StepCtx) -> Vec<u64> {
    [&ctx.env.baseline, ctx.initial, ctx.before]
        .iter()
        .flat_map(|s| s.ns.iter().filter_map(|v| v.inode()))
        .collect()
}

fn success_changes_exactly_predicted(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.observed.result.is_success() && ctx.expected.result.is_success()) {
        return None;
    }
    let after = &ctx.observed.after;
    let alive = alive_inodes(ctx);
    let mut problems = Vec::new();
    let mut fresh_seen: Vec<u64> = Vec::new();
    for link in NsLink::ALL {
        let (was, now) = (ctx.before.link(link), after.link(link));
        match ctx.expected.links[link.index()] {
            LinkExpect::Unchanged if was != now => {
                problems.push(format!(
                    "ns/{link} should not change: {} -> {}",
                    show(was),
                    show(now)
                ));
            }
            LinkExpect::Fresh => match now {
                NsValue::Inode(i) if alive.contains(&i) => {
                    problems.push(format!("ns/{link} should be a new namespace, but inode {i} belongs to one alive before"));
                }
                NsValue::Inode(i) if fresh_seen.contains(&i) => {
                    problems.push(format!(
                        "ns/{link} got inode {i}, shared with another new namespace"
                    ));
                }
                NsValue::Inode(i) => fresh_seen.push(i),
                NsValue::Error(e) => problems.push(format!(
                    "ns/{link} should be a new namespace, but reading it gave {e}"
                )),
            },
            LinkExpect::Unreadable(e) if now != NsValue::Error(e) => {
                problems.push(format!(
                    "ns/{link} should be unreadable with {e}, got {}",
                    show(now)
                ));
            }
            _ => {}
        }
    }
    let b = ctx.before;
    let (uid, gid, caps) = match ctx.expected.creds {
        CredExpect::Unchanged => (b.uid, b.gid, b.cap_eff),
        CredExpect::NewUserNs { uid, gid, cap_eff } => (uid, gid, cap_eff),
    };
    if (after.uid, after.gid, after.euid, after.egid) != (uid, gid, uid, gid)
        || after.cap_eff != caps
    {
        problems.push(format!(
            "credentials: expected uid/gid {uid}/{gid} CapEff {caps:#x}, got uid {} gid {} euid {} egid {} CapEff {:#x}",
            after.uid, after.gid, after.euid, after.egid, after.cap_eff
        ));
    }
    if (after.pid, after.threads) != (b.pid, b.threads) {
        problems.push(format!(
            "pid/threads changed: {}/{} -> {}/{}",
            b.pid, b.threads, after.pid, after.threads
        ));
    }
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    })
}

fn newpid_affects_children_only(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.flags.intersects(bits::NEWPID) && ctx.observed.result.is_success()) {
        return None;
    }
    let after = &ctx.observed.after;
    let mut problems = Vec::new();
    if after.link(NsLink::Pid) != ctx.before.link(NsLink::Pid) {
        problems.push("the caller's own ns/pid changed".to_string());
    }
    if after.pid != ctx.before.pid {
        problems.push(format!(
            "getpid changed {} -> {}",
            ctx.before.pid, after.pid
        ));
    }
    if after.link(NsLink::PidForChildren) == ctx.before.link(NsLink::PidForChildren) {
        problems.push("ns/pid_for_children did not change".to_string());
    }
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    })
}

fn newtime_affects_children_only(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.flags.intersects(bits::NEWTIME) && ctx.observed.result.is_success()) {
        return None;
    }
    let after = &ctx.observed.after;
    let mut problems = Vec::new();
    if after.link(NsLink::Time) != ctx.before.link(NsLink::Time) {
        problems.push("the caller's own ns/time changed".to_string());
    }
    match (
        ctx.before.link(NsLink::TimeForChildren),
        after.link(NsLink::TimeForChildren),
    ) {
        (was, now) if was == now => {
            problems.push("ns/time_for_children did not change".to_string())
        }
        (_, NsValue::Error(e)) => problems.push(format!(
            "ns/time_for_children unreadable after NEWTIME: {e}"
        )),
        _ => {}
    }
    Some(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    })
}

fn newuser_credentials(ctx: &StepCtx) -> Option<Result<(), String>> {
    if !(ctx.flags.intersects(bits::NEWUSER) && ctx.observed.result.is_success()) {
        return None;
    }
    let a = &ctx.observed.after;
    let (ou, og, full) = (
        ctx.env.overflow_uid,
        ctx.env.overflow_gid,
        ctx.env.full_caps(),
    );
    Some(
        if (a.uid, a.euid, a.gid, a.egid, a.cap_eff) == (ou, ou, og, og, full) {
            Ok(())
        } else {
            Err(format!(
                "after NEWUSER expected uid/euid {ou}, gid/egid {og} (unmapped overflow ids) and CapEff {full:#x}; got uid {} euid {} gid {} egid {} CapEff {:#x}",
                a.uid, a.euid, a.gid, a.egid, a.cap_eff
            ))
        },
    )
}

/// Flags that never create a namespace or change credentials.
const NOOP_FLAGS: u64 =
    bits::THREAD | bits::SIGHAND | bits::VM | bits::FS | bits::FILES | bits::SYSVSEM;

fn noop_flags_change_nothing(ctx: &StepCtx) -> Option<Result<(), String>> {
    if ctx.flags.0 & !NOOP_FLAGS != 0 || !ctx.observed.result.is_success() {
        return None;
    }
    Some(unchanged(ctx))
}

/// Every step-level invariant, in report order.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        id: "unknown-bits-einval",
        doc: "a flag word with a bit unshare does not know fails with EINVAL and changes nothing",
        needs: nothing_needed,
        check: unknown_bits_einval,
    },
    Invariant {
        id: "errno-matches-model",
        doc: "every call returns what the model predicts: success, or the errno of the first failing check",
        needs: nothing_needed,
        check: errno_matches_model,
    },
    Invariant {
        id: "failure-changes-nothing",
        doc: "a failed call leaves every namespace link, id, capability and the thread count as they were",
        needs: nothing_needed,
        check: failure_changes_nothing,
    },
    Invariant {
        id: "success-changes-exactly-predicted",
        doc: "a successful call gives exactly the requested namespaces new inodes (not alive before), and changes nothing else",
        needs: nothing_needed,
        check: success_changes_exactly_predicted,
    },
    Invariant {
        id: "newpid-affects-children-only",
        doc: "NEWPID changes only pid_for_children; the caller keeps its pid and its pid namespace",
        needs: |env| needs_link(env, NsLink::PidForChildren, "pid namespaces"),
        check: newpid_affects_children_only,
    },
    Invariant {
        id: "newtime-affects-children-only",
        doc: "NEWTIME changes only time_for_children; the caller stays in its time namespace",
        needs: |env| needs_link(env, NsLink::TimeForChildren, "time namespaces"),
        check: newtime_affects_children_only,
    },
    Invariant {
        id: "newuser-credentials",
        doc: "after NEWUSER the ids read as the overflow ids until mapped, and CapEff is the full set",
        needs: |env| needs_link(env, NsLink::User, "user namespaces"),
        check: newuser_credentials,
    },
    Invariant {
        id: "noop-flags-change-nothing",
        doc: "THREAD, SIGHAND, VM, FS, FILES, SYSVSEM and 0 never change a namespace link or a credential",
        needs: nothing_needed,
        check: noop_flags_change_nothing,
    },
];

/// Case-level invariant: the case's process ends by itself, within the timeout, without a signal.
pub const CASE_COMPLETES: &str = "case-completes";
