//! The steps of a sequence other than unshare: fork (continue in the child),
//! fork a child that exits, write id maps, drop CAP_SYS_ADMIN, chroot, start a
//! thread. Each returns its result and the link changes, and updates the state
//! (unshare-semantics.md §3 "errors that are not unshare's own", §5.4, §5.8).

#![deny(missing_docs)]

use crate::abi::errno::{CallResult, Errno};
use crate::abi::ns::NsLink;
use crate::case::Chroot;

use super::expect::{LinkExpect, PidExpect};
use super::profile::KernelProfile;
use super::state::{CAP_SYS_ADMIN, CAP_SYS_CHROOT, CallerState, PidChildren};

/// The outcome of one non-unshare step.
pub struct StepEffect {
    /// Result.
    pub result: CallResult,
    /// Deciding rule id (`success` or the failure's rule).
    pub rule: &'static str,
    /// Link changes.
    pub links: [LinkExpect; NsLink::COUNT],
    /// getpid() change.
    pub pid: PidExpect,
    /// cwd may change.
    pub cwd_changes: bool,
}

pub(super) fn ok(links: [LinkExpect; NsLink::COUNT], pid: PidExpect) -> StepEffect {
    StepEffect { result: CallResult::Success, rule: "success", links, pid, cwd_changes: false }
}

pub(super) fn fail(errno: Errno, rule: &'static str) -> StepEffect {
    StepEffect {
        result: CallResult::Failure(errno),
        rule,
        links: [LinkExpect::Unchanged; NsLink::COUNT],
        pid: PidExpect::Unchanged,
        cwd_changes: false,
    }
}

pub(super) const UNCHANGED: [LinkExpect; NsLink::COUNT] = [LinkExpect::Unchanged; NsLink::COUNT];

/// `fork()` and continue in the child.
pub fn fork(profile: &KernelProfile, state: &mut CallerState) -> StepEffect {
    // copy_files (dup_fd) comes before alloc_pid in copy_process.
    if state.fd_table_over_nr_open {
        return fail(Errno::EMFILE, "fork-fd-table-over-nr-open");
    }
    if state.pid_children == PidChildren::Dead {
        return fail(Errno::ENOMEM, "fork-after-init-exit");
    }
    let mut links = UNCHANGED;
    let mut pid = PidExpect::Changed;
    if state.pid_children == PidChildren::Pending {
        links[NsLink::Pid.index()] = if profile.pid_for_children_visible_at_once {
            LinkExpect::BeforeOf(NsLink::PidForChildren)
        } else {
            LinkExpect::Fresh
        };
        links[NsLink::PidForChildren.index()] = LinkExpect::AfterOf(NsLink::Pid);
        pid = PidExpect::One;
        state.pid_children = PidChildren::Active;
        state.pid_level = state.pid_level.map(|l| l + 1);
        // The new namespace is owned by our own user namespace: not foreign.
        state.pid_owner_foreign = false;
        state.siblings.iter_mut().for_each(|s| s.pid_visible = false);
    }
    if state.time_pending {
        links[NsLink::Time.index()] = LinkExpect::BeforeOf(NsLink::TimeForChildren);
        state.time_pending = false;
    }
    // A plain fork copies the fd table and fs_struct, gets its own mm and sighand, and
    // starts with no undo list.
    // The first child of a new pid namespace is its init.
    state.is_init = pid == PidExpect::One;
    // The previous caller is now the parent: its SIGCHLD setting (copied to us) decides whether
    // our CLONE_PARENT children are reaped at exit; a zombie holding its handlers is not ours.
    state.parent_ignores_sigchld = state.sigchld_ignored;
    state.sighand_held_by_zombie = false;
    state.threads = 1;
    state.vfork_parent = false;
    state.undo_list = false;
    for sib in &mut state.siblings {
        (sib.files, sib.fs, sib.mm, sib.sighand, sib.undo) = (false, false, false, false, false);
    }
    if let Some(sem) = state.sem.as_mut() {
        sem.undo = super::state::Undo::None;
    }
    ok(links, pid)
}

/// `fork()` a child that exits at once; the caller continues.
pub fn fork_exit(profile: &KernelProfile, state: &mut CallerState) -> StepEffect {
    if state.fd_table_over_nr_open {
        return fail(Errno::EMFILE, "fork-fd-table-over-nr-open");
    }
    if state.pid_children == PidChildren::Dead {
        return fail(Errno::ENOMEM, "fork-after-init-exit");
    }
    let mut links = UNCHANGED;
    if state.pid_children == PidChildren::Pending {
        // The child was the new namespace's init; once it is gone, the namespace is dead,
        // but pid_for_children still names it (it appears now, unless it was visible already).
        if !profile.pid_for_children_visible_at_once {
            links[NsLink::PidForChildren.index()] = LinkExpect::Fresh;
        }
        state.pid_children = PidChildren::Dead;
    }
    ok(links, PidExpect::Unchanged)
}

/// Rule: WriteMaps maps the parent's uid 0 in a user namespace whose creator had no
/// CAP_SETFCAP (`model::caps::root_map_refused`).
pub const CAPS_ROOT_MAP_NEEDS_SETFCAP: &str = "caps-root-map-needs-setfcap";

/// Write `deny` to setgroups and the maps `0 <outer ids> 1`.
///
/// Opening /proc/self/setgroups for writing needs CAP_SYS_ADMIN in the user namespace
/// (EACCES at open); writing "deny" once a gid map exists, or any map a second time, is EPERM.
pub fn write_maps(state: &mut CallerState) -> StepEffect {
    // The path lookup comes before the permission check at open.
    if !state.proc_visible {
        return fail(Errno::ENOENT, "maps-without-proc");
    }
    if !state.cap_sys_admin {
        return fail(Errno::EACCES, "maps-need-cap-sys-admin");
    }
    if !state.maps_writable {
        return fail(Errno::EPERM, "maps-already-written");
    }
    if state.caps.root_map_refused {
        return fail(Errno::EPERM, CAPS_ROOT_MAP_NEEDS_SETFCAP);
    }
    state.maps_writable = false;
    state.ids_mapped = true;
    state.uid = 0;
    state.gid = 0;
    ok(UNCHANGED, PidExpect::Unchanged)
}

/// Drop CAP_SYS_ADMIN (always allowed).
pub fn drop_sys_admin(state: &mut CallerState) -> StepEffect {
    state.cap_sys_admin = false;
    state.cap_eff &= !(1u64 << CAP_SYS_ADMIN);
    state.caps.prm_only &= !(1u64 << CAP_SYS_ADMIN);
    ok(UNCHANGED, PidExpect::Unchanged)
}

/// `chroot` then `chdir("/")`.
pub fn chroot(state: &mut CallerState, kind: Chroot) -> StepEffect {
    // ksys_chroot looks the path up before it checks CAP_SYS_CHROOT; a new, empty mount
    // namespace (UNSHARE_EMPTY_MNTNS, 7.x) has no /tmp/uf-chroot, only "/".
    if kind == Chroot::Subdir && !state.proc_visible {
        return fail(Errno::ENOENT, "chroot-dir-missing");
    }
    if !state.has_cap(CAP_SYS_CHROOT) {
        return fail(Errno::EPERM, "chroot-needs-cap-sys-chroot");
    }
    if kind == Chroot::Subdir {
        state.chrooted = true;
    }
    let mut e = ok(UNCHANGED, PidExpect::Unchanged);
    e.cwd_changes = true;
    e
}

/// `pthread_create`.
pub fn spawn_thread(profile: &KernelProfile, state: &mut CallerState) -> StepEffect {
    if state.pid_children != PidChildren::Active {
        return fail(Errno::EINVAL, "thread-after-newpid");
    }
    if profile.newtime_blocks_threads && state.time_pending {
        return fail(Errno::EINVAL, "thread-after-newtime");
    }
    state.threads += 1;
    // pthread_create passes CLONE_SYSVSEM, which gives the caller an undo list.
    state.undo_list = true;
    ok(UNCHANGED, PidExpect::Unchanged)
}
