//! The clone3 invariants must be able to fail: an observation built from the prediction
//! passes, and each lie about the child or the caller is caught by the right invariant.

use super::*;
use crate::abi::errno::CallResult;
use crate::case::{Case, Setup, Sibling, Step};
use crate::check::{CaseVerdict, judge};
use crate::env::Environment;
use crate::exec::observe::{Outcome, SiblingView};
use crate::model::clone3::ChildTid;
use crate::model::{KcmpExpect, LinkExpect, Prediction, predict, profile::LINUX_6_18};

/// What the clone3 child of a step shows when it does what the model says (`want`), with the
/// parent's state before (`cur`) and after (`after`) the step.
fn honest_child(
    want: &crate::model::clone3::ChildExpect,
    cur: &Snapshot,
    after: &Snapshot,
    fresh: &mut impl FnMut() -> NsValue,
) -> ChildObservation {
    let mut state = after.clone();
    for link in NsLink::ALL {
        state.ns[link.index()] = match want.links[link.index()] {
            ChildLink::ParentBefore(p) => cur.link(p),
            ChildLink::ParentAfter(p) => after.link(p),
            ChildLink::Fresh => fresh(),
            ChildLink::Child(_) => NsValue::Error(Errno::ENOENT),
        };
    }
    for link in NsLink::ALL {
        if let ChildLink::Child(other) = want.links[link.index()] {
            state.ns[link.index()] = state.link(other);
        }
    }
    state.pid = if want.tid == ChildTid::One { 1 } else { 4242 };
    (state.uid, state.euid, state.gid, state.egid, state.cap_eff) =
        (want.creds.uid, want.creds.uid, want.creds.gid, want.creds.gid, want.creds.cap_eff);
    let k = |x: KcmpExpect| if x == KcmpExpect::Same { IntOrErrno::Value(0) } else { IntOrErrno::Value(1) };
    ChildObservation {
        returned: 4242,
        reported: true,
        state,
        kcmp: want.kcmp.map(|w| w.map(k)),
        kcmp_side: if want.kcmp.is_some() { KcmpSide::Parent } else { KcmpSide::Nobody },
        wait: if want.reaped_by_caller { IntOrErrno::Value(0) } else { IntOrErrno::Error(Errno::ECHILD) },
        sigchld: want.sigchld.unwrap_or(false),
        pidfd: want.pidfd,
        parent_tid: want.parent_tid,
    }
}

/// The siblings' kcmp values after step `e`, as the model says (an unmodelled one keeps its value).
fn honest_sibling_kcmp(e: &Expected, after: &mut Snapshot) {
    for (view, want) in after.siblings.iter_mut().zip(&e.siblings) {
        for (got, w) in view.kcmp.iter_mut().zip(want.kcmp) {
            match w {
                KcmpExpect::Same => *got = IntOrErrno::Value(0),
                KcmpExpect::Different => *got = IntOrErrno::Value(1),
                KcmpExpect::Error(err) => *got = IntOrErrno::Error(err),
                KcmpExpect::Unmodelled => {}
            }
        }
    }
    if e.clone3.as_ref().is_some_and(|c| c.undo_list_made) {
        for s in after.siblings.iter_mut().filter(|s| s.kcmp[4] == IntOrErrno::Value(0)) {
            s.kcmp[4] = IntOrErrno::Value(1);
        }
    }
}

/// An observation that does what the model says, for cases of unshare and clone3 steps.
fn honest(env: &Environment, case: &Case) -> (Prediction, Outcome) {
    let prediction = predict(&LINUX_6_18, env, case);
    let Prediction::Steps { steps, final_probe } = &prediction else { panic!("skip") };
    let mut before = env.baseline.clone();
    before.siblings =
        case.setup.siblings.iter().map(|_| SiblingView { kcmp: [IntOrErrno::Value(0); 5], fds: vec![] }).collect();
    let mut cur = before.clone();
    let mut next = 7_000_000_000u64;
    let mut fresh = || {
        next += 1;
        NsValue::Inode(next)
    };
    let mut obs = Vec::new();
    for e in steps {
        let mut after = cur.clone();
        for link in NsLink::ALL {
            if e.links[link.index()] == LinkExpect::Fresh {
                after.ns[link.index()] = fresh();
            } else if let LinkExpect::Unreadable(err) = e.links[link.index()] {
                after.ns[link.index()] = NsValue::Error(err);
            }
        }
        (after.uid, after.euid, after.gid, after.egid, after.cap_eff) =
            (e.creds.uid, e.creds.uid, e.creds.gid, e.creds.gid, e.creds.cap_eff);
        let child =
            e.clone3.as_ref().and_then(|c| c.child.as_ref()).map(|want| honest_child(want, &cur, &after, &mut fresh));
        honest_sibling_kcmp(e, &mut after);
        obs.push(StepObservation { result: e.result, after: after.clone(), child });
        cur = after;
    }
    let flag = |b: bool| Some(IntOrErrno::Value(i32::from(b)));
    let probe = crate::exec::observe::ProbeObservation {
        sibling_fd_visible: final_probe.files_shared.and_then(flag),
        caller_fd_visible: final_probe.files_shared.and_then(flag),
        fs_cwd_followed: final_probe.fs_shared.and_then(flag),
        fs_umask_followed: final_probe.fs_shared.and_then(flag),
        ..Default::default()
    };
    (prediction.clone(), Outcome::Completed { trace: Trace { before, steps: obs, probe: Some(probe) } })
}

fn case(setup: Setup, steps: &[Step]) -> Case {
    Case { setup, steps: steps.to_vec() }
}

fn c(f: u64) -> Step {
    Step::Clone3(RawFlags(f))
}

fn u(f: u64) -> Step {
    Step::Unshare(RawFlags(f))
}

fn violated(v: &CaseVerdict) -> Vec<&'static str> {
    let mut ids: Vec<&str> = v.violations.iter().map(|v| v.invariant).collect();
    ids.dedup();
    ids
}

/// Judges `case` with the honest observation changed by `lie`.
fn judged(case: &Case, lie: impl FnOnce(&mut Trace)) -> CaseVerdict {
    let env = Environment::reference();
    let (p, mut o) = honest(&env, case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    lie(trace);
    judge(&env, case, &p, &o)
}

fn child_of(t: &mut Trace, step: usize) -> &mut ChildObservation {
    t.steps[step].child.as_mut().expect("a child")
}

const ALL_NS: u64 = ALL_NAMESPACES;

#[test]
fn honest_clone3_observations_pass_and_count() {
    for steps in [
        vec![c(0)],
        vec![c(bits::FILES | bits::FS)],
        vec![c(bits::THREAD | bits::SIGHAND | bits::VM | bits::PIDFD)],
        vec![c(ALL_NS), u(ALL_NS)],
        vec![u(bits::NEWPID | bits::NEWTIME), c(bits::NEWPID | bits::NEWTIME)],
        vec![c(bits::NEWIPC | bits::SYSVSEM), c(bits::VFORK | bits::NEWPID)],
    ] {
        let k = case(Setup { siblings: vec![Sibling::Files], ..Setup::default() }, &steps);
        let v = judged(&k, |_| {});
        assert!(v.violations.is_empty(), "{k}: {:?}", v.violations);
        assert!(v.held.contains_key("clone3-matches-model"), "{k}");
    }
    let v = judged(&case(Setup::default(), &[c(ALL_NS), u(ALL_NS)]), |_| {});
    assert_eq!(v.held.get(AGREE_ON_NAMESPACES), Some(&1));
}

#[test]
fn a_child_that_shares_what_it_should_not_is_caught() {
    let k = case(Setup::default(), &[c(bits::FS)]);
    let v = judged(&k, |t| child_of(t, 0).kcmp.as_mut().unwrap()[0] = IntOrErrno::Value(0));
    assert_eq!(violated(&v), ["clone3-matches-model", "files-fs-opposite-meanings"]);
    let v = judged(&k, |t| child_of(t, 0).kcmp.as_mut().unwrap()[1] = IntOrErrno::Value(2));
    assert_eq!(violated(&v), ["clone3-matches-model", "files-fs-opposite-meanings"]);
}

#[test]
fn lies_about_the_child_are_caught() {
    let k = case(Setup::default(), &[c(bits::NEWNS | bits::NEWPID | bits::PARENT_SETTID)]);
    let lies: [fn(&mut Trace); 7] = [
        |t| {
            let before = t.before.link(NsLink::Mnt);
            child_of(t, 0).state.ns[NsLink::Mnt.index()] = before;
        },
        |t| child_of(t, 0).state.pid = 77,
        |t| child_of(t, 0).state.uid = 65534,
        |t| child_of(t, 0).wait = IntOrErrno::Error(Errno::ECHILD),
        |t| child_of(t, 0).parent_tid = false,
        |t| child_of(t, 0).reported = false,
        |t| t.steps[0].child = None,
    ];
    for (i, lie) in lies.into_iter().enumerate() {
        let v = judged(&k, lie);
        assert!(violated(&v).contains(&"clone3-matches-model"), "lie {i}: {:?}", v.violations);
    }
}

#[test]
fn failures_must_change_nothing_but_the_undo_list() {
    let k = case(Setup { siblings: vec![Sibling::Files], ..Setup::default() }, &[c(bits::NEWIPC | bits::SYSVSEM)]);
    // The model says the caller now has an undo list: kcmp SYSVSEM against the sibling changes.
    let v = judged(&k, |_| {});
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    // Not changing it is a lie too.
    let v = judged(&k, |t| t.steps[0].after.siblings[0].kcmp[4] = IntOrErrno::Value(0));
    assert_eq!(violated(&v), ["clone3-matches-model"]);
    // Nor may anything else move.
    let v = judged(&k, |t| t.steps[0].after.ns[NsLink::Uts.index()] = NsValue::Inode(1));
    assert_eq!(violated(&v), ["clone3-matches-model"]);
    let k = case(Setup::default(), &[c(bits::NEWNS | bits::FS)]);
    let v = judged(&k, |t| t.steps[0].result = CallResult::Success);
    assert!(violated(&v).contains(&"clone3-matches-model"), "{:?}", v.violations);
}

#[test]
fn disagreeing_on_namespaces_is_caught() {
    let ns = bits::NEWUTS | bits::NEWPID;
    for (i, lie) in [
        // The clone3 child stays in the caller's uts namespace.
        (|t: &mut Trace| {
            let uts = t.before.link(NsLink::Uts);
            child_of(t, 0).state.ns[NsLink::Uts.index()] = uts;
        }) as fn(&mut Trace),
        // unshare makes no new pid namespace for the children.
        |t| t.steps[1].after.ns[NsLink::PidForChildren.index()] = t.steps[0].after.link(NsLink::PidForChildren),
        // unshare also makes a network namespace nobody asked for.
        |t| t.steps[1].after.ns[NsLink::Net.index()] = NsValue::Inode(99),
    ]
    .into_iter()
    .enumerate()
    {
        let v = judged(&case(Setup::default(), &[c(ns), u(ns)]), lie);
        assert!(violated(&v).contains(&AGREE_ON_NAMESPACES), "lie {i}: {:?}", v.violations);
    }
}

#[test]
fn unshare_files_that_stays_shared_breaks_the_opposite_meaning() {
    let k = case(Setup { siblings: vec![Sibling::Files], ..Setup::default() }, &[u(bits::FILES)]);
    let v = judged(&k, |_| {});
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert!(v.held.contains_key("files-fs-opposite-meanings"));
    let v = judged(&k, |t| t.steps[0].after.siblings[0].kcmp[0] = IntOrErrno::Value(0));
    assert!(violated(&v).contains(&"files-fs-opposite-meanings"), "{:?}", v.violations);
}
