//! Guest-only setups for generated cases (`case::guest`, docs/guest-only.md): a lowered
//! `fs.nr_open` (EMFILE) and fail-nth on the last unshare (ENOMEM). Both generators draw a
//! [`GuestShape`] and fit an ordinary case to it with [`apply`], and only when the facts of
//! the run's environment say it is a throwaway qemu guest ([`GuestGen::from_guest`]); on a
//! host nothing is drawn, so a host's stream of cases is the same as without this module.
//! Pure: the facts are passed in, never read here.

use crate::abi::flags::{RawFlags, bits};
use crate::case::{Case, Sibling, Step};
use crate::env::guest::GuestKernel;

use super::weights::guest as w;

/// Which guest-only setups a run may generate, from the environment's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestGen {
    /// Fault injection is set up in this guest (fail-nth cases can run).
    pub fail_nth: bool,
}

impl GuestGen {
    /// `None` unless the executor found a throwaway qemu guest (`env::guest::decide`): then
    /// nr_open setups, and fail-nth setups when its kernel has fault injection.
    pub fn from_guest(guest: Option<&GuestKernel>) -> Option<GuestGen> {
        guest.map(|g| GuestGen { fail_nth: g.fault_injection })
    }

    /// Out of 100: (an ordinary case, an nr_open setup, a fail-nth setup).
    pub fn weights(self) -> [u32; 3] {
        let nth = if self.fail_nth { w::FAIL_NTH } else { 0 };
        [100 - w::NR_OPEN - nth, w::NR_OPEN, nth]
    }
}

/// The guest-only part drawn for one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestShape {
    /// The case stays as drawn.
    Ordinary,
    /// fd `fd_at` open, then `fs.nr_open` lowered to `nr_open`; `shared` adds a `files`
    /// sibling, `files_flag` adds FILES to the first unshare.
    NrOpen {
        /// See [`crate::case::Setup::fd_at`].
        fd_at: u32,
        /// See [`crate::case::Setup::nr_open`].
        nr_open: u32,
        /// Share the fd table with a sibling.
        shared: bool,
        /// Ask the first unshare for FILES.
        files_flag: bool,
    },
    /// fail-nth `n` on the last step, which becomes `unshare(last)` when it is not an unshare.
    FailNth {
        /// See [`crate::case::Setup::fail_nth`].
        n: u32,
        /// The flags of the unshare put last when the drawn last step is something else.
        last: RawFlags,
    },
}

/// Steps and setup fields that copy the fd table after `nr_open` is lowered, or that
/// `case::guest::validate` refuses with it, removed; the high fd too (a dup to fd 100 after the
/// limit is lowered would fail the setup).
fn fit_for_nr_open(case: &mut Case) {
    let s = &mut case.setup;
    s.userns_depth = None;
    s.limit_zero = None;
    s.foreign_pidns = false;
    s.vfork = false;
    s.chroot = None;
    s.high_fd = false;
    s.siblings.retain(|k| *k == Sibling::Files);
    case.steps.retain(|st| st.clone3_flags().is_none());
}

/// `case` fitted to `shape`; the result passes `Case::validate` whenever `case` did.
pub fn apply(mut case: Case, shape: &GuestShape) -> Case {
    match *shape {
        GuestShape::Ordinary => {}
        GuestShape::NrOpen { fd_at, nr_open, shared, files_flag } => {
            fit_for_nr_open(&mut case);
            if shared && case.setup.siblings.is_empty() {
                case.setup.siblings.push(Sibling::Files);
            }
            let first = case.steps.iter_mut().find_map(|st| match st {
                Step::Unshare(f) => Some(f),
                _ => None,
            });
            match first {
                Some(f) if files_flag => f.0 |= bits::FILES,
                Some(_) => {}
                None => case.steps.insert(0, Step::Unshare(RawFlags(if files_flag { bits::FILES } else { 0 }))),
            }
            case.steps.truncate(crate::case::MAX_STEPS);
            case.setup.fd_at = Some(fd_at);
            case.setup.nr_open = Some(nr_open);
        }
        GuestShape::FailNth { n, last } => {
            if !matches!(case.steps.last(), Some(Step::Unshare(_))) {
                case.steps.pop();
                case.steps.push(Step::Unshare(last));
            }
            case.setup.fail_nth = Some(n);
        }
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Chroot, Setup};

    fn busy_case() -> Case {
        Case {
            setup: Setup {
                siblings: vec![Sibling::Fs, Sibling::Files, Sibling::Vm],
                vfork: true,
                chroot: Some(Chroot::Subdir),
                userns_depth: Some(2),
                high_fd: true,
                ..Setup::default()
            },
            steps: vec![Step::Clone3(RawFlags(bits::NEWUTS)), Step::Fork],
        }
    }

    #[test]
    fn no_guest_no_guest_only_setups() {
        assert_eq!(GuestGen::from_guest(None), None);
        let g = GuestKernel { nr_open: 1_048_576, fault_injection: false };
        assert_eq!(GuestGen::from_guest(Some(&g)).unwrap().weights(), [100 - w::NR_OPEN, w::NR_OPEN, 0]);
        let f = GuestKernel { fault_injection: true, ..g };
        assert_eq!(GuestGen::from_guest(Some(&f)).unwrap().weights().iter().sum::<u32>(), 100);
    }

    #[test]
    fn an_nr_open_shape_makes_a_valid_emfile_case() {
        let shape = GuestShape::NrOpen { fd_at: 200, nr_open: 64, shared: true, files_flag: true };
        let c = apply(busy_case(), &shape);
        assert!(c.validate().is_ok(), "{c}");
        assert_eq!(c.setup.siblings, vec![Sibling::Files]);
        assert_eq!(c.steps, vec![Step::Unshare(RawFlags(bits::FILES)), Step::Fork]);
        assert_eq!((c.setup.fd_at, c.setup.nr_open), (Some(200), Some(64)));
        assert!(!c.setup.high_fd && !c.setup.vfork && c.setup.chroot.is_none() && c.setup.userns_depth.is_none());
        // An existing unshare gets FILES added; without files_flag it is left alone.
        let plain = Case::unshare(&[bits::NEWUTS]);
        assert_eq!(apply(plain.clone(), &shape).steps, vec![Step::Unshare(RawFlags(bits::NEWUTS | bits::FILES))]);
        let keep = GuestShape::NrOpen { fd_at: 63, nr_open: 128, shared: false, files_flag: false };
        let k = apply(plain, &keep);
        assert_eq!(k.steps, vec![Step::Unshare(RawFlags(bits::NEWUTS))]);
        assert!(k.setup.siblings.is_empty() && k.validate().is_ok());
    }

    #[test]
    fn a_fail_nth_shape_arms_a_last_unshare() {
        let shape = GuestShape::FailNth { n: 2, last: RawFlags(bits::NEWNET) };
        let c = apply(busy_case(), &shape);
        assert_eq!(c.steps.last(), Some(&Step::Unshare(RawFlags(bits::NEWNET))));
        assert_eq!(c.steps.len(), 2);
        assert_eq!(c.setup.fail_nth, Some(2));
        let already = apply(Case::unshare(&[bits::NEWNS]), &shape);
        assert_eq!(already.steps, vec![Step::Unshare(RawFlags(bits::NEWNS))]);
        assert!(already.validate().is_ok());
        assert_eq!(apply(busy_case(), &GuestShape::Ordinary), busy_case());
    }
}
