//! The corpus side of the CLI: `replay`, `minimize`, and the `--save-failures`
//! and hidden `--inject-fault` options of `run`. Part of the binary (anyhow is
//! used here as in `cli/main.rs`); the work is done by `unshare_fuzz::corpus`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use unshare_fuzz::command::fault::Fault;
use unshare_fuzz::command::interrupt;
use unshare_fuzz::command::replay::replay;
use unshare_fuzz::command::run::{self as runner, RunConfig, RunReport};
use unshare_fuzz::command::save::{self, DEFAULT_BUDGET, Saved};
use unshare_fuzz::corpus::store::{DirStore, load_file, load_paths};
use unshare_fuzz::exec::executor::placement::Pinning;
use unshare_fuzz::model::KernelProfile;
use unshare_fuzz::model::profile;
use unshare_fuzz::report;

/// Test only: the hidden `--inject-fault NAME` option.
#[derive(clap::Args, Clone, Debug)]
pub struct FaultArg {
    /// TEST ONLY: make the checker see a wrong kernel result (unknown-bits-succeed,
    /// eperm-as-einval, failure-leaks-uts). See docs/corpus.md.
    #[arg(long, hide = true, value_name = "NAME")]
    pub inject_fault: Option<Fault>,
}

/// Options shared by the corpus commands.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Watchdog timeout per case, in milliseconds (100 to 600000).
    #[arg(long, default_value_t = 5000, value_parser = timeout_ms)]
    pub timeout_ms: u64,
    /// Kernel profile of the model.
    #[arg(long, default_value = "auto")]
    pub kernel_profile: String,
    /// Pin each executor (and its case children) to a CPU of its own: `auto` (when there are
    /// at least as many CPUs as executors) or `off` (several harnesses sharing a machine).
    #[arg(long, default_value = "auto")]
    pub pin: Pinning,
    #[command(flatten)]
    pub fault: FaultArg,
}

/// `unshare-fuzz replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Corpus files, or directories searched recursively for *.json.
    #[arg(value_name = "PATH", default_value = "corpus")]
    pub paths: Vec<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Report format on stdout: human, json, ktap (KTAP version 1) or junit (JUnit XML).
    /// With any format but human, stdout holds only the report (the per-file lines go to stderr).
    #[arg(long, default_value = "human", value_parser = clap::value_parser!(report::Format))]
    pub format: report::Format,
    /// Also write the KTAP report to this file.
    #[arg(long, value_name = "PATH")]
    pub ktap: Option<PathBuf>,
    /// Also write the JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Executors run in parallel (file i goes to executor i mod N; lines and reports stay in
    /// file order).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `unshare-fuzz minimize`.
#[derive(clap::Args)]
pub struct MinimizeArgs {
    /// The failing corpus file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the minimal case [default: FILE with the extension .min.json].
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Most kernel runs the shrink may use.
    #[arg(long, default_value_t = DEFAULT_BUDGET as u64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub budget: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The corpus options of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct SaveArgs {
    /// Shrink each failing case on the kernel and write the minimal one as a corpus
    /// file into DIR (named <invariant>-<hash>.json).
    #[arg(long, value_name = "DIR")]
    pub save_failures: Option<PathBuf>,
    /// Shrink and save at most this many failures (distinct invariants first).
    #[arg(long, default_value_t = 10, value_name = "N", requires = "save_failures")]
    pub save_limit: usize,
    /// Most kernel runs one shrink may use.
    #[arg(long, default_value_t = DEFAULT_BUDGET as u64, value_name = "N", requires = "save_failures",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub shrink_budget: u64,
    #[command(flatten)]
    pub fault: FaultArg,
}

/// Parses `--timeout-ms`, refusing a value below [`runner::MIN_TIMEOUT_MS`] with the reason.
pub fn timeout_ms(s: &str) -> Result<u64, String> {
    let ms: u64 = s.trim().parse().map_err(|e| format!("{s:?} is not a number of milliseconds ({e})"))?;
    if ms < runner::MIN_TIMEOUT_MS {
        return Err(format!(
            "{ms} ms is below the floor of {} ms: every case forks a child that builds its setup (up to 32 \
             nested pid namespaces) before its steps, and 2% of them took over 50 ms on a loaded 2-CPU machine, so a \
             shorter watchdog reports its own timeouts, not the kernel's behaviour; use {} or more (default 5000)",
            runner::MIN_TIMEOUT_MS,
            runner::MIN_TIMEOUT_MS
        ));
    }
    if ms > 600_000 {
        return Err(format!("{ms} ms is above the ceiling of 600000 ms (10 minutes per case)"));
    }
    Ok(ms)
}

/// Writes to stdout without ever panicking. A write that fails (a closed pipe: `replay |
/// head`; a full disk: `> /dev/full`) is said once on stderr and recorded
/// ([`unshare_fuzz::command::interrupt::stdout_failed`]): the run then stops at the next case and
/// its report still goes to the report files. Later output to stdout is dropped. Returns
/// false when the text was not written.
pub fn write_stdout(args: std::fmt::Arguments) -> bool {
    use std::io::Write;
    if interrupt::stdout_is_broken() {
        return false;
    }
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            let why = interrupt::stdout_failed(&e);
            let _ = writeln!(
                std::io::stderr(),
                "unshare-fuzz: {why}: nothing more goes to stdout, a run stops after the cases in flight, and the report files are still written"
            );
            false
        }
    }
}

/// Checks before the first case that a report file can be written: opens it for writing
/// (creating it, then removing it again if it did not exist).
///
/// # Errors
/// Names the option, the path and the OS error.
pub fn check_report_path(option: &str, path: &Path) -> anyhow::Result<()> {
    let existed = path.symlink_metadata().is_ok();
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => bail!(
            "{option} {}: cannot write there ({e}); fix the path or its permissions (checked before the first case)",
            path.display()
        ),
    }
}

/// Checks before the first case that `--save-failures DIR` can be created and written into.
///
/// # Errors
/// Names the directory and the OS error.
pub fn check_save_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!(
            "--save-failures {}: cannot create the directory ({e}); fix the path or its permissions (checked \
             before the first case)",
            dir.display()
        )
    })?;
    let probe = dir.join(format!(".unshare-fuzz-write-check-{}", std::process::id()));
    check_report_path("--save-failures", &probe).map_err(|_| {
        let e = std::fs::File::create(&probe).err().map_or_else(|| "unknown error".to_string(), |e| e.to_string());
        anyhow::anyhow!(
            "--save-failures {}: cannot write into the directory ({e}); fix its permissions (checked before the \
             first case)",
            dir.display()
        )
    })
}

/// Checks every report path of a `run` or `replay` (usage error, exit 2, before any case).
///
/// # Errors
/// As [`check_report_path`].
pub fn check_report_paths(json: Option<&Path>, ktap: Option<&Path>, junit: Option<&Path>) -> anyhow::Result<()> {
    for (option, path) in [("--json", json), ("--ktap", ktap), ("--junit", junit)] {
        if let Some(path) = path {
            check_report_path(option, path)?;
        }
    }
    Ok(())
}

/// Arms the stop requests of a run (SIGINT, SIGTERM, SIGHUP, a closed stdout).
///
/// # Errors
/// If the signal handlers cannot be installed.
pub fn arm_interruption() -> anyhow::Result<()> {
    interrupt::catch_signals().context("cannot install the SIGINT/SIGTERM/SIGHUP handlers")?;
    interrupt::watch_stdout();
    Ok(())
}

macro_rules! out {
    ($($t:tt)*) => { { let _ = write_stdout(format_args!($($t)*)); } };
}

macro_rules! outln {
    ($($t:tt)*) => { { let _ = write_stdout(format_args!("{}\n", format_args!($($t)*))); } };
}

/// Resolves `--kernel-profile` (a name or `auto`) and says on stderr which model runs.
pub fn profile_named(name: &str) -> anyhow::Result<&'static KernelProfile> {
    let release = unshare_fuzz::sys::kernel_release();
    let (profile, note) = match unshare_fuzz::sys::foreign_kernel() {
        // A Linux-compatible kernel is judged against Linux: its claimed release says nothing
        // of the semantics it implements.
        Some((kernel, tell)) if name == "auto" => {
            let p: &'static KernelProfile = &profile::RELEASE_PROFILES[0];
            let note = format!(
                "the kernel is not Linux but {kernel} ({tell}); its claimed release {release} is ignored and it is \
                 judged against the newest Linux model, {} ({}); --kernel-profile NAME chooses another",
                p.name, p.describes
            );
            (p, Some(note))
        }
        _ => profile::resolve(name, &release).map_err(anyhow::Error::msg)?,
    };
    eprintln!("model: {} for kernel {release}{}", profile.name, if name == "auto" { " (auto)" } else { "" });
    if let Some(note) = note {
        eprintln!("model: NOTE: {note}");
    }
    Ok(profile)
}

/// Announces an active fault on stdout, or on stderr when stdout holds a machine-readable report.
fn announce(fault: Option<Fault>, on_stderr: bool) -> Option<Fault> {
    if let Some(f) = fault {
        let line = format!("TEST-ONLY FAULT INJECTION ACTIVE: {f} (the checker is shown wrong kernel results)");
        if on_stderr {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
    }
    fault
}

/// The fault for `run`'s configuration (announced when set: on stdout, or on stderr when
/// stdout holds a machine-readable report).
pub fn fault_for_run(args: &SaveArgs, machine_readable: bool) -> Option<Fault> {
    announce(args.fault.inject_fault, machine_readable)
}

fn config(common: &CommonArgs, cases: u64) -> anyhow::Result<RunConfig> {
    config_for(common, cases, false)
}

fn config_for(common: &CommonArgs, cases: u64, machine_readable: bool) -> anyhow::Result<RunConfig> {
    Ok(RunConfig {
        cases,
        seed: 0,
        timeout: Duration::from_millis(common.timeout_ms),
        profile: profile_named(&common.kernel_profile)?,
        executor_args: Vec::new(),
        jobs: 1,
        pinning: common.pin,
        fault: announce(common.fault.inject_fault, machine_readable),
    })
}

/// `replay`: exit status as for `run` (0 held, 1 violation, 2 broken or bad file, ORed).
pub fn replay_command(args: ReplayArgs) -> anyhow::Result<i32> {
    let files = load_paths(&args.paths);
    if files.is_empty() {
        let shown: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        bail!("no corpus files (*.json) found in {}", shown.join(", "));
    }
    let human = args.format == report::Format::Human;
    check_report_paths(args.json.as_deref(), args.ktap.as_deref(), args.junit.as_deref())?;
    let config = RunConfig { jobs: args.jobs as usize, ..config_for(&args.common, files.len() as u64, !human)? };
    arm_interruption()?;
    let report = replay(&config, files, |r| {
        if human {
            out!("{}", report::human::corpus_file_line(r));
        } else {
            eprint!("{}", report::human::corpus_file_line(r));
        }
    })?;
    if human {
        out!("\n");
    }
    crate::deliver(&report, args.format, [args.json, args.ktap, args.junit])
}

fn default_output(file: &Path) -> PathBuf {
    let stem = file.file_stem().map_or("case".into(), |s| s.to_string_lossy().into_owned());
    file.with_file_name(format!("{stem}.min.json"))
}

/// `minimize`: exit 0 when the minimal case was written, 2 otherwise.
pub fn minimize_command(args: MinimizeArgs) -> anyhow::Result<i32> {
    let file = load_file(&args.file)?;
    let config = config(&args.common, 1)?;
    let name = args.file.display().to_string();
    let m = save::minimize_file(&config, &name, &file, args.budget as usize)?;
    let out = args.output.unwrap_or_else(|| default_output(&args.file));
    let text = m.file.to_text()?;
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    outln!(
        "minimized {name}: {} -> {} in {} kernel runs; still violates {}",
        m.original,
        m.file.case,
        m.shrunk.runs,
        m.invariant
    );
    outln!("written: {}", out.display());
    Ok(0)
}

fn print_saved(s: &Saved) {
    let m = &s.minimized;
    outln!("  {} {}: {}", if s.new { "saved" } else { "already saved" }, s.path, m.file.title);
    outln!("      shrunk from {} in {} kernel runs", m.original, m.shrunk.runs);
}

/// `run --save-failures DIR`: shrink the run's failures and write them (no-op without the option).
pub fn save_failures(config: &RunConfig, report: &RunReport, args: &SaveArgs) -> anyhow::Result<()> {
    let Some(dir) = &args.save_failures else {
        return Ok(());
    };
    if let Some(i) = &report.interrupted {
        let _ = writeln!(
            std::io::stderr(),
            "save-failures: nothing shrunk into {}: the run was {}; its failing cases are in the report",
            dir.display(),
            i.line()
        );
        return Ok(());
    }
    if report.failures.is_empty() {
        outln!("save-failures: no failing case to save into {}", dir.display());
        return Ok(());
    }
    outln!(
        "save-failures: shrinking up to {} of {} failing cases (at most {} kernel runs each) into {}",
        args.save_limit.min(report.failures.len()),
        report.failures.len(),
        args.shrink_budget,
        dir.display()
    );
    let mut store = DirStore::new(dir);
    let saved = save::save_failures(config, report, &mut store, args.save_limit, args.shrink_budget as usize)?;
    for s in &saved {
        print_saved(s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_ms_has_a_floor_and_a_ceiling_and_says_why() {
        assert_eq!(timeout_ms("100"), Ok(100));
        assert_eq!(timeout_ms("5000"), Ok(5000));
        let e = timeout_ms("1").unwrap_err();
        assert!(e.contains("below the floor of 100 ms") && e.contains("use 100 or more"), "{e}");
        assert!(timeout_ms("600001").unwrap_err().contains("ceiling"));
        assert!(timeout_ms("soon").unwrap_err().contains("not a number"));
    }

    #[test]
    fn an_unwritable_report_path_is_named_with_the_os_error_and_nothing_is_left_behind() {
        let dir = std::env::temp_dir().join(format!("uf-check-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = dir.join("r.json");
        check_report_path("--json", &fresh).unwrap();
        assert!(!fresh.exists(), "the check removes the file it made");
        let e = check_report_path("--ktap", &dir).unwrap_err().to_string();
        assert!(e.starts_with(&format!("--ktap {}: cannot write there (", dir.display())), "{e}");
        let e = check_report_path("--junit", &dir.join("no/such/dir.xml")).unwrap_err().to_string();
        assert!(e.contains("No such file or directory"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
