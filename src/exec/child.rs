//! Code that runs in the forked case child, and nothing else: build the
//! setup (`child/setup.rs`), run the steps, snapshot the state around each
//! one, probe the siblings at the end, write one fixed-size message per event
//! to the pipe, `_exit`.
//!
//! Rules (checked by `tests/style.rs`): no allocation, no formatting, no
//! printing, no panics; every failure is reported as a message and every
//! process ends with `_exit`. The child may share its address space with a
//! CLONE_VM sibling, so allocating could corrupt the allocator.
//!
//! # Safety
//! The `unsafe` here calls `sys::unshare`, `sys::setns`, `sys::fork` and `sys::clone`. This
//! code runs only in a child forked from the single-threaded executor; extra
//! threads and siblings exist only when the setup made them, and they never
//! allocate or touch the caller's data.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, RawFd};

use crate::abi::errno::Errno;
use crate::abi::flags::{RawFlags, bits};
use crate::abi::ns::{NsLink, NsObserver};
use crate::case::{Case, Step};
use crate::sys;

pub mod caps;
pub mod clone3;
pub mod guest;
pub mod idmap;
pub mod inside;
pub mod inside_witness;
pub mod limits_child;
pub mod markers;
pub mod ops;
pub mod plan;
pub mod record;
pub mod setns;
pub mod setup;
pub mod sibling;

use self::plan::Plan;
use self::record::{FDS, Msg, MsgKind, NONE, RawSnapshot, SIBS, SetupOp, THREADS_ERR, clock, marker_probe};
use self::sibling::Sib;

pub use self::ops::{CHROOT_DIR, CHROOT_LEVELS, Ctx, do_chroot, drop_sys_admin, fail, send, wait_and_exit};

fn neg(e: Errno) -> i32 {
    -e.0
}

/// Thread count (entries of /proc/self/task) and umask (read by setting it and back), both
/// far cheaper than formatting /proc/self/status.
fn status_fields(snap: &mut RawSnapshot) {
    // A failed read (EMFILE under a descriptor limit) is reported as such, never as 0 threads.
    snap.threads = sys::count_dir_entries(c"/proc/self/task")
        .or_else(|e| threads_from_status().ok_or(e))
        .unwrap_or_else(|e| THREADS_ERR | e.0 as u32);
    let old = sys::umask(0);
    sys::umask(old);
    snap.umask = old;
}

/// The inode number in a namespace link's target, `type:[4026531840]`.
fn link_inode(text: &[u8]) -> Option<u64> {
    let start = text.iter().position(|b| *b == b'[')? + 1;
    let mut v: u64 = 0;
    for b in &text[start..] {
        match b {
            b'0'..=b'9' => v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?,
            b']' => return Some(v),
            _ => return None,
        }
    }
    None
}

/// `Threads:` of /proc/self/status, where /proc/self/task cannot be listed (gVisor 2022 gives
/// ENOENT there). Allocates nothing.
fn threads_from_status() -> Option<u32> {
    let mut buf = [0u8; 2048];
    let n = sys::read_file_into(c"/proc/self/status", &mut buf).ok()?;
    sys::proc::field_u64(&buf[..n], b"Threads:").and_then(|v| u32::try_from(v).ok())
}

/// The namespace ids through pidfd ioctls on a pidfd of this process (see
/// [`NsObserver::PidfdIoctl`]).
fn namespaces_by_pidfd(snap: &mut RawSnapshot) {
    let pidfd = sys::pidfd_open(sys::getpid());
    for link in NsLink::ALL {
        let i = link.index();
        let r = match &pidfd {
            Ok(fd) => sys::pidfd_namespace_inode(fd.as_raw_fd(), link.pidfd_ioctl_nr()),
            Err(e) => Err(*e),
        };
        match r {
            Ok(ino) => (snap.ns_ino[i], snap.ns_err[i]) = (ino, 0),
            Err(e) => (snap.ns_ino[i], snap.ns_err[i]) = (0, e.0),
        }
    }
}

/// Fills `snap` with the calling process's state.
pub fn snapshot(ctx: &Ctx, snap: &mut RawSnapshot) {
    if ctx.plan.ns_observer == NsObserver::PidfdIoctl {
        namespaces_by_pidfd(snap);
    } else {
        namespaces_by_proc_links(snap);
    }
    snapshot_rest(ctx, snap);
}

/// The namespace ids from the `/proc/self/ns` links.
fn namespaces_by_proc_links(snap: &mut RawSnapshot) {
    // One lookup of /proc/self/ns, then one readlinkat per link: reading the link names
    // the namespace without instantiating an nsfs inode, as stat would.
    let dir = sys::open_raw(c"/proc/self/ns", libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
    for link in NsLink::ALL {
        let i = link.index();
        let r = match dir {
            Ok(fd) => {
                let mut buf = [0u8; 64];
                sys::readlinkat(fd, link.c_name(), &mut buf).and_then(|n| link_inode(&buf[..n]).ok_or(Errno(libc::EIO)))
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(ino) => (snap.ns_ino[i], snap.ns_err[i]) = (ino, 0),
            Err(e) => (snap.ns_ino[i], snap.ns_err[i]) = (0, e.0),
        }
    }
    if let Ok(fd) = dir {
        let _ = sys::close_raw(fd);
    }
}

/// Everything but the namespaces.
fn snapshot_rest(ctx: &Ctx, snap: &mut RawSnapshot) {
    snap.pid = sys::getpid();
    let (uid, gid, euid, egid) = sys::ids();
    snap.ids = [uid, gid, euid, egid];
    snap.cap_eff = sys::capget().map_or(0, |c| c.effective);
    status_fields(snap);
    snap.cwd = sys::stat_dev_ino(c".").map_or([0, 0], |(d, i)| [d, i]);
    snap.semval = if ctx.sem_id >= 0 { sys::sem_value(ctx.sem_id).unwrap_or_else(neg) } else { NONE };
    for k in 0..ctx.nsibs {
        let sib = ctx.sibs[k].pid;
        for (t, (_, kind)) in crate::model::expect::KCMP_TYPES.iter().enumerate() {
            snap.kcmp[k][t] = sys::kcmp(snap.pid, sib, *kind, 0, 0).unwrap_or_else(neg);
        }
        for f in 0..ctx.nfds {
            let fd = ctx.fds[f] as u64;
            snap.kcmp_file[k][f] =
                sys::kcmp(snap.pid, sib, crate::model::expect::KCMP_FILE, fd, fd).unwrap_or_else(neg);
        }
    }
    for f in 0..ctx.nfds {
        snap.fd_flags[f] = sys::fd_flags(ctx.fds[f]).unwrap_or_else(neg);
    }
}

fn write_maps(ctx: &Ctx) -> Result<(), Errno> {
    sys::proc::write_id_maps(0, ctx.outer_ids.0, ctx.outer_ids.1).map_err(|(_, e)| e)
}

/// An unshare step through `call`; after a NEWUSER in the word the kernel receives (the low
/// 32 bits through int $0x80), WriteMaps maps the ids from before it.
fn unshare_step(ctx: &mut Ctx, flags: RawFlags, call: impl FnOnce(RawFlags) -> Result<(), Errno>) -> Result<(), Errno> {
    let (_, _, euid, egid) = sys::ids();
    let r = call(flags);
    if r.is_ok() && (flags.0 as u32 as u64) & bits::NEWUSER != 0 {
        ctx.outer_ids = (euid, egid);
    }
    r
}

fn run_step(ctx: &mut Ctx, step: &Step) -> Result<(), Errno> {
    match step {
        // SAFETY: see the module's Safety section.
        Step::Unshare(flags) => unshare_step(ctx, *flags, |f| unsafe { sys::unshare(f) }),
        // SAFETY: as above; the model skips int 0x80 steps unless the executor's probe showed
        // the i386 entry works here. The whole word is in rbx; the kernel must read ebx.
        Step::UnshareInt80(flags) => unshare_step(ctx, *flags, |f| unsafe { sys::unshare_int80(f.0) }),
        Step::Fork => {
            // SAFETY: the parent only waits and exits; the child continues as the caller.
            let pid = unsafe { sys::fork() }?;
            if pid != 0 {
                sys::kcov::step_off();
                wait_and_exit(pid);
            }
            sys::kcov::forked();
            Ok(())
        }
        Step::ForkExit => {
            // SAFETY: the child exits at once.
            let pid = unsafe { sys::fork() }?;
            if pid == 0 {
                sys::exit_now(0);
            }
            match sys::waitpid(pid, 0) {
                // Reaped by the kernel because SIGCHLD is ignored (see wait_and_exit): gone all the same.
                Ok(_) | Err(Errno(libc::ECHILD)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Step::WriteMaps => write_maps(ctx),
        Step::DropSysAdmin => drop_sys_admin(),
        Step::Chroot(kind) => do_chroot(*kind),
        Step::SpawnThread => sys::spawn_parked_thread(),
        Step::Clone3(flags) => self::clone3::run(ctx.out, *flags, None),
        Step::Clone3SetTid(st) => self::clone3::run(ctx.out, st.flags, Some(st)),
        Step::Caps(op) => self::caps::run(*op),
        Step::ThreadCall(flags) => self::caps::thread_call(ctx.out, *flags),
        Step::Idmap(op) => self::idmap::run(*op, ctx.outer_ids),
        Step::WitnessIdmap(op) => self::inside_witness::idmap(&ctx.inside_witness, *op),
        Step::Setns(st) => {
            let (fd, close) = self::setns::fd_for(&ctx.setns_fds, st.target)?;
            // SAFETY: see the module's Safety section. setns takes an int: the kernel sees the
            // low 32 bits of the word (model::setns reads the same bits).
            let r = unsafe { sys::setns(fd, st.nstype.0 as u32 as i32) };
            if close {
                let _ = sys::close_raw(fd);
            }
            r
        }
    }
}

fn probe(ctx: &Ctx) -> Msg {
    let mut m = Msg::new(MsgKind::Probe);
    let sibs = &ctx.sibs[..ctx.nsibs];
    let case = ctx.case;
    let find = |kind| case.setup.siblings.iter().position(|s| *s == kind).map(|i| &sibs[i]);
    let flag = |r: Result<bool, Errno>| r.map_or_else(neg, i32::from);
    if let Some(sib) = find(crate::case::Sibling::Files) {
        m.probe[0] = match sibling::open_memfd(sib) {
            Ok((fd, ino)) if fd >= 0 => i32::from(sys::fstat_dev_ino(fd as RawFd).is_ok_and(|(_, i)| i as i64 == ino)),
            Ok((fd, _)) => fd as i32,
            Err(e) => neg(e),
        };
        m.probe[1] = match sys::memfd() {
            Ok(fd) => {
                let ino = sys::fstat_dev_ino(fd).map_or(0, |(_, i)| i as i64);
                flag(sibling::has_fd(sib, i64::from(fd), ino))
            }
            Err(e) => neg(e),
        };
        if ctx.nfds > 0 {
            let fd0 = ctx.fds[0];
            let ino = sys::fstat_dev_ino(fd0).map_or(0, |(_, i)| i as i64);
            m.probe[2] = match sys::close_raw(fd0) {
                Ok(()) => flag(sibling::has_fd(sib, i64::from(fd0), ino)),
                Err(e) => neg(e),
            };
        }
    }
    if let Some(sib) = find(crate::case::Sibling::Fs) {
        let cwd = sys::stat_dev_ino(c".");
        let at_root = cwd.is_ok() && cwd == sys::stat_dev_ino(c"/");
        let mut before = RawSnapshot::default();
        status_fields(&mut before);
        let new_umask = before.umask ^ 0o022;
        match sibling::chdir_umask(sib, at_root, new_umask) {
            Ok(_) => {
                let mut after = RawSnapshot::default();
                status_fields(&mut after);
                m.probe[3] = i32::from(sys::stat_dev_ino(c".") != cwd);
                m.probe[4] = i32::from(after.umask != before.umask);
            }
            Err(e) => (m.probe[3], m.probe[4]) = (neg(e), neg(e)),
        }
    }
    if ctx.sem_id >= 0 && ctx.nsibs > 0 {
        m.probe[5] = sibling::semval(&sibs[0], ctx.sem_id).map_or_else(neg, |v| v as i32);
    }
    let now = self::markers::observe(&ctx.plan.markers);
    m.probe[marker_probe::NET_BEFORE] = ctx.marks.net;
    m.probe[marker_probe::NET_AFTER] = now.net;
    m.probe[marker_probe::IPC_BEFORE] = ctx.marks.ipc;
    m.probe[marker_probe::IPC_AFTER] = now.ipc;
    m.probe[marker_probe::MNT_KEPT] = ctx.marks.mnt_kept(&now);
    m.probe[marker_probe::UTS_WRITTEN] = self::markers::write_uts(&ctx.plan.markers);
    m
}

/// Runs the steps as the caller, reports, and ends the process.
pub fn run_steps(ctx: &mut Ctx) -> ! {
    self::setns::open_at_start(ctx.case, &mut ctx.setns_fds);
    let proc_dir = ctx.case.steps.iter().any(|s| matches!(s, Step::WitnessIdmap(_)));
    ctx.inside_witness = self::inside_witness::start(ctx.case.setup.inside_witness, proc_dir);
    ctx.marks = self::markers::observe(&ctx.plan.markers);
    ctx.inside = self::inside::before(&ctx.plan.inside, self::inside::Reads::of(ctx.case));
    let mut msg = Msg::new(MsgKind::Before);
    msg.op = if ctx.sem_id >= 0 { ctx.sem_id as u32 } else { u32::MAX };
    snapshot(ctx, &mut msg.snap);
    send(ctx.out, &msg);
    ctx.clock[clock::BEFORE] = sys::monotonic_ns();
    let case = ctx.case;
    for (index, step) in case.steps.iter().enumerate() {
        let mut m = Msg::new(MsgKind::Step);
        m.op = index as u32;
        sys::kcov::step_on();
        // Guest-only fail-nth (case::guest): armed last, so that only the step itself counts.
        let armed = self::guest::arm(ctx, index);
        let r = run_step(ctx, step);
        self::guest::disarm(armed);
        sys::kcov::step_off();
        match r {
            Ok(()) => m.rc = 0,
            Err(e) => (m.rc, m.errno) = (-1, e.0),
        }
        snapshot(ctx, &mut m.snap);
        send(ctx.out, &m);
    }
    if ctx.case.setup.inside_witness {
        // Before the probes: the UTS marker they write must stay the caller's last hostname.
        send(ctx.out, &self::inside_witness::seen(&ctx.inside_witness));
        send(ctx.out, &self::inside_witness::time(&ctx.inside_witness));
        if ctx.case.setup.shared_mount {
            send(ctx.out, &self::inside_witness::shared(&ctx.inside_witness));
        }
    }
    let p = probe(ctx);
    send(ctx.out, &p);
    let inside = self::inside::fill(&ctx.plan.inside, self::inside::Reads::of(ctx.case), &ctx.inside);
    let mut done = Msg::new(MsgKind::Done);
    ctx.clock[clock::END] = sys::monotonic_ns();
    done.clock = ctx.clock;
    // Nothing runs between the two but the clock read: one write for both.
    self::ops::send_two(ctx.out, &inside, &done);
    sys::exit_now(0)
}

extern "C" fn vfork_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the Ctx of run_case, whose frame stays alive while the parent is
    // blocked in clone(CLONE_VFORK) until this child exits.
    let ctx = unsafe { &mut *arg.cast::<Ctx>() };
    run_steps(ctx)
}

/// Runs `case` in this freshly forked child and reports on `out`. Never returns.
pub fn run_case(case: &Case, plan: Plan, out: RawFd) -> ! {
    let start = sys::monotonic_ns();
    // Nothing of the executor's (its request and report pipes, the CPU lease, the namespaces it
    // holds) is the case's: under RLIMIT_NOFILE every descriptor kept here is one the case
    // cannot open (`exec::executor::limits`, `model::resources`).
    // (In the coverage mode, the KCOV descriptors stay too: `sys::kcov`.)
    sys::kcov::close_inherited_except(out);
    let mut ctx = Ctx {
        out,
        case,
        plan,
        sibs: [Sib::default(); SIBS],
        nsibs: 0,
        fds: [-1; FDS],
        nfds: 0,
        sem_id: -1,
        outer_ids: (0, 0),
        clock: [start, 0, 0, 0],
        marks: self::markers::Reading::default(),
        inside: self::inside::Before::default(),
        setns_fds: self::setns::NONE,
        inside_witness: self::inside_witness::Witness::default(),
    };
    setup::build(&mut ctx);
    ctx.clock[clock::SETUP] = sys::monotonic_ns();
    if case.setup.vfork {
        let stack = match sys::stack(1024 * 1024) {
            Ok(s) => s,
            Err(e) => fail(out, SetupOp::Vfork, e),
        };
        let arg = (&mut ctx as *mut Ctx).cast();
        // SAFETY: CLONE_VFORK blocks this process until the child exits, so ctx is not used
        // concurrently; the child ends with _exit.
        match unsafe { sys::clone(vfork_entry, stack, bits::VM | 0x4000, arg) } {
            Ok(pid) => wait_and_exit(pid),
            Err(e) => fail(out, SetupOp::Vfork, e),
        }
    }
    run_steps(&mut ctx)
}
