//! proptest strategies for [`Case`], with the weights of [`super::weights`].

use proptest::prelude::*;

use crate::case::{Case, MAX_STEPS, Privilege, Setup, Step};
use crate::flags::RawFlags;

use super::weights::{self, INTERESTING_INVALID_BITS};

fn subset() -> impl Strategy<Value = u64> {
    let bits = weights::valid_bits();
    prop::collection::vec(prop::sample::select(bits), 1..=weights::SUBSET_MAX_DRAWS)
        .prop_map(|v| v.into_iter().fold(0, |a, b| a | b))
}

/// A flag word: mostly valid subsets, sometimes 0, sometimes a neighbouring invalid bit, 1% random.
pub fn flags() -> impl Strategy<Value = RawFlags> {
    prop_oneof![
        weights::FLAGS_SUBSET => subset(),
        weights::FLAGS_ZERO => Just(0u64),
        weights::FLAGS_NEIGHBOUR => (subset(), prop::sample::select(INTERESTING_INVALID_BITS))
            .prop_map(|(s, b)| s | (1u64 << b)),
        weights::FLAGS_RANDOM => any::<u64>(),
    ]
    .prop_map(RawFlags)
}

/// A privilege, uniformly.
pub fn privilege() -> impl Strategy<Value = Privilege> {
    prop::sample::select(Privilege::ALL.to_vec())
}

/// A setup.
pub fn setup() -> impl Strategy<Value = Setup> {
    let [w0, w1, w2] = weights::THREAD_WEIGHTS;
    let threads = prop_oneof![w0 => Just(0u8), w1 => Just(1u8), w2 => Just(2u8)];
    (privilege(), threads).prop_map(|(privilege, threads)| Setup { privilege, threads })
}

/// A step.
pub fn step() -> impl Strategy<Value = Step> {
    flags().prop_map(Step::Unshare)
}

/// A whole case: a setup and 1..=4 steps.
pub fn case() -> impl Strategy<Value = Case> {
    (setup(), prop::collection::vec(step(), 1..=MAX_STEPS))
        .prop_map(|(setup, steps)| super::neutralize(Case { setup, steps }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    #[test]
    fn distribution_follows_the_weights() {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        );
        let s = flags();
        let n = 20_000;
        let (mut valid, mut zero, mut high) = (0, 0, 0);
        for _ in 0..n {
            let f = s.new_tree(&mut runner).unwrap().current();
            if f.0 == 0 {
                zero += 1;
            } else if f.unknown_to_unshare() == 0 {
                valid += 1;
            }
            if f.0 >> 32 != 0 {
                high += 1;
            }
        }
        assert!(
            valid > n * 70 / 100 && valid < n * 90 / 100,
            "valid {valid}"
        );
        assert!(zero > n * 3 / 100 && zero < n * 8 / 100, "zero {zero}");
        assert!(high > 0, "no high bits in {n} words");
    }
}
