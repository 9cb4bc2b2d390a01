//! Wrappers for the namespace markers (`exec::child::markers`): an abstract unix
//! socket, which lives in one network namespace, a SysV shared memory segment,
//! which lives in one IPC namespace, and the mount id of `/`, which is new in a
//! copied mount namespace. None of these allocate, so they may be used after
//! `fork`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{read_file_into, ret_int};
use crate::abi::errno::Errno;

/// The longest abstract socket name used here (the leading NUL not counted).
pub const ABSTRACT_NAME_MAX: usize = 48;

/// A `sockaddr_un` naming the abstract socket `name` (no trailing NUL), and its length.
fn abstract_addr(name: &[u8]) -> Result<(libc::sockaddr_un, libc::socklen_t), Errno> {
    if name.is_empty() || name.len() > ABSTRACT_NAME_MAX {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // sun_path[0] stays 0: the abstract namespace.
    for (dst, src) in addr.sun_path[1..].iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    Ok((addr, len as libc::socklen_t))
}

fn unix_stream_socket(extra: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments; the new descriptor is owned by the OwnedFd at once.
    let fd = ret_int(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | extra, 0) })?;
    // SAFETY: fd was just created and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking listening unix stream socket bound to the abstract name `name`.
pub fn listen_abstract(name: &[u8], backlog: i32) -> Result<OwnedFd, Errno> {
    let (addr, len) = abstract_addr(name)?;
    let fd = unix_stream_socket(libc::SOCK_NONBLOCK)?;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    ret_int(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    // SAFETY: integer arguments.
    ret_int(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(fd)
}

/// Accepts and closes every pending connection of the non-blocking listener `fd`; returns how many.
pub fn drain_connections(fd: &OwnedFd) -> usize {
    let mut n = 0;
    loop {
        // SAFETY: null address and length: the peer's address is not wanted.
        let c =
            unsafe { libc::accept4(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if c < 0 {
            return n;
        }
        // SAFETY: c was just returned by accept4 and is owned here.
        drop(unsafe { OwnedFd::from_raw_fd(c) });
        n += 1;
    }
}

/// A non-blocking `connect` to the abstract socket `name` from a new socket, closed again:
/// Ok when a listener of that name exists in the caller's network namespace (EAGAIN, a full
/// backlog, also says it exists), else the errno (ECONNREFUSED: no such name here).
pub fn connect_abstract(name: &[u8]) -> Result<(), Errno> {
    let (addr, len) = abstract_addr(name)?;
    let fd = unix_stream_socket(libc::SOCK_NONBLOCK)?;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    match ret_int(unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) }) {
        Ok(_) | Err(Errno(libc::EAGAIN)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A private SysV shared memory segment of one page, attached here and already marked for
/// removal: it lives exactly as long as some process (this one, or a forked child) keeps it
/// attached, and its id names it in this IPC namespace only. Returns the id.
pub fn shm_marker() -> Result<i32, Errno> {
    // SAFETY: integer arguments.
    let id = ret_int(unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) })?;
    // SAFETY: a new mapping at an address the kernel picks; nothing of ours is replaced.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY) };
    let attached = addr as isize != -1;
    let err = super::last_errno();
    // SAFETY: IPC_RMID takes no buffer. With the segment attached it stays until detached.
    let removed = ret_int(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) });
    if !attached {
        return Err(err);
    }
    removed.map(|_| id)
}

/// `shmctl(id, IPC_STAT)`: Ok when segment `id` exists in the caller's IPC namespace.
pub fn shm_exists(id: i32) -> Result<(), Errno> {
    // SAFETY: shmid_ds is plain data; all zeros is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: ds is a valid shmid_ds for IPC_STAT to fill.
    ret_int(unsafe { libc::shmctl(id, libc::IPC_STAT, &raw mut ds) }).map(|_| ())
}

/// `gethostname` into `buf`; returns the name's length (without the NUL).
pub fn hostname(buf: &mut [u8; 65]) -> Result<usize, Errno> {
    // SAFETY: buf is writable for its whole length; the last byte stays for the NUL.
    ret_int(unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) })?;
    Ok(buf.iter().position(|b| *b == 0).unwrap_or(buf.len() - 1))
}

/// The mount id of the mount `/` is on: statx's `stx_mnt_id` (Linux 5.8), or where statx does
/// not report it (older kernels, gVisor) the first field of `/proc/self/mountinfo`'s first line,
/// which is the root mount of the caller's view.
pub fn root_mount_id() -> Result<u64, Errno> {
    // SAFETY: statx is plain data; all zeros is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated; stx is a valid statx buffer.
    let r = ret_int(unsafe { libc::statx(libc::AT_FDCWD, c"/".as_ptr(), 0, libc::STATX_MNT_ID, &raw mut stx) });
    if r.is_ok() && stx.stx_mask & libc::STATX_MNT_ID != 0 {
        return Ok(stx.stx_mnt_id);
    }
    let mut buf = [0u8; 32];
    let n = read_file_into(c"/proc/self/mountinfo", &mut buf)?;
    let mut id: u64 = 0;
    let mut digits = 0;
    for b in &buf[..n] {
        if !b.is_ascii_digit() {
            break;
        }
        id = id * 10 + u64::from(b - b'0');
        digits += 1;
    }
    if digits == 0 { Err(Errno(libc::ENODATA)) } else { Ok(id) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_are_bounded() {
        assert_eq!(abstract_addr(b"").unwrap_err(), Errno(libc::EINVAL));
        assert_eq!(abstract_addr(&[b'x'; ABSTRACT_NAME_MAX + 1]).unwrap_err(), Errno(libc::EINVAL));
        let (addr, len) = abstract_addr(b"abc").unwrap();
        assert_eq!(addr.sun_path[0], 0);
        assert_eq!(addr.sun_path[1] as u8, b'a');
        assert_eq!(len as usize, std::mem::size_of::<libc::sa_family_t>() + 4);
    }

    #[test]
    fn a_listener_is_reachable_by_name_until_closed() {
        let name = format!("unshare-fuzz-test-{}", std::process::id());
        let l = listen_abstract(name.as_bytes(), 4).unwrap();
        assert_eq!(connect_abstract(name.as_bytes()), Ok(()));
        assert_eq!(drain_connections(&l), 1);
        drop(l);
        assert_eq!(connect_abstract(name.as_bytes()), Err(Errno(libc::ECONNREFUSED)));
    }

    #[test]
    fn the_hostname_is_read_whole() {
        let mut buf = [0u8; 65];
        let n = hostname(&mut buf).unwrap();
        assert!(n > 0 && n < 65);
        assert!(buf[..n].iter().all(|b| *b != 0));
    }

    #[test]
    fn the_root_mount_id_is_stable() {
        assert_eq!(root_mount_id(), root_mount_id());
    }
}
