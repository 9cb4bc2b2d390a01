//! Observations built from the model's prediction, exactly as it says (the checker's tests
//! then plant one lie at a time).

use super::super::*;
use crate::abi::errno::Errno;
use crate::abi::ns::NsLink;
use crate::case::Case;
use crate::exec::observe::{NsValue, Snapshot};
use crate::model::{predict, profile::LINUX_6_18};

/// An observation that does exactly what the model says (built from the prediction).
pub(super) fn honest(env: &Environment, case: &Case) -> (Prediction, Outcome) {
    honest_on(&LINUX_6_18, env, case)
}

/// kcmp's value for an expectation.
fn kcmp_value(k: crate::model::KcmpExpect) -> crate::exec::observe::IntOrErrno {
    use crate::exec::observe::IntOrErrno;
    use crate::model::KcmpExpect;
    match k {
        KcmpExpect::Same => IntOrErrno::Value(0),
        KcmpExpect::Different | KcmpExpect::Unmodelled => IntOrErrno::Value(1),
        KcmpExpect::Error(e) => IntOrErrno::Error(e),
    }
}

/// The links after step `e`, from `cur`: a fresh namespace takes the next number of `next_ino`.
fn links_after(e: &Expected, initial: &Snapshot, cur: &Snapshot, after: &mut Snapshot, next_ino: &mut u64) {
    links_as(&e.links, initial, cur, after, next_ino);
}

/// The links after a change described by `links`, from `cur` (`initial`: before the first step).
fn links_as(
    links: &[crate::model::LinkExpect; NsLink::COUNT],
    initial: &Snapshot,
    cur: &Snapshot,
    after: &mut Snapshot,
    next_ino: &mut u64,
) {
    use crate::model::LinkExpect;
    for link in NsLink::ALL {
        let old = cur.link(link);
        after.ns[link.index()] = match links[link.index()] {
            LinkExpect::Unchanged | LinkExpect::AfterOf(_) => old,
            LinkExpect::Fresh => {
                *next_ino += 1;
                NsValue::Inode(*next_ino)
            }
            LinkExpect::Unreadable(err) => NsValue::Error(err),
            LinkExpect::BeforeOf(other) => cur.link(other),
            LinkExpect::AtCaseStart(other) => initial.link(other),
        };
    }
    for link in NsLink::ALL {
        if let LinkExpect::AfterOf(other) = links[link.index()] {
            after.ns[link.index()] = after.link(other);
        }
    }
}

/// The state after step `e` exactly as the model says, from `cur`.
fn state_after(e: &Expected, initial: &Snapshot, cur: &Snapshot, next_ino: &mut u64) -> Snapshot {
    use crate::exec::observe::{IntOrErrno, SiblingView};
    use crate::model::{KcmpExpect, PidExpect, SemExpect};
    let mut after = cur.clone();
    links_after(e, initial, cur, &mut after, next_ino);
    (after.uid, after.euid, after.gid, after.egid, after.cap_eff) =
        (e.creds.uid, e.creds.uid, e.creds.gid, e.creds.gid, e.creds.cap_eff);
    after.pid = match e.pid {
        PidExpect::Unchanged => cur.pid,
        PidExpect::Changed => cur.pid + 1000,
        PidExpect::One => 1,
    };
    after.threads = e.threads;
    if !e.proc_visible {
        // /proc/self/task cannot be reached any more.
        (after.threads, after.threads_error) = (0, Some(Errno::ENOENT));
    }
    after.semval = match e.semval {
        SemExpect::NoSemaphore => None,
        SemExpect::Value(v) => Some(IntOrErrno::Value(v)),
        SemExpect::Error(err) => Some(IntOrErrno::Error(err)),
    };
    // An unmodelled kcmp keeps the value it had (the kernel's objects stay where they are).
    after.siblings = e
        .siblings
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut values = s.kcmp.map(kcmp_value);
            for (t, want) in s.kcmp.iter().enumerate() {
                if *want == KcmpExpect::Unmodelled
                    && let Some(old) = cur.siblings.get(k)
                {
                    values[t] = old.kcmp[t];
                }
            }
            SiblingView { kcmp: values, fds: vec![] }
        })
        .collect();
    after
}

/// The final probes exactly as the model says.
fn honest_probe(final_probe: &crate::model::FinalExpect) -> crate::exec::observe::ProbeObservation {
    use crate::exec::observe::IntOrErrno;
    let flag = |b: bool| Some(IntOrErrno::Value(i32::from(b)));
    let marker = |k: bool| [IntOrErrno::Value(1), IntOrErrno::Value(i32::from(k))];
    crate::exec::observe::ProbeObservation {
        sibling_fd_visible: final_probe.files_shared.and_then(flag),
        caller_fd_visible: final_probe.files_shared.and_then(flag),
        closed_fd_open_in_sibling: final_probe.close_is_shared.and_then(|s| flag(!s)),
        fs_cwd_followed: final_probe.fs_shared.and_then(flag),
        fs_umask_followed: final_probe.fs_shared.and_then(flag),
        sem_value_outside: final_probe.sem_value_outside.map(IntOrErrno::Value),
        net_marker: final_probe.kept.net.map(marker),
        ipc_marker: final_probe.kept.ipc.map(marker),
        mnt_root_kept: final_probe.kept.mnt.and_then(flag),
        uts_marker: final_probe.kept.uts.map(marker),
        inside: Some(honest_inside(&final_probe.inside)),
        inside_witness: final_probe.inside.witness.map(|w| honest_witness(&w)),
    }
}

/// The inside witness's exchange exactly as the model says (setgroups "allow" outside).
fn honest_witness(w: &crate::model::inside_witness::WitnessExpect) -> crate::exec::observe::WitnessObservation {
    use crate::abi::errno::Errno;
    use crate::case::inside::{INSIDE_BOOTTIME_OFFSET_S, INSIDE_MONOTONIC_OFFSET_S};
    use crate::exec::observe::IntOrErrno;
    use crate::model::inside_witness::{SetgroupsExpect, TimeWrite};
    let v = |x: i32| Some(IntOrErrno::Value(x));
    let write = |ok: bool, refused: Errno| if ok { v(1) } else { Some(IntOrErrno::Error(refused)) };
    let kept = v(i32::from(w.uts_kept));
    let time = w.time;
    let written = time.is_some_and(|t| t.write == TimeWrite::Written);
    let ahead = |offset: i32| time.filter(|t| t.child_forks).and_then(|_| v(if written { offset } else { 0 }));
    crate::exec::observe::WitnessObservation {
        forked: v(1),
        uts_caller_set: write(w.caller_sets_hostname, Errno::EPERM),
        uts_witness_sees: if w.caller_sets_hostname { kept } else { None },
        uts_witness_set: write(w.witness_sets_hostname, Errno::EPERM),
        uts_caller_sees: if w.witness_sets_hostname { kept } else { None },
        mnt_caller: w.mount.and_then(|m| write(m.allowed, Errno::EPERM)),
        mnt_witness_sees: w.mount.filter(|m| m.allowed).and_then(|m| v(i32::from(m.kept))),
        setgroups_witness: v(0),
        setgroups_caller: w.setgroups.and_then(|s| v(i32::from(s == SetgroupsExpect::Deny))),
        time_open: time.and(v(1)),
        time_write: time.and_then(|t| match t.write {
            TimeWrite::Written => v(1),
            TimeWrite::Eperm => Some(IntOrErrno::Error(Errno::EPERM)),
            TimeWrite::Eacces => Some(IntOrErrno::Error(Errno::EACCES)),
        }),
        time_caller_same: time.and(v(1)),
        time_child_monotonic: ahead(INSIDE_MONOTONIC_OFFSET_S),
        time_child_boottime: ahead(INSIDE_BOOTTIME_OFFSET_S),
        shared_caller: w.shared.and_then(|m| write(m.caller_allowed, Errno::EPERM)),
        shared_witness_sees: w
            .shared
            .filter(|m| m.caller_allowed)
            .and_then(|m| v(i32::from(m.relation.caller_to_witness()))),
        shared_witness: w.shared.and_then(|m| write(m.witness_allowed, Errno::EPERM)),
        shared_caller_sees: w
            .shared
            .filter(|m| m.witness_allowed)
            .and_then(|m| v(i32::from(m.relation.witness_to_caller()))),
    }
}

/// Life inside the namespaces exactly as the model says (3 devices in the sandbox, none up).
fn honest_inside(want: &crate::model::InsideExpect) -> crate::exec::observe::InsideObservation {
    use crate::exec::observe::IntOrErrno;
    let v = IntOrErrno::Value;
    let fresh = want.devices == Some(crate::model::DevicesExpect::Fresh);
    crate::exec::observe::InsideObservation {
        mq_marker: want.mq_kept.map(|k| [v(1), v(i32::from(k))]),
        devices: want.devices.map(|_| [v(3), v(3)]),
        devices_up: want.devices.map(|_| [v(0), v(0)]),
        loopback_down: want.devices.map(|_| v(i32::from(fresh))),
        cgroup_at_root: want.cgroup_kept.map(|k| v(i32::from(!k))),
        cgroup_same: want.cgroup_kept.map(|k| v(i32::from(k))),
    }
}

/// As [`honest`], for the kernel `profile` describes.
pub(super) fn honest_on(
    profile: &crate::model::KernelProfile,
    env: &Environment,
    case: &Case,
) -> (Prediction, Outcome) {
    use crate::exec::observe::{IntOrErrno, SiblingView};
    let prediction = predict(profile, env, case);
    let Prediction::Steps { steps, final_probe } = &prediction else { panic!("skip") };
    let mut before = env.baseline.clone();
    before.siblings =
        case.setup.siblings.iter().map(|_| SiblingView { kcmp: [IntOrErrno::Value(0); 5], fds: vec![] }).collect();
    let mut cur = before.clone();
    let mut next_ino = 5_000_000_000u64;
    let mut obs = Vec::new();
    for e in steps {
        let after = state_after(e, &env.baseline, &cur, &mut next_ino);
        let child = e.thread_call.as_ref().map(|t| thread_call_child(t, &env.baseline, &cur, &mut next_ino));
        obs.push(StepObservation { result: e.result, after: after.clone(), child });
        cur = after;
    }
    // The "before" of the first step must carry the same sibling shape as the expectations.
    if let Some(first) = steps.first() {
        before.siblings =
            first.siblings.iter().map(|_| SiblingView { kcmp: [IntOrErrno::Value(0); 5], fds: vec![] }).collect();
    }
    let probe = honest_probe(final_probe);
    (prediction.clone(), Outcome::Completed { trace: Trace { before, steps: obs, probe: Some(probe) } })
}

/// What a thread_call step's thread reports when it does exactly what the model says.
fn thread_call_child(
    t: &crate::model::expect::ThreadCallExpect,
    initial: &Snapshot,
    cur: &Snapshot,
    next_ino: &mut u64,
) -> crate::exec::observe::ChildObservation {
    use crate::exec::observe::{ChildObservation, IntOrErrno, KcmpSide};
    let mut state = cur.clone();
    links_as(&t.links, initial, cur, &mut state, next_ino);
    ChildObservation {
        returned: if t.result.is_success() { 0 } else { -1 },
        reported: true,
        state,
        kcmp: None,
        kcmp_side: KcmpSide::Nobody,
        wait: IntOrErrno::Value(0),
        sigchld: false,
        pidfd: false,
        parent_tid: false,
    }
}
