//! The id map rules through `predict`, on the reference environment (root in the initial user
//! namespace, setgroups "allow").

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::RawFlags;
use crate::abi::flags::bits::NEWUSER;
use crate::case::idmap::IdmapOp::{self, *};
use crate::case::{Case, Privilege, Setup, Step};
use crate::env::Environment;
use crate::model::{Prediction, predict};

fn results(privilege: Privilege, prefix: &[Step], ops: &[IdmapOp]) -> Vec<(CallResult, &'static str)> {
    let env = Environment::reference();
    let mut steps = prefix.to_vec();
    steps.extend(ops.iter().map(|o| Step::Idmap(*o)));
    let case = Case { setup: Setup { privilege, ..Setup::default() }, steps };
    match predict(&crate::model::profile::LINUX_6_18, &env, &case) {
        Prediction::Steps { steps, .. } => steps[prefix.len()..].iter().map(|e| (e.result, e.rule)).collect(),
        Prediction::Skip { reason } => panic!("skipped: {reason}"),
    }
}

/// `unshare(NEWUSER)` (shared with `model::idmap_witness`'s tests).
pub(crate) fn newuser() -> Step {
    Step::Unshare(RawFlags(NEWUSER))
}

/// An EPERM result with `rule`.
pub(crate) fn eperm(rule: &'static str) -> (CallResult, &'static str) {
    (CallResult::Failure(Errno::EPERM), rule)
}

/// Success.
pub(crate) const OK: (CallResult, &str) = (CallResult::Success, "success");

#[test]
fn only_the_own_id_once_and_the_gid_after_deny() {
    let r = results(Privilege::Nobody, &[newuser()], &[UidOwn, UidOwn, GidOwn]);
    assert_eq!(r, [OK, eperm(super::MAP_ALREADY_WRITTEN), eperm(super::GID_NEEDS_SETGROUPS_DENY)]);
    let r = results(Privilege::Nobody, &[newuser()], &[SetgroupsDeny, GidOwn, SetgroupsDeny]);
    assert_eq!(r, [OK, OK, eperm(super::SETGROUPS_AFTER_GID_MAP)]);
    // Root too: a writer inside the namespace has no CAP_SETUID over its parent.
    let r = results(Privilege::Root, &[newuser()], &[UidForeign, UidTwoExtents, UidOwn]);
    assert_eq!(r, [eperm(super::NEEDS_OWN_ID), eperm(super::NEEDS_OWN_ID), OK]);
}

#[test]
fn bad_extents_are_einval_after_the_permission_checks() {
    let einval = (CallResult::Failure(Errno::EINVAL), super::EXTENT_INVALID);
    assert_eq!(results(Privilege::Root, &[newuser()], &[UidOverlap, GidZeroCount]), [einval, einval]);
    assert_eq!(results(Privilege::Root, &[], &[UidOverlap]), [eperm(super::MAP_ALREADY_WRITTEN)]);
    let dropped = results(Privilege::Root, &[newuser(), Step::DropSysAdmin], &[UidZeroCount, SetgroupsDeny]);
    assert_eq!(
        dropped,
        [
            eperm(super::MAP_NEEDS_CAP_SYS_ADMIN),
            (CallResult::Failure(Errno::EACCES), super::SETGROUPS_NEEDS_CAP_SYS_ADMIN)
        ]
    );
}

#[test]
fn root_needs_setfcap_for_uid_0_and_write_maps_sees_the_writes() {
    let no_setfcap = [Step::Caps(crate::case::CapsOp::DropAllButSysAdmin), newuser()];
    let r = results(Privilege::Root, &no_setfcap, &[UidOwn, GidZeroCount]);
    assert_eq!(r[0], eperm(super::CAPS_ROOT_MAP_NEEDS_SETFCAP));
    let r = results(Privilege::Root, &[newuser(), Step::Idmap(UidOwn), Step::WriteMaps], &[GidOwn]);
    assert_eq!(r, [OK], "write_maps was refused at uid_map, after it wrote deny");
}
