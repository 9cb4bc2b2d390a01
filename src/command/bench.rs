//! Throughput measurement: the harness's cases per second with every invariant
//! checked, next to a bare loop doing the same fork + unshare + wait inside
//! the same sandbox, and next to a C "checker floor" (`scripts/bench/checker-floor.c`:
//! fork, the case child's observation, unshare, the observation again, wait), for fixed flag
//! mixes. Reports ratios, never asserts them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::abi::flags::{FLAGS, UNSHARE_VALID_MASK, bits};
use crate::abi::ns::NsObserver;
use crate::case::{Case, Step};
use crate::command::run::{RunConfig, cases_for_seed, run_cases};
use crate::exec::ExecError;
use crate::exec::executor::phases::{NAMES, PHASES, PhaseSummary};
use crate::exec::wire::protocol::ExecutorStats;

/// Rounds each mix is split into (harness and bare loop alternate).
const ROUNDS: usize = 5;

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// Mix name.
    pub mix: String,
    /// Cases in the mix.
    pub cases: usize,
    /// Harness cases per second (full pipeline, `jobs` executors).
    pub harness_per_s: f64,
    /// Bare fork+unshare+wait per second (one process).
    pub bare_per_s: f64,
    /// harness / bare.
    pub ratio: f64,
    /// The C checker floor per second (fork, the child's two observations around unshare,
    /// wait; one process pinned where the bare loop ran); `None` when it could not be built or
    /// run (see [`Placement::floor`]), and for the `--jobs` row.
    pub floor_per_s: Option<f64>,
    /// harness / floor.
    pub floor_ratio: Option<f64>,
    /// Executors used for the harness figure.
    pub jobs: usize,
    /// Violations seen (should be 0).
    pub violations: u64,
    /// Where a harness case's time went (means over its cases).
    pub phases: PhaseSummary,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Rows.
    pub rows: Vec<BenchRow>,
    /// Random mix with 2 jobs over 1 job (NaN, `null` in JSON, when the random mix did not run).
    pub jobs2_speedup: f64,
    /// The same for the bare loop: its executors running side by side over 1 executor. The
    /// kernel's own scaling (a net namespace's setup and teardown serialize), so the bound
    /// for the harness's.
    pub bare_jobs_speedup: f64,
    /// Executor resources at the end of the longest harness run.
    pub executor_stats: Vec<ExecutorStats>,
    /// Where the loops ran (`exec::executor::placement`): the bare loop's executor, the one-job harness
    /// executor, and the `--jobs` executors.
    pub placement: Placement,
}

/// The CPUs of a bench's executors (`None`: unpinned).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placement {
    /// The bare loop's executor (last round).
    pub bare: Option<u32>,
    /// The one-job harness executor (last round).
    pub one_job: Vec<Option<u32>>,
    /// Where the one-job harness's own thread ran (`command::beside`): the spare CPUs it ran
    /// apart on, empty when it ran beside its executor.
    pub one_job_harness_apart: Vec<usize>,
    /// The executors of the `--jobs` row.
    pub jobs: Vec<Option<u32>>,
    /// How the checker floor ran (CPU, sandbox, namespace observer), or why it did not.
    pub floor: String,
}

impl Placement {
    /// One line for the table's footer.
    pub fn line(&self) -> String {
        let cpu = |c: &Option<u32>| c.map_or("unpinned".to_string(), |c| format!("CPU {c}"));
        let list = |v: &[Option<u32>]| v.iter().map(cpu).collect::<Vec<_>>().join(", ");
        let jobs = if self.jobs.is_empty() {
            String::new()
        } else {
            format!("; --jobs {} {}", self.jobs.len(), list(&self.jobs))
        };
        let harness = if self.one_job_harness_apart.is_empty() {
            "beside it".to_string()
        } else {
            let cpus: Vec<String> = self.one_job_harness_apart.iter().map(ToString::to_string).collect();
            format!("apart on CPU {}", cpus.join(", "))
        };
        format!(
            "placement: bare loop {}; one job {} (harness thread {harness}){jobs}\nchecker floor: {}",
            cpu(&self.bare),
            list(&self.one_job),
            self.floor
        )
    }
}

/// Name of the random mix, the one that also runs with several jobs.
pub const RANDOM_MIX: &str = "random mix with setups";

/// The fixed mixes: each valid single flag, all namespaces, and a random mix with setups.
pub fn mixes(per_mix: usize, seed: u64) -> Vec<(String, Vec<Case>)> {
    let mut out: Vec<(String, Vec<Case>)> = FLAGS
        .iter()
        .filter(|f| f.bit & UNSHARE_VALID_MASK != 0)
        .map(|f| (f.name.to_string(), vec![Case::unshare(&[f.bit]); per_mix]))
        .collect();
    let all = crate::abi::flags::NON_USER_NAMESPACES | bits::NEWUSER;
    out.push(("all namespaces".into(), vec![Case::unshare(&[all]); per_mix]));
    out.push((RANDOM_MIX.into(), cases_for_seed(seed).take(per_mix).collect()));
    out
}

fn first_unshare(case: &Case) -> u64 {
    case.steps.iter().find_map(|s| if let Step::Unshare(f) = s { Some(f.0) } else { None }).unwrap_or(0)
}

/// One mix on one job: harness, bare loop and C floor in interleaved rounds.
fn bench_mix(
    config: &RunConfig,
    name: &str,
    cases: &[Case],
    floor: &Result<Floor, String>,
    placement: &mut Placement,
    last_stats: &mut Vec<ExecutorStats>,
) -> Result<BenchRow, ExecError> {
    let one = RunConfig { jobs: 1, ..config.clone() };
    // Interleave harness, bare and floor rounds, so that a busy moment of the machine hits
    // all three.
    let (mut harness_secs, mut bare_secs, mut violations) = (0.0, 0.0, 0);
    let mut floor_secs = Some(0.0);
    let mut phases = PhaseSummary::default();
    for chunk in cases.chunks(cases.len().div_ceil(ROUNDS).max(1)) {
        let report = run_cases(&one, chunk, |_| {})?;
        harness_secs += report.elapsed_seconds;
        violations += report.tally.violations();
        phases.merge(&report.phases);
        *last_stats = report.executor_stats;
        placement.one_job_harness_apart = crate::command::beside::spare_cpus(&report.pinned_cpus);
        placement.one_job = report.pinned_cpus;
        let flags: Vec<u64> = chunk.iter().map(first_unshare).collect();
        // A fresh executor per round, started after the harness's own has exited, so
        // that with pinning both loops lease the same CPU.
        let observer = {
            let mut bare = config.spawn_executor(1, 0)?;
            placement.bare = bare.environment().pinned_cpu;
            bare_secs += bare.bare_loop(&flags)?.0 as f64 / 1e9;
            bare.environment().ns_observer
        };
        // Then the floor, once the bare loop's executor (and its CPU lease) is gone, on
        // the CPU it had.
        if let (Ok(f), Some(total)) = (floor, floor_secs) {
            match f.run(&flags, placement.bare, observer) {
                Ok((secs, how)) => {
                    floor_secs = Some(total + secs);
                    placement.floor = how;
                }
                Err(why) => {
                    floor_secs = None;
                    placement.floor = format!("not run ({why})");
                }
            }
        }
    }
    let (harness_per_s, bare_per_s) = (cases.len() as f64 / harness_secs, cases.len() as f64 / bare_secs);
    let floor_per_s = floor_secs.filter(|_| floor.is_ok()).map(|secs| cases.len() as f64 / secs);
    let row = BenchRow {
        mix: name.to_string(),
        cases: cases.len(),
        harness_per_s,
        bare_per_s,
        ratio: harness_per_s / bare_per_s,
        floor_per_s,
        floor_ratio: floor_per_s.map(|f| harness_per_s / f),
        jobs: 1,
        violations,
        phases,
    };
    Ok(row)
}

/// The mixes named in `only` (all of them when it is empty), or the names that match none.
///
/// # Errors
/// A message naming the unknown mixes and listing the known ones.
pub fn select_mixes(per_mix: usize, seed: u64, only: &[String]) -> Result<Vec<(String, Vec<Case>)>, String> {
    let all = mixes(per_mix, seed);
    let unknown: Vec<&String> =
        only.iter().filter(|name| !all.iter().any(|(m, _)| m.eq_ignore_ascii_case(name))).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = all.iter().map(|(m, _)| m.as_str()).collect();
        return Err(format!("unknown bench mix {unknown:?}; the mixes are: {}", known.join(", ")));
    }
    Ok(all.into_iter().filter(|(m, _)| only.is_empty() || only.iter().any(|n| m.eq_ignore_ascii_case(n))).collect())
}

/// Runs each of `mixes` ([`mixes`] or [`select_mixes`]) through the harness (one job) and the
/// bare loop, then the last with `config.jobs` (at least two) jobs when it is the random mix.
///
/// # Errors
/// [`ExecError`] if an executor cannot run.
pub fn run(
    config: &RunConfig,
    mixes: &[(String, Vec<Case>)],
    mut on_row: impl FnMut(&BenchRow),
) -> Result<BenchReport, ExecError> {
    let mut rows = Vec::new();
    // On the CPU of the one-job harness executor (slot 0 of 1), so both loops run alike.
    let mut placement = Placement::default();
    let mut last_stats = Vec::new();
    let mut random_one_job = 0.0;
    let floor = Floor::build();
    placement.floor = match &floor {
        Ok(_) => "not run yet".into(),
        Err(why) => format!("not run ({why})"),
    };
    for (name, cases) in mixes {
        let row = bench_mix(config, name, cases, &floor, &mut placement, &mut last_stats)?;
        random_one_job = row.harness_per_s;
        on_row(&row);
        rows.push(row);
    }
    let Some((name, cases)) = mixes.last().filter(|(name, _)| name == RANDOM_MIX) else {
        let (jobs2_speedup, bare_jobs_speedup) = (f64::NAN, f64::NAN);
        return Ok(BenchReport { rows, jobs2_speedup, bare_jobs_speedup, executor_stats: last_stats, placement });
    };
    let jobs = config.jobs.max(2);
    let report = run_cases(&RunConfig { jobs, ..config.clone() }, cases, |_| {})?;
    placement.jobs = report.pinned_cpus.clone();
    let flags: Vec<u64> = cases.iter().map(first_unshare).collect();
    let bare_per_s = parallel_bare(config, jobs, &flags)?;
    let row = BenchRow {
        mix: format!("{name}, --jobs {jobs}"),
        cases: cases.len(),
        harness_per_s: report.cases_per_second,
        bare_per_s,
        ratio: report.cases_per_second / bare_per_s,
        floor_per_s: None,
        floor_ratio: None,
        jobs,
        violations: report.tally.violations(),
        phases: report.phases,
    };
    on_row(&row);
    let jobs2_speedup = report.cases_per_second / random_one_job;
    let bare_jobs_speedup = bare_per_s / rows.last().map_or(f64::NAN, |r| r.bare_per_s);
    rows.push(row);
    Ok(BenchReport { rows, jobs2_speedup, bare_jobs_speedup, executor_stats: last_stats, placement })
}

/// The bare loop over `flags` on `jobs` executors side by side (word `i` on executor
/// `i % jobs`, as `run` assigns cases): words per second of wall time.
///
/// # Errors
/// [`ExecError`] if an executor cannot start or run the loop.
fn parallel_bare(config: &RunConfig, jobs: usize, flags: &[u64]) -> Result<f64, ExecError> {
    let mut executors = Vec::with_capacity(jobs);
    for slot in 0..jobs {
        executors.push(config.spawn_executor(jobs, slot)?);
    }
    let shares: Vec<Vec<u64>> = (0..jobs).map(|k| flags.iter().skip(k).step_by(jobs).copied().collect()).collect();
    let start = std::time::Instant::now();
    let results: Vec<Result<(), ExecError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = executors
            .iter_mut()
            .zip(&shares)
            .map(|(ex, share)| scope.spawn(move || ex.bare_loop(share).map(|_| ())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(ExecError::Protocol("a bare-loop thread panicked".into()))))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(flags.len() as f64 / secs)
}

/// The header of the ratio table: `ratio` is harness/bare, `h/floor` harness/floor.
pub fn header() -> String {
    format!(
        "{:<34} {:>7} {:>10} {:>10} {:>6} {:>10} {:>7} {:>5}",
        "mix", "cases", "harness/s", "bare/s", "ratio", "floor/s", "h/floor", "viol"
    )
}

/// One line of the ratio table.
pub fn row_line(r: &BenchRow) -> String {
    let or_dash = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    format!(
        "{:<34} {:>7} {:>10.0} {:>10.0} {:>6.2} {:>10} {:>7} {:>5}",
        r.mix,
        r.cases,
        r.harness_per_s,
        r.bare_per_s,
        r.ratio,
        or_dash(r.floor_per_s, 0),
        or_dash(r.floor_ratio, 2),
        r.violations
    )
}

/// The C checker floor (`scripts/bench/checker-floor.c`), compiled for this run into a
/// directory of its own, removed when dropped.
struct Floor {
    dir: PathBuf,
    binary: PathBuf,
}

/// The floor's source, built into the binary so that `bench` works from anywhere.
const FLOOR_C: &str = include_str!("../../scripts/bench/checker-floor.c");

impl Floor {
    /// Writes and compiles the floor with `$CC` (default `cc`).
    fn build() -> Result<Floor, String> {
        let dir = std::env::temp_dir().join(format!("unshare-fuzz-floor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let floor = Floor { binary: dir.join("checker-floor"), dir };
        let source = floor.dir.join("checker-floor.c");
        std::fs::write(&source, FLOOR_C).map_err(|e| format!("cannot write {}: {e}", source.display()))?;
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-O2", "-o"])
            .arg(&floor.binary)
            .arg(&source)
            .output()
            .map_err(|e| format!("cannot start the C compiler `{cc}`: {e}; install one or set CC"))?;
        if !out.status.success() {
            return Err(format!("`{cc}` failed on checker-floor.c: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(floor)
    }

    /// Runs `flags` once each through the floor, pinned to `cpu`, in a sandbox of its own
    /// (fresh mount, UTS, IPC, net and pid namespaces, as the executor's) when it can make one;
    /// its seconds and how it ran.
    fn run(&self, flags: &[u64], cpu: Option<u32>, observer: NsObserver) -> Result<(f64, String), String> {
        let ns = if observer == NsObserver::PidfdIoctl { "pidfd" } else { "links" };
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--ns", ns, "--sandbox"]);
        if let Some(c) = cpu {
            cmd.args(["--cpu", &c.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let words: String = flags.iter().map(|f| format!("{f:#x}\n")).collect();
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(words.as_bytes()).map_err(|e| format!("cannot feed the floor its flag words: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| format!("waiting for the floor: {e}"))?;
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let nanos: Option<f64> =
            stdout.strip_prefix("floor: ").and_then(|rest| rest.split_whitespace().nth(3)).and_then(|n| n.parse().ok());
        match nanos {
            Some(ns_total) if out.status.success() => {
                let sandbox = if stderr.contains("cannot enter a sandbox") { "no sandbox" } else { "own sandbox" };
                let cpu = cpu.map_or("unpinned".to_string(), |c| format!("CPU {c}"));
                let how = format!(
                    "{cpu}, {sandbox}, namespace ids by {}",
                    if ns == "pidfd" { "pidfd ioctls" } else { "/proc links" }
                );
                Ok((ns_total / 1e9, how))
            }
            _ => Err(format!("the floor failed ({}): {} {}", out.status, stdout.trim(), stderr.trim())),
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
/// Short column names of the phase table, in the order of [`NAMES`].
const SHORT: [&str; PHASES] = ["fork", "setup", "obs1", "steps", "exit", "exec"];

/// The phase table: per single-job mix, microseconds per case of the harness, of the bare
/// loop and of the checker floor, the harness's phases, and `rest` (the harness's time not in any phase: request and
/// report frames; judging overlaps the next case).
pub fn phase_lines(report: &BenchReport) -> Vec<String> {
    let mut out = vec![
        "microseconds per case (means; phases measured by the case child and the executor):".to_string(),
        SHORT.iter().zip(NAMES).map(|(s, n)| format!("{s} = {n}")).collect::<Vec<_>>().join(", "),
    ];
    let mut head = format!("{:<34} {:>7} {:>7} {:>7}", "mix", "harness", "bare", "floor");
    for s in SHORT {
        head.push_str(&format!(" {s:>6}"));
    }
    head.push_str(&format!(" {:>6}", "rest"));
    out.push(head);
    for r in report.rows.iter().filter(|r| r.jobs == 1 && r.phases.cases > 0) {
        let harness_us = 1e6 / r.harness_per_s;
        let floor = r.floor_per_s.map_or("-".to_string(), |f| format!("{:.0}", 1e6 / f));
        let mut line = format!("{:<34} {:>7.0} {:>7.0} {floor:>7}", r.mix, harness_us, 1e6 / r.bare_per_s);
        for v in r.phases.mean_us {
            line.push_str(&format!(" {v:>6.0}"));
        }
        // Skipped cases (never run) make the mean case cheaper than its phases: no rest then.
        let rest = harness_us - r.phases.total_us();
        line.push_str(&if rest >= 0.0 { format!(" {rest:>6.0}") } else { format!(" {:>6}", "-") });
        out.push(line);
    }
    out
}
