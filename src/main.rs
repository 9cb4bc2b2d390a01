//! The `unshare-fuzz` command line: a thin layer over the library.

mod guest;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// Show that the harness catches lying kernels and old kernel models, with no false alarm.
    Selftest(SelftestArgs),
    /// Internal: the executor process (started by the harness itself).
    #[command(name = "__executor", hide = true)]
    Executor(ExecutorArgs),
}

#[derive(clap::Args)]
struct ExecutorArgs {
    /// Install this selftest mutant (a seccomp filter that makes unshare lie) before probing.
    #[arg(long)]
    mutant: Option<String>,
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
    /// Watchdog timeout per case, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
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
    /// Watchdog timeout per case, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Kernel profile of the model.
    #[arg(long, default_value = "linux-6.18")]
    kernel_profile: String,
}

fn main() {
    // Booted as /init of a test VM (scripts/kernels.sh): become the guest's init.
    if std::process::id() == 1 && std::env::args_os().next().is_some_and(|a| a == "/init") {
        guest::guest_init_main();
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Executor(args) => exec::server::executor_main_with(args.mutant.as_deref()),
        Command::Selftest(args) => report_errors(selftest_command(args)),
        Command::Env { json } => report_errors(env_command(json)),
        Command::Invariants => {
            print!("{}", report::human::invariant_list());
            0
        }
        Command::Run(args) => report_errors(run_command(args)),
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
    };
    let mut printed_env = false;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(args.cases);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} cases, {msg} [{elapsed_precise}<{eta_precise}]",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut last_line = Instant::now();
    let report = runner::run(&config, |p: Progress| {
        if !printed_env {
            printed_env = true;
        }
        match &bar {
            Some(bar) => {
                bar.set_position(p.done);
                bar.set_message(format!("{} violations", p.violations));
            }
            None if last_line.elapsed() >= Duration::from_secs(10) || p.done == p.total => {
                eprintln!("progress: {}/{} cases, {} violations", p.done, p.total, p.violations);
                last_line = Instant::now();
            }
            None => {}
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print!("{}", report::human::environment(&report.environment));
    print!("{}", report::human::summary(&report));
    if let Some(path) = args.json {
        std::fs::write(&path, report::json::render(&report)?)
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    Ok(report.tally.exit_code())
}

fn selftest_command(args: SelftestArgs) -> anyhow::Result<i32> {
    use unshare_fuzz::selftest::{self, mutants};
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
    eprintln!("selftest: seed {seed} (repeat with --seed {seed}), up to {} cases per run", args.cases_per_mutant);
    let config = selftest::SelftestConfig {
        cases_per_mutant: args.cases_per_mutant,
        seed,
        timeout: Duration::from_millis(args.timeout_ms),
        mutants: chosen,
    };
    let report = selftest::run(&config, |line| eprintln!("selftest: {line}"))
        .context("the selftest could not run its honest executor")?;
    match args.format {
        SelftestFormat::Human => print!("{}", selftest::report::human(&report)),
        SelftestFormat::Json => println!("{}", selftest::report::json(&report)?),
    }
    Ok(report.exit_code())
}
