//! `unshare-fuzz selftest` end to end through the built binary: every lying kernel is
//! detected, the honest kernel shows no violation, and every historical profile disagrees
//! with this kernel for a named rule. The test only spawns the binary; each executor forks
//! in its own sandbox, never the test thread.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use serde_json::Value;

fn selftest_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["selftest", "--format", "json"];
    all.extend_from_slice(args);
    let out = common::run(&all);
    let text = common::text(&out);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("selftest printed no JSON report ({e}):\n{text}"));
    (out.status.code().unwrap_or(-1), report, text)
}

/// The CI-sized run. The budget is the default 2000 cases because the exact-word mutants
/// (`files-noop`, `fs-noop`, `sysvsem-noop`) need up to about 1100 cases (docs/selftest.md);
/// every other mutant falls within the first hundred. The whole run takes about 10 s.
#[test]
fn every_mutant_is_detected_and_the_honest_kernel_is_clean() {
    let (code, r, text) = selftest_json(&["--cases-per-mutant", "2000", "--seed", "42"]);
    let problems = &r["verdict"]["problems"];
    assert_eq!(code, 0, "selftest failed: {problems}\n{text}");
    assert_eq!(r["verdict"]["passed"], true);

    let honest = &r["honest"];
    assert_eq!(honest["cases"], 2000, "{honest}");
    assert_eq!(honest["tally"]["failed_cases"], 0, "{}", honest["failures"]);
    assert_eq!(honest["restrictions"].as_array().unwrap().len(), 0, "{}", honest["restrictions"]);
    assert!(honest["tally"]["reached_syscall"].as_u64().unwrap() >= 1500, "{}", honest["tally"]);

    let mutants = r["mutants"].as_array().unwrap();
    assert!(mutants.len() >= 10, "only {} mutants", mutants.len());
    for m in mutants {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["detected"], true, "{name} not detected: {m}");
        assert!(m["error"].is_null(), "{name}: {}", m["error"]);
        let note = m["restriction_note"].as_str().unwrap_or_default();
        assert!(
            note.starts_with(&format!("SELFTEST MUTANT {name}:")),
            "{name}: the executor did not report its filter"
        );
        let failure = &m["first_failure"];
        assert!(!failure["violations"].as_array().unwrap().is_empty(), "{name}: {failure}");
        assert!(m["cases_run"].as_u64().unwrap() <= 2000);
    }

    let profiles = r["model_mutants"].as_array().unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(names, ["linux-6.18-without-unshare-fs-fix", "linux-3.11", "linux-2.6.16"]);
    for p in profiles {
        assert_eq!(p["disagrees"], true, "{p}");
        let rules = p["rules"].as_array().unwrap();
        assert!(!rules.is_empty() && !p["example"]["rules"].as_array().unwrap().is_empty(), "no rule named: {p}");
    }
    let rules_of = |label: &str| -> Vec<String> {
        let p = profiles.iter().find(|p| p["label"] == label).unwrap();
        p["rules"].as_array().unwrap().iter().map(|x| x[0].as_str().unwrap().to_string()).collect()
    };
    for (label, rule) in [
        ("linux-6.18-without-unshare-fs-fix", "NEWNS keeps an unshared fs_struct"),
        ("linux-3.11", "NEWPID => THREAD"),
        ("linux-3.11", "row mm-users"),
        ("linux-2.6.16", "row thread-always-einval"),
        ("linux-2.6.16", "unknown bits ignored"),
    ] {
        assert!(rules_of(label).iter().any(|r| r == rule), "{label}: {rule} never named: {:?}", rules_of(label));
    }

    // The lie no seccomp filter can tell (issue 16 class 4, docs/clone3.md "set_tid"): a
    // clone3 that ignores set_tid, as a model mutant the generated set_tid steps must expose.
    let ablations = r["ablations"].as_array().unwrap();
    let set_tid = ablations.iter().find(|o| o["label"] == "row set-tid-ignored").expect("row set-tid-ignored");
    assert_eq!(set_tid["disagrees"], true, "{set_tid}");
    assert!(set_tid["example"]["invariants"].as_array().is_some_and(|v| !v.is_empty()), "{set_tid}");
}

#[test]
fn a_single_mutant_can_be_chosen_and_the_human_report_has_both_tables() {
    // Seed 3, 2000 cases: nine of them tell the profile without the unshare_fs fix apart from
    // this kernel (with the step mix of 2026-12-03 evening; 600 cases of seed 6 had only one,
    // and under load none).
    let out =
        common::run(&["selftest", "--cases-per-mutant", "2000", "--seed", "3", "--mutant", "thread-always-einval"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("thread-always-einval"), "{text}");
    assert!(!text.contains("newpid-noop"), "only the chosen mutant runs:\n{text}");
    for heading in ["Lying kernels", "Model mutants", "Model rule ablation", "result: PASS"] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
}

#[test]
fn an_undetected_mutant_fails_the_selftest() {
    // 1 case cannot show a FILES-only lie: the verdict must say so and exit 1, never pass.
    let (code, r, text) = selftest_json(&["--cases-per-mutant", "1", "--seed", "5", "--mutant", "files-noop"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(r["verdict"]["passed"], false);
    let problems = r["verdict"]["problems"].to_string();
    assert!(problems.contains("files-noop was not detected in 1 cases"), "{problems}");
}

#[test]
fn bad_usage_exits_2_and_names_the_problem() {
    let out = common::run(&["selftest", "--mutant", "no-such-mutant"]);
    assert_eq!(out.status.code(), Some(2));
    let text = common::text(&out);
    assert!(text.contains("unknown selftest mutant \"no-such-mutant\"") && text.contains("files-noop"), "{text}");
    let out = common::run(&["selftest", "--cases-per-mutant", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    let out = common::run(&["selftest", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
}

#[test]
fn list_shows_every_mutant_with_its_filter_rules() {
    let out = common::run(&["selftest", "--list"]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    for name in ["unknown-bits-succeed", "files-noop", "newuser-eperm", "newtime-enosys"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("rule: if exactly") || text.contains("rule: if all of FILES, none of"), "{text}");
}

/// `inside-sethostname-noop` (every sethostname returns 0 and changes nothing) is caught by the
/// inside witness's own hostname check on a NEWUTS case, where the hostnames are apart in any
/// case and only the read-back tells the lie (the stream of `selftest` meets it first through
/// the UTS marker of `namespaces-by-behaviour`); the honest kernel holds the same case.
#[test]
fn the_witness_catches_a_sethostname_that_changes_nothing() {
    use std::time::Duration;
    use unshare_fuzz::case::Case;
    use unshare_fuzz::command::pipeline::{RunConfig, execute_case};
    use unshare_fuzz::exec::Executor;
    use unshare_fuzz::model::profile::LINUX_6_18;

    let case: Case =
        serde_json::from_str(r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"NEWUTS"}]}"#).unwrap();
    let mut violated = Vec::new();
    for args in [vec![], vec!["--mutant".to_string(), "inside-sethostname-noop".to_string()]] {
        let config = RunConfig::one_at_a_time(&LINUX_6_18, Duration::from_secs(5), args.clone());
        let mut executor = Executor::spawn(common::binary(), &args).unwrap();
        let verdict = execute_case(&mut executor, &config, &case).unwrap().verdict;
        if let Some(why) = verdict.case_skipped.as_ref().or(verdict.broken.as_ref()) {
            panic!("the witness case did not run ({args:?}): {why}");
        }
        violated.push(verdict.violations.iter().map(|v| v.invariant).collect::<Vec<_>>());
    }
    assert_eq!(violated[0], Vec::<&str>::new(), "the honest kernel");
    assert!(violated[1].contains(&"inside-changes-stay-inside"), "the lying kernel: {:?}", violated[1]);
}

/// `inside-propagation-noop` (a mount with MS_SHARED returns 0 and changes nothing) leaves the
/// setup's tmpfs private: after NEWNS the witness does not see the caller's mount nor the
/// caller the witness's, where the model has peer copies of a shared mount. The honest kernel
/// holds the same case.
#[test]
fn the_witness_catches_propagation_flags_that_change_nothing() {
    use std::time::Duration;
    use unshare_fuzz::case::Case;
    use unshare_fuzz::command::pipeline::{RunConfig, execute_case};
    use unshare_fuzz::exec::Executor;
    use unshare_fuzz::model::profile::LINUX_6_18;

    let case: Case =
        serde_json::from_str(r#"{"setup":{"inside_witness":true,"shared_mount":true},"steps":[{"unshare":"NEWNS"}]}"#)
            .unwrap();
    let mut found = Vec::new();
    for args in [vec![], vec!["--mutant".to_string(), "inside-propagation-noop".to_string()]] {
        let config = RunConfig::one_at_a_time(&LINUX_6_18, Duration::from_secs(5), args.clone());
        let mut executor = Executor::spawn(common::binary(), &args).unwrap();
        let verdict = execute_case(&mut executor, &config, &case).unwrap().verdict;
        if let Some(why) = verdict.case_skipped.as_ref().or(verdict.broken.as_ref()) {
            panic!("the shared tmpfs case did not run ({args:?}): {why}");
        }
        found.push(verdict.violations.iter().map(|v| format!("{}: {}", v.invariant, v.detail)).collect::<Vec<_>>());
    }
    assert_eq!(found[0], Vec::<String>::new(), "the honest kernel");
    assert!(
        found[1].iter().any(|v| v.starts_with("inside-changes-stay-inside") && v.contains("shared tmpfs")),
        "the lying kernel: {:?}",
        found[1]
    );
}
