//! The set_tid rules against the results measured on Linux 6.18 (docs/clone3.md "set_tid").

use crate::abi::errno::CallResult;
use crate::abi::flags::bits::{NEWPID, NEWUSER, NEWUTS};
use crate::case::{Case, Privilege, SetTidStep, Setup, Step};
use crate::model::profile::LINUX_6_18;
use crate::model::{Prediction, predict};

fn last(privilege: Privilege, steps: Vec<Step>) -> (CallResult, &'static str, Option<String>) {
    let env = crate::env::Environment::reference();
    let case = Case { setup: Setup { privilege, ..Setup::default() }, steps };
    match predict(&LINUX_6_18, &env, &case) {
        Prediction::Steps { steps: e, .. } => {
            let e = e.last().unwrap();
            let own =
                e.clone3.as_ref().and_then(|c| c.child.as_ref()).and_then(|c| c.set_tid).map(|t| format!("{t:?}"));
            (e.result, e.rule, own)
        }
        Prediction::Skip { reason } => panic!("skipped: {reason}"),
    }
}

fn st(flags: u64, tids: &[i32]) -> Step {
    Step::Clone3SetTid(SetTidStep::new(flags, tids))
}

fn sized(flags: u64, tids: &[i32], size: u32, null: bool) -> Step {
    let mut s = SetTidStep::new(flags, tids);
    (s.size, s.null) = (size, null);
    Step::Clone3SetTid(s)
}

const U: fn(u64) -> Step = |f| Step::Unshare(crate::abi::flags::RawFlags(f));

#[test]
fn the_copy_args_rules_come_first_and_in_order() {
    assert_eq!(last(Privilege::Root, vec![sized(1 << 40, &[1], 33, false)]).1, "set-tid-size-over-max");
    assert_eq!(last(Privilege::Root, vec![sized(0, &[], 1, true)]).1, "set-tid-size-without-array");
    assert_eq!(last(Privilege::Root, vec![sized(0, &[1], 0, false)]).1, "set-tid-array-without-size");
}

#[test]
fn alloc_pid_rules_follow_copy_namespaces() {
    // The namespace capability check (copy_namespaces) comes before alloc_pid.
    assert_eq!(last(Privilege::Nobody, vec![st(NEWUTS, &[0])]).1, "ns-needs-cap-sys-admin");
    assert_eq!(last(Privilege::Nobody, vec![st(0, &[0])]).1, "set-tid-out-of-range");
    assert_eq!(last(Privilege::Nobody, vec![st(0, &[1])]).1, "set-tid-no-cap-over-owner");
    assert_eq!(last(Privilege::Root, vec![st(0, &[1])]).1, "set-tid-in-use");
    assert_eq!(last(Privilege::Root, vec![st(NEWPID, &[2])]).1, "set-tid-no-init-yet");
    assert_eq!(last(Privilege::Root, vec![sized(0, &[5], 8, false)]).1, "set-tid-size-above-levels");
}

#[test]
fn new_and_pending_namespaces_take_pid_1_and_a_forked_one_a_free_pid() {
    let (r, rule, t) = last(Privilege::Nobody, vec![st(NEWUSER | NEWPID, &[1])]);
    assert_eq!((r, rule), (CallResult::Success, "success"));
    assert_eq!(t.unwrap(), "SetTidExpect { own: 1, returned: None }");
    assert_eq!(last(Privilege::Nobody, vec![U(NEWUSER | NEWPID), st(0, &[1])]).1, "success");
    assert_eq!(last(Privilege::Nobody, vec![U(NEWUSER | NEWPID), st(0, &[5])]).1, "set-tid-no-init-yet");
    assert_eq!(last(Privilege::Nobody, vec![U(NEWUSER | NEWPID), st(0, &[1, 300])]).1, "set-tid-no-cap-over-owner");
    let forked = |s: Step| vec![U(NEWUSER | NEWPID), Step::Fork, s];
    assert_eq!(last(Privilege::Nobody, forked(st(0, &[1]))).1, "set-tid-in-use");
    let (_, rule, t) = last(Privilege::Nobody, forked(st(NEWPID, &[1, 300])));
    assert_eq!((rule, t.unwrap().as_str()), ("success", "SetTidExpect { own: 1, returned: Some(300) }"));
    // A pid the case did not make could be anyone's: skipped, not guessed.
    let case = Case { setup: Setup::default(), steps: vec![st(0, &[300])] };
    match predict(&LINUX_6_18, &crate::env::Environment::reference(), &case) {
        Prediction::Skip { reason } => assert!(reason.contains("in use"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Under a pids limit the nesting probe stops early (EAGAIN after 4 rounds, measured in a pids
/// cgroup with pids.max 8): the level 28 it gives is only a bound. A size that could be above
/// the real level + 1 is then not predicted (it was once predicted as EPERM, where the kernel
/// at level 1 gave EINVAL); a size above the bound + 1 is EINVAL at any real level.
#[test]
fn a_bounded_pid_level_decides_the_size_only_where_every_level_agrees() {
    let mut env = crate::env::Environment::reference();
    env.headroom.pid_nested = Some(crate::env::Room { made: 4, stopped_by: Some(libc::EAGAIN) });
    env.pidns_level = Some(28);
    let run = |size: u32| {
        let case = Case { setup: Setup::default(), steps: vec![sized(NEWUSER, &[300, 1], size, false)] };
        match predict(&LINUX_6_18, &env, &case) {
            Prediction::Steps { steps, .. } => Ok(steps[0].rule),
            Prediction::Skip { reason } => Err(reason),
        }
    };
    assert!(run(8).unwrap_err().contains("only bounded"), "{:?}", run(8));
    assert_eq!(run(30), Ok("set-tid-size-above-levels"));
    // One level (the caller's own) is there at any real level.
    assert_ne!(run(1), Ok("set-tid-size-above-levels"));
}
