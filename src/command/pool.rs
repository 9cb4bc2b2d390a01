//! The executor pool, the one that `run`, `replay` and `bench` use: items (cases, or corpus
//! files) spread over `jobs` executors (item `i` on executor `i % jobs`), each executor kept
//! two cases deep (more when the harness thread runs apart from it, `command::beside`) so that
//! it forks the next case while the harness judges the last, every case
//! through the pipeline's two halves (`command::pipeline`: [`prepare`], [`conclude`]), and the
//! results handed back in item order as they complete ([`run_pool`]), whatever the executors'
//! order. [`run_cases`] makes a run's [`RunReport`] of them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use crate::case::Case;
use crate::check::{CaseVerdict, Tally};
use crate::command::pipeline::{Executed, RunConfig, conclude, nproc_limit, prepare, probe_timeout};
use crate::env::Environment;
use crate::exec::executor::phases::PhaseSummary;
use crate::exec::wire::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::model::Prediction;
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
    let started = Instant::now();
    for slot in 0..jobs {
        executors.push(config.spawn_executor(jobs, slot)?);
    }
    crate::exec::start_limit::note_slow_start(jobs, started.elapsed());
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

/// What the pool runs: an item with a case, or with the reason it has none (a corpus file that
/// did not load: a broken result, not run).
pub trait Item: Sync {
    /// The case to run, or why there is none.
    fn case(&self) -> Result<&Case, &str>;
}

impl Item for Case {
    fn case(&self) -> Result<&Case, &str> {
        Ok(self)
    }
}

/// One item's result: the case predicted, run and judged, or the broken verdict of an item
/// without a case.
pub type ItemResult = Result<Executed, CaseVerdict>;

/// One executor's share of a run, pipelined: predictions and judgements overlap the
/// executor's work. A dead executor is restarted; the case it was running is reported as
/// broken and the cases queued behind it are submitted again (they never started).
struct Job<'a, T: Item, F: FnMut(usize, ItemResult)> {
    executor: Executor,
    config: &'a RunConfig,
    items: &'a [T],
    /// This executor's place among the run's executors (its CPU; see `exec::executor::placement`).
    slot: usize,
    jobs: usize,
    queued: VecDeque<(usize, Prediction)>,
    /// Cases kept in flight: [`PIPELINE_DEPTH`], or [`super::beside::DEPTH_APART`].
    depth: usize,
    place: &'a super::beside::HarnessPlace,
    restarts: u64,
    phases: PhaseSummary,
    emit: F,
}

impl<T: Item, F: FnMut(usize, ItemResult)> Job<'_, T, F> {
    fn restart(&mut self) -> Result<(), ExecError> {
        self.executor = self.place.as_before(|| self.config.spawn_executor(self.jobs, self.slot))?;
        self.executor.set_patient(self.place.apart);
        self.restarts += 1;
        Ok(())
    }

    fn push(&mut self, i: usize) -> Result<(), ExecError> {
        let case = match self.items[i].case() {
            Ok(case) => case,
            Err(why) => {
                (self.emit)(i, Err(CaseVerdict::broken(why.to_string())));
                return Ok(());
            }
        };
        let prediction = match prepare(&self.config.model(), &self.executor, case) {
            Ok(p) => p,
            Err(skipped) => {
                (self.emit)(i, Ok(*skipped));
                return Ok(());
            }
        };
        match self.executor.submit(case, self.config.timeout) {
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
                self.executor.submit(queued_case(self.items, i), self.config.timeout)?;
                self.queued.push_back((i, prediction));
            }
            Err(e) => return Err(e),
        }
        while self.queued.len() >= self.depth {
            self.finish_one()?;
        }
        Ok(())
    }

    fn finish_one(&mut self) -> Result<(), ExecError> {
        let Some((i, prediction)) = self.queued.pop_front() else { return Ok(()) };
        let result = self.executor.receive();
        if let (Ok(_), Some(p)) = (&result, self.executor.last_phases()) {
            self.phases.add(&p);
        }
        let case = queued_case(self.items, i);
        let executed = conclude(&self.config.model(), &mut self.executor, self.config.fault, case, prediction, result)?;
        let lost = executed.executor_lost;
        (self.emit)(i, Ok(executed));
        if lost {
            self.restart()?;
            let rest: Vec<(usize, Prediction)> = self.queued.drain(..).collect();
            for (j, p) in rest {
                self.executor.submit(queued_case(self.items, j), self.config.timeout)?;
                self.queued.push_back((j, p));
            }
        }
        Ok(())
    }
}

/// The case of queued item `i` (only items with a case are queued).
fn queued_case<T: Item>(items: &[T], i: usize) -> &Case {
    items[i].case().unwrap_or_else(|_| unreachable!("only items with a case are queued"))
}

/// What one executor's share of a run gives back.
struct ShareEnd {
    /// Its executor's resources at the end (`None` if it ended in an error).
    stats: Option<ExecutorStats>,
    phases: PhaseSummary,
    /// The error that ended it early (an executor that could not be restarted), if any.
    error: Option<ExecError>,
}

impl ShareEnd {
    /// A share that ended before its first case.
    fn failed(error: ExecError) -> ShareEnd {
        ShareEnd { stats: None, phases: PhaseSummary::default(), error: Some(error) }
    }
}

/// Runs executor `slot`'s share of `items` (`slot, slot + jobs, ...`), stopping early when
/// [`crate::command::interrupt::requested`] says so; the cases in flight are always taken back.
fn run_share<T: Item>(
    config: &RunConfig,
    items: &[T],
    jobs: usize,
    slot: usize,
    mut executor: Executor,
    place: &super::beside::HarnessPlace,
    emit: impl FnMut(usize, ItemResult),
) -> ShareEnd {
    executor.set_patient(place.apart);
    let mut job = Job {
        executor,
        config,
        items,
        slot,
        jobs,
        queued: VecDeque::new(),
        depth: if place.apart { super::beside::DEPTH_APART } else { PIPELINE_DEPTH },
        place,
        restarts: 0,
        phases: PhaseSummary::default(),
        emit,
    };
    let mut error = None;
    for i in (slot..items.len()).step_by(jobs) {
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
    // The executor's resources at the end, for the leak check.
    let stats = match error {
        None => job.executor.bare_loop(&[]).map_err(|e| error = Some(e)).ok().map(|(_, stats)| stats),
        Some(_) => None,
    };
    ShareEnd { stats, phases: job.phases, error }
}

/// Results in any order, handed on in item order (each once all before it are), and when the last was.
struct InOrder<F: FnMut(usize, ItemResult)> {
    waiting: BTreeMap<usize, ItemResult>,
    next: usize,
    delivered: u64,
    last_at: Option<Instant>,
    deliver: F,
}

impl<F: FnMut(usize, ItemResult)> InOrder<F> {
    fn take(&mut self, i: usize, result: ItemResult) {
        self.waiting.insert(i, result);
        while let Some(r) = self.waiting.remove(&self.next) {
            self.hand_on(self.next, r);
            self.next += 1;
        }
    }

    /// After an early stop: the items done behind a gap, still in item order.
    fn flush(&mut self) {
        while let Some((i, r)) = self.waiting.pop_first() {
            self.hand_on(i, r);
        }
    }

    fn hand_on(&mut self, i: usize, r: ItemResult) {
        (self.delivered, self.last_at) = (self.delivered + 1, Some(Instant::now()));
        (self.deliver)(i, r);
    }
}

/// What a pool run did besides its items' results.
#[derive(Debug)]
pub struct PoolRun {
    /// Executor 0's environment.
    pub environment: Environment,
    /// Each executor's CPU, if pinned.
    pub pinned_cpus: Vec<Option<u32>>,
    /// Wall time from the executors' start to the last result, in seconds.
    pub elapsed_seconds: f64,
    /// Items whose result was handed on.
    pub delivered: u64,
    /// Each executor's resources at the end.
    pub executor_stats: Vec<ExecutorStats>,
    /// The case phases of all executors.
    pub phases: PhaseSummary,
    /// Executors that ended early, and why.
    pub errors: Vec<String>,
    /// Worker threads that could not start.
    pub notes: Vec<String>,
}

impl PoolRun {
    /// The report's interruption for a run of `planned` items, if it handed on fewer; the
    /// executors' errors go to the notes otherwise.
    pub fn interruption(&mut self, planned: u64) -> Option<Interruption> {
        let interrupted = interruption(self.delivered, planned, &self.errors);
        if interrupted.is_none() {
            self.notes.append(&mut self.errors);
        }
        interrupted
    }
}

/// Runs `items` on `config.jobs` executors in parallel (item `i` goes to executor `i % jobs`,
/// so the assignment depends only on the items), calling `deliver` with each item's result in
/// item order, as soon as the items before it are done (from whichever thread finished it;
/// after an early stop, the items done behind the gap follow, in order). Executor 0's share
/// runs on the calling thread; a worker thread that cannot be started (EAGAIN under a low
/// RLIMIT_NPROC) is named in the notes and its share runs on the calling thread too. A stop
/// request ([`crate::command::interrupt`]) or an executor that cannot be replaced ends the
/// run early ([`PoolRun::interruption`]).
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all, or the timeout is too short.
pub fn run_pool<T: Item>(
    config: &RunConfig,
    items: &[T],
    deliver: impl FnMut(usize, ItemResult) + Send,
) -> Result<PoolRun, ExecError> {
    let executors = start_executors(config)?;
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let start = Instant::now();
    let order = Mutex::new(InOrder { waiting: BTreeMap::new(), next: 0, delivered: 0, last_at: None, deliver });
    let (ends, notes) = run_shares(config, items, executors, &order);
    let mut order = order.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    order.flush();
    let elapsed_seconds = order.last_at.unwrap_or_else(Instant::now).duration_since(start).as_secs_f64();
    let mut run = PoolRun {
        environment,
        pinned_cpus,
        elapsed_seconds,
        delivered: order.delivered,
        executor_stats: Vec::new(),
        phases: PhaseSummary::default(),
        errors: Vec::new(),
        notes,
    };
    for (k, end) in ends {
        run.executor_stats.extend(end.stats);
        run.phases.merge(&end.phases);
        if let Some(e) = end.error {
            run.errors.push(format!("executor {k} failed: {e}"));
        }
    }
    Ok(run)
}

/// Runs `cases` on `config.jobs` executors ([`run_pool`]) into a [`RunReport`], calling
/// `progress` after each verdict.
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
    let mut tally = Tally::new();
    let mut failures = Vec::new();
    let mut violations = 0;
    let mut pool = run_pool(config, cases, |i, result| {
        let verdict = result.map_or_else(|broken| broken, |e| e.verdict);
        tally.add(&verdict);
        violations += verdict.violations.len() as u64;
        progress(Progress { done: tally.cases, total: planned, violations });
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
    })?;
    tally.add_environment(&pool.environment);
    let interrupted = pool.interruption(planned);
    Ok(RunReport {
        seed: config.seed,
        profile: config.profile.name,
        jobs: config.jobs.clamp(1, 64),
        cases_per_second: if pool.elapsed_seconds > 0.0 { tally.cases as f64 / pool.elapsed_seconds } else { 0.0 },
        environment: pool.environment,
        tally,
        failures,
        elapsed_seconds: pool.elapsed_seconds,
        executor_stats: pool.executor_stats,
        pinned_cpus: pool.pinned_cpus,
        phases: pool.phases,
        corpus_files: None,
        interrupted,
        notes: pool.notes,
        baseline: None,
    })
}

/// Runs every executor's share, executor 0's on the calling thread and the others on worker
/// threads (or here too, after the others, when a thread cannot start: a note says so), each
/// result going to `order`. Returns the shares' ends by executor and the notes.
fn run_shares<T: Item, F: FnMut(usize, ItemResult) + Send>(
    config: &RunConfig,
    items: &[T],
    executors: Vec<Executor>,
    order: &Mutex<InOrder<F>>,
) -> (Vec<(usize, ShareEnd)>, Vec<String>) {
    let jobs = executors.len();
    let cpus: Vec<Option<u32>> = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let spare = super::beside::spare_cpus(&cpus);
    let cells: Vec<Mutex<Option<Executor>>> = executors.into_iter().map(|e| Mutex::new(Some(e))).collect();
    let share = |k: usize| share_of(config, items, jobs, k, &cells, &spare, order);
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

/// Executor `k`'s share of the run, its results handed to `order` as they come.
fn share_of<T: Item, F: FnMut(usize, ItemResult)>(
    config: &RunConfig,
    items: &[T],
    jobs: usize,
    k: usize,
    cells: &[Mutex<Option<Executor>>],
    spare: &[usize],
    order: &Mutex<InOrder<F>>,
) -> ShareEnd {
    let executor = cells.get(k).and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
    let Some(executor) = executor else {
        return ShareEnd::failed(ExecError::Died(format!("executor {k} was lost before its first case")));
    };
    let emit = |i: usize, result: ItemResult| {
        order.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(i, result);
    };
    let place = super::beside::HarnessPlace::take(executor.environment().pinned_cpu, spare);
    run_share(config, items, jobs, k, executor, &place, emit)
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
