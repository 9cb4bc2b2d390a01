//! The guest-only parts of the case child (`case::guest`, docs/guest-only.md):
//! the high fd, the lowered `fs.nr_open`, and fail-nth armed around the last
//! step. They run only when the executor found a throwaway qemu guest: the
//! model skips such cases everywhere else, and the executor refuses them
//! (`exec::executor::server`), so nothing here can reach a host.

use crate::abi::errno::Errno;
use crate::sys;

use super::ops::{Ctx, fail};
use super::record::SetupOp;

/// Writes `n` in decimal into `buf`; returns the digits.
fn decimal(n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Opens the high fd, then lowers `fs.nr_open` (in this order: the table must already be
/// larger than the new limit). Called while the caller is still privileged.
pub fn setup(ctx: &Ctx) {
    let s = &ctx.case.setup;
    if let Some(high) = s.fd_at {
        let r = sys::open_raw(c"/", libc::O_RDONLY | libc::O_DIRECTORY).and_then(|fd| {
            let moved = sys::dup_at_least(fd, high as i32);
            let _ = sys::close_raw(fd);
            match moved {
                Ok(got) if got == high as i32 => Ok(()),
                // F_DUPFD gives the lowest free number >= high: another one means it was taken.
                Ok(_) => Err(Errno(libc::EBUSY)),
                Err(e) => Err(e),
            }
        });
        if let Err(e) = r {
            fail(ctx.out, SetupOp::FdAt, e);
        }
    }
    if let Some(nr) = s.nr_open {
        let mut buf = [0u8; 10];
        if let Err(e) = sys::write_file(c"/proc/sys/fs/nr_open", decimal(nr, &mut buf)) {
            fail(ctx.out, SetupOp::NrOpen, e);
        }
    }
}

/// Right before step `index`: when it is the last and the setup asks for fail-nth, opens this
/// thread's `fail-nth` and writes N to it; returns the descriptor to [`disarm`] with.
pub fn arm(ctx: &Ctx, index: usize) -> Option<i32> {
    let n = ctx.case.setup.fail_nth?;
    if index + 1 != ctx.case.steps.len() {
        return None;
    }
    let fd = match sys::open_raw(c"/proc/thread-self/fail-nth", libc::O_WRONLY | libc::O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => fail(ctx.out, SetupOp::FailNth, e),
    };
    let mut buf = [0u8; 10];
    if let Err(e) = sys::write(fd, decimal(n, &mut buf)) {
        fail(ctx.out, SetupOp::FailNth, e);
    }
    Some(fd)
}

/// Right after the step: fail-nth back to 0 (an N the call did not reach must not fail the
/// child's own reporting), and the descriptor closed.
pub fn disarm(fd: Option<i32>) {
    if let Some(fd) = fd {
        let _ = sys::write(fd, b"0");
        let _ = sys::close_raw(fd);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 10];
        assert_eq!(super::decimal(0, &mut b), b"0");
        assert_eq!(super::decimal(64, &mut b), b"64");
        assert_eq!(super::decimal(u32::MAX, &mut b), b"4294967295");
    }
}
