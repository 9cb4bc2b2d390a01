//! The setup half of the case child (post-fork code, same rules as
//! `child.rs`): pid-ns nesting, user-ns nesting, the zero limit, the foreign
//! pid namespace, chroot, resources, privilege, siblings, threads — in the
//! order the model assumes (`model::state::CallerState::after_setup`).
//!
//! # Safety
//! Calls `sys::unshare` and `sys::fork` in the single-threaded case child,
//! before any thread or sibling exists; every forked parent only waits and
//! exits.

#![allow(unsafe_code)]

use crate::abi::flags::{RawFlags, bits};
use crate::case::{NsType, Privilege};
use crate::sys;

use super::ops::{Ctx, do_chroot, drop_sys_admin, fail, wait_and_exit};
use super::record::{SIBS, SetupOp};
use super::sibling;

const NOBODY: u32 = 65534;

fn check(ctx: &Ctx, op: SetupOp, r: Result<(), crate::abi::errno::Errno>) {
    if let Err(e) = r {
        fail(ctx.out, op, e);
    }
}

fn unshare(flags: u64) -> Result<(), crate::abi::errno::Errno> {
    // SAFETY: single-threaded case child, no siblings yet.
    unsafe { sys::unshare(RawFlags(flags)) }
}

/// fork; the parent waits and exits, the child returns.
fn fork_continue(ctx: &Ctx, op: SetupOp) {
    // SAFETY: single-threaded; the parent only waits and exits.
    match unsafe { sys::fork() } {
        Ok(0) => {}
        Ok(pid) => wait_and_exit(pid),
        Err(e) => fail(ctx.out, op, e),
    }
}

fn enter_mapped_userns(ctx: &Ctx, op: SetupOp) {
    let (_, _, euid, egid) = sys::ids();
    check(ctx, op, unshare(bits::NEWUSER));
    check(ctx, op, sys::proc::write_id_maps(0, euid, egid).map_err(|(_, e)| e));
}

fn limit_path(t: NsType) -> &'static std::ffi::CStr {
    match t {
        NsType::User => c"/proc/sys/user/max_user_namespaces",
        NsType::Mnt => c"/proc/sys/user/max_mnt_namespaces",
        NsType::Uts => c"/proc/sys/user/max_uts_namespaces",
        NsType::Ipc => c"/proc/sys/user/max_ipc_namespaces",
        NsType::Pid => c"/proc/sys/user/max_pid_namespaces",
        NsType::Cgroup => c"/proc/sys/user/max_cgroup_namespaces",
        NsType::Net => c"/proc/sys/user/max_net_namespaces",
        NsType::Time => c"/proc/sys/user/max_time_namespaces",
    }
}

/// Enters a pid namespace owned by a child user namespace (spec §3 EINVAL (f)):
/// a helper makes user+pid namespaces and forks their init; we setns to it and fork.
fn foreign_pidns(ctx: &Ctx) {
    let op = SetupOp::ForeignPidns;
    let (rd, wr) = match sys::pipe_raw() {
        Ok(p) => p,
        Err(e) => fail(ctx.out, op, e),
    };
    // SAFETY: single-threaded; the helper only makes namespaces, forks and sleeps.
    let helper = match unsafe { sys::fork() } {
        Ok(p) => p,
        Err(e) => fail(ctx.out, op, e),
    };
    if helper == 0 {
        let (_, _, euid, egid) = sys::ids();
        let mut pid: i32 = -1;
        if unshare(bits::NEWUSER | bits::NEWPID).is_ok() && sys::proc::write_id_maps(0, euid, egid).is_ok() {
            // SAFETY: the helper is single-threaded; its child only sleeps.
            match unsafe { sys::fork() } {
                Ok(0) => loop {
                    // SAFETY: pause has no arguments.
                    unsafe { libc::pause() };
                },
                Ok(p) => pid = p,
                Err(e) => pid = -e.0,
            }
        }
        let _ = sys::write(wr, &pid.to_le_bytes());
        loop {
            // SAFETY: pause has no arguments.
            unsafe { libc::pause() };
        }
    }
    let mut buf = [0u8; 4];
    let got = sys::read(rd, &mut buf);
    let pid = i32::from_le_bytes(buf);
    let _ = (sys::close_raw(rd), sys::close_raw(wr));
    if got != Ok(4) || pid <= 0 {
        fail(ctx.out, op, crate::abi::errno::Errno(if pid < 0 { -pid } else { libc::EIO }));
    }
    // A pidfd names the helper's child by its pid in our own pid namespace, which /proc/<pid>
    // would not do after pid-ns nesting (the sandbox's /proc shows its own numbers).
    let fd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => fail(ctx.out, op, e),
    };
    // SAFETY: the case child, single-threaded at this point of the setup (threads come later).
    check(ctx, op, unsafe { sys::setns(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::CLONE_NEWPID) });
    drop(fd);
    fork_continue(ctx, op);
}

fn privilege(ctx: &Ctx, p: Privilege) {
    match p {
        Privilege::Root => {}
        Privilege::RootWithoutSysAdmin => check(ctx, SetupOp::CapsetDropSysAdmin, drop_sys_admin()),
        Privilege::Nobody => {
            // The case child drops its own credentials in its setup; it is disposable and
            // single-threaded here (siblings and threads come later).
            // SAFETY: as said above.
            check(ctx, SetupOp::Setgroups, unsafe { sys::clear_groups() });
            // SAFETY: as said above.
            check(ctx, SetupOp::SetgidNobody, unsafe { sys::set_all_gids(NOBODY) });
            // SAFETY: as said above.
            check(ctx, SetupOp::SetuidNobody, unsafe { sys::set_all_uids(NOBODY) });
            // Without this the /proc/self files turn root-owned (spec §5.4 pitfall).
            // SAFETY: as said above; an integer option of the child's own.
            check(ctx, SetupOp::Dumpable, unsafe { sys::prctl(libc::PR_SET_DUMPABLE, 1) });
        }
        Privilege::UserNs => enter_mapped_userns(ctx, SetupOp::UnshareUserNs),
    }
}

/// Builds the whole setup; on failure reports it and exits.
pub fn build(ctx: &mut Ctx) {
    let setup = &ctx.case.setup;
    check(ctx, SetupOp::Setpgid, sys::setpgid(0, 0));
    // SAFETY: the case child, right after fork: a death signal for itself, integer arguments.
    check(ctx, SetupOp::Pdeathsig, unsafe { sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) });
    for _ in 0..ctx.plan.pid_nesting {
        check(ctx, SetupOp::PidNesting, unshare(bits::NEWPID));
        fork_continue(ctx, SetupOp::PidNesting);
    }
    for _ in 0..ctx.plan.user_nesting {
        enter_mapped_userns(ctx, SetupOp::UserNesting);
    }
    if let Some(t) = setup.limit_zero {
        enter_mapped_userns(ctx, SetupOp::WriteLimit);
        check(ctx, SetupOp::WriteLimit, sys::write_file(limit_path(t), b"0"));
    }
    if setup.foreign_pidns {
        foreign_pidns(ctx);
    }
    if let Some(kind) = setup.chroot {
        check(ctx, SetupOp::Chroot, do_chroot(kind));
    }
    super::guest::setup(ctx);
    for i in 0..usize::from(setup.fds).min(ctx.fds.len()) {
        let cloexec = if i % 2 == 1 { libc::O_CLOEXEC } else { 0 };
        match sys::open_raw(c"/", libc::O_RDONLY | libc::O_DIRECTORY | cloexec) {
            Ok(fd) => ctx.fds[i] = fd,
            Err(e) => fail(ctx.out, SetupOp::OpenFds, e),
        }
        ctx.nfds = i + 1;
    }
    if setup.sem_undo {
        match sys::sem_create() {
            Ok(id) => ctx.sem_id = id,
            Err(e) => fail(ctx.out, SetupOp::Semaphore, e),
        }
        check(ctx, SetupOp::Semaphore, sys::sem_add_undo(ctx.sem_id, 1));
    }
    if setup.cwd_umask {
        check(ctx, SetupOp::CwdUmask, sys::chdir(c"/proc"));
        sys::umask(0o077);
    }
    privilege(ctx, setup.privilege);
    let (_, _, euid, egid) = sys::ids();
    ctx.outer_ids = (euid, egid);
    for (k, kind) in setup.siblings.iter().take(SIBS).enumerate() {
        // The sibling reads its pipes from ctx.sibs[k], which lives as long as the case.
        if let Err(e) = sibling::start(kind.clone_flags(), &mut ctx.sibs[k]) {
            fail(ctx.out, SetupOp::Sibling, e);
        }
        ctx.nsibs = k + 1;
    }
    for _ in 0..setup.threads {
        check(ctx, SetupOp::PthreadCreate, sys::spawn_parked_thread());
    }
}
