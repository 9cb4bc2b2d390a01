//! C reproducers of inside-witness cases (issue 16 class 3): the program forks the witness
//! before the steps and judges hostnames both ways, the tmpfs after NEWNS, the timens offsets
//! and setgroups as `inside-changes-stay-inside` does (`src/repro/witness.c`). Each case must
//! hold in the harness and in its reproducer, and a wrong witness expectation must make the
//! reproducer exit 1 and say what differs. Only processes are spawned; the test never forks.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use unshare_fuzz::case::Case;
use unshare_fuzz::command::pipeline::{RunConfig, execute_case};
use unshare_fuzz::exec::Executor;
use unshare_fuzz::model::{Prediction, predict, profile::LINUX_6_18};
use unshare_fuzz::repro::c_source_with;

#[path = "support/repro_build.rs"]
#[allow(dead_code, reason = "shared with tests/repro_c.rs, which uses the rest of it")]
mod repro_build;
use repro_build::{compile_all, run};

/// NEWUTS, NEWNS, NEWTIME (and NEWUSER with setgroups) with a witness, from the corpus, and
/// the witness writing the caller's maps (one id beside its own: the caller then cannot nest).
const CASES: [&str; 5] = [
    r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"NEWUTS"}]}"#,
    r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"NEWNS|NEWTIME"}]}"#,
    r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"0"}]}"#,
    r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"NEWUSER"},"write_maps",{"unshare":"NEWUSER|NEWUTS"}]}"#,
    r#"{"setup":{"inside_witness":true},"steps":[{"unshare":"NEWUSER"},{"witness_idmap":"uid-foreign"},{"witness_idmap":"gid-own"},{"unshare":"NEWUSER"}]}"#,
];

#[test]
fn witness_reproducers_give_the_harness_verdict_and_catch_a_wrong_expectation() {
    let dir = common::temp_dir("repro-witness");
    let mut executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    let env = executor.environment().clone();
    let config = RunConfig::one_at_a_time(&LINUX_6_18, std::time::Duration::from_secs(5), Vec::new());
    let (mut honest, mut tampered) = (Vec::new(), Vec::new());
    for json in CASES {
        let case: Case = serde_json::from_str(json).unwrap();
        let verdict = execute_case(&mut executor, &config, &case).unwrap().verdict;
        assert!(verdict.case_skipped.is_none() && verdict.broken.is_none(), "{case}: {verdict:?}");
        assert!(verdict.violations.is_empty(), "{case}: the harness found {:?}", verdict.violations);
        assert!(verdict.held.contains_key("inside-changes-stay-inside"), "{case}: the witness was not judged");
        let Prediction::Steps { steps, final_probe } = predict(&LINUX_6_18, &env, &case) else {
            panic!("the model skips {case} here")
        };
        honest.push(c_source_with(&case, &steps, &final_probe, "honest", &env).unwrap());
        // The witness said to share the caller's UTS namespace exactly when it does not.
        let mut wrong = final_probe;
        let w = wrong.inside.witness.as_mut().expect("a witness is predicted");
        w.uts_kept = !w.uts_kept;
        tampered.push(c_source_with(&case, &steps, &wrong, "tampered", &env).unwrap());
    }
    for (json, src) in CASES.iter().zip(&honest) {
        assert!(src.contains("witness_start(") && src.contains("wit_judge("), "{json}: no witness in the C");
    }
    for (json, bin) in CASES.iter().zip(compile_all(&dir, &honest)) {
        let (code, stdout) = run(&bin);
        assert_eq!(code, 0, "{json}: the harness held every invariant, the reproducer says:\n{stdout}");
    }
    for (json, bin) in CASES.iter().zip(compile_all(&dir, &tampered)) {
        let (code, stdout) = run(&bin);
        assert_eq!(code, 1, "{json}: a wrong uts_kept must be caught:\n{stdout}");
        assert!(stdout.contains("hostname, read by the"), "{json}: {stdout}");
    }
}

/// A shared tmpfs (`shared_mount`): a peer copy after NEWNS, a slave copy after NEWUSER|NEWNS.
const SHARED_CASES: [&str; 2] = [
    r#"{"setup":{"inside_witness":true,"shared_mount":true},"steps":[{"unshare":"NEWNS"}]}"#,
    r#"{"setup":{"inside_witness":true,"shared_mount":true},"steps":[{"unshare":"NEWUSER|NEWNS"}]}"#,
];

#[test]
fn propagation_reproducers_give_the_harness_verdict_and_catch_a_peer_taken_for_a_slave() {
    use unshare_fuzz::model::inside_witness::SharedRelation;
    let dir = common::temp_dir("repro-witness-shared");
    let mut executor = Executor::spawn(common::binary(), &[]).expect("start the executor");
    let env = executor.environment().clone();
    let config = RunConfig::one_at_a_time(&LINUX_6_18, std::time::Duration::from_secs(5), Vec::new());
    let (mut honest, mut tampered) = (Vec::new(), Vec::new());
    for json in SHARED_CASES {
        let case: Case = serde_json::from_str(json).unwrap();
        let verdict = execute_case(&mut executor, &config, &case).unwrap().verdict;
        assert!(verdict.case_skipped.is_none() && verdict.broken.is_none(), "{case}: {verdict:?}");
        assert!(verdict.violations.is_empty(), "{case}: the harness found {:?}", verdict.violations);
        let Prediction::Steps { steps, final_probe } = predict(&LINUX_6_18, &env, &case) else {
            panic!("the model skips {case} here")
        };
        honest.push(c_source_with(&case, &steps, &final_probe, "honest", &env).unwrap());
        let mut wrong = final_probe;
        let m = wrong.inside.witness.as_mut().and_then(|w| w.shared.as_mut()).expect("propagation is predicted");
        m.relation = match m.relation {
            SharedRelation::Slave => SharedRelation::Peer,
            _ => SharedRelation::Slave,
        };
        tampered.push(c_source_with(&case, &steps, &wrong, "tampered", &env).unwrap());
    }
    for (json, src) in SHARED_CASES.iter().zip(&honest) {
        assert!(
            src.contains("shared_mount(x);") && src.contains("wit_judge_shared("),
            "{json}: no shared tmpfs in the C"
        );
    }
    for (json, bin) in SHARED_CASES.iter().zip(compile_all(&dir, &honest)) {
        let (code, stdout) = run(&bin);
        assert_eq!(code, 0, "{json}: the harness held every invariant, the reproducer says:\n{stdout}");
    }
    for (json, bin) in SHARED_CASES.iter().zip(compile_all(&dir, &tampered)) {
        let (code, stdout) = run(&bin);
        assert_eq!(code, 1, "{json}: a wrong relation must be caught:\n{stdout}");
        assert!(stdout.contains("on the shared tmpfs, looked for by the witness"), "{json}: {stdout}");
    }
}
