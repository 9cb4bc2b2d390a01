//! Life inside the caller's namespaces, beyond their ids (issue 16, class 3). The case child
//! reads, before its first step and after its last:
//!
//! * a POSIX message queue the executor made once in its verified sandbox (message queues
//!   live in the IPC namespace, like SysV objects: a new IPC namespace has none of the old
//!   one's);
//! * the network devices of its network namespace (how many, how many are up, the loopback's
//!   state): a new network namespace holds a loopback that is down, and the fallback tunnel
//!   devices of the modules loaded at the time, as the sandbox's own network namespace (made
//!   by unshare(NEWNET) too, with no device added) holds;
//! * after the last step, `/proc/thread-self/cgroup`: after NEWCGROUP the caller's cgroup is the
//!   root of its new cgroup namespace ("/" on every line), and without it the file reads as
//!   before the steps.
//!
//! The executor brings its sandbox's loopback up, so that a kept network namespace (one device
//! up) and a new one (none up) differ by their devices too.
//!
//! Each reading is made only for a case with a step that asks to leave its namespace type
//! ([`Reads`]); the namespace ids judge the others.
//!
//! `check::inside` judges the readings against the model (`life-inside-namespaces`).
//! Everything here runs in the case child and does not allocate (`tests/style.rs`).

use crate::abi::errno::Errno;
use crate::abi::flags::bits;
use crate::case::Case;
use crate::sys;
use crate::sys::inside::MQ_NAME_MAX;

use super::record::{Msg, MsgKind, NONE, inside_probe};

/// What a case child needs to find the executor's message queue (copied into its plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsideMarkers {
    /// The queue's name (its first `mq_len` bytes), or `mq_len` 0 for none.
    mq_name: [u8; MQ_NAME_MAX],
    mq_len: usize,
}

impl Default for InsideMarkers {
    fn default() -> InsideMarkers {
        InsideMarkers { mq_name: [0; MQ_NAME_MAX], mq_len: 0 }
    }
}

impl InsideMarkers {
    /// The marker for the queue `name` (at most [`MQ_NAME_MAX`] bytes; a longer name is cut).
    /// The executor makes the queue (`markers::Held::make_inside`).
    pub fn named(name: &[u8]) -> InsideMarkers {
        let mut m = InsideMarkers::default();
        let n = name.len().min(MQ_NAME_MAX);
        m.mq_name[..n].copy_from_slice(&name[..n]);
        m.mq_len = n;
        m
    }
}

/// One reading before the first step (the parts that are compared with the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    mq: i32,
    devs: Result<sys::inside::NetDevs, Errno>,
    cgroups: Result<sys::inside::Cgroups, Errno>,
}

impl Default for Before {
    fn default() -> Before {
        Before { mq: NONE, devs: Err(Errno(libc::ENODATA)), cgroups: Err(Errno(libc::ENODATA)) }
    }
}

fn mq_reading(m: &InsideMarkers) -> i32 {
    if m.mq_len == 0 {
        return NONE;
    }
    match sys::inside::mq_exists(&m.mq_name[..m.mq_len]) {
        // EACCES: it exists, but our credentials (a new user namespace) may not open it.
        Ok(()) | Err(Errno(libc::EACCES)) => 1,
        // No queue of that name here: another IPC namespace.
        Err(Errno(libc::ENOENT)) => 0,
        Err(e) => -e.0,
    }
}

/// The readings before the first step.
/// Which readings a case asks for: only those of the namespace types one of its steps asks to
/// leave (`Case::asks_to_leave`, as the model predicts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    mq: bool,
    devs: bool,
    cgroups: bool,
}

impl Reads {
    /// The readings `case` needs.
    pub fn of(case: &Case) -> Reads {
        Reads {
            mq: case.asks_to_leave(bits::NEWIPC),
            devs: case.asks_to_leave(bits::NEWNET),
            cgroups: case.asks_to_leave(bits::NEWCGROUP),
        }
    }
}

/// A reading the case did not ask for.
const UNREAD: Errno = Errno(libc::ENODATA);

/// The readings before the first step (those `reads` asks for; the others read as ENODATA).
pub fn before(m: &InsideMarkers, reads: Reads) -> Before {
    Before {
        mq: if reads.mq { mq_reading(m) } else { NONE },
        devs: if reads.devs { sys::inside::netdevs() } else { Err(UNREAD) },
        cgroups: if reads.cgroups { sys::inside::own_cgroups() } else { Err(UNREAD) },
    }
}

/// The [`MsgKind::Inside`] message after the last step, against `was` (read before the first).
pub fn fill(m: &InsideMarkers, reads: Reads, was: &Before) -> Msg {
    let mut msg = Msg::new(MsgKind::Inside);
    let p = &mut msg.probe;
    p[inside_probe::MQ_BEFORE] = was.mq;
    p[inside_probe::MQ_AFTER] = if reads.mq { mq_reading(m) } else { NONE };
    let count = |d: &Result<sys::inside::NetDevs, Errno>, up: bool| match d {
        Ok(d) => (if up { d.up } else { d.count }) as i32,
        Err(e) => -e.0,
    };
    let now = if reads.devs { sys::inside::netdevs() } else { Err(UNREAD) };
    p[inside_probe::DEVS_BEFORE] = count(&was.devs, false);
    p[inside_probe::UP_BEFORE] = count(&was.devs, true);
    p[inside_probe::DEVS_AFTER] = count(&now, false);
    p[inside_probe::UP_AFTER] = count(&now, true);
    p[inside_probe::LO_AFTER] = match now {
        Ok(d) if !d.loopback => 2,
        Ok(d) => i32::from(d.loopback_down),
        Err(e) => -e.0,
    };
    let cg = if reads.cgroups { sys::inside::own_cgroups() } else { Err(UNREAD) };
    p[inside_probe::CG_ROOT_AFTER] = match cg {
        Ok(c) => i32::from(c.at_root),
        Err(e) => -e.0,
    };
    p[inside_probe::CG_SAME] = match (was.cgroups, cg) {
        (Ok(a), Ok(b)) => i32::from(a.hash == b.hash),
        (Err(e), _) | (_, Err(e)) => -e.0,
    };
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_changed_nothing_reads_as_before() {
        // No queue is made here: the test process is in the host's IPC namespace.
        let m = InsideMarkers::default();
        let reads = Reads::of(&Case::unshare(&[bits::NEWIPC | bits::NEWNET | bits::NEWCGROUP]));
        let was = before(&m, reads);
        let msg = fill(&m, reads, &was);
        assert_eq!(msg.probe[inside_probe::MQ_BEFORE], NONE);
        assert!(msg.probe[inside_probe::DEVS_BEFORE] >= 0);
        assert_eq!(msg.probe[inside_probe::DEVS_BEFORE], msg.probe[inside_probe::DEVS_AFTER]);
        assert_eq!(msg.probe[inside_probe::UP_BEFORE], msg.probe[inside_probe::UP_AFTER]);
        assert_eq!(msg.probe[inside_probe::CG_SAME], 1);
    }

    #[test]
    fn only_the_types_a_step_asks_to_leave_are_read() {
        let m = InsideMarkers::default();
        let reads = Reads::of(&Case::unshare(&[bits::NEWUTS, 1 << 40]));
        let msg = fill(&m, reads, &before(&m, reads));
        let unread = -UNREAD.0;
        assert_eq!(msg.probe[inside_probe::DEVS_BEFORE], unread);
        assert_eq!(msg.probe[inside_probe::DEVS_AFTER], unread);
        assert_eq!(msg.probe[inside_probe::CG_SAME], unread);
        assert_eq!(msg.probe[inside_probe::MQ_AFTER], NONE);
    }
}
