//! The smaller commands of the binary, each a thin wrapper over the library: `env`, `repro`,
//! `decode`, `target`, `flags`, `selftest`, `diff` and `bench` (the main ones, `run`, `replay`
//! and `minimize`, are in `main.rs` and `corpus.rs`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use unshare_fuzz::command::run::RunConfig;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::exec::executor::placement::Pinning;
use unshare_fuzz::model::profile;
use unshare_fuzz::report;

use crate::{corpus, emit, find_profile, fuzz, random_seed, stderr_line};

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum SelftestFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
pub(crate) struct SelftestArgs {
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
pub(crate) struct ReproArgs {
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
pub(crate) struct DecodeArgs {
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

pub(crate) fn env_command(json: bool) -> anyhow::Result<i32> {
    let executor = Executor::spawn_self(&[])?;
    let env = executor.environment();
    if json {
        println!("{}", serde_json::to_string_pretty(env)?);
    } else {
        print!("{}", report::human::environment(env));
    }
    Ok(0)
}

pub(crate) fn repro_command(args: ReproArgs) -> anyhow::Result<i32> {
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

pub(crate) fn decode_command(args: DecodeArgs) -> anyhow::Result<i32> {
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

pub(crate) fn target_command(target: &str, files: &[PathBuf]) -> anyhow::Result<i32> {
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

pub(crate) fn flags_command(markdown: bool) -> anyhow::Result<i32> {
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

pub(crate) fn selftest_command(args: SelftestArgs) -> anyhow::Result<i32> {
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

pub(crate) fn diff_command(a: &std::path::Path, b: &std::path::Path) -> anyhow::Result<i32> {
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

pub(crate) fn bench_command(
    cases: usize,
    jobs: usize,
    seed: u64,
    json: Option<PathBuf>,
    pin: Pinning,
    only: &[String],
) -> anyhow::Result<i32> {
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
    let mixes = unshare_fuzz::command::bench::select_mixes(cases, seed, only).map_err(anyhow::Error::msg)?;
    println!("{}", unshare_fuzz::command::bench::header());
    let report = unshare_fuzz::command::bench::run(&config, &mixes, |r| {
        println!("{}", unshare_fuzz::command::bench::row_line(r))
    })?;
    if report.jobs2_speedup.is_finite() {
        println!(
            "--jobs {jobs} speed-up on the random mix: harness {:.2}x, bare loop {:.2}x",
            report.jobs2_speedup, report.bare_jobs_speedup
        );
    }
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
