//! The post-fork halves of the resource probe (`limits.rs`): throwaway children that pause
//! until killed, and one that enters its own mount namespace again to find the namespace's
//! root. Same rules as `child.rs` (checked by `tests/style.rs`): no allocation, no formatting,
//! no panics; every child ends with `_exit` or a signal.
//!
//! # Safety
//! Called only by the single-threaded executor, before it serves any case; each child only
//! makes system calls and exits (or pauses until the executor kills it).

#![allow(unsafe_code)]

use crate::abi::errno::Errno;
use crate::sys;

/// Forks a child that pauses until it is killed; returns its pid.
///
/// # Errors
/// fork's errno (EAGAIN when RLIMIT_NPROC or a pids cgroup is reached).
pub fn spawn_pauser() -> Result<libc::pid_t, Errno> {
    // SAFETY: the executor is single-threaded; the child only pauses.
    let pid = unsafe { sys::fork() }?;
    if pid == 0 {
        sys::pause_forever();
    }
    Ok(pid)
}

/// Exit codes of the root-comparison child.
pub mod root_probe {
    /// `/` is the mount namespace's root.
    pub const SAME: i32 = 0;
    /// `/` differs from the mount namespace's root (chrooted).
    pub const DIFFERENT: i32 = 1;
    /// statx of `/` (with the mount id) failed.
    pub const NO_STATX: i32 = 2;
    /// Opening `/proc/self/ns/mnt` failed.
    pub const NO_NS_FILE: i32 = 3;
    /// `setns(CLONE_NEWNS)` failed (no CAP_SYS_ADMIN/CAP_SYS_CHROOT, a filter, ...).
    pub const NO_SETNS: i32 = 4;
}

/// Forks a child that compares `/` with the root of its mount namespace and exits with a
/// [`root_probe`] code: `setns` into the mount namespace one is already in moves root and cwd
/// to the namespace's root, followed down through anything mounted on it, which is the path
/// the kernel's `current_chrooted()` compares with. Returns the child's pid.
///
/// # Errors
/// fork's errno.
pub fn spawn_root_probe() -> Result<libc::pid_t, Errno> {
    // SAFETY: the executor is single-threaded; the child only makes system calls and exits.
    let pid = unsafe { sys::fork() }?;
    if pid != 0 {
        return Ok(pid);
    }
    let Ok(before) = sys::mount_dev_ino(c"/") else { sys::exit_now(root_probe::NO_STATX) };
    let Ok(fd) = sys::open_raw(c"/proc/self/ns/mnt", libc::O_RDONLY | libc::O_CLOEXEC) else {
        sys::exit_now(root_probe::NO_NS_FILE)
    };
    // SAFETY: the root probe's throwaway child, single-threaded and disposable.
    if unsafe { sys::setns(fd, libc::CLONE_NEWNS) }.is_err() {
        sys::exit_now(root_probe::NO_SETNS);
    }
    match sys::mount_dev_ino(c"/") {
        Ok(after) if after == before => sys::exit_now(root_probe::SAME),
        Ok(_) => sys::exit_now(root_probe::DIFFERENT),
        Err(_) => sys::exit_now(root_probe::NO_STATX),
    }
}
