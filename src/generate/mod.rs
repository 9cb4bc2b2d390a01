//! Generation: proptest strategies ([`strategy`]) and `arbitrary` impls
//! ([`arbitrary`]) for the one [`Case`] type, with the same weights
//! ([`weights`]). Pure: no I/O. Every case from either generator, and every
//! case loaded from a file, passes through [`neutralize`].

pub mod arbitrary;
pub mod guest;
pub mod idmap;
pub mod strategy;
pub mod weights;

use crate::case::{Case, MAX_STEPS, MAX_THREADS};

/// Makes any case safe and runnable: clamps the step count to 1..=[`MAX_STEPS`]
/// (an empty case gets one `unshare(0)`, so something reaches the syscall) and the
/// thread count to [`MAX_THREADS`] (more threads only repeat the EINVAL rule and cost time).
/// Host safety itself does not depend on this: the executor's outer sandbox provides it.
pub fn neutralize(mut case: Case) -> Case {
    case.steps.truncate(MAX_STEPS);
    if case.steps.is_empty() {
        case.steps.push(crate::case::Step::Unshare(crate::abi::flags::RawFlags(0)));
    }
    case.setup.threads = case.setup.threads.min(MAX_THREADS);
    case.setup.siblings.truncate(crate::case::setup::MAX_SIBLINGS);
    case.setup.fds = case.setup.fds.min(crate::case::setup::MAX_FDS);
    case.setup.userns_depth = case.setup.userns_depth.map(|d| d.min(crate::case::setup::MAX_USERNS_DEPTH));
    case.setup.pidns_level = case.setup.pidns_level.map(|l| l.min(crate::case::setup::MAX_PIDNS_LEVEL));
    case
}
