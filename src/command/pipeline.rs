//! The pipeline of one case: predict with the model ([`Model`]), execute on the kernel (unless
//! the model skips it), judge the outcome against the prediction ([`execute`]), with what a run
//! asks of it ([`RunConfig`]). Every command that runs a case goes through here: one case at a
//! time ([`execute_case`]: `flags`, `selftest`, `minimize`, the `exec` fuzz target), or many
//! through the executor pool (`command::pool`: `run`, `replay`, `bench`), which keeps two cases
//! in flight per executor and so calls the pipeline's two halves ([`prepare`], [`conclude`])
//! with other cases in between.

use std::time::{Duration, Instant};

use crate::case::Case;
use crate::check::{CaseVerdict, judge, known};
use crate::command::fault::Fault;
use crate::env::Environment;
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

    /// The model this run predicts with: its profile, in the executor's environment.
    pub fn model(&self) -> Model<'static> {
        Model::of(self.profile)
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

/// The model a case is predicted with: a kernel profile, in the executor's environment unless
/// the caller names another one.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    /// The kernel profile.
    pub profile: &'static KernelProfile,
    /// Predict as if the executor's environment were this one (the `exec` fuzz target's
    /// wrong-model self-test, `command::fuzzing::WRONG_MODEL_VAR`); `None`: the executor's own.
    /// Judging always uses the executor's environment.
    pub environment: Option<&'a Environment>,
}

impl Model<'_> {
    /// The model of `profile` in the executor's own environment.
    pub fn of(profile: &'static KernelProfile) -> Model<'static> {
        Model { profile, environment: None }
    }

    /// Step one of the pipeline: the prediction of `case` by an executor in `executor_env`.
    pub fn predict(&self, executor_env: &Environment, case: &Case) -> Prediction {
        predict(self.profile, self.environment.unwrap_or(executor_env), case)
    }
}

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
    /// The executor died or hung on this case (it was killed): the caller replaces it.
    pub executor_lost: bool,
}

impl Executed {
    /// A case the model skips: not run.
    fn skipped(prediction: &Prediction) -> Option<Executed> {
        let Prediction::Skip { reason } = prediction else { return None };
        let verdict = CaseVerdict::skipped(reason.clone());
        Some(Executed { prediction: prediction.clone(), outcome: None, verdict, executor_lost: false })
    }
}

/// As [`check_case`], also returning the prediction and the outcome.
///
/// # Errors
/// As [`check_case`].
pub fn execute_case(executor: &mut Executor, config: &RunConfig, case: &Case) -> Result<Executed, ExecError> {
    let executed = execute(executor, &config.model(), config.timeout, config.fault, case)?;
    if executed.executor_lost {
        *executor = config.spawn_executor(1, 0)?;
    }
    Ok(executed)
}

/// The one pipeline of a case: predict with `model` ([`Model::predict`]), execute on the
/// kernel unless the prediction is a skip, judge ([`conclude`]). A lost executor is killed and
/// the case broken; replacing the executor is the caller's ([`Executed::executor_lost`]). The
/// executor pool (`command::pool`) runs the same two halves with other cases in between.
///
/// # Errors
/// [`ExecError`] when the executor fails in a way that says nothing about the case.
pub fn execute(
    executor: &mut Executor,
    model: &Model<'_>,
    timeout: Duration,
    fault: Option<Fault>,
    case: &Case,
) -> Result<Executed, ExecError> {
    let prediction = match prepare(model, executor, case) {
        Ok(prediction) => prediction,
        Err(skipped) => return Ok(*skipped),
    };
    let result = executor.run(case, timeout);
    conclude(model, executor, fault, case, prediction, result)
}

/// The second half of [`execute`] for a case the model does not skip: `fault` (test only)
/// applied to the executor's answer, then the judgement ([`judge_labelled`]); a lost executor
/// or a refused case is a broken case.
///
/// # Errors
/// [`ExecError`] when the executor failed in a way that says nothing about the case.
pub fn conclude(
    model: &Model<'_>,
    executor: &mut Executor,
    fault: Option<Fault>,
    case: &Case,
    prediction: Prediction,
    result: Result<Outcome, ExecError>,
) -> Result<Executed, ExecError> {
    let (outcome, verdict, executor_lost) = match result {
        Ok(mut outcome) => {
            if let Some(fault) = fault {
                fault.apply(case, &mut outcome);
            }
            let verdict = judge_labelled(model.profile, executor.environment(), case, &prediction, &outcome);
            (Some(outcome), verdict, false)
        }
        Err(e @ (ExecError::Died(_) | ExecError::Hung { .. })) => {
            (None, CaseVerdict::broken(lost_executor(executor, &e)), true)
        }
        Err(ExecError::Protocol(why)) => {
            (None, CaseVerdict::broken(format!("executor refused the case: {why}")), false)
        }
        Err(e) => return Err(e),
    };
    Ok(Executed { prediction, outcome, verdict, executor_lost })
}

/// Step one for the pool: the prediction, or the finished [`Executed`] of a case the model
/// skips.
pub fn prepare(model: &Model<'_>, executor: &Executor, case: &Case) -> Result<Prediction, Box<Executed>> {
    let prediction = model.predict(executor.environment(), case);
    match Executed::skipped(&prediction) {
        Some(skipped) => Err(Box::new(skipped)),
        None => Ok(prediction),
    }
}

/// [`judge`], then the known bug that explains the violations, if any ([`known::label`]).
pub fn judge_labelled(
    profile: &KernelProfile,
    env: &Environment,
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
