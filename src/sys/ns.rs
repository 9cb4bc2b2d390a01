//! Namespaces: `unshare` (the full 64-bit flag word, through `SYS_unshare`), `setns`, the
//! hostname of the UTS namespace, and a namespace's inode through a pidfd.
//!
//! # Safety
//! `unshare`, `setns` and `sethostname` change the namespaces of the calling process (or what
//! every process of its UTS namespace sees) and are `unsafe fn`: call them only in a
//! single-threaded, disposable process (a case child, a probe's throwaway child) or in the
//! executor while it builds its sandbox. Nothing here allocates.

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::abi::flags::RawFlags;

use super::fs::{close_raw, fstat_dev_ino};
use super::{ret, ret_int};

/// `syscall(SYS_unshare, flags)` with the full 64-bit word; nothing truncates it.
///
/// # Safety
/// Changes namespaces, the fd table and credentials of the calling process.
/// Call it only in a single-threaded, disposable process (a case child) or in
/// the executor before it starts serving cases.
///
/// # References
/// unshare(2), <https://man7.org/linux/man-pages/man2/unshare.2.html>
pub unsafe fn unshare(flags: RawFlags) -> Result<(), Errno> {
    // SAFETY: SYS_unshare takes one unsigned long and touches no user memory; the
    // caller upholds the process-state contract above.
    let rc = unsafe { libc::syscall(libc::SYS_unshare, flags.bits() as libc::c_ulong) };
    ret(rc).map(|_| ())
}

/// `sethostname(name)`.
///
/// # Safety
/// Changes the hostname every process of the calling process's UTS namespace sees. Call it
/// only in the executor, inside the UTS namespace of its sandbox after it is verified new.
pub unsafe fn sethostname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: name is a valid buffer of name.len() bytes.
    ret_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(|_| ())
}

/// `setns(fd, nstype)`.
///
/// # Safety
/// Moves the calling thread into another namespace (a pid namespace for its children, a mount
/// namespace and with it root and cwd, ...). Call it only in a single-threaded, disposable
/// process: a case child or a probe's throwaway child.
pub unsafe fn setns(fd: RawFd, nstype: libc::c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments.
    ret_int(unsafe { libc::setns(fd, nstype) }).map(|_| ())
}

/// `ioctl(pidfd, _IO(0xFF, nr))`, one of the `PIDFD_GET_*_NAMESPACE` requests (Linux 6.11+),
/// then `fstat` of the namespace fd it returns: the namespace's inode number, as the
/// `/proc/<pid>/ns` link names it. The fd is closed again.
pub fn pidfd_namespace_inode(pidfd: RawFd, nr: u8) -> Result<u64, Errno> {
    const PIDFS_IOCTL_MAGIC: libc::c_ulong = 0xFF;
    let request = (PIDFS_IOCTL_MAGIC << 8) | libc::c_ulong::from(nr);
    // SAFETY: these requests return a new descriptor, owned here; their argument must be 0
    // (the kernel refuses any other with EINVAL).
    let fd = ret_int(unsafe { libc::ioctl(pidfd, request as _, 0 as libc::c_ulong) })?;
    let inode = fstat_dev_ino(fd).map(|(_, ino)| ino);
    let _ = close_raw(fd);
    inode
}
