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

/// The i386 number of unshare (arch/x86/entry/syscalls/syscall_32.tbl).
#[cfg(target_arch = "x86_64")]
const I386_NR_UNSHARE: u32 = 310;

/// `unshare(word)` through the i386 compat entry: `int $0x80` from this 64-bit process. The
/// whole 64-bit word goes into `rbx`; the entry's argument is `ebx`, so a kernel that keeps the
/// contract sees only the low 32 bits, and one that read all of `rbx` would show it.
///
/// # Safety
/// As [`unshare`]. Besides, on a kernel without IA32 emulation (or with it turned off by
/// `ia32_emulation=0`) the instruction raises a fault and the process dies of SIGSEGV: call it
/// only where a disposable child's probe showed that the entry works
/// (`exec::executor::call_probe`). x86-64 only; elsewhere it fails with ENOSYS.
///
/// # References
/// Documentation/arch/x86/entry_64.rst; arch/x86/entry/entry_64_compat.S (`int80_emulation`
/// since Linux 6.7).
#[cfg(target_arch = "x86_64")]
pub unsafe fn unshare_int80(word: u64) -> Result<(), Errno> {
    let mut rax = I386_NR_UNSHARE as u64;
    // SAFETY: int $0x80 reads the call number from eax and the one argument from ebx; unshare
    // touches no user memory. rbx is reserved by the compiler, so the word is swapped into it
    // and back around the instruction. The compat entry saves and restores every other
    // register; r8-r11 are declared clobbered all the same (older kernels zeroed them). The
    // caller upholds the process-state contract above.
    unsafe {
        core::arch::asm!(
            "xchg {w}, rbx",
            "int 0x80",
            "xchg {w}, rbx",
            w = inout(reg) word => _,
            inout("rax") rax,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    // The result is eax, a 32-bit int: 0 or a negated errno (a raw call sets no errno).
    match rax as u32 as i32 {
        rc if rc < 0 => Err(Errno(-rc)),
        _ => Ok(()),
    }
}

/// Not x86-64: there is no i386 entry.
///
/// # Safety
/// None needed; it makes no call.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn unshare_int80(_word: u64) -> Result<(), Errno> {
    Err(Errno(libc::ENOSYS))
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
