//! The oracle against the spec's measured tables (unshare-semantics.md §5).

use super::*;
use crate::abi::errno::Errno;
use crate::abi::flags::bits::*;
use crate::abi::ns::NsLink;
use crate::case::{Privilege, Setup};

const P: &KernelProfile = &profile::LINUX_6_18;

fn results(env: &Environment, setup: Setup, flags: &[u64]) -> Vec<CallResult> {
    let case = Case { setup, steps: flags.iter().map(|f| Step::Unshare(RawFlags(*f))).collect() };
    match predict(P, env, &case) {
        Prediction::Steps { steps, .. } => steps.iter().map(|e| e.result).collect(),
        Prediction::Skip { reason } => panic!("unexpected skip: {reason}"),
    }
}

fn one(setup: Setup, flags: u64) -> CallResult {
    results(&Environment::reference(), setup, &[flags])[0]
}

fn setup(privilege: Privilege, threads: u8) -> Setup {
    Setup { privilege, threads, ..Setup::default() }
}

const OK: CallResult = CallResult::Success;
const EINVAL: CallResult = CallResult::Failure(Errno::EINVAL);
const EPERM: CallResult = CallResult::Failure(Errno::EPERM);
const ENOSPC: CallResult = CallResult::Failure(Errno::ENOSPC);

#[test]
fn single_bits_match_spec_5_1() {
    let accepted = [7, 8, 9, 10, 11, 16, 17, 18, 25, 26, 27, 28, 29, 30];
    for bit in 0..64 {
        let want = if accepted.contains(&bit) { OK } else { EINVAL };
        assert_eq!(one(Setup::default(), 1u64 << bit), want, "bit {bit}");
    }
    assert_eq!(one(Setup::default(), 0), OK);
    assert_eq!(one(Setup::default(), 0x7E07_0F80), OK);
    for bad in [u64::MAX, 0xffff_ffff, 0xffff_ffff_0000_0000, 0x11, 0xff, 0x0010_0000, NEWIPC | 0x8000_0000] {
        assert_eq!(one(Setup::default(), bad), EINVAL, "{bad:#x}");
    }
    assert_eq!(one(Setup::default(), NEWIPC | SYSVSEM), OK);
}

#[test]
fn second_thread_row_of_spec_5_2() {
    let s = setup(Privilege::Root, 1);
    for f in [THREAD, SIGHAND, VM, NEWUSER] {
        assert_eq!(one(s.clone(), f), EINVAL, "{}", RawFlags(f));
    }
    for f in [FS, FILES, NEWNS, NEWPID, NEWTIME, SYSVSEM, NEWNET] {
        assert_eq!(one(s.clone(), f), OK, "{}", RawFlags(f));
    }
}

#[test]
fn no_cap_sys_admin_matches_spec_5_4() {
    for privilege in [Privilege::RootWithoutSysAdmin, Privilege::Nobody] {
        let s = &setup(privilege, 0);
        for f in [NEWNS, NEWUTS, NEWIPC, NEWPID, NEWCGROUP, NEWNET, NEWTIME] {
            assert_eq!(one(s.clone(), f), EPERM, "{privilege:?} {}", RawFlags(f));
        }
        for f in [NEWUSER, NEWUSER | NEWNS, NEWUSER | 0x7E07_0F80, FILES | FS | SYSVSEM, THREAD | SIGHAND | VM] {
            assert_eq!(one(s.clone(), f), OK, "{privilege:?} {}", RawFlags(f));
        }
    }
}

#[test]
fn nobody_step_by_step_matches_spec_5_4() {
    let env = Environment::reference();
    let got = results(&env, setup(Privilege::Nobody, 0), &[NEWUSER, NEWNS, NEWUSER, NEWUSER | (1 << 32)]);
    assert_eq!(got, vec![OK, OK, EPERM, EINVAL]);
}

#[test]
fn newpid_twice_and_newtime_twice() {
    let env = Environment::reference();
    assert_eq!(results(&env, Setup::default(), &[NEWPID, NEWPID]), vec![OK, EINVAL]);
    assert_eq!(results(&env, Setup::default(), &[NEWPID, NEWPID | NEWUTS]), vec![OK, EINVAL]);
    assert_eq!(results(&env, Setup::default(), &[NEWTIME, NEWTIME]), vec![OK, OK]);
}

#[test]
fn precedence_rows_of_spec_5_5() {
    let no_cap = setup(Privilege::RootWithoutSysAdmin, 0);
    assert_eq!(one(no_cap.clone(), NEWNS | (1 << 32)), EINVAL);
    assert_eq!(one(no_cap, NEWNS | 0x8000_0000), EINVAL);
    let no_cap_threaded = setup(Privilege::RootWithoutSysAdmin, 1);
    assert_eq!(one(no_cap_threaded.clone(), NEWNS | VM), EINVAL);
    assert_eq!(one(no_cap_threaded, NEWNS), EPERM);
    // NEWPID, drop CAP_SYS_ADMIN, NEWPID again: EPERM wins over "already unshared".
    let env = Environment::reference();
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    assert_eq!(predict_unshare(P, &env, &mut state, RawFlags(NEWPID)).result, OK);
    state.cap_sys_admin = false;
    state.cap_eff &= !(1 << 21);
    let e = predict_unshare(P, &env, &mut state, RawFlags(NEWPID));
    assert_eq!((e.result, e.rule), (EPERM, "ns-needs-cap-sys-admin"));
    // chrooted + NEWUSER|NEWPID after a first NEWPID: the user-ns step comes first.
    state.cap_sys_admin = true;
    state.cap_eff |= 1 << 21;
    state.chrooted = true;
    assert_eq!(predict_unshare(P, &env, &mut state, RawFlags(NEWUSER | NEWPID)).result, EPERM);
    // Depth limit beats chroot.
    state.userns_depth = Some(33);
    assert_eq!(predict_unshare(P, &env, &mut state, RawFlags(NEWUSER)).result, ENOSPC);
}

#[test]
fn per_user_ns_limits_of_spec_5_5() {
    for (kind, flag) in [
        ("mnt", NEWNS),
        ("uts", NEWUTS),
        ("ipc", NEWIPC),
        ("pid", NEWPID),
        ("cgroup", NEWCGROUP),
        ("net", NEWNET),
        ("time", NEWTIME),
        ("user", NEWUSER),
    ] {
        let mut env = Environment::reference();
        env.max_namespaces.insert(kind.into(), 0);
        assert_eq!(results(&env, Setup::default(), &[flag]), vec![ENOSPC], "{kind}");
    }
    let mut env = Environment::reference();
    env.max_namespaces.insert("uts".into(), 0);
    assert_eq!(results(&env, Setup::default(), &[NEWNS | NEWUTS]), vec![ENOSPC]);
    env.max_namespaces.insert("uts".into(), 10);
    env.max_namespaces.insert("mnt".into(), 0);
    assert_eq!(results(&env, Setup::default(), &[NEWPID, NEWNS | NEWPID]), vec![OK, ENOSPC]);
    env.max_namespaces.insert("mnt".into(), 10);
    env.max_namespaces.insert("pid".into(), 0);
    assert_eq!(results(&env, Setup::default(), &[NEWPID]), vec![ENOSPC]);
    env.max_namespaces.insert("pid".into(), 10);
    env.max_namespaces.insert("net".into(), 0);
    assert_eq!(results(&env, Setup::default(), &[NEWUTS | NEWNET | NEWTIME]), vec![ENOSPC]);
}

#[test]
fn max_pid_zero_after_newpid_is_einval() {
    let mut env = Environment::reference();
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    assert_eq!(predict_unshare(P, &env, &mut state, RawFlags(NEWPID)).result, OK);
    env.max_namespaces.insert("pid".into(), 0);
    assert_eq!(predict_unshare(P, &env, &mut state, RawFlags(NEWPID)).result, EINVAL);
}

#[test]
fn success_effects_follow_spec_4() {
    let env = Environment::reference();
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    let e = predict_unshare(P, &env, &mut state, RawFlags(0x7E07_0F80));
    assert_eq!(e.result, OK);
    for link in NsLink::ALL {
        let want = match link {
            NsLink::Pid | NsLink::Time => LinkExpect::Unchanged,
            NsLink::PidForChildren => LinkExpect::Unreadable(Errno::ENOENT),
            _ => LinkExpect::Fresh,
        };
        assert_eq!(e.links[link.index()], want, "{link}");
    }
    assert_eq!(e.creds, Creds { uid: 65534, gid: 65534, cap_eff: (1 << 41) - 1 });
    let e = predict_unshare(P, &env, &mut state, RawFlags(FILES | FS | SYSVSEM | THREAD));
    assert_eq!(e.result, OK);
    assert!(e.links.iter().all(|l| *l == LinkExpect::Unchanged));
    assert_eq!(e.creds, Creds { uid: 65534, gid: 65534, cap_eff: (1 << 41) - 1 });
}

#[test]
fn failures_predict_no_change() {
    let env = Environment::reference();
    let case = Case {
        setup: setup(Privilege::Nobody, 2),
        steps: vec![Step::Unshare(RawFlags(u64::MAX)), Step::Unshare(RawFlags(NEWNS))],
    };
    let Prediction::Steps { steps, .. } = predict(P, &env, &case) else { panic!() };
    for e in steps {
        assert!(!e.result.is_success());
        assert!(e.links.iter().all(|l| *l == LinkExpect::Unchanged));
        assert_eq!(e.creds, Creds { uid: 65534, gid: 65534, cap_eff: 0 });
    }
}

#[test]
fn nobody_is_skipped_where_65534_is_unmapped() {
    let mut env = Environment::reference();
    env.nobody_mapped = false;
    let case = Case { setup: setup(Privilege::Nobody, 0), steps: vec![Step::Unshare(RawFlags(0))] };
    assert!(matches!(predict(P, &env, &case), Prediction::Skip { .. }));
}

#[test]
fn read_through_pidfd_ioctls_pid_for_children_names_the_pending_namespace() {
    use crate::abi::ns::NsObserver;
    let links = Environment::reference();
    let ioctls = Environment { ns_observer: NsObserver::PidfdIoctl, ..Environment::reference() };
    let pfc = NsLink::PidForChildren.index();
    let steps = [Step::Unshare(RawFlags(NEWPID)), Step::ForkExit];
    let mut a = CallerState::after_setup(&links, &Setup::default()).unwrap();
    let mut b = CallerState::after_setup(&ioctls, &Setup::default()).unwrap();
    let (a0, b0) = (predict_step(P, &links, &mut a, &steps[0]), predict_step(P, &ioctls, &mut b, &steps[0]));
    assert_eq!(a0.links[pfc], LinkExpect::Unreadable(Errno::ENOENT));
    assert_eq!(b0.links[pfc], LinkExpect::Fresh);
    // The link appears when the namespace's init has come and gone; the ioctl showed it already.
    let (a1, b1) = (predict_step(P, &links, &mut a, &steps[1]), predict_step(P, &ioctls, &mut b, &steps[1]));
    assert_eq!(a1.links[pfc], LinkExpect::Fresh);
    assert_eq!(b1.links[pfc], LinkExpect::Unchanged);
    // Nothing else differs.
    assert_eq!((a0.result, a0.rule, a1.result), (b0.result, b0.rule, b1.result));
}

/// Spec §6 M12, as Debian's 5.10.223 (no unshare_fs backport) showed it under qemu.
mod without_unshare_fs_fix {
    use super::*;
    use crate::case::Chroot;
    use crate::model::expect::LinkExpect;

    fn nofix() -> KernelProfile {
        KernelProfile { newns_always_new_fs: false, ..profile::LINUX_5_10 }
    }

    fn predicted(p: &KernelProfile, case: &Case) -> Vec<Expected> {
        match predict(p, &Environment::reference(), case) {
            Prediction::Steps { steps, .. } => steps,
            Prediction::Skip { reason } => panic!("unexpected skip: {reason}"),
        }
    }

    fn case_2141() -> Case {
        let all = NEWTIME
            | FS
            | FILES
            | SIGHAND
            | THREAD
            | NEWNS
            | SYSVSEM
            | NEWCGROUP
            | NEWUTS
            | NEWIPC
            | NEWUSER
            | NEWPID
            | NEWNET;
        Case {
            setup: Setup { pidns_level: Some(32), ..setup(Privilege::Root, 0) },
            steps: vec![
                Step::Unshare(RawFlags(all)),
                Step::Chroot(Chroot::Root),
                Step::Unshare(RawFlags(NEWUTS | NEWUSER | NEWNET)),
                Step::ForkExit,
            ],
        }
    }

    #[test]
    fn a_failed_newns_with_newuser_leaves_the_caller_chrooted_with_proc() {
        let with_fix = predicted(&profile::LINUX_5_10, &case_2141());
        let without = predicted(&nofix(), &case_2141());
        assert_eq!(with_fix[0].result, ENOSPC);
        assert_eq!(without[0].result, ENOSPC);
        assert!(!with_fix[0].root_detached && without[0].root_detached);
        // The copy belongs to the new user namespace: its mounts are locked and stay attached.
        assert!(without[0].links.iter().all(|l| *l == LinkExpect::Unchanged));
        assert!(without[0].proc_visible);
        assert_eq!(with_fix[2].result, OK);
        assert_eq!((without[2].result, without[2].rule), (EPERM, "user-chrooted"));
    }

    #[test]
    fn a_failed_newns_alone_takes_proc_away() {
        let case = Case {
            setup: Setup { pidns_level: Some(32), ..setup(Privilege::Root, 0) },
            steps: vec![Step::Unshare(RawFlags(NEWNS | NEWPID)), Step::Unshare(RawFlags(NEWUTS | NEWUSER))],
        };
        let without = predicted(&nofix(), &case);
        assert_eq!(without[0].result, ENOSPC);
        assert!(without[0].root_detached && !without[0].proc_visible);
        for link in NsLink::ALL {
            assert_eq!(without[0].links[link.index()], LinkExpect::Unreadable(Errno::ENOENT), "{link}");
        }
        assert_eq!((without[1].result, without[1].rule), (EPERM, "user-chrooted"));
        let with_fix = predicted(&profile::LINUX_5_10, &case);
        assert!(!with_fix[0].root_detached && with_fix[0].proc_visible && with_fix[1].result == OK);
    }

    /// Case 2672 of `run --cases 3000 --seed 3` on 5.10.223: a copy made for another user
    /// namespace locked the mounts, later copies keep them locked, and a detached root then
    /// keeps /proc even though the last copy was owned by the caller's own user namespace.
    #[test]
    fn locked_mounts_stay_locked_in_later_copies() {
        let case = Case {
            setup: setup(Privilege::UserNs, 0),
            steps: vec![
                Step::Unshare(RawFlags(THREAD | NEWNS | NEWUSER | NEWPID)),
                Step::Unshare(RawFlags(VM | THREAD | SYSVSEM | NEWCGROUP | NEWUSER)),
                Step::Unshare(RawFlags(VM | SIGHAND | NEWNS | NEWCGROUP | NEWUTS)),
                Step::Unshare(RawFlags(VM | NEWNS | SYSVSEM | NEWCGROUP | NEWPID)),
            ],
        };
        let without = predicted(&nofix(), &case);
        assert_eq!(without.iter().map(|e| e.result).collect::<Vec<_>>(), [OK, EPERM, OK, EINVAL]);
        assert!(without[3].root_detached && without[3].proc_visible);
        assert!(without[3].links.iter().all(|l| *l == LinkExpect::Unchanged));
    }

    #[test]
    fn a_shared_fs_struct_or_an_early_failure_detaches_nothing() {
        // Threads share the fs_struct: it is copied, the copy is freed with the failure.
        let threads = Case {
            setup: Setup { pidns_level: Some(32), ..setup(Privilege::Root, 1) },
            steps: vec![Step::Unshare(RawFlags(NEWNS | NEWPID))],
        };
        assert!(!predicted(&nofix(), &threads)[0].root_detached);
        // A failure before copy_mnt_ns (the mask) changes nothing either.
        let early = Case { setup: setup(Privilege::Root, 0), steps: vec![Step::Unshare(RawFlags(NEWNS | 1 << 40))] };
        assert!(!predicted(&nofix(), &early)[0].root_detached);
    }
}

#[test]
fn a_type_without_its_link_is_present_when_the_probe_made_one() {
    // gVisor 2022: no mnt/uts/ipc links, yet unshare(NEWUTS) makes a namespace.
    let mut env = Environment::reference();
    env.ns_links.retain(|l| *l != NsLink::Uts);
    assert_eq!(results(&env, Setup::default(), &[NEWUTS]), vec![OK]);
    // A configured-out type (Linux without CONFIG_UTS_NS): the probe's unshare failed.
    env.headroom.flat.insert("uts".into(), crate::env::Room { made: 0, stopped_by: Some(libc::EINVAL) });
    assert_eq!(results(&env, Setup::default(), &[NEWUTS]), vec![EINVAL]);
}

#[test]
fn without_a_chroot_tree_cases_that_chroot_into_it_are_skipped() {
    let mut env = Environment::reference();
    let into_tree = Case { setup: Setup::default(), steps: vec![Step::Chroot(crate::case::Chroot::Subdir)] };
    let to_root = Case { setup: Setup::default(), steps: vec![Step::Chroot(crate::case::Chroot::Root)] };
    assert!(matches!(predict(P, &env, &into_tree), Prediction::Steps { .. }));
    env.no_chroot_tree = Some("bind /proc: EINVAL".into());
    match predict(P, &env, &into_tree) {
        Prediction::Skip { reason } => assert!(reason.contains("no chroot tree"), "{reason}"),
        Prediction::Steps { .. } => panic!("predicted a chroot into a tree that does not exist"),
    }
    assert!(matches!(predict(P, &env, &to_root), Prediction::Steps { .. }));
}

#[test]
fn limit_zero_needs_its_sysctl() {
    let mut env = Environment::reference();
    let s = Setup { limit_zero: Some(crate::case::NsType::Uts), ..Setup::default() };
    assert!(CallerState::after_setup(&env, &s).is_ok());
    env.max_namespaces.remove("uts");
    let e = CallerState::after_setup(&env, &s).unwrap_err();
    assert!(e.contains("max_uts_namespaces"), "{e}");
}
