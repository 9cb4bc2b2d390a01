//! Mutations for the coverage-guided search, in the manner of syzkaller's:
//! flip one namespace or sharing bit of an unshare step, replace, insert or
//! remove a step, replace the setup, or take another kept case's setup. New
//! steps and setups come from the `arbitrary` generator on random bytes, so
//! they carry its weights. Pure: the randomness is a seeded xorshift.

use arbitrary::{Arbitrary, Unstructured};

use crate::abi::flags::{RawFlags, bits};
use crate::case::{Case, MAX_STEPS, Setup, Step};

/// A small deterministic random source (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next word.
    pub fn next_word(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_word() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_word() as u8).collect()
    }
}

/// The bits a flip picks from: every flag unshare knows, and now and then any bit.
const FLIP_BITS: &[u64] = &[
    bits::NEWTIME,
    bits::VM,
    bits::FS,
    bits::FILES,
    bits::SIGHAND,
    bits::THREAD,
    bits::NEWNS,
    bits::SYSVSEM,
    bits::NEWCGROUP,
    bits::NEWUTS,
    bits::NEWIPC,
    bits::NEWUSER,
    bits::NEWPID,
    bits::NEWNET,
];

fn new_step(rng: &mut Rng) -> Step {
    let bytes = rng.bytes(64);
    Step::arbitrary(&mut Unstructured::new(&bytes)).unwrap_or(Step::Unshare(RawFlags(0)))
}

/// One mutation of `case`; `pool` holds other kept cases (for the setup splice).
pub fn mutate(case: &Case, pool: &[Case], rng: &mut Rng) -> Case {
    for _ in 0..16 {
        let mut c = case.clone();
        match rng.below(6) {
            0 => {
                let unshares: Vec<usize> =
                    c.steps.iter().enumerate().filter(|(_, s)| matches!(s, Step::Unshare(_))).map(|(i, _)| i).collect();
                if unshares.is_empty() {
                    continue;
                }
                let i = unshares[rng.below(unshares.len())];
                let bit = if rng.below(8) == 0 { 1u64 << rng.below(64) } else { FLIP_BITS[rng.below(FLIP_BITS.len())] };
                if let Step::Unshare(f) = &mut c.steps[i] {
                    *f = RawFlags(f.0 ^ bit);
                }
            }
            1 => {
                let i = rng.below(c.steps.len());
                c.steps[i] = new_step(rng);
            }
            2 if c.steps.len() < MAX_STEPS => {
                let i = rng.below(c.steps.len() + 1);
                let s = new_step(rng);
                c.steps.insert(i, s);
            }
            3 if c.steps.len() > 1 => {
                let i = rng.below(c.steps.len());
                c.steps.remove(i);
            }
            4 => {
                let bytes = rng.bytes(128);
                if let Ok(s) = Setup::arbitrary(&mut Unstructured::new(&bytes)) {
                    c.setup = s;
                }
            }
            5 if !pool.is_empty() => c.setup = pool[rng.below(pool.len())].setup.clone(),
            _ => continue,
        }
        let c = crate::generate::neutralize(c);
        if c != *case && c.validate().is_ok() {
            return c;
        }
    }
    crate::generate::neutralize(case.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_valid_mostly_different_and_deterministic() {
        let base = Case::unshare(&[bits::NEWUTS]);
        let mut rng = Rng::new(7);
        let mut changed = 0;
        for _ in 0..200 {
            let m = mutate(&base, std::slice::from_ref(&base), &mut rng);
            assert!(m.validate().is_ok(), "{m}");
            changed += usize::from(m != base);
        }
        assert!(changed > 150, "{changed}");
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        assert_eq!(mutate(&base, &[], &mut a), mutate(&base, &[], &mut b));
    }
}
