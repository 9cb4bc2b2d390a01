//! What the parts of the case child share, below all of them: its context ([`Ctx`]),
//! reporting ([`send`], [`fail`]), ending ([`wait_and_exit`]), and the two calls both the
//! setup (`setup.rs`) and the steps (`child.rs`, `clone3.rs`) make: [`drop_sys_admin`] and
//! [`do_chroot`]. Post-fork code: no allocation, no formatting, no panics (`tests/style.rs`).
//!
//! # Safety
//! The `unsafe` here drops a capability and chroots, only ever in the case child, a
//! disposable process.

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::case::{Case, Chroot};
use crate::sys;

use super::plan::Plan;
use super::record::{CLOCKS, FDS, MSG_LEN, Msg, MsgKind, SIBS, SetupOp};
use super::sibling::Sib;

/// The chroot directory prepared by the sandbox; it contains itself again, several levels deep.
pub const CHROOT_DIR: &std::ffi::CStr = c"/tmp/uf-chroot";

/// How many nested copies of [`CHROOT_DIR`] the sandbox prepares.
pub const CHROOT_LEVELS: usize = 6;

/// Everything the child carries, on its own stack.
pub struct Ctx<'a> {
    /// The report pipe.
    pub out: RawFd,
    /// The case.
    pub case: &'a Case,
    /// Nesting counts.
    pub plan: Plan,
    /// Siblings made by the setup.
    pub sibs: [Sib; SIBS],
    /// How many.
    pub nsibs: usize,
    /// Setup fds.
    pub fds: [RawFd; FDS],
    /// How many.
    pub nfds: usize,
    /// The setup semaphore, or -1.
    pub sem_id: i32,
    /// euid/egid before the last unshare (for WriteMaps).
    pub outer_ids: (u32, u32),
    /// Timestamps for the phase timeline, sent with `Done` (see `record::clock`).
    pub clock: [u64; CLOCKS],
    /// The namespace markers as read before the first step.
    pub marks: super::markers::Reading,
    /// Life inside the namespaces as read before the first step (`inside`).
    pub inside: super::inside::Before,
    /// The setns steps' descriptors opened before the first step (`setns`).
    pub setns_fds: super::setns::Fds,
    /// The witness of `inside_witness`, forked before the first step (or why there is none).
    pub inside_witness: super::inside_witness::Witness,
}

/// Writes one message (a failed write means the executor is gone: nobody is left to tell).
pub fn send(fd: RawFd, msg: &Msg) {
    let mut buf = [0u8; MSG_LEN];
    msg.encode(&mut buf);
    let _ = sys::write(fd, &buf);
}

/// Writes two messages with one `write` (for two that are ready at the same moment: one system
/// call less per case).
pub fn send_two(fd: RawFd, first: &Msg, second: &Msg) {
    let mut buf = [[0u8; MSG_LEN]; 2];
    first.encode(&mut buf[0]);
    second.encode(&mut buf[1]);
    let _ = sys::write(fd, buf.as_flattened());
}

/// Reports a setup failure and ends the process.
pub fn fail(fd: RawFd, op: SetupOp, errno: Errno) -> ! {
    let mut m = Msg::new(MsgKind::SetupFailed);
    m.op = op as u32;
    m.errno = errno.0;
    send(fd, &m);
    send(fd, &Msg::new(MsgKind::Done));
    sys::exit_now(0)
}

/// Waits for `pid` and ends this process with an exit status that mirrors it.
pub fn wait_and_exit(pid: libc::pid_t) -> ! {
    let code = match sys::waitpid(pid, 0) {
        Ok(Some((_, st))) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st),
        Ok(Some((_, st))) if libc::WIFSIGNALED(st) => 128 + libc::WTERMSIG(st),
        // SIGCHLD is ignored (a clone3 step's CLONE_SIGHAND child that was a pid-ns init set it
        // when it exited): the kernel reaped the child itself; its Done message says how it ended.
        Err(Errno(libc::ECHILD)) => 0,
        _ => 1,
    };
    sys::exit_now(code)
}

fn capset_without_sys_admin() -> Result<(), Errno> {
    let caps = sys::capget()?;
    let bit = 1u64 << 21;
    // SAFETY: this runs only in the case child (setup or step), a disposable process.
    unsafe {
        sys::capset(sys::CapSets {
            effective: caps.effective & !bit,
            permitted: caps.permitted & !bit,
            inheritable: caps.inheritable & !bit,
        })
    }
}

/// Drops CAP_SYS_ADMIN (shared with the setup).
pub fn drop_sys_admin() -> Result<(), Errno> {
    capset_without_sys_admin()
}

/// chroot into the prepared directory (or "/") and chdir("/").
pub fn do_chroot(kind: Chroot) -> Result<(), Errno> {
    let dir = match kind {
        Chroot::Subdir => CHROOT_DIR,
        Chroot::Root => c"/",
    };
    // SAFETY: only the case child chroots (setup or step); it is disposable.
    unsafe { sys::chroot(dir) }?;
    sys::chdir(c"/")
}
