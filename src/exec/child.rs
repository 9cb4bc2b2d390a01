//! Code that runs in the forked case child, and nothing else: build the
//! setup, run the steps, snapshot the state around each one, write one
//! fixed-size message per event to the pipe, `_exit`.
//!
//! Rules (checked by `tests/style.rs`): no allocation, no formatting, no
//! printing, no panics, no unwinding out of this module; every failure is
//! reported as a message and the child ends with `_exit`.
//!
//! # Safety
//! The only `unsafe` here is the call to `sys::unshare`, an `unsafe fn` whose
//! contract (a single-threaded, disposable process, or one whose extra threads
//! were started by this very setup) holds because this code only runs in a
//! child forked from the single-threaded executor.

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::case::{Case, Privilege, Step};
use crate::errno::Errno;
use crate::flags::{RawFlags, bits};
use crate::ns::NsLink;
use crate::sys;

use super::record::{MSG_LEN, Msg, MsgKind, RawSnapshot, SetupOp};

const CAP_SYS_ADMIN_BIT: u64 = 1 << 21;
const NOBODY: u32 = 65534;

/// Fills `snap` with the calling process's state.
pub fn snapshot(snap: &mut RawSnapshot) {
    for link in NsLink::ALL {
        let i = link.index();
        match sys::stat_dev_ino(link.c_path()) {
            Ok((_, ino)) => {
                snap.ns_ino[i] = ino;
                snap.ns_err[i] = 0;
            }
            Err(e) => {
                snap.ns_ino[i] = 0;
                snap.ns_err[i] = e.0;
            }
        }
    }
    snap.pid = sys::getpid();
    let (uid, gid, euid, egid) = sys::ids();
    snap.ids = [uid, gid, euid, egid];
    snap.cap_eff = sys::capget().map_or(0, |c| c.effective);
    snap.threads = sys::proc::thread_count().unwrap_or(0);
}

fn send(fd: RawFd, msg: &Msg) {
    let mut buf = [0u8; MSG_LEN];
    msg.encode(&mut buf);
    // A failed write means the executor is gone; there is no one left to tell.
    let _ = sys::write(fd, &buf);
}

fn fail(fd: RawFd, op: SetupOp, errno: Errno) -> ! {
    let mut m = Msg::new(MsgKind::SetupFailed);
    m.op = op as u32;
    m.errno = errno.0;
    send(fd, &m);
    send(fd, &Msg::new(MsgKind::Done));
    sys::exit_now(0)
}

fn check(fd: RawFd, op: SetupOp, r: Result<(), Errno>) {
    if let Err(e) = r {
        fail(fd, op, e);
    }
}

fn apply_privilege(fd: RawFd, privilege: Privilege) {
    match privilege {
        Privilege::Root => {}
        Privilege::RootWithoutSysAdmin => {
            let caps = match sys::capget() {
                Ok(c) => c,
                Err(e) => fail(fd, SetupOp::Capget, e),
            };
            let dropped = sys::CapSets {
                effective: caps.effective & !CAP_SYS_ADMIN_BIT,
                permitted: caps.permitted & !CAP_SYS_ADMIN_BIT,
                inheritable: caps.inheritable & !CAP_SYS_ADMIN_BIT,
            };
            check(fd, SetupOp::CapsetDropSysAdmin, sys::capset(dropped));
        }
        Privilege::Nobody => {
            check(fd, SetupOp::Setgroups, sys::clear_groups());
            check(fd, SetupOp::SetgidNobody, sys::set_all_gids(NOBODY));
            check(fd, SetupOp::SetuidNobody, sys::set_all_uids(NOBODY));
            // Without this the /proc/self files turn root-owned (spec §5.4 pitfall).
            check(fd, SetupOp::Dumpable, sys::prctl(libc::PR_SET_DUMPABLE, 1));
        }
        Privilege::UserNs => {
            let (_, _, euid, egid) = sys::ids();
            // SAFETY: this is the single-threaded case child (threads start after this).
            check(fd, SetupOp::UnshareUserNs, unsafe {
                sys::unshare(RawFlags(bits::NEWUSER))
            });
            if let Err((path, e)) = sys::proc::write_id_maps(0, euid, egid) {
                let op = if path == c"/proc/self/setgroups" {
                    SetupOp::WriteSetgroups
                } else if path == c"/proc/self/uid_map" {
                    SetupOp::WriteUidMap
                } else {
                    SetupOp::WriteGidMap
                };
                fail(fd, op, e);
            }
        }
    }
}

/// Runs `case` in this freshly forked child and reports on `fd`. Never returns.
pub fn run_case(case: &Case, fd: RawFd) -> ! {
    check(fd, SetupOp::Setpgid, sys::setpgid(0, 0));
    check(
        fd,
        SetupOp::Pdeathsig,
        sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong),
    );
    apply_privilege(fd, case.setup.privilege);
    for _ in 0..case.setup.threads {
        check(fd, SetupOp::PthreadCreate, sys::spawn_parked_thread());
    }
    let mut msg = Msg::new(MsgKind::Before);
    snapshot(&mut msg.snap);
    send(fd, &msg);
    for (index, step) in case.steps.iter().enumerate() {
        let mut m = Msg::new(MsgKind::Step);
        m.op = index as u32;
        match step {
            Step::Unshare(flags) => {
                // SAFETY: see the module's Safety section; this process is the disposable
                // case child and its only extra threads are the parked ones of the setup.
                match unsafe { sys::unshare(*flags) } {
                    Ok(()) => m.rc = 0,
                    Err(e) => {
                        m.rc = -1;
                        m.errno = e.0;
                    }
                }
            }
        }
        snapshot(&mut m.snap);
        send(fd, &m);
    }
    send(fd, &Msg::new(MsgKind::Done));
    sys::exit_now(0)
}
