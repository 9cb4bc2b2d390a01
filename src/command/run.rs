//! The run loop: generate cases from a seed, predict, execute, judge, tally.
//! Shared by the `run` command and the tests; knows nothing of printing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::case::Case;
use crate::check::{CaseVerdict, Tally, judge, known};
use crate::command::fault::Fault;
use crate::exec::executor::phases::PhaseSummary;
use crate::exec::executor::placement::{self, Pinning};
use crate::exec::observe::Outcome;
use crate::exec::wire::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::model::{KernelProfile, Prediction, predict};

pub use crate::report::run_report::{FailedCase, Interruption, RunReport};

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
fn lost_executor(executor: &mut Executor, e: &ExecError) -> String {
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

/// Starts `config.jobs` executors (clamped to 1..=64) and checks the timeout on the first
/// ([`probe_timeout`]).
///
/// # Errors
/// [`ExecError`] when an executor cannot start, or the timeout is too short.
pub fn start_executors(config: &RunConfig) -> Result<Vec<Executor>, ExecError> {
    let jobs = config.jobs.clamp(1, 64);
    let mut executors = Vec::with_capacity(jobs);
    for slot in 0..jobs {
        executors.push(config.spawn_executor(jobs, slot)?);
    }
    probe_timeout(&mut executors[0], config.timeout)?;
    Ok(executors)
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

/// The note for a worker thread that could not be started (its share then runs on the
/// calling thread, after the others).
pub fn thread_note(what: &str, e: &std::io::Error) -> String {
    let errno = if e.raw_os_error() == Some(libc::EAGAIN) { "EAGAIN: " } else { "" };
    format!(
        "cannot start a thread for {what}: {errno}{e} (RLIMIT_NPROC is {}); its cases ran on the main thread \
         instead, one executor after the other: lower --jobs or raise the limit",
        nproc_limit()
    )
}

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
                let env = self.executor.environment();
                (self.emit)(i, judge_labelled(self.config.profile, env, case, &prediction, &outcome));
            }
            Err(ExecError::Protocol(why)) => {
                (self.emit)(i, CaseVerdict::broken(format!("executor refused the case: {why}")))
            }
            Err(e @ (ExecError::Died(_) | ExecError::Hung { .. })) => {
                let why = lost_executor(&mut self.executor, &e);
                (self.emit)(i, CaseVerdict::broken(why));
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

/// What one executor's share of a run gives back.
struct ShareEnd {
    /// Its verdicts by case index.
    verdicts: Vec<(usize, CaseVerdict)>,
    /// Its executor's resources at the end (`None` if it ended in an error).
    stats: Option<ExecutorStats>,
    phases: PhaseSummary,
    /// The error that ended it early (an executor that could not be restarted), if any.
    error: Option<ExecError>,
}

/// Runs executor `slot`'s share of `cases` (`slot, slot + jobs, ...`), stopping early when
/// [`crate::command::interrupt::requested`] says so; the cases in flight are always taken back.
fn run_share<F: FnMut(usize, CaseVerdict)>(
    config: &RunConfig,
    cases: &[Case],
    jobs: usize,
    slot: usize,
    executor: Executor,
    emit: F,
) -> (PhaseSummary, Option<ExecutorStats>, Option<ExecError>) {
    let mut job = Job {
        executor,
        config,
        cases,
        slot,
        jobs,
        queued: std::collections::VecDeque::new(),
        restarts: 0,
        phases: PhaseSummary::default(),
        emit,
    };
    let mut error = None;
    for i in (slot..cases.len()).step_by(jobs) {
        if crate::command::interrupt::requested().is_some() {
            break;
        }
        if let Err(e) = job.push(i) {
            error = Some(e);
            break;
        }
    }
    while error.is_none() && !job.queued.is_empty() {
        if let Err(e) = job.finish_one() {
            error = Some(e);
        }
    }
    let stats = match error {
        None => job.executor.bare_loop(&[]).map_err(|e| error = Some(e)).ok().map(|(_, stats)| stats),
        Some(_) => None,
    };
    (job.phases, stats, error)
}

/// Runs `cases` on `config.jobs` executors in parallel (case `i` goes to executor `i % jobs`,
/// so the assignment depends only on the seed), and merges the verdicts in case order.
/// Executor 0's share runs on the calling thread; a worker thread that cannot be started
/// (EAGAIN under a low RLIMIT_NPROC) is named in the report's notes and its share runs on
/// the calling thread too. A stop request ([`crate::command::interrupt`]) or an executor that cannot
/// be replaced ends the run early: the report then covers the cases done and says why in
/// [`RunReport::interrupted`].
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all, or the timeout is too short.
pub fn run_cases(
    config: &RunConfig,
    cases: &[Case],
    progress: impl Fn(Progress) + Sync,
) -> Result<RunReport, ExecError> {
    run_planned(config, cases, cases.len() as u64, progress)
}

/// As [`run_cases`], for a run of `planned` cases of which `cases` were generated (fewer when
/// a stop request came while they were being generated).
fn run_planned(
    config: &RunConfig,
    cases: &[Case],
    planned: u64,
    progress: impl Fn(Progress) + Sync,
) -> Result<RunReport, ExecError> {
    let jobs = config.jobs.clamp(1, 64);
    let total = planned;
    let done = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    let executors = start_executors(config)?;
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let cells: Vec<Mutex<Option<Executor>>> = executors.into_iter().map(|e| Mutex::new(Some(e))).collect();
    let share = |k: usize| -> ShareEnd {
        let executor = cells.get(k).and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
        let Some(executor) = executor else {
            let error = Some(ExecError::Died(format!("executor {k} was lost before its first case")));
            return ShareEnd { verdicts: Vec::new(), stats: None, phases: PhaseSummary::default(), error };
        };
        let mut verdicts = Vec::with_capacity(cases.len() / jobs + 1);
        let emit = |i: usize, verdict: CaseVerdict| {
            let found = verdict.violations.len() as u64;
            let v = violations.fetch_add(found, Ordering::Relaxed) + found;
            verdicts.push((i, verdict));
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress { done: d, total, violations: v });
        };
        let (phases, stats, error) = run_share(config, cases, jobs, k, executor, emit);
        ShareEnd { verdicts, stats, phases, error }
    };
    let mut notes = Vec::new();
    let start = Instant::now();
    let mut ends: Vec<(usize, ShareEnd)> = std::thread::scope(|scope| {
        let share = &share;
        let mut handles = Vec::new();
        let mut here = vec![0];
        for k in 1..jobs {
            match std::thread::Builder::new().name(format!("executor-{k}")).spawn_scoped(scope, move || share(k)) {
                Ok(h) => handles.push((k, h)),
                Err(e) => {
                    notes.push(thread_note(&format!("executor {k}"), &e));
                    here.push(k);
                }
            }
        }
        let mut ends: Vec<(usize, ShareEnd)> = here.into_iter().map(|k| (k, share(k))).collect();
        for (k, h) in handles {
            let end = h.join().unwrap_or_else(|_| ShareEnd {
                verdicts: Vec::new(),
                stats: None,
                phases: PhaseSummary::default(),
                error: Some(ExecError::Died("its worker thread panicked".into())),
            });
            ends.push((k, end));
        }
        ends
    });
    let elapsed = start.elapsed().as_secs_f64();
    ends.sort_by_key(|(k, _)| *k);
    let mut verdicts = Vec::with_capacity(cases.len());
    let mut executor_stats = Vec::with_capacity(jobs);
    let mut phases = PhaseSummary::default();
    let mut errors = Vec::new();
    for (k, end) in ends {
        verdicts.extend(end.verdicts);
        executor_stats.extend(end.stats);
        phases.merge(&end.phases);
        if let Some(e) = end.error {
            errors.push(format!("executor {k} failed: {e}"));
        }
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
                known_bug: verdict.known_bug,
                baselined: false,
            });
        }
    }
    let interrupted = interruption(tally.cases, total, &errors);
    if interrupted.is_none() {
        notes.extend(errors);
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
        interrupted,
        notes,
        baseline: None,
    })
}

/// The interruption of a run that judged `judged` of `planned` cases (`None` if it judged
/// them all): the stop request if there was one, else the executors' errors.
pub fn interruption(judged: u64, planned: u64, errors: &[String]) -> Option<Interruption> {
    if judged >= planned {
        return None;
    }
    let cause = crate::command::interrupt::requested()
        .map(|c| c.to_string())
        .or_else(|| (!errors.is_empty()).then(|| errors.join("; ")))
        .unwrap_or_else(|| "the executors stopped early without saying why".into());
    Some(Interruption { after_cases: judged, planned_cases: planned, cause })
}

/// Runs `config.cases` generated cases.
///
/// # Errors
/// As [`run_cases`].
pub fn run(config: &RunConfig, progress: impl Fn(Progress) + Sync) -> Result<RunReport, ExecError> {
    let mut cases = Vec::with_capacity(config.cases.min(1 << 20) as usize);
    for case in cases_for_seed(config.seed).take(config.cases as usize) {
        // Generating many cases takes seconds: a stop request is honoured here too.
        if cases.len() % 256 == 0 && crate::command::interrupt::requested().is_some() {
            break;
        }
        cases.push(case);
    }
    run_planned(config, &cases, config.cases, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_interrupted_only_when_cases_are_missing_and_says_why() {
        assert_eq!(interruption(5, 5, &["executor 0 failed: x".into()]), None);
        let i = interruption(3, 5, &["executor 1 failed: gone".into()]).unwrap();
        assert_eq!(i.line(), "interrupted after 3 of 5 cases (executor 1 failed: gone)");
        // No stop request is armed in unit tests, and no error given: still named.
        assert!(interruption(0, 5, &[]).unwrap().cause.contains("without saying why"));
    }

    #[test]
    fn a_thread_note_names_the_errno_the_limit_and_the_remedy() {
        let note = thread_note("executor 1", &std::io::Error::from_raw_os_error(libc::EAGAIN));
        assert!(note.starts_with("cannot start a thread for executor 1: EAGAIN: "), "{note}");
        assert!(note.contains("RLIMIT_NPROC is ") && note.contains("lower --jobs or raise the limit"), "{note}");
    }

    #[test]
    fn same_seed_same_cases() {
        let a: Vec<Case> = cases_for_seed(42).take(50).collect();
        let b: Vec<Case> = cases_for_seed(42).take(50).collect();
        let c: Vec<Case> = cases_for_seed(43).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
