//! The `unshare-fuzz` command line: a thin layer over the library.

mod guest;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod corpus;
mod fuzz;

use anyhow::Context;
use clap::{Parser, Subcommand};

use unshare_fuzz::command::run::{self as runner, Progress, RunConfig};
use unshare_fuzz::exec::executor::placement::Pinning;
use unshare_fuzz::exec::{self, Executor};
use unshare_fuzz::model::profile;
use unshare_fuzz::report;

/// Property-based fuzzing and conformance harness for Linux unshare(2).
#[derive(Parser)]
#[command(name = "unshare-fuzz", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The whole kernel is a throwaway (a VM guest, a gVisor sandbox): if unshare fakes the
    /// outer sandbox, report it as a violation and run the cases anyway (exit 1), instead of
    /// refusing to write anything (also exit 1). Sets UNSHARE_FUZZ_THROWAWAY_KERNEL=1 for the executors.
    #[arg(long, global = true)]
    throwaway_kernel: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Generate random cases, run each in an isolated child, check every invariant.
    Run(RunArgs),
    /// Print the probed environment (kernel, sandbox, privileges, restrictions).
    Env {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the invariants and what each asserts.
    Invariants,
    /// Replay corpus files (default: corpus/) through the executor, model and checker.
    Replay(corpus::ReplayArgs),
    /// Shrink a failing corpus case on the kernel and write the minimal one.
    Minimize(corpus::MinimizeArgs),
    /// Measure cases per second against a bare fork+unshare+wait loop, per flag mix.
    Bench {
        /// Cases per mix.
        #[arg(long, default_value_t = 2000)]
        cases: usize,
        /// Executors for the scaling row.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Seed of the random mix.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the table as JSON.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Pin each executor (and its case children) to a CPU of its own: `auto` (when there are
        /// at least as many CPUs as executors) or `off` (several harnesses sharing a machine).
        #[arg(long, default_value = "auto")]
        pin: Pinning,
    },
    /// Print a standalone C reproducer (libc only, `gcc repro.c`) for a JSON case file.
    Repro(ReproArgs),
    /// Print the case a libFuzzer input or artifact stands for, as JSON.
    Decode(DecodeArgs),
    /// Turn corpus files into fuzz inputs (seeds) for one cargo-fuzz target.
    Seeds(fuzz::SeedsArgs),
    /// Internal: run a fuzz target's library half on input files, without libFuzzer.
    #[command(name = "__target", hide = true)]
    Target {
        /// `exec`, `model` or `corpus_format`.
        #[arg(value_parser = unshare_fuzz::command::fuzzing::TARGETS)]
        target: String,
        /// Fuzz inputs.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every bit 0..63: accepted by unshare / clone3, meaning in each, the kernel that
    /// introduced it, and what this kernel does with it alone (exit 1 if that is not what the
    /// model predicts).
    Flags {
        /// Print the table as markdown (docs/flags.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Show that the harness catches lying kernels and old kernel models, with no false alarm.
    Selftest(SelftestArgs),
    /// What changed between two JSON reports (`run --json`): environment, probed kernel facts,
    /// invariant verdicts, violations new in B and gone from A. Exit 1 if B has a violation A
    /// did not have.
    Diff {
        /// The earlier report.
        a: PathBuf,
        /// The later report.
        b: PathBuf,
    },
    /// Internal: the executor process (started by the harness itself).
    #[command(name = "__executor", hide = true)]
    Executor(ExecutorArgs),
}
#[derive(clap::Args)]
struct ExecutorArgs {
    /// Install this selftest mutant (a seccomp filter that makes unshare lie) before probing.
    #[arg(long)]
    mutant: Option<String>,
    /// Lease a free CPU, trying this slot's first, and pin the executor and its case children
    /// to it (exec::placement).
    #[arg(long)]
    pin_slot: Option<usize>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SelftestFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
struct SelftestArgs {
    /// Cases of the honest run, and the most cases per mutant before it counts as undetected.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    cases_per_mutant: u64,
    /// Generator seed (the same case stream for every run). Random if omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: SelftestFormat,
    /// Only these mutants (repeatable; default: all).
    #[arg(long = "mutant", value_name = "NAME")]
    mutants: Vec<String>,
    /// Watchdog timeout per case, in milliseconds (100 to 600000).
    #[arg(long, default_value_t = 5000, value_parser = corpus::timeout_ms)]
    timeout_ms: u64,
    /// List the mutants and their filter rules, and exit.
    #[arg(long)]
    list: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Number of cases to generate.
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// Generator seed; the same seed gives the same cases. Random if omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Watchdog timeout per case, in milliseconds (100 to 600000).
    #[arg(long, default_value_t = 5000, value_parser = corpus::timeout_ms)]
    timeout_ms: u64,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Report format on stdout: human, json, ktap (KTAP version 1) or junit (JUnit XML).
    /// With any format but human, stdout holds only the report (the seed goes to stderr).
    #[arg(long, default_value = "human", value_parser = clap::value_parser!(report::Format))]
    format: report::Format,
    /// Also write the KTAP report to this file.
    #[arg(long, value_name = "PATH")]
    ktap: Option<PathBuf>,
    /// Also write the JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Kernel profile of the model: `auto` (chosen from the running kernel's release) or a name.
    #[arg(long, default_value = "auto")]
    kernel_profile: String,
    #[command(flatten)]
    corpus: corpus::SaveArgs,
    /// Executors run in parallel (cases are assigned by index, so results do not depend on it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
    /// Pin each executor (and its case children) to a CPU of its own: `auto` (when there are
    /// at least as many CPUs as executors) or `off` (several harnesses sharing a machine).
    #[arg(long, default_value = "auto")]
    pin: Pinning,
    /// Known violations: an earlier JSON report, or a file `{"known": [{"invariant": ...,
    /// "known_bug": ..., "case": ...}]}`. Violations it lists do not fail the run (exit bit 1);
    /// any other one does. The reports say which were known.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ReproArgs {
    /// A JSON case (`{"setup": ..., "steps": [...]}`) or a corpus file with a `case` key.
    file: PathBuf,
    /// Environment the expectations are computed for: `probe` (start the executor and
    /// probe this machine) or `reference` (the model's reference machine: root, 6.18).
    #[arg(long, default_value = "probe", value_parser = ["probe", "reference"])]
    env: String,
    /// Kernel profile of the model: `auto` (chosen from the running kernel's release) or a name.
    #[arg(long, default_value = "auto")]
    kernel_profile: String,
}

#[derive(clap::Args)]
struct DecodeArgs {
    /// Fuzz inputs or artifacts (`fuzz/artifacts/exec/crash-*`, corpus entries).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print each case as one compact JSON line instead of pretty JSON.
    #[arg(long)]
    lines: bool,
    /// Print only each case's raw flag words, hex, one case per line (for bench loops).
    #[arg(long, conflicts_with = "lines")]
    raw_flags: bool,
    /// Also save each case as a corpus file `DIR/<artifact name>.json` (format 1,
    /// origin "fuzz", comments naming the artifact, `expected` from the model), which
    /// `replay`, `minimize` and `repro` read.
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
}

fn main() {
    // Booted as /init of a test VM (scripts/kernels.sh): become the guest's init.
    if std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init") {
        guest::guest_init_main();
    }
    let cli = Cli::parse();
    if cli.throwaway_kernel {
        exec::declare_throwaway_kernel();
    }
    let code = match cli.command {
        Command::Executor(args) => exec::executor::server::executor_main_with(args.mutant.as_deref(), args.pin_slot),
        Command::Selftest(args) => report_errors(selftest_command(args)),
        Command::Env { json } => report_errors(env_command(json)),
        Command::Invariants => {
            print!("{}", report::human::invariant_list());
            0
        }
        Command::Run(args) => report_errors(run_command(args)),
        Command::Diff { a, b } => report_errors(diff_command(&a, &b)),
        Command::Flags { markdown } => report_errors(flags_command(markdown)),
        Command::Replay(args) => report_errors(corpus::replay_command(args)),
        Command::Minimize(args) => report_errors(corpus::minimize_command(args)),
        Command::Bench { cases, jobs, seed, json, pin } => report_errors(bench_command(cases, jobs, seed, json, pin)),
        Command::Repro(args) => report_errors(repro_command(args)),
        Command::Decode(args) => report_errors(decode_command(args)),
        Command::Seeds(args) => report_errors(fuzz::seeds_command(args)),
        Command::Target { target, files } => report_errors(target_command(&target, &files)),
    };
    std::process::exit(code);
}

fn report_errors(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        // An executor that found its outer sandbox faked by unshare: a violation (exit 1), not a
        // broken run.
        if let Some(exec::ExecError::IneffectiveSandbox(why)) = e.chain().find_map(exec_error) {
            eprintln!("unshare-fuzz: VIOLATION {why}");
            return 1;
        }
        eprintln!("unshare-fuzz: error: {e:#}");
        2
    })
}

/// The executor error inside one link of an error chain (`SaveError` is transparent, so its
/// `ExecError` is not a link of its own).
fn exec_error<'a>(c: &'a (dyn std::error::Error + 'static)) -> Option<&'a exec::ExecError> {
    match c.downcast_ref() {
        Some(unshare_fuzz::command::save::SaveError::Exec(e)) => Some(e),
        _ => c.downcast_ref(),
    }
}

fn env_command(json: bool) -> anyhow::Result<i32> {
    let executor = Executor::spawn_self(&[])?;
    let env = executor.environment();
    if json {
        println!("{}", serde_json::to_string_pretty(env)?);
    } else {
        print!("{}", report::human::environment(env));
    }
    Ok(0)
}

fn find_profile(name: &str) -> anyhow::Result<&'static unshare_fuzz::model::KernelProfile> {
    corpus::profile_named(name)
}

fn repro_command(args: ReproArgs) -> anyhow::Result<i32> {
    let profile = find_profile(&args.kernel_profile)?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let case = unshare_fuzz::repro::case_from_json(&text).with_context(|| format!("{}", args.file.display()))?;
    let env = if args.env == "reference" {
        unshare_fuzz::env::Environment::reference()
    } else {
        Executor::spawn_self(&[])?.environment().clone()
    };
    emit(&unshare_fuzz::repro::c_source(&case, profile, &env)?)?;
    Ok(0)
}

/// Writes to stdout; `Ok(false)` when the reader has gone (a closed pipe is not an error).
fn emit(text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn decode_command(args: DecodeArgs) -> anyhow::Result<i32> {
    if let Some(dir) = &args.save {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let case = unshare_fuzz::command::fuzzing::case_from_bytes(&bytes)
            .with_context(|| format!("{}: these bytes do not decode to a case", file.display()))?;
        let json = if args.raw_flags {
            let words: Vec<String> = case
                .steps
                .iter()
                .filter_map(|s| match s {
                    unshare_fuzz::case::Step::Unshare(f) => Some(format!("{:#x}", f.0)),
                    _ => None,
                })
                .collect();
            words.join(" ")
        } else if args.lines {
            serde_json::to_string(&case)?
        } else {
            serde_json::to_string_pretty(&case)?
        };
        if !emit(&(json + "\n"))? {
            return Ok(0);
        }
        if let Some(dir) = &args.save {
            let path = fuzz::save_decoded(dir, file, &bytes, &case)?;
            eprintln!("saved {}", path.display());
        }
    }
    Ok(0)
}

fn target_command(target: &str, files: &[PathBuf]) -> anyhow::Result<i32> {
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        match target {
            "exec" => unshare_fuzz::command::fuzzing::exec_case(&bytes),
            "model" => unshare_fuzz::command::fuzzing::model_laws(&bytes),
            _ => unshare_fuzz::command::fuzzing::corpus_file(&bytes),
        }
    }
    println!("{} input(s) passed the {target} target", files.len());
    Ok(0)
}

fn flags_command(markdown: bool) -> anyhow::Result<i32> {
    use unshare_fuzz::command::flags;
    let mut executor = Executor::spawn_self(&[])?;
    let kernel = executor.environment().kernel_release.clone();
    let rows = flags::rows();
    let observed = flags::observe(&mut executor, &profile::LINUX_6_18, &rows)?;
    if markdown {
        print!("{}", flags::render_markdown(&rows, &observed, &kernel));
    } else {
        print!("{}", flags::render_text(&rows, &observed, &kernel));
    }
    let wrong = observed.iter().filter(|o| !(o.unshare_ok && o.clone3_ok)).count();
    if wrong > 0 {
        eprintln!("unshare-fuzz: {wrong} bit(s) behaved otherwise than the model predicts (marked (!))");
        return Ok(1);
    }
    Ok(0)
}

fn selftest_command(args: SelftestArgs) -> anyhow::Result<i32> {
    use unshare_fuzz::command::selftest;
    use unshare_fuzz::exec::executor::mutants;
    if args.list {
        print!("{}", selftest::report::mutant_list());
        return Ok(0);
    }
    let chosen = if args.mutants.is_empty() {
        mutants::MUTANTS.iter().collect()
    } else {
        args.mutants
            .iter()
            .map(|name| {
                mutants::by_name(name)
                    .with_context(|| format!("unknown selftest mutant {name:?}; known: {}", mutants::names()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let seed = args.seed.unwrap_or_else(random_seed);
    corpus::arm_interruption()?;
    eprintln!("selftest: seed {seed} (repeat with --seed {seed}), up to {} cases per run", args.cases_per_mutant);
    let config = selftest::SelftestConfig {
        cases_per_mutant: args.cases_per_mutant,
        seed,
        timeout: Duration::from_millis(args.timeout_ms),
        mutants: chosen,
    };
    let report = selftest::run(&config, |line| eprintln!("selftest: {line}"))
        .context("the selftest could not run its honest executor")?;
    let printed = match args.format {
        SelftestFormat::Human => corpus::write_stdout(format_args!("{}", selftest::report::human(&report))),
        SelftestFormat::Json => corpus::write_stdout(format_args!("{}\n", selftest::report::json(&report)?)),
    };
    if let (false, Some(why)) = (printed, &report.interrupted) {
        stderr_line(&format!("selftest: INTERRUPTED ({why})"));
    }
    Ok(if printed { report.exit_code() } else { report.exit_code() | 2 })
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

fn run_command(args: RunArgs) -> anyhow::Result<i32> {
    let profile = find_profile(&args.kernel_profile)?;
    // Before any case: a report that cannot be written is a usage error now, not after the run.
    corpus::check_report_paths(args.json.as_deref(), args.ktap.as_deref(), args.junit.as_deref())?;
    if let Some(dir) = &args.corpus.save_failures {
        corpus::check_save_dir(dir)?;
    }
    let baseline = args.baseline.as_deref().map(unshare_fuzz::report::baseline::Baseline::load).transpose()?;
    let seed = args.seed.unwrap_or_else(random_seed);
    corpus::arm_interruption()?;
    let seed_line = format!("seed: {seed}  (repeat this run with --seed {seed})");
    if args.format == report::Format::Human {
        corpus::write_stdout(format_args!("{seed_line}\n"));
    } else {
        stderr_line(&seed_line);
    }
    let config = RunConfig {
        cases: args.cases,
        seed,
        timeout: Duration::from_millis(args.timeout_ms),
        profile,
        executor_args: Vec::new(),
        fault: corpus::fault_for_run(&args.corpus, args.format != report::Format::Human),
        jobs: args.jobs as usize,
        pinning: args.pin,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(args.cases);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} cases, {msg} [{elapsed_precise}<{eta_precise}]",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut report = runner::run(&config, progress_printer(bar.as_ref()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(baseline) = &baseline {
        baseline.apply(&mut report);
    }
    let code = deliver(&report, args.format, [args.json, args.ktap, args.junit])?;
    // Shrinking runs more cases: only after every report of the cases done is out.
    corpus::save_failures(&config, &report, &args.corpus)?;
    Ok(code)
}

fn diff_command(a: &std::path::Path, b: &std::path::Path) -> anyhow::Result<i32> {
    let read = |p: &std::path::Path| -> anyhow::Result<serde_json::Value> {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON report (write one with run --json)", p.display()))
    };
    let (ra, rb) = (read(a)?, read(b)?);
    let (text, new) = unshare_fuzz::report::diff::diff(&a.display().to_string(), &ra, &b.display().to_string(), &rb);
    corpus::write_stdout(format_args!("{text}"));
    Ok(i32::from(new))
}

/// Prints the report on stdout in `format` and writes the report files (`--json`, `--ktap`,
/// `--junit`, in that order), each even when stdout or another file failed; returns the
/// exit status: the report's, with 2 ORed in when stdout could not take the report.
///
/// # Errors
/// The first report file that could not be written (after trying them all).
fn deliver(report: &runner::RunReport, format: report::Format, files: [Option<PathBuf>; 3]) -> anyhow::Result<i32> {
    let mut code = report.exit_code();
    let printed = corpus::write_stdout(format_args!("{}", report::render(format, report)?));
    let mut first_error = None;
    for (path, file_format) in
        files.into_iter().zip([report::Format::Json, report::Format::Ktap, report::Format::Junit])
    {
        if let Some(path) = path
            && let Err(e) = write_report(&path, file_format, report, format)
        {
            // The first error is returned (and printed by the caller); any later one is said here.
            match first_error {
                None => first_error = Some(e),
                Some(_) => stderr_line(&format!("unshare-fuzz: error: {e:#}")),
            }
        }
    }
    if !printed {
        // The report did not reach stdout: say the essentials where they can still be read.
        if let Some(i) = &report.interrupted {
            stderr_line(&format!("unshare-fuzz: {}", i.line()));
        }
        stderr_line(&format!("unshare-fuzz: result: {}", report::human::verdict(report)));
        code |= 2;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// One line on stderr, never panicking (a closed stderr loses it).
fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A progress callback: the bar on a terminal, else a plain line every 10 s and at the end.
fn progress_printer(bar: Option<&indicatif::ProgressBar>) -> impl Fn(Progress) + Sync + '_ {
    let last_line = std::sync::Mutex::new(Instant::now());
    move |p: Progress| match bar {
        Some(bar) => {
            bar.set_position(p.done);
            bar.set_message(format!("{} violations", p.violations));
        }
        None => {
            let Ok(mut last) = last_line.lock() else { return };
            if last.elapsed() >= Duration::from_secs(10) || p.done == p.total {
                stderr_line(&format!("progress: {}/{} cases, {} violations", p.done, p.total, p.violations));
                *last = Instant::now();
            }
        }
    }
}

fn bench_command(cases: usize, jobs: usize, seed: u64, json: Option<PathBuf>, pin: Pinning) -> anyhow::Result<i32> {
    let config = RunConfig {
        cases: cases as u64,
        seed,
        timeout: Duration::from_secs(5),
        profile: &profile::LINUX_6_18,
        executor_args: Vec::new(),
        jobs,
        fault: None,
        pinning: pin,
    };
    println!("{}", unshare_fuzz::command::bench::header());
    let report = unshare_fuzz::command::bench::run(&config, cases, |r| {
        println!("{}", unshare_fuzz::command::bench::row_line(r))
    })?;
    println!(
        "--jobs {jobs} speed-up on the random mix: harness {:.2}x, bare loop {:.2}x",
        report.jobs2_speedup, report.bare_jobs_speedup
    );
    println!("{}", report.placement.line());
    println!();
    for line in unshare_fuzz::command::bench::phase_lines(&report) {
        println!("{line}");
    }
    println!();
    for (i, s) in report.executor_stats.iter().enumerate() {
        println!(
            "executor {i} after the last mix: RSS {} KiB, {} fds, {} mounts, {} leftover processes, {} semaphores",
            s.rss_kib, s.fds, s.mounts, s.other_processes, s.semaphores
        );
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(0)
}

/// Writes one report file, and says so where it does not spoil a machine-readable stdout.
fn write_report(
    path: &std::path::Path,
    format: report::Format,
    run: &runner::RunReport,
    stdout_format: report::Format,
) -> anyhow::Result<()> {
    std::fs::write(path, report::render(format, run)?)
        .with_context(|| format!("cannot write the {format} report to {}", path.display()))?;
    let line = format!("{} report: {}", format.name().to_uppercase(), path.display());
    if stdout_format != report::Format::Human || !corpus::write_stdout(format_args!("{line}\n")) {
        stderr_line(&line);
    }
    Ok(())
}
