//! Wrappers for what a case child reads of life inside its namespaces after its steps
//! (`exec::child::inside`): a POSIX message queue (which lives in one IPC namespace, as SysV
//! objects do), the network devices of the caller's network namespace and their flags, and
//! the caller's own `/proc/thread-self/cgroup`. None of these allocate, so they may be used
//! after `fork`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{read_file_into, ret, ret_int};
use crate::abi::errno::Errno;

/// The longest message queue name used here (without the NUL).
pub const MQ_NAME_MAX: usize = 48;

/// `mq_open(name, flags, 0600, {maxmsg 1, msgsize 1})` through the raw system call, whose
/// name has no leading '/'; the descriptor is closed at once.
fn mq_open_close(name: &[u8], flags: libc::c_int) -> Result<(), Errno> {
    if name.is_empty() || name.len() > MQ_NAME_MAX || name.contains(&0) || name.contains(&b'/') {
        return Err(Errno(libc::EINVAL));
    }
    let mut path = [0u8; MQ_NAME_MAX + 1];
    path[..name.len()].copy_from_slice(name);
    // SAFETY: mq_attr is plain data; all zeros is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 1;
    attr.mq_msgsize = 1;
    let attr_ptr: *const libc::mq_attr = if flags & libc::O_CREAT != 0 { &raw const attr } else { std::ptr::null() };
    // SAFETY: path is NUL-terminated (its last byte is never written); attr is valid or null.
    let fd = ret(unsafe {
        libc::syscall(libc::SYS_mq_open, path.as_ptr(), flags | libc::O_CLOEXEC, 0o600 as libc::c_uint, attr_ptr)
    })?;
    // SAFETY: fd was just returned by mq_open and is owned here.
    drop(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
    Ok(())
}

/// Creates the message queue `name` (exclusively) in the caller's IPC namespace. It stays
/// there until unlinked or until the namespace goes away.
pub fn mq_create(name: &[u8]) -> Result<(), Errno> {
    mq_open_close(name, libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)
}

/// Ok when the message queue `name` exists in the caller's IPC namespace (ENOENT: not here;
/// EACCES: it exists, for credentials that may not open it).
pub fn mq_exists(name: &[u8]) -> Result<(), Errno> {
    mq_open_close(name, libc::O_RDONLY)
}

/// `struct ifreq` as far as SIOCGIFNAME and SIOCGIFFLAGS use it (name, then a union whose
/// first member is the index or the flags), padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

fn if_ioctl(fd: &OwnedFd, request: libc::c_ulong, req: &mut IfReq) -> Result<(), Errno> {
    // SAFETY: req is a valid, writable ifreq-sized buffer for these two requests.
    ret_int(unsafe { libc::ioctl(fd.as_raw_fd(), request, std::ptr::from_mut(req)) }).map(|_| ())
}

/// The highest interface index [`netdevs`] looks at.
pub const MAX_IFINDEX: i32 = 32;

/// The network devices of the caller's network namespace, as far as indexes 1 to
/// [`MAX_IFINDEX`] reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetDevs {
    /// Devices found.
    pub count: u32,
    /// Of those, devices with IFF_UP.
    pub up: u32,
    /// The loopback device (IFF_LOOPBACK) was found and is down.
    pub loopback_down: bool,
    /// The loopback device was found.
    pub loopback: bool,
}

/// Walks interface indexes 1 to [`MAX_IFINDEX`] with SIOCGIFNAME (ENODEV: no such index)
/// and reads each device's flags (SIOCGIFFLAGS), through an AF_UNIX datagram socket, which
/// any network namespace has.
pub fn netdevs() -> Result<NetDevs, Errno> {
    // SAFETY: integer arguments; the new descriptor is owned by the OwnedFd at once.
    let fd = ret_int(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just created and nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut out = NetDevs::default();
    for index in 1..=MAX_IFINDEX {
        let mut req = IfReq { name: [0; 16], data: [0; 24] };
        req.data[..4].copy_from_slice(&index.to_ne_bytes());
        match if_ioctl(&fd, libc::SIOCGIFNAME, &mut req) {
            Ok(()) => {}
            Err(Errno(libc::ENODEV)) => continue,
            Err(e) => return Err(e),
        }
        req.data = [0; 24];
        if_ioctl(&fd, libc::SIOCGIFFLAGS, &mut req)?;
        let flags = i32::from(i16::from_ne_bytes([req.data[0], req.data[1]]));
        out.count += 1;
        let up = flags & libc::IFF_UP != 0;
        out.up += u32::from(up);
        if flags & libc::IFF_LOOPBACK != 0 {
            out.loopback = true;
            out.loopback_down = !up;
        }
    }
    Ok(out)
}

/// Brings the loopback device `lo` of the caller's network namespace up (SIOCSIFFLAGS): the
/// executor does it once in its verified sandbox, so that a case child that keeps that network
/// namespace (one device up) and one in a new namespace (none up) look different.
///
/// # Safety
/// Changes the caller's network namespace: only in the executor's verified sandbox, or in a
/// disposable process.
pub unsafe fn loopback_up() -> Result<(), Errno> {
    // SAFETY: integer arguments; the new descriptor is owned by the OwnedFd at once.
    let fd = ret_int(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just created and nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq { name: [0; 16], data: [0; 24] };
    req.name[..2].copy_from_slice(b"lo");
    if_ioctl(&fd, libc::SIOCGIFFLAGS, &mut req)?;
    let flags = i16::from_ne_bytes([req.data[0], req.data[1]]) | libc::IFF_UP as i16;
    req.data[..2].copy_from_slice(&flags.to_ne_bytes());
    if_ioctl(&fd, libc::SIOCSIFFLAGS, &mut req)
}

/// The caller's cgroup membership as `/proc/thread-self/cgroup` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cgroups {
    /// Every line's path (after the second ':') is exactly "/": the caller sits at the root
    /// of its cgroup namespace.
    pub at_root: bool,
    /// FNV-1a of the whole file, to compare two readings.
    pub hash: u64,
}

/// Reads `path` (a cgroup file) into a fixed buffer; a file that does not fit is ENOBUFS.
pub fn cgroups_at(path: &CStr) -> Result<Cgroups, Errno> {
    let mut buf = [0u8; 2048];
    let n = read_file_into(path, &mut buf)?;
    if n == buf.len() {
        return Err(Errno(libc::ENOBUFS));
    }
    let text = &buf[..n];
    if text.is_empty() {
        return Err(Errno(libc::ENODATA));
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let at_root = text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).all(|line| {
        let mut colons = line.iter().enumerate().filter(|(_, b)| **b == b':').map(|(i, _)| i);
        match (colons.next(), colons.next()) {
            (Some(_), Some(second)) => &line[second + 1..] == b"/",
            _ => false,
        }
    });
    Ok(Cgroups { at_root, hash })
}

/// [`cgroups_at`] of the calling thread.
pub fn own_cgroups() -> Result<Cgroups, Errno> {
    cgroups_at(c"/proc/thread-self/cgroup")
}

/// `umount2(path, MNT_DETACH)`.
///
/// # Safety
/// Detaches a mount from the calling process's mount namespace, which every process in that
/// namespace sees. Call it only on a mount the caller itself made (the case child's tmpfs of
/// `case::inside`, in the sandbox's private /tmp or a namespace of its own).
pub unsafe fn umount_detach(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated; the caller guarantees the mount is its own.
    ret_int(unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) }).map(|_| ())
}

/// `clock_gettime(clock)` in nanoseconds.
pub fn clock_ns(clock: libc::clockid_t) -> Result<i64, Errno> {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: t is a valid out-pointer.
    ret_int(unsafe { libc::clock_gettime(clock, &mut t) })?;
    Ok(t.tv_sec.wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec))
}

/// Whether something is mounted on `dir`: its device differs from its parent's.
pub fn mounted_on(dir: &CStr, parent: &CStr) -> Result<bool, Errno> {
    Ok(super::stat_dev_ino(dir)?.0 != super::stat_dev_ino(parent)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_checked_before_the_call() {
        assert_eq!(mq_exists(b""), Err(Errno(libc::EINVAL)));
        assert_eq!(mq_exists(b"a/b"), Err(Errno(libc::EINVAL)));
        assert_eq!(mq_exists(&[b'q'; MQ_NAME_MAX + 1]), Err(Errno(libc::EINVAL)));
    }

    #[test]
    fn the_own_cgroup_file_reads_and_a_missing_one_says_why() {
        let a = own_cgroups().expect("/proc/thread-self/cgroup is readable in the test process");
        assert_eq!(a, own_cgroups().unwrap());
        assert_eq!(cgroups_at(c"/nonexistent/cgroup"), Err(Errno(libc::ENOENT)));
    }

    #[test]
    fn the_test_process_sees_at_least_a_loopback() {
        let d = netdevs().expect("SIOCGIFNAME works on an AF_UNIX socket");
        assert!(d.loopback && d.count >= 1 && d.up <= d.count, "{d:?}");
    }
}
