//! setns through a pidfd on a kernel built without some namespace types (issue 16 class 6):
//! `check_setns_flags` (kernel/nsproxy.c, 6.12) refuses with EINVAL a bit whose type is
//! configured out (`#ifndef CONFIG_UTS_NS` and friends), right after its check of unknown bits
//! and before the pidfd's process is looked up, so before the ESRCH of an exited process.
//! Found by `run --cases 2000 --seed 3` in the `no-uts-ipc-time` guest (docs/guest-only.md):
//! `setns(exited_pidfd, NEWUTS)` gave EINVAL where the model said ESRCH.

#![deny(missing_docs)]

use crate::abi::errno::Errno;
use crate::abi::flags::FLAGS;
use crate::case::SetnsStep;
use crate::env::Environment;

use super::setns::PIDFD_NS_BITS;
use super::state::ns_type_present;
use super::steps::{StepEffect, fail};

/// Rule: with a pidfd, an nstype bit of a namespace type this kernel was built without (EINVAL).
pub const PIDFD_TYPE_MISSING: &str = "setns-pidfd-type-missing";

/// The EINVAL of a pidfd setns step whose nstype names a type this kernel lacks; `None` for a
/// step that `setns::decide` judges (a namespace file, or a word it refuses earlier).
pub fn pidfd_type_missing(env: &Environment, step: &SetnsStep) -> Option<StepEffect> {
    let word = step.nstype.0 & u64::from(u32::MAX);
    if step.target.ns_flag().is_some() || word == 0 || word & !PIDFD_NS_BITS != 0 {
        return None;
    }
    let missing =
        FLAGS.iter().filter(|f| f.bit & word != 0).any(|f| f.ns_link.is_some_and(|l| !ns_type_present(env, l)));
    missing.then(|| fail(Errno::EINVAL, PIDFD_TYPE_MISSING))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::errno::CallResult;
    use crate::abi::flags::{RawFlags, bits};
    use crate::abi::ns::NsLink;
    use crate::case::SetnsTarget;

    fn step(target: SetnsTarget, nstype: u64) -> SetnsStep {
        SetnsStep { target, nstype: RawFlags(nstype) }
    }

    #[test]
    fn a_missing_type_is_einval_before_the_exited_process() {
        let mut env = Environment::reference();
        let uts = step(SetnsTarget::ExitedPidfd, bits::NEWUTS);
        assert!(pidfd_type_missing(&env, &uts).is_none(), "every type present");
        env.ns_links.retain(|l| *l != NsLink::Uts);
        env.headroom.flat.remove("uts");
        let e = pidfd_type_missing(&env, &uts).unwrap();
        assert_eq!((e.result, e.rule), (CallResult::Failure(Errno::EINVAL), PIDFD_TYPE_MISSING));
        assert!(pidfd_type_missing(&env, &step(SetnsTarget::ExitedPidfd, bits::NEWUTS | bits::NEWNET)).is_some());
        // Other types, unknown bits (setns-pidfd-flags-invalid) and namespace files: not this rule.
        assert!(pidfd_type_missing(&env, &step(SetnsTarget::ExitedPidfd, bits::NEWNET)).is_none());
        assert!(pidfd_type_missing(&env, &step(SetnsTarget::ExitedPidfd, bits::NEWUTS | 1)).is_none());
        assert!(pidfd_type_missing(&env, &step(SetnsTarget::ExitedPidfd, 0)).is_none());
        assert!(pidfd_type_missing(&env, &step(SetnsTarget::StartPid, bits::NEWPID)).is_none());
    }
}
