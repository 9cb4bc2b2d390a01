//! Credentials: the capability sets (`capget`, `capset`), the four ids, and the calls that
//! drop them (`setgroups`, `setresgid`, `setresuid`).
//!
//! # Safety
//! `capset`, `clear_groups`, `set_all_gids` and `set_all_uids` change the credentials of the
//! calling thread (and, through glibc's setxid broadcast, of every thread) and are `unsafe fn`:
//! call them only in a disposable case child. Nothing here allocates.

#![allow(unsafe_code)]

use crate::abi::errno::Errno;

use super::{ret, ret_int};

/// The three capability sets of the calling thread (low 64 bits each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `capget` for the calling thread.
pub fn capget() -> Result<CapSets, Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, properly sized (version 3 uses two CapData) and live
    // for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) };
    ret(rc)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// `capset` for the calling thread.
///
/// # Safety
/// Changes the capabilities of the calling thread; a thread that drops one cannot get it back.
/// Call it only in a disposable case child.
pub unsafe fn capset(sets: CapSets) -> Result<(), Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapData { effective: e0, permitted: p0, inheritable: i0 },
        CapData { effective: e1, permitted: p1, inheritable: i1 },
    ];
    // SAFETY: header and data are valid and sized for version 3; capset only reads data.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    ret(rc).map(|_| ())
}

/// Real and effective ids: (uid, gid, euid, egid).
pub fn ids() -> (u32, u32, u32, u32) {
    // Two calls instead of four (the case child reads its ids four times per case):
    // getresuid and getresgid give the real and effective ids (and the saved ones) at once.
    let (mut uid, mut euid, mut suid, mut gid, mut egid, mut sgid) = (0, 0, 0, 0, 0, 0);
    // SAFETY: pointers to six live u32 locals; these calls fail only on a bad pointer.
    let (ru, rg) =
        unsafe { (libc::getresuid(&mut uid, &mut euid, &mut suid), libc::getresgid(&mut gid, &mut egid, &mut sgid)) };
    if ru != 0 || rg != 0 {
        // SAFETY: these calls take no arguments and cannot fail.
        return unsafe { (libc::getuid(), libc::getgid(), libc::geteuid(), libc::getegid()) };
    }
    (uid, gid, euid, egid)
}

/// `setgroups(0, NULL)`.
///
/// # Safety
/// Changes the credentials of the calling process (glibc applies it to every thread). Call it
/// only in a disposable case child.
pub unsafe fn clear_groups() -> Result<(), Errno> {
    // SAFETY: a zero-length list with a null pointer is valid for setgroups.
    ret_int(unsafe { libc::setgroups(0, std::ptr::null()) }).map(|_| ())
}

/// `setresgid(g, g, g)`.
///
/// # Safety
/// Changes the credentials of the calling process (glibc applies it to every thread); after a
/// drop the process cannot get them back. Call it only in a disposable case child.
pub unsafe fn set_all_gids(gid: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setresgid(gid, gid, gid) }).map(|_| ())
}

/// `setresuid(u, u, u)` as the raw system call: the calling thread only, as the kernel has it
/// (glibc's wrapper applies it to every thread, and aborts the process when the threads' answers
/// differ, as they do after a capset that only the calling thread made).
///
/// # Safety
/// Changes the credentials of the calling thread and, for a non-root uid, drops its
/// capabilities (unless keepcaps). Call it only in a disposable case child.
pub unsafe fn set_thread_uids(uid: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) } as libc::c_int).map(|_| ())
}

/// `setresuid(u, u, u)`.
///
/// # Safety
/// Changes the credentials of the calling process (glibc applies it to every thread) and, for
/// a non-root uid, drops every capability. Call it only in a disposable case child.
pub unsafe fn set_all_uids(uid: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setresuid(uid, uid, uid) }).map(|_| ())
}
