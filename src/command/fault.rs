//! Test-only fault injection: make the checker see a wrong kernel result, to
//! show that the pipeline (judge, shrinking, `--save-failures`, `replay`)
//! catches and keeps a violation. Reached only through the hidden CLI option
//! `--inject-fault NAME` (of `run`, `replay` and `minimize`) or
//! [`crate::command::run::RunConfig::fault`]; never active otherwise.
//!
//! A fault rewrites the executor's [`Outcome`] in the harness process, after
//! the real run and before judgement; the kernel and the executor are not
//! touched.

use std::fmt;

use crate::abi::errno::{CallResult, Errno};
use crate::abi::ns::NsLink;
use crate::case::Case;
use crate::exec::observe::{NsValue, Outcome, Trace};

/// A lie told to the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A step with a bit unshare does not know that failed with EINVAL reads as a success.
    UnknownBitsSucceed,
    /// Every EPERM reads as EINVAL (a precedence mistake).
    EpermAsEinval,
    /// A failed step appears to have moved the caller to another UTS namespace.
    FailureLeaksUts,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 3] = [Fault::UnknownBitsSucceed, Fault::EpermAsEinval, Fault::FailureLeaksUts];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::UnknownBitsSucceed => "unknown-bits-succeed",
            Fault::EpermAsEinval => "eperm-as-einval",
            Fault::FailureLeaksUts => "failure-leaks-uts",
        }
    }

    /// Looks a fault up by name.
    pub fn by_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every name, comma separated (for error messages).
    pub fn names() -> String {
        Fault::ALL.map(Fault::name).join(", ")
    }

    /// Rewrites `outcome` (of `case`) as the fault dictates.
    pub fn apply(self, case: &Case, outcome: &mut Outcome) {
        match outcome {
            Outcome::Completed { trace } => self.apply_trace(case, trace),
            Outcome::Timeout { partial: Some(trace), .. } | Outcome::Crash { partial: Some(trace), .. } => {
                self.apply_trace(case, trace)
            }
            _ => {}
        }
    }

    fn apply_trace(self, case: &Case, trace: &mut Trace) {
        match self {
            Fault::UnknownBitsSucceed => {
                for (step, obs) in case.steps.iter().zip(trace.steps.iter_mut()) {
                    if let Some(flags) = step.unshare_word()
                        && flags.unknown_to_unshare() != 0
                        && obs.result == CallResult::Failure(Errno::EINVAL)
                    {
                        obs.result = CallResult::Success;
                    }
                }
            }
            Fault::EpermAsEinval => {
                for obs in &mut trace.steps {
                    if obs.result == CallResult::Failure(Errno::EPERM) {
                        obs.result = CallResult::Failure(Errno::EINVAL);
                    }
                }
            }
            Fault::FailureLeaksUts => leak_uts(trace),
        }
    }
}

/// From the first failed step on, every snapshot that still shows the original UTS
/// namespace shows a made-up one instead (so only the failed step itself "changed" it).
fn leak_uts(trace: &mut Trace) {
    let Some(first) = trace.steps.iter().position(|s| !s.result.is_success()) else {
        return;
    };
    let uts = NsLink::Uts.index();
    let original = if first == 0 { trace.before.ns[uts] } else { trace.steps[first - 1].after.ns[uts] };
    let fake = NsValue::Inode(u64::from(u32::MAX) + 77);
    for obs in &mut trace.steps[first..] {
        if obs.after.ns[uts] == original {
            obs.after.ns[uts] = fake;
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::by_name(s).ok_or_else(|| format!("unknown fault {s:?} (expected one of: {})", Fault::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::judge;
    use crate::env::Environment;
    use crate::exec::observe::StepObservation;
    use crate::model::{Prediction, predict, profile::LINUX_6_18};

    /// An outcome that does what the model predicts for results (links unchanged).
    fn honest(env: &Environment, case: &Case) -> (Prediction, Outcome) {
        let p = predict(&LINUX_6_18, env, case);
        let Prediction::Steps { steps, .. } = &p else { panic!("skip") };
        let before = env.baseline.clone();
        let steps =
            steps.iter().map(|e| StepObservation { result: e.result, after: before.clone(), child: None }).collect();
        (p, Outcome::Completed { trace: Trace { before, steps, probe: None } })
    }

    fn violated(fault: Fault, case: &Case) -> Vec<&'static str> {
        let env = Environment::reference();
        let (p, mut o) = honest(&env, case);
        assert!(judge(&env, case, &p, &o).violations.is_empty(), "the honest outcome of {case} must pass");
        fault.apply(case, &mut o);
        judge(&env, case, &p, &o).violations.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn every_fault_is_caught_by_the_checker() {
        let unknown = Case::unshare(&[1 << 32]);
        assert_eq!(violated(Fault::UnknownBitsSucceed, &unknown), ["unknown-bits-einval", "errno-matches-model"]);
        let mut eperm = Case::unshare(&[0x400_0000]);
        eperm.setup.privilege = crate::case::Privilege::RootWithoutSysAdmin;
        assert_eq!(violated(Fault::EpermAsEinval, &eperm), ["errno-matches-model"]);
        let failing = Case::unshare(&[1, 0]);
        assert_eq!(violated(Fault::FailureLeaksUts, &failing), ["unknown-bits-einval", "failure-changes-nothing"]);
    }

    #[test]
    fn faults_leave_unaffected_cases_alone() {
        for fault in Fault::ALL {
            assert!(violated(fault, &Case::unshare(&[0x400, 0])).is_empty());
        }
    }

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
        }
        assert!("nope".parse::<Fault>().unwrap_err().contains("unknown-bits-succeed"));
    }
}
