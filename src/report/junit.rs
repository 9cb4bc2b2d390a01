//! The JUnit XML report for CI dashboards: one `<testsuite>` inside
//! `<testsuites>`, one `<testcase>` per invariant plus `every-case-judged`.
//! A violated invariant carries a `<failure>` (message: the count; text: each
//! violation in full), one never checked carries `<skipped>` with the reason,
//! broken cases give an `<error>`. The environment goes into `<properties>`.

use std::fmt::Write;

use crate::report::run_report::RunReport;

use super::ktap::{EVERY_CASE_JUDGED, MAX_LISTED};
use super::render::{InvariantView, invariant_views, violation_lines};

/// Escapes text for XML content and attribute values. Characters XML 1.0 does
/// not allow at all (most C0 controls) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

fn property(s: &mut String, name: &str, value: &str) {
    let _ = writeln!(s, "      <property name=\"{}\" value=\"{}\"/>", escape(name), escape(value));
}

fn properties(s: &mut String, report: &RunReport) {
    let env = &report.environment;
    s.push_str("    <properties>\n");
    property(s, "seed", &report.seed.to_string());
    property(s, "model", report.profile);
    property(s, "kernel", &env.kernel_release);
    property(s, "host_uid", &env.host_uid.to_string());
    property(s, "sandbox", &env.sandbox);
    property(s, "seccomp_mode", &env.seccomp_mode.to_string());
    property(s, "lsms", &env.lsms.join(","));
    property(s, "cases", &report.tally.cases.to_string());
    property(s, "cases_per_second", &format!("{:.1}", report.cases_per_second));
    property(s, "reached_syscall", &report.tally.reached_syscall.to_string());
    property(s, "exit_status", &report.exit_code().to_string());
    property(s, "verdict", &super::human::verdict(report));
    if let Some(i) = &report.interrupted {
        property(s, "interrupted", &i.line());
    }
    if env.restrictions.is_empty() {
        property(s, "restrictions", "none found");
    }
    for r in &env.restrictions {
        property(s, "restriction", r);
    }
    s.push_str("    </properties>\n");
}

fn testcase(s: &mut String, view: &InvariantView, c: &mut Counts) {
    c.tests += 1;
    let _ = writeln!(s, "    <testcase name=\"{}\" classname=\"unshare-fuzz.invariants\" time=\"0\">", escape(view.id));
    let skips: Vec<String> = view.skipped.iter().map(|(r, n)| format!("{r} ({n} checks)")).collect();
    if view.violated > 0 || !view.violations.is_empty() {
        c.failures += 1;
        let mut body = String::new();
        for (failed, v) in view.violations.iter().take(MAX_LISTED) {
            for l in violation_lines(failed, v) {
                let _ = writeln!(body, "{l}");
            }
            body.push('\n');
        }
        if view.violations.len() > MAX_LISTED {
            let _ = writeln!(body, "... {} more, listed in the JSON report", view.violations.len() - MAX_LISTED);
        }
        let _ = writeln!(
            s,
            "      <failure message=\"{} of {} checks violated\" type=\"violation\">{}</failure>",
            view.violated,
            view.checked,
            escape(&body)
        );
    } else if view.checked == 0 {
        c.skipped += 1;
        let why =
            if skips.is_empty() { "not applicable to any case of this run".to_string() } else { skips.join("; ") };
        let _ = writeln!(s, "      <skipped message=\"{}\"/>", escape(&why));
    }
    let _ = writeln!(
        s,
        "      <system-out>checked {}, held {}, violated {}, skipped {}{}{}</system-out>",
        view.checked,
        view.held,
        view.violated,
        view.skipped_total(),
        if skips.is_empty() { "" } else { "\nskipped: " },
        escape(&skips.join("; "))
    );
    s.push_str("    </testcase>\n");
}

fn judged_case(s: &mut String, report: &RunReport, c: &mut Counts) {
    let t = &report.tally;
    let skipped: u64 = t.cases_skipped.values().sum();
    let broken = t.broken_cases();
    c.tests += 1;
    let _ = writeln!(
        s,
        "    <testcase name=\"{EVERY_CASE_JUDGED}\" classname=\"unshare-fuzz.harness\" time=\"{:.3}\">",
        report.elapsed_seconds
    );
    if let Some(i) = &report.interrupted {
        c.errors += 1;
        let body: Vec<String> = t.broken.iter().map(|(r, n)| format!("{n}x: {r}")).collect();
        let _ = writeln!(
            s,
            "      <error message=\"{}\" type=\"interrupted\">{}</error>",
            escape(&i.line()),
            escape(&body.join("\n"))
        );
    } else if broken > 0 {
        c.errors += 1;
        let body: Vec<String> = t.broken.iter().map(|(r, n)| format!("{n}x: {r}")).collect();
        let _ = writeln!(
            s,
            "      <error message=\"{broken} of {} cases broken\" type=\"broken\">{}</error>",
            t.cases,
            escape(&body.join("\n"))
        );
    } else if t.cases == 0 || skipped == t.cases {
        c.skipped += 1;
        let why = if t.cases == 0 {
            "no cases were run".to_string()
        } else {
            t.cases_skipped.keys().cloned().collect::<Vec<_>>().join("; ")
        };
        let _ = writeln!(s, "      <skipped message=\"{}\"/>", escape(&why));
    }
    let skip_lines: Vec<String> = t.cases_skipped.iter().map(|(r, n)| format!("\nskipped {n}x: {r}")).collect();
    let _ = writeln!(
        s,
        "      <system-out>cases {}, reached the syscall {}, failed {}, broken {broken}, skipped {skipped}{}</system-out>",
        t.cases,
        t.reached_syscall,
        t.failed_cases,
        escape(&skip_lines.concat())
    );
    s.push_str("    </testcase>\n");
}

/// Renders `report` as JUnit XML.
pub fn render(report: &RunReport) -> String {
    let mut body = String::new();
    let mut c = Counts { tests: 0, failures: 0, errors: 0, skipped: 0 };
    properties(&mut body, report);
    for view in invariant_views(report) {
        testcase(&mut body, &view, &mut c);
    }
    judged_case(&mut body, report, &mut c);
    let attrs = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
        c.tests, c.failures, c.errors, c.skipped, report.elapsed_seconds
    );
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, "<testsuites name=\"unshare-fuzz\" {attrs}>");
    let _ = writeln!(s, "  <testsuite name=\"unshare-fuzz.{}\" {attrs}>", escape(report.profile));
    s.push_str(&body);
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_forbidden_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1}\t\n"), "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}\t\n");
    }
}
