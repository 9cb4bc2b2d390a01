//! `unshare-fuzz kcov`: the coverage mode's commands (docs/coverage.md).
//! `run` executes cases with KCOV on (in a guest of scripts/kcov.sh); `filter`
//! and `report` run on the host, next to the kernel's vmlinux and source.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use unshare_fuzz::command::pipeline::RunConfig;
use unshare_fuzz::coverage::reasons::Reasons;
use unshare_fuzz::coverage::report::{Column, Line, LineTable};
use unshare_fuzz::coverage::{data, distill, html, report, run, sites};
use unshare_fuzz::exec::executor::placement::Pinning;

use crate::corpus as corpus_cli;

/// The coverage commands.
#[derive(clap::Subcommand)]
pub enum KcovCommand {
    /// Run random cases, the corpus and a guided search with KCOV on; print PC records.
    Run(RunArgs),
    /// Print the PCs of the target functions' coverage points (the guest's filter).
    Filter {
        /// The kernel directory of scripts/kcov-kernel.sh (vmlinux, src).
        #[arg(long)]
        kernel: PathBuf,
    },
    /// Map the guest's records to lines: text report, HTML page, distillation, candidates.
    Report(ReportArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Random cases (the `run` generator).
    #[arg(long, default_value_t = 3000)]
    cases: u64,
    /// Generator seed of the random cases and the guided search.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Corpus files or directories to run (each file's PCs are printed for distillation).
    #[arg(long)]
    corpus: Vec<PathBuf>,
    /// Sweep fail-nth 1, 2, ... up to this over every corpus case with a guest-only `fail_nth`,
    /// each until its unshare succeeded 10 times in a row (0: no sweep; docs/guest-only.md).
    #[arg(long, default_value_t = 0)]
    fail_nth_sweep: u32,
    /// Cases of the coverage-guided search, seeded from the corpus.
    #[arg(long, default_value_t = 0)]
    guided: u64,
    /// File of hex PCs (from `kcov filter`): only these are printed.
    #[arg(long)]
    filter: Option<PathBuf>,
    /// The KCOV device.
    #[arg(long, default_value = "/sys/kernel/debug/kcov")]
    device: String,
    /// Watchdog timeout per case, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = corpus_cli::timeout_ms)]
    timeout_ms: u64,
    /// Kernel profile of the model.
    #[arg(long, default_value = "auto")]
    kernel_profile: String,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The kernel directory of scripts/kcov-kernel.sh (vmlinux, src).
    #[arg(long)]
    kernel: PathBuf,
    /// Record files printed by `kcov run` (a guest's report channel); merged.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Reasons for unreached lines (`file:line<TAB>reason<TAB>evidence`).
    #[arg(long)]
    reasons: Option<PathBuf>,
    /// Write the HTML page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Also distill the corpus: files with unique coverage and the smallest corpus found.
    #[arg(long)]
    distill: bool,
    /// Write the guided search's candidates here as corpus files.
    #[arg(long)]
    candidates: Option<PathBuf>,
}

/// Runs a `kcov` command.
pub fn kcov_command(cmd: KcovCommand, throwaway: bool) -> anyhow::Result<i32> {
    match cmd {
        KcovCommand::Run(a) => run_command(a, throwaway),
        KcovCommand::Filter { kernel } => {
            let sites = sites::load_or_build(&sites::KernelDir::new(&kernel)).map_err(anyhow::Error::msg)?;
            let table = LineTable::from_sites(&sites);
            let mut out = std::io::stdout().lock();
            for pc in table.pcs() {
                writeln!(out, "{pc:x}")?;
            }
            Ok(0)
        }
        KcovCommand::Report(a) => report_command(a),
    }
}

fn run_command(a: RunArgs, throwaway: bool) -> anyhow::Result<i32> {
    if !Path::new(&a.device).exists() && throwaway && a.device == "/sys/kernel/debug/kcov" {
        // Only on a kernel declared a throwaway (a guest): mount debugfs to find KCOV.
        let _ = unshare_fuzz::sys::kcov::mount_debugfs_on_throwaway_kernel();
    }
    if !Path::new(&a.device).exists() {
        bail!(
            "{} does not exist: this kernel has no KCOV or debugfs is not mounted; boot the kernel of \
             scripts/kcov-kernel.sh with scripts/kcov.sh",
            a.device
        );
    }
    let filter = match &a.filter {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read the filter {}", p.display()))?;
            let set: Result<BTreeSet<u64>, _> = text.split_whitespace().map(|w| u64::from_str_radix(w, 16)).collect();
            Some(set.with_context(|| format!("{} is not a list of hex PCs", p.display()))?)
        }
    };
    unshare_fuzz::exec::declare_coverage_mode(&a.device);
    let profile = corpus_cli::profile_named(&a.kernel_profile)?;
    let settings = run::Settings {
        config: RunConfig {
            cases: a.cases,
            seed: a.seed,
            timeout: Duration::from_millis(a.timeout_ms),
            profile,
            executor_args: Vec::new(),
            jobs: 1,
            pinning: Pinning::Off,
            fault: None,
        },
        filter,
        corpus: a.corpus,
        guided: a.guided,
        fail_nth_sweep: a.fail_nth_sweep,
    };
    let mut out = std::io::stdout().lock();
    run::run(&settings, &mut |line| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })?;
    Ok(0)
}

/// The records of every file, merged (PCs of a group: the union).
fn load_data(paths: &[PathBuf]) -> anyhow::Result<data::Data> {
    let mut d = data::Data::default();
    for p in paths {
        let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let part = data::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        // A file without one group record is not a guest's output (a wrong path, a console
        // log): reporting it as zero coverage would hide the mistake.
        anyhow::ensure!(
            !part.groups.is_empty(),
            "{}: no `kcov-group` record: not the records of `unshare-fuzz kcov run` (scripts/kcov.sh writes them to data.txt)",
            p.display()
        );
        d.groups.extend(part.groups);
        for (k, v) in part.pcs {
            d.pcs.entry(k).or_default().extend(v);
        }
        d.files.extend(part.files);
        d.candidates.extend(part.candidates);
    }
    Ok(d)
}

fn report_command(a: ReportArgs) -> anyhow::Result<i32> {
    // The records first: a wrong data path fails before the kernel's line table is built.
    let d = load_data(&a.data)?;
    let kdir = sites::KernelDir::new(&a.kernel);
    let sites = sites::load_or_build(&kdir).map_err(anyhow::Error::msg)?;
    let table = LineTable::from_sites(&sites);
    let reasons = match &a.reasons {
        Some(p) => Reasons::parse(&std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        None => Reasons::default(),
    };
    for g in &d.groups {
        println!("{}", data::group_line(g));
    }
    let empty = BTreeSet::new();
    let pcs = |name: &str| d.pcs.get(name).unwrap_or(&empty);
    let mut sets: Vec<(String, BTreeSet<Line>)> = Vec::new();
    for name in ["random", "corpus", "fault-sweep"] {
        if d.pcs.contains_key(name) {
            sets.push((name.into(), table.reached(pcs(name))));
        }
    }
    if d.pcs.contains_key("guided") {
        let with_corpus: BTreeSet<u64> = pcs("guided").union(pcs("corpus")).copied().collect();
        sets.push(("guided".into(), table.reached(&with_corpus)));
    }
    let all: BTreeSet<u64> = d.pcs.values().flatten().copied().collect();
    sets.push(("all".into(), table.reached(&all)));
    let columns: Vec<Column> = sets.iter().map(|(n, r)| Column { name: n, reached: r }).collect();
    let src = kdir.src.clone();
    let cache: std::cell::RefCell<BTreeMap<String, Option<String>>> = Default::default();
    let file_text = |file: &str| -> Option<String> {
        cache
            .borrow_mut()
            .entry(file.to_string())
            .or_insert_with(|| std::fs::read_to_string(src.join(file)).ok())
            .clone()
    };
    let line_text =
        |file: &str, line: u32| file_text(file).and_then(|t| t.lines().nth(line as usize - 1).map(String::from));
    print!("{}", report::text(&table, &columns, &line_text, &reasons));
    if let Some(path) = &a.html {
        std::fs::write(path, html::page(&table, &columns, &file_text, &reasons))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nHTML report: {}", path.display());
    }
    if a.distill {
        print_distillation(&d.files);
    }
    if let Some(dir) = &a.candidates {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, (_, new, json)) in d.candidates.iter().enumerate() {
            let file = unshare_fuzz::corpus::parse(json).map_err(|e| anyhow::anyhow!("candidate {i}: {e:?}"))?;
            let path = dir.join(format!("kcov-guided-{:03}.json", i + 1));
            std::fs::write(&path, file.to_text()?).with_context(|| format!("cannot write {}", path.display()))?;
            println!("candidate {} ({new} new points)", path.display());
        }
    }
    Ok(0)
}

fn print_distillation(files: &BTreeMap<String, BTreeSet<u64>>) {
    let d = distill::distill(files);
    println!(
        "\ncorpus distillation over the target functions' coverage points ({} files, {} points):",
        files.len(),
        d.covered
    );
    println!("files with points no other file reaches: {}", d.unique.len());
    for (f, n) in &d.unique {
        println!("  {f}: {n}");
    }
    println!(
        "smallest corpus found with the same coverage (greedy set cover): {} of {} files",
        d.keep.len(),
        files.len()
    );
    for (f, n) in &d.keep {
        println!("  keep {f} (+{n})");
    }
    let keep: BTreeSet<&String> = d.keep.iter().map(|(f, _)| f).collect();
    let drop: Vec<&String> = files.keys().filter(|f| !keep.contains(f)).collect();
    println!("files it would drop ({}): their points are all reached by the kept files", drop.len());
}
