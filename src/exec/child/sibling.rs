//! Siblings (post-fork code): processes created with raw `clone` that share
//! part of the caller and answer probe commands over a pipe pair until the
//! case ends. The sibling side never allocates: with CLONE_VM it runs in the
//! caller's address space.
//!
//! # Safety
//! `start` hands `clone` a fresh mmap'ed stack and a pointer to a `SibArgs`
//! that lives in the caller's frame for the whole case (`run_case` never
//! returns); the sibling only reads it.

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::sys;

/// Command codes.
const OPEN_MEMFD: i64 = 1;
const HAS_FD: i64 = 2;
const CHDIR_UMASK: i64 = 3;
const SEMVAL: i64 = 4;

/// What a sibling needs: its command and reply pipes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SibArgs {
    /// Read end of the command pipe.
    pub cmd_rd: RawFd,
    /// Write end of the reply pipe.
    pub reply_wr: RawFd,
}

/// The caller's handle on a sibling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sib {
    /// pid as seen by the caller that created it.
    pub pid: libc::pid_t,
    /// Write end of the command pipe.
    pub cmd_wr: RawFd,
    /// Read end of the reply pipe.
    pub reply_rd: RawFd,
    /// The sibling's side.
    pub args: SibArgs,
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match sys::read(fd, &mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

fn encode(words: [i64; 3]) -> [u8; 24] {
    let mut out = [0u8; 24];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn decode(buf: &[u8; 24]) -> [i64; 3] {
    let mut w = [0i64; 3];
    for (i, v) in w.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[i * 8..i * 8 + 8]);
        *v = i64::from_le_bytes(b);
    }
    w
}

fn err(e: Errno) -> i64 {
    -i64::from(e.0)
}

fn serve(cmd: [i64; 3]) -> [i64; 3] {
    match cmd[0] {
        OPEN_MEMFD => match sys::memfd() {
            Ok(fd) => [i64::from(fd), sys::fstat_dev_ino(fd).map_or(0, |(_, ino)| ino as i64), 0],
            Err(e) => [err(e), 0, 0],
        },
        HAS_FD => {
            let fd = cmd[1] as RawFd;
            let visible = match sys::fstat_dev_ino(fd) {
                Ok((_, ino)) => cmd[2] == 0 || ino as i64 == cmd[2],
                Err(_) => false,
            };
            [i64::from(visible), 0, 0]
        }
        CHDIR_UMASK => {
            let target = if cmd[1] == 0 { c"/" } else { c"/proc" };
            sys::umask(cmd[2] as u32);
            [sys::chdir(target).map_or_else(err, |()| 0), 0, 0]
        }
        SEMVAL => [sys::sem_value(cmd[1] as i32).map_or_else(err, i64::from), 0, 0],
        _ => [err(Errno::EINVAL), 0, 0],
    }
}

extern "C" fn sibling_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg points to the SibArgs in the caller's frame (see the module's Safety).
    let args = unsafe { *arg.cast::<SibArgs>() };
    let mut buf = [0u8; 24];
    while read_exact(args.cmd_rd, &mut buf) {
        let reply = encode(serve(decode(&buf)));
        if sys::write(args.reply_wr, &reply).is_err() {
            break;
        }
    }
    sys::exit_now(0)
}

/// Creates a sibling with `flags` (CLONE_* sharing bits).
pub fn start(flags: u64, sib: &mut Sib) -> Result<(), Errno> {
    let (cmd_rd, cmd_wr) = sys::pipe_raw()?;
    let (reply_rd, reply_wr) = sys::pipe_raw()?;
    sib.cmd_wr = cmd_wr;
    sib.reply_rd = reply_rd;
    sib.args = SibArgs { cmd_rd, reply_wr };
    let stack = sys::stack(256 * 1024)?;
    let arg = (&mut sib.args as *mut SibArgs).cast();
    // SAFETY: sibling_main only reads its SibArgs, uses no allocation, and ends with _exit;
    // the stack is fresh and never unmapped.
    sib.pid = unsafe { sys::clone(sibling_main, stack, flags, arg) }?;
    Ok(())
}

/// How long the caller waits for a sibling's answer (a dead sibling never answers: the caller
/// holds the reply pipe's write end too, so no end-of-file would come).
const REPLY_TIMEOUT_MS: i32 = 1000;

/// Sends one command and waits for the answer (ETIMEDOUT if the sibling does not answer).
pub fn ask(sib: &Sib, cmd: i64, a: i64, b: i64) -> Result<[i64; 3], Errno> {
    sys::write(sib.cmd_wr, &encode([cmd, a, b]))?;
    let mut fds = [libc::pollfd { fd: sib.reply_rd, events: libc::POLLIN, revents: 0 }];
    if sys::poll(&mut fds, REPLY_TIMEOUT_MS)? == 0 {
        return Err(Errno(libc::ETIMEDOUT));
    }
    let mut buf = [0u8; 24];
    if read_exact(sib.reply_rd, &mut buf) { Ok(decode(&buf)) } else { Err(Errno(libc::EPIPE)) }
}

/// Asks the sibling to open a new file: (fd, inode).
pub fn open_memfd(sib: &Sib) -> Result<(i64, i64), Errno> {
    ask(sib, OPEN_MEMFD, 0, 0).map(|r| (r[0], r[1]))
}

/// Asks whether the sibling has `fd` open (on inode `ino`, unless 0).
pub fn has_fd(sib: &Sib, fd: i64, ino: i64) -> Result<bool, Errno> {
    ask(sib, HAS_FD, fd, ino).map(|r| r[0] == 1)
}

/// Asks the sibling to `chdir` to `/` (0) or `/proc` (1) and set `umask`.
pub fn chdir_umask(sib: &Sib, to_proc: bool, umask: u32) -> Result<i64, Errno> {
    ask(sib, CHDIR_UMASK, i64::from(to_proc), i64::from(umask)).map(|r| r[0])
}

/// Asks the sibling for GETVAL of semaphore `id`.
pub fn semval(sib: &Sib, id: i32) -> Result<i64, Errno> {
    ask(sib, SEMVAL, i64::from(id), 0).map(|r| r[0])
}
