//! The case child's `caps` and `thread_call` steps (issue 16 class 5): capability and
//! credential changes short of CAP_SYS_ADMIN, and an unshare made by a new thread while the
//! main thread waits. Post-fork code: no allocation, no formatting, no panics
//! (`tests/style.rs`).
//!
//! # Safety
//! The `unsafe` here changes the credentials of the case child (capset, prctl, setresuid) and
//! starts a thread that unshares its own attributes; the child is disposable, and the thread
//! only touches [`Shared`], which lives on the main thread's stack until the thread is done
//! with it.

#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use crate::abi::errno::Errno;
use crate::abi::flags::RawFlags;
use crate::case::CapsOp;
use crate::case::caps::{CAP_SYS_ADMIN, CAPS_NOBODY};
use crate::sys;

use super::ops::send;
use super::record::{Msg, MsgKind, child_probe};

/// Highest capability number `bound-all-but-sys-admin` tries; past the kernel's last one
/// `PR_CAPBSET_DROP` gives EINVAL, which ends the loop.
const LAST_TRIED_CAP: u32 = 63;

/// Runs one caps operation.
pub fn run(op: CapsOp) -> Result<(), Errno> {
    match op {
        CapsOp::BoundAllButSysAdmin => {
            for cap in (0..=LAST_TRIED_CAP).filter(|c| *c != CAP_SYS_ADMIN) {
                // SAFETY: the case child is disposable; PR_CAPBSET_DROP takes an integer.
                match unsafe { sys::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) } {
                    Ok(()) => {}
                    Err(Errno(libc::EINVAL)) if cap > CAP_SYS_ADMIN => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        CapsOp::KeepcapsNobody => {
            // SAFETY: the case child is disposable; integer options of its own.
            unsafe { sys::prctl(libc::PR_SET_KEEPCAPS, 1) }?;
            // The calling thread only, like the capset of the drops before it: glibc's wrapper
            // would abort the child when another thread, still holding CAP_SETUID, succeeds.
            // SAFETY: as above.
            unsafe { sys::set_thread_uids(CAPS_NOBODY) }?;
            // Without this the /proc/self files turn root-owned (spec §5.4 pitfall), as in the
            // nobody setup.
            // SAFETY: as above.
            unsafe { sys::prctl(libc::PR_SET_DUMPABLE, 1) }
        }
        CapsOp::Raise => {
            let c = sys::capget()?;
            // SAFETY: the case child is disposable; effective within permitted is always allowed.
            unsafe { sys::capset(sys::CapSets { effective: c.permitted, ..c }) }
        }
        drop => {
            let (c, m) = (sys::capget()?, drop.drop_mask());
            let sets = sys::CapSets {
                effective: c.effective & !m,
                permitted: c.permitted & !m,
                inheritable: c.inheritable & !m,
            };
            // SAFETY: the case child is disposable; shrinking every set is always allowed.
            unsafe { sys::capset(sets) }
        }
    }
}

/// What the main thread and a thread_call step's thread share.
pub struct Shared {
    flags: u64,
    out: RawFd,
    /// 0 while the thread runs, 1 once it has reported.
    done: AtomicU32,
    /// 0 or the errno of its unshare.
    errno: AtomicI32,
}

extern "C" fn thread_main(arg: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: arg is the Shared of `thread_call`, alive until `done` is set, and only read here.
    let shared = unsafe { &*arg.cast::<Shared>() };
    // SAFETY: the case child is disposable; this thread unshares its own attributes.
    let r = unsafe { sys::unshare(RawFlags(shared.flags)) };
    let mut m = Msg::new(MsgKind::Child);
    (m.rc, m.errno) = match r {
        Ok(()) => (0, 0),
        Err(e) => (-1, e.0),
    };
    super::clone3::own_state(&mut m.snap);
    m.probe[child_probe::REPORTED] = 1;
    (m.probe[child_probe::WAIT], m.probe[child_probe::SIGCHLD]) = (0, 0);
    (m.probe[child_probe::PIDFD], m.probe[child_probe::PARENT_TID], m.probe[child_probe::KCMP_SIDE]) = (0, 0, 0);
    send(shared.out, &m);
    shared.errno.store(r.err().map_or(0, |e| e.0), Ordering::Relaxed);
    shared.done.store(1, Ordering::Release);
    sys::park_forever()
}

/// A new thread calls unshare(`flags`) and reports (a `Child` message); the caller waits for
/// it and returns its result. The thread then sleeps until the case ends.
pub fn thread_call(out: RawFd, flags: RawFlags) -> Result<(), Errno> {
    let shared = Shared { flags: flags.0, out, done: AtomicU32::new(0), errno: AtomicI32::new(0) };
    let arg = (&shared as *const Shared).cast_mut().cast();
    // SAFETY: `shared` outlives the thread's use of it: this function returns only after the
    // thread set `done`, its last access; thread_main never returns (it parks).
    unsafe { sys::spawn_thread_with(thread_main, arg) }?;
    while shared.done.load(Ordering::Acquire) == 0 {
        sys::yield_cpu();
    }
    match shared.errno.load(Ordering::Relaxed) {
        0 => Ok(()),
        e => Err(Errno(e)),
    }
}
