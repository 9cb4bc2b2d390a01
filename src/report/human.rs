//! The plain-text report: environment header, per-invariant table, violations in full.

use std::fmt::Write;

use crate::check::Tally;
use crate::check::invariants::INVARIANTS;
use crate::check::{behaviour, inside, inside_witness};
use crate::env::Environment;
use crate::report::run_report::RunReport;
use crate::report::run_report::{FileResult, FileStatus};

/// The environment block printed at the top of every report.
pub fn environment(env: &Environment) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "kernel:        {}", env.kernel_release);
    let _ = writeln!(s, "started as:    uid {}", env.host_uid);
    let _ = writeln!(
        s,
        "sandbox:       {}{}",
        env.sandbox,
        if env.sandbox_user_ns { " (with its own user namespace)" } else { "" }
    );
    let b = &env.baseline;
    let _ = writeln!(
        s,
        "executor:      uid {} gid {} CapEff {:#x} (full set {:#x})",
        b.uid,
        b.gid,
        b.cap_eff,
        env.full_caps()
    );
    let known = |v: Option<u32>| v.map_or("unknown".to_string(), |d| d.to_string());
    let _ = writeln!(
        s,
        "position:      pid-ns level {}, user-ns depth {} (as the kernel's depth limits see them, from the measured room)",
        known(env.pidns_level),
        known(env.userns_depth)
    );
    let _ = writeln!(s, "chrooted:      {}; uid 65534 mapped: {}", env.chrooted, env.nobody_mapped);
    let room = |r: Option<crate::env::Room>| match r {
        None => "not measured".to_string(),
        Some(r) => match r.stopped_by {
            None => format!("{}+", r.made),
            Some(e) => format!("{} ({})", r.made, crate::abi::errno::Errno(e)),
        },
    };
    let h = &env.headroom;
    let flat: Vec<String> = h.flat.iter().map(|(k, r)| format!("{k} {}", room(Some(*r)))).collect();
    let _ = writeln!(
        s,
        "room:          nested pid {}, nested user {}, user in all {}; held at once: {}",
        room(h.pid_nested),
        room(h.user_nested),
        room(h.user_count),
        flat.join(", ")
    );
    let clone3 = match env.call_probes.clone3 {
        None => "not probed".to_string(),
        Some(e) if e == libc::ENOSYS => "missing (ENOSYS)".to_string(),
        Some(_) => "present".to_string(),
    };
    let _ = writeln!(s, "clone3:        {clone3}");
    let links: Vec<&str> = env.ns_links.iter().map(|l| l.file_name()).collect();
    let _ = writeln!(s, "ns links:      {}", links.join(" "));
    let observer = match env.ns_observer {
        crate::abi::ns::NsObserver::ProcLinks => "readlinkat of /proc/self/ns/*",
        crate::abi::ns::NsObserver::PidfdIoctl => "PIDFD_GET_*_NAMESPACE ioctls on a pidfd of the child",
    };
    let _ = writeln!(s, "ns ids read:   {observer}");
    let limits: Vec<String> = env.max_namespaces.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "max_*_namespaces: {}", limits.join(" "));
    let _ = writeln!(
        s,
        "seccomp mode:  {}; LSMs: {}",
        env.seccomp_mode,
        if env.lsms.is_empty() { "unknown".into() } else { env.lsms.join(",") }
    );
    let _ = writeln!(s, "guest:         {}", crate::check::guest_rows::guest_line(env.guest.as_ref()));
    for (i, line) in env.resources.describe().iter().enumerate() {
        let _ = writeln!(s, "{}{line}", if i == 0 { "resources:     " } else { "               " });
    }
    if env.restrictions.is_empty() {
        let _ = writeln!(s, "restrictions:  none found: results describe the unfiltered kernel");
    } else {
        let _ = writeln!(s, "RESTRICTIONS (results describe the kernel as filtered):");
        for r in &env.restrictions {
            let _ = writeln!(s, "  - {r}");
        }
    }
    s
}

/// The summary after a run.
pub fn summary(report: &RunReport) -> String {
    let mut s = String::new();
    violation_lines(&mut s, report);
    invariant_table(&mut s, &report.tally);
    provokable_table(&mut s, &report.tally, &report.environment);
    case_counts(&mut s, report);
    run_lines(&mut s, report);
    let _ = writeln!(s, "result: {}", verdict(report));
    s
}

/// The sandbox's violations and every failed case in full.
fn violation_lines(s: &mut String, report: &RunReport) {
    for finding in &report.environment.sandbox_violations {
        let _ = writeln!(s, "\nVIOLATION of the outer sandbox: {finding}");
    }
    for failed in &report.failures {
        let _ = match &failed.file {
            Some(file) => writeln!(s, "\nVIOLATION in {file}: {}", failed.case),
            None => writeln!(s, "\nVIOLATION in case #{}: {}", failed.index, failed.case),
        };
        if let Ok(json) = serde_json::to_string(&failed.case) {
            let _ = writeln!(s, "  case (JSON): {json}");
        }
        for v in &failed.violations {
            let step = v.step.map_or("case".to_string(), |i| format!("step {i}"));
            let _ = writeln!(s, "  [{}] {step}: {}", v.invariant, v.detail);
            if let Some(e) = &v.expected {
                let _ =
                    writeln!(s, "    expected: {} (rule {}, effective flags {})", e.result, e.rule, e.effective_flags);
            }
            if let Some(o) = &v.observed {
                let _ = writeln!(s, "    observed: {}", o.result);
            }
        }
    }
}

/// Per invariant: checked, held, violated, skipped (by reason).
fn invariant_table(s: &mut String, t: &Tally) {
    let _ = writeln!(s, "\n{:<36} {:>9} {:>9} {:>9} {:>9}", "invariant", "checked", "held", "violated", "skipped");
    for (id, it) in &t.invariants {
        let skipped: u64 = it.skipped.values().sum();
        let _ = writeln!(s, "{id:<36} {:>9} {:>9} {:>9} {:>9}", it.checked, it.held, it.violated, skipped);
        for (reason, n) in &it.skipped {
            let _ = writeln!(s, "    skipped {n}x: {reason}");
        }
        if it.checked == 0 && it.skipped.is_empty() {
            let _ = writeln!(s, "    (never applicable in this run)");
        }
    }
}

/// The errno conditions of spec §3 the run provoked.
fn provokable_table(s: &mut String, t: &Tally, env: &Environment) {
    let _ = writeln!(s, "\nerrno conditions of spec §3 that can be provoked safely (observed as predicted):");
    let _ = writeln!(s, "{:<26} {:<7} {:>8}  spec", "condition (rule)", "errno", "observed");
    for (rule, errno, spec) in crate::check::invariants::PROVOKABLE {
        let n = t.conditions.get(&format!("{rule} {errno}")).copied().unwrap_or(0);
        let not_here = crate::check::guest_rows::guest_row_not_here(rule, env)
            .or_else(|| crate::check::caps::caps_row_not_here(rule, env))
            .or_else(|| crate::check::idmap::idmap_row_not_here(rule, env));
        let mark = match not_here {
            Some(why) if n == 0 => format!("  (not here: {why})"),
            _ if n == 0 => "  <- not provoked in this run".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(s, "{rule:<26} {errno:<7} {n:>8}  {spec}{mark}");
    }
}

/// Cases: reached the syscall, failed, broken and skipped (by reason), corpus files.
fn case_counts(s: &mut String, report: &RunReport) {
    let t = &report.tally;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "cases: {}  reached the syscall: {}  failed: {}  broken: {}  skipped: {}",
        t.cases,
        t.reached_syscall,
        t.failed_cases,
        t.broken_cases(),
        t.cases_skipped.values().sum::<u64>()
    );
    for (reason, n) in &t.cases_skipped {
        let _ = writeln!(s, "  skipped {n}x: {reason}");
    }
    for (reason, n) in &t.broken {
        let _ = writeln!(s, "  broken {n}x: {reason}");
    }
    if let Some(files) = &report.corpus_files {
        let _ = writeln!(s, "{}", corpus_counts(files));
    }
}

/// Time, source and model, notes, the interruption, probed facts and known bugs.
fn run_lines(s: &mut String, report: &RunReport) {
    let source = match &report.corpus_files {
        Some(files) => format!("replayed {} corpus files", files.len()),
        None => format!("seed {}", report.seed),
    };
    let _ = writeln!(
        s,
        "time: {:.1} s, {:.0} cases/s; {source}; model {}; {}",
        report.elapsed_seconds,
        report.cases_per_second,
        report.profile,
        placement(report.jobs, &report.pinned_cpus)
    );
    for note in &report.notes {
        let _ = writeln!(s, "note: {note}");
    }
    if let Some(i) = &report.interrupted {
        let _ = writeln!(s, "{}: the figures above cover those cases only", i.line());
    }
    for l in super::render::fact_lines(report).into_iter().chain(super::render::known_bug_lines(report)) {
        let _ = writeln!(s, "{l}");
    }
}

/// The one-line verdict of a report (after `result: `), which agrees with
/// [`RunReport::exit_code`]: what was found, whether the run was interrupted, and how many
/// cases reached the system call (prominently when none or few did).
pub fn verdict(report: &RunReport) -> String {
    let t = &report.tally;
    let mut parts = Vec::new();
    if let Some(i) = &report.interrupted {
        parts.push(format!("INTERRUPTED after {} of {} cases ({})", i.after_cases, i.planned_cases, i.cause));
    }
    if t.reached_syscall == 0 {
        parts.push(format!("NO CASE REACHED THE SYSCALL ({}): nothing was tested", why_nothing_reached(t)));
    }
    parts.extend(found_part(report));
    if let Some(b) = &report.baseline {
        parts.push(format!("{} known, {} new violations (baseline {})", b.known_violations, b.new_violations, b.path));
    }
    parts.extend(known_bug_part(report));
    if t.reached_syscall > 0 {
        let share = t.reached_syscall as f64 * 100.0 / t.cases as f64;
        if t.reached_syscall * 2 < t.cases {
            parts.push(format!(
                "but ONLY {} of {} cases ({share:.0} %) reached the syscall, the others were skipped or broken (see above)",
                t.reached_syscall, t.cases
            ));
        } else {
            parts.push(format!("{} of {} cases reached the syscall", t.reached_syscall, t.cases));
        }
    }
    parts.join("; ")
}

/// Why no case reached the system call: none was run, or the main skip and broken reasons.
fn why_nothing_reached(t: &Tally) -> String {
    if t.cases == 0 {
        return "no case was run".to_string();
    }
    let skipped: u64 = t.cases_skipped.values().sum();
    let mut reasons: Vec<(&String, &u64)> = t.cases_skipped.iter().chain(&t.broken).collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = reasons.iter().take(3).map(|(r, n)| format!("{n}x {r}")).collect();
    format!(
        "{skipped} of {} cases skipped, {} broken: {}{}",
        t.cases,
        t.broken_cases(),
        top.join("; "),
        if reasons.len() > 3 { "; ..." } else { "" }
    )
}

/// What was found, as the exit status says it (known violations under a baseline said so).
fn found_part(report: &RunReport) -> Option<String> {
    let t = &report.tally;
    let found = match t.exit_code() {
        0 if t.reached_syscall == 0 => None,
        0 => Some("all invariants held"),
        1 => Some("VIOLATIONS found"),
        2 => Some("some cases were BROKEN (the harness could not judge them)"),
        _ => Some("VIOLATIONS found and some cases were BROKEN"),
    };
    match &report.baseline {
        Some(b) if t.violations() > 0 && b.new_violations == 0 => {
            Some(found.unwrap_or_default().replace("VIOLATIONS found", "only KNOWN violations (baseline)"))
        }
        _ => found.map(str::to_string),
    }
}

/// How many failed cases a known bug explains, and which bugs.
fn known_bug_part(report: &RunReport) -> Option<String> {
    let labelled = report.failures.iter().filter(|f| f.known_bug.is_some()).count();
    let bugs: std::collections::BTreeSet<&str> = report.failures.iter().filter_map(|f| f.known_bug).collect();
    (labelled > 0).then(|| {
        format!(
            "{labelled} of {} failed cases are a KNOWN BUG ({})",
            report.failures.len(),
            bugs.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// One replayed corpus file: `STATUS  file  title`, then its details indented.
pub fn corpus_file_line(r: &FileResult) -> String {
    let mut s = format!("{:<6}  {}", r.status.label(), r.file);
    if let Some(title) = &r.title {
        let _ = write!(s, "  {title}");
    }
    s.push('\n');
    for d in &r.details {
        let _ = writeln!(s, "        {d}");
    }
    s
}

/// `files: N  PASS a  FAIL b  SKIP c  BROKEN d`.
pub fn corpus_counts(files: &[FileResult]) -> String {
    let count = |st: FileStatus| files.iter().filter(|f| f.status == st).count();
    format!(
        "files: {}  PASS {}  FAIL {}  SKIP {}  BROKEN {}",
        files.len(),
        count(FileStatus::Pass),
        count(FileStatus::Fail),
        count(FileStatus::Skip),
        count(FileStatus::Broken)
    )
}

/// One line per invariant with its meaning (for `--help`-like listings).
pub fn invariant_list() -> String {
    let case_level = [
        (behaviour::NAMESPACES_BY_BEHAVIOUR, behaviour::DOC),
        (inside::LIFE_INSIDE_NAMESPACES, inside::DOC),
        (inside_witness::INSIDE_CHANGES_STAY_INSIDE, inside_witness::DOC),
    ];
    INVARIANTS.iter().map(|i| (i.id, i.doc)).chain(case_level).map(|(id, doc)| format!("{id:<36} {doc}\n")).collect()
}

/// "1 executor on CPU 0", "2 executors on CPUs 0, 1", "2 executors, unpinned", ...
pub fn placement(jobs: usize, pinned: &[Option<u32>]) -> String {
    let noun = if jobs == 1 { "executor" } else { "executors" };
    let cpus: Vec<String> = pinned.iter().flatten().map(u32::to_string).collect();
    match cpus.len() {
        0 => format!("{jobs} {noun}, unpinned"),
        1 if jobs == 1 => format!("{jobs} {noun} on CPU {}", cpus[0]),
        n if n == jobs => format!("{jobs} {noun} on CPUs {}", cpus.join(", ")),
        n => format!("{jobs} {noun}, {n} pinned (CPUs {})", cpus.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::placement;

    #[test]
    fn placement_names_the_cpus_or_says_unpinned() {
        assert_eq!(placement(1, &[Some(0)]), "1 executor on CPU 0");
        assert_eq!(placement(2, &[Some(0), Some(1)]), "2 executors on CPUs 0, 1");
        assert_eq!(placement(2, &[None, None]), "2 executors, unpinned");
        assert_eq!(placement(3, &[Some(1), None, Some(0)]), "3 executors, 2 pinned (CPUs 1, 0)");
    }
}
