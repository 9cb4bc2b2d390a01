//! What the report formats share: the per-invariant view that the KTAP and JUnit writers
//! both read, and the lines of probed facts and known bugs every format prints. Below the
//! formats (`human`, `json`, `ktap`, `junit`) and the dispatcher (`format`), which use it.

use crate::check::Violation;
use crate::check::invariants::CASE_COMPLETES;
use crate::report::run_report::{FailedCase, RunReport};

/// How one invariant fared over a report: the figures plus its violations.
pub(crate) struct InvariantView<'a> {
    /// Stable id.
    pub id: &'a str,
    /// Checks made.
    pub checked: u64,
    /// Checks that held.
    pub held: u64,
    /// Checks violated.
    pub violated: u64,
    /// Skipped checks, by reason.
    pub skipped: Vec<(&'a str, u64)>,
    /// Every recorded violation of this invariant, with its case.
    pub violations: Vec<(&'a FailedCase, &'a Violation)>,
}

impl InvariantView<'_> {
    /// Total skipped checks.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }

    /// True when every recorded violation is a watchdog timeout.
    pub fn only_timeouts(&self) -> bool {
        !self.violations.is_empty() && self.violations.iter().all(|(_, v)| is_timeout(v))
    }
}

/// True for the case-level violation the judge records when the watchdog fired.
pub(crate) fn is_timeout(v: &Violation) -> bool {
    v.invariant == CASE_COMPLETES && v.detail.starts_with("timeout")
}

/// One view per invariant of the tally, in report order.
pub(crate) fn invariant_views(report: &RunReport) -> Vec<InvariantView<'_>> {
    report
        .tally
        .invariants
        .iter()
        .map(|(id, t)| InvariantView {
            id,
            checked: t.checked,
            held: t.held,
            violated: t.violated,
            skipped: t.skipped.iter().map(|(r, n)| (r.as_str(), *n)).collect(),
            violations: report
                .failures
                .iter()
                .flat_map(|f| f.violations.iter().map(move |v| (f, v)))
                .filter(|(_, v)| v.invariant == id.as_str())
                .collect(),
        })
        .collect()
}

/// A short name for one violation: `case_12_step_0` (no spaces, no `#`).
pub(crate) fn violation_name(failed: &FailedCase, v: &Violation) -> String {
    match v.step {
        Some(step) => format!("case_{}_step_{step}", failed.index),
        None => format!("case_{}", failed.index),
    }
}

/// The lines that explain one violation: the case, what differed, expected vs observed.
pub(crate) fn violation_lines(failed: &FailedCase, v: &Violation) -> Vec<String> {
    let mut lines = vec![format!("case {}: {}", failed.index, failed.case)];
    if let Some(file) = &failed.file {
        lines.push(format!("file: {file}"));
    }
    if let Ok(json) = serde_json::to_string(&failed.case) {
        lines.push(format!("case (JSON): {json}"));
    }
    if let Some(bug) = failed.known_bug {
        lines.push(format!("known bug: {bug} (explains every violation of this case; see the known-bugs summary)"));
    }
    if failed.baselined {
        lines.push("known violation: listed in the baseline, does not fail the run".to_string());
    }
    let at = v.step.map_or("case".to_string(), |i| format!("step {i}"));
    lines.push(format!("{at}: {}", v.detail));
    if let Some(e) = &v.expected {
        lines.push(format!("expected: {} (rule {}, effective flags {})", e.result, e.rule, e.effective_flags));
    }
    if let Some(o) = &v.observed {
        lines.push(format!("observed: {}", o.result));
    }
    lines
}

/// The contract facts probed at start (`crate::env::facts`): `fact: NAME = VALUE; RULE`, one line
/// each, against the run's profile.
pub fn fact_lines(report: &RunReport) -> Vec<String> {
    let Ok((profile, _)) = crate::model::profile::resolve(report.profile, &report.environment.kernel_release) else {
        return Vec::new();
    };
    report
        .environment
        .call_probes
        .facts
        .lines(profile)
        .into_iter()
        .map(|l| format!("fact: {} = {}; {}", l.fact, l.value, l.rule))
        .collect()
}

/// The known bugs that explain failed cases of `report`, and the baseline's effect: one
/// paragraph per bug (which cases, the upstream fix, the backports), for every format.
pub fn known_bug_lines(report: &RunReport) -> Vec<String> {
    let mut lines = Vec::new();
    let failed = report.failures.len();
    for bug in crate::check::known::KNOWN_BUGS {
        let cases: Vec<&FailedCase> = report.failures.iter().filter(|f| f.known_bug == Some(bug.id)).collect();
        if cases.is_empty() {
            continue;
        }
        let violations: usize = cases.iter().map(|f| f.violations.len()).sum();
        lines.push(format!(
            "KNOWN BUG {}: explains {} of {failed} failed cases ({violations} violations): {}",
            bug.id,
            cases.len(),
            bug.title
        ));
        lines.push(format!("  upstream fix: {}", bug.upstream));
        lines.push(format!("  {}", bug.backports));
        lines.push(format!(
            "  a kernel that keeps this bug is described by --kernel-profile {}{}",
            report.profile, bug.profile_suffix
        ));
    }
    let unexplained = report.failures.iter().filter(|f| f.known_bug.is_none()).count();
    if !lines.is_empty() && unexplained > 0 {
        lines.push(format!("{unexplained} failed cases are explained by no known bug"));
    }
    if let Some(b) = &report.baseline {
        lines.push(format!(
            "baseline {} ({} entries): {} known violations do not fail the run, {} new ones do",
            b.path, b.entries, b.known_violations, b.new_violations
        ));
    }
    lines
}

/// Turns any text into one line without control characters.
pub(crate) fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_control_characters() {
        assert_eq!(one_line("a\nb\r\tc\u{7}"), "a b  c ");
    }
}
