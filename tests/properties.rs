//! Property tests: proptest generates cases, the executor (a separate process
//! started from the built binary, never a fork of a test thread) runs them,
//! and every invariant must hold. `PROPTEST_CASES` scales the run.

#![allow(clippy::unwrap_used, reason = "test code: a panic is the failure report")]

mod common;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use unshare_fuzz::check::judge;
use unshare_fuzz::exec::Executor;
use unshare_fuzz::generate::strategy;
use unshare_fuzz::model::{predict, profile::LINUX_6_18};

fn executor() -> &'static Mutex<Executor> {
    static EXECUTOR: OnceLock<Mutex<Executor>> = OnceLock::new();
    EXECUTOR.get_or_init(|| Mutex::new(Executor::spawn(common::binary(), &[]).expect("start the executor")))
}

proptest! {
    // 300 by default; PROPTEST_CASES (as scripts/nightly.sh sets it) overrides.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_invariant_holds_on_this_kernel(case in strategy::case()) {
        let mut ex = executor().lock().unwrap();
        let env = ex.environment().clone();
        let prediction = predict(&LINUX_6_18, &env, &case);
        let outcome = ex.run(&case, Duration::from_secs(5)).expect("executor");
        let verdict = judge(&env, &case, &prediction, &outcome);
        prop_assert!(verdict.broken.is_none(), "broken: {:?}", verdict.broken);
        prop_assert!(verdict.violations.is_empty(), "{}: {:?}", case, verdict.violations);
    }
}
