//! The executor pool: a run's cases spread over `jobs` executors (case `i` on executor
//! `i % jobs`), each kept two cases deep so that it forks the next case while the harness
//! judges the last, and the verdicts merged back in case order into a [`RunReport`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::case::Case;
use crate::check::{CaseVerdict, Tally};
use crate::command::pipeline::{RunConfig, judge_labelled, lost_executor, nproc_limit, probe_timeout};
use crate::exec::executor::phases::PhaseSummary;
use crate::exec::wire::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::model::{Prediction, predict};
use crate::report::run_report::{FailedCase, Interruption, RunReport};

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
    /// This executor's place among the run's executors (its CPU; see `exec::executor::placement`).
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

impl ShareEnd {
    /// A share that ended before its first case.
    fn failed(error: ExecError) -> ShareEnd {
        ShareEnd { verdicts: Vec::new(), stats: None, phases: PhaseSummary::default(), error: Some(error) }
    }
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
pub(crate) fn run_planned(
    config: &RunConfig,
    cases: &[Case],
    planned: u64,
    progress: impl Fn(Progress) + Sync,
) -> Result<RunReport, ExecError> {
    let executors = start_executors(config)?;
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let start = Instant::now();
    let (ends, mut notes) = run_shares(config, cases, planned, executors, &progress);
    let elapsed = start.elapsed().as_secs_f64();
    let merged = Merged::of(ends);
    let mut tally = Tally::new();
    tally.add_environment(&environment);
    let failures = tally_verdicts(&mut tally, cases, merged.verdicts);
    let interrupted = interruption(tally.cases, planned, &merged.errors);
    if interrupted.is_none() {
        notes.extend(merged.errors);
    }
    Ok(RunReport {
        seed: config.seed,
        profile: config.profile.name,
        jobs: config.jobs.clamp(1, 64),
        environment,
        cases_per_second: if elapsed > 0.0 { tally.cases as f64 / elapsed } else { 0.0 },
        tally,
        failures,
        elapsed_seconds: elapsed,
        executor_stats: merged.executor_stats,
        pinned_cpus,
        phases: merged.phases,
        corpus_files: None,
        interrupted,
        notes,
        baseline: None,
    })
}

/// Runs every executor's share, executor 0's on the calling thread and the others on worker
/// threads (or here too, after the others, when a thread cannot start: a note says so).
/// Returns the shares by executor and the notes.
fn run_shares(
    config: &RunConfig,
    cases: &[Case],
    planned: u64,
    executors: Vec<Executor>,
    progress: &(impl Fn(Progress) + Sync),
) -> (Vec<(usize, ShareEnd)>, Vec<String>) {
    let jobs = executors.len();
    let counts = Counts { done: AtomicU64::new(0), violations: AtomicU64::new(0), planned };
    let cells: Vec<Mutex<Option<Executor>>> = executors.into_iter().map(|e| Mutex::new(Some(e))).collect();
    let share = |k: usize| share_of(config, cases, jobs, k, &cells, &counts, progress);
    let mut notes = Vec::new();
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
            let lost = || ShareEnd::failed(ExecError::Died("its worker thread panicked".into()));
            ends.push((k, h.join().unwrap_or_else(|_| lost())));
        }
        ends
    });
    ends.sort_by_key(|(k, _)| *k);
    (ends, notes)
}

/// The run's progress counters, shared by the executors' threads.
struct Counts {
    done: AtomicU64,
    violations: AtomicU64,
    planned: u64,
}

/// Executor `k`'s share of the run, its verdicts counted into `counts` as they come.
fn share_of(
    config: &RunConfig,
    cases: &[Case],
    jobs: usize,
    k: usize,
    cells: &[Mutex<Option<Executor>>],
    counts: &Counts,
    progress: &(impl Fn(Progress) + Sync),
) -> ShareEnd {
    let executor = cells.get(k).and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
    let Some(executor) = executor else {
        return ShareEnd::failed(ExecError::Died(format!("executor {k} was lost before its first case")));
    };
    let mut verdicts = Vec::with_capacity(cases.len() / jobs + 1);
    let emit = |i: usize, verdict: CaseVerdict| {
        let found = verdict.violations.len() as u64;
        let v = counts.violations.fetch_add(found, Ordering::Relaxed) + found;
        verdicts.push((i, verdict));
        let d = counts.done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(Progress { done: d, total: counts.planned, violations: v });
    };
    let (phases, stats, error) = run_share(config, cases, jobs, k, executor, emit);
    ShareEnd { verdicts, stats, phases, error }
}

/// The executors' shares put together: verdicts in case order, and the errors by executor.
struct Merged {
    verdicts: Vec<(usize, CaseVerdict)>,
    executor_stats: Vec<ExecutorStats>,
    phases: PhaseSummary,
    errors: Vec<String>,
}

impl Merged {
    fn of(ends: Vec<(usize, ShareEnd)>) -> Merged {
        let mut m = Merged {
            verdicts: Vec::new(),
            executor_stats: Vec::new(),
            phases: PhaseSummary::default(),
            errors: Vec::new(),
        };
        for (k, end) in ends {
            m.verdicts.extend(end.verdicts);
            m.executor_stats.extend(end.stats);
            m.phases.merge(&end.phases);
            if let Some(e) = end.error {
                m.errors.push(format!("executor {k} failed: {e}"));
            }
        }
        m.verdicts.sort_by_key(|(i, _)| *i);
        m
    }
}

/// Adds the verdicts (in case order) to `tally`; returns the failed cases in full.
fn tally_verdicts(tally: &mut Tally, cases: &[Case], verdicts: Vec<(usize, CaseVerdict)>) -> Vec<FailedCase> {
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
    failures
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
}
