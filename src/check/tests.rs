//! The checker must be able to fail: observations that contradict the model
//! are fed in, and the right invariant has to report a violation.

use super::*;
use crate::case::Case;
use crate::errno::{CallResult, Errno};
use crate::model::{predict, profile::LINUX_6_18};
use crate::ns::NsLink;
use crate::observe::{NsValue, Snapshot};

fn env() -> Environment {
    Environment::reference()
}

/// An observation that does exactly what the model says (built from the prediction).
fn honest(env: &Environment, case: &Case) -> (Prediction, Outcome) {
    let prediction = predict(&LINUX_6_18, env, case);
    let Prediction::Steps { steps } = &prediction else {
        panic!("skip")
    };
    let before = env.baseline.clone();
    let mut cur = before.clone();
    let mut next_ino = 5_000_000_000u64;
    let mut obs = Vec::new();
    for e in steps {
        let mut after = cur.clone();
        for link in NsLink::ALL {
            match e.links[link.index()] {
                crate::model::LinkExpect::Unchanged => {}
                crate::model::LinkExpect::Fresh => {
                    next_ino += 1;
                    after.ns[link.index()] = NsValue::Inode(next_ino);
                }
                crate::model::LinkExpect::Unreadable(err) => {
                    after.ns[link.index()] = NsValue::Error(err)
                }
            }
        }
        if let crate::model::CredExpect::NewUserNs { uid, gid, cap_eff } = e.creds {
            (after.uid, after.euid, after.gid, after.egid, after.cap_eff) =
                (uid, uid, gid, gid, cap_eff);
        }
        obs.push(StepObservation {
            result: e.result,
            after: after.clone(),
        });
        cur = after;
    }
    (
        prediction.clone(),
        Outcome::Completed {
            trace: Trace { before, steps: obs },
        },
    )
}

fn ids(v: &CaseVerdict) -> Vec<&'static str> {
    v.violations.iter().map(|v| v.invariant).collect()
}

#[test]
fn honest_observations_pass() {
    let env = env();
    for flags in [
        0u64,
        0x7E07_0F80,
        1 << 32,
        0x2000_0000,
        0x80,
        0x1000_0000 | 0x2_0000,
    ] {
        let case = Case::unshare(&[flags, flags]);
        let (p, o) = honest(&env, &case);
        let v = judge(&env, &case, &p, &o);
        assert!(v.violations.is_empty(), "{case}: {:?}", v.violations);
        assert!(!v.held.is_empty());
    }
}

#[test]
fn success_for_an_unknown_bit_is_caught() {
    let env = env();
    let case = Case::unshare(&[1 << 32]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].result = CallResult::Success;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["unknown-bits-einval", "errno-matches-model"]);
}

#[test]
fn a_failure_that_changes_state_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000 | 1]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after.ns[NsLink::Uts.index()] = NsValue::Inode(1);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(
        ids(&v),
        vec!["unknown-bits-einval", "failure-changes-nothing"]
    );
}

#[test]
fn a_success_without_a_new_namespace_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after = trace.before.clone();
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted"]);
}

#[test]
fn newpid_moving_the_caller_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x2000_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after.pid = 1;
    trace.steps[0].after.ns[NsLink::Pid.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(
        ids(&v),
        vec![
            "success-changes-exactly-predicted",
            "newpid-affects-children-only"
        ]
    );
}

#[test]
fn newtime_moving_the_caller_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x80]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after.ns[NsLink::Time.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(
        ids(&v),
        vec![
            "success-changes-exactly-predicted",
            "newtime-affects-children-only"
        ]
    );
}

#[test]
fn newuser_with_wrong_credentials_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x1000_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after.uid = 0;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(
        ids(&v),
        vec!["success-changes-exactly-predicted", "newuser-credentials"]
    );
}

#[test]
fn noop_flag_changing_a_link_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x400]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    trace.steps[0].after.ns[NsLink::Mnt.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(
        ids(&v),
        vec![
            "success-changes-exactly-predicted",
            "noop-flags-change-nothing"
        ]
    );
}

#[test]
fn reused_inode_is_not_fresh() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else {
        unreachable!()
    };
    let old_net = env.baseline.link(NsLink::Net);
    trace.steps[0].after.ns[NsLink::Uts.index()] = old_net;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted"]);
}

#[test]
fn timeouts_and_crashes_are_violations_not_passes() {
    let env = env();
    let case = Case::unshare(&[0]);
    let p = predict(&LINUX_6_18, &env, &case);
    for o in [
        Outcome::Timeout {
            timeout_ms: 5,
            partial: None,
        },
        Outcome::Crash {
            signal: 11,
            partial: None,
        },
    ] {
        let v = judge(&env, &case, &p, &o);
        assert_eq!(ids(&v), vec![CASE_COMPLETES]);
        assert!(!v.reached_syscall);
    }
    let v = judge(
        &env,
        &case,
        &p,
        &Outcome::SetupFailed {
            op: "x".into(),
            errno: Errno::EPERM,
        },
    );
    assert!(v.broken.is_some() && v.violations.is_empty());
    let mut t = Tally::new();
    t.add(&v);
    assert_eq!(t.exit_code(), 2);
}

#[test]
fn skipped_invariants_are_named() {
    let mut env = env();
    env.ns_links
        .retain(|l| !matches!(l, NsLink::Time | NsLink::TimeForChildren));
    let case = Case::unshare(&[0x80]);
    let p = predict(&LINUX_6_18, &env, &case);
    // Without time namespaces the model predicts EINVAL; a kernel agreeing is judged, and
    // the newtime invariant is not applicable at all.
    let before: Snapshot = env.baseline.clone();
    let o = Outcome::Completed {
        trace: Trace {
            before: before.clone(),
            steps: vec![StepObservation {
                result: CallResult::Failure(Errno::EINVAL),
                after: before,
            }],
        },
    };
    let v = judge(&env, &case, &p, &o);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}
