//! Shrinking failures into the corpus: `run --save-failures DIR` and
//! `minimize FILE`. A failing case is reduced with [`shrink`], re-running
//! every candidate on the kernel (through the same executor, model, judge and
//! fault hook as the run) and keeping it only if the same invariant still
//! fails; the minimal case is written as a corpus file whose comments name the
//! invariant, the seed and what the kernel did, and whose `expected` is the
//! model's prediction.

use crate::case::Case;
use crate::check::CaseVerdict;
use crate::check::expected::{EXPECTED_MATCHES_CORPUS, expectations_of};
use crate::command::run::{self as runner, Executed, FailedCase, RunConfig, RunReport};
use crate::exec::observe::Outcome;
use crate::exec::{ExecError, Executor};

use crate::command::replay::replay_file;
use crate::corpus::error::StoreError;
use crate::corpus::shrink::{Shrunk, shrink};
use crate::corpus::store::Store;
use crate::corpus::{CorpusFile, FORMAT_VERSION, Origin};

/// Kernel runs a single shrink may use, unless told otherwise.
pub const DEFAULT_BUDGET: usize = 400;

/// Why saving or minimizing failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The executor failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The corpus file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The case does not fail in a way that can be shrunk.
    #[error("{0}")]
    NothingToShrink(String),
}

/// One minimized case.
#[derive(Debug, Clone)]
pub struct Minimized {
    /// The file to write.
    pub file: CorpusFile,
    /// The invariant it violates.
    pub invariant: &'static str,
    /// The case shrinking started from.
    pub original: Case,
    /// What the shrink did.
    pub shrunk: Shrunk,
}

/// One failure written (or found already written) by [`save_failures`].
#[derive(Debug, Clone)]
pub struct Saved {
    /// Store key (`<invariant>-<hash8>.json`).
    pub key: String,
    /// Where it is, for printing.
    pub path: String,
    /// False if an identical case was already in the store.
    pub new: bool,
    /// The minimized case and how it was found.
    pub minimized: Minimized,
}

/// The invariant a shrink keeps failing: the first violated one, other than the
/// file-level `expected-matches-corpus` (which is tied to the exact steps).
pub fn target_invariant(verdict: &CaseVerdict) -> Option<&'static str> {
    verdict.violations.iter().map(|v| v.invariant).find(|id| *id != EXPECTED_MATCHES_CORPUS)
}

/// 64-bit FNV-1a: a hash that stays the same across Rust versions (file names depend on it).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The file name for a minimized case: `<invariant>-<8 hex digits of its hash>.json`.
pub fn key_for(invariant: &str, case: &Case) -> String {
    let json = serde_json::to_string(case).unwrap_or_default();
    format!("{invariant}-{:08x}.json", fnv1a(json.as_bytes()) as u32)
}

fn fails_with(executor: &mut Executor, config: &RunConfig, case: &Case, target: &str) -> Result<bool, ExecError> {
    let e = runner::execute_case(executor, config, case)?;
    Ok(e.verdict.violations.iter().any(|v| v.invariant == target))
}

fn step_lines(config: &RunConfig, env_release: &str, case: &Case, e: &Executed) -> Vec<String> {
    let observed: Vec<String> = match &e.outcome {
        Some(Outcome::Completed { trace }) => trace.steps.iter().map(|s| s.result.to_string()).collect(),
        Some(other) => vec![format!("(ended: {})", other.kind())],
        None => vec![],
    };
    let predicted = expectations_of(&e.prediction).unwrap_or_default();
    let mut out = vec![format!("Observed on kernel {env_release}, model {}:", config.profile.name)];
    for (i, step) in case.steps.iter().enumerate() {
        let got = observed.get(i).map_or("(no result)", String::as_str);
        let want = predicted
            .get(i)
            .map_or("(none)".to_string(), |p| format!("{} (rule {})", p.result, p.rule.as_deref().unwrap_or("?")));
        out.push(format!("  step {i}: {step}: kernel returned {got}; the model predicts {want}"));
    }
    out
}

/// Shrinks `case`, which fails `target`, and builds its corpus file. `intro` are
/// the first comment lines (where the case came from).
///
/// # Errors
/// [`ExecError`] if the executor fails.
pub fn minimize_case(
    executor: &mut Executor,
    config: &RunConfig,
    case: &Case,
    target: &'static str,
    budget: usize,
    intro: Vec<String>,
) -> Result<Minimized, ExecError> {
    let shrunk = shrink(case, budget, |c| fails_with(executor, config, c, target))?;
    let last = runner::execute_case(executor, config, &shrunk.case)?;
    let detail = last.verdict.violations.iter().find(|v| v.invariant == target).map(|v| v.detail.clone());
    let mut comments = intro;
    comments.push(format!(
        "Shrunk from {case} to this case in {} kernel runs ({} reductions kept{}).",
        shrunk.runs,
        shrunk.accepted,
        if shrunk.budget_exhausted {
            "; the run budget ran out, a smaller case may exist"
        } else {
            "; no single reduction still fails"
        }
    ));
    comments.push(match &detail {
        Some(d) => format!("Violated invariant {target}: {d}"),
        None => format!(
            "Violated invariant {target} while shrinking, but NOT on the final re-run: the failure may be flaky."
        ),
    });
    let release = executor.environment().kernel_release.clone();
    comments.extend(step_lines(config, &release, &shrunk.case, &last));
    comments.push(
        "`expected` is the model's prediction when this file was written: check it against \
         the spec before committing (docs/corpus.md)."
            .into(),
    );
    if let Some(fault) = config.fault {
        comments.push(format!(
            "Written under the test-only fault injection `{fault}`: the violation is fake; \
             replay without the fault to see whether the case fails for real."
        ));
    }
    let file = CorpusFile {
        format: FORMAT_VERSION,
        title: format!("{target} violated: {}", shrunk.case),
        comments,
        origin: None,
        seed: None,
        profile: None,
        case: shrunk.case.clone(),
        expected: expectations_of(&last.prediction),
    };
    Ok(Minimized { file, invariant: target, original: case.clone(), shrunk })
}

/// Up to `limit` failures, distinct invariants first, then in run order.
fn pick(failures: &[FailedCase], limit: usize) -> Vec<(&FailedCase, &'static str)> {
    let targets: Vec<(&FailedCase, &'static str)> = failures
        .iter()
        .filter_map(|f| {
            f.violations.iter().map(|v| v.invariant).find(|id| *id != EXPECTED_MATCHES_CORPUS).map(|t| (f, t))
        })
        .collect();
    let mut out: Vec<(&FailedCase, &'static str)> = Vec::new();
    for &(f, t) in &targets {
        if out.len() < limit && !out.iter().any(|(_, u)| *u == t) {
            out.push((f, t));
        }
    }
    for &(f, t) in &targets {
        if out.len() < limit && !out.iter().any(|(g, _)| g.index == f.index) {
            out.push((f, t));
        }
    }
    out
}

/// Shrinks up to `limit` failures of `report` and writes each minimal case into
/// `store` as `<invariant>-<hash8>.json` (origin `run --save-failures`, with the seed).
///
/// # Errors
/// [`SaveError`] if the executor fails or a file cannot be written.
pub fn save_failures(
    config: &RunConfig,
    report: &RunReport,
    store: &mut dyn Store,
    limit: usize,
    budget: usize,
) -> Result<Vec<Saved>, SaveError> {
    let chosen = pick(&report.failures, limit);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let mut executor = config.spawn_executor(1, 0)?;
    let existing = store.keys()?;
    let mut out: Vec<Saved> = Vec::new();
    for (failure, target) in chosen {
        let intro =
            vec![format!("Found by `unshare-fuzz run --seed {}` (case #{} of that run).", report.seed, failure.index)];
        let mut m = minimize_case(&mut executor, config, &failure.case, target, budget, intro)?;
        m.file.origin = Some(Origin::SaveFailures);
        m.file.seed = Some(report.seed);
        let key = key_for(target, &m.file.case);
        let new = !existing.contains(&key) && !out.iter().any(|s| s.key == key);
        if new {
            store.save(&key, &m.file)?;
        }
        out.push(Saved { path: store.display_name(&key).display().to_string(), key, new, minimized: m });
    }
    Ok(out)
}

/// Shrinks a failing corpus file's case (`unshare-fuzz minimize`).
///
/// # Errors
/// [`SaveError::NothingToShrink`] if the case passes, is skipped or broken here, or
/// fails only its `expected`; [`SaveError::Exec`] if the executor fails.
pub fn minimize_file(config: &RunConfig, name: &str, file: &CorpusFile, budget: usize) -> Result<Minimized, SaveError> {
    let mut executor = config.spawn_executor(1, 0)?;
    let verdict = replay_file(&mut executor, config, file)?;
    let nothing = |why: String| SaveError::NothingToShrink(format!("{name}: {why}"));
    if let Some(r) = &verdict.broken {
        return Err(nothing(format!("the case is broken here ({r})")));
    }
    if let Some(r) = &verdict.case_skipped {
        return Err(nothing(format!("the case is skipped here ({r})")));
    }
    let Some(target) = target_invariant(&verdict) else {
        return Err(nothing(if verdict.failed() {
            "only expected-matches-corpus fails; an expectation belongs to these exact steps, \
             so shrinking cannot keep it: fix the file's `expected` or the model instead"
                .into()
        } else {
            "the case passes on this kernel: nothing to minimize".into()
        }));
    };
    let mut intro = vec![format!("Minimized from {name}: {}", file.title)];
    intro.extend(file.comments.iter().map(|c| format!("(original) {c}")));
    let mut m = minimize_case(&mut executor, config, &file.case, target, budget, intro)?;
    m.file.origin = Some(Origin::Minimize);
    m.file.seed = file.seed;
    Ok(m)
}
