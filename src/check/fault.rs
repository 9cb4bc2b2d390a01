//! Judging a guest-only fail-nth case (`case::guest`): the model gives two
//! admissible outcomes for the armed step, its ordinary prediction and an
//! ENOMEM that changes nothing (`model::predict_fault_enomem`). The kernel's
//! answer picks the one that is judged: ENOMEM picks the failure, anything else
//! the ordinary prediction, so another errno is a violation of both
//! `errno-matches-model` and `fault-injection-enomem-or-predicted`.

use crate::abi::errno::{CallResult, Errno};
use crate::exec::observe::Outcome;
use crate::model::{Expected, FAULT_RULE, FinalExpect};

use super::step::StepCtx;

/// The expectations to judge `outcome` against, when the fault alternative applies: the
/// armed (last) step was observed failing with ENOMEM.
pub fn chosen(steps: &[Expected], outcome: &Outcome) -> Option<(Vec<Expected>, FinalExpect)> {
    let alt = steps.last()?.fault_enomem.as_ref()?;
    let trace = match outcome {
        Outcome::Completed { trace } => trace,
        Outcome::Timeout { partial: Some(t), .. } | Outcome::Crash { partial: Some(t), .. } => t,
        _ => return None,
    };
    let observed = trace.steps.get(steps.len() - 1)?;
    if observed.result != CallResult::Failure(Errno::ENOMEM) {
        return None;
    }
    let mut out = steps.to_vec();
    out.pop();
    out.push(alt.step.clone());
    Some((out, alt.final_probe))
}

/// `fault-injection-enomem-or-predicted`: under fail-nth the armed call returns what the model
/// predicts without the fault, or ENOMEM with nothing changed.
pub fn enomem_or_predicted(ctx: &StepCtx) -> Option<Result<(), String>> {
    let e = ctx.expected;
    if e.rule == FAULT_RULE {
        return Some(super::step::unchanged_state(ctx).map_err(|d| format!("an injected ENOMEM {d}")));
    }
    e.fault_enomem.as_ref()?;
    let got = ctx.observed.result;
    Some(if got == e.result {
        Ok(())
    } else {
        Err(format!(
            "under fail-nth the call must return the model's prediction ({}, rule {}) or ENOMEM; got {got}",
            e.result, e.rule
        ))
    })
}
