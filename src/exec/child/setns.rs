//! The descriptors of the case's setns steps (issue 16 class 4), in the case child: the
//! namespace links and the exited child's pidfd opened before the first step ("setns back"),
//! and the links a step opens itself. Post-fork code: allocates nothing (`tests/style.rs`).

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::case::{Case, SetnsTarget, Step};
use crate::sys;

/// One slot per [`SetnsTarget`]: a descriptor, or the negated errno of opening it, or
/// [`UNOPENED`].
pub type Fds = [i32; SetnsTarget::ALL.len()];

/// A slot the case never asked for.
pub const UNOPENED: i32 = i32::MIN;

/// No descriptor opened yet.
pub const NONE: Fds = [UNOPENED; SetnsTarget::ALL.len()];

fn open_link(target: SetnsTarget) -> Result<RawFd, Errno> {
    let Some(link) = target.link() else {
        return sys::exited_child_pidfd();
    };
    let mut path = [0u8; 40];
    let prefix = b"/proc/self/ns/";
    let name = link.c_name().to_bytes();
    path[..prefix.len()].copy_from_slice(prefix);
    path[prefix.len()..prefix.len() + name.len()].copy_from_slice(name);
    let c = std::ffi::CStr::from_bytes_until_nul(&path).map_err(|_| Errno(libc::ENAMETOOLONG))?;
    sys::open_raw(c, libc::O_RDONLY | libc::O_CLOEXEC)
}

/// Opens, before the first step, every descriptor a setns step of `case` uses from there.
pub fn open_at_start(case: &Case, fds: &mut Fds) {
    for step in &case.steps {
        if let Step::Setns(s) = step
            && s.target.opened_at_start()
            && fds[s.target.index()] == UNOPENED
        {
            fds[s.target.index()] = open_link(s.target).unwrap_or_else(|e| -e.0);
        }
    }
}

/// The descriptor for a step on `target` and whether the step must close it after the call.
///
/// # Errors
/// The errno of opening it (at the step, or before the first step).
pub fn fd_for(fds: &Fds, target: SetnsTarget) -> Result<(RawFd, bool), Errno> {
    if !target.opened_at_start() {
        return open_link(target).map(|fd| (fd, true));
    }
    match fds[target.index()] {
        fd if fd >= 0 => Ok((fd, false)),
        UNOPENED => Err(Errno(libc::EBADF)),
        e => Err(Errno(-e)),
    }
}
