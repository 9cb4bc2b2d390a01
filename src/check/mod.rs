//! Judgement: the only module that sees both the model's prediction and the
//! executor's observation. `judge` turns one case into a [`CaseVerdict`];
//! [`Tally`] adds verdicts up per invariant.

#![deny(missing_docs)]

pub mod behaviour;
pub mod caps;
pub mod clone3;
pub mod expected;
pub mod fault;
pub mod guest_rows;
pub mod idmap;
pub mod inside;
pub mod inside_witness;
pub mod invariants;
pub mod known;
mod probe;
pub mod sharing;
pub mod step;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::abi::errno::{CallResult, Errno};
use crate::case::{Case, Step};
use crate::env::Environment;
use crate::exec::observe::{IntOrErrno, Outcome, StepObservation, Trace};
use crate::model::{Expected, Prediction};

use invariants::{CASE_COMPLETES, INVARIANTS, StepCtx};

/// One invariant that did not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// Invariant id.
    pub invariant: &'static str,
    /// Step index, if step-level.
    pub step: Option<usize>,
    /// What differed.
    pub detail: String,
    /// What the model expected of that step.
    pub expected: Option<Expected>,
    /// What the kernel did in that step.
    pub observed: Option<StepObservation>,
}

/// The judgement of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseVerdict {
    /// Invariant id -> number of checks that held in this case.
    pub held: BTreeMap<&'static str, u32>,
    /// Invariant id -> skip reason, for invariants applicable but unsupported here.
    pub skipped: BTreeMap<&'static str, String>,
    /// Everything that did not hold.
    pub violations: Vec<Violation>,
    /// The whole case was skipped (setup impossible here), with the reason.
    pub case_skipped: Option<String>,
    /// The harness could not judge the case (setup failed, executor error), with the reason.
    pub broken: Option<String>,
    /// At least one step reached the system call.
    pub reached_syscall: bool,
    /// Failures observed exactly as predicted: (rule id, errno).
    pub conditions: Vec<(&'static str, Errno)>,
    /// The known kernel bug that explains every violation of this case ([`known::label`]).
    pub known_bug: Option<&'static str>,
}

impl CaseVerdict {
    fn empty() -> CaseVerdict {
        CaseVerdict {
            held: BTreeMap::new(),
            skipped: BTreeMap::new(),
            violations: Vec::new(),
            case_skipped: None,
            broken: None,
            reached_syscall: false,
            conditions: Vec::new(),
            known_bug: None,
        }
    }

    /// A case skipped before running.
    pub fn skipped(reason: String) -> CaseVerdict {
        CaseVerdict { case_skipped: Some(reason), ..CaseVerdict::empty() }
    }

    /// A case the harness failed to run.
    pub fn broken(reason: String) -> CaseVerdict {
        CaseVerdict { broken: Some(reason), ..CaseVerdict::empty() }
    }

    /// True if some invariant was violated.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// True if `e` is what a step gets when a limit measured here ran out (EAGAIN from fork,
/// clone3 or pthread_create under RLIMIT_NPROC or pids.max; EMFILE from a descriptor the step
/// opens under RLIMIT_NOFILE), for steps that create processes or open descriptors.
fn limit_hit(env: &Environment, step: &Step, e: Errno) -> Option<String> {
    let r = &env.resources;
    let makes_tasks = matches!(step, Step::Fork | Step::ForkExit | Step::SpawnThread | Step::Clone3(_))
        || matches!(step, Step::Clone3SetTid(_))
        || matches!(step, Step::Setns(s) if s.target == crate::case::SetnsTarget::ExitedPidfd)
        || matches!(step, Step::ThreadCall(_))
        // The witness is forked before the first step; its step reports that fork's errno.
        || matches!(step, Step::WitnessIdmap(_));
    let opens_fds = matches!(
        step,
        Step::Clone3(_)
            | Step::Clone3SetTid(_)
            | Step::WriteMaps
            | Step::Setns(_)
            | Step::Idmap(_)
            | Step::WitnessIdmap(_)
    );
    if e == Errno::EAGAIN && makes_tasks && r.task_limit().is_some() {
        return Some(format!(
            "a step failed with EAGAIN under {} (another job or a dying process took the headroom):              the case is not judged from there on",
            r.task_limit_name()
        ));
    }
    if e.0 == libc::EMFILE && opens_fds && r.spare_fds().is_some() {
        return Some(format!(
            "a step failed with EMFILE under {}: the case is not judged from there on",
            r.fd_limit_name()
        ));
    }
    None
}

/// Why a whole case ran out of a measured limit in its setup, if it did (then it is skipped
/// with that reason, not broken: the limit, not the harness or the kernel, stopped it).
fn setup_limit_hit(env: &Environment, op: &str, e: Errno) -> Option<String> {
    let r = &env.resources;
    if matches!(e.0, libc::EAGAIN | libc::ENOMEM) && r.task_limit().is_some() {
        return Some(format!("the setup ran out of processes/threads under {}: {op} gave {e}", r.task_limit_name()));
    }
    if e.0 == libc::EMFILE && r.spare_fds().is_some() {
        return Some(format!("the setup ran out of file descriptors under {}: {op} gave {e}", r.fd_limit_name()));
    }
    // gVisor (2022 and 2024) now and then answers the setup's fresh IPC_PRIVATE segment with
    // ENOENT, which Linux never gives there (docs/gvisor.md, "Degrade, don't break"): the setup
    // did not happen, so nothing can be judged.
    if e.0 == libc::ENOENT && op.starts_with("SysV shm segments") {
        return Some(format!(
            "the kernel refused the setup's own SysV shm segment ({op} gave {e}, which Linux does not give for a \
             fresh IPC_PRIVATE segment); nothing of the case was run"
        ));
    }
    None
}

/// Why an invariant that reads /proc is skipped after a step that left the caller without it.
const NO_PROC: &str = "the caller no longer reaches /proc (a new empty mount namespace, or a root left detached by a \
                       failed NEWNS: spec §6 M12)";

/// Skips every invariant that applies to step `ctx` with `reason`.
fn skip_all(ctx: &StepCtx, v: &mut CaseVerdict, reason: &str) {
    for inv in INVARIANTS {
        if (inv.check)(ctx).is_some() {
            v.skipped.insert(inv.id, reason.to_string());
        }
    }
}

/// Why invariant `id` is not judged for the step of `ctx`, if it is not.
fn not_judged(ctx: &StepCtx, id: &'static str, unobserved: Option<&String>) -> Option<String> {
    let (exp, observed) = (ctx.expected, ctx.observed);
    if crate::model::limits::RESTRICTION_RULES.contains(&exp.rule)
        && !crate::model::limits::JUDGED_UNDER_RESTRICTION.contains(&id)
    {
        return Some(format!(
            "a restriction found at start decided the step ({}), so the kernel's own rules did not run",
            exp.rule
        ));
    }
    // A root detached by this very step is judged exactly by failure-changes-nothing.
    let judged_detached = exp.root_detached && id == "failure-changes-nothing";
    if !exp.proc_visible && invariants::NEEDS_PROC.contains(&id) && !judged_detached {
        return Some(NO_PROC.into());
    }
    // /proc/self/task gone with a detached root is what failure-changes-nothing judges.
    let gone_with_root =
        judged_detached && observed.after.threads_error == Some(Errno::ENOENT) && ctx.before.unobserved().is_none();
    if let Some(why) = unobserved
        && invariants::NEEDS_PROC.contains(&id)
        && !gone_with_root
    {
        return Some(format!("not observed: {why}"));
    }
    None
}

/// Judges every invariant that applies to the step of `ctx`, or says why it is not judged.
fn judge_invariants(ctx: &StepCtx, v: &mut CaseVerdict) {
    // A snapshot the child could not take (out of descriptors) is no observation.
    let unobserved = ctx.before.unobserved().or_else(|| ctx.observed.after.unobserved());
    for inv in INVARIANTS {
        let Some(result) = (inv.check)(ctx) else { continue };
        if let Some(reason) = not_judged(ctx, inv.id, unobserved.as_ref()).or_else(|| (inv.needs)(ctx.env)) {
            v.skipped.insert(inv.id, reason);
            continue;
        }
        record(v, inv.id, Some(ctx.index), result, Some(ctx.expected), Some(ctx.observed));
    }
}

/// Judges the steps; returns why judging stopped early when a step hit a measured limit.
fn judge_trace(
    env: &Environment,
    case: &Case,
    expected: &[Expected],
    trace: &Trace,
    v: &mut CaseVerdict,
) -> Option<String> {
    let mut before = &trace.before;
    let mut stopped: Option<String> = None;
    for (index, observed) in trace.steps.iter().enumerate() {
        let (Some(exp), Some(step)) = (expected.get(index), case.steps.get(index)) else {
            v.broken = Some(format!("the executor reported step {index}, which the case does not have"));
            return stopped;
        };
        let (flags, is_unshare) = match step.unshare_word() {
            Some(f) => (f, true),
            None => (crate::abi::flags::RawFlags(0), false),
        };
        let dropped_bits = match step {
            Step::UnshareInt80(f) => f.0 & !flags.0,
            _ => 0,
        };
        let ctx = StepCtx {
            env,
            index,
            flags,
            is_unshare,
            dropped_bits,
            expected: exp,
            before,
            initial: &trace.before,
            observed,
        };
        if stopped.is_none()
            && let CallResult::Failure(e) = observed.result
            && observed.result != exp.result
        {
            stopped = limit_hit(env, step, e);
        }
        if let Some(reason) = &stopped {
            skip_all(&ctx, v, reason);
            before = &observed.after;
            continue;
        }
        judge_invariants(&ctx, v);
        if let CallResult::Failure(e) = observed.result
            && observed.result == exp.result
        {
            v.conditions.push((exp.rule, e));
        }
        before = &observed.after;
    }
    stopped
}

/// The case-level differential invariant over whatever steps ran.
fn judge_pairs(env: &Environment, case: &Case, expected: &[Expected], trace: &Trace, v: &mut CaseVerdict) {
    // Links read after the caller lost /proc (UNSHARE_EMPTY_MNTNS) name no namespace.
    let unobserved = trace.steps.iter().find_map(|s| s.after.unobserved()).or_else(|| trace.before.unobserved());
    if let Some(why) = unobserved {
        if case.steps.iter().any(|s| s.clone3_flags().is_some()) {
            v.skipped.insert(clone3::AGREE_ON_NAMESPACES, format!("not observed: {why}"));
        }
        return;
    }
    if expected.iter().take(trace.steps.len()).any(|e| !e.proc_visible) {
        if case.steps.iter().any(|s| s.clone3_flags().is_some()) {
            v.skipped.insert(
                clone3::AGREE_ON_NAMESPACES,
                "the caller no longer reaches /proc (new empty mount namespace)".into(),
            );
        }
        return;
    }
    // Only the namespace types whose links name namespaces reliably here can be compared.
    let observable = clone3::NAMESPACE_LINKS
        .iter()
        .filter(|(_, a, b)| env.has_link(*a) && env.has_link(*b))
        .fold(0, |m, (bit, _, _)| m | bit);
    for (index, result) in clone3::agree_on_namespaces(case, expected, trace, observable) {
        record(v, clone3::AGREE_ON_NAMESPACES, Some(index), result, expected.get(index), trace.steps.get(index));
    }
}

fn record(
    v: &mut CaseVerdict,
    id: &'static str,
    step: Option<usize>,
    result: Result<(), String>,
    expected: Option<&Expected>,
    observed: Option<&StepObservation>,
) {
    match result {
        Ok(()) => *v.held.entry(id).or_default() += 1,
        Err(detail) => v.violations.push(Violation {
            invariant: id,
            step,
            detail,
            expected: expected.cloned(),
            observed: observed.cloned(),
        }),
    }
}

fn probe_is(got: Option<IntOrErrno>, want: bool) -> Result<(), String> {
    match got {
        Some(IntOrErrno::Value(v)) if v == i32::from(want) => Ok(()),
        other => Err(format!("expected {}, observed {other:?}", if want { "yes" } else { "no" })),
    }
}

/// Judges one executed case against its prediction.
pub fn judge(env: &Environment, case: &Case, prediction: &Prediction, outcome: &Outcome) -> CaseVerdict {
    let (expected, final_probe) = match prediction {
        Prediction::Skip { reason } => return CaseVerdict::skipped(reason.clone()),
        Prediction::Steps { steps, final_probe } => (steps, final_probe),
    };
    // A guest-only fail-nth case: the kernel's answer picks which admissible outcome is judged.
    let faulted = fault::chosen(expected, outcome);
    let (expected, final_probe) = match &faulted {
        Some((steps, fin)) => (steps.as_slice(), fin),
        None => (expected.as_slice(), final_probe),
    };
    let mut v = CaseVerdict::empty();
    v.reached_syscall = outcome.reached_syscall();
    let case_violation =
        |detail: String| Violation { invariant: CASE_COMPLETES, step: None, detail, expected: None, observed: None };
    match outcome {
        Outcome::Completed { trace } => {
            let stopped = judge_trace(env, case, expected, trace, &mut v);
            if stopped.is_none() {
                judge_pairs(env, case, expected, trace, &mut v);
            }
            if stopped.is_some() {
                // The state went another way than the model's from the failed step on.
            } else if trace.steps.len() != case.steps.len() && v.broken.is_none() {
                v.broken = Some(format!("{} of {} steps reported", trace.steps.len(), case.steps.len()));
            } else if trace.probe.is_none() {
                v.broken = Some("the final probes were not reported".into());
            } else {
                probe::judge_probe(final_probe, trace, &mut v);
                *v.held.entry(CASE_COMPLETES).or_default() += 1;
            }
        }
        Outcome::Timeout { timeout_ms, partial } => {
            if let Some(t) = partial {
                let _ = judge_trace(env, case, expected, t, &mut v);
            }
            v.violations.push(case_violation(format!(
                "timeout: still running after {timeout_ms} ms, killed with its process group ({} of {} steps reported)",
                partial.as_ref().map_or(0, |t| t.steps.len()),
                case.steps.len()
            )));
        }
        Outcome::Crash { signal, partial } => {
            if let Some(t) = partial {
                let _ = judge_trace(env, case, expected, t, &mut v);
            }
            v.violations.push(case_violation(format!("crash: the case's process died by signal {signal}")));
        }
        Outcome::SetupFailed { op, errno } => match setup_limit_hit(env, op, *errno) {
            Some(reason) => return CaseVerdict::skipped(reason),
            None => v.broken = Some(format!("setup failed: {op} gave {errno}")),
        },
        Outcome::Broken { reason } => v.broken = Some(reason.clone()),
    }
    v
}

/// Per-invariant counts over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InvariantTally {
    /// Checks made (held + violated).
    pub checked: u64,
    /// Checks that held.
    pub held: u64,
    /// Checks that failed.
    pub violated: u64,
    /// Applicable checks skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
}

/// Totals over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Cases generated.
    pub cases: u64,
    /// Cases where at least one step reached unshare.
    pub reached_syscall: u64,
    /// Cases skipped whole, by reason.
    pub cases_skipped: BTreeMap<String, u64>,
    /// Cases the harness could not judge, by reason.
    pub broken: BTreeMap<String, u64>,
    /// Cases with at least one violation.
    pub failed_cases: u64,
    /// Per invariant, in report order.
    pub invariants: BTreeMap<String, InvariantTally>,
    /// Failure conditions observed as predicted: "rule errno" -> count.
    pub conditions: BTreeMap<String, u64>,
}

impl Tally {
    /// A tally with every known invariant present (so zero counts show).
    pub fn new() -> Tally {
        let mut t = Tally::default();
        let case_level = [
            CASE_COMPLETES,
            clone3::AGREE_ON_NAMESPACES,
            behaviour::NAMESPACES_BY_BEHAVIOUR,
            inside::LIFE_INSIDE_NAMESPACES,
            inside_witness::INSIDE_CHANGES_STAY_INSIDE,
        ];
        for id in INVARIANTS.iter().map(|i| i.id).chain(case_level) {
            t.invariants.insert(id.to_string(), InvariantTally::default());
        }
        t
    }

    /// Adds one verdict.
    pub fn add(&mut self, v: &CaseVerdict) {
        self.cases += 1;
        self.reached_syscall += u64::from(v.reached_syscall);
        if let Some(r) = &v.case_skipped {
            *self.cases_skipped.entry(r.clone()).or_default() += 1;
        }
        if let Some(r) = &v.broken {
            *self.broken.entry(r.clone()).or_default() += 1;
        }
        self.failed_cases += u64::from(v.failed());
        for (id, n) in &v.held {
            let t = self.invariants.entry(id.to_string()).or_default();
            t.checked += u64::from(*n);
            t.held += u64::from(*n);
        }
        for viol in &v.violations {
            let t = self.invariants.entry(viol.invariant.to_string()).or_default();
            t.checked += 1;
            t.violated += 1;
        }
        for (rule, errno) in &v.conditions {
            *self.conditions.entry(format!("{rule} {errno}")).or_default() += 1;
        }
        for (id, reason) in &v.skipped {
            *self.invariants.entry(id.to_string()).or_default().skipped.entry(reason.clone()).or_default() += 1;
        }
    }

    /// Counts the outer sandbox's findings (`sandbox-namespaces-are-new`, on a kernel declared
    /// a throwaway, where the run went on) as violations of the run.
    pub fn add_environment(&mut self, env: &crate::env::Environment) {
        if env.sandbox_violations.is_empty() {
            return;
        }
        let t = self.invariants.entry(invariants::SANDBOX_NAMESPACES_ARE_NEW.to_string()).or_default();
        t.checked += env.sandbox_violations.len() as u64;
        t.violated += env.sandbox_violations.len() as u64;
    }

    /// Total violations.
    pub fn violations(&self) -> u64 {
        self.invariants.values().map(|t| t.violated).sum()
    }

    /// Total broken cases.
    pub fn broken_cases(&self) -> u64 {
        self.broken.values().sum()
    }

    /// Exit status: 1 if anything was violated, 2 if any case was broken (ORed), else 0.
    pub fn exit_code(&self) -> i32 {
        let mut code = 0;
        if self.violations() > 0 {
            code |= 1;
        }
        if self.broken_cases() > 0 {
            code |= 2;
        }
        code
    }
}

#[cfg(test)]
mod tests;
