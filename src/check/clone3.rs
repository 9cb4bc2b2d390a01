//! The clone3 invariants: a clone3 step and its child against the model
//! (`clone3-matches-model`), the two meanings of FILES and FS (`files-fs-opposite-meanings`),
//! and, over a whole case, unshare and clone3 agreeing on which namespaces a flag word makes
//! (`clone3-and-unshare-agree-on-namespaces`).

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::abi::ns::NsLink;
use crate::case::{Case, Step};
use crate::exec::observe::{ChildObservation, IntOrErrno, KcmpSide, NsValue, Snapshot, StepObservation, Trace};
use crate::model::Expected;
use crate::model::clone3::{ChildExpect, ChildLink, ChildTid};

use super::step::{StepCtx, kcmp_matches, show, state_diff, verdict};

/// Id of the case-level differential invariant.
pub const AGREE_ON_NAMESPACES: &str = "clone3-and-unshare-agree-on-namespaces";

/// Every namespace bit, with the link that shows "a new one was made" after unshare (the
/// caller's own, or its `*_for_children` for pid and time) and after clone3 (the child's own;
/// for time, `time_for_children`, which a CLONE_VM child gets new while it stays in the
/// caller's time namespace).
pub const NAMESPACE_LINKS: [(u64, NsLink, NsLink); 8] = [
    (bits::NEWNS, NsLink::Mnt, NsLink::Mnt),
    (bits::NEWUTS, NsLink::Uts, NsLink::Uts),
    (bits::NEWIPC, NsLink::Ipc, NsLink::Ipc),
    (bits::NEWUSER, NsLink::User, NsLink::User),
    (bits::NEWPID, NsLink::PidForChildren, NsLink::Pid),
    (bits::NEWCGROUP, NsLink::Cgroup, NsLink::Cgroup),
    (bits::NEWNET, NsLink::Net, NsLink::Net),
    (bits::NEWTIME, NsLink::TimeForChildren, NsLink::TimeForChildren),
];

pub use crate::abi::flags::ALL_NAMESPACES;

fn child_link_problems(ctx: &StepCtx, want: &ChildExpect, got: &Snapshot) -> Vec<String> {
    let alive = super::step::alive_inodes(ctx.env, &[&ctx.env.baseline, ctx.initial, ctx.before, &ctx.observed.after]);
    let mut problems = Vec::new();
    let mut fresh: Vec<u64> = Vec::new();
    // Links left out of ns_links (missing, or not naming namespaces reliably: exec::executor::probe) say
    // nothing, neither as the child's reading nor as the parent's it is compared with.
    let trusted = |l: NsLink| ctx.env.has_link(l);
    for link in NsLink::ALL.into_iter().filter(|l| trusted(*l)) {
        let now = got.link(link);
        let (ok, what) = match want.links[link.index()] {
            ChildLink::ParentBefore(p) | ChildLink::ParentAfter(p) | ChildLink::Child(p) if !trusted(p) => continue,
            ChildLink::ParentBefore(p) => (now == ctx.before.link(p), format!("the parent's ns/{p} before")),
            ChildLink::ParentAfter(p) => (now == ctx.observed.after.link(p), format!("the parent's ns/{p} after")),
            ChildLink::Child(c) => (now == got.link(c), format!("its own ns/{c}")),
            ChildLink::Fresh => match now {
                NsValue::Inode(i) if !alive.contains(&i) && !fresh.contains(&i) => {
                    fresh.push(i);
                    (true, String::new())
                }
                _ => (false, "a namespace the parent never showed".to_string()),
            },
        };
        if !ok {
            problems.push(format!("child ns/{link} is {}, expected {what}", show(now)));
        }
    }
    problems
}

fn child_problems(ctx: &StepCtx, want: &ChildExpect, got: &ChildObservation) -> Vec<String> {
    let mut p = Vec::new();
    if !got.reported {
        p.push("the child did not report".to_string());
        return p;
    }
    p.extend(child_link_problems(ctx, want, &got.state));
    let s = &got.state;
    let tid_ok = match want.tid {
        ChildTid::One => s.pid == 1,
        ChildTid::Returned => s.pid == got.returned,
    };
    if !tid_ok {
        p.push(format!("child TID {} (clone3 returned {}), expected {:?}", s.pid, got.returned, want.tid));
    }
    if let Some(t) = want.set_tid {
        if s.pid != t.own {
            p.push(format!("child TID {}, set_tid asked for {}", s.pid, t.own));
        }
        if let Some(r) = t.returned.filter(|r| i64::from(*r) != i64::from(got.returned)) {
            p.push(format!("clone3 returned {}, set_tid asked for {r} in the caller's pid namespace", got.returned));
        }
    }
    let c = want.creds;
    if (s.uid, s.euid, s.gid, s.egid, s.cap_eff) != (c.uid, c.uid, c.gid, c.gid, c.cap_eff) {
        p.push(format!(
            "child ids {}/{} {}/{} CapEff {:#x}, expected {}/{} CapEff {:#x}",
            s.uid, s.euid, s.gid, s.egid, s.cap_eff, c.uid, c.gid, c.cap_eff
        ));
    }
    match (&want.kcmp, &got.kcmp) {
        // Without kcmp (probed at start) the child's sharing is not observed here.
        _ if !ctx.env.kcmp => {}
        (Some(w), Some(g)) => {
            for (t, (name, _)) in crate::model::expect::KCMP_TYPES.iter().enumerate() {
                if !kcmp_matches(w[t], g[t]) {
                    p.push(format!(
                        "kcmp {name} parent/child: expected {:?}, got {} ({:?} side)",
                        w[t], g[t], got.kcmp_side
                    ));
                }
            }
        }
        (None, None) => {}
        (w, g) => p.push(format!("kcmp parent/child: expected {w:?}, got {g:?} ({:?} side)", got.kcmp_side)),
    }
    let wait = if want.reaped_by_caller { IntOrErrno::Value(0) } else { IntOrErrno::Error(Errno::ECHILD) };
    if got.wait != wait {
        p.push(format!("waitpid by the caller gave {}, expected {wait}", got.wait));
    }
    if want.sigchld.is_some_and(|s| s != got.sigchld) {
        p.push(format!("SIGCHLD to the caller: {}, expected {:?}", got.sigchld, want.sigchld));
    }
    if got.pidfd != want.pidfd {
        p.push(format!("pidfd stored: {}, expected {}", got.pidfd, want.pidfd));
    }
    if got.parent_tid != want.parent_tid {
        p.push(format!("parent_tid stored: {}, expected {}", got.parent_tid, want.parent_tid));
    }
    p
}

/// Differences between two snapshots other than the KCMP_SYSVSEM column against siblings.
fn diff_except_sysvsem(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let strip = |s: &Snapshot| {
        let mut s = s.clone();
        for sib in &mut s.siblings {
            sib.kcmp[4] = IntOrErrno::Value(0);
        }
        s
    };
    state_diff(&strip(a), &strip(b))
}

/// The KCMP_SYSVSEM column against siblings: unchanged, except that a sibling without an undo
/// list stops comparing equal (0) once the call gave the caller one.
fn undo_list_problems(ctx: &StepCtx, made: bool) -> Vec<String> {
    let mut p = Vec::new();
    for (k, (was, now)) in ctx.before.siblings.iter().zip(&ctx.observed.after.siblings).enumerate() {
        let (was, now) = (was.kcmp[4], now.kcmp[4]);
        // A new list differs from the sibling's whatever the sibling had: 0 (both had none)
        // and the pointer order of two different lists (1 or 2) both become 1 or 2.
        let ok = if made && matches!(was, IntOrErrno::Value(0..=2)) {
            matches!(now, IntOrErrno::Value(1 | 2))
        } else {
            now == was
        };
        if !ok {
            let why =
                if made { "the call gave the caller an undo list" } else { "the caller's undo list did not change" };
            p.push(format!("kcmp sysvsem with sibling {k}: {was} -> {now}, but {why}"));
        }
    }
    p
}

/// `clone3-matches-model`.
pub fn clone3_matches_model(ctx: &StepCtx) -> Option<Result<(), String>> {
    let exp = ctx.expected.clone3.as_ref()?;
    let mut p = Vec::new();
    if ctx.expected.result != ctx.observed.result {
        p.push(format!("expected {} (rule {}), got {}", ctx.expected.result, ctx.expected.rule, ctx.observed.result));
    }
    match (&exp.child, &ctx.observed.child) {
        (Some(want), Some(got)) => p.extend(child_problems(ctx, want, got)),
        (None, None) => {}
        (Some(_), None) => p.push("no child was observed".into()),
        (None, Some(_)) => p.push("a child was observed for a failing call".into()),
    }
    p.extend(undo_list_problems(ctx, exp.undo_list_made));
    if !ctx.observed.result.is_success() {
        // Nothing else may change (the undo list is judged above).
        let diff = diff_except_sysvsem(ctx.before, &ctx.observed.after);
        if !diff.is_empty() {
            p.push(format!("the failed call changed: {}", diff.join(", ")));
        }
    }
    verdict(p)
}

/// `files-fs-opposite-meanings`: after clone3, FILES/FS mean "the child shares" (kcmp 0),
/// their absence "the child has a copy" (kcmp != 0); after unshare with a sharing sibling,
/// they mean "the caller now has a private copy" (kcmp != 0).
pub fn files_fs_opposite_meanings(ctx: &StepCtx) -> Option<Result<(), String>> {
    let mut p = Vec::new();
    if let Some(exp) = &ctx.expected.clone3 {
        let kcmp = ctx.observed.child.as_ref().filter(|c| c.kcmp_side == KcmpSide::Parent)?.kcmp?;
        for (t, bit, name) in [(0, bits::FILES, "FILES"), (1, bits::FS, "FS")] {
            let shared = kcmp[t] == IntOrErrno::Value(0);
            if shared != exp.flags.intersects(bit) {
                p.push(format!(
                    "clone3 {} {name}: kcmp with the child is {}",
                    if shared { "without" } else { "with" },
                    kcmp[t]
                ));
            }
        }
        return verdict(p);
    }
    if !(ctx.is_unshare && ctx.observed.result.is_success()) {
        return None;
    }
    let f = ctx.expected.effective_flags;
    let cases = [
        (0, f.intersects(bits::FILES) && ctx.expected.before.files, "FILES"),
        (1, f.intersects(bits::FS) && ctx.expected.before.fs, "FS"),
    ];
    if !cases.iter().any(|c| c.1) {
        return None;
    }
    for (t, applies, name) in cases {
        let kind = if t == 0 { crate::case::Sibling::Files } else { crate::case::Sibling::Fs };
        if !applies {
            continue;
        }
        for (k, sib) in ctx.expected.siblings.iter().enumerate() {
            let got = ctx.observed.after.siblings.get(k).map(|s| s.kcmp[t]);
            if sib.kind == kind && got == Some(IntOrErrno::Value(0)) {
                p.push(format!("unshare {name}: still shared with the {} sibling", kind.name()));
            }
        }
    }
    verdict(p)
}

/// The namespace types a successful step created, as the links show them.
fn created_by_unshare(before: &Snapshot, after: &Snapshot) -> u64 {
    NAMESPACE_LINKS.iter().filter(|(_, l, _)| before.link(*l) != after.link(*l)).fold(0, |a, (b, _, _)| a | b)
}

fn created_by_clone3(parent_before: &Snapshot, parent_after: &Snapshot, child: &Snapshot) -> u64 {
    NAMESPACE_LINKS
        .iter()
        .filter(|(_, _, l)| {
            // The child's pid namespace is the parent's pid_for_children unless it made one.
            let parent =
                if *l == NsLink::Pid { parent_after.link(NsLink::PidForChildren) } else { parent_before.link(*l) };
            child.link(*l) != parent
        })
        .fold(0, |a, (b, _, _)| a | b)
}

/// One successful unshare or clone3 step of a case: its namespace bits and what it created.
struct Made {
    index: usize,
    asked: u64,
    created: u64,
}

fn made(case: &Case, trace: &Trace, clone3: bool) -> Vec<Made> {
    let mut before = &trace.before;
    let mut out = Vec::new();
    for (index, (step, obs)) in case.steps.iter().zip(&trace.steps).enumerate() {
        let StepObservation { result, after, child } = obs;
        match (step, clone3, child) {
            (Step::Unshare(_) | Step::UnshareInt80(_), false, _) if result.is_success() => {
                let f = step.unshare_word().expect("an unshare step");
                out.push(Made { index, asked: f.bits() & ALL_NAMESPACES, created: created_by_unshare(before, after) });
            }
            (Step::Clone3(f) | Step::Clone3SetTid(crate::case::SetTidStep { flags: f, .. }), true, Some(c))
                if result.is_success() && c.reported =>
            {
                out.push(Made {
                    index,
                    asked: f.bits() & ALL_NAMESPACES,
                    created: created_by_clone3(before, after, &c.state),
                });
            }
            _ => {}
        }
        before = after;
    }
    out
}

/// `clone3-and-unshare-agree-on-namespaces`, over a whole case: for every pair of a successful
/// unshare and a successful clone3 asking for the same non-empty set of namespaces, both
/// created exactly that set. Returns (clone3 step index, result) per pair.
/// Only the namespace bits of `observable` (types whose links are trusted here) are compared.
pub fn agree_on_namespaces(
    case: &Case,
    _expected: &[Expected],
    trace: &Trace,
    observable: u64,
) -> Vec<(usize, Result<(), String>)> {
    let mask = |mut m: Made| {
        (m.asked, m.created) = (m.asked & observable, m.created & observable);
        m
    };
    let unshares: Vec<Made> = made(case, trace, false).into_iter().map(mask).collect();
    let clones: Vec<Made> = made(case, trace, true).into_iter().map(mask).collect();
    let mut out = Vec::new();
    for c in &clones {
        for u in unshares.iter().filter(|u| u.asked == c.asked && u.asked != 0) {
            let ok = u.created == u.asked && c.created == c.asked;
            let r = if ok {
                Ok(())
            } else {
                Err(format!(
                    "both asked for {}: unshare (step {}) made {}, clone3 (step {}) made {}",
                    RawFlags(u.asked),
                    u.index,
                    RawFlags(u.created),
                    c.index,
                    RawFlags(c.created)
                ))
            };
            out.push((c.index, r));
        }
    }
    out
}

#[cfg(test)]
mod tests;
