//! The corpus against the model alone: every file loads, and every file's
//! `expected` equals what the model predicts on the spec's reference machine
//! (Linux 6.18 as root, or the kernel profile the file names). No executor and no fork, so this runs anywhere,
//! including where unshare is filtered. Also checks that the seed corpus keeps
//! covering the spec rows it was written for.

use std::collections::BTreeSet;

use unshare_fuzz::abi::errno::{CallResult, Errno};
use unshare_fuzz::case::Setup;
use unshare_fuzz::corpus::shrink::unshare_word;
use unshare_fuzz::corpus::{CorpusFile, DirStore, Store};
use unshare_fuzz::model::{Prediction, predict, profile::LINUX_6_18};

const CORPUS: &str = "corpus";

fn corpus() -> Vec<(String, CorpusFile)> {
    let loaded = DirStore::new(CORPUS).load_all().expect("list corpus/");
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for l in loaded {
        match l.file {
            Ok(f) => good.push((l.name, f)),
            Err(e) => bad.push(e.to_string()),
        }
    }
    assert!(bad.is_empty(), "invalid corpus files:\n{}", bad.join("\n"));
    good
}

/// Where the model disagrees with the file's `expected`, one line per step.
fn mismatches(file: &CorpusFile) -> Vec<String> {
    let Some(expected) = &file.expected else {
        return vec!["no `expected`".into()];
    };
    // A file may pin another kernel's behaviour (`"profile"`, e.g. corpus/pre-fix).
    let profile = match &file.profile {
        Some(name) => unshare_fuzz::model::profile::resolve(name, "").expect("validated at load").0,
        None => &LINUX_6_18,
    };
    // A guest-only file (corpus/guest-only) is checked on the reference machine as a guest.
    let steps = match predict(profile, &unshare_fuzz::model::guest::reference_for(&file.case), &file.case) {
        Prediction::Steps { steps, .. } => steps,
        Prediction::Skip { reason } => return vec![format!("the model skips it: {reason}")],
    };
    let mut out = Vec::new();
    for (i, (e, m)) in expected.iter().zip(&steps).enumerate() {
        let rule_ok = e.rule.as_deref().is_none_or(|r| r == m.rule);
        if e.result != m.result || !rule_ok {
            out.push(format!(
                "step {i}: file expects {} (rule {}), the model predicts {} (rule {})",
                e.result,
                e.rule.as_deref().unwrap_or("-"),
                m.result,
                m.rule
            ));
        }
    }
    if expected.len() != steps.len() {
        out.push(format!("{} expectations for {} predicted steps", expected.len(), steps.len()));
    }
    out
}

#[test]
fn every_expected_matches_the_model() {
    let mut failing = Vec::new();
    for (name, file) in corpus() {
        let m = mismatches(&file);
        if !m.is_empty() {
            failing.push(format!("{name}: {}", m.join("; ")));
        }
    }
    assert!(failing.is_empty(), "model drift in {} corpus files:\n{}", failing.len(), failing.join("\n"));
}

#[test]
fn the_model_check_can_fail() {
    let (name, mut file) = corpus().into_iter().next().expect("a corpus file");
    let e = &mut file.expected.as_mut().expect("expected")[0];
    e.result = if e.result.is_success() { CallResult::Failure(Errno::EPERM) } else { CallResult::Success };
    assert!(!mismatches(&file).is_empty(), "{name}: a flipped expectation must be caught");
    file.expected.as_mut().expect("expected")[0].rule = Some("no-such-rule".into());
    assert!(!mismatches(&file).is_empty());
}

#[test]
fn corpus_files_are_canonical_and_documented() {
    let mut problems = Vec::new();
    for (name, file) in corpus() {
        let text = std::fs::read_to_string(&name).expect("read");
        if file.to_text().expect("serialise") != text {
            problems.push(format!("{name}: not in canonical form (pretty JSON, 2-space indent, fields in the order format, title, comments, origin, seed, case, expected); `unshare-fuzz minimize` and `--save-failures` write it"));
        }
        if file.expected.is_none() {
            problems.push(format!("{name}: no `expected`"));
        }
        if !file.comments.iter().any(|c| c.contains('§')) {
            problems.push(format!("{name}: no comment names a spec rule (§...)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_seed_corpus_covers_the_spec_rows() {
    let all = corpus();
    assert!(all.len() >= 60, "only {} corpus files", all.len());
    let areas: BTreeSet<&str> = all.iter().filter_map(|(n, _)| n.strip_prefix("corpus/")?.split('/').next()).collect();
    for area in [
        "single-bits",
        "privilege",
        "precedence",
        "atomicity",
        "article-2006",
        "sharing",
        "chroot",
        "nesting",
        "limits",
        "sequences",
    ] {
        assert!(areas.contains(area), "no corpus/{area}/");
    }
    // spec §5.1: every single bit 0..=33 and 63, alone, from the default setup.
    let singles: BTreeSet<u32> = all
        .iter()
        .filter(|(_, f)| f.case.setup == Setup::default() && f.case.steps.len() == 1)
        .filter_map(|(_, f)| unshare_word(&f.case.steps[0]))
        .filter(|w| w.count_ones() == 1)
        .map(u64::trailing_zeros)
        .collect();
    let want: BTreeSet<u32> = (0..=33).chain([63]).collect();
    let missing: Vec<u32> = want.difference(&singles).copied().collect();
    assert!(missing.is_empty(), "single-bit cases missing for bits {missing:?}");
    let words: BTreeSet<u64> = all.iter().flat_map(|(_, f)| f.case.steps.iter().filter_map(unshare_word)).collect();
    for w in [u64::MAX, 0xffff_ffff, 0xffff_ffff_0000_0000, 0, 0x7E07_0F80] {
        assert!(words.contains(&w), "no case with the word {w:#x}");
    }
}
