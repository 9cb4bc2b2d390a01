//! The thin system-call layer: every raw syscall and every `unsafe` block of
//! the crate lives here (plus `exec/child.rs`, which calls the `unsafe fn`s).
//! Each wrapper decodes its result through [`ret`] into an [`Errno`].
//!
//! # Safety
//! Wrappers that only read or write memory they own, or pass plain integers,
//! are safe functions; their `unsafe` blocks are justified one by one. Calls
//! that change process-wide state in ways the Rust runtime does not expect
//! (unshare, fork) are `unsafe fn` with a `# Safety` section: they may only be
//! called in a single-threaded process that the harness treats as disposable
//! (a forked case child, or the executor before it serves cases).
//!
//! None of these functions allocate, so they may be used after `fork`.

#![allow(unsafe_code)]

pub mod clone3;
pub mod proc;
pub mod seccomp;

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::abi::errno::Errno;
use crate::abi::flags::RawFlags;

/// The calling thread's errno.
pub fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Decodes a raw syscall return value: negative means failure with `errno`.
pub fn ret(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 { Err(last_errno()) } else { Ok(rc) }
}

fn ret_int(rc: libc::c_int) -> Result<libc::c_int, Errno> {
    if rc < 0 { Err(last_errno()) } else { Ok(rc) }
}

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

/// `fork()`: `Ok(0)` in the child, `Ok(pid)` in the parent.
///
/// # Safety
/// The caller must be single-threaded (so the child inherits no lock held by
/// another thread), and the child must end with [`exit_now`], never by
/// returning into the caller's stack frames.
pub unsafe fn fork() -> Result<libc::pid_t, Errno> {
    // SAFETY: the caller guarantees the process is single-threaded.
    let pid = unsafe { libc::fork() };
    ret_int(pid)
}

/// `_exit(code)`: ends the process without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `setpgid(pid, pgid)`.
pub fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setpgid(pid, pgid) }).map(|_| ())
}

/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds (a vDSO call: no system call, no
/// allocation; the same clock in every process of the machine).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: t is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec as u64)
}

/// `getpid()`.
pub fn getpid() -> libc::pid_t {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// `prctl(option, arg2)` with integer arguments.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the options used by the harness take integer arguments only.
    ret_int(unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) })
        .map(|_| ())
}

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
pub fn capset(sets: CapSets) -> Result<(), Errno> {
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
    // SAFETY: these calls take no arguments and cannot fail.
    unsafe { (libc::getuid(), libc::getgid(), libc::geteuid(), libc::getegid()) }
}

/// `setgroups(0, NULL)`.
pub fn clear_groups() -> Result<(), Errno> {
    // SAFETY: a zero-length list with a null pointer is valid for setgroups.
    ret_int(unsafe { libc::setgroups(0, std::ptr::null()) }).map(|_| ())
}

/// `setresgid(g, g, g)`.
pub fn set_all_gids(gid: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setresgid(gid, gid, gid) }).map(|_| ())
}

/// `setresuid(u, u, u)`.
pub fn set_all_uids(uid: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::setresuid(uid, uid, uid) }).map(|_| ())
}

/// Opens `path` for writing (no create), writes `data` in one call and closes it.
pub fn write_file(path: &CStr, data: &[u8]) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    let fd = ret_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
    // SAFETY: fd was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let n = write(fd.as_raw_fd(), data)?;
    if n != data.len() { Err(Errno(libc::EIO)) } else { Ok(()) }
}

/// Reads up to `buf.len()` bytes of `path` into `buf`; returns how many.
pub fn read_file_into(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: path is NUL-terminated.
    let fd = ret_int(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: fd was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut total = 0;
    while total < buf.len() {
        let n = read(fd.as_raw_fd(), &mut buf[total..])?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// `stat(path)` following links: (st_dev, st_ino).
pub fn stat_dev_ino(path: &CStr) -> Result<(u64, u64), Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: path is NUL-terminated and st points to writable memory of the right size.
    ret_int(unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded, so it filled st.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// `fstatat(dirfd, name, 0)` following links: st_ino.
pub fn fstatat_ino(dirfd: RawFd, name: &CStr) -> Result<u64, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: name is NUL-terminated and st points to writable memory of the right size.
    ret_int(unsafe { libc::fstatat(dirfd, name.as_ptr(), st.as_mut_ptr(), 0) })?;
    // SAFETY: fstatat succeeded, so it filled st.
    Ok(unsafe { st.assume_init() }.st_ino)
}

/// `write(fd, data)`, retried on EINTR.
pub fn write(fd: RawFd, data: &[u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: data is a valid readable buffer of data.len() bytes.
        let rc = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match ret(rc as libc::c_long) {
            Err(Errno::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `read(fd, buf)`, retried on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: buf is a valid writable buffer of buf.len() bytes.
        let rc = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match ret(rc as libc::c_long) {
            Err(Errno::EINTR) => continue,
            other => return other.map(|n| n as usize),
        }
    }
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    ret_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded; both descriptors are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets O_NONBLOCK on `fd`, clearing its other status flags (for a fresh pipe end).
pub fn set_nonblocking_fresh(fd: RawFd) -> Result<(), Errno> {
    // One call, no F_GETFL: F_SETFL replaces the status flags, and a fresh pipe end has none.
    // SAFETY: F_SETFL takes an integer argument.
    ret_int(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) }).map(|_| ())
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the result is a new descriptor owned here.
    let fd = ret(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `poll` over `fds` with a timeout in milliseconds; returns the count of ready fds.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: fds is a valid array of fds.len() pollfd structures.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    ret_int(rc).map(|n| n as usize)
}

/// `kill(pid, sig)`; a negative pid names a process group.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    ret_int(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// `waitpid(pid, options)`: `Ok(None)` with WNOHANG when nothing changed, else (pid, status).
pub fn waitpid(pid: libc::pid_t, options: libc::c_int) -> Result<Option<(libc::pid_t, libc::c_int)>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, options) };
        match ret_int(rc) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(p) => return Ok(Some((p, status))),
        }
    }
}

/// `mount(source, target, fstype, flags, NULL)`.
pub fn mount(source: &CStr, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong) -> Result<(), Errno> {
    let fstype = fstype.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: all strings are NUL-terminated or null where mount allows it; data is null.
    ret_int(unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype, flags, std::ptr::null()) }).map(|_| ())
}

/// `sethostname(name)`.
pub fn sethostname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: name is a valid buffer of name.len() bytes.
    ret_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(|_| ())
}

/// The running kernel's release string (`uname -r`).
pub fn kernel_release() -> String {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uts points to writable memory of the right size.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname succeeded and filled uts; release is NUL-terminated.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: the kernel NUL-terminates the release field.
    unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy().into_owned()
}

/// `uname -v`: the kernel's version string (`#1 SMP ...`).
pub fn kernel_version() -> String {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
    // SAFETY: uts points to writable memory of the right size.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname succeeded and filled uts.
    let uts = unsafe { uts.assume_init() };
    // SAFETY: the kernel NUL-terminates the version field.
    unsafe { CStr::from_ptr(uts.version.as_ptr()) }.to_string_lossy().into_owned()
}

/// The first bytes of the kernel log (`syslog(SYSLOG_ACTION_READ_ALL)`), if readable.
pub fn kernel_log_head() -> Option<String> {
    let mut buf = [0u8; 4096];
    // SAFETY: buf is writable for its length; READ_ALL (3) copies at most that many bytes.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as libc::c_int) };
    let n = usize::try_from(n).ok()?.min(buf.len());
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The uname version gVisor reports on every release (pkg/sentry/kernel/version.go).
pub const GVISOR_UNAME_VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

/// When the running kernel is not Linux but a Linux-compatible one that says so: its name and
/// the tell. gVisor is recognised by its kernel log, whose first line is "Starting gVisor...",
/// or by the fixed uname version it has always reported.
pub fn foreign_kernel() -> Option<(&'static str, String)> {
    let log = kernel_log_head().unwrap_or_default();
    if log.contains("Starting gVisor") {
        return Some(("gVisor", "the kernel log (syslog(2)) starts with \"Starting gVisor...\"".into()));
    }
    let version = kernel_version();
    if version == GVISOR_UNAME_VERSION {
        return Some(("gVisor", format!("uname -v is gVisor's fixed {version:?}")));
    }
    None
}

extern "C" fn parked_thread(_arg: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        // SAFETY: pause has no arguments; the thread sleeps until the process exits.
        unsafe { libc::pause() };
    }
}

/// Starts a detached thread that sleeps until the process exits.
pub fn spawn_parked_thread() -> Result<(), Errno> {
    let mut tid = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: tid is a valid out-pointer, attributes are default (null), and the start routine
    // never touches its argument.
    let rc = unsafe { libc::pthread_create(tid.as_mut_ptr(), std::ptr::null(), parked_thread, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Errno(rc));
    }
    // SAFETY: pthread_create succeeded and set tid.
    let rc = unsafe { libc::pthread_detach(tid.assume_init()) };
    if rc != 0 { Err(Errno(rc)) } else { Ok(()) }
}

/// `kcmp(pid1, pid2, type, idx1, idx2)`: 0 same, 1/2 ordered different, or the errno.
pub fn kcmp(pid1: libc::pid_t, pid2: libc::pid_t, kind: i32, idx1: u64, idx2: u64) -> Result<i32, Errno> {
    // SAFETY: integer arguments only; no memory is passed for the types used here.
    let rc = unsafe { libc::syscall(libc::SYS_kcmp, pid1, pid2, kind, idx1 as libc::c_ulong, idx2 as libc::c_ulong) };
    ret(rc).map(|v| v as i32)
}

/// `chroot(path)`.
pub fn chroot(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    ret_int(unsafe { libc::chroot(path.as_ptr()) }).map(|_| ())
}

/// `chdir(path)`.
pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    ret_int(unsafe { libc::chdir(path.as_ptr()) }).map(|_| ())
}

/// `umask(mask)`: returns the previous mask.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: integer argument; cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) }
}

/// `mkdir(path, mode)`; EEXIST counts as success.
pub fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    match ret_int(unsafe { libc::mkdir(path.as_ptr(), mode as libc::mode_t) }) {
        Ok(_) | Err(Errno(libc::EEXIST)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `open(path, flags)` returning the raw fd (the caller owns it).
pub fn open_raw(path: &CStr, flags: libc::c_int) -> Result<RawFd, Errno> {
    // SAFETY: path is NUL-terminated; mode is unused without O_CREAT.
    ret_int(unsafe { libc::open(path.as_ptr(), flags) })
}

/// `close(fd)`.
pub fn close_raw(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: closing an integer fd the caller owns.
    ret_int(unsafe { libc::close(fd) }).map(|_| ())
}

/// `fcntl(fd, F_GETFD)`.
pub fn fd_flags(fd: RawFd) -> Result<i32, Errno> {
    // SAFETY: F_GETFD takes no argument.
    ret_int(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

/// `fchdir(fd)`.
pub fn fchdir(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: integer argument.
    ret_int(unsafe { libc::fchdir(fd) }).map(|_| ())
}

/// A datagram `AF_UNIX` socket bound to the abstract address `name` (no leading NUL: it is
/// added). Abstract addresses belong to the network namespace and vanish when the socket is
/// closed, so binding the same name twice tells whether two calls ran in the same namespace.
pub fn bind_abstract_unix(name: &[u8]) -> Result<OwnedFd, Errno> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if name.len() + 1 > addr.sun_path.len() {
        return Err(Errno::EINVAL);
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: integer arguments; the result is a new descriptor.
    let fd = ret_int(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: the kernel returned a new descriptor, owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
    ret_int(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    Ok(fd)
}

/// `fstat(fd)`: (st_dev, st_ino).
pub fn fstat_dev_ino(fd: RawFd) -> Result<(u64, u64), Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st points to writable memory of the right size.
    ret_int(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled st.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// `memfd_create("uf", 0)`: a new file with its own inode (the caller owns the fd).
pub fn memfd() -> Result<RawFd, Errno> {
    // SAFETY: the name is NUL-terminated; flags 0.
    ret(unsafe { libc::syscall(libc::SYS_memfd_create, c"uf".as_ptr(), 0) }).map(|v| v as RawFd)
}

/// `pipe2(0)` returning raw fds (read, write) that the caller owns; used after fork.
pub fn pipe_raw() -> Result<(RawFd, RawFd), Errno> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    ret_int(unsafe { libc::pipe2(fds.as_mut_ptr(), 0) })?;
    Ok((fds[0], fds[1]))
}

/// `setns(fd, nstype)`.
pub fn setns(fd: RawFd, nstype: libc::c_int) -> Result<(), Errno> {
    // SAFETY: integer arguments.
    ret_int(unsafe { libc::setns(fd, nstype) }).map(|_| ())
}

/// A SysV semaphore set of one, mode 0666, private key.
pub fn sem_create() -> Result<i32, Errno> {
    // SAFETY: integer arguments.
    ret_int(unsafe { libc::semget(libc::IPC_PRIVATE, 1, 0o666 | libc::IPC_CREAT) })
}

/// `semop` adding `delta` to semaphore 0 with SEM_UNDO.
pub fn sem_add_undo(id: i32, delta: i16) -> Result<(), Errno> {
    let mut op = libc::sembuf { sem_num: 0, sem_op: delta, sem_flg: libc::SEM_UNDO as libc::c_short };
    // SAFETY: op is one valid sembuf.
    ret_int(unsafe { libc::semop(id, &mut op, 1) }).map(|_| ())
}

/// `semctl(id, 0, GETVAL)`.
pub fn sem_value(id: i32) -> Result<i32, Errno> {
    // SAFETY: GETVAL takes no fourth argument.
    ret_int(unsafe { libc::semctl(id, 0, libc::GETVAL) })
}

/// `semctl(id, 0, IPC_RMID)`.
pub fn sem_remove(id: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no fourth argument.
    ret_int(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(|_| ())
}

/// A private anonymous mapping of `len` bytes for a clone stack; returns its top
/// (the mapping is made by [`clone3::map_stack`], which returns its bottom).
pub fn stack(len: usize) -> Result<*mut libc::c_void, Errno> {
    let bottom = clone3::map_stack(len)?;
    Ok((bottom + len as u64) as *mut libc::c_void)
}

/// `clone(entry, stack_top, flags | SIGCHLD, arg)` through glibc's wrapper.
///
/// # Safety
/// `entry` runs in the new process on `stack_top`, with `arg`. With CLONE_VM it shares this
/// address space: it must not allocate, unwind or touch state this process is using, and must
/// end with `_exit`. `arg` must stay valid as long as the child uses it.
pub unsafe fn clone(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    stack_top: *mut libc::c_void,
    flags: u64,
    arg: *mut libc::c_void,
) -> Result<libc::pid_t, Errno> {
    // SAFETY: the caller upholds the contract above; flags fit in an int (clone's legacy ABI).
    ret_int(unsafe { libc::clone(entry, stack_top, (flags as libc::c_int) | libc::SIGCHLD, arg) })
}

/// Restores the default SIGPIPE action, so that `unshare-fuzz run | head` ends quietly
/// instead of panicking on a closed stdout (Rust ignores SIGPIPE by default).
pub fn default_sigpipe() {
    // SAFETY: installing SIG_DFL for SIGPIPE has no memory-safety requirements.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Ignores SIGPIPE for the whole process, as a Rust `main` does at startup (a
/// fuzz binary's `main` is libFuzzer's, which does not): writing to a pipe whose
/// reader died then fails with EPIPE instead of killing the process.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The first stop signal (SIGINT, SIGTERM, SIGHUP) caught since [`catch_stop_signals`], or 0.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The stop signals' handler: one lock-free atomic store, which is async-signal-safe.
extern "C" fn on_stop_signal(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    let _ = STOP_SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP with a handler that only records the signal
/// ([`stop_signal`]); the harness checks it between cases and ends the run with the
/// report of the cases done. `SA_RESETHAND`: a second such signal gets the default
/// action, so a second Ctrl-C still ends the process at once. A signal that was ignored
/// when the process started (`nohup`, a background job's SIGINT) stays ignored.
///
/// # Errors
/// The errno of `sigaction`.
pub fn catch_stop_signals() -> Result<(), Errno> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction is a plain C struct; all-zero is a valid value (SIG_DFL, no flags).
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`, a valid sigaction.
        ret_int(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
        if old.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        // SAFETY: as above, all-zero is a valid sigaction.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        // SAFETY: sa_mask is a valid sigset_t inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: the handler only does an atomic compare-exchange on a static (async-signal-safe),
        // and `action` is fully initialised.
        ret_int(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// The stop signal caught since [`catch_stop_signals`], if any.
pub fn stop_signal() -> Option<i32> {
    match STOP_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The name of a stop signal (`SIGTERM`); `"a signal"` for any other number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// `readlinkat(dirfd, name)` into `buf`; returns the length.
pub fn readlinkat(dirfd: RawFd, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: name is NUL-terminated and buf is a writable buffer of buf.len() bytes.
    let rc = unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    ret(rc as libc::c_long).map(|n| n as usize)
}

/// Entries of a directory other than `.` and `..` (one getdents64 pass, no allocation).
pub fn count_dir_entries(path: &CStr) -> Result<u32, Errno> {
    let fd = open_raw(path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)?;
    // Small: the case child calls this, and every stack page it touches is a fault.
    let mut buf = [0u8; 512];
    let mut count = 0u32;
    let result = loop {
        // SAFETY: buf is a writable buffer of buf.len() bytes; fd is an open directory.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        match ret(n) {
            Err(e) => break Err(e),
            Ok(0) => break Ok(count),
            Ok(n) => {
                let mut off = 0usize;
                while off + 19 < n as usize {
                    // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name[].
                    let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                    let name = &buf[off + 19..];
                    let dot = name.first() == Some(&b'.')
                        && (name.get(1) == Some(&0) || (name.get(1) == Some(&b'.') && name.get(2) == Some(&0)));
                    if !dot {
                        count += 1;
                    }
                    if reclen == 0 {
                        break;
                    }
                    off += reclen;
                }
            }
        }
    };
    let _ = close_raw(fd);
    result
}

/// A fixed-capacity byte buffer in a mapping of its own that no fork copies
/// (`MADV_DONTFORK`): the executor's request and report buffers. A child has no such
/// mapping, so writing to the buffer after a fork costs the parent no copy-on-write fault,
/// and a child that touched it would die at once instead of corrupting anything.
pub struct ParentOnlyBuf {
    ptr: *mut u8,
    cap: usize,
    len: usize,
}

impl ParentOnlyBuf {
    /// Maps `cap` bytes (rounded up to whole pages; untouched pages cost nothing).
    ///
    /// # Errors
    /// The errno of mmap or madvise.
    pub fn new(cap: usize) -> Result<ParentOnlyBuf, Errno> {
        let cap = cap.max(1).next_multiple_of(4096);
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_errno());
        }
        // SAFETY: ptr..ptr+cap is the mapping just made and owned here.
        if unsafe { libc::madvise(ptr, cap, libc::MADV_DONTFORK) } != 0 {
            let e = last_errno();
            // SAFETY: as above; the mapping is not used after this.
            unsafe { libc::munmap(ptr, cap) };
            return Err(e);
        }
        Ok(ParentOnlyBuf { ptr: ptr.cast(), cap, len: 0 })
    }

    /// Bytes it can hold.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the content.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends as much of `bytes` as fits; false if some did not.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        let n = bytes.len().min(self.cap - self.len);
        self.spare()[..n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n == bytes.len()
    }

    /// The content.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first len bytes of the mapping are initialized (written through
        // extend_from_slice or spare/commit; a fresh mapping is zero-filled anyway).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The content, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in as_slice; &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The room after the content, to read into (then [`ParentOnlyBuf::commit`]).
    pub fn spare(&mut self) -> &mut [u8] {
        // SAFETY: len <= cap; the mapping is zero-filled memory owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(self.len), self.cap - self.len) }
    }

    /// Counts `n` more bytes of the spare room as content.
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.cap);
    }

    /// Drops the first `n` bytes, moving the rest to the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.as_mut_slice().copy_within(n.., 0);
        self.len -= n;
    }
}

impl Drop for ParentOnlyBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in new() and nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.cap) };
    }
}

/// The CPUs the calling thread may run on (`sched_getaffinity`), in ascending order.
pub fn allowed_cpus() -> Result<Vec<usize>, Errno> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a writable cpu_set_t of the size passed.
    ret_int(unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) })?;
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads the set within its bounds (cpu < max).
    Ok((0..max).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// Restricts the calling thread (and every process it forks later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<(), Errno> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu is below the set's capacity (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size passed.
    ret_int(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }).map(|_| ())
}

/// Opens (creating it if needed, mode 0644) a lock file and takes an exclusive `flock` on it
/// without waiting. `Ok(None)` when another process holds it.
pub fn try_lock_file(path: &CStr) -> Result<Option<OwnedFd>, Errno> {
    // Open an existing file without O_CREAT first: with fs.protected_regular, O_CREAT on a
    // file another user made in a sticky directory such as /tmp fails even when it exists.
    // SAFETY: path is NUL-terminated.
    let fd = match ret_int(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }) {
        Err(Errno(libc::ENOENT)) => {
            // SAFETY: path is NUL-terminated; the mode is passed as the variadic third argument.
            ret_int(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CREAT | libc::O_CLOEXEC, 0o644) })?
        }
        other => other?,
    };
    // SAFETY: the kernel returned a new descriptor, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: integer arguments on a descriptor we own.
    match ret_int(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(Some(fd)),
        Err(Errno(libc::EWOULDBLOCK)) => Ok(None),
        Err(e) => Err(e),
    }
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

/// `getrlimit(resource)`: (soft, hard), `None` for RLIM_INFINITY.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> Result<(Option<u64>, Option<u64>), Errno> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: r is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(resource, &mut r) };
    ret(rc.into())?;
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((finite(r.rlim_cur), finite(r.rlim_max)))
}

/// The mount id, device and inode of `path` (`statx` with `STATX_MNT_ID`): two paths name the
/// same place exactly when all three agree (a bind mount of a directory keeps its device and
/// inode but is another mount).
pub fn mount_dev_ino(path: &CStr) -> Result<(u64, u64, u64), Errno> {
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated and st is a writable statx.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, libc::STATX_INO | libc::STATX_MNT_ID, &mut st) };
    ret(rc.into())?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno(libc::ENOSYS));
    }
    let dev = (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor);
    Ok((st.stx_mnt_id, dev, st.stx_ino))
}

/// Sleeps until a signal ends the process (`pause` in a loop). For throwaway children.
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

/// Closes every descriptor from 3 up except `keep` (`close_range(2)` around it). A case child
/// calls it first, so it keeps nothing of the executor's but its report pipe and 0..2.
pub fn close_inherited_except(keep: RawFd) {
    let close_range = |first: u32, last: u32| {
        if first <= last {
            // SAFETY: integer arguments; closing descriptors this process owns.
            let _ = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        }
    };
    let keep = keep.max(0) as u32;
    if keep < 3 {
        close_range(3, u32::MAX);
    } else {
        close_range(3, keep - 1);
        close_range(keep + 1, u32::MAX);
    }
}
