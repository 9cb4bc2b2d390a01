//! Capabilities other than CAP_SYS_ADMIN, and unshare from a thread other than the main one
//! (issue 16 class 5): the `caps` and `thread_call` steps.
//!
//! * A `drop-*` operation removes capabilities from the effective, permitted and inheritable
//!   sets (`cap_capset` allows any shrinking). None of them is CAP_SYS_ADMIN, so unshare's
//!   answer does not move: `ns_capable(CAP_SYS_ADMIN)` reads the effective set and NEWUSER
//!   needs no capability at all (`create_user_ns`; spec §2.2 steps 7 and 8a).
//! * `bound-all-but-sys-admin` is `PR_CAPBSET_DROP` per capability: `cap_prctl_drop` wants
//!   CAP_SETPCAP in the caller's user namespace (EPERM, checked before `cap_valid`). The
//!   bounding set is not read by unshare; NEWUSER gives the new credentials a full one
//!   (`set_cred_user_ns`).
//! * `keepcaps-nobody` is `PR_SET_KEEPCAPS` then `setresuid(65534)`: `make_kuid` first
//!   (EINVAL when 65534 has no mapping in the caller's user namespace), then CAP_SETUID
//!   unless 65534 is already the uid (`__sys_setresuid`); leaving uid 0 clears the effective
//!   set and, with keepcaps, keeps the permitted one (`cap_emulate_setxuid`).
//! * `raise` copies the permitted set into the effective one (always allowed).
//! * Dropping CAP_SETFCAP matters later: a user namespace made without it cannot map the
//!   parent's uid 0 ([`root_map_refused`]).
//! * thread_call: `pthread_create` (its own rules, `steps::spawn_thread`), then the thread's
//!   unshare judged from the caller's state with the new thread counted: THREAD, SIGHAND, VM
//!   and NEWUSER (which implies THREAD) fail with EINVAL (`check_unshare_flags`); anything
//!   else changes the thread's own nsproxy, fs_struct or fd table (`ksys_unshare` works on
//!   `current`), never the main thread's.
//!
//! kcmp against a sibling (`ptrace_may_access`, READ_REALCREDS) needs the same uid and a
//! permitted set that contains the sibling's (`cap_ptrace_access_check`), or CAP_SYS_PTRACE
//! in the effective set. The siblings were cloned from the caller, so their permitted set is
//! what the caller had then; it only shrinks afterwards (or NEWUSER, which denies kcmp anyway).

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::abi::flags::RawFlags;
use crate::case::CapsOp;
use crate::case::caps::{CAP_SETPCAP, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAPS_NOBODY};
use crate::env::Environment;

use super::expect::{PidExpect, ThreadCallExpect};
use super::profile::KernelProfile;
use super::state::CallerState;
use super::steps::{StepEffect, UNCHANGED, fail, ok, spawn_thread};

/// Rule: `bound-all-but-sys-admin` without CAP_SETPCAP.
pub const BOUND_NEEDS_SETPCAP: &str = "caps-bound-needs-cap-setpcap";
/// Rule: `keepcaps-nobody` where uid 65534 has no mapping.
pub const NOBODY_UNMAPPED: &str = "caps-nobody-unmapped";
/// Rule: `keepcaps-nobody` without CAP_SETUID.
pub const SETUID_NEEDS_CAP: &str = "caps-setresuid-needs-cap-setuid";

/// Rule: WriteMaps maps the parent's uid 0, but the namespace's creator had no CAP_SETFCAP
/// (decided in `steps::write_maps`).
pub use super::steps::CAPS_ROOT_MAP_NEEDS_SETFCAP as ROOT_MAP_NEEDS_SETFCAP;

/// At a successful NEWUSER, from the caller's state before it: the new namespace's uid_map
/// will refuse the map `0 0 1` that WriteMaps writes. `create_user_ns` records
/// `parent_could_setfcap` from the creator's effective set; `verify_root_map` refuses an
/// extent whose lower id is 0 when the writer is in that namespace and the flag is false
/// (EPERM from `map_write`, after the "already written" check).
pub fn root_map_refused(state: &CallerState) -> bool {
    state.uid == 0 && !state.has_cap(crate::case::caps::CAP_SETFCAP)
}

/// The permitted set as the model knows it.
fn permitted(state: &CallerState) -> u64 {
    state.cap_eff | state.caps.prm_only
}

/// kcmp against the siblings after the caller's permitted set lost `lost` bits or its uid
/// moved away from theirs: allowed only with CAP_SYS_PTRACE in the effective set.
fn kcmp_after(state: &mut CallerState, lost_or_uid_moved: bool) {
    if lost_or_uid_moved && !state.has_cap(CAP_SYS_PTRACE) {
        state.siblings.iter_mut().for_each(|s| s.kcmp_allowed = false);
    }
}

/// One `caps` step.
pub fn caps_step(env: &Environment, state: &mut CallerState, op: CapsOp) -> StepEffect {
    match op {
        CapsOp::BoundAllButSysAdmin => {
            if !state.has_cap(CAP_SETPCAP) {
                return fail(Errno::EPERM, BOUND_NEEDS_SETPCAP);
            }
        }
        CapsOp::KeepcapsNobody => {
            // 65534 is mapped in the executor's own user namespace when the probe saw it; in any
            // user namespace a step or the setup made, only the one id of the maps is.
            if env.userns_depth.is_none() {
                state.unknowable.get_or_insert(
                    "the executor's user-namespace depth is unknown, so whether uid 65534 is mapped here is too".into(),
                );
            }
            if !(env.nobody_mapped && state.userns_depth == env.userns_depth) {
                return fail(Errno::EINVAL, NOBODY_UNMAPPED);
            }
            if state.uid != CAPS_NOBODY && !state.has_cap(CAP_SETUID) {
                return fail(Errno::EPERM, SETUID_NEEDS_CAP);
            }
            if state.uid == 0 {
                state.caps.prm_only = permitted(state);
                state.cap_eff = 0;
                state.cap_sys_admin = false;
                kcmp_after(state, true);
            }
            state.uid = CAPS_NOBODY;
        }
        CapsOp::Raise => {
            if state.caps.prm_only != 0 && state.siblings.iter().any(|s| !s.kcmp_allowed && s.pid_visible) {
                state
                    .unknowable
                    .get_or_insert("kcmp against a sibling after capabilities came back is not modelled".into());
            }
            state.cap_eff = permitted(state);
            state.caps.prm_only = 0;
            state.cap_sys_admin = state.has_cap(CAP_SYS_ADMIN);
        }
        drop => {
            let mask = drop.drop_mask();
            let lost = permitted(state) & mask != 0;
            state.cap_eff &= !mask;
            state.caps.prm_only &= !mask;
            kcmp_after(state, lost);
        }
    }
    ok(UNCHANGED, PidExpect::Unchanged)
}

/// One `thread_call` step: the main thread's effect (a thread more, nothing else) and, when
/// the thread started, what its own unshare does.
pub fn thread_call(
    profile: &KernelProfile,
    link_profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
) -> (StepEffect, Option<ThreadCallExpect>) {
    let spawned = spawn_thread(profile, state);
    if !spawned.result.is_success() {
        return (spawned, None);
    }
    // The thread starts as a copy of the main thread's credentials and namespaces, sharing its
    // fs_struct, fd table, mm, signal handlers and undo list; what its unshare changes is its
    // own, so the model's state (the main thread's) is left as the spawn made it.
    let mut thread = state.clone();
    let d = super::decide_unshare(link_profile, env, &mut thread, flags);
    if let Some(reason) = thread.unknowable.take() {
        state.unknowable.get_or_insert(reason);
    }
    let mut effect = ok(UNCHANGED, PidExpect::Unchanged);
    (effect.result, effect.rule) = (d.result, d.rule);
    let expect = ThreadCallExpect { effective_flags: d.effective, result: d.result, rule: d.rule, links: d.links };
    (effect, Some(expect))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::errno::CallResult;
    use crate::abi::flags::bits;
    use crate::case::Setup;

    fn root() -> (Environment, CallerState) {
        let env = Environment::reference();
        let state = CallerState::after_setup(&env, &Setup::default()).unwrap();
        (env, state)
    }

    #[test]
    fn keepcaps_keeps_the_permitted_set_for_raise() {
        let (env, mut s) = root();
        let full = s.cap_eff;
        let e = caps_step(&env, &mut s, CapsOp::KeepcapsNobody);
        assert!(e.result.is_success());
        assert_eq!((s.uid, s.cap_eff, s.cap_sys_admin), (CAPS_NOBODY, 0, false));
        caps_step(&env, &mut s, CapsOp::Raise);
        assert_eq!((s.cap_eff, s.cap_sys_admin), (full, true));
    }

    #[test]
    fn setuid_and_setpcap_drops_refuse_the_next_operation() {
        let (env, mut s) = root();
        caps_step(&env, &mut s, CapsOp::DropSetuid);
        let e = caps_step(&env, &mut s, CapsOp::KeepcapsNobody);
        assert_eq!((e.result, e.rule), (CallResult::Failure(Errno::EPERM), SETUID_NEEDS_CAP));
        caps_step(&env, &mut s, CapsOp::DropAllButSysAdmin);
        assert!(s.cap_sys_admin && s.cap_eff == 1 << CAP_SYS_ADMIN);
        let e = caps_step(&env, &mut s, CapsOp::BoundAllButSysAdmin);
        assert_eq!((e.result, e.rule), (CallResult::Failure(Errno::EPERM), BOUND_NEEDS_SETPCAP));
    }

    #[test]
    fn a_user_namespace_made_without_setfcap_refuses_the_root_map() {
        let (env, mut s) = root();
        let p = crate::model::profile::by_name("linux-6.18").unwrap();
        caps_step(&env, &mut s, CapsOp::DropAllButSysAdmin);
        crate::model::predict_unshare(p, &env, &mut s, RawFlags(bits::NEWUSER));
        let e = crate::model::steps::write_maps(&mut s);
        assert_eq!((e.result, e.rule), (CallResult::Failure(Errno::EPERM), ROOT_MAP_NEEDS_SETFCAP));
        // With CAP_SETFCAP the same maps are written.
        let (env, mut s) = root();
        caps_step(&env, &mut s, CapsOp::DropSetuid);
        crate::model::predict_unshare(p, &env, &mut s, RawFlags(bits::NEWUSER));
        assert!(crate::model::steps::write_maps(&mut s).result.is_success());
    }

    #[test]
    fn a_thread_cannot_unshare_newuser_but_can_newuts() {
        let (env, mut s) = root();
        let p = crate::model::profile::by_name("linux-6.18").unwrap();
        let (e, t) = thread_call(p, p, &env, &mut s, RawFlags(bits::NEWUSER));
        assert_eq!(e.result, CallResult::Failure(Errno::EINVAL));
        assert_eq!(t.unwrap().rule, e.rule);
        assert_eq!(s.threads, 2);
        let (e, t) = thread_call(p, p, &env, &mut s, RawFlags(bits::NEWUTS));
        assert!(e.result.is_success());
        assert_eq!(t.unwrap().links[crate::abi::ns::NsLink::Uts.index()], crate::model::LinkExpect::Fresh);
        assert_eq!(s.threads, 3);
    }
}
