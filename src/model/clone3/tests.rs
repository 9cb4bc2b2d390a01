//! The clone3 model against the kernel sources' rules, without a kernel.

use super::*;
use crate::case::{Case, Privilege, Setup, Step};
use crate::model::{Prediction, predict, profile::LINUX_6_18};

fn results(setup: Setup, steps: &[Step]) -> Vec<(CallResult, &'static str)> {
    results_on(&LINUX_6_18, setup, steps)
}

fn results_on(profile: &KernelProfile, setup: Setup, steps: &[Step]) -> Vec<(CallResult, &'static str)> {
    let env = Environment::reference();
    let case = Case { setup, steps: steps.to_vec() };
    match predict(profile, &env, &case) {
        Prediction::Steps { steps, .. } => steps.iter().map(|e| (e.result, e.rule)).collect(),
        Prediction::Skip { reason } => panic!("unexpected skip: {reason}"),
    }
}

fn c(flags: u64) -> Step {
    Step::Clone3(RawFlags(flags))
}

fn one(flags: u64) -> (CallResult, &'static str) {
    results(Setup::default(), &[c(flags)])[0]
}

const OK: CallResult = CallResult::Success;
const EINVAL: CallResult = CallResult::Failure(Errno::EINVAL);

#[test]
fn single_bits_follow_clone3_args_valid_and_copy_process() {
    for bit in 0..64 {
        let f = 1u64 << bit;
        let (r, rule) = one(f);
        let want: (CallResult, &str) = match f {
            bits::THREAD => (EINVAL, "clone-thread-without-sighand"),
            bits::SIGHAND => (EINVAL, "clone-sighand-without-vm"),
            bits::INTO_CGROUP => (CallResult::Failure(Errno(libc::EBADF)), "clone3-into-cgroup-bad-fd"),
            bits::DETACHED => (EINVAL, "clone3-csignal-or-detached"),
            _ if f & 0x7f != 0 => (EINVAL, "clone3-csignal-or-detached"),
            _ if f > bits::INTO_CGROUP => (EINVAL, "clone3-unknown-bit"),
            _ => (OK, "success"),
        };
        assert_eq!((r, rule), want, "bit {bit} ({})", RawFlags(f));
    }
}

#[test]
fn combinations_unshare_accepts_but_clone_refuses() {
    for (f, rule) in [
        (bits::NEWNS | bits::FS, "clone-newns-with-fs"),
        (bits::NEWUSER | bits::FS, "clone-newuser-with-fs"),
        (bits::NEWIPC | bits::SYSVSEM, "clone-newipc-with-sysvsem"),
        (bits::THREAD | bits::SIGHAND | bits::VM | bits::NEWUSER, "clone-thread-into-new-user-or-pid-ns"),
        (bits::THREAD | bits::SIGHAND | bits::VM | bits::NEWPID, "clone-thread-into-new-user-or-pid-ns"),
        (bits::SIGHAND | bits::VM | bits::CLEAR_SIGHAND, "clone3-sighand-and-clear-sighand"),
    ] {
        assert_eq!(one(f), (EINVAL, rule), "{}", RawFlags(f));
    }
    // Accepted by both: a thread, namespaces with sharing.
    assert_eq!(one(bits::THREAD | bits::SIGHAND | bits::VM), (OK, "success"));
    assert_eq!(one(bits::NEWPID | bits::PARENT), (OK, "success"));
    assert_eq!(one(bits::NEWUSER | bits::NEWNS | bits::FILES), (OK, "success"));
}

#[test]
fn precedence_follows_the_call_order() {
    // clone3_args_valid before copy_process; the capability before NEWIPC|SYSVSEM.
    assert_eq!(one(bits::NEWNS | bits::FS | 1), (EINVAL, "clone3-csignal-or-detached"));
    let no_admin = Setup::with_privilege(Privilege::RootWithoutSysAdmin);
    let r = results(no_admin.clone(), &[c(bits::NEWIPC | bits::SYSVSEM)])[0];
    assert_eq!(r, (CallResult::Failure(Errno::EPERM), "ns-needs-cap-sys-admin"));
    let r = results(no_admin, &[c(bits::NEWUSER | bits::NEWIPC | bits::SYSVSEM)])[0];
    assert_eq!(r, (EINVAL, "clone-newipc-with-sysvsem"));
}

#[test]
fn pid_namespace_states_carry_between_steps() {
    let steps = [Step::Unshare(RawFlags(bits::NEWPID)), c(bits::THREAD | bits::SIGHAND | bits::VM), c(0), c(0)];
    let r = results(Setup::default(), &steps);
    assert_eq!(r[1], (EINVAL, "clone-thread-after-newpid"));
    assert_eq!(r[2], (OK, "success"));
    assert_eq!(r[3], (CallResult::Failure(Errno::ENOMEM), "clone-pid-ns-dead"));
    // A first fork that fails after alloc_pid kills the pending namespace too.
    let steps = [Step::Unshare(RawFlags(bits::NEWPID)), c(bits::INTO_CGROUP), Step::ForkExit];
    let r = results(Setup::default(), &steps);
    assert_eq!(r[1].1, "clone3-into-cgroup-bad-fd");
    assert_eq!(r[2], (CallResult::Failure(Errno::ENOMEM), "fork-after-init-exit"));
    // PARENT from the init of a pid namespace.
    let r = results(Setup::default(), &[Step::Unshare(RawFlags(bits::NEWPID)), Step::Fork, c(bits::PARENT)]);
    assert_eq!(r[2], (EINVAL, "clone-parent-from-init"));
}

#[test]
fn shared_rows_are_unshares_rows() {
    for row in CLONE3_CHECKS {
        if let Some(u) = crate::model::checks::by_id(crate::model::checks::CHECKS_6_18, row.id) {
            assert_eq!((u.errno, u.doc), (row.errno, row.doc), "{}", row.id);
        }
    }
    let ids: Vec<&str> = CLONE3_CHECKS.iter().map(|r| r.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "duplicate ids");
    assert!(ids.contains(&FIRST_ROW_AFTER_COPY_SEMUNDO) && ids.contains(&FIRST_ROW_AFTER_ALLOC_PID));
}

#[test]
fn child_expectations_follow_the_flags() {
    let env = Environment::reference();
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    let d = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::FILES | bits::NEWTIME | bits::VM));
    let child = d.clone3.unwrap().child.unwrap();
    let k = child.kcmp.unwrap();
    assert_eq!(k[0], KcmpExpect::Same);
    assert_eq!(k[1], KcmpExpect::Different);
    assert_eq!(k[2], KcmpExpect::Same);
    assert_eq!(child.links[NsLink::Time.index()], ChildLink::ParentBefore(NsLink::Time));
    assert_eq!(child.links[NsLink::TimeForChildren.index()], ChildLink::Fresh);
    let d = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::NEWPID | bits::VFORK | bits::VM));
    let child = d.clone3.unwrap().child.unwrap();
    assert_eq!(child.kcmp, None);
    assert_eq!(child.tid, ChildTid::One);
    assert!(child.reaped_by_caller);
    let d = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::PARENT | bits::SYSVSEM));
    let exp = d.clone3.unwrap();
    assert_eq!(exp.exit_signal, 0);
    assert!(exp.undo_list_made);
    assert!(!exp.child.unwrap().reaped_by_caller);
}

#[test]
fn a_sighand_pid_ns_init_child_leaves_sigchld_ignored() {
    let env = Environment::reference();
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    let first = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::NEWPID | bits::VM | bits::SIGHAND));
    let child = first.clone3.unwrap().child.unwrap();
    // Its own exit already finds SIGCHLD ignored: auto-reaped, no signal.
    assert!(!child.reaped_by_caller);
    assert_eq!(child.sigchld, Some(false));
    assert!(state.sigchld_ignored);
    let later = decide(&LINUX_6_18, &env, &mut state, RawFlags(0)).clone3.unwrap().child.unwrap();
    assert!(!later.reaped_by_caller);
    // Without SIGHAND, or without a pid-ns init, nothing changes.
    let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
    let _ = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::NEWPID | bits::VM));
    let _ = decide(&LINUX_6_18, &env, &mut state, RawFlags(bits::VM | bits::SIGHAND));
    assert!(!state.sigchld_ignored);
}

#[test]
fn an_unreaped_sighand_parent_child_keeps_the_handlers_shared() {
    let vm_sig = bits::VM | bits::SIGHAND;
    let u = |f: u64| Step::Unshare(RawFlags(f));
    let shared = (EINVAL, "sighand-shared");
    // The zombie still counts in sighand->count: SIGHAND, and VM through SIGHAND, fail; THREAD
    // and NEWUSER only read the thread group.
    let steps = [c(vm_sig | bits::PARENT), u(bits::SIGHAND), u(bits::VM), u(bits::THREAD | bits::NEWUSER)];
    assert_eq!(results(Setup::default(), &steps)[1..], [shared, shared, (OK, "success")]);
    // A blocked vfork parent reaps nothing either.
    let vfork = Setup { vfork: true, ..Setup::default() };
    assert_eq!(results(vfork, &[c(vm_sig | bits::PARENT), u(bits::SIGHAND)])[1], shared);
    // Released: the mm at exit (VM alone), a thread at exit, a child the caller reaps, the
    // handlers of a caller that forked since, a child whose parent ignores SIGCHLD.
    for steps in [
        vec![c(bits::VM | bits::PARENT), u(bits::VM)],
        vec![c(vm_sig | bits::THREAD | bits::PARENT), u(bits::SIGHAND)],
        vec![c(vm_sig | bits::VFORK), u(bits::VM)],
        vec![c(vm_sig | bits::PARENT), Step::Fork, u(bits::VM)],
        vec![c(vm_sig | bits::NEWPID), Step::Fork, c(vm_sig | bits::PARENT), u(bits::SIGHAND)],
    ] {
        let r = results(Setup::default(), &steps);
        assert_eq!(r.last(), Some(&(OK, "success")), "{steps:?}");
    }
    // Without the fork the pid-ns init's parent is the executor, which does not ignore SIGCHLD.
    let steps = [c(vm_sig | bits::NEWPID | bits::PARENT), u(bits::SIGHAND)];
    assert_eq!(results(Setup::default(), &steps)[1], shared);
}

#[test]
fn older_kernels_refuse_pidfd_with_thread_and_vm_after_newtime() {
    use crate::model::profile::LINUX_5_10;
    let thread = bits::THREAD | bits::SIGHAND | bits::VM;
    // PIDFD|THREAD: allowed since 6.9, refused on the 5.10 profile (after the THREAD rows).
    assert_eq!(results(Setup::default(), &[c(thread | bits::PIDFD)])[0], (OK, "success"));
    assert_eq!(
        results_on(&LINUX_5_10, Setup::default(), &[c(thread | bits::PIDFD)])[0],
        (EINVAL, "clone-pidfd-with-thread")
    );
    // 6.2 to 6.8 too, where VM after NEWTIME is already allowed.
    let newtime = Step::Unshare(RawFlags(bits::NEWTIME));
    let mid = results_on(
        &crate::model::profile::LINUX_6_8,
        Setup::default(),
        &[c(thread | bits::PIDFD), newtime, c(bits::VM)],
    );
    assert_eq!(mid[0], (EINVAL, "clone-pidfd-with-thread"));
    assert_eq!(mid[2], (OK, "success"));
    // VM after NEWTIME: refused on 5.6 to 6.1 only; a plain child is still fine there.
    let newtime = Step::Unshare(RawFlags(bits::NEWTIME));
    assert_eq!(results(Setup::default(), &[newtime, c(bits::VM)])[1], (OK, "success"));
    let old = results_on(&LINUX_5_10, Setup::default(), &[newtime, c(bits::VM), c(bits::FILES)]);
    assert_eq!(old[1], (EINVAL, "clone-vm-or-thread-after-newtime"));
    assert_eq!(old[2], (OK, "success"));
    // clone3(NEWTIME|VM): 6.18 keeps the child in the caller's time namespace until exec;
    // 5.6 to 6.1 put it in the new one.
    let env = Environment::reference();
    let time = |profile| {
        let mut state = CallerState::after_setup(&env, &Setup::default()).unwrap();
        let d = decide(profile, &env, &mut state, RawFlags(bits::NEWTIME | bits::VM));
        d.clone3.and_then(|e| e.child).map(|c| c.links[NsLink::Time.index()])
    };
    assert_eq!(time(&LINUX_6_18), Some(ChildLink::ParentBefore(NsLink::Time)));
    assert_eq!(time(&LINUX_5_10), Some(ChildLink::Fresh));
    // The earlier THREAD rows still come first.
    assert_eq!(
        results_on(&LINUX_5_10, Setup::default(), &[c(thread | bits::PIDFD | bits::NEWPID)])[0],
        (EINVAL, "clone-thread-into-new-user-or-pid-ns")
    );
}

#[test]
fn a_failed_first_child_kills_the_pending_pid_namespace_up_to_6_18_only() {
    use crate::model::profile::LINUX_7_3;
    let steps = [Step::Unshare(RawFlags(bits::NEWPID)), c(bits::INTO_CGROUP), Step::ForkExit, c(0)];
    let ebadf = CallResult::Failure(Errno(libc::EBADF));
    let enomem = CallResult::Failure(Errno::ENOMEM);
    let r = results(Setup::default(), &steps);
    assert_eq!(r[1], (ebadf, "clone3-into-cgroup-bad-fd"));
    assert_eq!(r[2].0, enomem);
    let r = results_on(&LINUX_7_3, Setup::default(), &steps);
    assert_eq!(r[1], (ebadf, "clone3-into-cgroup-bad-fd"));
    // The fork becomes the init and exits: now the namespace is dead.
    assert_eq!(r[2], (OK, "success"));
    assert_eq!(r[3], (enomem, "clone-pid-ns-dead"));
}
