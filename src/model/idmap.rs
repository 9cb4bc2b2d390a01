//! What writing one's own uid_map, gid_map and setgroups allows (issue 16 class 3; the
//! `idmap` step, `case::idmap`). Pure. Read off kernel/user_namespace.c (`proc_uid_map_write`,
//! `map_write`, `new_idmap_permitted`, `verify_root_map`, `proc_setgroups_open` and
//! `proc_setgroups_write`) and checked on 6.18, in this order:
//!
//! * the path lookup: no /proc, ENOENT;
//! * setgroups: opening it for writing needs CAP_SYS_ADMIN in the caller's user namespace
//!   (EACCES at open); "deny" once the gid map is written is EPERM (the initial namespace's and
//!   every namespace not made by a step have theirs written); "deny" twice is allowed;
//! * a map of a namespace not made by a step (the initial one has no parent, the others are
//!   written), or one written before: EPERM;
//! * no CAP_SYS_ADMIN in the namespace (the opener's effective set): EPERM;
//! * the lines: an extent of count 0 or inner ranges that overlap, EINVAL;
//! * `new_idmap_permitted`: a writer inside the namespace never holds CAP_SETUID or CAP_SETGID
//!   over its parent (`cap_capable` never looks upwards), so only one extent of count 1 that
//!   maps its own effective id passes (EPERM otherwise, root included); the parent's uid 0 also
//!   needs the creator's CAP_SETFCAP (`caps-root-map-needs-setfcap`); the own gid only while
//!   setgroups is "deny" in the namespace (EPERM otherwise).
//!
//! A user namespace made by unshare starts with its parent's setgroups state.

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::case::idmap::{IdmapFile, IdmapLines, IdmapOp};
use crate::env::Environment;

use super::state::CallerState;
use super::steps::{CAPS_ROOT_MAP_NEEDS_SETFCAP, StepEffect, UNCHANGED, fail, ok};

/// Rule: no /proc to write.
pub const WITHOUT_PROC: &str = "idmap-without-proc";
/// Rule: setgroups opened for writing without CAP_SYS_ADMIN.
pub const SETGROUPS_NEEDS_CAP_SYS_ADMIN: &str = "idmap-setgroups-needs-cap-sys-admin";
/// Rule: setgroups "deny" after the gid map was written.
pub const SETGROUPS_AFTER_GID_MAP: &str = "idmap-setgroups-after-gid-map";
/// Rule: the map was written before (or belongs to a namespace no step made).
pub const MAP_ALREADY_WRITTEN: &str = "idmap-map-already-written";
/// Rule: a map written without CAP_SYS_ADMIN in its namespace.
pub const MAP_NEEDS_CAP_SYS_ADMIN: &str = "idmap-map-needs-cap-sys-admin";
/// Rule: an extent of count 0, or overlapping extents.
pub const EXTENT_INVALID: &str = "idmap-extent-invalid";
/// Rule: anything but one extent of count 1 mapping the writer's own id.
pub const NEEDS_OWN_ID: &str = "idmap-unprivileged-needs-own-id";
/// Rule: the own gid while setgroups is still "allow".
pub const GID_NEEDS_SETGROUPS_DENY: &str = "idmap-gid-needs-setgroups-deny";

/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`).
const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;

pub use super::idmap_state::IdmapState;

/// The start: the setup's user namespaces are made with "deny" written (`write_id_maps`), and
/// so is the sandbox's own; the initial namespace allows; any other one is not known.
pub fn initial(env: &Environment, setup_made_userns: bool) -> IdmapState {
    let user_ino = env.baseline.ns[crate::abi::ns::NsLink::User.index()].inode();
    let setgroups_deny = if setup_made_userns || env.sandbox_user_ns {
        Some(true)
    } else if env.userns_depth == Some(0) || user_ino == Some(PROC_USER_INIT_INO) {
        Some(false)
    } else {
        None
    };
    IdmapState { setgroups_deny, ..IdmapState::default() }
}

/// At a successful NEWUSER, from the caller's ids before it: a new namespace with unwritten
/// maps and the parent's setgroups state.
pub fn on_newuser(state: &mut CallerState) {
    let old = state.idmap;
    state.idmap = IdmapState {
        made_by_step: true,
        uid_written: false,
        gid_written: false,
        setgroups_deny: old.setgroups_deny,
        outer: (state.uid, state.gid),
        caller_unmapped: false,
        newuser_steps: old.newuser_steps.saturating_add(1),
        first_outer: if old.newuser_steps == 0 { (state.uid, state.gid) } else { old.first_outer },
        witness: old.witness,
    };
}

/// After a `write_maps` step (setgroups "deny", then `0 own 1` to each map): what it left.
pub fn after_write_maps(state: &mut CallerState, succeeded: bool, errno: Option<Errno>) {
    let s = &mut state.idmap;
    if succeeded {
        (s.uid_written, s.gid_written, s.setgroups_deny) = (true, true, Some(true));
    } else if errno == Some(Errno::EPERM) && s.made_by_step && !s.gid_written {
        // "deny" went in before the uid map refused.
        s.setgroups_deny = Some(true);
    }
}

/// One `idmap` step.
pub fn decide(state: &mut CallerState, op: IdmapOp) -> StepEffect {
    if !state.proc_visible {
        return fail(Errno::ENOENT, WITHOUT_PROC);
    }
    let (file, lines) = op.target();
    let Some(lines) = lines else { return setgroups_deny(state) };
    let s = state.idmap;
    let written = if file == IdmapFile::Uid { s.uid_written } else { s.gid_written };
    if !s.made_by_step || written {
        return fail(Errno::EPERM, MAP_ALREADY_WRITTEN);
    }
    if !state.cap_sys_admin {
        return fail(Errno::EPERM, MAP_NEEDS_CAP_SYS_ADMIN);
    }
    if matches!(lines, IdmapLines::Overlap | IdmapLines::ZeroCount) {
        return fail(Errno::EINVAL, EXTENT_INVALID);
    }
    let own = if file == IdmapFile::Uid { s.outer.0 } else { s.outer.1 };
    let (extents, n) = lines.extents(own);
    if file == IdmapFile::Uid && state.caps.root_map_refused && extents[..n].iter().any(|e| e.1 == 0) {
        return fail(Errno::EPERM, CAPS_ROOT_MAP_NEEDS_SETFCAP);
    }
    if lines != IdmapLines::Own {
        return fail(Errno::EPERM, NEEDS_OWN_ID);
    }
    if file == IdmapFile::Gid {
        match s.setgroups_deny {
            Some(true) => {}
            Some(false) => return fail(Errno::EPERM, GID_NEEDS_SETGROUPS_DENY),
            None => {
                state.unknowable.get_or_insert_with(|| {
                    "the setgroups state of the harness's user namespace is not known, so whether gid_map takes the own gid is not either".into()
                });
            }
        }
    }
    if file == IdmapFile::Uid {
        (state.idmap.uid_written, state.uid) = (true, 0);
    } else {
        (state.idmap.gid_written, state.gid) = (true, 0);
    }
    state.ids_mapped = state.idmap.uid_written && state.idmap.gid_written && !state.idmap.caller_unmapped;
    // write_maps writes both maps: it can no longer succeed.
    state.maps_writable = false;
    ok(UNCHANGED, super::expect::PidExpect::Unchanged)
}

fn setgroups_deny(state: &mut CallerState) -> StepEffect {
    if !state.cap_sys_admin {
        return fail(Errno::EACCES, SETGROUPS_NEEDS_CAP_SYS_ADMIN);
    }
    if !state.idmap.made_by_step || state.idmap.gid_written {
        return fail(Errno::EPERM, SETGROUPS_AFTER_GID_MAP);
    }
    state.idmap.setgroups_deny = Some(true);
    ok(UNCHANGED, super::expect::PidExpect::Unchanged)
}

#[cfg(test)]
pub(crate) mod tests;
