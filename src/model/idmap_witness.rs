//! What the inside witness may write into the caller's uid_map, gid_map and setgroups (issue 16
//! class 3, "what writing uid_map/gid_map allows", the `witness_idmap` step). Pure. The witness
//! stays in the user namespace the setup left, so after one NEWUSER step it is the parent
//! writer of `user_namespaces(7)`. Read off kernel/user_namespace.c (`proc_uid_map_write`,
//! `map_write`, `verify_root_map`, `new_idmap_permitted`, `proc_setgroups_open`) and checked on
//! 6.18, in this order:
//!
//! * the witness itself: its fork fails with EMFILE when the fd table is over a lowered
//!   `fs.nr_open` (a guest-only setup), and the step reports that errno;
//! * the caller's `/proc/self`, opened before the first step: ENOENT without /proc;
//! * opening the file for writing (mode 0644, owned by the caller's euid): the witness's own
//!   euid, or CAP_DAC_OVERRIDE (EACCES); setgroups also needs CAP_SYS_ADMIN over the caller's
//!   namespace (EACCES at open);
//! * a map: the writer must be in the namespace or its parent (EPERM after two NEWUSER steps),
//!   the namespace must have a parent and an unwritten map (EPERM), and the writer needs
//!   CAP_SYS_ADMIN over it (EPERM): the witness holds every capability over a namespace whose
//!   creator had its euid (`cap_capable`'s owner rule), else its own effective set counts;
//! * the lines: an extent of count 0 or overlapping inner ranges, EINVAL;
//! * the parent's uid 0 in a uid map needs CAP_SETFCAP in the writer's effective set (EPERM);
//! * one extent of count 1 mapping the writer's own euid passes when the writer's euid made the
//!   namespace (the gid only with setgroups "deny"); anything else needs CAP_SETUID or
//!   CAP_SETGID in the writer's namespace (EPERM);
//! * every outer id must be mapped in the writer's namespace (EPERM): the initial namespace maps
//!   all, the harness's sandbox and setup namespaces one id each.
//!
//! A map that leaves the caller's own id out makes it read the overflow id, and a later NEWUSER
//! fails (its ids are not mapped).

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::case::caps::{CAP_DAC_OVERRIDE, CAP_SETFCAP, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
use crate::case::idmap::{IdmapFile, IdmapLines, IdmapOp};
use crate::env::Environment;

use super::idmap::{EXTENT_INVALID, MAP_ALREADY_WRITTEN, SETGROUPS_AFTER_GID_MAP};
use super::idmap_state::WitnessView;
use super::state::CallerState;
use super::steps::{StepEffect, UNCHANGED, fail, ok};

/// Rule: the witness could not be forked: its fd table is over a lowered `fs.nr_open`.
pub const NOT_FORKED: &str = "witness-idmap-not-forked";
/// Rule: the caller's `/proc/self` could not be opened before the first step.
pub const WITHOUT_PROC: &str = "witness-idmap-without-proc";
/// Rule: the caller's file is not the witness's and it has no CAP_DAC_OVERRIDE.
pub const OPEN_NEEDS_DAC: &str = "witness-idmap-open-needs-dac-override";
/// Rule: setgroups opened for writing without CAP_SYS_ADMIN over the caller's namespace.
pub const SETGROUPS_NEEDS_CAP_SYS_ADMIN: &str = "witness-idmap-setgroups-needs-cap-sys-admin";
/// Rule: the caller's namespace is neither the witness's nor a child of it.
pub const NOT_PARENT: &str = "witness-idmap-not-parent";
/// Rule: no CAP_SYS_ADMIN over the caller's namespace.
pub const MAP_NEEDS_CAP_SYS_ADMIN: &str = "witness-idmap-map-needs-cap-sys-admin";
/// Rule: the parent's uid 0 without CAP_SETFCAP.
pub const ROOT_NEEDS_SETFCAP: &str = "witness-idmap-root-needs-setfcap";
/// Rule: more than the own id without CAP_SETUID or CAP_SETGID.
pub const NEEDS_SETID: &str = "witness-idmap-needs-setid";
/// Rule: an outer id the witness's namespace does not map.
pub const OUTER_UNMAPPED: &str = "witness-idmap-outer-id-unmapped";

/// The witness as the setup leaves the caller: forked after it, with its ids and capabilities.
pub fn at_start(env: &Environment, state: &CallerState, setup_made_userns: bool) -> WitnessView {
    let maps_other = if state.userns_depth == Some(0) {
        Some(true)
    } else if setup_made_userns || env.sandbox_user_ns {
        Some(false)
    } else {
        None
    };
    WitnessView {
        ids: (state.uid, state.gid),
        ids_mapped: state.ids_mapped,
        cap_eff: state.cap_eff,
        proc: state.proc_visible,
        fork_emfile: state.fd_table_over_nr_open,
        maps_other,
    }
}

/// One `witness_idmap` step.
pub fn decide(env: &Environment, state: &mut CallerState, op: IdmapOp) -> StepEffect {
    let w = state.idmap.witness;
    if w.fork_emfile {
        return fail(Errno::EMFILE, NOT_FORKED);
    }
    if !w.proc {
        return fail(Errno::ENOENT, WITHOUT_PROC);
    }
    if !w.ids_mapped {
        state.unknowable.get_or_insert_with(|| {
            "the inside witness's own ids are not mapped in its user namespace, so the lines it writes are not known".into()
        });
    }
    let steps = state.idmap.newuser_steps;
    // The caller's euid in the witness's namespace: it cannot change it inside a namespace a
    // step made (65534 is not mapped there), so the first NEWUSER's owner is the caller's euid.
    let caller_uid = if steps == 0 { state.uid } else { state.idmap.first_outer.0 };
    let same_euid = caller_uid == w.ids.0;
    if !same_euid && !w.has(CAP_DAC_OVERRIDE) {
        return fail(Errno::EACCES, OPEN_NEEDS_DAC);
    }
    // CAP_SYS_ADMIN over the caller's namespace: its own, or the owner's over a made one.
    let admin = w.has(CAP_SYS_ADMIN) || (steps > 0 && same_euid);
    let (file, lines) = op.target();
    let Some(lines) = lines else { return setgroups_deny(state, admin) };
    if steps > 1 {
        return fail(Errno::EPERM, NOT_PARENT);
    }
    let s = state.idmap;
    let uid = file == IdmapFile::Uid;
    if !s.made_by_step || if uid { s.uid_written } else { s.gid_written } {
        return fail(Errno::EPERM, MAP_ALREADY_WRITTEN);
    }
    if !admin {
        return fail(Errno::EPERM, MAP_NEEDS_CAP_SYS_ADMIN);
    }
    if matches!(lines, IdmapLines::Overlap | IdmapLines::ZeroCount) {
        return fail(Errno::EINVAL, EXTENT_INVALID);
    }
    let own = if uid { w.ids.0 } else { w.ids.1 };
    let (extents, n) = lines.extents(own);
    if uid && extents[..n].iter().any(|e| e.1 == 0) && !w.has(CAP_SETFCAP) {
        return fail(Errno::EPERM, ROOT_NEEDS_SETFCAP);
    }
    if !permitted(state, w, lines, uid, same_euid) {
        return fail(Errno::EPERM, NEEDS_SETID);
    }
    if lines != IdmapLines::Own {
        match w.maps_other {
            Some(true) => {}
            Some(false) => return fail(Errno::EPERM, OUTER_UNMAPPED),
            None => {
                state.unknowable.get_or_insert_with(|| {
                    "the inside witness's user namespace is not the harness's own, so which ids beside its own it maps is not known".into()
                });
            }
        }
    }
    written(env, state, uid, &extents[..n]);
    ok(UNCHANGED, super::expect::PidExpect::Unchanged)
}

/// "deny" to the caller's setgroups: no check of where the writer is, only CAP_SYS_ADMIN over
/// the namespace (`admin`, at open).
fn setgroups_deny(state: &mut CallerState, admin: bool) -> StepEffect {
    if !admin {
        return fail(Errno::EACCES, SETGROUPS_NEEDS_CAP_SYS_ADMIN);
    }
    if !state.idmap.made_by_step || state.idmap.gid_written {
        return fail(Errno::EPERM, SETGROUPS_AFTER_GID_MAP);
    }
    state.idmap.setgroups_deny = Some(true);
    ok(UNCHANGED, super::expect::PidExpect::Unchanged)
}

/// `new_idmap_permitted` past `verify_root_map`: the own id of the namespace's creator, or
/// CAP_SETUID / CAP_SETGID in the witness's namespace.
fn permitted(state: &mut CallerState, w: WitnessView, lines: IdmapLines, uid: bool, same_euid: bool) -> bool {
    if lines == IdmapLines::Own && same_euid {
        if uid {
            return true;
        }
        match state.idmap.setgroups_deny {
            Some(true) => return true,
            Some(false) => {}
            None if w.has(CAP_SETGID) => {}
            None => {
                state.unknowable.get_or_insert_with(|| {
                    "the setgroups state of the harness's user namespace is not known, so whether gid_map takes the own gid is not either".into()
                });
                return true;
            }
        }
    }
    w.has(if uid { CAP_SETUID } else { CAP_SETGID })
}

/// A written map: the caller reads the inner id of the extent holding its own outer id, or the
/// overflow id.
fn written(env: &Environment, state: &mut CallerState, uid: bool, extents: &[(u32, u32, u32)]) {
    let outer = if uid { state.idmap.outer.0 } else { state.idmap.outer.1 };
    let inner = extents.iter().find(|e| e.1 == outer && e.2 > 0).map(|e| e.0);
    state.idmap.caller_unmapped |= inner.is_none();
    if uid {
        state.idmap.uid_written = true;
        state.uid = inner.unwrap_or(env.overflow_uid);
    } else {
        state.idmap.gid_written = true;
        state.gid = inner.unwrap_or(env.overflow_gid);
    }
    state.ids_mapped = state.idmap.uid_written && state.idmap.gid_written && !state.idmap.caller_unmapped;
    state.maps_writable = false;
}

#[cfg(test)]
mod tests;
