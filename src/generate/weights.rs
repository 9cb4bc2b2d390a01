//! The weights shared by the proptest strategies and the `arbitrary` impls,
//! following syzkaller's recipe for flag words: mostly subsets of the valid
//! bits, sometimes 0, sometimes a neighbouring (invalid) bit added, about 1
//! in 100 a fully random u64.

use crate::flags::{FLAGS, UNSHARE_VALID_MASK};

/// Out of 100: a subset of the valid bits.
pub const FLAGS_SUBSET: u32 = 80;
/// Out of 100: the word 0.
pub const FLAGS_ZERO: u32 = 5;
/// Out of 100: a subset plus one invalid bit next to a valid one (or a known clone-only bit).
pub const FLAGS_NEIGHBOUR: u32 = 14;
/// Out of 100: any u64, bits 32..63 included.
pub const FLAGS_RANDOM: u32 = 1;

/// How many valid bits a subset draws (with repetition): 1..=this.
pub const SUBSET_MAX_DRAWS: usize = 6;

/// Invalid bits worth trying: CSIGNAL bits, neighbours of valid bits, clone3-only bits,
/// the future UNSHARE_EMPTY_MNTNS bit (20), and the top bit.
pub const INTERESTING_INVALID_BITS: &[u32] =
    &[0, 1, 4, 6, 12, 13, 14, 15, 19, 20, 24, 31, 32, 33, 34, 63];

/// Out of 100 for the number of extra threads 0, 1, 2.
pub const THREAD_WEIGHTS: [u32; 3] = [70, 20, 10];

/// The single valid bits, in table order.
pub fn valid_bits() -> Vec<u64> {
    FLAGS
        .iter()
        .map(|f| f.bit)
        .filter(|b| b & UNSHARE_VALID_MASK != 0)
        .collect()
}

/// Which kind of flag word a roll in 0..100 selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagClass {
    /// A subset of valid bits.
    Subset,
    /// Zero.
    Zero,
    /// Subset plus an interesting invalid bit.
    Neighbour,
    /// Fully random.
    Random,
}

/// Maps a roll in 0..100 to a class with the weights above.
pub fn flag_class(roll: u32) -> FlagClass {
    if roll < FLAGS_SUBSET {
        FlagClass::Subset
    } else if roll < FLAGS_SUBSET + FLAGS_ZERO {
        FlagClass::Zero
    } else if roll < FLAGS_SUBSET + FLAGS_ZERO + FLAGS_NEIGHBOUR {
        FlagClass::Neighbour
    } else {
        FlagClass::Random
    }
}

/// Maps a roll in 0..100 to a thread count with [`THREAD_WEIGHTS`].
pub fn thread_count(roll: u32) -> u8 {
    if roll < THREAD_WEIGHTS[0] {
        0
    } else if roll < THREAD_WEIGHTS[0] + THREAD_WEIGHTS[1] {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_bits_are_invalid() {
        assert_eq!(
            FLAGS_SUBSET + FLAGS_ZERO + FLAGS_NEIGHBOUR + FLAGS_RANDOM,
            100
        );
        assert_eq!(THREAD_WEIGHTS.iter().sum::<u32>(), 100);
        assert_eq!(valid_bits().len(), 14);
        for b in INTERESTING_INVALID_BITS {
            assert_eq!((1u64 << b) & UNSHARE_VALID_MASK, 0, "bit {b}");
        }
        let classes: Vec<FlagClass> = (0..100).map(flag_class).collect();
        assert_eq!(
            classes.iter().filter(|c| **c == FlagClass::Random).count(),
            1
        );
    }
}
