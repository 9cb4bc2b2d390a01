//! proptest strategies for [`Case`], with the weights of [`super::weights`].

use proptest::prelude::*;

use crate::abi::flags::RawFlags;
use crate::case::{Case, Chroot, MAX_STEPS, NsType, Privilege, Setup, Shm, Sibling, Step};

use super::weights::{self, INTERESTING_INVALID_BITS, setup as ws, steps as wst};

fn subset() -> impl Strategy<Value = u64> {
    let bits = weights::valid_bits();
    (0..100u32)
        .prop_map(weights::subset_draws)
        .prop_flat_map(move |n| prop::collection::vec(prop::sample::select(bits.clone()), n..=n))
        .prop_map(|v| v.into_iter().fold(0, |a, b| a | b))
}

/// The valid mask minus up to [`weights::WIDE_MAX_DROPPED`] valid bits.
fn wide() -> impl Strategy<Value = u64> {
    prop::collection::vec(prop::sample::select(weights::valid_bits()), 0..=weights::WIDE_MAX_DROPPED)
        .prop_map(|v| v.into_iter().fold(crate::abi::flags::UNSHARE_VALID_MASK, |a, b| a & !b))
}

/// A flag word: mostly valid subsets, a few wide words, sometimes 0, sometimes a neighbouring
/// invalid bit (alone, or added to a subset), 1% random.
pub fn flags() -> impl Strategy<Value = RawFlags> {
    let alone = weights::NEIGHBOUR_ALONE;
    let base = prop_oneof![alone => Just(0u64), 100 - alone => subset()];
    prop_oneof![
        weights::FLAGS_SUBSET => subset().boxed(),
        weights::FLAGS_WIDE => wide().boxed(),
        weights::FLAGS_ZERO => Just(0u64).boxed(),
        weights::FLAGS_NEIGHBOUR => (base, prop::sample::select(INTERESTING_INVALID_BITS))
            .prop_map(|(s, b)| s | (1u64 << b)).boxed(),
        weights::FLAGS_RANDOM => any::<u64>().boxed(),
    ]
    .prop_map(RawFlags)
}

fn chance(percent: u32) -> impl Strategy<Value = bool> {
    prop::bool::weighted(f64::from(percent) / 100.0)
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    percent: u32,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::weighted(f64::from(percent) / 100.0, s).boxed()
}

/// A setup.
pub fn setup() -> impl Strategy<Value = Setup> {
    let [w0, w1, w2] = weights::THREAD_WEIGHTS;
    let threads = prop_oneof![w0 => Just(0u8), w1 => Just(1u8), w2 => Just(2u8)];
    let [s0, s1, s2, s3] = ws::SIBLING_COUNTS;
    let sibling_count = prop_oneof![s0 => Just(0usize), s1 => Just(1usize), s2 => Just(2usize), s3 => Just(3usize)];
    let siblings =
        sibling_count.prop_flat_map(|n| prop::collection::vec(prop::sample::select(Sibling::ALL.to_vec()), n..=n));
    let chroot = prop_oneof![
        100 - ws::CHROOT_SUBDIR - ws::CHROOT_ROOT => Just(None),
        ws::CHROOT_SUBDIR => Just(Some(Chroot::Subdir)),
        ws::CHROOT_ROOT => Just(Some(Chroot::Root)),
    ];
    let fds = prop_oneof![100 - ws::FDS => Just(0u8), ws::FDS => 1u8..=3];
    let placement = (
        maybe(ws::PIDNS_LEVEL, prop::sample::select(ws::PIDNS_LEVELS)),
        maybe(ws::USERNS_DEPTH, prop::sample::select(ws::USERNS_DEPTHS)),
        maybe(ws::LIMIT_ZERO, prop::sample::select(NsType::ALL.to_vec())),
        chance(ws::FOREIGN_PIDNS),
        chroot,
    );
    let resources = (fds, chance(ws::SEM_UNDO), chance(ws::CWD_UMASK), siblings, chance(ws::VFORK));
    let shm = prop_oneof![
        100 - ws::SHM_ATTACHED - ws::SHM_RMID_FORCED => Just(None),
        ws::SHM_ATTACHED => Just(Some(Shm::Attached)),
        ws::SHM_RMID_FORCED => Just(Some(Shm::RmidForced)),
    ];
    let coverage = (
        chance(ws::HIGH_FD),
        shm,
        chance(ws::SEM_CLAMP),
        chance(ws::NSFS_BIND),
        chance(ws::INSIDE_WITNESS),
        chance(ws::SHARED_MOUNT),
    );
    (prop::sample::select(Privilege::ALL.to_vec()), threads, placement, resources, coverage).prop_map(
        |(privilege, threads, (pidns_level, userns_depth, limit_zero, foreign_pidns, chroot), r, c)| Setup {
            privilege,
            threads,
            pidns_level,
            userns_depth,
            limit_zero,
            foreign_pidns,
            chroot,
            fds: r.0,
            sem_undo: r.1,
            cwd_umask: r.2,
            siblings: r.3,
            vfork: r.4,
            high_fd: c.0,
            shm: c.1,
            // Only with the semaphore it decrements.
            sem_clamp: r.1 && c.2,
            nsfs_bind: c.3,
            inside_witness: c.4,
            // Only with the witness that looks for the caller's mount.
            shared_mount: c.4 && c.5,
            // Guest-only fields (case::guest) are never generated: they change the whole kernel.
            ..Setup::default()
        },
    )
}

fn bits_from(pool: Vec<u64>, draws: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = u64> {
    prop::collection::vec(prop::sample::select(pool), draws).prop_map(|v| v.into_iter().fold(0, |a, b| a | b))
}

/// A clone3 flag word: mostly subsets of clone3's valid bits or shapes that succeed, sometimes
/// 0, sometimes with a bit clone3 refuses, 1% random.
pub fn clone3_flags() -> impl Strategy<Value = RawFlags> {
    use weights::clone3 as w;
    let subset = bits_from(weights::clone3_valid_bits(), 1..=weights::SUBSET_MAX_DRAWS);
    let shaped = (prop::sample::select(w::SHAPES), bits_from(weights::namespace_bits(), 0..=w::SHAPE_MAX_NS_DRAWS))
        .prop_map(|(s, ns)| s | ns);
    let neighbour =
        (bits_from(weights::clone3_valid_bits(), 1..=weights::SUBSET_MAX_DRAWS), prop::sample::select(w::INVALID_BITS))
            .prop_map(|(s, b)| s | (1u64 << b));
    prop_oneof![
        w::SUBSET => subset,
        w::SHAPED => shaped,
        w::ZERO => Just(0u64),
        w::NEIGHBOUR => neighbour,
        w::RANDOM => any::<u64>(),
    ]
    .prop_map(RawFlags)
}

/// A differential pair: `clone3(F | extra)` and `unshare(F)` for one non-empty set F of
/// namespace bits, clone3 first in [`weights::PAIR_CLONE3_FIRST`] percent of pairs.
pub fn differential_pair() -> impl Strategy<Value = Vec<Step>> {
    let extra = prop_oneof![
        100 - weights::PAIR_EXTRA => Just(0u64),
        weights::PAIR_EXTRA => prop::sample::select(weights::PAIR_EXTRAS),
    ];
    (bits_from(weights::namespace_bits(), 1..=weights::PAIR_MAX_DRAWS), extra, chance(weights::PAIR_CLONE3_FIRST))
        .prop_map(|(ns, extra, clone3_first)| {
            let (c, u) = (Step::Clone3(RawFlags(ns | extra)), Step::Unshare(RawFlags(ns)));
            if clone3_first { vec![c, u] } else { vec![u, c] }
        })
}

/// A step.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        wst::UNSHARE => flags().prop_map(Step::Unshare),
        wst::CLONE3 => clone3_flags().prop_map(Step::Clone3),
        wst::FORK => Just(Step::Fork),
        wst::FORK_EXIT => Just(Step::ForkExit),
        wst::WRITE_MAPS => Just(Step::WriteMaps),
        wst::DROP_SYS_ADMIN => Just(Step::DropSysAdmin),
        wst::CHROOT => prop_oneof![2 => Just(Step::Chroot(Chroot::Subdir)), 1 => Just(Step::Chroot(Chroot::Root))],
        wst::SPAWN_THREAD => Just(Step::SpawnThread),
        wst::UNSHARE_INT80 => flags().prop_map(Step::UnshareInt80),
        wst::CAPS => (0..wst::CAPS_OP_TOTAL).prop_map(|r| Step::Caps(wst::caps_op(r))),
        wst::THREAD_CALL => flags().prop_map(Step::ThreadCall),
        weights::setns::STEP => setns_step().prop_map(Step::Setns),
    ]
}

/// A setns step: any target, its nstype as [`weights::setns::nstype`] draws it.
pub fn setns_step() -> impl Strategy<Value = crate::case::SetnsStep> {
    let targets = prop::sample::select(crate::case::SetnsTarget::ALL.to_vec());
    (targets, 0..100u32, prop::sample::select(weights::namespace_bits()), any::<u32>()).prop_map(
        |(target, roll, ns, random)| crate::case::SetnsStep {
            target,
            nstype: weights::setns::nstype(target, roll, ns, random),
        },
    )
}

/// A setns scenario: a prefix for a target, then the setns step ([`weights::setns::scenario`]).
pub fn setns_scenario() -> impl Strategy<Value = Vec<Step>> {
    let targets = prop::sample::select(crate::case::SetnsTarget::ALL.to_vec());
    (targets, 0..weights::setns::PREFIXES).prop_map(|(t, c)| weights::setns::scenario(t, c))
}

/// A whole case: a setup and 1..=4 steps, or (in [`weights::DIFFERENTIAL_PAIR`] percent) a
/// setup and a differential pair, or a setns scenario; in [`weights::caps::SCENARIO`] percent the
/// steps drawn are replaced by a caps scenario ([`weights::caps::scenario`]), and in
/// [`weights::propagation::SCENARIO`] percent by a propagation scenario (with the witness's
/// shared tmpfs, [`weights::propagation::scenario`]).
pub fn case() -> impl Strategy<Value = Case> {
    let steps = prop_oneof![
        100 - weights::DIFFERENTIAL_PAIR - weights::setns::SCENARIO => prop::collection::vec(step(), 1..=MAX_STEPS),
        weights::DIFFERENTIAL_PAIR => differential_pair(),
        weights::setns::SCENARIO => setns_scenario(),
    ];
    // The set_tid, id map and caps scenarios are drawn last, in that order: the draws before
    // them are those of the case as it was.
    let caps = (0..100u32, 0..weights::caps::CHOICES, prop::sample::select(weights::namespace_bits()));
    let idmap = (0..100u32, 0..super::idmap::PREFIXES, any::<[u8; 3]>(), 1..=3u8);
    let propagation = (0..100u32, 0..weights::propagation::CHOICES, prop::sample::select(weights::namespace_bits()));
    (setup(), steps, chance(weights::set_tid::SCENARIO), set_tid_scenario(), idmap, caps, propagation).prop_map(
        |(mut setup, steps, st, sc, (id_roll, prefix, ops, writes), (roll, choice, ns), (p_roll, p_choice, p_ns))| {
            let steps = if st { sc } else { steps };
            let steps = if id_roll < super::idmap::SCENARIO {
                super::idmap::scenario(prefix, ops, writes, &mut setup)
            } else {
                steps
            };
            let steps = weights::caps::from_roll(roll, choice, ns).unwrap_or(steps);
            // The propagation scenario last of all: it also turns on the witness's shared tmpfs.
            let steps = weights::propagation::from_roll(p_roll, p_choice, p_ns, &mut setup).unwrap_or(steps);
            super::neutralize(Case { setup, steps })
        },
    )
}

/// A clone3 set_tid scenario ([`weights::set_tid::scenario`]).
pub fn set_tid_scenario() -> impl Strategy<Value = Vec<Step>> {
    (
        0..weights::set_tid::PREFIXES,
        0..100u32,
        prop::sample::select(weights::namespace_bits()),
        (any::<u32>(), any::<u32>()),
        any::<bool>(),
        0..100u32,
    )
        .prop_map(|(prefix, flags_roll, ns, (a, b), two, size_roll)| {
            weights::set_tid::scenario(weights::set_tid::Draw { prefix, flags_roll, ns, tids: [a, b], two, size_roll })
        })
}

/// The guest-only part of a case in a throwaway guest ([`super::guest`]), with the weights of
/// [`weights::guest`].
pub fn guest_shape(g: super::guest::GuestGen) -> BoxedStrategy<super::guest::GuestShape> {
    use super::guest::GuestShape;
    use weights::guest as wg;
    let [ordinary, nr_open, fail_nth] = g.weights();
    let nr = (
        prop::sample::select(wg::FD_ATS),
        prop::sample::select(wg::NR_OPENS),
        chance(wg::NR_OPEN_SHARED),
        chance(wg::NR_OPEN_FILES_FLAG),
    )
        .prop_map(|(fd_at, nr_open, shared, files_flag)| GuestShape::NrOpen { fd_at, nr_open, shared, files_flag });
    let nth = (1..=wg::FAIL_NTH_MAX, flags()).prop_map(|(n, last)| GuestShape::FailNth { n, last });
    let mut arms = vec![(ordinary, Just(GuestShape::Ordinary).boxed()), (nr_open, nr.boxed())];
    if fail_nth > 0 {
        arms.push((fail_nth, nth.boxed()));
    }
    proptest::strategy::Union::new_weighted(arms).boxed()
}

/// A whole case for a run whose environment gave `guest` ([`super::guest::GuestGen::from_guest`]):
/// [`case`] itself outside a throwaway guest (the same stream as before guest-only setups
/// existed), and in one a case fitted to a drawn [`guest_shape`].
pub fn case_in(guest: Option<super::guest::GuestGen>) -> BoxedStrategy<Case> {
    match guest {
        None => case().boxed(),
        Some(g) => (case(), guest_shape(g)).prop_map(|(c, shape)| super::guest::apply(c, &shape)).boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    #[test]
    fn distribution_follows_the_weights() {
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
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
        assert!(valid > n * 70 / 100 && valid < n * 90 / 100, "valid {valid}");
        assert!(zero > n * 3 / 100 && zero < n * 8 / 100, "zero {zero}");
        assert!(high > 0, "no high bits in {n} words");
    }

    #[test]
    fn both_actions_and_pairs_are_generated() {
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]));
        let s = case();
        let n = 4000;
        let (mut clone3, mut unshare, mut pairs, mut threads, mut int80) = (0, 0, 0, 0, 0);
        for _ in 0..n {
            let c = s.new_tree(&mut runner).unwrap().current();
            let kinds = |f: fn(&Step) -> bool| c.steps.iter().filter(|s| f(s)).count();
            clone3 += kinds(|s| matches!(s, Step::Clone3(_)));
            unshare += kinds(|s| matches!(s, Step::Unshare(_)));
            threads += kinds(|s| matches!(s, Step::Clone3(f) if f.contains(0x1_0900)));
            int80 += kinds(|s| matches!(s, Step::UnshareInt80(_)));
            if let [a, b] = c.steps.as_slice() {
                let ns = crate::abi::flags::ALL_NAMESPACES;
                match (a, b) {
                    (Step::Clone3(x), Step::Unshare(y)) | (Step::Unshare(y), Step::Clone3(x))
                        if x.0 & ns == y.0 && y.0 != 0 =>
                    {
                        pairs += 1
                    }
                    _ => {}
                }
            }
        }
        assert!(pairs > n * 20 / 100 && pairs < n * 32 / 100, "pairs {pairs} of {n}");
        assert!(clone3 > n * 40 / 100, "clone3 steps {clone3}");
        assert!(unshare > clone3, "unshare steps {unshare}, clone3 steps {clone3}");
        assert!(threads > n / 100, "successful-thread shapes {threads}");
        assert!(int80 > n / 100 && int80 < unshare / 10, "int $0x80 steps {int80}, unshare steps {unshare}");
    }

    #[test]
    fn guest_only_setups_only_in_a_guest_with_their_weights() {
        use crate::generate::guest::GuestGen;
        let rng = || TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]));
        let (mut a, mut b) = (rng(), rng());
        let (plain, host) = (case(), case_in(None));
        for _ in 0..500 {
            let c = host.new_tree(&mut b).unwrap().current();
            assert_eq!(c, plain.new_tree(&mut a).unwrap().current(), "a host's stream must not change");
            assert!(crate::case::guest::needs(&c).is_empty());
        }
        let n = 4000;
        for (facts, want_nth) in [(GuestGen { fail_nth: true }, true), (GuestGen { fail_nth: false }, false)] {
            let s = case_in(Some(facts));
            let mut r = rng();
            let (mut nr_open, mut fail_nth) = (0, 0);
            for _ in 0..n {
                let c = s.new_tree(&mut r).unwrap().current();
                assert!(c.validate().is_ok(), "{c}");
                nr_open += u32::from(c.setup.nr_open.is_some());
                fail_nth += u32::from(c.setup.fail_nth.is_some());
            }
            let near = |got: u32, w: u32| got > n * w / 100 * 7 / 10 && got < n * w / 100 * 13 / 10;
            assert!(near(nr_open, weights::guest::NR_OPEN), "nr_open {nr_open} of {n}");
            assert_eq!(fail_nth > 0, want_nth, "fail_nth {fail_nth} of {n}");
            assert!(!want_nth || near(fail_nth, weights::guest::FAIL_NTH), "fail_nth {fail_nth} of {n}");
        }
    }

    #[test]
    fn caps_scenarios_come_with_their_weight() {
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[4; 32]));
        let (s, all, n) = (case(), weights::caps::tests::all(), 4000);
        let got = (0..n).filter(|_| all.contains(&s.new_tree(&mut runner).unwrap().current().steps)).count();
        weights::caps::tests::assert_share(got, n);
    }

    #[test]
    fn shared_tmpfs_cases_come_with_the_scenario_and_the_witness_weights() {
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[5; 32]));
        let (s, n) = (case(), 4000);
        let got = (0..n).filter(|_| s.new_tree(&mut runner).unwrap().current().setup.shared_mount).count();
        // The scenario, plus half of the ordinary inside witness setups of the other cases.
        let want = n * (weights::propagation::SCENARIO + weights::setup::INSIDE_WITNESS / 2) as usize / 100;
        assert!(got > want * 7 / 10 && got < want * 13 / 10, "{got} of {n} with a shared tmpfs, wanted about {want}");
    }

    #[test]
    fn generated_cases_are_valid() {
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]));
        let s = case();
        for _ in 0..2000 {
            let c = s.new_tree(&mut runner).unwrap().current();
            assert!(c.validate().is_ok(), "{c}");
        }
    }

    #[test]
    fn set_tid_scenarios_reach_every_rule_and_success() {
        use crate::model::set_tid::SET_TID_RULES;
        use crate::model::{Prediction, predict, profile::LINUX_6_18};
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]));
        let (s, env) = (case(), crate::env::Environment::reference());
        let mut rules = std::collections::BTreeMap::new();
        for _ in 0..4000 {
            let c = s.new_tree(&mut runner).unwrap().current();
            let Some(k) = c.steps.iter().position(|s| matches!(s, Step::Clone3SetTid(_))) else { continue };
            if let Prediction::Steps { steps, .. } = predict(&LINUX_6_18, &env, &c)
                && let Some(e) = steps.get(k)
            {
                *rules.entry(e.rule).or_insert(0) += 1;
            }
        }
        // Every generated step survives its JSON form unchanged (a null list lists nothing).
        let json = |c: &Case| serde_json::to_string(c).unwrap();
        let mut runner =
            TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[3; 32]));
        for _ in 0..4000 {
            let c = s.new_tree(&mut runner).unwrap().current();
            assert_eq!(serde_json::from_str::<Case>(&json(&c)).unwrap(), c);
        }
        for r in SET_TID_RULES.iter().map(|r| r.id).chain(["success"]) {
            assert!(rules.get(r).is_some_and(|n| *n > 0), "{r} never decides a set_tid step: {rules:?}");
        }
    }
}
