//! Descriptors as channels: read, write, pipes, poll, non-blocking mode, an abstract unix
//! socket, closing what a child inherited, and [`ParentOnlyBuf`] (the executor's buffers,
//! in a mapping no fork copies).
//!
//! Every call passes memory it owns or plain integers; nothing here allocates (a
//! `ParentOnlyBuf` is an `mmap`, not a heap allocation).

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::abi::errno::Errno;

use super::{last_errno, ret, ret_int};

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

/// `poll` over `fds` with a timeout in milliseconds; returns the count of ready fds.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: fds is a valid array of fds.len() pollfd structures.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    ret_int(rc).map(|n| n as usize)
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

/// `pipe2(0)` returning raw fds (read, write) that the caller owns; used after fork.
pub fn pipe_raw() -> Result<(RawFd, RawFd), Errno> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    ret_int(unsafe { libc::pipe2(fds.as_mut_ptr(), 0) })?;
    Ok((fds[0], fds[1]))
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
