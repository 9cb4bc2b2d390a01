//! The counts README.md and the docs state (invariants, lying kernels, corpus files,
//! environments of the matrix) against the tables they count: the `invariants` command, the
//! mutants `selftest --list` prints, the JSON files under `corpus/`, and the environment
//! tests of `tests/environments.rs`. A count that drifts from its table fails here.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The file's text with every run of white space (line breaks too) made one space.
fn flat(rel: &str) -> String {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every number written right before `phrase` in `text` (both sides of `22/22`), with a few
/// words of context.
fn numbers_before(text: &str, phrase: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(phrase) {
        let before = &text[..at];
        let word = before.rsplit(' ').next().unwrap_or("");
        let start = before.len().saturating_sub(40);
        let context = text[before.floor_char_boundary(start)..text.ceil_char_boundary(at + phrase.len())].to_string();
        for part in word.split('/') {
            if let Ok(n) = part.parse() {
                out.push((n, context.clone()));
            }
        }
    }
    out
}

#[test]
fn numbers_before_reads_what_it_should() {
    let text = "and 19 named invariants; 22/22 mutants detected; over 3 invariants; all 7 mutants";
    let ns = |p| numbers_before(text, p).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(ns(" named invariants"), [19]);
    assert_eq!(ns(" mutants"), [22, 22, 7]);
    assert_eq!(ns(" invariants"), [3], "\"named\" is not a number: no count");
}

fn invariants() -> u64 {
    let out = common::run(&["invariants"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(
        ids.iter().all(|id| id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')),
        "{text}"
    );
    ids.len() as u64
}

fn mutants() -> u64 {
    let out = common::run(&["selftest", "--list"]);
    assert!(out.status.success(), "{}", common::text(&out));
    // One line per mutant starts with its name; its origin and rules are indented below it.
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase())).count()
        as u64
}

fn json_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { json_files(&p) } else { u64::from(p.extension().is_some_and(|e| e == "json")) })
        .sum()
}

/// The environment tests of `tests/environments.rs`: `#[test]` functions that run the harness
/// in an environment and judge its report (`judge` or `judge_reach`).
fn environments() -> u64 {
    let text = std::fs::read_to_string(root().join("tests/environments.rs")).unwrap();
    text.split("#[test]").skip(1).filter(|t| t.split("\n}\n").next().is_some_and(|body| body.contains("judge"))).count()
        as u64
}

/// Where a count is written: (file, the phrase after the number).
type Places = Vec<(&'static str, &'static str)>;

/// (what, the real count, where it is written): the count must be stated at least
/// once, and every number before a phrase in its file must be it.
fn facts() -> Vec<(&'static str, u64, Places)> {
    vec![
        (
            "invariants (`unshare-fuzz invariants`)",
            invariants(),
            vec![("README.md", " named invariants"), ("README.md", " invariants")],
        ),
        (
            "lying kernels (`selftest --list`)",
            mutants(),
            vec![
                ("README.md", " seccomp \"lying kernels\""),
                ("README.md", " lying kernels"),
                ("docs/selftest.md", " mutants"),
                ("docs/environments.md", " mutants"),
            ],
        ),
        (
            "corpus files (corpus/**/*.json)",
            json_files(&root().join("corpus")),
            vec![("README.md", " readable cases"), ("docs/environments.md", " corpus files")],
        ),
        (
            "environments (judged tests in tests/environments.rs)",
            environments(),
            vec![("README.md", " such environments")],
        ),
    ]
}

#[test]
fn readme_and_docs_state_the_real_counts() {
    let mut problems = Vec::new();
    for (what, real, places) in facts() {
        assert!(real > 0, "{what}: the table is empty");
        let mut stated = 0;
        for (file, phrase) in places {
            for (n, context) in numbers_before(&flat(file), phrase) {
                stated += 1;
                if n != real {
                    problems.push(format!("{file}: says {n} in \"…{context}\", but {what} is {real}"));
                }
            }
        }
        if stated == 0 {
            problems.push(format!("{what} ({real}) is stated nowhere the test looks: its phrases changed?"));
        }
    }
    assert!(problems.is_empty(), "counts that drifted from their tables:\n{}", problems.join("\n"));
}
