//! Broken corpus files (tests/data/bad-corpus/) through the built binary: each is
//! reported BROKEN with its name, position and what was expected; the good
//! file given next to them is still replayed; the exit status is 2; no panic.

mod common;

use std::path::Path;

/// (file, position, part of the message saying what was expected)
const BAD: &[(&str, Option<&str>, &str)] = &[
    ("bad-format-version.json", Some("2:3"), "unsupported corpus format 2 (expected \"format\": 1"),
    ("empty.json", Some("1:1"), "JSON syntax error: EOF while parsing a value"),
    (
        "expected-wrong-step-count.json",
        Some("7:3"),
        "`expected` has 3 entries but the case has 2 steps (expected one entry per step)",
    ),
    ("missing-format.json", Some("1:1"), "missing field `format` (expected \"format\": 1"),
    (
        "nine-threads.json",
        Some("5:36"),
        "case.setup.threads: impossible case: setup asks for 9 extra threads; at most 2 are supported",
    ),
    ("not-an-object.json", Some("1:1"), "expected a JSON object with the fields format, title"),
    ("not-utf8.json", None, "cannot read the file: stream did not contain valid UTF-8"),
    ("rule-contradicts-result.json", Some("7:3"), "rule \"unknown-bit\" gives EINVAL, but `result` says EPERM"),
    ("syntax-error.json", Some("4:3"), "JSON syntax error: expected `,` or `}`"),
    ("two-line-title.json", Some("3:3"), "`title` must be one non-empty line"),
    ("unknown-errno.json", Some("7:34"), "bad result \"EWHAT\" (expected \"success\" or an errno name"),
    ("unknown-field.json", Some("5:57"), "unknown field `colour`, expected one of `privilege`, `threads`"),
    ("unknown-flag-name.json", Some("5:40"), "unknown flag name \"NEWFOO\" (expected names such as NEWNS"),
    ("unknown-privilege.json", Some("5:34"), "unknown variant `admin`, expected one of `root`"),
    (
        "unknown-rule.json",
        Some("7:3"),
        "unknown rule \"csignal-bit\" (expected \"success\" or one of: success, unknown-bit",
    ),
    (
        "userns-too-deep.json",
        Some("5:50"),
        "case.setup.userns_depth: impossible case: setup field userns_depth is 40; at most 33",
    ),
    ("zero-steps.json", Some("6:5"), "case.steps: impossible case: a case needs 1 to 4 steps, this one has 0"),
];

const DIR: &str = "tests/data/bad-corpus";
const GOOD: &str = "corpus/single-bits/bit-32-clear-sighand.json";

#[test]
fn every_bad_file_is_listed_in_the_table() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(DIR).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let listed: Vec<&str> = BAD.iter().map(|b| b.0).collect();
    assert_eq!(on_disk, listed, "add new files in {DIR} to BAD");
}

#[test]
fn replay_reports_each_bad_file_and_still_replays_the_good_one() {
    let dir = common::temp_dir("bad-corpus");
    let json = dir.join("report.json");
    let out = common::run(&["replay", DIR, GOOD, "--json", json.to_str().expect("utf-8 path")]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "bad files must give exit 2:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
    for (file, pos, what) in BAD {
        let path = Path::new(DIR).join(file).display().to_string();
        let located = match pos {
            Some(p) => format!("{path}:{p}: "),
            None => format!("{path}: "),
        };
        assert!(text.contains(&format!("BROKEN  {path}\n")), "{file} not reported BROKEN:\n{text}");
        let line = text
            .lines()
            .find(|l| l.contains(&located))
            .unwrap_or_else(|| panic!("{file}: no error naming {located:?}:\n{text}"));
        assert!(line.contains(what), "{file}: expected {what:?} in\n{line}");
    }
    assert!(text.contains(&format!("PASS    {GOOD}")), "the good file must still run:\n{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).expect("JSON");
    let files = report["corpus_files"].as_array().expect("corpus_files");
    assert_eq!(files.len(), BAD.len() + 1);
    let broken = files.iter().filter(|f| f["status"] == "BROKEN").count();
    assert_eq!(broken, BAD.len());
    assert_eq!(
        report["tally"]["broken"]
            .as_object()
            .expect("broken map")
            .values()
            .map(|v| v.as_u64().unwrap_or(0))
            .sum::<u64>(),
        BAD.len() as u64
    );
    assert!(
        text.contains(&format!("files: {}  PASS 1  FAIL 0  SKIP 0  BROKEN {}", BAD.len() + 1, BAD.len())),
        "{text}"
    );
}

#[test]
fn missing_paths_and_empty_directories_are_errors_not_passes() {
    let out = common::run(&["replay", "tests/data/no-such-dir.json", GOOD]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no-such-dir.json: cannot read the file"), "{text}");
    assert!(text.contains(&format!("PASS    {GOOD}")), "{text}");
    let empty = common::temp_dir("empty-corpus");
    let out = common::run(&["replay", empty.to_str().expect("utf-8 path")]);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no corpus files (*.json) found"), "{text}");
}
