//! `unshare-fuzz diff A.json B.json`: what changed between two JSON reports (two kernels, two
//! versions of the harness, two days): the environment, the probed kernel facts, each
//! invariant's verdict, and the violations that appeared or went away. Reports are read as
//! plain JSON, so reports of older and newer harness versions compare too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

/// One violation, as a diff compares them: invariant, the case (as JSON), and its label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    invariant: String,
    case: String,
    index: Option<u64>,
    known_bug: Option<String>,
}

fn violations(report: &Value) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for f in report.get("failures").and_then(Value::as_array).into_iter().flatten() {
        let case = f.get("case").map(Value::to_string).unwrap_or_default();
        let known_bug = f.get("known_bug").and_then(Value::as_str).map(str::to_string);
        let index = f.get("index").and_then(Value::as_u64);
        for v in f.get("violations").and_then(Value::as_array).into_iter().flatten() {
            let invariant = v.get("invariant").and_then(Value::as_str).unwrap_or("?").to_string();
            out.insert(Key { invariant, case: case.clone(), index, known_bug: known_bug.clone() });
        }
    }
    out
}

/// "held", "VIOLATED", "skipped" or "not checked", for one invariant of a tally.
fn status(t: &Value) -> String {
    let n = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0);
    let skipped: u64 =
        t.get("skipped").and_then(Value::as_object).map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    if n("violated") > 0 {
        format!("VIOLATED ({} of {})", n("violated"), n("checked"))
    } else if n("checked") > 0 {
        format!("held ({})", n("checked"))
    } else if skipped > 0 {
        format!("skipped ({skipped})")
    } else {
        "not checked".into()
    }
}

fn verdict_word(t: Option<&Value>) -> &'static str {
    let Some(t) = t else { return "absent" };
    let n = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0);
    if n("violated") > 0 {
        "VIOLATED"
    } else if n("checked") > 0 {
        "held"
    } else {
        "skipped"
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The comparison, as text, and whether B has violations that A did not have.
pub fn diff(a_name: &str, a: &Value, b_name: &str, b: &Value) -> (String, bool) {
    let mut out = String::new();
    let _ = writeln!(out, "A {}", headline(a_name, a));
    let _ = writeln!(out, "B {}", headline(b_name, b));
    let env_changes = environment_changes(a, b);
    let _ = writeln!(out, "\nenvironment: {}", if env_changes.is_empty() { "same" } else { "changed" });
    for c in &env_changes {
        let _ = writeln!(out, "{c}");
    }
    let rows = verdict_changes(a, b);
    let _ = writeln!(out, "\ninvariants whose verdict changed: {}", rows.len());
    for r in &rows {
        let _ = writeln!(out, "{r}");
    }
    let new = violation_changes(&mut out, &violations(a), &violations(b));
    (out, new)
}

/// One report's headline: kernel, profile, seed, cases, exit status, harness version.
fn headline(name: &str, r: &Value) -> String {
    format!(
        "{name}: kernel {}, profile {}, seed {}, {} cases, exit status {}, harness {}",
        show(str_at(r, &["environment", "kernel_release"])),
        show(r.get("profile")),
        show(r.get("seed")),
        show(str_at(r, &["tally", "cases"])),
        show(r.get("exit_status")),
        show(r.get("version")),
    )
}

/// The environment: every top-level field that differs (the snapshot of ids always does).
fn environment_changes(a: &Value, b: &Value) -> Vec<String> {
    let mut env_changes = Vec::new();
    if let (Some(ea), Some(eb)) =
        (a.get("environment").and_then(Value::as_object), b.get("environment").and_then(Value::as_object))
    {
        let keys: BTreeSet<&String> = ea.keys().chain(eb.keys()).collect();
        for k in keys {
            if matches!(k.as_str(), "baseline" | "pinned_cpu" | "headroom" | "resources") {
                continue;
            }
            let (x, y) = (ea.get(k), eb.get(k));
            if x != y {
                env_changes.push(format!("  {k}: {} -> {}", show(x), show(y)));
            }
        }
    }
    env_changes
}

/// Invariants whose verdict changed, one line each.
fn verdict_changes(a: &Value, b: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let ta = str_at(a, &["tally", "invariants"]).and_then(Value::as_object).unwrap_or(&empty);
    let tb = str_at(b, &["tally", "invariants"]).and_then(Value::as_object).unwrap_or(&empty);
    let ids: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    let mut rows = Vec::new();
    for id in ids {
        let (x, y) = (ta.get(id.as_str()), tb.get(id.as_str()));
        if verdict_word(x) != verdict_word(y) {
            rows.push(format!(
                "  {id}: {} -> {}",
                x.map_or_else(|| "absent".into(), status),
                y.map_or_else(|| "absent".into(), status)
            ));
        }
    }
    rows
}

fn describe(k: &Key) -> String {
    format!(
        "  {} (case {}){}",
        k.invariant,
        k.index.map_or_else(|| "?".into(), |i| i.to_string()),
        k.known_bug.as_ref().map_or_else(String::new, |b| format!(", known bug {b}"))
    )
}

fn by_invariant(keys: &[&Key]) -> String {
    let mut m: BTreeMap<&str, u64> = BTreeMap::new();
    keys.iter().for_each(|k| *m.entry(k.invariant.as_str()).or_default() += 1);
    m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// Violations new in B, gone from A, relabelled and in both; true if B has new ones.
fn violation_changes(out: &mut String, va: &BTreeSet<Key>, vb: &BTreeSet<Key>) -> bool {
    let same = |k: &Key, set: &BTreeSet<Key>| set.iter().any(|o| o.invariant == k.invariant && o.case == k.case);
    let new: Vec<&Key> = vb.iter().filter(|k| !same(k, va)).collect();
    let gone: Vec<&Key> = va.iter().filter(|k| !same(k, vb)).collect();
    let mut listed = |title: &str, keys: &[&Key]| {
        let counts = if keys.is_empty() { String::new() } else { format!(" ({})", by_invariant(keys)) };
        let _ = writeln!(out, "{title}: {}{counts}", keys.len());
        for k in keys.iter().take(50) {
            let _ = writeln!(out, "{}", describe(k));
        }
    };
    listed("\nviolations only in B (new)", &new);
    listed("violations only in A (gone)", &gone);
    relabelled(out, va, vb);
    let _ = writeln!(out, "violations in both: {}", vb.iter().filter(|k| same(k, va)).count());
    !new.is_empty()
}

/// Violations in both reports whose known-bug label changed.
fn relabelled(out: &mut String, va: &BTreeSet<Key>, vb: &BTreeSet<Key>) {
    let relabelled: Vec<(&Key, &Key)> = vb
        .iter()
        .filter_map(|k| {
            va.iter()
                .find(|o| o.invariant == k.invariant && o.case == k.case && o.known_bug != k.known_bug)
                .map(|o| (o, k))
        })
        .collect();
    if relabelled.is_empty() {
        return;
    }
    let _ = writeln!(out, "violations in both with another known-bug label: {}", relabelled.len());
    for (x, y) in relabelled.iter().take(50) {
        let _ = writeln!(
            out,
            "  {} (case {}): {} -> {}",
            y.invariant,
            show(y.index.map(Value::from).as_ref()),
            show(x.known_bug.clone().map(Value::from).as_ref()),
            show(y.known_bug.clone().map(Value::from).as_ref())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(release: &str, held: u64, failures: Value) -> Value {
        json!({
            "version": "0.1.0", "profile": "linux-5.10", "seed": 3, "exit_status": 0,
            "environment": {"kernel_release": release, "ns_observer": "proc_links"},
            "tally": {"cases": 10, "invariants": {
                "errno-matches-model": {"checked": held + 1, "held": held, "violated": 1, "skipped": {}},
                "failure-changes-nothing": {"checked": 4, "held": 4, "violated": 0, "skipped": {}}
            }},
            "failures": failures
        })
    }

    #[test]
    fn new_and_gone_violations_and_the_environment_are_listed() {
        let fa = json!([{"index": 1, "case": {"s": 1}, "violations": [{"invariant": "errno-matches-model"}]}]);
        let fb = json!([{"index": 2, "case": {"s": 2}, "known_bug": "unshare-fs-fix-missing",
                         "violations": [{"invariant": "errno-matches-model"}]}]);
        let (text, new) =
            diff("a.json", &report("5.10.0-32-cloud-amd64", 5, fa), "b.json", &report("6.1.0-56-cloud-amd64", 5, fb));
        assert!(new, "{text}");
        assert!(text.contains("kernel_release: 5.10.0-32-cloud-amd64 -> 6.1.0-56-cloud-amd64"), "{text}");
        assert!(text.contains("violations only in B (new): 1 (errno-matches-model 1)"), "{text}");
        assert!(text.contains("errno-matches-model (case 2), known bug unshare-fs-fix-missing"), "{text}");
        assert!(text.contains("violations only in A (gone): 1"), "{text}");
        assert!(text.contains("invariants whose verdict changed: 0"), "{text}");
    }

    #[test]
    fn identical_reports_have_nothing_new() {
        let f = json!([{"index": 1, "case": {"s": 1}, "violations": [{"invariant": "errno-matches-model"}]}]);
        let r = report("6.18.44", 9, f);
        let (text, new) = diff("a", &r, "b", &r);
        assert!(!new, "{text}");
        assert!(text.contains("environment: same") && text.contains("violations in both: 1"), "{text}");
    }

    #[test]
    fn a_verdict_that_changes_is_a_row() {
        let mut b = report("6.18.44", 9, json!([]));
        b["tally"]["invariants"]["failure-changes-nothing"]["violated"] = json!(2);
        let (text, _) = diff("a", &report("6.18.44", 9, json!([])), "b", &b);
        assert!(text.contains("failure-changes-nothing: held (4) -> VIOLATED (2 of 4)"), "{text}");
    }
}
