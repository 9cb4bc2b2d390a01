//! How `tests/environments.rs` builds an environment, runs the harness inside it and judges
//! the report (violations, broken cases, reach, and only the skips the restriction implies).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{BASE, CASES, OPT_OUT, SEED};

/// Fails for an environment that cannot be set up, or, when opted out, says so loudly and
/// returns (the caller then returns without a verdict).
pub fn cannot_set_up(name: &str, why: &str) {
    let opted = std::env::var(OPT_OUT).is_ok_and(|v| v.split(',').any(|n| n.trim() == name || n.trim() == "all"));
    if opted {
        eprintln!("environment {name}: NOT RUN, opted out by {OPT_OUT}: {why}");
        return;
    }
    panic!("environment {name} cannot be set up here: {why} (set {OPT_OUT}={name} to opt out, loudly)");
}

/// A tool from PATH, or why not.
pub fn tool(name: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
        .ok_or_else(|| format!("`{name}` is not installed (util-linux / coreutils)"))
}

/// Quotes one word for `sh -c`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The harness's own arguments, with the report written to `report`.
pub fn run_args(report: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["run", "--cases", &CASES.to_string(), "--seed", &SEED.to_string(), "--json", report]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// A directory every uid can write (the report of a run as uid 65534 or another uid goes there).
pub fn open_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::common::temp_dir(tag).keep();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// What one run in an environment gave.
pub struct Run {
    pub name: &'static str,
    pub cmdline: String,
    pub report: Value,
    pub text: String,
}

/// Runs `argv` (the environment's wrapper around the binary) and reads the report at `report`.
/// `Err` when the environment did not even start the harness (no report was written).
pub fn launch(name: &'static str, argv: &[String], report: &Path) -> Result<Run, String> {
    let cmdline = argv.iter().map(|a| sh_quote(a)).collect::<Vec<_>>().join(" ");
    let out = Command::new(&argv[0]).args(&argv[1..]).output().map_err(|e| format!("cannot start {cmdline}: {e}"))?;
    let text = crate::common::text(&out);
    let json = std::fs::read_to_string(report).map_err(|e| {
        format!("no report at {} ({e}); exit {:?}; command: {cmdline}\n{text}", report.display(), out.status.code())
    })?;
    let report: Value = serde_json::from_str(&json).map_err(|e| format!("unreadable report ({e}): {cmdline}"))?;
    Ok(Run { name, cmdline, report, text })
}

/// The first violation's invariant and detail, for failure messages.
pub fn first_violation(report: &Value) -> String {
    report["failures"]
        .as_array()
        .and_then(|f| f.first())
        .and_then(|f| f["violations"].as_array()?.first().cloned())
        .map_or("none".into(), |v| format!("[{}] step {} {}", v["invariant"], v["step"], v["detail"]))
}

/// The last `n` unindented lines of the harness's output (its summary), in order.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The report's verdict figures: 0 violations, 0 broken, at least half reached, and only
/// skips from `BASE` and `implied`. Prints every skip reason.
pub fn judge(run: &Run, implied: &[&[&str]]) {
    judge_reach(run, implied, 50);
}

/// As [`judge`], with at least `min_percent` of the cases reaching the syscall.
pub fn judge_reach(run: &Run, implied: &[&[&str]], min_percent: u64) {
    let t = &run.report["tally"];
    let cases = t["cases"].as_u64().unwrap();
    let reached = t["reached_syscall"].as_u64().unwrap();
    let failed = t["failed_cases"].as_u64().unwrap();
    let broken: u64 = t["broken"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let skipped = t["cases_skipped"].as_object().cloned().unwrap_or_default();
    let nskipped: u64 = skipped.values().filter_map(Value::as_u64).sum();
    println!(
        "environment {}: {cases} cases, {reached} reached the syscall, {failed} with violations, {broken} broken, \
         {nskipped} skipped\n  command: {}",
        run.name, run.cmdline
    );
    let mut unexpected = Vec::new();
    for (reason, n) in &skipped {
        println!("  case skipped {n}x: {reason}");
        let allowed = BASE.iter().chain(implied.iter().flat_map(|s| s.iter())).any(|a| reason.contains(a));
        if !allowed {
            unexpected.push(format!("{n}x {reason}"));
        }
    }
    if let Some(invs) = t["invariants"].as_object() {
        for (id, inv) in invs {
            for (reason, n) in inv["skipped"].as_object().into_iter().flatten() {
                println!("  check skipped {n}x: {id}: {reason}");
            }
        }
    }
    let summary = format!(
        "environment {}: {failed} case(s) with violations, {broken} broken, {reached}/{cases} reached, \
         {nskipped} skipped; first violation: {}; broken: {}\ncommand: {}\nreport's summary:\n{}",
        run.name,
        first_violation(&run.report),
        t["broken"],
        run.cmdline,
        tail(&run.text, 12)
    );
    assert_eq!(cases, u64::from(CASES), "{summary}");
    assert_eq!(failed, 0, "violations: {summary}");
    assert_eq!(broken, 0, "broken cases: {summary}");
    assert!(
        reached * 100 >= cases * min_percent,
        "fewer than {min_percent} % of the cases reached the syscall: {summary}"
    );
    assert!(unexpected.is_empty(), "skips this restriction does not imply: {unexpected:?}\n{summary}");
}

/// The report's environment, for checks that the restriction really was in place.
pub fn env(run: &Run) -> &Value {
    &run.report["environment"]
}

/// Tools the wrappers use; each must be installed.
pub const TOOLS: &[&str] = &["unshare", "setpriv", "prlimit", "chroot", "sh", "env", "mount"];

/// Runs the binary under `wrapper` (a command line that ends by running what follows it).
pub fn run_wrapped(name: &'static str, wrapper: &[&str], extra: &[&str]) -> Option<Run> {
    for w in wrapper.iter().filter(|w| TOOLS.contains(w)) {
        if let Err(why) = tool(w) {
            cannot_set_up(name, &why);
            return None;
        }
    }
    let dir = open_dir(name);
    let report = dir.join("report.json");
    let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    argv.push(crate::common::binary().display().to_string());
    argv.extend(run_args(report.to_str().unwrap(), extra));
    match launch(name, &argv, &report) {
        Ok(run) => Some(run),
        Err(why) => {
            cannot_set_up(name, &why);
            None
        }
    }
}
