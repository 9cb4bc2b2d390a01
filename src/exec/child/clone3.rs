//! The clone3 step (post-fork code, same rules as `child.rs`): call clone3 with the case's
//! flags, let the child look at itself and report, compare parent and child with kcmp, make
//! sure the child is gone, and send one [`MsgKind::Child`] message. The caller (the parent)
//! then continues the case.
//!
//! The child runs `child_main` on a stack of its own: it reads its `/proc/thread-self/ns`
//! links, ids and capabilities, writes one message to a pipe, waits until the parent has run
//! kcmp (unless it is a CLONE_VFORK child: the parent is blocked until it exits, so it runs
//! kcmp itself when it can still name the parent), then ends: `_exit` for a process,
//! `SYS_exit` for a CLONE_THREAD thread so the rest of the case process lives on.
//!
//! Pointers: clone_args.pidfd, child_tid and parent_tid point at three distinct slots of the
//! caller's frame, so PIDFD, CHILD_SETTID, CHILD_CLEARTID and PARENT_SETTID all succeed (and
//! PIDFD|PARENT_SETTID never shares a slot); `tls` is the caller's own TLS base, so SETTLS
//! leaves the child's TLS working; `cgroup` is [`CLONE3_CGROUP_FD`], never an open fd.
//!
//! # Safety
//! Calls `sys::clone3::clone3` from the case process. The child never allocates and runs on
//! its own mapping; it only reads the [`ChildArgs`] in the caller's frame, which stays alive
//! (and unchanged) until the child is gone, because the caller waits for it before returning.

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::abi::ns::NsLink;
use crate::case::set_tid::SET_TID_BUFFER;
use crate::case::{CLONE3_CGROUP_FD, SetTidStep, clone3_exit_signal};
use crate::model::expect::KCMP_TYPES;
use crate::sys::{self, clone3 as raw};

use super::ops::{fail, send};
use super::record::{MSG_LEN, Msg, MsgKind, RawSnapshot, SetupOp, child_probe};

/// The child's stack.
const STACK_LEN: usize = 256 * 1024;
/// How long either side waits for the other: longer than any watchdog timeout, so that under
/// load the watchdog (a `timeout` outcome) decides, not a premature "the child did not report".
const WAIT_MS: i32 = 60_000;

/// What the child reads (in the caller's frame; a copy of it without CLONE_VM).
pub struct ChildArgs {
    report_wr: RawFd,
    go_rd: RawFd,
    thread: bool,
    vfork: bool,
    parent: libc::pid_t,
    parent_pid_ns: u64,
    parent_user_ns: u64,
}

fn neg(e: Errno) -> i32 {
    -e.0
}

/// `/proc/thread-self/ns/<link>`: a CLONE_THREAD child is not the thread group leader, so
/// `/proc/self` would show the caller's namespaces.
fn thread_self_path(link: NsLink) -> &'static std::ffi::CStr {
    match link {
        NsLink::Cgroup => c"/proc/thread-self/ns/cgroup",
        NsLink::Ipc => c"/proc/thread-self/ns/ipc",
        NsLink::Mnt => c"/proc/thread-self/ns/mnt",
        NsLink::Net => c"/proc/thread-self/ns/net",
        NsLink::Pid => c"/proc/thread-self/ns/pid",
        NsLink::PidForChildren => c"/proc/thread-self/ns/pid_for_children",
        NsLink::Time => c"/proc/thread-self/ns/time",
        NsLink::TimeForChildren => c"/proc/thread-self/ns/time_for_children",
        NsLink::User => c"/proc/thread-self/ns/user",
        NsLink::Uts => c"/proc/thread-self/ns/uts",
    }
}

/// The calling thread's namespaces, TID, ids and CapEff (also the report of a thread_call
/// step's thread, `caps.rs`).
pub fn own_state(snap: &mut RawSnapshot) {
    for link in NsLink::ALL {
        let i = link.index();
        match sys::stat_dev_ino(thread_self_path(link)) {
            Ok((_, ino)) => (snap.ns_ino[i], snap.ns_err[i]) = (ino, 0),
            Err(e) => (snap.ns_ino[i], snap.ns_err[i]) = (0, e.0),
        }
    }
    snap.pid = raw::gettid();
    let (uid, gid, euid, egid) = sys::ids();
    snap.ids = [uid, gid, euid, egid];
    snap.cap_eff = sys::capget().map_or(0, |c| c.effective);
}

fn kcmp_all(a: libc::pid_t, b: libc::pid_t, row: &mut [i32; 5]) {
    for (t, (_, kind)) in KCMP_TYPES.iter().enumerate() {
        row[t] = sys::kcmp(a, b, *kind, 0, 0).unwrap_or_else(neg);
    }
}

fn wait_readable(fd: RawFd) -> bool {
    let mut fds = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
    matches!(sys::poll(&mut fds, WAIT_MS), Ok(n) if n > 0)
}

extern "C" fn child_main(arg: *mut libc::c_void) -> ! {
    // SAFETY: arg is the ChildArgs of `run`, alive and unchanged until this child is gone
    // (see the module's Safety section).
    let a = unsafe { &*arg.cast::<ChildArgs>() };
    let mut m = Msg::new(MsgKind::Child);
    own_state(&mut m.snap);
    m.probe[child_probe::KCMP_SIDE] = 0;
    if a.vfork {
        let pid_ns = m.snap.ns_ino[NsLink::Pid.index()];
        let user_ns = m.snap.ns_ino[NsLink::User.index()];
        // The parent's pid means something here only in the parent's pid namespace, and kcmp
        // needs ptrace rights, which a child in a new user namespace lacks over its parent.
        if pid_ns == a.parent_pid_ns && user_ns == a.parent_user_ns {
            kcmp_all(m.snap.pid, a.parent, &mut m.snap.kcmp[0]);
            m.probe[child_probe::KCMP_SIDE] = 2;
        }
    }
    send(a.report_wr, &m);
    if !a.vfork && wait_readable(a.go_rd) {
        let mut b = [0u8; 1];
        let _ = sys::read(a.go_rd, &mut b);
    }
    if a.thread { raw::exit_thread_now(0) } else { sys::exit_now(0) }
}

/// Reads the child's message into `m` (its own view and, for a vfork child, its kcmp).
fn read_report(fd: RawFd, m: &mut Msg) -> bool {
    if !wait_readable(fd) {
        return false;
    }
    let mut buf = [0u8; MSG_LEN];
    let mut got = 0;
    while got < MSG_LEN {
        match sys::read(fd, &mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    match Msg::decode(&buf) {
        Some(child) if child.kind == MsgKind::Child => {
            m.snap = child.snap;
            m.probe[child_probe::KCMP_SIDE] = child.probe[child_probe::KCMP_SIDE];
            true
        }
        _ => false,
    }
}

/// Waits until the child no longer exists (it is not ours to reap).
fn ensure_gone(pid: libc::pid_t, thread: bool) {
    if thread {
        let me = sys::getpid();
        for _ in 0..WAIT_MS {
            if raw::tgkill(me, pid, 0).is_err() {
                return;
            }
            raw::sleep_ms(1);
        }
    } else if let Ok(fd) = sys::pidfd_open(pid) {
        let mut fds = [libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&fd), events: libc::POLLIN, revents: 0 }];
        let _ = sys::poll(&mut fds, WAIT_MS);
    }
}

fn close_all(fds: [RawFd; 4]) {
    for fd in fds {
        let _ = sys::close_raw(fd);
    }
}

/// The caller's side after a successful clone3: everything but the child's own view.
fn observe(m: &mut Msg, pid: libc::pid_t, a: &ChildArgs, go_wr: RawFd, report_rd: RawFd) {
    m.rc = i64::from(pid);
    m.probe[child_probe::REPORTED] = i32::from(read_report(report_rd, m));
    if !a.vfork {
        kcmp_all(sys::getpid(), pid, &mut m.snap.kcmp[0]);
        m.probe[child_probe::KCMP_SIDE] = 1;
        let _ = sys::write(go_wr, b"g");
    }
    m.probe[child_probe::WAIT] = match sys::waitpid(pid, 0) {
        Ok(Some((_, st))) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st),
        Ok(Some((_, st))) => 128 + libc::WTERMSIG(st),
        Ok(None) => neg(Errno(libc::EAGAIN)),
        Err(e) => {
            ensure_gone(pid, a.thread);
            neg(e)
        }
    };
    m.probe[child_probe::SIGCHLD] = i32::from(raw::take_sigchld());
}

/// The `set_tid` buffer of a clone3_set_tid step: the listed pids and zeros, `MAX_PID_NS_LEVEL`
/// entries, so that any size the kernel accepts reads this frame; a null pointer when asked.
fn set_tid_args(st: Option<&SetTidStep>, buf: &mut [i32; SET_TID_BUFFER]) -> (u64, u64) {
    let Some(st) = st else { return (0, 0) };
    buf[..st.tids.len()].copy_from_slice(&st.tids);
    let ptr = if st.null { 0 } else { buf.as_mut_ptr() as u64 };
    (ptr, u64::from(st.size))
}

/// Runs one clone3 step with `flags` (and the `set_tid` of a clone3_set_tid step), reporting
/// the child on `out` (before the step's own message).
///
/// # Errors
/// clone3's errno; the harness's own failures (pipes, stack) end the case as a setup failure.
pub fn run(out: RawFd, flags: RawFlags, set_tid: Option<&SetTidStep>) -> Result<(), Errno> {
    let (report_rd, report_wr) = sys::pipe_raw().unwrap_or_else(|e| fail(out, SetupOp::Clone3Prep, e));
    let (go_rd, go_wr) = sys::pipe_raw().unwrap_or_else(|e| fail(out, SetupOp::Clone3Prep, e));
    let fds = [report_rd, report_wr, go_rd, go_wr];
    let stack = raw::map_stack(STACK_LEN).unwrap_or_else(|e| fail(out, SetupOp::Clone3Prep, e));
    let ino = |link: NsLink| sys::stat_dev_ino(thread_self_path(link)).map_or(0, |(_, i)| i);
    let a = ChildArgs {
        report_wr,
        go_rd,
        thread: flags.intersects(bits::THREAD),
        vfork: flags.intersects(bits::VFORK),
        parent: sys::getpid(),
        parent_pid_ns: ino(NsLink::Pid),
        parent_user_ns: ino(NsLink::User),
    };
    let (mut pidfd, mut parent_tid, mut child_tid): (i32, i32, i32) = (-1, 0, 0);
    let mut tids = [0i32; SET_TID_BUFFER];
    let (set_tid_ptr, set_tid_size) = set_tid_args(set_tid, &mut tids);
    let mut args = raw::CloneArgs {
        flags: flags.bits(),
        pidfd: &mut pidfd as *mut i32 as u64,
        child_tid: &mut child_tid as *mut i32 as u64,
        parent_tid: &mut parent_tid as *mut i32 as u64,
        exit_signal: clone3_exit_signal(flags),
        stack,
        stack_size: STACK_LEN as u64,
        tls: raw::tls_base(),
        set_tid: set_tid_ptr,
        set_tid_size,
        cgroup: CLONE3_CGROUP_FD,
    };
    let old_mask = raw::block_sigchld().unwrap_or_else(|e| fail(out, SetupOp::Clone3Prep, e));
    while raw::take_sigchld() {}
    let arg = (&a as *const ChildArgs).cast_mut().cast();
    // SAFETY: the stack is a fresh mapping; pidfd/child_tid/parent_tid and the set_tid buffer
    // are slots of this frame, which outlives the child (observe() waits for it); child_main
    // only reads `a` and ends itself (module Safety section).
    let result = unsafe { raw::clone3(&mut args, child_main, arg) };
    // Coverage mode: only the call is traced, not the harness's observation after it.
    sys::kcov::step_off();
    let result = result.map(|pid| {
        let mut m = Msg::new(MsgKind::Child);
        observe(&mut m, pid, &a, go_wr, report_rd);
        m.probe[child_probe::PIDFD] = i32::from(pidfd >= 0);
        m.probe[child_probe::PARENT_TID] = i32::from(parent_tid == pid && pid > 0);
        if pidfd >= 0 {
            let _ = sys::close_raw(pidfd);
        }
        send(out, &m);
    });
    raw::restore_mask(&old_mask);
    close_all(fds);
    result
}
