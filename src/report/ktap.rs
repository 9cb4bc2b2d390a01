//! The KTAP version 1 report (Documentation/dev-tools/ktap.rst), as kernel
//! selftests print it: one top-level test per invariant, plus
//! `every-case-judged` for cases the harness could not judge. An invariant
//! with violations or skipped checks gets a nested block that lists them
//! (`not ok N case_12_step_0`, `# TIMEOUT`, `# SKIP reason`), with the details
//! as `# ` diagnostic lines just before each result. The environment,
//! including any restriction on unshare, comes first as `# ` lines; a
//! kselftest-style `# Totals:` line comes last.

use std::fmt::Write;

use crate::report::run_report::RunReport;

use super::render::{InvariantView, invariant_views, is_timeout, one_line, violation_lines, violation_name};

/// Name of the top-level test that fails when some case could not be judged.
pub const EVERY_CASE_JUDGED: &str = "every-case-judged";

/// Violations listed one by one per invariant; the rest are counted in one line.
pub const MAX_LISTED: usize = 20;

/// Accumulates lines at a nesting depth (two spaces per level).
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, depth: usize, s: &str) {
        let _ = writeln!(self.text, "{:width$}{s}", "", width = depth * 2);
    }

    fn diag(&mut self, depth: usize, s: &str) {
        self.line(depth, &format!("# {}", one_line(s)));
    }

    /// A result line. `directive` is e.g. `SKIP reason`, `TIMEOUT 5000 ms`, or plain data.
    fn result(&mut self, depth: usize, ok: bool, n: usize, name: &str, directive: Option<&str>) {
        let word = if ok { "ok" } else { "not ok" };
        let name = one_line(name).replace('#', "");
        match directive {
            Some(d) => self.line(depth, &format!("{word} {n} {name} # {}", one_line(d))),
            None => self.line(depth, &format!("{word} {n} {name}")),
        }
    }

    fn header(&mut self, depth: usize, plan: usize) {
        self.line(depth, "KTAP version 1");
        self.line(depth, &format!("1..{plan}"));
    }
}

/// Kselftest's totals.
#[derive(Default)]
struct Totals {
    pass: u64,
    fail: u64,
    skip: u64,
    error: u64,
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn skip_reason(view: &InvariantView) -> String {
    if view.skipped.is_empty() {
        "not applicable to any case of this run".to_string()
    } else {
        view.skipped.iter().map(|(r, n)| format!("{r} ({})", plural(*n, "check"))).collect::<Vec<_>>().join("; ")
    }
}

/// The nested block of one invariant: its violations, then its skipped checks.
fn nested(out: &mut Out, view: &InvariantView) {
    let listed = view.violations.len().min(MAX_LISTED);
    let more = view.violations.len() - listed;
    let plan = listed + usize::from(more > 0) + view.skipped.len();
    if plan == 0 {
        return;
    }
    out.header(1, plan);
    let mut n = 0;
    for (failed, v) in view.violations.iter().take(listed) {
        n += 1;
        for l in violation_lines(failed, v) {
            out.diag(1, &l);
        }
        let directive = is_timeout(v).then(|| {
            let d = v.detail.trim_start_matches("timeout:").trim();
            format!("TIMEOUT {d}")
        });
        out.result(1, false, n, &violation_name(failed, v), directive.as_deref());
    }
    if more > 0 {
        n += 1;
        out.result(1, false, n, "more_violations", Some(&format!("{more} more, listed in the JSON report")));
    }
    for (reason, count) in &view.skipped {
        n += 1;
        out.result(1, true, n, "skipped_checks", Some(&format!("SKIP {reason} ({})", plural(*count, "check"))));
    }
}

fn invariant(out: &mut Out, n: usize, view: &InvariantView, totals: &mut Totals) {
    if view.checked == 0 && view.violations.is_empty() {
        totals.skip += 1;
        out.result(0, true, n, view.id, Some(&format!("SKIP {}", skip_reason(view))));
        return;
    }
    nested(out, view);
    out.diag(
        0,
        &format!(
            "{}: checked {}, held {}, violated {}, skipped {}",
            view.id,
            view.checked,
            view.held,
            view.violated,
            view.skipped_total()
        ),
    );
    if view.violated == 0 && view.violations.is_empty() {
        totals.pass += 1;
        out.result(0, true, n, view.id, None);
    } else if view.only_timeouts() {
        totals.fail += 1;
        let d = format!("TIMEOUT {}", plural(view.violations.len() as u64, "case"));
        out.result(0, false, n, view.id, Some(&d));
    } else {
        totals.fail += 1;
        let d = format!("{} of {} checks violated", view.violated, view.checked);
        out.result(0, false, n, view.id, Some(&d));
    }
}

fn every_case_judged(out: &mut Out, n: usize, report: &RunReport, totals: &mut Totals) {
    let t = &report.tally;
    let skipped: u64 = t.cases_skipped.values().sum();
    let broken = t.broken_cases();
    if let Some(i) = &report.interrupted {
        // The cases not run were not judged: an error, whatever the others gave.
        plan_broken_and_skipped(out, t);
        out.diag(0, &format!("{}: the results above cover those cases only", i.line()));
        totals.error += 1;
        out.result(0, false, n, EVERY_CASE_JUDGED, Some(&format!("ERROR {}", i.line())));
        return;
    }
    if t.cases == 0 || (skipped == t.cases && broken == 0) {
        totals.skip += 1;
        let why = if t.cases == 0 {
            "no cases were run".to_string()
        } else {
            t.cases_skipped.keys().cloned().collect::<Vec<_>>().join("; ")
        };
        out.diag(0, &format!("no case reached the syscall: {why}"));
        out.result(0, true, n, EVERY_CASE_JUDGED, Some(&format!("SKIP {why}")));
        return;
    }
    plan_broken_and_skipped(out, t);
    out.diag(
        0,
        &format!(
            "cases: {}, reached the syscall: {}, failed: {}, broken: {broken}, skipped: {skipped}",
            t.cases, t.reached_syscall, t.failed_cases
        ),
    );
    if broken > 0 {
        totals.error += 1;
        let d = format!("ERROR {broken} of {} cases broken", t.cases);
        out.result(0, false, n, EVERY_CASE_JUDGED, Some(&d));
    } else {
        totals.pass += 1;
        out.result(0, true, n, EVERY_CASE_JUDGED, None);
    }
}

/// The nested block of `every-case-judged`: one result per broken and per skip reason.
fn plan_broken_and_skipped(out: &mut Out, t: &crate::check::Tally) {
    let plan = t.broken.len() + t.cases_skipped.len();
    if plan == 0 {
        return;
    }
    out.header(1, plan);
    let mut k = 0;
    for (reason, count) in &t.broken {
        k += 1;
        let d = format!("ERROR {reason} ({})", plural(*count, "case"));
        out.result(1, false, k, "broken_cases", Some(&d));
    }
    for (reason, count) in &t.cases_skipped {
        k += 1;
        let d = format!("SKIP {reason} ({})", plural(*count, "case"));
        out.result(1, true, k, "skipped_cases", Some(&d));
    }
}

/// Renders `report` as KTAP version 1.
pub fn render(report: &RunReport) -> String {
    let views = invariant_views(report);
    let mut out = Out { text: String::new() };
    out.header(0, views.len() + 1);
    out.diag(
        0,
        &format!(
            "unshare-fuzz {}: {} cases in {:.1} s ({:.0} cases/s), seed {}, model {}, {}",
            env!("CARGO_PKG_VERSION"),
            report.tally.cases,
            report.elapsed_seconds,
            report.cases_per_second,
            report.seed,
            report.profile,
            super::human::placement(report.jobs, &report.pinned_cpus)
        ),
    );
    for l in super::human::environment(&report.environment).lines() {
        out.diag(0, l.trim_end());
    }
    if let Some(i) = &report.interrupted {
        out.diag(0, &i.line());
    }
    for note in &report.notes {
        out.diag(0, &format!("note: {note}"));
    }
    for l in super::render::fact_lines(report).into_iter().chain(super::render::known_bug_lines(report)) {
        out.diag(0, &l);
    }
    out.diag(0, &format!("result: {}", super::human::verdict(report)));
    let mut totals = Totals::default();
    for (i, view) in views.iter().enumerate() {
        invariant(&mut out, i + 1, view, &mut totals);
    }
    every_case_judged(&mut out, views.len() + 1, report, &mut totals);
    out.diag(
        0,
        &format!(
            "Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:{}",
            totals.pass, totals.fail, totals.skip, totals.error
        ),
    );
    out.text
}
