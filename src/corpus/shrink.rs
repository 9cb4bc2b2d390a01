//! Shrinking: greedy reduction of a failing case to a smaller one that still
//! fails the same way. Pure: the caller supplies the "still fails" predicate
//! (for real use it re-runs the case on the kernel, see [`crate::command::save`]).
//!
//! Each candidate is smaller than the case it comes from in one measure and
//! no larger in any other: fewer steps; a simpler setup (the default setup
//! with the same privilege, privilege earlier in [`Privilege::ALL`] with
//! `root` first, fewer threads, siblings or fds, no vfork, chroot, zero limit,
//! foreign pid ns, semaphore or cwd/umask, shallower user-ns or pid-ns
//! nesting); fewer flag bits. The first candidate that still fails is taken
//! and the search restarts from it, so the loop ends; a budget bounds the
//! number of predicate calls.
//!
//! Why by hand rather than proptest's `ValueTree::simplify`: a corpus case
//! can come from anywhere (a file, a fuzzer, a generator that changed since),
//! so there may be no value tree for it; reductions on the [`Case`] itself
//! work for every origin. New setup fields or step kinds get a reduction here.

use std::collections::HashSet;

use crate::abi::flags::RawFlags;
use crate::case::{Case, Privilege, Setup, Step};

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
    Privilege::ALL.iter().position(|q| *q == p).unwrap_or(Privilege::ALL.len())
}

/// The flag word written in an unshare step (either entry); `None` for other step kinds.
pub fn unshare_word(step: &Step) -> Option<u64> {
    match step {
        Step::Unshare(RawFlags(word)) | Step::UnshareInt80(RawFlags(word)) => Some(*word),
        _ => None,
    }
}

/// The same unshare step, through the same entry, with another word.
fn with_word(step: &Step, word: u64) -> Step {
    match step {
        Step::UnshareInt80(_) => Step::UnshareInt80(RawFlags(word)),
        _ => Step::Unshare(RawFlags(word)),
    }
}

fn single_bits(word: u64) -> impl Iterator<Item = u64> {
    (0..64).map(|b| 1u64 << b).filter(move |b| word & b != 0)
}

/// `None`, then halfway and one less, for a nesting depth.
fn shallower(d: Option<u8>) -> Vec<Option<u8>> {
    match d {
        None => vec![],
        Some(d) if d > 1 => vec![None, Some(d / 2), Some(d - 1)],
        Some(_) => vec![None],
    }
}

/// Every simpler setup one reduction away from `s`, most aggressive first.
fn setup_reductions(s: &Setup) -> Vec<Setup> {
    let mut out = vec![Setup::with_privilege(s.privilege)];
    let mut with = |f: &dyn Fn(&mut Setup)| {
        let mut t = s.clone();
        f(&mut t);
        out.push(t);
    };
    for p in Privilege::ALL.iter().take(privilege_rank(s.privilege)) {
        with(&|t| t.privilege = *p);
    }
    for i in 0..s.siblings.len() {
        with(&|t| {
            t.siblings.remove(i);
        });
    }
    if s.threads > 0 {
        with(&|t| t.threads = 0);
        with(&|t| t.threads -= 1);
    }
    if s.fds > 0 {
        with(&|t| t.fds = 0);
        with(&|t| t.fds -= 1);
    }
    with(&|t| t.vfork = false);
    with(&|t| t.chroot = None);
    with(&|t| t.limit_zero = None);
    with(&|t| t.foreign_pidns = false);
    with(&|t| (t.sem_undo, t.sem_clamp) = (false, false));
    with(&|t| t.cwd_umask = false);
    with(&|t| t.high_fd = false);
    with(&|t| t.shm = None);
    with(&|t| t.sem_clamp = false);
    with(&|t| t.nsfs_bind = false);
    with(&|t| t.shared_mount = false);
    with(&|t| (t.inside_witness, t.shared_mount) = (false, false));
    for d in shallower(s.userns_depth) {
        with(&|t| t.userns_depth = d);
    }
    for l in shallower(s.pidns_level) {
        with(&|t| t.pidns_level = l);
    }
    out.retain(|t| t != s);
    out
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
    for setup in setup_reductions(&case.setup) {
        out.push(Case { setup, steps: case.steps.clone() });
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
            c.steps[i] = with_word(step, w);
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
pub fn shrink<E>(case: &Case, budget: usize, mut fails: impl FnMut(&Case) -> Result<bool, E>) -> Result<Shrunk, E> {
    let mut current = case.clone();
    let (mut runs, mut accepted) = (0, 0);
    'search: loop {
        for candidate in candidates(&current) {
            if runs >= budget {
                return Ok(Shrunk { case: current, runs, accepted, budget_exhausted: true });
            }
            runs += 1;
            if fails(&candidate)? {
                current = candidate;
                accepted += 1;
                continue 'search;
            }
        }
        return Ok(Shrunk { case: current, runs, accepted, budget_exhausted: false });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Chroot, NsType, Sibling};

    /// Every measure a reduction may lower.
    fn measure(c: &Case) -> [usize; 13] {
        let s = &c.setup;
        let bits = c.steps.iter().map(|s| unshare_word(s).map_or(0, u64::count_ones) as usize).sum();
        [
            c.steps.len(),
            bits,
            privilege_rank(s.privilege),
            s.threads.into(),
            s.siblings.len(),
            s.fds.into(),
            s.vfork.into(),
            s.chroot.is_some().into(),
            s.limit_zero.is_some().into(),
            s.foreign_pidns.into(),
            usize::from(s.sem_undo) + usize::from(s.cwd_umask),
            s.userns_depth.map_or(0, |d| usize::from(d) + 1),
            s.pidns_level.map_or(0, |d| usize::from(d) + 1),
        ]
    }

    fn big() -> Case {
        let mut c = Case::unshare(&[0x2000_0000 | 0x2_0000, 0x200 | (1 << 40) | (1 << 33), u64::MAX, 0]);
        c.setup.privilege = Privilege::Nobody;
        c.setup.threads = 2;
        c
    }

    fn everything() -> Case {
        let mut c = big();
        c.steps[3] = Step::Fork;
        let s = &mut c.setup;
        s.siblings = vec![Sibling::Files, Sibling::Vm, Sibling::Fs];
        s.fds = 3;
        s.vfork = true;
        s.chroot = Some(Chroot::Subdir);
        s.limit_zero = Some(NsType::Uts);
        s.foreign_pidns = true;
        s.sem_undo = true;
        s.cwd_umask = true;
        s.userns_depth = Some(5);
        s.pidns_level = Some(3);
        c
    }

    #[test]
    fn every_candidate_is_valid_and_smaller() {
        for c in [big(), everything()] {
            assert!(c.validate().is_ok());
            let cands = candidates(&c);
            assert!(cands.len() > 20);
            let b = measure(&c);
            for cand in cands {
                assert!(cand.validate().is_ok(), "{cand}");
                let a = measure(&cand);
                assert!(a.iter().zip(&b).all(|(x, y)| x <= y), "{cand} is larger than {c} somewhere");
                assert!(a != b, "{cand} is not smaller than {c}");
            }
        }
    }

    #[test]
    fn setups_shrink_to_what_the_failure_needs() {
        let needs_files_sibling_and_fds = |c: &Case| -> Result<bool, ()> {
            Ok(c.setup.siblings.contains(&Sibling::Files) && c.setup.fds > 0 && !c.steps.is_empty())
        };
        let got = shrink(&everything(), 10_000, needs_files_sibling_and_fds).unwrap();
        let mut want = Case::unshare(&[0]);
        want.setup.siblings = vec![Sibling::Files];
        want.setup.fds = 1;
        assert_eq!(got.case, want);
    }

    #[test]
    fn shrinks_an_unknown_bit_failure_to_one_bit_one_step_root() {
        let has_high = |c: &Case| -> Result<bool, ()> {
            Ok(c.steps.iter().any(|s| unshare_word(s).is_some_and(|w| w >> 32 != 0)))
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
            Ok(c.setup.threads > 0 && c.steps.iter().any(|s| unshare_word(s).is_some_and(|w| w & 0x1000_0000 != 0)))
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
