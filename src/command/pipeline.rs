//! The pipeline of one case: predict with the model, execute on the kernel (unless the model
//! skips it), judge the outcome against the prediction ([`execute_case`]), with what a run asks
//! of it ([`RunConfig`]). Every command that runs a case goes through here or through the
//! pipelined executor pool (`command::pool`), which uses the same judgement
//! ([`judge_labelled`]) and the same account of a lost executor.

use std::time::{Duration, Instant};

use crate::case::Case;
use crate::check::{CaseVerdict, judge, known};
use crate::command::fault::Fault;
use crate::exec::executor::placement::{self, Pinning};
use crate::exec::observe::Outcome;
use crate::exec::{ExecError, Executor};
use crate::model::{KernelProfile, Prediction, predict};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Cases to generate.
    pub cases: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Watchdog timeout per case.
    pub timeout: Duration,
    /// The model's kernel profile.
    pub profile: &'static KernelProfile,
    /// Extra arguments for the executor (used by self-tests).
    pub executor_args: Vec<String>,
    /// Executors run in parallel.
    pub jobs: usize,
    /// Whether each executor is pinned to its own CPU (`exec::executor::placement`).
    pub pinning: Pinning,
    /// Test only: a lie told to the checker about every outcome (`--inject-fault`).
    pub fault: Option<Fault>,
}

impl RunConfig {
    /// The config of commands that run one case at a time on one unpinned executor (`flags`,
    /// `selftest`): no generator, no fault.
    pub fn one_at_a_time(profile: &'static KernelProfile, timeout: Duration, executor_args: Vec<String>) -> RunConfig {
        RunConfig { cases: 0, seed: 0, timeout, profile, executor_args, jobs: 1, pinning: Pinning::Off, fault: None }
    }

    /// Starts executor `slot` of `jobs`, with this run's executor arguments and CPU.
    ///
    /// # Errors
    /// [`ExecError`] if it cannot start.
    pub fn spawn_executor(&self, jobs: usize, slot: usize) -> Result<Executor, ExecError> {
        Executor::spawn_self(&placement::executor_args(&self.executor_args, self.pinning, jobs, slot)).map_err(|e| {
            match e {
                ExecError::Spawn { binary, cause } if cause.raw_os_error() == Some(libc::EAGAIN) => {
                    let hint = format!(
                        "executor {slot}: EAGAIN (RLIMIT_NPROC is {}, and it counts every process and thread of \
                         this uid): lower --jobs, stop other processes of this user, or raise the limit",
                        nproc_limit()
                    );
                    ExecError::Spawn { binary, cause: std::io::Error::new(cause.kind(), hint) }
                }
                e => e,
            }
        })
    }
}

/// The shortest watchdog timeout the command line accepts, in milliseconds. A case forks a
/// child that builds its setup (up to 32 nested pid namespaces, nested user namespaces,
/// siblings and threads) before its steps: 3000 cases (seed 5, debug build, 2 CPUs at load
/// 4 to 5) gave 304, 214, 60 and 0 watchdog timeouts with 10, 20, 50 and 100 ms. Below this
/// floor the watchdog would report its own impatience as `case-completes` violations, not
/// kernel behaviour; a trivial case is also timed at the start of each run ([`probe_timeout`]).
pub const MIN_TIMEOUT_MS: u64 = 100;

/// Predicts, runs (unless the prediction is a skip) and judges one case. If the executor
/// dies, it is restarted and the case is reported as broken.
///
/// # Errors
/// [`ExecError`] when a dead executor cannot be restarted.
pub fn check_case(executor: &mut Executor, config: &RunConfig, case: &Case) -> Result<CaseVerdict, ExecError> {
    execute_case(executor, config, case).map(|e| e.verdict)
}

/// One case predicted, run and judged, with everything seen on the way.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The model's prediction.
    pub prediction: Prediction,
    /// What the executor reported (after `config.fault`, if any); `None` if not run.
    pub outcome: Option<Outcome>,
    /// The judgement.
    pub verdict: CaseVerdict,
}

/// As [`check_case`], also returning the prediction and the outcome.
///
/// # Errors
/// As [`check_case`].
pub fn execute_case(executor: &mut Executor, config: &RunConfig, case: &Case) -> Result<Executed, ExecError> {
    let prediction = predict(config.profile, executor.environment(), case);
    let done = |outcome, verdict| Executed { prediction: prediction.clone(), outcome, verdict };
    if let Prediction::Skip { reason } = &prediction {
        return Ok(done(None, CaseVerdict::skipped(reason.clone())));
    }
    match executor.run(case, config.timeout) {
        Ok(mut outcome) => {
            if let Some(fault) = config.fault {
                fault.apply(case, &mut outcome);
            }
            let verdict = judge_labelled(config.profile, executor.environment(), case, &prediction, &outcome);
            Ok(done(Some(outcome), verdict))
        }
        Err(e @ (ExecError::Died(_) | ExecError::Hung { .. })) => {
            let why = lost_executor(executor, &e);
            *executor = config.spawn_executor(1, 0)?;
            Ok(done(None, CaseVerdict::broken(why)))
        }
        Err(ExecError::Protocol(why)) => {
            Ok(done(None, CaseVerdict::broken(format!("executor refused the case: {why}"))))
        }
        Err(e) => Err(e),
    }
}

/// [`judge`], then the known bug that explains the violations, if any ([`known::label`]).
pub fn judge_labelled(
    profile: &KernelProfile,
    env: &crate::env::Environment,
    case: &Case,
    prediction: &Prediction,
    outcome: &Outcome,
) -> CaseVerdict {
    let mut verdict = judge(env, case, prediction, outcome);
    known::label(profile, env, case, outcome, &mut verdict);
    verdict
}

/// The broken reason for the case an executor was running when it died or stopped
/// answering; a stopped or hung executor is killed here. The reason does not name the
/// case, so that the tally counts such cases under one line.
pub(crate) fn lost_executor(executor: &mut Executor, e: &ExecError) -> String {
    match e {
        ExecError::Hung { waited_ms, .. } => {
            executor.kill();
            format!("executor stopped or hung (no report within {waited_ms} ms); killed and replaced")
        }
        ExecError::Died(why) => format!("the executor died while running the case ({why}); restarted"),
        other => format!("the executor failed ({other}); restarted"),
    }
}

/// A trivial case, run once per run before the first real one to check the watchdog timeout.
pub fn timeout_probe_case() -> Case {
    Case::unshare(&[0])
}

/// Runs a trivial case (`unshare(0)` in a fresh child) with `timeout`, and refuses a timeout
/// that it does not leave room within: the case timed out, or took more than half of it
/// (cases with deep setups take tens of times longer). Returns how long it took.
///
/// # Errors
/// [`ExecError::TimeoutTooShort`], or the executor's own failure.
pub fn probe_timeout(executor: &mut Executor, timeout: Duration) -> Result<Duration, ExecError> {
    let start = Instant::now();
    let outcome = match executor.run(&timeout_probe_case(), timeout) {
        Ok(outcome) => outcome,
        // Refused here (a setup this executor cannot build): nothing learnt about the timeout.
        Err(ExecError::Protocol(_)) => return Ok(start.elapsed()),
        Err(e) => return Err(e),
    };
    let took = start.elapsed();
    let timeout_ms = timeout.as_millis() as u64;
    let detail = match outcome {
        Outcome::Timeout { .. } => Some(format!("was killed by the watchdog after {timeout_ms} ms")),
        _ if took * 2 > timeout => Some(format!(
            "took {} ms, more than half of it, and cases with deep setups take tens of times longer",
            took.as_millis()
        )),
        _ => None,
    };
    match detail {
        Some(detail) => Err(ExecError::TimeoutTooShort { timeout_ms, detail }),
        None => Ok(took),
    }
}

/// The soft RLIMIT_NPROC of this process, as /proc/self/limits shows it (`unlimited`, `3`).
pub fn nproc_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max processes"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}
