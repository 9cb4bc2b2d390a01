//! The KTAP and JUnit reports, read back by strict parsers written from their
//! specifications: KTAP version 1 (Documentation/dev-tools/ktap.rst: version
//! and plan lines, numbered results, two-space nested blocks, directives) and
//! XML 1.0 well-formedness plus the JUnit shape. Checked on a synthetic report
//! with every kind of outcome (violations, timeouts, skips, broken cases,
//! hostile characters) and on real `run` output.

mod common;

use std::collections::BTreeMap;

use unshare_fuzz::case::{Case, Privilege};
use unshare_fuzz::check::{InvariantTally, Tally, Violation};
use unshare_fuzz::command::run::{FailedCase, Interruption, RunReport};
use unshare_fuzz::env::Environment;
use unshare_fuzz::model::{Prediction, predict, profile};
use unshare_fuzz::report::{self, Format};

#[path = "support/ktap_parser.rs"]
mod ktap_parser;
use ktap_parser::{by_name, parse_ktap};

// ---------------------------------------------------------------- XML (roxmltree)

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map_or_else(|| panic!("<{}> lacks {k}", self.name), String::as_str)
    }
    fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
}

/// Parses a report with roxmltree (a conforming XML 1.0 parser: well-formedness, entity and
/// character references, the characters XML allows, one root) and copies it into an owned
/// tree. The XML declaration the reports write is required.
fn parse_xml(doc: &str) -> Result<Element, String> {
    if !doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") {
        return Err("missing XML declaration".into());
    }
    let parsed = roxmltree::Document::parse(doc).map_err(|e| e.to_string())?;
    Ok(owned(parsed.root_element()))
}

fn owned(node: roxmltree::Node<'_, '_>) -> Element {
    Element {
        name: node.tag_name().name().to_string(),
        attrs: node.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect(),
        children: node.children().filter(roxmltree::Node::is_element).map(owned).collect(),
        text: node.children().filter(roxmltree::Node::is_text).filter_map(|c| c.text()).collect(),
    }
}

/// Checks the JUnit shape: one suite whose counts match its test cases.
fn check_junit(root: &Element) -> &Element {
    assert_eq!(root.name, "testsuites");
    let suites = root.all("testsuite");
    assert_eq!(suites.len(), 1, "exactly one testsuite");
    let suite = suites[0];
    let cases = suite.all("testcase");
    let count = |child: &str| cases.iter().filter(|c| !c.all(child).is_empty()).count().to_string();
    for el in [root, suite] {
        assert_eq!(el.attr("tests"), cases.len().to_string());
        assert_eq!(el.attr("failures"), count("failure"));
        assert_eq!(el.attr("errors"), count("error"));
        assert_eq!(el.attr("skipped"), count("skipped"));
    }
    for c in &cases {
        let outcomes = c.all("failure").len() + c.all("error").len() + c.all("skipped").len();
        assert!(outcomes <= 1, "{} has {outcomes} outcomes", c.attr("name"));
        assert!(c.attr("time").parse::<f64>().is_ok());
    }
    suite
}

#[test]
fn the_checkers_reject_what_the_specifications_forbid() {
    for bad in [
        "KTAP version 1\n1..2\nok 1 a\n",
        "KTAP version 1\n1..1\nok 2 a\n",
        "KTAP version 1\n1..1\nok 1 a # TIMEOUT 5 s\n",
        "KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  not ok 1 b\nok 1 a\n",
        "KTAP version 1\n1..1\n KTAP version 1\n 1..1\n ok 1 b\nok 1 a\n",
        "KTAP version 1\n1..1\nwhatever\nok 1 a\n",
        "TAP version 13\n1..1\nok 1 a\n",
    ] {
        assert!(parse_ktap(bad).is_err(), "accepted:\n{bad}");
    }
    let good = "KTAP version 1\n1..2\n  KTAP version 1\n  1..2\n  # why\n  not ok 1 b # TIMEOUT 5 s\n  ok 2 c # SKIP no\nnot ok 1 a\nok 2 d # SKIP none\n# Totals: x\n";
    let t = parse_ktap(good).unwrap();
    assert_eq!(t[0].subtests[0].directive.as_deref(), Some("TIMEOUT"));
    assert_eq!(t[0].subtests[0].diagnostics, ["why"]);
    for bad in [
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a></b>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"1\" x=\"2\"/>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>&nope;</a>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>x & y</a>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"<\"/>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\u{1}</a>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a/><b/>",
        "<a/>",
    ] {
        assert!(parse_xml(bad).is_err(), "accepted: {bad}");
    }
    let el = parse_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a k='&lt;&#x41;'>t&amp;<b/></a>\n").unwrap();
    assert_eq!((el.attr("k"), el.text.as_str(), el.children.len()), ("<A", "t&", 1));
}

// ---------------------------------------------------------------- a synthetic report

const HOSTILE: &str = "model <expected> EINVAL & got \"success\" # 'odd'\nsecond line\u{1}";

fn violation(invariant: &'static str, case: &Case, step: Option<usize>, detail: &str) -> Violation {
    let env = Environment::reference();
    let expected = match predict(&profile::LINUX_6_18, &env, case) {
        Prediction::Steps { steps, .. } => step.and_then(|i| steps.get(i).cloned()),
        Prediction::Skip { .. } => None,
    };
    Violation { invariant, step, detail: detail.to_string(), expected, observed: None }
}

/// A report with one of everything: violations (more than the listing cap),
/// a timeout, partly and wholly skipped invariants, broken and skipped cases.
#[expect(clippy::too_many_lines, reason = "a fixture: one report literal with every field a format prints")]
fn synthetic() -> RunReport {
    let mut environment = Environment::reference();
    environment.restrictions.push("a seccomp filter <is> installed & \"may\" filter unshare".into());
    let mut tally = Tally::new();
    let set = |t: &mut Tally, id: &str, checked, violated, skipped: &[(&str, u64)]| {
        t.invariants.insert(
            id.to_string(),
            InvariantTally {
                checked,
                held: checked - violated,
                violated,
                skipped: skipped.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            },
        );
    };
    let mut failures = Vec::new();
    let mut errno_case = Case::unshare(&[0x2_0000 | 0x1_0000_0000, 0]);
    errno_case.setup.privilege = Privilege::Nobody;
    for index in 0..25 {
        failures.push(FailedCase {
            file: None,
            index,
            case: errno_case.clone(),
            violations: vec![violation("errno-matches-model", &errno_case, Some(0), HOSTILE)],
            known_bug: None,
            baselined: false,
        });
    }
    let timeout_case = Case::unshare(&[0x2000_0000]);
    failures.push(FailedCase {
        file: None,
        index: 40,
        case: timeout_case.clone(),
        violations: vec![violation(
            "case-completes",
            &timeout_case,
            None,
            "timeout: still running after 5000 ms, killed with its process group",
        )],
        known_bug: None,
        baselined: false,
    });
    set(&mut tally, "errno-matches-model", 300, 25, &[]);
    set(&mut tally, "case-completes", 100, 1, &[]);
    set(
        &mut tally,
        "newtime-affects-children-only",
        0,
        0,
        &[("this kernel has no /proc/self/ns/time_for_children", 7)],
    );
    set(&mut tally, "newuser-credentials", 10, 0, &[("user namespaces # unavailable", 2)]);
    set(&mut tally, "noop-flags-change-nothing", 0, 0, &[]);
    tally.cases = 100;
    tally.reached_syscall = 90;
    tally.failed_cases = 26;
    tally.broken.insert("setup failed: capset gave EPERM".into(), 3);
    tally.cases_skipped.insert("uid/gid 65534 are not mapped".into(), 7);
    RunReport {
        seed: 7,
        profile: "linux-6.18",
        environment,
        tally,
        failures,
        elapsed_seconds: 1.5,
        cases_per_second: 66.7,
        jobs: 1,
        executor_stats: Vec::new(),
        pinned_cpus: vec![Some(0)],
        phases: Default::default(),
        corpus_files: None,
        interrupted: None,
        notes: Vec::new(),
        baseline: None,
    }
}

/// One test per invariant of the tally (all known ones), plus `every-case-judged`.
fn expected_tests() -> usize {
    unshare_fuzz::check::Tally::new().invariants.len() + 1
}

#[test]
fn ktap_of_every_outcome_parses_and_says_what_happened() {
    let text = report::render(Format::Ktap, &synthetic()).unwrap();
    let tests = parse_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let header: Vec<&str> = text.lines().skip(2).take_while(|l| l.starts_with("# ")).collect();
    assert!(header.iter().any(|l| l.contains("kernel:")), "{text}");
    assert!(header.iter().any(|l| l.contains("seccomp filter <is> installed")), "restrictions lead: {text}");
    assert_eq!(tests.len(), expected_tests(), "every invariant + every-case-judged");

    let errno = by_name(&tests, "errno-matches-model");
    assert!(!errno.ok && errno.directive.is_none());
    assert_eq!(errno.data, "25 of 300 checks violated");
    assert_eq!(errno.subtests.len(), 21, "20 listed + one line for the rest");
    assert_eq!(errno.subtests[0].name, "case_0_step_0");
    assert!(errno.subtests[0].diagnostics.iter().any(|d| d.contains("expected: EINVAL (rule unknown-bit")));
    assert!(errno.subtests[0].diagnostics.iter().any(|d| d.contains("second line")), "newlines folded into the line");
    assert_eq!(errno.subtests[20].name, "more_violations");

    let completes = by_name(&tests, "case-completes");
    assert_eq!((completes.ok, completes.directive.as_deref()), (false, Some("TIMEOUT")));
    assert_eq!(completes.subtests[0].directive.as_deref(), Some("TIMEOUT"));
    assert_eq!(completes.subtests[0].data, "still running after 5000 ms, killed with its process group");

    let time = by_name(&tests, "newtime-affects-children-only");
    assert_eq!((time.ok, time.directive.as_deref()), (true, Some("SKIP")));
    assert!(time.data.contains("time_for_children (7 checks)"), "{}", time.data);
    let never = by_name(&tests, "noop-flags-change-nothing");
    assert_eq!(never.directive.as_deref(), Some("SKIP"), "never checked is a skip, not a pass");

    let user = by_name(&tests, "newuser-credentials");
    assert!(user.ok && user.directive.is_none());
    assert_eq!(user.subtests.len(), 1);
    assert_eq!(user.subtests[0].directive.as_deref(), Some("SKIP"));

    let judged = by_name(&tests, "every-case-judged");
    assert_eq!((judged.ok, judged.directive.as_deref()), (false, Some("ERROR")));
    let kinds: Vec<_> = judged.subtests.iter().map(|t| t.directive.as_deref()).collect();
    assert_eq!(kinds, [Some("ERROR"), Some("SKIP")]);
    // Every invariant the synthetic tally leaves unchecked is a skip: all but the 4 set above.
    let skips = expected_tests() - 4;
    let totals = format!("# Totals: pass:1 fail:2 xfail:0 xpass:0 skip:{skips} error:1");
    assert_eq!(text.lines().last(), Some(totals.as_str()));
}

#[test]
fn junit_of_every_outcome_is_well_formed_and_counts_agree() {
    let xml = report::render(Format::Junit, &synthetic()).unwrap();
    let root = parse_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suite = check_junit(&root);
    let cases = suite.all("testcase");
    assert_eq!(cases.len(), expected_tests());
    let case = |n: &str| *cases.iter().find(|c| c.attr("name") == n).unwrap();
    let failure = case("errno-matches-model").all("failure")[0];
    assert_eq!(failure.attr("message"), "25 of 300 checks violated");
    assert!(failure.text.contains(HOSTILE.trim_end_matches('\u{1}')), "escaped and read back intact");
    assert!(failure.text.contains("... 5 more"));
    assert!(!case("newtime-affects-children-only").all("skipped").is_empty());
    assert!(!case("noop-flags-change-nothing").all("skipped").is_empty());
    assert!(case("newuser-credentials").all("skipped").is_empty(), "partly skipped but checked: a pass");
    assert_eq!(case("every-case-judged").all("error")[0].attr("message"), "3 of 100 cases broken");
    let props = suite.all("properties")[0].all("property");
    let restriction = props.iter().find(|p| p.attr("name") == "restriction").unwrap();
    assert_eq!(restriction.attr("value"), "a seccomp filter <is> installed & \"may\" filter unshare");
}

#[test]
fn an_interrupted_report_says_so_in_every_format_and_is_not_a_pass() {
    let mut r = synthetic();
    r.tally.broken.clear();
    r.interrupted = Some(Interruption { after_cases: 100, planned_cases: 1000, cause: "SIGTERM".into() });
    assert_eq!(r.exit_code(), 3, "violations (1) and interrupted (2)");
    let line = "interrupted after 100 of 1000 cases (SIGTERM)";

    let text = report::render(Format::Ktap, &r).unwrap();
    let tests = parse_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let judged = by_name(&tests, "every-case-judged");
    assert_eq!((judged.ok, judged.directive.as_deref()), (false, Some("ERROR")), "{text}");
    assert_eq!(judged.data, line);
    assert!(text.lines().last().unwrap().ends_with("error:1"), "{text}");

    let xml = report::render(Format::Junit, &r).unwrap();
    let root = parse_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suite = check_junit(&root);
    let cases = suite.all("testcase");
    let judged = cases.iter().find(|c| c.attr("name") == "every-case-judged").unwrap();
    assert_eq!(judged.all("error")[0].attr("message"), line);
    assert_eq!(suite.attr("errors"), "1");

    let human = report::render(Format::Human, &r).unwrap();
    assert!(human.contains(line), "{human}");
    assert!(human.contains("result: INTERRUPTED after 100 of 1000 cases (SIGTERM); VIOLATIONS found"), "{human}");

    let json: serde_json::Value = serde_json::from_str(&report::render(Format::Json, &r).unwrap()).unwrap();
    assert_eq!(json["interrupted"]["after_cases"], 100);
    assert_eq!(json["interrupted"]["cause"], "SIGTERM");
    assert_eq!(json["exit_status"], 3);
}

#[test]
fn a_run_where_no_case_reached_the_syscall_is_not_a_pass() {
    let mut r = synthetic();
    r.failures.clear();
    r.tally = Tally::new();
    r.tally.cases = 5;
    r.tally.cases_skipped.insert("uid/gid 65534 are not mapped".into(), 5);
    assert_eq!(r.exit_code(), 2);
    let human = report::render(Format::Human, &r).unwrap();
    let verdict = human.lines().last().unwrap();
    assert!(verdict.starts_with("result: NO CASE REACHED THE SYSCALL"), "{verdict}");
    assert!(verdict.contains("5x uid/gid 65534 are not mapped"), "the reason is named: {verdict}");
    let text = report::render(Format::Ktap, &r).unwrap();
    parse_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("# no case reached the syscall"), "{text}");
    r.tally.cases = 0;
    r.tally.cases_skipped.clear();
    assert_eq!(r.exit_code(), 2, "--cases 0 is not a pass either");
    // Some cases reached it: a pass, but a small share is said in the verdict.
    r.tally.cases = 50;
    r.tally.reached_syscall = 7;
    r.tally.cases_skipped.insert("uid/gid 65534 are not mapped".into(), 43);
    assert_eq!(r.exit_code(), 0);
    let human = report::render(Format::Human, &r).unwrap();
    assert_eq!(
        human.lines().last().unwrap(),
        "result: all invariants held; but ONLY 7 of 50 cases (14 %) reached the syscall, the others were skipped or \
         broken (see above)"
    );
    r.tally.reached_syscall = 45;
    let human = report::render(Format::Human, &r).unwrap();
    assert_eq!(human.lines().last().unwrap(), "result: all invariants held; 45 of 50 cases reached the syscall");
}

#[test]
fn human_and_json_render_through_the_same_entry_point() {
    let r = synthetic();
    let human = report::render(Format::Human, &r).unwrap();
    assert!(human.starts_with("kernel:") && human.contains("VIOLATION in case #40"), "{human}");
    let json: serde_json::Value = serde_json::from_str(&report::render(Format::Json, &r).unwrap()).unwrap();
    assert_eq!(json["tally"]["failed_cases"], 26);
}

// ---------------------------------------------------------------- real runs

#[test]
fn run_writes_ktap_on_stdout_and_junit_json_files_that_parse() {
    let dir = common::temp_dir("formats");
    let (junit, json) = (dir.join("r.xml"), dir.join("r.json"));
    let out = common::run(&[
        "run",
        "--cases",
        "300",
        "--seed",
        "21",
        "--format",
        "ktap",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let tests = parse_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(tests.len(), expected_tests());
    assert!(tests.iter().all(|t| t.ok || t.directive.is_some()), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed: 21"), "the seed goes to stderr");
    let root = parse_xml(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    let suite = check_junit(&root);
    assert_eq!(suite.attr("failures"), "0");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["tally"]["cases"], 300);

    let out = common::run(&["run", "--cases", "20", "--seed", "21", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    check_junit(&parse_xml(&String::from_utf8(out.stdout).unwrap()).unwrap());
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let out = common::run(&["run", "--format", "tap13"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("unknown report format"), "{}", common::text(&out));
}

#[test]
fn replay_writes_ktap_junit_and_json_reports_that_name_the_files() {
    let dir = common::temp_dir("replay-formats");
    let (junit, json) = (dir.join("r.xml"), dir.join("r.json"));
    // The fault makes the files pinning unknown bits fail, so the reports have violations.
    let out = common::run(&[
        "replay",
        "corpus/single-bits",
        "--inject-fault",
        "unknown-bits-succeed",
        "--format",
        "ktap",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let tests = parse_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let failing = by_name(&tests, "expected-matches-corpus");
    assert!(!failing.ok && !failing.subtests.is_empty(), "{text}");
    assert!(text.contains("  # file: corpus/single-bits/"), "violations name their file:\n{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PASS    corpus/single-bits/zero.json"), "per-file lines go to stderr: {stderr}");
    assert!(stderr.contains("TEST-ONLY FAULT INJECTION ACTIVE"), "{stderr}");
    let root = parse_xml(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    assert_ne!(check_junit(&root).attr("failures"), "0");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let files = std::fs::read_dir("corpus/single-bits").unwrap().count();
    assert_eq!(report["corpus_files"].as_array().map(Vec::len), Some(files));

    let out = common::run(&["replay", "corpus/single-bits/zero.json", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let suite_xml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(check_junit(&parse_xml(&suite_xml).unwrap()).attr("failures"), "0");
    let out = common::run(&["replay", "corpus/single-bits/zero.json", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report alone");
    assert_eq!(report["corpus_files"][0]["status"], "PASS");
}
