//! `cargo test` replays the whole corpus through the built binary (the
//! executor is a separate process; no test thread forks), reporting each
//! failing file by name. The replay must also be able to fail: each test-only
//! fault makes the files that pin its rule fail. And it must make sense
//! unprivileged: run as uid 65534 (when root), cases that need root are
//! skipped with a reason, never passed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `replay` with `extra` arguments and a JSON report: (exit code, report, text).
fn replay(tag: &str, extra: &[&str]) -> (i32, Value, String) {
    let dir = common::temp_dir(tag);
    let path = dir.join("report.json");
    let mut args = vec!["replay", "--json", path.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = common::run(&args);
    let text = common::text(&out);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no report ({e}):\n{text}"));
    (out.status.code().unwrap_or(-1), serde_json::from_str(&json).expect("JSON report"), text)
}

fn files_with(report: &Value, status: &str) -> Vec<String> {
    report["corpus_files"]
        .as_array()
        .expect("corpus_files")
        .iter()
        .filter(|f| f["status"] == status)
        .map(|f| {
            let details: Vec<&str> = f["details"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            format!("{}: {}", f["file"].as_str().unwrap_or("?"), details.join(" | "))
        })
        .collect()
}

fn names_with(report: &Value, status: &str) -> Vec<String> {
    files_with(report, status).into_iter().map(|l| l.split(": ").next().unwrap_or("").to_string()).collect()
}

#[test]
fn the_whole_corpus_replays_clean() {
    let (code, report, text) = replay("corpus", &["corpus"]);
    let mut bad = files_with(&report, "FAIL");
    bad.extend(files_with(&report, "BROKEN"));
    assert!(bad.is_empty(), "{} corpus files do not pass:\n{}\n\n{text}", bad.len(), bad.join("\n"));
    assert_eq!(code, 0, "{text}");
    let files = report["corpus_files"].as_array().expect("files").len();
    assert!(files >= 60, "{files} files");
    let pass = names_with(&report, "PASS").len() as u64;
    let expected = &report["tally"]["invariants"]["expected-matches-corpus"];
    assert_eq!(expected["violated"], 0);
    let skipped: u64 = expected["skipped"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(
        expected["held"].as_u64().unwrap_or(0) + skipped,
        pass,
        "every passing file has `expected`, checked or skipped with a reason: {expected}"
    );
    // Guest-only files (docs/guest-only.md) are skipped on a host with their reason, never passed.
    let guest_only: Vec<String> =
        names_with(&report, "SKIP").into_iter().filter(|n| n.contains("guest-only/")).collect();
    let on_disk = walk_json(Path::new("corpus/guest-only"));
    assert_eq!(guest_only.len(), on_disk, "every guest-only file is a SKIP on a host:\n{text}");
    for line in files_with(&report, "SKIP").iter().filter(|l| l.contains("guest-only/")) {
        assert!(line.contains("skipped: guest-only: "), "the skip names its reason: {line}");
    }
    if common::is_root() {
        let other: Vec<String> =
            names_with(&report, "SKIP").into_iter().filter(|n| !n.contains("guest-only/")).collect();
        assert_eq!(other, Vec::<String>::new(), "as root every setup can be built but the guest-only ones");
        // Files that pin another kernel's behaviour (`"profile"`, corpus/pre-fix) are the only skips.
        let elsewhere: u64 = expected["skipped"].as_object().map_or(0, |m| {
            m.iter()
                .filter(|(why, _)| why.starts_with("the file pins the behaviour of"))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        });
        assert_eq!(skipped, elsewhere, "as root this is the reference machine: {expected}");
    }
    assert!(text.contains(&format!("files: {files}  PASS {pass}")), "{text}");
}

#[test]
fn each_injected_fault_makes_the_files_pinning_its_rule_fail() {
    let cases = [
        ("unknown-bits-succeed", "corpus/single-bits/bit-32-clear-sighand.json", "corpus/single-bits/zero.json"),
        ("eperm-as-einval", "corpus/privilege/nobody-namespaces-eperm.json", "corpus/single-bits/bit-63.json"),
        (
            "failure-leaks-uts",
            "corpus/atomicity/failed-newpid-newuts-keeps-uts.json",
            "corpus/single-bits/bit-26-newuts.json",
        ),
    ];
    for (fault, fails, passes) in cases {
        let (code, report, text) = replay(fault, &["corpus", "--inject-fault", fault]);
        assert_eq!(code, 1, "{fault}: {text}");
        assert!(text.contains("TEST-ONLY FAULT INJECTION ACTIVE"), "{text}");
        let failed = names_with(&report, "FAIL");
        assert!(failed.iter().any(|f| f == fails), "{fault}: {fails} should fail; failed: {failed:?}");
        assert!(!failed.iter().any(|f| f == passes), "{fault}: {passes} should pass");
        assert!(names_with(&report, "BROKEN").is_empty(), "{fault}: {text}");
    }
}

#[test]
fn an_unprivileged_replay_skips_root_only_cases_and_fails_nothing() {
    let dir = common::temp_dir("corpus-unpriv");
    let corpus = dir.join("corpus");
    copy_dir(Path::new("corpus"), &corpus);
    let mut cmd = if common::is_root() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let copy = dir.join("unshare-fuzz");
        std::fs::copy(common::binary(), &copy).expect("copy the binary");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut c = Command::new(copy);
        c.uid(65534).gid(65534);
        c
    } else {
        Command::new(common::binary())
    };
    let out = cmd.args(["replay", "corpus"]).current_dir(&dir).output().expect("run replay");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("with its own user namespace"), "{text}");
    assert!(!text.contains("\nFAIL ") && !text.contains("\nBROKEN "), "{text}");
    let nobody = "SKIP    corpus/privilege/nobody-step-by-step.json";
    assert!(text.contains(nobody), "nobody cases are skipped, not passed:\n{text}");
    assert!(text.contains("65534 are not mapped"), "the skip names its reason:\n{text}");
}

/// JSON files under `dir`, recursively.
fn walk_json(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("read_dir").filter_map(Result::ok).map(|e| e.path()).fold(0, |n, p| {
        if p.is_dir() { n + walk_json(&p) } else { n + usize::from(p.extension().is_some_and(|x| x == "json")) }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// `--jobs 3` spreads the files over three executors, yet reports every file once, in file
/// order, with the same verdicts as one executor (a broken file among them included).
#[test]
fn parallel_replay_keeps_file_order_and_verdicts() {
    let dir = common::temp_dir("replay-jobs-input");
    copy_dir(Path::new("corpus/atomicity"), &dir);
    std::fs::write(dir.join("zz-not-json.json"), "{ this is not a corpus file").expect("write bad file");
    let path = dir.to_str().expect("utf-8 path");
    let (code1, one, _) = replay("replay-jobs-1", &[path]);
    let (code3, three, text) = replay("replay-jobs-3", &[path, "--jobs", "3"]);
    assert_eq!(three["jobs"], 3, "{text}");
    assert_eq!(code1, code3, "{text}");
    let verdicts = |r: &Value| -> Vec<(String, String)> {
        r["corpus_files"]
            .as_array()
            .expect("corpus_files")
            .iter()
            .map(|f| (f["file"].as_str().unwrap_or("?").to_string(), f["status"].as_str().unwrap_or("?").to_string()))
            .collect()
    };
    let (v1, v3) = (verdicts(&one), verdicts(&three));
    assert_eq!(v1, v3, "{text}");
    assert!(v3.len() >= 4, "{v3:?}");
    assert!(v3.windows(2).all(|w| w[0].0 <= w[1].0), "not in file order: {v3:?}");
    assert_eq!(v3.last().map(|v| v.1.as_str()), Some("BROKEN"), "{v3:?}");
    assert_eq!(three["executor_stats"].as_array().map(Vec::len), Some(3), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
