//! Seeding the fuzz corpora from `corpus/` (`unshare-fuzz seeds`) and turning a
//! fuzz input back into a corpus file (`decode --save`) that `replay` accepts.

mod common;

use std::path::Path;

use unshare_fuzz::command::fuzzing::case_from_bytes;
use unshare_fuzz::corpus::{Origin, parse};

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").path()).collect();
    v.sort();
    v
}

#[test]
fn seeds_stand_for_exactly_the_corpus_cases() {
    let dir = common::temp_dir("seeds");
    let exec = dir.join("exec");
    let out = common::run(&["seeds", "corpus", exec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let mut corpus: Vec<_> = Vec::new();
    // Files may pin the same case (under another profile, or as a gVisor difference): one seed each.
    for case in unshare_fuzz::corpus::store::load_paths(&["corpus".into()])
        .into_iter()
        .map(|l| l.file.expect("the seed corpus is valid").case)
    {
        if !corpus.contains(&case) {
            corpus.push(case);
        }
    }
    let seeds: Vec<_> =
        files_in(&exec).iter().map(|p| case_from_bytes(&std::fs::read(p).unwrap()).expect("a seed decodes")).collect();
    assert_eq!(seeds.len(), corpus.len(), "one seed per distinct case");
    for case in &corpus {
        assert!(seeds.contains(case), "no seed for {case}");
    }
    // Idempotent: a second run writes nothing new.
    let again = common::run(&["seeds", "corpus", exec.to_str().unwrap()]);
    assert!(common::text(&again).contains("(0 new)"), "{}", common::text(&again));
    // The exec target runs the seeds (they are readable cases, taken verbatim).
    let mut args = vec!["__target".to_string(), "exec".into()];
    args.extend(files_in(&exec).iter().take(40).map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::run(&refs);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));

    // corpus_format gets the files themselves, bad ones included.
    let cf = dir.join("corpus_format");
    let out = common::run(&["seeds", "corpus/single-bits", "tests/data/bad-corpus", cf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let bad = std::fs::read("tests/data/bad-corpus/not-utf8.json").unwrap();
    assert!(files_in(&cf).iter().any(|p| std::fs::read(p).unwrap() == bad), "the raw bytes are kept");

    // An invalid file is named and makes the exit status 2; the others are still seeded.
    let model = dir.join("model");
    let out =
        common::run(&["seeds", "corpus/single-bits", "tests/data/bad-corpus/zero-steps.json", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(common::text(&out).contains("skipped tests/data/bad-corpus/zero-steps.json"), "{}", common::text(&out));
    assert!(!files_in(&model).is_empty());
    let out = common::run(&["seeds", "corpus", dir.join("elsewhere").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("--target"), "{}", common::text(&out));
}

#[test]
fn decode_save_writes_a_corpus_file_that_replay_accepts() {
    let dir = common::temp_dir("decode-save");
    // An arbitrary (binary) input and a readable one.
    let binary = dir.join("crash-0123abcd");
    std::fs::write(&binary, [7u8, 200, 1, 9, 33, 250, 3, 0, 0, 12, 77, 5]).unwrap();
    let readable = dir.join("crash-readable");
    std::fs::write(&readable, br#"{"setup":{"threads":1},"steps":[{"unshare":"NEWNS|THREAD"},"fork"]}"#).unwrap();
    let saved = dir.join("candidates");
    let out = common::run(&[
        "decode",
        "--save",
        saved.to_str().unwrap(),
        binary.to_str().unwrap(),
        readable.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    for (input, how) in [(&binary, "arbitrary"), (&readable, "readable JSON case")] {
        let path = saved.join(format!("{}.json", input.file_name().unwrap().to_string_lossy()));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = parse(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert_eq!(file.origin, Some(Origin::Fuzz));
        assert_eq!(Some(&file.case), case_from_bytes(&std::fs::read(input).unwrap()).as_ref());
        assert!(file.title.starts_with("fuzz finding: "), "{}", file.title);
        let comments = file.comments.join("\n");
        assert!(comments.contains(&input.display().to_string()) && comments.contains(how), "{comments}");
        assert_eq!(file.expected.as_ref().map(Vec::len), Some(file.case.steps.len()));
        let out = common::run(&["replay", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "replay must accept and pass it:\n{}", common::text(&out));
        assert!(common::text(&out).contains("PASS "), "{}", common::text(&out));
    }
    let readable_case = std::fs::read_to_string(saved.join("crash-readable.json")).unwrap();
    assert!(readable_case.contains("\"THREAD|NEWNS\""), "taken verbatim: {readable_case}");
}
