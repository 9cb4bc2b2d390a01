//! Life inside the namespaces after the last step (issue 16, class 3): what the caller should
//! see of the executor's POSIX message queue, of its network devices and of its own cgroup
//! (`exec::child::inside` reads them, `check::inside` judges). Derived from the same rule as
//! the namespace markers: only a successful unshare with a namespace's bit gives the caller a
//! new namespace of that type. Predicted only for the types a step asks to leave.

use crate::abi::flags::bits;
use crate::case::Case;
use crate::env::Environment;

use super::expect::{DevicesExpect, Expected, InsideExpect};
use super::state::CallerState;

/// The expectation for `case`, whose steps the model predicted as `steps`.
pub(super) fn expect(env: &Environment, state: &CallerState, case: &Case, steps: &[Expected]) -> InsideExpect {
    // Read (and so predicted) only where a step asks to leave that namespace type
    // (`Case::asks_to_leave`): the namespace ids judge every other case, and each reading costs
    // the case child system calls.
    let asked = |bit| case.asks_to_leave(bit);
    // A fresh network namespace is compared with the sandbox's, which is one only when the
    // sandbox was verified new (not on a throwaway kernel that faked it).
    let devices = if !asked(bits::NEWNET) {
        None
    } else if super::kept_namespace(case, steps, bits::NEWNET) {
        Some(DevicesExpect::Kept)
    } else {
        env.sandbox_violations.is_empty().then_some(DevicesExpect::Fresh)
    };
    InsideExpect {
        mq_kept: asked(bits::NEWIPC).then(|| super::kept_namespace(case, steps, bits::NEWIPC)),
        devices,
        cgroup_kept: (state.proc_visible && asked(bits::NEWCGROUP))
            .then(|| super::kept_namespace(case, steps, bits::NEWCGROUP)),
        witness: super::inside_witness::expect(env, state, case, steps),
    }
}

#[cfg(test)]
mod tests {
    use crate::case::{Case, Setup, Step};
    use crate::model::{DevicesExpect, Prediction, predict};

    fn inside(steps: Vec<Step>) -> crate::model::InsideExpect {
        let env = crate::env::Environment::reference();
        let case = Case { setup: Setup::default(), steps };
        match predict(&crate::model::profile::LINUX_6_18, &env, &case) {
            Prediction::Steps { final_probe, .. } => final_probe.inside,
            Prediction::Skip { reason } => panic!("skipped: {reason}"),
        }
    }

    fn unshare(word: u64) -> Step {
        Step::Unshare(crate::abi::flags::RawFlags(word))
    }

    #[test]
    fn only_a_successful_unshare_gives_new_namespaces_to_live_in() {
        use crate::abi::flags::bits::{NEWCGROUP, NEWIPC, NEWNET};
        let all = inside(vec![unshare(NEWIPC | NEWNET | NEWCGROUP)]);
        assert_eq!((all.mq_kept, all.devices, all.cgroup_kept), (Some(false), Some(DevicesExpect::Fresh), Some(false)));
        let none = inside(vec![unshare(0)]);
        assert_eq!((none.mq_kept, none.devices, none.cgroup_kept), (None, None, None));
        let other = inside(vec![unshare(NEWIPC), unshare(crate::abi::flags::bits::NEWUTS)]);
        assert_eq!((other.mq_kept, other.devices, other.cgroup_kept), (Some(false), None, None));
        // An unknown bit fails the whole call: nothing new.
        let failed = inside(vec![unshare(NEWNET | 1 << 40)]);
        assert_eq!(failed.devices, Some(DevicesExpect::Kept));
    }
}
