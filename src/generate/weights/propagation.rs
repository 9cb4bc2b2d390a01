//! The propagation scenario (issue 16 class 3, mount propagation): an inside witness with the
//! setup's shared tmpfs (`shared_mount`), and one or two unshares that give the caller a copy
//! of it: a peer (NEWNS under the copied namespace's owner), a slave (NEWNS under another user
//! namespace, in the same call or after it), a slave's copy, a peer whose owner the caller then
//! leaves, or no copy at all. In the ordinary mix a shared tmpfs meets a successful NEWNS as
//! root a few times in 2,000 cases. The rest of the setup stays as drawn, so some scenarios
//! meet a setup that refuses them (a nobody caller, a chroot); the model judges those as any
//! other case.

use crate::abi::flags::{RawFlags, bits};
use crate::case::{Setup, Step};

/// Out of 100 cases: a propagation scenario ([`scenario`]) replaces the drawn steps. Both
/// generators draw this after the caps scenario, last of all.
pub const SCENARIO: u32 = 3;
/// How many scenarios [`scenario`] knows.
pub const CHOICES: u32 = 8;

/// Scenario `choice` (0..[`CHOICES`]); `ns` is one namespace bit drawn beside it:
///
/// * 0: NEWNS (a peer); 1: NEWNS with `ns` (a peer, unless `ns` is NEWUSER);
/// * 2: NEWUSER|NEWNS (a slave); 3: NEWUSER, then NEWNS (a slave);
/// * 4: NEWUSER|NEWNS, then NEWNS (a slave's copy, a slave);
/// * 5: NEWNS, then NEWUSER (a peer the caller may no longer mount on);
/// * 6: `ns` alone (no copy, unless `ns` is NEWNS); 7: NEWUSER|NEWNS with `ns`.
pub fn scenario(choice: u32, ns: u64) -> Vec<Step> {
    let unshare = |w: u64| Step::Unshare(RawFlags(w));
    let (user, mnt) = (bits::NEWUSER, bits::NEWNS);
    match choice % CHOICES {
        0 => vec![unshare(mnt)],
        1 => vec![unshare(mnt | ns)],
        2 => vec![unshare(user | mnt)],
        3 => vec![unshare(user), unshare(mnt)],
        4 => vec![unshare(user | mnt), unshare(mnt)],
        5 => vec![unshare(mnt), unshare(user)],
        6 => vec![unshare(ns)],
        _ => vec![unshare(user | mnt | ns)],
    }
}

/// The scenario for a roll in 0..100 drawn after the caps scenario, applied to `setup` (the
/// witness and its shared tmpfs turned on): `None` (keep the case) for rolls below
/// `100 - SCENARIO`, so that an `arbitrary` input that ran out of bytes keeps its case.
pub fn from_roll(roll: u32, choice: u32, ns: u64, setup: &mut Setup) -> Option<Vec<Step>> {
    (roll >= 100 - SCENARIO).then(|| {
        setup.inside_witness = true;
        setup.shared_mount = true;
        scenario(choice, ns)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Case;
    use crate::model::inside_witness::SharedRelation;

    #[test]
    fn every_scenario_is_valid_and_only_high_rolls_take_one() {
        for ns in crate::generate::weights::namespace_bits() {
            for choice in 0..CHOICES {
                let mut setup = Setup::default();
                let steps = from_roll(99, choice, ns, &mut setup).unwrap();
                let case = Case { setup, steps };
                assert!(case.validate().is_ok() && case.setup.shared_mount, "{case}");
            }
        }
        let mut setup = Setup::default();
        let taken = (0..100).filter(|r| from_roll(*r, 0, bits::NEWUTS, &mut Setup::default()).is_some()).count();
        assert_eq!(taken, SCENARIO as usize);
        assert_eq!(from_roll(0, 0, bits::NEWUTS, &mut setup), None);
        assert!(!setup.shared_mount, "a kept case keeps its setup");
    }

    #[test]
    fn as_root_the_scenarios_reach_every_relation() {
        use crate::model::{Prediction, predict};
        let (profile, env) =
            (crate::model::profile::by_name("linux-6.18").unwrap(), crate::env::Environment::reference());
        let mut seen = Vec::new();
        for choice in 0..CHOICES {
            let mut setup = Setup::default();
            let steps = from_roll(99, choice, bits::NEWUTS, &mut setup).unwrap();
            let case = Case { setup, steps };
            let Prediction::Steps { final_probe, .. } = predict(profile, &env, &case) else { panic!("{case} skipped") };
            let shared = final_probe.inside.witness.and_then(|w| w.shared).expect("propagation is predicted");
            seen.push(shared.relation);
        }
        for r in [SharedRelation::Same, SharedRelation::Peer, SharedRelation::Slave] {
            assert!(seen.contains(&r), "{r:?} missing from {seen:?}");
        }
    }
}
