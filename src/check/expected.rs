//! `expected-matches-corpus`: a corpus file's pinned per-step outcome must
//! equal both the model's prediction and the kernel's result, so drift in
//! either shows up, and the report says which one drifted.
//!
//! The expectations in a file describe the reference machine of the spec
//! (Linux 6.18 as root, [`Environment::reference`]). The model is asked twice:
//! for the reference machine (a difference there is *model drift*) and for
//! this machine. When only this machine's prediction differs, the
//! expectation does not apply here; the check is then skipped with the
//! reason, never counted as held.
//!
//! [`Environment::reference`]: crate::env::Environment::reference

#![deny(missing_docs)]

use crate::exec::observe::{Outcome, Trace};
use serde::{Deserialize, Serialize};

use crate::abi::errno::CallResult;
use crate::model::{Expected, Prediction};

use super::{CaseVerdict, Violation};

/// The id of the check, as counted in reports.
pub const EXPECTED_MATCHES_CORPUS: &str = "expected-matches-corpus";

/// The result of the check on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedCheck {
    /// Model and kernel both did what the file says.
    Held,
    /// Something drifted; the text says which side, step by step.
    Violated(String),
    /// The expectation does not apply on this machine (the reason says why).
    Skipped(String),
}

/// What one step must do, per a corpus file (`corpus::CorpusFile::expected` stores a list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `"success"` or an errno name such as `"EINVAL"`.
    pub result: CallResult,
    /// The id of the model's check row that decides it (`"unknown-bit"`), or `"success"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

fn matches(e: &Expectation, got: &Expected) -> bool {
    e.result == got.result && e.rule.as_deref().is_none_or(|r| r == got.rule)
}

fn show_expectation(e: &Expectation) -> String {
    match &e.rule {
        Some(rule) => format!("{} (rule {rule})", e.result),
        None => e.result.to_string(),
    }
}

fn trace_of(outcome: &Outcome) -> Option<&Trace> {
    match outcome {
        Outcome::Completed { trace } => Some(trace),
        Outcome::Timeout { partial, .. } | Outcome::Crash { partial, .. } => partial.as_ref(),
        Outcome::SetupFailed { .. } | Outcome::Broken { .. } => None,
    }
}

/// Compares a file's `expected` with the model (`here`: this machine,
/// `reference`: the spec's machine) and the kernel's `outcome`. `None` when the
/// check cannot be made: the case was skipped or its outcome is missing or broken.
pub fn check_expected(
    expected: &[Expectation],
    here: &Prediction,
    reference: &Prediction,
    outcome: Option<&Outcome>,
) -> Option<ExpectedCheck> {
    let Prediction::Steps { steps: here, .. } = here else {
        return None;
    };
    let trace = outcome.and_then(trace_of)?;
    let reference: &[Expected] = match reference {
        Prediction::Steps { steps, .. } => steps,
        Prediction::Skip { .. } => &[],
    };
    let mut drift = Vec::new();
    let mut not_here = Vec::new();
    for (i, e) in expected.iter().enumerate() {
        let model_ref = reference.get(i);
        let model_here = here.get(i);
        let ref_ok = model_ref.is_some_and(|m| matches(e, m));
        let here_ok = model_here.is_some_and(|m| matches(e, m));
        let mut sides = Vec::new();
        if !ref_ok {
            sides.push(match model_ref {
                Some(m) => format!("model drifted: predicts {} (rule {})", m.result, m.rule),
                None => "model drifted: it skips the case on the reference machine".into(),
            });
        } else if !here_ok {
            if let Some(m) = model_here {
                not_here.push(format!(
                    "step {i}: the file expects {} but on this machine the model predicts {} (rule {})",
                    show_expectation(e),
                    m.result,
                    m.rule
                ));
            }
            continue;
        }
        match trace.steps.get(i).map(|o| o.result) {
            Some(got) if got == e.result => {}
            Some(got) => sides.push(format!("kernel drifted: returned {got}")),
            None => sides.push("kernel: the step was never reached".into()),
        }
        if !sides.is_empty() {
            drift.push(format!("step {i}: expected {}; {}", show_expectation(e), sides.join("; ")));
        }
    }
    Some(if !drift.is_empty() {
        ExpectedCheck::Violated(drift.join(" | "))
    } else if !not_here.is_empty() {
        ExpectedCheck::Skipped(format!(
            "this machine differs from the spec's reference machine the expectations are written for: {}",
            not_here.join("; ")
        ))
    } else {
        ExpectedCheck::Held
    })
}

/// Adds the check's result to a case's verdict.
pub fn record(check: ExpectedCheck, verdict: &mut CaseVerdict) {
    match check {
        ExpectedCheck::Held => *verdict.held.entry(EXPECTED_MATCHES_CORPUS).or_default() += 1,
        ExpectedCheck::Violated(detail) => verdict.violations.push(Violation {
            invariant: EXPECTED_MATCHES_CORPUS,
            step: None,
            detail,
            expected: None,
            observed: None,
        }),
        ExpectedCheck::Skipped(reason) => {
            verdict.skipped.insert(EXPECTED_MATCHES_CORPUS, reason);
        }
    }
}

/// The model's prediction as a file's `expected` (result and rule per step);
/// `None` if the model skips the case.
pub fn expectations_of(prediction: &Prediction) -> Option<Vec<Expectation>> {
    match prediction {
        Prediction::Steps { steps, .. } => {
            Some(steps.iter().map(|e| Expectation { result: e.result, rule: Some(e.rule.to_string()) }).collect())
        }
        Prediction::Skip { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::errno::{CallResult, Errno};
    use crate::case::{Case, Privilege};
    use crate::env::Environment;
    use crate::exec::observe::StepObservation;
    use crate::model::{predict, profile::LINUX_6_18};

    fn exp(result: CallResult, rule: &str) -> Expectation {
        Expectation { result, rule: Some(rule.into()) }
    }

    fn outcome(env: &Environment, results: &[CallResult]) -> Outcome {
        let before = env.baseline.clone();
        Outcome::Completed {
            trace: Trace {
                before: before.clone(),
                steps: results
                    .iter()
                    .map(|r| StepObservation { result: *r, after: before.clone(), child: None })
                    .collect(),
                probe: None,
            },
        }
    }

    const EINVAL: CallResult = CallResult::Failure(Errno::EINVAL);

    #[test]
    fn held_when_all_three_agree() {
        let env = Environment::reference();
        let case = Case::unshare(&[1 << 32]);
        let p = predict(&LINUX_6_18, &env, &case);
        let got = check_expected(&[exp(EINVAL, "unknown-bit")], &p, &p, Some(&outcome(&env, &[EINVAL])));
        assert_eq!(got, Some(ExpectedCheck::Held));
    }

    #[test]
    fn kernel_drift_and_model_drift_are_named() {
        let env = Environment::reference();
        let case = Case::unshare(&[1 << 32]);
        let p = predict(&LINUX_6_18, &env, &case);
        let o = outcome(&env, &[CallResult::Success]);
        let Some(ExpectedCheck::Violated(d)) = check_expected(&[exp(EINVAL, "unknown-bit")], &p, &p, Some(&o)) else {
            panic!("kernel drift not caught")
        };
        assert!(d.contains("kernel drifted: returned success"), "{d}");
        assert!(!d.contains("model drifted"), "{d}");
        let o = outcome(&env, &[EINVAL]);
        let Some(ExpectedCheck::Violated(d)) = check_expected(&[exp(CallResult::Success, "success")], &p, &p, Some(&o))
        else {
            panic!("model drift not caught")
        };
        assert!(d.contains("model drifted: predicts EINVAL (rule unknown-bit)"), "{d}");
        assert!(d.contains("kernel drifted: returned EINVAL"), "{d}");
        // A wrong rule alone is model drift only.
        let Some(ExpectedCheck::Violated(d)) = check_expected(&[exp(EINVAL, "thread-multithreaded")], &p, &p, Some(&o))
        else {
            panic!("rule drift not caught")
        };
        assert!(d.contains("model drifted") && !d.contains("kernel"), "{d}");
    }

    #[test]
    fn a_different_machine_is_a_skip_not_a_pass() {
        let reference = Environment::reference();
        let mut here = reference.clone();
        here.max_namespaces.insert("uts".into(), 0);
        let case = Case::unshare(&[0x400_0000]);
        let p_ref = predict(&LINUX_6_18, &reference, &case);
        let p_here = predict(&LINUX_6_18, &here, &case);
        let o = outcome(&here, &[CallResult::Failure(Errno::ENOSPC)]);
        let got = check_expected(&[exp(CallResult::Success, "success")], &p_here, &p_ref, Some(&o));
        assert!(matches!(&got, Some(ExpectedCheck::Skipped(r)) if r.contains("ENOSPC")), "{got:?}");
    }

    #[test]
    fn skipped_or_broken_cases_are_not_checked() {
        let env = Environment::reference();
        let mut case = Case::unshare(&[0]);
        case.setup.privilege = Privilege::Nobody;
        let p = predict(&LINUX_6_18, &env, &case);
        let skip = Prediction::Skip { reason: "x".into() };
        let e = [exp(CallResult::Success, "success")];
        assert_eq!(check_expected(&e, &skip, &p, None), None);
        let broken = Outcome::Broken { reason: "x".into() };
        assert_eq!(check_expected(&e, &p, &p, Some(&broken)), None);
        let mut v = CaseVerdict::broken("x".into());
        record(ExpectedCheck::Skipped("why".into()), &mut v);
        assert_eq!(v.skipped.get(EXPECTED_MATCHES_CORPUS).map(String::as_str), Some("why"));
    }
}
