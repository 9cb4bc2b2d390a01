//! The invariants of issue 16 class 5 against honest observations and planted lies.

use super::super::*;
use super::honest::honest;
use crate::abi::errno::{CallResult, Errno};
use crate::abi::ns::NsLink;
use crate::case::{CapsOp, Case, Step};
use crate::exec::observe::NsValue;

fn ids(v: &CaseVerdict) -> Vec<&'static str> {
    v.violations.iter().map(|v| v.invariant).collect()
}

fn case(steps: Vec<Step>) -> Case {
    Case { steps, ..Case::unshare(&[0]) }
}

fn newuts() -> RawFlags {
    RawFlags(crate::abi::flags::bits::NEWUTS)
}

use crate::abi::flags::RawFlags;

#[test]
fn honest_caps_and_thread_calls_pass() {
    let env = super::env();
    let c = case(vec![
        Step::Caps(CapsOp::KeepcapsNobody),
        Step::Unshare(newuts()),
        Step::Caps(CapsOp::Raise),
        Step::ThreadCall(newuts()),
    ]);
    let (p, o) = honest(&env, &c);
    let v = judge(&env, &c, &p, &o);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert!(v.held.contains_key("caps-only-sys-admin-decides"), "{:?}", v.held);
    assert!(v.held.contains_key("thread-call-changes-only-the-thread"), "{:?}", v.held);
}

#[test]
fn a_fake_eperm_after_an_unrelated_drop_is_caught() {
    let env = super::env();
    let c = case(vec![Step::Caps(CapsOp::DropNetAdmin), Step::Unshare(newuts())]);
    let (p, mut o) = honest(&env, &c);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[1].result = CallResult::Failure(Errno::EPERM);
    trace.steps[1].after = trace.steps[0].after.clone();
    let v = judge(&env, &c, &p, &o);
    assert!(ids(&v).contains(&"caps-only-sys-admin-decides"), "{:?}", ids(&v));
}

#[test]
fn a_thread_call_that_changes_nothing_or_the_main_thread_is_caught() {
    let env = super::env();
    let c = case(vec![Step::ThreadCall(newuts())]);
    let uts = NsLink::Uts.index();
    // Success reported, but the thread's namespace did not move.
    let (p, mut o) = honest(&env, &c);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    let child = trace.steps[0].child.as_mut().unwrap();
    child.state.ns[uts] = trace.before.ns[uts];
    let v = judge(&env, &c, &p, &o);
    assert_eq!(ids(&v), vec!["thread-call-changes-only-the-thread"]);
    // The main thread's namespace moved instead.
    let (p, mut o) = honest(&env, &c);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns[uts] = NsValue::Inode(7);
    let v = judge(&env, &c, &p, &o);
    assert!(ids(&v).contains(&"thread-call-changes-only-the-thread"), "{:?}", ids(&v));
    // No report from the thread.
    let (p, mut o) = honest(&env, &c);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].child = None;
    let v = judge(&env, &c, &p, &o);
    assert_eq!(ids(&v), vec!["thread-call-changes-only-the-thread"]);
}
