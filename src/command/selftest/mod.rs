//! `unshare-fuzz selftest`: proves that the oracle can fail, and that it does not
//! fail on a correct kernel.
//!
//! 1. The honest kernel: one executor with no filter runs N generated cases;
//!    every invariant must hold, no case may be broken, and the environment
//!    must show no restriction.
//! 2. Lying kernels ([`mutants`](crate::exec::executor::mutants)): for each mutant, a fresh executor (its own
//!    throwaway namespaces, so a fooled harness cannot touch the host) installs
//!    the mutant's seccomp filter before its environment probe, then runs the
//!    same case stream until the first violation or N cases.
//! 3. Model mutants ([`oracles`]): the historical kernel profiles (and, as an
//!    extra, 6.18 with one rule removed) judge the honest run's observations;
//!    each historical profile must disagree on some case, and the report names
//!    the rule behind each disagreement.
//!
//! Pure orchestration over [`crate::exec`], [`crate::model`] and [`crate::check`];
//! printing is in [`report`].

pub mod ablations;
pub mod oracles;
pub mod report;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::case::Case;
use crate::check::{CaseVerdict, Tally};
use crate::command::pipeline::{RunConfig, execute_case};
use crate::command::run::cases_for_seed;
use crate::env::Environment;
use crate::exec::observe::Outcome;
use crate::exec::{ExecError, Executor};
use crate::model::{KernelProfile, profile::LINUX_6_18};

use crate::exec::executor::mutants::Mutant;
use oracles::{Judged, OracleResult};

/// The JSON report's schema version.
pub const FORMAT_VERSION: u32 = 1;

/// What to run.
#[derive(Debug, Clone)]
pub struct SelftestConfig {
    /// Cases for the honest run, and the most cases per mutant.
    pub cases_per_mutant: u64,
    /// Generator seed (the same case stream for every run).
    pub seed: u64,
    /// Watchdog timeout per case.
    pub timeout: Duration,
    /// The lying kernels to try.
    pub mutants: Vec<&'static Mutant>,
}

/// One violation, in short.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationLine {
    /// Invariant id.
    pub invariant: &'static str,
    /// Step index, if step-level.
    pub step: Option<usize>,
    /// What differed.
    pub detail: String,
}

/// A case that violated something.
#[derive(Debug, Clone, Serialize)]
pub struct FailedCase {
    /// 1-based position in the case stream.
    pub number: u64,
    /// The case.
    pub case: Case,
    /// Its one-line form.
    pub text: String,
    /// What did not hold.
    pub violations: Vec<ViolationLine>,
}

impl FailedCase {
    fn new(number: u64, case: &Case, verdict: &CaseVerdict) -> FailedCase {
        FailedCase {
            number,
            case: case.clone(),
            text: case.to_string(),
            violations: verdict
                .violations
                .iter()
                .map(|v| ViolationLine { invariant: v.invariant, step: v.step, detail: v.detail.clone() })
                .collect(),
        }
    }

    /// The invariants that fired, each once, in report order.
    pub fn invariants(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for v in &self.violations {
            if !out.contains(&v.invariant) {
                out.push(v.invariant);
            }
        }
        out
    }
}

/// The honest kernel's run.
#[derive(Debug, Clone, Serialize)]
pub struct HonestResult {
    /// Cases generated.
    pub cases: u64,
    /// Wall time, executor start included.
    pub seconds: f64,
    /// Restrictions the executor found (must be empty).
    pub restrictions: Vec<String>,
    /// The full tally.
    pub tally: Tally,
    /// The first few failed cases (must be none).
    pub failures: Vec<FailedCase>,
}

impl HonestResult {
    /// Zero violations, zero broken cases, no restriction, every case run.
    pub fn clean(&self, wanted: u64) -> bool {
        self.cases == wanted
            && self.tally.violations() == 0
            && self.tally.broken_cases() == 0
            && self.restrictions.is_empty()
    }
}

/// One lying kernel's run.
#[derive(Debug, Clone, Serialize)]
pub struct MutantResult {
    /// Mutant name.
    pub name: &'static str,
    /// What it lies about.
    pub lie: &'static str,
    /// Where the lie comes from.
    pub origin: &'static str,
    /// A violation was found.
    pub detected: bool,
    /// Cases generated (up to and including the detecting one).
    pub cases_run: u64,
    /// Wall time, executor start included.
    pub seconds: f64,
    /// Cases skipped (setup impossible here).
    pub skipped: u64,
    /// Cases the harness could not judge (often a setup whose own unshare the filter broke).
    pub broken: u64,
    /// The detecting case.
    pub first_failure: Option<FailedCase>,
    /// The executor's restriction note, proof that the filter was installed.
    pub restriction_note: Option<String>,
    /// The executor could not be started or the filter could not be installed.
    pub error: Option<String>,
}

impl MutantResult {
    /// The invariants that fired on the detecting case.
    pub fn invariants(&self) -> Vec<&'static str> {
        self.first_failure.as_ref().map(FailedCase::invariants).unwrap_or_default()
    }
}

/// Pass or fail, with every reason.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Everything required held.
    pub passed: bool,
    /// What did not (empty when passed).
    pub problems: Vec<String>,
}

/// Everything `selftest` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SelftestReport {
    /// Schema version.
    pub format: u32,
    /// Generator seed.
    pub seed: u64,
    /// Case budget per run.
    pub cases_per_mutant: u64,
    /// The honest executor's environment.
    pub environment: Environment,
    /// The honest kernel.
    pub honest: HonestResult,
    /// The lying kernels, in table order.
    pub mutants: Vec<MutantResult>,
    /// Historical profiles as oracles over the honest observations.
    pub model_mutants: Vec<OracleResult>,
    /// linux-6.18 with one rule removed, as oracle over the same observations (informational).
    pub ablations: Vec<OracleResult>,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Set when a stop request ([`crate::command::interrupt`]: SIGINT, SIGTERM, a closed stdout)
    /// ended the selftest early: what stopped it, and where.
    pub interrupted: Option<String>,
}

impl SelftestReport {
    /// 0 when the verdict passed; 2 when the selftest was interrupted (it proves nothing);
    /// 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted.is_some() {
            return 2;
        }
        i32::from(!self.verdict.passed)
    }
}

/// An executor plus what is needed to restart it (the run config of the one-case pipeline).
struct Session {
    executor: Executor,
    env: Environment,
    config: RunConfig,
}

impl Session {
    fn start(args: Vec<String>, timeout: Duration) -> Result<Session, ExecError> {
        let config = RunConfig::one_at_a_time(&LINUX_6_18, timeout, args);
        let executor = config.spawn_executor(1, 0)?;
        let env = executor.environment().clone();
        Ok(Session { executor, env, config })
    }

    /// Predicts with `profile`, runs unless skipped, judges ([`execute_case`], the one-case
    /// pipeline every command shares). The outcome is returned when the case ran to a judgement.
    fn check(
        &mut self,
        profile: &'static KernelProfile,
        case: &Case,
    ) -> Result<(CaseVerdict, Option<Outcome>), ExecError> {
        self.config.profile = profile;
        let executed = execute_case(&mut self.executor, &self.config, case)?;
        // A restarted executor probed its environment again.
        self.env.clone_from(self.executor.environment());
        Ok((executed.verdict, executed.outcome))
    }
}

/// How many failed cases of the honest run the report keeps in full.
const HONEST_FAILURES_KEPT: usize = 5;

fn run_honest(config: &SelftestConfig) -> Result<(HonestResult, Environment, Vec<Judged>), ExecError> {
    let start = Instant::now();
    let mut session = Session::start(Vec::new(), config.timeout)?;
    let environment = session.env.clone();
    let mut tally = Tally::new();
    let mut failures = Vec::new();
    let mut judged = Vec::new();
    let mut cases = 0;
    for (i, case) in cases_for_seed(config.seed).take(config.cases_per_mutant as usize).enumerate() {
        if crate::command::interrupt::requested().is_some() {
            break;
        }
        let (verdict, outcome) = session.check(&LINUX_6_18, &case)?;
        tally.add(&verdict);
        cases += 1;
        let number = i as u64 + 1;
        if verdict.failed() {
            if failures.len() < HONEST_FAILURES_KEPT {
                failures.push(FailedCase::new(number, &case, &verdict));
            }
        } else if let (Some(outcome), None) = (outcome, &verdict.broken) {
            judged.push(Judged { number, case, outcome });
        }
    }
    let honest = HonestResult {
        cases,
        seconds: start.elapsed().as_secs_f64(),
        restrictions: environment.restrictions.clone(),
        tally,
        failures,
    };
    Ok((honest, environment, judged))
}

fn run_mutant(config: &SelftestConfig, mutant: &'static Mutant) -> MutantResult {
    let start = Instant::now();
    let mut result = MutantResult {
        name: mutant.name,
        lie: mutant.lie,
        origin: mutant.origin,
        detected: false,
        cases_run: 0,
        seconds: 0.0,
        skipped: 0,
        broken: 0,
        first_failure: None,
        restriction_note: None,
        error: None,
    };
    let args = vec!["--mutant".to_string(), mutant.name.to_string()];
    let outcome = Session::start(args, config.timeout).and_then(|mut session| {
        let prefix = format!("SELFTEST MUTANT {}:", mutant.name);
        result.restriction_note = session.env.restrictions.iter().find(|r| r.starts_with(&prefix)).cloned();
        if result.restriction_note.is_none() {
            result.error = Some(format!(
                "the executor started with --mutant {} does not report the filter in its restrictions",
                mutant.name
            ));
            return Ok(());
        }
        for (i, case) in cases_for_seed(config.seed).take(config.cases_per_mutant as usize).enumerate() {
            if crate::command::interrupt::requested().is_some() {
                break;
            }
            let (verdict, _) = session.check(&LINUX_6_18, &case)?;
            result.cases_run += 1;
            result.skipped += u64::from(verdict.case_skipped.is_some());
            result.broken += u64::from(verdict.broken.is_some());
            if verdict.failed() {
                result.detected = true;
                result.first_failure = Some(FailedCase::new(i as u64 + 1, &case, &verdict));
                break;
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        result.error = Some(format!("mutant {}: {e}", mutant.name));
    }
    result.seconds = start.elapsed().as_secs_f64();
    result
}

fn verdict(config: &SelftestConfig, report: &SelftestReport) -> Verdict {
    let mut problems = Vec::new();
    let h = &report.honest;
    if !h.clean(config.cases_per_mutant) {
        problems.push(format!(
            "the honest run is not clean: {} of {} cases run, {} violations, {} broken cases, {} restrictions{}",
            h.cases,
            config.cases_per_mutant,
            h.tally.violations(),
            h.tally.broken_cases(),
            h.restrictions.len(),
            h.restrictions.first().map(|r| format!(" (first: {r})")).unwrap_or_default()
        ));
    }
    for m in &report.mutants {
        if let Some(e) = &m.error {
            problems.push(e.clone());
        } else if !m.detected {
            problems.push(format!("mutant {} was not detected in {} cases", m.name, m.cases_run));
        }
    }
    for o in &report.model_mutants {
        if !o.disagrees {
            problems.push(format!(
                "profile {} agrees with this kernel on all {} judged cases: the generators never exercise its differences",
                o.label, o.cases_judged
            ));
        }
    }
    Verdict { passed: problems.is_empty(), problems }
}

/// Runs the whole selftest. `progress` gets one line per finished run.
///
/// # Errors
/// [`ExecError`] when the honest executor cannot start or fails; a mutant's executor failing
/// is recorded in its row instead.
pub fn run(config: &SelftestConfig, mut progress: impl FnMut(String)) -> Result<SelftestReport, ExecError> {
    let (honest, environment, judged) = run_honest(config)?;
    progress(format!(
        "honest kernel: {} cases, {} violations, {} broken, {:.1} s",
        honest.cases,
        honest.tally.violations(),
        honest.tally.broken_cases(),
        honest.seconds
    ));
    let mut mutants = Vec::new();
    let mut interrupted = crate::command::interrupt::requested()
        .map(|c| format!("{c}, during the honest run ({} of {} cases)", honest.cases, config.cases_per_mutant));
    for m in &config.mutants {
        if interrupted.is_some() {
            break;
        }
        let r = run_mutant(config, m);
        if let Some(c) = crate::command::interrupt::requested() {
            interrupted = Some(format!(
                "{c}, at mutant {} ({} of {} mutants run)",
                m.name,
                mutants.len() + 1,
                config.mutants.len()
            ));
        }
        progress(match (&r.error, &r.first_failure) {
            (Some(e), _) => format!("mutant {}: ERROR {e}", r.name),
            (None, Some(f)) => {
                format!("mutant {}: detected at case {} ({})", r.name, f.number, f.invariants().join(", "))
            }
            (None, None) => format!("mutant {}: NOT detected in {} cases", r.name, r.cases_run),
        });
        mutants.push(r);
    }
    let model_mutants = oracles::historical(&environment, &judged);
    let ablations = ablations::ablations(&environment, &judged);
    let mut report = SelftestReport {
        format: FORMAT_VERSION,
        seed: config.seed,
        cases_per_mutant: config.cases_per_mutant,
        environment,
        honest,
        mutants,
        model_mutants,
        ablations,
        verdict: Verdict { passed: false, problems: Vec::new() },
        interrupted,
    };
    report.verdict = verdict(config, &report);
    if let Some(why) = &report.interrupted {
        report.verdict.passed = false;
        report
            .verdict
            .problems
            .insert(0, format!("INTERRUPTED ({why}): the selftest did not finish and proves nothing"));
    }
    Ok(report)
}
