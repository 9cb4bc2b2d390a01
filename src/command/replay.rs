//! Replay: every corpus file goes through the same executor, model and judge
//! as a generated case ([`runner::execute_case`]), plus the file-level check
//! `expected-matches-corpus`. The result is an ordinary [`RunReport`] (so every
//! report format and exit code of `run` applies) with one [`FileResult`] per file.
//! A file that cannot be loaded is a broken case; the other files still run.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use crate::case::Case;
use crate::check::expected::{EXPECTED_MATCHES_CORPUS, check_expected, record};
use crate::check::{CaseVerdict, Tally};
use crate::command::run::{self as runner, RunConfig};
use crate::exec::executor::phases::PhaseSummary;
use crate::exec::wire::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::model::predict;
pub use crate::report::run_report::{FailedCase, FileResult, FileStatus, RunReport};

use crate::corpus::{CorpusFile, Loaded};

fn status_of(v: &CaseVerdict) -> FileStatus {
    if v.failed() {
        FileStatus::Fail
    } else if v.broken.is_some() {
        FileStatus::Broken
    } else if v.case_skipped.is_some() {
        FileStatus::Skip
    } else {
        FileStatus::Pass
    }
}

fn details_of(v: &CaseVerdict) -> Vec<String> {
    let mut out: Vec<String> = v
        .violations
        .iter()
        .map(|x| {
            let step = x.step.map_or("case".to_string(), |i| format!("step {i}"));
            format!("[{}] {step}: {}", x.invariant, x.detail)
        })
        .collect();
    if let Some(r) = &v.broken {
        out.push(format!("broken: {r}"));
    }
    if let Some(r) = &v.case_skipped {
        out.push(format!("skipped: {r}"));
    }
    if let Some(r) = v.skipped.get(EXPECTED_MATCHES_CORPUS) {
        out.push(format!("{EXPECTED_MATCHES_CORPUS} skipped: {r}"));
    }
    out
}

/// Runs one loaded file's case and judges it, including `expected-matches-corpus`.
///
/// # Errors
/// [`ExecError`] when the executor cannot be (re)started.
pub fn replay_file(executor: &mut Executor, config: &RunConfig, file: &CorpusFile) -> Result<CaseVerdict, ExecError> {
    let case = crate::generate::neutralize(file.case.clone());
    let mut executed = runner::execute_case(executor, config, &case)?;
    if let Some(expected) = &file.expected {
        // The files' expectations describe the spec's machine: Linux 6.18 (the linux-6.18
        // profile, or the file's own `profile`) as root. Another profile's differing prediction is a skip, not a drift.
        let profile = match &file.profile {
            // Validated at load.
            Some(name) => crate::model::profile::resolve(name, "").map_or(&crate::model::profile::LINUX_6_18, |p| p.0),
            None => &crate::model::profile::LINUX_6_18,
        };
        let reference = predict(profile, &crate::model::guest::reference_for(&case), &case);
        if let Some(mut check) = check_expected(expected, &executed.prediction, &reference, executed.outcome.as_ref()) {
            if let (crate::check::expected::ExpectedCheck::Skipped(why), true) =
                (&check, !std::ptr::eq(profile, &crate::model::profile::LINUX_6_18))
                && profile.name != config.profile.name
            {
                check = crate::check::expected::ExpectedCheck::Skipped(format!(
                    "the file pins the behaviour of {} and the model here is {}: {why}",
                    profile.name, config.profile.name
                ));
            }
            if case.setup.fail_nth.is_some() {
                // The armed step may end in ENOMEM instead (judged by
                // fault-injection-enomem-or-predicted); the file pins the outcome without the fault.
                check = crate::check::expected::ExpectedCheck::Skipped(
                    "a fail-nth case: the armed step may fail with ENOMEM instead of the file's expectation".into(),
                );
            }
            record(check, &mut executed.verdict);
        }
    }
    Ok(executed.verdict)
}

/// What a replay worker sends for one file.
struct Replayed {
    index: usize,
    name: String,
    verdict: CaseVerdict,
    title: Option<String>,
    case: Option<Case>,
}

/// What a replay worker returns when its files are done (or it stopped early): its
/// executor's resources, its phases, and the error that ended it early, if any.
type WorkerEnd = (Option<ExecutorStats>, PhaseSummary, Option<ExecError>);

/// One worker: its own executor, the files `k, k + jobs, ...`; `send` takes each result
/// and says whether to go on. It stops early when [`crate::command::interrupt::requested`] says so.
fn worker(
    config: &RunConfig,
    mut executor: Executor,
    files: Vec<(usize, Loaded)>,
    mut send: impl FnMut(Replayed) -> bool,
) -> WorkerEnd {
    let mut phases = PhaseSummary::default();
    for (index, loaded) in files {
        if crate::command::interrupt::requested().is_some() {
            break;
        }
        let (verdict, title, case) = match loaded.file {
            Err(e) => (CaseVerdict::broken(format!("invalid corpus file: {e}")), None, None),
            Ok(file) => {
                let verdict = match replay_file(&mut executor, config, &file) {
                    Ok(v) => v,
                    Err(e) => return (None, phases, Some(e)),
                };
                if let Some(p) = executor.last_phases() {
                    phases.add(&p);
                }
                (verdict, Some(file.title), Some(file.case))
            }
        };
        if !send(Replayed { index, name: loaded.name, verdict, title, case }) {
            break;
        }
    }
    // The executor's resources at the end, as `run` reports them (leak check).
    match executor.bare_loop(&[]) {
        Ok((_, stats)) => (Some(stats), phases, None),
        Err(e) => (None, phases, Some(e)),
    }
}

/// Turns replayed files into results, in file order, whatever order they come in.
struct InOrder<'a, F: FnMut(&FileResult)> {
    waiting: BTreeMap<usize, Replayed>,
    next: usize,
    tally: Tally,
    failures: Vec<FailedCase>,
    results: Vec<FileResult>,
    on_file: &'a mut F,
}

impl<F: FnMut(&FileResult)> InOrder<'_, F> {
    fn take(&mut self, r: Replayed) {
        self.waiting.insert(r.index, r);
        while let Some(r) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.emit(r);
        }
    }

    /// After an early stop: the files done behind a gap, still in file order.
    fn flush(&mut self) {
        while let Some((_, r)) = self.waiting.pop_first() {
            self.emit(r);
        }
    }

    fn emit(&mut self, r: Replayed) {
        self.tally.add(&r.verdict);
        let result = FileResult {
            file: r.name.clone(),
            title: r.title,
            status: status_of(&r.verdict),
            details: details_of(&r.verdict),
        };
        (self.on_file)(&result);
        self.results.push(result);
        if let (true, Some(case)) = (r.verdict.failed(), r.case) {
            self.failures.push(FailedCase {
                index: r.index as u64,
                case,
                violations: r.verdict.violations,
                file: Some(r.name),
                known_bug: r.verdict.known_bug,
                baselined: false,
            });
        }
    }
}

/// Replays `files` on `config.jobs` executors (file `i` goes to executor `i % jobs`), calling
/// `on_file` after each, in file order. A worker thread that cannot be started runs its share
/// on the calling thread (named in the report's notes). A stop request
/// ([`crate::command::interrupt`]) or an executor that cannot be replaced ends the replay early: the
/// report then covers the files done and says why in [`RunReport::interrupted`].
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all, or the timeout is too short.
pub fn replay(
    config: &RunConfig,
    files: Vec<Loaded>,
    mut on_file: impl FnMut(&FileResult),
) -> Result<RunReport, ExecError> {
    let jobs = config.jobs.clamp(1, 64);
    let executors = runner::start_executors(config)?;
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let start = Instant::now();
    let mut order = InOrder {
        waiting: BTreeMap::new(),
        next: 0,
        tally: Tally::new(),
        failures: Vec::new(),
        results: Vec::new(),
        on_file: &mut on_file,
    };
    order.tally.invariants.entry(EXPECTED_MATCHES_CORPUS.to_string()).or_default();
    order.tally.add_environment(&environment);
    let total = files.len();
    let mut shares: Vec<Vec<(usize, Loaded)>> = (0..jobs).map(|_| Vec::new()).collect();
    for (index, loaded) in files.into_iter().enumerate() {
        shares[index % jobs].push((index, loaded));
    }
    let (ends, mut notes) = run_workers(config, shares, executors, &mut order);
    order.flush();
    let mut executor_stats = Vec::with_capacity(jobs);
    let mut phases = PhaseSummary::default();
    let mut errors = Vec::new();
    for (stats, p, error) in ends {
        executor_stats.extend(stats);
        phases.merge(&p);
        if let Some(e) = error {
            errors.push(e.to_string());
        }
    }
    let InOrder { tally, failures, results, .. } = order;
    let interrupted = runner::interruption(results.len() as u64, total as u64, &errors);
    if interrupted.is_none() {
        notes.extend(errors);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(RunReport {
        seed: 0,
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
        corpus_files: Some(results),
        interrupted,
        notes,
        baseline: None,
    })
}

/// Runs each share on a worker thread with its executor, the results going to `order` as they
/// come; a share whose thread cannot start runs here (a note says so). Returns the workers'
/// ends and the notes.
fn run_workers(
    config: &RunConfig,
    shares: Vec<Vec<(usize, Loaded)>>,
    executors: Vec<Executor>,
    order: &mut InOrder<'_, impl FnMut(&FileResult)>,
) -> (Vec<WorkerEnd>, Vec<String>) {
    let mut notes = Vec::new();
    let (tx, rx) = mpsc::channel::<Replayed>();
    let ends: Vec<WorkerEnd> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut here = Vec::new();
        for (k, (share, executor)) in shares.into_iter().zip(executors).enumerate() {
            // The share and its executor go to the thread through a cell, so that they stay
            // here when the thread cannot be started.
            let cell = std::sync::Arc::new(std::sync::Mutex::new(Some((share, executor))));
            let (tx, theirs) = (tx.clone(), std::sync::Arc::clone(&cell));
            let body = move || match theirs.lock().ok().and_then(|mut c| c.take()) {
                Some((share, executor)) => worker(config, executor, share, |r| tx.send(r).is_ok()),
                None => (None, PhaseSummary::default(), Some(ExecError::Died("lost its executor".into()))),
            };
            match std::thread::Builder::new().name(format!("replay-{k}")).spawn_scoped(scope, body) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    notes.push(runner::thread_note(&format!("replay worker {k}"), &e));
                    if let Some(taken) = cell.lock().ok().and_then(|mut c| c.take()) {
                        here.push(taken);
                    }
                }
            }
        }
        drop(tx);
        let mut ends = Vec::new();
        // Shares whose thread did not start run here, with the results of the others taken
        // in between, so that the lines still come out in file order as files finish.
        for (share, executor) in here {
            let end = worker(config, executor, share, |r| {
                order.take(r);
                while let Ok(r) = rx.try_recv() {
                    order.take(r);
                }
                true
            });
            ends.push(end);
        }
        for r in &rx {
            order.take(r);
        }
        for h in handles {
            let panicked = || (None, PhaseSummary::default(), Some(ExecError::Died("a worker panicked".into())));
            ends.push(h.join().unwrap_or_else(|_| panicked()));
        }
        ends
    });
    (ends, notes)
}
