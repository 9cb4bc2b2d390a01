//! `run --baseline` and `unshare-fuzz diff` (issue 19 item 3), through the built binary: a
//! baseline made from a run's own JSON report makes the same violations known (exit bit 1
//! clear), while other violations still fail the run; `diff` lists what changed.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::path::Path;

fn run_json(out: &Path, fault: &str, baseline: Option<&Path>) -> (i32, serde_json::Value, String) {
    let json = out.to_str().unwrap();
    let mut args = vec!["run", "--cases", "80", "--seed", "5", "--jobs", "1", "--pin", "off", "--json", json];
    args.extend(["--inject-fault", fault]);
    if let Some(b) = baseline {
        args.extend(["--baseline", b.to_str().unwrap()]);
    }
    let o = common::run(&args);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    (o.status.code().unwrap(), report, common::text(&o))
}

#[test]
fn known_violations_do_not_fail_a_run_new_ones_do_and_diff_lists_them() {
    let dir = common::temp_dir("baseline");
    let (a, b, c) = (dir.join("a.json"), dir.join("b.json"), dir.join("c.json"));
    let (code, report_a, text) = run_json(&a, "unknown-bits-succeed", None);
    assert_eq!(code & 1, 1, "the injected fault must give violations: {text}");
    // Every probed contract fact is in the report, with its value and the rule it switched.
    let facts = report_a["probed_facts"].as_array().unwrap();
    assert_eq!(facts.len(), 4, "{facts:?}");
    assert!(facts.iter().all(|f| f["value"].is_string() && f["rule"].is_string()), "{facts:?}");
    let known = report_a["tally"]["invariants"]["unknown-bits-einval"]["violated"].as_u64().unwrap();
    assert!(known > 0, "{text}");

    // The same run against its own report: every violation is known.
    let (code, report_b, text) = run_json(&b, "unknown-bits-succeed", Some(&a));
    assert_eq!(code & 1, 0, "known violations must not fail the run: {text}");
    assert_eq!(report_b["baseline"]["new_violations"], 0, "{text}");
    assert!(report_b["baseline"]["known_violations"].as_u64().unwrap() >= known, "{text}");
    assert!(text.contains("only KNOWN violations (baseline)"), "{text}");

    // Another fault: its violations are new.
    let (code, report_c, text) = run_json(&c, "failure-leaks-uts", Some(&a));
    assert_eq!(code & 1, 1, "new violations must fail the run: {text}");
    assert!(report_c["baseline"]["new_violations"].as_u64().unwrap() > 0, "{text}");

    let o = common::run(&["diff", a.to_str().unwrap(), c.to_str().unwrap()]);
    let out = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("violations only in B (new): ") && out.contains("failure-changes-nothing"), "{out}");
    assert!(out.contains("violations only in A (gone): ") && out.contains("unknown-bits-einval"), "{out}");
    let o = common::run(&["diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    assert!(common::text(&o).contains("violations only in B (new): 0"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_baseline_that_cannot_be_read_or_would_hide_everything_is_refused_before_any_case() {
    let dir = common::temp_dir("baseline-bad");
    let broad = dir.join("broad.json");
    std::fs::write(&broad, r#"{"known": [{"invariant": "errno-matches-model"}]}"#).unwrap();
    for (path, says) in
        [(dir.join("missing.json"), "cannot read baseline"), (broad, "neither \"known_bug\" nor \"case\"")]
    {
        let o = common::run(&["run", "--cases", "5", "--baseline", path.to_str().unwrap()]);
        let text = common::text(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(!text.contains("seed: "), "no case may run: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
