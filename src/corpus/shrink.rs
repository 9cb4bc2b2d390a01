//! Shrinking: greedy reduction of a failing case to a smaller one that still
//! fails the same way. Pure: the caller supplies the "still fails" predicate
//! (for real use it re-runs the case on the kernel, see [`super::save`]).
//!
//! Each candidate is strictly smaller than the case it comes from, in this
//! order: fewer steps, then a simpler setup (privilege earlier in
//! [`Privilege::ALL`], `root` first; fewer threads), then fewer flag bits.
//! The first candidate that still fails is taken and the search restarts
//! from it, so the loop ends; a budget bounds the number of predicate calls.
//!
//! Why by hand rather than proptest's `ValueTree::simplify`: a corpus case
//! can come from anywhere (a file, a fuzzer, a generator that changed since),
//! so there may be no value tree for it; reductions on the [`Case`] itself
//! work for every origin. New setup fields or step kinds get a reduction here.

use std::collections::HashSet;

use crate::case::{Case, Privilege, Step};
use crate::flags::RawFlags;

/// The result of a shrink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    /// The smallest failing case found.
    pub case: Case,
    /// Predicate calls made.
    pub runs: usize,
    /// Reductions accepted.
    pub accepted: usize,
    /// True if the budget ran out before no reduction was left.
    pub budget_exhausted: bool,
}

fn privilege_rank(p: Privilege) -> usize {
    Privilege::ALL
        .iter()
        .position(|q| *q == p)
        .unwrap_or(Privilege::ALL.len())
}

/// The flag word of an unshare step; `None` for other step kinds.
#[allow(
    irrefutable_let_patterns,
    reason = "Step gets more kinds (fork, write-maps, ...); only unshare words are bit-shrunk"
)]
pub fn unshare_word(step: &Step) -> Option<u64> {
    if let Step::Unshare(RawFlags(word)) = step {
        Some(*word)
    } else {
        None
    }
}

fn single_bits(word: u64) -> impl Iterator<Item = u64> {
    (0..64).map(|b| 1u64 << b).filter(move |b| word & b != 0)
}

/// Every one-step reduction of `case`, most aggressive first. Each is strictly
/// smaller than `case` and still valid (1..=4 steps).
pub fn candidates(case: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    let n = case.steps.len();
    if n > 2 {
        for i in 0..n {
            let mut c = case.clone();
            c.steps = case.steps[i..=i].to_vec();
            out.push(c);
        }
    }
    if n > 1 {
        for i in (0..n).rev() {
            let mut c = case.clone();
            c.steps.remove(i);
            out.push(c);
        }
    }
    let rank = privilege_rank(case.setup.privilege);
    for p in Privilege::ALL.iter().take(rank) {
        let mut c = case.clone();
        c.setup.privilege = *p;
        out.push(c);
    }
    if case.setup.threads > 0 {
        let mut c = case.clone();
        c.setup.threads = 0;
        out.push(c);
        if case.setup.threads > 1 {
            let mut c = case.clone();
            c.setup.threads -= 1;
            out.push(c);
        }
    }
    for (i, step) in case.steps.iter().enumerate() {
        let Some(word) = unshare_word(step).filter(|w| *w != 0) else {
            continue;
        };
        let mut words = vec![0];
        if word.count_ones() > 1 {
            words.extend(single_bits(word));
            words.extend(single_bits(word).map(|b| word & !b));
        }
        for w in words {
            let mut c = case.clone();
            c.steps[i] = Step::Unshare(RawFlags(w));
            out.push(c);
        }
    }
    let mut seen = HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    out
}

/// Shrinks `case` while `fails` says the candidate still fails, calling it at most
/// `budget` times. `case` itself is assumed to fail and is not re-checked.
///
/// # Errors
/// The predicate's error, as soon as it gives one.
pub fn shrink<E>(
    case: &Case,
    budget: usize,
    mut fails: impl FnMut(&Case) -> Result<bool, E>,
) -> Result<Shrunk, E> {
    let mut current = case.clone();
    let (mut runs, mut accepted) = (0, 0);
    'search: loop {
        for candidate in candidates(&current) {
            if runs >= budget {
                return Ok(Shrunk {
                    case: current,
                    runs,
                    accepted,
                    budget_exhausted: true,
                });
            }
            runs += 1;
            if fails(&candidate)? {
                current = candidate;
                accepted += 1;
                continue 'search;
            }
        }
        return Ok(Shrunk {
            case: current,
            runs,
            accepted,
            budget_exhausted: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Setup;

    fn size(c: &Case) -> (usize, usize, u8, u32) {
        let bits = c
            .steps
            .iter()
            .map(|s| unshare_word(s).map_or(0, u64::count_ones))
            .sum();
        (
            c.steps.len(),
            privilege_rank(c.setup.privilege),
            c.setup.threads,
            bits,
        )
    }

    fn big() -> Case {
        let mut c = Case::unshare(&[
            0x2000_0000 | 0x2_0000,
            0x200 | (1 << 40) | (1 << 33),
            u64::MAX,
            0,
        ]);
        c.setup.privilege = Privilege::Nobody;
        c.setup.threads = 2;
        c
    }

    #[test]
    fn every_candidate_is_valid_and_smaller() {
        let c = big();
        let cands = candidates(&c);
        assert!(cands.len() > 20);
        for cand in cands {
            assert!(cand.validate().is_ok(), "{cand}");
            let (a, b) = (size(&cand), size(&c));
            assert!(
                a.0 < b.0 || (a.0 == b.0 && (a.1 < b.1 || a.2 < b.2 || a.3 < b.3)),
                "{cand} is not smaller than {c}"
            );
            assert!(a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 || a.0 < b.0);
        }
    }

    #[test]
    fn shrinks_an_unknown_bit_failure_to_one_bit_one_step_root() {
        let has_high = |c: &Case| -> Result<bool, ()> {
            Ok(c.steps
                .iter()
                .any(|s| unshare_word(s).is_some_and(|w| w >> 32 != 0)))
        };
        let got = shrink(&big(), 10_000, has_high).unwrap();
        assert!(!got.budget_exhausted);
        assert_eq!(got.case.steps.len(), 1);
        assert_eq!(got.case.setup, Setup::default());
        let w = unshare_word(&got.case.steps[0]).unwrap();
        assert_eq!(w.count_ones(), 1);
        assert!(w >> 32 != 0);
    }

    #[test]
    fn a_condition_needing_threads_keeps_one_thread() {
        let needs_thread_and_newuser = |c: &Case| -> Result<bool, ()> {
            Ok(c.setup.threads > 0
                && c.steps
                    .iter()
                    .any(|s| unshare_word(s).is_some_and(|w| w & 0x1000_0000 != 0)))
        };
        let mut c = big();
        c.steps[3] = Step::Unshare(RawFlags(0x1000_0000 | 0x400 | 0x800_0000));
        let got = shrink(&c, 10_000, needs_thread_and_newuser).unwrap();
        assert_eq!(got.case.setup.threads, 1);
        assert_eq!(got.case.setup.privilege, Privilege::Root);
        assert_eq!(got.case.steps, vec![Step::Unshare(RawFlags(0x1000_0000))]);
    }

    #[test]
    fn the_budget_is_respected_and_errors_stop_the_search() {
        let mut calls = 0;
        let got = shrink(&big(), 5, |_| -> Result<bool, ()> {
            calls += 1;
            Ok(false)
        })
        .unwrap();
        assert_eq!((got.runs, calls), (5, 5));
        assert!(got.budget_exhausted);
        assert_eq!(got.case, big());
        let err = shrink(&big(), 100, |_| Err::<bool, &str>("executor died"));
        assert_eq!(err, Err("executor died"));
    }
}
