//! The `run` and `env` commands end to end, on the real kernel, through the built binary.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use serde_json::Value;

const INVARIANTS: &[&str] = &[
    "case-completes",
    "errno-matches-model",
    "failure-changes-nothing",
    "newpid-affects-children-only",
    "newtime-affects-children-only",
    "newuser-credentials",
    "noop-flags-change-nothing",
    "success-changes-exactly-predicted",
    "unknown-bits-einval",
];

/// Runs `run` with a JSON report and returns (exit code, report, text output).
pub fn run_json(tag: &str, extra: &[&str]) -> (i32, Value, String) {
    let dir = common::temp_dir(tag);
    let path = dir.join("report.json");
    let mut args = vec!["run", "--json", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = common::run(&args);
    let text = common::text(&out);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no report ({e}):\n{text}")))
            .expect("report is JSON");
    (out.status.code().unwrap_or(-1), report, text)
}

#[test]
fn run_holds_every_invariant_and_checks_each_many_times() {
    let (code, report, text) = run_json("run", &["--cases", "600", "--seed", "11"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("seed: 11"), "the seed is printed first:\n{text}");
    assert!(text.contains("kernel:"), "the environment is printed:\n{text}");
    let tally = &report["tally"];
    assert_eq!(tally["cases"], 600);
    assert!(tally["reached_syscall"].as_u64().unwrap() >= 400, "{tally}");
    for id in INVARIANTS {
        let t = &tally["invariants"][id];
        assert_eq!(t["violated"], 0, "{id}: {t}");
        assert!(t["checked"].as_u64().unwrap() >= 20, "{id} checked too rarely: {t}");
    }
    assert!(report["cases_per_second"].as_f64().unwrap() > 0.0);
    assert!(!report["environment"]["kernel_release"].as_str().unwrap().is_empty());
}

#[test]
fn same_seed_same_report_figures() {
    let (_, a, _) = run_json("seed-a", &["--cases", "150", "--seed", "99"]);
    let (_, b, _) = run_json("seed-b", &["--cases", "150", "--seed", "99"]);
    assert_eq!(a["tally"], b["tally"]);
}

#[test]
fn env_prints_the_probed_environment() {
    let out = common::run(&["env", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(env["ns_links"].as_array().unwrap().len() >= 8);
    assert_eq!(env["baseline"]["uid"], 0, "the executor is root in its sandbox");
    assert!(env["sandbox"].as_str().unwrap().contains("NEWPID"));
}

#[test]
fn bad_usage_exits_2_with_a_clear_message() {
    let out = common::run(&["run", "--kernel-profile", "linux-0.01"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("unknown kernel profile"));
    let out = common::run(&["run", "--cases", "many"]);
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(&["run", "--timeout-ms", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sandbox_keeps_the_host_hostname() {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let (code, _, text) = run_json("host", &["--cases", "100", "--seed", "5"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before);
}

/// Runs `run` with TMPDIR set to `tmp` (where the CPU lock files go) and returns its report.
fn run_in_tmp(tmp: &std::path::Path, extra: &[&str]) -> Value {
    let path = tmp.join("report.json");
    let out = std::process::Command::new(common::binary())
        .env("TMPDIR", tmp)
        .args(["run", "--cases", "100", "--seed", "3", "--json", path.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("start unshare-fuzz");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn executors_are_pinned_to_distinct_free_cpus_unless_told_not_to() {
    let allowed = unshare_fuzz::sys::allowed_cpus().unwrap();
    let jobs = allowed.len().min(2);
    let tmp = common::temp_dir("pin");
    let report = run_in_tmp(&tmp, &["--jobs", &jobs.to_string()]);
    // A private lock directory: nothing else holds a CPU, so slot k gets the k-th allowed one.
    let want: Vec<Value> = allowed[..jobs].iter().map(|&c| Value::from(c)).collect();
    assert_eq!(report["pinned_cpus"], Value::from(want), "{}", report["pinned_cpus"]);
    assert_eq!(report["environment"]["pinned_cpu"], Value::from(allowed[0]));
    assert!(tmp.join(format!("unshare-fuzz-cpu{}.lock", allowed[0])).exists());
    let report = run_in_tmp(&tmp, &["--pin", "off"]);
    assert_eq!(report["pinned_cpus"], serde_json::json!([null]));
    // More executors than CPUs: none is pinned.
    let report = run_in_tmp(&tmp, &["--jobs", &(allowed.len() + 1).to_string()]);
    assert!(report["pinned_cpus"].as_array().unwrap().iter().all(Value::is_null), "{}", report["pinned_cpus"]);
}

/// Runs `run` with UNSHARE_FUZZ_NS_OBSERVER set (or not) and returns its report.
fn run_with_observer(tag: &str, observer: Option<&str>) -> Value {
    let tmp = common::temp_dir(tag);
    let path = tmp.join("report.json");
    let mut cmd = std::process::Command::new(common::binary());
    cmd.args(["run", "--cases", "400", "--seed", "12", "--json", path.to_str().unwrap()]);
    match observer {
        Some(v) => cmd.env("UNSHARE_FUZZ_NS_OBSERVER", v),
        None => cmd.env_remove("UNSHARE_FUZZ_NS_OBSERVER"),
    };
    let out = cmd.output().expect("start unshare-fuzz");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn both_namespace_observers_judge_the_same_cases_clean() {
    let links = run_with_observer("observer-links", Some("proc-links"));
    assert_eq!(links["environment"]["ns_observer"], "proc_links");
    let auto = run_with_observer("observer-auto", None);
    // PIDFD_GET_*_NAMESPACE exists from Linux 6.11: there the probe must pick it.
    let release = auto["environment"]["kernel_release"].as_str().unwrap();
    let version = unshare_fuzz::model::profile::parse_release(release).unwrap();
    if version >= (6, 11) {
        assert_eq!(auto["environment"]["ns_observer"], "pidfd_ioctl", "{release}");
    }
    // Same cases, same verdicts: pid_for_children after NEWPID is the one place the two
    // observers read differently, and the model follows the observer.
    assert_eq!(links["tally"], auto["tally"]);
    assert_eq!(auto["tally"]["failed_cases"], 0);
    let newpid = &auto["tally"]["invariants"]["newpid-affects-children-only"];
    assert!(newpid["checked"].as_u64().unwrap() > 0, "{newpid}");
}
