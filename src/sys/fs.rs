//! Files and the file system: reading and writing whole small files, stat by path and by fd,
//! directories, descriptors opened and closed raw, memfds, readlink, locks, and the calls
//! that change what the process sees of the tree (`mount`, `chroot`, `chdir`, `umask`).
//!
//! # Safety
//! `mount` and `chroot` change the mount namespace or the root of the calling process and are
//! `unsafe fn` (a case child, a probe's child, or the executor building its sandbox);
//! `chdir`, `fchdir` and `umask` change it in ways std also offers as safe functions and are
//! safe here. Nothing here allocates: paths are `&CStr`, buffers are the caller's.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::abi::errno::Errno;

use super::io::{read, write};
use super::{ret, ret_int};

/// Opens `path` for writing (no create), writes `data` in one call and closes it.
pub fn write_file(path: &CStr, data: &[u8]) -> Result<(), Errno> {
    write_file_at(libc::AT_FDCWD, path, data)
}

/// As [`write_file`], with a relative `path` looked up from the directory `dir` (`openat`).
pub fn write_file_at(dir: RawFd, path: &CStr, data: &[u8]) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated; dir is AT_FDCWD or a descriptor the caller holds.
    let fd = ret_int(unsafe { libc::openat(dir, path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
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

/// `mount(source, target, fstype, flags, NULL)`.
///
/// # Safety
/// Changes the mount namespace of the calling process (and, through propagation, possibly
/// others). Call it only in the executor's sandbox after it is verified (its own mount
/// namespace, made private) or in a disposable child inside it.
pub unsafe fn mount(source: &CStr, target: &CStr, fstype: Option<&CStr>, flags: libc::c_ulong) -> Result<(), Errno> {
    let fstype = fstype.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: all strings are NUL-terminated or null where mount allows it; data is null.
    ret_int(unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype, flags, std::ptr::null()) }).map(|_| ())
}

/// `chroot(path)`.
///
/// # Safety
/// Changes the root directory of the whole calling process, under every path any thread
/// resolves later. Call it only in a single-threaded, disposable process (a case child, a
/// probe's child) or in the executor while it builds its sandbox.
pub unsafe fn chroot(path: &CStr) -> Result<(), Errno> {
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

/// `dup3(fd, target, 0)`: `target` now names what `fd` names (a descriptor there is closed
/// first). The caller owns `target`.
pub fn dup_to(fd: RawFd, target: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: integer arguments; the caller owns `target`, which it means to replace.
    ret_int(unsafe { libc::dup3(fd, target, 0) })
}

/// Creates `path` as an empty regular file (mode 0600) if it does not exist.
pub fn touch(path: &CStr) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated; O_CREAT takes the mode argument given.
    let fd = ret_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC, 0o600) })?;
    close_raw(fd)
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

/// `fcntl(fd, F_DUPFD, min)`: a duplicate of `fd` at the lowest free number `>= min`.
pub fn dup_at_least(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: integer arguments only; the new descriptor is owned by the caller.
    ret_int(unsafe { libc::fcntl(fd, libc::F_DUPFD, min) })
}
