//! The corpus format: round trip, stable field order, and every kind of bad
//! input reported with its position and what was expected (never a panic).

use super::*;
use crate::abi::errno::Errno;
use crate::case::{CaseError, Privilege};

fn sample() -> CorpusFile {
    let mut case = Case::unshare(&[0x2_0000 | (1 << 32), 0]);
    case.setup.privilege = Privilege::Nobody;
    CorpusFile {
        format: FORMAT_VERSION,
        title: "NEWNS|bit32 is EINVAL".into(),
        comments: vec!["spec §5.5 row 1".into(), "second line".into()],
        origin: Some(Origin::SaveFailures),
        seed: Some(42),
        profile: None,
        case,
        expected: Some(vec![
            Expectation { result: CallResult::Failure(Errno::EINVAL), rule: Some("unknown-bit".into()) },
            Expectation { result: CallResult::Success, rule: None },
        ]),
    }
}

/// The sample's text with `from` replaced by `to` (which must occur exactly once).
fn edited(from: &str, to: &str) -> String {
    let text = sample().to_text().unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in\n{text}");
    text.replace(from, to)
}

fn bad(text: &str) -> Invalid {
    match parse(text) {
        Ok(f) => panic!("accepted: {f:?}\n{text}"),
        Err(e) => e,
    }
}

/// The error as replay prints it, for a file named `f.json`.
fn message(text: &str) -> String {
    bad(text).in_file("f.json").to_string()
}

#[test]
fn round_trip_and_stable_field_order() {
    let f = sample();
    let text = f.to_text().unwrap();
    assert_eq!(parse(&text).unwrap(), f);
    let order = ["\"format\"", "\"title\"", "\"comments\"", "\"origin\"", "\"seed\"", "\"case\"", "\"expected\""];
    let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("\"unshare\": \"NEWNS|0x100000000\""), "{text}");
    assert!(text.contains("\"origin\": \"run --save-failures\""), "{text}");
    assert!(text.ends_with("}\n"));
}

#[test]
fn optional_fields_may_be_left_out() {
    let text = r#"{"format": 1, "title": "t", "case": {"steps": [{"unshare": "0"}]}}"#;
    let f = parse(text).unwrap();
    assert!(f.comments.is_empty() && f.origin.is_none() && f.seed.is_none());
    assert!(f.expected.is_none());
    assert_eq!(f.case, Case::unshare(&[0]));
}

#[test]
fn syntax_errors_name_line_and_column() {
    let text = edited("\"format\": 1,", "\"format\": 1");
    let e = bad(&text);
    assert!(matches!(e.problem, Problem::Json(_)));
    assert_eq!(e.position.map(|p| p.line), Some(3));
    let m = message(&text);
    assert!(m.starts_with("f.json:3:"), "{m}");
    assert!(m.contains("JSON syntax error") && m.contains("expected"), "{m}");
    assert!(!m.contains(" at line "), "position printed twice: {m}");
    let m = message("");
    assert!(m.contains("EOF"), "{m}");
}

#[test]
fn unknown_fields_are_rejected_with_the_expected_names() {
    let m = message(&edited("\"seed\": 42,", "\"seed\": 42, \"colour\": 1,"));
    assert!(m.contains("unknown field `colour`") && m.contains("expected one of"), "{m}");
    assert!(m.starts_with("f.json:"), "{m}");
    let m = message(&edited("\"threads\": 0", "\"threads\": 0, \"colour\": 1"));
    assert!(m.contains("unknown field `colour`"), "{m}");
    let m = message(&edited("\"rule\": \"unknown-bit\"", "\"rule\": \"unknown-bit\", \"why\": 1"));
    assert!(m.contains("unknown field `why`") && m.contains("`result`"), "{m}");
}

#[test]
fn unknown_flag_errno_privilege_and_origin_names_are_rejected() {
    let m = message(&edited("NEWNS|0x100000000", "NEWNS|NEWFOO"));
    assert!(m.contains("unknown flag name \"NEWFOO\""), "{m}");
    assert!(m.contains("expected names such as NEWNS"), "{m}");
    let e = bad(&edited("NEWNS|0x100000000", "NEWNS|NEWFOO"));
    let line = sample().to_text().unwrap().lines().position(|l| l.contains("NEWNS|0x1")).unwrap() + 1;
    assert_eq!(e.position.map(|p| p.line), Some(line));
    let m = message(&edited("\"result\": \"EINVAL\"", "\"result\": \"EWHAT\""));
    assert!(m.contains("EWHAT") && m.contains("expected \"success\" or an errno name"), "{m}");
    let m = message(&edited("\"nobody\"", "\"nobdy\""));
    assert!(m.contains("unknown variant `nobdy`") && m.contains("`root`"), "{m}");
    let m = message(&edited("\"run --save-failures\"", "\"magic\""));
    assert!(m.contains("unknown variant `magic`") && m.contains("`manual`"), "{m}");
}

#[test]
fn format_version_is_checked_first() {
    let e = bad(&edited("\"format\": 1,", "\"format\": 2, \"future\": true,"));
    assert!(matches!(&e.problem, Problem::Format { found, .. } if found == "2"));
    assert_eq!(e.position, Some(Position { line: 2, column: 3 }));
    let m = message(&edited("\"format\": 1,", "\"format\": \"1\","));
    assert!(m.contains("unsupported corpus format \"1\"") && m.contains("expected \"format\": 1"), "{m}");
    let m = message(&edited("\"format\": 1,", ""));
    assert!(m.contains("missing field `format`"), "{m}");
}

#[test]
fn impossible_cases_name_the_field() {
    let e = bad(&edited("\"threads\": 0", "\"threads\": 9"));
    assert!(matches!(e.problem, Problem::Case(CaseError::Threads(9))));
    assert_eq!(e.field.as_deref(), Some("case.setup.threads"));
    let m = e.in_file("f.json").to_string();
    assert!(
        m.contains(":case.setup.threads: impossible case") || m.contains(": case.setup.threads: impossible case"),
        "{m}"
    );
    assert!(m.contains("at most 2 are supported"), "{m}");
    let text = r#"{"format": 1, "title": "t",
  "case": {"steps": []}}"#;
    let e = bad(text);
    assert!(matches!(e.problem, Problem::Case(CaseError::StepCount(0))));
    assert_eq!(e.position, Some(Position { line: 2, column: 12 }));
    let five = r#"{"format":1,"title":"t","case":{"steps":[{"unshare":"0"},{"unshare":"0"},{"unshare":"0"},{"unshare":"0"},{"unshare":"0"}]}}"#;
    assert!(message(five).contains("1 to 4 steps, this one has 5"));
    let m = message(&edited("\"threads\": 0", "\"threads\": 300"));
    assert!(m.contains("300") && m.contains("u8"), "{m}");
}

#[test]
fn expected_must_match_the_steps() {
    let text = edited("    {\n      \"result\": \"success\"\n    }\n", "").replace("},\n  ]", "}\n  ]");
    let e = bad(&text);
    assert!(matches!(e.problem, Problem::ExpectedCount { entries: 1, steps: 2 }), "{:?}\n{text}", e.problem);
    assert_eq!(e.field.as_deref(), Some("expected"));
    assert!(e.position.is_some());
    let m = message(&edited("\"unknown-bit\"", "\"no-such-rule\""));
    assert!(m.contains("unknown rule \"no-such-rule\"") && m.contains("thread-multithreaded"), "{m}");
    let m = message(&edited("\"result\": \"EINVAL\"", "\"result\": \"EPERM\""));
    assert!(m.contains("rule \"unknown-bit\" gives EINVAL, but `result` says EPERM"), "{m}");
}

#[test]
fn titles_are_one_line() {
    assert!(matches!(bad(&edited("NEWNS|bit32 is EINVAL", "")).problem, Problem::Title));
    assert!(matches!(bad(&edited("NEWNS|bit32 is EINVAL", "a\\nb")).problem, Problem::Title));
}

#[test]
fn mangled_input_never_panics() {
    let text = sample().to_text().unwrap();
    for cut in 0..text.len() {
        if text.is_char_boundary(cut) {
            let _ = parse(&text[..cut]);
        }
    }
    let bytes = text.as_bytes();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut b = bytes.to_vec();
        let i = (x as usize) % b.len();
        let alphabet = b"{}[]\":,0123456789aZ|x \n";
        b[i] = alphabet[(x >> 32) as usize % alphabet.len()];
        if let Ok(s) = std::str::from_utf8(&b) {
            let _ = parse(s);
        }
    }
    for junk in ["[]", "1", "null", "{\"format\": 1}", "{\"format\": null}", "\u{feff}{}"] {
        let _ = parse(junk).unwrap_err().in_file("x").to_string();
    }
}

#[test]
fn locate_key_finds_keys_not_values() {
    let text = "{\n  \"title\": \"format\",\n  \"format\": 1\n}";
    assert_eq!(locate_key(text, "format"), Some(Position { line: 3, column: 3 }));
    assert_eq!(locate_key(text, "nope"), None);
}

#[test]
fn mem_store_saves_loads_and_names_keys() {
    let mut store = MemStore::new();
    store.save("regressions/a.json", &sample()).unwrap();
    store.files.insert("b/bad.json".into(), "{".into());
    assert_eq!(store.keys().unwrap(), ["b/bad.json", "regressions/a.json"]);
    assert_eq!(store.load("regressions/a.json").unwrap(), sample());
    let all = store.load_all().unwrap();
    assert_eq!(all.len(), 2);
    let err = all[0].file.as_ref().unwrap_err().to_string();
    assert!(err.starts_with("mem:b/bad.json:1:"), "{err}");
    for key in ["../x.json", "/x.json", "x.txt", "a//b.json"] {
        assert!(matches!(store.save(key, &sample()), Err(StoreError::Key(_))), "{key}");
    }
    assert!(store.load("missing.json").unwrap_err().to_string().contains("cannot read"));
}

#[test]
fn dir_store_walks_recursively_in_order() {
    let dir = std::env::temp_dir().join(format!("unshare-fuzz-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = DirStore::new(&dir);
    assert!(store.keys().unwrap().is_empty(), "a missing directory is an empty store");
    store.save("z/deep/c.json", &sample()).unwrap();
    store.save("a.json", &sample()).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a case").unwrap();
    assert_eq!(store.keys().unwrap(), ["a.json", "z/deep/c.json"]);
    assert_eq!(store.load("z/deep/c.json").unwrap(), sample());
    let loaded = store::load_paths(&[dir.join("a.json"), dir.join("missing.json"), dir.join("z")]);
    let names: Vec<&str> = loaded.iter().map(|l| l.name.as_str()).collect();
    assert!(names[0].ends_with("a.json") && names[2].ends_with("z/deep/c.json"), "{names:?}");
    assert!(loaded[0].file.is_ok() && loaded[2].file.is_ok());
    let e = loaded[1].file.as_ref().unwrap_err().to_string();
    assert!(e.contains("missing.json") && e.contains("cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rules_come_from_the_check_tables() {
    assert_eq!(rule_result("success"), Some(CallResult::Success));
    assert_eq!(rule_result("pid-already-unshared"), Some(CallResult::Failure(Errno::EINVAL)));
    assert_eq!(rule_result("nope"), None);
    let known = known_rules();
    assert!(known.contains(&"ns-needs-cap-sys-admin") && known[0] == "success");
}
