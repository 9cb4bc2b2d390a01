//! Forks one child per case, collects its messages, and enforces the
//! watchdog: a child (with everything it started) that outlives the timeout
//! is killed and reported as `timeout`; one that dies by a signal is reported
//! as `crash`. Runs in the executor, which is single-threaded.

#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::abi::errno::Errno;
use crate::case::Case;
use crate::sys::{self, ParentOnlyBuf};

use crate::exec::child;
use crate::exec::child::plan::Plan;
use crate::exec::child::record::MSG_LEN;

/// Most bytes of messages kept from one case (far more than any case writes: a dozen
/// messages); the rest is dropped and the report then misses its end.
pub const MAX_REPORT: usize = 64 * MSG_LEN;

/// Appends what the pipe holds to `out`, up to [`MAX_REPORT`] bytes past `start` (a
/// non-blocking read end: stops at EAGAIN or end of file; the rest is dropped).
fn drain(fd: i32, out: &mut ParentOnlyBuf, start: usize) {
    loop {
        let room = (start + MAX_REPORT).saturating_sub(out.len());
        let spare = out.spare();
        let n = spare.len().min(room);
        if n == 0 {
            // Full: read and drop the rest, so nothing blocks on a full pipe.
            let mut sink = [0u8; 512];
            if !matches!(sys::read(fd, &mut sink), Ok(k) if k > 0) {
                return;
            }
            continue;
        }
        match sys::read(fd, &mut spare[..n]) {
            Ok(0) | Err(_) => return,
            // A short read took all the pipe held (the child is gone; leftovers are killed
            // right after), so no second call just to see EAGAIN.
            Ok(k) if k < n => return out.commit(k),
            Ok(k) => out.commit(k),
        }
    }
}

/// How a case child ended; its messages are in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRun {
    /// The wait status.
    pub status: i32,
    /// The watchdog killed it.
    pub timed_out: bool,
    /// CLOCK_MONOTONIC nanoseconds (see [`exec_clock`]).
    pub clock: [u64; 3],
}

/// Slots of [`RawRun::clock`]: the executor's side of the phase timeline.
pub mod exec_clock {
    /// Before the pipe and the fork.
    pub const FORK: usize = 0;
    /// The child's exit seen (poll on the pidfd returned).
    pub const WOKE: usize = 1;
    /// Status, records, leftovers and semaphore dealt with.
    pub const DONE: usize = 2;
}

fn kill_group(pid: libc::pid_t) {
    let _ = sys::kill(-pid, libc::SIGKILL);
    let _ = sys::kill(pid, libc::SIGKILL);
}

/// Kills what is left of a reaped child's process group.
fn kill_leftovers(pid: libc::pid_t) {
    let _ = sys::kill(-pid, libc::SIGKILL);
}

/// Reaps every exited process that was reparented to the executor.
pub fn reap_orphans() {
    while let Ok(Some(_)) = sys::waitpid(-1, libc::WNOHANG) {}
}

/// Reaps until the executor has no child left (everything the last case left was killed),
/// for at most a second: under a process limit, a dead but unreaped process still counts.
fn reap_all_orphans() {
    let deadline = sys::monotonic_ns() + 1_000_000_000;
    loop {
        match sys::waitpid(-1, libc::WNOHANG) {
            Ok(Some(_)) => continue,
            Err(_) => return,
            Ok(None) if sys::monotonic_ns() > deadline => return,
            Ok(None) => std::thread::sleep(Duration::from_micros(100)),
        }
    }
}

/// fork, retried on EAGAIN. Under RLIMIT_NPROC or a pids cgroup, the last case's killed
/// processes are uncharged only once released: a fork that fails with EAGAIN is retried for up
/// to ~100 ms while they go.
fn fork_retrying() -> Result<libc::pid_t, Errno> {
    let mut tries = 0;
    loop {
        // SAFETY: the executor is single-threaded; the only caller, run_one, sends the child
        // straight into child::run_case, which never returns.
        match unsafe { sys::fork() } {
            Err(Errno::EAGAIN) if tries < 100 => {
                tries += 1;
                reap_orphans();
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// Waits for the child's exit (through its pidfd, or by polling waitpid without one) until
/// `deadline`. Returns whether it timed out, and its status when polling reaped it.
fn wait_exit(
    pid: libc::pid_t,
    pidfd: Option<&std::os::fd::OwnedFd>,
    deadline: Instant,
) -> Result<(bool, Option<libc::c_int>), Errno> {
    // Wait for the child's exit only: its records stay in the pipe (a few KiB, far below
    // the pipe's capacity) and are read once, afterwards, so the child's run is not
    // interrupted by a wake-up of this process per record.
    let mut timed_out = false;
    let mut reaped = None;
    let mut nap = Duration::from_micros(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let Some(pidfd) = pidfd else {
            if let Some((_, s)) = sys::waitpid(pid, libc::WNOHANG)? {
                reaped = Some(s);
                break;
            }
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(2));
            continue;
        };
        let mut fds = [libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        match sys::poll(&mut fds, left.as_millis().clamp(1, i32::MAX as u128) as i32) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    Ok((timed_out, reaped))
}

/// Runs one case in a fresh child and appends its raw messages to `out` (see
/// [`crate::exec::wire::collect`] to turn them into an outcome). Allocates nothing, and `out` is not
/// part of the child: every page the executor writes after the fork would otherwise cost
/// a copy-on-write fault.
///
/// # Errors
/// Only when the executor itself cannot work (pipe, fork or pidfd failed).
pub fn run_one(case: &Case, plan: Plan, timeout: Duration, out: &mut ParentOnlyBuf) -> Result<RawRun, Errno> {
    let forked = sys::monotonic_ns();
    let (rd, wr) = sys::pipe()?;
    sys::kcov::reset();
    let pid = fork_retrying()?;
    if pid == 0 {
        drop(rd);
        child::run_case(case, plan, wr.as_raw_fd());
    }
    drop(wr);
    // Also set the group from this side, so a kill before the child's own setpgid still works.
    let _ = sys::setpgid(pid, pid);
    // Without pidfd_open (ENOSYS: gVisor, Linux before 5.3) the exit is polled with WNOHANG.
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(Errno::ENOSYS) => None,
        Err(e) => return Err(e),
    };
    sys::set_nonblocking_fresh(rd.as_raw_fd())?;
    let deadline = Instant::now() + timeout;
    let (timed_out, reaped) = wait_exit(pid, pidfd.as_ref(), deadline)?;
    let woke = sys::monotonic_ns();
    if timed_out {
        kill_group(pid);
    }
    let status = match reaped {
        Some(s) => s,
        None => sys::waitpid(pid, 0)?.map_or(0, |(_, s)| s),
    };
    let start = out.len();
    drain(rd.as_raw_fd(), out, start);
    // Anything the case started and left behind goes now.
    kill_leftovers(pid);
    if plan.reap_all {
        reap_all_orphans();
    } else {
        reap_orphans();
    }
    if let Some(id) = crate::exec::wire::collect::semaphore(&out.as_slice()[start..]) {
        // The semaphore lives in the executor's IPC namespace; do not let it pile up.
        let _ = sys::sem_remove(id);
    }
    Ok(RawRun { status, timed_out, clock: [forked, woke, sys::monotonic_ns()] })
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
            let _ = unsafe { sys::unshare(crate::abi::flags::RawFlags(*f)) };
            sys::exit_now(0);
        }
        sys::waitpid(pid, 0)?;
    }
    Ok(start.elapsed().as_nanos() as u64)
}
