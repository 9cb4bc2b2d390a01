//! The checker must be able to fail: observations that contradict the model
//! are fed in, and the right invariant has to report a violation.

use super::*;
use crate::abi::errno::{CallResult, Errno};
use crate::abi::flags::RawFlags;
use crate::abi::ns::NsLink;
use crate::case::Case;
use crate::exec::observe::{NsValue, Snapshot};
use crate::model::{predict, profile::LINUX_6_18};

fn env() -> Environment {
    Environment::reference()
}

mod caps;
mod honest;
use honest::{honest, honest_on};

fn ids(v: &CaseVerdict) -> Vec<&'static str> {
    v.violations.iter().map(|v| v.invariant).collect()
}

#[test]
fn honest_observations_pass() {
    let env = env();
    for flags in [0u64, 0x7E07_0F80, 1 << 32, 0x2000_0000, 0x80, 0x1000_0000 | 0x2_0000, 0x400, 0x4_0000] {
        let case = Case::unshare(&[flags, flags]);
        let (p, o) = honest(&env, &case);
        let v = judge(&env, &case, &p, &o);
        assert!(v.violations.is_empty(), "{case}: {:?}", v.violations);
        assert!(!v.held.is_empty());
    }
}

#[test]
fn success_for_an_unknown_bit_is_caught() {
    let env = env();
    let case = Case::unshare(&[1 << 32]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].result = CallResult::Success;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["unknown-bits-einval", "errno-matches-model"]);
}

#[test]
fn a_failure_that_changes_state_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000 | 1]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns[NsLink::Uts.index()] = NsValue::Inode(1);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["unknown-bits-einval", "failure-changes-nothing"]);
}

#[test]
fn a_success_without_a_new_namespace_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after = trace.before.clone();
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted"]);
}

#[test]
fn newpid_moving_the_caller_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x2000_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.pid = 1;
    trace.steps[0].after.ns[NsLink::Pid.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted", "newpid-affects-children-only"]);
}

#[test]
fn newtime_moving_the_caller_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x80]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns[NsLink::Time.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted", "newtime-affects-children-only"]);
}

#[test]
fn newuser_with_wrong_credentials_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x1000_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.uid = 0;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted", "newuser-credentials"]);
}

#[test]
fn noop_flag_changing_a_link_is_caught() {
    let env = env();
    let case = Case::unshare(&[0x400]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns[NsLink::Mnt.index()] = NsValue::Inode(9);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted", "noop-flags-change-nothing"]);
}

#[test]
fn reused_inode_is_not_fresh() {
    let env = env();
    let case = Case::unshare(&[0x0400_0000]);
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    let old_net = env.baseline.link(NsLink::Net);
    trace.steps[0].after.ns[NsLink::Uts.index()] = old_net;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted"]);
}

#[test]
fn timeouts_and_crashes_are_violations_not_passes() {
    let env = env();
    let case = Case::unshare(&[0]);
    let p = predict(&LINUX_6_18, &env, &case);
    for o in [Outcome::Timeout { timeout_ms: 5, partial: None }, Outcome::Crash { signal: 11, partial: None }] {
        let v = judge(&env, &case, &p, &o);
        assert_eq!(ids(&v), vec![CASE_COMPLETES]);
        assert!(!v.reached_syscall);
    }
    let v = judge(&env, &case, &p, &Outcome::SetupFailed { op: "x".into(), errno: Errno::EPERM });
    assert!(v.broken.is_some() && v.violations.is_empty());
    let mut t = Tally::new();
    t.add(&v);
    assert_eq!(t.exit_code(), 2);
}

#[test]
fn skipped_invariants_are_named() {
    let mut env = env();
    env.ns_links.retain(|l| !matches!(l, NsLink::Time | NsLink::TimeForChildren));
    // Such a kernel's start-up probe could not make a time namespace either.
    env.headroom.flat.insert("time".into(), crate::env::Room { made: 0, stopped_by: Some(libc::EINVAL) });
    let case = Case::unshare(&[0x80]);
    let p = predict(&LINUX_6_18, &env, &case);
    // Without time namespaces the model predicts EINVAL; a kernel agreeing is judged, and
    // the newtime invariant is not applicable at all.
    let before: Snapshot = env.baseline.clone();
    let o = Outcome::Completed {
        trace: Trace {
            probe: Some(Default::default()),
            before: before.clone(),
            steps: vec![StepObservation { result: CallResult::Failure(Errno::EINVAL), after: before, child: None }],
        },
    };
    let v = judge(&env, &case, &p, &o);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
}

#[test]
fn honest_sharing_setups_pass_and_a_lie_about_files_is_caught() {
    use crate::abi::flags::RawFlags;
    use crate::case::{Setup, Sibling, Step};
    let env = env();
    let case = Case {
        setup: Setup {
            siblings: vec![Sibling::Files, Sibling::Fs, Sibling::VmSighand],
            sem_undo: true,
            fds: 1,
            ..Setup::default()
        },
        steps: vec![Step::Unshare(RawFlags(0x400 | 0x4_0000)), Step::Unshare(RawFlags(0x800)), Step::Fork],
    };
    let (p, o) = honest(&env, &case);
    let v = judge(&env, &case, &p, &o);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    // The kernel "succeeds" at FILES but leaves the table shared.
    let (p, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.siblings[0].kcmp[0] = crate::exec::observe::IntOrErrno::Value(0);
    trace.probe.as_mut().unwrap().sibling_fd_visible = Some(crate::exec::observe::IntOrErrno::Value(1));
    let v = judge(&env, &case, &p, &o);
    let got = ids(&v);
    assert!(got.contains(&"files-private-after-unshare") && got.contains(&"kcmp-matches-model"), "{got:?}");
}

#[test]
fn a_replaced_fs_struct_is_caught_only_where_the_model_keeps_it() {
    use crate::abi::flags::RawFlags;
    use crate::case::{Setup, Sibling, Step};
    use crate::exec::observe::IntOrErrno;
    use crate::model::profile::LINUX_6_18_WITHOUT_UNSHARE_FS_FIX;
    let env = env();
    let case = Case { setup: Setup { siblings: vec![Sibling::Files], ..Setup::default() }, steps: vec![] };
    let with = |flags: u64| Case { steps: vec![Step::Unshare(RawFlags(flags))], ..case.clone() };
    // The kernel hands the caller a new fs_struct: kcmp FS against the files sibling flips.
    let flip = |c: &Case, p: &Prediction| {
        let (_, mut o) = honest(&env, c);
        let Outcome::Completed { trace } = &mut o else { unreachable!() };
        trace.before.siblings[0].kcmp[1] = IntOrErrno::Value(1);
        trace.steps[0].after.siblings[0].kcmp[1] = IntOrErrno::Value(2);
        judge(&env, c, p, &o)
    };
    // NEWUTS keeps the fs_struct: a flip is a violation.
    let c = with(0x0400_0000);
    let v = flip(&c, &predict(&LINUX_6_18, &env, &c));
    assert_eq!(ids(&v), vec!["fs-struct-kept-unless-copied"]);
    // NEWNS copies it on 6.18 (the 2026 fix): no violation; the pre-fix model keeps it.
    let c = with(0x2_0000);
    assert!(flip(&c, &predict(&LINUX_6_18, &env, &c)).violations.is_empty());
    let v = flip(&c, &predict(&LINUX_6_18_WITHOUT_UNSHARE_FS_FIX, &env, &c));
    assert_eq!(ids(&v), vec!["fs-struct-kept-unless-copied"]);
}

/// An environment whose executor measured a process limit and a descriptor limit.
fn limited_env() -> Environment {
    let mut env = env();
    env.resources = crate::env::resources::Resources {
        measured: true,
        nofile_soft: Some(24),
        fds_inherited: Some(4),
        nproc_soft: Some(10),
        spare_tasks: Some(7),
        ..Default::default()
    };
    env
}

#[test]
fn an_unreadable_thread_count_is_skipped_not_judged_as_zero_threads() {
    let case = Case::unshare(&[0x400]);
    let (prediction, mut outcome) = honest(&env(), &case);
    let Outcome::Completed { trace } = &mut outcome else { panic!() };
    // What the child used to report when /proc/self/task could not be opened.
    trace.steps[0].after.threads = 0;
    let wrong = judge(&env(), &case, &prediction, &outcome);
    assert!(ids(&wrong).contains(&"success-changes-exactly-predicted"), "{:?}", wrong.violations);
    // What it reports now: the errno, which is no observation.
    let Outcome::Completed { trace } = &mut outcome else { panic!() };
    trace.steps[0].after.threads_error = Some(Errno(libc::EMFILE));
    let v = judge(&env(), &case, &prediction, &outcome);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    let reason = &v.skipped["success-changes-exactly-predicted"];
    assert!(reason.contains("thread count could not be read (EMFILE)"), "{reason}");
}

#[test]
fn eagain_from_a_fork_step_under_a_process_limit_is_not_a_kernel_violation() {
    let mut case = Case::unshare(&[0]);
    case.steps = vec![Step::Fork, Step::Unshare(crate::abi::flags::RawFlags(0x400))];
    let eagain = |env: &Environment| {
        let (prediction, mut outcome) = honest(env, &case);
        let Outcome::Completed { trace } = &mut outcome else { panic!() };
        trace.steps[0].result = CallResult::Failure(Errno::EAGAIN);
        judge(env, &case, &prediction, &outcome)
    };
    // Without a measured limit, EAGAIN is the kernel's answer and contradicts the model.
    assert!(ids(&eagain(&env())).contains(&"errno-matches-model"));
    let v = eagain(&limited_env());
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert!(v.skipped.values().all(|r| r.contains("EAGAIN under RLIMIT_NPROC 10")), "{:?}", v.skipped);
    assert!(v.skipped.contains_key("errno-matches-model"), "{:?}", v.skipped);
}

#[test]
fn a_setup_stopped_by_a_measured_limit_is_skipped_else_broken() {
    let case = Case::unshare(&[0]);
    let prediction = predict(&LINUX_6_18, &env(), &case);
    let outcome = Outcome::SetupFailed { op: "clone of a sibling".into(), errno: Errno(libc::EMFILE) };
    let v = judge(&env(), &case, &prediction, &outcome);
    assert!(v.broken.is_some() && v.case_skipped.is_none());
    let v = judge(&limited_env(), &case, &prediction, &outcome);
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert!(v.case_skipped.as_deref().unwrap().contains("ran out of file descriptors under RLIMIT_NOFILE 24"));
}

/// Debian's 5.10.223 (no unshare_fs backport) as the without-fix variant describes it: judged
/// against current Linux its violations are labelled as that known bug; judged against the
/// variant it passes; one more lie on top of it is not the known bug.
#[test]
fn a_kernel_without_the_unshare_fs_fix_is_named_as_that_known_bug() {
    use crate::abi::flags::bits::*;
    use crate::case::{Privilege, Setup};
    use crate::model::profile::{LINUX_5_10, resolve};
    let env = env();
    let nofix = resolve("linux-5.10-without-unshare-fs-fix", "").unwrap().0;
    let level_32 = Setup { pidns_level: Some(32), privilege: Privilege::Root, ..Setup::default() };
    let cases = [
        Case {
            setup: level_32.clone(),
            steps: vec![Step::Unshare(RawFlags(NEWNS | NEWPID)), Step::Unshare(RawFlags(NEWUTS | NEWUSER))],
        },
        Case {
            setup: level_32,
            steps: vec![
                Step::Unshare(RawFlags(NEWNS | NEWPID | NEWUSER | NEWNET)),
                Step::Chroot(crate::case::Chroot::Root),
                Step::Unshare(RawFlags(NEWUTS | NEWUSER | NEWNET)),
            ],
        },
    ];
    for case in &cases {
        let (on_nofix, outcome) = honest_on(nofix, &env, case);
        let v = judge(&env, case, &on_nofix, &outcome);
        assert!(v.violations.is_empty(), "{case}: the variant must describe its own kernel: {:?}", v.violations);
        let mut v = judge(&env, case, &predict(&LINUX_5_10, &env, case), &outcome);
        assert!(ids(&v).contains(&"errno-matches-model"), "{case}: {:?}", ids(&v));
        known::label(&LINUX_5_10, &env, case, &outcome, &mut v);
        assert_eq!(v.known_bug, Some(known::UNSHARE_FS_FIX_MISSING.id), "{case}");
        // The variant itself labels nothing: its violations are not that bug's.
        let mut again = judge(&env, case, &on_nofix, &outcome);
        known::label(nofix, &env, case, &outcome, &mut again);
        assert_eq!(again.known_bug, None);
    }
    // One lie more (the failed call also changed the uts namespace): no label.
    let case = &cases[0];
    let (_, mut outcome) = honest_on(nofix, &env, case);
    let Outcome::Completed { trace } = &mut outcome else { unreachable!() };
    trace.steps[1].result = CallResult::Success;
    let mut v = judge(&env, case, &predict(&LINUX_5_10, &env, case), &outcome);
    assert!(v.failed());
    known::label(&LINUX_5_10, &env, case, &outcome, &mut v);
    assert_eq!(v.known_bug, None, "a case the variant does not explain keeps no label");
}

/// The detached root of the variant is judged, not skipped: a failed NEWNS that left the links
/// readable where the variant says they are gone is a violation of failure-changes-nothing.
#[test]
fn a_detached_root_is_judged_exactly() {
    use crate::abi::flags::bits::*;
    use crate::case::{Privilege, Setup};
    let env = env();
    let nofix = crate::model::profile::resolve("linux-5.10-without-unshare-fs-fix", "").unwrap().0;
    let case = Case {
        setup: Setup { pidns_level: Some(32), privilege: Privilege::Root, ..Setup::default() },
        steps: vec![Step::Unshare(RawFlags(NEWNS | NEWPID))],
    };
    let (p, mut o) = honest_on(nofix, &env, &case);
    let v = judge(&env, &case, &p, &o);
    assert_eq!(v.held.get("failure-changes-nothing"), Some(&1), "{:?}", v.skipped);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns = trace.before.ns;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["failure-changes-nothing"]);
}

#[test]
fn a_link_that_does_not_name_namespaces_is_not_judged() {
    // NEWNET|unknown bit: fails, so every link must stay; the net link reads another id.
    let case = Case::unshare(&[0x4000_0000 | 1]);
    let mut trusted = env();
    let (p, mut o) = honest(&trusted, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].after.ns[NsLink::Net.index()] = NsValue::Inode(1);
    let v = judge(&trusted, &case, &p, &o);
    assert_eq!(ids(&v), vec!["unknown-bits-einval", "failure-changes-nothing"]);
    // The start-up probe found the net link unreliable (gVisor): it is left out of ns_links.
    trusted.ns_links.retain(|l| *l != NsLink::Net);
    let v = judge(&trusted, &case, &p, &o);
    assert!(ids(&v).is_empty(), "{:?}", v.violations);
    assert!(v.held.contains_key("failure-changes-nothing"), "{:?}", v.held);
}

/// Where the links do not name namespaces (gVisor), a NEWNET, NEWIPC or NEWNS that reports
/// success without a new namespace is still caught, by the markers of `exec::child::markers`.
#[test]
fn a_namespace_not_new_by_behaviour_is_caught_without_links() {
    use crate::abi::flags::bits::{NEWIPC, NEWNET, NEWNS};
    use crate::exec::observe::IntOrErrno;
    let mut untrusted = env();
    untrusted.ns_links.retain(|l| !matches!(l, NsLink::Net | NsLink::Ipc | NsLink::Mnt));
    for (flag, lie) in [(NEWNET, 0), (NEWIPC, 1), (NEWNS, 2)] {
        let case = Case::unshare(&[flag]);
        let (p, mut o) = honest(&untrusted, &case);
        let v = judge(&untrusted, &case, &p, &o);
        assert!(ids(&v).is_empty(), "{:?}", v.violations);
        assert_eq!(v.held.get(behaviour::NAMESPACES_BY_BEHAVIOUR), Some(&4), "{:?}", v.held);
        // The lie: the links (not trusted here) changed, but the marker is still reachable.
        let Outcome::Completed { trace } = &mut o else { unreachable!() };
        let probe = trace.probe.as_mut().unwrap();
        let still = IntOrErrno::Value(1);
        match lie {
            0 => probe.net_marker = Some([still, still]),
            1 => probe.ipc_marker = Some([still, still]),
            _ => probe.mnt_root_kept = Some(still),
        }
        let v = judge(&untrusted, &case, &p, &o);
        assert_eq!(ids(&v), vec![behaviour::NAMESPACES_BY_BEHAVIOUR], "flag {flag:#x}");
    }
}

/// An unreliable link's reading names no namespace (gVisor 2024 numbers its `user` link anew at
/// each read, from the counter of new namespaces): a new namespace that later gets that number
/// was not "alive before".
#[test]
fn an_unreliable_links_reading_does_not_make_a_new_namespace_old() {
    let case = Case::unshare(&[crate::abi::flags::bits::NEWNET]);
    let mut env = env();
    let (p, o) = honest(&env, &case);
    let Outcome::Completed { trace } = &o else { unreachable!() };
    let new_net = trace.steps[0].after.link(NsLink::Net);
    // The executor's user link once read as that number.
    env.baseline.ns[NsLink::User.index()] = new_net;
    let v = judge(&env, &case, &p, &o);
    assert_eq!(ids(&v), vec!["success-changes-exactly-predicted"], "a reliable link's reading counts");
    env.ns_links.retain(|l| *l != NsLink::User);
    let v = judge(&env, &case, &p, &o);
    assert!(ids(&v).is_empty(), "{:?}", v.violations);
}

#[test]
fn an_i386_entry_that_reads_the_high_half_is_caught() {
    let env = env();
    let case = Case {
        setup: Default::default(),
        steps: vec![crate::case::Step::UnshareInt80(RawFlags((1 << 32) | 0x0400_0000))],
    };
    let (p, o) = honest(&env, &case);
    let v = judge(&env, &case, &p, &o);
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert!(v.held.contains_key("int80-passes-low-32-bits"), "{:?}", v.held);
    // A kernel that passed the whole word would refuse bit 32 and keep the UTS namespace.
    let (_, mut o) = honest(&env, &case);
    let Outcome::Completed { trace } = &mut o else { unreachable!() };
    trace.steps[0].result = CallResult::Failure(Errno::EINVAL);
    trace.steps[0].after = trace.before.clone();
    let v = judge(&env, &case, &p, &o);
    assert!(ids(&v).contains(&"int80-passes-low-32-bits"), "{:?}", ids(&v));
    assert!(ids(&v).contains(&"errno-matches-model"), "{:?}", ids(&v));
}

#[test]
fn int80_steps_are_skipped_where_the_entry_is_missing_or_filtered() {
    let case = Case { setup: Default::default(), steps: vec![crate::case::Step::UnshareInt80(RawFlags(0))] };
    let mut env = env();
    assert!(matches!(predict(&LINUX_6_18, &env, &case), crate::model::Prediction::Steps { .. }));
    env.call_probes.int80 = Some(-libc::SIGSEGV);
    let crate::model::Prediction::Skip { reason } = predict(&LINUX_6_18, &env, &case) else { panic!("not skipped") };
    assert!(reason.contains("signal 11"), "{reason}");
    env.call_probes.int80 = Some(0);
    env.seccomp_mode = 2;
    let crate::model::Prediction::Skip { reason } = predict(&LINUX_6_18, &env, &case) else { panic!("not skipped") };
    assert!(reason.contains("seccomp"), "{reason}");
}
