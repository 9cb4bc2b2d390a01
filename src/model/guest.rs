//! Guest-only cases in the model (`case::guest`, docs/guest-only.md): where
//! they are skipped. Pure; the rules they reach live with the others
//! (`files-over-nr-open` in `checks`, `fork-fd-table-over-nr-open` in `steps`,
//! the fail-nth alternative in `predict_fault_enomem`).

use crate::case::Case;
use crate::case::guest::GuestNeed;
use crate::env::Environment;

/// Why `case` cannot run here, if it is guest-only and this is not a throwaway qemu guest
/// that can run it. The reasons name the kind of need, not its number, so that a report
/// counts them under one line each.
pub fn skip_reason(env: &Environment, case: &Case) -> Option<String> {
    if let Some(reason) = guest_fd_at_over_nofile(env, case) {
        return Some(reason);
    }
    let needs = crate::case::guest::needs(case);
    let first = needs.first()?;
    let what = match first {
        GuestNeed::NrOpen(_) => "guest-only: lowers the global fs.nr_open",
        GuestNeed::FailNth(_) => "guest-only: fails an allocation by fault injection (fail-nth)",
    };
    match &env.guest {
        None => Some(format!(
            "{what}; runs only in a throwaway qemu guest (scripts/kernels.sh, scripts/kcov.sh; docs/guest-only.md)"
        )),
        Some(g) if case.setup.fail_nth.is_some() && !g.fault_injection => Some(format!(
            "{what}; this guest's kernel has no fault injection set up (scripts/kcov.sh boots one that has)"
        )),
        Some(_) => None,
    }
}

/// `fd_at` at or above the RLIMIT_NOFILE soft limit measured here: `F_DUPFD` would fail with
/// EINVAL (a guest's init starts with 1024), so the case is skipped, not run as broken.
fn guest_fd_at_over_nofile(env: &Environment, case: &Case) -> Option<String> {
    let fd = case.setup.fd_at?;
    let limit = env.resources.nofile_soft?;
    (u64::from(fd) >= limit).then(|| {
        format!(
            "needs descriptor number {fd} (fd_at), {} allows numbers below {limit} only",
            env.resources.fd_limit_name()
        )
    })
}

/// The reference machine for `case` ([`Environment::reference`]): for a guest-only case, the
/// same machine as a throwaway qemu guest with fault injection (`fs.nr_open` at its default,
/// 1048576), where such a case runs. The corpus files' `expected` are checked against it.
pub fn reference_for(case: &Case) -> Environment {
    let mut env = Environment::reference();
    if !crate::case::guest::needs(case).is_empty() {
        env.guest = Some(crate::env::guest::GuestKernel { nr_open: 1_048_576, fault_injection: true });
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::errno::{CallResult, Errno};
    use crate::abi::flags::bits;
    use crate::abi::ns::NsLink;
    use crate::case::{Privilege, Setup, Sibling, Step};
    use crate::model::profile::LINUX_6_18;
    use crate::model::{LinkExpect, Prediction, predict};

    fn steps(env: &Environment, case: &Case) -> Vec<crate::model::Expected> {
        match predict(&LINUX_6_18, env, case) {
            Prediction::Steps { steps, .. } => steps,
            Prediction::Skip { reason } => panic!("skipped: {reason}"),
        }
    }

    fn emfile(privilege: Privilege, flags: u64, fd_at: u32, nr_open: u32, sibling: bool) -> Case {
        let mut c = Case::unshare(&[flags]);
        c.setup = Setup {
            privilege,
            siblings: if sibling { vec![Sibling::Files] } else { vec![] },
            fd_at: Some(fd_at),
            nr_open: Some(nr_open),
            ..Setup::default()
        };
        c
    }

    #[test]
    fn guest_only_cases_skip_on_a_host_and_run_in_a_guest() {
        let case = emfile(Privilege::Root, bits::FILES, 200, 64, true);
        let host = Environment::reference();
        match predict(&LINUX_6_18, &host, &case) {
            Prediction::Skip { reason } => {
                assert!(reason.starts_with("guest-only: lowers the global fs.nr_open"), "{reason}")
            }
            p => panic!("a guest-only case must skip on a host: {p:?}"),
        }
        let mut nth = Case::unshare(&[bits::NEWUTS]);
        nth.setup.fail_nth = Some(2);
        let mut no_faults = reference_for(&nth);
        no_faults.guest.as_mut().unwrap().fault_injection = false;
        assert!(matches!(predict(&LINUX_6_18, &no_faults, &nth), Prediction::Skip { .. }));
        assert_eq!(steps(&reference_for(&case), &case)[0].rule, "files-over-nr-open");
    }

    #[test]
    fn emfile_needs_a_shared_table_larger_than_nr_open() {
        let at = |p, f, fd, nr, sib| {
            let c = emfile(p, f, fd, nr, sib);
            let s = steps(&reference_for(&c), &c);
            (s[0].result, s[0].rule)
        };
        let want = (CallResult::Failure(Errno::EMFILE), "files-over-nr-open");
        assert_eq!(at(Privilege::Root, bits::FILES, 200, 64, true), want);
        assert_eq!(at(Privilege::Root, bits::FILES, 200, 64, false), (CallResult::Success, "success"));
        assert_eq!(at(Privilege::Root, bits::FILES, 100, 128, true), (CallResult::Success, "success"));
        assert_eq!(at(Privilege::Root, bits::FILES, 128, 128, true), want);
        assert_eq!(at(Privilege::Root, bits::FILES, 63, 64, true), (CallResult::Success, "success"));
        // Precedence: after check_unshare_flags, before every namespace's own check.
        assert_eq!(at(Privilege::Nobody, bits::FILES | bits::NEWPID, 200, 64, true), want);
        assert_eq!(at(Privilege::Root, bits::NEWPID, 200, 64, true), (CallResult::Success, "success"));
        let mut threaded = emfile(Privilege::Root, bits::FILES | bits::SIGHAND, 200, 64, true);
        threaded.setup.threads = 1;
        assert_eq!(steps(&reference_for(&threaded), &threaded)[0].rule, "thread-multithreaded");
        // A thread shares the table as a CLONE_FILES sibling does (seen in the 6.12 guest:
        // EMFILE with one extra thread and no sibling).
        let mut thread_only = emfile(Privilege::Root, bits::FILES | bits::NEWUTS, 127, 64, false);
        thread_only.setup.threads = 1;
        assert_eq!(steps(&reference_for(&thread_only), &thread_only)[0].rule, "files-over-nr-open");
    }

    #[test]
    fn guest_an_fd_at_over_the_descriptor_limit_is_skipped() {
        let c = emfile(Privilege::Root, bits::FILES, 1023, 64, true);
        let mut env = reference_for(&c);
        env.resources.nofile_soft = Some(1024);
        assert!(matches!(predict(&LINUX_6_18, &env, &c), Prediction::Steps { .. }));
        let mut over = c.clone();
        over.setup.fd_at = Some(1024);
        match predict(&LINUX_6_18, &env, &over) {
            Prediction::Skip { reason } => assert!(reason.contains("descriptor number 1024 (fd_at)"), "{reason}"),
            p => panic!("fd_at at RLIMIT_NOFILE must be skipped: {p:?}"),
        }
    }

    #[test]
    fn a_fork_copies_the_table_and_fails_the_same_way() {
        let mut c = emfile(Privilege::Root, bits::FILES, 200, 64, true);
        c.steps.push(Step::ForkExit);
        let s = steps(&reference_for(&c), &c);
        assert_eq!((s[1].result, s[1].rule), (CallResult::Failure(Errno::EMFILE), "fork-fd-table-over-nr-open"));
    }

    #[test]
    fn fail_nth_admits_enomem_that_changes_nothing() {
        let mut c = Case::unshare(&[bits::NEWNS, bits::NEWUTS | bits::NEWNET]);
        c.setup.fail_nth = Some(3);
        let s = steps(&reference_for(&c), &c);
        assert!(s[0].fault_enomem.is_none(), "only the last step is armed");
        assert_eq!(s[1].result, CallResult::Success);
        let alt = s[1].fault_enomem.as_ref().expect("the armed step has an alternative");
        assert_eq!((alt.step.result, alt.step.rule), (CallResult::Failure(Errno::ENOMEM), crate::model::FAULT_RULE));
        assert!(alt.step.links.iter().all(|l| *l == LinkExpect::Unchanged));
        assert_eq!(s[1].links[NsLink::Uts.index()], LinkExpect::Fresh);
        // The first step's NEWNS still happened; the armed one's namespaces did not.
        assert_eq!(alt.final_probe.kept.mnt, Some(false));
        assert_eq!(alt.final_probe.kept.uts, Some(true));
        assert_eq!(alt.final_probe.kept.net, Some(true));
        // An ordinary case has no alternative.
        let plain = Case::unshare(&[bits::NEWUTS]);
        assert!(steps(&Environment::reference(), &plain)[0].fault_enomem.is_none());
    }

    #[test]
    fn a_kernel_without_uts_ipc_and_time_namespaces_refuses_their_flags() {
        let mut env = Environment::reference();
        env.ns_links.retain(|l| !matches!(l, NsLink::Uts | NsLink::Ipc | NsLink::Time | NsLink::TimeForChildren));
        // The start-up headroom probe made none of them either (EINVAL).
        for kind in ["uts", "ipc", "time"] {
            env.headroom.flat.remove(kind);
        }
        for (flag, rule) in
            [(bits::NEWUTS, "uts-missing"), (bits::NEWIPC, "ipc-missing"), (bits::NEWTIME, "time-missing")]
        {
            let c = Case::unshare(&[flag]);
            let s = steps(&env, &c);
            assert_eq!((s[0].result, s[0].rule), (CallResult::Failure(Errno::EINVAL), rule));
        }
        let s = steps(&env, &Case::unshare(&[bits::NEWNET | bits::NEWCGROUP]));
        assert_eq!(s[0].result, CallResult::Success);
    }
}
