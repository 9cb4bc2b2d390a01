//! The caps scenario (issue 16 class 5): short step sequences that bring a caps step, or the
//! uid_map write after a NEWUSER, to the state its rule is about, then one unshare. In the
//! plain step mix a caps step is 5 in 100 and the right one after the right drop is rarer
//! still: `caps-root-map-needs-setfcap` (drop CAP_SETFCAP, NEWUSER, write the maps) and
//! `caps-setresuid-needs-cap-setuid` (drop CAP_SETUID, keepcaps-nobody) came up 0 to 2 times
//! in 20,000 cases. The setup stays as drawn, so some scenarios meet a setup that refuses them
//! earlier (a nobody caller, a user namespace made by the setup, extra threads before
//! NEWUSER); the model judges those as any other case.

use crate::abi::flags::{RawFlags, bits};
use crate::case::{CapsOp, Step};

/// Out of 100 cases: a caps scenario ([`scenario`]) replaces the drawn steps. Both generators
/// draw this last, after the whole ordinary case, so the draws before it keep their meaning.
pub const SCENARIO: u32 = 4;
/// How many scenarios [`scenario`] knows.
pub const CHOICES: u32 = 8;

/// Scenario `choice` (0..[`CHOICES`]), ending with `unshare(ns)` (`ns` one namespace bit) so
/// that `caps-only-sys-admin-decides` has an unshare to judge after the credentials changed:
///
/// * 0, 1: a drop that takes CAP_SETPCAP, then `bound-all-but-sys-admin`
///   (`caps-bound-needs-cap-setpcap`);
/// * 2, 3: a drop that takes CAP_SETUID, then `keepcaps-nobody`
///   (`caps-setresuid-needs-cap-setuid`; `caps-nobody-unmapped` where 65534 has no mapping);
/// * 4, 5: `drop-all-but-sys-admin` (CAP_SETFCAP goes), NEWUSER, then the maps `0 0 1`
///   (`caps-root-map-needs-setfcap` for a caller with uid 0);
/// * 6: NEWUSER, then `keepcaps-nobody` (`caps-nobody-unmapped`: only one id is mapped there);
/// * 7: `keepcaps-nobody`, then `raise` (the permitted set kept by PR_SET_KEEPCAPS comes back).
pub fn scenario(choice: u32, ns: u64) -> Vec<Step> {
    let caps = Step::Caps;
    let last = Step::Unshare(RawFlags(ns));
    match choice % CHOICES {
        0 => vec![caps(CapsOp::DropSetpcap), caps(CapsOp::BoundAllButSysAdmin), last],
        1 => vec![caps(CapsOp::DropAllButSysAdmin), caps(CapsOp::BoundAllButSysAdmin), last],
        2 => vec![caps(CapsOp::DropSetuid), caps(CapsOp::KeepcapsNobody), last],
        3 => vec![caps(CapsOp::DropAllButSysAdmin), caps(CapsOp::KeepcapsNobody), last],
        4 => vec![caps(CapsOp::DropAllButSysAdmin), Step::Unshare(RawFlags(bits::NEWUSER)), Step::WriteMaps, last],
        5 => vec![caps(CapsOp::DropAllButSysAdmin), Step::Unshare(RawFlags(bits::NEWUSER | ns)), Step::WriteMaps],
        6 => vec![Step::Unshare(RawFlags(bits::NEWUSER)), caps(CapsOp::KeepcapsNobody), last],
        _ => vec![caps(CapsOp::KeepcapsNobody), caps(CapsOp::Raise), last],
    }
}

/// The scenario for a roll in 0..100 drawn after the ordinary case: `None` (keep the case) for
/// rolls below `100 - SCENARIO`, so that an `arbitrary` input that ran out of bytes (every roll
/// 0) keeps its ordinary case.
pub fn from_roll(roll: u32, choice: u32, ns: u64) -> Option<Vec<Step>> {
    (roll >= 100 - SCENARIO).then(|| scenario(choice, ns))
}

/// Tests, and the helpers the generators' tests use to count caps scenarios.
#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::case::{Case, Setup};

    #[test]
    fn every_scenario_is_a_valid_case_and_ends_in_an_unshare() {
        for ns in crate::generate::weights::namespace_bits() {
            for choice in 0..CHOICES {
                let steps = scenario(choice, ns);
                assert!(steps.iter().any(Step::is_unshare), "{choice}: {steps:?}");
                let case = Case { setup: Setup::default(), steps };
                assert!(case.validate().is_ok(), "{case}");
            }
        }
        let rolls: Vec<bool> = (0..100).map(|r| from_roll(r, 0, bits::NEWUTS).is_some()).collect();
        assert_eq!(rolls.iter().filter(|s| **s).count(), SCENARIO as usize);
        assert!(!rolls[0], "an input out of bytes keeps its case");
    }

    /// Every scenario, for counting them in a generator's output.
    pub fn all() -> Vec<Vec<Step>> {
        let ns = crate::generate::weights::namespace_bits();
        (0..CHOICES).flat_map(|c| ns.iter().map(move |n| scenario(c, *n))).collect()
    }

    /// `got` of `n` cases were caps scenarios: near [`SCENARIO`] percent.
    pub fn assert_share(got: usize, n: usize) {
        let want = n * SCENARIO as usize / 100;
        assert!(got > want * 7 / 10 && got < want * 13 / 10, "caps scenarios {got} of {n}, wanted about {want}");
    }

    #[test]
    fn as_root_each_scenario_meets_its_rule() {
        use crate::model::{Prediction, predict};
        let (profile, env) =
            (crate::model::profile::by_name("linux-6.18").unwrap(), crate::env::Environment::reference());
        let want = [
            "caps-bound-needs-cap-setpcap",
            "caps-bound-needs-cap-setpcap",
            "caps-setresuid-needs-cap-setuid",
            "caps-setresuid-needs-cap-setuid",
            "caps-root-map-needs-setfcap",
            "caps-root-map-needs-setfcap",
            "caps-nobody-unmapped",
            "success",
        ];
        for (choice, rule) in (0..CHOICES).zip(want) {
            let case = Case { setup: Setup::default(), steps: scenario(choice, bits::NEWUTS) };
            let Prediction::Steps { steps, .. } = predict(profile, &env, &case) else { panic!("{case} skipped") };
            let rules: Vec<&str> = steps.iter().map(|e| e.rule).collect();
            assert!(rules.contains(&rule), "{choice}: {case} gave {rules:?}, wanted {rule}");
        }
    }
}
