//! Where the executor stands, measured by asking the kernel: how many more
//! namespaces it lets this executor create. Read once, inside the sandbox,
//! before the first case.
//!
//! A level read from `/proc` (`NSpid:`, the uid map) counts only from the
//! namespace of that `/proc` mount or that map, so behind a container's
//! private `/proc` or inside user namespaces with partial maps it is wrong.
//! What the cases need is the room left, and that can be measured anywhere:
//!
//! * **nested pid namespaces**: `unshare(NEWPID)` + fork, continuing in the
//!   child, until the kernel refuses (ENOSPC past level 32);
//! * **user namespaces**: chains of `unshare(NEWUSER)` + id maps until the
//!   kernel refuses (ENOSPC past depth 33, or when the count of user
//!   namespaces, the caller's and every ancestor's limit, is exhausted). A
//!   second chain tells the two apart: if it also reaches the first chain's
//!   length, depth was the limit; if it stops short, a count limit was;
//! * **other types** (mnt, uts, ipc, net, cgroup, time): one process creates
//!   namespaces of one type while holding each open, up to [`FLAT_CAP`].
//!
//! The kernel frees namespaces asynchronously, so a count limit within reach
//! can not be predicted case by case; the model then skips the cases whose
//! result depends on it (`model::limits`).
//!
//! # Safety
//! Every probe runs in forked children of the single-threaded executor: each
//! child only calls unshare, fork, writes its id maps, opens namespace files,
//! writes its fixed-size result to a pipe and exits with `_exit`. Nothing here
//! allocates after a fork.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::case::NsType;
use crate::env::{Headroom, Room};
use crate::sys;

/// More rounds than any kernel allows (pid level 32, user depth 33), so a
/// probe always ends in a refusal or another error.
const NESTED_MAX: u32 = 40;
/// Namespaces of one non-user type the flat probe holds at most.
pub const FLAT_CAP: u32 = 16;
/// Extra user namespaces one case may create beside its nesting (steps, clone3 children, the
/// privilege and foreign-pid-namespace setups).
pub const USER_EXTRA_PER_CASE: u32 = 8;
/// How long a probe may take before it is abandoned (killed; the fact stays unknown).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `made` and `errno` (0: stopped at the cap) as 8 bytes.
fn report(fd: RawFd, made: u32, errno: i32) {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&made.to_le_bytes());
    b[4..].copy_from_slice(&errno.to_le_bytes());
    let _ = sys::write(fd, &b);
}

fn unshare(flags: u64) -> Result<(), Errno> {
    // SAFETY: called only in a disposable, single-threaded probe child.
    unsafe { sys::unshare(RawFlags(flags)) }
}

/// Nests pid namespaces until refused; the chain of parents waits, so every
/// namespace stays alive until the deepest child has reported.
fn pid_chain(wr: RawFd) -> ! {
    let mut made = 0;
    let mut err = 0;
    while made < NESTED_MAX {
        if let Err(e) = unshare(bits::NEWPID) {
            err = e.0;
            break;
        }
        made += 1;
        // SAFETY: single-threaded; the parent only waits and exits.
        match unsafe { sys::fork() } {
            Ok(0) => {}
            Ok(pid) => {
                let _ = sys::waitpid(pid, 0);
                sys::exit_now(0);
            }
            Err(e) => {
                err = e.0;
                break;
            }
        }
    }
    report(wr, made, err);
    sys::exit_now(0)
}

/// Moves this (disposable) probe process's root to the real root of its mount namespace, so
/// that a chrooted executor can still measure its user-namespace depth (NEWUSER gives EPERM
/// while chrooted, after the depth check): a chroot into a subdirectory without chdir leaves
/// the working directory outside the root, where `..` is no longer stopped. Without
/// CAP_SYS_CHROOT, or when not chrooted, it changes nothing that matters.
fn escape_chroot() {
    if sys::chdir(c"/").is_err() {
        return;
    }
    // SAFETY: this runs in the headroom probe's throwaway child only.
    if unsafe { sys::chroot(c"/tmp") }.is_err() {
        return;
    }
    for _ in 0..4096 {
        if sys::stat_dev_ino(c".") == sys::stat_dev_ino(c"..") {
            break;
        }
        if sys::chdir(c"..").is_err() {
            break;
        }
    }
    // SAFETY: the same throwaway child.
    let _ = unsafe { sys::chroot(c".") };
}

/// Nests up to `limit` user namespaces (each mapped, so the next may nest), reports, then
/// holds them until `hold` reaches end of file.
fn user_chain(limit: u32, wr: RawFd, hold: RawFd) -> ! {
    let (_, _, mut euid, mut egid) = sys::ids();
    let mut made = 0;
    let mut err = 0;
    while made < limit {
        let mut r = unshare(bits::NEWUSER);
        // EPERM at the first level may be a chroot: escape it and try once more. Only then:
        // on gVisor the escape itself leaves a root its NEWUSER check takes for a chroot.
        if made == 0 && r == Err(Errno(libc::EPERM)) {
            escape_chroot();
            r = unshare(bits::NEWUSER);
        }
        if let Err(e) = r {
            err = e.0;
            break;
        }
        made += 1;
        if let Err((_, e)) = sys::proc::write_id_maps(0, euid, egid) {
            err = e.0;
            break;
        }
        (euid, egid) = (0, 0);
    }
    report(wr, made, err);
    let mut b = [0u8; 1];
    let _ = sys::read(hold, &mut b);
    sys::exit_now(0)
}

/// Creates namespaces of one type, holding each through an open fd of `link`.
fn flat(flag: u64, link: &std::ffi::CStr, wr: RawFd) -> ! {
    let mut made = 0;
    let mut err = 0;
    while made < FLAT_CAP {
        if let Err(e) = unshare(flag) {
            err = e.0;
            break;
        }
        made += 1;
        if let Err(e) = sys::open_raw(link, libc::O_RDONLY | libc::O_CLOEXEC) {
            err = e.0;
            break;
        }
    }
    report(wr, made, err);
    sys::exit_now(0)
}

/// A probe child: its pid and the read end of its result pipe.
struct Probe {
    pid: libc::pid_t,
    rd: RawFd,
}

/// Forks `body` (which should end the child itself) with a fresh result pipe.
fn spawn(body: impl FnOnce(RawFd)) -> Result<Probe, Errno> {
    let (rd, wr) = sys::pipe_raw()?;
    // SAFETY: the executor is single-threaded while it probes; the child runs `body`, which
    // ends with _exit.
    match unsafe { sys::fork() } {
        Ok(0) => {
            let _ = sys::close_raw(rd);
            body(wr);
            sys::exit_now(0)
        }
        Ok(pid) => {
            let _ = sys::close_raw(wr);
            Ok(Probe { pid, rd })
        }
        Err(e) => {
            let _ = (sys::close_raw(rd), sys::close_raw(wr));
            Err(e)
        }
    }
}

/// Reads a probe's 8-byte result, waiting at most until `deadline`.
fn result(p: &Probe, deadline: Instant) -> Option<Room> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut pfd = [libc::pollfd { fd: p.rd, events: libc::POLLIN, revents: 0 }];
    if sys::poll(&mut pfd, i32::try_from(left.as_millis()).unwrap_or(i32::MAX)).ok()? == 0 {
        return None;
    }
    let mut b = [0u8; 8];
    if sys::read(p.rd, &mut b).ok()? != 8 {
        return None;
    }
    let made = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let errno = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    Some(Room { made, stopped_by: (errno != 0).then_some(errno) })
}

/// Reaps a probe, killing it first when `kill` (a user chain that holds its namespaces, or a
/// probe that did not answer in time). A pid chain is not killed: its parents exit in turn once
/// the deepest child has reported, and a killed parent would orphan the rest of the chain.
fn finish(p: Probe, kill: bool) {
    if kill {
        let _ = sys::kill(p.pid, libc::SIGKILL);
    }
    let _ = sys::waitpid(p.pid, 0);
    let _ = sys::close_raw(p.rd);
}

fn run_one(body: impl FnOnce(RawFd)) -> Option<Room> {
    let p = spawn(body).ok()?;
    let room = result(&p, Instant::now() + PROBE_TIMEOUT);
    finish(p, room.is_none());
    room
}

/// Room for nested user namespaces, then for user namespaces in all (several chains held at
/// once), up to what two executors' cases could need at the same time.
fn user_rooms() -> (Option<Room>, Option<Room>) {
    let Ok((hold_rd, hold_wr)) = sys::pipe_raw() else { return (None, None) };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut chains = Vec::new();
    let mut start = |limit: u32| -> Option<Room> {
        let p = spawn(|wr| {
            let _ = sys::close_raw(hold_wr);
            user_chain(limit, wr, hold_rd)
        })
        .ok()?;
        let room = result(&p, deadline);
        chains.push(p);
        room
    };
    let nested = start(NESTED_MAX);
    let count = nested.and_then(|first| {
        if !first.limit_reached() || first.made == 0 {
            return Some(first);
        }
        let cap = 2 * (first.made + USER_EXTRA_PER_CASE);
        let mut total = first.made;
        loop {
            if total >= cap {
                return Some(Room { made: total, stopped_by: None });
            }
            let want = first.made.min(cap - total);
            let next = start(want)?;
            total += next.made;
            if next.made < want {
                return Some(Room { made: total, stopped_by: next.stopped_by });
            }
        }
    });
    let _ = (sys::close_raw(hold_wr), sys::close_raw(hold_rd));
    for p in chains {
        finish(p, true);
    }
    (nested, count)
}

/// Every headroom probe; facts that could not be measured stay `None`.
pub fn measure() -> Headroom {
    let pid_nested = run_one(|wr| pid_chain(wr));
    let (user_nested, user_count) = user_rooms();
    let mut flat_rooms = BTreeMap::new();
    for t in [NsType::Mnt, NsType::Uts, NsType::Ipc, NsType::Net, NsType::Cgroup, NsType::Time] {
        let link = match t {
            NsType::Mnt => c"/proc/self/ns/mnt",
            NsType::Uts => c"/proc/self/ns/uts",
            NsType::Ipc => c"/proc/self/ns/ipc",
            NsType::Net => c"/proc/self/ns/net",
            NsType::Cgroup => c"/proc/self/ns/cgroup",
            _ => c"/proc/self/ns/time_for_children",
        };
        if let Some(room) = run_one(|wr| flat(t.flag(), link, wr)) {
            flat_rooms.insert(t.name().to_string(), room);
        }
    }
    // The chains' parents exit as their children do, so nothing is left but zombies already
    // reaped by `finish`; any grandchild orphaned to us (we are pid 1) is reaped here.
    while let Ok(Some(_)) = sys::waitpid(-1, libc::WNOHANG) {}
    Headroom { pid_nested, user_nested, user_count, flat: flat_rooms, flat_cap: FLAT_CAP }
}
