//! The `run` command: generate cases from a seed ([`cases_for_seed`]) and run them through the
//! executor pool (`command::pool`), each predicted, executed and judged by the pipeline
//! (`command::pipeline`). Shared by the `run` command and the tests; knows nothing of printing.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::case::Case;
use crate::command::pool::run_planned;
use crate::exec::ExecError;

// What a run is made of, re-exported so that a run's callers find it in one place: the
// pipeline of one case, the pool that runs many, and the report they make.
pub use crate::command::pipeline::{
    Executed, MIN_TIMEOUT_MS, RunConfig, check_case, execute_case, judge_labelled, nproc_limit, probe_timeout,
    timeout_probe_case,
};
pub use crate::command::pool::{PIPELINE_DEPTH, Progress, interruption, run_cases, start_executors, thread_note};
pub use crate::report::run_report::{FailedCase, Interruption, RunReport};

/// The deterministic stream of cases for `seed`, as generated outside a throwaway guest.
pub fn cases_for_seed(seed: u64) -> impl Iterator<Item = Case> {
    cases_for_seed_in(seed, None)
}

/// The deterministic stream of cases for `seed` where the environment's guest facts are
/// `guest` (`Environment::guest`): guest-only setups only in a throwaway guest
/// (`generate::guest`); with `None` the same stream as [`cases_for_seed`].
pub fn cases_for_seed_in(seed: u64, guest: Option<&crate::env::guest::GuestKernel>) -> impl Iterator<Item = Case> {
    let mut bytes = [0u8; 32];
    let mut x = seed;
    for chunk in bytes.chunks_mut(8) {
        // splitmix64, to spread a u64 over the 32-byte ChaCha seed.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let strategy = crate::generate::strategy::case_in(crate::generate::guest::GuestGen::from_guest(guest));
    std::iter::from_fn(move || strategy.new_tree(&mut runner).ok().map(|t| t.current()))
}

/// Runs `config.cases` generated cases.
///
/// # Errors
/// As [`run_cases`].
pub fn run(config: &RunConfig, progress: impl Fn(Progress) + Sync) -> Result<RunReport, ExecError> {
    // Whether guest-only setups are drawn: the executors' own decision (`env::guest::decide`),
    // made here with the same inputs before they start (they inherit this process's environment
    // and kernel). Each executor decides again and refuses a guest-only case where it is not in
    // a guest, and the model skips such a case there.
    let guest = crate::exec::executor::guest_cases::detect();
    let mut cases = Vec::with_capacity(config.cases.min(1 << 20) as usize);
    for case in cases_for_seed_in(config.seed, guest.as_ref()).take(config.cases as usize) {
        // Generating many cases takes seconds: a stop request is honoured here too.
        if cases.len() % 256 == 0 && crate::command::interrupt::requested().is_some() {
            break;
        }
        cases.push(case);
    }
    run_planned(config, &cases, config.cases, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cases() {
        let a: Vec<Case> = cases_for_seed(42).take(50).collect();
        let b: Vec<Case> = cases_for_seed(42).take(50).collect();
        let c: Vec<Case> = cases_for_seed(43).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
