//! Life inside the new namespaces, seen from outside (issue 16, class 3; the setup field
//! `inside_witness`, names and numbers in `case::inside`). Before the first step the case
//! child forks a witness, which stays in the namespaces the setup left and answers one-byte
//! commands on a pipe. After the last step (before the final probes, so that the UTS marker of
//! `markers` is still written last):
//!
//! * the caller sets its hostname, the witness reads its own; the witness sets another, the
//!   caller reads its own (after NEWUTS neither sees the other's);
//! * the caller mounts a tmpfs on a directory of the sandbox's private /tmp, checks that it
//!   sees it, asks the witness whether it does (after NEWNS it must not: the sandbox's mounts
//!   are private, so nothing propagates either way), and detaches it again;
//! * both read their user namespace's `/proc/self/setgroups` (a user namespace made by
//!   unshare inherits its parent's "deny");
//! * the caller writes monotonic and boottime offsets to `/proc/self/timens_offsets`, compares
//!   its own CLOCK_MONOTONIC with the witness's, and forks a child that reads both clocks
//!   (after NEWTIME the offsets apply to the children, not to the caller; once a process has
//!   entered the namespace, or without NEWTIME, the write fails).
//!
//! * with `shared_mount`, the caller mounts a tmpfs on its directory of the setup's shared
//!   tmpfs and asks the witness whether it sees it, then the witness mounts one on its own
//!   directory and the caller looks for it (a peer copy sees both, a slave copy only the
//!   witness's).
//!
//! The executor's hostname is put back after the case by `markers::Held::read_uts`, which
//! already restores any name it finds. Everything here runs in the case child (or the witness
//! and the clock child it forks) and does not allocate (`tests/style.rs`).
//!
//! # Safety
//! The `unsafe` here forks the witness and the clock child (both only read, write pipes and
//! `_exit`), sets hostnames (the caller, a disposable process; the witness, in the UTS
//! namespace the setup left, which is the executor's sandbox's, checked new before anything was
//! written, as for the UTS marker), and mounts and detaches a tmpfs on a directory of the
//! sandbox's private /tmp (in the sandbox's private mount namespace or a copy of it).

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use crate::abi::errno::Errno;
use crate::case::idmap::IdmapOp;
use crate::case::inside::{
    INSIDE_CALLER_HOSTNAME, INSIDE_MOUNT_DIR, INSIDE_MOUNT_PARENT, INSIDE_TIMENS_OFFSETS, INSIDE_WITNESS_HOSTNAME,
    SHARED_MOUNT_CALLER, SHARED_MOUNT_DIR, SHARED_MOUNT_WITNESS,
};
use crate::sys;

use self::slots as at;
use super::record::{Msg, MsgKind, NONE};

/// Slots of `probe` in the two `MsgKind::Inside` messages of `exec::child::inside_witness`,
/// told apart by `op` ([`slots::OP_SEEN`], [`slots::OP_TIME`];
/// the message of `exec::child::inside` has op 0): each 1 yes, 0 no, a number of seconds,
/// -errno when unread, or [`NONE`] when there was nothing to read.
pub mod slots {
    /// The message with the hostname, mount and setgroups readings.
    pub const OP_SEEN: u32 = 1;
    /// The message with the time namespace readings.
    pub const OP_TIME: u32 = 2;
    /// OP_SEEN: the caller's sethostname (1 set and read back, 0 reported done but the
    /// caller's hostname is not the one set, or -errno).
    pub const UTS_CALLER_SET: usize = 0;
    /// OP_SEEN: the witness then reads the caller's hostname as its own.
    pub const UTS_WITNESS_SEES: usize = 1;
    /// OP_SEEN: the witness's sethostname (as [`UTS_CALLER_SET`], read back by the witness).
    pub const UTS_WITNESS_SET: usize = 2;
    /// OP_SEEN: the caller then reads the witness's hostname as its own.
    pub const UTS_CALLER_SEES: usize = 3;
    /// OP_SEEN: the caller's tmpfs mount: 1 mounted and seen by the caller, 0 reported done
    /// but not there, -errno.
    pub const MNT_CALLER: usize = 4;
    /// OP_SEEN: the witness then sees a mount on the directory (-EBUSY: one was there before).
    pub const MNT_WITNESS_SEES: usize = 5;
    /// OP_SEEN: the witness's user namespace has setgroups "deny" (1) or "allow" (0).
    pub const SETGROUPS_WITNESS: usize = 6;
    /// OP_SEEN: the same for the caller's user namespace.
    pub const SETGROUPS_CALLER: usize = 7;
    /// OP_SEEN: the witness was forked before the first step (1, or -errno).
    pub const FORKED: usize = 8;
    /// The message with the shared tmpfs readings (`shared_mount` setups only).
    pub const OP_SHARED: u32 = 3;
    /// OP_SHARED: the caller's tmpfs on its directory of the shared tmpfs (1 mounted and seen
    /// by the caller, 0 reported done but not there, -errno).
    pub const SHARED_CALLER: usize = 0;
    /// OP_SHARED: the witness then sees a mount on the caller's directory.
    pub const SHARED_WITNESS_SEES: usize = 1;
    /// OP_SHARED: the witness's tmpfs on its own directory (as [`SHARED_CALLER`]).
    pub const SHARED_WITNESS: usize = 2;
    /// OP_SHARED: the caller then sees a mount on the witness's directory.
    pub const SHARED_CALLER_SEES: usize = 3;
    /// OP_TIME: opening `/proc/self/timens_offsets` for writing (1, or -errno).
    pub const TIME_OPEN: usize = 0;
    /// OP_TIME: writing the offsets (1, or -errno).
    pub const TIME_WRITE: usize = 1;
    /// OP_TIME: the witness's CLOCK_MONOTONIC lies between two readings of the caller's.
    pub const TIME_CALLER_SAME: usize = 2;
    /// OP_TIME: a child forked after the write reads CLOCK_MONOTONIC this many whole seconds
    /// ahead of the caller's reading before the fork.
    pub const TIME_CHILD_MONO: usize = 3;
    /// OP_TIME: the same for CLOCK_BOOTTIME.
    pub const TIME_CHILD_BOOT: usize = 4;
}

/// The caller's ends of the witness's pipes, or why there is no witness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    /// Commands to the witness (written by the caller).
    cmd: RawFd,
    /// Answers from the witness (read by the caller).
    answer: RawFd,
    /// 1 when forked, -errno when not, [`NONE`] when the setup asked for none.
    forked: i32,
}

impl Default for Witness {
    fn default() -> Witness {
        Witness { cmd: -1, answer: -1, forked: NONE }
    }
}

/// A `witness_idmap` command: this bit with the operation's index in [`IdmapOp::ALL`].
const WRITE_IDMAP: u8 = 0x80;

const ASK_HOSTNAME: u8 = b'h';
const SET_HOSTNAME: u8 = b'H';
const ASK_MOUNTED: u8 = b'm';
const ASK_SETGROUPS: u8 = b'g';
const ASK_MONOTONIC: u8 = b't';
const ASK_SHARED_CALLER: u8 = b'a';
const MOUNT_SHARED_WITNESS: u8 = b'B';

fn neg(e: Errno) -> i64 {
    -i64::from(e.0)
}

fn hostname_is(name: &[u8]) -> i64 {
    let mut buf = [0u8; 65];
    match sys::marker::hostname(&mut buf) {
        Ok(n) => i64::from(buf[..n] == *name),
        Err(e) => neg(e),
    }
}

fn mounted() -> i64 {
    sys::inside::mounted_on(INSIDE_MOUNT_DIR, INSIDE_MOUNT_PARENT).map_or_else(neg, i64::from)
}

/// A mount on `dir` of the shared tmpfs (`shared_mount`).
fn shared_mounted(dir: &std::ffi::CStr) -> i64 {
    sys::inside::mounted_on(dir, SHARED_MOUNT_DIR).map_or_else(neg, i64::from)
}

/// Mounts a tmpfs on `dir` of the shared tmpfs and looks for it: 1 there, 0 reported done but
/// not there, or -errno.
fn mount_shared(dir: &std::ffi::CStr) -> i64 {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
    // SAFETY: a directory of the setup's shared tmpfs, which lives in the case's own mount
    // namespace (made by the setup, checked new) or a copy of it; both go with the case.
    match unsafe { sys::mount(c"uf-shared-sub", dir, Some(c"tmpfs"), flags) } {
        Ok(()) => shared_mounted(dir),
        Err(e) => neg(e),
    }
}

/// `/proc/self/setgroups` reads "deny" (1) or "allow" (0).
fn setgroups_deny() -> i64 {
    let mut buf = [0u8; 16];
    match sys::read_file_into(c"/proc/self/setgroups", &mut buf) {
        Ok(n) if buf[..n].starts_with(b"deny") => 1,
        Ok(n) if buf[..n].starts_with(b"allow") => 0,
        Ok(_) => neg(Errno(libc::EIO)),
        Err(e) => neg(e),
    }
}

/// The witness's write of one of the caller's id map files, through `proc_dir` (the caller's
/// `/proc/self`, or -errno when it could not be opened): 0 or -errno.
fn write_idmap(proc_dir: RawFd, index: u8) -> i64 {
    let Some(op) = IdmapOp::ALL.get(usize::from(index)) else { return neg(Errno(libc::EINVAL)) };
    if proc_dir < 0 {
        return i64::from(proc_dir);
    }
    let (_, _, euid, egid) = sys::ids();
    super::idmap::run_in(proc_dir, *op, (euid, egid)).map_or_else(neg, |()| 0)
}

/// The witness's loop: one answer (eight bytes) per command byte, until the pipe closes.
fn serve(cmd: RawFd, answer: RawFd, proc_dir: RawFd) -> ! {
    let mut b = [0u8; 1];
    while let Ok(1) = sys::read(cmd, &mut b) {
        let v = match b[0] {
            c if c & WRITE_IDMAP != 0 => write_idmap(proc_dir, c & !WRITE_IDMAP),
            ASK_HOSTNAME => hostname_is(INSIDE_CALLER_HOSTNAME),
            // SAFETY: the witness, in the UTS namespace the setup left: the executor's sandbox's
            // (checked new before anything was written); the executor puts its name back.
            // Read back: a sethostname that reports success and changes nothing reads 0.
            SET_HOSTNAME => unsafe { sys::sethostname(INSIDE_WITNESS_HOSTNAME) }
                .map_or_else(neg, |()| hostname_is(INSIDE_WITNESS_HOSTNAME)),
            ASK_MOUNTED => mounted(),
            ASK_SETGROUPS => setgroups_deny(),
            ASK_MONOTONIC => sys::inside::clock_ns(libc::CLOCK_MONOTONIC).unwrap_or_else(neg),
            ASK_SHARED_CALLER => shared_mounted(SHARED_MOUNT_CALLER),
            MOUNT_SHARED_WITNESS => mount_shared(SHARED_MOUNT_WITNESS),
            _ => neg(Errno(libc::EINVAL)),
        };
        if sys::write(answer, &v.to_ne_bytes()).is_err() {
            break;
        }
    }
    sys::exit_now(0)
}

/// Forks the witness (before the first step). Nothing is forked when `wanted` is false. With
/// `proc_dir` (the case has a `witness_idmap` step) the caller first opens its `/proc/self`
/// directory, which only the witness keeps (the caller's descriptor table ends as it was).
pub fn start(wanted: bool, proc_dir: bool) -> Witness {
    if !wanted {
        return Witness::default();
    }
    let dir = if proc_dir {
        sys::open_raw(c"/proc/self", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC).unwrap_or_else(|e| -e.0)
    } else {
        -libc::EBADF
    };
    let w = fork_witness(dir);
    if dir >= 0 {
        let _ = sys::close_raw(dir);
    }
    w
}

fn fork_witness(proc_dir: RawFd) -> Witness {
    let fail = |e: Errno| Witness { forked: -e.0, ..Witness::default() };
    let (cmd_r, cmd_w) = match sys::pipe_raw() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (ans_r, ans_w) = match sys::pipe_raw() {
        Ok(p) => p,
        Err(e) => {
            let _ = (sys::close_raw(cmd_r), sys::close_raw(cmd_w));
            return fail(e);
        }
    };
    // SAFETY: the witness only reads and writes its pipes, reads files and clocks, sets the
    // hostname, and ends with _exit; it allocates nothing.
    match unsafe { sys::fork() } {
        Ok(0) => {
            let _ = (sys::close_raw(cmd_w), sys::close_raw(ans_r));
            serve(cmd_r, ans_w, proc_dir)
        }
        Ok(_) => {
            let _ = (sys::close_raw(cmd_r), sys::close_raw(ans_w));
            Witness { cmd: cmd_w, answer: ans_r, forked: 1 }
        }
        Err(e) => {
            let _ = (sys::close_raw(cmd_r), sys::close_raw(cmd_w), sys::close_raw(ans_r), sys::close_raw(ans_w));
            fail(e)
        }
    }
}

/// A `witness_idmap` step: the witness writes the caller's map. Without a witness: the errno
/// of its fork (EMFILE above a lowered `fs.nr_open`, EAGAIN under a task limit), or ECHILD
/// when the setup asked for none.
pub fn idmap(w: &Witness, op: IdmapOp) -> Result<(), Errno> {
    if w.forked != 1 {
        return Err(Errno(if w.forked < 0 && w.forked != NONE { -w.forked } else { libc::ECHILD }));
    }
    let index = IdmapOp::ALL.iter().position(|o| *o == op).unwrap_or(0) as u8;
    match ask(w, WRITE_IDMAP | index) {
        0 => Ok(()),
        v => Err(Errno(i32::try_from(-v).unwrap_or(libc::ERANGE))),
    }
}

/// Reads exactly `buf.len()` bytes (a short read is EIO, a closed pipe EPIPE).
fn read_exact(fd: RawFd, buf: &mut [u8]) -> Result<(), Errno> {
    let mut got = 0;
    while got < buf.len() {
        match sys::read(fd, &mut buf[got..])? {
            0 => return Err(Errno(libc::EPIPE)),
            n => got += n,
        }
    }
    Ok(())
}

fn ask(w: &Witness, what: u8) -> i64 {
    if let Err(e) = sys::write(w.cmd, &[what]) {
        return neg(e);
    }
    let mut v = [0u8; 8];
    match read_exact(w.answer, &mut v) {
        Ok(()) => i64::from_ne_bytes(v),
        Err(e) => neg(e),
    }
}

fn slot(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(-libc::ERANGE)
}

/// The hostname, mount and setgroups readings ([`at::OP_SEEN`]), after the last step.
pub fn seen(w: &Witness) -> Msg {
    let mut msg = Msg::new(MsgKind::Inside);
    msg.op = at::OP_SEEN;
    let p = &mut msg.probe;
    p[at::FORKED] = w.forked;
    if w.forked != 1 {
        return msg;
    }
    // SAFETY: the case child, after its last step: a disposable process.
    let set = unsafe { sys::sethostname(INSIDE_CALLER_HOSTNAME) };
    // Read back: a sethostname that reports success and changes nothing reads 0.
    p[at::UTS_CALLER_SET] = set.map_or_else(|e| -e.0, |()| slot(hostname_is(INSIDE_CALLER_HOSTNAME)));
    if p[at::UTS_CALLER_SET] == 1 {
        p[at::UTS_WITNESS_SEES] = slot(ask(w, ASK_HOSTNAME));
    }
    p[at::UTS_WITNESS_SET] = slot(ask(w, SET_HOSTNAME));
    if p[at::UTS_WITNESS_SET] == 1 {
        p[at::UTS_CALLER_SEES] = slot(hostname_is(INSIDE_WITNESS_HOSTNAME));
    }
    let before = ask(w, ASK_MOUNTED);
    if before != 0 {
        // A mount left there by an earlier case, or no directory (a chroot): nothing to tell.
        p[at::MNT_WITNESS_SEES] = if before == 1 { -libc::EBUSY } else { slot(before) };
    } else {
        let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
        // SAFETY: the case child mounts on the sandbox's private /tmp (or a copy of it), and
        // detaches its own mount again below.
        match unsafe { sys::mount(c"uf-inside", INSIDE_MOUNT_DIR, Some(c"tmpfs"), flags) } {
            Ok(()) => {
                p[at::MNT_CALLER] = slot(mounted());
                p[at::MNT_WITNESS_SEES] = slot(ask(w, ASK_MOUNTED));
                // SAFETY: the mount made just above, by this process.
                let _ = unsafe { sys::inside::umount_detach(INSIDE_MOUNT_DIR) };
            }
            Err(e) => p[at::MNT_CALLER] = -e.0,
        }
    }
    p[at::SETGROUPS_WITNESS] = slot(ask(w, ASK_SETGROUPS));
    p[at::SETGROUPS_CALLER] = slot(setgroups_deny());
    msg
}

/// The shared tmpfs readings ([`at::OP_SHARED`], `shared_mount` setups), after [`seen`]: the
/// caller mounts on its directory and asks the witness whether it sees that mount; the witness
/// mounts on its own, and the caller looks for it.
pub fn shared(w: &Witness) -> Msg {
    let mut msg = Msg::new(MsgKind::Inside);
    msg.op = at::OP_SHARED;
    if w.forked != 1 {
        return msg;
    }
    let p = &mut msg.probe;
    p[at::SHARED_CALLER] = slot(mount_shared(SHARED_MOUNT_CALLER));
    if p[at::SHARED_CALLER] == 1 {
        p[at::SHARED_WITNESS_SEES] = slot(ask(w, ASK_SHARED_CALLER));
    }
    p[at::SHARED_WITNESS] = slot(ask(w, MOUNT_SHARED_WITNESS));
    if p[at::SHARED_WITNESS] == 1 {
        p[at::SHARED_CALLER_SEES] = slot(shared_mounted(SHARED_MOUNT_WITNESS));
    }
    msg
}

/// Whole seconds from `from` to `to` (nanoseconds), or the errno of either reading.
fn seconds(from: Result<i64, Errno>, to: Result<i64, Errno>) -> i32 {
    match (from, to) {
        (Ok(a), Ok(b)) => slot((b - a).div_euclid(1_000_000_000)),
        (Err(e), _) | (_, Err(e)) => -e.0,
    }
}

/// Forks a child that reads CLOCK_MONOTONIC and CLOCK_BOOTTIME and sends them; the two
/// readings (or the errno that kept them unread).
fn child_clocks() -> Result<[i64; 2], Errno> {
    let (r, wr) = sys::pipe_raw()?;
    // SAFETY: the child reads two clocks, writes one pipe and ends with _exit.
    let pid = match unsafe { sys::fork() } {
        Ok(p) => p,
        Err(e) => {
            let _ = (sys::close_raw(r), sys::close_raw(wr));
            return Err(e);
        }
    };
    if pid == 0 {
        let mono = sys::inside::clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(i64::MIN);
        let boot = sys::inside::clock_ns(libc::CLOCK_BOOTTIME).unwrap_or(i64::MIN);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&mono.to_ne_bytes());
        out[8..].copy_from_slice(&boot.to_ne_bytes());
        let _ = sys::write(wr, &out);
        sys::exit_now(0);
    }
    let _ = sys::close_raw(wr);
    let mut buf = [0u8; 16];
    let got = read_exact(r, &mut buf);
    let _ = sys::close_raw(r);
    // SIGCHLD ignored (see ops::wait_and_exit): the kernel reaped it.
    let _ = sys::waitpid(pid, 0);
    got?;
    let mut a = [0u8; 8];
    a.copy_from_slice(&buf[..8]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[8..]);
    match [i64::from_ne_bytes(a), i64::from_ne_bytes(b)] {
        [i64::MIN, _] | [_, i64::MIN] => Err(Errno(libc::EINVAL)),
        v => Ok(v),
    }
}

/// The time namespace readings ([`at::OP_TIME`]), after [`seen`].
pub fn time(w: &Witness) -> Msg {
    let mut msg = Msg::new(MsgKind::Inside);
    msg.op = at::OP_TIME;
    if w.forked != 1 {
        return msg;
    }
    let p = &mut msg.probe;
    match sys::open_raw(c"/proc/self/timens_offsets", libc::O_WRONLY | libc::O_CLOEXEC) {
        Ok(fd) => {
            p[at::TIME_OPEN] = 1;
            p[at::TIME_WRITE] = match sys::write(fd, INSIDE_TIMENS_OFFSETS) {
                Ok(n) if n == INSIDE_TIMENS_OFFSETS.len() => 1,
                Ok(_) => -libc::EIO,
                Err(e) => -e.0,
            };
            let _ = sys::close_raw(fd);
        }
        Err(e) => p[at::TIME_OPEN] = -e.0,
    }
    let a = sys::inside::clock_ns(libc::CLOCK_MONOTONIC);
    let theirs = ask(w, ASK_MONOTONIC);
    let b = sys::inside::clock_ns(libc::CLOCK_MONOTONIC);
    p[at::TIME_CALLER_SAME] = match (a, b) {
        _ if theirs < 0 => slot(theirs),
        (Ok(a), Ok(b)) => i32::from(a <= theirs && theirs <= b),
        (Err(e), _) | (_, Err(e)) => -e.0,
    };
    let mono = sys::inside::clock_ns(libc::CLOCK_MONOTONIC);
    let boot = sys::inside::clock_ns(libc::CLOCK_BOOTTIME);
    match child_clocks() {
        Ok([m, bt]) => {
            p[at::TIME_CHILD_MONO] = seconds(mono, Ok(m));
            p[at::TIME_CHILD_BOOT] = seconds(boot, Ok(bt));
        }
        Err(e) => (p[at::TIME_CHILD_MONO], p[at::TIME_CHILD_BOOT]) = (-e.0, -e.0),
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_witness_reads_as_nothing() {
        let w = start(false, true);
        assert_eq!(idmap(&w, IdmapOp::UidOwn), Err(Errno(libc::ECHILD)));
        let m = seen(&w);
        assert_eq!(m.probe[at::FORKED], NONE);
        assert_eq!(m.probe[at::UTS_CALLER_SET], NONE);
        assert_eq!(time(&w).probe[at::TIME_WRITE], NONE);
        assert_eq!(shared(&w).probe[at::SHARED_CALLER], NONE);
    }

    #[test]
    fn whole_seconds_round_down_and_errors_pass_through() {
        assert_eq!(seconds(Ok(0), Ok(1_999_999_999)), 1);
        assert_eq!(seconds(Ok(5), Ok(4)), -1);
        assert_eq!(seconds(Err(Errno(libc::EINVAL)), Ok(0)), -libc::EINVAL);
    }
}
