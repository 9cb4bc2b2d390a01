//! The `unshare-fuzz` command line: a thin layer over the library.

mod guest;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod corpus_cli;

use anyhow::Context;
use clap::{Parser, Subcommand};

use unshare_fuzz::exec::{self, Executor};
use unshare_fuzz::model::profile;
use unshare_fuzz::report;
use unshare_fuzz::runner::{self, Progress, RunConfig};

/// Property-based fuzzing and conformance harness for Linux unshare(2).
#[derive(Parser)]
#[command(name = "unshare-fuzz", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Replay(corpus_cli::ReplayArgs),
    /// Shrink a failing corpus case on the kernel and write the minimal one.
    Minimize(corpus_cli::MinimizeArgs),
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
    },
    /// Internal: the executor process (started by the harness itself).
    #[command(name = "__executor", hide = true)]
    Executor,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Number of cases to generate.
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// Generator seed; the same seed gives the same cases. Random if omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Watchdog timeout per case, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Kernel profile of the model.
    #[arg(long, default_value = "linux-6.18")]
    kernel_profile: String,
    #[command(flatten)]
    corpus: corpus_cli::SaveArgs,
    /// Executors run in parallel (cases are assigned by index, so results do not depend on it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
}

fn main() {
    // Booted as /init of a test VM (scripts/kernels.sh): become the guest's init.
    if std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init") {
        guest::guest_init_main();
    }
    unshare_fuzz::sys::default_sigpipe();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Executor => exec::server::executor_main(),
        Command::Env { json } => report_errors(env_command(json)),
        Command::Invariants => {
            print!("{}", report::human::invariant_list());
            0
        }
        Command::Run(args) => report_errors(run_command(args)),
        Command::Replay(args) => report_errors(corpus_cli::replay_command(args)),
        Command::Minimize(args) => report_errors(corpus_cli::minimize_command(args)),
        Command::Bench { cases, jobs, seed, json } => report_errors(bench_command(cases, jobs, seed, json)),
    };
    std::process::exit(code);
}

fn report_errors(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("unshare-fuzz: error: {e:#}");
        2
    })
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

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

fn run_command(args: RunArgs) -> anyhow::Result<i32> {
    let profile = profile::by_name(&args.kernel_profile).with_context(|| {
        let names: Vec<&str> = profile::PROFILES.iter().map(|p| p.name).collect();
        format!("unknown kernel profile {:?}; known: {}", args.kernel_profile, names.join(", "))
    })?;
    let seed = args.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}  (repeat this run with --seed {seed})");
    let config = RunConfig {
        cases: args.cases,
        seed,
        timeout: Duration::from_millis(args.timeout_ms),
        profile,
        executor_args: Vec::new(),
        fault: corpus_cli::fault_for_run(&args.corpus),
        jobs: args.jobs as usize,
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
    let report = runner::run(&config, progress_printer(bar.as_ref()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print!("{}", report::human::environment(&report.environment));
    print!("{}", report::human::summary(&report));
    corpus_cli::save_failures(&config, &report, &args.corpus)?;
    if let Some(path) = args.json {
        std::fs::write(&path, report::json::render(&report)?)
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    Ok(report.tally.exit_code())
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
                eprintln!("progress: {}/{} cases, {} violations", p.done, p.total, p.violations);
                *last = Instant::now();
            }
        }
    }
}

fn bench_command(cases: usize, jobs: usize, seed: u64, json: Option<PathBuf>) -> anyhow::Result<i32> {
    let config = RunConfig {
        cases: cases as u64,
        seed,
        timeout: Duration::from_secs(5),
        profile: &profile::LINUX_6_18,
        executor_args: Vec::new(),
        jobs,
        fault: None,
    };
    println!("{:<28} {:>7} {:>12} {:>12} {:>7} {:>5}", "mix", "cases", "harness/s", "bare/s", "ratio", "viol");
    let report = unshare_fuzz::bench::run(&config, cases, |r| {
        println!(
            "{:<28} {:>7} {:>12.0} {:>12.0} {:>7.2} {:>5}",
            r.mix, r.cases, r.harness_per_s, r.bare_per_s, r.ratio, r.violations
        );
    })?;
    println!("--jobs {jobs} speed-up on the random mix: {:.2}x", report.jobs2_speedup);
    for (i, s) in report.executor_stats.iter().enumerate() {
        println!(
            "executor {i} after the last mix: RSS {} KiB, {} fds, {} mounts, {} leftover processes",
            s.rss_kib, s.fds, s.mounts, s.other_processes
        );
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(0)
}
