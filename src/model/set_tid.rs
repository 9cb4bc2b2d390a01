//! clone3's `set_tid` (issue 16 class 4): the rules that decide a clone3_set_tid step before
//! and inside `alloc_pid`, in the kernel's order, and the pids a successful child must have.
//!
//! * `copy_clone_args_from_user` (before `clone3_args_valid`): `set_tid_size` above
//!   `MAX_PID_NS_LEVEL` (32), a size without a list, a list with size 0: EINVAL.
//! * `alloc_pid` (after `copy_namespaces`, before the PIDNS_ADDING test that gives ENOMEM):
//!   a size above the child's pid-namespace level + 1 (EINVAL); then for each listed level,
//!   innermost first: the pid out of `1..pid_max` of that namespace (EINVAL); a pid other than
//!   1 in a namespace without an init yet (EINVAL); no CAP_CHECKPOINT_RESTORE or
//!   CAP_SYS_ADMIN over the user namespace owning that pid namespace, checked with the
//!   caller's credentials (EPERM); the pid already in use there (`idr_alloc` ENOSPC, returned
//!   as EEXIST). A failure frees the inner levels' numbers and leaves a pending namespace
//!   pending.
//!
//! What is known about each level (`Level`): a new (NEWPID) or pending namespace has no init,
//! uses no pid, and (measured on 6.18) a `pid_max` of `PID_MAX_LIMIT`; a namespace the case
//! forked into uses only a few small pids (the case makes far fewer than
//! [`FREE_FROM`] processes); for any other level only pid 1 is known to be in use. Where the
//! answer depends on what is not known, the case is skipped with the reason ([`splice`]).
//!
//! # References
//! kernel/fork.c `copy_clone_args_from_user`, `copy_process`; kernel/pid.c `alloc_pid`;
//! kernel/capability.c `checkpoint_restore_ns_capable`; docs/clone3.md "set_tid".

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::case::SetTidStep;
use crate::case::set_tid::SET_TID_BUFFER;

use super::checks::{Check, Ctx};
use super::expect::SetTidExpect;
use super::state::{CallerState, PidChildren, SetnsOwner};

/// `PID_MAX_LIMIT` on 64-bit kernels: no pid namespace's `pid_max` is larger.
pub const PID_MAX_LIMIT: i32 = 4 * 1024 * 1024;
/// `RESERVED_PIDS`: `kernel.pid_max` cannot be set below `RESERVED_PIDS + 1`, so pids up to
/// this one are below every namespace's `pid_max`.
pub const RESERVED_PIDS: i32 = 300;
/// In a pid namespace the case forked into, pids from here on are free: the case makes far
/// fewer processes than this, and a fresh namespace hands out pids from 1 upwards.
pub const FREE_FROM: i32 = 100;
/// `CAP_CHECKPOINT_RESTORE`.
pub const CAP_CHECKPOINT_RESTORE: u32 = 40;

/// Never true: the set_tid rows are decided by [`splice`], which reads the step's list (the
/// table's [`Ctx`] carries only the flag word).
fn by_set_tid(_: &Ctx) -> bool {
    false
}

macro_rules! row {
    ($id:literal, $step:literal, $errno:ident, $doc:literal) => {
        Check { id: $id, step: $step, errno: Errno::$errno, cond: by_set_tid, doc: $doc }
    };
}

/// The set_tid rules, in the kernel's order (ids as reported; `cond` unused, see [`splice`]).
#[rustfmt::skip]
pub const SET_TID_RULES: &[Check] = &[
    row!("set-tid-size-over-max", "copy_clone_args_from_user", EINVAL, "set_tid_size above MAX_PID_NS_LEVEL (32)"),
    row!("set-tid-size-without-array", "copy_clone_args_from_user", EINVAL, "set_tid_size without a set_tid array (a null pointer)"),
    row!("set-tid-array-without-size", "copy_clone_args_from_user", EINVAL, "a set_tid array with set_tid_size 0"),
    row!("set-tid-size-above-levels", "alloc_pid", EINVAL, "set_tid_size above the child's pid-namespace level + 1"),
    row!("set-tid-out-of-range", "alloc_pid", EINVAL, "a set_tid entry below 1 or not below that namespace's pid_max"),
    row!("set-tid-no-init-yet", "alloc_pid", EINVAL, "a set_tid entry other than 1 in a pid namespace without an init (new, or pending)"),
    row!("set-tid-no-cap-over-owner", "alloc_pid", EPERM, "no CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the user namespace owning that pid namespace"),
    row!("set-tid-in-use", "alloc_pid", EEXIST, "a set_tid entry already in use in that pid namespace (idr_alloc's ENOSPC)"),
];

fn rule(id: &str) -> &'static Check {
    SET_TID_RULES.iter().find(|r| r.id == id).unwrap_or(&SET_TID_RULES[0])
}

/// What is known about one pid namespace of the child's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// New (NEWPID) or pending: no init, no pid in use, pid_max `PID_MAX_LIMIT`.
    Empty { capable: bool },
    /// A pending namespace whose init is gone (or whose first process failed).
    Dead,
    /// A live namespace: pid 1 is in use; `pids_known`: it is one the case forked into.
    Live { capable: Option<bool>, pids_known: bool },
}

/// The caller may use set_tid over a namespace owned by `owner` (`None` inside: not known).
/// Without CAP_CHECKPOINT_RESTORE and CAP_SYS_ADMIN it may not: outside the foreign pid
/// namespace setup, no level of the chain is owned by a user namespace below the caller's.
fn capable(state: &CallerState, owner: Option<SetnsOwner>) -> Option<bool> {
    let caps = state.has_cap(super::state::CAP_SYS_ADMIN) || state.has_cap(CAP_CHECKPOINT_RESTORE);
    if !caps {
        return Some(false);
    }
    owner.map(|o| o == Some(state.setns.userns_gen))
}

/// The child's pid namespaces, innermost first, as far as `size` reaches; or why not known.
fn levels(state: &CallerState, flags: RawFlags, size: usize) -> Result<(u32, Vec<Level>), String> {
    let active = state.pid_level.ok_or("the caller's pid-namespace level is not known")?;
    let ns = &state.setns;
    let mut chain = Vec::new();
    if flags.intersects(bits::NEWPID) {
        // The new namespace is owned by the child's user namespace: a new one (whose creator,
        // the caller, has every capability in it) or the caller's.
        let new_user = flags.intersects(bits::NEWUSER);
        chain.push(Level::Empty { capable: new_user || capable(state, Some(Some(ns.userns_gen))) == Some(true) });
    } else {
        match state.pid_children {
            PidChildren::Active => {}
            PidChildren::Pending => {
                chain.push(Level::Empty { capable: capable(state, Some(ns.pid_children_owner)) == Some(true) })
            }
            PidChildren::Dead => chain.push(Level::Dead),
        }
    }
    let child_level = active + chain.len() as u32;
    let live = |owner: Option<SetnsOwner>, pids_known| Level::Live { capable: capable(state, owner), pids_known };
    // The setup's foreign pid namespace belongs to a user namespace a helper made below the
    // caller's: one the caller may own without any capability of its own (cap_capable).
    let unmodelled = ns.pid_unmodelled;
    if unmodelled {
        chain.push(Level::Live { capable: None, pids_known: false });
    } else {
        chain.push(live(Some(ns.pid_owner), ns.pid_depth > 0));
    }
    if ns.pid_depth == 1 && !unmodelled {
        chain.push(live(Some(ns.start_owner), false));
    }
    while chain.len() < size.min(child_level as usize + 1) {
        chain.push(live(None, false));
    }
    Ok((child_level, chain))
}

/// How far a set_tid step gets: the first set_tid rule that fails (`Ok(None)`: none), or why
/// that cannot be known here.
pub type Outcome = Result<Option<&'static Check>, String>;

/// The checks of `copy_clone_args_from_user`, before every other clone3 rule.
pub fn copy_args_failure(st: &SetTidStep) -> Option<&'static Check> {
    if st.size as usize > SET_TID_BUFFER {
        Some(rule("set-tid-size-over-max"))
    } else if st.null && st.size > 0 {
        Some(rule("set-tid-size-without-array"))
    } else if !st.null && st.size == 0 {
        Some(rule("set-tid-array-without-size"))
    } else {
        None
    }
}

/// The set_tid checks of `alloc_pid`, for a call that got that far. `level_exact`: the
/// caller's pid-namespace level is the kernel's (the nesting probe ended in ENOSPC), not only
/// an upper bound (a probe cut short by a pids limit, for one, shows less room than there is).
pub fn alloc_pid_failure(state: &CallerState, st: &SetTidStep, level_exact: bool) -> Outcome {
    let size = st.size as usize;
    if size == 0 {
        return Ok(None);
    }
    let active = state.pid_level.unwrap_or(0) as usize;
    let (child_level, chain) = levels(state, st.flags, size)?;
    if size > child_level as usize + 1 {
        return Ok(Some(rule("set-tid-size-above-levels")));
    }
    // With a bounded level the real one may be lower (down to 0 below the child's new levels):
    // a size that reaches past those levels may be above the real level + 1.
    let new_levels = child_level as usize - active;
    if !level_exact && size > new_levels + 1 {
        return Err(format!(
            "clone3 set_tid_size {size}: whether it is above the child's pid-namespace level + 1 is not known here (the \
             caller's pid-namespace level is only bounded by the nesting probe, at most {active})"
        ));
    }
    for (i, level) in chain.iter().take(size).enumerate() {
        let tid = st.tid(i);
        if let Some(r) = level_failure(*level, tid)? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// One level of `alloc_pid`'s loop: range, init, capability, then the pid itself.
fn level_failure(level: Level, tid: i32) -> Outcome {
    let unknown = |what: &str| Err(format!("clone3 set_tid {tid}: {what} is not known here"));
    let in_range = match level {
        _ if !(1..PID_MAX_LIMIT).contains(&tid) => false,
        _ if tid <= RESERVED_PIDS => true,
        Level::Empty { .. } | Level::Live { pids_known: true, .. } => true,
        Level::Dead | Level::Live { .. } => return unknown("the pid_max of a pid namespace the case did not make"),
    };
    if !in_range {
        return Ok(Some(rule("set-tid-out-of-range")));
    }
    match level {
        Level::Empty { .. } if tid != 1 => Ok(Some(rule("set-tid-no-init-yet"))),
        Level::Empty { capable: false } => Ok(Some(rule("set-tid-no-cap-over-owner"))),
        Level::Empty { capable: true } => Ok(None),
        Level::Dead => unknown("whether the dead pid namespace ever had an init, and which pids its zombies hold"),
        Level::Live { capable: None, .. } => {
            unknown("whether the caller has capabilities over the owner of an outer pid namespace")
        }
        Level::Live { capable: Some(false), .. } => Ok(Some(rule("set-tid-no-cap-over-owner"))),
        Level::Live { .. } if tid == 1 => Ok(Some(rule("set-tid-in-use"))),
        Level::Live { pids_known: true, .. } if tid >= FREE_FROM => Ok(None),
        Level::Live { .. } => unknown("whether that pid is in use in a pid namespace the case did not make"),
    }
}

/// Puts the set_tid rule that fails into clone3's `failing` rows at its place: the
/// `copy_clone_args_from_user` rules before every row (`reached` 0), the `alloc_pid` rules
/// just before the row at `alloc_pid_row` when no earlier row failed (`reached` then that
/// row). When the outcome depends on what is not known, returns why.
pub fn splice(
    state: &CallerState,
    level_exact: bool,
    st: &SetTidStep,
    failing: &mut Vec<&'static Check>,
    reached: &mut usize,
    alloc_pid_row: usize,
) -> Option<String> {
    if let Some(r) = copy_args_failure(st) {
        failing.insert(0, r);
        *reached = 0;
        return None;
    }
    if *reached < alloc_pid_row {
        return None;
    }
    match alloc_pid_failure(state, st, level_exact) {
        Ok(Some(r)) => {
            failing.insert(0, r);
            *reached = alloc_pid_row;
            None
        }
        Ok(None) => None,
        Err(why) => Some(why),
    }
}

/// The pids of a successful child: its own (the innermost entry) and, when the list reaches
/// the caller's pid namespace, the one clone3 returns.
pub fn expect(state: &CallerState, st: &SetTidStep) -> Option<SetTidExpect> {
    if st.size == 0 || st.null {
        return None;
    }
    let inner = st.flags.intersects(bits::NEWPID) || state.pid_children != PidChildren::Active;
    let caller_index = usize::from(inner);
    Some(SetTidExpect { own: st.tid(0), returned: (caller_index < st.size as usize).then(|| st.tid(caller_index)) })
}

#[cfg(test)]
mod tests;
