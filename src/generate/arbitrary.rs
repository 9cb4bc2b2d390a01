//! `arbitrary::Arbitrary` for [`Case`] (cargo-fuzz), with the weights of
//! [`super::weights`], so fuzzing and property tests explore the same space.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::abi::flags::RawFlags;
use crate::case::{Case, Chroot, MAX_STEPS, NsType, Privilege, Setup, Shm, Sibling, Step};

use super::weights::{self, FlagClass, INTERESTING_INVALID_BITS, setup as ws, steps as wst};

fn subset(u: &mut Unstructured) -> Result<u64> {
    let bits = weights::valid_bits();
    let draws = weights::subset_draws(roll(u)?);
    let mut f = 0;
    for _ in 0..draws {
        f |= *u.choose(&bits)?;
    }
    Ok(f)
}

fn draw(u: &mut Unstructured, pool: &[u64], min: usize, max: usize) -> Result<u64> {
    let draws = u.int_in_range(min..=max)?;
    let mut f = 0;
    for _ in 0..draws {
        f |= *u.choose(pool)?;
    }
    Ok(f)
}

/// A clone3 flag word with the weights of [`weights::clone3`].
fn clone3_flags(u: &mut Unstructured) -> Result<RawFlags> {
    use weights::clone3 as w;
    let valid = weights::clone3_valid_bits();
    let ns = weights::namespace_bits();
    let word = match pick(u, &[w::SUBSET, w::SHAPED, w::ZERO, w::NEIGHBOUR, w::RANDOM], &[0u8, 1, 2, 3, 4])? {
        0 => draw(u, &valid, 1, weights::SUBSET_MAX_DRAWS)?,
        1 => *u.choose(w::SHAPES)? | draw(u, &ns, 0, w::SHAPE_MAX_NS_DRAWS)?,
        2 => 0,
        3 => draw(u, &valid, 1, weights::SUBSET_MAX_DRAWS)? | (1u64 << *u.choose(w::INVALID_BITS)?),
        _ => u64::arbitrary(u)?,
    };
    Ok(RawFlags(word))
}

/// A differential pair with the weights of [`weights::DIFFERENTIAL_PAIR`] and friends.
fn differential_pair(u: &mut Unstructured) -> Result<Vec<Step>> {
    let ns = draw(u, &weights::namespace_bits(), 1, weights::PAIR_MAX_DRAWS)?;
    let extra = if chance(u, weights::PAIR_EXTRA)? { *u.choose(weights::PAIR_EXTRAS)? } else { 0 };
    let (c, un) = (Step::Clone3(RawFlags(ns | extra)), Step::Unshare(RawFlags(ns)));
    Ok(if chance(u, weights::PAIR_CLONE3_FIRST)? { vec![c, un] } else { vec![un, c] })
}

fn roll(u: &mut Unstructured) -> Result<u32> {
    u.int_in_range(0..=99)
}

fn chance(u: &mut Unstructured, percent: u32) -> Result<bool> {
    Ok(roll(u)? < percent)
}

fn pick<T: Copy>(u: &mut Unstructured, weights: &[u32], values: &[T]) -> Result<T> {
    let mut r = roll(u)?;
    for (w, v) in weights.iter().zip(values) {
        if r < *w {
            return Ok(*v);
        }
        r -= w;
    }
    Ok(values[values.len() - 1])
}

impl<'a> Arbitrary<'a> for RawFlags {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let word = match weights::flag_class(roll(u)?) {
            FlagClass::Subset => subset(u)?,
            FlagClass::Zero => 0,
            FlagClass::Wide => {
                let mut f = crate::abi::flags::UNSHARE_VALID_MASK;
                for _ in 0..u.int_in_range(0..=weights::WIDE_MAX_DROPPED)? {
                    f &= !*u.choose(&weights::valid_bits())?;
                }
                f
            }
            FlagClass::Neighbour => {
                let base = if chance(u, weights::NEIGHBOUR_ALONE)? { 0 } else { subset(u)? };
                base | (1u64 << *u.choose(INTERESTING_INVALID_BITS)?)
            }
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
        let threads = weights::thread_count(roll(u)?);
        let pidns_level = if chance(u, ws::PIDNS_LEVEL)? { Some(*u.choose(ws::PIDNS_LEVELS)?) } else { None };
        let userns_depth = if chance(u, ws::USERNS_DEPTH)? { Some(*u.choose(ws::USERNS_DEPTHS)?) } else { None };
        let limit_zero = if chance(u, ws::LIMIT_ZERO)? { Some(*u.choose(&NsType::ALL)?) } else { None };
        let foreign_pidns = chance(u, ws::FOREIGN_PIDNS)?;
        let chroot = pick(
            u,
            &[100 - ws::CHROOT_SUBDIR - ws::CHROOT_ROOT, ws::CHROOT_SUBDIR, ws::CHROOT_ROOT],
            &[None, Some(Chroot::Subdir), Some(Chroot::Root)],
        )?;
        let fds = if chance(u, ws::FDS)? { u.int_in_range(1..=3)? } else { 0 };
        let sem_undo = chance(u, ws::SEM_UNDO)?;
        let cwd_umask = chance(u, ws::CWD_UMASK)?;
        let n = pick(u, &ws::SIBLING_COUNTS, &[0usize, 1, 2, 3])?;
        let mut siblings = Vec::with_capacity(n);
        for _ in 0..n {
            siblings.push(*u.choose(&Sibling::ALL)?);
        }
        let vfork = chance(u, ws::VFORK)?;
        let high_fd = chance(u, ws::HIGH_FD)?;
        let shm = pick(
            u,
            &[100 - ws::SHM_ATTACHED - ws::SHM_RMID_FORCED, ws::SHM_ATTACHED, ws::SHM_RMID_FORCED],
            &[None, Some(Shm::Attached), Some(Shm::RmidForced)],
        )?;
        // Only with the semaphore it decrements.
        let sem_clamp = sem_undo && chance(u, ws::SEM_CLAMP)?;
        let nsfs_bind = chance(u, ws::NSFS_BIND)?;
        let inside_witness = chance(u, ws::INSIDE_WITNESS)?;
        // Only with the witness that looks for the caller's mount.
        let shared_mount = inside_witness && chance(u, ws::SHARED_MOUNT)?;
        Ok(Setup {
            privilege,
            threads,
            pidns_level,
            userns_depth,
            limit_zero,
            foreign_pidns,
            chroot,
            fds,
            sem_undo,
            cwd_umask,
            siblings,
            vfork,
            high_fd,
            shm,
            sem_clamp,
            nsfs_bind,
            inside_witness,
            shared_mount,
            // Guest-only fields (case::guest) are never generated: they change the whole kernel.
            ..Setup::default()
        })
    }
}

impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let kinds = [
            wst::UNSHARE,
            wst::CLONE3,
            wst::FORK,
            wst::FORK_EXIT,
            wst::WRITE_MAPS,
            wst::DROP_SYS_ADMIN,
            wst::CHROOT,
            wst::SPAWN_THREAD,
            wst::UNSHARE_INT80,
            weights::setns::STEP,
            wst::CAPS,
            wst::THREAD_CALL,
        ];
        Ok(match pick(u, &kinds, &[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])? {
            0 => Step::Unshare(RawFlags::arbitrary(u)?),
            1 => Step::Clone3(clone3_flags(u)?),
            2 => Step::Fork,
            3 => Step::ForkExit,
            4 => Step::WriteMaps,
            5 => Step::DropSysAdmin,
            6 => Step::Chroot(if chance(u, 67)? { Chroot::Subdir } else { Chroot::Root }),
            7 => Step::SpawnThread,
            9 => Step::Setns(setns_step(u)?),
            10 => Step::Caps(wst::caps_op(u.int_in_range(0..=wst::CAPS_OP_TOTAL - 1)?)),
            11 => Step::ThreadCall(RawFlags::arbitrary(u)?),
            _ => Step::UnshareInt80(RawFlags::arbitrary(u)?),
        })
    }
}

/// A setns step: any target, its nstype as [`weights::setns::nstype`] draws it.
fn setns_step(u: &mut Unstructured) -> Result<crate::case::SetnsStep> {
    let target = *u.choose(&crate::case::SetnsTarget::ALL)?;
    let roll = u.int_in_range(0..=99)?;
    let ns = *u.choose(&weights::namespace_bits())?;
    let random = u32::arbitrary(u)?;
    Ok(crate::case::SetnsStep { target, nstype: weights::setns::nstype(target, roll, ns, random) })
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut setup = Setup::arbitrary(u)?;
        let mut steps = ordinary_steps(u)?;
        // Drawn after the ordinary steps, so that the bytes before them mean what they meant.
        if chance(u, weights::set_tid::SCENARIO)? {
            steps = weights::set_tid::scenario(set_tid_draw(u)?);
        }
        // Then the id map scenario (as in `strategy::case`), which replaces the steps.
        if chance(u, super::idmap::SCENARIO)? {
            let prefix = u.int_in_range(0..=super::idmap::PREFIXES - 1)?;
            let ops = <[u8; 3]>::arbitrary(u)?;
            steps = super::idmap::scenario(prefix, ops, u.int_in_range(1..=3)?, &mut setup);
        }
        // The caps scenario is drawn last, so the bytes before it keep their meaning.
        let (roll, choice) = (roll(u)?, u.int_in_range(0..=weights::caps::CHOICES - 1)?);
        let ns = *u.choose(&weights::namespace_bits())?;
        let steps = weights::caps::from_roll(roll, choice, ns).unwrap_or(steps);
        // The propagation scenario last of all (as in `strategy::case`).
        let (p_roll, p_choice) = (self::roll(u)?, u.int_in_range(0..=weights::propagation::CHOICES - 1)?);
        let p_ns = *u.choose(&weights::namespace_bits())?;
        let steps = weights::propagation::from_roll(p_roll, p_choice, p_ns, &mut setup).unwrap_or(steps);
        Ok(super::neutralize(Case { setup, steps }))
    }
}

/// The draws of a set_tid scenario ([`weights::set_tid::scenario`]).
fn set_tid_draw(u: &mut Unstructured) -> Result<weights::set_tid::Draw> {
    Ok(weights::set_tid::Draw {
        prefix: u.int_in_range(0..=weights::set_tid::PREFIXES - 1)?,
        flags_roll: u.int_in_range(0..=99)?,
        ns: *u.choose(&weights::namespace_bits())?,
        tids: [u32::arbitrary(u)?, u32::arbitrary(u)?],
        two: bool::arbitrary(u)?,
        size_roll: u.int_in_range(0..=99)?,
    })
}

/// The steps of a case before the caps scenario: a differential pair, a setns scenario, or
/// 1..=[`MAX_STEPS`] steps of the plain mix.
fn ordinary_steps(u: &mut Unstructured) -> Result<Vec<Step>> {
    if chance(u, weights::DIFFERENTIAL_PAIR)? {
        return differential_pair(u);
    }
    if chance(u, weights::setns::SCENARIO)? {
        let target = *u.choose(&crate::case::SetnsTarget::ALL)?;
        let choice = u.int_in_range(0..=weights::setns::PREFIXES - 1)?;
        return Ok(weights::setns::scenario(target, choice));
    }
    let n = u.int_in_range(1..=MAX_STEPS)?;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        steps.push(Step::arbitrary(u)?);
    }
    Ok(steps)
}

/// The guest-only part of a case in a throwaway guest ([`super::guest`]), with the weights of
/// [`weights::guest`] (as [`super::strategy::guest_shape`]).
pub fn guest_shape(u: &mut Unstructured, g: super::guest::GuestGen) -> Result<super::guest::GuestShape> {
    use super::guest::GuestShape;
    use weights::guest as wg;
    Ok(match pick(u, &g.weights(), &[0u8, 1, 2])? {
        0 => GuestShape::Ordinary,
        1 => GuestShape::NrOpen {
            fd_at: *u.choose(wg::FD_ATS)?,
            nr_open: *u.choose(wg::NR_OPENS)?,
            shared: chance(u, wg::NR_OPEN_SHARED)?,
            files_flag: chance(u, wg::NR_OPEN_FILES_FLAG)?,
        },
        _ => GuestShape::FailNth { n: u.int_in_range(1..=wg::FAIL_NTH_MAX)?, last: RawFlags::arbitrary(u)? },
    })
}

/// A whole case for a run whose environment gave `guest` ([`super::guest::GuestGen::from_guest`]):
/// `Case::arbitrary` itself outside a throwaway guest, and in one a case fitted to a drawn
/// [`guest_shape`] (as [`super::strategy::case_in`]).
///
/// # Errors
/// When `u` runs out of data.
pub fn case_in(u: &mut Unstructured, guest: Option<super::guest::GuestGen>) -> Result<Case> {
    let case = Case::arbitrary(u)?;
    match guest {
        None => Ok(case),
        Some(g) => Ok(super::guest::apply(case, &guest_shape(u, g)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes of a 64-bit LCG that continues from `seed` (test inputs without a RNG crate).
    fn pseudo_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (*seed >> 33) as u8
            })
            .collect()
    }

    #[test]
    fn any_bytes_give_a_valid_case() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..300 {
            let bytes = pseudo_bytes(&mut seed, len);
            let mut u = Unstructured::new(&bytes);
            if let Ok(case) = Case::arbitrary(&mut u) {
                assert!(case.validate().is_ok(), "{case}");
            }
        }
    }

    #[test]
    fn set_tid_scenarios_come_from_bytes_too() {
        let mut seed = 0x5e7_71d_u64;
        let mut set_tid = 0;
        for len in 0..3000 {
            let bytes = pseudo_bytes(&mut seed, len % 400);
            let Ok(c) = Case::arbitrary(&mut Unstructured::new(&bytes)) else { continue };
            if c.steps.iter().any(|s| matches!(s, Step::Clone3SetTid(_))) {
                set_tid += 1;
                let json = serde_json::to_string(&c).unwrap();
                assert_eq!(serde_json::from_str::<Case>(&json).unwrap(), c, "{json}");
            }
        }
        assert!((30..300).contains(&set_tid), "{set_tid} set_tid scenarios in 3000 inputs");
    }

    #[test]
    fn caps_scenarios_come_with_their_weight() {
        let (all, n) = (weights::caps::tests::all(), 4000);
        let mut seed = 0x5eed_ca95_u64;
        let got = (0..n)
            .filter(|_| {
                let bytes = pseudo_bytes(&mut seed, 1024);
                Case::arbitrary(&mut Unstructured::new(&bytes)).is_ok_and(|c| all.contains(&c.steps))
            })
            .count();
        weights::caps::tests::assert_share(got, n);
    }

    #[test]
    fn shared_tmpfs_cases_come_with_the_scenario_and_the_witness_weights() {
        let mut seed = 0x5eed_5a4e_u64;
        let n = 4000;
        let got = (0..n)
            .filter(|_| {
                let bytes = pseudo_bytes(&mut seed, 1024);
                Case::arbitrary(&mut Unstructured::new(&bytes)).is_ok_and(|c| c.setup.shared_mount)
            })
            .count();
        let want = n * (weights::propagation::SCENARIO + ws::INSIDE_WITNESS / 2) as usize / 100;
        assert!(got > want * 7 / 10 && got < want * 13 / 10, "{got} of {n} with a shared tmpfs, wanted about {want}");
    }

    #[test]
    fn guest_cases_are_valid_and_guest_only_only_in_a_guest() {
        use crate::generate::guest::GuestGen;
        let mut seed = 0x9e37_79b9_u64;
        let (mut nr_open, mut fail_nth) = (0, 0);
        for len in 0..3000 {
            let bytes = pseudo_bytes(&mut seed, len % 400);
            let host = case_in(&mut Unstructured::new(&bytes), None);
            if let Ok(c) = &host {
                assert!(crate::case::guest::needs(c).is_empty(), "{c}");
                assert_eq!(Some(c), Case::arbitrary(&mut Unstructured::new(&bytes)).ok().as_ref());
            }
            if let Ok(c) = case_in(&mut Unstructured::new(&bytes), Some(GuestGen { fail_nth: true })) {
                assert!(c.validate().is_ok(), "{c}");
                nr_open += usize::from(c.setup.nr_open.is_some());
                fail_nth += usize::from(c.setup.fail_nth.is_some());
            }
        }
        assert!(nr_open > 100 && fail_nth > 100, "nr_open {nr_open}, fail_nth {fail_nth} of 3000");
    }
}
