//! The witness's id map rules through `predict` on the reference environment (root in the
//! initial user namespace, setgroups "allow"), and on states no setup makes today.

use crate::abi::errno::{CallResult, Errno};
use crate::case::idmap::IdmapOp::{self, *};
use crate::case::{CapsOp, Case, Privilege, Setup, Step};
use crate::env::Environment;
use crate::model::idmap::tests::{OK, eperm, newuser};
use crate::model::{Prediction, predict};

fn prediction(privilege: Privilege, prefix: &[Step], ops: &[IdmapOp]) -> (Vec<(CallResult, &'static str)>, u32) {
    let env = Environment::reference();
    let mut steps = prefix.to_vec();
    steps.extend(ops.iter().map(|o| Step::WitnessIdmap(*o)));
    let case = Case { setup: Setup { privilege, inside_witness: true, ..Setup::default() }, steps };
    case.validate().unwrap();
    match predict(&crate::model::profile::LINUX_6_18, &env, &case) {
        Prediction::Steps { steps, .. } => {
            let uid = steps.last().map_or(0, |e| e.creds.uid);
            (steps[prefix.len()..].iter().map(|e| (e.result, e.rule)).collect(), uid)
        }
        Prediction::Skip { reason } => panic!("skipped: {reason}"),
    }
}

fn results(privilege: Privilege, prefix: &[Step], ops: &[IdmapOp]) -> Vec<(CallResult, &'static str)> {
    prediction(privilege, prefix, ops).0
}

#[test]
fn root_in_the_parent_maps_any_ids_once() {
    let r = results(Privilege::Root, &[newuser()], &[UidForeign, GidTwoExtents, UidOwn]);
    assert_eq!(r, [OK, OK, eperm(crate::model::idmap::MAP_ALREADY_WRITTEN)]);
    // The own ids map the caller to 0; a foreign uid leaves it the overflow uid.
    assert_eq!(prediction(Privilege::Root, &[newuser()], &[UidOwn]).1, 0);
    assert_eq!(prediction(Privilege::Root, &[newuser()], &[UidForeign]).1, 65534);
}

#[test]
fn a_caller_left_unmapped_cannot_nest() {
    let env = Environment::reference();
    let steps = vec![newuser(), Step::WitnessIdmap(UidForeign), Step::WitnessIdmap(GidOwn), newuser()];
    let case = Case { setup: Setup { inside_witness: true, ..Setup::default() }, steps };
    let Prediction::Steps { steps, .. } = predict(&crate::model::profile::LINUX_6_18, &env, &case) else {
        panic!("skipped")
    };
    assert_eq!((steps[3].result, steps[3].rule), eperm("user-unmapped"));
}

#[test]
fn without_capabilities_only_the_own_uid_and_the_gid_after_deny() {
    let r = results(Privilege::Nobody, &[newuser()], &[UidForeign, GidOwn, UidOwn]);
    assert_eq!(r, [eperm(super::NEEDS_SETID), eperm(super::NEEDS_SETID), OK]);
    let r = results(Privilege::Nobody, &[newuser()], &[SetgroupsDeny, GidOwn]);
    assert_eq!(r, [OK, OK]);
    // Its own namespace: setgroups needs CAP_SYS_ADMIN there, which uid 65534 lacks.
    let r = results(Privilege::Nobody, &[], &[SetgroupsDeny]);
    assert_eq!(r, [(CallResult::Failure(Errno::EACCES), super::SETGROUPS_NEEDS_CAP_SYS_ADMIN)]);
}

#[test]
fn a_grandchild_and_one_address_beside_the_own_are_refused() {
    let r = results(Privilege::Root, &[newuser(), Step::WriteMaps, newuser()], &[UidOwn]);
    assert_eq!(r, [eperm(super::NOT_PARENT)]);
    let r = results(Privilege::UserNs, &[newuser()], &[UidTwoExtents, GidForeign, UidOwn]);
    assert_eq!(r, [eperm(super::OUTER_UNMAPPED), eperm(super::OUTER_UNMAPPED), OK]);
    let einval = (CallResult::Failure(Errno::EINVAL), crate::model::idmap::EXTENT_INVALID);
    assert_eq!(results(Privilege::Root, &[newuser()], &[UidOverlap, GidZeroCount]), [einval, einval]);
}

#[test]
fn a_namespace_another_euid_made_needs_the_witness_s_own_cap_sys_admin() {
    let prefix = [Step::Caps(CapsOp::KeepcapsNobody), newuser()];
    let r = results(Privilege::RootWithoutSysAdmin, &prefix, &[UidOwn]);
    assert_eq!(r, [eperm(super::MAP_NEEDS_CAP_SYS_ADMIN)]);
    // With CAP_SYS_ADMIN, CAP_SETUID lets root map its own uid 0, which leaves the caller's
    // 65534 unmapped.
    let (r, uid) = prediction(Privilege::Root, &prefix, &[UidOwn]);
    assert_eq!((r, uid), (vec![OK], 65534));
}

/// The reference state after NEWUSER with the witness as given: the rules no setup reaches.
fn decide_with(witness: impl Fn(&mut super::WitnessView), op: IdmapOp) -> (CallResult, &'static str) {
    let env = Environment::reference();
    let case = Case { setup: Setup { inside_witness: true, ..Setup::default() }, steps: vec![newuser()] };
    let mut state = crate::model::state::CallerState::after_setup(&env, &case.setup).unwrap();
    crate::model::predict_step(&crate::model::profile::LINUX_6_18, &env, &mut state, &newuser());
    witness(&mut state.idmap.witness);
    let e = super::decide(&env, &mut state, op);
    (e.result, e.rule)
}

#[test]
fn the_rules_of_witnesses_no_host_setup_makes() {
    let emfile = (CallResult::Failure(Errno::EMFILE), super::NOT_FORKED);
    assert_eq!(decide_with(|w| (w.fork_emfile, w.proc) = (true, false), SetgroupsDeny), emfile);
    let enoent = (CallResult::Failure(Errno::ENOENT), super::WITHOUT_PROC);
    assert_eq!(decide_with(|w| w.proc = false, UidOwn), enoent);
    let eacces = (CallResult::Failure(Errno::EACCES), super::OPEN_NEEDS_DAC);
    assert_eq!(decide_with(|w| (w.ids.0, w.cap_eff) = (1000, 0), UidOwn), eacces);
    let no_setfcap = |w: &mut super::WitnessView| w.cap_eff &= !(1 << crate::case::caps::CAP_SETFCAP);
    assert_eq!(decide_with(no_setfcap, UidOwn), eperm(super::ROOT_NEEDS_SETFCAP));
    assert_eq!(decide_with(no_setfcap, GidOwn), OK);
}
