//! Forks one child per case, collects its messages, and enforces the
//! watchdog: a child (with everything it started) that outlives the timeout
//! is killed and reported as `timeout`; one that dies by a signal is reported
//! as `crash`. Runs in the executor, which is single-threaded.

#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::errno::Errno;
use crate::observe::{Outcome, StepObservation, Trace};
use crate::sys;

use super::child;
use super::plan::Plan;
use super::record::{MSG_LEN, Msg, MsgKind, NONE, SetupOp};

/// What the parent collected from the pipe.
#[derive(Default)]
struct Collected {
    setup_failed: Option<(u32, i32)>,
    trace: Option<Trace>,
    sem_id: Option<i32>,
    done: bool,
    garbage: bool,
    /// A clone3 step's child report, waiting for that step's message.
    child: Option<crate::observe::ChildObservation>,
}

impl Collected {
    fn absorb(&mut self, msg: Msg) {
        match msg.kind {
            MsgKind::SetupFailed => self.setup_failed = Some((msg.op, msg.errno)),
            MsgKind::Before => {
                self.trace = Some(Trace { before: msg.snap.to_snapshot(), steps: Vec::new(), probe: None });
                self.sem_id = (msg.op != u32::MAX).then_some(msg.op as i32);
            }
            MsgKind::Probe => match self.trace.as_mut() {
                Some(t) => {
                    let slot = |v: i32| {
                        (v != NONE)
                            .then(|| crate::observe::IntOrErrno::from(if v < 0 { Err(Errno(-v)) } else { Ok(v) }))
                    };
                    t.probe = Some(crate::observe::ProbeObservation {
                        sibling_fd_visible: slot(msg.probe[0]),
                        caller_fd_visible: slot(msg.probe[1]),
                        closed_fd_open_in_sibling: slot(msg.probe[2]),
                        fs_cwd_followed: slot(msg.probe[3]),
                        fs_umask_followed: slot(msg.probe[4]),
                        sem_value_outside: slot(msg.probe[5]),
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
            MsgKind::Done => self.done = true,
        }
    }
}

fn drain(fd: i32, pending: &mut Vec<u8>, got: &mut Collected) -> bool {
    let mut buf = [0u8; 4096];
    let mut eof = false;
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(_) => break, // EAGAIN: nothing more for now
        }
    }
    while pending.len() >= MSG_LEN {
        let mut one = [0u8; MSG_LEN];
        one.copy_from_slice(&pending[..MSG_LEN]);
        pending.drain(..MSG_LEN);
        match Msg::decode(&one) {
            Some(m) => got.absorb(m),
            None => got.garbage = true,
        }
    }
    eof
}

fn kill_group(pid: libc::pid_t) {
    let _ = sys::kill(-pid, libc::SIGKILL);
    let _ = sys::kill(pid, libc::SIGKILL);
}

/// Reaps every exited process that was reparented to the executor.
pub fn reap_orphans() {
    while let Ok(Some(_)) = sys::waitpid(-1, libc::WNOHANG) {}
}

/// Runs one case in a fresh child and returns what happened.
///
/// # Errors
/// Only when the executor itself cannot work (pipe, fork or pidfd failed).
pub fn run_one(case: &Case, plan: Plan, timeout: Duration) -> Result<Outcome, Errno> {
    let (rd, wr) = sys::pipe()?;
    // SAFETY: the executor is single-threaded; the child ends in child::run_case, which
    // never returns.
    let pid = unsafe { sys::fork() }?;
    if pid == 0 {
        drop(rd);
        child::run_case(case, plan, wr.as_raw_fd());
    }
    drop(wr);
    // Also set the group from this side, so a kill before the child's own setpgid still works.
    let _ = sys::setpgid(pid, pid);
    let pidfd = sys::pidfd_open(pid)?;
    sys::set_nonblocking(rd.as_raw_fd())?;
    let deadline = Instant::now() + timeout;
    let mut pending = Vec::with_capacity(MSG_LEN * 8);
    let mut got = Collected::default();
    // Wait for the child's exit only: its records stay in the pipe (a few KiB, far below
    // the pipe's capacity) and are read once, afterwards, so the child's run is not
    // interrupted by a wake-up of this process per record.
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut fds = [libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        match sys::poll(&mut fds, left.as_millis().clamp(1, i32::MAX as u128) as i32) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    if timed_out {
        kill_group(pid);
    }
    let status = sys::waitpid(pid, 0)?.map_or(0, |(_, s)| s);
    drain(rd.as_raw_fd(), &mut pending, &mut got);
    // Anything the case started and left behind goes now.
    kill_group(pid);
    reap_orphans();
    if let Some(id) = got.sem_id {
        // The semaphore lives in the executor's IPC namespace; do not let it pile up.
        let _ = sys::sem_remove(id);
    }
    Ok(outcome(got, status, timed_out, timeout))
}

fn outcome(got: Collected, status: i32, timed_out: bool, timeout: Duration) -> Outcome {
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

/// The reference loop for benchmarks: for each word, fork; the child calls
/// `unshare(word)` and exits; the parent waits. Returns the total nanoseconds.
///
/// # Errors
/// If fork or wait fail.
pub fn bare_loop(flags: &[u64]) -> Result<u64, Errno> {
    let start = Instant::now();
    for f in flags {
        // SAFETY: the executor is single-threaded; the child only unshares and exits.
        let pid = unsafe { sys::fork() }?;
        if pid == 0 {
            // SAFETY: disposable child.
            let _ = unsafe { sys::unshare(crate::flags::RawFlags(*f)) };
            sys::exit_now(0);
        }
        sys::waitpid(pid, 0)?;
    }
    Ok(start.elapsed().as_nanos() as u64)
}
