//! The oracle: a pure model of unshare(2) that predicts, for every step of a
//! case, the result (success or which errno), which rule decided it, and
//! every change to the caller's observable state. No I/O, no `unsafe`.
//!
//! `predict(profile, env, case)` starts from the environment and the setup
//! ([`state::CallerState::after_setup`]), then for each step applies the
//! implications, walks the ordered check table ([`checks`]) and, on success,
//! the effects ([`effects`]); other steps follow [`steps`]. The state carries
//! from step to step.

#![deny(missing_docs)]

pub mod caps;
pub mod caps_state;
pub mod checks;
pub mod clone3;
pub mod effects;
pub mod expect;
pub mod facts;
pub mod guest;
pub mod idmap;
pub mod idmap_state;
pub mod idmap_witness;
pub mod inside;
pub mod inside_witness;
pub mod limits;
pub mod profile;
pub mod resources;
pub mod rules;
pub mod set_tid;
pub mod setns;
pub mod setns_missing;
pub mod setns_state;
pub mod state;
pub mod state_setup;
pub mod steps;

use serde::Serialize;

use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::{RawFlags, apply_implications};
use crate::abi::ns::NsLink;
use crate::case::{Case, Sibling, Step};
use crate::env::Environment;

pub use expect::{
    Creds, DevicesExpect, Expected, FAULT_RULE, FaultAlternative, FinalExpect, InsideExpect, KcmpExpect,
    KeptNamespaces, LinkExpect, PidExpect, SemExpect, SharingBefore, SiblingExpect,
};
pub use profile::KernelProfile;
pub use state::CallerState;

use state::Undo;

/// The model's answer for a whole case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Prediction {
    /// The setup cannot be built here; the case is skipped with this reason.
    Skip {
        /// Why.
        reason: String,
    },
    /// One expectation per step, and the final probes.
    Steps {
        /// In order.
        steps: Vec<Expected>,
        /// The behavioural probes after the last step.
        final_probe: FinalExpect,
    },
}

fn sharing_before(state: &CallerState) -> SharingBefore {
    SharingBefore {
        files: state.files_shared(),
        fs: state.fs_shared(),
        mm: state.mm_shared(),
        sighand: state.sighand_shared_with_process(),
        threads: state.threads,
        undo_private: state.sem.is_some_and(|s| s.undo == Undo::Private) && state.threads == 1,
        undo_shared: state
            .sem
            .is_some_and(|s| s.undo == Undo::Shared || (s.undo == Undo::Private && state.threads > 1)),
    }
}

fn sibling_expectations(state: &CallerState) -> Vec<SiblingExpect> {
    state
        .siblings
        .iter()
        .map(|sib| {
            if !sib.pid_visible {
                // The sibling's pid number means nothing in the new pid namespace: usually no
                // process has it there (ESRCH), but it may be the caller itself or one of its
                // threads or children (kcmp then compares with that process), so nothing is modelled.
                let e = KcmpExpect::Unmodelled;
                return SiblingExpect { kind: sib.kind, kcmp: [e; 5], fds: e };
            }
            if !sib.kcmp_allowed {
                let e = KcmpExpect::Error(Errno::EPERM);
                return SiblingExpect { kind: sib.kind, kcmp: [e; 5], fds: e };
            }
            let same = |b: bool| if b { KcmpExpect::Same } else { KcmpExpect::Different };
            let mut kcmp = [KcmpExpect::Unmodelled; 5];
            let mut fds = KcmpExpect::Unmodelled;
            match sib.kind {
                Sibling::Files => {
                    kcmp[0] = same(sib.files);
                    // Private or not, every fd that existed before names the same open file description.
                    fds = KcmpExpect::Same;
                }
                Sibling::Fs => kcmp[1] = same(sib.fs),
                Sibling::Vm => kcmp[2] = same(sib.mm),
                Sibling::VmSighand => {
                    kcmp[2] = same(sib.mm);
                    kcmp[3] = same(sib.sighand);
                }
                Sibling::Sysvsem => kcmp[4] = same(sib.undo),
            }
            SiblingExpect { kind: sib.kind, kcmp, fds }
        })
        .collect()
}

struct Decided {
    effective: RawFlags,
    result: CallResult,
    rule: &'static str,
    also_failing: Vec<&'static str>,
    links: [LinkExpect; NsLink::COUNT],
    pid: PidExpect,
    cwd_changes: bool,
    clone3: Option<clone3::Clone3Expect>,
    fs_struct_kept: bool,
    root_detached: bool,
}

/// A failed call that changed nothing, decided by `rule`.
fn refused(effective: RawFlags, errno: Errno, rule: &'static str) -> Decided {
    Decided {
        effective,
        result: CallResult::Failure(errno),
        rule,
        also_failing: Vec::new(),
        links: [LinkExpect::Unchanged; NsLink::COUNT],
        pid: PidExpect::Unchanged,
        cwd_changes: false,
        clone3: None,
        fs_struct_kept: true,
        root_detached: false,
    }
}

/// unshare as this environment answers it: a restriction found by the probes first (a
/// seccomp filter runs before the system call), then the kernel's own rules.
fn decide_unshare(profile: &KernelProfile, env: &Environment, state: &mut CallerState, flags: RawFlags) -> Decided {
    match limits::filtered(profile, env, flags) {
        None => decide_kernel(profile, env, state, flags),
        Some(Ok(errno)) => refused(flags, errno, limits::FILTER_RULE),
        Some(Err(reason)) => {
            state.unknowable.get_or_insert(reason);
            refused(flags, Errno::EPERM, limits::FILTER_RULE)
        }
    }
}

/// unshare as the kernel's own rules answer it.
fn decide_kernel(profile: &KernelProfile, env: &Environment, state: &mut CallerState, flags: RawFlags) -> Decided {
    let effective = profile.unknown_bits.apply(apply_implications(flags, profile.implications), profile.valid_mask);
    let ctx = checks::Ctx { f: effective.0, valid_mask: profile.valid_mask, state, env, profile };
    let failing = checks::all_failing(profile.checks, &ctx);
    let decided_at = failing.first().map_or(profile.checks.len(), |r| {
        profile.checks.iter().position(|c| std::ptr::eq(c, *r)).unwrap_or(profile.checks.len())
    });
    if let Some(reason) = limits::unknowable(profile.checks, &ctx, decided_at) {
        state.unknowable.get_or_insert(reason);
    }
    if let Some((first, rest)) = failing.split_first() {
        let root_detached = effects::failure_detaches_root(profile, state, effective, first);
        let mut links = [LinkExpect::Unchanged; NsLink::COUNT];
        if root_detached {
            effects::apply_detached_root(env, state, effective, &mut links);
        }
        return Decided {
            effective,
            result: CallResult::Failure(first.errno),
            rule: first.id,
            also_failing: rest.iter().map(|r| r.id).collect(),
            links,
            pid: PidExpect::Unchanged,
            cwd_changes: false,
            clone3: None,
            fs_struct_kept: true,
            root_detached,
        };
    }
    let fs_struct_kept = !effects::fs_struct_replaced(profile, state, effective);
    let links = effects::apply_unshare_success(profile, env, state, effective);
    Decided {
        effective,
        result: CallResult::Success,
        rule: "success",
        also_failing: Vec::new(),
        links,
        pid: PidExpect::Unchanged,
        cwd_changes: false,
        clone3: None,
        fs_struct_kept,
        root_detached: false,
    }
}

/// The `write_maps` step, and what it does to later id map writes ([`idmap::after_write_maps`]).
fn write_maps_step(state: &mut CallerState) -> steps::StepEffect {
    let e = steps::write_maps(state);
    let errno = match e.result {
        crate::abi::errno::CallResult::Failure(errno) => Some(errno),
        crate::abi::errno::CallResult::Success => None,
    };
    idmap::after_write_maps(state, e.result.is_success(), errno);
    e
}

/// Predicts one step from `state`, and updates `state` as the kernel would.
pub fn predict_step(profile: &KernelProfile, env: &Environment, state: &mut CallerState, step: &Step) -> Expected {
    // The contract facts probed at start (crate::env::facts) override the starting profile.
    let thread_links = env.call_probes.facts.adjust(profile);
    let mut adjusted = env.call_probes.facts.adjust(profile);
    // Read through a pidfd ioctl, pid_for_children names a pending pid namespace at once (the
    // link hides it until its first process exists): the observation of kernels that show it.
    if env.ns_observer == crate::abi::ns::NsObserver::PidfdIoctl {
        adjusted.pid_for_children_visible_at_once = true;
    }
    let profile = &adjusted;
    let before = sharing_before(state);
    // A thread_call step's thread reads its own links from /proc/thread-self, never through a
    // pidfd: it sees pid_for_children as the links show it (`thread_links`, without the override).
    let mut thread_call = None;
    let setns_before = setns::before(state);
    let d = match step {
        // Through int $0x80 the kernel gets the low 32 bits: the same contract for that word.
        Step::Unshare(_) | Step::UnshareInt80(_) => {
            decide_unshare(profile, env, state, step.unshare_word().expect("an unshare step"))
        }
        Step::Clone3(flags) => clone3::decide(profile, env, state, *flags),
        Step::Clone3SetTid(st) => clone3::decide_with(profile, env, state, st.flags, Some(st)),
        other => {
            let e = match other {
                Step::Fork => steps::fork(profile, state),
                Step::ForkExit => steps::fork_exit(profile, state),
                Step::WriteMaps => write_maps_step(state),
                Step::DropSysAdmin => steps::drop_sys_admin(state),
                Step::Chroot(kind) => steps::chroot(state, *kind),
                Step::SpawnThread => steps::spawn_thread(profile, state),
                Step::Caps(op) => caps::caps_step(env, state, *op),
                Step::ThreadCall(flags) => {
                    let (e, t) = caps::thread_call(profile, &thread_links, env, state, *flags);
                    thread_call = t;
                    e
                }
                Step::Setns(s) => setns_missing::pidfd_type_missing(env, s).unwrap_or_else(|| setns::decide(state, s)),
                Step::Idmap(op) => idmap::decide(state, *op),
                Step::WitnessIdmap(op) => idmap_witness::decide(env, state, *op),
                Step::Unshare(_) | Step::UnshareInt80(_) | Step::Clone3(_) | Step::Clone3SetTid(_) => {
                    unreachable!("handled above")
                }
            };
            Decided {
                effective: RawFlags(0),
                result: e.result,
                rule: e.rule,
                also_failing: Vec::new(),
                links: e.links,
                pid: e.pid,
                cwd_changes: e.cwd_changes,
                clone3: None,
                // A forked process has its own copy; no other step replaces the fs_struct.
                fs_struct_kept: !matches!(step, Step::Fork),
                root_detached: false,
            }
        }
    };
    setns::follow(state, step, setns_before, d.result, d.effective);
    let mut e = finish(profile, state, before, d);
    e.thread_call = thread_call;
    e
}

/// The expectation of a step decided as `d`, from the state after it.
fn finish(profile: &KernelProfile, state: &CallerState, before: SharingBefore, d: Decided) -> Expected {
    let semval = match state.sem {
        None => SemExpect::NoSemaphore,
        Some(s) if s.caller_in_ns => SemExpect::Value(s.value),
        Some(_) => SemExpect::Error(Errno::EINVAL),
    };
    Expected {
        effective_flags: d.effective,
        unknown_bits: d.effective.0 & !profile.valid_mask,
        result: d.result,
        rule: d.rule,
        also_failing: d.also_failing,
        links: d.links,
        creds: Creds { uid: state.uid, gid: state.gid, cap_eff: state.cap_eff },
        pid: d.pid,
        threads: state.threads,
        cwd_changes: d.cwd_changes,
        fs_struct_kept: d.fs_struct_kept,
        semval,
        siblings: sibling_expectations(state),
        before,
        proc_visible: state.proc_visible,
        root_detached: d.root_detached,
        clone3: d.clone3,
        fault_enomem: None,
        thread_call: None,
    }
}

/// An unshare of `flags` from `state` that an injected allocation failure (fail-nth) made
/// fail: ENOMEM, nothing changed (every allocation of ksys_unshare comes before its commit
/// point, and each error path frees what it made; spec §3, §5.6).
pub fn predict_fault_enomem(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
) -> Expected {
    let profile = &env.call_probes.facts.adjust(profile);
    let before = sharing_before(state);
    let effective = profile.unknown_bits.apply(apply_implications(flags, profile.implications), profile.valid_mask);
    finish(profile, state, before, refused(effective, Errno::ENOMEM, expect::FAULT_RULE))
}

/// Predicts one unshare call (a convenience for tests and tools).
pub fn predict_unshare(
    profile: &KernelProfile,
    env: &Environment,
    state: &mut CallerState,
    flags: RawFlags,
) -> Expected {
    predict_step(profile, env, state, &Step::Unshare(flags))
}

/// Whether the caller's namespace of the type `bit` after `steps` is the one it had before
/// them: only a successful unshare with that bit (after implications) replaces it. This does
/// not depend on which `/proc/self/ns` links can be read here.
fn kept_namespace(case: &Case, steps: &[Expected], bit: u64) -> bool {
    // A setns step back into the namespace the case started in (setns::restores) undoes them.
    case.steps.iter().zip(steps).fold(true, |kept, (s, e)| {
        if s.is_unshare() && e.result.is_success() && e.effective_flags.intersects(bit) {
            false
        } else {
            kept || setns::restores(s, e.result, bit)
        }
    })
}

fn kept_namespaces(steps: &[Expected], case: &Case) -> KeptNamespaces {
    // `/` itself moves with a chroot step, or with a failed NEWNS on a kernel without the
    // unshare_fs fix: its mount id then says nothing about the mount namespace.
    let root_moves = case.steps.iter().any(|s| matches!(s, Step::Chroot(_))) || steps.iter().any(|e| e.root_detached);
    KeptNamespaces {
        mnt: (!root_moves).then(|| kept_namespace(case, steps, crate::abi::flags::bits::NEWNS)),
        ipc: Some(kept_namespace(case, steps, crate::abi::flags::bits::NEWIPC)),
        net: Some(kept_namespace(case, steps, crate::abi::flags::bits::NEWNET)),
        uts: Some(kept_namespace(case, steps, crate::abi::flags::bits::NEWUTS)),
    }
}

fn final_expect(env: &Environment, state: &CallerState, case: &Case, steps: &[Expected]) -> FinalExpect {
    let files = state.siblings.iter().find(|s| s.kind == Sibling::Files);
    let fs = state.siblings.iter().find(|s| s.kind == Sibling::Fs);
    FinalExpect {
        files_shared: files.map(|s| s.files),
        close_is_shared: files.filter(|_| state.fds > 0).map(|s| s.files),
        fs_shared: fs.map(|s| s.fs),
        sem_value_outside: state.sem.filter(|_| !case.setup.siblings.is_empty()).map(|s| s.value),
        kept: kept_namespaces(steps, case),
        proc_visible: state.proc_visible,
        inside: inside::expect(env, state, case, steps),
    }
}

/// Predicts every step of `case` on the kernel described by `profile`.
pub fn predict(profile: &KernelProfile, env: &Environment, case: &Case) -> Prediction {
    let mut state = match CallerState::after_setup(env, &case.setup) {
        Ok(s) => s,
        Err(reason) => return Prediction::Skip { reason },
    };
    if let Err(reason) = resources::fits(env, case) {
        return Prediction::Skip { reason };
    }
    if let Some(why) = &env.no_chroot_tree {
        let subdir = |s: &Step| matches!(s, Step::Chroot(crate::case::Chroot::Subdir));
        if case.setup.chroot == Some(crate::case::Chroot::Subdir) || case.steps.iter().any(subdir) {
            return Prediction::Skip { reason: format!("the sandbox has no chroot tree ({why})") };
        }
    }
    if let Some(reason) = limits::setup_reason(profile, env, &case.setup) {
        return Prediction::Skip { reason };
    }
    if case.steps.iter().any(|s| matches!(s, Step::UnshareInt80(_)))
        && let Some(reason) = limits::int80_reason(env)
    {
        return Prediction::Skip { reason };
    }
    if let Some(reason) = guest::skip_reason(env, case) {
        return Prediction::Skip { reason };
    }
    setns::start(env, &case.setup, &mut state);
    if let Some(reason) = setns::skip_reason(env, &state, case) {
        return Prediction::Skip { reason };
    }
    let mut steps = Vec::with_capacity(case.steps.len());
    let mut before_last = None;
    for (i, step) in case.steps.iter().enumerate() {
        if i + 1 == case.steps.len() && case.setup.fail_nth.is_some() {
            before_last = Some(state.clone());
        }
        steps.push(predict_step(profile, env, &mut state, step));
        if let Some(reason) = state.unknowable.take() {
            return Prediction::Skip { reason: format!("step {}: {reason}", i + 1) };
        }
    }
    let final_probe = final_expect(env, &state, case, &steps);
    if let (Some(mut st), Some(Step::Unshare(flags))) = (before_last, case.steps.last()) {
        let alt = predict_fault_enomem(profile, env, &mut st, *flags);
        let mut alt_steps = steps.clone();
        alt_steps.pop();
        alt_steps.push(alt.clone());
        let alt_final = final_expect(env, &st, case, &alt_steps);
        if let Some(last) = steps.last_mut() {
            last.fault_enomem = Some(Box::new(expect::FaultAlternative { step: alt, final_probe: alt_final }));
        }
    }
    Prediction::Steps { steps, final_probe }
}

#[cfg(test)]
mod tests;
