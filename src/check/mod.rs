//! Judgement: the only module that sees both the model's prediction and the
//! executor's observation. `judge` turns one case into a [`CaseVerdict`];
//! [`Tally`] adds verdicts up per invariant.

#![deny(missing_docs)]

pub mod expected;
pub mod invariants;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::case::{Case, Step};
use crate::env::Environment;
use crate::model::{Expected, Prediction};
use crate::observe::{Outcome, StepObservation, Trace};

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
        }
    }

    /// A case skipped before running.
    pub fn skipped(reason: String) -> CaseVerdict {
        CaseVerdict {
            case_skipped: Some(reason),
            ..CaseVerdict::empty()
        }
    }

    /// A case the harness failed to run.
    pub fn broken(reason: String) -> CaseVerdict {
        CaseVerdict {
            broken: Some(reason),
            ..CaseVerdict::empty()
        }
    }

    /// True if some invariant was violated.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

fn judge_trace(
    env: &Environment,
    case: &Case,
    expected: &[Expected],
    trace: &Trace,
    v: &mut CaseVerdict,
) {
    let mut before = &trace.before;
    for (index, observed) in trace.steps.iter().enumerate() {
        let (Some(exp), Some(Step::Unshare(flags))) = (expected.get(index), case.steps.get(index))
        else {
            v.broken = Some(format!(
                "the executor reported step {index}, which the case does not have"
            ));
            return;
        };
        let ctx = StepCtx {
            env,
            index,
            flags: *flags,
            expected: exp,
            before,
            initial: &trace.before,
            observed,
        };
        for inv in INVARIANTS {
            let Some(result) = (inv.check)(&ctx) else {
                continue;
            };
            if let Some(reason) = (inv.needs)(env) {
                v.skipped.insert(inv.id, reason);
                continue;
            }
            match result {
                Ok(()) => *v.held.entry(inv.id).or_default() += 1,
                Err(detail) => v.violations.push(Violation {
                    invariant: inv.id,
                    step: Some(index),
                    detail,
                    expected: Some(exp.clone()),
                    observed: Some(observed.clone()),
                }),
            }
        }
        before = &observed.after;
    }
}

/// Judges one executed case against its prediction.
pub fn judge(
    env: &Environment,
    case: &Case,
    prediction: &Prediction,
    outcome: &Outcome,
) -> CaseVerdict {
    let expected = match prediction {
        Prediction::Skip { reason } => return CaseVerdict::skipped(reason.clone()),
        Prediction::Steps { steps } => steps,
    };
    let mut v = CaseVerdict::empty();
    v.reached_syscall = outcome.reached_syscall();
    let case_violation = |detail: String| Violation {
        invariant: CASE_COMPLETES,
        step: None,
        detail,
        expected: None,
        observed: None,
    };
    match outcome {
        Outcome::Completed { trace } => {
            judge_trace(env, case, expected, trace, &mut v);
            if trace.steps.len() != case.steps.len() && v.broken.is_none() {
                v.broken = Some(format!(
                    "{} of {} steps reported",
                    trace.steps.len(),
                    case.steps.len()
                ));
            } else {
                *v.held.entry(CASE_COMPLETES).or_default() += 1;
            }
        }
        Outcome::Timeout {
            timeout_ms,
            partial,
        } => {
            if let Some(t) = partial {
                judge_trace(env, case, expected, t, &mut v);
            }
            v.violations.push(case_violation(format!(
                "timeout: still running after {timeout_ms} ms, killed with its process group"
            )));
        }
        Outcome::Crash { signal, partial } => {
            if let Some(t) = partial {
                judge_trace(env, case, expected, t, &mut v);
            }
            v.violations.push(case_violation(format!(
                "crash: the case's process died by signal {signal}"
            )));
        }
        Outcome::SetupFailed { op, errno } => {
            v.broken = Some(format!("setup failed: {op} gave {errno}"));
        }
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
}

impl Tally {
    /// A tally with every known invariant present (so zero counts show).
    pub fn new() -> Tally {
        let mut t = Tally::default();
        for id in INVARIANTS.iter().map(|i| i.id).chain([CASE_COMPLETES]) {
            t.invariants
                .insert(id.to_string(), InvariantTally::default());
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
            let t = self
                .invariants
                .entry(viol.invariant.to_string())
                .or_default();
            t.checked += 1;
            t.violated += 1;
        }
        for (id, reason) in &v.skipped {
            *self
                .invariants
                .entry(id.to_string())
                .or_default()
                .skipped
                .entry(reason.clone())
                .or_default() += 1;
        }
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
