//! The done-when scenario of the corpus: with the test-only fault hook, `run
//! --save-failures DIR` writes minimized corpus files; `replay` of such a file
//! with the same hook reports FAIL, and without the hook it PASSes (the
//! violation was fake: the real kernel returns EINVAL, as the file's
//! `expected` says). `minimize` does the same for a failing corpus file.

mod common;

use std::path::{Path, PathBuf};

use unshare_fuzz::case::{Case, Privilege, Setup};
use unshare_fuzz::corpus::shrink::unshare_word;
use unshare_fuzz::corpus::store::load_file;
use unshare_fuzz::corpus::{CorpusFile, Origin};

const FAULT: &str = "unknown-bits-succeed";

fn saved_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.map(|e| e.expect("entry").path()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// A minimal case for the unknown-bits fault: root, no threads, one step, one unknown bit.
fn assert_minimal(file: &CorpusFile, what: &str) {
    assert_eq!(file.case.setup, Setup::default(), "{what}");
    assert_eq!(file.case.steps.len(), 1, "{what}");
    let word = unshare_word(&file.case.steps[0]).expect("an unshare step");
    assert_eq!(word.count_ones(), 1, "{what}: {word:#x}");
    assert_ne!(word & !0x7E07_0F80, 0, "{what}: the bit must be unknown to unshare");
    let expected = file.expected.as_ref().expect("expected");
    assert_eq!(expected[0].result.to_string(), "EINVAL", "{what}");
    assert_eq!(expected[0].rule.as_deref(), Some("unknown-bit"), "{what}");
}

fn replay_one(path: &Path, fault: bool) -> (i32, String) {
    let p = path.to_str().expect("utf-8 path");
    let mut args = vec!["replay", p];
    if fault {
        args.extend(["--inject-fault", FAULT]);
    }
    let out = common::run(&args);
    (out.status.code().unwrap_or(-1), common::text(&out))
}

#[test]
fn save_failures_writes_minimized_files_that_replay_as_failing_with_the_hook() {
    let tmp = common::temp_dir("save-failures");
    let dir = tmp.join("found");
    let d = dir.to_str().expect("utf-8 path");
    let out = common::run(&[
        "run",
        "--cases",
        "200",
        "--seed",
        "7",
        "--inject-fault",
        FAULT,
        "--save-failures",
        d,
        "--save-limit",
        "4",
    ]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "the fake violations are violations:\n{text}");
    assert!(text.starts_with("seed: 7"), "the seed is printed first:\n{text}");
    assert!(text.contains("saved "), "{text}");
    let files = saved_files(&dir);
    assert!(!files.is_empty() && files.len() <= 4, "{files:?}\n{text}");
    for path in &files {
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.starts_with("unknown-bits-einval-") && name.ends_with(".json"), "{name}");
        let file = load_file(path).unwrap_or_else(|e| panic!("{e}"));
        assert_minimal(&file, &name);
        assert_eq!(file.origin, Some(Origin::SaveFailures));
        assert_eq!(file.seed, Some(7));
        let comments = file.comments.join("\n");
        assert!(comments.contains("unshare-fuzz run --seed 7"), "{comments}");
        assert!(comments.contains("Violated invariant unknown-bits-einval"), "{comments}");
        assert!(comments.contains(FAULT), "the file says it was written under a fault: {comments}");

        let (code, text) = replay_one(path, true);
        assert_eq!(code, 1, "{name} with the hook:\n{text}");
        assert!(text.contains("FAIL    "), "{text}");
        assert!(text.contains("[expected-matches-corpus] case: step 0: expected EINVAL (rule unknown-bit); kernel drifted: returned success"), "{text}");
        let (code, text) = replay_one(path, false);
        assert_eq!(code, 0, "{name} without the hook: the real kernel says EINVAL:\n{text}");
        assert!(text.contains("PASS    "), "{text}");
    }
}

#[test]
fn save_failures_without_failures_writes_nothing() {
    let tmp = common::temp_dir("save-nothing");
    let dir = tmp.join("found");
    let out = common::run(&["run", "--cases", "50", "--seed", "3", "--save-failures", dir.to_str().expect("utf-8")]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("no failing case to save"), "{text}");
    assert!(saved_files(&dir).is_empty());
}

fn write_case(dir: &Path, name: &str, case: Case, expected: &str) -> PathBuf {
    let file = CorpusFile {
        format: 1,
        title: "a big case with an unknown bit in its third step".into(),
        comments: vec!["spec §5.1: bits 32..63 -> EINVAL".into()],
        origin: Some(Origin::Manual),
        seed: None,
        profile: None,
        case,
        expected: Some(serde_json::from_str(expected).expect("expected")),
    };
    let path = dir.join(name);
    std::fs::write(&path, file.to_text().expect("text")).expect("write");
    path
}

fn big_case() -> Case {
    let mut case = Case::unshare(&[0x400 | 0x200, 0x0400_0000, 0x4000_0000 | (1 << 40) | (1 << 3), 0]);
    case.setup.privilege = Privilege::Nobody;
    case.setup.threads = 2;
    case
}

const BIG_EXPECTED: &str = r#"[{"result": "success"}, {"result": "EPERM"}, {"result": "EINVAL", "rule": "unknown-bit"}, {"result": "success"}]"#;

#[test]
fn minimize_shrinks_a_failing_corpus_file() {
    let dir = common::temp_dir("minimize");
    let path = write_case(&dir, "big.json", big_case(), BIG_EXPECTED);
    let (code, text) = replay_one(&path, false);
    assert_eq!(code, 0, "without the hook the big case passes:\n{text}");
    let out_path = dir.join("small.json");
    let out = common::run(&[
        "minimize",
        path.to_str().expect("utf-8"),
        "-o",
        out_path.to_str().expect("utf-8"),
        "--inject-fault",
        FAULT,
    ]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("still violates unknown-bits-einval"), "{text}");
    let small = load_file(&out_path).unwrap_or_else(|e| panic!("{e}"));
    assert_minimal(&small, "minimized");
    assert_eq!(small.origin, Some(Origin::Minimize));
    assert!(small.comments.iter().any(|c| c.contains("(original) spec §5.1")), "{:?}", small.comments);
    let (code, text) = replay_one(&out_path, true);
    assert_eq!(code, 1, "{text}");
    let (code, text) = replay_one(&out_path, false);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn minimize_refuses_what_it_cannot_shrink() {
    let dir = common::temp_dir("minimize-refuse");
    let path = write_case(&dir, "big.json", big_case(), BIG_EXPECTED);
    let out = common::run(&["minimize", path.to_str().expect("utf-8")]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("passes on this kernel: nothing to minimize"), "{text}");
    // Only the file's expectation is wrong: nothing a shrink could keep.
    let wrong = r#"[{"result": "success"}, {"result": "success"}, {"result": "EINVAL"}, {"result": "success"}]"#;
    let path = write_case(&dir, "wrong.json", big_case(), wrong);
    let out = common::run(&["minimize", path.to_str().expect("utf-8")]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("only expected-matches-corpus fails"), "{text}");
    assert!(!dir.join("wrong.min.json").exists() && !dir.join("big.min.json").exists());
    let out = common::run(&["minimize", "tests/data/bad-corpus/nine-threads.json"]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("nine-threads.json:5:36"), "{text}");
}
