//! setns steps (issue 16 class 4): which namespace file or pidfd the step passes, the checks
//! of `setns` in the kernel's order with one rule per errno condition, and what a success
//! changes. Also how the other steps move the facts setns reads (namespace owners, the pid
//! namespace depth). Pure; no I/O.
//!
//! # References
//! kernel/nsproxy.c (`setns`, `check_setns_flags`, `validate_ns`, `validate_nsset`),
//! kernel/pid_namespace.c (`pidns_install`), kernel/time/namespace.c (`timens_install`),
//! kernel/utsname.c (`utsns_install`), kernel/user_namespace.c (`userns_install`),
//! fs/proc/namespaces.c and `pidns_for_children_get` (the link of a pid namespace without an
//! init cannot be opened). docs/kernel-vs-spec.md lists what the spec does not say.

#![deny(missing_docs)]

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::{RawFlags, bits};
use crate::abi::ns::NsLink;
use crate::case::{Case, SetnsStep, SetnsTarget, Setup, Step};
use crate::env::Environment;

use super::expect::{LinkExpect, PidExpect};
use super::state::{CallerState, PidChildren, SetnsOwner};
use super::steps::StepEffect;

/// Rule: the step opens its own `/proc/self/ns` link, and /proc is not reachable (ENOENT).
pub const LINK_WITHOUT_PROC: &str = "setns-link-without-proc";
/// Rule: pid_for_children names a pid namespace without an init yet: opening it is ENOENT.
pub const PID_FOR_CHILDREN_PENDING: &str = "setns-pid-for-children-pending";
/// Rule: a non-zero nstype that is not the type of the namespace file (EINVAL).
pub const NSTYPE_MISMATCH: &str = "setns-nstype-mismatch";
/// Rule: with a pidfd, nstype 0 or a bit that is no namespace type (EINVAL).
pub const PIDFD_FLAGS_INVALID: &str = "setns-pidfd-flags-invalid";
/// Rule: with a pidfd of a process that has exited and been reaped (ESRCH).
pub const PIDFD_EXITED: &str = "setns-pidfd-exited";
/// Rule: a time namespace is joined only by a process that shares its mm with nobody (EUSERS).
pub const TIME_NOT_SINGLE_THREADED: &str = "setns-time-not-single-threaded";
/// Rule: joining the user namespace one is already in (EINVAL).
pub const USERNS_SAME: &str = "setns-userns-same";
/// Rule: joining a user namespace from a multithreaded process (EINVAL).
pub const USERNS_MULTITHREADED: &str = "setns-userns-multithreaded";
/// Rule: joining a user namespace while the fs_struct is shared (EINVAL).
pub const USERNS_FS_SHARED: &str = "setns-userns-fs-shared";
/// Rule: joining a user namespace without CAP_SYS_ADMIN in it (EPERM).
pub const USERNS_NO_CAP_IN_TARGET: &str = "setns-userns-no-cap-in-target";
/// Rule: no CAP_SYS_ADMIN in the caller's own user namespace (EPERM).
pub const NEEDS_CAP_SYS_ADMIN: &str = "setns-needs-cap-sys-admin";
/// Rule: CAP_SYS_ADMIN in the caller's own user namespace but not in the one owning the target
/// (EPERM).
pub const OWNER_USERNS_NO_CAP: &str = "setns-owner-userns-no-cap";
/// Rule: a pid namespace that is neither the active one nor a descendant of it (EINVAL).
pub const PIDNS_NOT_DESCENDANT: &str = "setns-pidns-not-descendant";

/// Every rule, with its errno, for tables and tests.
pub const RULES: &[(&str, Errno)] = &[
    (LINK_WITHOUT_PROC, Errno::ENOENT),
    (PID_FOR_CHILDREN_PENDING, Errno::ENOENT),
    (NSTYPE_MISMATCH, Errno::EINVAL),
    (PIDFD_FLAGS_INVALID, Errno::EINVAL),
    (PIDFD_EXITED, Errno(libc::ESRCH)),
    (TIME_NOT_SINGLE_THREADED, Errno(libc::EUSERS)),
    (USERNS_SAME, Errno::EINVAL),
    (USERNS_MULTITHREADED, Errno::EINVAL),
    (USERNS_FS_SHARED, Errno::EINVAL),
    (USERNS_NO_CAP_IN_TARGET, Errno::EPERM),
    (NEEDS_CAP_SYS_ADMIN, Errno::EPERM),
    (OWNER_USERNS_NO_CAP, Errno::EPERM),
    (PIDNS_NOT_DESCENDANT, Errno::EINVAL),
];

/// The namespace-type bits `check_setns_flags` accepts with a pidfd.
pub const PIDFD_NS_BITS: u64 = bits::NEWNS
    | bits::NEWUTS
    | bits::NEWIPC
    | bits::NEWNET
    | bits::NEWUSER
    | bits::NEWPID
    | bits::NEWCGROUP
    | bits::NEWTIME;

const UNCHANGED: [LinkExpect; NsLink::COUNT] = [LinkExpect::Unchanged; NsLink::COUNT];

fn fail(errno: Errno, rule: &'static str) -> StepEffect {
    StepEffect {
        result: CallResult::Failure(errno),
        rule,
        links: UNCHANGED,
        pid: PidExpect::Unchanged,
        cwd_changes: false,
    }
}

fn ok(links: [LinkExpect; NsLink::COUNT]) -> StepEffect {
    StepEffect { result: CallResult::Success, rule: "success", links, pid: PidExpect::Unchanged, cwd_changes: false }
}

/// The word the kernel reads: setns takes an int.
fn nstype_word(step: &SetnsStep) -> u64 {
    step.nstype.0 & u64::from(u32::MAX)
}

/// The CAP_SYS_ADMIN checks of `utsns_install`, `pidns_install` and `timens_install`: in the
/// user namespace owning the target, and in the caller's own.
fn caps(state: &CallerState, owner: SetnsOwner) -> Option<StepEffect> {
    if !state.cap_sys_admin {
        return Some(fail(Errno::EPERM, NEEDS_CAP_SYS_ADMIN));
    }
    (owner != Some(state.setns.userns_gen)).then(|| fail(Errno::EPERM, OWNER_USERNS_NO_CAP))
}

/// `timens_install`: single-threaded (no other user of the mm), then the capabilities.
fn time_checks(state: &mut CallerState, owner: SetnsOwner) -> Option<StepEffect> {
    if state.threads > 1 || state.mm_shared() {
        return Some(fail(Errno(libc::EUSERS), TIME_NOT_SINGLE_THREADED));
    }
    // The host's time namespace, whose owner is not known here (`start`): only the check of
    // the caller's own capability can be decided.
    if state.cap_sys_admin && owner.is_none() && !state.setns.time_owner_known {
        state.unknowable.get_or_insert_with(|| TIME_OWNER_UNKNOWN.into());
    }
    caps(state, owner)
}

/// Why a setns into the host's time namespace cannot be predicted with capabilities.
const TIME_OWNER_UNKNOWN: &str = "setns into the host's time namespace: the executor runs in a user namespace, so \
                                  which user namespace owns it (and whether the caller has CAP_SYS_ADMIN over it) \
                                  is not known";

/// Predicts a setns step and updates `state` as the kernel would.
pub fn decide(state: &mut CallerState, step: &SetnsStep) -> StepEffect {
    let word = nstype_word(step);
    let Some(ns_flag) = step.target.ns_flag() else {
        if word == 0 || word & !PIDFD_NS_BITS != 0 {
            return fail(Errno::EINVAL, PIDFD_FLAGS_INVALID);
        }
        return fail(Errno(libc::ESRCH), PIDFD_EXITED);
    };
    if !step.target.opened_at_start() {
        if !state.proc_visible {
            return fail(Errno::ENOENT, LINK_WITHOUT_PROC);
        }
        if step.target == SetnsTarget::PidForChildren && state.pid_children == PidChildren::Pending {
            return fail(Errno::ENOENT, PID_FOR_CHILDREN_PENDING);
        }
    }
    if word != 0 && word != ns_flag {
        return fail(Errno::EINVAL, NSTYPE_MISMATCH);
    }
    match step.target {
        SetnsTarget::PidForChildren | SetnsTarget::StartPid => pidns_install(state, step.target),
        SetnsTarget::TimeForChildren | SetnsTarget::StartTime => timens_install(state, step.target),
        SetnsTarget::StartUts => {
            if let Some(e) = caps(state, state.setns.start_owner) {
                return e;
            }
            let mut links = UNCHANGED;
            links[NsLink::Uts.index()] = LinkExpect::AtCaseStart(NsLink::Uts);
            ok(links)
        }
        SetnsTarget::StartUser => userns_install(state),
        SetnsTarget::ExitedPidfd => unreachable!("handled above"),
    }
}

/// `pidns_install` for one's own pid_for_children or the start pid namespace.
fn pidns_install(state: &mut CallerState, target: SetnsTarget) -> StepEffect {
    if target == SetnsTarget::PidForChildren {
        if let Some(e) = caps(state, state.setns.pid_children_owner) {
            return e;
        }
        // Its own pid_for_children is the active namespace or its (dead) child: nothing changes.
        return ok(UNCHANGED);
    }
    if let Some(e) = caps(state, state.setns.start_owner) {
        return e;
    }
    if state.setns.pid_depth > 0 {
        return fail(Errno::EINVAL, PIDNS_NOT_DESCENDANT);
    }
    let mut links = UNCHANGED;
    if state.pid_children != PidChildren::Active {
        links[NsLink::PidForChildren.index()] = LinkExpect::AfterOf(NsLink::Pid);
    }
    state.pid_children = PidChildren::Active;
    state.setns.pid_children_owner = state.setns.pid_owner;
    ok(links)
}

/// `timens_install` for one's own time_for_children or the start time namespace: the caller
/// and its children both move.
fn timens_install(state: &mut CallerState, target: SetnsTarget) -> StepEffect {
    let own = target == SetnsTarget::TimeForChildren;
    let owner = if own { state.setns.time_children_owner } else { state.setns.start_time_owner };
    if let Some(e) = time_checks(state, owner) {
        return e;
    }
    let mut links = UNCHANGED;
    if !own {
        links[NsLink::Time.index()] = LinkExpect::AtCaseStart(NsLink::Time);
        links[NsLink::TimeForChildren.index()] = LinkExpect::AtCaseStart(NsLink::Time);
    } else if state.time_pending {
        links[NsLink::Time.index()] = LinkExpect::BeforeOf(NsLink::TimeForChildren);
    }
    state.time_pending = false;
    state.setns.time_owner = owner;
    state.setns.time_children_owner = owner;
    ok(links)
}

/// `userns_install`, in its order. The start namespace is the caller's own or an ancestor of
/// it, where no process below has capabilities: never a success.
fn userns_install(state: &CallerState) -> StepEffect {
    if state.setns.userns_gen == 0 {
        return fail(Errno::EINVAL, USERNS_SAME);
    }
    if state.threads > 1 {
        return fail(Errno::EINVAL, USERNS_MULTITHREADED);
    }
    if state.fs_shared() {
        return fail(Errno::EINVAL, USERNS_FS_SHARED);
    }
    fail(Errno::EPERM, USERNS_NO_CAP_IN_TARGET)
}

/// Before the steps: who owns the namespaces the case starts in.
pub fn start(env: &Environment, setup: &Setup, state: &mut CallerState) {
    // Every user namespace the setup makes is made without other namespaces: those it starts
    // in stay owned by the executor's user namespace (or above).
    let moved = state.userns_depth != env.userns_depth;
    let owner = (!moved).then_some(0);
    let ns = &mut state.setns;
    ns.start_owner = owner;
    ns.pid_owner = owner;
    ns.pid_children_owner = owner;
    // The sandbox makes no time namespace: it is the host's, owned by the initial user
    // namespace, which is the executor's only at depth 0.
    ns.time_owner_known = env.userns_depth == Some(0) || moved;
    let time = if env.userns_depth == Some(0) { owner } else { None };
    ns.start_time_owner = time;
    ns.time_owner = time;
    ns.time_children_owner = time;
    ns.pid_unmodelled = setup.foreign_pidns;
}

/// Why `case` is skipped here, if its setns steps cannot be judged.
pub fn skip_reason(env: &Environment, state: &CallerState, case: &Case) -> Option<String> {
    for step in &case.steps {
        let Step::Setns(s) = step else { continue };
        if env.seccomp_mode == 2 {
            return Some(
                "a seccomp filter is in force here; it may answer setns, which the probes (of unshare) say nothing \
                 about"
                    .into(),
            );
        }
        if let Some(link) = s.target.link()
            && !env.has_link(link)
        {
            return Some(format!("setns on ns/{link}: that link does not name namespaces reliably here"));
        }
        if state.setns.pid_unmodelled && matches!(s.target, SetnsTarget::StartPid | SetnsTarget::PidForChildren) {
            return Some("setns into a pid namespace after the foreign pid namespace setup is not modelled".into());
        }
    }
    None
}

/// What the facts setns reads were just before a step.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    pid_children: PidChildren,
    time_pending: bool,
}

/// Captures [`Before`] from `state`.
pub fn before(state: &CallerState) -> Before {
    Before { pid_children: state.pid_children, time_pending: state.time_pending }
}

/// How a step other than setns moved the facts setns reads: a successful unshare makes
/// namespaces owned by the caller's user namespace (a new one first, with NEWUSER), and a fork
/// enters the pending pid and time namespaces.
pub fn follow(state: &mut CallerState, step: &Step, was: Before, result: CallResult, effective: RawFlags) {
    if !result.is_success() {
        return;
    }
    let ns = &mut state.setns;
    if step.is_unshare() {
        if effective.intersects(bits::NEWUSER) {
            ns.userns_gen += 1;
        }
        let mine = Some(ns.userns_gen);
        if effective.intersects(bits::NEWPID) {
            ns.pid_children_owner = mine;
        }
        if effective.intersects(bits::NEWTIME) {
            ns.time_children_owner = mine;
        }
    }
    if matches!(step, Step::Fork) {
        if was.pid_children == PidChildren::Pending {
            ns.pid_owner = ns.pid_children_owner;
            ns.pid_depth += 1;
        }
        if was.time_pending {
            ns.time_owner = ns.time_children_owner;
        }
    }
}

/// Whether `step`, predicted as `result`, put the caller back into the namespace of type `bit`
/// it started in.
pub fn restores(step: &Step, result: CallResult, bit: u64) -> bool {
    matches!(step, Step::Setns(s) if s.target.opened_at_start() && s.target.ns_flag() == Some(bit))
        && result.is_success()
}

/// The descriptors and processes a case's setns steps need beyond the others' (`resources`):
/// one descriptor per step, one short-lived child for an exited pidfd.
pub fn need(case: &Case) -> (u32, u32) {
    let setns: Vec<&SetnsStep> =
        case.steps.iter().filter_map(|s| if let Step::Setns(x) = s { Some(x) } else { None }).collect();
    let tasks = u32::from(setns.iter().any(|s| s.target == SetnsTarget::ExitedPidfd));
    (setns.len() as u32, tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Privilege, Sibling};
    use crate::model::{Prediction, predict, profile::LINUX_6_18};

    fn run(setup: Setup, steps: &[Step]) -> Vec<crate::model::Expected> {
        let env = Environment::reference();
        match predict(&LINUX_6_18, &env, &Case { setup, steps: steps.to_vec() }) {
            Prediction::Steps { steps, .. } => steps,
            Prediction::Skip { reason } => panic!("unexpected skip: {reason}"),
        }
    }

    fn last(setup: Setup, steps: &[Step]) -> (CallResult, &'static str) {
        let e = run(setup, steps);
        let l = e.last().unwrap();
        (l.result, l.rule)
    }

    fn s(target: SetnsTarget, nstype: u64) -> Step {
        Step::Setns(SetnsStep { target, nstype: RawFlags(nstype) })
    }

    fn u(f: u64) -> Step {
        Step::Unshare(RawFlags(f))
    }

    const OK: CallResult = CallResult::Success;
    fn err(e: i32) -> CallResult {
        CallResult::Failure(Errno(e))
    }

    #[test]
    fn setns_back_into_the_start_pid_namespace_undoes_a_pending_newpid() {
        let steps = [u(bits::NEWPID), s(SetnsTarget::StartPid, bits::NEWPID), u(bits::NEWPID), Step::Fork];
        let e = run(Setup::default(), &steps);
        assert!(e.iter().all(|x| x.result == OK), "{:?}", e.iter().map(|x| x.rule).collect::<Vec<_>>());
        assert_eq!(e[1].links[NsLink::PidForChildren.index()], LinkExpect::AfterOf(NsLink::Pid));
        // Without the setns, the second NEWPID is spec §3 EINVAL (e).
        assert_eq!(last(Setup::default(), &[u(bits::NEWPID), u(bits::NEWPID)]).1, "pid-already-unshared");
    }

    #[test]
    fn every_errno_condition_has_a_case() {
        let d = Setup::default;
        let cases: Vec<(Setup, Vec<Step>, CallResult, &str)> = vec![
            (
                d(),
                vec![u(bits::NEWPID), s(SetnsTarget::PidForChildren, 0)],
                err(libc::ENOENT),
                PID_FOR_CHILDREN_PENDING,
            ),
            (d(), vec![s(SetnsTarget::StartUts, bits::NEWPID)], err(libc::EINVAL), NSTYPE_MISMATCH),
            (d(), vec![s(SetnsTarget::ExitedPidfd, 0)], err(libc::EINVAL), PIDFD_FLAGS_INVALID),
            (d(), vec![s(SetnsTarget::ExitedPidfd, 1)], err(libc::EINVAL), PIDFD_FLAGS_INVALID),
            (d(), vec![s(SetnsTarget::ExitedPidfd, bits::NEWNET)], err(libc::ESRCH), PIDFD_EXITED),
            (d(), vec![Step::SpawnThread, s(SetnsTarget::StartTime, 0)], err(libc::EUSERS), TIME_NOT_SINGLE_THREADED),
            (d(), vec![s(SetnsTarget::StartUser, 0)], err(libc::EINVAL), USERNS_SAME),
            (
                d(),
                vec![u(bits::NEWUSER), Step::SpawnThread, s(SetnsTarget::StartUser, 0)],
                err(libc::EINVAL),
                USERNS_MULTITHREADED,
            ),
            (d(), vec![u(bits::NEWUSER), s(SetnsTarget::StartUser, 0)], err(libc::EPERM), USERNS_NO_CAP_IN_TARGET),
            (d(), vec![Step::DropSysAdmin, s(SetnsTarget::StartUts, 0)], err(libc::EPERM), NEEDS_CAP_SYS_ADMIN),
            (d(), vec![u(bits::NEWUSER), s(SetnsTarget::StartUts, 0)], err(libc::EPERM), OWNER_USERNS_NO_CAP),
            (
                d(),
                vec![u(bits::NEWPID), Step::Fork, s(SetnsTarget::StartPid, 0)],
                err(libc::EINVAL),
                PIDNS_NOT_DESCENDANT,
            ),
        ];
        for (setup, steps, want, rule) in cases {
            assert_eq!(last(setup, &steps), (want, rule), "{steps:?}");
            assert!(RULES.iter().any(|(r, e)| *r == rule && want == CallResult::Failure(*e)), "{rule}");
        }
    }

    #[test]
    fn in_a_user_namespace_the_host_time_namespace_is_judged_only_where_its_owner_does_not_matter() {
        let mut env = Environment::reference();
        env.userns_depth = Some(1);
        let predict_on =
            |steps: &[Step]| predict(&LINUX_6_18, &env, &Case { setup: Setup::default(), steps: steps.to_vec() });
        assert!(matches!(predict_on(&[s(SetnsTarget::StartTime, 0)]), Prediction::Skip { .. }));
        let Prediction::Steps { steps, .. } = predict_on(&[Step::SpawnThread, s(SetnsTarget::StartTime, 0)]) else {
            panic!("EUSERS comes before the owner's capability check")
        };
        assert_eq!(steps[1].rule, TIME_NOT_SINGLE_THREADED);
        let Prediction::Steps { steps, .. } = predict_on(&[u(bits::NEWTIME), s(SetnsTarget::TimeForChildren, 0)])
        else {
            panic!("a time namespace of the case's own has a known owner")
        };
        assert_eq!(steps[1].result, OK);
    }

    #[test]
    fn under_a_seccomp_filter_setns_cases_are_skipped() {
        let mut env = Environment::reference();
        env.seccomp_mode = 2;
        let case = Case { setup: Setup::default(), steps: vec![s(SetnsTarget::StartUser, bits::NEWUSER)] };
        let Prediction::Skip { reason } = predict(&LINUX_6_18, &env, &case) else { panic!("judged under seccomp") };
        assert!(reason.contains("seccomp filter"), "{reason}");
    }

    #[test]
    fn a_vm_sibling_shares_the_mm_so_no_time_namespace_is_joined() {
        let setup = Setup { siblings: vec![Sibling::Vm], ..Setup::default() };
        assert_eq!(last(setup, &[s(SetnsTarget::TimeForChildren, 0)]), (err(libc::EUSERS), TIME_NOT_SINGLE_THREADED));
    }

    #[test]
    fn joining_time_for_children_moves_the_caller_and_ends_the_pending_state() {
        let e = run(Setup::default(), &[u(bits::NEWTIME), s(SetnsTarget::TimeForChildren, bits::NEWTIME), Step::Fork]);
        assert_eq!(e[1].links[NsLink::Time.index()], LinkExpect::BeforeOf(NsLink::TimeForChildren));
        // Nothing pending any more: the fork does not move time.
        assert_eq!(e[2].links[NsLink::Time.index()], LinkExpect::Unchanged);
    }

    #[test]
    fn namespaces_made_before_newuser_are_owned_above_it() {
        // NEWTIME, then NEWUSER: time_for_children belongs to the parent user namespace.
        let steps = [u(bits::NEWTIME), u(bits::NEWUSER), s(SetnsTarget::TimeForChildren, 0)];
        assert_eq!(last(Setup::default(), &steps), (err(libc::EPERM), OWNER_USERNS_NO_CAP));
        // Together, the new user namespace owns it.
        let steps = [u(bits::NEWUSER | bits::NEWTIME), s(SetnsTarget::TimeForChildren, 0)];
        assert_eq!(last(Setup::default(), &steps), (OK, "success"));
    }

    #[test]
    fn a_setup_user_namespace_owns_none_of_the_start_namespaces() {
        let setup = Setup { privilege: Privilege::UserNs, ..Setup::default() };
        assert_eq!(last(setup, &[s(SetnsTarget::StartUts, 0)]), (err(libc::EPERM), OWNER_USERNS_NO_CAP));
    }

    #[test]
    fn setns_back_keeps_the_uts_namespace_for_the_final_probes() {
        let env = Environment::reference();
        let case = Case { setup: Setup::default(), steps: vec![u(bits::NEWUTS), s(SetnsTarget::StartUts, 0)] };
        let Prediction::Steps { final_probe, .. } = predict(&LINUX_6_18, &env, &case) else { panic!("skip") };
        assert_eq!(final_probe.kept.uts, Some(true));
        let case = Case { steps: vec![u(bits::NEWUTS)], ..case };
        let Prediction::Steps { final_probe, .. } = predict(&LINUX_6_18, &env, &case) else { panic!("skip") };
        assert_eq!(final_probe.kept.uts, Some(false));
    }
}
