//! The `unshare-fuzz` command line: a thin layer over the library.

mod guest;
mod guest_faults;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod commands;
mod corpus;
mod fuzz;
mod kcov;

use anyhow::Context;
use clap::{Parser, Subcommand};

use unshare_fuzz::command::run::{self as runner, Progress, RunConfig};
use unshare_fuzz::exec;
use unshare_fuzz::exec::executor::placement::Pinning;
use unshare_fuzz::report;

use commands::{
    DecodeArgs, ReproArgs, SelftestArgs, bench_command, decode_command, diff_command, env_command, flags_command,
    repro_command, selftest_command, target_command,
};

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
        /// Run only this mix (repeatable): a flag name such as NEWUTS, `all namespaces` or
        /// `random mix with setups`. The `--jobs` row runs only with the random mix.
        #[arg(long = "mix", value_name = "NAME")]
        mixes: Vec<String>,
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
    /// Kernel coverage of unshare's path on a KCOV kernel (docs/coverage.md, scripts/kcov.sh).
    #[command(subcommand)]
    Kcov(kcov::KcovCommand),
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
    /// to it (exec::executor::placement).
    #[arg(long)]
    pin_slot: Option<usize>,
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
        Command::Kcov(cmd) => report_errors(kcov::kcov_command(cmd, cli.throwaway_kernel)),
        Command::Diff { a, b } => report_errors(diff_command(&a, &b)),
        Command::Flags { markdown } => report_errors(flags_command(markdown)),
        Command::Replay(args) => report_errors(corpus::replay_command(args)),
        Command::Minimize(args) => report_errors(corpus::minimize_command(args)),
        Command::Bench { cases, jobs, seed, json, pin, mixes } => {
            report_errors(bench_command(cases, jobs, seed, json, pin, &mixes))
        }
        Command::Repro(args) => report_errors(repro_command(args)),
        Command::Decode(args) => report_errors(decode_command(args)),
        Command::Seeds(args) => report_errors(fuzz::seeds_command(args)),
        Command::Target { target, files } => report_errors(target_command(&target, &files)),
    };
    std::process::exit(code);
}

pub(crate) fn report_errors(r: anyhow::Result<i32>) -> i32 {
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
pub(crate) fn exec_error<'a>(c: &'a (dyn std::error::Error + 'static)) -> Option<&'a exec::ExecError> {
    match c.downcast_ref() {
        Some(unshare_fuzz::command::save::SaveError::Exec(e)) => Some(e),
        _ => c.downcast_ref(),
    }
}

pub(crate) fn find_profile(name: &str) -> anyhow::Result<&'static unshare_fuzz::model::KernelProfile> {
    corpus::profile_named(name)
}

/// Writes to stdout; `Ok(false)` when the reader has gone (a closed pipe is not an error).
pub(crate) fn emit(text: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

pub(crate) fn random_seed() -> u64 {
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

/// Prints the report on stdout in `format` and writes the report files (`--json`, `--ktap`,
/// `--junit`, in that order), each even when stdout or another file failed; returns the
/// exit status: the report's, with 2 ORed in when stdout could not take the report.
///
/// # Errors
/// The first report file that could not be written (after trying them all).
pub(crate) fn deliver(
    report: &runner::RunReport,
    format: report::Format,
    files: [Option<PathBuf>; 3],
) -> anyhow::Result<i32> {
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
pub(crate) fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A progress callback: the bar on a terminal, else a plain line every 10 s and at the end.
pub(crate) fn progress_printer(bar: Option<&indicatif::ProgressBar>) -> impl Fn(Progress) + Sync + '_ {
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

/// Writes one report file, and says so where it does not spoil a machine-readable stdout.
pub(crate) fn write_report(
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
