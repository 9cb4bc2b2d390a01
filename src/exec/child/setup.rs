//! The setup half of the case child (post-fork code, same rules as
//! `child.rs`): the nsfs bind mount, pid-ns nesting, user-ns nesting, the zero limit, the foreign
//! pid namespace, chroot, resources, privilege, siblings, threads — in the
//! order the model assumes (`model::state::CallerState::after_setup`).
//!
//! # Safety
//! Calls `sys::unshare` and `sys::fork` in the single-threaded case child,
//! before any thread or sibling exists; every forked parent only waits and
//! exits.

#![allow(unsafe_code)]

use crate::abi::flags::{RawFlags, bits};
use crate::case::{HIGH_FD, NsType, Privilege, Shm};
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

/// The file of the sandbox's /tmp (a private tmpfs) the nsfs file is bound on.
pub const NSFS_TARGET: &std::ffi::CStr = c"/tmp/uf-nsfs";
/// A file of the sandbox's /tmp bound on itself after the nsfs bind mount.
pub const NSFS_AFTER: &std::ffi::CStr = c"/tmp/uf-nsfs-after";

/// `/proc/self/fd/<fd>` into `buf`, without allocating.
fn fd_path(fd: i32, buf: &mut [u8; 32]) -> &std::ffi::CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let k = sys::proc::put_u32(&mut buf[PREFIX.len()..], fd.unsigned_abs());
    buf[PREFIX.len() + k] = 0;
    std::ffi::CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/")
}

/// A private mount namespace (a copy of the sandbox's, made before any other setup, in the
/// executor's user namespace) with the nsfs file of a newer mount namespace bound on
/// [`NSFS_TARGET`]: a newer one, since binding a namespace's own or an older one's file is
/// refused (mnt_ns_loop). The newer namespace is made by a second unshare(NEWNS); setns goes
/// back to the first; the bind mount keeps the newer one alive.
fn nsfs_bind(ctx: &Ctx) {
    let op = SetupOp::NsfsBind;
    check(ctx, op, sys::touch(NSFS_TARGET));
    // One CPU for both namespaces: the bind below needs the second to carry the larger id, and
    // 6.18's ids may come from per-CPU batches (docs/kernel-vs-spec.md item 25). The case child
    // is disposable and usually pinned already (beside its executor).
    let _ = sys::pin_to_current_cpu();
    check(ctx, op, unshare(bits::NEWNS));
    let own = match sys::open_raw(c"/proc/self/ns/mnt", libc::O_RDONLY | libc::O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => fail(ctx.out, op, e),
    };
    check(ctx, op, unshare(bits::NEWNS));
    let newer = match sys::open_raw(c"/proc/self/ns/mnt", libc::O_RDONLY | libc::O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => fail(ctx.out, op, e),
    };
    // SAFETY: the case child, single-threaded and alone with its fs_struct (the first setup op).
    check(ctx, op, unsafe { sys::setns(own, libc::CLONE_NEWNS) });
    let mut buf = [0u8; 32];
    let source = fd_path(newer, &mut buf);
    // SAFETY: the case's own private mount namespace, a copy of the verified (private) sandbox's.
    check(ctx, op, unsafe { sys::mount(source, NSFS_TARGET, None, libc::MS_BIND) });
    // One mount after it: copy_mnt_ns stops at the last mount it copied, so a skipped mount
    // at the very end of the tree would never be stepped over (fs/namespace.c:4109).
    check(ctx, op, sys::touch(NSFS_AFTER));
    // SAFETY: as above; a file bound on itself.
    check(ctx, op, unsafe { sys::mount(NSFS_AFTER, NSFS_AFTER, None, libc::MS_BIND) });
    // `own` stays open for the case: a namespace only the caller holds would be freed by a
    // NEWNS step, and a later step's new namespace could get its inode number again, which
    // the checker would take for a namespace alive before (the executor's own never go).
    let _ = sys::close_raw(newer);
}

/// A private mount namespace (a copy of the sandbox's, made first of all, in the executor's
/// user namespace) with a shared tmpfs on [`SHARED_MOUNT_DIR`] holding the caller's and the
/// witness's directories (`Setup::shared_mount`). The case's processes keep it alive; it
/// goes with them.
fn shared_mount(ctx: &Ctx) {
    use crate::case::inside::{SHARED_MOUNT_CALLER, SHARED_MOUNT_DIR, SHARED_MOUNT_WITNESS};
    let op = SetupOp::SharedMount;
    // In the sandbox's private /tmp: a directory, not a mount, so nothing leaves the sandbox.
    match sys::mkdir(SHARED_MOUNT_DIR, 0o755) {
        Ok(()) | Err(crate::abi::errno::Errno(libc::EEXIST)) => {}
        Err(e) => fail(ctx.out, op, e),
    }
    let before = sys::marker::root_mount_id();
    check(ctx, op, unshare(bits::NEWNS));
    // Never trust the kernel under test: a copy has a new root mount. Without one the mounts
    // below would land in the sandbox's namespace (EPROTO: success reported, nothing made).
    if before.is_err() || sys::marker::root_mount_id() == before {
        fail(ctx.out, op, crate::abi::errno::Errno(libc::EPROTO));
    }
    let flags = (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong;
    // SAFETY: the case's own private mount namespace, a copy of the verified (private) sandbox's.
    check(ctx, op, unsafe { sys::mount(c"uf-shared", SHARED_MOUNT_DIR, Some(c"tmpfs"), flags) });
    check(ctx, op, sys::mkdir(SHARED_MOUNT_CALLER, 0o755));
    check(ctx, op, sys::mkdir(SHARED_MOUNT_WITNESS, 0o755));
    // SAFETY: as above; the tmpfs just mounted becomes shared (its own peer group).
    check(ctx, op, unsafe { sys::mount(c"none", SHARED_MOUNT_DIR, None, libc::MS_SHARED) });
}

/// The setup's semaphore with a pending SEM_UNDO +1 (and, with `sem_clamp`, a -1 without).
fn semaphore(ctx: &mut Ctx) {
    match sys::sem_create() {
        Ok(id) => ctx.sem_id = id,
        Err(e) => fail(ctx.out, SetupOp::Semaphore, e),
    }
    check(ctx, SetupOp::Semaphore, sys::sem_add_undo(ctx.sem_id, 1));
    if ctx.case.setup.sem_clamp {
        check(ctx, SetupOp::Semaphore, sys::sem_add(ctx.sem_id, -1));
    }
}

/// One more descriptor on `/` at [`HIGH_FD`]: the fd table grows past its 64 embedded slots.
fn high_fd(ctx: &Ctx) {
    match sys::open_raw(c"/", libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(fd) => {
            check(ctx, SetupOp::HighFd, sys::dup_to(fd, HIGH_FD).map(|_| ()));
            let _ = sys::close_raw(fd);
        }
        Err(e) => fail(ctx.out, SetupOp::HighFd, e),
    }
}

/// The SysV shared memory segments of [`Shm`].
fn shm(ctx: &Ctx, kind: Shm) {
    let op = SetupOp::Shm;
    if kind == Shm::RmidForced {
        check(ctx, op, unshare(bits::NEWIPC));
        // Held open for the case, as nsfs_bind's mount namespace is (its inode number must not
        // come back as a later step's new namespace).
        if let Err(e) = sys::open_raw(c"/proc/self/ns/ipc", libc::O_RDONLY | libc::O_CLOEXEC) {
            fail(ctx.out, op, e);
        }
        check(ctx, op, sys::write_file(c"/proc/sys/kernel/shm_rmid_forced", b"1"));
        check(ctx, op, sys::shm_create(false).map(|_| ()));
    }
    check(ctx, op, sys::shm_create(true).map(|_| ()));
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
    if setup.shared_mount {
        shared_mount(ctx);
    }
    if setup.nsfs_bind {
        nsfs_bind(ctx);
    }
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
    if setup.high_fd {
        high_fd(ctx);
    }
    if let Some(kind) = setup.shm {
        shm(ctx, kind);
    }
    if setup.sem_undo {
        semaphore(ctx);
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

#[cfg(test)]
mod tests {
    use super::fd_path;

    #[test]
    fn fd_path_names_the_descriptor_in_proc() {
        let mut buf = [0xffu8; 32];
        assert_eq!(fd_path(100, &mut buf), c"/proc/self/fd/100");
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(2_147_483_647, &mut buf), c"/proc/self/fd/2147483647");
    }
}
