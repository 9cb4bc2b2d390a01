//! Building and running C reproducers for `tests/repro_c.rs`: gcc with warnings as errors,
//! several at once, and the comparison of a reproducer's run with the harness's run of the
//! same case.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use unshare_fuzz::case::{Case, Step};
use unshare_fuzz::check::judge;
use unshare_fuzz::env::Environment;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::exec::observe::Outcome;
use unshare_fuzz::model::{predict, profile::LINUX_6_18};

/// gcc processes at once.
const PARALLEL_GCC: usize = 4;

const GCC_FLAGS: &[&str] = &["-O1", "-Wall", "-Wextra", "-Werror", "-Werror=implicit-function-declaration", "-o"];

/// Compiles every source (PARALLEL_GCC gcc processes at once); returns the binaries.
pub fn compile_all(dir: &Path, sources: &[String]) -> Vec<PathBuf> {
    let mut bins = Vec::new();
    let mut running: Vec<(Child, PathBuf)> = Vec::new();
    let finish = |(child, c): (Child, PathBuf)| {
        let out = child.wait_with_output().expect("wait for gcc");
        assert!(out.status.success(), "{} does not compile:\n{}", c.display(), crate::common::text(&out));
    };
    for (i, src) in sources.iter().enumerate() {
        let c = dir.join(format!("case{i}.c"));
        let bin = dir.join(format!("case{i}"));
        std::fs::write(&c, src).expect("write the C file");
        let child = Command::new("gcc")
            .args(GCC_FLAGS)
            .arg(&bin)
            .arg(&c)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gcc must be installed to test the C reproducers (apt-get install gcc)");
        running.push((child, c));
        if running.len() >= PARALLEL_GCC {
            finish(running.remove(0));
        }
        bins.push(bin);
    }
    running.into_iter().for_each(finish);
    bins
}

pub fn build_and_run(dir: &Path, name: &str, src: &str) -> (i32, String) {
    let bin = compile_all(dir, &[src.to_string()]).remove(0);
    let renamed = dir.join(name);
    std::fs::rename(&bin, &renamed).expect("rename the binary");
    run(&renamed)
}

pub fn run(bin: &Path) -> (i32, String) {
    let out = Command::new(bin).output().expect("run the reproducer");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `step N: observed X` lines of a reproducer's output.
pub fn observed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("step ").and_then(|r| r.split_once(": observed ")))
        .map(|(_, r)| r.to_string())
        .collect()
}

/// This machine's environment, for expectations a C program checks: it reads the
/// `/proc/self/ns` links, whatever the executor's own observer.
pub fn probed_environment() -> Environment {
    let out = crate::common::run(&["env", "--json"]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let env: Environment = serde_json::from_slice(&out.stdout).expect("env --json is an Environment");
    Environment { ns_observer: unshare_fuzz::abi::ns::NsObserver::ProcLinks, ..env }
}

/// Runs each reproducer and the harness's executor on the same case: the reproducer must exit
/// 0, the harness must judge the case clean, and both must see the same result per step.
/// Returns (unshare successes, other successful steps, failed steps).
pub fn agree_with_harness(
    executor: &mut Executor,
    env: &Environment,
    sample: &[(Case, String)],
    bins: &[PathBuf],
) -> (usize, usize, usize) {
    let (mut successes, mut other_steps_ok, mut failures) = (0, 0, 0);
    for ((case, _), bin) in sample.iter().zip(bins) {
        let (code, stdout) = run(bin);
        let json = serde_json::to_string(case).unwrap_or_default();
        assert_eq!(code, 0, "reproducer {} of {json} disagrees with the model:\n{stdout}", bin.display());
        assert!(stdout.contains("RESULT: the kernel agrees with the model"), "{stdout}");
        let from_c = observed(&stdout);

        let outcome = executor.run(case, Duration::from_secs(5)).expect("harness runs the case");
        let prediction = predict(&LINUX_6_18, env, case);
        let verdict = judge(env, case, &prediction, &outcome);
        assert!(verdict.violations.is_empty() && verdict.broken.is_none(), "{json}: {verdict:?}");
        let Outcome::Completed { trace } = outcome else { panic!("{json}: {outcome:?}") };
        let from_harness: Vec<String> = trace.steps.iter().map(|s| s.result.to_string()).collect();
        assert_eq!(from_c, from_harness, "C and harness differ on {json}:\n{stdout}");
        for (step, r) in case.steps.iter().zip(&from_c) {
            match (step, r.as_str()) {
                (Step::Unshare(_), "success") => successes += 1,
                (_, "success") => other_steps_ok += 1,
                _ => failures += 1,
            }
        }
    }
    (successes, other_steps_ok, failures)
}
