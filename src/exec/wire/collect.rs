//! Turns a case child's raw messages (as the executor forwards them, with the
//! wait status) into an [`Outcome`]: runs on the harness side, so the
//! executor does no decoding or allocation per case.

use std::time::Duration;

use crate::abi::errno::Errno;
use crate::exec::observe::{Outcome, StepObservation, Trace};

use crate::abi::ns::NsLink;
use crate::exec::child::record::marker_probe::{IPC_AFTER, IPC_BEFORE, MNT_KEPT, NET_AFTER, NET_BEFORE, UTS_WRITTEN};
use crate::exec::child::record::outside_probe;
use crate::exec::child::record::{MSG_LEN, Msg, MsgKind, NONE, RawSnapshot, SIBS, SetupOp, THREADS_ERR};
use crate::exec::observe::{NsValue, Snapshot};

/// Two readings of a marker, when both were made.
fn pair(
    before: Option<crate::exec::observe::IntOrErrno>,
    after: Option<crate::exec::observe::IntOrErrno>,
) -> Option<[crate::exec::observe::IntOrErrno; 2]> {
    Some([before?, after?])
}

/// The [`MsgKind::Inside`] slots as an observation.
fn inside_observation(msg: &Msg) -> crate::exec::observe::InsideObservation {
    use crate::exec::child::record::inside_probe as at;
    let p = &msg.probe;
    crate::exec::observe::InsideObservation {
        mq_marker: pair(slot(p[at::MQ_BEFORE]), slot(p[at::MQ_AFTER])),
        devices: pair(slot(p[at::DEVS_BEFORE]), slot(p[at::DEVS_AFTER])),
        devices_up: pair(slot(p[at::UP_BEFORE]), slot(p[at::UP_AFTER])),
        loopback_down: slot(p[at::LO_AFTER]),
        cgroup_at_root: slot(p[at::CG_ROOT_AFTER]),
        cgroup_same: slot(p[at::CG_SAME]),
    }
}

/// The inside witness's [`MsgKind::Inside`] message `msg` (op 1, 2 or 3) added to `w`.
fn inside_witness_observation(w: &mut crate::exec::observe::WitnessObservation, msg: &Msg) {
    use crate::exec::child::inside_witness::slots as at;
    let p = &msg.probe;
    if msg.op == at::OP_SEEN {
        w.forked = slot(p[at::FORKED]);
        w.uts_caller_set = slot(p[at::UTS_CALLER_SET]);
        w.uts_witness_sees = slot(p[at::UTS_WITNESS_SEES]);
        w.uts_witness_set = slot(p[at::UTS_WITNESS_SET]);
        w.uts_caller_sees = slot(p[at::UTS_CALLER_SEES]);
        w.mnt_caller = slot(p[at::MNT_CALLER]);
        w.mnt_witness_sees = slot(p[at::MNT_WITNESS_SEES]);
        w.setgroups_witness = slot(p[at::SETGROUPS_WITNESS]);
        w.setgroups_caller = slot(p[at::SETGROUPS_CALLER]);
    } else if msg.op == at::OP_SHARED {
        w.shared_caller = slot(p[at::SHARED_CALLER]);
        w.shared_witness_sees = slot(p[at::SHARED_WITNESS_SEES]);
        w.shared_witness = slot(p[at::SHARED_WITNESS]);
        w.shared_caller_sees = slot(p[at::SHARED_CALLER_SEES]);
    } else {
        w.time_open = slot(p[at::TIME_OPEN]);
        w.time_write = slot(p[at::TIME_WRITE]);
        w.time_caller_same = slot(p[at::TIME_CALLER_SAME]);
        w.time_child_monotonic = slot(p[at::TIME_CHILD_MONO]);
        w.time_child_boottime = slot(p[at::TIME_CHILD_BOOT]);
    }
}

/// What the parent collected from the pipe.
#[derive(Default)]
struct Collected {
    setup_failed: Option<(u32, i32)>,
    trace: Option<Trace>,
    done: bool,
    garbage: bool,
    /// A clone3 step's child report, waiting for that step's message.
    child: Option<crate::exec::observe::ChildObservation>,
    /// The case child's UTS marker write, waiting for the executor's reading.
    uts_written: Option<crate::exec::observe::IntOrErrno>,
    /// The inside witness's readings (sent before the probe), waiting for the probe.
    inside_witness: Option<crate::exec::observe::WitnessObservation>,
}

/// A probe slot: [`NONE`] is not applicable, a negative value an errno.
fn slot(v: i32) -> Option<crate::exec::observe::IntOrErrno> {
    (v != NONE).then(|| crate::exec::observe::IntOrErrno::from(if v < 0 { Err(Errno(-v)) } else { Ok(v) }))
}

impl Collected {
    fn absorb(&mut self, msg: Msg) {
        match msg.kind {
            MsgKind::SetupFailed => self.setup_failed = Some((msg.op, msg.errno)),
            MsgKind::Before => {
                self.trace = Some(Trace { before: msg.snap.to_snapshot(), steps: Vec::new(), probe: None });
            }
            MsgKind::Probe => match self.trace.as_mut() {
                Some(t) => {
                    self.uts_written = slot(msg.probe[UTS_WRITTEN]);
                    t.probe = Some(crate::exec::observe::ProbeObservation {
                        sibling_fd_visible: slot(msg.probe[0]),
                        caller_fd_visible: slot(msg.probe[1]),
                        closed_fd_open_in_sibling: slot(msg.probe[2]),
                        fs_cwd_followed: slot(msg.probe[3]),
                        fs_umask_followed: slot(msg.probe[4]),
                        sem_value_outside: slot(msg.probe[5]),
                        net_marker: pair(slot(msg.probe[NET_BEFORE]), slot(msg.probe[NET_AFTER])),
                        ipc_marker: pair(slot(msg.probe[IPC_BEFORE]), slot(msg.probe[IPC_AFTER])),
                        mnt_root_kept: slot(msg.probe[MNT_KEPT]),
                        uts_marker: None,
                        inside: None,
                        inside_witness: self.inside_witness,
                    });
                }
                None => self.garbage = true,
            },
            MsgKind::Step => match self.trace.as_mut() {
                Some(t) => t.steps.push(StepObservation {
                    result: msg.call_result(),
                    after: msg.snap.to_snapshot(),
                    child: self.child.take(),
                }),
                None => self.garbage = true,
            },
            MsgKind::Child => self.child = Some(msg.child_observation()),
            MsgKind::Outside => {
                let probe = self.trace.as_mut().and_then(|t| t.probe.as_mut());
                if let (Some(p), Some(written), Some(seen)) =
                    (probe, self.uts_written, slot(msg.probe[outside_probe::UTS_SEEN]))
                {
                    p.uts_marker = Some([written, seen]);
                }
            }
            MsgKind::Inside if msg.op != 0 => match self.trace.as_mut() {
                // Sent after the steps, before the probe.
                Some(t) if t.probe.is_none() => {
                    inside_witness_observation(self.inside_witness.get_or_insert_default(), &msg);
                }
                _ => self.garbage = true,
            },
            MsgKind::Inside => match self.trace.as_mut().and_then(|t| t.probe.as_mut()) {
                Some(p) => p.inside = Some(inside_observation(&msg)),
                None => self.garbage = true,
            },
            MsgKind::Done => self.done = true,
        }
    }
}

/// The outcome of a case from the child's raw messages, its wait status, and whether the
/// watchdog killed it after `timeout`.
pub fn outcome(raw: &[u8], status: i32, timed_out: bool, timeout: Duration) -> Outcome {
    let mut got = Collected::default();
    let mut chunks = raw.chunks_exact(MSG_LEN);
    for chunk in &mut chunks {
        let mut one = [0u8; MSG_LEN];
        one.copy_from_slice(chunk);
        match Msg::decode(&one) {
            Some(m) => got.absorb(m),
            None => got.garbage = true,
        }
    }
    if !chunks.remainder().is_empty() {
        got.garbage = true;
    }
    judge_end(got, status, timed_out, timeout)
}

/// The setup semaphore a child reported in its `Before` message, if any (the executor
/// removes it after the case).
pub fn semaphore(raw: &[u8]) -> Option<i32> {
    raw.chunks_exact(MSG_LEN).find_map(|chunk| {
        let mut one = [0u8; MSG_LEN];
        one.copy_from_slice(chunk);
        Msg::decode(&one).filter(|m| m.kind == MsgKind::Before && m.op != u32::MAX).map(|m| m.op as i32)
    })
}

fn judge_end(got: Collected, status: i32, timed_out: bool, timeout: Duration) -> Outcome {
    if timed_out {
        return Outcome::Timeout { timeout_ms: timeout.as_millis() as u64, partial: got.trace };
    }
    if libc::WIFSIGNALED(status) {
        return Outcome::Crash { signal: libc::WTERMSIG(status), partial: got.trace };
    }
    if got.garbage {
        return Outcome::Broken { reason: "the child wrote an unreadable message".into() };
    }
    if let Some((op, errno)) = got.setup_failed {
        return Outcome::SetupFailed { op: SetupOp::describe(op).into(), errno: Errno(errno) };
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    match (got.done, got.trace) {
        (true, Some(trace)) if code == 0 => Outcome::Completed { trace },
        (_, trace) => Outcome::Broken {
            reason: format!(
                "the child exited with status {code} after reporting {} step(s) and {}",
                trace.map_or(0, |t| t.steps.len()),
                if got.done { "its end" } else { "no end" }
            ),
        },
    }
}

/// The decoding of the child's raw snapshot: here, with the rest of the decoding, not in
/// the child's record format (the child only writes it).
impl RawSnapshot {
    /// The decoded form.
    pub fn to_snapshot(&self) -> Snapshot {
        let mut ns = [NsValue::Inode(0); NsLink::COUNT];
        for (slot, (ino, err)) in ns.iter_mut().zip(self.ns_ino.iter().zip(self.ns_err.iter())) {
            *slot = if *err != 0 { NsValue::Error(Errno(*err)) } else { NsValue::Inode(*ino) };
        }
        let slot = |v: i32| {
            if v == NONE {
                None
            } else if v < 0 {
                Some(Err(Errno(-v)))
            } else {
                Some(Ok(v))
            }
        };
        Snapshot {
            ns,
            pid: self.pid,
            uid: self.ids[0],
            gid: self.ids[1],
            euid: self.ids[2],
            egid: self.ids[3],
            cap_eff: self.cap_eff,
            threads: if self.threads & THREADS_ERR != 0 { 0 } else { self.threads },
            threads_error: (self.threads & THREADS_ERR != 0).then_some(Errno((self.threads & !THREADS_ERR) as i32)),
            cwd: (self.cwd[0], self.cwd[1]),
            umask: self.umask,
            semval: slot(self.semval).map(crate::exec::observe::IntOrErrno::from),
            siblings: (0..SIBS)
                .take_while(|k| self.kcmp[*k][0] != NONE)
                .map(|k| crate::exec::observe::SiblingView {
                    kcmp: self.kcmp[k].map(|v| crate::exec::observe::IntOrErrno::from(slot(v).unwrap_or(Ok(-1)))),
                    fds: self.kcmp_file[k]
                        .iter()
                        .filter_map(|v| slot(*v))
                        .map(crate::exec::observe::IntOrErrno::from)
                        .collect(),
                })
                .collect(),
            fd_flags: self
                .fd_flags
                .iter()
                .filter_map(|v| slot(*v))
                .map(crate::exec::observe::IntOrErrno::from)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::observe::NsValue;

    fn raw(msgs: &[Msg]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            let mut buf = [0u8; MSG_LEN];
            m.encode(&mut buf);
            out.extend_from_slice(&buf);
        }
        out
    }

    #[test]
    fn a_full_report_is_a_completed_trace() {
        let mut before = Msg::new(MsgKind::Before);
        before.op = 7;
        before.snap.ns_ino[0] = 11;
        let mut step = Msg::new(MsgKind::Step);
        step.rc = -1;
        step.errno = libc::EINVAL;
        let bytes = raw(&[before, step, Msg::new(MsgKind::Probe), Msg::new(MsgKind::Done)]);
        assert_eq!(semaphore(&bytes), Some(7));
        match outcome(&bytes, 0, false, Duration::from_secs(1)) {
            Outcome::Completed { trace } => {
                assert_eq!(trace.before.ns[0], NsValue::Inode(11));
                assert_eq!(trace.steps.len(), 1);
                assert!(!trace.steps[0].result.is_success());
                assert!(trace.probe.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn torn_or_missing_messages_are_broken_and_signals_are_crashes() {
        let mut before = Msg::new(MsgKind::Before);
        before.op = u32::MAX; // no semaphore
        let bytes = raw(&[before, Msg::new(MsgKind::Done)]);
        assert!(matches!(outcome(&bytes[..MSG_LEN + 3], 0, false, Duration::ZERO), Outcome::Broken { .. }));
        assert!(matches!(outcome(&bytes[..MSG_LEN], 0, false, Duration::ZERO), Outcome::Broken { .. }));
        assert!(
            matches!(outcome(&bytes, libc::SIGSEGV, false, Duration::ZERO), Outcome::Crash { signal, .. } if signal == libc::SIGSEGV)
        );
        assert!(matches!(outcome(&[], 0, true, Duration::from_millis(5)), Outcome::Timeout { timeout_ms: 5, .. }));
        assert_eq!(semaphore(&bytes), None);
    }
}
