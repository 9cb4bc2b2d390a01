//! C reproducers end to end: generate them for a sample of generated cases
//! covering every setup, compile each with gcc (warnings are errors, and
//! glibc's int `unshare()` is not even declared), run them, and check that
//! they agree with the model and with the harness's own run of the same case
//! on this kernel. Only processes are spawned here; the test never forks.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use unshare_fuzz::case::{Case, Privilege};
use unshare_fuzz::check::judge;
use unshare_fuzz::env::Environment;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::{predict, profile::LINUX_6_18};
use unshare_fuzz::observe::Outcome;
use unshare_fuzz::repro::c_source;
use unshare_fuzz::runner::cases_for_seed;

const PER_SETUP: usize = 3;

/// Compiles `src` and runs it; returns (exit code, stdout).
fn build_and_run(dir: &Path, name: &str, src: &str) -> (i32, String) {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write the C file");
    let gcc = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-Werror=implicit-function-declaration", "-o"])
        .arg(&bin)
        .arg(&c)
        .output()
        .expect("gcc must be installed to test the C reproducers (apt-get install gcc)");
    assert!(gcc.status.success(), "{name}.c does not compile:\n{}", common::text(&gcc));
    let out = Command::new(&bin).output().expect("run the reproducer");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `step N: observed X` lines of a reproducer's output.
fn observed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("step ").and_then(|r| r.split_once(": observed ")))
        .map(|(_, r)| r.to_string())
        .collect()
}

fn probed_environment() -> Environment {
    let out = common::run(&["env", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).expect("env --json is an Environment")
}

/// Up to PER_SETUP cases for every (privilege, threads) pair, from the seeded stream.
fn sample() -> Vec<Case> {
    let mut by_setup: BTreeMap<(usize, u8), Vec<Case>> = BTreeMap::new();
    for case in cases_for_seed(20_261_129).take(40_000) {
        // The C prelude builds the privilege and thread setups and runs unshare steps.
        let plain = unshare_fuzz::case::Setup {
            privilege: case.setup.privilege,
            threads: case.setup.threads,
            ..Default::default()
        };
        if case.setup != plain || !case.steps.iter().all(|s| matches!(s, unshare_fuzz::case::Step::Unshare(_))) {
            continue;
        }
        let p = Privilege::ALL
            .iter()
            .position(|p| *p == case.setup.privilege)
            .expect("every privilege is in Privilege::ALL");
        let bucket = by_setup.entry((p, case.setup.threads)).or_default();
        if bucket.len() < PER_SETUP {
            bucket.push(case);
        }
    }
    assert_eq!(by_setup.len(), Privilege::ALL.len() * 3, "every setup is sampled");
    by_setup.into_values().flatten().collect()
}

#[test]
fn reproducers_compile_run_and_agree_with_the_harness() {
    let dir = common::temp_dir("repro-c");
    let mut executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    // The executor's own environment: its baseline inodes are the ones alive during its cases.
    let env = executor.environment().clone();
    let cases = sample();
    let mut successes = 0;
    for (i, case) in cases.iter().enumerate() {
        let src = c_source(case, &LINUX_6_18, &env).unwrap_or_else(|e| panic!("{case}: {e}"));
        let (code, stdout) = build_and_run(&dir, &format!("case{i}"), &src);
        assert_eq!(code, 0, "reproducer of {case} disagrees with the model:\n{stdout}");
        assert!(stdout.contains("RESULT: the kernel agrees with the model"), "{stdout}");
        let from_c = observed(&stdout);

        let outcome = executor.run(case, Duration::from_secs(5)).expect("harness runs the case");
        let prediction = predict(&LINUX_6_18, &env, case);
        let verdict = judge(&env, case, &prediction, &outcome);
        assert!(verdict.violations.is_empty() && verdict.broken.is_none(), "{case}: {verdict:?}");
        let Outcome::Completed { trace } = outcome else { panic!("{case}: {outcome:?}") };
        let from_harness: Vec<String> = trace.steps.iter().map(|s| s.result.to_string()).collect();
        assert_eq!(from_c, from_harness, "C and harness differ on {case}:\n{stdout}");
        successes += from_c.iter().filter(|r| *r == "success").count();
    }
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(successes >= 10, "the sample should reach successful calls too ({successes})");
}

#[test]
fn the_cli_writes_a_reproducer_for_a_corpus_file() {
    let dir = common::temp_dir("repro-cli");
    let file = dir.join("case.json");
    std::fs::write(
        &file,
        r#"{"format": 1, "title": "user ns then mount ns", "origin": "manual",
            "case": {"setup": {"privilege": "root-without-sys-admin", "threads": 0},
                     "steps": [{"unshare": "NEWNS"}, {"unshare": "NEWUSER|NEWNS"}, {"unshare": "NEWUTS|0x100000000"}]}}"#,
    )
    .unwrap();
    let out = common::run(&["repro", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let (code, stdout) = build_and_run(&dir, "cli", &String::from_utf8(out.stdout).unwrap());
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(observed(&stdout), ["EPERM", "success", "EINVAL"], "{stdout}");

    std::fs::write(&file, r#"{"case": {"steps": [{"unshare": "NEWBOGUS"}]}}"#).unwrap();
    let out = common::run(&["repro", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::text(&out).contains("NEWBOGUS"), "{}", common::text(&out));
}

#[test]
fn a_wrong_expectation_makes_the_reproducer_exit_1_and_say_what_differs() {
    // The model is told the executor lacks CAP_SYS_ADMIN, so it predicts EPERM for NEWUTS
    // as root; the kernel, run as root, succeeds.
    let mut env = probed_environment();
    env.baseline.cap_eff &= !(1 << 21);
    let case = Case::unshare(&[0x400_0000]);
    let src = c_source(&case, &LINUX_6_18, &env).unwrap();
    let (code, stdout) = build_and_run(&common::temp_dir("repro-mismatch"), "wrong", &src);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("MISMATCH (step 0): the model expected EPERM, the kernel returned success"), "{stdout}");
    assert!(stdout.contains("RESULT: MISMATCH, 1 difference(s)"), "{stdout}");
}
