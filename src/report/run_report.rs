//! The result of a run or a replay, as every report reads it: the tally, the failed cases in
//! full, the environment and the run's figures ([`RunReport`]), and one line per replayed corpus
//! file ([`FileResult`]). Built by the commands (`command::run`, `command::replay`); pure data.

use serde::Serialize;

use crate::case::Case;
use crate::check::{Tally, Violation};
use crate::env::Environment;
use crate::exec::executor::phases::PhaseSummary;
use crate::exec::wire::protocol::ExecutorStats;

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
    /// The known kernel bug that explains every violation of the case (`check::known`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_bug: Option<&'static str>,
    /// A baseline (`--baseline`) lists these violations as known: they do not fail the run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub baselined: bool,
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
    /// Set when the run ended before its last case (a signal, a closed stdout, an executor
    /// that could not be restarted): the report covers the cases done, and only those.
    pub interrupted: Option<Interruption>,
    /// What else the reader should know about how the run went (a worker thread that could
    /// not be started and whose cases ran on the main thread, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The baseline of known violations applied to the run (`--baseline`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
}

impl RunReport {
    /// The exit status: 1 if anything was violated; 2 if any case was broken, if the run was
    /// interrupted, or if no case reached the system call (an empty or all-skipped run proves
    /// nothing); ORed, so 3 is a violation plus one of those.
    pub fn exit_code(&self) -> i32 {
        let mut code = self.tally.exit_code();
        // With a baseline, only violations it does not list fail the run.
        if self.baseline.as_ref().is_some_and(|b| b.new_violations == 0) {
            code &= !1;
        }
        if self.interrupted.is_some() || self.tally.reached_syscall == 0 {
            code |= 2;
        }
        code
    }
}

/// Why and where a run stopped before its last case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interruption {
    /// Cases judged before it stopped: the report covers exactly these.
    pub after_cases: u64,
    /// Cases the run was to judge.
    pub planned_cases: u64,
    /// What stopped it: `SIGINT`, `SIGTERM`, `SIGHUP`, `stdout closed (...)`, or an executor
    /// that failed and could not be replaced.
    pub cause: String,
}

impl Interruption {
    /// `interrupted after 12 of 1000 cases (SIGTERM)`.
    pub fn line(&self) -> String {
        format!("interrupted after {} of {} cases ({})", self.after_cases, self.planned_cases, self.cause)
    }
}

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

/// What a baseline (`--baseline`, `report::baseline`) did to a run, for the reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaselineSummary {
    /// The file.
    pub path: String,
    /// Entries in it.
    pub entries: usize,
    /// Violations of the run it lists (they do not fail the run).
    pub known_violations: u64,
    /// Violations it does not list (they fail the run).
    pub new_violations: u64,
}
