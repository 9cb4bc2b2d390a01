//! The selftest's reports: a human one (two tables, the ablation table, the
//! detecting cases, the verdict) and the JSON document.

use std::fmt::Write;

use super::SelftestReport;
use super::oracles::OracleResult;
use crate::exec::executor::mutants::MUTANTS;

/// The JSON document.
///
/// # Errors
/// Only if serialization fails (it should not).
pub fn json(report: &SelftestReport) -> serde_json::Result<String> {
    serde_json::to_string_pretty(report)
}

fn seconds(s: f64) -> String {
    format!("{s:.2}")
}

fn mutant_table(s: &mut String, r: &SelftestReport) {
    let h = &r.honest;
    let _ = writeln!(
        s,
        "\nLying kernels: each mutant is a seccomp filter over unshare's flag word, in its own sandboxed executor,\n\
         run on the case stream of seed {} until the first violation (at most {} cases)",
        r.seed, r.cases_per_mutant
    );
    let _ = writeln!(
        s,
        "{:<40} {:<8} {:>6} {:>8} {:>6}  invariants that fired",
        "mutant", "detected", "cases", "seconds", "broken"
    );
    let clean = if h.clean(r.cases_per_mutant) { "clean" } else { "NOT CLEAN" };
    let _ = writeln!(
        s,
        "{:<40} {:<8} {:>6} {:>8} {:>6}  {} violations, {} skipped, {} restrictions",
        "(honest kernel, no filter)",
        clean,
        h.cases,
        seconds(h.seconds),
        h.tally.broken_cases(),
        h.tally.violations(),
        h.tally.cases_skipped.values().sum::<u64>(),
        h.restrictions.len()
    );
    for m in &r.mutants {
        let detected = match (&m.error, m.detected) {
            (Some(_), _) => "ERROR",
            (None, true) => "yes",
            (None, false) => "NO",
        };
        let fired = match &m.error {
            Some(e) => e.clone(),
            None => m.invariants().join(", "),
        };
        let _ = writeln!(
            s,
            "{:<40} {:<8} {:>6} {:>8} {:>6}  {fired}",
            m.name,
            detected,
            m.cases_run,
            seconds(m.seconds),
            m.broken
        );
    }
}

fn oracle_rows(s: &mut String, rows: &[OracleResult], max_rules: usize) {
    for o in rows {
        let first = o.example.as_ref().map_or("-".to_string(), |e| e.number.to_string());
        let mut rules: Vec<String> = o.rules.iter().take(max_rules).map(|(r, n)| format!("{r} ({n})")).collect();
        if o.rules.len() > max_rules {
            rules.push(format!("... {} more", o.rules.len() - max_rules));
        }
        let _ = writeln!(
            s,
            "{:<40} {:<9} {:>6} {:>6}  {}",
            o.label,
            if o.disagrees { "yes" } else { "NO" },
            first,
            o.disagreeing_cases,
            if rules.is_empty() { "-".to_string() } else { rules.join("; ") }
        );
    }
}

fn model_table(s: &mut String, r: &SelftestReport) {
    let judged = r.model_mutants.first().map_or(0, |o| o.cases_judged);
    let _ = writeln!(
        s,
        "\nModel mutants: historical profiles as the oracle over the honest run's {judged} judged cases;\n\
         rules behind each disagreement (first differing step, compared with linux-6.18), with case counts"
    );
    let _ = writeln!(s, "{:<40} {:<9} {:>6} {:>6}  rules", "profile", "disagrees", "first", "cases");
    oracle_rows(s, &r.model_mutants, usize::MAX);
    for o in &r.model_mutants {
        if !o.unexercised.is_empty() {
            let _ = writeln!(s, "  {} differences not exercised here: {}", o.label, o.unexercised.join(", "));
        }
    }
}

fn ablation_table(s: &mut String, r: &SelftestReport) {
    let _ = writeln!(
        s,
        "\nModel rule ablation (informational): linux-6.18 with one rule removed, as the oracle over the same cases"
    );
    let _ = writeln!(s, "{:<40} {:<9} {:>6} {:>6}  first invariants", "rule removed", "detected", "first", "cases");
    for o in &r.ablations {
        let first = o.example.as_ref().map_or("-".to_string(), |e| e.number.to_string());
        let why = match &o.example {
            Some(e) => e.invariants.join(", "),
            None if o.label.ends_with("-missing") => {
                "needs a kernel without that namespace type (not exercisable here)".to_string()
            }
            None if o.differing_predictions == 0 => {
                "never changes a prediction on these cases (equivalent here)".to_string()
            }
            None => format!("changes {} predictions, none of them observably", o.differing_predictions),
        };
        let _ = writeln!(
            s,
            "{:<40} {:<9} {:>6} {:>6}  {why}",
            o.label,
            if o.disagrees { "yes" } else { "no" },
            first,
            o.disagreeing_cases
        );
    }
}

fn details(s: &mut String, r: &SelftestReport) {
    let _ = writeln!(s, "\nDetecting cases:");
    for m in &r.mutants {
        let Some(f) = &m.first_failure else { continue };
        let _ = writeln!(s, "  {} (case {}): {}", m.name, f.number, f.text);
        if let Some(v) = f.violations.first() {
            let step = v.step.map_or("case".to_string(), |i| format!("step {i}"));
            let _ = writeln!(s, "    [{}] {step}: {}", v.invariant, v.detail);
        }
    }
    for o in &r.model_mutants {
        let Some(e) = &o.example else { continue };
        let _ = writeln!(s, "  {} (case {}): {}", o.label, e.number, e.case);
        let _ = writeln!(
            s,
            "    step {}: profile expects {}, the kernel did {}; rules: {} [{}]",
            e.step,
            e.profile_says,
            e.kernel_did,
            e.rules.join(" + "),
            e.invariants.join(", ")
        );
    }
    for f in &r.honest.failures {
        let _ = writeln!(s, "  HONEST RUN VIOLATION (case {}): {}", f.number, f.text);
        for v in &f.violations {
            let _ = writeln!(s, "    [{}] {}", v.invariant, v.detail);
        }
    }
    for (reason, n) in &r.honest.tally.broken {
        let _ = writeln!(s, "  HONEST RUN BROKEN {n}x: {reason}");
    }
}

/// The human report.
pub fn human(r: &SelftestReport) -> String {
    let mut s = crate::report::human::environment(&r.environment);
    mutant_table(&mut s, r);
    model_table(&mut s, r);
    ablation_table(&mut s, r);
    details(&mut s, r);
    let detected = r.mutants.iter().filter(|m| m.detected).count();
    let disagree = r.model_mutants.iter().filter(|o| o.disagrees).count();
    let _ = writeln!(
        s,
        "\nsummary: {detected}/{} mutants detected within {} cases; honest run {}; {disagree}/{} historical profiles disagree",
        r.mutants.len(),
        r.cases_per_mutant,
        if r.honest.clean(r.cases_per_mutant) { "clean" } else { "NOT clean" },
        r.model_mutants.len()
    );
    if r.verdict.passed {
        let _ = writeln!(s, "result: PASS");
    } else {
        let _ = writeln!(s, "result: FAIL");
        for p in &r.verdict.problems {
            let _ = writeln!(s, "  - {p}");
        }
    }
    s
}

/// `selftest --list`: every mutant with its lie and rules.
pub fn mutant_list() -> String {
    let mut s = String::new();
    for m in MUTANTS {
        let _ = writeln!(s, "{:<40} {}", m.name, m.lie);
        let _ = writeln!(s, "{:<40} origin: {}", "", m.origin);
        for r in m.rules {
            let mut cond = Vec::new();
            if r.all != 0 {
                cond.push(format!("all of {}", crate::abi::flags::RawFlags(r.all)));
            }
            if r.any != 0 {
                cond.push(format!("any of {}", crate::abi::flags::RawFlags(r.any)));
            }
            if r.none != 0 {
                cond.push(format!("none of {}", crate::abi::flags::RawFlags(r.none)));
            }
            let _ = writeln!(s, "{:<40} rule: if {}: {}", "", cond.join(", "), r.action);
        }
    }
    s
}
