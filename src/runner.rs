//! The run loop: generate cases from a seed, predict, execute, judge, tally.
//! Shared by the `run` command and the tests; knows nothing of printing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::Serialize;

use crate::case::Case;
use crate::check::{CaseVerdict, Tally, Violation, judge};
use crate::corpus::replay::FileResult;
use crate::env::Environment;
use crate::exec::phases::PhaseSummary;
use crate::exec::placement::{self, Pinning};
use crate::exec::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::fault::Fault;
use crate::model::{KernelProfile, Prediction, predict};
use crate::observe::Outcome;

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
    /// Whether each executor is pinned to its own CPU (`exec::placement`).
    pub pinning: Pinning,
    /// Test only: a lie told to the checker about every outcome (`--inject-fault`).
    pub fault: Option<Fault>,
}

impl RunConfig {
    /// Starts executor `slot` of `jobs`, with this run's executor arguments and CPU.
    ///
    /// # Errors
    /// [`ExecError`] if it cannot start.
    pub fn spawn_executor(&self, jobs: usize, slot: usize) -> Result<Executor, ExecError> {
        Executor::spawn_self(&placement::executor_args(&self.executor_args, self.pinning, jobs, slot))
    }
}

/// One case that violated something, in full.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCase {
    /// Position in the run (0-based).
    pub index: u64,
    /// The case.
    pub case: Case,
    /// What did not hold.
    pub violations: Vec<Violation>,
    /// The corpus file it came from (replay only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The result of a run: the figures every report prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Generator seed.
    pub seed: u64,
    /// Model profile name.
    pub profile: &'static str,
    /// Executors that ran in parallel.
    pub jobs: usize,
    /// Probed environment.
    pub environment: Environment,
    /// Counts.
    pub tally: Tally,
    /// Every failed case.
    pub failures: Vec<FailedCase>,
    /// Wall time.
    pub elapsed_seconds: f64,
    /// Cases per second.
    pub cases_per_second: f64,
    /// Each executor's resources at the end (leak check: fds, mounts, leftover processes, RSS).
    pub executor_stats: Vec<ExecutorStats>,
    /// The CPU each executor was pinned to when it started (`None`: unpinned).
    pub pinned_cpus: Vec<Option<u32>>,
    /// Where a case's time went (means over the cases whose child reached its end).
    pub phases: PhaseSummary,
    /// One result per corpus file, when the cases came from a corpus (`replay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corpus_files: Option<Vec<FileResult>>,
}

/// Progress callback payload.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Cases done.
    pub done: u64,
    /// Cases planned.
    pub total: u64,
    /// Violations so far.
    pub violations: u64,
}

/// The deterministic stream of cases for `seed`.
pub fn cases_for_seed(seed: u64) -> impl Iterator<Item = Case> {
    let mut bytes = [0u8; 32];
    let mut x = seed;
    for chunk in bytes.chunks_mut(8) {
        // splitmix64, to spread a u64 over the 32-byte ChaCha seed.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = crate::generate::strategy::case();
    std::iter::from_fn(move || strategy.new_tree(&mut runner).ok().map(|t| t.current()))
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
            let verdict = judge(executor.environment(), case, &prediction, &outcome);
            Ok(done(Some(outcome), verdict))
        }
        Err(ExecError::Died(why)) => {
            *executor = config.spawn_executor(1, 0)?;
            Ok(done(None, CaseVerdict::broken(format!("the executor died while running the case ({why}); restarted"))))
        }
        Err(ExecError::Protocol(why)) => {
            Ok(done(None, CaseVerdict::broken(format!("executor refused the case: {why}"))))
        }
        Err(e) => Err(e),
    }
}

/// What one parallel job returns: its verdicts by case index, and its executor's resources.
type JobResult = (Vec<(usize, CaseVerdict)>, ExecutorStats, PhaseSummary);

/// Cases kept in flight per executor: one running and one queued behind it, so that the
/// executor forks the next case while the harness judges the last report.
pub const PIPELINE_DEPTH: usize = 2;

/// One executor's share of a run, pipelined: predictions and judgements overlap the
/// executor's work. A dead executor is restarted; the case it was running is reported as
/// broken and the cases queued behind it are submitted again (they never started).
struct Job<'a, F: FnMut(usize, CaseVerdict)> {
    executor: Executor,
    config: &'a RunConfig,
    cases: &'a [Case],
    /// This executor's place among the run's executors (its CPU; see `exec::placement`).
    slot: usize,
    jobs: usize,
    queued: std::collections::VecDeque<(usize, Prediction)>,
    restarts: u64,
    phases: PhaseSummary,
    emit: F,
}

impl<F: FnMut(usize, CaseVerdict)> Job<'_, F> {
    fn restart(&mut self) -> Result<(), ExecError> {
        self.executor = self.config.spawn_executor(self.jobs, self.slot)?;
        self.restarts += 1;
        Ok(())
    }

    fn push(&mut self, i: usize) -> Result<(), ExecError> {
        let prediction = predict(self.config.profile, self.executor.environment(), &self.cases[i]);
        if let Prediction::Skip { reason } = &prediction {
            (self.emit)(i, CaseVerdict::skipped(reason.clone()));
            return Ok(());
        }
        match self.executor.submit(&self.cases[i], self.config.timeout) {
            Ok(()) => self.queued.push_back((i, prediction)),
            Err(ExecError::Died(_)) => {
                // Gone between two cases: take what it answered before, then use a fresh one.
                let before = self.restarts;
                while !self.queued.is_empty() {
                    self.finish_one()?;
                }
                if self.restarts == before {
                    self.restart()?;
                }
                self.executor.submit(&self.cases[i], self.config.timeout)?;
                self.queued.push_back((i, prediction));
            }
            Err(e) => return Err(e),
        }
        while self.queued.len() >= PIPELINE_DEPTH {
            self.finish_one()?;
        }
        Ok(())
    }

    fn finish_one(&mut self) -> Result<(), ExecError> {
        let Some((i, prediction)) = self.queued.pop_front() else { return Ok(()) };
        let case = &self.cases[i];
        match self.executor.receive() {
            Ok(mut outcome) => {
                if let Some(p) = self.executor.last_phases() {
                    self.phases.add(&p);
                }
                if let Some(fault) = self.config.fault {
                    fault.apply(case, &mut outcome);
                }
                (self.emit)(i, judge(self.executor.environment(), case, &prediction, &outcome));
            }
            Err(ExecError::Protocol(why)) => {
                (self.emit)(i, CaseVerdict::broken(format!("executor refused the case: {why}")))
            }
            Err(ExecError::Died(why)) => {
                (self.emit)(
                    i,
                    CaseVerdict::broken(format!("the executor died while running the case ({why}); restarted")),
                );
                self.restart()?;
                let rest: Vec<(usize, Prediction)> = self.queued.drain(..).collect();
                for (j, p) in rest {
                    self.executor.submit(&self.cases[j], self.config.timeout)?;
                    self.queued.push_back((j, p));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Runs `cases` on `config.jobs` executors in parallel (case `i` goes to executor `i % jobs`,
/// so the assignment depends only on the seed), and merges the verdicts in case order.
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all.
pub fn run_cases(
    config: &RunConfig,
    cases: &[Case],
    progress: impl Fn(Progress) + Sync,
) -> Result<RunReport, ExecError> {
    let jobs = config.jobs.clamp(1, 64);
    let total = cases.len() as u64;
    let done = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    let mut executors = Vec::with_capacity(jobs);
    for slot in 0..jobs {
        executors.push(config.spawn_executor(jobs, slot)?);
    }
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let start = Instant::now();
    let per_job: Vec<Result<JobResult, ExecError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = executors
            .into_iter()
            .enumerate()
            .map(|(k, executor)| {
                let (done, violations, progress) = (&done, &violations, &progress);
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(cases.len() / jobs + 1);
                    let emit = |i: usize, verdict: CaseVerdict| {
                        let found = verdict.violations.len() as u64;
                        let v = violations.fetch_add(found, Ordering::Relaxed) + found;
                        out.push((i, verdict));
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        progress(Progress { done: d, total, violations: v });
                    };
                    let mut job = Job {
                        executor,
                        config,
                        cases,
                        slot: k,
                        jobs,
                        queued: std::collections::VecDeque::new(),
                        restarts: 0,
                        phases: PhaseSummary::default(),
                        emit,
                    };
                    for i in (k..cases.len()).step_by(jobs) {
                        job.push(i)?;
                    }
                    while !job.queued.is_empty() {
                        job.finish_one()?;
                    }
                    let (_, stats) = job.executor.bare_loop(&[])?;
                    let phases = job.phases;
                    drop(job);
                    Ok((out, stats, phases))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(ExecError::Died("a worker panicked".into()))))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut verdicts = Vec::with_capacity(cases.len());
    let mut executor_stats = Vec::with_capacity(jobs);
    let mut phases = PhaseSummary::default();
    for r in per_job {
        let (v, stats, p) = r?;
        verdicts.extend(v);
        executor_stats.push(stats);
        phases.merge(&p);
    }
    verdicts.sort_by_key(|(i, _)| *i);
    let mut tally = Tally::new();
    tally.add_environment(&environment);
    let mut failures = Vec::new();
    for (i, verdict) in verdicts {
        tally.add(&verdict);
        if verdict.failed() {
            failures.push(FailedCase {
                index: i as u64,
                case: cases[i].clone(),
                violations: verdict.violations,
                file: None,
            });
        }
    }
    Ok(RunReport {
        seed: config.seed,
        profile: config.profile.name,
        jobs,
        environment,
        cases_per_second: if elapsed > 0.0 { tally.cases as f64 / elapsed } else { 0.0 },
        tally,
        failures,
        elapsed_seconds: elapsed,
        executor_stats,
        pinned_cpus,
        phases,
        corpus_files: None,
    })
}

/// Runs `config.cases` generated cases.
///
/// # Errors
/// As [`run_cases`].
pub fn run(config: &RunConfig, progress: impl Fn(Progress) + Sync) -> Result<RunReport, ExecError> {
    let cases: Vec<Case> = cases_for_seed(config.seed).take(config.cases as usize).collect();
    run_cases(config, &cases, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cases() {
        let a: Vec<Case> = cases_for_seed(42).take(50).collect();
        let b: Vec<Case> = cases_for_seed(42).take(50).collect();
        let c: Vec<Case> = cases_for_seed(43).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
