//! corpus/clone3-vs-unshare: one case per difference between unshare and clone3 in the flag
//! table. Every file names its difference in a comment, every row of `unshare-fuzz flags`
//! where the two calls differ has a file, and every case runs on this kernel exactly as the
//! model predicts (no violation, nothing broken or skipped).

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use unshare_fuzz::case::{Case, Step};
use unshare_fuzz::check::judge;
use unshare_fuzz::command::flags;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::{Prediction, predict, profile::LINUX_6_18};

struct Entry {
    title: String,
    comments: Vec<String>,
    case: Case,
}

fn entries() -> Vec<(PathBuf, Entry)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/clone3-vs-unshare"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            // The regression-corpus format (src/corpus), strictly validated.
            let file = unshare_fuzz::corpus::parse(&text).unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            (p, Entry { title: file.title, comments: file.comments, case: file.case })
        })
        .collect()
}

/// The flag names a comment says it shows a difference for: "difference A, B: ...".
fn named_differences(entry: &Entry) -> Vec<String> {
    entry
        .comments
        .iter()
        .filter_map(|c| c.strip_prefix("difference "))
        .filter_map(|c| c.split_once(':'))
        .flat_map(|(names, _)| {
            names.split(',').map(|n| n.split_whitespace().next().unwrap_or("").to_string()).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_difference_in_the_table_has_a_corpus_case() {
    let entries = entries();
    let named: Vec<String> = entries.iter().flat_map(|(_, e)| named_differences(e)).collect();
    let missing: Vec<&str> = flags::rows()
        .iter()
        .filter(|r| r.differs())
        .map(|r| r.name)
        .filter(|n| !named.iter().any(|x| x == n))
        .collect();
    assert!(missing.is_empty(), "differences without a corpus case: {missing:?}");
    for (path, e) in &entries {
        assert!(!e.title.is_empty() && !e.comments.is_empty(), "{}", path.display());
        assert!(e.case.steps.iter().any(|s| matches!(s, Step::Clone3(_))), "{}: no clone3 step", path.display());
        assert!(e.case.validate().is_ok(), "{}", path.display());
    }
}

#[test]
fn corpus_cases_run_as_the_model_predicts() {
    let mut ex = Executor::spawn(common::binary(), &[]).unwrap();
    let env = ex.environment().clone();
    let mut problems = Vec::new();
    let entries = entries();
    assert!(entries.len() >= 25, "only {} corpus cases", entries.len());
    for (path, e) in &entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let prediction = predict(&LINUX_6_18, &env, &e.case);
        if let Prediction::Skip { reason } = &prediction {
            problems.push(format!("{name}: skipped here: {reason}"));
            continue;
        }
        let outcome = ex.run(&e.case, Duration::from_secs(10)).unwrap();
        let v = judge(&env, &e.case, &prediction, &outcome);
        if !v.violations.is_empty() || v.broken.is_some() || v.held.is_empty() {
            problems.push(format!(
                "{name} ({}): {}\n    violations {:?} broken {:?}",
                e.title,
                e.case,
                v.violations.iter().map(|x| format!("{}: {}", x.invariant, x.detail)).collect::<Vec<_>>(),
                v.broken
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
