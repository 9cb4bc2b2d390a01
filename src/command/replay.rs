//! Replay: every corpus file goes through the same executor pool, model and judge
//! as a generated case (`command::pool`, `command::pipeline`), plus the file-level check
//! `expected-matches-corpus`. The result is an ordinary [`RunReport`] (so every
//! report format and exit code of `run` applies) with one [`FileResult`] per file.
//! A file that cannot be loaded is a broken case; the other files still run.

use crate::case::Case;
use crate::check::expected::{EXPECTED_MATCHES_CORPUS, check_expected, record};
use crate::check::{CaseVerdict, Tally};
use crate::command::pipeline::Executed;
use crate::command::pool::{Item, run_pool};
use crate::command::run::{self as runner, RunConfig};
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
    let executed = runner::execute_case(executor, config, &case)?;
    Ok(judge_file(config, file, &case, executed))
}

/// The verdict of a file's (neutralized) `case`, run and judged: with the file-level check
/// `expected-matches-corpus` when the file has an `expected`.
fn judge_file(config: &RunConfig, file: &CorpusFile, case: &Case, mut executed: Executed) -> CaseVerdict {
    if let Some(expected) = &file.expected {
        // The files' expectations describe the spec's machine: Linux 6.18 (the linux-6.18
        // profile, or the file's own `profile`) as root. Another profile's differing prediction is a skip, not a drift.
        let profile = match &file.profile {
            // Validated at load.
            Some(name) => crate::model::profile::resolve(name, "").map_or(&crate::model::profile::LINUX_6_18, |p| p.0),
            None => &crate::model::profile::LINUX_6_18,
        };
        let reference = predict(profile, &crate::model::guest::reference_for(case), case);
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
    executed.verdict
}

/// A corpus file as the pool runs it: its neutralized case, or why it has none.
struct FileItem {
    name: String,
    file: Result<CorpusFile, String>,
    /// The file's case, neutralized (`None` when the file did not load).
    case: Option<Case>,
}

impl Item for FileItem {
    fn case(&self) -> Result<&Case, &str> {
        match (&self.case, &self.file) {
            (Some(case), _) => Ok(case),
            (None, Err(why)) => Err(why),
            (None, Ok(_)) => Err("no case"),
        }
    }
}

impl FileItem {
    fn of(loaded: Loaded) -> FileItem {
        let file = loaded.file.map_err(|e| format!("invalid corpus file: {e}"));
        let case = file.as_ref().ok().map(|f| crate::generate::neutralize(f.case.clone()));
        FileItem { name: loaded.name, file, case }
    }
}

/// The report's view of a replayed file, built in file order.
struct Collected {
    tally: Tally,
    failures: Vec<FailedCase>,
    results: Vec<FileResult>,
}

impl Collected {
    fn add(&mut self, index: usize, item: &FileItem, verdict: CaseVerdict) -> &FileResult {
        self.tally.add(&verdict);
        let title = item.file.as_ref().ok().map(|f| f.title.clone());
        let result =
            FileResult { file: item.name.clone(), title, status: status_of(&verdict), details: details_of(&verdict) };
        if let (true, Ok(file)) = (verdict.failed(), &item.file) {
            self.failures.push(FailedCase {
                index: index as u64,
                case: file.case.clone(),
                violations: verdict.violations,
                file: Some(item.name.clone()),
                known_bug: verdict.known_bug,
                baselined: false,
            });
        }
        self.results.push(result);
        self.results.last().unwrap_or_else(|| unreachable!("just pushed"))
    }
}

/// Replays `files` through the executor pool (`command::pool`: file `i` on executor
/// `i % jobs`), calling `on_file` after each, in file order, as soon as the files before it are
/// done. A stop request ([`crate::command::interrupt`]) or an executor that cannot be replaced
/// ends the replay early: the report then covers the files done and says why in
/// [`RunReport::interrupted`].
///
/// # Errors
/// [`ExecError`] when an executor cannot be started at all, or the timeout is too short.
pub fn replay(
    config: &RunConfig,
    files: Vec<Loaded>,
    mut on_file: impl FnMut(&FileResult) + Send,
) -> Result<RunReport, ExecError> {
    let items: Vec<FileItem> = files.into_iter().map(FileItem::of).collect();
    let mut collected = Collected { tally: Tally::new(), failures: Vec::new(), results: Vec::new() };
    collected.tally.invariants.entry(EXPECTED_MATCHES_CORPUS.to_string()).or_default();
    let mut pool = run_pool(config, &items, |i, result| {
        let item = &items[i];
        let verdict = match (result, &item.file, &item.case) {
            (Ok(executed), Ok(file), Some(case)) => judge_file(config, file, case, executed),
            (Ok(executed), ..) => executed.verdict,
            (Err(broken), ..) => broken,
        };
        on_file(collected.add(i, item, verdict));
    })?;
    collected.tally.add_environment(&pool.environment);
    let Collected { tally, failures, results } = collected;
    let interrupted = pool.interruption(items.len() as u64);
    Ok(RunReport {
        seed: 0,
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
        corpus_files: Some(results),
        interrupted,
        notes: pool.notes,
        baseline: None,
    })
}
