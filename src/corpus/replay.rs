//! Replay: every corpus file goes through the same executor, model and judge
//! as a generated case ([`runner::execute_case`]), plus the file-level check
//! `expected-matches-corpus`. The result is an ordinary [`RunReport`] (so every
//! report format and exit code of `run` applies) with one [`FileResult`] per file.
//! A file that cannot be loaded is a broken case; the other files still run.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use crate::case::Case;
use crate::check::expected::{EXPECTED_MATCHES_CORPUS, check_expected, record};
use crate::check::{CaseVerdict, Tally};
use crate::env::Environment;
use crate::exec::phases::PhaseSummary;
use crate::exec::protocol::ExecutorStats;
use crate::exec::{ExecError, Executor};
use crate::model::predict;
use crate::runner::{self, FailedCase, RunConfig, RunReport};

use super::{CorpusFile, Loaded};

/// The verdict of one file, as printed on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FileStatus {
    /// Every applicable check held.
    Pass,
    /// Something did not hold.
    Fail,
    /// The case cannot be run here (the reason says why); not a pass.
    Skip,
    /// The file is invalid, or the harness could not judge the case.
    Broken,
}

impl FileStatus {
    /// `PASS`, `FAIL`, `SKIP` or `BROKEN`.
    pub fn label(self) -> &'static str {
        match self {
            FileStatus::Pass => "PASS",
            FileStatus::Fail => "FAIL",
            FileStatus::Skip => "SKIP",
            FileStatus::Broken => "BROKEN",
        }
    }
}

/// One replayed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The file.
    pub file: String,
    /// Its title, if it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The verdict.
    pub status: FileStatus,
    /// Violations, the skip or broken reason, the load error, and notes on skipped
    /// file-level checks; one line each.
    pub details: Vec<String>,
}

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
        // profile) as root. Another profile's differing prediction is a skip, not a drift.
        let reference = predict(&crate::model::profile::LINUX_6_18, &Environment::reference(), &case);
        if let Some(check) = check_expected(expected, &executed.prediction, &reference, executed.outcome.as_ref()) {
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

/// What a replay worker returns when its files are done.
type WorkerEnd = Result<(ExecutorStats, PhaseSummary), ExecError>;

/// One worker: its own executor, the files `k, k + jobs, ...`.
fn worker(
    config: &RunConfig,
    mut executor: Executor,
    files: Vec<(usize, Loaded)>,
    tx: &mpsc::Sender<Replayed>,
) -> WorkerEnd {
    let mut phases = PhaseSummary::default();
    for (index, loaded) in files {
        let (verdict, title, case) = match loaded.file {
            Err(e) => (CaseVerdict::broken(format!("invalid corpus file: {e}")), None, None),
            Ok(file) => {
                let verdict = replay_file(&mut executor, config, &file)?;
                if let Some(p) = executor.last_phases() {
                    phases.add(&p);
                }
                (verdict, Some(file.title), Some(file.case))
            }
        };
        if tx.send(Replayed { index, name: loaded.name, verdict, title, case }).is_err() {
            break;
        }
    }
    // The executor's resources at the end, as `run` reports them (leak check).
    let (_, stats) = executor.bare_loop(&[])?;
    Ok((stats, phases))
}

/// Replays `files` on `config.jobs` executors (file `i` goes to executor `i % jobs`), calling
/// `on_file` after each, in file order.
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all.
pub fn replay(
    config: &RunConfig,
    files: Vec<Loaded>,
    mut on_file: impl FnMut(&FileResult),
) -> Result<RunReport, ExecError> {
    let jobs = config.jobs.clamp(1, 64);
    let mut executors = Vec::with_capacity(jobs);
    for slot in 0..jobs {
        executors.push(config.spawn_executor(jobs, slot)?);
    }
    let environment = executors[0].environment().clone();
    let pinned_cpus = executors.iter().map(|e| e.environment().pinned_cpu).collect();
    let start = Instant::now();
    let mut tally = Tally::new();
    tally.invariants.entry(EXPECTED_MATCHES_CORPUS.to_string()).or_default();
    tally.add_environment(&environment);
    let mut failures = Vec::new();
    let mut results = Vec::new();
    let total = files.len();
    let mut shares: Vec<Vec<(usize, Loaded)>> = (0..jobs).map(|_| Vec::new()).collect();
    for (index, loaded) in files.into_iter().enumerate() {
        shares[index % jobs].push((index, loaded));
    }
    let (tx, rx) = mpsc::channel::<Replayed>();
    let ends: Vec<WorkerEnd> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .zip(executors)
            .map(|(share, executor)| {
                let tx = tx.clone();
                scope.spawn(move || worker(config, executor, share, &tx))
            })
            .collect();
        drop(tx);
        // Files finish out of order across workers; report them in file order.
        let mut waiting: BTreeMap<usize, Replayed> = BTreeMap::new();
        let mut next = 0;
        for r in rx {
            waiting.insert(r.index, r);
            while let Some(r) = waiting.remove(&next) {
                next += 1;
                tally.add(&r.verdict);
                let result = FileResult {
                    file: r.name.clone(),
                    title: r.title,
                    status: status_of(&r.verdict),
                    details: details_of(&r.verdict),
                };
                on_file(&result);
                results.push(result);
                if let (true, Some(case)) = (r.verdict.failed(), r.case) {
                    failures.push(FailedCase {
                        index: r.index as u64,
                        case,
                        violations: r.verdict.violations,
                        file: Some(r.name),
                    });
                }
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(ExecError::Died("a worker panicked".into()))))
            .collect()
    });
    let mut executor_stats = Vec::with_capacity(jobs);
    let mut phases = PhaseSummary::default();
    for end in ends {
        let (stats, p) = end?;
        executor_stats.push(stats);
        phases.merge(&p);
    }
    if results.len() != total {
        return Err(ExecError::Died(format!("only {} of {total} files were replayed", results.len())));
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
    })
}
