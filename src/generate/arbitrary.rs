//! `arbitrary::Arbitrary` for [`Case`] (cargo-fuzz), with the weights of
//! [`super::weights`], so fuzzing and property tests explore the same space.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::case::{Case, MAX_STEPS, Privilege, Setup, Step};
use crate::flags::RawFlags;

use super::weights::{self, FlagClass, INTERESTING_INVALID_BITS};

fn subset(u: &mut Unstructured) -> Result<u64> {
    let bits = weights::valid_bits();
    let draws = u.int_in_range(1..=weights::SUBSET_MAX_DRAWS)?;
    let mut f = 0;
    for _ in 0..draws {
        f |= *u.choose(&bits)?;
    }
    Ok(f)
}

impl<'a> Arbitrary<'a> for RawFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let word = match weights::flag_class(u.int_in_range(0..=99)?) {
            FlagClass::Subset => subset(u)?,
            FlagClass::Zero => 0,
            FlagClass::Neighbour => subset(u)? | (1u64 << *u.choose(INTERESTING_INVALID_BITS)?),
            FlagClass::Random => u64::arbitrary(u)?,
        };
        Ok(RawFlags(word))
    }
}

impl<'a> Arbitrary<'a> for Privilege {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(*u.choose(&Privilege::ALL)?)
    }
}

impl<'a> Arbitrary<'a> for Setup {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let privilege = Privilege::arbitrary(u)?;
        let threads = weights::thread_count(u.int_in_range(0..=99)?);
        Ok(Setup { privilege, threads })
    }
}

impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Step::Unshare(RawFlags::arbitrary(u)?))
    }
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let setup = Setup::arbitrary(u)?;
        let n = u.int_in_range(1..=MAX_STEPS)?;
        let mut steps = Vec::with_capacity(n);
        for _ in 0..n {
            steps.push(Step::arbitrary(u)?);
        }
        Ok(super::neutralize(Case { setup, steps }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_give_a_valid_case() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let mut u = Unstructured::new(&bytes);
            if let Ok(case) = Case::arbitrary(&mut u) {
                assert!(case.validate().is_ok(), "{case}");
            }
        }
    }
}
